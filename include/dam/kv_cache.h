/* kv_cache.h — a plain float32 KV cache: every position of every layer.
 * Modules that keep everything (full) use it directly; others may use it for
 * the part of the cache they keep in full. */
#ifndef DAM_KV_CACHE_H
#define DAM_KV_CACHE_H

#include <stddef.h>

struct kv_cache {
    int n_layers, max_seq_len, kv_dim;   /* kv_dim = n_kv_heads * head_dim */
    int len;                             /* positions held (same for all layers) */
    float *k;                            /* (layer, max_seq_len, kv_dim) */
    float *v;                            /* (layer, max_seq_len, kv_dim) */
};

/* Allocates (lazily committed by the OS); error states the bytes needed. */
int kv_cache_build(struct kv_cache *c, int n_layers, int max_seq_len, int kv_dim);
void kv_cache_free(struct kv_cache *c);
/* Stores n positions of one layer at pos0 (k, v: (n, kv_dim)). */
void kv_cache_append(struct kv_cache *c, int layer, int pos0, int n, const float *k, const float *v);
static inline float *kv_cache_k(const struct kv_cache *c, int layer, int pos) {
    return c->k + ((size_t)layer * c->max_seq_len + pos) * c->kv_dim;
}
static inline float *kv_cache_v(const struct kv_cache *c, int layer, int pos) {
    return c->v + ((size_t)layer * c->max_seq_len + pos) * c->kv_dim;
}
/* Bytes of K and V for len positions of all layers. */
size_t kv_cache_bytes(const struct kv_cache *c, int len);

#endif
