/* dam_select.c — the key blocks of a tile of query rows (dam_select.h).
 *
 * Why blocks: the KV store keeps keys in pages of 16 positions, and the
 * block kernel attends any list of pages at the dense kernel's speed, so a
 * mask made of whole blocks costs exactly the pairs it keeps. The rows of
 * a tile lie in one block of positions and share one list: a window of W
 * positions is the dam_window_blocks(W) blocks before the rows' own block,
 * plus that block up to each row (at least W positions for every row).
 *
 * Why the selection is per tile and not per row: Quest's bound of a block,
 * sum_d max(q_d kmax_d, q_d kmin_d) = q+ . kmax + q- . kmin, is linear in
 * (q+, q-), so the sum of the bounds of all the tile's rows costs one dot
 * product per block, as much as one row's. Ranking blocks by that sum keeps
 * the blocks the tile as a whole reaches for (in a prompt's question, the
 * needle), at 1/TILE of the per-row cost. */
#include "dam_select.h"
#include "dam/common.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>

int select_scratch_init(struct select_scratch *s, int max_blocks, int head_dim) {
    memset(s, 0, sizeof *s);
    s->blocks = xmalloc((size_t)max_blocks * sizeof *s->blocks, "attention scratch");
    s->ids = xmalloc((size_t)max_blocks * sizeof *s->ids, "attention scratch");
    s->scores = xmalloc((size_t)max_blocks * KB * sizeof *s->scores, "attention scratch");
    s->order = xmalloc((size_t)max_blocks * sizeof *s->order, "attention scratch");
    s->qpm = xmalloc(2 * (size_t)head_dim * sizeof *s->qpm, "attention scratch");
    s->kvf = xmalloc((size_t)KB * head_dim * sizeof *s->kvf, "attention scratch");
    if (!s->blocks || !s->ids || !s->scores || !s->order || !s->qpm || !s->kvf) {
        select_scratch_free(s);
        return -1;
    }
    return 0;
}

void select_scratch_free(struct select_scratch *s) {
    free(s->blocks); free(s->ids); free(s->scores); free(s->order); free(s->qpm); free(s->kvf);
    memset(s, 0, sizeof *s);
}

/* ---- top-k: quickselect on indices, then the chosen ids sorted ---- */

static int cmp_int(const void *a, const void *b) {
    int x = *(const int *)a, y = *(const int *)b;
    return (x > y) - (x < y);
}

int select_top(int *ids, const float *scores, int n, int want, int *order) {
    if (want >= n) return n;                         /* ids are already ascending */
    if (want <= 0) return 0;
    for (int i = 0; i < n; i++) order[i] = i;
    /* partition order[] so its first `want` entries hold the highest scores */
    int lo = 0, hi = n - 1;
    while (lo < hi) {
        const float pivot = scores[order[(lo + hi) / 2]];
        int i = lo, j = hi;
        while (i <= j) {
            while (scores[order[i]] > pivot) i++;
            while (scores[order[j]] < pivot) j--;
            if (i <= j) { int t = order[i]; order[i] = order[j]; order[j] = t; i++; j--; }
        }
        if (want - 1 <= j) hi = j;
        else if (want - 1 >= i) lo = i;
        else break;
    }
    for (int i = 0; i < want; i++) order[i] = ids[order[i]];
    qsort(order, (size_t)want, sizeof *order, cmp_int);
    memcpy(ids, order, (size_t)want * sizeof *ids);
    return want;
}

/* ---- the list of a tile ---- */

/* Appends block b to the list (-1 when the store dropped it). */
static inline int push(struct select_scratch *s, int *nb, const struct kv_store *kv, int b) {
    if (kv->page[b] < 0) return -1;
    s->blocks[(*nb)++] = kv_store_block(kv, b);
    return 0;
}

/* Pairs the rows i0 .. i1 keep in the listed blocks: a block entirely at or
 * before i0 gives KB to every row; the last ones are counted per row. */
static double kept_pairs(const struct kv_block *blocks, int nb, int i0, int i1) {
    double kept = 0;
    const int rows = i1 - i0 + 1;
    for (int b = 0; b < nb; b++) {
        const int pos = blocks[b].pos;
        if (pos + KB - 1 <= i0) { kept += (double)KB * rows; continue; }
        for (int i = i0; i <= i1; i++) {
            int n = i - pos + 1;
            kept += n <= 0 ? 0 : n > KB ? KB : n;
        }
    }
    return kept;
}

int select_blocks(struct select_scratch *s, const struct head_plan *plan, const struct kv_store *kv,
                  const float *q, size_t q_stride, int rows, int i0, struct select_figures *fig) {
    const int i1 = i0 + rows - 1, last = i1 / KB;
    int nb = 0;
    memset(fig, 0, sizeof *fig);
    if (plan->dense) {
        for (int b = 0; b <= last; b++)
            if (!(kv->evicted && kv->page[b] < 0) && push(s, &nb, kv, b)) return -1;
        fig->kept = kept_pairs(s->blocks, nb, i0, i1);
        return nb;
    }
    const int sb = plan->sink_blocks < last + 1 ? plan->sink_blocks : last + 1;
    int wb = i0 / KB - dam_window_blocks(plan->window);   /* the rows share one block */
    if (wb < sb) wb = sb;
    for (int b = 0; b < sb; b++) if (push(s, &nb, kv, b)) return -1;
    /* the blocks between the sinks and the window: columns, then candidates */
    int n_mid = 0, c = 0;
    while (c < plan->n_cols && plan->cols[c] < sb) c++;
    int *cand = s->ids, n_cand = 0;
    for (int b = sb; b < wb; b++) {
        while (c < plan->n_cols && plan->cols[c] < b) c++;
        if (c < plan->n_cols && plan->cols[c] == b) {
            s->order[n_mid++] = b;                       /* columns, kept apart for now */
            continue;
        }
        if (plan->select > 0 && !(kv->evicted && kv->page[b] < 0)) cand[n_cand++] = b;
    }
    int chosen = n_cand;
    if (plan->select > 0 && n_cand > plan->select) {
        const int hd = kv->hd;
        float *qpm = s->qpm;
        memset(qpm, 0, 2 * (size_t)hd * sizeof *qpm);
        for (int r = 0; r < rows; r++) {
            const float *qr = q + (size_t)r * q_stride;
            #pragma omp simd                              /* branch-free: q+ and q- of every lane */
            for (int d = 0; d < hd; d++) {
                qpm[d] += qr[d] > 0 ? qr[d] : 0.0f;
                qpm[hd + d] += qr[d] < 0 ? qr[d] : 0.0f;
            }
        }
        for (int i = 0; i < n_cand; i++) if (kv->page[cand[i]] < 0) return -1;
        /* bounds of every block between sinks and window (16 at a time), then the candidates' */
        float *range = s->scores + (size_t)n_cand;
        block_bounds(range, qpm, hd, kv->sums, sb, wb);
        for (int i = 0; i < n_cand; i++) s->scores[i] = range[cand[i] - sb];
        /* columns sit in order[0 .. n_mid); select_top needs its own scratch */
        int *tmp = s->order + n_mid;
        chosen = select_top(cand, s->scores, n_cand, plan->select, tmp);
    }
    fig->selected = (double)chosen * KB;
    fig->candidates = (double)n_cand * KB;
    /* merge columns (order[0 .. n_mid)) and chosen (cand[0 .. chosen)), both ascending */
    int a = 0, b = 0;
    while (a < n_mid || b < chosen) {
        int id = (b >= chosen || (a < n_mid && s->order[a] < cand[b])) ? s->order[a++] : cand[b++];
        if (push(s, &nb, kv, id)) return -1;
    }
    for (int blk = wb; blk <= last; blk++) if (push(s, &nb, kv, blk)) return -1;
    fig->kept = kept_pairs(s->blocks, nb, i0, i1);
    return nb;
}
