/* mediaml vision eval: loss, accuracy, top-k accuracy and the confusion matrix of a model
 * file on a data set's test split. */
#include "commands.h"
#include "json.h"
#include "vision/vision.h"

#include <stdio.h>
#include <string.h>

#define MAX_ROW 20   /* widest row label in the confusion matrix */

static int digits(long v) {
    int d = 1;
    while (v >= 10) v /= 10, d++;
    return d;
}

/* Row i's name: the label, prefixed by the class index when labels are names (columns then
 * show indices, keeping the matrix narrow). */
static const char *row_name(const mm_model *m, int i, int named, char *buf, size_t n) {
    char tmp[32];
    const char *l = vision_label(m, i, tmp, sizeof tmp);
    if (named) snprintf(buf, n, "%d %s", i, l);
    else snprintf(buf, n, "%s", l);
    return buf;
}

static void print_confusion(const mm_model *m, const mm_eval_result *r) {
    int k = r->num_classes, named = 0, colw = 1, roww = 1;
    char buf[64], idx[16];
    long maxc = 0;
    for (long i = 0; i < (long)k * k; i++)
        if (r->confusion[i] > maxc) maxc = r->confusion[i];
    for (int i = 0; i < k && !named; i++) {
        snprintf(idx, sizeof idx, "%d", i);
        named = strcmp(vision_label(m, i, buf, sizeof buf), idx) != 0;
    }
    for (int i = 0; i < k; i++) {
        int len = (int)strlen(row_name(m, i, named, buf, sizeof buf));
        if (len > roww) roww = len;
    }
    if (roww > MAX_ROW) roww = MAX_ROW;
    colw = digits(maxc) > digits(k - 1) ? digits(maxc) : digits(k - 1);
    printf("\nConfusion matrix (rows: true class, columns: predicted class)\n%*s", roww, "");
    for (int j = 0; j < k; j++) printf(" %*d", colw, j);
    putchar('\n');
    for (int i = 0; i < k; i++) {
        printf("%-*.*s", roww, roww, row_name(m, i, named, buf, sizeof buf));
        for (int j = 0; j < k; j++) printf(" %*ld", colw, r->confusion[(size_t)i * k + j]);
        putchar('\n');
    }
}

static void print_text(const mm_model *m, const mm_eval_result *r, const char *data) {
    printf("Evaluated %ld test examples from %s\n", r->count, data);
    printf("loss: %.4f\naccuracy: %.4f\ntop-%d accuracy: %.4f\n", r->loss, r->accuracy, r->top_k, r->top_k_accuracy);
    if (r->confusion && r->num_classes > 0) print_confusion(m, r);
}

static void print_json(const mm_model *m, const mm_eval_result *r) {
    char buf[32];
    printf("{\"examples\":%ld,\"loss\":", r->count);
    json_number(stdout, r->loss);
    json_field_number(stdout, "accuracy", r->accuracy);
    printf(",\"top_k\":%d,\"top_k_accuracy\":", r->top_k);
    json_number(stdout, r->top_k_accuracy);
    int k = r->num_classes;
    if (r->confusion && k > 0) {
        fputs(",\"labels\":[", stdout);
        for (int i = 0; i < k; i++) {
            if (i) putchar(',');
            json_string(stdout, vision_label(m, i, buf, sizeof buf));
        }
        fputs("],\"confusion\":[", stdout);
        for (int i = 0; i < k; i++) {
            printf("%s[", i ? "," : "");
            for (int j = 0; j < k; j++) printf("%s%ld", j ? "," : "", r->confusion[(size_t)i * k + j]);
            putchar(']');
        }
        putchar(']');
    }
    fputs("}\n", stdout);
}

int cmd_vision_eval(int argc, char **argv) {
    char data_default[4096];
    const char *model_path = NULL, *data = vision_default_data_dir(data_default, sizeof data_default);
    int batch = 32, top = 5, threads = 0, json = 0;
    long limit = 0;
    cli_opt opts[] = {
        {"--model", OPT_STR, &model_path, "FILE", "model file to evaluate (required)", 0},
        {"--data", OPT_STR, &data, "DIR", "IDX data set directory (default $MEDIAML_DATA/mnist, else ../shared/data/mnist)", 0},
        {"--batch-size", OPT_INT, &batch, "B", "examples per batch (default 32)", 0},
        {"--top", OPT_INT, &top, "K", "also report top-K accuracy (default 5)", 0},
        {"--threads", OPT_INT, &threads, "T", "kernel threads (default $MEDIAML_THREADS, else the core count)", 0},
        {"--limit", OPT_LONG, &limit, "N", "evaluate only the first N test examples", 0},
        {"--json", OPT_BOOL, &json, NULL, "print the result as one JSON object", 0},
        {NULL, 0, NULL, NULL, NULL, 0}};
    cli_cmd c = {"vision eval", "--model FILE [OPTIONS]",
                 "Evaluates a model file on the test split of an IDX data set: loss, accuracy, top-K accuracy and\n"
                 "the confusion matrix (rows: true class, columns: predicted class).",
                 opts, NULL};
    int npos, rc = cli_parse(&c, argc, argv, NULL, 0, &npos);
    if (rc) return rc == CLI_HELP ? 0 : rc;
    if (!model_path) return cli_usage_error(&c, "--model FILE is required");
    if (batch < 1) return cli_usage_error(&c, "--batch-size must be at least 1, got %d", batch);
    if (top < 1) return cli_usage_error(&c, "--top must be at least 1, got %d", top);
    if (cli_find(&c, "--limit")->seen && limit < 1) return cli_usage_error(&c, "--limit must be at least 1, got %ld", limit);
    if ((rc = cli_apply_threads(&c, "--threads", threads))) return rc;

    mm_model *m;
    mm_eval_result r;
    mm_status st = vision_eval(model_path, data, limit, batch, top, &m, &r);
    if (st) {
        mm_model_free(m);
        return cli_library_error();
    }
    if (json) print_json(m, &r);
    else print_text(m, &r, data);
    mm_eval_result_free(&r);
    mm_model_free(m);
    return 0;
}
