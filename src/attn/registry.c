/* registry.c — the table of attention modules, and what they share:
 * default options, the dense causal row kernel, and which module runs on
 * which model (Doge models: dma by default, full = its dense counterpart). */
#include "dam/attn.h"
#include "dam/dam.h"
#include "dam/common.h"
#include "dam/kernels.h"
#include "dam/model.h"
#include <math.h>
#include <stdio.h>
#include <string.h>

extern const struct attn_module attn_full;
extern const struct attn_module attn_window, attn_dam;
extern const struct attn_module attn_dma, attn_dma_dense;

static const struct attn_module *const modules[] = {
    &attn_full,
    &attn_window,
    &attn_dam,
    &attn_dma,
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

/* ---- which module runs on which model ---- */

const char *attn_sparse_default_for(const struct model *m) {
    return m && m->dma_heads > 0 ? "dma" : "dam";
}

const char *attn_default_for(const struct model *m) {
    return m && m->dma_heads > 0 ? "dma" : "full";
}

const struct attn_module *attn_for_model(const struct attn_module *asked, const struct model *m) {
    if (!asked) { dam_fail("no attention module given"); return NULL; }
    const int has_dma = m && m->dma_heads > 0;
    if (asked == &attn_dma || asked == &attn_dma_dense) {
        if (!has_dma) {
            dam_fail("--attn=dma needs a model trained with Dynamic Mask Attention (a Doge checkpoint "
                     "with self_attn.A and self_attn.dt_proj weights); %s has none: its keys carry no "
                     "learned importance to keep the top ones by (use full, window or dam)",
                     m && m->dir ? m->dir : "this model");
            return NULL;
        }
        return asked;
    }
    if (!has_dma) return asked;
    /* A Doge model was trained with the bias δ on every kept score: full
     * attention without it would be another model. Its dense counterpart
     * keeps every causal key and still adds δ. */
    if (asked == &attn_full) return &attn_dma_dense;
    dam_fail("--attn=%s cannot run %s: it is a Dynamic Mask Attention (Doge) model whose scores "
             "carry a learned bias that %s does not add; use dma (its own sparse attention) or full "
             "(the dense counterpart)", asked->name, m->dir ? m->dir : "this model", asked->name);
    return NULL;
}

/* The built-in copy of configs/dam.json (where the measurements behind these
 * values are recorded); the CLI loads the file over them when it is found. */
void attn_options_default(struct attn_options *o) {
    memset(o, 0, sizeof *o);
    o->window_sinks = 4;
    o->window_size = 64;
    o->dam_pcl = 256;
    o->dam_lambda = 0.5f;
    o->dam_tau = 0.1f;
    o->dam_mu = 0.8f;
    o->dam_min_support = 0;
    o->dam_min_coverage = 0.5f;
    snprintf(o->dam_fallback, sizeof o->dam_fallback, "window");
    o->dam_fallback_window = 32;
    snprintf(o->dam_capture, sizeof o->dam_capture, "auto");
    o->dam_sinks = 16;
    o->dam_recent = 256;
    o->dam_select = 256;
    snprintf(o->dam_select_heads, sizeof o->dam_select_heads, "all");
    o->dam_columns = 0;
    o->dam_budget = 512;
    o->dam_min_select = 32;
}

int attn_prepare(const struct attn_module *mod, struct attn_options *o, const struct model *m,
                 const struct tokenizer *tok) {
    return mod && mod->prepare ? mod->prepare(o, m, tok) : 0;
}

void attn_options_release(struct attn_options *o) {
    dam_profile_free(o->dam_prepared);
    o->dam_prepared = NULL;
}

/* The kernel lives with the other attention kernels (src/kernels/attention.c),
 * where it runs the SIMD variant in use. */
void attn_row_dense(const float *q, const float *k, const float *v, int n_keys,
                    int kv_stride, int head_dim, float scale, float *out) {
    attention_row_strided(q, k, v, n_keys, kv_stride, head_dim, scale, out);
}
