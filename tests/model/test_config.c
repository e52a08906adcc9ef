/* test_config.c — config.json parsing: the real configs, RoPE variants, EOS
 * lists, generation_config.json merging, and every rejection. */
#include "../harness.h"
#include "dam/common.h"
#include "dam/model.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ------------------------------------------------------------------ helpers */

/* A valid small Llama config as (key, JSON value) pairs. */
static const char *const base_pairs[][2] = {
    {"architectures", "[\"LlamaForCausalLM\"]"},
    {"model_type", "\"llama\""},
    {"hidden_size", "64"},
    {"intermediate_size", "172"},
    {"num_hidden_layers", "2"},
    {"num_attention_heads", "8"},
    {"num_key_value_heads", "4"},
    {"vocab_size", "512"},
    {"max_position_embeddings", "256"},
    {"rms_norm_eps", "1e-05"},
    {"hidden_act", "\"silu\""},
    {"bos_token_id", "1"},
    {"eos_token_id", "2"},
};
#define N_BASE (sizeof base_pairs / sizeof *base_pairs)

/* The base config with overrides: pairs of key, JSON value; a NULL value
 * removes the key; keys not in the base are appended. NULL-terminated. */
static const char *config_with(const char *first, ...) {
    static char out[8192];
    const char *keys[32], *vals[32];
    int n = 0;
    va_list ap;
    va_start(ap, first);
    for (const char *k = first; k; k = va_arg(ap, const char *)) {
        keys[n] = k;
        vals[n] = va_arg(ap, const char *);
        n++;
    }
    va_end(ap);
    int used[32] = {0};
    size_t len = 0;
    len += snprintf(out + len, sizeof out - len, "{");
    int first_item = 1;
    for (size_t i = 0; i < N_BASE; i++) {
        const char *v = base_pairs[i][1];
        for (int j = 0; j < n; j++)
            if (strcmp(keys[j], base_pairs[i][0]) == 0) { v = vals[j]; used[j] = 1; }
        if (!v) continue;
        len += snprintf(out + len, sizeof out - len, "%s\"%s\": %s", first_item ? "" : ", ",
                        base_pairs[i][0], v);
        first_item = 0;
    }
    for (int j = 0; j < n; j++) {
        if (used[j] || !vals[j]) continue;
        len += snprintf(out + len, sizeof out - len, "%s\"%s\": %s", first_item ? "" : ", ", keys[j], vals[j]);
        first_item = 0;
    }
    snprintf(out + len, sizeof out - len, "}");
    return out;
}

static void parse_good(const char *json, struct model_config *c) {
    int rc = config_parse(json, strlen(json), "good.json", c);
    ck_assert_msg(rc == 0, "rejected %s: %s", json, dam_last_error());
}

/* Expects rejection with an error naming the source and containing frag. */
static void expect_reject(const char *json, const char *frag) {
    struct model_config c;
    int rc = config_parse(json, strlen(json), "bad/config.json", &c);
    const char *err = dam_last_error();
    ck_assert_msg(rc == -1, "accepted %s", json);
    ck_assert_msg(strstr(err, "bad/config.json") != NULL, "error lacks the file: %s", err);
    ck_assert_msg(strstr(err, frag) != NULL, "error \"%s\" lacks \"%s\"", err, frag);
    ck_assert_msg(strchr(err, '\n') == NULL, "error is not one line: %s", err);
}

/* Writes name in dir with text. */
static void write_in(const char *dir, const char *name, const char *text) {
    char path[512];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    fputs(text, f);
    fclose(f);
}

static void remove_in(const char *dir, const char *name) {
    char path[512];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    unlink(path);
}

/* ------------------------------------------------------------ real configs */

START_TEST(loads_stories260k) {
    struct model_config c;
    ck_assert_msg(config_load("third_party/models/stories260k", &c) == 0, "%s", dam_last_error());
    ck_assert_int_eq(c.dim, 64);
    ck_assert_int_eq(c.hidden_dim, 172);
    ck_assert_int_eq(c.n_layers, 5);
    ck_assert_int_eq(c.n_heads, 8);
    ck_assert_int_eq(c.n_kv_heads, 4);
    ck_assert_int_eq(c.head_dim, 8);
    ck_assert_int_eq(c.vocab_size, 512);
    ck_assert_int_eq(c.max_seq_len, 512);
    ck_assert_float_eq_tol(c.norm_eps, 1e-5f, 1e-12f);
    ck_assert_float_eq(c.rope_theta, 10000.0f);
    ck_assert_int_eq(c.rope_kind, ROPE_DEFAULT);
    ck_assert_int_eq(c.tie_embeddings, 1);
    ck_assert_int_eq(c.bos_id, 1);
    ck_assert_int_eq(c.n_eos, 1);              /* config and generation_config both say 2 */
    ck_assert_int_eq(c.eos_ids[0], 2);
    ck_assert(config_is_eos(&c, 2));
    ck_assert(!config_is_eos(&c, 1));
}
END_TEST

START_TEST(loads_tiny_llama3) {
    struct model_config c;
    ck_assert_msg(config_load("third_party/models/tiny-llama3", &c) == 0, "%s", dam_last_error());
    ck_assert_int_eq(c.dim, 256);
    ck_assert_int_eq(c.hidden_dim, 640);
    ck_assert_int_eq(c.n_layers, 3);
    ck_assert_int_eq(c.n_heads, 4);
    ck_assert_int_eq(c.n_kv_heads, 1);
    ck_assert_int_eq(c.head_dim, 64);
    ck_assert_int_eq(c.vocab_size, 3000);
    ck_assert_int_eq(c.max_seq_len, 131072);
    ck_assert_float_eq(c.rope_theta, 500000.0f);
    ck_assert_int_eq(c.rope_kind, ROPE_LLAMA3);
    ck_assert_float_eq(c.rope_factor, 32.0f);
    ck_assert_float_eq(c.rope_low_freq_factor, 1.0f);
    ck_assert_float_eq(c.rope_high_freq_factor, 4.0f);
    ck_assert_int_eq(c.rope_original_max_pos, 8192);
    ck_assert_int_eq(c.tie_embeddings, 1);
    ck_assert_int_eq(c.bos_id, 0);
    ck_assert_int_eq(c.n_eos, 2);
    ck_assert(config_is_eos(&c, 1));
    ck_assert(config_is_eos(&c, 2));
    ck_assert(!config_is_eos(&c, 0));
}
END_TEST

START_TEST(loads_reference_configs) {
    const char *refs = refs_dir();
    if (!refs) SKIP_TEST("reference models absent ($DAM_REFS or ../shared/models)");
    char dir[4096];
    struct model_config c;
    snprintf(dir, sizeof dir, "%s/tiny-smollm2", refs);
    if (!is_dir(dir)) SKIP_TEST("%s absent", dir);
    ck_assert_msg(config_load(dir, &c) == 0, "%s", dam_last_error());
    ck_assert_int_eq(c.dim, 144);
    ck_assert_int_eq(c.n_heads, 9);
    ck_assert_int_eq(c.n_kv_heads, 3);
    ck_assert_int_eq(c.head_dim, 16);          /* no head_dim: 144 / 9 */
    ck_assert_int_eq(c.vocab_size, 49152);
    ck_assert_float_eq(c.rope_theta, 100000.0f);
    ck_assert_int_eq(c.rope_kind, ROPE_DEFAULT);   /* no rope_scaling key at all */
    ck_assert_int_eq(c.tie_embeddings, 1);

    snprintf(dir, sizeof dir, "%s/tiny-llama2-sharded", refs);
    if (!is_dir(dir)) SKIP_TEST("%s absent", dir);
    ck_assert_msg(config_load(dir, &c) == 0, "%s", dam_last_error());
    ck_assert_int_eq(c.dim, 128);
    ck_assert_int_eq(c.hidden_dim, 344);
    ck_assert_int_eq(c.n_heads, 4);
    ck_assert_int_eq(c.n_kv_heads, 4);
    ck_assert_int_eq(c.head_dim, 32);
    ck_assert_int_eq(c.vocab_size, 32000);
    ck_assert_int_eq(c.max_seq_len, 4096);
    ck_assert_float_eq_tol(c.norm_eps, 1e-6f, 1e-13f);
    ck_assert_int_eq(c.tie_embeddings, 0);
    ck_assert_int_eq(c.bos_id, 1);
    ck_assert_int_eq(c.n_eos, 1);
}
END_TEST

/* ---------------------------------------------------------------- defaults */

START_TEST(defaults_apply) {
    struct model_config c;
    parse_good(config_with("num_key_value_heads", NULL, "rms_norm_eps", NULL, "hidden_act", NULL,
                           "bos_token_id", NULL, "eos_token_id", NULL, "architectures", NULL, NULL), &c);
    ck_assert_int_eq(c.n_kv_heads, 8);         /* = heads */
    ck_assert_int_eq(c.head_dim, 8);           /* = 64 / 8 */
    ck_assert_float_eq(c.rope_theta, 10000.0f);
    ck_assert_float_eq_tol(c.norm_eps, 1e-6f, 1e-13f);
    ck_assert_int_eq(c.tie_embeddings, 0);
    ck_assert_int_eq(c.bos_id, -1);
    ck_assert_int_eq(c.n_eos, 0);
    ck_assert_int_eq(c.rope_kind, ROPE_DEFAULT);
    ck_assert(!config_is_eos(&c, 2));
    /* nulls mean "absent" as in transformers */
    parse_good(config_with("num_key_value_heads", "null", "head_dim", "null", "bos_token_id", "null",
                           "eos_token_id", "null", "rope_scaling", "null", "tie_word_embeddings", "null", NULL), &c);
    ck_assert_int_eq(c.n_kv_heads, 8);
    ck_assert_int_eq(c.bos_id, -1);
    /* an explicit head_dim need not equal hidden / heads (Llama-3.2 style) */
    parse_good(config_with("head_dim", "32", "tie_word_embeddings", "true", NULL), &c);
    ck_assert_int_eq(c.head_dim, 32);
    ck_assert_int_eq(c.tie_embeddings, 1);
    /* biases explicitly false are fine; an integral float is an integer */
    parse_good(config_with("attention_bias", "false", "mlp_bias", "false", "hidden_size", "64.0", NULL), &c);
    ck_assert_int_eq(c.dim, 64);
    /* model_type alone is enough when architectures is absent or empty */
    parse_good(config_with("architectures", "[]", NULL), &c);
    /* architectures may list more than one name */
    parse_good(config_with("architectures", "[\"Other\", \"LlamaForCausalLM\"]", NULL), &c);
}
END_TEST

/* -------------------------------------------------------------------- rope */

START_TEST(rope_types) {
    struct model_config c;
    parse_good(config_with("rope_scaling", "{\"type\": \"linear\", \"factor\": 4.0}", NULL), &c);
    ck_assert_int_eq(c.rope_kind, ROPE_LINEAR);
    ck_assert_float_eq(c.rope_factor, 4.0f);
    parse_good(config_with("rope_scaling", "{\"rope_type\": \"linear\", \"factor\": 2}", NULL), &c);
    ck_assert_int_eq(c.rope_kind, ROPE_LINEAR);
    ck_assert_float_eq(c.rope_factor, 2.0f);
    parse_good(config_with("rope_scaling", "{\"rope_type\": \"default\"}", NULL), &c);
    ck_assert_int_eq(c.rope_kind, ROPE_DEFAULT);
    parse_good(config_with("rope_scaling", "{\"rope_type\": \"llama3\", \"factor\": 8.0, \"low_freq_factor\": 1.0,"
                           " \"high_freq_factor\": 4.0, \"original_max_position_embeddings\": 8192}",
                           "rope_theta", "500000.0", NULL), &c);
    ck_assert_int_eq(c.rope_kind, ROPE_LLAMA3);
    ck_assert_float_eq(c.rope_factor, 8.0f);
    ck_assert_float_eq(c.rope_theta, 500000.0f);
    ck_assert_int_eq(c.rope_original_max_pos, 8192);
    /* transformers 5 style: rope_parameters carries the theta too */
    parse_good(config_with("rope_parameters", "{\"rope_type\": \"default\", \"rope_theta\": 250000.0}",
                           NULL), &c);
    ck_assert_int_eq(c.rope_kind, ROPE_DEFAULT);
    ck_assert_float_eq(c.rope_theta, 250000.0f);

    expect_reject(config_with("rope_scaling", "{\"type\": \"dynamic\", \"factor\": 2.0}", NULL),
                  "rope type \"dynamic\" is not supported");
    expect_reject(config_with("rope_scaling", "{\"rope_type\": \"yarn\", \"factor\": 4.0}", NULL),
                  "rope type \"yarn\"");
    expect_reject(config_with("rope_scaling", "{\"factor\": 4.0}", NULL), "rope_scaling has no rope_type");
    expect_reject(config_with("rope_scaling", "\"linear\"", NULL), "rope_scaling must be an object");
    expect_reject(config_with("rope_scaling", "{\"type\": 3}", NULL), "type must be a string");
    expect_reject(config_with("rope_scaling", "{\"type\": \"linear\"}", NULL), "linear needs factor");
    expect_reject(config_with("rope_scaling", "{\"type\": \"linear\", \"factor\": 0}", NULL), "factor");
    expect_reject(config_with("rope_scaling", "{\"type\": \"linear\", \"factor\": -2}", NULL), "factor");
    expect_reject(config_with("rope_scaling", "{\"rope_type\": \"llama3\", \"factor\": 8.0, \"low_freq_factor\": 1.0,"
                              " \"original_max_position_embeddings\": 8192}", NULL), "needs high_freq_factor");
    expect_reject(config_with("rope_scaling", "{\"rope_type\": \"llama3\", \"factor\": 8.0, \"low_freq_factor\": 1.0,"
                              " \"high_freq_factor\": 4.0}", NULL), "needs original_max_position_embeddings");
    expect_reject(config_with("rope_scaling", "{\"rope_type\": \"llama3\", \"factor\": 8.0, \"low_freq_factor\": 4.0,"
                              " \"high_freq_factor\": 4.0, \"original_max_position_embeddings\": 8192}", NULL),
                  "high_freq_factor");
    expect_reject(config_with("rope_scaling", "{\"rope_type\": \"linear\", \"rope_type\": \"yarn\", \"factor\": 2}",
                              NULL), "rope_scaling.rope_type appears twice");
    expect_reject(config_with("rope_theta", "0", NULL), "rope_theta");
    expect_reject(config_with("rope_theta", "\"1e4\"", NULL), "rope_theta must be a number");
}
END_TEST

/* --------------------------------------------------------------------- eos */

START_TEST(eos_lists) {
    struct model_config c;
    parse_good(config_with("eos_token_id", "[2, 7, 2, 9]", NULL), &c);
    ck_assert_int_eq(c.n_eos, 3);              /* duplicates merged */
    ck_assert(config_is_eos(&c, 7));
    ck_assert(config_is_eos(&c, 9));
    ck_assert(!config_is_eos(&c, 3));
    parse_good(config_with("eos_token_id", "[]", NULL), &c);
    ck_assert_int_eq(c.n_eos, 0);
    parse_good(config_with("eos_token_id", "[1,2,3,4,5,6,7,8]", NULL), &c);
    ck_assert_int_eq(c.n_eos, MAX_EOS_IDS);
    expect_reject(config_with("eos_token_id", "[1,2,3,4,5,6,7,8,9]", NULL), "more than 8 distinct eos_token_id");
    expect_reject(config_with("eos_token_id", "[1, \"2\"]", NULL), "eos_token_id must be an integer");
    expect_reject(config_with("eos_token_id", "2.5", NULL), "eos_token_id must be an integer");
    expect_reject(config_with("eos_token_id", "512", NULL), "eos_token_id 512 is outside the vocabulary");
    expect_reject(config_with("eos_token_id", "-1", NULL), "eos_token_id -1 is outside");
    expect_reject(config_with("bos_token_id", "600", NULL), "bos_token_id 600 is outside");
    expect_reject(config_with("bos_token_id", "[1]", NULL), "bos_token_id must be an integer");
}
END_TEST

START_TEST(generation_config_merges) {
    const char *dir = tmp_dir();
    struct model_config c;
    write_in(dir, "config.json", config_with("eos_token_id", "[2, 3]", "bos_token_id", NULL, NULL));
    write_in(dir, "generation_config.json", "{\"bos_token_id\": 5, \"eos_token_id\": [3, 4, 2]}");
    ck_assert_msg(config_load(dir, &c) == 0, "%s", dam_last_error());
    ck_assert_int_eq(c.n_eos, 3);
    ck_assert_int_eq(c.eos_ids[0], 2);
    ck_assert_int_eq(c.eos_ids[1], 3);
    ck_assert_int_eq(c.eos_ids[2], 4);
    ck_assert_int_eq(c.bos_id, 5);             /* taken from there when the config lacks one */

    write_in(dir, "generation_config.json", "{\"eos_token_id\": 11}");
    ck_assert_int_eq(config_load(dir, &c), 0);
    ck_assert_int_eq(c.n_eos, 3);
    ck_assert(config_is_eos(&c, 11));

    write_in(dir, "generation_config.json", "{\"eos_token_id\": [5,6,7,8,9,10,11]}");
    ck_assert_int_eq(config_load(dir, &c), -1);
    ck_assert_ptr_nonnull(strstr(dam_last_error(), "generation_config.json"));
    ck_assert_ptr_nonnull(strstr(dam_last_error(), "more than 8"));

    write_in(dir, "generation_config.json", "{\"eos_token_id\": ");
    ck_assert_int_eq(config_load(dir, &c), -1);
    ck_assert_ptr_nonnull(strstr(dam_last_error(), "generation_config.json: not valid JSON"));

    write_in(dir, "generation_config.json", "{\"eos_token_id\": 9999}");
    ck_assert_int_eq(config_load(dir, &c), -1);
    ck_assert_ptr_nonnull(strstr(dam_last_error(), "outside the vocabulary"));
    remove_in(dir, "generation_config.json");

    /* config errors name the file */
    write_in(dir, "config.json", config_with("hidden_act", "\"gelu\"", NULL));
    ck_assert_int_eq(config_load(dir, &c), -1);
    ck_assert_ptr_nonnull(strstr(dam_last_error(), dir));
    ck_assert_ptr_nonnull(strstr(dam_last_error(), "config.json: hidden_act \"gelu\""));
    remove_in(dir, "config.json");

    /* folder problems */
    ck_assert_int_eq(config_load(dir, &c), -1);
    ck_assert_ptr_nonnull(strstr(dam_last_error(), "no config.json"));
    rmdir(dir);
    ck_assert_int_eq(config_load(dir, &c), -1);
    ck_assert_ptr_nonnull(strstr(dam_last_error(), "does not exist"));
    ck_assert_int_eq(config_load("third_party/models/stories260k/config.json", &c), -1);
    ck_assert_ptr_nonnull(strstr(dam_last_error(), "is a file"));
}
END_TEST

/* --------------------------------------------------------------- rejection */

START_TEST(rejects_other_architectures) {
    expect_reject(config_with("architectures", "[\"MistralForCausalLM\"]", "model_type", "\"mistral\"", NULL),
                  "unsupported architecture MistralForCausalLM (dam runs LlamaForCausalLM)");
    expect_reject(config_with("architectures", "[\"Qwen2ForCausalLM\"]", NULL),
                  "unsupported architecture Qwen2ForCausalLM");
    expect_reject(config_with("architectures", NULL, "model_type", "\"gpt2\"", NULL),
                  "unsupported architecture gpt2");
    expect_reject(config_with("architectures", NULL, "model_type", NULL, NULL), "unsupported architecture");
    expect_reject(config_with("architectures", "\"LlamaForCausalLM\"", NULL), "architectures must be a list");
    expect_reject(config_with("architectures", "[1]", NULL), "architectures must be a list");
}
END_TEST

START_TEST(rejects_unsupported_options) {
    expect_reject(config_with("attention_bias", "true", NULL), "attention_bias true is not supported");
    expect_reject(config_with("mlp_bias", "true", NULL), "mlp_bias true is not supported");
    expect_reject(config_with("mlp_bias", "1", NULL), "mlp_bias must be true or false");
    expect_reject(config_with("hidden_act", "\"gelu_pytorch_tanh\"", NULL), "hidden_act \"gelu_pytorch_tanh\"");
    expect_reject(config_with("hidden_act", "7", NULL), "hidden_act must be a string");
    expect_reject(config_with("quantization_config", "{\"quant_method\": \"gptq\"}", NULL), "quantization_config");
    expect_reject(config_with("tie_word_embeddings", "\"yes\"", NULL), "tie_word_embeddings must be true or false");
}
END_TEST

START_TEST(rejects_missing_fields) {
    static const char *const required[] = {"hidden_size", "intermediate_size", "num_hidden_layers",
                                           "num_attention_heads", "vocab_size", "max_position_embeddings"};
    for (size_t i = 0; i < sizeof required / sizeof *required; i++) {
        char want[128];
        snprintf(want, sizeof want, "missing required field %s", required[i]);
        expect_reject(config_with(required[i], NULL, NULL), want);
        /* null is as good as missing for a required field */
        expect_reject(config_with(required[i], "null", NULL), want);
    }
}
END_TEST

START_TEST(rejects_bad_sizes) {
    expect_reject(config_with("hidden_size", "0", NULL), "hidden_size = 0 is out of range");
    expect_reject(config_with("intermediate_size", "-5", NULL), "intermediate_size = -5 is out of range");
    expect_reject(config_with("num_hidden_layers", "0", NULL), "num_hidden_layers = 0");
    expect_reject(config_with("num_hidden_layers", "2000000", NULL), "num_hidden_layers = 2000000 is out of range");
    expect_reject(config_with("num_attention_heads", "1e9", NULL), "num_attention_heads");
    expect_reject(config_with("vocab_size", "1e300", NULL), "vocab_size");
    expect_reject(config_with("vocab_size", "0", NULL), "vocab_size");
    expect_reject(config_with("max_position_embeddings", "4294967296", NULL), "max_position_embeddings");
    expect_reject(config_with("hidden_size", "64.5", NULL), "hidden_size must be an integer");
    expect_reject(config_with("hidden_size", "\"64\"", NULL), "hidden_size must be an integer");
    expect_reject(config_with("hidden_size", "true", NULL), "hidden_size must be an integer");
    expect_reject(config_with("num_key_value_heads", "3", NULL),
                  "num_attention_heads (8) is not a multiple of num_key_value_heads (3)");
    expect_reject(config_with("num_key_value_heads", "0", NULL), "num_key_value_heads");
    expect_reject(config_with("num_key_value_heads", "16", NULL), "not a multiple");
    expect_reject(config_with("hidden_size", "60", NULL), "hidden_size (60) is not a multiple of num_attention_heads (8)");
    expect_reject(config_with("head_dim", "7", NULL), "head_dim 7 must be even");
    expect_reject(config_with("hidden_size", "72", "num_attention_heads", "8", "num_key_value_heads", "8", NULL),
                  "head_dim 9 must be even");
    expect_reject(config_with("head_dim", "0", NULL), "head_dim");
    expect_reject(config_with("head_dim", "100000", NULL), "head_dim");
    expect_reject(config_with("rms_norm_eps", "0", NULL), "rms_norm_eps");
    expect_reject(config_with("rms_norm_eps", "-1e-5", NULL), "rms_norm_eps");
    expect_reject(config_with("rms_norm_eps", "5", NULL), "rms_norm_eps");
    /* found by fuzzing: 1e-95 is positive as a double but 0 as a float */
    expect_reject(config_with("rms_norm_eps", "1e-95", NULL), "rms_norm_eps = 1e-95 must be a positive number");
    expect_reject(config_with("rope_theta", "1e39", NULL), "rope_theta");
}
END_TEST

START_TEST(rejects_bad_json) {
    expect_reject("", "not valid JSON");
    expect_reject("{\"hidden_size\": ", "not valid JSON");
    expect_reject("[1, 2]", "must be a JSON object");
    expect_reject("{} {}", "text after the JSON object");
    expect_reject(config_with("hidden_size", "64", "extra", "1", "extra", "2", NULL), "extra appears twice");
    /* a repeated key in the base is refused too: transformers would read
     * the last value, cJSON the first */
    char twice[8192];
    snprintf(twice, sizeof twice, "%s", config_with(NULL));
    twice[strlen(twice) - 1] = 0;
    strcat(twice, ", \"hidden_size\": 128}");
    expect_reject(twice, "hidden_size appears twice");
    /* the length bounds the text: a good config cut short is refused */
    const char *good = config_with(NULL);
    struct model_config c;
    ck_assert_int_eq(config_parse(good, strlen(good), "x", &c), 0);
    ck_assert_int_eq(config_parse(good, strlen(good) - 1, "x", &c), -1);
}
END_TEST

Suite *test_suite(void) {
    Suite *s = suite_create("config");
    TCase *tc = tcase_create("config");
    tcase_add_test(tc, loads_stories260k);
    tcase_add_test(tc, loads_tiny_llama3);
    tcase_add_test(tc, loads_reference_configs);
    tcase_add_test(tc, defaults_apply);
    tcase_add_test(tc, rope_types);
    tcase_add_test(tc, eos_lists);
    tcase_add_test(tc, generation_config_merges);
    tcase_add_test(tc, rejects_other_architectures);
    tcase_add_test(tc, rejects_unsupported_options);
    tcase_add_test(tc, rejects_missing_fields);
    tcase_add_test(tc, rejects_bad_sizes);
    tcase_add_test(tc, rejects_bad_json);
    suite_add_tcase(s, tc);
    return s;
}
