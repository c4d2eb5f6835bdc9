/* Recommend app: rating metrics, the popularity baseline, NCF sampled ranking and full
 * ranking evaluation. */
#include "recommend/recommend.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------------ rating metrics */

static mm_status check_pairs(const float *pred, const float *target, size_t n, const char *what) {
    if (!pred || !target || n == 0) return mm_error(MM_ERR_ARG, "%s: no predictions", what);
    for (size_t i = 0; i < n; i++)
        if (!isfinite(pred[i]) || !isfinite(target[i]))
            return mm_error(MM_ERR_NUMERIC, "%s: non-finite %s at %zu", what, isfinite(pred[i]) ? "target" : "prediction", i);
    return MM_OK;
}

mm_status rec_rmse(const float *pred, const float *target, size_t n, double *out) {
    mm_status st = check_pairs(pred, target, n, "rmse");
    if (st != MM_OK) return st;
    double s = 0;
    for (size_t i = 0; i < n; i++) {
        double d = (double)pred[i] - target[i];
        s += d * d;
    }
    *out = sqrt(s / (double)n);
    return MM_OK;
}

mm_status rec_mae(const float *pred, const float *target, size_t n, double *out) {
    mm_status st = check_pairs(pred, target, n, "mae");
    if (st != MM_OK) return st;
    double s = 0;
    for (size_t i = 0; i < n; i++) s += fabs((double)pred[i] - target[i]);
    *out = s / (double)n;
    return MM_OK;
}

/* ------------------------------------------------------------------ popularity */

mm_status rec_popularity_fit(const rec_interactions *train, rec_popularity *out) {
    memset(out, 0, sizeof *out);
    int n = train->items.n;
    out->count = calloc((size_t)(n ? n : 1), sizeof *out->count);
    if (!out->count) return mm_error(MM_ERR_NOMEM, "popularity: out of memory");
    out->n_items = n;
    for (size_t i = 0; i < train->n; i++) out->count[train->item[i]] += 1.0f;
    return MM_OK;
}

float rec_popularity_score(void *ctx, int user, int item) {
    (void)user;
    const rec_popularity *p = ctx;
    return item >= 0 && item < p->n_items ? p->count[item] : 0.0f;
}

void rec_popularity_score_batch(void *ctx, int user, const int *items, int n, float *out) {
    for (int i = 0; i < n; i++) out[i] = rec_popularity_score(ctx, user, items[i]);
}

rec_scorer rec_popularity_scorer(rec_popularity *p) {
    rec_scorer s = {rec_popularity_score, rec_popularity_score_batch, p};
    return s;
}

void rec_popularity_free(rec_popularity *p) {
    if (!p) return;
    free(p->count);
    memset(p, 0, sizeof *p);
}

/* ------------------------------------------------------------------ NCF negatives */

void rec_ncf_cases_free(rec_ncf_cases *c) {
    if (!c) return;
    free(c->user);
    free(c->pos);
    free(c->neg);
    memset(c, 0, sizeof *c);
}

mm_status rec_ncf_sample(const rec_interactions *train, const rec_interactions *test, int n_neg, uint64_t seed,
                         rec_ncf_cases *out) {
    memset(out, 0, sizeof *out);
    if (n_neg < 0) return mm_error(MM_ERR_ARG, "ncf: negative count %d", n_neg);
    if (test->n > INT32_MAX) return mm_error(MM_ERR_ARG, "ncf: too many test cases (%zu)", test->n);
    rec_user_items seen;
    mm_status st = rec_user_items_build(train, test, 0, &seen);
    if (st != MM_OK) return st;
    int ni = train->items.n, n = (int)test->n;
    out->user = malloc(((size_t)n + 1) * sizeof *out->user);
    out->pos = malloc(((size_t)n + 1) * sizeof *out->pos);
    out->neg = malloc(((size_t)n * (size_t)n_neg + 1) * sizeof *out->neg);
    uint32_t *stamp = calloc((size_t)ni + 1, sizeof *stamp);
    int32_t *cand = malloc(((size_t)ni + 1) * sizeof *cand);
    if (!out->user || !out->pos || !out->neg || !stamp || !cand) {
        st = mm_error(MM_ERR_NOMEM, "ncf: out of memory");
        goto done;
    }
    out->n = n;
    out->n_neg = n_neg;
    for (int c = 0; c < n; c++) {
        int u = test->user[c];
        out->user[c] = u;
        out->pos[c] = test->item[c];
        int32_t *neg = out->neg + (size_t)c * n_neg;
        int have = rec_user_items_count(&seen, u);
        int avail = ni - have;
        if (avail < n_neg) {
            st = mm_error(MM_ERR_ARG, "ncf: user %lld has only %d items without interactions, %d negatives asked",
                          (long long)test->users.orig[u], avail, n_neg);
            goto done;
        }
        /* stream of this case: seed, original user id and original held-out item id */
        uint64_t state = seed ^ rec_mix64((uint64_t)test->users.orig[u] * 0x9E3779B97F4A7C15ull +
                                          rec_mix64((uint64_t)test->items.orig[test->item[c]]));
        if (avail < 4 * n_neg) {
            /* dense: enumerate candidates, partial Fisher-Yates */
            int m = 0;
            const int32_t *s = seen.items + seen.offset[u];
            for (int it = 0, j = 0; it < ni; it++) {
                while (j < have && s[j] < it) j++;
                if (j < have && s[j] == it) continue;
                cand[m++] = it;
            }
            for (int k = 0; k < n_neg; k++) {
                int r = k + (int)rec_bounded(rec_splitmix64(&state), (uint32_t)(m - k));
                int32_t t = cand[k];
                cand[k] = cand[r];
                cand[r] = t;
                neg[k] = cand[k];
            }
        } else {
            /* sparse: rejection against the user's items and the draws so far */
            uint32_t mark = (uint32_t)c + 1;
            for (int k = 0; k < n_neg;) {
                int it = (int)rec_bounded(rec_splitmix64(&state), (uint32_t)ni);
                if (stamp[it] == mark || rec_user_items_has(&seen, u, it)) continue;
                stamp[it] = mark;
                neg[k++] = it;
            }
        }
    }
done:
    free(stamp);
    free(cand);
    rec_user_items_free(&seen);
    if (st != MM_OK) rec_ncf_cases_free(out);
    return st;
}

/* Fills out[0..n) with the scorer's scores for items. */
static void score_items(rec_scorer s, int user, const int *items, int n, float *out) {
    if (s.score_batch) s.score_batch(s.ctx, user, items, n, out);
    else
        for (int i = 0; i < n; i++) out[i] = s.score(s.ctx, user, items[i]);
}

mm_status rec_eval_ncf(const rec_ncf_cases *c, rec_scorer s, int k, rec_rank_metrics *out, int *ranks) {
    memset(out, 0, sizeof *out);
    if (!s.score && !s.score_batch) return mm_error(MM_ERR_ARG, "ncf eval: no scoring function");
    if (k <= 0) return mm_error(MM_ERR_ARG, "ncf eval: k must be positive, got %d", k);
    if (c->n <= 0) return mm_error(MM_ERR_ARG, "ncf eval: no test cases");
    int m = c->n_neg + 1;
    int *items = malloc((size_t)m * sizeof *items);
    float *sc = malloc((size_t)m * sizeof *sc);
    if (!items || !sc) {
        free(items);
        free(sc);
        return mm_error(MM_ERR_NOMEM, "ncf eval: out of memory");
    }
    double hr = 0, ndcg = 0;
    mm_status st = MM_OK;
    for (int i = 0; i < c->n; i++) {
        items[0] = c->pos[i];
        memcpy(items + 1, c->neg + (size_t)i * c->n_neg, (size_t)c->n_neg * sizeof *items);
        score_items(s, c->user[i], items, m, sc);
        int rank = 0;
        for (int j = 0; j < m; j++) {
            if (isnan(sc[j])) {
                st = mm_error(MM_ERR_NUMERIC, "ncf eval: NaN score for user %d, item %d", c->user[i], items[j]);
                goto done;
            }
            if (j && sc[j] >= sc[0]) rank++; /* ties count against the model */
        }
        if (ranks) ranks[i] = rank;
        if (rank < k) {
            hr += 1;
            ndcg += 1.0 / log2(rank + 2.0);
        }
    }
    out->k = k;
    out->n_users = c->n;
    out->hr = hr / c->n;
    out->ndcg = ndcg / c->n;
done:
    free(items);
    free(sc);
    return st;
}

/* ------------------------------------------------------------------ full ranking */

/* a before b: higher score, then smaller item id */
static int better(float sa, int a, float sb, int b) { return sa > sb || (sa == sb && a < b); }

mm_status rec_eval_full(const rec_user_items *exclude, const rec_user_items *relevant, rec_scorer s, int k,
                        rec_rank_metrics *out) {
    memset(out, 0, sizeof *out);
    if (!s.score && !s.score_batch) return mm_error(MM_ERR_ARG, "full eval: no scoring function");
    if (k <= 0) return mm_error(MM_ERR_ARG, "full eval: k must be positive, got %d", k);
    if (exclude && (exclude->n_items != relevant->n_items || exclude->n_users != relevant->n_users))
        return mm_error(MM_ERR_ARG, "full eval: exclude has %d users x %d items, relevant %d x %d",
                        exclude->n_users, exclude->n_items, relevant->n_users, relevant->n_items);
    int ni = relevant->n_items;
    int *all = malloc(((size_t)ni + 1) * sizeof *all);
    float *sc = malloc(((size_t)ni + 1) * sizeof *sc);
    int *top = malloc((size_t)k * sizeof *top);
    double *disc = malloc((size_t)k * sizeof *disc);
    if (!all || !sc || !top || !disc) {
        free(all);
        free(sc);
        free(top);
        free(disc);
        return mm_error(MM_ERR_NOMEM, "full eval: out of memory");
    }
    for (int i = 0; i < ni; i++) all[i] = i;
    for (int i = 0; i < k; i++) disc[i] = 1.0 / log2(i + 2.0);
    mm_status st = MM_OK;
    double rsum = 0, nsum = 0;
    long users = 0;
    for (int u = 0; u < relevant->n_users; u++) {
        const int32_t *rel = relevant->items + relevant->offset[u];
        int nrel_all = rec_user_items_count(relevant, u), nrel = 0;
        for (int j = 0; j < nrel_all; j++) nrel += !(exclude && rec_user_items_has(exclude, u, rel[j]));
        if (nrel == 0) continue;
        score_items(s, u, all, ni, sc);
        /* top k by insertion into a sorted list, skipping training items */
        int ntop = 0;
        const int32_t *ex = exclude ? exclude->items + exclude->offset[u] : NULL;
        int nex = exclude ? rec_user_items_count(exclude, u) : 0, j = 0;
        for (int it = 0; it < ni; it++) {
            while (j < nex && ex[j] < it) j++;
            if (j < nex && ex[j] == it) continue;
            float v = sc[it];
            if (isnan(v)) {
                st = mm_error(MM_ERR_NUMERIC, "full eval: NaN score for user %d, item %d", u, it);
                goto done;
            }
            if (ntop == k && !better(v, it, sc[top[k - 1]], top[k - 1])) continue;
            int p = ntop < k ? ntop++ : k - 1;
            while (p > 0 && better(v, it, sc[top[p - 1]], top[p - 1])) {
                top[p] = top[p - 1];
                p--;
            }
            top[p] = it;
        }
        double hits = 0, dcg = 0, idcg = 0;
        for (int i = 0; i < ntop; i++)
            if (rec_user_items_has(relevant, u, top[i])) {
                hits += 1;
                dcg += disc[i];
            }
        for (int i = 0; i < k && i < nrel; i++) idcg += disc[i];
        rsum += hits / nrel;
        nsum += dcg / idcg;
        users++;
    }
    if (users == 0) {
        st = mm_error(MM_ERR_ARG, "full eval: no user has a relevant item outside the excluded ones");
        goto done;
    }
    out->k = k;
    out->n_users = users;
    out->hr = rsum / users;
    out->ndcg = nsum / users;
done:
    free(all);
    free(sc);
    free(top);
    free(disc);
    return st;
}
