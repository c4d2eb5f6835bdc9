/* mediaml sentiment train: a model on the stratified 90/10 split (evaluated on the 10%), or
 * k-fold cross-validation (--cv K). */
#include "commands.h"
#include "interrupt.h"
#include "json.h"
#include "progress.h"
#include "sentiment_out.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <math.h>
#include <time.h>


typedef struct fold_ctx {
    int json;
} fold_ctx;

static void on_fold(int fold, int k, const sent_metrics *m, double seconds, void *user) {
    const fold_ctx *f = user;
    if (f->json) {
        printf("{\"fold\":%d,\"folds\":%d,\"count\":%ld,\"accuracy\":", fold + 1, k, m->count);
        json_number(stdout, m->accuracy);
        json_field_number(stdout, "macro_f1", m->macro_f1);
        json_field_number(stdout, "seconds", seconds);
        fputs("}\n", stdout);
    } else {
        printf("Fold %d/%d - %ld test texts - accuracy: %.4f - macro-F1: %.4f - %.1fs\n", fold + 1, k, m->count, m->accuracy,
               m->macro_f1, seconds);
    }
    fflush(stdout);
}

static double mean_sd(const double *v, int n, double *sd) {
    double s = 0, q = 0;
    for (int i = 0; i < n; i++) s += v[i];
    s /= n;
    for (int i = 0; i < n; i++) q += (v[i] - s) * (v[i] - s);
    *sd = n > 1 ? sqrt(q / (n - 1)) : 0;
    return s;
}

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

static int cross_validate(sent_config *cfg, const sent_corpus *c, int k, int json) {
    double *acc = calloc((size_t)k, sizeof(double)), *f1 = calloc((size_t)k, sizeof(double));
    fold_ctx f = {json};
    double t0 = now();
    mm_status st = acc && f1 ? sent_cross_validate(cfg, c, k, on_fold, &f, acc, f1) : mm_error(MM_ERR_NOMEM, "out of memory");
    if (!st) {
        double sa, sf, ma = mean_sd(acc, k, &sa), mf = mean_sd(f1, k, &sf), secs = now() - t0;
        if (json) {
            printf("{\"cv\":%d,\"model\":\"%s\",\"count\":%d,\"mean_accuracy\":", k, sent_kind_name(cfg->kind), c->n);
            json_number(stdout, ma);
            json_field_number(stdout, "sd_accuracy", sa);
            json_field_number(stdout, "mean_macro_f1", mf);
            json_field_number(stdout, "seconds", secs);
            fputs("}\n", stdout);
        } else {
            printf("%d-fold cross-validation (%s, %d texts): mean accuracy %.4f (sd %.4f) - mean macro-F1 %.4f - %.1fs\n", k,
                   sent_kind_name(cfg->kind), c->n, ma, sa, mf, secs);
        }
    }
    free(acc), free(f1);
    return st ? cli_library_error() : 0;
}

int cmd_sentiment_train(int argc, char **argv) {
    char data_default[4096];
    const char *data = sent_default_data("sentiment-en", data_default, sizeof data_default);
    const char *format = NULL, *model = "fasttext", *lang = "auto", *out = NULL;
    sent_config cfg = {0};
    int threads = 0, json = 0, cv = 0, all = 0, keep_case = 0, constant_lr = 0, negation = 0, no_negation = 0;
    cli_opt opts[] = {
        {"--data", OPT_STR, &data, "PATH", "labelled texts: a file or directory (default $MEDIAML_DATA/sentiment-en, else ../shared/data/sentiment-en)", 0},
        {"--format", OPT_STR, &format, "FMT", "auto (default), tsv, csv, fasttext or polarity (NAME.pos / NAME.neg)", 0},
        {"--model", OPT_STR, &model, "TYPE", "fasttext (default), cnn, bilstm, nb (naive Bayes over the n-gram bag) or nbft (nb and fasttext combined: the most accurate)", 0},
        {"--out", OPT_STR, &out, "FILE", "model file to write (required unless --cv)", 0},
        {"--cv", OPT_INT, &cv, "K", "K-fold stratified cross-validation: per-fold and mean accuracy and macro-F1", 0},
        {"--all", OPT_BOOL, &all, NULL, "train on all the data (no held-out 10%)", 0},
        {"--lang", OPT_STR, &lang, "L", "en (words), zh (characters) or auto (default: zh when a fifth of the characters are CJK)", 0},
        {"--keep-case", OPT_BOOL, &keep_case, NULL, "do not lower-case", 0},
        {"--negation", OPT_BOOL, &negation, NULL, "English: prefix not_ to the words after a negation up to the next . , : ; ! ? (default for fasttext and cnn)", 0},
        {"--no-negation", OPT_BOOL, &no_negation, NULL, "no negation scopes (default for the other models)", 0},
        {"--min-count", OPT_INT, &cfg.min_count, "N", "vocabulary: words seen at least N times, others are <unk> (default 1)", 0},
        {"--ngrams", OPT_INT, &cfg.ngrams, "N", "hashed token n-grams up to N (default: fasttext 2, Chinese 3; nb 2; others 1)", 0},
        {"--buckets", OPT_INT, &cfg.buckets, "N", "hash buckets for the n-grams (default 1000000)", 0},
        {"--dim", OPT_INT, &cfg.dim, "D", "embedding size (default: fasttext 10, cnn/bilstm 128; nb: one column per class)", 0},
        {"--max-len", OPT_INT, &cfg.max_len, "N", "input length cap in ids (default: the longest training text, at most fasttext 1024, cnn/bilstm 100 (en) / 256 (zh))", 0},
        {"--filters", OPT_INT, &cfg.filters, "N", "cnn: filters per width 3, 4, 5 (default 100)", 0},
        {"--alpha", OPT_FLOAT, &cfg.alpha, "A", "nb: add-A smoothing of the naive-Bayes counts (default 1)", 0},
        {"--units", OPT_INT, &cfg.units, "N", "bilstm: units per direction (default 64)", 0},
        {"--dropout", OPT_FLOAT, &cfg.dropout, "P", "cnn/bilstm: dropout before the output layer (default 0.5)", 0},
        {"--epochs", OPT_INT, &cfg.epochs, "N", "epochs (default: fasttext 5, Chinese 10; cnn 4; bilstm 4; nb 0: naive Bayes alone)", 0},
        {"--batch-size", OPT_INT, &cfg.batch_size, "B", "examples per batch (default: fasttext 32, others 50)", 0},
        {"--lr", OPT_FLOAT, &cfg.lr, "LR", "learning rate, decayed to 0 by a cosine over the run (default: fasttext 0.005, others 0.001)", 0},
        {"--optimizer", OPT_STR, &cfg.optimizer, "NAME", "adam (default), sgd, adamw or rmsprop", 0},
        {"--constant-lr", OPT_BOOL, &constant_lr, NULL, "keep the learning rate constant (default: cosine decay to 0 over the run)", 0},
        {"--seed", OPT_U64, &cfg.seed, "S", "seed for the split, folds, initialization and shuffling (default 0)", 0},
        {"--threads", OPT_INT, &threads, "T", "kernel threads (default $MEDIAML_THREADS, else the core count)", 0},
        {"--json", OPT_BOOL, &json, NULL, "JSON lines: one object per epoch (or fold) and one with the result", 0},
        {NULL, 0, NULL, NULL, NULL, 0}};
    cli_cmd c = {"sentiment train", "[--data PATH] [--model fasttext|cnn|bilstm|nb|nbft] --out FILE [OPTIONS]",
                 "Trains a sentiment classifier on a fixed, seeded, stratified 90% of the data and evaluates it on the\n"
                 "other 10% (accuracy, macro-F1, confusion matrix); the model file carries the tokenizer settings,\n"
                 "vocabulary and labels. With --cv K, runs K-fold cross-validation instead.",
                 opts,
                 "Data formats: label<TAB>text; CSV with a header naming a label and a text column (quoted fields may\n"
                 "hold commas and newlines); fastText's __label__X text; NAME.pos / NAME.neg files with one text per\n"
                 "line (rt-polarity; a directory uses the UTF-8 copies *.utf8.pos/neg when present). Labels come\n"
                 "from the data. Records with an empty text are skipped (and counted); invalid UTF-8, a text over\n"
                 "65536 bytes or a malformed line is an error naming the file and line.\n"};
    int npos, rc = cli_parse(&c, argc, argv, NULL, 0, &npos);
    if (rc) return rc == CLI_HELP ? 0 : rc;
    if (sent_kind_parse(model, &cfg.kind)) return cli_usage_error(&c, "%s", mm_errmsg());
    if (!out && !cv) return cli_usage_error(&c, "--out FILE is required (or --cv K)");
    if (cli_find(&c, "--cv")->seen && cv < 2) return cli_usage_error(&c, "--cv must be at least 2, got %d", cv);
    if (!strcmp(lang, "en")) cfg.lang = SENT_EN;
    else if (!strcmp(lang, "zh")) cfg.lang = SENT_ZH;
    else if (!strcmp(lang, "auto")) cfg.lang = -1;
    else return cli_usage_error(&c, "unknown --lang '%s' (expected en, zh or auto)", lang);
    cfg.lowercase = keep_case ? -1 : 1;
    if (negation && no_negation) return cli_usage_error(&c, "--negation and --no-negation contradict each other");
    cfg.negation = negation ? 1 : no_negation ? -1 : 0;
    cfg.decay = constant_lr ? -1 : 1;
    static const char *positive[] = {"--min-count", "--ngrams", "--buckets", "--dim", "--max-len", "--filters",
                                     "--units", "--epochs", "--batch-size"};
    int *vals[] = {&cfg.min_count, &cfg.ngrams, &cfg.buckets, &cfg.dim, &cfg.max_len, &cfg.filters,
                   &cfg.units, &cfg.epochs, &cfg.batch_size};
    for (int i = 0; i < 9; i++)
        if (cli_find(&c, positive[i])->seen && *vals[i] < (vals[i] == &cfg.epochs && cfg.kind == SENT_NB ? 0 : 1))
            return cli_usage_error(&c, "%s must be at least 1, got %d", positive[i], *vals[i]);
    if (cli_find(&c, "--epochs")->seen && cfg.epochs == 0 && cfg.kind == SENT_NB) cfg.epochs = -1;
    if (cfg.ngrams > 8) return cli_usage_error(&c, "--ngrams must be at most 8, got %d", cfg.ngrams);
    if (cli_find(&c, "--alpha")->seen && !(cfg.alpha > 0)) return cli_usage_error(&c, "--alpha must be positive, got %g", cfg.alpha);
    if (cli_find(&c, "--lr")->seen && !(cfg.lr > 0)) return cli_usage_error(&c, "--lr must be positive, got %g", cfg.lr);
    if (!(cfg.dropout >= 0 && cfg.dropout < 1)) return cli_usage_error(&c, "--dropout must be in [0, 1), got %g", cfg.dropout);
    if (cli_find(&c, "--dropout")->seen && cfg.dropout == 0) cfg.dropout = -1; /* explicit 0: none */
    if ((rc = cli_apply_threads(&c, "--threads", threads))) return rc;

    sent_corpus corpus;
    if ((rc = sent_load_cli(data, format, 0, NULL, &corpus))) return rc;
    if (corpus.n_labels < 2) {
        fprintf(stderr, "mediaml: %s: only one label ('%s'); a classifier needs at least 2\n", data, corpus.labels[0]);
        sent_corpus_free(&corpus);
        return EXIT_LIBRARY;
    }
    fprintf(stderr, "Data %s: %d texts, %d labels (", data, corpus.n, corpus.n_labels);
    for (int k = 0; k < corpus.n_labels; k++) fprintf(stderr, "%s%s", k ? ", " : "", corpus.labels[k]);
    fprintf(stderr, "), language %s\n",
            sent_lang_name(cfg.lang == SENT_EN || cfg.lang == SENT_ZH ? (sent_lang)cfg.lang : sent_detect_lang(&corpus)));
    if (cv) {
        rc = cross_validate(&cfg, &corpus, cv, json);
        sent_corpus_free(&corpus);
        return rc;
    }

    /* the fixed split: fold 0 of 10 (stratified, seeded) is the test set */
    int *fold = malloc((size_t)corpus.n * sizeof(int)), *tr = malloc((size_t)corpus.n * sizeof(int));
    int *te = malloc((size_t)corpus.n * sizeof(int)), ntr = 0, nte = 0;
    mm_status st = fold && tr && te ? MM_OK : mm_error(MM_ERR_NOMEM, "out of memory");
    if (!st && !all) st = sent_folds(&corpus, corpus.n >= 10 ? 10 : 2, cfg.seed, fold);
    for (int i = 0; !st && i < corpus.n; i++)
        if (!all && fold[i] == 0) te[nte++] = i;
        else tr[ntr++] = i;
    progress_state ps;
    progress_init(&ps, stdout, json, &cli_interrupted);
    ps.unit = "texts/s";
    cfg.progress = progress_callback;
    cfg.user = &ps;
    cli_catch_sigint();
    sent_model m = {0};
    double t0 = now();
    if (!st) {
        fprintf(stderr, "Training %s on %d texts%s\n", sent_kind_name(cfg.kind), ntr, all ? "" : " (testing on the other 10%)");
        st = sent_train(&cfg, &corpus, tr, ntr, &m);
    }
    double secs = now() - t0;
    cli_release_sigint();
    progress_finish(&ps);
    if (!st) st = sent_model_save(&m, out);
    if (!st) fprintf(stderr, "Saved %s (%ld parameters, %.1fs)%s\n", out, mm_count_params(m.net), secs,
                     cli_interrupted ? " after Ctrl-C" : "");
    sent_metrics r = {0};
    if (!st && nte) {
        st = sent_evaluate(&m, &corpus, te, nte, &r);
        if (!st) sent_print_metrics(stdout, &r, corpus.labels, "test", json);
    }
    sent_metrics_free(&r);
    sent_model_free(&m);
    free(fold), free(tr), free(te);
    sent_corpus_free(&corpus);
    if (st) return cli_library_error();
    return cli_interrupted ? 130 : 0;
}
