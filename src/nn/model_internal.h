/* Model internals shared by the nn/ files: layers (configuration, shapes, parameters and the
 * ops they compose), the sequential model, and its compiled graphs. */
#ifndef MM_MODEL_INTERNAL_H
#define MM_MODEL_INTERNAL_H

#include "mediaml.h"
#include "ops/ops.h"
#include "optim/optim.h"

typedef struct cJSON cJSON;

enum mm_layer_type {
    MM_DENSE,
    MM_CONV2D,
    MM_MAXPOOL2D,
    MM_AVGPOOL2D,
    MM_FLATTEN,
    MM_DROPOUT,
    MM_ACTIVATION,
    MM_BATCHNORM,
    MM_EMBEDDING,
    MM_ADD,
    MM_MULTIPLY,
    MM_CONCATENATE,
    MM_DOT,
    MM_RESHAPE,
    MM_SLICE,
    /* sequence layers: src/nn/layers_seq.c */
    MM_LAYERNORM,
    MM_SIMPLE_RNN,
    MM_LSTM,
    MM_GRU,
    MM_BIDIRECTIONAL,
    MM_MHA,
    MM_POSITION_EMBEDDING,
    MM_GLOBAL_AVG_POOL1D,
    MM_GLOBAL_MAX_POOL1D,
    MM_CONV1D,
    MM_LAYER_TYPES
};

#define MM_MAX_LAYER_PARAMS 8
#define MM_MAX_LAYER_INPUTS 4

struct mm_layer {
    int type;
    char name[48];
    /* configuration (Keras names) */
    int units;            /* Dense units / Conv2D filters */
    int kernel[2], strides[2], pool[2];
    int same;             /* padding "same" */
    char activation[24];
    float alpha;          /* leaky_relu slope */
    int use_bias;
    float l1, l2;         /* kernel_regularizer */
    float rate;           /* dropout */
    float momentum, epsilon;
    int input_dim;        /* Embedding rows (units holds output_dim) */
    int axis;             /* Concatenate */
    int begin, size;      /* Slice: last-axis range */
    int target_ndim, target_shape[MM_MAX_DIMS]; /* Reshape */
    int return_sequences; /* recurrent layers */
    int inner;            /* Bidirectional: wrapped recurrent type (MM_LSTM, ...) */
    int num_heads, key_dim, causal; /* MultiHeadAttention (dropout in rate) */
    int mask_zero;        /* Embedding: id 0 is padding; downstream layers get a mask */
    char emb_init[24];    /* Embedding: embeddings_initializer ("uniform", "random_normal") */
    float emb_scale;      /* Embedding: uniform maxval / normal stddev */
    int dense_updates;    /* Embedding: the table is a dense parameter (no row-sparse updates) */
    int input_ndim;       /* declared input_shape, if any */
    int input_shape[MM_MAX_DIMS];
    /* wiring: model tensors consumed and produced (tensor 0 is the model input) */
    int n_in, in[MM_MAX_LAYER_INPUTS], out;
    /* derived when added to a model (shapes exclude the batch; in_* is the first input's) */
    int in_ndim, in_shape[MM_MAX_DIMS];
    int out_ndim, out_shape[MM_MAX_DIMS];
    int n_params;
    int param[MM_MAX_LAYER_PARAMS]; /* indices into the model's parameter table */
};

typedef struct mm_param {
    char name[96];        /* "<layer>/kernel" */
    int ndim, shape[MM_MAX_DIMS];
    size_t size, offset;  /* offset into weights (trainable) or state (not trainable) */
    int trainable;
    int init;             /* MM_INIT_* */
    float init_scale;     /* MM_INIT_UNIFORM: limit; MM_INIT_NORMAL: stddev */
    int fan_in, fan_out;
    int sparse;           /* row-sparse gradients (embedding tables) */
    mm_rowset rows;       /* rows touched this step, when sparse */
} mm_param;

enum { MM_INIT_GLOROT, MM_INIT_ZEROS, MM_INIT_ONES, MM_INIT_UNIFORM, MM_INIT_ORTHOGONAL, MM_INIT_LSTM_BIAS, MM_INIT_NORMAL };

/* A value flowing between layers: the model input or a layer's output. */
typedef struct mm_tensor_info {
    int ndim, shape[MM_MAX_DIMS];
    int producer;         /* layer index, -1 for the model input */
} mm_tensor_info;

/* A compiled graph with the nodes the model reads and writes. */
typedef struct mm_run {
    mm_graph *g;
    mm_node *x, *y, *out, *loss;
    int batch;
} mm_run;

struct mm_model {
    int n_layers, cap_layers;
    mm_layer **layers;
    int functional;       /* built with mm_functional/mm_apply (else sequential) */
    int n_tensors, cap_tensors;
    mm_tensor_info *tensors;
    int output;           /* tensor the model outputs */
    char input_name[48];
    int n_params, cap_params;
    mm_param *params;
    size_t n_weights, n_state;
    float *weights, *grads, *state;
    int weights_ready;

    int compiled;
    mm_compile_args cfg;
    char optimizer_name[16], loss_name[48], metrics_name[24], schedule_name[16];
    mm_optimizer *opt;
    int n_dense_ranges;   /* [begin, end) pairs of weights updated whole each step */
    size_t *dense_ranges;
    int sparse_labels;    /* loss takes class indices */
    mm_run train, infer;

    mm_preprocess pre;
    int n_labels;
    char **labels;
    int n_meta;           /* application metadata (mm_model_set_metadata) */
    char **meta_keys, **meta_values;
    int epochs_done;
    long step;
    uint64_t seed;        /* fit seed, stored so a resumed run reshuffles the same way */
    char name[48];
};

/* Layers */
const char *mm_layer_class_name(int type);
/* Derives the layer's output shape from its inputs' shapes (l->n_in of them) and registers
 * its parameters. */
mm_status mm_layer_attach(mm_model *m, mm_layer *l, const int *ndims, const int (*shapes)[MM_MAX_DIMS]);
/* Composes the layer's ops on its input nodes. *logits receives the pre-activation node when
 * the layer ends with an activation (for fused losses), else the output. */
mm_node *mm_layer_build(mm_model *m, mm_layer *l, mm_graph *g, mm_node **xs, mm_node *mask, int training,
                        mm_node **logits, mm_node **reg_loss);
int mm_layer_is_merge(int type);

/* Sequence layers (layers_seq.c), called from the generic switch in layers.c. */
int mm_layer_is_seq(int type);
mm_status mm_seq_layer_attach(mm_model *m, mm_layer *l, const int *ndims, const int (*shapes)[MM_MAX_DIMS]);
mm_node *mm_seq_layer_build(mm_model *m, mm_layer *l, mm_graph *g, mm_node **xs, mm_node *mask, int training);
void mm_seq_layer_to_json(const mm_layer *l, cJSON *config);
mm_layer *mm_seq_layer_from_json(int type, const cJSON *config, const char *name);
/* Whether a layer passes its input's padding mask on to its output. */
int mm_layer_keeps_mask(const mm_layer *l);
mm_node *mm_layer_param_node(mm_model *m, mm_graph *g, int i, int training);
const char *mm_layer_base_name(int type);
int mm_layers_fuse_conv_pool(const mm_layer *conv, const mm_layer *pool);
mm_node *mm_layer_build_conv_pool(mm_model *m, mm_layer *conv, mm_layer *pool, mm_graph *g, mm_node *x,
                                  int training, mm_node **reg_loss);
cJSON *mm_layer_to_json(const mm_layer *l);
mm_status mm_layer_from_json(const cJSON *j, mm_layer **out);

/* Parameters */
int mm_model_add_param(mm_model *m, const char *layer, const char *name, int ndim, const int *shape,
                       int trainable, int init, int fan_in, int fan_out);
/* One optimizer step over all parameters: dense ones whole, sparse ones by touched rows. */
void mm_model_apply_gradients(mm_model *m);
float *mm_param_value(mm_model *m, int i);
float *mm_param_grad(mm_model *m, int i);

/* Graphs */
mm_status mm_model_build_run(mm_model *m, mm_run *r, int batch, int training);
void mm_run_free(mm_run *r);

/* Copies rows [idx[0..count)] of data (or rows start.. when idx is NULL) into a graph input,
 * applying preprocessing when pre is not NULL. */
void mm_gather_rows(float *dst, const mm_array *src, const long *idx, long start, int count,
                    const mm_preprocess *pre);

/* Training config JSON (compile args) and back. */
cJSON *mm_compile_to_json(const mm_model *m);
mm_status mm_compile_from_json(mm_model *m, const cJSON *j);

#endif
