/* nonzero: 1 where x != 0, else 0 (padding masks from id sequences). Not differentiable: it
 * passes no gradient back. */
#include "ops/ops.h"

#include <string.h>

static mm_status nonzero_infer(mm_node *n) {
    n->ndim = n->in[0]->ndim;
    memcpy(n->shape, n->in[0]->shape, sizeof n->shape);
    n->needs_grad = 0;
    return MM_OK;
}

static void nonzero_forward(mm_node *n) {
    const float *x = n->in[0]->value;
    for (size_t i = 0; i < n->size; i++) n->value[i] = x[i] != 0.0f ? 1.0f : 0.0f;
}

static void nonzero_backward(mm_node *n) { (void)n; }

static const mm_op nonzero_op = {
    .name = "nonzero",
    .infer = nonzero_infer,
    .forward = nonzero_forward,
    .backward = nonzero_backward,
    .backward_reads = 0,
};

mm_node *mm_g_nonzero(mm_graph *g, mm_node *x) {
    mm_node *in[1] = {x};
    return mm_graph_op(g, &nonzero_op, 1, in, NULL, NULL);
}
