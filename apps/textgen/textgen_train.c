/* textgen training: data and tokenizer, a new or resumed model, then intervals of eval_every
 * steps on freshly sampled windows, each ended by a validation pass and a checkpoint. */
#include "textgen/textgen.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef struct round_hook {
    const textgen_train_config *c;
    textgen_train_report *r;
    long begin, n_steps;
    double train_seconds;
    int stopped;
} round_hook;

static int hook(const mm_progress *p, void *user) {
    round_hook *h = user;
    const textgen_train_config *c = h->c;
    if (!p->epoch_end) {
        h->train_seconds = p->seconds;
        if (!c->on_batch) return 0;
        textgen_batch_info b = {.step = h->begin + p->batch, .steps = h->r->steps, .round_step = p->batch,
                                .round_steps = p->batches, .loss = p->loss, .seconds = p->seconds};
        int stop = c->on_batch(&b, c->user);
        if (stop) h->stopped = 1;
        return stop;
    }
    /* the interval is done and checkpointed */
    textgen_eval_info e = {.step = h->begin + p->batches, .steps = h->r->steps, .train_loss = p->loss,
                           .val_loss = p->val_loss, .val_accuracy = p->val_accuracy,
                           .train_seconds = h->train_seconds, .eval_seconds = p->seconds - h->train_seconds};
    double tokens = (double)p->seen * h->r->model.context;
    e.tokens_per_second = h->train_seconds > 0 ? tokens / h->train_seconds : 0;
    h->r->last = e;
    h->r->has_eval = 1;
    h->r->steps_done = e.step;
    h->r->train_seconds += h->train_seconds;
    int stop = c->on_eval ? c->on_eval(&e, c->user) : 0;
    if (stop) h->stopped = 1;
    return stop;
}

static mm_status compile_new(mm_model *m, const textgen_train_config *c, long steps) {
    float wd = c->weight_decay < 0 ? 0.01f : c->weight_decay;
    float clip = c->clipnorm < 0 ? 1.0f : c->clipnorm;
    int warmup = c->warmup;
    if (warmup < 0) warmup = steps / 10 < 100 ? (int)(steps / 10) : 100;
    const char *schedule = c->schedule ? c->schedule : "cosine";
    if (strcmp(schedule, "cosine") && strcmp(schedule, "constant"))
        return mm_error(MM_ERR_ARG, "unknown schedule '%s' (expected cosine or constant)", schedule);
    int cosine = !strcmp(schedule, "cosine");
    long decay = steps - warmup;
    if (decay < 1) decay = 1;
    float min_lr = c->min_lr < 0 ? 0.1f : c->min_lr;
    return mm_compile(m, .optimizer = c->optimizer ? c->optimizer : "adamw", .loss = "sparse_categorical_crossentropy",
                      .metrics = "accuracy", .learning_rate = c->lr > 0 ? c->lr : 1e-3f, .weight_decay = wd,
                      .global_clipnorm = clip, .schedule = cosine ? "cosine" : "constant", .warmup_steps = warmup,
                      .decay_steps = cosine ? (int)decay : 0, .alpha = cosine ? min_lr : 0);
}

static mm_status set_meta(mm_model *m, const mm_tokenizer *tok, const textgen_config *cfg, const textgen_train_meta *meta) {
    char *json = NULL;
    mm_status st = mm_tokenizer_to_json(tok, &json);
    if (!st) st = mm_model_set_metadata(m, TEXTGEN_META_TOKENIZER, json);
    free(json);
    json = NULL;
    if (!st) st = textgen_meta_to_json(cfg, meta, &json);
    if (!st) st = mm_model_set_metadata(m, TEXTGEN_META_CONFIG, json);
    free(json);
    return st;
}

mm_status textgen_train(const textgen_train_config *c, textgen_train_report *r) {
    memset(r, 0, sizeof *r);
    if (!c || !c->data_path || !c->out_path) return mm_error(MM_ERR_ARG, "textgen_train: data_path and out_path are required");
    if (c->batch_size < 0 || c->steps < 0 || c->eval_every < 0 || !(c->epochs >= 0))
        return mm_error(MM_ERR_ARG, "textgen_train: batch size, steps, epochs and eval interval must not be negative");
    if (!(c->val_fraction >= 0 && c->val_fraction < 1))
        return mm_error(MM_ERR_ARG, "validation fraction must be in [0, 1), got %g", c->val_fraction);
    char *text = NULL;
    size_t len = 0;
    mm_tokenizer *tok = NULL;
    mm_model *m = NULL;
    textgen_corpus corpus = {0};
    mm_dataset val = {0}, train = {0};
    textgen_lm lm = {0};
    textgen_config cfg = c->model;
    textgen_train_meta meta = {0};
    mm_status st;

    int resume = c->resume && access(c->out_path, F_OK) == 0;
    if (resume) {
        /* the file's model, tokenizer and interval settings; the data is read again */
        if ((st = textgen_load(c->out_path, &lm))) goto done;
        m = lm.model, tok = lm.tok, cfg = lm.cfg, meta = lm.meta;
        lm.model = NULL, lm.tok = NULL;
        if (meta.batch_size < 1 || meta.eval_every < 1) {
            st = mm_error(MM_ERR_FORMAT, "%s has no training settings in its textgen metadata: cannot resume", c->out_path);
            goto done;
        }
        if (!mm_model_is_compiled(m)) {
            st = mm_error(MM_ERR_STATE, "%s holds no training state (optimizer): cannot resume", c->out_path);
            goto done;
        }
        r->resumed = 1;
        meta.limit = c->limit > 0 ? c->limit : meta.limit;
    } else {
        snprintf(meta.tokenizer, sizeof meta.tokenizer, "%s", c->tokenizer ? c->tokenizer : "char");
        meta.batch_size = c->batch_size > 0 ? c->batch_size : 32;
        meta.eval_every = c->eval_every > 0 ? c->eval_every : 250;
        meta.seed = c->seed;
        meta.val_fraction = c->val_fraction > 0 ? c->val_fraction : 0.1f;
        meta.val_windows = c->val_windows;
        meta.limit = c->limit;
        if (c->csv_column) {
            if (strlen(c->csv_column) >= sizeof meta.csv_column) {
                st = mm_error(MM_ERR_ARG, "CSV column name '%s' is too long", c->csv_column);
                goto done;
            }
            snprintf(meta.csv_column, sizeof meta.csv_column, "%s", c->csv_column);
        }
    }
    if (meta.csv_column[0]) st = textgen_read_csv_column(c->data_path, meta.csv_column, meta.limit, &text, &len);
    else st = textgen_read_text(c->data_path, meta.limit, &text, &len);
    if (st) goto done;
    if (!resume && (st = textgen_make_tokenizer(meta.tokenizer, text, len, c->vocab_size, c->tokenizer_dir, &tok))) goto done;
    if ((st = textgen_corpus_encode(tok, text, len, meta.val_fraction, &corpus))) {
        if (resume) {
            char msg[512];
            snprintf(msg, sizeof msg, "%s", mm_errmsg());
            st = mm_error(st, "%s with the tokenizer of %s: %s", c->data_path, c->out_path, msg);
        }
        goto done;
    }
    free(text);
    text = NULL;
    r->train_tokens = corpus.n_train;
    r->val_tokens = corpus.n - corpus.n_train;
    if (!resume) cfg.vocab_size = mm_tokenizer_vocab_size(tok);
    r->vocab_size = cfg.vocab_size;

    /* steps: explicit, from --epochs, or the stored plan when resuming */
    long steps = c->steps;
    if (c->epochs > 0) {
        double per_step = (double)meta.batch_size * cfg.context;
        steps = (long)ceil(c->epochs * (double)corpus.n_train / per_step);
        if (steps < 1) steps = 1;
    }
    if (steps <= 0) steps = resume && meta.steps > 0 ? meta.steps : 2000;
    meta.steps = steps;
    r->steps = steps;

    if (corpus.n_train < (size_t)cfg.context + 1) {
        st = mm_error(MM_ERR_ARG, "%s: the training part has %zu tokens, fewer than context + 1 = %d (use more text or a smaller --context)",
                      c->data_path, corpus.n_train, cfg.context + 1);
        goto done;
    }
    if ((st = textgen_fixed_windows(corpus.ids + corpus.n_train, corpus.n - corpus.n_train, cfg.context, meta.val_windows,
                                    &val))) {
        char msg[512];
        snprintf(msg, sizeof msg, "%s", mm_errmsg());
        st = mm_error(st, "%s: %s", c->data_path, msg);
        goto done;
    }
    r->val_windows = val.x.shape[0];

    if (!resume) {
        if ((st = textgen_build(&cfg, &m))) goto done;
        if ((st = mm_model_init_weights(m, meta.seed))) goto done;
        if ((st = compile_new(m, c, steps))) goto done;
    }
    if ((st = set_meta(m, tok, &cfg, &meta))) goto done;
    r->params = mm_count_params(m);
    r->model = cfg;
    r->meta = meta;
    r->initial_step = r->steps_done = resume ? mm_model_step(m) : 0;
    if (c->on_start) c->on_start(r, c->user);

    round_hook h = {.c = c, .r = r};
    while (r->steps_done < steps && !h.stopped) {
        long begin = mm_model_step(m);
        long n_steps = steps - begin < meta.eval_every ? steps - begin : meta.eval_every;
        mm_dataset_free(&train);
        uint64_t seed = meta.seed * 0x9E3779B97F4A7C15ull + (uint64_t)begin;
        if ((st = textgen_sample_windows(corpus.ids, corpus.n_train, cfg.context, n_steps * meta.batch_size, seed, &train)))
            goto done;
        h.begin = begin;
        h.n_steps = n_steps;
        h.train_seconds = 0;
        int epoch = mm_model_epochs_done(m);
        st = mm_fit(m, &train, .epochs = epoch + 1, .initial_epoch = epoch, .batch_size = meta.batch_size,
                    .shuffle = -1, .seed = meta.seed, .validation_data = &val, .checkpoint_path = c->out_path,
                    .callback = hook, .user = &h);
        if (st) goto done;
        if (mm_model_epochs_done(m) == epoch) break; /* stopped inside the interval: not saved */
    }
    r->stopped = h.stopped;

done:
    textgen_lm_free(&lm);
    mm_tokenizer_free(tok);
    mm_model_free(m);
    textgen_corpus_free(&corpus);
    mm_dataset_free(&val);
    mm_dataset_free(&train);
    free(text);
    return st;
}
