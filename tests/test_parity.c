/* PyTorch parity: every graph op (and two small whole networks, and the optimizers) against
 * reference values computed by PyTorch in float64, read from tests/fixtures/parity.safetensors.
 * Regenerate the fixture with `/usr/bin/python3 scripts/gen_parity_fixtures.py` (see the
 * script's header for the tensor naming: NAME.inK, NAME.gy, NAME.y, NAME.ginK, NAME.afterK).
 *
 * Each case builds its op with the fixture's inputs as params (a grad buffer exactly for the
 * inputs that have a NAME.ginK), seeds the output's grad with NAME.gy, runs forward and
 * backward and compares y, every gradient and any after-forward input state with
 * max|got - want| / max(1, max|want|) <= 1e-4. */
#include "ops/ops.h"
#include "optim/optim.h"
#include "testutil.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#define TOL 1e-4

static mm_st_file fx;
#define fget(...) tu_fixture(&fx, __VA_ARGS__)
#define rel_err tu_rel_err

/* ------------------------------------------------------------------ builders */

typedef struct pcase pcase;
typedef mm_node *(*pbuild)(mm_graph *g, mm_node **in, int n, const pcase *c);

struct pcase {
    const char *name;
    int n_in;
    pbuild fn;
    int training;
    int i[6];
    float f[2];
    const char *s;
};

static mm_node *b_matmul(mm_graph *g, mm_node **p, int n, const pcase *c) {
    (void)c;
    return mm_g_matmul(g, p[0], p[1], n > 2 ? p[2] : NULL);
}
static mm_node *b_add(mm_graph *g, mm_node **p, int n, const pcase *c) { (void)n, (void)c; return mm_g_add(g, p[0], p[1]); }
static mm_node *b_sub(mm_graph *g, mm_node **p, int n, const pcase *c) { (void)n, (void)c; return mm_g_sub(g, p[0], p[1]); }
static mm_node *b_mul(mm_graph *g, mm_node **p, int n, const pcase *c) { (void)n, (void)c; return mm_g_mul(g, p[0], p[1]); }
static mm_node *b_div(mm_graph *g, mm_node **p, int n, const pcase *c) { (void)n, (void)c; return mm_g_div(g, p[0], p[1]); }
static mm_node *b_dot(mm_graph *g, mm_node **p, int n, const pcase *c) { (void)n, (void)c; return mm_g_dot(g, p[0], p[1]); }

static mm_node *b_act(mm_graph *g, mm_node **p, int n, const pcase *c) {
    (void)n;
    return mm_g_activation(g, p[0], c->s, c->f[0]);
}

/* i: stride, same, fused relu */
static mm_node *b_conv(mm_graph *g, mm_node **p, int n, const pcase *c) {
    mm_node *b = n > 2 ? p[2] : NULL;
    return c->i[2] ? mm_g_conv2d_relu(g, p[0], p[1], b, c->i[0], c->i[0], c->i[1])
                   : mm_g_conv2d(g, p[0], p[1], b, c->i[0], c->i[0], c->i[1]);
}

/* i: pool, stride, same; s: "max" or "avg" */
static mm_node *b_pool(mm_graph *g, mm_node **p, int n, const pcase *c) {
    (void)n;
    return strcmp(c->s, "max") == 0 ? mm_g_maxpool2d(g, p[0], c->i[0], c->i[0], c->i[1], c->i[1], c->i[2])
                                    : mm_g_avgpool2d(g, p[0], c->i[0], c->i[0], c->i[1], c->i[1], c->i[2]);
}

static mm_node *b_flatten(mm_graph *g, mm_node **p, int n, const pcase *c) { (void)n, (void)c; return mm_g_flatten(g, p[0]); }
static mm_node *b_dropout(mm_graph *g, mm_node **p, int n, const pcase *c) { (void)n; return mm_g_dropout(g, p[0], c->f[0]); }

static mm_node *b_bn(mm_graph *g, mm_node **p, int n, const pcase *c) {
    (void)n;
    return mm_g_batchnorm(g, p[0], p[1], p[2], p[3], p[4], c->f[0], c->f[1]);
}

static mm_node *b_concat(mm_graph *g, mm_node **p, int n, const pcase *c) { return mm_g_concat(g, n, p, c->i[0]); }

/* i: axis, keepdims; s: "sum" or "mean" */
static mm_node *b_reduce(mm_graph *g, mm_node **p, int n, const pcase *c) {
    (void)n;
    return strcmp(c->s, "sum") == 0 ? mm_g_sum(g, p[0], c->i[0], c->i[1]) : mm_g_mean(g, p[0], c->i[0], c->i[1]);
}

/* i[0]: sparse */
static mm_node *b_sce(mm_graph *g, mm_node **p, int n, const pcase *c) { (void)n; return mm_g_softmax_cross_entropy(g, p[0], p[1], c->i[0]); }
static mm_node *b_pce(mm_graph *g, mm_node **p, int n, const pcase *c) { (void)n; return mm_g_prob_cross_entropy(g, p[0], p[1], c->i[0]); }
static mm_node *b_sbce(mm_graph *g, mm_node **p, int n, const pcase *c) { (void)n, (void)c; return mm_g_sigmoid_bce(g, p[0], p[1]); }
static mm_node *b_pbce(mm_graph *g, mm_node **p, int n, const pcase *c) { (void)n, (void)c; return mm_g_prob_bce(g, p[0], p[1]); }
static mm_node *b_mse(mm_graph *g, mm_node **p, int n, const pcase *c) { (void)n, (void)c; return mm_g_mse(g, p[0], p[1]); }
static mm_node *b_l1l2(mm_graph *g, mm_node **p, int n, const pcase *c) { (void)n; return mm_g_l1l2(g, p[0], c->f[0], c->f[1]); }

/* x @ w + b -> softmax (a Dense layer with softmax activation) */
static mm_node *b_dense_net(mm_graph *g, mm_node **p, int n, const pcase *c) {
    (void)n, (void)c;
    return mm_g_softmax(g, mm_g_matmul(g, p[0], p[1], p[2]));
}

/* conv2d_relu (valid) -> maxpool 2x2 -> flatten -> dense -> sparse softmax cross-entropy */
static mm_node *b_conv_net(mm_graph *g, mm_node **p, int n, const pcase *c) {
    (void)n, (void)c;
    mm_node *h = mm_g_conv2d_relu(g, p[0], p[1], p[2], 1, 1, 0);
    h = mm_g_flatten(g, mm_g_maxpool2d(g, h, 2, 2, 2, 2, 0));
    return mm_g_softmax_cross_entropy(g, mm_g_matmul(g, h, p[3], p[4]), p[5], 1);
}

/* P(name, number of inputs, builder, optional designated fields) */
static mm_node *b_conv1d(mm_graph *g, mm_node **p, int n, const pcase *c) {
    (void)c;
    return mm_g_conv1d(g, p[0], p[1], n > 2 ? p[2] : NULL);
}

/* i: is_max */
static mm_node *b_gpool(mm_graph *g, mm_node **p, int n, const pcase *c) {
    return mm_g_global_pool1d(g, p[0], n > 1 ? p[1] : NULL, c->i[0]);
}

#define P(nm, n, ...) {.name = (nm), .n_in = (n), .fn = __VA_ARGS__}
static const pcase cases[] = {
    P("matmul_bias", 3, b_matmul),
    P("matmul_3d", 2, b_matmul),
    P("add_bcast", 2, b_add),
    P("add_both_bcast", 2, b_add),
    P("sub_bcast", 2, b_sub),
    P("mul_bcast", 2, b_mul),
    P("mul_scalar", 2, b_mul),
    P("div_bcast", 2, b_div),
    P("div_same", 2, b_div),
    P("relu", 1, b_act, .s = "relu"),
    P("leaky_relu", 1, b_act, .s = "leaky_relu", .f = {0.3f}),
    P("sigmoid", 1, b_act, .s = "sigmoid"),
    P("tanh", 1, b_act, .s = "tanh"),
    P("gelu", 1, b_act, .s = "gelu"),
    P("softmax", 1, b_act, .s = "softmax"),
    P("softmax_3d", 1, b_act, .s = "softmax"),
    P("log_softmax", 1, b_act, .s = "log_softmax"),
    P("log_softmax_3d", 1, b_act, .s = "log_softmax"),
    P("conv_valid", 3, b_conv, .i = {1, 0, 0}),
    P("conv_same", 3, b_conv, .i = {1, 1, 0}),
    P("conv_stride2", 3, b_conv, .i = {2, 0, 0}),
    P("conv_same_stride2", 3, b_conv, .i = {2, 1, 0}),
    P("conv_multi", 3, b_conv, .i = {1, 0, 0}),
    P("conv_nobias", 2, b_conv, .i = {1, 1, 0}),
    P("conv_relu", 3, b_conv, .i = {1, 1, 1}),
    P("maxpool", 1, b_pool, .i = {2, 2, 0}, .s = "max"),
    P("maxpool_same", 1, b_pool, .i = {2, 2, 1}, .s = "max"),
    P("maxpool_3x3_same", 1, b_pool, .i = {3, 1, 1}, .s = "max"),
    P("avgpool", 1, b_pool, .i = {2, 2, 0}, .s = "avg"),
    P("avgpool_3x3_same", 1, b_pool, .i = {3, 1, 1}, .s = "avg"),
    P("flatten", 1, b_flatten),
    P("dropout0", 1, b_dropout, .training = 1, .f = {0.0f}),
    P("dropout_infer", 1, b_dropout, .training = 0, .f = {0.5f}),
    P("bn_train", 5, b_bn, .training = 1, .f = {0.9f, 1e-3f}),
    P("bn_train_2d", 5, b_bn, .training = 1, .f = {0.9f, 1e-3f}),
    P("bn_infer", 5, b_bn, .training = 0, .f = {0.9f, 1e-3f}),
    P("concat_axis1", 3, b_concat, .i = {1}),
    P("concat_last_3d", 2, b_concat, .i = {-1}),
    P("concat_axis0", 2, b_concat, .i = {0}),
    P("sum_axis0", 1, b_reduce, .i = {0, 0}, .s = "sum"),
    P("sum_axis1_keep", 1, b_reduce, .i = {1, 1}, .s = "sum"),
    P("sum_last", 1, b_reduce, .i = {-1, 0}, .s = "sum"),
    P("sum_all", 1, b_reduce, .i = {MM_AXIS_ALL, 0}, .s = "sum"),
    P("mean_axis0", 1, b_reduce, .i = {0, 0}, .s = "mean"),
    P("mean_axis1_keep", 1, b_reduce, .i = {1, 1}, .s = "mean"),
    P("mean_last", 1, b_reduce, .i = {-1, 0}, .s = "mean"),
    P("mean_all", 1, b_reduce, .i = {MM_AXIS_ALL, 0}, .s = "mean"),
    P("sce_sparse", 2, b_sce, .i = {1}),
    P("sce_soft", 2, b_sce, .i = {0}),
    P("sce_soft_target_grad", 2, b_sce, .i = {0}),
    P("pce_soft", 2, b_pce, .i = {0}),
    P("pce_sparse", 2, b_pce, .i = {1}),
    P("pce_soft_target_grad", 2, b_pce, .i = {0}),
    P("sigmoid_bce", 2, b_sbce),
    P("sigmoid_bce_target_grad", 2, b_sbce),
    P("prob_bce", 2, b_pbce),
    P("prob_bce_target_grad", 2, b_pbce),
    P("mse", 2, b_mse),
    P("mse_both", 2, b_mse),
    P("l1l2", 1, b_l1l2, .f = {0.01f, 0.02f}),
    P("dense_net", 3, b_dense_net),
    P("conv_net", 6, b_conv_net),
    P("dot_rows", 2, b_dot),
    P("dot_3d", 2, b_dot),
    P("conv1d", 3, b_conv1d),
    P("conv1d_nobias", 2, b_conv1d),
    P("global_avg_pool1d_masked", 2, b_gpool, .i = {0}),
    P("global_max_pool1d_masked", 2, b_gpool, .i = {1}),
    P("global_max_pool1d", 1, b_gpool, .i = {1}),
};

/* ------------------------------------------------------------------ runner */

static mm_node *build_case(mm_graph *g, mm_node **in, int n, const void *ctx) {
    const pcase *c = ctx;
    return c->fn(g, in, n, c);
}

static void run_case(const pcase *c) { tu_parity_case(&fx, c->name, c->n_in, c->training, build_case, c, TOL); }

/* Optimizer case: NAME.in0 initial weights [n], NAME.in1 grads [steps, n], NAME.y weights after
 * each step [steps, n]. */
static void run_optimizer(const char *cs, const mm_compile_args *a) {
    const mm_st_tensor *w0 = fget("%s.in0", cs), *gs = fget("%s.in1", cs), *y = fget("%s.y", cs);
    CHECK(w0 && gs && y, "%s: fixture lacks in0/in1/y", cs);
    if (!w0 || !gs || !y) return;
    size_t n = w0->size;
    int steps = gs->shape[0];
    CHECK(gs->size == n * (size_t)steps && y->size == gs->size, "%s: fixture shapes", cs);
    if (gs->size != n * (size_t)steps || y->size != gs->size) return;
    mm_optimizer *o = NULL;
    CHECK_OK(mm_optimizer_new(a, n, &o));
    if (!o) return;
    float *w = malloc(n * sizeof(float)), *gr = malloc(n * sizeof(float));
    memcpy(w, w0->data, n * sizeof(float));
    double worst = 0;
    for (int t = 0; t < steps; t++) {
        memcpy(gr, (const float *)gs->data + (size_t)t * n, n * sizeof(float));
        mm_optimizer_step(o, w, gr);
        double e = rel_err(w, (const float *)y->data + (size_t)t * n, n);
        CHECK(e <= TOL, "%s: weights after step %d max error %.3g > %.1g", cs, t + 1, e, TOL);
        worst = fmax(worst, e);
    }
    printf("%-26s max error %.3g\n", cs, worst);
    free(w), free(gr);
    mm_optimizer_free(o);
}

int main(void) {
    const char *path = tu_source_path("tests/fixtures/parity.safetensors");
    mm_status st = mm_st_read(path, &fx);
    CHECK(st == MM_OK, "reading %s: %s", path, mm_errmsg());
    if (st != MM_OK) return tu_finish();

    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) run_case(&cases[i]);

    run_optimizer("adam", &(mm_compile_args){.optimizer = "adam", .learning_rate = 1e-3f, .beta_1 = 0.9f,
                                             .beta_2 = 0.999f, .epsilon = 1e-7f});
    run_optimizer("sgd_momentum", &(mm_compile_args){.optimizer = "sgd", .learning_rate = 0.01f, .momentum = 0.9f});
    run_optimizer("sgd_nesterov", &(mm_compile_args){.optimizer = "sgd", .learning_rate = 0.01f, .momentum = 0.9f,
                                                     .nesterov = 1});
    mm_st_free(&fx);
    return tu_finish();
}
