/* quantize.c — --quant: the model's matrices quantized once, at load.
 *
 * Read from the mapped checkpoint as they are (BF16, F16 or F32), written
 * into one new allocation; the tensor views are then pointed at it. The
 * file is never written, and nothing is cached: quantizing takes a fraction
 * of a second (the work is spread over the pool, one task per group of 16
 * rows).
 *
 * Which matrices: every projection and MLP matrix, the embedding, and
 * lm_head, in the format asked for. Doge's dt_proj (a few KB per layer)
 * and the norm vectors stay as they are. */
#include "dam/model.h"
#include "dam/common.h"
#include "dam/kernels.h"
#include "dam/threads.h"
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

/* One matrix to quantize: where its view is, and where its groups go. */
struct qjob {
    struct tensor *t;
    struct tensor src;         /* the view as loaded */
    enum quant_type q;
    struct qshape shape;
    int fd;                    /* the shard it is read from (pread), -1: through the mapping */
    off_t offset;              /* its first byte in that file */
    uint8_t *quants, *scales;
    uint16_t *supers;
    int first_group;           /* index of its first group among all tasks */
};

struct qctx {
    struct qjob *jobs;
    int n_jobs, max_cols;
    float *rows;               /* per thread: QGROUP rows of max_cols floats */
    char *raw;                 /* per thread: the same rows as stored (4 bytes a value at most) */
};

/* Tasks [begin, end): one group of 16 rows each, any matrix. */
static void quantize_groups(void *arg, int begin, int end, int thread) {
    const struct qctx *c = arg;
    float *buf = c->rows + (size_t)thread * QGROUP * c->max_cols;
    char *raw = c->raw + (size_t)thread * QGROUP * c->max_cols * sizeof(float);
    int j = 0;
    for (int task = begin; task < end; task++) {
        while (j + 1 < c->n_jobs && task >= c->jobs[j + 1].first_group) j++;
        const struct qjob *q = &c->jobs[j];
        const int g = task - q->first_group, r0 = g * QGROUP;
        const int r1 = r0 + QGROUP < q->src.rows ? r0 + QGROUP : q->src.rows;
        /* the rows as stored, read from the file: page-table entries for the
         * whole mapping would cost more than the copy */
        struct tensor src = q->src;
        const size_t row_bytes = (size_t)src.cols * dtype_size(src.dtype), want = (size_t)(r1 - r0) * row_bytes;
        if (q->fd >= 0 && pread(q->fd, raw, want, q->offset + (off_t)(r0 * row_bytes)) == (ssize_t)want) {
            src.data = raw;
            src.rows = r1 - r0;
            for (int r = 0; r < r1 - r0; r++) tensor_row_f32(&src, r, buf + (size_t)r * src.cols);
        } else {
            for (int r = r0; r < r1; r++) tensor_row_f32(&src, r, buf + (size_t)(r - r0) * src.cols);
        }
        quant_group(q->q, buf, (size_t)q->src.cols, r1 - r0, q->src.cols, g, q->quants, q->scales, q->supers);
    }
}

/* The matrices of m and the format each gets for `--quant q`:
 *   q8_0  everything q8_0;
 *   q4_0  the projections and the MLP q4_0; the embedding (and lm_head)
 *         q8_0, as llama.cpp keeps its output matrix at 6 or 8 bits: the
 *         logits come straight out of it (measured on the testbed's
 *         held-out prose: top-1 agreement 0.879 with it in q4_0, 0.910 in
 *         q8_0);
 *   q4_k  the MLP q4_k but down_proj of the layers llama.cpp's Q4_K_M gives
 *         more bits (the first and last eighth, every third between), the
 *         attention projections and the embedding q8_0, as Q4_K_M keeps
 *         attn_v and those ffn_down at 6 bits: the MLP holds 3/4 of a
 *         layer's weights, the rest is what errors are most sensitive to
 *         (testbed held-out prose, top-1 agreement with BF16: every matrix
 *         but the embedding in 4 bits 0.939; attention in q8_0 0.945; and
 *         those down_proj 0.954; every down_proj 0.957). */
static int more_bits(int l, int n_layers) {
    return l < n_layers / 8 || l >= 7 * n_layers / 8 || (l - n_layers / 8) % 3 == 2;
}

static int list_matrices(struct model *m, enum quant_type q, struct tensor **out, enum quant_type *fmt) {
    const enum quant_type wide = QUANT_Q8_0;
    const enum quant_type attn = q == QUANT_Q4_K ? QUANT_Q8_0 : q;
    int n = 0;
    fmt[n] = wide; out[n++] = &m->embed;
    for (int l = 0; l < m->cfg.n_layers; l++) {
        struct layer_weights *w = &m->layers[l];
        struct tensor *t[] = { &w->wq, &w->wk, &w->wv, &w->wo, &w->w_gate, &w->w_up, &w->w_down };
        for (int i = 0; i < 7; i++) {
            fmt[n] = i < 4 ? attn : q;
            if (q == QUANT_Q4_K && i == 6 && more_bits(l, m->cfg.n_layers)) fmt[n] = QUANT_Q8_0;
            out[n++] = t[i];
        }
    }
    if (!m->cfg.tie_embeddings) { fmt[n] = wide; out[n++] = &m->lm_head; }
    return n;
}

int model_quantize(struct model *m, enum quant_type q) {
    if (q == QUANT_NONE || m->quant != QUANT_NONE) return 0;
    const double t0 = now_ms();
    const int max_n = 2 + 7 * m->cfg.n_layers;
    struct tensor **mats = xmalloc((size_t)max_n * sizeof *mats, "quantization");
    enum quant_type *fmt = xmalloc((size_t)max_n * sizeof *fmt, "quantization");
    struct qjob *jobs = xcalloc((size_t)max_n, sizeof *jobs, "quantization");
    struct qctx c = { .jobs = jobs };
    if (!mats || !jobs || !fmt) { free(mats); free(jobs); free(fmt); return -1; }
    c.n_jobs = list_matrices(m, q, mats, fmt);
    size_t total = 0;
    int groups = 0;
    for (int i = 0; i < c.n_jobs; i++) {
        struct qjob *j = &jobs[i];
        j->t = mats[i];
        j->src = *mats[i];
        j->q = fmt[i];
        j->shape = quant_shape(j->q, j->src.rows, j->src.cols);
        j->first_group = groups;
        j->fd = -1;
        for (int f = 0; f < m->n_files; f++) {       /* which shard holds it */
            const char *map = m->files[f]->map, *data = j->src.data;
            if (data >= map && data < map + m->files[f]->size) { j->fd = m->files[f]->fd; j->offset = data - map; }
        }
        groups += j->shape.groups;
        total += (j->shape.quant_bytes + 63) / 64 * 64 + (j->shape.scale_bytes + 63) / 64 * 64 +
                 (j->shape.super_bytes + 63) / 64 * 64;
        if (j->src.cols > c.max_cols) c.max_cols = j->src.cols;
    }
    /* Page faults, not arithmetic, were most of the time: the source is
     * read with pread (above) instead of through the mapping, and the
     * destination asks for huge pages (fewer faults at load, fewer TLB
     * misses when the kernels stream it). */
    uint8_t *mem = mmap(NULL, total, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (mem == MAP_FAILED) mem = NULL;
#if defined(MADV_HUGEPAGE)
    if (mem) madvise(mem, total, MADV_HUGEPAGE);
#endif
    c.rows = xmalloc((size_t)threads_count() * QGROUP * c.max_cols * sizeof(float), "quantization");
    c.raw = xmalloc((size_t)threads_count() * QGROUP * c.max_cols * sizeof(float), "quantization");
    if (!mem || !c.rows || !c.raw) {
        if (!mem) dam_fail("out of memory: %.0f MiB for the %s weights", total / 1048576.0, quant_name(q));
        if (mem) munmap(mem, total);
        free(c.rows); free(c.raw); free(mats); free(jobs); free(fmt);
        return -1;
    }
    uint8_t *p = mem;
    for (int i = 0; i < c.n_jobs; i++) {
        struct qjob *j = &jobs[i];
        j->quants = p;
        p += (j->shape.quant_bytes + 63) / 64 * 64;
        j->scales = p;
        p += (j->shape.scale_bytes + 63) / 64 * 64;
        j->supers = j->shape.super_bytes ? (uint16_t *)p : NULL;
        p += (j->shape.super_bytes + 63) / 64 * 64;
    }
    parallel_for(groups, 1, quantize_groups, &c);
    size_t before = 0, after = 0;
    for (int i = 0; i < c.n_jobs; i++) {
        struct qjob *j = &jobs[i];
        before += tensor_bytes(&j->src);
        j->t->quant = j->q;
        j->t->data = j->quants;
        j->t->scales = j->scales;
        j->t->supers = j->supers;
        after += tensor_bytes(j->t);
    }
    if (m->cfg.tie_embeddings) m->lm_head = m->embed;
    m->weight_bytes = m->weight_bytes - before + after;
    m->quant = q;
    m->quant_mem = mem;
    m->quant_bytes = total;
    m->quant_ms = now_ms() - t0;
    free(c.rows); free(c.raw); free(mats); free(jobs); free(fmt);
    return 0;
}
