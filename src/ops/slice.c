/* slice: a contiguous range [begin, begin + size) of the last axis. */
#include "ops/ops.h"

#include <string.h>

/* attrs: i[0] begin, i[1] size */
static mm_status slice_infer(mm_node *n) {
    mm_node *x = n->in[0];
    int last = x->shape[x->ndim - 1], b = n->a.i[0], sz = n->a.i[1];
    if (b < 0 || sz < 1 || b + sz > last)
        return mm_error(MM_ERR_SHAPE, "slice: range [%d, %d) outside the last axis of size %d", b, b + sz, last);
    n->ndim = x->ndim;
    memcpy(n->shape, x->shape, sizeof n->shape);
    n->shape[n->ndim - 1] = sz;
    return MM_OK;
}

static void slice_forward(mm_node *n) {
    const mm_node *x = n->in[0];
    const size_t last = (size_t)x->shape[x->ndim - 1], rows = x->size / last, sz = (size_t)n->a.i[1];
    for (size_t r = 0; r < rows; r++) memcpy(n->value + r * sz, x->value + r * last + n->a.i[0], sz * sizeof(float));
}

static void slice_backward(mm_node *n) {
    mm_node *x = n->in[0];
    if (!x->grad) return;
    const size_t last = (size_t)x->shape[x->ndim - 1], rows = x->size / last, sz = (size_t)n->a.i[1];
    if (!n->acc[0]) memset(x->grad, 0, x->size * sizeof(float));
    for (size_t r = 0; r < rows; r++) {
        float *d = x->grad + r * last + n->a.i[0];
        const float *g = n->grad + r * sz;
        for (size_t k = 0; k < sz; k++) d[k] += g[k];
    }
}

static const mm_op slice_op = {
    .name = "slice",
    .infer = slice_infer,
    .forward = slice_forward,
    .backward = slice_backward,
    .backward_reads = 0,
};

mm_node *mm_g_slice(mm_graph *g, mm_node *x, int begin, int size) {
    mm_attrs a = {0};
    a.i[0] = begin;
    a.i[1] = size;
    mm_node *in[1] = {x};
    return mm_graph_op(g, &slice_op, 1, in, &a, NULL);
}
