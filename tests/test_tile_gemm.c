/* The register-tiled GEMM (src/ops/tile_gemm.c) against a double-precision reference: full and
 * edge tiles, A read plain and transposed through strides, alpha, accumulate, bias, the three
 * causal limits, and results that do not depend on how the rows are split between calls
 * (which is how threads split them). Also matmul's tiled paths at 1 and 2 threads, bitwise. */
#include "ops/ops.h"
#include "ops/tile_gemm.h"
#include "testutil.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define SENTINEL 12345.0f

static float *rand_buf(size_t n, mm_rng *rng) {
    float *x = malloc(n * sizeof(float));
    for (size_t i = 0; i < n; i++) x[i] = 2 * mm_rng_uniform(rng) - 1;
    return x;
}

/* Reference of one tg_args call on the C it starts from: returns the max error relative to
 * max(1, |want|) over written entries, and counts entries written where they must not be. */
static double check_call(const tg_args *a, const float *c_before, const float *c_after, int *bad_writes) {
    double worst = 0;
    *bad_writes = 0;
    for (int i = 0; i < a->M; i++) {
        const int t0 = i - i % TG_MR, d = t0 + a->diag;
        const int ncol = tg_cols(i, a->N, a->diag, a->limit);
        int k0 = 0, k1 = a->K;
        if (a->limit == TG_KEND && d + TG_MR < k1) k1 = d + TG_MR;
        if (a->limit == TG_KSTART && d > 0) k0 = d < k1 ? d : k1;
        for (int j = 0; j < a->N; j++) {
            const size_t at = (size_t)i * a->ldc + j;
            if (j >= ncol) {
                if (c_after[at] != c_before[at]) ++*bad_writes;
                continue;
            }
            double sum = 0;
            for (int k = k0; k < k1; k++) sum += (double)a->A[i * a->sai + k * a->sak] * a->B[(size_t)k * a->ldb + j];
            double want = a->alpha * sum + (a->accumulate ? c_before[at] : 0) + (a->bias ? a->bias[j] : 0);
            double err = fabs(c_after[at] - want) / fmax(1.0, fabs(want));
            if (!(err <= worst)) worst = err;
        }
    }
    return worst;
}

static void case_run(int M, int N, int K, int transposed, int accumulate, float alpha, int with_bias, int limit,
                     int diag, mm_rng *rng) {
    float *A = rand_buf((size_t)M * K, rng), *B = rand_buf((size_t)K * (N + 3), rng);
    float *bias = with_bias ? rand_buf((size_t)N, rng) : NULL;
    const long ldc = N + 5;
    float *C = malloc((size_t)M * ldc * sizeof(float)), *C0 = malloc((size_t)M * ldc * sizeof(float));
    for (size_t i = 0; i < (size_t)M * ldc; i++) C0[i] = accumulate ? 2 * mm_rng_uniform(rng) - 1 : SENTINEL;
    memcpy(C, C0, (size_t)M * ldc * sizeof(float));
    tg_args a = {.M = M, .N = N, .K = K, .alpha = alpha, .A = A, .sai = transposed ? 1 : K,
                 .sak = transposed ? M : 1, .B = B, .ldb = N + 3, .C = C, .ldc = ldc, .accumulate = accumulate,
                 .bias = bias, .limit = limit, .diag = diag};
    tg_gemm(&a);
    int bad = 0;
    double err = check_call(&a, C0, C, &bad);
    CHECK(err <= 1e-5 && bad == 0, "tg_gemm M=%d N=%d K=%d transposed=%d acc=%d alpha=%g bias=%d limit=%d diag=%d: "
          "max error %.3g, %d writes outside the limit", M, N, K, transposed, accumulate, (double)alpha, with_bias,
          limit, diag, err, bad);
    /* the same product with the rows split at an arbitrary point gives the same bits */
    if (M > 3 && limit == TG_FULL) {
        float *C2 = malloc((size_t)M * ldc * sizeof(float));
        memcpy(C2, C0, (size_t)M * ldc * sizeof(float));
        const int cut = M / 3 + 1;
        tg_args top = a, rest = a;
        top.M = cut, top.C = C2;
        rest.M = M - cut, rest.A = A + (size_t)cut * a.sai, rest.C = C2 + (size_t)cut * ldc;
        tg_gemm(&top);
        tg_gemm(&rest);
        CHECK(memcmp(C, C2, (size_t)M * ldc * sizeof(float)) == 0,
              "tg_gemm M=%d N=%d K=%d: rows split at %d differ from one call", M, N, K, cut);
        free(C2);
    }
    free(A), free(B), free(bias), free(C), free(C0);
}

static void shapes(void) {
    mm_rng rng = {7};
    const int Ms[] = {1, 5, TG_MR, TG_MR + 3, 64, 70}, Ns[] = {1, 7, TG_NR, TG_NR + 5, 2 * TG_NR, 100},
              Ks[] = {1, 3, 32, 129};
    for (size_t m = 0; m < sizeof Ms / sizeof *Ms; m++)
        for (size_t n = 0; n < sizeof Ns / sizeof *Ns; n++)
            for (size_t k = 0; k < sizeof Ks / sizeof *Ks; k++)
                for (int tr = 0; tr < 2; tr++) {
                    const int v = (int)(m + n + k) + tr;
                    case_run(Ms[m], Ns[n], Ks[k], tr, v % 2, v % 3 ? 1.0f : 0.5f, v % 4 == 1, TG_FULL, 0, &rng);
                }
}

/* The causal limits as attention uses them: a block of queries starting at r0 against keys
 * [0, r0 + rows). */
static void limits(void) {
    mm_rng rng = {11};
    const int r0s[] = {0, 64, 8, 3};
    for (size_t i = 0; i < sizeof r0s / sizeof *r0s; i++) {
        const int r0 = r0s[i], R = 61, nk = r0 + R, hd = 32;
        case_run(R, nk, hd, 0, 0, 0.125f, 0, TG_COLS, r0, &rng);   /* S = scale * Q K^T */
        case_run(R, hd, nk, 0, 0, 1.0f, 0, TG_KEND, r0, &rng);     /* O = P V */
        case_run(nk, hd, R, 1, 1, 1.0f, 0, TG_KSTART, -r0, &rng);  /* dv += P^T dO */
    }
}

/* matmul through the graph at 1 and 2 threads: the same bits (the tiled paths split rows and
 * dw blocks differently with the thread count). */
static void matmul_threads(void) {
    const int M = 400, K = 128, N = 96; /* over the 8 MFLOP at which matmul uses threads */
    mm_rng rng = {3};
    float *x = rand_buf((size_t)M * K, &rng), *w = rand_buf((size_t)K * N, &rng), *b = rand_buf(N, &rng);
    float *gy = rand_buf((size_t)M * N, &rng);
    float *out[2], *dx[2], *dw[2], *db[2];
    for (int t = 0; t < 2; t++) {
        out[t] = malloc((size_t)M * N * sizeof(float));
        dx[t] = calloc((size_t)M * K, sizeof(float));
        dw[t] = calloc((size_t)K * N, sizeof(float));
        db[t] = calloc(N, sizeof(float));
        const int keep = mm_get_threads();
        mm_set_threads(t + 1); /* the plan takes the thread count */
        mm_graph *g = mm_graph_new();
        const int xs[2] = {M, K}, ws[2] = {K, N}, bs[1] = {N};
        mm_node *xn = mm_graph_param(g, "x", 2, xs, x, dx[t], 1);
        mm_node *wn = mm_graph_param(g, "w", 2, ws, w, dw[t], 1);
        mm_node *bn = mm_graph_param(g, "b", 1, bs, b, db[t], 1);
        mm_node *y = mm_g_matmul(g, xn, wn, bn);
        g->external_seed = 1;
        CHECK_OK(mm_graph_plan(g, y, 1));
        mm_graph_forward(g);
        memcpy(out[t], y->value, (size_t)M * N * sizeof(float));
        memcpy(y->grad, gy, (size_t)M * N * sizeof(float));
        mm_graph_backward(g);
        mm_graph_free(g);
        mm_set_threads(keep);
    }
    CHECK(memcmp(out[0], out[1], (size_t)M * N * sizeof(float)) == 0, "matmul forward differs between 1 and 2 threads");
    CHECK(memcmp(dx[0], dx[1], (size_t)M * K * sizeof(float)) == 0, "matmul dx differs between 1 and 2 threads");
    CHECK(memcmp(dw[0], dw[1], (size_t)K * N * sizeof(float)) == 0, "matmul dw differs between 1 and 2 threads");
    /* and against a double reference */
    double worst = 0;
    for (int i = 0; i < M; i++)
        for (int j = 0; j < N; j++) {
            double s = b[j];
            for (int k = 0; k < K; k++) s += (double)x[i * K + k] * w[k * N + j];
            double e = fabs(out[0][i * N + j] - s) / fmax(1.0, fabs(s));
            if (e > worst) worst = e;
        }
    for (int k = 0; k < K; k++)
        for (int j = 0; j < N; j++) {
            double s = 0;
            for (int i = 0; i < M; i++) s += (double)x[i * K + k] * gy[i * N + j];
            double e = fabs(dw[0][k * N + j] - s) / fmax(1.0, fabs(s));
            if (e > worst) worst = e;
        }
    CHECK(worst <= 1e-5, "matmul tiled paths: max error %.3g against double", worst);
    for (int t = 0; t < 2; t++) free(out[t]), free(dx[t]), free(dw[t]), free(db[t]);
    free(x), free(w), free(b), free(gy);
}

int main(void) {
    shapes();
    limits();
    matmul_threads();
    return tu_finish();
}
