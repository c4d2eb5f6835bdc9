/* The vision app's models: the default architecture from the data's shape, architecture
 * files, checks that a model fits the data, class labels. */
#include "vision/vision.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ARCH_MAX_BYTES (16L << 20)

static const char *const fashion_labels[10] = {"T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                                               "Sandal",      "Shirt",   "Sneaker",  "Bag",   "Ankle boot"};

const char *vision_default_data_dir(char *buf, size_t n) {
    const char *env = getenv("MEDIAML_DATA");
    snprintf(buf, n, "%s/mnist", env && *env ? env : "../shared/data");
    return buf;
}

int vision_is_fashion_dir(const char *dir) {
    static const char needle[] = "fashion";
    size_t len = sizeof needle - 1;
    for (const char *p = dir; p && *p; p++) {
        size_t i = 0;
        while (i < len && p[i] && tolower((unsigned char)p[i]) == needle[i]) i++;
        if (i == len) return 1;
    }
    return 0;
}

mm_status vision_default_model(int h, int w, int c, int num_classes, mm_model **out) {
    *out = NULL;
    if (h < 4 || w < 4 || c < 1)
        return mm_error(MM_ERR_SHAPE, "the default model needs images of at least 4x4 pixels, got %dx%dx%d", h, w, c);
    if (num_classes < 2) return mm_error(MM_ERR_ARG, "the data has %d class(es), a classifier needs at least 2", num_classes);
    mm_model *m = mm_sequential();
    if (!m) return mm_error(MM_ERR_NOMEM, "out of memory");
    mm_status st = mm_add(m, mm_Conv2D(.filters = 32, .kernel_size = {3, 3}, .activation = "relu", .input_shape = {h, w, c}));
    if (!st) st = mm_add(m, mm_MaxPooling2D(.pool_size = {2, 2}));
    if (!st) st = mm_add(m, mm_Flatten());
    if (!st) st = mm_add(m, mm_Dense(.units = num_classes, .activation = "softmax"));
    if (st) {
        mm_model_free(m);
        return st;
    }
    *out = m;
    return MM_OK;
}

mm_status vision_model_from_arch_file(const char *path, mm_model **out) {
    *out = NULL;
    FILE *f = fopen(path, "rb");
    if (!f) return mm_error(MM_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    char *buf = NULL;
    long len = -1;
    if (fseek(f, 0, SEEK_END) == 0) len = ftell(f);
    if (len < 0 || fseek(f, 0, SEEK_SET) != 0) {
        fclose(f);
        return mm_error(MM_ERR_IO, "%s: cannot read (not a regular file?)", path);
    }
    if (len > ARCH_MAX_BYTES) {
        fclose(f);
        return mm_error(MM_ERR_FORMAT, "%s: %ld bytes is too large for an architecture file", path, len);
    }
    buf = malloc((size_t)len + 1);
    if (!buf) {
        fclose(f);
        return mm_error(MM_ERR_NOMEM, "out of memory");
    }
    size_t got = fread(buf, 1, (size_t)len, f);
    int err = ferror(f);
    fclose(f);
    if (err || got != (size_t)len) {
        free(buf);
        return mm_error(MM_ERR_IO, "%s: read failed", path);
    }
    buf[len] = 0;
    mm_status st = mm_model_from_json(buf, out);
    free(buf);
    if (st) {
        char msg[1024];
        snprintf(msg, sizeof msg, "%s", mm_errmsg());
        return mm_error(st, "%s: %s", path, msg);
    }
    return MM_OK;
}

static void shape_text(char *buf, size_t n, int nd, const int *s) {
    size_t o = 0;
    buf[0] = 0;
    for (int i = 0; i < nd && o < n; i++) o += (size_t)snprintf(buf + o, n - o, i ? "x%d" : "%d", s[i]);
}

mm_status vision_check_model(const mm_model *m, int h, int w, int c, int num_classes, const char *what) {
    int in[MM_MAX_DIMS], out[MM_MAX_DIMS];
    int nd = mm_model_input_shape(m, in), od = mm_model_output_shape(m, out);
    char a[64];
    if (nd != 3 || in[0] != h || in[1] != w || in[2] != c) {
        shape_text(a, sizeof a, nd, in);
        return mm_error(MM_ERR_SHAPE, "%s takes input of shape %s but the images are %dx%dx%d", what, a, h, w, c);
    }
    if (od != 1) {
        shape_text(a, sizeof a, od, out);
        return mm_error(MM_ERR_SHAPE, "%s outputs shape %s, a classifier needs one score per class (end with Flatten and Dense)",
                        what, a);
    }
    if (out[0] < num_classes)
        return mm_error(MM_ERR_SHAPE, "%s has %d output unit%s but the data has %d classes", what, out[0],
                        out[0] == 1 ? "" : "s", num_classes);
    return MM_OK;
}

mm_status vision_set_default_labels(mm_model *m, const char *data_dir, int n) {
    if (n == 10 && vision_is_fashion_dir(data_dir)) return mm_model_set_labels(m, 10, fashion_labels);
    if (n <= 0) return MM_OK;
    char **names = calloc((size_t)n, sizeof *names);
    char *text = malloc((size_t)n * 12);
    if (!names || !text) {
        free(names), free(text);
        return mm_error(MM_ERR_NOMEM, "out of memory");
    }
    for (int i = 0; i < n; i++) {
        names[i] = text + (size_t)i * 12;
        snprintf(names[i], 12, "%d", i);
    }
    mm_status st = mm_model_set_labels(m, n, (const char *const *)names);
    free(names), free(text);
    return st;
}

const char *vision_label(const mm_model *m, int i, char *buf, size_t n) {
    const char *l = mm_model_label(m, i);
    if (l && *l) return l;
    snprintf(buf, n, "%d", i);
    return buf;
}

mm_status vision_evaluate(mm_model *m, const mm_dataset *d, int batch_size, int top_k, mm_eval_result *r) {
    mm_status st = mm_evaluate(m, d, batch_size, top_k, r);
    if (st == MM_ERR_STATE) {
        mm_eval_result_free(r);
        st = mm_compile(m, .loss = "sparse_categorical_crossentropy", .metrics = "accuracy");
        if (!st) st = mm_evaluate(m, d, batch_size, top_k, r);
    }
    if (st) mm_eval_result_free(r);
    return st;
}
