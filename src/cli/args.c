/* args.c — flag parsing shared by the subcommands. Every bad value is a
 * one-line error naming the flag, the value and what was expected. */
#include "cli.h"
#include "dam/common.h"
#include "dam/dam.h"
#include "dam/model.h"
#include <ctype.h>
#include "dam/threads.h"
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

void cli_error(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "dam: ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n");
    va_end(ap);
}

void cli_warn(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "dam: warning: ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n");
    va_end(ap);
}

/* "--temp=hot" names the flag --temp in messages; a name that is not a flag
 * ("tau in 'dam:tau=abc'") is kept whole */
#define FLAG(f) (int)(f[0] == '-' ? strcspn(f, "=") : strlen(f)), f

/* strtol and strtod skip leading white space; the end of a value is never
 * skipped, so neither is its start: " 5" is as wrong as "5 ". */
static int starts_clean(const char *val) {
    return *val && !isspace((unsigned char)*val);
}

int arg_long(const char *flag, const char *val, long min, long max, long *out) {
    char *end;
    errno = 0;
    long v = strtol(val, &end, 10);
    if (!starts_clean(val) || *end || errno) {
        cli_error("bad value for %.*s: '%s' (expected an integer)", FLAG(flag), val);
        return -1;
    }
    if (v < min || v > max) {
        cli_error("bad value for %.*s: %ld (expected %ld to %ld)", FLAG(flag), v, min, max);
        return -1;
    }
    *out = v;
    return 0;
}

int arg_int(const char *flag, const char *val, int min, int max, int *out) {
    long v;
    if (arg_long(flag, val, min, max, &v) != 0) return -1;
    *out = (int)v;
    return 0;
}

int arg_float(const char *flag, const char *val, double min, double max, float *out) {
    char *end;
    errno = 0;
    double v = strtod(val, &end);
    if (!starts_clean(val) || *end || errno || !isfinite(v)) {
        cli_error("bad value for %.*s: '%s' (expected a number)", FLAG(flag), val);
        return -1;
    }
    if (v < min || v > max) {
        cli_error("bad value for %.*s: %g (expected %g to %g)", FLAG(flag), v, min, max);
        return -1;
    }
    *out = (float)v;
    return 0;
}

int arg_ids(const char *flag, const char *val, int **ids, int *n) {
    int cap = 16, count = 0;
    int *out = malloc(cap * sizeof *out);
    if (!out) { cli_error("out of memory"); return -1; }
    const char *p = val;
    while (*p) {
        char *end;
        errno = 0;
        long v = strtol(p, &end, 10);
        /* "1,,2", "1,2," and " 1" are all malformed lists */
        if (!starts_clean(p) || end == p || errno || v < 0 || v > INT_MAX || (*end && *end != ',') ||
            (*end == ',' && !end[1])) {
            cli_error("bad value for %.*s: '%s' (expected comma-separated token ids)", FLAG(flag), val);
            free(out);
            return -1;
        }
        if (count == cap) {
            int *grown = realloc(out, (cap *= 2) * sizeof *out);
            if (!grown) { free(out); cli_error("out of memory"); return -1; }
            out = grown;
        }
        out[count++] = (int)v;
        p = *end ? end + 1 : end;
    }
    if (count == 0) { cli_error("bad value for %.*s: no token ids", FLAG(flag)); free(out); return -1; }
    *ids = out;
    *n = count;
    return 0;
}

int arg_u64(const char *flag, const char *val, uint64_t *out) {
    char *end;
    errno = 0;
    unsigned long long v = strtoull(val, &end, 10);
    if (!starts_clean(val) || *val == '-' || *val == '+' || *end || errno) {
        cli_error("bad value for %.*s: '%s' (expected an integer 0 to %llu)", FLAG(flag), val,
                  (unsigned long long)UINT64_MAX);
        return -1;
    }
    *out = (uint64_t)v;
    return 0;
}

int check_output_path(const char *flag, const char *path) {
    if (output_check(path) == 0) return 0;
    cli_error("%s (%s)", dam_last_error(), flag);
    return -1;
}

int arg_is(const char *arg, const char *flag) {
    size_t n = strlen(flag);
    return !strncmp(arg, flag, n) && (arg[n] == 0 || (arg[n] == '=' && flag[1] == '-'));
}

const char *arg_value_repeatable(int argc, char **argv, int *i) {
    const char *arg = argv[*i];
    const char *eq = arg[1] == '-' ? strchr(arg, '=') : NULL;
    if (eq) return eq + 1;
    if (*i + 1 >= argc) {
        cli_error("%s needs a value", arg);
        return NULL;
    }
    return argv[++*i];
}

/* A flag given twice: the last value wins, as in llama.cpp, but not
 * silently. A long name and its short one are the same flag. */
static const char *const aliases[][2] = {
    { "--prompt", "-p" }, { "--n-prompt", "-p" }, { "--file", "-f" }, { "--model", "-m" },
    { "--threads", "-t" }, { "--ctx-size", "-c" }, { "--n-predict", "-n" }, { "--n-gen", "-n" },
    { "--output", "-o" }, { "--repetitions", "-r" }, { "--depth", "-d" },
};
#define MAX_SEEN 64
static char seen[MAX_SEEN][48];
static int n_seen;

static void note_flag(const char *arg, const char *value) {
    char name[48];
    snprintf(name, sizeof name, "%.*s", (int)strcspn(arg, "="), arg);
    for (size_t k = 0; k < sizeof aliases / sizeof aliases[0]; k++)
        if (!strcmp(name, aliases[k][0])) snprintf(name, sizeof name, "%s", aliases[k][1]);
    for (int i = 0; i < n_seen; i++)
        if (!strcmp(seen[i], name)) {
            cli_warn("%s is given more than once: the last value ('%s') is used", name, value);
            return;
        }
    if (n_seen < MAX_SEEN) memcpy(seen[n_seen++], name, sizeof name);
}

const char *arg_value(int argc, char **argv, int *i) {
    const char *arg = argv[*i];
    const char *v = arg_value_repeatable(argc, argv, i);
    if (v) note_flag(arg, v);
    return v;
}

/* ---- flags of every command that runs a model ---- */

int model_args_default(struct model_args *a, const char *default_attn) {
    memset(a, 0, sizeof *a);
    a->attn = default_attn;
    attn_options_default(&a->attn_opts);
    char path[4096];
    if (dam_find_data_file("configs/dam.json", path, sizeof path) != 0) return 0;  /* built-in copy */
    if (attn_options_load(path, &a->attn_opts) != 0) {
        cli_error("%s", dam_last_error());
        return -1;
    }
    return 0;
}

int model_args_parse(struct model_args *a, int argc, char **argv, int *i) {
    const char *f = argv[*i], *v;
    struct attn_options *o = &a->attn_opts;
#define VALUE() do { if (!(v = arg_value(argc, argv, i))) return -1; } while (0)
    if (arg_is(f, "-m") || arg_is(f, "--model")) { VALUE(); a->model = v; return 1; }
    if (arg_is(f, "-t") || arg_is(f, "--threads")) { VALUE(); return arg_int("-t", v, 1, 1024, &a->threads) ? -1 : 1; }
    if (!strcmp(f, "--oversubscribe")) { a->oversubscribe = 1; return 1; }
    if (arg_is(f, "-c") || arg_is(f, "--ctx-size")) { VALUE(); return arg_int("-c", v, 1, 1 << 24, &a->n_ctx) ? -1 : 1; }
    if (arg_is(f, "--attn")) {
        VALUE();
        if (!attn_find(v)) { cli_error("unknown attention module '%s' (available: %s)", v, attn_names()); return -1; }
        a->attn = v;
        return 1;
    }
    if (arg_is(f, "--quant")) {
        VALUE();
        if (quant_from_name(v, &a->quant) != 0) {
            cli_error("bad value for --quant: '%s' (expected %s)", v, quant_names());
            return -1;
        }
        return 1;
    }
    if (arg_is(f, "--kv-type")) {
        VALUE();
        if (kv_type_from_name(v, &o->kv_type) != 0) {
            cli_error("bad value for --kv-type: '%s' (expected f32, f16 or bf16)", v);
            return -1;
        }
        return 1;
    }
    /* a module's option: --MODULE-KEY VALUE, from the module's table */
    char name[64];
    const char *eq = strchr(f, '=');
    snprintf(name, sizeof name, "%.*s", (int)(eq ? (size_t)(eq - f) : strlen(f)), f);
    const struct attn_module *mod;
    const struct attn_opt *opt = attn_opt_for_flag(name, &mod);
    if (!opt) return 0;
    VALUE();
    for (int k = 0; attn_module_at(k) && k < 8; k++)      /* "has no effect" warnings */
        if (attn_module_at(k) == mod && !a->module_flag[k]) a->module_flag[k] = f;
    if (attn_opt_set(o, opt, v, name)) { cli_error("%s", dam_last_error()); return -1; }
    return 1;
#undef VALUE
}

void model_args_help(FILE *out) {
    struct attn_options d;
    attn_options_default(&d);
    fprintf(out,
        "model and attention:\n"
        "  -m, --model DIR        model folder (default: $DAM_MODEL, else the embedded model)\n"
        "  -t, --threads N        threads (default: all cores; at most the CPUs online)\n"
        "  --oversubscribe        keep a -t above the CPUs online (slower: threads wait on each other)\n"
        "  -c, --ctx-size N       context size in tokens (default: the model's maximum)\n"
        "  --quant Q              quantize the weights at load: q8_0, q4_0 or q4_k (default none: as stored)\n"
        "  --kv-type T            KV cache elements of full, window and dam: f32, f16 or bf16\n"
        "                         (default f32; 16-bit halves the KV bytes; dma keeps f32)\n"
        "  --attn NAME            attention module: %s\n"
        "                         (default: dam run uses dam, or dma on Doge models; dam logits\n"
        "                         the model's exact attention: full, or dma on Doge models)\n"
        "attention modules' options (defaults: configs/dam.json over the built-in values):\n",
        attn_names());
    attn_options_help(out, &d);
}

void model_args_apply_threads(const struct model_args *a) {
    if (a->threads <= 0) return;
    threads_set_count(a->threads);        /* the kernels' pool (include/dam/threads.h) */
}

struct model *model_args_load(const struct model_args *a, const char *dir) {
    struct model *m = model_load(dir);
    if (m && model_quantize(m, a->quant) != 0) { model_free(m); return NULL; }
    return m;
}

/* More threads than CPUs only makes threads wait for each other at every
 * parallel step (-t 16 on 2 cores decodes 4x slower than -t 1): -t is
 * capped at the CPUs this process may run on, with a warning, unless
 * --oversubscribe asks for it. */
static void cap_threads(struct model_args *a) {
    int cpus = threads_online();
    if (a->threads <= cpus || a->oversubscribe || cpus < 1) return;
    cli_warn("-t %d is more than the %d CPUs online: using %d (--oversubscribe keeps %d)",
             a->threads, cpus, cpus, a->threads);
    a->threads = cpus;
}

int model_args_finish(struct model_args *a) {
    const struct attn_options *o = &a->attn_opts;
    if (!strcmp(o->dam.capture, "profile") && !o->dam.profile[0]) {
        cli_error("--dam-capture profile needs --dam-profile FILE (a profile made by dam calibrate)");
        return -1;
    }
    cap_threads(a);
    model_args_apply_threads(a);
    return 0;
}

/* True when the comma-separated list of modules (each maybe with
 * ":key=value" options) names module. */
static int list_names(const char *list, const char *module) {
    size_t n = strlen(module);
    for (const char *p = list; p && *p; ) {
        size_t len = strcspn(p, ",:");
        if (len == n && !strncmp(p, module, n)) return 1;
        p += strcspn(p, ",");
        if (*p) p++;
    }
    return 0;
}

void model_args_warn_unused(const struct model_args *a, const char *modules) {
    for (int k = 0; attn_module_at(k) && k < 8; k++)
        if (a->module_flag[k] && !list_names(modules, attn_module_at(k)->name))
            cli_warn("%.*s has no effect: no %s attention runs (attention: %s)", FLAG(a->module_flag[k]),
                     attn_module_at(k)->name, modules);
}

void warn_past_trained(int positions, const struct model_config *cfg, const char *what) {
    if (positions > cfg->max_seq_len)
        cli_warn("%s: %d positions, more than the model's max_position_embeddings (%d); positions past %d "
                 "were never trained and the output may degrade", what, positions, cfg->max_seq_len,
                 cfg->max_seq_len);
}

int check_pcl(int pcl, const struct model_config *cfg) {
    if (pcl <= cfg->max_seq_len) return 0;
    return dam_fail("--dam-pcl %d is larger than the model's context (max_position_embeddings %d): "
                    "dam captures patterns over the first PCL positions (use at most %d)",
                    pcl, cfg->max_seq_len, cfg->max_seq_len);
}
