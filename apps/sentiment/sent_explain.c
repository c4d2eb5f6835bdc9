/* Word-level explanations by occlusion: each token's weight is how much the predicted class's
 * log-odds, log(p / (1 - p)), drop when the token (with the n-grams that cover it) is replaced
 * by <unk>. Log-odds rather than probabilities because confident predictions saturate: at
 * p = 0.9999 every probability difference is ~1e-4, while the log-odds still separate the
 * decisive words from the rest. Positive weights support the prediction, negative ones speak
 * against it. All occluded variants of a text run as one batch. */
#include "sentiment/sent_internal.h"

#include <math.h>
#include <stdlib.h>

static double log_odds(float p) {
    double q = p < 1e-7f ? 1e-7 : p > 1 - 1e-7f ? 1 - 1e-7 : p;
    return log(q / (1 - q));
}

mm_status sent_explain_occlusion(sent_model *m, const sent_tokens *t, sent_prediction *o) {
    const int L = m->max_len, K = m->n_labels, T = t->n;
    o->weight = calloc((size_t)T + 1, sizeof(float));
    if (!o->weight) return mm_error(MM_ERR_NOMEM, "out of memory");
    if (T == 0) return MM_OK;
    mm_array x = {0}, p = {0};
    mm_status st = mm_array_alloc(&x, 2, (int[]){T, L});
    if (st) return st;
    for (int k = 0; k < T; k++) sent_features(&m->vocab, t, k, x.data + (size_t)k * L, L);
    st = mm_predict(m->net, &x, 1024, &p);
    if (!st)
        for (int k = 0; k < T; k++)
            o->weight[k] = (float)(log_odds(o->probs[o->label]) - log_odds(p.data[(size_t)k * K + o->label]));
    mm_array_free(&x), mm_array_free(&p);
    return st;
}
