/* niah.h — long-context retrieval tests: prompts with a needle hidden in a
 * haystack, their scoring, and the grid's output files.
 *
 * Tasks (formats and scoring from shared/docs/LONG_CONTEXT_TASKS.md):
 *   passkey   "The pass key is 71432. ..." in prose; score: the first integer
 *             of the output equals the key.
 *   niah      RULER niah_single: "One of the special magic numbers for
 *             <word>-<word> is: <7 digits>."; score: the number appears in
 *             the output (case-insensitive substring).
 *   multikey  niah with 4 needles of different keys, one asked.
 *   lines     LongEval lines: a record of "line <word>-<word>:
 *             REGISTER_CONTENT is <n>" lines, one asked; score: the last
 *             integer of the output equals the value.
 *
 * Everything here is pure (no model): prompt construction needs only a way
 * to turn text into the model's tokens (struct niah_encoder), so it is
 * tested with a toy encoder as well as real tokenizers. The model loop lives
 * in src/cli/niah.c.
 *
 * Errors: -1 / NULL after dam_fail(), as everywhere. */
#ifndef DAM_NIAH_H
#define DAM_NIAH_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

struct tokenizer;

enum niah_task { NIAH_PASSKEY, NIAH_NIAH, NIAH_MULTIKEY, NIAH_LINES, NIAH_N_TASKS };

const char *niah_task_name(enum niah_task t);           /* "passkey", ... */
/* -1 + dam_fail naming the tasks for an unknown name. */
int niah_task_parse(const char *name, enum niah_task *out);
/* New tokens a task's answer needs (the -n default). */
int niah_default_answer_tokens(enum niah_task t);
/* Needles hidden in a multikey prompt (one of them is asked). */
#define NIAH_MULTIKEY_NEEDLES 4

/* ---- parsing grid flags ---- */

/* "1k,2k,4096" -> lengths (heap); k = 1024, "1.5k" allowed. Values must be
 * >= 1, distinct. -1 + dam_fail. */
int niah_parse_lengths(const char *list, int **out, int *n);
/* "0,0.25,1" -> depths in [0, 1] (heap), distinct. -1 + dam_fail. */
int niah_parse_depths(const char *list, float **out, int *n);
/* 1024 -> "1k", 1536 -> "1.5k", 300 -> "300". */
void niah_format_length(int length, char *buf, size_t size);

/* ---- haystack ---- */

/* Prose cut into sentences: a sentence ends at '.', '!' or '?' (and closing
 * quotes or brackets) followed by whitespace or the end of the text. Runs of
 * whitespace become one space; an over-long run without a sentence end is
 * cut at a space so that prompts can still be fitted. */
struct niah_haystack {
    char *text;              /* the sentences, each NUL-terminated */
    int n_sentences;
    const char **sentences;  /* (n_sentences) pointers into text */
};

/* what names the source in messages. Text without any word is an error. */
struct niah_haystack *niah_haystack_parse(const char *text, size_t len, const char *what);
struct niah_haystack *niah_haystack_load(const char *path);
void niah_haystack_free(struct niah_haystack *h);
/* The default haystack, prompts/haystack.txt (data_find: the build tree or an
 * installed PREFIX/share/dam); writes its path, -1 saying where it looked. */
int niah_default_haystack_path(char *buf, size_t size);

/* ---- prompts ---- */

/* Text -> the token ids the model will see for a whole prompt (BOS and the
 * like included). Returns 0 or -1 + dam_fail; *ids is heap. */
struct niah_encoder {
    int (*encode)(void *ctx, const char *text, size_t len, int **ids, int *n_ids);
    void *ctx;
};

/* An encoder over a real tokenizer: tokenizer_encode(add_special = 1), or
 * tokenizer_encode_chat() when chat (the prompt text then is chat_format()
 * output, which writes its own BOS). e must outlive its uses. */
struct niah_tokenizer_encoder {
    struct niah_encoder enc;
    const struct tokenizer *tok;
    int chat;
};
void niah_tokenizer_encoder_init(struct niah_tokenizer_encoder *e, const struct tokenizer *tok, int chat);

struct niah_prompt {
    enum niah_task task;
    int length;              /* requested prompt tokens */
    float depth;             /* requested depth, 0..1 */
    uint64_t seed;           /* the sample seed it was built from */
    char *text;              /* the whole prompt, as encoded */
    int *ids;                /* (n_ids) its tokens */
    int n_ids;
    char *key;               /* the asked key ("word-word"); "" for passkey */
    char *expected;          /* the answer, digits ("71432") */
    size_t haystack_begin;   /* bytes of text holding the haystack (or record) */
    size_t haystack_end;
    size_t needle_begin;     /* bytes of text holding the asked needle (or line) */
    size_t needle_end;
    double needle_depth;     /* where it landed: haystack tokens before it / haystack tokens */
};
void niah_prompt_free(struct niah_prompt *p);

/* Builds prompts of one task from one haystack with one encoder; caches the
 * token counts of haystack sentences across prompts. */
struct niah_builder;

/* chat_template: NULL = plain text; else a chat_format() name ("chatml",
 * "llama3", "llama2"): the task's instructions and question become the user
 * turn and the answer prefix ("The pass key is") follows the assistant
 * header. h may be NULL for the lines task (its record is generated). h and
 * enc must outlive the builder. */
struct niah_builder *niah_builder_new(enum niah_task task, const struct niah_haystack *h,
                                      const struct niah_encoder *enc, const char *chat_template);
void niah_builder_free(struct niah_builder *b);

/* The prompt of one sample: everything random comes from seed, so the same
 * (length, depth, seed) gives the same prompt. Its token count lands within
 * 2% of length (floor) and never above max_tokens (the context left after
 * the answer; <= 0 = no limit). The needle sits at the sentence boundary
 * nearest depth (lines: the asked line at the nearest line). Errors: a
 * length too short for the task's fixed text, one that cannot be met. */
int niah_build(struct niah_builder *b, int length, float depth, uint64_t seed, int max_tokens,
               struct niah_prompt *out);

/* The seed of one sample of a grid cell, from the run's seed: independent of
 * the attention module, so every module sees the same prompts. */
uint64_t niah_sample_seed(uint64_t seed, enum niah_task task, int length, float depth, int sample);

/* ---- scoring ---- */

/* 1 when output answers expected under the task's rule, else 0. */
int niah_score(enum niah_task task, const char *expected, const char *output);

/* ---- results and output files ---- */

struct niah_result {
    int attn;                /* index into the run's attn names */
    int length_index, depth_index, sample;
    uint64_t seed;           /* sample seed */
    char *expected;
    char *output;            /* generated text: its first non-empty line */
    int output_tokens;       /* tokens generated */
    int correct;
    int prompt_tokens;
    double needle_depth;
    double prefill_ms, decode_ms;
    double sparsity;         /* attention pairs skipped, prompt and answer (0 for exact modules) */
    double kv_bytes;         /* KV cache held at the end of the answer */
};

struct niah_grid;

struct niah_run {
    enum niah_task task;
    const char *model;       /* shown in the outputs */
    int n_attn;
    const char **attn;       /* (n_attn) module names */
    int n_lengths;
    const int *lengths;      /* (n_lengths) */
    int n_depths;
    const float *depths;     /* (n_depths) */
    int samples;             /* per cell */
    const struct niah_grid *grid;  /* the rest of the settings, carried by each JSON line as
                                    * "grid"; NULL = lines without it */
    int shard_index, shard_count;  /* this run is shard I of N (1-based); 0 = the whole grid */
    int n_results, cap_results;
    struct niah_result *results;  /* (n_results) in run order */
};

/* Appends a copy of r (its strings duplicated). */
int niah_run_add(struct niah_run *run, const struct niah_result *r);
void niah_run_free_results(struct niah_run *run);

/* One grid cell: the samples of one (attn, length, depth). */
struct niah_cell {
    int n, correct;
    double prompt_tokens, prefill_ms, decode_ms;   /* means */
};
/* cells: (n_attn, n_lengths, n_depths), filled from the results. */
void niah_cells(const struct niah_run *run, struct niah_cell *cells);

/* One JSON object (no newline) per result: task, length, depth, seed, attn,
 * expected, output, correct, prompt_tokens, prefill_ms, decode_ms, plus
 * sample, output_tokens, needle_depth, model, then "grid" (when run->grid:
 * niah_grid_json) and "shard": "I/N" (when run->shard_count). Heap string. */
char *niah_result_json(const struct niah_run *run, const struct niah_result *r);
/* Every result, one JSON line each. Heap string. */
char *niah_jsonl(const struct niah_run *run);
/* The grid: a header and one row per (attn, length, depth). Heap string. */
char *niah_csv(const struct niah_run *run);
/* Heatmap: one panel per module, length on x, depth on y (0 on top),
 * accuracy as colour (red 0% .. yellow .. green 100%), a legend. Each grid
 * point is one <rect class="cell">. Heap string. */
char *niah_svg(const struct niah_run *run);
/* The per-(attn, length, depth) table and a total per module. */
void niah_print_summary(FILE *out, const struct niah_run *run);

/* ---- grids across machines: identity, shards, merging (niah_grid.c) ----
 *
 * A grid's cells are its (module, length, depth, sample) points, numbered in
 * run order: lengths outermost, then depths, samples, and modules innermost.
 * Shard I of N (1-based) runs the cells whose number mod N is I - 1, with
 * the prompts of the whole run (a sample's seed never depends on the shard).
 * Every JSON line carries the grid's settings ("grid") so that parts can be
 * merged and parts of different grids refused. */

struct attn_options;

/* What decides the answers besides what struct niah_run holds (task, seed,
 * lengths, depths, samples, modules). Keys are 16 hex digits. */
struct niah_grid {
    char model_key[17];      /* config.json, tokenizer.json, weight file names and sizes */
    char haystack_key[17];   /* the haystack's sentences; "" for the lines task */
    char chat[32];           /* chat template; "" = plain prompts */
    int n_predict;           /* answer tokens at most */
    int ctx;                 /* the sessions' context: it bounds the prompts */
    char options[2048];      /* the modules' options: "window:sinks=4,size=64" */
};

/* Key of the model folder dir (the weights themselves are too large to read
 * at every start: their names and sizes stand for them). -1 + dam_fail. */
int niah_model_key(const char *dir, char out[17]);
void niah_haystack_key(const struct niah_haystack *h, char out[17]);
/* The options that the modules named in attn read, "module:key=value,..."
 * joined by ';' ("full" reads none). -1 + dam_fail when buf is too small. */
int niah_options_string(const char *const *attn, int n_attn, const struct attn_options *o,
                        char *buf, size_t size);
/* "2/4" -> 2, 4: 1 <= I <= N <= NIAH_MAX_SHARDS. -1 + dam_fail. */
#define NIAH_MAX_SHARDS 1000000
int niah_parse_shard(const char *text, int *index, int *count);
/* Cells of the whole grid, and the number of one cell in run order. */
long long niah_grid_cells(const struct niah_run *run);
long long niah_cell_number(const struct niah_run *run, int attn, int length_index, int depth_index,
                           int sample);
/* 1 when shard index/count runs cell number n; count 0 = the whole grid. */
int niah_shard_owns(int index, int count, long long n);

/* ---- merging parts (niah_merge.c) ---- */

/* The parts of one grid read back: run holds the grid and every result in
 * run order; jsonl the lines as the whole run writes them (each part's line
 * with its "shard" removed), in run order. */
struct niah_merged {
    struct niah_run run;
    char *jsonl;
    /* storage behind run's lists */
    char *model;
    char **attn_names;
    int *lengths;
    float *depths;
};

/* Reads JSON line files written by dam niah (shards of one grid, or whole
 * runs) and checks that together they are the grid, each cell once. Refused
 * with a one-line reason naming the file and line: a line that is not a
 * result of dam niah with a "grid", lines of different grids (task, seed,
 * model, lengths, depths, samples, modules, options, -n, context, chat,
 * haystack), a cell outside its line's shard, a cell twice, missing cells.
 * NULL + dam_fail. */
struct niah_merged *niah_merge(const char *const *paths, int n_paths);
void niah_merged_free(struct niah_merged *m);

#endif
