/* bench.c — the measurements behind `dam bench`.
 *
 * Machine ceilings:
 *   read bandwidth  every thread streams its slice of a 256 MiB buffer (far
 *                   beyond the caches) with the kernel variant's widest loads,
 *                   folding it with XOR; best of 10 rounds;
 *   FMA peak        every thread runs independent FMAs on registers only, in
 *                   the kernel variant in use (kernels_fma_probe); best of 3.
 * Model rates: prompt processing (pp) and token generation (tg) at a context
 * depth, timed with the wall clock, the KV cache filled untimed first. */
#include "dam/bench.h"
#include "dam/common.h"
#include "dam/kernels.h"
#include <math.h>
#include "dam/threads.h"
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <stdio.h>
#include <sys/mman.h>
#include <time.h>

/* ---- machine ceilings ---- */

#define READ_BYTES ((size_t)256 << 20)
#define READ_ROUNDS 10

/* The buffer is 256 MiB, the size of a small model's weights and well past
 * the last-level cache (smaller buffers still read partly from cache on
 * this project's machines). MAP_POPULATE makes the kernel provide the pages
 * in one go: faulting them in one at a time costs more than the
 * measurement itself. */
/* One task per thread: thread-sized slices of the buffer, or one FMA probe. */
struct probe {
    uint64_t *buf;
    size_t bytes, passes;
    int slices;
    _Atomic uint64_t sink;
    long iters;
    double flops[THREADS_MAX];
};

static void write_slices(void *arg, int begin, int end, int thread) {
    struct probe *p = arg;
    (void)thread;
    const size_t words = p->bytes / sizeof(uint64_t);
    for (int s = begin; s < end; s++)
        for (size_t i = words * s / p->slices; i < words * (s + 1) / p->slices; i++)
            p->buf[i] = i * 0x9e3779b97f4a7c15ull;
}

static void read_slices(void *arg, int begin, int end, int thread) {
    struct probe *p = arg;
    (void)thread;
    const size_t granules = p->bytes / 256;          /* slices of whole 256-byte granules (the probe's step) */
    for (int s = begin; s < end; s++) {
        const size_t g0 = granules * s / p->slices, g1 = granules * (s + 1) / p->slices;
        uint64_t x = 0;
        for (size_t pass = 0; pass < p->passes; pass++)
            x ^= kernels_read_probe((const char *)p->buf + g0 * 256, (g1 - g0) * 256);
        atomic_fetch_xor(&p->sink, x);
    }
}

static void run_fma(void *arg, int begin, int end, int thread) {
    struct probe *p = arg;
    for (int s = begin; s < end; s++) p->flops[s] = kernels_fma_probe(p->iters);
    (void)thread;
}

static double read_bandwidth(void) { return bench_read_bandwidth(READ_BYTES); }

/* A buffer of `bytes` read over and over, as generation reads the weights
 * once per token: a buffer that fits the caches, or partly, reads faster
 * than memory, and so does a model of that size. Each timed round reads at
 * least READ_MIN bytes (passes over the buffer), so a small one is timed
 * well above the clock's resolution. */
#define READ_MIN ((size_t)64 << 20)

double bench_read_bandwidth(size_t bytes) {
    bytes = (bytes + 4095) / 4096 * 4096;
    if (bytes < 65536) bytes = 65536;
    struct probe *p = calloc(1, sizeof *p);
    if (!p) return 0;
    p->bytes = bytes;
    p->passes = bytes >= READ_MIN ? 1 : (READ_MIN + bytes - 1) / bytes;
    p->buf = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
    if (p->buf == MAP_FAILED) { free(p); return 0; }
    p->slices = threads_count();
    double best = 0;
    /* written (never-written pages could all share one zero page), one
     * slice per thread, as it is read below */
    parallel_for(p->slices, 1, write_slices, p);
    for (int round = 0; round < READ_ROUNDS; round++) {
        double t0 = now_ms();
        parallel_for(p->slices, 1, read_slices, p);
        double ms = now_ms() - t0;
        double gbs = ms > 0 ? (double)bytes * p->passes / (ms * 1e6) : 0;
        if (gbs > best) best = gbs;
    }
    munmap(p->buf, bytes);
    free(p);
    return best;
}

static double fma_peak(void) {
    struct probe *p = calloc(1, sizeof *p);
    if (!p) return 0;
    const int n = threads_count();
    p->iters = 1 << 16;
    double best = 0;
    for (int round = 0; round < 3; ) {
        double flops = 0, t0 = now_ms();
        parallel_for(n, 1, run_fma, p);
        double ms = now_ms() - t0;
        for (int t = 0; t < n; t++) flops += p->flops[t];
        if (ms < 40) { p->iters *= 2; continue; }   /* too short to time: longer, same round */
        if (flops / (ms * 1e6) > best) best = flops / (ms * 1e6);
        round++;
    }
    free(p);
    return best;
}

/* Idle share of all CPUs over ms milliseconds, from /proc/stat (Linux);
 * -1 when it cannot be read. */
static double idle_share(int ms) {
    unsigned long long a[10] = {0}, b[10] = {0};
    for (int k = 0; k < 2; k++) {
        unsigned long long *v = k ? b : a;
        FILE *f = fopen("/proc/stat", "r");
        if (!f) return -1;
        int got = fscanf(f, "cpu %llu %llu %llu %llu %llu %llu %llu %llu", &v[0], &v[1], &v[2], &v[3],
                         &v[4], &v[5], &v[6], &v[7]);
        fclose(f);
        if (got < 5) return -1;
        if (!k) {
            struct timespec t = { ms / 1000, (long)(ms % 1000) * 1000000 };
            nanosleep(&t, NULL);
        }
    }
    unsigned long long total = 0, idle = (b[3] - a[3]) + (b[4] - a[4]);   /* idle + iowait */
    for (int i = 0; i < 8; i++) total += b[i] - a[i];
    return total ? (double)idle / total : -1;
}

int bench_machine_measure(struct bench_machine *mc) {
    mc->idle = idle_share(200);
    mc->threads = threads_count();
    mc->cores = threads_online();
    if (getloadavg(&mc->load_avg, 1) != 1) mc->load_avg = -1;
    mc->isa = kernels_isa();
    mc->read_gbs = read_bandwidth();
    if (mc->read_gbs <= 0) return dam_fail("out of memory measuring the read bandwidth (256 MiB)");
    mc->fma_gflops = fma_peak();
    return 0;
}

/* ---- what a token costs ---- */

double bench_weight_bytes_per_token(const struct model *m) {
    double bytes = (double)m->weight_bytes;
    if (!m->cfg.tie_embeddings)       /* the embedding is only looked up: one row read */
        bytes -= (double)tensor_bytes(&m->embed) * (1.0 - 1.0 / m->cfg.vocab_size);
    return bytes;
}

/* 2 FLOPs per weight of the projections and the MLP */
static double matmul_flops_per_token(const struct model *m) {
    double params = 0;
    for (int l = 0; l < m->cfg.n_layers; l++) {
        const struct layer_weights *w = &m->layers[l];
        const struct tensor *t[] = { &w->wq, &w->wk, &w->wv, &w->wo, &w->w_gate, &w->w_up, &w->w_down };
        for (int i = 0; i < 7; i++) params += (double)t[i]->rows * t[i]->cols;
    }
    return 2 * params;
}

/* ---- running a test ---- */

static int next_token(uint64_t *state, int vocab) {
    uint64_t z = (*state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return (int)((z ^ (z >> 31)) % (uint64_t)vocab);
}

/* Brings the cache to exactly depth positions: rewinds, or evaluates
 * pseudo-random tokens (no logits) in pieces of 512. */
static int fill_to(struct session *s, int depth, uint64_t *rng) {
    if (s->pos > depth) session_rewind(s, depth);
    int toks[512];
    while (s->pos < depth) {
        int n = depth - s->pos < 512 ? depth - s->pos : 512;
        for (int i = 0; i < n; i++) toks[i] = next_token(rng, s->model->cfg.vocab_size);
        if (session_eval(s, toks, n, NULL, LOGITS_NONE) != 0) return -1;
    }
    return 0;
}

/* One run of the test at depth; returns its milliseconds, or -1. Stats of
 * the attention module are taken just around the timed part. */
static double run_once(struct session *s, enum bench_kind kind, const int *toks, int n, int depth,
                       uint64_t *rng, float *logits, struct attn_stats *before, struct attn_stats *after) {
    if (fill_to(s, depth, rng) != 0) return -1;
    s->attn->stats(s->attn_state, before);
    double t0 = now_ms();
    if (kind == BENCH_PP) {
        if (session_eval(s, toks, n, logits, LOGITS_LAST) != 0) return -1;
    } else {
        for (int i = 0; i < n; i++)
            if (session_eval(s, toks + i, 1, logits, LOGITS_LAST) != 0) return -1;
    }
    double ms = now_ms() - t0;
    s->attn->stats(s->attn_state, after);
    return ms;
}

/* As run_once; a module that cannot go back to an earlier position (one
 * that dropped keys the positions after it needed) fails the first try, and
 * the run is repeated from an empty cache, refilled to depth untimed. */
static double run_at_depth(struct session *s, enum bench_kind kind, const int *toks, int n, int depth,
                           uint64_t *rng, float *logits, struct attn_stats *before, struct attn_stats *after) {
    double ms = run_once(s, kind, toks, n, depth, rng, logits, before, after);
    if (ms < 0 && depth > 0) {
        session_rewind(s, 0);
        ms = run_once(s, kind, toks, n, depth, rng, logits, before, after);
    }
    return ms;
}

int bench_run(struct session *s, enum bench_kind kind, int n_tokens, int depth, int reps,
              struct bench_result *r) {
    const struct model *m = s->model;
    const struct model_config *c = &m->cfg;
    memset(r, 0, sizeof *r);
    r->kind = kind; r->n_tokens = n_tokens; r->depth = depth; r->reps = reps;
    if (n_tokens <= 0 || reps <= 0) return dam_fail("bench: nothing to time (%d tokens, %d repetitions)", n_tokens, reps);
    if (depth + n_tokens > s->n_ctx)
        return dam_fail("bench: depth %d + %d tokens do not fit in the context of %d", depth, n_tokens, s->n_ctx);
    uint64_t rng = 0x5eed0000ull + (uint64_t)depth;
    int *toks = xmalloc((size_t)n_tokens * sizeof(int), "bench tokens");
    float *logits = xmalloc((size_t)c->vocab_size * sizeof(float), "logits");
    double *rates = xmalloc((size_t)reps * sizeof(double), "bench rates");
    int rc = -1;
    if (!toks || !logits || !rates) goto done;
    for (int i = 0; i < n_tokens; i++) toks[i] = next_token(&rng, c->vocab_size);

    /* warm-up (untimed): a short run touches every weight page and wakes the threads */
    struct attn_stats before, after;
    if (run_at_depth(s, kind, toks, n_tokens < 16 ? n_tokens : 16, depth, &rng, logits, &before, &after) < 0)
        goto done;
    for (int rep = 0; rep < reps; rep++) {
        double ms = run_at_depth(s, kind, toks, n_tokens, depth, &rng, logits, &before, &after);
        if (ms < 0) goto done;
        rates[rep] = n_tokens / (ms > 1e-6 ? ms : 1e-6) * 1000;
    }
    double sum = 0, sq = 0;
    for (int i = 0; i < reps; i++) sum += rates[i];
    r->ts_mean = sum / reps;
    for (int i = 0; i < reps; i++) sq += (rates[i] - r->ts_mean) * (rates[i] - r->ts_mean);
    r->ts_std = reps > 1 ? sqrt(sq / (reps - 1)) : 0;

    const double kept = after.kept_pairs - before.kept_pairs, causal = after.causal_pairs - before.causal_pairs;
    r->sparsity = causal > 0 ? 1 - kept / causal : 0;
    r->kv_bytes = after.kv_bytes;
    r->kv_bytes_full = after.kv_bytes_full;
    const int group = c->n_heads / c->n_kv_heads;
    /* keys and values visited: a KV head's rows are read once for the query heads sharing it */
    const double kv_read = kept / n_tokens / group * 2.0 * c->head_dim * (double)kv_type_size(s->kv_type);
    r->bytes_per_token = bench_weight_bytes_per_token(m) + kv_read;
    r->flops_attn_per_token = 4.0 * c->head_dim * kept / n_tokens;
    r->flops_per_token = matmul_flops_per_token(m) + r->flops_attn_per_token +
                         2.0 * c->vocab_size * c->dim / (kind == BENCH_PP ? n_tokens : 1);
    r->achieved = kind == BENCH_TG ? r->bytes_per_token * r->ts_mean / 1e9
                                   : r->flops_per_token * r->ts_mean / 1e9;
    rc = 0;
done:
    free(toks); free(logits); free(rates);
    return rc;
}

/* ---- kernels alone ---- */

static void fill_random(float *x, size_t n, uint64_t seed) {
    for (size_t i = 0; i < n; i++) x[i] = (float)next_token(&seed, 2001) / 1000.0f - 1.0f;
}

double bench_kernel_matmul(const struct tensor *w, int n, int reps) {
    float *x = xmalloc((size_t)n * w->cols * sizeof(float), "bench input");
    float *out = xmalloc((size_t)n * w->rows * sizeof(float), "bench output");
    double best = 0;
    if (x && out) {
        fill_random(x, (size_t)n * w->cols, 1);
        if (matmul(out, x, w, n) != 0) reps = 0;      /* warm-up (out of memory: no figure) */
        for (int r = 0; r < reps; r++) {
            double t0 = now_ms();
            (void)matmul(out, x, w, n);
            double ms = now_ms() - t0;
            double gflops = 2.0 * n * w->rows * w->cols / (ms > 1e-6 ? ms : 1e-6) / 1e6;
            if (gflops > best) best = gflops;
        }
    }
    free(x); free(out);
    return best;
}

double bench_kernel_attention(int n_heads, int n_kv_heads, int head_dim, int depth, int chunk) {
    const int cap = (depth + KV_BLOCK - 1) / KV_BLOCK * KV_BLOCK;
    const size_t kv = (size_t)n_kv_heads * cap * head_dim;
    float *kc = xcalloc(kv, sizeof(float), "bench keys"), *vc = xcalloc(kv, sizeof(float), "bench values");
    float *q = xmalloc((size_t)chunk * n_heads * head_dim * sizeof(float), "bench queries");
    float *k = xmalloc((size_t)chunk * n_kv_heads * head_dim * sizeof(float), "bench keys");
    float *v = xmalloc((size_t)chunk * n_kv_heads * head_dim * sizeof(float), "bench values");
    float *out = xmalloc((size_t)chunk * n_heads * head_dim * sizeof(float), "bench output");
    double ms = 0, gflops = 0;
    if (kc && vc && q && k && v && out) {
        fill_random(q, (size_t)chunk * n_heads * head_dim, 2);
        fill_random(k, (size_t)chunk * n_kv_heads * head_dim, 3);
        fill_random(v, (size_t)chunk * n_kv_heads * head_dim, 4);
        for (int pos = 0; pos < depth; pos += chunk) {
            const int n = depth - pos < chunk ? depth - pos : chunk;
            kv_blocked_store(kc, vc, KV_F32, cap, n_kv_heads, head_dim, pos, n, k, v);
            double t0 = now_ms();                      /* the attention alone is timed */
            if (attention_blocked(out, q, n, pos, n_heads, n_kv_heads, head_dim, kc, vc, KV_F32, cap) != 0) {
                ms = 0;
                break;
            }
            ms += now_ms() - t0;
        }
        const double pairs = (double)n_heads * depth * (depth + 1.0) / 2;
        gflops = ms > 0 ? 4.0 * head_dim * pairs / ms / 1e6 : 0;
    }
    free(kc); free(vc); free(q); free(k); free(v); free(out);
    return gflops;
}
