/* cli.h — what the subcommands share: the dispatch signature and flag parsing.
 * Every subcommand lives in its own file as `int cmd_NAME(int argc, char **argv)`
 * (argv[0] is the subcommand name) and returns the process exit code. */
#ifndef DAM_CLI_H
#define DAM_CLI_H

#include <stdint.h>
#include <stdio.h>
#include "dam/attn.h"

/* Exit codes. */
#define EXIT_OK 0
#define EXIT_ERROR 1      /* runtime failure (I/O, model, ...) */
#define EXIT_USAGE 2      /* bad flag or flag value */


int cmd_run(int argc, char **argv);
int cmd_logits(int argc, char **argv);
int cmd_fetch(int argc, char **argv);
int cmd_calibrate(int argc, char **argv);
int cmd_compare(int argc, char **argv);
int cmd_masks(int argc, char **argv);
int cmd_tokenize(int argc, char **argv);
int cmd_niah(int argc, char **argv);
int cmd_synth(int argc, char **argv);
int cmd_bench(int argc, char **argv);

/* Prints "dam: <message>" on stderr. */
void cli_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Prints "dam: warning: <message>" on stderr (the command goes on). */
void cli_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Flag values. Each returns 0, or -1 after printing a one-line error that
 * names the flag, the value and what was expected. */
int arg_long(const char *flag, const char *val, long min, long max, long *out);
int arg_int(const char *flag, const char *val, int min, int max, int *out);
int arg_float(const char *flag, const char *val, double min, double max, float *out);
/* 0 .. 2^64-1 (a seed). */
int arg_u64(const char *flag, const char *val, uint64_t *out);
/* "1,5,9" -> ids (heap). */
int arg_ids(const char *flag, const char *val, int **ids, int *n);
/* Fetches the value of a flag that takes one: supports "--flag value" and
 * "--flag=value". Returns the value or NULL (and prints an error) when
 * missing. *i is advanced past what was consumed. */
const char *arg_value(int argc, char **argv, int *i);
/* arg_value for a flag that may be given several times (--stop, -f, ...):
 * arg_value warns when any other flag comes twice (the last value wins). */
const char *arg_value_repeatable(int argc, char **argv, int *i);
/* Checks, before any work is done, that an output can be written (see
 * output_check: "-" is stdout, a FIFO or device is written through, a file
 * is replaced atomically). -1 (printed) otherwise. */
int check_output_path(const char *flag, const char *path);
/* True when argv[i] is flag, or flag=... */
int arg_is(const char *arg, const char *flag);

/* Flags shared by every command that runs a model. */
struct model_args {
    const char *model;        /* -m */
    int threads;              /* -t, 0 = all cores */
    int oversubscribe;        /* --oversubscribe: keep a -t above the CPUs online */
    const char *module_flag[8];       /* per module of the registry: the first of its flags given */
    int n_ctx;                /* -c, 0 = model's maximum */
    const char *attn;         /* --attn */
    struct attn_options attn_opts;   /* --MODULE-OPTION flags (attn_options.h), --kv-type */
    enum quant_type quant;    /* --quant, QUANT_NONE = weights as stored */
};

/* Defaults: the built-in options, then configs/dam.json (found beside the
 * program) over them. default_attn may be NULL: the command then picks one
 * for the model it loads. -1 (printed) when configs/dam.json is unreadable. */
int model_args_default(struct model_args *a, const char *default_attn);
/* Tries to consume argv[*i] as a shared flag: 1 consumed, 0 not ours,
 * -1 error (printed). */
int model_args_parse(struct model_args *a, int argc, char **argv, int *i);
/* Help lines for the shared flags. */
void model_args_help(FILE *out);
/* Applies -t (the kernels' pool and OpenMP). */
void model_args_apply_threads(const struct model_args *a);
/* After the flags: checks their combinations (-1, printed: a usage error)
 * and applies -t, capped at the CPUs online (warned) unless --oversubscribe. */
int model_args_finish(struct model_args *a);
/* Warns when --dam-* or --window-* flags were given but no module of that
 * kind runs; modules: one name or a comma-separated list ("full,dam:tau=0.2"). */
void model_args_warn_unused(const struct model_args *a, const char *modules);

struct model_config;
/* The context rule, the same in every command: an input longer than the
 * context (-c, else max_position_embeddings) is an error unless the command
 * was asked to cut it (--truncate); a context above max_position_embeddings
 * is allowed, with this warning (what: "-c 1024", ...). */
void warn_past_trained(int positions, const struct model_config *cfg, const char *what);
/* dam's PCL longer than the model's context: -1 + dam_fail. */
int check_pcl(int pcl, const struct model_config *cfg);
struct model;
/* model_load(dir), then --quant. NULL + dam_fail. */
struct model *model_args_load(const struct model_args *a, const char *dir);

#endif
