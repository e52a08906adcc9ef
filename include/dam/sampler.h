/* sampler.h — choosing the next token from logits.
 * Order, as llama.cpp: repetition penalty, top-k, top-p, min-p, temperature,
 * then a draw; temperature 0 is greedy (argmax after the penalty). */
#ifndef DAM_SAMPLER_H
#define DAM_SAMPLER_H

#include <stdint.h>

struct sampler_params {
    float temperature;     /* 0 = greedy */
    int top_k;             /* 0 = off */
    float top_p;           /* 1 = off */
    float min_p;           /* 0 = off */
    float repeat_penalty;  /* 1 = off */
    int repeat_last_n;     /* tokens looked back for the penalty; -1 = all */
    uint64_t seed;
};

struct sampler {
    struct sampler_params p;
    int vocab;
    uint64_t rng;          /* xorshift64* state */
    float *probs;          /* (vocab) scratch */
    int *order;            /* (vocab) candidate ids */
};

void sampler_params_default(struct sampler_params *p);
int sampler_build(struct sampler *s, const struct sampler_params *p, int vocab);
void sampler_free(struct sampler *s);
/* Picks a token. logits (vocab) are modified (penalty applied in place).
 * history: the tokens so far (for the repetition penalty). */
int sampler_sample(struct sampler *s, float *logits, const int *history, int n_history);
/* Uniform float in [0, 1) from the sampler's generator. */
float sampler_random(struct sampler *s);

#endif
