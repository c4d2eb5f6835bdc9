/* Recurrent layers: SimpleRNN (tanh), LSTM and GRU (Keras formulations), plus last_step /
 * first_step (the output at the final real step of each sequence).
 *
 * Layouts (Keras): x [B, T, D]; kernel W [D, G*H]; recurrent kernel U [H, G*H]; bias [G*H]
 * (SimpleRNN G = 1, LSTM G = 4 with gate order i, f, c, o) or, for GRU (G = 3, order z, r, h,
 * reset_after=True), bias [2, 3H] = (input bias; recurrent bias). The initial state is zero.
 *
 *   SimpleRNN: h = tanh(x W + b + h_prev U)
 *   LSTM:      [i f g o] = x W + h_prev U + b; i, f, o sigmoid, g tanh
 *              c = f * c_prev + i * g;  h = o * tanh(c)
 *   GRU:       [xz xr xh] = x W + b[0];  [rz rr rh] = h_prev U + b[1]
 *              z = sigmoid(xz + rz); r = sigmoid(xr + rr); hh = tanh(xh + r * rh)
 *              h = z * h_prev + (1 - z) * hh
 *
 * PyTorch mapping (weights [G*H, D] with gate blocks as rows):
 *   nn.RNN:  W = weight_ih.T, U = weight_hh.T, b = bias_ih + bias_hh.
 *   nn.LSTM: same (torch's block order i, f, g, o is Keras's i, f, c, o).
 *   nn.GRU:  torch blocks are (r, z, n) and h' = (1 - z) * n + z * h, which is Keras's
 *            reset_after=True with n = hh: reorder the blocks to (z, r, n), then
 *            W = weight_ih[zrn].T, U = weight_hh[zrn].T, b = [bias_ih[zrn]; bias_hh[zrn]].
 *
 * Masking (mask [B, T], nonzero = real step), Keras semantics: on a masked step the state
 * (h, and c for LSTM) is carried over unchanged and the output equals the carried h, or 0
 * with MM_RNN_ZERO_MASKED (Keras's zero_output_for_mask, which Bidirectional forces on when
 * returning sequences).
 *
 * go_backwards (MM_RNN_BACKWARDS): time is processed from T-1 down to 0, but the output is
 * returned aligned with the input positions (output[:, t] is the state after consuming
 * x[:, t]); that is Keras's go_backwards output re-reversed, as Bidirectional returns it.
 * The final state of a backwards run therefore sits at position 0 (mm_g_first_step).
 *
 * Computation: x W (+ input bias) for all steps in one GEMM into the saved gate buffer, then
 * per step one GEMM h_prev U and the element-wise gates, whose activations overwrite the
 * pre-activations in place. The batch rows are independent through time, so forward and
 * backward-through-time split the batch into chunks of >= 16 rows handed to threads once (one
 * parallel region, no per-step forks; a batch under 17 rows runs on one thread); each thread
 * calls OpenBLAS single-threaded on its rows. After the time loop dW, dU (= h_prev_all^T
 * dgates_all) and db are single GEMMs / column sums split over output rows. The splits are
 * fixed chunks that do not depend on the thread count, so results are bit-identical for any
 * number of threads. sigmoid and tanh use vectorizable polynomial forms (about 2 ulp). */
#include "ops/ops.h"

#include <cblas.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

enum { A_KIND, A_FLAGS, A_BIAS, A_MASK };

static const char *kind_name(int k) { return k == MM_RNN_LSTM ? "lstm" : k == MM_RNN_GRU ? "gru" : "simple_rnn"; }
static int kind_gates(int k) { return k == MM_RNN_LSTM ? 4 : k == MM_RNN_GRU ? 3 : 1; }

/* Work is cut into fixed chunks that depend only on the sizes, never on the thread count
 * (OpenBLAS may pick a different kernel, and summation order, for a different number of
 * rows), so results are bit-identical for any thread count. Chunk c of total: [lo, hi). */
static int n_chunks(size_t total, size_t cs) { return (int)((total + cs - 1) / cs); }
static void chunk(size_t total, size_t cs, int c, size_t *lo, size_t *hi) {
    *lo = (size_t)c * cs;
    *hi = *lo + cs < total ? *lo + cs : total;
}
/* Batch rows per chunk: at most ~16 chunks, at least 16 rows each (each per-step GEMM call
 * packs all of U, so chunks of few rows would mostly pack). */
static size_t batch_chunk(int B) {
    size_t cs = ((size_t)B + 15) / 16;
    return cs < 16 ? 16 : cs;
}
#define ROW_CHUNK 16 /* rows of dW / dU per chunk */

/* Threads for ~flops of work in nc independent chunks. */
static int pick_threads(const mm_graph *g, double flops, int nc) {
    int nt = g->threads > 0 ? g->threads : 1;
    if (flops < (double)(1u << 20)) return 1;
    if (nt > nc) nt = nc;
    return nt > 0 ? nt : 1;
}

/* Vectorizable exp / sigmoid / tanh for the gate loops: glibc's scalar tanhf and expf were
 * about a third of a SimpleRNN step, and GCC cannot call libmvec without -ffast-math, but it
 * vectorizes plain arithmetic. exp: Cephes-style 2^n * exp(r), n = round(x / ln 2), Cody-Waite
 * reduction, degree-6 polynomial, about 2 ulp; x clamped to [-80, 80] (no denormals, no inf).
 * tanh: Cephes's odd polynomial below |x| 0.625, else 1 - 2 / (exp(2|x|) + 1); a few ulp.
 * Selects are done on the bits: with ?: GCC threads the constants into the arithmetic after
 * them and leaves branches it cannot if-convert (trapping math), and the loops stay scalar. */
static inline float clamp_bits(float x, float lo, float hi) {
    uint32_t xb, lb, hb;
    memcpy(&xb, &x, 4), memcpy(&lb, &lo, 4), memcpy(&hb, &hi, 4);
    const uint32_t ml = 0u - (uint32_t)(x < lo), mh = 0u - (uint32_t)(x > hi);
    xb = (xb & ~ml) | (lb & ml);
    xb = (xb & ~mh) | (hb & mh);
    float r;
    memcpy(&r, &xb, 4);
    return r;
}

static inline float rnn_exp(float x) {
    x = clamp_bits(x, -80.0f, 80.0f);
    const float n = (x * 1.44269504088896341f + 12582912.0f) - 12582912.0f; /* round, no libm call */
    float r = x - n * 0.693359375f;
    r = r - n * -2.12194440e-4f;
    float p = 1.9875691500e-4f;
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    p = p * r * r + r + 1.0f;
    const int32_t bits = ((int32_t)n + 127) << 23; /* 2^n, n in [-116, 116] */
    float scale;
    memcpy(&scale, &bits, sizeof scale);
    return p * scale;
}

static inline float sigm(float v) { return 1.0f / (1.0f + rnn_exp(-v)); }

static inline float rnn_tanh(float x) {
    const float ax = fabsf(x), z = x * x;
    float small = -5.70498872745e-3f;
    small = small * z + 2.06390887954e-2f;
    small = small * z - 5.37397155531e-2f;
    small = small * z + 1.33314422036e-1f;
    small = small * z - 3.33332819422e-1f;
    small = small * z * x + x;
    const float big = 1.0f - 2.0f / (rnn_exp(2.0f * ax) + 1.0f);
    uint32_t xb, sb, bb;
    memcpy(&xb, &x, 4), memcpy(&sb, &small, 4), memcpy(&bb, &big, 4);
    const uint32_t m = 0u - (uint32_t)(ax < 0.625f);
    const uint32_t rb = (sb & m) | ((bb | (xb & 0x80000000u)) & ~m);
    float r;
    memcpy(&r, &rb, 4);
    return r;
}

/* "[a, b, c]" */
static const char *shape_str(const mm_node *x, char *buf, size_t cap) {
    size_t o = 0;
    o += (size_t)snprintf(buf + o, cap - o, "[");
    for (int i = 0; i < x->ndim && o < cap; i++)
        o += (size_t)snprintf(buf + o, cap - o, i ? ", %d" : "%d", x->shape[i]);
    if (o < cap) snprintf(buf + o, cap - o, "]");
    return buf;
}

/* ------------------------------------------------------------------ rnn op */

typedef struct rnn_dims {
    int kind, flags, B, T, D, H, G, GH, ldy;
    const float *mask, *b;
} rnn_dims;

static void get_dims(const mm_node *n, rnn_dims *d) {
    const mm_node *x = n->in[0];
    d->kind = n->a.i[A_KIND];
    d->flags = n->a.i[A_FLAGS];
    d->B = x->shape[0];
    d->T = x->shape[1];
    d->D = x->shape[2];
    d->H = n->in[2]->shape[0];
    d->G = kind_gates(d->kind);
    d->GH = d->G * d->H;
    d->ldy = n->shape[2];
    d->b = n->a.i[A_BIAS] >= 0 ? n->in[n->a.i[A_BIAS]]->value : NULL;
    d->mask = n->a.i[A_MASK] >= 0 ? n->in[n->a.i[A_MASK]]->value : NULL;
}

static mm_status rnn_infer(mm_node *n) {
    const int kind = n->a.i[A_KIND], flags = n->a.i[A_FLAGS], G = kind_gates(kind);
    const char *nm = kind_name(kind);
    mm_node *x = n->in[0], *W = n->in[1], *U = n->in[2];
    mm_node *b = n->a.i[A_BIAS] >= 0 ? n->in[n->a.i[A_BIAS]] : NULL;
    mm_node *m = n->a.i[A_MASK] >= 0 ? n->in[n->a.i[A_MASK]] : NULL;
    char s1[64];
    if (x->ndim != 3)
        return mm_error(MM_ERR_SHAPE, "%s: input must be [batch, time, features], got %s", nm,
                        shape_str(x, s1, sizeof s1));
    const int B = x->shape[0], T = x->shape[1], D = x->shape[2];
    if (U->ndim != 2 || U->shape[1] != G * U->shape[0])
        return mm_error(MM_ERR_SHAPE, "%s: recurrent kernel must be [units, %d*units], got %s", nm, G,
                        shape_str(U, s1, sizeof s1));
    const int H = U->shape[0];
    if (W->ndim != 2 || W->shape[0] != D || W->shape[1] != G * H)
        return mm_error(MM_ERR_SHAPE, "%s: kernel must be [%d, %d], got %s", nm, D, G * H,
                        shape_str(W, s1, sizeof s1));
    if (W->batched || U->batched || (b && b->batched))
        return mm_error(MM_ERR_SHAPE, "%s: kernel, recurrent kernel and bias must not be batched", nm);
    if (b) {
        int ok = kind == MM_RNN_GRU ? (b->ndim == 2 && b->shape[0] == 2 && b->shape[1] == 3 * H)
                                    : (b->ndim == 1 && b->shape[0] == G * H);
        if (!ok) {
            if (kind == MM_RNN_GRU)
                return mm_error(MM_ERR_SHAPE, "%s: bias must be [2, %d] (input bias; recurrent bias), got %s",
                                nm, 3 * H, shape_str(b, s1, sizeof s1));
            return mm_error(MM_ERR_SHAPE, "%s: bias must be [%d], got %s", nm, G * H, shape_str(b, s1, sizeof s1));
        }
    }
    if (m && (m->ndim != 2 || m->shape[0] != B || m->shape[1] != T))
        return mm_error(MM_ERR_SHAPE, "%s: mask must be [%d, %d] (batch, time), got %s", nm, B, T,
                        shape_str(m, s1, sizeof s1));
    if (m && m->batched != x->batched)
        return mm_error(MM_ERR_SHAPE, "%s: mask must be batched exactly when the input is", nm);
    if ((flags & MM_RNN_CELL) && kind != MM_RNN_LSTM)
        return mm_error(MM_ERR_ARG, "%s: want_cell is only for lstm", nm);
    if (flags & ~(MM_RNN_BACKWARDS | MM_RNN_CELL | MM_RNN_ZERO_MASKED))
        return mm_error(MM_ERR_ARG, "%s: unknown flags 0x%x", nm, (unsigned)flags);
    n->ndim = 3;
    n->shape[0] = B;
    n->shape[1] = T;
    n->shape[2] = (flags & MM_RNN_CELL) ? 2 * H : H;
    return MM_OK;
}

/* Saved (forward -> backward), for B rows:
 *   act   [B, T, G*H]  gate activations (pre-activations x W + b until the step runs);
 *                      SimpleRNN: the new h; GRU: z, r, hh
 *   hprev [B, T, H]    state before the step at each position (zero for the first step)
 *   LSTM:  cprev [B, T, H], tc [B, T, H] = tanh(c)
 *   GRU:   rh [B, T, H] = h_prev U_h + b_rh (the recurrent candidate term before r) */
static size_t rnn_saved_floats(int kind, size_t B, size_t T, size_t H) {
    size_t G = (size_t)kind_gates(kind), per = G * H + H;
    if (kind == MM_RNN_LSTM) per += 2 * H;
    if (kind == MM_RNN_GRU) per += H;
    return B * T * per;
}

static size_t rnn_saved_bytes(const mm_node *n) {
    rnn_dims d;
    get_dims(n, &d);
    return rnn_saved_floats(d.kind, (size_t)d.B, (size_t)d.T, (size_t)d.H) * sizeof(float);
}

/* Work. Forward: GRU rec [B, 3H], then the new states [B, 2H]. Backward: dg [B, T, GH]
 * (input-side gate grads), GRU dgr [B, T, GH] (recurrent-side), dh [B, H], dc [B, H]. */
static size_t rnn_work_bytes(const mm_node *n) {
    rnn_dims d;
    get_dims(n, &d);
    size_t B = (size_t)d.B, T = (size_t)d.T, H = (size_t)d.H, GH = (size_t)d.GH;
    size_t fwd = (d.kind == MM_RNN_GRU ? B * GH : 0) + 2 * B * H;
    size_t bwd = B * T * GH * (d.kind == MM_RNN_GRU ? 2 : 1) + 2 * B * H;
    return (fwd > bwd ? fwd : bwd) * sizeof(float);
}

typedef struct rnn_bufs {
    float *act, *hprev, *cprev, *tc, *rh;
} rnn_bufs;

static void get_bufs(const mm_node *n, const rnn_dims *d, rnn_bufs *s) {
    size_t BT = (size_t)d->B * (size_t)d->T, H = (size_t)d->H;
    float *p = n->saved;
    s->act = p;
    p += BT * (size_t)d->GH;
    s->hprev = p;
    p += BT * H;
    s->cprev = s->tc = s->rh = NULL;
    if (d->kind == MM_RNN_LSTM) {
        s->cprev = p;
        p += BT * H;
        s->tc = p;
    } else if (d->kind == MM_RNN_GRU) {
        s->rh = p;
    }
}

static inline int pos_of(const rnn_dims *d, int s) { return (d->flags & MM_RNN_BACKWARDS) ? d->T - 1 - s : s; }

/* ---- per-row kernels (restrict: lets GCC vectorize without alias checks) ---- */

/* a: pre-activations i f g o -> activations; c = f c_prev + i g; tc = tanh(c); h = o tc. */
static void lstm_fwd_row(int H, float *restrict a, const float *restrict cp, float *restrict tc, float *restrict hs,
                         float *restrict cs) {
    for (int j = 0; j < H; j++) {
        float ig = sigm(a[j]), fg = sigm(a[H + j]), gg = rnn_tanh(a[2 * H + j]), og = sigm(a[3 * H + j]);
        a[j] = ig, a[H + j] = fg, a[2 * H + j] = gg, a[3 * H + j] = og;
        float c = fg * cp[j] + ig * gg, t = rnn_tanh(c);
        tc[j] = t;
        cs[j] = c;
        hs[j] = og * t;
    }
}

/* a: x W + b_in (z r h) -> z, r, hh; rc: h_prev U + b_rec; rh keeps rc's h part. */
static void gru_fwd_row(int H, float *restrict a, const float *restrict rc, const float *restrict hp,
                        float *restrict rh, float *restrict hs) {
    for (int j = 0; j < H; j++) {
        float z = sigm(a[j] + rc[j]), r = sigm(a[H + j] + rc[H + j]);
        float hh = rnn_tanh(a[2 * H + j] + r * rc[2 * H + j]);
        a[j] = z, a[H + j] = r, a[2 * H + j] = hh;
        rh[j] = rc[2 * H + j];
        hs[j] = z * hp[j] + (1.0f - z) * hh;
    }
}

static void simple_fwd_row(int H, float *restrict a) {
    for (int j = 0; j < H; j++) a[j] = rnn_tanh(a[j]);
}

/* dh, dc: gradients w.r.t. this step's h and c on entry, w.r.t. h_prev (direct part, 0 here)
 * and c_prev on exit. G: pre-activation gradients. */
static void lstm_bwd_row(int H, const float *restrict a, const float *restrict cp, const float *restrict tc,
                         float *restrict G, float *restrict dh, float *restrict dc) {
    for (int j = 0; j < H; j++) {
        float ig = a[j], fg = a[H + j], gg = a[2 * H + j], og = a[3 * H + j], t = tc[j];
        float dct = dc[j] + dh[j] * og * (1.0f - t * t);
        float dog = dh[j] * t;
        G[j] = dct * gg * ig * (1.0f - ig);
        G[H + j] = dct * cp[j] * fg * (1.0f - fg);
        G[2 * H + j] = dct * ig * (1.0f - gg * gg);
        G[3 * H + j] = dog * og * (1.0f - og);
        dc[j] = dct * fg;
        dh[j] = 0.0f;
    }
}

/* G: input-side gradients (d xz, d xr, d xh); R: recurrent-side (d rz, d rr, d rh = d xh * r);
 * dh on exit: the direct part z * dh of dh_prev. */
static void gru_bwd_row(int H, const float *restrict a, const float *restrict hp, const float *restrict rh,
                        float *restrict G, float *restrict R, float *restrict dh) {
    for (int j = 0; j < H; j++) {
        float z = a[j], r = a[H + j], hh = a[2 * H + j], dhj = dh[j];
        float dz = dhj * (hp[j] - hh) * z * (1.0f - z);
        float da = dhj * (1.0f - z) * (1.0f - hh * hh);
        float dr = da * rh[j] * r * (1.0f - r);
        G[j] = R[j] = dz;
        G[H + j] = R[H + j] = dr;
        G[2 * H + j] = da;
        R[2 * H + j] = da * r;
        dh[j] = dhj * z;
    }
}

static void simple_bwd_row(int H, const float *restrict a, float *restrict G, float *restrict dh) {
    for (int j = 0; j < H; j++) {
        G[j] = dh[j] * (1.0f - a[j] * a[j]);
        dh[j] = 0.0f;
    }
}

static void rnn_forward(mm_node *n) {
    rnn_dims d;
    get_dims(n, &d);
    rnn_bufs sv;
    get_bufs(n, &d, &sv);
    const float *x = n->in[0]->value, *W = n->in[1]->value, *U = n->in[2]->value;
    const int B = d.B, T = d.T, D = d.D, H = d.H, GH = d.GH, ldy = d.ldy;
    float *y = n->value, *rec = n->work, *scr = rec + (d.kind == MM_RNN_GRU ? (size_t)B * GH : 0);
    const size_t TGH = (size_t)T * (size_t)GH, TH = (size_t)T * (size_t)H;
    const int zero_out = (d.flags & MM_RNN_ZERO_MASKED) != 0, want_cell = (d.flags & MM_RNN_CELL) != 0;
    const float *b_in = d.b, *b_rec = d.b && d.kind == MM_RNN_GRU ? d.b + GH : NULL;
    const size_t csz = batch_chunk(B);
    const int nc = n_chunks((size_t)B, csz), nt = pick_threads(n->g, 2.0 * B * T * (double)(D + H) * GH, nc);

#pragma omp parallel for num_threads(nt) schedule(static)
    for (int c = 0; c < nc; c++) {
        size_t lo, hi;
        chunk((size_t)B, csz, c, &lo, &hi);
        const int nb = (int)(hi - lo);
        /* x W (+ input bias) for every step of this thread's rows. */
        for (size_t r = lo * (size_t)T; r < hi * (size_t)T; r++) {
            if (b_in) memcpy(sv.act + r * GH, b_in, (size_t)GH * sizeof(float));
            else memset(sv.act + r * GH, 0, (size_t)GH * sizeof(float));
        }
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, nb * T, GH, D, 1.0f, x + lo * (size_t)T * D, D,
                    W, GH, 1.0f, sv.act + lo * TGH, GH);
        for (int s = 0; s < T; s++) {
            const int p = pos_of(&d, s), pn = s + 1 < T ? pos_of(&d, s + 1) : -1;
            if (s == 0)
                for (size_t b = lo; b < hi; b++) {
                    memset(sv.hprev + b * TH + (size_t)p * H, 0, (size_t)H * sizeof(float));
                    if (sv.cprev) memset(sv.cprev + b * TH + (size_t)p * H, 0, (size_t)H * sizeof(float));
                }
            if (d.kind == MM_RNN_GRU) {
                for (size_t b = lo; b < hi; b++) {
                    if (b_rec) memcpy(rec + b * GH, b_rec, (size_t)GH * sizeof(float));
                    else memset(rec + b * GH, 0, (size_t)GH * sizeof(float));
                }
                if (s > 0)
                    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, nb, GH, H, 1.0f,
                                sv.hprev + lo * TH + (size_t)p * H, (int)TH, U, GH, 1.0f, rec + lo * GH, GH);
            } else if (s > 0) {
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, nb, GH, H, 1.0f,
                            sv.hprev + lo * TH + (size_t)p * H, (int)TH, U, GH, 1.0f, sv.act + lo * TGH + (size_t)p * GH,
                            (int)TGH);
            }
            for (size_t b = lo; b < hi; b++) {
                const size_t row = b * (size_t)T + (size_t)p;
                const int real = d.mask ? d.mask[row] != 0.0f : 1;
                float *a = sv.act + row * GH, *out = y + row * (size_t)ldy, *hs = scr + b * 2 * H, *cs = hs + H;
                const float *hp = sv.hprev + row * H, *cp = sv.cprev ? sv.cprev + row * H : NULL;
                if (d.kind == MM_RNN_LSTM) lstm_fwd_row(H, a, cp, sv.tc + row * H, hs, cs);
                else if (d.kind == MM_RNN_GRU) gru_fwd_row(H, a, rec + b * GH, hp, sv.rh + row * H, hs);
                else simple_fwd_row(H, a), hs = a;
                /* masked: carry the state; the output shows it (or 0 with zero_out) */
                const float *hv = real ? hs : hp, *cv = real ? cs : cp;
                const size_t hb = (size_t)H * sizeof(float);
                if (real || !zero_out) {
                    memcpy(out, hv, hb);
                    if (want_cell) memcpy(out + H, cv, hb);
                } else {
                    memset(out, 0, (size_t)ldy * sizeof(float));
                }
                if (pn >= 0) {
                    memcpy(sv.hprev + b * TH + (size_t)pn * H, hv, hb);
                    if (cp) memcpy(sv.cprev + b * TH + (size_t)pn * H, cv, hb);
                }
            }
        }
    }
}

static void rnn_backward(mm_node *n) {
    rnn_dims d;
    get_dims(n, &d);
    rnn_bufs sv;
    get_bufs(n, &d, &sv);
    mm_node *xn = n->in[0], *Wn = n->in[1], *Un = n->in[2];
    mm_node *bn = n->a.i[A_BIAS] >= 0 ? n->in[n->a.i[A_BIAS]] : NULL;
    mm_node *mn = n->a.i[A_MASK] >= 0 ? n->in[n->a.i[A_MASK]] : NULL;
    const float *W = Wn->value, *U = Un->value, *dy = n->grad;
    const int B = d.B, T = d.T, D = d.D, H = d.H, GH = d.GH, ldy = d.ldy;
    const size_t BT = (size_t)B * (size_t)T, TGH = (size_t)T * (size_t)GH;
    const int zero_out = (d.flags & MM_RNN_ZERO_MASKED) != 0, want_cell = (d.flags & MM_RNN_CELL) != 0;
    float *dg = n->work, *dgr = d.kind == MM_RNN_GRU ? dg + BT * GH : dg;
    float *dh = dg + BT * GH * (d.kind == MM_RNN_GRU ? 2 : 1), *dc = dh + (size_t)B * H;
    const size_t csz = batch_chunk(B);
    const int nc = n_chunks((size_t)B, csz), nt = pick_threads(n->g, 2.0 * B * T * (double)(D + H) * GH, nc);

#pragma omp parallel for num_threads(nt) schedule(static)
    for (int c = 0; c < nc; c++) {
        size_t lo, hi;
        chunk((size_t)B, csz, c, &lo, &hi);
        const int nb = (int)(hi - lo);
        memset(dh + lo * H, 0, (size_t)nb * H * sizeof(float));
        memset(dc + lo * H, 0, (size_t)nb * H * sizeof(float));
        for (int s = T - 1; s >= 0; s--) {
            const int p = pos_of(&d, s);
            for (size_t b = lo; b < hi; b++) {
                const size_t row = b * (size_t)T + (size_t)p;
                const int real = d.mask ? d.mask[row] != 0.0f : 1;
                float *dhb = dh + b * H, *dcb = dc + b * H, *G = dg + row * GH, *R = dgr + row * GH;
                const float *gy = dy + row * (size_t)ldy;
                if (real || !zero_out) {
                    for (int j = 0; j < H; j++) dhb[j] += gy[j];
                    if (want_cell)
                        for (int j = 0; j < H; j++) dcb[j] += gy[H + j];
                }
                if (!real) { /* state carried: dh, dc pass through unchanged */
                    memset(G, 0, (size_t)GH * sizeof(float));
                    if (R != G) memset(R, 0, (size_t)GH * sizeof(float));
                    continue;
                }
                const float *a = sv.act + row * GH;
                if (d.kind == MM_RNN_LSTM) lstm_bwd_row(H, a, sv.cprev + row * H, sv.tc + row * H, G, dhb, dcb);
                else if (d.kind == MM_RNN_GRU) gru_bwd_row(H, a, sv.hprev + row * H, sv.rh + row * H, G, R, dhb);
                else simple_bwd_row(H, a, G, dhb);
            }
            /* dh_prev += dgates_rec @ U^T (the first step's h_prev is the fixed zero state) */
            if (s > 0)
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, nb, H, GH, 1.0f, dgr + lo * TGH + (size_t)p * GH,
                            (int)TGH, U, GH, 1.0f, dh + lo * H, H);
        }
        if (xn->grad)
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, nb * T, D, GH, 1.0f, dg + lo * TGH, GH, W, GH,
                        n->acc[0] ? 1.0f : 0.0f, xn->grad + lo * (size_t)T * D, D);
    }

    if (Wn->grad) { /* dW = x^T dg, split over the D rows of dW */
        const float *x = xn->value;
        const int ncr = n_chunks((size_t)D, ROW_CHUNK), nw = pick_threads(n->g, 2.0 * (double)BT * D * GH, ncr);
        float beta = n->acc[1] ? 1.0f : 0.0f;
#pragma omp parallel for num_threads(nw) schedule(static)
        for (int c = 0; c < ncr; c++) {
            size_t lo, hi;
            chunk((size_t)D, ROW_CHUNK, c, &lo, &hi);
            cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)(hi - lo), GH, (int)BT, 1.0f, x + lo, D, dg, GH,
                        beta, Wn->grad + lo * GH, GH);
        }
    }
    if (Un->grad) { /* dU = h_prev^T dgr, split over the H rows of dU */
        const int ncr = n_chunks((size_t)H, ROW_CHUNK), nw = pick_threads(n->g, 2.0 * (double)BT * H * GH, ncr);
        float beta = n->acc[2] ? 1.0f : 0.0f;
#pragma omp parallel for num_threads(nw) schedule(static)
        for (int c = 0; c < ncr; c++) {
            size_t lo, hi;
            chunk((size_t)H, ROW_CHUNK, c, &lo, &hi);
            cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)(hi - lo), GH, (int)BT, 1.0f, sv.hprev + lo, H,
                        dgr, GH, beta, Un->grad + lo * GH, GH);
        }
    }
    if (bn && bn->grad) { /* column sums, rows in order */
        float *db = bn->grad;
        const int parts = d.kind == MM_RNN_GRU ? 2 : 1;
        if (!n->acc[n->a.i[A_BIAS]]) memset(db, 0, (size_t)parts * GH * sizeof(float));
        for (int q = 0; q < parts; q++) {
            const float *src = q ? dgr : dg;
            float *dst = db + (size_t)q * GH;
            for (size_t r = 0; r < BT; r++) {
                const float *gr = src + r * GH;
                for (int j = 0; j < GH; j++) dst[j] += gr[j];
            }
        }
    }
    if (mn && mn->grad && !n->acc[n->a.i[A_MASK]]) /* the mask is not differentiable */
        memset(mn->grad, 0, mn->size * sizeof(float));
}

static const mm_op rnn_op = {
    .name = "rnn",
    .infer = rnn_infer,
    .saved_bytes = rnn_saved_bytes,
    .work_bytes = rnn_work_bytes,
    .forward = rnn_forward,
    .backward = rnn_backward,
    /* x (dW), W (dx), U (dh_prev), bias slot (not read, harmless), mask */
    .backward_reads = 0x1Fu,
};

mm_node *mm_g_rnn(mm_graph *g, int cell, mm_node *x, mm_node *mask, mm_node *W, mm_node *U, mm_node *b,
                  int flags) {
    if (!g) return NULL;
    if (cell != MM_RNN_SIMPLE && cell != MM_RNN_LSTM && cell != MM_RNN_GRU) {
        mm_error(MM_ERR_ARG, "rnn: unknown cell kind %d", cell);
        return NULL;
    }
    mm_attrs a = {0};
    mm_node *in[5] = {x, W, U};
    int n = 3;
    a.i[A_KIND] = cell;
    a.i[A_FLAGS] = flags;
    a.i[A_BIAS] = a.i[A_MASK] = -1;
    if (b) a.i[A_BIAS] = n, in[n++] = b;
    if (mask) a.i[A_MASK] = n, in[n++] = mask;
    return mm_graph_op(g, &rnn_op, n, in, &a, kind_name(cell));
}

mm_node *mm_g_simple_rnn(mm_graph *g, mm_node *x, mm_node *mask, mm_node *W, mm_node *U, mm_node *b,
                         int go_backwards) {
    return mm_g_rnn(g, MM_RNN_SIMPLE, x, mask, W, U, b, go_backwards ? MM_RNN_BACKWARDS : 0);
}

mm_node *mm_g_lstm(mm_graph *g, mm_node *x, mm_node *mask, mm_node *W, mm_node *U, mm_node *b, int go_backwards,
                   int want_cell) {
    return mm_g_rnn(g, MM_RNN_LSTM, x, mask, W, U, b,
                    (go_backwards ? MM_RNN_BACKWARDS : 0) | (want_cell ? MM_RNN_CELL : 0));
}

mm_node *mm_g_gru(mm_graph *g, mm_node *x, mm_node *mask, mm_node *W, mm_node *U, mm_node *b, int go_backwards) {
    return mm_g_rnn(g, MM_RNN_GRU, x, mask, W, U, b, go_backwards ? MM_RNN_BACKWARDS : 0);
}

/* ------------------------------------------------------------------ last_step / first_step */

/* attrs: i[0] from_start (first_step). Input 1 (optional) is the mask. */
static mm_status step_infer(mm_node *n) {
    const char *nm = n->a.i[0] ? "first_step" : "last_step";
    mm_node *x = n->in[0], *m = n->n_in > 1 ? n->in[1] : NULL;
    char s1[64];
    if (x->ndim != 3)
        return mm_error(MM_ERR_SHAPE, "%s: sequence must be [batch, time, features], got %s", nm,
                        shape_str(x, s1, sizeof s1));
    if (m && (m->ndim != 2 || m->shape[0] != x->shape[0] || m->shape[1] != x->shape[1]))
        return mm_error(MM_ERR_SHAPE, "%s: mask must be [%d, %d] (batch, time), got %s", nm, x->shape[0],
                        x->shape[1], shape_str(m, s1, sizeof s1));
    if (m && m->batched != x->batched)
        return mm_error(MM_ERR_SHAPE, "%s: mask must be batched exactly when the sequence is", nm);
    n->ndim = 2;
    n->shape[0] = x->shape[0];
    n->shape[1] = x->shape[2];
    return MM_OK;
}

/* Position picked for row b, or -1 when the row has no real step (output 0). */
static int step_pick(const mm_node *n, int b) {
    const int T = n->in[0]->shape[1], first = n->a.i[0];
    if (n->n_in < 2) return first ? 0 : T - 1;
    const float *m = n->in[1]->value + (size_t)b * T;
    if (first) {
        for (int t = 0; t < T; t++)
            if (m[t] != 0.0f) return t;
    } else {
        for (int t = T - 1; t >= 0; t--)
            if (m[t] != 0.0f) return t;
    }
    return -1;
}

static void step_forward(mm_node *n) {
    const mm_node *x = n->in[0];
    const int B = x->shape[0], T = x->shape[1], F = x->shape[2];
    for (int b = 0; b < B; b++) {
        int p = step_pick(n, b);
        float *o = n->value + (size_t)b * F;
        if (p < 0) memset(o, 0, (size_t)F * sizeof(float));
        else memcpy(o, x->value + ((size_t)b * T + (size_t)p) * F, (size_t)F * sizeof(float));
    }
}

static void step_backward(mm_node *n) {
    mm_node *x = n->in[0];
    const int B = x->shape[0], T = x->shape[1], F = x->shape[2];
    if (x->grad) {
        if (!n->acc[0]) memset(x->grad, 0, x->size * sizeof(float));
        for (int b = 0; b < B; b++) {
            int p = step_pick(n, b);
            if (p < 0) continue;
            float *d = x->grad + ((size_t)b * T + (size_t)p) * F;
            const float *gy = n->grad + (size_t)b * F;
            for (int j = 0; j < F; j++) d[j] += gy[j];
        }
    }
    if (n->n_in > 1 && n->in[1]->grad && !n->acc[1]) memset(n->in[1]->grad, 0, n->in[1]->size * sizeof(float));
}

static const mm_op step_op = {
    .name = "last_step",
    .infer = step_infer,
    .forward = step_forward,
    .backward = step_backward,
    .backward_reads = 1u << 1,
};

static mm_node *step_node(mm_graph *g, mm_node *seq, mm_node *mask, int first) {
    mm_attrs a = {0};
    a.i[0] = first;
    mm_node *in[2] = {seq, mask};
    return mm_graph_op(g, &step_op, mask ? 2 : 1, in, &a, first ? "first_step" : "last_step");
}

mm_node *mm_g_last_step(mm_graph *g, mm_node *seq, mm_node *mask) { return step_node(g, seq, mask, 0); }
mm_node *mm_g_first_step(mm_graph *g, mm_node *seq, mm_node *mask) { return step_node(g, seq, mask, 1); }
