/* registry.c — the table of attention modules, and what they share:
 * default options and the dense causal row kernel. */
#include "dam/attn.h"
#include "dam/kernels.h"
#include <math.h>
#include <stdio.h>
#include <string.h>

extern const struct attn_module attn_full;

static const struct attn_module *const modules[] = {
    &attn_full,
};
#define N_MODULES (int)(sizeof modules / sizeof modules[0])

const struct attn_module *attn_find(const char *name) {
    for (int i = 0; i < N_MODULES; i++)
        if (!strcmp(modules[i]->name, name)) return modules[i];
    return NULL;
}

const char *attn_names(void) {
    static char buf[256];
    buf[0] = 0;
    for (int i = 0; i < N_MODULES; i++) {
        if (i) strncat(buf, ", ", sizeof buf - strlen(buf) - 1);
        strncat(buf, modules[i]->name, sizeof buf - strlen(buf) - 1);
    }
    return buf;
}

void attn_options_default(struct attn_options *o) {
    memset(o, 0, sizeof *o);
    o->window_sinks = 4;
    o->window_size = 64;
    o->dam_pcl = 128;
    o->dam_lambda = 0.5f;
    o->dam_tau = 0.1f;
    o->dam_mu = 0.7f;
    o->dam_min_support = 0;
    o->dam_min_coverage = 0.5f;
    snprintf(o->dam_fallback, sizeof o->dam_fallback, "window");
    o->dam_fallback_window = 64;
    snprintf(o->dam_capture, sizeof o->dam_capture, "auto");
}

/* Online softmax over blocks of keys: scores of a block are computed, the
 * running maximum is updated once per block and the accumulator rescaled, so
 * a row of any length needs only O(block) scratch and never overflows. */
#define ROW_BLOCK 64

void attn_row_dense(const float *q, const float *k, const float *v, int n_keys,
                    int kv_stride, int head_dim, float scale, float *out) {
    float scores[ROW_BLOCK];
    float max = -INFINITY, sum = 0;
    for (int d = 0; d < head_dim; d++) out[d] = 0;
    for (int j0 = 0; j0 < n_keys; j0 += ROW_BLOCK) {
        int nb = n_keys - j0 < ROW_BLOCK ? n_keys - j0 : ROW_BLOCK;
        float bmax = -INFINITY;
        for (int j = 0; j < nb; j++) {
            scores[j] = dot_f32(q, k + (size_t)(j0 + j) * kv_stride, head_dim) * scale;
            if (scores[j] > bmax) bmax = scores[j];
        }
        if (bmax > max) {
            float r = expf(max - bmax);       /* 0 on the first block */
            sum *= r;
            for (int d = 0; d < head_dim; d++) out[d] *= r;
            max = bmax;
        }
        for (int j = 0; j < nb; j++) {
            float p = expf(scores[j] - max);
            sum += p;
            const float *vj = v + (size_t)(j0 + j) * kv_stride;
            for (int d = 0; d < head_dim; d++) out[d] += p * vj[d];
        }
    }
    float inv = 1.0f / sum;
    for (int d = 0; d < head_dim; d++) out[d] *= inv;
}
