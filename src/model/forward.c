/* forward.c — the transformer forward pass over a chunk of tokens.
 *
 * Per layer: RMSNorm -> q/k/v projections -> RoPE -> attention module (which
 * stores k, v and attends) -> o-projection -> residual -> RMSNorm -> SwiGLU
 * MLP -> residual. Every projection is one matrix-matrix product over the
 * whole chunk, so a weight is read once per chunk, not once per token. */
#include "dam/session.h"
#include "dam/common.h"
#include "dam/kernels.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define DEFAULT_CHUNK 128

static void free_buffers(struct session *s) {
    free(s->inv_freq); free(s->x); free(s->xb); free(s->q); free(s->k); free(s->v);
    free(s->att); free(s->proj); free(s->hb); free(s->hb2);
}

static int build_buffers(struct session *s) {
    const struct model_config *c = &s->model->cfg;
    const size_t n = (size_t)s->chunk, q_dim = (size_t)c->n_heads * c->head_dim,
                 kv_dim = (size_t)c->n_kv_heads * c->head_dim;
    s->inv_freq = xcalloc(c->head_dim / 2, sizeof(float), "rope");
    s->x = xcalloc(n * c->dim, sizeof(float), "activations");
    s->xb = xcalloc(n * c->dim, sizeof(float), "activations");
    s->q = xcalloc(n * q_dim, sizeof(float), "activations");
    s->k = xcalloc(n * kv_dim, sizeof(float), "activations");
    s->v = xcalloc(n * kv_dim, sizeof(float), "activations");
    s->att = xcalloc(n * q_dim, sizeof(float), "activations");
    s->proj = xcalloc(n * c->dim, sizeof(float), "activations");
    s->hb = xcalloc(n * c->hidden_dim, sizeof(float), "activations");
    s->hb2 = xcalloc(n * c->hidden_dim, sizeof(float), "activations");
    if (!s->inv_freq || !s->x || !s->xb || !s->q || !s->k || !s->v || !s->att || !s->proj ||
        !s->hb || !s->hb2)
        return -1;
    rope_inv_freq(c, s->inv_freq);
    return 0;
}

void session_attn_setup(const struct session *s, const struct attn_options *opts, struct attn_setup *out) {
    const struct model *m = s->model;
    *out = (struct attn_setup){
        .n_layers = m->cfg.n_layers, .n_heads = m->cfg.n_heads, .n_kv_heads = m->cfg.n_kv_heads,
        .head_dim = m->cfg.head_dim, .max_seq_len = s->n_ctx, .model_dir = m->dir, .opts = opts,
        .model = m,
    };
}

struct session *session_new(const struct model *m, const struct attn_module *attn,
                            const struct attn_options *opts, int n_ctx) {
    /* on a Doge model "full" is its dense counterpart (δ still added) */
    if (!(attn = attn_for_model(attn, m))) return NULL;
    struct session *s = xcalloc(1, sizeof *s, "session");
    if (!s) return NULL;
    s->model = m;
    s->attn = attn;
    s->n_ctx = n_ctx > 0 ? n_ctx : m->cfg.max_seq_len;
    s->chunk = DEFAULT_CHUNK;
    s->kv_type = opts && attn->kv_types ? opts->kv_type : KV_F32;
    if (build_buffers(s) != 0) { free_buffers(s); free(s); return NULL; }
    struct attn_setup setup;
    session_attn_setup(s, opts, &setup);
    s->attn_state = attn->create(&setup);
    if (!s->attn_state) { free_buffers(s); free(s); return NULL; }
    return s;
}

void session_free(struct session *s) {
    if (!s) return;
    if (s->attn_state) s->attn->destroy(s->attn_state);
    free_buffers(s);
    free(s);
}

void session_rewind(struct session *s, int pos) {
    if (pos < 0) pos = 0;
    if (pos < s->pos) {
        s->attn->truncate(s->attn_state, pos);
        s->pos = pos;
    }
}

static void add_into(float *x, const float *y, size_t n) {
    for (size_t i = 0; i < n; i++) x[i] += y[i];
}

/* The residual of a sub-layer over n rows: x += y, or for Doge's learned
 * per-channel scale x = scale ⊙ x + y (scale (dim), NULL for Llama). */
static void residual_into(float *x, const float *scale, const float *y, int n, int dim) {
    if (!scale) { add_into(x, y, (size_t)n * dim); return; }
    for (int t = 0; t < n; t++) {
        float *xr = x + (size_t)t * dim;
        const float *yr = y + (size_t)t * dim;
        for (int i = 0; i < dim; i++) xr[i] = scale[i] * xr[i] + yr[i];
    }
}

/* One transformer layer over n tokens at positions s->pos .. s->pos+n-1.
 * cs, sn: the rotary table of these positions (n, head_dim / 2). */
static int layer_forward(struct session *s, int l, int n, const float *cs, const float *sn) {
    const struct model *m = s->model;
    const struct model_config *c = &m->cfg;
    const struct layer_weights *w = &m->layers[l];
    const float *attn_norm = m->norm_f32 + (size_t)(2 * l) * c->dim;
    const float *mlp_norm = m->norm_f32 + (size_t)(2 * l + 1) * c->dim;

    /* q, k, v read the same normed input: one parallel pass over the three
     * weight matrices (one thread fork instead of three) */
    rmsnorm(s->xb, s->x, attn_norm, n, c->dim, c->norm_eps);
    float *const qkv_out[3] = { s->q, s->k, s->v };
    const struct tensor *const qkv_w[3] = { &w->wq, &w->wk, &w->wv };
    if (matmul_batch(3, qkv_out, s->xb, qkv_w, n) != 0) return -1;
    /* Doge: per-head RMSNorm of q and k before RoPE, when the checkpoint has it */
    if (w->q_norm) rmsnorm(s->q, s->q, w->q_norm, n * c->n_heads, c->head_dim, c->norm_eps);
    if (w->k_norm) rmsnorm(s->k, s->k, w->k_norm, n * c->n_kv_heads, c->head_dim, c->norm_eps);
    rope_apply_table(s->q, n, c->n_heads, c->head_dim, cs, sn);
    rope_apply_table(s->k, n, c->n_kv_heads, c->head_dim, cs, sn);
    int rc = n == 1 ? s->attn->decode(s->attn_state, l, s->pos, s->q, s->k, s->v, s->att)
                    : s->attn->prefill(s->attn_state, l, s->pos, n, s->q, s->k, s->v, s->att);
    if (rc != 0) return -1;
    if (matmul(s->proj, s->att, &w->wo, n) != 0) return -1;
    residual_into(s->x, w->input_residual, s->proj, n, c->dim);

    rmsnorm(s->xb, s->x, mlp_norm, n, c->dim, c->norm_eps);
    float *const mlp_out[2] = { s->hb, s->hb2 };
    const struct tensor *const mlp_w[2] = { &w->w_gate, &w->w_up };
    if (matmul_batch(2, mlp_out, s->xb, mlp_w, n) != 0) return -1;
    swiglu_f32(s->hb, s->hb2, n * c->hidden_dim);
    if (matmul(s->proj, s->hb, &w->w_down, n) != 0) return -1;
    residual_into(s->x, w->post_attention_residual, s->proj, n, c->dim);
    return 0;
}

/* Final norm and lm_head for rows [first, n) of the chunk: only the
 * positions whose logits are wanted pay for the (vocab, dim) product. */
static int logits_for(struct session *s, int first, int n, float *logits) {
    const struct model *m = s->model;
    const int dim = m->cfg.dim;
    const float *final_norm = m->norm_f32 + (size_t)(2 * m->cfg.n_layers) * dim;
    rmsnorm(s->xb, s->x + (size_t)first * dim, final_norm, n - first, dim, m->cfg.norm_eps);
    return matmul(logits, s->xb, &m->lm_head, n - first);
}

static int chunk_forward(struct session *s, const int *tokens, int n, float *logits, int want_from) {
    const struct model *m = s->model;
    const int dim = m->cfg.dim, half = m->cfg.head_dim / 2;
    /* the rotary angles depend on the position only: computed once per chunk
     * for q and k of every layer */
    float *rope = xmalloc((size_t)2 * n * half * sizeof(float), "rotary table");
    if (!rope) return -1;
    rope_table(rope, rope + (size_t)n * half, n, m->cfg.head_dim, s->pos, s->inv_freq);
    for (int t = 0; t < n; t++) tensor_row_f32(&m->embed, tokens[t], s->x + (size_t)t * dim);
    int rc = 0;
    for (int l = 0; l < m->cfg.n_layers && rc == 0; l++)
        rc = layer_forward(s, l, n, rope, rope + (size_t)n * half);
    free(rope);
    if (rc != 0) return -1;
    if (want_from < n && logits_for(s, want_from, n, logits) != 0) return -1;
    s->pos += n;
    return 0;
}

int session_eval(struct session *s, const int *tokens, int n, float *logits, enum logits_mode mode) {
    const int vocab = s->model->cfg.vocab_size;
    if (n <= 0) return dam_fail("no tokens to evaluate");
    for (int i = 0; i < n; i++)
        if (tokens[i] < 0 || tokens[i] >= vocab)
            return dam_fail("token id %d is out of range (vocabulary of %d)", tokens[i], vocab);
    if (s->pos + n > s->n_ctx)
        return dam_fail("context full: %d tokens already, %d more do not fit in %d", s->pos, n, s->n_ctx);
    for (int done = 0; done < n; done += s->chunk) {
        int len = n - done < s->chunk ? n - done : s->chunk;
        int last_chunk = done + len == n;
        float *out = NULL;
        int want_from = len;                       /* no logits for this chunk */
        if (mode == LOGITS_ALL) { out = logits + (size_t)done * vocab; want_from = 0; }
        else if (mode == LOGITS_LAST && last_chunk) { out = logits; want_from = len - 1; }
        if (chunk_forward(s, tokens + done, len, out, want_from) != 0) return -1;
    }
    return 0;
}
