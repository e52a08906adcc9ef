/* kernels.h — the CPU math the forward pass is built from.
 * All activations are float32; weights arrive as struct tensor in their
 * stored dtype (F32, F16, BF16) and are converted in registers/small tiles. */
#ifndef DAM_KERNELS_H
#define DAM_KERNELS_H

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

/* Converts row `row` of w to float32 into dst (w->cols floats). */
void tensor_row_f32(const struct tensor *w, int row, float *dst);

/* out (n, w->rows) = x (n, w->cols) · wᵀ. OpenMP-parallel over output rows;
 * weights are converted tile by tile, each tile reused for all n inputs. */
void matmul(float *out, const float *x, const struct tensor *w, int n);

/* out (n, dim) = x / rms(x) * weight, per row. out may alias x. */
void rmsnorm(float *out, const float *x, const float *weight, int n, int dim, float eps);

/* In-place softmax over n values; stable (subtracts the max). */
void softmax(float *x, int n);

/* dot product of two float32 vectors */
float dot_f32(const float *a, const float *b, int n);

/* Rotary embedding, Hugging Face rotate_half layout: within each head the
 * pair is (i, i + head_dim/2). inv_freq has head_dim/2 entries.
 * x is (n, n_heads, head_dim) for positions pos0 .. pos0+n-1. */
void rope_apply(float *x, int n, int n_heads, int head_dim, int pos0, const float *inv_freq);

/* inv_freq (head_dim/2) from the config's rope_theta and rope scaling. */
void rope_inv_freq(const struct model_config *cfg, float *inv_freq);

#endif
