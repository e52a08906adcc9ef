/* dam.c — the `dam` attention module: DAM's per-head patterns (captured
 * from the model's own attention, dam_capture.c) run as block plans by the
 * sparse engine (dam_engine.c), with query-aware block selection on top
 * (dam_select.c). This file decides where the patterns come from: a
 * profile file, the automatic profile, or the prompt itself. */
#include "dam/dam.h"
#include "dam/common.h"
#include "dam/kernels.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---------------------------------------------------------------------------
 * The dam module: where its plans come from */

int dam_run_params_from_options(const struct attn_options *o, struct dam_run_params *r) {
    memset(r, 0, sizeof *r);
    if (o->dam_sinks < 0) return dam_fail("dam: --dam-sinks must be >= 0 (got %d)", o->dam_sinks);
    if (o->dam_recent < 1) return dam_fail("dam: --dam-recent must be at least 1 (got %d)", o->dam_recent);
    if (o->dam_select < 0) return dam_fail("dam: --dam-select must be >= 0 (got %d)", o->dam_select);
    r->sinks = o->dam_sinks;
    r->recent = o->dam_recent;
    r->select = o->dam_select;
    r->columns = o->dam_columns != 0;
    if (o->dam_budget < 0) return dam_fail("dam: --dam-budget must be >= 0 (got %d)", o->dam_budget);
    if (o->dam_min_select < 0) return dam_fail("dam: --dam-min-select must be >= 0 (got %d)", o->dam_min_select);
    r->budget = o->dam_budget;
    r->min_select = (o->dam_min_select + KV_BLOCK - 1) / KV_BLOCK;
    if (o->dam_evict < 0) return dam_fail("dam: --dam-evict must be >= 0 (got %d)", o->dam_evict);
    r->evict = (o->dam_evict + KV_BLOCK - 1) / KV_BLOCK;
    if (!strcmp(o->dam_select_heads, "all")) r->select_heads = DAM_SELECT_ALL;
    else if (!strcmp(o->dam_select_heads, "weak")) r->select_heads = DAM_SELECT_WEAK;
    else if (!strcmp(o->dam_select_heads, "none")) r->select_heads = DAM_SELECT_NONE;
    else return dam_fail("dam: unknown --dam-select-heads '%s' (expected all, weak or none)", o->dam_select_heads);
    return 0;
}

static void *dam_create(const struct attn_setup *setup) {
    const struct attn_options *o = setup->opts;
    struct attn_options defaults;
    if (!o) { attn_options_default(&defaults); o = &defaults; }
    struct dam_params p;
    struct dam_run_params r;
    if (dam_params_from_options(o, &p) || dam_run_params_from_options(o, &r)) return NULL;
    struct dam_state *st = dam_state_new(setup);
    if (!st) return NULL;
    const char *capture = o->dam_capture;
    struct dam_profile *prof = NULL;
    if (!strcmp(capture, "calibrate")) {
        if (dam_state_start_capture(st, &p, &r, 0)) goto fail;
    } else if (!strcmp(capture, "reach")) {
        if (dam_state_start_reach(st, o->dam_reach_min_row)) goto fail;
    } else if (!strcmp(capture, "prompt")) {
        if (dam_state_start_capture(st, &p, &r, 1)) goto fail;
    } else if (!strcmp(capture, "profile") || !strcmp(capture, "auto")) {
        if (o->dam_profile[0]) {
            if (!(prof = dam_profile_load(o->dam_profile))) goto fail;
            snprintf(prof->source, sizeof prof->source, "%s", o->dam_profile);
        } else if (!strcmp(capture, "profile")) {
            dam_fail("--dam-capture profile needs a profile (--dam-profile FILE, made by dam calibrate)");
            goto fail;
        } else if (o->dam_prepared) {
            if (!(prof = dam_profile_clone(o->dam_prepared))) goto fail;
        } else {
            dam_fail("attention 'dam': no automatic profile was prepared for this session "
                     "(attn_prepare before session_new)");
            goto fail;
        }
        if (dam_state_adopt_profile(st, prof, &r)) goto fail;
    } else {
        dam_fail("dam: unknown capture source '%s' (expected profile, auto or prompt)", capture);
        goto fail;
    }
    return st;
fail:
    dam_state_free(st);
    return NULL;
}

/* The automatic profile, with the caller's model and tokenizer: from the
 * cache, or calibrated once (dam_auto.c). Only when no profile is named. */
static int dam_prepare(struct attn_options *o, const struct model *m, const struct tokenizer *tok) {
    if (o->dam_prepared || o->dam_profile[0] || strcmp(o->dam_capture, "auto")) return 0;
    o->dam_prepared = dam_auto_profile(m, tok, o, NULL, 0);
    return o->dam_prepared ? 0 : -1;
}

const struct attn_module attn_dam = {
    .name = "dam",
    .description = "Dynamic Attention Mask: per-head diagonal and column patterns captured from "
                   "full attention, sparse kernels, per-group KV eviction",
    .prepare = dam_prepare,
    .create = dam_create,
    .prefill = dam_state_prefill,
    .decode = dam_state_decode,
    .truncate = dam_state_truncate,
    .stats = dam_state_stats,
    .destroy = dam_state_free,
};
