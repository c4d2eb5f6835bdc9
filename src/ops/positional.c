/* Positional encodings added to a sequence x [..., T, C] (usually [B, T, C]).
 *
 * sinusoidal_positions: y = x + PE with the Transformer's fixed table
 *   PE[t, 2i] = sin(t / 10000^(2i / C)),  PE[t, 2i+1] = cos(t / 10000^(2i / C))
 * (computed in double, rounded to float; an odd C ends with a sin column). The table is
 * rebuilt into the forward workspace each run ([T, C] floats, no state across runs).
 * Backward: dx = dy.
 *
 * add_positions: y = x + table[0:T] for a learned table [maxT, C] (T <= maxT), broadcast over
 * the leading axes. Backward: dx = dy; dtable[t] = sum over the leading axes of dy[..., t, :]
 * for t < T (summed in order: deterministic) and 0 for rows >= T, under the overwrite /
 * accumulate convention on the whole table. A table that carries a rowset (sparse-row model
 * parameters) instead gets rows 0..T-1 added and recorded, as embedding.c does. */
#include "ops/ops.h"

#include <math.h>
#include <string.h>

#define PAR_MIN 32768

static int nthreads(const mm_node *n) {
    return n->g && n->g->threads > 0 ? n->g->threads : mm_threads();
}

static mm_status seq_shape(mm_node *n, const char *op) {
    const mm_node *x = n->in[0];
    if (x->ndim < 2) return mm_error(MM_ERR_SHAPE, "%s: x must be [..., time, channels], got rank %d", op, x->ndim);
    n->ndim = x->ndim;
    memcpy(n->shape, x->shape, sizeof n->shape);
    n->batched = x->batched;
    return MM_OK;
}

/* dx = dy (overwrite or accumulate). */
static void pass_grad(mm_node *n) {
    float *dx = n->in[0]->grad;
    if (!dx) return;
    const float *gy = n->grad;
    const long size = (long)n->size;
    if (!n->acc[0]) {
        memcpy(dx, gy, (size_t)size * sizeof(float));
        return;
    }
    const int nt = nthreads(n);
#pragma omp parallel for num_threads(nt) schedule(static) if(size > PAR_MIN)
    for (long i = 0; i < size; i++) dx[i] += gy[i];
}

/* y[s, t, c] = x[s, t, c] + pe[t, c] over all leading indices s. */
static void add_table(mm_node *n, const float *pe) {
    const size_t T = (size_t)n->shape[n->ndim - 2], C = (size_t)n->shape[n->ndim - 1], TC = T * C;
    const long seqs = (long)(n->size / TC);
    const float *x = n->in[0]->value;
    float *y = n->value;
    const int nt = nthreads(n);
#pragma omp parallel for num_threads(nt) schedule(static) if(n->size > PAR_MIN)
    for (long s = 0; s < seqs; s++) {
        const float *xs = x + (size_t)s * TC;
        float *ys = y + (size_t)s * TC;
        for (size_t i = 0; i < TC; i++) ys[i] = xs[i] + pe[i];
    }
}

/* ---- sinusoidal ---- */

static mm_status sin_infer(mm_node *n) { return seq_shape(n, "sinusoidal_positions"); }

static size_t sin_work_bytes(const mm_node *n) {
    return (size_t)n->shape[n->ndim - 2] * (size_t)n->shape[n->ndim - 1] * sizeof(float);
}

static void sin_forward(mm_node *n) {
    const int T = n->shape[n->ndim - 2], C = n->shape[n->ndim - 1];
    float *pe = n->work;
    for (int i = 0; i < C; i += 2) {
        const double inv_freq = pow(10000.0, -(double)i / (double)C);
        for (int t = 0; t < T; t++) {
            const double a = (double)t * inv_freq;
            pe[(size_t)t * C + i] = (float)sin(a);
            if (i + 1 < C) pe[(size_t)t * C + i + 1] = (float)cos(a);
        }
    }
    add_table(n, pe);
}

static const mm_op sin_op = {
    .name = "sinusoidal_positions",
    .infer = sin_infer,
    .work_bytes = sin_work_bytes,
    .forward = sin_forward,
    .backward = pass_grad,
    .backward_reads = 0,
};

mm_node *mm_g_sinusoidal_positions(mm_graph *g, mm_node *x) {
    if (!g || !x) return NULL;
    mm_node *in[1] = {x};
    return mm_graph_op(g, &sin_op, 1, in, NULL, "sinusoidal_positions");
}

/* ---- learned table ---- */

static mm_status addpos_infer(mm_node *n) {
    mm_status st = seq_shape(n, "add_positions");
    if (st != MM_OK) return st;
    const mm_node *x = n->in[0], *t = n->in[1];
    const int T = x->shape[x->ndim - 2], C = x->shape[x->ndim - 1];
    if (t->ndim != 2 || t->batched)
        return mm_error(MM_ERR_SHAPE, "add_positions: table must be an unbatched [max_time, channels], got rank %d",
                        t->ndim);
    if (t->shape[1] != C)
        return mm_error(MM_ERR_SHAPE, "add_positions: table has %d channels, x has %d", t->shape[1], C);
    if (t->shape[0] < T)
        return mm_error(MM_ERR_SHAPE, "add_positions: sequence length %d exceeds the table's %d positions", T,
                        t->shape[0]);
    return MM_OK;
}

static void addpos_forward(mm_node *n) { add_table(n, n->in[1]->value); }

static void addpos_backward(mm_node *n) {
    pass_grad(n);
    mm_node *tn = n->in[1];
    if (!tn->grad) return;
    const size_t T = (size_t)n->shape[n->ndim - 2], C = (size_t)n->shape[n->ndim - 1], TC = T * C;
    const size_t seqs = n->size / TC;
    const float *gy = n->grad;
    float *dt = tn->grad;
    mm_rowset *rs = tn->rows;
    const int acc = n->acc[1] || rs; /* rowset tables are kept zero and only added into */
    if (rs)
        for (size_t t = 0; t < T; t++)
            if (!rs->seen[t] && rs->n < rs->cap) {
                rs->seen[t] = 1;
                rs->rows[rs->n++] = (int)t;
            }
    if (!acc) memset(dt + TC, 0, (tn->size - TC) * sizeof(float));
    const int nt = nthreads(n);
#pragma omp parallel for num_threads(nt) schedule(static) if(n->size > PAR_MIN)
    for (long t = 0; t < (long)T; t++) {
        float *dr = dt + (size_t)t * C;
        if (!acc) memset(dr, 0, C * sizeof(float));
        for (size_t s = 0; s < seqs; s++) {
            const float *g = gy + s * TC + (size_t)t * C;
            for (size_t c = 0; c < C; c++) dr[c] += g[c];
        }
    }
}

static const mm_op addpos_op = {
    .name = "add_positions",
    .infer = addpos_infer,
    .forward = addpos_forward,
    .backward = addpos_backward,
    .backward_reads = 0,
};

mm_node *mm_g_add_positions(mm_graph *g, mm_node *x, mm_node *table) {
    if (!g || !x || !table) return NULL;
    mm_node *in[2] = {x, table};
    return mm_graph_op(g, &addpos_op, 2, in, NULL, "add_positions");
}
