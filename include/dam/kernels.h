/* kernels.h — the CPU math the forward pass is built from.
 * All activations are float32; weights arrive as struct tensor in their
 * stored dtype (F32, F16, BF16) and are converted in registers, never
 * expanded in memory.
 *
 * Hot loops have variants side by side (src/kernels/isa_*.c): AVX-512
 * (float32 FMAs; a sub-variant with AVX512_BF16 dot products), AVX2+FMA and
 * portable C. The preferred one the CPU runs is chosen at the first call
 * ($DAM_ISA=avx512|avx512bf16|avx2|portable overrides); the portable one is
 * the reference the tests compare the others with. */
#ifndef DAM_KERNELS_H
#define DAM_KERNELS_H

#include <stddef.h>
#include <stdint.h>
#include "dam/model.h"

/* Scalar conversions (exact: bf16/f16 -> f32 are lossless). */
static inline float bf16_to_f32(uint16_t h) {
    union { uint32_t u; float f; } v = { .u = (uint32_t)h << 16 };
    return v.f;
}
float f16_to_f32(uint16_t h);
uint16_t f32_to_bf16(float f);   /* round to nearest even */
uint16_t f32_to_f16(float f);    /* round to nearest even */

/* Element i of a KV cache of element type kt (quant.h: float32, F16 or
 * BF16): kv_put stores x (16-bit types rounded to nearest even), kv_get
 * reads it back as float32 (exact). */
static inline void kv_put(enum kv_type kt, void *p, size_t i, float x) {
    if (kt == KV_F32) ((float *)p)[i] = x;
    else ((uint16_t *)p)[i] = kt == KV_BF16 ? f32_to_bf16(x) : f32_to_f16(x);
}
static inline float kv_get(enum kv_type kt, const void *p, size_t i) {
    if (kt == KV_F32) return ((const float *)p)[i];
    const uint16_t h = ((const uint16_t *)p)[i];
    return kt == KV_BF16 ? bf16_to_f32(h) : f16_to_f32(h);
}
/* n elements of type kt from p into dst as float32 (exact; vector
 * conversions where the build has them). */
void kv_row_f32(enum kv_type kt, const void *p, int n, float *dst);

/* Converts row `row` of w to float32 into dst (w->cols floats). */
void tensor_row_f32(const struct tensor *w, int row, float *dst);

/* ---- kernel variants ---- */

/* The variant in use: "avx512", "avx512bf16", "avx2" or "portable". */
const char *kernels_isa(void);
/* Switches variant; -1 + dam_fail when unknown or the CPU lacks it. */
int kernels_set_isa(const char *name);
/* Variants this CPU runs, preferred first, space-separated. */
const char *kernels_isa_available(void);
/* Machine probes for dam bench. Runs iters rounds of independent
 * register-only FMAs of the current variant on the calling thread; returns
 * the float operations done. */
double kernels_fma_probe(long iters);
/* Reads bytes at p (64-byte aligned, a multiple of 256) with the current
 * variant's widest loads; returns a fold of the data. */
uint64_t kernels_read_probe(const void *p, size_t bytes);

/* ---- matrix products ---- */

/* out (n, w->rows) = x (n, w->cols) · wᵀ. Parallel over output rows (the
 * pool of threads.h), so each weight byte is read once per call whatever n;
 * inputs are blocked so the part in use stays in cache. A quantized w
 * (quant.h) multiplies x quantized to int8 blocks. 0, or -1 + dam_fail
 * (out of memory for the quantized input; unquantized weights never fail). */
int matmul(float *out, const float *x, const struct tensor *w, int n);
/* count products that share the input x (q, k, v or gate, up) in one
 * parallel pass: out[i] (n, w[i]->rows) = x · w[i]ᵀ. */
int matmul_batch(int count, float *const out[], const float *x, const struct tensor *const w[], int n);

/* The int8 form of n rows of cols floats that quantized matrices multiply
 * (quant.h; the buffers of x sized for n rows, x->r NULL or not). */
void kernels_quantize_input(const float *x, int n, int cols, const struct qinput *out);

/* out (n, dim) = x / rms(x) * weight, per row. out may alias x. */
void rmsnorm(float *out, const float *x, const float *weight, int n, int dim, float eps);

/* In-place softmax over n values; stable (subtracts the max). */
void softmax(float *x, int n);

/* dot product of two float32 vectors (current variant) */
float dot_f32(const float *a, const float *b, int n);

/* Rotary embedding, Hugging Face rotate_half layout: within each head the
 * pair is (i, i + head_dim/2). inv_freq has head_dim/2 entries.
 * x is (n, n_heads, head_dim) for positions pos0 .. pos0+n-1. */
void rope_apply(float *x, int n, int n_heads, int head_dim, int pos0, const float *inv_freq);
/* The same in two steps, so the sines and cosines of a chunk are computed
 * once for q, k and every layer: cs, sn (n, head_dim/2). */
void rope_table(float *cs, float *sn, int n, int head_dim, int pos0, const float *inv_freq);
void rope_apply_table(float *x, int n, int n_heads, int head_dim, const float *cs, const float *sn);

/* y (n) += a * x, and y (n) *= a (current variant) */
void axpy_f32(float *y, float a, const float *x, int n);
void scale_f32(float *y, float a, int n);
/* SwiGLU in place: gate[i] = silu(gate[i]) * up[i] for i < n. */
void swiglu_f32(float *gate, const float *up, int n);
/* x[i] = exp(x[i] - shift) for i < n; returns the sum of the new values. */
float exp_sum_f32(float *x, int n, float shift);

/* ---- attention over a blocked KV cache ----
 * One layer's cache, laid out for streaming reads, in elements of type kt
 * (float32, or F16 / BF16: half the bytes, stored rounded to nearest even
 * and converted back to float32 in registers), per KV head:
 *   keys   (n_kv_heads, cap / KV_BLOCK, head_dim, KV_BLOCK): blocks of
 *          KV_BLOCK positions, each transposed, so one vector load gives one
 *          dimension of KV_BLOCK consecutive keys (scores need no shuffles);
 *   values (n_kv_heads, cap, head_dim): one row per position.
 * cap (positions the cache can hold) is a multiple of KV_BLOCK. */
#define KV_BLOCK 16

/* Stores positions pos0 .. pos0+n-1 of k, v (n, n_kv_heads, head_dim). */
void kv_blocked_store(void *k_cache, void *v_cache, enum kv_type kt, int cap, int n_kv_heads, int head_dim,
                      int pos0, int n, const float *k, const float *v);
/* Exact causal softmax attention of n queries at positions pos0 .. pos0+n-1
 * (q, out: (n, n_heads, head_dim)) over positions [0, pos0 + n) of the cache
 * (already holding this chunk). Flash-style: tiles of queries x keys with
 * an online softmax, so the score matrix never exists in full. Query head h
 * reads KV head h / (n_heads / n_kv_heads). Parallel (threads.h): over (KV head,
 * query tile) for a chunk, over (KV head, key range) for one token.
 * 0, or -1 + dam_fail when out of memory for its scratch. */
int attention_blocked(float *out, const float *q, int n, int pos0, int n_heads, int n_kv_heads,
                      int head_dim, const void *k_cache, const void *v_cache, enum kv_type kt, int cap);

/* ---- attention over a list of key blocks (the sparse modules) ----
 * A kv_block is KV_BLOCK consecutive positions starting at pos: keys
 * transposed (head_dim, KV_BLOCK) at k, values (KV_BLOCK, head_dim) at v,
 * the layout of one page of the sparse modules' KV store, in elements of
 * the store's type (float32, or F16 / BF16 converted to float32 in
 * registers, as in the blocked cache above). Any set of blocks, in any
 * memory order, is attended exactly as if its keys were contiguous, so a
 * kept (query, key) pair costs what a dense pair costs. */
struct kv_block {
    const void *k;         /* (head_dim, KV_BLOCK) */
    const void *v;         /* (KV_BLOCK, head_dim) */
    int pos;               /* position of lane 0 */
};

/* Exact softmax attention of `rows` query rows (row r: q + r * q_stride,
 * head_dim floats, at position last[r]) over the keys of nb blocks of
 * element type kt, each row seeing only positions <= last[r]. Output row r
 * at out + r * out_stride. Every row must see at least one key. Runs on the
 * calling thread. */
void attention_blocks(float *out, size_t out_stride, const float *q, size_t q_stride, int rows,
                      const int *last, int head_dim, const struct kv_block *blocks, int nb, enum kv_type kt);

/* Quest's upper bound of q . k over the keys of a block, from the block's
 * per-dimension key maximum and minimum: sum_d max(q_d kmax_d, q_d kmin_d)
 * = q+ . kmax + q- . kmin with q+ = max(q, 0), q- = min(q, 0). qpm holds
 * (q+, q-) (2 * head_dim floats; sums of several rows' q+ and q- give the
 * sum of their bounds). The summaries of 16 consecutive blocks are stored
 * transposed, like the keys of a block: group g = b / 16 is (2 * head_dim,
 * 16) at sums + g * 2 * head_dim * 16, row d < head_dim the kmax of
 * dimension d, row head_dim + d its kmin, lane b % 16 the block; so one
 * vector multiply-add per dimension bounds 16 blocks. out[b - b0] = bound
 * of block b for b0 <= b < b1 (every block of a group touched must have a
 * summary row, filled or not). */
#define BOUND_GROUP 16
void block_bounds(float *out, const float *qpm, int head_dim, const float *sums, int b0, int b1);

/* One query row q (head_dim) against keys k[0..n_keys) and values
 * v[0..n_keys) stored flat, kv_stride floats from one position to the next
 * (what attn_row_dense in attn.h runs): scores in blocks of 64 keys, online
 * softmax across blocks, so any length needs O(64) scratch. */
void attention_row_strided(const float *q, const float *k, const float *v, int n_keys,
                           int kv_stride, int head_dim, float scale, float *out);

/* inv_freq (head_dim/2) from the config's rope_theta and rope scaling. */
void rope_inv_freq(const struct model_config *cfg, float *inv_freq);

#endif
