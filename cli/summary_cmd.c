/* mediaml summary FILE: a model file's layers and parameters (mm_summary), preprocessing,
 * labels and training progress. */
#include "commands.h"

#include <mediaml.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#define SUMMARY_BYTES (1 << 20)

static void print_extras(const mm_model *m) {
    mm_preprocess p = mm_model_get_preprocess(m);
    printf("Preprocessing: x' = (x * %.9g - %.9g) / %.9g", p.scale, p.mean, p.std);
    if (p.mean == 0 && p.std == 1 && fabsf(p.scale * 255.0f - 1.0f) < 1e-6f) printf("  (rescale 1/255)");
    else if (p.mean == 0 && p.std == 1 && p.scale == 1) printf("  (identity)");
    putchar('\n');
    int n = 0;
    while (mm_model_label(m, n)) n++;
    if (n == 0) {
        printf("Labels: none (classes are shown by index)\n");
    } else {
        printf("Labels (%d):", n);
        for (int i = 0; i < n; i++) printf("%s %s", i ? "," : "", mm_model_label(m, i));
        putchar('\n');
    }
    int e = mm_model_epochs_done(m);
    printf("Trained: %d epoch%s, %ld steps\n", e, e == 1 ? "" : "s", mm_model_step(m));
}

int cmd_summary(int argc, char **argv) {
    cli_opt opts[] = {{NULL, 0, NULL, NULL, NULL, 0}};
    cli_cmd c = {"summary", "FILE", "Shows a model file's layers, output shapes and parameter counts, its preprocessing, class\n"
                                    "labels and how long it has been trained.",
                 opts, NULL};
    char *pos[1];
    int npos, rc = cli_parse(&c, argc, argv, pos, 1, &npos);
    if (rc) return rc == CLI_HELP ? 0 : rc;
    if (npos != 1) return cli_usage_error(&c, "expected one model FILE");
    mm_model *m;
    if (mm_model_load(pos[0], &m)) return cli_library_error();
    char *buf = malloc(SUMMARY_BYTES);
    if (!buf) {
        mm_model_free(m);
        fputs("mediaml: out of memory\n", stderr);
        return EXIT_LIBRARY;
    }
    mm_status st = mm_summary(m, buf, SUMMARY_BYTES, NULL);
    if (!st) {
        fputs(buf, stdout);
        print_extras(m);
    }
    free(buf);
    mm_model_free(m);
    return st ? cli_library_error() : 0;
}
