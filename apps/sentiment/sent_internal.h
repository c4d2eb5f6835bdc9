/* Helpers shared by the sentiment app's files (not part of its interface). */
#ifndef MEDIAML_APP_SENT_INTERNAL_H
#define MEDIAML_APP_SENT_INTERNAL_H

#include "sentiment/sentiment.h"

/* Index of the largest of p[0..k). */
int sent_argmax(const float *p, int k);

/* Fills o->weight [t->n]: for each token, the predicted class's log-odds minus its log-odds
 * with the token (and the n-grams covering it) replaced by <unk>. */
mm_status sent_explain_occlusion(sent_model *m, const sent_tokens *t, sent_prediction *o);

/* Sets an nb network's weights (those named PREFIX + "features/embeddings", "classifier/kernel"
 * and "classifier/bias") from naive-Bayes counts over the input rows x [N, L] with class
 * labels y [N] (alpha: add-alpha smoothing). */
mm_status sent_nb_init(sent_model *m, const char *prefix, const mm_array *x, const mm_array *y, float alpha);

#endif
