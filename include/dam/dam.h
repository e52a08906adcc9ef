/* dam.h — Dynamic Attention Mask (DAM): the capture math, profiles, and the
 * sparse attention engine shared by the `dam` and `window` modules.
 *
 * The method (docs: ../shared/docs/DAM.md, README "Dynamic Attention Mask"):
 *   1. capture: run full attention on calibration sequences of length <= PCL
 *      and sum the attention probabilities per (layer, head, i, j): S, and
 *      the number of sequences that reached row i: C.
 *   2. amplify the mean map A = S / C with Box-Cox (lambda), shift each layer
 *      so its minimum is 0, keep the cells >= tau: the head's "true mask" M.
 *   3. match M against a pool of patterns that extend to any length:
 *      diagonals (i, i - r) and columns (i, c); keep those with
 *      gamma = |M ∩ P| / |P| >= mu and enough support |P|.
 *   4. attend, for row i, only to keys i - r (r in R) and c (c in C).
 * Heads whose patterns cover too little of M fall back to a stated policy.
 *
 * Layout conventions: a causal triangle of side n is stored row-major,
 * cell (i, j) with j <= i at dam_tri(i, j). */
#ifndef DAM_DAM_H
#define DAM_DAM_H

#include <stddef.h>
#include <stdint.h>
#include "dam/attn.h"

/* ---------------------------------------------------------------------------
 * Parameters */

enum dam_fallback {
    DAM_FALLBACK_NONE,     /* the head keeps its matched patterns only */
    DAM_FALLBACK_FULL,     /* the head attends to everything (and keeps all KV) */
    DAM_FALLBACK_WINDOW,   /* patterns plus sinks plus a recent window */
};

struct dam_params {
    int pcl;               /* pattern capture length */
    float lambda;          /* Box-Cox lambda */
    float tau;             /* threshold on the amplified, shifted scale */
    float mu;              /* pattern kept when gamma >= mu */
    int min_support;       /* pattern kept only when it has >= this many cells inside PCL */
    float min_coverage;    /* heads covering less of their true mask fall back */
    enum dam_fallback fallback;
    int fallback_window;   /* recent positions of the window fallback (own included) */
    int fallback_sinks;    /* first positions of the window fallback */
};

/* Resolves options into parameters (min_support 0 -> pcl / 4, the fallback
 * name checked). -1 + dam_fail on a bad value. */
int dam_params_from_options(const struct attn_options *o, struct dam_params *p);
const char *dam_fallback_name(enum dam_fallback f);
/* "none" | "full" | "window" -> enum; -1 when unknown. */
int dam_fallback_parse(const char *name);

/* ---------------------------------------------------------------------------
 * Capture math (dam_capture.c) */

static inline size_t dam_tri(int i, int j) { return (size_t)i * (size_t)(i + 1) / 2 + (size_t)j; }
static inline size_t dam_tri_size(int n) { return (size_t)n * (size_t)(n + 1) / 2; }

/* Box-Cox of max(x, 1e-10): (x^lambda - 1) / lambda, ln x when lambda = 0. */
float dam_boxcox(float x, float lambda);

/* Accumulated attention of full attention over the first PCL positions. */
struct dam_capture {
    int n_layers, n_heads, pcl;
    float *sum;            /* (n_layers, n_heads, dam_tri_size(pcl)) summed probabilities S */
    uint32_t *rows;        /* (n_layers, pcl) sequences that computed row i: C[i][j] = rows[i] */
    int n_sequences;       /* sequences started (rows[layer 0][0] counted) */
    long n_tokens;         /* rows captured in layer 0 */
};

struct dam_capture *dam_capture_new(int n_layers, int n_heads, int pcl);
void dam_capture_free(struct dam_capture *c);
/* Forgets rows >= from of every layer (a rewind inside PCL). */
void dam_capture_forget(struct dam_capture *c, int from);
/* Adds the probabilities p[0..i] of row i < pcl of (layer, head). The row
 * count is added separately, once per (layer, row): dam_capture_count_row. */
static inline void dam_capture_add_row(struct dam_capture *c, int layer, int head, int i,
                                       const float *p) {
    float *s = c->sum + ((size_t)layer * c->n_heads + head) * dam_tri_size(c->pcl) + dam_tri(i, 0);
    for (int j = 0; j <= i; j++) s[j] += p[j];
}
void dam_capture_count_row(struct dam_capture *c, int layer, int i);

/* Stage 1 for one layer: the true masks of its heads, (n_heads,
 * dam_tri_size(pcl)) bytes, 1 = kept. Cells of rows no sequence reached are 0. */
void dam_true_masks(const struct dam_capture *c, int layer, const struct dam_params *p,
                    uint8_t *masks);

/* Match score of diagonal r / column c against a true mask of side pcl whose
 * rows [0, n_rows) are known: gamma = |M ∩ P| / |P|; *support gets |P| (the
 * pattern's cells inside the known rows). gamma is 0 when |P| = 0. */
float dam_gamma_diagonal(const uint8_t *mask, int pcl, int n_rows, int r, int *support);
float dam_gamma_column(const uint8_t *mask, int pcl, int n_rows, int c, int *support);

/* ---------------------------------------------------------------------------
 * Profiles: per (layer, head) matched patterns (dam_capture.c builds them,
 * dam_profile.c reads and writes JSON) */

struct dam_head {
    enum dam_fallback fallback;    /* policy applied (NONE: its patterns) */
    int n_offsets, n_columns;
    int *offsets;          /* (n_offsets) matched diagonal offsets, ascending, 0 first */
    int *columns;          /* (n_columns) matched columns, ascending */
    float coverage;        /* |M ∩ extended| / |M| inside the captured rows (1 when M empty) */
    float true_density;    /* |M| / captured causal cells */
    float ext_density;     /* |extended| / captured causal cells (patterns, before fallback) */
    uint8_t *true_mask;    /* (dam_tri_size(pcl)) 0/1, NULL when not known */
};

struct dam_profile {
    int n_layers, n_heads, n_kv_heads, head_dim;
    struct dam_params params;
    int n_rows;            /* rows of the PCL triangle any sequence reached */
    int n_sequences;
    long n_tokens;
    char source[1280];     /* what it was captured from (files, "prompt") */
    struct dam_head *heads;/* (n_layers, n_heads) */
};

struct dam_profile *dam_profile_new(int n_layers, int n_heads, int n_kv_heads, int head_dim,
                                    const struct dam_params *p);
void dam_profile_free(struct dam_profile *p);
/* Stages 1-3 for one layer of a capture, into prof->heads[layer * n_heads ..]. */
int dam_profile_capture_layer(struct dam_profile *prof, const struct dam_capture *c, int layer);
/* Stages 1-3 for every layer. */
struct dam_profile *dam_profile_from_capture(const struct dam_capture *c, const struct dam_params *p,
                                             int n_kv_heads, int head_dim);
/* Sets one head's patterns (copies the arrays; sorts, adds offset 0). */
int dam_head_set(struct dam_head *h, const int *offsets, int n_offsets,
                 const int *columns, int n_columns);
int dam_profile_fallback_heads(const struct dam_profile *p);

/* JSON (cJSON). Errors name the file and what is wrong. */
char *dam_profile_to_json(const struct dam_profile *p);        /* heap string */
struct dam_profile *dam_profile_parse(const char *json, size_t len, const char *what);
int dam_profile_save(const struct dam_profile *p, const char *path);   /* output_write: atomic, or "-" */
struct dam_profile *dam_profile_load(const char *path);
/* -1 + "profile WHAT was made for ...; this model has ..." on a mismatch. */
int dam_profile_check_geometry(const struct dam_profile *p, int n_layers, int n_heads,
                               int n_kv_heads, int head_dim, const char *what);

/* Loads the option values of a configs/dam.json-style file over o (keys
 * absent in the file keep their value). */
int dam_options_load(const char *path, struct attn_options *o);
/* Finds a file shipped with dam (e.g. "prompts/calibration.txt"): data_find
 * of common.h (the build tree, an installed PREFIX/share/dam, ...). */
int dam_find_data_file(const char *rel, char *out, size_t size);

/* ---------------------------------------------------------------------------
 * Extended masks as runs (dam.c): what the kernels iterate */

struct dam_mask {
    int full;              /* 1: every causal pair (the other fields unused) */
    int n_diag, n_col;
    int *diag;             /* (n_diag, 2) runs of diagonal offsets [lo, hi], ascending */
    int *col;              /* (n_col, 2) runs of columns [lo, hi], ascending */
};

/* Compresses sets of offsets and columns (any order, duplicates allowed;
 * offset 0 is added) into runs. */
int dam_mask_build(struct dam_mask *m, const int *offsets, int n_offsets,
                   const int *columns, int n_columns);
void dam_mask_full(struct dam_mask *m);
/* The mask a profile head runs with: its patterns and its fallback. */
int dam_mask_for_head(struct dam_mask *m, const struct dam_head *h, const struct dam_params *p);
void dam_mask_free(struct dam_mask *m);
/* The kept keys of row i as disjoint ascending runs [lo, hi] (runs: room for
 * 2 * (n_diag + n_col + 1) ints); returns the number of runs. */
int dam_mask_row_runs(const struct dam_mask *m, int i, int *runs);
/* Largest diagonal offset (the recent window a head needs is this + 1). */
int dam_mask_max_offset(const struct dam_mask *m);

/* ---------------------------------------------------------------------------
 * The sparse attention engine (dam.c): the state of the dam and window
 * modules. Per layer, every head runs its mask; per (layer, KV head) the
 * cache keeps either every position or, when all heads of the group are
 * windows plus columns, a ring of the last W positions plus the columns. */

struct dam_state;

/* A state whose heads all attend fully (masks set later), KV kept in full. */
struct dam_state *dam_state_new(const struct attn_setup *setup);
/* Gives every head of a layer its mask (copied) and shrinks the layer's KV
 * groups to what the masks will read. */
int dam_state_set_masks(struct dam_state *st, int layer, const struct dam_mask *masks);
/* Runs every layer with a profile's masks (geometry checked). */
int dam_state_use_profile(struct dam_state *st, const struct dam_profile *p);
/* Capture: rows < pcl run full attention and add their probabilities to a
 * capture. prompt = 1: at row pcl each layer derives its masks from what it
 * captured (params p) and goes sparse; prompt = 0 (calibration): stays full. */
int dam_state_start_capture(struct dam_state *st, const struct dam_params *p, int prompt);
struct dam_capture *dam_state_capture(struct dam_state *st);
/* The profile the state runs (loaded, calibrated or captured from the
 * prompt); NULL for window. */
const struct dam_profile *dam_state_profile(const struct dam_state *st);

int dam_state_prefill(void *state, int layer, int pos0, int n,
                      const float *q, const float *k, const float *v, float *out);
int dam_state_decode(void *state, int layer, int pos,
                     const float *q, const float *k, const float *v, float *out);
void dam_state_truncate(void *state, int pos);
void dam_state_stats(void *state, struct attn_stats *out);
void dam_state_free(void *state);

/* The dam module's state behind an attention module state (NULL when the
 * module is not dam or window). */
struct dam_state *dam_state_of(const struct attn_module *m, void *state);

/* ---------------------------------------------------------------------------
 * Calibration (dam_calibrate.c): running a model to fill a capture */

struct model;
struct tokenizer;

/* Runs calibration texts through the model with full attention and returns
 * the profile. texts: n_texts NUL-terminated strings. Documents inside a text
 * are separated by blank lines; each is tokenized with the tokenizer's
 * special tokens (BOS) and cut into sequences of PCL tokens, a continuation
 * starting with BOS again. max_seqs > 0 caps the sequences used.
 * what: recorded as the profile's source. */
struct dam_profile *dam_calibrate_texts(const struct model *m, const struct tokenizer *tok,
                                        const char *const *texts, int n_texts,
                                        const struct attn_options *o, const char *what,
                                        int max_seqs, int verbose);
/* Same from token sequences (each run from position 0). */
struct dam_profile *dam_calibrate_tokens(const struct model *m, const int *const *seqs,
                                         const int *lens, int n_seqs,
                                         const struct attn_options *o, const char *what,
                                         int verbose);
/* The automatic profile of a model: loaded from the cache
 * ($XDG_CACHE_HOME/dam/profiles or ~/.cache/dam/profiles/<key>.json), else
 * calibrated on prompts/calibration.txt plus prompts/calibration_retrieval.txt
 * ($DAM_CALIBRATION alone when set) and cached. */
struct dam_profile *dam_auto_profile(const struct attn_setup *setup, char *path_out, size_t size);

#endif
