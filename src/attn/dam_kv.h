/* dam_kv.h — the KV store of the sparse modules (dam, window): one per
 * (layer, KV head), paged.
 *
 * Positions are grouped in blocks of KV_BLOCK (16). A block lives in a page:
 * its keys transposed (head_dim, KV_BLOCK), so one vector load gives one
 * dimension of 16 keys, then its values (KV_BLOCK, head_dim), the layout
 * struct kv_block of kernels.h points into. A block table maps every block
 * of the context to its page, or to -1 once the block is dropped: a head
 * that only ever reads a recent window, sinks and a few columns lets its
 * store drop everything else, and a page freed is reused by the next block,
 * so such a store stays as small as what it reads.
 *
 * Keys and values are stored in the session's KV element type (--kv-type):
 * float32, or F16 / BF16 rounded to nearest even (half the bytes, half the
 * bytes read per kept pair); the block kernel converts them back to
 * float32 in registers.
 *
 * Per block the store can also keep a summary of its keys, the per-dimension
 * maximum and minimum (kmax, kmin), from which the selection bounds q . k
 * over the block without reading it (Quest). The summaries stay float32,
 * made from the keys as stored (rounded), so the bound holds for the keys
 * the kernel reads. */
#ifndef DAM_ATTN_KV_H
#define DAM_ATTN_KV_H

#include <stddef.h>
#include "dam/attn.h"
#include "dam/kernels.h"

#define KB KV_BLOCK

struct kv_store {
    int hd;                /* head_dim */
    enum kv_type kt;       /* element type of the pages' keys and values */
    int max_blocks;        /* blocks of the context */
    int n_pos;             /* positions appended */
    int *page;             /* (max_blocks) page of block b, -1 = not held */
    unsigned char *pages;  /* (cap_pages, 2 * KB * hd) elements: keys (hd, KB), then values (KB, hd) */
    int n_pages, cap_pages;/* pages handed out (in use or on the free list), allocated */
    int *free_pages;       /* (cap_pages) pages ready for reuse */
    int n_free;
    int held;              /* blocks with a page */
    int evicted;           /* 1: blocks were dropped for good (--dam-evict): readers skip them */
    int summaries;         /* 1: keep a summary per block */
    float *sums;           /* (sums_cap / 16, 2 * hd, 16): (kmax, kmin) of each block's keys,
                              16 blocks transposed together (block_bounds in kernels.h) */
    int sums_cap;          /* blocks sums has room for, a multiple of 16 (grows with the positions) */
};

/* An empty store for max_seq positions of elements kt; summaries = 1 keeps
 * block summaries. */
int kv_store_init(struct kv_store *s, int hd, int max_seq, enum kv_type kt, int summaries);
void kv_store_free(struct kv_store *s);

/* Appends positions [pos0, pos0 + n) (pos0 == s->n_pos): key t at
 * k + t * stride, value t at v + t * stride. */
int kv_store_append(struct kv_store *s, int pos0, int n, const float *k, const float *v, size_t stride);

/* Forgets positions >= pos: blocks past it are dropped, the block holding
 * pos keeps its first lanes (summary recomputed). Returns -1 (no dam_fail)
 * when a position < pos had already been dropped. */
int kv_store_truncate(struct kv_store *s, int pos);

/* Drops block b (its page goes to the free list). */
void kv_store_drop(struct kv_store *s, int b);

/* Bytes of a page: a block's keys and values. */
static inline size_t kv_page_bytes(const struct kv_store *s) { return 2 * (size_t)KB * s->hd * kv_type_size(s->kt); }

/* The kernels' view of block b (held); its elements are of type s->kt. */
static inline struct kv_block kv_store_block(const struct kv_store *s, int b) {
    const unsigned char *p = s->pages + (size_t)s->page[b] * kv_page_bytes(s);
    struct kv_block r = { p, p + (size_t)KB * s->hd * kv_type_size(s->kt), b * KB };
    return r;
}

/* Key / value of position pos (held) into k, v (hd floats each). */
void kv_store_read(const struct kv_store *s, int pos, float *k, float *v);

/* For the code that reads keys and values itself (captures, eviction
 * votes): block b's keys (hd, KB) / the value of lane j of block b as
 * float32: the page itself for a float32 store, else converted into tmp
 * (hd * KB floats / hd floats). */
static inline const float *kv_store_keys_f32(const struct kv_store *s, int b, float *tmp) {
    const struct kv_block blk = kv_store_block(s, b);
    if (s->kt == KV_F32) return blk.k;
    kv_row_f32(s->kt, blk.k, s->hd * KB, tmp);
    return tmp;
}
static inline const float *kv_store_value_f32(const struct kv_store *s, int b, int j, float *tmp) {
    const struct kv_block blk = kv_store_block(s, b);
    const size_t at = (size_t)j * s->hd * kv_type_size(s->kt);
    if (s->kt == KV_F32) return (const float *)((const unsigned char *)blk.v + at);
    kv_row_f32(s->kt, (const unsigned char *)blk.v + at, s->hd, tmp);
    return tmp;
}

/* Distinct positions the store holds. */
long kv_store_positions(const struct kv_store *s);

/* The prompt cache: the positions, flags, held blocks (in block order) and
 * summaries of a store; load reads them into an empty store made for the
 * same context (pages numbered afresh: where a block lives never matters). */
int kv_store_save(const struct kv_store *s, struct attn_stream *f);
int kv_store_load(struct kv_store *s, struct attn_stream *f);

#endif
