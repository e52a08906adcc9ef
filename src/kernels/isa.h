/* isa.h — the table of micro-kernels one instruction set provides.
 *
 * The kernels are split in two layers:
 *   - drivers (matmul.c, attention.c, math.c) decide how work is cut into
 *     tiles and spread over OpenMP threads; they are plain C and shared;
 *   - micro-kernels (isa_avx512.c, isa_avx2.c, isa_portable.c) compute one
 *     tile with the registers of one instruction set. They never start
 *     threads, so each ISA file can be compiled for its own target.
 * Each ISA file fills one `struct isa`; isa.c picks the best one the CPU
 * runs (or the one $DAM_ISA / kernels_set_isa() names) at startup. The
 * portable variant is plain C, always built, and the tests run it too. */
#ifndef DAM_KERNELS_ISA_H
#define DAM_KERNELS_ISA_H

#include <stddef.h>
#include <stdint.h>
#include "dam/quant.h"
#include "dam/safetensors.h"

struct kv_block;

/* Most rows / tokens a gemm tile ever covers (buffers in drivers use these). */
#define ISA_MAX_MR 8
#define ISA_MAX_NR 8
/* Quantized tiles: at most this many inputs and row groups (of QGROUP rows). */
#define ISA_MAX_QMR 4
#define ISA_MAX_QNG 4
/* Attention tiles: at most this many query rows per attn_rows call. */
#define ISA_ATTN_MAX_ROWS 32

struct isa {
    const char *name;              /* "avx512", "avx2", "portable" */
    int (*cpu_has)(void);          /* does this CPU run it? */

    /* ---- matrix products ----
     * gemm_tile: for i < m, r < nr:
     *     out[i * ldo + r] (+)= sum_{c < kc} x[i * ldx + c] * w[r * ldw + c]
     * with w in its stored dtype (F32, F16 or BF16; ldw in elements); m <= mr,
     * nr <= nr_max. accumulate = 0 overwrites out, 1 adds to it. This is the
     * dot-product form: both operands are read along their contiguous
     * dimension, the weight converted in registers, no packing needed. */
    int mr, nr_max;
    int nr_gemv;           /* rows per tile when m == 1 (decode): gemm_tile takes nr <= nr_gemv then */
    void (*gemm_tile)(enum dtype dt, int m, int nr, int kc, const float *x, size_t ldx,
                      const void *w, size_t ldw, float *out, size_t ldo, int accumulate);

    /* Optional (NULL when absent): BF16 weights times an input prepared by
     * x_prepare, which splits every float32 x into two BF16 numbers, x = hi
     * + lo to within 2^-17 relative. A product of two BF16 numbers is exact
     * in float32, so BF16 dot-product instructions (vdpbf16ps: 32
     * multiply-adds per instruction, twice an FMA's) applied to hi and lo
     * keep nearly float32 accuracy while the weights are used exactly as
     * stored, with no conversion instructions at all.
     * Prepared row i: x_prepared_stride(cols) uint32; the first half holds
     * the hi pairs (x[2j], x[2j+1]) as BF16, the second half the lo pairs.
      * gemm_tile_bf16x: as gemm_tile with xp pointing at the hi pair of
     * column c0 (c0 even) in the first of m prepared rows, ldxp their stride. */
    size_t (*x_prepared_stride)(int cols);
    void (*x_prepare)(const float *x, int n, int cols, uint32_t *xp);
    void (*gemm_tile_bf16x)(int m, int nr, int kc, const uint32_t *xp, size_t ldxp,
                            const uint16_t *w, size_t ldw, float *out, size_t ldo, int accumulate);

    /* ---- quantized weights (layouts in include/dam/quant.h) ----
     * x_quantize: n rows of cols floats into the int8 blocks of x (whose
     * buffers hold n * ldq bytes, n * blocks scales and sums, 2n * blocks
     * half sums; ldq = blocks * QBLOCK; and, when x->r is set, the second
     * bytes and their sums). Every variant rounds the same way (to nearest
     * even, t = x * (127 / max |x|), then (t - q) * QRES), so all give the
     * same bytes. q8_0 weights need x->r.
     * qgemm_tile: inputs i0 .. i0+m-1 of x times row groups g0 .. g0+ng-1,
     * every block (quant.h gives the sums):
     *   out[i * ldo + 16 g + r] = sum_c w[16 (g0 + g) + r, c] x[i0 + i, c]
     * with wq, ws, wsup pointing at group g0's first tile, its scales and
     * (q4_k) its supers; m <= qmr, ng <= qng (m == 1: ng <= qng_gemv). */
    int qmr, qng, qng_gemv;
    void (*x_quantize)(const float *x, int n, int cols, const struct qinput *out);
    void (*qgemm_tile)(enum quant_type qt, int m, int ng, const struct qinput *x, int i0, const uint8_t *wq,
                       const uint8_t *ws, const uint16_t *wsup, float *out, size_t ldo);

    /* ---- vectors ---- */
    float (*dot)(const float *a, const float *b, int n);
    void (*axpy)(float *y, float a, const float *x, int n);       /* y += a * x */
    void (*scale)(float *y, float a, int n);                      /* y *= a */
    /* x[i] = exp(x[i] - shift) in place; returns the sum of the results */
    float (*exp_sum)(float *x, int n, float shift);
    /* gate[i] = silu(gate[i]) * up[i], silu(g) = g / (1 + e^-g) */
    void (*swiglu)(float *gate, const float *up, int n);

    /* ---- attention (see attention.c for the layout) ----
     * Online-softmax attention of `rows` query rows q (rows, hd), already
     * multiplied by scale * log2(e), against the keys [k0, k1) of one KV
     * head: kb holds the keys in blocks of KV_BLOCK positions, each block
     * transposed (head_dim, KV_BLOCK); v holds the values (pos, head_dim);
     * both of element type kt (float32, or F16 / BF16 converted exactly to
     * float32 in registers).
     * Row r sees only keys j <= last[r]. Running state per row: m[r] the
     * maximum score so far (log2 units, -inf before any key), l[r] the sum
     * of 2^(s - m), o (rows, hd) the unnormalised output. k0 is a multiple
     * of KV_BLOCK. attn_hd_ok(hd) says whether this ISA handles head_dim hd
     * (otherwise the portable kernel runs). */
    int (*attn_hd_ok)(int hd);
    void (*attn_rows)(enum kv_type kt, int rows, int hd, const float *q, const int *last, const void *kb,
                      const void *v, int k0, int k1, float *m, float *l, float *o);

    /* The same online softmax over a list of key blocks (struct kv_block in
     * kernels.h: arbitrary addresses, positions): row r sees the lanes of
     * block b whose position pos + j <= last[r]. Blocks' keys and values
     * follow the page layout (keys transposed per block, values by row),
     * of element type kt like attn_rows. */
    void (*attn_blocks)(enum kv_type kt, int rows, int hd, const float *q, const int *last,
                        const struct kv_block *blk, int nb, float *m, float *l, float *o);

    /* ---- machine probes (dam bench) ----
     * Runs iters rounds of independent FMAs on registers only; returns the
     * floating-point operations done (2 per lane per FMA). */
    double (*fma_probe)(long iters);
    /* Reads bytes (a multiple of 256) at p with the widest loads, four
     * independent streams of XOR; returns the fold (so the loads stay). */
    uint64_t (*read_probe)(const void *p, size_t bytes);
};

extern const struct isa isa_portable;
#if defined(__x86_64__)
extern const struct isa isa_avx2;
extern const struct isa isa_avx512;
extern const struct isa isa_avx512bf16;
#endif

/* The ISA in use (chosen once, thread-safe). */
const struct isa *isa_current(void);

#endif
