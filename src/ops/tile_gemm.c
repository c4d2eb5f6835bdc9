/* Register-tiled GEMM without packing (see tile_gemm.h). */
#include "ops/tile_gemm.h"

#include <string.h>

typedef float vf __attribute__((vector_size(TG_VL * sizeof(float))));

static inline vf vload(const float *p) {
    vf v;
    memcpy(&v, p, sizeof v);
    return v;
}

static inline void vstore(float *p, vf v) { memcpy(p, &v, sizeof v); }

/* The epilogue of the edge tiles; tile_full spells out the same operations in the same order. */
static inline float sfinish(float v, const float *c, const float *bias, const tg_args *a) {
    if (a->alpha != 1.0f) v *= a->alpha;
    if (a->accumulate) v += *c;
    if (bias) v += *bias;
    return v;
}

/* A full TG_MR x TG_NR tile at (i, j), inner k in [k0, k1): 2 * TG_MR vector accumulators.
 * They are named variables, not arrays, and the epilogue reads the arguments into locals once:
 * with arrays GCC kept a stack copy of the tile (zeroed on entry, spilled after the k loop and
 * reloaded row by row, alpha re-read from memory after every store), which cost 3-5% of a
 * 128-deep tile. TG_ROWS lists the TG_MR rows. */
#if TG_MR == 8
#define TG_ROWS(X) X(0) X(1) X(2) X(3) X(4) X(5) X(6) X(7)
#elif TG_MR == 4
#define TG_ROWS(X) X(0) X(1) X(2) X(3)
#else
#error "TG_ROWS must list TG_MR rows"
#endif
#define TG_ZERO(r) vf c##r##0 = {0}, c##r##1 = {0};
#define TG_FMA(r) { const float x = ak[r * sai]; c##r##0 += x * b0; c##r##1 += x * b1; }
#define TG_STORE(r) { \
        float *c = C + r * ldc; \
        vf v0 = c##r##0, v1 = c##r##1; \
        if (alpha != 1.0f) { v0 *= alpha; v1 *= alpha; } \
        if (acc) { v0 += vload(c); v1 += vload(c + TG_VL); } \
        if (bias) { v0 += bias0; v1 += bias1; } \
        vstore(c, v0); \
        vstore(c + TG_VL, v1); }

static void tile_full(const tg_args *a, int i, int j, int k0, int k1) {
    TG_ROWS(TG_ZERO)
    const long sai = a->sai, sak = a->sak, ldb = a->ldb;
    const float *ak = a->A + (long)i * sai + (long)k0 * sak, *b = a->B + (long)k0 * ldb + j;
    for (int k = k0; k < k1; k++, ak += sak, b += ldb) {
        const vf b0 = vload(b), b1 = vload(b + TG_VL);
        TG_ROWS(TG_FMA)
    }
    const float alpha = a->alpha, *bias = a->bias ? a->bias + j : NULL;
    const int acc = a->accumulate;
    const long ldc = a->ldc;
    float *C = a->C + (long)i * ldc + j;
    const vf bias0 = bias ? vload(bias) : (vf){0}, bias1 = bias ? vload(bias + TG_VL) : (vf){0};
    TG_ROWS(TG_STORE)
}

/* Any tile of rows [i, i + rows) and columns [j, j + cols), cols <= TG_NR: the edges. */
static void tile_edge(const tg_args *a, int i, int rows, int j, int cols, int k0, int k1) {
    for (int r = i; r < i + rows; r++) {
        float acc[TG_NR] = {0};
        const float *A = a->A + (long)r * a->sai;
        for (int k = k0; k < k1; k++) {
            const float x = A[(long)k * a->sak], *b = a->B + (long)k * a->ldb + j;
#pragma omp simd
            for (int c = 0; c < cols; c++) acc[c] += x * b[c];
        }
        float *C = a->C + (long)r * a->ldc + j;
        for (int c = 0; c < cols; c++) C[c] = sfinish(acc[c], C + c, a->bias ? a->bias + j + c : NULL, a);
    }
}

void tg_gemm(const tg_args *a) {
    for (int i = 0; i < a->M; i += TG_MR) {
        const int rows = a->M - i < TG_MR ? a->M - i : TG_MR, d = i + a->diag;
        const int ncol = tg_cols(i, a->N, a->diag, a->limit);
        int k0 = 0, k1 = a->K;
        if (a->limit == TG_KEND && d + TG_MR < k1) k1 = d + TG_MR;
        if (a->limit == TG_KSTART && d > 0) k0 = d < k1 ? d : k1;
        for (int j = 0; j < ncol; j += TG_NR) {
            const int cols = ncol - j < TG_NR ? ncol - j : TG_NR;
            if (rows == TG_MR && cols == TG_NR)
                tile_full(a, i, j, k0, k1);
            else
                tile_edge(a, i, rows, j, cols, k0, k1);
        }
    }
}
