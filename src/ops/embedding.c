/* embedding: out[..., D] = table[ids[...]], ids stored as floats (exact up to 2^24).
 * Backward adds each output row's gradient into its table row. When the table carries a
 * rowset (model parameters), only touched rows are written and recorded, so a step costs
 * O(batch x D) however large the table; the optimizer updates those rows and re-zeroes them.
 * Without a rowset (plain graphs, tests) the gradient is a dense overwrite/accumulate. */
#include "ops/ops.h"

#include <math.h>
#include <string.h>

static mm_status emb_infer(mm_node *n) {
    mm_node *ids = n->in[0], *t = n->in[1];
    if (t->ndim != 2) return mm_error(MM_ERR_SHAPE, "embedding: table must be [rows, dim], got rank %d", t->ndim);
    if (ids->ndim + 1 > MM_MAX_DIMS) return mm_error(MM_ERR_SHAPE, "embedding: ids of rank %d are too deep", ids->ndim);
    n->ndim = ids->ndim + 1;
    memcpy(n->shape, ids->shape, sizeof(int) * (size_t)ids->ndim);
    n->shape[ids->ndim] = t->shape[1];
    return MM_OK;
}

/* Row index of id i, or -1 (reported through mm_graph_fail) when it is not a valid row. */
static long row_of(mm_node *n, size_t i) {
    float v = n->in[0]->value[i];
    long rows = n->in[1]->shape[0];
    if (!(v >= 0) || v >= (float)rows || v != floorf(v)) {
        mm_graph_fail(n->g, "embedding '%s': id %g at position %zu is not in 0..%ld", n->name, v, i, rows - 1);
        return -1;
    }
    return (long)v;
}

static void emb_forward(mm_node *n) {
    const size_t D = (size_t)n->in[1]->shape[1], count = n->in[0]->size;
    const float *t = n->in[1]->value;
    for (size_t i = 0; i < count; i++) {
        long r = row_of(n, i);
        float *o = n->value + i * D;
        if (r < 0) {
            for (size_t d = 0; d < D; d++) o[d] = NAN;
            continue;
        }
        if (D == 1) o[0] = t[r]; /* bias tables: a call to memcpy would cost more than the copy */
        else memcpy(o, t + (size_t)r * D, D * sizeof(float));
    }
}

static void emb_backward(mm_node *n) {
    mm_node *tn = n->in[1];
    if (!tn->grad) return;
    const size_t D = (size_t)tn->shape[1], count = n->in[0]->size;
    mm_rowset *rs = tn->rows;
    if (!rs && !n->acc[1]) memset(tn->grad, 0, tn->size * sizeof(float));
    for (size_t i = 0; i < count; i++) {
        long r = row_of(n, i);
        if (r < 0) continue;
        if (rs && !rs->seen[r] && rs->n < rs->cap) {
            rs->seen[r] = 1;
            rs->rows[rs->n++] = (int)r;
        }
        float *gr = tn->grad + (size_t)r * D;
        const float *dy = n->grad + i * D;
        for (size_t d = 0; d < D; d++) gr[d] += dy[d];
    }
}

static const mm_op emb_op = {
    .name = "embedding",
    .infer = emb_infer,
    .forward = emb_forward,
    .backward = emb_backward,
    .backward_reads = 1u << 0,
};

mm_node *mm_g_embedding(mm_graph *g, mm_node *ids, mm_node *table) {
    mm_node *in[2] = {ids, table};
    return mm_graph_op(g, &emb_op, 2, in, NULL, NULL);
}
