/* decode.c — ids -> text through the decoder chain, one id at a time.
 *
 * The tokenizers library decodes a whole list at once: each decoder step maps
 * a list of token strings to a new list, and the result is their
 * concatenation. Here every step is written as a transducer that receives
 * tokens (or, after a step that joins them — ByteLevel, Fuse — pieces of one
 * growing text) and passes on whatever can no longer change. The full decode
 * is this same machine fed every id and then flushed, so streaming and full
 * decoding agree by construction.
 *
 * What a step must hold back:
 *   ByteLevel     an incomplete UTF-8 sequence (invalid ones become U+FFFD
 *                 exactly as String::from_utf8_lossy does);
 *   ByteFallback  a run of <0xXX> tokens until a normal token ends it: the
 *                 run decodes as one string, or one U+FFFD per byte when it
 *                 is not valid UTF-8 as a whole;
 *   Replace       (joined text) a tail that could start the pattern;
 *   Strip         (joined text) trailing chars it may remove at the end. */
#include "tokenizer_internal.h"
#include "dam/common.h"
#include <stdlib.h>
#include <string.h>

struct step_state {
    long n_tokens;         /* tokens received (Metaspace: the first token differs) */
    struct buf run;        /* ByteFallback: bytes of the pending <0xXX> run */
    struct utf8_lossy utf8;/* ByteLevel: the incomplete sequence */
    struct buf hold;       /* joined text that may still change */
    int stripped;          /* Strip: leading chars removed so far */
    int strip_done;        /* Strip: the leading part is over */
    struct buf scratch;    /* this step's output before it is passed on */
};

struct detokenizer {
    const struct tokenizer *t;
    int skip_special;
    long fed;              /* pieces that entered the chain (not skipped) */
    struct step_state *st; /* (t->n_decs) */
    struct buf out;        /* text that left the last step */
};

static void state_reset(struct step_state *s) {
    s->n_tokens = 0;
    s->run.len = 0;
    s->utf8.n_pend = 0;
    s->hold.len = 0;
    s->stripped = 0;
    s->strip_done = 0;
}

/* ---- steps ---- */

static int give_token(struct detokenizer *d, int k, const char *s, size_t n);
static int give_text(struct detokenizer *d, int k, const char *s, size_t n);
static int finish(struct detokenizer *d, int k);

/* Passes one step's output on: as a token while tokens are separate, as text
 * once joined. Steps in token mode emit tokens, the others text. */
static int pass_on(struct detokenizer *d, int k, const char *s, size_t n) {
    if (k + 1 < d->t->n_decs && !d->t->decs[k + 1].stream_in) return give_token(d, k + 1, s, n);
    return give_text(d, k + 1, s, n);
}

static int is_byte_token(const char *s, size_t n, unsigned char *byte) {
    if (n != 6 || memcmp(s, "<0x", 3) != 0 || s[5] != '>') return 0;
    int v = 0;
    for (int i = 3; i < 5; i++) {
        char c = s[i];
        int h = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10
              : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
        if (h < 0) return 0;
        v = v * 16 + h;
    }
    *byte = (unsigned char)v;
    return 1;
}

/* ByteFallback: the pending run leaves as one string, or one U+FFFD per byte. */
static int flush_run(struct detokenizer *d, int k) {
    struct step_state *s = &d->st[k];
    if (!s->run.len) return 0;
    size_t n = s->run.len;
    s->run.len = 0;
    if (utf8_valid(s->run.data, n, NULL)) return pass_on(d, k, s->run.data, n);
    for (size_t i = 0; i < n; i++)
        if (pass_on(d, k, UTF8_REPLACEMENT, 3) != 0) return -1;
    return 0;
}

/* ByteLevel: chars back to bytes; a token with any char outside the table
 * keeps its own bytes (added tokens). */
static int byte_level_token(struct detokenizer *d, int k, const char *s, size_t n) {
    struct step_state *st = &d->st[k];
    const struct byte_level_table *bl = byte_level();
    struct buf *bytes = &st->hold;   /* unused otherwise in this step */
    bytes->len = 0;
    if (buf_reserve(bytes, n) != 0) return -1;
    for (size_t i = 0; i < n;) {
        uint32_t cp;
        int len = utf8_decode(s + i, n - i, &cp);
        if (cp >= 324 || bl->dec[cp] < 0) {
            if (buf_set(bytes, s, n) != 0) return -1;
            break;
        }
        bytes->data[bytes->len++] = (char)bl->dec[cp];
        i += (size_t)len;
    }
    st->scratch.len = 0;
    if (utf8_lossy_feed(&st->utf8, (const unsigned char *)bytes->data, bytes->len, &st->scratch) != 0) return -1;
    return st->scratch.len ? pass_on(d, k, st->scratch.data, st->scratch.len) : 0;
}

/* Replace on a separate token. */
static int replace_token(struct detokenizer *d, int k, const char *s, size_t n) {
    const struct decoder_step *dec = &d->t->decs[k];
    struct buf *o = &d->st[k].scratch;
    o->len = 0;
    for (size_t i = 0; i < n;) {
        const char *hit = memmem(s + i, n - i, dec->pattern, dec->pattern_len);
        size_t stop = hit ? (size_t)(hit - s) : n;
        if (buf_append(o, s + i, stop - i) != 0) return -1;
        if (!hit) break;
        if (buf_append(o, dec->content, dec->content_len) != 0) return -1;
        i = stop + dec->pattern_len;
    }
    return pass_on(d, k, o->data ? o->data : "", o->len);
}

/* Strip on a separate token: up to `start` leading and `stop` trailing
 * copies of the char. */
static int strip_token(struct detokenizer *d, int k, const char *s, size_t n) {
    const struct decoder_step *dec = &d->t->decs[k];
    const char *c = dec->content;
    size_t cl = dec->content_len, begin = 0, end = n;
    for (int i = 0; i < dec->start && begin + cl <= end && !memcmp(s + begin, c, cl); i++) begin += cl;
    for (int i = 0; i < dec->stop && end >= begin + cl && !memcmp(s + end - cl, c, cl); i++) end -= cl;
    return pass_on(d, k, s + begin, end - begin);
}

/* Metaspace: the replacement char becomes a space, or vanishes in the first
 * token (unless the prepend scheme is "never"). */
static int metaspace_text(struct detokenizer *d, int k, const char *s, size_t n, int first) {
    const struct decoder_step *dec = &d->t->decs[k];
    struct buf *o = &d->st[k].scratch;
    o->len = 0;
    for (size_t i = 0; i < n;) {
        if (n - i >= dec->content_len && !memcmp(s + i, dec->content, dec->content_len)) {
            if (!(first && dec->drop_first) && buf_append(o, " ", 1) != 0) return -1;
            i += dec->content_len;
        } else {
            size_t len = (size_t)utf8_len_at((unsigned char)s[i]);
            if (buf_append(o, s + i, len) != 0) return -1;
            i += len;
        }
    }
    return pass_on(d, k, o->data ? o->data : "", o->len);
}

/* A token arriving at step k (k == n_decs: it is output). */
static int give_token(struct detokenizer *d, int k, const char *s, size_t n) {
    if (k == d->t->n_decs) return buf_append(&d->out, s, n);
    struct step_state *st = &d->st[k];
    long index = st->n_tokens++;
    switch (d->t->decs[k].kind) {
    case DEC_BYTE_LEVEL: return byte_level_token(d, k, s, n);
    case DEC_FUSE: return pass_on(d, k, s, n);
    case DEC_REPLACE: return replace_token(d, k, s, n);
    case DEC_STRIP: return strip_token(d, k, s, n);
    case DEC_METASPACE: return metaspace_text(d, k, s, n, index == 0);
    case DEC_BYTE_FALLBACK: {
        unsigned char byte;
        if (is_byte_token(s, n, &byte)) return buf_append(&st->run, &byte, 1);
        if (flush_run(d, k) != 0) return -1;
        return pass_on(d, k, s, n);
    }
    case DEC_JOIN_SPACE:   /* no decoder: tokens joined by spaces */
        if (index > 0 && buf_append(&d->out, " ", 1) != 0) return -1;
        return buf_append(&d->out, s, n);
    }
    return 0;
}

/* Replace on joined text: a tail that may be the start of the pattern waits. */
static int replace_text(struct detokenizer *d, int k, const char *s, size_t n) {
    const struct decoder_step *dec = &d->t->decs[k];
    struct step_state *st = &d->st[k];
    if (buf_append(&st->hold, s, n) != 0) return -1;
    const char *h = st->hold.data;
    size_t len = st->hold.len, i = 0;
    st->scratch.len = 0;
    while (i < len) {
        size_t left = len - i;
        if (left >= dec->pattern_len && !memcmp(h + i, dec->pattern, dec->pattern_len)) {
            if (buf_append(&st->scratch, dec->content, dec->content_len) != 0) return -1;
            i += dec->pattern_len;
        } else if (left < dec->pattern_len && !memcmp(h + i, dec->pattern, left)) {
            break;   /* may still become a match */
        } else {
            size_t cl = (size_t)utf8_len_at((unsigned char)h[i]);
            if (buf_append(&st->scratch, h + i, cl) != 0) return -1;
            i += cl;
        }
    }
    memmove(st->hold.data, h + i, len - i);
    st->hold.len = len - i;
    return st->scratch.len ? pass_on(d, k, st->scratch.data, st->scratch.len) : 0;
}

/* Strip on joined text: leading copies are dropped as they come; trailing
 * copies (at most `stop`) wait, since more text may follow them. */
static int strip_text(struct detokenizer *d, int k, const char *s, size_t n) {
    const struct decoder_step *dec = &d->t->decs[k];
    struct step_state *st = &d->st[k];
    const char *c = dec->content;
    size_t cl = dec->content_len;
    while (!st->strip_done && n) {
        if (st->stripped < dec->start && n >= cl && !memcmp(s, c, cl)) {
            st->stripped++;
            s += cl;
            n -= cl;
        } else {
            st->strip_done = 1;
        }
    }
    if (!n) return 0;
    if (buf_append(&st->hold, s, n) != 0) return -1;
    size_t keep = st->hold.len;
    for (int i = 0; i < dec->stop && keep >= cl && !memcmp(st->hold.data + keep - cl, c, cl); i++) keep -= cl;
    if (keep == 0) return 0;
    if (buf_set(&st->scratch, st->hold.data, keep) != 0) return -1;
    memmove(st->hold.data, st->hold.data + keep, st->hold.len - keep);
    st->hold.len -= keep;
    return pass_on(d, k, st->scratch.data, st->scratch.len);
}

/* Joined text arriving at step k. */
static int give_text(struct detokenizer *d, int k, const char *s, size_t n) {
    if (k == d->t->n_decs) return buf_append(&d->out, s, n);
    if (n == 0) return 0;
    switch (d->t->decs[k].kind) {
    case DEC_FUSE: return pass_on(d, k, s, n);
    case DEC_REPLACE: return replace_text(d, k, s, n);
    case DEC_STRIP: return strip_text(d, k, s, n);
    case DEC_METASPACE: return metaspace_text(d, k, s, n, 1);   /* the joined text is the first token */
    default: return dam_fail("decoder step %d cannot take joined text", k);   /* refused at load */
    }
}

/* End of the ids: every step lets go of what it held, in order. */
static int finish(struct detokenizer *d, int k) {
    if (k == d->t->n_decs) return 0;
    struct step_state *st = &d->st[k];
    int rc = 0;
    switch (d->t->decs[k].kind) {
    case DEC_BYTE_FALLBACK: rc = flush_run(d, k); break;
    case DEC_BYTE_LEVEL:
        st->scratch.len = 0;
        rc = utf8_lossy_end(&st->utf8, &st->scratch);
        if (rc == 0 && st->scratch.len) rc = pass_on(d, k, st->scratch.data, st->scratch.len);
        break;
    case DEC_REPLACE:
        if (st->hold.len) {   /* an unfinished partial match is plain text */
            rc = buf_set(&st->scratch, st->hold.data, st->hold.len);
            st->hold.len = 0;
            if (rc == 0) rc = pass_on(d, k, st->scratch.data, st->scratch.len);
        }
        break;
    case DEC_STRIP: st->hold.len = 0; break;   /* trailing copies: stripped */
    default: break;
    }
    if (rc != 0) return -1;
    return finish(d, k + 1);
}

/* ---- public API ---- */

struct detokenizer *detokenizer_new_opts(const struct tokenizer *t, int skip_special) {
    struct detokenizer *d = calloc(1, sizeof *d);
    if (!d || !(d->st = calloc((size_t)t->n_decs + 1, sizeof *d->st))) {
        free(d);
        dam_fail("out of memory (detokenizer)");
        return NULL;
    }
    d->t = t;
    d->skip_special = skip_special;
    return d;
}

struct detokenizer *detokenizer_new(const struct tokenizer *t) { return detokenizer_new_opts(t, 0); }

void detokenizer_free(struct detokenizer *d) {
    if (!d) return;
    for (int k = 0; k < d->t->n_decs; k++) {
        buf_free(&d->st[k].run);
        buf_free(&d->st[k].hold);
        buf_free(&d->st[k].scratch);
    }
    free(d->st);
    buf_free(&d->out);
    free(d);
}

/* Feeds one id; the output accumulates in d->out. Unknown ids are skipped,
 * as the library skips them. */
static int feed(struct detokenizer *d, int id) {
    const char *piece = tokenizer_piece(d->t, id);
    if (!piece || (d->skip_special && d->t->skip_on_decode[id])) return 0;
    d->fed++;
    if (d->t->n_decs == 0) return buf_append(&d->out, piece, strlen(piece));
    return give_token(d, 0, piece, strlen(piece));
}

static const char *out_text(struct detokenizer *d) {
    if (buf_reserve(&d->out, 0) != 0) return NULL;
    d->out.data[d->out.len] = 0;
    return d->out.data;
}

const char *detokenizer_push_n(struct detokenizer *d, int id, size_t *len) {
    d->out.len = 0;
    if (feed(d, id) != 0) return NULL;
    if (len) *len = d->out.len;
    return out_text(d);
}

const char *detokenizer_push(struct detokenizer *d, int id) { return detokenizer_push_n(d, id, NULL); }

const char *detokenizer_flush_n(struct detokenizer *d, size_t *len) {
    d->out.len = 0;
    int rc = finish(d, 0);
    for (int k = 0; k < d->t->n_decs; k++) state_reset(&d->st[k]);
    if (rc != 0) return NULL;
    if (len) *len = d->out.len;
    return out_text(d);
}

const char *detokenizer_flush(struct detokenizer *d) { return detokenizer_flush_n(d, NULL); }

/* What a step holds back belongs to the tokens already pushed (the prompt):
 * it is dropped, not passed on later. The stream itself goes on: a step
 * that has seen a token no longer treats the next one as the first, and a
 * Strip step's leading part is over once any text entered the chain. */
void detokenizer_cut(struct detokenizer *d) {
    d->out.len = 0;
    for (int k = 0; k < d->t->n_decs; k++) {
        struct step_state *st = &d->st[k];
        st->run.len = 0;
        st->utf8.n_pend = st->utf8.need = 0;
        st->hold.len = 0;
        if (d->fed) {
            if (st->n_tokens == 0) st->n_tokens = 1;
            st->strip_done = 1;
        }
    }
}

char *tokenizer_decode(const struct tokenizer *t, const int *ids, int n, int skip_special) {
    return tokenizer_decode_n(t, ids, n, skip_special, NULL);
}

char *tokenizer_decode_n(const struct tokenizer *t, const int *ids, int n, int skip_special, size_t *len) {
    struct detokenizer *d = detokenizer_new_opts(t, skip_special);
    if (!d) return NULL;
    int rc = 0;
    for (int i = 0; i < n && rc == 0; i++) rc = feed(d, ids[i]);
    if (rc == 0) rc = finish(d, 0);
    char *text = NULL;
    if (rc == 0 && out_text(d)) {
        text = d->out.data;   /* hand the buffer over */
        if (len) *len = d->out.len;
        d->out.data = NULL;
        d->out.len = d->out.cap = 0;
    }
    detokenizer_free(d);
    return text;
}
