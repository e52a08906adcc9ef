/* regex.c — the tokenizer's regexes, run by PCRE2 the way the tokenizers
 * library runs them with Oniguruma: UTF-8 with Unicode properties (\p{L},
 * \p{N}), ^ and $ at line ends, and the same order of matches. Each pattern
 * is compiled once and JIT-compiled when PCRE2 has a JIT. */
#include "tokenizer_internal.h"
#include "dam/common.h"
#include <stdlib.h>
#include <string.h>

/* Oniguruma's \s is Unicode White_Space, which includes U+0085 (NEL); PCRE2's
 * \s under UCP does not. So \s becomes [\s\x{85}] (\s\x{85} inside a class)
 * and \S becomes [^\s\x{85}]. Everything else is copied unchanged. */
static int rewrite_spaces(const char *p, size_t n, struct buf *out) {
    int in_class = 0;
    for (size_t i = 0; i < n; i++) {
        char c = p[i];
        if (c == '\\' && i + 1 < n) {
            char e = p[i + 1];
            const char *with = NULL;
            if (e == 's') with = in_class ? "\\s\\x{85}" : "[\\s\\x{85}]";
            else if (e == 'S' && !in_class) with = "[^\\s\\x{85}]";
            if (with) { if (buf_append(out, with, strlen(with)) != 0) return -1; }
            else if (buf_append(out, p + i, 2) != 0) return -1;
            i++;
            continue;
        }
        if (!in_class && c == '[') {
            /* a ']' right after '[' or '[^' is a literal, not the end */
            size_t j = i + 1;
            if (j < n && p[j] == '^') j++;
            if (j < n && p[j] == ']') j++;
            if (buf_append(out, p + i, j - i) != 0) return -1;
            i = j - 1;
            in_class = 1;
            continue;
        }
        if (in_class && c == '[' && i + 1 < n && p[i + 1] == ':') {
            /* POSIX class [:alpha:] inside a class: copy through its ":]" */
            const char *end = memmem(p + i + 2, n - i - 2, ":]", 2);
            size_t stop = end ? (size_t)(end - p) + 2 : i + 1;
            if (buf_append(out, p + i, stop - i) != 0) return -1;
            i = stop - 1;
            continue;
        }
        if (in_class && c == ']') in_class = 0;
        if (buf_append(out, &c, 1) != 0) return -1;
    }
    return 0;
}

struct regex *regex_compile(const char *pattern, size_t len, int literal, const char *what) {
    struct buf rewritten = {0};
    const char *src = pattern;
    size_t src_len = len;
    if (!literal) {
        if (rewrite_spaces(pattern, len, &rewritten) != 0) return NULL;
        src = rewritten.data ? rewritten.data : "";
        src_len = rewritten.len;
    }
    pcre2_compile_context *cctx = pcre2_compile_context_create(NULL);
    if (!cctx) { buf_free(&rewritten); dam_fail("out of memory (regex)"); return NULL; }
    pcre2_set_newline(cctx, PCRE2_NEWLINE_LF);
    uint32_t options = PCRE2_UTF | (literal ? PCRE2_LITERAL : PCRE2_UCP | PCRE2_MULTILINE);
    int err;
    PCRE2_SIZE err_at;
    pcre2_code *code = pcre2_compile((PCRE2_SPTR)src, src_len, options, &err, &err_at, cctx);
    pcre2_compile_context_free(cctx);
    buf_free(&rewritten);
    if (!code) {
        PCRE2_UCHAR msg[256];
        pcre2_get_error_message(err, msg, sizeof msg);
        dam_fail("%s: bad regex '%.*s': %s (at %zu)", what, (int)(len > 200 ? 200 : len), pattern,
                 (char *)msg, (size_t)err_at);
        return NULL;
    }
    pcre2_jit_compile(code, PCRE2_JIT_COMPLETE);   /* no JIT: the interpreter runs it */
    struct regex *re = calloc(1, sizeof *re);
    if (!re) { pcre2_code_free(code); dam_fail("out of memory (regex)"); return NULL; }
    re->code = code;
    return re;
}

void regex_free(struct regex *re) {
    if (!re) return;
    pcre2_code_free(re->code);
    free(re);
}

int regex_scratch_init(struct regex_scratch *rs) {
    memset(rs, 0, sizeof *rs);
    rs->md = pcre2_match_data_create(1, NULL);   /* only the whole match is read */
    rs->mctx = pcre2_match_context_create(NULL);
    rs->jit_stack = pcre2_jit_stack_create(32 * 1024, 4 * 1024 * 1024, NULL);
    if (!rs->md || !rs->mctx) {
        regex_scratch_free(rs);
        return dam_fail("out of memory (regex match data)");
    }
    if (rs->jit_stack) pcre2_jit_stack_assign(rs->mctx, NULL, rs->jit_stack);
    return 0;
}

void regex_scratch_free(struct regex_scratch *rs) {
    if (rs->md) pcre2_match_data_free(rs->md);
    if (rs->mctx) pcre2_match_context_free(rs->mctx);
    if (rs->jit_stack) pcre2_jit_stack_free(rs->jit_stack);
    memset(rs, 0, sizeof *rs);
}

int regex_search(const struct regex *re, struct regex_scratch *rs, const char *s, size_t n,
                 size_t start, size_t *ms, size_t *me) {
    /* The text was validated once up front; PCRE2_NO_UTF_CHECK keeps each
     * call from re-checking the whole subject (quadratic on long texts). */
    int rc = pcre2_match(re->code, (PCRE2_SPTR)s, n, start, PCRE2_NO_UTF_CHECK, rs->md, rs->mctx);
    if (rc == PCRE2_ERROR_NOMATCH) return 0;
    if (rc < 0) {
        PCRE2_UCHAR msg[256];
        pcre2_get_error_message(rc, msg, sizeof msg);
        return dam_fail("regex match failed: %s", (char *)msg);
    }
    PCRE2_SIZE *ov = pcre2_get_ovector_pointer(rs->md);
    *ms = ov[0];
    *me = ov[1];
    return 1;
}

int regex_match_at(const struct regex *re, struct regex_scratch *rs, const char *s, size_t n, size_t start) {
    int rc = pcre2_match(re->code, (PCRE2_SPTR)s, n, start, PCRE2_NO_UTF_CHECK | PCRE2_ANCHORED, rs->md, rs->mctx);
    if (rc == PCRE2_ERROR_NOMATCH) return 0;
    if (rc < 0) return dam_fail("regex match failed (%d)", rc);
    return 1;
}

int regex_find_all(const struct regex *re, struct regex_scratch *rs, const char *s, size_t n,
                   struct span_vec *out) {
    size_t pos = 0, last_match_end = 0;
    int have_last = 0;
    while (pos <= n) {
        size_t ms, me;
        int found = regex_search(re, rs, s, n, pos, &ms, &me);
        if (found < 0) return -1;
        if (!found) break;
        if (ms == me && have_last && last_match_end == me) {
            /* an empty match where the last one ended: step over one char */
            if (pos >= n) break;
            pos += (size_t)utf8_len_at((unsigned char)s[pos]);
            continue;
        }
        if (span_push(out, ms, me, 1) != 0) return -1;
        pos = me;
        last_match_end = me;
        have_last = 1;
    }
    return 0;
}
