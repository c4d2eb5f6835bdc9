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

/* The epilogue, the same for full and edge tiles: alpha * sum, then + C, then + bias. */
static inline vf vfinish(vf v, const float *c, const float *bias, const tg_args *a) {
    if (a->alpha != 1.0f) v *= a->alpha;
    if (a->accumulate) v += vload(c);
    if (bias) v += vload(bias);
    return v;
}

static inline float sfinish(float v, const float *c, const float *bias, const tg_args *a) {
    if (a->alpha != 1.0f) v *= a->alpha;
    if (a->accumulate) v += *c;
    if (bias) v += *bias;
    return v;
}

/* A full TG_MR x TG_NR tile at (i, j), inner k in [k0, k1): 2 * TG_MR vector accumulators. */
static void tile_full(const tg_args *a, int i, int j, int k0, int k1) {
    vf c0[TG_MR], c1[TG_MR];
    for (int r = 0; r < TG_MR; r++) c0[r] = c1[r] = (vf){0};
    const float *A = a->A + (long)i * a->sai;
    const long sai = a->sai, sak = a->sak;
    for (int k = k0; k < k1; k++) {
        const float *b = a->B + (long)k * a->ldb + j;
        const vf b0 = vload(b), b1 = vload(b + TG_VL);
        const float *ak = A + (long)k * sak;
        for (int r = 0; r < TG_MR; r++) {
            const float x = ak[r * sai];
            c0[r] += x * b0;
            c1[r] += x * b1;
        }
    }
    float *C = a->C + (long)i * a->ldc + j;
    const float *bias = a->bias ? a->bias + j : NULL;
    for (int r = 0; r < TG_MR; r++) {
        float *c = C + r * a->ldc;
        vstore(c, vfinish(c0[r], c, bias, a));
        vstore(c + TG_VL, vfinish(c1[r], c + TG_VL, bias ? bias + TG_VL : NULL, a));
    }
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
