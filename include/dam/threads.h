/* threads.h — the worker threads every parallel kernel runs on.
 *
 * One persistent pool: the calling thread plus threads_count() - 1 workers,
 * started at the first parallel call and kept for the life of the process.
 * Why not OpenMP's fork-join: decoding one token runs about 150 parallel
 * regions, and libgomp's threads spin (milliseconds) at every barrier. On a
 * machine where another process holds a core, the spinning thread takes
 * the core the late thread needs, and 2-thread decoding fell to 0.35x of
 * 1-thread. Here:
 *   - work is handed out dynamically: each thread owns a contiguous range
 *     of the tasks (so on idle cores every thread streams its own slice of
 *     a weight matrix, as a static schedule would) and, when its range is
 *     empty, steals chunks from the back of the others' ranges; a thread
 *     the scheduler has parked therefore holds up no more than the chunk it
 *     is running, and one that has not started yet holds up nothing;
 *   - a thread waiting (for the next job, or for the last chunk at the end
 *     of one) spins for a few tens of microseconds, long enough to cover
 *     the serial code between two regions, then sleeps on a futex, giving
 *     the core back to whichever thread the scheduler has waiting.
 *
 * How a kernel uses it (src/kernels/matmul.c, attention.c; src/attn/full.c,
 * dma.c; the attention modules should do the same):
 *
 *     struct ctx { ...inputs, outputs, per-thread scratch... };
 *     static void part(void *arg, int begin, int end, int thread) {
 *         struct ctx *c = arg;
 *         for (int task = begin; task < end; task++) ...;
 *     }
 *     ...
 *     if (work is small) part(&c, 0, n_tasks, 0);   // a wake-up costs ~microseconds
 *     else parallel_for(n_tasks, grain, part, &c);
 *
 * - part() runs for consecutive task ranges [begin, end) of at most `grain`
 *   tasks, on any thread, in any order; it must not assume which thread
 *   runs which tasks (reductions: one slot per thread, summed afterwards).
 * - `thread` is 0 .. threads_count() - 1 and is unique among the calls that
 *   run at the same time: index per-thread scratch with it. Allocate that
 *   scratch per call (threads_count() entries), never keep it across calls:
 *   the count may change between calls.
 * - parallel_for returns when every task has run. It is not re-entrant:
 *   called from inside part(), or from a second thread while a job runs,
 *   it runs the tasks on the calling thread (with that thread's index, or 0).
 * - part() must not fail half-way: record errors in the context (one flag
 *   per thread, or an atomic) and report them after parallel_for returns.
 *
 * On a machine where other processes keep cores busy, jobs use only the
 * cores they leave (sampled every 200 ms from /proc/stat; threads.c says
 * why); $DAM_THREADS_ADAPT=0 turns that off. $DAM_SPIN_US sets how long a
 * waiting thread spins before it sleeps (microseconds, default
 * THREADS_SPIN_US); 0 sleeps at once. */
#ifndef DAM_THREADS_H
#define DAM_THREADS_H

#define THREADS_MAX 1024
#define THREADS_SPIN_US 50

/* Cores this process may run on: the CPUs of its affinity mask that are
 * online (sched_getaffinity), else the online CPU count; at least 1. */
int threads_online(void);
/* Threads parallel_for uses, the caller included (default threads_online()). */
int threads_count(void);
/* Sets it (1 .. THREADS_MAX; larger values are clamped). Not while a
 * parallel_for runs. */
void threads_set_count(int n);

typedef void (*parallel_fn)(void *arg, int begin, int end, int thread);
/* Runs fn over the tasks [0, n) in ranges of at most grain tasks (grain >= 1)
 * on up to threads_count() threads; returns when all have run. */
void parallel_for(int n, int grain, parallel_fn fn, void *arg);

#endif
