/* prompt_cache.h — a session saved after its prompt, so that a later prompt
 * that starts with the same tokens skips their prefill (dam run
 * --prompt-cache FILE; src/model/prompt_cache.c).
 *
 * Where a session is saved, and restored. A prompt is prefilled in chunks
 * of s->chunk (128) tokens counted from position 0. The session is saved at
 * the last chunk boundary before the prompt's last token; a later prompt is
 * restored at the last chunk boundary inside what it shares with the cached
 * tokens (and before its own last token, whose logits it needs), then
 * prefills the rest in the chunks an uncached run would use. A cached run
 * thus does the arithmetic of an uncached one, and its answers are the same
 * bit for bit: a chunk boundary is a multiple of DAM's query tiles (16
 * positions from 0, which share a block selection), and the chunk itself
 * must be the same too, as its rows set the summation order of the matrix
 * kernels (matmul.c: column blocks, gemm tiles) and the rows --dam-evict
 * votes with (tests/model/test_prompt_cache.c: restored at a multiple of 16
 * instead, the logits after a --dam-evict eviction differ; at a chunk
 * boundary every module's match bit for bit). The cost is at most one
 * chunk of the shared prefix prefilled again (127 of 7,000 tokens).
 *
 * A shorter shared prefix (the same document, another question) restores by
 * truncating the saved state, where its module can: full and dma always;
 * dam and window only while every KV block before that point is still held
 * (windowed heads drop older blocks as they go; with --dam-evict the vote's
 * rows are those of the saved point), else the prompt runs in full.
 *
 * The file: a text header, the payload, and the SHA-256 of both.
 *   dam-prompt-cache
 *   version 1
 *   model <model_content_key of the weights>
 *   module <name of the module the session runs>
 *   options <attn_options_describe: key=value,...>
 *   kv <f32|f16|bf16>           the element type of the KV stores (session.h)
 *   kernels <kernels_isa()>     the kernels that computed the state
 *   context <n_ctx>
 *   chunk <s->chunk>
 *   positions <P>
 *   payload <bytes of the payload>
 *   (an empty line)
 * then the payload: the P token ids (int32), then the module's state (its
 * save, attn.h), native byte order; then 32 bytes of SHA-256 over all of it.
 * A file whose header differs from the session's in any field is refused,
 * with the field, both values and the file named; so is a truncated or
 * corrupted one. Only a miss (other tokens) is not an error. */
#ifndef DAM_PROMPT_CACHE_H
#define DAM_PROMPT_CACHE_H

#include <stddef.h>
#include "dam/session.h"

#define PROMPT_CACHE_VERSION 1

struct prompt_cache_result {
    int restored;          /* positions restored (0: nothing used) */
    int positions;         /* positions the file holds (saved: written) */
    size_t bytes;          /* size of the file */
    double ms;             /* time to read, check and restore it / to write it */
    char note[512];        /* why a readable cache was not used, "" when it was */
};

/* Where a session is saved for a prompt of n tokens: the last multiple of
 * s->chunk below n (0: too short to save anything). */
int prompt_cache_point(const struct session *s, int n);

/* Before any work: path can be used as a prompt cache. Missing (read_only:
 * an error), or a regular file (links followed) that starts like one in a
 * folder that takes a new file; never anything else (a file that is not a
 * prompt cache is not ours to replace). -1 + dam_fail. */
int prompt_cache_check(const char *path, int read_only);

/* Restores into s (fresh: position 0) the longest prefix of prompt (n
 * tokens) that path holds, at a chunk boundary below n. 0 with
 * r->restored = 0 and r->note set for a miss (no such file, other tokens,
 * a prefix the module cannot go back to); -1 + dam_fail naming path when the
 * file cannot be used: unreadable, not a prompt cache, another format
 * version, truncated, corrupted, or made for another model, module, options,
 * KV type, kernels, context or chunk (opts: the options s was made with). */
int prompt_cache_load(struct session *s, const struct attn_options *opts, const char *path,
                      const int *prompt, int n, struct prompt_cache_result *r);

/* Saves s (its s->pos positions, of tokens[0 .. s->pos)) to path,
 * atomically. -1 + dam_fail. */
int prompt_cache_save(const struct session *s, const struct attn_options *opts, const char *path,
                      const int *tokens, struct prompt_cache_result *r);

#endif
