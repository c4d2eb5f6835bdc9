/* mediaml vision train: flags, progress output, Ctrl-C handling around vision_train. */
#include "commands.h"
#include "interrupt.h"
#include "progress.h"
#include "vision/vision.h"

#include <stdio.h>
#include <string.h>
#include <unistd.h>


typedef struct train_ctx {
    const cli_cmd *cmd;
    const vision_train_config *cfg;
    progress_state progress;
} train_ctx;

static void commas(char *buf, size_t n, long v) {
    char tmp[32];
    int len = snprintf(tmp, sizeof tmp, "%ld", v), o = 0;
    for (int i = 0; i < len && o + 2 < (int)n; i++) {
        if (i && tmp[i - 1] != '-' && (len - i) % 3 == 0) buf[o++] = ',';
        buf[o++] = tmp[i];
    }
    buf[o] = 0;
}

static int train_callback(const mm_progress *p, void *user) {
    train_ctx *t = user;
    return progress_callback(p, &t->progress);
}

/* Header on stderr, so stdout holds only the per-epoch lines and the result. */
static void on_start(const vision_train_report *r, void *user) {
    train_ctx *t = user;
    const vision_train_config *c = t->cfg;
    char a[32], b[32], p[32];
    commas(a, sizeof a, r->train_count);
    commas(b, sizeof b, r->test_count);
    commas(p, sizeof p, r->params);
    fprintf(stderr, "Training on %s images %dx%dx%d (%d classes)", a, r->height, r->width, r->channels, r->num_classes);
    if (r->val_count) fprintf(stderr, ", validating on %ld", r->val_count);
    fprintf(stderr, ", testing on %s; model: %s params\n", b, p);
    if (r->resumed) {
        static const char *ignored[] = {"--arch", "--optimizer", "--lr", "--momentum"};
        for (size_t i = 0; i < sizeof ignored / sizeof *ignored; i++) {
            const cli_opt *o = cli_find(t->cmd, ignored[i]);
            if (o && o->seen) fprintf(stderr, "note: %s is ignored when resuming: %s keeps its own\n", ignored[i], c->out_path);
        }
        if (r->initial_epoch >= c->epochs)
            fprintf(stderr, "%s has already been trained for %d epoch%s (--epochs %d): nothing to train\n", c->out_path,
                    r->initial_epoch, r->initial_epoch == 1 ? "" : "s", c->epochs);
        else
            fprintf(stderr, "Resuming %s after epoch %d\n", c->out_path, r->initial_epoch);
    }
    fflush(stderr);
}

static int check_flags(const cli_cmd *c, const vision_train_config *v, int threads) {
    static const char *optimizers[] = {"adam", "sgd", "adamw", "rmsprop"};
    if (!v->out_path) return cli_usage_error(c, "--out FILE is required");
    if (v->epochs < 1) return cli_usage_error(c, "--epochs must be at least 1, got %d", v->epochs);
    if (v->batch_size < 1) return cli_usage_error(c, "--batch-size must be at least 1, got %d", v->batch_size);
    if (!(v->validation_split >= 0 && v->validation_split < 1))
        return cli_usage_error(c, "--validation-split must be in [0, 1), got %g", v->validation_split);
    if (cli_find(c, "--lr")->seen && !(v->learning_rate > 0))
        return cli_usage_error(c, "--lr must be positive, got %g", v->learning_rate);
    if (v->momentum < 0) return cli_usage_error(c, "--momentum must not be negative, got %g", v->momentum);
    if (cli_find(c, "--limit")->seen && v->limit < 1) return cli_usage_error(c, "--limit must be at least 1, got %ld", v->limit);
    if (v->early_stopping < 0)
        return cli_usage_error(c, "--early-stopping must not be negative, got %d", v->early_stopping);
    int known = 0;
    for (size_t i = 0; i < sizeof optimizers / sizeof *optimizers; i++) known |= !strcmp(v->optimizer, optimizers[i]);
    if (!known) return cli_usage_error(c, "unknown optimizer '%s' (expected adam, sgd, adamw or rmsprop)", v->optimizer);
    return cli_apply_threads(c, "--threads", threads);
}

int cmd_vision_train(int argc, char **argv) {
    char data_default[4096];
    vision_train_config v = {.data_dir = vision_default_data_dir(data_default, sizeof data_default),
                             .epochs = 1,
                             .batch_size = 32,
                             .optimizer = "adam"};
    int threads = 0, json = 0;
    cli_opt opts[] = {
        {"--data", OPT_STR, &v.data_dir, "DIR", "IDX data set directory (default $MEDIAML_DATA/mnist, else ../shared/data/mnist)", 0},
        {"--epochs", OPT_INT, &v.epochs, "N", "total epochs to train (default 1)", 0},
        {"--batch-size", OPT_INT, &v.batch_size, "B", "examples per batch (default 32)", 0},
        {"--out", OPT_STR, &v.out_path, "FILE", "model file to write, also after every epoch (required)", 0},
        {"--validation-split", OPT_FLOAT, &v.validation_split, "F", "validate on this last fraction of the training data (default 0)", 0},
        {"--arch", OPT_STR, &v.arch_path, "FILE.json", "architecture JSON (default: Conv2D(32,3x3,relu), MaxPooling2D, Flatten, Dense softmax)", 0},
        {"--lr", OPT_FLOAT, &v.learning_rate, "LR", "learning rate (default: the optimizer's, 0.001 for adam)", 0},
        {"--optimizer", OPT_STR, &v.optimizer, "NAME", "adam, sgd, adamw or rmsprop (default adam)", 0},
        {"--momentum", OPT_FLOAT, &v.momentum, "M", "momentum for sgd and rmsprop (default 0)", 0},
        {"--seed", OPT_U64, &v.seed, "S", "seed for weight initialization and shuffling (default 0)", 0},
        {"--threads", OPT_INT, &threads, "T", "kernel threads (default $MEDIAML_THREADS, else the core count)", 0},
        {"--limit", OPT_LONG, &v.limit, "N", "use only the first N examples of each split", 0},
        {"--resume", OPT_BOOL, &v.resume, NULL, "continue the model in --out, if it exists, up to --epochs", 0},
        {"--early-stopping", OPT_INT, &v.early_stopping, "PATIENCE", "stop after PATIENCE epochs without a better val_loss (loss without validation)", 0},
        {"--json", OPT_BOOL, &json, NULL, "one JSON object per epoch and one with the test result", 0},
        {NULL, 0, NULL, NULL, NULL, 0}};
    cli_cmd c = {"vision train", "--out FILE [OPTIONS]",
                 "Trains an image classifier, rescaling pixels by 1/255 (stored in the model file), saves it with its\n"
                 "optimizer state after every epoch and evaluates it on the test split.",
                 opts,
                 "Progress: a bar on a terminal, else one line per epoch (--json: one JSON object per line).\n"
                 "Ctrl-C stops training at the end of the current epoch (a second Ctrl-C quits at once); --out\n"
                 "then holds the last complete epoch and --resume continues from it.\n"};
    int npos, rc = cli_parse(&c, argc, argv, NULL, 0, &npos);
    if (rc) return rc == CLI_HELP ? 0 : rc;
    if ((rc = check_flags(&c, &v, threads))) return rc;

    train_ctx t = {&c, &v, {0}};
    progress_init(&t.progress, stdout, json, &cli_interrupted);
    v.callback = train_callback;
    v.user = &t;
    v.on_start = on_start;

    cli_catch_sigint();

    vision_train_report r;
    mm_status st = vision_train(&v, &r);
    cli_release_sigint();
    progress_finish(&t.progress);
    if (st) return cli_library_error();
    if (r.stopped) {
        fprintf(stderr, "mediaml: stopped; %s holds epoch %d (continue with --resume)\n", v.out_path, r.epochs_done);
        return 130;
    }
    progress_test(&t.progress, r.test.loss, r.test.accuracy);
    if (r.epochs_done > r.initial_epoch)
        fprintf(stderr, "Saved %s (%d epoch%s)\n", v.out_path, r.epochs_done, r.epochs_done == 1 ? "" : "s");
    mm_eval_result_free(&r.test);
    return 0;
}
