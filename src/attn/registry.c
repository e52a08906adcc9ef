/* registry.c — the table of attention modules, and what they share:
 * default options, the dense causal row kernel, and which module runs on
 * which model (Doge models: dma by default, full = its dense counterpart). */
#include "dam/attn.h"
#include "dam/dam.h"
#include "dam/common.h"
#include "dam/kernels.h"
#include "dam/model.h"
#include <math.h>
#include <stdlib.h>
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

const struct attn_module *attn_module_at(int i) {
    return i >= 0 && i < N_MODULES ? modules[i] : NULL;
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

/* The defaults of every module's table (configs/dam.json is loaded over
 * them by the CLI; the measurements behind the values are recorded there). */
void attn_options_default(struct attn_options *o) {
    memset(o, 0, sizeof *o);
    for (int i = 0; i < N_MODULES; i++)
        for (const struct attn_opt *p = modules[i]->options; p && p->key; p++)
            if (attn_opt_set(o, p, p->def, p->key) != 0) abort();     /* a bad table: a bug */
}

int attn_prepare(const struct attn_module *mod, struct attn_options *o, const struct model *m,
                 const struct tokenizer *tok) {
    return mod && mod->prepare ? mod->prepare(o, m, tok) : 0;
}

void attn_options_release(struct attn_options *o) {
    dam_profile_free(o->dam.prepared);
    o->dam.prepared = NULL;
}

/* The kernel lives with the other attention kernels (src/kernels/attention.c),
 * where it runs the SIMD variant in use. */
void attn_row_dense(const float *q, const float *k, const float *v, int n_keys,
                    int kv_stride, int head_dim, float scale, float *out) {
    attention_row_strided(q, k, v, n_keys, kv_stride, head_dim, scale, out);
}
