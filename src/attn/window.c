/* window.c — the static baseline DAM claims to beat: every head of every
 * layer attends to the first `sinks` positions (attention sinks) and to the
 * most recent `size` positions, its own included (StreamingLLM's mask).
 *
 * It is the sparse engine of dam.c with one predefined mask for all heads:
 * diagonal offsets 0 .. size-1 and columns 0 .. sinks-1. The KV cache keeps a
 * ring of the last `size` positions plus the sinks, so memory stays flat. */
#include "dam/dam.h"
#include "dam/common.h"
#include <stdlib.h>

static void *window_create(const struct attn_setup *setup) {
    struct attn_options defaults;
    const struct attn_options *o = setup->opts;
    if (!o) { attn_options_default(&defaults); o = &defaults; }
    if (o->window_size < 1) { dam_fail("window: --window-size must be at least 1 (got %d)", o->window_size); return NULL; }
    if (o->window_sinks < 0) { dam_fail("window: --window-sinks must be >= 0 (got %d)", o->window_sinks); return NULL; }
    struct dam_state *st = dam_state_new(setup);
    if (!st) return NULL;
    int *offsets = xmalloc((size_t)o->window_size * sizeof *offsets, "window offsets");
    int *columns = xmalloc(((size_t)o->window_sinks + 1) * sizeof *columns, "window sinks");
    struct dam_mask *masks = xcalloc((size_t)setup->n_heads, sizeof *masks, "window masks");
    int rc = -1;
    if (!offsets || !columns || !masks) goto done;
    for (int r = 0; r < o->window_size; r++) offsets[r] = r;
    for (int c = 0; c < o->window_sinks; c++) columns[c] = c;
    if (dam_mask_build(&masks[0], offsets, o->window_size, columns, o->window_sinks)) goto done;
    for (int h = 1; h < setup->n_heads; h++) masks[h] = masks[0];   /* shared runs, copied by set */
    rc = 0;
    for (int l = 0; l < setup->n_layers && rc == 0; l++) rc = dam_state_set_masks(st, l, masks);
    dam_mask_free(&masks[0]);
done:
    free(offsets); free(columns); free(masks);
    if (rc) { dam_state_free(st); return NULL; }
    return st;
}

const struct attn_module attn_window = {
    .name = "window",
    .description = "attention sinks plus a recent window (--window-sinks, --window-size), the same "
                   "static mask for every head",
    .create = window_create,
    .prefill = dam_state_prefill,
    .decode = dam_state_decode,
    .truncate = dam_state_truncate,
    .stats = dam_state_stats,
    .destroy = dam_state_free,
};
