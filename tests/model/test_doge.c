/* test_doge.c — Doge checkpoints (DogeForCausalLM, Dynamic Mask Attention).
 *
 * A tiny random Doge checkpoint is written here with st_writer (tensor names
 * as transformers saves them) and run through model_load + session_eval;
 * its logits are checked against a dense forward pass written here in
 * double straight from the Doge layer (DMA.md): residual scales, per-head
 * q/k RMSNorm before RoPE, δ = exp(A · softplus(dt_proj · v)), top-w causal
 * keys by δ, δ added to the kept scores. Variants: without q/k norms, δ per
 * query head (an older generation), untied lm_head. Then the errors (CDMoE,
 * missing or misshapen DMA tensors, modules that cannot run a Doge model,
 * dma on a Llama model), the CLI on the checkpoint when $DAM is set, and the
 * transformers golden (third_party/models/tiny-doge, made by
 * ../shared/train/make_refs2.py on a GPU machine) when it exists. */
#include "../harness.h"
#include "dam/common.h"
#include "dam/generate.h"
#include "dam/model.h"
#include "dam/safetensors.h"
#include "dam/session.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------- the model */

struct spec {
    int vocab, dim, hidden, L, H, KV, D, window, max_pos;
    int qk_norm;           /* q_norm, k_norm tensors present */
    int per_query_A;       /* A and dt_proj per query head (older generation) */
    int tied;
    float theta, eps;
};

static const struct spec base_spec = {
    .vocab = 96, .dim = 48, .hidden = 80, .L = 2, .H = 4, .KV = 2, .D = 12, .window = 8, .max_pos = 128,
    .qk_norm = 1, .per_query_A = 0, .tied = 1, .theta = 10000.0f, .eps = 1e-6f,
};

struct layer_w {
    float *attn_norm, *wq, *wk, *wv, *wo, *q_norm, *k_norm, *A, *dt, *in_res;
    float *mlp_norm, *wg, *wu, *wd, *post_res;
};

struct weights {
    struct spec sp;
    int G;                 /* δ heads */
    float *embed, *final_norm, *lm_head;
    struct layer_w l[4];
};

static uint64_t rng_state = 0x2545F4914F6CDD1DULL;
static float frand(void) {            /* uniform in [-1, 1) */
    rng_state ^= rng_state << 13; rng_state ^= rng_state >> 7; rng_state ^= rng_state << 17;
    return (float)((rng_state >> 11) * (1.0 / 9007199254740992.0)) * 2.0f - 1.0f;
}

static float *rnd(size_t n, float center, float scale) {
    float *a = malloc(n * sizeof *a);
    for (size_t i = 0; i < n; i++) a[i] = center + scale * frand();
    return a;
}

/* Random weights like make_refs2.py's: small projections, norms and
 * residual scales around 1, A of either sign so the mask is not trivial. */
static void make_weights(struct weights *w, const struct spec *sp) {
    memset(w, 0, sizeof *w);
    w->sp = *sp;
    w->G = sp->per_query_A ? sp->H : sp->KV;
    const size_t dim = sp->dim, qd = (size_t)sp->H * sp->D, kvd = (size_t)sp->KV * sp->D;
    const float r = 0.15f;
    w->embed = rnd(sp->vocab * dim, 0, 1.0f);
    w->final_norm = rnd(dim, 1, 0.1f);
    w->lm_head = sp->tied ? w->embed : rnd(sp->vocab * dim, 0, r);
    for (int l = 0; l < sp->L; l++) {
        struct layer_w *x = &w->l[l];
        x->attn_norm = rnd(dim, 1, 0.1f);
        x->wq = rnd(qd * dim, 0, r); x->wk = rnd(kvd * dim, 0, r); x->wv = rnd(kvd * dim, 0, r);
        x->wo = rnd(dim * qd, 0, r);
        x->q_norm = rnd(sp->D, 1, 0.1f); x->k_norm = rnd(sp->D, 1, 0.1f);
        x->A = rnd(w->G, 0, 2.0f);
        x->dt = rnd(w->G * kvd, 0, 0.5f);
        x->in_res = rnd(dim, 1, 0.1f);
        x->mlp_norm = rnd(dim, 1, 0.1f);
        x->wg = rnd((size_t)sp->hidden * dim, 0, r); x->wu = rnd((size_t)sp->hidden * dim, 0, r);
        x->wd = rnd(dim * sp->hidden, 0, r);
        x->post_res = rnd(dim, 1, 0.1f);
    }
}

static void free_weights(struct weights *w) {
    free(w->embed); free(w->final_norm);
    if (!w->sp.tied) free(w->lm_head);
    for (int l = 0; l < w->sp.L; l++) {
        struct layer_w *x = &w->l[l];
        float *all[] = { x->attn_norm, x->wq, x->wk, x->wv, x->wo, x->q_norm, x->k_norm, x->A, x->dt,
                         x->in_res, x->mlp_norm, x->wg, x->wu, x->wd, x->post_res };
        for (size_t i = 0; i < sizeof all / sizeof *all; i++) free(all[i]);
    }
}

/* ------------------------------------------------------- the checkpoint */

static void add(struct st_writer *st, const char *name, int rows, int cols, const float *data) {
    int64_t shape[2] = { rows, cols };
    int rc = rows ? st_writer_add(st, name, DT_F32, 2, shape, data)
                  : st_writer_add(st, name, DT_F32, 1, shape + 1, data);
    ck_assert_msg(rc == 0, "%s", dam_last_error());
}

/* Folders this test wrote, removed by remove_checkpoints at its end. */
static char written[32][64];
static int n_written;

static void remove_checkpoints(void) {
    char path[128];
    for (int i = 0; i < n_written; i++) {
        snprintf(path, sizeof path, "%.100s/config.json", written[i]);
        remove(path);
        snprintf(path, sizeof path, "%.100s/model.safetensors", written[i]);
        remove(path);
        remove(written[i]);
    }
    n_written = 0;
}

/* skip: a tensor name suffix left out (to test the errors), or NULL.
 * extra: more config.json fields ("\"is_moe\": true, "), or "". */
static const char *write_checkpoint(const struct weights *w, const char *skip, const char *extra) {
    const struct spec *sp = &w->sp;
    const char *dir = tmp_dir();
    if (n_written < 32) snprintf(written[n_written++], sizeof written[0], "%s", dir);
    char path[512], name[128];
    snprintf(path, sizeof path, "%s/config.json", dir);
    FILE *f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    fprintf(f, "{\"architectures\": [\"DogeForCausalLM\"], \"model_type\": \"doge\", %s"
               "\"vocab_size\": %d, \"hidden_size\": %d, \"intermediate_size\": %d, "
               "\"num_hidden_layers\": %d, \"num_attention_heads\": %d, \"num_key_value_heads\": %d, "
               "\"head_dim\": %d, \"hidden_act\": \"silu\", \"max_position_embeddings\": %d, "
               "\"rope_theta\": %g, \"rms_norm_eps\": %g, \"keep_window_size\": %d, "
               "\"attention_bias\": false, \"mlp_bias\": false, \"is_moe\": false, "
               "\"tie_word_embeddings\": %s, \"torch_dtype\": \"float32\", \"bos_token_id\": 1, "
               "\"eos_token_id\": 2}\n",
            extra, sp->vocab, sp->dim, sp->hidden, sp->L, sp->H, sp->KV, sp->D, sp->max_pos,
            (double)sp->theta, (double)sp->eps, sp->window, sp->tied ? "true" : "false");
    fclose(f);

    struct st_writer *st = st_writer_new();
    const int dim = sp->dim, qd = sp->H * sp->D, kvd = sp->KV * sp->D;
    add(st, "model.embed_tokens.weight", sp->vocab, dim, w->embed);
    add(st, "model.norm.weight", 0, dim, w->final_norm);
    if (!sp->tied) add(st, "lm_head.weight", sp->vocab, dim, w->lm_head);
    for (int l = 0; l < sp->L; l++) {
        const struct layer_w *x = &w->l[l];
        struct { const char *suffix; int rows, cols; const float *data; } t[] = {
            { "input_layernorm.weight", 0, dim, x->attn_norm },
            { "self_attn.q_proj.weight", qd, dim, x->wq },
            { "self_attn.k_proj.weight", kvd, dim, x->wk },
            { "self_attn.v_proj.weight", kvd, dim, x->wv },
            { "self_attn.o_proj.weight", dim, qd, x->wo },
            { "self_attn.A", 0, w->G, x->A },
            { "self_attn.dt_proj.weight", w->G, kvd, x->dt },
            { "self_attn.q_norm.weight", 0, sp->D, sp->qk_norm ? x->q_norm : NULL },
            { "self_attn.k_norm.weight", 0, sp->D, sp->qk_norm ? x->k_norm : NULL },
            { "input_residual", 0, dim, x->in_res },
            { "post_attention_layernorm.weight", 0, dim, x->mlp_norm },
            { "mlp.gate_proj.weight", sp->hidden, dim, x->wg },
            { "mlp.up_proj.weight", sp->hidden, dim, x->wu },
            { "mlp.down_proj.weight", dim, sp->hidden, x->wd },
            { "post_attention_residual", 0, dim, x->post_res },
        };
        for (size_t i = 0; i < sizeof t / sizeof *t; i++) {
            if (!t[i].data || (skip && !strcmp(skip, t[i].suffix))) continue;
            snprintf(name, sizeof name, "model.layers.%d.%s", l, t[i].suffix);
            add(st, name, t[i].rows, t[i].cols, t[i].data);
        }
    }
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    ck_assert_msg(st_writer_save(st, path) == 0, "%s", dam_last_error());
    st_writer_free(st);
    return dir;
}

/* ------------------------------------------------- the reference forward */

static void ref_rmsnorm(double *out, const double *x, const float *w, int n, double eps) {
    double ss = 0;
    for (int i = 0; i < n; i++) ss += x[i] * x[i];
    double inv = 1.0 / sqrt(ss / n + eps);
    for (int i = 0; i < n; i++) out[i] = w[i] * (x[i] * inv);
}

/* out (rows) = W (rows, cols) · x */
static void ref_matvec(double *out, const float *W, const double *x, int rows, int cols) {
    for (int r = 0; r < rows; r++) {
        double s = 0;
        for (int c = 0; c < cols; c++) s += (double)W[(size_t)r * cols + c] * x[c];
        out[r] = s;
    }
}

/* rotate_half RoPE of one head at position pos. */
static void ref_rope(double *x, int D, int pos, double theta) {
    for (int i = 0; i < D / 2; i++) {
        double inv = 1.0 / pow(theta, 2.0 * i / D), a = pos * inv;
        double x0 = x[i], x1 = x[i + D / 2];
        x[i] = x0 * cos(a) - x1 * sin(a);
        x[i + D / 2] = x1 * cos(a) + x0 * sin(a);
    }
}

/* Logits (n, vocab) of tokens under the Doge layer, in double. window <= 0:
 * every causal key (the dense counterpart). */
static double *ref_forward(const struct weights *w, const int *tok, int n, int window) {
    const struct spec *sp = &w->sp;
    const int dim = sp->dim, D = sp->D, H = sp->H, KV = sp->KV, G = w->G;
    const int qd = H * D, kvd = KV * D;
    double *x = calloc((size_t)n * dim, sizeof *x), *h = malloc(dim * sizeof *h);
    double *q = malloc((size_t)n * qd * sizeof *q), *k = malloc((size_t)n * kvd * sizeof *k),
           *v = malloc((size_t)n * kvd * sizeof *v), *delta = malloc((size_t)n * G * sizeof *delta);
    double *att = malloc(qd * sizeof *att), *o = malloc(dim * sizeof *o), *s = malloc(n * sizeof *s);
    double *g = malloc(sp->hidden * sizeof *g), *u = malloc(sp->hidden * sizeof *u);
    char *keep = malloc(n);
    for (int t = 0; t < n; t++)
        for (int i = 0; i < dim; i++) x[(size_t)t * dim + i] = w->embed[(size_t)tok[t] * dim + i];
    for (int l = 0; l < sp->L; l++) {
        const struct layer_w *lw = &w->l[l];
        for (int t = 0; t < n; t++) {
            ref_rmsnorm(h, x + (size_t)t * dim, lw->attn_norm, dim, sp->eps);
            double *qt = q + (size_t)t * qd, *kt = k + (size_t)t * kvd, *vt = v + (size_t)t * kvd;
            ref_matvec(qt, lw->wq, h, qd, dim);
            ref_matvec(kt, lw->wk, h, kvd, dim);
            ref_matvec(vt, lw->wv, h, kvd, dim);
            for (int hh = 0; hh < H; hh++) {
                if (sp->qk_norm) ref_rmsnorm(qt + hh * D, qt + hh * D, lw->q_norm, D, sp->eps);
                ref_rope(qt + hh * D, D, t, sp->theta);
            }
            for (int hh = 0; hh < KV; hh++) {
                if (sp->qk_norm) ref_rmsnorm(kt + hh * D, kt + hh * D, lw->k_norm, D, sp->eps);
                ref_rope(kt + hh * D, D, t, sp->theta);
            }
            double dt[64];
            ref_matvec(dt, lw->dt, vt, G, kvd);
            for (int gg = 0; gg < G; gg++) {
                double sp_dt = dt[gg] > 20 ? dt[gg] : log1p(exp(dt[gg]));
                delta[(size_t)t * G + gg] = exp((double)lw->A[gg] * sp_dt);
            }
        }
        for (int t = 0; t < n; t++) {
            for (int hh = 0; hh < H; hh++) {
                const int gg = hh / (H / G), kvh = gg * KV / G;
                /* the kept keys: all causal ones, or the top `window` by δ */
                const int w_eff = window > 0 ? window : n;
                memset(keep, 0, (size_t)t + 1);
                if (t + 1 <= w_eff) memset(keep, 1, (size_t)t + 1);
                else
                    for (int r = 0; r < w_eff; r++) {
                        int best = -1;
                        for (int j = 0; j <= t; j++)
                            if (!keep[j] && (best < 0 || delta[(size_t)j * G + gg] >= delta[(size_t)best * G + gg])) best = j;
                        keep[best] = 1;
                    }
                double max = -INFINITY, sum = 0;
                for (int j = 0; j <= t; j++) {
                    if (!keep[j]) continue;
                    double dot = 0;
                    for (int d = 0; d < D; d++) dot += q[(size_t)t * qd + hh * D + d] * k[(size_t)j * kvd + kvh * D + d];
                    s[j] = dot / sqrt((double)D) + delta[(size_t)j * G + gg];
                    if (s[j] > max) max = s[j];
                }
                double *a = att + hh * D;
                for (int d = 0; d < D; d++) a[d] = 0;
                for (int j = 0; j <= t; j++) {
                    if (!keep[j]) continue;
                    double p = exp(s[j] - max);
                    sum += p;
                    for (int d = 0; d < D; d++) a[d] += p * v[(size_t)j * kvd + kvh * D + d];
                }
                for (int d = 0; d < D; d++) a[d] /= sum;
            }
            ref_matvec(o, lw->wo, att, dim, qd);
            double *xt = x + (size_t)t * dim;
            for (int i = 0; i < dim; i++) xt[i] = lw->in_res[i] * xt[i] + o[i];
            ref_rmsnorm(h, xt, lw->mlp_norm, dim, sp->eps);
            ref_matvec(g, lw->wg, h, sp->hidden, dim);
            ref_matvec(u, lw->wu, h, sp->hidden, dim);
            for (int i = 0; i < sp->hidden; i++) g[i] = g[i] / (1 + exp(-g[i])) * u[i];
            double mlp[256];
            ref_matvec(mlp, lw->wd, g, dim, sp->hidden);
            for (int i = 0; i < dim; i++) xt[i] = lw->post_res[i] * xt[i] + mlp[i];
        }
    }
    double *logits = malloc((size_t)n * sp->vocab * sizeof *logits);
    for (int t = 0; t < n; t++) {
        ref_rmsnorm(h, x + (size_t)t * dim, w->final_norm, dim, sp->eps);
        ref_matvec(logits + (size_t)t * sp->vocab, w->lm_head, h, sp->vocab, dim);
    }
    free(x); free(h); free(q); free(k); free(v); free(delta); free(att); free(o); free(s);
    free(g); free(u); free(keep);
    return logits;
}

/* ------------------------------------------------------------------ checks */

/* ||a - b|| / ||b|| over positions [from, to) */
static double rel_err(const float *a, const double *b, int from, int to, int vocab) {
    double num = 0, den = 0;
    for (size_t i = (size_t)from * vocab; i < (size_t)to * vocab; i++) {
        num += (a[i] - b[i]) * (a[i] - b[i]);
        den += b[i] * b[i];
    }
    return sqrt(num / den);
}

static int *tokens(int n, int vocab) {
    int *t = malloc(n * sizeof *t);
    for (int i = 0; i < n; i++) t[i] = i == 0 ? 1 : 3 + (int)((frand() + 1) * 0.5f * (vocab - 4));
    return t;
}

/* The session's logits for every position: one prefill, or token by token. */
static float *run_logits(const struct model *m, const char *attn, const int *tok, int n, int one_by_one) {
    struct attn_options o;
    attn_options_default(&o);
    struct session *s = session_new(m, attn_find(attn), &o, 0);
    ck_assert_msg(s != NULL, "%s", dam_last_error());
    const int vocab = m->cfg.vocab_size;
    float *out = malloc((size_t)n * vocab * sizeof *out);
    if (!one_by_one) ck_assert_int_eq(session_eval(s, tok, n, out, LOGITS_ALL), 0);
    else
        for (int t = 0; t < n; t++)
            ck_assert_int_eq(session_eval(s, tok + t, 1, out + (size_t)t * vocab, LOGITS_ALL), 0);
    session_free(s);
    return out;
}

/* dma (the model's default) and full (the dense counterpart) against the
 * reference, for a spec; 40 positions and a window of 8. */
static void check_spec(const struct spec *sp) {
    struct weights w;
    make_weights(&w, sp);
    const char *dir = write_checkpoint(&w, NULL, "");
    struct model *m = model_load(dir);
    ck_assert_msg(m != NULL, "%s", dam_last_error());
    ck_assert_int_eq(m->cfg.arch, ARCH_DOGE);
    ck_assert_int_eq(m->cfg.keep_window_size, sp->window);
    ck_assert_int_eq(m->dma_heads, sp->per_query_A ? sp->H : sp->KV);
    ck_assert_str_eq(attn_default_for(m), "dma");
    const int n = 40, vocab = sp->vocab;
    int *tok = tokens(n, vocab);
    double *want = ref_forward(&w, tok, n, sp->window), *want_dense = ref_forward(&w, tok, n, 0);
    for (int one = 0; one < 2; one++) {
        float *got = run_logits(m, attn_default_for(m), tok, n, one);
        double err = rel_err(got, want, 0, n, vocab);
        printf("doge: dma logits (%s) %.2g from the reference\n", one ? "token by token" : "one prefill", err);
        ck_assert_msg(err < 1e-5, "dma logits (%s) differ from the reference by %g",
                      one ? "token by token" : "one prefill", err);
        free(got);
    }
    float *dense = run_logits(m, "full", tok, n, 0);
    double err = rel_err(dense, want_dense, 0, n, vocab);
    ck_assert_msg(err < 1e-5, "full (dense DMA) logits differ from the reference by %g", err);
    /* the two agree while the window holds every key, and differ after */
    ck_assert(rel_err(dense, want, 0, sp->window, vocab) < 1e-5);
    ck_assert(rel_err(dense, want, sp->window, n, vocab) > 1e-3);
    printf("doge (q/k norm %d, A per query head %d, tied %d, window %d): dense DMA %.2g from the reference\n",
           sp->qk_norm, sp->per_query_A, sp->tied, sp->window, err);
    free(dense); free(tok); free(want); free(want_dense);
    model_free(m);
    free_weights(&w);
    remove_checkpoints();
}

START_TEST(doge_matches_reference) { check_spec(&base_spec); }
END_TEST

START_TEST(doge_variants_match_reference) {
    struct spec sp = base_spec;
    sp.qk_norm = 0;                    /* checkpoints before q_norm / k_norm */
    check_spec(&sp);
    sp = base_spec;
    sp.per_query_A = 1;                /* δ and mask per query head */
    sp.tied = 0;
    check_spec(&sp);
    sp = base_spec;
    sp.KV = sp.H;                      /* MHA */
    sp.window = 3;
    check_spec(&sp);
}
END_TEST

/* A long run: the kept set is the window whatever the context. */
START_TEST(doge_generation_is_greedy_consistent) {
    struct weights w;
    make_weights(&w, &base_spec);
    const char *dir = write_checkpoint(&w, NULL, "");
    struct model *m = model_load(dir);
    ck_assert_msg(m != NULL, "%s", dam_last_error());
    struct attn_options o;
    attn_options_default(&o);
    struct session *s = session_new(m, attn_find("dma"), &o, 0);
    ck_assert_msg(s != NULL, "%s", dam_last_error());
    int prompt[4] = { 1, 5, 9, 7 };
    struct gen_params p = { .n_predict = 30, .ignore_eos = 1 };
    sampler_params_default(&p.sampling);
    p.sampling.temperature = 0;
    struct gen_result r;
    ck_assert_msg(generate(s, prompt, 4, &p, &r) == 0, "%s", dam_last_error());
    ck_assert_int_eq(r.n_generated, 30);
    /* greedy: each generated token is the argmax of the reference logits of its prefix */
    int all[34];
    memcpy(all, prompt, sizeof prompt);
    memcpy(all + 4, r.tokens, 30 * sizeof(int));
    double *ref = ref_forward(&w, all, 34, base_spec.window);
    for (int t = 3; t < 33; t++) {
        const double *row = ref + (size_t)t * base_spec.vocab;
        int best = 0;
        for (int i = 1; i < base_spec.vocab; i++) if (row[i] > row[best]) best = i;
        ck_assert_int_eq(all[t + 1], best);
    }
    struct attn_stats st;
    s->attn->stats(s->attn_state, &st);
    ck_assert(st.sparsity > 0.3);
    free(ref); free(r.tokens);
    session_free(s);
    model_free(m);
    free_weights(&w);
    remove_checkpoints();
}
END_TEST

/* ------------------------------------------------------------------ errors */

static void expect_load_error(const char *dir, const char *frag) {
    struct model *m = model_load(dir);
    ck_assert_msg(m == NULL, "%s loaded", dir);
    ck_assert_msg(strstr(dam_last_error(), frag), "error \"%s\" lacks \"%s\"", dam_last_error(), frag);
}

/* Rewrites one field of dir/config.json: the text from .. to. */
static void edit_config(const char *dir, const char *from, const char *to) {
    char path[512];
    snprintf(path, sizeof path, "%s/config.json", dir);
    size_t len;
    char *text = read_file(path, &len);
    ck_assert_ptr_nonnull(text);
    char *at = strstr(text, from);
    ck_assert_msg(at != NULL, "config.json lacks %s", from);
    FILE *f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    fprintf(f, "%.*s%s%s", (int)(at - text), text, to, at + strlen(from));
    fclose(f);
    free(text);
}

START_TEST(doge_errors) {
    struct weights w;
    make_weights(&w, &base_spec);
    /* the CDMoE variant: a clear "not supported" */
    const char *dir = write_checkpoint(&w, NULL, "");
    edit_config(dir, "\"is_moe\": false", "\"is_moe\": true");
    expect_load_error(dir, "is_moe true (Doge's CDMoE mixture of experts) is not supported");
    dir = write_checkpoint(&w, NULL, "");
    edit_config(dir, "\"keep_window_size\": 8", "\"keep_window_size\": 0");
    expect_load_error(dir, "keep_window_size = 0 is out of range");
    expect_load_error(write_checkpoint(&w, NULL, "\"sliding_window\": 64, "), "sliding_window");
    expect_load_error(write_checkpoint(&w, NULL, "\"dynamic_mask_ratio\": 0.3, "), "dynamic_mask_ratio");
    expect_load_error(write_checkpoint(&w, "self_attn.dt_proj.weight", ""), "dt_proj.weight is missing");
    expect_load_error(write_checkpoint(&w, "self_attn.A", ""), "self_attn.A is missing");
    expect_load_error(write_checkpoint(&w, "input_residual", ""), "input_residual is missing");
    expect_load_error(write_checkpoint(&w, "post_attention_residual", ""), "post_attention_residual is missing");
    /* a config without architectures: model_type doge is enough */
    dir = write_checkpoint(&w, NULL, "");
    edit_config(dir, "\"architectures\": [\"DogeForCausalLM\"], ", "");
    struct model *m = model_load(dir);
    ck_assert_msg(m != NULL, "%s", dam_last_error());
    ck_assert_int_eq(m->cfg.arch, ARCH_DOGE);
    model_free(m);
    /* and the default window when keep_window_size is absent */
    dir = write_checkpoint(&w, NULL, "");
    edit_config(dir, "\"keep_window_size\": 8, ", "");
    m = model_load(dir);
    ck_assert_msg(m != NULL, "%s", dam_last_error());
    ck_assert_int_eq(m->cfg.keep_window_size, 2048);
    model_free(m);

    /* A of a size that is neither n_kv_heads nor n_heads */
    struct weights w3;
    make_weights(&w3, &base_spec);
    const int kvd = base_spec.KV * base_spec.D;
    w3.G = 3;
    for (int l = 0; l < base_spec.L; l++) {
        free(w3.l[l].A); free(w3.l[l].dt);
        w3.l[l].A = rnd(3, 0, 1);
        w3.l[l].dt = rnd((size_t)3 * kvd, 0, 1);
    }
    expect_load_error(write_checkpoint(&w3, NULL, ""), "must be a vector of num_key_value_heads");
    free_weights(&w3);

    /* modules that cannot add δ are refused on a Doge model */
    dir = write_checkpoint(&w, NULL, "");
    m = model_load(dir);
    ck_assert_msg(m != NULL, "%s", dam_last_error());
    struct attn_options o;
    attn_options_default(&o);
    ck_assert_ptr_null(session_new(m, attn_find("window"), &o, 0));
    ck_assert_ptr_nonnull(strstr(dam_last_error(), "--attn=window cannot run"));
    ck_assert_ptr_null(session_new(m, attn_find("dam"), &o, 0));
    ck_assert_ptr_nonnull(strstr(dam_last_error(), "Dynamic Mask Attention"));
    model_free(m);
    free_weights(&w);
    remove_checkpoints();
}
END_TEST

/* dma on a Llama checkpoint: an error that says why. */
START_TEST(dma_on_llama_is_refused) {
    struct model *m = model_load("third_party/models/stories260k");
    ck_assert_msg(m != NULL, "%s", dam_last_error());
    ck_assert_int_eq(m->cfg.arch, ARCH_LLAMA);
    ck_assert_int_eq(m->dma_heads, 0);
    ck_assert_str_eq(attn_default_for(m), "full");
    struct attn_options o;
    attn_options_default(&o);
    ck_assert_ptr_null(session_new(m, attn_find("dma"), &o, 0));
    ck_assert_ptr_nonnull(strstr(dam_last_error(), "--attn=dma needs a model trained with Dynamic Mask Attention"));
    ck_assert_ptr_nonnull(strstr(dam_last_error(), "stories260k"));
    model_free(m);
}
END_TEST

/* ---------------------------------------------------------------- the CLI */

static int sh(const char *cmd, char *out, size_t size) {
    FILE *p = popen(cmd, "r");
    ck_assert_ptr_nonnull(p);
    size_t n = fread(out, 1, size - 1, p);
    out[n] = 0;
    return pclose(p);
}

START_TEST(doge_cli) {
    const char *dam = getenv("DAM");
    if (!dam || !*dam) SKIP_TEST("doge_cli: $DAM (the dam binary) not set; tests/run_all.sh sets it");
    struct weights w;
    make_weights(&w, &base_spec);
    const char *dir = write_checkpoint(&w, NULL, "");
    char cmd[2048], out[8192];
    snprintf(cmd, sizeof cmd, "%s logits -m %s --ids 1,5,9,7,3,11,13,17,19,23,29 --top 1 -t 1 2>&1", dam, dir);
    ck_assert_msg(sh(cmd, out, sizeof out) == 0, "%s: %s", cmd, out);
    snprintf(cmd, sizeof cmd, "%s logits -m %s --ids 1,5,9 --attn dma -t 1 2>&1", dam, dir);
    ck_assert_msg(sh(cmd, out, sizeof out) == 0, "%s: %s", cmd, out);
    snprintf(cmd, sizeof cmd, "%s run -m %s --ids 1,5,9 -n 12 --temp 0 --ignore-eos --print-ids -t 1 2>&1",
             dam, dir);
    ck_assert_msg(sh(cmd, out, sizeof out) == 0, "%s: %s", cmd, out);
    snprintf(cmd, sizeof cmd, "%s run -m %s --ids 1,5,9 -n 4 --attn window -t 1 2>&1", dam, dir);
    ck_assert_msg(sh(cmd, out, sizeof out) != 0, "window ran a Doge model: %s", out);
    ck_assert_msg(strstr(out, "dam: ") && strstr(out, "Dynamic Mask Attention"), "%s", out);
    snprintf(cmd, sizeof cmd, "%s logits -m third_party/models/stories260k --ids 1,5 --attn dma 2>&1", dam);
    ck_assert_msg(sh(cmd, out, sizeof out) != 0, "dma ran a Llama model: %s", out);
    ck_assert_msg(strstr(out, "needs a model trained with Dynamic Mask Attention"), "%s", out);
    free_weights(&w);
    remove_checkpoints();
}
END_TEST

/* --------------------------------------------------- transformers' golden */

/* ../shared/train/make_refs2.py: DogeForCausalLM (eager), keep_window_size
 * 16, 64 input ids; logits within 1e-4, greedy 32 tokens from the first 16. */
START_TEST(golden_tiny_doge) {
    char dir[1024];
    snprintf(dir, sizeof dir, "third_party/models/tiny-doge");
    char path[1100];
    snprintf(path, sizeof path, "%s/golden.safetensors", dir);
    if (!is_file(path) && refs_dir()) {
        snprintf(dir, sizeof dir, "%s/tiny-doge", refs_dir());
        snprintf(path, sizeof path, "%s/golden.safetensors", dir);
    }
    if (!is_file(path))
        SKIP_TEST("tiny-doge: no golden.safetensors in third_party/models/tiny-doge or the refs "
                  "(made by ../shared/train/make_refs2.py on a GPU machine)");
    struct st_file *g = st_open(path);
    ck_assert_msg(g != NULL, "%s", dam_last_error());
    const struct st_tensor *ids = st_find(g, "input_ids"), *logits = st_find(g, "logits"),
                           *gen = st_find(g, "generated");
    ck_assert(ids && logits && gen);
    struct model *m = model_load(dir);
    ck_assert_msg(m != NULL, "%s", dam_last_error());
    ck_assert_int_eq(m->cfg.arch, ARCH_DOGE);
    const int n = (int)ids->numel, vocab = m->cfg.vocab_size;
    ck_assert_int_eq(logits->numel, (int64_t)n * vocab);
    struct attn_options o;
    attn_options_default(&o);
    struct session *s = session_new(m, attn_find(attn_default_for(m)), &o, 0);
    ck_assert_msg(s != NULL, "%s", dam_last_error());
    float *out = malloc((size_t)n * vocab * sizeof *out);
    ck_assert_int_eq(session_eval(s, ids->data, n, out, LOGITS_ALL), 0);
    const float *want = logits->data;
    double num = 0, den = 0;
    for (size_t i = 0; i < (size_t)n * vocab; i++) {
        num += ((double)out[i] - want[i]) * ((double)out[i] - want[i]);
        den += (double)want[i] * want[i];
    }
    printf("%s: logits relative error %.3g (dma, window %d)\n", dir, sqrt(num / den), m->cfg.keep_window_size);
    ck_assert_msg(sqrt(num / den) < 1e-4, "%s: relative norm %g", dir, sqrt(num / den));
    free(out);

    session_rewind(s, 0);
    struct gen_params p = { .n_predict = (int)gen->numel - 16, .ignore_eos = 1 };
    sampler_params_default(&p.sampling);
    p.sampling.temperature = 0;
    struct gen_result r;
    ck_assert_msg(generate(s, ids->data, 16, &p, &r) == 0, "%s", dam_last_error());
    const int32_t *want_gen = gen->data;
    ck_assert_int_eq(r.n_generated, (int)gen->numel - 16);
    for (int i = 0; i < r.n_generated; i++) ck_assert_int_eq(r.tokens[i], want_gen[16 + i]);
    free(r.tokens);
    session_free(s);
    model_free(m);
    st_close(g);
}
END_TEST

Suite *test_suite(void) {
    Suite *s = suite_create("doge");
    TCase *tc = tcase_create("doge");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, doge_matches_reference);
    tcase_add_test(tc, doge_variants_match_reference);
    tcase_add_test(tc, doge_generation_is_greedy_consistent);
    tcase_add_test(tc, doge_errors);
    tcase_add_test(tc, dma_on_llama_is_refused);
    tcase_add_test(tc, doge_cli);
    tcase_add_test(tc, golden_tiny_doge);
    suite_add_tcase(s, tc);
    return s;
}
