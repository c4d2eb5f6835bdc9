/* The "gelu_tanh" activation (GPT-2's gelu_new, PyTorch's gelu(approximate="tanh")):
 * forward values and derivatives against PyTorch (float64), gradient checks by central
 * differences, and the activation as a Dense layer option that survives the architecture JSON. */
#include "ops/ops.h"
#include "testutil.h"

#include <stdlib.h>
#include <string.h>

static mm_node *b_gelu_tanh(mm_graph *g, mm_node **p, void *c) {
    (void)c;
    return mm_g_activation(g, p[0], "gelu_tanh", 0);
}

/* Reference from PyTorch 1.13 in float64:
 *   x = [1, -1, 0.5, -2, 3, -4, 0]
 *   F.gelu(x, approximate="tanh") and its derivative (autograd). */
static const float X[7] = {1.0f, -1.0f, 0.5f, -2.0f, 3.0f, -4.0f, 0.0f};
static const double WANT_Y[7] = {0.8411919906082768, -0.15880800939172324, 0.34571400982514394, -0.04540230591222494,
                                 2.996362607918227,  -7.024594819227126e-05, 0.0};
static const double WANT_DY[7] = {1.0829640838457826, -0.08296408384578252, 0.8673699035346424, -0.0860992566236183,
                                  1.0115841666309695, -0.00033512319712218684, 0.5};

static void values_and_derivatives(void) {
    float x[7], gx[7] = {0};
    memcpy(x, X, sizeof x);
    mm_graph *g = mm_graph_new();
    mm_node *p = mm_graph_param(g, "x", 1, (int[]){7}, x, gx, 1);
    mm_node *y = mm_g_activation(g, p, "gelu_tanh", 0);
    mm_node *loss = mm_g_sum(g, y, MM_AXIS_ALL, 0);
    CHECK(y && loss, "build: %s", mm_errmsg());
    if (loss && mm_graph_plan(g, loss, 1) == MM_OK) {
        g->training = 1;
        mm_graph_forward(g);
        float yv[7];
        memcpy(yv, y->value, sizeof yv); /* the planner may reuse y's buffer in the backward */
        mm_graph_backward(g);
        for (int i = 0; i < 7; i++) {
            CHECK(fabs(yv[i] - WANT_Y[i]) <= 2e-7 * fmax(1.0, fabs(WANT_Y[i])), "gelu_tanh(%g) = %.9g, torch %.9g",
                  X[i], yv[i], WANT_Y[i]);
            CHECK(fabs(gx[i] - WANT_DY[i]) <= 1e-6 * fmax(1.0, fabs(WANT_DY[i])), "gelu_tanh'(%g) = %.9g, torch %.9g",
                  X[i], gx[i], WANT_DY[i]);
        }
        /* differs from the exact (erf) gelu: gelu(1) = 0.8413447 */
        CHECK(fabsf(yv[0] - 0.8413447f) > 1e-4f, "gelu_tanh is not the erf form");
    } else {
        CHECK(0, "plan: %s", mm_errmsg());
    }
    mm_graph_free(g);
}

/* Large tensors run the parallel loop (PAR_MIN elements); results must match the formula. */
static void large_and_extreme(void) {
    const int n = 70000;
    float *x = malloc((size_t)n * sizeof(float));
    for (int i = 0; i < n; i++) x[i] = -30.0f + 60.0f * (float)i / (float)(n - 1);
    mm_graph *g = mm_graph_new();
    mm_node *p = mm_graph_param(g, "x", 1, (int[]){n}, x, NULL, 0);
    mm_node *y = mm_g_activation(g, p, "gelu_tanh", 0);
    if (y && mm_graph_plan(g, y, 0) == MM_OK) {
        mm_graph_forward(g);
        double worst = 0;
        int finite = 1;
        for (int i = 0; i < n; i++) {
            double v = x[i], want = 0.5 * v * (1 + tanh(0.7978845608028654 * (v + 0.044715 * v * v * v)));
            worst = fmax(worst, fabs(y->value[i] - want) / fmax(1.0, fabs(want)));
            finite &= isfinite(y->value[i]);
        }
        CHECK(finite, "gelu_tanh stays finite on [-30, 30]");
        CHECK(worst < 1e-6, "gelu_tanh on [-30, 30]: max relative error %.3g", worst);
    } else {
        CHECK(0, "large: %s", mm_errmsg());
    }
    mm_graph_free(g);
    free(x);
}

static void gradchecks(void) {
    tu_param_spec s[1] = {{2, {3, 5}, -3.0f, 3.0f, 0, NULL}};
    tu_gradcheck("gelu_tanh [3,5]", 1, s, b_gelu_tanh, NULL, 1e-2);
    tu_param_spec s2[1] = {{3, {2, 3, 4}, -0.5f, 0.5f, 0, NULL}};
    tu_gradcheck("gelu_tanh near 0 [2,3,4]", 1, s2, b_gelu_tanh, NULL, 1e-2);
}

static void as_layer(void) {
    CHECK(mm_activation_known("gelu_tanh"), "gelu_tanh is a known activation");
    mm_model *m = mm_sequential();
    CHECK_OK(mm_add(m, mm_Dense(.units = 3, .activation = "gelu_tanh", .input_shape = {4})));
    char *json = mm_model_to_json(m);
    CHECK(json && strstr(json, "\"gelu_tanh\""), "architecture names the activation: %s", json ? json : "(null)");
    mm_model *m2 = NULL;
    CHECK_OK(mm_model_from_json(json, &m2));
    free(json);
    if (m2) {
        mm_model_init_weights(m, 7);
        mm_model_init_weights(m2, 7);
        mm_array x, y1 = {0}, y2 = {0};
        mm_array_alloc(&x, 2, (int[]){2, 4});
        for (size_t i = 0; i < x.size; i++) x.data[i] = (float)i * 0.3f - 1.0f;
        CHECK_OK(mm_predict(m, &x, 2, &y1));
        CHECK_OK(mm_predict(m2, &x, 2, &y2));
        int same = y1.size == y2.size && y1.size == 6;
        for (size_t i = 0; same && i < y1.size; i++) same = y1.data[i] == y2.data[i];
        CHECK(same, "rebuilt Dense(gelu_tanh) predicts the same");
        mm_array_free(&x), mm_array_free(&y1), mm_array_free(&y2);
    }
    mm_model_free(m2);
    mm_model_free(m);
}

int main(void) {
    values_and_derivatives();
    large_and_extreme();
    gradchecks();
    as_layer();
    return tu_finish();
}
