/* Layer normalization over the last axis (PyTorch F.layer_norm / Keras LayerNormalization
 * with axis=-1): y = (x - mean) / sqrt(var + eps) * gamma + beta, mean and biased variance
 * taken over the last axis of each row.
 *
 * Row statistics are computed in double (two passes), one row per iteration, so a row's result
 * never depends on the thread count. dgamma/dbeta sum over rows through fixed blocks of
 * ROW_BLOCK rows (double partials in the workspace, combined in block order): deterministic
 * for any thread count too.
 *
 * inputs: x [..., C], gamma [C], beta [C]. attrs: f[0] = eps.
 * saved: mean[rows] then rstd[rows] (floats, batch capacity), as used by the forward.
 * work (backward): nblocks * 2C doubles of block partials. */
#include "ops/ops.h"

#include <math.h>
#include <string.h>

#define PAR_MIN 32768
#define ROW_BLOCK 256

static int nthreads(const mm_node *n) {
    return n->g && n->g->threads > 0 ? n->g->threads : mm_threads();
}

/* Rows (all axes but the last) at the batch capacity. */
static size_t cap_rows(const mm_node *n) {
    return mm_cap_size(n) / (size_t)n->shape[n->ndim - 1];
}

static size_t nblocks(size_t rows) { return (rows + ROW_BLOCK - 1) / ROW_BLOCK; }

static mm_status ln_infer(mm_node *n) {
    mm_node *x = n->in[0];
    const int c = x->shape[x->ndim - 1];
    static const char *names[] = {"", "gamma", "beta"};
    for (int i = 1; i < 3; i++) {
        const mm_node *p = n->in[i];
        if (p->batched || p->size != (size_t)c || p->shape[p->ndim - 1] != c)
            return mm_error(MM_ERR_SHAPE, "layernorm: %s has %zu elements, expected %d (last axis of x)",
                            names[i], p->size, c);
    }
    if (!(n->a.f[0] > 0.0f))
        return mm_error(MM_ERR_ARG, "layernorm: epsilon %g must be positive", (double)n->a.f[0]);
    n->ndim = x->ndim;
    memcpy(n->shape, x->shape, sizeof n->shape);
    n->batched = x->batched;
    return MM_OK;
}

static size_t ln_saved_bytes(const mm_node *n) { return 2 * cap_rows(n) * sizeof(float); }

static size_t ln_work_bytes(const mm_node *n) {
    return nblocks(cap_rows(n)) * 2 * (size_t)n->shape[n->ndim - 1] * sizeof(double);
}

static void ln_forward(mm_node *n) {
    const float *xv = n->in[0]->value, *gamma = n->in[1]->value, *beta = n->in[2]->value;
    const size_t C = (size_t)n->shape[n->ndim - 1], rows = n->size / C;
    const double eps = n->a.f[0];
    float *mean = n->saved, *rstd = mean + cap_rows(n);
    float *y = n->value;
    const int nt = nthreads(n);
#pragma omp parallel for num_threads(nt) schedule(static) if(n->size > PAR_MIN)
    for (long r = 0; r < (long)rows; r++) {
        const float *xr = xv + (size_t)r * C;
        float *yr = y + (size_t)r * C;
        double s = 0;
#pragma omp simd reduction(+ : s)
        for (size_t c = 0; c < C; c++) s += xr[c];
        const double mu = s / (double)C;
        double v = 0;
#pragma omp simd reduction(+ : v)
        for (size_t c = 0; c < C; c++) {
            double d = xr[c] - mu;
            v += d * d;
        }
        const float m = (float)mu, rs = (float)(1.0 / sqrt(v / (double)C + eps));
        mean[r] = m;
        rstd[r] = rs;
        for (size_t c = 0; c < C; c++) yr[c] = (xr[c] - m) * rs * gamma[c] + beta[c];
    }
}

static void ln_backward(mm_node *n) {
    const mm_node *x = n->in[0];
    float *dx = x->grad, *dgamma = n->in[1]->grad, *dbeta = n->in[2]->grad;
    const float *xv = x->value, *gamma = n->in[1]->value, *gy = n->grad;
    const size_t C = (size_t)n->shape[n->ndim - 1], rows = n->size / C;
    const float *mean = n->saved, *rstd = mean + cap_rows(n);
    const int nt = nthreads(n), params = dgamma || dbeta, acc = n->acc[0];
    const double invC = 1.0 / (double)C;
    double *work = n->work;
    const long nb = (long)nblocks(rows);
    /* One pass over each block of rows: dx while the rows are in cache, and the block's
     * dgamma/dbeta partials. dx is written before dgamma/dbeta (input-slot order), so the
     * overwrite/accumulate flags stay right even if two inputs are one node. */
#pragma omp parallel for num_threads(nt) schedule(static) if(n->size > PAR_MIN)
    for (long k = 0; k < nb; k++) {
        double *p = work + (size_t)k * 2 * C; /* [0, C): sum dy; [C, 2C): sum dy * xhat */
        if (params)
            for (size_t c = 0; c < 2 * C; c++) p[c] = 0;
        size_t r0 = (size_t)k * ROW_BLOCK, r1 = r0 + ROW_BLOCK < rows ? r0 + ROW_BLOCK : rows;
        for (size_t r = r0; r < r1; r++) {
            const float *xr = xv + r * C, *gr = gy + r * C;
            const float m = mean[r], rs = rstd[r];
            if (params)
#pragma omp simd
                for (size_t c = 0; c < C; c++) {
                    p[c] += gr[c];
                    p[C + c] += (double)gr[c] * ((xr[c] - m) * rs);
                }
            if (!dx) continue;
            float *dr = dx + r * C;
            /* dx = rstd * (g - mean(g) - xhat * mean(g * xhat)), g = dy * gamma */
            double a = 0, b = 0;
#pragma omp simd reduction(+ : a, b)
            for (size_t c = 0; c < C; c++) {
                double gg = (double)gr[c] * gamma[c];
                a += gg;
                b += gg * ((xr[c] - m) * rs);
            }
            const float fa = (float)(a * invC), fb = (float)(b * invC);
            if (acc) {
#pragma omp simd
                for (size_t c = 0; c < C; c++) dr[c] += rs * (gr[c] * gamma[c] - fa - (xr[c] - m) * rs * fb);
            } else {
#pragma omp simd
                for (size_t c = 0; c < C; c++) dr[c] = rs * (gr[c] * gamma[c] - fa - (xr[c] - m) * rs * fb);
            }
        }
    }
    if (params) {
        for (size_t c = 0; c < C; c++) {
            double sb = 0, sg = 0;
            for (long k = 0; k < nb; k++) {
                sb += work[(size_t)k * 2 * C + c];
                sg += work[(size_t)k * 2 * C + C + c];
            }
            if (dgamma) dgamma[c] = n->acc[1] ? dgamma[c] + (float)sg : (float)sg;
            if (dbeta) dbeta[c] = n->acc[2] ? dbeta[c] + (float)sb : (float)sb;
        }
    }
}

static const mm_op layernorm_op = {
    .name = "layernorm",
    .infer = ln_infer,
    .saved_bytes = ln_saved_bytes,
    .work_bytes = ln_work_bytes,
    .forward = ln_forward,
    .backward = ln_backward,
    .backward_reads = (1u << 0) | (1u << 1),
};

mm_node *mm_g_layernorm(mm_graph *g, mm_node *x, mm_node *gamma, mm_node *beta, float eps) {
    if (!g || !x || !gamma || !beta) return NULL;
    mm_attrs a = {0};
    a.f[0] = eps;
    mm_node *in[3] = {x, gamma, beta};
    return mm_graph_op(g, &layernorm_op, 3, in, &a, "layernorm");
}
