/* tokenize.c — `dam tokenize`: text -> token ids (or pieces) with a model's
 * tokenizer.json, the chat template applied on request; --decode goes back;
 * --bench measures encoding speed on a long text. */
#include "cli.h"
#include "dam/common.h"
#include "dam/model.h"
#include "dam/tokenizer.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct tokenize_args {
    const char *model;         /* -m: folder or tokenizer.json */
    const char *prompt;        /* -p */
    const char *file;          /* -f */
    const char *decode;        /* --decode IDS */
    const char *system;        /* --system */
    const char *chat_template; /* --chat-template */
    int special, pieces, chat, bench, skip_special;
};

static void usage(FILE *out) {
    fprintf(out,
        "usage: dam tokenize [-m DIR|tokenizer.json] (-p TEXT | -f FILE) [options]\n"
        "       dam tokenize [-m DIR] --decode IDS [--skip-special]\n\n"
        "Prints the token ids of the text as one JSON array.\n\n"
        "  -m, --model PATH     model folder (its tokenizer.json) or a tokenizer.json\n"
        "                       (default: $DAM_MODEL, else the embedded model)\n"
        "  -p, --prompt TEXT    text to encode (may be empty)\n"
        "  -f, --file FILE      encode the contents of FILE (- = stdin; a pipe will do)\n"
        "  --special            add the post-processor's special tokens (BOS...),\n"
        "                       like add_special_tokens=True\n"
        "  --pieces             print the token strings instead of ids\n"
        "  --chat               wrap the text as a user turn in the chat template\n"
        "  --system TEXT        system prompt for --chat\n"
        "  --chat-template NAME chatml, llama3 or llama2 (default: recognised from\n"
        "                       tokenizer_config.json)\n"
        "  --decode IDS         print the text of comma-separated ids instead (ids outside\n"
        "                       the vocabulary are an error)\n"
        "  --skip-special       with --decode: drop special tokens\n"
        "  --bench              time encoding the text; prints bytes, tokens, MB/s\n");
}

static int parse_args(int argc, char **argv, struct tokenize_args *a) {
    memset(a, 0, sizeof *a);
    for (int i = 1; i < argc; i++) {
        const char *f = argv[i];
        const char **dst = NULL;
        if (!strcmp(f, "-h") || !strcmp(f, "--help")) { usage(stdout); return 1; }
        if (arg_is(f, "-m") || arg_is(f, "--model")) dst = &a->model;
        else if (arg_is(f, "-p") || arg_is(f, "--prompt")) dst = &a->prompt;
        else if (arg_is(f, "-f") || arg_is(f, "--file")) dst = &a->file;
        else if (arg_is(f, "--decode")) dst = &a->decode;
        else if (arg_is(f, "--system")) dst = &a->system;
        else if (arg_is(f, "--chat-template")) dst = &a->chat_template;
        else if (!strcmp(f, "--special")) a->special = 1;
        else if (!strcmp(f, "--pieces")) a->pieces = 1;
        else if (!strcmp(f, "--chat")) a->chat = 1;
        else if (!strcmp(f, "--bench")) a->bench = 1;
        else if (!strcmp(f, "--skip-special")) a->skip_special = 1;
        else { cli_error("unknown flag '%s' for tokenize (see dam tokenize --help)", f); return -1; }
        if (dst && !(*dst = arg_value(argc, argv, &i))) return -1;
    }
    if (!a->decode && !!a->prompt == !!a->file) {
        cli_error("tokenize needs exactly one of -p TEXT or -f FILE");
        return -1;
    }
    if (a->chat_template && !a->chat) { cli_error("--chat-template needs --chat"); return -1; }
    if (a->system && !a->chat) { cli_error("--system needs --chat"); return -1; }
    return 0;
}

static struct tokenizer *load_tokenizer(const char *arg) {
    char dir[4096];
    if (arg && is_file(arg)) return tokenizer_load(arg);
    if (model_resolve_dir(arg, dir, sizeof dir) != 0) return NULL;
    return tokenizer_load(dir);
}

/* A JSON string literal: quotes, backslashes and control chars escaped. */
static void print_json_string(const char *s) {
    putchar('"');
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == '"' || *p == '\\') printf("\\%c", *p);
        else if (*p == '\n') fputs("\\n", stdout);
        else if (*p == '\t') fputs("\\t", stdout);
        else if (*p == '\r') fputs("\\r", stdout);
        else if (*p < 0x20 || *p == 0x7F) printf("\\u%04x", *p);
        else putchar(*p);
    }
    putchar('"');
}

static void print_ids(const struct tokenizer *t, const int *ids, int n, int pieces) {
    putchar('[');
    for (int i = 0; i < n; i++) {
        if (i) fputs(", ", stdout);
        if (!pieces) { printf("%d", ids[i]); continue; }
        const char *p = tokenizer_piece(t, ids[i]);
        if (p) print_json_string(p);
        else fputs("null", stdout);
    }
    puts("]");
}

/* The text to encode: the prompt or file, wrapped in the chat template. */
static char *build_text(const struct tokenizer *t, const struct tokenize_args *a, size_t *len) {
    char *text = a->file ? read_input(a->file, len) : strdup(a->prompt);
    if (!text) { if (!a->file) dam_fail("out of memory"); return NULL; }
    if (!a->file) *len = strlen(text);
    if (!a->chat) return text;
    char name[32];
    if (a->chat_template) snprintf(name, sizeof name, "%s", a->chat_template);
    else if (chat_template_detect(t, name, sizeof name) != 0) {
        dam_fail("%s; choose one with --chat-template chatml|llama3|llama2", dam_last_error());
        free(text);
        return NULL;
    }
    if (strlen(text) != *len) { free(text); dam_fail("the chat text contains a NUL byte"); return NULL; }
    char *default_system = a->system ? NULL : chat_template_default_system(t);
    char *chat = chat_format(name, a->system ? a->system : default_system, text);
    free(default_system);
    free(text);
    if (chat) *len = strlen(chat);
    return chat;
}

/* Encodes text repeatedly and reports the best of 3 runs (after a warm-up),
 * then the decode speed of the ids. */
static int bench(const struct tokenizer *t, const char *text, size_t len) {
    int *ids = NULL, n = 0;
    double best = 1e30, best_dec = 1e30;
    for (int run = 0; run < 4; run++) {
        free(ids);
        double t0 = now_ms();
        if (tokenizer_encode(t, text, len, 0, &ids, &n) != 0) return -1;
        double ms = now_ms() - t0;
        if (run > 0 && ms < best) best = ms;
    }
    size_t out_len = 0;
    int same = 0;
    for (int run = 0; run < 3; run++) {
        double t0 = now_ms();
        char *back = tokenizer_decode_n(t, ids, n, 0, &out_len);
        double ms = now_ms() - t0;
        if (!back) { free(ids); return -1; }
        same = out_len == len && !memcmp(back, text, len);
        free(back);
        if (ms < best_dec) best_dec = ms;
    }
    free(ids);
    printf("bytes %zu tokens %d encode_s %.4f encode_MB/s %.2f decode_MB/s %.2f roundtrip %s\n",
           len, n, best / 1000, len / 1e6 / (best / 1000 + 1e-12), out_len / 1e6 / (best_dec / 1000 + 1e-12),
           same ? "exact" : "differs");
    return 0;
}

static int run_decode(const struct tokenizer *t, const struct tokenize_args *a) {
    int *ids, n;
    if (arg_ids("--decode", a->decode, &ids, &n) != 0) return EXIT_USAGE;
    /* as dam run: an id the vocabulary lacks is an error, not an empty line */
    const int vocab = tokenizer_vocab_size(t);
    for (int i = 0; i < n; i++)
        if (ids[i] >= vocab || !tokenizer_piece(t, ids[i])) {
            dam_fail("token id %d is out of range (vocabulary of %d)", ids[i], vocab);
            free(ids);
            return -1;
        }
    size_t len;
    char *text = tokenizer_decode_n(t, ids, n, a->skip_special, &len);
    free(ids);
    if (!text) return -1;
    fwrite(text, 1, len, stdout);
    putchar('\n');
    free(text);
    return 0;
}

int cmd_tokenize(int argc, char **argv) {
    struct tokenize_args a;
    int rc = parse_args(argc, argv, &a);
    if (rc) return rc > 0 ? EXIT_OK : EXIT_USAGE;
    struct tokenizer *t = load_tokenizer(a.model);
    if (!t) { cli_error("%s", dam_last_error()); return EXIT_ERROR; }
    if (a.decode) {
        rc = run_decode(t, &a);
        if (rc < 0) cli_error("%s", dam_last_error());
        tokenizer_free(t);
        return rc < 0 ? EXIT_ERROR : rc;
    }
    size_t len = 0;
    char *text = build_text(t, &a, &len);
    int *ids = NULL, n = 0;
    if (!text) rc = -1;
    else if (a.bench) rc = bench(t, text, len);
    else if (a.chat) rc = tokenizer_encode_chat(t, text, len, a.special, &ids, &n);
    else rc = tokenizer_encode(t, text, len, a.special, &ids, &n);
    if (rc == 0 && !a.bench) print_ids(t, ids, n, a.pieces);
    if (rc != 0) cli_error("%s", dam_last_error());
    free(ids);
    free(text);
    tokenizer_free(t);
    return rc == 0 ? EXIT_OK : EXIT_ERROR;
}
