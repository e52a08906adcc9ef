/* encode.c — text -> ids, step by step as the tokenizers library does it:
 *
 *   1. added tokens (normalized = false) are cut out of the raw text;
 *   2. each remaining piece is normalized, and added tokens with
 *      normalized = true are cut out of the normalized text;
 *   3. the pre-tokenizers split each piece into words (each stage splits
 *      every piece the previous stage produced: depth-first here, so no
 *      list of pieces is ever built);
 *   4. the BPE model turns each word into ids (cached per call: long texts
 *      repeat their words);
 *   5. with add_special, the post-processor wraps the ids (BOS, ...). */
#include "tokenizer_internal.h"
#include "dam/common.h"
#include <stdlib.h>
#include <string.h>

#define MAX_STAGES 32            /* pre-tokenizers in a Sequence */
#define CACHE_MAX_WORD 256       /* longer words are not cached */
#define CACHE_MAX_ENTRIES (1 << 20)
#define ARENA_BLOCK 65536

/* ---- per-call state ---- */

/* Scratch of one pre-tokenizer stage: its rewritten text and its splits. */
struct stage_scratch {
    struct buf text;       /* the piece after prefixing / replacing */
    struct buf mapped;     /* one split after byte-level mapping */
    struct span_vec found; /* regex matches */
    struct span_vec events;/* matches and the gaps between them */
    struct span_vec pieces;/* what the split behavior keeps */
};

/* Word -> ids memo. Keys are copied into an arena of fixed blocks, so the
 * map's pointers stay valid while it grows. */
struct word_cache {
    struct str_map map;    /* word -> entry */
    struct ivec start;     /* (entries) offset of the entry's ids in ids */
    struct ivec count;     /* (entries) how many ids */
    struct ivec ids;
    char **blocks;
    int n_blocks;
    size_t used;           /* bytes used in the last block */
};

struct symbol {            /* one BPE symbol of the word being merged */
    int id;
    int prev, next;        /* neighbours, -1 at the ends */
    int removed;           /* merged into its left neighbour */
};

struct merge_item {        /* a candidate merge of symbols pos and its next */
    int rank, pos, merged;
};

struct enc {
    const struct tokenizer *t;
    struct ivec *out;
    struct regex_scratch rs;
    struct stage_scratch stage[MAX_STAGES];
    struct word_cache cache;
    struct symbol *syms;   /* (syms_cap) */
    size_t syms_cap;
    struct merge_item *heap;  /* (heap_cap) min-heap on (rank, pos) */
    size_t heap_len, heap_cap;
    struct ivec word_ids;  /* the ids of the word just merged */
    struct buf affixed;    /* a char with the subword prefix / suffix */
    struct buf norm;       /* a normalized piece */
    struct span_vec added_raw, added_norm;   /* splits around added tokens */
};

static void stage_free(struct stage_scratch *s) {
    buf_free(&s->text);
    buf_free(&s->mapped);
    span_vec_free(&s->found);
    span_vec_free(&s->events);
    span_vec_free(&s->pieces);
}

static void cache_free(struct word_cache *c) {
    str_map_free(&c->map);
    ivec_free(&c->start);
    ivec_free(&c->count);
    ivec_free(&c->ids);
    for (int i = 0; i < c->n_blocks; i++) free(c->blocks[i]);
    free(c->blocks);
    memset(c, 0, sizeof *c);
}

static int enc_init(struct enc *e, const struct tokenizer *t, struct ivec *out) {
    memset(e, 0, sizeof *e);
    e->t = t;
    e->out = out;
    if (regex_scratch_init(&e->rs) != 0) return -1;
    return str_map_init(&e->cache.map, 4096);
}

static void enc_free(struct enc *e) {
    regex_scratch_free(&e->rs);
    for (int i = 0; i < MAX_STAGES; i++) stage_free(&e->stage[i]);
    cache_free(&e->cache);
    free(e->syms);
    free(e->heap);
    ivec_free(&e->word_ids);
    buf_free(&e->affixed);
    buf_free(&e->norm);
    span_vec_free(&e->added_raw);
    span_vec_free(&e->added_norm);
}

/* ---- word cache ---- */

static const char *cache_copy_key(struct word_cache *c, const char *s, size_t n) {
    if (!c->n_blocks || c->used + n > ARENA_BLOCK) {
        char **grown = realloc(c->blocks, ((size_t)c->n_blocks + 1) * sizeof *grown);
        if (!grown) return NULL;
        c->blocks = grown;
        if (!(c->blocks[c->n_blocks] = malloc(ARENA_BLOCK))) return NULL;
        c->n_blocks++;
        c->used = 0;
    }
    char *key = c->blocks[c->n_blocks - 1] + c->used;
    memcpy(key, s, n);
    c->used += n;
    return key;
}

/* Remembers ids for word; failing to remember is not an error. */
static void cache_put(struct word_cache *c, const char *word, size_t n, const int *ids, int n_ids) {
    if (n > CACHE_MAX_WORD || c->start.len >= CACHE_MAX_ENTRIES) return;
    const char *key = cache_copy_key(c, word, n);
    if (!key) return;
    int entry = c->start.len;
    if (ivec_push(&c->start, c->ids.len) != 0 || ivec_push(&c->count, n_ids) != 0) return;
    for (int i = 0; i < n_ids; i++)
        if (ivec_push(&c->ids, ids[i]) != 0) return;
    str_map_put(&c->map, key, n, entry);
}

/* ---- the BPE model ---- */

static int heap_less(const struct merge_item *a, const struct merge_item *b) {
    return a->rank != b->rank ? a->rank < b->rank : a->pos < b->pos;
}

static int heap_push(struct enc *e, int rank, int pos, int merged) {
    if (e->heap_len == e->heap_cap) {
        size_t cap = e->heap_cap ? e->heap_cap * 2 : 64;
        struct merge_item *grown = realloc(e->heap, cap * sizeof *grown);
        if (!grown) return dam_fail("out of memory (BPE merges)");
        e->heap = grown;
        e->heap_cap = cap;
    }
    size_t i = e->heap_len++;
    struct merge_item item = { rank, pos, merged };
    while (i > 0 && heap_less(&item, &e->heap[(i - 1) / 2])) {
        e->heap[i] = e->heap[(i - 1) / 2];
        i = (i - 1) / 2;
    }
    e->heap[i] = item;
    return 0;
}

static struct merge_item heap_pop(struct enc *e) {
    struct merge_item top = e->heap[0], last = e->heap[--e->heap_len];
    size_t i = 0, n = e->heap_len;
    for (;;) {
        size_t child = 2 * i + 1;
        if (child >= n) break;
        if (child + 1 < n && heap_less(&e->heap[child + 1], &e->heap[child])) child++;
        if (!heap_less(&e->heap[child], &last)) break;
        e->heap[i] = e->heap[child];
        i = child;
    }
    if (n) e->heap[i] = last;
    return top;
}

static int add_symbol(struct enc *e, int *n_syms, int id) {
    if ((size_t)*n_syms == e->syms_cap) {
        size_t cap = e->syms_cap ? e->syms_cap * 2 : 64;
        struct symbol *grown = realloc(e->syms, cap * sizeof *grown);
        if (!grown) return dam_fail("out of memory (BPE symbols)");
        e->syms = grown;
        e->syms_cap = cap;
    }
    int i = (*n_syms)++;
    e->syms[i] = (struct symbol){ id, i - 1, -1, 0 };
    if (i > 0) e->syms[i - 1].next = i;
    return 0;
}

/* Queues the merge of symbol pos with its right neighbour, if there is one. */
static int queue_pair(struct enc *e, int pos) {
    int next = e->syms[pos].next, rank, merged;
    if (next < 0 || !pair_map_get(&e->t->bpe.merges, e->syms[pos].id, e->syms[next].id, &rank, &merged)) return 0;
    return heap_push(e, rank, pos, merged);
}

/* The word's characters as initial symbols: each char's id, or its bytes as
 * <0xXX> tokens (byte_fallback), or the unknown token (fused with a
 * preceding unknown when fuse_unk). The order of these cases is the
 * library's, including where a pending unknown goes. */
static int initial_symbols(struct enc *e, const char *w, size_t n, int *n_syms) {
    const struct bpe *m = &e->t->bpe;
    int pending_unk = 0;   /* an unknown token waits to be added */
    for (size_t i = 0; i < n;) {
        size_t len = (size_t)utf8_len_at((unsigned char)w[i]);
        const char *s = w + i;
        size_t s_len = len;
        if ((i > 0 && m->prefix) || (i + len == n && m->suffix)) {
            e->affixed.len = 0;
            if ((i > 0 && m->prefix && buf_append(&e->affixed, m->prefix, strlen(m->prefix)) != 0) ||
                buf_append(&e->affixed, s, len) != 0 ||
                (i + len == n && m->suffix && buf_append(&e->affixed, m->suffix, strlen(m->suffix)) != 0))
                return -1;
            s = e->affixed.data;
            s_len = e->affixed.len;
        }
        i += len;
        int id = str_map_get(&m->vocab, s, s_len);
        if (id >= 0) {
            if (pending_unk) { if (add_symbol(e, n_syms, m->unk_id) != 0) return -1; pending_unk = 0; }
            if (add_symbol(e, n_syms, id) != 0) return -1;
            continue;
        }
        if (m->byte_fallback) {
            int all = 1;
            for (size_t k = 0; k < s_len; k++) all &= m->byte_ids[(unsigned char)s[k]] >= 0;
            if (all) {
                for (size_t k = 0; k < s_len; k++)
                    if (add_symbol(e, n_syms, m->byte_ids[(unsigned char)s[k]]) != 0) return -1;
                continue;
            }
        }
        if (!m->unk_token) continue;   /* no unknown token: the char is dropped */
        if (m->unk_missing) return dam_fail("unk_token '%s' is not in the vocab", m->unk_token);
        if (pending_unk && !m->fuse_unk && add_symbol(e, n_syms, m->unk_id) != 0) return -1;
        pending_unk = 1;
    }
    if (pending_unk && add_symbol(e, n_syms, m->unk_id) != 0) return -1;
    return 0;
}

/* Merges the lowest-ranked pair first (leftmost among equals) until no pair
 * of neighbours has a merge. A queued pair whose symbols changed meanwhile is
 * skipped when it surfaces (the check is the library's: same merged id). */
static int merge_word(struct enc *e, const char *w, size_t n) {
    int n_syms = 0;
    e->heap_len = 0;
    e->word_ids.len = 0;
    if (initial_symbols(e, w, n, &n_syms) != 0) return -1;
    for (int i = 0; i + 1 < n_syms; i++)
        if (queue_pair(e, i) != 0) return -1;
    const struct pair_map *merges = &e->t->bpe.merges;
    while (e->heap_len) {
        struct merge_item top = heap_pop(e);
        struct symbol *left = &e->syms[top.pos];
        if (left->removed || left->next < 0) continue;
        struct symbol *right = &e->syms[left->next];
        int rank, merged;
        if (!pair_map_get(merges, left->id, right->id, &rank, &merged) || merged != top.merged) continue;
        left->id = top.merged;
        right->removed = 1;
        left->next = right->next;
        if (right->next >= 0) e->syms[right->next].prev = top.pos;
        if ((left->prev >= 0 && queue_pair(e, left->prev) != 0) || queue_pair(e, top.pos) != 0) return -1;
    }
    for (int i = 0; i < n_syms; i++)
        if (!e->syms[i].removed && ivec_push(&e->word_ids, e->syms[i].id) != 0) return -1;
    return 0;
}

static int emit_ids(struct enc *e, const int *ids, int n) {
    for (int i = 0; i < n; i++)
        if (ivec_push(e->out, ids[i]) != 0) return -1;
    return 0;
}

static int encode_word(struct enc *e, const char *w, size_t n) {
    const struct bpe *m = &e->t->bpe;
    if (n == 0) return 0;
    if (m->ignore_merges) {   /* a word that is itself a token is not merged */
        int id = str_map_get(&m->vocab, w, n);
        if (id >= 0) return ivec_push(e->out, id);
    }
    int entry = n <= CACHE_MAX_WORD ? str_map_get(&e->cache.map, w, n) : -1;
    if (entry >= 0) {   /* (a word may have no ids: chars without unk are dropped) */
        int count = e->cache.count.data[entry];
        return count ? emit_ids(e, e->cache.ids.data + e->cache.start.data[entry], count) : 0;
    }
    if (merge_word(e, w, n) != 0) return -1;
    cache_put(&e->cache, w, n, e->word_ids.data, e->word_ids.len);
    return emit_ids(e, e->word_ids.data, e->word_ids.len);
}

/* ---- splitting ---- */

/* Cuts s at the regex matches and keeps what `behavior` keeps, exactly as
 * NormalizedString::split does; empty pieces are dropped. Result in st->pieces. */
static int split_by(struct enc *e, struct stage_scratch *st, const struct regex *re, const char *s, size_t n,
                    enum split_behavior behavior, int invert) {
    st->found.len = st->events.len = st->pieces.len = 0;
    if (regex_find_all(re, &e->rs, s, n, &st->found) != 0) return -1;
    size_t prev = 0;
    for (size_t i = 0; i < st->found.len; i++) {
        struct span m = st->found.data[i];
        if (prev != m.start && span_push(&st->events, prev, m.start, 0) != 0) return -1;
        if (span_push(&st->events, m.start, m.end, 1) != 0) return -1;
        prev = m.end;
    }
    if (prev != n && span_push(&st->events, prev, n, 0) != 0) return -1;
    struct span *ev = st->events.data;
    size_t n_ev = st->events.len;
    if (invert)
        for (size_t i = 0; i < n_ev; i++) ev[i].is_match = !ev[i].is_match;

    struct span_vec *out = &st->pieces;
    int prev_match = 0;
    switch (behavior) {
    case SPLIT_REMOVED:
        for (size_t i = 0; i < n_ev; i++)
            if (!ev[i].is_match && span_push(out, ev[i].start, ev[i].end, 0) != 0) return -1;
        break;
    case SPLIT_ISOLATED:
        for (size_t i = 0; i < n_ev; i++)
            if (span_push(out, ev[i].start, ev[i].end, 0) != 0) return -1;
        break;
    case SPLIT_MERGED_PREV:   /* a match joins the piece before it */
        for (size_t i = 0; i < n_ev; i++) {
            if (ev[i].is_match && !prev_match && out->len) out->data[out->len - 1].end = ev[i].end;
            else if (span_push(out, ev[i].start, ev[i].end, 0) != 0) return -1;
            prev_match = ev[i].is_match;
        }
        break;
    case SPLIT_MERGED_NEXT:   /* a match joins the piece after it: the same, walking backwards */
        for (size_t i = n_ev; i-- > 0;) {
            if (ev[i].is_match && !prev_match && out->len) out->data[out->len - 1].start = ev[i].start;
            else if (span_push(out, ev[i].start, ev[i].end, 0) != 0) return -1;
            prev_match = ev[i].is_match;
        }
        for (size_t i = 0, j = out->len; i + 1 < j; i++, j--) {
            struct span tmp = out->data[i];
            out->data[i] = out->data[j - 1];
            out->data[j - 1] = tmp;
        }
        break;
    case SPLIT_CONTIGUOUS:    /* neighbours of the same kind join */
        for (size_t i = 0; i < n_ev; i++) {
            if (ev[i].is_match == prev_match && out->len) out->data[out->len - 1].end = ev[i].end;
            else if (span_push(out, ev[i].start, ev[i].end, 0) != 0) return -1;
            prev_match = ev[i].is_match;
        }
        break;
    }
    return 0;
}

/* ---- pre-tokenizers ---- */

static int pretokenize(struct enc *e, int k, const char *s, size_t n, int at_start);

/* Hands each kept piece of st to stage k + 1. at_start: the piece begins at
 * offset 0 of the original text (what Metaspace's "first" scheme asks). */
static int run_pieces(struct enc *e, int k, struct stage_scratch *st, const char *s, int at_start) {
    for (size_t i = 0; i < st->pieces.len; i++) {
        struct span p = st->pieces.data[i];
        if (p.end > p.start && pretokenize(e, k + 1, s + p.start, p.end - p.start, at_start && p.start == 0) != 0)
            return -1;
    }
    return 0;
}

/* ByteLevel: optional leading space, GPT-2's split, then every byte becomes
 * its printable stand-in character. */
static int pretok_byte_level(struct enc *e, int k, const char *s, size_t n, int at_start) {
    const struct pretokenizer *p = &e->t->pretoks[k];
    struct stage_scratch *st = &e->stage[k];
    if (p->add_prefix_space && s[0] != ' ') {
        if (buf_set(&st->text, " ", 1) != 0 || buf_append(&st->text, s, n) != 0) return -1;
        s = st->text.data;
        n = st->text.len;
    }
    if (p->use_regex) {
        if (split_by(e, st, p->re, s, n, SPLIT_ISOLATED, 0) != 0) return -1;
    } else {
        st->pieces.len = 0;
        if (span_push(&st->pieces, 0, n, 0) != 0) return -1;
    }
    const struct byte_level_table *bl = byte_level();
    for (size_t i = 0; i < st->pieces.len; i++) {
        struct span piece = st->pieces.data[i];
        if (piece.end == piece.start) continue;
        if (buf_reserve(&st->mapped, (piece.end - piece.start) * 2) != 0) return -1;
        char *o = st->mapped.data;
        for (size_t j = piece.start; j < piece.end; j++) {
            unsigned char b = (unsigned char)s[j];
            o[0] = bl->enc[b][0];
            o[1] = bl->enc[b][1];   /* one or two bytes; copying two is harmless */
            o += bl->enc_len[b];
        }
        size_t len = (size_t)(o - st->mapped.data);
        if (pretokenize(e, k + 1, st->mapped.data, len, at_start && piece.start == 0) != 0) return -1;
    }
    return 0;
}

/* Metaspace: spaces become the replacement char, which is prepended per the
 * scheme, and the text is split before each replacement char. */
static int pretok_metaspace(struct enc *e, int k, const char *s, size_t n, int at_start) {
    const struct pretokenizer *p = &e->t->pretoks[k];
    struct stage_scratch *st = &e->stage[k];
    const char *rep = p->replacement;
    size_t rep_len = (size_t)p->replacement_len;
    st->text.len = 0;
    /* the check is made after spaces were replaced: a leading space counts */
    int starts_with_rep = s[0] == ' ' || (n >= rep_len && !memcmp(s, rep, rep_len));
    int prepend = !starts_with_rep &&
                  (p->prepend == PREPEND_ALWAYS || (p->prepend == PREPEND_FIRST && at_start));
    if (prepend && buf_append(&st->text, rep, rep_len) != 0) return -1;
    for (size_t i = 0; i < n; i++) {
        if (s[i] == ' ' ? buf_append(&st->text, rep, rep_len) : buf_append(&st->text, s + i, 1)) return -1;
    }
    if (!p->split) return pretokenize(e, k + 1, st->text.data, st->text.len, at_start);
    if (split_by(e, st, p->re, st->text.data, st->text.len, SPLIT_MERGED_NEXT, 0) != 0) return -1;
    return run_pieces(e, k, st, st->text.data, at_start);
}

static int pretokenize(struct enc *e, int k, const char *s, size_t n, int at_start) {
    if (n == 0) return 0;
    if (k == e->t->n_pretoks) return encode_word(e, s, n);
    const struct pretokenizer *p = &e->t->pretoks[k];
    switch (p->kind) {
    case PT_BYTE_LEVEL: return pretok_byte_level(e, k, s, n, at_start);
    case PT_METASPACE: return pretok_metaspace(e, k, s, n, at_start);
    case PT_SPLIT:
        if (split_by(e, &e->stage[k], p->re, s, n, p->behavior, p->invert) != 0) return -1;
        return run_pieces(e, k, &e->stage[k], s, at_start);
    }
    return 0;
}

/* ---- normalizers ---- */

static size_t leading_space(const char *s, size_t n) {
    size_t i = 0;
    while (i < n) {
        uint32_t cp;
        int len = utf8_decode(s + i, n - i, &cp);
        if (!unicode_is_space(cp)) break;
        i += (size_t)len;
    }
    return i;
}

/* Offset where the trailing whitespace of s begins (n when there is none). */
static size_t trailing_space_start(const char *s, size_t n) {
    size_t end = n;
    while (end > 0) {
        size_t i = end - 1;
        while (i > 0 && ((unsigned char)s[i] & 0xC0) == 0x80) i--;
        uint32_t cp;
        utf8_decode(s + i, end - i, &cp);
        if (!unicode_is_space(cp)) break;
        end = i;
    }
    return end;
}

static int apply_normalizer(const struct normalizer *nm, struct regex_scratch *rs, const char *s, size_t n,
                            struct buf *out) {
    out->len = 0;
    if (buf_reserve(out, n) != 0) return -1;
    switch (nm->kind) {
    case NORM_PREPEND:
        if (n && buf_append(out, nm->text, nm->text_len) != 0) return -1;
        return buf_append(out, s, n);
    case NORM_STRIP: {
        size_t start = nm->left ? leading_space(s, n) : 0;
        size_t end = nm->right ? trailing_space_start(s, n) : n;
        return buf_append(out, s + start, end > start ? end - start : 0);
    }
    case NORM_BYTE_LEVEL: {
        const struct byte_level_table *bl = byte_level();
        for (size_t i = 0; i < n; i++)
            if (buf_append(out, bl->enc[(unsigned char)s[i]], bl->enc_len[(unsigned char)s[i]]) != 0) return -1;
        return 0;
    }
    case NORM_REPLACE:
        if (nm->re) {
            struct span_vec found = {0};
            int rc = regex_find_all(nm->re, rs, s, n, &found);
            size_t prev = 0;
            for (size_t i = 0; rc == 0 && i < found.len; i++) {
                rc = buf_append(out, s + prev, found.data[i].start - prev) ||
                     buf_append(out, nm->content, nm->content_len);
                prev = found.data[i].end;
            }
            span_vec_free(&found);
            return rc ? -1 : buf_append(out, s + prev, n - prev);
        }
        for (size_t i = 0; i < n;) {
            const char *hit = memmem(s + i, n - i, nm->text, nm->text_len);
            size_t stop = hit ? (size_t)(hit - s) : n;
            if (buf_append(out, s + i, stop - i) != 0) return -1;
            if (!hit) break;
            if (buf_append(out, nm->content, nm->content_len) != 0) return -1;
            i = stop + nm->text_len;
        }
        return 0;
    }
    return 0;
}

int normalize_text(const struct tokenizer *t, struct regex_scratch *rs, const char *s, size_t n,
                   struct buf *out) {
    struct buf tmp = {0};
    int rc = buf_set(out, s, n);
    for (int i = 0; rc == 0 && i < t->n_norms; i++) {
        rc = apply_normalizer(&t->norms[i], rs, out->data, out->len, &tmp);
        struct buf swap = *out;
        *out = tmp;
        tmp = swap;
    }
    buf_free(&tmp);
    return rc;
}

/* ---- added tokens ---- */

static int is_word_char_at(struct enc *e, const char *s, size_t n, size_t pos) {
    return regex_match_at(e->t->word_char, &e->rs, s, n, pos) == 1;
}

/* Cuts s around the added tokens of matcher m, leftmost-longest, honouring
 * single_word, lstrip and rstrip like AddedVocabulary::find_matches. Spans
 * go to out with is_match = token index + 1, or 0 for text. */
static int find_added(struct enc *e, const struct added_matcher *m, const char *s, size_t n, struct span_vec *out) {
    const struct tokenizer *t = e->t;
    out->len = 0;
    size_t start_offset = 0, pos = 0;
    while (m->n && pos < n) {
        unsigned char c = (unsigned char)s[pos];
        int hit = -1;
        for (int k = m->first[c]; k < m->first[c + 1]; k++) {
            const struct added_token *tok = &t->added[m->order[k]];
            if (tok->pattern_len <= n - pos && !memcmp(s + pos, tok->pattern, tok->pattern_len)) {
                hit = m->order[k];
                break;
            }
        }
        if (hit < 0) { pos++; continue; }
        const struct added_token *tok = &t->added[hit];
        size_t start = pos, stop = pos + tok->pattern_len;
        pos = stop;   /* the search resumes after the match, even a discarded one */
        if (tok->single_word) {   /* no word character may touch the token */
            int word_before = 0;
            if (start > 0) {
                size_t i = start - 1;   /* back to the start of the char before */
                while (i > 0 && ((unsigned char)s[i] & 0xC0) == 0x80) i--;
                word_before = is_word_char_at(e, s, n, i);
            }
            int word_after = stop < n && is_word_char_at(e, s, n, stop);
            if (word_before || word_after) continue;
        }
        if (tok->lstrip) {
            size_t new_start = trailing_space_start(s, start);
            start = new_start > start_offset ? new_start : start_offset;
        }
        if (tok->rstrip) stop += leading_space(s + stop, n - stop);
        if (start_offset < start && span_push(out, start_offset, start, 0) != 0) return -1;
        if (span_push(out, start, stop, hit + 1) != 0) return -1;
        start_offset = stop;
    }
    if (start_offset < n && span_push(out, start_offset, n, 0) != 0) return -1;
    return 0;
}

/* A piece of raw text between added tokens: normalize it, cut out the
 * normalized added tokens, pre-tokenize the rest. */
static int encode_piece(struct enc *e, const char *s, size_t n, int at_start) {
    const struct tokenizer *t = e->t;
    if (t->n_norms) {
        if (normalize_text(t, &e->rs, s, n, &e->norm) != 0) return -1;
        s = e->norm.data;
        n = e->norm.len;
    }
    if (n == 0) return 0;
    if (find_added(e, &t->match_normalized, s, n, &e->added_norm) != 0) return -1;
    for (size_t i = 0; i < e->added_norm.len; i++) {
        struct span p = e->added_norm.data[i];
        if (p.end == p.start) continue;
        if (p.is_match) {
            if (ivec_push(e->out, t->added[p.is_match - 1].id) != 0) return -1;
        } else if (pretokenize(e, 0, s + p.start, p.end - p.start, at_start && p.start == 0) != 0) {
            return -1;
        }
    }
    return 0;
}

/* ---- post-processor ---- */

/* Wraps ids with each template in turn (-1 in a template: the sequence). */
static int post_process(const struct tokenizer *t, struct ivec *ids) {
    for (int k = 0; k < t->n_posts; k++) {
        const struct post_template *p = &t->posts[k];
        struct ivec wrapped = {0};
        for (int i = 0; i < p->n; i++) {
            if (p->ids[i] >= 0) {
                if (ivec_push(&wrapped, p->ids[i]) != 0) { ivec_free(&wrapped); return -1; }
                continue;
            }
            for (int j = 0; j < ids->len; j++)
                if (ivec_push(&wrapped, ids->data[j]) != 0) { ivec_free(&wrapped); return -1; }
        }
        ivec_free(ids);
        *ids = wrapped;
    }
    return 0;
}

/* ---- entry points ---- */

static int encode_ivec(const struct tokenizer *t, const char *text, size_t len, struct ivec *out) {
    size_t bad;
    if (len && !text) return dam_fail("no text to encode");
    if (!utf8_valid(text, len, &bad))
        return dam_fail("invalid UTF-8 in the input text at byte %zu (0x%02X)", bad, (unsigned char)text[bad]);
    if (t->n_pretoks > MAX_STAGES) return dam_fail("unsupported pre_tokenizer Sequence of %d (max %d)", t->n_pretoks, MAX_STAGES);
    struct enc e;
    if (enc_init(&e, t, out) != 0) { enc_free(&e); return -1; }
    int rc = find_added(&e, &t->match_raw, text, len, &e.added_raw);
    for (size_t i = 0; rc == 0 && i < e.added_raw.len; i++) {
        struct span p = e.added_raw.data[i];
        if (p.end == p.start) continue;
        if (p.is_match) rc = ivec_push(out, t->added[p.is_match - 1].id);
        else rc = encode_piece(&e, text + p.start, p.end - p.start, p.start == 0);
    }
    enc_free(&e);
    return rc;
}

int tokenizer_encode(const struct tokenizer *t, const char *text, size_t len, int add_special,
                     int **ids, int *n_ids) {
    struct ivec out = {0};
    *ids = NULL;
    *n_ids = 0;
    if (encode_ivec(t, text, len, &out) != 0 || (add_special && post_process(t, &out) != 0)) {
        ivec_free(&out);
        return -1;
    }
    *ids = out.data;
    *n_ids = out.len;
    return 0;
}

int tokenizer_encode_chat(const struct tokenizer *t, const char *text, size_t len, int add_special,
                          int **ids, int *n_ids) {
    struct ivec out = {0}, frame = {0};
    *ids = NULL;
    *n_ids = 0;
    int rc = encode_ivec(t, text, len, &out);
    if (rc == 0 && add_special) {
        /* the post-processor's frame around a one-id marker: prefix, -2, suffix */
        rc = ivec_push(&frame, -2) || post_process(t, &frame) ? -1 : 0;
        int mark = 0;
        while (rc == 0 && frame.data[mark] != -2) mark++;
        int n_pre = mark, n_suf = rc == 0 ? frame.len - mark - 1 : 0;
        int has_pre = n_pre == 0 || (out.len >= n_pre && !memcmp(out.data, frame.data, (size_t)n_pre * sizeof(int)));
        int has_suf = n_suf == 0 || (out.len >= n_suf && !memcmp(out.data + out.len - n_suf, frame.data + mark + 1,
                                                                 (size_t)n_suf * sizeof(int)));
        struct ivec wrapped = {0};
        for (int i = 0; rc == 0 && !has_pre && i < n_pre; i++) rc = ivec_push(&wrapped, frame.data[i]);
        for (int i = 0; rc == 0 && i < out.len; i++) rc = ivec_push(&wrapped, out.data[i]);
        for (int i = 0; rc == 0 && !has_suf && i < n_suf; i++) rc = ivec_push(&wrapped, frame.data[mark + 1 + i]);
        ivec_free(&out);
        out = wrapped;
    }
    ivec_free(&frame);
    if (rc != 0) { ivec_free(&out); return -1; }
    *ids = out.data;
    *n_ids = out.len;
    return 0;
}
