/* Recommend app: training. mf fits explicit ratings with MSE; neumf fits implicit feedback
 * with binary cross-entropy on the positives plus freshly sampled negatives every epoch
 * (one mm_fit call per epoch, the model keeping its optimizer state); pop sets a one-column
 * item embedding to the items' training counts. The model file gets the metadata that
 * rec_model_load reads back. */
#include "common/strbuf.h"
#include "recommend/rec_internal.h"

#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static double now_seconds(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* ------------------------------------------------------------------ data sets */

static mm_status alloc_pairs(mm_dataset *d, size_t n) {
    memset(d, 0, sizeof *d);
    if (n > INT_MAX) return mm_error(MM_ERR_ARG, "too many training examples (%zu)", n);
    int xs[2] = {(int)n, 2}, ys[2] = {(int)n, 1};
    mm_status st = mm_array_alloc(&d->x, 2, xs);
    if (st == MM_OK) st = mm_array_alloc(&d->y, 2, ys);
    if (st != MM_OK) mm_dataset_free(d);
    return st;
}

/* x = (user, item), y = rating */
mm_status rec_rating_dataset(const rec_interactions *r, mm_dataset *d) {
    mm_status st = alloc_pairs(d, r->n);
    if (st != MM_OK) return st;
    for (size_t i = 0; i < r->n; i++) {
        d->x.data[2 * i] = (float)r->user[i];
        d->x.data[2 * i + 1] = (float)r->item[i];
        d->y.data[i] = r->rating[i];
    }
    return MM_OK;
}

/* Every training interaction as a positive (label 1) followed by `neg` items the user has
 * no training interaction with (label 0), drawn uniformly with rejection. A user who has
 * every item gets no negatives. */
static mm_status implicit_epoch(const rec_interactions *train, const rec_user_items *seen, int neg, uint64_t seed,
                                mm_dataset *d) {
    int ni = train->items.n;
    size_t n = 0;
    for (size_t k = 0; k < train->n; k++)
        n += 1 + (rec_user_items_count(seen, train->user[k]) < ni ? (size_t)neg : 0);
    mm_status st = alloc_pairs(d, n);
    if (st != MM_OK) return st;
    uint64_t state = rec_mix64(seed);
    size_t o = 0;
    float *x = d->x.data, *y = d->y.data;
    for (size_t k = 0; k < train->n; k++) {
        int u = train->user[k];
        x[2 * o] = (float)u, x[2 * o + 1] = (float)train->item[k], y[o++] = 1.0f;
        if (rec_user_items_count(seen, u) >= ni) continue;
        for (int j = 0; j < neg; j++) {
            int it;
            do it = (int)rec_bounded(rec_splitmix64(&state), (uint32_t)ni);
            while (rec_user_items_has(seen, u, it));
            x[2 * o] = (float)u, x[2 * o + 1] = (float)it, y[o++] = 0.0f;
        }
    }
    return MM_OK;
}

/* ------------------------------------------------------------------ metadata */


static void sb_json_string(sbuf *b, const char *s) {
    sb_printf(b, "\"");
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == '"' || *p == '\\') sb_printf(b, "\\%c", *p);
        else if (*p < 0x20) sb_printf(b, "\\u%04x", *p);
        else sb_printf(b, "%c", *p);
    }
    sb_printf(b, "\"");
}

static mm_status set_ids(mm_model *m, const char *key, const rec_idmap *map) {
    sbuf b = {0};
    sb_printf(&b, "[");
    for (int i = 0; i < map->n; i++) sb_printf(&b, "%s%lld", i ? "," : "", (long long)map->orig[i]);
    sb_printf(&b, "]");
    mm_status st = b.failed ? mm_error(MM_ERR_NOMEM, "model metadata: out of memory") : mm_model_set_metadata(m, key, b.s);
    free(b.s);
    return st;
}

static void rating_range(const rec_interactions *r, float *lo, float *hi) {
    *lo = *hi = r->n ? r->rating[0] : 0;
    for (size_t i = 1; i < r->n; i++) {
        if (r->rating[i] < *lo) *lo = r->rating[i];
        if (r->rating[i] > *hi) *hi = r->rating[i];
    }
}

static mm_status set_metadata(mm_model *m, const rec_train_config *c, const rec_data *d, float lo, float hi) {
    char abs[PATH_MAX], buf[128];
    const char *dir = realpath(d->dir, abs) ? abs : d->dir;
    mm_status st = mm_model_set_metadata(m, REC_META_TYPE, rec_kind_name(c->kind));
    if (st == MM_OK) st = mm_model_set_metadata(m, REC_META_DATA, dir);
    if (st == MM_OK) st = mm_model_set_metadata(m, REC_META_SPLIT, d->split);
    if (st == MM_OK) st = set_ids(m, REC_META_USERS, &d->all.users);
    if (st == MM_OK) st = set_ids(m, REC_META_ITEMS, &d->all.items);
    if (st == MM_OK && c->kind == REC_MF) {
        snprintf(buf, sizeof buf, "%.9g %.9g", lo, hi);
        st = mm_model_set_metadata(m, REC_META_CLIP, buf);
    }
    if (st == MM_OK && c->kind != REC_POP)
        st = mm_model_set_metadata(m, REC_META_ITEM_TABLES,
                                   c->kind == REC_MF ? "q/embeddings" : "gmf_item/embeddings,mlp_item/embeddings");
    sbuf b = {0};
    sb_printf(&b, "{\"model\":");
    sb_json_string(&b, rec_kind_name(c->kind));
    sb_printf(&b, ",\"split\":");
    sb_json_string(&b, d->split);
    sb_printf(&b, ",\"epochs\":%d,\"batch_size\":%d,\"optimizer\":", c->epochs, c->batch_size);
    sb_json_string(&b, c->optimizer);
    sb_printf(&b, ",\"lr\":%.6g,\"schedule\":", c->lr);
    sb_json_string(&b, c->schedule);
    sb_printf(&b, ",\"seed\":%llu", (unsigned long long)c->seed);
    if (c->kind != REC_POP) sb_printf(&b, ",\"factors\":%d,\"l2\":%.6g", c->factors, c->l2);
    if (c->kind == REC_MF) sb_printf(&b, ",\"l2_bias\":%.6g", c->l2_bias);
    if (c->kind == REC_NEUMF) {
        sb_printf(&b, ",\"mlp\":[");
        for (int k = 0; k < 7 && c->mlp[k] > 0; k++) sb_printf(&b, "%s%d", k ? "," : "", c->mlp[k]);
        sb_printf(&b, "],\"negatives\":%d,\"dropout\":%.6g,\"pretrain\":%d", c->negatives, c->dropout, c->pretrain);
        if (c->pretrain > 0) sb_printf(&b, ",\"pretrain_lr\":%.6g", c->pretrain_lr);
        sb_printf(&b, ",\"init\":");
        sb_json_string(&b, c->init);
        sb_printf(&b, ",\"init_scale\":%.6g,\"dense_embeddings\":%s", c->init_scale, c->dense_embeddings > 0 ? "true" : "false");
    }
    sb_printf(&b, "}");
    if (st == MM_OK) st = b.failed ? mm_error(MM_ERR_NOMEM, "model metadata: out of memory") : mm_model_set_metadata(m, REC_META_CONFIG, b.s);
    free(b.s);
    return st;
}

/* ------------------------------------------------------------------ training */

typedef struct fit_ctx {
    const rec_train_config *c;
    double loss;
    int stop;
} fit_ctx;

static int fit_callback(const mm_progress *p, void *user) {
    fit_ctx *f = user;
    if (p->epoch_end) f->loss = p->loss;
    if (f->c->on_batch && f->c->on_batch(p, f->c->batch_user)) f->stop = 1;
    return f->stop && p->epoch_end; /* a stop takes effect at the end of the epoch */
}

static mm_status check_config(const rec_train_config *c) {
    if (c->kind != REC_MF && c->kind != REC_NEUMF && c->kind != REC_POP)
        return mm_error(MM_ERR_ARG, "train: no model kind (mf, neumf or pop)");
    if (!c->out_path || !*c->out_path) return mm_error(MM_ERR_ARG, "train: no output file");
    if (c->epochs < 1) return mm_error(MM_ERR_ARG, "train: epochs must be at least 1, got %d", c->epochs);
    if (c->batch_size < 1) return mm_error(MM_ERR_ARG, "train: batch size must be at least 1, got %d", c->batch_size);
    if (c->factors < 1 && c->kind != REC_POP) return mm_error(MM_ERR_ARG, "train: factors must be at least 1, got %d", c->factors);
    if (c->negatives < 1 && c->kind == REC_NEUMF)
        return mm_error(MM_ERR_ARG, "train: negatives must be at least 1, got %d", c->negatives);
    if (!(c->lr > 0) && c->kind != REC_POP) return mm_error(MM_ERR_ARG, "train: learning rate must be positive, got %g", c->lr);
    if (!(c->l2 >= 0) || !(c->l2_bias >= 0)) return mm_error(MM_ERR_ARG, "train: l2 must be a number");
    return MM_OK;
}

/* What an epoch loop needs. */
typedef struct trainer {
    rec_train_config *c;
    rec_train_report *r;
    mm_dataset train, test;   /* mf / pop: fixed; neumf: train is resampled each epoch */
    rec_interactions pos;     /* neumf: implicit positives */
    rec_user_items seen;      /* neumf: the users' training items */
    rec_ncf_cases cases;      /* neumf: NCF test cases for the per-epoch metrics */
    float lo, hi;             /* rating range (mf) */
    rec_emb_opts emb;         /* neumf: embedding tables */
    fit_ctx fc;
} trainer;

static size_t examples_per_epoch(const trainer *t) {
    if (t->c->kind != REC_NEUMF) return (size_t)t->train.x.shape[0];
    size_t n = 0;
    int ni = t->pos.items.n;
    for (size_t k = 0; k < t->pos.n; k++)
        n += 1 + (rec_user_items_count(&t->seen, t->pos.user[k]) < ni ? (size_t)t->c->negatives : 0);
    return n;
}

/* Compiles m with the configured optimizer (or the given one), a cosine schedule spanning
 * `epochs` when asked. */
static mm_status compile(trainer *t, mm_model *m, const char *optimizer, float lr, int epochs) {
    const rec_train_config *c = t->c;
    int cosine = !strcmp(c->schedule, "cosine");
    if (!cosine && strcmp(c->schedule, "constant"))
        return mm_error(MM_ERR_ARG, "train: unknown schedule '%s' (constant or cosine)", c->schedule);
    size_t steps = (examples_per_epoch(t) + (size_t)c->batch_size - 1) / (size_t)c->batch_size * (size_t)epochs;
    if (steps > INT_MAX) steps = INT_MAX;
    return mm_compile(m, .optimizer = optimizer, .learning_rate = lr,
                      .loss = c->kind == REC_NEUMF ? "binary_crossentropy" : "mse", .metrics = "none",
                      .schedule = cosine ? "cosine" : NULL, .decay_steps = cosine ? (int)(steps ? steps : 1) : 0);
}

/* Trains m for `epochs` epochs (neumf: fresh negatives each, from stream `phase`), with the
 * per-epoch metrics and callbacks. *done receives the epochs completed. */
static mm_status run_epochs(trainer *t, mm_model *m, int epochs, int phase, const char *phase_name, int *done) {
    rec_train_config *c = t->c;
    *done = 0;
    for (int e = 0; e < epochs; e++) {
        double te = now_seconds();
        mm_status st;
        if (c->kind == REC_NEUMF) {
            mm_dataset_free(&t->train);
            uint64_t seed = c->seed * 0x9E3779B97F4A7C15ull + (uint64_t)phase * 0x100000000ull + (uint64_t)e + 1;
            if ((st = implicit_epoch(&t->pos, &t->seen, c->negatives, seed, &t->train)) != MM_OK) return st;
        }
        st = mm_fit(m, &t->train, .epochs = e + 1, .initial_epoch = e, .batch_size = c->batch_size, .seed = c->seed + (uint64_t)phase,
                    .callback = fit_callback, .user = &t->fc);
        if (st != MM_OK) return st;
        rec_epoch_info info = {.epoch = e + 1, .epochs = epochs, .loss = t->fc.loss, .examples = (long)t->train.x.shape[0],
                               .phase = phase_name};
        info.seconds = now_seconds() - te;
        *done = e + 1;
        if (c->eval_every_epoch && c->kind == REC_MF) {
            if ((st = rec_rating_metrics(m, &t->test, t->lo, t->hi, &info.rmse, &info.mae)) != MM_OK) return st;
            info.has_rmse = 1;
        } else if (c->eval_every_epoch && c->kind == REC_NEUMF) {
            rec_rank_metrics rm;
            if ((st = rec_eval_ncf_model(m, 0, 0, &t->cases, &rm)) != MM_OK) return st;
            info.has_ncf = 1;
            info.hr = rm.hr;
            info.ndcg = rm.ndcg;
        }
        if (c->on_epoch && c->on_epoch(&info, c->user)) t->fc.stop = 1;
        if (t->fc.stop) break;
    }
    return MM_OK;
}

/* Copies every tensor of the files srcs into dst where name and shape agree, except the
 * NeuMF prediction layer, which becomes [alpha h_gmf; (1 - alpha) h_mlp] and
 * alpha b_gmf + (1 - alpha) b_mlp (He et al. 2017, section 3.4.1, alpha = 0.5). The public API
 * has no call to set a model's weights, so they go through the model file. */
static mm_status splice_pretrained(const char *dst, const char *gmf_path, const char *mlp_path) {
    mm_st_file f = {0}, g = {0}, h = {0};
    mm_status st = mm_st_read(dst, &f);
    if (st == MM_OK) st = mm_st_read(gmf_path, &g);
    if (st == MM_OK) st = mm_st_read(mlp_path, &h);
    const float alpha = 0.5f;
    for (int i = 0; st == MM_OK && i < f.n; i++) {
        mm_st_tensor *t = &f.tensors[i];
        if (strcmp(t->dtype, "F32")) continue;
        if (!strcmp(t->name, "prediction/kernel") || !strcmp(t->name, "prediction/bias")) {
            const mm_st_tensor *a = mm_st_find(&g, t->name), *b = mm_st_find(&h, t->name);
            if (!a || !b || a->size + b->size != t->size + (t->ndim == 1 ? 1 : 0)) {
                st = mm_error(MM_ERR_FORMAT, "pretraining: prediction layers do not fit (%s)", t->name);
                break;
            }
            float *o = t->data;
            const float *x = a->data, *y = b->data;
            if (t->ndim == 1) {
                o[0] = alpha * x[0] + (1 - alpha) * y[0];
            } else {
                for (size_t k = 0; k < a->size; k++) o[k] = alpha * x[k];
                for (size_t k = 0; k < b->size; k++) o[a->size + k] = (1 - alpha) * y[k];
            }
            continue;
        }
        const mm_st_tensor *src = mm_st_find(&g, t->name);
        if (!src) src = mm_st_find(&h, t->name);
        if (!src) continue;
        if (src->size != t->size || strcmp(src->dtype, "F32")) {
            st = mm_error(MM_ERR_FORMAT, "pretraining: %s has %zu values, the NeuMF tensor %zu", t->name, src->size, t->size);
            break;
        }
        memcpy(t->data, src->data, t->size * sizeof(float));
    }
    if (st == MM_OK) st = mm_st_write(dst, &f);
    mm_st_free(&f);
    mm_st_free(&g);
    mm_st_free(&h);
    return st;
}

/* NeuMF with pretrained branches: GMF and MLP trained alone (Adam, c->pretrain epochs each),
 * their weights put into a fresh NeuMF. */
static mm_status pretrained_neumf(trainer *t, int nu, int ni, mm_model **out) {
    rec_train_config *c = t->c;
    *out = NULL;
    size_t len = strlen(c->out_path) + 16;
    char *paths[3];
    static const char *const suffix[3] = {".gmf.tmp", ".mlp.tmp", ".neumf.tmp"};
    for (int k = 0; k < 3; k++) {
        paths[k] = malloc(len);
        if (paths[k]) snprintf(paths[k], len, "%s%s", c->out_path, suffix[k]);
    }
    mm_status st = paths[0] && paths[1] && paths[2] ? MM_OK : mm_error(MM_ERR_NOMEM, "out of memory");
    for (int k = 0; k < 2 && st == MM_OK; k++) {
        mm_model *b = NULL;
        int done;
        st = rec_build_ncf(nu, ni, c->factors, c->mlp, c->l2, c->dropout, k == 0 ? REC_BRANCH_GMF : REC_BRANCH_MLP,
                           &t->emb, &b);
        if (st == MM_OK) st = mm_model_init_weights(b, c->seed + 1 + (uint64_t)k);
        if (st == MM_OK) st = compile(t, b, "adam", c->pretrain_lr, c->pretrain);
        if (st == MM_OK) st = run_epochs(t, b, c->pretrain, 1 + k, k == 0 ? "gmf" : "mlp", &done);
        if (st == MM_OK && !t->fc.stop) st = mm_model_save(b, paths[k], 0);
        mm_model_free(b);
        if (t->fc.stop) break; /* stopped while pretraining: no model */
    }
    mm_model *m = NULL;
    if (t->fc.stop) goto cleanup;
    if (st == MM_OK) st = rec_build_neumf(nu, ni, c->factors, c->mlp, c->l2, c->dropout, &t->emb, &m);
    if (st == MM_OK) st = mm_model_init_weights(m, c->seed);
    if (st == MM_OK) st = mm_model_save(m, paths[2], 0);
    mm_model_free(m);
    m = NULL;
    if (st == MM_OK) st = splice_pretrained(paths[2], paths[0], paths[1]);
    if (st == MM_OK) st = mm_model_load(paths[2], &m);
cleanup:
    for (int k = 0; k < 3; k++)
        if (paths[k]) unlink(paths[k]), free(paths[k]);
    *out = m;
    return st;
}

mm_status rec_train(rec_train_config *c, void (*on_start)(const rec_train_config *, const rec_train_report *, void *),
                    rec_train_report *r) {
    memset(r, 0, sizeof *r);
    rec_train_defaults(c);
    mm_status st = check_config(c);
    if (st != MM_OK) return st;
    rec_data d;
    if ((st = rec_data_load(c->data_dir, c->split, NULL, &d)) != MM_OK) return st;

    int nu = d.all.users.n, ni = d.all.items.n;
    mm_model *m = NULL;
    trainer t = {.c = c, .r = r, .fc = {c, 0, 0},
                 .emb = {.initializer = c->init, .scale = c->init_scale, .dense = c->dense_embeddings > 0}};
    double t0 = now_seconds();
    r->users = nu;
    r->items = ni;
    r->train_count = (long)d.train.n;
    r->test_count = (long)d.test.n;

    switch (c->kind) {
    case REC_MF:
        st = rec_build_mf(nu, ni, c->factors, c->l2, c->l2_bias, &m);
        if (st == MM_OK) st = rec_rating_dataset(&d.train, &t.train);
        if (st == MM_OK) st = rec_rating_dataset(&d.test, &t.test);
        rating_range(&d.train, &t.lo, &t.hi);
        break;
    case REC_NEUMF:
        st = rec_implicit(&d.train, 0, &t.pos);
        if (st == MM_OK) st = rec_user_items_build(&t.pos, NULL, 0, &t.seen);
        if (st == MM_OK && c->eval_every_epoch)
            st = rec_ncf_sample(&d.train, &d.test, REC_EVAL_NEGATIVES, REC_EVAL_SEED, &t.cases);
        if (st == MM_OK && c->pretrain > 0) {
            /* pretraining reports its epochs too: announce the run first */
            mm_model *probe = NULL;
            if ((st = rec_build_neumf(nu, ni, c->factors, c->mlp, c->l2, c->dropout, &t.emb, &probe)) != MM_OK) break;
            r->params = mm_count_params(probe);
            mm_model_free(probe);
            if (on_start) on_start(c, r, c->user);
            on_start = NULL;
            st = pretrained_neumf(&t, nu, ni, &m);
            if (st == MM_OK && t.fc.stop) {
                r->stopped = 1;
                goto done;
            }
        } else if (st == MM_OK) {
            st = rec_build_neumf(nu, ni, c->factors, c->mlp, c->l2, c->dropout, &t.emb, &m);
        }
        break;
    case REC_POP: {
        /* one example per item, target = its training count; SGD with learning rate 0.5 on
         * a batch of one sets the row to the target in one step (MSE gradient 2 (w - y)),
         * up to rounding that a second epoch removes */
        st = rec_build_pop(nu, ni, &m);
        rec_popularity pop;
        if (st == MM_OK) st = rec_popularity_fit(&d.train, &pop);
        if (st == MM_OK) st = alloc_pairs(&t.train, (size_t)ni);
        for (int i = 0; st == MM_OK && i < ni; i++) {
            t.train.x.data[2 * i] = 0;
            t.train.x.data[2 * i + 1] = (float)i;
            t.train.y.data[i] = pop.count[i];
        }
        if (st == MM_OK) rec_popularity_free(&pop);
        c->optimizer = "sgd";
        c->lr = 0.5f;
        break;
    }
    }
    if (st == MM_OK && !(c->kind == REC_NEUMF && c->pretrain > 0)) st = mm_model_init_weights(m, c->seed);
    if (st == MM_OK) st = compile(&t, m, c->optimizer, c->lr, c->epochs);
    if (st == MM_OK) st = set_metadata(m, c, &d, t.lo, t.hi);
    if (st != MM_OK) goto done;

    r->params = mm_count_params(m);
    if (on_start) on_start(c, r, c->user);
    st = run_epochs(&t, m, c->epochs, 0, NULL, &r->epochs_done);
    if (st != MM_OK) goto done;
    r->stopped = t.fc.stop && r->epochs_done < c->epochs;
    r->seconds = now_seconds() - t0;
    st = mm_model_save(m, c->out_path, 0);

done:
    rec_ncf_cases_free(&t.cases);
    rec_user_items_free(&t.seen);
    rec_interactions_free(&t.pos);
    mm_dataset_free(&t.train);
    mm_dataset_free(&t.test);
    mm_model_free(m);
    rec_data_free(&d);
    return st;
}
