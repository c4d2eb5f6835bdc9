/* bfloat16 GEMM for mm_set_matmul_precision("medium"): Intel AMX, else AVX512-BF16.
 *
 * An AMX tile multiply (TDPBF16PS) takes a 16 x 32 bfloat16 tile of A and a 32 x 16 tile of B
 * (stored as 16 rows of 16 column pairs: "VNNI" order, the two inner indices 2p and 2p + 1 of
 * a column side by side) and adds their float32 products to a 16 x 16 float32 tile, about 16x
 * the work of one AVX-512 FMA per cycle. CPUs without AMX but with AVX512-BF16 (AMD Zen 4 and
 * later, Intel Cooper Lake) have VDPBF16PS: 16 float32 lanes, each adding the products of one
 * pair, twice an FMA's multiply-adds, reading B in the same VNNI order. Rounding both operands to
 * bfloat16 (8 significant bits) and summing in float32 is what PyTorch's
 * torch.set_float32_matmul_precision("medium") and its bf16 autocast do; training curves of
 * small Transformers match float32's to a few thousandths of a nat (bench/textgen.sh measures it).
 *
 * AMX needs AMX-TILE and AMX-BF16 (Sapphire Rapids and later), a build that targets it
 * (-march=native there) and Linux's grant of the tile state (arch_prctl ARCH_REQ_XCOMP_PERM,
 * Linux 5.16+); AVX512-BF16 needs only the build. bf16_gemm_ready() checks once. Elsewhere the
 * callers keep their float32 kernels. */
#ifndef MM_BF16_GEMM_H
#define MM_BF16_GEMM_H

#include <stdint.h>

#if defined(__AMX_TILE__) && defined(__AMX_BF16__) && defined(__AVX512BF16__)
#define AMX_BUILT 1
#else
#define AMX_BUILT 0
#endif
/* The vector conversions and the VDPBF16PS kernel (AVX512-BW for the 16-bit permutes). */
#if defined(__AVX512BF16__) && defined(__AVX512BW__)
#define BF16_VEC_BUILT 1
#else
#define BF16_VEC_BUILT 0
#endif

#define BF16_ROWS 16 /* rows of a tile */
#define BF16_KSTEP 32 /* bfloat16 values in a tile row: the inner step of one multiply */
#define BF16_COLS 32 /* output columns per block: two 16-column tiles */

/* 1 when this build has the AMX kernel and the process may use the tile registers, or has the
 * AVX512-BF16 kernel. */
int bf16_gemm_ready(void);

/* "amx", "avx512_bf16" or "none": the kernel bf16_gemm runs. */
const char *bf16_gemm_kernel(void);

/* dst[i * ldd + j] = bf16(src[i * si + j * sj]) for i < rows, j < cols (round to nearest even):
 * A operands, row-major (sj = 1) or transposed (si = 1). */
void bf16_matrix(const float *src, long si, long sj, int rows, int cols, uint16_t *dst, long ldd);

/* B operand [inner][cols] in VNNI order: dst[(i / 2) * 2 * cols + 2 * j + i % 2] = bf16(src[i * si
 * + j * sj]); inner must be even. */
void bf16_vnni(const float *src, long si, long sj, int inner, int cols, uint16_t *dst);

/* Rows 2p and 2p + 1 of src [rows][cols] (rows even) rounded once and stored as they are in
 * rows_dst [rows][cols] (A layout) and in VNNI order in vnni_dst (B layout); either may be NULL. */
void bf16_rows_vnni(const float *src, long ld, int rows, int cols, uint16_t *rows_dst, uint16_t *vnni_dst);

typedef struct bf16_gemm_args { /* designated initializers recommended */
    int M, N, K;          /* M % 16 == 0, N % BF16_COLS == 0, K % BF16_KSTEP == 0 */
    const uint16_t *A;    /* bfloat16 [M][lda] */
    long lda;
    const uint16_t *B;    /* VNNI: K / 2 rows of ldb bfloat16 (ldb >= 2 N) */
    long ldb;
    float *C;             /* float32 [M][ldc] */
    long ldc;
    int accumulate;       /* 1: C += A B, 0: C = A B */
    const float *bias;    /* NULL, or N values added to every row */
} bf16_gemm_args;

#if BF16_VEC_BUILT
/* The AVX512-BF16 kernel itself, whatever bf16_gemm would pick (tests run it on AMX CPUs too). */
void bf16_gemm_avx512(const bf16_gemm_args *a);
#endif

/* C (+)= A B (+ bias) on the calling thread. Call only when bf16_gemm_ready(). Each C value is
 * summed in the same order whatever the thread or block, so results do not depend on threads. */
void bf16_gemm(const bf16_gemm_args *a);

#endif
