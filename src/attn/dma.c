/* dma.c — Dynamic Mask Attention (DMA), the trainable sparse attention of
 * the Doge models (J. Shi et al., arXiv 2508.02124; docs: ../shared/docs/DMA.md).
 *
 * Each layer learns, per KV head g, how much every key matters from its
 * value alone:
 *     dt_j = dt_proj · v_j          (v_j: the values of position j, all KV heads)
 *     δ[g, j] = exp(A_g · softplus(dt_j[g]))
 * Query i keeps the w = keep_window_size causal keys with the largest δ
 * (all of them while i < w) and adds δ to their scores, unscaled:
 *     s_ij = q_i·k_j / √D + δ[g, j],   softmax over the kept j.
 *
 * Because δ depends on the key only, the kept set of query i is the top-w of
 * δ[0..i], and it changes by at most one key per position: the new key
 * enters when its δ beats the smallest kept one, which leaves. A key that
 * left (or never entered) is never kept again — every later query sees the
 * same w larger keys — so this module keeps per (layer, mask head) w slots of
 * k, v, δ with a min-heap on δ. A query costs O(w · D) and a new position
 * O(log w), whatever the context length.
 *
 * Rewinds: a key that never entered is never needed again, even after a
 * rewind (the w keys that beat it came before it). A key that was evicted is
 * needed by a rewind to before its evictor, so evictions go to an undo
 * journal, replayed backwards by truncate. For keys in random order the
 * kept set changes about w · ln(n / w) times over n positions, so the cache
 * holds w (1 + ln(n / w)) positions per head rather than n.
 *
 * Ties in δ are broken towards the later position. They are common: in the
 * first layer v_j depends on the token alone, so a repeated token repeats
 * its δ exactly (and A = 0 makes every δ equal). transformers leaves the
 * order to torch.topk; its golden generation (third_party/models/tiny-doge,
 * which repeats one token 23 times) is reproduced only with this rule.
 *
 * The same code with w = the context is the dense counterpart: every causal
 * key, δ still added. It is what --attn=full means on a Doge model (see
 * attn_for_model in registry.c), so the two can be compared.
 *
 * Checkpoint generations: transformers' DogeAttention has one δ per KV head
 * (A: n_kv_heads); an older one had one per query head (A: n_heads), each
 * with its own mask. Both are read (model->dma_heads says which); the
 * formula is exp(A · softplus(dt)) in both. */
#include "dam/attn.h"
#include "dam/common.h"
#include "dam/kernels.h"
#include "dam/model.h"
#include "dam/threads.h"
#include <math.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

/* The keys a group evicted, in eviction order: entry e is what slot[e]
 * held (pos, δ, k, v) before the key of position at[e] took its place. */
struct dma_journal {
    int len, cap;          /* entries held, room */
    int *at, *slot, *pos;  /* (cap) */
    float *delta;          /* (cap) */
    float *k, *v;          /* (cap, head_dim) */
};

/* One (layer, mask head): the keys its queries keep. Slot s holds position
 * pos[s]; heap orders the used slots so that heap[0] is the one to evict
 * next (smallest δ, the latest position among equals). */
struct dma_group {
    int used;              /* slots filled: min(positions seen, cap) */
    int *heap;             /* (cap) slot ids, a binary min-heap */
    int *pos;              /* (cap) position held by each slot */
    float *delta;          /* (cap) δ of each slot */
    float *k, *v;          /* (cap, head_dim) keys and values of each slot */
    struct dma_journal undo;
};

struct dma_state {
    struct attn_setup setup;
    const struct model *model;
    int groups;            /* mask heads per layer: model->dma_heads */
    int cap;               /* slots per group: the window, at most the context */
    struct dma_group *g;   /* (layer, groups) */
    int *n_pos;            /* (layer) positions seen */
    int n_threads;
    float *scores;         /* (n_threads, cap) scratch of one query row */
    double *kept;          /* (n_threads) pairs visited by each thread in a chunk */
    float *dt;             /* (chunk_cap, groups) dt, then δ, of a chunk */
    int chunk_cap;         /* rows dt holds */
    double kept_pairs, causal_pairs;
};

/* ------------------------------------------------------------- the heap */

/* a goes before b in the heap: evicted first. */
static int evict_before(const struct dma_group *g, int a, int b) {
    if (g->delta[a] != g->delta[b]) return g->delta[a] < g->delta[b];
    return g->pos[a] < g->pos[b];          /* equal δ: the later position stays */
}

static void sift_down(struct dma_group *g, int i) {
    for (;;) {
        int l = 2 * i + 1, r = l + 1, m = i;
        if (l < g->used && evict_before(g, g->heap[l], g->heap[m])) m = l;
        if (r < g->used && evict_before(g, g->heap[r], g->heap[m])) m = r;
        if (m == i) return;
        int t = g->heap[i]; g->heap[i] = g->heap[m]; g->heap[m] = t;
        i = m;
    }
}

static void sift_up(struct dma_group *g, int i) {
    while (i > 0) {
        int p = (i - 1) / 2;
        if (!evict_before(g, g->heap[i], g->heap[p])) return;
        int t = g->heap[i]; g->heap[i] = g->heap[p]; g->heap[p] = t;
        i = p;
    }
}

static void store_slot(struct dma_group *g, int slot, int pos, float delta,
                       const float *k, const float *v, int hd) {
    g->pos[slot] = pos;
    g->delta[slot] = delta;
    memcpy(g->k + (size_t)slot * hd, k, (size_t)hd * sizeof(float));
    memcpy(g->v + (size_t)slot * hd, v, (size_t)hd * sizeof(float));
}

/* Offers position pos to the kept set: a free slot takes it; a full set
 * takes it in place of its weakest key when δ beats that key, and the
 * journal keeps the key that left (room reserved by the caller). */
static void offer(struct dma_group *g, int cap, int pos, float delta, const float *k, const float *v, int hd) {
    if (g->used < cap) {
        int slot = g->used++;
        store_slot(g, slot, pos, delta, k, v, hd);
        g->heap[slot] = slot;
        sift_up(g, slot);
        return;
    }
    int weakest = g->heap[0];
    if (delta < g->delta[weakest]) return;      /* equal δ: the newcomer (later) wins */
    struct dma_journal *j = &g->undo;
    const int e = j->len++;
    j->at[e] = pos;
    j->slot[e] = weakest;
    j->pos[e] = g->pos[weakest];
    j->delta[e] = g->delta[weakest];
    memcpy(j->k + (size_t)e * hd, g->k + (size_t)weakest * hd, (size_t)hd * sizeof(float));
    memcpy(j->v + (size_t)e * hd, g->v + (size_t)weakest * hd, (size_t)hd * sizeof(float));
    store_slot(g, weakest, pos, delta, k, v, hd);
    sift_down(g, 0);
}

/* Room for `more` journal entries. */
static int journal_reserve(struct dma_journal *j, int more, int hd) {
    if (j->len + more <= j->cap) return 0;
    int cap = j->cap * 2 > j->len + more ? j->cap * 2 : j->len + more;
    int *at = realloc(j->at, (size_t)cap * sizeof *at);
    if (at) j->at = at;
    int *slot = at ? realloc(j->slot, (size_t)cap * sizeof *slot) : NULL;
    if (slot) j->slot = slot;
    int *pos = slot ? realloc(j->pos, (size_t)cap * sizeof *pos) : NULL;
    if (pos) j->pos = pos;
    float *delta = pos ? realloc(j->delta, (size_t)cap * sizeof *delta) : NULL;
    if (delta) j->delta = delta;
    float *k = delta ? realloc(j->k, (size_t)cap * hd * sizeof *k) : NULL;
    if (k) j->k = k;
    float *v = k ? realloc(j->v, (size_t)cap * hd * sizeof *v) : NULL;
    if (!v) return dam_fail("dma: out of memory for the undo journal (%d entries)", cap);
    j->v = v;
    j->cap = cap;
    return 0;
}

static void journal_free(struct dma_journal *j) {
    free(j->at); free(j->slot); free(j->pos); free(j->delta); free(j->k); free(j->v);
    memset(j, 0, sizeof *j);
}

/* ------------------------------------------------------------- δ and rows */

/* softplus as torch computes it (beta 1, threshold 20: x itself above 20). */
static float softplus(float x) {
    return x > 20.0f ? x : log1pf(expf(x));
}

/* δ (n, groups) of n positions from their values v (n, n_kv_heads * head_dim). */
static void compute_delta(const struct dma_state *s, int layer, int n, const float *v, float *delta) {
    const struct layer_weights *w = &s->model->layers[layer];
    (void)matmul(delta, v, &w->dt_proj, n);     /* never quantized: cannot fail */
    for (int t = 0; t < n; t++)
        for (int h = 0; h < s->groups; h++) {
            float *d = delta + (size_t)t * s->groups + h;
            *d = expf(w->dma_A[h] * softplus(*d));
        }
}

/* One query row q (head_dim) over the kept set: softmax of q·k/√D + δ over
 * the used slots (their order does not matter). scores: (cap) scratch. */
static void attend_row(const struct dma_group *g, const float *q, int hd, float scale, float *scores, float *out) {
    float max = -INFINITY;
    for (int s = 0; s < g->used; s++) {
        scores[s] = dot_f32(q, g->k + (size_t)s * hd, hd) * scale + g->delta[s];
        if (scores[s] > max) max = scores[s];
    }
    float sum = exp_sum_f32(scores, g->used, max);
    memset(out, 0, (size_t)hd * sizeof(float));
    for (int s = 0; s < g->used; s++) axpy_f32(out, scores[s], g->v + (size_t)s * hd, hd);
    scale_f32(out, 1.0f / sum, hd);
}

/* ------------------------------------------------------------- the module */

static void dma_destroy(void *state) {
    struct dma_state *s = state;
    if (!s) return;
    if (s->g) {
        /* every group's slot arrays are slices of group 0's allocations */
        free(s->g[0].heap); free(s->g[0].pos); free(s->g[0].delta); free(s->g[0].k); free(s->g[0].v);
        for (int i = 0; i < s->setup.n_layers * s->groups; i++) journal_free(&s->g[i].undo);
    }
    free(s->g); free(s->n_pos); free(s->scores); free(s->kept); free(s->dt);
    free(s);
}

static void *create(const struct attn_setup *setup, int dense) {
    const struct model *m = setup->model;
    if (!m || m->dma_heads <= 0) {
        dam_fail("dma: needs a model trained with Dynamic Mask Attention (a Doge checkpoint with "
                 "self_attn.A and self_attn.dt_proj weights)%s", m ? "; this one has none" : "");
        return NULL;
    }
    if (m->cfg.n_layers != setup->n_layers || m->cfg.n_heads != setup->n_heads ||
        m->cfg.n_kv_heads != setup->n_kv_heads || m->cfg.head_dim != setup->head_dim) {
        dam_fail("dma: the attention geometry does not match the model's");
        return NULL;
    }
    const struct attn_options *o = setup->opts;
    int window = o && o->dma.window > 0 ? o->dma.window : m->cfg.keep_window_size;
    if (window < 1) { dam_fail("dma: the window must be at least 1 key (got %d)", window); return NULL; }
    struct dma_state *s = xcalloc(1, sizeof *s, "dma state");
    if (!s) return NULL;
    s->setup = *setup;
    s->model = m;
    s->groups = m->dma_heads;
    /* the dense counterpart: room for every position, so nothing is evicted */
    s->cap = dense || window > setup->max_seq_len ? setup->max_seq_len : window;
    s->n_threads = threads_count();
    const size_t n_groups = (size_t)setup->n_layers * s->groups, slots = n_groups * s->cap,
                 hd = (size_t)setup->head_dim;
    s->g = xcalloc(n_groups, sizeof *s->g, "dma groups");
    s->n_pos = xcalloc((size_t)setup->n_layers, sizeof *s->n_pos, "dma positions");
    s->scores = xmalloc((size_t)s->n_threads * s->cap * sizeof(float), "dma scores");
    s->kept = xcalloc((size_t)s->n_threads, sizeof(double), "dma counts");
    if (!s->g || !s->n_pos || !s->scores || !s->kept) { dma_destroy(s); return NULL; }
    /* calloc: pages are committed only when written, so a dense cache over a
     * large context costs nothing until its positions are used */
    int *heap = calloc(slots, sizeof(int)), *pos = calloc(slots, sizeof(int));
    float *delta = calloc(slots, sizeof(float)), *k = calloc(slots * hd, sizeof(float)),
          *v = calloc(slots * hd, sizeof(float));
    s->g[0] = (struct dma_group){ .heap = heap, .pos = pos, .delta = delta, .k = k, .v = v };
    if (!heap || !pos || !delta || !k || !v) {
        dam_fail("dma: cannot allocate the kept keys: %.0f bytes for %zu slots (lower -c or the window)",
                 (double)slots * (2 * hd + 3) * 4, slots);
        dma_destroy(s);
        return NULL;
    }
    for (size_t i = 1; i < n_groups; i++)
        s->g[i] = (struct dma_group){ .heap = heap + i * s->cap, .pos = pos + i * s->cap,
                                      .delta = delta + i * s->cap, .k = k + i * s->cap * hd,
                                      .v = v + i * s->cap * hd };
    return s;
}

static void *dma_create(const struct attn_setup *setup) { return create(setup, 0); }
static void *dma_dense_create(const struct attn_setup *setup) { return create(setup, 1); }

/* Room for the dt / δ of n positions. */
static int ensure_chunk(struct dma_state *s, int n) {
    if (n <= s->chunk_cap) return 0;
    float *dt = realloc(s->dt, (size_t)n * s->groups * sizeof(float));
    if (!dt) return dam_fail("dma: out of memory for a chunk of %d positions", n);
    s->dt = dt;
    s->chunk_cap = n;
    return 0;
}

/* The scratch of threads_count() threads (it may have grown since create). */
static int ensure_threads(struct dma_state *s) {
    const int n = threads_count();
    if (n <= s->n_threads) return 0;
    float *scores = realloc(s->scores, (size_t)n * s->cap * sizeof(float));
    if (scores) s->scores = scores;
    double *kept = scores ? realloc(s->kept, (size_t)n * sizeof(double)) : NULL;
    if (kept) s->kept = kept;
    if (!scores || !kept) return dam_fail("dma: out of memory for %d threads' scratch", n);
    s->n_threads = n;
    return 0;
}

/* One chunk of one layer, shared by the threads. */
struct dma_chunk {
    struct dma_state *s;
    struct dma_group *groups;
    int layer, pos0, n;
    const float *q, *k, *v;
    float *out;
};

/* Groups [begin, end): query t sees the set right after key t was offered. */
static void attend_groups(void *arg, int begin, int end, int thread) {
    const struct dma_chunk *c = arg;
    struct dma_state *s = c->s;
    const struct attn_setup *g = &s->setup;
    const int hd = g->head_dim, kv_dim = g->n_kv_heads * hd, q_dim = g->n_heads * hd;
    const int heads_per_group = g->n_heads / s->groups;
    const float scale = 1.0f / sqrtf((float)hd);
    float *scores = s->scores + (size_t)thread * s->cap;
    double kept = 0;
    for (int gi = begin; gi < end; gi++) {
        struct dma_group *grp = &c->groups[gi];
        const int kv_head = gi * g->n_kv_heads / s->groups;
        for (int t = 0; t < c->n; t++) {
            const float *kt = c->k + (size_t)t * kv_dim + (size_t)kv_head * hd;
            const float *vt = c->v + (size_t)t * kv_dim + (size_t)kv_head * hd;
            offer(grp, s->cap, c->pos0 + t, s->dt[(size_t)t * s->groups + gi], kt, vt, hd);
            for (int h = gi * heads_per_group; h < (gi + 1) * heads_per_group; h++)
                attend_row(grp, c->q + (size_t)t * q_dim + (size_t)h * hd, hd, scale, scores,
                           c->out + (size_t)t * q_dim + (size_t)h * hd);
            kept += (double)grp->used * heads_per_group;
        }
    }
    s->kept[thread] += kept;
}

static int dma_prefill(void *state, int layer, int pos0, int n,
                       const float *q, const float *k, const float *v, float *out) {
    struct dma_state *s = state;
    const struct attn_setup *g = &s->setup;
    if (pos0 + n > g->max_seq_len) return dam_fail("context full (%d positions)", g->max_seq_len);
    if (pos0 != s->n_pos[layer])
        return dam_fail("dma: layer %d got position %d, expected %d (positions come in order)",
                        layer, pos0, s->n_pos[layer]);
    if (ensure_chunk(s, n) != 0) return -1;
    struct dma_group *groups = s->g + (size_t)layer * s->groups;
    /* each position evicts at most one key per group: room for n entries
     * up front, so nothing allocates inside the parallel loop */
    if (pos0 + n > s->cap)
        for (int gi = 0; gi < s->groups; gi++)
            if (journal_reserve(&groups[gi].undo, n, g->head_dim) != 0) return -1;
    compute_delta(s, layer, n, v, s->dt);

    struct dma_chunk c = { .s = s, .groups = groups, .layer = layer, .pos0 = pos0, .n = n,
                           .q = q, .k = k, .v = v, .out = out };
    if (ensure_threads(s) != 0) return -1;
    for (int t = 0; t < s->n_threads; t++) s->kept[t] = 0;
    /* groups are independent; within one, positions go in order */
    if (s->groups > 1) parallel_for(s->groups, 1, attend_groups, &c);
    else attend_groups(&c, 0, s->groups, 0);
    double kept = 0;
    for (int t = 0; t < s->n_threads; t++) kept += s->kept[t];
    s->n_pos[layer] = pos0 + n;
    s->kept_pairs += kept;
    s->causal_pairs += ((double)n * pos0 + (double)n * (n + 1) / 2) * g->n_heads;
    return 0;
}

static int dma_decode(void *state, int layer, int pos,
                      const float *q, const float *k, const float *v, float *out) {
    return dma_prefill(state, layer, pos, 1, q, k, v, out);
}

/* Rebuilds a group's heap over its used slots. */
static void heapify(struct dma_group *g) {
    for (int i = 0; i < g->used; i++) g->heap[i] = i;
    for (int i = g->used / 2 - 1; i >= 0; i--) sift_down(g, i);
}

/* Forgets positions >= pos: the evictions their keys made are undone,
 * newest first, then the slots they filled are freed. */
static void dma_truncate(void *state, int pos) {
    struct dma_state *s = state;
    const struct attn_setup *g = &s->setup;
    const size_t hd = (size_t)g->head_dim;
    if (pos < 0) pos = 0;
    for (int l = 0; l < g->n_layers; l++) {
        if (pos >= s->n_pos[l]) continue;
        for (int gi = 0; gi < s->groups; gi++) {
            struct dma_group *grp = &s->g[(size_t)l * s->groups + gi];
            struct dma_journal *j = &grp->undo;
            for (; j->len > 0 && j->at[j->len - 1] >= pos; j->len--) {
                const int e = j->len - 1;
                store_slot(grp, j->slot[e], j->pos[e], j->delta[e], j->k + e * hd, j->v + e * hd, (int)hd);
            }
            /* until the set was full, slot p held position p */
            if (pos < grp->used) grp->used = pos;
            heapify(grp);
        }
        s->n_pos[l] = pos;
    }
}

/* The prompt cache: per layer its positions, per group its slots (heap
 * order, positions, δ, keys, values: the order the rows sum them in) and its
 * undo journal, so a shorter prefix restores by dma_truncate, exactly. */
static int save_group(const struct dma_group *g, struct attn_stream *f, int hd) {
    const struct dma_journal *j = &g->undo;
    const size_t n = (size_t)g->used, e = (size_t)j->len, row = (size_t)hd * sizeof(float);
    return attn_put_int(f, g->used) || attn_put(f, g->heap, n * sizeof(int)) ||
           attn_put(f, g->pos, n * sizeof(int)) || attn_put(f, g->delta, n * sizeof(float)) ||
           attn_put(f, g->k, n * row) || attn_put(f, g->v, n * row) ||
           attn_put_int(f, j->len) || attn_put(f, j->at, e * sizeof(int)) || attn_put(f, j->slot, e * sizeof(int)) ||
           attn_put(f, j->pos, e * sizeof(int)) || attn_put(f, j->delta, e * sizeof(float)) ||
           attn_put(f, j->k, e * row) || attn_put(f, j->v, e * row) ? -1 : 0;
}

static int dma_save(void *state, struct attn_stream *f) {
    struct dma_state *s = state;
    const struct attn_setup *g = &s->setup;
    const double figures[2] = { s->kept_pairs, s->causal_pairs };
    for (int l = 0; l < g->n_layers; l++)
        if (attn_put_int(f, s->n_pos[l])) return -1;
    if (attn_put(f, figures, sizeof figures)) return -1;
    for (int i = 0; i < g->n_layers * s->groups; i++)
        if (save_group(&s->g[i], f, g->head_dim)) return -1;
    return 0;
}

/* Every int of a (n) in [lo, hi]. */
static int ints_in(const int *a, int n, int lo, int hi, const char *what) {
    for (int i = 0; i < n; i++)
        if (a[i] < lo || a[i] > hi) return dam_fail("the attention state has %s %d (expected %d to %d)", what, a[i], lo, hi);
    return 0;
}

static int load_group(struct dma_state *s, struct dma_group *g, struct attn_stream *f, int n_pos) {
    const int hd = s->setup.head_dim, used = n_pos < s->cap ? n_pos : s->cap;
    const size_t row = (size_t)hd * sizeof(float);
    struct dma_journal *j = &g->undo;
    int len;
    if (attn_get_int(f, &g->used, used, used, "dma: slots used") ||
        attn_get(f, g->heap, (size_t)g->used * sizeof(int), "dma: heap") ||
        ints_in(g->heap, g->used, 0, g->used - 1, "dma: heap slot") ||
        attn_get(f, g->pos, (size_t)g->used * sizeof(int), "dma: positions") ||
        ints_in(g->pos, g->used, 0, n_pos - 1, "dma: position") ||
        attn_get(f, g->delta, (size_t)g->used * sizeof(float), "dma: biases") ||
        attn_get(f, g->k, (size_t)g->used * row, "dma: keys") || attn_get(f, g->v, (size_t)g->used * row, "dma: values") ||
        attn_get_int(f, &len, 0, n_pos, "dma: journal entries") || journal_reserve(j, len, hd))
        return -1;
    j->len = len;
    return attn_get(f, j->at, (size_t)len * sizeof(int), "dma: journal") || ints_in(j->at, len, 0, n_pos - 1, "dma: journal position") ||
           attn_get(f, j->slot, (size_t)len * sizeof(int), "dma: journal") || ints_in(j->slot, len, 0, s->cap - 1, "dma: journal slot") ||
           attn_get(f, j->pos, (size_t)len * sizeof(int), "dma: journal") || ints_in(j->pos, len, 0, n_pos - 1, "dma: journal position") ||
           attn_get(f, j->delta, (size_t)len * sizeof(float), "dma: journal") ||
           attn_get(f, j->k, (size_t)len * row, "dma: journal") || attn_get(f, j->v, (size_t)len * row, "dma: journal") ? -1 : 0;
}

static int dma_load(void *state, struct attn_stream *f, int pos) {
    struct dma_state *s = state;
    const struct attn_setup *g = &s->setup;
    double figures[2];
    for (int l = 0; l < g->n_layers; l++) {
        if (attn_get_int(f, &s->n_pos[l], pos, g->max_seq_len, "dma: positions")) return -1;
        if (s->n_pos[l] != s->n_pos[0]) return dam_fail("dma: the cached layers hold different positions");
    }
    if (attn_get(f, figures, sizeof figures, "dma: figures")) return -1;
    const size_t slots = (size_t)g->n_layers * s->groups * s->cap * g->head_dim * sizeof(float);
    attn_state_hugepages(s->g[0].k, slots);         /* every group's slots are slices of group 0's */
    attn_state_hugepages(s->g[0].v, slots);
    s->kept_pairs = figures[0];
    s->causal_pairs = figures[1];
    for (int l = 0; l < g->n_layers; l++)
        for (int gi = 0; gi < s->groups; gi++)
            if (load_group(s, &s->g[(size_t)l * s->groups + gi], f, s->n_pos[l])) return -1;
    dma_truncate(s, pos);
    return 0;
}

static void dma_stats(void *state, struct attn_stats *st) {
    struct dma_state *s = state;
    const struct attn_setup *g = &s->setup;
    memset(st, 0, sizeof *st);
    st->kept_pairs = s->kept_pairs;
    st->causal_pairs = s->causal_pairs;
    st->sparsity = s->causal_pairs > 0 ? 1.0 - s->kept_pairs / s->causal_pairs : 0;
    const size_t per_pos = 2 * (size_t)g->head_dim * sizeof(float);
    for (int l = 0; l < g->n_layers; l++) {
        /* the kept keys, and the evicted ones a rewind may need again */
        for (int gi = 0; gi < s->groups; gi++) {
            const struct dma_group *grp = &s->g[(size_t)l * s->groups + gi];
            st->kv_bytes += (size_t)(grp->used + grp->undo.len) * per_pos;
        }
        st->kv_bytes_full += (size_t)s->n_pos[l] * g->n_kv_heads * per_pos;
    }
}

static const struct attn_opt dma_options[] = {
    { "window", ATTN_OPT_INT, offsetof(struct attn_options, dma.window), 0, 0, 1 << 24, NULL, NULL, "0",
      "keys kept per query (0 = keep_window_size of config.json)" },
    { 0 },
};

const struct attn_module attn_dma = {
    .name = "dma",
    .description = "Dynamic Mask Attention of Doge models: each query keeps the keep_window_size keys "
                   "with the largest learned bias δ and adds δ to their scores (the window: "
                   "--dma-window, else keep_window_size of config.json)",
    .options = dma_options,
    .create = dma_create,
    .prefill = dma_prefill,
    .decode = dma_decode,
    .truncate = dma_truncate,
    .save = dma_save,
    .load = dma_load,
    .stats = dma_stats,
    .destroy = dma_destroy,
};

/* Not in the registry table: what "full" runs on a Doge model. */
const struct attn_module attn_dma_dense = {
    .name = "full",
    .description = "dense counterpart of Dynamic Mask Attention: every causal key, the learned bias δ "
                   "still added",
    .create = dma_dense_create,
    .prefill = dma_prefill,
    .decode = dma_decode,
    .truncate = dma_truncate,
    .save = dma_save,
    .load = dma_load,
    .stats = dma_stats,
    .destroy = dma_destroy,
};
