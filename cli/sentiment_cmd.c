/* mediaml sentiment: dispatch to train, eval and predict. */
#include "commands.h"

#include <stdio.h>
#include <string.h>

static void usage(FILE *f) {
    fputs("Usage: mediaml sentiment SUBCOMMAND [OPTIONS]\n"
          "\n"
          "Sentiment of comments and reviews (English and Chinese) with word-level explanations:\n"
          "fastText-style bags of word and n-gram embeddings, Kim's CNN, a bidirectional LSTM, naive Bayes\n"
          "and naive Bayes combined with fastText.\n"
          "\n"
          "Subcommands:\n"
          "  train     train a classifier (stratified 90/10 split) or cross-validate one (--cv K)\n"
          "  eval      accuracy, macro-F1 and confusion matrix of a model on labelled texts\n"
          "  predict   label texts (arguments, a file or stdin) as JSON lines, with --explain attributions\n"
          "\n"
          "Options:\n"
          "  -h, --help   show this help and exit\n"
          "\n"
          "Run 'mediaml sentiment SUBCOMMAND --help' for its options.\n",
          f);
}

int cmd_sentiment(int argc, char **argv) {
    if (argc < 2) {
        fputs("mediaml sentiment: missing subcommand (train, eval or predict)\n", stderr);
        fputs("Try 'mediaml sentiment --help' for usage.\n", stderr);
        return EXIT_USAGE;
    }
    const char *sub = argv[1];
    if (!strcmp(sub, "--help") || !strcmp(sub, "-h") || !strcmp(sub, "help")) {
        usage(stdout);
        return 0;
    }
    if (!strcmp(sub, "train")) return cmd_sentiment_train(argc - 1, argv + 1);
    if (!strcmp(sub, "eval")) return cmd_sentiment_eval(argc - 1, argv + 1);
    if (!strcmp(sub, "predict")) return cmd_sentiment_predict(argc - 1, argv + 1);
    if (sub[0] == '-') fprintf(stderr, "mediaml sentiment: unknown option '%s'\n", sub);
    else fprintf(stderr, "mediaml sentiment: unknown subcommand '%s' (expected train, eval or predict)\n", sub);
    fputs("Try 'mediaml sentiment --help' for usage.\n", stderr);
    return EXIT_USAGE;
}
