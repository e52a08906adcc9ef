/* dam_kv.c — the paged KV store of the sparse modules (layout in dam_kv.h). */
#include "dam_kv.h"
#include "dam/attn.h"
#include "dam/common.h"
#include <float.h>
#include <stdlib.h>
#include <string.h>

int kv_store_init(struct kv_store *s, int hd, int max_seq, enum kv_type kt, int summaries) {
    memset(s, 0, sizeof *s);
    s->hd = hd;
    s->kt = kt;
    s->max_blocks = (max_seq + KB - 1) / KB;
    s->page = xmalloc((size_t)s->max_blocks * sizeof *s->page, "KV block table");
    if (!s->page) return -1;
    for (int b = 0; b < s->max_blocks; b++) s->page[b] = -1;
    s->summaries = summaries;
    return 0;
}

void kv_store_free(struct kv_store *s) {
    free(s->page);
    free(s->pages);
    free(s->free_pages);
    free(s->sums);
    memset(s, 0, sizeof *s);
}

/* A page for a new block: a freed one, else the next one. The pages of the
 * whole context are allocated at the first one with calloc, which maps
 * zero pages the system commits only when written: a store costs the memory
 * of the pages it used, and growing never copies (a realloc would move
 * megabytes and fault every page in again). */
static int take_page(struct kv_store *s) {
    if (s->n_free > 0) return s->free_pages[--s->n_free];
    if (!s->pages) {
        s->pages = calloc((size_t)s->max_blocks, kv_page_bytes(s));
        s->free_pages = malloc((size_t)s->max_blocks * sizeof *s->free_pages);
        if (!s->pages || !s->free_pages)
            return dam_fail("cannot allocate the KV cache: %.0f bytes for %d positions (lower -c)",
                            (double)s->max_blocks * kv_page_bytes(s), s->max_blocks * KB);
        s->cap_pages = s->max_blocks;
    }
    if (s->n_pages == s->cap_pages) return dam_fail("dam: internal error: KV store full (%d pages)", s->n_pages);
    return s->n_pages++;
}

void kv_store_drop(struct kv_store *s, int b) {
    if (s->page[b] < 0) return;
    s->free_pages[s->n_free++] = s->page[b];
    s->page[b] = -1;
    s->held--;
}

/* Room for the summary of block b (grown by half, like the pages). */
static int reserve_sums(struct kv_store *s, int b) {
    if (b < s->sums_cap) return 0;
    int cap = s->sums_cap < BOUND_GROUP ? BOUND_GROUP : s->sums_cap + s->sums_cap / 2;
    if (cap <= b) cap = b + 1;
    cap = (cap + BOUND_GROUP - 1) / BOUND_GROUP * BOUND_GROUP;
    float *p = realloc(s->sums, (size_t)cap * 2 * s->hd * sizeof(float));
    if (!p) return dam_fail("out of memory for the KV block summaries (%d blocks)", cap);
    /* the new rows: lanes of blocks not yet seen read as 0, never NaN */
    memset(p + (size_t)s->sums_cap * 2 * s->hd, 0, (size_t)(cap - s->sums_cap) * 2 * s->hd * sizeof(float));
    s->sums = p;
    s->sums_cap = cap;
    return 0;
}

/* Where dimension d of block b's kmax is (its kmin: hd rows further). */
static inline float *sum_at(const struct kv_store *s, int b, int d) {
    return s->sums + ((size_t)(b / BOUND_GROUP) * 2 * s->hd + d) * BOUND_GROUP + b % BOUND_GROUP;
}

/* Summary of block b from its first n lanes. */
static void summarise(struct kv_store *s, int b, int n) {
    const int hd = s->hd;
    const void *kt = kv_store_block(s, b).k;
    for (int d = 0; d < hd; d++) {
        float hi = -FLT_MAX, lo = FLT_MAX;
        for (int j = 0; j < n; j++) {
            const float x = kv_get(s->kt, kt, (size_t)d * KB + j);
            hi = x > hi ? x : hi;
            lo = x < lo ? x : lo;
        }
        *sum_at(s, b, d) = hi;
        *sum_at(s, b, hd + d) = lo;
    }
}

int kv_store_append(struct kv_store *s, int pos0, int n, const float *k, const float *v, size_t stride) {
    const int hd = s->hd;
    if (pos0 != s->n_pos || pos0 + n > s->max_blocks * KB)
        return dam_fail("dam: internal error: KV append at %d (holds %d)", pos0, s->n_pos);
    for (int t = 0; t < n; t++) {
        const int p = pos0 + t, b = p / KB, lane = p % KB;
        if (s->page[b] < 0) {
            int pg = take_page(s);
            if (pg < 0) return -1;
            s->page[b] = pg;
            s->held++;
        }
        const struct kv_block blk = kv_store_block(s, b);
        void *kt = (void *)blk.k, *vt = (void *)blk.v;
        const float *kp = k + (size_t)t * stride, *vp = v + (size_t)t * stride;
        for (int d = 0; d < hd; d++) kv_put(s->kt, kt, (size_t)d * KB + lane, kp[d]);
        if (s->kt == KV_F32) memcpy((float *)vt + (size_t)lane * hd, vp, (size_t)hd * sizeof(float));
        else for (int d = 0; d < hd; d++) kv_put(s->kt, vt, (size_t)lane * hd + d, vp[d]);
        if (s->summaries) {
            if (reserve_sums(s, b)) return -1;
            float *mx = sum_at(s, b, 0), *mn = sum_at(s, b, hd);
            for (int d = 0; d < hd; d++) {
                const size_t at = (size_t)d * BOUND_GROUP;
                const float x = kv_get(s->kt, kt, (size_t)d * KB + lane);   /* the key as stored */
                mx[at] = lane == 0 || x > mx[at] ? x : mx[at];
                mn[at] = lane == 0 || x < mn[at] ? x : mn[at];
            }
        }
    }
    s->n_pos = pos0 + n;
    return 0;
}

int kv_store_truncate(struct kv_store *s, int pos) {
    if (pos >= s->n_pos) return 0;
    int ok = 1;
    for (int b = 0; b * KB < pos; b++) ok &= s->page[b] >= 0;
    const int keep = (pos + KB - 1) / KB;             /* blocks with a position < pos */
    for (int b = keep; b * KB < s->n_pos; b++) kv_store_drop(s, b);
    if (ok && pos % KB && s->summaries) summarise(s, pos / KB, pos % KB);
    s->n_pos = pos;
    if (pos == 0) s->evicted = 0;
    return ok ? 0 : -1;
}

void kv_store_read(const struct kv_store *s, int pos, float *k, float *v) {
    const struct kv_block blk = kv_store_block(s, pos / KB);
    const int lane = pos % KB, hd = s->hd;
    for (int d = 0; d < hd; d++) k[d] = kv_get(s->kt, blk.k, (size_t)d * KB + lane);
    kv_row_f32(s->kt, (const unsigned char *)blk.v + (size_t)lane * hd * kv_type_size(s->kt), hd, v);
}

long kv_store_positions(const struct kv_store *s) {
    long n = (long)s->held * KB;
    const int last = (s->n_pos - 1) / KB;             /* the last block may be partly filled */
    if (s->n_pos > 0 && s->n_pos % KB && s->page[last] >= 0) n -= KB - s->n_pos % KB;
    return n;
}

/* ---- the prompt cache ----
 * A store: positions, blocks held, flags, which blocks are held, then their
 * pages in block order, so that one read fills the loaded store's pages
 * (numbered 0, 1, ... in that order). The loaded store gets the pages of the
 * whole context at once, with calloc (pages the system commits only when
 * written), so it never grows. Summaries are not saved: load recomputes them
 * from the keys (a maximum and a minimum are exact in any order), which
 * keeps the file free of their in-memory layout. Pages are saved in the
 * store's element type; the file's header pins it (prompt_cache.h), so a
 * store loads only into one of the same type. */

int kv_store_save(const struct kv_store *s, struct attn_stream *f) {
    const int nb = (s->n_pos + KB - 1) / KB;
    if (attn_put_int(f, s->n_pos) || attn_put_int(f, s->held) || attn_put_int(f, s->evicted) ||
        attn_put_int(f, s->summaries))
        return -1;
    for (int b = 0; b < nb; b++)
        if (attn_put_int(f, s->page[b] >= 0)) return -1;
    for (int b = 0; b < nb; b++)
        if (s->page[b] >= 0 && attn_put(f, s->pages + (size_t)s->page[b] * kv_page_bytes(s), kv_page_bytes(s)))
            return -1;
    return 0;
}

int kv_store_load(struct kv_store *s, struct attn_stream *f) {
    int n_pos, held, evicted, summaries;
    if (s->n_pos || s->held || s->pages) return dam_fail("dam: internal error: a KV store loaded twice");
    if (attn_get_int(f, &n_pos, 0, s->max_blocks * KB, "dam: KV positions") ||
        attn_get_int(f, &held, 0, (n_pos + KB - 1) / KB, "dam: KV blocks held") ||
        attn_get_int(f, &evicted, 0, 1, "dam: KV eviction flag") ||
        attn_get_int(f, &summaries, 0, 1, "dam: KV summary flag"))
        return -1;
    if (summaries != s->summaries)
        return dam_fail("dam: the cached KV store %s block summaries, this session's does%s (other plans)",
                        summaries ? "keeps" : "keeps no", summaries ? " not" : "");
    const int nb = (n_pos + KB - 1) / KB;
    for (int b = 0, flag; b < nb; b++) {
        if (attn_get_int(f, &flag, 0, 1, "dam: KV block flag")) return -1;
        if (flag && s->held == held) return dam_fail("the attention state holds more KV blocks than it says (%d)", held);
        /* a summary is made from the keys, so a store that keeps them holds every block */
        if (!flag && summaries) return dam_fail("the attention state has a summarised KV store without block %d", b);
        if (flag) s->page[b] = s->held++;
    }
    if (s->held != held) return dam_fail("the attention state holds fewer KV blocks than it says (%d)", held);
    const size_t page = kv_page_bytes(s);
    s->pages = calloc((size_t)s->max_blocks, page);
    s->free_pages = malloc((size_t)s->max_blocks * sizeof *s->free_pages);
    if (!s->pages || !s->free_pages)
        return dam_fail("cannot allocate the KV cache: %.0f bytes for %d positions (lower -c)",
                        (double)s->max_blocks * page, s->max_blocks * KB);
    s->cap_pages = s->max_blocks;
    s->n_pages = held;
    attn_state_hugepages(s->pages, (size_t)s->max_blocks * page);
    if (attn_get(f, s->pages, (size_t)held * page, "dam: KV blocks")) return -1;
    for (int b = 0; summaries && b < nb; b++) {
        if (reserve_sums(s, b)) return -1;
        summarise(s, b, b < nb - 1 || n_pos % KB == 0 ? KB : n_pos % KB);
    }
    s->n_pos = n_pos;
    s->evicted = evicted;
    return 0;
}
