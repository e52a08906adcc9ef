/* bench.h — speed measurements: this machine's ceilings (memory read
 * bandwidth, peak float32 FMA rate) and a model's prompt-processing (pp)
 * and token-generation (tg) rates at a given context depth, with what they
 * achieve against those ceilings. Used by `dam bench`. */
#ifndef DAM_BENCH_H
#define DAM_BENCH_H

#include <stddef.h>
#include "dam/session.h"

/* The machine's ceilings, measured with the threads the pool will use (threads.h). */
struct bench_machine {
    int threads;
    const char *isa;       /* kernel variant in use ("avx512", ...) */
    double read_gbs;       /* memory read bandwidth, 1e9 bytes/s (a buffer far larger than the caches) */
    double fma_gflops;     /* peak float32 FMA rate, 1e9 FLOP/s (2 per multiply-add) */
    double load_avg;       /* 1-minute load average when measured */
    double idle;           /* share of CPU time idle over 200 ms before measuring (other
                            * processes on the cores), 0..1; -1 when unknown */
    int cores;             /* online processors */
};

/* A few hundred milliseconds: streams a 256 MiB buffer several times, runs
 * independent register FMAs on every thread; best of several rounds. */
int bench_machine_measure(struct bench_machine *mc);

/* The read bandwidth (1e9 bytes/s) of a buffer of `bytes` read over and over,
 * as generation reads its weights once per token: the ceiling of a tg test
 * whose working set is that size (from the caches, in part, when it fits
 * them). bench_machine_measure's read_gbs is this at 256 MiB. */
double bench_read_bandwidth(size_t bytes);

enum bench_kind { BENCH_PP, BENCH_TG };

struct bench_result {
    enum bench_kind kind;
    int n_tokens;          /* -p (pp) or -n (tg) */
    int depth;             /* tokens in the KV cache before the timed part */
    int reps;
    double ts_mean, ts_std;/* tokens per second: mean and sample standard deviation over reps */
    double sparsity;       /* of the attention in the timed part: 1 - kept pairs / causal pairs */
    size_t kv_bytes;       /* KV cache held at the end of the timed part */
    size_t kv_bytes_full;  /* what full attention would hold */
    /* tg: bytes read per generated token = weights (lm_head included, the
     * unused part of an untied embedding not) + keys and values visited */
    double bytes_per_token;
    /* pp: FLOPs per prompt token of the matrix products: the projections
     * and MLP (2 per weight), lm_head for the one position whose logits are
     * wanted, and attention (4 * head_dim per visited query-key pair:
     * q.k and p*v). flops_attn_per_token is the attention part. */
    double flops_per_token, flops_attn_per_token;
    double achieved;       /* GB/s (tg) or GFLOP/s (pp) at the mean rate */
};

/* Runs one test on s: brings the KV cache to `depth` tokens (untimed,
 * reusing what a previous test at a smaller depth left), then reps times:
 * rewind to depth, time n_tokens of prompt processing (one session_eval,
 * logits of the last position) or of generation (n_tokens evaluations of
 * one token each). A module that cannot rewind to depth (it dropped keys)
 * starts over from an empty cache, refilled untimed. Token ids are
 * pseudo-random, the same on every run. The session needs depth + n_tokens
 * positions of context. */
int bench_run(struct session *s, enum bench_kind kind, int n_tokens, int depth, int reps,
              struct bench_result *r);

/* Kernel rates, outside the forward pass (dam bench --kernels):
 * bench_kernel_matmul: out (n, w->rows) = x (n, w->cols) · wᵀ with random
 *   inputs, best of reps; returns GFLOP/s (2 per multiply-add).
 * bench_kernel_attention: one layer's causal attention over positions
 *   0 .. depth-1 in chunks of `chunk` queries, exactly as prefill runs it,
 *   random q, k, v; returns GFLOP/s (4 * head_dim per query-key pair). */
double bench_kernel_matmul(const struct tensor *w, int n, int reps);
double bench_kernel_attention(int n_heads, int n_kv_heads, int head_dim, int depth, int chunk);

/* Bytes of weights read per generated token (see bytes_per_token). */
double bench_weight_bytes_per_token(const struct model *m);

#endif
