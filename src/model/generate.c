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

/* Prefill in chunks so that progress can be shown and Ctrl-C honoured. */
static int prefill(struct session *s, const int *prompt, int n, const struct gen_params *p, float *logits) {
    for (int done = 0; done < n; ) {
        int len = n - done < s->chunk ? n - done : s->chunk;
        int last = done + len == n;
        if (session_eval(s, prompt + done, len, logits, last ? LOGITS_LAST : LOGITS_NONE) != 0) return -1;
        done += len;
        if (p->on_prefill) p->on_prefill(p->prefill_ctx, done, n);
        if (interrupted(p) && !last) return 1;
    }
    return 0;
}

int generate(struct session *s, const int *prompt, int n_prompt, const struct gen_params *p,
             struct gen_result *r) {
    const struct model_config *cfg = &s->model->cfg;
    memset(r, 0, sizeof *r);
    r->n_prompt = n_prompt;
    int room = s->n_ctx - s->pos - n_prompt;        /* positions left after the prompt */
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

    double t0 = now_ms();
    int pre = n_prompt > 0 ? prefill(s, prompt, n_prompt, p, logits) : 0;
    r->prompt_ms = now_ms() - t0;
    if (pre < 0) { rc = -1; goto done; }
    if (pre > 0 || interrupted(p)) { r->stop = STOP_INTERRUPT; goto done; }
    if (n_prompt == 0) { rc = dam_fail("nothing to generate from: the prompt is empty"); goto done; }

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
