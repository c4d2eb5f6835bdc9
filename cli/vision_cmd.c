/* mediaml vision: dispatch to train, eval and predict. */
#include "commands.h"

#include <stdio.h>
#include <string.h>

static void usage(FILE *f) {
    fputs("Usage: mediaml vision SUBCOMMAND [OPTIONS]\n"
          "\n"
          "Image classification on IDX data sets (MNIST naming: train-images-idx3-ubyte[.gz], ...).\n"
          "\n"
          "Subcommands:\n"
          "  train     train a model (default: the Keras MNIST CNN) and evaluate it on the test split\n"
          "  eval      evaluate a model file on the test split\n"
          "  predict   classify PNG images\n"
          "\n"
          "Options:\n"
          "  -h, --help   show this help and exit\n"
          "\n"
          "Run 'mediaml vision SUBCOMMAND --help' for its options.\n",
          f);
}

int cmd_vision(int argc, char **argv) {
    if (argc < 2) {
        fputs("mediaml vision: missing subcommand (train, eval or predict)\n", stderr);
        fputs("Try 'mediaml vision --help' for usage.\n", stderr);
        return EXIT_USAGE;
    }
    const char *sub = argv[1];
    if (!strcmp(sub, "--help") || !strcmp(sub, "-h") || !strcmp(sub, "help")) {
        usage(stdout);
        return 0;
    }
    if (!strcmp(sub, "train")) return cmd_vision_train(argc - 1, argv + 1);
    if (!strcmp(sub, "eval")) return cmd_vision_eval(argc - 1, argv + 1);
    if (!strcmp(sub, "predict")) return cmd_vision_predict(argc - 1, argv + 1);
    if (sub[0] == '-') fprintf(stderr, "mediaml vision: unknown option '%s'\n", sub);
    else fprintf(stderr, "mediaml vision: unknown subcommand '%s' (expected train, eval or predict)\n", sub);
    fputs("Try 'mediaml vision --help' for usage.\n", stderr);
    return EXIT_USAGE;
}
