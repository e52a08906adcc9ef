/* dam_measure.c — rows the engine runs with full attention to measure the
 * model: the PCL capture of DAM's patterns (calibration and --dam-capture
 * prompt), and the reach capture of calibration (dam_reach.c), which also
 * scores the blocks before each tile exactly as the selection does. */
#include "dam/common.h"
#include "dam/kernels.h"
#include "dam/threads.h"
#include "dam_state.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ---------------------------------------------------------------------------
 * Capture rows: full attention with the probabilities written out */

/* One task per head (the capture's rows of a head are summed by one thread). */
struct measure_job {
    struct dam_state *st;
    int layer, pos0, t0, t1;
    const float *q;
    float *out;
};

static void capture_part(void *arg, int begin, int end, int thread) {
    const struct measure_job *jb = arg;
    struct dam_state *st = jb->st;
    const struct attn_setup *s = &st->setup;
    const int H = s->n_heads, hd = s->head_dim, layer = jb->layer, pos0 = jb->pos0;
    const float *q = jb->q;
    float *out = jb->out;
    const float scale = 1.0f / sqrtf((float)hd);
    for (int h = begin; h < end; h++) {
        const struct kv_store *kv = &st->kv[(size_t)layer * s->n_kv_heads + h / st->group];
        float *p = st->scratch[thread].scores;              /* >= max_seq_len floats */
        float *tmp = st->scratch[thread].kvf;               /* a block as float32 (16-bit stores) */
        for (int t = jb->t0; t < jb->t1; t++) {
            const int i = pos0 + t;
            const float *qr = q + ((size_t)t * H + h) * hd;
            float mx = -INFINITY;
            for (int b = 0; b * KB <= i; b++) {
                const float *kb = kv_store_keys_f32(kv, b, tmp);
                float acc[KB] = { 0 };
                for (int d = 0; d < hd; d++)
                    for (int j = 0; j < KB; j++) acc[j] += qr[d] * kb[(size_t)d * KB + j];
                for (int j = 0; j < KB && b * KB + j <= i; j++) {
                    p[b * KB + j] = acc[j] * scale;
                    mx = p[b * KB + j] > mx ? p[b * KB + j] : mx;
                }
            }
            float sum = 0;
            for (int j = 0; j <= i; j++) { p[j] = expf(p[j] - mx); sum += p[j]; }
            float *o = out + ((size_t)t * H + h) * hd;
            memset(o, 0, (size_t)hd * sizeof(float));
            for (int j = 0; j <= i; j++) {
                p[j] /= sum;
                const float *vj = kv_store_value_f32(kv, j / KB, j % KB, tmp);
                for (int d = 0; d < hd; d++) o[d] += p[j] * vj[d];
            }
            dam_capture_add_row(st->cap, layer, h, i, p);
        }
    }
}

/* Rows t in [t0, t1) of the chunk at pos0 (all < PCL), every head. */
void dam_attend_capture(struct dam_state *st, int layer, int pos0, int t0, int t1,
                        const float *q, float *out) {
    const int H = st->setup.n_heads;
    struct measure_job jb = { st, layer, pos0, t0, t1, q, out };
    parallel_for(H, 1, capture_part, &jb);
    for (int t = t0; t < t1; t++) dam_capture_count_row(st->cap, layer, pos0 + t);
    const double n = t1 - t0;
    st->kept_pairs += H * (n * (pos0 + t0) + n * (n + 1) / 2);
    st->causal_pairs += H * (n * (pos0 + t0) + n * (n + 1) / 2);
}

static void reach_part(void *arg, int begin, int end, int thread) {
    const struct measure_job *jb = arg;
    struct dam_state *st = jb->st;
    const struct attn_setup *s = &st->setup;
    const int H = s->n_heads, hd = s->head_dim, layer = jb->layer, pos0 = jb->pos0, t0 = jb->t0, t1 = jb->t1;
    const size_t ld = (size_t)s->max_seq_len;
    const float *q = jb->q;
    float *out = jb->out;
    const float scale = 1.0f / sqrtf((float)hd);
    for (int h = begin; h < end; h++) {
        const struct kv_store *kv = &st->kv[(size_t)layer * s->n_kv_heads + h / st->group];
        struct select_scratch *sc = &st->scratch[thread];
        float *P = st->reach_p + (size_t)thread * TILE * ld;
        for (int ta = t0, rows; ta < t1; ta += rows) {   /* tiles: blocks of positions, as attend_rows */
            const int i0 = pos0 + ta, next = (i0 / TILE + 1) * TILE;
            rows = (next < pos0 + t1 ? next : pos0 + t1) - i0;
            /* the output with the block kernel, every block */
            const int nb = (i0 + rows - 1) / KB + 1;
            int last[TILE];
            for (int b = 0; b < nb; b++) sc->blocks[b] = kv_store_block(kv, b);
            for (int r = 0; r < rows; r++) last[r] = i0 + r;
            attention_blocks(out + ((size_t)ta * H + h) * hd, (size_t)H * hd, q + ((size_t)ta * H + h) * hd,
                             (size_t)H * hd, rows, last, hd, sc->blocks, nb, kv->kt);
            if (i0 < st->reach->min_row) continue;
            /* the probabilities of the rows the reach measures */
            for (int r = (DAM_REACH_ROW_STEP - i0 % DAM_REACH_ROW_STEP) % DAM_REACH_ROW_STEP; r < rows;
                 r += DAM_REACH_ROW_STEP) {
                const int i = i0 + r;
                const float *qr = q + ((size_t)(ta + r) * H + h) * hd;
                float *p = P + (size_t)r * ld, mx = -INFINITY, sum = 0;
                for (int b = 0; b * KB <= i; b++) {
                    const float *kb = sc->blocks[b].k;      /* float32 (dam_state_start_reach) */
                    float acc[KB] = { 0 };
                    for (int d = 0; d < hd; d++)
                        for (int j = 0; j < KB; j++) acc[j] += qr[d] * kb[(size_t)d * KB + j];
                    for (int j = 0; j < KB && b * KB + j <= i; j++) {
                        p[b * KB + j] = acc[j] * scale;
                        mx = p[b * KB + j] > mx ? p[b * KB + j] : mx;
                    }
                }
                for (int j = 0; j <= i; j++) { p[j] = expf(p[j] - mx); sum += p[j]; }
                for (int j = 0; j <= i; j++) p[j] /= sum;
            }
            /* the selection's scores of the blocks before the tile, as select_blocks makes them */
            const int first = i0 / KB;
            float *qpm = sc->qpm;
            memset(qpm, 0, 2 * (size_t)hd * sizeof *qpm);
            for (int r = 0; r < rows; r++) {
                const float *qr = q + ((size_t)(ta + r) * H + h) * hd;
                #pragma omp simd
                for (int d = 0; d < hd; d++) { qpm[d] += qr[d] > 0 ? qr[d] : 0.0f; qpm[hd + d] += qr[d] < 0 ? qr[d] : 0.0f; }
            }
            block_bounds(sc->scores, qpm, hd, kv->sums, 0, first);
            dam_reach_add_tile(st->reach, layer, h, i0, rows, P, ld, sc->scores, sc->blocks, hd,
                               &st->reach_sc[thread]);
        }
    }
}

/* Rows t in [t0, t1) with full attention, their probabilities measured by
 * the reach capture: one task per head (a head's figures are summed by one
 * thread), tiles of TILE rows as the engine runs them. */
int dam_attend_reach(struct dam_state *st, int layer, int pos0, int t0, int t1,
                        const float *q, float *out) {
    const struct attn_setup *s = &st->setup;
    const int H = s->n_heads, hd = s->head_dim, threads = threads_count();
    const size_t ld = (size_t)s->max_seq_len;
    if (threads > st->reach_threads) {
        float *p = realloc(st->reach_p, (size_t)threads * TILE * ld * sizeof(float));
        if (!p) return dam_fail("out of memory for the reach capture");
        st->reach_p = p;
        struct dam_reach_scratch *rs = realloc(st->reach_sc, (size_t)threads * sizeof *rs);
        if (!rs) return dam_fail("out of memory for the reach capture");
        st->reach_sc = rs;
        for (int t = st->reach_threads; t < threads; t++) {
            if (dam_reach_scratch_init(&rs[t], (s->max_seq_len + KB - 1) / KB, hd)) return -1;
            st->reach_threads = t + 1;
        }
    }
    struct measure_job jb = { st, layer, pos0, t0, t1, q, out };
    parallel_for(H, 1, reach_part, &jb);
    const double n = t1 - t0;
    st->kept_pairs += H * (n * (pos0 + t0) + n * (n + 1) / 2);
    st->causal_pairs += H * (n * (pos0 + t0) + n * (n + 1) / 2);
    return 0;
}

