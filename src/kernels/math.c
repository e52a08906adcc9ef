/* math.c — dense float32 kernels of the forward pass: dot, matmul, rmsnorm,
 * softmax, rotary embedding. */
#include "dam/kernels.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <omp.h>
#if defined(__AVX2__) || defined(__AVX512F__)
#include <immintrin.h>
#endif

/* ---- dot product: several accumulators so the FMA latency is hidden ---- */

float dot_f32(const float *a, const float *b, int n) {
    int i = 0;
#if defined(__AVX512F__)
    __m512 s0 = _mm512_setzero_ps(), s1 = _mm512_setzero_ps();
    for (; i + 32 <= n; i += 32) {
        s0 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i), s0);
        s1 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i + 16), _mm512_loadu_ps(b + i + 16), s1);
    }
    for (; i + 16 <= n; i += 16)
        s0 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i), s0);
    float sum = _mm512_reduce_add_ps(_mm512_add_ps(s0, s1));
#elif defined(__AVX2__) && defined(__FMA__)
    __m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps();
    for (; i + 16 <= n; i += 16) {
        s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), s0);
        s1 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 8), _mm256_loadu_ps(b + i + 8), s1);
    }
    __m256 s = _mm256_add_ps(s0, s1);
    __m128 h = _mm_add_ps(_mm256_castps256_ps128(s), _mm256_extractf128_ps(s, 1));
    h = _mm_hadd_ps(h, h); h = _mm_hadd_ps(h, h);
    float sum = _mm_cvtss_f32(h);
#else
    float acc[8] = {0};
    for (; i + 8 <= n; i += 8)
        for (int j = 0; j < 8; j++) acc[j] += a[i + j] * b[i + j];
    float sum = ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
#endif
    for (; i < n; i++) sum += a[i] * b[i];
    return sum;
}

/* ---- matmul ----
 * out (n, rows) = x (n, cols) · wᵀ. Threads split the output rows into tiles of
 * TILE_ROWS; each thread converts its weight tile to float32 once and applies
 * it to all n input rows, so a weight byte is read once per call. */

#define TILE_ROWS 16

void matmul(float *out, const float *x, const struct tensor *w, int n) {
    const int rows = w->rows, cols = w->cols;
    const int n_tiles = (rows + TILE_ROWS - 1) / TILE_ROWS;
    #pragma omp parallel
    {
        float *tile = NULL;
        if (w->dtype != DT_F32) tile = malloc((size_t)TILE_ROWS * cols * sizeof(float));
        #pragma omp for schedule(static)
        for (int t = 0; t < n_tiles; t++) {
            int r0 = t * TILE_ROWS;
            int nr = rows - r0 < TILE_ROWS ? rows - r0 : TILE_ROWS;
            const float *wt;
            if (w->dtype == DT_F32) {
                wt = (const float *)w->data + (size_t)r0 * cols;
            } else {
                for (int r = 0; r < nr; r++) tensor_row_f32(w, r0 + r, tile + (size_t)r * cols);
                wt = tile;
            }
            for (int i = 0; i < n; i++) {
                const float *xi = x + (size_t)i * cols;
                float *oi = out + (size_t)i * rows + r0;
                for (int r = 0; r < nr; r++) oi[r] = dot_f32(xi, wt + (size_t)r * cols, cols);
            }
        }
        free(tile);
    }
}

/* ---- normalisation and softmax ---- */

void rmsnorm(float *out, const float *x, const float *weight, int n, int dim, float eps) {
    for (int i = 0; i < n; i++) {
        const float *xi = x + (size_t)i * dim;
        float *oi = out + (size_t)i * dim;
        double ss = 0;                       /* double: exact enough for any dim */
        for (int j = 0; j < dim; j++) ss += (double)xi[j] * xi[j];
        float inv = (float)(1.0 / sqrt(ss / dim + eps));
        for (int j = 0; j < dim; j++) oi[j] = weight[j] * (xi[j] * inv);
    }
}

void softmax(float *x, int n) {
    float max = x[0];
    for (int i = 1; i < n; i++) if (x[i] > max) max = x[i];
    double sum = 0;
    for (int i = 0; i < n; i++) { x[i] = expf(x[i] - max); sum += x[i]; }
    float inv = (float)(1.0 / sum);
    for (int i = 0; i < n; i++) x[i] *= inv;
}

/* ---- rotary position embedding ---- */

void rope_inv_freq(const struct model_config *cfg, float *inv_freq) {
    const int half = cfg->head_dim / 2;
    for (int i = 0; i < half; i++) {
        /* as transformers: base ** (2i / d) in float32, then its reciprocal */
        float f = (float)(1.0 / pow(cfg->rope_theta, (double)(2 * i) / cfg->head_dim));
        if (cfg->rope_kind == ROPE_LINEAR) {
            f /= cfg->rope_factor;
        } else if (cfg->rope_kind == ROPE_LLAMA3) {
            /* Llama 3.1 scaling: long wavelengths slowed by `factor`, short ones
             * kept, a smooth blend in between. */
            double old_len = cfg->rope_original_max_pos;
            double low_wavelen = old_len / cfg->rope_low_freq_factor;
            double high_wavelen = old_len / cfg->rope_high_freq_factor;
            double wavelen = 2 * M_PI / f;
            if (wavelen > low_wavelen) {
                f = f / cfg->rope_factor;
            } else if (wavelen >= high_wavelen) {
                double smooth = (old_len / wavelen - cfg->rope_low_freq_factor) /
                                (cfg->rope_high_freq_factor - cfg->rope_low_freq_factor);
                f = (float)((1 - smooth) * f / cfg->rope_factor + smooth * f);
            }
        }
        inv_freq[i] = f;
    }
}

void rope_apply(float *x, int n, int n_heads, int head_dim, int pos0, const float *inv_freq) {
    const int half = head_dim / 2;
    for (int t = 0; t < n; t++) {
        float cs[512], sn[512];              /* head_dim <= 1024 (checked at load) */
        for (int i = 0; i < half; i++) {
            float angle = (float)(pos0 + t) * inv_freq[i];  /* float32 product, as transformers */
            cs[i] = (float)cos((double)angle);
            sn[i] = (float)sin((double)angle);
        }
        for (int h = 0; h < n_heads; h++) {
            float *v = x + ((size_t)t * n_heads + h) * head_dim;
            for (int i = 0; i < half; i++) {
                float a = v[i], b = v[i + half];
                v[i] = a * cs[i] - b * sn[i];
                v[i + half] = b * cs[i] + a * sn[i];
            }
        }
    }
}
