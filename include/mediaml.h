/* mediaml: a deep-learning toolkit in C11.
 *
 * This is the one public header. The API mirrors Keras where Keras has a name:
 *
 *   mm_model *m = mm_sequential();
 *   mm_add(m, mm_Conv2D(.filters = 32, .kernel_size = {3, 3}, .activation = "relu",
 *                       .input_shape = {28, 28, 1}));
 *   mm_add(m, mm_MaxPooling2D(.pool_size = {2, 2}));
 *   mm_add(m, mm_Flatten());
 *   mm_add(m, mm_Dense(.units = 10, .activation = "softmax"));
 *   mm_compile(m, .optimizer = "adam", .loss = "sparse_categorical_crossentropy");
 *   mm_fit(m, &train, .epochs = 10, .batch_size = 32);
 *
 * Errors: every fallible call returns an mm_status (MM_OK == 0); the message for the
 * last failure on the calling thread is mm_errmsg(). The library never exits or aborts
 * on bad input. */
#ifndef MEDIAML_H
#define MEDIAML_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define MM_VERSION "0.1.0"
#define MM_MAX_DIMS 6

/* ------------------------------------------------------------------ status */

typedef enum mm_status {
    MM_OK = 0,
    MM_ERR_ARG,     /* invalid argument or configuration */
    MM_ERR_NOMEM,   /* allocation failed */
    MM_ERR_IO,      /* file missing, unreadable or unwritable */
    MM_ERR_FORMAT,  /* wrong magic, truncated or malformed file */
    MM_ERR_SHAPE,   /* tensor shapes do not fit together */
    MM_ERR_NUMERIC, /* NaN or Inf met where a finite number is required */
    MM_ERR_STATE    /* call made in the wrong order (e.g. fit before compile) */
} mm_status;

/* Message of the last failure on this thread ("" if none). */
const char *mm_errmsg(void);
/* Records an error message for this thread and returns code (for apps built on the library). */
mm_status mm_error(mm_status code, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;
const char *mm_status_name(mm_status s);

/* ------------------------------------------------------------------ threads */

/* Number of threads used by the kernels. Default: MEDIAML_THREADS, else the core count. */
void mm_set_threads(int n);
int mm_get_threads(void);

/* Denormal floats (below 1.2e-38) flushed to zero, on the calling thread and the kernels'
 * threads: on by default, as TensorFlow does in its threads (torch.set_flush_denormal(True)),
 * because arithmetic on denormals is up to 100x slower on x86 and training produces them (Adam's
 * squared gradients of an embedding table late in training made NeuMF epochs 8x slower). It
 * changes results only below that magnitude. Default from MEDIAML_FLUSH_DENORMALS (0 turns it
 * off); applied when the threads are first set up, or now. Returns 1 when the CPU supports it
 * (x86 SSE, AArch64), else 0. */
int mm_set_flush_denormals(int on);
int mm_get_flush_denormals(void);

/* ------------------------------------------------------------------ matmul precision */

/* As torch.set_float32_matmul_precision. "highest" (the default): matmuls compute in float32.
 * "medium": the matmuls of Dense layers (and of everything built on them) may round their two
 * operands to bfloat16 and sum the products in float32, on CPUs with Intel AMX (several times
 * the float32 rate) or AVX512-BF16 (AMD Zen 4, Intel Cooper Lake: twice); elsewhere they stay
 * float32. Parameters, gradients, activations and every other op stay float32. The default comes from MEDIAML_MATMUL_PRECISION when it is set.
 * Errors: MM_ERR_ARG for another name. */
mm_status mm_set_matmul_precision(const char *name);
const char *mm_get_matmul_precision(void);
/* 1 when "medium" does use bfloat16 on this CPU and build, else 0. */
int mm_bf16_matmul_available(void);

/* ------------------------------------------------------------------ arrays */

/* A dense float32 N-D array owned by the caller (data sets, predictions). */
typedef struct mm_array {
    int ndim;
    int shape[MM_MAX_DIMS];
    size_t size; /* product of shape */
    float *data;
} mm_array;

mm_status mm_array_alloc(mm_array *a, int ndim, const int *shape);
void mm_array_free(mm_array *a);

/* ------------------------------------------------------------------ data */

/* An in-memory labelled data set: x is [N, ...features], y is [N] class indices
 * (as floats) or [N, k] targets. */
typedef struct mm_dataset {
    mm_array x;
    mm_array y;
    int num_classes; /* 0 when y is not a class index */
} mm_dataset;

void mm_dataset_free(mm_dataset *d);

/* Reads one IDX file (plain or gzip), e.g. MNIST's train-images-idx3-ubyte.gz, into a float
 * array with its own shape ([N, 28, 28] for images, [N] for labels). Values are not scaled. */
mm_status mm_idx_read(const char *path, mm_array *out);

/* Loads an IDX image-classification data set from a directory holding
 * {train,t10k}-{images-idx3,labels-idx1}-ubyte[.gz]. split is "train" or "test".
 * Images come out channels-last [N, H, W, 1], pixel values 0..255 as floats. limit > 0 keeps
 * the first limit examples. num_classes is max label + 1. */
mm_status mm_idx_load_dataset(const char *dir, const char *split, long limit, mm_dataset *out);

/* Reads a PNG into [H, W, C] floats (0..255). channels: 1 = grayscale, 3 = RGB, 0 = as stored
 * (gray or RGB). */
mm_status mm_png_read(const char *path, int channels, mm_array *out);

/* Preprocessing recorded in model files so that predict applies the same transform. */
typedef struct mm_preprocess {
    float scale;  /* x' = (x * scale - mean) / std */
    float mean;
    float std;
} mm_preprocess;

/* Identity transform. */
mm_preprocess mm_preprocess_identity(void);
/* x' = x * scale (1/255 gives Keras's usual image scaling). */
mm_preprocess mm_preprocess_rescale(float scale);
/* Computes a global mean/std (after scaling) from a data set. */
mm_preprocess mm_preprocess_standardize(const mm_array *x, float scale);
void mm_preprocess_apply(const mm_preprocess *p, float *x, size_t n);

/* ------------------------------------------------------------------ layers */

typedef struct mm_layer mm_layer;

typedef struct mm_regularizer_args {
    float l1, l2;
} mm_regularizer_args;

typedef struct mm_dense_args {
    int units;
    const char *activation;        /* NULL/"linear", "relu", "softmax", ... */
    int use_bias;                  /* default 1 (set -1 for no bias) */
    int input_shape[MM_MAX_DIMS];  /* optional, zero-terminated */
    mm_regularizer_args kernel_regularizer;
    const char *name;
} mm_dense_args;

typedef struct mm_conv2d_args {
    int filters;
    int kernel_size[2];
    int strides[2];             /* default 1,1 */
    const char *padding;        /* "valid" (default) or "same" */
    const char *activation;
    int use_bias;               /* default 1 (set -1 for no bias) */
    int input_shape[MM_MAX_DIMS];
    mm_regularizer_args kernel_regularizer;
    const char *name;
} mm_conv2d_args;

typedef struct mm_pool2d_args {
    int pool_size[2];           /* default 2,2 */
    int strides[2];             /* default = pool_size */
    const char *padding;        /* "valid" (default) or "same" */
    int input_shape[MM_MAX_DIMS];
    const char *name;
} mm_pool2d_args;

typedef struct mm_simple_args {
    int input_shape[MM_MAX_DIMS];
    const char *name;
} mm_simple_args;

typedef struct mm_dropout_args {
    float rate;
    int input_shape[MM_MAX_DIMS];
    const char *name;
} mm_dropout_args;

typedef struct mm_activation_args {
    const char *activation;
    float alpha;                /* leaky_relu slope, default 0.3 as in Keras */
    int input_shape[MM_MAX_DIMS];
    const char *name;
} mm_activation_args;

typedef struct mm_batchnorm_args {
    float momentum;             /* default 0.99 */
    float epsilon;              /* default 1e-3 */
    int input_shape[MM_MAX_DIMS];
    const char *name;
} mm_batchnorm_args;

typedef struct mm_embedding_args {
    int input_dim;              /* rows (vocabulary / users / items) */
    int output_dim;             /* vector size */
    float l2;                   /* L2 on the looked-up vectors, per lookup (cost independent of input_dim) */
    int mask_zero;              /* id 0 is padding: recurrent and attention layers downstream skip it */
    const char *embeddings_initializer; /* "uniform" (default, Keras's RandomUniform(-0.05, 0.05))
                                           or "normal" / "random_normal" (RandomNormal(0, 0.05)) */
    float embeddings_scale;     /* uniform: maxval (minval = -maxval); normal: stddev; 0 = 0.05 */
    int dense_updates;          /* 1: the table is a dense parameter: every row takes an optimizer
                                   step every step (moments decay on rows not looked up), as Keras
                                   and PyTorch without sparse gradients; cost O(table) per step.
                                   0 (default): sparse row updates, O(batch) per step */
    int input_shape[MM_MAX_DIMS];
    const char *name;
} mm_embedding_args;

typedef struct mm_rnn_args {
    int units;
    int return_sequences;       /* 1: every step's output [T, units]; 0: the last real step's */
    int use_bias;               /* default 1 (set -1 for no bias) */
    int input_shape[MM_MAX_DIMS];
    const char *name;
} mm_rnn_args;

typedef struct mm_bidirectional_args {
    mm_layer *layer;            /* an mm_SimpleRNN/mm_LSTM/mm_GRU used as a template (consumed) */
    const char *name;
} mm_bidirectional_args;

typedef struct mm_layernorm_args {
    float epsilon;              /* default 1e-3 as Keras */
    int input_shape[MM_MAX_DIMS];
    const char *name;
} mm_layernorm_args;

typedef struct mm_mha_args {
    int num_heads;
    int key_dim;                /* per head; default width / num_heads */
    int causal;                 /* use_causal_mask */
    float dropout;              /* on the attention probabilities, in training */
    const char *name;
} mm_mha_args;

typedef struct mm_position_embedding_args {
    int max_length;             /* learned table of this many positions; 0 = sinusoidal (no weights) */
    int input_shape[MM_MAX_DIMS];
    const char *name;
} mm_position_embedding_args;

typedef struct mm_conv1d_args {
    int filters;
    int kernel_size;
    const char *padding;        /* "valid" (the default and the only one supported) */
    const char *activation;
    int use_bias;               /* default 1 (set -1 for no bias) */
    int input_shape[MM_MAX_DIMS];
    const char *name;
} mm_conv1d_args;

typedef struct mm_merge_args {
    int axis;                   /* Concatenate: axis counted with the batch as 0, default -1 */
    const char *name;
} mm_merge_args;

typedef struct mm_reshape_args {
    int target_shape[MM_MAX_DIMS]; /* without the batch; one entry may be -1 */
    int input_shape[MM_MAX_DIMS];
    const char *name;
} mm_reshape_args;

typedef struct mm_slice_args {
    int begin, size;            /* columns [begin, begin + size) of the last axis */
    int input_shape[MM_MAX_DIMS];
    const char *name;
} mm_slice_args;

mm_layer *mm_layer_dense(mm_dense_args a);
/* Embedding tables get sparse updates: a step touches only the rows it looked up (lazy Adam:
 * a row's moments move only when it is looked up), unless dense_updates is set. Returns NULL
 * (mm_errmsg() says why) for an unknown embeddings_initializer or a negative scale. */
mm_layer *mm_layer_embedding(mm_embedding_args a);
mm_layer *mm_layer_add(mm_merge_args a);
mm_layer *mm_layer_multiply(mm_merge_args a);
mm_layer *mm_layer_concatenate(mm_merge_args a);
/* Dot product over the last axis: [.., D] . [.., D] -> [.., 1] (Keras Dot(axes=-1)). */
mm_layer *mm_layer_dot(mm_merge_args a);
mm_layer *mm_layer_reshape(mm_reshape_args a);
mm_layer *mm_layer_slice(mm_slice_args a);
mm_layer *mm_layer_simple_rnn(mm_rnn_args a);
mm_layer *mm_layer_lstm(mm_rnn_args a);
mm_layer *mm_layer_gru(mm_rnn_args a);
/* Runs the wrapped recurrent layer forwards and backwards in time; outputs concatenated. */
mm_layer *mm_layer_bidirectional(mm_bidirectional_args a);
mm_layer *mm_layer_layernorm(mm_layernorm_args a);
/* Self-attention with one input; (query, value) or (query, value, key) with more. */
mm_layer *mm_layer_mha(mm_mha_args a);
/* Adds position information to [T, C] sequences: a learned table or the sinusoidal one. */
mm_layer *mm_layer_position_embedding(mm_position_embedding_args a);
/* Mean over the steps; with a padding mask (Embedding(mask_zero)) over the real steps only. */
mm_layer *mm_layer_global_avg_pool1d(mm_simple_args a);
/* Maximum over the steps (max-over-time pooling); with a mask over the real steps only. */
mm_layer *mm_layer_global_max_pool1d(mm_simple_args a);
/* 1-D convolution over [T, C] sequences: kernel [kernel_size, C, filters], stride 1, valid. */
mm_layer *mm_layer_conv1d(mm_conv1d_args a);
mm_layer *mm_layer_conv2d(mm_conv2d_args a);
mm_layer *mm_layer_maxpool2d(mm_pool2d_args a);
mm_layer *mm_layer_avgpool2d(mm_pool2d_args a);
mm_layer *mm_layer_flatten(mm_simple_args a);
mm_layer *mm_layer_dropout(mm_dropout_args a);
mm_layer *mm_layer_activation(mm_activation_args a);
mm_layer *mm_layer_batchnorm(mm_batchnorm_args a);

/* Keras-named constructors with designated-initializer arguments. */
#define mm_Dense(...) mm_layer_dense((mm_dense_args){__VA_ARGS__})
#define mm_Conv2D(...) mm_layer_conv2d((mm_conv2d_args){__VA_ARGS__})
#define mm_MaxPooling2D(...) mm_layer_maxpool2d((mm_pool2d_args){__VA_ARGS__})
#define mm_AveragePooling2D(...) mm_layer_avgpool2d((mm_pool2d_args){__VA_ARGS__})
#define mm_Flatten(...) mm_layer_flatten((mm_simple_args){__VA_ARGS__})
#define mm_Dropout(...) mm_layer_dropout((mm_dropout_args){__VA_ARGS__})
#define mm_Activation(...) mm_layer_activation((mm_activation_args){__VA_ARGS__})
#define mm_BatchNormalization(...) mm_layer_batchnorm((mm_batchnorm_args){__VA_ARGS__})
#define mm_Embedding(...) mm_layer_embedding((mm_embedding_args){__VA_ARGS__})
#define mm_Add(...) mm_layer_add((mm_merge_args){__VA_ARGS__})
#define mm_Multiply(...) mm_layer_multiply((mm_merge_args){__VA_ARGS__})
#define mm_Concatenate(...) mm_layer_concatenate((mm_merge_args){__VA_ARGS__})
#define mm_Dot(...) mm_layer_dot((mm_merge_args){__VA_ARGS__})
#define mm_Reshape(...) mm_layer_reshape((mm_reshape_args){__VA_ARGS__})
#define mm_Slice(...) mm_layer_slice((mm_slice_args){__VA_ARGS__})
#define mm_SimpleRNN(...) mm_layer_simple_rnn((mm_rnn_args){__VA_ARGS__})
#define mm_LSTM(...) mm_layer_lstm((mm_rnn_args){__VA_ARGS__})
#define mm_GRU(...) mm_layer_gru((mm_rnn_args){__VA_ARGS__})
#define mm_Bidirectional(...) mm_layer_bidirectional((mm_bidirectional_args){__VA_ARGS__})
#define mm_LayerNormalization(...) mm_layer_layernorm((mm_layernorm_args){__VA_ARGS__})
#define mm_MultiHeadAttention(...) mm_layer_mha((mm_mha_args){__VA_ARGS__})
#define mm_PositionEmbedding(...) mm_layer_position_embedding((mm_position_embedding_args){__VA_ARGS__})
#define mm_GlobalAveragePooling1D(...) mm_layer_global_avg_pool1d((mm_simple_args){__VA_ARGS__})
#define mm_GlobalMaxPooling1D(...) mm_layer_global_max_pool1d((mm_simple_args){__VA_ARGS__})
#define mm_Conv1D(...) mm_layer_conv1d((mm_conv1d_args){__VA_ARGS__})

/* ------------------------------------------------------------------ model */

typedef struct mm_model mm_model;

mm_model *mm_sequential(void);
void mm_model_free(mm_model *m);

/* Appends a layer; the model takes ownership (also on failure). Shapes are checked here. */
mm_status mm_add(mm_model *m, mm_layer *layer);

/* Functional models (Keras's functional API) for graphs that are not a chain: one input,
 * layers applied to earlier tensors, one output (the last layer applied, or mm_set_output).
 *
 *   mm_model *m = mm_functional("mf");
 *   int x = mm_input(m, 1, (int[]){2});                   // (user, item) ids
 *   int u = mm_call(m, mm_Slice(.begin = 0, .size = 1), x);
 *   int ue = mm_call(m, mm_Embedding(.input_dim = users, .output_dim = 32), u);
 *   ...
 *   int s = mm_call(m, mm_Dot(), ue_flat, ie_flat);
 *
 * Tensor ids are >= 0; on error -1 is returned (mm_errmsg() says why) and every later call
 * given -1 fails too, so a chain needs one check at the end. */
mm_model *mm_functional(const char *name);
int mm_input(mm_model *m, int ndim, const int *shape);
int mm_apply(mm_model *m, mm_layer *layer, int n_inputs, const int *inputs);
#define mm_call(m, layer, ...) \
    mm_apply((m), (layer), (int)(sizeof((int[]){__VA_ARGS__}) / sizeof(int)), (int[]){__VA_ARGS__})
mm_status mm_set_output(mm_model *m, int tensor);

/* Builds a model from the architecture JSON that model files carry (see docs in README). */
mm_status mm_model_from_json(const char *json, mm_model **out);
/* Architecture JSON of a model (malloc'ed string, caller frees). */
char *mm_model_to_json(const mm_model *m);

typedef struct mm_compile_args {
    const char *optimizer;   /* "adam" (default), "sgd", "adamw", "rmsprop" */
    const char *loss;        /* "sparse_categorical_crossentropy", "categorical_crossentropy",
                                "binary_crossentropy", "mse" */
    const char *metrics;     /* "accuracy" (default) or NULL */
    float learning_rate;     /* 0 = optimizer default */
    float momentum;          /* sgd, rmsprop */
    int nesterov;            /* sgd */
    float beta_1, beta_2, epsilon; /* 0 = Keras defaults */
    float weight_decay;      /* adamw (default 0.004) */
    float rho;               /* rmsprop (default 0.9) */
    float global_clipnorm;   /* clip gradients to this global L2 norm, 0 = off */
    const char *schedule;    /* NULL/"constant", "step", "cosine" */
    int warmup_steps;        /* linear warm-up steps before the schedule */
    int decay_steps;         /* step: steps per decay; cosine: steps to reach alpha */
    float decay_rate;        /* step: multiplier per decay_steps (default 0.5) */
    float alpha;             /* cosine: final fraction of the rate (default 0) */
} mm_compile_args;

mm_status mm_compile_with(mm_model *m, const mm_compile_args *a);
#define mm_compile(m, ...) mm_compile_with((m), &(mm_compile_args){__VA_ARGS__})

/* Called after each batch and each epoch; return non-zero to stop training. */
typedef struct mm_progress {
    int epoch, epochs;        /* 1-based epoch */
    long batch, batches;      /* 1-based batch within the epoch */
    long seen;                /* examples seen in this epoch */
    double loss, accuracy;    /* running means over this epoch */
    double val_loss, val_accuracy; /* valid when has_val */
    int has_val;
    double seconds;           /* since the epoch started */
    int epoch_end;            /* 1 on the per-epoch call */
    int improved;             /* epoch_end: the monitored metric improved */
} mm_progress;
typedef int (*mm_progress_fn)(const mm_progress *p, void *user);

typedef struct mm_fit_args {
    int epochs;               /* default 1 */
    int batch_size;           /* default 32 */
    int shuffle;              /* default 1 (set -1 for no shuffle) */
    uint64_t seed;            /* shuffle / dropout / init seed offset */
    float validation_split;   /* fraction taken from the end of the data, as Keras */
    const mm_dataset *validation_data;
    int early_stopping_patience; /* 0 = off; monitors val_loss (loss without validation) */
    int restore_best_weights;    /* keep the best weights seen (by val_loss) */
    mm_progress_fn callback;
    void *user;
    const char *checkpoint_path; /* write a checkpoint (with optimizer state) each epoch */
    int initial_epoch;           /* set by mm_model_load_checkpoint for --resume */
} mm_fit_args;

mm_status mm_fit_with(mm_model *m, const mm_dataset *train, const mm_fit_args *a);
#define mm_fit(m, train, ...) mm_fit_with((m), (train), &(mm_fit_args){__VA_ARGS__})

typedef struct mm_eval_result {
    double loss;
    double accuracy;
    double top_k_accuracy;
    int top_k;
    int num_classes;
    long count;
    long *confusion;          /* num_classes x num_classes (true row, predicted col) or NULL */
} mm_eval_result;

mm_status mm_evaluate(mm_model *m, const mm_dataset *data, int batch_size, int top_k,
                      mm_eval_result *out);
void mm_eval_result_free(mm_eval_result *r);

/* Runs the model on x ([N, ...input_shape]) and returns [N, ...output_shape]. */
mm_status mm_predict(mm_model *m, const mm_array *x, int batch_size, mm_array *out);

/* Prints a Keras-style summary table; returns total parameter count via *params if non-NULL. */
mm_status mm_summary(const mm_model *m, char *buf, size_t bufsize, long *params);
long mm_count_params(const mm_model *m);

/* Input and output shapes (without the batch dimension). */
int mm_model_input_shape(const mm_model *m, int *shape);
int mm_model_output_shape(const mm_model *m, int *shape);

/* Initializes weights (glorot_uniform kernels, zero biases) from a seed. Called by compile
 * with seed 0 if not called before. */
mm_status mm_model_init_weights(mm_model *m, uint64_t seed);

/* One weight by name, "<layer>/<weight>" as mm_summary and model files show it (e.g.
 * "features/embeddings", "dense/kernel"), like Keras's get_weights/set_weights: size must be
 * the weight's number of values; set initializes the other weights first if needed (so a
 * later compile keeps them) and rejects non-finite values. */
mm_status mm_model_get_weights(mm_model *m, const char *name, float *out, size_t size);
mm_status mm_model_set_weights(mm_model *m, const char *name, const float *data, size_t size);

/* Preprocessing and free-form metadata stored with the model. */
void mm_model_set_preprocess(mm_model *m, const mm_preprocess *p);
mm_preprocess mm_model_get_preprocess(const mm_model *m);
/* Class names (optional), stored in the model file. */
mm_status mm_model_set_labels(mm_model *m, int n, const char *const *labels);
const char *mm_model_label(const mm_model *m, int i);

/* Incremental (KV-cache) decoding of a causal sequence model over token ids: feed one token
 * at a time and get the model's output row for that position (e.g. next-token
 * probabilities). Each attention layer keeps its keys and values, so n tokens cost n row
 * passes. Works for models built from Embedding, PositionEmbedding, Dense, LayerNormalization,
 * Activation, Dropout, Add, Multiply, Concatenate and causal self-attention MultiHeadAttention;
 * other layers give an error at mm_decoder_new. The model must outlive the decoder. */
typedef struct mm_decoder mm_decoder;
mm_status mm_decoder_new(mm_model *m, mm_decoder **out);
/* out: the output row (the model's last-axis width), or NULL. Fails when the context is full. */
mm_status mm_decoder_step(mm_decoder *d, int token, float *out);
void mm_decoder_reset(mm_decoder *d);
int mm_decoder_position(const mm_decoder *d);
int mm_decoder_capacity(const mm_decoder *d);
void mm_decoder_free(mm_decoder *d);

/* Application metadata stored in the model file (string key -> string value, e.g. JSON):
 * id maps, vocabularies, the data set a model was trained on. Setting NULL removes a key. */
mm_status mm_model_set_metadata(mm_model *m, const char *key, const char *value);
const char *mm_model_get_metadata(const mm_model *m, const char *key);

/* ------------------------------------------------------------------ model files */

/* Saves weights, architecture, preprocessing and training config as safetensors, atomically
 * (temp file, fsync, rename). with_optimizer also stores the optimizer state and step. */
mm_status mm_model_save(mm_model *m, const char *path, int with_optimizer);
/* Loads a model from its file alone. If the file holds optimizer state and the model is
 * compiled from it, training resumes exactly where it stopped. */
mm_status mm_model_load(const char *path, mm_model **out);
/* Epochs completed according to the file's training state (0 if none). */
int mm_model_epochs_done(const mm_model *m);
long mm_model_step(const mm_model *m);
int mm_model_is_compiled(const mm_model *m);
int mm_model_num_labels(const mm_model *m);
/* The seed of the last fit (stored in checkpoints: pass it again to resume identically). */
uint64_t mm_model_fit_seed(const mm_model *m);

/* ------------------------------------------------------------------ safetensors */

/* Minimal safetensors access used by model files, fixtures and applications. */
typedef struct mm_st_tensor {
    char *name;
    char dtype[8];            /* "F32", "I32", "F64", ... */
    int ndim;
    int shape[MM_MAX_DIMS];
    size_t size;              /* elements */
    void *data;               /* owned */
} mm_st_tensor;

typedef struct mm_st_file {
    int n;
    mm_st_tensor *tensors;
    int n_meta;
    char **meta_keys, **meta_values;
} mm_st_file;

mm_status mm_st_read(const char *path, mm_st_file *out);
void mm_st_free(mm_st_file *f);
const mm_st_tensor *mm_st_find(const mm_st_file *f, const char *name);
const char *mm_st_meta(const mm_st_file *f, const char *key);
/* Writes the tensors (dtype "F32" or "I32"; data not owned for writing) and metadata
 * atomically. */
mm_status mm_st_write(const char *path, const mm_st_file *f);

/* Reads a file (at most limit bytes; 0 = all of it) into a new NUL-terminated buffer the caller
 * frees; *len excludes the NUL. */
mm_status mm_read_file(const char *path, size_t limit, char **buf, size_t *len);
/* Writes buf to path atomically: temp file in the same directory, fsync, rename, fsync dir. */
mm_status mm_write_file_atomic(const char *path, const void *buf, size_t len);

#ifdef __cplusplus
}
#endif
#endif
