/* dam_reach.c — how far each head reaches, measured, and the budget split
 * across heads from it.
 *
 * DAM's patterns are captured inside PCL (a few hundred positions); they say
 * nothing of what a head does 5,000 positions back. The reach capture runs
 * full attention over long calibration sequences and records, per (layer,
 * head), the share of its attention mass that a plan of the engine keeps,
 * for a grid of plans: a recent window of W positions (plus the sink block)
 * and the k blocks the query-aware selection picks among the others, ranked
 * exactly as the engine ranks them (tile-summed Quest bounds). So
 * kept(h, W, k) is the mean mass head h keeps under that plan, on rows past
 * `min_row`.
 *
 * Allocation: given a budget of B keys per row per head on average, every
 * head takes the grid plan maximising kept - lambda * cost (cost = keys per
 * row: sinks + W + 16 k), lambda found by bisection so that the total cost
 * fits H * B. This is the Lagrangian relaxation of "keep the most mass for
 * B keys a row", optimal on the convex hull of each head's curve: heads
 * whose attention is local get small windows, heads that reach far get wide
 * windows or selection, and every head keeps at least `min_select` selected
 * blocks, so a question can always reach its needle. */
#include "dam/dam.h"
#include "dam/common.h"
#include "dam/kernels.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>

const int dam_reach_windows[DAM_REACH_W] = { 16, 32, 64, 128, 256, 512, 1024, 2048, 4096 };
const int dam_reach_blocks[DAM_REACH_K] = { 0, 1, 2, 4, 8, 16, 32, 64 };

struct dam_reach *dam_reach_new(int n_layers, int n_heads, int min_row) {
    struct dam_reach *r = xcalloc(1, sizeof *r, "reach capture");
    if (!r) return NULL;
    r->n_layers = n_layers;
    r->n_heads = n_heads;
    r->min_row = min_row;
    const size_t cells = (size_t)n_layers * n_heads * DAM_REACH_W * DAM_REACH_K;
    r->kept = xcalloc(cells, sizeof *r->kept, "reach capture");
    r->err = xcalloc(cells, sizeof *r->err, "reach capture");
    r->rows = xcalloc((size_t)n_layers, sizeof *r->rows, "reach capture");
    r->gain = xcalloc((size_t)n_layers * n_heads, sizeof *r->gain, "reach capture");
    if (!r->kept || !r->err || !r->rows || !r->gain) { dam_reach_free(r); return NULL; }
    for (int h = 0; h < n_layers * n_heads; h++) r->gain[h] = 1;
    return r;
}

void dam_reach_free(struct dam_reach *r) {
    if (!r) return;
    free(r->kept);
    free(r->err);
    free(r->rows);
    free(r->gain);
    free(r);
}

static int cmp_score_desc(const void *a, const void *b, void *ctx) {
    const float *s = ctx;
    const float x = s[*(const int *)a], y = s[*(const int *)b];
    return (x < y) - (x > y);
}

/* Adds ||a / ma - full||^2 for the plan's kept part (sum of p v: a, mass: ma). */
static double plan_error(const float *a, double ma, const float *full, int hd) {
    double e = 0;
    const float inv = ma > 0 ? (float)(1.0 / ma) : 0;
    for (int d = 0; d < hd; d++) { const float x = a[d] * inv - full[d]; e += (double)x * x; }
    return e;
}

void dam_reach_add_tile(struct dam_reach *r, int layer, int head, int i0, int rows, const float *p,
                        size_t ld, const float *bound, const struct kv_block *blocks, int hd,
                        struct dam_reach_scratch *sc) {
    if (i0 < r->min_row) return;
    const int first = i0 / KV_BLOCK;                  /* blocks [1, first): candidates */
    int *order = sc->order, n_cand = 0;
    for (int b = 1; b < first; b++) order[n_cand++] = b;
    qsort_r(order, (size_t)n_cand, sizeof *order, cmp_score_desc, (void *)bound);
    const size_t cell = ((size_t)layer * r->n_heads + head) * DAM_REACH_W * DAM_REACH_K;
    double *kept = r->kept + cell, *err = r->err + cell;
    float *acc = sc->acc;
    for (int row = (DAM_REACH_ROW_STEP - i0 % DAM_REACH_ROW_STEP) % DAM_REACH_ROW_STEP; row < rows;
         row += DAM_REACH_ROW_STEP) {                /* positions that are multiples of the step */
        const int i = i0 + row, nb = i / KV_BLOCK + 1;
        const float *pr = p + (size_t)row * ld;
        /* per block: mass bm[b] and p-weighted value sum bv[b]; then suffix sums */
        for (int b = 0; b < nb; b++) {
            float m = 0, *bv = sc->bv + (size_t)b * hd;
            memset(bv, 0, (size_t)hd * sizeof *bv);
            for (int j = 0; j < KV_BLOCK && b * KV_BLOCK + j <= i; j++) {
                const float pj = pr[b * KV_BLOCK + j], *v = (const float *)blocks[b].v + (size_t)j * hd;
                m += pj;
                for (int d = 0; d < hd; d++) bv[d] += pj * v[d];
            }
            sc->bm[b] = m;
        }
        float *suf = sc->suf;                          /* suf[b] = sum of bv[b' >= b] */
        memcpy(suf + (size_t)(nb - 1) * hd, sc->bv + (size_t)(nb - 1) * hd, (size_t)hd * sizeof *suf);
        double *sufm = sc->sufm;
        sufm[nb - 1] = sc->bm[nb - 1];
        for (int b = nb - 2; b >= 0; b--) {
            for (int d = 0; d < hd; d++) suf[(size_t)b * hd + d] = suf[(size_t)(b + 1) * hd + d] + sc->bv[(size_t)b * hd + d];
            sufm[b] = sufm[b + 1] + sc->bm[b];
        }
        const float *full = suf;                       /* every block */
        for (int w = 0; w < DAM_REACH_W; w++) {
            int wb = i0 / KV_BLOCK - dam_window_blocks(dam_reach_windows[w]);
            if (wb < 1) wb = 1;
            double mass = sc->bm[0] + (wb < nb ? sufm[wb] : 0);
            for (int d = 0; d < hd; d++) acc[d] = sc->bv[d] + (wb < nb ? suf[(size_t)wb * hd + d] : 0);
            int taken = 0, k = 0;
            for (int c = 0; k < DAM_REACH_K; ) {
                if (taken == dam_reach_blocks[k] || c >= n_cand) {
                    kept[w * DAM_REACH_K + k] += mass;
                    err[w * DAM_REACH_K + k] += plan_error(acc, mass, full, hd);
                    k++;
                    continue;
                }
                const int b = order[c++];
                if (b >= wb) continue;                 /* inside the window already */
                mass += sc->bm[b];
                for (int d = 0; d < hd; d++) acc[d] += sc->bv[(size_t)b * hd + d];
                taken++;
            }
        }
        if (head == 0) r->rows[layer] += 1;
    }
}

/* Keys a row keeps under grid plan (w, k) on average: the sink block, the
 * window's blocks, half its own block, the selected blocks. */
static double plan_cost(int w, int k) {
    return KV_BLOCK * (1.5 + dam_window_blocks(dam_reach_windows[w]) + dam_reach_blocks[k]);
}

/* Each head's best plan at price lambda; returns the total cost. */
static double choose(const struct dam_reach *r, double lambda, int min_k, int *best_w, int *best_k) {
    double total = 0;
    for (int h = 0; h < r->n_layers * r->n_heads; h++) {
        const double rows = r->rows[h / r->n_heads];
        const double *err = r->err + (size_t)h * DAM_REACH_W * DAM_REACH_K;
        const double g = r->gain ? r->gain[h] : 1;
        double best = -INFINITY;
        for (int w = 0; w < DAM_REACH_W; w++)
            for (int k = min_k; k < DAM_REACH_K; k++) {
                const double v = -(rows > 0 ? g * err[w * DAM_REACH_K + k] / rows : 0) - lambda * plan_cost(w, k);
                if (v > best) { best = v; best_w[h] = w; best_k[h] = k; }
            }
        total += plan_cost(best_w[h], best_k[h]);
    }
    return total;
}

int dam_reach_scratch_init(struct dam_reach_scratch *s, int max_blocks, int hd) {
    memset(s, 0, sizeof *s);
    s->order = xmalloc((size_t)max_blocks * sizeof *s->order, "reach scratch");
    s->bm = xmalloc((size_t)max_blocks * sizeof *s->bm, "reach scratch");
    s->sufm = xmalloc((size_t)max_blocks * sizeof *s->sufm, "reach scratch");
    s->bv = xmalloc((size_t)max_blocks * hd * sizeof *s->bv, "reach scratch");
    s->suf = xmalloc((size_t)max_blocks * hd * sizeof *s->suf, "reach scratch");
    s->acc = xmalloc((size_t)hd * sizeof *s->acc, "reach scratch");
    if (!s->order || !s->bm || !s->sufm || !s->bv || !s->suf || !s->acc) { dam_reach_scratch_free(s); return -1; }
    return 0;
}

void dam_reach_scratch_free(struct dam_reach_scratch *s) {
    free(s->order); free(s->bm); free(s->sufm); free(s->bv); free(s->suf); free(s->acc);
    memset(s, 0, sizeof *s);
}

int dam_reach_allocate(const struct dam_reach *r, int budget, int min_select, int *window, int *select) {
    const int n = r->n_layers * r->n_heads;
    int *bw = xmalloc((size_t)n * sizeof *bw, "reach allocation"), *bk = xmalloc((size_t)n * sizeof *bk, "reach allocation");
    if (!bw || !bk) { free(bw); free(bk); return -1; }
    int min_k = 0;
    while (min_k + 1 < DAM_REACH_K && dam_reach_blocks[min_k] < min_select) min_k++;
    const double target = (double)budget * n;
    /* lambda = 0 takes the most mass at any cost; raise it until the total fits */
    double lo = 0, hi = 1.0;
    if (choose(r, 0, min_k, bw, bk) > target) {
        while (choose(r, hi, min_k, bw, bk) > target && hi < 1e6) hi *= 2;
        for (int it = 0; it < 60; it++) {
            const double mid = (lo + hi) / 2;
            if (choose(r, mid, min_k, bw, bk) > target) lo = mid; else hi = mid;
        }
        choose(r, hi, min_k, bw, bk);
    }
    for (int h = 0; h < n; h++) {
        window[h] = dam_reach_windows[bw[h]];
        select[h] = dam_reach_blocks[bk[h]];
    }
    free(bw);
    free(bk);
    return 0;
}
