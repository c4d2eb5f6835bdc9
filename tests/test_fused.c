/* The fused conv2d(+relu)+maxpool op against the unfused ops it replaces (forward and every
 * gradient, bit for bit or to float rounding), plus finite-difference checks, across the
 * code paths: 2x2 register kernel (F % 16 == 0), generic pooling, GEMM-sized patches, input
 * gradients, 3x3 pools, and relu on or off. */
#include "testutil.h"
#include "ops/ops.h"

#include <stdlib.h>
#include <string.h>

typedef struct cfg {
    int n, h, w, c, kh, kw, f, pool, relu, x_grad;
} cfg;

static const cfg *cur;

static mm_node *build_fused(mm_graph *g, mm_node **p, void *ctx) {
    (void)ctx;
    return mm_g_conv2d_maxpool(g, p[0], p[1], p[2], 1, 1, 0, cur->relu, cur->pool, cur->pool);
}

static mm_node *build_plain(mm_graph *g, mm_node **p, void *ctx) {
    (void)ctx;
    mm_node *c = cur->relu ? mm_g_conv2d_relu(g, p[0], p[1], p[2], 1, 1, 0) : mm_g_conv2d(g, p[0], p[1], p[2], 1, 1, 0);
    return mm_g_maxpool2d(g, c, cur->pool, cur->pool, cur->pool, cur->pool, 0);
}

/* Runs one graph on fixed inputs; returns output and gradients (caller frees). */
static void run(mm_node *(*build)(mm_graph *, mm_node **, void *), const float *const *in, const size_t *sz,
                const int (*shapes)[4], const int *nd, float **out, size_t *out_n, float **grads, const float *gy) {
    mm_graph *g = mm_graph_new();
    mm_node *p[3];
    for (int i = 0; i < 3; i++) {
        grads[i] = calloc(sz[i], sizeof(float));
        int trainable = i > 0 || cur->x_grad;
        p[i] = mm_graph_param(g, i == 0 ? "x" : i == 1 ? "w" : "b", nd[i], shapes[i], (float *)in[i],
                              trainable ? grads[i] : NULL, trainable);
    }
    mm_node *y = build(g, p, NULL);
    CHECK(y != NULL, "build: %s", mm_errmsg());
    if (!y) {
        mm_graph_free(g);
        return;
    }
    g->external_seed = 1;
    CHECK_OK(mm_graph_plan(g, y, 1));
    g->training = 1;
    mm_graph_forward(g);
    *out_n = y->size;
    *out = malloc(y->size * sizeof(float));
    memcpy(*out, y->value, y->size * sizeof(float));
    memcpy(y->grad, gy, y->size * sizeof(float));
    mm_graph_backward(g);
    mm_graph_free(g);
}

static double max_rel(const float *a, const float *b, size_t n) {
    double scale = 1, err = 0;
    for (size_t i = 0; i < n; i++) scale = fmax(scale, fabs(b[i]));
    for (size_t i = 0; i < n; i++) err = fmax(err, fabs((double)a[i] - b[i]));
    return err / scale;
}

static void check_cfg(const cfg *c, const char *name) {
    cur = c;
    int shapes[3][4] = {{c->n, c->h, c->w, c->c}, {c->kh, c->kw, c->c, c->f}, {c->f}};
    int nd[3] = {4, 4, 1};
    size_t sz[3];
    float *in[3];
    mm_rng rng = {42};
    for (int i = 0; i < 3; i++) {
        sz[i] = mm_shape_size(nd[i], shapes[i]);
        in[i] = malloc(sz[i] * sizeof(float));
        for (size_t k = 0; k < sz[i]; k++) in[i][k] = 2 * mm_rng_uniform(&rng) - 1;
    }
    int oh = (c->h - c->kh + 1) / c->pool, ow = (c->w - c->kw + 1) / c->pool;
    size_t ny = (size_t)c->n * oh * ow * c->f;
    float *gy = malloc(ny * sizeof(float));
    for (size_t k = 0; k < ny; k++) gy[k] = 2 * mm_rng_uniform(&rng) - 1;
    float *ya = NULL, *yb = NULL, *ga[3] = {0}, *gb[3] = {0};
    size_t na = 0, nb = 0;
    run(build_fused, (const float *const *)in, sz, (const int(*)[4])shapes, nd, &ya, &na, ga, gy);
    run(build_plain, (const float *const *)in, sz, (const int(*)[4])shapes, nd, &yb, &nb, gb, gy);
    CHECK(na == ny && nb == ny, "%s: output sizes %zu %zu, expected %zu", name, na, nb, ny);
    if (na == ny && nb == ny) {
        double e = max_rel(ya, yb, ny);
        CHECK(e == 0, "%s: fused forward differs from conv+pool by %g", name, e);
        for (int i = c->x_grad ? 0 : 1; i < 3; i++) {
            e = max_rel(ga[i], gb[i], sz[i]);
            CHECK(e < 1e-5, "%s: gradient %d differs by %g", name, i, e);
        }
    }
    /* finite differences on the fused op itself */
    tu_param_spec specs[3] = {{4, {c->n, c->h, c->w, c->c}, .init = in[0], .no_grad = !c->x_grad},
                              {4, {c->kh, c->kw, c->c, c->f}, .init = in[1]},
                              {1, {c->f}, .init = in[2]}};
    tu_gradcheck(name, 3, specs, build_fused, NULL, 2e-2);
    printf("%-28s ok\n", name);
    for (int i = 0; i < 3; i++) free(in[i]), free(ga[i]), free(gb[i]);
    free(ya), free(yb), free(gy);
}

int main(void) {
    const cfg cases[] = {
        {2, 8, 8, 1, 3, 3, 32, 2, 1, 0},  /* 2x2 register kernels, first-layer shape */
        {2, 9, 7, 1, 3, 3, 16, 2, 0, 0},  /* odd conv output (unused last row/col), no relu */
        {2, 8, 8, 2, 3, 3, 12, 2, 1, 0},  /* F not a multiple of 8: generic pooling */
        {2, 8, 8, 3, 3, 3, 16, 2, 1, 1},  /* input gradient needed: generic backward */
        {1, 10, 10, 8, 3, 3, 16, 3, 1, 1}, /* K = 72 > direct limit: GEMM path, 3x3 pool */
    };
    const char *names[] = {"conv_pool_2x2_f32", "conv_pool_odd_linear", "conv_pool_f12", "conv_pool_xgrad",
                           "conv_pool_gemm_3x3"};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) check_cfg(&cases[i], names[i]);
    mm_graph *g = mm_graph_new();
    int xs[4] = {1, 4, 4, 1}, ws[4] = {3, 3, 1, 4};
    float xv[16] = {0}, wv[36] = {0};
    mm_node *x = mm_graph_param(g, "x", 4, xs, xv, NULL, 0), *w = mm_graph_param(g, "w", 4, ws, wv, NULL, 0);
    CHECK(mm_g_conv2d_maxpool(g, x, w, NULL, 1, 1, 0, 1, 3, 3) == NULL && tu_contains(mm_errmsg(), "does not fit"),
          "pool larger than conv output accepted: %s", mm_errmsg());
    mm_graph_free(g);
    return tu_finish();
}
