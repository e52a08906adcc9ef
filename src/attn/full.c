/* full.c — exact causal softmax attention: every query attends to every key
 * at or before its position. The reference every other module is measured
 * against. */
#include "dam/attn.h"
#include "dam/common.h"
#include "dam/kv_cache.h"
#include <math.h>
#include <stdlib.h>

struct full_state {
    struct attn_setup setup;
    struct kv_cache cache;
    double kept_pairs;     /* pairs visited so far (all layers, heads) */
};

static void *full_create(const struct attn_setup *setup) {
    struct full_state *s = xcalloc(1, sizeof *s, "attention state");
    if (!s) return NULL;
    s->setup = *setup;
    if (kv_cache_build(&s->cache, setup->n_layers, setup->max_seq_len,
                       setup->n_kv_heads * setup->head_dim) != 0) {
        free(s);
        return NULL;
    }
    return s;
}

static int full_prefill(void *state, int layer, int pos0, int n,
                        const float *q, const float *k, const float *v, float *out) {
    struct full_state *s = state;
    const struct attn_setup *g = &s->setup;
    if (pos0 + n > g->max_seq_len) return dam_fail("context full (%d positions)", g->max_seq_len);
    kv_cache_append(&s->cache, layer, pos0, n, k, v);
    const int group = g->n_heads / g->n_kv_heads, hd = g->head_dim, kv_dim = s->cache.kv_dim;
    const float scale = 1.0f / sqrtf((float)hd);
    const float *kc = kv_cache_k(&s->cache, layer, 0), *vc = kv_cache_v(&s->cache, layer, 0);
    #pragma omp parallel for collapse(2) schedule(dynamic, 4)
    for (int t = 0; t < n; t++)
        for (int h = 0; h < g->n_heads; h++) {
            int kvh = h / group;
            attn_row_dense(q + ((size_t)t * g->n_heads + h) * hd, kc + kvh * hd, vc + kvh * hd,
                           pos0 + t + 1, kv_dim, hd, scale,
                           out + ((size_t)t * g->n_heads + h) * hd);
        }
    /* pairs of this chunk: sum over t of (pos0 + t + 1), for every head */
    s->kept_pairs += ((double)n * pos0 + (double)n * (n + 1) / 2) * g->n_heads;
    return 0;
}

static int full_decode(void *state, int layer, int pos,
                       const float *q, const float *k, const float *v, float *out) {
    return full_prefill(state, layer, pos, 1, q, k, v, out);
}

static void full_truncate(void *state, int pos) {
    struct full_state *s = state;
    if (pos < s->cache.len) s->cache.len = pos;
}

static void full_stats(void *state, struct attn_stats *st) {
    struct full_state *s = state;
    st->kept_pairs = s->kept_pairs;
    st->causal_pairs = st->kept_pairs;
    st->sparsity = 0;
    st->kv_bytes = kv_cache_bytes(&s->cache, s->cache.len);
    st->kv_bytes_full = st->kv_bytes;
    st->fallback_heads = 0;
}

static void full_destroy(void *state) {
    struct full_state *s = state;
    if (!s) return;
    kv_cache_free(&s->cache);
    free(s);
}

const struct attn_module attn_full = {
    .name = "full",
    .description = "exact causal softmax attention over every earlier position",
    .create = full_create,
    .prefill = full_prefill,
    .decode = full_decode,
    .truncate = full_truncate,
    .stats = full_stats,
    .destroy = full_destroy,
};
