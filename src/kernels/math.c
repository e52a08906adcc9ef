/* math.c — the small float32 kernels of the forward pass: rmsnorm,
 * softmax, rotary embedding, and the entry points of the vector helpers.
 * They touch activations only (a few KB per token), so plain C is enough. */
#include "isa.h"
#include "dam/kernels.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ---- vector helpers: the current variant's ---- */

float dot_f32(const float *a, const float *b, int n) { return isa_current()->dot(a, b, n); }
void axpy_f32(float *y, float a, const float *x, int n) { isa_current()->axpy(y, a, x, n); }
void scale_f32(float *y, float a, int n) { isa_current()->scale(y, a, n); }
float exp_sum_f32(float *x, int n, float shift) { return isa_current()->exp_sum(x, n, shift); }
void swiglu_f32(float *gate, const float *up, int n) { isa_current()->swiglu(gate, up, n); }
void kernels_quantize_input(const float *x, int n, int cols, const struct qinput *out) {
    isa_current()->x_quantize(x, n, cols, out);
}
double kernels_fma_probe(long iters) { return isa_current()->fma_probe(iters); }
uint64_t kernels_read_probe(const void *p, size_t bytes) { return isa_current()->read_probe(p, bytes); }

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

void rope_table(float *cs, float *sn, int n, int head_dim, int pos0, const float *inv_freq) {
    const int half = head_dim / 2;
    for (int t = 0; t < n; t++)
        for (int i = 0; i < half; i++) {
            float angle = (float)(pos0 + t) * inv_freq[i];  /* float32 product, as transformers */
            cs[(size_t)t * half + i] = (float)cos((double)angle);
            sn[(size_t)t * half + i] = (float)sin((double)angle);
        }
}

void rope_apply_table(float *x, int n, int n_heads, int head_dim, const float *cs, const float *sn) {
    const int half = head_dim / 2;
    for (int t = 0; t < n; t++) {
        const float *c = cs + (size_t)t * half, *s = sn + (size_t)t * half;
        for (int h = 0; h < n_heads; h++) {
            float *v = x + ((size_t)t * n_heads + h) * head_dim;
            for (int i = 0; i < half; i++) {
                float a = v[i], b = v[i + half];
                v[i] = a * c[i] - b * s[i];
                v[i + half] = b * c[i] + a * s[i];
            }
        }
    }
}

void rope_apply(float *x, int n, int n_heads, int head_dim, int pos0, const float *inv_freq) {
    for (int t = 0; t < n; t++) {
        float cs[512], sn[512];              /* head_dim <= 1024 (checked at load) */
        rope_table(cs, sn, 1, head_dim, pos0 + t, inv_freq);
        rope_apply_table(x + (size_t)t * n_heads * head_dim, 1, n_heads, head_dim, cs, sn);
    }
}
