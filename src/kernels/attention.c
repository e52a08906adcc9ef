/* attention.c — exact causal attention over a blocked KV cache (layout in
 * kernels.h), flash-style: the ISA's attn_rows takes a set of query rows
 * through the keys tile by tile with an online softmax (running maximum m,
 * running sum l, unnormalised output o), so no score matrix is stored.
 *
 * Rows: the query heads that share a KV head (grouped-query attention) for
 * a few consecutive tokens are processed together, so every key and value
 * loaded from memory serves group * tokens rows.
 *
 * Threads:
 *   prefill (n > 1)  one task per (KV head, head slice, query tile), biggest
 *                    (latest) tiles first, taken dynamically;
 *   decode  (n = 1)  one token has too few rows to share out, so the keys
 *                    are split instead (split-K, "flash decoding"): each task
 *                    runs a key range and the partial (m, l, o) are merged. */
#include "isa.h"
#include "dam/common.h"
#include "dam/kernels.h"
#include "dam/threads.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define ROWS_TARGET 24          /* query rows per prefill task (<= ISA_ATTN_MAX_ROWS) */
#define DECODE_KEYS 512         /* keys per decode task (a multiple of every ISA's key tile) */
#define LOG2E 1.4426950408889634
/* Attention smaller than this (multiply-adds) runs on the calling thread. */
#define PARALLEL_MIN_WORK (1 << 17)

void kv_blocked_store(void *k_cache, void *v_cache, enum kv_type kt, int cap, int n_kv_heads, int head_dim,
                      int pos0, int n, const float *k, const float *v) {
    for (int g = 0; g < n_kv_heads; g++) {
        const size_t head = (size_t)g * cap * head_dim;
        for (int t = 0; t < n; t++) {
            const int p = pos0 + t;
            const float *kt_ = k + ((size_t)t * n_kv_heads + g) * head_dim;
            const float *vt = v + ((size_t)t * n_kv_heads + g) * head_dim;
            const size_t kb = head + (size_t)(p / KV_BLOCK) * head_dim * KV_BLOCK + p % KV_BLOCK;
            const size_t vb = head + (size_t)p * head_dim;
            if (kt == KV_F32) {
                float *kc = k_cache;
                for (int d = 0; d < head_dim; d++) kc[kb + (size_t)d * KV_BLOCK] = kt_[d];
                memcpy((float *)v_cache + vb, vt, (size_t)head_dim * sizeof(float));
                continue;
            }
            for (int d = 0; d < head_dim; d++) {
                kv_put(kt, k_cache, kb + (size_t)d * KV_BLOCK, kt_[d]);
                kv_put(kt, v_cache, vb + d, vt[d]);
            }
        }
    }
}

/* Copies query rows (tokens t0..t0+nt-1, heads h0..h0+nh-1) into q_rows
 * (nt * nh, hd) times scale * log2(e): the kernels then use 2^x for e^x. */
static void gather_rows(float *q_rows, int *last, const float *q, int t0, int nt, int h0, int nh,
                        int n_heads, int hd, int pos0, float qscale) {
    for (int t = 0; t < nt; t++)
        for (int h = 0; h < nh; h++) {
            const float *src = q + ((size_t)(t0 + t) * n_heads + h0 + h) * hd;
            float *dst = q_rows + ((size_t)t * nh + h) * hd;
            for (int d = 0; d < hd; d++) dst[d] = src[d] * qscale;
            last[t * nh + h] = pos0 + t0 + t;
        }
}

/* ---- prefill: tasks (KV head, head slice, query tile) ---- */

struct prefill_job {
    const struct isa *isa;
    float *out;
    const float *q;
    const char *k_cache, *v_cache;
    enum kv_type kt;
    int n, pos0, n_heads, n_kv_heads, hd, cap, group, nh, slices, nt, tiles;
    float qscale;
    float *scratch;             /* per thread: q_rows, o (ISA_ATTN_MAX_ROWS * hd each) */
};

static void prefill_tasks(void *arg, int begin, int end, int thread) {
    const struct prefill_job *j = arg;
    const int hd = j->hd;
    float *q_rows = j->scratch + (size_t)thread * 2 * ISA_ATTN_MAX_ROWS * hd;
    float *o = q_rows + (size_t)ISA_ATTN_MAX_ROWS * hd;
    int last[ISA_ATTN_MAX_ROWS];
    float m[ISA_ATTN_MAX_ROWS], l[ISA_ATTN_MAX_ROWS];
    for (int task = begin; task < end; task++) {
        const int per_tile = j->n_kv_heads * j->slices;
        const int tile = j->tiles - 1 - task / per_tile;        /* latest (largest) tiles first */
        const int g = task % per_tile / j->slices, slice = task % j->slices;
        const int t0 = tile * j->nt, tn = j->n - t0 < j->nt ? j->n - t0 : j->nt;
        const int h0 = g * j->group + slice * j->nh;
        const int hn = j->group - slice * j->nh < j->nh ? j->group - slice * j->nh : j->nh;
        const int rows = tn * hn;
        gather_rows(q_rows, last, j->q, t0, tn, h0, hn, j->n_heads, hd, j->pos0, j->qscale);
        for (int r = 0; r < rows; r++) { m[r] = -INFINITY; l[r] = 0; }
        memset(o, 0, (size_t)rows * hd * sizeof(float));
        const size_t head = (size_t)g * j->cap * hd * kv_type_size(j->kt);
        j->isa->attn_rows(j->kt, rows, hd, q_rows, last, j->k_cache + head, j->v_cache + head, 0,
                          j->pos0 + t0 + tn, m, l, o);
        for (int t = 0; t < tn; t++)
            for (int h = 0; h < hn; h++) {
                const int r = t * hn + h;
                float *dst = j->out + ((size_t)(t0 + t) * j->n_heads + h0 + h) * hd;
                const float inv = 1.0f / l[r];
                for (int d = 0; d < hd; d++) dst[d] = o[(size_t)r * hd + d] * inv;
            }
    }
}

static int prefill(const struct isa *isa, float *out, const float *q, int n, int pos0, int n_heads,
                   int n_kv_heads, int hd, const void *k_cache, const void *v_cache, enum kv_type kt, int cap,
                   float qscale) {
    struct prefill_job j = { .isa = isa, .out = out, .q = q, .k_cache = k_cache, .v_cache = v_cache, .kt = kt,
                             .n = n, .pos0 = pos0, .n_heads = n_heads, .n_kv_heads = n_kv_heads,
                             .hd = hd, .cap = cap, .qscale = qscale };
    j.group = n_heads / n_kv_heads;
    j.nh = j.group < ISA_ATTN_MAX_ROWS ? j.group : ISA_ATTN_MAX_ROWS;   /* heads per task */
    j.slices = (j.group + j.nh - 1) / j.nh;
    j.nt = ROWS_TARGET / j.nh;                                         /* tokens per task */
    if (j.nt < 1) j.nt = 1;
    j.tiles = (n + j.nt - 1) / j.nt;
    const int tasks = n_kv_heads * j.slices * j.tiles;
    const double work = (double)n * (pos0 + n) * n_heads * hd;
    const int threads = work >= PARALLEL_MIN_WORK ? threads_count() : 1;
    j.scratch = malloc((size_t)threads * 2 * ISA_ATTN_MAX_ROWS * hd * sizeof(float));
    if (!j.scratch) return dam_fail("out of memory in attention (head_dim %d)", hd);
    if (threads > 1) parallel_for(tasks, 1, prefill_tasks, &j);
    else prefill_tasks(&j, 0, tasks, 0);
    free(j.scratch);
    return 0;
}

/* ---- decode: tasks (KV head, key range) ---- */

struct decode_job {
    const struct isa *isa;
    const float *qs;
    const char *k_cache, *v_cache;
    enum kv_type kt;
    const int *last;
    int n_keys, n_heads, n_kv_heads, group, hd, cap;
    float *pm, *pl, *po;        /* partial state per (range, query head) */
};

static void decode_tasks(void *arg, int begin, int end, int thread) {
    const struct decode_job *j = arg;
    const int hd = j->hd, group = j->group;
    (void)thread;
    for (int task = begin; task < end; task++) {
        const int g = task % j->n_kv_heads, c = task / j->n_kv_heads;
        const int k0 = c * DECODE_KEYS, k1 = k0 + DECODE_KEYS < j->n_keys ? k0 + DECODE_KEYS : j->n_keys;
        float *m = j->pm + (size_t)c * j->n_heads + g * group, *l = j->pl + (size_t)c * j->n_heads + g * group;
        float *o = j->po + ((size_t)c * j->n_heads + g * group) * hd;
        for (int r = 0; r < group; r++) { m[r] = -INFINITY; l[r] = 0; }
        memset(o, 0, (size_t)group * hd * sizeof(float));
        /* a group larger than one call takes is run in slices */
        for (int h0 = 0; h0 < group; h0 += ISA_ATTN_MAX_ROWS) {
            const int hn = group - h0 < ISA_ATTN_MAX_ROWS ? group - h0 : ISA_ATTN_MAX_ROWS;
            const size_t head = (size_t)g * j->cap * hd * kv_type_size(j->kt);
            j->isa->attn_rows(j->kt, hn, hd, j->qs + (size_t)(g * group + h0) * hd, j->last + g * group + h0,
                              j->k_cache + head, j->v_cache + head, k0, k1, m + h0, l + h0, o + (size_t)h0 * hd);
        }
    }
}

/* One token: tasks (KV head, key range); partial results merged per head:
 * with M the largest partial maximum, out = sum o_c 2^(m_c - M) / sum l_c 2^(m_c - M). */
static int decode(const struct isa *isa, float *out, const float *q, int pos, int n_heads,
                  int n_kv_heads, int hd, const void *k_cache, const void *v_cache, enum kv_type kt, int cap,
                  float qscale) {
    const int group = n_heads / n_kv_heads, n_keys = pos + 1;
    const int ranges = (n_keys + DECODE_KEYS - 1) / DECODE_KEYS, tasks = n_kv_heads * ranges;
    float *pm = malloc((size_t)ranges * n_heads * sizeof(float));
    float *pl = malloc((size_t)ranges * n_heads * sizeof(float));
    float *po = malloc((size_t)ranges * n_heads * hd * sizeof(float));
    float *qs = malloc((size_t)n_heads * hd * sizeof(float));
    int *last = malloc((size_t)n_heads * sizeof(int));
    if (!pm || !pl || !po || !qs || !last) {
        free(pm); free(pl); free(po); free(qs); free(last);
        return dam_fail("out of memory in attention (%d keys)", n_keys);
    }
    gather_rows(qs, last, q, 0, 1, 0, n_heads, n_heads, hd, pos, qscale);
    struct decode_job j = { .isa = isa, .qs = qs, .k_cache = k_cache, .v_cache = v_cache, .kt = kt, .last = last,
                            .n_keys = n_keys, .n_heads = n_heads, .n_kv_heads = n_kv_heads,
                            .group = group, .hd = hd, .cap = cap, .pm = pm, .pl = pl, .po = po };
    if ((double)n_keys * n_heads * hd >= PARALLEL_MIN_WORK) parallel_for(tasks, 1, decode_tasks, &j);
    else decode_tasks(&j, 0, tasks, 0);
    for (int h = 0; h < n_heads; h++) {
        float mx = -INFINITY;
        for (int c = 0; c < ranges; c++) if (pm[(size_t)c * n_heads + h] > mx) mx = pm[(size_t)c * n_heads + h];
        float *dst = out + (size_t)h * hd, sum = 0;
        memset(dst, 0, (size_t)hd * sizeof(float));
        for (int c = 0; c < ranges; c++) {
            const float w = exp2f(pm[(size_t)c * n_heads + h] - mx);
            sum += w * pl[(size_t)c * n_heads + h];
            const float *o = po + ((size_t)c * n_heads + h) * hd;
            for (int d = 0; d < hd; d++) dst[d] += w * o[d];
        }
        const float inv = 1.0f / sum;
        for (int d = 0; d < hd; d++) dst[d] *= inv;
    }
    free(pm); free(pl); free(po); free(qs); free(last);
    return 0;
}

int attention_blocked(float *out, const float *q, int n, int pos0, int n_heads, int n_kv_heads,
                      int head_dim, const void *k_cache, const void *v_cache, enum kv_type kt, int cap) {
    const struct isa *isa = isa_current();
    if (!isa->attn_hd_ok(head_dim)) isa = &isa_portable;
    const float qscale = (float)(LOG2E / sqrt((double)head_dim));
    if (n == 1) return decode(isa, out, q, pos0, n_heads, n_kv_heads, head_dim, k_cache, v_cache, kt, cap, qscale);
    return prefill(isa, out, q, n, pos0, n_heads, n_kv_heads, head_dim, k_cache, v_cache, kt, cap, qscale);
}

/* ---- one row over a flat (position, kv_dim) cache ---- */

#define ROW_BLOCK 64

void attention_row_strided(const float *q, const float *k, const float *v, int n_keys,
                           int kv_stride, int head_dim, float scale, float *out) {
    const struct isa *isa = isa_current();
    float scores[ROW_BLOCK];
    float max = -INFINITY, sum = 0;
    memset(out, 0, (size_t)head_dim * sizeof(float));
    for (int j0 = 0; j0 < n_keys; j0 += ROW_BLOCK) {
        const int nb = n_keys - j0 < ROW_BLOCK ? n_keys - j0 : ROW_BLOCK;
        float bmax = -INFINITY;
        for (int j = 0; j < nb; j++) {
            scores[j] = isa->dot(q, k + (size_t)(j0 + j) * kv_stride, head_dim) * scale;
            if (scores[j] > bmax) bmax = scores[j];
        }
        if (bmax > max) {                    /* a new maximum: rescale what we have */
            const float r = expf(max - bmax);       /* 0 on the first block */
            sum *= r;
            isa->scale(out, r, head_dim);
            max = bmax;
        }
        sum += isa->exp_sum(scores, nb, max);
        for (int j = 0; j < nb; j++)
            isa->axpy(out, scores[j], v + (size_t)(j0 + j) * kv_stride, head_dim);
    }
    isa->scale(out, 1.0f / sum, head_dim);
}
