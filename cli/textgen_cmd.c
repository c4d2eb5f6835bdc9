/* mediaml textgen: dispatch to train, generate and eval. */
#include "commands.h"

#include <stdio.h>
#include <string.h>

static void usage(FILE *f) {
    fputs("Usage: mediaml textgen SUBCOMMAND [OPTIONS]\n"
          "\n"
          "Language models over characters or BPE tokens: a GPT-style Transformer (default) or an LSTM.\n"
          "\n"
          "Subcommands:\n"
          "  train      train a model on a UTF-8 text file (90% train, 10% validation)\n"
          "  generate   sample text from a model, streamed token by token\n"
          "  eval       validation loss (nats per token) of a model on a text file\n"
          "  import-gpt2  convert a Hugging Face GPT-2 checkpoint (safetensors) into a mediaml model\n"
          "\n"
          "Options:\n"
          "  -h, --help   show this help and exit\n"
          "\n"
          "Run 'mediaml textgen SUBCOMMAND --help' for its options.\n",
          f);
}

int cmd_textgen(int argc, char **argv) {
    if (argc < 2) {
        fputs("mediaml textgen: missing subcommand (train, generate or eval)\n", stderr);
        fputs("Try 'mediaml textgen --help' for usage.\n", stderr);
        return EXIT_USAGE;
    }
    const char *sub = argv[1];
    if (!strcmp(sub, "--help") || !strcmp(sub, "-h") || !strcmp(sub, "help")) {
        usage(stdout);
        return 0;
    }
    if (!strcmp(sub, "train")) return cmd_textgen_train(argc - 1, argv + 1);
    if (!strcmp(sub, "generate")) return cmd_textgen_generate(argc - 1, argv + 1);
    if (!strcmp(sub, "eval")) return cmd_textgen_eval(argc - 1, argv + 1);
    if (!strcmp(sub, "import-gpt2")) return cmd_textgen_import_gpt2(argc - 1, argv + 1);
    if (sub[0] == '-') fprintf(stderr, "mediaml textgen: unknown option '%s'\n", sub);
    else fprintf(stderr, "mediaml textgen: unknown subcommand '%s' (expected train, generate or eval)\n", sub);
    fputs("Try 'mediaml textgen --help' for usage.\n", stderr);
    return EXIT_USAGE;
}
