/* Flag parsing for the mediaml commands: a table of --long flags per command, strict number
 * parsing, usage text, and the error conventions (usage errors exit 2, library errors 1). */
#ifndef MEDIAML_CLI_ARGS_H
#define MEDIAML_CLI_ARGS_H

#include <stdint.h>
#include <stdio.h>

#define EXIT_USAGE 2
#define EXIT_LIBRARY 1

typedef enum cli_kind {
    OPT_BOOL,   /* int *: set to 1 */
    OPT_INT,    /* int *  */
    OPT_LONG,   /* long * */
    OPT_U64,    /* uint64_t * */
    OPT_FLOAT,  /* float * */
    OPT_STR     /* const char ** */
} cli_kind;

typedef struct cli_opt {
    const char *name;     /* "--epochs" */
    cli_kind kind;
    void *dest;
    const char *metavar;  /* "N"; NULL for OPT_BOOL */
    const char *help;     /* one line, with the default */
    int seen;             /* set by cli_parse when given */
} cli_opt;

typedef struct cli_cmd {
    const char *path;     /* "vision train": how the command is named in messages */
    const char *args;     /* synopsis after the command, e.g. "--model FILE IMAGE.png..." */
    const char *about;    /* what the command does */
    cli_opt *opts;        /* ends with an entry whose name is NULL */
    const char *notes;    /* printed after the flags, or NULL */
} cli_cmd;

/* Parses argv[1..argc) (argv[0] is the command word). Positional arguments go to pos (at
 * most max_pos; *npos receives the count). Returns 0, CLI_HELP after --help/-h (usage
 * printed to stdout), or EXIT_USAGE after an error (message on stderr). */
#define CLI_HELP (-1)
int cli_parse(cli_cmd *c, int argc, char **argv, char **pos, int max_pos, int *npos);

void cli_usage(const cli_cmd *c, FILE *f);

/* "mediaml <path>: <message>" and a --help hint on stderr; returns EXIT_USAGE. */
int cli_usage_error(const cli_cmd *c, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

/* "mediaml: <mm_errmsg()>" on stderr; returns EXIT_LIBRARY. */
int cli_library_error(void);

/* Strict conversions: the whole string must be a number in range. Return 0 on success. */
int cli_to_long(const char *s, long min, long max, long *out);
int cli_to_u64(const char *s, uint64_t *out);
int cli_to_float(const char *s, float *out);

/* The option named name (for checking ->seen after parsing). */
const cli_opt *cli_find(const cli_cmd *c, const char *name);

#endif
