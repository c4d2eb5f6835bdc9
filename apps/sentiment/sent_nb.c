/* Naive-Bayes initialization of the nb model. Multinomial NB over binarized features is a
 * strong baseline for short sentiment texts (Wang & Manning 2012: 79.0% on rt-polarity with
 * uni+bigrams); written into the fastText network it becomes the starting point of gradient
 * training instead of random vectors:
 *   features/embeddings[id][k] = log P(id | k) - mean over classes (add-alpha smoothing)
 *   classifier/kernel = s * identity, classifier/bias[k] = log P(k)
 * where s is the mean number of ids per row, because the network averages the row's vectors
 * where naive Bayes sums them. */
#include "sentiment/sent_internal.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

mm_status sent_nb_init(sent_model *m, const char *prefix, const mm_array *x, const mm_array *y, float alpha) {
    const int K = m->n_labels, R = sent_vocab_rows(&m->vocab), N = x->shape[0], L = x->shape[1];
    double *count = calloc((size_t)R * K, sizeof(double)), *total = calloc((size_t)K, sizeof(double));
    double *prior = calloc((size_t)K, sizeof(double));
    float *emb = malloc((size_t)R * K * sizeof(float)), *kernel = calloc((size_t)K * K, sizeof(float));
    float *bias = malloc((size_t)K * sizeof(float));
    double *lp = malloc((size_t)K * sizeof(double));
    mm_status st = count && total && prior && emb && kernel && bias && lp ? MM_OK : mm_error(MM_ERR_NOMEM, "out of memory");
    long ids = 0;
    for (int e = 0; !st && e < N; e++) {
        int k = (int)y->data[e];
        prior[k] += 1;
        for (int t = 0; t < L; t++) {
            int id = (int)x->data[(size_t)e * L + t];
            if (id <= 0) continue; /* padding */
            count[(size_t)id * K + k] += 1;
            total[k] += 1;
            ids++;
        }
    }
    /* smoothing spreads alpha over the features seen in training, not over every hash bucket:
     * with a million mostly empty buckets the smoothing mass would swamp the counts */
    long seen = 0;
    for (int id = 1; !st && id < R; id++) {
        int any = 0;
        for (int k = 0; k < K; k++) any |= count[(size_t)id * K + k] > 0;
        seen += any;
    }
    for (int id = 0; !st && id < R; id++) {
        double mean = 0;
        for (int k = 0; k < K; k++) {
            lp[k] = log((count[(size_t)id * K + k] + alpha) / (total[k] + alpha * (double)seen));
            mean += lp[k] / K;
        }
        for (int k = 0; k < K; k++) emb[(size_t)id * K + k] = id == 0 ? 0.0f : (float)(lp[k] - mean);
    }
    if (!st) {
        float s = N > 0 ? (float)ids / (float)N : 1.0f;
        for (int k = 0; k < K; k++) {
            kernel[k * K + k] = s;
            bias[k] = (float)log((prior[k] + 1) / (N + K)); /* add-one: a class may be absent */
        }
        char name[3][96];
        snprintf(name[0], sizeof name[0], "%sfeatures/embeddings", prefix);
        snprintf(name[1], sizeof name[1], "%sclassifier/kernel", prefix);
        snprintf(name[2], sizeof name[2], "%sclassifier/bias", prefix);
        st = mm_model_set_weights(m->net, name[0], emb, (size_t)R * K);
        if (!st) st = mm_model_set_weights(m->net, name[1], kernel, (size_t)K * K);
        if (!st) st = mm_model_set_weights(m->net, name[2], bias, (size_t)K);
    }
    free(count), free(total), free(prior), free(emb), free(kernel), free(bias), free(lp);
    return st;
}
