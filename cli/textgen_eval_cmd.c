/* mediaml textgen eval: mean cross-entropy per token of a model on a text file's validation
 * part (or all of it), on non-overlapping windows of the model's context. */
#include "commands.h"
#include "json.h"
#include "textgen/textgen.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

int cmd_textgen_eval(int argc, char **argv) {
    const char *model = NULL, *data = NULL, *csv_column = NULL;
    float val_fraction = -1;
    long windows = 0, limit = 0;
    int batch = 32, threads = 0, json = 0;
    const char *matmul_precision = NULL;
    cli_opt opts[] = {
        {"--model", OPT_STR, &model, "FILE", "model file written by 'mediaml textgen train' (required)", 0},
        {"--data", OPT_STR, &data, "FILE", "UTF-8 text file (required)", 0},
        {"--csv-column", OPT_STR, &csv_column, "NAME", "--data is a CSV file: this column (default: the model's)", 0},
        {"--val-fraction", OPT_FLOAT, &val_fraction, "F", "evaluate the last F of the tokens, 0 = all (default: the model's, 0.1)", 0},
        {"--limit", OPT_LONG, &limit, "BYTES", "use only the first BYTES bytes of --data (default: the model's)", 0},
        {"--windows", OPT_LONG, &windows, "N", "at most N windows, evenly spread (default: all non-overlapping)", 0},
        {"--batch-size", OPT_INT, &batch, "B", "windows per batch (default 32)", 0},
        {"--threads", OPT_INT, &threads, "T", "kernel threads (default $MEDIAML_THREADS, else the core count)", 0},
        {"--matmul-precision", OPT_STR, &matmul_precision, "P", CLI_MATMUL_PRECISION_HELP, 0},
        {"--json", OPT_BOOL, &json, NULL, "print one JSON object", 0},
        {NULL, 0, NULL, NULL, NULL, 0}};
    cli_cmd cmd = {"textgen eval", "--model FILE --data FILE [OPTIONS]",
                   "Evaluates a language model on the validation part of a text file (the split 'textgen train'\n"
                   "uses): mean cross-entropy per token in nats, its base-2 form, perplexity and next-token accuracy.",
                   opts, NULL};
    int npos, rc = cli_parse(&cmd, argc, argv, NULL, 0, &npos);
    if (rc) return rc == CLI_HELP ? 0 : rc;
    if (!model) return cli_usage_error(&cmd, "--model FILE is required");
    if (!data) return cli_usage_error(&cmd, "--data FILE is required");
    if (cli_find(&cmd, "--val-fraction")->seen && !(val_fraction >= 0 && val_fraction < 1))
        return cli_usage_error(&cmd, "--val-fraction must be in [0, 1), got %g", val_fraction);
    if (cli_find(&cmd, "--windows")->seen && windows < 1) return cli_usage_error(&cmd, "--windows must be at least 1, got %ld", windows);
    if (cli_find(&cmd, "--limit")->seen && limit < 1) return cli_usage_error(&cmd, "--limit must be at least 1, got %ld", limit);
    if (batch < 1) return cli_usage_error(&cmd, "--batch-size must be at least 1, got %d", batch);
    if ((rc = cli_apply_threads(&cmd, "--threads", threads))) return rc;
    if ((rc = cli_apply_matmul_precision(&cmd, "--matmul-precision", matmul_precision))) return rc;
    textgen_lm lm;
    if (textgen_load(model, &lm)) return cli_library_error();
    if (val_fraction < 0) val_fraction = lm.meta.val_fraction > 0 ? lm.meta.val_fraction : 0.1f;
    if (limit <= 0) limit = lm.meta.limit;
    char *text = NULL;
    size_t len = 0;
    double loss = 0, acc = 0;
    long nw = 0;
    if (!csv_column && lm.meta.csv_column[0]) csv_column = lm.meta.csv_column;
    mm_status st = csv_column ? textgen_read_csv_column(data, csv_column, limit, &text, &len)
                              : textgen_read_text(data, limit, &text, &len);
    if (!st) st = textgen_evaluate(&lm, text, len, val_fraction, windows, batch, &loss, &acc, &nw);
    free(text);
    int ctx = lm.cfg.context;
    textgen_lm_free(&lm);
    if (st) return cli_library_error();
    if (json) {
        printf("{\"val_loss\":");
        json_number(stdout, loss);
        json_field_number(stdout, "bits_per_token", loss / log(2.0));
        json_field_number(stdout, "perplexity", exp(loss));
        json_field_number(stdout, "val_accuracy", acc);
        printf(",\"windows\":%ld,\"tokens\":%ld}\n", nw, nw * ctx);
    } else {
        printf("val_loss: %.4f nats/token (%.4f bits) - perplexity: %.3f - val_accuracy: %.4f - %ld windows of %d tokens\n",
               loss, loss / log(2.0), exp(loss), acc, nw, ctx);
    }
    return 0;
}
