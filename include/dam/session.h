/* session.h — one inference session over a loaded model: the forward pass.
 *
 * A session owns the activation buffers for a chunk of tokens and an
 * instance of the chosen attention module (which owns the KV cache).
 * session_eval() pushes tokens through the transformer: a long prompt goes in
 * chunks of up to `chunk` tokens (matrix-matrix products), decoding passes one
 * token at a time. Logits are computed only where asked for. */
#ifndef DAM_SESSION_H
#define DAM_SESSION_H

#include "dam/model.h"
#include "dam/attn.h"

enum logits_mode {
    LOGITS_NONE,   /* no logits (pure prefill) */
    LOGITS_LAST,   /* logits (vocab) of the last token only */
    LOGITS_ALL,    /* logits (n, vocab) of every token */
};

struct session {
    const struct model *model;
    const struct attn_module *attn;
    void *attn_state;
    int n_ctx;         /* context size (KV positions available) */
    int pos;           /* tokens already in the KV cache */
    int chunk;         /* max tokens per forward call internally */
    enum kv_type kv_type;  /* element type of the module's KV cache: --kv-type for the
                              modules that take it (attn_module.kv_types), else f32 */
    float *inv_freq;   /* (head_dim / 2) rotary frequencies */
    float *x;          /* (chunk, dim) residual stream */
    float *xb;         /* (chunk, dim) normed input of a sub-layer */
    float *q;          /* (chunk, n_heads * head_dim) */
    float *k;          /* (chunk, n_kv_heads * head_dim) */
    float *v;          /* (chunk, n_kv_heads * head_dim) */
    float *att;        /* (chunk, n_heads * head_dim) attention output */
    float *proj;       /* (chunk, dim) output of o-proj / down-proj */
    float *hb;         /* (chunk, hidden_dim) gate */
    float *hb2;        /* (chunk, hidden_dim) up */
};

/* n_ctx <= 0 means the model's max_position_embeddings. */
struct session *session_new(const struct model *m, const struct attn_module *attn,
                            const struct attn_options *opts, int n_ctx);
void session_free(struct session *s);

/* Feeds n tokens at position s->pos. logits: LOGITS_LAST -> (vocab),
 * LOGITS_ALL -> (n, vocab), LOGITS_NONE -> may be NULL. Errors: a token id out
 * of range, the context full. */
int session_eval(struct session *s, const int *tokens, int n, float *logits,
                 enum logits_mode mode);

/* The setup the session's attention state is created with (opts: the
 * options given to session_new); for a second state of the same session
 * (the prompt cache loads into one before it replaces the first). */
void session_attn_setup(const struct session *s, const struct attn_options *opts, struct attn_setup *out);

/* Forgets the KV cache from position pos on (0 = start over). */
void session_rewind(struct session *s, int pos);

#endif
