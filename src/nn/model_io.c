/* Model files: safetensors holding every parameter by its Keras-style name
 * ("conv2d/kernel"), with the architecture, preprocessing, class labels and training config
 * as JSON strings in __metadata__, so a model is rebuilt from its file alone. Checkpoints
 * add the optimizer's slots ("optimizer/m", ...) and step, so training resumes exactly. */
#include "nn/model_internal.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FORMAT_NAME "mediaml"

static char *preprocess_json(const mm_preprocess *p) {
    cJSON *j = cJSON_CreateObject();
    cJSON_AddNumberToObject(j, "scale", p->scale);
    cJSON_AddNumberToObject(j, "mean", p->mean);
    cJSON_AddNumberToObject(j, "std", p->std);
    char *s = cJSON_PrintUnformatted(j);
    cJSON_Delete(j);
    return s;
}

mm_status mm_model_save(mm_model *m, const char *path, int with_optimizer) {
    if (!m || !path) return mm_error(MM_ERR_ARG, "save: NULL argument");
    int n_slots = 0;
    float *slots[2] = {0};
    const char *slot_names[2] = {0};
    if (with_optimizer && m->opt) n_slots = mm_optimizer_slots(m->opt, slots, slot_names);
    int nt = m->n_params + n_slots;
    mm_st_tensor *ts = calloc((size_t)nt + 1, sizeof *ts);
    char slot_tensor_names[2][64];
    if (!ts) return mm_error(MM_ERR_NOMEM, "out of memory");
    for (int i = 0; i < m->n_params; i++) {
        mm_param *p = &m->params[i];
        ts[i].name = p->name;
        strcpy(ts[i].dtype, "F32");
        ts[i].ndim = p->ndim;
        memcpy(ts[i].shape, p->shape, sizeof p->shape);
        ts[i].size = p->size;
        ts[i].data = mm_param_value(m, i);
    }
    for (int s = 0; s < n_slots; s++) {
        mm_st_tensor *t = &ts[m->n_params + s];
        snprintf(slot_tensor_names[s], sizeof slot_tensor_names[s], "optimizer/%s", slot_names[s]);
        t->name = slot_tensor_names[s];
        strcpy(t->dtype, "F32");
        t->ndim = 1;
        t->shape[0] = (int)m->n_weights;
        t->size = m->n_weights;
        t->data = slots[s];
    }
    char *arch = mm_model_to_json(m), *pre = preprocess_json(&m->pre), *labels = NULL, *train = NULL;
    cJSON *lj = cJSON_CreateArray();
    for (int i = 0; i < m->n_labels; i++) cJSON_AddItemToArray(lj, cJSON_CreateString(m->labels[i]));
    labels = cJSON_PrintUnformatted(lj);
    cJSON_Delete(lj);
    if (m->compiled) {
        cJSON *tj = mm_compile_to_json(m);
        cJSON_AddNumberToObject(tj, "epochs_done", m->epochs_done);
        cJSON_AddNumberToObject(tj, "step", (double)m->step);
        char seed[24];
        snprintf(seed, sizeof seed, "%llu", (unsigned long long)m->seed);
        cJSON_AddStringToObject(tj, "seed", seed);
        if (n_slots || (with_optimizer && m->opt)) cJSON_AddNumberToObject(tj, "optimizer_step", (double)m->opt->step);
        train = cJSON_PrintUnformatted(tj);
        cJSON_Delete(tj);
    }
    /* Application metadata goes under "app." keys so it can never clash with ours. */
    int nk = 6 + m->n_meta;
    char **keys = calloc((size_t)nk, sizeof *keys), **vals = calloc((size_t)nk, sizeof *vals);
    char *fixed_keys[6] = {"format", "version", "architecture", "preprocessing", "labels", "training"};
    char *fixed_vals[6] = {FORMAT_NAME, MM_VERSION, arch, pre, labels, train};
    int k = 0, ok = keys && vals;
    for (int i = 0; ok && i < 6; i++)
        if (fixed_vals[i]) keys[k] = fixed_keys[i], vals[k++] = fixed_vals[i];
    for (int i = 0; ok && i < m->n_meta; i++) {
        size_t len = strlen(m->meta_keys[i]) + 5;
        keys[k] = malloc(len);
        if (!keys[k]) {
            ok = 0;
            break;
        }
        snprintf(keys[k], len, "app.%s", m->meta_keys[i]);
        vals[k++] = m->meta_values[i];
    }
    mm_st_file f = {.n = nt, .tensors = ts, .n_meta = k, .meta_keys = keys, .meta_values = vals};
    mm_status st = (ok && arch && pre && labels && (train || !m->compiled)) ? mm_st_write(path, &f)
                                                                            : mm_error(MM_ERR_NOMEM, "out of memory");
    for (int i = 0; keys && i < k; i++)
        if (!strncmp(keys[i], "app.", 4)) free(keys[i]);
    free(keys), free(vals);
    free(arch), free(pre), free(labels), free(train), free(ts);
    return st;
}

static mm_status load_tensor(const mm_st_file *f, const char *path, const char *name, int ndim,
                             const int *shape, float *dst) {
    const mm_st_tensor *t = mm_st_find(f, name);
    if (!t) return mm_error(MM_ERR_FORMAT, "%s: tensor '%s' is missing", path, name);
    if (strcmp(t->dtype, "F32")) return mm_error(MM_ERR_FORMAT, "%s: tensor '%s' is %s, expected F32", path, name, t->dtype);
    if (t->ndim != ndim || memcmp(t->shape, shape, (size_t)ndim * sizeof(int))) {
        char a[64] = "", b[64] = "";
        for (int i = 0, k = 0; i < t->ndim; i++) k += snprintf(a + k, sizeof a - (size_t)k, i ? ",%d" : "%d", t->shape[i]);
        for (int i = 0, k = 0; i < ndim; i++) k += snprintf(b + k, sizeof b - (size_t)k, i ? ",%d" : "%d", shape[i]);
        return mm_error(MM_ERR_SHAPE, "%s: tensor '%s' has shape [%s] but the architecture needs [%s]", path, name, a, b);
    }
    memcpy(dst, t->data, t->size * sizeof(float));
    return MM_OK;
}

mm_status mm_model_load(const char *path, mm_model **out) {
    *out = NULL;
    mm_st_file f;
    mm_status st = mm_st_read(path, &f);
    if (st) return st;
    const char *fmt = mm_st_meta(&f, "format"), *arch = mm_st_meta(&f, "architecture");
    if (!fmt || strcmp(fmt, FORMAT_NAME) || !arch) {
        mm_st_free(&f);
        return mm_error(MM_ERR_FORMAT, "%s: not a mediaml model file (no architecture in its metadata)", path);
    }
    mm_model *m = NULL;
    if ((st = mm_model_from_json(arch, &m))) {
        char msg[1024];
        snprintf(msg, sizeof msg, "%s", mm_errmsg());
        mm_st_free(&f);
        return mm_error(st, "%s: %s", path, msg);
    }
    for (int i = 0; i < m->n_params && st == MM_OK; i++)
        st = load_tensor(&f, path, m->params[i].name, m->params[i].ndim, m->params[i].shape, mm_param_value(m, i));
    m->weights_ready = 1;
    const char *pre = mm_st_meta(&f, "preprocessing");
    cJSON *pj = pre ? cJSON_Parse(pre) : NULL;
    if (pj) {
        const cJSON *s = cJSON_GetObjectItemCaseSensitive(pj, "scale"), *mu = cJSON_GetObjectItemCaseSensitive(pj, "mean"),
                    *sd = cJSON_GetObjectItemCaseSensitive(pj, "std");
        if (cJSON_IsNumber(s) && cJSON_IsNumber(mu) && cJSON_IsNumber(sd) && sd->valuedouble > 0) {
            m->pre.scale = (float)s->valuedouble;
            m->pre.mean = (float)mu->valuedouble;
            m->pre.std = (float)sd->valuedouble;
        } else if (st == MM_OK) {
            st = mm_error(MM_ERR_FORMAT, "%s: invalid preprocessing metadata", path);
        }
        cJSON_Delete(pj);
    }
    const char *labels = mm_st_meta(&f, "labels");
    cJSON *lj = labels ? cJSON_Parse(labels) : NULL;
    if (cJSON_IsArray(lj) && st == MM_OK) {
        int n = cJSON_GetArraySize(lj);
        const char **names = calloc((size_t)n + 1, sizeof(char *));
        for (int i = 0; names && i < n; i++) {
            const cJSON *x = cJSON_GetArrayItem(lj, i);
            names[i] = cJSON_IsString(x) ? x->valuestring : "";
        }
        st = names ? mm_model_set_labels(m, n, names) : mm_error(MM_ERR_NOMEM, "out of memory");
        free(names);
    }
    cJSON_Delete(lj);
    for (int i = 0; i < f.n_meta && st == MM_OK; i++)
        if (!strncmp(f.meta_keys[i], "app.", 4)) st = mm_model_set_metadata(m, f.meta_keys[i] + 4, f.meta_values[i]);
    const char *train = mm_st_meta(&f, "training");
    cJSON *tj = train && st == MM_OK ? cJSON_Parse(train) : NULL;
    if (tj) {
        st = mm_compile_from_json(m, tj);
        const cJSON *e = cJSON_GetObjectItemCaseSensitive(tj, "epochs_done"), *s = cJSON_GetObjectItemCaseSensitive(tj, "step"),
                    *os = cJSON_GetObjectItemCaseSensitive(tj, "optimizer_step");
        if (cJSON_IsNumber(e)) m->epochs_done = e->valueint;
        if (cJSON_IsNumber(s)) m->step = (long)s->valuedouble;
        const cJSON *sd = cJSON_GetObjectItemCaseSensitive(tj, "seed");
        if (cJSON_IsString(sd)) m->seed = strtoull(sd->valuestring, NULL, 10);
        if (st == MM_OK && cJSON_IsNumber(os)) {
            float *slots[2];
            const char *names[2];
            int ns = mm_optimizer_slots(m->opt, slots, names);
            int shape[1] = {(int)m->n_weights};
            for (int i = 0; i < ns && st == MM_OK; i++) {
                char name[64];
                snprintf(name, sizeof name, "optimizer/%s", names[i]);
                st = load_tensor(&f, path, name, 1, shape, slots[i]);
            }
            m->opt->step = (long)os->valuedouble;
        }
        cJSON_Delete(tj);
    }
    mm_st_free(&f);
    if (st != MM_OK) {
        mm_model_free(m);
        return st;
    }
    *out = m;
    return MM_OK;
}
