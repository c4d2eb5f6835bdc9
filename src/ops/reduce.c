/* sum / mean over one axis (counted including the batch dimension; negative from the end),
 * with keepdims, or over everything (MM_AXIS_ALL -> unbatched [1]).
 *
 * Reducing a batched input over axis 0 gives an unbatched output; the mean divides by the
 * current batch. Each output element is summed sequentially in a fixed order (in double);
 * the full reduction sums fixed blocks of BLOCK elements in parallel and combines them in
 * order, so results do not depend on the thread count.
 *
 * attrs: i[0] = axis (normalized) or MM_AXIS_ALL, i[1] = keepdims, i[2] = 1 for mean. */
#include "ops/ops.h"

#include <string.h>

#define PAR_MIN 32768
#define BLOCK 4096

static int nthreads(const mm_node *n) {
    return n->g && n->g->threads > 0 ? n->g->threads : mm_threads();
}

static mm_status reduce_infer(mm_node *n) {
    const mm_node *x = n->in[0];
    const int axis = n->a.i[0], keep = n->a.i[1];
    const char *name = n->a.i[2] ? "mean" : "sum";
    if (axis == MM_AXIS_ALL) {
        n->ndim = 1;
        n->shape[0] = 1;
        n->batched = 0;
        return MM_OK;
    }
    if (axis < 0 || axis >= x->ndim)
        return mm_error(MM_ERR_SHAPE, "%s: axis %d out of range for rank %d", name, n->a.i[3],
                        x->ndim);
    int nd = 0;
    for (int d = 0; d < x->ndim; d++) {
        if (d == axis) {
            if (keep) n->shape[nd++] = 1;
        } else {
            n->shape[nd++] = x->shape[d];
        }
    }
    if (nd == 0) n->shape[nd++] = 1;
    n->ndim = nd;
    n->batched = x->batched && axis != 0;
    return MM_OK;
}

static size_t reduce_work_bytes(const mm_node *n) {
    if (n->a.i[0] != MM_AXIS_ALL) return 0;
    return (mm_cap_size(n->in[0]) + BLOCK - 1) / BLOCK * sizeof(double);
}

/* outer x len x inner around the reduced axis, from the input's current shape. */
static void layout(const mm_node *n, size_t *outer, size_t *len, size_t *inner) {
    const mm_node *x = n->in[0];
    const int axis = n->a.i[0];
    *outer = *inner = 1;
    for (int d = 0; d < axis; d++) *outer *= (size_t)x->shape[d];
    *len = (size_t)x->shape[axis];
    for (int d = axis + 1; d < x->ndim; d++) *inner *= (size_t)x->shape[d];
}

static void reduce_forward(mm_node *n) {
    const mm_node *x = n->in[0];
    const float *xv = x->value;
    const int nt = nthreads(n);
    if (n->a.i[0] == MM_AXIS_ALL) {
        const size_t size = x->size;
        const long nb = (long)((size + BLOCK - 1) / BLOCK);
        double *part = n->work;
#pragma omp parallel for num_threads(nt) schedule(static) if(size > PAR_MIN)
        for (long k = 0; k < nb; k++) {
            size_t i0 = (size_t)k * BLOCK, i1 = i0 + BLOCK < size ? i0 + BLOCK : size;
            double s = 0;
            for (size_t i = i0; i < i1; i++) s += xv[i];
            part[k] = s;
        }
        double s = 0;
        for (long k = 0; k < nb; k++) s += part[k];
        n->value[0] = (float)(n->a.i[2] ? s / (double)size : s);
        return;
    }
    size_t outer, len, inner;
    layout(n, &outer, &len, &inner);
    const double scale = n->a.i[2] ? 1.0 / (double)len : 1.0;
    float *y = n->value;
    const long total = (long)(outer * inner);
#pragma omp parallel for num_threads(nt) schedule(static) if(x->size > PAR_MIN)
    for (long j = 0; j < total; j++) {
        size_t o = (size_t)j / inner, i = (size_t)j % inner;
        const float *p = xv + o * len * inner + i;
        double s = 0;
        for (size_t l = 0; l < len; l++) s += p[l * inner];
        y[j] = (float)(s * scale);
    }
}

static void reduce_backward(mm_node *n) {
    const mm_node *x = n->in[0];
    float *dx = x->grad;
    if (!dx) return;
    const int acc = n->acc[0];
    const int nt = nthreads(n);
    const float *gy = n->grad;
    if (n->a.i[0] == MM_AXIS_ALL) {
        const float v = n->a.i[2] ? gy[0] / (float)x->size : gy[0];
        const long size = (long)x->size;
#pragma omp parallel for num_threads(nt) schedule(static) if(size > PAR_MIN)
        for (long i = 0; i < size; i++) dx[i] = acc ? dx[i] + v : v;
        return;
    }
    size_t outer, len, inner;
    layout(n, &outer, &len, &inner);
    const float scale = n->a.i[2] ? 1.0f / (float)len : 1.0f;
#pragma omp parallel for num_threads(nt) schedule(static) if(x->size > PAR_MIN)
    for (long o = 0; o < (long)outer; o++) {
        const float *g = gy + (size_t)o * inner;
        float *d = dx + (size_t)o * len * inner;
        for (size_t l = 0; l < len; l++, d += inner)
            for (size_t i = 0; i < inner; i++) d[i] = acc ? d[i] + g[i] * scale : g[i] * scale;
    }
}

static const mm_op sum_op = {
    .name = "sum",
    .infer = reduce_infer,
    .work_bytes = reduce_work_bytes,
    .forward = reduce_forward,
    .backward = reduce_backward,
    .backward_reads = 0,
};

static const mm_op mean_op = {
    .name = "mean",
    .infer = reduce_infer,
    .work_bytes = reduce_work_bytes,
    .forward = reduce_forward,
    .backward = reduce_backward,
    .backward_reads = 0,
};

static mm_node *reduce(mm_graph *g, const mm_op *op, int mean, mm_node *x, int axis, int keepdims) {
    if (!g || !x) return NULL;
    mm_attrs a = {0};
    a.i[0] = axis == MM_AXIS_ALL ? MM_AXIS_ALL : axis < 0 ? axis + x->ndim : axis;
    a.i[1] = keepdims ? 1 : 0;
    a.i[2] = mean;
    a.i[3] = axis; /* as given, for messages */
    mm_node *in[1] = {x};
    return mm_graph_op(g, op, 1, in, &a, op->name);
}

mm_node *mm_g_sum(mm_graph *g, mm_node *x, int axis, int keepdims) {
    return reduce(g, &sum_op, 0, x, axis, keepdims);
}

mm_node *mm_g_mean(mm_graph *g, mm_node *x, int axis, int keepdims) {
    return reduce(g, &mean_op, 1, x, axis, keepdims);
}
