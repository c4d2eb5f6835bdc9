/* Training, evaluation (accuracy, macro-F1, confusion matrix) and k-fold cross-validation. */
#include "sentiment/sentiment.h"
#include "sentiment/sent_internal.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

void sent_metrics_free(sent_metrics *m) {
    free(m->confusion);
    memset(m, 0, sizeof *m);
}

/* Input rows for examples idx[0..n) (all when idx is NULL) into x [n, max_len]. */
static mm_status encode(const sent_model *m, const sent_corpus *c, const int *idx, int n, mm_array *x) {
    mm_status st = mm_array_alloc(x, 2, (int[]){n, m->max_len});
    sent_tokens t = {0};
    for (int e = 0; e < n && !st; e++) {
        const char *s = c->text[idx ? idx[e] : e];
        st = sent_tokenize(m->lang, m->tok, s, strlen(s), &t);
        if (!st) sent_features(&m->vocab, &t, -1, x->data + (size_t)e * (size_t)m->max_len, m->max_len);
    }
    sent_tokens_free(&t);
    if (st) mm_array_free(x);
    return st;
}

static int tok_flags(const sent_config *c) {
    return (c->lowercase > 0 ? SENT_TOK_LOWER : 0) | (c->negation > 0 ? SENT_TOK_NEGATE : 0);
}

/* The longest input row of the training texts, capped. */
static mm_status longest(const sent_config *cfg, sent_lang lang, const sent_vocab *v, const sent_corpus *c,
                         const int *idx, int n, int *out) {
    int cap = cfg->max_len > 0 ? cfg->max_len : cfg->kind == SENT_FASTTEXT ? 1024 : lang == SENT_ZH ? 256 : 100;
    float *row = malloc((size_t)cap * sizeof(float));
    if (!row) return mm_error(MM_ERR_NOMEM, "out of memory");
    sent_tokens t = {0};
    mm_status st = MM_OK;
    int best = 1;
    for (int e = 0; e < n && !st; e++) {
        const char *s = c->text[idx ? idx[e] : e];
        st = sent_tokenize(lang, tok_flags(cfg), s, strlen(s), &t);
        int k = st ? 0 : sent_features(v, &t, -1, row, cap);
        if (k > best) best = k;
    }
    sent_tokens_free(&t);
    free(row);
    *out = best;
    return st;
}

/* nbft's fastText half: a fastText network trained alone on the same rows, its weights then
 * copied into the ensemble's ft_ layers (the classifier's pre-softmax part). */
static mm_status train_fasttext_part(const sent_config *cfg, sent_lang lang, sent_model *ens, const mm_dataset *d) {
    sent_config fc = *cfg;
    fc.kind = SENT_FASTTEXT;
    sent_model ft;
    mm_status st = sent_model_build(&fc, lang, &ens->vocab, ens->max_len, ens->n_labels, ens->labels, &ft);
    if (st) return st;
    const int n = d->x.shape[0], steps = fc.epochs * ((n + fc.batch_size - 1) / fc.batch_size);
    st = mm_compile(ft.net, .optimizer = fc.optimizer, .loss = "sparse_categorical_crossentropy", .metrics = "accuracy",
                    .learning_rate = fc.lr, .schedule = fc.decay > 0 && steps > 0 ? "cosine" : NULL, .decay_steps = steps);
    if (!st && fc.epochs > 0)
        st = mm_fit(ft.net, d, .epochs = fc.epochs, .batch_size = fc.batch_size, .seed = fc.seed, .callback = fc.progress,
                    .user = fc.user);
    static const char *from[] = {"features/embeddings", "classifier/kernel", "classifier/bias"};
    static const char *to[] = {"ft_features/embeddings", "ft_classifier/kernel", "ft_classifier/bias"};
    const size_t R = (size_t)sent_vocab_rows(&ens->vocab), D = (size_t)fc.dim, K = (size_t)ens->n_labels;
    const size_t size[] = {R * D, D * K, K};
    float *buf = st ? NULL : malloc(R * D * sizeof(float));
    if (!st && !buf) st = mm_error(MM_ERR_NOMEM, "out of memory");
    for (int i = 0; !st && i < 3; i++) {
        st = mm_model_get_weights(ft.net, from[i], buf, size[i]);
        if (!st) st = mm_model_set_weights(ens->net, to[i], buf, size[i]);
    }
    free(buf);
    sent_model_free(&ft);
    return st;
}

mm_status sent_train(const sent_config *cfg0, const sent_corpus *c, const int *idx, int n, sent_model *out) {
    memset(out, 0, sizeof *out);
    sent_config cfg = *cfg0;
    if (!idx) n = c->n;
    if (n < 1) return mm_error(MM_ERR_ARG, "no training examples");
    sent_lang lang = cfg.lang == SENT_ZH || cfg.lang == SENT_EN ? (sent_lang)cfg.lang : sent_detect_lang(c);
    sent_config_defaults(&cfg, lang);
    sent_vocab v = {0};
    int max_len = 0;
    mm_status st = sent_vocab_build(c, idx, n, lang, tok_flags(&cfg), cfg.min_count, cfg.ngrams, cfg.buckets, &v);
    v.bag = sent_kind_is_bag(cfg.kind);
    if (!st) st = longest(&cfg, lang, &v, c, idx, n, &max_len);
    if (!st) st = sent_model_build(&cfg, lang, &v, max_len, c->n_labels, c->labels, out);
    sent_vocab_free(&v);
    if (st) return st;
    mm_dataset d = {0};
    st = encode(out, c, idx, n, &d.x);
    if (!st) st = mm_array_alloc(&d.y, 1, (int[]){n});
    if (!st) {
        d.num_classes = c->n_labels;
        for (int e = 0; e < n; e++) d.y.data[e] = (float)c->label[idx ? idx[e] : e];
        if (cfg.kind == SENT_NB || cfg.kind == SENT_NBFT)
            st = sent_nb_init(out, cfg.kind == SENT_NB ? "" : "nb_", &d.x, &d.y, cfg.alpha);
    }
    if (!st) {
        /* (nbft: compiled for its file; its fastText half is trained in train_fasttext_part)
     * decay over every step of the run (as fastText's linear decay to 0) */
        int steps = cfg.epochs * ((n + cfg.batch_size - 1) / cfg.batch_size);
        st = mm_compile(out->net, .optimizer = cfg.optimizer, .loss = "sparse_categorical_crossentropy",
                        .metrics = "accuracy", .learning_rate = cfg.lr, .schedule = cfg.decay > 0 && steps > 0 ? "cosine" : NULL,
                        .decay_steps = steps);
    }
    if (!st && cfg.epochs > 0 && cfg.kind != SENT_NBFT) /* nb with --epochs 0: naive Bayes alone */
        st = mm_fit(out->net, &d, .epochs = cfg.epochs, .batch_size = cfg.batch_size, .seed = cfg.seed,
                    .callback = cfg.progress, .user = cfg.user);
    if (!st && cfg.kind == SENT_NBFT) st = train_fasttext_part(&cfg, lang, out, &d);
    mm_dataset_free(&d);
    if (st) sent_model_free(out);
    return st;
}

mm_status sent_evaluate(sent_model *m, const sent_corpus *c, const int *idx, int n, sent_metrics *out) {
    memset(out, 0, sizeof *out);
    if (!idx) n = c->n;
    const int K = m->n_labels;
    if (c->n_labels != K) return mm_error(MM_ERR_ARG, "the data has %d labels, the model %d", c->n_labels, K);
    mm_array x = {0}, p = {0};
    mm_status st = encode(m, c, idx, n, &x);
    if (!st) st = mm_predict(m->net, &x, 256, &p);
    mm_array_free(&x);
    if (!st && !(out->confusion = calloc((size_t)K * K, sizeof(long)))) st = mm_error(MM_ERR_NOMEM, "out of memory");
    if (st) {
        mm_array_free(&p);
        return st;
    }
    out->n_labels = K;
    out->count = n;
    long right = 0;
    for (int e = 0; e < n; e++) {
        const float *row = p.data + (size_t)e * K;
        int best = 0;
        for (int k = 1; k < K; k++)
            if (row[k] > row[best]) best = k;
        int truth = c->label[idx ? idx[e] : e];
        out->confusion[truth * K + best]++;
        right += best == truth;
    }
    mm_array_free(&p);
    out->accuracy = n ? (double)right / n : 0;
    /* macro-F1: mean over classes of 2 TP / (2 TP + FP + FN); a class absent from both the
     * truth and the predictions counts as 1 (nothing to get wrong) */
    double f1 = 0;
    for (int k = 0; k < K; k++) {
        long tp = out->confusion[k * K + k], fp = 0, fn = 0;
        for (int j = 0; j < K; j++)
            if (j != k) fp += out->confusion[j * K + k], fn += out->confusion[k * K + j];
        f1 += tp + fp + fn ? 2.0 * tp / (2.0 * tp + fp + fn) : 1.0;
    }
    out->macro_f1 = f1 / K;
    return MM_OK;
}

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

mm_status sent_cross_validate(const sent_config *cfg, const sent_corpus *c, int k, sent_fold_fn on_fold, void *user,
                              double *acc, double *f1) {
    int *fold = malloc((size_t)c->n * sizeof(int)), *tr = malloc((size_t)c->n * sizeof(int));
    int *te = malloc((size_t)c->n * sizeof(int));
    mm_status st = fold && tr && te ? sent_folds(c, k, cfg->seed, fold) : mm_error(MM_ERR_NOMEM, "out of memory");
    for (int f = 0; f < k && !st; f++) {
        int ntr = 0, nte = 0;
        for (int i = 0; i < c->n; i++)
            if (fold[i] == f) te[nte++] = i;
            else tr[ntr++] = i;
        double t0 = now();
        sent_model m;
        sent_metrics r;
        st = sent_train(cfg, c, tr, ntr, &m);
        if (st) break;
        st = sent_evaluate(&m, c, te, nte, &r);
        sent_model_free(&m);
        if (st) break;
        acc[f] = r.accuracy;
        f1[f] = r.macro_f1;
        if (on_fold) on_fold(f, k, &r, now() - t0, user);
        sent_metrics_free(&r);
    }
    free(fold), free(tr), free(te);
    return st;
}
