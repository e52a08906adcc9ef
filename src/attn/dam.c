/* dam.c — the `dam` attention module: DAM's per-head patterns (captured
 * from the model's own attention, dam_capture.c) run as block plans by the
 * sparse engine (dam_engine.c), with query-aware block selection on top
 * (dam_select.c). This file decides where the patterns come from: a
 * profile file, the automatic profile, or the prompt itself. */
#include "dam/dam.h"
#include "dam/common.h"
#include "dam/kernels.h"
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---------------------------------------------------------------------------
 * The dam module: where its plans come from */

int dam_run_params_from_options(const struct attn_options *o, struct dam_run_params *r) {
    memset(r, 0, sizeof *r);
    if (o->dam.sinks < 0) return dam_fail("dam: --dam-sinks must be >= 0 (got %d)", o->dam.sinks);
    if (o->dam.recent < 1) return dam_fail("dam: --dam-recent must be at least 1 (got %d)", o->dam.recent);
    if (o->dam.select < 0) return dam_fail("dam: --dam-select must be >= 0 (got %d)", o->dam.select);
    r->sinks = o->dam.sinks;
    r->recent = o->dam.recent;
    r->select = o->dam.select;
    r->columns = o->dam.columns != 0;
    if (o->dam.budget < 0) return dam_fail("dam: --dam-budget must be >= 0 (got %d)", o->dam.budget);
    if (o->dam.min_select < 0) return dam_fail("dam: --dam-min-select must be >= 0 (got %d)", o->dam.min_select);
    r->budget = o->dam.budget;
    r->min_select = (o->dam.min_select + KV_BLOCK - 1) / KV_BLOCK;
    if (o->dam.evict < 0) return dam_fail("dam: --dam-evict must be >= 0 (got %d)", o->dam.evict);
    r->evict = (o->dam.evict + KV_BLOCK - 1) / KV_BLOCK;
    if (!strcmp(o->dam.select_heads, "all")) r->select_heads = DAM_SELECT_ALL;
    else if (!strcmp(o->dam.select_heads, "weak")) r->select_heads = DAM_SELECT_WEAK;
    else if (!strcmp(o->dam.select_heads, "none")) r->select_heads = DAM_SELECT_NONE;
    else return dam_fail("dam: unknown --dam-select-heads '%s' (expected all, weak or none)", o->dam.select_heads);
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
    const char *capture = o->dam.capture;
    struct dam_profile *prof = NULL;
    if (!strcmp(capture, "calibrate")) {
        if (dam_state_start_capture(st, &p, &r, 0)) goto fail;
    } else if (!strcmp(capture, "reach")) {
        if (dam_state_start_reach(st, o->dam.reach_min_row)) goto fail;
    } else if (!strcmp(capture, "prompt")) {
        if (dam_state_start_capture(st, &p, &r, 1)) goto fail;
    } else if (!strcmp(capture, "profile") || !strcmp(capture, "auto")) {
        if (o->dam.profile[0]) {
            if (!(prof = dam_profile_load(o->dam.profile))) goto fail;
            snprintf(prof->source, sizeof prof->source, "%s", o->dam.profile);
        } else if (!strcmp(capture, "profile")) {
            dam_fail("--dam-capture profile needs a profile (--dam-profile FILE, made by dam calibrate)");
            goto fail;
        } else if (o->dam.prepared) {
            if (!(prof = dam_profile_clone(o->dam.prepared))) goto fail;
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
    if (o->dam.prepared || o->dam.profile[0] || strcmp(o->dam.capture, "auto")) return 0;
    o->dam.prepared = dam_auto_profile(m, tok, o, NULL, 0);
    return o->dam.prepared ? 0 : -1;
}

/* The options (attn_options.h); configs/dam.json holds the defaults with the
 * measurements behind them. */
#define OPT(field) offsetof(struct attn_options, dam.field)
#define STR(field) OPT(field), sizeof(((struct attn_options *)0)->dam.field)
static const struct attn_opt dam_options[] = {
    { "budget", ATTN_OPT_INT, OPT(budget), 0, 0, 1 << 24, NULL, NULL, "512",
      "keys each row reads per head on average, split across heads by the profile's reach" },
    { "min-select", ATTN_OPT_INT, OPT(min_select), 0, 0, 1 << 24, NULL, "minsel", "32",
      "positions every head chooses by query at least" },
    { "sinks", ATTN_OPT_INT, OPT(sinks), 0, 0, 1 << 24, NULL, NULL, "16", "first positions every head keeps" },
    { "evict", ATTN_OPT_INT, OPT(evict), 0, 0, 1 << 24, NULL, NULL, "0",
      "> 0: at a prompt's end each KV head keeps this many positions it reads most, drops the rest" },
    { "capture", ATTN_OPT_STRING, STR(capture), 0, 0, "auto|profile|prompt", NULL, "auto",
      "where the patterns come from" },
    { "profile", ATTN_OPT_STRING, STR(profile), 0, 0, NULL, NULL, "", "a profile made by dam calibrate" },
    { "recent", ATTN_OPT_INT, OPT(recent), 0, 1, 1 << 24, NULL, NULL, "256",
      "profiles without reach: the smallest recent window of a head" },
    { "select", ATTN_OPT_INT, OPT(select), 0, 0, 1 << 24, NULL, NULL, "256",
      "profiles without reach: positions a head chooses by query" },
    { "select-heads", ATTN_OPT_STRING, STR(select_heads), 0, 0, "all|weak|none", "heads", "all",
      "profiles without reach: which heads choose by query" },
    { "columns", ATTN_OPT_INT, OPT(columns), 0, 0, 1, NULL, NULL, "0", "1: keep the profile's column patterns" },
    { "pcl", ATTN_OPT_INT, OPT(pcl), 0, 2, 1 << 16, NULL, NULL, "256", "pattern capture length" },
    { "lambda", ATTN_OPT_FLOAT, OPT(lambda), 0, 0, 2, NULL, NULL, "0.5", "Box-Cox lambda" },
    { "tau", ATTN_OPT_FLOAT, OPT(tau), 0, 0, 100, NULL, NULL, "0.1", "threshold on the amplified scale" },
    { "mu", ATTN_OPT_FLOAT, OPT(mu), 0, 0, 1, NULL, NULL, "0.8", "pattern match threshold" },
    { "min-support", ATTN_OPT_INT, OPT(min_support), 0, 0, 1 << 16, NULL, "support", "0",
      "cells a pattern needs inside PCL (0 = PCL/4)" },
    { "min-coverage", ATTN_OPT_FLOAT, OPT(min_coverage), 0, 0, 1, NULL, "coverage", "0.5",
      "heads covering less of their true mask fall back" },
    { "fallback", ATTN_OPT_STRING, STR(fallback), 0, 0, "window|full|none", NULL, "window",
      "what a head that falls back runs" },
    { "fallback-window", ATTN_OPT_INT, OPT(fallback_window), 0, 1, 1 << 24, NULL, "fwindow", "32",
      "window of the window fallback" },
    { "reach-min-row", ATTN_OPT_INT, OPT(reach_min_row), 0, 0, 1 << 24, NULL, NULL, "512", NULL },
    { 0 },
};
#undef STR
#undef OPT

const struct attn_module attn_dam = {
    .name = "dam",
    .description = "Dynamic Attention Mask: per-head diagonal and column patterns captured from "
                   "full attention, sparse kernels, per-group KV eviction",
    .options = dam_options,
    .kv_types = 1,
    .prepare = dam_prepare,
    .create = dam_create,
    .prefill = dam_state_prefill,
    .decode = dam_state_decode,
    .truncate = dam_state_truncate,
    .save = dam_state_save,
    .load = dam_state_load,
    .stats = dam_state_stats,
    .destroy = dam_state_free,
};
