/* full.c — exact causal softmax attention: every query attends to every key
 * at or before its position. The reference every other module is measured
 * against.
 *
 * The KV cache is kept in the blocked layout of kernels.h (per layer and KV
 * head: keys in transposed blocks of KV_BLOCK positions, values row by row),
 * so that decoding streams each head's keys and values as two contiguous
 * ranges and the score kernel loads KV_BLOCK keys with one vector load.
 * Its elements are float32, or F16 / BF16 with --kv-type (half the bytes
 * to hold and to read at every decoded token). */
#include "dam/attn.h"
#include "dam/common.h"
#include "dam/kernels.h"
#include <stdlib.h>

struct full_state {
    struct attn_setup setup;
    int cap;               /* positions the cache holds: max_seq_len rounded up to KV_BLOCK */
    int len;               /* positions held (same for all layers) */
    enum kv_type kt;       /* element type of k and v */
    char *k;               /* (layer, n_kv_heads, cap / KV_BLOCK, head_dim, KV_BLOCK) */
    char *v;               /* (layer, n_kv_heads, cap, head_dim) */
    double kept_pairs;     /* pairs visited so far (all layers, heads) */
};

static size_t layer_bytes(const struct full_state *s) {
    return (size_t)s->setup.n_kv_heads * s->cap * s->setup.head_dim * kv_type_size(s->kt);
}

static void *full_create(const struct attn_setup *setup) {
    struct full_state *s = xcalloc(1, sizeof *s, "attention state");
    if (!s) return NULL;
    s->setup = *setup;
    s->kt = setup->opts ? setup->opts->kv_type : KV_F32;
    s->cap = (setup->max_seq_len + KV_BLOCK - 1) / KV_BLOCK * KV_BLOCK;
    const size_t each = (size_t)setup->n_layers * layer_bytes(s);
    /* calloc: pages are committed only when written, so a large context
     * costs nothing until its positions are used */
    s->k = calloc(each, 1);
    s->v = s->k ? calloc(each, 1) : NULL;
    if (!s->k || !s->v) {
        dam_fail("cannot allocate the KV cache: %.0f bytes needed for %d positions (lower -c)",
                 2.0 * (double)each, setup->max_seq_len);
        free(s->k); free(s->v); free(s);
        return NULL;
    }
    return s;
}

static int full_prefill(void *state, int layer, int pos0, int n,
                        const float *q, const float *k, const float *v, float *out) {
    struct full_state *s = state;
    const struct attn_setup *g = &s->setup;
    if (pos0 + n > g->max_seq_len) return dam_fail("context full (%d positions)", g->max_seq_len);
    char *kc = s->k + (size_t)layer * layer_bytes(s), *vc = s->v + (size_t)layer * layer_bytes(s);
    kv_blocked_store(kc, vc, s->kt, s->cap, g->n_kv_heads, g->head_dim, pos0, n, k, v);
    if (attention_blocked(out, q, n, pos0, g->n_heads, g->n_kv_heads, g->head_dim, kc, vc, s->kt, s->cap) != 0)
        return -1;
    if (layer == g->n_layers - 1 && pos0 + n > s->len) s->len = pos0 + n;
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
    if (pos < s->len) s->len = pos;
}

/* The prompt cache: per layer and KV head, the positions held (keys as
 * their blocks, values as rows), in the cache's own layout and element type.
 * The pairs visited follow from the positions (every causal pair). */
static size_t head_offset(const struct full_state *s, int layer, int h) {     /* bytes */
    return (size_t)layer * layer_bytes(s) + (size_t)h * s->cap * s->setup.head_dim * kv_type_size(s->kt);
}

static int full_save(void *state, struct attn_stream *f) {
    struct full_state *s = state;
    const struct attn_setup *g = &s->setup;
    const size_t blocks = (size_t)(s->len + KV_BLOCK - 1) / KV_BLOCK, row = (size_t)g->head_dim * kv_type_size(s->kt);
    if (attn_put_int(f, s->len)) return -1;
    for (int l = 0; l < g->n_layers; l++)
        for (int h = 0; h < g->n_kv_heads; h++)
            if (attn_put(f, s->k + head_offset(s, l, h), blocks * KV_BLOCK * row) ||
                attn_put(f, s->v + head_offset(s, l, h), (size_t)s->len * row))
                return -1;
    return 0;
}

static int full_load(void *state, struct attn_stream *f, int pos) {
    struct full_state *s = state;
    const struct attn_setup *g = &s->setup;
    int len;
    if (attn_get_int(f, &len, pos, g->max_seq_len, "full: positions")) return -1;
    const size_t blocks = (size_t)(len + KV_BLOCK - 1) / KV_BLOCK, row = (size_t)g->head_dim * kv_type_size(s->kt);
    attn_state_hugepages(s->k, (size_t)g->n_layers * layer_bytes(s));
    attn_state_hugepages(s->v, (size_t)g->n_layers * layer_bytes(s));
    for (int l = 0; l < g->n_layers; l++)
        for (int h = 0; h < g->n_kv_heads; h++)
            if (attn_get(f, s->k + head_offset(s, l, h), blocks * KV_BLOCK * row, "full: keys") ||
                attn_get(f, s->v + head_offset(s, l, h), (size_t)len * row, "full: values"))
                return -1;
    s->len = pos;
    s->kept_pairs = (double)pos * (pos + 1) / 2 * g->n_heads;
    return 0;
}

static void full_stats(void *state, struct attn_stats *st) {
    struct full_state *s = state;
    const struct attn_setup *g = &s->setup;
    st->kept_pairs = s->kept_pairs;
    st->causal_pairs = st->kept_pairs;
    st->sparsity = 0;
    st->kv_bytes = 2 * (size_t)g->n_layers * s->len * g->n_kv_heads * g->head_dim * kv_type_size(s->kt);
    st->kv_bytes_full = st->kv_bytes;
    st->dense_heads = g->n_layers * g->n_heads;
    st->selecting_heads = 0;
}

static void full_destroy(void *state) {
    struct full_state *s = state;
    if (!s) return;
    free(s->k);
    free(s->v);
    free(s);
}

const struct attn_module attn_full = {
    .name = "full",
    .description = "exact causal softmax attention over every earlier position",
    .kv_types = 1,
    .create = full_create,
    .prefill = full_prefill,
    .decode = full_decode,
    .truncate = full_truncate,
    .save = full_save,
    .load = full_load,
    .stats = full_stats,
    .destroy = full_destroy,
};
