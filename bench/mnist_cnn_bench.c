/* Side-by-side benchmark, mediaml half: the Keras MNIST CNN
 *
 *   Conv2D(32, 3x3, relu, input 28x28x1) -> MaxPooling2D(2x2) -> Flatten -> Dense(10, softmax)
 *   Adam(lr 1e-3, beta 0.9/0.999, eps 1e-7), sparse categorical cross-entropy, batch 32,
 *   inputs scaled by 1/255, glorot-uniform kernels and zero biases, shuffled each epoch.
 *
 * Measures training images/s (wall time of mm_fit alone), inference images/s on the test set
 * (mm_predict, batch 32, median of --predict-repeats runs), peak RSS (getrusage ru_maxrss) and
 * test accuracy, and prints them as one JSON line. bench/mnist_cnn_torch.py is the PyTorch
 * half; bench/run.sh builds this file against BUILD/libmediaml.a and runs both.
 *
 * Usage: mnist_cnn_bench [--data DIR] [--images N] [--epochs E] [--batch B] [--threads T]
 *                        [--seed S] [--predict-repeats R]
 *   --images N   train on the first N training images (default 60000 = one epoch)
 *   --threads T  mm_set_threads(T); default: MEDIAML_THREADS, else the core count
 *   DIR defaults to $MEDIAML_DATA/mnist, else ../shared/data/mnist. */
#define _POSIX_C_SOURCE 200809L
#include <mediaml.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#define TRY(call)                                                              \
    do {                                                                       \
        mm_status st_ = (call);                                                \
        if (st_ != MM_OK) {                                                    \
            fprintf(stderr, "mnist_cnn_bench: %s: %s\n", #call, mm_errmsg());  \
            return 1;                                                          \
        }                                                                      \
    } while (0)

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double last_loss, last_acc;

static int on_progress(const mm_progress *p, void *user) {
    (void)user;
    if (p->epoch_end) {
        last_loss = p->loss;
        last_acc = p->accuracy;
    }
    return 0;
}

static void usage(void) {
    fprintf(stderr, "usage: mnist_cnn_bench [--data DIR] [--images N] [--epochs E] [--batch B] "
                    "[--threads T] [--seed S] [--predict-repeats R]\n");
}

int main(int argc, char **argv) {
    char dir[4096];
    const char *env = getenv("MEDIAML_DATA");
    snprintf(dir, sizeof dir, "%s/mnist", env && *env ? env : "../shared/data");
    long images = 60000;
    int epochs = 1, batch = 32, threads = 0, repeats = 3;
    unsigned long long seed = 0;

    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage();
            return 0;
        }
        if (!v) {
            usage();
            return 2;
        }
        if (!strcmp(a, "--data")) snprintf(dir, sizeof dir, "%s", v);
        else if (!strcmp(a, "--images")) images = atol(v);
        else if (!strcmp(a, "--epochs")) epochs = atoi(v);
        else if (!strcmp(a, "--batch")) batch = atoi(v);
        else if (!strcmp(a, "--threads")) threads = atoi(v);
        else if (!strcmp(a, "--seed")) seed = strtoull(v, NULL, 10);
        else if (!strcmp(a, "--predict-repeats")) repeats = atoi(v);
        else {
            usage();
            return 2;
        }
        i++;
    }
    if (images <= 0 || epochs <= 0 || batch <= 0 || repeats <= 0) {
        usage();
        return 2;
    }
    if (repeats > 64) repeats = 64;
    mm_set_threads(threads); /* 0: MEDIAML_THREADS, else the core count */

    mm_dataset train, test;
    TRY(mm_idx_load_dataset(dir, "train", images, &train));
    TRY(mm_idx_load_dataset(dir, "test", 0, &test));
    long n_train = train.x.shape[0], n_test = test.x.shape[0];

    mm_model *model = mm_sequential();
    TRY(mm_add(model, mm_Conv2D(.filters = 32, .kernel_size = {3, 3}, .activation = "relu",
                                .input_shape = {28, 28, 1})));
    TRY(mm_add(model, mm_MaxPooling2D(.pool_size = {2, 2})));
    TRY(mm_add(model, mm_Flatten()));
    TRY(mm_add(model, mm_Dense(.units = 10, .activation = "softmax")));
    TRY(mm_model_init_weights(model, seed)); /* glorot uniform kernels, zero biases */
    TRY(mm_compile(model, .optimizer = "adam", .loss = "sparse_categorical_crossentropy",
                   .metrics = "accuracy", .learning_rate = 1e-3f, .beta_1 = 0.9f,
                   .beta_2 = 0.999f, .epsilon = 1e-7f));
    mm_preprocess scale = mm_preprocess_rescale(1.0f / 255.0f);
    mm_model_set_preprocess(model, &scale);

    double t0 = now();
    TRY(mm_fit(model, &train, .epochs = epochs, .batch_size = batch, .seed = seed,
               .callback = on_progress));
    double train_s = now() - t0;

    double infer_s[64];
    mm_array probs = {0};
    for (int r = 0; r < repeats; r++) {
        if (probs.data) mm_array_free(&probs);
        double t1 = now();
        TRY(mm_predict(model, &test.x, batch, &probs));
        infer_s[r] = now() - t1;
    }
    long correct = 0;
    int k = probs.shape[1];
    for (long i = 0; i < n_test; i++) {
        const float *p = probs.data + (size_t)i * (size_t)k;
        int best = 0;
        for (int c = 1; c < k; c++)
            if (p[c] > p[best]) best = c;
        if (best == (int)test.y.data[i]) correct++;
    }
    double sorted[64];
    memcpy(sorted, infer_s, sizeof(double) * (size_t)repeats);
    qsort(sorted, (size_t)repeats, sizeof(double), cmp_double);
    double infer_med = sorted[repeats / 2];

    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    double rss_mib = (double)ru.ru_maxrss / 1024.0; /* ru_maxrss is in KiB on Linux */
    double cpu_s = (double)ru.ru_utime.tv_sec + 1e-6 * (double)ru.ru_utime.tv_usec +
                   (double)ru.ru_stime.tv_sec + 1e-6 * (double)ru.ru_stime.tv_usec;

    printf("{\"impl\":\"mediaml\",\"config\":\"threads=%d\",\"threads\":%d,"
           "\"train_images\":%ld,\"epochs\":%d,\"batch\":%d,\"train_seconds\":%.4f,"
           "\"train_img_s\":%.1f,\"infer_images\":%ld,\"infer_seconds\":[",
           mm_get_threads(), mm_get_threads(), n_train * epochs, epochs, batch, train_s,
           (double)(n_train * epochs) / train_s, n_test);
    for (int r = 0; r < repeats; r++) printf("%s%.4f", r ? "," : "", infer_s[r]);
    printf("],\"infer_img_s\":%.1f,\"peak_rss_mib\":%.1f,\"train_loss\":%.4f,"
           "\"train_accuracy\":%.4f,\"test_accuracy\":%.4f,\"cpu_seconds\":%.3f}\n",
           (double)n_test / infer_med, rss_mib, last_loss, last_acc,
           (double)correct / (double)n_test, cpu_s);

    mm_array_free(&probs);
    mm_model_free(model);
    mm_dataset_free(&train);
    mm_dataset_free(&test);
    return 0;
}
