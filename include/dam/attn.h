/* attn.h — the attention-module interface.
 *
 * The forward pass computes q, k, v for a chunk of tokens (RoPE already
 * applied) and hands them to the attention module, which owns the KV cache:
 * it stores k and v as it sees fit (all of them, or only what its mask will
 * ever read) and writes the attention output. So a module decides both which
 * (query, key) pairs are visited and which keys are kept, and the forward
 * pass never changes when a module is added.
 *
 * Shapes (row-major, float32):
 *   q   (n, n_heads,    head_dim)   queries of positions pos0 .. pos0+n-1
 *   k,v (n, n_kv_heads, head_dim)   keys/values of the same positions
 *   out (n, n_heads,    head_dim)   attention output, before the o-projection
 * Query head h reads KV head h / (n_heads / n_kv_heads) (grouped-query). */
#ifndef DAM_ATTN_H
#define DAM_ATTN_H

#include <stddef.h>
#include <stdint.h>
#include "dam/quant.h"

struct model;

/* Geometry and options a module is created with. */
struct attn_setup {
    int n_layers, n_heads, n_kv_heads, head_dim;
    int max_seq_len;       /* context size: the KV cache never holds more */
    const char *model_dir; /* for modules that cache per-model data */
    const struct attn_options *opts;
    const struct model *model;  /* the weights, for modules with learned parts (dma reads
                                   dt_proj and A); NULL outside a session; others ignore it */
};

/* Options of all modules, filled from flags and configs/ (defaults there). */
struct attn_options {
    /* window */
    int window_sinks;      /* first positions always kept */
    int window_size;       /* most recent positions kept, own position included */
    /* dam */
    int dam_pcl;           /* pattern capture length */
    float dam_lambda;      /* Box-Cox lambda */
    float dam_tau;         /* binarisation threshold on the amplified scale */
    float dam_mu;          /* pattern match threshold gamma >= mu */
    int dam_min_support;   /* minimum cells of a pattern inside PCL (0 = PCL/4) */
    float dam_min_coverage;/* heads covering less of their true mask fall back */
    char dam_fallback[16]; /* "full" | "window" | "none" */
    int dam_fallback_window; /* window size for the "window" fallback */
    char dam_capture[16];  /* "profile" | "auto" | "prompt" */
    char dam_profile[1024];/* path of a profile JSON, "" = none */
    /* dma */
    int dma_window;        /* keys kept per query; 0 = the model's keep_window_size */
    /* every module that supports it (full; the others store float32 for now) */
    enum kv_type kv_type;  /* KV cache elements (--kv-type), default f32 */
};

/* Figures a module reports about what it did so far. */
struct attn_stats {
    double kept_pairs;     /* (query, key) pairs visited, summed over layers and query heads */
    double causal_pairs;   /* pairs full causal attention would visit (same sum) */
    double sparsity;       /* 1 - kept / causal, 0..1 */
    size_t kv_bytes;       /* bytes of K and V held now */
    size_t kv_bytes_full;  /* bytes full attention would hold now */
    int fallback_heads;    /* heads running a fallback policy (dam) */
};

struct attn_module {
    const char *name;
    const char *description;
    /* Creates per-session state (KV cache included). NULL + dam_fail on error. */
    void *(*create)(const struct attn_setup *setup);
    /* Attention for a chunk of n >= 1 new positions starting at pos0, for one
     * layer; appends k, v to the cache. 0 ok, -1 error. */
    int (*prefill)(void *state, int layer, int pos0, int n,
                   const float *q, const float *k, const float *v, float *out);
    /* Same for exactly one position (decode); may share prefill's code. */
    int (*decode)(void *state, int layer, int pos,
                  const float *q, const float *k, const float *v, float *out);
    /* Forgets every position >= pos (used to restart a session). */
    void (*truncate)(void *state, int pos);
    void (*stats)(void *state, struct attn_stats *out);
    void (*destroy)(void *state);
};

/* The registry: every built module, by name. */
const struct attn_module *attn_find(const char *name);
/* "full, window, dam" — for messages and --help. */
const char *attn_names(void);
/* The exact attention of a model: "dma" for a model trained with Dynamic
 * Mask Attention (Doge), else "full" (dam logits, dam niah's default). */
const char *attn_default_for(const struct model *m);
/* The sparse attention dam generates with by default (dam run): "dma" for a
 * Doge model, else "dam". */
const char *attn_sparse_default_for(const struct model *m);
/* The module that runs `asked` on model m (what session_new uses): on a model
 * with DMA weights "full" becomes the dense DMA (every causal key, the
 * dynamic bias δ still added) and modules that cannot add δ are refused;
 * "dma" on a model without DMA weights is refused. NULL + dam_fail. */
const struct attn_module *attn_for_model(const struct attn_module *asked, const struct model *m);
/* Default options (the values in configs/dam.json are loaded over these). */
void attn_options_default(struct attn_options *o);

/* Exact causal softmax attention over a contiguous KV cache, shared by the
 * modules: for one query head row q (head_dim) at position pos, attend to
 * keys k[0..n_keys) (stride kv_stride floats between positions). Stable for
 * long rows (online softmax). Writes out (head_dim). */
void attn_row_dense(const float *q, const float *k, const float *v, int n_keys,
                    int kv_stride, int head_dim, float scale, float *out);

#endif
