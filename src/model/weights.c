/* weights.c — a model folder into struct model: config, safetensors shards
 * (single file or index), and a tensor view for every weight, with every
 * shape checked against the config. Weights stay in their stored dtype. */
#include "dam/model.h"
#include "dam/common.h"
#include "dam/hub.h"
#include "dam/kernels.h"
#include <cjson/cJSON.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

/* ---- shards ---- */

static int open_shard(struct model *m, const char *file) {
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/%s", m->dir, file);
    for (int i = 0; i < m->n_files; i++)
        if (!strcmp(m->files[i]->path, path)) return 0;     /* each shard mapped once */
    struct st_file *f = st_open(path);
    if (!f) return -1;
    struct st_file **grown = realloc(m->files, (m->n_files + 1) * sizeof *grown);
    if (!grown) { st_close(f); return dam_fail("out of memory"); }
    m->files = grown;
    m->files[m->n_files++] = f;
    return 0;
}

/* Opens model.safetensors, or every shard named by model.safetensors.index.json. */
static int open_checkpoint(struct model *m) {
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/model.safetensors.index.json", m->dir);
    if (!is_file(path)) {
        snprintf(path, sizeof path, "%s/model.safetensors", m->dir);
        if (!is_file(path))
            return dam_fail("%s has neither model.safetensors nor model.safetensors.index.json", m->dir);
        return open_shard(m, "model.safetensors");
    }
    size_t len;
    char *text = read_file(path, &len);
    if (!text) return -1;
    cJSON *root = cJSON_ParseWithLength(text, len);
    free(text);
    cJSON *map = root ? cJSON_GetObjectItemCaseSensitive(root, "weight_map") : NULL;
    if (!cJSON_IsObject(map)) {
        cJSON_Delete(root);
        return dam_fail("%s: not a JSON object with a \"weight_map\" object", path);
    }
    int rc = 0;
    cJSON *entry;
    cJSON_ArrayForEach(entry, map) {
        const char *file = cJSON_GetStringValue(entry);
        if (!file || strchr(file, '/') || !strcmp(file, "..") || !*file) {
            rc = dam_fail("%s: weight_map entry for %s is not a file name in the folder", path,
                          entry->string);
            break;
        }
        if ((rc = open_shard(m, file)) != 0) break;
        /* the tensor must be in the shard the index names */
        if (!st_find(m->files[m->n_files - 1], entry->string)) {
            int found = 0;
            for (int i = 0; i < m->n_files; i++)
                if (!strcmp(strrchr(m->files[i]->path, '/') + 1, file) && st_find(m->files[i], entry->string))
                    found = 1;
            if (!found) { rc = dam_fail("%s: tensor %s is not in %s", path, entry->string, file); break; }
        }
    }
    cJSON_Delete(root);
    return rc;
}

/* ---- tensors ---- */

static const struct st_tensor *find_tensor(const struct model *m, const char *name) {
    for (int i = 0; i < m->n_files; i++) {
        const struct st_tensor *t = st_find(m->files[i], name);
        if (t) return t;
    }
    return NULL;
}

/* Binds a weight of shape (rows, cols) — or (cols) when rows == 0, a vector. */
static int bind(struct model *m, struct tensor *out, const char *name, int rows, int cols) {
    const struct st_tensor *t = find_tensor(m, name);
    if (!t) return dam_fail("%s: tensor %s is missing", m->dir, name);
    if (t->dtype != DT_F32 && t->dtype != DT_F16 && t->dtype != DT_BF16)
        return dam_fail("%s: tensor %s has dtype %s (dam reads F32, F16 or BF16)", m->dir, name,
                        dtype_name(t->dtype));
    int ok = rows ? (t->ndim == 2 && t->shape[0] == rows && t->shape[1] == cols)
                  : (t->ndim == 1 && t->shape[0] == cols);
    if (!ok) {
        char got[128] = "";
        for (int d = 0; d < t->ndim; d++)
            snprintf(got + strlen(got), sizeof got - strlen(got), "%s%lld", d ? ", " : "",
                     (long long)t->shape[d]);
        if (rows) return dam_fail("%s: tensor %s has shape [%s], config says [%d, %d]", m->dir, name, got, rows, cols);
        return dam_fail("%s: tensor %s has shape [%s], config says [%d]", m->dir, name, got, cols);
    }
    *out = (struct tensor){ .quant = QUANT_NONE };
    out->dtype = t->dtype;
    out->rows = rows ? rows : 1;
    out->cols = cols;
    out->data = t->data;
    m->weight_bytes += t->nbytes;
    m->n_params += t->numel;
    return 0;
}

static int bind_layer(struct model *m, int l) {
    const struct model_config *c = &m->cfg;
    struct layer_weights *w = &m->layers[l];
    const int q_dim = c->n_heads * c->head_dim, kv_dim = c->n_kv_heads * c->head_dim;
    char name[128];
#define BIND(field, suffix, rows, cols) \
    (snprintf(name, sizeof name, "model.layers.%d.%s", l, suffix), bind(m, &w->field, name, rows, cols))
    if (BIND(attn_norm, "input_layernorm.weight", 0, c->dim) ||
        BIND(wq, "self_attn.q_proj.weight", q_dim, c->dim) ||
        BIND(wk, "self_attn.k_proj.weight", kv_dim, c->dim) ||
        BIND(wv, "self_attn.v_proj.weight", kv_dim, c->dim) ||
        BIND(wo, "self_attn.o_proj.weight", c->dim, q_dim) ||
        BIND(mlp_norm, "post_attention_layernorm.weight", 0, c->dim) ||
        BIND(w_gate, "mlp.gate_proj.weight", c->hidden_dim, c->dim) ||
        BIND(w_up, "mlp.up_proj.weight", c->hidden_dim, c->dim) ||
        BIND(w_down, "mlp.down_proj.weight", c->dim, c->hidden_dim))
        return -1;
#undef BIND
    /* bias tensors would be silently ignored: refuse them */
    snprintf(name, sizeof name, "model.layers.%d.self_attn.q_proj.bias", l);
    if (find_tensor(m, name)) return dam_fail("%s: tensor %s present but the config has no attention bias", m->dir, name);
    return 0;
}

/* ---- Doge (Dynamic Mask Attention) ---- */

/* A vector weight of n entries, converted to float32 into dst. Returns 1
 * without error when optional and absent. */
static int bind_vector_f32(struct model *m, const char *name, int n, float *dst, int optional) {
    if (optional && !find_tensor(m, name)) return 1;
    struct tensor t;
    if (bind(m, &t, name, 0, n) != 0) return -1;
    tensor_row_f32(&t, 0, dst);
    return 0;
}

/* How many δ heads the checkpoint has, from the shape of layer 0's A:
 * n_kv_heads (transformers' DogeAttention) or n_heads (an older generation,
 * one δ and one mask per query head). */
static int doge_dma_heads(struct model *m) {
    const struct model_config *c = &m->cfg;
    const char *name = "model.layers.0.self_attn.A";
    const struct st_tensor *a = find_tensor(m, name);
    if (!a) return dam_fail("%s: tensor %s is missing (a Doge checkpoint carries the Dynamic Mask "
                            "Attention weights A and dt_proj)", m->dir, name);
    if (a->ndim != 1 || (a->shape[0] != c->n_kv_heads && a->shape[0] != c->n_heads))
        return dam_fail("%s: tensor %s must be a vector of num_key_value_heads (%d) or "
                        "num_attention_heads (%d) entries", m->dir, name, c->n_kv_heads, c->n_heads);
    m->dma_heads = (int)a->shape[0];
    return 0;
}

/* Doge's additions to a Llama layer: residual scales, optional q/k norms,
 * and A, dt_proj of the dynamic mask. The float32 vectors go into `f`. */
static int bind_doge_layer(struct model *m, int l, float *f) {
    const struct model_config *c = &m->cfg;
    struct layer_weights *w = &m->layers[l];
    const int kv_dim = c->n_kv_heads * c->head_dim;
    char name[128];
    float *in_res = f, *post_res = f + c->dim, *qn = post_res + c->dim, *kn = qn + c->head_dim,
          *a = kn + c->head_dim;
#define NAME(suffix) (snprintf(name, sizeof name, "model.layers.%d.%s", l, suffix), name)
    if (bind_vector_f32(m, NAME("input_residual"), c->dim, in_res, 0) ||
        bind_vector_f32(m, NAME("post_attention_residual"), c->dim, post_res, 0) ||
        bind_vector_f32(m, NAME("self_attn.A"), m->dma_heads, a, 0) ||
        bind(m, &w->dt_proj, NAME("self_attn.dt_proj.weight"), m->dma_heads, kv_dim))
        return -1;
    int rq = bind_vector_f32(m, NAME("self_attn.q_norm.weight"), c->head_dim, qn, 1);
    int rk = bind_vector_f32(m, NAME("self_attn.k_norm.weight"), c->head_dim, kn, 1);
    if (rq < 0 || rk < 0) return -1;
    if (find_tensor(m, NAME("self_attn.dt_proj.bias")))
        return dam_fail("%s: tensor %s present but the config has no attention bias", m->dir, name);
#undef NAME
    w->input_residual = in_res;
    w->post_attention_residual = post_res;
    w->q_norm = rq == 0 ? qn : NULL;
    w->k_norm = rk == 0 ? kn : NULL;
    w->dma_A = a;
    return 0;
}

/* Floats of one layer's Doge vectors in doge_f32. */
static size_t doge_layer_floats(const struct model *m) {
    return 2 * (size_t)m->cfg.dim + 2 * (size_t)m->cfg.head_dim + (size_t)m->dma_heads;
}

static int bind_doge(struct model *m) {
    if (doge_dma_heads(m) != 0) return -1;
    const size_t each = doge_layer_floats(m);
    m->doge_f32 = xcalloc((size_t)m->cfg.n_layers * each, sizeof(float), "Doge weights");
    if (!m->doge_f32) return -1;
    for (int l = 0; l < m->cfg.n_layers; l++)
        if (bind_doge_layer(m, l, m->doge_f32 + (size_t)l * each) != 0) return -1;
    return 0;
}

/* Norm weights are tiny and read for every token: keep them as float32. */
static void convert_norms(struct model *m) {
    const int dim = m->cfg.dim;
    for (int l = 0; l < m->cfg.n_layers; l++) {
        tensor_row_f32(&m->layers[l].attn_norm, 0, m->norm_f32 + (size_t)(2 * l) * dim);
        tensor_row_f32(&m->layers[l].mlp_norm, 0, m->norm_f32 + (size_t)(2 * l + 1) * dim);
    }
    tensor_row_f32(&m->final_norm, 0, m->norm_f32 + (size_t)(2 * m->cfg.n_layers) * dim);
}

struct model *model_load(const char *dir) {
    if (!is_dir(dir)) { dam_fail("model folder %s not found", dir); return NULL; }
    struct model *m = xcalloc(1, sizeof *m, "model");
    if (!m) return NULL;
    m->dir = strdup(dir);
    if (!m->dir || config_load(dir, &m->cfg) != 0 || open_checkpoint(m) != 0) goto fail;
    const struct model_config *c = &m->cfg;
    if (c->head_dim > 1024) { dam_fail("%s: head_dim %d is larger than dam supports (1024)", dir, c->head_dim); goto fail; }
    m->layers = xcalloc(c->n_layers, sizeof *m->layers, "layer table");
    m->norm_f32 = xcalloc((size_t)(2 * c->n_layers + 1) * c->dim, sizeof(float), "norm weights");
    if (!m->layers || !m->norm_f32) goto fail;
    if (bind(m, &m->embed, "model.embed_tokens.weight", c->vocab_size, c->dim) != 0) goto fail;
    for (int l = 0; l < c->n_layers; l++)
        if (bind_layer(m, l) != 0) goto fail;
    if (c->arch == ARCH_DOGE && bind_doge(m) != 0) goto fail;
    if (bind(m, &m->final_norm, "model.norm.weight", 0, c->dim) != 0) goto fail;
    if (c->tie_embeddings) {
        m->lm_head = m->embed;
    } else if (bind(m, &m->lm_head, "lm_head.weight", c->vocab_size, c->dim) != 0) {
        goto fail;
    }
    convert_norms(m);
    return m;
fail:
    model_free(m);
    return NULL;
}

void model_free(struct model *m) {
    if (!m) return;
    for (int i = 0; i < m->n_files; i++) st_close(m->files[i]);
    free(m->files);
    free(m->layers);
    free(m->norm_f32);
    free(m->doge_f32);
    if (m->quant_mem) munmap(m->quant_mem, m->quant_bytes);
    free(m->dir);
    free(m);
}

/* ---- where a model comes from ---- */

int model_resolve_dir(const char *arg, char *out, size_t size) {
    if (!arg || !*arg) arg = getenv("DAM_MODEL");
    if (arg && *arg) {
        if (is_dir(arg)) { snprintf(out, size, "%s", arg); return 0; }
        /* "org/name" that is not a local folder: a Hugging Face repo id,
         * resolved through the hub cache (fetched when missing) */
        if (hub_is_repo_id(arg)) return hub_resolve_model(arg, NULL, out, size);
        return dam_fail("model folder %s not found", arg);
    }
    /* the embedded model: beside the build tree, or installed (make install) */
    if (data_find("third_party/models/testbed", 1, out, size) != 0)
        return dam_fail("no model given (-m DIR or DAM_MODEL) and the embedded model is missing: %s",
                        dam_last_error());
    return 0;
}
