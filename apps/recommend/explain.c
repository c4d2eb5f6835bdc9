/* Recommend app: explanations from item embeddings ("because you rated ...") and similar
 * items by cosine similarity. */
#include "recommend/recommend.h"

#include <math.h>
#include <stdlib.h>

static double dot(const float *a, const float *b, int dim) {
    double s = 0;
    for (int i = 0; i < dim; i++) s += (double)a[i] * b[i];
    return s;
}

static float cosine(const float *a, double na, const float *b, int dim) {
    double nb = sqrt(dot(b, b, dim));
    if (na == 0 || nb == 0) return 0.0f;
    return (float)(dot(a, b, dim) / (na * nb));
}

/* Inserts (item, sim, score) into out[0..*n) kept sorted by score desc, item asc, at most k. */
static void insert_top(rec_neighbor *out, int *n, int k, int item, float sim, float score) {
    int m = *n;
    if (m == k) {
        const rec_neighbor *w = &out[k - 1];
        if (!(score > w->score || (score == w->score && item < w->item))) return;
    }
    int p = m < k ? m++ : k - 1;
    while (p > 0 && (score > out[p - 1].score || (score == out[p - 1].score && item < out[p - 1].item))) {
        out[p] = out[p - 1];
        p--;
    }
    out[p].item = item;
    out[p].sim = sim;
    out[p].score = score;
    *n = m;
}

static mm_status check_emb(const char *what, const float *emb, int n_items, int dim, int item, int k, int *n_out) {
    if (n_out) *n_out = 0;
    if (!emb || n_items <= 0 || dim <= 0)
        return mm_error(MM_ERR_ARG, "%s: empty embedding matrix (%d items x %d)", what, n_items, dim);
    if (item < 0 || item >= n_items) return mm_error(MM_ERR_ARG, "%s: item %d outside 0..%d", what, item, n_items - 1);
    if (k < 0) return mm_error(MM_ERR_ARG, "%s: negative k %d", what, k);
    if (!n_out) return mm_error(MM_ERR_ARG, "%s: no output count", what);
    return MM_OK;
}

mm_status rec_reasons(const float *emb, int n_items, int dim, const int *rated, const float *ratings, int n_rated,
                      int target, int k, rec_neighbor *out, int *n_out) {
    mm_status st = check_emb("reasons", emb, n_items, dim, target, k, n_out);
    if (st != MM_OK) return st;
    if (n_rated < 0 || (n_rated > 0 && (!rated || !ratings)))
        return mm_error(MM_ERR_ARG, "reasons: no rated items given");
    const float *t = emb + (size_t)target * dim;
    double nt = sqrt(dot(t, t, dim));
    int n = 0;
    for (int i = 0; i < n_rated; i++) {
        int it = rated[i];
        if (it < 0 || it >= n_items)
            return mm_error(MM_ERR_ARG, "reasons: rated item %d outside 0..%d", it, n_items - 1);
        if (!isfinite(ratings[i])) return mm_error(MM_ERR_NUMERIC, "reasons: rating %d is not finite", i);
        if (it == target || k == 0) continue;
        float sim = cosine(t, nt, emb + (size_t)it * dim, dim);
        if (isnan(sim)) return mm_error(MM_ERR_NUMERIC, "reasons: NaN similarity for item %d", it);
        insert_top(out, &n, k, it, sim, ratings[i] * sim);
    }
    *n_out = n;
    return MM_OK;
}

mm_status rec_similar_items(const float *emb, int n_items, int dim, int item, int k, rec_neighbor *out, int *n_out) {
    mm_status st = check_emb("similar items", emb, n_items, dim, item, k, n_out);
    if (st != MM_OK || k == 0) return st;
    const float *t = emb + (size_t)item * dim;
    double nt = sqrt(dot(t, t, dim));
    int n = 0;
    for (int j = 0; j < n_items; j++) {
        if (j == item) continue;
        float sim = cosine(t, nt, emb + (size_t)j * dim, dim);
        if (isnan(sim)) return mm_error(MM_ERR_NUMERIC, "similar items: NaN similarity for item %d", j);
        insert_top(out, &n, k, j, sim, sim);
    }
    *n_out = n;
    return MM_OK;
}
