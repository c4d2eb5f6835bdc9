/* Conv1D and global pooling over time (src/ops/conv1d.c, src/ops/pool1d.c): finite-difference
 * gradient checks (plain and accumulating, with and without masks), hand-computed forward
 * values, the Conv1D / GlobalMaxPooling1D / masked GlobalAveragePooling1D layers in a model
 * (shapes, JSON round trip, training), and bad input. PyTorch parity: test_parity. */
#include "ops/ops.h"
#include "testutil.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define TOL 1e-2

typedef struct ccfg {
    int kind; /* 0 conv1d, 1 conv1d without bias, 2 avg pool, 3 max pool */
    int mask;
} ccfg;

/* row 0: 3 real steps then padding, row 1: all real, row 2: none */
static const float MASK[3 * 4] = {1, 1, 1, 0, 1, 1, 1, 1, 0, 0, 0, 0};

static mm_node *build(mm_graph *g, mm_node **p, void *c) {
    const ccfg *k = c;
    if (k->kind <= 1) return mm_g_conv1d(g, p[0], p[1], k->kind == 0 ? p[2] : NULL);
    return mm_g_global_pool1d(g, p[0], k->mask ? p[1] : NULL, k->kind == 3);
}

/* Plain and accumulate variant (every differentiable param also feeds a later consumer). */
static void gc(const char *name, int n, const tu_param_spec *s, ccfg k) { tu_gradcheck_acc(name, n, s, build, &k, TOL); }

/* Pairwise-distinct values (no ties for max). */
static float *distinct(size_t n) {
    float *v = malloc(n * sizeof(float));
    for (size_t i = 0; i < n; i++) {
        size_t j = (i * 37u + 11u) % n;
        v[i] = ((float)j + 0.5f) / (float)n * 2.0f - 1.0f;
    }
    return v;
}

static void gradchecks(void) {
    tu_param_spec s[3] = {{3, {3, 6, 4}, -1, 1, 0, NULL}, {3, {3, 4, 5}, -0.5f, 0.5f, 0, NULL}, {1, {5}, -0.5f, 0.5f, 0, NULL}};
    gc("conv1d k3", 3, s, (ccfg){0, 0});
    gc("conv1d k3 no bias", 2, s, (ccfg){1, 0});
    tu_param_spec s1[2] = {{3, {2, 5, 3}, -1, 1, 0, NULL}, {3, {1, 3, 2}, -1, 1, 0, NULL}};
    gc("conv1d k1", 2, s1, (ccfg){1, 0});
    tu_param_spec s5[2] = {{3, {2, 5, 3}, -1, 1, 0, NULL}, {3, {5, 3, 2}, -1, 1, 0, NULL}};
    gc("conv1d k = T", 2, s5, (ccfg){1, 0});

    float *x = distinct(3 * 4 * 5);
    tu_param_spec p[2] = {{3, {3, 4, 5}, 0, 0, 0, x}, {2, {3, 4}, 0, 0, 1, MASK}};
    gc("global avg pool1d", 1, p, (ccfg){2, 0});
    gc("global avg pool1d masked", 2, p, (ccfg){2, 1});
    gc("global max pool1d", 1, p, (ccfg){3, 0});
    gc("global max pool1d masked", 2, p, (ccfg){3, 1});
    free(x);
}

static int run(mm_graph *g, mm_node *out) {
    mm_status st = mm_graph_plan(g, out, 0);
    CHECK(st == MM_OK, "plan: %s", mm_errmsg());
    if (st) return 0;
    mm_graph_forward(g);
    return 1;
}

static void forward_values(void) {
    /* x [1, 4, 1] = 1 2 3 4, w [2, 1, 1] = (1, 10), b = 0.5 -> 21.5 32.5 43.5 */
    {
        mm_graph *g = mm_graph_new();
        float xv[4] = {1, 2, 3, 4}, wv[2] = {1, 10}, bv[1] = {0.5f};
        mm_node *x = mm_graph_param(g, "x", 3, (int[]){1, 4, 1}, xv, NULL, 0);
        mm_node *w = mm_graph_param(g, "w", 3, (int[]){2, 1, 1}, wv, NULL, 0);
        mm_node *b = mm_graph_param(g, "b", 1, (int[]){1}, bv, NULL, 0);
        mm_node *y = mm_g_conv1d(g, x, w, b);
        if (y && run(g, y)) {
            CHECK(y->size == 3 && y->shape[1] == 3, "conv1d output [1, 3, 1], got size %zu", y->size);
            const float want[3] = {21.5f, 32.5f, 43.5f};
            for (int i = 0; i < 3 && i < (int)y->size; i++)
                CHECK(fabsf(y->value[i] - want[i]) < 1e-5f, "conv1d[%d] = %g, want %g", i, y->value[i], want[i]);
        }
        mm_graph_free(g);
    }
    /* pooling of x [2, 3, 2] with mask rows (1 1 0), (0 0 0) */
    {
        mm_graph *g = mm_graph_new();
        float xv[12] = {1, -5, 3, 2, 100, 100, 7, 8, 9, 9, 9, 9}, mv[6] = {1, 1, 0, 0, 0, 0};
        mm_node *x = mm_graph_param(g, "x", 3, (int[]){2, 3, 2}, xv, NULL, 0);
        mm_node *m = mm_graph_param(g, "m", 2, (int[]){2, 3}, mv, NULL, 0);
        mm_node *avg = mm_g_global_pool1d(g, x, m, 0), *mx = mm_g_global_pool1d(g, x, m, 1);
        mm_node *all = mm_g_global_pool1d(g, x, NULL, 1);
        mm_node *sum = mm_g_add(g, mm_g_add(g, avg, mx), all);
        if (sum) avg->keep = mx->keep = all->keep = 1; /* read after the run */
        if (sum && run(g, sum)) {
            const float wa[4] = {2, -1.5f, 0, 0}, wm[4] = {3, 2, 0, 0}, wl[4] = {100, 100, 9, 9};
            for (int i = 0; i < 4; i++) {
                CHECK(avg->value[i] == wa[i], "masked avg[%d] = %g, want %g", i, avg->value[i], wa[i]);
                CHECK(mx->value[i] == wm[i], "masked max[%d] = %g, want %g", i, mx->value[i], wm[i]);
                CHECK(all->value[i] == wl[i], "max[%d] = %g, want %g", i, all->value[i], wl[i]);
            }
        }
        mm_graph_free(g);
    }
}

static void bad_inputs(void) {
    mm_graph *g = mm_graph_new();
    float v[128] = {0};
    mm_node *x = mm_graph_param(g, "x", 3, (int[]){2, 3, 4}, v, NULL, 0);
    mm_node *w = mm_graph_param(g, "w", 3, (int[]){2, 5, 6}, v, NULL, 0);
    CHECK(mm_g_conv1d(g, x, w, NULL) == NULL && tu_contains(mm_errmsg(), "channels"), "conv1d channels: %s", mm_errmsg());
    mm_node *w4 = mm_graph_param(g, "w4", 3, (int[]){4, 4, 6}, v, NULL, 0);
    CHECK(mm_g_conv1d(g, x, w4, NULL) == NULL && tu_contains(mm_errmsg(), "exceeds"), "conv1d width: %s", mm_errmsg());
    mm_node *m = mm_graph_param(g, "m", 2, (int[]){2, 4}, v, NULL, 0);
    CHECK(mm_g_global_pool1d(g, x, m, 1) == NULL && tu_contains(mm_errmsg(), "mask"), "pool mask shape: %s", mm_errmsg());
    mm_node *x2 = mm_graph_param(g, "x2", 2, (int[]){2, 3}, v, NULL, 0);
    CHECK(mm_g_global_pool1d(g, x2, NULL, 0) == NULL && tu_contains(mm_errmsg(), "rank"), "pool rank: %s", mm_errmsg());
    mm_graph_free(g);

    mm_model *md = mm_sequential();
    CHECK(mm_add(md, mm_Embedding(.input_dim = 10, .output_dim = 4, .input_shape = {3})) == MM_OK, "embedding");
    CHECK(mm_add(md, mm_Conv1D(.filters = 2, .kernel_size = 4)) != MM_OK && tu_contains(mm_errmsg(), "kernel_size"),
          "Conv1D wider than the input: %s", mm_errmsg());
    mm_model_free(md);
    md = mm_sequential();
    mm_add(md, mm_Embedding(.input_dim = 10, .output_dim = 4, .input_shape = {3}));
    CHECK(mm_add(md, mm_Conv1D(.filters = 2, .kernel_size = 2, .padding = "same")) != MM_OK &&
              tu_contains(mm_errmsg(), "valid"),
          "Conv1D same padding: %s", mm_errmsg());
    mm_model_free(md);
}

/* Kim-style CNN and a masked-average bag of embeddings as models: shapes, JSON round trip
 * with identical predictions, and a few training steps that fit a separable toy task. */
static void layers(void) {
    const int T = 8, V = 20, N = 64;
    mm_model *m = mm_functional("kim");
    int x = mm_input(m, 1, (int[]){T});
    int e = mm_call(m, mm_Embedding(.input_dim = V, .output_dim = 6), x);
    int a = mm_call(m, mm_GlobalMaxPooling1D(), mm_call(m, mm_Conv1D(.filters = 4, .kernel_size = 3, .activation = "relu"), e));
    int b = mm_call(m, mm_GlobalMaxPooling1D(), mm_call(m, mm_Conv1D(.filters = 4, .kernel_size = 2, .activation = "relu"), e));
    int h = mm_call(m, mm_Concatenate(), a, b);
    mm_call(m, mm_Dense(.units = 2, .activation = "softmax"), mm_call(m, mm_Dropout(.rate = 0.5f), h));
    CHECK(mm_count_params(m) == V * 6 + (3 * 6 * 4 + 4) + (2 * 6 * 4 + 4) + 8 * 2 + 2, "CNN params: %ld", mm_count_params(m));

    mm_model *f = mm_functional("bag");
    int fx = mm_input(f, 1, (int[]){T});
    int fe = mm_call(f, mm_Embedding(.input_dim = V, .output_dim = 5, .mask_zero = 1), fx);
    mm_call(f, mm_Dense(.units = 2, .activation = "softmax"), mm_call(f, mm_GlobalAveragePooling1D(), fe));

    /* toy data: class 1 iff token 1 appears; zeros pad the tail */
    mm_dataset d = {0};
    mm_array_alloc(&d.x, 2, (int[]){N, T});
    mm_array_alloc(&d.y, 1, (int[]){N});
    d.num_classes = 2;
    uint64_t s = 7;
    for (int i = 0; i < N; i++) {
        int len = 2 + i % (T - 1), pos = i % len;
        for (int t = 0; t < T; t++) {
            s = s * 6364136223846793005ull + 1442695040888963407ull;
            d.x.data[i * T + t] = t < len ? (float)(2 + (s >> 33) % (V - 2)) : 0.0f;
        }
        d.y.data[i] = (float)(i % 2);
        if (i % 2) d.x.data[i * T + pos] = 1;
    }
    mm_model *models[2] = {m, f};
    for (int k = 0; k < 2; k++) {
        mm_model *md = models[k];
        CHECK(mm_compile(md, .optimizer = "adam", .learning_rate = 0.05f) == MM_OK, "compile: %s", mm_errmsg());
        CHECK(mm_fit(md, &d, .epochs = 30, .batch_size = 16, .seed = 1) == MM_OK, "fit: %s", mm_errmsg());
        mm_eval_result r;
        CHECK(mm_evaluate(md, &d, 16, 1, &r) == MM_OK, "evaluate: %s", mm_errmsg());
        CHECK(r.accuracy >= 0.95, "%s toy accuracy %.3f", k ? "bag" : "cnn", r.accuracy);
        mm_eval_result_free(&r);
        const char *path = tu_tmp_path(k ? "bag.safetensors" : "cnn.safetensors");
        CHECK(mm_model_save(md, path, 0) == MM_OK, "save: %s", mm_errmsg());
        mm_model *l = NULL;
        CHECK(mm_model_load(path, &l) == MM_OK, "load: %s", mm_errmsg());
        mm_array p1 = {0}, p2 = {0};
        if (l && mm_predict(md, &d.x, 32, &p1) == MM_OK && mm_predict(l, &d.x, 32, &p2) == MM_OK)
            CHECK(memcmp(p1.data, p2.data, p1.size * sizeof(float)) == 0, "reloaded model predicts the same");
        mm_array_free(&p1), mm_array_free(&p2);
        mm_model_free(l);
    }
    /* masked average ignores padding: same tokens with more padding give the same output */
    mm_array one = {0}, out = {0};
    mm_array_alloc(&one, 2, (int[]){2, T});
    memset(one.data, 0, one.size * sizeof(float));
    one.data[0] = 3, one.data[1] = 4;
    one.data[T] = 3, one.data[T + 1] = 4, one.data[T + 2] = 3, one.data[T + 3] = 4;
    if (mm_predict(f, &one, 2, &out) == MM_OK)
        CHECK(fabsf(out.data[0] - out.data[2]) < 1e-6f, "masked mean: %g vs %g", out.data[0], out.data[2]);
    mm_array_free(&one), mm_array_free(&out);
    mm_dataset_free(&d);
    mm_model_free(m);
    mm_model_free(f);
}

int main(void) {
    gradchecks();
    forward_values();
    bad_inputs();
    layers();
    return tu_finish();
}
