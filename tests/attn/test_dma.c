/* test_dma.c — the dma module (Dynamic Mask Attention) against a dense
 * masked reference written here from the formulas of DMA.md: δ from the
 * values, top-w causal keys by δ, δ added to the kept scores, softmax in
 * double. Random q/k/v, GQA, chunked prefill and decode, both checkpoint
 * generations (δ per KV head, δ per query head), the window at and beyond
 * the context, the dense counterpart that "full" becomes on a Doge model,
 * ties, rewinds to any position (the undo journal), the kept-set
 * statistics, and which module runs on which model. The weights live in an in-memory struct model: no files. */
#include "../harness.h"
#include "dam/attn.h"
#include "dam/common.h"
#include "dam/model.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------------ helpers */

static uint64_t rng_state = 0x9E3779B97F4A7C15ULL;
static float frand(void) {            /* uniform in [-1, 1) */
    rng_state ^= rng_state << 13; rng_state ^= rng_state >> 7; rng_state ^= rng_state << 17;
    return (float)((rng_state >> 11) * (1.0 / 9007199254740992.0)) * 2.0f - 1.0f;
}

static float *rand_array(size_t n, float scale) {
    float *a = malloc(n * sizeof *a);
    for (size_t i = 0; i < n; i++) a[i] = frand() * scale;
    return a;
}

/* A model that holds only what dma reads: geometry, keep_window_size and
 * per layer dt_proj (groups, kv_dim) and A (groups). */
struct fake_model {
    struct model m;
    float *dt[4], *A[4];
};

static void fake_model_init(struct fake_model *f, int L, int H, int KV, int hd, int groups, int window,
                            float a_scale) {
    memset(f, 0, sizeof *f);
    struct model *m = &f->m;
    m->dir = "fake-doge";
    m->cfg = (struct model_config){ .n_layers = L, .n_heads = H, .n_kv_heads = KV, .head_dim = hd,
                                    .arch = ARCH_DOGE, .keep_window_size = window, .max_seq_len = 4096 };
    m->dma_heads = groups;
    m->layers = calloc((size_t)L, sizeof *m->layers);
    for (int l = 0; l < L; l++) {
        f->dt[l] = rand_array((size_t)groups * KV * hd, 0.5f);
        f->A[l] = rand_array((size_t)groups, a_scale);
        m->layers[l].dt_proj = (struct tensor){ .dtype = DT_F32, .rows = groups, .cols = KV * hd, .data = f->dt[l] };
        m->layers[l].dma_A = f->A[l];
    }
}

static void fake_model_free(struct fake_model *f) {
    for (int l = 0; l < f->m.cfg.n_layers; l++) { free(f->dt[l]); free(f->A[l]); }
    free(f->m.layers);
}

static struct attn_setup setup_for(const struct model *m, int max_seq_len, const struct attn_options *o) {
    return (struct attn_setup){ .n_layers = m->cfg.n_layers, .n_heads = m->cfg.n_heads,
                                .n_kv_heads = m->cfg.n_kv_heads, .head_dim = m->cfg.head_dim,
                                .max_seq_len = max_seq_len, .opts = o, .model = m };
}

/* q (n, H, hd), k, v (n, KV, hd) per layer. */
struct seq { int L, H, KV, hd, n; float *q[4], *k[4], *v[4]; };

static struct seq make_seq(const struct model *m, int n) {
    struct seq d = { m->cfg.n_layers, m->cfg.n_heads, m->cfg.n_kv_heads, m->cfg.head_dim, n, {0}, {0}, {0} };
    for (int l = 0; l < d.L; l++) {
        d.q[l] = rand_array((size_t)n * d.H * d.hd, 1.5f);
        d.k[l] = rand_array((size_t)n * d.KV * d.hd, 1.5f);
        d.v[l] = rand_array((size_t)n * d.KV * d.hd, 1.0f);
    }
    return d;
}

static void free_seq(struct seq *d) {
    for (int l = 0; l < d->L; l++) { free(d->q[l]); free(d->k[l]); free(d->v[l]); }
}

/* Feeds positions [from, d->n) through the module in the given chunk sizes
 * (0-terminated, cycled; 1 = decode). out: (L, n, H, hd). */
static void feed(const struct attn_module *mod, void *st, const struct seq *d, int from,
                 const int *chunks, float *out) {
    const size_t q_dim = (size_t)d->H * d->hd, kv_dim = (size_t)d->KV * d->hd;
    int c = 0;
    for (int p = from; p < d->n;) {
        int len = chunks[c] ? chunks[c++] : (c = 0, chunks[c++]);
        if (p + len > d->n) len = d->n - p;
        for (int l = 0; l < d->L; l++) {
            float *o = out + ((size_t)l * d->n + p) * q_dim;
            int rc = len == 1 ? mod->decode(st, l, p, d->q[l] + p * q_dim, d->k[l] + p * kv_dim, d->v[l] + p * kv_dim, o)
                              : mod->prefill(st, l, p, len, d->q[l] + p * q_dim, d->k[l] + p * kv_dim,
                                             d->v[l] + p * kv_dim, o);
            ck_assert_msg(rc == 0, "%s", dam_last_error());
        }
        p += len;
    }
}

/* ---------------------------------------------------------------- reference */

/* δ[g][j] of one layer, in double, straight from the formula. */
static double *ref_delta(const struct fake_model *f, int l, const struct seq *d) {
    const int G = f->m.dma_heads, kv_dim = d->KV * d->hd;
    double *delta = malloc((size_t)G * d->n * sizeof *delta);
    for (int g = 0; g < G; g++)
        for (int j = 0; j < d->n; j++) {
            double dt = 0;
            for (int c = 0; c < kv_dim; c++) dt += (double)f->dt[l][(size_t)g * kv_dim + c] * d->v[l][(size_t)j * kv_dim + c];
            double sp = dt > 20 ? dt : log1p(exp(dt));
            delta[(size_t)g * d->n + j] = exp((double)f->A[l][g] * sp);
        }
    return delta;
}

/* The keys query i keeps: all causal ones, or the w with the largest δ
 * (equal δ: the later position first, as transformers' torch.topk on the
 * golden checkpoint). keep: (i + 1) flags. */
static int ref_keep(const double *delta, int i, int w, char *keep) {
    if (i + 1 <= w) { memset(keep, 1, (size_t)i + 1); return i + 1; }
    memset(keep, 0, (size_t)i + 1);
    for (int r = 0; r < w; r++) {              /* w rounds of "largest not yet kept" */
        int best = -1;
        for (int j = 0; j <= i; j++)
            if (!keep[j] && (best < 0 || delta[j] >= delta[best])) best = j;
        keep[best] = 1;
    }
    return w;
}

/* Dense masked DMA of every position of every layer. w <= 0: every causal
 * key (the dense counterpart). Returns the kept pairs (all layers, heads). */
static double ref_dma(const struct fake_model *f, const struct seq *d, int w, float *out) {
    const int G = f->m.dma_heads, q_dim = d->H * d->hd, kv_dim = d->KV * d->hd;
    char *keep = malloc((size_t)d->n);
    double *s = malloc((size_t)d->n * sizeof *s), kept = 0;
    for (int l = 0; l < d->L; l++) {
        double *delta = ref_delta(f, l, d);
        for (int h = 0; h < d->H; h++) {
            const int g = h / (d->H / G), kvh = g * d->KV / G;
            const double *dg = delta + (size_t)g * d->n;
            for (int i = 0; i < d->n; i++) {
                kept += ref_keep(dg, i, w > 0 ? w : d->n, keep);
                const float *q = d->q[l] + (size_t)i * q_dim + h * d->hd;
                double max = -INFINITY, sum = 0, acc[256] = {0};
                for (int j = 0; j <= i; j++) {
                    if (!keep[j]) continue;
                    double dot = 0;
                    for (int x = 0; x < d->hd; x++) dot += (double)q[x] * d->k[l][(size_t)j * kv_dim + kvh * d->hd + x];
                    s[j] = dot / sqrt((double)d->hd) + dg[j];
                    if (s[j] > max) max = s[j];
                }
                for (int j = 0; j <= i; j++) {
                    if (!keep[j]) continue;
                    double p = exp(s[j] - max);
                    sum += p;
                    for (int x = 0; x < d->hd; x++) acc[x] += p * d->v[l][(size_t)j * kv_dim + kvh * d->hd + x];
                }
                float *o = out + ((size_t)l * d->n + i) * q_dim + h * d->hd;
                for (int x = 0; x < d->hd; x++) o[x] = (float)(acc[x] / sum);
            }
        }
        free(delta);
    }
    free(keep); free(s);
    return kept;
}

static double max_diff(const float *a, const float *b, size_t n) {
    double worst = 0;
    for (size_t i = 0; i < n; i++) worst = fmax(worst, fabs((double)a[i] - b[i]));
    return worst;
}

/* Runs the module over a sequence in chunks and checks it against the
 * reference with window w (<= 0: dense). Returns the module's state. */
static void *check_against_ref(const struct attn_module *mod, struct fake_model *f, const struct seq *d,
                               int max_seq_len, const struct attn_options *o, int w, const int *chunks,
                               double *kept_ref) {
    struct attn_setup s = setup_for(&f->m, max_seq_len, o);
    void *st = mod->create(&s);
    ck_assert_msg(st != NULL, "%s", dam_last_error());
    const size_t total = (size_t)d->L * d->n * d->H * d->hd;
    float *got = calloc(total, sizeof *got), *want = calloc(total, sizeof *want);
    feed(mod, st, d, 0, chunks, got);
    double kept = ref_dma(f, d, w, want);
    if (kept_ref) *kept_ref = kept;
    double diff = max_diff(got, want, total);
    ck_assert_msg(diff < 2e-5, "%s (window %d): max difference %g from the dense masked reference",
                  mod->name, w, diff);
    free(got); free(want);
    return st;
}

extern const struct attn_module attn_dma, attn_dma_dense;

/* ------------------------------------------------------------------- tests */

/* δ per KV head (transformers' DogeAttention), GQA 2:1, window 8 over 57
 * positions: prefill chunks of several sizes, single-token decodes, and a
 * chunk that crosses the point where the window first fills. */
START_TEST(test_dma_matches_reference) {
    static const int chunk_sets[][8] = { { 57, 0 }, { 1, 0 }, { 5, 1, 1, 13, 2, 0 }, { 8, 9, 40, 0 } };
    for (size_t c = 0; c < sizeof chunk_sets / sizeof *chunk_sets; c++) {
        struct fake_model f;
        fake_model_init(&f, 2, 4, 2, 16, 2, 8, 2.0f);
        struct seq d = make_seq(&f.m, 57);
        double kept;
        void *st = check_against_ref(&attn_dma, &f, &d, 64, NULL, 8, chunk_sets[c], &kept);
        struct attn_stats stats;
        attn_dma.stats(st, &stats);
        ck_assert_double_eq_tol(stats.kept_pairs, kept, 0.5);
        /* Σ_i min(i + 1, 8) per (layer, head): 36 + 49 * 8 */
        ck_assert_double_eq_tol(stats.kept_pairs, 2.0 * 4 * (36 + 49 * 8), 0.5);
        ck_assert_double_eq_tol(stats.causal_pairs, 2.0 * 4 * 57 * 58 / 2, 0.5);
        /* the cache keeps the window and the evicted keys, not every position */
        ck_assert(stats.kv_bytes >= (size_t)2 * 2 * 8 * 16 * 2 * sizeof(float));
        ck_assert(stats.kv_bytes < stats.kv_bytes_full);
        ck_assert_uint_eq(stats.kv_bytes_full, (size_t)2 * 2 * 57 * 16 * 2 * sizeof(float));
        attn_dma.destroy(st);
        free_seq(&d);
        fake_model_free(&f);
    }
}
END_TEST

/* The older generation: one δ and one mask per query head (A: n_heads). */
START_TEST(test_dma_per_query_head) {
    struct fake_model f;
    fake_model_init(&f, 2, 4, 1, 8, 4, 6, 2.0f);
    struct seq d = make_seq(&f.m, 40);
    static const int chunks[] = { 7, 1, 1, 20, 0 };
    attn_dma.destroy(check_against_ref(&attn_dma, &f, &d, 40, NULL, 6, chunks, NULL));
    free_seq(&d);
    fake_model_free(&f);
}
END_TEST

/* MHA (groups = heads = KV heads), the window overridden by the option, a
 * window of 1 (each query keeps one key, maybe not its own). */
START_TEST(test_dma_window_option) {
    struct fake_model f;
    fake_model_init(&f, 1, 3, 3, 8, 3, 2048, 3.0f);
    struct seq d = make_seq(&f.m, 30);
    struct attn_options o;
    attn_options_default(&o);
    static const int chunks[] = { 4, 1, 11, 0 };
    for (int w = 1; w <= 31; w += 5) {
        o.dma.window = w;
        attn_dma.destroy(check_against_ref(&attn_dma, &f, &d, 32, &o, w, chunks, NULL));
    }
    o.dma.window = -3;
    struct attn_setup s = setup_for(&f.m, 32, &o);
    /* a negative option means "not set": keep_window_size (2048) applies, capped at the context */
    void *st = attn_dma.create(&s);
    ck_assert_ptr_nonnull(st);
    attn_dma.destroy(st);
    free_seq(&d);
    fake_model_free(&f);
}
END_TEST

/* A window at least the context is the dense counterpart; the dense
 * counterpart (what "full" runs on a Doge model) adds δ to every causal key
 * and differs from plain softmax attention. */
START_TEST(test_dense_counterpart) {
    struct fake_model f;
    fake_model_init(&f, 2, 4, 2, 16, 2, 8, 2.0f);
    struct seq d = make_seq(&f.m, 45);
    static const int chunks[] = { 10, 1, 34, 0 };
    double kept;
    void *st = check_against_ref(&attn_dma_dense, &f, &d, 64, NULL, 0, chunks, &kept);
    struct attn_stats stats;
    attn_dma_dense.stats(st, &stats);
    ck_assert_double_eq_tol(stats.sparsity, 0, 1e-12);
    ck_assert_double_eq_tol(stats.kept_pairs, stats.causal_pairs, 0.5);
    ck_assert_uint_eq(stats.kv_bytes, stats.kv_bytes_full);
    attn_dma_dense.destroy(st);
    f.m.cfg.keep_window_size = 45;
    attn_dma.destroy(check_against_ref(&attn_dma, &f, &d, 64, NULL, 0, chunks, NULL));
    f.m.cfg.keep_window_size = 1000;     /* beyond the context: capped, still dense */
    attn_dma.destroy(check_against_ref(&attn_dma, &f, &d, 64, NULL, 0, chunks, NULL));

    /* δ matters: plain full attention gives another result */
    const struct attn_module *full = attn_find("full");
    struct attn_setup s = setup_for(&f.m, 64, NULL);
    void *fs = full->create(&s), *ds = attn_dma_dense.create(&s);
    const size_t total = (size_t)d.L * d.n * d.H * d.hd;
    float *a = calloc(total, sizeof *a), *b = calloc(total, sizeof *b);
    feed(full, fs, &d, 0, chunks, a);
    feed(&attn_dma_dense, ds, &d, 0, chunks, b);
    ck_assert(max_diff(a, b, total) > 1e-3);
    free(a); free(b);
    full->destroy(fs);
    attn_dma_dense.destroy(ds);
    free_seq(&d);
    fake_model_free(&f);
}
END_TEST

/* A = 0 (a freshly initialised checkpoint): every δ is 1, the ranking is all
 * ties and the latest w positions stay. */
START_TEST(test_ties_keep_latest) {
    struct fake_model f;
    fake_model_init(&f, 1, 2, 1, 8, 1, 5, 0.0f);
    f.A[0][0] = 0.0f;
    struct seq d = make_seq(&f.m, 20);
    static const int chunks[] = { 3, 1, 16, 0 };
    attn_dma.destroy(check_against_ref(&attn_dma, &f, &d, 20, NULL, 5, chunks, NULL));
    free_seq(&d);
    fake_model_free(&f);
}
END_TEST

/* Compares layer outputs of positions [from, n) with the reference. */
static void check_tail(const struct seq *d, const float *got, const float *want, int from) {
    for (int l = 0; l < d->L; l++) {
        size_t off = ((size_t)l * d->n + from) * d->H * d->hd, len = (size_t)(d->n - from) * d->H * d->hd;
        double diff = max_diff(got + off, want + off, len);
        ck_assert_msg(diff < 2e-5, "after a rewind to %d: layer %d differs by %g", from, l, diff);
    }
}

/* Rewinds to any position, before or after the window filled: the keys a
 * shorter prefix keeps come back from the undo journal. */
START_TEST(test_rewind) {
    struct fake_model f;
    fake_model_init(&f, 2, 4, 2, 8, 2, 8, 2.0f);
    struct seq d = make_seq(&f.m, 60);
    const size_t total = (size_t)d.L * d.n * d.H * d.hd;
    float *want = calloc(total, sizeof *want), *got = calloc(total, sizeof *got);
    ref_dma(&f, &d, 8, want);
    static const int chunks[] = { 6, 1, 0 }, big[] = { 17, 0 };
    struct attn_setup s = setup_for(&f.m, 60, NULL);
    void *st = attn_dma.create(&s);

    feed(&attn_dma, st, &d, 0, chunks, got);      /* 60 positions, the window long full */
    attn_dma.truncate(st, 0);
    memset(got, 0, total * sizeof *got);
    feed(&attn_dma, st, &d, 0, chunks, got);
    check_tail(&d, got, want, 0);

    /* from the end back to several points, and on again */
    static const int points[] = { 59, 40, 41, 20, 8, 7, 3, 30, 1 };
    for (size_t i = 0; i < sizeof points / sizeof *points; i++) {
        attn_dma.truncate(st, points[i]);
        memset(got, 0, total * sizeof *got);
        feed(&attn_dma, st, &d, points[i], i % 2 ? chunks : big, got);
        check_tail(&d, got, want, points[i]);
    }
    /* a rewind that stops short of the end, then a second one further back */
    attn_dma.truncate(st, 45);
    struct seq part = d;
    part.n = 52;
    feed(&attn_dma, st, &part, 45, chunks, got);
    attn_dma.truncate(st, 25);
    feed(&attn_dma, st, &d, 25, chunks, got);
    check_tail(&d, got, want, 25);

    /* what the cache holds: the window and the journal, fewer than all positions */
    struct attn_stats stats;
    attn_dma.stats(st, &stats);
    ck_assert(stats.kv_bytes >= (size_t)2 * 2 * 8 * 8 * 2 * sizeof(float));
    ck_assert(stats.kv_bytes < stats.kv_bytes_full);

    /* positions out of order, and past the context */
    float o[4 * 8];
    attn_dma.truncate(st, 0);
    ck_assert_int_eq(attn_dma.prefill(st, 0, 0, 1, d.q[0], d.k[0], d.v[0], o), 0);
    ck_assert_int_eq(attn_dma.prefill(st, 0, 5, 1, d.q[0], d.k[0], d.v[0], o), -1);
    ck_assert_ptr_nonnull(strstr(dam_last_error(), "expected 1"));
    ck_assert_int_eq(attn_dma.prefill(st, 1, 59, 2, d.q[0], d.k[0], d.v[0], o), -1);
    ck_assert_ptr_nonnull(strstr(dam_last_error(), "context full"));
    attn_dma.destroy(st);

    /* the dense counterpart evicts nothing */
    st = attn_dma_dense.create(&s);
    feed(&attn_dma_dense, st, &d, 0, chunks, got);
    attn_dma_dense.truncate(st, 17);
    float *want_dense = calloc(total, sizeof *want_dense);
    ref_dma(&f, &d, 0, want_dense);
    memset(got, 0, total * sizeof *got);
    feed(&attn_dma_dense, st, &d, 17, chunks, got);
    check_tail(&d, got, want_dense, 17);
    attn_dma_dense.destroy(st);
    free(want); free(want_dense); free(got);
    free_seq(&d);
    fake_model_free(&f);
}
END_TEST

/* The cost of a query is the window, not the context: the pairs visited
 * per position stop growing once the window is full. */
START_TEST(test_cost_follows_window) {
    struct fake_model f;
    fake_model_init(&f, 1, 2, 1, 8, 1, 16, 1.0f);
    struct seq d = make_seq(&f.m, 600);
    struct attn_setup s = setup_for(&f.m, 600, NULL);
    void *st = attn_dma.create(&s);
    static const int chunks[] = { 64, 0 };
    float *out = calloc((size_t)600 * 2 * 8, sizeof *out);
    feed(&attn_dma, st, &d, 0, chunks, out);
    struct attn_stats a;
    attn_dma.stats(st, &a);
    ck_assert_double_eq_tol(a.kept_pairs, 2.0 * (16 * 17 / 2 + (600 - 16) * 16), 0.5);
    ck_assert(a.sparsity > 0.9);
    /* held: the 16 kept keys and the evicted ones (for rewinds): far fewer
     * than 600 when δ comes in no particular order (about 16 ln(600/16) = 58) */
    size_t per_pos = 8 * 2 * sizeof(float);
    printf("dma: 600 positions, window 16: the cache holds %zu positions\n", a.kv_bytes / per_pos);
    ck_assert(a.kv_bytes >= 16 * per_pos && a.kv_bytes < 200 * per_pos);
    free(out);
    attn_dma.destroy(st);
    free_seq(&d);
    fake_model_free(&f);
}
END_TEST

/* Which module runs on which model, and the errors that say why. */
START_TEST(test_attn_for_model) {
    struct fake_model f;
    fake_model_init(&f, 1, 2, 1, 8, 1, 16, 1.0f);
    const struct attn_module *full = attn_find("full"), *dma = attn_find("dma"), *win = attn_find("window");
    ck_assert_ptr_eq(dma, &attn_dma);
    ck_assert_ptr_nonnull(strstr(attn_names(), "dma"));
    ck_assert_str_eq(attn_default_for(&f.m), "dma");
    ck_assert_ptr_eq(attn_for_model(dma, &f.m), &attn_dma);
    ck_assert_ptr_eq(attn_for_model(full, &f.m), &attn_dma_dense);
    ck_assert_str_eq(attn_dma_dense.name, "full");
    ck_assert_ptr_null(attn_for_model(win, &f.m));
    ck_assert_ptr_nonnull(strstr(dam_last_error(), "--attn=window cannot run fake-doge"));
    ck_assert_ptr_nonnull(strstr(dam_last_error(), "Dynamic Mask Attention"));

    /* a Llama model: no DMA weights */
    struct model llama = { .dir = "some-llama", .cfg = { .n_layers = 1, .n_heads = 2, .n_kv_heads = 1, .head_dim = 8 } };
    ck_assert_str_eq(attn_default_for(&llama), "full");
    ck_assert_ptr_eq(attn_for_model(full, &llama), full);
    ck_assert_ptr_eq(attn_for_model(win, &llama), win);
    ck_assert_ptr_null(attn_for_model(dma, &llama));
    ck_assert_ptr_nonnull(strstr(dam_last_error(), "--attn=dma needs a model trained with Dynamic Mask Attention"));
    ck_assert_ptr_nonnull(strstr(dam_last_error(), "some-llama"));
    /* created directly, without a model or with one lacking the weights */
    struct attn_setup s = setup_for(&llama, 16, NULL);
    ck_assert_ptr_null(attn_dma.create(&s));
    ck_assert_ptr_nonnull(strstr(dam_last_error(), "Dynamic Mask Attention"));
    s.model = NULL;
    ck_assert_ptr_null(attn_dma.create(&s));
    /* geometry that is not the model's */
    s = setup_for(&f.m, 16, NULL);
    s.n_heads = 4;
    ck_assert_ptr_null(attn_dma.create(&s));
    ck_assert_ptr_nonnull(strstr(dam_last_error(), "geometry"));
    fake_model_free(&f);
}
END_TEST

Suite *test_suite(void) {
    Suite *s = suite_create("dma");
    TCase *tc = tcase_create("dma");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_dma_matches_reference);
    tcase_add_test(tc, test_dma_per_query_head);
    tcase_add_test(tc, test_dma_window_option);
    tcase_add_test(tc, test_dense_counterpart);
    tcase_add_test(tc, test_ties_keep_latest);
    tcase_add_test(tc, test_rewind);
    tcase_add_test(tc, test_cost_follows_window);
    tcase_add_test(tc, test_attn_for_model);
    suite_add_tcase(s, tc);
    return s;
}
