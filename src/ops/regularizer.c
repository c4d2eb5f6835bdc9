/* Keras's L1L2 kernel regularizer: l1 * sum|w| + l2 * sum w^2 as an unbatched scalar [1].
 * Backward: dw = g * (l1 * sign(w) + 2 * l2 * w), sign(0) = 0.
 *
 * The sums run over fixed blocks of BLOCK elements (partials in the workspace, combined in
 * order; fixed lanes inside a block), so the value does not depend on the thread count.
 *
 * attrs: f[0] = l1, f[1] = l2. */
#include "ops/ops.h"

#include <math.h>

#define PAR_MIN 32768
#define BLOCK 4096
#define LANES 8

static int nthreads(const mm_node *n) {
    return n->g && n->g->threads > 0 ? n->g->threads : mm_threads();
}

static mm_status l1l2_infer(mm_node *n) {
    float l1 = n->a.f[0], l2 = n->a.f[1];
    if (!(l1 >= 0.0f) || !(l2 >= 0.0f) || isinf(l1) || isinf(l2))
        return mm_error(MM_ERR_ARG, "l1l2: factors l1=%g and l2=%g must be finite and >= 0",
                        (double)l1, (double)l2);
    n->ndim = 1;
    n->shape[0] = 1;
    n->batched = 0;
    return MM_OK;
}

static size_t l1l2_work_bytes(const mm_node *n) {
    return (mm_cap_size(n->in[0]) + BLOCK - 1) / BLOCK * sizeof(double);
}

/* l1 * sum|w| + l2 * sum w^2 over one block; the sums in fixed lanes (mm_dot_lanes) so that
 * they vectorize where one serial chain would wait on every add. */
static double block_sum(const float *w, long n, double l1, double l2) {
    double s1 = 0;
    if (l1 != 0) { /* plain L2 (embedding lookups) skips this pass */
        double s[LANES] = {0};
        long i = 0;
        for (; i + LANES <= n; i += LANES)
            for (int l = 0; l < LANES; l++) s[l] += fabsf(w[i + l]);
        for (int l = 0; i < n; i++, l++) s[l] += fabsf(w[i]);
        for (int l = 0; l < LANES; l++) s1 += s[l];
    }
    return l1 * s1 + l2 * mm_dot_lanes(w, w, n);
}

/* part[k] = block_sum of block k, for blocks [k0, k1). */
static void sum_blocks(const float *w, size_t size, double l1, double l2, double *part, long k0, long k1) {
    for (long k = k0; k < k1; k++) {
        size_t i0 = (size_t)k * BLOCK, i1 = i0 + BLOCK < size ? i0 + BLOCK : size;
        part[k] = block_sum(w + i0, (long)(i1 - i0), l1, l2);
    }
}

static void l1l2_forward(mm_node *n) {
    const float *w = n->in[0]->value;
    const double l1 = n->a.f[0], l2 = n->a.f[1];
    const size_t size = n->in[0]->size;
    const long nb = (long)((size + BLOCK - 1) / BLOCK);
    double *part = n->work;
    const int nt = size > PAR_MIN ? nthreads(n) : 1;
    if (nt <= 1) { /* small (e.g. per-batch lookups): no parallel region at all */
        sum_blocks(w, size, l1, l2, part, 0, nb);
    } else {
#pragma omp parallel for num_threads(nt) schedule(static)
        for (int t = 0; t < nt; t++) sum_blocks(w, size, l1, l2, part, nb * t / nt, nb * (t + 1) / nt);
    }
    double s = 0;
    for (long k = 0; k < nb; k++) s += part[k];
    n->value[0] = (float)s;
}

/* dw = gl1 * sign(w) + gl2 * w over [lo, hi); branch-free so it vectorizes. */
static void grad_span(float *dw, const float *w, float gl1, float gl2, int acc, long lo, long hi) {
    if (gl1 == 0.0f) {
        for (long i = lo; i < hi; i++) dw[i] = (acc ? dw[i] : 0.0f) + gl2 * w[i];
        return;
    }
    for (long i = lo; i < hi; i++) {
        float sgn = (float)(w[i] > 0) - (float)(w[i] < 0);
        dw[i] = (acc ? dw[i] : 0.0f) + gl1 * sgn + gl2 * w[i];
    }
}

static void l1l2_backward(mm_node *n) {
    float *dw = n->in[0]->grad;
    if (!dw) return;
    const float *w = n->in[0]->value;
    const float g = n->grad[0], gl1 = g * n->a.f[0], gl2 = 2.0f * g * n->a.f[1];
    const int acc = n->acc[0];
    const long size = (long)n->in[0]->size;
    const int nt = nthreads(n);
    if (size <= PAR_MIN || nt <= 1) { /* small (e.g. per-batch lookups): no parallel region */
        grad_span(dw, w, gl1, gl2, acc, 0, size);
        return;
    }
#pragma omp parallel for num_threads(nt) schedule(static)
    for (int t = 0; t < nt; t++) grad_span(dw, w, gl1, gl2, acc, size * t / nt, size * (t + 1) / nt);
}

static const mm_op l1l2_op = {
    .name = "l1l2",
    .infer = l1l2_infer,
    .work_bytes = l1l2_work_bytes,
    .forward = l1l2_forward,
    .backward = l1l2_backward,
    .backward_reads = 1u,
};

mm_node *mm_g_l1l2(mm_graph *g, mm_node *w, float l1, float l2) {
    if (!g || !w) return NULL;
    mm_attrs a = {0};
    a.f[0] = l1;
    a.f[1] = l2;
    mm_node *in[1] = {w};
    return mm_graph_op(g, &l1l2_op, 1, in, &a, "l1l2");
}
