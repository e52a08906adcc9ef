/* dam_engine.c — the sparse attention engine of the dam and window modules
 * (what it computes: dam.h, "The sparse attention engine").
 *
 * A chunk of positions for one layer goes:
 *   1. append: every KV store of the layer takes the chunk's keys/values, so
 *      every key a row may read is in one place (a page);
 *   2. capture rows (calibration, --dam-capture prompt): rows < PCL run full
 *      attention with explicit probabilities, added to the capture
 *      (dam_measure.c, as the reach capture of calibration);
 *   3. sparse rows: tasks of (head, tile of TILE query rows); each task lists
 *      its key blocks (dam_select.c) and runs the block kernel over them;
 *   4. evict: stores that keep only what their plans read drop the blocks
 *      no later row will read (and, with --dam-evict, at the end of a prompt
 *      every store drops what the prompt's last rows read least:
 *      dam_evict.c).
 * Decoding is the same with a chunk of one. */
#include "dam/dam.h"
#include "dam/common.h"
#include "dam/kernels.h"
#include "dam/threads.h"
#include "dam_kv.h"
#include "dam_select.h"
#include "dam_state.h"
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

extern const struct attn_module attn_dam, attn_window;

struct dam_state *dam_state_of(const struct attn_module *m, void *state) {
    return (m == &attn_dam || m == &attn_window) ? state : NULL;
}

/* ---------------------------------------------------------------------------
 * Plans */

void head_plan_free(struct head_plan *p) {
    free(p->cols);
    memset(p, 0, sizeof *p);
}

int head_plan_copy(struct head_plan *dst, const struct head_plan *src) {
    *dst = *src;
    dst->cols = NULL;
    if (src->n_cols > 0) {
        dst->cols = xmalloc((size_t)src->n_cols * sizeof *dst->cols, "plan columns");
        if (!dst->cols) return -1;
        memcpy(dst->cols, src->cols, (size_t)src->n_cols * sizeof *dst->cols);
    }
    return 0;
}

/* ---------------------------------------------------------------------------
 * State */

int dam_grow_scratch(struct dam_state *st) {
    const int threads = threads_count();
    if (threads <= st->n_threads) return 0;
    struct select_scratch *s = realloc(st->scratch, (size_t)threads * sizeof *s);
    if (!s) return dam_fail("out of memory for attention scratch");
    st->scratch = s;
    const int max_blocks = (st->setup.max_seq_len + KB - 1) / KB;
    for (int t = st->n_threads; t < threads; t++) {
        if (select_scratch_init(&st->scratch[t], max_blocks, st->setup.head_dim)) {
            st->n_threads = t;
            return -1;
        }
        st->n_threads = t + 1;
    }
    return 0;
}

struct dam_state *dam_state_new(const struct attn_setup *setup) {
    if (setup->n_heads <= 0 || setup->n_kv_heads <= 0 || setup->n_heads % setup->n_kv_heads ||
        setup->head_dim <= 0 || setup->head_dim > 1024 || setup->n_layers <= 0 || setup->max_seq_len <= 0) {
        dam_fail("attention: bad geometry (%d heads, %d KV heads)", setup->n_heads, setup->n_kv_heads);
        return NULL;
    }
    struct dam_state *st = xcalloc(1, sizeof *st, "attention state");
    if (!st) return NULL;
    st->setup = *setup;
    if (setup->opts) st->opts = *setup->opts;
    else attn_options_default(&st->opts);
    st->setup.opts = &st->opts;
    st->setup.model_dir = NULL;                   /* not owned; not needed after create */
    st->group = setup->n_heads / setup->n_kv_heads;
    const size_t L = (size_t)setup->n_layers, LH = L * setup->n_heads, LG = L * setup->n_kv_heads;
    st->plans = xcalloc(LH, sizeof *st->plans, "attention plans");
    st->planned = xcalloc(L, sizeof *st->planned, "attention plans");
    st->kv = xcalloc(LG, sizeof *st->kv, "KV cache");
    st->keep_all = xcalloc(LG, sizeof *st->keep_all, "KV cache");
    st->n_pos = xcalloc(L, sizeof *st->n_pos, "KV cache");
    st->last_rows = xcalloc(L, sizeof *st->last_rows, "attention state");
    st->last_pos = xcalloc(L, sizeof *st->last_pos, "attention state");
    if (!st->plans || !st->planned || !st->kv || !st->keep_all || !st->n_pos || !st->last_rows || !st->last_pos) {
        dam_state_free(st);
        return NULL;
    }
    for (size_t i = 0; i < LH; i++) st->plans[i].dense = 1;
    for (size_t i = 0; i < LG; i++) {
        st->keep_all[i] = 1;
        if (kv_store_init(&st->kv[i], setup->head_dim, setup->max_seq_len, st->opts.kv_type, 0)) {
            dam_state_free(st);
            return NULL;
        }
    }
    if (dam_grow_scratch(st)) { dam_state_free(st); return NULL; }
    return st;
}

void dam_state_free(void *state) {
    struct dam_state *st = state;
    if (!st) return;
    const size_t LH = (size_t)st->setup.n_layers * st->setup.n_heads;
    const size_t LG = (size_t)st->setup.n_layers * st->setup.n_kv_heads;
    for (size_t i = 0; st->plans && i < LH; i++) head_plan_free(&st->plans[i]);
    for (size_t i = 0; st->kv && i < LG; i++) kv_store_free(&st->kv[i]);
    for (int t = 0; t < st->n_threads; t++) select_scratch_free(&st->scratch[t]);
    free(st->scratch);
    free(st->plans); free(st->planned); free(st->kv); free(st->keep_all); free(st->n_pos);
    free(st->last_q); free(st->last_rows); free(st->last_pos);
    dam_capture_free(st->cap);
    dam_profile_free(st->profile);
    dam_reach_free(st->reach);
    free(st->reach_p);
    for (int t = 0; t < st->reach_threads; t++) dam_reach_scratch_free(&st->reach_sc[t]);
    free(st->reach_sc);
    free(st);
}

/* ---------------------------------------------------------------------------
 * What a store keeps */

/* The largest window of the group's heads, or -1 when some head needs every
 * block (dense or selecting). */
static int group_window(const struct dam_state *st, int layer, int gi) {
    int w = 0;
    for (int h = gi * st->group; h < (gi + 1) * st->group; h++) {
        const struct head_plan *p = &st->plans[(size_t)layer * st->setup.n_heads + h];
        if (p->dense || p->select > 0) return -1;
        if (p->window > w) w = p->window;
    }
    return w;
}

/* 1 when block b is a sink or column block of a head of the group. */
int dam_group_pins(const struct dam_state *st, int layer, int gi, int b) {
    for (int h = gi * st->group; h < (gi + 1) * st->group; h++) {
        const struct head_plan *p = &st->plans[(size_t)layer * st->setup.n_heads + h];
        if (b < p->sink_blocks) return 1;
        for (int c = 0; c < p->n_cols; c++) if (p->cols[c] == b) return 1;
    }
    return 0;
}

/* Drops the blocks of a windowed group that no row >= next will read:
 * those before its widest window from next's block, unless pinned. */
static void evict_group(struct dam_state *st, int layer, int gi, int next) {
    const size_t i = (size_t)layer * st->setup.n_kv_heads + gi;
    if (st->keep_all[i]) return;
    const int first = next / KB - dam_window_blocks(group_window(st, layer, gi));
    struct kv_store *s = &st->kv[i];
    for (int b = 0; b < first; b++)
        if (s->page[b] >= 0 && !dam_group_pins(st, layer, gi, b)) kv_store_drop(s, b);
}

/* Decides, after a layer's plans changed, what each of its stores keeps:
 * every block (summaries too when a head selects), or only what the plans
 * read from row `next` on. */
static int fit_layer(struct dam_state *st, int layer, int next) {
    for (int gi = 0; gi < st->setup.n_kv_heads; gi++) {
        const size_t i = (size_t)layer * st->setup.n_kv_heads + gi;
        int selects = 0;
        for (int h = gi * st->group; h < (gi + 1) * st->group; h++)
            selects |= !st->plans[(size_t)layer * st->setup.n_heads + h].dense &&
                       st->plans[(size_t)layer * st->setup.n_heads + h].select > 0;
        struct kv_store *s = &st->kv[i];
        if (selects && !s->summaries) {
            /* summaries of the blocks already held */
            s->summaries = 1;
            const int n = s->n_pos;
            float *kt = xmalloc(2 * (size_t)s->hd * sizeof(float), "KV row");
            if (!kt) return -1;
            struct kv_store fresh;
            if (kv_store_init(&fresh, s->hd, st->setup.max_seq_len, s->kt, 1)) { free(kt); return -1; }
            int rc = 0;
            for (int p = 0; p < n && !rc; p++) {
                if (s->page[p / KB] < 0) { rc = dam_fail("dam: internal error: selection over dropped keys"); break; }
                kv_store_read(s, p, kt, kt + s->hd);
                rc = kv_store_append(&fresh, p, 1, kt, kt + s->hd, 0);
            }
            free(kt);
            if (rc) { kv_store_free(&fresh); return -1; }
            kv_store_free(s);
            *s = fresh;
        }
        st->keep_all[i] = group_window(st, layer, gi) < 0;
        evict_group(st, layer, gi, next);
    }
    return 0;
}

int dam_state_set_plans(struct dam_state *st, int layer, const struct head_plan *plans) {
    const int H = st->setup.n_heads;
    if (layer < 0 || layer >= st->setup.n_layers) return dam_fail("dam: no layer %d", layer);
    for (int h = 0; h < H; h++) {
        struct head_plan copy;
        if (head_plan_copy(&copy, &plans[h])) return -1;
        if (!copy.dense && copy.window < 1) copy.window = 1;
        head_plan_free(&st->plans[(size_t)layer * H + h]);
        st->plans[(size_t)layer * H + h] = copy;
    }
    st->planned[layer] = 1;
    return fit_layer(st, layer, st->n_pos[layer]);
}

int dam_state_use_profile(struct dam_state *st, const struct dam_profile *p, const struct dam_run_params *r) {
    const struct attn_setup *s = &st->setup;
    if (dam_profile_check_geometry(p, s->n_layers, s->n_heads, s->n_kv_heads, s->head_dim,
                                   p->source[0] ? p->source : "(in memory)"))
        return -1;
    st->run = *r;
    const size_t n = (size_t)s->n_layers * s->n_heads;
    struct head_plan *plans = xcalloc(n, sizeof *plans, "plans");
    if (!plans) return -1;
    int rc = dam_profile_plans(p, r, plans);
    for (int l = 0; l < s->n_layers && rc == 0; l++) rc = dam_state_set_plans(st, l, plans + (size_t)l * s->n_heads);
    for (size_t i = 0; i < n; i++) head_plan_free(&plans[i]);
    free(plans);
    return rc;
}

int dam_state_adopt_profile(struct dam_state *st, struct dam_profile *p, const struct dam_run_params *r) {
    dam_profile_free(st->profile);
    st->profile = p;
    st->params = p->params;
    return dam_state_use_profile(st, p, r);
}

int dam_state_start_capture(struct dam_state *st, const struct dam_params *p,
                            const struct dam_run_params *r, int prompt) {
    const struct attn_setup *s = &st->setup;
    dam_capture_free(st->cap);
    dam_profile_free(st->profile);
    st->profile = NULL;
    st->params = *p;
    if (r) st->run = *r;
    st->capture_prompt = prompt;
    st->cap = dam_capture_new(s->n_layers, s->n_heads, p->pcl);
    if (!st->cap) return -1;
    if (prompt) {
        st->profile = dam_profile_new(s->n_layers, s->n_heads, s->n_kv_heads, s->head_dim, p);
        if (!st->profile) return -1;
        snprintf(st->profile->source, sizeof st->profile->source, "prompt");
    }
    return 0;
}

struct dam_capture *dam_state_capture(struct dam_state *st) { return st->cap; }
const struct dam_profile *dam_state_profile(const struct dam_state *st) { return st->profile; }

int dam_state_start_reach(struct dam_state *st, int min_row) {
    const struct attn_setup *s = &st->setup;
    for (int i = 0; i < s->n_layers * s->n_kv_heads; i++) {
        if (st->kv[i].n_pos > 0) return dam_fail("dam: reach capture must start before the first position");
        /* calibration measures the model with float32 keys and values (dam_calibrate.c) */
        if (st->kv[i].kt != KV_F32) return dam_fail("dam: internal error: the reach capture reads float32 keys");
        st->kv[i].summaries = 1;
    }
    dam_reach_free(st->reach);
    st->reach = dam_reach_new(s->n_layers, s->n_heads, min_row);
    return st->reach ? 0 : -1;
}

struct dam_reach *dam_state_reach(struct dam_state *st) { return st->reach; }

/* ---------------------------------------------------------------------------
 * Sparse rows */

static const struct head_plan dense_plan = { .dense = 1 };

/* Rows t in [t0, t1) of a chunk at pos0: tasks of (head, tile). Tiles are
 * the blocks of TILE positions the rows fall in, counted from position 0
 * (the first and last may be partial), so a row's keys never depend on how
 * the prompt was cut into chunks: only rows of the same block share a
 * selection. Tasks run on the thread pool (threads.h), the longest rows
 * first; each thread sums its figures in its scratch. */
struct rows_job {
    struct dam_state *st;
    int layer, pos0, t0, t1, first, tiles;
    const float *q;
    float *out;
};

static void rows_part(void *arg, int begin, int end, int thread) {
    const struct rows_job *j = arg;
    struct dam_state *st = j->st;
    const struct attn_setup *s = &st->setup;
    const int H = s->n_heads, hd = s->head_dim;
    struct select_scratch *sc = &st->scratch[thread];
    for (int task = begin; task < end; task++) {
        const int tile = j->first + j->tiles - 1 - task / H, h = task % H;
        const int i0 = tile * TILE > j->pos0 + j->t0 ? tile * TILE : j->pos0 + j->t0;
        const int i1 = (tile + 1) * TILE < j->pos0 + j->t1 ? (tile + 1) * TILE : j->pos0 + j->t1;
        const int ta = i0 - j->pos0, rows = i1 - i0;
        const struct head_plan *plan = st->planned[j->layer] ? &st->plans[(size_t)j->layer * H + h] : &dense_plan;
        const struct kv_store *kv = &st->kv[(size_t)j->layer * s->n_kv_heads + h / st->group];
        const float *qt = j->q + ((size_t)ta * H + h) * hd;
        struct select_figures fig = { 0 };
        const int nb = select_blocks(sc, plan, kv, qt, (size_t)H * hd, rows, i0, &fig);
        if (nb < 0) { sc->failed = 1; continue; }
        int last[TILE];
        for (int r = 0; r < rows; r++) {
            last[r] = i0 + r;
            sc->causal += last[r] + 1;
        }
        attention_blocks(j->out + ((size_t)ta * H + h) * hd, (size_t)H * hd, qt, (size_t)H * hd, rows,
                         last, hd, sc->blocks, nb, kv->kt);
        sc->kept += fig.kept;
        sc->selected += fig.selected;
        sc->candidates += fig.candidates;
    }
}

static int attend_rows(struct dam_state *st, int layer, int pos0, int t0, int t1,
                       const float *q, float *out) {
    const struct attn_setup *s = &st->setup;
    const int H = s->n_heads, hd = s->head_dim;
    struct rows_job j = { st, layer, pos0, t0, t1, (pos0 + t0) / TILE, 0, q, out };
    j.tiles = (pos0 + t1 - 1) / TILE - j.first + 1;
    for (int t = 0; t < st->n_threads; t++) {
        struct select_scratch *sc = &st->scratch[t];
        sc->kept = sc->causal = sc->selected = sc->candidates = 0;
        sc->failed = 0;
    }
    /* small work runs on the calling thread: waking the pool costs more */
    const double work = (double)(t1 - t0) * H * (pos0 + t1) * hd;
    if (work < (1 << 17)) rows_part(&j, 0, j.tiles * H, 0);
    else parallel_for(j.tiles * H, 1, rows_part, &j);
    int failed = 0;
    for (int t = 0; t < st->n_threads; t++) {
        const struct select_scratch *sc = &st->scratch[t];
        st->kept_pairs += sc->kept;
        st->causal_pairs += sc->causal;
        st->selected_keys += sc->selected;
        st->candidate_keys += sc->candidates;
        failed |= sc->failed;
    }
    if (failed) return dam_fail("dam: internal error: a plan asked for a key the KV cache did not keep");
    return 0;
}

/* ---------------------------------------------------------------------------
 * Module entry points */

int dam_state_prefill(void *state, int layer, int pos0, int n,
                      const float *q, const float *k, const float *v, float *out) {
    struct dam_state *st = state;
    const struct attn_setup *s = &st->setup;
    const int hd = s->head_dim, kv_dim = s->n_kv_heads * hd;
    if (st->broken)
        return dam_fail("dam: a rewind needed KV positions this module had already dropped "
                        "(windowed heads keep only recent positions); rewind to 0 instead");
    if (layer < 0 || layer >= s->n_layers || n < 1 || pos0 < 0)
        return dam_fail("attention: bad call (layer %d, position %d, %d tokens)", layer, pos0, n);
    if (pos0 + n > s->max_seq_len) return dam_fail("context full (%d positions)", s->max_seq_len);
    if (pos0 != st->n_pos[layer])
        return dam_fail("attention: layer %d holds %d positions, asked to continue at %d", layer,
                        st->n_pos[layer], pos0);
    if (dam_grow_scratch(st)) return -1;
    if (st->run.evict > 0 && n == 1 && st->last_rows[layer] > 0 && dam_evict_layer(st, layer)) return -1;
    for (int gi = 0; gi < s->n_kv_heads; gi++)
        if (kv_store_append(&st->kv[(size_t)layer * s->n_kv_heads + gi], pos0, n,
                            k + (size_t)gi * hd, v + (size_t)gi * hd, kv_dim))
            return -1;
    /* rows inside PCL capture while the layer has no plans of its own */
    int t_split = 0, finalize = 0;
    if (st->cap && !st->planned[layer] && pos0 < st->cap->pcl) {
        t_split = (pos0 + n < st->cap->pcl ? pos0 + n : st->cap->pcl) - pos0;
        finalize = st->capture_prompt && pos0 + t_split == st->cap->pcl;
    }
    if (t_split > 0) dam_attend_capture(st, layer, pos0, 0, t_split, q, out);
    if (finalize) {
        /* the prompt's first PCL rows are done for this layer: its plans now */
        if (dam_profile_capture_layer(st->profile, st->cap, layer)) return -1;
        const int H = s->n_heads;
        for (int h = 0; h < H; h++) head_plan_free(&st->plans[(size_t)layer * H + h]);
        struct head_plan *plans = xcalloc((size_t)H, sizeof *plans, "plans");
        if (!plans) return -1;
        int rc = 0;
        for (int h = 0; h < H && !rc; h++)
            rc = head_plan_from_profile(&plans[h], &st->profile->heads[(size_t)layer * H + h],
                                        &st->params, &st->run);
        st->n_pos[layer] = pos0 + t_split;         /* what the rest of the chunk starts from */
        if (!rc) rc = dam_state_set_plans(st, layer, plans);
        for (int h = 0; h < H; h++) head_plan_free(&plans[h]);
        free(plans);
        if (rc) return -1;
    }
    if (st->reach && t_split < n) {
        /* rows from min_row on are measured (the first tile that reaches it) */
        int t_reach = st->reach->min_row - pos0;
        t_reach = t_reach < t_split ? t_split : t_reach > n ? n : t_reach;
        if (t_reach > t_split && attend_rows(st, layer, pos0, t_split, t_reach, q, out)) return -1;
        if (t_reach < n && dam_attend_reach(st, layer, pos0, t_reach, n, q, out)) return -1;
    } else if (t_split < n && attend_rows(st, layer, pos0, t_split, n, q, out)) {
        return -1;
    }
    st->n_pos[layer] = pos0 + n;
    for (int gi = 0; gi < s->n_kv_heads; gi++) evict_group(st, layer, gi, pos0 + n);
    if (st->run.evict > 0 && n > 1 && dam_keep_last_rows(st, layer, pos0, n, q)) return -1;
    return 0;
}

int dam_state_decode(void *state, int layer, int pos,
                     const float *q, const float *k, const float *v, float *out) {
    return dam_state_prefill(state, layer, pos, 1, q, k, v, out);
}

/* Back to the state right after create for a prompt capture: no plans,
 * every position kept, nothing captured. */
static void reset_prompt_capture(struct dam_state *st) {
    const struct attn_setup *s = &st->setup;
    for (int l = 0; l < s->n_layers; l++) {
        st->planned[l] = 0;
        for (int h = 0; h < s->n_heads; h++) {
            head_plan_free(&st->plans[(size_t)l * s->n_heads + h]);
            st->plans[(size_t)l * s->n_heads + h].dense = 1;
        }
        for (int gi = 0; gi < s->n_kv_heads; gi++) st->keep_all[(size_t)l * s->n_kv_heads + gi] = 1;
    }
    dam_capture_forget(st->cap, 0);
}

void dam_state_truncate(void *state, int pos) {
    struct dam_state *st = state;
    const struct attn_setup *s = &st->setup;
    if (pos < 0) pos = 0;
    if (pos == 0) st->broken = 0;
    if (st->cap && st->capture_prompt && pos < st->cap->pcl) {
        int dropped = 0;
        for (int i = 0; i < s->n_layers * s->n_kv_heads; i++) dropped |= !st->keep_all[i];
        if (pos == 0) {
            reset_prompt_capture(st);
        } else if (dropped) {
            st->broken = 1;              /* the rows to capture again need positions stores dropped */
        } else {
            /* plans derived from rows being forgotten: capture those rows again */
            for (int l = 0; l < s->n_layers; l++) {
                st->planned[l] = 0;
                for (int h = 0; h < s->n_heads; h++) {
                    head_plan_free(&st->plans[(size_t)l * s->n_heads + h]);
                    st->plans[(size_t)l * s->n_heads + h].dense = 1;
                }
            }
            dam_capture_forget(st->cap, pos);
        }
    }
    for (int l = 0; l < s->n_layers; l++) {
        if (pos < st->last_pos[l] + st->last_rows[l]) st->last_rows[l] = 0;
        if (pos >= st->n_pos[l]) continue;
        for (int gi = 0; gi < s->n_kv_heads; gi++)
            if (kv_store_truncate(&st->kv[(size_t)l * s->n_kv_heads + gi], pos) && pos > 0) st->broken = 1;
        st->n_pos[l] = pos;
    }
}

void dam_state_stats(void *state, struct attn_stats *out) {
    struct dam_state *st = state;
    const struct attn_setup *s = &st->setup;
    memset(out, 0, sizeof *out);
    out->kept_pairs = st->kept_pairs;
    out->causal_pairs = st->causal_pairs;
    out->sparsity = st->causal_pairs > 0 ? 1.0 - st->kept_pairs / st->causal_pairs : 0;
    out->selected_share = st->candidate_keys > 0 ? st->selected_keys / st->candidate_keys : 0;
    const size_t per_pos = 2 * (size_t)s->head_dim * kv_type_size(st->opts.kv_type);
    for (int l = 0; l < s->n_layers; l++)
        for (int gi = 0; gi < s->n_kv_heads; gi++) {
            out->kv_bytes += (size_t)kv_store_positions(&st->kv[(size_t)l * s->n_kv_heads + gi]) * per_pos;
            out->kv_bytes_full += (size_t)st->n_pos[l] * per_pos;
        }
    for (int i = 0; i < s->n_layers * s->n_heads; i++) {
        const struct head_plan *p = &st->plans[i];
        const int dense = !st->planned[i / s->n_heads] || p->dense;
        out->dense_heads += dense;
        out->selecting_heads += !dense && p->select > 0;
    }
}
