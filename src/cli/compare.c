/* compare.c — `dam compare`: the quality and the savings of attention modules
 * against the first one (normally full).
 *
 * Teacher-forced over a document, every module sees the same tokens, chunk by
 * chunk in lockstep (so memory stays at one chunk of logits per module), and
 * each module's next-token distributions are compared with the reference's:
 * top-1 agreement, mean KL(reference || module), perplexity of the document.
 * The module's own figures give sparsity and KV bytes. Then each module
 * continues the same prompt greedily for -n tokens; the common prefix with the
 * reference's continuation is reported.
 *
 * --bench: attention alone, on random q/k/v of a real geometry (a config.json),
 * full vs window vs dam with synthetic masks at a range of sparsities: the
 * prefill attention time as a function of the pairs kept. */
#include "cli.h"
#include "dam/common.h"
#include "dam/dam.h"
#include "dam/kernels.h"
#include "dam/model.h"
#include "dam/session.h"
#include "dam/tokenizer.h"
#include <cjson/cJSON.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_VARIANTS 64
#define CHUNK 128

static void help(FILE *out) {
    fprintf(out,
        "usage: dam compare [-m DIR] (-f DOC | --ids LIST | --ids-json FILE) --attn full,dam[,window]\n"
        "                   [-n N] [--json]\n"
        "       dam compare --bench [--config CONFIG.json | -m DIR] [--seq N] [--layers N] [--json]\n"
        "Teacher-forced over the document with each module; against the first module: top-1\n"
        "agreement, mean KL of the next-token distributions, perplexity, attention sparsity (causal\n"
        "pairs skipped), KV-cache bytes, prefill time and tokens/s; then a greedy continuation of\n"
        "-n tokens from the same prompt with each module and the length of the common prefix.\n"
        "  -f, --file DOC         document text (tokenized with BOS; - = stdin)\n"
        "  --ids LIST             document as comma-separated token ids\n"
        "  --ids-json FILE        document as the \"tokens\" (or \"input_ids\") array of a JSON file\n"
        "  --attn LIST            modules, comma-separated; the first is the reference. A module may\n"
        "                         carry its own options: dam:tau=0.05:mu=0.8, window:size=32:sinks=4\n"
        "                         (keys: sinks size pcl lambda tau mu support coverage fallback\n"
        "                         fwindow capture profile), and for any module quant=q8_0|q4_0 (its\n"
        "                         weights quantized at load) and kv=f32|f16|bf16 (its KV cache)\n"
        "  -n N                   greedy continuation length (default 64; 0 = none)\n"
        "  --gen-prompt N         continue after the first N document tokens (default: all that fit)\n"
        "  --truncate left|right  a document longer than the context: keep its last (left: cut on the\n"
        "                         left, BOS kept) or first (right) tokens (default: error)\n"
        "  --json                 one JSON object\n"
        "bench mode (attention time only, random q/k/v):\n"
        "  --bench                time prefill attention of full, window and dam (synthetic masks)\n"
        "  --config FILE          geometry from a config.json (else -m DIR's)\n"
        "  --seq N                tokens (default 4096)\n"
        "  --layers N             layers timed (default 1; every layer costs the same)\n");
    model_args_help(out);
}

/* ---- module variants: "name[:key=value]..." ---- */

struct variant {
    char label[1200];
    const struct attn_module *mod;
    struct attn_options opts;
    enum quant_type quant;         /* weights of this entry (quant=...; default --quant) */
    struct session *s;
    float *logits;                 /* (CHUNK, vocab) */
    double agree, kl, nll;         /* sums over positions */
    long n_pos, n_nll;
    double prefill_ms;
    struct attn_stats st;
    int *gen;                      /* (n_gen) greedy continuation */
    int n_gen, common;
    double gen_ms;
};

/* key=value of an entry: quant= and kv= (the weights and KV cache of the
 * session), or an option of module mod's table (attn_options.h), into x. */
static int set_option(struct variant *x, const char *key, const char *val, const char *spec) {
    const struct attn_module *mod = x->mod;
    struct attn_options *o = &x->opts;
    char what[sizeof ((struct variant *)0)->label + 64];
    snprintf(what, sizeof what, "%s in --attn '%s'", key, spec);
    if (!strcmp(key, "quant")) {
        if (quant_from_name(val, &x->quant) == 0) return 0;
        cli_error("bad value for %s: '%s' (expected %s)", what, val, quant_names());
        return -1;
    }
    if (!strcmp(key, "kv")) {
        if (kv_type_from_name(val, &o->kv_type) == 0) return 0;
        cli_error("bad value for %s: '%s' (expected f32, f16 or bf16)", what, val);
        return -1;
    }
    const struct attn_opt *opt = attn_opt_find(mod, key);
    if (!opt) {
        char keys[512] = "quant kv";
        for (const struct attn_opt *p = mod->options; p && p->key; p++)
            if (p->help) snprintf(keys + strlen(keys), sizeof keys - strlen(keys), " %s", p->key);
        cli_error("unknown option '%s' of %s in --attn '%s' (keys: %s)", key, mod->name, spec, keys);
        return -1;
    }
    if (attn_opt_set(o, opt, val, what)) { cli_error("%s", dam_last_error()); return -1; }
    return 0;
}

static int parse_variant_list(char *buf, const struct attn_options *base, enum quant_type quant,
                              struct variant *v, int *n) {
    *n = 0;
    for (char *save = NULL, *item = strtok_r(buf, ",", &save); item; item = strtok_r(NULL, ",", &save)) {
        if (*n == MAX_VARIANTS) { cli_error("at most %d modules", MAX_VARIANTS); return -1; }
        struct variant *x = &v[(*n)++];
        memset(x, 0, sizeof *x);
        snprintf(x->label, sizeof x->label, "%s", item);
        x->opts = *base;
        x->quant = quant;
        char *colon = strchr(item, ':');
        if (colon) *colon = 0;
        if (!(x->mod = attn_find(item))) {
            cli_error("unknown attention module '%s' (available: %s)", item, attn_names());
            return -1;
        }
        for (char *kv = colon ? colon + 1 : NULL, *next; kv && *kv; kv = next) {
            next = strchr(kv, ':');
            if (next) *next++ = 0;
            char *eq = strchr(kv, '=');
            if (!eq) { cli_error("bad option '%s' in --attn '%s' (expected key=value)", kv, x->label); return -1; }
            *eq = 0;
            if (set_option(x, kv, eq + 1, x->label)) return -1;
        }
        struct dam_params check;
        if (x->mod == attn_find("dam") && dam_params_from_options(&x->opts, &check)) {
            cli_error("%s: %s", x->label, dam_last_error());
            return -1;
        }
    }
    if (*n == 0) { cli_error("--attn lists no module"); return -1; }
    return 0;
}

static int parse_variants(const char *list, const struct attn_options *base, enum quant_type quant,
                          struct variant *v, int *n) {
    char *buf = strdup(list);
    if (!buf) { cli_error("out of memory"); return -1; }
    int rc = parse_variant_list(buf, base, quant, v, n);
    free(buf);
    return rc;
}

/* ---- the document ---- */

static int read_ids_json(const char *path, int **ids, int *n) {
    size_t len;
    char *text = read_input(path, &len);
    if (!text) return -1;
    cJSON *root = cJSON_ParseWithLength(text, len);
    free(text);
    const cJSON *a = root;
    if (cJSON_IsObject(root)) {
        a = cJSON_GetObjectItemCaseSensitive(root, "tokens");
        if (!a) a = cJSON_GetObjectItemCaseSensitive(root, "input_ids");
    }
    if (!cJSON_IsArray(a) || cJSON_GetArraySize(a) == 0) {
        cJSON_Delete(root);
        return dam_fail("%s: expected a JSON array of token ids, or an object with \"tokens\" or \"input_ids\"", path);
    }
    *n = cJSON_GetArraySize(a);
    *ids = xmalloc((size_t)*n * sizeof **ids, "document ids");
    int i = 0, rc = 0;
    const cJSON *e;
    cJSON_ArrayForEach(e, a) {
        if (!*ids) { rc = -1; break; }
        if (!cJSON_IsNumber(e) || e->valuedouble < 0 || e->valuedouble > INT_MAX) {
            rc = dam_fail("%s: element %d of the token array is not a token id", path, i);
            break;
        }
        (*ids)[i++] = e->valueint;
    }
    cJSON_Delete(root);
    if (rc) { free(*ids); *ids = NULL; }
    return rc;
}

/* ---- metrics ---- */

/* log-softmax of a row into out (vocab); returns the argmax. */
static int log_softmax(const float *row, int vocab, double *out) {
    int best = 0;
    double max = row[0], sum = 0;
    for (int i = 1; i < vocab; i++) if (row[i] > max) { max = row[i]; best = i; }
    for (int i = 0; i < vocab; i++) sum += exp((double)row[i] - max);
    double lse = max + log(sum);
    for (int i = 0; i < vocab; i++) out[i] = (double)row[i] - lse;
    return best;
}

static int argmax(const float *row, int vocab) {
    int best = 0;
    for (int i = 1; i < vocab; i++) if (row[i] > row[best]) best = i;
    return best;
}

/* Teacher forcing, all variants in lockstep, chunk by chunk. */
static int teacher_force(struct variant *v, int nv, const int *doc, int n, int vocab) {
    double *ref = xmalloc((size_t)vocab * sizeof *ref, "log-probabilities");
    double *cur = xmalloc((size_t)vocab * sizeof *cur, "log-probabilities");
    if (!ref || !cur) { free(ref); free(cur); return -1; }
    int rc = 0;
    for (int p = 0; p < n && rc == 0; p += CHUNK) {
        int len = n - p < CHUNK ? n - p : CHUNK;
        for (int k = 0; k < nv && rc == 0; k++) {
            double t0 = now_ms();
            rc = session_eval(v[k].s, doc + p, len, v[k].logits, LOGITS_ALL);
            v[k].prefill_ms += now_ms() - t0;
            if (rc) dam_fail("%s: %s", v[k].label, dam_last_error());
        }
        for (int r = 0; r < len && rc == 0; r++) {
            int ref_top = log_softmax(v[0].logits + (size_t)r * vocab, vocab, ref);
            int next = p + r + 1 < n ? doc[p + r + 1] : -1;
            for (int k = 0; k < nv; k++) {
                int top = log_softmax(v[k].logits + (size_t)r * vocab, vocab, cur);
                double kl = 0;
                for (int i = 0; i < vocab; i++) kl += exp(ref[i]) * (ref[i] - cur[i]);
                v[k].agree += top == ref_top;
                v[k].kl += kl > 0 ? kl : 0;
                v[k].n_pos++;
                if (next >= 0) { v[k].nll -= cur[next]; v[k].n_nll++; }
            }
        }
    }
    for (int k = 0; k < nv; k++) v[k].s->attn->stats(v[k].s->attn_state, &v[k].st);
    free(ref); free(cur);
    return rc;
}

/* Greedy continuation of n_gen tokens after prompt, per variant. */
static int continue_greedy(struct variant *v, int nv, const int *prompt, int n_prompt, int n_gen, int vocab) {
    float *last = xmalloc((size_t)vocab * sizeof *last, "logits");
    if (!last) return -1;
    for (int k = 0; k < nv; k++) {
        struct variant *x = &v[k];
        x->gen = xcalloc((size_t)n_gen + 1, sizeof *x->gen, "continuation");
        if (!x->gen) { free(last); return -1; }
        session_rewind(x->s, 0);
        double t0 = now_ms();
        if (session_eval(x->s, prompt, n_prompt, last, LOGITS_LAST)) goto fail;
        for (int i = 0; i < n_gen; i++) {
            x->gen[i] = argmax(last, vocab);
            x->n_gen = i + 1;
            if (i + 1 < n_gen && session_eval(x->s, &x->gen[i], 1, last, LOGITS_LAST)) goto fail;
        }
        x->gen_ms = now_ms() - t0;
        continue;
    fail:
        dam_fail("%s: %s", x->label, dam_last_error());
        free(last);
        return -1;
    }
    for (int k = 0; k < nv; k++) {
        int c = 0;
        while (c < v[k].n_gen && c < v[0].n_gen && v[k].gen[c] == v[0].gen[c]) c++;
        v[k].common = c;
    }
    free(last);
    return 0;
}

static double kv_sparsity(const struct attn_stats *st) {
    return st->kv_bytes_full ? 1.0 - (double)st->kv_bytes / (double)st->kv_bytes_full : 0;
}

static void print_table(const struct variant *v, int nv, const char *doc_name, int n, int n_doc, int n_prompt,
                        int n_gen) {
    printf("document: %s, %d tokens", doc_name, n);
    if (n_doc > n) printf(" (the first %d of %d)", n, n_doc);
    printf("; reference: %s", v[0].label);
    if (n_gen) printf("; greedy continuation: %d tokens after %d", n_gen, n_prompt);
    printf("\n%-34s %6s %8s %7s %8s %8s %9s %5s %9s %8s %6s\n", "attn", "top1", "KL", "ppl", "sparsity",
           "kv_sprs", "KV KiB", "dense", "prefillms", "tok/s", "common");
    for (int k = 0; k < nv; k++) {
        const struct variant *x = &v[k];
        printf("%-34s %6.3f %8.4f %7.3f %8.3f %8.3f %9.1f %5d %9.1f %8.0f %6d\n", x->label,
               x->agree / x->n_pos, x->kl / x->n_pos, exp(x->nll / (x->n_nll ? x->n_nll : 1)),
               x->st.sparsity, kv_sparsity(&x->st), x->st.kv_bytes / 1024.0, x->st.dense_heads,
               x->prefill_ms, x->prefill_ms > 0 ? 1e3 * n / x->prefill_ms : 0, x->common);
    }
}

static void print_json(const struct variant *v, int nv, const char *model_dir, const char *doc_name, int n,
                       int n_doc, int n_prompt, int n_gen) {
    cJSON *j = cJSON_CreateObject();
    cJSON_AddStringToObject(j, "model", model_dir);
    cJSON_AddStringToObject(j, "document", doc_name);
    cJSON_AddNumberToObject(j, "tokens", n);
    cJSON_AddNumberToObject(j, "document_tokens", n_doc);
    cJSON_AddStringToObject(j, "reference", v[0].label);
    cJSON *c = cJSON_AddObjectToObject(j, "continuation");
    cJSON_AddNumberToObject(c, "prompt_tokens", n_prompt);
    cJSON_AddNumberToObject(c, "tokens", n_gen);
    cJSON *mods = cJSON_AddArrayToObject(j, "modules");
    for (int k = 0; k < nv; k++) {
        const struct variant *x = &v[k];
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "attn", x->mod->name);
        cJSON_AddStringToObject(o, "label", x->label);
        cJSON_AddNumberToObject(o, "top1_agreement", x->agree / x->n_pos);
        cJSON_AddNumberToObject(o, "mean_kl", x->kl / x->n_pos);
        cJSON_AddNumberToObject(o, "perplexity", exp(x->nll / (x->n_nll ? x->n_nll : 1)));
        cJSON_AddNumberToObject(o, "sparsity", x->st.sparsity);
        cJSON_AddNumberToObject(o, "kept_pairs", x->st.kept_pairs);
        cJSON_AddNumberToObject(o, "causal_pairs", x->st.causal_pairs);
        cJSON_AddNumberToObject(o, "kv_bytes", (double)x->st.kv_bytes);
        cJSON_AddNumberToObject(o, "kv_bytes_full", (double)x->st.kv_bytes_full);
        cJSON_AddNumberToObject(o, "kv_sparsity", kv_sparsity(&x->st));
        cJSON_AddNumberToObject(o, "dense_heads", x->st.dense_heads);
        cJSON_AddNumberToObject(o, "selecting_heads", x->st.selecting_heads);
        cJSON_AddNumberToObject(o, "selected_share", x->st.selected_share);
        cJSON_AddNumberToObject(o, "prefill_ms", x->prefill_ms);
        cJSON_AddNumberToObject(o, "tokens_per_s", x->prefill_ms > 0 ? 1e3 * n / x->prefill_ms : 0);
        cJSON_AddNumberToObject(o, "greedy_common_prefix", x->common);
        cJSON_AddNumberToObject(o, "greedy_ms", x->gen_ms);
        cJSON *g = cJSON_AddArrayToObject(o, "greedy_tokens");
        for (int i = 0; i < x->n_gen; i++) cJSON_AddItemToArray(g, cJSON_CreateNumber(x->gen[i]));
        cJSON_AddItemToArray(mods, o);
    }
    char *text = cJSON_Print(j);
    printf("%s\n", text);
    free(text);
    cJSON_Delete(j);
}

/* ---- bench: attention alone ---- */

struct bench_row { char label[64]; double ms, sparsity, kept; size_t kv_bytes, kv_full; };

/* Synthetic plans shaped like calibrated ones: a recent window of w, one
 * sink block, one column block in the middle of the sequence, and a
 * query-aware selection of w positions (blocks chosen per tile by the
 * random queries). */
static void synthetic_plans(struct head_plan *plans, int *col, int H, int n, int w) {
    *col = n / 2 / KV_BLOCK;
    for (int h = 0; h < H; h++) {
        struct head_plan p = { .sink_blocks = 1, .window = w, .n_cols = 1, .cols = col,
                               .select = w / KV_BLOCK };
        plans[h] = p;
    }
}

static int bench_one(const struct attn_module *mod, void *state, int L, int n, int H, int KV, int hd,
                     const float *q, const float *k, const float *v, float *out, struct bench_row *row) {
    double t0 = now_ms();
    for (int p = 0; p < n; p += CHUNK) {
        int len = n - p < CHUNK ? n - p : CHUNK;
        for (int l = 0; l < L; l++)
            if (mod->prefill(state, l, p, len, q + (size_t)p * H * hd, k + (size_t)p * KV * hd,
                             v + (size_t)p * KV * hd, out))
                return -1;
    }
    row->ms = now_ms() - t0;
    struct attn_stats st;
    mod->stats(state, &st);
    row->sparsity = st.sparsity;
    row->kept = st.kept_pairs;
    row->kv_bytes = st.kv_bytes;
    row->kv_full = st.kv_bytes_full;
    return 0;
}

static int run_bench(const struct model_config *c, const char *what, int n, int L, int json) {
    const int H = c->n_heads, KV = c->n_kv_heads, hd = c->head_dim;
    float *q = xmalloc((size_t)n * H * hd * sizeof *q, "bench q");
    float *k = xmalloc((size_t)n * KV * hd * sizeof *k, "bench k");
    float *v = xmalloc((size_t)n * KV * hd * sizeof *v, "bench v");
    float *out = xmalloc((size_t)CHUNK * H * hd * sizeof *out, "bench out");
    struct head_plan *plans = xcalloc((size_t)H, sizeof *plans, "bench plans");
    if (!q || !k || !v || !out || !plans) { free(q); free(k); free(v); free(out); free(plans); return -1; }
    uint64_t x = 0x9E3779B97F4A7C15ULL;
    float *arrays[3] = { q, k, v };
    size_t sizes[3] = { (size_t)n * H * hd, (size_t)n * KV * hd, (size_t)n * KV * hd };
    for (int a = 0; a < 3; a++)
        for (size_t i = 0; i < sizes[a]; i++) {
            x ^= x << 13; x ^= x >> 7; x ^= x << 17;
            arrays[a][i] = (float)((x >> 40) * (1.0 / 16777216.0)) * 2 - 1;
        }
    struct attn_options o;
    attn_options_default(&o);
    struct attn_setup setup = { .n_layers = L, .n_heads = H, .n_kv_heads = KV, .head_dim = hd,
                                .max_seq_len = n, .opts = &o };
    struct bench_row rows[32];
    int nr = 0, rc = 0;
    /* full */
    const struct attn_module *full = attn_find("full"), *dam = attn_find("dam"), *win = attn_find("window");
    void *st = full->create(&setup);
    if (!st) rc = -1;
    if (!rc) { snprintf(rows[nr].label, sizeof rows[nr].label, "full"); rc = bench_one(full, st, L, n, H, KV, hd, q, k, v, out, &rows[nr++]); }
    if (st) full->destroy(st);
    /* dam: synthetic plans, windows from n/4 down */
    for (int w = n / 4; w >= 16 && rc == 0; w /= 2) {
        struct dam_state *ds = dam_state_new(&setup);
        int col;
        if (!ds) { rc = -1; break; }
        synthetic_plans(plans, &col, H, n, w);
        for (int l = 0; l < L && rc == 0; l++) rc = dam_state_set_plans(ds, l, plans);
        snprintf(rows[nr].label, sizeof rows[nr].label, "dam (window %d, select %d, sinks, column)", w, w);
        if (!rc) rc = bench_one(dam, ds, L, n, H, KV, hd, q, k, v, out, &rows[nr++]);
        dam_state_free(ds);
    }
    /* window at a few sizes */
    for (int w = n / 4; w >= 64 && rc == 0; w /= 4) {
        o.window.size = w; o.window.sinks = 4;
        void *ws = win->create(&setup);
        if (!ws) { rc = -1; break; }
        snprintf(rows[nr].label, sizeof rows[nr].label, "window %d + 4 sinks", w);
        rc = bench_one(win, ws, L, n, H, KV, hd, q, k, v, out, &rows[nr++]);
        win->destroy(ws);
    }
    free(q); free(k); free(v); free(out); free(plans);
    if (rc) return -1;
    double full_ns = rows[0].ms * 1e6 / rows[0].kept;
    if (json) {
        cJSON *j = cJSON_CreateObject();
        cJSON_AddStringToObject(j, "geometry", what);
        cJSON_AddNumberToObject(j, "tokens", n);
        cJSON_AddNumberToObject(j, "layers", L);
        cJSON_AddNumberToObject(j, "n_heads", H);
        cJSON_AddNumberToObject(j, "n_kv_heads", KV);
        cJSON_AddNumberToObject(j, "head_dim", hd);
        cJSON *a = cJSON_AddArrayToObject(j, "rows");
        for (int i = 0; i < nr; i++) {
            cJSON *r = cJSON_CreateObject();
            cJSON_AddStringToObject(r, "attn", rows[i].label);
            cJSON_AddNumberToObject(r, "sparsity", rows[i].sparsity);
            cJSON_AddNumberToObject(r, "attention_ms", rows[i].ms);
            cJSON_AddNumberToObject(r, "ns_per_kept_pair", rows[i].ms * 1e6 / rows[i].kept);
            cJSON_AddNumberToObject(r, "speedup_vs_full", rows[i].ms > 0 ? rows[0].ms / rows[i].ms : 0);
            cJSON_AddNumberToObject(r, "kv_bytes", (double)rows[i].kv_bytes);
            cJSON_AddNumberToObject(r, "kv_bytes_full", (double)rows[i].kv_full);
            cJSON_AddItemToArray(a, r);
        }
        char *text = cJSON_Print(j);
        printf("%s\n", text);
        free(text);
        cJSON_Delete(j);
    } else {
        printf("prefill attention, %s: %d tokens, %d layer(s) of %d heads / %d KV heads, head_dim %d, chunks of %d\n",
               what, n, L, H, KV, hd, CHUNK);
        printf("%-36s %8s %11s %8s %12s %9s\n", "attn", "sparsity", "attn ms", "speedup", "ns/kept pair", "KV MiB");
        for (int i = 0; i < nr; i++)
            printf("%-36s %8.3f %11.1f %8.2f %12.3f %9.2f\n", rows[i].label, rows[i].sparsity, rows[i].ms,
                   rows[i].ms > 0 ? rows[0].ms / rows[i].ms : 0, rows[i].ms * 1e6 / rows[i].kept,
                   rows[i].kv_bytes / 1048576.0);
        printf("(full: %.3f ns per pair)\n", full_ns);
    }
    return 0;
}

/* ---- the command ---- */

int cmd_compare(int argc, char **argv) {
    struct model_args ma;
    if (model_args_default(&ma, "full")) return EXIT_ERROR;
    const char *attn_list = "full,dam,window", *doc_file = NULL, *ids_json = NULL, *ids_list = NULL;
    const char *config_file = NULL, *truncate = NULL, *v;
    int n_gen = 64, gen_prompt = 0, json = 0, bench = 0, bench_seq = 4096, bench_layers = 1;
    for (int i = 1; i < argc; i++) {
        const char *f = argv[i];
        if (arg_is(f, "--attn")) {            /* a list here, not one module */
            if (!(attn_list = arg_value(argc, argv, &i))) return EXIT_USAGE;
            continue;
        }
        int r = model_args_parse(&ma, argc, argv, &i);
        if (r < 0) return EXIT_USAGE;
        if (r > 0) continue;
        if (!strcmp(f, "--help") || !strcmp(f, "-h")) { help(stdout); return EXIT_OK; }
        if (arg_is(f, "-f") || arg_is(f, "--file")) { if (!(doc_file = arg_value(argc, argv, &i))) return EXIT_USAGE; }
        else if (arg_is(f, "--ids")) { if (!(ids_list = arg_value(argc, argv, &i))) return EXIT_USAGE; }
        else if (arg_is(f, "--ids-json")) { if (!(ids_json = arg_value(argc, argv, &i))) return EXIT_USAGE; }
        else if (arg_is(f, "-n")) { if (!(v = arg_value(argc, argv, &i)) || arg_int("-n", v, 0, 1 << 24, &n_gen)) return EXIT_USAGE; }
        else if (arg_is(f, "--gen-prompt")) { if (!(v = arg_value(argc, argv, &i)) || arg_int(f, v, 1, 1 << 24, &gen_prompt)) return EXIT_USAGE; }
        else if (!strcmp(f, "--json")) json = 1;
        else if (arg_is(f, "--truncate")) {
            if (!(truncate = arg_value(argc, argv, &i))) return EXIT_USAGE;
            if (strcmp(truncate, "left") && strcmp(truncate, "right")) {
                cli_error("bad value for --truncate: '%s' (expected left or right)", truncate);
                return EXIT_USAGE;
            }
        }
        else if (!strcmp(f, "--bench")) bench = 1;
        else if (arg_is(f, "--config")) { if (!(config_file = arg_value(argc, argv, &i))) return EXIT_USAGE; }
        else if (arg_is(f, "--seq")) { if (!(v = arg_value(argc, argv, &i)) || arg_int(f, v, 16, 1 << 22, &bench_seq)) return EXIT_USAGE; }
        else if (arg_is(f, "--layers")) { if (!(v = arg_value(argc, argv, &i)) || arg_int(f, v, 1, 4096, &bench_layers)) return EXIT_USAGE; }
        else { cli_error("unknown flag '%s' for dam compare (see dam compare --help)", f); return EXIT_USAGE; }
    }
    if (model_args_finish(&ma)) return EXIT_USAGE;
    char dir[PATH_MAX];
    if (bench) {
        struct model_config cfg;
        int rc;
        if (config_file) {
            size_t len;
            char *text = read_file(config_file, &len);
            rc = !text || config_parse(text, len, config_file, &cfg);
            free(text);
        } else {
            rc = model_resolve_dir(ma.model, dir, sizeof dir) || config_load(dir, &cfg);
        }
        if (rc || run_bench(&cfg, config_file ? config_file : dir, bench_seq, bench_layers, json)) {
            cli_error("%s", dam_last_error());
            return EXIT_ERROR;
        }
        return EXIT_OK;
    }
    if (!!doc_file + !!ids_json + !!ids_list != 1) {
        cli_error("dam compare needs one document: -f DOC, --ids LIST or --ids-json FILE");
        return EXIT_USAGE;
    }
    struct variant *vars = calloc(MAX_VARIANTS, sizeof *vars);
    int nv = 0;
    if (!vars) { cli_error("out of memory"); return EXIT_ERROR; }
    if (parse_variants(attn_list, &ma.attn_opts, ma.quant, vars, &nv)) { free(vars); return EXIT_USAGE; }

    int rc = EXIT_ERROR, *doc = NULL, n = 0;
    struct model *m = NULL, *quantized[QUANT_COUNT] = { NULL };   /* one load per weight format in use */
    struct tokenizer *tok = NULL;
    if (model_resolve_dir(ma.model, dir, sizeof dir) || !(m = model_load(dir))) goto fail;
    quantized[QUANT_NONE] = m;
    for (int k = 0; k < nv; k++) {
        const enum quant_type q = vars[k].quant;
        if (quantized[q]) continue;
        if (!(quantized[q] = model_load(dir)) || model_quantize(quantized[q], q) != 0) goto fail;
    }
    const char *doc_name = doc_file ? doc_file : ids_json ? ids_json : "--ids";
    if (ids_list) {
        if (arg_ids("--ids", ids_list, &doc, &n)) { rc = EXIT_USAGE; goto done; }
    } else if (ids_json) {
        if (read_ids_json(ids_json, &doc, &n)) goto fail;
    } else {
        size_t len;
        char *text = read_input(doc_file, &len);
        if (!text) goto fail;
        if (!(tok = tokenizer_load(dir))) { free(text); goto fail; }
        int r = tokenizer_encode(tok, text, len, 1, &doc, &n);
        free(text);
        if (r) goto fail;
    }
    const int vocab = m->cfg.vocab_size;
    for (int i = 0; i < n; i++)
        if (doc[i] < 0 || doc[i] >= vocab) { dam_fail("%s: token id %d is out of range (vocabulary of %d)", doc_name, doc[i], vocab); goto fail; }
    int n_ctx = ma.n_ctx ? ma.n_ctx : m->cfg.max_seq_len;
    if (ma.n_ctx) warn_past_trained(n_ctx, &m->cfg, "-c");
    for (int k = 0; k < nv; k++)
        if (vars[k].mod == attn_find("dam") && check_pcl(vars[k].opts.dam.pcl, &m->cfg)) {
            dam_fail("%s: %s", vars[k].label, dam_last_error());
            goto fail;
        }
    model_args_warn_unused(&ma, attn_list);
    /* the context rule of every command: a longer input is an error unless
     * --truncate asks for a cut (said on stderr) */
    const int n_doc = n;
    if (n > n_ctx && !truncate) {
        dam_fail("%s has %d tokens but the context holds %d (raise -c, or --truncate right|left to compare "
                 "the first or last %d)", doc_name, n, n_ctx, n_ctx);
        goto fail;
    }
    if (n > n_ctx) {
        int keep_bos = !strcmp(truncate, "left") && m->cfg.bos_id >= 0 && doc[0] == m->cfg.bos_id;
        if (!strcmp(truncate, "left"))
            memmove(doc + keep_bos, doc + n - (n_ctx - keep_bos), (size_t)(n_ctx - keep_bos) * sizeof *doc);
        n = n_ctx;
        fprintf(stderr, "dam: document of %d tokens cut to %d (--truncate %s)\n", n_doc, n, truncate);
    }
    if (n < 2) { dam_fail("%s: the document needs at least 2 tokens", doc_name); goto fail; }
    int n_prompt = gen_prompt ? gen_prompt : n;
    if (n_prompt > n) n_prompt = n;
    if (n_gen > 0 && n_prompt + n_gen > n_ctx) n_prompt = n_ctx - n_gen;
    if (n_gen > 0 && n_prompt < 1) { dam_fail("-n %d leaves no room for a prompt in a context of %d", n_gen, n_ctx); goto fail; }
    for (int k = 0; k < nv; k++) {
        if (attn_prepare(vars[k].mod, &vars[k].opts, quantized[vars[k].quant], tok) ||
            !(vars[k].s = session_new(quantized[vars[k].quant], vars[k].mod, &vars[k].opts, n_ctx))) {
            dam_fail("%s: %s", vars[k].label, dam_last_error());
            goto fail;
        }
        if (!(vars[k].logits = xmalloc((size_t)CHUNK * vocab * sizeof(float), "logits"))) goto fail;
    }
    {
        /* warm-up (threads, weight pages) on a throwaway session, so the first
         * module's timing is not the one that pays for it */
        struct session *w = session_new(m, attn_find("full"), &ma.attn_opts, n_ctx);
        if (!w || session_eval(w, doc, n < CHUNK ? n : CHUNK, vars[0].logits, LOGITS_ALL)) { session_free(w); goto fail; }
        session_free(w);
    }
    if (teacher_force(vars, nv, doc, n, vocab)) goto fail;
    if (n_gen > 0 && continue_greedy(vars, nv, doc, n_prompt, n_gen, vocab)) goto fail;
    if (json) print_json(vars, nv, dir, doc_name, n, n_doc, n_gen ? n_prompt : 0, n_gen);
    else print_table(vars, nv, doc_name, n, n_doc, n_prompt, n_gen);
    rc = EXIT_OK;
    goto done;
fail:
    cli_error("%s", dam_last_error());
done:
    for (int k = 0; k < nv; k++) {
        session_free(vars[k].s);
        attn_options_release(&vars[k].opts);
        free(vars[k].logits);
        free(vars[k].gen);
    }
    free(vars);
    free(doc);
    tokenizer_free(tok);
    for (int q = 1; q < QUANT_COUNT; q++) model_free(quantized[q]);
    model_free(m);
    return rc;
}
