/* registry.c — the table of attention modules, and what they share:
 * default options and the dense causal row kernel. */
#include "dam/attn.h"
#include "dam/kernels.h"
#include <math.h>
#include <stdio.h>
#include <string.h>

extern const struct attn_module attn_full;
extern const struct attn_module attn_window, attn_dam;

static const struct attn_module *const modules[] = {
    &attn_full,
    &attn_window,
    &attn_dam,
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

/* The kernel lives with the other attention kernels (src/kernels/attention.c),
 * where it runs the SIMD variant in use. */
void attn_row_dense(const float *q, const float *k, const float *v, int n_keys,
                    int kv_stride, int head_dim, float scale, float *out) {
    attention_row_strided(q, k, v, n_keys, kv_stride, head_dim, scale, out);
}
