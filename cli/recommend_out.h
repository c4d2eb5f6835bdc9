/* Output shared by the recommend commands: the evaluation table / JSON object. */
#ifndef MEDIAML_CLI_RECOMMEND_OUT_H
#define MEDIAML_CLI_RECOMMEND_OUT_H

#include "recommend/rec_model.h"

/* Prints an evaluation (text table or one JSON object); train_seconds >= 0 adds the
 * training time. */
void rec_print_eval(const rec_model *m, const rec_data *d, const rec_eval_report *e, int json, double train_seconds);

#endif
