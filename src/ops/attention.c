/* Multi-head scaled dot-product attention, memory-efficient (FlashAttention-style
 * recomputation), and a single-query decode step for generation with a KV cache.
 *
 * q, k, v, out are [B, T, C] with C = n_heads * hd; head h uses columns [h*hd, (h+1)*hd) of
 * every row (GPT-2's split), so each head is a strided [T, hd] view with leading dimension C and
 * the GEMMs (the register-tiled kernel of tile_gemm.h, single-threaded) run on the [B, T, C]
 * layout directly, with K and V transposed once per head where a product needs them as B^T:
 *
 *   S = q_h k_h^T / sqrt(hd) + masks,   P = softmax_rows(S),   out_h = dropout(P) v_h
 *
 * Masks: causal (key j > query i gets -inf) and an optional key mask [B, T] (0 = padding: that
 * key gets -inf for every query of the sequence). A query row whose keys are all masked has
 * P = 0 and outputs zeros (PyTorch would give NaN there).
 *
 * Memory: no [B, heads, T, T] tensor survives from forward to backward. Work is parallelized
 * over (batch, head) pairs; each pair is done by one thread, row block by row block (RB query
 * rows at a time, keys up to the block's last row when causal), in a per-thread scratch of
 * 2 * RB * T floats plus K^T and V^T (n->work). Under the causal mask the kernel also skips
 * most of the masked triangle inside a block (whole register tiles past a row tile's last
 * key). The forward saves only each row's log-sum-exp
 * (lse = max + log sum exp(s - max)) in n->saved; the backward recomputes S, rebuilds
 * P = exp(S - lse), and with dP~ = dO v^T, D_i = sum_j P~_ij dP~_ij = dO_i . out_i
 * (FlashAttention-2: an hd-long dot product instead of a pass over the row):
 *   dv += P~^T dO,  dS = P * (dP - D) / sqrt(hd),  dq = dS k,  dk += dS^T q
 * (P~ = dropped-out P, dP = dP~ through the dropout mask). The forward normalizes
 * exp(S - max) by its sum, which equals exp(S - lse) to rounding (an ulp or two).
 * Exponentials go through the vectorizable mm_fast_expf (fastexp.h, ~1.4 ulp).
 *
 * Dropout (training and rate > 0 only): inverted dropout on P, element (b, h, i, j) dropped
 * when u01(hash64(base ^ (((b*H + h)*T + i)*T + j))) < rate with base = node seed ^
 * hash64(step) (as dropout.c); base is saved so the backward regenerates the same mask.
 *
 * Determinism: a pair's result does not depend on which thread computes it, so outputs and
 * gradients are bit-identical for any thread count.
 *
 * inputs: q, k, v[, key_mask]. attrs: i[0] = n_heads, i[1] = causal; f[0] = dropout rate.
 * saved: HEADER bytes (struct hdr) then lse[Bcap * H * T] floats (-inf: fully masked row).
 * The backward reads the output (for D).
 * Precision "medium" (mm_set_matmul_precision) with a bfloat16 GEMM: the six products round their
 * operands to bfloat16 and sum in float32 in bf16_gemm (bf16_gemm.h), over whole blocks (the softmax zeroes
 * the causal triangle); the softmax, masks, dropout and D stay float32.
 *
 * work: threads * (2 * RB * T + 2 * T * hd) floats, then in bfloat16 threads * bf16_halves()
 * bfloat16 values (struct bf16_ops). */
#include "ops/ops.h"
#include "ops/fastexp.h"
#include "ops/tile_gemm.h"
#include "ops/bf16_gemm.h"

#include <cblas.h>
#include <math.h>
#include <omp.h>
#include <string.h>

#define RB 64          /* query rows per block */
#define HEADER 64
#define PAR_MIN 65536  /* T*T*hd per pair times pairs below which one thread is used */

struct hdr {
    int dropped;   /* the last forward applied dropout */
    uint64_t base; /* dropout hash base used by it */
};

static int nthreads(const mm_node *n) {
    return n->g && n->g->threads > 0 ? n->g->threads : mm_threads();
}

static int cap_batch(const mm_node *n) {
    if (n->batched && n->g && n->g->batch_cap > n->shape[0]) return n->g->batch_cap;
    return n->shape[0];
}

static int row_block(int T) { return T < RB ? T : RB; }

static mm_status att_infer(mm_node *n) {
    mm_node *q = n->in[0];
    const int H = n->a.i[0];
    if (q->ndim != 3)
        return mm_error(MM_ERR_SHAPE, "attention: q must be [batch, time, channels], got rank %d", q->ndim);
    for (int i = 1; i < 3; i++) {
        const mm_node *x = n->in[i];
        if (x->ndim != 3 || memcmp(x->shape, q->shape, 3 * sizeof(int)) != 0)
            return mm_error(MM_ERR_SHAPE, "attention: %s has shape [%d, %d, %d] (rank %d), q has [%d, %d, %d]",
                            i == 1 ? "k" : "v", x->shape[0], x->ndim > 1 ? x->shape[1] : 0,
                            x->ndim > 2 ? x->shape[2] : 0, x->ndim, q->shape[0], q->shape[1], q->shape[2]);
        if (x->batched != q->batched)
            return mm_error(MM_ERR_SHAPE, "attention: q, k and v must all be batched or all unbatched");
    }
    const int C = q->shape[2];
    if (H < 1) return mm_error(MM_ERR_ARG, "attention: n_heads %d must be positive", H);
    if (C % H != 0)
        return mm_error(MM_ERR_ARG, "attention: channels C=%d is not divisible by n_heads=%d", C, H);
    if (n->n_in == 4) {
        const mm_node *m = n->in[3];
        if (m->ndim != 2 || m->shape[0] != q->shape[0] || m->shape[1] != q->shape[1])
            return mm_error(MM_ERR_SHAPE, "attention: key mask must be [batch, time] = [%d, %d], got rank %d [%d, %d]",
                            q->shape[0], q->shape[1], m->ndim, m->shape[0], m->ndim > 1 ? m->shape[1] : 0);
        if (m->batched != q->batched)
            return mm_error(MM_ERR_SHAPE, "attention: key mask must be batched exactly when q is");
    }
    const float rate = n->a.f[0];
    if (!(rate >= 0.0f && rate < 1.0f))
        return mm_error(MM_ERR_ARG, "attention: dropout rate %g must be in [0, 1)", (double)rate);
    n->ndim = 3;
    memcpy(n->shape, q->shape, sizeof n->shape);
    n->batched = q->batched;
    return MM_OK;
}

static size_t att_saved_bytes(const mm_node *n) {
    return HEADER + (size_t)cap_batch(n) * (size_t)n->a.i[0] * (size_t)n->shape[1] * sizeof(float);
}

/* Per-thread scratch: two row blocks of scores (P and dP) and the transposed K and V of the
 * current head. */
static size_t thread_floats(const mm_node *n) {
    const int T = n->shape[1], hd = n->shape[2] / n->a.i[0];
    return 2 * (size_t)row_block(T) * (size_t)T + 2 * (size_t)hd * (size_t)T;
}

/* Precision "medium" with the bfloat16 GEMM (bf16_gemm.h): all six products in bfloat16 when a
 * head's width and the sequence length are whole tiles. Each thread then also holds bfloat16
 * copies of its head's operands, in the layouts bf16_gemm reads (see struct bf16_ops). */
static int bf16_att_shape(int T, int hd) { return hd % BF16_COLS == 0 && T % BF16_COLS == 0; }

static size_t bf16_halves(const mm_node *n) {
    const int T = n->shape[1], hd = n->shape[2] / n->a.i[0], rb = row_block(T);
    if (!bf16_gemm_ready() || !bf16_att_shape(T, hd)) return 0;
    return 6 * (size_t)T * hd + 4 * (size_t)rb * T + 2 * (size_t)rb * hd;
}

static size_t att_work_bytes(const mm_node *n) {
    return (size_t)nthreads(n) * (thread_floats(n) * sizeof(float) + bf16_halves(n) * sizeof(uint16_t));
}

/* A thread's bfloat16 operands for one (batch, head) pair: whole-head copies made once per pair,
 * and row-block copies made per block of R query rows (nk keys). "vnni" is bf16_gemm's B layout
 * over pairs of its inner index. */
typedef struct bf16_ops {
    uint16_t *q;    /* Q [T, hd]: A of S = Q K^T */
    uint16_t *kt;   /* K^T, vnni over d: B of S */
    uint16_t *v;    /* V, vnni over keys: B of O = P V */
    uint16_t *k;    /* K, vnni over keys: B of dq = dS K */
    uint16_t *vt;   /* V^T, vnni over d: B of dP = dO V^T */
    uint16_t *dO;   /* dO [T, hd]: A of dP */
    uint16_t *p;    /* P [R, nk]: A of O = P V */
    uint16_t *pt;   /* P^T [nk, R]: A of dv += P^T dO */
    uint16_t *ds;   /* dS [R, nk]: A of dq */
    uint16_t *dst;  /* dS^T [nk, R]: A of dk += dS^T Q */
    uint16_t *rows; /* dO or Q rows of the block, vnni over queries: B of dv, dk */
} bf16_ops;

static bf16_ops bf16_scratch(uint16_t *base, int T, int hd, int rb) {
    bf16_ops o;
    const size_t th = (size_t)T * hd, rt = (size_t)rb * T;
    o.q = base, o.kt = o.q + th, o.v = o.kt + th, o.k = o.v + th, o.vt = o.k + th, o.dO = o.vt + th;
    o.p = o.dO + th, o.pt = o.p + rt, o.ds = o.pt + rt, o.dst = o.ds + rt, o.rows = o.dst + rt;
    return o;
}

/* The operands of S = Q K^T for a head (strided [T, hd] views, leading dimension C); the forward
 * and the backward's recomputation both take them from here. */
static void bf16_scores_operands(const bf16_ops *a, const float *Q, const float *K, int T, int hd, int C) {
    bf16_matrix(Q, C, 1, T, hd, a->q, hd);
    bf16_vnni(K, 1, C, hd, T, a->kt);
}

/* C[M, N] (+)= A[M, K] B[K, N] in bfloat16, B in vnni order with ncols >= N columns. */
static void bf16_mul(int M, int N, int K, const uint16_t *A, long lda, const uint16_t *B, int ncols, float *C,
                    long ldc, int accumulate) {
    const bf16_gemm_args a = {.M = M, .N = N, .K = K, .A = A, .lda = lda, .B = B, .ldb = 2L * ncols, .C = C, .ldc = ldc,
                        .accumulate = accumulate};
    bf16_gemm(&a);
}

static void scale_rows(float *s, int rows, int cols, float scale) {
#pragma omp simd
    for (int i = 0; i < rows * cols; i++) s[i] *= scale;
}

/* Xt[d * T + j] = X[j * C + d]: a head's [T, hd] view transposed, so that products with X^T
 * read unit-stride rows. */
static void pack_transposed(float *xt, const float *x, int T, int hd, int C) {
    for (int j0 = 0; j0 < T; j0 += 16) {
        const int j1 = j0 + 16 < T ? j0 + 16 : T;
        for (int d = 0; d < hd; d++)
            for (int j = j0; j < j1; j++) xt[(size_t)d * T + j] = x[(size_t)j * C + d];
    }
}

static void gemm(int M, int N, int K, float alpha, const float *A, long sai, long sak, const float *B, long ldb,
                 float *C, long ldc, int accumulate, int limit, int diag) {
    const tg_args a = {.M = M, .N = N, .K = K, .alpha = alpha, .A = A, .sai = sai, .sak = sak, .B = B, .ldb = ldb,
                       .C = C, .ldc = ldc, .accumulate = accumulate, .limit = limit, .diag = diag};
    tg_gemm(&a);
}

/* Number of pairs worth splitting over threads. */
static int pair_threads(const mm_node *n, int pairs, int T, int hd) {
    int nt = nthreads(n);
    if ((double)pairs * T * T * hd < PAR_MIN) return 1;
    return nt < pairs ? nt : pairs;
}

/* Dropout factor of element e: 0 (dropped) or 1 / (1 - rate). */
static inline float keep_of(uint64_t base, uint64_t e, float rate, float keep_scale) {
    return mm_u01(mm_hash64(base ^ e)) >= rate ? keep_scale : 0.0f;
}

/* 1 when key j of a mask row is real (non-zero), 0 for padding; tests the bits so that loops
 * using it still vectorize (see fastexp.h). */
static inline int key_real(const float *mrow, int j) {
    uint32_t b;
    memcpy(&b, mrow + j, sizeof b);
    return (b << 1) != 0; /* +0 and -0 are padding */
}

/* P = exp(s - l) for the allowed keys of a row (j < lim, and key_real when there is a key
 * mask), 0 for the rest of its nk entries. */
static void prob_row(float *s, int lim, int nk, const float *mrow, float l) {
    if (mrow) {
#pragma omp simd
        for (int j = 0; j < lim; j++) s[j] = mm_fast_expf(s[j] - l) * (float)key_real(mrow, j);
    } else {
#pragma omp simd
        for (int j = 0; j < lim; j++) s[j] = mm_fast_expf(s[j] - l);
    }
    for (int j = lim; j < nk; j++) s[j] = 0.0f;
}

/* Softmax of a row of scores in place (allowed keys as in prob_row); returns its log-sum-exp,
 * or -inf with the row zeroed when no key is allowed. One exponential per key: the row holds
 * exp(s - max) until it is scaled by 1 / sum. */
static float softmax_row(float *s, int lim, int nk, const float *mrow) {
    float m = -INFINITY, sum = 0;
    if (mrow) {
#pragma omp simd reduction(max : m)
        for (int j = 0; j < lim; j++) {
            float x = key_real(mrow, j) ? s[j] : -INFINITY;
            m = x > m ? x : m;
        }
    } else {
#pragma omp simd reduction(max : m)
        for (int j = 0; j < lim; j++) m = s[j] > m ? s[j] : m;
    }
    if (m == -INFINITY) {
        memset(s, 0, (size_t)nk * sizeof(float));
        return -INFINITY;
    }
    if (mrow) {
#pragma omp simd reduction(+ : sum)
        for (int j = 0; j < lim; j++) {
            s[j] = mm_fast_expf(s[j] - m) * (float)key_real(mrow, j);
            sum += s[j];
        }
    } else {
#pragma omp simd reduction(+ : sum)
        for (int j = 0; j < lim; j++) {
            s[j] = mm_fast_expf(s[j] - m);
            sum += s[j];
        }
    }
    const float inv = 1.0f / sum;
#pragma omp simd
    for (int j = 0; j < lim; j++) s[j] *= inv;
    for (int j = lim; j < nk; j++) s[j] = 0.0f;
    return m + logf(sum);
}

static void att_forward(mm_node *n) {
    const int B = n->shape[0], T = n->shape[1], C = n->shape[2], H = n->a.i[0], hd = C / H;
    const int causal = n->a.i[1], rb = row_block(T);
    const float *qv = n->in[0]->value, *kv = n->in[1]->value, *vv = n->in[2]->value;
    const float *mask = n->n_in == 4 ? n->in[3]->value : NULL;
    const float scale = 1.0f / sqrtf((float)hd), rate = n->a.f[0];
    struct hdr *hd_ = n->saved;
    float *lse_all = (float *)((char *)n->saved + HEADER);
    const int drop = n->g->training && rate > 0.0f;
    const uint64_t base = n->seed ^ mm_hash64(n->g->step);
    hd_->dropped = drop;
    hd_->base = base;
    const float keep_scale = drop ? 1.0f / (1.0f - rate) : 1.0f;
    const int pairs = B * H;
    const int nt = pair_threads(n, pairs, T, hd);
    const int cols_limit = causal ? TG_COLS : TG_FULL, k_limit = causal ? TG_KEND : TG_FULL;
    const size_t per_thread = thread_floats(n), per_thread_h = bf16_halves(n);
    const int bf16 = per_thread_h && mm_matmul_bf16();
    float *work = n->work;
    uint16_t *work_h = (uint16_t *)(work + (size_t)nthreads(n) * per_thread);
#pragma omp parallel for num_threads(nt) schedule(dynamic, 4)
    for (int p = 0; p < pairs; p++) {
        const int b = p / H, h = p % H;
        float *S = work + (size_t)omp_get_thread_num() * per_thread, *Kt = S + 2 * (size_t)rb * T;
        const size_t off = (size_t)b * T * C + (size_t)h * hd;
        const float *Q = qv + off, *K = kv + off, *V = vv + off;
        float *O = n->value + off;
        const float *mrow = mask ? mask + (size_t)b * T : NULL;
        float *lse = lse_all + (size_t)p * T;
        const bf16_ops a = bf16_scratch(work_h + (size_t)omp_get_thread_num() * per_thread_h, T, hd, rb);
        if (bf16) {
            bf16_scores_operands(&a, Q, K, T, hd, C);
            bf16_vnni(V, C, 1, T, hd, a.v);
        } else {
            pack_transposed(Kt, K, T, hd, C);
        }
        for (int r0 = 0; r0 < T; r0 += rb) {
            const int r1 = r0 + rb < T ? r0 + rb : T, R = r1 - r0, nk = causal ? r1 : T;
            /* S = scale * Q K^T, under the causal limit only the columns tg_cols() says (bfloat16: all
             * nk; the softmax zeroes the masked ones) */
            if (bf16) {
                bf16_mul(R, nk, hd, a.q + (size_t)r0 * hd, hd, a.kt, T, S, nk, 0);
                scale_rows(S, R, nk, scale);
            } else {
                gemm(R, nk, hd, scale, Q + (size_t)r0 * C, C, 1, Kt, T, S, nk, 0, cols_limit, r0);
            }
            for (int i = 0; i < R; i++) {
                const int row = r0 + i, lim = causal ? row + 1 : nk;
                const int cw = bf16 ? nk : tg_cols(i, nk, r0, cols_limit);
                float *s = S + (size_t)i * nk;
                const float l = lse[row] = softmax_row(s, lim, cw, mrow);
                if (l == -INFINITY) continue; /* every key masked: zero output row */
                if (drop) {
                    const uint64_t e0 = ((uint64_t)p * T + (uint64_t)row) * (uint64_t)T;
                    for (int j = 0; j < lim; j++) s[j] *= keep_of(base, e0 + (uint64_t)j, rate, keep_scale);
                }
            }
            /* O = P V; causal: each row tile stops at its last row's keys (later P are 0) */
            if (bf16) {
                bf16_matrix(S, nk, 1, R, nk, a.p, nk);
                bf16_mul(R, hd, nk, a.p, nk, a.v, hd, O + (size_t)r0 * C, C, 0);
            } else {
                gemm(R, hd, nk, 1.0f, S, nk, 1, V, C, O + (size_t)r0 * C, C, 0, k_limit, r0);
            }
        }
    }
}

/* Zeroes a strided [T, hd] head block (leading dimension C). */
static void zero_head(float *x, int T, int hd, int C) {
    for (int t = 0; t < T; t++) memset(x + (size_t)t * C, 0, (size_t)hd * sizeof(float));
}

static void att_backward(mm_node *n) {
    const int B = n->shape[0], T = n->shape[1], C = n->shape[2], H = n->a.i[0], hd = C / H;
    const int causal = n->a.i[1], rb = row_block(T);
    mm_node *qn = n->in[0], *kn = n->in[1], *vn = n->in[2];
    const float *qv = qn->value, *kv = kn->value, *vv = vn->value;
    float *dq = qn->grad, *dk = kn->grad, *dv = vn->grad;
    const float *mask = n->n_in == 4 ? n->in[3]->value : NULL;
    if (n->n_in == 4 && n->in[3]->grad && !n->acc[3]) memset(n->in[3]->grad, 0, n->in[3]->size * sizeof(float));
    if (!dq && !dk && !dv) return;
    const float scale = 1.0f / sqrtf((float)hd), rate = n->a.f[0];
    const struct hdr *hd_ = n->saved;
    const float *lse_all = (const float *)((const char *)n->saved + HEADER);
    const int drop = hd_->dropped;
    const uint64_t base = hd_->base;
    const float keep_scale = drop ? 1.0f / (1.0f - rate) : 1.0f;
    const float *gy = n->grad;
    const int acc_q = n->acc[0], acc_k = n->acc[1], acc_v = n->acc[2];
    const int need_ds = dq || dk;
    const int pairs = B * H;
    const int nt = pair_threads(n, pairs, T, hd);
    const int cols_limit = causal ? TG_COLS : TG_FULL, k_limit = causal ? TG_KEND : TG_FULL;
    const int kstart_limit = causal ? TG_KSTART : TG_FULL;
    const size_t per_thread = thread_floats(n), per_thread_h = bf16_halves(n);
    const int bf16 = per_thread_h && mm_matmul_bf16();
    float *work = n->work;
    uint16_t *work_h = (uint16_t *)(work + (size_t)nthreads(n) * per_thread);
#pragma omp parallel for num_threads(nt) schedule(dynamic, 4)
    for (int p = 0; p < pairs; p++) {
        const int b = p / H, h = p % H;
        const bf16_ops a = bf16_scratch(work_h + (size_t)omp_get_thread_num() * per_thread_h, T, hd, rb);
        float *P = work + (size_t)omp_get_thread_num() * per_thread;
        float *D = P + (size_t)rb * T, *Kt = D + (size_t)rb * T, *Vt = Kt + (size_t)hd * T;
        const size_t off = (size_t)b * T * C + (size_t)h * hd;
        const float *Q = qv + off, *K = kv + off, *V = vv + off, *dO = gy + off, *O = n->value + off;
        const float *mrow = mask ? mask + (size_t)b * T : NULL;
        const float *lse = lse_all + (size_t)p * T;
        /* Overwrite = zero first, then everything accumulates: also right when q, k and v are
         * one node (self-attention on x), whose slots then share one gradient buffer. */
        if (dq && !acc_q) zero_head(dq + off, T, hd, C);
        if (dk && !acc_k) zero_head(dk + off, T, hd, C);
        if (dv && !acc_v) zero_head(dv + off, T, hd, C);
        if (bf16) {
            bf16_scores_operands(&a, Q, K, T, hd, C);
            if (need_ds) {
                bf16_matrix(dO, C, 1, T, hd, a.dO, hd);
                bf16_vnni(V, 1, C, hd, T, a.vt);
                bf16_vnni(K, C, 1, T, hd, a.k);
            }
        } else {
            pack_transposed(Kt, K, T, hd, C);
            if (need_ds) pack_transposed(Vt, V, T, hd, C);
        }
        for (int r0 = 0; r0 < T; r0 += rb) {
            const int r1 = r0 + rb < T ? r0 + rb : T, R = r1 - r0, nk = causal ? r1 : T;
            /* P = exp(scale * Q K^T - lse), masked entries 0; dP~ = dO V^T (same columns) */
            if (bf16) {
                bf16_mul(R, nk, hd, a.q + (size_t)r0 * hd, hd, a.kt, T, P, nk, 0);
                scale_rows(P, R, nk, scale);
                if (need_ds) bf16_mul(R, nk, hd, a.dO + (size_t)r0 * hd, hd, a.vt, T, D, nk, 0);
            } else {
                gemm(R, nk, hd, scale, Q + (size_t)r0 * C, C, 1, Kt, T, P, nk, 0, cols_limit, r0);
                if (need_ds) gemm(R, nk, hd, 1.0f, dO + (size_t)r0 * C, C, 1, Vt, T, D, nk, 0, cols_limit, r0);
            }
            for (int i = 0; i < R; i++) {
                const int row = r0 + i, lim = causal ? row + 1 : nk;
                const int cw = bf16 ? nk : tg_cols(i, nk, r0, cols_limit);
                float *s = P + (size_t)i * nk, *d = D + (size_t)i * nk;
                const float l = lse[row];
                if (l == -INFINITY) {
                    memset(s, 0, (size_t)cw * sizeof(float));
                    if (need_ds) memset(d, 0, (size_t)cw * sizeof(float));
                    continue;
                }
                prob_row(s, lim, cw, mrow, l);
                float sum = 0; /* D = dO . out for this row */
                if (need_ds) {
                    const float *orow = O + (size_t)row * C, *grow = dO + (size_t)row * C;
#pragma omp simd reduction(+ : sum)
                    for (int c = 0; c < hd; c++) sum += grow[c] * orow[c];
                }
                if (drop) {
                    /* s -> P~ (for dv); d -> P * (dP - D) * scale, dP = dP~ * mask / (1 - rate) */
                    const uint64_t e0 = ((uint64_t)p * T + (uint64_t)row) * (uint64_t)T;
                    if (need_ds) {
                        for (int j = 0; j < lim; j++) {
                            const float kp = keep_of(base, e0 + (uint64_t)j, rate, keep_scale), pj = s[j];
                            s[j] = pj * kp;
                            d[j] = pj * (d[j] * kp - sum) * scale;
                        }
                        for (int j = lim; j < cw; j++) d[j] = 0.0f;
                    } else {
                        for (int j = 0; j < lim; j++) s[j] *= keep_of(base, e0 + (uint64_t)j, rate, keep_scale);
                    }
                } else if (need_ds) {
#pragma omp simd
                    for (int j = 0; j < lim; j++) d[j] = s[j] * (d[j] - sum) * scale;
                    for (int j = lim; j < cw; j++) d[j] = 0.0f;
                }
            }
            /* dv += P~^T dO, dq += dS K, dk += dS^T q; causal: keys only meet later queries */
            if (bf16) {
                if (dv) {
                    bf16_matrix(P, 1, nk, nk, R, a.pt, R);
                    bf16_vnni(dO + (size_t)r0 * C, C, 1, R, hd, a.rows);
                    bf16_mul(nk, hd, R, a.pt, R, a.rows, hd, dv + off, C, 1);
                }
                if (dq) {
                    bf16_matrix(D, nk, 1, R, nk, a.ds, nk);
                    bf16_mul(R, hd, nk, a.ds, nk, a.k, hd, dq + off + (size_t)r0 * C, C, 1);
                }
                if (dk) {
                    bf16_matrix(D, 1, nk, nk, R, a.dst, R);
                    bf16_vnni(Q + (size_t)r0 * C, C, 1, R, hd, a.rows);
                    bf16_mul(nk, hd, R, a.dst, R, a.rows, hd, dk + off, C, 1);
                }
                continue;
            }
            if (dv) gemm(nk, hd, R, 1.0f, P, 1, nk, dO + (size_t)r0 * C, C, dv + off, C, 1, kstart_limit, -r0);
            if (dq) gemm(R, hd, nk, 1.0f, D, nk, 1, K, C, dq + off + (size_t)r0 * C, C, 1, k_limit, r0);
            if (dk) gemm(nk, hd, R, 1.0f, D, 1, nk, Q + (size_t)r0 * C, C, dk + off, C, 1, kstart_limit, -r0);
        }
    }
}

static const mm_op attention_op = {
    .name = "attention",
    .infer = att_infer,
    .saved_bytes = att_saved_bytes,
    .work_bytes = att_work_bytes,
    .forward = att_forward,
    .backward = att_backward,
    .backward_reads = (1u << 0) | (1u << 1) | (1u << 2) | (1u << 3) | MM_READS_OUTPUT,
};

mm_node *mm_g_attention(mm_graph *g, mm_node *q, mm_node *k, mm_node *v, mm_node *key_mask, int n_heads,
                        int causal, float dropout_rate) {
    if (!g || !q || !k || !v) return NULL;
    mm_attrs a = {0};
    a.i[0] = n_heads;
    a.i[1] = causal ? 1 : 0;
    a.f[0] = dropout_rate;
    mm_node *in[4] = {q, k, v, key_mask};
    return mm_graph_op(g, &attention_op, key_mask ? 4 : 3, in, &a, "attention");
}

void mm_attention_decode_step(const float *q, const float *k_cache, const float *v_cache, int t_plus_1,
                              int n_heads, int head_dim, float *out, float *scratch) {
    if (!q || !k_cache || !v_cache || !out || !scratch || t_plus_1 < 1 || n_heads < 1 || head_dim < 1) return;
    const int C = n_heads * head_dim, nk = t_plus_1;
    const float scale = 1.0f / sqrtf((float)head_dim);
    for (int h = 0; h < n_heads; h++) {
        const int o = h * head_dim;
        cblas_sgemv(CblasRowMajor, CblasNoTrans, nk, head_dim, scale, k_cache + o, C, q + o, 1, 0.0f, scratch, 1);
        softmax_row(scratch, nk, nk, NULL);
        cblas_sgemv(CblasRowMajor, CblasTrans, nk, head_dim, 1.0f, v_cache + o, C, scratch, 1, 0.0f, out + o, 1);
    }
}
