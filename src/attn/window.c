/* window.c — the static baseline DAM claims to beat: every head of every
 * layer attends to the first `sinks` positions (attention sinks) and to the
 * most recent `size` positions, its own included (StreamingLLM's mask).
 *
 * It is the sparse engine of dam_engine.c with one plan for all heads, so
 * it runs on the same block kernel as dam and its figures compare at equal
 * cost: keys go in blocks of 16, so the sinks are the first
 * ceil(sinks / 16) blocks and a row sees at least `size` recent positions
 * (up to 30 more: the window of a tile of 16 rows starts at the block
 * holding its first row's earliest position). The KV cache keeps only the
 * window and the sinks, so memory stays flat. */
#include "dam/dam.h"
#include "dam/common.h"
#include "dam/kernels.h"
#include <stddef.h>
#include <stdlib.h>

static void *window_create(const struct attn_setup *setup) {
    struct attn_options defaults;
    const struct attn_options *o = setup->opts;
    if (!o) { attn_options_default(&defaults); o = &defaults; }
    if (o->window.size < 1) { dam_fail("window: --window-size must be at least 1 (got %d)", o->window.size); return NULL; }
    if (o->window.sinks < 0) { dam_fail("window: --window-sinks must be >= 0 (got %d)", o->window.sinks); return NULL; }
    struct dam_state *st = dam_state_new(setup);
    if (!st) return NULL;
    struct head_plan *plans = xcalloc((size_t)setup->n_heads, sizeof *plans, "window plans");
    int rc = -1;
    if (plans) {
        for (int h = 0; h < setup->n_heads; h++) {
            plans[h].window = o->window.size;
            plans[h].sink_blocks = (o->window.sinks + KV_BLOCK - 1) / KV_BLOCK;
        }
        rc = 0;
        for (int l = 0; l < setup->n_layers && rc == 0; l++) rc = dam_state_set_plans(st, l, plans);
    }
    free(plans);
    if (rc) { dam_state_free(st); return NULL; }
    return st;
}

#define OPT(field) offsetof(struct attn_options, window.field)
static const struct attn_opt window_options[] = {
    { "sinks", ATTN_OPT_INT, OPT(sinks), 0, 0, 1 << 24, NULL, NULL, "4", "first positions always kept" },
    { "size", ATTN_OPT_INT, OPT(size), 0, 1, 1 << 24, NULL, NULL, "64", "recent positions kept" },
    { 0 },
};
#undef OPT

const struct attn_module attn_window = {
    .name = "window",
    .description = "attention sinks plus a recent window (--window-sinks, --window-size), the same "
                   "static mask for every head",
    .options = window_options,
    .kv_types = 1,
    .create = window_create,
    .prefill = dam_state_prefill,
    .decode = dam_state_decode,
    .truncate = dam_state_truncate,
    .save = dam_state_save,
    .load = dam_state_load,
    .stats = dam_state_stats,
    .destroy = dam_state_free,
};
