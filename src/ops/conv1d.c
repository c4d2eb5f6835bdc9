/* conv1d: x [B, T, C] * w [K, C, F] (+ b [F]) -> [B, T - K + 1, F], stride 1, "valid"
 * padding (Keras Conv1D's kernel layout [kernel_size, in, filters]).
 *
 * The batch is one matrix X [B*T, C]. Tap k is one GEMM over all rows: Z[r] += X[r + k] W_k
 * for r < B*T - k, so Z[b*T + t] = sum_k X[b*T + t + k] W_k, which is the output for t < T-K+1
 * (rows past a sequence's last window mix two sequences and are dropped). Backward: the output
 * gradient is scattered into a zero-padded dZ [B*T, F]; dW_k = X[k:]^T dZ and
 * dX[r + k] += dZ[r] W_k^T. GEMMs run single-threaded in OpenBLAS; rows (forward, dX) or the
 * rows of W_k (dW) are split across our threads, so results do not depend on the thread count.
 * work: Z / dZ, B*T*F floats. */
#include "ops/ops.h"

#include <cblas.h>
#include <string.h>

static void split(size_t total, int t, int nt, size_t *lo, size_t *hi) {
    *lo = total * (size_t)t / (size_t)nt;
    *hi = total * (size_t)(t + 1) / (size_t)nt;
}

static int threads_for(const mm_node *n, size_t flops, size_t rows) {
    int nt = n->g->threads > 0 ? n->g->threads : 1;
    if (flops < (1u << 20)) return 1;
    if ((size_t)nt > rows) nt = (int)rows;
    return nt > 0 ? nt : 1;
}

static mm_status conv1d_infer(mm_node *n) {
    const mm_node *x = n->in[0], *w = n->in[1];
    if (x->ndim != 3) return mm_error(MM_ERR_SHAPE, "conv1d: input must be [batch, steps, channels], got rank %d", x->ndim);
    if (w->ndim != 3) return mm_error(MM_ERR_SHAPE, "conv1d: kernel must be [width, in, filters], got rank %d", w->ndim);
    if (w->shape[1] != x->shape[2])
        return mm_error(MM_ERR_SHAPE, "conv1d: input has %d channels but the kernel expects %d", x->shape[2], w->shape[1]);
    if (w->shape[0] > x->shape[1])
        return mm_error(MM_ERR_SHAPE, "conv1d: kernel width %d exceeds the %d steps", w->shape[0], x->shape[1]);
    if (n->n_in == 3 && n->in[2]->size != (size_t)w->shape[2])
        return mm_error(MM_ERR_SHAPE, "conv1d: bias has %zu elements, expected %d", n->in[2]->size, w->shape[2]);
    n->ndim = 3;
    n->shape[0] = x->shape[0];
    n->shape[1] = x->shape[1] - w->shape[0] + 1;
    n->shape[2] = w->shape[2];
    return MM_OK;
}

static size_t conv1d_work(const mm_node *n) {
    const mm_node *x = n->in[0];
    size_t rows = mm_shape_size(x->ndim, x->shape) / (size_t)x->shape[2];
    return rows * (size_t)n->in[1]->shape[2] * sizeof(float);
}

static void conv1d_forward(mm_node *n) {
    const mm_node *x = n->in[0], *w = n->in[1];
    const int B = x->shape[0], T = x->shape[1], C = x->shape[2], K = w->shape[0], F = w->shape[2];
    const int To = T - K + 1;
    const size_t M = (size_t)B * T;
    const float *b = n->n_in == 3 ? n->in[2]->value : NULL;
    float *Z = n->work;
    int nt = threads_for(n, 2 * M * (size_t)C * F * K, M);
#pragma omp parallel for num_threads(nt) schedule(static)
    for (int t = 0; t < nt; t++) {
        size_t lo, hi;
        split(M, t, nt, &lo, &hi);
        for (int k = 0; k < K; k++) {
            size_t end = hi < M - (size_t)k ? hi : M - (size_t)k;
            if (end <= lo) continue;
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)(end - lo), F, C, 1.0f,
                        x->value + (lo + (size_t)k) * C, C, w->value + (size_t)k * C * F, F, k ? 1.0f : 0.0f,
                        Z + lo * F, F);
        }
    }
#pragma omp parallel for num_threads(nt) schedule(static)
    for (int bb = 0; bb < B; bb++)
        for (int t = 0; t < To; t++) {
            const float *z = Z + ((size_t)bb * T + t) * F;
            float *y = n->value + ((size_t)bb * To + t) * F;
            if (b)
                for (int f = 0; f < F; f++) y[f] = z[f] + b[f];
            else
                memcpy(y, z, (size_t)F * sizeof(float));
        }
}

static void conv1d_backward(mm_node *n) {
    mm_node *x = n->in[0], *w = n->in[1], *bn = n->n_in == 3 ? n->in[2] : NULL;
    const int B = x->shape[0], T = x->shape[1], C = x->shape[2], K = w->shape[0], F = w->shape[2];
    const int To = T - K + 1;
    const size_t M = (size_t)B * T;
    float *dZ = n->work;
    for (int bb = 0; bb < B; bb++) {
        memcpy(dZ + (size_t)bb * T * F, n->grad + (size_t)bb * To * F, (size_t)To * F * sizeof(float));
        memset(dZ + ((size_t)bb * T + To) * F, 0, (size_t)(K - 1) * F * sizeof(float));
    }
    if (bn && bn->grad) {
        float *db = bn->grad;
        if (!n->acc[2]) memset(db, 0, (size_t)F * sizeof(float));
        for (size_t r = 0; r < M; r++)
            for (int f = 0; f < F; f++) db[f] += dZ[r * F + f];
    }
    if (w->grad) {
        /* dW_k [C, F] = X[k : M]^T dZ[0 : M-k]; threads own rows (input channels) of each W_k */
        int nt = threads_for(n, 2 * M * (size_t)C * F * K, (size_t)C);
        float beta = n->acc[1] ? 1.0f : 0.0f;
#pragma omp parallel for num_threads(nt) schedule(static)
        for (int t = 0; t < nt; t++) {
            size_t lo, hi;
            split((size_t)C, t, nt, &lo, &hi);
            if (hi == lo) continue;
            for (int k = 0; k < K; k++)
                cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)(hi - lo), F, (int)(M - (size_t)k), 1.0f,
                            x->value + (size_t)k * C + lo, C, dZ, F, beta, w->grad + ((size_t)k * C + lo) * F, F);
        }
    }
    if (x->grad) {
        /* dX[r] = sum_k dZ[r - k] W_k^T; threads own rows of dX */
        int nt = threads_for(n, 2 * M * (size_t)C * F * K, M);
        const int acc = n->acc[0];
#pragma omp parallel for num_threads(nt) schedule(static)
        for (int t = 0; t < nt; t++) {
            size_t lo, hi;
            split(M, t, nt, &lo, &hi);
            if (hi == lo) continue;
            if (!acc) memset(x->grad + lo * C, 0, (hi - lo) * C * sizeof(float));
            for (int k = 0; k < K; k++) {
                size_t start = lo > (size_t)k ? lo : (size_t)k;
                if (start >= hi) continue;
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)(hi - start), C, F, 1.0f,
                            dZ + (start - (size_t)k) * F, F, w->value + (size_t)k * C * F, F, 1.0f,
                            x->grad + start * C, C);
            }
        }
    }
}

static const mm_op conv1d_op = {
    .name = "conv1d",
    .infer = conv1d_infer,
    .work_bytes = conv1d_work,
    .forward = conv1d_forward,
    .backward = conv1d_backward,
    .backward_reads = (1u << 0) | (1u << 1),
};

mm_node *mm_g_conv1d(mm_graph *g, mm_node *x, mm_node *w, mm_node *b) {
    mm_node *in[3] = {x, w, b};
    return mm_graph_op(g, &conv1d_op, b ? 3 : 2, in, NULL, NULL);
}
