/* niah.c — `dam niah`: needle-in-a-haystack grids.
 *
 * For every (length, depth, sample) of the grid one prompt is built (pure
 * code in src/eval/niah_prompt.c, seeded per sample), then every attention
 * module answers that same prompt: one model load, one session per module,
 * rewound between samples. Greedy decoding; the answer ends at EOS, after -n
 * tokens, or at the end of its first non-empty line. Results: one JSON line
 * per (sample, module), a summary table, a CSV and an SVG heatmap.
 * Wrong answers are results, not errors: the exit code is 0 unless something
 * failed (130 after Ctrl-C, with the outputs of the finished samples).
 *
 * Grids across machines: --shard I/N runs every N-th cell of the grid (its
 * numbering and the identity carried by each JSON line: src/eval/niah_grid.c),
 * --merge reads the parts' JSON lines back without a model and writes the
 * table, CSV, heatmap and JSON lines of the whole grid (src/eval/niah_merge.c). */
#include "cli.h"
#include "dam/common.h"
#include "dam/generate.h"
#include "dam/model.h"
#include "dam/niah.h"
#include "dam/session.h"
#include "dam/tokenizer.h"
#include <ctype.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <sys/stat.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MAX_ATTN 8
#define DEFAULT_LENGTHS "1k,2k,4k,8k"
#define DEFAULT_DEPTHS "0,0.25,0.5,0.75,1"
#define DEFAULT_SEED 1
#define MAX_SEED ((1LL << 53) - 1)    /* exact as a JSON number */

struct niah_args {
    struct model_args model;
    enum niah_task task;            /* --task */
    int *lengths, n_lengths;        /* --lengths */
    int lengths_given;
    float *depths;                  /* --depths */
    int n_depths;
    int samples;                    /* --samples */
    const char *attn[MAX_ATTN];     /* --attn, split */
    int n_attn;
    char *attn_list;                /* owns the strings of attn[] */
    const char *haystack;           /* --haystack */
    uint64_t seed;                  /* --seed */
    int chat;                       /* --chat */
    const char *chat_template;      /* --chat-template */
    int n_predict;                  /* -n, 0 = the task's default */
    const char *jsonl, *csv, *svg;  /* output paths; jsonl "-" = stdout */
    int quiet;                      /* -q */
    int shard_index, shard_count;   /* --shard I/N; 0 = the whole grid */
};

static volatile sig_atomic_t interrupt_flag;
static void on_sigint(int sig) { (void)sig; interrupt_flag = 1; }

static void help(FILE *out) {
    fprintf(out,
        "usage: dam niah [-m MODEL] [--task TASK] [--lengths LIST] [--depths LIST] [--samples N]\n"
        "                [--attn LIST] [options]\n"
        "Hides a needle in a haystack at each prompt length and depth of a grid and asks the model\n"
        "for it (greedy decoding), with each attention module on the same prompts.\n"
        "grid:\n"
        "  --task NAME            passkey | niah | multikey | lines (default passkey)\n"
        "  --lengths LIST         prompt lengths in the model's tokens, e.g. 1k,2k,4096\n"
        "                         (default " DEFAULT_LENGTHS ", those that fit the context;\n"
        "                         half, three quarters and all of it if none does)\n"
        "  --depths LIST          needle depths, 0 = start of the haystack, 1 = end\n"
        "                         (default " DEFAULT_DEPTHS ")\n"
        "  --samples N            prompts per grid cell (default 1)\n"
        "  --attn LIST            attention modules, comma-separated (default: the model's own, full\n"
        "                         for most; available: %s)\n"
        "  --seed N               seed of the prompts: keys, values, haystack offsets (default %d)\n"
        "  --shard I/N            run part I of N (1 <= I <= N): every N-th cell of the grid, with the\n"
        "                         prompts of the whole run; put the parts together with --merge\n"
        "prompts:\n"
        "  --haystack FILE        prose to hide the needle in, repeated if short\n"
        "                         (default: prompts/haystack.txt beside the program)\n"
        "  --chat                 wrap each prompt in the model's chat template\n"
        "  --chat-template NAME   force a template: chatml, llama3, llama2\n"
        "  -n, --n-predict N      answer tokens at most (default: passkey 12, niah/multikey 16, lines 32)\n"
        "output:\n"
        "  --jsonl FILE           one JSON object per sample and module ('-' = stdout; the summary\n"
        "                         table then goes to stderr)\n"
        "  --csv FILE             the grid: one row per (module, length, depth) ('-' = stdout)\n"
        "  --svg FILE             heatmap: length x depth, accuracy as colour, a panel per module\n"
        "                         ('-' = stdout; one output at most may be '-')\n"
        "  -q, --quiet            no progress lines on stderr\n"
        "  -h, --help\n"
        "merging parts (no model is loaded):\n"
        "  dam niah --merge A.jsonl B.jsonl ... [--jsonl FILE] [--csv FILE] [--svg FILE]\n"
        "                         the JSON lines of the parts (--shard runs) of one grid -> its table,\n"
        "                         CSV, heatmap and JSON lines; refuses parts of different grids, a\n"
        "                         cell twice, and missing cells\n",
        attn_names(), DEFAULT_SEED);
    model_args_help(out);
}

/* ---- flags ---- */

static int parse_attn_list(struct niah_args *a, const char *list) {
    free(a->attn_list);
    if (!(a->attn_list = strdup(list))) { cli_error("out of memory"); return -1; }
    a->n_attn = 0;
    char *save = NULL;
    for (char *name = strtok_r(a->attn_list, ",", &save); name; name = strtok_r(NULL, ",", &save)) {
        if (!attn_find(name)) {
            cli_error("unknown attention module '%s' (available: %s)", name, attn_names());
            return -1;
        }
        for (int i = 0; i < a->n_attn; i++)
            if (!strcmp(a->attn[i], name)) { cli_error("bad value for --attn: '%s' appears twice", name); return -1; }
        if (a->n_attn == MAX_ATTN) { cli_error("bad value for --attn: at most %d modules", MAX_ATTN); return -1; }
        a->attn[a->n_attn++] = name;
    }
    if (a->n_attn == 0) { cli_error("bad value for --attn: '%s' (expected module names, like full,dam)", list); return -1; }
    return 0;
}

static int parse_args(struct niah_args *a, int argc, char **argv) {
    const char *v;
    for (int i = 1; i < argc; i++) {
        const char *f = argv[i];
#define VALUE() do { if (!(v = arg_value(argc, argv, &i))) return -1; } while (0)
        /* --attn takes a list here: handled before the shared flags see it */
        if (arg_is(f, "--attn")) { VALUE(); if (parse_attn_list(a, v)) return -1; continue; }
        int r = model_args_parse(&a->model, argc, argv, &i);
        if (r < 0) return -1;
        if (r > 0) continue;
        if (!strcmp(f, "-h") || !strcmp(f, "--help")) { help(stdout); return 1; }
        else if (arg_is(f, "--task")) {
            VALUE();
            if (niah_task_parse(v, &a->task)) { cli_error("bad value for --task: %s", dam_last_error()); return -1; }
        }
        else if (arg_is(f, "--lengths")) {
            VALUE();
            free(a->lengths); a->lengths = NULL;
            if (niah_parse_lengths(v, &a->lengths, &a->n_lengths)) { cli_error("%s", dam_last_error()); return -1; }
            a->lengths_given = 1;
        }
        else if (arg_is(f, "--depths")) {
            VALUE();
            free(a->depths); a->depths = NULL;
            if (niah_parse_depths(v, &a->depths, &a->n_depths)) { cli_error("%s", dam_last_error()); return -1; }
        }
        else if (arg_is(f, "--samples")) { VALUE(); if (arg_int(f, v, 1, 1000000, &a->samples)) return -1; }
        else if (arg_is(f, "--seed")) {
            VALUE();
            long s;
            if (arg_long(f, v, 0, MAX_SEED, &s)) return -1;
            a->seed = (uint64_t)s;
        }
        else if (arg_is(f, "--shard")) {
            VALUE();
            if (niah_parse_shard(v, &a->shard_index, &a->shard_count)) { cli_error("%s", dam_last_error()); return -1; }
        }
        else if (arg_is(f, "--haystack")) { VALUE(); a->haystack = v; }
        else if (!strcmp(f, "--chat")) a->chat = 1;
        else if (arg_is(f, "--chat-template")) { VALUE(); a->chat_template = v; }
        else if (arg_is(f, "-n") || arg_is(f, "--n-predict")) { VALUE(); if (arg_int(f, v, 1, 1 << 20, &a->n_predict)) return -1; }
        else if (arg_is(f, "--jsonl")) { VALUE(); a->jsonl = v; }
        else if (arg_is(f, "--csv")) { VALUE(); a->csv = v; }
        else if (arg_is(f, "--svg")) { VALUE(); a->svg = v; }
        else if (!strcmp(f, "-q") || !strcmp(f, "--quiet")) a->quiet = 1;
        else { cli_error("unknown flag '%s' for dam niah (see dam niah --help)", f); return -1; }
#undef VALUE
    }
    if (a->chat_template && !a->chat) { cli_error("--chat-template needs --chat"); return -1; }
    if (!a->depths && niah_parse_depths(DEFAULT_DEPTHS, &a->depths, &a->n_depths)) { cli_error("%s", dam_last_error()); return -1; }
    if (!a->n_predict) a->n_predict = niah_default_answer_tokens(a->task);
    const char *outs[3] = { a->csv, a->svg, a->jsonl };
    for (int k = 0; k < 3; k++)
        for (int j = k + 1; j < 3; j++)
            if (outs[k] && outs[j] && !strcmp(outs[k], outs[j])) {
                if (output_is_stdout(outs[k])) cli_error("only one of --jsonl, --csv and --svg can be '-' (stdout)");
                else cli_error("the output file %s is given twice", outs[k]);
                return -1;
            }
    return 0;
}

/* Fails early, before a long run, when an output could not be written. */
static int check_writable(const char *path) {
    return path ? output_check(path) : 0;
}

/* The lengths to run: as given (each must fit the context with the answer),
 * or the default list cut to the context. */
static int choose_lengths(struct niah_args *a, int n_ctx, int model_max) {
    if (!a->lengths_given) {
        if (niah_parse_lengths(DEFAULT_LENGTHS, &a->lengths, &a->n_lengths)) return -1;
        int kept = 0;
        for (int i = 0; i < a->n_lengths; i++)
            if (a->lengths[i] + a->n_predict <= n_ctx) a->lengths[kept++] = a->lengths[i];
        a->n_lengths = kept;
        if (kept == 0) {           /* a small context: half, three quarters, all of it */
            a->lengths[kept++] = n_ctx / 2;
            a->lengths[kept++] = n_ctx * 3 / 4;
            int most = (int)((n_ctx - a->n_predict) / 1.02);
            if (most > a->lengths[kept - 1]) a->lengths[kept++] = most;
            a->n_lengths = kept;
        }
    }
    for (int i = 0; i < a->n_lengths; i++) {
        int len = a->lengths[i];
        const char *hint = n_ctx < model_max ? " (raise -c)" : "";
        if (len > n_ctx)
            return dam_fail("length %d is larger than the context of %d tokens%s", len, n_ctx, hint);
        int least = len - (int)(0.02 * len);      /* the shortest prompt the 2% band allows */
        if (least + a->n_predict > n_ctx)
            return dam_fail("length %d leaves no room for the %d-token answer in the context of %d tokens "
                            "(use a shorter length or a smaller -n)", len, a->n_predict, n_ctx);
    }
    return 0;
}

/* ---- answering one prompt ---- */

/* Generation stops at the end of the answer's first non-empty line. */
struct answer {
    struct detokenizer *detok;
    int seen_text;             /* a non-space character has come */
};

static int on_token(void *ctx, int id) {
    struct answer *ans = ctx;
    for (const char *p = detokenizer_push(ans->detok, id); *p; p++) {
        if (*p == '\n' && ans->seen_text) return 1;
        if (!isspace((unsigned char)*p)) ans->seen_text = 1;
    }
    return 0;
}

/* The generated text's first non-empty line, trimmed (heap). */
static char *answer_text(const struct tokenizer *tok, const int *ids, int n) {
    char *text = tokenizer_decode(tok, ids, n, 1);
    if (!text) return NULL;
    char *p = text;
    while (isspace((unsigned char)*p)) p++;
    char *nl = strchr(p, '\n');
    if (nl) *nl = 0;
    size_t len = strlen(p);
    while (len > 0 && isspace((unsigned char)p[len - 1])) p[--len] = 0;
    memmove(text, p, len + 1);
    return text;
}

struct answer_stats { double prefill_ms, decode_ms, sparsity, kv_bytes; int n_tokens; };

/* 0 done, 1 interrupted, -1 error. */
static int answer(struct session *s, const struct tokenizer *tok, const struct niah_prompt *p, int n_predict,
                  char **output, struct answer_stats *t) {
    struct answer ans = { .detok = detokenizer_new_opts(tok, 1) };
    if (!ans.detok) return -1;
    struct gen_params gp = {
        .n_predict = n_predict, .on_token = on_token, .ctx = &ans, .interrupt = &interrupt_flag,
    };
    sampler_params_default(&gp.sampling);
    gp.sampling.temperature = 0;           /* greedy: the answer depends on the prompt only */
    gp.sampling.top_k = 0; gp.sampling.top_p = 1; gp.sampling.min_p = 0; gp.sampling.repeat_penalty = 1;
    struct gen_result r = { 0 };
    session_rewind(s, 0);
    struct attn_stats before, after;
    s->attn->stats(s->attn_state, &before);
    int rc = generate(s, p->ids, p->n_ids, &gp, &r);
    s->attn->stats(s->attn_state, &after);
    const double causal = after.causal_pairs - before.causal_pairs;
    t->sparsity = causal > 0 ? 1 - (after.kept_pairs - before.kept_pairs) / causal : 0;
    t->kv_bytes = (double)after.kv_bytes;
    detokenizer_free(ans.detok);
    if (rc != 0) { gen_result_free(&r); return -1; }
    t->prefill_ms = r.prompt_ms;
    t->decode_ms = r.eval_ms;
    t->n_tokens = r.n_generated;
    int interrupted = r.stop == STOP_INTERRUPT;
    *output = interrupted ? NULL : answer_text(tok, r.tokens, r.n_generated);
    gen_result_free(&r);
    if (interrupted) return 1;
    return *output ? 0 : -1;
}

/* ---- outputs ---- */

static int write_text(const char *path, char *text) {
    if (!text) return -1;
    int rc = output_write(path, text, strlen(text));
    free(text);
    return rc;
}

static int write_outputs(const struct niah_args *a, const struct niah_run *run) {
    if (a->jsonl && strcmp(a->jsonl, "-") && write_text(a->jsonl, niah_jsonl(run))) return -1;
    if (a->csv && write_text(a->csv, niah_csv(run))) return -1;
    if (a->svg && write_text(a->svg, niah_svg(run))) return -1;
    return 0;
}

/* ---- the command ---- */

struct context {
    struct model *m;
    struct tokenizer *tok;
    struct niah_haystack *hay;
    struct niah_builder *builder;
    struct session *sessions[MAX_ATTN];
    struct niah_tokenizer_encoder enc;
    char chat_name[32];
};

static void free_context(struct context *c) {
    for (int i = 0; i < MAX_ATTN; i++) session_free(c->sessions[i]);
    niah_builder_free(c->builder);
    niah_haystack_free(c->hay);
    tokenizer_free(c->tok);
    model_free(c->m);
}

/* Model, tokenizer, haystack and prompt builder. */
static int load(struct niah_args *a, struct context *c, char *dir, size_t dir_size) {
    char path[PATH_MAX + 32];
    if (model_resolve_dir(a->model.model, dir, dir_size) != 0) return -1;
    snprintf(path, sizeof path, "%s/tokenizer.json", dir);
    if (!is_file(path)) return dam_fail("%s has no tokenizer.json: dam niah needs the model's tokenizer", dir);
    if (!(c->m = model_args_load(&a->model, dir)) || !(c->tok = tokenizer_load(dir))) return -1;
    if (a->n_attn == 0) {          /* no --attn: what the model runs by default */
        a->attn[a->n_attn++] = attn_default_for(c->m);
    }
    if (a->chat) {
        if (a->chat_template) snprintf(c->chat_name, sizeof c->chat_name, "%s", a->chat_template);
        else if (chat_template_detect(c->tok, c->chat_name, sizeof c->chat_name) != 0) return -1;
    }
    if (a->task != NIAH_LINES) {
        char hay[PATH_MAX];
        if (a->haystack) snprintf(hay, sizeof hay, "%s", a->haystack);
        else {
            if (niah_default_haystack_path(hay, sizeof hay) != 0)
                return dam_fail("the default haystack is missing (give one with --haystack FILE): %s", dam_last_error());
        }
        if (!(c->hay = niah_haystack_load(hay))) return -1;
    }
    niah_tokenizer_encoder_init(&c->enc, c->tok, a->chat);
    c->builder = niah_builder_new(a->task, c->hay, &c->enc.enc, a->chat ? c->chat_name : NULL);
    return c->builder ? 0 : -1;
}

/* Whether this run (its shard) answers cell (k, l, d, s); every cell without --shard. */
static int owns(const struct niah_args *a, const struct niah_run *run, int k, int l, int d, int s) {
    return niah_shard_owns(a->shard_index, a->shard_count, niah_cell_number(run, k, l, d, s));
}

/* Whether any module of this run answers the prompt of (l, d, s). */
static int asks(const struct niah_args *a, const struct niah_run *run, int l, int d, int s) {
    for (int k = 0; k < run->n_attn; k++)
        if (owns(a, run, k, l, d, s)) return 1;
    return 0;
}

/* Builds every prompt of the run (of its shard) once and drops it: a length
 * or sample the task cannot meet fails here, before any model time is spent
 * (building is deterministic, so run_grid rebuilds the same prompts; keeping
 * them all could take too much memory at long lengths). */
static int validate_prompts(const struct niah_args *a, struct context *c, const struct niah_run *run, int n_ctx) {
    for (int l = 0; l < a->n_lengths; l++)
        for (int d = 0; d < a->n_depths; d++)
            for (int s = 0; s < a->samples; s++) {
                if (!asks(a, run, l, d, s)) continue;
                struct niah_prompt p;
                uint64_t seed = niah_sample_seed(a->seed, a->task, a->lengths[l], a->depths[d], s);
                if (niah_build(c->builder, a->lengths[l], a->depths[d], seed, n_ctx - a->n_predict, &p) != 0)
                    return -1;
                niah_prompt_free(&p);
            }
    return 0;
}

/* What the JSON lines carry to tell this grid from others (niah_grid.c):
 * the model's files, the haystack, chat, -n, the context, the options. */
static int describe_grid(const struct niah_args *a, const struct context *c, const char *dir, int ctx,
                         struct niah_grid *g) {
    memset(g, 0, sizeof *g);
    if (niah_model_key(dir, g->model_key) != 0) return -1;
    if (c->hay) niah_haystack_key(c->hay, g->haystack_key);
    if (a->chat) snprintf(g->chat, sizeof g->chat, "%s", c->chat_name);
    g->n_predict = a->n_predict;
    g->ctx = ctx;
    return niah_options_string(a->attn, a->n_attn, &a->model.attn_opts, g->options, sizeof g->options);
}

/* Where the grid stands: for progress lines. */
struct progress { int done, total; };

/* Records one answer; streams its JSON line (--jsonl -) and a progress line. */
static int report(const struct niah_args *a, struct niah_run *run, const struct niah_result *r,
                  struct progress *pr) {
    if (niah_run_add(run, r) != 0) return -1;
    const struct niah_result *kept = &run->results[run->n_results - 1];
    if (a->jsonl && !strcmp(a->jsonl, "-")) {
        char *line = niah_result_json(run, kept);
        if (!line) return -1;
        printf("%s\n", line);
        free(line);
        if (out_flush() != 0) return -1;        /* stdout is gone: stop the grid */
    }
    pr->done++;
    if (!a->quiet)
        fprintf(stderr, "[%d/%d] %s length %d depth %g sample %d: %s (%d tokens, prefill %.0f ms, decode %.0f ms)\n",
                pr->done, pr->total, a->attn[r->attn], a->lengths[r->length_index],
                (double)a->depths[r->depth_index], r->sample, r->correct ? "correct" : "wrong",
                r->prompt_tokens, r->prefill_ms, r->decode_ms);
    return 0;
}

/* Every module answers one prompt. 0 done, 1 interrupted, -1 error. */
static int run_prompt(const struct niah_args *a, struct context *c, struct niah_run *run,
                      const struct niah_prompt *p, int l, int d, int s, struct progress *pr) {
    for (int k = 0; k < a->n_attn; k++) {
        if (!owns(a, run, k, l, d, s)) continue;
        struct niah_result r = {
            .attn = k, .length_index = l, .depth_index = d, .sample = s, .seed = a->seed,
            .expected = p->expected, .prompt_tokens = p->n_ids, .needle_depth = p->needle_depth,
        };
        struct answer_stats t;
        int rc = answer(c->sessions[k], c->tok, p, a->n_predict, &r.output, &t);
        if (rc != 0) return rc;
        r.correct = niah_score(a->task, p->expected, r.output);
        r.prefill_ms = t.prefill_ms;
        r.decode_ms = t.decode_ms;
        r.sparsity = t.sparsity;
        r.kv_bytes = t.kv_bytes;
        r.output_tokens = t.n_tokens;
        rc = report(a, run, &r, pr);
        free(r.output);
        if (rc != 0) return -1;
    }
    return 0;
}

/* The grid, lengths outermost: one prompt per (length, depth, sample). */
static int run_grid(const struct niah_args *a, struct context *c, struct niah_run *run, int n_ctx,
                    int n_cells, int *interrupted) {
    struct progress pr = { 0, n_cells };
    for (int l = 0; l < a->n_lengths; l++)
        for (int d = 0; d < a->n_depths; d++)
            for (int s = 0; s < a->samples; s++) {
                if (!asks(a, run, l, d, s)) continue;
                struct niah_prompt p;
                uint64_t seed = niah_sample_seed(a->seed, a->task, a->lengths[l], a->depths[d], s);
                if (niah_build(c->builder, a->lengths[l], a->depths[d], seed, n_ctx - a->n_predict, &p) != 0)
                    return -1;
                int rc = run_prompt(a, c, run, &p, l, d, s, &pr);
                niah_prompt_free(&p);
                if (rc > 0) { *interrupted = 1; return 0; }
                if (rc < 0) return -1;
            }
    return 0;
}

/* ---- --merge: the parts of a grid put together, no model ---- */

struct merge_args {
    const char **parts;             /* (n_parts) JSON line files */
    int n_parts;
    const char *jsonl, *csv, *svg;
};

/* Part files and the three outputs; every flag of a run is refused: the
 * parts carry the grid's settings. 1 = help shown. */
static int parse_merge_args(struct merge_args *m, int argc, char **argv) {
    const char *v;
    for (int i = 1; i < argc; i++) {
        const char *f = argv[i];
#define VALUE() do { if (!(v = arg_value(argc, argv, &i))) return -1; } while (0)
        if (!strcmp(f, "--merge") || !strcmp(f, "-q") || !strcmp(f, "--quiet")) continue;
        if (!strcmp(f, "-h") || !strcmp(f, "--help")) { help(stdout); return 1; }
        else if (arg_is(f, "--jsonl")) { VALUE(); m->jsonl = v; }
        else if (arg_is(f, "--csv")) { VALUE(); m->csv = v; }
        else if (arg_is(f, "--svg")) { VALUE(); m->svg = v; }
        else if (f[0] == '-' && f[1]) {
            cli_error("%.*s cannot be used with --merge: the parts carry the grid's settings (flags: --jsonl, "
                      "--csv, --svg)", (int)strcspn(f, "="), f);
            return -1;
        }
        else m->parts[m->n_parts++] = f;
#undef VALUE
    }
    if (m->n_parts == 0) { cli_error("--merge needs the JSON line files of the parts"); return -1; }
    const char *outs[3] = { m->csv, m->svg, m->jsonl && strcmp(m->jsonl, "-") ? m->jsonl : NULL };
    struct stat so, sp;
    for (int k = 0; k < 3; k++) {
        for (int j = k + 1; j < 3; j++)
            if (outs[k] && outs[j] && !strcmp(outs[k], outs[j])) { cli_error("the output file %s is given twice", outs[k]); return -1; }
        /* replacing a part with the merge would lose it */
        for (int p = 0; outs[k] && p < m->n_parts; p++)
            if (stat(outs[k], &so) == 0 && stat(m->parts[p], &sp) == 0 && so.st_dev == sp.st_dev && so.st_ino == sp.st_ino) {
                cli_error("the output file %s is also a part to merge", outs[k]);
                return -1;
            }
    }
    return 0;
}

static int cmd_merge(int argc, char **argv) {
    struct merge_args a = { .parts = calloc((size_t)argc, sizeof *a.parts) };
    if (!a.parts) { cli_error("out of memory"); return EXIT_ERROR; }
    struct niah_merged *m = NULL;
    int rc = EXIT_ERROR;
    int pr = parse_merge_args(&a, argc, argv);
    if (pr != 0) { rc = pr > 0 ? EXIT_OK : EXIT_USAGE; goto done; }
    if (check_writable(a.jsonl) || check_writable(a.csv) || check_writable(a.svg)) goto fail;
    if (!(m = niah_merge(a.parts, a.n_parts))) goto fail;
    int to_stdout = a.jsonl && !strcmp(a.jsonl, "-");
    if (a.jsonl && !to_stdout) {
        char *copy = strdup(m->jsonl);      /* write_text frees what it writes */
        if (!copy) { dam_fail("out of memory"); goto fail; }
        if (write_text(a.jsonl, copy)) goto fail;
    }
    if (a.csv && write_text(a.csv, niah_csv(&m->run))) goto fail;
    if (a.svg && write_text(a.svg, niah_svg(&m->run))) goto fail;
    if (to_stdout) fputs(m->jsonl, stdout);
    niah_print_summary(to_stdout ? stderr : stdout, &m->run);
    rc = EXIT_OK;
    goto done;
fail:
    cli_error("%s", dam_last_error());
done:
    niah_merged_free(m);
    free(a.parts);
    return rc;
}

int cmd_niah(int argc, char **argv) {
    for (int i = 1; i < argc; i++)
        if (!strcmp(argv[i], "--merge")) return cmd_merge(argc, argv);
    struct niah_args a = { .task = NIAH_PASSKEY, .samples = 1, .seed = DEFAULT_SEED };
    if (model_args_default(&a.model, NULL)) return EXIT_ERROR;
    struct context c = { 0 };
    struct niah_run run = { 0 };
    int rc = EXIT_ERROR, interrupted = 0;
    int pr = parse_args(&a, argc, argv);
    if (pr == 0 && model_args_finish(&a.model) != 0) pr = -1;
    if (pr != 0) { rc = pr > 0 ? EXIT_OK : EXIT_USAGE; goto done; }
    if (check_writable(a.jsonl) || check_writable(a.csv) || check_writable(a.svg)) goto fail;

    char dir[PATH_MAX], shown[PATH_MAX];
    if (load(&a, &c, dir, sizeof dir) != 0) goto fail;
    /* the model as the user named it (a repo id stays a repo id); the
     * embedded one by its real path, without "bin/../" */
    const char *named = a.model.model && *a.model.model ? a.model.model : getenv("DAM_MODEL");
    if (named && *named) snprintf(shown, sizeof shown, "%s", named);
    else if (!realpath(dir, shown)) snprintf(shown, sizeof shown, "%s", dir);
    int model_max = c.m->cfg.max_seq_len;
    int n_ctx = a.model.n_ctx ? a.model.n_ctx : model_max;
    if (a.model.n_ctx) warn_past_trained(n_ctx, &c.m->cfg, "-c");
    char names[256] = "";
    for (int k = 0; k < a.n_attn; k++) {
        snprintf(names + strlen(names), sizeof names - strlen(names), "%s%s", k ? "," : "", a.attn[k]);
        if (!strcmp(a.attn[k], "dam") && check_pcl(a.model.attn_opts.dam.pcl, &c.m->cfg)) goto fail;
    }
    model_args_warn_unused(&a.model, names);
    if (choose_lengths(&a, n_ctx, model_max) != 0) goto fail;

    /* The KV cache holds the longest prompt the band allows and the answer. */
    int longest = 0;
    for (int l = 0; l < a.n_lengths; l++) {
        int most = a.lengths[l] + (int)(0.02 * a.lengths[l]);
        if (most > longest) longest = most;
    }
    int session_ctx = a.model.n_ctx ? n_ctx : (longest + a.n_predict < n_ctx ? longest + a.n_predict : n_ctx);
    struct niah_grid grid;
    if (describe_grid(&a, &c, dir, session_ctx, &grid) != 0) goto fail;
    run = (struct niah_run){
        .task = a.task, .model = shown, .n_attn = a.n_attn, .attn = a.attn, .n_lengths = a.n_lengths,
        .lengths = a.lengths, .n_depths = a.n_depths, .depths = a.depths, .samples = a.samples,
        .grid = &grid, .shard_index = a.shard_index, .shard_count = a.shard_count,
    };
    /* More shards than cells: some would be empty; every shard says so, not
     * only the empty ones, so that the split is fixed before anything runs. */
    if (a.shard_count > niah_grid_cells(&run)) {
        long long cells = niah_grid_cells(&run);
        cli_error("--shard %d/%d: the grid has %lld cell%s, fewer than %d shards", a.shard_index, a.shard_count,
                  cells, cells == 1 ? "" : "s", a.shard_count);
        rc = EXIT_USAGE;
        goto done;
    }
    /* the cells of this run, and the modules they need a session for */
    int n_cells = 0, used[MAX_ATTN] = { 0 };
    for (int l = 0; l < a.n_lengths; l++)
        for (int d = 0; d < a.n_depths; d++)
            for (int s = 0; s < a.samples; s++)
                for (int k = 0; k < a.n_attn; k++)
                    if (owns(&a, &run, k, l, d, s)) { n_cells++; used[k] = 1; }
    if (validate_prompts(&a, &c, &run, session_ctx) != 0) goto fail;
    for (int k = 0; k < a.n_attn; k++)
        if (used[k] && (attn_prepare(attn_find(a.attn[k]), &a.model.attn_opts, c.m, c.tok) ||
                        !(c.sessions[k] = session_new(c.m, attn_find(a.attn[k]), &a.model.attn_opts, session_ctx))))
            goto fail;

    struct sigaction sa = { .sa_handler = on_sigint }, old;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, &old);
    int grc = run_grid(&a, &c, &run, session_ctx, n_cells, &interrupted);
    sigaction(SIGINT, &old, NULL);
    if (grc != 0 && out_failed()) { write_outputs(&a, &run); goto done; }   /* main reports stdout */
    if (grc != 0) {
        /* keep what was finished, then report the error */
        char msg[1024];
        snprintf(msg, sizeof msg, "%s", dam_last_error());
        write_outputs(&a, &run);
        dam_fail("%s", msg);
        goto fail;
    }
    if (write_outputs(&a, &run) != 0) goto fail;
    int any_stdout = output_is_stdout(a.jsonl) || output_is_stdout(a.csv) || output_is_stdout(a.svg);
    FILE *table = any_stdout ? stderr : stdout;
    niah_print_summary(table, &run);
    fflush(table);
    if (interrupted) fprintf(stderr, "dam: interrupted: the outputs hold the %d finished answers\n", run.n_results);
    rc = interrupted ? 130 : EXIT_OK;
    goto done;
fail:
    cli_error("%s", dam_last_error());
done:
    niah_run_free_results(&run);
    free_context(&c);
    attn_options_release(&a.model.attn_opts);
    free(a.lengths);
    free(a.depths);
    free(a.attn_list);
    return rc;
}
