/* The sequential model: layers, the parameter table over two contiguous arrays (trainable
 * weights with their gradients, and non-trainable state such as batch-norm moving stats),
 * initialization, compile and the compiled graphs, summary, architecture JSON. */
#include "nn/model_internal.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

mm_model *mm_sequential(void) {
    mm_model *m = calloc(1, sizeof *m);
    if (!m) return NULL;
    m->pre = mm_preprocess_identity();
    snprintf(m->name, sizeof m->name, "sequential");
    return m;
}

void mm_run_free(mm_run *r) {
    mm_graph_free(r->g);
    memset(r, 0, sizeof *r);
}

void mm_model_free(mm_model *m) {
    if (!m) return;
    for (int i = 0; i < m->n_layers; i++) free(m->layers[i]);
    free(m->layers);
    free(m->tensors);
    for (int i = 0; i < m->n_params; i++) free(m->params[i].rows.rows), free(m->params[i].rows.seen);
    free(m->params);
    free(m->weights);
    free(m->grads);
    free(m->state);
    mm_optimizer_free(m->opt);
    free(m->dense_ranges);
    mm_run_free(&m->train);
    mm_run_free(&m->infer);
    for (int i = 0; i < m->n_labels; i++) free(m->labels[i]);
    free(m->labels);
    for (int i = 0; i < m->n_meta; i++) free(m->meta_keys[i]), free(m->meta_values[i]);
    free(m->meta_keys);
    free(m->meta_values);
    free(m);
}

/* ---- parameters ---- */

int mm_model_add_param(mm_model *m, const char *layer, const char *name, int ndim, const int *shape,
                       int trainable, int init, int fan_in, int fan_out) {
    if (m->n_params == m->cap_params) {
        int cap = m->cap_params ? m->cap_params * 2 : 16;
        mm_param *p = realloc(m->params, (size_t)cap * sizeof *p);
        if (!p) return -1;
        m->params = p;
        m->cap_params = cap;
    }
    mm_param *p = &m->params[m->n_params];
    memset(p, 0, sizeof *p);
    snprintf(p->name, sizeof p->name, "%s/%s", layer, name);
    p->ndim = ndim;
    memcpy(p->shape, shape, (size_t)ndim * sizeof(int));
    p->size = mm_shape_size(ndim, shape);
    p->trainable = trainable;
    p->init = init;
    p->fan_in = fan_in;
    p->fan_out = fan_out;
    size_t *total = trainable ? &m->n_weights : &m->n_state;
    float **store = trainable ? &m->weights : &m->state;
    float *grown = realloc(*store, (*total + p->size) * sizeof(float));
    if (!grown) return -1;
    *store = grown;
    if (trainable) {
        float *g = realloc(m->grads, (*total + p->size) * sizeof(float));
        if (!g) return -1;
        m->grads = g;
        memset(g + *total, 0, p->size * sizeof(float));
    }
    memset(grown + *total, 0, p->size * sizeof(float));
    p->offset = *total;
    *total += p->size;
    m->weights_ready = 0;
    return m->n_params++;
}

float *mm_param_value(mm_model *m, int i) {
    mm_param *p = &m->params[i];
    return (p->trainable ? m->weights : m->state) + p->offset;
}

float *mm_param_grad(mm_model *m, int i) {
    mm_param *p = &m->params[i];
    return p->trainable ? m->grads + p->offset : NULL;
}

long mm_count_params(const mm_model *m) { return (long)(m->n_weights + m->n_state); }

static int param_named(const mm_model *m, const char *name) {
    for (int i = 0; name && i < m->n_params; i++)
        if (!strcmp(m->params[i].name, name)) return i;
    return -1;
}

mm_status mm_model_get_weights(mm_model *m, const char *name, float *out, size_t size) {
    int i = param_named(m, name);
    if (i < 0) return mm_error(MM_ERR_ARG, "no weight named '%s'", name ? name : "(null)");
    if (m->params[i].size != size)
        return mm_error(MM_ERR_SHAPE, "weight '%s' has %zu values, not %zu", name, m->params[i].size, size);
    if (!m->weights_ready) return mm_error(MM_ERR_STATE, "weights of '%s' are not initialized yet", name);
    memcpy(out, mm_param_value(m, i), size * sizeof(float));
    return MM_OK;
}

mm_status mm_model_set_weights(mm_model *m, const char *name, const float *data, size_t size) {
    int i = param_named(m, name);
    if (i < 0) return mm_error(MM_ERR_ARG, "no weight named '%s'", name ? name : "(null)");
    if (m->params[i].size != size)
        return mm_error(MM_ERR_SHAPE, "weight '%s' has %zu values, not %zu", name, m->params[i].size, size);
    for (size_t k = 0; k < size; k++)
        if (!isfinite(data[k])) return mm_error(MM_ERR_NUMERIC, "weight '%s': value %zu is not finite", name, k);
    /* the other weights get their initializers first, so that compile keeps what is set here */
    if (!m->weights_ready) mm_model_init_weights(m, 0);
    memcpy(mm_param_value(m, i), data, size * sizeof(float));
    return MM_OK;
}

mm_status mm_model_init_weights(mm_model *m, uint64_t seed) {
    mm_rng rng = {mm_hash64(seed ^ 0x6D656469616D6Cull)};
    for (int i = 0; i < m->n_params; i++) {
        mm_param *p = &m->params[i];
        float *v = mm_param_value(m, i);
        if (p->init == MM_INIT_GLOROT) {
            float limit = sqrtf(6.0f / (float)(p->fan_in + p->fan_out));
            for (size_t k = 0; k < p->size; k++) v[k] = (2 * mm_rng_uniform(&rng) - 1) * limit;
        } else if (p->init == MM_INIT_ORTHOGONAL) {
            /* Keras's recurrent default: rows of a Gaussian matrix made orthonormal
             * (Gram-Schmidt); with more rows than columns the columns are orthonormalized. */
            int r = p->shape[0], c = p->shape[1];
            for (size_t k = 0; k < p->size; k++) v[k] = mm_rng_normal(&rng);
            int rows_first = r <= c;
            int n_vec = rows_first ? r : c, len = rows_first ? c : r;
            size_t stride = rows_first ? (size_t)c : 1, step = rows_first ? 1 : (size_t)c;
            for (int a = 0; a < n_vec; a++) {
                float *va = v + (rows_first ? (size_t)a * c : (size_t)a);
                for (int b = 0; b < a; b++) {
                    const float *vb = v + (rows_first ? (size_t)b * c : (size_t)b);
                    double dot = 0;
                    for (int k = 0; k < len; k++) dot += (double)va[k * step] * vb[k * step];
                    for (int k = 0; k < len; k++) va[k * step] -= (float)dot * vb[k * step];
                }
                double norm = 0;
                for (int k = 0; k < len; k++) norm += (double)va[k * step] * va[k * step];
                float inv = norm > 0 ? (float)(1 / sqrt(norm)) : 0;
                for (int k = 0; k < len; k++) va[k * step] *= inv;
            }
            (void)stride;
        } else if (p->init == MM_INIT_LSTM_BIAS) { /* unit_forget_bias: gates i, f, c, o; f = 1 */
            size_t h = p->size / 4;
            for (size_t k = 0; k < p->size; k++) v[k] = k >= h && k < 2 * h ? 1.0f : 0.0f;
        } else if (p->init == MM_INIT_UNIFORM) { /* Keras Embedding: RandomUniform(-0.05, 0.05) */
            for (size_t k = 0; k < p->size; k++) v[k] = (2 * mm_rng_uniform(&rng) - 1) * p->init_scale;
        } else if (p->init == MM_INIT_NORMAL) { /* RandomNormal(0, stddev) */
            for (size_t k = 0; k < p->size; k++) v[k] = mm_rng_normal(&rng) * p->init_scale;
        } else {
            float c = p->init == MM_INIT_ONES ? 1.0f : 0.0f;
            for (size_t k = 0; k < p->size; k++) v[k] = c;
        }
    }
    m->weights_ready = 1;
    return MM_OK;
}

/* ---- layers and tensors ---- */

static int new_tensor(mm_model *m, int ndim, const int *shape, int producer) {
    if (m->n_tensors == m->cap_tensors) {
        int cap = m->cap_tensors ? m->cap_tensors * 2 : 16;
        mm_tensor_info *t = realloc(m->tensors, (size_t)cap * sizeof *t);
        if (!t) return -1;
        m->tensors = t;
        m->cap_tensors = cap;
    }
    mm_tensor_info *t = &m->tensors[m->n_tensors];
    memset(t, 0, sizeof *t);
    t->ndim = ndim;
    memcpy(t->shape, shape, (size_t)ndim * sizeof(int));
    t->producer = producer;
    return m->n_tensors++;
}

mm_model *mm_functional(const char *name) {
    mm_model *m = mm_sequential();
    if (!m) return NULL;
    m->functional = 1;
    snprintf(m->name, sizeof m->name, "%s", name && *name ? name : "functional");
    return m;
}

int mm_input(mm_model *m, int ndim, const int *shape) {
    if (!m) return -1;
    if (m->n_tensors) {
        mm_error(MM_ERR_ARG, "the model already has an input (one input per model)");
        return -1;
    }
    if (ndim < 1 || ndim > MM_MAX_DIMS - 1) {
        mm_error(MM_ERR_SHAPE, "input rank %d out of range 1..%d", ndim, MM_MAX_DIMS - 1);
        return -1;
    }
    for (int i = 0; i < ndim; i++)
        if (shape[i] < 1) {
            mm_error(MM_ERR_SHAPE, "input dimension %d is %d", i, shape[i]);
            return -1;
        }
    if (!m->input_name[0]) snprintf(m->input_name, sizeof m->input_name, "input");
    int t = new_tensor(m, ndim, shape, -1);
    if (t < 0) mm_error(MM_ERR_NOMEM, "out of memory");
    m->output = t;
    return t;
}

static mm_status apply_layer(mm_model *m, mm_layer *l, int n_in, const int *ins, int *out_tensor) {
    *out_tensor = -1;
    if (!m) {
        free(l);
        return mm_error(MM_ERR_ARG, "mm_apply: model is NULL");
    }
    if (!l) {
        return mm_error(MM_ERR_NOMEM, "mm_apply: layer is NULL (out of memory?)");
    }
    if (m->compiled) {
        free(l);
        return mm_error(MM_ERR_STATE, "cannot add layers to a compiled model");
    }
    if (n_in < 1 || n_in > MM_MAX_LAYER_INPUTS) {
        free(l);
        return mm_error(MM_ERR_ARG, "a layer takes 1..%d inputs, got %d", MM_MAX_LAYER_INPUTS, n_in);
    }
    for (int i = 0; i < n_in; i++)
        if (ins[i] < 0 || ins[i] >= m->n_tensors) {
            free(l);
            /* -1 means an earlier call failed: its message stands */
            return ins[i] >= 0 ? mm_error(MM_ERR_ARG, "layer input %d is not a tensor of this model", ins[i]) : MM_ERR_ARG;
        }
    if (!l->name[0]) {
        int count = 0;
        for (int i = 0; i < m->n_layers; i++)
            if (m->layers[i]->type == l->type) count++;
        if (count) snprintf(l->name, sizeof l->name, "%s_%d", mm_layer_base_name(l->type), count);
        else snprintf(l->name, sizeof l->name, "%s", mm_layer_base_name(l->type));
    }
    for (int i = 0; i < m->n_layers; i++)
        if (!strcmp(m->layers[i]->name, l->name) || !strcmp(m->input_name, l->name)) {
            mm_status st = mm_error(MM_ERR_ARG, "duplicate layer name '%s'", l->name);
            free(l);
            return st;
        }
    const mm_tensor_info *t0 = &m->tensors[ins[0]];
    if (l->input_ndim && (l->input_ndim != t0->ndim || memcmp(l->input_shape, t0->shape, (size_t)t0->ndim * sizeof(int)))) {
        mm_status st = mm_error(MM_ERR_SHAPE, "layer %s: declared input_shape does not match its input", l->name);
        free(l);
        return st;
    }
    int ndims[MM_MAX_LAYER_INPUTS], shapes[MM_MAX_LAYER_INPUTS][MM_MAX_DIMS];
    l->n_in = n_in;
    for (int i = 0; i < n_in; i++) {
        l->in[i] = ins[i];
        ndims[i] = m->tensors[ins[i]].ndim;
        memcpy(shapes[i], m->tensors[ins[i]].shape, sizeof shapes[i]);
    }
    int saved_params = m->n_params;
    size_t saved_w = m->n_weights, saved_s = m->n_state;
    mm_status st = mm_layer_attach(m, l, ndims, (const int(*)[MM_MAX_DIMS])shapes);
    if (st != MM_OK) {
        m->n_params = saved_params, m->n_weights = saved_w, m->n_state = saved_s;
        free(l);
        return st;
    }
    if (m->n_layers == m->cap_layers) {
        int cap = m->cap_layers ? m->cap_layers * 2 : 8;
        mm_layer **ls = realloc(m->layers, (size_t)cap * sizeof *ls);
        if (!ls) {
            free(l);
            return mm_error(MM_ERR_NOMEM, "out of memory adding layer");
        }
        m->layers = ls;
        m->cap_layers = cap;
    }
    int out = new_tensor(m, l->out_ndim, l->out_shape, m->n_layers);
    if (out < 0) {
        free(l);
        return mm_error(MM_ERR_NOMEM, "out of memory adding layer");
    }
    l->out = out;
    m->layers[m->n_layers++] = l;
    m->output = out;
    *out_tensor = out;
    return MM_OK;
}

int mm_apply(mm_model *m, mm_layer *l, int n_in, const int *ins) {
    int out;
    apply_layer(m, l, n_in, ins, &out);
    return out;
}

mm_status mm_add(mm_model *m, mm_layer *l) {
    if (!m) {
        free(l);
        return mm_error(MM_ERR_ARG, "mm_add: model is NULL");
    }
    if (!l) return mm_error(MM_ERR_NOMEM, "mm_add: layer is NULL (out of memory?)");
    if (m->n_tensors == 0) {
        if (!l->input_ndim) {
            free(l);
            return mm_error(MM_ERR_SHAPE, "the first layer needs input_shape");
        }
        if (mm_input(m, l->input_ndim, l->input_shape) < 0) {
            free(l);
            return MM_ERR_SHAPE;
        }
    }
    int in = m->output, out;
    return apply_layer(m, l, 1, &in, &out);
}

mm_status mm_set_output(mm_model *m, int tensor) {
    if (!m || tensor < 0 || tensor >= m->n_tensors) return mm_error(MM_ERR_ARG, "mm_set_output: no such tensor %d", tensor);
    if (m->compiled) return mm_error(MM_ERR_STATE, "mm_set_output: the model is compiled");
    m->output = tensor;
    return MM_OK;
}

int mm_model_input_shape(const mm_model *m, int *shape) {
    if (!m->n_tensors) return 0;
    memcpy(shape, m->tensors[0].shape, sizeof(int) * MM_MAX_DIMS);
    return m->tensors[0].ndim;
}

int mm_model_output_shape(const mm_model *m, int *shape) {
    if (!m->n_tensors) return 0;
    memcpy(shape, m->tensors[m->output].shape, sizeof(int) * MM_MAX_DIMS);
    return m->tensors[m->output].ndim;
}

/* ---- summary ---- */

static void shape_str(char *buf, size_t n, int nd, const int *s) {
    int k = snprintf(buf, n, "(None");
    for (int i = 0; i < nd && k < (int)n; i++) k += snprintf(buf + k, n - (size_t)k, ", %d", s[i]);
    if (k < (int)n) snprintf(buf + k, n - (size_t)k, ")");
}

static void with_commas(char *buf, size_t n, long v) {
    char tmp[32];
    snprintf(tmp, sizeof tmp, "%ld", v);
    int len = (int)strlen(tmp), o = 0;
    for (int i = 0; i < len && o + 2 < (int)n; i++) {
        if (i && (len - i) % 3 == 0) buf[o++] = ',';
        buf[o++] = tmp[i];
    }
    buf[o] = 0;
}

mm_status mm_summary(const mm_model *m, char *buf, size_t size, long *params) {
    if (!m || !buf || size == 0) return mm_error(MM_ERR_ARG, "mm_summary: bad arguments");
    size_t o = 0;
#define OUT(...) do { if (o < size) o += (size_t)snprintf(buf + o, size - o, __VA_ARGS__); } while (0)
    OUT("Model: \"%s\"\n", m->name);
    OUT("%-34s %-24s %12s\n", "Layer (type)", "Output Shape", "Param #");
    OUT("==========================================================================\n");
    long trainable = 0, total = 0;
    for (int i = 0; i < m->n_layers; i++) {
        const mm_layer *l = m->layers[i];
        long count = 0;
        for (int k = 0; k < l->n_params; k++) {
            const mm_param *p = &m->params[l->param[k]];
            count += (long)p->size;
            if (p->trainable) trainable += (long)p->size;
        }
        total += count;
        char name[80], shp[64], num[32];
        snprintf(name, sizeof name, "%s (%s)", l->name, mm_layer_class_name(l->type));
        shape_str(shp, sizeof shp, l->out_ndim, l->out_shape);
        with_commas(num, sizeof num, count);
        OUT("%-34s %-24s %12s\n", name, shp, num);
    }
    char a[32], b[32], c[32];
    with_commas(a, sizeof a, total);
    with_commas(b, sizeof b, trainable);
    with_commas(c, sizeof c, total - trainable);
    OUT("==========================================================================\n");
    OUT("Total params: %s\nTrainable params: %s\nNon-trainable params: %s\n", a, b, c);
#undef OUT
    if (params) *params = total;
    return MM_OK;
}

/* ---- architecture JSON ---- */

/* Sequential models keep Keras's Sequential form. Functional ones add, per layer,
 * "inbound": the names of the layers (or the input) it consumes, plus the input and output. */
static const char *tensor_name(const mm_model *m, int t) {
    return m->tensors[t].producer < 0 ? m->input_name : m->layers[m->tensors[t].producer]->name;
}

char *mm_model_to_json(const mm_model *m) {
    cJSON *j = cJSON_CreateObject();
    cJSON_AddStringToObject(j, "class_name", m->functional ? "Functional" : "Sequential");
    cJSON *c = cJSON_AddObjectToObject(j, "config");
    cJSON_AddStringToObject(c, "name", m->name);
    if (m->functional && m->n_tensors) {
        cJSON *in = cJSON_AddObjectToObject(c, "input");
        cJSON_AddStringToObject(in, "name", m->input_name);
        cJSON_AddItemToObject(in, "shape", cJSON_CreateIntArray(m->tensors[0].shape, m->tensors[0].ndim));
    }
    cJSON *ls = cJSON_AddArrayToObject(c, "layers");
    for (int i = 0; i < m->n_layers; i++) {
        const mm_layer *l = m->layers[i];
        cJSON *lj = mm_layer_to_json(l);
        cJSON *cfg = cJSON_GetObjectItemCaseSensitive(lj, "config");
        cJSON_DeleteItemFromObject(cfg, "input_shape");
        if (!m->functional && i == 0)
            cJSON_AddItemToObject(cfg, "input_shape", cJSON_CreateIntArray(m->tensors[0].shape, m->tensors[0].ndim));
        if (m->functional) {
            cJSON *inb = cJSON_AddArrayToObject(lj, "inbound");
            for (int k = 0; k < l->n_in; k++) cJSON_AddItemToArray(inb, cJSON_CreateString(tensor_name(m, l->in[k])));
        }
        cJSON_AddItemToArray(ls, lj);
    }
    if (m->functional && m->n_tensors) cJSON_AddStringToObject(c, "output", tensor_name(m, m->output));
    char *s = cJSON_PrintUnformatted(j);
    cJSON_Delete(j);
    return s;
}

static int find_tensor(const mm_model *m, const char *name) {
    if (!strcmp(name, m->input_name)) return 0;
    for (int i = 0; i < m->n_layers; i++)
        if (!strcmp(m->layers[i]->name, name)) return m->layers[i]->out;
    return -1;
}

mm_status mm_model_from_json(const char *json, mm_model **out) {
    *out = NULL;
    cJSON *j = cJSON_Parse(json);
    if (!j) return mm_error(MM_ERR_FORMAT, "architecture: invalid JSON near '%.20s'", cJSON_GetErrorPtr() ? cJSON_GetErrorPtr() : "");
    mm_status st = MM_OK;
    const cJSON *cls = cJSON_GetObjectItemCaseSensitive(j, "class_name");
    const cJSON *cfg = cJSON_GetObjectItemCaseSensitive(j, "config");
    const cJSON *layers = cJSON_GetObjectItemCaseSensitive(cfg, "layers");
    int functional = cJSON_IsString(cls) && !strcmp(cls->valuestring, "Functional");
    if (!cJSON_IsString(cls) || (!functional && strcmp(cls->valuestring, "Sequential")) || !cJSON_IsArray(layers)) {
        cJSON_Delete(j);
        return mm_error(MM_ERR_FORMAT, "architecture: expected {\"class_name\": \"Sequential\" or \"Functional\", \"config\": {\"layers\": [...]}}");
    }
    if (cJSON_GetArraySize(layers) == 0) {
        cJSON_Delete(j);
        return mm_error(MM_ERR_FORMAT, "architecture: no layers");
    }
    const cJSON *nm = cJSON_GetObjectItemCaseSensitive(cfg, "name");
    mm_model *m = functional ? mm_functional(cJSON_IsString(nm) ? nm->valuestring : NULL) : mm_sequential();
    if (!m) {
        cJSON_Delete(j);
        return mm_error(MM_ERR_NOMEM, "out of memory");
    }
    if (!functional && cJSON_IsString(nm)) snprintf(m->name, sizeof m->name, "%s", nm->valuestring);
    if (functional) {
        const cJSON *in = cJSON_GetObjectItemCaseSensitive(cfg, "input");
        const cJSON *iname = cJSON_GetObjectItemCaseSensitive(in, "name"), *ishape = cJSON_GetObjectItemCaseSensitive(in, "shape");
        int shape[MM_MAX_DIMS] = {0}, nd = cJSON_GetArraySize(ishape);
        if (!cJSON_IsArray(ishape) || nd < 1 || nd > MM_MAX_DIMS - 1) {
            st = mm_error(MM_ERR_FORMAT, "architecture: Functional model needs \"input\": {\"shape\": [...]}");
        } else {
            for (int i = 0; i < nd; i++) shape[i] = cJSON_GetArrayItem(ishape, i)->valueint;
            if (cJSON_IsString(iname)) snprintf(m->input_name, sizeof m->input_name, "%s", iname->valuestring);
            if (mm_input(m, nd, shape) < 0) st = MM_ERR_FORMAT;
        }
    }
    const cJSON *lj;
    int idx = 0;
    cJSON_ArrayForEach(lj, layers) {
        if (st != MM_OK) break;
        mm_layer *l;
        st = mm_layer_from_json(lj, &l);
        if (st == MM_OK && functional) {
            const cJSON *inb = cJSON_GetObjectItemCaseSensitive(lj, "inbound");
            int ins[MM_MAX_LAYER_INPUTS], n = cJSON_GetArraySize(inb), t;
            if (!cJSON_IsArray(inb) || n < 1 || n > MM_MAX_LAYER_INPUTS) {
                free(l);
                st = mm_error(MM_ERR_FORMAT, "layer needs \"inbound\": [names of 1..%d earlier layers]", MM_MAX_LAYER_INPUTS);
            } else {
                for (int i = 0; i < n && st == MM_OK; i++) {
                    const cJSON *x = cJSON_GetArrayItem(inb, i);
                    ins[i] = cJSON_IsString(x) ? find_tensor(m, x->valuestring) : -1;
                    if (ins[i] < 0) st = mm_error(MM_ERR_FORMAT, "inbound '%s' is not an earlier layer or the input",
                                                  cJSON_IsString(x) ? x->valuestring : "?");
                }
                if (st == MM_OK) st = apply_layer(m, l, n, ins, &t);
                else free(l);
            }
        } else if (st == MM_OK) {
            st = mm_add(m, l);
        }
        if (st != MM_OK) {
            char msg[1024];
            snprintf(msg, sizeof msg, "%s", mm_errmsg());
            mm_error(st, "architecture layer %d: %s", idx, msg);
            break;
        }
        idx++;
    }
    if (st == MM_OK && functional) {
        const cJSON *o = cJSON_GetObjectItemCaseSensitive(cfg, "output");
        int t = cJSON_IsString(o) ? find_tensor(m, o->valuestring) : -1;
        if (cJSON_IsString(o) && t < 0) st = mm_error(MM_ERR_FORMAT, "architecture: output '%s' is not a layer", o->valuestring);
        else if (t >= 0) m->output = t;
    }
    cJSON_Delete(j);
    if (st != MM_OK) {
        mm_model_free(m);
        return st;
    }
    *out = m;
    return MM_OK;
}

/* ---- preprocessing and labels ---- */

void mm_model_set_preprocess(mm_model *m, const mm_preprocess *p) { m->pre = *p; }
mm_preprocess mm_model_get_preprocess(const mm_model *m) { return m->pre; }

mm_status mm_model_set_labels(mm_model *m, int n, const char *const *labels) {
    for (int i = 0; i < m->n_labels; i++) free(m->labels[i]);
    free(m->labels);
    m->labels = NULL;
    m->n_labels = 0;
    if (n <= 0) return MM_OK;
    m->labels = calloc((size_t)n, sizeof(char *));
    if (!m->labels) return mm_error(MM_ERR_NOMEM, "out of memory");
    for (int i = 0; i < n; i++) {
        m->labels[i] = strdup(labels[i] ? labels[i] : "");
        if (!m->labels[i]) return mm_error(MM_ERR_NOMEM, "out of memory");
        m->n_labels++;
    }
    return MM_OK;
}

mm_status mm_model_set_metadata(mm_model *m, const char *key, const char *value) {
    if (!m || !key || !*key) return mm_error(MM_ERR_ARG, "mm_model_set_metadata: bad arguments");
    for (int i = 0; i < m->n_meta; i++)
        if (!strcmp(m->meta_keys[i], key)) {
            free(m->meta_values[i]);
            if (value) {
                m->meta_values[i] = strdup(value);
                return m->meta_values[i] ? MM_OK : mm_error(MM_ERR_NOMEM, "out of memory");
            }
            free(m->meta_keys[i]);
            m->n_meta--;
            m->meta_keys[i] = m->meta_keys[m->n_meta];
            m->meta_values[i] = m->meta_values[m->n_meta];
            return MM_OK;
        }
    if (!value) return MM_OK;
    char **k = realloc(m->meta_keys, (size_t)(m->n_meta + 1) * sizeof *k);
    if (!k) return mm_error(MM_ERR_NOMEM, "out of memory");
    m->meta_keys = k;
    char **v = realloc(m->meta_values, (size_t)(m->n_meta + 1) * sizeof *v);
    if (!v) return mm_error(MM_ERR_NOMEM, "out of memory");
    m->meta_values = v;
    k[m->n_meta] = strdup(key);
    v[m->n_meta] = strdup(value);
    if (!k[m->n_meta] || !v[m->n_meta]) {
        free(k[m->n_meta]), free(v[m->n_meta]);
        return mm_error(MM_ERR_NOMEM, "out of memory");
    }
    m->n_meta++;
    return MM_OK;
}

const char *mm_model_get_metadata(const mm_model *m, const char *key) {
    for (int i = 0; m && key && i < m->n_meta; i++)
        if (!strcmp(m->meta_keys[i], key)) return m->meta_values[i];
    return NULL;
}

const char *mm_model_label(const mm_model *m, int i) {
    return i >= 0 && i < m->n_labels ? m->labels[i] : NULL;
}

int mm_model_epochs_done(const mm_model *m) { return m->epochs_done; }
int mm_model_is_compiled(const mm_model *m) { return m && m->compiled; }
int mm_model_num_labels(const mm_model *m) { return m->n_labels; }
uint64_t mm_model_fit_seed(const mm_model *m) { return m->seed; }
long mm_model_step(const mm_model *m) { return m->step; }

/* ---- compile ---- */

static const char *known_losses[] = {"sparse_categorical_crossentropy", "categorical_crossentropy",
                                     "binary_crossentropy", "mse", "mean_squared_error", NULL};

mm_status mm_compile_with(mm_model *m, const mm_compile_args *a) {
    if (!m || !a) return mm_error(MM_ERR_ARG, "mm_compile: NULL argument");
    if (m->n_layers == 0) return mm_error(MM_ERR_STATE, "cannot compile a model with no layers");
    mm_compile_args cfg = *a;
    if (!cfg.loss) cfg.loss = "sparse_categorical_crossentropy";
    int ok = 0;
    for (int i = 0; known_losses[i]; i++) ok |= !strcmp(cfg.loss, known_losses[i]);
    if (!ok) return mm_error(MM_ERR_ARG, "unknown loss '%s'", cfg.loss);
    if (!cfg.optimizer) cfg.optimizer = "adam";
    mm_optimizer *opt;
    mm_status st = mm_optimizer_new(&cfg, m->n_weights, &opt);
    if (st != MM_OK) return st;
    mm_optimizer_free(m->opt);
    m->opt = opt;
    snprintf(m->optimizer_name, sizeof m->optimizer_name, "%s", cfg.optimizer);
    snprintf(m->loss_name, sizeof m->loss_name, "%s", !strcmp(cfg.loss, "mean_squared_error") ? "mse" : cfg.loss);
    snprintf(m->metrics_name, sizeof m->metrics_name, "%s", cfg.metrics ? cfg.metrics : "accuracy");
    snprintf(m->schedule_name, sizeof m->schedule_name, "%s", cfg.schedule ? cfg.schedule : "constant");
    cfg.optimizer = m->optimizer_name;
    cfg.loss = m->loss_name;
    cfg.metrics = m->metrics_name;
    cfg.schedule = m->schedule_name;
    m->cfg = cfg;
    m->sparse_labels = !strcmp(m->loss_name, "sparse_categorical_crossentropy");
    int shape[MM_MAX_DIMS];
    int nd = mm_model_output_shape(m, shape);
    if ((!strcmp(m->loss_name, "sparse_categorical_crossentropy") || !strcmp(m->loss_name, "categorical_crossentropy")) &&
        shape[nd - 1] < 2)
        return mm_error(MM_ERR_SHAPE, "%s needs at least 2 output units, the model has %d", m->loss_name, shape[nd - 1]);
    if (!m->weights_ready) mm_model_init_weights(m, 0);
    /* Dense parameters are updated as contiguous ranges; sparse ones (embedding tables) get a
     * rowset listing the rows each step touched. */
    free(m->dense_ranges);
    m->dense_ranges = malloc(2 * sizeof(size_t) * (size_t)(m->n_params + 1));
    if (!m->dense_ranges) return mm_error(MM_ERR_NOMEM, "out of memory");
    m->n_dense_ranges = 0;
    for (int i = 0; i < m->n_params; i++) {
        mm_param *p = &m->params[i];
        if (!p->trainable) continue;
        if (p->sparse) {
            if (!p->rows.rows) {
                p->rows.rows = malloc((size_t)p->shape[0] * sizeof(int));
                p->rows.seen = calloc((size_t)p->shape[0], 1);
                if (!p->rows.rows || !p->rows.seen) return mm_error(MM_ERR_NOMEM, "out of memory for %s", p->name);
                p->rows.cap = p->shape[0];
            }
            continue;
        }
        size_t *r = m->dense_ranges + 2 * m->n_dense_ranges;
        if (m->n_dense_ranges && r[-1] == p->offset) r[-1] = p->offset + p->size; /* extend */
        else r[0] = p->offset, r[1] = p->offset + p->size, m->n_dense_ranges++;
    }
    mm_run_free(&m->train);
    mm_run_free(&m->infer);
    m->compiled = 1;
    return MM_OK;
}

cJSON *mm_compile_to_json(const mm_model *m) {
    cJSON *j = cJSON_CreateObject();
    const mm_optimizer *o = m->opt;
    cJSON_AddStringToObject(j, "optimizer", m->optimizer_name);
    cJSON_AddStringToObject(j, "loss", m->loss_name);
    cJSON_AddStringToObject(j, "metrics", m->metrics_name);
    cJSON_AddNumberToObject(j, "learning_rate", o->lr);
    cJSON_AddNumberToObject(j, "momentum", o->momentum);
    cJSON_AddBoolToObject(j, "nesterov", o->nesterov);
    cJSON_AddNumberToObject(j, "beta_1", o->beta_1);
    cJSON_AddNumberToObject(j, "beta_2", o->beta_2);
    cJSON_AddNumberToObject(j, "epsilon", o->epsilon);
    cJSON_AddNumberToObject(j, "weight_decay", o->weight_decay);
    cJSON_AddNumberToObject(j, "rho", o->rho);
    cJSON_AddNumberToObject(j, "global_clipnorm", o->global_clipnorm);
    cJSON_AddStringToObject(j, "schedule", m->schedule_name);
    cJSON_AddNumberToObject(j, "warmup_steps", o->warmup_steps);
    cJSON_AddNumberToObject(j, "decay_steps", o->decay_steps);
    cJSON_AddNumberToObject(j, "decay_rate", o->decay_rate);
    cJSON_AddNumberToObject(j, "alpha", o->alpha);
    return j;
}

mm_status mm_compile_from_json(mm_model *m, const cJSON *j) {
#define NUM(k) (cJSON_IsNumber(cJSON_GetObjectItemCaseSensitive(j, k)) ? (float)cJSON_GetObjectItemCaseSensitive(j, k)->valuedouble : 0.0f)
#define STR(k) (cJSON_IsString(cJSON_GetObjectItemCaseSensitive(j, k)) ? cJSON_GetObjectItemCaseSensitive(j, k)->valuestring : NULL)
    mm_compile_args a = {
        .optimizer = STR("optimizer"), .loss = STR("loss"), .metrics = STR("metrics"),
        .learning_rate = NUM("learning_rate"), .momentum = NUM("momentum"),
        .nesterov = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(j, "nesterov")),
        .beta_1 = NUM("beta_1"), .beta_2 = NUM("beta_2"), .epsilon = NUM("epsilon"),
        .weight_decay = NUM("weight_decay"), .rho = NUM("rho"), .global_clipnorm = NUM("global_clipnorm"),
        .schedule = STR("schedule"), .warmup_steps = (int)NUM("warmup_steps"), .decay_steps = (int)NUM("decay_steps"),
        .decay_rate = NUM("decay_rate"), .alpha = NUM("alpha")};
#undef NUM
#undef STR
    int was_ready = m->weights_ready;
    m->weights_ready = 1; /* keep loaded weights */
    mm_status st = mm_compile_with(m, &a);
    m->weights_ready = was_ready || st == MM_OK;
    return st;
}

/* ---- optimizer step ---- */

void mm_model_apply_gradients(mm_model *m) {
    mm_optimizer *o = m->opt;
    if (o->global_clipnorm > 0) {
        double ss = 0;
        for (int r = 0; r < m->n_dense_ranges; r++)
            for (size_t i = m->dense_ranges[2 * r]; i < m->dense_ranges[2 * r + 1]; i++) ss += (double)m->grads[i] * m->grads[i];
        for (int i = 0; i < m->n_params; i++) {
            mm_param *p = &m->params[i];
            if (!p->sparse || !p->trainable) continue;
            size_t d = p->size / (size_t)p->shape[0];
            for (int k = 0; k < p->rows.n; k++)
                for (size_t j = 0; j < d; j++) {
                    float v = m->grads[p->offset + (size_t)p->rows.rows[k] * d + j];
                    ss += (double)v * v;
                }
        }
        for (int r = 0; r < m->n_dense_ranges; r++)
            mm_optimizer_clip(o, m->grads, m->dense_ranges[2 * r], m->dense_ranges[2 * r + 1], ss);
        for (int i = 0; i < m->n_params; i++) {
            mm_param *p = &m->params[i];
            if (!p->sparse || !p->trainable) continue;
            size_t d = p->size / (size_t)p->shape[0];
            for (int k = 0; k < p->rows.n; k++) {
                size_t b = p->offset + (size_t)p->rows.rows[k] * d;
                mm_optimizer_clip(o, m->grads, b, b + d, ss);
            }
        }
    }
    mm_optimizer_begin_step(o);
    for (int r = 0; r < m->n_dense_ranges; r++)
        mm_optimizer_update(o, m->weights, m->grads, m->dense_ranges[2 * r], m->dense_ranges[2 * r + 1]);
    /* Sparse tables: update only the rows this step touched (lazy Adam: untouched rows keep
     * their moments), then restore the all-zero gradient the embedding op accumulates into. */
    for (int i = 0; i < m->n_params; i++) {
        mm_param *p = &m->params[i];
        if (!p->sparse || !p->trainable) continue;
        size_t d = p->size / (size_t)p->shape[0];
        mm_optimizer_update_rows(o, m->weights, m->grads, p->offset, d, p->rows.rows, p->rows.n);
        for (int k = 0; k < p->rows.n; k++) p->rows.seen[p->rows.rows[k]] = 0;
        p->rows.n = 0;
    }
}

/* ---- graphs ---- */

mm_status mm_model_build_run(mm_model *m, mm_run *r, int batch, int training) {
    mm_run_free(r);
    mm_graph *g = mm_graph_new();
    if (!g) return mm_error(MM_ERR_NOMEM, "out of memory");
    r->g = g;
    r->batch = batch;
    int shape[MM_MAX_DIMS + 1];
    shape[0] = batch;
    int nd = mm_model_input_shape(m, shape + 1);
    r->x = mm_graph_input(g, "x", nd + 1, shape, 1);
    /* node[t] / pre[t]: graph node of model tensor t and its pre-activation (for fused losses) */
    mm_node **node = calloc((size_t)m->n_tensors * 3, sizeof(mm_node *));
    if (!node) {
        mm_run_free(r);
        return mm_error(MM_ERR_NOMEM, "out of memory");
    }
    /* mask[t]: padding mask [B, T] of sequence tensor t (Embedding(mask_zero) starts one) */
    mm_node **pre = node + m->n_tensors, **mask = node + 2 * m->n_tensors, *reg = NULL;
    node[0] = pre[0] = r->x;
    int ok = r->x != NULL;
    for (int i = 0; i < m->n_layers && ok; i++) {
        mm_layer *l = m->layers[i], *next = i + 1 < m->n_layers ? m->layers[i + 1] : NULL;
        mm_node *xs[MM_MAX_LAYER_INPUTS], *layer_reg = NULL, *y;
        for (int k = 0; k < l->n_in; k++) xs[k] = node[l->in[k]];
        int uses = 0; /* consumers of this layer's output */
        for (int k = i + 1; k < m->n_layers; k++)
            for (int q = 0; q < m->layers[k]->n_in; q++) uses += m->layers[k]->in[q] == l->out;
        if (next && next->in[0] == l->out && uses == 1 && l->out != m->output && !getenv("MEDIAML_NO_FUSION") &&
            mm_layers_fuse_conv_pool(l, next)) {
            y = pre[next->out] = node[next->out] = mm_layer_build_conv_pool(m, l, next, g, xs[0], training, &layer_reg);
            i++;
        } else {
            mm_node *in_mask = mask[l->in[l->type == MM_MHA && l->n_in > 1 ? 1 : 0]];
            y = node[l->out] = mm_layer_build(m, l, g, xs, in_mask, training, &pre[l->out], &layer_reg);
            if (l->type == MM_EMBEDDING && l->mask_zero) mask[l->out] = mm_g_nonzero(g, xs[0]);
            else if (mm_layer_keeps_mask(l)) mask[l->out] = mask[l->in[0]];
        }
        if (layer_reg) reg = reg ? mm_g_add(g, reg, layer_reg) : layer_reg;
        ok = y != NULL && (!layer_reg || reg);
    }
    mm_node *h = ok ? node[m->output] : NULL, *logits = ok ? pre[m->output] : NULL;
    free(node);
    if (!h) {
        mm_run_free(r);
        return mm_error(MM_ERR_SHAPE, "building the model graph failed: %s", mm_errmsg());
    }
    r->out = h;
    h->keep = 1;
    if (m->compiled) {
        int od = mm_model_output_shape(m, shape + 1);
        int producer = m->tensors[m->output].producer;
        const char *act = producer >= 0 ? m->layers[producer]->activation : "linear";
        if (m->sparse_labels) {
            od = mm_model_output_shape(m, shape + 1) - 1; /* one class index per output row */
            r->y = mm_graph_input(g, "y", od + 1, shape, 1);
        } else
            r->y = mm_graph_input(g, "y", od + 1, shape, 1);
        r->y->keep = 1; /* metrics read the labels after the run */
        const char *loss = m->loss_name;
        if (!strcmp(loss, "sparse_categorical_crossentropy") || !strcmp(loss, "categorical_crossentropy")) {
            r->loss = !strcmp(act, "softmax") ? mm_g_softmax_cross_entropy(g, logits, r->y, m->sparse_labels)
                                              : mm_g_prob_cross_entropy(g, h, r->y, m->sparse_labels);
        } else if (!strcmp(loss, "binary_crossentropy")) {
            r->loss = !strcmp(act, "sigmoid") ? mm_g_sigmoid_bce(g, logits, r->y) : mm_g_prob_bce(g, h, r->y);
        } else {
            r->loss = mm_g_mse(g, h, r->y);
        }
        if (reg) r->loss = mm_g_add(g, r->loss, reg);
        if (!r->loss) {
            mm_run_free(r);
            return mm_error(MM_ERR_SHAPE, "building the loss failed: %s", mm_errmsg());
        }
    }
    mm_status st = mm_graph_plan(g, r->loss, training);
    if (st != MM_OK) {
        mm_run_free(r);
        return st;
    }
    g->training = training;
    return MM_OK;
}

void mm_gather_rows(float *dst, const mm_array *src, const long *idx, long start, int count,
                    const mm_preprocess *pre) {
    size_t row = src->size / (size_t)src->shape[0];
    for (int i = 0; i < count; i++) {
        long r = idx ? idx[start + i] : start + i;
        const float *s = src->data + (size_t)r * row;
        float *d = dst + (size_t)i * row;
        if (pre) {
            const float a = pre->scale / pre->std, b = pre->mean / pre->std;
            for (size_t k = 0; k < row; k++) d[k] = s[k] * a - b;
        } else {
            memcpy(d, s, row * sizeof(float));
        }
    }
}
