/* test_dam.c — DAM: the capture math on hand-computed cases, masks as runs,
 * the sparse kernels against a dense masked reference (random q/k/v, several
 * shapes, GQA, chunked prefill, decode, ring KV groups), dam with a mask that
 * keeps every pair against full, the window module, prompt capture,
 * calibration capture, profile round-trip, and every profile error. */
#include "../harness.h"
#include "dam/attn.h"
#include "dam/common.h"
#include "dam/dam.h"
#include "dam/model.h"
#include "../../src/attn/dam_kv.h"
#include "../../src/attn/dam_select.h"
#include "../../src/attn/dam_state.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------------ helpers */

static uint64_t rng_state = 88172645463325252ULL;
static float frand(void) {            /* uniform in [-1, 1) */
    rng_state ^= rng_state << 13; rng_state ^= rng_state >> 7; rng_state ^= rng_state << 17;
    return (float)((rng_state >> 11) * (1.0 / 9007199254740992.0)) * 2.0f - 1.0f;
}
static int irand(int n) { return (int)((frand() + 1.0f) * 0.5f * n) % n; }

static float *rand_array(size_t n, float scale) {
    float *a = malloc(n * sizeof *a);
    for (size_t i = 0; i < n; i++) a[i] = frand() * scale;
    return a;
}

/* A head's DAM mask as sets (for the masks-as-runs test). */
struct ref_head {
    int full;
    int n_off, n_col;
    int off[64], col[64];
};

static int ref_keeps(const struct ref_head *h, int i, int j) {
    if (j > i) return 0;
    if (h->full || i == j) return 1;
    for (int t = 0; t < h->n_off; t++) if (i - j == h->off[t]) return 1;
    for (int t = 0; t < h->n_col; t++) if (j == h->col[t]) return 1;
    return 0;
}

static void random_head(struct ref_head *h, int n, int allow_full) {
    memset(h, 0, sizeof *h);
    int kind = irand(allow_full ? 5 : 4);
    if (kind == 4) { h->full = 1; return; }
    if (kind == 0) {                              /* a small window */
        int w = 1 + irand(6);
        for (int r = 0; r < w; r++) h->off[h->n_off++] = r;
    } else {                                      /* scattered offsets */
        int c = 1 + irand(8);
        for (int t = 0; t < c; t++) h->off[h->n_off++] = irand(n);
    }
    int nc = irand(5);
    for (int t = 0; t < nc; t++) h->col[h->n_col++] = irand(n);
    if (kind == 3) for (int c = 0; c < 3; c++) h->col[h->n_col++] = c;   /* sinks */
}

static void mask_of(struct dam_mask *m, const struct ref_head *h) {
    if (h->full) dam_mask_full(m);
    else ck_assert_int_eq(dam_mask_build(m, h->off, h->n_off, h->col, h->n_col), 0);
}

/* A plan without selection, the reference's view of it: row i keeps key
 * j <= i when j's block is a sink, a column, or within the window's blocks
 * before i's own block (dam.h). */
struct ref_plan {
    int dense, sink_blocks, window, n_cols;
    int cols[16];
};

static int plan_keeps(const struct ref_plan *p, int i, int j) {
    if (j > i) return 0;
    if (p->dense) return 1;
    const int b = j / 16;
    if (b < p->sink_blocks || b >= i / 16 - dam_window_blocks(p->window)) return 1;
    for (int c = 0; c < p->n_cols; c++) if (p->cols[c] == b) return 1;
    return 0;
}

static struct head_plan plan_of(const struct ref_plan *r) {
    struct head_plan p = { .dense = r->dense, .sink_blocks = r->sink_blocks, .window = r->window,
                           .n_cols = r->n_cols, .cols = (int *)r->cols };
    return p;
}

static void random_plan(struct ref_plan *p, int n, int allow_dense) {
    memset(p, 0, sizeof *p);
    if (allow_dense && irand(5) == 0) { p->dense = 1; return; }
    p->sink_blocks = irand(3);
    p->window = 1 + irand(40);
    const int nb = (n + 15) / 16;
    for (int b = p->sink_blocks; b < nb && p->n_cols < 16; b++)
        if (irand(4) == 0) p->cols[p->n_cols++] = b;
}

/* Dense masked attention of row i of one head: q (hd), K/V (n, kv_dim) with
 * the head's KV at offset kvh * hd. Returns the kept count. */
static long ref_row(const struct ref_plan *h, int i, const float *q, const float *K, const float *V,
                    int kv_dim, int kvh, int hd, float *out) {
    double scores[4096], max = -INFINITY, sum = 0;
    long kept = 0;
    for (int j = 0; j <= i; j++) {
        if (!plan_keeps(h, i, j)) { scores[j] = -INFINITY; continue; }
        double s = 0;
        for (int d = 0; d < hd; d++) s += (double)q[d] * K[(size_t)j * kv_dim + kvh * hd + d];
        scores[j] = s / sqrt((double)hd);
        if (scores[j] > max) max = scores[j];
        kept++;
    }
    double acc[512] = {0};
    for (int j = 0; j <= i; j++) {
        if (scores[j] == -INFINITY) continue;
        double p = exp(scores[j] - max);
        sum += p;
        for (int d = 0; d < hd; d++) acc[d] += p * V[(size_t)j * kv_dim + kvh * hd + d];
    }
    for (int d = 0; d < hd; d++) out[d] = (float)(acc[d] / sum);
    return kept;
}

static struct attn_setup setup_of(int L, int H, int KV, int hd, int max_seq, const struct attn_options *o) {
    struct attn_setup s = { .n_layers = L, .n_heads = H, .n_kv_heads = KV, .head_dim = hd,
                            .max_seq_len = max_seq, .model_dir = NULL, .opts = o };
    return s;
}

/* Feeds a whole random sequence (per layer q, k, v) through a module in the
 * given chunks and returns the outputs (layer, n, H, hd). */
struct seq_data {
    int L, H, KV, hd, n;
    float **q, **k, **v;     /* (L) arrays: (n, H, hd), (n, KV, hd) */
};

static struct seq_data make_seq(int L, int H, int KV, int hd, int n) {
    struct seq_data d = { L, H, KV, hd, n, malloc(L * sizeof(float *)), malloc(L * sizeof(float *)),
                          malloc(L * sizeof(float *)) };
    for (int l = 0; l < L; l++) {
        d.q[l] = rand_array((size_t)n * H * hd, 2.0f);
        d.k[l] = rand_array((size_t)n * KV * hd, 2.0f);
        d.v[l] = rand_array((size_t)n * KV * hd, 1.0f);
    }
    return d;
}

static void free_seq(struct seq_data *d) {
    for (int l = 0; l < d->L; l++) { free(d->q[l]); free(d->k[l]); free(d->v[l]); }
    free(d->q); free(d->k); free(d->v);
}

/* chunks: sizes summing to n (0-terminated); each chunk goes through every layer. */
static float *run_module(const struct attn_module *mod, void *state, const struct seq_data *d,
                         int from, const int *chunks) {
    const int H = d->H, KV = d->KV, hd = d->hd, n = d->n;
    float *out = calloc((size_t)d->L * n * H * hd, sizeof(float));
    int pos = from;
    for (int c = 0; pos < n; c++) {
        int want = chunks[c] ? chunks[c] : n - pos;     /* past the list: the rest at once */
        int len = want < n - pos ? want : n - pos;
        for (int l = 0; l < d->L; l++) {
            const float *q = d->q[l] + (size_t)pos * H * hd;
            const float *k = d->k[l] + (size_t)pos * KV * hd;
            const float *v = d->v[l] + (size_t)pos * KV * hd;
            float *o = out + ((size_t)l * n + pos) * H * hd;
            int rc = len == 1 ? mod->decode(state, l, pos, q, k, v, o)
                              : mod->prefill(state, l, pos, len, q, k, v, o);
            ck_assert_msg(rc == 0, "module call failed: %s", dam_last_error());
        }
        pos += len;
    }
    return out;
}

/* Max |a - ref| over rows [from, n) of every layer and head, ref from the dense reference. */
static double compare_dense(const struct seq_data *d, const float *out, struct ref_plan *heads /* (L, H) */,
                            int from, long *kept_total) {
    const int H = d->H, KV = d->KV, hd = d->hd, group = H / KV;
    double worst = 0;
    float ref[512];
    long kept = 0;
    for (int l = 0; l < d->L; l++)
        for (int i = from; i < d->n; i++)
            for (int h = 0; h < H; h++) {
                kept += ref_row(&heads[l * H + h], i, d->q[l] + ((size_t)i * H + h) * hd, d->k[l], d->v[l],
                                KV * hd, h / group, hd, ref);
                const float *o = out + (((size_t)l * d->n + i) * H + h) * hd;
                for (int x = 0; x < hd; x++) {
                    double e = fabs((double)o[x] - ref[x]);
                    if (e > worst) worst = e;
                }
            }
    if (kept_total) *kept_total = kept;
    return worst;
}

/* ------------------------------------------------------------ capture math */

START_TEST(test_boxcox) {
    ck_assert_float_eq_tol(dam_boxcox(0.25f, 0.5f), -1.0f, 1e-6);
    ck_assert_float_eq_tol(dam_boxcox(1.0f, 0.5f), 0.0f, 1e-6);
    ck_assert_float_eq_tol(dam_boxcox(0.0f, 0.5f), (sqrtf(1e-10f) - 1) / 0.5f, 1e-5);  /* clamped */
    ck_assert_float_eq_tol(dam_boxcox(expf(1.0f), 0.0f), 1.0f, 1e-6);                 /* ln */
    ck_assert_float_eq_tol(dam_boxcox(0.5f, 1.0f), -0.5f, 1e-6);
}
END_TEST

/* The 4 x 4 hand case: one sequence, probabilities A, lambda 0.5, tau 0.5.
 * The layer minimum is A = 0 -> B = -1.99998, so B + shift ~ 2 sqrt(A) and the
 * kept cells are A >= 0.0625:
 *   row 0: 1                      -> 1
 *   row 1: 0.5 0.5                -> 1 1
 *   row 2: 0.9 0   0.1            -> 1 0 1
 *   row 3: 0.7 0.01 0.04 0.25     -> 1 0 0 1                                 */
static const float hand_A[10] = { 1, 0.5f, 0.5f, 0.9f, 0, 0.1f, 0.7f, 0.01f, 0.04f, 0.25f };
static const uint8_t hand_M[10] = { 1, 1, 1, 1, 0, 1, 1, 0, 0, 1 };

static struct dam_params hand_params(void) {
    struct dam_params p = { .pcl = 4, .lambda = 0.5f, .tau = 0.5f, .mu = 0.8f, .min_support = 2,
                            .min_coverage = 0.5f, .fallback = DAM_FALLBACK_FULL,
                            .fallback_window = 2, .fallback_sinks = 1 };
    return p;
}

static struct dam_capture *hand_capture(int twice) {
    struct dam_capture *c = dam_capture_new(1, 1, 4);
    for (int rep = 0; rep < (twice ? 2 : 1); rep++) {
        int rows = rep == 0 ? 4 : 2;        /* the second sequence is only 2 tokens */
        for (int i = 0; i < rows; i++) {
            dam_capture_add_row(c, 0, 0, i, hand_A + dam_tri(i, 0));
            dam_capture_count_row(c, 0, i);
        }
    }
    return c;
}

START_TEST(test_true_mask_hand) {
    struct dam_params p = hand_params();
    uint8_t m[10];
    for (int twice = 0; twice < 2; twice++) {
        struct dam_capture *c = hand_capture(twice);
        dam_true_masks(c, 0, &p, m);
        for (int k = 0; k < 10; k++) ck_assert_msg(m[k] == hand_M[k], "cell %d (twice %d)", k, twice);
        ck_assert_int_eq(c->n_sequences, twice ? 2 : 1);
        dam_capture_free(c);
    }
    /* tau 0.3 also keeps 0.04 (2 * 0.2 = 0.4 >= 0.3), not 0.01 (0.2) */
    p.tau = 0.3f;
    struct dam_capture *c = hand_capture(0);
    dam_true_masks(c, 0, &p, m);
    ck_assert_int_eq(m[dam_tri(3, 2)], 1);
    ck_assert_int_eq(m[dam_tri(3, 1)], 0);
    dam_capture_free(c);
}
END_TEST

START_TEST(test_gamma_hand) {
    int s;
    ck_assert_float_eq_tol(dam_gamma_diagonal(hand_M, 4, 4, 0, &s), 1.0f, 1e-6); ck_assert_int_eq(s, 4);
    ck_assert_float_eq_tol(dam_gamma_diagonal(hand_M, 4, 4, 1, &s), 1.0f / 3, 1e-6); ck_assert_int_eq(s, 3);
    ck_assert_float_eq_tol(dam_gamma_diagonal(hand_M, 4, 4, 2, &s), 0.5f, 1e-6); ck_assert_int_eq(s, 2);
    ck_assert_float_eq_tol(dam_gamma_diagonal(hand_M, 4, 4, 3, &s), 1.0f, 1e-6); ck_assert_int_eq(s, 1);
    ck_assert_float_eq_tol(dam_gamma_column(hand_M, 4, 4, 0, &s), 1.0f, 1e-6); ck_assert_int_eq(s, 4);
    ck_assert_float_eq_tol(dam_gamma_column(hand_M, 4, 4, 1, &s), 1.0f / 3, 1e-6); ck_assert_int_eq(s, 3);
    ck_assert_float_eq_tol(dam_gamma_column(hand_M, 4, 4, 2, &s), 0.5f, 1e-6); ck_assert_int_eq(s, 2);
    ck_assert_float_eq_tol(dam_gamma_column(hand_M, 4, 4, 3, &s), 1.0f, 1e-6); ck_assert_int_eq(s, 1);
    /* only the first 2 rows known */
    ck_assert_float_eq_tol(dam_gamma_diagonal(hand_M, 4, 2, 1, &s), 1.0f, 1e-6); ck_assert_int_eq(s, 1);
    ck_assert_float_eq_tol(dam_gamma_column(hand_M, 4, 2, 3, &s), 0.0f, 1e-6); ck_assert_int_eq(s, 0);
}
END_TEST

START_TEST(test_profile_from_hand_capture) {
    struct dam_params p = hand_params();
    struct dam_capture *c = hand_capture(0);
    struct dam_profile *prof = dam_profile_from_capture(c, &p, 1, 8);
    ck_assert_ptr_nonnull(prof);
    const struct dam_head *h = &prof->heads[0];
    /* support >= 2 drops diagonal 3 and column 3 (gamma 1 on a single cell) */
    ck_assert_int_eq(h->n_offsets, 1); ck_assert_int_eq(h->offsets[0], 0);
    ck_assert_int_eq(h->n_columns, 1); ck_assert_int_eq(h->columns[0], 0);
    ck_assert_float_eq_tol(h->coverage, 1.0f, 1e-6);          /* diag 0 + column 0 = M */
    ck_assert_float_eq_tol(h->true_density, 0.7f, 1e-6);
    ck_assert_float_eq_tol(h->ext_density, 0.7f, 1e-6);
    ck_assert_int_eq(h->fallback, DAM_FALLBACK_NONE);
    dam_profile_free(prof);
    /* support 1 admits them; mu 0.5 also diagonal 2 and column 2 */
    p.min_support = 1; p.mu = 0.5f;
    prof = dam_profile_from_capture(c, &p, 1, 8);
    h = &prof->heads[0];
    ck_assert_int_eq(h->n_offsets, 3);
    ck_assert_int_eq(h->offsets[1], 2); ck_assert_int_eq(h->offsets[2], 3);
    ck_assert_int_eq(h->n_columns, 3);
    ck_assert_int_eq(h->columns[1], 2); ck_assert_int_eq(h->columns[2], 3);
    /* extended: every cell but (2, 1): 9 of 10, M fully covered */
    ck_assert_float_eq_tol(h->ext_density, 0.9f, 1e-6);
    ck_assert_float_eq_tol(h->coverage, 1.0f, 1e-6);
    dam_profile_free(prof);
    /* mu above every gamma but the main diagonal: coverage 4/7 < 0.6 -> fallback */
    p.min_support = 2; p.mu = 1.0f; p.min_coverage = 0.6f;
    struct dam_capture *c2 = dam_capture_new(1, 1, 4);
    static const float A2[10] = { 1, 0.5f, 0.5f, 0.9f, 0, 0.1f, 0.7f, 0.01f, 0.04f, 0.25f };
    float a3[10];
    memcpy(a3, A2, sizeof a3);
    a3[dam_tri(1, 0)] = 0.0f;  /* column 0 loses row 1 -> gamma 3/4 */
    for (int i = 0; i < 4; i++) { dam_capture_add_row(c2, 0, 0, i, a3 + dam_tri(i, 0)); dam_capture_count_row(c2, 0, i); }
    prof = dam_profile_from_capture(c2, &p, 1, 8);
    h = &prof->heads[0];
    ck_assert_int_eq(h->n_columns, 0);
    ck_assert_float_eq_tol(h->coverage, 4.0f / 6, 1e-6);      /* M has 6 cells, diagonal holds 4 */
    ck_assert_int_eq(h->fallback, DAM_FALLBACK_NONE);          /* 0.667 >= 0.6 */
    dam_profile_free(prof);
    p.min_coverage = 0.7f;
    prof = dam_profile_from_capture(c2, &p, 1, 8);
    ck_assert_int_eq(prof->heads[0].fallback, DAM_FALLBACK_FULL);
    ck_assert_int_eq(dam_profile_fallback_heads(prof), 1);
    dam_profile_free(prof);
    dam_capture_free(c2);
    dam_capture_free(c);
}
END_TEST

START_TEST(test_params_from_options) {
    struct attn_options o;
    attn_options_default(&o);
    struct dam_params p;
    o.dam.pcl = 128; o.dam.min_support = 0;
    ck_assert_int_eq(dam_params_from_options(&o, &p), 0);
    ck_assert_int_eq(p.min_support, 32);
    snprintf(o.dam.fallback, sizeof o.dam.fallback, "bogus");
    ck_assert_int_eq(dam_params_from_options(&o, &p), -1);
    ck_assert_ptr_nonnull(strstr(dam_last_error(), "bogus"));
}
END_TEST

/* ------------------------------------------------------------ masks as runs */

START_TEST(test_mask_runs) {
    for (int trial = 0; trial < 200; trial++) {
        struct ref_head h;
        random_head(&h, 40, 1);
        struct dam_mask m;
        mask_of(&m, &h);
        int runs[2 * 200];
        for (int i = 0; i < 60; i++) {
            int n = dam_mask_row_runs(&m, i, runs);
            uint8_t got[64] = {0};
            for (int r = 0; r < n; r++) {
                ck_assert_int_le(runs[2 * r], runs[2 * r + 1]);
                if (r) ck_assert_int_gt(runs[2 * r], runs[2 * r - 1] + 1);   /* disjoint, not adjacent */
                for (int j = runs[2 * r]; j <= runs[2 * r + 1]; j++) { ck_assert_int_le(j, i); got[j] = 1; }
            }
            for (int j = 0; j <= i; j++) ck_assert_msg(got[j] == ref_keeps(&h, i, j), "trial %d row %d key %d", trial, i, j);
        }
        dam_mask_free(&m);
    }
}
END_TEST

/* ------------------------------------------------------------ the engine */

/* A dam state with random plans per (layer, head) against the dense
 * reference, for one geometry and one chunking. */
static void check_random_plans(int L, int H, int KV, int hd, int n, const int *chunks, int allow_dense) {
    struct attn_options o;
    attn_options_default(&o);
    struct attn_setup s = setup_of(L, H, KV, hd, n, &o);
    struct dam_state *st = dam_state_new(&s);
    ck_assert_ptr_nonnull(st);
    struct ref_plan *heads = calloc((size_t)L * H, sizeof *heads);
    struct head_plan *plans = calloc((size_t)H, sizeof *plans);
    for (int l = 0; l < L; l++) {
        for (int h = 0; h < H; h++) {
            random_plan(&heads[l * H + h], n, allow_dense);
            plans[h] = plan_of(&heads[l * H + h]);
        }
        ck_assert_int_eq(dam_state_set_plans(st, l, plans), 0);
    }
    struct seq_data d = make_seq(L, H, KV, hd, n);
    extern const struct attn_module attn_dam;
    float *out = run_module(&attn_dam, st, &d, 0, chunks);
    long kept;
    double err = compare_dense(&d, out, heads, 0, &kept);
    ck_assert_msg(err < 2e-5, "max error %g (L %d H %d KV %d hd %d n %d)", err, L, H, KV, hd, n);
    struct attn_stats stats;
    dam_state_stats(st, &stats);
    ck_assert_msg(fabs(stats.kept_pairs - (double)kept) < 0.5, "kept %g, reference %ld", stats.kept_pairs, kept);
    double causal = (double)L * H * n * (n + 1) / 2;
    ck_assert_double_eq_tol(stats.causal_pairs, causal, 0.5);
    ck_assert_double_eq_tol(stats.sparsity, 1 - kept / causal, 1e-9);
    ck_assert_uint_le(stats.kv_bytes, stats.kv_bytes_full);
    ck_assert_uint_eq(stats.kv_bytes_full, (size_t)L * KV * n * hd * 2 * sizeof(float));
    free(out);
    free_seq(&d);
    free(heads);
    free(plans);
    dam_state_free(st);
}

START_TEST(test_kernels_vs_dense) {
    static const int one[] = { 4096, 0 };
    static const int sevens[] = { 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 0 };
    static const int decode[] = { 20, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
                                  1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0 };
    check_random_plans(2, 4, 2, 8, 160, one, 1);        /* GQA 2:1 */
    check_random_plans(1, 8, 1, 16, 150, sevens, 1);    /* one KV head for 8 query heads */
    check_random_plans(2, 3, 3, 5, 100, decode, 0);     /* MHA, odd head_dim, decode */
    check_random_plans(1, 6, 2, 8, 190, sevens, 0);     /* windowed stores drop and reuse pages */
    check_random_plans(1, 4, 4, 4, 61, decode, 0);
    check_random_plans(1, 4, 2, 64, 170, sevens, 1);    /* whole key blocks and value slices */
    check_random_plans(1, 4, 2, 64, 170, one, 1);
    check_random_plans(1, 2, 1, 300, 40, sevens, 1);    /* head_dim above the tile buffer */
}
END_TEST

/* Windowed plans let a KV store drop what no later row reads; the bytes
 * reported are exactly the positions held. */
START_TEST(test_kv_window_bytes) {
    struct attn_options o;
    attn_options_default(&o);
    const int L = 1, H = 4, KV = 2, hd = 8, n = 100;
    struct attn_setup s = setup_of(L, H, KV, hd, 512, &o);
    struct dam_state *st = dam_state_new(&s);
    struct ref_plan ref[4] = {
        { .sink_blocks = 1, .window = 3, .n_cols = 1, .cols = { 3 } },   /* group 0: heads 0, 1 */
        { .window = 20 },
        { .window = 3 },                                                  /* group 1: heads 2, 3 */
        { .dense = 1 },                                                   /* keeps its group whole */
    };
    struct head_plan plans[4];
    for (int h = 0; h < 4; h++) plans[h] = plan_of(&ref[h]);
    ck_assert_int_eq(dam_state_set_plans(st, 0, plans), 0);
    struct seq_data d = make_seq(L, H, KV, hd, n);
    static const int chunks[] = { 30, 30, 1, 1, 1, 37, 0 };
    extern const struct attn_module attn_dam;
    float *out = run_module(&attn_dam, st, &d, 0, chunks);
    struct attn_stats stats;
    dam_state_stats(st, &stats);
    /* group 0 after 100 positions: the sink block 0, the column block 3
     * (48..63), and for the next row (100, block 6) the window of 20 =
     * 2 blocks before its own: blocks 4, 5 and 6 (64..99) -> 16 + 16 + 36;
     * group 1: all 100 */
    size_t per = 2 * hd * sizeof(float);
    ck_assert_uint_eq(stats.kv_bytes, (16 + 16 + 36 + 100) * per);
    ck_assert_uint_eq(stats.kv_bytes_full, 200 * per);
    ck_assert(compare_dense(&d, out, ref, 0, NULL) < 2e-5);
    free(out);
    /* a rewind past dropped positions: a clear error on the next call, 0 is fine */
    {
        dam_state_truncate(st, 50);
        float o1[4 * 8];
        ck_assert_int_eq(dam_state_prefill(st, 0, 50, 1, d.q[0], d.k[0], d.v[0], o1), -1);
        ck_assert_ptr_nonnull(strstr(dam_last_error(), "rewind"));
        dam_state_truncate(st, 0);
        out = run_module(&attn_dam, st, &d, 0, chunks);
        ck_assert(compare_dense(&d, out, ref, 0, NULL) < 2e-5);
        free(out);
    }
    free_seq(&d);
    dam_state_free(st);
}
END_TEST

/* Selection whose budget covers every block, and a window covering the
 * context, both equal full attention (kernel, stores and the selection's
 * bookkeeping); and the rows' keys do not depend on the chunking. */
START_TEST(test_covering_budget_equals_full) {
    const int L = 2, H = 4, KV = 2, hd = 16, n = 150;
    const struct attn_module *full = attn_find("full");
    extern const struct attn_module attn_dam;
    struct attn_options o;
    attn_options_default(&o);
    struct attn_setup s = setup_of(L, H, KV, hd, n, &o);
    struct seq_data d = make_seq(L, H, KV, hd, n);
    static const int chunks[] = { 33, 1, 1, 35, 0 };
    void *fs = full->create(&s);
    float *a = run_module(full, fs, &d, 0, chunks);
    for (int variant = 0; variant < 2; variant++) {
        struct dam_state *st = dam_state_new(&s);
        struct head_plan plans[4];
        for (int h = 0; h < H; h++)
            plans[h] = variant == 0 ? (struct head_plan){ .sink_blocks = 1, .window = 16, .select = 10 }
                                    : (struct head_plan){ .window = n };
        for (int l = 0; l < L; l++) ck_assert_int_eq(dam_state_set_plans(st, l, plans), 0);
        float *b = run_module(&attn_dam, st, &d, 0, chunks);
        double worst = 0;
        for (size_t i = 0; i < (size_t)L * n * H * hd; i++) worst = fmax(worst, fabs(a[i] - b[i]));
        ck_assert_msg(worst < 1e-5, "variant %d differs from full by %g", variant, worst);
        struct attn_stats sa, sb;
        full->stats(fs, &sa);
        dam_state_stats(st, &sb);
        ck_assert_double_eq_tol(sb.sparsity, 0, 1e-12);
        ck_assert_double_eq_tol(sa.kept_pairs, sb.kept_pairs, 0.5);
        free(b);
        dam_state_free(st);
    }
    full->destroy(fs);
    /* a budget smaller than the context: the same outputs whatever the chunks
     * (multiples of 16: rows of one block always go together) */
    static const int c1[] = { 150, 0 }, c2[] = { 16, 48, 32, 16, 38, 0 };
    float *outs[2];
    for (int c = 0; c < 2; c++) {
        struct dam_state *st = dam_state_new(&s);
        struct head_plan plans[4];
        for (int h = 0; h < H; h++) plans[h] = (struct head_plan){ .sink_blocks = 1, .window = 17, .select = 2 };
        for (int l = 0; l < L; l++) ck_assert_int_eq(dam_state_set_plans(st, l, plans), 0);
        outs[c] = run_module(&attn_dam, st, &d, 0, c ? c2 : c1);
        struct attn_stats sb;
        dam_state_stats(st, &sb);
        ck_assert(sb.sparsity > 0.2 && sb.selected_share > 0 && sb.selected_share < 1);
        dam_state_free(st);
    }
    ck_assert_mem_eq(outs[0], outs[1], (size_t)L * n * H * hd * sizeof(float));
    free(outs[0]); free(outs[1]); free(a);
    free_seq(&d);
}
END_TEST

/* 16-bit KV pages (--kv-type f16, bf16) in the sparse stores. The kernels
 * convert exactly, the selection's summaries and the eviction's votes read
 * the keys as stored, so a run over keys and values rounded to the type by
 * hand, with float32 stores, gives the same outputs bit for bit; the
 * unrounded run stays within the rounding's reach; the KV bytes halve.
 * dam: a selecting group and a windowed one (pages dropped and reused), with
 * --dam-evict (a decode after the prompt drops blocks); and window. */
static struct seq_data rounded_seq(const struct seq_data *d, enum kv_type kt) {
    struct seq_data r = make_seq(d->L, d->H, d->KV, d->hd, d->n);
    const size_t nq = (size_t)d->n * d->H * d->hd, nkv = (size_t)d->n * d->KV * d->hd;
    for (int l = 0; l < d->L; l++) {
        memcpy(r.q[l], d->q[l], nq * sizeof(float));
        for (size_t i = 0; i < nkv; i++) {
            kv_put(kt, &r.k[l][i], 0, d->k[l][i]);           /* in place: a 16-bit element, then back */
            r.k[l][i] = kv_get(kt, &r.k[l][i], 0);
            kv_put(kt, &r.v[l][i], 0, d->v[l][i]);
            r.v[l][i] = kv_get(kt, &r.v[l][i], 0);
        }
    }
    return r;
}

static float *run_kv(const struct attn_module *mod, enum kv_type kt, const struct seq_data *d, size_t *kv_bytes) {
    struct attn_options o;
    attn_options_default(&o);
    o.kv_type = kt;
    o.window.sinks = 16; o.window.size = 24;
    struct attn_setup s = setup_of(d->L, d->H, d->KV, d->hd, d->n, &o);
    const int dam = !strcmp(mod->name, "dam");
    void *state = dam ? (void *)dam_state_new(&s) : mod->create(&s);    /* dam: plans of its own below */
    ck_assert_msg(state != NULL, "%s", dam_last_error());
    if (dam) {
        struct dam_state *st = state;
        st->run.evict = 2;
        struct head_plan plans[4] = {
            { .sink_blocks = 1, .window = 16, .select = 2 }, { .window = 20, .select = 1 },  /* group 0 */
            { .sink_blocks = 1, .window = 20 }, { .window = 40 },                         /* group 1 */
        };
        for (int l = 0; l < d->L; l++) ck_assert_int_eq(dam_state_set_plans(st, l, plans), 0);
    }
    static const int chunks[] = { 60, 40, 1, 1, 1, 20, 1, 1, 0 };
    float *out = run_module(mod, state, d, 0, chunks);
    struct attn_stats stats;
    mod->stats(state, &stats);
    *kv_bytes = stats.kv_bytes;
    if (dam)                                /* it selected, and the decode evicted */
        ck_assert(stats.selected_share > 0 && ((struct dam_state *)state)->kv[0].evicted);
    mod->destroy(state);
    return out;
}

/* A 16-bit store's block summaries are the maximum and minimum of its keys
 * as stored (rounded), so Quest's bound holds for the keys the kernel reads;
 * kv_store_read gives them back as float32. */
static void check_kv16_summaries(enum kv_type kt) {
    const int hd = 16, n = 70;
    struct kv_store kv;
    ck_assert_int_eq(kv_store_init(&kv, hd, n, kt, 1), 0);
    float *k = rand_array((size_t)n * hd, 3.0f), *v = rand_array((size_t)n * hd, 1.0f), kr[16], vr[16];
    ck_assert_int_eq(kv_store_append(&kv, 0, n, k, v, hd), 0);
    ck_assert_uint_eq(kv_page_bytes(&kv), 2 * KB * hd * kv_type_size(kt));
    for (int b = 0; b * KB < n; b++) {
        const struct kv_block blk = kv_store_block(&kv, b);
        for (int d = 0; d < hd; d++) {
            float hi = -INFINITY, lo = INFINITY;
            for (int j = 0; j < KB && b * KB + j < n; j++) {
                const float x = kv_get(kt, blk.k, (size_t)d * KB + j);
                hi = fmaxf(hi, x);
                lo = fminf(lo, x);
            }
            const float *mx = kv.sums + ((size_t)(b / BOUND_GROUP) * 2 * hd + d) * BOUND_GROUP + b % BOUND_GROUP;
            ck_assert_msg(mx[0] == hi && mx[(size_t)hd * BOUND_GROUP] == lo, "%s block %d dim %d: summary "
                          "(%g, %g), keys as stored (%g, %g)", kv_type_name(kt), b, d, mx[0],
                          mx[(size_t)hd * BOUND_GROUP], hi, lo);
        }
    }
    for (int p = 0; p < n; p += 13) {
        kv_store_read(&kv, p, kr, vr);
        for (int d = 0; d < hd; d++) {
            float x = k[(size_t)p * hd + d], y = v[(size_t)p * hd + d];
            ck_assert(fabsf(kr[d] - x) <= fabsf(x) / (kt == KV_BF16 ? 256 : 2048) + 1e-7f);
            ck_assert(fabsf(vr[d] - y) <= fabsf(y) / (kt == KV_BF16 ? 256 : 2048) + 1e-7f);
            ck_assert(kr[d] == kv_get(kt, kv_store_block(&kv, p / KB).k, (size_t)d * KB + p % KB));
        }
    }
    kv_store_free(&kv);
    free(k); free(v);
}

START_TEST(test_kv16) {
    check_kv16_summaries(KV_F16);
    check_kv16_summaries(KV_BF16);
    extern const struct attn_module attn_dam, attn_window;
    const struct attn_module *mods[2] = { &attn_dam, &attn_window };
    const int L = 2, H = 4, KV = 2, hd = 16, n = 150;
    const size_t count = (size_t)L * n * H * hd;
    struct seq_data d = make_seq(L, H, KV, hd, n);
    for (int mi = 0; mi < 2; mi++) {
        size_t bytes32, bytes16, bytes_r;
        float *f32 = run_kv(mods[mi], KV_F32, &d, &bytes32);
        for (int t = KV_F16; t <= KV_BF16; t++) {
            const enum kv_type kt = (enum kv_type)t;
            struct seq_data r = rounded_seq(&d, kt);
            float *h = run_kv(mods[mi], kt, &d, &bytes16), *ref = run_kv(mods[mi], KV_F32, &r, &bytes_r);
            ck_assert_msg(memcmp(h, ref, count * sizeof(float)) == 0, "%s %s: not the run over rounded keys",
                          mods[mi]->name, kv_type_name(kt));
            double worst = 0;
            for (size_t i = 0; i < count; i++) worst = fmax(worst, fabs((double)h[i] - f32[i]));
            printf("%s KV %s: largest output difference from KV f32 %.3g\n", mods[mi]->name, kv_type_name(kt), worst);
            ck_assert_msg(worst > 0 && worst < (kt == KV_F16 ? 2e-3 : 2e-2), "%s %s: difference %g",
                          mods[mi]->name, kv_type_name(kt), worst);
            ck_assert_uint_gt(bytes16, 0);
            ck_assert_uint_eq(2 * bytes16, bytes32);
            free(h); free(ref);
            free_seq(&r);
        }
        free(f32);
    }
    free_seq(&d);
}
END_TEST

/* The selection picks the block holding a planted key: one key far back is
 * aligned with every query of a tile, the others are noise; with a budget
 * of one block, that block is chosen. */
START_TEST(test_selection_finds_planted_key) {
    const int hd = 32, n = 400, needle = 137;
    struct kv_store kv;
    ck_assert_int_eq(kv_store_init(&kv, hd, n, KV_F32, 1), 0);
    float *k = rand_array((size_t)n * hd, 0.3f), *v = rand_array((size_t)n * hd, 1.0f);
    float q[16 * 32];
    for (int d = 0; d < hd; d++) k[(size_t)needle * hd + d] = d % 3 == 0 ? 2.0f : d % 3 == 1 ? -2.0f : 0.0f;
    for (int r = 0; r < 16; r++)
        for (int d = 0; d < hd; d++) q[r * hd + d] = k[(size_t)needle * hd + d] + 0.2f * frand();
    ck_assert_int_eq(kv_store_append(&kv, 0, n, k, v, hd), 0);
    struct select_scratch sc;
    ck_assert_int_eq(select_scratch_init(&sc, (n + 15) / 16, hd), 0);
    struct head_plan plan = { .sink_blocks = 1, .window = 32, .select = 1 };
    struct select_figures fig;
    const int i0 = 384;                       /* rows 384 .. 399: block 24 */
    int nb = select_blocks(&sc, &plan, &kv, q, hd, 16, i0, &fig);
    ck_assert_int_gt(nb, 0);
    int found = 0;
    for (int b = 0; b < nb; b++) found |= sc.blocks[b].pos == needle / 16 * 16;
    ck_assert_msg(found, "the block of key %d was not selected", needle);
    /* sink block 0, the chosen one, window blocks 22, 23 and the rows' own 24 */
    ck_assert_int_eq(nb, 5);
    ck_assert(fig.selected == 16 && fig.candidates == 16 * 21);
    /* top-k on its own: the highest scores, ids ascending */
    int ids[6] = { 3, 5, 8, 9, 12, 20 }, order[6];
    float scores[6] = { 0.5f, 9, -1, 7, 7.5f, 0 };
    ck_assert_int_eq(select_top(ids, scores, 6, 3, order), 3);
    ck_assert_int_eq(ids[0], 5); ck_assert_int_eq(ids[1], 9); ck_assert_int_eq(ids[2], 12);
    select_scratch_free(&sc);
    kv_store_free(&kv);
    free(k); free(v);
}
END_TEST

START_TEST(test_window_module) {
    const struct attn_module *w = attn_find("window");
    ck_assert_ptr_nonnull(w);
    struct attn_options o;
    attn_options_default(&o);
    o.window.sinks = 2; o.window.size = 5;
    const int L = 2, H = 4, KV = 1, hd = 8, n = 90;
    struct attn_setup s = setup_of(L, H, KV, hd, 256, &o);
    void *st = w->create(&s);
    ck_assert_ptr_nonnull(st);
    struct seq_data d = make_seq(L, H, KV, hd, n);
    static const int chunks[] = { 9, 1, 1, 13, 1, 1, 1, 100, 0 };
    float *out = run_module(w, st, &d, 0, chunks);
    struct ref_plan ref[8];
    for (int i = 0; i < L * H; i++) ref[i] = (struct ref_plan){ .sink_blocks = 1, .window = 5 };
    long kept;
    ck_assert(compare_dense(&d, out, ref, 0, &kept) < 2e-5);
    struct attn_stats stats;
    w->stats(st, &stats);
    ck_assert_double_eq_tol(stats.kept_pairs, kept, 0.5);
    /* the sink block, and for row 90 (block 5): block 4 and its own (64..89) */
    ck_assert_uint_eq(stats.kv_bytes, (size_t)L * KV * (16 + 26) * hd * 2 * sizeof(float));
    free(out);
    free_seq(&d);
    w->destroy(st);
}
END_TEST

/* ------------------------------------------------------------ capture modes */

/* --dam-capture prompt: rows < PCL are full attention, later rows run the
 * masks derived from them, and the capture is what full attention gave. */
START_TEST(test_prompt_capture) {
    extern const struct attn_module attn_dam;
    struct attn_options o;
    attn_options_default(&o);
    o.dam.pcl = 16; o.dam.tau = 0.6f; o.dam.mu = 0.5f; o.dam.min_support = 4;
    o.dam.select = 0; o.dam.recent = 1; o.dam.sinks = 0; o.dam.columns = 1;
    snprintf(o.dam.fallback, sizeof o.dam.fallback, "none");
    snprintf(o.dam.capture, sizeof o.dam.capture, "prompt");
    const int L = 2, H = 4, KV = 2, hd = 8, n = 50;
    struct attn_setup s = setup_of(L, H, KV, hd, 64, &o);
    struct seq_data d = make_seq(L, H, KV, hd, n);
    /* make keys close to their query: a local pattern the capture can find */
    for (int l = 0; l < L; l++)
        for (int i = 0; i < n; i++)
            for (int h = 0; h < H; h++)
                for (int x = 0; x < hd; x++)
                    d.q[l][((size_t)i * H + h) * hd + x] = 3.0f * d.k[l][((size_t)i * KV + h / 2) * hd + x];
    static const int chunk_sets[2][8] = { { 10, 20, 1, 1, 100, 0 }, { 64, 0 } };
    for (int cs = 0; cs < 2; cs++) {
        void *st = attn_dam.create(&s);
        ck_assert_msg(st != NULL, "%s", dam_last_error());
        float *out = run_module(&attn_dam, st, &d, 0, chunk_sets[cs]);
        const struct dam_profile *p = dam_state_profile(dam_state_of(&attn_dam, st));
        ck_assert_ptr_nonnull(p);
        /* the plans the capture derived: what head_plan_from_profile makes of each head */
        struct dam_run_params rp;
        ck_assert_int_eq(dam_run_params_from_options(&o, &rp), 0);
        struct ref_plan ref[8];
        for (int i = 0; i < L * H; i++) {
            struct head_plan hp;
            ck_assert_int_eq(head_plan_from_profile(&hp, &p->heads[i], &p->params, &rp), 0);
            ck_assert_int_eq(hp.select, 0);
            ck_assert_int_le(hp.n_cols, 16);
            ref[i] = (struct ref_plan){ .dense = hp.dense, .sink_blocks = hp.sink_blocks, .window = hp.window,
                                        .n_cols = hp.n_cols };
            if (hp.n_cols) memcpy(ref[i].cols, hp.cols, hp.n_cols * sizeof(int));
            head_plan_free(&hp);
        }
        /* rows >= PCL: the derived plans */
        ck_assert(compare_dense(&d, out, ref, 16, NULL) < 2e-5);
        /* rows < PCL: full attention */
        struct seq_data head = d;
        head.n = 16;
        struct ref_plan fulls[8];
        for (int i = 0; i < 8; i++) fulls[i] = (struct ref_plan){ .dense = 1 };
        float *out16 = malloc((size_t)L * 16 * H * hd * sizeof(float));
        for (int l = 0; l < L; l++)
            memcpy(out16 + (size_t)l * 16 * H * hd, out + (size_t)l * n * H * hd, (size_t)16 * H * hd * sizeof(float));
        ck_assert(compare_dense(&head, out16, fulls, 0, NULL) < 2e-5);
        /* the local pattern was found: the main diagonal matched everywhere */
        struct attn_stats stats;
        attn_dam.stats(st, &stats);
        ck_assert(stats.sparsity > 0.2);
        /* a rewind to 0 starts over: same outputs */
        attn_dam.truncate(st, 0);
        float *again = run_module(&attn_dam, st, &d, 0, chunk_sets[cs]);
        for (size_t i = 0; i < (size_t)L * n * H * hd; i++) ck_assert_float_eq_tol(again[i], out[i], 1e-6);
        free(again); free(out16); free(out);
        attn_dam.destroy(st);
    }
    free_seq(&d);
}
END_TEST

/* --dam-capture calibrate (dam calibrate's mode): full attention; the rows of
 * every sequence add up, a rewind to 0 starts the next sequence. */
START_TEST(test_calibration_capture) {
    extern const struct attn_module attn_dam;
    struct attn_options o;
    attn_options_default(&o);
    o.dam.pcl = 12;
    snprintf(o.dam.capture, sizeof o.dam.capture, "calibrate");
    const int L = 2, H = 2, KV = 1, hd = 4;
    struct attn_setup s = setup_of(L, H, KV, hd, 20, &o);
    void *st = attn_dam.create(&s);
    ck_assert_ptr_nonnull(st);
    struct seq_data d = make_seq(L, H, KV, hd, 20);
    static const int a[] = { 20, 0 }, b[] = { 5, 1, 1, 0 };
    float *o1 = run_module(&attn_dam, st, &d, 0, a);
    attn_dam.truncate(st, 0);
    d.n = 7;
    float *o2 = run_module(&attn_dam, st, &d, 0, b);
    d.n = 20;
    struct dam_capture *c = dam_state_capture(dam_state_of(&attn_dam, st));
    ck_assert_int_eq(c->n_sequences, 2);
    for (int l = 0; l < L; l++)
        for (int i = 0; i < 12; i++) {
            ck_assert_uint_eq(c->rows[l * 12 + i], i < 7 ? 2 : 1);
            for (int h = 0; h < H; h++) {
                double sum = 0;
                for (int j = 0; j <= i; j++) sum += c->sum[((size_t)l * H + h) * dam_tri_size(12) + dam_tri(i, j)];
                ck_assert_double_eq_tol(sum, c->rows[l * 12 + i], 1e-5);
            }
        }
    struct ref_plan fulls[4];
    for (int i = 0; i < 4; i++) fulls[i] = (struct ref_plan){ .dense = 1 };
    ck_assert(compare_dense(&d, o1, fulls, 0, NULL) < 2e-5);
    free(o1); free(o2);
    free_seq(&d);
    attn_dam.destroy(st);
}
END_TEST

/* The reach capture on a random sequence: a plan keeping everything keeps
 * all the mass with no error, wider windows keep more, the budget split
 * respects the budget, and the figures survive a profile's JSON. */
START_TEST(test_reach_capture) {
    extern const struct attn_module attn_dam;
    struct attn_options o;
    attn_options_default(&o);
    snprintf(o.dam.capture, sizeof o.dam.capture, "reach");
    o.dam.reach_min_row = 64;
    const int L = 2, H = 2, KV = 1, hd = 16, n = 200;
    struct attn_setup s = setup_of(L, H, KV, hd, n, &o);
    void *st = attn_dam.create(&s);
    ck_assert_msg(st != NULL, "%s", dam_last_error());
    struct seq_data d = make_seq(L, H, KV, hd, n);
    static const int chunks[] = { 100, 37, 63, 0 };
    float *out = run_module(&attn_dam, st, &d, 0, chunks);
    struct ref_plan fulls[4];
    for (int i = 0; i < 4; i++) fulls[i] = (struct ref_plan){ .dense = 1 };
    ck_assert(compare_dense(&d, out, fulls, 0, NULL) < 2e-5);    /* the reach runs full attention */
    const struct dam_reach *r = dam_state_reach(dam_state_of(&attn_dam, st));
    ck_assert_ptr_nonnull(r);
    ck_assert_double_eq_tol(r->rows[0], (n - 64) / DAM_REACH_ROW_STEP, 0.5);
    for (int h = 0; h < L * H; h++) {
        const double *kept = r->kept + (size_t)h * DAM_REACH_W * DAM_REACH_K;
        const double *err = r->err + (size_t)h * DAM_REACH_W * DAM_REACH_K;
        const double rows = r->rows[h / H];
        ck_assert_double_eq_tol(kept[(DAM_REACH_W - 1) * DAM_REACH_K] / rows, 1.0, 1e-4);
        ck_assert_double_eq_tol(err[(DAM_REACH_W - 1) * DAM_REACH_K] / rows, 0.0, 1e-8);
        for (int w = 1; w < DAM_REACH_W; w++) {
            ck_assert(kept[w * DAM_REACH_K] >= kept[(w - 1) * DAM_REACH_K] - 1e-6);
            for (int k = 1; k < DAM_REACH_K; k++)
                ck_assert(kept[w * DAM_REACH_K + k] >= kept[w * DAM_REACH_K + k - 1] - 1e-6);
        }
    }
    /* the split: each head's cost from the grid, their mean within the budget */
    int win[4], sel[4];
    ck_assert_int_eq(dam_reach_allocate(r, 96, 1, win, sel), 0);
    double cost = 0;
    for (int h = 0; h < 4; h++) {
        ck_assert_int_ge(sel[h], 1);
        cost += 16 * (1.5 + dam_window_blocks(win[h]) + sel[h]);
    }
    ck_assert_msg(cost / 4 <= 96 + 1e-9, "mean cost %g over the budget", cost / 4);
    /* through a profile's JSON */
    struct dam_params p = hand_params();
    struct dam_profile *prof = dam_profile_new(L, H, KV, hd, &p);
    prof->reach = dam_reach_new(L, H, r->min_row);
    const size_t cells = (size_t)L * H * DAM_REACH_W * DAM_REACH_K;
    memcpy(prof->reach->kept, r->kept, cells * sizeof(double));
    memcpy(prof->reach->err, r->err, cells * sizeof(double));
    memcpy(prof->reach->rows, r->rows, L * sizeof(double));
    for (int h = 0; h < L * H; h++) prof->reach->gain[h] = 0.5 + h;
    ck_assert_int_eq(dam_reach_allocate(prof->reach, 96, 1, win, sel), 0);
    char *json = dam_profile_to_json(prof);
    struct dam_profile *back = dam_profile_parse(json, strlen(json), "reach.json");
    ck_assert_msg(back != NULL, "%s", dam_last_error());
    ck_assert_ptr_nonnull(back->reach);
    for (size_t c = 0; c < cells; c++) {
        const double rows = r->rows[c / (H * DAM_REACH_W * DAM_REACH_K)];
        ck_assert_double_eq_tol(back->reach->err[c], r->err[c] / rows, 1e-9 + 1e-9 * r->err[c] / rows);
        ck_assert_double_eq_tol(back->reach->kept[c], r->kept[c] / rows, 1e-4);
    }
    ck_assert_double_eq_tol(back->reach->gain[3], 3.5, 1e-12);
    int win2[4], sel2[4];
    ck_assert_int_eq(dam_reach_allocate(back->reach, 96, 1, win2, sel2), 0);
    ck_assert_mem_eq(win, win2, sizeof win);
    ck_assert_mem_eq(sel, sel2, sizeof sel);
    free(json);
    dam_profile_free(back);
    dam_profile_free(prof);
    free(out);
    free_seq(&d);
    attn_dam.destroy(st);
}
END_TEST

/* ------------------------------------------------------------ profiles */

static struct dam_profile *sample_profile(void) {
    struct dam_params p = hand_params();
    struct dam_capture *c = dam_capture_new(2, 2, 4);
    for (int l = 0; l < 2; l++)
        for (int h = 0; h < 2; h++)
            for (int i = 0; i < 4; i++) dam_capture_add_row(c, l, h, i, hand_A + dam_tri(i, 0));
    for (int l = 0; l < 2; l++) for (int i = 0; i < 4; i++) dam_capture_count_row(c, l, i);
    struct dam_profile *prof = dam_profile_from_capture(c, &p, 1, 8);
    dam_capture_free(c);
    int off[] = { 0, 1, 7 }, col[] = { 0, 3, 100 };
    dam_head_set(&prof->heads[3], off, 3, col, 3);
    prof->heads[3].fallback = DAM_FALLBACK_WINDOW;
    snprintf(prof->source, sizeof prof->source, "hand");
    return prof;
}

START_TEST(test_profile_roundtrip) {
    struct dam_profile *a = sample_profile();
    const char *dir = tmp_dir();
    char path[256];
    snprintf(path, sizeof path, "%s/p.json", dir);
    ck_assert_int_eq(dam_profile_save(a, path), 0);
    struct dam_profile *b = dam_profile_load(path);
    ck_assert_msg(b != NULL, "%s", dam_last_error());
    ck_assert_int_eq(b->n_layers, 2); ck_assert_int_eq(b->n_heads, 2);
    ck_assert_int_eq(b->n_kv_heads, 1); ck_assert_int_eq(b->head_dim, 8);
    ck_assert_int_eq(b->params.pcl, 4);
    ck_assert_float_eq_tol(b->params.tau, 0.5f, 1e-6);
    ck_assert_int_eq(b->params.fallback, DAM_FALLBACK_FULL);
    ck_assert_str_eq(b->source, "hand");
    ck_assert_int_eq(b->n_sequences, 1);
    for (int i = 0; i < 4; i++) {
        const struct dam_head *x = &a->heads[i], *y = &b->heads[i];
        ck_assert_int_eq(x->fallback, y->fallback);
        ck_assert_int_eq(x->n_offsets, y->n_offsets);
        ck_assert_int_eq(x->n_columns, y->n_columns);
        ck_assert_mem_eq(x->offsets, y->offsets, x->n_offsets * sizeof(int));
        ck_assert_mem_eq(x->columns, y->columns, x->n_columns * sizeof(int));
        ck_assert_float_eq_tol(x->coverage, y->coverage, 1e-4);
        ck_assert_float_eq_tol(x->true_density, y->true_density, 1e-4);
        ck_assert_ptr_nonnull(y->true_mask);
        ck_assert_mem_eq(x->true_mask, y->true_mask, 10);
    }
    /* the loaded profile drives a state */
    struct attn_options o;
    attn_options_default(&o);
    struct attn_setup s = setup_of(2, 2, 1, 8, 64, &o);
    struct dam_state *st = dam_state_new(&s);
    struct dam_run_params rp;
    ck_assert_int_eq(dam_run_params_from_options(&o, &rp), 0);
    ck_assert_int_eq(dam_state_use_profile(st, b, &rp), 0);
    dam_state_free(st);
    dam_profile_free(a);
    dam_profile_free(b);
}
END_TEST

/* Each corruption of a good profile text must fail with a message naming it. */
START_TEST(test_profile_errors) {
    struct dam_profile *a = sample_profile();
    char *good = dam_profile_to_json(a);
    dam_profile_free(a);
    struct { const char *find, *replace, *expect; } cases[] = {
        { "\"heads\"", "\"heads\" x", "not valid JSON" },
        { "\"dam-profile\"", "\"other\"", "not a dam profile" },
        { "\"version\":\t2", "\"version\":\t7", "version 7" },
        { "\"n_heads\":\t2", "\"n_heads\":\t3", "heads listed" },
        { "\"fallback\":\t\"full\"", "\"fallback\":\t\"maybe\"", "fallback" },
        { "\"offsets\":\t[0]", "\"offsets\":\t[-3]", "offsets" },
        { "\"pcl\":\t4", "\"pcl\":\t1", "pcl" },
        { "\"head\":\t1", "\"head\":\t0", "appears twice" },
        { "\"true_mask\":\t\"", "\"true_mask\":\t\"%%", "true_mask" },
        { "\"geometry\"", "\"geometri\"", "geometry" },
    };
    for (size_t c = 0; c < sizeof cases / sizeof *cases; c++) {
        const char *at = strstr(good, cases[c].find);
        ck_assert_msg(at != NULL, "case %zu: '%s' not in the profile text", c, cases[c].find);
        char *bad = malloc(strlen(good) + 64);
        size_t pre = (size_t)(at - good);
        memcpy(bad, good, pre);
        strcpy(bad + pre, cases[c].replace);
        strcat(bad, at + strlen(cases[c].find));
        struct dam_profile *p = dam_profile_parse(bad, strlen(bad), "bad.json");
        ck_assert_msg(p == NULL, "case %zu accepted", c);
        ck_assert_msg(strstr(dam_last_error(), cases[c].expect) && strstr(dam_last_error(), "bad.json"),
                      "case %zu: message '%s' lacks '%s'", c, dam_last_error(), cases[c].expect);
        free(bad);
    }
    /* truncated file */
    struct dam_profile *p = dam_profile_parse(good, strlen(good) / 2, "half.json");
    ck_assert_ptr_null(p);
    ck_assert_ptr_nonnull(strstr(dam_last_error(), "not valid JSON"));
    /* a profile for another geometry: refused by the module */
    const char *dir = tmp_dir();
    char path[256];
    snprintf(path, sizeof path, "%s/p.json", dir);
    ck_assert_int_eq(write_file_atomic(path, good, strlen(good)), 0);
    extern const struct attn_module attn_dam;
    struct attn_options o;
    attn_options_default(&o);
    snprintf(o.dam.profile, sizeof o.dam.profile, "%s", path);
    snprintf(o.dam.capture, sizeof o.dam.capture, "profile");
    struct attn_setup s = setup_of(2, 4, 2, 8, 64, &o);
    ck_assert_ptr_null(attn_dam.create(&s));
    ck_assert_msg(strstr(dam_last_error(), "was made for a model with 2 layers, 2 heads"), "%s", dam_last_error());
    s = setup_of(2, 2, 1, 8, 64, &o);
    void *st = attn_dam.create(&s);
    ck_assert_msg(st != NULL, "%s", dam_last_error());
    attn_dam.destroy(st);
    /* a missing file */
    snprintf(o.dam.profile, sizeof o.dam.profile, "%s/none.json", dir);
    ck_assert_ptr_null(attn_dam.create(&s));
    ck_assert_ptr_nonnull(strstr(dam_last_error(), "none.json"));
    free(good);
}
END_TEST

/* No profile and no calibration text: a clear error, never a silent full. */
START_TEST(test_no_capture_source) {
    extern const struct attn_module attn_dam;
    struct attn_options o;
    attn_options_default(&o);
    snprintf(o.dam.capture, sizeof o.dam.capture, "auto");
    o.dam.profile[0] = 0;
    setenv("DAM_CALIBRATION", "/nonexistent/calibration.txt", 1);
    struct model m = { 0 };
    m.dir = "/nonexistent";
    ck_assert_int_eq(attn_prepare(&attn_dam, &o, &m, NULL), -1);
    ck_assert_msg(strstr(dam_last_error(), "no capture source"), "%s", dam_last_error());
    unsetenv("DAM_CALIBRATION");
    /* create without the prepared profile: a clear error too */
    struct attn_setup s = setup_of(1, 2, 1, 8, 64, &o);
    ck_assert_ptr_null(attn_dam.create(&s));
    ck_assert_msg(strstr(dam_last_error(), "prepared"), "%s", dam_last_error());
    snprintf(o.dam.capture, sizeof o.dam.capture, "profile");
    ck_assert_ptr_null(attn_dam.create(&s));
    ck_assert_msg(strstr(dam_last_error(), "--dam-profile"), "%s", dam_last_error());
}
END_TEST

START_TEST(test_options_file) {
    const char *text = "{\"_comment\": \"x\", \"window\": {\"sinks\": 3, \"size\": 17},"
                       " \"dam\": {\"pcl\": 64, \"tau\": 0.25, \"mu\": 0.6, \"fallback\": \"none\","
                       " \"min_support\": 5, \"min-select\": 48}}";
    const char *path = tmp_file_with(text, strlen(text));
    struct attn_options o;
    attn_options_default(&o);
    ck_assert_int_eq(o.dam.budget, 512);               /* the tables' defaults */
    ck_assert_str_eq(o.dam.capture, "auto");
    ck_assert_int_eq(attn_options_load(path, &o), 0);
    ck_assert_int_eq(o.window.sinks, 3); ck_assert_int_eq(o.window.size, 17);
    ck_assert_int_eq(o.dam.pcl, 64);
    ck_assert_float_eq_tol(o.dam.tau, 0.25f, 1e-6);
    ck_assert_str_eq(o.dam.fallback, "none");
    ck_assert_int_eq(o.dam.min_support, 5);
    ck_assert_int_eq(o.dam.min_select, 48);
    struct { const char *json, *expect; } bad[] = {
        { "{\"dam\": {\"fallback\": \"sometimes\"}}", "sometimes" },
        { "{\"dam\": {\"bogus\": 1}}", "no option 'bogus'" },
        { "{\"nomodule\": {\"a\": 1}}", "nomodule" },
        { "{\"dam\": {\"pcl\": 1}}", "from 2 to" },
        { "{\"dam\": {\"pcl\": \"64\"}}", "must be a number" },
        { "{\"window\": {\"size\": 2.5}}", "integer" },
    };
    for (size_t c = 0; c < sizeof bad / sizeof *bad; c++) {
        path = tmp_file_with(bad[c].json, strlen(bad[c].json));
        struct attn_options before = o;
        ck_assert_int_eq(attn_options_load(path, &o), -1);
        ck_assert_msg(strstr(dam_last_error(), bad[c].expect), "case %zu: %s", c, dam_last_error());
        ck_assert_mem_eq(&before, &o, sizeof o);        /* a bad file changes nothing */
    }
    /* flags and descriptions come from the same tables */
    const struct attn_module *m;
    const struct attn_opt *p = attn_opt_for_flag("--dam-min-support", &m);
    ck_assert_ptr_nonnull(p);
    ck_assert_str_eq(m->name, "dam");
    ck_assert_int_eq(attn_opt_set(&o, p, "7", "--dam-min-support"), 0);
    ck_assert_int_eq(o.dam.min_support, 7);
    ck_assert_ptr_null(attn_opt_for_flag("--dam-reach-min-row", NULL));   /* internal: no flag */
    ck_assert_ptr_nonnull(attn_opt_find(m, "support"));                   /* compare's old key */
    char desc[2048];
    ck_assert_int_eq(attn_options_describe(attn_find("window"), &o, desc, sizeof desc), 0);
    ck_assert_str_eq(desc, "sinks=3,size=17");
    /* the shipped configs/dam.json loads */
    if (is_file("configs/dam.json")) {
        attn_options_default(&o);
        ck_assert_msg(attn_options_load("configs/dam.json", &o) == 0, "%s", dam_last_error());
    }
}
END_TEST

Suite *test_suite(void) {
    Suite *s = suite_create("dam");
    TCase *t = tcase_create("dam");
    tcase_set_timeout(t, 60);
    tcase_add_test(t, test_boxcox);
    tcase_add_test(t, test_true_mask_hand);
    tcase_add_test(t, test_gamma_hand);
    tcase_add_test(t, test_profile_from_hand_capture);
    tcase_add_test(t, test_params_from_options);
    tcase_add_test(t, test_mask_runs);
    tcase_add_test(t, test_kernels_vs_dense);
    tcase_add_test(t, test_kv_window_bytes);
    tcase_add_test(t, test_covering_budget_equals_full);
    tcase_add_test(t, test_selection_finds_planted_key);
    tcase_add_test(t, test_kv16);
    tcase_add_test(t, test_window_module);
    tcase_add_test(t, test_prompt_capture);
    tcase_add_test(t, test_calibration_capture);
    tcase_add_test(t, test_reach_capture);
    tcase_add_test(t, test_profile_roundtrip);
    tcase_add_test(t, test_profile_errors);
    tcase_add_test(t, test_no_capture_source);
    tcase_add_test(t, test_options_file);
    suite_add_tcase(s, t);
    return s;
}
