/* mediaml: command-line front end. Dispatches to the commands; everything it does goes
 * through the public API in mediaml.h (and the apps built on it). */
#include "commands.h"

#include <mediaml.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void usage(FILE *f) {
    fputs("Usage: mediaml COMMAND [ARGS...]\n"
          "\n"
          "Commands:\n"
          "  vision train     train an image classifier on an IDX data set (MNIST, Fashion-MNIST)\n"
          "  vision eval      evaluate a model on the test split: loss, accuracy, top-k, confusion matrix\n"
          "  vision predict   classify PNG images with a model\n"
          "  recommend train  train a recommender (mf, neumf, pop) on MovieLens ratings and evaluate it\n"
          "  recommend eval   RMSE/MAE, HR@10/NDCG@10 and Recall@10 of a model beside the popularity baseline\n"
          "  recommend top    a user's top items with the rated items behind each\n"
          "  recommend similar  the items most similar to an item\n"
          "  textgen train    train a character or BPE language model (GPT or LSTM) on a text file\n"
          "  textgen generate sample text from a language model (KV cache, temperature, top-k, top-p)\n"
          "  textgen eval     validation loss of a language model on a text file\n"
          "  sentiment train  train (or cross-validate) a sentiment classifier: fasttext, cnn, bilstm, nb, nbft\n"
          "  sentiment eval   accuracy, macro-F1 and confusion matrix of a sentiment model\n"
          "  sentiment predict  label texts as JSON lines, with word-level explanations (--explain)\n"
          "  summary FILE     show a model file's layers, parameters, preprocessing and labels\n"
          "\n"
          "Options:\n"
          "  -h, --help       show this help and exit\n"
          "  --version        show the version and exit\n"
          "\n"
          "Run 'mediaml COMMAND --help' for a command's options.\n",
          f);
}

int cli_apply_threads(const cli_cmd *c, const char *flag, int threads) {
    const cli_opt *o = cli_find(c, flag);
    if (!o || !o->seen) return 0;
    if (threads < 1) return cli_usage_error(c, "%s must be at least 1, got %d", flag, threads);
    mm_set_threads(threads);
    return 0;
}

int cli_apply_matmul_precision(const cli_cmd *c, const char *flag, const char *name) {
    const cli_opt *o = cli_find(c, flag);
    if (!o || !o->seen) {
        /* the library's default comes from MEDIAML_MATMUL_PRECISION: checked here, so that a typo
         * there is an error rather than float32 without a word */
        name = getenv("MEDIAML_MATMUL_PRECISION"), flag = "MEDIAML_MATMUL_PRECISION";
        if (!name || !*name) return 0;
    }
    if (mm_set_matmul_precision(name) != MM_OK) return cli_usage_error(c, "%s: %s", flag, mm_errmsg());
    if (!strcmp(name, "medium") && !mm_bf16_matmul_available())
        fprintf(stderr,
                "note: %s medium: this CPU or build has no bfloat16 unit (AMX or AVX512-BF16); matmuls stay "
                "float32\n",
                flag);
    return 0;
}

/* libgomp's threads spin for up to ~300,000 iterations (a few hundred microseconds) waiting
 * for the next parallel region. On a dedicated machine that is what makes back-to-back small
 * ops cheap; on a machine whose cores other processes also use, a spinning thread burns the
 * time slice its partner needs and a 2-thread run can fall several times below a 1-thread one.
 * A shorter spin (then sleep) keeps nearly all of the first and removes most of the second.
 * libgomp reads its settings once, when it is loaded, so the CLI sets the default and re-runs
 * itself once; a user's own OMP_WAIT_POLICY or GOMP_SPINCOUNT always wins. */
#define DEFAULT_GOMP_SPINCOUNT "10000"

static void tune_openmp_wait(char **argv) {
    if (getenv("OMP_WAIT_POLICY") || getenv("GOMP_SPINCOUNT")) return;
    if (setenv("GOMP_SPINCOUNT", DEFAULT_GOMP_SPINCOUNT, 1) != 0) return;
    execv("/proc/self/exe", argv);
    /* exec failed (no /proc, say): carry on with libgomp's defaults */
}

int main(int argc, char **argv) {
    tune_openmp_wait(argv);
    if (argc < 2) {
        usage(stderr);
        return EXIT_USAGE;
    }
    const char *cmd = argv[1];
    if (!strcmp(cmd, "--help") || !strcmp(cmd, "-h") || !strcmp(cmd, "help")) {
        usage(stdout);
        return 0;
    }
    if (!strcmp(cmd, "--version") || !strcmp(cmd, "-V")) {
        printf("mediaml %s\n", MM_VERSION);
        return 0;
    }
    if (!strcmp(cmd, "vision")) return cmd_vision(argc - 1, argv + 1);
    if (!strcmp(cmd, "recommend")) return cmd_recommend(argc - 1, argv + 1);
    if (!strcmp(cmd, "textgen")) return cmd_textgen(argc - 1, argv + 1);
    if (!strcmp(cmd, "sentiment")) return cmd_sentiment(argc - 1, argv + 1);
    if (!strcmp(cmd, "summary")) return cmd_summary(argc - 1, argv + 1);
    if (cmd[0] == '-') fprintf(stderr, "mediaml: unknown option '%s'\n", cmd);
    else fprintf(stderr, "mediaml: unknown command '%s'\n", cmd);
    fputs("Try 'mediaml --help' for usage.\n", stderr);
    return EXIT_USAGE;
}
