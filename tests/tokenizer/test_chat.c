/* test_chat.c — chat templates: recognising the family from
 * tokenizer_config.json (or chat_template.jinja), formatting one turn, and
 * encoding the result without doubling the BOS. */
#include "../harness.h"
#include "dam/common.h"
#include "dam/tokenizer.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The templates as they appear in tokenizer_config.json (JSON text: the
 * Jinja source writes newlines as the two characters \n). */
#define SMOLLM2_TEMPLATE \
    "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}" \
    "{{ '<|im_start|>system\\\\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\\\\n' }}" \
    "{% endif %}{{'<|im_start|>' + message['role'] + '\\\\n' + message['content'] + '<|im_end|>' + '\\\\n'}}" \
    "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\\\n' }}{% endif %}"
#define LLAMA3_TEMPLATE \
    "{% set loop_messages = messages %}{% for message in loop_messages %}{% set content = " \
    "'<|start_header_id|>' + message['role'] + '<|end_header_id|>\\\\n\\\\n'+ message['content'] | trim + " \
    "'<|eot_id|>' %}{% if loop.index0 == 0 %}{% set content = bos_token + content %}{% endif %}{{ content }}" \
    "{% endfor %}{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\\\\n\\\\n' }}{% endif %}"
#define LLAMA2_TEMPLATE \
    "{% if messages[0]['role'] == 'system' %}{% set system_message = messages[0]['content'] %}{% endif %}" \
    "{% for message in messages %}{% if message['role'] == 'user' %}{{ bos_token + '[INST] ' + " \
    "message['content'].strip() + ' [/INST]' }}{% endif %}{% endfor %}"

static const char TINY_TOKENIZER[] = "{\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":0},\"merges\":[]}}";

static void write_text(const char *dir, const char *name, const char *text) {
    char path[512];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    fputs(text, f);
    fclose(f);
}

/* A folder with a tiny tokenizer.json and the given tokenizer_config.json. */
static struct tokenizer *with_config(const char *config) {
    const char *dir = tmp_dir();
    write_text(dir, "tokenizer.json", TINY_TOKENIZER);
    if (config) write_text(dir, "tokenizer_config.json", config);
    struct tokenizer *t = tokenizer_load(dir);
    ck_assert_msg(t != NULL, "%s", dam_last_error());
    return t;
}

static void expect_detected(const char *config, const char *want) {
    struct tokenizer *t = with_config(config);
    char name[32];
    ck_assert_int_eq(chat_template_detect(t, name, sizeof name), 0);
    ck_assert_str_eq(name, want);
    tokenizer_free(t);
}

START_TEST(detects_the_three_families) {
    expect_detected("{\"chat_template\": \"" SMOLLM2_TEMPLATE "\"}", "chatml");
    expect_detected("{\"chat_template\": \"" LLAMA3_TEMPLATE "\"}", "llama3");
    expect_detected("{\"chat_template\": \"" LLAMA2_TEMPLATE "\"}", "llama2");
    /* the list form names its templates; "default" is the one used */
    expect_detected("{\"chat_template\": [{\"name\": \"tool_use\", \"template\": \"" LLAMA2_TEMPLATE "\"},"
                    " {\"name\": \"default\", \"template\": \"" SMOLLM2_TEMPLATE "\"}]}", "chatml");
}
END_TEST

START_TEST(jinja_file_is_read) {
    const char *dir = tmp_dir();
    write_text(dir, "tokenizer.json", TINY_TOKENIZER);
    write_text(dir, "chat_template.jinja", "{{ bos_token }}<|start_header_id|>...");
    struct tokenizer *t = tokenizer_load(dir);
    ck_assert_ptr_nonnull(t);
    char name[32];
    ck_assert_int_eq(chat_template_detect(t, name, sizeof name), 0);
    ck_assert_str_eq(name, "llama3");
    tokenizer_free(t);
}
END_TEST

START_TEST(missing_or_unknown_template_is_an_error) {
    char name[32];
    struct tokenizer *t = with_config(NULL);
    ck_assert_int_eq(chat_template_detect(t, name, sizeof name), -1);
    ck_assert_ptr_nonnull(strstr(dam_last_error(), "no chat template"));
    tokenizer_free(t);
    t = with_config("{\"bos_token\": \"<s>\"}");
    ck_assert_int_eq(chat_template_detect(t, name, sizeof name), -1);
    tokenizer_free(t);
    t = with_config("{\"chat_template\": \"{% for m in messages %}{{ m['content'] }}{% endfor %}\"}");
    ck_assert_int_eq(chat_template_detect(t, name, sizeof name), -1);
    ck_assert_ptr_nonnull(strstr(dam_last_error(), "unrecognised chat template"));
    tokenizer_free(t);
}
END_TEST

START_TEST(default_system_prompt_of_chatml) {
    struct tokenizer *t = with_config("{\"chat_template\": \"" SMOLLM2_TEMPLATE "\"}");
    char *sys = chat_template_default_system(t);
    ck_assert_ptr_nonnull(sys);
    ck_assert_str_eq(sys, "You are a helpful AI assistant named SmolLM, trained by Hugging Face");
    free(sys);
    tokenizer_free(t);
    t = with_config("{\"chat_template\": \"" LLAMA3_TEMPLATE "\"}");
    ck_assert_ptr_null(chat_template_default_system(t));
    tokenizer_free(t);
}
END_TEST

static void expect_format(const char *name, const char *system, const char *user, const char *want) {
    char *text = chat_format(name, system, user);
    ck_assert_msg(text != NULL, "%s", dam_last_error());
    ck_assert_str_eq(text, want);
    free(text);
}

START_TEST(formats_one_turn) {
    expect_format("chatml", "Be brief.", "Hi",
                  "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n");
    expect_format("chatml", NULL, "Hi", "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n");
    expect_format("chatml", "", "Hi", "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n");
    expect_format("llama3", "Be brief.", "  Hi \n",
                  "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nBe brief.<|eot_id|>"
                  "<|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|>"
                  "<|start_header_id|>assistant<|end_header_id|>\n\n");
    expect_format("llama3", NULL, "Hi",
                  "<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|>"
                  "<|start_header_id|>assistant<|end_header_id|>\n\n");
    expect_format("llama2", "Be brief.", "Hi ", "<s>[INST] <<SYS>>\nBe brief.\n<</SYS>>\n\nHi [/INST]");
    expect_format("llama2", NULL, " Hi", "<s>[INST] Hi [/INST]");
    expect_format("chatml", NULL, "", "<|im_start|>user\n<|im_end|>\n<|im_start|>assistant\n");
    ck_assert_ptr_null(chat_format("vicuna", NULL, "Hi"));
    ck_assert_ptr_nonnull(strstr(dam_last_error(), "unknown chat template 'vicuna'"));
}
END_TEST

/* A follow-up (dam run -i): first turn + answer + chat_format_next is what
 * the model's Jinja template renders for [user, assistant, user] with the
 * generation prompt. */
static void expect_follow_up(const char *name, const char *answer, const char *want) {
    char *first = chat_format(name, NULL, "Q1"), *next = chat_format_next(name, " Q2 ");
    ck_assert_ptr_nonnull(first);
    ck_assert_ptr_nonnull(next);
    char text[512];
    snprintf(text, sizeof text, "%s%s%s", first, answer, next);
    ck_assert_str_eq(text, want);
    free(first);
    free(next);
}

START_TEST(formats_a_follow_up) {
    expect_follow_up("chatml", "A1", "<|im_start|>user\nQ1<|im_end|>\n<|im_start|>assistant\nA1<|im_end|>\n"
                                     "<|im_start|>user\n Q2 <|im_end|>\n<|im_start|>assistant\n");
    expect_follow_up("llama3", "A1", "<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nQ1<|eot_id|>"
                                     "<|start_header_id|>assistant<|end_header_id|>\n\nA1<|eot_id|>"
                                     "<|start_header_id|>user<|end_header_id|>\n\nQ2<|eot_id|>"
                                     "<|start_header_id|>assistant<|end_header_id|>\n\n");
    expect_follow_up("llama2", " A1", "<s>[INST] Q1 [/INST] A1 </s><s>[INST] Q2 [/INST]");
    ck_assert_ptr_null(chat_format_next("vicuna", "Hi"));
}
END_TEST

/* The templated text carries its BOS; the post-processor's BOS is not added twice. */
START_TEST(chat_encoding_keeps_one_bos) {
    struct tokenizer *t = tokenizer_load("third_party/tokenizers/llama3style");
    ck_assert_ptr_nonnull(t);
    char *text = chat_format("llama3", "Be brief.", "Hello");
    int *plain, n_plain, *chat, n_chat, *doubled, n_doubled;
    ck_assert_int_eq(tokenizer_encode(t, text, strlen(text), 0, &plain, &n_plain), 0);
    ck_assert_int_eq(tokenizer_encode_chat(t, text, strlen(text), 1, &chat, &n_chat), 0);
    ck_assert_int_eq(tokenizer_encode(t, text, strlen(text), 1, &doubled, &n_doubled), 0);
    ck_assert_int_eq(plain[0], 0);                  /* <|begin_of_text|> from the text */
    ck_assert_int_ne(plain[1], 0);
    ck_assert_int_eq(n_chat, n_plain);
    ck_assert_int_eq(memcmp(chat, plain, (size_t)n_plain * sizeof *plain), 0);
    ck_assert_int_eq(n_doubled, n_plain + 1);       /* what plain add_special would do */
    ck_assert_int_eq(doubled[1], 0);
    free(plain); free(chat); free(doubled); free(text);
    tokenizer_free(t);

    /* a template without BOS on a tokenizer whose post-processor adds one */
    t = tokenizer_load("third_party/models/stories260k");
    ck_assert_ptr_nonnull(t);
    text = chat_format("chatml", NULL, "Hi");
    ck_assert_int_eq(tokenizer_encode_chat(t, text, strlen(text), 1, &chat, &n_chat), 0);
    ck_assert_int_eq(tokenizer_encode(t, text, strlen(text), 1, &plain, &n_plain), 0);
    ck_assert_int_eq(n_chat, n_plain);
    ck_assert_int_eq(chat[0], 1);
    ck_assert_int_ne(chat[1], 1);
    free(plain); free(chat); free(text);
    text = chat_format("llama2", NULL, "Hi");
    ck_assert_int_eq(tokenizer_encode_chat(t, text, strlen(text), 1, &chat, &n_chat), 0);
    ck_assert_int_eq(chat[0], 1);
    ck_assert_int_ne(chat[1], 1);
    free(chat); free(text);
    tokenizer_free(t);
}
END_TEST

Suite *test_suite(void) {
    Suite *s = suite_create("chat");
    TCase *tc = tcase_create("chat");
    tcase_add_test(tc, detects_the_three_families);
    tcase_add_test(tc, jinja_file_is_read);
    tcase_add_test(tc, missing_or_unknown_template_is_an_error);
    tcase_add_test(tc, default_system_prompt_of_chatml);
    tcase_add_test(tc, formats_one_turn);
    tcase_add_test(tc, formats_a_follow_up);
    tcase_add_test(tc, chat_encoding_keeps_one_bos);
    suite_add_tcase(s, tc);
    return s;
}
