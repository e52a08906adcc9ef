/* test_quant.c — weights quantized at load (include/dam/quant.h): the
 * round trip of every format within its error bound, the int8 activations
 * of every kernel variant byte for byte against the portable ones and the
 * portable ones against a plain reference, the quantized matrix product of
 * every variant against a double-precision sum over the same dequantized
 * values, and the forward pass of a quantized model against the golden
 * logits. */
#include "../harness.h"
#include "dam/common.h"
#include "dam/kernels.h"
#include "dam/model.h"
#include "dam/quant.h"
#include "dam/safetensors.h"
#include "dam/session.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>

static unsigned long long rng = 0x2545f4914f6cdd1dull;
static float frand(void) {                      /* uniform in [-1, 1) */
    rng ^= rng << 13; rng ^= rng >> 7; rng ^= rng << 17;
    return (float)((rng >> 40) * (1.0 / (1ull << 23)) - 1.0);
}
/* Gaussian-like weights (sum of uniforms) with a few large ones, as trained
 * matrices have. */
static float *rand_weights(size_t n) {
    float *v = malloc(n * sizeof(float));
    for (size_t i = 0; i < n; i++) {
        v[i] = 0.02f * (frand() + frand() + frand());
        if (i % 97 == 3) v[i] *= 8;
    }
    return v;
}

#define FOR_EACH_ISA(name)                                                        \
    char isa_list_[64], *isa_save_ = NULL;                                        \
    snprintf(isa_list_, sizeof isa_list_, "%s", kernels_isa_available());         \
    const char *saved_isa_ = kernels_isa();                                       \
    for (char *name = strtok_r(isa_list_, " ", &isa_save_); name;                 \
         name = strtok_r(NULL, " ", &isa_save_))                                  \
        if (kernels_set_isa(name) == 0)

static const enum quant_type formats[] = { QUANT_Q8_0, QUANT_Q4_0, QUANT_Q4_K };

/* A quantized (rows, cols) matrix of float rows w, as the loader makes it. */
struct qmat {
    struct tensor t;
    uint8_t *quants, *scales;
    uint16_t *supers;
};

static void qmat_make(struct qmat *m, enum quant_type q, const float *w, int rows, int cols) {
    const struct qshape sh = quant_shape(q, rows, cols);
    m->quants = malloc(sh.quant_bytes);
    m->scales = malloc(sh.scale_bytes);
    m->supers = sh.super_bytes ? malloc(sh.super_bytes) : NULL;
    for (int g = 0; g < sh.groups; g++) {
        const int n = rows - g * QGROUP < QGROUP ? rows - g * QGROUP : QGROUP;
        quant_group(q, w + (size_t)g * QGROUP * cols, (size_t)cols, n, cols, g, m->quants, m->scales, m->supers);
    }
    m->t = (struct tensor){ .dtype = DT_F32, .rows = rows, .cols = cols, .data = m->quants, .quant = q,
                            .scales = m->scales, .supers = m->supers };
}

static void qmat_free(struct qmat *m) { free(m->quants); free(m->scales); free(m->supers); }

/* ---- the round trip ---- */

/* Every value back within the format's step: q8_0 half a step, the step
 * at most max |w| / 120 per (row, block); q4_0 one step (max |w| / 6.5):
 * its grid is -8 .. 7, so when the largest magnitude is negative and
 * scaled to -8, a positive value as large is clamped at 7; q4_k 3/4 of a
 * step of its 16 columns' range / 15 (half a step plus the byte-quantised
 * scale and min). */
static void check_round_trip(enum quant_type q, int rows, int cols) {
    float *w = rand_weights((size_t)rows * cols), *back = malloc((size_t)cols * sizeof(float));
    struct qmat m;
    qmat_make(&m, q, w, rows, cols);
    double err2 = 0, ref2 = 0;
    for (int r = 0; r < rows; r++) {
        tensor_row_f32(&m.t, r, back);
        for (int c0 = 0; c0 < cols; c0 += 16) {
            const int nc = cols - c0 < 16 ? cols - c0 : 16;
            float amax = 0, lo = 0, hi = 0, amax32 = 0;
            for (int c = c0; c < c0 + nc; c++) {
                const float x = w[(size_t)r * cols + c];
                amax = fmaxf(amax, fabsf(x)); lo = fminf(lo, x); hi = fmaxf(hi, x);
            }
            for (int c = c0 / 32 * 32; c < cols && c < c0 / 32 * 32 + 32; c++) amax32 = fmaxf(amax32, fabsf(w[(size_t)r * cols + c]));
            const float bound = q == QUANT_Q8_0 ? amax32 / 120 * 0.505f + 1e-7f
                              : q == QUANT_Q4_0 ? amax32 / 6.5f * 1.02f + 1e-7f
                                                : (hi - lo) / 15 * 0.75f + 1e-6f;
            for (int c = c0; c < c0 + nc; c++) {
                const float x = w[(size_t)r * cols + c], e = fabsf(back[c] - x);
                ck_assert_msg(e <= bound, "%s %dx%d row %d col %d: %g back as %g (bound %g)", quant_name(q),
                              rows, cols, r, c, x, back[c], bound);
                err2 += (double)e * e;
                ref2 += (double)x * x;
            }
        }
    }
    /* (these weights have an outlier 8x the spread every 97 values: the
     * blocks holding one get coarse steps, as in trained matrices) */
    const double rel = sqrt(err2 / ref2), limit = q == QUANT_Q8_0 ? 0.012 : q == QUANT_Q4_0 ? 0.18 : 0.08;
    ck_assert_msg(rel < limit, "%s %dx%d: relative RMS error %g", quant_name(q), rows, cols, rel);
    qmat_free(&m);
    free(w); free(back);
}

START_TEST(round_trip_within_bounds) {
    for (int f = 0; f < 3; f++) {
        check_round_trip(formats[f], 16, 32);
        check_round_trip(formats[f], 37, 100);       /* ragged rows and columns */
        check_round_trip(formats[f], 5, 300);        /* one partial group, a partial super-block */
        check_round_trip(formats[f], 33, 576);
    }
}
END_TEST

START_TEST(format_names) {
    enum quant_type q;
    for (int f = 0; f < QUANT_COUNT; f++) {
        ck_assert_int_eq(quant_from_name(quant_name(f), &q), 0);
        ck_assert_int_eq(q, f);
    }
    ck_assert_int_eq(quant_from_name("q5_0", &q), -1);
    enum kv_type k;
    ck_assert_int_eq(kv_type_from_name("bf16", &k), 0);
    ck_assert_int_eq(k, KV_BF16);
    ck_assert_int_eq(kv_type_from_name("f8", &k), -1);
}
END_TEST

/* ---- activations ---- */

struct qx {
    struct qinput in;
    int cols;
};

static void qx_alloc(struct qx *x, int n, int cols, int second) {
    x->cols = cols;
    x->in = (struct qinput){ .n = n, .blocks = (cols + QBLOCK - 1) / QBLOCK };
    x->in.ldq = (size_t)x->in.blocks * QBLOCK;
    x->in.q = malloc((size_t)n * x->in.ldq);
    x->in.d = malloc((size_t)n * x->in.blocks * sizeof(float));
    x->in.s = malloc((size_t)n * x->in.blocks * sizeof(int32_t));
    x->in.h = malloc((size_t)n * x->in.blocks * 2 * sizeof(int32_t));
    x->in.r = second ? malloc((size_t)n * x->in.ldq) : NULL;
    x->in.rs = second ? malloc((size_t)n * x->in.blocks * sizeof(int32_t)) : NULL;
}

static void qx_free(struct qx *x) {
    free(x->in.q); free(x->in.d); free(x->in.s); free(x->in.h); free(x->in.r); free(x->in.rs);
}

/* x as the kernels see it: d (q + r / QRES), or d q */
static double qx_value(const struct qx *x, int i, int c) {
    const size_t k = (size_t)i * x->in.ldq + c;
    const double d = x->in.d[(size_t)i * x->in.blocks + c / QBLOCK];
    return d * (x->in.q[k] + (x->in.r ? x->in.r[k] / (double)QRES : 0));
}

START_TEST(activations_identical_across_variants) {
    const int n = 5, cols = 81;                         /* a ragged last block */
    float *x = malloc((size_t)n * cols * sizeof(float));
    for (int i = 0; i < n * cols; i++) x[i] = frand() * (i % 13 == 0 ? 9 : 1);
    for (int c = 0; c < 32; c++) x[c] = 0;              /* an all-zero block: d 0, all bytes 0 */
    x[40] = 0.5f / 127 * 3;                             /* exactly halfway cases round to even */
    struct qx ref, got;
    qx_alloc(&ref, n, cols, 1);
    qx_alloc(&got, n, cols, 1);
    /* the portable variant against the definition */
    ck_assert_int_eq(kernels_set_isa("portable"), 0);
    kernels_quantize_input(x, n, cols, &ref.in);
    for (int i = 0; i < n; i++)
        for (int b = 0; b < ref.in.blocks; b++) {
            float amax = 0;
            for (int c = b * 32; c < cols && c < b * 32 + 32; c++) amax = fmaxf(amax, fabsf(x[i * cols + c]));
            const size_t k = (size_t)i * ref.in.blocks + b;
            ck_assert(ref.in.d[k] == amax / 127.0f);
            int32_t s = 0, h0 = 0, rs = 0;
            for (int c = b * 32; c < b * 32 + 32; c++) {
                const float t = c < cols ? x[i * cols + c] * (amax > 0 ? 127.0f / amax : 0) : 0;
                const int q = (int)nearbyintf(t), r = (int)nearbyintf((t - q) * QRES);
                ck_assert_int_eq(ref.in.q[(size_t)i * ref.in.ldq + c], q);
                ck_assert_int_eq(ref.in.r[(size_t)i * ref.in.ldq + c], r);
                ck_assert(abs(q) <= 127 && abs(r) <= 127);
                s += q; rs += r;
                if (c < b * 32 + 16) h0 += q;
            }
            ck_assert_int_eq(ref.in.s[k], s);
            ck_assert_int_eq(ref.in.h[2 * k], h0);
            ck_assert_int_eq(ref.in.h[2 * k + 1], s - h0);
            ck_assert_int_eq(ref.in.rs[k], rs);
            for (int c = b * 32; c < cols && c < b * 32 + 32; c++)   /* the two bytes: within d / (2 QRES) */
                ck_assert(fabs(qx_value(&ref, i, c) - x[i * cols + c]) <= ref.in.d[k] / (2.0 * QRES) * 1.01 + 1e-12);
        }
    FOR_EACH_ISA(isa) {
        memset(got.in.q, 0x55, (size_t)n * got.in.ldq);
        memset(got.in.r, 0x55, (size_t)n * got.in.ldq);
        kernels_quantize_input(x, n, cols, &got.in);
        ck_assert_msg(!memcmp(got.in.q, ref.in.q, (size_t)n * ref.in.ldq), "%s bytes", isa);
        ck_assert_msg(!memcmp(got.in.r, ref.in.r, (size_t)n * ref.in.ldq), "%s second bytes", isa);
        ck_assert_msg(!memcmp(got.in.d, ref.in.d, (size_t)n * ref.in.blocks * sizeof(float)), "%s scales", isa);
        ck_assert_msg(!memcmp(got.in.s, ref.in.s, (size_t)n * ref.in.blocks * 4), "%s sums", isa);
        ck_assert_msg(!memcmp(got.in.h, ref.in.h, (size_t)n * ref.in.blocks * 8), "%s half sums", isa);
        ck_assert_msg(!memcmp(got.in.rs, ref.in.rs, (size_t)n * ref.in.blocks * 4), "%s second sums", isa);
    }
    ck_assert_int_eq(kernels_set_isa(saved_isa_), 0);
    qx_free(&ref); qx_free(&got);
    free(x);
}
END_TEST

/* ---- the quantized product ---- */

/* out = x w^T with w quantized; against the double sum of the same
 * dequantized weights times the same quantized activations (the kernels'
 * integer sums are exact, so only float rounding is left). */
static void check_qmatmul(enum quant_type q, int n, int rows, int cols) {
    float *w = rand_weights((size_t)rows * cols), *x = malloc((size_t)n * cols * sizeof(float));
    for (int i = 0; i < n * cols; i++) x[i] = frand();
    struct qmat m;
    qmat_make(&m, q, w, rows, cols);
    struct qx qx;
    qx_alloc(&qx, n, cols, q == QUANT_Q8_0);
    ck_assert_int_eq(kernels_set_isa("portable"), 0);
    kernels_quantize_input(x, n, cols, &qx.in);
    double *ref = calloc((size_t)n * rows, sizeof(double)), *exact = calloc((size_t)n * rows, sizeof(double));
    float *wr = malloc((size_t)cols * sizeof(float));
    for (int r = 0; r < rows; r++) {
        tensor_row_f32(&m.t, r, wr);
        for (int i = 0; i < n; i++)
            for (int c = 0; c < cols; c++) {
                ref[(size_t)i * rows + r] += (double)wr[c] * qx_value(&qx, i, c);
                exact[(size_t)i * rows + r] += (double)w[(size_t)r * cols + c] * x[(size_t)i * cols + c];
            }
    }
    float *out = malloc((size_t)n * rows * sizeof(float)), *out2 = malloc((size_t)n * rows * sizeof(float));
    double num, den, num2;
    FOR_EACH_ISA(isa) {
        memset(out, 0xff, (size_t)n * rows * sizeof(float));      /* NaN: every output must be written */
        ck_assert_int_eq(matmul(out, x, &m.t, n), 0);
        num = den = num2 = 0;
        for (size_t k = 0; k < (size_t)n * rows; k++) {
            num += (out[k] - ref[k]) * (out[k] - ref[k]);
            num2 += (out[k] - exact[k]) * (out[k] - exact[k]);
            den += ref[k] * ref[k];
        }
        ck_assert_msg(sqrt(num / den) < 2e-6, "%s %s n=%d %dx%d: error %g against the same quantized values",
                      isa, quant_name(q), n, rows, cols, sqrt(num / den));
        /* and, over enough outputs for the norm to mean something, the
         * quantization costs what the round trip says against the float product */
        const double limit = q == QUANT_Q8_0 ? 0.015 : q == QUANT_Q4_0 ? 0.25 : 0.1;
        ck_assert_msg(n * rows < 64 || sqrt(num2 / den) < limit, "%s %s: error %g against float32", isa, quant_name(q), sqrt(num2 / den));
        /* the batch form, with an unquantized matrix beside it */
        float *const outs[2] = { out2, out };
        struct tensor plain = { .dtype = DT_F32, .rows = rows, .cols = cols, .data = w };
        const struct tensor *const ws[2] = { &m.t, &plain };
        ck_assert_int_eq(matmul_batch(2, outs, x, ws, n), 0);
        num = num2 = 0;
        for (size_t k = 0; k < (size_t)n * rows; k++) {
            num += (out2[k] - ref[k]) * (out2[k] - ref[k]);
            num2 += (out[k] - exact[k]) * (out[k] - exact[k]);
        }
        ck_assert_msg(sqrt(num / den) < 2e-6 && sqrt(num2 / den) < 1e-5, "%s %s batch: %g, %g", isa, quant_name(q),
                      sqrt(num / den), sqrt(num2 / den));
    }
    ck_assert_int_eq(kernels_set_isa(saved_isa_), 0);
    qmat_free(&m);
    qx_free(&qx);
    free(w); free(x); free(ref); free(exact); free(wr); free(out); free(out2);
}

START_TEST(qmatmul_matches_reference) {
    static const int ns[] = { 1, 2, 3, 5, 9 };
    static const int rows[] = { 1, 16, 40, 69 };
    static const int cols[] = { 32, 45, 300 };
    for (int f = 0; f < 3; f++)
        for (size_t a = 0; a < sizeof ns / sizeof *ns; a++)
            for (size_t b = 0; b < sizeof rows / sizeof *rows; b++)
                for (size_t c = 0; c < sizeof cols / sizeof *cols; c++)
                    check_qmatmul(formats[f], ns[a], rows[b], cols[c]);
}
END_TEST

/* Many inputs (several prefill tiles per unit) and many rows (many units
 * over the threads). */
START_TEST(qmatmul_large) {
    for (int f = 0; f < 3; f++) check_qmatmul(formats[f], 37, 200, 576);
}
END_TEST

/* ---- a quantized model ---- */

/* tiny-llama3's golden logits (transformers, float32) against the model
 * quantized in each format: the error the format costs, bounded, and the
 * same under every variant. The unquantized path keeps its 1e-4 (test_kernels). */
START_TEST(golden_forward_quantized) {
    struct st_file *g = st_open("third_party/models/tiny-llama3/golden.safetensors");
    ck_assert_msg(g != NULL, "%s", dam_last_error());
    const struct st_tensor *ids = st_find(g, "input_ids"), *want = st_find(g, "logits");
    struct attn_options o;
    attn_options_default(&o);
    for (int f = 0; f < 3; f++) {
        struct model *m = model_load("third_party/models/tiny-llama3");
        ck_assert_msg(m != NULL, "%s", dam_last_error());
        ck_assert_int_eq(model_quantize(m, formats[f]), 0);
        ck_assert_int_eq(m->quant, formats[f]);
        const int n = (int)ids->numel, vocab = m->cfg.vocab_size;
        float *out = malloc((size_t)n * vocab * sizeof(float));
        double first = -1;
        FOR_EACH_ISA(isa) {
            struct session *s = session_new(m, attn_find("full"), &o, 0);
            ck_assert_msg(s != NULL, "%s", dam_last_error());
            ck_assert_int_eq(session_eval(s, ids->data, n, out, LOGITS_ALL), 0);
            double num = 0, den = 0;
            for (size_t i = 0; i < (size_t)n * vocab; i++) {
                const double r = ((const float *)want->data)[i];
                num += (out[i] - r) * (out[i] - r);
                den += r * r;
            }
            /* (a random-weight model: near-flat logits, so the relative error is large) */
            const double e = sqrt(num / den), limit = formats[f] == QUANT_Q8_0 ? 0.05 : 0.6;
            printf("%s %s: tiny-llama3 logits relative error %.3g\n", quant_name(formats[f]), isa, e);
            ck_assert_msg(e < limit, "%s %s: relative error %g", quant_name(formats[f]), isa, e);
            if (first < 0) first = e;
            ck_assert_msg(fabs(e - first) < 0.02 * first + 1e-6, "%s %s: %g, the first variant %g", quant_name(formats[f]), isa, e, first);
            session_free(s);
        }
        ck_assert_int_eq(kernels_set_isa(saved_isa_), 0);
        free(out);
        model_free(m);
    }
    st_close(g);
}
END_TEST

Suite *test_suite(void) {
    Suite *s = suite_create("quant");
    TCase *tc = tcase_create("quant");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, format_names);
    tcase_add_test(tc, round_trip_within_bounds);
    tcase_add_test(tc, activations_identical_across_variants);
    tcase_add_test(tc, qmatmul_matches_reference);
    tcase_add_test(tc, qmatmul_large);
    tcase_add_test(tc, golden_forward_quantized);
    suite_add_tcase(s, tc);
    return s;
}
