/* masks.c — `dam masks`: draws heads' DAM masks as SVG.
 *
 * Each panel is the causal triangle of the first --len positions (rows =
 * queries going down, columns = keys going right). Inside the captured rows
 * (PCL) a cell is coloured by the true mask M and the extended mask the head
 * runs (its patterns, or its fallback): both = dark blue, M only (missed) =
 * red, extended only = light blue. Beyond PCL only the extended mask is known
 * (grey). The profile comes from --dam-profile, from calibrating on -f FILE,
 * or from the automatic profile.
 *
 * Size: one rectangle per run of equal cells per row makes a file that grows
 * with len^2 (every head of the testbed at --len 8192 was 543 MB). A panel
 * never has more cells a side than it has pixels (640 for one head, 160 per
 * head with --all): past that, one cell stands for a block of b x b
 * positions, coloured by the most telling state inside it (missed > both >
 * extended > beyond PCL), so a missed position is never hidden. */
#include "cli.h"
#include "dam/common.h"
#include "dam/dam.h"
#include "dam/model.h"
#include "dam/tokenizer.h"
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_FILES 64

enum cell { CELL_NONE, CELL_BOTH, CELL_MISSED, CELL_EXTRA, CELL_BEYOND };
static const char *const cell_color[] = { NULL, "#1f4e9c", "#d62728", "#9ecae1", "#8c8c8c" };
/* which state a block of positions shows: the most telling one inside it */
static const int cell_rank[] = { 0, 3, 4, 2, 1 };

#define MAX_CELLS_ONE 640       /* cells a side: one head */
#define MAX_CELLS_ALL 160       /* cells a side per head: --all */

static void help(FILE *out) {
    fprintf(out,
        "usage: dam masks [-m DIR] [--dam-profile P | -f FILE ...] (--layer L --head H | --all)\n"
        "                 [--len N] -o mask.svg\n"
        "Draws a head's true mask (captured inside PCL) and its extended mask as SVG:\n"
        "dark blue = kept by both, red = true mask only (missed), light blue = extended only,\n"
        "grey = extended mask beyond PCL. Without --dam-profile or -f, the automatic profile.\n"
        "  --layer L, --head H    the head to draw\n"
        "  --all                  every head, a grid of layers x heads\n"
        "  -f, --file FILE        calibrate on this text first (repeatable; - = stdin)\n"
        "  --len N                positions drawn (default 2 x PCL, at most the context; past 640\n"
        "                         positions (160 with --all) a cell is a block of positions)\n"
        "  -o, --output FILE      SVG to write (required; - = stdout); its size is said on stderr\n");
    model_args_help(out);
}

/* A growing text buffer. */
struct buf { char *p; size_t len, cap; int failed; };

static void put(struct buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void put(struct buf *b, const char *fmt, ...) {
    if (b->failed) return;
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(b->p + b->len, b->cap - b->len, fmt, ap);
        va_end(ap);
        if (n < 0) { b->failed = 1; return; }
        if ((size_t)n < b->cap - b->len) { b->len += (size_t)n; return; }
        size_t cap = b->cap * 2 + (size_t)n + 1024;
        char *p = realloc(b->p, cap);
        if (!p) { b->failed = 1; return; }
        b->p = p; b->cap = cap;
    }
}

/* The states of row i, positions 0..i (the causal part). */
static void head_row(const struct dam_head *h, const struct dam_mask *m, int pcl, int known, int i, int len,
                     int *runs, uint8_t *row) {
    memset(row, 0, (size_t)len);
    int nr = dam_mask_row_runs(m, i, runs);
    for (int r = 0; r < nr; r++)
        for (int j = runs[2 * r]; j <= runs[2 * r + 1] && j < len; j++) row[j] = CELL_EXTRA;
    for (int j = 0; j <= i; j++) {
        int ext = row[j] == CELL_EXTRA;
        if (i < known && i < pcl) {
            int t = h->true_mask[dam_tri(i, j)];
            row[j] = t && ext ? CELL_BOTH : t ? CELL_MISSED : ext ? CELL_EXTRA : CELL_NONE;
        } else {
            row[j] = ext ? CELL_BEYOND : CELL_NONE;
        }
    }
}

/* Draws one head at (x0, y0), positions [0, len) on a side of len * px
 * pixels, in blocks of `block` x `block` positions per cell. */
static int draw_head(struct buf *b, const struct dam_profile *p, int layer, int head, int len, int block,
                     double x0, double y0, double px, int labels) {
    const struct dam_head *h = &p->heads[layer * p->n_heads + head];
    struct dam_mask m;
    if (dam_mask_for_head(&m, h, &p->params)) return -1;
    const int cells = (len + block - 1) / block;
    int *runs = xmalloc(2 * ((size_t)m.n_diag + m.n_col + 2) * sizeof *runs, "mask runs");
    uint8_t *row = xmalloc((size_t)len, "mask row"), *agg = xmalloc((size_t)cells, "mask cells");
    if (!runs || !row || !agg) { free(runs); free(row); free(agg); dam_mask_free(&m); return -1; }
    const int pcl = p->params.pcl, known = h->true_mask ? (p->n_rows ? p->n_rows : pcl) : 0;
    double size = len * px;
    put(b, "<g>\n<rect x=\"%.2f\" y=\"%.2f\" width=\"%.2f\" height=\"%.2f\" fill=\"#ffffff\" stroke=\"#cccccc\"/>\n",
        x0, y0, size, size);
    const double cpx = block * px;               /* pixels a cell */
    for (int ci = 0; ci < cells; ci++) {
        memset(agg, 0, (size_t)cells);
        int last = (ci + 1) * block < len ? (ci + 1) * block : len;
        for (int i = ci * block; i < last; i++) {
            head_row(h, &m, pcl, known, i, len, runs, row);
            for (int j = 0; j <= i; j++)
                if (cell_rank[row[j]] > cell_rank[agg[j / block]]) agg[j / block] = row[j];
        }
        /* one rectangle per run of equal cells */
        for (int j = 0; j <= ci;) {
            int c = agg[j], e = j;
            while (e + 1 <= ci && agg[e + 1] == c) e++;
            if (c != CELL_NONE)
                put(b, "<rect x=\"%.2f\" y=\"%.2f\" width=\"%.2f\" height=\"%.2f\" fill=\"%s\"/>\n",
                    x0 + j * cpx, y0 + ci * cpx, (e - j + 1) * cpx, cpx, cell_color[c]);
            j = e + 1;
        }
    }
    if (pcl < len)
        put(b, "<line x1=\"%.2f\" y1=\"%.2f\" x2=\"%.2f\" y2=\"%.2f\" stroke=\"#ff7f0e\" stroke-dasharray=\"4,3\"/>\n",
            x0, y0 + pcl * px, x0 + size, y0 + pcl * px);
    int fs = labels ? 13 : 10;
    put(b, "<text x=\"%.2f\" y=\"%.2f\" font-family=\"sans-serif\" font-size=\"%d\">L%d H%d cov %.2f%s%s</text>\n",
        x0, y0 - 4, fs, layer, head, h->coverage,
        h->fallback != DAM_FALLBACK_NONE ? " fallback " : "",
        h->fallback != DAM_FALLBACK_NONE ? dam_fallback_name(h->fallback) : "");
    if (labels) {
        put(b, "<text x=\"%.2f\" y=\"%.2f\" font-family=\"sans-serif\" font-size=\"12\">offsets:", x0, y0 + size + 18);
        for (int i = 0; i < h->n_offsets && i < 40; i++) put(b, " %d", h->offsets[i]);
        if (h->n_offsets > 40) put(b, " ... (%d)", h->n_offsets);
        put(b, "</text>\n<text x=\"%.2f\" y=\"%.2f\" font-family=\"sans-serif\" font-size=\"12\">columns:", x0, y0 + size + 34);
        for (int i = 0; i < h->n_columns && i < 40; i++) put(b, " %d", h->columns[i]);
        if (h->n_columns > 40) put(b, " ... (%d)", h->n_columns);
        put(b, "</text>\n");
    }
    put(b, "</g>\n");
    free(runs); free(row); free(agg);
    dam_mask_free(&m);
    return b->failed ? dam_fail("out of memory drawing the SVG") : 0;
}

static void legend(struct buf *b, double x, double y, const struct dam_profile *p, int block) {
    static const char *const names[] = { NULL, "true and extended", "true only (missed)",
                                         "extended only", "extended, beyond PCL" };
    for (int c = CELL_BOTH; c <= CELL_BEYOND; c++) {
        double cx = x + (c - 1) * 170;
        put(b, "<rect x=\"%.1f\" y=\"%.1f\" width=\"12\" height=\"12\" fill=\"%s\"/>"
               "<text x=\"%.1f\" y=\"%.1f\" font-family=\"sans-serif\" font-size=\"12\">%s</text>\n",
            cx, y, cell_color[c], cx + 16, y + 11, names[c]);
    }
    put(b, "<text x=\"%.1f\" y=\"%.1f\" font-family=\"sans-serif\" font-size=\"12\">PCL %d, lambda %g, "
           "tau %g, mu %g, min support %d, fallback %s below coverage %g; %d sequences (%s)</text>\n",
        x, y + 30, p->params.pcl, p->params.lambda, p->params.tau, p->params.mu, p->params.min_support,
        dam_fallback_name(p->params.fallback), p->params.min_coverage, p->n_sequences, p->source);
    if (block > 1)
        put(b, "<text x=\"%.1f\" y=\"%.1f\" font-family=\"sans-serif\" font-size=\"12\">one cell = %d x %d "
               "positions, shown in its most telling state (red &gt; dark blue &gt; light blue &gt; grey)</text>\n",
            x, y + 48, block, block);
}

int cmd_masks(int argc, char **argv) {
    struct model_args ma;
    if (model_args_default(&ma, "dam")) return EXIT_ERROR;
    const char *files[MAX_FILES], *out_path = NULL, *v;
    int n_files = 0, layer = -1, head = -1, all = 0, len = 0;
    for (int i = 1; i < argc; i++) {
        int r = model_args_parse(&ma, argc, argv, &i);
        if (r < 0) return EXIT_USAGE;
        if (r > 0) continue;
        const char *f = argv[i];
        if (!strcmp(f, "--help") || !strcmp(f, "-h")) { help(stdout); return EXIT_OK; }
        if (arg_is(f, "-f") || arg_is(f, "--file")) {
            if (!(v = arg_value_repeatable(argc, argv, &i))) return EXIT_USAGE;
            if (n_files == MAX_FILES) { cli_error("at most %d files", MAX_FILES); return EXIT_USAGE; }
            files[n_files++] = v;
        } else if (arg_is(f, "--layer")) {
            if (!(v = arg_value(argc, argv, &i)) || arg_int(f, v, 0, 1 << 20, &layer)) return EXIT_USAGE;
        } else if (arg_is(f, "--head")) {
            if (!(v = arg_value(argc, argv, &i)) || arg_int(f, v, 0, 1 << 20, &head)) return EXIT_USAGE;
        } else if (!strcmp(f, "--all")) {
            all = 1;
        } else if (arg_is(f, "--len")) {
            if (!(v = arg_value(argc, argv, &i)) || arg_int(f, v, 2, 1 << 16, &len)) return EXIT_USAGE;
        } else if (arg_is(f, "-o") || arg_is(f, "--output")) {
            if (!(out_path = arg_value(argc, argv, &i))) return EXIT_USAGE;
        } else {
            cli_error("unknown flag '%s' for dam masks (see dam masks --help)", f);
            return EXIT_USAGE;
        }
    }
    if (!out_path) { cli_error("dam masks needs -o FILE.svg"); return EXIT_USAGE; }
    if (!all && (layer < 0 || head < 0)) { cli_error("dam masks needs --layer L --head H, or --all"); return EXIT_USAGE; }
    if (n_files && ma.attn_opts.dam.profile[0]) { cli_error("give either --dam-profile or -f, not both"); return EXIT_USAGE; }
    if (model_args_finish(&ma)) return EXIT_USAGE;
    if (check_output_path("-o", out_path)) return EXIT_ERROR;
    model_args_warn_unused(&ma, "dam");

    int rc = EXIT_ERROR;
    struct model *m = NULL;
    struct tokenizer *tok = NULL;
    struct dam_profile *p = NULL;
    char *texts[MAX_FILES] = { 0 };
    struct buf b = { 0 };
    char dir[PATH_MAX];
    if (model_resolve_dir(ma.model, dir, sizeof dir)) goto fail;
    struct model_config cfg;
    if (config_load(dir, &cfg)) goto fail;
    if (!ma.attn_opts.dam.profile[0] && check_pcl(ma.attn_opts.dam.pcl, &cfg)) goto fail;
    if (ma.attn_opts.dam.profile[0]) {
        if (!(p = dam_profile_load(ma.attn_opts.dam.profile))) goto fail;
        if (dam_profile_check_geometry(p, cfg.n_layers, cfg.n_heads, cfg.n_kv_heads, cfg.head_dim,
                                       ma.attn_opts.dam.profile))
            goto fail;
    } else if (n_files) {
        if (!(m = model_args_load(&ma, dir)) || !(tok = tokenizer_load(dir))) goto fail;
        for (int i = 0; i < n_files; i++) {
            size_t tl;
            if (!(texts[i] = read_input(files[i], &tl)) || text_check(files[i], texts[i], tl)) goto fail;
        }
        if (!(p = dam_calibrate_texts(m, tok, (const char *const *)texts, n_files, &ma.attn_opts,
                                      files[0], 0, 0)))
            goto fail;
    } else {
        if (!(m = model_load(dir))) goto fail;
        if (!(p = dam_auto_profile(m, NULL, &ma.attn_opts, NULL, 0))) goto fail;
    }
    if (!all && (layer >= p->n_layers || head >= p->n_heads)) {
        dam_fail("no head (%d, %d): the model has %d layers of %d heads", layer, head, p->n_layers, p->n_heads);
        goto fail;
    }
    int ctx = ma.n_ctx ? ma.n_ctx : cfg.max_seq_len;
    if (!len) len = 2 * p->params.pcl;
    if (len > ctx) len = ctx;
    const int max_cells = all ? MAX_CELLS_ALL : MAX_CELLS_ONE;
    const int block = (len + max_cells - 1) / max_cells;      /* positions a cell, a side */
    put(&b, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    if (all) {
        double px = 160.0 / len, panel = len * px, gap = 26;
        if (px > 4) px = 4, panel = len * px;
        double w = p->n_heads * (panel + gap) + gap, h = p->n_layers * (panel + gap) + gap + 78;
        put(&b, "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%.0f\" height=\"%.0f\" viewBox=\"0 0 %.0f %.0f\">\n",
            w < 760 ? 760 : w, h, w < 760 ? 760 : w, h);
        put(&b, "<rect width=\"100%%\" height=\"100%%\" fill=\"#ffffff\"/>\n");
        for (int l = 0; l < p->n_layers; l++)
            for (int hh = 0; hh < p->n_heads; hh++)
                if (draw_head(&b, p, l, hh, len, block, gap + hh * (panel + gap), gap + l * (panel + gap), px, 0))
                    goto fail;
        legend(&b, gap, p->n_layers * (panel + gap) + gap, p, block);
    } else {
        double px = 640.0 / len;
        if (px > 8) px = 8;
        double panel = len * px, w = panel + 60 > 760 ? panel + 60 : 760, h = panel + 148;
        put(&b, "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%.0f\" height=\"%.0f\" viewBox=\"0 0 %.0f %.0f\">\n",
            w, h, w, h);
        put(&b, "<rect width=\"100%%\" height=\"100%%\" fill=\"#ffffff\"/>\n");
        if (draw_head(&b, p, layer, head, len, block, 30, 24, px, 1)) goto fail;
        legend(&b, 30, panel + 66, p, block);
    }
    put(&b, "</svg>\n");
    if (b.failed) { dam_fail("out of memory drawing the SVG"); goto fail; }
    if (output_write(out_path, b.p, b.len)) goto fail;
    fprintf(stderr, "dam masks: wrote %s, %.1f KiB", output_is_stdout(out_path) ? "stdout" : out_path, b.len / 1024.0);
    if (block > 1) fprintf(stderr, " (%d positions drawn as %d x %d cells of %d x %d)", len, (len + block - 1) / block,
                           (len + block - 1) / block, block, block);
    fprintf(stderr, "\n");
    rc = EXIT_OK;
    goto done;
fail:
    cli_error("%s", dam_last_error());
done:
    free(b.p);
    for (int i = 0; i < n_files; i++) free(texts[i]);
    dam_profile_free(p);
    tokenizer_free(tok);
    model_free(m);
    return rc;
}
