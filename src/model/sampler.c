/* sampler.c — repetition penalty, top-k, top-p, min-p, temperature. */
#include "dam/sampler.h"
#include "dam/common.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>

void sampler_params_default(struct sampler_params *p) {
    p->temperature = 0.8f;
    p->top_k = 40;
    p->top_p = 0.95f;
    p->min_p = 0.05f;
    p->repeat_penalty = 1.0f;
    p->repeat_last_n = 64;
    p->seed = 0;
}

int sampler_build(struct sampler *s, const struct sampler_params *p, int vocab) {
    memset(s, 0, sizeof *s);
    s->p = *p;
    s->vocab = vocab;
    s->rng = p->seed ? p->seed : 0x9E3779B97F4A7C15ull;   /* xorshift needs a non-zero state */
    s->probs = xmalloc((size_t)vocab * sizeof(float), "sampler");
    s->order = xmalloc((size_t)vocab * sizeof(int), "sampler");
    if (!s->probs || !s->order) { sampler_free(s); return -1; }
    return 0;
}

void sampler_free(struct sampler *s) {
    free(s->probs); free(s->order);
    s->probs = NULL; s->order = NULL;
}

float sampler_random(struct sampler *s) {
    s->rng ^= s->rng >> 12; s->rng ^= s->rng << 25; s->rng ^= s->rng >> 27;
    return (float)((s->rng * 0x2545F4914F6CDD1Dull) >> 40) / 16777216.0f;
}

/* llama.cpp's penalty: a repeated token's logit is divided by the penalty
 * when positive, multiplied when negative (each token once). */
static void apply_repeat_penalty(struct sampler *s, float *logits, const int *hist, int n) {
    if (s->p.repeat_penalty == 1.0f || n == 0) return;
    int from = s->p.repeat_last_n < 0 || s->p.repeat_last_n > n ? 0 : n - s->p.repeat_last_n;
    char *seen = calloc(s->vocab, 1);
    if (!seen) return;
    for (int i = from; i < n; i++) {
        int t = hist[i];
        if (t < 0 || t >= s->vocab || seen[t]) continue;
        seen[t] = 1;
        logits[t] = logits[t] > 0 ? logits[t] / s->p.repeat_penalty : logits[t] * s->p.repeat_penalty;
    }
    free(seen);
}

static int argmax(const float *x, int n) {
    int best = 0;
    for (int i = 1; i < n; i++) if (x[i] > x[best]) best = i;
    return best;
}

static int by_logit_desc(const void *a, const void *b, void *logits) {
    float x = ((const float *)logits)[*(const int *)a], y = ((const float *)logits)[*(const int *)b];
    return (x < y) - (x > y);
}

int sampler_sample(struct sampler *s, float *logits, const int *history, int n_history) {
    apply_repeat_penalty(s, logits, history, n_history);
    if (s->p.temperature <= 0) return argmax(logits, s->vocab);

    /* candidates sorted by logit (top-k first narrows the sort) */
    int n = s->vocab;
    for (int i = 0; i < n; i++) s->order[i] = i;
    qsort_r(s->order, n, sizeof(int), by_logit_desc, logits);
    if (s->p.top_k > 0 && s->p.top_k < n) n = s->p.top_k;

    /* softmax over the candidates (at temperature 1 for the p-filters, as llama.cpp) */
    float max = logits[s->order[0]];
    double sum = 0;
    for (int i = 0; i < n; i++) { s->probs[i] = expf(logits[s->order[i]] - max); sum += s->probs[i]; }
    for (int i = 0; i < n; i++) s->probs[i] /= (float)sum;
    if (s->p.top_p < 1.0f) {
        double cum = 0;
        for (int i = 0; i < n; i++) {
            cum += s->probs[i];
            if (cum >= s->p.top_p) { n = i + 1; break; }
        }
    }
    if (s->p.min_p > 0) {
        float floor_p = s->probs[0] * s->p.min_p;
        int keep = 1;
        while (keep < n && s->probs[keep] >= floor_p) keep++;
        n = keep;
    }
    /* temperature on the survivors, then a draw */
    sum = 0;
    for (int i = 0; i < n; i++) {
        s->probs[i] = expf((logits[s->order[i]] - max) / s->p.temperature);
        sum += s->probs[i];
    }
    float r = sampler_random(s) * (float)sum, acc = 0;
    for (int i = 0; i < n; i++) {
        acc += s->probs[i];
        if (r < acc) return s->order[i];
    }
    return s->order[n - 1];
}
