/* Model API end to end: summary counts, training on a real MNIST subset (accuracy asserted),
 * bit-exact determinism, save/load round trip, exact resume from a checkpoint, and bad
 * input (shape mismatch, NaN loss, wrong data, unknown names). */
#include "testutil.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static mm_model *keras_cnn(int h, int w, int c, int classes) {
    mm_model *m = mm_sequential();
    CHECK_OK(mm_add(m, mm_Conv2D(.filters = 32, .kernel_size = {3, 3}, .activation = "relu",
                                 .input_shape = {h, w, c})));
    CHECK_OK(mm_add(m, mm_MaxPooling2D(.pool_size = {2, 2})));
    CHECK_OK(mm_add(m, mm_Flatten()));
    CHECK_OK(mm_add(m, mm_Dense(.units = classes, .activation = "softmax")));
    return m;
}

static int record_losses(const mm_progress *p, void *user) {
    double *losses = user;
    if (!p->epoch_end && p->batch <= 64) losses[p->batch - 1] = p->loss;
    return 0;
}

static void test_summary(void) {
    mm_model *m = keras_cnn(28, 28, 1, 10);
    char buf[4096];
    long params = 0;
    CHECK_OK(mm_summary(m, buf, sizeof buf, &params));
    CHECK(params == 54410, "params %ld", params);
    CHECK(tu_contains(buf, "(None, 26, 26, 32)") && tu_contains(buf, "320") && tu_contains(buf, "54,090") &&
              tu_contains(buf, "Total params: 54,410"),
          "summary:\n%s", buf);
    /* Architecture JSON round trip gives the same table. */
    char *json = mm_model_to_json(m);
    mm_model *m2 = NULL;
    CHECK_OK(mm_model_from_json(json, &m2));
    char buf2[4096];
    if (m2) {
        mm_summary(m2, buf2, sizeof buf2, NULL);
        CHECK(!strcmp(buf, buf2), "json round trip changed the summary");
    }
    free(json);
    mm_model_free(m2);
    mm_model_free(m);
}

static void test_bad_models(void) {
    mm_model *m = mm_sequential();
    CHECK_ERR(mm_add(m, mm_Dense(.units = 10)), MM_ERR_SHAPE, "input_shape");
    CHECK_OK(mm_add(m, mm_Dense(.units = 10, .input_shape = {5})));
    CHECK_ERR(mm_add(m, mm_Conv2D(.filters = 4, .kernel_size = {3, 3})), MM_ERR_SHAPE, "Conv2D expects");
    CHECK_ERR(mm_add(m, mm_Dense(.units = 3, .activation = "swishy")), MM_ERR_ARG, "unknown activation");
    CHECK_ERR(mm_add(m, mm_Dropout(.rate = 1.5f)), MM_ERR_ARG, "rate");
    CHECK_ERR(mm_compile(m, .optimizer = "adagrad"), MM_ERR_ARG, "unknown optimizer");
    CHECK_ERR(mm_compile(m, .loss = "hinge"), MM_ERR_ARG, "unknown loss");
    mm_model_free(m);

    m = mm_sequential();
    CHECK_ERR(mm_add(m, mm_Conv2D(.filters = 4, .kernel_size = {7, 7}, .input_shape = {5, 5, 1})), MM_ERR_SHAPE,
              "smaller");
    mm_model_free(m);

    mm_model *j = NULL;
    CHECK_ERR(mm_model_from_json("{not json", &j), MM_ERR_FORMAT, "invalid JSON");
    CHECK_ERR(mm_model_from_json("{\"class_name\":\"Sequential\",\"config\":{\"layers\":[{\"class_name\":\"Warp\"}]}}", &j),
              MM_ERR_FORMAT, "unknown layer class");
    CHECK(j == NULL, "model returned on error");
}

/* Data whose shape or labels do not fit the model, and a loss that becomes NaN. */
static void test_bad_data(void) {
    mm_model *m = keras_cnn(8, 8, 1, 3);
    CHECK_OK(mm_compile(m, .optimizer = "sgd", .learning_rate = 0.1f));
    mm_dataset d = {0};
    int xs[4] = {4, 8, 8, 1}, ys[1] = {4};
    mm_array_alloc(&d.x, 4, xs);
    mm_array_alloc(&d.y, 1, ys);
    for (size_t i = 0; i < d.x.size; i++) d.x.data[i] = (float)(i % 7);
    d.y.data[0] = 0, d.y.data[1] = 1, d.y.data[2] = 2, d.y.data[3] = 7; /* 7: not a class */
    CHECK_ERR(mm_fit(m, &d, .epochs = 1), MM_ERR_ARG, "not a class");
    d.y.data[3] = 1;
    d.x.data[5] = INFINITY; /* inf pixel -> inf - inf in the dense layer -> NaN loss */
    CHECK_ERR(mm_fit(m, &d, .epochs = 1, .batch_size = 4), MM_ERR_NUMERIC, "NaN");
    d.x.data[5] = 1;
    mm_dataset wrong = {0};
    int ws[4] = {4, 9, 8, 1};
    mm_array_alloc(&wrong.x, 4, ws);
    mm_array_alloc(&wrong.y, 1, ys);
    CHECK_ERR(mm_fit(m, &wrong, .epochs = 1), MM_ERR_SHAPE, "expects 8x8x1");
    mm_array out;
    CHECK_ERR(mm_predict(m, &wrong.x, 2, &out), MM_ERR_SHAPE, "do not match the model");
    mm_dataset_free(&wrong);
    mm_dataset_free(&d);
    mm_model_free(m);
}

/* Trains on the first 6000 MNIST images; returns the test accuracy on 2000. */
static void test_mnist_training(const char *dir) {
    char path[4096];
    snprintf(path, sizeof path, "%s/mnist", dir);
    mm_dataset train, test;
    /* Sanitizer builds run ~10x slower: a smaller subset, with a bound to match. */
    int fast = getenv("MEDIAML_FAST_TESTS") != NULL;
    long n_train = fast ? 3000 : 12000;
    double min_acc = fast ? 0.80 : 0.92;
    CHECK_OK(mm_idx_load_dataset(path, "train", n_train, &train));
    CHECK_OK(mm_idx_load_dataset(path, "test", 2000, &test));
    if (!train.x.data || !test.x.data) return;
    mm_preprocess pre = mm_preprocess_rescale(1.0f / 255.0f);

    double losses[2][64];
    float *weights[2] = {0};
    for (int run = 0; run < 2; run++) {
        mm_model *m = keras_cnn(28, 28, 1, 10);
        mm_model_set_preprocess(m, &pre);
        CHECK_OK(mm_model_init_weights(m, 7));
        CHECK_OK(mm_compile(m, .optimizer = "adam"));
        CHECK_OK(mm_fit(m, &train, .epochs = 2, .batch_size = 32, .seed = 11, .callback = record_losses,
                        .user = losses[run]));
        mm_eval_result r;
        CHECK_OK(mm_evaluate(m, &test, 64, 3, &r));
        if (run == 0) {
            printf("MNIST %ld train / 2000 test, 2 epochs: accuracy %.4f, top-3 %.4f, loss %.4f\n",
                   n_train, r.accuracy, r.top_k_accuracy, r.loss);
            CHECK(r.accuracy >= min_acc, "accuracy %.4f < %.2f", r.accuracy, min_acc);
            CHECK(r.top_k_accuracy >= r.accuracy, "top-3 below top-1");
            long diag = 0, total = 0;
            for (int i = 0; i < 10; i++)
                for (int j = 0; j < 10; j++) total += r.confusion[i * 10 + j], diag += i == j ? r.confusion[i * 10 + j] : 0;
            CHECK(total == 2000 && (double)diag / total == r.accuracy, "confusion matrix disagrees");
        }
        mm_eval_result_free(&r);
        /* predict agrees with evaluate's argmax and gives probabilities */
        mm_array probs;
        CHECK_OK(mm_predict(m, &test.x, 100, &probs));
        double sum = 0;
        for (int k = 0; k < 10; k++) sum += probs.data[k];
        CHECK(fabs(sum - 1) < 1e-4, "softmax row sums to %g", sum);
        mm_array_free(&probs);
        char file[64];
        snprintf(file, sizeof file, "/tmp/mm_test_model_%d.safetensors", (int)getpid());
        if (run == 0) {
            CHECK_OK(mm_model_save(m, file, 1));
            mm_model *loaded = NULL;
            CHECK_OK(mm_model_load(file, &loaded));
            if (loaded) {
                mm_eval_result a, b;
                CHECK_OK(mm_evaluate(m, &test, 50, 1, &a));
                CHECK_OK(mm_evaluate(loaded, &test, 50, 1, &b));
                CHECK(a.loss == b.loss && a.accuracy == b.accuracy, "loaded model differs: %g vs %g", a.loss, b.loss);
                CHECK(mm_model_epochs_done(loaded) == 2, "epochs_done %d", mm_model_epochs_done(loaded));
                mm_eval_result_free(&a);
                mm_eval_result_free(&b);
            }
            mm_model_free(loaded);
        }
        unlink(file);
        weights[run] = malloc(54410 * sizeof(float));
        mm_array wv;
        /* Weights compared through predictions on a fixed batch (public API only). */
        CHECK_OK(mm_predict(m, &test.x, 32, &wv));
        memcpy(weights[run], wv.data, 10 * 100 * sizeof(float));
        mm_array_free(&wv);
        mm_model_free(m);
    }
    CHECK(!memcmp(losses[0], losses[1], sizeof losses[0]), "same seed gave a different loss trajectory");
    CHECK(!memcmp(weights[0], weights[1], 10 * 100 * sizeof(float)), "same seed gave different weights");
    free(weights[0]);
    free(weights[1]);

    /* Resume: 1 epoch + checkpoint + load + 1 more epoch == 2 epochs straight. */
    char ck[64];
    snprintf(ck, sizeof ck, "/tmp/mm_test_ck_%d.safetensors", (int)getpid());
    mm_model *a = keras_cnn(28, 28, 1, 10);
    mm_model_set_preprocess(a, &pre);
    mm_model_init_weights(a, 3);
    CHECK_OK(mm_compile(a, .optimizer = "adam"));
    mm_dataset small = train;
    CHECK_OK(mm_fit(a, &small, .epochs = 1, .seed = 5, .checkpoint_path = ck));
    mm_model *b = NULL;
    CHECK_OK(mm_model_load(ck, &b));
    CHECK_OK(mm_fit(a, &small, .epochs = 2, .seed = 5));
    if (b) {
        CHECK(mm_model_step(b) == (n_train + 31) / 32, "resumed step %ld", mm_model_step(b));
        CHECK_OK(mm_fit(b, &small, .epochs = 2, .seed = 5));
        mm_array pa, pb;
        CHECK_OK(mm_predict(a, &test.x, 32, &pa));
        CHECK_OK(mm_predict(b, &test.x, 32, &pb));
        CHECK(pa.size == pb.size && !memcmp(pa.data, pb.data, pa.size * sizeof(float)),
              "resumed training differs from uninterrupted training");
        mm_array_free(&pa);
        mm_array_free(&pb);
    }
    unlink(ck);
    mm_model_free(a);
    mm_model_free(b);
    mm_dataset_free(&train);
    mm_dataset_free(&test);
}

/* Every layer type and optimizer trains without error and lowers the loss on a toy task. */
static void test_layers_and_optimizers(void) {
    const char *opts[] = {"sgd", "adam", "adamw", "rmsprop"};
    mm_dataset d = {0};
    int xs[4] = {64, 8, 8, 2}, ys[1] = {64};
    mm_array_alloc(&d.x, 4, xs);
    mm_array_alloc(&d.y, 1, ys);
    mm_rng rng = {99};
    for (int i = 0; i < 64; i++) {
        int cls = i % 3;
        d.y.data[i] = (float)cls;
        for (int k = 0; k < 128; k++) d.x.data[i * 128 + k] = mm_rng_uniform(&rng) + (k % 3 == cls ? 1.0f : 0.0f);
    }
    for (int o = 0; o < 4; o++) {
        mm_model *m = mm_sequential();
        CHECK_OK(mm_add(m, mm_Conv2D(.filters = 6, .kernel_size = {3, 3}, .padding = "same", .input_shape = {8, 8, 2},
                                     .kernel_regularizer = {.l2 = 1e-4f})));
        CHECK_OK(mm_add(m, mm_BatchNormalization()));
        CHECK_OK(mm_add(m, mm_Activation(.activation = "leaky_relu")));
        CHECK_OK(mm_add(m, mm_AveragePooling2D(.pool_size = {2, 2})));
        CHECK_OK(mm_add(m, mm_Conv2D(.filters = 8, .kernel_size = {3, 3}, .strides = {2, 2}, .activation = "tanh")));
        CHECK_OK(mm_add(m, mm_Flatten()));
        CHECK_OK(mm_add(m, mm_Dropout(.rate = 0.2f)));
        CHECK_OK(mm_add(m, mm_Dense(.units = 16, .activation = "gelu", .kernel_regularizer = {.l1 = 1e-5f})));
        CHECK_OK(mm_add(m, mm_Dense(.units = 3, .activation = "softmax")));
        CHECK_OK(mm_compile(m, .optimizer = opts[o], .learning_rate = o == 0 ? 0.05f : 0.01f, .momentum = o == 0 ? 0.9f : 0,
                            .global_clipnorm = 5.0f, .schedule = "cosine", .decay_steps = 100, .warmup_steps = 4));
        mm_eval_result before, after;
        CHECK_OK(mm_evaluate(m, &d, 16, 1, &before));
        CHECK_OK(mm_fit(m, &d, .epochs = 15, .batch_size = 16, .validation_split = 0.25f));
        CHECK_OK(mm_evaluate(m, &d, 16, 1, &after));
        CHECK(after.loss < before.loss, "%s: loss %g -> %g", opts[o], before.loss, after.loss);
        mm_eval_result_free(&before);
        mm_eval_result_free(&after);
        mm_model_free(m);
    }
    mm_dataset_free(&d);
}

int main(void) {
    test_summary();
    test_bad_models();
    test_bad_data();
    test_layers_and_optimizers();
    const char *dir = tu_data_dir();
    CHECK(dir != NULL, "shared data directory missing");
    if (dir) test_mnist_training(dir);
    return tu_finish();
}
