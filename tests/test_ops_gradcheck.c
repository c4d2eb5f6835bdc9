/* Gradient checks (central differences) for every op in src/ops/ops.h, forward values
 * against hand-computed numbers, batched graphs run below their capacity, determinism
 * across thread counts, and bad-input errors. */
#include "ops/ops.h"
#include "testutil.h"

#include <stdlib.h>
#include <string.h>

#define TOL 1e-2

/* ------------------------------------------------------------------ helpers */

typedef struct cfg {
    int i[8];
    float f[4];
    const char *s;
} cfg;

/* Runs the check plain and in the accumulate variant. */
static void gc(const char *name, int n, const tu_param_spec *s, tu_build_fn fn, void *ctx) {
    tu_gradcheck_acc(name, n, s, fn, ctx, TOL);
}

/* Deterministic values with |v| >= 0.05 and pairwise distinct (no kinks/ties within eps). */
static float *distinct_values(size_t n, float scale) {
    float *v = malloc(n * sizeof(float));
    for (size_t k = 0; k < n; k++) {
        size_t j = (k * 7919u + 13u) % n; /* a permutation when n is not a multiple of 7919 */
        float u = ((float)j + 0.5f) / (float)n * 2.0f - 1.0f;
        if (fabsf(u) < 0.05f) u = u < 0 ? -0.05f - 0.5f / (float)n : 0.05f + 0.5f / (float)n;
        v[k] = u * scale;
    }
    return v;
}

static int close_to(float a, float b, float tol) { return fabsf(a - b) <= tol * fmaxf(1.0f, fabsf(b)); }

/* ------------------------------------------------------------------ builders under test */

static mm_node *b_add(mm_graph *g, mm_node **p, void *c) { (void)c; return mm_g_add(g, p[0], p[1]); }
static mm_node *b_sub(mm_graph *g, mm_node **p, void *c) { (void)c; return mm_g_sub(g, p[0], p[1]); }
static mm_node *b_mul(mm_graph *g, mm_node **p, void *c) { (void)c; return mm_g_mul(g, p[0], p[1]); }
static mm_node *b_div(mm_graph *g, mm_node **p, void *c) { (void)c; return mm_g_div(g, p[0], p[1]); }
static mm_node *b_mul_self(mm_graph *g, mm_node **p, void *c) { (void)c; return mm_g_mul(g, p[0], p[0]); }
static mm_node *b_div_self(mm_graph *g, mm_node **p, void *c) {
    (void)c;
    return mm_g_div(g, mm_g_add(g, p[0], p[1]), p[0]);
}

static mm_node *b_dot(mm_graph *g, mm_node **p, void *c) { (void)c; return mm_g_dot(g, p[0], p[1]); }
static mm_node *b_dot_self(mm_graph *g, mm_node **p, void *c) { (void)c; return mm_g_dot(g, p[0], p[0]); }

static mm_node *b_act(mm_graph *g, mm_node **p, void *c) {
    cfg *k = c;
    return mm_g_activation(g, p[0], k->s, k->f[0]);
}

/* x feeds two activations: the first one's backward must accumulate onto the second's. */
static mm_node *b_act_twice(mm_graph *g, mm_node **p, void *c) {
    cfg *k = c;
    return mm_g_add(g, mm_g_activation(g, p[0], k->s, k->f[0]), mm_g_sigmoid(g, p[0]));
}

static mm_node *b_dropout(mm_graph *g, mm_node **p, void *c) {
    cfg *k = c;
    return mm_g_dropout(g, p[0], k->f[0]);
}

static mm_node *b_bn(mm_graph *g, mm_node **p, void *c) {
    cfg *k = c;
    return mm_g_batchnorm(g, p[0], p[1], p[2], p[3], p[4], k->f[0], k->f[1]);
}

static mm_node *b_concat(mm_graph *g, mm_node **p, void *c) {
    cfg *k = c;
    mm_node *xs[MM_MAX_INPUTS];
    for (int i = 0; i < k->i[0]; i++) xs[i] = p[k->i[2 + i]];
    return mm_g_concat(g, k->i[0], xs, k->i[1]);
}

static mm_node *b_sum(mm_graph *g, mm_node **p, void *c) {
    cfg *k = c;
    return mm_g_sum(g, p[0], k->i[0], k->i[1]);
}

static mm_node *b_mean(mm_graph *g, mm_node **p, void *c) {
    cfg *k = c;
    return mm_g_mean(g, p[0], k->i[0], k->i[1]);
}

static mm_node *b_l1l2(mm_graph *g, mm_node **p, void *c) {
    cfg *k = c;
    return mm_g_l1l2(g, p[0], k->f[0], k->f[1]);
}

static mm_node *b_matmul(mm_graph *g, mm_node **p, void *c) {
    cfg *k = c;
    return mm_g_matmul(g, p[0], p[1], k->i[0] ? p[2] : NULL);
}

static mm_node *b_conv(mm_graph *g, mm_node **p, void *c) {
    cfg *k = c;
    return mm_g_conv2d(g, p[0], p[1], k->i[0] ? p[2] : NULL, k->i[1], k->i[2], k->i[3]);
}

static mm_node *b_maxpool(mm_graph *g, mm_node **p, void *c) {
    cfg *k = c;
    return mm_g_maxpool2d(g, p[0], k->i[0], k->i[1], k->i[2], k->i[3], k->i[4]);
}

static mm_node *b_avgpool(mm_graph *g, mm_node **p, void *c) {
    cfg *k = c;
    return mm_g_avgpool2d(g, p[0], k->i[0], k->i[1], k->i[2], k->i[3], k->i[4]);
}

static mm_node *b_reshape(mm_graph *g, mm_node **p, void *c) {
    cfg *k = c;
    return mm_g_reshape(g, p[0], k->i[0], k->i + 1);
}

static mm_node *b_flatten(mm_graph *g, mm_node **p, void *c) { (void)c; return mm_g_flatten(g, p[0]); }

static mm_node *b_sce(mm_graph *g, mm_node **p, void *c) {
    cfg *k = c;
    return mm_g_softmax_cross_entropy(g, p[0], p[1], k->i[0]);
}

static mm_node *b_pce(mm_graph *g, mm_node **p, void *c) {
    cfg *k = c;
    return mm_g_prob_cross_entropy(g, p[0], p[1], k->i[0]);
}

static mm_node *b_sbce(mm_graph *g, mm_node **p, void *c) { (void)c; return mm_g_sigmoid_bce(g, p[0], p[1]); }
static mm_node *b_pbce(mm_graph *g, mm_node **p, void *c) { (void)c; return mm_g_prob_bce(g, p[0], p[1]); }
static mm_node *b_mse(mm_graph *g, mm_node **p, void *c) { (void)c; return mm_g_mse(g, p[0], p[1]); }

/* ------------------------------------------------------------------ gradient checks */

static void grad_elementwise(void) {
    tu_build_fn fns[4] = {b_add, b_sub, b_mul, b_div};
    const char *names[4] = {"add", "sub", "mul", "div"};
    for (int op = 0; op < 4; op++) {
        float lo = op == 3 ? 0.5f : 0.0f, hi = op == 3 ? 2.0f : 0.0f; /* divisors away from 0 */
        char nm[64];
        {
            tu_param_spec s[2] = {SPEC(2, 3, 4), SPEC_R(lo, hi, 2, 3, 4)};
            snprintf(nm, sizeof nm, "%s [3,4]+[3,4]", names[op]);
            gc(nm, 2, s, fns[op], NULL);
        }
        {
            tu_param_spec s[2] = {SPEC(3, 2, 3, 4), SPEC_R(lo, hi, 1, 4)};
            snprintf(nm, sizeof nm, "%s [2,3,4]+[4] (bias)", names[op]);
            gc(nm, 2, s, fns[op], NULL);
        }
        {
            tu_param_spec s[2] = {SPEC(2, 300, 3), SPEC_R(lo, hi, 2, 1, 3)};
            snprintf(nm, sizeof nm, "%s [300,3]+[1,3] (blocked bias)", names[op]);
            gc(nm, 2, s, fns[op], NULL);
        }
        {
            tu_param_spec s[2] = {SPEC(3, 2, 1, 4), SPEC_R(lo, hi, 2, 3, 1)};
            snprintf(nm, sizeof nm, "%s [2,1,4]+[3,1] (both broadcast)", names[op]);
            gc(nm, 2, s, fns[op], NULL);
        }
        {
            tu_param_spec s[2] = {SPEC(1, 4), SPEC_R(lo, hi, 2, 3, 4)};
            snprintf(nm, sizeof nm, "%s [4]+[3,4] (a broadcast)", names[op]);
            gc(nm, 2, s, fns[op], NULL);
        }
        {
            tu_param_spec s[2] = {SPEC(2, 3, 4), SPEC_R(lo, hi, 1, 1)};
            snprintf(nm, sizeof nm, "%s [3,4]+[1] (scalar)", names[op]);
            gc(nm, 2, s, fns[op], NULL);
        }
        {
            tu_param_spec s[2] = {SPEC(3, 2, 3, 1), SPEC_R(lo, hi, 3, 2, 1, 4)};
            snprintf(nm, sizeof nm, "%s [2,3,1]+[2,1,4]", names[op]);
            gc(nm, 2, s, fns[op], NULL);
        }
    }
    tu_param_spec s1[1] = {SPEC(2, 3, 4)};
    gc("mul x*x", 1, s1, b_mul_self, NULL);
    tu_param_spec s2[2] = {SPEC_R(0.5f, 2.0f, 2, 3, 4), SPEC(1, 4)};
    gc("div (x+b)/x", 2, s2, b_div_self, NULL);
}

/* dot: rows of 5 (a lane remainder), 16 (whole lanes), 19 (both), rank 3, and x.x (input
 * 1 accumulates onto input 0's gradient). */
static void grad_dot(void) {
    const int ks[3] = {5, 16, 19};
    for (int i = 0; i < 3; i++) {
        tu_param_spec s[2] = {SPEC(2, 3, ks[i]), SPEC(2, 3, ks[i])};
        char nm[64];
        snprintf(nm, sizeof nm, "dot [3,%d].[3,%d]", ks[i], ks[i]);
        gc(nm, 2, s, b_dot, NULL);
    }
    tu_param_spec s3[2] = {SPEC(3, 2, 3, 4), SPEC(3, 2, 3, 4)};
    gc("dot [2,3,4].[2,3,4]", 2, s3, b_dot, NULL);
    tu_param_spec s1[1] = {SPEC(2, 3, 7)};
    gc("dot x.x", 1, s1, b_dot_self, NULL);
}

static void grad_activations(void) {
    const char *names[] = {"relu", "leaky_relu", "sigmoid", "tanh", "gelu", "softmax", "log_softmax"};
    float *v = distinct_values(15, 2.0f);
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        cfg k = {.s = names[i], .f = {0.2f}};
        tu_param_spec s[1] = {SPEC_V(v, 2, 3, 5)};
        gc(names[i], 1, s, b_act, &k);
        char nm[64];
        snprintf(nm, sizeof nm, "%s + sigmoid on the same input", names[i]);
        tu_gradcheck(nm, 1, s, b_act_twice, &k, TOL);
    }
    free(v);
    /* softmax over the last axis of a 3-D tensor */
    cfg k = {.s = "softmax"};
    tu_param_spec s[1] = {SPEC_R(-3, 3, 3, 2, 3, 4)};
    gc("softmax [2,3,4]", 1, s, b_act, &k);
    k.s = "log_softmax";
    gc("log_softmax [2,3,4]", 1, s, b_act, &k);
}

static void grad_dropout(void) {
    cfg k = {.f = {0.3f}};
    tu_param_spec s[1] = {SPEC(2, 4, 10)};
    gc("dropout 0.3", 1, s, b_dropout, &k);
    k.f[0] = 0.0f;
    gc("dropout 0", 1, s, b_dropout, &k);
}

static void grad_batchnorm(void) {
    static const float ones3[3] = {1, 1, 1}, zeros3[3] = {0, 0, 0};
    cfg k = {.f = {0.9f, 1e-3f}};
    {
        tu_param_spec s[5] = {SPEC_R(-2, 2, 2, 6, 3), SPEC_R(0.5f, 1.5f, 1, 3), SPEC(1, 3),
                              SPEC_C(zeros3, 1, 3), SPEC_C(ones3, 1, 3)};
        gc("batchnorm [6,3]", 5, s, b_bn, &k);
    }
    {
        tu_param_spec s[5] = {SPEC_R(-2, 2, 4, 2, 3, 3, 3), SPEC_R(0.5f, 1.5f, 1, 3), SPEC(1, 3),
                              SPEC_C(zeros3, 1, 3), SPEC_C(ones3, 1, 3)};
        gc("batchnorm [2,3,3,3]", 5, s, b_bn, &k);
    }
    {
        /* more rows than one reduction block */
        tu_param_spec s[5] = {SPEC_R(-2, 2, 2, 300, 3), SPEC_R(0.5f, 1.5f, 1, 3), SPEC(1, 3),
                              SPEC_C(zeros3, 1, 3), SPEC_C(ones3, 1, 3)};
        tu_gradcheck("batchnorm [300,3]", 5, s, b_bn, &k, TOL);
    }
}

static void grad_concat(void) {
    {
        cfg k = {.i = {3, 1, 0, 1, 2}};
        tu_param_spec s[3] = {SPEC(2, 2, 3), SPEC(2, 2, 1), SPEC(2, 2, 4)};
        gc("concat axis 1", 3, s, b_concat, &k);
        k.i[1] = -1;
        gc("concat axis -1", 3, s, b_concat, &k);
    }
    {
        cfg k = {.i = {2, 0, 0, 1}};
        tu_param_spec s[2] = {SPEC(3, 2, 3, 2), SPEC(3, 1, 3, 2)};
        gc("concat axis 0", 2, s, b_concat, &k);
    }
    {
        cfg k = {.i = {2, 1, 0, 1}};
        tu_param_spec s[2] = {SPEC(3, 2, 3, 2), SPEC(3, 2, 2, 2)};
        gc("concat axis 1 of 3-D", 2, s, b_concat, &k);
    }
    {
        cfg k = {.i = {3, 1, 0, 0, 1}}; /* the same node twice */
        tu_param_spec s[2] = {SPEC(2, 2, 3), SPEC(2, 2, 2)};
        gc("concat [x, x, y]", 2, s, b_concat, &k);
    }
}

static void grad_reduce(void) {
    int axes[] = {0, 1, 2, -1, MM_AXIS_ALL};
    for (size_t a = 0; a < sizeof axes / sizeof axes[0]; a++)
        for (int keep = 0; keep < 2; keep++) {
            cfg k = {.i = {axes[a], keep}};
            tu_param_spec s[1] = {SPEC(3, 2, 3, 4)};
            char nm[64];
            snprintf(nm, sizeof nm, "sum axis %d keepdims %d", axes[a], keep);
            gc(nm, 1, s, b_sum, &k);
            snprintf(nm, sizeof nm, "mean axis %d keepdims %d", axes[a], keep);
            gc(nm, 1, s, b_mean, &k);
        }
    cfg k = {.i = {0, 0}};
    tu_param_spec s[1] = {SPEC(1, 5)};
    gc("sum of [5] over axis 0", 1, s, b_sum, &k);
}

static void grad_l1l2(void) {
    float *v = distinct_values(12, 1.5f);
    tu_param_spec s[1] = {SPEC_V(v, 2, 3, 4)};
    cfg k = {.f = {0.01f, 0.02f}};
    gc("l1l2", 1, s, b_l1l2, &k);
    k.f[0] = 0.5f, k.f[1] = 0.0f;
    gc("l1", 1, s, b_l1l2, &k);
    k.f[0] = 0.0f, k.f[1] = 0.7f;
    gc("l2", 1, s, b_l1l2, &k);
    free(v);
}

static void grad_owner_ops(void) {
    /* matmul */
    {
        cfg k = {.i = {1}};
        tu_param_spec s[3] = {SPEC(2, 3, 4), SPEC(2, 4, 5), SPEC(1, 5)};
        gc("matmul + bias", 3, s, b_matmul, &k);
        k.i[0] = 0;
        gc("matmul", 2, s, b_matmul, &k);
        tu_param_spec s3[2] = {SPEC(3, 2, 3, 4), SPEC(2, 4, 2)};
        gc("matmul 3-D input", 2, s3, b_matmul, &k);
        /* shapes that take the register-tiled kernel for y, dx and dw (inner 64..1024, whole
         * column tiles, 70 rows: a partial row chunk and partial row tiles) */
        k.i[0] = 1;
        tu_param_spec st[3] = {SPEC(2, 70, 64), SPEC(2, 64, 64), SPEC(1, 64)};
        gc("matmul + bias, tiled kernel", 3, st, b_matmul, &k);
    }
    /* conv2d: valid/same x stride 1/2, multi-channel */
    for (int same = 0; same < 2; same++)
        for (int stride = 1; stride <= 2; stride++) {
            cfg k = {.i = {1, stride, stride, same}};
            tu_param_spec s[3] = {SPEC(4, 2, 5, 5, 3), SPEC_R(-0.5f, 0.5f, 4, 3, 3, 3, 4), SPEC(1, 4)};
            char nm[64];
            snprintf(nm, sizeof nm, "conv2d 3x3 %s stride %d", same ? "same" : "valid", stride);
            gc(nm, 3, s, b_conv, &k);
        }
    {
        cfg k = {.i = {0, 2, 1, 1}};
        tu_param_spec s[2] = {SPEC(4, 1, 6, 5, 2), SPEC(4, 2, 2, 2, 3)};
        gc("conv2d 2x2 same strides 2,1 no bias", 2, s, b_conv, &k);
        cfg k2 = {.i = {1, 1, 1, 0}};
        tu_param_spec s2[3] = {SPEC(4, 2, 4, 4, 2), SPEC(4, 1, 1, 2, 3), SPEC(1, 3)};
        gc("conv2d 1x1", 3, s2, b_conv, &k2);
    }
    /* pooling: distinct values so that max pooling has no ties */
    {
        float *v = distinct_values(2 * 5 * 5 * 3, 1.0f);
        tu_param_spec s[1] = {SPEC_V(v, 4, 2, 5, 5, 3)};
        cfg k = {.i = {2, 2, 2, 2, 0}};
        gc("maxpool2d 2x2/2 valid", 1, s, b_maxpool, &k);
        k.i[4] = 1;
        gc("maxpool2d 2x2/2 same", 1, s, b_maxpool, &k);
        cfg k3 = {.i = {3, 3, 1, 1, 1}};
        gc("maxpool2d 3x3/1 same", 1, s, b_maxpool, &k3);
        cfg a = {.i = {2, 2, 2, 2, 0}};
        gc("avgpool2d 2x2/2 valid", 1, s, b_avgpool, &a);
        a.i[4] = 1;
        gc("avgpool2d 2x2/2 same", 1, s, b_avgpool, &a);
        cfg a3 = {.i = {3, 3, 1, 1, 1}};
        gc("avgpool2d 3x3/1 same", 1, s, b_avgpool, &a3);
        cfg a4 = {.i = {3, 2, 2, 1, 0}};
        gc("avgpool2d 3x2 strides 2,1 valid", 1, s, b_avgpool, &a4);
        free(v);
    }
    /* reshape / flatten */
    {
        cfg k = {.i = {2, 4, -1}};
        tu_param_spec s[1] = {SPEC(3, 2, 3, 4)};
        gc("reshape [2,3,4] -> [4,-1]", 1, s, b_reshape, &k);
        gc("flatten", 1, s, b_flatten, NULL);
    }
    /* losses */
    {
        static const float labels[4] = {0, 3, 1, 4};
        cfg k = {.i = {1}};
        tu_param_spec s[2] = {SPEC_R(-2, 2, 2, 4, 5), SPEC_C(labels, 1, 4)};
        gc("softmax_cross_entropy sparse", 2, s, b_sce, &k);
        static const float dense[8] = {0.2f, 0.8f, 0.5f, 0.5f, 0.25f, 0.75f, 0.0f, 1.0f}; /* rows sum to 1 */
        tu_param_spec d[2] = {SPEC_R(-2, 2, 2, 4, 2), SPEC_C(dense, 2, 4, 2)};
        cfg kd = {.i = {0}};
        gc("softmax_cross_entropy dense", 2, d, b_sce, &kd);
        tu_param_spec p[2] = {SPEC_R(0.05f, 0.95f, 2, 4, 5), SPEC_C(labels, 1, 4)};
        gc("prob_cross_entropy sparse", 2, p, b_pce, &k);
        static const float dense5[20] = {0.1f, 0.2f, 0.3f, 0.4f, 0,   1, 0, 0, 0, 0,
                                         0.5f, 0,    0,    0,    0.5f, 0, 0, 0, 0.25f, 0.75f};
        tu_param_spec pd[2] = {SPEC_R(0.05f, 0.95f, 2, 4, 5), SPEC_C(dense5, 2, 4, 5)};
        gc("prob_cross_entropy dense", 2, pd, b_pce, &kd);
        static const float t[12] = {0, 1, 1, 0, 0.3f, 0.7f, 1, 0, 0, 0, 1, 0.5f};
        tu_param_spec b[2] = {SPEC_R(-3, 3, 2, 3, 4), SPEC_C(t, 2, 3, 4)};
        gc("sigmoid_bce", 2, b, b_sbce, NULL);
        tu_param_spec pb[2] = {SPEC_R(0.05f, 0.95f, 2, 3, 4), SPEC_C(t, 2, 3, 4)};
        gc("prob_bce", 2, pb, b_pbce, NULL);
        tu_param_spec m[2] = {SPEC(2, 3, 4), SPEC(2, 3, 4)};
        gc("mse (both differentiable)", 2, m, b_mse, NULL);
        tu_param_spec mc[2] = {SPEC(2, 3, 4), SPEC_C(t, 2, 3, 4)};
        gc("mse", 2, mc, b_mse, NULL);
    }
}

/* ------------------------------------------------------------------ forward values */

/* Plans g for forward only and runs it once (training as given). */
/* ------------------------------------------------------------------ shared gradient buffers */

/* The planner lets an add's inputs take over its gradient buffer (graph.c, pass_gradients).
 * Each builder records the nodes whose sharing the structural check below expects. */
typedef struct shared_nodes {
    mm_node *y, *in[2];
    int expect[2]; /* 1: in[i]'s gradient is y's buffer */
} shared_nodes;

/* The Transformer residual: h = a + matmul(sigmoid(a), w) (a read again before the matmul),
 * then h2 = h + matmul(tanh(h), w2): both inputs of each add share, and h's buffer is h2's. */
static mm_node *b_residual(mm_graph *g, mm_node **p, void *c) {
    shared_nodes *sn = c;
    mm_node *a = mm_g_tanh(g, p[0]);
    mm_node *m = mm_g_matmul(g, mm_g_sigmoid(g, a), p[1], NULL);
    mm_node *h = mm_g_add(g, a, m);
    mm_node *h2 = mm_g_add(g, h, mm_g_matmul(g, mm_g_tanh(g, h), p[2], NULL));
    if (sn) *sn = (shared_nodes){h, {a, m}, {1, 1}};
    return h2;
}

/* a is read by sigmoid after b is built: sharing both inputs would let sigmoid's backward
 * write into a's gradient (the same buffer) before b's backward reads b's. */
static mm_node *b_shared_late_reader(mm_graph *g, mm_node **p, void *c) {
    shared_nodes *sn = c;
    mm_node *a = mm_g_tanh(g, p[0]), *b = mm_g_tanh(g, p[1]);
    mm_node *d = mm_g_sigmoid(g, a), *s = mm_g_add(g, a, b);
    if (sn) *sn = (shared_nodes){s, {a, b}, {0, 1}};
    return mm_g_mul(g, s, d);
}

/* b has a second consumer (sigmoid), whose backward accumulates into b's gradient. */
static mm_node *b_shared_two_readers(mm_graph *g, mm_node **p, void *c) {
    shared_nodes *sn = c;
    mm_node *a = mm_g_tanh(g, p[0]), *b = mm_g_tanh(g, p[1]);
    mm_node *d = mm_g_sigmoid(g, b), *s = mm_g_add(g, a, b);
    if (sn) *sn = (shared_nodes){s, {a, b}, {0, 1}};
    return mm_g_mul(g, s, d);
}

/* b is itself an add that passes the buffer on to its inputs: a must keep its own. */
static mm_node *b_shared_chain(mm_graph *g, mm_node **p, void *c) {
    shared_nodes *sn = c;
    mm_node *a = mm_g_tanh(g, p[0]);
    mm_node *b = mm_g_add(g, mm_g_tanh(g, p[1]), mm_g_sigmoid(g, p[2]));
    mm_node *s = mm_g_add(g, a, b);
    if (sn) *sn = (shared_nodes){s, {a, b}, {0, 1}};
    return mm_g_mul(g, s, s);
}

/* sub passes its gradient unchanged to input 0 only; a + a shares nothing; a broadcast
 * input (the bias) has its own shape. */
static mm_node *b_shared_sub(mm_graph *g, mm_node **p, void *c) {
    shared_nodes *sn = c;
    mm_node *a = mm_g_tanh(g, p[0]), *b = mm_g_sigmoid(g, p[1]);
    mm_node *s = mm_g_sub(g, a, b);
    if (sn) *sn = (shared_nodes){s, {a, b}, {1, 0}};
    return mm_g_mul(g, s, b);
}

static mm_node *b_shared_self(mm_graph *g, mm_node **p, void *c) {
    shared_nodes *sn = c;
    mm_node *a = mm_g_tanh(g, p[0]), *s = mm_g_add(g, a, a);
    if (sn) *sn = (shared_nodes){s, {a, a}, {0, 0}};
    return mm_g_mul(g, s, s);
}

static mm_node *b_shared_bias(mm_graph *g, mm_node **p, void *c) {
    shared_nodes *sn = c;
    mm_node *a = mm_g_tanh(g, p[0]), *b = mm_g_sigmoid(g, p[1]);
    mm_node *s = mm_g_add(g, a, b);
    if (sn) *sn = (shared_nodes){s, {a, b}, {1, 0}};
    return mm_g_mul(g, s, s);
}

static void shared_gradient_buffers(void) {
    struct {
        const char *name;
        tu_build_fn fn;
        int np;
        tu_param_spec s[3];
    } cases[] = {
        {"shared grads: residual", b_residual, 3, {SPEC(2, 4, 5), SPEC(2, 5, 5), SPEC(2, 5, 5)}},
        {"shared grads: late reader", b_shared_late_reader, 2, {SPEC(2, 3, 4), SPEC(2, 3, 4)}},
        {"shared grads: two readers", b_shared_two_readers, 2, {SPEC(2, 3, 4), SPEC(2, 3, 4)}},
        {"shared grads: chain", b_shared_chain, 3, {SPEC(2, 3, 4), SPEC(2, 3, 4), SPEC(2, 3, 4)}},
        {"shared grads: sub", b_shared_sub, 2, {SPEC(2, 3, 4), SPEC(2, 3, 4)}},
        {"shared grads: a + a", b_shared_self, 1, {SPEC(2, 3, 4)}},
        {"shared grads: bias", b_shared_bias, 2, {SPEC(2, 3, 4), SPEC(1, 4)}},
    };
    for (size_t t = 0; t < sizeof cases / sizeof cases[0]; t++) {
        /* the gradients are right (with and without accumulation into the params) ... */
        gc(cases[t].name, cases[t].np, cases[t].s, cases[t].fn, NULL);
        /* ... and the buffers are shared exactly where expected */
        mm_graph *g = mm_graph_new();
        mm_node *ps[3];
        float vals[3][32] = {{0}}, grads[3][32];
        for (int i = 0; i < cases[t].np; i++)
            ps[i] = mm_graph_param(g, "p", cases[t].s[i].ndim, cases[t].s[i].shape, vals[i], grads[i], 1);
        shared_nodes sn;
        mm_node *out = cases[t].fn(g, ps, &sn);
        g->external_seed = 1;
        CHECK(out && mm_graph_plan(g, out, 1) == MM_OK, "%s: plan: %s", cases[t].name, mm_errmsg());
        for (int i = 0; i < 2 && out; i++)
            CHECK((sn.in[i]->grad == sn.y->grad) == sn.expect[i], "%s: input %d %s the add's gradient buffer",
                  cases[t].name, i, sn.expect[i] ? "does not share" : "shares");
        mm_graph_free(g);
    }
}

static int run_forward(mm_graph *g, mm_node *out, int training) {
    if (!out) return 0;
    mm_status st = mm_graph_plan(g, out, 0);
    CHECK(st == MM_OK, "plan: %s", mm_errmsg());
    if (st != MM_OK) return 0;
    g->training = training;
    mm_graph_forward(g);
    return 1;
}

static mm_node *param(mm_graph *g, const char *name, int ndim, const int *shape, float *v) {
    return mm_graph_param(g, name, ndim, shape, v, NULL, 0);
}

static void expect_values(const char *what, const mm_node *out, const float *want, size_t n, float tol) {
    CHECK(out->size == n, "%s: size %zu, expected %zu", what, out->size, n);
    if (out->size != n) return;
    for (size_t i = 0; i < n; i++)
        CHECK(close_to(out->value[i], want[i], tol), "%s[%zu] = %.7g, expected %.7g", what, i,
              out->value[i], want[i]);
}

static void forward_values(void) {
    /* softmax / log_softmax of [1, 2, 3] */
    {
        mm_graph *g = mm_graph_new();
        float x[3] = {1, 2, 3};
        mm_node *p = param(g, "x", 1, (int[]){3}, x);
        mm_node *sm = mm_g_softmax(g, p);
        if (run_forward(g, sm, 0)) {
            const float want[3] = {0.09003057f, 0.24472847f, 0.66524096f};
            expect_values("softmax([1,2,3])", sm, want, 3, 1e-6f);
        }
        mm_graph_free(g);
        g = mm_graph_new();
        p = param(g, "x", 1, (int[]){3}, x);
        mm_node *ls = mm_g_log_softmax(g, p);
        if (run_forward(g, ls, 0)) {
            const float want[3] = {-2.40760596f, -1.40760596f, -0.40760596f};
            expect_values("log_softmax([1,2,3])", ls, want, 3, 1e-6f);
        }
        mm_graph_free(g);
        /* stability: huge logits */
        g = mm_graph_new();
        float big[3] = {1000, 1001, 1002};
        p = param(g, "x", 1, (int[]){3}, big);
        sm = mm_g_softmax(g, p);
        if (run_forward(g, sm, 0)) {
            const float want[3] = {0.09003057f, 0.24472847f, 0.66524096f};
            expect_values("softmax([1000,1001,1002])", sm, want, 3, 1e-6f);
        }
        mm_graph_free(g);
    }
    /* broadcasting add [2,3] + [3], sub [2,1] - [3], mul, div */
    {
        float a[6] = {1, 2, 3, 4, 5, 6}, b[3] = {10, 20, 30}, c[2] = {1, 2};
        const int sa[2] = {2, 3}, sc[2] = {2, 1};
        mm_graph *g = mm_graph_new();
        mm_node *add = mm_g_add(g, param(g, "a", 2, sa, a), param(g, "b", 1, (int[]){3}, b));
        if (run_forward(g, add, 0)) {
            const float want[6] = {11, 22, 33, 14, 25, 36};
            expect_values("[2,3]+[3]", add, want, 6, 0);
            CHECK(add->ndim == 2 && add->shape[0] == 2 && add->shape[1] == 3, "add shape");
        }
        mm_graph_free(g);
        g = mm_graph_new();
        mm_node *sub = mm_g_sub(g, param(g, "c", 2, sc, c), param(g, "b", 1, (int[]){3}, b));
        if (run_forward(g, sub, 0)) {
            const float want[6] = {-9, -19, -29, -8, -18, -28};
            expect_values("[2,1]-[3]", sub, want, 6, 0);
        }
        mm_graph_free(g);
        g = mm_graph_new();
        mm_node *mul = mm_g_mul(g, param(g, "b", 1, (int[]){3}, b), param(g, "a", 2, sa, a));
        if (run_forward(g, mul, 0)) {
            const float want[6] = {10, 40, 90, 40, 100, 180};
            expect_values("[3]*[2,3]", mul, want, 6, 0);
        }
        mm_graph_free(g);
        g = mm_graph_new();
        mm_node *dv = mm_g_div(g, param(g, "a", 2, sa, a), param(g, "c", 2, sc, c));
        if (run_forward(g, dv, 0)) {
            const float want[6] = {1, 2, 3, 2, 2.5f, 3};
            expect_values("[2,3]/[2,1]", dv, want, 6, 1e-7f);
        }
        mm_graph_free(g);
    }
    /* activations at known points */
    {
        float x[4] = {1.0f, -1.0f, 0.5f, -2.0f};
        const char *names[] = {"gelu", "relu", "leaky_relu", "sigmoid", "tanh", "linear"};
        const float want[][4] = {
            {0.8413447f, -0.1586553f, 0.3457312f, -0.04550026f},
            {1, 0, 0.5f, 0},
            {1, -0.1f, 0.5f, -0.2f},
            {0.7310586f, 0.2689414f, 0.6224593f, 0.1192029f},
            {0.7615942f, -0.7615942f, 0.4621172f, -0.9640276f},
            {1.0f, -1.0f, 0.5f, -2.0f},
        };
        float zero[1] = {0};
        for (int i = 0; i < 6; i++) {
            mm_graph *g = mm_graph_new();
            mm_node *p = param(g, "x", 1, (int[]){4}, x);
            mm_node *y = mm_g_activation(g, p, names[i], 0.1f);
            if (i == 5) {
                CHECK(y == p, "linear activation returns its input");
                CHECK(mm_g_activation(g, p, NULL, 0) == p, "NULL activation returns its input");
                y = mm_g_add(g, p, param(g, "z", 1, (int[]){1}, zero));
            }
            if (run_forward(g, y, 0)) expect_values(names[i], y, want[i], 4, 1e-6f);
            mm_graph_free(g);
        }
        CHECK(mm_activation_known("relu") && mm_activation_known("softmax") &&
                  mm_activation_known("linear") && mm_activation_known(NULL) &&
                  mm_activation_known("gelu") && mm_activation_known("log_softmax"),
              "known activations");
        CHECK(!mm_activation_known("xyz") && !mm_activation_known("Relu"), "unknown activations");
    }
    /* batchnorm inference with known moving stats, and training stats + moving update */
    {
        float x[4] = {1, 2, 3, 4}, gamma[2] = {2, 1}, beta[2] = {0.5f, -1}, mm[2] = {1, 2},
              mv[2] = {4, 1};
        const int sx[2] = {2, 2};
        mm_graph *g = mm_graph_new();
        mm_node *y = mm_g_batchnorm(g, param(g, "x", 2, sx, x), param(g, "g", 1, (int[]){2}, gamma),
                                    param(g, "b", 1, (int[]){2}, beta), param(g, "m", 1, (int[]){2}, mm),
                                    param(g, "v", 1, (int[]){2}, mv), 0.9f, 1e-3f);
        if (run_forward(g, y, 0)) {
            float want[4];
            for (int r = 0; r < 2; r++)
                for (int c = 0; c < 2; c++)
                    want[r * 2 + c] = gamma[c] * (x[r * 2 + c] - mm[c]) / sqrtf(mv[c] + 1e-3f) + beta[c];
            expect_values("batchnorm inference", y, want, 4, 1e-6f);
            CHECK(mm[0] == 1 && mv[0] == 4, "inference leaves moving stats alone");
            /* training: batch mean [2,3], biased var [1,1] */
            g->training = 1;
            mm_graph_forward(g);
            for (int r = 0; r < 2; r++)
                for (int c = 0; c < 2; c++) {
                    float mean = c ? 3.0f : 2.0f;
                    want[r * 2 + c] = gamma[c] * (x[r * 2 + c] - mean) / sqrtf(1.0f + 1e-3f) + beta[c];
                }
            expect_values("batchnorm training", y, want, 4, 1e-6f);
            CHECK(close_to(mm[0], 0.9f * 1 + 0.1f * 2, 1e-6f) && close_to(mm[1], 0.9f * 2 + 0.1f * 3, 1e-6f),
                  "moving mean %g %g", mm[0], mm[1]);
            CHECK(close_to(mv[0], 0.9f * 4 + 0.1f * 1, 1e-6f) && close_to(mv[1], 0.9f * 1 + 0.1f * 1, 1e-6f),
                  "moving var %g %g", mv[0], mv[1]);
        }
        mm_graph_free(g);
    }
    /* reductions and concat */
    {
        float a[6] = {1, 2, 3, 4, 5, 6};
        const int sa[2] = {2, 3};
        struct {
            int axis, keep, mean;
            int ndim, d0, d1;
            float want[6];
            size_t n;
        } cases[] = {
            {0, 0, 0, 1, 3, 0, {5, 7, 9}, 3},
            {1, 1, 0, 2, 2, 1, {6, 15}, 2},
            {-1, 0, 1, 1, 2, 0, {2, 5}, 2},
            {0, 1, 1, 2, 1, 3, {2.5f, 3.5f, 4.5f}, 3},
            {MM_AXIS_ALL, 0, 0, 1, 1, 0, {21}, 1},
            {MM_AXIS_ALL, 1, 1, 1, 1, 0, {3.5f}, 1},
        };
        for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
            mm_graph *g = mm_graph_new();
            mm_node *x = param(g, "a", 2, sa, a);
            mm_node *y = cases[i].mean ? mm_g_mean(g, x, cases[i].axis, cases[i].keep)
                                       : mm_g_sum(g, x, cases[i].axis, cases[i].keep);
            char nm[64];
            snprintf(nm, sizeof nm, "%s axis %d keepdims %d", cases[i].mean ? "mean" : "sum",
                     cases[i].axis, cases[i].keep);
            if (run_forward(g, y, 0)) {
                expect_values(nm, y, cases[i].want, cases[i].n, 1e-7f);
                CHECK(y->ndim == cases[i].ndim && y->shape[0] == cases[i].d0 &&
                          (cases[i].ndim < 2 || y->shape[1] == cases[i].d1),
                      "%s: shape", nm);
            }
            mm_graph_free(g);
        }
        mm_graph *g = mm_graph_new();
        float b[4] = {7, 8, 9, 10};
        mm_node *xs[2] = {param(g, "a", 2, sa, a), param(g, "b", 2, (int[]){2, 2}, b)};
        mm_node *y = mm_g_concat(g, 2, xs, -1);
        if (run_forward(g, y, 0)) {
            const float want[10] = {1, 2, 3, 7, 8, 4, 5, 6, 9, 10};
            expect_values("concat axis -1", y, want, 10, 0);
            CHECK(y->shape[0] == 2 && y->shape[1] == 5, "concat shape");
        }
        mm_graph_free(g);
        g = mm_graph_new();
        float c[3] = {-1, -2, -3};
        mm_node *ys[2] = {param(g, "a", 2, sa, a), param(g, "c", 2, (int[]){1, 3}, c)};
        y = mm_g_concat(g, 2, ys, 0);
        if (run_forward(g, y, 0)) {
            const float want[9] = {1, 2, 3, 4, 5, 6, -1, -2, -3};
            expect_values("concat axis 0", y, want, 9, 0);
        }
        mm_graph_free(g);
    }
    /* l1l2 */
    {
        float w[4] = {1, -2, 0, 3};
        mm_graph *g = mm_graph_new();
        mm_node *y = mm_g_l1l2(g, param(g, "w", 1, (int[]){4}, w), 0.1f, 0.01f);
        if (run_forward(g, y, 0)) {
            const float want[1] = {0.1f * 6 + 0.01f * 14};
            expect_values("l1l2", y, want, 1, 1e-6f);
        }
        mm_graph_free(g);
    }
    /* dropout: inference identity; training drops about rate, scales the rest; the mask
     * changes with the step and is reproducible */
    {
        enum { N = 40000 };
        float *x = malloc(N * sizeof(float));
        for (int i = 0; i < N; i++) x[i] = 1.0f + (float)(i % 7);
        mm_graph *g = mm_graph_new();
        mm_node *y = mm_g_dropout(g, param(g, "x", 1, (int[]){N}, x), 0.25f);
        if (run_forward(g, y, 0)) {
            CHECK(memcmp(y->value, x, N * sizeof(float)) == 0, "dropout inference is identity");
            g->training = 1;
            g->step = 7;
            mm_graph_forward(g);
            int dropped = 0, bad = 0;
            for (int i = 0; i < N; i++) {
                if (y->value[i] == 0) dropped++;
                else if (!close_to(y->value[i], x[i] / 0.75f, 1e-6f)) bad++;
            }
            CHECK(bad == 0, "dropout: %d kept values not scaled by 1/(1-rate)", bad);
            CHECK(abs(dropped - N / 4) < N / 50, "dropout dropped %d of %d at rate 0.25", dropped, N);
            /* same step, fewer threads: same mask */
            float *first = malloc(N * sizeof(float));
            memcpy(first, y->value, N * sizeof(float));
            int keep_threads = g->threads;
            g->threads = 1;
            mm_graph_forward(g);
            CHECK(memcmp(first, y->value, N * sizeof(float)) == 0, "dropout mask depends on threads");
            g->threads = keep_threads;
            g->step = 8;
            mm_graph_forward(g);
            CHECK(memcmp(first, y->value, N * sizeof(float)) != 0, "dropout mask ignores the step");
            free(first);
        }
        mm_graph_free(g);
        free(x);
    }
}

/* ------------------------------------------------------------------ batched graphs */

/* Central-difference check of the params' gradients in a planned graph, at its current batch
 * and training mode. */
static void fd_graph(const char *name, mm_graph *g, mm_node *out, int np, mm_node **ps) {
    mm_rng rng = {777};
    float *r = malloc(out->size * sizeof(float));
    for (size_t k = 0; k < out->size; k++) r[k] = -1 + 2 * mm_rng_uniform(&rng);
    mm_graph_forward(g);
    memcpy(out->grad, r, out->size * sizeof(float));
    mm_graph_backward(g);
    double worst = 0;
    for (int i = 0; i < np; i++) {
        float *v = ps[i]->value;
        float *ana = malloc(ps[i]->size * sizeof(float));
        memcpy(ana, ps[i]->grad, ps[i]->size * sizeof(float));
        for (size_t k = 0; k < ps[i]->size; k++) {
            float keep = v[k];
            double eps = 1e-3 * fmax(1.0, fabs(keep)), lp = 0, lm = 0;
            v[k] = (float)(keep + eps);
            mm_graph_forward(g);
            for (size_t j = 0; j < out->size; j++) lp += (double)out->value[j] * r[j];
            v[k] = (float)(keep - eps);
            mm_graph_forward(g);
            for (size_t j = 0; j < out->size; j++) lm += (double)out->value[j] * r[j];
            v[k] = keep;
            double num = (lp - lm) / (2 * eps);
            double err = fabs(num - ana[k]) / fmax(1.0, fmax(fabs(num), fabs(ana[k])));
            if (err > worst) worst = err;
            if (err > TOL)
                fprintf(stderr, "%s: param %d elem %zu analytic %.6g numeric %.6g\n", name, i, k,
                        ana[k], num);
        }
        free(ana);
    }
    free(r);
    CHECK(worst <= TOL, "%s: gradient check max error %.3g", name, worst);
}

typedef struct pipe {
    mm_node *x, *out;
    mm_node *ps[5];
} pipe;

static float pv_bias[3], pv_scale[3], pv_gamma[3], pv_beta[3], pv_mm[3], pv_mv[3];
static float pg[5][3];

/* x [B,3] -> +bias[3] -> *scale[1,3] -> batchnorm -> concat with the pre-norm value ->
 * relu(dropout) + per-row mean -> tanh -> sum over the batch axis: [6] unbatched. */
static pipe build_pipe(mm_graph *g, int batched, int rows) {
    pipe p;
    const int c3[1] = {3}, s13[2] = {1, 3};
    p.x = mm_graph_input(g, "x", 2, (int[]){rows, 3}, batched);
    p.x->keep = 1; /* the input is written once and read by every forward */
    p.ps[0] = mm_graph_param(g, "bias", 1, c3, pv_bias, pg[0], 1);
    p.ps[1] = mm_graph_param(g, "scale", 2, s13, pv_scale, pg[1], 1);
    p.ps[2] = mm_graph_param(g, "gamma", 1, c3, pv_gamma, pg[2], 1);
    p.ps[3] = mm_graph_param(g, "beta", 1, c3, pv_beta, pg[3], 1);
    mm_node *mmn = mm_graph_param(g, "mm", 1, c3, pv_mm, NULL, 0);
    mm_node *mvn = mm_graph_param(g, "mv", 1, c3, pv_mv, NULL, 0);
    mm_node *h = mm_g_mul(g, mm_g_add(g, p.x, p.ps[0]), p.ps[1]);
    mm_node *bn = mm_g_batchnorm(g, h, p.ps[2], p.ps[3], mmn, mvn, 0.9f, 1e-3f);
    mm_node *cat = mm_g_concat(g, 2, (mm_node *[]){bn, h}, 1);
    mm_node *d = mm_g_relu(g, mm_g_dropout(g, cat, 0.2f));
    mm_node *m = mm_g_mean(g, d, -1, 1);
    mm_node *t = mm_g_tanh(g, mm_g_add(g, d, m));
    p.out = mm_g_sum(g, t, 0, 0);
    return p;
}

static void batched_graphs(void) {
    mm_rng rng = {99};
    for (int c = 0; c < 3; c++) {
        pv_bias[c] = mm_rng_uniform(&rng) - 0.5f;
        pv_scale[c] = 0.5f + mm_rng_uniform(&rng);
        pv_gamma[c] = 0.5f + mm_rng_uniform(&rng);
        pv_beta[c] = mm_rng_uniform(&rng) - 0.5f;
        pv_mm[c] = 0, pv_mv[c] = 1;
    }
    float xs[4 * 3];
    for (int i = 0; i < 12; i++) xs[i] = 2 * mm_rng_uniform(&rng) - 1;

    mm_graph *g = mm_graph_new();
    pipe p = build_pipe(g, 1, 4);
    CHECK(p.out != NULL, "batched pipeline: %s", mm_errmsg());
    if (!p.out) {
        mm_graph_free(g);
        return;
    }
    CHECK(!p.out->batched && p.out->ndim == 1 && p.out->shape[0] == 6, "sum over batch axis: unbatched [6]");
    g->external_seed = 1;
    CHECK_OK(mm_graph_plan(g, p.out, 1));
    g->training = 1;
    g->step = 3;
    for (int batch = 3; batch >= 2; batch--) {
        mm_graph_set_batch(g, batch);
        memcpy(p.x->value, xs, (size_t)batch * 3 * sizeof(float));
        char nm[64];
        snprintf(nm, sizeof nm, "batched pipeline, batch %d of 4", batch);
        fd_graph(nm, g, p.out, 4, p.ps);
        /* Same pipeline built unbatched for exactly this many rows must agree. */
        mm_graph_forward(g);
        float got[6];
        memcpy(got, p.out->value, sizeof got);
        float grads[4][3];
        memcpy(p.out->grad, (float[6]){1, -1, 0.5f, 2, -0.25f, 1}, 6 * sizeof(float));
        mm_graph_backward(g);
        for (int i = 0; i < 4; i++) memcpy(grads[i], pg[i], sizeof grads[i]);
        mm_graph *u = mm_graph_new();
        pipe q = build_pipe(u, 0, batch);
        u->external_seed = 1;
        CHECK_OK(mm_graph_plan(u, q.out, 1));
        u->training = 1;
        u->step = 3;
        memcpy(q.x->value, xs, (size_t)batch * 3 * sizeof(float));
        mm_graph_forward(u);
        for (int j = 0; j < 6; j++)
            CHECK(close_to(got[j], q.out->value[j], 1e-5f), "%s: out[%d] %g vs unbatched %g", nm, j,
                  got[j], q.out->value[j]);
        memcpy(q.out->grad, (float[6]){1, -1, 0.5f, 2, -0.25f, 1}, 6 * sizeof(float));
        mm_graph_backward(u);
        for (int i = 0; i < 4; i++)
            for (int c = 0; c < 3; c++)
                CHECK(close_to(grads[i][c], pg[i][c], 1e-4f), "%s: grad %d[%d] %g vs unbatched %g", nm, i,
                      c, grads[i][c], pg[i][c]);
        mm_graph_free(u);
    }
    mm_graph_free(g);

    /* A batch of 1 makes [B,300,3] + [B,1,3] a trailing (bias-like) broadcast that was not
     * one at capacity: the backward must not rely on a workspace that was never planned. */
    {
        static float x1v[4 * 300 * 3], x2v[4 * 3], pv[3] = {0.5f, -1.0f, 2.0f}, gp[3];
        for (int i = 0; i < 4 * 300 * 3; i++) x1v[i] = 2 * mm_rng_uniform(&rng) - 1;
        for (int i = 0; i < 12; i++) x2v[i] = 2 * mm_rng_uniform(&rng) - 1;
        mm_graph *h = mm_graph_new();
        mm_node *x1 = mm_graph_input(h, "x1", 3, (int[]){4, 300, 3}, 1);
        mm_node *x2 = mm_graph_input(h, "x2", 3, (int[]){4, 1, 3}, 1);
        mm_node *pp = mm_graph_param(h, "p", 3, (int[]){1, 1, 3}, pv, gp, 1);
        x1->keep = x2->keep = 1;
        mm_node *y = mm_g_tanh(h, mm_g_add(h, x1, mm_g_mul(h, x2, pp)));
        h->external_seed = 1;
        CHECK(y != NULL, "batch-1 broadcast graph: %s", mm_errmsg());
        if (y && mm_graph_plan(h, y, 1) == MM_OK) {
            memcpy(x1->value, x1v, sizeof x1v);
            memcpy(x2->value, x2v, sizeof x2v);
            for (int batch = 1; batch <= 4; batch += 3) {
                mm_graph_set_batch(h, batch);
                char nm[64];
                snprintf(nm, sizeof nm, "[B,300,3] + [B,1,3]*p at batch %d", batch);
                fd_graph(nm, h, y, 1, &pp);
            }
        }
        mm_graph_free(h);
    }

    /* Batchnorm in inference mode: affine backward with the moving statistics. */
    {
        float xv[15], gam[3] = {1.5f, 0.7f, -1.2f}, bet[3] = {0.1f, 0.2f, 0.3f}, mmv[3] = {0.2f, -0.1f, 0.5f},
              mvv[3] = {0.5f, 2.0f, 1.2f}, gx[15], gg[3], gb[3];
        for (int i = 0; i < 15; i++) xv[i] = 2 * mm_rng_uniform(&rng) - 1;
        mm_graph *h = mm_graph_new();
        const int c3[1] = {3};
        mm_node *ps[3] = {mm_graph_param(h, "x", 2, (int[]){5, 3}, xv, gx, 1),
                          mm_graph_param(h, "gamma", 1, c3, gam, gg, 1),
                          mm_graph_param(h, "beta", 1, c3, bet, gb, 1)};
        mm_node *y = mm_g_batchnorm(h, ps[0], ps[1], ps[2], mm_graph_param(h, "mm", 1, c3, mmv, NULL, 0),
                                    mm_graph_param(h, "mv", 1, c3, mvv, NULL, 0), 0.99f, 1e-3f);
        h->external_seed = 1;
        CHECK_OK(mm_graph_plan(h, y, 1));
        h->training = 0;
        fd_graph("batchnorm inference", h, y, 3, ps);
        CHECK(mmv[0] == 0.2f && mvv[2] == 1.2f, "inference must not touch the moving stats");
        mm_graph_free(h);
    }

    /* Broadcasting with a batched input: shapes checked for every batch size. */
    {
        mm_graph *h = mm_graph_new();
        mm_node *x = mm_graph_input(h, "x", 2, (int[]){4, 3}, 1);
        float w[12] = {0};
        mm_node *full = param(h, "w", 2, (int[]){4, 3}, w);
        CHECK(mm_g_add(h, x, full) == NULL && tu_contains(mm_errmsg(), "broadcast"),
              "batched [4,3] + unbatched [4,3] must fail: %s", mm_errmsg());
        mm_node *row = param(h, "r", 2, (int[]){1, 3}, w);
        mm_node *ok = mm_g_add(h, row, x);
        CHECK(ok && ok->batched && ok->shape[0] == 4 && ok->shape[1] == 3, "[1,3] + batched [4,3]");
        mm_node *r3 = param(h, "r3", 3, (int[]){2, 1, 3}, w);
        CHECK(mm_g_mul(h, x, r3) == NULL && tu_contains(mm_errmsg(), "broadcast"),
              "rank-3 param with batched rank-2 must fail: %s", mm_errmsg());
        mm_node *s0 = mm_g_sum(h, x, 0, 1);
        CHECK(s0 && !s0->batched && s0->shape[0] == 1, "sum over batch axis is unbatched");
        mm_node *s1 = mm_g_mean(h, x, 1, 0);
        CHECK(s1 && s1->batched && s1->ndim == 1, "mean over axis 1 stays batched");
        mm_node *pair[2] = {x, x};
        CHECK(mm_g_concat(h, 2, pair, 0) == NULL, "concat of batched inputs along the batch axis");
        pair[1] = full;
        CHECK(mm_g_concat(h, 2, pair, 1) == NULL && tu_contains(mm_errmsg(), "batched"),
              "concat of batched with unbatched: %s", mm_errmsg());
        mm_graph_free(h);
    }
}

/* ------------------------------------------------------------------ determinism */

/* Large enough to take the parallel paths; results must be bit-identical for 1 and 3 threads. */
static void run_big(int threads, float *out_val, float *out_grads, size_t *ngrads) {
    enum { R = 400, C = 100 };
    static float xv[R * C], bias[C], gam[C], bet[C], mmv[C], mvv[C];
    static float gx[R * C], gbias[C], ggam[C], gbet[C];
    mm_rng rng = {5};
    for (int i = 0; i < R * C; i++) xv[i] = 2 * mm_rng_uniform(&rng) - 1;
    for (int c = 0; c < C; c++)
        bias[c] = mm_rng_uniform(&rng), gam[c] = 1 + mm_rng_uniform(&rng), bet[c] = 0, mmv[c] = 0, mvv[c] = 1;
    mm_set_threads(threads);
    mm_graph *g = mm_graph_new();
    const int sx[2] = {R, C}, sc[1] = {C};
    mm_node *x = mm_graph_param(g, "x", 2, sx, xv, gx, 1);
    mm_node *b = mm_graph_param(g, "b", 1, sc, bias, gbias, 1);
    mm_node *ga = mm_graph_param(g, "g", 1, sc, gam, ggam, 1);
    mm_node *be = mm_graph_param(g, "be", 1, sc, bet, gbet, 1);
    mm_node *h = mm_g_add(g, x, b);
    h = mm_g_batchnorm(g, h, ga, be, param(g, "mm", 1, sc, mmv), param(g, "mv", 1, sc, mvv), 0.9f, 1e-3f);
    h = mm_g_gelu(g, mm_g_dropout(g, h, 0.1f));
    h = mm_g_softmax(g, h);
    mm_node *s = mm_g_mean(g, mm_g_mul(g, h, mm_g_sum(g, x, 0, 1)), 0, 0);
    mm_node *l = mm_g_add(g, mm_g_sum(g, s, MM_AXIS_ALL, 0), mm_g_l1l2(g, x, 1e-3f, 1e-3f));
    mm_node *loss = mm_g_add(g, l, mm_g_sum(g, mm_g_div(g, mm_g_relu(g, h), b), MM_AXIS_ALL, 0));
    loss = mm_g_add(g, loss, mm_g_sum(g, mm_g_dot(g, h, x), MM_AXIS_ALL, 0)); /* dot's row split */
    CHECK(loss != NULL, "big graph: %s", mm_errmsg());
    if (loss && mm_graph_plan(g, loss, 1) == MM_OK) {
        g->training = 1;
        mm_graph_forward(g);
        mm_graph_backward(g);
        out_val[0] = loss->value[0];
        size_t k = 0;
        memcpy(out_grads + k, gx, sizeof gx), k += R * C;
        memcpy(out_grads + k, gbias, sizeof gbias), k += C;
        memcpy(out_grads + k, ggam, sizeof ggam), k += C;
        memcpy(out_grads + k, gbet, sizeof gbet), k += C;
        memcpy(out_grads + k, mmv, sizeof mmv), k += C;
        *ngrads = k;
    }
    mm_graph_free(g);
}

static void determinism(void) {
    int keep = mm_get_threads();
    size_t n = 400 * 100 + 4 * 100, n1 = 0, n3 = 0;
    float v1 = 0, v3 = 1;
    float *g1 = calloc(n, sizeof(float)), *g3 = calloc(n, sizeof(float));
    run_big(1, &v1, g1, &n1);
    run_big(3, &v3, g3, &n3);
    CHECK(n1 == n && n3 == n, "determinism runs completed");
    CHECK(memcmp(&v1, &v3, sizeof v1) == 0 && isfinite(v1), "loss differs across threads: %.9g vs %.9g",
          v1, v3);
    CHECK(memcmp(g1, g3, n * sizeof(float)) == 0, "gradients differ across thread counts");
    free(g1), free(g3);
    mm_set_threads(keep);
}

/* ------------------------------------------------------------------ bad input */

static void bad_inputs(void) {
    mm_graph *g = mm_graph_new();
    float v[64] = {0};
    mm_node *a = param(g, "a", 2, (int[]){2, 3}, v), *b = param(g, "b", 1, (int[]){4}, v);
    CHECK(mm_g_add(g, a, b) == NULL, "add [2,3]+[4] must fail");
    CHECK(tu_contains(mm_errmsg(), "broadcast") && tu_contains(mm_errmsg(), "[2,3]") &&
              tu_contains(mm_errmsg(), "[4]"),
          "message: %s", mm_errmsg());
    CHECK(mm_g_div(g, b, a) == NULL && tu_contains(mm_errmsg(), "div"), "div message: %s", mm_errmsg());
    CHECK(mm_g_dot(g, a, b) == NULL && tu_contains(mm_errmsg(), "dot: inputs must have the same shape"),
          "dot [2,3].[4]: %s", mm_errmsg());

    CHECK(mm_g_activation(g, a, "xyz", 0) == NULL, "unknown activation must fail");
    CHECK(tu_contains(mm_errmsg(), "unknown activation 'xyz'"), "message: %s", mm_errmsg());

    CHECK(mm_g_dropout(g, a, 1.5f) == NULL && tu_contains(mm_errmsg(), "rate"), "dropout 1.5: %s",
          mm_errmsg());
    CHECK(mm_g_dropout(g, a, -0.1f) == NULL, "dropout -0.1 must fail");
    CHECK(mm_g_dropout(g, a, 1.0f) == NULL, "dropout 1.0 must fail");

    mm_node *c = param(g, "c", 2, (int[]){3, 3}, v);
    mm_node *xs[2] = {a, c};
    CHECK(mm_g_concat(g, 2, xs, 1) == NULL && tu_contains(mm_errmsg(), "concat"), "concat mismatch: %s",
          mm_errmsg());
    CHECK(mm_g_concat(g, 2, xs, 0) != NULL, "concat [2,3] and [3,3] along axis 0 works");
    CHECK(mm_g_concat(g, 2, xs, 2) == NULL && tu_contains(mm_errmsg(), "axis"), "concat axis 2: %s",
          mm_errmsg());
    mm_node *r3 = param(g, "r3", 3, (int[]){2, 3, 1}, v);
    xs[1] = r3;
    CHECK(mm_g_concat(g, 2, xs, 1) == NULL && tu_contains(mm_errmsg(), "rank"), "concat rank: %s",
          mm_errmsg());

    CHECK(mm_g_sum(g, a, 2, 0) == NULL && tu_contains(mm_errmsg(), "axis"), "sum axis 2: %s", mm_errmsg());
    CHECK(mm_g_mean(g, a, -3, 0) == NULL, "mean axis -3 must fail");

    mm_node *c2 = param(g, "c2", 1, (int[]){2}, v), *c3 = param(g, "c3", 1, (int[]){3}, v);
    CHECK(mm_g_batchnorm(g, a, c2, c3, c3, c3, 0.99f, 1e-3f) == NULL && tu_contains(mm_errmsg(), "gamma"),
          "batchnorm gamma size: %s", mm_errmsg());
    CHECK(mm_g_batchnorm(g, a, c3, c3, c3, c3, 0.99f, 0) == NULL, "batchnorm epsilon 0 must fail");
    CHECK(mm_g_l1l2(g, a, -1, 0) == NULL, "l1l2 negative factor must fail");

    /* NULL inputs propagate without replacing the first message */
    mm_error(MM_ERR_SHAPE, "first failure");
    CHECK(mm_g_add(g, NULL, a) == NULL && mm_g_mul(g, a, NULL) == NULL && mm_g_relu(g, NULL) == NULL &&
              mm_g_activation(g, NULL, "relu", 0) == NULL && mm_g_activation(g, NULL, "xyz", 0) == NULL &&
              mm_g_dropout(g, NULL, 0.5f) == NULL && mm_g_sum(g, NULL, 0, 0) == NULL &&
              mm_g_l1l2(g, NULL, 1, 1) == NULL && mm_g_batchnorm(g, a, NULL, c3, c3, c3, 0.9f, 1e-3f) == NULL,
          "NULL input must give NULL");
    xs[1] = NULL;
    CHECK(mm_g_concat(g, 2, xs, 0) == NULL, "concat with a NULL input");
    CHECK(strcmp(mm_errmsg(), "first failure") == 0, "message replaced: %s", mm_errmsg());
    mm_graph_free(g);
}

int main(void) {
    grad_elementwise();
    grad_dot();
    grad_activations();
    grad_dropout();
    grad_batchnorm();
    grad_concat();
    grad_reduce();
    grad_l1l2();
    grad_owner_ops();
    shared_gradient_buffers();
    forward_values();
    batched_graphs();
    determinism();
    bad_inputs();
    return tu_finish();
}
