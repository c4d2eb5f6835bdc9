/* Inverted dropout. Training: element i is dropped when
 * u01(hash64(seed ^ hash64(step) ^ i)) < rate, kept ones are scaled by 1/(1-rate); the mask
 * depends only on (node seed, graph step, element index), so it is the same for any thread
 * count. Inference: identity.
 *
 * saved: a 64-byte header (int: 1 if the last forward applied a mask) followed by one byte
 * of mask per element (batch capacity). attrs: f[0] = rate. */
#include "ops/ops.h"

#include <string.h>

#define PAR_MIN 32768
#define HEADER 64

static int nthreads(const mm_node *n) {
    return n->g && n->g->threads > 0 ? n->g->threads : mm_threads();
}


static mm_status dropout_infer(mm_node *n) {
    mm_node *x = n->in[0];
    float rate = n->a.f[0];
    if (!(rate >= 0.0f && rate < 1.0f))
        return mm_error(MM_ERR_ARG, "dropout: rate %g must be in [0, 1)", (double)rate);
    n->ndim = x->ndim;
    memcpy(n->shape, x->shape, sizeof n->shape);
    n->batched = x->batched;
    return MM_OK;
}

static size_t dropout_saved_bytes(const mm_node *n) { return HEADER + mm_cap_size(n); }

static void dropout_forward(mm_node *n) {
    const float *x = n->in[0]->value;
    float *y = n->value;
    const float rate = n->a.f[0];
    int *masked = (int *)n->saved;
    const long size = (long)n->size;
    if (!n->g->training || rate <= 0.0f) {
        *masked = 0;
        memcpy(y, x, (size_t)size * sizeof(float));
        return;
    }
    *masked = 1;
    unsigned char *mask = (unsigned char *)n->saved + HEADER;
    const uint64_t base = n->seed ^ mm_hash64(n->g->step);
    const float scale = 1.0f / (1.0f - rate);
    const int nt = nthreads(n);
#pragma omp parallel for num_threads(nt) schedule(static) if(size > PAR_MIN)
    for (long i = 0; i < size; i++) {
        unsigned char keep = mm_u01(mm_hash64(base ^ (uint64_t)i)) >= rate;
        mask[i] = keep;
        y[i] = keep ? x[i] * scale : 0.0f;
    }
}

static void dropout_backward(mm_node *n) {
    float *dx = n->in[0]->grad;
    if (!dx) return;
    const float *gy = n->grad;
    const int acc = n->acc[0];
    const long size = (long)n->size;
    const int masked = *(const int *)n->saved;
    if (!masked) {
        if (!acc) memcpy(dx, gy, (size_t)size * sizeof(float));
        else
            for (long i = 0; i < size; i++) dx[i] += gy[i];
        return;
    }
    const unsigned char *mask = (const unsigned char *)n->saved + HEADER;
    const float scale = 1.0f / (1.0f - n->a.f[0]);
    const int nt = nthreads(n);
#pragma omp parallel for num_threads(nt) schedule(static) if(size > PAR_MIN)
    for (long i = 0; i < size; i++) {
        float v = mask[i] ? gy[i] * scale : 0.0f;
        dx[i] = acc ? dx[i] + v : v;
    }
}

static const mm_op dropout_op = {
    .name = "dropout",
    .infer = dropout_infer,
    .saved_bytes = dropout_saved_bytes,
    .forward = dropout_forward,
    .backward = dropout_backward,
    .backward_reads = 0,
};

mm_node *mm_g_dropout(mm_graph *g, mm_node *x, float rate) {
    if (!g || !x) return NULL;
    mm_attrs a = {0};
    a.f[0] = rate;
    mm_node *in[1] = {x};
    return mm_graph_op(g, &dropout_op, 1, in, &a, "dropout");
}
