/* calibrate.c — `dam calibrate`: runs calibration texts through a model with
 * full attention, captures each head's attention over the first PCL
 * positions, and writes the DAM profile (per layer and head: the matched
 * diagonal offsets and columns, coverage figures, fallback) as JSON. */
#include "cli.h"
#include "dam/common.h"
#include "dam/dam.h"
#include "dam/model.h"
#include "dam/tokenizer.h"
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MAX_FILES 64

static void help(FILE *out) {
    fprintf(out,
        "usage: dam calibrate [-m DIR] -f FILE [-f FILE ...] [--dam-pcl N ...] -o PROFILE.json\n"
        "Captures each head's attention pattern with full attention and writes a DAM profile\n"
        "(load it with --dam-profile). Documents in a file are separated by blank lines; each is\n"
        "cut into sequences of PCL tokens (a continuation starts with BOS again).\n"
        "  -f, --file FILE        calibration text (repeatable; - = stdin)\n"
        "  --ids-file FILE        calibration token ids instead: one sequence per line, ids\n"
        "                         separated by commas or spaces (for models without tokenizer)\n"
        "  --max-seqs N           use at most N sequences (default: all)\n"
        "  --reach FILE           long documents (separated by lines holding one form feed) on\n"
        "                         which to measure how far each head reaches: what a recent\n"
        "                         window and a query-aware selection of each size keep of its\n"
        "                         attention; --dam-budget is split across heads from this\n"
        "  --reach-len N          tokens per reach sequence (default 4096, at most the context)\n"
        "  --reach-seqs N         reach sequences at most (default 4)\n"
        "  --reach-min-row N      rows from this position on are measured (default 512)\n"
        "  -o, --output FILE      profile to write (required; - = stdout, the summary then goes\n"
        "                         to stderr)\n"
        "  -q, --quiet            no progress and no per-head table\n");
    model_args_help(out);
}

/* One sequence per non-empty line. */
static int read_ids_file(const char *path, int pcl, int ***seqs, int **lens, int *count) {
    size_t len;
    char *text = read_input(path, &len);
    if (!text) return -1;
    int cap = 0, rc = 0;
    *count = 0;
    for (char *line = text, *next; line && *line && rc == 0; line = next) {
        next = strchr(line, '\n');
        if (next) *next++ = 0;
        int *ids = NULL, n = 0, idcap = 0;
        for (char *p = line; *p;) {
            if (*p == ',' || *p == ' ' || *p == '\t' || *p == '\r') { p++; continue; }
            char *end;
            long v = strtol(p, &end, 10);
            if (end == p || v < 0 || v > INT_MAX) {
                rc = dam_fail("%s: '%.20s' is not a token id", path, p);
                break;
            }
            if (n == idcap) {
                idcap = idcap ? idcap * 2 : 64;
                int *g = realloc(ids, (size_t)idcap * sizeof *g);
                if (!g) { rc = dam_fail("out of memory"); break; }
                ids = g;
            }
            ids[n++] = (int)v;
            p = end;
        }
        if (rc || n == 0) { free(ids); continue; }
        if (n > pcl) n = pcl;                    /* only the first PCL rows are captured */
        if (*count == cap) {
            cap = cap ? cap * 2 : 32;
            int **s2 = realloc(*seqs, (size_t)cap * sizeof **seqs);
            int *l2 = s2 ? realloc(*lens, (size_t)cap * sizeof **lens) : NULL;
            if (s2) *seqs = s2;
            if (!s2 || !l2) { free(ids); rc = dam_fail("out of memory"); break; }
            *lens = l2;
        }
        (*seqs)[*count] = ids;
        (*lens)[(*count)++] = n;
    }
    free(text);
    return rc;
}

/* With reach figures: what each head gets from the budget, window + selected. */
static void print_split(FILE *out, const struct dam_profile *p, int budget, int min_select) {
    const int n = p->n_layers * p->n_heads;
    int *win = malloc((size_t)n * sizeof *win), *sel = malloc((size_t)n * sizeof *sel);
    if (!win || !sel || dam_reach_allocate(p->reach, budget, min_select, win, sel)) { free(win); free(sel); return; }
    fprintf(out, "budget %d keys per row per head, split by reach (measured from row %d): "
            "recent window + selected blocks of 16\n", budget, p->reach->min_row);
    for (int l = 0; l < p->n_layers; l++) {
        fprintf(out, "  layer %2d:", l);
        for (int h = 0; h < p->n_heads; h++) fprintf(out, " %4d+%-2d", win[l * p->n_heads + h], sel[l * p->n_heads + h]);
        fprintf(out, "\n");
    }
    free(win);
    free(sel);
}

/* A short line per layer: each head as offsets/columns (f = fallback). */
static void print_summary(FILE *out, const struct dam_profile *p) {
    double cov = 0;
    int n = p->n_layers * p->n_heads;
    for (int i = 0; i < n; i++) cov += p->heads[i].coverage;
    fprintf(out, "profile: %d sequences, %ld tokens, PCL %d, lambda %g, tau %g, mu %g, min support %d\n",
            p->n_sequences, p->n_tokens, p->params.pcl, p->params.lambda, p->params.tau, p->params.mu,
            p->params.min_support);
    fprintf(out, "heads: mean coverage %.3f, %d of %d fall back (%s, below coverage %g)\n",
            cov / n, dam_profile_fallback_heads(p), n, dam_fallback_name(p->params.fallback),
            p->params.min_coverage);
    fprintf(out, "per head: offsets (largest) + columns, coverage; * = fallback\n");
    for (int l = 0; l < p->n_layers; l++) {
        fprintf(out, "  layer %2d:", l);
        for (int h = 0; h < p->n_heads; h++) {
            const struct dam_head *d = &p->heads[l * p->n_heads + h];
            fprintf(out, " %d(%d)+%d %.2f%s", d->n_offsets, d->offsets[d->n_offsets - 1], d->n_columns,
                    d->coverage, d->fallback != DAM_FALLBACK_NONE ? "*" : "");
        }
        fprintf(out, "\n");
    }
}

int cmd_calibrate(int argc, char **argv) {
    struct model_args ma;
    if (model_args_default(&ma, "dam")) return EXIT_ERROR;
    const char *files[MAX_FILES], *ids_file = NULL, *out_path = NULL, *v;
    const char *reach_file = NULL;
    int n_files = 0, max_seqs = 0, quiet = 0, rc = EXIT_USAGE, reach_len = 4096, reach_seqs = 4, reach_min_row = 512;
    for (int i = 1; i < argc; i++) {
        int r = model_args_parse(&ma, argc, argv, &i);
        if (r < 0) return EXIT_USAGE;
        if (r > 0) continue;
        const char *f = argv[i];
        if (!strcmp(f, "--help") || !strcmp(f, "-h")) { help(stdout); return EXIT_OK; }
        if (arg_is(f, "-f") || arg_is(f, "--file")) {
            if (!(v = arg_value_repeatable(argc, argv, &i))) return EXIT_USAGE;
            if (n_files == MAX_FILES) { cli_error("at most %d calibration files", MAX_FILES); return EXIT_USAGE; }
            files[n_files++] = v;
        } else if (arg_is(f, "--reach")) {
            if (!(reach_file = arg_value(argc, argv, &i))) return EXIT_USAGE;
        } else if (arg_is(f, "--reach-len")) {
            if (!(v = arg_value(argc, argv, &i)) || arg_int(f, v, 64, 1 << 20, &reach_len)) return EXIT_USAGE;
        } else if (arg_is(f, "--reach-seqs")) {
            if (!(v = arg_value(argc, argv, &i)) || arg_int(f, v, 1, 1 << 20, &reach_seqs)) return EXIT_USAGE;
        } else if (arg_is(f, "--reach-min-row")) {
            if (!(v = arg_value(argc, argv, &i)) || arg_int(f, v, 0, 1 << 20, &reach_min_row)) return EXIT_USAGE;
        } else if (arg_is(f, "--ids-file")) {
            if (!(ids_file = arg_value(argc, argv, &i))) return EXIT_USAGE;
        } else if (arg_is(f, "--max-seqs")) {
            if (!(v = arg_value(argc, argv, &i)) || arg_int(f, v, 1, 1 << 24, &max_seqs)) return EXIT_USAGE;
        } else if (arg_is(f, "-o") || arg_is(f, "--output")) {
            if (!(out_path = arg_value(argc, argv, &i))) return EXIT_USAGE;
        } else if (!strcmp(f, "-q") || !strcmp(f, "--quiet")) {
            quiet = 1;
        } else {
            cli_error("unknown flag '%s' for dam calibrate (see dam calibrate --help)", f);
            return EXIT_USAGE;
        }
    }
    if (!n_files && !ids_file) { cli_error("dam calibrate needs calibration text (-f FILE) or --ids-file"); return EXIT_USAGE; }
    if (n_files && ids_file) { cli_error("give either -f or --ids-file, not both"); return EXIT_USAGE; }
    if (reach_file && ids_file) { cli_error("--reach needs a tokenizer: give -f, not --ids-file"); return EXIT_USAGE; }
    if (reach_file && reach_len <= reach_min_row + 16) {
        cli_error("--reach-len %d must exceed --reach-min-row %d by more than 16", reach_len, reach_min_row);
        return EXIT_USAGE;
    }
    if (!out_path) { cli_error("dam calibrate needs -o PROFILE.json"); return EXIT_USAGE; }
    if (model_args_finish(&ma)) return EXIT_USAGE;
    if (check_output_path("-o", out_path)) return EXIT_ERROR;
    struct dam_params check;
    if (dam_params_from_options(&ma.attn_opts, &check)) { cli_error("%s", dam_last_error()); return EXIT_USAGE; }
    model_args_warn_unused(&ma, "dam");

    rc = EXIT_ERROR;
    struct model *m = NULL;
    struct tokenizer *tok = NULL;
    struct dam_profile *prof = NULL;
    char *texts[MAX_FILES] = { 0 };
    int **seqs = NULL, *lens = NULL, n_seqs = 0, n_read = 0;
    char dir[PATH_MAX], what[2048];
    if (model_resolve_dir(ma.model, dir, sizeof dir) || !(m = model_args_load(&ma, dir))) goto fail;
    if (check_pcl(ma.attn_opts.dam.pcl, &m->cfg)) goto fail;
    size_t w = 0;
    what[0] = 0;
    for (int i = 0; i < n_files; i++)
        w += snprintf(what + w, w < sizeof what ? sizeof what - w : 0, "%s%s", i ? ", " : "", files[i]);
    if (ids_file) snprintf(what, sizeof what, "%s", ids_file);
    double t0 = now_ms();
    int verbose = !quiet && isatty(STDERR_FILENO);      /* progress only on a terminal */
    if (ids_file) {
        if (read_ids_file(ids_file, ma.attn_opts.dam.pcl, &seqs, &lens, &n_read)) goto fail;
        n_seqs = max_seqs && n_read > max_seqs ? max_seqs : n_read;
        for (int i = 0; i < n_seqs; i++)
            for (int j = 0; j < lens[i]; j++)
                if (seqs[i][j] >= m->cfg.vocab_size) {
                    dam_fail("%s: token id %d is out of range (vocabulary of %d)", ids_file, seqs[i][j], m->cfg.vocab_size);
                    goto fail;
                }
        prof = dam_calibrate_tokens(m, (const int *const *)seqs, lens, n_seqs, &ma.attn_opts, what, verbose);
    } else {
        if (!(tok = tokenizer_load(dir))) goto fail;
        for (int i = 0; i < n_files; i++) {
            size_t len;
            if (!(texts[i] = read_input(files[i], &len))) goto fail;
            if (text_check(files[i], texts[i], len)) goto fail;
        }
        prof = dam_calibrate_texts(m, tok, (const char *const *)texts, n_files, &ma.attn_opts, what,
                                   max_seqs, verbose);
    }
    if (!prof) goto fail;
    if (reach_file) {
        char *rt = read_file(reach_file, NULL);
        if (!rt) goto fail;
        int len = reach_len < m->cfg.max_seq_len ? reach_len : m->cfg.max_seq_len;
        prof->reach = dam_calibrate_reach_text(m, tok, rt, len, reach_seqs, &ma.attn_opts, reach_min_row, verbose);
        free(rt);
        if (!prof->reach) goto fail;
    }
    if (dam_profile_save(prof, out_path)) goto fail;
    if (!quiet) {
        FILE *out = output_is_stdout(out_path) ? stderr : stdout;
        print_summary(out, prof);
        if (prof->reach) print_split(out, prof, ma.attn_opts.dam.budget, (ma.attn_opts.dam.min_select + 15) / 16);
        fprintf(out, "wrote %s (%.1f s)\n", out_path, (now_ms() - t0) / 1e3);
    }
    rc = EXIT_OK;
    goto done;
fail:
    cli_error("%s", dam_last_error());
done:
    for (int i = 0; i < n_files; i++) free(texts[i]);
    for (int i = 0; seqs && i < n_read; i++) free(seqs[i]);
    free(seqs); free(lens);
    dam_profile_free(prof);
    tokenizer_free(tok);
    model_free(m);
    return rc;
}
