/* main.c — `dam SUBCOMMAND ...`: dispatches to one file per subcommand, then
 * checks that standard output took everything (a full disk or a closed
 * descriptor is an error, not a silent loss). */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "dam/common.h"
#include "dam/hub.h"
#include "dam/kernels.h"
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

/* A descriptor 0-2 the caller closed (`dam run >&-`) would be handed to the
 * next file dam opens, and stdout would write into it. /dev/null opened
 * read-only takes its place: reading gives EOF, writing fails (EBADF), and
 * that failure is reported like any other. */
static void guard_std_descriptors(void) {
    for (int fd = 0; fd <= 2; fd++)
        if (fcntl(fd, F_GETFD) == -1 && errno == EBADF) {
            int got = open("/dev/null", O_RDONLY);
            if (got >= 0 && got != fd) close(got);
        }
}

/* $DAM_ISA names a kernel variant; a name that is wrong, or one this CPU
 * cannot run, is refused rather than ignored. */
static int check_isa_env(void) {
    const char *isa = getenv("DAM_ISA");
    if (!isa || !*isa || kernels_set_isa(isa) == 0) return 0;
    cli_error("$DAM_ISA: %s", dam_last_error());
    return -1;
}

static int dispatch(int argc, char **argv) {
    if (argc < 2) { usage(stderr); return EXIT_USAGE; }
    if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
        if (!strcmp(argv[1], "help") && argc > 2) {         /* dam help run = dam run --help */
            char *help_argv[] = { argv[2], "--help", NULL };
            for (int i = 0; i < N_SUBCOMMANDS; i++)
                if (!strcmp(argv[2], subcommands[i].name)) return subcommands[i].fn(2, help_argv);
            cli_error("unknown command '%s' (see dam --help)", argv[2]);
            return EXIT_USAGE;
        }
        usage(stdout);
        return EXIT_OK;
    }
    if (!strcmp(argv[1], "--version")) { printf("dam %s\n", DAM_VERSION); return EXIT_OK; }
    for (int i = 0; i < N_SUBCOMMANDS; i++)
        if (!strcmp(argv[1], subcommands[i].name)) {
            if (check_isa_env() != 0) return EXIT_USAGE;
            int rc = subcommands[i].fn(argc - 1, argv + 1);
            /* Ctrl-C during a download (dam fetch, or -m ORG/NAME) */
            return rc == EXIT_ERROR && hub_interrupted() ? 130 : rc;
        }
    cli_error("unknown command '%s' (see dam --help)", argv[1]);
    return EXIT_USAGE;
}

int main(int argc, char **argv) {
    guard_std_descriptors();
    int rc = dispatch(argc, argv);
    if (out_close() != 0) {
        cli_error("%s", dam_last_error());
        if (rc == EXIT_OK || rc == 130) rc = EXIT_ERROR;
    }
    return rc;
}
