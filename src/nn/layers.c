/* Keras-style layers. A layer is configuration plus parameters; building it composes ops
 * from src/ops. Names, argument names and defaults follow Keras. */
#include "nn/model_internal.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *class_names[MM_LAYER_TYPES] = {
    "Dense", "Conv2D", "MaxPooling2D", "AveragePooling2D", "Flatten", "Dropout", "Activation",
    "BatchNormalization", "Embedding", "Add", "Multiply", "Concatenate", "Dot", "Reshape", "Slice",
    "LayerNormalization", "SimpleRNN", "LSTM", "GRU", "Bidirectional", "MultiHeadAttention",
    "PositionEmbedding", "GlobalAveragePooling1D", "GlobalMaxPooling1D", "Conv1D"};

/* Keras's default layer names (conv2d, conv2d_1, ...). */
static const char *base_names[MM_LAYER_TYPES] = {
    "dense", "conv2d", "max_pooling2d", "average_pooling2d", "flatten", "dropout", "activation",
    "batch_normalization", "embedding", "add", "multiply", "concatenate", "dot", "reshape", "slice",
    "layer_normalization", "simple_rnn", "lstm", "gru", "bidirectional", "multi_head_attention",
    "position_embedding", "global_average_pooling1d", "global_max_pooling1d", "conv1d"};

const char *mm_layer_class_name(int type) { return class_names[type]; }
const char *mm_layer_base_name(int type) { return base_names[type]; }
int mm_layer_is_merge(int type) {
    return type == MM_ADD || type == MM_MULTIPLY || type == MM_CONCATENATE || type == MM_DOT;
}

static int shape_len(const int *shape) {
    int n = 0;
    while (n < MM_MAX_DIMS && shape[n] > 0) n++;
    return n;
}

static mm_layer *new_layer(int type, const int *input_shape, const char *name, const char *activation) {
    mm_layer *l = calloc(1, sizeof *l);
    if (!l) return NULL;
    l->type = type;
    if (input_shape) {
        l->input_ndim = shape_len(input_shape);
        memcpy(l->input_shape, input_shape, sizeof l->input_shape);
    }
    if (name) snprintf(l->name, sizeof l->name, "%s", name);
    snprintf(l->activation, sizeof l->activation, "%s", activation ? activation : "linear");
    l->alpha = 0.3f;
    return l;
}

mm_layer *mm_layer_dense(mm_dense_args a) {
    mm_layer *l = new_layer(MM_DENSE, a.input_shape, a.name, a.activation);
    if (!l) return NULL;
    l->units = a.units;
    l->use_bias = a.use_bias >= 0;
    l->l1 = a.kernel_regularizer.l1;
    l->l2 = a.kernel_regularizer.l2;
    return l;
}

mm_layer *mm_layer_conv2d(mm_conv2d_args a) {
    mm_layer *l = new_layer(MM_CONV2D, a.input_shape, a.name, a.activation);
    if (!l) return NULL;
    l->units = a.filters;
    l->kernel[0] = a.kernel_size[0];
    l->kernel[1] = a.kernel_size[1] ? a.kernel_size[1] : a.kernel_size[0];
    l->strides[0] = a.strides[0] ? a.strides[0] : 1;
    l->strides[1] = a.strides[1] ? a.strides[1] : l->strides[0];
    l->same = a.padding && !strcmp(a.padding, "same");
    l->use_bias = a.use_bias >= 0;
    l->l1 = a.kernel_regularizer.l1;
    l->l2 = a.kernel_regularizer.l2;
    /* Unknown padding strings are caught in attach via this marker. */
    if (a.padding && strcmp(a.padding, "same") && strcmp(a.padding, "valid")) l->same = -1;
    return l;
}

static mm_layer *pool_layer(int type, mm_pool2d_args a) {
    mm_layer *l = new_layer(type, a.input_shape, a.name, NULL);
    if (!l) return NULL;
    l->pool[0] = a.pool_size[0] ? a.pool_size[0] : 2;
    l->pool[1] = a.pool_size[1] ? a.pool_size[1] : l->pool[0];
    l->strides[0] = a.strides[0] ? a.strides[0] : l->pool[0];
    l->strides[1] = a.strides[1] ? a.strides[1] : (a.strides[0] ? a.strides[0] : l->pool[1]);
    l->same = a.padding && !strcmp(a.padding, "same");
    if (a.padding && strcmp(a.padding, "same") && strcmp(a.padding, "valid")) l->same = -1;
    return l;
}

mm_layer *mm_layer_maxpool2d(mm_pool2d_args a) { return pool_layer(MM_MAXPOOL2D, a); }
mm_layer *mm_layer_avgpool2d(mm_pool2d_args a) { return pool_layer(MM_AVGPOOL2D, a); }

mm_layer *mm_layer_flatten(mm_simple_args a) { return new_layer(MM_FLATTEN, a.input_shape, a.name, NULL); }

mm_layer *mm_layer_dropout(mm_dropout_args a) {
    mm_layer *l = new_layer(MM_DROPOUT, a.input_shape, a.name, NULL);
    if (l) l->rate = a.rate;
    return l;
}

mm_layer *mm_layer_activation(mm_activation_args a) {
    mm_layer *l = new_layer(MM_ACTIVATION, a.input_shape, a.name, a.activation);
    if (l && a.alpha > 0) l->alpha = a.alpha;
    return l;
}

mm_layer *mm_layer_batchnorm(mm_batchnorm_args a) {
    mm_layer *l = new_layer(MM_BATCHNORM, a.input_shape, a.name, NULL);
    if (!l) return NULL;
    l->momentum = a.momentum > 0 ? a.momentum : 0.99f;
    l->epsilon = a.epsilon > 0 ? a.epsilon : 1e-3f;
    return l;
}

mm_layer *mm_layer_embedding(mm_embedding_args a) {
    mm_layer *l = new_layer(MM_EMBEDDING, a.input_shape, a.name, NULL);
    if (!l) return NULL;
    l->input_dim = a.input_dim;
    l->units = a.output_dim;
    l->l2 = a.l2;
    l->mask_zero = a.mask_zero;
    snprintf(l->emb_init, sizeof l->emb_init, "%s", a.embeddings_initializer ? a.embeddings_initializer : "uniform");
    l->emb_scale = a.embeddings_scale != 0 ? a.embeddings_scale : 0.05f;
    l->dense_updates = a.dense_updates > 0;
    return l;
}

static mm_layer *merge_layer(int type, mm_merge_args a) {
    mm_layer *l = new_layer(type, NULL, a.name, NULL);
    if (l) l->axis = a.axis ? a.axis : -1;
    return l;
}

mm_layer *mm_layer_add(mm_merge_args a) { return merge_layer(MM_ADD, a); }
mm_layer *mm_layer_multiply(mm_merge_args a) { return merge_layer(MM_MULTIPLY, a); }
mm_layer *mm_layer_concatenate(mm_merge_args a) { return merge_layer(MM_CONCATENATE, a); }
mm_layer *mm_layer_dot(mm_merge_args a) { return merge_layer(MM_DOT, a); }

mm_layer *mm_layer_reshape(mm_reshape_args a) {
    mm_layer *l = new_layer(MM_RESHAPE, a.input_shape, a.name, NULL);
    if (!l) return NULL;
    l->target_ndim = shape_len(a.target_shape);
    memcpy(l->target_shape, a.target_shape, sizeof l->target_shape);
    /* shape_len stops at the first non-positive entry: allow one -1 */
    while (l->target_ndim < MM_MAX_DIMS && a.target_shape[l->target_ndim] == -1) {
        l->target_ndim++;
        while (l->target_ndim < MM_MAX_DIMS && a.target_shape[l->target_ndim] > 0) l->target_ndim++;
    }
    return l;
}

mm_layer *mm_layer_slice(mm_slice_args a) {
    mm_layer *l = new_layer(MM_SLICE, a.input_shape, a.name, NULL);
    if (!l) return NULL;
    l->begin = a.begin;
    l->size = a.size;
    return l;
}

/* ---- shapes and parameters ---- */

static mm_status window_out(const char *what, int size, int k, int s, int same, int *out) {
    if (same) {
        *out = (size + s - 1) / s;
        return MM_OK;
    }
    if (size < k) return mm_error(MM_ERR_SHAPE, "%s: input size %d is smaller than window %d", what, size, k);
    *out = (size - k) / s + 1;
    return MM_OK;
}

mm_status mm_layer_attach(mm_model *m, mm_layer *l, const int *ndims, const int (*shapes)[MM_MAX_DIMS]) {
    const char *nm = l->name;
    const int nd = ndims[0];
    const int *in = shapes[0];
    if (mm_layer_is_seq(l->type)) {
        l->in_ndim = nd;
        memcpy(l->in_shape, in, sizeof l->in_shape);
        l->out_ndim = nd;
        memcpy(l->out_shape, in, sizeof l->out_shape);
        return mm_seq_layer_attach(m, l, ndims, shapes);
    }
    if (mm_layer_is_merge(l->type) ? l->n_in < 2 : l->n_in != 1)
        return mm_error(MM_ERR_ARG, "%s: %s takes %s, got %d", nm, class_names[l->type],
                        mm_layer_is_merge(l->type) ? "two or more inputs" : "one input", l->n_in);
    l->in_ndim = nd;
    memcpy(l->in_shape, in, sizeof l->in_shape);
    l->out_ndim = nd;
    memcpy(l->out_shape, in, sizeof l->out_shape);
    if (!mm_activation_known(l->activation))
        return mm_error(MM_ERR_ARG, "%s: unknown activation '%s'", nm, l->activation);
    switch (l->type) {
    case MM_DENSE: {
        if (l->units < 1) return mm_error(MM_ERR_ARG, "%s: units must be >= 1 (got %d)", nm, l->units);
        int fin = in[nd - 1];
        int ks[2] = {fin, l->units};
        l->param[l->n_params++] = mm_model_add_param(m, nm, "kernel", 2, ks, 1, MM_INIT_GLOROT, fin, l->units);
        if (l->use_bias) l->param[l->n_params++] = mm_model_add_param(m, nm, "bias", 1, &l->units, 1, MM_INIT_ZEROS, 0, 0);
        l->out_shape[nd - 1] = l->units;
        break;
    }
    case MM_CONV2D: {
        if (nd != 3)
            return mm_error(MM_ERR_SHAPE, "%s: Conv2D expects input (height, width, channels), got rank %d", nm, nd);
        if (l->units < 1) return mm_error(MM_ERR_ARG, "%s: filters must be >= 1 (got %d)", nm, l->units);
        if (l->kernel[0] < 1 || l->kernel[1] < 1 || l->strides[0] < 1 || l->strides[1] < 1)
            return mm_error(MM_ERR_ARG, "%s: kernel_size and strides must be >= 1", nm);
        if (l->same < 0) return mm_error(MM_ERR_ARG, "%s: padding must be \"valid\" or \"same\"", nm);
        mm_status st;
        if ((st = window_out(nm, in[0], l->kernel[0], l->strides[0], l->same, &l->out_shape[0])) ||
            (st = window_out(nm, in[1], l->kernel[1], l->strides[1], l->same, &l->out_shape[1])))
            return st;
        l->out_shape[2] = l->units;
        int ks[4] = {l->kernel[0], l->kernel[1], in[2], l->units};
        int area = l->kernel[0] * l->kernel[1];
        l->param[l->n_params++] =
            mm_model_add_param(m, nm, "kernel", 4, ks, 1, MM_INIT_GLOROT, area * in[2], area * l->units);
        if (l->use_bias) l->param[l->n_params++] = mm_model_add_param(m, nm, "bias", 1, &l->units, 1, MM_INIT_ZEROS, 0, 0);
        break;
    }
    case MM_MAXPOOL2D:
    case MM_AVGPOOL2D: {
        if (nd != 3)
            return mm_error(MM_ERR_SHAPE, "%s: pooling expects input (height, width, channels), got rank %d", nm, nd);
        if (l->pool[0] < 1 || l->pool[1] < 1 || l->strides[0] < 1 || l->strides[1] < 1)
            return mm_error(MM_ERR_ARG, "%s: pool_size and strides must be >= 1", nm);
        if (l->same < 0) return mm_error(MM_ERR_ARG, "%s: padding must be \"valid\" or \"same\"", nm);
        mm_status st;
        if ((st = window_out(nm, in[0], l->pool[0], l->strides[0], l->same, &l->out_shape[0])) ||
            (st = window_out(nm, in[1], l->pool[1], l->strides[1], l->same, &l->out_shape[1])))
            return st;
        break;
    }
    case MM_FLATTEN: {
        int total = 1;
        for (int i = 0; i < nd; i++) total *= in[i];
        memset(l->out_shape, 0, sizeof l->out_shape);
        l->out_ndim = 1;
        l->out_shape[0] = total;
        break;
    }
    case MM_DROPOUT:
        if (!(l->rate >= 0 && l->rate < 1)) return mm_error(MM_ERR_ARG, "%s: dropout rate must be in [0, 1), got %g", nm, l->rate);
        break;
    case MM_ACTIVATION:
        break;
    case MM_EMBEDDING: {
        if (l->input_dim < 1 || l->units < 1)
            return mm_error(MM_ERR_ARG, "%s: input_dim and output_dim must be >= 1 (got %d, %d)", nm, l->input_dim, l->units);
        if (nd + 1 > MM_MAX_DIMS - 1) return mm_error(MM_ERR_SHAPE, "%s: input rank %d too deep", nm, nd);
        int init = !strcmp(l->emb_init, "uniform") || !strcmp(l->emb_init, "random_uniform") ? MM_INIT_UNIFORM
                   : !strcmp(l->emb_init, "normal") || !strcmp(l->emb_init, "random_normal") ? MM_INIT_NORMAL
                                                                                              : -1;
        if (init < 0)
            return mm_error(MM_ERR_ARG, "%s: unknown embeddings_initializer '%s' (uniform, random_normal)", nm, l->emb_init);
        if (!(l->emb_scale > 0) || isinf(l->emb_scale))
            return mm_error(MM_ERR_ARG, "%s: embeddings_scale must be positive and finite, got %g", nm, l->emb_scale);
        int ts[2] = {l->input_dim, l->units};
        l->param[l->n_params++] = mm_model_add_param(m, nm, "embeddings", 2, ts, 1, init, 0, 0);
        if (l->param[0] >= 0) {
            m->params[l->param[0]].sparse = !l->dense_updates;
            m->params[l->param[0]].init_scale = l->emb_scale;
        }
        l->out_ndim = nd + 1;
        l->out_shape[nd] = l->units;
        break;
    }
    case MM_ADD:
    case MM_MULTIPLY:
    case MM_DOT:
        for (int i = 1; i < l->n_in; i++)
            if (ndims[i] != nd || memcmp(shapes[i], in, (size_t)nd * sizeof(int)))
                return mm_error(MM_ERR_SHAPE, "%s: %s needs inputs of the same shape (input %d differs)", nm,
                                class_names[l->type], i);
        if (l->type == MM_DOT) l->out_shape[nd - 1] = 1;
        break;
    case MM_CONCATENATE: {
        int ax = l->axis < 0 ? nd + l->axis : l->axis - 1; /* Keras counts the batch axis */
        if (ax < 0 || ax >= nd) return mm_error(MM_ERR_ARG, "%s: axis %d out of range", nm, l->axis);
        int total = 0;
        for (int i = 0; i < l->n_in; i++) {
            if (ndims[i] != nd) return mm_error(MM_ERR_SHAPE, "%s: inputs differ in rank", nm);
            for (int d = 0; d < nd; d++)
                if (d != ax && shapes[i][d] != in[d])
                    return mm_error(MM_ERR_SHAPE, "%s: input %d differs outside the concatenation axis", nm, i);
            total += shapes[i][ax];
        }
        l->out_shape[ax] = total;
        break;
    }
    case MM_RESHAPE: {
        size_t have = 1, known = 1;
        int infer_at = -1;
        for (int d = 0; d < nd; d++) have *= (size_t)in[d];
        if (l->target_ndim < 1) return mm_error(MM_ERR_ARG, "%s: empty target_shape", nm);
        for (int d = 0; d < l->target_ndim; d++) {
            if (l->target_shape[d] == -1 && infer_at < 0) infer_at = d;
            else if (l->target_shape[d] < 1) return mm_error(MM_ERR_ARG, "%s: bad target_shape", nm);
            else known *= (size_t)l->target_shape[d];
        }
        memset(l->out_shape, 0, sizeof l->out_shape);
        memcpy(l->out_shape, l->target_shape, sizeof(int) * (size_t)l->target_ndim);
        if (infer_at >= 0 && have % known == 0) l->out_shape[infer_at] = (int)(have / known), known = have;
        if (known != have)
            return mm_error(MM_ERR_SHAPE, "%s: cannot reshape %zu values into the target shape", nm, have);
        l->out_ndim = l->target_ndim;
        break;
    }
    case MM_SLICE:
        if (l->begin < 0 || l->size < 1 || l->begin + l->size > in[nd - 1])
            return mm_error(MM_ERR_SHAPE, "%s: slice [%d, %d) outside the last axis of size %d", nm, l->begin,
                            l->begin + l->size, in[nd - 1]);
        l->out_shape[nd - 1] = l->size;
        break;
    case MM_BATCHNORM: {
        int c = in[nd - 1];
        l->param[l->n_params++] = mm_model_add_param(m, nm, "gamma", 1, &c, 1, MM_INIT_ONES, 0, 0);
        l->param[l->n_params++] = mm_model_add_param(m, nm, "beta", 1, &c, 1, MM_INIT_ZEROS, 0, 0);
        l->param[l->n_params++] = mm_model_add_param(m, nm, "moving_mean", 1, &c, 0, MM_INIT_ZEROS, 0, 0);
        l->param[l->n_params++] = mm_model_add_param(m, nm, "moving_variance", 1, &c, 0, MM_INIT_ONES, 0, 0);
        break;
    }
    }
    for (int i = 0; i < l->n_params; i++)
        if (l->param[i] < 0) return mm_error(MM_ERR_NOMEM, "%s: out of memory for parameters", nm);
    return MM_OK;
}

/* ---- graph building ---- */

mm_node *mm_layer_param_node(mm_model *m, mm_graph *g, int i, int training) {
    mm_param *p = &m->params[i];
    float *grad = training && p->trainable ? mm_param_grad(m, i) : NULL;
    mm_node *n = mm_graph_param(g, p->name, p->ndim, p->shape, mm_param_value(m, i), grad, p->trainable);
    if (n && grad && p->sparse) n->rows = &p->rows;
    return n;
}

mm_node *mm_layer_build(mm_model *m, mm_layer *l, mm_graph *g, mm_node **xs, mm_node *mask, int training,
                        mm_node **logits, mm_node **reg_loss) {
    mm_node *x = xs[0], *y = x;
    *reg_loss = NULL;
    if (mm_layer_is_seq(l->type)) {
        *logits = mm_seq_layer_build(m, l, g, xs, mask, training);
        return *logits;
    }
    switch (l->type) {
    case MM_DENSE:
    case MM_CONV2D: {
        mm_node *w = mm_layer_param_node(m, g, l->param[0], training);
        mm_node *b = l->use_bias ? mm_layer_param_node(m, g, l->param[1], training) : NULL;
        if (training && (l->l1 > 0 || l->l2 > 0)) *reg_loss = mm_g_l1l2(g, w, l->l1, l->l2);
        if (l->type == MM_CONV2D && !strcmp(l->activation, "relu")) {
            /* Fused: saves a pass over the largest activation in both directions. */
            y = mm_g_conv2d_relu(g, x, w, b, l->strides[0], l->strides[1], l->same);
            *logits = y;
            return y;
        }
        y = l->type == MM_DENSE ? mm_g_matmul(g, x, w, b)
                                : mm_g_conv2d(g, x, w, b, l->strides[0], l->strides[1], l->same);
        break;
    }
    case MM_MAXPOOL2D:
        y = mm_g_maxpool2d(g, x, l->pool[0], l->pool[1], l->strides[0], l->strides[1], l->same);
        break;
    case MM_AVGPOOL2D:
        y = mm_g_avgpool2d(g, x, l->pool[0], l->pool[1], l->strides[0], l->strides[1], l->same);
        break;
    case MM_FLATTEN:
        y = mm_g_flatten(g, x);
        break;
    case MM_DROPOUT:
        /* Identity at inference: leave it out of inference graphs entirely. */
        if (training && l->rate > 0) y = mm_g_dropout(g, x, l->rate);
        break;
    case MM_ACTIVATION:
        break;
    case MM_EMBEDDING: {
        mm_node *t = mm_layer_param_node(m, g, l->param[0], training);
        y = mm_g_embedding(g, x, t);
        /* L2 on the looked-up rows (as SVD-style models regularize), not the whole table:
         * the cost stays independent of the table size. */
        if (training && l->l2 > 0) *reg_loss = mm_g_l1l2(g, y, 0.0f, l->l2);
        break;
    }
    case MM_ADD:
    case MM_MULTIPLY:
    case MM_DOT:
        if (l->type == MM_DOT && l->n_in == 2) { /* one op: no [.., K] product in between */
            y = mm_g_dot(g, xs[0], xs[1]);
            break;
        }
        for (int i = 1; i < l->n_in && y; i++) y = l->type == MM_ADD ? mm_g_add(g, y, xs[i]) : mm_g_mul(g, y, xs[i]);
        if (l->type == MM_DOT) y = mm_g_sum(g, y, -1, 1);
        break;
    case MM_CONCATENATE: {
        int ax = l->axis < 0 ? l->axis : l->axis; /* node axes include the batch, as Keras's */
        y = mm_g_concat(g, l->n_in, xs, ax);
        break;
    }
    case MM_RESHAPE:
        y = mm_g_reshape(g, x, l->out_ndim, l->out_shape);
        break;
    case MM_SLICE:
        y = mm_g_slice(g, x, l->begin, l->size);
        break;
    case MM_BATCHNORM:
        y = mm_g_batchnorm(g, x, mm_layer_param_node(m, g, l->param[0], training),
                           mm_layer_param_node(m, g, l->param[1], training), mm_layer_param_node(m, g, l->param[2], 0),
                           mm_layer_param_node(m, g, l->param[3], 0), l->momentum, l->epsilon);
        break;
    }
    *logits = y;
    return mm_g_activation(g, y, l->activation, l->alpha);
}

/* A Conv2D (linear or relu) followed by a non-overlapping valid MaxPooling2D runs as one
 * fused op. */
int mm_layers_fuse_conv_pool(const mm_layer *conv, const mm_layer *pool) {
    if (!pool || conv->type != MM_CONV2D || pool->type != MM_MAXPOOL2D || pool->same) return 0;
    if (strcmp(conv->activation, "relu") && strcmp(conv->activation, "linear")) return 0;
    if (pool->strides[0] != pool->pool[0] || pool->strides[1] != pool->pool[1]) return 0;
    if (pool->pool[0] > 255 || pool->pool[1] > 255) return 0;
    return mm_conv2d_maxpool_fusable(conv->kernel[0], conv->kernel[1], conv->in_shape[2], conv->out_shape[0],
                                     conv->out_shape[1]);
}

mm_node *mm_layer_build_conv_pool(mm_model *m, mm_layer *conv, mm_layer *pool, mm_graph *g, mm_node *x,
                                  int training, mm_node **reg_loss) {
    mm_node *w = mm_layer_param_node(m, g, conv->param[0], training);
    mm_node *b = conv->use_bias ? mm_layer_param_node(m, g, conv->param[1], training) : NULL;
    *reg_loss = training && (conv->l1 > 0 || conv->l2 > 0) ? mm_g_l1l2(g, w, conv->l1, conv->l2) : NULL;
    return mm_g_conv2d_maxpool(g, x, w, b, conv->strides[0], conv->strides[1], conv->same,
                               !strcmp(conv->activation, "relu"), pool->pool[0], pool->pool[1]);
}

/* ---- JSON ---- */

static cJSON *int_array(const int *v, int n) { return cJSON_CreateIntArray(v, n); }

cJSON *mm_layer_to_json(const mm_layer *l) {
    cJSON *j = cJSON_CreateObject(), *c = cJSON_CreateObject();
    cJSON_AddStringToObject(j, "class_name", class_names[l->type]);
    cJSON_AddItemToObject(j, "config", c);
    cJSON_AddStringToObject(c, "name", l->name);
    switch (l->type) {
    case MM_DENSE:
        cJSON_AddNumberToObject(c, "units", l->units);
        break;
    case MM_CONV2D:
        cJSON_AddNumberToObject(c, "filters", l->units);
        cJSON_AddItemToObject(c, "kernel_size", int_array(l->kernel, 2));
        cJSON_AddItemToObject(c, "strides", int_array(l->strides, 2));
        cJSON_AddStringToObject(c, "padding", l->same ? "same" : "valid");
        break;
    case MM_MAXPOOL2D:
    case MM_AVGPOOL2D:
        cJSON_AddItemToObject(c, "pool_size", int_array(l->pool, 2));
        cJSON_AddItemToObject(c, "strides", int_array(l->strides, 2));
        cJSON_AddStringToObject(c, "padding", l->same ? "same" : "valid");
        break;
    case MM_DROPOUT:
        cJSON_AddNumberToObject(c, "rate", l->rate);
        break;
    case MM_BATCHNORM:
        cJSON_AddNumberToObject(c, "momentum", l->momentum);
        cJSON_AddNumberToObject(c, "epsilon", l->epsilon);
        break;
    case MM_EMBEDDING:
        cJSON_AddNumberToObject(c, "input_dim", l->input_dim);
        cJSON_AddNumberToObject(c, "output_dim", l->units);
        if (l->l2 > 0) cJSON_AddNumberToObject(c, "l2", l->l2);
        cJSON_AddStringToObject(c, "embeddings_initializer", l->emb_init);
        cJSON_AddNumberToObject(c, "embeddings_scale", l->emb_scale);
        if (l->dense_updates) cJSON_AddBoolToObject(c, "dense_updates", 1);
        break;
    case MM_CONCATENATE:
        cJSON_AddNumberToObject(c, "axis", l->axis);
        break;
    case MM_DOT:
        cJSON_AddNumberToObject(c, "axes", -1);
        break;
    case MM_RESHAPE:
        cJSON_AddItemToObject(c, "target_shape", int_array(l->target_shape, l->target_ndim));
        break;
    case MM_SLICE:
        cJSON_AddNumberToObject(c, "begin", l->begin);
        cJSON_AddNumberToObject(c, "size", l->size);
        break;
    default:
        break;
    }
    if (l->type == MM_DENSE || l->type == MM_CONV2D || l->type == MM_ACTIVATION) {
        cJSON_AddStringToObject(c, "activation", l->activation);
        if (!strcmp(l->activation, "leaky_relu")) cJSON_AddNumberToObject(c, "alpha", l->alpha);
    }
    if (l->type == MM_DENSE || l->type == MM_CONV2D) {
        cJSON_AddBoolToObject(c, "use_bias", l->use_bias);
        if (l->l1 > 0 || l->l2 > 0) {
            cJSON *r = cJSON_AddObjectToObject(c, "kernel_regularizer");
            cJSON_AddNumberToObject(r, "l1", l->l1);
            cJSON_AddNumberToObject(r, "l2", l->l2);
        }
    }
    if (l->type == MM_EMBEDDING && l->mask_zero) cJSON_AddBoolToObject(c, "mask_zero", 1);
    if (mm_layer_is_seq(l->type)) mm_seq_layer_to_json(l, c);
    if (l->input_ndim) cJSON_AddItemToObject(c, "input_shape", int_array(l->input_shape, l->input_ndim));
    return j;
}

/* Reads an int or [a, b] pair into v (a single int fills both, as Keras allows). */
static int get_pair(const cJSON *c, const char *key, int *v) {
    const cJSON *x = cJSON_GetObjectItemCaseSensitive(c, key);
    if (!x) return 0;
    if (cJSON_IsNumber(x)) {
        v[0] = v[1] = x->valueint;
        return 1;
    }
    if (cJSON_IsArray(x) && cJSON_GetArraySize(x) == 2) {
        v[0] = cJSON_GetArrayItem(x, 0)->valueint;
        v[1] = cJSON_GetArrayItem(x, 1)->valueint;
        return 1;
    }
    return -1;
}

static const char *get_str(const cJSON *c, const char *key) {
    const cJSON *x = cJSON_GetObjectItemCaseSensitive(c, key);
    return cJSON_IsString(x) ? x->valuestring : NULL;
}

static double get_num(const cJSON *c, const char *key, double dflt) {
    const cJSON *x = cJSON_GetObjectItemCaseSensitive(c, key);
    return cJSON_IsNumber(x) ? x->valuedouble : (cJSON_IsBool(x) ? cJSON_IsTrue(x) : dflt);
}

mm_status mm_layer_from_json(const cJSON *j, mm_layer **out) {
    *out = NULL;
    const char *cls = get_str(j, "class_name");
    const cJSON *c = cJSON_GetObjectItemCaseSensitive(j, "config");
    if (!cls) return mm_error(MM_ERR_FORMAT, "architecture: layer without \"class_name\"");
    if (c && !cJSON_IsObject(c)) return mm_error(MM_ERR_FORMAT, "architecture: %s \"config\" is not an object", cls);
    int type = -1;
    for (int t = 0; t < MM_LAYER_TYPES; t++)
        if (!strcmp(cls, class_names[t])) type = t;
    if (type < 0) return mm_error(MM_ERR_FORMAT, "architecture: unknown layer class '%s'", cls);
    int input_shape[MM_MAX_DIMS] = {0};
    const cJSON *is = cJSON_GetObjectItemCaseSensitive(c, "input_shape");
    if (is) {
        int n = cJSON_GetArraySize(is);
        if (!cJSON_IsArray(is) || n < 1 || n > MM_MAX_DIMS - 1)
            return mm_error(MM_ERR_FORMAT, "architecture: %s input_shape must be a list of 1..%d sizes", cls, MM_MAX_DIMS - 1);
        for (int i = 0; i < n; i++) {
            const cJSON *d = cJSON_GetArrayItem(is, i);
            if (!cJSON_IsNumber(d) || d->valueint < 1)
                return mm_error(MM_ERR_FORMAT, "architecture: %s input_shape has an invalid size", cls);
            input_shape[i] = d->valueint;
        }
    }
    const char *padding = get_str(c, "padding");
    const char *name = get_str(c, "name");
    if (name && !*name) name = NULL;
    const char *act = get_str(c, "activation");
    float alpha = (float)get_num(c, "alpha", 0.3);
    mm_regularizer_args reg = {0};
    const cJSON *r = cJSON_GetObjectItemCaseSensitive(c, "kernel_regularizer");
    if (r) reg.l1 = (float)get_num(r, "l1", 0), reg.l2 = (float)get_num(r, "l2", 0);
    int use_bias = get_num(c, "use_bias", 1) != 0 ? 1 : -1;
    int pair[2] = {0, 0}, strides[2] = {0, 0};
    if (get_pair(c, "strides", strides) < 0) return mm_error(MM_ERR_FORMAT, "architecture: %s strides must be an int or [h, w]", cls);
    mm_layer *l = NULL;
    switch (type) {
    case MM_DENSE:
        l = mm_layer_dense((mm_dense_args){.units = (int)get_num(c, "units", 0), .activation = act,
                                           .use_bias = use_bias, .kernel_regularizer = reg, .name = name});
        break;
    case MM_CONV2D:
        if (get_pair(c, "kernel_size", pair) <= 0)
            return mm_error(MM_ERR_FORMAT, "architecture: Conv2D needs kernel_size");
        l = mm_layer_conv2d((mm_conv2d_args){.filters = (int)get_num(c, "filters", 0),
                                             .kernel_size = {pair[0], pair[1]},
                                             .strides = {strides[0], strides[1]}, .padding = padding,
                                             .activation = act, .use_bias = use_bias,
                                             .kernel_regularizer = reg, .name = name});
        break;
    case MM_MAXPOOL2D:
    case MM_AVGPOOL2D:
        if (get_pair(c, "pool_size", pair) < 0) return mm_error(MM_ERR_FORMAT, "architecture: bad pool_size");
        l = pool_layer(type, (mm_pool2d_args){.pool_size = {pair[0], pair[1]},
                                              .strides = {strides[0], strides[1]}, .padding = padding, .name = name});
        break;
    case MM_FLATTEN:
        l = mm_layer_flatten((mm_simple_args){.name = name});
        break;
    case MM_DROPOUT:
        l = mm_layer_dropout((mm_dropout_args){.rate = (float)get_num(c, "rate", -1), .name = name});
        break;
    case MM_ACTIVATION:
        l = mm_layer_activation((mm_activation_args){.activation = act, .alpha = alpha, .name = name});
        break;
    case MM_BATCHNORM:
        l = mm_layer_batchnorm((mm_batchnorm_args){.momentum = (float)get_num(c, "momentum", 0.99),
                                                   .epsilon = (float)get_num(c, "epsilon", 1e-3), .name = name});
        break;
    case MM_EMBEDDING:
        l = mm_layer_embedding((mm_embedding_args){.input_dim = (int)get_num(c, "input_dim", 0),
                                                   .output_dim = (int)get_num(c, "output_dim", 0),
                                                   .l2 = (float)get_num(c, "l2", 0),
                                                   .mask_zero = get_num(c, "mask_zero", 0) != 0,
                                                   .embeddings_initializer = get_str(c, "embeddings_initializer"),
                                                   .embeddings_scale = (float)get_num(c, "embeddings_scale", 0.05),
                                                   .dense_updates = get_num(c, "dense_updates", 0) != 0, .name = name});
        break;
    default:
        if (mm_layer_is_seq(type)) {
            l = mm_seq_layer_from_json(type, c, name);
            if (!l) return MM_ERR_FORMAT;
        }
        break;
    case MM_ADD:
    case MM_MULTIPLY:
    case MM_CONCATENATE:
    case MM_DOT:
        l = merge_layer(type, (mm_merge_args){.axis = (int)get_num(c, "axis", -1), .name = name});
        break;
    case MM_RESHAPE: {
        mm_reshape_args ra = {.name = name};
        const cJSON *ts = cJSON_GetObjectItemCaseSensitive(c, "target_shape");
        int n = cJSON_GetArraySize(ts);
        if (!cJSON_IsArray(ts) || n < 1 || n > MM_MAX_DIMS - 1)
            return mm_error(MM_ERR_FORMAT, "architecture: Reshape needs target_shape");
        for (int i = 0; i < n; i++) ra.target_shape[i] = cJSON_GetArrayItem(ts, i)->valueint;
        l = mm_layer_reshape(ra);
        break;
    }
    case MM_SLICE:
        l = mm_layer_slice((mm_slice_args){.begin = (int)get_num(c, "begin", 0), .size = (int)get_num(c, "size", 0),
                                           .name = name});
        break;
    }
    if (!l) return mm_error(MM_ERR_NOMEM, "out of memory creating layer");
    if (act && type != MM_ACTIVATION) l->alpha = alpha;
    if (is) {
        memcpy(l->input_shape, input_shape, sizeof input_shape);
        l->input_ndim = shape_len(input_shape);
    }
    *out = l;
    return MM_OK;
}
