/* logits.c — `dam logits`: the logits of a token sequence, teacher-forced.
 * Prints the top-K ids per position; --out saves every logit as safetensors
 * (logits F32 [n, vocab], input_ids I32 [n]) for comparison with other tools. */
#include "cli.h"
#include "dam/common.h"
#include "dam/model.h"
#include "dam/safetensors.h"
#include "dam/session.h"
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void help(FILE *out) {
    fprintf(out,
        "usage: dam logits [-m DIR] --ids 1,5,9 [--top K] [--out FILE.safetensors]\n"
        "  --ids LIST             comma-separated token ids (required)\n"
        "  --top K                top-K ids with their logits per position (default 5; 0 = none,\n"
        "                         with --out)\n"
        "  --out FILE             write logits F32 [n, vocab] and input_ids I32 [n] (- = stdout;\n"
        "                         the top-K table then goes to stderr)\n"
        "The ids must fit in the context: -c, else the model's max_position_embeddings.\n");
    model_args_help(out);
}

/* Prints the k largest logits of one row, largest first. */
static void print_top(FILE *out, int pos, int id, const float *row, int vocab, int k) {
    fprintf(out, "%d %d:", pos, id);
    char *taken = calloc(vocab, 1);
    if (!taken) return;
    for (int r = 0; r < k && r < vocab; r++) {
        int best = -1;
        for (int i = 0; i < vocab; i++)
            if (!taken[i] && (best < 0 || row[i] > row[best])) best = i;
        taken[best] = 1;
        fprintf(out, " %d=%.6f", best, row[best]);
    }
    fprintf(out, "\n");
    free(taken);
}

static int save_logits(const char *path, const float *logits, const int *ids, int n, int vocab) {
    struct st_writer *w = st_writer_new();
    int64_t lshape[2] = { n, vocab }, ishape[1] = { n };
    int rc = !w || st_writer_add(w, "logits", DT_F32, 2, lshape, logits) ||
             st_writer_add(w, "input_ids", DT_I32, 1, ishape, ids) || st_writer_save(w, path);
    st_writer_free(w);
    return rc ? -1 : 0;
}

int cmd_logits(int argc, char **argv) {
    struct model_args ma;
    if (model_args_default(&ma, NULL)) return EXIT_ERROR;   /* NULL: the model's exact attention */
    int *ids = NULL, n = 0, top = 5, rc = EXIT_USAGE;
    const char *out_path = NULL, *v;
    struct model *m = NULL;
    struct session *s = NULL;
    float *logits = NULL;
    for (int i = 1; i < argc; i++) {
        int r = model_args_parse(&ma, argc, argv, &i);
        if (r < 0) goto done;
        if (r > 0) continue;
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) { help(stdout); rc = EXIT_OK; goto done; }
        if (arg_is(argv[i], "--ids")) {
            if (!(v = arg_value(argc, argv, &i))) goto done;
            free(ids);
            if (arg_ids("--ids", v, &ids, &n)) goto done;
        } else if (arg_is(argv[i], "--top")) {
            if (!(v = arg_value(argc, argv, &i)) || arg_int("--top", v, 0, 1 << 20, &top)) goto done;
        } else if (arg_is(argv[i], "--out")) {
            if (!(out_path = arg_value(argc, argv, &i))) goto done;
        } else {
            cli_error("unknown flag '%s' for dam logits (see dam logits --help)", argv[i]);
            goto done;
        }
    }
    if (!ids) { cli_error("dam logits needs --ids"); goto done; }
    if (top == 0 && !out_path) { cli_error("--top 0 without --out prints nothing (give --top K or --out FILE)"); goto done; }
    if (model_args_finish(&ma)) goto done;
    if (out_path && check_output_path("--out", out_path)) { rc = EXIT_ERROR; goto done; }
    rc = EXIT_ERROR;
    char dir[PATH_MAX];
    if (model_resolve_dir(ma.model, dir, sizeof dir) || !(m = model_args_load(&ma, dir))) goto fail;
    /* the context rule of every command: -c, else the model's maximum */
    int limit = ma.n_ctx ? ma.n_ctx : m->cfg.max_seq_len;
    if (ma.n_ctx) warn_past_trained(ma.n_ctx, &m->cfg, "-c");
    if (n > limit) {
        dam_fail("%d tokens do not fit in a context of %d (%s)", n, limit,
                 ma.n_ctx ? "-c" : "the model's max_position_embeddings; -c raises it");
        goto fail;
    }
    if (!ma.attn) ma.attn = attn_default_for(m);
    model_args_warn_unused(&ma, ma.attn);
    if (!strcmp(ma.attn, "dam") && check_pcl(ma.attn_opts.dam.pcl, &m->cfg)) goto fail;
    if (attn_prepare(attn_find(ma.attn), &ma.attn_opts, m, NULL)) goto fail;
    if (!(s = session_new(m, attn_find(ma.attn), &ma.attn_opts, n))) goto fail;   /* the KV cache holds n */
    const int vocab = m->cfg.vocab_size;
    if (!(logits = xmalloc((size_t)n * vocab * sizeof(float), "logits"))) goto fail;
    if (session_eval(s, ids, n, logits, LOGITS_ALL)) goto fail;
    /* the file first: a failure to write it must come before any table */
    if (out_path && save_logits(out_path, logits, ids, n, vocab)) goto fail;
    FILE *table = out_path && output_is_stdout(out_path) ? stderr : stdout;
    for (int t = 0; t < n && top > 0; t++) print_top(table, t, ids[t], logits + (size_t)t * vocab, vocab, top);
    rc = EXIT_OK;
    goto done;
fail:
    cli_error("%s", dam_last_error());
done:
    free(logits);
    session_free(s);
    attn_options_release(&ma.attn_opts);
    model_free(m);
    free(ids);
    return rc;
}
