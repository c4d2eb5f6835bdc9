/* The Keras MNIST CNN, in C:
 *
 *   model = Sequential()
 *   model.add(Conv2D(32, (3, 3), activation='relu', input_shape=(28, 28, 1)))
 *   model.add(MaxPooling2D((2, 2)))
 *   model.add(Flatten())
 *   model.add(Dense(10, activation='softmax'))
 *   model.compile(optimizer='adam', loss='sparse_categorical_crossentropy', metrics=['accuracy'])
 *   model.fit(x_train, y_train, epochs=10, batch_size=32)
 *   loss, accuracy = model.evaluate(x_test, y_test)
 *
 * Usage: mnist_cnn [DATA_DIR] [EPOCHS]   (DATA_DIR defaults to $MEDIAML_DATA/mnist or
 * ../shared/data/mnist) */
#include <mediaml.h>

#include <stdio.h>
#include <stdlib.h>

static int report(const mm_progress *p, void *user) {
    (void)user;
    if (p->epoch_end)
        printf("epoch %d/%d - %.1fs - loss: %.4f - accuracy: %.4f\n", p->epoch, p->epochs, p->seconds,
               p->loss, p->accuracy);
    return 0;
}

#define TRY(call)                                                          \
    do {                                                                   \
        if ((call) != MM_OK) {                                             \
            fprintf(stderr, "mnist_cnn: %s\n", mm_errmsg());               \
            return 1;                                                      \
        }                                                                  \
    } while (0)

int main(int argc, char **argv) {
    char dir[4096];
    const char *env = getenv("MEDIAML_DATA");
    if (argc > 1) snprintf(dir, sizeof dir, "%s", argv[1]);
    else snprintf(dir, sizeof dir, "%s/mnist", env && *env ? env : "../shared/data");
    int epochs = argc > 2 ? atoi(argv[2]) : 10;

    mm_dataset train, test;
    TRY(mm_idx_load_dataset(dir, "train", 0, &train));
    TRY(mm_idx_load_dataset(dir, "test", 0, &test));

    mm_model *model = mm_sequential();
    TRY(mm_add(model, mm_Conv2D(.filters = 32, .kernel_size = {3, 3}, .activation = "relu",
                                .input_shape = {28, 28, 1})));
    TRY(mm_add(model, mm_MaxPooling2D(.pool_size = {2, 2})));
    TRY(mm_add(model, mm_Flatten()));
    TRY(mm_add(model, mm_Dense(.units = 10, .activation = "softmax")));
    TRY(mm_compile(model, .optimizer = "adam", .loss = "sparse_categorical_crossentropy",
                   .metrics = "accuracy"));
    mm_preprocess scale = mm_preprocess_rescale(1.0f / 255.0f); /* x_train / 255.0 */
    mm_model_set_preprocess(model, &scale);

    char table[4096];
    mm_summary(model, table, sizeof table, NULL);
    fputs(table, stdout);

    TRY(mm_fit(model, &train, .epochs = epochs, .batch_size = 32, .callback = report));
    mm_eval_result r;
    TRY(mm_evaluate(model, &test, 32, 1, &r));
    printf("test loss: %.4f - test accuracy: %.4f\n", r.loss, r.accuracy);

    mm_eval_result_free(&r);
    mm_model_free(model);
    mm_dataset_free(&train);
    mm_dataset_free(&test);
    return 0;
}
