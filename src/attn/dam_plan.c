/* dam_plan.c — the block plan a profile head runs (struct head_plan in
 * dam.h), from its DAM patterns and the run parameters.
 *
 * What DAM's patterns become:
 *   - diagonal offsets R: the head's recent window, max(R) + 1 positions
 *     (a far diagonal band costs a block per tile anyway, so the window
 *     simply reaches it), at least --dam-recent;
 *   - columns C: the blocks holding them (those past the sinks);
 *   - the fallback: `full` runs dense; `window` widens the window to
 *     --dam-fallback-window and adds the sinks.
 * Which heads also select by query: all (default), the weak ones (heads
 * that fell back: their patterns cover little of what they attend to), or
 * none. */
#include "dam/dam.h"
#include "dam/common.h"
#include "dam/kernels.h"
#include <stdlib.h>
#include <string.h>

static int plan_columns(struct head_plan *plan, const struct dam_head *h);

int head_plan_from_profile(struct head_plan *plan, const struct dam_head *h, const struct dam_params *p,
                           const struct dam_run_params *r) {
    memset(plan, 0, sizeof *plan);
    if (h->fallback == DAM_FALLBACK_FULL) { plan->dense = 1; return 0; }
    int window = h->n_offsets > 0 ? h->offsets[h->n_offsets - 1] + 1 : 1;
    int sinks = r->sinks;
    if (h->fallback == DAM_FALLBACK_WINDOW) {
        if (p->fallback_window > window) window = p->fallback_window;
        if (p->fallback_sinks > sinks) sinks = p->fallback_sinks;
    }
    if (r->recent > window) window = r->recent;
    plan->window = window;
    plan->sink_blocks = (sinks + KV_BLOCK - 1) / KV_BLOCK;
    if (r->columns && plan_columns(plan, h)) return -1;
    const int selects = r->select_heads == DAM_SELECT_ALL ||
                        (r->select_heads == DAM_SELECT_WEAK && h->fallback != DAM_FALLBACK_NONE);
    if (selects && r->select > 0) plan->select = (r->select + KV_BLOCK - 1) / KV_BLOCK;
    return 0;
}

/* The profile's columns past the sinks, as blocks. */
static int plan_columns(struct head_plan *plan, const struct dam_head *h) {
    if (h->n_columns == 0) return 0;
    plan->cols = xmalloc((size_t)h->n_columns * sizeof *plan->cols, "plan columns");
    if (!plan->cols) return -1;
    for (int c = 0; c < h->n_columns; c++) {            /* columns ascend: blocks too */
        const int b = h->columns[c] / KV_BLOCK;
        if (b >= plan->sink_blocks && (plan->n_cols == 0 || plan->cols[plan->n_cols - 1] != b))
            plan->cols[plan->n_cols++] = b;
    }
    return 0;
}

int dam_profile_plans(const struct dam_profile *p, const struct dam_run_params *r, struct head_plan *plans) {
    const int n = p->n_layers * p->n_heads;
    memset(plans, 0, (size_t)n * sizeof *plans);
    if (!p->reach || r->budget <= 0) {
        for (int i = 0; i < n; i++)
            if (head_plan_from_profile(&plans[i], &p->heads[i], &p->params, r)) return -1;
        return 0;
    }
    int *window = xmalloc((size_t)n * sizeof *window, "plans"), *select = xmalloc((size_t)n * sizeof *select, "plans");
    int rc = window && select ? dam_reach_allocate(p->reach, r->budget, r->min_select, window, select) : -1;
    for (int i = 0; i < n && rc == 0; i++) {
        plans[i].window = window[i];
        plans[i].sink_blocks = (r->sinks + KV_BLOCK - 1) / KV_BLOCK;
        plans[i].select = select[i];
        if (r->columns) rc = plan_columns(&plans[i], &p->heads[i]);
    }
    free(window);
    free(select);
    return rc;
}
