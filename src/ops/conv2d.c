/* conv2d, channels-last: x [N, H, W, C] * w [KH, KW, C, F] (+ b [F]) -> y [N, OH, OW, F].
 *
 * Each thread takes a contiguous run of images, unfolds a chunk of them into patch rows
 * (im2col: one row of KH*KW*C values per output pixel) and multiplies by the kernel with one
 * GEMM, so the kernel's [K, F] layout is used as is. Weight gradients are summed into
 * per-thread partials and reduced in thread order: deterministic for a thread count.
 * "same" padding follows TensorFlow: total padding max((OH-1)*s + K - H, 0), the smaller
 * half on the top/left. */
#include "ops/ops.h"

#include <cblas.h>
#include <omp.h>
#include <stdint.h>
#include <string.h>

/* attrs: i[0] stride_h, i[1] stride_w, i[2] same, i[3] pad_top, i[4] pad_left,
 *        i[5] images per im2col chunk, i[6] fused relu */
#define MAX_COL_FLOATS (1u << 21) /* 8 MiB of patches per thread */

typedef struct geom {
    int N, H, W, C, KH, KW, F, OH, OW, sh, sw, pt, pl, K, P;
} geom;

static geom get_geom(const mm_node *n) {
    const mm_node *x = n->in[0], *w = n->in[1];
    geom q;
    q.N = x->shape[0], q.H = x->shape[1], q.W = x->shape[2], q.C = x->shape[3];
    q.KH = w->shape[0], q.KW = w->shape[1], q.F = w->shape[3];
    q.OH = n->shape[1], q.OW = n->shape[2];
    q.sh = n->a.i[0], q.sw = n->a.i[1], q.pt = n->a.i[3], q.pl = n->a.i[4];
    q.K = q.KH * q.KW * q.C;
    q.P = q.OH * q.OW;
    return q;
}

static mm_status conv_infer(mm_node *n) {
    mm_node *x = n->in[0], *w = n->in[1];
    if (x->ndim != 4)
        return mm_error(MM_ERR_SHAPE, "conv2d: input must be [N, H, W, C], got rank %d", x->ndim);
    if (w->ndim != 4)
        return mm_error(MM_ERR_SHAPE, "conv2d: kernel must be [KH, KW, C, F], got rank %d", w->ndim);
    if (w->shape[2] != x->shape[3])
        return mm_error(MM_ERR_SHAPE, "conv2d: input has %d channels but kernel expects %d",
                        x->shape[3], w->shape[2]);
    if (n->n_in == 3 && n->in[2]->size != (size_t)w->shape[3])
        return mm_error(MM_ERR_SHAPE, "conv2d: bias has %zu elements, expected %d", n->in[2]->size,
                        w->shape[3]);
    int sh = n->a.i[0], sw = n->a.i[1], same = n->a.i[2];
    if (sh < 1 || sw < 1) return mm_error(MM_ERR_ARG, "conv2d: strides must be >= 1");
    int H = x->shape[1], W = x->shape[2], KH = w->shape[0], KW = w->shape[1];
    int OH, OW;
    if (same) {
        OH = (H + sh - 1) / sh;
        OW = (W + sw - 1) / sw;
        int ph = (OH - 1) * sh + KH - H, pw = (OW - 1) * sw + KW - W;
        n->a.i[3] = ph > 0 ? ph / 2 : 0;
        n->a.i[4] = pw > 0 ? pw / 2 : 0;
    } else {
        if (H < KH || W < KW)
            return mm_error(MM_ERR_SHAPE, "conv2d: input %dx%d is smaller than kernel %dx%d", H, W,
                            KH, KW);
        OH = (H - KH) / sh + 1;
        OW = (W - KW) / sw + 1;
        n->a.i[3] = n->a.i[4] = 0;
    }
    n->ndim = 4;
    n->shape[0] = x->shape[0];
    n->shape[1] = OH;
    n->shape[2] = OW;
    n->shape[3] = w->shape[3];
    int nt = n->g->threads > 0 ? n->g->threads : mm_threads();
    size_t per_thread = ((size_t)x->shape[0] + (size_t)nt - 1) / (size_t)nt;
    size_t patch = (size_t)OH * OW * KH * KW * x->shape[3];
    size_t chunk = patch ? MAX_COL_FLOATS / patch : 1;
    if (chunk < 1) chunk = 1;
    if (chunk > per_thread) chunk = per_thread;
    n->a.i[5] = (int)chunk;
    return MM_OK;
}

static size_t conv_work(const mm_node *n) {
    geom q = get_geom(n);
    int nt = n->g->threads > 0 ? n->g->threads : mm_threads();
    size_t per = (size_t)n->a.i[5] * q.P * q.K + (size_t)q.K * q.F + (size_t)q.F + 16;
    return (size_t)nt * per * sizeof(float);
}

/* Unfolds images [i0, i0+cnt) into col [cnt*P, K]. */
static void im2col(const geom *q, const float *x, int i0, int cnt, float *col) {
    for (int i = 0; i < cnt; i++) {
        const float *img = x + (size_t)(i0 + i) * q->H * q->W * q->C;
        for (int oh = 0; oh < q->OH; oh++)
            for (int ow = 0; ow < q->OW; ow++) {
                float *row = col + ((size_t)i * q->P + (size_t)oh * q->OW + ow) * q->K;
                for (int kh = 0; kh < q->KH; kh++) {
                    int ih = oh * q->sh - q->pt + kh;
                    float *dst = row + (size_t)kh * q->KW * q->C;
                    if (ih < 0 || ih >= q->H) {
                        memset(dst, 0, (size_t)q->KW * q->C * sizeof(float));
                        continue;
                    }
                    for (int kw = 0; kw < q->KW; kw++) {
                        int iw = ow * q->sw - q->pl + kw;
                        if (iw < 0 || iw >= q->W)
                            memset(dst + kw * q->C, 0, (size_t)q->C * sizeof(float));
                        else
                            memcpy(dst + kw * q->C, img + ((size_t)ih * q->W + iw) * q->C,
                                   (size_t)q->C * sizeof(float));
                    }
                }
            }
    }
}

/* Adds col [cnt*P, K] back into dx images [i0, i0+cnt). */
static void col2im(const geom *q, const float *col, int i0, int cnt, float *dx) {
    for (int i = 0; i < cnt; i++) {
        float *img = dx + (size_t)(i0 + i) * q->H * q->W * q->C;
        for (int oh = 0; oh < q->OH; oh++)
            for (int ow = 0; ow < q->OW; ow++) {
                const float *row = col + ((size_t)i * q->P + (size_t)oh * q->OW + ow) * q->K;
                for (int kh = 0; kh < q->KH; kh++) {
                    int ih = oh * q->sh - q->pt + kh;
                    if (ih < 0 || ih >= q->H) continue;
                    for (int kw = 0; kw < q->KW; kw++) {
                        int iw = ow * q->sw - q->pl + kw;
                        if (iw < 0 || iw >= q->W) continue;
                        float *d = img + ((size_t)ih * q->W + iw) * q->C;
                        const float *s = row + ((size_t)kh * q->KW + kw) * q->C;
                        for (int c = 0; c < q->C; c++) d[c] += s[c];
                    }
                }
            }
    }
}


/* ---- direct kernels for small patches (e.g. a first layer on 1-channel images) ----
 * With K = KH*KW*C small, im2col + GEMM spends its time copying single floats; these loops
 * instead keep one output pixel's F accumulators in registers (F is a compile-time constant
 * in the specialized copies below) and stream the kernel from L1. */
#define DIRECT_MAX_K 64

#ifdef __AVX2__
#include <immintrin.h>
/* Two neighbouring output pixels, NV*8 filters from f0: y = b + sum_k x[off[k]] * w[k].
 * Eight ymm accumulators in two independent chains keep both FMA ports busy. */
static inline __attribute__((always_inline)) void fwd_pair_avx2(const float *p0, const float *p1,
                                                                const int *off, int K, const float *w,
                                                                int F, const float *b, float *o0,
                                                                float *o1, const int NV, int relu) {
    __m256 a0[4], a1[4];
    for (int j = 0; j < NV; j++) a0[j] = a1[j] = b ? _mm256_loadu_ps(b + 8 * j) : _mm256_setzero_ps();
    for (int k = 0; k < K; k++) {
        const __m256 v0 = _mm256_broadcast_ss(p0 + off[k]), v1 = _mm256_broadcast_ss(p1 + off[k]);
        const float *wk = w + (size_t)k * F;
        for (int j = 0; j < NV; j++) {
            const __m256 wv = _mm256_loadu_ps(wk + 8 * j);
            a0[j] = _mm256_fmadd_ps(v0, wv, a0[j]);
            a1[j] = _mm256_fmadd_ps(v1, wv, a1[j]);
        }
    }
    if (relu) {
        const __m256 z = _mm256_setzero_ps();
        for (int j = 0; j < NV; j++) a0[j] = _mm256_max_ps(a0[j], z), a1[j] = _mm256_max_ps(a1[j], z);
    }
    for (int j = 0; j < NV; j++) _mm256_storeu_ps(o0 + 8 * j, a0[j]), _mm256_storeu_ps(o1 + 8 * j, a1[j]);
}

/* dw rows: d[0..NV*8) += sum over pixel pairs of x0 * g0 + x1 * g1, for `pairs` pairs whose
 * inputs are xs[i*xstride] and gradients gs[i*gstride]. */
static inline __attribute__((always_inline)) void dw_pairs_avx2(const float *xs, int xstride,
                                                                const float *gs, int gstride, int pairs,
                                                                float *d, const int NV) {
    __m256 a0[4], a1[4];
    for (int j = 0; j < NV; j++) a0[j] = _mm256_loadu_ps(d + 8 * j), a1[j] = _mm256_setzero_ps();
    for (int i = 0; i < pairs; i++) {
        const __m256 v0 = _mm256_broadcast_ss(xs + (size_t)(2 * i) * xstride);
        const __m256 v1 = _mm256_broadcast_ss(xs + (size_t)(2 * i + 1) * xstride);
        const float *g0 = gs + (size_t)(2 * i) * gstride, *g1 = g0 + gstride;
        for (int j = 0; j < NV; j++) {
            a0[j] = _mm256_fmadd_ps(v0, _mm256_loadu_ps(g0 + 8 * j), a0[j]);
            a1[j] = _mm256_fmadd_ps(v1, _mm256_loadu_ps(g1 + 8 * j), a1[j]);
        }
    }
    for (int j = 0; j < NV; j++) _mm256_storeu_ps(d + 8 * j, _mm256_add_ps(a0[j], a1[j]));
}

static void dw_pairs(const float *xs, int xstride, const float *gs, int F, int pairs, float *d) {
    int f0 = 0;
    for (; f0 + 32 <= F; f0 += 32) dw_pairs_avx2(xs, xstride, gs + f0, F, pairs, d + f0, 4);
    for (; f0 + 8 <= F; f0 += 8) dw_pairs_avx2(xs, xstride, gs + f0, F, pairs, d + f0, 1);
    for (; f0 < F; f0++)
        for (int i = 0; i < 2 * pairs; i++) d[f0] += xs[(size_t)i * xstride] * gs[(size_t)i * F + f0];
}
#define HAVE_DW_PAIRS 1

static void fwd_pair(const float *p0, const float *p1, const int *off, int K, const float *w, int F,
                     const float *b, float *o0, float *o1, int relu) {
    int f0 = 0;
    for (; f0 + 32 <= F; f0 += 32)
        fwd_pair_avx2(p0, p1, off, K, w + f0, F, b ? b + f0 : NULL, o0 + f0, o1 + f0, 4, relu);
    for (; f0 + 8 <= F; f0 += 8)
        fwd_pair_avx2(p0, p1, off, K, w + f0, F, b ? b + f0 : NULL, o0 + f0, o1 + f0, 1, relu);
    for (; f0 < F; f0++) {
        float s0 = b ? b[f0] : 0.0f, s1 = s0;
        for (int k = 0; k < K; k++) s0 += p0[off[k]] * w[(size_t)k * F + f0], s1 += p1[off[k]] * w[(size_t)k * F + f0];
        o0[f0] = relu && s0 < 0 ? 0.0f : s0, o1[f0] = relu && s1 < 0 ? 0.0f : s1;
    }
}
#define HAVE_FWD_PAIR 1
#endif

/* Offsets of the K patch elements relative to the patch origin, in (kh, kw, c) order. */
static void patch_offsets(const geom *q, int *off) {
    int k = 0;
    for (int kh = 0; kh < q->KH; kh++)
        for (int kw = 0; kw < q->KW; kw++)
            for (int c = 0; c < q->C; c++) off[k++] = (kh * q->W + kw) * q->C + c;
}

/* Whether every tap of output (oh, ow) lies inside the image (no padding involved). */
static inline int interior(const geom *q, int oh, int ow) {
    int ih = oh * q->sh - q->pt, iw = ow * q->sw - q->pl;
    return ih >= 0 && iw >= 0 && ih + q->KH <= q->H && iw + q->KW <= q->W;
}

static inline __attribute__((always_inline)) void direct_fwd_image(const geom *q, const float *img,
                                                                   const float *w, const float *b,
                                                                   float *out, const int F, int relu) {
    int off[DIRECT_MAX_K];
    patch_offsets(q, off);
    for (int oh = 0; oh < q->OH; oh++)
        for (int ow = 0; ow < q->OW; ow++) {
            float *o = out + ((size_t)oh * q->OW + ow) * F;
            int ih0 = oh * q->sh - q->pt, iw0 = ow * q->sw - q->pl;
            if (ow + 1 < q->OW && interior(q, oh, ow) && interior(q, oh, ow + 1)) {
                /* Two pixels at once: two independent accumulator chains hide FMA latency. */
                const float *p0 = img + ((size_t)ih0 * q->W + iw0) * q->C;
                const float *p1 = p0 + (size_t)q->sw * q->C;
#ifdef HAVE_FWD_PAIR
                fwd_pair(p0, p1, off, q->K, w, F, b, o, o + F, relu);
#else
                float a0[F], a1[F];
                for (int f = 0; f < F; f++) a0[f] = a1[f] = b ? b[f] : 0.0f;
                for (int k = 0; k < q->K; k++) {
                    const float v0 = p0[off[k]], v1 = p1[off[k]];
                    const float *wk = w + (size_t)k * F;
                    for (int f = 0; f < F; f++) {
                        a0[f] += v0 * wk[f];
                        a1[f] += v1 * wk[f];
                    }
                }
                for (int f = 0; f < F; f++)
                    o[f] = relu && a0[f] < 0 ? 0.0f : a0[f], o[F + f] = relu && a1[f] < 0 ? 0.0f : a1[f];
#endif
                ow++;
                continue;
            }
            float acc[F];
            for (int f = 0; f < F; f++) acc[f] = b ? b[f] : 0.0f;
            for (int kh = 0; kh < q->KH; kh++) {
                int ih = ih0 + kh;
                if (ih < 0 || ih >= q->H) continue;
                for (int kw = 0; kw < q->KW; kw++) {
                    int iw = iw0 + kw;
                    if (iw < 0 || iw >= q->W) continue;
                    const float *xp = img + ((size_t)ih * q->W + iw) * q->C;
                    const float *wp = w + (size_t)(kh * q->KW + kw) * q->C * F;
                    for (int c = 0; c < q->C; c++) {
                        const float v = xp[c];
                        for (int f = 0; f < F; f++) acc[f] += v * wp[c * F + f];
                    }
                }
            }
            for (int f = 0; f < F; f++) o[f] = relu && acc[f] < 0 ? 0.0f : acc[f];
        }
}

/* dw[K, F] += sum over pixels of patch x dy; db[F] += sum dy. One output row at a time so
 * that row of dy stays in L1 while every kernel tap passes over it. */
static inline __attribute__((always_inline)) void direct_dw_image(const geom *q, const float *img,
                                                                  const float *dy, float *dw,
                                                                  float *db, const int F) {
    for (int oh = 0; oh < q->OH; oh++) {
        const float *dyr = dy + (size_t)oh * q->OW * F;
        if (db)
            for (int ow = 0; ow < q->OW; ow++)
                for (int f = 0; f < F; f++) db[f] += dyr[(size_t)ow * F + f];
        for (int kh = 0; kh < q->KH; kh++) {
            int ih = oh * q->sh - q->pt + kh;
            if (ih < 0 || ih >= q->H) continue;
            for (int kw = 0; kw < q->KW; kw++)
                for (int c = 0; c < q->C; c++) {
                    float a0[F], a1[F];
                    float *d = dw + ((size_t)(kh * q->KW + kw) * q->C + c) * F;
                    for (int f = 0; f < F; f++) a0[f] = d[f], a1[f] = 0.0f;
                    const float *row = img + (size_t)ih * q->W * q->C + c;
                    int ow = 0;
                    /* Interior columns in pairs (two accumulator chains), edges checked. */
                    for (; ow < q->OW; ow++) {
                        int iw = ow * q->sw - q->pl + kw;
                        if (iw >= 0) break;
                    }
#ifdef HAVE_DW_PAIRS
                    {
                        int end = ow;
                        while (end + 1 < q->OW && (end + 1) * q->sw - q->pl + kw < q->W) end += 2;
                        int pairs = (end - ow) / 2;
                        if (pairs > 0) {
                            for (int f = 0; f < F; f++) d[f] = a0[f];
                            dw_pairs(row + (size_t)(ow * q->sw - q->pl + kw) * q->C, q->sw * q->C,
                                     dyr + (size_t)ow * F, F, pairs, d);
                            for (int f = 0; f < F; f++) a0[f] = d[f];
                            ow += 2 * pairs;
                        }
                    }
#endif
                    for (; ow + 1 < q->OW; ow += 2) {
                        int iw = ow * q->sw - q->pl + kw;
                        if (iw + q->sw >= q->W) break;
                        const float v0 = row[(size_t)iw * q->C], v1 = row[(size_t)(iw + q->sw) * q->C];
                        const float *g0 = dyr + (size_t)ow * F, *g1 = g0 + F;
                        for (int f = 0; f < F; f++) {
                            a0[f] += v0 * g0[f];
                            a1[f] += v1 * g1[f];
                        }
                    }
                    for (; ow < q->OW; ow++) {
                        int iw = ow * q->sw - q->pl + kw;
                        if (iw < 0 || iw >= q->W) continue;
                        const float v = row[(size_t)iw * q->C];
                        const float *g = dyr + (size_t)ow * F;
                        for (int f = 0; f < F; f++) a0[f] += v * g[f];
                    }
                    for (int f = 0; f < F; f++) d[f] = a0[f] + a1[f];
                }
        }
    }
}

static void direct_fwd(const geom *q, const float *img, const float *w, const float *b, float *out, int relu) {
    switch (q->F) {
    case 8: direct_fwd_image(q, img, w, b, out, 8, relu); break;
    case 16: direct_fwd_image(q, img, w, b, out, 16, relu); break;
    case 32: direct_fwd_image(q, img, w, b, out, 32, relu); break;
    case 64: direct_fwd_image(q, img, w, b, out, 64, relu); break;
    default: direct_fwd_image(q, img, w, b, out, q->F, relu); break;
    }
}

static void direct_dw(const geom *q, const float *img, const float *dy, float *dw, float *db) {
    switch (q->F) {
    case 8: direct_dw_image(q, img, dy, dw, db, 8); break;
    case 16: direct_dw_image(q, img, dy, dw, db, 16); break;
    case 32: direct_dw_image(q, img, dy, dw, db, 32); break;
    case 64: direct_dw_image(q, img, dy, dw, db, 64); break;
    default: direct_dw_image(q, img, dy, dw, db, q->F); break;
    }
}

/* dx += dy (x) w^T, per pixel and tap. */
static void direct_dx(const geom *q, const float *dy, const float *w, float *dx) {
    for (int oh = 0; oh < q->OH; oh++)
        for (int ow = 0; ow < q->OW; ow++) {
            const float *g = dy + ((size_t)oh * q->OW + ow) * q->F;
            for (int kh = 0; kh < q->KH; kh++) {
                int ih = oh * q->sh - q->pt + kh;
                if (ih < 0 || ih >= q->H) continue;
                for (int kw = 0; kw < q->KW; kw++) {
                    int iw = ow * q->sw - q->pl + kw;
                    if (iw < 0 || iw >= q->W) continue;
                    float *d = dx + ((size_t)ih * q->W + iw) * q->C;
                    const float *wp = w + (size_t)(kh * q->KW + kw) * q->C * q->F;
                    for (int c = 0; c < q->C; c++) {
                        float sum = 0;
                        for (int f = 0; f < q->F; f++) sum += wp[(size_t)c * q->F + f] * g[f];
                        d[c] += sum;
                    }
                }
            }
        }
}

static void conv_forward(mm_node *n) {
    geom q = get_geom(n);
    const float *x = n->in[0]->value, *w = n->in[1]->value;
    const float *b = n->n_in == 3 ? n->in[2]->value : NULL;
    int nt = n->g->threads, chunk = n->a.i[5];
    size_t per = (size_t)chunk * q.P * q.K + (size_t)q.K * q.F + (size_t)q.F + 16;
    /* A 1x1 stride-1 unpadded conv is a plain GEMM on the input rows. */
    int pointwise = q.KH == 1 && q.KW == 1 && q.sh == 1 && q.sw == 1;
    const int relu = n->a.i[6];
    if (q.K <= DIRECT_MAX_K && !pointwise) {
#pragma omp parallel for num_threads(nt) schedule(static)
        for (int i = 0; i < q.N; i++)
            direct_fwd(&q, x + (size_t)i * q.H * q.W * q.C, w, b, n->value + (size_t)i * q.P * q.F, relu);
        return;
    }
#pragma omp parallel for num_threads(nt) schedule(static)
    for (int t = 0; t < nt; t++) {
        int lo = (int)((size_t)q.N * t / nt), hi = (int)((size_t)q.N * (t + 1) / nt);
        float *col = (float *)n->work + (size_t)t * per;
        for (int i0 = lo; i0 < hi; i0 += chunk) {
            int cnt = hi - i0 < chunk ? hi - i0 : chunk;
            const float *a = x + (size_t)i0 * q.H * q.W * q.C;
            if (!pointwise) {
                im2col(&q, x, i0, cnt, col);
                a = col;
            }
            float *y = n->value + (size_t)i0 * q.P * q.F;
            float beta = 0.0f;
            if (b) {
                for (size_t r = 0; r < (size_t)cnt * q.P; r++) memcpy(y + r * q.F, b, (size_t)q.F * sizeof(float));
                beta = 1.0f;
            }
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, cnt * q.P, q.F, q.K, 1.0f, a,
                        q.K, w, q.F, beta, y, q.F);
            if (relu)
                for (size_t r = 0; r < (size_t)cnt * q.P * q.F; r++) y[r] = y[r] < 0 ? 0.0f : y[r];
        }
    }
}

static void conv_backward(mm_node *n) {
    geom q = get_geom(n);
    mm_node *xn = n->in[0], *wn = n->in[1], *bn = n->n_in == 3 ? n->in[2] : NULL;
    const float *x = xn->value, *w = wn->value;
    float *dy = n->grad;
    int nt = n->g->threads, chunk = n->a.i[5];
    size_t per = (size_t)chunk * q.P * q.K + (size_t)q.K * q.F + (size_t)q.F + 16;
    int pointwise = q.KH == 1 && q.KW == 1 && q.sh == 1 && q.sw == 1;
    int need_w = wn->grad != NULL, need_b = bn && bn->grad, need_x = xn->grad != NULL;
    int direct = q.K <= DIRECT_MAX_K && !pointwise;
#pragma omp parallel for num_threads(nt) schedule(static)
    for (int t = 0; t < nt; t++) {
        int lo = (int)((size_t)q.N * t / nt), hi = (int)((size_t)q.N * (t + 1) / nt);
        float *col = (float *)n->work + (size_t)t * per;
        float *dw = col + (size_t)chunk * q.P * q.K, *db = dw + (size_t)q.K * q.F;
        memset(dw, 0, ((size_t)q.K * q.F + q.F) * sizeof(float));
        if (n->a.i[6]) { /* fused relu: gradient flows only where the output is positive */
            const float *y = n->value;
            for (size_t r = (size_t)lo * q.P * q.F; r < (size_t)hi * q.P * q.F; r++)
                dy[r] = y[r] > 0 ? dy[r] : 0.0f;
        }
        if (need_x && !n->acc[0])
            memset(xn->grad + (size_t)lo * q.H * q.W * q.C, 0,
                   (size_t)(hi - lo) * q.H * q.W * q.C * sizeof(float));
        if (direct) {
            for (int i = lo; i < hi; i++) {
                const float *g = dy + (size_t)i * q.P * q.F;
                if (need_w || need_b)
                    direct_dw(&q, x + (size_t)i * q.H * q.W * q.C, g, dw, need_b ? db : NULL);
                if (need_x) direct_dx(&q, g, w, xn->grad + (size_t)i * q.H * q.W * q.C);
            }
            continue;
        }
        for (int i0 = lo; i0 < hi; i0 += chunk) {
            int cnt = hi - i0 < chunk ? hi - i0 : chunk;
            const float *g = dy + (size_t)i0 * q.P * q.F;
            int rows = cnt * q.P;
            if (need_w) {
                const float *a = x + (size_t)i0 * q.H * q.W * q.C;
                if (!pointwise) {
                    im2col(&q, x, i0, cnt, col);
                    a = col;
                }
                cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, q.K, q.F, rows, 1.0f, a, q.K,
                            g, q.F, 1.0f, dw, q.F);
            }
            if (need_b)
                for (int r = 0; r < rows; r++)
                    for (int f = 0; f < q.F; f++) db[f] += g[(size_t)r * q.F + f];
            if (need_x) {
                if (pointwise) {
                    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, rows, q.K, q.F, 1.0f, g,
                                q.F, w, q.F, 1.0f, xn->grad + (size_t)i0 * q.H * q.W * q.C, q.K);
                } else {
                    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, rows, q.K, q.F, 1.0f, g,
                                q.F, w, q.F, 0.0f, col, q.K);
                    col2im(&q, col, i0, cnt, xn->grad);
                }
            }
        }
    }
    /* Reduce per-thread partials in thread order. */
    if (need_w) {
        float *dw = wn->grad;
        size_t kf = (size_t)q.K * q.F;
        for (int t = 0; t < nt; t++) {
            const float *p = (float *)n->work + (size_t)t * per + (size_t)chunk * q.P * q.K;
            if (t == 0 && !n->acc[1]) memcpy(dw, p, kf * sizeof(float));
            else for (size_t j = 0; j < kf; j++) dw[j] += p[j];
        }
    }
    if (need_b) {
        float *db = bn->grad;
        for (int t = 0; t < nt; t++) {
            const float *p = (float *)n->work + (size_t)t * per + (size_t)chunk * q.P * q.K + (size_t)q.K * q.F;
            if (t == 0 && !n->acc[2]) memcpy(db, p, (size_t)q.F * sizeof(float));
            else for (int f = 0; f < q.F; f++) db[f] += p[f];
        }
    }
}

static const mm_op conv_op = {
    .name = "conv2d",
    .infer = conv_infer,
    .work_bytes = conv_work,
    .forward = conv_forward,
    .backward = conv_backward,
    .backward_reads = (1u << 0) | (1u << 1) | MM_READS_OUTPUT,
};

mm_node *mm_g_conv2d(mm_graph *g, mm_node *x, mm_node *w, mm_node *b, int stride_h, int stride_w,
                     int same_padding) {
    mm_attrs a = {0};
    a.i[0] = stride_h;
    a.i[1] = stride_w;
    a.i[2] = same_padding;
    mm_node *in[3] = {x, w, b};
    return mm_graph_op(g, &conv_op, b ? 3 : 2, in, &a, NULL);
}

mm_node *mm_g_conv2d_relu(mm_graph *g, mm_node *x, mm_node *w, mm_node *b, int stride_h, int stride_w,
                          int same_padding) {
    mm_attrs a = {0};
    a.i[0] = stride_h;
    a.i[1] = stride_w;
    a.i[2] = same_padding;
    a.i[6] = 1;
    mm_node *in[3] = {x, w, b};
    return mm_graph_op(g, &conv_op, b ? 3 : 2, in, &a, "conv2d_relu");
}

/* ---- conv2d (+relu) fused with non-overlapping max pooling ----
 * The conv output of one image is computed into a per-thread buffer that stays in L2 and is
 * pooled at once, so the full-resolution activation never goes to memory; backward rebuilds
 * that image's sparse conv gradient from the saved argmax the same way. This is the
 * dominant cost of small CNNs (MNIST-style first layers), where traffic, not arithmetic,
 * sets the speed.
 * attrs: as conv2d, plus i[7] = pool_h * 256 + pool_w (stride = pool, valid padding). */

static void fused_dims(const mm_node *n, geom *q, int *ph, int *pw) {
    const mm_node *x = n->in[0], *w = n->in[1];
    q->N = x->shape[0], q->H = x->shape[1], q->W = x->shape[2], q->C = x->shape[3];
    q->KH = w->shape[0], q->KW = w->shape[1], q->F = w->shape[3];
    q->sh = n->a.i[0], q->sw = n->a.i[1], q->pt = n->a.i[3], q->pl = n->a.i[4];
    if (n->a.i[2]) {
        q->OH = (q->H + q->sh - 1) / q->sh;
        q->OW = (q->W + q->sw - 1) / q->sw;
    } else {
        q->OH = (q->H - q->KH) / q->sh + 1;
        q->OW = (q->W - q->KW) / q->sw + 1;
    }
    q->K = q->KH * q->KW * q->C;
    q->P = q->OH * q->OW;
    *ph = n->a.i[7] / 256;
    *pw = n->a.i[7] % 256;
}

static int fused_direct(const geom *q) { return q->K <= DIRECT_MAX_K; }

static mm_status fused_infer(mm_node *n) {
    mm_status st = conv_infer(n); /* validates and sets pads and conv output shape */
    if (st != MM_OK) return st;
    int ph = n->a.i[7] / 256, pw = n->a.i[7] % 256;
    if (ph < 1 || pw < 1 || n->shape[1] < ph || n->shape[2] < pw)
        return mm_error(MM_ERR_SHAPE, "conv2d_maxpool: pool %dx%d does not fit conv output %dx%d", ph, pw,
                        n->shape[1], n->shape[2]);
    n->shape[1] /= ph;
    n->shape[2] /= pw;
    return MM_OK;
}

static size_t fused_per_thread(const mm_node *n) {
    geom q;
    int ph, pw;
    fused_dims(n, &q, &ph, &pw);
    size_t col = fused_direct(&q) ? 0 : (size_t)q.P * q.K;
    return (size_t)q.P * q.F + col + (size_t)q.K * q.F + (size_t)q.F + 16;
}

static size_t fused_work(const mm_node *n) {
    int nt = n->g->threads > 0 ? n->g->threads : mm_threads();
    return (size_t)nt * fused_per_thread(n) * sizeof(float);
}

static size_t fused_saved(const mm_node *n) { return n->size; /* one argmax byte per output */ }

/* Forward conv of one image into out [P, F]. */
static void conv_one(const geom *q, const float *img, const float *w, const float *b, int relu, float *out,
                     float *col) {
    if (fused_direct(q)) {
        direct_fwd(q, img, w, b, out, relu);
        return;
    }
    im2col(q, img, 0, 1, col);
    for (int r = 0; r < q->P; r++)
        if (b) memcpy(out + (size_t)r * q->F, b, (size_t)q->F * sizeof(float));
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, q->P, q->F, q->K, 1.0f, col, q->K, w, q->F,
                b ? 1.0f : 0.0f, out, q->F);
    if (relu)
        for (size_t r = 0; r < (size_t)q->P * q->F; r++) out[r] = out[r] < 0 ? 0.0f : out[r];
}


/* Patch origins of the four conv pixels under 2x2 pooling window (oh, ow), in window order
 * (0,0), (0,1), (1,0), (1,1). */
static void window_pixels(const geom *q, const float *img, int oh, int ow, const float *p[4]) {
    for (int j = 0; j < 4; j++) {
        int ih = (2 * oh + j / 2) * q->sh - q->pt, iw = (2 * ow + j % 2) * q->sw - q->pl;
        p[j] = img + ((size_t)ih * q->W + iw) * q->C;
    }
}

#ifdef __AVX2__
/* conv (+relu) and a 2x2 max pool in registers: the four pixels of one pooling window, 16
 * filters at a time (8 accumulators), so the full-resolution conv output never exists.
 * Window order and the strict '>' match the generic pooling loop (first maximum wins). */
static void conv_pool2x2_avx2(const float *const p[4], const int *off, int K, const float *w, int F,
                              const float *b, int relu, float *y, uint8_t *arg) {
    for (int f0 = 0; f0 < F; f0 += 16) {
        __m256 a[4][2];
        for (int i = 0; i < 4; i++)
            for (int j = 0; j < 2; j++) a[i][j] = b ? _mm256_loadu_ps(b + f0 + 8 * j) : _mm256_setzero_ps();
        for (int k = 0; k < K; k++) {
            const float *wk = w + (size_t)k * F + f0;
            const __m256 w0 = _mm256_loadu_ps(wk), w1 = _mm256_loadu_ps(wk + 8);
            for (int i = 0; i < 4; i++) {
                const __m256 v = _mm256_broadcast_ss(p[i] + off[k]);
                a[i][0] = _mm256_fmadd_ps(v, w0, a[i][0]);
                a[i][1] = _mm256_fmadd_ps(v, w1, a[i][1]);
            }
        }
        for (int j = 0; j < 2; j++) {
            __m256 best = a[0][j];
            __m256i idx = _mm256_setzero_si256();
            for (int i = 1; i < 4; i++) {
                const __m256 gt = _mm256_cmp_ps(a[i][j], best, _CMP_GT_OQ);
                best = _mm256_blendv_ps(best, a[i][j], gt);
                idx = _mm256_blendv_epi8(idx, _mm256_set1_epi32(i), _mm256_castps_si256(gt));
            }
            if (relu) best = _mm256_max_ps(best, _mm256_setzero_ps());
            _mm256_storeu_ps(y + f0 + 8 * j, best);
            if (arg) {
                const __m128i w16 = _mm_packs_epi32(_mm256_castsi256_si128(idx), _mm256_extracti128_si256(idx, 1));
                _mm_storel_epi64((__m128i *)(arg + f0 + 8 * j), _mm_packus_epi16(w16, w16));
            }
        }
    }
}
#endif

static void fused_forward(mm_node *n) {
    geom q;
    int ph, pw;
    fused_dims(n, &q, &ph, &pw);
    const int PH = n->shape[1], PW = n->shape[2], F = q.F, relu = n->a.i[6];
    const float *x = n->in[0]->value, *w = n->in[1]->value, *b = n->n_in == 3 ? n->in[2]->value : NULL;
    const size_t per = fused_per_thread(n);
    uint8_t *arg = n->saved;
    int nt = n->g->threads;
    /* Only training needs the argmax. */
    const int keep_arg = n->runs_backward;
    /* 2x2 windows over unpadded conv pixels (valid conv): the all-in-registers kernel. */
    const int quad = ph == 2 && pw == 2 && F % 16 == 0 && fused_direct(&q) && !n->a.i[2];
    (void)quad;
#pragma omp parallel for num_threads(nt) schedule(static)
    for (int i = 0; i < q.N; i++) {
        const float *img = x + (size_t)i * q.H * q.W * q.C;
#ifdef __AVX2__
        if (quad) {
            int off[DIRECT_MAX_K];
            patch_offsets(&q, off);
            for (int oh = 0; oh < PH; oh++)
                for (int ow = 0; ow < PW; ow++) {
                    const float *p[4];
                    window_pixels(&q, img, oh, ow, p);
                    size_t o = (((size_t)i * PH + oh) * PW + ow) * F;
                    conv_pool2x2_avx2(p, off, q.K, w, F, b, relu, n->value + o, keep_arg ? arg + o : NULL);
                }
            continue;
        }
#endif
        float *conv = (float *)n->work + (size_t)omp_get_thread_num() * per;
        float *col = conv + (size_t)q.P * F;
        conv_one(&q, img, w, b, relu, conv, col);
        float *y = n->value + (size_t)i * PH * PW * F;
        uint8_t *a = arg + (size_t)i * PH * PW * F;
        for (int oh = 0; oh < PH; oh++)
            for (int ow = 0; ow < PW; ow++) {
                float *yo = y + ((size_t)oh * PW + ow) * F;
                uint8_t *ao = a + ((size_t)oh * PW + ow) * F;
                int f0 = 0;
#ifdef __AVX2__
                /* Eight filters at a time: running max and its window index in ymm lanes. */
                for (; f0 + 8 <= F; f0 += 8) {
                    const float *c0 = conv + ((size_t)(oh * ph) * q.OW + ow * pw) * F + f0;
                    __m256 best = _mm256_loadu_ps(c0);
                    __m256 bi = _mm256_setzero_ps();
                    for (int wh = 0; wh < ph; wh++)
                        for (int ww = 0; ww < pw; ww++) {
                            const float *c = conv + ((size_t)(oh * ph + wh) * q.OW + ow * pw + ww) * F + f0;
                            const __m256 v = _mm256_loadu_ps(c);
                            const __m256 gt = _mm256_cmp_ps(v, best, _CMP_GT_OQ);
                            best = _mm256_blendv_ps(best, v, gt);
                            bi = _mm256_blendv_ps(bi, _mm256_set1_ps((float)(wh * pw + ww)), gt);
                        }
                    _mm256_storeu_ps(yo + f0, best);
                    float idx[8];
                    _mm256_storeu_ps(idx, bi);
                    for (int j = 0; j < 8; j++) ao[f0 + j] = (uint8_t)idx[j];
                }
#endif
                /* Remaining filters (all of them without AVX2). */
                float best[F];
                int32_t bi[F];
                for (int f = f0; f < F; f++) {
                    best[f] = conv[((size_t)(oh * ph) * q.OW + ow * pw) * F + f];
                    bi[f] = 0;
                }
                for (int wh = 0; wh < ph; wh++)
                    for (int ww = 0; ww < pw; ww++) {
                        const float *c = conv + ((size_t)(oh * ph + wh) * q.OW + ow * pw + ww) * F;
                        for (int f = f0; f < F; f++)
                            if (c[f] > best[f]) best[f] = c[f], bi[f] = wh * pw + ww;
                    }
                for (int f = f0; f < F; f++) yo[f] = best[f], ao[f] = (uint8_t)bi[f];
            }
    }
}


#ifdef __AVX2__
/* Weight and bias gradients of conv (+relu) + 2x2 max pool for one pooling window, straight
 * from the pooled gradient: each filter's gradient goes to the one pixel its argmax names,
 * so per 8 filters the four pixels get masked copies of g and dw[k] += sum_i x_i[k] * g_i. */
static void pool2x2_dw_avx2(const float *const p[4], const int *off, int K, int F, const float *dy,
                            const float *y, const uint8_t *arg, int relu, float *dw, float *db) {
    for (int f0 = 0; f0 < F; f0 += 8) {
        __m256 g = _mm256_loadu_ps(dy + f0);
        if (relu) g = _mm256_and_ps(g, _mm256_cmp_ps(_mm256_loadu_ps(y + f0), _mm256_setzero_ps(), _CMP_GT_OQ));
        const __m256i a = _mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)(arg + f0)));
        __m256 gi[4];
        for (int i = 0; i < 4; i++)
            gi[i] = _mm256_and_ps(g, _mm256_castsi256_ps(_mm256_cmpeq_epi32(a, _mm256_set1_epi32(i))));
        if (db) _mm256_storeu_ps(db + f0, _mm256_add_ps(_mm256_loadu_ps(db + f0), g));
        for (int k = 0; k < K; k++) {
            float *d = dw + (size_t)k * F + f0;
            __m256 acc = _mm256_loadu_ps(d);
            for (int i = 0; i < 4; i++) acc = _mm256_fmadd_ps(_mm256_broadcast_ss(p[i] + off[k]), gi[i], acc);
            _mm256_storeu_ps(d, acc);
        }
    }
}
#endif

static void fused_backward(mm_node *n) {
    geom q;
    int ph, pw;
    fused_dims(n, &q, &ph, &pw);
    mm_node *xn = n->in[0], *wn = n->in[1], *bn = n->n_in == 3 ? n->in[2] : NULL;
    const int PH = n->shape[1], PW = n->shape[2], F = q.F, relu = n->a.i[6];
    const float *x = xn->value, *w = wn->value, *y = n->value, *dy = n->grad;
    const uint8_t *arg = n->saved;
    const size_t per = fused_per_thread(n);
    const int need_w = wn->grad != NULL, need_b = bn && bn->grad, need_x = xn->grad != NULL;
    const int nt = n->g->threads;
#pragma omp parallel num_threads(nt)
    {
        int t = omp_get_thread_num();
        float *g = (float *)n->work + (size_t)t * per;
        float *col = g + (size_t)q.P * F;
        float *dw = col + (fused_direct(&q) ? 0 : (size_t)q.P * q.K), *db = dw + (size_t)q.K * F;
        memset(dw, 0, ((size_t)q.K * F + F) * sizeof(float));
        const int quad = ph == 2 && pw == 2 && F % 16 == 0 && fused_direct(&q) && !n->a.i[2] && !need_x;
        (void)quad;
#pragma omp for schedule(static)
        for (int i = 0; i < q.N; i++) {
#ifdef __AVX2__
            if (quad) {
                const float *img = x + (size_t)i * q.H * q.W * q.C;
                int off[DIRECT_MAX_K];
                patch_offsets(&q, off);
                for (int oh = 0; oh < PH; oh++)
                    for (int ow = 0; ow < PW; ow++) {
                        const float *p[4];
                        window_pixels(&q, img, oh, ow, p);
                        size_t o = (((size_t)i * PH + oh) * PW + ow) * F;
                        pool2x2_dw_avx2(p, off, q.K, F, dy + o, y + o, arg + o, relu, dw, need_b ? db : NULL);
                    }
                continue;
            }
#endif
            /* Scatter the pooled gradient to the argmax positions of this image. */
            memset(g, 0, (size_t)q.P * F * sizeof(float));
            const size_t base = (size_t)i * PH * PW * F;
            for (int oh = 0; oh < PH; oh++)
                for (int ow = 0; ow < PW; ow++) {
                    size_t o = base + ((size_t)oh * PW + ow) * F;
                    for (int f = 0; f < F; f++) {
                        if (relu && !(y[o + f] > 0)) continue;
                        int idx = arg[o + f], wh = idx / pw, ww = idx % pw;
                        g[((size_t)(oh * ph + wh) * q.OW + ow * pw + ww) * F + f] = dy[o + f];
                    }
                }
            const float *img = x + (size_t)i * q.H * q.W * q.C;
            float *dimg = need_x ? xn->grad + (size_t)i * q.H * q.W * q.C : NULL;
            if (need_x && !n->acc[0]) memset(dimg, 0, (size_t)q.H * q.W * q.C * sizeof(float));
            if (fused_direct(&q)) {
                if (need_w || need_b) direct_dw(&q, img, g, dw, need_b ? db : NULL);
                if (need_x) direct_dx(&q, g, w, dimg);
            } else {
                if (need_b)
                    for (int r = 0; r < q.P; r++)
                        for (int f = 0; f < F; f++) db[f] += g[(size_t)r * F + f];
                if (need_w) {
                    im2col(&q, img, 0, 1, col);
                    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, q.K, F, q.P, 1.0f, col, q.K, g, F,
                                1.0f, dw, F);
                }
                if (need_x) {
                    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, q.P, q.K, F, 1.0f, g, F, w, F, 0.0f,
                                col, q.K);
                    col2im(&q, col, 0, 1, dimg);
                }
            }
        }
    }
    /* Reduce per-thread partials in thread order. */
    for (int t = 0; t < nt; t++) {
        const float *p = (float *)n->work + (size_t)t * per + (size_t)q.P * F +
                         (fused_direct(&q) ? 0 : (size_t)q.P * q.K);
        size_t kf = (size_t)q.K * F;
        if (need_w) {
            if (t == 0 && !n->acc[1]) memcpy(wn->grad, p, kf * sizeof(float));
            else for (size_t j = 0; j < kf; j++) wn->grad[j] += p[j];
        }
        if (need_b) {
            if (t == 0 && !n->acc[2]) memcpy(bn->grad, p + kf, (size_t)F * sizeof(float));
            else for (int f = 0; f < F; f++) bn->grad[f] += p[kf + f];
        }
    }
}

static const mm_op fused_op = {
    .name = "conv2d_maxpool",
    .infer = fused_infer,
    .saved_bytes = fused_saved,
    .work_bytes = fused_work,
    .forward = fused_forward,
    .backward = fused_backward,
    .backward_reads = (1u << 0) | (1u << 1) | MM_READS_OUTPUT,
};

mm_node *mm_g_conv2d_maxpool(mm_graph *g, mm_node *x, mm_node *w, mm_node *b, int stride_h, int stride_w,
                             int same_padding, int relu, int pool_h, int pool_w) {
    if (pool_h < 1 || pool_w < 1 || pool_h > 255 || pool_w > 255) {
        mm_error(MM_ERR_ARG, "conv2d_maxpool: pool size %dx%d out of range", pool_h, pool_w);
        return NULL;
    }
    mm_attrs a = {0};
    a.i[0] = stride_h;
    a.i[1] = stride_w;
    a.i[2] = same_padding;
    a.i[6] = relu;
    a.i[7] = pool_h * 256 + pool_w;
    mm_node *in[3] = {x, w, b};
    return mm_graph_op(g, &fused_op, b ? 3 : 2, in, &a, relu ? "conv2d_relu_maxpool" : "conv2d_maxpool");
}

/* Whether the fused op can serve this conv + pool pair without an oversized buffer. */
int mm_conv2d_maxpool_fusable(int kh, int kw, int cin, int oh, int ow) {
    size_t k = (size_t)kh * kw * cin;
    return k <= DIRECT_MAX_K || (size_t)oh * ow * k <= MAX_COL_FLOATS;
}
