/* Recommend app: using trained models. Model files with their metadata, scoring through
 * mm_predict, evaluation beside the popularity baseline, top-k with reasons, similar items. */
#include "recommend/rec_internal.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now_seconds(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* ------------------------------------------------------------------ prediction */

#define PREDICT_CHUNK 65536 /* pairs per mm_predict call */

mm_status rec_predict_pairs(mm_model *m, const int *users, int user, const int *items, size_t n, float lo, float hi,
                            float *out) {
    if (n == 0) return MM_OK;
    size_t chunk = n < PREDICT_CHUNK ? n : PREDICT_CHUNK;
    float *buf = malloc(chunk * 2 * sizeof *buf);
    if (!buf) return mm_error(MM_ERR_NOMEM, "predict: out of memory");
    mm_status st = MM_OK;
    for (size_t s = 0; s < n && st == MM_OK; s += chunk) {
        size_t c = n - s < chunk ? n - s : chunk;
        for (size_t i = 0; i < c; i++) {
            buf[2 * i] = (float)(users ? users[s + i] : user);
            buf[2 * i + 1] = (float)items[s + i];
        }
        mm_array x = {.ndim = 2, .shape = {(int)c, 2}, .size = c * 2, .data = buf}, y = {0};
        st = mm_predict(m, &x, (int)c, &y);
        if (st != MM_OK) break;
        if (y.size != c) {
            st = mm_error(MM_ERR_SHAPE, "predict: the model gives %zu outputs for %zu pairs", y.size, c);
        } else {
            for (size_t i = 0; i < c; i++) {
                float v = y.data[i];
                if (lo < hi) v = v < lo ? lo : v > hi ? hi : v;
                out[s + i] = v;
            }
        }
        mm_array_free(&y);
    }
    free(buf);
    return st;
}

mm_status rec_rating_metrics(mm_model *m, const mm_dataset *test, float lo, float hi, double *rmse, double *mae) {
    size_t n = (size_t)test->x.shape[0];
    float *pred = malloc((n ? n : 1) * sizeof *pred);
    int *u = malloc((n ? n : 1) * sizeof *u), *it = malloc((n ? n : 1) * sizeof *it);
    mm_status st = pred && u && it ? MM_OK : mm_error(MM_ERR_NOMEM, "rating metrics: out of memory");
    for (size_t i = 0; st == MM_OK && i < n; i++) {
        u[i] = (int)test->x.data[2 * i];
        it[i] = (int)test->x.data[2 * i + 1];
    }
    if (st == MM_OK) st = rec_predict_pairs(m, u, -1, it, n, lo, hi, pred);
    if (st == MM_OK) st = rec_rmse(pred, test->y.data, n, rmse);
    if (st == MM_OK) st = rec_mae(pred, test->y.data, n, mae);
    free(pred);
    free(u);
    free(it);
    return st;
}

/* ------------------------------------------------------------------ model files */

void rec_model_free(rec_model *m) {
    if (!m) return;
    mm_model_free(m->model);
    rec_idmap_free(&m->users);
    rec_idmap_free(&m->items);
    free(m->item_tables);
    free(m->config);
    free(m->item_vec);
    memset(m, 0, sizeof *m);
}

/* "[1,2,3]" -> ids added in order */
static mm_status parse_ids(const char *path, const char *key, const char *s, rec_idmap *map) {
    const char *p = s;
    while (*p == ' ') p++;
    if (*p++ != '[') return mm_error(MM_ERR_FORMAT, "%s: metadata %s is not a JSON array", path, key);
    for (;;) {
        while (*p == ' ') p++;
        if (*p == ']' && map->n == 0) break;
        char *end;
        errno = 0;
        long long v = strtoll(p, &end, 10);
        if (end == p || errno) return mm_error(MM_ERR_FORMAT, "%s: metadata %s: bad id at offset %ld", path, key, (long)(p - s));
        int dense;
        mm_status st = rec_idmap_add(map, (int64_t)v, &dense);
        if (st != MM_OK) return st;
        if (dense != map->n - 1) return mm_error(MM_ERR_FORMAT, "%s: metadata %s: id %lld appears twice", path, key, v);
        p = end;
        while (*p == ' ') p++;
        if (*p == ']') break;
        if (*p++ != ',') return mm_error(MM_ERR_FORMAT, "%s: metadata %s: expected ',' at offset %ld", path, key, (long)(p - 1 - s));
    }
    return MM_OK;
}

static const char *meta(const rec_model *m, const char *key) { return mm_model_get_metadata(m->model, key); }

mm_status rec_model_load(const char *path, rec_model *out) {
    memset(out, 0, sizeof *out);
    snprintf(out->path, sizeof out->path, "%s", path);
    mm_status st = mm_model_load(path, &out->model);
    if (st != MM_OK) return st;
    const char *type = meta(out, REC_META_TYPE), *users = meta(out, REC_META_USERS), *items = meta(out, REC_META_ITEMS);
    if (!type || !users || !items) {
        st = mm_error(MM_ERR_FORMAT, "%s: not a recommend model (no %s metadata); train one with 'mediaml recommend train'",
                      path, !type ? REC_META_TYPE : !users ? REC_META_USERS : REC_META_ITEMS);
        goto fail;
    }
    if (rec_kind_parse(type, &out->kind) != MM_OK) {
        st = mm_error(MM_ERR_FORMAT, "%s: unknown recommend model type '%s'", path, type);
        goto fail;
    }
    if ((st = parse_ids(path, REC_META_USERS, users, &out->users)) != MM_OK) goto fail;
    if ((st = parse_ids(path, REC_META_ITEMS, items, &out->items)) != MM_OK) goto fail;
    const char *data = meta(out, REC_META_DATA), *split = meta(out, REC_META_SPLIT), *clip = meta(out, REC_META_CLIP);
    snprintf(out->data_dir, sizeof out->data_dir, "%s", data ? data : "");
    snprintf(out->split, sizeof out->split, "%s", split && rec_split_valid(split) ? split : "");
    if (clip && sscanf(clip, "%f %f", &out->clip_min, &out->clip_max) != 2) {
        st = mm_error(MM_ERR_FORMAT, "%s: bad %s metadata '%s'", path, REC_META_CLIP, clip);
        goto fail;
    }
    const char *tables = meta(out, REC_META_ITEM_TABLES), *config = meta(out, REC_META_CONFIG);
    out->item_tables = tables ? strdup(tables) : NULL;
    out->config = strdup(config ? config : "{}");
    if ((tables && !out->item_tables) || !out->config) {
        st = mm_error(MM_ERR_NOMEM, "out of memory");
        goto fail;
    }
    /* the model must take (user, item) ids within the maps */
    int shape[MM_MAX_DIMS];
    if (mm_model_input_shape(out->model, shape) != 1 || shape[0] != 2) {
        st = mm_error(MM_ERR_FORMAT, "%s: a recommend model takes (user, item) pairs", path);
        goto fail;
    }
    return MM_OK;
fail:
    rec_model_free(out);
    return st;
}

mm_status rec_model_item_vectors(rec_model *m) {
    if (m->item_vec) return MM_OK;
    if (!m->item_tables || !*m->item_tables)
        return mm_error(MM_ERR_ARG, "a %s model has no item embeddings (use an mf or neumf model)", rec_kind_name(m->kind));
    mm_st_file f;
    mm_status st = mm_st_read(m->path, &f);
    if (st != MM_OK) return st;
    const mm_st_tensor *t[8];
    int nt = 0, dim = 0, ni = m->items.n;
    char names[512];
    snprintf(names, sizeof names, "%s", m->item_tables);
    for (char *save = NULL, *name = strtok_r(names, ",", &save); name; name = strtok_r(NULL, ",", &save)) {
        if (nt == 8) {
            st = mm_error(MM_ERR_FORMAT, "%s: too many item tables", m->path);
            goto done;
        }
        t[nt] = mm_st_find(&f, name);
        if (!t[nt] || strcmp(t[nt]->dtype, "F32") || t[nt]->ndim != 2 || t[nt]->shape[0] != ni) {
            st = mm_error(MM_ERR_FORMAT, "%s: no %d-row F32 item table '%s'", m->path, ni, name);
            goto done;
        }
        dim += t[nt++]->shape[1];
    }
    if (nt == 0 || dim == 0) {
        st = mm_error(MM_ERR_FORMAT, "%s: empty item table list", m->path);
        goto done;
    }
    m->item_vec = malloc((size_t)ni * dim * sizeof *m->item_vec);
    if (!m->item_vec) {
        st = mm_error(MM_ERR_NOMEM, "out of memory");
        goto done;
    }
    /* rows of several tables side by side, each table's rows scaled to unit mean norm so
     * that neither dominates the cosine */
    for (int k = 0, off = 0; k < nt; off += t[k]->shape[1], k++) {
        int d = t[k]->shape[1];
        const float *src = t[k]->data;
        double norm = 0;
        for (size_t i = 0; i < (size_t)ni * d; i++) norm += (double)src[i] * src[i];
        float scale = nt > 1 && norm > 0 ? (float)(1.0 / sqrt(norm / ni)) : 1.0f;
        for (int i = 0; i < ni; i++)
            for (int j = 0; j < d; j++) m->item_vec[(size_t)i * dim + off + j] = src[(size_t)i * d + j] * scale;
    }
    m->item_dim = dim;
done:
    mm_st_free(&f);
    return st;
}

mm_status rec_model_score(rec_model *m, int user, const int *items, int n, float *out) {
    if (user < 0 || user >= m->users.n) return mm_error(MM_ERR_ARG, "score: user %d outside 0..%d", user, m->users.n - 1);
    return rec_predict_pairs(m->model, NULL, user, items, (size_t)n, m->clip_min, m->clip_max, out);
}

static void model_score_batch(void *ctx, int user, const int *items, int n, float *out) {
    if (rec_model_score(ctx, user, items, n, out) != MM_OK)
        for (int i = 0; i < n; i++) out[i] = NAN;
}

rec_scorer rec_model_scorer(rec_model *m) {
    rec_scorer s = {NULL, model_score_batch, m};
    return s;
}

/* ------------------------------------------------------------------ evaluation */

/* NCF cases scored in large mm_predict batches up front; rec_eval_ncf then reads the scores
 * case by case (it asks in case order; any other request is predicted directly). */
typedef struct ncf_scores {
    const rec_ncf_cases *c;
    mm_model *model;
    float lo, hi;
    const float *score;
    int cursor;
} ncf_scores;

static void ncf_score_batch(void *ctx, int user, const int *items, int n, float *out) {
    ncf_scores *s = ctx;
    const rec_ncf_cases *c = s->c;
    int i = s->cursor++, m = c->n_neg + 1;
    if (i < c->n && n == m && c->user[i] == user && items[0] == c->pos[i] &&
        !memcmp(items + 1, c->neg + (size_t)i * c->n_neg, (size_t)c->n_neg * sizeof *items)) {
        memcpy(out, s->score + (size_t)i * m, (size_t)m * sizeof *out);
        return;
    }
    if (rec_predict_pairs(s->model, NULL, user, items, (size_t)n, s->lo, s->hi, out) != MM_OK)
        for (int k = 0; k < n; k++) out[k] = NAN;
}

mm_status rec_eval_ncf_model(mm_model *model, float lo, float hi, const rec_ncf_cases *c, rec_rank_metrics *out) {
    size_t m = (size_t)c->n_neg + 1, n = (size_t)c->n * m;
    int *users = malloc((n ? n : 1) * sizeof *users), *items = malloc((n ? n : 1) * sizeof *items);
    float *score = malloc((n ? n : 1) * sizeof *score);
    mm_status st = users && items && score ? MM_OK : mm_error(MM_ERR_NOMEM, "ncf eval: out of memory");
    for (int i = 0; st == MM_OK && i < c->n; i++) {
        size_t o = (size_t)i * m;
        users[o] = c->user[i];
        items[o] = c->pos[i];
        for (int k = 0; k < c->n_neg; k++) {
            users[o + 1 + k] = c->user[i];
            items[o + 1 + k] = c->neg[(size_t)i * c->n_neg + k];
        }
    }
    if (st == MM_OK) st = rec_predict_pairs(model, users, -1, items, n, lo, hi, score);
    if (st == MM_OK) {
        ncf_scores s = {c, model, lo, hi, score, 0};
        rec_scorer sc = {NULL, ncf_score_batch, &s};
        st = rec_eval_ncf(c, sc, REC_EVAL_K, out, NULL);
    }
    free(users);
    free(items);
    free(score);
    return st;
}

mm_status rec_evaluate(rec_model *m, const rec_data *d, rec_eval_report *r) {
    memset(r, 0, sizeof *r);
    double t0 = now_seconds();
    r->kind = m->kind;
    snprintf(r->split, sizeof r->split, "%s", d->split);
    r->train_count = (long)d->train.n;
    r->test_count = (long)d->test.n;
    r->users = d->all.users.n;
    r->items = d->all.items.n;
    if (d->all.users.n != m->users.n || d->all.items.n != m->items.n)
        return mm_error(MM_ERR_ARG, "evaluate: the data has %d users and %d items, the model %d and %d", d->all.users.n,
                        d->all.items.n, m->users.n, m->items.n);
    if (d->train.n == 0 || d->test.n == 0) return mm_error(MM_ERR_ARG, "evaluate: no split loaded");
    rec_popularity pop = {0};
    rec_ncf_cases cases = {0};
    rec_user_items exclude = {0}, relevant = {0};
    mm_dataset test = {0};
    mm_status st = rec_popularity_fit(&d->train, &pop);
    if (st == MM_OK && m->kind == REC_MF) {
        st = rec_rating_dataset(&d->test, &test);
        if (st == MM_OK) st = rec_rating_metrics(m->model, &test, m->clip_min, m->clip_max, &r->rmse, &r->mae);
        r->has_rmse = st == MM_OK;
    }
    if (st == MM_OK) st = rec_ncf_sample(&d->train, &d->test, REC_EVAL_NEGATIVES, REC_EVAL_SEED, &cases);
    if (st == MM_OK) st = rec_eval_ncf_model(m->model, m->clip_min, m->clip_max, &cases, &r->ncf);
    if (st == MM_OK) st = rec_eval_ncf(&cases, rec_popularity_scorer(&pop), REC_EVAL_K, &r->pop_ncf, NULL);
    if (st == MM_OK) st = rec_user_items_build(&d->train, NULL, 0, &exclude);
    if (st == MM_OK) st = rec_user_items_build(&d->test, NULL, 0, &relevant);
    if (st == MM_OK) st = rec_eval_full(&exclude, &relevant, rec_model_scorer(m), REC_EVAL_K, &r->full);
    if (st == MM_OK) st = rec_eval_full(&exclude, &relevant, rec_popularity_scorer(&pop), REC_EVAL_K, &r->pop_full);
    r->seconds = now_seconds() - t0;
    mm_dataset_free(&test);
    rec_user_items_free(&exclude);
    rec_user_items_free(&relevant);
    rec_ncf_cases_free(&cases);
    rec_popularity_free(&pop);
    return st;
}

/* ------------------------------------------------------------------ recommendations */

void rec_top_result_free(rec_top_result *r) {
    if (!r) return;
    free(r->picks);
    memset(r, 0, sizeof *r);
}

/* Indexes of the k best scores (descending, ties by smaller index), skipping skip[i]. */
static int top_k(const float *score, const unsigned char *skip, int n, int k, int *top) {
    int m = 0;
    for (int i = 0; i < n; i++) {
        if (skip && skip[i]) continue;
        float v = score[i];
        if (m == k && !(v > score[top[k - 1]])) continue;
        int p = m < k ? m++ : k - 1;
        while (p > 0 && v > score[top[p - 1]]) {
            top[p] = top[p - 1];
            p--;
        }
        top[p] = i;
    }
    return m;
}

mm_status rec_top(rec_model *m, const rec_interactions *data, int64_t user, int k, rec_top_result *out) {
    memset(out, 0, sizeof *out);
    out->user = user;
    if (k < 1) return mm_error(MM_ERR_ARG, "top: k must be at least 1, got %d", k);
    int ni = m->items.n;
    if (data->items.n != ni || data->users.n != m->users.n)
        return mm_error(MM_ERR_ARG, "top: the data is not indexed like the model");
    if (k > ni) k = ni;
    int u = rec_idmap_find(&m->users, user);
    out->known = u >= 0;
    float *score = malloc((size_t)ni * sizeof *score);
    unsigned char *skip = calloc((size_t)ni, 1);
    int *items = malloc((size_t)ni * sizeof *items), *top = malloc((size_t)k * sizeof *top);
    int *rated = malloc((data->n + 1) * sizeof *rated);
    float *ratings = malloc((data->n + 1) * sizeof *ratings);
    out->picks = calloc((size_t)k, sizeof *out->picks);
    mm_status st = score && skip && items && top && rated && ratings && out->picks ? MM_OK : mm_error(MM_ERR_NOMEM, "top: out of memory");
    int nr = 0;
    if (st != MM_OK) goto done;
    for (int i = 0; i < ni; i++) items[i] = i;
    if (u >= 0) {
        for (size_t i = 0; i < data->n; i++)
            if (data->user[i] == u && !skip[data->item[i]]) {
                skip[data->item[i]] = 1;
                rated[nr] = data->item[i];
                ratings[nr++] = data->rating[i];
            }
        out->n_rated = nr;
        st = rec_model_score(m, u, items, ni, score);
        if (st != MM_OK) goto done;
        for (int i = 0; i < ni; i++)
            if (isnan(score[i])) {
                st = mm_error(MM_ERR_NUMERIC, "top: NaN score for item %lld", (long long)m->items.orig[i]);
                goto done;
            }
    } else {
        rec_popularity pop;
        if ((st = rec_popularity_fit(data, &pop)) != MM_OK) goto done;
        memcpy(score, pop.count, (size_t)ni * sizeof *score);
        rec_popularity_free(&pop);
    }
    out->n = top_k(score, skip, ni, k, top);
    int reasons = u >= 0 && m->kind != REC_POP && nr > 0;
    if (reasons && (st = rec_model_item_vectors(m)) != MM_OK) goto done;
    for (int j = 0; j < out->n; j++) {
        rec_pick *p = &out->picks[j];
        p->item = m->items.orig[top[j]];
        p->score = score[top[j]];
        if (!reasons) continue;
        rec_neighbor nb[REC_MAX_REASONS];
        int nn;
        st = rec_reasons(m->item_vec, ni, m->item_dim, rated, ratings, nr, top[j], REC_MAX_REASONS, nb, &nn);
        if (st != MM_OK) goto done;
        for (int q = 0; q < nn; q++) {
            if (nb[q].score <= 0) break; /* dissimilar items support nothing */
            int idx = 0;
            while (rated[idx] != nb[q].item) idx++;
            p->reasons[p->n_reasons].item = m->items.orig[nb[q].item];
            p->reasons[p->n_reasons].rating = ratings[idx];
            p->reasons[p->n_reasons].sim = nb[q].sim;
            p->n_reasons++;
        }
    }
done:
    free(score);
    free(skip);
    free(items);
    free(top);
    free(rated);
    free(ratings);
    if (st != MM_OK) rec_top_result_free(out);
    return st;
}

mm_status rec_similar(rec_model *m, int64_t item, int k, int64_t *ids, float *sims, int *n) {
    *n = 0;
    int it = rec_idmap_find(&m->items, item);
    if (it < 0) return mm_error(MM_ERR_ARG, "unknown item %lld: the model has no such item id", (long long)item);
    if (k < 1) return mm_error(MM_ERR_ARG, "similar: k must be at least 1, got %d", k);
    mm_status st = rec_model_item_vectors(m);
    if (st != MM_OK) return st;
    rec_neighbor *nb = malloc((size_t)k * sizeof *nb);
    if (!nb) return mm_error(MM_ERR_NOMEM, "similar: out of memory");
    int nn = 0;
    st = rec_similar_items(m->item_vec, m->items.n, m->item_dim, it, k, nb, &nn);
    for (int i = 0; st == MM_OK && i < nn; i++) {
        ids[i] = m->items.orig[nb[i].item];
        sims[i] = nb[i].sim;
    }
    if (st == MM_OK) *n = nn;
    free(nb);
    return st;
}
