/* Losses. Each returns a scalar [1]: the mean over the batch (cross-entropies) or over all
 * elements (binary cross-entropy, MSE), matching Keras's reductions. The softmax and sigmoid
 * forms take logits and fuse the activation, which is both faster and numerically stable:
 * log-sum-exp with the max subtracted, log(1 + e^-|z|). */
#include "ops/ops.h"

#include <math.h>
#include <string.h>

#define PROB_EPS 1e-7f /* Keras's backend epsilon for clipping probabilities */

static mm_status scalar_shape(mm_node *n) {
    n->ndim = 1;
    n->shape[0] = 1;
    n->batched = 0;
    return MM_OK;
}

/* Checks that labels fit predictions [rows, K]: sparse -> [rows] (or [rows, 1]), dense -> same. */
static mm_status check_labels(mm_node *n, int sparse) {
    mm_node *p = n->in[0], *y = n->in[1];
    size_t K = (size_t)p->shape[p->ndim - 1], rows = p->size / K;
    if (sparse) {
        if (y->size != rows)
            return mm_error(MM_ERR_SHAPE, "%s: %zu labels for %zu predictions", n->op->name, y->size, rows);
    } else if (y->size != p->size) {
        return mm_error(MM_ERR_SHAPE, "%s: targets have %zu values, predictions %zu", n->op->name,
                        y->size, p->size);
    }
    return scalar_shape(n);
}

/* ---- softmax cross-entropy (attrs i[0] = sparse) ---- */

static mm_status sce_infer(mm_node *n) { return check_labels(n, n->a.i[0]); }
/* saved: the probabilities [rows, K], then each row's loss as a double (8-byte aligned) */
static size_t sce_prob_bytes(const mm_node *n) { return (mm_cap_size(n->in[0]) * sizeof(float) + 7) / 8 * 8; }
static size_t sce_saved(const mm_node *n) {
    const mm_node *z = n->in[0];
    return sce_prob_bytes(n) + mm_cap_size(z) / (size_t)z->shape[z->ndim - 1] * sizeof(double);
}

/* Label index, or -1 when it is not a valid class (loss becomes NaN: fit reports it). */
static int label_at(const float *y, size_t r, size_t K) {
    float v = y[r];
    if (!(v >= 0) || v >= (float)K || v != floorf(v)) return -1;
    return (int)v;
}

/* Rows on threads once there are this many logits (a language model's 4096 x 65 spent 1% of
 * its step here on one thread). */
#define SCE_PAR_MIN 65536
static int sce_threads(const mm_node *n, size_t elems) {
    const int nt = n->g && n->g->threads > 0 ? n->g->threads : mm_threads();
    return elems >= SCE_PAR_MIN ? nt : 1;
}

/* Rows are independent and on threads; their losses are then added in row order, so the loss
 * does not depend on the thread count. */
static void sce_forward(mm_node *n) {
    const mm_node *z = n->in[0];
    const float *y = n->in[1]->value;
    const size_t K = (size_t)z->shape[z->ndim - 1], rows = z->size / K;
    float *prob = n->saved;
    double *row_loss = (double *)((char *)n->saved + sce_prob_bytes(n));
    const int sparse = n->a.i[0];
#pragma omp parallel for num_threads(sce_threads(n, z->size)) schedule(static)
    for (size_t r = 0; r < rows; r++) {
        const float *zr = z->value + r * K;
        float *pr = prob + r * K;
        float m = zr[0];
        for (size_t k = 1; k < K; k++) m = zr[k] > m ? zr[k] : m;
        double s = 0;
        for (size_t k = 0; k < K; k++) s += (pr[k] = expf(zr[k] - m));
        float inv = (float)(1.0 / s);
        for (size_t k = 0; k < K; k++) pr[k] *= inv;
        double lse = (double)m + log(s), loss = 0;
        if (sparse) {
            int c = label_at(y, r, K);
            loss = c < 0 ? NAN : lse - zr[c];
        } else {
            for (size_t k = 0; k < K; k++) loss += y[r * K + k] * (lse - zr[k]);
        }
        row_loss[r] = loss;
    }
    double total = 0;
    for (size_t r = 0; r < rows; r++) total += row_loss[r];
    n->value[0] = (float)(total / (double)rows);
}

static void sce_backward(mm_node *n) {
    mm_node *z = n->in[0];
    const float *y = n->in[1]->value, *prob = n->saved;
    const size_t K = (size_t)z->shape[z->ndim - 1], rows = z->size / K;
    const float scale = n->grad[0] / (float)rows;
    const int sparse = n->a.i[0], acc = n->acc[0];
    if (z->grad) {
#pragma omp parallel for num_threads(sce_threads(n, z->size)) schedule(static)
        for (size_t r = 0; r < rows; r++) {
            float *dz = z->grad + r * K;
            const float *pr = prob + r * K;
            int c = sparse ? label_at(y, r, K) : -1;
            for (size_t k = 0; k < K; k++) {
                float t = sparse ? (k == (size_t)c ? 1.0f : 0.0f) : y[r * K + k];
                float d = (pr[k] - t) * scale;
                dz[k] = acc ? dz[k] + d : d;
            }
        }
    }
    mm_node *yl = n->in[1];
    if (yl->grad && !sparse) { /* d/dy of -sum y log p = -log p */
        for (size_t i = 0; i < yl->size; i++) {
            float d = -logf(fmaxf(prob[i], 1e-30f)) * scale;
            yl->grad[i] = n->acc[1] ? yl->grad[i] + d : d;
        }
    } else if (yl->grad) {
        if (!n->acc[1]) memset(yl->grad, 0, yl->size * sizeof(float));
    }
}

static const mm_op sce_op = {
    .name = "softmax_cross_entropy",
    .infer = sce_infer,
    .saved_bytes = sce_saved,
    .forward = sce_forward,
    .backward = sce_backward,
    .backward_reads = 1u << 1,
};

mm_node *mm_g_softmax_cross_entropy(mm_graph *g, mm_node *logits, mm_node *labels, int sparse) {
    mm_attrs a = {0};
    a.i[0] = sparse;
    mm_node *in[2] = {logits, labels};
    return mm_graph_op(g, &sce_op, 2, in, &a, NULL);
}

/* ---- cross-entropy on probabilities (attrs i[0] = sparse) ---- */

static float clip_prob(float p) { return p < PROB_EPS ? PROB_EPS : (p > 1 - PROB_EPS ? 1 - PROB_EPS : p); }

static void pce_forward(mm_node *n) {
    const mm_node *p = n->in[0];
    const float *y = n->in[1]->value;
    const size_t K = (size_t)p->shape[p->ndim - 1], rows = p->size / K;
    double total = 0;
    for (size_t r = 0; r < rows; r++) {
        const float *pr = p->value + r * K;
        if (n->a.i[0]) {
            int c = label_at(y, r, K);
            total += c < 0 ? NAN : -log(clip_prob(pr[c]));
        } else {
            for (size_t k = 0; k < K; k++) total -= y[r * K + k] * log(clip_prob(pr[k]));
        }
    }
    n->value[0] = (float)(total / (double)rows);
}

static void pce_backward(mm_node *n) {
    mm_node *p = n->in[0], *yl = n->in[1];
    const float *y = yl->value;
    const size_t K = (size_t)p->shape[p->ndim - 1], rows = p->size / K;
    const float scale = n->grad[0] / (float)rows;
    const int sparse = n->a.i[0];
    for (size_t r = 0; r < rows; r++) {
        int c = sparse ? label_at(y, r, K) : -1;
        for (size_t k = 0; k < K; k++) {
            size_t i = r * K + k;
            float v = p->value[i];
            if (p->grad) {
                float t = sparse ? (k == (size_t)c ? 1.0f : 0.0f) : y[i];
                /* Clipping makes the loss flat outside [eps, 1-eps]. */
                float d = (v < PROB_EPS || v > 1 - PROB_EPS) ? 0.0f : -t / v * scale;
                p->grad[i] = n->acc[0] ? p->grad[i] + d : d;
            }
            if (yl->grad && !sparse) {
                float d = -logf(clip_prob(v)) * scale;
                yl->grad[i] = n->acc[1] ? yl->grad[i] + d : d;
            }
        }
    }
    if (yl->grad && sparse && !n->acc[1]) memset(yl->grad, 0, yl->size * sizeof(float));
}

static const mm_op pce_op = {
    .name = "prob_cross_entropy",
    .infer = sce_infer,
    .forward = pce_forward,
    .backward = pce_backward,
    .backward_reads = (1u << 0) | (1u << 1),
};

mm_node *mm_g_prob_cross_entropy(mm_graph *g, mm_node *probs, mm_node *labels, int sparse) {
    mm_attrs a = {0};
    a.i[0] = sparse;
    mm_node *in[2] = {probs, labels};
    return mm_graph_op(g, &pce_op, 2, in, &a, NULL);
}

/* ---- element-wise losses: sigmoid BCE, probability BCE, MSE ---- */

static mm_status same_shape_infer(mm_node *n) { return check_labels(n, 0); }

static void sbce_forward(mm_node *n) {
    const float *z = n->in[0]->value, *t = n->in[1]->value;
    double total = 0;
    for (size_t i = 0; i < n->in[0]->size; i++)
        total += fmaxf(z[i], 0.0f) - z[i] * t[i] + log1pf(expf(-fabsf(z[i])));
    n->value[0] = (float)(total / (double)n->in[0]->size);
}

static void sbce_backward(mm_node *n) {
    mm_node *zn = n->in[0], *tn = n->in[1];
    const float *z = zn->value, *t = tn->value;
    const float scale = n->grad[0] / (float)zn->size;
    for (size_t i = 0; i < zn->size; i++) {
        if (zn->grad) {
            float s = 1.0f / (1.0f + expf(-z[i]));
            float d = (s - t[i]) * scale;
            zn->grad[i] = n->acc[0] ? zn->grad[i] + d : d;
        }
        if (tn->grad) {
            float d = -z[i] * scale;
            tn->grad[i] = n->acc[1] ? tn->grad[i] + d : d;
        }
    }
}

static const mm_op sbce_op = {
    .name = "sigmoid_bce",
    .infer = same_shape_infer,
    .forward = sbce_forward,
    .backward = sbce_backward,
    .backward_reads = (1u << 0) | (1u << 1),
};

mm_node *mm_g_sigmoid_bce(mm_graph *g, mm_node *logits, mm_node *targets) {
    mm_node *in[2] = {logits, targets};
    return mm_graph_op(g, &sbce_op, 2, in, NULL, NULL);
}

static void pbce_forward(mm_node *n) {
    const float *p = n->in[0]->value, *t = n->in[1]->value;
    double total = 0;
    for (size_t i = 0; i < n->in[0]->size; i++) {
        float q = clip_prob(p[i]);
        total -= t[i] * log(q) + (1 - t[i]) * log(1 - q);
    }
    n->value[0] = (float)(total / (double)n->in[0]->size);
}

static void pbce_backward(mm_node *n) {
    mm_node *pn = n->in[0], *tn = n->in[1];
    const float *p = pn->value, *t = tn->value;
    const float scale = n->grad[0] / (float)pn->size;
    for (size_t i = 0; i < pn->size; i++) {
        float q = clip_prob(p[i]);
        if (pn->grad) {
            float d = (p[i] < PROB_EPS || p[i] > 1 - PROB_EPS) ? 0.0f : (-t[i] / q + (1 - t[i]) / (1 - q)) * scale;
            pn->grad[i] = n->acc[0] ? pn->grad[i] + d : d;
        }
        if (tn->grad) {
            float d = -(logf(q) - logf(1 - q)) * scale;
            tn->grad[i] = n->acc[1] ? tn->grad[i] + d : d;
        }
    }
}

static const mm_op pbce_op = {
    .name = "binary_cross_entropy",
    .infer = same_shape_infer,
    .forward = pbce_forward,
    .backward = pbce_backward,
    .backward_reads = (1u << 0) | (1u << 1),
};

mm_node *mm_g_prob_bce(mm_graph *g, mm_node *probs, mm_node *targets) {
    mm_node *in[2] = {probs, targets};
    return mm_graph_op(g, &pbce_op, 2, in, NULL, NULL);
}

static void mse_forward(mm_node *n) {
    const float *p = n->in[0]->value, *t = n->in[1]->value;
    double total = 0;
    for (size_t i = 0; i < n->in[0]->size; i++) {
        double d = (double)p[i] - t[i];
        total += d * d;
    }
    n->value[0] = (float)(total / (double)n->in[0]->size);
}

static void mse_backward(mm_node *n) {
    mm_node *pn = n->in[0], *tn = n->in[1];
    const float scale = 2.0f * n->grad[0] / (float)pn->size;
    for (size_t i = 0; i < pn->size; i++) {
        float d = (pn->value[i] - tn->value[i]) * scale;
        if (pn->grad) pn->grad[i] = n->acc[0] ? pn->grad[i] + d : d;
        if (tn->grad) tn->grad[i] = n->acc[1] ? tn->grad[i] - d : -d;
    }
}

static const mm_op mse_op = {
    .name = "mse",
    .infer = same_shape_infer,
    .forward = mse_forward,
    .backward = mse_backward,
    .backward_reads = (1u << 0) | (1u << 1),
};

mm_node *mm_g_mse(mm_graph *g, mm_node *pred, mm_node *targets) {
    mm_node *in[2] = {pred, targets};
    return mm_graph_op(g, &mse_op, 2, in, NULL, NULL);
}
