/* fit / evaluate / predict. All buffers are set up before the first step; the step itself
 * (gather a batch, forward, backward, optimizer update) allocates nothing. */
#include "nn/model_internal.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now_seconds(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* Checks that a data set fits the model: feature shape, label shape and label range. */
static mm_status check_data(const mm_model *m, const mm_dataset *d, const char *what) {
    int in[MM_MAX_DIMS], out[MM_MAX_DIMS];
    int nd = mm_model_input_shape(m, in), od = mm_model_output_shape(m, out);
    if (!d || !d->x.data || d->x.ndim < 1 || d->x.shape[0] < 1)
        return mm_error(MM_ERR_ARG, "%s data is empty", what);
    if (d->x.ndim != nd + 1 || memcmp(d->x.shape + 1, in, (size_t)nd * sizeof(int))) {
        char a[64] = "", b[64] = "";
        for (int i = 1, k = 0; i < d->x.ndim; i++) k += snprintf(a + k, sizeof a - (size_t)k, i > 1 ? "x%d" : "%d", d->x.shape[i]);
        for (int i = 0, k = 0; i < nd; i++) k += snprintf(b + k, sizeof b - (size_t)k, i ? "x%d" : "%d", in[i]);
        return mm_error(MM_ERR_SHAPE, "%s data has examples of shape %s but the model expects %s", what, a, b);
    }
    if (!d->y.data) return mm_error(MM_ERR_ARG, "%s data has no labels", what);
    if (d->y.shape[0] != d->x.shape[0])
        return mm_error(MM_ERR_SHAPE, "%s data has %d examples but %d labels", what, d->x.shape[0], d->y.shape[0]);
    size_t per = d->y.size / (size_t)d->y.shape[0];
    /* Positions per example: 1 for a classifier, T for a sequence model's [T, K] output. */
    size_t positions = mm_shape_size(od, out) / (size_t)out[od - 1];
    if (m->sparse_labels) {
        if (per != positions)
            return mm_error(MM_ERR_SHAPE, "%s labels must be class indices, %zu per example (got %zu)", what, positions, per);
        for (size_t i = 0; i < d->y.size; i++) {
            float v = d->y.data[i];
            if (!(v >= 0) || v >= (float)out[od - 1] || v != floorf(v))
                return mm_error(MM_ERR_ARG, "%s label %g at example %zu is not a class in 0..%d", what, v, i, out[od - 1] - 1);
        }
    } else if (per != mm_shape_size(od, out)) {
        return mm_error(MM_ERR_SHAPE, "%s targets have %zu values per example, the model outputs %zu", what, per,
                        mm_shape_size(od, out));
    }
    return MM_OK;
}

/* Number of correct predictions in a batch, by the metric matching the loss. */
static long count_correct(const mm_model *m, const float *out, const float *y, long batch, int k,
                          int top_k) {
    long correct = 0;
    int binary = !strcmp(m->loss_name, "binary_crossentropy");
    for (long r = 0; r < batch; r++) {
        const float *o = out + (size_t)r * k;
        if (binary) {
            for (int j = 0; j < k; j++) correct += (o[j] > 0.5f) == (y[(size_t)r * k + j] > 0.5f);
            continue;
        }
        int truth;
        if (m->sparse_labels) {
            truth = (int)y[r];
        } else {
            truth = 0;
            for (int j = 1; j < k; j++)
                if (y[(size_t)r * k + j] > y[(size_t)r * k + truth]) truth = j;
        }
        /* Rank of the true class: how many classes score strictly higher. */
        int higher = 0;
        for (int j = 0; j < k; j++) higher += o[j] > o[truth];
        correct += higher < top_k;
    }
    return correct;
}

static int argmax(const float *v, int k) {
    int best = 0;
    for (int j = 1; j < k; j++)
        if (v[j] > v[best]) best = j;
    return best;
}

static mm_status ensure_run(mm_model *m, mm_run *r, int batch, int training) {
    if (r->g && r->batch >= batch) return MM_OK;
    return mm_model_build_run(m, r, batch, training);
}

mm_status mm_evaluate(mm_model *m, const mm_dataset *d, int batch_size, int top_k, mm_eval_result *res) {
    memset(res, 0, sizeof *res);
    if (!m || !m->compiled) return mm_error(MM_ERR_STATE, "evaluate: the model is not compiled");
    mm_status st = check_data(m, d, "evaluation");
    if (st) return st;
    if (batch_size <= 0) batch_size = 32;
    if (top_k <= 0) top_k = 1;
    long n = d->x.shape[0];
    if (batch_size > n) batch_size = (int)n;
    if ((st = ensure_run(m, &m->infer, batch_size, 0))) return st;
    mm_run *r = &m->infer;
    int k = r->out->shape[r->out->ndim - 1];
    size_t ycols = d->y.size / (size_t)d->y.shape[0];
    long pos = (long)(r->out->size / (size_t)r->out->shape[0] / (size_t)k); /* rows per example */
    int classify = strcmp(m->loss_name, "mse") && strcmp(m->loss_name, "binary_crossentropy");
    int with_confusion = classify && k <= 1024;
    if (with_confusion) {
        res->confusion = calloc((size_t)k * k, sizeof(long));
        if (!res->confusion) return mm_error(MM_ERR_NOMEM, "out of memory");
    }
    double loss = 0;
    long correct = 0, topk = 0, units = 0;
    /* Batches of exactly batch_size (the graph may have room for more): results do not
     * depend on which graph happens to be cached. */
    for (long s = 0; s < n; s += batch_size) {
        int b = (int)(n - s < batch_size ? n - s : batch_size);
        mm_graph_set_batch(r->g, b);
        mm_gather_rows(r->x->value, &d->x, NULL, s, b, &m->pre);
        memcpy(r->y->value, d->y.data + (size_t)s * ycols, (size_t)b * ycols * sizeof(float));
        mm_graph_forward(r->g);
        if (r->g->failed) {
            mm_eval_result_free(res);
            return mm_error(MM_ERR_ARG, "evaluation: %s", r->g->error);
        }
        loss += (double)r->loss->value[0] * b;
        const float *o = r->out->value;
        correct += count_correct(m, o, r->y->value, (long)b * pos, k, 1);
        units += !strcmp(m->loss_name, "binary_crossentropy") ? (long)b * pos * k : (long)b * pos;
        if (classify) topk += count_correct(m, o, r->y->value, (long)b * pos, k, top_k);
        if (with_confusion) {
            for (long i = 0; i < (long)b * pos; i++) {
                int truth = m->sparse_labels ? (int)r->y->value[i] : argmax(r->y->value + (size_t)i * k, k);
                res->confusion[(size_t)truth * k + argmax(o + (size_t)i * k, k)]++;
            }
        }
    }
    res->loss = loss / (double)n;
    res->accuracy = (double)correct / (double)units;
    res->top_k = top_k;
    res->top_k_accuracy = classify ? (double)topk / (double)units : res->accuracy;
    res->num_classes = with_confusion ? k : 0;
    res->count = n;
    if (!isfinite(res->loss)) return mm_error(MM_ERR_NUMERIC, "evaluation loss is %g", res->loss);
    return MM_OK;
}

void mm_eval_result_free(mm_eval_result *r) {
    if (!r) return;
    free(r->confusion);
    r->confusion = NULL;
}

mm_status mm_predict(mm_model *m, const mm_array *x, int batch_size, mm_array *out) {
    memset(out, 0, sizeof *out);
    if (!m || !m->n_layers) return mm_error(MM_ERR_STATE, "predict: empty model");
    int in[MM_MAX_DIMS], os[MM_MAX_DIMS + 1];
    int nd = mm_model_input_shape(m, in);
    if (!x || !x->data || x->ndim != nd + 1 || memcmp(x->shape + 1, in, (size_t)nd * sizeof(int)))
        {
        char a[64] = "?", b[64] = "";
        if (x && x->data)
            for (int i = 1, k = 0; i < x->ndim; i++) k += snprintf(a + k, sizeof a - (size_t)k, i > 1 ? "x%d" : "%d", x->shape[i]);
        for (int i = 0, k = 0; i < nd; i++) k += snprintf(b + k, sizeof b - (size_t)k, i ? "x%d" : "%d", in[i]);
        return mm_error(MM_ERR_SHAPE, "predict: examples of shape %s do not match the model's input %s", a, b);
    }
    long n = x->shape[0];
    if (batch_size <= 0) batch_size = 32;
    if (batch_size > n) batch_size = (int)n;
    if (n < 1) return mm_error(MM_ERR_ARG, "predict: no examples");
    mm_status st = ensure_run(m, &m->infer, batch_size, 0);
    if (st) return st;
    mm_run *r = &m->infer;
    os[0] = (int)n;
    int od = mm_model_output_shape(m, os + 1);
    if ((st = mm_array_alloc(out, od + 1, os))) return st;
    size_t per = out->size / (size_t)n;
    for (long s = 0; s < n; s += batch_size) {
        int b = (int)(n - s < batch_size ? n - s : batch_size);
        mm_graph_set_batch(r->g, b);
        mm_gather_rows(r->x->value, x, NULL, s, b, &m->pre);
        if (r->y) memset(r->y->value, 0, r->y->size * sizeof(float));
        mm_graph_forward(r->g);
        if (r->g->failed) {
            mm_array_free(out);
            return mm_error(MM_ERR_ARG, "predict: %s", r->g->error);
        }
        memcpy(out->data + (size_t)s * per, r->out->value, (size_t)b * per * sizeof(float));
    }
    return MM_OK;
}

/* Keras's validation_split takes the last fraction of the data, before shuffling. */
static void split_view(const mm_dataset *d, long from, long count, mm_dataset *view) {
    size_t xr = d->x.size / (size_t)d->x.shape[0], yr = d->y.size / (size_t)d->y.shape[0];
    *view = *d;
    view->x.shape[0] = view->y.shape[0] = (int)count;
    view->x.size = xr * (size_t)count;
    view->y.size = yr * (size_t)count;
    view->x.data = d->x.data + xr * (size_t)from;
    view->y.data = d->y.data + yr * (size_t)from;
}

mm_status mm_fit_with(mm_model *m, const mm_dataset *train, const mm_fit_args *a) {
    if (!m || !a) return mm_error(MM_ERR_ARG, "fit: NULL argument");
    if (!m->compiled) return mm_error(MM_ERR_STATE, "fit: compile the model first");
    mm_status st = check_data(m, train, "training");
    if (st) return st;
    int epochs = a->epochs > 0 ? a->epochs : 1;
    int batch = a->batch_size > 0 ? a->batch_size : 32;
    if (a->validation_split < 0 || a->validation_split >= 1)
        return mm_error(MM_ERR_ARG, "validation_split must be in [0, 1), got %g", a->validation_split);
    m->seed = a->seed;
    mm_dataset tr = *train, val = {0};
    const mm_dataset *valp = a->validation_data;
    long total = train->x.shape[0];
    if (a->validation_split > 0) {
        long nval = (long)(total * (double)a->validation_split);
        if (nval < 1 || nval >= total) return mm_error(MM_ERR_ARG, "validation_split %g leaves no training or validation data", a->validation_split);
        split_view(train, 0, total - nval, &tr);
        split_view(train, total - nval, nval, &val);
        valp = &val;
    }
    if (valp && (st = check_data(m, valp, "validation"))) return st;
    long n = tr.x.shape[0];
    if (batch > n) batch = (int)n;
    if ((st = ensure_run(m, &m->train, batch, 1))) return st;
    mm_run *r = &m->train;
    long *idx = malloc((size_t)n * sizeof(long));
    float *best = (a->restore_best_weights || a->early_stopping_patience) ? malloc((m->n_weights + m->n_state + 1) * sizeof(float)) : NULL;
    if (!idx || ((a->restore_best_weights || a->early_stopping_patience) && !best)) {
        free(idx), free(best);
        return mm_error(MM_ERR_NOMEM, "out of memory");
    }
    size_t ycols = tr.y.size / (size_t)tr.y.shape[0];
    int k = r->out->shape[r->out->ndim - 1];
    long pos = (long)(r->out->size / (size_t)r->out->shape[0] / (size_t)k); /* rows per example */
    int binary = !strcmp(m->loss_name, "binary_crossentropy");
    double best_metric = INFINITY;
    int since_best = 0;
    int start_epoch = a->initial_epoch > 0 ? a->initial_epoch : m->epochs_done;
    long nb = (n + batch - 1) / batch;
    for (int e = start_epoch; e < epochs && st == MM_OK; e++) {
        for (long i = 0; i < n; i++) idx[i] = i;
        if (a->shuffle >= 0) {
            /* Fisher-Yates from a per-epoch seed: resuming at epoch e reproduces the order. */
            mm_rng rng = {mm_hash64(a->seed * 0x9E3779B97F4A7C15ull + (uint64_t)e + 1)};
            for (long i = n - 1; i > 0; i--) {
                long j = (long)(mm_rng_next(&rng) % (uint64_t)(i + 1));
                long t = idx[i];
                idx[i] = idx[j], idx[j] = t;
            }
        }
        double t0 = now_seconds(), loss_sum = 0;
        long correct = 0, seen = 0, units = 0;
        int stop = 0;
        for (long bi = 0; bi < nb; bi++) {
            long s = bi * batch;
            int b = (int)(n - s < batch ? n - s : batch);
            mm_graph_set_batch(r->g, b);
            mm_gather_rows(r->x->value, &tr.x, idx, s, b, &m->pre);
            for (int i = 0; i < b; i++)
                memcpy(r->y->value + (size_t)i * ycols, tr.y.data + (size_t)idx[s + i] * ycols, ycols * sizeof(float));
            r->g->step = (uint64_t)m->step ^ (a->seed << 32);
            mm_graph_forward(r->g);
            if (r->g->failed) {
                st = mm_error(MM_ERR_ARG, "training batch %ld of epoch %d: %s", bi + 1, e + 1, r->g->error);
                break;
            }
            float loss = r->loss->value[0];
            if (!isfinite(loss)) {
                st = mm_error(MM_ERR_NUMERIC, "loss is %s at epoch %d, batch %ld: lower the learning rate or check the data",
                              isnan(loss) ? "NaN" : "infinite", e + 1, bi + 1);
                break;
            }
            /* Metrics before backward: the planner may reuse the label buffer after it. */
            correct += count_correct(m, r->out->value, r->y->value, (long)b * pos, k, 1);
            mm_graph_backward(r->g);
            mm_model_apply_gradients(m);
            m->step++;
            loss_sum += (double)loss * b;
            units += binary ? (long)b * pos * k : (long)b * pos;
            seen += b;
            if (a->callback) {
                mm_progress p = {.epoch = e + 1, .epochs = epochs, .batch = bi + 1, .batches = nb, .seen = seen,
                                 .loss = loss_sum / seen, .accuracy = (double)correct / units,
                                 .seconds = now_seconds() - t0};
                if (a->callback(&p, a->user)) {
                    stop = 1;
                    break;
                }
            }
        }
        if (st != MM_OK) break;
        if (stop) break; /* a cut-short epoch is not counted as done (resume repeats it) */
        m->epochs_done = e + 1;
        mm_progress p = {.epoch = e + 1, .epochs = epochs, .batch = nb, .batches = nb, .seen = seen,
                         .loss = seen ? loss_sum / seen : 0, .accuracy = units ? (double)correct / units : 0,
                         .epoch_end = 1};
        if (valp) {
            mm_eval_result vr;
            st = mm_evaluate(m, valp, batch, 1, &vr);
            mm_eval_result_free(&vr);
            if (st != MM_OK) break;
            p.has_val = 1;
            p.val_loss = vr.loss;
            p.val_accuracy = vr.accuracy;
        }
        p.seconds = now_seconds() - t0;
        double metric = valp ? p.val_loss : p.loss;
        if (metric < best_metric) {
            best_metric = metric;
            since_best = 0;
            p.improved = 1;
            if (best) {
                memcpy(best, m->weights, m->n_weights * sizeof(float));
                if (m->n_state) memcpy(best + m->n_weights, m->state, m->n_state * sizeof(float));
            }
        } else {
            since_best++;
        }
        if (a->checkpoint_path && (st = mm_model_save(m, a->checkpoint_path, 1)) != MM_OK) break;
        if (a->callback && a->callback(&p, a->user)) stop = 1;
        if (a->early_stopping_patience > 0 && since_best >= a->early_stopping_patience) stop = 1;
        if (stop) break;
    }
    if (st == MM_OK && best && a->restore_best_weights && isfinite(best_metric)) {
        memcpy(m->weights, best, m->n_weights * sizeof(float));
        if (m->n_state) memcpy(m->state, best + m->n_weights, m->n_state * sizeof(float));
    }
    free(idx);
    free(best);
    return st;
}
