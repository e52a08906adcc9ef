/* fuzz_profile.c — libFuzzer entry point for the DAM profile reader
 * (dam_profile_parse: the JSON `dam calibrate` writes and --dam-profile reads).
 *
 * Rules checked, beyond "no crash, no leak, no UB":
 *   - a refusal says why;
 *   - an accepted profile keeps the invariants the attention engine relies
 *     on: each head's offsets ascending, unique, starting at 0, columns
 *     ascending and unique, everything non-negative;
 *   - it survives a round trip: once written and read back, writing and
 *     reading again gives the same text;
 *   - the masks of its heads build, and their row runs are ascending,
 *     disjoint and inside [0, i]. */
#include "dam/common.h"
#include "dam/dam.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define MAX_MASKED_HEADS 8   /* masks built per input: enough to reach every path, cheap */

static void check_head(const struct dam_head *h) {
    if (h->n_offsets < 1 || h->offsets[0] != 0 || h->n_columns < 0) abort();
    for (int i = 1; i < h->n_offsets; i++) if (h->offsets[i] <= h->offsets[i - 1]) abort();
    for (int i = 0; i < h->n_columns; i++)
        if (h->columns[i] < 0 || (i > 0 && h->columns[i] <= h->columns[i - 1])) abort();
}

static void check_mask(const struct dam_head *h, const struct dam_params *p) {
    struct dam_mask m;
    if (dam_mask_for_head(&m, h, p) != 0) {
        if (dam_last_error()[0] == 0) abort();
        return;
    }
    int *runs = malloc(2 * ((size_t)m.n_diag + m.n_col + 1) * sizeof *runs);
    if (!runs) abort();
    static const int rows[] = { 0, 1, 2, 7, 63, 64, 1000, 1 << 16, (1 << 24) + 3 };
    for (size_t r = 0; r < sizeof rows / sizeof rows[0]; r++) {
        int i = rows[r], n = dam_mask_row_runs(&m, i, runs);
        if (n < 1 || n > m.n_diag + m.n_col + 1) abort();
        for (int k = 0; k < n; k++) {
            if (runs[2 * k] < 0 || runs[2 * k] > runs[2 * k + 1] || runs[2 * k + 1] > i) abort();
            if (k > 0 && runs[2 * k] <= runs[2 * k - 1] + 1) abort();   /* disjoint, merged */
        }
        if (runs[2 * n - 1] != i) abort();                             /* a row keeps itself */
    }
    free(runs);
    dam_mask_free(&m);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    dam_fail("%s", "");
    struct dam_profile *p = dam_profile_parse((const char *)data, size, "fuzz.json");
    if (!p) {
        if (dam_last_error()[0] == 0) abort();    /* a refusal must say why */
        return 0;
    }
    int n = p->n_layers * p->n_heads;
    for (int i = 0; i < n; i++) check_head(&p->heads[i]);
    for (int i = 0; i < n && i < MAX_MASKED_HEADS; i++) check_mask(&p->heads[i], &p->params);
    if (dam_profile_check_geometry(p, p->n_layers, p->n_heads, p->n_kv_heads, p->head_dim, "fuzz") != 0) abort();
    if (dam_profile_check_geometry(p, p->n_layers + 1, p->n_heads, p->n_kv_heads, p->head_dim, "fuzz") == 0) abort();
    /* the plans the engine would run (the budget split when it has reach figures) */
    struct head_plan *plans = calloc((size_t)n, sizeof *plans);
    const struct dam_run_params rp = { .sinks = 16, .recent = 64, .select = 64, .select_heads = DAM_SELECT_ALL,
                                       .columns = 1, .budget = 256, .min_select = 2 };
    if (!plans) abort();
    if (dam_profile_plans(p, &rp, plans) == 0) {
        for (int i = 0; i < n; i++) {
            const struct head_plan *h = &plans[i];
            if (!h->dense && (h->window < 1 || h->select < 0 || h->sink_blocks < 0)) abort();
            for (int c = 0; c < h->n_cols; c++)
                if (h->cols[c] < h->sink_blocks || (c > 0 && h->cols[c] <= h->cols[c - 1])) abort();
        }
    } else if (dam_last_error()[0] == 0) {
        abort();
    }
    for (int i = 0; i < n; i++) head_plan_free(&plans[i]);
    free(plans);

    /* What we write we must read. Writing rounds the figures to 4 decimals
     * (and the summary is computed from them), so the text is stable from
     * the first profile that was read back: write(read(write(p))) is the
     * same text as write(p) once more. */
    char *text = dam_profile_to_json(p);
    if (!text) abort();
    struct dam_profile *q = dam_profile_parse(text, strlen(text), "fuzz.json (written back)");
    if (!q) abort();
    char *again = dam_profile_to_json(q);
    struct dam_profile *r = again ? dam_profile_parse(again, strlen(again), "fuzz.json (twice)") : NULL;
    char *third = r ? dam_profile_to_json(r) : NULL;
    if (!third || strcmp(again, third) != 0) abort();
    free(third);
    free(again);
    free(text);
    dam_profile_free(r);
    dam_profile_free(q);
    dam_profile_free(p);
    return 0;
}
