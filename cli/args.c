/* Flag parsing: --name VALUE and --name=VALUE, -- ends the flags, strict numbers. */
#include "args.h"

#include <mediaml.h>

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

int cli_to_long(const char *s, long min, long max, long *out) {
    if (!s || !*s || isspace((unsigned char)*s)) return -1;
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || *end || end == s || v < min || v > max) return -1;
    *out = v;
    return 0;
}

int cli_to_u64(const char *s, uint64_t *out) {
    if (!s || !*s || *s == '-' || *s == '+' || isspace((unsigned char)*s)) return -1;
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || *end || end == s) return -1;
    *out = (uint64_t)v;
    return 0;
}

int cli_to_float(const char *s, float *out) {
    if (!s || !*s || isspace((unsigned char)*s)) return -1;
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || *end || end == s || !isfinite(v) || fabs(v) > 3.0e38) return -1;
    *out = (float)v;
    return 0;
}

static void hint(const cli_cmd *c) { fprintf(stderr, "Try 'mediaml %s --help' for usage.\n", c->path); }

int cli_usage_error(const cli_cmd *c, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "mediaml %s: ", c->path);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    hint(c);
    return EXIT_USAGE;
}

int cli_library_error(void) {
    const char *msg = mm_errmsg();
    fprintf(stderr, "mediaml: %s\n", msg && *msg ? msg : "unknown error");
    return EXIT_LIBRARY;
}

const cli_opt *cli_find(const cli_cmd *c, const char *name) {
    for (const cli_opt *o = c->opts; o && o->name; o++)
        if (!strcmp(o->name, name)) return o;
    return NULL;
}

static const char *kind_word(cli_kind k) {
    switch (k) {
    case OPT_INT:
    case OPT_LONG:
    case OPT_U64: return "an integer";
    case OPT_FLOAT: return "a number";
    default: return "a value";
    }
}

static int set_value(const cli_cmd *c, cli_opt *o, const char *v) {
    long l;
    int bad = 0;
    switch (o->kind) {
    case OPT_INT:
        bad = cli_to_long(v, INT_MIN, INT_MAX, &l);
        if (!bad) *(int *)o->dest = (int)l;
        break;
    case OPT_LONG:
        bad = cli_to_long(v, LONG_MIN, LONG_MAX, &l);
        if (!bad) *(long *)o->dest = l;
        break;
    case OPT_U64: bad = cli_to_u64(v, (uint64_t *)o->dest); break;
    case OPT_FLOAT: bad = cli_to_float(v, (float *)o->dest); break;
    case OPT_STR:
        bad = !*v;
        if (!bad) *(const char **)o->dest = v;
        break;
    case OPT_BOOL: break;
    }
    if (bad) {
        if (!*v) return cli_usage_error(c, "%s needs a value", o->name);
        return cli_usage_error(c, "%s expects %s, got '%s'", o->name, kind_word(o->kind), v);
    }
    o->seen = 1;
    return 0;
}

int cli_parse(cli_cmd *c, int argc, char **argv, char **pos, int max_pos, int *npos) {
    *npos = 0;
    int flags_done = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (flags_done || a[0] != '-' || !strcmp(a, "-")) {
            if (*npos >= max_pos) {
                if (max_pos == 0) return cli_usage_error(c, "unexpected argument '%s'", a);
                return cli_usage_error(c, "too many arguments (at '%s')", a);
            }
            pos[(*npos)++] = argv[i];
            continue;
        }
        if (!strcmp(a, "--")) {
            flags_done = 1;
            continue;
        }
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            cli_usage(c, stdout);
            return CLI_HELP;
        }
        const char *eq = strchr(a, '=');
        size_t len = eq ? (size_t)(eq - a) : strlen(a);
        cli_opt *o = c->opts;
        while (o && o->name && (strlen(o->name) != len || strncmp(o->name, a, len))) o++;
        if (!o || !o->name) return cli_usage_error(c, "unknown option '%.*s'", (int)len, a);
        if (o->kind == OPT_BOOL) {
            if (eq) return cli_usage_error(c, "%s takes no value", o->name);
            *(int *)o->dest = 1;
            o->seen = 1;
            continue;
        }
        const char *v;
        if (eq) {
            v = eq + 1;
        } else {
            if (i + 1 >= argc) return cli_usage_error(c, "%s needs a value (%s)", o->name, o->metavar ? o->metavar : "VALUE");
            v = argv[++i];
        }
        if (set_value(c, o, v)) return EXIT_USAGE;
    }
    return 0;
}

void cli_usage(const cli_cmd *c, FILE *f) {
    fprintf(f, "Usage: mediaml %s %s\n\n%s\n\nOptions:\n", c->path, c->args, c->about);
    for (const cli_opt *o = c->opts; o && o->name; o++) {
        char left[64];
        snprintf(left, sizeof left, "%s%s%s", o->name, o->metavar ? " " : "", o->metavar ? o->metavar : "");
        fprintf(f, "  %-26s %s\n", left, o->help);
    }
    fprintf(f, "  %-26s %s\n", "-h, --help", "show this help and exit");
    if (c->notes) fprintf(f, "\n%s", c->notes);
}
