/* mediaml recommend train: flags, per-epoch lines (text or JSON), Ctrl-C handling around
 * rec_train, then the evaluation of the saved model beside the popularity baseline. */
#include "commands.h"
#include "interrupt.h"
#include "json.h"
#include "recommend/rec_model.h"
#include "recommend_out.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>


typedef struct train_ctx {
    int json, bar, bar_shown, stop_noted, epoch, epochs;
} train_ctx;

/* A progress bar on a terminal (text mode only); Ctrl-C is noticed here. */
static int on_batch(const mm_progress *p, void *user) {
    train_ctx *t = user;
    if (cli_interrupted && !t->stop_noted) {
        if (t->bar_shown) fputc('\n', stdout), t->bar_shown = 0;
        fflush(stdout);
        fprintf(stderr, "Stopping after epoch %d (Ctrl-C again to quit now)\n", t->epoch + 1);
        t->stop_noted = 1;
    }
    if (t->bar && !p->epoch_end && (p->batch == 1 || p->batch % 50 == 0 || p->batch == p->batches)) {
        printf("\rEpoch %d/%d %ld/%ld - loss: %.4f\033[K", t->epoch + 1, t->epochs, p->batch, p->batches, p->loss);
        fflush(stdout);
        t->bar_shown = 1;
    }
    return cli_interrupted != 0;
}

static int on_epoch(const rec_epoch_info *e, void *user) {
    train_ctx *t = user;
    t->epoch = e->epoch;
    if (t->bar_shown) fputs("\r\033[K", stdout), t->bar_shown = 0;
    if (t->json) {
        printf("{");
        if (e->phase) printf("\"pretrain\":\"%s\",", e->phase);
        printf("\"epoch\":%d,\"epochs\":%d,\"examples\":%ld,\"loss\":", e->epoch, e->epochs, e->examples);
        json_number(stdout, e->loss);
        if (e->has_rmse) {
            json_field_number(stdout, "test_rmse", e->rmse);
            json_field_number(stdout, "test_mae", e->mae);
        }
        if (e->has_ncf) {
            json_field_number(stdout, "hr@10", e->hr);
            json_field_number(stdout, "ndcg@10", e->ndcg);
        }
        json_field_number(stdout, "seconds", e->seconds);
        fputs("}\n", stdout);
    } else {
        if (e->phase) printf("Pretraining %s: ", !strcmp(e->phase, "gmf") ? "GMF" : "MLP");
        printf("Epoch %d/%d - %ld examples - loss: %.4f", e->epoch, e->epochs, e->examples, e->loss);
        if (e->has_rmse) printf(" - test RMSE: %.4f - MAE: %.4f", e->rmse, e->mae);
        if (e->has_ncf) printf(" - HR@10: %.4f - NDCG@10: %.4f", e->hr, e->ndcg);
        printf(" - %.1fs\n", e->seconds);
    }
    fflush(stdout);
    return 0;
}

static void on_start(const rec_train_config *c, const rec_train_report *r, void *user) {
    (void)user;
    fprintf(stderr, "Training %s on %s (split %s): %ld training / %ld test ratings, %d users, %d items; %ld params\n",
            rec_kind_name(c->kind), c->data_dir, c->split, r->train_count, r->test_count, r->users, r->items, r->params);
    if (c->kind == REC_MF)
        fprintf(stderr, "Settings: factors %d, l2 %g, l2 bias %g, %s lr %g (%s), batch %d, %d epochs, seed %llu\n", c->factors,
                c->l2, c->l2_bias, c->optimizer, c->lr, c->schedule, c->batch_size, c->epochs, (unsigned long long)c->seed);
    else if (c->kind == REC_NEUMF) {
        fprintf(stderr, "Settings: GMF factors %d, MLP", c->factors);
        for (int k = 0; k < 7 && c->mlp[k] > 0; k++) fprintf(stderr, "%s%d", k ? "-" : " ", c->mlp[k]);
        fprintf(stderr, ", %d negatives, l2 %g, dropout %g, %s lr %g (%s), batch %d, %d epochs, seed %llu", c->negatives,
                c->l2, c->dropout, c->optimizer, c->lr, c->schedule, c->batch_size, c->epochs, (unsigned long long)c->seed);
        fprintf(stderr, ", embeddings %s(%g) with %s updates", c->init, c->init_scale,
                c->dense_embeddings > 0 ? "dense" : "sparse");
        if (c->pretrain > 0) fprintf(stderr, "; GMF and MLP pretrained %d epochs each (adam lr %g)", c->pretrain, c->pretrain_lr);
        fputc('\n', stderr);
    } else
        fputs("Settings: item counts of the training split\n", stderr);
    fflush(stderr);
}

/* "64,32,16,8" -> mlp[] */
static int parse_mlp(const char *s, int *mlp) {
    int n = 0;
    memset(mlp, 0, 7 * sizeof *mlp);
    while (*s) {
        char *end;
        long v = strtol(s, &end, 10);
        if (end == s || v < 1 || v > 65536 || n == 6) return -1;
        mlp[n++] = (int)v;
        s = end;
        if (*s == ',') s++;
        else if (*s) return -1;
    }
    return n >= 2 && mlp[0] % 2 == 0 ? 0 : -1;
}

int cmd_recommend_train(int argc, char **argv) {
    char data_default[4096];
    const char *model = NULL, *mlp = NULL;
    rec_train_config c = {.data_dir = rec_default_data_dir(data_default, sizeof data_default)};
    int threads = 0, json = 0, dense = 0, sparse = 0;
    cli_opt opts[] = {
        {"--model", OPT_STR, &model, "TYPE", "mf (rating prediction), neumf (implicit feedback) or pop (required)", 0},
        {"--data", OPT_STR, &c.data_dir, "DIR", "MovieLens directory (default $MEDIAML_DATA/movielens-100k, else ../shared/data/movielens-100k)", 0},
        {"--split", OPT_STR, &c.split, "NAME", "u1..u5, ua, ub (DIR/NAME.base + .test) or loo (default u1 for mf, loo otherwise)", 0},
        {"--out", OPT_STR, &c.out_path, "FILE", "model file to write (required)", 0},
        {"--epochs", OPT_INT, &c.epochs, "N", "epochs (default: mf 20, neumf 8; pop: 2 exact steps)", 0},
        {"--factors", OPT_INT, &c.factors, "K", "mf: latent factors; neumf: GMF factors (default: mf 64, neumf 128)", 0},
        {"--mlp", OPT_STR, &mlp, "L0,L1,..", "neumf: MLP embedding concat size, then the relu tower (default 64,32,16,8)", 0},
        {"--lr", OPT_FLOAT, &c.lr, "LR", "learning rate (default: mf 0.002, neumf 0.001)", 0},
        {"--l2", OPT_FLOAT, &c.l2, "L", "L2 on each looked-up embedding row (default: mf 0.0004, neumf 1e-05)", 0},
        {"--l2-bias", OPT_FLOAT, &c.l2_bias, "L", "mf: L2 on the user and item biases (default 0)", 0},
        {"--dropout", OPT_FLOAT, &c.dropout, "P", "neumf: dropout after each MLP layer (default 0)", 0},
        {"--optimizer", OPT_STR, &c.optimizer, "NAME", "adam (default), sgd, adamw or rmsprop", 0},
        {"--schedule", OPT_STR, &c.schedule, "NAME", "learning rate: constant or cosine (decays to 0 over the epochs); default: mf constant, neumf cosine", 0},
        {"--pretrain", OPT_INT, &c.pretrain, "N", "neumf: first train GMF and MLP alone for N epochs each (0: none)", 0},
        {"--pretrain-lr", OPT_FLOAT, &c.pretrain_lr, "LR", "neumf: Adam learning rate of the pretraining (default 0.001)", 0},
        {"--init", OPT_STR, &c.init, "NAME", "neumf: embedding initializer, uniform or random_normal (default random_normal)", 0},
        {"--init-scale", OPT_FLOAT, &c.init_scale, "S", "neumf: its maxval (uniform) or stddev (random_normal); default 0.01", 0},
        {"--dense-embeddings", OPT_BOOL, &dense, NULL, "neumf: dense Adam on the embedding tables (every row, every step; the default)", 0},
        {"--sparse-embeddings", OPT_BOOL, &sparse, NULL, "neumf: sparse (lazy) updates of the looked-up rows only (large catalogues)", 0},
        {"--batch-size", OPT_INT, &c.batch_size, "B", "examples per batch (default 256)", 0},
        {"--negatives", OPT_INT, &c.negatives, "N", "neumf: sampled negatives per positive, fresh every epoch (default 6)", 0},
        {"--seed", OPT_U64, &c.seed, "S", "seed for initialization, shuffling and negatives (default 0)", 0},
        {"--threads", OPT_INT, &threads, "T", "kernel threads (default $MEDIAML_THREADS, else the core count)", 0},
        {"--json", OPT_BOOL, &json, NULL, "one JSON object per epoch and one with the evaluation", 0},
        {NULL, 0, NULL, NULL, NULL, 0}};
    cli_cmd cmd = {"recommend train", "--model mf|neumf|pop --out FILE [OPTIONS]",
                   "Trains a recommender on a split of a MovieLens data set, saves it with its user and item id maps\n"
                   "and the data directory (for 'top' and 'similar'), and evaluates it: RMSE/MAE (mf), HR@10 and\n"
                   "NDCG@10 with 99 sampled negatives (NCF protocol, seed 42) and full-ranking Recall@10/NDCG@10,\n"
                   "beside the popularity baseline.",
                   opts,
                   "Models:\n"
                   "  mf     rating = global bias + user bias + item bias + <p_u, q_i>, MSE, predictions clipped\n"
                   "         to the rating range\n"
                   "  neumf  GMF and MLP branches -> Dense(1, sigmoid), binary cross-entropy on every rating as a\n"
                   "         positive plus N sampled negatives\n"
                   "  pop    the number of training ratings of each item\n"
                   "Ctrl-C stops training at the end of the current epoch and saves the model.\n"};
    int npos, rc = cli_parse(&cmd, argc, argv, NULL, 0, &npos);
    if (rc) return rc == CLI_HELP ? 0 : rc;
    if (!model) return cli_usage_error(&cmd, "--model is required (mf, neumf or pop)");
    if (rec_kind_parse(model, &c.kind) != MM_OK) return cli_usage_error(&cmd, "%s", mm_errmsg());
    if (!c.out_path) return cli_usage_error(&cmd, "--out FILE is required");
    if (c.split && !rec_split_valid(c.split))
        return cli_usage_error(&cmd, "unknown split '%s' (expected u1..u5, ua, ub or loo)", c.split);
    if (cli_find(&cmd, "--epochs")->seen && c.epochs < 1) return cli_usage_error(&cmd, "--epochs must be at least 1, got %d", c.epochs);
    if (cli_find(&cmd, "--factors")->seen && c.factors < 1) return cli_usage_error(&cmd, "--factors must be at least 1, got %d", c.factors);
    if (cli_find(&cmd, "--batch-size")->seen && c.batch_size < 1)
        return cli_usage_error(&cmd, "--batch-size must be at least 1, got %d", c.batch_size);
    if (cli_find(&cmd, "--negatives")->seen && c.negatives < 1)
        return cli_usage_error(&cmd, "--negatives must be at least 1, got %d", c.negatives);
    if (cli_find(&cmd, "--lr")->seen && !(c.lr > 0)) return cli_usage_error(&cmd, "--lr must be positive, got %g", c.lr);
    if (c.l2 < 0 || c.l2_bias < 0) return cli_usage_error(&cmd, "--l2 and --l2-bias must not be negative");
    /* an explicit 0 means none (0 in the config means the default) */
    if (cli_find(&cmd, "--l2")->seen && c.l2 == 0) c.l2 = -1;
    if (cli_find(&cmd, "--l2-bias")->seen && c.l2_bias == 0) c.l2_bias = -1;
    if (cli_find(&cmd, "--dropout")->seen && c.dropout == 0) c.dropout = -1;
    if (dense && sparse) return cli_usage_error(&cmd, "--dense-embeddings and --sparse-embeddings exclude each other");
    c.dense_embeddings = dense ? 1 : sparse ? -1 : 0;
    if (cli_find(&cmd, "--init-scale")->seen && !(c.init_scale > 0))
        return cli_usage_error(&cmd, "--init-scale must be positive, got %g", c.init_scale);
    if (c.pretrain < 0) return cli_usage_error(&cmd, "--pretrain must not be negative, got %d", c.pretrain);
    if (cli_find(&cmd, "--pretrain")->seen && c.pretrain == 0) c.pretrain = -1;
    if (cli_find(&cmd, "--pretrain-lr")->seen && !(c.pretrain_lr > 0))
        return cli_usage_error(&cmd, "--pretrain-lr must be positive, got %g", c.pretrain_lr);
    if (!(c.dropout >= 0 && c.dropout < 1)) return cli_usage_error(&cmd, "--dropout must be in [0, 1), got %g", c.dropout);
    if (mlp && parse_mlp(mlp, c.mlp))
        return cli_usage_error(&cmd, "--mlp expects 2 to 6 positive sizes separated by commas, the first even, got '%s'", mlp);
    if (c.optimizer) {
        static const char *known[] = {"adam", "sgd", "adamw", "rmsprop"};
        int ok = 0;
        for (size_t i = 0; i < sizeof known / sizeof *known; i++) ok |= !strcmp(c.optimizer, known[i]);
        if (!ok) return cli_usage_error(&cmd, "unknown optimizer '%s' (expected adam, sgd, adamw or rmsprop)", c.optimizer);
    }
    if (c.schedule && strcmp(c.schedule, "constant") && strcmp(c.schedule, "cosine"))
        return cli_usage_error(&cmd, "unknown schedule '%s' (expected constant or cosine)", c.schedule);
    if ((rc = cli_apply_threads(&cmd, "--threads", threads))) return rc;
    if (access(c.data_dir, F_OK) != 0) {
        fprintf(stderr, "mediaml: data directory %s not found (give --data DIR or set MEDIAML_DATA)\n", c.data_dir);
        return EXIT_LIBRARY;
    }

    train_ctx t = {.json = json, .bar = !json && isatty(fileno(stdout))};
    c.eval_every_epoch = 1;
    c.on_epoch = on_epoch;
    c.user = &t;
    c.on_batch = on_batch;
    c.batch_user = &t;
    rec_train_defaults(&c);
    t.epochs = c.epochs;

    cli_catch_sigint();
    rec_train_report r;
    mm_status st = rec_train(&c, on_start, &r);
    cli_release_sigint();
    if (t.bar_shown) fputc('\n', stdout);
    fflush(stdout);
    if (st) return cli_library_error();
    if (r.stopped && r.epochs_done == 0) {
        fputs("mediaml: stopped during pretraining; nothing saved\n", stderr);
        return 130;
    }
    fprintf(stderr, "Saved %s (%d epoch%s, %.1fs)\n", c.out_path, r.epochs_done, r.epochs_done == 1 ? "" : "s", r.seconds);
    if (r.stopped) {
        fprintf(stderr, "mediaml: stopped; %s holds epoch %d\n", c.out_path, r.epochs_done);
        return 130;
    }
    /* the evaluation of the saved model, as 'recommend eval' prints it */
    rec_model m;
    rec_data d;
    rec_eval_report e;
    if (rec_model_load(c.out_path, &m)) return cli_library_error();
    st = rec_data_load(c.data_dir, c.split, &m, &d);
    if (st == MM_OK) st = rec_evaluate(&m, &d, &e);
    if (st == MM_OK) rec_print_eval(&m, &d, &e, json, r.seconds);
    rec_data_free(&d);
    rec_model_free(&m);
    return st ? cli_library_error() : 0;
}
