/* Output shared by the sentiment commands: evaluation metrics (text or JSON) and the shared
 * data flags. */
#ifndef MEDIAML_CLI_SENTIMENT_OUT_H
#define MEDIAML_CLI_SENTIMENT_OUT_H

#include "sentiment/sentiment.h"

#include <stdio.h>

/* Accuracy, macro-F1 and the confusion matrix; what names the evaluated set ("test", "all"). */
void sent_print_metrics(FILE *f, const sent_metrics *m, char *const *labels, const char *what, int json);
/* "Skipped N empty texts (first at line L)" on stderr when the loader skipped any. */
void sent_note_skipped(const sent_corpus *c, const char *path);
/* Loads data for a command, printing the library error; returns 0 or EXIT_LIBRARY. */
int sent_load_cli(const char *path, const char *format, int n_known, char *const *known, sent_corpus *out);

#endif
