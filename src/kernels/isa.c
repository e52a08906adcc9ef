/* isa.c — which micro-kernels run: the preferred variant this CPU supports,
 * chosen once at the first kernel call, or the one $DAM_ISA names
 * (avx512, avx512bf16, avx2, portable) — handy to compare them or to run the portable
 * code on a machine that has more. kernels_set_isa() switches at run time
 * (tests use it to run every variant). */
#include "isa.h"
#include "dam/common.h"
#include "dam/kernels.h"
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Weak: a build that leaves the AVX-512 file out (the clang fuzz build)
 * simply has no such variant. */
#if defined(__x86_64__)
extern const struct isa isa_avx512bf16 __attribute__((weak));
#endif

/* Preferred first; a NULL entry is a variant this build lacks.
 * avx512bf16 comes after avx512: to keep float32 accuracy it needs two BF16
 * dot products per weight (hi and lo halves of the input), which measured
 * even with float32 FMAs on Zen 5 and half their speed on Sapphire Rapids;
 * it runs when asked for ($DAM_ISA=avx512bf16). */
static const struct isa *const variants[] = {
#if defined(__x86_64__)
    &isa_avx512,
    &isa_avx512bf16,
    &isa_avx2,
#endif
    &isa_portable,
};
#define N_VARIANTS (int)(sizeof variants / sizeof variants[0])

static const struct isa *current;
static pthread_once_t chosen = PTHREAD_ONCE_INIT;

static const struct isa *find(const char *name) {
    for (int i = 0; i < N_VARIANTS; i++)
        if (variants[i] && !strcmp(variants[i]->name, name)) return variants[i];
    return NULL;
}

static void choose(void) {
    const char *env = getenv("DAM_ISA");
    if (env && *env) {
        const struct isa *v = find(env);
        if (v && v->cpu_has()) { current = v; return; }
        /* a library does not print: an unusable $DAM_ISA falls back to the
         * best variant, and kernels_isa() shows which one runs */
    }
    for (int i = 0; i < N_VARIANTS; i++)
        if (variants[i] && variants[i]->cpu_has()) { current = variants[i]; return; }
}

const struct isa *isa_current(void) {
    pthread_once(&chosen, choose);
    return current;
}

const char *kernels_isa(void) { return isa_current()->name; }

int kernels_set_isa(const char *name) {
    isa_current();
    const struct isa *v = find(name);
    if (!v) return dam_fail("unknown kernel variant '%s' (expected %s)", name, kernels_isa_available());
    if (!v->cpu_has()) return dam_fail("this CPU cannot run the %s kernels", name);
    current = v;
    return 0;
}

static char available[64];

static void list_available(void) {
    for (int i = 0; i < N_VARIANTS; i++)
        if (variants[i] && variants[i]->cpu_has()) {
            if (available[0]) strcat(available, " ");
            strcat(available, variants[i]->name);
        }
}

const char *kernels_isa_available(void) {
    static pthread_once_t listed = PTHREAD_ONCE_INIT;
    pthread_once(&listed, list_available);
    return available;
}
