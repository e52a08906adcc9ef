/* niah_output.c — the results of a grid and what is made of them: JSON
 * lines (one per sample), the summary table, a CSV of the grid, and an SVG
 * heatmap. Each writer returns a heap string; the caller writes it (the CLI
 * atomically, so a file is either whole or absent). */
#include "dam/niah.h"
#include "dam/common.h"
#include "niah_internal.h"
#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- results ---- */

int niah_run_add(struct niah_run *run, const struct niah_result *r) {
    if (run->n_results == run->cap_results) {
        int cap = run->cap_results ? run->cap_results * 2 : 64;
        struct niah_result *grown = realloc(run->results, (size_t)cap * sizeof *grown);
        if (!grown) return dam_fail("out of memory");
        run->results = grown;
        run->cap_results = cap;
    }
    struct niah_result *c = &run->results[run->n_results];
    *c = *r;
    c->expected = strdup(r->expected ? r->expected : "");
    c->output = strdup(r->output ? r->output : "");
    if (!c->expected || !c->output) {
        free(c->expected); free(c->output);
        return dam_fail("out of memory");
    }
    run->n_results++;
    return 0;
}

void niah_run_free_results(struct niah_run *run) {
    for (int i = 0; i < run->n_results; i++) {
        free(run->results[i].expected);
        free(run->results[i].output);
    }
    free(run->results);
    run->results = NULL;
    run->n_results = run->cap_results = 0;
}

static int cell_index(const struct niah_run *run, int attn, int length, int depth) {
    return (attn * run->n_lengths + length) * run->n_depths + depth;
}

void niah_cells(const struct niah_run *run, struct niah_cell *cells) {
    int n = run->n_attn * run->n_lengths * run->n_depths;
    memset(cells, 0, (size_t)n * sizeof *cells);
    for (int i = 0; i < run->n_results; i++) {
        const struct niah_result *r = &run->results[i];
        if (r->attn < 0 || r->attn >= run->n_attn || r->length_index < 0 || r->length_index >= run->n_lengths
            || r->depth_index < 0 || r->depth_index >= run->n_depths) continue;
        struct niah_cell *c = &cells[cell_index(run, r->attn, r->length_index, r->depth_index)];
        c->n++;
        c->correct += r->correct != 0;
        c->prompt_tokens += r->prompt_tokens;
        c->prefill_ms += r->prefill_ms;
        c->decode_ms += r->decode_ms;
    }
    for (int i = 0; i < n; i++) {
        if (!cells[i].n) continue;
        cells[i].prompt_tokens /= cells[i].n;
        cells[i].prefill_ms /= cells[i].n;
        cells[i].decode_ms /= cells[i].n;
    }
}

static struct niah_cell *grid_cells(const struct niah_run *run) {
    struct niah_cell *cells = xcalloc((size_t)run->n_attn * run->n_lengths * run->n_depths + 1,
                                      sizeof *cells, "grid cells");
    if (cells) niah_cells(run, cells);
    return cells;
}

/* ---- JSON lines ---- */

static double round_ms(double ms) { return round(ms * 1000) / 1000; }

double niah_json_depth(float depth) { return round(depth * 1e6) / 1e6; }

char *niah_result_json(const struct niah_run *run, const struct niah_result *r) {
    cJSON *j = cJSON_CreateObject();
    if (!j) { dam_fail("out of memory"); return NULL; }
    cJSON_AddStringToObject(j, "task", niah_task_name(run->task));
    cJSON_AddNumberToObject(j, "length", run->lengths[r->length_index]);
    cJSON_AddNumberToObject(j, "depth", niah_json_depth(run->depths[r->depth_index]));
    cJSON_AddNumberToObject(j, "seed", (double)r->seed);
    cJSON_AddNumberToObject(j, "sample", r->sample);
    cJSON_AddStringToObject(j, "attn", run->attn[r->attn]);
    cJSON_AddStringToObject(j, "expected", r->expected);
    cJSON_AddStringToObject(j, "output", r->output);
    cJSON_AddBoolToObject(j, "correct", r->correct != 0);
    cJSON_AddNumberToObject(j, "prompt_tokens", r->prompt_tokens);
    cJSON_AddNumberToObject(j, "output_tokens", r->output_tokens);
    cJSON_AddNumberToObject(j, "needle_depth", round(r->needle_depth * 1e4) / 1e4);
    cJSON_AddNumberToObject(j, "sparsity", round(r->sparsity * 1e4) / 1e4);
    cJSON_AddNumberToObject(j, "kv_bytes", r->kv_bytes);
    cJSON_AddNumberToObject(j, "prefill_ms", round_ms(r->prefill_ms));
    cJSON_AddNumberToObject(j, "decode_ms", round_ms(r->decode_ms));
    if (run->model) cJSON_AddStringToObject(j, "model", run->model);
    if (run->grid) {
        cJSON *grid = niah_grid_json(run);
        if (!grid) { cJSON_Delete(j); return NULL; }
        cJSON_AddItemToObject(j, "grid", grid);
    }
    if (run->shard_count) {
        char shard[32];
        snprintf(shard, sizeof shard, "%d/%d", run->shard_index, run->shard_count);
        cJSON_AddStringToObject(j, "shard", shard);
    }
    char *text = cJSON_PrintUnformatted(j);
    cJSON_Delete(j);
    if (!text) dam_fail("out of memory");
    return text;
}

char *niah_jsonl(const struct niah_run *run) {
    struct sbuf b = { 0 };
    for (int i = 0; i < run->n_results; i++) {
        char *line = niah_result_json(run, &run->results[i]);
        if (!line) { sbuf_free(&b); return NULL; }
        sbuf_puts(&b, line);
        sbuf_puts(&b, "\n");
        free(line);
    }
    return sbuf_take(&b);
}

/* ---- CSV ---- */

char *niah_csv(const struct niah_run *run) {
    struct niah_cell *cells = grid_cells(run);
    if (!cells) return NULL;
    struct sbuf b = { 0 };
    sbuf_puts(&b, "task,attn,length,depth,samples,correct,accuracy,prompt_tokens,prefill_ms,decode_ms\n");
    for (int a = 0; a < run->n_attn; a++)
        for (int l = 0; l < run->n_lengths; l++)
            for (int d = 0; d < run->n_depths; d++) {
                const struct niah_cell *c = &cells[cell_index(run, a, l, d)];
                sbuf_printf(&b, "%s,%s,%d,%g,%d,%d,", niah_task_name(run->task), run->attn[a],
                            run->lengths[l], (double)run->depths[d], c->n, c->correct);
                if (c->n) sbuf_printf(&b, "%.4f,%.1f,%.3f,%.3f\n", (double)c->correct / c->n,
                                      c->prompt_tokens, c->prefill_ms, c->decode_ms);
                else sbuf_puts(&b, ",,,\n");
            }
    free(cells);
    return sbuf_take(&b);
}

/* ---- summary table ---- */

void niah_print_summary(FILE *out, const struct niah_run *run) {
    struct niah_cell *cells = grid_cells(run);
    if (!cells) return;
    fprintf(out, "niah %s: %d sample%s per cell%s%s", niah_task_name(run->task), run->samples,
            run->samples == 1 ? "" : "s", run->model ? ", model " : "", run->model ? run->model : "");
    if (run->shard_count) fprintf(out, ", shard %d/%d", run->shard_index, run->shard_count);
    fprintf(out, "\n");
    fprintf(out, "%-10s %7s %6s %9s %9s %8s %11s %10s\n", "attn", "length", "depth", "correct",
            "accuracy", "tokens", "prefill_ms", "decode_ms");
    for (int a = 0; a < run->n_attn; a++) {
        int n = 0, correct = 0;
        for (int l = 0; l < run->n_lengths; l++)
            for (int d = 0; d < run->n_depths; d++) {
                const struct niah_cell *c = &cells[cell_index(run, a, l, d)];
                char frac[32], len[16];
                niah_format_length(run->lengths[l], len, sizeof len);
                snprintf(frac, sizeof frac, "%d/%d", c->correct, c->n);
                if (c->n)
                    fprintf(out, "%-10s %7s %6.2f %9s %8.1f%% %8.0f %11.1f %10.1f\n", run->attn[a], len,
                            (double)run->depths[d], frac, 100.0 * c->correct / c->n, c->prompt_tokens,
                            c->prefill_ms, c->decode_ms);
                else
                    fprintf(out, "%-10s %7s %6.2f %9s %9s\n", run->attn[a], len, (double)run->depths[d],
                            frac, "-");
                n += c->n;
                correct += c->correct;
            }
        char frac[32];
        snprintf(frac, sizeof frac, "%d/%d", correct, n);
        fprintf(out, "%-10s %7s %6s %9s %8.1f%%\n", run->attn[a], "all", "", frac,
                n ? 100.0 * correct / n : 0.0);
    }
    free(cells);
}

/* ---- SVG heatmap ---- */

/* Accuracy 0..1 -> red, yellow, green (ColorBrewer RdYlGn ends); *dark
 * tells whether white text reads better on it than black. */
static void accuracy_colour(double acc, char *buf, size_t size, int *dark) {
    static const double stops[3][3] = { { 215, 48, 39 }, { 254, 224, 139 }, { 26, 152, 80 } };
    if (acc < 0) acc = 0;
    if (acc > 1) acc = 1;
    int i = acc < 0.5 ? 0 : 1;
    double t = (acc - 0.5 * i) / 0.5;
    int rgb[3];
    for (int k = 0; k < 3; k++) rgb[k] = (int)lround(stops[i][k] + t * (stops[i + 1][k] - stops[i][k]));
    snprintf(buf, size, "#%02x%02x%02x", rgb[0], rgb[1], rgb[2]);
    *dark = 0.299 * rgb[0] + 0.587 * rgb[1] + 0.114 * rgb[2] < 140;
}

#define CELL_W 64
#define CELL_H 30
#define MARGIN_LEFT 80
#define MARGIN_TOP 78
#define PANEL_GAP 60
#define LEGEND_W 18

char *niah_svg(const struct niah_run *run) {
    struct niah_cell *cells = grid_cells(run);
    if (!cells) return NULL;
    int panel_w = run->n_lengths * CELL_W, panel_h = run->n_depths * CELL_H;
    int legend_h = panel_h < 120 ? 120 : panel_h;
    int legend_x = MARGIN_LEFT + run->n_attn * (panel_w + PANEL_GAP);
    int width = legend_x + LEGEND_W + 60;
    int height = MARGIN_TOP + (legend_h > panel_h ? legend_h : panel_h) + 60;
    int title_w = 460;
    if (width < title_w) width = title_w;
    struct sbuf b = { 0 };
    sbuf_printf(&b, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
                "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" viewBox=\"0 0 %d %d\" "
                "font-family=\"sans-serif\" font-size=\"12\">\n", width, height, width, height);
    sbuf_puts(&b, "<defs><linearGradient id=\"accuracy\" x1=\"0\" y1=\"1\" x2=\"0\" y2=\"0\">"
                  "<stop offset=\"0%\" stop-color=\"#d73027\"/><stop offset=\"50%\" stop-color=\"#fee08b\"/>"
                  "<stop offset=\"100%\" stop-color=\"#1a9850\"/></linearGradient></defs>\n");
    sbuf_puts(&b, "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n");
    sbuf_printf(&b, "<text x=\"%d\" y=\"22\" font-size=\"16\" font-weight=\"bold\">dam niah: %s",
                MARGIN_LEFT, niah_task_name(run->task));
    if (run->model) { sbuf_puts(&b, " \xe2\x80\x94 "); sbuf_xml(&b, run->model); }
    sbuf_printf(&b, "</text>\n<text x=\"%d\" y=\"40\" fill=\"#555\">accuracy by prompt length and needle "
                "depth, %d sample%s per cell", MARGIN_LEFT, run->samples, run->samples == 1 ? "" : "s");
    if (run->shard_count) sbuf_printf(&b, ", shard %d/%d", run->shard_index, run->shard_count);
    sbuf_puts(&b, "</text>\n");

    for (int a = 0; a < run->n_attn; a++) {
        int x0 = MARGIN_LEFT + a * (panel_w + PANEL_GAP), y0 = MARGIN_TOP;
        int n = 0, correct = 0;
        for (int i = 0; i < run->n_lengths * run->n_depths; i++) {
            n += cells[a * run->n_lengths * run->n_depths + i].n;
            correct += cells[a * run->n_lengths * run->n_depths + i].correct;
        }
        sbuf_printf(&b, "<g class=\"panel\" data-attn=\"");
        sbuf_xml(&b, run->attn[a]);
        sbuf_printf(&b, "\">\n<text x=\"%d\" y=\"%d\" font-size=\"14\" font-weight=\"bold\">", x0, y0 - 12);
        sbuf_xml(&b, run->attn[a]);
        if (n) sbuf_printf(&b, " (%.0f%%)", 100.0 * correct / n);
        sbuf_puts(&b, "</text>\n");
        for (int l = 0; l < run->n_lengths; l++)
            for (int d = 0; d < run->n_depths; d++) {
                const struct niah_cell *c = &cells[cell_index(run, a, l, d)];
                char fill[16], len[16], label[16];
                niah_format_length(run->lengths[l], len, sizeof len);
                double acc = c->n ? (double)c->correct / c->n : -1;
                int dark = 0;
                if (c->n) accuracy_colour(acc, fill, sizeof fill, &dark);
                else snprintf(fill, sizeof fill, "#dddddd");
                int x = x0 + l * CELL_W, y = y0 + d * CELL_H;
                sbuf_printf(&b, "<rect class=\"cell\" x=\"%d\" y=\"%d\" width=\"%d\" height=\"%d\" fill=\"%s\" "
                            "stroke=\"white\" data-length=\"%d\" data-depth=\"%g\" data-samples=\"%d\"",
                            x, y, CELL_W, CELL_H, fill, run->lengths[l], (double)run->depths[d], c->n);
                if (c->n) sbuf_printf(&b, " data-accuracy=\"%.4f\"", acc);
                sbuf_printf(&b, "><title>");
                sbuf_xml(&b, run->attn[a]);
                sbuf_printf(&b, ", length %d, depth %g: %d/%d correct</title></rect>\n", run->lengths[l],
                            (double)run->depths[d], c->correct, c->n);
                if (c->n) snprintf(label, sizeof label, "%.0f", 100 * acc);
                else snprintf(label, sizeof label, "-");
                sbuf_printf(&b, "<text x=\"%d\" y=\"%d\" text-anchor=\"middle\" dominant-baseline=\"central\" "
                            "font-size=\"11\" fill=\"%s\">%s</text>\n", x + CELL_W / 2, y + CELL_H / 2,
                            dark ? "white" : "black", label);
            }
        for (int l = 0; l < run->n_lengths; l++) {
            char len[16];
            niah_format_length(run->lengths[l], len, sizeof len);
            sbuf_printf(&b, "<text x=\"%d\" y=\"%d\" text-anchor=\"middle\">%s</text>\n",
                        x0 + l * CELL_W + CELL_W / 2, y0 + panel_h + 16, len);
        }
        for (int d = 0; d < run->n_depths; d++)
            sbuf_printf(&b, "<text x=\"%d\" y=\"%d\" text-anchor=\"end\" dominant-baseline=\"central\">%g%%</text>\n",
                        x0 - 6, y0 + d * CELL_H + CELL_H / 2, 100.0 * run->depths[d]);
        sbuf_printf(&b, "<text x=\"%d\" y=\"%d\" text-anchor=\"middle\" fill=\"#555\">prompt length (tokens)</text>\n",
                    x0 + panel_w / 2, y0 + panel_h + 36);
        sbuf_puts(&b, "</g>\n");
    }
    sbuf_printf(&b, "<text transform=\"translate(%d,%d) rotate(-90)\" text-anchor=\"middle\" fill=\"#555\">"
                "needle depth</text>\n", 22, MARGIN_TOP + panel_h / 2);
    /* the legend: the colour scale with its ends and middle */
    sbuf_printf(&b, "<g class=\"legend\">\n<rect x=\"%d\" y=\"%d\" width=\"%d\" height=\"%d\" fill=\"url(#accuracy)\" "
                "stroke=\"#999\"/>\n", legend_x, MARGIN_TOP, LEGEND_W, legend_h);
    for (int k = 0; k <= 2; k++)
        sbuf_printf(&b, "<text x=\"%d\" y=\"%d\" dominant-baseline=\"central\">%d%%</text>\n",
                    legend_x + LEGEND_W + 5, MARGIN_TOP + legend_h - k * legend_h / 2, 50 * k);
    sbuf_printf(&b, "<text x=\"%d\" y=\"%d\" fill=\"#555\">accuracy</text>\n</g>\n", legend_x - 8, MARGIN_TOP - 12);
    sbuf_puts(&b, "</svg>\n");
    free(cells);
    return sbuf_take(&b);
}
