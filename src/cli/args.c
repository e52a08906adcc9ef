/* args.c — flag parsing shared by the subcommands. Every bad value is a
 * one-line error naming the flag, the value and what was expected. */
#include "cli.h"
#include "dam/common.h"
#include "dam/dam.h"
#include "dam/model.h"
#include "dam/threads.h"
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <omp.h>
#include <unistd.h>

void cli_error(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "dam: ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n");
    va_end(ap);
}

/* "--temp=hot" names the flag --temp in messages */
#define FLAG(f) (int)strcspn(f, "="), f

int arg_long(const char *flag, const char *val, long min, long max, long *out) {
    char *end;
    errno = 0;
    long v = strtol(val, &end, 10);
    if (!*val || *end || errno) {
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
    if (!*val || *end || errno || !isfinite(v)) {
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
        if (end == p || errno || v < 0 || v > INT_MAX || (*end && *end != ',')) {
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

int check_output_path(const char *flag, const char *path) {
    char dir[4096];
    snprintf(dir, sizeof dir, "%s", path);
    char *slash = strrchr(dir, '/');
    if (slash == dir) dir[1] = 0;
    else if (slash) *slash = 0;
    else snprintf(dir, sizeof dir, ".");
    if (!*path || path[strlen(path) - 1] == '/' || is_dir(path)) {
        cli_error("cannot write %s: it is a folder, not a file name (%s)", path, flag);
        return -1;
    }
    if (!is_dir(dir) || access(dir, W_OK) != 0) {
        cli_error("cannot write %s: folder %s is missing or not writable", path, dir);
        return -1;
    }
    return 0;
}

int arg_is(const char *arg, const char *flag) {
    size_t n = strlen(flag);
    return !strncmp(arg, flag, n) && (arg[n] == 0 || (arg[n] == '=' && flag[1] == '-'));
}

const char *arg_value(int argc, char **argv, int *i) {
    const char *arg = argv[*i];
    const char *eq = arg[1] == '-' ? strchr(arg, '=') : NULL;
    if (eq) return eq + 1;
    if (*i + 1 >= argc) {
        cli_error("%s needs a value", arg);
        return NULL;
    }
    return argv[++*i];
}

/* ---- flags of every command that runs a model ---- */

int model_args_default(struct model_args *a, const char *default_attn) {
    memset(a, 0, sizeof *a);
    a->attn = default_attn;
    attn_options_default(&a->attn_opts);
    char path[4096];
    if (dam_find_data_file("configs/dam.json", path, sizeof path) != 0) return 0;  /* built-in copy */
    if (dam_options_load(path, &a->attn_opts) != 0) {
        cli_error("%s", dam_last_error());
        return -1;
    }
    return 0;
}

static int set_string(const char *flag, const char *val, char *dst, size_t size) {
    if (strlen(val) >= size) { cli_error("value of %s is too long", flag); return -1; }
    snprintf(dst, size, "%s", val);
    return 0;
}

int model_args_parse(struct model_args *a, int argc, char **argv, int *i) {
    const char *f = argv[*i], *v;
    struct attn_options *o = &a->attn_opts;
#define VALUE() do { if (!(v = arg_value(argc, argv, i))) return -1; } while (0)
    if (arg_is(f, "-m") || arg_is(f, "--model")) { VALUE(); a->model = v; return 1; }
    if (arg_is(f, "-t") || arg_is(f, "--threads")) { VALUE(); return arg_int("-t", v, 1, 1024, &a->threads) ? -1 : 1; }
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
    if (arg_is(f, "--window-sinks")) { VALUE(); return arg_int(f, v, 0, 1 << 24, &o->window_sinks) ? -1 : 1; }
    if (arg_is(f, "--window-size")) { VALUE(); return arg_int(f, v, 1, 1 << 24, &o->window_size) ? -1 : 1; }
    if (arg_is(f, "--dam-pcl")) { VALUE(); return arg_int(f, v, 2, 1 << 16, &o->dam_pcl) ? -1 : 1; }
    if (arg_is(f, "--dam-lambda")) { VALUE(); return arg_float(f, v, 0, 2, &o->dam_lambda) ? -1 : 1; }
    if (arg_is(f, "--dam-tau")) { VALUE(); return arg_float(f, v, 0, 100, &o->dam_tau) ? -1 : 1; }
    if (arg_is(f, "--dam-mu")) { VALUE(); return arg_float(f, v, 0, 1, &o->dam_mu) ? -1 : 1; }
    if (arg_is(f, "--dam-min-support")) { VALUE(); return arg_int(f, v, 0, 1 << 16, &o->dam_min_support) ? -1 : 1; }
    if (arg_is(f, "--dam-min-coverage")) { VALUE(); return arg_float(f, v, 0, 1, &o->dam_min_coverage) ? -1 : 1; }
    if (arg_is(f, "--dam-fallback")) {
        VALUE();
        if (strcmp(v, "full") && strcmp(v, "window") && strcmp(v, "none")) {
            cli_error("bad value for --dam-fallback: '%s' (expected full, window or none)", v);
            return -1;
        }
        return set_string(f, v, o->dam_fallback, sizeof o->dam_fallback) ? -1 : 1;
    }
    if (arg_is(f, "--dam-fallback-window")) { VALUE(); return arg_int(f, v, 1, 1 << 24, &o->dam_fallback_window) ? -1 : 1; }
    if (arg_is(f, "--dam-capture")) {
        VALUE();
        if (strcmp(v, "profile") && strcmp(v, "auto") && strcmp(v, "prompt")) {
            cli_error("bad value for --dam-capture: '%s' (expected profile, auto or prompt)", v);
            return -1;
        }
        return set_string(f, v, o->dam_capture, sizeof o->dam_capture) ? -1 : 1;
    }
    if (arg_is(f, "--dam-profile")) {
        VALUE();
        if (set_string(f, v, o->dam_profile, sizeof o->dam_profile)) return -1;
        snprintf(o->dam_capture, sizeof o->dam_capture, "profile");
        return 1;
    }
#undef VALUE
    return 0;
}

void model_args_help(FILE *out) {
    struct attn_options d;
    attn_options_default(&d);
    fprintf(out,
        "model and attention:\n"
        "  -m, --model DIR        model folder (default: $DAM_MODEL, else the embedded model)\n"
        "  -t, --threads N        threads (default: all cores)\n"
        "  -c, --ctx-size N       context size in tokens (default: the model's maximum)\n"
        "  --quant Q              quantize the weights at load: q8_0 or q4_0 (default none: as stored)\n"
        "  --kv-type T            KV cache elements of the full module: f32, f16 or bf16 (default f32)\n"
        "  --attn NAME            attention module: %s\n"
        "                         (default: dam run uses dam, or dma on Doge models; dam logits\n"
        "                         the model's exact attention: full, or dma on Doge models)\n"
        "  --window-sinks N       window: first positions always kept (default %d)\n"
        "  --window-size N        window: recent positions kept (default %d)\n"
        "  --dam-pcl N            dam: pattern capture length (default %d)\n"
        "  --dam-lambda X         dam: Box-Cox lambda (default %g)\n"
        "  --dam-tau X            dam: threshold on the amplified scale (default %g)\n"
        "  --dam-mu X             dam: pattern match threshold (default %g)\n"
        "  --dam-min-support N    dam: minimum cells of a pattern inside PCL (default PCL/4)\n"
        "  --dam-min-coverage X   dam: heads covering less of their true mask fall back (default %g)\n"
        "  --dam-fallback P       dam: fallback policy full|window|none (default %s)\n"
        "  --dam-fallback-window N  dam: window of the window fallback (default %d)\n"
        "  --dam-capture S        dam: profile|auto|prompt (default %s)\n"
        "  --dam-profile FILE     dam: use a profile made by dam calibrate\n",
        attn_names(), d.window_sinks, d.window_size, d.dam_pcl, d.dam_lambda, d.dam_tau,
        d.dam_mu, d.dam_min_coverage, d.dam_fallback, d.dam_fallback_window, d.dam_capture);
}

void model_args_apply_threads(const struct model_args *a) {
    if (a->threads <= 0) return;
    threads_set_count(a->threads);        /* the kernels' pool (include/dam/threads.h) */
    omp_set_num_threads(a->threads);      /* and OpenMP, which the dam module still uses */
}

struct model *model_args_load(const struct model_args *a, const char *dir) {
    struct model *m = model_load(dir);
    if (m && model_quantize(m, a->quant) != 0) { model_free(m); return NULL; }
    return m;
}
