/* chat.c — chat templates. Models ship a Jinja template; rather than run
 * Jinja, we recognise the three families almost every Llama-style model uses
 * by their markers and write their output for one (system, user) turn. */
#include "tokenizer_internal.h"
#include "dam/common.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int chat_template_detect(const struct tokenizer *t, char *name, size_t size) {
    const char *tmpl = t->chat_template, *found = NULL;
    if (!tmpl) return dam_fail("the tokenizer has no chat template (no chat_template in tokenizer_config.json)");
    if (strstr(tmpl, "<|im_start|>")) found = "chatml";
    else if (strstr(tmpl, "<|start_header_id|>")) found = "llama3";
    else if (strstr(tmpl, "[INST]")) found = "llama2";
    if (!found) return dam_fail("unrecognised chat template (known: chatml, llama3, llama2)");
    snprintf(name, size, "%s", found);
    return 0;
}

/* ChatML templates (SmolLM2, Qwen) write a default system turn as one string
 * literal: '<|im_start|>system\n...<|im_end|>'. Finds such a literal whose
 * text has no quote or expression in it, and unescapes it. */
char *chat_template_default_system(const struct tokenizer *t) {
    static const char marker[] = "<|im_start|>system";
    const char *p = t->chat_template;
    while (p && (p = strstr(p, marker))) {
        p += sizeof marker - 1;
        const char *body = !strncmp(p, "\\n", 2) ? p + 2 : *p == '\n' ? p + 1 : NULL;
        const char *end = body ? strstr(body, "<|im_end|>") : NULL;
        if (!end || end == body || strcspn(body, "'\"{}+") < (size_t)(end - body)) continue;
        char *out = malloc((size_t)(end - body) + 1), *o = out;
        if (!out) { dam_fail("out of memory"); return NULL; }
        for (const char *q = body; q < end; q++) {
            if (*q == '\\' && q + 1 < end) { q++; *o++ = *q == 'n' ? '\n' : *q == 't' ? '\t' : *q; }
            else *o++ = *q;
        }
        *o = 0;
        return out;
    }
    return NULL;
}

/* Jinja's trim / Python's str.strip(): Unicode whitespace and \x1c-\x1f. */
static void trim(const char **s, size_t *n) {
    const char *p = *s;
    size_t len = *n;
    for (;;) {
        uint32_t cp;
        if (!len) break;
        int l = utf8_decode(p, len, &cp);
        if (!unicode_is_space(cp) && !(cp >= 0x1C && cp <= 0x1F)) break;
        p += l;
        len -= (size_t)l;
    }
    while (len) {
        size_t i = len - 1;
        while (i > 0 && ((unsigned char)p[i] & 0xC0) == 0x80) i--;
        uint32_t cp;
        utf8_decode(p + i, len - i, &cp);
        if (!unicode_is_space(cp) && !(cp >= 0x1C && cp <= 0x1F)) break;
        len = i;
    }
    *s = p;
    *n = len;
}

static int add(struct buf *b, const char *s) { return buf_append(b, s, strlen(s)); }

static int add_trimmed(struct buf *b, const char *s) {
    size_t n = strlen(s);
    trim(&s, &n);
    return buf_append(b, s, n);
}

/* <|im_start|>role\ncontent<|im_end|>\n per turn, then the assistant header. */
static int format_chatml(struct buf *b, const char *system, const char *user) {
    if (system && (add(b, "<|im_start|>system\n") || add(b, system) || add(b, "<|im_end|>\n"))) return -1;
    return add(b, "<|im_start|>user\n") || add(b, user) ||
           add(b, "<|im_end|>\n<|im_start|>assistant\n") ? -1 : 0;
}

/* BOS, then <|start_header_id|>role<|end_header_id|>\n\ncontent|trim<|eot_id|>
 * per turn, then the assistant header. */
static int format_llama3(struct buf *b, const char *system, const char *user) {
    if (add(b, "<|begin_of_text|>")) return -1;
    if (system && (add(b, "<|start_header_id|>system<|end_header_id|>\n\n") || add_trimmed(b, system) ||
                   add(b, "<|eot_id|>")))
        return -1;
    return add(b, "<|start_header_id|>user<|end_header_id|>\n\n") || add_trimmed(b, user) ||
           add(b, "<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n") ? -1 : 0;
}

/* <s>[INST] (<<SYS>>\nsystem\n<</SYS>>\n\n + user).strip() [/INST]: the
 * model's answer follows directly. */
static int format_llama2(struct buf *b, const char *system, const char *user) {
    struct buf content = {0};
    int rc = 0;
    if (system) rc = add(&content, "<<SYS>>\n") || add(&content, system) || add(&content, "\n<</SYS>>\n\n");
    rc = rc || add(&content, user);
    if (rc == 0) {
        const char *s = content.data;
        size_t n = content.len;
        trim(&s, &n);
        rc = add(b, "<s>[INST] ") || buf_append(b, s, n) || add(b, " [/INST]");
    }
    buf_free(&content);
    return rc ? -1 : 0;
}

char *chat_format(const char *template_name, const char *system, const char *user) {
    struct buf b = {0};
    int rc;
    if (system && !*system) system = NULL;
    if (!user) user = "";
    if (!template_name) template_name = "";
    if (!strcmp(template_name, "chatml")) rc = format_chatml(&b, system, user);
    else if (!strcmp(template_name, "llama3")) rc = format_llama3(&b, system, user);
    else if (!strcmp(template_name, "llama2")) rc = format_llama2(&b, system, user);
    else {
        dam_fail("unknown chat template '%s' (known: chatml, llama3, llama2)", template_name);
        return NULL;
    }
    if (rc != 0 || buf_reserve(&b, 0) != 0) { buf_free(&b); return NULL; }
    return b.data;
}

/* The next turn of a conversation whose last turn is the assistant's answer
 * (its text already in the transcript, its end-of-turn marker not: a model
 * that stops at that marker never has it evaluated): the marker, the user's
 * turn, the assistant header, as each template writes a later turn. */
char *chat_format_next(const char *template_name, const char *user) {
    struct buf b = {0};
    int rc;
    if (!user) user = "";
    if (!template_name) template_name = "";
    if (!strcmp(template_name, "chatml"))
        rc = add(&b, "<|im_end|>\n<|im_start|>user\n") || add(&b, user) ||
             add(&b, "<|im_end|>\n<|im_start|>assistant\n");
    else if (!strcmp(template_name, "llama3"))
        rc = add(&b, "<|eot_id|><|start_header_id|>user<|end_header_id|>\n\n") || add_trimmed(&b, user) ||
             add(&b, "<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n");
    else if (!strcmp(template_name, "llama2"))             /* ' ' + answer + ' ' + eos, then bos [INST] */
        rc = add(&b, " </s><s>[INST] ") || add_trimmed(&b, user) || add(&b, " [/INST]");
    else {
        dam_fail("unknown chat template '%s' (known: chatml, llama3, llama2)", template_name);
        return NULL;
    }
    if (rc != 0 || buf_reserve(&b, 0) != 0) { buf_free(&b); return NULL; }
    return b.data;
}
