/* mediaml recommend eval: a model file's metrics on a split beside the popularity baseline. */
#include "commands.h"
#include "recommend/rec_model.h"
#include "recommend_out.h"

#include <stdio.h>
#include <string.h>

int cmd_recommend_eval(int argc, char **argv) {
    const char *model_path = NULL, *data = NULL, *split = NULL;
    int threads = 0, json = 0;
    cli_opt opts[] = {
        {"--model", OPT_STR, &model_path, "FILE", "model file from 'recommend train' (required)", 0},
        {"--data", OPT_STR, &data, "DIR", "MovieLens directory (default: the one the model was trained on)", 0},
        {"--split", OPT_STR, &split, "NAME", "u1..u5, ua, ub or loo (default: the model's training split)", 0},
        {"--threads", OPT_INT, &threads, "T", "kernel threads (default $MEDIAML_THREADS, else the core count)", 0},
        {"--json", OPT_BOOL, &json, NULL, "print the result as one JSON object", 0},
        {NULL, 0, NULL, NULL, NULL, 0}};
    cli_cmd c = {"recommend eval", "--model FILE [OPTIONS]",
                 "Evaluates a recommend model on the test part of a split: RMSE and MAE (mf, predictions clipped to\n"
                 "the rating range), HR@10 and NDCG@10 under the NCF protocol (each test rating against 99 items the\n"
                 "user never rated, sampled with seed 42) and Recall@10 / NDCG@10 ranking all items the user has not\n"
                 "rated in training, with the popularity baseline (training counts) beside.",
                 opts,
                 "Evaluating on a split other than the training one mixes training ratings into the test set.\n"};
    int npos, rc = cli_parse(&c, argc, argv, NULL, 0, &npos);
    if (rc) return rc == CLI_HELP ? 0 : rc;
    if (!model_path) return cli_usage_error(&c, "--model FILE is required");
    if (split && !rec_split_valid(split)) return cli_usage_error(&c, "unknown split '%s' (expected u1..u5, ua, ub or loo)", split);
    if ((rc = cli_apply_threads(&c, "--threads", threads))) return rc;

    rec_model m;
    if (rec_model_load(model_path, &m)) return cli_library_error();
    if (!data) data = m.data_dir;
    if (!split) split = m.split[0] ? m.split : "loo";
    if (m.split[0] && strcmp(split, m.split))
        fprintf(stderr, "note: %s was trained on split %s, evaluating on %s\n", model_path, m.split, split);
    rec_data d;
    rec_eval_report e;
    mm_status st = rec_data_load(data, split, &m, &d);
    if (st == MM_OK) st = rec_evaluate(&m, &d, &e);
    if (st == MM_OK) rec_print_eval(&m, &d, &e, json, -1);
    rec_data_free(&d);
    rec_model_free(&m);
    return st ? cli_library_error() : 0;
}
