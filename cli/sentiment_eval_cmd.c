/* mediaml sentiment eval: accuracy, macro-F1 and the confusion matrix of a model on labelled
 * texts (all of them, or the held-out 10% of train's split). */
#include "commands.h"
#include "sentiment_out.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int cmd_sentiment_eval(int argc, char **argv) {
    char data_default[4096];
    const char *data = sent_default_data("sentiment-en", data_default, sizeof data_default);
    const char *format = NULL, *model = NULL, *split = "all";
    uint64_t seed = 0;
    int threads = 0, json = 0;
    cli_opt opts[] = {
        {"--model", OPT_STR, &model, "FILE", "model file (required)", 0},
        {"--data", OPT_STR, &data, "PATH", "labelled texts (default $MEDIAML_DATA/sentiment-en, else ../shared/data/sentiment-en)", 0},
        {"--format", OPT_STR, &format, "FMT", "auto (default), tsv, csv, fasttext or polarity", 0},
        {"--split", OPT_STR, &split, "SET", "all (default) or test: the held-out 10% of 'train' with the same --seed", 0},
        {"--seed", OPT_U64, &seed, "S", "seed of the split (default 0)", 0},
        {"--threads", OPT_INT, &threads, "T", "kernel threads (default $MEDIAML_THREADS, else the core count)", 0},
        {"--json", OPT_BOOL, &json, NULL, "one JSON object with the result", 0},
        {NULL, 0, NULL, NULL, NULL, 0}};
    cli_cmd c = {"sentiment eval", "--model FILE [--data PATH] [OPTIONS]",
                 "Evaluates a sentiment model on labelled texts: accuracy, macro-F1 and the confusion matrix.", opts,
                 "Every label in the data must be one the model was trained with (else an error names the file and\n"
                 "line); records with an empty text are skipped and counted.\n"};
    int npos, rc = cli_parse(&c, argc, argv, NULL, 0, &npos);
    if (rc) return rc == CLI_HELP ? 0 : rc;
    if (!model) return cli_usage_error(&c, "--model FILE is required");
    int test = !strcmp(split, "test");
    if (!test && strcmp(split, "all")) return cli_usage_error(&c, "unknown --split '%s' (expected all or test)", split);
    if ((rc = cli_apply_threads(&c, "--threads", threads))) return rc;
    sent_model m;
    if (sent_model_load(model, &m)) return cli_library_error();
    sent_corpus corpus;
    if ((rc = sent_load_cli(data, format, m.n_labels, m.labels, &corpus))) {
        sent_model_free(&m);
        return rc;
    }
    int *idx = NULL, n = 0;
    mm_status st = MM_OK;
    if (test) {
        int *fold = malloc((size_t)corpus.n * sizeof(int));
        idx = malloc((size_t)corpus.n * sizeof(int));
        st = fold && idx ? sent_folds(&corpus, corpus.n >= 10 ? 10 : 2, seed, fold) : mm_error(MM_ERR_NOMEM, "out of memory");
        for (int i = 0; !st && i < corpus.n; i++)
            if (fold[i] == 0) idx[n++] = i;
        free(fold);
    }
    sent_metrics r = {0};
    if (!st) st = sent_evaluate(&m, &corpus, idx, n, &r);
    if (!st) sent_print_metrics(stdout, &r, m.labels, test ? "test" : "all", json);
    sent_metrics_free(&r);
    free(idx);
    sent_corpus_free(&corpus);
    sent_model_free(&m);
    return st ? cli_library_error() : 0;
}
