/* Batch normalization over all axes but the last (channels-last), as Keras.
 *
 * Training: batch mean and biased variance per channel; the moving statistics are updated in
 * place: moving = moving * momentum + batch_stat * (1 - momentum). Inference: moving
 * statistics. y = gamma * (x - mean) / sqrt(var + eps) + beta.
 *
 * Per-channel sums go through fixed blocks of ROW_BLOCK rows (partials in double in the
 * workspace, combined in block order), so results do not depend on the thread count.
 *
 * inputs: x, gamma, beta, moving_mean, moving_var. attrs: f[0] = momentum, f[1] = epsilon.
 * saved: a 64-byte header (int: 1 if the forward used batch statistics) then mean[C] and
 * inv_std[C] (floats) as used by the forward. */
#include "ops/ops.h"

#include <math.h>
#include <string.h>

#define PAR_MIN 32768
#define ROW_BLOCK 256
#define HEADER 64

static int nthreads(const mm_node *n) {
    return n->g && n->g->threads > 0 ? n->g->threads : mm_threads();
}

static size_t cap_rows(const mm_node *n) {
    size_t c = (size_t)n->shape[n->ndim - 1];
    return mm_cap_size(n) / c;
}

static size_t nblocks(size_t rows) { return (rows + ROW_BLOCK - 1) / ROW_BLOCK; }

static mm_status bn_infer(mm_node *n) {
    mm_node *x = n->in[0];
    const int c = x->shape[x->ndim - 1];
    static const char *names[] = {"", "gamma", "beta", "moving_mean", "moving_var"};
    for (int i = 1; i < 5; i++) {
        const mm_node *p = n->in[i];
        if (p->batched || p->size != (size_t)c || p->shape[p->ndim - 1] != c)
            return mm_error(MM_ERR_SHAPE, "batchnorm: %s has %zu elements, expected %d (channels)",
                            names[i], p->size, c);
    }
    float momentum = n->a.f[0], eps = n->a.f[1];
    if (!(momentum >= 0.0f && momentum <= 1.0f))
        return mm_error(MM_ERR_ARG, "batchnorm: momentum %g must be in [0, 1]", (double)momentum);
    if (!(eps > 0.0f))
        return mm_error(MM_ERR_ARG, "batchnorm: epsilon %g must be positive", (double)eps);
    n->ndim = x->ndim;
    memcpy(n->shape, x->shape, sizeof n->shape);
    n->batched = x->batched;
    return MM_OK;
}

static size_t bn_saved_bytes(const mm_node *n) {
    return HEADER + 2 * (size_t)n->shape[n->ndim - 1] * sizeof(float);
}

static size_t bn_work_bytes(const mm_node *n) {
    /* forward: nb*C partials + 2C statistics; backward: nb*2C partials. */
    return (nblocks(cap_rows(n)) * 2 + 2) * (size_t)n->shape[n->ndim - 1] * sizeof(double);
}

/* out[c] = sum over rows of x[r, c] - shift[c] (squared when sq), via block partials. */
static void column_sums(const mm_node *n, const float *x, const double *shift, int sq,
                        double *work, size_t rows, size_t C, double *out) {
    const long nb = (long)nblocks(rows);
    const int nt = nthreads(n);
#pragma omp parallel for num_threads(nt) schedule(static) if(rows * C > PAR_MIN)
    for (long k = 0; k < nb; k++) {
        double *p = work + (size_t)k * C;
        for (size_t c = 0; c < C; c++) p[c] = 0;
        size_t r0 = (size_t)k * ROW_BLOCK, r1 = r0 + ROW_BLOCK < rows ? r0 + ROW_BLOCK : rows;
        for (size_t r = r0; r < r1; r++) {
            const float *xr = x + r * C;
            if (sq)
                for (size_t c = 0; c < C; c++) {
                    double d = xr[c] - shift[c];
                    p[c] += d * d;
                }
            else
                for (size_t c = 0; c < C; c++) p[c] += xr[c];
        }
    }
    for (size_t c = 0; c < C; c++) {
        double s = 0;
        for (long k = 0; k < nb; k++) s += work[(size_t)k * C + c];
        out[c] = s;
    }
}

static void bn_forward(mm_node *n) {
    const mm_node *x = n->in[0];
    const float *xv = x->value, *gamma = n->in[1]->value, *beta = n->in[2]->value;
    float *mmean = n->in[3]->value, *mvar = n->in[4]->value;
    const float momentum = n->a.f[0], eps = n->a.f[1];
    const size_t C = (size_t)n->shape[n->ndim - 1], rows = n->size / C;
    int *training = (int *)n->saved;
    float *mean = (float *)((char *)n->saved + HEADER), *inv_std = mean + C;
    /* Workspace: block partials, then (after the sums) per-channel doubles. */
    double *work = n->work;
    if (n->g->training) {
        *training = 1;
        double *tmp = work + nblocks(rows) * C; /* second half: C means, C variances */
        double *dmean = tmp, *dvar = tmp + C;
        column_sums(n, xv, NULL, 0, work, rows, C, dmean);
        for (size_t c = 0; c < C; c++) dmean[c] /= (double)rows;
        column_sums(n, xv, dmean, 1, work, rows, C, dvar);
        for (size_t c = 0; c < C; c++) {
            double var = dvar[c] / (double)rows;
            mean[c] = (float)dmean[c];
            inv_std[c] = (float)(1.0 / sqrt(var + eps));
            mmean[c] = mmean[c] * momentum + (float)dmean[c] * (1.0f - momentum);
            mvar[c] = mvar[c] * momentum + (float)var * (1.0f - momentum);
        }
    } else {
        *training = 0;
        for (size_t c = 0; c < C; c++) {
            mean[c] = mmean[c];
            inv_std[c] = (float)(1.0 / sqrt((double)mvar[c] + eps));
        }
    }
    float *y = n->value;
    const int nt = nthreads(n);
#pragma omp parallel for num_threads(nt) schedule(static) if(n->size > PAR_MIN)
    for (long r = 0; r < (long)rows; r++) {
        const float *xr = xv + (size_t)r * C;
        float *yr = y + (size_t)r * C;
        for (size_t c = 0; c < C; c++) yr[c] = (xr[c] - mean[c]) * inv_std[c] * gamma[c] + beta[c];
    }
}

static void bn_backward(mm_node *n) {
    const mm_node *x = n->in[0];
    float *dx = x->grad, *dgamma = n->in[1]->grad, *dbeta = n->in[2]->grad;
    const float *xv = x->value, *gamma = n->in[1]->value, *gy = n->grad;
    const size_t C = (size_t)n->shape[n->ndim - 1], rows = n->size / C;
    const int training = *(const int *)n->saved;
    const float *mean = (const float *)((const char *)n->saved + HEADER), *inv_std = mean + C;
    const int nt = nthreads(n);
    double *work = n->work;
    const long nb = (long)nblocks(rows);
    /* Per-channel sum(dy) and sum(dy * xhat), block partials [k][2C]. */
    double *sg = NULL, *sgx = NULL;
    if (dgamma || dbeta || (dx && training)) {
#pragma omp parallel for num_threads(nt) schedule(static) if(n->size > PAR_MIN)
        for (long k = 0; k < nb; k++) {
            double *p = work + (size_t)k * 2 * C;
            for (size_t c = 0; c < 2 * C; c++) p[c] = 0;
            size_t r0 = (size_t)k * ROW_BLOCK, r1 = r0 + ROW_BLOCK < rows ? r0 + ROW_BLOCK : rows;
            for (size_t r = r0; r < r1; r++) {
                const float *xr = xv + r * C, *gr = gy + r * C;
                for (size_t c = 0; c < C; c++) {
                    float xhat = (xr[c] - mean[c]) * inv_std[c];
                    p[c] += gr[c];
                    p[C + c] += (double)gr[c] * xhat;
                }
            }
        }
        /* Combine in block order into block 0's slot. */
        for (size_t c = 0; c < 2 * C; c++) {
            double s = 0;
            for (long k = 0; k < nb; k++) s += work[(size_t)k * 2 * C + c];
            work[c] = s;
        }
        sg = work;
        sgx = work + C;
        for (size_t c = 0; c < C; c++) {
            if (dgamma) dgamma[c] = n->acc[1] ? dgamma[c] + (float)sgx[c] : (float)sgx[c];
            if (dbeta) dbeta[c] = n->acc[2] ? dbeta[c] + (float)sg[c] : (float)sg[c];
        }
    }
    if (!dx) return;
    const int acc = n->acc[0];
    const float inv_m = 1.0f / (float)rows;
#pragma omp parallel for num_threads(nt) schedule(static) if(n->size > PAR_MIN)
    for (long r = 0; r < (long)rows; r++) {
        const float *xr = xv + (size_t)r * C, *gr = gy + (size_t)r * C;
        float *dr = dx + (size_t)r * C;
        for (size_t c = 0; c < C; c++) {
            float scale = gamma[c] * inv_std[c];
            float v;
            if (training) {
                float xhat = (xr[c] - mean[c]) * inv_std[c];
                v = scale * (gr[c] - (float)sg[c] * inv_m - xhat * (float)sgx[c] * inv_m);
            } else {
                v = scale * gr[c];
            }
            dr[c] = acc ? dr[c] + v : v;
        }
    }
}

static const mm_op batchnorm_op = {
    .name = "batchnorm",
    .infer = bn_infer,
    .saved_bytes = bn_saved_bytes,
    .work_bytes = bn_work_bytes,
    .forward = bn_forward,
    .backward = bn_backward,
    .backward_reads = 1u | 2u,
};

mm_node *mm_g_batchnorm(mm_graph *g, mm_node *x, mm_node *gamma, mm_node *beta,
                        mm_node *moving_mean, mm_node *moving_var, float momentum, float epsilon) {
    if (!g || !x || !gamma || !beta || !moving_mean || !moving_var) return NULL;
    mm_attrs a = {0};
    a.f[0] = momentum;
    a.f[1] = epsilon;
    mm_node *in[5] = {x, gamma, beta, moving_mean, moving_var};
    return mm_graph_op(g, &batchnorm_op, 5, in, &a, "batchnorm");
}
