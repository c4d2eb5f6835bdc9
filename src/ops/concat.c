/* Concatenation along one axis (counted including the batch dimension; negative from the
 * end). All inputs are batched or none is; batched inputs cannot be joined along the batch
 * axis (the output's batch would not follow the graph's batch).
 *
 * attrs: i[0] = axis (normalized, >= 0). */
#include "ops/ops.h"

#include <stdio.h>
#include <string.h>

/* A pure copy: below 256k values (1 MiB, tens of microseconds) a second thread saves little on a
 * quiet machine and on a busy one the join waits for a descheduled thread (NeuMF's [256, 136]
 * concatenation made epochs 10x slower with 2 threads at 32k). */
#define PAR_MIN (1 << 18)

static int nthreads(const mm_node *n) {
    return n->g && n->g->threads > 0 ? n->g->threads : mm_threads();
}

static void fmt_shape(char *buf, size_t len, int ndim, const int *shape) {
    size_t k = (size_t)snprintf(buf, len, "[");
    for (int i = 0; i < ndim && k < len; i++)
        k += (size_t)snprintf(buf + k, len - k, i ? ",%d" : "%d", shape[i]);
    if (k < len) snprintf(buf + k, len - k, "]");
}

static mm_status concat_infer(mm_node *n) {
    const mm_node *x0 = n->in[0];
    const int nd = x0->ndim, axis = n->a.i[0];
    if (axis < 0 || axis >= nd)
        return mm_error(MM_ERR_SHAPE, "concat: axis %d out of range for rank %d", n->a.i[1], nd);
    if (x0->batched && axis == 0)
        return mm_error(MM_ERR_SHAPE, "concat: cannot concatenate batched inputs along the batch axis");
    int total = 0;
    for (int i = 0; i < n->n_in; i++) {
        const mm_node *x = n->in[i];
        char s0[96], si[96];
        fmt_shape(s0, sizeof s0, x0->ndim, x0->shape);
        fmt_shape(si, sizeof si, x->ndim, x->shape);
        if (x->batched != x0->batched)
            return mm_error(MM_ERR_SHAPE, "concat: input %d is %sbatched but input 0 is %sbatched", i,
                            x->batched ? "" : "not ", x0->batched ? "" : "not ");
        if (x->ndim != nd)
            return mm_error(MM_ERR_SHAPE, "concat: input shapes %s and %s differ in rank", s0, si);
        for (int d = 0; d < nd; d++)
            if (d != axis && x->shape[d] != x0->shape[d])
                return mm_error(MM_ERR_SHAPE,
                                "concat: input shapes %s and %s differ in dimension %d (axis is %d)",
                                s0, si, d, axis);
        total += x->shape[axis];
    }
    n->ndim = nd;
    memcpy(n->shape, x0->shape, sizeof n->shape);
    n->shape[axis] = total;
    n->batched = x0->batched;
    return MM_OK;
}

/* outer = product of dims before axis (current shapes); input i's slab per outer index is
 * shape[axis] * inner. */
static void layout(const mm_node *n, size_t *outer, size_t *inner) {
    const int axis = n->a.i[0];
    *outer = 1;
    *inner = 1;
    for (int d = 0; d < axis; d++) *outer *= (size_t)n->shape[d];
    for (int d = axis + 1; d < n->ndim; d++) *inner *= (size_t)n->shape[d];
}

static void concat_forward(mm_node *n) {
    size_t outer, inner;
    layout(n, &outer, &inner);
    const size_t row = (size_t)n->shape[n->a.i[0]] * inner;
    const int nt = nthreads(n);
    size_t off = 0;
    for (int i = 0; i < n->n_in; i++) {
        const mm_node *x = n->in[i];
        const size_t slab = (size_t)x->shape[n->a.i[0]] * inner;
        const float *xv = x->value;
        float *y = n->value + off;
#pragma omp parallel for num_threads(nt) schedule(static) if(n->size > PAR_MIN)
        for (long o = 0; o < (long)outer; o++)
            memcpy(y + (size_t)o * row, xv + (size_t)o * slab, slab * sizeof(float));
        off += slab;
    }
}

static void concat_backward(mm_node *n) {
    size_t outer, inner;
    layout(n, &outer, &inner);
    const size_t row = (size_t)n->shape[n->a.i[0]] * inner;
    const int nt = nthreads(n);
    size_t off = 0;
    /* In input order: a node given twice is overwritten by its first slot, then accumulated. */
    for (int i = 0; i < n->n_in; i++) {
        const mm_node *x = n->in[i];
        const size_t slab = (size_t)x->shape[n->a.i[0]] * inner;
        float *dx = x->grad;
        const int acc = n->acc[i];
        const float *gy = n->grad + off;
        off += slab;
        if (!dx) continue;
#pragma omp parallel for num_threads(nt) schedule(static) if(n->size > PAR_MIN)
        for (long o = 0; o < (long)outer; o++) {
            const float *g = gy + (size_t)o * row;
            float *d = dx + (size_t)o * slab;
            if (acc)
                for (size_t j = 0; j < slab; j++) d[j] += g[j];
            else
                memcpy(d, g, slab * sizeof(float));
        }
    }
}

static const mm_op concat_op = {
    .name = "concat",
    .infer = concat_infer,
    .forward = concat_forward,
    .backward = concat_backward,
    .backward_reads = 0,
};

mm_node *mm_g_concat(mm_graph *g, int n, mm_node **xs, int axis) {
    if (!g) return NULL;
    if (n < 1 || n > MM_MAX_INPUTS || !xs) {
        mm_error(MM_ERR_ARG, "concat: %d inputs (1..%d supported)", n, MM_MAX_INPUTS);
        return NULL;
    }
    for (int i = 0; i < n; i++)
        if (!xs[i]) return NULL;
    mm_attrs a = {0};
    a.i[0] = axis < 0 ? axis + xs[0]->ndim : axis;
    a.i[1] = axis; /* as given, for messages */
    return mm_graph_op(g, &concat_op, n, xs, &a, "concat");
}
