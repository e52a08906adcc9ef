/* run.c — `dam run`: generate from a prompt, streaming text to stdout.
 * Everything that is not generated text goes to stderr (timings, progress,
 * errors), so stdout can be piped. --json prints one object at the end. */
#include "cli.h"
#include "conversation.h"
#include "dam/common.h"
#include "dam/generate.h"
#include "dam/model.h"
#include "dam/prompt_cache.h"
#include "dam/session.h"
#include "dam/threads.h"
#include "dam/tokenizer.h"
#include <cjson/cJSON.h>
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define MAX_STOPS 16

struct run_args {
    struct model_args model;
    const char *prompt;        /* -p */
    const char *file;          /* -f */
    int *ids, n_ids;           /* --ids */
    int chat;                  /* --chat */
    const char *system;        /* --system */
    const char *chat_template; /* --chat-template */
    int n_predict;             /* -n */
    struct sampler_params sampling;
    int seed_given;
    const char *stops[MAX_STOPS];
    int n_stops;
    const char *truncate;      /* NULL, "left", "middle" */
    int json, print_ids, ignore_eos, no_special;
    const char *prompt_cache;  /* --prompt-cache FILE */
    int prompt_cache_ro;       /* --prompt-cache-ro: read it, never write it */
    int interactive;           /* -i: questions from stdin, one answer each */
};

static volatile sig_atomic_t interrupt_flag;
static void on_sigint(int sig) { (void)sig; interrupt_flag = 1; }

/* Ctrl-C stops generation (and ends a read of stdin: no SA_RESTART) while
 * caught: around generation, and with -i for the whole conversation; while
 * loading or calibrating it ends the program as usual. */
static void catch_sigint(int on) {
    static struct sigaction old;
    if (on) {
        struct sigaction sa = { .sa_handler = on_sigint };
        sigemptyset(&sa.sa_mask);
        interrupt_flag = 0;
        sigaction(SIGINT, &sa, &old);
    } else {
        sigaction(SIGINT, &old, NULL);
    }
}

static void help(FILE *out) {
    struct sampler_params d;
    sampler_params_default(&d);
    fprintf(out,
        "usage: dam run [-m MODEL] (-p TEXT | -f FILE | --ids LIST) [options]\n"
        "input:\n"
        "  -p, --prompt TEXT      prompt text (\"\" = start from the tokens the tokenizer adds, e.g. BOS)\n"
        "  -f, --file FILE        read the prompt from a file (- = stdin)\n"
        "  --ids LIST             prompt as comma-separated token ids (no tokenizer needed)\n"
        "  --chat                 wrap the prompt in the model's chat template\n"
        "  --system TEXT          system message for --chat\n"
        "  --chat-template NAME   force a template: chatml, llama3, llama2\n"
        "  --truncate left|middle cut a prompt that does not fit, keeping room for -n (at most half\n"
        "                         the context) (default: error)\n"
        "  -i, --interactive      the prompt (-p, -f, --ids) is a document: read questions from stdin\n"
        "                         (each ends with an empty line or EOF), answer each in turn (chat\n"
        "                         turns with --chat) until EOF; Ctrl-C stops the current answer\n"
        "prompt cache:\n"
        "  --prompt-cache FILE    restore the prompt's longest cached prefix from FILE, and save\n"
        "                         the session there after the prompt (created when missing)\n"
        "  --prompt-cache-ro      use FILE but never write it\n"
        "generation:\n"
        "  -n, --n-predict N      new tokens at most; -1 = until EOS or a full context (default -1)\n"
        "  --temp X               temperature; 0 = greedy (default %g)\n"
        "  --top-k N              keep the N most likely tokens; 0 = off (default %d)\n"
        "  --top-p X              nucleus sampling; 1 = off (default %g)\n"
        "  --min-p X              drop tokens below X times the best; 0 = off (default %g)\n"
        "  --repeat-penalty X     penalty for repeated tokens; 1 = off (default %g)\n"
        "  --repeat-last-n N      tokens the penalty looks back at; -1 = all (default %d)\n"
        "  --seed N               random seed, 0 to 2^64-1 (default or -1: from the clock; printed\n"
        "                         with --json)\n"
        "  --stop STRING          stop when the text contains STRING (repeatable); the text, and the\n"
        "                         ids of --print-ids and --json, end before it\n"
        "  --ignore-eos           keep generating past end-of-sequence tokens\n"
        "output:\n"
        "  --json                 print one JSON object at the end instead of streaming\n"
        "  --print-ids            print the generated token ids instead of text (the default for a\n"
        "                         model without tokenizer.json)\n"
        "  --version, -h/--help\n",
        d.temperature, d.top_k, d.top_p, d.min_p, d.repeat_penalty, d.repeat_last_n);
    model_args_help(out);
}

/* ---- flags ---- */

/* -f names standard input: "-", or a path to the same file or pipe. */
static int is_stdin(const char *path) {
    struct stat a, b;
    if (!strcmp(path, "-")) return 1;
    return stat(path, &a) == 0 && fstat(STDIN_FILENO, &b) == 0 && a.st_dev == b.st_dev && a.st_ino == b.st_ino;
}

static int parse_args(struct run_args *a, int argc, char **argv) {
    const char *v;
    for (int i = 1; i < argc; i++) {
        const char *f = argv[i];
        int r = model_args_parse(&a->model, argc, argv, &i);
        if (r < 0) return -1;
        if (r > 0) continue;
#define VALUE() do { if (!(v = arg_value(argc, argv, &i))) return -1; } while (0)
        if (!strcmp(f, "-h") || !strcmp(f, "--help")) { help(stdout); return 1; }
        else if (!strcmp(f, "--version")) { printf("dam %s\n", DAM_VERSION); return 1; }
        else if (arg_is(f, "-p") || arg_is(f, "--prompt")) { VALUE(); a->prompt = v; }
        else if (arg_is(f, "-f") || arg_is(f, "--file")) { VALUE(); a->file = v; }
        else if (arg_is(f, "--ids")) { VALUE(); free(a->ids); a->ids = NULL; if (arg_ids(f, v, &a->ids, &a->n_ids)) return -1; }
        else if (!strcmp(f, "--chat")) a->chat = 1;
        else if (arg_is(f, "--system")) { VALUE(); a->system = v; }
        else if (arg_is(f, "--chat-template")) { VALUE(); a->chat_template = v; }
        else if (arg_is(f, "-n") || arg_is(f, "--n-predict")) { VALUE(); if (arg_int(f, v, -1, INT_MAX - 1, &a->n_predict)) return -1; }
        else if (arg_is(f, "--temp")) { VALUE(); if (arg_float(f, v, 0, 100, &a->sampling.temperature)) return -1; }
        else if (arg_is(f, "--top-k")) { VALUE(); if (arg_int(f, v, 0, INT_MAX, &a->sampling.top_k)) return -1; }
        else if (arg_is(f, "--top-p")) { VALUE(); if (arg_float(f, v, 0, 1, &a->sampling.top_p)) return -1; }
        else if (arg_is(f, "--min-p")) { VALUE(); if (arg_float(f, v, 0, 1, &a->sampling.min_p)) return -1; }
        else if (arg_is(f, "--repeat-penalty")) { VALUE(); if (arg_float(f, v, 0.01, 100, &a->sampling.repeat_penalty)) return -1; }
        else if (arg_is(f, "--repeat-last-n")) { VALUE(); if (arg_int(f, v, -1, INT_MAX, &a->sampling.repeat_last_n)) return -1; }
        else if (arg_is(f, "--seed")) {
            VALUE();
            /* -1 = from the clock, as in llama.cpp; else any 64-bit seed */
            a->seed_given = strcmp(v, "-1") != 0;
            if (a->seed_given && arg_u64(f, v, &a->sampling.seed)) return -1;
        }
        else if (arg_is(f, "--stop")) {
            if (!(v = arg_value_repeatable(argc, argv, &i))) return -1;
            if (!*v) { cli_error("bad value for --stop: empty string"); return -1; }
            if (a->n_stops == MAX_STOPS) { cli_error("at most %d --stop strings", MAX_STOPS); return -1; }
            a->stops[a->n_stops++] = v;
        }
        else if (arg_is(f, "--truncate")) {
            VALUE();
            if (strcmp(v, "left") && strcmp(v, "middle")) { cli_error("bad value for --truncate: '%s' (expected left or middle)", v); return -1; }
            a->truncate = v;
        }
        else if (!strcmp(f, "--json")) a->json = 1;
        else if (!strcmp(f, "--print-ids")) a->print_ids = 1;
        else if (!strcmp(f, "--ignore-eos")) a->ignore_eos = 1;
        else if (arg_is(f, "--prompt-cache")) { VALUE(); a->prompt_cache = v; }
        else if (!strcmp(f, "--prompt-cache-ro")) a->prompt_cache_ro = 1;
        else if (!strcmp(f, "-i") || !strcmp(f, "--interactive")) a->interactive = 1;
        else { cli_error("unknown flag '%s' for dam run (see dam run --help)", f); return -1; }
#undef VALUE
    }
    int inputs = (a->prompt != NULL) + (a->file != NULL) + (a->ids != NULL);
    if (inputs > 1) { cli_error("give only one of -p, -f and --ids"); return -1; }
    if (a->ids && a->chat) { cli_error("--chat needs text (-p or -f), not --ids"); return -1; }
    if ((a->system || a->chat_template) && !a->chat) { cli_error("--system and --chat-template need --chat"); return -1; }
    if (a->prompt_cache_ro && !a->prompt_cache) { cli_error("--prompt-cache-ro needs --prompt-cache FILE"); return -1; }
    if (a->prompt_cache && !*a->prompt_cache) { cli_error("bad value for --prompt-cache: empty file name"); return -1; }
    if (a->interactive && a->file && is_stdin(a->file)) {
        cli_error("-i reads the questions from standard input: the document cannot come from it too "
                  "(-f %s); give it as a file", a->file);
        return -1;
    }
    if (!a->seed_given) a->sampling.seed = (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 32);
    return 0;
}

/* ---- prompt ---- */

/* -p / -f, then (-i) the first question: with --chat in one user turn
 * after a blank line, else on a line of its own. Heap text. */
static char *prompt_text(const struct run_args *a, const char *question, size_t *len) {
    char *text = a->file ? read_input(a->file, len) : strdup(a->prompt ? a->prompt : "");
    if (!text) { if (!a->file) dam_fail("out of memory"); return NULL; }
    if (!a->file) *len = strlen(text);
    if (!question) return text;
    const char *sep = !*len ? "" : a->chat ? "\n\n" : text[*len - 1] == '\n' ? "" : "\n";
    const size_t ls = strlen(sep), lq = strlen(question);
    char *joined = realloc(text, *len + ls + lq + 1);
    if (!joined) { free(text); dam_fail("out of memory"); return NULL; }
    memcpy(joined + *len, sep, ls);
    memcpy(joined + *len + ls, question, lq + 1);
    *len += ls + lq;
    return joined;
}

/* Text (from -p / -f, the first question with -i, through the chat
 * template `chat` when not NULL) into token ids. */
static int tokenize_prompt(const struct run_args *a, const struct tokenizer *tok, const char *chat,
                           const char *question, int **ids, int *n) {
    size_t len = 0;
    char *text = prompt_text(a, question, &len);
    if (!text) return -1;
    if (chat) {
        /* without --system, follow the template's own default (SmolLM2's has one) */
        char *default_system = a->system ? NULL : chat_template_default_system(tok);
        char *templated = chat_format(chat, a->system ? a->system : default_system, text);
        free(default_system);
        free(text);
        if (!templated) return -1;
        text = templated;
        len = strlen(text);
    }
    /* a chat template writes its own BOS: the _chat variant never doubles it */
    int rc = chat ? tokenizer_encode_chat(tok, text, len, 1, ids, n)
                  : tokenizer_encode(tok, text, len, 1, ids, n);
    free(text);
    return rc;
}

/* Cuts a prompt that does not leave room for the answer, as --truncate asks:
 * "left" drops the oldest tokens (keeping a leading BOS), "middle" drops the
 * middle. Room kept for generation: -n, or a quarter of the context for -1,
 * but never more than half the context: a -n as long as the context would
 * otherwise leave a prompt of one token (generation still stops when the
 * context is full, and a warning says so). */
static void truncate_prompt(int *ids, int *n, int n_ctx, int n_predict, const char *how, int bos) {
    int reserve = n_predict > 0 ? n_predict : n_ctx / 4;
    const int capped = reserve > n_ctx / 2;
    if (capped) reserve = n_ctx / 2;
    int target = n_ctx - reserve < 1 ? 1 : n_ctx - reserve;
    if (*n <= target) return;
    if (capped)
        cli_warn("-n %d does not fit beside a prompt in the context of %d: the prompt keeps %d tokens and "
                 "generation stops when the context is full", n_predict, n_ctx, target);
    int keep_bos = bos >= 0 && ids[0] == bos && target > 1;
    if (!strcmp(how, "left")) {
        int tail = target - keep_bos;
        memmove(ids + keep_bos, ids + *n - tail, (size_t)tail * sizeof(int));
    } else {
        int head = target / 2, tail = target - head;
        memmove(ids + head, ids + *n - tail, (size_t)tail * sizeof(int));
    }
    fprintf(stderr, "dam: prompt of %d tokens cut to %d (--truncate %s)\n", *n, target, how);
    *n = target;
}

/* ---- output ---- */

struct output {
    const struct run_args *a;
    struct detokenizer *detok;
    char *text;                /* everything generated, as text */
    size_t len, cap, printed;  /* bytes of text already written to stdout */
    int *ids;                  /* (n_ids) the generated ids */
    size_t *ends;              /* (n_ids) text length once each of them was pushed */
    int n_ids, ids_cap;
    int n_kept;                /* ids before the stop string (all when none matched) */
    int ids_printed;           /* --print-ids: ids written so far */
    int failed;                /* stdout failed: stop generating */
    double first_ms;           /* now_ms() at the first generated token, 0 before */
};

/* Ready for the next answer (-i). */
static void output_reset(struct output *o) {
    if (o->detok) detokenizer_free(o->detok);
    free(o->text);
    free(o->ids);
    free(o->ends);
    *o = (struct output){ .a = o->a };
}

static int append_text(struct output *o, const char *s) {
    size_t n = strlen(s);
    if (o->len + n + 1 > o->cap) {
        size_t cap = (o->len + n + 1) * 2;
        char *grown = realloc(o->text, cap);
        if (!grown) return -1;
        o->text = grown; o->cap = cap;
    }
    memcpy(o->text + o->len, s, n + 1);
    o->len += n;
    return 0;
}

/* Remembers each generated id and where the text stood after it: the ids
 * kept when a stop string matches are those whose text ends before it. */
static int note_id(struct output *o, int id) {
    if (o->n_ids == o->ids_cap) {
        int cap = o->ids_cap ? 2 * o->ids_cap : 64;
        int *ids = realloc(o->ids, (size_t)cap * sizeof *ids);
        if (ids) o->ids = ids;
        size_t *ends = ids ? realloc(o->ends, (size_t)cap * sizeof *ends) : NULL;
        if (!ends) return -1;
        o->ends = ends; o->ids_cap = cap;
    }
    o->ids[o->n_ids] = id;
    o->ends[o->n_ids++] = o->len;
    return 0;
}

/* Writes the text that can no longer become part of a stop string. */
static void flush_text(struct output *o, size_t upto) {
    if (!o->a->json && !o->a->print_ids && upto > o->printed)
        if (out_write(o->text + o->printed, upto - o->printed) != 0) o->failed = 1;
    if (upto > o->printed) o->printed = upto;
}

/* --print-ids: writes the ids whose text lies before `upto` (ids as they come
 * without a stop string; with one, an id waits until its text is safe). */
static void flush_ids(struct output *o, int upto) {
    if (!o->a->print_ids || o->a->json || upto <= o->ids_printed) return;
    for (; o->ids_printed < upto; o->ids_printed++)
        printf("%s%d", o->ids_printed ? " " : "", o->ids[o->ids_printed]);
    if (out_flush() != 0) o->failed = 1;
}

/* How much of the text is safe to print: everything except a tail that is
 * a prefix of some stop string. */
static size_t safe_length(const struct output *o) {
    size_t safe = o->len;
    for (int i = 0; i < o->a->n_stops; i++) {
        size_t sl = strlen(o->a->stops[i]);
        for (size_t k = sl - 1; k > 0; k--)
            if (k <= o->len && !memcmp(o->text + o->len - k, o->a->stops[i], k)) {
                if (o->len - k < safe) safe = o->len - k;
                break;
            }
    }
    return safe;
}

/* Ids whose text ends at or before byte `at`. The safe length never goes
 * back (a stop prefix starting inside printed text would have held that text
 * back already), so the count starts from the ids already printed. */
static int ids_before(const struct output *o, size_t at) {
    int n = o->ids_printed;
    while (n < o->n_ids && o->ends[n] <= at) n++;
    return n;
}

/* The detokenizer sees the end of the prompt first (its text discarded), so
 * the first generated token decodes as a continuation: SentencePiece models
 * strip the leading space of a stream's first token only. What the prompt's
 * ids still hold back (the bytes of a character spelled as byte tokens,
 * control bytes) is dropped at the boundary: it is prompt text, never
 * output. Special tokens (BOS, EOS, chat markers) are not printed. */
static int start_detokenizer(struct output *o, const struct tokenizer *tok, const int *prompt, int n) {
    if (!(o->detok = detokenizer_new_opts(tok, 1))) return -1;
    for (int i = n > 8 ? n - 8 : 0; i < n; i++) detokenizer_push(o->detok, prompt[i]);
    detokenizer_cut(o->detok);
    return 0;
}

static int on_token(void *ctx, int id) {
    struct output *o = ctx;
    if (!o->first_ms) o->first_ms = now_ms();
    if (!o->detok) {                           /* no tokenizer: ids only */
        if (note_id(o, id)) return 1;
        o->n_kept = o->n_ids;
        flush_ids(o, o->n_ids);
        return o->failed;
    }
    if (append_text(o, detokenizer_push(o->detok, id)) || note_id(o, id)) return 1;
    for (int i = 0; i < o->a->n_stops; i++) {
        char *hit = strstr(o->text, o->a->stops[i]);
        if (hit) {
            o->len = (size_t)(hit - o->text);
            o->text[o->len] = 0;
            o->n_kept = ids_before(o, o->len);
            flush_text(o, o->len);
            flush_ids(o, o->n_kept);
            return 1;
        }
    }
    size_t safe = safe_length(o);
    o->n_kept = o->n_ids;
    flush_text(o, safe);
    flush_ids(o, ids_before(o, safe));
    return o->failed;
}

struct progress { double t0; int shown; };

static void on_prefill(void *ctx, int done, int total) {
    struct progress *p = ctx;
    double s = (now_ms() - p->t0) / 1000;
    fprintf(stderr, "\rprompt: %d / %d tokens (%.0f tokens/s)", done, total, s > 0 ? done / s : 0.0);
    if (done == total) fprintf(stderr, "\r\033[K");
    p->shown = 1;
}

/* The prompt cache of a run: the file, and what loading and saving it did
 * (the first prompt only). */
struct cache_use {
    const char *path;
    int read_only;
    const struct attn_options *opts;
    const int *tokens;             /* the prompt: the checkpoint saves its first positions */
    struct prompt_cache_result loaded, saved;
    int did_save;
};

/* The checkpoint of generate: the session holds the save point. */
static int save_checkpoint(void *ctx, struct session *s) {
    struct cache_use *c = ctx;
    if (prompt_cache_save(s, c->opts, c->path, c->tokens, &c->saved)) return -1;
    c->did_save = 1;
    return 0;
}

/* What one answer reports (timings, figures). */
struct report {
    const struct model *m;
    double load_ms, total_ms;
    double first_ms;               /* prompt start (cache load included) to the first token; < 0: none */
    int n_past;                    /* prompt tokens the session held already */
    const struct gen_result *r;
    const struct cache_use *cache; /* NULL: no prompt cache for this answer */
    struct attn_stats st;
};

static void print_cache(const struct cache_use *c) {
    const double mib = 1048576.0;
    if (c->loaded.restored)
        fprintf(stderr, "prompt cache     = restored %d tokens from %s (%.2f MiB) in %.2f ms\n", c->loaded.restored,
                c->path, c->loaded.bytes / mib, c->loaded.ms);
    else
        fprintf(stderr, "prompt cache     = not used (%s)\n", c->loaded.note);
    if (c->did_save)
        fprintf(stderr, "prompt cache     = saved %d tokens to %s (%.2f MiB) in %.2f ms\n", c->saved.positions,
                c->path, c->saved.bytes / mib, c->saved.ms);
}

static void print_timings(const struct report *p, const char *attn) {
    const struct gen_result *r = p->r;
    const struct attn_stats *st = &p->st;
    /* a blank line parts the timings from the text on a terminal; in a log
     * file (stderr redirected) it would only be a stray first line */
    if (isatty(STDERR_FILENO)) fprintf(stderr, "\n");
    const struct model *m = p->m;
    if (m->quant != QUANT_NONE)
        fprintf(stderr, "load time        = %10.2f ms (weights %s, %.1f MiB, quantized in %.0f ms)\n", p->load_ms,
                quant_name(m->quant), m->weight_bytes / 1048576.0, m->quant_ms);
    else
        fprintf(stderr, "load time        = %10.2f ms (weights as stored, %.1f MiB)\n", p->load_ms,
                m->weight_bytes / 1048576.0);
    if (p->cache) print_cache(p->cache);
    fprintf(stderr, "prompt eval time = %10.2f ms / %5d tokens (%8.2f ms per token, %8.2f tokens per second)\n",
            r->prompt_ms, r->n_prompt, r->n_prompt ? r->prompt_ms / r->n_prompt : 0,
            r->prompt_ms > 0 ? 1e3 * r->n_prompt / r->prompt_ms : 0);
    fprintf(stderr, "eval time        = %10.2f ms / %5d runs   (%8.2f ms per token, %8.2f tokens per second)\n",
            r->eval_ms, r->n_eval, r->n_eval ? r->eval_ms / r->n_eval : 0,
            r->eval_ms > 0 ? 1e3 * r->n_eval / r->eval_ms : 0);
    fprintf(stderr, "total time       = %10.2f ms / %5d tokens\n", p->total_ms, r->n_prompt + r->n_generated);
    fprintf(stderr, "attention        = %s: sparsity %.3f, KV cache %.2f MiB (full attention: %.2f MiB)",
            attn, st->sparsity, st->kv_bytes / 1048576.0, st->kv_bytes_full / 1048576.0);
    if (st->selecting_heads)
        fprintf(stderr, ", %d heads select %.1f%% of the keys beyond their windows", st->selecting_heads,
                100 * st->selected_share);
    fprintf(stderr, "\nstop             = %s\n", stop_reason_name(r->stop));
}

static void json_cache(cJSON *j, const struct cache_use *c) {
    cJSON *o = cJSON_AddObjectToObject(j, "prompt_cache");
    cJSON_AddStringToObject(o, "file", c->path);
    cJSON_AddNumberToObject(o, "restored", c->loaded.restored);
    cJSON_AddStringToObject(o, "note", c->loaded.note);
    cJSON_AddNumberToObject(o, "load_ms", c->loaded.ms);
    cJSON_AddNumberToObject(o, "load_bytes", (double)c->loaded.bytes);
    cJSON_AddNumberToObject(o, "saved", c->did_save ? c->saved.positions : 0);
    cJSON_AddNumberToObject(o, "save_ms", c->did_save ? c->saved.ms : 0);
    cJSON_AddNumberToObject(o, "save_bytes", c->did_save ? (double)c->saved.bytes : 0);
}

static void print_json(const struct run_args *a, const char *model_dir, const struct output *o,
                       const struct report *p) {
    const struct gen_result *r = p->r;
    const struct attn_stats *st = &p->st;
    const struct model *m = p->m;
    cJSON *j = cJSON_CreateObject();
    cJSON_AddStringToObject(j, "model", model_dir);
    cJSON_AddStringToObject(j, "attn", a->model.attn);
    cJSON_AddStringToObject(j, "weights", quant_name(m->quant));
    cJSON_AddStringToObject(j, "kv_type", kv_type_name(a->model.attn_opts.kv_type));
    cJSON_AddNumberToObject(j, "weight_bytes", (double)m->weight_bytes);
    cJSON_AddStringToObject(j, "text", o->text ? o->text : "");
    /* the ids of the text: a stop string and the ids it is made of are not part of it */
    cJSON *ids = cJSON_AddArrayToObject(j, "ids");
    for (int i = 0; i < o->n_kept; i++) cJSON_AddItemToArray(ids, cJSON_CreateNumber(o->ids[i]));
    cJSON_AddNumberToObject(j, "prompt_tokens", r->n_prompt);
    cJSON_AddNumberToObject(j, "cached_tokens", p->n_past);
    cJSON_AddNumberToObject(j, "generated_tokens", o->n_kept);
    cJSON_AddStringToObject(j, "stop_reason", stop_reason_name(r->stop));
    char seed[24];                            /* a 64-bit seed exactly, not as a double */
    snprintf(seed, sizeof seed, "%llu", (unsigned long long)a->sampling.seed);
    cJSON_AddRawToObject(j, "seed", seed);
    cJSON_AddNumberToObject(j, "threads", threads_count());
    cJSON *t = cJSON_AddObjectToObject(j, "timings");
    cJSON_AddNumberToObject(t, "load_ms", p->load_ms);
    cJSON_AddNumberToObject(t, "quantize_ms", m->quant_ms);
    cJSON_AddNumberToObject(t, "prompt_ms", r->prompt_ms);
    cJSON_AddNumberToObject(t, "prompt_tokens_per_second", r->prompt_ms > 0 ? 1e3 * r->n_prompt / r->prompt_ms : 0);
    if (p->first_ms >= 0) cJSON_AddNumberToObject(t, "first_token_ms", p->first_ms);
    cJSON_AddNumberToObject(t, "eval_ms", r->eval_ms);
    cJSON_AddNumberToObject(t, "eval_runs", r->n_eval);
    cJSON_AddNumberToObject(t, "eval_tokens_per_second", r->eval_ms > 0 ? 1e3 * r->n_eval / r->eval_ms : 0);
    cJSON_AddNumberToObject(t, "total_ms", p->total_ms);
    if (p->cache) json_cache(j, p->cache);
    cJSON *s = cJSON_AddObjectToObject(j, "attn_stats");
    cJSON_AddNumberToObject(s, "sparsity", st->sparsity);
    cJSON_AddNumberToObject(s, "kept_pairs", st->kept_pairs);
    cJSON_AddNumberToObject(s, "causal_pairs", st->causal_pairs);
    cJSON_AddNumberToObject(s, "kv_bytes", (double)st->kv_bytes);
    cJSON_AddNumberToObject(s, "kv_bytes_full", (double)st->kv_bytes_full);
    cJSON_AddNumberToObject(s, "dense_heads", st->dense_heads);
    cJSON_AddNumberToObject(s, "selecting_heads", st->selecting_heads);
    cJSON_AddNumberToObject(s, "selected_share", st->selected_share);
    char *text = cJSON_Print(j);
    printf("%s\n", text);
    free(text);
    cJSON_Delete(j);
}

/* ---- the command ---- */

/* Where the prompt comes from, and what is printed, for a model folder with
 * or without tokenizer.json. */
static int check_inputs(struct run_args *a, const char *dir, int has_tokenizer) {
    if (!has_tokenizer) {
        if (!a->ids) return dam_fail("%s has no tokenizer.json: give the prompt as token ids (--ids)", dir);
        if (a->n_stops) return dam_fail("--stop needs text, and %s has no tokenizer.json", dir);
        if (a->interactive) return dam_fail("-i reads questions as text, and %s has no tokenizer.json", dir);
        if (!a->print_ids && !a->json) {
            cli_warn("%s has no tokenizer.json: printing the generated token ids (as --print-ids)", dir);
            a->print_ids = 1;
        }
        return 0;
    }
    if (!a->prompt && !a->file && !a->ids && !a->interactive)
        cli_warn("no prompt (-p, -f or --ids): generating from the tokens the tokenizer adds (BOS)");
    return 0;
}

/* What a run holds. */
struct run {
    struct run_args *a;
    char dir[PATH_MAX];            /* the model folder */
    struct model *m;
    struct tokenizer *tok;
    struct session *s;
    char chat[32];                 /* the chat template's name, with --chat */
    struct conversation conv;      /* the prompt, then (-i) answers and questions */
    struct output out;
    struct cache_use cache;
    double t_start, load_ms;
    enum stop_reason stop;         /* of the last answer */
};

/* The first prompt into the conversation: -p / -f / --ids, with -i the
 * first question; cut (--truncate) or refused when it does not fit. */
static int first_prompt(struct run *r, const char *question, int n_ctx) {
    struct run_args *a = r->a;
    int *ids = NULL, n = 0, rc;
    const int given_ids = a->ids != NULL;
    if (given_ids) {
        ids = a->ids; a->ids = NULL; n = a->n_ids;
    } else if (tokenize_prompt(a, r->tok, a->chat ? r->chat : NULL, question, &ids, &n) != 0) {
        return -1;
    }
    /* text: the question is in it; ids: it follows them */
    rc = conversation_append(&r->conv, ids, n, given_ids ? NULL : question);
    free(ids);
    if (rc) return -1;
    if (question && given_ids && conversation_ask(&r->conv, question)) return -1;
    if (r->conv.n == 0)
        return dam_fail("the prompt is empty and the tokenizer adds no tokens (such as BOS): nothing to generate from");
    if (a->truncate) truncate_prompt(r->conv.ids, &r->conv.n, n_ctx, a->n_predict, a->truncate, r->m->cfg.bos_id);
    if (r->conv.n > n_ctx)
        return dam_fail("the prompt has %d tokens but the context holds %d (raise -c or use --truncate left|middle)",
                        r->conv.n, n_ctx);
    return 0;
}

/* The next question from stdin (-i); NULL at its end or on Ctrl-C
 * (*interrupted; SIGINT caught by the caller). A prompt on stderr when both
 * are terminals. */
static char *next_question(int *interrupted) {
    if (isatty(STDIN_FILENO) && isatty(STDERR_FILENO)) {
        fprintf(stderr, "> ");
        fflush(stderr);
    }
    char *q = read_question(stdin);
    *interrupted = !q && errno == EINTR;
    return q;
}

/* The module, and --prompt-cache, checked before any work. */
static int check_attention(struct run *r) {
    struct run_args *a = r->a;
    if (!a->model.attn) a->model.attn = attn_sparse_default_for(r->m);   /* dam (dma on Doge models) */
    model_args_warn_unused(&a->model, a->model.attn);
    if (!strcmp(a->model.attn, "dam") && check_pcl(a->model.attn_opts.dam.pcl, &r->m->cfg)) return -1;
    if (a->prompt_cache && !strcmp(a->model.attn, "dam") && !strcmp(a->model.attn_opts.dam.capture, "prompt"))
        return dam_fail("--prompt-cache: dam with --dam-capture prompt builds its masks from the prompt "
                        "itself, which a cache cannot restore");
    return 0;
}

/* One answer: the conversation's tokens the session lacks (all of the first
 * prompt but what the prompt cache restores), then generation, the text on
 * stdout, the figures on stderr (or --json). 0 ok, -1 error, 1 stdout
 * failed (main says so). */
static int answer(struct run *r, int first) {
    struct run_args *a = r->a;
    struct session *s = r->s;
    struct cache_use *cache = first && a->prompt_cache ? &r->cache : NULL;
    struct gen_result res = { 0 };
    const double t0 = now_ms();
    output_reset(&r->out);
    if (cache) {
        cache->tokens = r->conv.ids;
        if (prompt_cache_load(s, cache->opts, cache->path, r->conv.ids, r->conv.n, &cache->loaded)) return -1;
    }
    const int n_past = s->pos;
    if (r->tok && start_detokenizer(&r->out, r->tok, r->conv.ids, r->conv.n) != 0) return -1;
    struct progress prog = { .t0 = now_ms() };
    struct gen_params gp = {
        .n_predict = a->n_predict, .sampling = a->sampling, .ignore_eos = a->ignore_eos,
        .on_token = on_token, .ctx = &r->out, .interrupt = &interrupt_flag, .n_past = n_past,
    };
    if (isatty(STDERR_FILENO) && !a->json) { gp.on_prefill = on_prefill; gp.prefill_ctx = &prog; }
    const int save_at = cache ? prompt_cache_point(s, r->conv.n) : 0;
    if (cache && !cache->read_only && save_at > n_past) {
        gp.checkpoint = save_at;
        gp.on_checkpoint = save_checkpoint;
        gp.checkpoint_ctx = cache;
    }
    if (!a->interactive) catch_sigint(1);      /* -i: caught for the whole conversation */
    interrupt_flag = 0;
    int grc = generate(s, r->conv.ids, r->conv.n, &gp, &res);
    if (!a->interactive) catch_sigint(0);
    if (grc != 0) { gen_result_free(&res); return -1; }
    struct output *out = &r->out;
    if (out->detok) append_text(out, detokenizer_flush(out->detok));
    flush_text(out, out->len);
    flush_ids(out, out->n_kept);
    if (a->print_ids && !a->json) printf("\n");
    else if (!a->json && out->len && out->text[out->len - 1] != '\n') printf("\n");
    /* stdout failed (a full disk, a closed pipe): main says so and exits 1 */
    if (out_flush() != 0) { gen_result_free(&res); return 1; }

    struct report rep = {
        .m = r->m, .load_ms = r->load_ms, .total_ms = now_ms() - (first ? r->t_start : t0),
        .first_ms = out->first_ms ? out->first_ms - t0 : -1, .n_past = n_past, .r = &res, .cache = cache,
    };
    s->attn->stats(s->attn_state, &rep.st);
    if (a->json) print_json(a, r->dir, out, &rep);
    else print_timings(&rep, a->model.attn);
    r->stop = res.stop;
    int rc = conversation_append(&r->conv, res.tokens, res.n_generated, out->text);
    gen_result_free(&res);
    return rc;
}

int cmd_run(int argc, char **argv) {
    struct run_args a = { .n_predict = -1 };
    struct run r = { .a = &a, .t_start = now_ms(), .out = { .a = &a } };
    if (model_args_default(&a.model, NULL)) return EXIT_ERROR;  /* NULL: picked for the model */
    sampler_params_default(&a.sampling);
    int pr = parse_args(&a, argc, argv);
    if (pr == 0 && model_args_finish(&a.model) != 0) pr = -1;
    if (pr != 0) { free(a.ids); return pr > 0 ? EXIT_OK : EXIT_USAGE; }

    int rc = EXIT_ERROR, interrupted = 0, caught = 0;
    char tok_path[PATH_MAX + 32], *question = NULL;

    r.cache = (struct cache_use){ .path = a.prompt_cache, .read_only = a.prompt_cache_ro, .opts = &a.model.attn_opts };
    if (a.prompt_cache && prompt_cache_check(a.prompt_cache, a.prompt_cache_ro)) goto fail;
    if (model_resolve_dir(a.model.model, r.dir, sizeof r.dir) != 0) goto fail;
    snprintf(tok_path, sizeof tok_path, "%s/tokenizer.json", r.dir);
    int has_tokenizer = is_file(tok_path);
    if (check_inputs(&a, r.dir, has_tokenizer) != 0) goto fail;
    if (!(r.m = model_args_load(&a.model, r.dir))) goto fail;
    if (has_tokenizer && !(r.tok = tokenizer_load(r.dir))) goto fail;
    if (a.chat) {
        if (a.chat_template) snprintf(r.chat, sizeof r.chat, "%s", a.chat_template);
        else if (chat_template_detect(r.tok, r.chat, sizeof r.chat) != 0) goto fail;
    }
    r.conv = (struct conversation){ .tok = r.tok, .chat = a.chat ? r.chat : NULL };
    if (a.interactive) {
        catch_sigint(1);
        question = next_question(&interrupted);
        catch_sigint(0);
        if (!question) { rc = interrupted ? 130 : EXIT_OK; goto done; }   /* no question at all */
    }
    int n_ctx = a.model.n_ctx ? a.model.n_ctx : r.m->cfg.max_seq_len;
    if (a.model.n_ctx) warn_past_trained(n_ctx, &r.m->cfg, "-c");
    if (first_prompt(&r, question, n_ctx) != 0 || check_attention(&r) != 0) goto fail;
    if (attn_prepare(attn_find(a.model.attn), &a.model.attn_opts, r.m, r.tok)) goto fail;
    if (!(r.s = session_new(r.m, attn_find(a.model.attn), &a.model.attn_opts, n_ctx))) goto fail;
    /* load time includes the session: KV cache, and DAM's calibration when its
     * profile is not cached yet (as llama.cpp counts context creation) */
    r.load_ms = now_ms() - r.t_start;

    if (a.interactive) catch_sigint(caught = 1);
    for (int turn = 0;; turn++) {
        int arc = answer(&r, turn == 0);
        if (arc < 0) goto fail;
        if (arc > 0) goto done;                 /* stdout failed: main reports it */
        if (!a.interactive) { rc = r.stop == STOP_INTERRUPT ? 130 : EXIT_OK; goto done; }
        free(question);
        if (!(question = next_question(&interrupted))) { rc = interrupted ? 130 : EXIT_OK; goto done; }
        if (conversation_ask(&r.conv, question) != 0) goto fail;
    }
fail:
    cli_error("%s", dam_last_error());
done:
    if (caught) catch_sigint(0);
    free(question);
    output_reset(&r.out);
    conversation_free(&r.conv);
    attn_options_release(&a.model.attn_opts);
    session_free(r.s);
    tokenizer_free(r.tok);
    model_free(r.m);
    free(a.ids);
    return rc;
}
