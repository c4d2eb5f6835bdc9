/* Sequence cross-entropy for language models: logits [..., V] (e.g. [B, T, V]) against class
 * ids [...] (e.g. [B, T], stored as floats), with a fused log-softmax. Like PyTorch's
 * F.cross_entropy(logits.reshape(-1, V), targets.reshape(-1), ignore_index=ignore_index):
 * the mean of lse(z_r) - z_r[t_r] over the positions whose target is not ignore_index. When
 * every position is ignored the loss is 0 and so is the gradient (PyTorch gives NaN).
 *
 * Nothing of size [rows, V] is kept: the forward saves each row's log-sum-exp and class, the
 * backward rebuilds softmax = exp(z - lse) (vectorized mm_fast_expf, fastexp.h).
 * dz = (softmax - onehot(t)) * dL / count for counted rows, 0 for ignored ones. A target that
 * is neither ignore_index nor an integer in 0..V-1 fails the run (mm_graph_fail) and makes the
 * loss NaN.
 *
 * Rows are independent (parallel over rows); the total is summed in row order in double, so
 * the loss does not depend on the thread count.
 *
 * inputs: logits, targets. attrs: i[0] = ignore_index.
 * saved: HEADER (struct hdr) then lse[rows] floats and cls[rows] ints (-1: not counted), at the
 * batch capacity. work (forward): rows doubles of per-row losses. */
#include "ops/ops.h"
#include "ops/fastexp.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#define HEADER 64
#define PAR_MIN 32768

struct hdr {
    long count; /* rows counted in the mean */
};

static int nthreads(const mm_node *n) {
    return n->g && n->g->threads > 0 ? n->g->threads : mm_threads();
}

/* Rows of the logits at the batch capacity. */
static size_t cap_rows(const mm_node *n) {
    const mm_node *z = n->in[0];
    size_t s = mm_shape_size(z->ndim, z->shape);
    if (z->batched && n->g && n->g->batch_cap > z->shape[0])
        s = s / (size_t)z->shape[0] * (size_t)n->g->batch_cap;
    return s / (size_t)z->shape[z->ndim - 1];
}

static mm_status seqce_infer(mm_node *n) {
    const mm_node *z = n->in[0], *t = n->in[1];
    if (z->ndim < 2)
        return mm_error(MM_ERR_SHAPE, "sequence_cross_entropy: logits must be [..., classes], got rank %d", z->ndim);
    int same = t->ndim == z->ndim - 1 && t->batched == z->batched;
    for (int i = 0; same && i < t->ndim; i++) same = t->shape[i] == z->shape[i];
    if (!same) {
        char zs[96] = "", ts[96] = "";
        for (int i = 0, o = 0; i < z->ndim - 1; i++)
            o += snprintf(zs + o, sizeof zs - (size_t)o, i ? ", %d" : "%d", z->shape[i]);
        for (int i = 0, o = 0; i < t->ndim; i++)
            o += snprintf(ts + o, sizeof ts - (size_t)o, i ? ", %d" : "%d", t->shape[i]);
        return mm_error(MM_ERR_SHAPE,
                        "sequence_cross_entropy: targets must have the logits' shape without the class axis: "
                        "[%s], got [%s]%s", zs, ts, t->batched != z->batched ? " (batched differs)" : "");
    }
    n->ndim = 1;
    n->shape[0] = 1;
    n->batched = 0;
    return MM_OK;
}

static size_t seqce_saved_bytes(const mm_node *n) {
    return HEADER + cap_rows(n) * (sizeof(float) + sizeof(int));
}

static size_t seqce_work_bytes(const mm_node *n) { return cap_rows(n) * sizeof(double); }

static void seqce_forward(mm_node *n) {
    const mm_node *z = n->in[0];
    const float *tv = n->in[1]->value;
    const size_t V = (size_t)z->shape[z->ndim - 1], rows = z->size / V, cap = cap_rows(n);
    const float ignore = (float)n->a.i[0];
    struct hdr *h = n->saved;
    float *lse = (float *)((char *)n->saved + HEADER);
    int *cls = (int *)(lse + cap);
    double *loss = n->work;
    const int nt = nthreads(n);
#pragma omp parallel for num_threads(nt) schedule(static) if(z->size > PAR_MIN)
    for (long r = 0; r < (long)rows; r++) {
        const float t = tv[r];
        cls[r] = -1;
        if (t == ignore) {
            loss[r] = 0;
            continue;
        }
        if (!(t >= 0) || t >= (float)V || t != floorf(t)) {
            mm_graph_fail(n->g, "sequence_cross_entropy '%s': target %g at position %ld is not in 0..%zu "
                          "(or ignore_index %d)", n->name, t, r, V - 1, n->a.i[0]);
            loss[r] = NAN;
            continue;
        }
        const float *zr = z->value + (size_t)r * V;
        float m = zr[0];
#pragma omp simd reduction(max : m)
        for (size_t k = 1; k < V; k++) m = zr[k] > m ? zr[k] : m;
        double s = 0;
#pragma omp simd reduction(+ : s)
        for (size_t k = 0; k < V; k++) s += mm_fast_expf(zr[k] - m);
        const double l = (double)m + log(s);
        lse[r] = (float)l;
        cls[r] = (int)t;
        loss[r] = l - (double)zr[(int)t];
    }
    double total = 0;
    long count = 0;
    for (size_t r = 0; r < rows; r++) {
        total += loss[r];
        count += cls[r] >= 0 || isnan(loss[r]);
    }
    h->count = count;
    n->value[0] = count ? (float)(total / (double)count) : 0.0f;
}

static void seqce_backward(mm_node *n) {
    mm_node *z = n->in[0], *tn = n->in[1];
    if (tn->grad && !n->acc[1]) memset(tn->grad, 0, tn->size * sizeof(float));
    if (!z->grad) return;
    const size_t V = (size_t)z->shape[z->ndim - 1], rows = z->size / V, cap = cap_rows(n);
    const struct hdr *h = n->saved;
    const float *lse = (const float *)((const char *)n->saved + HEADER);
    const int *cls = (const int *)(lse + cap);
    const float scale = h->count ? n->grad[0] / (float)h->count : 0.0f;
    const int acc = n->acc[0];
    const int nt = nthreads(n);
#pragma omp parallel for num_threads(nt) schedule(static) if(z->size > PAR_MIN)
    for (long r = 0; r < (long)rows; r++) {
        const float *zr = z->value + (size_t)r * V;
        float *dz = z->grad + (size_t)r * V;
        const int c = cls[r];
        if (c < 0) {
            if (!acc) memset(dz, 0, V * sizeof(float));
            continue;
        }
        const float l = lse[r];
        if (acc) {
#pragma omp simd
            for (size_t k = 0; k < V; k++) dz[k] += mm_fast_expf(zr[k] - l) * scale;
        } else {
#pragma omp simd
            for (size_t k = 0; k < V; k++) dz[k] = mm_fast_expf(zr[k] - l) * scale;
        }
        dz[c] -= scale;
    }
}

static const mm_op seqce_op = {
    .name = "sequence_cross_entropy",
    .infer = seqce_infer,
    .saved_bytes = seqce_saved_bytes,
    .work_bytes = seqce_work_bytes,
    .forward = seqce_forward,
    .backward = seqce_backward,
    .backward_reads = 1u << 0,
};

mm_node *mm_g_sequence_cross_entropy(mm_graph *g, mm_node *logits, mm_node *targets, int ignore_index) {
    if (!g || !logits || !targets) return NULL;
    mm_attrs a = {0};
    a.i[0] = ignore_index;
    mm_node *in[2] = {logits, targets};
    return mm_graph_op(g, &seqce_op, 2, in, &a, "sequence_cross_entropy");
}
