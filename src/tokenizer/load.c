/* load.c — tokenizer.json (and tokenizer_config.json) into struct tokenizer.
 *
 * Each section of the file has its parse_* function; whatever the tokenizers
 * library would do differently from what we implement is refused here, with
 * the type named, rather than silently encoded differently later. */
#include "tokenizer_internal.h"
#include "dam/common.h"
#include <cjson/cJSON.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_VOCAB (1 << 24)

/* \w as the library's regex engines define it (Unicode "Word": letters,
 * marks, decimal and letter numbers, connector punctuation, ZWNJ/ZWJ).
 * PCRE2's own \w lacks the marks and takes every number. */
#define WORD_CHAR "[\\p{L}\\p{Nl}\\p{Nd}\\p{M}\\p{Pc}\\x{200C}\\x{200D}]"
#define NOT_WORD_OR_SPACE "[^\\p{L}\\p{Nl}\\p{Nd}\\p{M}\\p{Pc}\\x{200C}\\x{200D}\\s]"

/* GPT-2's pre-tokenizer regex, used by ByteLevel with use_regex. */
static const char BYTE_LEVEL_REGEX[] =
    "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+";

/* ---- small JSON helpers ---- */

static const cJSON *field(const cJSON *o, const char *key) {
    return cJSON_IsObject(o) ? cJSON_GetObjectItemCaseSensitive(o, key) : NULL;
}

static const char *field_str(const cJSON *o, const char *key) {
    const cJSON *v = field(o, key);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

static int field_bool(const cJSON *o, const char *key, int def) {
    const cJSON *v = field(o, key);
    return cJSON_IsBool(v) ? cJSON_IsTrue(v) : def;
}

static int field_int(const cJSON *o, const char *key, int def) {
    const cJSON *v = field(o, key);
    return cJSON_IsNumber(v) ? v->valueint : def;   /* cJSON saturates valueint: no UB cast */
}

static char *dup_str(const char *s) {
    char *d = strdup(s ? s : "");
    if (!d) dam_fail("out of memory (tokenizer string)");
    return d;
}

/* A {"String": s} or {"Regex": r} pattern: returns the text, *is_regex. */
static const char *parse_pattern(const cJSON *o, int *is_regex, const char *what) {
    const cJSON *p = field(o, "pattern");
    const char *s = field_str(p, "String");
    if (s) { *is_regex = 0; return s; }
    s = field_str(p, "Regex");
    if (s) { *is_regex = 1; return s; }
    dam_fail("%s: pattern must be {\"String\": ...} or {\"Regex\": ...}", what);
    return NULL;
}

/* ---- model: BPE ---- */

static int parse_vocab_ids(struct tokenizer *t, const cJSON *vocab) {
    int max_id = -1;
    for (const cJSON *e = vocab->child; e; e = e->next) {
        if (!cJSON_IsNumber(e) || e->valuedouble < 0 || e->valuedouble >= MAX_VOCAB)
            return dam_fail("tokenizer.json: vocab entry '%s' has a bad id", e->string ? e->string : "");
        if ((int)e->valuedouble > max_id) max_id = (int)e->valuedouble;
    }
    t->vocab_size = max_id + 1;   /* added tokens may extend it */
    return 0;
}

static int parse_vocab(struct tokenizer *t, const cJSON *vocab) {
    struct bpe *m = &t->bpe;
    int n = cJSON_GetArraySize(vocab);
    t->model_pieces = calloc((size_t)t->vocab_size + 1, sizeof *t->model_pieces);
    t->vocab_keys = calloc((size_t)n + 1, sizeof *t->vocab_keys);
    if (!t->model_pieces || !t->vocab_keys) return dam_fail("out of memory (vocabulary)");
    if (str_map_init(&m->vocab, (size_t)n) != 0) return -1;
    for (const cJSON *e = vocab->child; e; e = e->next) {
        int id = (int)e->valuedouble;
        size_t len = strlen(e->string);
        if (!utf8_valid(e->string, len, NULL))
            return dam_fail("tokenizer.json: vocab entry %d is not valid UTF-8", id);
        char *key = dup_str(e->string);
        if (!key) return -1;
        t->vocab_keys[t->n_vocab_keys++] = key;
        if (!t->model_pieces[id]) t->model_pieces[id] = key;   /* one id, two strings: the first names it */
        if (str_map_put(&m->vocab, key, len, id) != 0) return -1;
    }
    return 0;
}

static int vocab_id(const struct bpe *m, const char *s, size_t len) {
    return str_map_get(&m->vocab, s, len);
}

/* One merge "a b" or ["a", "b"] of rank `rank`. */
static int parse_merge(struct bpe *m, const cJSON *e, int rank, struct buf *tmp) {
    const char *a, *b;
    size_t a_len, b_len;
    if (cJSON_IsString(e)) {
        const char *s = e->valuestring, *sp = strchr(s, ' ');
        if (!sp || strchr(sp + 1, ' '))
            return dam_fail("tokenizer.json: merge %d ('%s') is not two tokens separated by a space", rank, s);
        a = s; a_len = (size_t)(sp - s);
        b = sp + 1; b_len = strlen(b);
    } else if (cJSON_IsArray(e) && cJSON_GetArraySize(e) == 2 &&
               cJSON_IsString(e->child) && cJSON_IsString(e->child->next)) {
        a = e->child->valuestring; a_len = strlen(a);
        b = e->child->next->valuestring; b_len = strlen(b);
    } else {
        return dam_fail("tokenizer.json: merge %d is neither \"a b\" nor [\"a\", \"b\"]", rank);
    }
    int left = vocab_id(m, a, a_len), right = vocab_id(m, b, b_len);
    if (left < 0) return dam_fail("tokenizer.json: merge %d: '%.*s' is not in the vocab", rank, (int)a_len, a);
    if (right < 0) return dam_fail("tokenizer.json: merge %d: '%.*s' is not in the vocab", rank, (int)b_len, b);
    /* with a continuing-subword prefix the right part loses it when merged */
    size_t skip = m->prefix && b_len >= strlen(m->prefix) ? strlen(m->prefix) : 0;
    if (buf_set(tmp, a, a_len) != 0 || buf_append(tmp, b + skip, b_len - skip) != 0) return -1;
    int merged = vocab_id(m, tmp->data, tmp->len);
    if (merged < 0)
        return dam_fail("tokenizer.json: merge %d: '%s' is not in the vocab", rank, tmp->data);
    return pair_map_put(&m->merges, left, right, rank, merged);
}

static int parse_model(struct tokenizer *t, const cJSON *model) {
    struct bpe *m = &t->bpe;
    const char *type = field_str(model, "type");
    const cJSON *vocab = field(model, "vocab"), *merges = field(model, "merges");
    if (!model) return dam_fail("tokenizer.json: no \"model\"");
    if (type ? strcmp(type, "BPE") != 0 : !merges)
        return dam_fail("unsupported model %s (only BPE tokenizers are supported)", type ? type : "(untyped)");
    if (!cJSON_IsObject(vocab)) return dam_fail("tokenizer.json: BPE model without a vocab object");
    if (merges && !cJSON_IsArray(merges)) return dam_fail("tokenizer.json: BPE merges is not an array");
    const cJSON *dropout = field(model, "dropout");
    if (cJSON_IsNumber(dropout) && dropout->valuedouble > 0)
        return dam_fail("unsupported BPE option dropout (random segmentation)");
    m->fuse_unk = field_bool(model, "fuse_unk", 0);
    m->byte_fallback = field_bool(model, "byte_fallback", 0);
    m->ignore_merges = field_bool(model, "ignore_merges", 0);
    const char *prefix = field_str(model, "continuing_subword_prefix");
    const char *suffix = field_str(model, "end_of_word_suffix");
    if (prefix && *prefix && !(m->prefix = dup_str(prefix))) return -1;
    if (suffix && *suffix && !(m->suffix = dup_str(suffix))) return -1;

    if (parse_vocab_ids(t, vocab) != 0 || parse_vocab(t, vocab) != 0) return -1;

    const char *unk = field_str(model, "unk_token");
    m->unk_id = -1;
    if (unk) {
        if (!(m->unk_token = dup_str(unk))) return -1;
        m->unk_id = vocab_id(m, unk, strlen(unk));
        m->unk_missing = m->unk_id < 0;   /* an error only if an unknown char shows up */
    }
    for (int b = 0; b < 256; b++) {
        char name[8];
        snprintf(name, sizeof name, "<0x%02X>", b);
        m->byte_ids[b] = vocab_id(m, name, 6);
    }

    int n_merges = merges ? cJSON_GetArraySize(merges) : 0;
    if (pair_map_init(&m->merges, (size_t)n_merges) != 0) return -1;
    struct buf tmp = {0};
    int rank = 0;
    for (const cJSON *e = merges ? merges->child : NULL; e; e = e->next, rank++)
        if (parse_merge(m, e, rank, &tmp) != 0) { buf_free(&tmp); return -1; }
    buf_free(&tmp);
    return 0;
}

/* ---- added tokens ---- */

/* The id the library gives a token: its id if it is already an added token
 * or in the model's vocabulary, else the next free one after the vocabulary
 * and the added tokens so far. The "id" written in the file is not used. */
static int added_token_id(const struct tokenizer *t, const char *content, size_t len) {
    for (int i = 0; i < t->n_added; i++)
        if (t->added[i].len == len && !memcmp(t->added[i].content, content, len)) return t->added[i].id;
    int id = vocab_id(&t->bpe, content, len);
    if (id >= 0) return id;
    int vocab_len = (int)t->bpe.vocab.count, max_added = -1;
    for (int i = 0; i < t->n_added; i++)
        if (t->added[i].id > max_added) max_added = t->added[i].id;
    if (max_added < 0) return vocab_len;
    return max_added >= vocab_len || vocab_len == 0 ? max_added + 1 : vocab_len;
}

static int parse_added_token(struct tokenizer *t, const cJSON *a) {
    const char *content = field_str(a, "content");
    if (!content) return dam_fail("tokenizer.json: added token without content");
    if (!*content) return 0;   /* the library ignores empty tokens */
    size_t len = strlen(content);
    if (!utf8_valid(content, len, NULL))
        return dam_fail("tokenizer.json: added token %d is not valid UTF-8", field_int(a, "id", -1));
    struct added_token tok = { .len = len, .id = added_token_id(t, content, len) };
    if (tok.id >= MAX_VOCAB) return dam_fail("tokenizer.json: too many added tokens");
    tok.special = field_bool(a, "special", 0);
    tok.single_word = field_bool(a, "single_word", 0);
    tok.lstrip = field_bool(a, "lstrip", 0);
    tok.rstrip = field_bool(a, "rstrip", 0);
    tok.normalized = field_bool(a, "normalized", !tok.special);
    for (int i = 0; i < t->n_added; i++)
        if (t->added[i].id == tok.id) {   /* the same token again: its flags are replaced */
            tok.content = t->added[i].content;   /* (or another string of the same id: */
            tok.len = t->added[i].len;           /*  the first one keeps naming it) */
            t->added[i] = tok;
            return 0;
        }
    if (!(tok.content = dup_str(content))) return -1;
    t->added[t->n_added++] = tok;
    return 0;
}

static int parse_added_tokens(struct tokenizer *t, const cJSON *added) {
    if (added && !cJSON_IsArray(added)) return dam_fail("tokenizer.json: added_tokens is not an array");
    int n = added ? cJSON_GetArraySize(added) : 0;
    t->added = calloc((size_t)n + 1, sizeof *t->added);
    if (!t->added) return dam_fail("out of memory (added tokens)");
    for (const cJSON *a = added ? added->child : NULL; a; a = a->next)
        if (parse_added_token(t, a) != 0) return -1;
    /* id -> added token, over the vocabulary extended by the added ids */
    int old_size = t->vocab_size;
    for (int i = 0; i < t->n_added; i++)
        if (t->added[i].id >= t->vocab_size) t->vocab_size = t->added[i].id + 1;
    char **pieces = realloc(t->model_pieces, ((size_t)t->vocab_size + 1) * sizeof *pieces);
    t->added_of_id = malloc(((size_t)t->vocab_size + 1) * sizeof *t->added_of_id);
    if (!pieces || !t->added_of_id) { if (pieces) t->model_pieces = pieces; return dam_fail("out of memory (added tokens)"); }
    t->model_pieces = pieces;
    for (int i = old_size; i <= t->vocab_size; i++) t->model_pieces[i] = NULL;
    for (int i = 0; i < t->vocab_size; i++) t->added_of_id[i] = -1;
    for (int i = 0; i < t->n_added; i++) t->added_of_id[t->added[i].id] = i;
    return 0;
}

/* Orders tokens by first byte, longest first, so the first pattern that
 * matches at a position is the longest one (leftmost-longest). */
static int by_first_byte_then_longest(const void *x, const void *y, void *owner) {
    const struct tokenizer *t = owner;
    const struct added_token *a = &t->added[*(const int *)x], *b = &t->added[*(const int *)y];
    unsigned char fa = (unsigned char)a->pattern[0], fb = (unsigned char)b->pattern[0];
    if (fa != fb) return fa - fb;
    if (a->pattern_len != b->pattern_len) return a->pattern_len > b->pattern_len ? -1 : 1;
    return *(const int *)x - *(const int *)y;
}

static int build_matcher(struct tokenizer *t, struct added_matcher *m, int normalized) {
    m->order = malloc(((size_t)t->n_added + 1) * sizeof *m->order);
    if (!m->order) return dam_fail("out of memory (added tokens)");
    for (int i = 0; i < t->n_added; i++)
        if (t->added[i].normalized == normalized && t->added[i].pattern_len > 0) m->order[m->n++] = i;
    qsort_r(m->order, (size_t)m->n, sizeof *m->order, by_first_byte_then_longest, t);
    int k = 0;
    for (int b = 0; b < 256; b++) {
        m->first[b] = k;
        while (k < m->n && (unsigned char)t->added[m->order[k]].pattern[0] == b) k++;
    }
    m->first[256] = k;
    return 0;
}

/* skip_special drops an id whose string is the content of a special token
 * (the library compares strings, so a vocabulary entry equal to one counts). */
static int build_skip_on_decode(struct tokenizer *t) {
    struct str_map specials;
    if (str_map_init(&specials, (size_t)t->n_added) != 0) return -1;
    int rc = 0;
    for (int i = 0; i < t->n_added && rc == 0; i++)
        if (t->added[i].special) rc = str_map_put(&specials, t->added[i].content, t->added[i].len, 1);
    t->skip_on_decode = calloc((size_t)t->vocab_size + 1, 1);
    if (!t->skip_on_decode) rc = dam_fail("out of memory (special tokens)");
    for (int id = 0; rc == 0 && specials.count && id < t->vocab_size; id++) {
        const char *piece = tokenizer_piece(t, id);
        t->skip_on_decode[id] = piece && str_map_get(&specials, piece, strlen(piece)) >= 0;
    }
    str_map_free(&specials);
    return rc;
}

/* Tokens with normalized = true are searched for in normalized text, so
 * their pattern is their content run through the normalizer. */
static int build_added_patterns(struct tokenizer *t) {
    struct regex_scratch rs;
    if (regex_scratch_init(&rs) != 0) return -1;
    int rc = 0, any_single_word = 0;
    for (int i = 0; i < t->n_added && rc == 0; i++) {
        struct added_token *tok = &t->added[i];
        any_single_word |= tok->single_word;
        struct buf out = {0};
        if (tok->normalized && t->n_norms) {
            rc = normalize_text(t, &rs, tok->content, tok->len, &out);
            tok->pattern = out.data ? out.data : dup_str("");
            tok->pattern_len = out.len;
        } else {
            tok->pattern = dup_str(tok->content);
            tok->pattern_len = tok->len;
        }
        if (!tok->pattern) rc = -1;
    }
    regex_scratch_free(&rs);
    if (rc != 0) return -1;
    if (any_single_word && !(t->word_char = regex_compile(WORD_CHAR, strlen(WORD_CHAR), 0, "single_word"))) return -1;
    if (build_skip_on_decode(t) != 0) return -1;
    if (build_matcher(t, &t->match_raw, 0) != 0) return -1;
    return build_matcher(t, &t->match_normalized, 1);
}

/* ---- normalizer ---- */

static void free_normalizer(struct normalizer *n) {
    free(n->text);
    free(n->content);
    regex_free(n->re);
}

static int add_normalizer(struct tokenizer *t, struct normalizer *n) {
    struct normalizer *grown = realloc(t->norms, ((size_t)t->n_norms + 1) * sizeof *grown);
    if (!grown) { free_normalizer(n); return dam_fail("out of memory (normalizers)"); }
    t->norms = grown;
    t->norms[t->n_norms++] = *n;
    return 0;
}

static int parse_normalizer(struct tokenizer *t, const cJSON *o) {
    if (!o || cJSON_IsNull(o)) return 0;
    const char *type = field_str(o, "type");
    if (!type) return dam_fail("tokenizer.json: normalizer without a type");
    struct normalizer n = {0};
    if (!strcmp(type, "Sequence")) {
        const cJSON *list = field(o, "normalizers");
        for (const cJSON *e = list ? list->child : NULL; e; e = e->next)
            if (parse_normalizer(t, e) != 0) return -1;
        return 0;
    } else if (!strcmp(type, "Prepend")) {
        n.kind = NORM_PREPEND;
        if (!(n.text = dup_str(field_str(o, "prepend")))) return -1;
        n.text_len = strlen(n.text);
    } else if (!strcmp(type, "Replace")) {
        int is_regex;
        const char *pat = parse_pattern(o, &is_regex, "normalizer Replace");
        if (!pat) return -1;
        if (!*pat) return dam_fail("unsupported normalizer Replace with an empty pattern");
        n.kind = NORM_REPLACE;
        if (!(n.text = dup_str(pat)) || !(n.content = dup_str(field_str(o, "content"))) ||
            (is_regex && !(n.re = regex_compile(pat, strlen(pat), 0, "normalizer Replace")))) {
            free_normalizer(&n);
            return -1;
        }
        n.text_len = strlen(n.text);
        n.content_len = strlen(n.content);
    } else if (!strcmp(type, "Strip")) {
        n.kind = NORM_STRIP;
        n.left = field_bool(o, "strip_left", 1);
        n.right = field_bool(o, "strip_right", 1);
    } else if (!strcmp(type, "ByteLevel")) {
        n.kind = NORM_BYTE_LEVEL;
    } else {
        /* NFC, NFKC, Lowercase, Precompiled, BertNormalizer...: these need
         * Unicode tables we do not carry */
        return dam_fail("unsupported normalizer %s", type);
    }
    return add_normalizer(t, &n);
}

/* ---- pre-tokenizer ---- */

static int add_pretok(struct tokenizer *t, struct pretokenizer *p) {
    struct pretokenizer *grown = realloc(t->pretoks, ((size_t)t->n_pretoks + 1) * sizeof *grown);
    if (!grown) { regex_free(p->re); return dam_fail("out of memory (pre-tokenizers)"); }
    t->pretoks = grown;
    t->pretoks[t->n_pretoks++] = *p;
    return 0;
}

static int parse_behavior(const char *s, enum split_behavior *b) {
    static const struct { const char *name; enum split_behavior b; } names[] = {
        { "Removed", SPLIT_REMOVED }, { "Isolated", SPLIT_ISOLATED },
        { "MergedWithPrevious", SPLIT_MERGED_PREV }, { "MergedWithNext", SPLIT_MERGED_NEXT },
        { "Contiguous", SPLIT_CONTIGUOUS },
    };
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (s && !strcmp(s, names[i].name)) { *b = names[i].b; return 0; }
    return dam_fail("unsupported split behavior %s", s ? s : "(missing)");
}

/* A split on a regex (literal when literal != 0). */
static int add_split(struct tokenizer *t, const char *pattern, int literal,
                     enum split_behavior b, int invert, const char *what) {
    struct pretokenizer p = { .kind = PT_SPLIT, .behavior = b, .invert = invert };
    if (!(p.re = regex_compile(pattern, strlen(pattern), literal, what))) return -1;
    return add_pretok(t, &p);
}

/* Rust's char::is_ascii_punctuation() || char::is_punctuation() */
static const char PUNCTUATION_REGEX[] = "[\\p{P}!-/:-@\\[-`{-~]";

static int parse_prepend_scheme(const cJSON *o, enum prepend_scheme *s) {
    const char *scheme = field_str(o, "prepend_scheme");
    if (!scheme) {   /* older files: add_prefix_space */
        *s = field_bool(o, "add_prefix_space", 1) ? PREPEND_ALWAYS : PREPEND_NEVER;
        return 0;
    }
    if (!strcmp(scheme, "always")) *s = PREPEND_ALWAYS;
    else if (!strcmp(scheme, "first")) *s = PREPEND_FIRST;
    else if (!strcmp(scheme, "never")) *s = PREPEND_NEVER;
    else return dam_fail("unsupported Metaspace prepend_scheme %s", scheme);
    return 0;
}

/* The replacement char of Metaspace (pre-tokenizer or decoder). */
static int parse_replacement(const cJSON *o, char *out, int *len) {
    const char *r = field_str(o, "replacement");
    if (!r) r = "\xE2\x96\x81";   /* ▁ */
    size_t n = strlen(r);
    if (n == 0 || n > 4 || utf8_len_at((unsigned char)r[0]) != (int)n)
        return dam_fail("tokenizer.json: Metaspace replacement must be one character");
    memcpy(out, r, n);
    out[n] = 0;
    *len = (int)n;
    return 0;
}

static int parse_pretokenizer(struct tokenizer *t, const cJSON *o) {
    if (!o || cJSON_IsNull(o)) return 0;
    const char *type = field_str(o, "type");
    if (!type) return dam_fail("tokenizer.json: pre_tokenizer without a type");
    if (!strcmp(type, "Sequence")) {
        const cJSON *list = field(o, "pretokenizers");
        for (const cJSON *e = list ? list->child : NULL; e; e = e->next)
            if (parse_pretokenizer(t, e) != 0) return -1;
        return 0;
    }
    if (!strcmp(type, "ByteLevel")) {
        struct pretokenizer p = { .kind = PT_BYTE_LEVEL };
        p.add_prefix_space = field_bool(o, "add_prefix_space", 1);
        p.use_regex = field_bool(o, "use_regex", 1);
        if (p.use_regex && !(p.re = regex_compile(BYTE_LEVEL_REGEX, strlen(BYTE_LEVEL_REGEX), 0, "ByteLevel")))
            return -1;
        return add_pretok(t, &p);
    }
    if (!strcmp(type, "Split")) {
        int is_regex;
        const char *pat = parse_pattern(o, &is_regex, "pre_tokenizer Split");
        enum split_behavior b;
        if (!pat || parse_behavior(field_str(o, "behavior"), &b) != 0) return -1;
        return add_split(t, pat, !is_regex, b, field_bool(o, "invert", 0), "pre_tokenizer Split");
    }
    if (!strcmp(type, "Digits"))
        return add_split(t, "\\p{N}", 0, field_bool(o, "individual_digits", 0) ? SPLIT_ISOLATED : SPLIT_CONTIGUOUS,
                         0, "Digits");
    if (!strcmp(type, "Metaspace")) {
        struct pretokenizer p = { .kind = PT_METASPACE };
        if (parse_replacement(o, p.replacement, &p.replacement_len) != 0) return -1;
        if (parse_prepend_scheme(o, &p.prepend) != 0) return -1;
        p.split = field_bool(o, "split", 1);
        if (!(p.re = regex_compile(p.replacement, (size_t)p.replacement_len, 1, "Metaspace"))) return -1;
        return add_pretok(t, &p);
    }
    if (!strcmp(type, "Whitespace"))   /* keeps \w+ and [^\w\s]+ runs */
        return add_split(t, WORD_CHAR "+|" NOT_WORD_OR_SPACE "+", 0, SPLIT_REMOVED, 1, "Whitespace");
    if (!strcmp(type, "WhitespaceSplit"))
        return add_split(t, "\\s", 0, SPLIT_REMOVED, 0, "WhitespaceSplit");
    if (!strcmp(type, "Punctuation")) {
        enum split_behavior b = SPLIT_ISOLATED;
        const char *bs = field_str(o, "behavior");
        if (bs && parse_behavior(bs, &b) != 0) return -1;
        return add_split(t, PUNCTUATION_REGEX, 0, b, 0, "Punctuation");
    }
    if (!strcmp(type, "CharDelimiterSplit")) {
        const char *d = field_str(o, "delimiter");
        if (!d || !*d) return dam_fail("tokenizer.json: CharDelimiterSplit without a delimiter");
        return add_split(t, d, 1, SPLIT_REMOVED, 0, "CharDelimiterSplit");
    }
    if (!strcmp(type, "BertPreTokenizer"))
        return add_split(t, "\\s", 0, SPLIT_REMOVED, 0, "BertPreTokenizer") ||
               add_split(t, PUNCTUATION_REGEX, 0, SPLIT_ISOLATED, 0, "BertPreTokenizer");
    return dam_fail("unsupported pre_tokenizer %s", type);
}

/* ---- post-processor ---- */

/* The library would emit any id it is given; an id outside the vocabulary
 * would only break the model later, so such a file is refused here. */
static int add_post(struct tokenizer *t, int *ids, int n) {
    for (int i = 0; i < n; i++)
        if (ids[i] != -1 && !tokenizer_piece(t, ids[i])) {
            int bad = ids[i];
            free(ids);
            return dam_fail("tokenizer.json: post_processor token id %d is not in the vocabulary", bad);
        }
    struct post_template *grown = realloc(t->posts, ((size_t)t->n_posts + 1) * sizeof *grown);
    if (!grown) { free(ids); return dam_fail("out of memory (post-processor)"); }
    t->posts = grown;
    t->posts[t->n_posts++] = (struct post_template){ ids, n };
    return 0;
}

static int parse_template(struct tokenizer *t, const cJSON *o) {
    const cJSON *single = field(o, "single"), *specials = field(o, "special_tokens");
    if (!cJSON_IsArray(single)) return dam_fail("tokenizer.json: TemplateProcessing without a single template");
    struct ivec ids = {0};
    for (const cJSON *item = single->child; item; item = item->next) {
        const cJSON *special = field(item, "SpecialToken"), *seq = field(item, "Sequence");
        if (seq) {
            const char *which = field_str(seq, "id");
            if (which && strcmp(which, "A") != 0) {
                ivec_free(&ids);
                return dam_fail("tokenizer.json: single template refers to sequence %s", which);
            }
            if (ivec_push(&ids, -1) != 0) { ivec_free(&ids); return -1; }
        } else if (special) {
            const char *name = field_str(special, "id");
            const cJSON *entry = name ? field(specials, name) : NULL;
            const cJSON *list = field(entry, "ids");
            if (!cJSON_IsArray(list)) {
                ivec_free(&ids);
                return dam_fail("tokenizer.json: template token %s has no ids in special_tokens", name ? name : "?");
            }
            for (const cJSON *id = list->child; id; id = id->next)
                if (!cJSON_IsNumber(id) || id->valuedouble < 0 || id->valuedouble >= MAX_VOCAB ||
                    ivec_push(&ids, (int)id->valuedouble) != 0) {
                    ivec_free(&ids);
                    return dam_fail("tokenizer.json: bad id for template token %s", name);
                }
        } else {
            ivec_free(&ids);
            return dam_fail("tokenizer.json: unknown TemplateProcessing item");
        }
    }
    return add_post(t, ids.data, ids.len);
}

/* RobertaProcessing / BertProcessing: cls A sep, each given as [token, id]. */
static int parse_cls_sep(struct tokenizer *t, const cJSON *o, const char *type) {
    const cJSON *cls = field(o, "cls"), *sep = field(o, "sep");
    const cJSON *cls_id = cJSON_GetArrayItem(cls, 1), *sep_id = cJSON_GetArrayItem(sep, 1);
    if (!cJSON_IsArray(cls) || !cJSON_IsArray(sep) || !cJSON_IsNumber(cls_id) || !cJSON_IsNumber(sep_id) ||
        cls_id->valuedouble < 0 || sep_id->valuedouble < 0 || cls_id->valuedouble >= MAX_VOCAB ||
        sep_id->valuedouble >= MAX_VOCAB)
        return dam_fail("tokenizer.json: %s needs cls and sep as [token, id]", type);
    int *ids = malloc(3 * sizeof *ids);
    if (!ids) return dam_fail("out of memory (post-processor)");
    ids[0] = (int)cls_id->valuedouble;
    ids[1] = -1;
    ids[2] = (int)sep_id->valuedouble;
    return add_post(t, ids, 3);
}

static int parse_post_processor(struct tokenizer *t, const cJSON *o) {
    if (!o || cJSON_IsNull(o)) return 0;
    const char *type = field_str(o, "type");
    if (!type) return dam_fail("tokenizer.json: post_processor without a type");
    if (!strcmp(type, "Sequence")) {
        const cJSON *list = field(o, "processors");
        for (const cJSON *e = list ? list->child : NULL; e; e = e->next)
            if (parse_post_processor(t, e) != 0) return -1;
        return 0;
    }
    if (!strcmp(type, "ByteLevel")) return 0;   /* only moves offsets; ids unchanged */
    if (!strcmp(type, "TemplateProcessing")) return parse_template(t, o);
    if (!strcmp(type, "RobertaProcessing") || !strcmp(type, "BertProcessing")) return parse_cls_sep(t, o, type);
    return dam_fail("unsupported post_processor %s", type);
}

/* ---- decoder ---- */

static int add_decoder(struct tokenizer *t, struct decoder_step *d) {
    struct decoder_step *grown = realloc(t->decs, ((size_t)t->n_decs + 1) * sizeof *grown);
    if (!grown) { free(d->pattern); free(d->content); return dam_fail("out of memory (decoders)"); }
    t->decs = grown;
    t->decs[t->n_decs++] = *d;
    return 0;
}

static int parse_decoder(struct tokenizer *t, const cJSON *o) {
    const char *type = field_str(o, "type");
    if (!type) return dam_fail("tokenizer.json: decoder without a type");
    struct decoder_step d = {0};
    if (!strcmp(type, "Sequence")) {
        const cJSON *list = field(o, "decoders");
        for (const cJSON *e = list ? list->child : NULL; e; e = e->next)
            if (parse_decoder(t, e) != 0) return -1;
        return 0;
    } else if (!strcmp(type, "ByteLevel")) {
        d.kind = DEC_BYTE_LEVEL;
    } else if (!strcmp(type, "ByteFallback")) {
        d.kind = DEC_BYTE_FALLBACK;
    } else if (!strcmp(type, "Fuse")) {
        d.kind = DEC_FUSE;
    } else if (!strcmp(type, "Replace")) {
        int is_regex;
        const char *pat = parse_pattern(o, &is_regex, "decoder Replace");
        if (!pat) return -1;
        if (is_regex) return dam_fail("unsupported decoder Replace with a Regex pattern");
        if (!*pat) return dam_fail("unsupported decoder Replace with an empty pattern");
        d.kind = DEC_REPLACE;
        if (!(d.pattern = dup_str(pat))) return -1;
        if (!(d.content = dup_str(field_str(o, "content")))) { free(d.pattern); return -1; }
        d.pattern_len = strlen(d.pattern);
        d.content_len = strlen(d.content);
    } else if (!strcmp(type, "Strip")) {
        const char *c = field_str(o, "content");
        if (!c || !*c || utf8_len_at((unsigned char)c[0]) != (int)strlen(c))
            return dam_fail("tokenizer.json: Strip decoder content must be one character");
        d.kind = DEC_STRIP;
        if (!(d.content = dup_str(c))) return -1;
        d.content_len = strlen(c);
        d.start = field_int(o, "start", 0);
        d.stop = field_int(o, "stop", 0);
        if (d.start < 0 || d.stop < 0) { free(d.content); return dam_fail("tokenizer.json: Strip with a negative count"); }
    } else if (!strcmp(type, "Metaspace")) {
        char rep[5];
        int rep_len;
        enum prepend_scheme scheme;
        if (parse_replacement(o, rep, &rep_len) != 0 || parse_prepend_scheme(o, &scheme) != 0) return -1;
        d.kind = DEC_METASPACE;
        if (!(d.content = dup_str(rep))) return -1;
        d.content_len = (size_t)rep_len;
        d.drop_first = scheme != PREPEND_NEVER;
    } else {
        return dam_fail("unsupported decoder %s", type);
    }
    return add_decoder(t, &d);
}

/* Decides which steps see separate tokens and which see one joined text
 * (after ByteLevel or Fuse), and refuses orders that cannot stream. */
static int check_decoders(struct tokenizer *t) {
    static const char *names[] = { "ByteLevel", "Replace", "ByteFallback", "Fuse", "Strip", "Metaspace", "" };
    int joined = 0;
    for (int i = 0; i < t->n_decs; i++) {
        struct decoder_step *d = &t->decs[i];
        if (joined && (d->kind == DEC_BYTE_LEVEL || d->kind == DEC_BYTE_FALLBACK))
            return dam_fail("unsupported decoder order: %s after ByteLevel or Fuse", names[d->kind]);
        d->stream_in = joined;
        if (d->kind == DEC_BYTE_LEVEL || d->kind == DEC_FUSE) joined = 1;
    }
    return 0;
}

static int parse_decoders(struct tokenizer *t, const cJSON *o) {
    if (!o || cJSON_IsNull(o)) {   /* no decoder: the library joins the tokens with spaces */
        struct decoder_step d = { .kind = DEC_JOIN_SPACE };
        return add_decoder(t, &d);
    }
    if (parse_decoder(t, o) != 0) return -1;
    return check_decoders(t);
}

/* ---- chat template (tokenizer_config.json / chat_template.jinja) ---- */

static int join_path(char *out, size_t size, const char *dir, const char *name) {
    int n = snprintf(out, size, "%s/%s", dir, name);
    if (n < 0 || (size_t)n >= size) return dam_fail("path too long: %s/%s", dir, name);
    return 0;
}

static int load_chat_template(struct tokenizer *t, const char *dir) {
    char path[4096];
    if (join_path(path, sizeof path, dir, "chat_template.jinja") != 0) return -1;
    if (is_file(path)) {   /* newer transformers save the template beside the config */
        t->chat_template = read_file(path, NULL);
        return t->chat_template ? 0 : -1;
    }
    if (join_path(path, sizeof path, dir, "tokenizer_config.json") != 0) return -1;
    if (!is_file(path)) return 0;
    size_t len;
    char *text = read_file(path, &len);
    if (!text) return -1;
    cJSON *root = cJSON_ParseWithLength(text, len);
    free(text);
    if (!root) return dam_fail("%s: not valid JSON", path);
    const cJSON *ct = field(root, "chat_template");
    const char *tmpl = cJSON_IsString(ct) ? ct->valuestring : NULL;
    if (cJSON_IsArray(ct)) {   /* [{"name": "default", "template": ...}, ...] */
        for (const cJSON *e = ct->child; e; e = e->next) {
            const char *name = field_str(e, "name");
            if (!tmpl || (name && !strcmp(name, "default"))) tmpl = field_str(e, "template");
        }
    }
    int rc = 0;
    if (tmpl && !(t->chat_template = dup_str(tmpl))) rc = -1;
    cJSON_Delete(root);
    return rc;
}

/* ---- load / free ---- */

static int parse_tokenizer(struct tokenizer *t, const cJSON *root) {
    if (parse_model(t, field(root, "model")) != 0) return -1;
    if (parse_added_tokens(t, field(root, "added_tokens")) != 0) return -1;
    if (parse_normalizer(t, field(root, "normalizer")) != 0) return -1;
    if (build_added_patterns(t) != 0) return -1;
    if (parse_pretokenizer(t, field(root, "pre_tokenizer")) != 0) return -1;
    if (parse_post_processor(t, field(root, "post_processor")) != 0) return -1;
    return parse_decoders(t, field(root, "decoder"));
}

struct tokenizer *tokenizer_load(const char *path) {
    char json_path[4096], dir[4096];
    if (!path || !*path) { dam_fail("no tokenizer path given"); return NULL; }
    if (is_dir(path)) {
        snprintf(dir, sizeof dir, "%s", path);
        if (join_path(json_path, sizeof json_path, path, "tokenizer.json") != 0) return NULL;
        if (!is_file(json_path)) { dam_fail("no tokenizer.json in %s", path); return NULL; }
    } else {
        snprintf(json_path, sizeof json_path, "%s", path);
        const char *slash = strrchr(path, '/');
        if (slash) snprintf(dir, sizeof dir, "%.*s", (int)(slash - path), path);
        else snprintf(dir, sizeof dir, ".");
    }
    size_t len;
    char *text = read_file(json_path, &len);
    if (!text) return NULL;
    cJSON *root = cJSON_ParseWithLength(text, len);
    free(text);
    if (!root) { dam_fail("%s: not valid JSON", json_path); return NULL; }
    struct tokenizer *t = calloc(1, sizeof *t);
    if (!t) { cJSON_Delete(root); dam_fail("out of memory (tokenizer)"); return NULL; }
    int rc = parse_tokenizer(t, root);
    cJSON_Delete(root);
    if (rc == 0) rc = load_chat_template(t, dir);
    if (rc != 0) {
        char msg[1024];
        snprintf(msg, sizeof msg, "%s", dam_last_error());
        tokenizer_free(t);
        if (strncmp(msg, "tokenizer.json:", 15) == 0) dam_fail("%s:%s", json_path, msg + 15);
        else dam_fail("%s: %s", json_path, msg);
        return NULL;
    }
    return t;
}

void tokenizer_free(struct tokenizer *t) {
    if (!t) return;
    struct bpe *m = &t->bpe;
    str_map_free(&m->vocab);
    pair_map_free(&m->merges);
    free(m->unk_token);
    free(m->prefix);
    free(m->suffix);
    for (int i = 0; i < t->n_vocab_keys; i++) free(t->vocab_keys[i]);
    free(t->vocab_keys);
    free(t->model_pieces);
    free(t->added_of_id);
    free(t->skip_on_decode);
    for (int i = 0; i < t->n_added; i++) {
        free(t->added[i].content);
        free(t->added[i].pattern);
    }
    free(t->added);
    free(t->match_raw.order);
    free(t->match_normalized.order);
    regex_free(t->word_char);
    for (int i = 0; i < t->n_norms; i++) free_normalizer(&t->norms[i]);
    free(t->norms);
    for (int i = 0; i < t->n_pretoks; i++) regex_free(t->pretoks[i].re);
    free(t->pretoks);
    for (int i = 0; i < t->n_posts; i++) free(t->posts[i].ids);
    free(t->posts);
    for (int i = 0; i < t->n_decs; i++) {
        free(t->decs[i].pattern);
        free(t->decs[i].content);
    }
    free(t->decs);
    free(t->chat_template);
    free(t);
}

/* ---- lookups ---- */

int tokenizer_vocab_size(const struct tokenizer *t) { return t->vocab_size; }

/* An added token's string is what it matches: for a normalized token that is
 * its normalized content (the library's id_to_token does the same). */
const char *tokenizer_piece(const struct tokenizer *t, int id) {
    if (id < 0 || id >= t->vocab_size) return NULL;
    if (t->added_of_id[id] >= 0) return t->added[t->added_of_id[id]].pattern;
    return t->model_pieces[id];
}

int tokenizer_token_id(const struct tokenizer *t, const char *piece) {
    if (!piece) return -1;
    size_t len = strlen(piece);
    for (int i = 0; i < t->n_added; i++)
        if (t->added[i].len == len && !memcmp(t->added[i].content, piece, len)) return t->added[i].id;
    return str_map_get(&t->bpe.vocab, piece, len);
}

int tokenizer_is_special(const struct tokenizer *t, int id) {
    if (id < 0 || id >= t->vocab_size || t->added_of_id[id] < 0) return 0;
    return t->added[t->added_of_id[id]].special;
}
