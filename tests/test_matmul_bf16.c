/* Matmul precision "medium" (bfloat16 operands, float32 sums on AMX or AVX512-BF16;
 * src/ops/bf16_gemm.c): the bfloat16 rounding, the operand layouts, each kernel built against a
 * double reference on the rounded operands, and matmul through the graph (forward, dx, dw)
 * against float32 within bfloat16's error bound, the same bits at 1 and 2 threads, and unchanged
 * float32 results where neither unit is there or a shape is not whole tiles. */
#include "ops/bf16_gemm.h"
#include "ops/ops.h"
#include "testutil.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static float *rand_buf(size_t n, mm_rng *rng) {
    float *x = malloc(n * sizeof(float));
    for (size_t i = 0; i < n; i++) x[i] = 2 * mm_rng_uniform(rng) - 1;
    return x;
}

static float from_bf16(uint16_t h) {
    uint32_t u = (uint32_t)h << 16;
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

static uint16_t to_bf16(float f) {
    uint16_t h;
    bf16_matrix(&f, 1, 1, 1, 1, &h, 1);
    return h;
}

/* Round to nearest, ties to even, on the vector path (16 at a time) and the scalar tail alike. */
static void rounding(void) {
    const float one = 1.0f, ulp = 1.0f / 128; /* bfloat16 spacing at 1 */
    CHECK(from_bf16(to_bf16(one + ulp / 2)) == one, "tie rounds to even (down)");
    CHECK(from_bf16(to_bf16(one + 3 * ulp / 2)) == one + 2 * ulp, "tie rounds to even (up)");
    CHECK(from_bf16(to_bf16(one + ulp * 0.51f)) == one + ulp, "above the tie rounds up");
    CHECK(from_bf16(to_bf16(-2.5f)) == -2.5f, "exact values stay");
    CHECK(isnan(from_bf16(to_bf16(NAN))), "NaN stays NaN");
    CHECK(isinf(from_bf16(to_bf16(INFINITY))), "inf stays inf");
    /* 37 columns: two vector blocks and a scalar tail must agree with the one-value path */
    mm_rng rng = {5};
    float *src = rand_buf(2 * 37, &rng);
    uint16_t row[2 * 37];
    bf16_matrix(src, 37, 1, 2, 37, row, 37);
    int bad = 0;
    for (int i = 0; i < 2 * 37; i++) bad += row[i] != to_bf16(src[i]);
    CHECK(bad == 0, "row conversion: %d values differ from the scalar rounding", bad);
    /* VNNI order: pairs of rows side by side, from a row-major and a transposed source */
    uint16_t v1[2 * 37], v2[2 * 37];
    float *tr = malloc(2 * 37 * sizeof(float));
    for (int i = 0; i < 2; i++)
        for (int j = 0; j < 37; j++) tr[j * 2 + i] = src[i * 37 + j];
    bf16_vnni(src, 37, 1, 2, 37, v1);
    bf16_vnni(tr, 1, 2, 2, 37, v2);
    bad = 0;
    for (int j = 0; j < 37; j++)
        for (int e = 0; e < 2; e++) bad += v1[2 * j + e] != row[e * 37 + j] || v2[2 * j + e] != row[e * 37 + j];
    CHECK(bad == 0, "VNNI order: %d values misplaced", bad);
    free(src), free(tr);
    /* a transpose (si = 1) of 75 x 37: vector blocks of 32 x 16 plus every kind of edge */
    const int R = 37, Cc = 75;
    float *t = rand_buf((size_t)R * Cc, &rng);
    uint16_t *d = malloc((size_t)R * (Cc + 5) * 2);
    bf16_matrix(t, 1, R, R, Cc, d, Cc + 5);
    bad = 0;
    for (int i = 0; i < R; i++)
        for (int j = 0; j < Cc; j++) bad += d[i * (Cc + 5) + j] != to_bf16(t[j * R + i]);
    CHECK(bad == 0, "transposed conversion: %d values differ", bad);
    /* VNNI order from a transposed source (si = 1: pairs adjacent, as w^T and K^T): inner 70 x
     * 37 columns, vector blocks of 32 x 16 plus edges on both sides */
    const int I = 70, J = 37;
    uint16_t *vn = malloc((size_t)I * J * 2);
    bf16_vnni(t, 1, I + 3, I, J, vn); /* element (i, j) = t[i + j * (I + 3)] */
    bad = 0;
    for (int i = 0; i < I; i++)
        for (int j = 0; j < J; j++) bad += vn[(i / 2) * 2 * J + 2 * j + i % 2] != to_bf16(t[i + j * (I + 3)]);
    CHECK(bad == 0, "VNNI order from a transposed source: %d values misplaced", bad);
    free(t), free(d), free(vn);
}

/* One bf16_gemm call against double sums of the rounded operands: only float32 summation
 * order differs, so the error stays near float32's. */
static void kernel_case(void (*gemm)(const bf16_gemm_args *), int M, int N, int K, int accumulate, int with_bias,
                        mm_rng *rng) {
    const long lda = K + 32, ldc = N + 3;
    float *A = rand_buf((size_t)M * K, rng), *B = rand_buf((size_t)K * N, rng), *bias = rand_buf(N, rng);
    float *C = rand_buf((size_t)M * ldc, rng), *C0 = malloc((size_t)M * ldc * sizeof(float));
    memcpy(C0, C, (size_t)M * ldc * sizeof(float));
    uint16_t *Ab = malloc((size_t)M * lda * 2), *Bv = malloc((size_t)K * N * 2);
    bf16_matrix(A, K, 1, M, K, Ab, lda);
    bf16_vnni(B, N, 1, K, N, Bv);
    gemm(&(bf16_gemm_args){.M = M, .N = N, .K = K, .A = Ab, .lda = lda, .B = Bv, .ldb = 2L * N, .C = C, .ldc = ldc,
                         .accumulate = accumulate, .bias = with_bias ? bias : NULL});
    double worst = 0;
    int outside = 0;
    for (int i = 0; i < M; i++)
        for (int j = 0; j < ldc; j++) {
            const size_t at = (size_t)i * ldc + j;
            if (j >= N) {
                outside += C[at] != C0[at];
                continue;
            }
            double s = (accumulate ? C0[at] : 0) + (with_bias ? bias[j] : 0), mag = fabs(s);
            for (int k = 0; k < K; k++) {
                const double p = (double)from_bf16(Ab[(size_t)i * lda + k]) * from_bf16(to_bf16(B[(size_t)k * N + j]));
                s += p, mag += fabs(p);
            }
            const double e = fabs(C[at] - s) / (mag + 1e-30);
            if (e > worst) worst = e;
        }
    CHECK(worst <= 1e-6, "bf16_gemm %dx%dx%d acc %d bias %d: error %.3g of the sum of |terms|", M, N, K, accumulate,
          with_bias, worst);
    CHECK(outside == 0, "bf16_gemm %dx%dx%d wrote %d values outside C", M, N, K, outside);
    free(A), free(B), free(bias), free(C), free(C0), free(Ab), free(Bv);
}

static void kernel(void) {
    if (!bf16_gemm_ready()) {
        CHECK(!mm_bf16_matmul_available(), "the public check agrees with the kernel's");
        return;
    }
    CHECK(mm_bf16_matmul_available(), "the public check agrees with the kernel's");
    CHECK(!strcmp(bf16_gemm_kernel(), "amx") || !strcmp(bf16_gemm_kernel(), "avx512_bf16"), "kernel %s",
          bf16_gemm_kernel());
    printf("bf16_gemm kernel: %s\n", bf16_gemm_kernel());
    /* the kernel bf16_gemm picks, and the AVX512-BF16 one also where AMX is picked */
    void (*kernels[2])(const bf16_gemm_args *) = {bf16_gemm, NULL};
#if BF16_VEC_BUILT
    if (strcmp(bf16_gemm_kernel(), "avx512_bf16")) kernels[1] = bf16_gemm_avx512;
#endif
    for (int k = 0; k < 2 && kernels[k]; k++) {
        mm_rng rng = {11};
        const int Ms[] = {16, 32, 48, 96}, Ns[] = {32, 64, 96}, Ks[] = {32, 128, 512};
        for (int a = 0; a < 4; a++)
            for (int b = 0; b < 3; b++)
                for (int c = 0; c < 3; c++)
                    kernel_case(kernels[k], Ms[a], Ns[b], Ks[c], (a + b + c) % 2, (a + c) % 3 == 0, &rng);
        kernel_case(kernels[k], 64, 64, 64, 1, 1, &rng); /* C += A B + bias */
    }
}

typedef struct {
    float *y, *dx, *dw, *db;
} run_out;

/* y = x w + b, then backward with dy = gy, at the given precision and thread count. */
static run_out run_matmul(const char *precision, int threads, int M, int K, int N, const float *x, const float *w,
                          const float *b, const float *gy) {
    run_out o = {malloc((size_t)M * N * sizeof(float)), calloc((size_t)M * K, sizeof(float)),
                 calloc((size_t)K * N, sizeof(float)), calloc(N, sizeof(float))};
    CHECK_OK(mm_set_matmul_precision(precision));
    const int keep = mm_get_threads();
    mm_set_threads(threads); /* the plan takes the thread count */
    mm_graph *g = mm_graph_new();
    const int xs[2] = {M, K}, ws[2] = {K, N}, bs[1] = {N};
    mm_node *xn = mm_graph_param(g, "x", 2, xs, (float *)x, o.dx, 1);
    mm_node *wn = mm_graph_param(g, "w", 2, ws, (float *)w, o.dw, 1);
    mm_node *bn = mm_graph_param(g, "b", 1, bs, (float *)b, o.db, 1);
    mm_node *y = mm_g_matmul(g, xn, wn, bn);
    g->external_seed = 1;
    CHECK_OK(mm_graph_plan(g, y, 1));
    mm_graph_forward(g);
    memcpy(o.y, y->value, (size_t)M * N * sizeof(float));
    memcpy(y->grad, gy, (size_t)M * N * sizeof(float));
    mm_graph_backward(g);
    mm_graph_free(g);
    mm_set_threads(keep);
    CHECK_OK(mm_set_matmul_precision("highest"));
    return o;
}

static void free_out(run_out o) { free(o.y), free(o.dx), free(o.dw), free(o.db); }

/* |got - exact| <= 2^-7 sum |a_k b_k| + 1e-6 (each product of two values rounded to 8
 * significant bits is within 2^-8 + 2^-8 + 2^-16 of the exact one, relatively). */
static double bound_ratio(const float *got, size_t rows, size_t cols, const float *a, long sai, long sak,
                          const float *b, long sbk, long sbj, size_t inner, const float *add) {
    double worst = 0;
    for (size_t i = 0; i < rows; i++)
        for (size_t j = 0; j < cols; j++) {
            double s = add ? add[j] : 0, mag = 0;
            for (size_t k = 0; k < inner; k++) {
                const double p = (double)a[i * sai + k * sak] * b[k * sbk + j * sbj];
                s += p, mag += fabs(p);
            }
            const double r = fabs(got[i * cols + j] - s) / (mag / 128 + 1e-6);
            if (r > worst) worst = r;
        }
    return worst;
}

static int same(const float *a, const float *b, size_t n) { return memcmp(a, b, n * sizeof(float)) == 0; }

static void graph_case(int M, int K, int N) {
    mm_rng rng = {(uint64_t)(M * 31 + K * 7 + N)};
    float *x = rand_buf((size_t)M * K, &rng), *w = rand_buf((size_t)K * N, &rng), *b = rand_buf(N, &rng);
    float *gy = rand_buf((size_t)M * N, &rng);
    run_out hi = run_matmul("highest", 1, M, K, N, x, w, b, gy);
    run_out md1 = run_matmul("medium", 1, M, K, N, x, w, b, gy);
    run_out md2 = run_matmul("medium", 2, M, K, N, x, w, b, gy);
    const int whole = M % 32 == 0 && K % 32 == 0 && N % 32 == 0, bf = bf16_gemm_ready() && whole;
    double ry = bound_ratio(md1.y, M, N, x, K, 1, w, N, 1, K, b);
    double rdx = bound_ratio(md1.dx, M, K, gy, N, 1, w, 1, N, N, NULL);
    double rdw = bound_ratio(md1.dw, K, N, x, 1, K, gy, N, 1, M, NULL);
    CHECK(ry <= 1 && rdx <= 1 && rdw <= 1, "medium %dx%dx%d: error / bfloat16 bound: y %.3g, dx %.3g, dw %.3g", M, K, N,
          ry, rdx, rdw);
    CHECK(same(md1.y, md2.y, (size_t)M * N) && same(md1.dx, md2.dx, (size_t)M * K) &&
              same(md1.dw, md2.dw, (size_t)K * N) && same(md1.db, md2.db, N),
          "medium %dx%dx%d: 1 and 2 threads differ", M, K, N);
    CHECK(same(md1.db, hi.db, N), "medium %dx%dx%d: db (no matmul) changed", M, K, N);
    /* float32 dw to float32 accuracy, whichever way the rows of M were split and summed */
    double rdw32 = bound_ratio(hi.dw, K, N, x, 1, K, gy, N, 1, M, NULL) / 128 / 1e-5;
    CHECK(rdw32 <= 1, "%dx%dx%d: float32 dw error / (1e-5 sum |x dy|) %.3g", M, K, N, rdw32);
    for (int j = 0; j < N; j++) { /* db = column sums of gy, however the backward summed them */
        double s = 0, mag = 0;
        for (int i = 0; i < M; i++) s += gy[(size_t)i * N + j], mag += fabs(gy[(size_t)i * N + j]);
        CHECK(fabs(hi.db[j] - s) <= 1e-6 * mag + 1e-7, "%dx%dx%d: db[%d] %.8g, column sum %.8g", M, K, N, j,
              hi.db[j], s);
    }
    if (bf) /* the bfloat16 path did run: float32 would agree to ~1e-6, rounding changes far more */
        CHECK(!same(md1.y, hi.y, (size_t)M * N) && !same(md1.dx, hi.dx, (size_t)M * K) &&
                  !same(md1.dw, hi.dw, (size_t)K * N),
              "medium %dx%dx%d: results identical to float32, so the bfloat16 kernel did not run", M, K, N);
    else
        CHECK(same(md1.y, hi.y, (size_t)M * N) && same(md1.dx, hi.dx, (size_t)M * K) &&
                  same(md1.dw, hi.dw, (size_t)K * N),
              "medium %dx%dx%d without a bfloat16 unit or whole tiles: must stay float32 bit for bit", M, K, N);
    free_out(hi), free_out(md1), free_out(md2);
    free(x), free(w), free(b), free(gy);
}

/* A graph planned for a capacity whose rows are not whole tiles (5 x 8 = 40) and run at a batch
 * whose rows are (4 x 8 = 32): the plan reserved no bfloat16 copies, so medium must stay float32
 * (and must not write past its buffers). */
static void batch_below_capacity(void) {
    const int cap = 5, batch = 4, T = 8, K = 64, N = 64;
    mm_rng rng = {21};
    float *w = rand_buf((size_t)K * N, &rng), *x = rand_buf((size_t)batch * T * K, &rng);
    float *gy = rand_buf((size_t)batch * T * N, &rng);
    float *y[2], *dw[2];
    for (int r = 0; r < 2; r++) {
        y[r] = malloc((size_t)batch * T * N * sizeof(float));
        dw[r] = calloc((size_t)K * N, sizeof(float));
        CHECK_OK(mm_set_matmul_precision(r ? "medium" : "highest"));
        mm_graph *g = mm_graph_new();
        mm_node *xi = mm_graph_input(g, "x", 3, (int[]){cap, T, K}, 1);
        mm_node *wn = mm_graph_param(g, "w", 2, (int[]){K, N}, w, dw[r], 1);
        mm_node *yn = mm_g_matmul(g, xi, wn, NULL);
        g->external_seed = 1;
        CHECK_OK(mm_graph_plan(g, yn, 1));
        mm_graph_set_batch(g, batch);
        memcpy(xi->value, x, (size_t)batch * T * K * sizeof(float));
        mm_graph_forward(g);
        memcpy(y[r], yn->value, (size_t)batch * T * N * sizeof(float));
        memcpy(yn->grad, gy, (size_t)batch * T * N * sizeof(float));
        mm_graph_backward(g);
        mm_graph_free(g);
    }
    CHECK_OK(mm_set_matmul_precision("highest"));
    CHECK(same(y[0], y[1], (size_t)batch * T * N) && same(dw[0], dw[1], (size_t)K * N),
          "batch of whole tiles under a capacity that is not: must stay float32 bit for bit");
    for (int r = 0; r < 2; r++) free(y[r]), free(dw[r]);
    free(w), free(x), free(gy);
}

static void setting(void) {
    CHECK(!strcmp(mm_get_matmul_precision(), "highest"), "default precision is highest");
    CHECK(mm_set_matmul_precision("fast") == MM_ERR_ARG && tu_contains(mm_errmsg(), "highest or medium"),
          "an unknown precision is an MM_ERR_ARG naming the choices: %s", mm_errmsg());
    CHECK(mm_set_matmul_precision(NULL) == MM_ERR_ARG, "NULL precision is an error");
    CHECK_OK(mm_set_matmul_precision("medium"));
    CHECK(!strcmp(mm_get_matmul_precision(), "medium"), "medium is kept");
    CHECK_OK(mm_set_matmul_precision("highest"));
}

int main(void) {
    setting();
    rounding();
    kernel();
    graph_case(256, 128, 96);  /* threads split the rows; dw by rows */
    graph_case(128, 64, 512);  /* dw split by columns */
    graph_case(1056, 512, 64); /* dw sums chunks of 512, 512 and 32 rows of M */
    graph_case(2112, 128, 64); /* dw splits M in parts of 1024, 1024 and 64 rows, added in order */
    graph_case(100, 128, 96);  /* rows not whole tiles: float32 */
    graph_case(256, 128, 65);  /* columns not whole tiles: float32 */
    batch_below_capacity();
    return tu_finish();
}
