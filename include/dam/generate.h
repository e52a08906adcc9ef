/* generate.h — prompt in, tokens out: prefill in chunks, then sample and
 * decode one token at a time until a stop condition. Shared by dam run,
 * dam compare and dam niah. */
#ifndef DAM_GENERATE_H
#define DAM_GENERATE_H

#include <signal.h>
#include "dam/sampler.h"
#include "dam/session.h"

enum stop_reason { STOP_LENGTH, STOP_EOS, STOP_CALLER, STOP_CONTEXT, STOP_INTERRUPT };
const char *stop_reason_name(enum stop_reason r);   /* "length", "eos", "stop", "context", "interrupt" */

struct gen_params {
    int n_predict;                 /* new tokens at most; -1 = until EOS or context full */
    struct sampler_params sampling;
    int ignore_eos;                /* keep going past EOS ids */
    /* Called for each new token; return non-zero to stop (a stop string). */
    int (*on_token)(void *ctx, int id);
    void *ctx;
    /* Set (e.g. by a SIGINT handler) to stop after the current step. */
    volatile sig_atomic_t *interrupt;
    /* Called after each prefill chunk (tokens done, total). */
    void (*on_prefill)(void *prefill_ctx, int done, int total);
    void *prefill_ctx;
    /* The first n_past tokens of the prompt are in the session already
     * (s->pos == n_past: a prompt cache, an earlier turn): only the rest is
     * evaluated, and the whole prompt is the sampler's history. */
    int n_past;
    /* > n_past: on_checkpoint is called once the session holds this many
     * positions, between two prefill chunks (the prompt cache saves there;
     * chunks start at n_past, so it must be n_past plus a multiple of
     * s->chunk). Its time is not counted in prompt_ms; non-zero fails. */
    int checkpoint;
    int (*on_checkpoint)(void *ctx, struct session *s);
    void *checkpoint_ctx;
};

struct gen_result {
    int *tokens;                   /* (n_generated) heap */
    int n_generated;
    enum stop_reason stop;
    double prompt_ms, eval_ms;     /* prefill / decode wall time */
    int n_prompt;                  /* prompt tokens evaluated (n_past not counted) */
    int n_eval;                    /* decode steps timed in eval_ms */
};

/* Runs the prompt through s (from its current position, past n_past) and
 * generates. */
int generate(struct session *s, const int *prompt, int n_prompt, const struct gen_params *p,
             struct gen_result *r);
void gen_result_free(struct gen_result *r);

#endif
