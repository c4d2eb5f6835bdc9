/* SGD (momentum, Nesterov), Adam, AdamW and RMSprop with Keras's update rules and defaults,
 * global-norm clipping and learning-rate schedules. Updates run over the model's single
 * contiguous weight array, so one loop serves every parameter. */
#include "optim/optim.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

int mm_optimizer_kind_from_name(const char *name) {
    if (!name || !strcasecmp(name, "adam")) return MM_OPT_ADAM;
    if (!strcasecmp(name, "sgd")) return MM_OPT_SGD;
    if (!strcasecmp(name, "adamw")) return MM_OPT_ADAMW;
    if (!strcasecmp(name, "rmsprop")) return MM_OPT_RMSPROP;
    return -1;
}

const char *mm_optimizer_name(const mm_optimizer *o) {
    static const char *names[] = {"sgd", "adam", "adamw", "rmsprop"};
    return names[o->kind];
}

mm_status mm_optimizer_new(const mm_compile_args *a, size_t n, mm_optimizer **out) {
    *out = NULL;
    int kind = mm_optimizer_kind_from_name(a->optimizer);
    if (kind < 0) return mm_error(MM_ERR_ARG, "unknown optimizer '%s' (sgd, adam, adamw, rmsprop)", a->optimizer);
    int sched = MM_SCHED_CONSTANT;
    if (a->schedule && *a->schedule && strcasecmp(a->schedule, "constant")) {
        if (!strcasecmp(a->schedule, "step")) sched = MM_SCHED_STEP;
        else if (!strcasecmp(a->schedule, "cosine")) sched = MM_SCHED_COSINE;
        else return mm_error(MM_ERR_ARG, "unknown learning-rate schedule '%s' (constant, step, cosine)", a->schedule);
        if (a->decay_steps <= 0)
            return mm_error(MM_ERR_ARG, "schedule '%s' needs decay_steps > 0", a->schedule);
    }
    if (a->learning_rate < 0 || a->momentum < 0 || a->momentum >= 1 || a->global_clipnorm < 0 ||
        a->warmup_steps < 0 || a->weight_decay < 0)
        return mm_error(MM_ERR_ARG, "optimizer settings out of range (learning rate %g, momentum %g)",
                        a->learning_rate, a->momentum);
    mm_optimizer *o = calloc(1, sizeof *o);
    if (!o) return mm_error(MM_ERR_NOMEM, "out of memory creating optimizer");
    o->kind = kind;
    o->schedule = sched;
    float default_lr = kind == MM_OPT_SGD ? 0.01f : 0.001f;
    o->lr = a->learning_rate > 0 ? a->learning_rate : default_lr;
    o->momentum = a->momentum;
    o->nesterov = a->nesterov;
    o->beta_1 = a->beta_1 > 0 ? a->beta_1 : 0.9f;
    o->beta_2 = a->beta_2 > 0 ? a->beta_2 : 0.999f;
    o->epsilon = a->epsilon > 0 ? a->epsilon : 1e-7f;
    o->weight_decay = a->weight_decay > 0 ? a->weight_decay : (kind == MM_OPT_ADAMW ? 0.004f : 0.0f);
    o->rho = a->rho > 0 ? a->rho : 0.9f;
    o->global_clipnorm = a->global_clipnorm;
    o->warmup_steps = a->warmup_steps;
    o->decay_steps = a->decay_steps;
    o->decay_rate = a->decay_rate > 0 ? a->decay_rate : 0.5f;
    o->alpha = a->alpha;
    o->n = n;
    o->slot1 = calloc(n ? n : 1, sizeof(float));
    o->slot2 = calloc(n ? n : 1, sizeof(float));
    if (!o->slot1 || !o->slot2) {
        mm_optimizer_free(o);
        return mm_error(MM_ERR_NOMEM, "out of memory for optimizer state (%zu weights)", n);
    }
    *out = o;
    return MM_OK;
}

void mm_optimizer_free(mm_optimizer *o) {
    if (!o) return;
    free(o->slot1);
    free(o->slot2);
    free(o);
}

float mm_optimizer_lr(const mm_optimizer *o, long step) {
    if (step < o->warmup_steps) return o->lr * (float)(step + 1) / (float)o->warmup_steps;
    long s = step - o->warmup_steps;
    switch (o->schedule) {
    case MM_SCHED_STEP:
        return o->lr * powf(o->decay_rate, (float)(s / o->decay_steps));
    case MM_SCHED_COSINE: {
        double t = s < o->decay_steps ? (double)s / o->decay_steps : 1.0;
        return o->lr * (float)(o->alpha + (1 - o->alpha) * 0.5 * (1 + cos(3.14159265358979323846 * t)));
    }
    default:
        return o->lr;
    }
}

int mm_optimizer_slots(const mm_optimizer *o, float **slots, const char **names) {
    slots[0] = o->slot1;
    slots[1] = o->slot2;
    switch (o->kind) {
    case MM_OPT_SGD: names[0] = "velocity"; return o->momentum > 0 ? 1 : 0;
    case MM_OPT_RMSPROP: names[0] = "mean_square"; names[1] = "momentum"; return 2;
    default: names[0] = "m"; names[1] = "v"; return 2;
    }
}

void mm_optimizer_begin_step(mm_optimizer *o) {
    o->cur_lr = mm_optimizer_lr(o, o->step);
    o->step++;
    const double t = (double)o->step;
    /* Keras folds Adam's bias corrections into the step size ("epsilon hat" form). */
    o->cur_alpha = (float)(o->cur_lr * sqrt(1 - pow(o->beta_2, t)) / (1 - pow(o->beta_1, t)));
}

static inline void adam_span(const mm_optimizer *o, float *w, const float *g, float *m, float *v, long n) {
    const float b1 = o->beta_1, b2 = o->beta_2, eps = o->epsilon, alpha = o->cur_alpha;
    const float decay = o->kind == MM_OPT_ADAMW ? o->cur_lr * o->weight_decay : 0.0f;
#pragma omp simd
    for (long i = 0; i < n; i++) {
        w[i] -= decay * w[i];
        m[i] += (g[i] - m[i]) * (1 - b1);
        v[i] += (g[i] * g[i] - v[i]) * (1 - b2);
        w[i] -= alpha * m[i] / (sqrtf(v[i]) + eps);
    }
}

/* The update rules over one contiguous span, serially (element-wise: any split of a range
 * gives the same result). */
static void update_span(const mm_optimizer *o, float *w, const float *g, float *m, float *v, long n) {
    const float lr = o->cur_lr;
    switch (o->kind) {
    case MM_OPT_SGD:
        if (o->momentum == 0) {
            for (long i = 0; i < n; i++) w[i] -= lr * g[i];
        } else {
            const float mu = o->momentum;
            for (long i = 0; i < n; i++) {
                m[i] = mu * m[i] - lr * g[i];
                w[i] += o->nesterov ? mu * m[i] - lr * g[i] : m[i];
            }
        }
        break;
    case MM_OPT_ADAMW:
    case MM_OPT_ADAM:
        adam_span(o, w, g, m, v, n);
        break;
    case MM_OPT_RMSPROP: {
        const float rho = o->rho, eps = o->epsilon, mu = o->momentum;
        for (long i = 0; i < n; i++) {
            m[i] = rho * m[i] + (1 - rho) * g[i] * g[i];
            float step = lr * g[i] / sqrtf(m[i] + eps); /* Keras: epsilon inside the root */
            if (mu > 0) {
                v[i] = mu * v[i] + step;
                w[i] -= v[i];
            } else {
                w[i] -= step;
            }
        }
        break;
    }
    }
}

void mm_optimizer_update(mm_optimizer *o, float *w, float *g, size_t begin, size_t end) {
    const long n = (long)(end - begin);
    float *m = o->slot1 + begin, *v = o->slot2 + begin;
    w += begin, g += begin;
    /* Ranges under 1M weights (a fraction of a millisecond, memory-bound) stay on this thread:
     * a second thread saves little on a quiet machine, and on a busy one the join waits for a
     * descheduled thread (NeuMF's dense 420k-weight update made epochs 10x slower with 2
     * threads at a threshold of 32k). */
    const int nt = n >= (1L << 20) ? mm_get_threads() : 1;
    if (nt <= 1) {
        update_span(o, w, g, m, v, n);
        return;
    }
#pragma omp parallel for num_threads(nt) schedule(static)
    for (int t = 0; t < nt; t++) {
        long lo = n * t / nt, hi = n * (t + 1) / nt;
        update_span(o, w + lo, g + lo, m + lo, v + lo, hi - lo);
    }
}

void mm_optimizer_update_rows(mm_optimizer *o, float *w, float *g, size_t base, size_t d, const int *rows, int n) {
    float *m = o->slot1, *v = o->slot2;
    const int adam = o->kind == MM_OPT_ADAM || o->kind == MM_OPT_ADAMW;
    for (int k = 0; k < n; k++) { /* Adam inline: rows are short (bias tables: 1 value) */
        size_t b = base + (size_t)rows[k] * d;
        if (adam) adam_span(o, w + b, g + b, m + b, v + b, (long)d);
        else update_span(o, w + b, g + b, m + b, v + b, (long)d);
        for (size_t j = 0; j < d; j++) g[b + j] = 0;
    }
}

void mm_optimizer_step(mm_optimizer *o, float *w, float *g) {
    if (o->global_clipnorm > 0) {
        double ss = 0;
        for (size_t i = 0; i < o->n; i++) ss += (double)g[i] * g[i];
        mm_optimizer_clip(o, g, 0, o->n, ss);
    }
    mm_optimizer_begin_step(o);
    mm_optimizer_update(o, w, g, 0, o->n);
}

void mm_optimizer_clip(const mm_optimizer *o, float *g, size_t begin, size_t end, double sum_squares) {
    double norm = sqrt(sum_squares);
    if (o->global_clipnorm <= 0 || norm <= o->global_clipnorm) return;
    float s = (float)(o->global_clipnorm / norm);
    for (size_t i = begin; i < end; i++) g[i] *= s;
}
