/* cli.h — what the subcommands share: the dispatch signature and flag parsing.
 * Every subcommand lives in its own file as `int cmd_NAME(int argc, char **argv)`
 * (argv[0] is the subcommand name) and returns the process exit code. */
#ifndef DAM_CLI_H
#define DAM_CLI_H

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

/* Flag values. Each returns 0, or -1 after printing a one-line error that
 * names the flag, the value and what was expected. */
int arg_long(const char *flag, const char *val, long min, long max, long *out);
int arg_int(const char *flag, const char *val, int min, int max, int *out);
int arg_float(const char *flag, const char *val, double min, double max, float *out);
/* "1,5,9" -> ids (heap). */
int arg_ids(const char *flag, const char *val, int **ids, int *n);
/* Fetches the value of a flag that takes one: supports "--flag value" and
 * "--flag=value". Returns the value or NULL (and prints an error) when
 * missing. *i is advanced past what was consumed. */
const char *arg_value(int argc, char **argv, int *i);
/* Checks, before any work is done, that an output file can be created:
 * its folder exists and is writable. -1 (printed) otherwise. */
int check_output_path(const char *flag, const char *path);
/* True when argv[i] is flag, or flag=... */
int arg_is(const char *arg, const char *flag);

/* Flags shared by every command that runs a model. */
struct model_args {
    const char *model;        /* -m */
    int threads;              /* -t, 0 = all cores */
    int n_ctx;                /* -c, 0 = model's maximum */
    const char *attn;         /* --attn */
    struct attn_options attn_opts;   /* --window-*, --dam-*, --kv-type */
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
struct model;
/* model_load(dir), then --quant. NULL + dam_fail. */
struct model *model_args_load(const struct model_args *a, const char *dir);

#endif
