/* isa_avx2.c — micro-kernels for AVX2 + FMA + F16C: 8 float lanes, 16
 * vector registers, no mask registers (ragged ends go through a small
 * zero-padded copy). Same algorithms as isa_avx512.c with smaller tiles so
 * the accumulators still fit the register file. */
#if defined(__x86_64__)
#pragma GCC target("avx2,fma,f16c")
#include "isa.h"
#include "dam/kernels.h"
#include <immintrin.h>
#include <limits.h>
#include <math.h>
#include <string.h>

#define INLINE static inline __attribute__((always_inline))
/* Loops over register arrays (accumulators, key vectors) must be unrolled
 * completely, or the arrays live in memory; -O2 does not do it by itself. */
#define UNROLL _Pragma("GCC unroll 16")

/* ---- loads: 8 weights of any stored dtype as float32 ---- */

INLINE __m256 load8(enum dtype dt, const void *p) {
    if (dt == DT_BF16)
        return _mm256_castsi256_ps(_mm256_slli_epi32(
            _mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)p)), 16));
    if (dt == DT_F16) return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)p));
    return _mm256_loadu_ps(p);
}

INLINE float hsum8(__m256 a) {
    __m128 h = _mm_add_ps(_mm256_castps256_ps128(a), _mm256_extractf128_ps(a, 1));
    h = _mm_add_ps(h, _mm_movehl_ps(h, h));
    return _mm_cvtss_f32(_mm_add_ss(h, _mm_movehdup_ps(h)));
}

/* Sums of four vectors as one 4-lane vector. */
INLINE __m128 hsum4(__m256 a, __m256 b, __m256 c, __m256 d) {
    __m256 ab = _mm256_hadd_ps(a, b), cd = _mm256_hadd_ps(c, d);
    __m256 abcd = _mm256_hadd_ps(ab, cd);
    return _mm_add_ps(_mm256_castps256_ps128(abcd), _mm256_extractf128_ps(abcd, 1));
}

/* ---- gemm tile: M inputs (<= 3) x NR = 4 weight rows ----
 * 12 accumulators + 3 inputs + 1 weight = the 16 registers. */

#define NR 4

INLINE void gemm_micro(const int M, enum dtype dt, int nr, int kc, const float *x, size_t ldx,
                       const void *w, size_t ldw, float *out, size_t ldo, int accumulate) {
    const size_t es = dtype_size(dt);
    const char *wr[NR];
    UNROLL for (int r = 0; r < NR; r++) wr[r] = (const char *)w + (size_t)(r < nr ? r : 0) * ldw * es;
    __m256 acc[3][NR];
    UNROLL for (int i = 0; i < M; i++)
        UNROLL for (int r = 0; r < NR; r++) acc[i][r] = _mm256_setzero_ps();
    int c = 0;
    for (; c + 8 <= kc; c += 8) {
        __m256 xv[3];
        UNROLL for (int i = 0; i < M; i++) xv[i] = _mm256_loadu_ps(x + (size_t)i * ldx + c);
        UNROLL for (int r = 0; r < NR; r++) {
            __m256 wv = load8(dt, wr[r] + (size_t)c * es);
            UNROLL for (int i = 0; i < M; i++) acc[i][r] = _mm256_fmadd_ps(xv[i], wv, acc[i][r]);
        }
    }
    if (c < kc) {                           /* ragged end: zero-padded copies */
        const int n = kc - c;
        float xt[3][8] = {{0}};
        uint16_t wt16[NR][8] = {{0}};
        float wt32[NR][8] = {{0}};
        UNROLL for (int i = 0; i < M; i++) memcpy(xt[i], x + (size_t)i * ldx + c, n * sizeof(float));
        UNROLL for (int r = 0; r < NR; r++) {
            if (dt == DT_F32) memcpy(wt32[r], wr[r] + (size_t)c * es, n * sizeof(float));
            else memcpy(wt16[r], wr[r] + (size_t)c * es, n * sizeof(uint16_t));
        }
        UNROLL for (int r = 0; r < NR; r++) {
            __m256 wv = dt == DT_F32 ? _mm256_loadu_ps(wt32[r]) : load8(dt, wt16[r]);
            UNROLL for (int i = 0; i < M; i++) acc[i][r] = _mm256_fmadd_ps(_mm256_loadu_ps(xt[i]), wv, acc[i][r]);
        }
    }
    UNROLL for (int i = 0; i < M; i++) {
        float s[4];
        _mm_storeu_ps(s, hsum4(acc[i][0], acc[i][1], acc[i][2], acc[i][3]));
        float *o = out + (size_t)i * ldo;
        for (int r = 0; r < nr; r++) o[r] = accumulate ? o[r] + s[r] : s[r];
    }
}

/* ---- one input (decode): NR1 = 8 rows per tile, the next tile's rows
 * prefetched once per cache line (see isa_avx512.c) ---- */

#define NR1 8

INLINE void gemv_micro(enum dtype dt, int nr, int kc, const float *x, const void *w, size_t ldw,
                       float *out, int accumulate) {
    const size_t es = dtype_size(dt);
    const char *wr[NR1];
    UNROLL for (int r = 0; r < NR1; r++) wr[r] = (const char *)w + (size_t)(r < nr ? r : 0) * ldw * es;
    const size_t ahead = (size_t)NR1 * ldw * es;
    const int line = (int)(64 / es);
    __m256 acc[NR1];
    UNROLL for (int r = 0; r < NR1; r++) acc[r] = _mm256_setzero_ps();
    int c = 0;
    for (; c + 8 <= kc; c += 8) {
        const __m256 xv = _mm256_loadu_ps(x + c);
        const int prefetch = c % line == 0;
        UNROLL for (int r = 0; r < NR1; r++) {
            if (prefetch) _mm_prefetch(wr[r] + (size_t)c * es + ahead, _MM_HINT_T0);
            acc[r] = _mm256_fmadd_ps(xv, load8(dt, wr[r] + (size_t)c * es), acc[r]);
        }
    }
    float s[NR1];
    _mm_storeu_ps(s, hsum4(acc[0], acc[1], acc[2], acc[3]));
    _mm_storeu_ps(s + 4, hsum4(acc[4], acc[5], acc[6], acc[7]));
    for (; c < kc; c++)                     /* ragged end, scalar */
        for (int r = 0; r < NR1; r++) {
            float wf = dt == DT_F32 ? ((const float *)wr[r])[c]
                     : dt == DT_BF16 ? bf16_to_f32(((const uint16_t *)wr[r])[c]) : f16_to_f32(((const uint16_t *)wr[r])[c]);
            s[r] += x[c] * wf;
        }
    for (int r = 0; r < nr; r++) out[r] = accumulate ? out[r] + s[r] : s[r];
}

#define GEMM_FOR_DTYPE(DT)                                                                      \
    switch (m) {                                                                                \
    case 1: gemv_micro(DT, nr, kc, x, w, ldw, out, accumulate); break;                          \
    case 2: gemm_micro(2, DT, nr, kc, x, ldx, w, ldw, out, ldo, accumulate); break;             \
    default: gemm_micro(3, DT, nr, kc, x, ldx, w, ldw, out, ldo, accumulate); break;            \
    }

static void gemm_tile_avx2(enum dtype dt, int m, int nr, int kc, const float *x, size_t ldx,
                           const void *w, size_t ldw, float *out, size_t ldo, int accumulate) {
    if (dt == DT_BF16) { GEMM_FOR_DTYPE(DT_BF16) }
    else if (dt == DT_F16) { GEMM_FOR_DTYPE(DT_F16) }
    else { GEMM_FOR_DTYPE(DT_F32) }
}

/* ---- vectors ---- */

static float dot_avx2(const float *a, const float *b, int n) {
    __m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps();
    int i = 0;
    for (; i + 16 <= n; i += 16) {
        s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), s0);
        s1 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 8), _mm256_loadu_ps(b + i + 8), s1);
    }
    float sum = hsum8(_mm256_add_ps(s0, s1));
    for (; i < n; i++) sum += a[i] * b[i];
    return sum;
}

static void axpy_avx2(float *y, float a, const float *x, int n) {
    const __m256 av = _mm256_set1_ps(a);
    int i = 0;
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(y + i, _mm256_fmadd_ps(av, _mm256_loadu_ps(x + i), _mm256_loadu_ps(y + i)));
    for (; i < n; i++) y[i] += a * x[i];
}

static void scale_avx2(float *y, float a, int n) {
    const __m256 av = _mm256_set1_ps(a);
    int i = 0;
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(y + i, _mm256_mul_ps(av, _mm256_loadu_ps(y + i)));
    for (; i < n; i++) y[i] *= a;
}

/* 2^x as in isa_avx512.c; 2^n is built in the exponent field, so n is
 * clamped to the normal range and inputs below -126 give about 1e-38
 * (callers zero masked lanes themselves). */
INLINE __m256 exp2_ps(__m256 x) {
    x = _mm256_min_ps(_mm256_max_ps(x, _mm256_set1_ps(-126.0f)), _mm256_set1_ps(127.0f));
    __m256 n = _mm256_round_ps(x, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m256 f = _mm256_sub_ps(x, n);
    __m256 p = _mm256_set1_ps(1.5252734e-05f);
    p = _mm256_fmadd_ps(p, f, _mm256_set1_ps(1.5403530e-04f));
    p = _mm256_fmadd_ps(p, f, _mm256_set1_ps(1.3333558e-03f));
    p = _mm256_fmadd_ps(p, f, _mm256_set1_ps(9.6181291e-03f));
    p = _mm256_fmadd_ps(p, f, _mm256_set1_ps(5.5504109e-02f));
    p = _mm256_fmadd_ps(p, f, _mm256_set1_ps(2.4022651e-01f));
    p = _mm256_fmadd_ps(p, f, _mm256_set1_ps(6.9314718e-01f));
    p = _mm256_fmadd_ps(p, f, _mm256_set1_ps(1.0f));
    __m256i e = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
    return _mm256_mul_ps(p, _mm256_castsi256_ps(e));
}

static float exp_sum_avx2(float *x, int n, float shift) {
    const __m256 log2e = _mm256_set1_ps(1.44269504f), sh = _mm256_set1_ps(shift);
    __m256 sum = _mm256_setzero_ps();
    int i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256 e = exp2_ps(_mm256_mul_ps(_mm256_sub_ps(_mm256_loadu_ps(x + i), sh), log2e));
        _mm256_storeu_ps(x + i, e);
        sum = _mm256_add_ps(sum, e);
    }
    float s = hsum8(sum);
    for (; i < n; i++) { x[i] = expf(x[i] - shift); s += x[i]; }
    return s;
}

/* silu(g) * u = g * u / (1 + 2^(-g log2 e)); exp2_ps clamps at 2^127, so
 * for g below about -88 the result is a tiny value instead of -0. */
static void swiglu_avx2(float *gate, const float *up, int n) {
    const __m256 one = _mm256_set1_ps(1.0f), nlog2e = _mm256_set1_ps(-1.44269504f);
    int i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256 g = _mm256_loadu_ps(gate + i), u = _mm256_loadu_ps(up + i);
        __m256 e = exp2_ps(_mm256_mul_ps(g, nlog2e));
        _mm256_storeu_ps(gate + i, _mm256_div_ps(_mm256_mul_ps(g, u), _mm256_add_ps(one, e)));
    }
    for (; i < n; i++) gate[i] = gate[i] / (1.0f + expf(-gate[i])) * up[i];
}

/* ---- attention: the scheme of isa_avx512.c with 16 registers: key tiles
 * of KT = 32 (two KV blocks, 4 vectors) and RB = 3 query rows, so the
 * scores take 12 accumulators + 4 key vectors; the values go 16 dimensions
 * (2 vectors) at a time, 3 rows x 2 = 6 accumulators. Masked lanes are
 * zeroed with blends (no mask registers). */

#define KT 32
#define RB 3

/* lanes [0, n) of an 8-lane vector as an all-ones mask */
INLINE __m256 lanes_below(int n) {
    const __m256i idx = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    return _mm256_castsi256_ps(_mm256_cmpgt_epi32(_mm256_set1_epi32(n), idx));
}

/* 8 cache elements from element i of p, as float32 (exact). */
INLINE __m256 kv_load8(const enum kv_type T, const void *p, size_t i) {
    if (T == KV_F32) return _mm256_loadu_ps((const float *)p + i);
    const __m128i h = _mm_loadu_si128((const __m128i *)((const uint16_t *)p + i));
    if (T == KV_F16) return _mm256_cvtph_ps(h);
    return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
}

/* S = Q K^T for R rows against 2 key blocks (each [hd][16], from its own
 * address): per dimension, 4 key vectors x R broadcast query values. */
INLINE void tile_scores(const int R, const enum kv_type T, int hd, const float *q, const void *const kp[2],
                        __m256 s[RB][4]) {
    UNROLL for (int r = 0; r < R; r++)
        UNROLL for (int e = 0; e < 4; e++) s[r][e] = _mm256_setzero_ps();
    for (int d = 0; d < hd; d++) {
        __m256 kv[4];
        UNROLL for (int e = 0; e < 4; e++) kv[e] = kv_load8(T, kp[e / 2], (size_t)d * 16 + 8 * (e % 2));
        UNROLL for (int r = 0; r < R; r++) {
            __m256 qv = _mm256_broadcast_ss(q + (size_t)r * hd + d);
            UNROLL for (int e = 0; e < 4; e++) s[r][e] = _mm256_fmadd_ps(qv, kv[e], s[r][e]);
        }
    }
}

/* Online softmax of one row over a tile: lanes outside mask are dropped;
 * when the row's maximum grows its running sum l and output o (hd) are
 * rescaled; p (32) gets the tile's weights 2^(s - max). A row that sees none
 * of the tile's keys gets zero weights and keeps (m, l, o). */
INLINE void tile_softmax_row(__m256 s[4], const __m256 mask[4], int hd, float *m, float *l, float *o, float *p) {
    const __m256 ninf = _mm256_set1_ps(-INFINITY);
    __m256 mx = ninf;
    UNROLL for (int e = 0; e < 4; e++) {
        s[e] = _mm256_blendv_ps(ninf, s[e], mask[e]);
        mx = _mm256_max_ps(mx, s[e]);
    }
    __m128 h = _mm_max_ps(_mm256_castps256_ps128(mx), _mm256_extractf128_ps(mx, 1));
    h = _mm_max_ps(h, _mm_movehl_ps(h, h));
    const float bmax = _mm_cvtss_f32(_mm_max_ss(h, _mm_movehdup_ps(h)));
    if (bmax == -INFINITY) {
        UNROLL for (int e = 0; e < 4; e++) _mm256_storeu_ps(p + 8 * e, _mm256_setzero_ps());
        return;
    }
    if (bmax > *m) {
        const float alpha = exp2f(*m - bmax);
        *l *= alpha;
        scale_avx2(o, alpha, hd);
        *m = bmax;
    }
    const __m256 mv = _mm256_set1_ps(*m);
    __m256 sum = _mm256_setzero_ps();
    UNROLL for (int e = 0; e < 4; e++) {
        __m256 pe = _mm256_and_ps(mask[e], exp2_ps(_mm256_sub_ps(s[e], mv)));
        _mm256_storeu_ps(p + 8 * e, pe);
        sum = _mm256_add_ps(sum, pe);
    }
    *l += hsum8(sum);
}

INLINE void attn_tile(const int R, const enum kv_type T, int hd, const float *q, const int *last, const void *kb,
                      const void *v, int jt, int k1, float *m, float *l, float *o, float *p) {
    const int nblk = (k1 - jt + 15) / 16;
    const void *kp[2];
    UNROLL for (int b = 0; b < 2; b++)
        kp[b] = (const char *)kb + (size_t)(jt / 16 + (b < nblk ? b : 0)) * hd * 16 * kv_type_size(T);
    __m256 s[RB][4];
    tile_scores(R, T, hd, q, kp, s);

    int jmax = 0;
    UNROLL for (int r = 0; r < R; r++) {
        const int lim = last[r] < k1 - 1 ? last[r] : k1 - 1;
        if (lim - jt + 1 > jmax) jmax = lim - jt + 1;
        __m256 mask[4];
        UNROLL for (int e = 0; e < 4; e++) mask[e] = lanes_below(lim - (jt + 8 * e) + 1);
        tile_softmax_row(s[r], mask, hd, m + r, l + r, o + (size_t)r * hd, p + r * KT);
    }
    if (jmax > KT) jmax = KT;

    for (int d0 = 0; d0 < hd; d0 += 16) {
        __m256 acc[RB][2];
        UNROLL for (int r = 0; r < R; r++)
            UNROLL for (int e = 0; e < 2; e++) acc[r][e] = _mm256_loadu_ps(o + (size_t)r * hd + d0 + 8 * e);
        for (int j = 0; j < jmax; j++) {
            const size_t vj = (size_t)(jt + j) * hd + d0;
            __m256 v0 = kv_load8(T, v, vj), v1 = kv_load8(T, v, vj + 8);
            UNROLL for (int r = 0; r < R; r++) {
                __m256 pv = _mm256_broadcast_ss(p + r * KT + j);
                acc[r][0] = _mm256_fmadd_ps(pv, v0, acc[r][0]);
                acc[r][1] = _mm256_fmadd_ps(pv, v1, acc[r][1]);
            }
        }
        UNROLL for (int r = 0; r < R; r++)
            UNROLL for (int e = 0; e < 2; e++) _mm256_storeu_ps(o + (size_t)r * hd + d0 + 8 * e, acc[r][e]);
    }
}

static int attn_hd_ok_avx2(int hd) { return hd % 16 == 0; }

INLINE void attn_rows_t(const enum kv_type T, int rows, int hd, const float *q, const int *last, const void *kb,
                        const void *v, int k0, int k1, float *m, float *l, float *o) {
    float p[RB * KT];
    for (int jt = k0; jt < k1; jt += KT)
        for (int r0 = 0; r0 < rows; r0 += RB) {
            const int R = rows - r0 < RB ? rows - r0 : RB;
            int seen = 0;
            UNROLL for (int r = 0; r < R; r++) seen |= last[r0 + r] >= jt;
            if (!seen) continue;
            const float *qr = q + (size_t)r0 * hd;
            float *orr = o + (size_t)r0 * hd;
            switch (R) {
            case 1: attn_tile(1, T, hd, qr, last + r0, kb, v, jt, k1, m + r0, l + r0, orr, p); break;
            case 2: attn_tile(2, T, hd, qr, last + r0, kb, v, jt, k1, m + r0, l + r0, orr, p); break;
            default: attn_tile(3, T, hd, qr, last + r0, kb, v, jt, k1, m + r0, l + r0, orr, p); break;
            }
        }
}

/* ---- attention over a list of key blocks: the tile above with its two
 * blocks taken from their own addresses (struct kv_block). */

INLINE void attn_tile_blocks(const int R, const enum kv_type T, int hd, const float *q, const int *last,
                             const struct kv_block *blk, int nb, float *m, float *l, float *o, float *p) {
    const void *kp[2];
    int pos[2];
    UNROLL for (int b = 0; b < 2; b++) {
        kp[b] = blk[b < nb ? b : 0].k;
        pos[b] = b < nb ? blk[b].pos : INT_MAX / 2;
    }
    __m256 s[RB][4];
    tile_scores(R, T, hd, q, kp, s);
    int seen[2] = { 0, 0 };
    UNROLL for (int r = 0; r < R; r++) {
        __m256 mask[4];
        UNROLL for (int e = 0; e < 4; e++) mask[e] = lanes_below(last[r] - (pos[e / 2] + 8 * (e % 2)) + 1);
        UNROLL for (int b = 0; b < 2; b++) {
            int n = last[r] - pos[b] + 1;
            n = n > 16 ? 16 : n;
            if (n > seen[b]) seen[b] = n;
        }
        tile_softmax_row(s[r], mask, hd, m + r, l + r, o + (size_t)r * hd, p + r * KT);
    }
    for (int d0 = 0; d0 < hd; d0 += 16) {
        __m256 acc[RB][2];
        UNROLL for (int r = 0; r < R; r++)
            UNROLL for (int e = 0; e < 2; e++) acc[r][e] = _mm256_loadu_ps(o + (size_t)r * hd + d0 + 8 * e);
        for (int b = 0; b < nb && b < 2; b++)
            for (int j = 0; j < seen[b]; j++) {
                const size_t vj = (size_t)j * hd + d0;
                __m256 v0 = kv_load8(T, blk[b].v, vj), v1 = kv_load8(T, blk[b].v, vj + 8);
                UNROLL for (int r = 0; r < R; r++) {
                    __m256 pv = _mm256_broadcast_ss(p + r * KT + 16 * b + j);
                    acc[r][0] = _mm256_fmadd_ps(pv, v0, acc[r][0]);
                    acc[r][1] = _mm256_fmadd_ps(pv, v1, acc[r][1]);
                }
            }
        UNROLL for (int r = 0; r < R; r++)
            UNROLL for (int e = 0; e < 2; e++) _mm256_storeu_ps(o + (size_t)r * hd + d0 + 8 * e, acc[r][e]);
    }
}

/* Row groups of RB over the blocks, 2 at a time, the element type a constant. */
INLINE void attn_blocks_t(const enum kv_type T, int rows, int hd, const float *q, const int *last,
                          const struct kv_block *blk, int nb, float *m, float *l, float *o) {
    float p[RB * KT];
    for (int b0 = 0; b0 < nb; b0 += 2)
        for (int r0 = 0; r0 < rows; r0 += RB) {
            const int R = rows - r0 < RB ? rows - r0 : RB, n = nb - b0 < 2 ? nb - b0 : 2;
            int seen = 0;
            for (int r = 0; r < R; r++)
                for (int b = 0; b < n; b++) seen |= last[r0 + r] >= blk[b0 + b].pos;
            if (!seen) continue;
            const float *qr = q + (size_t)r0 * hd;
            float *orr = o + (size_t)r0 * hd;
            switch (R) {
            case 1: attn_tile_blocks(1, T, hd, qr, last + r0, blk + b0, n, m + r0, l + r0, orr, p); break;
            case 2: attn_tile_blocks(2, T, hd, qr, last + r0, blk + b0, n, m + r0, l + r0, orr, p); break;
            default: attn_tile_blocks(3, T, hd, qr, last + r0, blk + b0, n, m + r0, l + r0, orr, p); break;
            }
        }
}

static void attn_blocks_avx2(enum kv_type kt, int rows, int hd, const float *q, const int *last,
                             const struct kv_block *blk, int nb, float *m, float *l, float *o) {
    if (kt == KV_F16) attn_blocks_t(KV_F16, rows, hd, q, last, blk, nb, m, l, o);
    else if (kt == KV_BF16) attn_blocks_t(KV_BF16, rows, hd, q, last, blk, nb, m, l, o);
    else attn_blocks_t(KV_F32, rows, hd, q, last, blk, nb, m, l, o);
}

static void attn_rows_avx2(enum kv_type kt, int rows, int hd, const float *q, const int *last, const void *kb,
                           const void *v, int k0, int k1, float *m, float *l, float *o) {
    if (kt == KV_F16) attn_rows_t(KV_F16, rows, hd, q, last, kb, v, k0, k1, m, l, o);
    else if (kt == KV_BF16) attn_rows_t(KV_BF16, rows, hd, q, last, kb, v, k0, k1, m, l, o);
    else attn_rows_t(KV_F32, rows, hd, q, last, kb, v, k0, k1, m, l, o);
}

/* ---- quantized weights (include/dam/quant.h) ----
 * Activations as in the portable code (same rounding: vcvtps2dq rounds to
 * nearest even), packed to bytes with two saturating packs (no value
 * saturates: all are within -127..127) and a lane permutation. */

static inline int32_t hsum_epi32(__m256i v) {
    __m128i s4 = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
    s4 = _mm_add_epi32(s4, _mm_shuffle_epi32(s4, 0x4e));
    s4 = _mm_add_epi32(s4, _mm_shuffle_epi32(s4, 0xb1));
    return _mm_cvtsi128_si32(s4);
}

static void x_quantize_avx2(const float *x, int n, int cols, const struct qinput *out) {
    const __m256 sign = _mm256_set1_ps(-0.0f);
    const __m256i order = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
    for (int i = 0; i < n; i++) {
        const float *xi = x + (size_t)i * cols;
        int8_t *q = out->q + (size_t)i * out->ldq;
        for (int b = 0; b < out->blocks; b++) {
            const int c0 = b * QBLOCK;
            float pad[QBLOCK] = {0};
            const float *src = xi + c0;
            if (cols - c0 < QBLOCK) { memcpy(pad, src, (size_t)(cols - c0) * sizeof(float)); src = pad; }
            __m256 v[4], mx = _mm256_setzero_ps();
            UNROLL for (int j = 0; j < 4; j++) {
                v[j] = _mm256_loadu_ps(src + 8 * j);
                mx = _mm256_max_ps(mx, _mm256_andnot_ps(sign, v[j]));
            }
            __m128 h = _mm_max_ps(_mm256_castps256_ps128(mx), _mm256_extractf128_ps(mx, 1));
            h = _mm_max_ps(h, _mm_movehl_ps(h, h));
            const float amax = _mm_cvtss_f32(_mm_max_ss(h, _mm_movehdup_ps(h)));
            const __m256 id = _mm256_set1_ps(amax > 0 ? 127.0f / amax : 0);
            __m256i qi[4], ri[4], sum = _mm256_setzero_si256(), first = _mm256_setzero_si256(), rsum = sum;
            UNROLL for (int j = 0; j < 4; j++) {
                const __m256 t = _mm256_mul_ps(v[j], id);
                qi[j] = _mm256_cvtps_epi32(t);
                sum = _mm256_add_epi32(sum, qi[j]);
                if (j == 1) first = sum;                     /* columns 0-15 */
                ri[j] = _mm256_cvtps_epi32(_mm256_mul_ps(_mm256_sub_ps(t, _mm256_cvtepi32_ps(qi[j])),
                                                         _mm256_set1_ps((float)QRES)));
                rsum = _mm256_add_epi32(rsum, ri[j]);
            }
            if (out->r) {                                    /* the remainder, in units of 1 / QRES */
                __m256i rb = _mm256_packs_epi16(_mm256_packs_epi32(ri[0], ri[1]), _mm256_packs_epi32(ri[2], ri[3]));
                _mm256_storeu_si256((__m256i *)(out->r + (size_t)i * out->ldq + c0), _mm256_permutevar8x32_epi32(rb, order));
                out->rs[(size_t)i * out->blocks + b] = hsum_epi32(rsum);
            }
            __m256i bytes = _mm256_packs_epi16(_mm256_packs_epi32(qi[0], qi[1]), _mm256_packs_epi32(qi[2], qi[3]));
            _mm256_storeu_si256((__m256i *)(q + c0), _mm256_permutevar8x32_epi32(bytes, order));
            const size_t k = (size_t)i * out->blocks + b;
            const int32_t total = hsum_epi32(sum), h0 = hsum_epi32(first);
            out->d[k] = amax / 127.0f;
            out->s[k] = total;
            out->h[2 * k] = h0;
            out->h[2 * k + 1] = total - h0;
        }
    }
}

/* Weights: M inputs x G groups, each group's 16 rows as two vectors of 8
 * int32 sums. vpmaddubsw multiplies unsigned bytes by signed bytes into
 * pairwise int16 sums, which saturate: nibbles (0..15) times -127..127 never
 * do, but q8_0's stored bytes (up to 255) could, so for q8_0 the signed
 * value q = byte - 128 is multiplied instead, as llama.cpp does: |x| times
 * q with x's sign (at most 2 x 127 x 127 < 32767), no zero-point term. */
static inline __m256i bcast4_avx2(const int8_t *p) {
    int32_t v;
    memcpy(&v, p, 4);
    return _mm256_set1_epi32(v);
}

INLINE void qgemm_micro_avx2(const int M, const int G, const enum quant_type qt, const struct qinput *x, int i0,
                             const uint8_t *wq, const uint8_t *ws, float *out, size_t ldo) {
    const uint16_t *wd = (const uint16_t *)ws;
    const int blocks = x->blocks, tb = qt == QUANT_Q8_0 ? 512 : 256;
    const size_t gq = (size_t)blocks * tb, gs = (size_t)blocks * QGROUP;
    const __m256i ones = _mm256_set1_epi16(1), low4 = _mm256_set1_epi8(0x0f), flip = _mm256_set1_epi8((char)0x80);
    __m256 acc[2][2][2];
    UNROLL for (int i = 0; i < M; i++)
        UNROLL for (int g = 0; g < G; g++)
            UNROLL for (int h = 0; h < 2; h++) acc[i][g][h] = _mm256_setzero_ps();
    const int two = qt == QUANT_Q8_0;                /* the activations' second byte (quant.h) */
    for (int b = 0; b < blocks; b++) {
        __m256i s[2][2][2], s2[2][2][2];
        const int8_t *xb[2], *xr[2];
        UNROLL for (int i = 0; i < M; i++) {
            const size_t row = (size_t)(i0 + i);
            xb[i] = x->q + row * x->ldq + b * QBLOCK;
            xr[i] = two ? x->r + row * x->ldq + b * QBLOCK : NULL;
            const __m256i c = _mm256_set1_epi32(qt == QUANT_Q8_0 ? 0 : -8 * x->s[row * blocks + b]);
            UNROLL for (int g = 0; g < G; g++) s[i][g][0] = s[i][g][1] = s2[i][g][0] = s2[i][g][1] = c;
        }
        const uint8_t *t = wq + (size_t)b * tb;
        if (qt == QUANT_Q8_0) {
            UNROLL for (int k = 0; k < 8; k++) {
                __m256i w[2][2];
                UNROLL for (int g = 0; g < G; g++)
                    UNROLL for (int h = 0; h < 2; h++)
                        w[g][h] = _mm256_xor_si256(_mm256_loadu_si256((const __m256i *)(t + g * gq + k * 64 + h * 32)), flip);
                UNROLL for (int i = 0; i < M; i++) {
                    const __m256i xv = bcast4_avx2(xb[i] + 4 * k), ax = _mm256_abs_epi8(xv);
                    const __m256i xv2 = bcast4_avx2(xr[i] + 4 * k), ax2 = _mm256_abs_epi8(xv2);
                    UNROLL for (int g = 0; g < G; g++)
                        UNROLL for (int h = 0; h < 2; h++) {
                            s[i][g][h] = _mm256_add_epi32(s[i][g][h], _mm256_madd_epi16(
                                _mm256_maddubs_epi16(ax, _mm256_sign_epi8(w[g][h], xv)), ones));
                            s2[i][g][h] = _mm256_add_epi32(s2[i][g][h], _mm256_madd_epi16(
                                _mm256_maddubs_epi16(ax2, _mm256_sign_epi8(w[g][h], xv2)), ones));
                        }
                }
            }
        } else {
            UNROLL for (int k = 0; k < 4; k++) {
                __m256i lo[2][2], hi[2][2];
                UNROLL for (int g = 0; g < G; g++)
                    UNROLL for (int h = 0; h < 2; h++) {
                        const __m256i raw = _mm256_loadu_si256((const __m256i *)(t + g * gq + k * 64 + h * 32));
                        lo[g][h] = _mm256_and_si256(raw, low4);
                        hi[g][h] = _mm256_and_si256(_mm256_srli_epi16(raw, 4), low4);
                    }
                UNROLL for (int i = 0; i < M; i++) {
                    const __m256i xl = bcast4_avx2(xb[i] + 8 * k), xh = bcast4_avx2(xb[i] + 8 * k + 4);
                    UNROLL for (int g = 0; g < G; g++)
                        UNROLL for (int h = 0; h < 2; h++) {
                            const __m256i p = _mm256_add_epi16(_mm256_maddubs_epi16(lo[g][h], xl),
                                                               _mm256_maddubs_epi16(hi[g][h], xh));
                            s[i][g][h] = _mm256_add_epi32(s[i][g][h], _mm256_madd_epi16(p, ones));
                        }
                }
            }
        }
        UNROLL for (int g = 0; g < G; g++)
            UNROLL for (int h = 0; h < 2; h++) {
                const __m256 dw = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(wd + g * gs + (size_t)b * QGROUP + 8 * h)));
                UNROLL for (int i = 0; i < M; i++) {
                    const __m256 d = _mm256_mul_ps(dw, _mm256_set1_ps(x->d[(size_t)(i0 + i) * blocks + b]));
                    __m256 t = _mm256_cvtepi32_ps(s[i][g][h]);
                    if (two) t = _mm256_fmadd_ps(_mm256_cvtepi32_ps(s2[i][g][h]), _mm256_set1_ps(1.0f / QRES), t);
                    acc[i][g][h] = _mm256_fmadd_ps(t, d, acc[i][g][h]);
                }
            }
    }
    UNROLL for (int i = 0; i < M; i++)
        UNROLL for (int g = 0; g < G; g++)
            UNROLL for (int h = 0; h < 2; h++)
                _mm256_storeu_ps(out + (size_t)i * ldo + g * QGROUP + 8 * h, acc[i][g][h]);
}

/* q4_k, one input and one group at a time: per half of the rows (8 lanes)
 * and half of the block (16 columns), one int32 sum; d and m per (row,
 * half-block) applied in the float epilogue, the mins through the
 * activation half sums. */
static void qgemm_k_avx2(const struct qinput *x, int i, const uint8_t *wq, const uint8_t *ws, const uint16_t *wsup,
                         float *out) {
    const int blocks = x->blocks;
    const __m256i ones = _mm256_set1_epi16(1), low4 = _mm256_set1_epi8(0x0f);
    __m256 acc[2] = { _mm256_setzero_ps(), _mm256_setzero_ps() };
    for (int b = 0; b < blocks; b++) {
        const int8_t *xb = x->q + (size_t)i * x->ldq + b * QBLOCK;
        __m256i s[2][2];                                   /* [row half][column half] */
        UNROLL for (int h = 0; h < 2; h++) s[h][0] = s[h][1] = _mm256_setzero_si256();
        UNROLL for (int k = 0; k < 4; k++) {
            const __m256i xl = bcast4_avx2(xb + 8 * k), xh = bcast4_avx2(xb + 8 * k + 4);
            UNROLL for (int h = 0; h < 2; h++) {
                const __m256i raw = _mm256_loadu_si256((const __m256i *)(wq + (size_t)b * 256 + k * 64 + h * 32));
                const __m256i p = _mm256_add_epi16(_mm256_maddubs_epi16(_mm256_and_si256(raw, low4), xl),
                                                   _mm256_maddubs_epi16(_mm256_and_si256(_mm256_srli_epi16(raw, 4), low4), xh));
                s[h][k / 2] = _mm256_add_epi32(s[h][k / 2], _mm256_madd_epi16(p, ones));
            }
        }
        const size_t kx = (size_t)i * blocks + b;
        const float dx = x->d[kx];
        const uint8_t *sc = ws + (size_t)b * 64;
        const uint16_t *sup = wsup + (size_t)(b / QSUPER) * 2 * QGROUP;
        UNROLL for (int h = 0; h < 2; h++) {            /* rows 8h .. 8h+7 */
            const __m256 D = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(sup + 8 * h)));
            const __m256 M = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(sup + QGROUP + 8 * h)));
            UNROLL for (int c = 0; c < 2; c++) {         /* columns 16c .. 16c+15 */
                int64_t dv, mv;
                memcpy(&dv, sc + 16 * c + 8 * h, 8);
                memcpy(&mv, sc + 32 + 16 * c + 8 * h, 8);
                const __m256 d = _mm256_mul_ps(D, _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_cvtsi64_si128(dv))));
                const __m256 m = _mm256_mul_ps(M, _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_cvtsi64_si128(mv))));
                acc[h] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(s[h][c]), _mm256_mul_ps(d, _mm256_set1_ps(dx)), acc[h]);
                acc[h] = _mm256_fnmadd_ps(m, _mm256_set1_ps(dx * (float)x->h[2 * kx + c]), acc[h]);
            }
        }
    }
    _mm256_storeu_ps(out, acc[0]);
    _mm256_storeu_ps(out + 8, acc[1]);
}

/* Any m <= ISA_MAX_QMR, ng <= ISA_MAX_QNG (the AVX-512 variant hands its
 * tiles here on CPUs without VNNI): 2 x 1 tiles, or 1 x 2 for one input. */
static void qgemm_tile_avx2(enum quant_type qt, int m, int ng, const struct qinput *x, int i0, const uint8_t *wq,
                            const uint8_t *ws, const uint16_t *wsup, float *out, size_t ldo) {
    const size_t gq = (size_t)x->blocks * quant_tile_bytes(qt), gs = (size_t)x->blocks * quant_scale_bytes(qt);
    if (qt == QUANT_Q4_K) {
        const size_t gsup = (size_t)((x->blocks + QSUPER - 1) / QSUPER) * 2 * QGROUP;
        for (int i = 0; i < m; i++)
            for (int g = 0; g < ng; g++)
                qgemm_k_avx2(x, i0 + i, wq + g * gq, ws + g * gs, wsup + g * gsup, out + (size_t)i * ldo + g * QGROUP);
        return;
    }
    for (int i = 0; i < m; i += 2) {
        for (int g = 0; g < ng; ) {
            const uint8_t *q = wq + g * gq, *d = ws + g * gs;
            float *o = out + (size_t)i * ldo + g * QGROUP;
            if (m - i >= 2) {
                if (qt == QUANT_Q8_0) qgemm_micro_avx2(2, 1, QUANT_Q8_0, x, i0 + i, q, d, o, ldo);
                else qgemm_micro_avx2(2, 1, QUANT_Q4_0, x, i0 + i, q, d, o, ldo);
                g += 1;
            } else if (ng - g >= 2) {
                if (qt == QUANT_Q8_0) qgemm_micro_avx2(1, 2, QUANT_Q8_0, x, i0 + i, q, d, o, ldo);
                else qgemm_micro_avx2(1, 2, QUANT_Q4_0, x, i0 + i, q, d, o, ldo);
                g += 2;
            } else {
                if (qt == QUANT_Q8_0) qgemm_micro_avx2(1, 1, QUANT_Q8_0, x, i0 + i, q, d, o, ldo);
                else qgemm_micro_avx2(1, 1, QUANT_Q4_0, x, i0 + i, q, d, o, ldo);
                g += 1;
            }
        }
    }
}

/* ---- probe: 10 independent chains ---- */

static double fma_probe_avx2(long iters) {
    __m256 a[10];
    UNROLL for (int j = 0; j < 10; j++) a[j] = _mm256_set1_ps(1.0f + j * 1e-3f);
    const __m256 b = _mm256_set1_ps(0.999999f), c = _mm256_set1_ps(1e-7f);
    for (long i = 0; i < iters; i++) {
        UNROLL for (int j = 0; j < 10; j++) a[j] = _mm256_fmadd_ps(a[j], b, c);
        __asm__ volatile("" : "+x"(a[0]), "+x"(a[1]), "+x"(a[2]), "+x"(a[3]), "+x"(a[4]),
                              "+x"(a[5]), "+x"(a[6]), "+x"(a[7]), "+x"(a[8]), "+x"(a[9]));
    }
    __m256 s = a[0];
    UNROLL for (int j = 1; j < 10; j++) s = _mm256_add_ps(s, a[j]);
    volatile float sink = hsum8(s);
    (void)sink;
    return 2.0 * 8 * 10 * (double)iters;
}

static uint64_t read_probe_avx2(const void *p, size_t bytes) {
    const __m256i *v = p;
    __m256i a[4] = { _mm256_setzero_si256(), _mm256_setzero_si256(), _mm256_setzero_si256(), _mm256_setzero_si256() };
    for (size_t i = 0; i < bytes / 32; i += 4)
        UNROLL for (int j = 0; j < 4; j++) a[j] = _mm256_xor_si256(a[j], _mm256_load_si256(v + i + j));
    __m256i x = _mm256_xor_si256(_mm256_xor_si256(a[0], a[1]), _mm256_xor_si256(a[2], a[3]));
    uint64_t out[4];
    _mm256_storeu_si256((__m256i *)out, x);
    return out[0] ^ out[1] ^ out[2] ^ out[3];
}

static int cpu_has_avx2(void) {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") &&
           __builtin_cpu_supports("f16c");
}

const struct isa isa_avx2 = {
    .name = "avx2",
    .cpu_has = cpu_has_avx2,
    .mr = 3, .nr_max = NR, .nr_gemv = NR1,
    .gemm_tile = gemm_tile_avx2,
    .qmr = 2, .qng = 1, .qng_gemv = 2,
    .x_quantize = x_quantize_avx2,
    .qgemm_tile = qgemm_tile_avx2,
    .dot = dot_avx2,
    .axpy = axpy_avx2,
    .scale = scale_avx2,
    .exp_sum = exp_sum_avx2,
    .swiglu = swiglu_avx2,
    .attn_hd_ok = attn_hd_ok_avx2,
    .attn_rows = attn_rows_avx2,
    .attn_blocks = attn_blocks_avx2,
    .fma_probe = fma_probe_avx2,
    .read_probe = read_probe_avx2,
};
#endif
