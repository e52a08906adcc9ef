/* dam_state.h — the state of the sparse engine, shared by its files:
 * dam_engine.c (plans, stores, sparse rows, the module entry points),
 * dam_measure.c (rows that capture patterns or measure reach) and
 * dam_evict.c (eviction at the end of a prompt). Not a public header. */
#ifndef DAM_ATTN_STATE_H
#define DAM_ATTN_STATE_H

#include "dam/dam.h"
#include "dam_kv.h"
#include "dam_select.h"

#define TILE 16                     /* query rows (tokens) of one head per task */

struct dam_state {
    struct attn_setup setup;
    struct attn_options opts;      /* setup.opts points here */
    int group;                     /* query heads per KV head */
    struct head_plan *plans;       /* (n_layers, n_heads) */
    int *planned;                  /* (n_layers) 1: the layer runs its plans; 0: full attention */
    struct kv_store *kv;           /* (n_layers, n_kv_heads) */
    int *keep_all;                 /* (n_layers, n_kv_heads) 1: the store never drops a block */
    int *n_pos;                    /* (n_layers) positions appended */
    int broken;                    /* a rewind needed positions a store had dropped */
    /* capture */
    struct dam_capture *cap;       /* NULL when not capturing */
    int capture_prompt;            /* 1: derive plans at row PCL-1 (prompt capture) */
    struct dam_params params;
    struct dam_run_params run;
    struct dam_profile *profile;   /* owned: what the plans came from (NULL: window) */
    struct dam_reach *reach;       /* NULL when not measuring reach (calibration only) */
    float *reach_p;                /* (n_threads, TILE, max_seq_len) probabilities of a tile */
    struct dam_reach_scratch *reach_sc; /* (reach_threads) */
    int reach_threads;
    /* per-thread scratch */
    struct select_scratch *scratch;/* (n_threads) */
    int n_threads;
    /* eviction at the end of a prompt (--dam-evict) */
    float *last_q;                 /* (n_layers, TILE, n_heads, head_dim) the last rows of the last prompt */
    int *last_rows;                /* (n_layers) rows held there; 0 after the eviction used them */
    int *last_pos;                 /* (n_layers) position of the first of them */
    /* figures */
    double kept_pairs, causal_pairs, selected_keys, candidate_keys;
};

/* Per-thread scratch for threads_count() threads (threads.h). */
int dam_grow_scratch(struct dam_state *st);
/* 1 when block b is a sink or column block of a head of group gi. */
int dam_group_pins(const struct dam_state *st, int layer, int gi, int b);

/* dam_measure.c: rows t in [t0, t1) of a chunk at pos0 with full attention,
 * their probabilities added to the PCL capture (rows < PCL) or measured by
 * the reach capture. */
void dam_attend_capture(struct dam_state *st, int layer, int pos0, int t0, int t1, const float *q, float *out);
int dam_attend_reach(struct dam_state *st, int layer, int pos0, int t0, int t1, const float *q, float *out);

/* dam_evict.c: keep the last rows of a multi-token call; evict a layer's
 * stores when its prompt is done. */
int dam_keep_last_rows(struct dam_state *st, int layer, int pos0, int n, const float *q);
int dam_evict_layer(struct dam_state *st, int layer);

#endif
