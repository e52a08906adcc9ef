/* bench.c — `dam bench`: prompt-processing and generation speed at several
 * context depths and attention modules, as a table like llama-bench's, with
 * each figure set against this machine's measured ceilings:
 *   pp  achieved GFLOP/s of the matrix products vs the peak FMA rate,
 *   tg  achieved GB/s (weights + keys/values read per token) vs the read
 *       bandwidth of a buffer of that size read over and over (a model
 *       that fits the caches, even in part, reads faster than memory: the
 *       256 MiB figure alone put the testbed's tg16 at 102% of it).
 * A ceiling is a measurement too: a rate above it means the ceiling was
 * measured low (a busy moment), and the rate itself becomes the ceiling
 * (100%, with a warning) — a fraction above 100% is never printed. */
#include "cli.h"
#include "dam/bench.h"
#include "dam/common.h"
#include "dam/kernels.h"
#include "dam/model.h"
#include "dam/session.h"
#include <cjson/cJSON.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MAX_LIST 32

static void help(FILE *out) {
    fprintf(out,
        "usage: dam bench [-m DIR] [-p 512] [-n 128] [-d 0,4096,8192] [--attn full,dam] [-r 3]\n"
        "                 [-t N] [-o md|csv|json]\n"
        "Prompt processing (pp: -p tokens in one call) and token generation (tg: -n tokens\n"
        "one by one) after the KV cache holds -d tokens (filled untimed), in tokens/s (mean\n"
        "± standard deviation over -r runs), with the attention sparsity, the KV-cache size,\n"
        "and what each rate achieves against this machine's memory read bandwidth (tg) and\n"
        "peak float32 FMA rate (pp), both measured first.\n"
        "  -p LIST                prompt lengths, comma-separated (default 512; 0 = no pp)\n"
        "  -n LIST                generation lengths (default 128; 0 = no tg)\n"
        "  -d LIST                context depths (default 0)\n"
        "  --attn LIST            attention modules (default full; available: %s)\n"
        "  -r N                   repetitions (default 3)\n"
        "  -o FORMAT              md (default), csv or json\n"
        "  --kernels              instead: the kernels alone against the peak FMA rate (the\n"
        "                         model's matrix products on a prefill chunk, and one layer's\n"
        "                         attention prefill over 0 .. d for each depth d > 0 of -d)\n",
        attn_names());
    model_args_help(out);
}

/* "0,4096,8192" -> values (each 0 .. max). */
static int int_list(const char *flag, const char *val, int max, int *out, int *n) {
    *n = 0;
    const char *p = val;
    do {
        char *end;
        long v = strtol(p, &end, 10);
        if (end == p || *p == ' ' || *p == '\t' || v < 0 || v > max || (*end && *end != ',') ||
            (*end == ',' && !end[1]) || *n == MAX_LIST) {
            cli_error("bad value for %s: '%s' (expected up to %d comma-separated integers 0..%d)",
                      flag, val, MAX_LIST, max);
            return -1;
        }
        out[(*n)++] = (int)v;
        p = *end ? end + 1 : end;
    } while (*p);
    return 0;
}

/* ---- formatting ---- */

struct row_id {
    const char *model, *attn;
    const char *weights;       /* "BF16" (as stored) or the --quant format */
    const char *kv;            /* KV cache elements: --kv-type, f32 for a module without it (dma) */
    size_t size;
    int64_t params;
    int threads;
};

static void human_bytes(char *buf, size_t size, double bytes) {
    if (bytes >= 1024.0 * 1024 * 1024) snprintf(buf, size, "%.2f GiB", bytes / (1024.0 * 1024 * 1024));
    else if (bytes >= 1024.0 * 1024) snprintf(buf, size, "%.2f MiB", bytes / (1024.0 * 1024));
    else snprintf(buf, size, "%.2f KiB", bytes / 1024.0);
}

static void test_name(char *buf, size_t size, const struct bench_result *r) {
    int n = snprintf(buf, size, "%s%d", r->kind == BENCH_PP ? "pp" : "tg", r->n_tokens);
    if (r->depth > 0) snprintf(buf + n, size - n, " @ d%d", r->depth);
}

static void machine_line(const struct bench_machine *mc) {
    printf("machine: %d threads, %s kernels, memory read %.1f GB/s, peak FMA %.1f GFLOP/s (float32); "
           "%d cores %.0f%% idle (the busier of before and after), load average %.2f\n\n", mc->threads, mc->isa, mc->read_gbs,
           mc->fma_gflops, mc->cores, 100 * mc->idle, mc->load_avg);
}

/* Other processes on the cores make every figure low and noisy (the
 * kernels' threads then use only the cores they leave: threads.h). */
static void warn_if_busy(const struct bench_machine *mc) {
    const double busy = mc->idle >= 0 ? (1 - mc->idle) * mc->cores : -1;   /* cores in use */
    if (busy > 0.5)
        fprintf(stderr, "dam bench: other processes use %.1f of the %d cores: the figures will be low and "
                "noisy\n", busy, mc->cores);
}

static void md_row(const struct row_id *id, const struct bench_result *r, double peak) {
    char size[32], kv[32], test[48], params[32];
    human_bytes(size, sizeof size, (double)id->size);
    human_bytes(kv, sizeof kv, (double)r->kv_bytes);
    test_name(test, sizeof test, r);
    if (id->params >= 1000000000) snprintf(params, sizeof params, "%.2f B", id->params / 1e9);
    else snprintf(params, sizeof params, "%.2f M", id->params / 1e6);
    printf("| %s | %s | %s | %s | %s | %s | %d | %s | %.2f ± %.2f | %.3f | %s | %.1f %s | %.1f%% |\n", id->model,
           id->weights, size, params, id->attn, id->kv, id->threads, test, r->ts_mean, r->ts_std, r->sparsity, kv,
           r->achieved, r->kind == BENCH_PP ? "GFLOP/s" : "GB/s", 100 * r->achieved / peak);
    out_flush();                 /* remembers a write error: main reports it */
}

static const char *csv_columns =
    "model,size_bytes,params,attn,threads,isa,test,n_prompt,n_gen,depth,reps,ts_mean,ts_std,"
    "sparsity,kv_bytes,kv_bytes_full,bytes_per_token,flops_per_token,flops_attn_per_token,"
    "achieved,achieved_unit,peak,peak_fraction,read_gbs,fma_gflops,load_avg,idle,peak_buffer_bytes,weights,kv_type";

static void csv_row(const struct row_id *id, const struct bench_result *r, const struct bench_machine *mc,
                    double peak, size_t peak_bytes) {
    char test[48];
    test_name(test, sizeof test, r);
    const int pp = r->kind == BENCH_PP;
    printf("\"%s\",%zu,%lld,%s,%d,%s,\"%s\",%d,%d,%d,%d,%.4f,%.4f,%.6f,%zu,%zu,%.0f,%.0f,%.0f,%.4f,%s,%.4f,%.6f,%.4f,%.4f,%.2f,%.3f,%zu,%s,%s\n",
           id->model, id->size, (long long)id->params, id->attn, id->threads, mc->isa, test,
           pp ? r->n_tokens : 0, pp ? 0 : r->n_tokens, r->depth, r->reps, r->ts_mean, r->ts_std,
           r->sparsity, r->kv_bytes, r->kv_bytes_full, r->bytes_per_token, r->flops_per_token,
           r->flops_attn_per_token, r->achieved, pp ? "GFLOP/s" : "GB/s", peak,
           r->achieved / peak, mc->read_gbs, mc->fma_gflops, mc->load_avg, mc->idle, peak_bytes, id->weights, id->kv);
    out_flush();                 /* remembers a write error: main reports it */
}

static cJSON *json_row(const struct row_id *id, const struct bench_result *r, double peak, size_t peak_bytes) {
    char test[48];
    test_name(test, sizeof test, r);
    const int pp = r->kind == BENCH_PP;
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "model", id->model);
    cJSON_AddNumberToObject(o, "size_bytes", (double)id->size);
    cJSON_AddNumberToObject(o, "params", (double)id->params);
    cJSON_AddStringToObject(o, "attn", id->attn);
    cJSON_AddStringToObject(o, "weights", id->weights);
    cJSON_AddStringToObject(o, "kv_type", id->kv);
    cJSON_AddNumberToObject(o, "threads", id->threads);
    cJSON_AddStringToObject(o, "test", test);
    cJSON_AddNumberToObject(o, "n_prompt", pp ? r->n_tokens : 0);
    cJSON_AddNumberToObject(o, "n_gen", pp ? 0 : r->n_tokens);
    cJSON_AddNumberToObject(o, "depth", r->depth);
    cJSON_AddNumberToObject(o, "reps", r->reps);
    cJSON_AddNumberToObject(o, "ts_mean", r->ts_mean);
    cJSON_AddNumberToObject(o, "ts_std", r->ts_std);
    cJSON_AddNumberToObject(o, "sparsity", r->sparsity);
    cJSON_AddNumberToObject(o, "kv_bytes", (double)r->kv_bytes);
    cJSON_AddNumberToObject(o, "kv_bytes_full", (double)r->kv_bytes_full);
    cJSON_AddNumberToObject(o, "bytes_per_token", r->bytes_per_token);
    cJSON_AddNumberToObject(o, "flops_per_token", r->flops_per_token);
    cJSON_AddNumberToObject(o, "flops_attn_per_token", r->flops_attn_per_token);
    cJSON_AddNumberToObject(o, "achieved", r->achieved);
    cJSON_AddStringToObject(o, "achieved_unit", pp ? "GFLOP/s" : "GB/s");
    cJSON_AddNumberToObject(o, "peak", peak);
    cJSON_AddNumberToObject(o, "peak_fraction", r->achieved / peak);
    /* tg: the size of the buffer whose read bandwidth is the ceiling */
    if (!pp) cJSON_AddNumberToObject(o, "peak_buffer_bytes", (double)peak_bytes);
    return o;
}

/* ---- the command ---- */

struct bench_opts {
    int p[MAX_LIST], n_p, n[MAX_LIST], n_n, d[MAX_LIST], n_d, reps;
    const char *attn[MAX_LIST];
    int n_attn;
    char attn_buf[256];
    enum { OUT_MD, OUT_CSV, OUT_JSON } format;
    int kernels;           /* --kernels */
};

static int parse_attn_list(struct bench_opts *o, const char *val) {
    if (strlen(val) >= sizeof o->attn_buf) { cli_error("value of --attn is too long"); return -1; }
    snprintf(o->attn_buf, sizeof o->attn_buf, "%s", val);
    o->n_attn = 0;
    for (char *save = NULL, *name = strtok_r(o->attn_buf, ",", &save); name; name = strtok_r(NULL, ",", &save)) {
        if (!attn_find(name)) {
            cli_error("unknown attention module '%s' (available: %s)", name, attn_names());
            return -1;
        }
        if (o->n_attn == MAX_LIST) { cli_error("too many modules in --attn"); return -1; }
        o->attn[o->n_attn++] = name;
    }
    if (o->n_attn == 0) { cli_error("--attn needs at least one module"); return -1; }
    return 0;
}

static int sort_ints(const void *a, const void *b) { return *(const int *)a - *(const int *)b; }

static int list_max(const int *v, int n) {
    int m = 0;
    for (int i = 0; i < n; i++) if (v[i] > m) m = v[i];
    return m;
}

/* The rows measured so far: printed at the end, against the machine's
 * ceilings measured before and after (the better of the two). */
struct row {
    struct row_id id;
    struct bench_result r;
    double peak;           /* the ceiling of this row (set_ceilings) */
    size_t peak_bytes;     /* tg: the buffer size it was measured at */
};
struct rows { struct row *v; int n, cap; };

static int rows_add(struct rows *rs, const struct row_id *id, const struct bench_result *r) {
    if (rs->n == rs->cap) {
        int cap = rs->cap ? 2 * rs->cap : 16;
        struct row *v = realloc(rs->v, (size_t)cap * sizeof *v);
        if (!v) return dam_fail("out of memory");
        rs->v = v;
        rs->cap = cap;
    }
    rs->v[rs->n].id = *id;
    rs->v[rs->n++].r = *r;
    return 0;
}

/* Every test of one module, depths ascending (each depth's fill extends the last). */
static int bench_module(const struct model *m, const struct model_args *ma, const struct bench_opts *o,
                        const char *attn, const struct row_id *id_base, struct rows *rows) {
    const int n_ctx = list_max(o->d, o->n_d) + (list_max(o->p, o->n_p) > list_max(o->n, o->n_n)
                                                   ? list_max(o->p, o->n_p) : list_max(o->n, o->n_n));
    if (ma->n_ctx && ma->n_ctx < n_ctx)
        return dam_fail("-c %d is too small: the largest test needs %d positions", ma->n_ctx, n_ctx);
    struct attn_options opts = ma->attn_opts;
    if (attn_prepare(attn_find(attn), &opts, m, NULL)) return -1;
    struct session *s = session_new(m, attn_find(attn), &opts, ma->n_ctx ? ma->n_ctx : n_ctx);
    attn_options_release(&opts);                     /* the session holds its own copy */
    if (!s) return -1;
    struct row_id id = *id_base;
    id.attn = attn;
    id.kv = kv_type_name(s->kv_type);
    const int progress = isatty(2);
    for (int di = 0; di < o->n_d; di++)
        for (int kind = BENCH_PP; kind <= BENCH_TG; kind++) {
            const int *lens = kind == BENCH_PP ? o->p : o->n, count = kind == BENCH_PP ? o->n_p : o->n_n;
            for (int li = 0; li < count; li++) {
                if (lens[li] == 0) continue;
                if (progress)
                    fprintf(stderr, "\rdam bench: %s %s%d @ d%d ...   ", attn, kind == BENCH_PP ? "pp" : "tg",
                            lens[li], o->d[di]);
                struct bench_result r;
                int rc = bench_run(s, kind, lens[li], o->d[di], o->reps, &r);
                if (progress) fprintf(stderr, "\r%60s\r", "");
                if (rc != 0 || rows_add(rows, &id, &r) != 0) { session_free(s); return -1; }
            }
        }
    session_free(s);
    return 0;
}

/* ---- --kernels: each kernel alone ---- */

struct kernel_row { char kernel[32], shape[64]; double gflops; };
#define MAX_KERNEL_ROWS (8 + MAX_LIST + 1)

static void kernel_print(const struct bench_opts *o, const struct kernel_row *k, const struct bench_machine *mc,
                         cJSON *rows) {
    const double frac = k->gflops / mc->fma_gflops;
    if (o->format == OUT_MD) printf("| %s | %s | %.1f | %.1f%% |\n", k->kernel, k->shape, k->gflops, 100 * frac);
    else if (o->format == OUT_CSV) printf("\"%s\",\"%s\",%.4f,%.6f,%s,%d\n", k->kernel, k->shape, k->gflops, frac, mc->isa, mc->threads);
    else {
        cJSON *r = cJSON_CreateObject();
        cJSON_AddStringToObject(r, "kernel", k->kernel);
        cJSON_AddStringToObject(r, "shape", k->shape);
        cJSON_AddNumberToObject(r, "gflops", k->gflops);
        cJSON_AddNumberToObject(r, "peak_fraction", frac);
        cJSON_AddItemToArray(rows, r);
    }
}

/* Fills krows (returns how many, -1 on error). */
static int bench_kernels(const struct model *m, const struct bench_opts *o, struct kernel_row *krows) {
    /* the prefill chunk the forward pass uses */
    struct attn_options ao;
    attn_options_default(&ao);
    struct session *s = session_new(m, attn_find("full"), &ao, 1);
    if (!s) return -1;
    const int chunk = s->chunk;
    session_free(s);
    const struct layer_weights *w = &m->layers[0];
    const struct { const char *name; const struct tensor *t; } mats[] = {
        { "matmul q_proj", &w->wq }, { "matmul k_proj", &w->wk }, { "matmul v_proj", &w->wv },
        { "matmul o_proj", &w->wo }, { "matmul gate_proj", &w->w_gate }, { "matmul up_proj", &w->w_up },
        { "matmul down_proj", &w->w_down }, { "matmul lm_head", &m->lm_head },
    };
    int n = 0;
    for (size_t i = 0; i < sizeof mats / sizeof mats[0]; i++, n++) {
        struct kernel_row *k = &krows[n];
        snprintf(k->kernel, sizeof k->kernel, "%s", mats[i].name);
        snprintf(k->shape, sizeof k->shape, "%d x %d %s, n = %d", mats[i].t->rows, mats[i].t->cols,
                 dtype_name(mats[i].t->dtype), chunk);
        k->gflops = bench_kernel_matmul(mats[i].t, chunk, 5 * o->reps);
    }
    const struct model_config *c = &m->cfg;
    int any = 0;
    for (int i = 0; i < o->n_d + 1; i++) {
        int depth = i < o->n_d ? o->d[i] : (any ? 0 : 8192);   /* none given: 8192 */
        if (depth <= 0) continue;
        any = 1;
        struct kernel_row *k = &krows[n++];
        snprintf(k->kernel, sizeof k->kernel, "attention prefill");
        snprintf(k->shape, sizeof k->shape, "%d/%d heads x %d, 0..%d by %d", c->n_heads, c->n_kv_heads,
                 c->head_dim, depth, chunk);
        k->gflops = bench_kernel_attention(c->n_heads, c->n_kv_heads, c->head_dim, depth, chunk);
    }
    return n;
}

/* Everything measured, in the chosen format. */
static void print_report(const struct bench_opts *o, const struct bench_machine *mc, const struct rows *rows,
                         const struct kernel_row *krows, int n_krows) {
    cJSON *root = NULL, *items = NULL;
    if (o->format == OUT_MD) {
        machine_line(mc);
        if (o->kernels) printf("| kernel | shape | GFLOP/s | of peak |\n| --- | --- | ---: | ---: |\n");
        else {
            printf("| model | weights | size | params | attn | kv | threads | test | t/s | sparsity | KV cache | achieved | of peak |\n");
            printf("| --- | --- | ---: | ---: | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n");
        }
    } else if (o->format == OUT_CSV) {
        printf("%s\n", o->kernels ? "kernel,shape,gflops,peak_fraction,isa,threads" : csv_columns);
    } else {
        root = cJSON_CreateObject();
        cJSON *mj = cJSON_AddObjectToObject(root, "machine");
        cJSON_AddNumberToObject(mj, "threads", mc->threads);
        cJSON_AddStringToObject(mj, "isa", mc->isa);
        cJSON_AddNumberToObject(mj, "read_gbs", mc->read_gbs);
        cJSON_AddNumberToObject(mj, "fma_gflops", mc->fma_gflops);
        cJSON_AddNumberToObject(mj, "load_avg", mc->load_avg);
        cJSON_AddNumberToObject(mj, "idle", mc->idle);
        cJSON_AddNumberToObject(mj, "cores", mc->cores);
        items = cJSON_AddArrayToObject(root, o->kernels ? "kernels" : "results");
    }
    for (int i = 0; i < n_krows; i++) kernel_print(o, &krows[i], mc, items);
    for (int i = 0; i < rows->n; i++) {
        const struct row *w = &rows->v[i];
        if (o->format == OUT_MD) md_row(&w->id, &w->r, w->peak);
        else if (o->format == OUT_CSV) csv_row(&w->id, &w->r, mc, w->peak, w->peak_bytes);
        else cJSON_AddItemToArray(items, json_row(&w->id, &w->r, w->peak, w->peak_bytes));
    }
    if (root) {
        char *text = cJSON_Print(root);
        if (text) printf("%s\n", text);
        free(text);
        cJSON_Delete(root);
    }
    out_flush();                 /* remembers a write error: main reports it */
}

/* Each row's ceiling. tg: the read bandwidth of a buffer as large as what a
 * token reads (weights + keys and values), measured once per size (to the
 * MiB), never below the 256 MiB figure. pp: the FMA peak. A rate above its
 * ceiling raises the ceiling to it (warned). */
static void set_ceilings(struct rows *rows, const struct bench_machine *mc) {
    struct { size_t bytes; double gbs; } seen[64];
    int n_seen = 0;
    for (int i = 0; i < rows->n; i++) {
        struct row *w = &rows->v[i];
        w->peak = mc->fma_gflops;
        w->peak_bytes = 0;
        if (w->r.kind == BENCH_TG) {
            size_t bytes = ((size_t)w->r.bytes_per_token + (1u << 20) - 1) >> 20 << 20;
            double gbs = 0;
            for (int k = 0; k < n_seen && gbs == 0; k++) if (seen[k].bytes == bytes) gbs = seen[k].gbs;
            if (gbs == 0 && bytes < ((size_t)256 << 20)) {
                gbs = bench_read_bandwidth(bytes);
                if (n_seen < 64) { seen[n_seen].bytes = bytes; seen[n_seen++].gbs = gbs; }
            }
            w->peak = gbs > mc->read_gbs ? gbs : mc->read_gbs;
            w->peak_bytes = bytes;
        }
        if (w->r.achieved > w->peak) {
            char test[48];
            test_name(test, sizeof test, &w->r);
            fprintf(stderr, "dam bench: %s %s achieved %.1f %s, above the ceiling measured (%.1f): the ceiling "
                    "was measured in a busy moment; the rate itself is taken as the ceiling\n", w->id.attn, test,
                    w->r.achieved, w->r.kind == BENCH_PP ? "GFLOP/s" : "GB/s", w->peak);
            w->peak = w->r.achieved;
        }
    }
}

int cmd_bench(int argc, char **argv) {
    struct model_args ma;
    if (model_args_default(&ma, "full")) return EXIT_ERROR;
    struct bench_opts o = { .p = { 512 }, .n_p = 1, .n = { 128 }, .n_n = 1, .d = { 0 }, .n_d = 1,
                            .reps = 3, .attn = { "full" }, .n_attn = 1, .format = OUT_MD };
    const char *v;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) { help(stdout); return EXIT_OK; }
        if (arg_is(a, "--attn")) {              /* a list here, so before the shared parser */
            if (!(v = arg_value(argc, argv, &i)) || parse_attn_list(&o, v)) return EXIT_USAGE;
            continue;
        }
        int r = model_args_parse(&ma, argc, argv, &i);
        if (r < 0) return EXIT_USAGE;
        if (r > 0) continue;
        if (arg_is(a, "-p") || arg_is(a, "--n-prompt")) {
            if (!(v = arg_value(argc, argv, &i)) || int_list("-p", v, 1 << 20, o.p, &o.n_p)) return EXIT_USAGE;
        } else if (arg_is(a, "-n") || arg_is(a, "--n-gen")) {
            if (!(v = arg_value(argc, argv, &i)) || int_list("-n", v, 1 << 20, o.n, &o.n_n)) return EXIT_USAGE;
        } else if (arg_is(a, "-d") || arg_is(a, "--depth")) {
            if (!(v = arg_value(argc, argv, &i)) || int_list("-d", v, 1 << 24, o.d, &o.n_d)) return EXIT_USAGE;
        } else if (arg_is(a, "-r") || arg_is(a, "--repetitions")) {
            if (!(v = arg_value(argc, argv, &i)) || arg_int("-r", v, 1, 1000, &o.reps)) return EXIT_USAGE;
        } else if (!strcmp(a, "--kernels")) {
            o.kernels = 1;
        } else if (arg_is(a, "-o") || arg_is(a, "--output")) {
            if (!(v = arg_value(argc, argv, &i))) return EXIT_USAGE;
            if (!strcmp(v, "md")) o.format = OUT_MD;
            else if (!strcmp(v, "csv")) o.format = OUT_CSV;
            else if (!strcmp(v, "json")) o.format = OUT_JSON;
            else { cli_error("bad value for -o: '%s' (expected md, csv or json)", v); return EXIT_USAGE; }
        } else {
            cli_error("unknown flag '%s' for dam bench (see dam bench --help)", a);
            return EXIT_USAGE;
        }
    }
    if (list_max(o.p, o.n_p) == 0 && list_max(o.n, o.n_n) == 0) {
        cli_error("nothing to measure: -p and -n are both 0");
        return EXIT_USAGE;
    }
    qsort(o.d, o.n_d, sizeof o.d[0], sort_ints);
    if (model_args_finish(&ma)) return EXIT_USAGE;

    char dir[PATH_MAX];
    struct model *m = NULL;
    if (model_resolve_dir(ma.model, dir, sizeof dir) || !(m = model_args_load(&ma, dir))) {
        cli_error("%s", dam_last_error());
        return EXIT_ERROR;
    }
    {
        /* the context rule of every command: past max_position_embeddings is allowed, with a warning */
        int most = list_max(o.d, o.n_d) + (list_max(o.p, o.n_p) > list_max(o.n, o.n_n) ? list_max(o.p, o.n_p)
                                                                                      : list_max(o.n, o.n_n));
        warn_past_trained(ma.n_ctx ? ma.n_ctx : most, &m->cfg, ma.n_ctx ? "-c" : "the largest test (-d + -p or -n)");
        char used[256] = "";
        for (int a = 0; a < o.n_attn; a++) {
            snprintf(used + strlen(used), sizeof used - strlen(used), "%s%s", a ? "," : "", o.attn[a]);
            if (!strcmp(o.attn[a], "dam") && check_pcl(ma.attn_opts.dam.pcl, &m->cfg)) {
                cli_error("%s", dam_last_error());
                model_free(m);
                return EXIT_ERROR;
            }
        }
        if (!o.kernels) model_args_warn_unused(&ma, used);
    }
    struct bench_machine mc;
    if (bench_machine_measure(&mc) != 0) { cli_error("%s", dam_last_error()); model_free(m); return EXIT_ERROR; }
    size_t len = strlen(dir);
    while (len > 1 && dir[len - 1] == '/') dir[--len] = 0;
    const char *base = strrchr(dir, '/');
    struct row_id id = { .model = base ? base + 1 : dir, .size = m->weight_bytes, .params = m->n_params,
                         .threads = mc.threads,
                         .weights = m->quant != QUANT_NONE ? quant_name(m->quant) : dtype_name(m->embed.dtype) };

    warn_if_busy(&mc);
    int rc = EXIT_OK, n_krows = 0;
    struct rows rows = {0};
    struct kernel_row krows[MAX_KERNEL_ROWS];
    if (o.kernels && (n_krows = bench_kernels(m, &o, krows)) < 0) {
        cli_error("%s", dam_last_error());
        n_krows = 0;
        rc = EXIT_ERROR;
    }
    for (int a = 0; a < o.n_attn && rc == EXIT_OK && !o.kernels; a++)
        if (bench_module(m, &ma, &o, o.attn[a], &id, &rows) != 0) {
            cli_error("%s: %s", o.attn[a], dam_last_error());
            rc = EXIT_ERROR;
        }
    /* the ceilings again: other processes come and go, and a ceiling measured
     * in a busy moment would make every ratio look better than it is */
    struct bench_machine after;
    if (bench_machine_measure(&after) == 0) {
        if (after.read_gbs > mc.read_gbs) mc.read_gbs = after.read_gbs;
        if (after.fma_gflops > mc.fma_gflops) mc.fma_gflops = after.fma_gflops;
        if (after.load_avg > mc.load_avg) mc.load_avg = after.load_avg;
        if (after.idle >= 0 && after.idle < mc.idle) mc.idle = after.idle;   /* the busier moment */
    }
    set_ceilings(&rows, &mc);
    print_report(&o, &mc, &rows, krows, n_krows);
    free(rows.v);
    model_free(m);
    return rc;
}
