/* dam_mask.c — DAM's extended masks as runs: the diagonal offsets R and
 * columns C a profile head matched, compressed into runs of consecutive
 * values, and the kept keys of any row i as disjoint ascending ranges
 * ([i - hi, i - lo] of R merged with [lo, min(hi, i)] of C). This is the
 * mask of the method itself (what `dam masks` draws); the engine runs
 * block plans derived from the same patterns (dam_plan.c). */
#include "dam/dam.h"
#include "dam/common.h"
#include <limits.h>
#include <stdlib.h>
#include <string.h>

static int cmp_int(const void *a, const void *b) {
    int x = *(const int *)a, y = *(const int *)b;
    return (x > y) - (x < y);
}

/* Sorts v and writes its runs of consecutive values as (lo, hi) pairs into
 * runs (room for 2n ints); returns the number of runs. */
static int compress_runs(int *v, int n, int *runs) {
    qsort(v, (size_t)n, sizeof *v, cmp_int);
    int r = 0;
    for (int i = 0; i < n; i++) {
        if (r > 0 && v[i] <= runs[2 * r - 1] + 1) {
            if (v[i] > runs[2 * r - 1]) runs[2 * r - 1] = v[i];
        } else {
            runs[2 * r] = runs[2 * r + 1] = v[i];
            r++;
        }
    }
    return r;
}

void dam_mask_full(struct dam_mask *m) {
    memset(m, 0, sizeof *m);
    m->full = 1;
}

void dam_mask_free(struct dam_mask *m) {
    free(m->diag);
    free(m->col);
    memset(m, 0, sizeof *m);
}

int dam_mask_build(struct dam_mask *m, const int *offsets, int n_offsets,
                   const int *columns, int n_columns) {
    memset(m, 0, sizeof *m);
    int *off = xmalloc(((size_t)n_offsets + 1) * sizeof *off, "mask offsets");
    int *col = xmalloc(((size_t)n_columns + 1) * sizeof *col, "mask columns");
    m->diag = xmalloc(2 * ((size_t)n_offsets + 1) * sizeof *m->diag, "mask runs");
    m->col = xmalloc(2 * ((size_t)n_columns + 1) * sizeof *m->col, "mask runs");
    if (!off || !col || !m->diag || !m->col) { free(off); free(col); dam_mask_free(m); return -1; }
    off[0] = 0;                                 /* a row always keeps itself */
    for (int i = 0; i < n_offsets; i++) off[i + 1] = offsets[i] < 0 ? 0 : offsets[i];
    int nc = 0;
    for (int i = 0; i < n_columns; i++) if (columns[i] >= 0) col[nc++] = columns[i];
    m->n_diag = compress_runs(off, n_offsets + 1, m->diag);
    m->n_col = compress_runs(col, nc, m->col);
    free(off);
    free(col);
    return 0;
}

int dam_mask_for_head(struct dam_mask *m, const struct dam_head *h, const struct dam_params *p) {
    if (h->fallback == DAM_FALLBACK_FULL) { dam_mask_full(m); return 0; }
    if (h->fallback == DAM_FALLBACK_NONE)
        return dam_mask_build(m, h->offsets, h->n_offsets, h->columns, h->n_columns);
    /* window fallback: the head's patterns plus sinks plus a recent window */
    int w = p->fallback_window, s = p->fallback_sinks;
    int *off = xmalloc(((size_t)h->n_offsets + w) * sizeof *off, "mask offsets");
    int *col = xmalloc(((size_t)h->n_columns + s + 1) * sizeof *col, "mask columns");
    if (!off || !col) { free(off); free(col); return -1; }
    memcpy(off, h->offsets, (size_t)h->n_offsets * sizeof *off);
    for (int r = 0; r < w; r++) off[h->n_offsets + r] = r;
    memcpy(col, h->columns, (size_t)h->n_columns * sizeof *col);
    for (int c = 0; c < s; c++) col[h->n_columns + c] = c;
    int rc = dam_mask_build(m, off, h->n_offsets + w, col, h->n_columns + s);
    free(off);
    free(col);
    return rc;
}

int dam_mask_max_offset(const struct dam_mask *m) {
    if (m->full) return INT_MAX;
    return m->n_diag ? m->diag[2 * (m->n_diag - 1) + 1] : 0;
}

int dam_mask_row_runs(const struct dam_mask *m, int i, int *runs) {
    if (m->full) { runs[0] = 0; runs[1] = i; return 1; }
    /* Diagonal runs with larger offsets give smaller keys: walk them from the
     * last, columns from the first, and merge the two ascending streams. */
    int n = 0, d = m->n_diag - 1, c = 0;
    while (d >= 0 && m->diag[2 * d] > i) d--;          /* entirely before key 0 */
    for (;;) {
        int has_d = d >= 0, has_c = c < m->n_col && m->col[2 * c] <= i;
        if (!has_d && !has_c) break;
        int da = INT_MAX, ca = INT_MAX, a, b;
        if (has_d) { da = i - m->diag[2 * d + 1]; if (da < 0) da = 0; }
        if (has_c) ca = m->col[2 * c];
        if (da <= ca) { a = da; b = i - m->diag[2 * d]; d--; }
        else { a = ca; b = m->col[2 * c + 1] < i ? m->col[2 * c + 1] : i; c++; }
        if (n > 0 && a <= runs[2 * n - 1] + 1) {
            if (b > runs[2 * n - 1]) runs[2 * n - 1] = b;
        } else {
            runs[2 * n] = a; runs[2 * n + 1] = b; n++;
        }
    }
    return n;
}
