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
#include "dam/kernels.h"

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
 * Reach (dam_reach.c): how much of each head's attention mass a plan keeps
 * at long range, measured with full attention on long calibration sequences,
 * and the per-head budget split made from it. */

#define DAM_REACH_W 9      /* recent windows of the grid: 16 .. 4096 */
#define DAM_REACH_K 8      /* selected blocks of the grid: 0, 1, 2, 4 .. 64 */
extern const int dam_reach_windows[DAM_REACH_W];
extern const int dam_reach_blocks[DAM_REACH_K];

#define DAM_REACH_ROW_STEP 4   /* rows at positions that are multiples of 4 are measured */

struct dam_reach {
    int n_layers, n_heads;
    int min_row;           /* rows before this position are not counted */
    double *kept;          /* (n_layers, n_heads, W, K) summed attention mass plan (W, K) keeps */
    double *err;           /* same cells: summed ||o_plan - o_full||^2 of the head's output */
    double *rows;          /* (n_layers) rows counted */
    double *gain;          /* (n_layers, n_heads) weight of a head's error: mean squared
                              entry of its o_proj columns (1 when unknown) */
};

/* Per-thread buffers of dam_reach_add_tile (max_blocks: the context's blocks). */
struct dam_reach_scratch {
    int *order;
    float *bm, *bv, *suf, *acc;
    double *sufm;
};
int dam_reach_scratch_init(struct dam_reach_scratch *s, int max_blocks, int hd);
void dam_reach_scratch_free(struct dam_reach_scratch *s);

struct dam_reach *dam_reach_new(int n_layers, int n_heads, int min_row);
void dam_reach_free(struct dam_reach *r);
/* Adds a tile of rows i0 .. i0 + rows - 1 of one head (those at multiples
 * of DAM_REACH_ROW_STEP): p (rows, ld) its attention probabilities (row
 * r over keys 0 .. i0 + r), bound[b] the selection score of block b for this
 * tile (b < i0 / 16), blocks the KV blocks 0 .. (i0 + rows - 1) / 16 (of a
 * float32 store: calibration runs with float32 keys and values).
 * Not thread-safe for one head. */
void dam_reach_add_tile(struct dam_reach *r, int layer, int head, int i0, int rows, const float *p,
                        size_t ld, const float *bound, const struct kv_block *blocks, int hd,
                        struct dam_reach_scratch *sc);
/* Per-head windows and selected blocks ((n_layers * n_heads) each) for a
 * budget of `budget` keys per row per head on average, chosen to minimise
 * the summed gain * output error; every head selects at least min_select
 * blocks. */
int dam_reach_allocate(const struct dam_reach *r, int budget, int min_select, int *window, int *select);

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
    struct dam_reach *reach; /* owned; NULL when the profile has no reach figures */
};

struct dam_profile *dam_profile_new(int n_layers, int n_heads, int n_kv_heads, int head_dim,
                                    const struct dam_params *p);
void dam_profile_free(struct dam_profile *p);
/* A deep copy (NULL + dam_fail when out of memory). */
struct dam_profile *dam_profile_clone(const struct dam_profile *p);
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
 * The sparse attention engine (dam_engine.c): the state of the dam and
 * window modules.
 *
 * Keys are handled in blocks of KV_BLOCK (16) positions, and so are query
 * rows: the rows of one block (those of a call) form a tile. Every (layer,
 * head) runs a plan: for a tile of query rows it attends to
 *   - sinks:   blocks [0, sink_blocks);
 *   - window:  the rows' own block (causal inside) and the
 *              dam_window_blocks(window) blocks before it, so each row sees
 *              at least `window` recent positions;
 *   - columns: fixed blocks (DAM's column patterns);
 *   - selection: the `select` blocks of the rest with the highest bound on
 *              q . k for this tile's queries (query-aware, Quest's bound
 *              from per-block key maxima and minima).
 * A dense plan attends to every causal key. Per (layer, KV head) the cache
 * keeps every block when a head of the group is dense or selects; else only
 * what the plans will read again (sinks, columns, the recent window). */

/* Blocks before a row's own block that a window of w positions takes, so
 * that every row of the block sees at least w positions (own included). */
static inline int dam_window_blocks(int w) { return w > 1 ? (w - 2) / KV_BLOCK + 1 : 0; }

struct head_plan {
    int dense;             /* 1: every causal key (the fields below unused) */
    int sink_blocks;       /* blocks [0, sink_blocks) always kept */
    int window;            /* recent positions kept, own included (>= 1) */
    int n_cols;
    int *cols;             /* (n_cols) column blocks, ascending, each >= sink_blocks */
    int select;            /* blocks chosen per query tile among the others; 0 = none */
};

void head_plan_free(struct head_plan *p);
int head_plan_copy(struct head_plan *dst, const struct head_plan *src);

/* The runtime options of the engine (which heads select, budgets). */
struct dam_run_params {
    int sinks;             /* positions always kept (rounded up to blocks) */
    int recent;            /* smallest recent window of any head */
    int select;            /* positions a selecting head chooses per query tile */
    int select_heads;      /* DAM_SELECT_ALL | DAM_SELECT_WEAK | DAM_SELECT_NONE */
    int columns;           /* 1: keep the profile's column patterns */
    int budget;            /* keys per row per head, split across heads by the profile's
                              reach figures; 0 = every head gets recent + select */
    int min_select;        /* blocks every head selects at least (with a budget) */
    int evict;             /* > 0: blocks each KV head keeps at the end of a prompt beyond its
                              sinks, columns and windows; the others are dropped */
};
enum { DAM_SELECT_NONE, DAM_SELECT_WEAK, DAM_SELECT_ALL };

/* The plan of a profile head under run parameters r. */
int head_plan_from_profile(struct head_plan *plan, const struct dam_head *h, const struct dam_params *p,
                           const struct dam_run_params *r);
/* The plans of every head of a profile, (n_layers * n_heads): with a
 * budget and reach figures, each head's window and selection come from the
 * budget split (dam_reach_allocate); else head_plan_from_profile. */
int dam_profile_plans(const struct dam_profile *p, const struct dam_run_params *r, struct head_plan *plans);

struct dam_state;

/* A state whose heads all attend fully (plans set later), KV kept in full. */
struct dam_state *dam_state_new(const struct attn_setup *setup);
/* Gives every head of a layer its plan (copied) and fits the layer's KV
 * stores to what the plans read. */
int dam_state_set_plans(struct dam_state *st, int layer, const struct head_plan *plans);
/* Runs every layer with a profile's patterns under run parameters r
 * (geometry checked). */
int dam_state_use_profile(struct dam_state *st, const struct dam_profile *p, const struct dam_run_params *r);
/* The same, taking ownership of p (freed with the state, even on error). */
int dam_state_adopt_profile(struct dam_state *st, struct dam_profile *p, const struct dam_run_params *r);
/* Options -> run parameters; -1 + dam_fail on a bad value. */
int dam_run_params_from_options(const struct attn_options *o, struct dam_run_params *r);
/* Capture: rows < pcl run full attention and add their probabilities to a
 * capture. prompt = 1: at row pcl each layer derives its plans from what it
 * captured (params p, run parameters r) and goes sparse; prompt = 0
 * (calibration): stays full. */
int dam_state_start_capture(struct dam_state *st, const struct dam_params *p,
                            const struct dam_run_params *r, int prompt);
struct dam_capture *dam_state_capture(struct dam_state *st);
/* Reach capture (calibration): rows >= min_row run full attention and their
 * probabilities go to a struct dam_reach. Before the first position only. */
int dam_state_start_reach(struct dam_state *st, int min_row);
struct dam_reach *dam_state_reach(struct dam_state *st);
/* The profile the state runs (loaded, calibrated or captured from the
 * prompt); NULL for window. */
const struct dam_profile *dam_state_profile(const struct dam_state *st);

int dam_state_prefill(void *state, int layer, int pos0, int n,
                      const float *q, const float *k, const float *v, float *out);
int dam_state_decode(void *state, int layer, int pos,
                     const float *q, const float *k, const float *v, float *out);
void dam_state_truncate(void *state, int pos);
/* The prompt cache (attn.h: save, load): plans compared, positions, the
 * eviction's rows, figures and KV stores restored. */
int dam_state_save(void *state, struct attn_stream *f);
int dam_state_load(void *state, struct attn_stream *f, int pos);
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
/* The reach of every head (dam_reach.c) over long token sequences, rows
 * from min_row on. */
struct dam_reach *dam_calibrate_reach(const struct model *m, const int *const *seqs, const int *lens,
                                      int n_seqs, const struct attn_options *o, int min_row, int verbose);
/* The same over a text of documents separated by lines holding one form
 * feed: each tokenized with BOS and cut into sequences of seq_len tokens (a
 * continuation starting with BOS again), at most max_seqs (0 = all);
 * pieces too short to pass min_row are left out. */
struct dam_reach *dam_calibrate_reach_text(const struct model *m, const struct tokenizer *tok,
                                           const char *text, int seq_len, int max_seqs,
                                           const struct attn_options *o, int min_row, int verbose);
/* Same from token sequences (each run from position 0). */
struct dam_profile *dam_calibrate_tokens(const struct model *m, const int *const *seqs,
                                         const int *lens, int n_seqs,
                                         const struct attn_options *o, const char *what,
                                         int verbose);
/* dam_calibrate_texts with a second cap: at most per_text sequences from
 * each text (0 = no cap), so that a long first text cannot crowd out the
 * next one. */
struct dam_profile *dam_calibrate_texts_capped(const struct model *m, const struct tokenizer *tok,
                                               const char *const *texts, int n_texts,
                                               const struct attn_options *o, const char *what,
                                               int max_seqs, int per_text, int verbose);
/* The automatic profile of model m (dam_auto.c): loaded from the cache
 * ($XDG_CACHE_HOME/dam/profiles or ~/.cache/dam/profiles/<key>.json), else
 * calibrated on the texts of prompts/ ($DAM_CALIBRATION replaces the
 * patterns' texts) with tok (NULL: the model's tokenizer.json) and cached.
 * path_out (may be NULL) gets the cache file's path. */
struct dam_profile *dam_auto_profile(const struct model *m, const struct tokenizer *tok,
                                     const struct attn_options *o, char *path_out, size_t size);

#endif
