/* matmul: y[..., N] = x[..., K] @ w[K, N] (+ b[N]), the core of Dense.
 *
 * In AVX-512 builds, GEMMs whose inner dimension is 64..1024 run on our register-tiled kernel
 * (tile_gemm.h: no packing, about 10% faster than OpenBLAS there, the bias added in its
 * epilogue); the rest go to OpenBLAS. Both run single-threaded; we split the work across our own threads so that only
 * one thread pool runs. Forward and dx split the rows; dw splits K or N, so each thread owns a
 * block of dw and no reduction (and no nondeterminism) is needed.
 *
 * With mm_set_matmul_precision("medium") and a bfloat16 GEMM (bf16_gemm.h: AMX or AVX512-BF16),
 * GEMMs whose dimensions are whole tiles round both operands to bfloat16 and run in bf16_gemm.
 *
 * work: float32 (backward, tiled dx only): w transposed, [N, K]; bfloat16: the copies of
 * the operands (see bf16_fwd_halves / bf16_bwd_halves). */
#include "ops/ops.h"
#include "ops/tile_gemm.h"
#include "ops/bf16_gemm.h"

#include <cblas.h>
#include <omp.h>
#include <string.h>

/* Row ranges for thread t of nt: [*lo, *hi). */
static void split(size_t total, int t, int nt, size_t *lo, size_t *hi) {
    *lo = total * (size_t)t / (size_t)nt;
    *hi = total * (size_t)(t + 1) / (size_t)nt;
}

/* Threads worth using for a GEMM of m*n*k. Below ~8 MFLOP (tens of microseconds on one core)
 * the fork and join cost about what a second thread saves on a quiet machine, and on a busy
 * one the join waits for a descheduled thread: NeuMF's 256x64x32 layers took 20x longer per
 * epoch with 2 threads than with 1 at a threshold of 1 MFLOP. */
static int gemm_threads(const mm_graph *g, size_t m, size_t n, size_t k) {
    size_t flops = 2 * m * n * k;
    int nt = g->threads > 0 ? g->threads : 1;
    if (flops < (1u << 23)) return 1;
    if ((size_t)nt > m) nt = (int)m;
    return nt > 0 ? nt : 1;
}

/* Where the tiled kernel beats OpenBLAS: inner dimensions of 64..1024 (below, its epilogue
 * dominates; above, an unpacked operand panel no longer stays in cache) and output columns in
 * whole register tiles (its edge tiles are plain loops: a 65-column output ran 2x slower). */
static int tiled(size_t inner, size_t cols) {
    return TG_BEATS_BLAS && inner >= 64 && inner <= 1024 && cols % TG_NR == 0;
}

/* Rows per task of the tiled forward and dx, taken dynamically by the threads: on a shared
 * machine a thread that loses its CPU for a while then holds up less of the step. */
#define ROW_CHUNK 256

/* The tiled dw sums over row chunks of this many rows, so that each chunk's x and dy stay in
 * L2; dw itself, read and written once per chunk, must be small enough to stay there too. */
#define DW_CHUNK 128
#define DW_MAX_FLOATS (256 * 1024)

static int dw_is_tiled(size_t M, int K, int N) {
    return TG_BEATS_BLAS && M >= 64 && (size_t)K * (size_t)N <= DW_MAX_FLOATS && N % TG_NR == 0;
}

/* From 2 * DW_PART rows of M, the tiled dw splits M instead of dw: each part of DW_PART rows
 * (taken by the threads dynamically) sums all of dw over its rows, the first into dw, the others
 * into partial copies that are then added in part order. A thread then streams its parts of x
 * and dy once, where splitting dw made every thread read all of dy or x again for each of its
 * blocks: 30-40% slower than the forward's GEMMs in a GPT step. The parts do not depend on the
 * thread count, so neither does dw. */
#define DW_PART 1024
#define DW_ADD_BLOCK 4096 /* floats of dw summed over all parts at a time */
static int dw_splits_rows(size_t M) { return M >= 2 * DW_PART; }
static size_t dw_parts(size_t M) { return (M + DW_PART - 1) / DW_PART; }

/* Precision "medium" with the bfloat16 GEMM (bf16_gemm.h): every dimension in whole tiles, else
 * float32. */
static int bf16_shape(size_t M, int K, int N) {
    return M % (2 * BF16_ROWS) == 0 && K % BF16_KSTEP == 0 && N % BF16_COLS == 0 && M > 0;
}

/* bfloat16 copies (in 16-bit units) that the bfloat16 forward and backward use. Forward: w in VNNI
 * order, then per thread one row chunk of x at a time (so it stays in L2). Backward: dy as rows
 * (for dx) and in VNNI order (for dw), x^T, w^T in VNNI order. */
static size_t chunk_rows(size_t M) { return M < ROW_CHUNK ? M : ROW_CHUNK; }
static size_t bf16_fwd_halves(int nt, size_t M, int K, int N) {
    return (size_t)K * N + (size_t)nt * chunk_rows(M) * K;
}
static size_t bf16_bwd_halves(size_t M, int K, int N) { return 2 * M * N + (size_t)K * M + (size_t)N * K; }

static int plan_threads(const mm_node *n) { return n->g && n->g->threads > 0 ? n->g->threads : 1; }

/* Rows of x at the batch capacity: what the plan sizes the work for. */
static size_t cap_rows(const mm_node *n, int K) { return mm_cap_size(n->in[0]) / (size_t)K; }

/* The plan reserved the bfloat16 copies: a bfloat16 GEMM is there and the capacity's shape is whole tiles. A
 * smaller batch may be whole tiles when the capacity is not; it then stays float32. */
static int bf16_planned(const mm_node *n, int K, int N) {
    return bf16_gemm_ready() && bf16_shape(cap_rows(n, K), K, N);
}

/* The tiled dx also sums the columns of each row chunk of dy while it is in cache, into one
 * row of partial bias gradients per chunk (db_partials), which matmul_db_from_partials then
 * adds in chunk order: a separate pass over dy cost 1-2.5% of a GPT training step. */
static int db_fused(const mm_node *n, int K, int N) {
    return n->n_in == 3 && n->in[2]->needs_grad && n->in[0]->needs_grad && tiled((size_t)N, (size_t)K);
}
static size_t row_chunks(size_t M) { return (M + ROW_CHUNK - 1) / ROW_CHUNK; }

/* Bytes of the work buffer before the partial bias gradients (64-byte aligned). */
static size_t work_main_bytes(const mm_node *n, int K, int N) {
    const size_t M = cap_rows(n, K);
    /* float32: only the backward's tiled dx uses it (w transposed), so inference plans skip it */
    size_t bytes = n->runs_backward && tiled((size_t)N, (size_t)K) ? (size_t)K * N * sizeof(float) : 0;
    if (bf16_planned(n, K, N)) {
        const int nt = plan_threads(n);
        size_t halves = bf16_fwd_halves(nt, M, K, N);
        if (n->runs_backward && bf16_bwd_halves(M, K, N) > halves) halves = bf16_bwd_halves(M, K, N);
        if (halves * sizeof(uint16_t) > bytes) bytes = halves * sizeof(uint16_t);
    }
    return (bytes + 63) / 64 * 64;
}

static float *db_partials(const mm_node *n, int K, int N) {
    return (float *)((char *)n->work + work_main_bytes(n, K, N));
}

/* The partial dw of parts 1.. (matmul_dw), after the partial bias gradients. */
static float *dw_partials(const mm_node *n, int K, int N) {
    return db_partials(n, K, N) + (db_fused(n, K, N) ? row_chunks(cap_rows(n, K)) * (size_t)N : 0);
}

static size_t matmul_work_bytes(const mm_node *n) {
    const mm_node *w = n->in[1];
    if (w->ndim != 2) return 0;
    const int K = w->shape[0], N = w->shape[1];
    const size_t M = cap_rows(n, K);
    size_t bytes = work_main_bytes(n, K, N);
    if (n->runs_backward && db_fused(n, K, N)) bytes += row_chunks(M) * (size_t)N * sizeof(float);
    if (n->runs_backward && w->needs_grad && dw_is_tiled(M, K, N) && dw_splits_rows(M))
        bytes += (dw_parts(M) - 1) * (size_t)K * N * sizeof(float);
    return bytes;
}

static int use_bf16(const mm_node *n, size_t M, int K, int N) {
    return n->work && mm_matmul_bf16() && bf16_shape(M, K, N) && bf16_planned(n, K, N);
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

/* C[M, cols] (+)= A[M, inner] B[inner, cols] (+ bias) on the tiled kernel, in row chunks that
 * the threads take dynamically. colsums: NULL, or one row of inner floats per chunk that gets
 * the column sums of the chunk's rows of A, summed in row order. */
static void rows_tiled(int nt, size_t M, int inner, int cols, const float *A, const float *B, const float *bias,
                       float *C, int accumulate, float *colsums) {
    const long chunks = (long)row_chunks(M);
#pragma omp parallel for num_threads(nt) schedule(dynamic, 1)
    for (long c = 0; c < chunks; c++) {
        const size_t lo = (size_t)c * ROW_CHUNK, rows = M - lo < ROW_CHUNK ? M - lo : ROW_CHUNK;
        const tg_args a = {.M = (int)rows, .N = cols, .K = inner, .alpha = 1.0f, .A = A + lo * (size_t)inner,
                           .sai = inner, .sak = 1, .B = B, .ldb = cols, .C = C + lo * (size_t)cols, .ldc = cols,
                           .accumulate = accumulate, .bias = bias};
        tg_gemm(&a);
        if (colsums) {
            float *s = colsums + (size_t)c * inner;
            memset(s, 0, (size_t)inner * sizeof(float));
            for (size_t r = lo; r < lo + rows; r++) {
                const float *ar = A + r * (size_t)inner;
#pragma omp simd
                for (int j = 0; j < inner; j++) s[j] += ar[j];
            }
        }
    }
}

/* Inside a parallel region: bf16_vnni split over the threads, 32 inner indices at a time. A
 * conversion on one thread before the region would leave the other threads idle long enough to
 * fall asleep (the CLI's short OpenMP spin), and waking them costs more than the conversion:
 * 34,000 against 45,000 GPT training tokens/s with 2 threads. */
static void vnni_shared(const float *src, long si, long sj, int inner, int cols, uint16_t *dst) {
    const long groups = (inner + 31) / 32;
#pragma omp for schedule(static)
    for (long g = 0; g < groups; g++) {
        const int i0 = (int)g * 32, len = inner - i0 < 32 ? inner - i0 : 32;
        bf16_vnni(src + i0 * si, si, sj, len, cols, dst + (long)i0 * cols);
    }
}

/* The same in bfloat16: the threads first round B [inner, cols] (row-major) into VNNI order in
 * Bv, then each chunk rounds its rows of A to bfloat16 (into the thread's part of Ab,
 * chunk_rows(M) rows each) and multiplies them by Bv. */
static void rows_bf16(int nt, size_t M, int inner, int cols, const float *A, uint16_t *Ab, const float *B,
                      uint16_t *Bv, const float *bias, float *C, int accumulate) {
    const long chunks = (long)((M + ROW_CHUNK - 1) / ROW_CHUNK);
#pragma omp parallel num_threads(nt)
    {
        vnni_shared(B, cols, 1, inner, cols, Bv);
#pragma omp for schedule(dynamic, 1)
        for (long c = 0; c < chunks; c++) {
            const size_t lo = (size_t)c * ROW_CHUNK, rows = M - lo < ROW_CHUNK ? M - lo : ROW_CHUNK;
            uint16_t *ab = Ab + (size_t)omp_get_thread_num() * chunk_rows(M) * inner;
            bf16_matrix(A + lo * (size_t)inner, inner, 1, (int)rows, inner, ab, inner);
            const bf16_gemm_args a = {.M = (int)rows, .N = cols, .K = inner, .A = ab, .lda = inner,
                                      .B = Bv, .ldb = 2L * cols, .C = C + lo * (size_t)cols, .ldc = cols,
                                      .accumulate = accumulate, .bias = bias};
            bf16_gemm(&a);
        }
    }
}

static void matmul_forward(mm_node *n) {
    mm_node *x = n->in[0], *w = n->in[1];
    const int K = w->shape[0], N = w->shape[1];
    const size_t M = x->size / (size_t)K;
    const float *b = n->n_in == 3 ? n->in[2]->value : NULL;
    int nt = gemm_threads(n->g, M, (size_t)N, (size_t)K);
    if (use_bf16(n, M, K, N)) {
        uint16_t *wv = n->work, *xb = wv + (size_t)K * N;
        rows_bf16(nt, M, K, N, x->value, xb, w->value, wv, b, n->value, 0);
        return;
    }
    if (tiled((size_t)K, (size_t)N)) {
        rows_tiled(nt, M, K, N, x->value, w->value, b, n->value, 0, NULL);
        return;
    }
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

/* dx (+)= dy w^T */
/* wt [N, K] = w [K, N]^T, in 16 x 16 blocks (a row-by-row transpose writes a new cache line
 * for every element), split between the threads by blocks of rows of wt once it is large
 * enough for a fork to pay (a 128 x 512 weight took 0.7% of a GPT step on one thread). */
#define TRANSPOSE_BLOCK 16
static void transpose_weight(int nt, const float *w, int K, int N, float *wt) {
    const int blocks = (N + TRANSPOSE_BLOCK - 1) / TRANSPOSE_BLOCK;
    if ((size_t)K * (size_t)N < (1u << 16)) nt = 1;
#pragma omp parallel for num_threads(nt) schedule(static)
    for (int b = 0; b < blocks; b++) {
        const int j0 = b * TRANSPOSE_BLOCK, j1 = j0 + TRANSPOSE_BLOCK < N ? j0 + TRANSPOSE_BLOCK : N;
        for (int k0 = 0; k0 < K; k0 += TRANSPOSE_BLOCK) {
            const int k1 = k0 + TRANSPOSE_BLOCK < K ? k0 + TRANSPOSE_BLOCK : K;
            for (int j = j0; j < j1; j++)
                for (int k = k0; k < k1; k++) wt[(size_t)j * K + k] = w[(size_t)k * N + j];
        }
    }
}

static void matmul_dx(mm_node *n, size_t M, int K, int N) {
    mm_node *x = n->in[0], *w = n->in[1];
    const float *dy = n->grad;
    int nt = gemm_threads(n->g, M, (size_t)N, (size_t)K);
    if (tiled((size_t)N, (size_t)K)) {
        float *wt = n->work; /* w^T [N, K]: the tiled kernel's B is row-major */
        transpose_weight(nt, w->value, K, N, wt);
        rows_tiled(nt, M, N, K, dy, wt, NULL, x->grad, n->acc[0], db_fused(n, K, N) ? db_partials(n, K, N) : NULL);
        return;
    }
    float beta = n->acc[0] ? 1.0f : 0.0f;
#pragma omp parallel for num_threads(nt) schedule(static)
    for (int t = 0; t < nt; t++) {
        size_t lo, hi;
        split(M, t, nt, &lo, &hi);
        if (hi == lo) continue;
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)(hi - lo), K, N, 1.0f, dy + lo * (size_t)N, N,
                    w->value, N, beta, x->grad + lo * (size_t)K, K);
    }
}

/* dw[r0:r1, c0:c1] (+)= x[:, r0:r1]^T dy[:, c0:c1] over all M rows, in chunks of DW_CHUNK rows. */
static void dw_block_tiled(const float *xv, const float *dy, float *dw, size_t M, int K, int N, int r0, int r1,
                           int c0, int c1, int acc) {
    for (size_t m0 = 0; m0 < M; m0 += DW_CHUNK) {
        const int mc = (int)(M - m0 < DW_CHUNK ? M - m0 : DW_CHUNK);
        const tg_args a = {.M = r1 - r0, .N = c1 - c0, .K = mc, .alpha = 1.0f, .A = xv + m0 * (size_t)K + r0,
                           .sai = 1, .sak = K, .B = dy + m0 * (size_t)N + c0, .ldb = N,
                           .C = dw + (size_t)r0 * N + c0, .ldc = N, .accumulate = acc || m0 > 0};
        tg_gemm(&a);
    }
}

/* dx (+)= dy w^T and dw (+)= x^T dy in bfloat16. The threads first round their share of the rows of
 * dy once into both layouts it is needed in (rows: A of dx; VNNI pairs of rows: B of dw) and x
 * into x^T (A of dw, rows K, inner M); then dx goes by row chunks, and dw by blocks of its rows
 * (K) or columns (N), whichever side avoids re-reading the larger operand, each block summing
 * over M in chunks of DW_BF16_CHUNK rows so that a chunk's slices of both stay in L2. */
#define DW_BF16_CHUNK 512

static void backward_bf16(mm_node *n, size_t M, int K, int N) {
    const mm_node *x = n->in[0], *w = n->in[1];
    const float *xv = x->value, *dy = n->grad;
    float *dx = x->grad, *dw = w->grad;
    uint16_t *dyb = n->work, *dyv = dyb + M * N, *xt = dyv + M * N, *wtv = xt + (size_t)K * M;
    const int nt = gemm_threads(n->g, M, (size_t)N, (size_t)K), by_rows = K >= N, acc_x = n->acc[0],
              acc_w = n->acc[1];
    const long pieces = (long)(M / BF16_KSTEP), chunks = (long)((M + ROW_CHUNK - 1) / ROW_CHUNK);
    const int len = by_rows ? K : N, unit = by_rows ? 2 * BF16_ROWS : BF16_COLS;
    const int units = (len + unit - 1) / unit, blocks = units < 2 * nt ? units : 2 * nt;
#pragma omp parallel num_threads(nt)
    {
        if (dx) vnni_shared(w->value, 1, N, N, K, wtv); /* w^T [N, K], complete at its loop's barrier */
#pragma omp for schedule(static)
        for (long p = 0; p < pieces; p++) {
            const size_t m0 = (size_t)p * BF16_KSTEP;
            bf16_rows_vnni(dy + m0 * N, N, BF16_KSTEP, N, dx ? dyb + m0 * N : NULL, dw ? dyv + m0 * N : NULL);
            if (dw) bf16_matrix(xv + m0 * K, 1, K, K, BF16_KSTEP, xt + m0, (long)M);
        }
        if (dx) {
#pragma omp for schedule(dynamic, 1) nowait
            for (long c = 0; c < chunks; c++) {
                const size_t lo = (size_t)c * ROW_CHUNK, rows = M - lo < ROW_CHUNK ? M - lo : ROW_CHUNK;
                const bf16_gemm_args a = {.M = (int)rows, .N = K, .K = N, .A = dyb + lo * N, .lda = N,
                                          .B = wtv, .ldb = 2L * K, .C = dx + lo * K, .ldc = K,
                                          .accumulate = acc_x};
                bf16_gemm(&a);
            }
        }
        if (dw) {
#pragma omp for schedule(dynamic, 1)
            for (int blk = 0; blk < blocks; blk++) {
                const int lo = units * blk / blocks * unit, end = units * (blk + 1) / blocks * unit;
                const int hi = end < len ? end : len;
                const int r0 = by_rows ? lo : 0, r1 = by_rows ? hi : K, c0 = by_rows ? 0 : lo, c1 = by_rows ? N : hi;
                for (size_t m0 = 0; m0 < M; m0 += DW_BF16_CHUNK) {
                    const int mc = (int)(M - m0 < DW_BF16_CHUNK ? M - m0 : DW_BF16_CHUNK);
                    const bf16_gemm_args a = {.M = r1 - r0, .N = c1 - c0, .K = mc,
                                              .A = xt + (size_t)r0 * M + m0, .lda = (long)M,
                                              .B = dyv + m0 * N + 2 * (size_t)c0, .ldb = 2L * N,
                                              .C = dw + (size_t)r0 * N + c0, .ldc = N,
                                              .accumulate = acc_w || m0 > 0};
                    bf16_gemm(&a);
                }
            }
        }
    }
}

/* dw (+)= x^T dy. Each thread reads all of the operand it does not split: split dw by rows
 * (K) when x [M, K] is the larger operand, else by columns (N), so dy [M, N] is read once. */
static void matmul_dw(mm_node *n, size_t M, int K, int N) {
    const mm_node *x = n->in[0];
    float *dw = n->in[1]->grad;
    const float *dy = n->grad;
    const int by_rows = K >= N, acc = n->acc[1];
    int nt = gemm_threads(n->g, by_rows ? (size_t)K : (size_t)N, by_rows ? (size_t)N : (size_t)K, M);
    if (dw_is_tiled(M, K, N) && dw_splits_rows(M)) {
        const long parts = (long)dw_parts(M);
        const size_t kn = (size_t)K * N;
        float *partial = dw_partials(n, K, N);
        nt = gemm_threads(n->g, M, (size_t)K, (size_t)N);
#pragma omp parallel for num_threads(nt) schedule(dynamic, 1)
        for (long p = 0; p < parts; p++) {
            const size_t m0 = (size_t)p * DW_PART, rows = M - m0 < DW_PART ? M - m0 : DW_PART;
            dw_block_tiled(x->value + m0 * K, dy + m0 * N, p ? partial + (size_t)(p - 1) * kn : dw, rows, K, N, 0, K,
                           0, N, p ? 0 : acc);
        }
        /* dw += the other parts in order, a block of dw at a time (in cache across the parts) */
        const long blocks = (long)((kn + DW_ADD_BLOCK - 1) / DW_ADD_BLOCK);
#pragma omp parallel for num_threads(nt) schedule(static)
        for (long b = 0; b < blocks; b++) {
            const size_t lo = (size_t)b * DW_ADD_BLOCK, hi = kn - lo < DW_ADD_BLOCK ? kn : lo + DW_ADD_BLOCK;
            for (long p = 1; p < parts; p++) {
                const float *src = partial + (size_t)(p - 1) * kn;
#pragma omp simd
                for (size_t i = lo; i < hi; i++) dw[i] += src[i];
            }
        }
        return;
    }
    if (dw_is_tiled(M, K, N)) {
        /* two blocks per thread, each whole register tiles, taken dynamically */
        const int len = by_rows ? K : N, unit = by_rows ? TG_MR : TG_NR;
        const int units = (len + unit - 1) / unit, blocks = units < 2 * nt ? units : 2 * nt;
#pragma omp parallel for num_threads(nt) schedule(dynamic, 1)
        for (int blk = 0; blk < blocks; blk++) {
            const int lo = units * blk / blocks * unit, end = units * (blk + 1) / blocks * unit;
            const int hi = end < len ? end : len;
            if (by_rows)
                dw_block_tiled(x->value, dy, dw, M, K, N, lo, hi, 0, N, acc);
            else
                dw_block_tiled(x->value, dy, dw, M, K, N, 0, K, lo, hi, acc);
        }
        return;
    }
    float beta = acc ? 1.0f : 0.0f;
#pragma omp parallel for num_threads(nt) schedule(static)
    for (int t = 0; t < nt; t++) {
        size_t lo, hi;
        split(by_rows ? (size_t)K : (size_t)N, t, nt, &lo, &hi);
        if (hi == lo) continue;
        if (by_rows)
            cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)(hi - lo), N, (int)M, 1.0f, x->value + lo, K,
                        dy, N, beta, dw + lo * (size_t)N, N);
        else
            cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, K, (int)(hi - lo), (int)M, 1.0f, x->value, K,
                        dy + lo, N, beta, dw + lo, N);
    }
}

/* db (+)= column sums of dy, in the same order as the tiled dx's fused sums (each ROW_CHUNK of
 * rows summed in row order from 0, then the chunks added in order), so db does not depend on
 * which path ran or on the threads: they own column ranges, summed in blocks held on the
 * stack. */
#define DB_BLOCK 256
static void matmul_db(mm_node *n, size_t M, int N) {
    float *db = n->in[2]->grad;
    const float *dy = n->grad;
    const int acc = n->acc[2];
    /* memory-bound: threads once dy is a megabyte, at most one per 16 columns */
    int nt = M * (size_t)N >= (1u << 18) ? plan_threads(n) : 1;
    if ((size_t)nt > (size_t)N / 16) nt = N >= 32 ? N / 16 : 1;
#pragma omp parallel for num_threads(nt) schedule(static)
    for (int t = 0; t < nt; t++) {
        size_t lo, hi;
        split((size_t)N, t, nt, &lo, &hi);
        for (size_t j0 = lo; j0 < hi; j0 += DB_BLOCK) {
            const int w = (int)(hi - j0 < DB_BLOCK ? hi - j0 : DB_BLOCK);
            float tot[DB_BLOCK] = {0}, part[DB_BLOCK];
            for (size_t c0 = 0; c0 < M; c0 += ROW_CHUNK) {
                const size_t c1 = M - c0 < ROW_CHUNK ? M : c0 + ROW_CHUNK;
                for (int j = 0; j < w; j++) part[j] = 0.0f;
                for (size_t r = c0; r < c1; r++) {
                    const float *row = dy + r * (size_t)N + j0;
#pragma omp simd
                    for (int j = 0; j < w; j++) part[j] += row[j];
                }
                for (int j = 0; j < w; j++) tot[j] = c0 == 0 ? part[j] : tot[j] + part[j];
            }
            for (int j = 0; j < w; j++) db[j0 + j] = acc ? db[j0 + j] + tot[j] : tot[j];
        }
    }
}

/* db (+)= the per-chunk column sums of dy that the tiled dx left, added in chunk order */
static void matmul_db_from_partials(mm_node *n, size_t M, int K, int N) {
    float *db = n->in[2]->grad;
    const float *part = db_partials(n, K, N);
    const size_t chunks = row_chunks(M);
    for (int j = 0; j < N; j++) {
        float s = part[j];
        for (size_t c = 1; c < chunks; c++) s += part[c * (size_t)N + j];
        db[j] = n->acc[2] ? db[j] + s : s;
    }
}

static void matmul_backward(mm_node *n) {
    const mm_node *x = n->in[0], *w = n->in[1];
    const int K = w->shape[0], N = w->shape[1];
    const size_t M = x->size / (size_t)K;
    int db_done = 0;
    if ((x->grad || w->grad) && use_bf16(n, M, K, N))
        backward_bf16(n, M, K, N);
    else {
        if (x->grad) matmul_dx(n, M, K, N), db_done = db_fused(n, K, N) && n->in[2]->grad;
        if (w->grad) matmul_dw(n, M, K, N);
    }
    if (db_done)
        matmul_db_from_partials(n, M, K, N);
    else if (n->n_in == 3 && n->in[2]->grad)
        matmul_db(n, M, N);
}

static const mm_op matmul_op = {
    .name = "matmul",
    .infer = matmul_infer,
    .work_bytes = matmul_work_bytes,
    .forward = matmul_forward,
    .backward = matmul_backward,
    .backward_reads = (1u << 0) | (1u << 1),
};

mm_node *mm_g_matmul(mm_graph *g, mm_node *x, mm_node *w, mm_node *b) {
    mm_node *in[3] = {x, w, b};
    return mm_graph_op(g, &matmul_op, b ? 3 : 2, in, NULL, NULL);
}
