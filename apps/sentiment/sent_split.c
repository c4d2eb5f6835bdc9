/* Stratified folds: a seeded shuffle within each class, dealt round-robin to the folds. A
 * 90/10 split is fold 0 of 10 held out. */
#include "sentiment/sentiment.h"

#include <stdlib.h>

static uint64_t mix64(uint64_t x) {
    x += 0x9E3779B97F4A7C15ull;
    x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
    x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
    return x ^ (x >> 31);
}

mm_status sent_folds(const sent_corpus *c, int k, uint64_t seed, int *fold) {
    if (k < 2 || k > c->n)
        return mm_error(MM_ERR_ARG, "cannot make %d folds of %d examples (need 2 <= k <= examples)", k, c->n);
    int *order = malloc((size_t)c->n * sizeof(int));
    if (!order) return mm_error(MM_ERR_NOMEM, "out of memory");
    int next = 0;
    uint64_t state = seed * 0xD1B54A32D192ED03ull + 1;
    for (int lab = 0; lab < c->n_labels; lab++) {
        int m = 0;
        for (int i = 0; i < c->n; i++)
            if (c->label[i] == lab) order[m++] = i;
        for (int i = m - 1; i > 0; i--) { /* Fisher-Yates */
            state = mix64(state);
            int j = (int)((state >> 33) % (uint64_t)(i + 1));
            int t = order[i];
            order[i] = order[j], order[j] = t;
        }
        for (int i = 0; i < m; i++) fold[order[i]] = next++ % k;
    }
    free(order);
    return MM_OK;
}
