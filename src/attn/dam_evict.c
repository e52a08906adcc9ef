/* dam_evict.c — --dam-evict: dropping, at the end of a prompt, the blocks
 * the prompt's last rows attend to least. */
#include "dam/common.h"
#include "dam/kernels.h"
#include "dam/threads.h"
#include "dam_state.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ---------------------------------------------------------------------------
 * Eviction (--dam-evict): when a prompt is done (the first decoded token
 * after a multi-token call), each KV head that keeps every block keeps only
 * its sinks, columns, the widest window of its heads, and the `evict` blocks
 * the prompt's last rows attended to most (their attention mass summed over
 * the group's heads: SnapKV's vote, per block); the rest is dropped for
 * good. Positions added later are kept until the next prompt ends. */

/* The last rows of a multi-token call, for the eviction's vote. */
int dam_keep_last_rows(struct dam_state *st, int layer, int pos0, int n, const float *q) {
    const struct attn_setup *s = &st->setup;
    const size_t per = (size_t)TILE * s->n_heads * s->head_dim;
    if (!st->last_q && !(st->last_q = xmalloc((size_t)s->n_layers * per * sizeof(float), "eviction rows")))
        return -1;
    const int rows = n < TILE ? n : TILE;
    memcpy(st->last_q + (size_t)layer * per, q + (size_t)(n - rows) * s->n_heads * s->head_dim,
           (size_t)rows * s->n_heads * s->head_dim * sizeof(float));
    st->last_rows[layer] = rows;
    st->last_pos[layer] = pos0 + n - rows;
    return 0;
}

/* Attention mass of the kept rows over every held block of group gi, into
 * votes (n_blocks); p: a row of probabilities, tmp: a block's keys as
 * float32 (select_scratch). */
static void eviction_votes(struct dam_state *st, int layer, int gi, float *votes, float *p, float *tmp) {
    const struct attn_setup *s = &st->setup;
    const int H = s->n_heads, hd = s->head_dim, rows = st->last_rows[layer];
    const struct kv_store *kv = &st->kv[(size_t)layer * s->n_kv_heads + gi];
    const int nb = (kv->n_pos + KB - 1) / KB;
    const float scale = 1.0f / sqrtf((float)hd);
    memset(votes, 0, (size_t)nb * sizeof *votes);
    for (int h = gi * st->group; h < (gi + 1) * st->group; h++)
        for (int r = 0; r < rows; r++) {
            const int i = st->last_pos[layer] + r;
            const float *qr = st->last_q + (((size_t)layer * TILE + r) * H + h) * hd;
            float mx = -INFINITY, sum = 0;
            for (int b = 0; b * KB <= i; b++) {
                if (kv->page[b] < 0) continue;
                const float *kb = kv_store_keys_f32(kv, b, tmp);
                float acc[KB] = { 0 };
                for (int d = 0; d < hd; d++)              /* 16 keys a dimension: vectorised */
                    for (int j = 0; j < KB; j++) acc[j] += qr[d] * kb[(size_t)d * KB + j];
                for (int j = 0; j < KB; j++) {
                    const float x = b * KB + j <= i ? acc[j] * scale : -INFINITY;
                    p[b * KB + j] = x;
                    mx = x > mx ? x : mx;
                }
            }
            for (int b = 0; b * KB <= i; b++)
                if (kv->page[b] >= 0)
                    for (int j = 0; j < KB; j++) { p[b * KB + j] = expf(p[b * KB + j] - mx); sum += p[b * KB + j]; }
            for (int b = 0; b * KB <= i; b++)
                if (kv->page[b] >= 0)
                    for (int j = 0; j < KB; j++) votes[b] += p[b * KB + j] / sum;
        }
}

/* One task per KV group: its votes, then the blocks it drops. */
struct evict_job { struct dam_state *st; int layer; };

static void evict_part(void *arg, int begin, int end, int thread) {
    const struct evict_job *jb = arg;
    struct dam_state *st = jb->st;
    const struct attn_setup *s = &st->setup;
    const int H = s->n_heads, layer = jb->layer;
    struct select_scratch *sc = &st->scratch[thread];
    for (int gi = begin; gi < end; gi++) {
        const size_t i = (size_t)layer * s->n_kv_heads + gi;
        struct kv_store *kv = &st->kv[i];
        if (!st->keep_all[i] || kv->n_pos == 0) continue;
        /* what the group's plans keep anyway: sinks, columns, the widest window */
        int sinks = 0, wb = 0, dense = 0;
        for (int h = gi * st->group; h < (gi + 1) * st->group; h++) {
            const struct head_plan *p = &st->plans[(size_t)layer * H + h];
            dense |= p->dense;
            if (p->sink_blocks > sinks) sinks = p->sink_blocks;
            if (dam_window_blocks(p->window) > wb) wb = dam_window_blocks(p->window);
        }
        if (dense) continue;                      /* a dense head reads every block */
        const int first = kv->n_pos / KB - wb;    /* the next row's window */
        float *votes = xmalloc((size_t)kv->max_blocks * sizeof *votes, "eviction votes");
        if (!votes) { sc->failed = 1; continue; }
        eviction_votes(st, layer, gi, votes, sc->scores, sc->kvf);
        int n = 0;
        for (int b = sinks; b < first; b++)
            if (kv->page[b] >= 0 && !dam_group_pins(st, layer, gi, b)) sc->ids[n++] = b;
        const int keep = select_top(sc->ids, votes, n, st->run.evict, sc->order);
        /* drop the candidates not among the kept (both lists ascend) */
        for (int b = sinks, k = 0; b < first; b++) {
            while (k < keep && sc->ids[k] < b) k++;
            if (kv->page[b] >= 0 && !dam_group_pins(st, layer, gi, b) && !(k < keep && sc->ids[k] == b))
                kv_store_drop(kv, b);
        }
        free(votes);
        kv->evicted = 1;
    }
}

int dam_evict_layer(struct dam_state *st, int layer) {
    for (int t = 0; t < st->n_threads; t++) st->scratch[t].failed = 0;
    struct evict_job jb = { st, layer };
    parallel_for(st->setup.n_kv_heads, 1, evict_part, &jb);
    int failed = 0;
    for (int t = 0; t < st->n_threads; t++) failed |= st->scratch[t].failed;
    st->last_rows[layer] = 0;
    return failed ? -1 : 0;
}
