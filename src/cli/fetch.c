/* fetch.c — `dam fetch REPO_ID`: downloads a model from the Hugging Face hub
 * into huggingface_hub's cache and prints its snapshot folder (the only
 * thing on stdout, so `dam run -m "$(dam fetch org/name)"` works). */
#include "cli.h"
#include "dam/common.h"
#include "dam/hub.h"
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void help(FILE *out) {
    fprintf(out,
        "usage: dam fetch REPO_ID [--revision REV] [--include GLOB ...] [--quiet]\n"
        "Downloads config.json, generation_config.json, tokenizer.json, tokenizer_config.json\n"
        "and the safetensors weights of a Hugging Face model into the huggingface_hub cache,\n"
        "resuming partial downloads, then prints the snapshot folder.\n"
        "  REPO_ID              ORG/NAME on the hub, e.g. HuggingFaceTB/SmolLM2-360M-Instruct\n"
        "  --revision REV       branch, tag or commit (default main)\n"
        "  --include GLOB ...   also fetch these files: names, or globs like '*.md' matched\n"
        "                       against the repo's file list (repeatable; more globs may follow)\n"
        "  -q, --quiet          no progress on stderr\n"
        "  -h, --help           this help\n"
        "environment:\n"
        "  HF_ENDPOINT          hub address (default https://huggingface.co)\n"
        "  HF_TOKEN             access token for gated or private repos (else $HF_HOME/token)\n"
        "  HF_HOME              default $XDG_CACHE_HOME/huggingface, else ~/.cache/huggingface;\n"
        "                       HF_HUB_CACHE default $HF_HOME/hub\n"
        "  HF_HUB_OFFLINE=1     use only the cache; say what is missing\n"
        "  HF_HUB_ETAG_TIMEOUT, HF_HUB_DOWNLOAD_TIMEOUT   seconds (default 10 each)\n"
        "  DAM_HUB_RETRY_BASE_MS, DAM_HUB_RETRY_MAX_MS    backoff (default 1000, 30000)\n");
}

int cmd_fetch(int argc, char **argv) {
    const char *repo = NULL, *revision = NULL;
    const char **include = calloc((size_t)argc + 1, sizeof *include);
    int n_include = 0, quiet = 0, rc = EXIT_USAGE;
    int after_include = 0;   /* bare words right after --include are more globs */
    if (!include) { cli_error("out of memory"); return EXIT_ERROR; }
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) { help(stdout); rc = EXIT_OK; goto done; }
        if (arg_is(a, "--revision")) {
            if (!(revision = arg_value(argc, argv, &i))) goto done;
            after_include = 0;
        } else if (arg_is(a, "--include")) {
            const char *v = arg_value_repeatable(argc, argv, &i);
            if (!v) goto done;
            include[n_include++] = v;
            after_include = 1;
        } else if (!strcmp(a, "-q") || !strcmp(a, "--quiet")) {
            quiet = 1;
            after_include = 0;
        } else if (a[0] == '-' && a[1]) {
            cli_error("unknown flag '%s' for fetch (see dam fetch --help)", a);
            goto done;
        } else if (!repo) {
            repo = a;
        } else if (after_include) {
            include[n_include++] = a;
        } else {
            cli_error("unexpected argument '%s' (fetch takes one REPO_ID)", a);
            goto done;
        }
    }
    if (!repo) { cli_error("fetch needs a REPO_ID such as HuggingFaceTB/SmolLM2-360M-Instruct"); goto done; }
    struct hub_fetch_options o = {
        .revision = revision, .include = include, .n_include = n_include, .quiet = quiet,
    };
    char dir[PATH_MAX];
    if (hub_fetch(repo, &o, dir, sizeof dir) != 0) {
        cli_error("%s", dam_last_error());
        rc = EXIT_ERROR;
        goto done;
    }
    printf("%s\n", dir);
    rc = EXIT_OK;
done:
    free(include);
    return rc;
}
