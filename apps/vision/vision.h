/* The vision app: image classification on IDX data sets (MNIST, Fashion-MNIST) with the
 * public mediaml API only. Train, evaluate and predict are plain functions, usable without
 * the command-line tool; they report failures through mm_error/mm_errmsg like the library. */
#ifndef MEDIAML_APP_VISION_H
#define MEDIAML_APP_VISION_H

#include <mediaml.h>

#include <stddef.h>
#include <stdint.h>

/* Default data directory: $MEDIAML_DATA/mnist, else ../shared/data/mnist. Returns buf. */
const char *vision_default_data_dir(char *buf, size_t n);

/* 1 if the directory name says Fashion-MNIST ("fashion", any case). */
int vision_is_fashion_dir(const char *dir);

/* The Keras MNIST example for h x w x c images and num_classes classes:
 * Conv2D(32, 3x3, relu) -> MaxPooling2D(2x2) -> Flatten -> Dense(num_classes, softmax).
 * The model is not compiled. */
mm_status vision_default_model(int h, int w, int c, int num_classes, mm_model **out);

/* Builds a model from an architecture JSON file (the form model files carry, see
 * mm_model_to_json). The model is not compiled. */
mm_status vision_model_from_arch_file(const char *path, mm_model **out);

/* Checks that a model takes h x w x c images and has a flat output with at least
 * num_classes units; `what` names the model in the message (a file name, "the model"). */
mm_status vision_check_model(const mm_model *m, int h, int w, int c, int num_classes, const char *what);

/* Class labels for a data directory: the 10 Fashion-MNIST names when the directory is
 * Fashion-MNIST and n == 10, else "0".."n-1". */
mm_status vision_set_default_labels(mm_model *m, const char *data_dir, int n);

/* Label of class i: the model's label, else its index written into buf. */
const char *vision_label(const mm_model *m, int i, char *buf, size_t n);

/* mm_evaluate; a model without training config (evaluate says MM_ERR_STATE) is compiled
 * with sparse_categorical_crossentropy first. */
mm_status vision_evaluate(mm_model *m, const mm_dataset *d, int batch_size, int top_k, mm_eval_result *r);

/* ------------------------------------------------------------------ train */

typedef struct vision_train_report vision_train_report;

typedef struct vision_train_config {
    const char *data_dir;     /* IDX directory (required) */
    const char *out_path;     /* model file, also rewritten after each epoch (required) */
    const char *arch_path;    /* architecture JSON, NULL = vision_default_model */
    int epochs;               /* total epochs (default 1) */
    int batch_size;           /* default 32 */
    float validation_split;   /* last fraction of the training data, as Keras */
    const char *optimizer;    /* NULL = "adam" */
    float learning_rate;      /* 0 = optimizer default */
    float momentum;           /* sgd, rmsprop */
    uint64_t seed;            /* weight init and shuffling */
    long limit;               /* > 0: first limit examples of each split */
    int resume;               /* continue from out_path when it exists */
    int early_stopping;       /* patience in epochs, 0 = off */
    mm_progress_fn callback;  /* per batch and per epoch (see mm_fit); non-zero stops */
    void *user;
    /* Called once the data and model are ready, before the first epoch. */
    void (*on_start)(const vision_train_report *r, void *user);
} vision_train_config;

struct vision_train_report {
    long train_count, val_count, test_count;
    int height, width, channels, num_classes;
    long params;
    int resumed;              /* the model came from out_path */
    int initial_epoch;        /* epochs already done before this run */
    int epochs_done;          /* epochs done after this run */
    int stopped;              /* the callback stopped training: no final save, no test */
    mm_eval_result test;      /* test-split evaluation (free with mm_eval_result_free) */
};

/* Loads the data, builds (or, with resume, loads) the model, fits it with a checkpoint
 * (weights and optimizer state) after every epoch, saves it and evaluates it on the test
 * split. */
mm_status vision_train(const vision_train_config *c, vision_train_report *r);

/* ------------------------------------------------------------------ eval */

/* Loads a model file and evaluates it on the test split of data_dir (limit > 0: first
 * limit examples). *model receives the loaded model (caller frees), also on failure
 * after loading (else NULL). */
mm_status vision_eval(const char *model_path, const char *data_dir, long limit, int batch_size, int top_k,
                      mm_model **model, mm_eval_result *r);

/* ------------------------------------------------------------------ predict */

/* Reads a PNG with the model's input channels (1 or 3), checks its size against the model
 * input and runs the model. Fills the k best classes (highest first) and their outputs
 * (probabilities for a softmax model); *n receives how many were filled (<= k). */
mm_status vision_predict_png(mm_model *m, const char *path, int k, int *classes, float *scores, int *n);

#endif
