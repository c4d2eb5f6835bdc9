/* mediaml recommend: dispatch to train, eval, top and similar. */
#include "commands.h"

#include <stdio.h>
#include <string.h>

static void usage(FILE *f) {
    fputs("Usage: mediaml recommend SUBCOMMAND [OPTIONS]\n"
          "\n"
          "Recommendations from ratings (MovieLens u.data, ratings.csv or ratings.dat): popularity,\n"
          "biased matrix factorization (rating prediction) and NeuMF (implicit feedback).\n"
          "\n"
          "Subcommands:\n"
          "  train     train a model (mf, neumf or pop) on a split and evaluate it\n"
          "  eval      RMSE/MAE, HR@10/NDCG@10 (NCF protocol) and Recall@10/NDCG@10 (full ranking),\n"
          "            with the popularity baseline beside\n"
          "  top       the top items for a user, with the rated items that support each\n"
          "  similar   the items most similar to an item\n"
          "\n"
          "Options:\n"
          "  -h, --help   show this help and exit\n"
          "\n"
          "Run 'mediaml recommend SUBCOMMAND --help' for its options.\n",
          f);
}

int cmd_recommend(int argc, char **argv) {
    if (argc < 2) {
        fputs("mediaml recommend: missing subcommand (train, eval, top or similar)\n", stderr);
        fputs("Try 'mediaml recommend --help' for usage.\n", stderr);
        return EXIT_USAGE;
    }
    const char *sub = argv[1];
    if (!strcmp(sub, "--help") || !strcmp(sub, "-h") || !strcmp(sub, "help")) {
        usage(stdout);
        return 0;
    }
    if (!strcmp(sub, "train")) return cmd_recommend_train(argc - 1, argv + 1);
    if (!strcmp(sub, "eval")) return cmd_recommend_eval(argc - 1, argv + 1);
    if (!strcmp(sub, "top")) return cmd_recommend_top(argc - 1, argv + 1);
    if (!strcmp(sub, "similar")) return cmd_recommend_similar(argc - 1, argv + 1);
    if (sub[0] == '-') fprintf(stderr, "mediaml recommend: unknown option '%s'\n", sub);
    else fprintf(stderr, "mediaml recommend: unknown subcommand '%s' (expected train, eval, top or similar)\n", sub);
    fputs("Try 'mediaml recommend --help' for usage.\n", stderr);
    return EXIT_USAGE;
}
