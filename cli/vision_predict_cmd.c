/* mediaml vision predict: the top classes of PNG images under a model. */
#include "commands.h"
#include "json.h"
#include "vision/vision.h"

#include <stdio.h>
#include <stdlib.h>

static void print_result(const mm_model *m, const char *path, const int *cls, const float *score, int n, int json) {
    char buf[32];
    if (json) {
        fputs("{\"image\":", stdout);
        json_string(stdout, path);
        fputs(",\"predictions\":[", stdout);
        for (int i = 0; i < n; i++) {
            printf("%s{\"class\":%d,\"label\":", i ? "," : "", cls[i]);
            json_string(stdout, vision_label(m, cls[i], buf, sizeof buf));
            json_field_number(stdout, "probability", score[i]);
            putchar('}');
        }
        fputs("]}\n", stdout);
    } else {
        printf("%s:", path);
        for (int i = 0; i < n; i++) printf("%s %s (%.4f)", i ? "," : "", vision_label(m, cls[i], buf, sizeof buf), score[i]);
        putchar('\n');
    }
    fflush(stdout);
}

int cmd_vision_predict(int argc, char **argv) {
    const char *model_path = NULL;
    int top = 3, threads = 0, json = 0;
    cli_opt opts[] = {
        {"--model", OPT_STR, &model_path, "FILE", "model file (required)", 0},
        {"--top", OPT_INT, &top, "K", "show the K most likely classes (default 3)", 0},
        {"--threads", OPT_INT, &threads, "T", "kernel threads (default $MEDIAML_THREADS, else the core count)", 0},
        {"--json", OPT_BOOL, &json, NULL, "one JSON object per image", 0},
        {NULL, 0, NULL, NULL, NULL, 0}};
    cli_cmd c = {"vision predict", "--model FILE [OPTIONS] IMAGE.png...",
                 "Classifies PNG images (read as gray or RGB to match the model, same size as its input) with the\n"
                 "preprocessing stored in the model file, and prints the most likely classes of each.",
                 opts, "Images that cannot be classified are reported on stderr; the others are still printed.\n"};
    char **images = malloc((size_t)argc * sizeof *images);
    if (!images) {
        fputs("mediaml: out of memory\n", stderr);
        return EXIT_LIBRARY;
    }
    int n_images, rc = cli_parse(&c, argc, argv, images, argc, &n_images);
    if (!rc && !model_path) rc = cli_usage_error(&c, "--model FILE is required");
    if (!rc && n_images == 0) rc = cli_usage_error(&c, "no images given");
    if (!rc && top < 1) rc = cli_usage_error(&c, "--top must be at least 1, got %d", top);
    if (!rc) rc = cli_apply_threads(&c, "--threads", threads);
    if (rc) {
        free(images);
        return rc == CLI_HELP ? 0 : rc;
    }

    mm_model *m;
    int *cls = malloc((size_t)top * sizeof *cls);
    float *score = malloc((size_t)top * sizeof *score);
    if (!cls || !score) {
        free(images), free(cls), free(score);
        fputs("mediaml: out of memory\n", stderr);
        return EXIT_LIBRARY;
    }
    if (mm_model_load(model_path, &m)) {
        rc = cli_library_error();
    } else {
        for (int i = 0; i < n_images; i++) {
            int n;
            if (vision_predict_png(m, images[i], top, cls, score, &n)) rc = cli_library_error();
            else print_result(m, images[i], cls, score, n, json);
        }
        mm_model_free(m);
    }
    free(images), free(cls), free(score);
    return rc;
}
