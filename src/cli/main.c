/* main.c — `dam SUBCOMMAND ...`: dispatches to one file per subcommand. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "dam/common.h"
#include "cli.h"

struct subcommand {
    const char *name;
    int (*fn)(int argc, char **argv);
    const char *summary;
};

static const struct subcommand subcommands[] = {
    { "run",    cmd_run,    "generate text (or ids) from a prompt, streaming" },
    { "logits", cmd_logits, "print or save the logits of a token sequence" },
    { "fetch",  cmd_fetch,  "download a model from the Hugging Face hub into its cache" },
    { "tokenize", cmd_tokenize, "print the token ids (or pieces) of a text; --bench for speed" },
    { "calibrate", cmd_calibrate, "capture DAM attention patterns into a profile (JSON)" },
    { "compare",  cmd_compare,  "attention modules against full: agreement, KL, sparsity, KV, speed" },
    { "masks",    cmd_masks,    "draw DAM true and extended masks as SVG" },
    { "niah",     cmd_niah,     "needle-in-a-haystack grids: passkey, niah, multikey, lines" },
    { "synth",    cmd_synth,    "write a model folder of random weights with a given geometry" },
    { "bench",    cmd_bench,    "speed: pp/tg tokens/s at context depths, vs this machine's limits" },
};
#define N_SUBCOMMANDS (int)(sizeof subcommands / sizeof subcommands[0])

static void usage(FILE *out) {
    fprintf(out, "usage: dam COMMAND [options]   (dam COMMAND --help for its flags)\n\ncommands:\n");
    for (int i = 0; i < N_SUBCOMMANDS; i++)
        fprintf(out, "  %-10s %s\n", subcommands[i].name, subcommands[i].summary);
    fprintf(out, "\nRuns Llama-family models from Hugging Face folders on the CPU, with pluggable\n"
                 "attention (full, window, dam). Version %s.\n", DAM_VERSION);
}

/* The kernels run on dam's own thread pool (include/dam/threads.h); the dam
 * attention module still has OpenMP loops (until they move to the pool).
 * After each of them, libgomp's threads spin for milliseconds by default,
 * on the cores the pool's threads need next: --attn dam decoded at half
 * speed at depth 4096 (SmolLM2-135M, 2 threads). libgomp reads its spin
 * count from the environment once, before main, so the process starts
 * itself again with GOMP_SPINCOUNT set, unless the user chose a wait policy. */
static void tame_openmp(char **argv) {
    if (getenv("GOMP_SPINCOUNT") || getenv("OMP_WAIT_POLICY")) return;
    if (setenv("GOMP_SPINCOUNT", "1000", 1) != 0) return;
    execv("/proc/self/exe", argv);
    /* no /proc (or exec refused): run as we are */
}

int main(int argc, char **argv) {
    tame_openmp(argv);
    if (argc < 2) { usage(stderr); return EXIT_USAGE; }
    if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
        usage(stdout);
        return EXIT_OK;
    }
    if (!strcmp(argv[1], "--version")) { printf("dam %s\n", DAM_VERSION); return EXIT_OK; }
    for (int i = 0; i < N_SUBCOMMANDS; i++)
        if (!strcmp(argv[1], subcommands[i].name))
            return subcommands[i].fn(argc - 1, argv + 1);
    cli_error("unknown command '%s' (see dam --help)", argv[1]);
    return EXIT_USAGE;
}
