/* reshape / flatten: same elements, new shape. When the input has no other consumer the
 * planner makes the output a view of the input's buffers (no copy); otherwise it copies. */
#include "ops/ops.h"

#include <string.h>

/* attrs: i[0] = ndim of the new shape (without batch when batched); the shape itself is
 * stored in the node's shape by infer from a[].i[1..]. */
static mm_status reshape_infer(mm_node *n) {
    mm_node *x = n->in[0];
    int nd = n->a.i[0];
    int off = x->batched ? 1 : 0;
    if (nd < 1 || nd + off > MM_MAX_DIMS) return mm_error(MM_ERR_SHAPE, "reshape: rank %d out of range", nd);
    size_t have = x->size / (x->batched ? (size_t)x->shape[0] : 1);
    size_t known = 1;
    int infer_at = -1;
    for (int i = 0; i < nd; i++) {
        int d = n->a.i[1 + i];
        if (d == -1) {
            if (infer_at >= 0) return mm_error(MM_ERR_SHAPE, "reshape: more than one -1 dimension");
            infer_at = i;
        } else if (d <= 0) {
            return mm_error(MM_ERR_SHAPE, "reshape: dimension %d is %d", i, d);
        } else {
            known *= (size_t)d;
        }
    }
    n->ndim = nd + off;
    if (off) n->shape[0] = x->shape[0];
    for (int i = 0; i < nd; i++) n->shape[off + i] = n->a.i[1 + i];
    if (infer_at >= 0) {
        if (have % known) return mm_error(MM_ERR_SHAPE, "reshape: %zu elements do not divide by %zu", have, known);
        n->shape[off + infer_at] = (int)(have / known);
        known *= have / known;
    }
    if (known != have)
        return mm_error(MM_ERR_SHAPE, "reshape: cannot reshape %zu elements into %zu", have, known);
    return MM_OK;
}

static void reshape_forward(mm_node *n) {
    if (!n->aliased) memcpy(n->value, n->in[0]->value, n->size * sizeof(float));
}

static void reshape_backward(mm_node *n) {
    float *dx = n->in[0]->grad;
    if (!dx || n->aliased) return; /* aliased: the consumers wrote straight into dx */
    if (!n->acc[0]) {
        memcpy(dx, n->grad, n->size * sizeof(float));
    } else {
        for (size_t i = 0; i < n->size; i++) dx[i] += n->grad[i];
    }
}

static const mm_op reshape_op = {
    .name = "reshape",
    .infer = reshape_infer,
    .forward = reshape_forward,
    .backward = reshape_backward,
    .backward_reads = 0,
    .view = 1,
};

mm_node *mm_g_reshape(mm_graph *g, mm_node *x, int ndim, const int *shape) {
    if (ndim < 1 || ndim > MM_MAX_DIMS - 1) {
        mm_error(MM_ERR_SHAPE, "reshape: rank %d out of range", ndim);
        return NULL;
    }
    mm_attrs a = {0};
    a.i[0] = ndim;
    for (int i = 0; i < ndim; i++) a.i[1 + i] = shape[i];
    mm_node *in[1] = {x};
    return mm_graph_op(g, &reshape_op, 1, in, &a, "reshape");
}

/* Keras's Flatten: keeps dimension 0 (the batch) and flattens the rest. */
mm_node *mm_g_flatten(mm_graph *g, mm_node *x) {
    if (!x) return NULL;
    mm_node *in[1] = {x};
    mm_attrs a = {0};
    if (x->batched) {
        a.i[0] = 1;
        a.i[1] = -1;
    } else {
        a.i[0] = 2;
        a.i[1] = x->shape[0];
        a.i[2] = -1;
    }
    return mm_graph_op(g, &reshape_op, 1, in, &a, "flatten");
}
