/* Row-wise dot product over the last axis: a, b [..., K] (same shape) -> y [..., 1],
 * y[r] = sum_k a[r, k] * b[r, k]. Backward: da[r, k] = gy[r] * b[r, k], db[r, k] = gy[r] * a[r, k].
 *
 * Keras's Dot layer (matrix factorization's <p_u, q_i>) as one op: multiply-then-sum would
 * store the [.., K] product and pass over it twice more in each direction. Each row sums in
 * double over 8 fixed lanes (k mod 8), combined in lane order: the same result for any
 * thread count, and the lanes vectorize where one serial chain would wait on every add. */
#include "ops/ops.h"

#include <string.h>

#define PAR_MIN 32768
#define LANES 8

static int nthreads(const mm_node *n) {
    return n->g && n->g->threads > 0 ? n->g->threads : mm_threads();
}

static mm_status dot_infer(mm_node *n) {
    const mm_node *a = n->in[0], *b = n->in[1];
    if (a->ndim != b->ndim || memcmp(a->shape, b->shape, sizeof(int) * (size_t)a->ndim) || a->batched != b->batched)
        return mm_error(MM_ERR_SHAPE, "dot: inputs must have the same shape");
    if (a->ndim < 1) return mm_error(MM_ERR_SHAPE, "dot: inputs need at least one axis");
    n->ndim = a->ndim;
    memcpy(n->shape, a->shape, sizeof(int) * (size_t)a->ndim);
    n->shape[a->ndim - 1] = 1;
    n->batched = a->batched;
    return MM_OK;
}

double mm_dot_lanes(const float *a, const float *b, long k) {
    double s[LANES] = {0};
    long i = 0;
    for (; i + LANES <= k; i += LANES)
        for (int l = 0; l < LANES; l++) s[l] += (double)a[i + l] * b[i + l];
    for (int l = 0; i < k; i++, l++) s[l] += (double)a[i] * b[i];
    double t = 0;
    for (int l = 0; l < LANES; l++) t += s[l];
    return t;
}

static void dot_rows(const float *a, const float *b, float *y, long k, long lo, long hi) {
    for (long r = lo; r < hi; r++) y[r] = (float)mm_dot_lanes(a + r * k, b + r * k, k);
}

static void dot_forward(mm_node *n) {
    const float *a = n->in[0]->value, *b = n->in[1]->value;
    const long k = n->in[0]->shape[n->in[0]->ndim - 1], rows = (long)n->size;
    const int nt = rows * k <= PAR_MIN ? 1 : nthreads(n);
    if (nt <= 1) { /* per-batch lookups: no parallel region */
        dot_rows(a, b, n->value, k, 0, rows);
        return;
    }
#pragma omp parallel for num_threads(nt) schedule(static)
    for (int t = 0; t < nt; t++) dot_rows(a, b, n->value, k, rows * t / nt, rows * (t + 1) / nt);
}

/* dx[r, :] (+)= gy[r] * other[r, :] over rows [lo, hi). */
static void grad_rows(float *dx, const float *other, const float *gy, long k, int acc, long lo, long hi) {
    for (long r = lo; r < hi; r++) {
        const float s = gy[r], *o = other + r * k;
        float *d = dx + r * k;
        if (acc)
            for (long i = 0; i < k; i++) d[i] += s * o[i];
        else
            for (long i = 0; i < k; i++) d[i] = s * o[i];
    }
}

static void dot_backward(mm_node *n) {
    const long k = n->in[0]->shape[n->in[0]->ndim - 1], rows = (long)n->size;
    const int nt = rows * k <= PAR_MIN ? 1 : nthreads(n);
    /* Input 0 first: when a and b are the same node, input 1 accumulates onto it. */
    for (int w = 0; w < 2; w++) {
        float *dx = n->in[w]->grad;
        if (!dx) continue;
        const float *other = n->in[1 - w]->value;
        const int acc = n->acc[w];
        if (nt <= 1) {
            grad_rows(dx, other, n->grad, k, acc, 0, rows);
            continue;
        }
#pragma omp parallel for num_threads(nt) schedule(static)
        for (int t = 0; t < nt; t++) grad_rows(dx, other, n->grad, k, acc, rows * t / nt, rows * (t + 1) / nt);
    }
}

static const mm_op dot_op = {
    .name = "dot",
    .infer = dot_infer,
    .forward = dot_forward,
    .backward = dot_backward,
    .backward_reads = 3u,
};

mm_node *mm_g_dot(mm_graph *g, mm_node *a, mm_node *b) {
    if (!g || !a || !b) return NULL;
    mm_node *in[2] = {a, b};
    return mm_graph_op(g, &dot_op, 2, in, NULL, "dot");
}
