/* dam.c — the sparse attention engine and the `dam` attention module.
 *
 * Every (layer, head) runs an extended mask: diagonal offsets R and columns C,
 * both compressed into runs. For query row i the kept keys are the runs
 * [i - hi, i - lo] of R and [lo, min(hi, i)] of C, merged into disjoint
 * ascending key ranges; the kernel walks those ranges as contiguous memory, so
 * a kept pair costs what a dense pair costs, and a row costs what it keeps.
 *
 * The KV cache is kept per (layer, KV head) "group" (all query heads reading
 * that KV head): when every head of the group is windows plus columns, the
 * group keeps a ring of the last W = max offset + 1 positions plus the
 * columns; otherwise (a head attends fully) it keeps every position. This is
 * the GQA rule: a group keeps the union of what its query heads need.
 *
 * Capture: rows < PCL run full attention and add their probabilities to a
 * dam_capture. For --dam-capture prompt, each layer derives its masks as soon
 * as its row PCL-1 is done, and the rows after that run sparse. */
#include "dam/dam.h"
#include "dam/common.h"
#include "dam/kernels.h"
#include <limits.h>
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

extern const struct attn_module attn_dam, attn_window;

/* ---------------------------------------------------------------------------
 * Masks as runs */

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

static int mask_copy(struct dam_mask *dst, const struct dam_mask *src) {
    memset(dst, 0, sizeof *dst);
    dst->full = src->full;
    if (src->full) return 0;
    dst->n_diag = src->n_diag; dst->n_col = src->n_col;
    dst->diag = xmalloc(2 * ((size_t)src->n_diag + 1) * sizeof(int), "mask runs");
    dst->col = xmalloc(2 * ((size_t)src->n_col + 1) * sizeof(int), "mask runs");
    if (!dst->diag || !dst->col) { dam_mask_free(dst); return -1; }
    memcpy(dst->diag, src->diag, 2 * (size_t)src->n_diag * sizeof(int));
    memcpy(dst->col, src->col, 2 * (size_t)src->n_col * sizeof(int));
    return 0;
}

/* ---------------------------------------------------------------------------
 * The KV store of one (layer, KV head)
 *
 * Keys sit in blocks of KB slots, each block transposed (head_dim, KB): one
 * vector load gives one dimension of KB consecutive keys, so a run of keys is
 * scored with vertical multiply-adds, no horizontal sums (the layout of
 * kernels.h's blocked cache). Values are rows (slot, head_dim). A slot is the
 * position itself (a store of every position), the position modulo the ring
 * size (a ring), or the column's index (columns). */

#define KB 16                       /* keys per transposed block */

static int round_kb(int n) { return (n + KB - 1) / KB * KB; }

struct kv_group {
    int ring;              /* 0: every position; 1: ring of recent positions + columns */
    int cap;               /* slots allocated, a multiple of KB (every: grows; ring: fixed) */
    float *k;              /* (cap / KB, head_dim, KB) transposed key blocks */
    float *v;              /* (cap, head_dim) */
    int window;            /* ring: positions its masks read back (max offset + 1), <= cap */
    int n_cols;
    int *cols;             /* (n_cols) ascending positions kept beyond the ring */
    float *col_k;          /* (round_kb(n_cols) / KB, head_dim, KB) */
    float *col_v;          /* (n_cols, head_dim) */
};

static void kv_group_free(struct kv_group *g) {
    free(g->k); free(g->v); free(g->cols); free(g->col_k); free(g->col_v);
    memset(g, 0, sizeof *g);
}

/* Writes one key (transposed into its block) and one value at slot s. */
static inline void store_slot(float *kb, float *vb, int hd, int s, const float *k, const float *v) {
    float *dst = kb + (size_t)(s / KB) * hd * KB + s % KB;
    for (int d = 0; d < hd; d++) dst[(size_t)d * KB] = k[d];
    memcpy(vb + (size_t)s * hd, v, (size_t)hd * sizeof(float));
}

static inline void load_slot(const float *kb, const float *vb, int hd, int s, float *k, float *v) {
    const float *src = kb + (size_t)(s / KB) * hd * KB + s % KB;
    for (int d = 0; d < hd; d++) k[d] = src[(size_t)d * KB];
    memcpy(v, vb + (size_t)s * hd, (size_t)hd * sizeof(float));
}

/* Index of position pos among the columns, or -1. */
static int col_index(const struct kv_group *g, int pos) {
    int lo = 0, hi = g->n_cols - 1;
    while (lo <= hi) {
        int mid = (lo + hi) / 2;
        if (g->cols[mid] == pos) return mid;
        if (g->cols[mid] < pos) lo = mid + 1; else hi = mid - 1;
    }
    return -1;
}

/* First column index with cols[idx] >= pos. */
static int col_lower_bound(const struct kv_group *g, int pos) {
    int lo = 0, hi = g->n_cols;
    while (lo < hi) {
        int mid = (lo + hi) / 2;
        if (g->cols[mid] < pos) lo = mid + 1; else hi = mid;
    }
    return lo;
}

/* A store of every position grows by doubling; blocks of position p stay
 * where they are (block p / KB), so realloc keeps the layout. */
static int kv_group_reserve(struct kv_group *g, int positions, int hd, int max_seq) {
    if (positions <= g->cap) return 0;
    int cap = g->cap ? g->cap : 64;
    while (cap < positions) cap = cap > INT_MAX / 4 ? positions : cap * 2;
    if (cap > round_kb(max_seq)) cap = round_kb(max_seq);
    cap = round_kb(cap < positions ? positions : cap);
    float *k = realloc(g->k, (size_t)cap * hd * sizeof(float));
    if (!k) return dam_fail("out of memory growing the KV cache to %d positions", cap);
    g->k = k;
    float *v = realloc(g->v, (size_t)cap * hd * sizeof(float));
    if (!v) return dam_fail("out of memory growing the KV cache to %d positions", cap);
    g->v = v;
    g->cap = cap;
    return 0;
}

/* Stores positions [pos0, pos0+n) of KV head gi from the module's inputs. */
static void kv_group_append(struct kv_group *g, int gi, int hd, int kv_dim, int pos0, int n,
                            const float *k, const float *v) {
    const size_t off = (size_t)gi * hd;
    if (!g->ring) {
        for (int t = 0; t < n; t++)
            store_slot(g->k, g->v, hd, pos0 + t, k + (size_t)t * kv_dim + off, v + (size_t)t * kv_dim + off);
        return;
    }
    for (int p = pos0 + n - g->cap > pos0 ? pos0 + n - g->cap : pos0; p < pos0 + n; p++)
        store_slot(g->k, g->v, hd, p % g->cap, k + (size_t)(p - pos0) * kv_dim + off,
                   v + (size_t)(p - pos0) * kv_dim + off);
    for (int c = col_lower_bound(g, pos0); c < g->n_cols && g->cols[c] < pos0 + n; c++) {
        int t = g->cols[c] - pos0;
        store_slot(g->col_k, g->col_v, hd, c, k + (size_t)t * kv_dim + off, v + (size_t)t * kv_dim + off);
    }
}

/* Distinct positions a group holds after `stored` positions were appended. */
static long kv_group_positions(const struct kv_group *g, int stored) {
    if (!g->ring) return stored;
    int in_ring = stored < g->cap ? stored : g->cap;
    return in_ring + col_lower_bound(g, stored - in_ring);   /* columns below the ring */
}

/* A stretch of keys at consecutive slots [s0, s0 + n) of a blocked key array,
 * with the value of slot s0 + t at v + t * vstride. */
struct seg {
    const float *kb, *v;
    int s0, n, vstride;
};

/* The longest stretch of keys starting at key a (and <= b) of group g, when
 * the chunk being attended starts at pos0. A store of every position already
 * holds the chunk; for a ring, keys >= pos0 come from the chunk's keys
 * (chunk_kb: transposed blocks, slot = position - (pos0 rounded down to KB))
 * and values (vin, kv_dim apart). -1 when key a is not kept (a mask/cache
 * disagreement: a bug, reported, never read out of bounds). */
static int kv_segment(const struct kv_group *g, int gi, int hd, int kv_dim, int pos0,
                      const float *chunk_kb, const float *vin, int a, int b, struct seg *s) {
    if (!g->ring) {
        s->kb = g->k; s->s0 = a; s->n = b - a + 1;
        s->v = g->v + (size_t)a * hd; s->vstride = hd;
        return 0;
    }
    if (a >= pos0) {
        s->kb = chunk_kb; s->s0 = a - (pos0 - pos0 % KB); s->n = b - a + 1;
        s->v = vin + (size_t)(a - pos0) * kv_dim + (size_t)gi * hd; s->vstride = kv_dim;
        return 0;
    }
    if (a >= pos0 - g->cap) {                     /* the ring holds [pos0 - cap, pos0) */
        int slot = a % g->cap, end = b < pos0 - 1 ? b : pos0 - 1, n = end - a + 1;
        if (n > g->cap - slot) n = g->cap - slot;
        s->kb = g->k; s->s0 = slot; s->n = n;
        s->v = g->v + (size_t)slot * hd; s->vstride = hd;
        return 0;
    }
    int idx = col_index(g, a);
    if (idx < 0) return -1;
    int end = b < pos0 - g->cap - 1 ? b : pos0 - g->cap - 1, n = 1;
    while (a + n <= end && idx + n < g->n_cols && g->cols[idx + n] == a + n) n++;
    s->kb = g->col_k; s->s0 = idx; s->n = n;
    s->v = g->col_v + (size_t)idx * hd; s->vstride = hd;
    return 0;
}

/* ---------------------------------------------------------------------------
 * State */

struct dam_state {
    struct attn_setup setup;
    struct attn_options opts;      /* setup.opts points here */
    int group;                     /* query heads per KV head */
    struct dam_mask *masks;        /* (n_layers, n_heads) */
    int *masked;                   /* (n_layers) 1: the layer runs its masks; 0: full attention */
    int max_runs;                  /* most runs a row of any mask can have */
    struct kv_group *kv;           /* (n_layers, n_kv_heads) */
    int *n_pos;                    /* (n_layers) positions appended */
    int broken;                    /* a rewind needed positions the rings had dropped */
    /* capture */
    struct dam_capture *cap;       /* NULL when not capturing */
    int capture_prompt;            /* 1: derive masks at row PCL-1 (prompt capture) */
    struct dam_params params;
    struct dam_profile *profile;   /* owned: what the masks came from (NULL: window) */
    /* per-thread scratch, grown on demand */
    float *scores;                 /* (threads, scores_per_thread) */
    float *chunk_k;                /* (n_kv_heads, round_kb(chunk + KB) / KB, head_dim, KB) */
    size_t chunk_floats;
    size_t scores_per_thread;
    int *runs;                     /* (threads, 2 * (max_runs + 1)) */
    size_t runs_per_thread;
    int n_threads;
    /* figures */
    double kept_pairs, causal_pairs;
};

struct dam_state *dam_state_of(const struct attn_module *m, void *state) {
    return (m == &attn_dam || m == &attn_window) ? state : NULL;
}

struct dam_state *dam_state_new(const struct attn_setup *setup) {
    if (setup->n_heads <= 0 || setup->n_kv_heads <= 0 || setup->n_heads % setup->n_kv_heads ||
        setup->head_dim <= 0 || setup->head_dim > 1024 || setup->n_layers <= 0 || setup->max_seq_len <= 0) {
        dam_fail("attention: bad geometry (%d heads, %d KV heads)", setup->n_heads, setup->n_kv_heads);
        return NULL;
    }
    struct dam_state *st = xcalloc(1, sizeof *st, "attention state");
    if (!st) return NULL;
    st->setup = *setup;
    if (setup->opts) st->opts = *setup->opts;
    else attn_options_default(&st->opts);
    st->setup.opts = &st->opts;
    st->setup.model_dir = NULL;                   /* not owned; not needed after create */
    st->group = setup->n_heads / setup->n_kv_heads;
    st->masks = xcalloc((size_t)setup->n_layers * setup->n_heads, sizeof *st->masks, "masks");
    st->masked = xcalloc((size_t)setup->n_layers, sizeof *st->masked, "masks");
    st->kv = xcalloc((size_t)setup->n_layers * setup->n_kv_heads, sizeof *st->kv, "KV cache");
    st->n_pos = xcalloc((size_t)setup->n_layers, sizeof *st->n_pos, "KV cache");
    if (!st->masks || !st->masked || !st->kv || !st->n_pos) { dam_state_free(st); return NULL; }
    for (int i = 0; i < setup->n_layers * setup->n_heads; i++) dam_mask_full(&st->masks[i]);
    st->max_runs = 1;
    return st;
}

void dam_state_free(void *state) {
    struct dam_state *st = state;
    if (!st) return;
    for (int i = 0; st->masks && i < st->setup.n_layers * st->setup.n_heads; i++) dam_mask_free(&st->masks[i]);
    for (int i = 0; st->kv && i < st->setup.n_layers * st->setup.n_kv_heads; i++) kv_group_free(&st->kv[i]);
    free(st->masks); free(st->masked); free(st->kv); free(st->n_pos);
    dam_capture_free(st->cap);
    dam_profile_free(st->profile);
    free(st->scores); free(st->runs); free(st->chunk_k);
    free(st);
}

/* Decides what each KV group of a layer keeps, given its heads' masks, and
 * moves what it holds (the first `stored` positions) into that layout. */
static int shrink_layer_kv(struct dam_state *st, int layer) {
    const struct attn_setup *s = &st->setup;
    const int hd = s->head_dim, stored = st->n_pos[layer];
    for (int gi = 0; gi < s->n_kv_heads; gi++) {
        struct kv_group *g = &st->kv[(size_t)layer * s->n_kv_heads + gi];
        if (g->ring) continue;                           /* already shrunk */
        long window = 0;
        int full = 0, n_cols = 0;
        for (int h = gi * st->group; h < (gi + 1) * st->group; h++) {
            const struct dam_mask *m = &st->masks[(size_t)layer * s->n_heads + h];
            if (m->full) { full = 1; break; }
            long w = (long)dam_mask_max_offset(m) + 1;
            if (w > window) window = w;
            for (int c = 0; c < m->n_col; c++) n_cols += m->col[2 * c + 1] - m->col[2 * c] + 1;
        }
        /* nothing to save when the window and columns cover the context */
        if (full || round_kb((int)window) + n_cols >= s->max_seq_len) continue;
        int *cols = xmalloc(((size_t)n_cols + 1) * sizeof *cols, "KV columns");
        if (!cols) return -1;
        int nc = 0;
        for (int h = gi * st->group; h < (gi + 1) * st->group; h++) {
            const struct dam_mask *m = &st->masks[(size_t)layer * s->n_heads + h];
            for (int c = 0; c < m->n_col; c++)
                for (int p = m->col[2 * c]; p <= m->col[2 * c + 1] && p < s->max_seq_len; p++) cols[nc++] = p;
        }
        qsort(cols, (size_t)nc, sizeof *cols, cmp_int);
        int u = 0;
        for (int i = 0; i < nc; i++) if (u == 0 || cols[i] != cols[u - 1]) cols[u++] = cols[i];
        struct kv_group r = { .ring = 1, .window = (int)window, .cap = round_kb((int)window),
                              .n_cols = u, .cols = cols };
        r.k = xmalloc((size_t)r.cap * hd * sizeof(float), "KV ring");
        r.v = xmalloc((size_t)r.cap * hd * sizeof(float), "KV ring");
        r.col_k = xmalloc((size_t)round_kb(u + 1) * hd * sizeof(float), "KV columns");
        r.col_v = xmalloc(((size_t)u + 1) * hd * sizeof(float), "KV columns");
        if (!r.k || !r.v || !r.col_k || !r.col_v) { kv_group_free(&r); return -1; }
        /* move what is held: the last `cap` positions and the columns */
        float *kt = xmalloc(2 * (size_t)hd * sizeof(float), "KV row");
        if (!kt) { kv_group_free(&r); return -1; }
        for (int p = stored - r.cap > 0 ? stored - r.cap : 0; p < stored; p++) {
            load_slot(g->k, g->v, hd, p, kt, kt + hd);
            store_slot(r.k, r.v, hd, p % r.cap, kt, kt + hd);
        }
        for (int c = 0; c < u && cols[c] < stored; c++) {
            load_slot(g->k, g->v, hd, cols[c], kt, kt + hd);
            store_slot(r.col_k, r.col_v, hd, c, kt, kt + hd);
        }
        free(kt);
        kv_group_free(g);
        *g = r;
    }
    return 0;
}

int dam_state_set_masks(struct dam_state *st, int layer, const struct dam_mask *masks) {
    const int H = st->setup.n_heads;
    if (layer < 0 || layer >= st->setup.n_layers) return dam_fail("dam: no layer %d", layer);
    for (int h = 0; h < H; h++) {
        struct dam_mask copy;
        if (mask_copy(&copy, &masks[h])) return -1;
        dam_mask_free(&st->masks[(size_t)layer * H + h]);
        st->masks[(size_t)layer * H + h] = copy;
        if (copy.n_diag + copy.n_col > st->max_runs) st->max_runs = copy.n_diag + copy.n_col;
    }
    st->masked[layer] = 1;
    return shrink_layer_kv(st, layer);
}

/* Masks of one layer from the profile's heads. */
static int masks_from_profile(struct dam_state *st, const struct dam_profile *p, int layer) {
    const int H = st->setup.n_heads;
    struct dam_mask *masks = xcalloc((size_t)H, sizeof *masks, "masks");
    if (!masks) return -1;
    int rc = 0;
    for (int h = 0; h < H && !rc; h++)
        rc = dam_mask_for_head(&masks[h], &p->heads[(size_t)layer * H + h], &p->params);
    if (!rc) rc = dam_state_set_masks(st, layer, masks);
    for (int h = 0; h < H; h++) dam_mask_free(&masks[h]);
    free(masks);
    return rc;
}

int dam_state_use_profile(struct dam_state *st, const struct dam_profile *p) {
    const struct attn_setup *s = &st->setup;
    if (dam_profile_check_geometry(p, s->n_layers, s->n_heads, s->n_kv_heads, s->head_dim,
                                   p->source[0] ? p->source : "(in memory)"))
        return -1;
    for (int l = 0; l < s->n_layers; l++)
        if (masks_from_profile(st, p, l)) return -1;
    return 0;
}

int dam_state_start_capture(struct dam_state *st, const struct dam_params *p, int prompt) {
    const struct attn_setup *s = &st->setup;
    dam_capture_free(st->cap);
    dam_profile_free(st->profile);
    st->profile = NULL;
    st->params = *p;
    st->capture_prompt = prompt;
    st->cap = dam_capture_new(s->n_layers, s->n_heads, p->pcl);
    if (!st->cap) return -1;
    if (prompt) {
        st->profile = dam_profile_new(s->n_layers, s->n_heads, s->n_kv_heads, s->head_dim, p);
        if (!st->profile) return -1;
        snprintf(st->profile->source, sizeof st->profile->source, "prompt");
    }
    return 0;
}

struct dam_capture *dam_state_capture(struct dam_state *st) { return st->cap; }
const struct dam_profile *dam_state_profile(const struct dam_state *st) { return st->profile; }

/* ---------------------------------------------------------------------------
 * Kernel */

#define SUB 4                       /* query rows one micro-kernel call handles */
#define TILE 16                     /* most query rows per tile (see "row tiles" below) */

static int grow_scratch(struct dam_state *st, int max_keys) {
    int threads = omp_get_max_threads();
    size_t per = TILE * ((size_t)max_keys + KB);
    size_t runs_per = 2 * (2 * TILE) * ((size_t)st->max_runs + 2);   /* the rows' runs, then their union */
    if (threads > st->n_threads || per > st->scores_per_thread) {
        size_t p = per > st->scores_per_thread ? per + per / 2 : st->scores_per_thread;
        int t = threads > st->n_threads ? threads : st->n_threads;
        float *s = realloc(st->scores, (size_t)t * p * sizeof(float));
        if (!s) return dam_fail("out of memory for attention scores (%zu floats)", (size_t)t * p);
        st->scores = s;
        st->scores_per_thread = p;
        st->n_threads = t;
        st->runs_per_thread = 0;                  /* force the runs buffer to follow */
    }
    if (runs_per > st->runs_per_thread) {
        int *r = realloc(st->runs, (size_t)st->n_threads * runs_per * sizeof(int));
        if (!r) return dam_fail("out of memory for mask runs");
        st->runs = r;
        st->runs_per_thread = runs_per;
    }
    return 0;
}

static int grow_chunk_keys(struct dam_state *st, int chunk) {
    /* the chunk's keys, blocked, for ring groups (chunk + alignment slack) */
    size_t chunk_floats = (size_t)st->setup.n_kv_heads * round_kb(chunk + KB) * st->setup.head_dim;
    if (chunk_floats > st->chunk_floats) {
        float *c = realloc(st->chunk_k, chunk_floats * sizeof(float));
        if (!c) return dam_fail("out of memory for the chunk's keys");
        st->chunk_k = c;
        st->chunk_floats = chunk_floats;
    }
    return 0;
}

/* ---- row tiles ----
 * A task is a tile of consecutive query rows (tokens) of one head: TILE rows
 * for heads whose mask keeps a wide local window (or everything), SUB rows
 * for narrow ones. The rows' kept-key runs differ a little (diagonals shift by
 * one key per row), so the tile walks the union of its rows' runs once and
 * each row then masks out the few union keys that are not its own. Every key
 * block and value tile is loaded once per tile and serves all its rows (in
 * micro-kernel calls of SUB rows, while the block sits in L1), which is what
 * makes a kept pair cost about what a dense pair costs in a tiled dense
 * kernel; a narrow mask uses short tiles so the union wastes little. */

/* Scores of one whole block for rows rows (<= SUB): acc[r * KB + j] = q_r . key j.
 * With SUB rows the rows are the independent multiply-add chains; fewer rows
 * split the head dimension into four chains each instead. */
static inline void score_block(const float *q, int rows, int hd, const float *blk, float *acc) {
    float a0[KB] = { 0 }, a1[KB] = { 0 }, a2[KB] = { 0 }, a3[KB] = { 0 };
    if (rows == SUB) {
        const float *restrict q0 = q, *restrict q1 = q + hd, *restrict q2 = q + 2 * hd, *restrict q3 = q + 3 * hd;
        const float *restrict r = blk;
        for (int d = 0; d < hd; d++, r += KB) {
            const float x0 = q0[d], x1 = q1[d], x2 = q2[d], x3 = q3[d];
            #pragma omp simd
            for (int j = 0; j < KB; j++) {
                a0[j] = fmaf(x0, r[j], a0[j]);
                a1[j] = fmaf(x1, r[j], a1[j]);
                a2[j] = fmaf(x2, r[j], a2[j]);
                a3[j] = fmaf(x3, r[j], a3[j]);
            }
        }
        memcpy(acc, a0, sizeof a0);
        memcpy(acc + KB, a1, sizeof a1);
        memcpy(acc + 2 * KB, a2, sizeof a2);
        memcpy(acc + 3 * KB, a3, sizeof a3);
        return;
    }
    for (int row = 0; row < rows; row++) {
        const float *qr = q + (size_t)row * hd;
        memset(a0, 0, sizeof a0); memset(a1, 0, sizeof a1); memset(a2, 0, sizeof a2); memset(a3, 0, sizeof a3);
        int d = 0;
        for (; d + 4 <= hd; d += 4) {
            const float *r = blk + (size_t)d * KB, q0 = qr[d], q1 = qr[d + 1], q2 = qr[d + 2], q3 = qr[d + 3];
            #pragma omp simd
            for (int j = 0; j < KB; j++) {
                a0[j] = fmaf(q0, r[j], a0[j]);
                a1[j] = fmaf(q1, r[KB + j], a1[j]);
                a2[j] = fmaf(q2, r[2 * KB + j], a2[j]);
                a3[j] = fmaf(q3, r[3 * KB + j], a3[j]);
            }
        }
        for (; d < hd; d++) {
            const float qd = qr[d], *r = blk + (size_t)d * KB;
            #pragma omp simd
            for (int j = 0; j < KB; j++) a0[j] = fmaf(qd, r[j], a0[j]);
        }
        #pragma omp simd
        for (int j = 0; j < KB; j++) acc[row * KB + j] = (a0[j] + a1[j]) + (a2[j] + a3[j]);
    }
}

/* Scores of rows rows (<= TILE) against the keys at slots [s0, s0 + n) of a
 * blocked key array, into S[row * ld + j] for j < n. A block the stretch
 * touches at one or two slots only, for a single row, uses strided dots. */
static void score_keys(const float *q, int rows, int hd, const float *kb, int s0, int n,
                       float *S, size_t ld) {
    float acc[SUB * KB];
    for (int s = s0, end = s0 + n, o = 0; s < end;) {
        const int lane = s % KB, take = KB - lane < end - s ? KB - lane : end - s;
        const float *blk = kb + (size_t)(s / KB) * hd * KB;
        for (int r0 = 0; r0 < rows; r0 += SUB) {
            const int nr = rows - r0 < SUB ? rows - r0 : SUB;
            if (nr * take < 3) {
                for (int row = r0; row < r0 + nr; row++)
                    for (int t = 0; t < take; t++) {
                        float x = 0;
                        for (int d = 0; d < hd; d++) x = fmaf(q[(size_t)row * hd + d], blk[(size_t)d * KB + lane + t], x);
                        S[row * ld + o + t] = x;
                    }
            } else {
                score_block(q + (size_t)r0 * hd, nr, hd, blk, acc);
                for (int row = 0; row < nr; row++)
                    memcpy(S + (r0 + row) * ld + o, acc + row * KB + lane, (size_t)take * sizeof(float));
            }
        }
        o += take;
        s += take;
    }
}

/* out[row] (hd) += sum_j P[row * ld + j] * v_j over n value rows vstride
 * floats apart, for rows <= TILE. Keys go in tiles of 64 (their values stay
 * in L1 while every row uses them); each slice of KB dimensions is summed
 * SUB rows at a time, the rows being independent chains (fewer rows use four
 * interleaved accumulators each instead). */
static void accumulate_values(float *out, const float *P, size_t ld, int rows, const float *v,
                              int n, int vstride, int hd) {
    for (int j0 = 0; j0 < n; j0 += 64) {
        const int j1 = n - j0 < 64 ? n : j0 + 64;
        int d0 = 0;
        for (; d0 + KB <= hd; d0 += KB) {
            for (int r0 = 0; r0 < rows; r0 += SUB) {
                const int nr = rows - r0 < SUB ? rows - r0 : SUB;
                float o0[KB] = { 0 }, o1[KB] = { 0 }, o2[KB] = { 0 }, o3[KB] = { 0 };
                if (nr == SUB) {
                    const float *restrict p0 = P + r0 * ld, *restrict p1 = p0 + ld;
                    const float *restrict p2 = p1 + ld, *restrict p3 = p2 + ld;
                    const float *restrict vj = v + (size_t)j0 * vstride + d0;
                    for (int j = j0; j < j1; j++, vj += vstride) {
                        const float x0 = p0[j], x1 = p1[j], x2 = p2[j], x3 = p3[j];
                        #pragma omp simd
                        for (int k = 0; k < KB; k++) {
                            o0[k] = fmaf(x0, vj[k], o0[k]);
                            o1[k] = fmaf(x1, vj[k], o1[k]);
                            o2[k] = fmaf(x2, vj[k], o2[k]);
                            o3[k] = fmaf(x3, vj[k], o3[k]);
                        }
                    }
                    float *restrict dst = out + (size_t)r0 * hd + d0;
                    #pragma omp simd
                    for (int k = 0; k < KB; k++) {
                        dst[k] += o0[k];
                        dst[hd + k] += o1[k];
                        dst[2 * hd + k] += o2[k];
                        dst[3 * hd + k] += o3[k];
                    }
                    continue;
                }
                for (int row = r0; row < r0 + nr; row++) {
                    const float *p = P + row * ld;
                    memset(o0, 0, sizeof o0); memset(o1, 0, sizeof o1); memset(o2, 0, sizeof o2); memset(o3, 0, sizeof o3);
                    int j = j0;
                    for (; j + 4 <= j1; j += 4) {
                        const float *v0 = v + (size_t)j * vstride + d0, *v1 = v0 + vstride;
                        const float *v2 = v1 + vstride, *v3 = v2 + vstride;
                        const float x0 = p[j], x1 = p[j + 1], x2 = p[j + 2], x3 = p[j + 3];
                        #pragma omp simd
                        for (int k = 0; k < KB; k++) {
                            o0[k] = fmaf(x0, v0[k], o0[k]);
                            o1[k] = fmaf(x1, v1[k], o1[k]);
                            o2[k] = fmaf(x2, v2[k], o2[k]);
                            o3[k] = fmaf(x3, v3[k], o3[k]);
                        }
                    }
                    for (; j < j1; j++) {
                        const float pj = p[j], *vj = v + (size_t)j * vstride + d0;
                        #pragma omp simd
                        for (int k = 0; k < KB; k++) o0[k] = fmaf(pj, vj[k], o0[k]);
                    }
                    #pragma omp simd
                    for (int k = 0; k < KB; k++) out[row * hd + d0 + k] += (o0[k] + o1[k]) + (o2[k] + o3[k]);
                }
            }
        }
        for (; d0 < hd; d0++)                       /* head_dim not a multiple of KB */
            for (int row = 0; row < rows; row++) {
                float o = 0;
                for (int j = j0; j < j1; j++) o = fmaf(P[row * ld + j], v[(size_t)j * vstride + d0], o);
                out[row * hd + d0] += o;
            }
    }
}

/* Merges sorted run lists (lists[r]: n[r] runs) into their union: disjoint,
 * ascending, adjacent runs joined. Returns the number of runs in u. */
static int union_runs(int rows, int *const lists[], const int *n, int *u) {
    int cur[TILE] = { 0 }, k = 0;
    for (;;) {
        int best = -1;
        for (int r = 0; r < rows; r++)
            if (cur[r] < n[r] && (best < 0 || lists[r][2 * cur[r]] < lists[best][2 * cur[best]])) best = r;
        if (best < 0) return k;
        const int a = lists[best][2 * cur[best]], b = lists[best][2 * cur[best] + 1];
        cur[best]++;
        if (k > 0 && a <= u[2 * k - 1] + 1) { if (b > u[2 * k - 1]) u[2 * k - 1] = b; }
        else { u[2 * k] = a; u[2 * k + 1] = b; k++; }
    }
}

/* Sets to -inf the scores of union keys [a, a + n) (at row[0 .. n)) that the
 * row's own runs do not keep. *c is the row's run cursor (keys ascend). */
static void mask_row(float *row, int a, int n, const int *runs, int n_runs, int *c) {
    for (int key = a, end = a + n; key < end;) {
        while (*c < n_runs && runs[2 * *c + 1] < key) (*c)++;
        int stop = end;
        if (*c < n_runs && runs[2 * *c] <= key) {          /* inside a run */
            key = runs[2 * *c + 1] + 1 < end ? runs[2 * *c + 1] + 1 : end;
            continue;
        }
        if (*c < n_runs && runs[2 * *c] < end) stop = runs[2 * *c];
        for (int j = key; j < stop; j++) row[j - a] = -INFINITY;
        key = stop;
    }
}

/* Attention of a tile: rows (<= TILE) query rows q (rows, hd) already scaled
 * by 1/sqrt(head_dim), row r at position i0 + r with kept-key runs
 * lists[r]. Probabilities go to S (rows, ld), in union-key order; output to
 * out (row r at out + r * out_stride). Returns 0, or -1 when the cache lacks
 * a key the masks ask for. */
static int attend_tile(const float *q, int rows, int *const lists[], const int *n_runs, int *u,
                       const struct kv_group *g, int gi, int hd, int kv_dim, int pos0,
                       const float *chunk_kb, const float *vin, float *S, size_t ld,
                       float *out, size_t out_stride) {
    const int nu = union_runs(rows, lists, n_runs, u);
    int cursor[TILE] = { 0 };
    struct seg s;
    long m = 0;
    for (int r = 0; r < nu; r++)
        for (int a = u[2 * r], b = u[2 * r + 1]; a <= b; a += s.n) {
            if (kv_segment(g, gi, hd, kv_dim, pos0, chunk_kb, vin, a, b, &s)) return -1;
            score_keys(q, rows, hd, s.kb, s.s0, s.n, S + m, ld);
            if (rows > 1)
                for (int row = 0; row < rows; row++)
                    mask_row(S + row * ld + m, a, s.n, lists[row], n_runs[row], &cursor[row]);
            m += s.n;
        }
    float tmp[TILE * 128];
    float *o = rows * hd <= TILE * 128 ? tmp : NULL;  /* the tile's outputs, contiguous */
    for (int row = 0; row < rows; row++) {
        float *p = S + row * ld, max = -INFINITY;
        #pragma omp simd reduction(max:max)
        for (long j = 0; j < m; j++) max = p[j] > max ? p[j] : max;
        scale_f32(p, 1.0f / exp_sum_f32(p, (int)m, max), (int)m);
    }
    if (!o) {
        /* a large head_dim: one row at a time, straight into out */
        for (int row = 0; row < rows; row++) {
            float *dst = out + row * out_stride;
            memset(dst, 0, (size_t)hd * sizeof(float));
            long idx = 0;
            for (int r = 0; r < nu; r++)
                for (int a = u[2 * r], b = u[2 * r + 1]; a <= b; a += s.n) {
                    kv_segment(g, gi, hd, kv_dim, pos0, chunk_kb, vin, a, b, &s);
                    accumulate_values(dst, S + row * ld + idx, ld, 1, s.v, s.n, s.vstride, hd);
                    idx += s.n;
                }
        }
        return 0;
    }
    memset(o, 0, (size_t)rows * hd * sizeof(float));
    long idx = 0;
    for (int r = 0; r < nu; r++)
        for (int a = u[2 * r], b = u[2 * r + 1]; a <= b; a += s.n) {
            kv_segment(g, gi, hd, kv_dim, pos0, chunk_kb, vin, a, b, &s);
            accumulate_values(o, S + idx, ld, rows, s.v, s.n, s.vstride, hd);
            idx += s.n;
        }
    for (int row = 0; row < rows; row++)
        memcpy(out + row * out_stride, o + (size_t)row * hd, (size_t)hd * sizeof(float));
    return 0;
}

/* Tile height of a mask: TILE rows when it keeps a wide local window (or
 * everything), SUB rows otherwise (a narrow window would waste the union). */
static int tile_rows_of(const struct dam_mask *m) {
    if (m->full) return TILE;
    return m->n_diag > 0 && m->diag[0] == 0 && m->diag[1] + 1 >= 4 * TILE ? TILE : SUB;
}

/* Rows t in [t0, t1) of a chunk at pos0, in tiles of consecutive tokens per
 * head. capture: run full attention and add the probabilities of these rows
 * (all < PCL) to the capture. */
static int attend_rows(struct dam_state *st, int layer, int pos0, int t0, int t1, int capture,
                       const float *q, const float *v, float *out) {
    const struct attn_setup *s = &st->setup;
    const int H = s->n_heads, hd = s->head_dim, kv_dim = s->n_kv_heads * hd;
    const float scale = 1.0f / sqrtf((float)hd);
    const int use_masks = st->masked[layer] && !capture;
    const size_t chunk_per_group = (size_t)round_kb(t1 + KB) * hd;
    static const struct dam_mask full_mask = { .full = 1 };
    if (grow_scratch(st, pos0 + t1)) return -1;
    const int tiles = (t1 - t0 + TILE - 1) / TILE;
    const size_t ld = st->scores_per_thread / TILE;
    double kept = 0, causal = 0;
    int missing = 0;
    /* small work runs on the calling thread: waking a team costs more */
    const double work = (double)(t1 - t0) * H * (pos0 + t1) * hd;
    #pragma omp parallel for schedule(dynamic, 1) reduction(+:kept, causal) reduction(|:missing) \
        if (work >= (1 << 17))
    for (int task = 0; task < tiles * H; task++) {
        const int tile = tiles - 1 - task / H, h = task % H;      /* longest rows first */
        const int tid = omp_get_thread_num(), gi = h / st->group;
        const struct dam_mask *m = use_masks ? &st->masks[(size_t)layer * H + h] : &full_mask;
        const int th = tile_rows_of(m);
        int *runs = st->runs + (size_t)tid * st->runs_per_thread;
        const size_t per_row = 2 * ((size_t)st->max_runs + 2);
        float *S = st->scores + (size_t)tid * st->scores_per_thread;
        int *lists[TILE], n_runs[TILE];
        float qs[TILE * 1024];                          /* head_dim <= 1024 (checked at create) */
        const int tile_end = t0 + (tile + 1) * TILE < t1 ? t0 + (tile + 1) * TILE : t1;
        for (int ta = t0 + tile * TILE; ta < tile_end; ta += th) {
            const int rows = tile_end - ta < th ? tile_end - ta : th;
            for (int row = 0; row < rows; row++) {
                const int i = pos0 + ta + row;
                lists[row] = runs + row * per_row;
                n_runs[row] = dam_mask_row_runs(m, i, lists[row]);
                for (int r = 0; r < n_runs[row]; r++) kept += lists[row][2 * r + 1] - lists[row][2 * r] + 1;
                causal += (double)(i + 1);
                const float *qh = q + ((size_t)(ta + row) * H + h) * hd;
                for (int d = 0; d < hd; d++) qs[(size_t)row * hd + d] = qh[d] * scale;
            }
            if (attend_tile(qs, rows, lists, n_runs, runs + TILE * per_row,
                            &st->kv[(size_t)layer * s->n_kv_heads + gi], gi, hd, kv_dim, pos0,
                            st->chunk_k + gi * chunk_per_group, v, S, ld,
                            out + ((size_t)ta * H + h) * hd, (size_t)H * hd)) {
                missing = 1;
                break;
            }
            if (capture)
                for (int row = 0; row < rows; row++)
                    dam_capture_add_row(st->cap, layer, h, pos0 + ta + row, S + row * ld);
        }
    }
    if (missing) return dam_fail("dam: internal error: a mask asked for a key the KV cache did not keep");
    if (capture)
        for (int t = t0; t < t1; t++) dam_capture_count_row(st->cap, layer, pos0 + t);
    st->kept_pairs += kept;
    st->causal_pairs += causal;
    return 0;
}

/* The chunk's keys of every ring group, blocked like the stores: slot =
 * position - (pos0 rounded down to KB), so lanes line up with positions. */
static void block_chunk_keys(struct dam_state *st, int layer, int pos0, int n, const float *k) {
    const struct attn_setup *s = &st->setup;
    const int hd = s->head_dim, kv_dim = s->n_kv_heads * hd, base = pos0 - pos0 % KB;
    const size_t per_group = (size_t)round_kb(n + KB) * hd;
    for (int gi = 0; gi < s->n_kv_heads; gi++) {
        if (!st->kv[(size_t)layer * s->n_kv_heads + gi].ring) continue;
        float *kb = st->chunk_k + gi * per_group;
        for (int t = 0; t < n; t++) {
            const int slot = pos0 + t - base;
            float *dst = kb + (size_t)(slot / KB) * hd * KB + slot % KB;
            const float *src = k + (size_t)t * kv_dim + (size_t)gi * hd;
            for (int d = 0; d < hd; d++) dst[(size_t)d * KB] = src[d];
        }
    }
}

/* ---------------------------------------------------------------------------
 * Module entry points */

int dam_state_prefill(void *state, int layer, int pos0, int n,
                      const float *q, const float *k, const float *v, float *out) {
    struct dam_state *st = state;
    const struct attn_setup *s = &st->setup;
    const int hd = s->head_dim, kv_dim = s->n_kv_heads * hd;
    if (st->broken)
        return dam_fail("dam: a rewind needed KV positions this module had already dropped "
                        "(windowed heads keep only recent positions); rewind to 0 instead");
    if (layer < 0 || layer >= s->n_layers || n < 1 || pos0 < 0)
        return dam_fail("attention: bad call (layer %d, position %d, %d tokens)", layer, pos0, n);
    if (pos0 + n > s->max_seq_len) return dam_fail("context full (%d positions)", s->max_seq_len);
    if (pos0 != st->n_pos[layer])
        return dam_fail("attention: layer %d holds %d positions, asked to continue at %d", layer,
                        st->n_pos[layer], pos0);
    /* stores that keep everything take the chunk first: then every key is in one place */
    for (int gi = 0; gi < s->n_kv_heads; gi++) {
        struct kv_group *g = &st->kv[(size_t)layer * s->n_kv_heads + gi];
        if (g->ring) continue;
        if (kv_group_reserve(g, pos0 + n, hd, s->max_seq_len)) return -1;
        kv_group_append(g, gi, hd, kv_dim, pos0, n, k, v);
    }
    /* rows inside PCL capture while the layer has no masks of its own */
    int t_split = 0, finalize = 0;
    if (st->cap && !st->masked[layer] && pos0 < st->cap->pcl) {
        t_split = (pos0 + n < st->cap->pcl ? pos0 + n : st->cap->pcl) - pos0;
        finalize = st->capture_prompt && pos0 + t_split == st->cap->pcl;
    }
    if (grow_chunk_keys(st, n)) return -1;
    block_chunk_keys(st, layer, pos0, n, k);
    if (t_split > 0 && attend_rows(st, layer, pos0, 0, t_split, 1, q, v, out)) return -1;
    if (finalize) {
        /* the prompt's first PCL rows are done for this layer: its masks now */
        if (dam_profile_capture_layer(st->profile, st->cap, layer)) return -1;
        const int H = s->n_heads;
        for (int h = 0; h < H; h++) {
            struct dam_mask *m = &st->masks[(size_t)layer * H + h];
            dam_mask_free(m);
            if (dam_mask_for_head(m, &st->profile->heads[(size_t)layer * H + h], &st->params)) return -1;
            if (m->n_diag + m->n_col > st->max_runs) st->max_runs = m->n_diag + m->n_col;
        }
        st->masked[layer] = 1;           /* the KV store shrinks after this chunk */
    }
    if (t_split < n && attend_rows(st, layer, pos0, t_split, n, 0, q, v, out)) return -1;
    for (int gi = 0; gi < s->n_kv_heads; gi++) {
        struct kv_group *g = &st->kv[(size_t)layer * s->n_kv_heads + gi];
        if (g->ring) kv_group_append(g, gi, hd, kv_dim, pos0, n, k, v);
    }
    st->n_pos[layer] = pos0 + n;
    if (finalize && shrink_layer_kv(st, layer)) return -1;
    return 0;
}

int dam_state_decode(void *state, int layer, int pos,
                     const float *q, const float *k, const float *v, float *out) {
    return dam_state_prefill(state, layer, pos, 1, q, k, v, out);
}

/* Back to the state right after create for a prompt capture: no masks, every
 * position kept, nothing captured. */
static void reset_prompt_capture(struct dam_state *st) {
    const struct attn_setup *s = &st->setup;
    for (int l = 0; l < s->n_layers; l++) {
        st->masked[l] = 0;
        for (int h = 0; h < s->n_heads; h++) {
            dam_mask_free(&st->masks[(size_t)l * s->n_heads + h]);
            dam_mask_full(&st->masks[(size_t)l * s->n_heads + h]);
        }
        for (int gi = 0; gi < s->n_kv_heads; gi++) {
            struct kv_group *g = &st->kv[(size_t)l * s->n_kv_heads + gi];
            if (g->ring) kv_group_free(g);
        }
    }
    dam_capture_forget(st->cap, 0);
}

void dam_state_truncate(void *state, int pos) {
    struct dam_state *st = state;
    const struct attn_setup *s = &st->setup;
    if (pos < 0) pos = 0;
    if (pos == 0) st->broken = 0;
    if (st->cap && st->capture_prompt && pos < st->cap->pcl) {
        int any_ring = 0;
        for (int i = 0; i < s->n_layers * s->n_kv_heads; i++) any_ring |= st->kv[i].ring;
        if (pos == 0) {
            reset_prompt_capture(st);
        } else if (any_ring) {
            st->broken = 1;              /* the rows to capture again need positions rings dropped */
        } else {
            /* masks derived from rows being forgotten: capture those rows again */
            for (int l = 0; l < s->n_layers; l++) {
                st->masked[l] = 0;
                for (int h = 0; h < s->n_heads; h++) {
                    dam_mask_free(&st->masks[(size_t)l * s->n_heads + h]);
                    dam_mask_full(&st->masks[(size_t)l * s->n_heads + h]);
                }
            }
            dam_capture_forget(st->cap, pos);
        }
    }
    for (int l = 0; l < s->n_layers; l++) {
        if (pos >= st->n_pos[l]) continue;
        for (int gi = 0; gi < s->n_kv_heads; gi++) {
            const struct kv_group *g = &st->kv[(size_t)l * s->n_kv_heads + gi];
            /* a ring still holds [n_pos - W, n_pos); the rewound cache needs [pos - W, pos) */
            if (g->ring && pos > 0 && st->n_pos[l] > g->window) st->broken = 1;
        }
        st->n_pos[l] = pos;
    }
}

void dam_state_stats(void *state, struct attn_stats *out) {
    struct dam_state *st = state;
    const struct attn_setup *s = &st->setup;
    memset(out, 0, sizeof *out);
    out->kept_pairs = st->kept_pairs;
    out->causal_pairs = st->causal_pairs;
    out->sparsity = st->causal_pairs > 0 ? 1.0 - st->kept_pairs / st->causal_pairs : 0;
    const size_t per_pos = 2 * (size_t)s->head_dim * sizeof(float);
    for (int l = 0; l < s->n_layers; l++)
        for (int gi = 0; gi < s->n_kv_heads; gi++) {
            out->kv_bytes += (size_t)kv_group_positions(&st->kv[(size_t)l * s->n_kv_heads + gi], st->n_pos[l]) * per_pos;
            out->kv_bytes_full += (size_t)st->n_pos[l] * per_pos;
        }
    if (st->profile) {
        /* heads whose layer has not derived its masks yet do not count */
        for (int l = 0; l < s->n_layers; l++)
            for (int h = 0; h < s->n_heads && st->masked[l]; h++)
                out->fallback_heads += st->profile->heads[(size_t)l * s->n_heads + h].fallback != DAM_FALLBACK_NONE;
    }
}

/* ---------------------------------------------------------------------------
 * The dam module: where its masks come from */

static void *dam_create(const struct attn_setup *setup) {
    const struct attn_options *o = setup->opts;
    struct attn_options defaults;
    if (!o) { attn_options_default(&defaults); o = &defaults; }
    struct dam_params p;
    if (dam_params_from_options(o, &p)) return NULL;
    struct dam_state *st = dam_state_new(setup);
    if (!st) return NULL;
    const char *capture = o->dam_capture;
    if (!strcmp(capture, "calibrate")) {
        if (dam_state_start_capture(st, &p, 0)) goto fail;
    } else if (!strcmp(capture, "prompt")) {
        if (dam_state_start_capture(st, &p, 1)) goto fail;
    } else if (!strcmp(capture, "profile") || !strcmp(capture, "auto")) {
        if (o->dam_profile[0]) {
            st->profile = dam_profile_load(o->dam_profile);
            if (!st->profile) goto fail;
            snprintf(st->profile->source, sizeof st->profile->source, "%s", o->dam_profile);
        } else if (!strcmp(capture, "profile")) {
            dam_fail("--dam-capture profile needs a profile (--dam-profile FILE, made by dam calibrate)");
            goto fail;
        } else {
            st->profile = dam_auto_profile(setup, NULL, 0);
            if (!st->profile) goto fail;
        }
        st->params = st->profile->params;
        if (dam_state_use_profile(st, st->profile)) goto fail;
    } else {
        dam_fail("dam: unknown capture source '%s' (expected profile, auto or prompt)", capture);
        goto fail;
    }
    return st;
fail:
    dam_state_free(st);
    return NULL;
}

const struct attn_module attn_dam = {
    .name = "dam",
    .description = "Dynamic Attention Mask: per-head diagonal and column patterns captured from "
                   "full attention, sparse kernels, per-group KV eviction",
    .create = dam_create,
    .prefill = dam_state_prefill,
    .decode = dam_state_decode,
    .truncate = dam_state_truncate,
    .stats = dam_state_stats,
    .destroy = dam_state_free,
};
