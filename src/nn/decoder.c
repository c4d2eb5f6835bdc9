/* Incremental (KV-cache) decoding of causal sequence models, one position at a time.
 *
 * A model whose layers are position-wise (Embedding, Dense, LayerNormalization, Activation,
 * Dropout, Add, Multiply, Concatenate), plus PositionEmbedding and causal self-attention, can
 * produce the output for position t from the vectors of position t alone, given every
 * attention layer's keys and values for positions 0..t-1. The decoder keeps those caches and
 * runs each layer on one row, so generating n tokens costs O(n) row passes instead of
 * re-running the whole window for every token. The weights are the model's own (no copy). */
#include "nn/model_internal.h"

#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

struct mm_decoder {
    mm_model *m;
    int max_len, pos;
    float **row;        /* per model tensor: its vector at the current position */
    float **kcache, **vcache; /* per layer (attention layers only): [max_len, H*kd] */
    float *scratch;     /* attention scores, max_len floats */
    float *tmp;         /* q and attention output, 2 * max width */
};

static int row_width(const mm_model *m, int t) {
    const mm_tensor_info *ti = &m->tensors[t];
    return t == 0 ? 1 : ti->shape[ti->ndim - 1];
}

static mm_status check_layer(const mm_model *m, const mm_layer *l) {
    switch (l->type) {
    case MM_EMBEDDING:
    case MM_DENSE:
    case MM_LAYERNORM:
    case MM_ACTIVATION:
    case MM_DROPOUT:
    case MM_ADD:
    case MM_MULTIPLY:
    case MM_CONCATENATE:
    case MM_POSITION_EMBEDDING:
        break;
    case MM_MHA:
        if (!l->causal || l->n_in != 1)
            return mm_error(MM_ERR_ARG, "decoder: attention layer %s must be causal self-attention", l->name);
        break;
    default:
        return mm_error(MM_ERR_ARG, "decoder: layer %s (%s) cannot run one position at a time", l->name,
                        mm_layer_class_name(l->type));
    }
    if (l->type == MM_CONCATENATE && l->axis != -1 && l->axis != m->tensors[l->in[0]].ndim)
        return mm_error(MM_ERR_ARG, "decoder: %s must concatenate features (last axis)", l->name);
    return MM_OK;
}

void mm_decoder_free(mm_decoder *d) {
    if (!d) return;
    for (int t = 0; d->row && t < d->m->n_tensors; t++) free(d->row[t]);
    for (int i = 0; d->kcache && i < d->m->n_layers; i++) free(d->kcache[i]), free(d->vcache[i]);
    free(d->row), free(d->kcache), free(d->vcache), free(d->scratch), free(d->tmp);
    free(d);
}

mm_status mm_decoder_new(mm_model *m, mm_decoder **out) {
    *out = NULL;
    if (!m || !m->n_tensors) return mm_error(MM_ERR_ARG, "decoder: empty model");
    if (m->tensors[0].ndim != 1)
        return mm_error(MM_ERR_SHAPE, "decoder: the model input must be a sequence of ids [T]");
    for (int i = 0; i < m->n_layers; i++) {
        mm_status st = check_layer(m, m->layers[i]);
        if (st) return st;
    }
    mm_decoder *d = calloc(1, sizeof *d);
    if (!d) return mm_error(MM_ERR_NOMEM, "out of memory");
    d->m = m;
    d->max_len = m->tensors[0].shape[0];
    d->row = calloc((size_t)m->n_tensors, sizeof(float *));
    d->kcache = calloc((size_t)m->n_layers, sizeof(float *));
    d->vcache = calloc((size_t)m->n_layers, sizeof(float *));
    d->scratch = malloc((size_t)d->max_len * sizeof(float));
    int widest = 1;
    for (int t = 0; t < m->n_tensors; t++) widest = row_width(m, t) > widest ? row_width(m, t) : widest;
    for (int i = 0; i < m->n_layers; i++)
        if (m->layers[i]->type == MM_MHA) {
            int inner = m->layers[i]->num_heads * m->layers[i]->key_dim;
            widest = inner > widest ? inner : widest;
        }
    d->tmp = malloc(2 * (size_t)widest * sizeof(float));
    int ok = d->row && d->kcache && d->vcache && d->scratch && d->tmp;
    for (int t = 0; ok && t < m->n_tensors; t++) ok = (d->row[t] = malloc((size_t)row_width(m, t) * sizeof(float))) != NULL;
    for (int i = 0; ok && i < m->n_layers; i++) {
        const mm_layer *l = m->layers[i];
        if (l->type != MM_MHA) continue;
        size_t cells = (size_t)d->max_len * (size_t)(l->num_heads * l->key_dim);
        ok = (d->kcache[i] = malloc(cells * sizeof(float))) && (d->vcache[i] = malloc(cells * sizeof(float)));
    }
    if (!ok) {
        mm_decoder_free(d);
        return mm_error(MM_ERR_NOMEM, "out of memory for the decoder's caches");
    }
    *out = d;
    return MM_OK;
}

void mm_decoder_reset(mm_decoder *d) { d->pos = 0; }
int mm_decoder_position(const mm_decoder *d) { return d->pos; }
int mm_decoder_capacity(const mm_decoder *d) { return d->max_len; }

/* y[out] = x[in] @ W[in, out] (+ b) */
static void affine(const float *x, const float *w, const float *b, int in, int out, float *y) {
    if (b) memcpy(y, b, (size_t)out * sizeof(float));
    else memset(y, 0, (size_t)out * sizeof(float));
    cblas_sgemv(CblasRowMajor, CblasTrans, in, out, 1.0f, w, out, x, 1, 1.0f, y, 1);
}

mm_status mm_decoder_step(mm_decoder *d, int token, float *out) {
    mm_model *m = d->m;
    if (d->pos >= d->max_len)
        return mm_error(MM_ERR_ARG, "decoder: the context of %d positions is full (reset, or slide the window)", d->max_len);
    const int t = d->pos;
    d->row[0][0] = (float)token;
    for (int i = 0; i < m->n_layers; i++) {
        mm_layer *l = m->layers[i];
        const float *x = d->row[l->in[0]];
        float *y = d->row[l->out];
        int cin = row_width(m, l->in[0]), cout = row_width(m, l->out);
        switch (l->type) {
        case MM_EMBEDDING: {
            if (token < 0 || token >= l->input_dim)
                return mm_error(MM_ERR_ARG, "decoder: token id %d is not in 0..%d", token, l->input_dim - 1);
            memcpy(y, mm_param_value(m, l->param[0]) + (size_t)token * cout, (size_t)cout * sizeof(float));
            break;
        }
        case MM_POSITION_EMBEDDING:
            if (l->input_dim > 0) {
                const float *p = mm_param_value(m, l->param[0]) + (size_t)t * cout;
                for (int k = 0; k < cout; k++) y[k] = x[k] + p[k];
            } else {
                for (int k = 0; k < cout; k++) {
                    double freq = pow(10000.0, -(double)(k & ~1) / cout);
                    y[k] = x[k] + (float)((k & 1) ? cos(t * freq) : sin(t * freq));
                }
            }
            break;
        case MM_LAYERNORM: {
            const float *gm = mm_param_value(m, l->param[0]), *bt = mm_param_value(m, l->param[1]);
            double mean = 0, var = 0;
            for (int k = 0; k < cin; k++) mean += x[k];
            mean /= cin;
            for (int k = 0; k < cin; k++) var += (x[k] - mean) * (x[k] - mean);
            float inv = (float)(1.0 / sqrt(var / cin + l->epsilon));
            for (int k = 0; k < cin; k++) y[k] = (float)(x[k] - mean) * inv * gm[k] + bt[k];
            break;
        }
        case MM_DENSE:
            affine(x, mm_param_value(m, l->param[0]), l->use_bias ? mm_param_value(m, l->param[1]) : NULL, cin, cout, y);
            mm_activation_apply(l->activation, l->alpha, y, (size_t)cout);
            break;
        case MM_ACTIVATION:
            memcpy(y, x, (size_t)cout * sizeof(float));
            mm_activation_apply(l->activation, l->alpha, y, (size_t)cout);
            break;
        case MM_DROPOUT:
            memcpy(y, x, (size_t)cout * sizeof(float));
            break;
        case MM_ADD:
        case MM_MULTIPLY:
            memcpy(y, x, (size_t)cout * sizeof(float));
            for (int k = 1; k < l->n_in; k++) {
                const float *z = d->row[l->in[k]];
                for (int j = 0; j < cout; j++) y[j] = l->type == MM_ADD ? y[j] + z[j] : y[j] * z[j];
            }
            break;
        case MM_CONCATENATE: {
            int o = 0;
            for (int k = 0; k < l->n_in; k++) {
                int w = row_width(m, l->in[k]);
                memcpy(y + o, d->row[l->in[k]], (size_t)w * sizeof(float));
                o += w;
            }
            break;
        }
        case MM_MHA: {
            int inner = l->num_heads * l->key_dim;
            float *q = d->tmp, *att = d->tmp + inner;
            float *kc = d->kcache[i] + (size_t)t * inner, *vc = d->vcache[i] + (size_t)t * inner;
            affine(x, mm_param_value(m, l->param[0]), mm_param_value(m, l->param[1]), cin, inner, q);
            affine(x, mm_param_value(m, l->param[2]), mm_param_value(m, l->param[3]), cin, inner, kc);
            affine(x, mm_param_value(m, l->param[4]), mm_param_value(m, l->param[5]), cin, inner, vc);
            mm_attention_decode_step(q, d->kcache[i], d->vcache[i], t + 1, l->num_heads, l->key_dim, att, d->scratch);
            affine(att, mm_param_value(m, l->param[6]), mm_param_value(m, l->param[7]), inner, cout, y);
            break;
        }
        }
    }
    d->pos++;
    if (out) memcpy(out, d->row[m->output], (size_t)row_width(m, m->output) * sizeof(float));
    return MM_OK;
}
