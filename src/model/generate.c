/* generate.c — the generation loop. */
#include "dam/generate.h"
#include "dam/common.h"
#include <stdlib.h>
#include <string.h>

const char *stop_reason_name(enum stop_reason r) {
    static const char *names[] = { "length", "eos", "stop", "context", "interrupt" };
    return names[r];
}

static int interrupted(const struct gen_params *p) { return p->interrupt && *p->interrupt; }

/* Prefill in chunks so that progress can be shown and Ctrl-C honoured.
 * *pause_ms gets the time spent in the checkpoint. */
static int prefill(struct session *s, const int *prompt, int n, const struct gen_params *p, float *logits,
                   double *pause_ms) {
    for (int done = p->n_past; done < n; ) {
        int len = n - done < s->chunk ? n - done : s->chunk;
        int last = done + len == n;
        if (session_eval(s, prompt + done, len, logits, last ? LOGITS_LAST : LOGITS_NONE) != 0) return -1;
        done += len;
        if (p->on_prefill) p->on_prefill(p->prefill_ctx, done - p->n_past, n - p->n_past);
        if (p->on_checkpoint && done == p->checkpoint) {
            double t = now_ms();
            if (p->on_checkpoint(p->checkpoint_ctx, s) != 0) return -1;
            *pause_ms += now_ms() - t;
        }
        if (interrupted(p) && !last) return 1;
    }
    return 0;
}

int generate(struct session *s, const int *prompt, int n_prompt, const struct gen_params *p,
             struct gen_result *r) {
    const struct model_config *cfg = &s->model->cfg;
    memset(r, 0, sizeof *r);
    if (p->n_past < 0 || p->n_past > n_prompt || s->pos != p->n_past)
        return dam_fail("generate: %d prompt tokens said to be in a session holding %d", p->n_past, s->pos);
    r->n_prompt = n_prompt - p->n_past;
    int room = s->n_ctx - s->pos - r->n_prompt;     /* positions left after the prompt */
    if (room < 0) return dam_fail("prompt of %d tokens does not fit in the context of %d", n_prompt, s->n_ctx);
    int max_new = p->n_predict < 0 ? room + 1 : p->n_predict;  /* the last token needs no KV slot */
    struct sampler sm;
    float *logits = xmalloc((size_t)cfg->vocab_size * sizeof(float), "logits");
    int *hist = xmalloc(((size_t)n_prompt + max_new + 1) * sizeof(int), "token history");
    r->tokens = xmalloc(((size_t)max_new + 1) * sizeof(int), "tokens");
    if (!logits || !hist || !r->tokens || sampler_build(&sm, &p->sampling, cfg->vocab_size) != 0) {
        free(logits); free(hist); free(r->tokens); r->tokens = NULL;
        return -1;
    }
    memcpy(hist, prompt, (size_t)n_prompt * sizeof(int));
    int n_hist = n_prompt, rc = 0;

    double t0 = now_ms(), pause_ms = 0;
    int pre = r->n_prompt > 0 ? prefill(s, prompt, n_prompt, p, logits, &pause_ms) : 0;
    r->prompt_ms = now_ms() - t0 - pause_ms;
    if (pre < 0) { rc = -1; goto done; }
    if (pre > 0 || interrupted(p)) { r->stop = STOP_INTERRUPT; goto done; }
    if (r->n_prompt == 0) { rc = dam_fail("nothing to generate from: no prompt tokens to evaluate"); goto done; }

    t0 = now_ms();
    r->stop = STOP_LENGTH;
    while (r->n_generated < max_new) {
        int next = sampler_sample(&sm, logits, hist, n_hist);
        if (!p->ignore_eos && config_is_eos(cfg, next)) { r->stop = STOP_EOS; break; }
        r->tokens[r->n_generated++] = next;
        hist[n_hist++] = next;
        if (p->on_token && p->on_token(p->ctx, next)) { r->stop = STOP_CALLER; break; }
        if (interrupted(p)) { r->stop = STOP_INTERRUPT; break; }
        if (r->n_generated == max_new) break;
        if (s->pos >= s->n_ctx) { r->stop = STOP_CONTEXT; break; }
        if (session_eval(s, &next, 1, logits, LOGITS_LAST) != 0) { rc = -1; break; }
        r->n_eval++;
    }
    r->eval_ms = now_ms() - t0;
    if (p->n_predict < 0 && r->stop == STOP_LENGTH) r->stop = STOP_CONTEXT;
done:
    sampler_free(&sm);
    free(logits);
    free(hist);
    return rc;
}

void gen_result_free(struct gen_result *r) {
    free(r->tokens);
    r->tokens = NULL;
}
