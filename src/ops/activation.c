/* Activations: relu, leaky_relu, sigmoid, tanh, gelu (exact erf form), gelu_tanh (the tanh
 * approximation: GPT-2's "gelu_new", PyTorch's gelu(approximate="tanh")), and softmax /
 * log_softmax over the last axis (max-subtracted, numerically stable).
 *
 * Backward of relu, sigmoid, tanh, softmax and log_softmax reads only the op's own output,
 * so the planner may free the input early; gelu and gelu_tanh read the derivative their
 * forward saved, nothing else. leaky_relu reads its input.
 *
 * attrs: leaky_relu f[0] = alpha. */
#include "ops/fastexp.h"
#include "ops/gelu.h"
#include "ops/ops.h"

#include <math.h>
#include <string.h>

#define PAR_MIN 32768

static int nthreads(const mm_node *n) {
    return n->g && n->g->threads > 0 ? n->g->threads : mm_threads();
}

static mm_status same_infer(mm_node *n) {
    mm_node *x = n->in[0];
    n->ndim = x->ndim;
    memcpy(n->shape, x->shape, sizeof n->shape);
    n->batched = x->batched;
    return MM_OK;
}

/* Element-wise loop over the current size, parallel when large. */
#define EACH(n, body)                                                                         \
    do {                                                                                      \
        const long size_ = (long)(n)->size;                                                   \
        const int nt_ = nthreads(n);                                                          \
        _Pragma("omp parallel for simd num_threads(nt_) schedule(static) if(size_ > PAR_MIN)")      \
        for (long i = 0; i < size_; i++) { body; }                                            \
    } while (0)

/* dx (=|+=) expression, by n->acc[0]. */
#define GRAD_EACH(n, expr)                                                                    \
    do {                                                                                      \
        float *dx = (n)->in[0]->grad;                                                         \
        if (!dx) return;                                                                      \
        if ((n)->acc[0]) EACH(n, dx[i] += (expr));                                            \
        else EACH(n, dx[i] = (expr));                                                         \
    } while (0)

/* ------------------------------------------------------------------ relu */

static void relu_forward(mm_node *n) {
    const float *x = n->in[0]->value;
    float *y = n->value;
    EACH(n, y[i] = x[i] > 0 ? x[i] : 0.0f);
}

static void relu_backward(mm_node *n) {
    const float *y = n->value, *gy = n->grad;
    GRAD_EACH(n, y[i] > 0 ? gy[i] : 0.0f);
}

static const mm_op relu_op = {
    .name = "relu",
    .infer = same_infer,
    .forward = relu_forward,
    .backward = relu_backward,
    .backward_reads = MM_READS_OUTPUT,
};

/* ------------------------------------------------------------------ leaky_relu */

static void leaky_forward(mm_node *n) {
    const float *x = n->in[0]->value;
    const float alpha = n->a.f[0];
    float *y = n->value;
    EACH(n, y[i] = x[i] > 0 ? x[i] : alpha * x[i]);
}

static void leaky_backward(mm_node *n) {
    const float *x = n->in[0]->value, *gy = n->grad;
    const float alpha = n->a.f[0];
    GRAD_EACH(n, x[i] > 0 ? gy[i] : alpha * gy[i]);
}

static const mm_op leaky_relu_op = {
    .name = "leaky_relu",
    .infer = same_infer,
    .forward = leaky_forward,
    .backward = leaky_backward,
    .backward_reads = 1u,
};

/* ------------------------------------------------------------------ sigmoid */

static inline float sigmoidf(float x) {
    if (x >= 0) return 1.0f / (1.0f + expf(-x));
    float e = expf(x);
    return e / (1.0f + e);
}

static void sigmoid_forward(mm_node *n) {
    const float *x = n->in[0]->value;
    float *y = n->value;
    EACH(n, y[i] = sigmoidf(x[i]));
}

static void sigmoid_backward(mm_node *n) {
    const float *y = n->value, *gy = n->grad;
    GRAD_EACH(n, gy[i] * y[i] * (1.0f - y[i]));
}

static const mm_op sigmoid_op = {
    .name = "sigmoid",
    .infer = same_infer,
    .forward = sigmoid_forward,
    .backward = sigmoid_backward,
    .backward_reads = MM_READS_OUTPUT,
};

/* ------------------------------------------------------------------ tanh */

static void tanh_forward(mm_node *n) {
    const float *x = n->in[0]->value;
    float *y = n->value;
    EACH(n, y[i] = tanhf(x[i]));
}

static void tanh_backward(mm_node *n) {
    const float *y = n->value, *gy = n->grad;
    GRAD_EACH(n, gy[i] * (1.0f - y[i] * y[i]));
}

static const mm_op tanh_op = {
    .name = "tanh",
    .infer = same_infer,
    .forward = tanh_forward,
    .backward = tanh_backward,
    .backward_reads = MM_READS_OUTPUT,
};

/* ------------------------------------------------------------------ gelu */

/* Both GELUs store dy/dx in n->saved during a training forward, where it costs little (the
 * exponential is shared with the function itself), so the backward is one multiply and the
 * input need not be kept: recomputing erf and exp there was 2% of GPT training. */

/* Elements of the output at the batch capacity (the saved derivative's size). */
static size_t gelu_saved_bytes(const mm_node *n) { return mm_cap_size(n) * sizeof(float); }

static void gelu_grad_backward(mm_node *n) {
    const float *d = n->saved, *gy = n->grad;
    GRAD_EACH(n, gy[i] * d[i]);
}

/* y = gelu(x) (ops/gelu.h); training keeps dy/dx for the backward. */
static void gelu_forward(mm_node *n) {
    const float *x = n->in[0]->value;
    float *y = n->value, *d = n->saved;
    if (!n->runs_backward) {
        EACH(n, y[i] = mm_gelu(x[i]));
        return;
    }
    EACH(n, y[i] = mm_gelu_grad(x[i], &d[i]));
}

static const mm_op gelu_op = {
    .name = "gelu",
    .infer = same_infer,
    .saved_bytes = gelu_saved_bytes,
    .forward = gelu_forward,
    .backward = gelu_grad_backward,
    .backward_reads = 0,
};

/* ------------------------------------------------------------------ gelu_tanh */

/* y = 0.5 x (1 + tanh(u)), u = sqrt(2/pi) (x + 0.044715 x^3);
 * dy/dx = 0.5 (1 + t) + 0.5 x (1 - t^2) sqrt(2/pi) (1 + 3 * 0.044715 x^2), t = tanh(u). */
#define SQRT_2_OVER_PI 0.79788456080286535588f
#define GELU_TANH_C 0.044715f

static inline float gelu_tanh_f(float x) {
    return 0.5f * x * (1.0f + mm_fast_tanhf(SQRT_2_OVER_PI * (x + GELU_TANH_C * x * x * x)));
}

static void gelu_tanh_forward(mm_node *n) {
    const float *x = n->in[0]->value;
    float *y = n->value, *d = n->saved;
    if (!n->runs_backward) {
        EACH(n, y[i] = gelu_tanh_f(x[i]));
        return;
    }
    EACH(n, {
        const float x2 = x[i] * x[i];
        const float t = mm_fast_tanhf(SQRT_2_OVER_PI * x[i] * (1.0f + GELU_TANH_C * x2));
        y[i] = 0.5f * x[i] * (1.0f + t);
        d[i] = 0.5f * (1.0f + t) + 0.5f * x[i] * (1.0f - t * t) * SQRT_2_OVER_PI * (1.0f + 3.0f * GELU_TANH_C * x2);
    });
}

static const mm_op gelu_tanh_op = {
    .name = "gelu_tanh",
    .infer = same_infer,
    .saved_bytes = gelu_saved_bytes,
    .forward = gelu_tanh_forward,
    .backward = gelu_grad_backward,
    .backward_reads = 0,
};

/* ------------------------------------------------------------------ softmax / log_softmax */

/* One row of softmax (logp = 0) or log_softmax (logp = 1); y may alias x. */
static void softmax_row(const float *xr, float *yr, size_t k, int logp) {
    float m = xr[0];
    for (size_t j = 1; j < k; j++)
        if (xr[j] > m) m = xr[j];
    double s = 0;
    if (logp) {
        for (size_t j = 0; j < k; j++) s += expf(xr[j] - m);
        float lse = m + (float)log(s);
        for (size_t j = 0; j < k; j++) yr[j] = xr[j] - lse;
    } else {
        for (size_t j = 0; j < k; j++) {
            yr[j] = expf(xr[j] - m);
            s += yr[j];
        }
        float inv = (float)(1.0 / s);
        for (size_t j = 0; j < k; j++) yr[j] *= inv;
    }
}

static void softmax_rows(mm_node *n, int logp) {
    const float *x = n->in[0]->value;
    float *y = n->value;
    const size_t k = (size_t)n->shape[n->ndim - 1];
    const long rows = (long)(n->size / k);
    const int nt = nthreads(n);
#pragma omp parallel for num_threads(nt) schedule(static) if(n->size > PAR_MIN)
    for (long r = 0; r < rows; r++) softmax_row(x + (size_t)r * k, y + (size_t)r * k, k, logp);
}

static void softmax_forward(mm_node *n) { softmax_rows(n, 0); }
static void log_softmax_forward(mm_node *n) { softmax_rows(n, 1); }

/* softmax: dx = y * (gy - sum(gy * y)); log_softmax: dx = gy - exp(y) * sum(gy). */
static void softmax_grad_rows(mm_node *n, int logp) {
    float *dx = n->in[0]->grad;
    if (!dx) return;
    const float *y = n->value, *gy = n->grad;
    const int acc = n->acc[0];
    const size_t k = (size_t)n->shape[n->ndim - 1];
    const long rows = (long)(n->size / k);
    const int nt = nthreads(n);
#pragma omp parallel for num_threads(nt) schedule(static) if(n->size > PAR_MIN)
    for (long r = 0; r < rows; r++) {
        const float *yr = y + (size_t)r * k, *gr = gy + (size_t)r * k;
        float *dr = dx + (size_t)r * k;
        double s = 0;
        if (logp) {
            for (size_t j = 0; j < k; j++) s += gr[j];
            for (size_t j = 0; j < k; j++) {
                float v = gr[j] - expf(yr[j]) * (float)s;
                dr[j] = acc ? dr[j] + v : v;
            }
        } else {
            for (size_t j = 0; j < k; j++) s += (double)gr[j] * yr[j];
            for (size_t j = 0; j < k; j++) {
                float v = yr[j] * (gr[j] - (float)s);
                dr[j] = acc ? dr[j] + v : v;
            }
        }
    }
}

static void softmax_backward(mm_node *n) { softmax_grad_rows(n, 0); }
static void log_softmax_backward(mm_node *n) { softmax_grad_rows(n, 1); }

static const mm_op softmax_op = {
    .name = "softmax",
    .infer = same_infer,
    .forward = softmax_forward,
    .backward = softmax_backward,
    .backward_reads = MM_READS_OUTPUT,
};

static const mm_op log_softmax_op = {
    .name = "log_softmax",
    .infer = same_infer,
    .forward = log_softmax_forward,
    .backward = log_softmax_backward,
    .backward_reads = MM_READS_OUTPUT,
};

/* ------------------------------------------------------------------ builders */

static mm_node *unary(mm_graph *g, const mm_op *op, mm_node *x, float alpha) {
    if (!g || !x) return NULL;
    mm_attrs a = {0};
    a.f[0] = alpha;
    mm_node *in[1] = {x};
    return mm_graph_op(g, op, 1, in, &a, op->name);
}

mm_node *mm_g_relu(mm_graph *g, mm_node *x) { return unary(g, &relu_op, x, 0); }
mm_node *mm_g_leaky_relu(mm_graph *g, mm_node *x, float alpha) { return unary(g, &leaky_relu_op, x, alpha); }
mm_node *mm_g_sigmoid(mm_graph *g, mm_node *x) { return unary(g, &sigmoid_op, x, 0); }
mm_node *mm_g_tanh(mm_graph *g, mm_node *x) { return unary(g, &tanh_op, x, 0); }
mm_node *mm_g_gelu(mm_graph *g, mm_node *x) { return unary(g, &gelu_op, x, 0); }
mm_node *mm_g_softmax(mm_graph *g, mm_node *x) { return unary(g, &softmax_op, x, 0); }
mm_node *mm_g_log_softmax(mm_graph *g, mm_node *x) { return unary(g, &log_softmax_op, x, 0); }

/* The same functions on one plain vector, in place: for the KV-cache decoder, which runs a
 * model's layers outside the graph and must compute exactly what the ops compute. */
static void relu_vec(float *v, size_t n, float a) {
    (void)a;
    for (size_t i = 0; i < n; i++) v[i] = v[i] > 0 ? v[i] : 0.0f;
}
static void leaky_vec(float *v, size_t n, float a) {
    for (size_t i = 0; i < n; i++) v[i] = v[i] > 0 ? v[i] : a * v[i];
}
static void sigmoid_vec(float *v, size_t n, float a) {
    (void)a;
    for (size_t i = 0; i < n; i++) v[i] = sigmoidf(v[i]);
}
static void tanh_vec(float *v, size_t n, float a) {
    (void)a;
    for (size_t i = 0; i < n; i++) v[i] = tanhf(v[i]);
}
static void gelu_vec(float *v, size_t n, float a) {
    (void)a;
    mm_gelu_span(v, v, NULL, n);
}
static void gelu_tanh_vec(float *v, size_t n, float a) {
    (void)a;
#pragma omp simd
    for (size_t i = 0; i < n; i++) v[i] = gelu_tanh_f(v[i]);
}
static void softmax_vec(float *v, size_t n, float a) {
    (void)a;
    softmax_row(v, v, n, 0);
}
static void log_softmax_vec(float *v, size_t n, float a) {
    (void)a;
    softmax_row(v, v, n, 1);
}

static const struct {
    const char *name;
    const mm_op *op;
    void (*apply)(float *v, size_t n, float alpha);
} activations[] = {
    {"relu", &relu_op, relu_vec},
    {"leaky_relu", &leaky_relu_op, leaky_vec},
    {"sigmoid", &sigmoid_op, sigmoid_vec},
    {"tanh", &tanh_op, tanh_vec},
    {"gelu", &gelu_op, gelu_vec},
    {"gelu_tanh", &gelu_tanh_op, gelu_tanh_vec},
    {"softmax", &softmax_op, softmax_vec},
    {"log_softmax", &log_softmax_op, log_softmax_vec},
};

static int is_linear(const char *name) { return !name || !*name || strcmp(name, "linear") == 0; }

int mm_activation_known(const char *name) {
    if (is_linear(name)) return 1;
    for (size_t i = 0; i < sizeof activations / sizeof activations[0]; i++)
        if (strcmp(name, activations[i].name) == 0) return 1;
    return 0;
}

mm_node *mm_g_activation(mm_graph *g, mm_node *x, const char *name, float alpha) {
    if (!g || !x) return NULL;
    if (is_linear(name)) return x;
    for (size_t i = 0; i < sizeof activations / sizeof activations[0]; i++)
        if (strcmp(name, activations[i].name) == 0) return unary(g, activations[i].op, x, alpha);
    mm_error(MM_ERR_ARG, "unknown activation '%s'", name);
    return NULL;
}

mm_status mm_activation_apply(const char *name, float alpha, float *v, size_t n) {
    if (is_linear(name)) return MM_OK;
    for (size_t i = 0; i < sizeof activations / sizeof activations[0]; i++)
        if (strcmp(name, activations[i].name) == 0) {
            activations[i].apply(v, n, alpha);
            return MM_OK;
        }
    return mm_error(MM_ERR_ARG, "unknown activation '%s'", name);
}
