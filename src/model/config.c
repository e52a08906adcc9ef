/* config.c — reading a Hugging Face config.json (and generation_config.json)
 * into struct model_config.
 *
 * dam runs LlamaForCausalLM and DogeForCausalLM (Llama plus Dynamic Mask
 * Attention, dense MLP). Anything the forward pass does not implement
 * (biases, other activations, other RoPE scalings, quantized weights, Doge's
 * mixture of experts) is refused here with a one-line error naming the field,
 * rather than silently producing wrong logits later. */
#include "dam/model.h"
#include "dam/common.h"

#include <cjson/cJSON.h>
#include <float.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Upper bounds far beyond any real model: they catch corrupt or hostile
 * values before they turn into giant allocations or int overflow. */
#define MAX_DIM        (1 << 18)   /* hidden_size */
#define MAX_HIDDEN_DIM (1 << 20)   /* intermediate_size */
#define MAX_LAYERS     10000
#define MAX_HEADS      4096
#define MAX_HEAD_DIM   4096
#define MAX_VOCAB      (1 << 24)
#define MAX_POSITIONS  (1 << 30)

/* ----------------------------------------------------------- field readers */

/* Reads an integer field into *out. Absent (or null when allow_null) leaves
 * *out alone and returns 1; a present value must be a whole number in
 * [min, max]. Returns 0 when read, -1 on error. */
static int get_int(const cJSON *root, const char *what, const char *field,
                   long min, long max, int *out) {
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(root, field);
    if (!it || cJSON_IsNull(it)) return 1;
    double v = it->valuedouble;
    if (!cJSON_IsNumber(it) || !isfinite(v) || v != floor(v))
        return dam_fail("%s: %s must be an integer", what, field);
    if (v < (double)min || v > (double)max)
        return dam_fail("%s: %s = %.17g is out of range (expected %ld..%ld)", what, field, v, min, max);
    *out = (int)v;
    return 0;
}

/* A required positive integer field. */
static int need_int(const cJSON *root, const char *what, const char *field, long max, int *out) {
    int rc = get_int(root, what, field, 1, max, out);
    if (rc == 1) return dam_fail("%s: missing required field %s", what, field);
    return rc;
}

/* A float field that must be finite and > 0. Absent/null: returns 1. */
static int get_positive(const cJSON *root, const char *what, const char *field, float *out) {
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(root, field);
    if (!it || cJSON_IsNull(it)) return 1;
    if (!cJSON_IsNumber(it)) return dam_fail("%s: %s must be a number", what, field);
    double v = it->valuedouble;
    /* Stored as float: it must stay finite and non-zero after the cast. */
    if (!isfinite(v) || v <= 0 || v > FLT_MAX || v < FLT_MIN)
        return dam_fail("%s: %s = %g must be a positive number a float can hold", what, field, v);
    *out = (float)v;
    return 0;
}

/* A boolean field; absent/null: returns 1. */
static int get_bool(const cJSON *root, const char *what, const char *field, int *out) {
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(root, field);
    if (!it || cJSON_IsNull(it)) return 1;
    if (!cJSON_IsBool(it)) return dam_fail("%s: %s must be true or false", what, field);
    *out = cJSON_IsTrue(it) ? 1 : 0;
    return 0;
}

/* A string field; absent/null: returns NULL without error (*err = 0). */
static const char *get_string(const cJSON *root, const char *what, const char *field, int *err) {
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(root, field);
    *err = 0;
    if (!it || cJSON_IsNull(it)) return NULL;
    if (!cJSON_IsString(it)) { *err = 1; dam_fail("%s: %s must be a string", what, field); return NULL; }
    return it->valuestring;
}

/* Python's json keeps the last of a repeated key and cJSON the first; rather
 * than silently disagree with transformers, a repeated key is an error. */
static int cmp_key(const void *a, const void *b) {
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static int check_no_duplicate_keys(const cJSON *obj, const char *what, const char *where) {
    int n = cJSON_GetArraySize(obj);
    if (n < 2) return 0;
    const char **keys = xmalloc((size_t)n * sizeof *keys, "config keys");
    if (!keys) return -1;
    int k = 0;
    for (const cJSON *it = obj->child; it; it = it->next) keys[k++] = it->string;
    qsort(keys, (size_t)k, sizeof *keys, cmp_key);   /* sorted: repeats sit side by side */
    int rc = 0;
    for (int i = 1; i < k && rc == 0; i++)
        if (strcmp(keys[i - 1], keys[i]) == 0)
            rc = dam_fail("%s: %s%s%s appears twice", what, where, *where ? "." : "", keys[i]);
    free(keys);
    return rc;
}

/* ------------------------------------------------------------ architecture */

/* Which architecture: the architectures list first, else model_type. */
static int check_architecture(const cJSON *root, const char *what, struct model_config *cfg) {
    const cJSON *arch = cJSON_GetObjectItemCaseSensitive(root, "architectures");
    if (arch && !cJSON_IsNull(arch)) {
        if (!cJSON_IsArray(arch)) return dam_fail("%s: architectures must be a list of names", what);
        const char *first = NULL;
        for (const cJSON *it = arch->child; it; it = it->next) {
            if (!cJSON_IsString(it)) return dam_fail("%s: architectures must be a list of names", what);
            if (strcmp(it->valuestring, "LlamaForCausalLM") == 0) { cfg->arch = ARCH_LLAMA; return 0; }
            if (strcmp(it->valuestring, "DogeForCausalLM") == 0) { cfg->arch = ARCH_DOGE; return 0; }
            if (!first) first = it->valuestring;
        }
        if (first)
            return dam_fail("%s: unsupported architecture %s (dam runs LlamaForCausalLM); it also runs "
                            "DogeForCausalLM", what, first);
    }
    /* No architectures list: the model_type must say llama or doge. */
    int err;
    const char *type = get_string(root, what, "model_type", &err);
    if (err) return -1;
    if (type && strcmp(type, "llama") == 0) { cfg->arch = ARCH_LLAMA; return 0; }
    if (type && strcmp(type, "doge") == 0) { cfg->arch = ARCH_DOGE; return 0; }
    return dam_fail("%s: unsupported architecture %s (dam runs LlamaForCausalLM); it also runs "
                    "DogeForCausalLM", what, type ? type : "(no architectures or model_type given)");
}

/* Doge's own fields. keep_window_size: keys each query keeps (top-w of the
 * dynamic bias δ). The CDMoE feed-forward (is_moe), a sliding window on top
 * of the dynamic mask and the first checkpoint generation (dynamic_mask_ratio:
 * a quantile threshold instead of top-w) are not implemented. */
static int parse_doge(const cJSON *root, const char *what, struct model_config *cfg) {
    cfg->keep_window_size = 2048;   /* the transformers default */
    if (get_int(root, what, "keep_window_size", 1, MAX_POSITIONS, &cfg->keep_window_size) < 0) return -1;
    int moe = 0;
    if (get_bool(root, what, "is_moe", &moe) < 0) return -1;
    if (moe)
        return dam_fail("%s: is_moe true (Doge's CDMoE mixture of experts) is not supported; dam runs "
                        "Doge checkpoints with the dense MLP (is_moe false)", what);
    const cJSON *sw = cJSON_GetObjectItemCaseSensitive(root, "sliding_window");
    if (sw && !cJSON_IsNull(sw))
        return dam_fail("%s: sliding_window is set; a sliding window on top of Doge's dynamic mask is "
                        "not supported (use null)", what);
    const cJSON *ratio = cJSON_GetObjectItemCaseSensitive(root, "dynamic_mask_ratio");
    if (ratio && !cJSON_IsNull(ratio) && !(cJSON_IsNumber(ratio) && ratio->valuedouble == 0))
        return dam_fail("%s: dynamic_mask_ratio is set: an early Doge generation (quantile mask, "
                        "other tensor names) that dam does not run; it runs the keep_window_size one", what);
    return 0;
}

/* Features of other Llama variants that the forward pass lacks. */
static int check_unsupported_options(const cJSON *root, const char *what) {
    int flag = 0;
    if (get_bool(root, what, "attention_bias", &flag) < 0) return -1;
    if (flag) return dam_fail("%s: attention_bias true is not supported (dam has no attention biases)", what);
    flag = 0;
    if (get_bool(root, what, "mlp_bias", &flag) < 0) return -1;
    if (flag) return dam_fail("%s: mlp_bias true is not supported (dam has no MLP biases)", what);
    int err;
    const char *act = get_string(root, what, "hidden_act", &err);
    if (err) return -1;
    if (act && strcmp(act, "silu") != 0)
        return dam_fail("%s: hidden_act \"%s\" is not supported (dam runs silu)", what, act);
    const cJSON *q = cJSON_GetObjectItemCaseSensitive(root, "quantization_config");
    if (q && !cJSON_IsNull(q))
        return dam_fail("%s: quantization_config is present; quantized weights are not supported", what);
    return 0;
}

/* -------------------------------------------------------------------- RoPE */

/* rope_scaling (transformers 4.x) or rope_parameters (5.x): null, or an
 * object whose "rope_type" (or older "type") picks the scaling. */
static int parse_rope(const cJSON *root, const char *what, struct model_config *cfg) {
    cfg->rope_kind = ROPE_DEFAULT;
    cfg->rope_factor = 1.0f;
    cfg->rope_low_freq_factor = 1.0f;
    cfg->rope_high_freq_factor = 1.0f;
    cfg->rope_original_max_pos = 0;
    const char *field = "rope_parameters";
    const cJSON *rs = cJSON_GetObjectItemCaseSensitive(root, field);
    if (!rs || cJSON_IsNull(rs)) { field = "rope_scaling"; rs = cJSON_GetObjectItemCaseSensitive(root, field); }
    if (!rs || cJSON_IsNull(rs)) return 0;
    if (!cJSON_IsObject(rs)) return dam_fail("%s: %s must be an object or null", what, field);
    if (check_no_duplicate_keys(rs, what, field) != 0) return -1;

    /* rope_parameters may carry rope_theta itself. */
    if (get_positive(rs, what, "rope_theta", &cfg->rope_theta) < 0) return -1;

    int err;
    const char *type = get_string(rs, what, "rope_type", &err);
    if (err) return -1;
    if (!type) { type = get_string(rs, what, "type", &err); if (err) return -1; }
    if (!type) return dam_fail("%s: %s has no rope_type", what, field);
    if (strcmp(type, "default") == 0) return 0;

    if (strcmp(type, "linear") == 0) {
        cfg->rope_kind = ROPE_LINEAR;
        int rc = get_positive(rs, what, "factor", &cfg->rope_factor);
        if (rc == 1) return dam_fail("%s: %s linear needs factor", what, field);
        return rc;
    }
    if (strcmp(type, "llama3") == 0) {
        cfg->rope_kind = ROPE_LLAMA3;
        static const char *const names[] = {"factor", "low_freq_factor", "high_freq_factor"};
        float *dst[] = {&cfg->rope_factor, &cfg->rope_low_freq_factor, &cfg->rope_high_freq_factor};
        for (int i = 0; i < 3; i++) {
            int rc = get_positive(rs, what, names[i], dst[i]);
            if (rc == 1) return dam_fail("%s: %s llama3 needs %s", what, field, names[i]);
            if (rc < 0) return -1;
        }
        int rc = get_int(rs, what, "original_max_position_embeddings", 1, MAX_POSITIONS,
                         &cfg->rope_original_max_pos);
        if (rc == 1) return dam_fail("%s: %s llama3 needs original_max_position_embeddings", what, field);
        if (rc < 0) return -1;
        /* The smoothing between the two bands divides by their difference. */
        if (!(cfg->rope_high_freq_factor > cfg->rope_low_freq_factor))
            return dam_fail("%s: %s high_freq_factor (%g) must be greater than low_freq_factor (%g)",
                            what, field, cfg->rope_high_freq_factor, cfg->rope_low_freq_factor);
        return 0;
    }
    return dam_fail("%s: rope type \"%s\" is not supported (dam supports default, linear and llama3)",
                    what, type);
}

/* ------------------------------------------------------------- token ids */

/* Adds id to the EOS list unless already there. */
static int add_eos(struct model_config *cfg, const char *what, int id) {
    for (int i = 0; i < cfg->n_eos; i++)
        if (cfg->eos_ids[i] == id) return 0;
    if (cfg->n_eos == MAX_EOS_IDS)
        return dam_fail("%s: more than %d distinct eos_token_id values", what, MAX_EOS_IDS);
    cfg->eos_ids[cfg->n_eos++] = id;
    return 0;
}

static int token_id(const cJSON *it, const char *what, const char *field, int vocab, int *out) {
    double v = it->valuedouble;
    if (!cJSON_IsNumber(it) || !isfinite(v) || v != floor(v))
        return dam_fail("%s: %s must be an integer token id", what, field);
    if (v < 0 || v >= vocab)
        return dam_fail("%s: %s %.17g is outside the vocabulary (0..%d)", what, field, v, vocab - 1);
    *out = (int)v;
    return 0;
}

/* eos_token_id: an int, a list of ints, or absent/null. */
static int parse_eos(const cJSON *root, const char *what, struct model_config *cfg) {
    const cJSON *eos = cJSON_GetObjectItemCaseSensitive(root, "eos_token_id");
    if (!eos || cJSON_IsNull(eos)) return 0;
    int id;
    if (cJSON_IsArray(eos)) {
        for (const cJSON *it = eos->child; it; it = it->next) {
            if (token_id(it, what, "eos_token_id", cfg->vocab_size, &id) != 0) return -1;
            if (add_eos(cfg, what, id) != 0) return -1;
        }
        return 0;
    }
    if (token_id(eos, what, "eos_token_id", cfg->vocab_size, &id) != 0) return -1;
    return add_eos(cfg, what, id);
}

static int parse_bos(const cJSON *root, const char *what, struct model_config *cfg) {
    const cJSON *bos = cJSON_GetObjectItemCaseSensitive(root, "bos_token_id");
    if (!bos || cJSON_IsNull(bos)) return 0;
    return token_id(bos, what, "bos_token_id", cfg->vocab_size, &cfg->bos_id);
}

/* ---------------------------------------------------------------- geometry */

static int parse_geometry(const cJSON *root, const char *what, struct model_config *c) {
    if (need_int(root, what, "hidden_size", MAX_DIM, &c->dim) != 0) return -1;
    if (need_int(root, what, "intermediate_size", MAX_HIDDEN_DIM, &c->hidden_dim) != 0) return -1;
    if (need_int(root, what, "num_hidden_layers", MAX_LAYERS, &c->n_layers) != 0) return -1;
    if (need_int(root, what, "num_attention_heads", MAX_HEADS, &c->n_heads) != 0) return -1;
    if (need_int(root, what, "vocab_size", MAX_VOCAB, &c->vocab_size) != 0) return -1;
    if (need_int(root, what, "max_position_embeddings", MAX_POSITIONS, &c->max_seq_len) != 0) return -1;

    c->n_kv_heads = c->n_heads;
    if (get_int(root, what, "num_key_value_heads", 1, MAX_HEADS, &c->n_kv_heads) < 0) return -1;
    if (c->n_heads % c->n_kv_heads != 0)
        return dam_fail("%s: num_attention_heads (%d) is not a multiple of num_key_value_heads (%d)",
                        what, c->n_heads, c->n_kv_heads);

    int rc = get_int(root, what, "head_dim", 1, MAX_HEAD_DIM, &c->head_dim);
    if (rc < 0) return -1;
    if (rc == 1) {
        if (c->dim % c->n_heads != 0)
            return dam_fail("%s: hidden_size (%d) is not a multiple of num_attention_heads (%d) "
                            "and no head_dim is given", what, c->dim, c->n_heads);
        c->head_dim = c->dim / c->n_heads;
    }
    if (c->head_dim % 2 != 0)
        return dam_fail("%s: head_dim %d must be even (RoPE rotates pairs)", what, c->head_dim);

    c->norm_eps = 1e-6f;   /* the transformers default */
    if (get_positive(root, what, "rms_norm_eps", &c->norm_eps) < 0) return -1;
    if (c->norm_eps >= 1.0f) return dam_fail("%s: rms_norm_eps %g is absurdly large", what, c->norm_eps);
    c->rope_theta = 10000.0f;
    if (get_positive(root, what, "rope_theta", &c->rope_theta) < 0) return -1;
    c->tie_embeddings = 0;
    if (get_bool(root, what, "tie_word_embeddings", &c->tie_embeddings) < 0) return -1;
    return 0;
}

/* ------------------------------------------------------------------ public */

int config_parse(const char *json, size_t len, const char *what, struct model_config *cfg) {
    if (!what) what = "config.json";
    if (!json || !cfg) return dam_fail("%s: no config text", what);
    memset(cfg, 0, sizeof *cfg);
    cfg->bos_id = -1;
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts(json, len, &end, 0);
    if (!root) {
        const char *e = cJSON_GetErrorPtr();
        long at = (e && e >= json && e <= json + len) ? (long)(e - json) : -1;
        return dam_fail("%s: not valid JSON (near byte %ld)", what, at);
    }
    int rc = -1;
    for (const char *p = end; p < json + len; p++) {
        if (*p != ' ' && *p != '\t' && *p != '\n' && *p != '\r' && *p != 0) {
            dam_fail("%s: text after the JSON object (byte %ld)", what, (long)(p - json));
            goto out;
        }
    }
    if (!cJSON_IsObject(root)) { dam_fail("%s: must be a JSON object", what); goto out; }
    if (check_no_duplicate_keys(root, what, "") != 0) goto out;
    if (check_architecture(root, what, cfg) != 0) goto out;
    if (cfg->arch == ARCH_DOGE && parse_doge(root, what, cfg) != 0) goto out;
    if (check_unsupported_options(root, what) != 0) goto out;
    if (parse_geometry(root, what, cfg) != 0) goto out;
    if (parse_rope(root, what, cfg) != 0) goto out;
    if (parse_bos(root, what, cfg) != 0) goto out;
    if (parse_eos(root, what, cfg) != 0) goto out;
    rc = 0;
out:
    cJSON_Delete(root);
    return rc;
}

/* generation_config.json may add EOS ids (Llama-3 instruct models list
 * <|eot_id|> only there) and a bos id the config lacks. */
static int merge_generation_config(const char *path, struct model_config *cfg) {
    size_t len;
    char *text = read_file(path, &len);
    if (!text) return -1;
    cJSON *root = cJSON_ParseWithLength(text, len);
    free(text);
    if (!root) return dam_fail("%s: not valid JSON", path);
    int rc = -1;
    if (!cJSON_IsObject(root)) { dam_fail("%s: must be a JSON object", path); goto out; }
    if (check_no_duplicate_keys(root, path, "") != 0) goto out;
    if (parse_eos(root, path, cfg) != 0) goto out;
    if (cfg->bos_id < 0 && parse_bos(root, path, cfg) != 0) goto out;
    rc = 0;
out:
    cJSON_Delete(root);
    return rc;
}

int config_load(const char *dir, struct model_config *cfg) {
    if (!dir || !cfg) return dam_fail("config_load: no model folder given");
    if (is_file(dir)) return dam_fail("%s is a file; give the model folder that holds config.json", dir);
    if (!is_dir(dir)) return dam_fail("model folder %s does not exist", dir);
    size_t n = strlen(dir) + 32;
    char *path = xmalloc(n, "a config path");
    if (!path) return -1;
    snprintf(path, n, "%s/config.json", dir);
    if (!is_file(path)) {
        dam_fail("%s: no config.json (not a Hugging Face model folder?)", dir);
        free(path);
        return -1;
    }
    size_t len;
    char *text = read_file(path, &len);
    int rc = text ? config_parse(text, len, path, cfg) : -1;
    free(text);
    if (rc == 0) {
        snprintf(path, n, "%s/generation_config.json", dir);
        if (is_file(path)) rc = merge_generation_config(path, cfg);
    }
    free(path);
    return rc;
}

int config_is_eos(const struct model_config *cfg, int token) {
    for (int i = 0; i < cfg->n_eos; i++)
        if (cfg->eos_ids[i] == token) return 1;
    return 0;
}
