/* dam_select.h — which key blocks a tile of query rows attends to, under
 * its head's plan (dam.h): sinks, the recent window, columns, and the blocks
 * chosen by the tile's queries. */
#ifndef DAM_ATTN_SELECT_H
#define DAM_ATTN_SELECT_H

#include "dam/dam.h"
#include "dam/kernels.h"
#include "dam_kv.h"

/* Per-thread buffers (sized for the context at init). */
struct select_scratch {
    struct kv_block *blocks;   /* (max_blocks) the list handed to the kernel */
    int *ids;                  /* (max_blocks) candidate / chosen block ids */
    float *scores;             /* (max_blocks * KB) block scores; also a row of probabilities */
    int *order;                /* (max_blocks) */
    float *qpm;                /* (2 * head_dim) summed (q+, q-) of the tile's rows */
    float *kvf;                /* (KB * head_dim) a block's keys as float32, for the readers of a
                                  16-bit store other than the kernel (captures, eviction votes) */
    /* what this thread's tasks did in the current parallel call, summed after it */
    double kept, causal, selected, candidates;
    int failed;
};

int select_scratch_init(struct select_scratch *s, int max_blocks, int head_dim);
void select_scratch_free(struct select_scratch *s);

/* What one tile did, for the module's figures. */
struct select_figures {
    double kept;               /* (row, key) pairs attended */
    double selected;           /* keys chosen by the selection */
    double candidates;         /* keys the selection chose from */
};

/* Lists in s->blocks the blocks the rows i0 .. i0 + rows - 1 (queries at q,
 * q_stride floats apart) attend to under plan, ascending; returns their
 * number, or -1 when the store lacks one of them (a bug: the store and the
 * plans disagree). */
int select_blocks(struct select_scratch *s, const struct head_plan *plan, const struct kv_store *kv,
                  const float *q, size_t q_stride, int rows, int i0, struct select_figures *fig);

/* The n blocks of ids with the highest scores, kept in ids[0 .. k) in
 * ascending id order (k = min(n, want)); returns k. order: scratch of n. */
int select_top(int *ids, const float *scores, int n, int want, int *order);

#endif
