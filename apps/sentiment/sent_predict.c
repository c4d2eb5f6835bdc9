/* Classifying texts with a trained model: checks, input rows, batched predictions. */
#include "sentiment/sentiment.h"
#include "sentiment/sent_internal.h"

#include <mediaml_text.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void sent_prediction_free(sent_prediction *p) {
    free(p->probs), free(p->start), free(p->len), free(p->weight);
    memset(p, 0, sizeof *p);
}

const char *sent_text_problem(const char *text, size_t len, char *buf, size_t size) {
    size_t bad;
    if (len > (size_t)SENT_MAX_TEXT_BYTES) {
        snprintf(buf, size, "text of %zu bytes exceeds the limit of %d bytes", len, SENT_MAX_TEXT_BYTES);
        return buf;
    }
    if (mm_utf8_validate(text, len, &bad) != MM_OK) {
        snprintf(buf, size, "%s", mm_errmsg());
        return buf;
    }
    size_t i = 0;
    while (i < len && (text[i] == ' ' || (text[i] >= '\t' && text[i] <= '\r'))) i++;
    if (i == len) {
        snprintf(buf, size, "empty text");
        return buf;
    }
    return NULL;
}

int sent_argmax(const float *p, int k) {
    int best = 0;
    for (int j = 1; j < k; j++)
        if (p[j] > p[best]) best = j;
    return best;
}

mm_status sent_predict(sent_model *m, int n, const char *const *texts, const size_t *lens, int explain,
                       sent_prediction *out) {
    memset(out, 0, (size_t)n * sizeof *out);
    const int K = m->n_labels, L = m->max_len;
    char why[256];
    for (int i = 0; i < n; i++)
        if (sent_text_problem(texts[i], lens[i], why, sizeof why))
            return mm_error(MM_ERR_ARG, "text %d: %s", i + 1, why);
    mm_array x = {0}, p = {0};
    sent_tokens t = {0};
    mm_status st = mm_array_alloc(&x, 2, (int[]){n > 0 ? n : 1, L});
    /* Tokenizing and hashing cost more than a bag model's forward pass, so the texts are
     * encoded in parallel (each thread its own token buffers). Errors are out of memory only
     * (the texts were checked above); mm_errmsg() is per thread, so the message is carried over. */
    int failed = 0;
    char msg[256] = "";
#pragma omp parallel num_threads(mm_get_threads()) if (!st && n >= 256)
    {
        sent_tokens tt = {0};
#pragma omp for schedule(dynamic, 64)
        for (int i = 0; i < n; i++) {
            if (st || failed) continue;
            sent_prediction *o = &out[i];
            mm_status e = sent_tokenize(m->lang, m->tok, texts[i], lens[i], &tt);
            if (!e) {
                int used = sent_features(&m->vocab, &tt, -1, x.data + (size_t)i * L, L);
                o->truncated = used >= L && sent_features(&m->vocab, &tt, -1, NULL, 0) > L;
                o->n_tokens = tt.n;
                o->start = malloc(((size_t)tt.n + 1) * sizeof(int));
                o->len = malloc(((size_t)tt.n + 1) * sizeof(int));
                o->probs = malloc((size_t)K * sizeof(float));
                if (!o->start || !o->len || !o->probs) e = mm_error(MM_ERR_NOMEM, "out of memory");
                else memcpy(o->start, tt.start, (size_t)tt.n * sizeof(int)), memcpy(o->len, tt.len, (size_t)tt.n * sizeof(int));
            }
            if (e) {
#pragma omp critical(sent_predict_error)
                if (!failed) failed = (int)e, snprintf(msg, sizeof msg, "%s", mm_errmsg());
            }
        }
        sent_tokens_free(&tt);
    }
    if (!st && failed) st = mm_error((mm_status)failed, "%s", msg);
    if (!st && n > 0) st = mm_predict(m->net, &x, 1024, &p);
    for (int i = 0; i < n && !st; i++) {
        memcpy(out[i].probs, p.data + (size_t)i * K, (size_t)K * sizeof(float));
        out[i].label = sent_argmax(out[i].probs, K);
    }
    for (int i = 0; i < n && !st && explain; i++) {
        st = sent_tokenize(m->lang, m->tok, texts[i], lens[i], &t);
        if (!st) st = sent_explain_occlusion(m, &t, &out[i]);
    }
    sent_tokens_free(&t);
    mm_array_free(&x), mm_array_free(&p);
    if (st)
        for (int i = 0; i < n; i++) sent_prediction_free(&out[i]);
    return st;
}
