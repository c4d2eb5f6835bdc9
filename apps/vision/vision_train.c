/* The vision app's training and evaluation: data, model (new or resumed), fit with a
 * checkpoint per epoch, final save, test evaluation. */
#include "vision/vision.h"

#include <stdio.h>
#include <string.h>
#include <unistd.h>

/* Wraps the caller's callback to learn whether it asked to stop. */
typedef struct train_hook {
    const vision_train_config *c;
    int stopped;
} train_hook;

static int hook_callback(const mm_progress *p, void *user) {
    train_hook *h = user;
    int stop = h->c->callback ? h->c->callback(p, h->c->user) : 0;
    if (stop) h->stopped = 1;
    return stop;
}

/* A new model: architecture file or default, seeded weights, compiled, preprocessing and
 * labels set so they are stored in the model file. */
static mm_status new_model(const vision_train_config *c, const vision_train_report *r, mm_model **out) {
    mm_model *m = NULL;
    mm_status st;
    if (c->arch_path) {
        st = vision_model_from_arch_file(c->arch_path, &m);
        if (!st) st = vision_check_model(m, r->height, r->width, r->channels, r->num_classes, c->arch_path);
    } else {
        st = vision_default_model(r->height, r->width, r->channels, r->num_classes, &m);
    }
    if (!st) st = mm_model_init_weights(m, c->seed);
    if (!st)
        st = mm_compile(m, .optimizer = c->optimizer ? c->optimizer : "adam", .loss = "sparse_categorical_crossentropy",
                        .metrics = "accuracy", .learning_rate = c->learning_rate, .momentum = c->momentum);
    if (!st) {
        mm_preprocess pre = mm_preprocess_rescale(1.0f / 255.0f);
        mm_model_set_preprocess(m, &pre);
        int shape[MM_MAX_DIMS];
        mm_model_output_shape(m, shape);
        st = vision_set_default_labels(m, c->data_dir, shape[0]);
    }
    if (st) {
        mm_model_free(m);
        return st;
    }
    *out = m;
    return MM_OK;
}

static mm_status resumed_model(const vision_train_config *c, const vision_train_report *r, mm_model **out) {
    mm_model *m = NULL;
    mm_status st = mm_model_load(c->out_path, &m);
    if (!st) st = vision_check_model(m, r->height, r->width, r->channels, r->num_classes, c->out_path);
    if (st) {
        mm_model_free(m);
        return st;
    }
    *out = m;
    return MM_OK;
}

static mm_status fit(mm_model *m, const vision_train_config *c, mm_dataset *train, train_hook *hook, int initial) {
    return mm_fit(m, train, .epochs = c->epochs, .batch_size = c->batch_size, .seed = c->seed,
                  .validation_split = c->validation_split, .early_stopping_patience = c->early_stopping,
                  .callback = hook_callback, .user = hook, .checkpoint_path = c->out_path, .initial_epoch = initial);
}

mm_status vision_train(const vision_train_config *c, vision_train_report *r) {
    memset(r, 0, sizeof *r);
    if (!c || !c->data_dir || !c->out_path) return mm_error(MM_ERR_ARG, "vision_train: data_dir and out_path are required");
    if (c->epochs < 0 || c->batch_size < 0) return mm_error(MM_ERR_ARG, "vision_train: epochs and batch_size must be positive");
    vision_train_config cfg = *c;
    if (cfg.epochs == 0) cfg.epochs = 1;
    if (cfg.batch_size == 0) cfg.batch_size = 32;
    mm_dataset train = {0}, test = {0};
    mm_model *m = NULL;
    mm_status st = mm_idx_load_dataset(cfg.data_dir, "train", cfg.limit, &train);
    if (!st) st = mm_idx_load_dataset(cfg.data_dir, "test", cfg.limit, &test);
    if (st) goto done;
    r->height = train.x.shape[1];
    r->width = train.x.shape[2];
    r->channels = train.x.shape[3];
    r->num_classes = train.num_classes > test.num_classes ? train.num_classes : test.num_classes;
    long nval = (long)(train.x.shape[0] * (double)cfg.validation_split);
    r->train_count = train.x.shape[0] - nval;
    r->val_count = nval;
    r->test_count = test.x.shape[0];

    if (cfg.resume && access(cfg.out_path, F_OK) == 0) {
        st = resumed_model(&cfg, r, &m);
        r->resumed = 1;
    } else {
        st = new_model(&cfg, r, &m);
    }
    if (st) goto done;
    r->params = mm_count_params(m);
    r->initial_epoch = r->resumed ? mm_model_epochs_done(m) : 0;
    /* Resuming shuffles with the seed the run started with, so the result is identical to an
     * uninterrupted run. */
    if (r->resumed) cfg.seed = mm_model_fit_seed(m);
    if (cfg.on_start) cfg.on_start(r, cfg.user);

    train_hook hook = {&cfg, 0};
    if (r->initial_epoch < cfg.epochs) {
        st = fit(m, &cfg, &train, &hook, r->initial_epoch);
        if (st == MM_ERR_STATE && r->resumed && mm_model_epochs_done(m) == r->initial_epoch) {
            /* A model file without training config: compile it as a new model would be. */
            st = mm_compile(m, .optimizer = cfg.optimizer ? cfg.optimizer : "adam",
                            .loss = "sparse_categorical_crossentropy", .metrics = "accuracy",
                            .learning_rate = cfg.learning_rate, .momentum = cfg.momentum);
            if (!st) st = fit(m, &cfg, &train, &hook, r->initial_epoch);
        }
        if (st) goto done;
    }
    r->epochs_done = mm_model_epochs_done(m);
    r->stopped = hook.stopped;
    if (r->stopped) goto done; /* the checkpoint holds the last complete epoch */
    if (r->epochs_done > r->initial_epoch && (st = mm_model_save(m, cfg.out_path, 1))) goto done;
    st = vision_evaluate(m, &test, cfg.batch_size, 1, &r->test);

done:
    if (r->epochs_done == 0 && m) r->epochs_done = mm_model_epochs_done(m);
    mm_model_free(m);
    mm_dataset_free(&train);
    mm_dataset_free(&test);
    return st;
}

mm_status vision_eval(const char *model_path, const char *data_dir, long limit, int batch_size, int top_k,
                      mm_model **model, mm_eval_result *r) {
    memset(r, 0, sizeof *r);
    *model = NULL;
    mm_model *m = NULL;
    mm_dataset test = {0};
    mm_status st = mm_model_load(model_path, &m);
    if (st) return st;
    *model = m;
    if ((st = mm_idx_load_dataset(data_dir, "test", limit, &test))) return st;
    st = vision_check_model(m, test.x.shape[1], test.x.shape[2], test.x.shape[3], test.num_classes, model_path);
    if (!st) st = vision_evaluate(m, &test, batch_size, top_k, r);
    mm_dataset_free(&test);
    return st;
}
