/* Optimizer rules not covered by the PyTorch fixtures: learning-rate schedules (step,
 * cosine, linear warm-up), global-norm clipping, RMSprop and AdamW's decoupled decay, each
 * against values computed here by hand from Keras's formulas. */
#include "testutil.h"
#include "optim/optim.h"

#include <math.h>

static int near(double a, double b) { return fabs(a - b) <= 1e-6 * fmax(1.0, fabs(b)); }

static void test_schedules(void) {
    mm_optimizer *o;
    CHECK_OK(mm_optimizer_new(&(mm_compile_args){.optimizer = "sgd", .learning_rate = 0.1f, .schedule = "step",
                                                 .decay_steps = 10, .decay_rate = 0.5f},
                              4, &o));
    CHECK(near(mm_optimizer_lr(o, 0), 0.1) && near(mm_optimizer_lr(o, 9), 0.1) && near(mm_optimizer_lr(o, 10), 0.05) &&
              near(mm_optimizer_lr(o, 25), 0.025),
          "step schedule %g %g %g", mm_optimizer_lr(o, 0), mm_optimizer_lr(o, 10), mm_optimizer_lr(o, 25));
    mm_optimizer_free(o);
    CHECK_OK(mm_optimizer_new(&(mm_compile_args){.optimizer = "adam", .learning_rate = 0.01f, .schedule = "cosine",
                                                 .decay_steps = 100, .alpha = 0.1f, .warmup_steps = 10},
                              4, &o));
    /* warm-up: lr * (step + 1) / warmup; then cosine from lr to alpha * lr over decay_steps */
    CHECK(near(mm_optimizer_lr(o, 0), 0.001) && near(mm_optimizer_lr(o, 4), 0.005), "warm-up %g", mm_optimizer_lr(o, 4));
    CHECK(near(mm_optimizer_lr(o, 10), 0.01), "cosine start %g", mm_optimizer_lr(o, 10));
    CHECK(near(mm_optimizer_lr(o, 60), 0.01 * (0.1 + 0.9 * 0.5 * (1 + cos(M_PI * 0.5)))), "cosine middle %g",
          mm_optimizer_lr(o, 60));
    CHECK(near(mm_optimizer_lr(o, 110), 0.001) && near(mm_optimizer_lr(o, 500), 0.001), "cosine end %g",
          mm_optimizer_lr(o, 500));
    mm_optimizer_free(o);
    CHECK_ERR(mm_optimizer_new(&(mm_compile_args){.optimizer = "adam", .schedule = "cosine"}, 4, &o), MM_ERR_ARG,
              "decay_steps");
    CHECK_ERR(mm_optimizer_new(&(mm_compile_args){.optimizer = "adam", .schedule = "wavy", .decay_steps = 3}, 4, &o),
              MM_ERR_ARG, "unknown learning-rate schedule");
}

static void test_clip_rmsprop_adamw(void) {
    mm_optimizer *o;
    float w[2] = {1, -1}, g[2] = {3, 4}; /* |g| = 5 */
    CHECK_OK(mm_optimizer_new(&(mm_compile_args){.optimizer = "sgd", .learning_rate = 1.0f, .global_clipnorm = 1.0f},
                              2, &o));
    mm_optimizer_step(o, w, g);
    CHECK(near(w[0], 1 - 0.6) && near(w[1], -1 - 0.8), "clipped sgd step %g %g", w[0], w[1]);
    mm_optimizer_free(o);

    float w2[1] = {2}, g2[1] = {0.5f};
    CHECK_OK(mm_optimizer_new(&(mm_compile_args){.optimizer = "rmsprop", .learning_rate = 0.01f}, 1, &o));
    mm_optimizer_step(o, w2, g2);
    double v = 0.1 * 0.25, expect = 2 - 0.01 * 0.5 / sqrt(v + 1e-7);
    CHECK(near(w2[0], expect), "rmsprop %g vs %g", w2[0], expect);
    mm_optimizer_free(o);

    float w3[1] = {2}, g3[1] = {0};
    CHECK_OK(mm_optimizer_new(&(mm_compile_args){.optimizer = "adamw", .learning_rate = 0.1f, .weight_decay = 0.5f}, 1, &o));
    mm_optimizer_step(o, w3, g3); /* zero gradient: only the decoupled decay acts */
    CHECK(near(w3[0], 2 - 0.1 * 0.5 * 2), "adamw decay %g", w3[0]);
    mm_optimizer_free(o);
    CHECK_ERR(mm_optimizer_new(&(mm_compile_args){.optimizer = "sgd", .momentum = 1.5f}, 1, &o), MM_ERR_ARG,
              "out of range");
}

int main(void) {
    test_schedules();
    test_clip_rmsprop_adamw();
    return tu_finish();
}
