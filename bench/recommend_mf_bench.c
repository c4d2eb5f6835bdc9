/* Side-by-side benchmark, mediaml half: biased matrix factorization (the model of
 * tests/test_functional.c) on explicit ratings.
 *
 *   x = (user, item) -> Slice -> Embedding P[users, K] (l2 per lookup), Q[items, K] (l2 per
 *   lookup), bu[users, 1], bi[items, 1] (uniform(-0.05, 0.05), Keras's Embedding init)
 *   -> Dot(P[u], Q[i]) + bu[u] + bi[i] -> Dense(1) ("global bias": glorot kernel, zero bias)
 *   loss = MSE + l2 * (|P[u]|^2 + |Q[i]|^2) summed over the batch's lookups;
 *   Adam(lr 1e-3, beta 0.9/0.999, eps 1e-7), batch 256, shuffled each epoch. The embedding
 *   tables get mediaml's sparse row updates (lazy Adam over the rows a step looked up).
 *
 * MovieLens mode (default): trains on ml-100k u1.base for --epochs epochs (default 10) and
 * reports training interactions/s (wall time of mm_fit alone), peak RSS (getrusage
 * ru_maxrss), RSS just before fit (/proc/self/statm) and the test RMSE on u1.test (mm_predict,
 * then rec_rmse), as one JSON line.
 *
 * Synthetic mode (--synthetic N): N interactions from rec_synthetic (users = N / 100,
 * items = N / 500, each at least 1000; Zipf(1) item popularity), --epochs epochs (default 1);
 * reports training interactions/s and peak RSS (no test set).
 *
 * bench/recommend_mf_torch.py is the PyTorch half; bench/recommend.sh builds this file
 * against BUILD/libmediaml.a and runs both.
 *
 * Usage: recommend_mf_bench [--data DIR] [--synthetic N] [--epochs E] [--batch B]
 *                           [--factors K] [--l2 L] [--threads T] [--seed S]
 *   DIR (holding u.data, u1.base, u1.test) defaults to $MEDIAML_DATA/movielens-100k, else
 *   ../shared/data/movielens-100k.
 *   --threads T  mm_set_threads(T); default: MEDIAML_THREADS, else the core count */
#define _POSIX_C_SOURCE 200809L
#include <mediaml.h>

#include "recommend/recommend.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#define TRY(call)                                                                 \
    do {                                                                          \
        mm_status st_ = (call);                                                   \
        if (st_ != MM_OK) {                                                       \
            fprintf(stderr, "recommend_mf_bench: %s: %s\n", #call, mm_errmsg());  \
            return 1;                                                             \
        }                                                                         \
    } while (0)

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* Current resident set size in MiB (/proc/self/statm), 0 if unreadable. */
static double rss_now_mib(void) {
    FILE *f = fopen("/proc/self/statm", "r");
    long pages = 0, resident = 0;
    if (!f) return 0;
    if (fscanf(f, "%ld %ld", &pages, &resident) != 2) resident = 0;
    fclose(f);
    return (double)resident * (double)sysconf(_SC_PAGESIZE) / (1024.0 * 1024.0);
}

/* User + system CPU seconds of this process so far (all threads). */
static double cpu_now(void) {
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + 1e-6 * (double)ru.ru_utime.tv_usec + (double)ru.ru_stime.tv_sec +
           1e-6 * (double)ru.ru_stime.tv_usec;
}

static double last_loss;

static int on_progress(const mm_progress *p, void *user) {
    (void)user;
    if (p->epoch_end) last_loss = p->loss;
    return 0;
}

/* Interactions -> x [n, 2] (dense user, item ids as floats), y [n, 1] (ratings). */
static mm_status to_dataset(const rec_interactions *d, mm_dataset *out) {
    memset(out, 0, sizeof *out);
    int xs[2] = {(int)d->n, 2}, ys[2] = {(int)d->n, 1};
    mm_status st = mm_array_alloc(&out->x, 2, xs);
    if (st == MM_OK) st = mm_array_alloc(&out->y, 2, ys);
    if (st != MM_OK) {
        mm_dataset_free(out);
        return st;
    }
    for (size_t i = 0; i < d->n; i++) {
        out->x.data[2 * i] = (float)d->user[i];
        out->x.data[2 * i + 1] = (float)d->item[i];
        out->y.data[i] = d->rating[i];
    }
    return MM_OK;
}

/* Biased MF as a functional model, as tests/test_functional.c builds it. */
static mm_model *biased_mf(int users, int items, int dim, float l2) {
    mm_model *m = mm_functional("biased_mf");
    int x = mm_input(m, 1, (int[]){2});
    int u = mm_call(m, mm_Slice(.begin = 0, .size = 1, .name = "user"), x);
    int i = mm_call(m, mm_Slice(.begin = 1, .size = 1, .name = "item"), x);
    int pu = mm_call(m, mm_Embedding(.input_dim = users, .output_dim = dim, .l2 = l2, .name = "p"), u);
    int qi = mm_call(m, mm_Embedding(.input_dim = items, .output_dim = dim, .l2 = l2, .name = "q"), i);
    int bu = mm_call(m, mm_Embedding(.input_dim = users, .output_dim = 1, .name = "bu"), u);
    int bi = mm_call(m, mm_Embedding(.input_dim = items, .output_dim = 1, .name = "bi"), i);
    int pf = mm_call(m, mm_Flatten(), pu);
    int qf = mm_call(m, mm_Flatten(), qi);
    int dot = mm_call(m, mm_Dot(), pf, qf);
    int buf = mm_call(m, mm_Flatten(), bu);
    int bif = mm_call(m, mm_Flatten(), bi);
    int sum = mm_call(m, mm_Add(), dot, buf, bif);
    int out = mm_call(m, mm_Dense(.units = 1, .name = "global_bias"), sum);
    if (out < 0) {
        fprintf(stderr, "recommend_mf_bench: building the model: %s\n", mm_errmsg());
        mm_model_free(m);
        return NULL;
    }
    return m;
}

static void usage(void) {
    fprintf(stderr, "usage: recommend_mf_bench [--data DIR] [--synthetic N] [--epochs E] [--batch B] "
                    "[--factors K] [--l2 L] [--threads T] [--seed S]\n");
}

int main(int argc, char **argv) {
    char dir[4096];
    rec_default_data_dir(dir, sizeof dir);
    long synthetic = 0;
    int epochs = 0, batch = 256, factors = 64, threads = 0;
    float l2 = 1e-4f;
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
        else if (!strcmp(a, "--synthetic")) synthetic = (long)strtod(v, NULL); /* accepts 1e6 */
        else if (!strcmp(a, "--epochs")) epochs = atoi(v);
        else if (!strcmp(a, "--batch")) batch = atoi(v);
        else if (!strcmp(a, "--factors")) factors = atoi(v);
        else if (!strcmp(a, "--l2")) l2 = strtof(v, NULL);
        else if (!strcmp(a, "--threads")) threads = atoi(v);
        else if (!strcmp(a, "--seed")) seed = strtoull(v, NULL, 10);
        else {
            usage();
            return 2;
        }
        i++;
    }
    if (epochs == 0) epochs = synthetic ? 1 : 10;
    if (synthetic < 0 || synthetic > 2000000000L || epochs <= 0 || batch <= 0 || factors <= 0 || !(l2 >= 0)) {
        usage();
        return 2;
    }
    mm_set_threads(threads); /* 0: MEDIAML_THREADS, else the core count */

    mm_dataset train = {0}, test = {0};
    int users, items;
    double t_load = now();
    if (synthetic) {
        rec_synthetic_config cfg = {.users = (int)(synthetic / 100 > 1000 ? synthetic / 100 : 1000),
                                    .items = (int)(synthetic / 500 > 1000 ? synthetic / 500 : 1000),
                                    .interactions = (size_t)synthetic, .seed = seed, .zipf_s = 1.0};
        rec_interactions all;
        TRY(rec_synthetic(&cfg, &all));
        users = rec_num_users(&all);
        items = rec_num_items(&all);
        mm_status st = to_dataset(&all, &train);
        rec_interactions_free(&all); /* only the mm_dataset (12 bytes / interaction) lives on */
        TRY(st);
    } else {
        char path[4200], ratings[4200];
        rec_interactions ref, base, tst;
        TRY(rec_find_ratings_file(dir, ratings, sizeof ratings));
        TRY(rec_load_interactions(ratings, NULL, &ref)); /* u.data: the id index for both splits */
        snprintf(path, sizeof path, "%s/u1.base", dir);
        TRY(rec_load_split(path, &ref, &base));
        snprintf(path, sizeof path, "%s/u1.test", dir);
        TRY(rec_load_split(path, &ref, &tst));
        users = rec_num_users(&ref);
        items = rec_num_items(&ref);
        TRY(to_dataset(&base, &train));
        TRY(to_dataset(&tst, &test));
        rec_interactions_free(&ref);
        rec_interactions_free(&base);
        rec_interactions_free(&tst);
    }
    t_load = now() - t_load;
    long n_train = train.x.shape[0];

    mm_model *model = biased_mf(users, items, factors, l2);
    if (!model) return 1;
    TRY(mm_model_init_weights(model, seed)); /* uniform(-0.05, 0.05) tables, glorot Dense kernel */
    TRY(mm_compile(model, .optimizer = "adam", .loss = "mse", .metrics = "none", .learning_rate = 1e-3f,
                   .beta_1 = 0.9f, .beta_2 = 0.999f, .epsilon = 1e-7f));
    long params = mm_count_params(model);
    double rss_before = rss_now_mib();

    double t0 = now(), c0 = cpu_now();
    TRY(mm_fit(model, &train, .epochs = epochs, .batch_size = batch, .seed = seed, .callback = on_progress));
    double train_s = now() - t0, train_cpu = cpu_now() - c0;

    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru); /* peak of training (prediction below allocates more) */
    double rss_mib = (double)ru.ru_maxrss / 1024.0; /* KiB on Linux */
    double cpu_s = (double)ru.ru_utime.tv_sec + 1e-6 * (double)ru.ru_utime.tv_usec +
                   (double)ru.ru_stime.tv_sec + 1e-6 * (double)ru.ru_stime.tv_usec;

    double rmse = NAN;
    if (!synthetic) {
        mm_array pred;
        TRY(mm_predict(model, &test.x, 1024, &pred));
        TRY(rec_rmse(pred.data, test.y.data, pred.size, &rmse));
        mm_array_free(&pred);
    }

    printf("{\"impl\":\"mediaml\",\"config\":\"threads=%d\",\"threads\":%d,\"mode\":\"%s\","
           "\"users\":%d,\"items\":%d,\"factors\":%d,\"l2\":%g,\"params\":%ld,"
           "\"train_interactions\":%ld,\"epochs\":%d,\"batch\":%d,\"load_seconds\":%.3f,"
           "\"train_seconds\":%.4f,\"train_cpu_seconds\":%.4f,\"train_int_s\":%.1f,\"rss_before_fit_mib\":%.1f,"
           "\"peak_rss_mib\":%.1f,\"train_loss\":%.4f,",
           mm_get_threads(), mm_get_threads(), synthetic ? "synthetic" : "ml-100k/u1", users, items, factors,
           (double)l2, params, n_train * epochs, epochs, batch, t_load, train_s, train_cpu,
           (double)(n_train * epochs) / train_s, rss_before, rss_mib, last_loss);
    if (synthetic) printf("\"test_rmse\":null,");
    else printf("\"test_rmse\":%.4f,", rmse);
    printf("\"cpu_seconds\":%.3f}\n", cpu_s);

    mm_model_free(model);
    mm_dataset_free(&train);
    mm_dataset_free(&test);
    return 0;
}
