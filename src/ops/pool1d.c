/* Global pooling over time with an optional padding mask: x [B, T, C] (mask [B, T], nonzero =
 * real step) -> [B, C]. Keras's GlobalAveragePooling1D / GlobalMaxPooling1D with masks:
 *   average: the mean over the real steps (all T without a mask);
 *   max:     the maximum over the real steps; backward routes each gradient to the argmax step
 *            (the first one on ties, as PyTorch's max).
 * A row with no real step gives 0 and passes no gradient.
 *
 * attrs: i[0] = 1 for max, 0 for average. saved (max): the argmax step per output, int32. */
#include "ops/ops.h"

#include <string.h>

static mm_status gpool_infer(mm_node *n) {
    const mm_node *x = n->in[0];
    const char *nm = n->a.i[0] ? "global_max_pool1d" : "global_avg_pool1d";
    if (x->ndim != 3) return mm_error(MM_ERR_SHAPE, "%s: expects [batch, steps, features], got rank %d", nm, x->ndim);
    if (n->n_in > 1) {
        const mm_node *m = n->in[1];
        if (m->ndim != 2 || m->shape[0] != x->shape[0] || m->shape[1] != x->shape[1])
            return mm_error(MM_ERR_SHAPE, "%s: mask must be [batch, steps] = [%d, %d]", nm, x->shape[0], x->shape[1]);
    }
    n->ndim = 2;
    n->shape[0] = x->shape[0];
    n->shape[1] = x->shape[2];
    return MM_OK;
}

static size_t gpool_saved(const mm_node *n) { return n->a.i[0] ? n->size * sizeof(int32_t) : 0; }

static int real(const mm_node *n, int b, int t) {
    return n->n_in < 2 || n->in[1]->value[(size_t)b * (size_t)n->in[1]->shape[1] + (size_t)t] != 0.0f;
}

static void gpool_forward(mm_node *n) {
    const mm_node *x = n->in[0];
    const int B = x->shape[0], T = x->shape[1], C = x->shape[2], is_max = n->a.i[0];
    int32_t *arg = n->saved;
#pragma omp parallel for num_threads(n->g->threads) schedule(static) if(x->size > 65536)
    for (int b = 0; b < B; b++) {
        float *y = n->value + (size_t)b * C;
        int32_t *a = is_max ? arg + (size_t)b * C : NULL;
        int count = 0;
        for (int c = 0; c < C; c++) y[c] = 0.0f;
        if (a)
            for (int c = 0; c < C; c++) a[c] = -1;
        for (int t = 0; t < T; t++) {
            if (!real(n, b, t)) continue;
            const float *xt = x->value + ((size_t)b * T + t) * C;
            if (is_max) {
                for (int c = 0; c < C; c++)
                    if (a[c] < 0 || xt[c] > y[c]) y[c] = xt[c], a[c] = t;
            } else {
                for (int c = 0; c < C; c++) y[c] += xt[c];
            }
            count++;
        }
        if (!is_max && count > 1) {
            const float inv = 1.0f / (float)count;
            for (int c = 0; c < C; c++) y[c] *= inv;
        }
    }
}

static void gpool_backward(mm_node *n) {
    mm_node *x = n->in[0];
    if (!x->grad) return;
    const int B = x->shape[0], T = x->shape[1], C = x->shape[2], is_max = n->a.i[0], acc = n->acc[0];
    const int32_t *arg = n->saved;
#pragma omp parallel for num_threads(n->g->threads) schedule(static) if(x->size > 65536)
    for (int b = 0; b < B; b++) {
        const float *dy = n->grad + (size_t)b * C;
        float *dx = x->grad + (size_t)b * T * C;
        if (!acc) memset(dx, 0, (size_t)T * C * sizeof(float));
        if (is_max) {
            const int32_t *a = arg + (size_t)b * C;
            for (int c = 0; c < C; c++)
                if (a[c] >= 0) dx[(size_t)a[c] * C + c] += dy[c];
            continue;
        }
        int count = 0;
        for (int t = 0; t < T; t++) count += real(n, b, t);
        if (!count) continue;
        const float inv = 1.0f / (float)count;
        for (int t = 0; t < T; t++) {
            if (!real(n, b, t)) continue;
            float *d = dx + (size_t)t * C;
            for (int c = 0; c < C; c++) d[c] += dy[c] * inv;
        }
    }
}

static const mm_op gavg_op = {
    .name = "global_avg_pool1d",
    .infer = gpool_infer,
    .forward = gpool_forward,
    .backward = gpool_backward,
    .backward_reads = 1u << 1, /* the mask */
};

static const mm_op gmax_op = {
    .name = "global_max_pool1d",
    .infer = gpool_infer,
    .saved_bytes = gpool_saved,
    .forward = gpool_forward,
    .backward = gpool_backward,
    .backward_reads = 0,
};

mm_node *mm_g_global_pool1d(mm_graph *g, mm_node *x, mm_node *mask, int is_max) {
    if (!g || !x) return NULL;
    mm_attrs a = {0};
    a.i[0] = is_max ? 1 : 0;
    mm_node *in[2] = {x, mask};
    return mm_graph_op(g, is_max ? &gmax_op : &gavg_op, mask ? 2 : 1, in, &a, NULL);
}
