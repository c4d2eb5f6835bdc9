/* Recurrent ops (src/ops/rnn.c): gradient checks for SimpleRNN, LSTM, GRU and last/first_step
 * (masks, go_backwards, want_cell, zero-masked outputs, no bias, accumulate variants), forward
 * semantics (masked steps carry the state, go_backwards alignment, hand-computed values), a
 * batched graph run below its capacity, determinism across runs and thread counts, and
 * bad-shape errors. PyTorch parity is in test_parity_rnn.c. */
#include "ops/ops.h"
#include "testutil.h"

#include <stdlib.h>
#include <string.h>

#define TOL 1e-2
#define B_ 2
#define T_ 3
#define D_ 3
#define H_ 4

/* row 0 right-padded (1 1 0), row 1 left-padded (0 1 1) */
static const float MASK[B_ * T_] = {1, 1, 0, 0, 1, 1};
/* row 0 with a hole (1 0 1), row 1 fully masked */
static const float MASK2[B_ * T_] = {1, 0, 1, 0, 0, 0};

typedef struct rcfg {
    int cell, flags, mask, bias, step; /* step: 0 none, 1 last_step, 2 first_step */
    const float *mask_values;
} rcfg;

static int gates(int cell) { return cell == MM_RNN_LSTM ? 4 : cell == MM_RNN_GRU ? 3 : 1; }

/* params: x, W, U, [b], [mask] */
static mm_node *b_rnn(mm_graph *g, mm_node **p, void *c) {
    rcfg *k = c;
    int i = 3;
    mm_node *b = k->bias ? p[i++] : NULL, *m = k->mask ? p[i++] : NULL;
    mm_node *y = mm_g_rnn(g, k->cell, p[0], m, p[1], p[2], b, k->flags);
    if (k->step == 1) y = mm_g_last_step(g, y, m);
    if (k->step == 2) y = mm_g_first_step(g, y, m);
    return y;
}

/* ctx: int *, 1 = params are (seq, mask) */
static mm_node *b_last(mm_graph *g, mm_node **p, void *c) { return mm_g_last_step(g, p[0], *(int *)c ? p[1] : NULL); }
static mm_node *b_first(mm_graph *g, mm_node **p, void *c) { return mm_g_first_step(g, p[0], *(int *)c ? p[1] : NULL); }

/* Runs the check plain and in the accumulate variant. */
static void gc(const char *name, int n, const tu_param_spec *s, tu_build_fn fn, void *ctx) {
    tu_gradcheck_acc(name, n, s, fn, ctx, TOL);
}

static void gc_rnn(const char *name, rcfg k) {
    const int GH = gates(k.cell) * H_;
    tu_param_spec s[5];
    int n = 0;
    memset(s, 0, sizeof s);
    s[n++] = (tu_param_spec){3, {B_, T_, D_}, -1, 1, 0, NULL};
    s[n++] = (tu_param_spec){2, {D_, GH}, -0.6f, 0.6f, 0, NULL};
    s[n++] = (tu_param_spec){2, {H_, GH}, -0.6f, 0.6f, 0, NULL};
    if (k.bias) {
        if (k.cell == MM_RNN_GRU) s[n++] = (tu_param_spec){2, {2, GH}, -0.5f, 0.5f, 0, NULL};
        else s[n++] = (tu_param_spec){1, {GH}, -0.5f, 0.5f, 0, NULL};
    }
    if (k.mask) {
        if (!k.mask_values) k.mask_values = MASK;
        s[n++] = (tu_param_spec){2, {B_, T_}, 0, 0, 1, k.mask_values};
    }
    gc(name, n, s, b_rnn, &k);
}

static void gradchecks(void) {
    static const int cells[3] = {MM_RNN_SIMPLE, MM_RNN_LSTM, MM_RNN_GRU};
    static const char *names[3] = {"simple_rnn", "lstm", "gru"};
    char nm[128];
    for (int c = 0; c < 3; c++) {
        const int cell = cells[c];
        for (int back = 0; back < 2; back++)
            for (int mask = 0; mask < 2; mask++) {
                snprintf(nm, sizeof nm, "%s%s%s", names[c], back ? " backwards" : "", mask ? " masked" : "");
                gc_rnn(nm, (rcfg){cell, back ? MM_RNN_BACKWARDS : 0, mask, 1, 0, NULL});
            }
        snprintf(nm, sizeof nm, "%s no bias", names[c]);
        gc_rnn(nm, (rcfg){cell, 0, 0, 0, 0, NULL});
        snprintf(nm, sizeof nm, "%s masked zero outputs (hole, empty row)", names[c]);
        gc_rnn(nm, (rcfg){cell, MM_RNN_ZERO_MASKED, 1, 1, 0, MASK2});
        snprintf(nm, sizeof nm, "%s masked -> last_step", names[c]);
        gc_rnn(nm, (rcfg){cell, MM_RNN_ZERO_MASKED, 1, 1, 1, NULL});
        snprintf(nm, sizeof nm, "%s backwards masked -> first_step", names[c]);
        gc_rnn(nm, (rcfg){cell, MM_RNN_BACKWARDS | MM_RNN_ZERO_MASKED, 1, 1, 2, NULL});
    }
    gc_rnn("lstm want_cell", (rcfg){MM_RNN_LSTM, MM_RNN_CELL, 0, 1, 0, NULL});
    gc_rnn("lstm want_cell backwards masked", (rcfg){MM_RNN_LSTM, MM_RNN_CELL | MM_RNN_BACKWARDS, 1, 1, 0, NULL});
    gc_rnn("lstm want_cell masked zero -> last_step",
           (rcfg){MM_RNN_LSTM, MM_RNN_CELL | MM_RNN_ZERO_MASKED, 1, 1, 1, MASK2});
    gc_rnn("lstm -> last_step (no mask)", (rcfg){MM_RNN_LSTM, 0, 0, 1, 1, NULL});

    /* last_step / first_step on a plain sequence */
    for (int first = 0; first < 2; first++)
        for (int mask = 0; mask < 2; mask++) {
            tu_param_spec s[2] = {{3, {B_, T_, 5}, 0, 0, 0, NULL}, {2, {B_, T_}, 0, 0, 1, MASK2}};
            snprintf(nm, sizeof nm, "%s%s", first ? "first_step" : "last_step", mask ? " masked" : "");
            gc(nm, 1 + mask, s, first ? b_first : b_last, &mask);
        }
}

/* ------------------------------------------------------------------ forward semantics */

typedef struct net {
    mm_graph *g;
    mm_node *x, *m, *y;
} net;

/* An inference graph whose params (x, mask, weights) point at the caller's arrays; runs forward once. */
static net build_net(int cell, int flags, int B, int T, int D, int H, const float *xv, const float *mv,
                     const float *W, const float *U, const float *b) {
    net r = {0};
    const int GH = gates(cell) * H;
    r.g = mm_graph_new();
    int xs[3] = {B, T, D}, ms[2] = {B, T}, ws[2] = {D, GH}, us[2] = {H, GH}, bs[2] = {2, GH};
    r.x = mm_graph_param(r.g, "x", 3, xs, (float *)xv, NULL, 0);
    r.m = mv ? mm_graph_param(r.g, "m", 2, ms, (float *)mv, NULL, 0) : NULL;
    mm_node *wn = mm_graph_param(r.g, "W", 2, ws, (float *)W, NULL, 0);
    mm_node *un = mm_graph_param(r.g, "U", 2, us, (float *)U, NULL, 0);
    mm_node *bn = NULL;
    if (b)
        bn = cell == MM_RNN_GRU ? mm_graph_param(r.g, "b", 2, bs, (float *)b, NULL, 0)
                                : mm_graph_param(r.g, "b", 1, &bs[1], (float *)b, NULL, 0);
    r.y = mm_g_rnn(r.g, cell, r.x, r.m, wn, un, bn, flags);
    CHECK(r.y != NULL, "build: %s", mm_errmsg());
    if (r.y) {
        CHECK_OK(mm_graph_plan(r.g, r.y, 0));
        mm_graph_forward(r.g);
    }
    return r;
}

static float *rnd(size_t n, float scale, uint64_t seed) {
    mm_rng r = {seed};
    float *v = malloc(n * sizeof(float));
    for (size_t i = 0; i < n; i++) v[i] = scale * (2 * mm_rng_uniform(&r) - 1);
    return v;
}

static void forward_checks(void) {
    /* SimpleRNN by hand: D = H = 1. */
    {
        float x[3] = {0.5f, -1.0f, 2.0f}, W = 0.7f, U = -0.4f, b = 0.1f;
        net r = build_net(MM_RNN_SIMPLE, 0, 1, 3, 1, 1, x, NULL, &W, &U, &b);
        float h1 = tanhf(0.5f * W + b), h2 = tanhf(-1.0f * W + h1 * U + b), h3 = tanhf(2.0f * W + h2 * U + b);
        if (r.y)
            CHECK(fabsf(r.y->value[0] - h1) < 1e-6f && fabsf(r.y->value[1] - h2) < 1e-6f &&
                      fabsf(r.y->value[2] - h3) < 1e-6f,
                  "simple_rnn by hand: %g %g %g vs %g %g %g", r.y->value[0], r.y->value[1], r.y->value[2], h1, h2, h3);
        mm_graph_free(r.g);
        /* backwards: h at position 2 first */
        r = build_net(MM_RNN_SIMPLE, MM_RNN_BACKWARDS, 1, 3, 1, 1, x, NULL, &W, &U, &b);
        float g3 = tanhf(2.0f * W + b), g2 = tanhf(-1.0f * W + g3 * U + b), g1 = tanhf(0.5f * W + g2 * U + b);
        if (r.y)
            CHECK(fabsf(r.y->value[0] - g1) < 1e-6f && fabsf(r.y->value[1] - g2) < 1e-6f &&
                      fabsf(r.y->value[2] - g3) < 1e-6f,
                  "simple_rnn backwards by hand: %g %g %g vs %g %g %g", r.y->value[0], r.y->value[1], r.y->value[2],
                  g1, g2, g3);
        mm_graph_free(r.g);
    }
    /* LSTM by hand: D = H = 1, one step: c = i*g, h = o*tanh(c). */
    {
        float x[1] = {0.8f}, W[4] = {0.3f, -0.2f, 0.5f, 0.9f}, U[4] = {0}, b[4] = {0.1f, 1.0f, -0.1f, 0.2f};
        net r = build_net(MM_RNN_LSTM, MM_RNN_CELL, 1, 1, 1, 1, x, NULL, W, U, b);
        float sg[4];
        for (int k = 0; k < 4; k++) sg[k] = 0.8f * W[k] + b[k];
        float i = 1 / (1 + expf(-sg[0])), g = tanhf(sg[2]), o = 1 / (1 + expf(-sg[3]));
        float c = i * g, h = o * tanhf(c);
        if (r.y)
            CHECK(fabsf(r.y->value[0] - h) < 1e-6f && fabsf(r.y->value[1] - c) < 1e-6f, "lstm by hand: h %g c %g vs %g %g",
                  r.y->value[0], r.y->value[1], h, c);
        mm_graph_free(r.g);
    }
    /* Masking: masked steps carry the state (output = previous output, 0 before any real
     * step), zero-masked outputs are 0, real steps after a hole continue from the carried
     * state; unmasked rows equal the run without a mask. */
    {
        const int B = 3, T = 5, D = 3, H = 4;
        static const float mask[15] = {1, 1, 1, 1, 1, 1, 1, 0, 0, 1, 0, 1, 1, 0, 0};
        float *x = rnd((size_t)B * T * D, 1, 1), *W = rnd((size_t)D * 16, 0.5f, 2), *U = rnd((size_t)H * 16, 0.5f, 3),
              *b = rnd(32, 0.3f, 4);
        for (int cell = 0; cell < 3; cell++) {
            int cf = cell == MM_RNN_LSTM ? MM_RNN_CELL : 0, F = cf ? 2 * H : H;
            for (int back = 0; back < 2; back++) {
                int fl = cf | (back ? MM_RNN_BACKWARDS : 0);
                net a = build_net(cell, fl, B, T, D, H, x, NULL, W, U, b);
                net m = build_net(cell, fl, B, T, D, H, x, mask, W, U, b);
                net z = build_net(cell, fl | MM_RNN_ZERO_MASKED, B, T, D, H, x, mask, W, U, b);
                if (!a.y || !m.y || !z.y) continue;
                CHECK(memcmp(a.y->value, m.y->value, (size_t)T * F * sizeof(float)) == 0,
                      "cell %d back %d: an all-real row differs from the unmasked run", cell, back);
                int bad_carry = 0, bad_zero = 0, bad_real = 0;
                for (int r = 0; r < B; r++)
                    for (int s = 0; s < T; s++) {
                        int t = back ? T - 1 - s : s, prev = back ? t + 1 : t - 1;
                        const float *ym = m.y->value + ((size_t)r * T + t) * F, *yz = z.y->value + ((size_t)r * T + t) * F;
                        if (mask[r * T + t] == 0) {
                            for (int j = 0; j < F; j++) {
                                float want = s == 0 ? 0.0f : m.y->value[((size_t)r * T + prev) * F + j];
                                bad_carry += ym[j] != want;
                                bad_zero += yz[j] != 0.0f;
                            }
                        } else {
                            bad_real += memcmp(ym, yz, (size_t)F * sizeof(float)) != 0;
                        }
                    }
                CHECK(bad_carry == 0, "cell %d back %d: %d masked outputs are not the carried state", cell, back, bad_carry);
                CHECK(bad_zero == 0, "cell %d back %d: %d zero-masked outputs are not 0", cell, back, bad_zero);
                CHECK(bad_real == 0, "cell %d back %d: zero-masking changed %d real steps", cell, back, bad_real);
                /* go_backwards == forward run on the time-reversed input, outputs reversed back */
                if (back) {
                    float *xr = malloc((size_t)B * T * D * sizeof(float)), *mr = malloc(sizeof mask);
                    for (int r = 0; r < B; r++)
                        for (int t = 0; t < T; t++) {
                            memcpy(xr + ((size_t)r * T + t) * D, x + ((size_t)r * T + (T - 1 - t)) * D, (size_t)D * sizeof(float));
                            mr[r * T + t] = mask[r * T + T - 1 - t];
                        }
                    net f = build_net(cell, cf, B, T, D, H, xr, mr, W, U, b);
                    int diff = 0;
                    for (int r = 0; r < B && f.y; r++)
                        for (int t = 0; t < T; t++)
                            diff += memcmp(m.y->value + ((size_t)r * T + t) * F, f.y->value + ((size_t)r * T + T - 1 - t) * F,
                                           (size_t)F * sizeof(float)) != 0;
                    CHECK(diff == 0, "cell %d: go_backwards is not the reversed run re-reversed (%d steps differ)", cell, diff);
                    mm_graph_free(f.g);
                    free(xr), free(mr);
                }
                mm_graph_free(a.g), mm_graph_free(m.g), mm_graph_free(z.g);
            }
        }
        free(x), free(W), free(U), free(b);
    }
    /* last_step / first_step values */
    {
        int ss[3] = {B_, T_, 2}, ms[2] = {B_, T_};
        float seq[B_ * T_ * 2];
        for (int i = 0; i < B_ * T_ * 2; i++) seq[i] = (float)(i + 1);
        mm_graph *g = mm_graph_new();
        mm_node *s = mm_graph_param(g, "s", 3, ss, seq, NULL, 0);
        mm_node *m = mm_graph_param(g, "m", 2, ms, (float *)MASK, NULL, 0);
        mm_node *m2 = mm_graph_param(g, "m2", 2, ms, (float *)MASK2, NULL, 0);
        mm_node *o[6] = {mm_g_last_step(g, s, NULL), mm_g_last_step(g, s, m), mm_g_last_step(g, s, m2),
                         mm_g_first_step(g, s, NULL), mm_g_first_step(g, s, m), mm_g_first_step(g, s, m2)};
        mm_node *all = mm_g_concat(g, 6, o, 1);
        CHECK(all != NULL, "last_step graph: %s", mm_errmsg());
        if (all) {
            CHECK_OK(mm_graph_plan(g, all, 0));
            mm_graph_forward(g);
            /* row 0 positions: 1-2, 3-4, 5-6; row 1: 7-8, 9-10, 11-12 */
            static const float want[2][12] = {{5, 6, 3, 4, 5, 6, 1, 2, 1, 2, 1, 2}, {11, 12, 11, 12, 0, 0, 7, 8, 9, 10, 0, 0}};
            CHECK(memcmp(all->value, want, sizeof want) == 0, "last/first_step values: %g %g ... %g %g", all->value[0],
                  all->value[1], all->value[22], all->value[23]);
        }
        mm_graph_free(g);
    }
}

/* ------------------------------------------------------------------ batched runs */

/* A training graph over a batched input; returns the loss and copies the W gradient out. */
static float run_batched(int cell, int flags, int cap, int batch, int T, int D, int H, const float *x,
                         const float *mask, float *W, float *U, float *b, float *dW, float *y_out) {
    const int GH = gates(cell) * H;
    mm_graph *g = mm_graph_new();
    int xs[3] = {cap, T, D}, ms[2] = {cap, T}, ws[2] = {D, GH}, us[2] = {H, GH}, bs[1] = {GH};
    float *dU = calloc((size_t)H * GH, sizeof(float)), *db = calloc((size_t)2 * GH, sizeof(float));
    mm_node *xn = mm_graph_input(g, "x", 3, xs, 1), *mn = mask ? mm_graph_input(g, "m", 2, ms, 1) : NULL;
    mm_node *wn = mm_graph_param(g, "W", 2, ws, W, dW, 1), *un = mm_graph_param(g, "U", 2, us, U, dU, 1);
    mm_node *bn = cell == MM_RNN_GRU ? mm_graph_param(g, "b", 2, (int[]){2, GH}, b, db, 1)
                                     : mm_graph_param(g, "b", 1, bs, b, db, 1);
    mm_node *y = mm_g_rnn(g, cell, xn, mn, wn, un, bn, flags);
    mm_node *loss = mm_g_mean(g, mm_g_mul(g, y, y), MM_AXIS_ALL, 0);
    float out = NAN;
    CHECK(loss != NULL, "batched build: %s", mm_errmsg());
    if (loss && mm_graph_plan(g, loss, 1) == MM_OK) {
        mm_graph_set_batch(g, batch);
        memcpy(xn->value, x, (size_t)batch * T * D * sizeof(float));
        if (mn) memcpy(mn->value, mask, (size_t)batch * T * sizeof(float));
        g->training = 1;
        mm_graph_forward(g);
        mm_graph_backward(g);
        out = loss->value[0];
        if (y_out) memcpy(y_out, y->value, y->size * sizeof(float));
    }
    mm_graph_free(g);
    free(dU), free(db);
    return out;
}

static void batched_checks(void) {
    /* capacity 5 run at batch 2 == capacity 2 */
    {
        const int T = 4, D = 3, H = 5;
        static const float mask[8] = {1, 1, 0, 0, 0, 1, 1, 1};
        float *x = rnd(5 * T * D, 1, 11), *W = rnd(D * 4 * H, 0.5f, 12), *U = rnd(H * 4 * H, 0.5f, 13),
              *b = rnd(8 * H, 0.3f, 14);
        for (int cell = 0; cell < 3; cell++) {
            size_t nw = (size_t)D * gates(cell) * H;
            float *d1 = calloc(nw, sizeof(float)), *d2 = calloc(nw, sizeof(float));
            float l1 = run_batched(cell, MM_RNN_BACKWARDS, 5, 2, T, D, H, x, mask, W, U, b, d1, NULL);
            float l2 = run_batched(cell, MM_RNN_BACKWARDS, 2, 2, T, D, H, x, mask, W, U, b, d2, NULL);
            CHECK(isfinite(l1) && l1 == l2, "cell %d: loss at batch 2 of 5 %.9g vs capacity 2 %.9g", cell, l1, l2);
            CHECK(memcmp(d1, d2, nw * sizeof(float)) == 0, "cell %d: dW at batch 2 of 5 differs from capacity 2", cell);
            free(d1), free(d2);
        }
        free(x), free(W), free(U), free(b);
    }
    /* big enough for the threaded paths: bit-identical across runs and for 1, 2, 3 threads */
    {
        const int B = 40, T = 12, D = 24, H = 48; /* 3 batch chunks, 2 dW and 3 dU row chunks */
        float *x = rnd((size_t)B * T * D, 1, 21), *W = rnd((size_t)D * 4 * H, 0.2f, 22), *U = rnd((size_t)H * 4 * H, 0.2f, 23),
              *b = rnd((size_t)8 * H, 0.2f, 24), *mask = malloc((size_t)B * T * sizeof(float));
        for (int r = 0; r < B; r++)
            for (int t = 0; t < T; t++) mask[r * T + t] = t < T - r % T; /* right padding */
        int keep = mm_get_threads();
        for (int cell = 0; cell < 3; cell++) {
            size_t nw = (size_t)D * gates(cell) * H, ny = (size_t)B * T * H;
            float *dref = malloc(nw * sizeof(float)), *d = malloc(nw * sizeof(float));
            float *yref = malloc(ny * sizeof(float)), *yv = malloc(ny * sizeof(float));
            mm_set_threads(1);
            float lref = run_batched(cell, 0, B, B, T, D, H, x, mask, W, U, b, dref, yref);
            for (int th = 1; th <= 3; th++) {
                mm_set_threads(th);
                float l = run_batched(cell, 0, B, B, T, D, H, x, mask, W, U, b, d, yv);
                CHECK(isfinite(l) && l == lref && memcmp(d, dref, nw * sizeof(float)) == 0 &&
                          memcmp(yv, yref, ny * sizeof(float)) == 0,
                      "cell %d: %d threads: loss %.9g vs %.9g (1 thread) or dW / y differ", cell, th, l, lref);
            }
            free(dref), free(d), free(yref), free(yv);
        }
        mm_set_threads(keep);
        free(x), free(W), free(U), free(b), free(mask);
    }
}

/* ------------------------------------------------------------------ errors */

static void error_checks(void) {
    mm_graph *g = mm_graph_new();
    float buf[512] = {0};
    mm_node *x = mm_graph_param(g, "x", 3, (int[]){2, 3, 3}, buf, NULL, 0);
    mm_node *x2 = mm_graph_param(g, "x2", 2, (int[]){2, 3}, buf, NULL, 0);
    mm_node *W16 = mm_graph_param(g, "W16", 2, (int[]){3, 16}, buf, NULL, 0);
    mm_node *W12 = mm_graph_param(g, "W12", 2, (int[]){3, 12}, buf, NULL, 0);
    mm_node *U16 = mm_graph_param(g, "U16", 2, (int[]){4, 16}, buf, NULL, 0);
    mm_node *U12 = mm_graph_param(g, "U12", 2, (int[]){4, 12}, buf, NULL, 0);
    mm_node *b16 = mm_graph_param(g, "b16", 1, (int[]){16}, buf, NULL, 0);
    mm_node *b12 = mm_graph_param(g, "b12", 1, (int[]){12}, buf, NULL, 0);
    mm_node *b2x12 = mm_graph_param(g, "b2x12", 2, (int[]){2, 12}, buf, NULL, 0);
    mm_node *m23 = mm_graph_param(g, "m23", 2, (int[]){2, 3}, buf, NULL, 0);
    mm_node *m32 = mm_graph_param(g, "m32", 2, (int[]){3, 2}, buf, NULL, 0);
    mm_node *mb = mm_graph_input(g, "mb", 2, (int[]){2, 3}, 1);

#define EXPECT_FAIL(expr, needle)                                                                     \
    do {                                                                                              \
        mm_node *r_ = (expr);                                                                         \
        CHECK(r_ == NULL && tu_contains(mm_errmsg(), needle), "%s: got %p, message '%s' (want '%s')", \
              #expr, (void *)r_, mm_errmsg(), needle);                                                \
    } while (0)

    EXPECT_FAIL(mm_g_lstm(g, x, NULL, W12, U16, b16, 0, 0), "lstm: kernel must be [3, 16], got [3, 12]");
    EXPECT_FAIL(mm_g_lstm(g, x, NULL, W16, U12, b16, 0, 0), "lstm: recurrent kernel must be [units, 4*units], got [4, 12]");
    EXPECT_FAIL(mm_g_lstm(g, x, NULL, W16, U16, b12, 0, 0), "lstm: bias must be [16], got [12]");
    EXPECT_FAIL(mm_g_lstm(g, x2, NULL, W16, U16, b16, 0, 0), "lstm: input must be [batch, time, features], got [2, 3]");
    EXPECT_FAIL(mm_g_lstm(g, x, m32, W16, U16, b16, 0, 0), "lstm: mask must be [2, 3] (batch, time), got [3, 2]");
    EXPECT_FAIL(mm_g_lstm(g, x, mb, W16, U16, b16, 0, 0), "mask must be batched exactly when the input is");
    EXPECT_FAIL(mm_g_gru(g, x, NULL, W12, U12, b12, 0), "gru: bias must be [2, 12] (input bias; recurrent bias), got [12]");
    EXPECT_FAIL(mm_g_gru(g, x, NULL, W16, U12, b2x12, 0), "gru: kernel must be [3, 12], got [3, 16]");
    EXPECT_FAIL(mm_g_simple_rnn(g, x, NULL, W12, U12, NULL, 0), "simple_rnn: recurrent kernel must be [units, 1*units]");
    EXPECT_FAIL(mm_g_rnn(g, MM_RNN_GRU, x, NULL, W12, U12, b2x12, MM_RNN_CELL), "gru: want_cell is only for lstm");
    EXPECT_FAIL(mm_g_rnn(g, 7, x, NULL, W12, U12, b2x12, 0), "unknown cell kind 7");
    EXPECT_FAIL(mm_g_last_step(g, x2, NULL), "last_step: sequence must be [batch, time, features], got [2, 3]");
    EXPECT_FAIL(mm_g_first_step(g, x, m32), "first_step: mask must be [2, 3] (batch, time), got [3, 2]");
    EXPECT_FAIL(mm_g_lstm(g, NULL, NULL, W16, U16, b16, 0, 0), "");
    CHECK(mm_g_lstm(g, x, m23, W16, U16, b16, 1, 1) != NULL, "valid lstm: %s", mm_errmsg());
    CHECK(mm_g_gru(g, x, m23, W12, U12, b2x12, 1) != NULL, "valid gru: %s", mm_errmsg());
    CHECK(mm_g_gru(g, x, NULL, W12, U12, NULL, 0) != NULL, "valid gru without bias: %s", mm_errmsg());
    mm_graph_free(g);
}

int main(void) {
    gradchecks();
    forward_checks();
    batched_checks();
    error_checks();
    return tu_finish();
}
