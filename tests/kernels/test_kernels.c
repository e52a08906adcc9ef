/* test_kernels.c — every kernel variant this CPU runs (avx512, avx2 and
 * always portable) against plain double-precision references, on ragged
 * shapes that hit every remainder path; and the forward pass on the golden
 * tiny-llama3 model under each variant. */
#include "../harness.h"
#include "dam/common.h"
#include "dam/kernels.h"
#include "dam/model.h"
#include "dam/safetensors.h"
#include "dam/session.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ---- helpers ---- */

static unsigned long long rng = 88172645463325252ull;
static float frand(void) {                      /* uniform in [-1, 1) */
    rng ^= rng << 13; rng ^= rng >> 7; rng ^= rng << 17;
    return (float)((rng >> 40) * (1.0 / (1ull << 23)) - 1.0);
}
static float *rand_vec(size_t n, float scale) {
    float *v = malloc(n * sizeof(float));
    for (size_t i = 0; i < n; i++) v[i] = frand() * scale;
    return v;
}

/* ||a - b|| / ||b|| */
static double rel_err(const float *a, const double *b, size_t n) {
    double num = 0, den = 0;
    for (size_t i = 0; i < n; i++) { num += (a[i] - b[i]) * (a[i] - b[i]); den += b[i] * b[i]; }
    return den > 0 ? sqrt(num / den) : sqrt(num);
}

/* Runs body once per variant the CPU has, with the variant selected. */
#define FOR_EACH_ISA(name)                                                        \
    char isa_list_[64], *isa_save_ = NULL;                                        \
    snprintf(isa_list_, sizeof isa_list_, "%s", kernels_isa_available());         \
    const char *saved_isa_ = kernels_isa();                                       \
    for (char *name = strtok_r(isa_list_, " ", &isa_save_); name;                 \
         name = strtok_r(NULL, " ", &isa_save_))                                  \
        if (kernels_set_isa(name) == 0)

static void restore_isa(const char *name) { ck_assert_int_eq(kernels_set_isa(name), 0); }

START_TEST(portable_is_always_available) {
    ck_assert_ptr_nonnull(strstr(kernels_isa_available(), "portable"));
    ck_assert_int_eq(kernels_set_isa("nonsense"), -1);
    ck_assert_ptr_nonnull(strstr(dam_last_error(), "unknown kernel variant"));
}
END_TEST

/* ---- matmul in the three dtypes, ragged shapes, batch of two ---- */

static void weights_in(enum dtype dt, const float *wf, size_t n, void **data, double *exact) {
    /* the weights as stored, and their exact values as double */
    *data = malloc(n * 4);
    for (size_t i = 0; i < n; i++) {
        if (dt == DT_F32) { ((float *)*data)[i] = wf[i]; exact[i] = wf[i]; }
        else if (dt == DT_BF16) { uint16_t h = f32_to_bf16(wf[i]); ((uint16_t *)*data)[i] = h; exact[i] = bf16_to_f32(h); }
        else { uint16_t h = f32_to_f16(wf[i]); ((uint16_t *)*data)[i] = h; exact[i] = f16_to_f32(h); }
    }
}

static void check_matmul(enum dtype dt, int n, int rows, int cols) {
    float *x = rand_vec((size_t)n * cols, 1), *wf = rand_vec((size_t)rows * cols, 0.5f);
    double *we = malloc((size_t)rows * cols * sizeof(double)), *ref = malloc((size_t)n * rows * sizeof(double));
    void *wd;
    weights_in(dt, wf, (size_t)rows * cols, &wd, we);
    for (int i = 0; i < n; i++)
        for (int r = 0; r < rows; r++) {
            double s = 0;
            for (int c = 0; c < cols; c++) s += (double)x[(size_t)i * cols + c] * we[(size_t)r * cols + c];
            ref[(size_t)i * rows + r] = s;
        }
    struct tensor w = { .dtype = dt, .rows = rows, .cols = cols, .data = wd };
    float *out = malloc((size_t)n * rows * sizeof(float)), *out2 = malloc((size_t)n * rows * sizeof(float));
    FOR_EACH_ISA(isa) {
        memset(out, 0xff, (size_t)n * rows * sizeof(float));     /* NaN: every output must be written */
        matmul(out, x, &w, n);
        double e = rel_err(out, ref, (size_t)n * rows);
        ck_assert_msg(e < 1e-5, "%s %s n=%d rows=%d cols=%d: error %g", isa, dtype_name(dt), n, rows, cols, e);
        /* the batch form: the same product twice in one pass */
        float *const outs[2] = { out, out2 };
        const struct tensor *const ws[2] = { &w, &w };
        matmul_batch(2, outs, x, ws, n);
        ck_assert_msg(rel_err(out2, ref, (size_t)n * rows) < 1e-5, "%s batch", isa);
        ck_assert_msg(rel_err(out, ref, (size_t)n * rows) < 1e-5, "%s batch", isa);
    }
    restore_isa(saved_isa_);
    free(x); free(wf); free(we); free(ref); free(wd); free(out); free(out2);
}

START_TEST(matmul_matches_reference) {
    static const int ns[] = { 1, 2, 3, 4, 5, 9, 33 };
    static const int rows[] = { 1, 5, 6, 13, 40 };
    static const int cols[] = { 1, 7, 16, 33, 100 };
    static const enum dtype dts[] = { DT_F32, DT_BF16, DT_F16 };
    for (int d = 0; d < 3; d++)
        for (size_t a = 0; a < sizeof ns / sizeof *ns; a++)
            for (size_t b = 0; b < sizeof rows / sizeof *rows; b++)
                for (size_t c = 0; c < sizeof cols / sizeof *cols; c++)
                    check_matmul(dts[d], ns[a], rows[b], cols[c]);
}
END_TEST

/* columns beyond one block (KC_MAX = 1024) and inputs beyond one L2 block:
 * the column-blocked accumulation paths */
START_TEST(matmul_blocked_columns) {
    check_matmul(DT_BF16, 1, 20, 2500);
    check_matmul(DT_BF16, 130, 14, 1100);
    check_matmul(DT_F16, 600, 7, 300);
    check_matmul(DT_F32, 7, 9, 1030);
}
END_TEST

/* ---- attention: blocked cache vs a naive causal softmax in double ---- */

/* ref (n, n_heads, hd) = causal softmax attention of q over k, v in double */
static void naive_attention(double *ref, const float *q, const float *k, const float *v, int n, int pos0,
                            int n_heads, int n_kv_heads, int hd) {
    const int total = pos0 + n, kv_dim = n_kv_heads * hd, group = n_heads / n_kv_heads;
    double *p = malloc((size_t)total * sizeof(double));
    const double scale = 1 / sqrt((double)hd);
    memset(ref, 0, (size_t)n * n_heads * hd * sizeof(double));
    for (int t = 0; t < n; t++)
        for (int h = 0; h < n_heads; h++) {
            const float *qr = q + ((size_t)t * n_heads + h) * hd;
            int g = h / group, keys = pos0 + t + 1;
            double mx = -INFINITY, sum = 0;
            for (int j = 0; j < keys; j++) {
                double s = 0;
                for (int d = 0; d < hd; d++) s += (double)qr[d] * k[(size_t)j * kv_dim + g * hd + d];
                p[j] = s * scale;
                if (p[j] > mx) mx = p[j];
            }
            for (int j = 0; j < keys; j++) { p[j] = exp(p[j] - mx); sum += p[j]; }
            double *o = ref + ((size_t)t * n_heads + h) * hd;
            for (int j = 0; j < keys; j++)
                for (int d = 0; d < hd; d++) o[d] += p[j] / sum * v[(size_t)j * kv_dim + g * hd + d];
        }
    free(p);
}

static void check_attention(int n, int pos0, int n_heads, int n_kv_heads, int hd) {
    const int total = pos0 + n, cap = (total + KV_BLOCK - 1) / KV_BLOCK * KV_BLOCK;
    const int kv_dim = n_kv_heads * hd, group = n_heads / n_kv_heads;
    float *k = rand_vec((size_t)total * kv_dim, 1), *v = rand_vec((size_t)total * kv_dim, 1);
    float *q = rand_vec((size_t)n * n_heads * hd, 1.5f);
    double *ref = malloc((size_t)n * n_heads * hd * sizeof(double));
    const double scale = 1 / sqrt((double)hd);
    naive_attention(ref, q, k, v, n, pos0, n_heads, n_kv_heads, hd);
    float *kc = calloc((size_t)n_kv_heads * cap * hd, sizeof(float));
    float *vc = calloc((size_t)n_kv_heads * cap * hd, sizeof(float));
    float *out = malloc((size_t)n * n_heads * hd * sizeof(float));
    /* the cache filled in two steps, as a prefill then the chunk */
    kv_blocked_store(kc, vc, KV_F32, cap, n_kv_heads, hd, 0, pos0, k, v);
    kv_blocked_store(kc, vc, KV_F32, cap, n_kv_heads, hd, pos0, n, k + (size_t)pos0 * kv_dim, v + (size_t)pos0 * kv_dim);
    FOR_EACH_ISA(isa) {
        memset(out, 0xff, (size_t)n * n_heads * hd * sizeof(float));
        ck_assert_int_eq(attention_blocked(out, q, n, pos0, n_heads, n_kv_heads, hd, kc, vc, KV_F32, cap), 0);
        double e = rel_err(out, ref, (size_t)n * n_heads * hd);
        ck_assert_msg(e < 2e-6, "%s n=%d pos0=%d heads=%d/%d hd=%d: error %g", isa, n, pos0,
                      n_heads, n_kv_heads, hd, e);
        /* the flat-layout row kernel (attn_row_dense) on the last token */
        float row[256];
        for (int h = 0; h < n_heads; h++) {
            int g = h / group;
            attention_row_strided(q + ((size_t)(n - 1) * n_heads + h) * hd, k + g * hd, v + g * hd, total,
                                  kv_dim, hd, (float)scale, row);
            e = rel_err(row, ref + ((size_t)(n - 1) * n_heads + h) * hd, hd);
            ck_assert_msg(e < 2e-6, "%s row kernel hd=%d: error %g", isa, hd, e);
        }
    }
    restore_isa(saved_isa_);
    free(k); free(v); free(q); free(ref); free(kc); free(vc); free(out);
}

/* A 16-bit cache: stored rounded, read back exactly, so every variant
 * matches the naive attention over the rounded keys and values to float
 * accuracy; and the rounding itself stays within its bound. */
static void check_attention_kv16(enum kv_type kt, int n, int pos0, int n_heads, int n_kv_heads, int hd) {
    const int total = pos0 + n, cap = (total + KV_BLOCK - 1) / KV_BLOCK * KV_BLOCK, kv_dim = n_kv_heads * hd;
    const size_t nkv = (size_t)total * kv_dim, nout = (size_t)n * n_heads * hd;
    float *k = rand_vec(nkv, 1), *v = rand_vec(nkv, 1), *q = rand_vec(nout, 1.5f);
    float *kr = malloc(nkv * sizeof(float)), *vr = malloc(nkv * sizeof(float));
    for (size_t i = 0; i < nkv; i++) {
        kr[i] = kt == KV_BF16 ? bf16_to_f32(f32_to_bf16(k[i])) : f16_to_f32(f32_to_f16(k[i]));
        vr[i] = kt == KV_BF16 ? bf16_to_f32(f32_to_bf16(v[i])) : f16_to_f32(f32_to_f16(v[i]));
    }
    double *ref = malloc(nout * sizeof(double)), *exact = malloc(nout * sizeof(double));
    naive_attention(ref, q, kr, vr, n, pos0, n_heads, n_kv_heads, hd);
    naive_attention(exact, q, k, v, n, pos0, n_heads, n_kv_heads, hd);
    uint16_t *kc = calloc((size_t)n_kv_heads * cap * hd, 2), *vc = calloc((size_t)n_kv_heads * cap * hd, 2);
    float *out = malloc(nout * sizeof(float));
    kv_blocked_store(kc, vc, kt, cap, n_kv_heads, hd, 0, pos0, k, v);
    kv_blocked_store(kc, vc, kt, cap, n_kv_heads, hd, pos0, n, k + (size_t)pos0 * kv_dim, v + (size_t)pos0 * kv_dim);
    FOR_EACH_ISA(isa) {
        memset(out, 0xff, nout * sizeof(float));
        ck_assert_int_eq(attention_blocked(out, q, n, pos0, n_heads, n_kv_heads, hd, kc, vc, kt, cap), 0);
        double e = rel_err(out, ref, nout), e2 = rel_err(out, exact, nout);
        ck_assert_msg(e < 2e-6, "%s %s n=%d pos0=%d heads=%d/%d hd=%d: error %g", isa, kv_type_name(kt), n, pos0,
                      n_heads, n_kv_heads, hd, e);
        ck_assert_msg(e2 < (kt == KV_BF16 ? 1e-2 : 1e-3), "%s %s: error %g against float32 keys", isa,
                      kv_type_name(kt), e2);
    }
    restore_isa(saved_isa_);
    free(k); free(v); free(q); free(kr); free(vr); free(ref); free(exact); free(kc); free(vc); free(out);
}

START_TEST(attention_kv16_matches_reference) {
    static const enum kv_type types[] = { KV_F16, KV_BF16 };
    for (int t = 0; t < 2; t++) {
        check_attention_kv16(types[t], 37, 0, 9, 3, 64);    /* prefill, SmolLM2 grouping */
        check_attention_kv16(types[t], 20, 45, 4, 1, 64);
        check_attention_kv16(types[t], 13, 3, 4, 4, 80);    /* head_dim not a multiple of 64 */
        check_attention_kv16(types[t], 7, 9, 8, 4, 8);      /* portable path on every variant */
        check_attention_kv16(types[t], 1, 1300, 8, 2, 64);  /* decode over several key ranges */
        check_attention_kv16(types[t], 1, 5, 40, 1, 16);
    }
}
END_TEST

START_TEST(attention_prefill_matches_reference) {
    check_attention(1, 0, 2, 1, 16);          /* a single token, nothing before */
    check_attention(37, 0, 9, 3, 64);         /* SmolLM2 grouping, ragged tiles */
    check_attention(20, 45, 4, 1, 64);        /* a chunk after earlier positions */
    check_attention(70, 130, 8, 4, 8);        /* stories260k head size: portable path */
    check_attention(13, 3, 4, 4, 80);         /* head_dim not a multiple of 64 */
    check_attention(9, 0, 2, 2, 128);
    check_attention(5, 17, 40, 1, 16);        /* a group larger than one tile of rows */
}
END_TEST

START_TEST(attention_decode_matches_reference) {
    check_attention(1, 5, 9, 3, 64);
    check_attention(1, 1300, 8, 2, 64);       /* several key ranges, merged */
    check_attention(1, 700, 4, 4, 32);
    check_attention(1, 600, 40, 1, 16);
}
END_TEST

/* ---- attention over a list of key blocks (the sparse modules) ----
 * Random blocks at scattered addresses and positions, some rows seeing only
 * part of a block (causal), against the same naive softmax over the keys the
 * rows see; and the Quest bound against its definition. */

static void check_bounds(const float *q, int hd, int nb);

static void check_attention_blocks(enum kv_type kt, int rows, int hd, int nb) {
    const size_t n_el = (size_t)nb * 2 * KV_BLOCK * hd, es = kv_type_size(kt);
    float *pagesf = rand_vec(n_el, 1);
    unsigned char *pages = malloc(n_el * es);          /* the pages in element type kt */
    for (size_t i = 0; i < n_el; i++) kv_put(kt, pages, i, pagesf[i]);
    float *q = rand_vec((size_t)rows * hd, 1.5f);
    struct kv_block *blk = malloc((size_t)nb * sizeof *blk);
    int last[32];
    /* blocks in a shuffled memory order, positions ascending with gaps */
    for (int b = 0, pos = 0; b < nb; b++) {
        const size_t page = (size_t)((b * 7 + 3) % nb) * 2 * KV_BLOCK * hd;
        blk[b] = (struct kv_block){ pages + page * es, pages + (page + KV_BLOCK * hd) * es, pos };
        pos += KV_BLOCK * (1 + b % 3);
    }
    const int top = blk[nb - 1].pos;                   /* rows end inside the last block */
    for (int r = 0; r < rows; r++) last[r] = top + (r * 5) % KV_BLOCK;
    /* the naive softmax over the keys and values as stored (ref) and as
     * given, before rounding (exact) */
    double *ref = calloc((size_t)rows * hd, sizeof(double)), *exact = calloc((size_t)rows * hd, sizeof(double));
    const double scale = 1 / sqrt((double)hd);
    for (int pass = 0; pass < 2; pass++) {
        double *dst = pass ? exact : ref;
        for (int r = 0; r < rows; r++) {
            double mx = -INFINITY, sum = 0, p[64 * KV_BLOCK];
            int n = 0;
            for (int b = 0; b < nb; b++) {
                const size_t kb = (size_t)((const unsigned char *)blk[b].k - pages) / es;
                for (int j = 0; j < KV_BLOCK && blk[b].pos + j <= last[r]; j++, n++) {
                    double s = 0;
                    for (int d = 0; d < hd; d++) {
                        const size_t i = kb + (size_t)d * KV_BLOCK + j;
                        s += (double)q[(size_t)r * hd + d] * (pass ? pagesf[i] : kv_get(kt, pages, i));
                    }
                    p[n] = s * scale;
                    if (p[n] > mx) mx = p[n];
                }
            }
            for (int i = 0; i < n; i++) { p[i] = exp(p[i] - mx); sum += p[i]; }
            n = 0;
            for (int b = 0; b < nb; b++) {
                const size_t vb = (size_t)((const unsigned char *)blk[b].v - pages) / es;
                for (int j = 0; j < KV_BLOCK && blk[b].pos + j <= last[r]; j++, n++)
                    for (int d = 0; d < hd; d++) {
                        const size_t i = vb + (size_t)j * hd + d;
                        dst[(size_t)r * hd + d] += p[n] / sum * (pass ? pagesf[i] : kv_get(kt, pages, i));
                    }
            }
        }
    }
    float *out = malloc((size_t)rows * hd * sizeof(float));
    FOR_EACH_ISA(isa) {
        memset(out, 0xff, (size_t)rows * hd * sizeof(float));
        attention_blocks(out, hd, q, hd, rows, last, hd, blk, nb, kt);
        double e = rel_err(out, ref, (size_t)rows * hd), e2 = rel_err(out, exact, (size_t)rows * hd);
        ck_assert_msg(e < 2e-6, "%s blocks %s rows=%d hd=%d nb=%d: error %g", isa, kv_type_name(kt), rows, hd, nb, e);
        ck_assert_msg(e2 < (kt == KV_BF16 ? 1e-2 : kt == KV_F16 ? 1e-3 : 2e-6), "%s blocks %s: error %g against "
                      "float32 keys", isa, kv_type_name(kt), e2);
    }
    restore_isa(saved_isa_);
    if (kt == KV_F32) check_bounds(q, hd, nb);
    free(pagesf); free(pages); free(q); free(blk); free(ref); free(exact); free(out);
}

/* Quest's bound: sum_d max(q_d kmax_d, q_d kmin_d), from (q+, q-) and the
 * transposed summaries of 16 blocks (kernels.h), over a range of blocks that
 * starts and ends inside a group. */
static void check_bounds(const float *q, int hd, int nb) {
    const int groups = (nb + BOUND_GROUP - 1) / BOUND_GROUP;
    float *qpm = malloc(2 * (size_t)hd * sizeof(float));
    float *sums = rand_vec((size_t)groups * 2 * hd * BOUND_GROUP, 1);
    float *bound = malloc((size_t)nb * sizeof(float));
    for (int d = 0; d < hd; d++) { qpm[d] = q[d] > 0 ? q[d] : 0; qpm[hd + d] = q[d] < 0 ? q[d] : 0; }
    for (int b = 0; b < groups * BOUND_GROUP; b++)      /* a summary has kmax >= kmin */
        for (int d = 0; d < hd; d++) {
            float *mx = sums + ((size_t)(b / BOUND_GROUP) * 2 * hd + d) * BOUND_GROUP + b % BOUND_GROUP;
            float *mn = mx + (size_t)hd * BOUND_GROUP;
            if (*mx < *mn) { float t = *mx; *mx = *mn; *mn = t; }
        }
    const int b0 = nb > 3 ? 3 : 0, b1 = nb;
    FOR_EACH_ISA(isa2) {
        block_bounds(bound, qpm, hd, sums, b0, b1);
        for (int b = b0; b < b1; b++) {
            double want = 0;
            for (int d = 0; d < hd; d++) {
                const float *mx = sums + ((size_t)(b / BOUND_GROUP) * 2 * hd + d) * BOUND_GROUP + b % BOUND_GROUP;
                want += fmax((double)q[d] * mx[0], (double)q[d] * mx[(size_t)hd * BOUND_GROUP]);
            }
            ck_assert_msg(fabs(bound[b - b0] - want) < 1e-4 * (1 + fabs(want)), "%s bound %d: %g vs %g", isa2, b,
                          bound[b - b0], want);
        }
    }
    restore_isa(saved_isa_);
    free(qpm); free(sums); free(bound);
}

START_TEST(attention_blocks_match_reference) {
    for (int t = 0; t < KV_COUNT; t++) {     /* float32, and 16-bit pages converted in registers */
        const enum kv_type kt = (enum kv_type)t;
        check_attention_blocks(kt, 1, 64, 1);         /* decode: one row, one block */
        check_attention_blocks(kt, 16, 64, 9);        /* a tile of rows, tiles of 4 blocks and a ragged one */
        check_attention_blocks(kt, 7, 64, 30);
        check_attention_blocks(kt, 32, 128, 5);
        check_attention_blocks(kt, 3, 8, 6);          /* stories260k head size: portable path */
        check_attention_blocks(kt, 5, 80, 11);        /* head_dim not a multiple of 64 */
        check_attention_blocks(kt, 2, 64, 40);        /* bounds over three groups of 16 blocks */
    }
}
END_TEST

/* ---- vector helpers ---- */

START_TEST(vector_helpers_match_reference) {
    const int n = 77;
    float *a = rand_vec(n, 3), *b = rand_vec(n, 1);
    double ref[77];
    FOR_EACH_ISA(isa) {
        double d = 0;
        for (int i = 0; i < n; i++) d += (double)a[i] * b[i];
        ck_assert_msg(fabs(dot_f32(a, b, n) - d) < 1e-5 * (1 + fabs(d)), "%s dot", isa);

        float y[77];
        memcpy(y, b, sizeof y);
        axpy_f32(y, 0.5f, a, n);
        for (int i = 0; i < n; i++) ref[i] = b[i] + 0.5 * a[i];
        ck_assert_msg(rel_err(y, ref, n) < 1e-6, "%s axpy", isa);
        scale_f32(y, -2, n);
        for (int i = 0; i < n; i++) ref[i] *= -2;
        ck_assert_msg(rel_err(y, ref, n) < 1e-6, "%s scale", isa);

        memcpy(y, a, sizeof y);
        double sum = 0;
        for (int i = 0; i < n; i++) { ref[i] = exp((double)a[i] - 1.5); sum += ref[i]; }
        float got = exp_sum_f32(y, n, 1.5f);
        ck_assert_msg(rel_err(y, ref, n) < 1e-6 && fabs(got - sum) < 1e-5 * sum, "%s exp_sum", isa);

        float g[77];
        for (int i = 0; i < n; i++) g[i] = a[i] * 10;    /* silu over -30 .. 30 */
        for (int i = 0; i < n; i++) ref[i] = (double)g[i] / (1 + exp(-(double)g[i])) * b[i];
        swiglu_f32(g, b, n);
        ck_assert_msg(rel_err(g, ref, n) < 1e-6, "%s swiglu", isa);
        ck_assert_msg(kernels_fma_probe(1000) > 0, "%s probe", isa);
        uint64_t words[128] __attribute__((aligned(64))), fold = 0;    /* 1024 bytes */
        for (int i = 0; i < 128; i++) { words[i] = 0x9e3779b97f4a7c15ull * (i + 1); fold ^= words[i]; }
        ck_assert_msg(kernels_read_probe(words, sizeof words) == fold, "%s read probe", isa);
    }
    restore_isa(saved_isa_);
    free(a); free(b);
}
END_TEST

/* the rotary table gives exactly what rope_apply gives */
START_TEST(rope_table_equals_rope_apply) {
    const int n = 5, heads = 3, hd = 16, pos0 = 1000;
    float inv_freq[8];
    for (int i = 0; i < 8; i++) inv_freq[i] = powf(10000, -(float)i / 8);
    float *x = rand_vec((size_t)n * heads * hd, 1), *y = malloc((size_t)n * heads * hd * sizeof(float));
    memcpy(y, x, (size_t)n * heads * hd * sizeof(float));
    float cs[5 * 8], sn[5 * 8];
    rope_apply(x, n, heads, hd, pos0, inv_freq);
    rope_table(cs, sn, n, hd, pos0, inv_freq);
    rope_apply_table(y, n, heads, hd, cs, sn);
    ck_assert_int_eq(memcmp(x, y, (size_t)n * heads * hd * sizeof(float)), 0);
    free(x); free(y);
}
END_TEST

/* ---- the whole forward pass under each variant ---- */

START_TEST(golden_forward_every_isa) {
    const char *dir = "third_party/models/tiny-llama3";
    struct st_file *g = st_open("third_party/models/tiny-llama3/golden.safetensors");
    ck_assert_msg(g != NULL, "%s", dam_last_error());
    const struct st_tensor *ids = st_find(g, "input_ids"), *want = st_find(g, "logits");
    struct model *m = model_load(dir);
    ck_assert_msg(m != NULL, "%s", dam_last_error());
    struct attn_options o;
    attn_options_default(&o);
    const int n = (int)ids->numel, vocab = m->cfg.vocab_size;
    float *out = malloc((size_t)n * vocab * sizeof(float));
    double *ref = malloc((size_t)n * vocab * sizeof(double));
    for (size_t i = 0; i < (size_t)n * vocab; i++) ref[i] = ((const float *)want->data)[i];
    FOR_EACH_ISA(isa) {
        /* float32 cache: exact to 1e-4; 16-bit caches within their rounding */
        for (int kt = 0; kt < KV_COUNT; kt++) {
            o.kv_type = (enum kv_type)kt;
            struct session *s = session_new(m, attn_find("full"), &o, 0);
            ck_assert_msg(s != NULL, "%s", dam_last_error());
            ck_assert_int_eq(session_eval(s, ids->data, n, out, LOGITS_ALL), 0);
            double e = rel_err(out, ref, (size_t)n * vocab);
            printf("%s, KV %s: tiny-llama3 logits relative error %.3g\n", isa, kv_type_name(o.kv_type), e);
            const double limit = kt == KV_F32 ? 1e-4 : kt == KV_F16 ? 1e-3 : 1e-2;
            ck_assert_msg(e < limit, "%s KV %s: relative error %g", isa, kv_type_name(o.kv_type), e);
            session_free(s);
        }
        o.kv_type = KV_F32;
    }
    restore_isa(saved_isa_);
    free(out); free(ref);
    model_free(m);
    st_close(g);
}
END_TEST

Suite *test_suite(void) {
    Suite *s = suite_create("kernels");
    TCase *tc = tcase_create("kernels");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, portable_is_always_available);
    tcase_add_test(tc, matmul_matches_reference);
    tcase_add_test(tc, matmul_blocked_columns);
    tcase_add_test(tc, attention_prefill_matches_reference);
    tcase_add_test(tc, attention_decode_matches_reference);
    tcase_add_test(tc, attention_blocks_match_reference);
    tcase_add_test(tc, attention_kv16_matches_reference);
    tcase_add_test(tc, vector_helpers_match_reference);
    tcase_add_test(tc, rope_table_equals_rope_apply);
    tcase_add_test(tc, golden_forward_every_isa);
    suite_add_tcase(s, tc);
    return s;
}
