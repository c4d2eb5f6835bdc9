/* bfloat16 GEMM on Intel AMX or with AVX512-BF16 (see bf16_gemm.h). */
#include "ops/bf16_gemm.h"

#include <string.h>

#if AMX_BUILT || BF16_VEC_BUILT
#include <immintrin.h>
#endif
#if AMX_BUILT
#include <sys/syscall.h>
#include <threads.h>
#include <unistd.h>

/* Linux's arch_prctl codes for the AMX tile data (asm/prctl.h; not in glibc's headers). */
#define ARCH_REQ_XCOMP_PERM 0x1023
#define XFEATURE_XTILEDATA 18

static int ready;
static once_flag ready_once = ONCE_FLAG_INIT;

static void request_tiles(void) {
    /* The tile registers are 8 KiB of extra state per thread, so Linux hands them out only on
     * request; the permission covers every thread of the process. */
    ready = syscall(SYS_arch_prctl, ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA) == 0;
}

static int amx_ready(void) {
    call_once(&ready_once, request_tiles);
    return ready;
}
#else
static int amx_ready(void) { return 0; }
#endif

int bf16_gemm_ready(void) { return amx_ready() || BF16_VEC_BUILT; }

const char *bf16_gemm_kernel(void) { return amx_ready() ? "amx" : BF16_VEC_BUILT ? "avx512_bf16" : "none"; }

static inline uint16_t bf16(float f) {
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    if ((u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((u >> 16) | 0x40); /* NaN stays NaN */
    u += 0x7fffu + ((u >> 16) & 1u); /* round to nearest, ties to even */
    return (uint16_t)(u >> 16);
}

#if BF16_VEC_BUILT
/* The interleaving of two rows of 16 bfloat16 (a in 0-15, b in 16-31) into 16 32-bit units
 * (a[i], b[i]): the pairs of inner indices that bf16_gemm reads as one. */
#define PAIR_MIX                                                                                        \
    _mm512_set_epi16(31, 15, 30, 14, 29, 13, 28, 12, 27, 11, 26, 10, 25, 9, 24, 8, 23, 7, 22, 6, 21, 5, 20, 4, \
                     19, 3, 18, 2, 17, 1, 16, 0)

/* Stores the 16 x 16 transpose of the 32-bit units in r[0..15]: row q (unit q of every r[p]) at
 * dst + q * ld, 32 bfloat16. Within 128-bit lanes first, then across lanes. */
static void transpose_units(__m512i r[16], uint16_t *dst, long ld) {
    __m512i t[16];
    for (int q = 0; q < 8; q++) {
        t[2 * q] = _mm512_unpacklo_epi32(r[2 * q], r[2 * q + 1]);
        t[2 * q + 1] = _mm512_unpackhi_epi32(r[2 * q], r[2 * q + 1]);
    }
    for (int g = 0; g < 4; g++) {
        r[4 * g] = _mm512_unpacklo_epi64(t[4 * g], t[4 * g + 2]);
        r[4 * g + 1] = _mm512_unpackhi_epi64(t[4 * g], t[4 * g + 2]);
        r[4 * g + 2] = _mm512_unpacklo_epi64(t[4 * g + 1], t[4 * g + 3]);
        r[4 * g + 3] = _mm512_unpackhi_epi64(t[4 * g + 1], t[4 * g + 3]);
    }
    /* r[4g + c], lane L, now holds unit 4L + c of r-rows 4g..4g+3: gather lane L of the four
     * groups into row 4L + c */
    for (int c = 0; c < 4; c++) {
        const __m512i v0 = _mm512_shuffle_i32x4(r[c], r[4 + c], 0x88);
        const __m512i v1 = _mm512_shuffle_i32x4(r[c], r[4 + c], 0xdd);
        const __m512i v2 = _mm512_shuffle_i32x4(r[8 + c], r[12 + c], 0x88);
        const __m512i v3 = _mm512_shuffle_i32x4(r[8 + c], r[12 + c], 0xdd);
        uint16_t *d = dst + (long)c * ld;
        _mm512_storeu_si512(d, _mm512_shuffle_i32x4(v0, v2, 0x88));
        _mm512_storeu_si512(d + 4 * ld, _mm512_shuffle_i32x4(v1, v3, 0x88));
        _mm512_storeu_si512(d + 8 * ld, _mm512_shuffle_i32x4(v0, v2, 0xdd));
        _mm512_storeu_si512(d + 12 * ld, _mm512_shuffle_i32x4(v1, v3, 0xdd));
    }
}
#endif

void bf16_matrix(const float *src, long si, long sj, int rows, int cols, uint16_t *dst, long ldd) {
    if (sj == 1) {
        for (int i = 0; i < rows; i++) {
            const float *s = src + i * si;
            uint16_t *d = dst + i * ldd;
            int j = 0;
#if BF16_VEC_BUILT
            for (; j + 16 <= cols; j += 16)
                _mm256_storeu_si256((__m256i *)(d + j), (__m256i)_mm512_cvtneps_pbh(_mm512_loadu_ps(s + j)));
#endif
            for (; j < cols; j++) d[j] = bf16(s[j]);
        }
        return;
    }
    int jv = 0; /* columns done by the vector path */
#if BF16_VEC_BUILT
    if (si == 1) {
        /* A transpose (dw's x^T): 32 source rows (dst columns) x 16 values at a time. Each pair of
         * source rows becomes 16 32-bit units (bf16 of row 2p, bf16 of row 2p + 1), as in
         * bf16_vnni; a 16 x 16 transpose of those units in registers gives 16 dst rows of 32. */
        const __m512i mix = PAIR_MIX;
        const int rows16 = rows / 16 * 16;
        for (; jv + 32 <= cols; jv += 32) {
            for (int i0 = 0; i0 < rows16; i0 += 16) {
                __m512i r[16];
                for (int p = 0; p < 16; p++) {
                    const float *r0 = src + (long)(jv + 2 * p) * sj + i0;
                    r[p] = _mm512_permutexvar_epi16(
                        mix, (__m512i)_mm512_cvtne2ps_pbh(_mm512_loadu_ps(r0 + sj), _mm512_loadu_ps(r0)));
                }
                transpose_units(r, dst + (long)i0 * ldd + jv, ldd);
            }
            for (int i = rows16; i < rows; i++)
                for (int j = jv; j < jv + 32; j++) dst[i * ldd + j] = bf16(src[i + j * sj]);
        }
    }
#endif
    /* other strides, and the columns left: 16 x 16 blocks, so both sides stay in a few cache lines */
    for (int i0 = 0; i0 < rows; i0 += 16)
        for (int j0 = jv; j0 < cols; j0 += 16) {
            const int i1 = i0 + 16 < rows ? i0 + 16 : rows, j1 = j0 + 16 < cols ? j0 + 16 : cols;
            for (int j = j0; j < j1; j++)
                for (int i = i0; i < i1; i++) dst[i * ldd + j] = bf16(src[i * si + j * sj]);
        }
}

void bf16_rows_vnni(const float *src, long ld, int rows, int cols, uint16_t *rows_dst, uint16_t *vnni_dst) {
    for (int p = 0; p < rows / 2; p++) {
        const float *r0 = src + 2L * p * ld, *r1 = r0 + ld;
        uint16_t *d0 = rows_dst ? rows_dst + 2L * p * cols : NULL, *d1 = d0 ? d0 + cols : NULL;
        uint16_t *dv = vnni_dst ? vnni_dst + 2L * p * cols : NULL;
        int j = 0;
#if BF16_VEC_BUILT
        /* two rows of 16 -> 32 bfloat16 (row 2p low, 2p + 1 high): as they are for the rows,
         * interleaved for VNNI */
        const __m512i mix = PAIR_MIX;
        for (; j + 16 <= cols; j += 16) {
            const __m512i v = (__m512i)_mm512_cvtne2ps_pbh(_mm512_loadu_ps(r1 + j), _mm512_loadu_ps(r0 + j));
            if (d0) {
                _mm256_storeu_si256((__m256i *)(d0 + j), _mm512_castsi512_si256(v));
                _mm256_storeu_si256((__m256i *)(d1 + j), _mm512_extracti64x4_epi64(v, 1));
            }
            if (dv) _mm512_storeu_si512(dv + 2 * j, _mm512_permutexvar_epi16(mix, v));
        }
#endif
        for (; j < cols; j++) {
            const uint16_t a = bf16(r0[j]), b = bf16(r1[j]);
            if (d0) d0[j] = a, d1[j] = b;
            if (dv) dv[2 * j] = a, dv[2 * j + 1] = b;
        }
    }
}

void bf16_vnni(const float *src, long si, long sj, int inner, int cols, uint16_t *dst) {
    if (sj == 1) {
        bf16_rows_vnni(src, si, inner, cols, NULL, dst);
        return;
    }
    int pv = 0; /* pairs done by the vector path */
#if BF16_VEC_BUILT
    if (si == 1) {
        /* pairs adjacent in memory (w^T, K^T of a head): 32 inner values of a column convert in
         * order into its 16 units, and a 16 x 16 transpose puts each unit in its pair's row */
        const int cols16 = cols / 16 * 16;
        for (; 2 * (pv + 16) <= inner; pv += 16) {
            for (int j0 = 0; j0 < cols16; j0 += 16) {
                __m512i r[16];
                for (int j = 0; j < 16; j++) {
                    const float *c = src + (long)(j0 + j) * sj + 2 * pv;
                    r[j] = (__m512i)_mm512_cvtne2ps_pbh(_mm512_loadu_ps(c + 16), _mm512_loadu_ps(c));
                }
                transpose_units(r, dst + 2L * pv * cols + 2 * j0, 2L * cols);
            }
            for (int p = pv; p < pv + 16; p++)
                for (int j = cols16; j < cols; j++) {
                    dst[2L * p * cols + 2 * j] = bf16(src[2 * p + j * sj]);
                    dst[2L * p * cols + 2 * j + 1] = bf16(src[2 * p + 1 + j * sj]);
                }
        }
    }
#endif
    for (int p = pv; p < inner / 2; p++) {
        const float *r0 = src + 2L * p * si, *r1 = r0 + si;
        uint16_t *d = dst + 2L * p * cols;
        for (int j = 0; j < cols; j++) {
            d[2 * j] = bf16(r0[j * sj]);
            d[2 * j + 1] = bf16(r1[j * sj]);
        }
    }
}

#if AMX_BUILT
typedef struct __attribute__((packed)) {
    uint8_t palette, start_row, reserved[14];
    uint16_t colsb[16];
    uint8_t rows[16];
} tile_config;

/* Tiles 0-3: a 32 x 32 float32 block of C; 4-5: two 16-row slices of A; 6-7: two 16-column
 * slices of B. All are full 16 x 64-byte tiles. */
static void configure_tiles(void) {
    tile_config cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.palette = 1;
    for (int t = 0; t < 8; t++) cfg.rows[t] = BF16_ROWS, cfg.colsb[t] = 64;
    _tile_loadconfig(&cfg);
}

/* Start accumulator tile t from C, from the bias (a stride-0 load repeats it in every row) or
 * from zero. */
#define TILE_START(t, c, bias_j)                                                                     \
    do {                                                                                             \
        if (a->accumulate)                                                                           \
            _tile_loadd(t, c, ldc_b);                                                                \
        else if (a->bias)                                                                            \
            _tile_loadd(t, bias_j, 0);                                                               \
        else                                                                                         \
            _tile_zero(t);                                                                           \
    } while (0)

static void amx_gemm(const bf16_gemm_args *a) {
    configure_tiles();
    const long lda_b = a->lda * 2, ldb_b = a->ldb * 2, ldc_b = a->ldc * 4;
    for (int i = 0; i < a->M; i += 2 * BF16_ROWS) {
        const int pair = a->M - i >= 2 * BF16_ROWS; /* two row tiles, or the last single one */
        for (int j = 0; j < a->N; j += BF16_COLS) {
            float *c = a->C + (long)i * a->ldc + j, *c2 = c + BF16_ROWS * a->ldc;
            const float *bias = a->bias ? a->bias + j : NULL;
            TILE_START(0, c, bias);
            TILE_START(1, c + 16, bias ? bias + 16 : NULL);
            if (pair) {
                TILE_START(2, c2, bias);
                TILE_START(3, c2 + 16, bias ? bias + 16 : NULL);
            }
            const uint16_t *A = a->A + (long)i * a->lda, *B = a->B + 2L * j;
            for (int k = 0; k < a->K; k += BF16_KSTEP) {
                _tile_loadd(4, A + k, lda_b);
                _tile_loadd(6, B + (long)(k / 2) * a->ldb, ldb_b);
                _tile_loadd(7, B + (long)(k / 2) * a->ldb + 32, ldb_b);
                _tile_dpbf16ps(0, 4, 6);
                _tile_dpbf16ps(1, 4, 7);
                if (pair) {
                    _tile_loadd(5, A + BF16_ROWS * a->lda + k, lda_b);
                    _tile_dpbf16ps(2, 5, 6);
                    _tile_dpbf16ps(3, 5, 7);
                }
            }
            _tile_stored(0, c, ldc_b);
            _tile_stored(1, c + 16, ldc_b);
            if (pair) {
                _tile_stored(2, c2, ldc_b);
                _tile_stored(3, c2 + 16, ldc_b);
            }
            if (a->accumulate && bias) /* rare: C += A B + bias; the tiles started from C */
                for (int r = 0; r < (pair ? 2 : 1) * BF16_ROWS; r++)
                    for (int q = 0; q < BF16_COLS; q++) c[(long)r * a->ldc + q] += bias[q];
        }
    }
    _tile_release(); /* leaves the tile state empty, so context switches need not save it */
}
#endif

#if BF16_VEC_BUILT
/* Rows of C in a register block of the vector kernel: 8 rows x 32 columns, 16 accumulators. */
#define VEC_ROWS 8

/* C[i..i+8, j..j+32] (+)= A B (+ bias): for each pair p of the inner dimension, one load of
 * B's 32 columns (two halves of 16 pairs) and a broadcast of each row's pair of A. */
static inline void vec_block(const bf16_gemm_args *a, int i, int j) {
    __m512 acc[VEC_ROWS][2];
    float *c = a->C + (long)i * a->ldc + j;
    const float *bias = a->bias ? a->bias + j : NULL;
    for (int r = 0; r < VEC_ROWS; r++)
        for (int h = 0; h < 2; h++)
            acc[r][h] = a->accumulate ? _mm512_loadu_ps(c + (long)r * a->ldc + 16 * h)
                        : bias        ? _mm512_loadu_ps(bias + 16 * h)
                                      : _mm512_setzero_ps();
    const uint16_t *A = a->A + (long)i * a->lda, *B = a->B + 2L * j;
    for (int p = 0; p < a->K / 2; p++) {
        const uint16_t *bp = B + (long)p * a->ldb;
        const __m512bh b0 = (__m512bh)_mm512_loadu_si512(bp), b1 = (__m512bh)_mm512_loadu_si512(bp + 32);
        for (int r = 0; r < VEC_ROWS; r++) {
            int32_t pair; /* a[i + r][2p], a[i + r][2p + 1] */
            memcpy(&pair, A + (long)r * a->lda + 2 * p, sizeof pair);
            const __m512bh ar = (__m512bh)_mm512_set1_epi32(pair);
            acc[r][0] = _mm512_dpbf16_ps(acc[r][0], ar, b0);
            acc[r][1] = _mm512_dpbf16_ps(acc[r][1], ar, b1);
        }
    }
    for (int r = 0; r < VEC_ROWS; r++)
        for (int h = 0; h < 2; h++) {
            __m512 v = acc[r][h];
            if (a->accumulate && bias) v = _mm512_add_ps(v, _mm512_loadu_ps(bias + 16 * h));
            _mm512_storeu_ps(c + (long)r * a->ldc + 16 * h, v);
        }
}

/* Row blocks outer: a block's 8 rows of A (at most 16 KiB for K up to 1,024) stay in L1 while
 * the columns of B stream from L2. M is whole tiles of 16 rows (bf16_gemm_args). */
void bf16_gemm_avx512(const bf16_gemm_args *a) {
    for (int i = 0; i < a->M; i += VEC_ROWS)
        for (int j = 0; j < a->N; j += BF16_COLS) vec_block(a, i, j);
}
#endif

void bf16_gemm(const bf16_gemm_args *a) {
#if AMX_BUILT
    if (amx_ready()) {
        amx_gemm(a);
        return;
    }
#endif
#if BF16_VEC_BUILT
    bf16_gemm_avx512(a);
#else
    (void)a;
#endif
}
