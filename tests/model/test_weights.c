/* test_weights.c — loading model folders: every way a checkpoint can
 * disagree with its config is a clear error naming the tensor. */
#include "../harness.h"
#include "dam/common.h"
#include "dam/model.h"
#include "dam/safetensors.h"
#include "dam/session.h"
#include <stdlib.h>
#include <string.h>

/* A tiny Llama: dim 8, hidden 16, 1 layer, 2 heads, 1 KV head, vocab 10. */
static const char *CONFIG =
    "{\"architectures\":[\"LlamaForCausalLM\"],\"model_type\":\"llama\",\"hidden_size\":8,"
    "\"intermediate_size\":16,\"num_hidden_layers\":1,\"num_attention_heads\":2,"
    "\"num_key_value_heads\":1,\"vocab_size\":10,\"max_position_embeddings\":32,"
    "\"rms_norm_eps\":1e-5,\"rope_theta\":10000.0,\"tie_word_embeddings\":true,"
    "\"bos_token_id\":1,\"eos_token_id\":2,\"hidden_act\":\"silu\"}";

struct spec { const char *name; int rows, cols; };   /* rows 0: a vector */
static const struct spec TENSORS[] = {
    { "model.embed_tokens.weight", 10, 8 },
    { "model.layers.0.input_layernorm.weight", 0, 8 },
    { "model.layers.0.self_attn.q_proj.weight", 8, 8 },
    { "model.layers.0.self_attn.k_proj.weight", 4, 8 },
    { "model.layers.0.self_attn.v_proj.weight", 4, 8 },
    { "model.layers.0.self_attn.o_proj.weight", 8, 8 },
    { "model.layers.0.post_attention_layernorm.weight", 0, 8 },
    { "model.layers.0.mlp.gate_proj.weight", 16, 8 },
    { "model.layers.0.mlp.up_proj.weight", 16, 8 },
    { "model.layers.0.mlp.down_proj.weight", 8, 16 },
    { "model.norm.weight", 0, 8 },
};
#define N_TENSORS (int)(sizeof TENSORS / sizeof TENSORS[0])

static void write_text(const char *dir, const char *name, const char *text) {
    char path[512];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    ck_assert_int_eq(write_file_atomic(path, text, strlen(text)), 0);
}

/* Writes the tiny model; `skip` leaves a tensor out, `bad_shape` gives one the
 * wrong shape, `bad_dtype` stores one as I32, `extra` adds a tensor. */
static const char *tiny_model(const char *skip, const char *bad_shape, const char *bad_dtype, const char *extra) {
    const char *dir = tmp_dir();
    write_text(dir, "config.json", CONFIG);
    struct st_writer *w = st_writer_new();
    static float data[16 * 16];
    for (int i = 0; i < 256; i++) data[i] = (float)((i * 7919) % 13 - 6) / 10.0f;
    for (int i = 0; i < N_TENSORS; i++) {
        const struct spec *t = &TENSORS[i];
        if (skip && !strcmp(skip, t->name)) continue;
        int64_t shape[2] = { t->rows, t->cols };
        int ndim = t->rows ? 2 : 1;
        if (!t->rows) shape[0] = t->cols;
        if (bad_shape && !strcmp(bad_shape, t->name)) shape[ndim - 1] += 1;
        enum dtype dt = bad_dtype && !strcmp(bad_dtype, t->name) ? DT_I32 : DT_F32;
        ck_assert_int_eq(st_writer_add(w, t->name, dt, ndim, shape, data), 0);
    }
    if (extra) {
        int64_t shape[1] = { 8 };
        ck_assert_int_eq(st_writer_add(w, extra, DT_F32, 1, shape, data), 0);
    }
    char path[512];
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    ck_assert_msg(st_writer_save(w, path) == 0, "%s", dam_last_error());
    st_writer_free(w);
    return dir;
}

static void expect_load_error(const char *dir, const char *needle) {
    struct model *m = model_load(dir);
    ck_assert_ptr_null(m);
    ck_assert_msg(strstr(dam_last_error(), needle), "error '%s' lacks '%s'", dam_last_error(), needle);
}

START_TEST(tiny_model_loads_and_runs) {
    struct model *m = model_load(tiny_model(NULL, NULL, NULL, NULL));
    ck_assert_msg(m != NULL, "%s", dam_last_error());
    ck_assert_int_eq(m->n_params, 10 * 8 + 8 + 64 + 32 + 32 + 64 + 8 + 128 + 128 + 128 + 8);
    struct attn_options o;
    attn_options_default(&o);
    struct session *s = session_new(m, attn_find("full"), &o, 0);
    int ids[3] = { 1, 5, 9 };
    float logits[10];
    ck_assert_int_eq(session_eval(s, ids, 3, logits, LOGITS_LAST), 0);
    session_free(s);
    model_free(m);
}
END_TEST

START_TEST(missing_tensor) {
    expect_load_error(tiny_model("model.layers.0.mlp.up_proj.weight", NULL, NULL, NULL),
                      "tensor model.layers.0.mlp.up_proj.weight is missing");
}
END_TEST

START_TEST(shape_mismatch) {
    expect_load_error(tiny_model(NULL, "model.layers.0.self_attn.k_proj.weight", NULL, NULL),
                      "model.layers.0.self_attn.k_proj.weight has shape [4, 9], config says [4, 8]");
}
END_TEST

START_TEST(wrong_dtype) {
    expect_load_error(tiny_model(NULL, NULL, "model.norm.weight", NULL), "model.norm.weight has dtype I32");
}
END_TEST

START_TEST(bias_without_config) {
    expect_load_error(tiny_model(NULL, NULL, NULL, "model.layers.0.self_attn.q_proj.bias"), "attention bias");
}
END_TEST

START_TEST(missing_folder_and_weights) {
    expect_load_error("/nonexistent/model", "model folder /nonexistent/model not found");
    const char *dir = tmp_dir();
    write_text(dir, "config.json", CONFIG);
    expect_load_error(dir, "neither model.safetensors nor model.safetensors.index.json");
}
END_TEST

START_TEST(index_names_missing_shard) {
    const char *dir = tiny_model(NULL, NULL, NULL, NULL);
    write_text(dir, "model.safetensors.index.json",
               "{\"weight_map\":{\"model.norm.weight\":\"model-00002-of-00002.safetensors\"}}");
    expect_load_error(dir, "model-00002-of-00002.safetensors");
}
END_TEST

START_TEST(index_tensor_not_in_shard) {
    const char *dir = tiny_model(NULL, NULL, NULL, NULL);
    write_text(dir, "model.safetensors.index.json",
               "{\"weight_map\":{\"model.ghost.weight\":\"model.safetensors\"}}");
    expect_load_error(dir, "tensor model.ghost.weight is not in model.safetensors");
}
END_TEST

START_TEST(index_path_escape) {
    const char *dir = tiny_model(NULL, NULL, NULL, NULL);
    write_text(dir, "model.safetensors.index.json",
               "{\"weight_map\":{\"model.norm.weight\":\"../model.safetensors\"}}");
    expect_load_error(dir, "not a file name in the folder");
}
END_TEST

START_TEST(truncated_shard) {
    const char *dir = tiny_model(NULL, NULL, NULL, NULL);
    char path[512];
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    size_t len;
    char *bytes = read_file(path, &len);
    ck_assert_int_eq(write_file_atomic(path, bytes, len - 100), 0);
    free(bytes);
    expect_load_error(dir, "model.safetensors");
}
END_TEST

Suite *test_suite(void) {
    Suite *s = suite_create("weights");
    TCase *tc = tcase_create("load");
    tcase_add_test(tc, tiny_model_loads_and_runs);
    tcase_add_test(tc, missing_tensor);
    tcase_add_test(tc, shape_mismatch);
    tcase_add_test(tc, wrong_dtype);
    tcase_add_test(tc, bias_without_config);
    tcase_add_test(tc, missing_folder_and_weights);
    tcase_add_test(tc, index_names_missing_shard);
    tcase_add_test(tc, index_tensor_not_in_shard);
    tcase_add_test(tc, index_path_escape);
    tcase_add_test(tc, truncated_shard);
    suite_add_tcase(s, tc);
    return s;
}
