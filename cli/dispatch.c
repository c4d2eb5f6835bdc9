/* The command groups (mediaml vision|recommend|textgen|sentiment): help, then the subcommand. */
#include "commands.h"

#include <stdio.h>
#include <string.h>

/* "a, b or c" */
static void list_names(FILE *f, const cli_subcommand *subs) {
    for (int i = 0; subs[i].name; i++) {
        if (i) fputs(subs[i + 1].name ? ", " : " or ", f);
        fputs(subs[i].name, f);
    }
}

static void group_usage(FILE *f, const char *group, const char *about, const cli_subcommand *subs) {
    int w = 0;
    for (int i = 0; subs[i].name; i++) w = (int)strlen(subs[i].name) > w ? (int)strlen(subs[i].name) : w;
    fprintf(f, "Usage: mediaml %s SUBCOMMAND [OPTIONS]\n\n%s\n\nSubcommands:\n", group, about);
    for (int i = 0; subs[i].name; i++) fprintf(f, "  %-*s  %s\n", w, subs[i].name, subs[i].help);
    fprintf(f, "\nOptions:\n  -h, --help   show this help and exit\n\nRun 'mediaml %s SUBCOMMAND --help' for its options.\n",
            group);
}

int cli_dispatch(const char *group, const char *about, const cli_subcommand *subs, int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "mediaml %s: missing subcommand (", group);
        list_names(stderr, subs);
        fprintf(stderr, ")\nTry 'mediaml %s --help' for usage.\n", group);
        return EXIT_USAGE;
    }
    const char *sub = argv[1];
    if (!strcmp(sub, "--help") || !strcmp(sub, "-h") || !strcmp(sub, "help")) {
        group_usage(stdout, group, about, subs);
        return 0;
    }
    for (int i = 0; subs[i].name; i++)
        if (!strcmp(sub, subs[i].name)) return subs[i].run(argc - 1, argv + 1);
    if (sub[0] == '-') {
        fprintf(stderr, "mediaml %s: unknown option '%s'\n", group, sub);
    } else {
        fprintf(stderr, "mediaml %s: unknown subcommand '%s' (expected ", group, sub);
        list_names(stderr, subs);
        fputs(")\n", stderr);
    }
    fprintf(stderr, "Try 'mediaml %s --help' for usage.\n", group);
    return EXIT_USAGE;
}
