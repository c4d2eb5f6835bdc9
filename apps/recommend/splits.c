/* Recommend app: leave-one-out split, implicit feedback, per-user item sets. */
#include "recommend/recommend.h"

#include <stdlib.h>
#include <string.h>

static int same_index(const rec_idmap *a, const rec_idmap *b) {
    return a->n == b->n && (a->n == 0 || !memcmp(a->orig, b->orig, (size_t)a->n * sizeof *a->orig));
}

mm_status rec_split_leave_one_out(const rec_interactions *all, rec_interactions *train, rec_interactions *test) {
    memset(train, 0, sizeof *train);
    memset(test, 0, sizeof *test);
    int nu = all->users.n;
    long *best = malloc((size_t)(nu ? nu : 1) * sizeof *best);
    int *count = calloc((size_t)(nu ? nu : 1), sizeof *count);
    if (!best || !count) {
        free(best);
        free(count);
        return mm_error(MM_ERR_NOMEM, "leave-one-out: out of memory");
    }
    for (int u = 0; u < nu; u++) best[u] = -1;
    for (size_t i = 0; i < all->n; i++) {
        int u = all->user[i];
        count[u]++;
        /* replace on timestamp >= best: ties go to the later line */
        if (best[u] < 0 || all->timestamp[i] >= all->timestamp[best[u]]) best[u] = (long)i;
    }
    size_t ntest = 0;
    for (int u = 0; u < nu; u++) {
        if (count[u] < 2) best[u] = -1;
        else ntest++;
    }
    mm_status st = rec_interactions_like(all, all->n - ntest, train);
    if (st == MM_OK) st = rec_interactions_like(all, ntest, test);
    for (size_t i = 0; st == MM_OK && i < all->n; i++) {
        if (best[all->user[i]] == (long)i) continue;
        st = rec_interactions_push(train, all->user[i], all->item[i], all->rating[i], all->timestamp[i]);
    }
    for (int u = 0; st == MM_OK && u < nu; u++) {
        long b = best[u];
        if (b >= 0) st = rec_interactions_push(test, u, all->item[b], all->rating[b], all->timestamp[b]);
    }
    free(best);
    free(count);
    if (st != MM_OK) {
        rec_interactions_free(train);
        rec_interactions_free(test);
    }
    return st;
}

mm_status rec_implicit(const rec_interactions *in, float threshold, rec_interactions *out) {
    size_t keep = 0;
    for (size_t i = 0; i < in->n; i++) keep += threshold <= 0 || in->rating[i] >= threshold;
    mm_status st = rec_interactions_like(in, keep, out);
    for (size_t i = 0; st == MM_OK && i < in->n; i++)
        if (threshold <= 0 || in->rating[i] >= threshold)
            st = rec_interactions_push(out, in->user[i], in->item[i], 1.0f, in->timestamp[i]);
    if (st != MM_OK) rec_interactions_free(out);
    return st;
}

/* ------------------------------------------------------------------ user item sets */

void rec_user_items_free(rec_user_items *s) {
    if (!s) return;
    free(s->offset);
    free(s->items);
    memset(s, 0, sizeof *s);
}

static int cmp_i32(const void *a, const void *b) {
    int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;
    return (x > y) - (x < y);
}

mm_status rec_user_items_build(const rec_interactions *d, const rec_interactions *d2, float min_rating,
                               rec_user_items *out) {
    memset(out, 0, sizeof *out);
    if (d2 && (!same_index(&d->users, &d2->users) || !same_index(&d->items, &d2->items)))
        return mm_error(MM_ERR_ARG, "user item sets: the two interaction sets have different id indexes");
    int nu = d->users.n;
    out->n_users = nu;
    out->n_items = d->items.n;
    out->offset = calloc((size_t)nu + 1, sizeof *out->offset);
    if (!out->offset) return mm_error(MM_ERR_NOMEM, "user item sets: out of memory");
    const rec_interactions *sets[2] = {d, d2};
    for (int k = 0; k < 2; k++) {
        const rec_interactions *s = sets[k];
        if (!s) continue;
        for (size_t i = 0; i < s->n; i++)
            if (min_rating <= 0 || s->rating[i] >= min_rating) out->offset[s->user[i] + 1]++;
    }
    for (int u = 0; u < nu; u++) out->offset[u + 1] += out->offset[u];
    size_t total = out->offset[nu];
    out->items = malloc((total ? total : 1) * sizeof *out->items);
    size_t *pos = malloc(((size_t)nu + 1) * sizeof *pos);
    if (!out->items || !pos) {
        free(pos);
        rec_user_items_free(out);
        return mm_error(MM_ERR_NOMEM, "user item sets: out of memory");
    }
    memcpy(pos, out->offset, ((size_t)nu + 1) * sizeof *pos);
    for (int k = 0; k < 2; k++) {
        const rec_interactions *s = sets[k];
        if (!s) continue;
        for (size_t i = 0; i < s->n; i++)
            if (min_rating <= 0 || s->rating[i] >= min_rating) out->items[pos[s->user[i]]++] = s->item[i];
    }
    /* sort each user's items and drop duplicates, compacting in place */
    size_t w = 0;
    for (int u = 0; u < nu; u++) {
        size_t a = out->offset[u], b = out->offset[u + 1];
        qsort(out->items + a, b - a, sizeof *out->items, cmp_i32);
        out->offset[u] = w;
        for (size_t i = a; i < b; i++)
            if (i == a || out->items[i] != out->items[i - 1]) out->items[w++] = out->items[i];
    }
    out->offset[nu] = w;
    free(pos);
    return MM_OK;
}

int rec_user_items_has(const rec_user_items *s, int user, int item) {
    if (user < 0 || user >= s->n_users) return 0;
    size_t lo = s->offset[user], hi = s->offset[user + 1];
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (s->items[mid] < item) lo = mid + 1;
        else hi = mid;
    }
    return lo < s->offset[user + 1] && s->items[lo] == item;
}
