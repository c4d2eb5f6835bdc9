/* maxpool2d and avgpool2d, channels-last [N, H, W, C] -> [N, OH, OW, C].
 * Max pooling saves the argmax of each output for the backward scatter. Average pooling
 * with "same" padding divides by the number of real (unpadded) cells, as TensorFlow. */
#include "ops/ops.h"

#include <float.h>
#include <stdint.h>
#include <string.h>

/* attrs: i[0] pool_h, i[1] pool_w, i[2] stride_h, i[3] stride_w, i[4] same, i[5] pad_top,
 *        i[6] pad_left */
static mm_status pool_infer(mm_node *n) {
    mm_node *x = n->in[0];
    if (x->ndim != 4)
        return mm_error(MM_ERR_SHAPE, "%s: input must be [N, H, W, C], got rank %d", n->op->name, x->ndim);
    int ph = n->a.i[0], pw = n->a.i[1], sh = n->a.i[2], sw = n->a.i[3], same = n->a.i[4];
    if (ph < 1 || pw < 1 || sh < 1 || sw < 1)
        return mm_error(MM_ERR_ARG, "%s: pool size and strides must be >= 1", n->op->name);
    int H = x->shape[1], W = x->shape[2], OH, OW;
    if (same) {
        OH = (H + sh - 1) / sh;
        OW = (W + sw - 1) / sw;
        int th = (OH - 1) * sh + ph - H, tw = (OW - 1) * sw + pw - W;
        n->a.i[5] = th > 0 ? th / 2 : 0;
        n->a.i[6] = tw > 0 ? tw / 2 : 0;
    } else {
        if (H < ph || W < pw)
            return mm_error(MM_ERR_SHAPE, "%s: input %dx%d is smaller than pool %dx%d", n->op->name,
                            H, W, ph, pw);
        OH = (H - ph) / sh + 1;
        OW = (W - pw) / sw + 1;
        n->a.i[5] = n->a.i[6] = 0;
    }
    n->ndim = 4;
    n->shape[0] = x->shape[0];
    n->shape[1] = OH;
    n->shape[2] = OW;
    n->shape[3] = x->shape[3];
    return MM_OK;
}

static size_t maxpool_saved(const mm_node *n) { return n->size * sizeof(int32_t); }

static void maxpool_forward(mm_node *n) {
    const mm_node *x = n->in[0];
    const int N = x->shape[0], H = x->shape[1], W = x->shape[2], C = x->shape[3];
    const int OH = n->shape[1], OW = n->shape[2];
    const int ph = n->a.i[0], pw = n->a.i[1], sh = n->a.i[2], sw = n->a.i[3], pt = n->a.i[5], pl = n->a.i[6];
    int32_t *arg = n->saved;
#pragma omp parallel for num_threads(n->g->threads) schedule(static)
    for (int i = 0; i < N; i++) {
        const float *img = x->value + (size_t)i * H * W * C;
        for (int oh = 0; oh < OH; oh++)
            for (int ow = 0; ow < OW; ow++) {
                size_t o = (((size_t)i * OH + oh) * OW + ow) * C;
                float *y = n->value + o;
                int32_t *a = arg + o;
                for (int c = 0; c < C; c++) y[c] = -FLT_MAX, a[c] = 0;
                for (int kh = 0; kh < ph; kh++) {
                    int ih = oh * sh - pt + kh;
                    if (ih < 0 || ih >= H) continue;
                    for (int kw = 0; kw < pw; kw++) {
                        int iw = ow * sw - pl + kw;
                        if (iw < 0 || iw >= W) continue;
                        int32_t base = (int32_t)(((size_t)ih * W + iw) * C);
                        const float *p = img + base;
                        for (int c = 0; c < C; c++)
                            if (p[c] > y[c]) y[c] = p[c], a[c] = base + c;
                    }
                }
            }
    }
}

static void maxpool_backward(mm_node *n) {
    mm_node *x = n->in[0];
    if (!x->grad) return;
    const int N = x->shape[0], H = x->shape[1], W = x->shape[2], C = x->shape[3];
    const size_t per_out = (size_t)n->shape[1] * n->shape[2] * C, per_in = (size_t)H * W * C;
    const int32_t *arg = n->saved;
    int acc = n->acc[0];
#pragma omp parallel for num_threads(n->g->threads) schedule(static)
    for (int i = 0; i < N; i++) {
        float *dx = x->grad + (size_t)i * per_in;
        if (!acc) memset(dx, 0, per_in * sizeof(float));
        const float *dy = n->grad + (size_t)i * per_out;
        const int32_t *a = arg + (size_t)i * per_out;
        for (size_t o = 0; o < per_out; o++) dx[a[o]] += dy[o];
    }
}

/* Number of real cells under the window of output (oh, ow). */
static int window_count(const mm_node *n, int oh, int ow) {
    const mm_node *x = n->in[0];
    int H = x->shape[1], W = x->shape[2];
    int h0 = oh * n->a.i[2] - n->a.i[5], w0 = ow * n->a.i[3] - n->a.i[6];
    int h1 = h0 + n->a.i[0], w1 = w0 + n->a.i[1];
    if (h0 < 0) h0 = 0;
    if (w0 < 0) w0 = 0;
    if (h1 > H) h1 = H;
    if (w1 > W) w1 = W;
    return (h1 - h0) * (w1 - w0);
}

static void avgpool_forward(mm_node *n) {
    const mm_node *x = n->in[0];
    const int N = x->shape[0], H = x->shape[1], W = x->shape[2], C = x->shape[3];
    const int OH = n->shape[1], OW = n->shape[2];
    const int ph = n->a.i[0], pw = n->a.i[1], sh = n->a.i[2], sw = n->a.i[3], pt = n->a.i[5], pl = n->a.i[6];
#pragma omp parallel for num_threads(n->g->threads) schedule(static)
    for (int i = 0; i < N; i++) {
        const float *img = x->value + (size_t)i * H * W * C;
        for (int oh = 0; oh < OH; oh++)
            for (int ow = 0; ow < OW; ow++) {
                float *y = n->value + (((size_t)i * OH + oh) * OW + ow) * C;
                memset(y, 0, (size_t)C * sizeof(float));
                for (int kh = 0; kh < ph; kh++) {
                    int ih = oh * sh - pt + kh;
                    if (ih < 0 || ih >= H) continue;
                    for (int kw = 0; kw < pw; kw++) {
                        int iw = ow * sw - pl + kw;
                        if (iw < 0 || iw >= W) continue;
                        const float *p = img + ((size_t)ih * W + iw) * C;
                        for (int c = 0; c < C; c++) y[c] += p[c];
                    }
                }
                float inv = 1.0f / (float)window_count(n, oh, ow);
                for (int c = 0; c < C; c++) y[c] *= inv;
            }
    }
}

static void avgpool_backward(mm_node *n) {
    mm_node *x = n->in[0];
    if (!x->grad) return;
    const int N = x->shape[0], H = x->shape[1], W = x->shape[2], C = x->shape[3];
    const int OH = n->shape[1], OW = n->shape[2];
    const int ph = n->a.i[0], pw = n->a.i[1], sh = n->a.i[2], sw = n->a.i[3], pt = n->a.i[5], pl = n->a.i[6];
    int acc = n->acc[0];
#pragma omp parallel for num_threads(n->g->threads) schedule(static)
    for (int i = 0; i < N; i++) {
        float *dx = x->grad + (size_t)i * H * W * C;
        if (!acc) memset(dx, 0, (size_t)H * W * C * sizeof(float));
        for (int oh = 0; oh < OH; oh++)
            for (int ow = 0; ow < OW; ow++) {
                const float *dy = n->grad + (((size_t)i * OH + oh) * OW + ow) * C;
                float inv = 1.0f / (float)window_count(n, oh, ow);
                for (int kh = 0; kh < ph; kh++) {
                    int ih = oh * sh - pt + kh;
                    if (ih < 0 || ih >= H) continue;
                    for (int kw = 0; kw < pw; kw++) {
                        int iw = ow * sw - pl + kw;
                        if (iw < 0 || iw >= W) continue;
                        float *d = dx + ((size_t)ih * W + iw) * C;
                        for (int c = 0; c < C; c++) d[c] += dy[c] * inv;
                    }
                }
            }
    }
}

static const mm_op maxpool_op = {
    .name = "maxpool2d",
    .infer = pool_infer,
    .saved_bytes = maxpool_saved,
    .forward = maxpool_forward,
    .backward = maxpool_backward,
    .backward_reads = 0,
};

static const mm_op avgpool_op = {
    .name = "avgpool2d",
    .infer = pool_infer,
    .forward = avgpool_forward,
    .backward = avgpool_backward,
    .backward_reads = 0,
};

static mm_node *pool(mm_graph *g, const mm_op *op, mm_node *x, int ph, int pw, int sh, int sw, int same) {
    mm_attrs a = {0};
    a.i[0] = ph, a.i[1] = pw, a.i[2] = sh, a.i[3] = sw, a.i[4] = same;
    mm_node *in[1] = {x};
    return mm_graph_op(g, op, 1, in, &a, NULL);
}

mm_node *mm_g_maxpool2d(mm_graph *g, mm_node *x, int pool_h, int pool_w, int stride_h, int stride_w,
                        int same_padding) {
    return pool(g, &maxpool_op, x, pool_h, pool_w, stride_h, stride_w, same_padding);
}

mm_node *mm_g_avgpool2d(mm_graph *g, mm_node *x, int pool_h, int pool_w, int stride_h, int stride_w,
                        int same_padding) {
    return pool(g, &avgpool_op, x, pool_h, pool_w, stride_h, stride_w, same_padding);
}
