/* matmul: y[..., N] = x[..., K] @ w[K, N] (+ b[N]), the core of Dense.
 *
 * GEMMs go to OpenBLAS (single-threaded); we split the work across our own threads so that
 * only one thread pool runs. Forward and dx split the rows; dw splits K, so each thread owns
 * whole rows of dw and no reduction (and no nondeterminism) is needed. */
#include "ops/ops.h"

#include <cblas.h>
#include <string.h>

/* Row ranges for thread t of nt: [*lo, *hi). */
static void split(size_t total, int t, int nt, size_t *lo, size_t *hi) {
    *lo = total * (size_t)t / (size_t)nt;
    *hi = total * (size_t)(t + 1) / (size_t)nt;
}

/* Threads worth using for a GEMM of m*n*k: below ~1 MFLOP the fork costs more. */
static int gemm_threads(const mm_graph *g, size_t m, size_t n, size_t k) {
    size_t flops = 2 * m * n * k;
    int nt = g->threads > 0 ? g->threads : 1;
    if (flops < (1u << 20)) return 1;
    if ((size_t)nt > m) nt = (int)m;
    return nt > 0 ? nt : 1;
}

static mm_status matmul_infer(mm_node *n) {
    mm_node *x = n->in[0], *w = n->in[1];
    if (w->ndim != 2)
        return mm_error(MM_ERR_SHAPE, "matmul: weight must be 2-D [in, out], got rank %d", w->ndim);
    int k = x->shape[x->ndim - 1];
    if (k != w->shape[0])
        return mm_error(MM_ERR_SHAPE, "matmul: input has %d features but weight expects %d", k,
                        w->shape[0]);
    if (n->n_in == 3 && (n->in[2]->size != (size_t)w->shape[1]))
        return mm_error(MM_ERR_SHAPE, "matmul: bias has %zu elements, expected %d", n->in[2]->size,
                        w->shape[1]);
    n->ndim = x->ndim;
    memcpy(n->shape, x->shape, sizeof n->shape);
    n->shape[n->ndim - 1] = w->shape[1];
    return MM_OK;
}

static void matmul_forward(mm_node *n) {
    mm_node *x = n->in[0], *w = n->in[1];
    const int K = w->shape[0], N = w->shape[1];
    const size_t M = x->size / (size_t)K;
    const float *b = n->n_in == 3 ? n->in[2]->value : NULL;
    int nt = gemm_threads(n->g, M, (size_t)N, (size_t)K);
#pragma omp parallel for num_threads(nt) schedule(static)
    for (int t = 0; t < nt; t++) {
        size_t lo, hi;
        split(M, t, nt, &lo, &hi);
        if (hi == lo) continue;
        float *y = n->value + lo * (size_t)N;
        float beta = 0.0f;
        if (b) {
            for (size_t r = lo; r < hi; r++) memcpy(n->value + r * (size_t)N, b, (size_t)N * sizeof(float));
            beta = 1.0f;
        }
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)(hi - lo), N, K, 1.0f,
                    x->value + lo * (size_t)K, K, w->value, N, beta, y, N);
    }
}

static void matmul_backward(mm_node *n) {
    mm_node *x = n->in[0], *w = n->in[1];
    const int K = w->shape[0], N = w->shape[1];
    const size_t M = x->size / (size_t)K;
    const float *dy = n->grad;
    if (x->grad) {
        int nt = gemm_threads(n->g, M, (size_t)N, (size_t)K);
        float beta = n->acc[0] ? 1.0f : 0.0f;
#pragma omp parallel for num_threads(nt) schedule(static)
        for (int t = 0; t < nt; t++) {
            size_t lo, hi;
            split(M, t, nt, &lo, &hi);
            if (hi == lo) continue;
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)(hi - lo), K, N, 1.0f,
                        dy + lo * (size_t)N, N, w->value, N, beta, x->grad + lo * (size_t)K, K);
        }
    }
    if (w->grad) {
        int nt = gemm_threads(n->g, (size_t)K, (size_t)N, M);
        float beta = n->acc[1] ? 1.0f : 0.0f;
#pragma omp parallel for num_threads(nt) schedule(static)
        for (int t = 0; t < nt; t++) {
            size_t lo, hi;
            split((size_t)K, t, nt, &lo, &hi);
            if (hi == lo) continue;
            cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)(hi - lo), N, (int)M, 1.0f,
                        x->value + lo, K, dy, N, beta, w->grad + lo * (size_t)N, N);
        }
    }
    if (n->n_in == 3 && n->in[2]->grad) {
        /* db = column sums of dy; threads own column ranges, so the sums stay in row order */
        float *db = n->in[2]->grad;
        const int acc = n->acc[2];
        int nt = gemm_threads(n->g, M, (size_t)N, 1);
        if ((size_t)nt > (size_t)N / 16) nt = N >= 32 ? N / 16 : 1;
#pragma omp parallel for num_threads(nt) schedule(static)
        for (int t = 0; t < nt; t++) {
            size_t lo, hi;
            split((size_t)N, t, nt, &lo, &hi);
            if (!acc) memset(db + lo, 0, (hi - lo) * sizeof(float));
            for (size_t r = 0; r < M; r++)
                for (size_t j = lo; j < hi; j++) db[j] += dy[r * (size_t)N + j];
        }
    }
}

static const mm_op matmul_op = {
    .name = "matmul",
    .infer = matmul_infer,
    .forward = matmul_forward,
    .backward = matmul_backward,
    .backward_reads = (1u << 0) | (1u << 1),
};

mm_node *mm_g_matmul(mm_graph *g, mm_node *x, mm_node *w, mm_node *b) {
    mm_node *in[3] = {x, w, b};
    return mm_graph_op(g, &matmul_op, b ? 3 : 2, in, NULL, NULL);
}
