/* util.c — the small data structures the tokenizer is built from: byte
 * buffers, hash maps, UTF-8 helpers and GPT-2's byte-level table. */
#include "tokenizer_internal.h"
#include "dam/common.h"
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

/* ---- byte buffer ---- */

int buf_reserve(struct buf *b, size_t extra) {
    if (b->len + extra + 1 <= b->cap) return 0;
    size_t cap = b->cap ? b->cap : 64;
    while (cap < b->len + extra + 1) cap *= 2;
    char *grown = realloc(b->data, cap);
    if (!grown) return dam_fail("out of memory (%zu bytes for tokenizer text)", cap);
    b->data = grown;
    b->cap = cap;
    return 0;
}

int buf_append(struct buf *b, const void *s, size_t n) {
    if (buf_reserve(b, n) != 0) return -1;
    if (n) memcpy(b->data + b->len, s, n);
    b->len += n;
    b->data[b->len] = 0;
    return 0;
}

void buf_free(struct buf *b) {
    free(b->data);
    memset(b, 0, sizeof *b);
}

int ivec_push(struct ivec *v, int x) {
    if (v->len == v->cap) {
        int cap = v->cap ? v->cap * 2 : 64;
        int *grown = realloc(v->data, (size_t)cap * sizeof *grown);
        if (!grown) return dam_fail("out of memory (%d token ids)", cap);
        v->data = grown;
        v->cap = cap;
    }
    v->data[v->len++] = x;
    return 0;
}

void ivec_free(struct ivec *v) {
    free(v->data);
    memset(v, 0, sizeof *v);
}

int span_push(struct span_vec *v, size_t start, size_t end, int is_match) {
    if (v->len == v->cap) {
        size_t cap = v->cap ? v->cap * 2 : 32;
        struct span *grown = realloc(v->data, cap * sizeof *grown);
        if (!grown) return dam_fail("out of memory (%zu text spans)", cap);
        v->data = grown;
        v->cap = cap;
    }
    v->data[v->len++] = (struct span){ start, end, is_match };
    return 0;
}

void span_vec_free(struct span_vec *v) {
    free(v->data);
    memset(v, 0, sizeof *v);
}

/* ---- hashing ---- */

/* FNV-1a over 8-byte words with a final mix: words are short, so speed comes
 * from few branches rather than from wide loads. */
uint64_t hash_bytes(const void *s, size_t n) {
    const unsigned char *p = s;
    uint64_t h = 0xcbf29ce484222325ull ^ (n * 0x9E3779B97F4A7C15ull);
    while (n >= 8) {
        uint64_t w;
        memcpy(&w, p, 8);
        h = (h ^ w) * 0x100000001b3ull;
        h ^= h >> 29;
        p += 8; n -= 8;
    }
    while (n--) h = (h ^ *p++) * 0x100000001b3ull;
    h ^= h >> 32;
    h *= 0xd6e8feb86659fd93ull;
    h ^= h >> 32;
    return h;
}

static size_t pow2_at_least(size_t n) {
    size_t cap = 16;
    while (cap < n) cap *= 2;
    return cap;
}

/* ---- string -> int ---- */

int str_map_init(struct str_map *m, size_t expected) {
    memset(m, 0, sizeof *m);
    m->cap = pow2_at_least(expected * 2);
    m->keys = calloc(m->cap, sizeof *m->keys);
    m->lens = malloc(m->cap * sizeof *m->lens);
    m->vals = malloc(m->cap * sizeof *m->vals);
    if (!m->keys || !m->lens || !m->vals) {
        str_map_free(m);
        return dam_fail("out of memory (hash map of %zu entries)", expected);
    }
    return 0;
}

static size_t str_map_slot(const struct str_map *m, const char *key, size_t len) {
    size_t mask = m->cap - 1, i = hash_bytes(key, len) & mask;
    while (m->keys[i] && !(m->lens[i] == len && !memcmp(m->keys[i], key, len))) i = (i + 1) & mask;
    return i;
}

static int str_map_grow(struct str_map *m) {
    struct str_map bigger;
    if (str_map_init(&bigger, m->cap) != 0) return -1;   /* cap * 2 slots */
    for (size_t i = 0; i < m->cap; i++)
        if (m->keys[i]) {
            size_t j = str_map_slot(&bigger, m->keys[i], m->lens[i]);
            bigger.keys[j] = m->keys[i];
            bigger.lens[j] = m->lens[i];
            bigger.vals[j] = m->vals[i];
        }
    bigger.count = m->count;
    str_map_free(m);
    *m = bigger;
    return 0;
}

int str_map_put(struct str_map *m, const char *key, size_t len, int val) {
    if ((m->count + 1) * 2 > m->cap && str_map_grow(m) != 0) return -1;
    size_t i = str_map_slot(m, key, len);
    if (!m->keys[i]) {
        m->keys[i] = key;
        m->lens[i] = (uint32_t)len;
        m->count++;
    }
    m->vals[i] = val;
    return 0;
}

int str_map_get(const struct str_map *m, const char *key, size_t len) {
    if (!m->cap) return -1;
    size_t i = str_map_slot(m, key, len);
    return m->keys[i] ? m->vals[i] : -1;
}

void str_map_free(struct str_map *m) {
    free(m->keys);
    free(m->lens);
    free(m->vals);
    memset(m, 0, sizeof *m);
}

/* ---- (int, int) -> (rank, merged) ---- */

int pair_map_init(struct pair_map *m, size_t expected) {
    memset(m, 0, sizeof *m);
    m->cap = pow2_at_least(expected * 2);
    m->keys = malloc(m->cap * sizeof *m->keys);
    m->rank = malloc(m->cap * sizeof *m->rank);
    m->merged = malloc(m->cap * sizeof *m->merged);
    if (!m->keys || !m->rank || !m->merged) {
        pair_map_free(m);
        return dam_fail("out of memory (merge table of %zu entries)", expected);
    }
    memset(m->keys, 0xff, m->cap * sizeof *m->keys);
    return 0;
}

static size_t pair_slot(const struct pair_map *m, uint64_t key) {
    uint64_t h = key * 0x9E3779B97F4A7C15ull;
    size_t mask = m->cap - 1, i = (size_t)(h >> 20) & mask;
    while (m->keys[i] != PAIR_EMPTY && m->keys[i] != key) i = (i + 1) & mask;
    return i;
}

int pair_map_put(struct pair_map *m, int left, int right, int rank, int merged) {
    if ((m->count + 1) * 2 > m->cap) {
        struct pair_map bigger;
        if (pair_map_init(&bigger, m->cap) != 0) return -1;
        for (size_t i = 0; i < m->cap; i++)
            if (m->keys[i] != PAIR_EMPTY) {
                size_t j = pair_slot(&bigger, m->keys[i]);
                bigger.keys[j] = m->keys[i];
                bigger.rank[j] = m->rank[i];
                bigger.merged[j] = m->merged[i];
            }
        bigger.count = m->count;
        pair_map_free(m);
        *m = bigger;
    }
    uint64_t key = (uint64_t)(uint32_t)left << 32 | (uint32_t)right;
    size_t i = pair_slot(m, key);
    if (m->keys[i] == PAIR_EMPTY) { m->keys[i] = key; m->count++; }
    m->rank[i] = rank;
    m->merged[i] = merged;
    return 0;
}

int pair_map_get(const struct pair_map *m, int left, int right, int *rank, int *merged) {
    if (!m->cap) return 0;
    uint64_t key = (uint64_t)(uint32_t)left << 32 | (uint32_t)right;
    size_t i = pair_slot(m, key);
    if (m->keys[i] == PAIR_EMPTY) return 0;
    *rank = m->rank[i];
    *merged = m->merged[i];
    return 1;
}

void pair_map_free(struct pair_map *m) {
    free(m->keys);
    free(m->rank);
    free(m->merged);
    memset(m, 0, sizeof *m);
}

/* ---- UTF-8 ---- */

/* The continuation-byte range allowed right after lead byte `lead`; the
 * narrowed ranges exclude overlongs (E0, F0), surrogates (ED) and code points
 * above U+10FFFF (F4). */
static void second_byte_range(unsigned char lead, unsigned char *lo, unsigned char *hi) {
    *lo = 0x80; *hi = 0xBF;
    if (lead == 0xE0) *lo = 0xA0;
    else if (lead == 0xED) *hi = 0x9F;
    else if (lead == 0xF0) *lo = 0x90;
    else if (lead == 0xF4) *hi = 0x8F;
}

/* Bytes a sequence starting with lead needs, 0 if lead cannot start one. */
static int sequence_length(unsigned char lead) {
    if (lead < 0x80) return 1;
    if (lead >= 0xC2 && lead <= 0xDF) return 2;
    if (lead >= 0xE0 && lead <= 0xEF) return 3;
    if (lead >= 0xF0 && lead <= 0xF4) return 4;
    return 0;
}

int utf8_valid(const char *s, size_t n, size_t *bad) {
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0;
    while (i < n) {
        if (p[i] < 0x80) { i++; continue; }
        int need = sequence_length(p[i]);
        if (!need || i + need > n) goto invalid;
        unsigned char lo, hi;
        second_byte_range(p[i], &lo, &hi);
        if (p[i + 1] < lo || p[i + 1] > hi) goto invalid;
        for (int k = 2; k < need; k++)
            if (p[i + k] < 0x80 || p[i + k] > 0xBF) goto invalid;
        i += need;
    }
    return 1;
invalid:
    if (bad) *bad = i;
    return 0;
}

int text_check(const char *what, const char *text, size_t len) {
    size_t bad;
    if (!utf8_valid(text, len, &bad))
        return dam_fail("%s: invalid UTF-8 at byte %zu (0x%02X): not a UTF-8 text file?", what, bad,
                        (unsigned char)text[bad]);
    const char *nul = memchr(text, 0, len);
    if (nul) return dam_fail("%s: a NUL byte at byte %zu: not a text file?", what, (size_t)(nul - text));
    return 0;
}

int utf8_decode(const char *s, size_t n, uint32_t *cp) {
    const unsigned char *p = (const unsigned char *)s;
    int len = utf8_len_at(p[0]);
    if ((size_t)len > n) len = (int)n;
    uint32_t c;
    switch (len) {
    case 1: c = p[0]; break;
    case 2: c = (uint32_t)(p[0] & 0x1F) << 6 | (p[1] & 0x3F); break;
    case 3: c = (uint32_t)(p[0] & 0x0F) << 12 | (uint32_t)(p[1] & 0x3F) << 6 | (p[2] & 0x3F); break;
    default: c = (uint32_t)(p[0] & 0x07) << 18 | (uint32_t)(p[1] & 0x3F) << 12 |
                 (uint32_t)(p[2] & 0x3F) << 6 | (p[3] & 0x3F); break;
    }
    *cp = c;
    return len;
}

int utf8_encode(uint32_t cp, char *out) {
    unsigned char *o = (unsigned char *)out;
    if (cp < 0x80) { o[0] = (unsigned char)cp; return 1; }
    if (cp < 0x800) { o[0] = 0xC0 | cp >> 6; o[1] = 0x80 | (cp & 0x3F); return 2; }
    if (cp < 0x10000) {
        o[0] = 0xE0 | cp >> 12; o[1] = 0x80 | (cp >> 6 & 0x3F); o[2] = 0x80 | (cp & 0x3F);
        return 3;
    }
    o[0] = 0xF0 | cp >> 18; o[1] = 0x80 | (cp >> 12 & 0x3F);
    o[2] = 0x80 | (cp >> 6 & 0x3F); o[3] = 0x80 | (cp & 0x3F);
    return 4;
}

int unicode_is_space(uint32_t cp) {
    return (cp >= 0x09 && cp <= 0x0D) || cp == 0x20 || cp == 0x85 || cp == 0xA0 || cp == 0x1680 ||
           (cp >= 0x2000 && cp <= 0x200A) || cp == 0x2028 || cp == 0x2029 || cp == 0x202F ||
           cp == 0x205F || cp == 0x3000;
}

int utf8_lossy_feed(struct utf8_lossy *u, const unsigned char *b, size_t n, struct buf *out) {
    if (buf_reserve(out, n * 3 + 4) != 0) return -1;   /* worst case: every byte a U+FFFD */
    char *o = out->data + out->len;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = b[i];
        if (u->n_pend) {
            unsigned char lo = 0x80, hi = 0xBF;
            if (u->n_pend == 1) second_byte_range(u->pend[0], &lo, &hi);
            if (c >= lo && c <= hi) {
                u->pend[u->n_pend++] = c;
                if (u->n_pend == u->need) {
                    memcpy(o, u->pend, (size_t)u->need);
                    o += u->need;
                    u->n_pend = 0;
                }
                continue;
            }
            /* the pending prefix can never complete: one U+FFFD for all of
             * it, then c starts afresh */
            memcpy(o, UTF8_REPLACEMENT, 3);
            o += 3;
            u->n_pend = 0;
        }
        int need = sequence_length(c);
        if (need == 1) *o++ = (char)c;
        else if (need == 0) { memcpy(o, UTF8_REPLACEMENT, 3); o += 3; }
        else { u->pend[0] = c; u->n_pend = 1; u->need = need; }
    }
    out->len = (size_t)(o - out->data);
    out->data[out->len] = 0;
    return 0;
}

int utf8_lossy_end(struct utf8_lossy *u, struct buf *out) {
    if (!u->n_pend) return 0;
    u->n_pend = 0;
    return buf_append(out, UTF8_REPLACEMENT, 3);
}

/* ---- GPT-2 byte-level table ---- */

/* Printable bytes stand for themselves; the other 68 (controls, space, DEL,
 * NBSP, soft hyphen...) are given code points 256, 257, ... in byte order, so
 * every byte becomes a visible character and BPE never sees whitespace. */
static struct byte_level_table table;
static pthread_once_t table_once = PTHREAD_ONCE_INIT;

static void build_byte_level_table(void) {
    struct byte_level_table *t = &table;
    int extra = 0;
    for (int i = 0; i < 324; i++) t->dec[i] = -1;
    for (int b = 0; b < 256; b++) {
        int printable = (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174 && b <= 255);
        uint32_t cp = printable ? (uint32_t)b : 256u + (uint32_t)extra++;
        t->enc_len[b] = (unsigned char)utf8_encode(cp, t->enc[b]);
        t->dec[cp] = (int16_t)b;
    }
}

const struct byte_level_table *byte_level(void) {
    pthread_once(&table_once, build_byte_level_table);
    return &table;
}
