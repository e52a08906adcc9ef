/* tokenizer_internal.h — what the tokenizer's source files share: the parsed
 * tokenizer.json (struct tokenizer), hash maps, byte buffers, UTF-8 helpers
 * and the PCRE2 wrapper. Not a public header. */
#ifndef DAM_TOKENIZER_INTERNAL_H
#define DAM_TOKENIZER_INTERNAL_H

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>
#include <stddef.h>
#include <stdint.h>
#include "dam/tokenizer.h"

/* ---- growable byte buffer ---- */

struct buf {
    char *data;      /* (cap) bytes, NUL-terminated after len when non-NULL */
    size_t len, cap;
};
int buf_reserve(struct buf *b, size_t extra);
int buf_append(struct buf *b, const void *s, size_t n);
static inline int buf_set(struct buf *b, const void *s, size_t n) { b->len = 0; return buf_append(b, s, n); }
void buf_free(struct buf *b);

/* growable int vector */
struct ivec {
    int *data;
    int len, cap;
};
int ivec_push(struct ivec *v, int x);
void ivec_free(struct ivec *v);

/* ---- hash maps ---- */

uint64_t hash_bytes(const void *s, size_t n);

/* string -> int, open addressing. Keys are not copied: they must outlive the map. */
struct str_map {
    size_t cap;            /* slots, a power of two */
    size_t count;
    const char **keys;     /* (cap) NULL = empty slot */
    uint32_t *lens;        /* (cap) key byte lengths */
    int *vals;             /* (cap) */
};
int str_map_init(struct str_map *m, size_t expected);
int str_map_put(struct str_map *m, const char *key, size_t len, int val);  /* overwrites */
int str_map_get(const struct str_map *m, const char *key, size_t len);       /* -1 absent */
void str_map_free(struct str_map *m);

/* (left id, right id) -> (rank, merged id): the BPE merge table. */
struct pair_map {
    size_t cap, count;
    uint64_t *keys;        /* (cap) left << 32 | right; PAIR_EMPTY = empty */
    int *rank;             /* (cap) position in the merges list: lower merges first */
    int *merged;           /* (cap) id of left + right */
};
#define PAIR_EMPTY UINT64_MAX
int pair_map_init(struct pair_map *m, size_t expected);
int pair_map_put(struct pair_map *m, int left, int right, int rank, int merged);
/* 1 found (fills rank, merged), 0 absent */
int pair_map_get(const struct pair_map *m, int left, int right, int *rank, int *merged);
void pair_map_free(struct pair_map *m);

/* ---- UTF-8 ---- */

/* Strict validation (no overlongs, surrogates or > U+10FFFF). Returns 1 when
 * valid, else 0 and the offset of the first bad byte in *bad. */
int utf8_valid(const char *s, size_t n, size_t *bad);
/* Decodes the character at s (valid UTF-8 assumed); returns its byte length. */
int utf8_decode(const char *s, size_t n, uint32_t *cp);
int utf8_encode(uint32_t cp, char *out);   /* returns 1..4 */
static inline int utf8_len_at(unsigned char c) {
    return c < 0x80 ? 1 : c < 0xE0 ? 2 : c < 0xF0 ? 3 : 4;
}
/* Unicode White_Space (what Rust's char::is_whitespace and \s accept). */
int unicode_is_space(uint32_t cp);

/* Incremental "lossy" UTF-8 decoding with Rust's String::from_utf8_lossy
 * rules: every maximal invalid subsequence becomes one U+FFFD. */
struct utf8_lossy {
    unsigned char pend[4]; /* an incomplete but so far valid sequence */
    int n_pend, need;
};
int utf8_lossy_feed(struct utf8_lossy *u, const unsigned char *b, size_t n, struct buf *out);
int utf8_lossy_end(struct utf8_lossy *u, struct buf *out);
#define UTF8_REPLACEMENT "\xEF\xBF\xBD"

/* GPT-2's byte <-> printable character table (ByteLevel). */
struct byte_level_table {
    char enc[256][3];       /* UTF-8 of the character standing for each byte */
    unsigned char enc_len[256];
    int16_t dec[324];       /* code point (< 324) -> byte, -1 when not a mapped char */
};
const struct byte_level_table *byte_level(void);

/* ---- regexes (PCRE2, UTF + UCP, JIT when available) ---- */

struct regex {
    pcre2_code *code;
};
/* pattern is the tokenizer's regex (or a literal when literal != 0). Oniguruma's
 * \s, which the tokenizers library uses, also matches U+0085: the pattern is
 * rewritten so PCRE2 agrees. NULL + dam_fail naming `what` on a bad pattern. */
struct regex *regex_compile(const char *pattern, size_t len, int literal, const char *what);
void regex_free(struct regex *re);

/* Per-call matching state (PCRE2 match data and JIT stack): one per thread. */
struct regex_scratch {
    pcre2_match_data *md;
    pcre2_match_context *mctx;
    pcre2_jit_stack *jit_stack;
};
int regex_scratch_init(struct regex_scratch *rs);
void regex_scratch_free(struct regex_scratch *rs);
/* First match at or after start: 1 found (*ms, *me), 0 none, -1 error. s must be valid UTF-8. */
int regex_search(const struct regex *re, struct regex_scratch *rs, const char *s, size_t n,
                 size_t start, size_t *ms, size_t *me);

/* 1 when the regex matches exactly at start (anchored), 0 not, -1 error. */
int regex_match_at(const struct regex *re, struct regex_scratch *rs, const char *s, size_t n, size_t start);

/* All matches in the order Oniguruma's find_iter yields them (an empty match
 * right after the previous match is skipped): pairs (start, end) appended to out. */
struct span {
    size_t start, end;
    int is_match;
};
struct span_vec {
    struct span *data;
    size_t len, cap;
};
int span_push(struct span_vec *v, size_t start, size_t end, int is_match);
void span_vec_free(struct span_vec *v);
int regex_find_all(const struct regex *re, struct regex_scratch *rs, const char *s, size_t n,
                   struct span_vec *out);

/* ---- the parsed tokenizer.json ---- */

enum norm_kind { NORM_PREPEND, NORM_REPLACE, NORM_STRIP, NORM_BYTE_LEVEL };
struct normalizer {
    enum norm_kind kind;
    char *text;            /* Prepend: the prefix; Replace: the literal pattern */
    size_t text_len;
    char *content;         /* Replace: the replacement */
    size_t content_len;
    struct regex *re;      /* Replace with a Regex pattern, else NULL */
    int left, right;       /* Strip */
};

/* How a split keeps the delimiters it found (SplitDelimiterBehavior). */
enum split_behavior { SPLIT_REMOVED, SPLIT_ISOLATED, SPLIT_MERGED_PREV, SPLIT_MERGED_NEXT, SPLIT_CONTIGUOUS };
enum prepend_scheme { PREPEND_ALWAYS, PREPEND_FIRST, PREPEND_NEVER };

enum pretok_kind { PT_SPLIT, PT_BYTE_LEVEL, PT_METASPACE };
struct pretokenizer {
    enum pretok_kind kind;
    struct regex *re;              /* Split: the pattern; ByteLevel: GPT-2's regex; Metaspace: the replacement */
    enum split_behavior behavior;  /* Split */
    int invert;                    /* Split */
    int add_prefix_space;          /* ByteLevel */
    int use_regex;                 /* ByteLevel */
    char replacement[5];           /* Metaspace: UTF-8 of the replacement char */
    int replacement_len;
    enum prepend_scheme prepend;   /* Metaspace */
    int split;                     /* Metaspace */
};

struct added_token {
    char *content;
    size_t len;
    int id;
    int special, single_word, lstrip, rstrip, normalized;
    char *pattern;         /* what is searched: content, or the normalized content */
    size_t pattern_len;
};

/* Leftmost-longest search over the patterns of a set of added tokens. */
struct added_matcher {
    int n;                 /* tokens in this set */
    int *order;            /* (n) token indices, by first byte, then longest first */
    int first[257];        /* order[first[b] .. first[b+1]) start with byte b */
};

/* One post-processor template: ids to wrap the sequence in; -1 marks where the sequence goes. */
struct post_template {
    int *ids;
    int n;
};

enum dec_kind { DEC_BYTE_LEVEL, DEC_REPLACE, DEC_BYTE_FALLBACK, DEC_FUSE, DEC_STRIP, DEC_METASPACE, DEC_JOIN_SPACE };
struct decoder_step {
    enum dec_kind kind;
    int stream_in;         /* 1 when an earlier step (ByteLevel, Fuse) joined the tokens into one text */
    char *pattern;         /* Replace */
    size_t pattern_len;
    char *content;         /* Replace: replacement; Strip: the char; Metaspace: the replacement */
    size_t content_len;
    int start, stop;       /* Strip */
    int drop_first;        /* Metaspace: replacements of the first token vanish (prepend_scheme != never) */
};

struct bpe {
    struct str_map vocab;  /* piece -> id */
    struct pair_map merges;
    int unk_id;            /* -1: no unk_token */
    int unk_missing;       /* an unk_token is named but not in the vocabulary */
    char *unk_token;
    int fuse_unk, byte_fallback, ignore_merges;
    int byte_ids[256];     /* id of "<0xXX>", -1 when absent */
    char *prefix, *suffix; /* continuing_subword_prefix, end_of_word_suffix, or NULL */
};

struct tokenizer {
    struct bpe bpe;
    int vocab_size;        /* 1 + largest id */
    char **vocab_keys;     /* (n_vocab_keys) the vocabulary's strings, owned */
    int n_vocab_keys;
    char **model_pieces;   /* (vocab_size) id -> its vocabulary string (in vocab_keys), NULL for holes */
    int *added_of_id;      /* (vocab_size) index into added, -1 when the id is no added token */
    unsigned char *skip_on_decode;  /* (vocab_size) 1: dropped by skip_special */
    struct added_token *added;
    int n_added;
    struct added_matcher match_raw;        /* tokens with normalized = false: searched in the raw text */
    struct added_matcher match_normalized; /* normalized = true: searched after normalization */
    struct regex *word_char;               /* \w, for single_word tokens */
    struct normalizer *norms;
    int n_norms;
    struct pretokenizer *pretoks;
    int n_pretoks;
    struct post_template *posts;
    int n_posts;
    struct decoder_step *decs;
    int n_decs;
    char *chat_template;   /* Jinja text from tokenizer_config.json, or NULL */
};

/* encode.c: runs the normalizer over a text (added tokens' patterns use it too) */
int normalize_text(const struct tokenizer *t, struct regex_scratch *rs, const char *s, size_t n,
                   struct buf *out);

#endif
