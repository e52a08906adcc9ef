/* threads.c — the persistent pool of include/dam/threads.h.
 *
 * One job at a time. The caller publishes it (function, argument, thread
 * count, a task range per thread) and bumps `gen`; workers that see the new
 * generation enter the job, run their range, steal from the others, and
 * leave. The caller runs its own range too, then closes the job (no thread
 * may enter any more) and waits until every thread that entered has left.
 *
 * The two words threads wait on are futexes:
 *   gen     workers sleep on it between jobs; the caller wakes them only
 *           when some are asleep (`sleepers`), so a busy pool costs no
 *           system call per job;
 *   active  the number of workers inside the job, plus CLOSED once the
 *           caller has run out of work; the caller sleeps on it at the end
 *           of a job, and the last worker out wakes it if it sleeps.
 * A worker enters by incrementing `active` only while CLOSED is clear, so
 * one that wakes late (after the caller did all its tasks) finds the job
 * closed and goes back to waiting: it delays nobody. Every shared word is
 * a sequentially consistent atomic, which is what makes the "check, then
 * sleep" sequences above free of lost wake-ups (futex_wait sleeps only if
 * the word still holds the value the thread last saw).
 *
 * A task range is one 64-bit word per thread (front in the low half, end in
 * the high half, on its own cache line): the owner takes chunks from the
 * front, thieves from the back, each with one compare-and-swap.
 *
 * Cores other processes hold: every SAMPLE_MS the caller reads the CPU
 * time the whole machine used (/proc/stat) and its own (the process CPU
 * clock); the difference is what others took. Jobs then use at most the
 * cores left over (at least one): with one of two cores taken by another
 * process, two threads would share the remaining core and a half with it
 * and wait on each other at every job's end, while one thread keeps a
 * core to itself (measured, SmolLM2-135M decode with `yes` on one core,
 * 2 threads against 1: OpenMP 0.43x, this pool without the sampling
 * 0.8-0.9x, with it 1.03x; README, Busy machines). */
#include "dam/threads.h"
#include <limits.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#if defined(__linux__)
#include <linux/futex.h>
#include <sys/syscall.h>
#endif

#define CLOSED 0x80000000u

struct range {
    _Atomic uint64_t r;                   /* (end << 32) | front */
    char pad[64 - sizeof(uint64_t)];
};

static struct range ranges[THREADS_MAX] __attribute__((aligned(64)));

static struct {
    /* the job: written by the caller before it bumps gen */
    parallel_fn fn;
    void *arg;
    int n_threads, grain;
    _Atomic uint32_t gen __attribute__((aligned(64)));
    _Atomic uint32_t sleepers;
    _Atomic uint32_t active __attribute__((aligned(64)));
    _Atomic uint32_t caller_sleeps;
    _Atomic int busy;                      /* a job runs: other callers run serially */
    int count;                             /* threads_count(); 0 = not set yet */
    int started;                           /* workers started (indices 1 .. started) */
    long spin_ns;                          /* spin this long before sleeping */
} pool;

static pthread_mutex_t start_lock = PTHREAD_MUTEX_INITIALIZER;

#define SAMPLE_MS 200
/* the sampling state: only the thread that holds pool.busy touches it */
static struct {
    int off;                   /* $DAM_THREADS_ADAPT=0, or no /proc/stat */
    long t_ns;                 /* last sample: wall clock, */
    double busy_s, self_s;     /* machine busy time, our CPU time (seconds) */
    int usable;                /* threads jobs may use now */
} adapt;
static _Thread_local int in_job, job_thread;

/* ---- waiting ---- */

static long now_ns(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1000000000L + t.tv_nsec;
}

static inline void cpu_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ volatile("yield");
#endif
}

/* Sleeps while *word == val (returns at once if it differs already). */
static void futex_wait(_Atomic uint32_t *word, uint32_t val) {
#if defined(__linux__)
    syscall(SYS_futex, (uint32_t *)word, FUTEX_WAIT_PRIVATE, val, NULL, NULL, 0);
#else
    if (atomic_load(word) == val) sched_yield();
#endif
}

static void futex_wake(_Atomic uint32_t *word, int n) {
#if defined(__linux__)
    syscall(SYS_futex, (uint32_t *)word, FUTEX_WAKE_PRIVATE, n, NULL, NULL, 0);
#else
    (void)word; (void)n;
#endif
}

/* Spins up to pool.spin_ns while cond(arg) is false; returns its last value. */
static int spin_until(int (*cond)(uint32_t), _Atomic uint32_t *word) {
    if (cond(atomic_load_explicit(word, memory_order_acquire))) return 1;
    if (pool.spin_ns <= 0) return 0;
    const long deadline = now_ns() + pool.spin_ns;
    for (;;) {
        for (int i = 0; i < 32; i++) {
            cpu_relax();
            if (cond(atomic_load_explicit(word, memory_order_acquire))) return 1;
        }
        if (now_ns() > deadline) return 0;
    }
}

/* ---- the tasks ---- */

static int take_front(int t, int *b, int *e) {
    uint64_t r = atomic_load(&ranges[t].r);
    for (;;) {
        const uint32_t front = (uint32_t)r, end = (uint32_t)(r >> 32);
        if (front >= end) return 0;
        const uint32_t next = end - front > (uint32_t)pool.grain ? front + (uint32_t)pool.grain : end;
        if (atomic_compare_exchange_weak(&ranges[t].r, &r, ((uint64_t)end << 32) | next)) {
            *b = (int)front; *e = (int)next;
            return 1;
        }
    }
}

static int take_back(int t, int *b, int *e) {
    uint64_t r = atomic_load(&ranges[t].r);
    for (;;) {
        const uint32_t front = (uint32_t)r, end = (uint32_t)(r >> 32);
        if (front >= end) return 0;
        const uint32_t start = end - front > (uint32_t)pool.grain ? end - (uint32_t)pool.grain : front;
        if (atomic_compare_exchange_weak(&ranges[t].r, &r, ((uint64_t)start << 32) | front)) {
            *b = (int)start; *e = (int)end;
            return 1;
        }
    }
}

/* Thread t's share: its own range from the front, then the others' from the back. */
static void work(int t) {
    const int n = pool.n_threads;
    int b, e;
    in_job = 1;
    job_thread = t;
    while (take_front(t, &b, &e)) pool.fn(pool.arg, b, e, t);
    for (int k = 1; k < n; k++) {
        const int v = (t + k) % n;
        while (take_back(v, &b, &e)) pool.fn(pool.arg, b, e, t);
    }
    in_job = 0;
}

/* ---- workers ---- */

static _Thread_local uint32_t seen_gen;
static int gen_changed(uint32_t g) { return g != seen_gen; }

/* Enters the current job unless it is closed. */
static int enter(void) {
    uint32_t a = atomic_load(&pool.active);
    while (!(a & CLOSED))
        if (atomic_compare_exchange_weak(&pool.active, &a, a + 1)) return 1;
    return 0;
}

static void leave(void) {
    const uint32_t a = atomic_fetch_sub(&pool.active, 1) - 1;
    if (a == CLOSED && atomic_load(&pool.caller_sleeps)) futex_wake(&pool.active, 1);
}

static void *worker(void *arg) {
    const int t = (int)(intptr_t)arg;
    seen_gen = atomic_load(&pool.gen);
    for (;;) {
        if (!spin_until(gen_changed, &pool.gen)) {
            atomic_fetch_add(&pool.sleepers, 1);
            futex_wait(&pool.gen, seen_gen);
            atomic_fetch_sub(&pool.sleepers, 1);
            if (!gen_changed(atomic_load(&pool.gen))) continue;
        }
        seen_gen = atomic_load(&pool.gen);
        if (!enter()) continue;
        if (t < pool.n_threads) work(t);
        leave();
    }
    return NULL;
}

/* Starts workers 1 .. n-1 that are not running yet; returns how many threads
 * (caller included) can take part. */
static int start_workers(int n) {
    pthread_mutex_lock(&start_lock);
    while (pool.started < n - 1) {
        pthread_t th;
        pthread_attr_t attr;
        pthread_attr_init(&attr);
        pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
        int rc = pthread_create(&th, &attr, worker, (void *)(intptr_t)(pool.started + 1));
        pthread_attr_destroy(&attr);
        if (rc != 0) break;            /* no more threads: run with those we have */
        pool.started++;
    }
    pthread_mutex_unlock(&start_lock);
    return pool.started + 1 < n ? pool.started + 1 : n;
}

/* ---- cores left by other processes ---- */

/* Busy seconds of all CPUs since boot (user + nice + system + irq +
 * softirq + steal), or -1. */
static double machine_busy_s(void) {
#if defined(__linux__)
    FILE *f = fopen("/proc/stat", "r");
    if (!f) return -1;
    unsigned long long v[8] = {0};
    const int got = fscanf(f, "cpu %llu %llu %llu %llu %llu %llu %llu %llu", &v[0], &v[1], &v[2], &v[3],
                           &v[4], &v[5], &v[6], &v[7]);
    fclose(f);
    if (got < 8) return -1;
    const long hz = sysconf(_SC_CLK_TCK);
    return (double)(v[0] + v[1] + v[2] + v[5] + v[6] + v[7]) / (hz > 0 ? hz : 100);
#else
    return -1;
#endif
}

static double self_cpu_s(void) {
    struct timespec t;
    if (clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t) != 0) return -1;
    return t.tv_sec + t.tv_nsec * 1e-9;
}

/* Threads a job may use: every SAMPLE_MS, the online cores minus those
 * others kept busy over the interval (rounded: half a core or more counts
 * as taken; /proc/stat counts in ticks of 10 ms, so shorter intervals or
 * lower thresholds mistake its rounding for load), at least 1. */
static int usable_threads(int count) {
    if (adapt.off) return count;
    const long now = now_ns();
    if (adapt.t_ns && now - adapt.t_ns < SAMPLE_MS * 1000000L) return adapt.usable < count ? adapt.usable : count;
    const double busy = machine_busy_s(), self = self_cpu_s();
    if (busy < 0 || self < 0) { adapt.off = 1; return count; }
    if (adapt.t_ns) {
        const double wall = (now - adapt.t_ns) * 1e-9;
        double others = (busy - adapt.busy_s) - (self - adapt.self_s);
        others = others > 0 ? others / wall : 0;         /* cores */
        const int free = threads_online() - (int)(others + 0.5);
        adapt.usable = free < 1 ? 1 : free;
    } else {
        adapt.usable = count;
    }
    adapt.t_ns = now;
    adapt.busy_s = busy;
    adapt.self_s = self;
    return adapt.usable < count ? adapt.usable : count;
}

/* ---- the public side ---- */

int threads_online(void) {
#if defined(__linux__)
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof set, &set) == 0) {
        int n = CPU_COUNT(&set);
        long online = sysconf(_SC_NPROCESSORS_ONLN);
        if (online > 0 && n > online) n = (int)online;
        if (n > 0) return n;
    }
#endif
    long online = sysconf(_SC_NPROCESSORS_ONLN);
    return online > 0 ? (online < THREADS_MAX ? (int)online : THREADS_MAX) : 1;
}

static void init_once(void) {
    const char *s = getenv("DAM_SPIN_US");
    long us = THREADS_SPIN_US;
    if (s && *s) {
        char *end;
        long v = strtol(s, &end, 10);
        if (!*end && v >= 0 && v <= 1000000) us = v;
    }
    pool.spin_ns = us * 1000;
    s = getenv("DAM_THREADS_ADAPT");
    adapt.off = s && !strcmp(s, "0");
    if (!pool.count) pool.count = threads_online();
}

static pthread_once_t once = PTHREAD_ONCE_INIT;

int threads_count(void) {
    pthread_once(&once, init_once);
    return pool.count;
}

void threads_set_count(int n) {
    pthread_once(&once, init_once);
    pool.count = n < 1 ? 1 : n > THREADS_MAX ? THREADS_MAX : n;
}

static int job_done(uint32_t a) { return (a & ~CLOSED) == 0; }

void parallel_for(int n, int grain, parallel_fn fn, void *arg) {
    if (n <= 0) return;
    if (grain < 1) grain = 1;
    int threads = threads_count();
    const int chunks = (n + grain - 1) / grain;
    if (threads > chunks) threads = chunks;
    int expected = 0;
    if (threads <= 1 || in_job || !atomic_compare_exchange_strong(&pool.busy, &expected, 1)) {
        fn(arg, 0, n, in_job ? job_thread : 0);
        return;
    }
    if ((threads = usable_threads(threads)) <= 1) {
        in_job = 1;
        fn(arg, 0, n, 0);
        in_job = 0;
        atomic_store(&pool.busy, 0);
        return;
    }
    threads = start_workers(threads);
    pool.fn = fn;
    pool.arg = arg;
    pool.grain = grain;
    pool.n_threads = threads;
    for (int t = 0; t < threads; t++) {
        const uint64_t b = (uint64_t)n * t / threads, e = (uint64_t)n * (t + 1) / threads;
        atomic_store(&ranges[t].r, (e << 32) | b);
    }
    atomic_store(&pool.active, 0);                 /* open: workers may enter */
    atomic_fetch_add(&pool.gen, 1);
    if (atomic_load(&pool.sleepers)) futex_wake(&pool.gen, INT_MAX);

    work(0);

    /* close, then wait for the workers inside (their chunks are the last ones) */
    atomic_fetch_or(&pool.active, CLOSED);
    while (!spin_until(job_done, &pool.active)) {
        atomic_store(&pool.caller_sleeps, 1);
        const uint32_t a = atomic_load(&pool.active);
        if (job_done(a)) break;
        futex_wait(&pool.active, a);
    }
    atomic_store(&pool.caller_sleeps, 0);
    atomic_store(&pool.busy, 0);
}
