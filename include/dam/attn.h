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
#include <stdio.h>
#include "dam/attn_options.h"
#include "dam/quant.h"

struct model;
struct tokenizer;
struct dam_profile;

/* A module's saved state in memory (the prompt cache): save appends to out
 * (out NULL: only counts, so the caller can size the buffer before the real
 * pass), load reads from in (the cache file, mapped): one copy from the file's
 * pages to the state's, measured 8x faster than reading through stdio. */
struct attn_stream {
    unsigned char *out;        /* writing: room for cap bytes; NULL: count only */
    const unsigned char *in;   /* reading: len bytes */
    size_t len;                /* bytes written (or counted) / readable */
    size_t cap;
    size_t at;                 /* reading: bytes read */
};

/* Geometry and options a module is created with. */
struct attn_setup {
    int n_layers, n_heads, n_kv_heads, head_dim;
    int max_seq_len;       /* context size: the KV cache never holds more */
    const char *model_dir; /* for modules that cache per-model data */
    const struct attn_options *opts;
    const struct model *model;  /* the weights, for modules with learned parts (dma reads
                                   dt_proj and A); NULL outside a session; others ignore it */
};


/* Figures a module reports about what it did so far. */
struct attn_stats {
    double kept_pairs;     /* (query, key) pairs visited, summed over layers and query heads */
    double causal_pairs;   /* pairs full causal attention would visit (same sum) */
    double sparsity;       /* 1 - kept / causal, 0..1 */
    size_t kv_bytes;       /* bytes of K and V held now */
    size_t kv_bytes_full;  /* bytes full attention would hold now */
    int dense_heads;       /* (layer, head)s attending to every key (dam, window) */
    int selecting_heads;   /* (layer, head)s choosing blocks by query (dam) */
    double selected_share; /* keys chosen by selection / keys it chose from (dam), 0 if none */
};

struct attn_module {
    const char *name;
    const char *description;
    /* The module's options (attn_options.h), ending with a row whose key is
     * NULL; NULL when it has none. Flags are --NAME-KEY. */
    const struct attn_opt *options;
    /* 1: the module keeps K and V in the element type opts->kv_type asks
     * for (--kv-type: full, window, dam); 0: float32 whatever it asks (dma). */
    int kv_types;
    /* Optional: what a module needs from the model before its sessions are
     * created (dam: its automatic profile, from the cache or calibrated with
     * the caller's model and tokenizer), stored in o. 0 ok, -1 + dam_fail. */
    int (*prepare)(struct attn_options *o, const struct model *m, const struct tokenizer *tok);
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
    /* The prompt cache (include/dam/prompt_cache.h). save writes what prefill
     * built (positions, KV stores, counters, figures) to f, in a layout of
     * the module's own that only its load reads; the caller pins the model,
     * module, options and format around it. load restores it into a state
     * fresh from create with the same setup and options, as it was after
     * `pos` positions (pos <= the positions saved: a shorter shared prefix).
     * 0 ok; 1 + dam_fail (why) when the saved state no longer covers pos (a
     * module that dropped keys before it: only the whole state restores);
     * -1 + dam_fail when f holds no such state (short, inconsistent with the
     * geometry or the plans). After 1 or -1 the state is unusable (destroy it). */
    int (*save)(void *state, struct attn_stream *f);
    int (*load)(void *state, struct attn_stream *f, int pos);
    void (*stats)(void *state, struct attn_stats *out);
    void (*destroy)(void *state);
};

/* The registry: every built module, by name. */
const struct attn_module *attn_find(const char *name);
/* The i-th module of the registry, NULL past the last. */
const struct attn_module *attn_module_at(int i);
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

/* ---- options by name (src/attn/options.c), from the modules' tables ----
 * Each returns 0, or -1 with a one-line dam_fail naming the option, the
 * value and what was expected. */
/* "--dam-min-support" -> dam's option "min-support"; NULL when no module has it. */
const struct attn_opt *attn_opt_for_flag(const char *flag, const struct attn_module **mod);
/* An option of module m by key (or its alias; '_' and '-' are the same). */
const struct attn_opt *attn_opt_find(const struct attn_module *m, const char *key);
/* Parses and range-checks value into o; what names it in errors. */
int attn_opt_set(struct attn_options *o, const struct attn_opt *opt, const char *value, const char *what);
/* Loads {"MODULE": {"KEY": VALUE, ...}, ...} (configs/dam.json) over o;
 * unknown modules and keys are errors; keys starting with '_' are comments. */
int attn_options_load(const char *path, struct attn_options *o);
/* "key=value,..." of every option of m (what a run of m depended on). */
int attn_options_describe(const struct attn_module *m, const struct attn_options *o, char *out, size_t size);
/* Help lines of every module's options, with the defaults of o. */
void attn_options_help(FILE *out, const struct attn_options *o);
/* Runs m's prepare hook (if any) on o, for model m; tok may be NULL (a
 * module that needs one reads the model's tokenizer.json). Call it before
 * session_new with a module that has one; attn_options_release undoes it. */
int attn_prepare(const struct attn_module *mod, struct attn_options *o, const struct model *m,
                 const struct tokenizer *tok);
void attn_options_release(struct attn_options *o);

/* ---- the modules' save and load (src/attn/state_io.c) ----
 * Raw native-endian bytes; each returns 0, or -1 with a dam_fail that says
 * what was short (no room, a state that ends early) or out of range. */
int attn_put(struct attn_stream *f, const void *p, size_t bytes);
int attn_get(struct attn_stream *f, void *p, size_t bytes, const char *what);
int attn_put_int(struct attn_stream *f, int v);
int attn_get_int(struct attn_stream *f, int *v, int min, int max, const char *what);
/* Before a load fills a large array of a fresh state (page faults, not the
 * copy, are most of a load's time otherwise): asks for huge pages for all
 * of it, or maps the pages of [p, p + bytes) in one call. */
void attn_state_hugepages(void *p, size_t bytes);
void attn_state_populate(void *p, size_t bytes);

/* Exact causal softmax attention over a contiguous KV cache, shared by the
 * modules: for one query head row q (head_dim) at position pos, attend to
 * keys k[0..n_keys) (stride kv_stride floats between positions). Stable for
 * long rows (online softmax). Writes out (head_dim). */
void attn_row_dense(const float *q, const float *k, const float *v, int n_keys,
                    int kv_stride, int head_dim, float scale, float *out);

#endif
