/* A register-tiled GEMM without packing, for the shapes of a Transformer's layers and of
 * attention.
 *
 * For inner dimensions of 64 to 1024 it runs faster than OpenBLAS (bench: 4096x128x128 about
 * 110 against 100 GFLOP/s on one Zen 4 core, hot caches; attention's 64x128x32 blocks about
 * 90 against 80 with strides): the operands of these shapes fit the L1/L2 caches unpacked,
 * so packing is pure overhead, and OpenBLAS also spends much of a small call on its interface
 * and cannot skip attention's causal triangle inside a block. It computes
 *
 *   C[i, j] (= or +=) alpha * sum_k A[i * sai + k * sak] * B[k * ldb + j] (+ bias[j])
 *
 * with A read through arbitrary strides (so A, A^T and strided head views need no copy) and B
 * row-major with unit stride in j (callers transpose a weight once when they need B^T). Rows
 * go in tiles of TG_MR, columns in tiles of TG_NR held in vector registers (GCC vector
 * extensions; 16 floats with AVX-512, else 8). Every element is summed over k in order with
 * the same operations in full and edge tiles, so results do not depend on how callers split
 * the rows or columns between threads.
 *
 * Causal limits, for the row tile t0 = i - i % TG_MR (d = t0 + diag):
 *   TG_COLS   columns j < min(N, roundup(d + TG_MR, TG_NR)) only (scores of a block whose
 *             first query is row diag: keys up to the tile's last query, rounded up to whole
 *             column tiles); tg_cols() gives that width so callers know what was written;
 *   TG_KEND   inner k < min(K, d + TG_MR) only (P V and dS K with diag = the block's first
 *             query: later keys have P = 0);
 *   TG_KSTART inner k >= max(0, d) only (P^T dO and dS^T Q with diag = -(the block's first
 *             query): output row i is key i, and queries before it have P = 0).
 * Entries skipped by a limit must be zero in the operand (TG_KEND, TG_KSTART) or are simply
 * not written (TG_COLS). Results for a given shape do not depend on the thread that runs it. */
#ifndef MM_TILE_GEMM_H
#define MM_TILE_GEMM_H

#if defined(__AVX512F__)
#define TG_VL 16
#define TG_MR 8 /* 16 of the 32 vector registers accumulate */
#define TG_BEATS_BLAS 1 /* measured on the shapes in matmul.c's tiled() */
#else
#define TG_VL 8
#define TG_MR 4 /* 8 of 16 (6 rows: 2x slower on 64-row blocks, 8: spills) */
#define TG_BEATS_BLAS 0 /* not measured against OpenBLAS's own AVX2 kernels: leave it to them */
#endif
#define TG_NR (2 * TG_VL)

enum { TG_FULL, TG_COLS, TG_KEND, TG_KSTART };

typedef struct tg_args { /* designated initializers recommended: fields may grow */
    int M, N, K;
    float alpha;
    const float *A;
    long sai, sak; /* A's strides along i and k */
    const float *B;
    long ldb;
    float *C;
    long ldc;
    int accumulate; /* 1: C += ..., 0: C = ... */
    const float *bias; /* NULL, or N values added to every row */
    int limit;      /* TG_FULL, TG_COLS, TG_KEND or TG_KSTART */
    int diag;       /* offset of the limits (see above) */
} tg_args;

void tg_gemm(const tg_args *a);

/* Columns written for row i under TG_COLS (N without a limit). */
static inline int tg_cols(int i, int N, int diag, int limit) {
    if (limit != TG_COLS) return N;
    const int t0 = i - i % TG_MR, w = (t0 + diag + TG_MR + TG_NR - 1) / TG_NR * TG_NR;
    return w < N ? w : N;
}

#endif
