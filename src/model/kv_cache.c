/* kv_cache.c — the flat float32 KV cache. */
#include "dam/kv_cache.h"
#include "dam/common.h"
#include <stdlib.h>
#include <string.h>

int kv_cache_build(struct kv_cache *c, int n_layers, int max_seq_len, int kv_dim) {
    memset(c, 0, sizeof *c);
    c->n_layers = n_layers; c->max_seq_len = max_seq_len; c->kv_dim = kv_dim;
    size_t each = (size_t)n_layers * max_seq_len * kv_dim;
    double bytes = 2.0 * (double)each * sizeof(float);
    /* calloc: pages are committed only when written, so a large -c costs
     * nothing until the positions are used */
    c->k = calloc(each, sizeof(float));
    c->v = c->k ? calloc(each, sizeof(float)) : NULL;
    if (!c->k || !c->v) {
        free(c->k); free(c->v);
        c->k = c->v = NULL;
        return dam_fail("cannot allocate the KV cache: %.0f bytes needed for %d positions "
                        "(lower -c)", bytes, max_seq_len);
    }
    return 0;
}

void kv_cache_free(struct kv_cache *c) {
    free(c->k); free(c->v);
    c->k = c->v = NULL;
}

void kv_cache_append(struct kv_cache *c, int layer, int pos0, int n, const float *k, const float *v) {
    size_t bytes = (size_t)n * c->kv_dim * sizeof(float);
    memcpy(kv_cache_k(c, layer, pos0), k, bytes);
    memcpy(kv_cache_v(c, layer, pos0), v, bytes);
    if (layer == c->n_layers - 1 && pos0 + n > c->len) c->len = pos0 + n;
}

size_t kv_cache_bytes(const struct kv_cache *c, int len) {
    return 2 * (size_t)c->n_layers * len * c->kv_dim * sizeof(float);
}
