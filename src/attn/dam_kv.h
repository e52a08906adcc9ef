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
 * Per block the store can also keep a summary of its keys, the per-dimension
 * maximum and minimum (kmax, kmin), from which the selection bounds q . k
 * over the block without reading it (Quest). */
#ifndef DAM_ATTN_KV_H
#define DAM_ATTN_KV_H

#include <stddef.h>
#include "dam/attn.h"
#include "dam/kernels.h"

#define KB KV_BLOCK

struct kv_store {
    int hd;                /* head_dim */
    int max_blocks;        /* blocks of the context */
    int n_pos;             /* positions appended */
    int *page;             /* (max_blocks) page of block b, -1 = not held */
    float *pages;          /* (cap_pages, 2 * KB * hd): keys (hd, KB), then values (KB, hd) */
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

/* An empty store for max_seq positions; summaries = 1 keeps block summaries. */
int kv_store_init(struct kv_store *s, int hd, int max_seq, int summaries);
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

static inline int kv_page_floats(const struct kv_store *s) { return 2 * KB * s->hd; }

/* The kernels' view of block b (held). */
static inline struct kv_block kv_store_block(const struct kv_store *s, int b) {
    const float *p = s->pages + (size_t)s->page[b] * kv_page_floats(s);
    struct kv_block r = { p, p + (size_t)KB * s->hd, b * KB };
    return r;
}

/* Key / value of position pos (held) into k, v (hd floats each). */
void kv_store_read(const struct kv_store *s, int pos, float *k, float *v);

/* Distinct positions the store holds. */
long kv_store_positions(const struct kv_store *s);

/* The prompt cache: the positions, flags, held blocks (in block order) and
 * summaries of a store; load reads them into an empty store made for the
 * same context (pages numbered afresh: where a block lives never matters). */
int kv_store_save(const struct kv_store *s, struct attn_stream *f);
int kv_store_load(struct kv_store *s, struct attn_stream *f);

#endif
