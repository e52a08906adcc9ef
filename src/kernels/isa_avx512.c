/* isa_avx512.c — micro-kernels for AVX-512 (F, BW, VL, DQ): 16 float lanes,
 * 32 vector registers, mask registers for the ragged edges. At the end, the
 * avx512bf16 variant: the same kernels with BF16 dot products for BF16
 * weights.
 *
 * The file is compiled for that target whatever the build's -march (the
 * pragma below), and only runs when the CPU reports the extensions, so a
 * PORTABLE=1 build still gets these kernels on a machine that has them.
 * Measured on the Zen 5 this project runs on, one thread: the matrix tile
 * at 80-85 % of the FMA peak, attention prefill at 65-75 %. */
#if defined(__x86_64__)
#pragma GCC target("avx512f,avx512bw,avx512vl,avx512dq,fma,f16c,avx2")
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

/* ---- loads: 16 weights of any stored dtype as float32 ----
 * BF16 is the top half of a float32, so widening to 32 bits and shifting
 * left by 16 is the exact conversion; F16 has a conversion instruction. */

INLINE __m512 load16(enum dtype dt, const void *p) {
    if (dt == DT_BF16)
        return _mm512_castsi512_ps(_mm512_slli_epi32(
            _mm512_cvtepu16_epi32(_mm256_loadu_si256((const __m256i *)p)), 16));
    if (dt == DT_F16) return _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)p));
    return _mm512_loadu_ps(p);
}

/* The first popcount(k) lanes (k = (1 << n) - 1), the others 0. */
INLINE __m512 load16_mask(enum dtype dt, const void *p, __mmask16 k) {
    if (dt == DT_BF16)
        return _mm512_castsi512_ps(_mm512_slli_epi32(
            _mm512_cvtepu16_epi32(_mm256_maskz_loadu_epi16(k, p)), 16));
    if (dt == DT_F16) return _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(k, p));
    return _mm512_maskz_loadu_ps(k, p);
}

/* The first n lanes (n clamped to 0 .. 16). */
INLINE __mmask16 mask16(int n) { return n >= 16 ? 0xffff : n <= 0 ? 0 : (__mmask16)((1u << n) - 1); }

/* Sums of four vectors as one 4-lane vector: fold 512 -> 256 -> 128 bits,
 * then two rounds of pairwise adds across the four. */
INLINE __m128 fold(__m512 a) {
    __m256 h = _mm256_add_ps(_mm512_castps512_ps256(a), _mm512_extractf32x8_ps(a, 1));
    return _mm_add_ps(_mm256_castps256_ps128(h), _mm256_extractf128_ps(h, 1));
}

INLINE __m128 hsum4(__m512 a, __m512 b, __m512 c, __m512 d) {
    return _mm_hadd_ps(_mm_hadd_ps(fold(a), fold(b)), _mm_hadd_ps(fold(c), fold(d)));
}

/* ---- gemm tile: M inputs x NR weight rows, dot-product form ----
 * Per step of 16 columns: M input vectors and NR weight vectors are loaded
 * once and combined into M * NR independent FMAs (24 for 4 x 6), enough to
 * keep both FMA pipes busy through their latency; 24 accumulators + 4
 * inputs + 1 weight fit the 32 registers. M is a compile-time constant
 * (the switch below), so the accumulator arrays live in registers. */

#define NR 6

INLINE void gemm_micro(const int M, enum dtype dt, int nr, int kc, const float *x, size_t ldx,
                       const void *w, size_t ldw, float *out, size_t ldo, int accumulate) {
    const size_t es = dtype_size(dt);
    const char *wr[NR];
    UNROLL for (int r = 0; r < NR; r++)            /* missing rows repeat row 0: computed, never stored */
        wr[r] = (const char *)w + (size_t)(r < nr ? r : 0) * ldw * es;
    __m512 acc[4][NR];
    UNROLL for (int i = 0; i < M; i++)
        UNROLL for (int r = 0; r < NR; r++) acc[i][r] = _mm512_setzero_ps();
    int c = 0;
    for (; c + 16 <= kc; c += 16) {
        __m512 xv[4];
        UNROLL for (int i = 0; i < M; i++) xv[i] = _mm512_loadu_ps(x + (size_t)i * ldx + c);
        UNROLL for (int r = 0; r < NR; r++) {
            __m512 wv = load16(dt, wr[r] + (size_t)c * es);
            UNROLL for (int i = 0; i < M; i++) acc[i][r] = _mm512_fmadd_ps(xv[i], wv, acc[i][r]);
        }
    }
    if (c < kc) {                            /* ragged end: masked loads read only kc - c lanes */
        __mmask16 k = (__mmask16)((1u << (kc - c)) - 1);
        __m512 xv[4];
        UNROLL for (int i = 0; i < M; i++) xv[i] = _mm512_maskz_loadu_ps(k, x + (size_t)i * ldx + c);
        UNROLL for (int r = 0; r < NR; r++) {
            __m512 wv = load16_mask(dt, wr[r] + (size_t)c * es, k);
            UNROLL for (int i = 0; i < M; i++) acc[i][r] = _mm512_fmadd_ps(xv[i], wv, acc[i][r]);
        }
    }
    UNROLL for (int i = 0; i < M; i++) {
        float s[8];
        _mm_storeu_ps(s, hsum4(acc[i][0], acc[i][1], acc[i][2], acc[i][3]));
        _mm_storeu_ps(s + 4, hsum4(acc[i][4], acc[i][5], acc[i][4], acc[i][5]));
        float *o = out + (size_t)i * ldo;
        for (int r = 0; r < nr; r++) o[r] = accumulate ? o[r] + s[r] : s[r];
    }
}

/* ---- one input (decode): NR1 = 12 weight rows per tile ----
 * Nothing is reused here, every weight is read once from memory, so what
 * counts is keeping enough loads in flight. Two things measured to matter
 * (2 threads streaming a 450 MB matrix: 51 -> 62 GB/s, with the plain read
 * of the same bytes at 82): more rows per tile (12 concurrent streams, and
 * half the reductions of 6), and a software prefetch, once per cache line,
 * of the same columns 12 rows ahead, i.e. of the next tile: the hardware
 * prefetcher does not run far enough ahead across 12 interleaved streams.
 * Prefetches past the end of the matrix are harmless (they never fault). */

#define NR1 12

INLINE void gemv_micro(enum dtype dt, int nr, int kc, const float *x, const void *w, size_t ldw,
                       float *out, int accumulate) {
    const size_t es = dtype_size(dt);
    const char *wr[NR1];
    UNROLL for (int r = 0; r < NR1; r++) wr[r] = (const char *)w + (size_t)(r < nr ? r : 0) * ldw * es;
    const size_t ahead = (size_t)NR1 * ldw * es;
    const int line = (int)(64 / es);                 /* columns per cache line */
    __m512 acc[NR1];
    UNROLL for (int r = 0; r < NR1; r++) acc[r] = _mm512_setzero_ps();
    int c = 0;
    for (; c + 16 <= kc; c += 16) {
        const __m512 xv = _mm512_loadu_ps(x + c);
        const int prefetch = c % line == 0;
        UNROLL for (int r = 0; r < NR1; r++) {
            if (prefetch) _mm_prefetch(wr[r] + (size_t)c * es + ahead, _MM_HINT_T0);
            acc[r] = _mm512_fmadd_ps(xv, load16(dt, wr[r] + (size_t)c * es), acc[r]);
        }
    }
    if (c < kc) {
        const __mmask16 k = (__mmask16)((1u << (kc - c)) - 1);
        const __m512 xv = _mm512_maskz_loadu_ps(k, x + c);
        UNROLL for (int r = 0; r < NR1; r++)
            acc[r] = _mm512_fmadd_ps(xv, load16_mask(dt, wr[r] + (size_t)c * es, k), acc[r]);
    }
    float s[NR1];
    _mm_storeu_ps(s, hsum4(acc[0], acc[1], acc[2], acc[3]));
    _mm_storeu_ps(s + 4, hsum4(acc[4], acc[5], acc[6], acc[7]));
    _mm_storeu_ps(s + 8, hsum4(acc[8], acc[9], acc[10], acc[11]));
    for (int r = 0; r < nr; r++) out[r] = accumulate ? out[r] + s[r] : s[r];
}

/* One specialisation per (dtype, M): the dtype test and the M loops vanish.
 * m == 1 is the decode tile above (nr up to NR1). */
#define GEMM_FOR_DTYPE(DT)                                                                      \
    switch (m) {                                                                                \
    case 1: gemv_micro(DT, nr, kc, x, w, ldw, out, accumulate); break;                          \
    case 2: gemm_micro(2, DT, nr, kc, x, ldx, w, ldw, out, ldo, accumulate); break;             \
    case 3: gemm_micro(3, DT, nr, kc, x, ldx, w, ldw, out, ldo, accumulate); break;             \
    default: gemm_micro(4, DT, nr, kc, x, ldx, w, ldw, out, ldo, accumulate); break;            \
    }

static void gemm_tile_avx512(enum dtype dt, int m, int nr, int kc, const float *x, size_t ldx,
                             const void *w, size_t ldw, float *out, size_t ldo, int accumulate) {
    if (dt == DT_BF16) { GEMM_FOR_DTYPE(DT_BF16) }
    else if (dt == DT_F16) { GEMM_FOR_DTYPE(DT_F16) }
    else { GEMM_FOR_DTYPE(DT_F32) }
}

/* ---- vectors ---- */

static float dot_avx512(const float *a, const float *b, int n) {
    __m512 s0 = _mm512_setzero_ps(), s1 = _mm512_setzero_ps();
    int i = 0;
    for (; i + 32 <= n; i += 32) {
        s0 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i), s0);
        s1 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i + 16), _mm512_loadu_ps(b + i + 16), s1);
    }
    for (; i < n; i += 16) {
        __mmask16 k = n - i >= 16 ? 0xffff : (__mmask16)((1u << (n - i)) - 1);
        s0 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(k, a + i), _mm512_maskz_loadu_ps(k, b + i), s0);
    }
    return _mm512_reduce_add_ps(_mm512_add_ps(s0, s1));
}

static void axpy_avx512(float *y, float a, const float *x, int n) {
    const __m512 av = _mm512_set1_ps(a);
    for (int i = 0; i < n; i += 16) {
        __mmask16 k = n - i >= 16 ? 0xffff : (__mmask16)((1u << (n - i)) - 1);
        __m512 yv = _mm512_maskz_loadu_ps(k, y + i);
        _mm512_mask_storeu_ps(y + i, k, _mm512_fmadd_ps(av, _mm512_maskz_loadu_ps(k, x + i), yv));
    }
}

static void scale_avx512(float *y, float a, int n) {
    const __m512 av = _mm512_set1_ps(a);
    for (int i = 0; i < n; i += 16) {
        __mmask16 k = n - i >= 16 ? 0xffff : (__mmask16)((1u << (n - i)) - 1);
        _mm512_mask_storeu_ps(y + i, k, _mm512_mul_ps(av, _mm512_maskz_loadu_ps(k, y + i)));
    }
}

/* 2^x: x = n + f with n an integer and |f| <= 1/2; 2^f by its Taylor
 * polynomial in f ln 2 to degree 7 (relative error < 1e-8, below float
 * rounding), then scaled by 2^n with vscalefps, which also takes care of
 * underflow: inputs below -150 give exactly 0 (and -inf is clamped there). */
INLINE __m512 exp2_ps(__m512 x) {
    x = _mm512_min_ps(_mm512_max_ps(x, _mm512_set1_ps(-150.0f)), _mm512_set1_ps(128.0f));
    __m512 n = _mm512_roundscale_ps(x, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m512 f = _mm512_sub_ps(x, n);
    __m512 p = _mm512_set1_ps(1.5252734e-05f);
    p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(1.5403530e-04f));
    p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(1.3333558e-03f));
    p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(9.6181291e-03f));
    p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(5.5504109e-02f));
    p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(2.4022651e-01f));
    p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(6.9314718e-01f));
    p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(1.0f));
    return _mm512_scalef_ps(p, n);
}

static float exp_sum_avx512(float *x, int n, float shift) {
    const __m512 log2e = _mm512_set1_ps(1.44269504f), sh = _mm512_set1_ps(shift);
    __m512 sum = _mm512_setzero_ps();
    for (int i = 0; i < n; i += 16) {
        __mmask16 k = n - i >= 16 ? 0xffff : (__mmask16)((1u << (n - i)) - 1);
        __m512 e = exp2_ps(_mm512_mul_ps(_mm512_sub_ps(_mm512_maskz_loadu_ps(k, x + i), sh), log2e));
        e = _mm512_maskz_mov_ps(k, e);
        _mm512_mask_storeu_ps(x + i, k, e);
        sum = _mm512_add_ps(sum, e);
    }
    return _mm512_reduce_add_ps(sum);
}

/* silu(g) * u = g * u / (1 + 2^(-g log2 e)); for g below about -88 the
 * exponential is huge and the quotient correctly tends to -0. */
static void swiglu_avx512(float *gate, const float *up, int n) {
    const __m512 one = _mm512_set1_ps(1.0f), nlog2e = _mm512_set1_ps(-1.44269504f);
    for (int i = 0; i < n; i += 16) {
        __mmask16 k = n - i >= 16 ? 0xffff : (__mmask16)((1u << (n - i)) - 1);
        __m512 g = _mm512_maskz_loadu_ps(k, gate + i), u = _mm512_maskz_loadu_ps(k, up + i);
        __m512 e = exp2_ps(_mm512_mul_ps(g, nlog2e));
        _mm512_mask_storeu_ps(gate + i, k, _mm512_div_ps(_mm512_mul_ps(g, u), _mm512_add_ps(one, e)));
    }
}

/* ---- attention ----
 * A key tile is KT = 64 keys (4 blocks of KV_BLOCK = 16, one vector each);
 * query rows go RB = 6 at a time. For each (rows, tile):
 *   scores  S (RB, 64) = Q K^T: per dimension d, 4 key vectors x 6 broadcast
 *           query values = 24 FMAs into 24 accumulators;
 *   softmax running max / sum per row, P = 2^(S - max), masked lanes 0;
 *   values  O (RB, hd) += P V: per key, 4 value vectors (64 dims) x 6
 *           broadcast probabilities = 24 FMAs.
 * Neither S nor P outlives the tile: the score matrix never exists in full. */

#define KT 64
#define RB 6

/* Lanes of block b (keys jt + 16 b ..) that row limit `lim` (last key
 * visible, inclusive) lets through. */
INLINE __mmask16 visible(int jt, int b, int lim) {
    int n = lim - (jt + 16 * b) + 1;
    return n >= 16 ? 0xffff : n <= 0 ? 0 : (__mmask16)((1u << n) - 1);
}

/* 16 cache elements from element i of p, as float32: exact for F16 and
 * BF16 (a conversion instruction; a shift). */
INLINE __m512 kv_load16(const enum kv_type T, const void *p, size_t i) {
    if (T == KV_F32) return _mm512_loadu_ps((const float *)p + i);
    const __m256i h = _mm256_loadu_si256((const __m256i *)((const uint16_t *)p + i));
    if (T == KV_F16) return _mm512_cvtph_ps(h);
    return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
}

/* S = Q K^T for R rows against 4 key blocks (each [hd][16], from its own
 * address): per dimension, 4 key vectors x R broadcast query values. */
INLINE void tile_scores(const int R, const enum kv_type T, int hd, const float *q, const void *const kp[4],
                        __m512 s[RB][4]) {
    UNROLL for (int r = 0; r < R; r++)
        UNROLL for (int b = 0; b < 4; b++) s[r][b] = _mm512_setzero_ps();
    for (int d = 0; d < hd; d++) {
        __m512 kv[4];
        UNROLL for (int b = 0; b < 4; b++) kv[b] = kv_load16(T, kp[b], (size_t)d * 16);
        UNROLL for (int r = 0; r < R; r++) {
            __m512 qv = _mm512_set1_ps(q[(size_t)r * hd + d]);
            UNROLL for (int b = 0; b < 4; b++) s[r][b] = _mm512_fmadd_ps(qv, kv[b], s[r][b]);
        }
    }
}

/* Online softmax of one row over a tile: lanes outside k are dropped; when
 * the row's maximum grows its running sum l and output o (hd) are rescaled;
 * p (64) gets the tile's weights 2^(s - max). A row that sees none of the
 * tile's keys gets zero weights and keeps (m, l, o). */
INLINE void tile_softmax_row(__m512 s[4], const __mmask16 k[4], int hd, float *m, float *l, float *o, float *p) {
    const __m512 ninf = _mm512_set1_ps(-INFINITY);
    __m512 mx = ninf;
    UNROLL for (int b = 0; b < 4; b++) {
        s[b] = _mm512_mask_mov_ps(ninf, k[b], s[b]);
        mx = _mm512_max_ps(mx, s[b]);
    }
    const float bmax = _mm512_reduce_max_ps(mx);
    if (bmax == -INFINITY) {
        UNROLL for (int b = 0; b < 4; b++) _mm512_storeu_ps(p + 16 * b, _mm512_setzero_ps());
        return;
    }
    if (bmax > *m) {                                /* a new maximum: rescale sum and output */
        const float alpha = exp2f(*m - bmax);       /* 0 when m was -inf */
        *l *= alpha;
        scale_avx512(o, alpha, hd);
        *m = bmax;
    }
    const __m512 mv = _mm512_set1_ps(*m);
    __m512 sum = _mm512_setzero_ps();
    UNROLL for (int b = 0; b < 4; b++) {
        __m512 e = _mm512_maskz_mov_ps(k[b], exp2_ps(_mm512_sub_ps(s[b], mv)));
        _mm512_storeu_ps(p + 16 * b, e);
        sum = _mm512_add_ps(sum, e);
    }
    *l += _mm512_reduce_add_ps(sum);
}

INLINE void attn_tile(const int R, const enum kv_type T, int hd, const float *q, const int *last, const void *kb,
                      const void *v, int jt, int k1, float *m, float *l, float *o, float *p) {
    /* blocks past k1 are not read: their offset repeats block 0 (masked anyway) */
    const int nblk = (k1 - jt + 15) / 16;
    const void *kp[4];
    UNROLL for (int b = 0; b < 4; b++)
        kp[b] = (const char *)kb + (size_t)(jt / 16 + (b < nblk ? b : 0)) * hd * 16 * kv_type_size(T);
    __m512 s[RB][4];
    tile_scores(R, T, hd, q, kp, s);

    int jmax = 0;                                   /* keys any row of the group sees */
    UNROLL for (int r = 0; r < R; r++) {
        const int lim = last[r] < k1 - 1 ? last[r] : k1 - 1;
        if (lim - jt + 1 > jmax) jmax = lim - jt + 1;
        __mmask16 k[4];
        UNROLL for (int b = 0; b < 4; b++) k[b] = visible(jt, b, lim);
        tile_softmax_row(s[r], k, hd, m + r, l + r, o + (size_t)r * hd, p + r * KT);
    }
    if (jmax > KT) jmax = KT;

    /* O += P V, 64 dimensions (4 vectors) at a time */
    for (int d0 = 0; d0 < hd; d0 += 64) {
        const int dv = hd - d0 >= 64 ? 4 : (hd - d0) / 16;
        __m512 acc[RB][4];
        UNROLL for (int r = 0; r < R; r++)
            UNROLL for (int e = 0; e < 4; e++)
                acc[r][e] = e < dv ? _mm512_loadu_ps(o + (size_t)r * hd + d0 + 16 * e) : _mm512_setzero_ps();
        for (int j = 0; j < jmax; j++) {
            const size_t vj = (size_t)(jt + j) * hd + d0;
            __m512 vv[4];
            UNROLL for (int e = 0; e < 4; e++) vv[e] = e < dv ? kv_load16(T, v, vj + 16 * e) : _mm512_setzero_ps();
            UNROLL for (int r = 0; r < R; r++) {
                __m512 pv = _mm512_set1_ps(p[r * KT + j]);
                UNROLL for (int e = 0; e < 4; e++) acc[r][e] = _mm512_fmadd_ps(pv, vv[e], acc[r][e]);
            }
        }
        UNROLL for (int r = 0; r < R; r++)
            UNROLL for (int e = 0; e < 4; e++)
                if (e < dv) _mm512_storeu_ps(o + (size_t)r * hd + d0 + 16 * e, acc[r][e]);
    }
}

static int attn_hd_ok_avx512(int hd) { return hd % 16 == 0; }

/* Row groups of RB over one key tile, the element type a constant. */
INLINE void attn_rows_t(const enum kv_type T, int rows, int hd, const float *q, const int *last, const void *kb,
                        const void *v, int k0, int k1, float *m, float *l, float *o) {
    float p[RB * KT];
    for (int jt = k0; jt < k1; jt += KT)
        for (int r0 = 0; r0 < rows; r0 += RB) {
            const int R = rows - r0 < RB ? rows - r0 : RB;
            int seen = 0;                           /* skip row groups the tile is entirely after */
            UNROLL for (int r = 0; r < R; r++) seen |= last[r0 + r] >= jt;
            if (!seen) continue;
            const float *qr = q + (size_t)r0 * hd;
            float *orr = o + (size_t)r0 * hd;
            switch (R) {
            case 1: attn_tile(1, T, hd, qr, last + r0, kb, v, jt, k1, m + r0, l + r0, orr, p); break;
            case 2: attn_tile(2, T, hd, qr, last + r0, kb, v, jt, k1, m + r0, l + r0, orr, p); break;
            case 3: attn_tile(3, T, hd, qr, last + r0, kb, v, jt, k1, m + r0, l + r0, orr, p); break;
            case 4: attn_tile(4, T, hd, qr, last + r0, kb, v, jt, k1, m + r0, l + r0, orr, p); break;
            case 5: attn_tile(5, T, hd, qr, last + r0, kb, v, jt, k1, m + r0, l + r0, orr, p); break;
            default: attn_tile(6, T, hd, qr, last + r0, kb, v, jt, k1, m + r0, l + r0, orr, p); break;
            }
        }
}

/* ---- attention over a list of key blocks: the tile above with each of
 * its 4 blocks taken from its own address (struct kv_block), so a sparse
 * set of blocks runs at the dense kernel's speed. Lane j of block b is
 * visible to row r when pos_b + j <= last[r]. */

INLINE __mmask16 visible_at(int pos, int lim) {
    int n = lim - pos + 1;
    return n >= 16 ? 0xffff : n <= 0 ? 0 : (__mmask16)((1u << n) - 1);
}

INLINE void attn_tile_blocks(const int R, const enum kv_type T, int hd, const float *q, const int *last,
                             const struct kv_block *blk, int nb, float *m, float *l, float *o, float *p) {
    const void *kp[4];
    int pos[4];
    UNROLL for (int b = 0; b < 4; b++) {
        kp[b] = blk[b < nb ? b : 0].k;                  /* missing blocks repeat block 0, masked */
        pos[b] = b < nb ? blk[b].pos : INT_MAX / 2;
    }
    __m512 s[RB][4];
    tile_scores(R, T, hd, q, kp, s);
    int seen[4] = { 0, 0, 0, 0 };                   /* lanes of block b any row sees */
    UNROLL for (int r = 0; r < R; r++) {
        __mmask16 k[4];
        UNROLL for (int b = 0; b < 4; b++) {
            k[b] = visible_at(pos[b], last[r]);
            int n = last[r] - pos[b] + 1;
            n = n > 16 ? 16 : n;
            if (n > seen[b]) seen[b] = n;
        }
        tile_softmax_row(s[r], k, hd, m + r, l + r, o + (size_t)r * hd, p + r * KT);
    }
    for (int d0 = 0; d0 < hd; d0 += 64) {
        const int dv = hd - d0 >= 64 ? 4 : (hd - d0) / 16;
        __m512 acc[RB][4];
        UNROLL for (int r = 0; r < R; r++)
            UNROLL for (int e = 0; e < 4; e++)
                acc[r][e] = e < dv ? _mm512_loadu_ps(o + (size_t)r * hd + d0 + 16 * e) : _mm512_setzero_ps();
        for (int b = 0; b < nb && b < 4; b++)
            for (int j = 0; j < seen[b]; j++) {
                const size_t vj = (size_t)j * hd + d0;
                __m512 vv[4];
                UNROLL for (int e = 0; e < 4; e++)
                    vv[e] = e < dv ? kv_load16(T, blk[b].v, vj + 16 * e) : _mm512_setzero_ps();
                UNROLL for (int r = 0; r < R; r++) {
                    __m512 pv = _mm512_set1_ps(p[r * KT + 16 * b + j]);
                    UNROLL for (int e = 0; e < 4; e++) acc[r][e] = _mm512_fmadd_ps(pv, vv[e], acc[r][e]);
                }
            }
        UNROLL for (int r = 0; r < R; r++)
            UNROLL for (int e = 0; e < 4; e++)
                if (e < dv) _mm512_storeu_ps(o + (size_t)r * hd + d0 + 16 * e, acc[r][e]);
    }
}

/* Row groups of RB over the blocks, 4 at a time, the element type a constant. */
INLINE void attn_blocks_t(const enum kv_type T, int rows, int hd, const float *q, const int *last,
                          const struct kv_block *blk, int nb, float *m, float *l, float *o) {
    float p[RB * KT];
    for (int b0 = 0; b0 < nb; b0 += 4)
        for (int r0 = 0; r0 < rows; r0 += RB) {
            const int R = rows - r0 < RB ? rows - r0 : RB, n = nb - b0 < 4 ? nb - b0 : 4;
            int seen = 0;                           /* skip row groups all before these blocks */
            for (int r = 0; r < R; r++)
                for (int b = 0; b < n; b++) seen |= last[r0 + r] >= blk[b0 + b].pos;
            if (!seen) continue;
            const float *qr = q + (size_t)r0 * hd;
            float *orr = o + (size_t)r0 * hd;
            switch (R) {
            case 1: attn_tile_blocks(1, T, hd, qr, last + r0, blk + b0, n, m + r0, l + r0, orr, p); break;
            case 2: attn_tile_blocks(2, T, hd, qr, last + r0, blk + b0, n, m + r0, l + r0, orr, p); break;
            case 3: attn_tile_blocks(3, T, hd, qr, last + r0, blk + b0, n, m + r0, l + r0, orr, p); break;
            case 4: attn_tile_blocks(4, T, hd, qr, last + r0, blk + b0, n, m + r0, l + r0, orr, p); break;
            case 5: attn_tile_blocks(5, T, hd, qr, last + r0, blk + b0, n, m + r0, l + r0, orr, p); break;
            default: attn_tile_blocks(6, T, hd, qr, last + r0, blk + b0, n, m + r0, l + r0, orr, p); break;
            }
        }
}

static void attn_blocks_avx512(enum kv_type kt, int rows, int hd, const float *q, const int *last,
                               const struct kv_block *blk, int nb, float *m, float *l, float *o) {
    if (kt == KV_F16) attn_blocks_t(KV_F16, rows, hd, q, last, blk, nb, m, l, o);
    else if (kt == KV_BF16) attn_blocks_t(KV_BF16, rows, hd, q, last, blk, nb, m, l, o);
    else attn_blocks_t(KV_F32, rows, hd, q, last, blk, nb, m, l, o);
}

static void attn_rows_avx512(enum kv_type kt, int rows, int hd, const float *q, const int *last, const void *kb,
                             const void *v, int k0, int k1, float *m, float *l, float *o) {
    if (kt == KV_F16) attn_rows_t(KV_F16, rows, hd, q, last, kb, v, k0, k1, m, l, o);
    else if (kt == KV_BF16) attn_rows_t(KV_BF16, rows, hd, q, last, kb, v, k0, k1, m, l, o);
    else attn_rows_t(KV_F32, rows, hd, q, last, kb, v, k0, k1, m, l, o);
}

/* ---- quantized weights (include/dam/quant.h) ----
 * Activations: per block of 32, two vectors; max |x| reduced, then
 * round(x * 127 / max) with the rounding vcvtps2dq does (to nearest even,
 * the same as the portable nearbyintf), packed to bytes by vpmovdb. */

static void x_quantize_avx512(const float *x, int n, int cols, const struct qinput *out) {
    const __m512 sign = _mm512_set1_ps(-0.0f);
    for (int i = 0; i < n; i++) {
        const float *xi = x + (size_t)i * cols;
        int8_t *q = out->q + (size_t)i * out->ldq;
        for (int b = 0; b < out->blocks; b++) {
            const int c0 = b * QBLOCK;
            const __mmask16 k0 = mask16(cols - c0), k1 = mask16(cols - c0 - 16);
            const __m512 v0 = _mm512_maskz_loadu_ps(k0, xi + c0), v1 = _mm512_maskz_loadu_ps(k1, xi + c0 + 16);
            const float amax = _mm512_reduce_max_ps(_mm512_max_ps(_mm512_andnot_ps(sign, v0), _mm512_andnot_ps(sign, v1)));
            const __m512 id = _mm512_set1_ps(amax > 0 ? 127.0f / amax : 0);
            const __m512 t0 = _mm512_mul_ps(v0, id), t1 = _mm512_mul_ps(v1, id);
            const __m512i q0 = _mm512_cvtps_epi32(t0), q1 = _mm512_cvtps_epi32(t1);
            _mm_storeu_si128((__m128i *)(q + c0), _mm512_cvtepi32_epi8(q0));
            _mm_storeu_si128((__m128i *)(q + c0 + 16), _mm512_cvtepi32_epi8(q1));
            const size_t k = (size_t)i * out->blocks + b;
            if (out->r) {                          /* the remainder t - q, in units of 1 / QRES */
                const __m512 res = _mm512_set1_ps((float)QRES);
                const __m512i r0 = _mm512_cvtps_epi32(_mm512_mul_ps(_mm512_sub_ps(t0, _mm512_cvtepi32_ps(q0)), res));
                const __m512i r1 = _mm512_cvtps_epi32(_mm512_mul_ps(_mm512_sub_ps(t1, _mm512_cvtepi32_ps(q1)), res));
                int8_t *rq = out->r + (size_t)i * out->ldq;
                _mm_storeu_si128((__m128i *)(rq + c0), _mm512_cvtepi32_epi8(r0));
                _mm_storeu_si128((__m128i *)(rq + c0 + 16), _mm512_cvtepi32_epi8(r1));
                out->rs[k] = _mm512_reduce_add_epi32(_mm512_add_epi32(r0, r1));
            }
            const int32_t h0 = _mm512_reduce_add_epi32(q0), h1 = _mm512_reduce_add_epi32(q1);
            out->d[k] = amax / 127.0f;
            out->s[k] = h0 + h1;
            out->h[2 * k] = h0;
            out->h[2 * k + 1] = h1;
        }
    }
}

/* Weights: M inputs x G groups of 16 rows per tile. Per block of 32
 * columns, for each group one int32 vector of the 16 rows' sums, started
 * at -zero * s_x (so it ends as the exact integer dot product), fed by
 * vpdpbusd: 64 bytes of weights (4 columns x 16 rows, or 8 columns as two
 * nibble halves) times the 4 activation bytes of those columns broadcast.
 * Then one conversion and one FMA per (input, group) apply d_w d_x. The
 * M x G int32 chains (8 long for a block) are independent, enough to hide
 * vpdpbusd's latency; the results are 16 consecutive outputs per group. */
#pragma GCC push_options
#pragma GCC target("avx512vnni")

INLINE __m512i bcast4(const int8_t *p) {
    int32_t v;
    memcpy(&v, p, 4);
    return _mm512_set1_epi32(v);
}

INLINE void qgemm_micro(const int M, const int G, const enum quant_type qt, const struct qinput *x, int i0,
                        const uint8_t *wq, const uint8_t *ws, float *out, size_t ldo) {
    const uint16_t *wd = (const uint16_t *)ws;
    const int blocks = x->blocks, tb = qt == QUANT_Q8_0 ? 512 : 256, z = qt == QUANT_Q8_0 ? 128 : 8;
    const size_t gq = (size_t)blocks * tb, gs = (size_t)blocks * QGROUP;
    const int8_t *xq[ISA_MAX_QMR], *xr[ISA_MAX_QMR];
    const float *xd[ISA_MAX_QMR];
    const int32_t *xs[ISA_MAX_QMR], *xrs[ISA_MAX_QMR];
    const int two = qt == QUANT_Q8_0;             /* q8_0: the activations' second byte (quant.h) */
    UNROLL for (int i = 0; i < M; i++) {
        xq[i] = x->q + (size_t)(i0 + i) * x->ldq;
        xd[i] = x->d + (size_t)(i0 + i) * blocks;
        xs[i] = x->s + (size_t)(i0 + i) * blocks;
        xr[i] = two ? x->r + (size_t)(i0 + i) * x->ldq : NULL;
        xrs[i] = two ? x->rs + (size_t)(i0 + i) * blocks : NULL;
    }
    const __m512i low4 = _mm512_set1_epi8(0x0f);
    __m512 acc[ISA_MAX_QMR][ISA_MAX_QNG];
    UNROLL for (int i = 0; i < M; i++)
        UNROLL for (int g = 0; g < G; g++) acc[i][g] = _mm512_setzero_ps();
    for (int b = 0; b < blocks; b++) {
        __m512i s[ISA_MAX_QMR][ISA_MAX_QNG], s2[ISA_MAX_QMR][ISA_MAX_QNG];
        UNROLL for (int i = 0; i < M; i++) {
            const __m512i c = _mm512_set1_epi32(-z * xs[i][b]);
            const __m512i c2 = two ? _mm512_set1_epi32(-z * xrs[i][b]) : c;
            UNROLL for (int g = 0; g < G; g++) { s[i][g] = c; s2[i][g] = c2; }
        }
        const uint8_t *t = wq + (size_t)b * tb;
        const int8_t *xb[ISA_MAX_QMR];
        UNROLL for (int i = 0; i < M; i++) xb[i] = xq[i] + b * QBLOCK;
        if (qt == QUANT_Q8_0) {
            UNROLL for (int k = 0; k < 8; k++) {
                __m512i w[ISA_MAX_QNG];
                UNROLL for (int g = 0; g < G; g++) w[g] = _mm512_loadu_si512(t + g * gq + k * 64);
                UNROLL for (int i = 0; i < M; i++) {
                    const __m512i xv = bcast4(xb[i] + 4 * k), xv2 = bcast4(xr[i] + (size_t)b * QBLOCK + 4 * k);
                    UNROLL for (int g = 0; g < G; g++) {
                        s[i][g] = _mm512_dpbusd_epi32(s[i][g], w[g], xv);
                        s2[i][g] = _mm512_dpbusd_epi32(s2[i][g], w[g], xv2);
                    }
                }
            }
        } else {
            UNROLL for (int k = 0; k < 4; k++) {
                __m512i lo[ISA_MAX_QNG], hi[ISA_MAX_QNG];
                UNROLL for (int g = 0; g < G; g++) {
                    const __m512i raw = _mm512_loadu_si512(t + g * gq + k * 64);
                    lo[g] = _mm512_and_si512(raw, low4);
                    hi[g] = _mm512_and_si512(_mm512_srli_epi16(raw, 4), low4);
                }
                UNROLL for (int i = 0; i < M; i++) {
                    const __m512i xl = bcast4(xb[i] + 8 * k), xh = bcast4(xb[i] + 8 * k + 4);
                    UNROLL for (int g = 0; g < G; g++) {
                        s[i][g] = _mm512_dpbusd_epi32(s[i][g], lo[g], xl);
                        s[i][g] = _mm512_dpbusd_epi32(s[i][g], hi[g], xh);
                    }
                }
            }
        }
        __m512 dw[ISA_MAX_QNG];
        UNROLL for (int g = 0; g < G; g++)
            dw[g] = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(wd + g * gs + (size_t)b * QGROUP)));
        UNROLL for (int i = 0; i < M; i++) {
            const __m512 dx = _mm512_set1_ps(xd[i][b]), inv = _mm512_set1_ps(1.0f / QRES);
            UNROLL for (int g = 0; g < G; g++) {
                __m512 t = _mm512_cvtepi32_ps(s[i][g]);
                if (two) t = _mm512_fmadd_ps(_mm512_cvtepi32_ps(s2[i][g]), inv, t);
                acc[i][g] = _mm512_fmadd_ps(t, _mm512_mul_ps(dw[g], dx), acc[i][g]);
            }
        }
    }
    UNROLL for (int i = 0; i < M; i++)
        UNROLL for (int g = 0; g < G; g++) _mm512_storeu_ps(out + (size_t)i * ldo + g * QGROUP, acc[i][g]);
}

/* q4_k: the same nibbles, two int32 sums per block (columns 0-15 and
 * 16-31, each with its own d and m), no zero point: the mins enter through
 * the activation half sums, m_h (d_x s_h), in the float epilogue. */
INLINE void qgemm_micro_k(const int M, const int G, const struct qinput *x, int i0, const uint8_t *wq,
                          const uint8_t *ws, const uint16_t *wsup, float *out, size_t ldo) {
    const int blocks = x->blocks, supers = (blocks + QSUPER - 1) / QSUPER;
    const size_t gq = (size_t)blocks * 256, gs = (size_t)blocks * 64, gsup = (size_t)supers * 2 * QGROUP;
    const __m512i low4 = _mm512_set1_epi8(0x0f);
    __m512 acc[ISA_MAX_QMR][ISA_MAX_QNG];
    UNROLL for (int i = 0; i < M; i++)
        UNROLL for (int g = 0; g < G; g++) acc[i][g] = _mm512_setzero_ps();
    for (int b = 0; b < blocks; b++) {
        __m512i s[ISA_MAX_QMR][ISA_MAX_QNG][2];
        const int8_t *xb[ISA_MAX_QMR];
        UNROLL for (int i = 0; i < M; i++) {
            xb[i] = x->q + (size_t)(i0 + i) * x->ldq + b * QBLOCK;
            UNROLL for (int g = 0; g < G; g++) s[i][g][0] = s[i][g][1] = _mm512_setzero_si512();
        }
        UNROLL for (int k = 0; k < 4; k++) {
            __m512i lo[ISA_MAX_QNG], hi[ISA_MAX_QNG];
            UNROLL for (int g = 0; g < G; g++) {
                const __m512i raw = _mm512_loadu_si512(wq + g * gq + (size_t)b * 256 + k * 64);
                lo[g] = _mm512_and_si512(raw, low4);
                hi[g] = _mm512_and_si512(_mm512_srli_epi16(raw, 4), low4);
            }
            UNROLL for (int i = 0; i < M; i++) {
                const __m512i xl = bcast4(xb[i] + 8 * k), xh = bcast4(xb[i] + 8 * k + 4);
                UNROLL for (int g = 0; g < G; g++) {
                    s[i][g][k / 2] = _mm512_dpbusd_epi32(s[i][g][k / 2], lo[g], xl);
                    s[i][g][k / 2] = _mm512_dpbusd_epi32(s[i][g][k / 2], hi[g], xh);
                }
            }
        }
        UNROLL for (int g = 0; g < G; g++) {
            const uint8_t *sc = ws + g * gs + (size_t)b * 64;
            const uint16_t *sup = wsup + g * gsup + (size_t)(b / QSUPER) * 2 * QGROUP;
            const __m512 D = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)sup));
            const __m512 Mn = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(sup + QGROUP)));
            __m512 d[2], m[2];
            UNROLL for (int h = 0; h < 2; h++) {
                d[h] = _mm512_mul_ps(D, _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)(sc + 16 * h)))));
                m[h] = _mm512_mul_ps(Mn, _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)(sc + 32 + 16 * h)))));
            }
            UNROLL for (int i = 0; i < M; i++) {
                const size_t k = (size_t)(i0 + i) * blocks + b;
                const float dx = x->d[k];
                const __m512 dxv = _mm512_set1_ps(dx);
                UNROLL for (int h = 0; h < 2; h++) {
                    acc[i][g] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(s[i][g][h]), _mm512_mul_ps(d[h], dxv), acc[i][g]);
                    acc[i][g] = _mm512_fnmadd_ps(m[h], _mm512_set1_ps(dx * (float)x->h[2 * k + h]), acc[i][g]);
                }
            }
        }
    }
    UNROLL for (int i = 0; i < M; i++)
        UNROLL for (int g = 0; g < G; g++) _mm512_storeu_ps(out + (size_t)i * ldo + g * QGROUP, acc[i][g]);
}

/* Prefill tiles: 4 inputs x 2 groups (32 rows); decode: 1 input x 4 groups
 * (64 rows, 4 independent chains). Smaller edges take the generic path of
 * the same kernel with fewer inputs or groups. */
#define QMR 4
#define QNG 2
#define QNG1 4

#define QGEMM_CASES(QT)                                                                              \
    if (m == 1) {                                                                                    \
        switch (ng) {                                                                                \
        case 4: qgemm_micro(1, 4, QT, x, i0, wq, ws, out, ldo); break;                               \
        case 3: qgemm_micro(1, 3, QT, x, i0, wq, ws, out, ldo); break;                               \
        case 2: qgemm_micro(1, 2, QT, x, i0, wq, ws, out, ldo); break;                               \
        default: qgemm_micro(1, 1, QT, x, i0, wq, ws, out, ldo); break;                              \
        }                                                                                            \
    } else if (ng == 2) {                                                                            \
        switch (m) {                                                                                 \
        case 4: qgemm_micro(4, 2, QT, x, i0, wq, ws, out, ldo); break;                               \
        case 3: qgemm_micro(3, 2, QT, x, i0, wq, ws, out, ldo); break;                               \
        default: qgemm_micro(2, 2, QT, x, i0, wq, ws, out, ldo); break;                              \
        }                                                                                            \
    } else {                                                                                         \
        switch (m) {                                                                                 \
        case 4: qgemm_micro(4, 1, QT, x, i0, wq, ws, out, ldo); break;                               \
        case 3: qgemm_micro(3, 1, QT, x, i0, wq, ws, out, ldo); break;                               \
        default: qgemm_micro(2, 1, QT, x, i0, wq, ws, out, ldo); break;                              \
        }                                                                                            \
    }

/* q4_k: two int32 sums per (input, group), so at most 4 x 1 or 1 x 4 at a time */
static void qgemm_k(int m, int ng, const struct qinput *x, int i0, const uint8_t *wq, const uint8_t *ws,
                    const uint16_t *wsup, float *out, size_t ldo) {
    const int blocks = x->blocks, supers = (blocks + QSUPER - 1) / QSUPER;
    if (m == 1) {
        switch (ng) {
        case 4: qgemm_micro_k(1, 4, x, i0, wq, ws, wsup, out, ldo); break;
        case 3: qgemm_micro_k(1, 3, x, i0, wq, ws, wsup, out, ldo); break;
        case 2: qgemm_micro_k(1, 2, x, i0, wq, ws, wsup, out, ldo); break;
        default: qgemm_micro_k(1, 1, x, i0, wq, ws, wsup, out, ldo); break;
        }
        return;
    }
    for (int g = 0; g < ng; g++) {
        const uint8_t *q = wq + (size_t)g * blocks * 256, *s = ws + (size_t)g * blocks * 64;
        const uint16_t *sup = wsup + (size_t)g * supers * 2 * QGROUP;
        switch (m) {
        case 4: qgemm_micro_k(4, 1, x, i0, q, s, sup, out + g * QGROUP, ldo); break;
        case 3: qgemm_micro_k(3, 1, x, i0, q, s, sup, out + g * QGROUP, ldo); break;
        default: qgemm_micro_k(2, 1, x, i0, q, s, sup, out + g * QGROUP, ldo); break;
        }
    }
}

static void qgemm_tile_vnni(enum quant_type qt, int m, int ng, const struct qinput *x, int i0, const uint8_t *wq,
                            const uint8_t *ws, const uint16_t *wsup, float *out, size_t ldo) {
    if (qt == QUANT_Q8_0) { QGEMM_CASES(QUANT_Q8_0) }
    else if (qt == QUANT_Q4_0) { QGEMM_CASES(QUANT_Q4_0) }
    else qgemm_k(m, ng, x, i0, wq, ws, wsup, out, ldo);
}
#pragma GCC pop_options

/* AVX-512 without VNNI (Skylake-X): the AVX2 tile, same layout. */
static void qgemm_tile_avx512(enum quant_type qt, int m, int ng, const struct qinput *x, int i0, const uint8_t *wq,
                              const uint8_t *ws, const uint16_t *wsup, float *out, size_t ldo) {
    if (__builtin_cpu_supports("avx512vnni")) qgemm_tile_vnni(qt, m, ng, x, i0, wq, ws, wsup, out, ldo);
    else isa_avx2.qgemm_tile(qt, m, ng, x, i0, wq, ws, wsup, out, ldo);
}

/* ---- probe: 12 independent FMA chains, more than latency x pipes ---- */

static double fma_probe_avx512(long iters) {
    __m512 a[12];
    UNROLL for (int j = 0; j < 12; j++) a[j] = _mm512_set1_ps(1.0f + j * 1e-3f);
    const __m512 b = _mm512_set1_ps(0.999999f), c = _mm512_set1_ps(1e-7f);
    for (long i = 0; i < iters; i++) {
        UNROLL for (int j = 0; j < 12; j++) a[j] = _mm512_fmadd_ps(a[j], b, c);
        __asm__ volatile("" : "+v"(a[0]), "+v"(a[1]), "+v"(a[2]), "+v"(a[3]), "+v"(a[4]), "+v"(a[5]),
                              "+v"(a[6]), "+v"(a[7]), "+v"(a[8]), "+v"(a[9]), "+v"(a[10]), "+v"(a[11]));
    }
    __m512 s = a[0];
    UNROLL for (int j = 1; j < 12; j++) s = _mm512_add_ps(s, a[j]);
    volatile float sink = _mm512_reduce_add_ps(s);
    (void)sink;
    return 2.0 * 16 * 12 * (double)iters;
}

static uint64_t read_probe_avx512(const void *p, size_t bytes) {
    const __m512i *v = p;
    __m512i a[4] = { _mm512_setzero_si512(), _mm512_setzero_si512(), _mm512_setzero_si512(), _mm512_setzero_si512() };
    for (size_t i = 0; i < bytes / 64; i += 4)
        UNROLL for (int j = 0; j < 4; j++) a[j] = _mm512_xor_si512(a[j], _mm512_load_si512(v + i + j));
    __m512i x = _mm512_xor_si512(_mm512_xor_si512(a[0], a[1]), _mm512_xor_si512(a[2], a[3]));
    uint64_t out[8];
    _mm512_storeu_si512(out, x);
    return out[0] ^ out[1] ^ out[2] ^ out[3] ^ out[4] ^ out[5] ^ out[6] ^ out[7];
}

static int cpu_has_avx512(void) {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
           __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq") &&
           __builtin_cpu_supports("fma") && __builtin_cpu_supports("f16c");
}

const struct isa isa_avx512 = {
    .name = "avx512",
    .cpu_has = cpu_has_avx512,
    .mr = 4, .nr_max = NR, .nr_gemv = NR1,
    .gemm_tile = gemm_tile_avx512,
    .qmr = QMR, .qng = QNG, .qng_gemv = QNG1,
    .x_quantize = x_quantize_avx512,
    .qgemm_tile = qgemm_tile_avx512,
    .dot = dot_avx512,
    .axpy = axpy_avx512,
    .scale = scale_avx512,
    .exp_sum = exp_sum_avx512,
    .swiglu = swiglu_avx512,
    .attn_hd_ok = attn_hd_ok_avx512,
    .attn_rows = attn_rows_avx512,
    .attn_blocks = attn_blocks_avx512,
    .fma_probe = fma_probe_avx512,
    .read_probe = read_probe_avx512,
};

/* ---- AVX512_BF16: BF16 weights through vdpbf16ps ----
 * Everything as above, except the matrix tile for BF16 weights: the input
 * is split once per product into BF16 pairs hi + lo (isa.h), and each step
 * of 32 columns is 6 weight loads used as they are, 2 input loads per
 * input row, and 2 vdpbf16ps per (input, weight row): no conversion
 * instruction competes with the multiply-adds. */
#pragma GCC push_options
#pragma GCC target("avx512bf16")

static size_t x_prepared_stride_bf16(int cols) {
    return (size_t)(cols + 31) / 32 * 32;     /* 16 hi pairs + 16 lo pairs per 32 columns */
}

/* The float32 values of the 32 BF16 numbers of h: lanes 0-15 and 16-31. */
INLINE __m512 bf16_low_ps(__m512bh h) {
    return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(_mm512_castsi512_si256((__m512i)h)), 16));
}
INLINE __m512 bf16_high_ps(__m512bh h) {
    return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(_mm512_extracti64x4_epi64((__m512i)h, 1)), 16));
}

INLINE __mmask16 first16(int n) { return n >= 16 ? 0xffff : n <= 0 ? 0 : (__mmask16)((1u << n) - 1); }

static void x_prepare_bf16(const float *x, int n, int cols, uint32_t *xp) {
    const size_t stride = x_prepared_stride_bf16(cols), half = stride / 2;
    for (int i = 0; i < n; i++) {
        const float *xi = x + (size_t)i * cols;
        uint32_t *hi = xp + (size_t)i * stride, *lo = hi + half;
        for (int c = 0; c < cols; c += 32) {          /* columns past the end read as 0 */
            __m512 a = _mm512_maskz_loadu_ps(first16(cols - c), xi + c);
            __m512 b = _mm512_maskz_loadu_ps(first16(cols - c - 16), xi + c + 16);
            __m512bh h = _mm512_cvtne2ps_pbh(b, a);   /* rounded to nearest: |x - hi| <= 2^-9 |x| */
            __m512bh l = _mm512_cvtne2ps_pbh(_mm512_sub_ps(b, bf16_high_ps(h)), _mm512_sub_ps(a, bf16_low_ps(h)));
            _mm512_storeu_si512(hi + c / 2, (__m512i)h);
            _mm512_storeu_si512(lo + c / 2, (__m512i)l);
        }
    }
}

INLINE void gemm_micro_bf16x(const int M, int nr, int kc, const uint32_t *xp, size_t ldxp,
                             const uint16_t *w, size_t ldw, float *out, size_t ldo, int accumulate) {
    const uint16_t *wr[NR];
    UNROLL for (int r = 0; r < NR; r++) wr[r] = w + (size_t)(r < nr ? r : 0) * ldw;
    const size_t lo = ldxp / 2;
    __m512 acc[4][NR];
    UNROLL for (int i = 0; i < M; i++)
        UNROLL for (int r = 0; r < NR; r++) acc[i][r] = _mm512_setzero_ps();
    int c = 0;
    for (; c + 32 <= kc; c += 32) {
        __m512bh wv[NR];
        UNROLL for (int r = 0; r < NR; r++) wv[r] = (__m512bh)_mm512_loadu_si512(wr[r] + c);
        UNROLL for (int i = 0; i < M; i++) {
            const uint32_t *xi = xp + (size_t)i * ldxp + c / 2;
            __m512bh xh = (__m512bh)_mm512_loadu_si512(xi), xl = (__m512bh)_mm512_loadu_si512(xi + lo);
            UNROLL for (int r = 0; r < NR; r++) {
                acc[i][r] = _mm512_dpbf16_ps(acc[i][r], xh, wv[r]);
                acc[i][r] = _mm512_dpbf16_ps(acc[i][r], xl, wv[r]);
            }
        }
    }
    if (c < kc) {                           /* ragged end: weights masked, inputs padded with 0 */
        const __mmask32 kw = (__mmask32)((1ull << (kc - c)) - 1);
        const __mmask16 kx = first16((kc - c + 1) / 2);
        __m512bh wv[NR];
        UNROLL for (int r = 0; r < NR; r++) wv[r] = (__m512bh)_mm512_maskz_loadu_epi16(kw, wr[r] + c);
        UNROLL for (int i = 0; i < M; i++) {
            const uint32_t *xi = xp + (size_t)i * ldxp + c / 2;
            __m512bh xh = (__m512bh)_mm512_maskz_loadu_epi32(kx, xi);
            __m512bh xl = (__m512bh)_mm512_maskz_loadu_epi32(kx, xi + lo);
            UNROLL for (int r = 0; r < NR; r++) {
                acc[i][r] = _mm512_dpbf16_ps(acc[i][r], xh, wv[r]);
                acc[i][r] = _mm512_dpbf16_ps(acc[i][r], xl, wv[r]);
            }
        }
    }
    UNROLL for (int i = 0; i < M; i++) {
        float s[8];
        _mm_storeu_ps(s, hsum4(acc[i][0], acc[i][1], acc[i][2], acc[i][3]));
        _mm_storeu_ps(s + 4, hsum4(acc[i][4], acc[i][5], acc[i][4], acc[i][5]));
        float *o = out + (size_t)i * ldo;
        for (int r = 0; r < nr; r++) o[r] = accumulate ? o[r] + s[r] : s[r];
    }
}

static void gemm_tile_bf16x(int m, int nr, int kc, const uint32_t *xp, size_t ldxp,
                            const uint16_t *w, size_t ldw, float *out, size_t ldo, int accumulate) {
    switch (m) {
    case 1: gemm_micro_bf16x(1, nr, kc, xp, ldxp, w, ldw, out, ldo, accumulate); break;
    case 2: gemm_micro_bf16x(2, nr, kc, xp, ldxp, w, ldw, out, ldo, accumulate); break;
    case 3: gemm_micro_bf16x(3, nr, kc, xp, ldxp, w, ldw, out, ldo, accumulate); break;
    default: gemm_micro_bf16x(4, nr, kc, xp, ldxp, w, ldw, out, ldo, accumulate); break;
    }
}

static int cpu_has_avx512bf16(void) {
    return cpu_has_avx512() && __builtin_cpu_supports("avx512bf16");
}

const struct isa isa_avx512bf16 = {
    .name = "avx512bf16",
    .cpu_has = cpu_has_avx512bf16,
    .mr = 4, .nr_max = NR, .nr_gemv = NR,
    .gemm_tile = gemm_tile_avx512,
    .x_prepared_stride = x_prepared_stride_bf16,
    .x_prepare = x_prepare_bf16,
    .gemm_tile_bf16x = gemm_tile_bf16x,
    .qmr = QMR, .qng = QNG, .qng_gemv = QNG1,
    .x_quantize = x_quantize_avx512,
    .qgemm_tile = qgemm_tile_avx512,
    .dot = dot_avx512,
    .axpy = axpy_avx512,
    .scale = scale_avx512,
    .exp_sum = exp_sum_avx512,
    .swiglu = swiglu_avx512,
    .attn_hd_ok = attn_hd_ok_avx512,
    .attn_rows = attn_rows_avx512,
    .attn_blocks = attn_blocks_avx512,
    .fma_probe = fma_probe_avx512,
    .read_probe = read_probe_avx512,
};
#pragma GCC pop_options
#endif
