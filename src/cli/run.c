/* run.c — `dam run`: generate from a prompt, streaming text to stdout.
 * Everything that is not generated text goes to stderr (timings, progress,
 * errors), so stdout can be piped. --json prints one object at the end. */
#include "cli.h"
#include "dam/common.h"
#include "dam/generate.h"
#include "dam/model.h"
#include "dam/session.h"
#include "dam/tokenizer.h"
#include <cjson/cJSON.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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
};

static volatile sig_atomic_t interrupt_flag;
static void on_sigint(int sig) { (void)sig; interrupt_flag = 1; }

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
        "  --truncate left|middle cut a prompt that does not fit (default: error)\n"
        "generation:\n"
        "  -n, --n-predict N      new tokens at most; -1 = until EOS or a full context (default -1)\n"
        "  --temp X               temperature; 0 = greedy (default %g)\n"
        "  --top-k N              keep the N most likely tokens; 0 = off (default %d)\n"
        "  --top-p X              nucleus sampling; 1 = off (default %g)\n"
        "  --min-p X              drop tokens below X times the best; 0 = off (default %g)\n"
        "  --repeat-penalty X     penalty for repeated tokens; 1 = off (default %g)\n"
        "  --repeat-last-n N      tokens the penalty looks back at; -1 = all (default %d)\n"
        "  --seed N               random seed (default: from the clock; printed with --json)\n"
        "  --stop STRING          stop when the text contains STRING (repeatable)\n"
        "  --ignore-eos           keep generating past end-of-sequence tokens\n"
        "output:\n"
        "  --json                 print one JSON object at the end instead of streaming\n"
        "  --print-ids            print the generated token ids instead of text\n"
        "  --version, -h/--help\n",
        d.temperature, d.top_k, d.top_p, d.min_p, d.repeat_penalty, d.repeat_last_n);
    model_args_help(out);
}

/* ---- flags ---- */

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
        else if (arg_is(f, "--ids")) { VALUE(); free(a->ids); if (arg_ids(f, v, &a->ids, &a->n_ids)) return -1; }
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
            long s;
            if (arg_long(f, v, 0, LONG_MAX, &s)) return -1;
            a->sampling.seed = (uint64_t)s; a->seed_given = 1;
        }
        else if (arg_is(f, "--stop")) {
            VALUE();
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
        else { cli_error("unknown flag '%s' for dam run (see dam run --help)", f); return -1; }
#undef VALUE
    }
    int inputs = (a->prompt != NULL) + (a->file != NULL) + (a->ids != NULL);
    if (inputs > 1) { cli_error("give only one of -p, -f and --ids"); return -1; }
    if (a->ids && a->chat) { cli_error("--chat needs text (-p or -f), not --ids"); return -1; }
    if ((a->system || a->chat_template) && !a->chat) { cli_error("--system and --chat-template need --chat"); return -1; }
    if (!a->seed_given) a->sampling.seed = (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 32);
    return 0;
}

/* ---- prompt ---- */

static char *read_prompt_file(const char *path, size_t *len) {
    if (strcmp(path, "-")) return read_file(path, len);
    size_t cap = 1 << 16, n = 0;
    char *buf = malloc(cap + 1);
    while (buf) {
        size_t got = fread(buf + n, 1, cap - n, stdin);
        n += got;
        if (n < cap) break;
        char *grown = realloc(buf, (cap *= 2) + 1);
        if (!grown) { free(buf); buf = NULL; break; }
        buf = grown;
    }
    if (!buf) { dam_fail("out of memory reading stdin"); return NULL; }
    if (ferror(stdin)) { free(buf); dam_fail("cannot read stdin"); return NULL; }
    buf[n] = 0;
    *len = n;
    return buf;
}

/* Text (from -p / -f, through the chat template) into token ids. */
static int tokenize_prompt(const struct run_args *a, const struct tokenizer *tok, int **ids, int *n) {
    size_t len = 0;
    char *text = a->file ? read_prompt_file(a->file, &len) : strdup(a->prompt ? a->prompt : "");
    if (!text) return -1;
    if (!a->file) len = strlen(text);
    if (a->chat) {
        char name[32];
        if (a->chat_template) snprintf(name, sizeof name, "%s", a->chat_template);
        else if (chat_template_detect(tok, name, sizeof name) != 0) { free(text); return -1; }
        /* without --system, follow the template's own default (SmolLM2's has one) */
        char *default_system = a->system ? NULL : chat_template_default_system(tok);
        char *templated = chat_format(name, a->system ? a->system : default_system, text);
        free(default_system);
        free(text);
        if (!templated) return -1;
        text = templated;
        len = strlen(text);
    }
    /* a chat template writes its own BOS: the _chat variant never doubles it */
    int rc = a->chat ? tokenizer_encode_chat(tok, text, len, 1, ids, n)
                     : tokenizer_encode(tok, text, len, 1, ids, n);
    free(text);
    return rc;
}

/* Cuts a prompt that does not leave room for the answer, as --truncate asks:
 * "left" drops the oldest tokens (keeping a leading BOS), "middle" drops the
 * middle. Room kept for generation: -n, or a quarter of the context for -1. */
static void truncate_prompt(int *ids, int *n, int n_ctx, int n_predict, const char *how, int bos) {
    int reserve = n_predict > 0 ? n_predict : n_ctx / 4;
    int target = n_ctx - reserve < 1 ? 1 : n_ctx - reserve;
    if (*n <= target) return;
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
};

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

/* Writes the text that can no longer become part of a stop string. */
static void flush_text(struct output *o, size_t upto) {
    if (!o->a->json && !o->a->print_ids && upto > o->printed) {
        fwrite(o->text + o->printed, 1, upto - o->printed, stdout);
        fflush(stdout);
    }
    if (upto > o->printed) o->printed = upto;
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

/* The detokenizer sees the end of the prompt first (its text discarded), so
 * the first generated token decodes as a continuation: SentencePiece models
 * strip the leading space of a stream's first token only. Special tokens
 * (BOS, EOS, chat markers) are not printed. */
static int start_detokenizer(struct output *o, const struct tokenizer *tok, const int *prompt, int n) {
    if (!(o->detok = detokenizer_new_opts(tok, 1))) return -1;
    for (int i = n > 8 ? n - 8 : 0; i < n; i++) detokenizer_push(o->detok, prompt[i]);
    return 0;
}

static int on_token(void *ctx, int id) {
    struct output *o = ctx;
    if (o->a->print_ids && !o->a->json) { printf("%s%d", o->printed++ ? " " : "", id); fflush(stdout); }
    if (!o->detok) return 0;
    if (append_text(o, detokenizer_push(o->detok, id))) return 1;
    for (int i = 0; i < o->a->n_stops; i++) {
        char *hit = strstr(o->text, o->a->stops[i]);
        if (hit) {
            o->len = (size_t)(hit - o->text);
            o->text[o->len] = 0;
            flush_text(o, o->len);
            return 1;
        }
    }
    flush_text(o, safe_length(o));
    return 0;
}

struct progress { double t0; int shown; };

static void on_prefill(void *ctx, int done, int total) {
    struct progress *p = ctx;
    double s = (now_ms() - p->t0) / 1000;
    fprintf(stderr, "\rprompt: %d / %d tokens (%.0f tokens/s)", done, total, s > 0 ? done / s : 0.0);
    if (done == total) fprintf(stderr, "\r\033[K");
    p->shown = 1;
}

static void print_timings(double load_ms, const struct model *m, const struct gen_result *r, double total_ms,
                          const char *attn, const struct attn_stats *st) {
    fprintf(stderr, "\n");
    if (m->quant != QUANT_NONE)
        fprintf(stderr, "load time        = %10.2f ms (weights %s, %.1f MiB, quantized in %.0f ms)\n", load_ms,
                quant_name(m->quant), m->weight_bytes / 1048576.0, m->quant_ms);
    else
        fprintf(stderr, "load time        = %10.2f ms (weights as stored, %.1f MiB)\n", load_ms, m->weight_bytes / 1048576.0);
    fprintf(stderr, "prompt eval time = %10.2f ms / %5d tokens (%8.2f ms per token, %8.2f tokens per second)\n",
            r->prompt_ms, r->n_prompt, r->n_prompt ? r->prompt_ms / r->n_prompt : 0,
            r->prompt_ms > 0 ? 1e3 * r->n_prompt / r->prompt_ms : 0);
    fprintf(stderr, "eval time        = %10.2f ms / %5d runs   (%8.2f ms per token, %8.2f tokens per second)\n",
            r->eval_ms, r->n_eval, r->n_eval ? r->eval_ms / r->n_eval : 0,
            r->eval_ms > 0 ? 1e3 * r->n_eval / r->eval_ms : 0);
    fprintf(stderr, "total time       = %10.2f ms / %5d tokens\n", total_ms, r->n_prompt + r->n_generated);
    fprintf(stderr, "attention        = %s: sparsity %.3f, KV cache %.2f MiB (full attention: %.2f MiB)",
            attn, st->sparsity, st->kv_bytes / 1048576.0, st->kv_bytes_full / 1048576.0);
    if (st->fallback_heads) fprintf(stderr, ", %d heads on fallback", st->fallback_heads);
    fprintf(stderr, "\nstop             = %s\n", stop_reason_name(r->stop));
}

static void print_json(const struct run_args *a, const char *model_dir, const struct model *m, const struct output *o,
                       const struct gen_result *r, double load_ms, double total_ms,
                       const struct attn_stats *st) {
    cJSON *j = cJSON_CreateObject();
    cJSON_AddStringToObject(j, "model", model_dir);
    cJSON_AddStringToObject(j, "attn", a->model.attn);
    cJSON_AddStringToObject(j, "weights", quant_name(m->quant));
    cJSON_AddStringToObject(j, "kv_type", kv_type_name(a->model.attn_opts.kv_type));
    cJSON_AddNumberToObject(j, "weight_bytes", (double)m->weight_bytes);
    cJSON_AddStringToObject(j, "text", o->text ? o->text : "");
    cJSON *ids = cJSON_AddArrayToObject(j, "ids");
    for (int i = 0; i < r->n_generated; i++) cJSON_AddItemToArray(ids, cJSON_CreateNumber(r->tokens[i]));
    cJSON_AddNumberToObject(j, "prompt_tokens", r->n_prompt);
    cJSON_AddNumberToObject(j, "generated_tokens", r->n_generated);
    cJSON_AddStringToObject(j, "stop_reason", stop_reason_name(r->stop));
    cJSON_AddNumberToObject(j, "seed", (double)a->sampling.seed);
    cJSON *t = cJSON_AddObjectToObject(j, "timings");
    cJSON_AddNumberToObject(t, "load_ms", load_ms);
    cJSON_AddNumberToObject(t, "quantize_ms", m->quant_ms);
    cJSON_AddNumberToObject(t, "prompt_ms", r->prompt_ms);
    cJSON_AddNumberToObject(t, "prompt_tokens_per_second", r->prompt_ms > 0 ? 1e3 * r->n_prompt / r->prompt_ms : 0);
    cJSON_AddNumberToObject(t, "eval_ms", r->eval_ms);
    cJSON_AddNumberToObject(t, "eval_runs", r->n_eval);
    cJSON_AddNumberToObject(t, "eval_tokens_per_second", r->eval_ms > 0 ? 1e3 * r->n_eval / r->eval_ms : 0);
    cJSON_AddNumberToObject(t, "total_ms", total_ms);
    cJSON *s = cJSON_AddObjectToObject(j, "attn_stats");
    cJSON_AddNumberToObject(s, "sparsity", st->sparsity);
    cJSON_AddNumberToObject(s, "kept_pairs", st->kept_pairs);
    cJSON_AddNumberToObject(s, "causal_pairs", st->causal_pairs);
    cJSON_AddNumberToObject(s, "kv_bytes", (double)st->kv_bytes);
    cJSON_AddNumberToObject(s, "kv_bytes_full", (double)st->kv_bytes_full);
    cJSON_AddNumberToObject(s, "fallback_heads", st->fallback_heads);
    char *text = cJSON_Print(j);
    printf("%s\n", text);
    free(text);
    cJSON_Delete(j);
}

/* ---- the command ---- */

int cmd_run(int argc, char **argv) {
    double t_start = now_ms();
    struct run_args a = { .n_predict = -1 };
    if (model_args_default(&a.model, NULL)) return EXIT_ERROR;  /* NULL: picked for the model */
    sampler_params_default(&a.sampling);
    int pr = parse_args(&a, argc, argv);
    if (pr != 0) { free(a.ids); return pr > 0 ? EXIT_OK : EXIT_USAGE; }
    model_args_apply_threads(&a.model);

    int rc = EXIT_ERROR, *prompt = NULL, n_prompt = 0;
    struct model *m = NULL;
    struct tokenizer *tok = NULL;
    struct session *s = NULL;
    struct output out = { .a = &a };
    struct gen_result res = { 0 };
    char dir[PATH_MAX], tok_path[PATH_MAX + 32];

    if (model_resolve_dir(a.model.model, dir, sizeof dir) != 0) goto fail;
    snprintf(tok_path, sizeof tok_path, "%s/tokenizer.json", dir);
    int has_tokenizer = is_file(tok_path);
    if (!a.ids && !has_tokenizer) {
        dam_fail("%s has no tokenizer.json: give the prompt as token ids (--ids)", dir);
        goto fail;
    }
    if (!(m = model_args_load(&a.model, dir))) goto fail;
    if (has_tokenizer && !(tok = tokenizer_load(dir))) goto fail;

    if (a.ids) {
        prompt = a.ids; a.ids = NULL; n_prompt = a.n_ids;
    } else if (tokenize_prompt(&a, tok, &prompt, &n_prompt) != 0) {
        goto fail;
    }
    if (n_prompt == 0) {
        dam_fail("the prompt is empty and the tokenizer adds no tokens (such as BOS): nothing to generate from");
        goto fail;
    }
    int n_ctx = a.model.n_ctx ? a.model.n_ctx : m->cfg.max_seq_len;
    if (a.truncate) truncate_prompt(prompt, &n_prompt, n_ctx, a.n_predict, a.truncate, m->cfg.bos_id);
    if (n_prompt > n_ctx) {
        dam_fail("the prompt has %d tokens but the context holds %d (raise -c or use --truncate left|middle)",
                 n_prompt, n_ctx);
        goto fail;
    }
    if (!a.model.attn) a.model.attn = attn_sparse_default_for(m);   /* dam (dma on Doge models) */
    if (!(s = session_new(m, attn_find(a.model.attn), &a.model.attn_opts, n_ctx))) goto fail;
    /* load time includes the session: KV cache, and DAM's calibration when its
     * profile is not cached yet (as llama.cpp counts context creation) */
    double load_ms = now_ms() - t_start;
    if (tok && start_detokenizer(&out, tok, prompt, n_prompt) != 0) goto fail;

    struct progress prog = { .t0 = now_ms() };
    struct gen_params gp = {
        .n_predict = a.n_predict, .sampling = a.sampling, .ignore_eos = a.ignore_eos,
        .on_token = on_token, .ctx = &out, .interrupt = &interrupt_flag,
    };
    if (isatty(STDERR_FILENO) && !a.json) { gp.on_prefill = on_prefill; gp.prefill_ctx = &prog; }
    struct sigaction sa = { .sa_handler = on_sigint }, old;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, &old);
    int grc = generate(s, prompt, n_prompt, &gp, &res);
    sigaction(SIGINT, &old, NULL);
    if (grc != 0) goto fail;
    if (out.detok) append_text(&out, detokenizer_flush(out.detok));
    flush_text(&out, out.len);
    if (a.print_ids && !a.json) printf("\n");
    else if (!a.json && out.len && out.text[out.len - 1] != '\n') printf("\n");
    fflush(stdout);

    struct attn_stats st = { 0 };
    s->attn->stats(s->attn_state, &st);
    double total_ms = now_ms() - t_start;
    if (a.json) print_json(&a, dir, m, &out, &res, load_ms, total_ms, &st);
    else print_timings(load_ms, m, &res, total_ms, a.model.attn, &st);
    rc = res.stop == STOP_INTERRUPT ? 130 : EXIT_OK;
    goto done;
fail:
    cli_error("%s", dam_last_error());
done:
    gen_result_free(&res);
    if (out.detok) detokenizer_free(out.detok);
    free(out.text);
    session_free(s);
    tokenizer_free(tok);
    model_free(m);
    free(prompt);
    free(a.ids);
    return rc;
}
