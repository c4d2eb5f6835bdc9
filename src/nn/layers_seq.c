/* Sequence layers with Keras names and defaults: LayerNormalization, SimpleRNN, LSTM, GRU,
 * Bidirectional, MultiHeadAttention, PositionEmbedding, GlobalAveragePooling1D, GlobalMaxPooling1D,
 * Conv1D. Shapes exclude
 * the batch: sequences are [T, C]. Padding masks come from Embedding(mask_zero) and flow to
 * the recurrent and attention layers as in Keras. */
#include "nn/model_internal.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int mm_layer_is_seq(int type) { return type >= MM_LAYERNORM && type < MM_LAYER_TYPES; }

static int is_rnn(int type) { return type == MM_SIMPLE_RNN || type == MM_LSTM || type == MM_GRU; }
static int gates(int type) { return type == MM_LSTM ? 4 : type == MM_GRU ? 3 : 1; }
static int cell_of(int type) { return type == MM_LSTM ? MM_RNN_LSTM : type == MM_GRU ? MM_RNN_GRU : MM_RNN_SIMPLE; }

int mm_layer_keeps_mask(const mm_layer *l) {
    switch (l->type) {
    case MM_DENSE:
    case MM_DROPOUT:
    case MM_ACTIVATION:
    case MM_LAYERNORM:
    case MM_POSITION_EMBEDDING:
    case MM_MHA:
    case MM_ADD:
    case MM_MULTIPLY:
        return 1;
    case MM_SIMPLE_RNN:
    case MM_LSTM:
    case MM_GRU:
    case MM_BIDIRECTIONAL:
        return l->return_sequences;
    default:
        return 0;
    }
}

/* ---- constructors ---- */

static mm_layer *seq_layer(int type, const int *input_shape, const char *name) {
    mm_layer *l = calloc(1, sizeof *l);
    if (!l) return NULL;
    l->type = type;
    if (input_shape)
        for (l->input_ndim = 0; l->input_ndim < MM_MAX_DIMS && input_shape[l->input_ndim] > 0; l->input_ndim++)
            l->input_shape[l->input_ndim] = input_shape[l->input_ndim];
    if (name) snprintf(l->name, sizeof l->name, "%s", name);
    snprintf(l->activation, sizeof l->activation, "linear");
    return l;
}

static mm_layer *rnn_layer(int type, mm_rnn_args a) {
    mm_layer *l = seq_layer(type, a.input_shape, a.name);
    if (!l) return NULL;
    l->units = a.units;
    l->return_sequences = a.return_sequences;
    l->use_bias = a.use_bias >= 0;
    return l;
}

mm_layer *mm_layer_simple_rnn(mm_rnn_args a) { return rnn_layer(MM_SIMPLE_RNN, a); }
mm_layer *mm_layer_lstm(mm_rnn_args a) { return rnn_layer(MM_LSTM, a); }
mm_layer *mm_layer_gru(mm_rnn_args a) { return rnn_layer(MM_GRU, a); }

mm_layer *mm_layer_bidirectional(mm_bidirectional_args a) {
    if (!a.layer) return NULL;
    mm_layer *l = seq_layer(MM_BIDIRECTIONAL, a.layer->input_ndim ? a.layer->input_shape : NULL, a.name);
    if (!l) {
        free(a.layer);
        return NULL;
    }
    /* The wrapped layer is a template: its settings are copied and it is freed here. */
    l->inner = is_rnn(a.layer->type) ? a.layer->type : -1;
    l->units = a.layer->units;
    l->return_sequences = a.layer->return_sequences;
    l->use_bias = a.layer->use_bias;
    if (!a.name && a.layer->name[0]) snprintf(l->name, sizeof l->name, "bidirectional_%.33s", a.layer->name);
    free(a.layer);
    return l;
}

mm_layer *mm_layer_layernorm(mm_layernorm_args a) {
    mm_layer *l = seq_layer(MM_LAYERNORM, a.input_shape, a.name);
    if (l) l->epsilon = a.epsilon > 0 ? a.epsilon : 1e-3f;
    return l;
}

mm_layer *mm_layer_mha(mm_mha_args a) {
    mm_layer *l = seq_layer(MM_MHA, NULL, a.name);
    if (!l) return NULL;
    l->num_heads = a.num_heads;
    l->key_dim = a.key_dim;
    l->causal = a.causal;
    l->rate = a.dropout;
    return l;
}

mm_layer *mm_layer_position_embedding(mm_position_embedding_args a) {
    mm_layer *l = seq_layer(MM_POSITION_EMBEDDING, a.input_shape, a.name);
    if (!l) return NULL;
    l->input_dim = a.max_length; /* 0 = sinusoidal, no table */
    return l;
}

mm_layer *mm_layer_global_avg_pool1d(mm_simple_args a) { return seq_layer(MM_GLOBAL_AVG_POOL1D, a.input_shape, a.name); }
mm_layer *mm_layer_global_max_pool1d(mm_simple_args a) { return seq_layer(MM_GLOBAL_MAX_POOL1D, a.input_shape, a.name); }

mm_layer *mm_layer_conv1d(mm_conv1d_args a) {
    mm_layer *l = seq_layer(MM_CONV1D, a.input_shape, a.name);
    if (!l) return NULL;
    l->units = a.filters;
    l->kernel[0] = a.kernel_size;
    l->same = a.padding && strcmp(a.padding, "valid") ? -1 : 0; /* only "valid" */
    snprintf(l->activation, sizeof l->activation, "%s", a.activation ? a.activation : "linear");
    l->alpha = 0.3f;
    l->use_bias = a.use_bias >= 0;
    return l;
}

/* ---- shapes and parameters ---- */

static int add_rnn_params(mm_model *m, mm_layer *l, int type, const char *prefix, int d) {
    int h = l->units, gh = gates(type) * h;
    char nm[64];
    int ks[2] = {d, gh}, rs[2] = {h, gh}, bs[2] = {2, gh};
    snprintf(nm, sizeof nm, "%skernel", prefix);
    int first = mm_model_add_param(m, l->name, nm, 2, ks, 1, MM_INIT_GLOROT, d, gh);
    snprintf(nm, sizeof nm, "%srecurrent_kernel", prefix);
    int r = mm_model_add_param(m, l->name, nm, 2, rs, 1, MM_INIT_ORTHOGONAL, 0, 0);
    int b = 0;
    if (l->use_bias) {
        snprintf(nm, sizeof nm, "%sbias", prefix);
        b = type == MM_GRU ? mm_model_add_param(m, l->name, nm, 2, bs, 1, MM_INIT_ZEROS, 0, 0)
                           : mm_model_add_param(m, l->name, nm, 1, &gh, 1,
                                                type == MM_LSTM ? MM_INIT_LSTM_BIAS : MM_INIT_ZEROS, 0, 0);
    }
    if (first < 0 || r < 0 || b < 0) return -1;
    l->param[l->n_params++] = first;
    l->param[l->n_params++] = r;
    if (l->use_bias) l->param[l->n_params++] = b;
    return 0;
}

static int add_dense(mm_model *m, mm_layer *l, const char *what, int in, int out) {
    char k[48], b[48];
    snprintf(k, sizeof k, "%s_kernel", what);
    snprintf(b, sizeof b, "%s_bias", what);
    int ks[2] = {in, out};
    int pk = mm_model_add_param(m, l->name, k, 2, ks, 1, MM_INIT_GLOROT, in, out);
    int pb = mm_model_add_param(m, l->name, b, 1, &out, 1, MM_INIT_ZEROS, 0, 0);
    if (pk < 0 || pb < 0) return -1;
    l->param[l->n_params++] = pk;
    l->param[l->n_params++] = pb;
    return 0;
}

mm_status mm_seq_layer_attach(mm_model *m, mm_layer *l, const int *ndims, const int (*shapes)[MM_MAX_DIMS]) {
    const char *nm = l->name;
    const int nd = ndims[0], *in = shapes[0];
    int c = in[nd - 1];
    if (l->type != MM_LAYERNORM && l->type != MM_POSITION_EMBEDDING && nd != 2)
        return mm_error(MM_ERR_SHAPE, "%s: expects sequences (steps, features), got rank %d", nm, nd);
    if (l->type == MM_MHA ? (l->n_in < 1 || l->n_in > 3) : l->n_in != 1)
        return mm_error(MM_ERR_ARG, "%s: wrong number of inputs (%d)", nm, l->n_in);
    switch (l->type) {
    case MM_LAYERNORM: {
        int g = mm_model_add_param(m, nm, "gamma", 1, &c, 1, MM_INIT_ONES, 0, 0);
        int b = mm_model_add_param(m, nm, "beta", 1, &c, 1, MM_INIT_ZEROS, 0, 0);
        if (g < 0 || b < 0) return mm_error(MM_ERR_NOMEM, "out of memory");
        l->param[l->n_params++] = g;
        l->param[l->n_params++] = b;
        break;
    }
    case MM_SIMPLE_RNN:
    case MM_LSTM:
    case MM_GRU:
    case MM_BIDIRECTIONAL: {
        int type = l->type == MM_BIDIRECTIONAL ? l->inner : l->type;
        if (l->type == MM_BIDIRECTIONAL && type < 0)
            return mm_error(MM_ERR_ARG, "%s: Bidirectional wraps SimpleRNN, LSTM or GRU", nm);
        if (l->units < 1) return mm_error(MM_ERR_ARG, "%s: units must be >= 1 (got %d)", nm, l->units);
        int two = l->type == MM_BIDIRECTIONAL;
        if (add_rnn_params(m, l, type, two ? "forward_" : "", c) < 0 ||
            (two && add_rnn_params(m, l, type, "backward_", c) < 0))
            return mm_error(MM_ERR_NOMEM, "out of memory");
        int width = (two ? 2 : 1) * l->units;
        memset(l->out_shape, 0, sizeof l->out_shape);
        if (l->return_sequences) {
            l->out_ndim = 2, l->out_shape[0] = in[0], l->out_shape[1] = width;
        } else {
            l->out_ndim = 1, l->out_shape[0] = width;
        }
        break;
    }
    case MM_MHA: {
        if (l->num_heads < 1) return mm_error(MM_ERR_ARG, "%s: num_heads must be >= 1", nm);
        if (l->key_dim < 1) {
            if (c % l->num_heads) return mm_error(MM_ERR_ARG, "%s: width %d not divisible by %d heads", nm, c, l->num_heads);
            l->key_dim = c / l->num_heads;
        }
        if (!(l->rate >= 0 && l->rate < 1)) return mm_error(MM_ERR_ARG, "%s: dropout must be in [0, 1)", nm);
        const int *val = shapes[l->n_in > 1 ? 1 : 0];
        if (ndims[l->n_in > 1 ? 1 : 0] != 2 || (l->n_in == 3 && (ndims[2] != 2 || shapes[2][0] != val[0])))
            return mm_error(MM_ERR_SHAPE, "%s: value and key must be sequences of the same length", nm);
        if (val[0] != in[0] && l->causal)
            return mm_error(MM_ERR_SHAPE, "%s: a causal mask needs query and value of the same length", nm);
        if (val[0] != in[0])
            return mm_error(MM_ERR_SHAPE, "%s: query length %d differs from value length %d (not supported yet)", nm, in[0], val[0]);
        int inner = l->num_heads * l->key_dim;
        int kv = l->n_in == 3 ? shapes[2][1] : val[1];
        if (add_dense(m, l, "query", c, inner) < 0 || add_dense(m, l, "key", kv, inner) < 0 ||
            add_dense(m, l, "value", val[1], inner) < 0 || add_dense(m, l, "output", inner, c) < 0)
            return mm_error(MM_ERR_NOMEM, "out of memory");
        break;
    }
    case MM_POSITION_EMBEDDING:
        if (nd < 2) return mm_error(MM_ERR_SHAPE, "%s: expects (steps, features)", nm);
        if (l->input_dim > 0) {
            if (in[nd - 2] > l->input_dim)
                return mm_error(MM_ERR_SHAPE, "%s: %d steps exceed max_length %d", nm, in[nd - 2], l->input_dim);
            int ts[2] = {l->input_dim, c};
            int t = mm_model_add_param(m, nm, "embeddings", 2, ts, 1, MM_INIT_GLOROT, l->input_dim, c);
            if (t < 0) return mm_error(MM_ERR_NOMEM, "out of memory");
            l->param[l->n_params++] = t;
        }
        break;
    case MM_CONV1D: {
        if (l->units < 1) return mm_error(MM_ERR_ARG, "%s: filters must be >= 1 (got %d)", nm, l->units);
        if (l->kernel[0] < 1) return mm_error(MM_ERR_ARG, "%s: kernel_size must be >= 1 (got %d)", nm, l->kernel[0]);
        if (l->same) return mm_error(MM_ERR_ARG, "%s: Conv1D supports padding \"valid\" only", nm);
        if (!mm_activation_known(l->activation)) return mm_error(MM_ERR_ARG, "%s: unknown activation '%s'", nm, l->activation);
        if (in[0] < l->kernel[0])
            return mm_error(MM_ERR_SHAPE, "%s: %d steps are fewer than kernel_size %d", nm, in[0], l->kernel[0]);
        int ks[3] = {l->kernel[0], c, l->units};
        int w = mm_model_add_param(m, nm, "kernel", 3, ks, 1, MM_INIT_GLOROT, l->kernel[0] * c, l->kernel[0] * l->units);
        int b = l->use_bias ? mm_model_add_param(m, nm, "bias", 1, &l->units, 1, MM_INIT_ZEROS, 0, 0) : 0;
        if (w < 0 || b < 0) return mm_error(MM_ERR_NOMEM, "out of memory");
        l->param[l->n_params++] = w;
        if (l->use_bias) l->param[l->n_params++] = b;
        l->out_shape[0] = in[0] - l->kernel[0] + 1;
        l->out_shape[1] = l->units;
        break;
    }
    case MM_GLOBAL_AVG_POOL1D:
    case MM_GLOBAL_MAX_POOL1D:
        memset(l->out_shape, 0, sizeof l->out_shape);
        l->out_ndim = 1;
        l->out_shape[0] = c;
        break;
    }
    return MM_OK;
}

/* ---- graph building ---- */

static mm_node *rnn(mm_model *m, mm_layer *l, mm_graph *g, mm_node *x, mm_node *mask, int training, int type,
                    int first_param, int flags) {
    mm_node *W = mm_layer_param_node(m, g, l->param[first_param], training);
    mm_node *U = mm_layer_param_node(m, g, l->param[first_param + 1], training);
    mm_node *b = l->use_bias ? mm_layer_param_node(m, g, l->param[first_param + 2], training) : NULL;
    return mm_g_rnn(g, cell_of(type), x, mask, W, U, b, flags);
}

static mm_node *dense(mm_model *m, mm_layer *l, mm_graph *g, mm_node *x, int k, int training) {
    return mm_g_matmul(g, x, mm_layer_param_node(m, g, l->param[k], training),
                       mm_layer_param_node(m, g, l->param[k + 1], training));
}

mm_node *mm_seq_layer_build(mm_model *m, mm_layer *l, mm_graph *g, mm_node **xs, mm_node *mask, int training) {
    mm_node *x = xs[0];
    switch (l->type) {
    case MM_LAYERNORM:
        return mm_g_layernorm(g, x, mm_layer_param_node(m, g, l->param[0], training),
                              mm_layer_param_node(m, g, l->param[1], training), l->epsilon);
    case MM_SIMPLE_RNN:
    case MM_LSTM:
    case MM_GRU: {
        mm_node *seq = rnn(m, l, g, x, mask, training, l->type, 0, 0);
        return l->return_sequences ? seq : mm_g_last_step(g, seq, mask);
    }
    case MM_BIDIRECTIONAL: {
        int per = l->use_bias ? 3 : 2;
        /* Keras's Bidirectional zeroes the masked steps' outputs when it returns sequences */
        int zero = l->return_sequences ? MM_RNN_ZERO_MASKED : 0;
        mm_node *f = rnn(m, l, g, x, mask, training, l->inner, 0, zero);
        mm_node *b = rnn(m, l, g, x, mask, training, l->inner, per, zero | MM_RNN_BACKWARDS);
        mm_node *parts[2] = {f, b};
        if (!l->return_sequences) {
            /* a backwards run ends at the first real step */
            parts[0] = mm_g_last_step(g, f, mask);
            parts[1] = mm_g_first_step(g, b, mask);
        }
        return mm_g_concat(g, 2, parts, -1);
    }
    case MM_MHA: {
        mm_node *val = l->n_in > 1 ? xs[1] : x, *key = l->n_in > 2 ? xs[2] : val;
        mm_node *q = dense(m, l, g, x, 0, training), *k = dense(m, l, g, key, 2, training);
        mm_node *v = dense(m, l, g, val, 4, training);
        mm_node *a = mm_g_attention(g, q, k, v, mask, l->num_heads, l->causal, training ? l->rate : 0.0f);
        return dense(m, l, g, a, 6, training);
    }
    case MM_POSITION_EMBEDDING:
        return l->input_dim > 0 ? mm_g_add_positions(g, x, mm_layer_param_node(m, g, l->param[0], training))
                                : mm_g_sinusoidal_positions(g, x);
    case MM_GLOBAL_AVG_POOL1D:
        /* Keras: the mean over the real (unmasked) steps */
        return mask ? mm_g_global_pool1d(g, x, mask, 0) : mm_g_mean(g, x, 1, 0);
    case MM_GLOBAL_MAX_POOL1D:
        return mm_g_global_pool1d(g, x, mask, 1);
    case MM_CONV1D: {
        mm_node *w = mm_layer_param_node(m, g, l->param[0], training);
        mm_node *b = l->use_bias ? mm_layer_param_node(m, g, l->param[1], training) : NULL;
        return mm_g_activation(g, mm_g_conv1d(g, x, w, b), l->activation, l->alpha);
    }
    }
    mm_error(MM_ERR_ARG, "%s: not a sequence layer", l->name);
    return NULL;
}

/* ---- JSON ---- */

static const char *rnn_class(int type) {
    return type == MM_LSTM ? "LSTM" : type == MM_GRU ? "GRU" : "SimpleRNN";
}

void mm_seq_layer_to_json(const mm_layer *l, cJSON *c) {
    switch (l->type) {
    case MM_LAYERNORM:
        cJSON_AddNumberToObject(c, "epsilon", l->epsilon);
        break;
    case MM_SIMPLE_RNN:
    case MM_LSTM:
    case MM_GRU:
        cJSON_AddNumberToObject(c, "units", l->units);
        cJSON_AddBoolToObject(c, "return_sequences", l->return_sequences);
        cJSON_AddBoolToObject(c, "use_bias", l->use_bias);
        break;
    case MM_BIDIRECTIONAL: {
        cJSON_AddStringToObject(c, "merge_mode", "concat");
        cJSON *inner = cJSON_AddObjectToObject(c, "layer");
        cJSON_AddStringToObject(inner, "class_name", rnn_class(l->inner));
        cJSON *ic = cJSON_AddObjectToObject(inner, "config");
        cJSON_AddNumberToObject(ic, "units", l->units);
        cJSON_AddBoolToObject(ic, "return_sequences", l->return_sequences);
        cJSON_AddBoolToObject(ic, "use_bias", l->use_bias);
        break;
    }
    case MM_MHA:
        cJSON_AddNumberToObject(c, "num_heads", l->num_heads);
        cJSON_AddNumberToObject(c, "key_dim", l->key_dim);
        cJSON_AddBoolToObject(c, "use_causal_mask", l->causal);
        cJSON_AddNumberToObject(c, "dropout", l->rate);
        break;
    case MM_POSITION_EMBEDDING:
        cJSON_AddNumberToObject(c, "sequence_length", l->input_dim);
        break;
    case MM_CONV1D:
        cJSON_AddNumberToObject(c, "filters", l->units);
        cJSON_AddNumberToObject(c, "kernel_size", l->kernel[0]);
        cJSON_AddStringToObject(c, "padding", "valid");
        cJSON_AddStringToObject(c, "activation", l->activation);
        cJSON_AddBoolToObject(c, "use_bias", l->use_bias);
        break;
    default:
        break;
    }
}

static double num(const cJSON *c, const char *key, double dflt) {
    const cJSON *x = cJSON_GetObjectItemCaseSensitive(c, key);
    return cJSON_IsNumber(x) ? x->valuedouble : cJSON_IsBool(x) ? cJSON_IsTrue(x) : dflt;
}

mm_layer *mm_seq_layer_from_json(int type, const cJSON *c, const char *name) {
    switch (type) {
    case MM_LAYERNORM:
        return mm_layer_layernorm((mm_layernorm_args){.epsilon = (float)num(c, "epsilon", 1e-3), .name = name});
    case MM_SIMPLE_RNN:
    case MM_LSTM:
    case MM_GRU:
        return rnn_layer(type, (mm_rnn_args){.units = (int)num(c, "units", 0),
                                             .return_sequences = (int)num(c, "return_sequences", 0),
                                             .use_bias = num(c, "use_bias", 1) != 0 ? 1 : -1, .name = name});
    case MM_BIDIRECTIONAL: {
        const cJSON *inner = cJSON_GetObjectItemCaseSensitive(c, "layer");
        const cJSON *cls = cJSON_GetObjectItemCaseSensitive(inner, "class_name");
        const cJSON *ic = cJSON_GetObjectItemCaseSensitive(inner, "config");
        int t = !cJSON_IsString(cls) ? -1
                : !strcmp(cls->valuestring, "LSTM") ? MM_LSTM
                : !strcmp(cls->valuestring, "GRU") ? MM_GRU
                : !strcmp(cls->valuestring, "SimpleRNN") ? MM_SIMPLE_RNN : -1;
        if (t < 0) {
            mm_error(MM_ERR_FORMAT, "architecture: Bidirectional needs a \"layer\" of class SimpleRNN, LSTM or GRU");
            return NULL;
        }
        mm_layer *w = mm_seq_layer_from_json(t, ic, NULL);
        return w ? mm_layer_bidirectional((mm_bidirectional_args){.layer = w, .name = name}) : NULL;
    }
    case MM_MHA:
        return mm_layer_mha((mm_mha_args){.num_heads = (int)num(c, "num_heads", 0), .key_dim = (int)num(c, "key_dim", 0),
                                          .causal = (int)num(c, "use_causal_mask", 0),
                                          .dropout = (float)num(c, "dropout", 0), .name = name});
    case MM_POSITION_EMBEDDING:
        return mm_layer_position_embedding((mm_position_embedding_args){.max_length = (int)num(c, "sequence_length", 0),
                                                                        .name = name});
    case MM_GLOBAL_AVG_POOL1D:
        return mm_layer_global_avg_pool1d((mm_simple_args){.name = name});
    case MM_GLOBAL_MAX_POOL1D:
        return mm_layer_global_max_pool1d((mm_simple_args){.name = name});
    case MM_CONV1D: {
        const cJSON *act = cJSON_GetObjectItemCaseSensitive(c, "activation"), *pad = cJSON_GetObjectItemCaseSensitive(c, "padding");
        const cJSON *k = cJSON_GetObjectItemCaseSensitive(c, "kernel_size");
        if (cJSON_IsArray(k) && cJSON_GetArraySize(k) == 1) k = cJSON_GetArrayItem(k, 0);
        return mm_layer_conv1d((mm_conv1d_args){.filters = (int)num(c, "filters", 0),
                                                .kernel_size = cJSON_IsNumber(k) ? k->valueint : 0,
                                                .padding = cJSON_IsString(pad) ? pad->valuestring : NULL,
                                                .activation = cJSON_IsString(act) ? act->valuestring : NULL,
                                                .use_bias = num(c, "use_bias", 1) != 0 ? 1 : -1, .name = name});
    }
    }
    mm_error(MM_ERR_FORMAT, "architecture: not a sequence layer");
    return NULL;
}
