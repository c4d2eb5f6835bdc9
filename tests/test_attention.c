/* Transformer ops: layernorm, multi-head attention (+ the KV-cache decode step), sequence
 * cross-entropy with ignore_index, sinusoidal and learned positions.
 *
 * Gradient checks (plain and accumulate variants), attention against a naive double-precision
 * reference (several row blocks, masks, fully masked rows), the decode step against the full
 * causal op, dropout determinism, batched graphs run below their capacity, bit-identical
 * results across thread counts, and bad-argument errors. */
#include "ops/ops.h"
#include "testutil.h"

#include <stdlib.h>
#include <string.h>

#define TOL 1e-2

/* ------------------------------------------------------------------ gradcheck helpers */

/* Runs the check plain and in the accumulate variant. */
static void gc(const char *name, int n, const tu_param_spec *s, tu_build_fn fn, void *ctx) {
    tu_gradcheck_acc(name, n, s, fn, ctx, TOL);
}

typedef struct att_cfg {
    int heads, causal, mask;
    float rate;
} att_cfg;

static mm_node *b_layernorm(mm_graph *g, mm_node **p, void *c) {
    return mm_g_layernorm(g, p[0], p[1], p[2], *(float *)c);
}
static mm_node *b_attention(mm_graph *g, mm_node **p, void *c) {
    att_cfg *k = c;
    return mm_g_attention(g, p[0], p[1], p[2], k->mask ? p[3] : NULL, k->heads, k->causal, k->rate);
}
/* Self-attention on one node: q, k and v share a gradient buffer. */
static mm_node *b_self_attention(mm_graph *g, mm_node **p, void *c) {
    att_cfg *k = c;
    return mm_g_attention(g, p[0], p[0], p[0], k->mask ? p[1] : NULL, k->heads, k->causal, k->rate);
}
static mm_node *b_seqce(mm_graph *g, mm_node **p, void *c) {
    return mm_g_sequence_cross_entropy(g, p[0], p[1], *(int *)c);
}
static mm_node *b_sinus(mm_graph *g, mm_node **p, void *c) { (void)c; return mm_g_sinusoidal_positions(g, p[0]); }
static mm_node *b_addpos(mm_graph *g, mm_node **p, void *c) { (void)c; return mm_g_add_positions(g, p[0], p[1]); }

static void gradchecks(void) {
    float eps = 1e-5f;
    tu_param_spec ln[] = {SPEC_R(-2, 2, 3, 2, 3, 5), SPEC_R(0.5f, 1.5f, 1, 5), SPEC(1, 5)};
    gc("layernorm [2,3,5]", 3, ln, b_layernorm, &eps);
    float eps3 = 1e-3f;
    tu_param_spec ln2[] = {SPEC_R(-2, 2, 2, 4, 7), SPEC_R(0.5f, 1.5f, 1, 7), SPEC(1, 7)};
    gc("layernorm [4,7] eps 1e-3", 3, ln2, b_layernorm, &eps3);

    /* B=2, T=4, C=6, 2 heads. Masks: batch 0 pads one key; batch 1 left-pads two keys, which
     * with causal leaves query rows 0 and 1 with no key at all. */
    static const float mask_causal[] = {1, 1, 1, 0, 0, 0, 1, 1};
    static const float mask_full[] = {1, 0, 1, 1, 0, 0, 0, 0}; /* batch 1: every key masked */
    tu_param_spec a3[] = {SPEC(3, 2, 4, 6), SPEC(3, 2, 4, 6), SPEC(3, 2, 4, 6)};
    tu_param_spec a4c[] = {SPEC(3, 2, 4, 6), SPEC(3, 2, 4, 6), SPEC(3, 2, 4, 6), SPEC_C(mask_causal, 2, 2, 4)};
    tu_param_spec a4f[] = {SPEC(3, 2, 4, 6), SPEC(3, 2, 4, 6), SPEC(3, 2, 4, 6), SPEC_C(mask_full, 2, 2, 4)};
    att_cfg c0 = {2, 0, 0, 0}, c1 = {2, 1, 0, 0}, c2 = {2, 1, 1, 0}, c3 = {2, 0, 1, 0};
    att_cfg c4 = {2, 1, 1, 0.3f}, c5 = {2, 0, 0, 0.3f};
    gc("attention", 3, a3, b_attention, &c0);
    gc("attention causal", 3, a3, b_attention, &c1);
    gc("attention causal + key mask (empty rows)", 4, a4c, b_attention, &c2);
    gc("attention key mask (fully masked batch)", 4, a4f, b_attention, &c3);
    gc("attention causal + mask + dropout 0.3", 4, a4c, b_attention, &c4);
    gc("attention dropout 0.3", 3, a3, b_attention, &c5);
    tu_param_spec as[] = {SPEC(3, 2, 4, 6), SPEC_C(mask_causal, 2, 2, 4)};
    gc("self-attention attention(x, x, x) causal + mask", 2, as, b_self_attention, &c2);
    /* Several row blocks (T > 64), causal, padded tail, dropout. */
    static float mask_long[67];
    for (int t = 0; t < 67; t++) mask_long[t] = t < 60;
    tu_param_spec al[] = {SPEC(3, 1, 67, 4), SPEC(3, 1, 67, 4), SPEC(3, 1, 67, 4), SPEC_C(mask_long, 2, 1, 67)};
    att_cfg cl = {2, 1, 1, 0.2f};
    gc("attention T=67 causal + mask + dropout", 4, al, b_attention, &cl);

    static const float targets[] = {1, -100, 4, 0, -100, -100, 2, 3};
    tu_param_spec ce[] = {SPEC_R(-3, 3, 3, 2, 4, 5), SPEC_C(targets, 2, 2, 4)};
    int ignore = -100;
    gc("sequence_cross_entropy ignore_index", 2, ce, b_seqce, &ignore);

    tu_param_spec sp[] = {SPEC(3, 2, 4, 6)};
    gc("sinusoidal_positions", 1, sp, b_sinus, NULL);
    tu_param_spec ap[] = {SPEC(3, 2, 3, 4), SPEC(2, 5, 4)};
    gc("add_positions (table rows 3..4 unused)", 2, ap, b_addpos, NULL);
}

/* ------------------------------------------------------------------ attention runs */

typedef struct att_run {
    int B, T, C, H, causal, training;
    float rate;
    uint64_t step;
    const float *q, *k, *v, *mask, *gy; /* gy NULL: forward only */
    float *out, *dq, *dk, *dv;          /* outputs */
} att_run;

static float *copyf(const float *x, size_t n) {
    float *y = malloc(n * sizeof(float));
    memcpy(y, x, n * sizeof(float));
    return y;
}

/* Builds q, k, v (and mask) as params, runs forward (and backward when gy). Returns 0 on a
 * build/plan failure. */
static int run_attention(const att_run *r) {
    const int shp[3] = {r->B, r->T, r->C}, mshp[2] = {r->B, r->T};
    const size_t n = (size_t)r->B * r->T * r->C;
    mm_graph *g = mm_graph_new();
    float *qv = copyf(r->q, n), *kv = copyf(r->k, n), *vv = copyf(r->v, n);
    float *mv = r->mask ? copyf(r->mask, (size_t)r->B * r->T) : NULL;
    mm_node *q = mm_graph_param(g, "q", 3, shp, qv, r->gy ? r->dq : NULL, 1);
    mm_node *k = mm_graph_param(g, "k", 3, shp, kv, r->gy ? r->dk : NULL, 1);
    mm_node *v = mm_graph_param(g, "v", 3, shp, vv, r->gy ? r->dv : NULL, 1);
    mm_node *m = mv ? mm_graph_param(g, "mask", 2, mshp, mv, NULL, 0) : NULL;
    mm_node *o = mm_g_attention(g, q, k, v, m, r->H, r->causal, r->rate);
    int ok = o != NULL;
    if (ok) {
        g->external_seed = 1;
        ok = mm_graph_plan(g, o, r->gy != NULL) == MM_OK;
    }
    if (ok) {
        g->training = r->training;
        g->step = r->step;
        mm_graph_forward(g);
        memcpy(r->out, o->value, n * sizeof(float));
        if (r->gy) {
            memcpy(o->grad, r->gy, n * sizeof(float));
            mm_graph_backward(g);
        }
    }
    CHECK(ok, "attention run failed: %s", mm_errmsg());
    mm_graph_free(g);
    free(qv), free(kv), free(vv), free(mv);
    return ok;
}

static float *randv(size_t n, mm_rng *rng, float scale) {
    float *x = malloc(n * sizeof(float));
    for (size_t i = 0; i < n; i++) x[i] = (2 * mm_rng_uniform(rng) - 1) * scale;
    return x;
}

static double max_abs_diff(const float *a, const float *b, size_t n) {
    double d = 0;
    for (size_t i = 0; i < n; i++) {
        double e = fabs((double)a[i] - (double)b[i]);
        if (!(e <= d)) d = e; /* NaN propagates */
    }
    return d;
}

/* Naive double-precision reference of the op's forward (no dropout). */
static void ref_attention(int B, int T, int C, int H, int causal, const float *mask, const float *q,
                          const float *k, const float *v, float *out) {
    const int hd = C / H;
    double *p = malloc((size_t)T * sizeof(double));
    for (int b = 0; b < B; b++)
        for (int h = 0; h < H; h++)
            for (int i = 0; i < T; i++) {
                double m = -INFINITY;
                for (int j = 0; j < T; j++) {
                    int ok = (!causal || j <= i) && (!mask || mask[b * T + j] != 0);
                    double s = -INFINITY;
                    if (ok) {
                        s = 0;
                        for (int d = 0; d < hd; d++)
                            s += (double)q[((size_t)b * T + i) * C + h * hd + d] *
                                 k[((size_t)b * T + j) * C + h * hd + d];
                        s /= sqrt((double)hd);
                    }
                    p[j] = s;
                    if (s > m) m = s;
                }
                double sum = 0;
                for (int j = 0; j < T; j++) sum += p[j] = m == -INFINITY ? 0 : exp(p[j] - m);
                for (int d = 0; d < hd; d++) {
                    double acc = 0;
                    for (int j = 0; j < T; j++) acc += p[j] * v[((size_t)b * T + j) * C + h * hd + d];
                    out[((size_t)b * T + i) * C + h * hd + d] = sum > 0 ? (float)(acc / sum) : 0.0f;
                }
            }
    free(p);
}

static void attention_values(void) {
    mm_rng rng = {7};
    /* T = 1: the only key is the query's own, so out = v. */
    {
        const int B = 2, T = 1, C = 6;
        float *q = randv(B * T * C, &rng, 1), *k = randv(B * T * C, &rng, 1), *v = randv(B * T * C, &rng, 1);
        float out[12];
        for (int causal = 0; causal < 2; causal++) {
            att_run r = {.B = B, .T = T, .C = C, .H = 2, .causal = causal, .q = q, .k = k, .v = v, .out = out};
            run_attention(&r);
            CHECK(max_abs_diff(out, v, 12) < 1e-6, "T=1 (causal %d): out != v (%.3g)", causal,
                  max_abs_diff(out, v, 12));
        }
        free(q), free(k), free(v);
    }
    /* Naive reference: T=70 (two row blocks), 3 heads, causal and not, with padding. */
    {
        const int B = 2, T = 70, C = 12, H = 3;
        const size_t n = (size_t)B * T * C;
        float *q = randv(n, &rng, 1.5f), *k = randv(n, &rng, 1.5f), *v = randv(n, &rng, 1);
        float *mask = malloc((size_t)B * T * sizeof(float));
        for (int t = 0; t < T; t++) mask[t] = t < 50, mask[T + t] = t >= 5; /* right / left padding */
        float *out = malloc(n * sizeof(float)), *want = malloc(n * sizeof(float));
        for (int causal = 0; causal < 2; causal++)
            for (int with_mask = 0; with_mask < 2; with_mask++) {
                const float *mk = with_mask ? mask : NULL;
                att_run r = {.B = B, .T = T, .C = C, .H = H, .causal = causal, .q = q, .k = k, .v = v, .mask = mk,
                             .out = out};
                run_attention(&r);
                ref_attention(B, T, C, H, causal, mk, q, k, v, want);
                double e = max_abs_diff(out, want, n);
                CHECK(e < 1e-5, "attention vs reference (causal %d, mask %d): max error %.3g", causal, with_mask, e);
                if (causal) { /* first query row sees only key 0: out[b, 0] = v[b, 0] */
                    double e0 = max_abs_diff(out, v, (size_t)C);
                    CHECK(e0 < 1e-6, "causal first row != v[0] (%.3g)", e0);
                }
                if (causal && with_mask) { /* batch 1, rows 0..4: every visible key is padding */
                    int zero = 1;
                    for (size_t i = 0; i < 5 * (size_t)C; i++) zero &= out[(size_t)T * C + i] == 0.0f;
                    CHECK(zero, "fully masked query rows must output exact zeros");
                }
            }
        free(q), free(k), free(v), free(mask), free(out), free(want);
    }
    /* Decode step vs the full causal op, for every t. */
    {
        const int T = 9, H = 2, hd = 4, C = H * hd;
        float *q = randv((size_t)T * C, &rng, 1.5f), *k = randv((size_t)T * C, &rng, 1.5f),
              *v = randv((size_t)T * C, &rng, 1);
        float full[9 * 8], step[8], scratch[9];
        att_run r = {.B = 1, .T = T, .C = C, .H = H, .causal = 1, .q = q, .k = k, .v = v, .out = full};
        run_attention(&r);
        double worst = 0;
        for (int t = 0; t < T; t++) {
            mm_attention_decode_step(q + (size_t)t * C, k, v, t + 1, H, hd, step, scratch);
            double e = max_abs_diff(step, full + (size_t)t * C, (size_t)C);
            if (e > worst) worst = e;
        }
        CHECK(worst < 1e-5, "decode step vs causal attention: max error %.3g", worst);
        printf("decode step vs full causal attention: max error %.2g over %d steps\n", worst, T);
        free(q), free(k), free(v);
    }
    /* Dropout: inference ignores it; training is deterministic per step and changes with the step. */
    {
        const int B = 2, T = 6, C = 8;
        const size_t n = (size_t)B * T * C;
        float *q = randv(n, &rng, 1), *k = randv(n, &rng, 1), *v = randv(n, &rng, 1);
        float *a = malloc(n * sizeof(float)), *b = malloc(n * sizeof(float)), *c = malloc(n * sizeof(float));
        att_run r = {.B = B, .T = T, .C = C, .H = 2, .causal = 1, .q = q, .k = k, .v = v, .out = a};
        run_attention(&r);
        r.rate = 0.3f, r.out = b;
        run_attention(&r);
        CHECK(max_abs_diff(a, b, n) == 0, "dropout must be off in inference");
        r.training = 1, r.step = 5;
        run_attention(&r);
        CHECK(max_abs_diff(a, b, n) > 1e-3, "training dropout changed nothing");
        r.out = c;
        run_attention(&r);
        CHECK(max_abs_diff(b, c, n) == 0, "dropout mask differs for the same step");
        r.step = 6;
        run_attention(&r);
        CHECK(max_abs_diff(b, c, n) > 1e-3, "dropout mask did not change with the step");
        free(q), free(k), free(v), free(a), free(b), free(c);
    }
}

/* Batched graph planned for capacity 3, run at batch 2, against the same data at capacity 2:
 * x -> three projections -> attention (key mask input) -> layernorm -> dense logits ->
 * sequence cross-entropy, plus positions. */
typedef struct lm_out {
    float loss;
    float y[2 * 5 * 8];
    float gw[4][8 * 8];
    float gtab[6 * 8];
} lm_out;

static int run_lm(int cap, int batch, int threads, const float *x, const float *mask, const float *tgt,
                  float *w[4], float *gamma, float *beta, float *table, lm_out *o) {
    const int T = 5, C = 8;
    mm_set_threads(threads);
    mm_graph *g = mm_graph_new();
    mm_node *xi = mm_graph_input(g, "x", 3, (int[]){cap, T, C}, 1);
    mm_node *mi = mm_graph_input(g, "mask", 2, (int[]){cap, T}, 1);
    mm_node *ti = mm_graph_input(g, "targets", 2, (int[]){cap, T}, 1);
    mm_node *W[4];
    for (int i = 0; i < 4; i++) W[i] = mm_graph_param(g, "w", 2, (int[]){C, C}, w[i], o->gw[i], 1);
    static float gg[8], gb[8];
    mm_node *ga = mm_graph_param(g, "gamma", 1, (int[]){C}, gamma, gg, 1);
    mm_node *be = mm_graph_param(g, "beta", 1, (int[]){C}, beta, gb, 1);
    mm_node *tab = mm_graph_param(g, "table", 2, (int[]){6, C}, table, o->gtab, 1);
    mm_node *h = mm_g_sinusoidal_positions(g, mm_g_add_positions(g, xi, tab));
    mm_node *a = mm_g_attention(g, mm_g_matmul(g, h, W[0], NULL), mm_g_matmul(g, h, W[1], NULL),
                                mm_g_matmul(g, h, W[2], NULL), mi, 2, 1, 0.25f);
    mm_node *y = mm_g_layernorm(g, a, ga, be, 1e-5f);
    mm_node *loss = mm_g_sequence_cross_entropy(g, mm_g_matmul(g, y, W[3], NULL), ti, -1);
    if (y) y->keep = 1; /* its value stays valid after the run */
    int ok = loss && mm_graph_plan(g, loss, 1) == MM_OK;
    CHECK(ok, "lm graph: %s", mm_errmsg());
    if (ok) {
        mm_graph_set_batch(g, batch);
        memcpy(xi->value, x, (size_t)batch * T * C * sizeof(float));
        memcpy(mi->value, mask, (size_t)batch * T * sizeof(float));
        memcpy(ti->value, tgt, (size_t)batch * T * sizeof(float));
        g->training = 1;
        g->step = 3;
        mm_graph_forward(g);
        mm_graph_backward(g);
        o->loss = loss->value[0];
        memcpy(o->y, y->value, (size_t)batch * T * C * sizeof(float));
    }
    mm_graph_free(g);
    return ok;
}

static void batched_and_threads(void) {
    mm_rng rng = {99};
    const int T = 5, C = 8;
    float *x = randv(2 * T * C, &rng, 1), *w[4], *gamma = randv(C, &rng, 0.3f), *beta = randv(C, &rng, 0.3f);
    float *table = randv(6 * C, &rng, 0.5f);
    for (int i = 0; i < C; i++) gamma[i] += 1;
    for (int i = 0; i < 4; i++) w[i] = randv(C * C, &rng, 0.5f);
    const float mask[10] = {1, 1, 1, 1, 0, 0, 1, 1, 1, 1};
    const float tgt[10] = {1, 7, -1, 3, -1, 2, 0, 5, -1, 6};
    int keep = mm_get_threads();
    lm_out *a = calloc(1, sizeof *a), *b = calloc(1, sizeof *b), *c = calloc(1, sizeof *c);
    if (run_lm(2, 2, 1, x, mask, tgt, w, gamma, beta, table, a) &&
        run_lm(3, 2, 1, x, mask, tgt, w, gamma, beta, table, b) &&
        run_lm(2, 2, 2, x, mask, tgt, w, gamma, beta, table, c)) {
        CHECK(isfinite(a->loss) && a->loss > 0, "lm loss %g", a->loss);
        CHECK(fabsf(a->loss - b->loss) <= 1e-6f * fmaxf(1, fabsf(a->loss)), "capacity 3 at batch 2: loss %g vs %g",
              b->loss, a->loss);
        CHECK(max_abs_diff(a->y, b->y, sizeof a->y / 4) < 1e-5, "capacity 3 at batch 2: outputs differ");
        CHECK(max_abs_diff(a->gw[0], b->gw[0], 4 * 64) < 1e-5, "capacity 3 at batch 2: weight grads differ");
        CHECK(max_abs_diff(a->gtab, b->gtab, 48) < 1e-5, "capacity 3 at batch 2: table grads differ");
        CHECK(memcmp(a, c, sizeof *a) == 0, "1 vs 2 threads: not bit-identical (loss %.9g vs %.9g, y %g, table grad %g)",
              a->loss, c->loss, max_abs_diff(a->y, c->y, 80), max_abs_diff(a->gtab, c->gtab, 48));
    }
    /* Attention alone, larger (parallel over pairs, 2 row blocks): bit-identical for 1 and 2 threads. */
    {
        const int B = 3, TT = 80, CC = 16;
        const size_t n = (size_t)B * TT * CC;
        float *q = randv(n, &rng, 1), *k = randv(n, &rng, 1), *v = randv(n, &rng, 1), *gy = randv(n, &rng, 1);
        float *r[2][4];
        for (int t = 0; t < 2; t++) {
            for (int i = 0; i < 4; i++) r[t][i] = malloc(n * sizeof(float));
            mm_set_threads(t + 1);
            att_run ar = {.B = B, .T = TT, .C = CC, .H = 2, .causal = 1, .training = 1, .rate = 0.1f, .q = q, .k = k,
                          .v = v, .gy = gy, .out = r[t][0], .dq = r[t][1], .dk = r[t][2], .dv = r[t][3]};
            run_attention(&ar);
        }
        for (int i = 0; i < 4; i++)
            CHECK(memcmp(r[0][i], r[1][i], n * sizeof(float)) == 0, "attention tensor %d differs for 1 vs 2 threads",
                  i);
        for (int t = 0; t < 2; t++)
            for (int i = 0; i < 4; i++) free(r[t][i]);
        free(q), free(k), free(v), free(gy);
    }
    mm_set_threads(keep);
    free(a), free(b), free(c), free(x), free(gamma), free(beta), free(table);
    for (int i = 0; i < 4; i++) free(w[i]);
}

/* ------------------------------------------------------------------ other values */

static void other_values(void) {
    /* Sinusoidal table on x = 0. */
    {
        mm_graph *g = mm_graph_new();
        float x[3 * 5] = {0};
        mm_node *p = mm_graph_param(g, "x", 2, (int[]){3, 5}, x, NULL, 0);
        mm_node *y = mm_g_sinusoidal_positions(g, p);
        CHECK_OK(mm_graph_plan(g, y, 0));
        mm_graph_forward(g);
        double e = 0;
        for (int t = 0; t < 3; t++)
            for (int c = 0; c < 5; c++) {
                int i2 = c - c % 2;
                double a = t / pow(10000.0, i2 / 5.0), want = c % 2 ? cos(a) : sin(a);
                e = fmax(e, fabs(y->value[t * 5 + c] - want));
            }
        CHECK(e < 1e-6, "sinusoidal table max error %.3g", e);
        CHECK(y->value[5] == (float)sin(1.0) && y->value[6] == (float)cos(1.0), "PE[1, 0:2] = %g %g", y->value[5],
              y->value[6]);
        mm_graph_free(g);
    }
    /* Sequence CE: value by hand; every target ignored -> loss 0, gradient 0; bad target fails. */
    {
        float z[2 * 3] = {1, 2, 3, 0.5f, -1, 2}, t[2] = {2, 0}, dz[6];
        mm_graph *g = mm_graph_new();
        mm_node *zn = mm_graph_param(g, "z", 2, (int[]){2, 3}, z, dz, 1);
        mm_node *tn = mm_graph_param(g, "t", 1, (int[]){2}, t, NULL, 0);
        mm_node *l = mm_g_sequence_cross_entropy(g, zn, tn, 7);
        CHECK_OK(mm_graph_plan(g, l, 1));
        mm_graph_forward(g);
        double l0 = log(exp(1) + exp(2) + exp(3)) - 3, l1 = log(exp(0.5) + exp(-1) + exp(2)) - 0.5;
        CHECK(fabs(l->value[0] - (l0 + l1) / 2) < 1e-6, "CE %g, expected %g", l->value[0], (l0 + l1) / 2);
        t[0] = 7;
        mm_graph_forward(g);
        CHECK(fabs(l->value[0] - l1) < 1e-6, "CE with one ignored %g, expected %g", l->value[0], l1);
        t[1] = 7;
        for (int i = 0; i < 6; i++) dz[i] = 123;
        mm_graph_forward(g);
        mm_graph_backward(g);
        int zero = 1;
        for (int i = 0; i < 6; i++) zero &= dz[i] == 0.0f;
        CHECK(l->value[0] == 0.0f && zero, "all ignored: loss %g, gradient must be 0", l->value[0]);
        CHECK(!g->failed, "all ignored must not fail the run");
        t[1] = 3;
        mm_graph_forward(g);
        CHECK(g->failed && tu_contains(g->error, "target 3") && isnan(l->value[0]),
              "bad target: failed %d, error '%s', loss %g", g->failed, g->error, l->value[0]);
        mm_graph_free(g);
    }
}

/* ------------------------------------------------------------------ errors */

static void errors(void) {
    mm_graph *g = mm_graph_new();
    static float buf[1024];
    mm_node *q = mm_graph_param(g, "q", 3, (int[]){2, 4, 6}, buf, NULL, 0);
    mm_node *k5 = mm_graph_param(g, "k5", 3, (int[]){2, 5, 6}, buf, NULL, 0);
    mm_node *m23 = mm_graph_param(g, "m", 2, (int[]){2, 3}, buf, NULL, 0);
    mm_node *m24 = mm_graph_param(g, "m", 2, (int[]){2, 4}, buf, NULL, 0);
    mm_node *q2 = mm_graph_param(g, "q2", 2, (int[]){4, 6}, buf, NULL, 0);
    mm_node *r;
    r = mm_g_attention(g, q, q, q, NULL, 4, 1, 0);
    CHECK(!r && tu_contains(mm_errmsg(), "C=6 is not divisible by n_heads=4"), "heads: %s", mm_errmsg());
    r = mm_g_attention(g, q, q, q, NULL, 0, 1, 0);
    CHECK(!r && tu_contains(mm_errmsg(), "n_heads 0"), "zero heads: %s", mm_errmsg());
    r = mm_g_attention(g, q, q, q, m23, 2, 1, 0);
    CHECK(!r && tu_contains(mm_errmsg(), "key mask must be [batch, time] = [2, 4]"), "mask: %s", mm_errmsg());
    r = mm_g_attention(g, q, k5, q, NULL, 2, 0, 0);
    CHECK(!r && tu_contains(mm_errmsg(), "k has shape [2, 5, 6]"), "k shape: %s", mm_errmsg());
    r = mm_g_attention(g, q2, q2, q2, NULL, 2, 0, 0);
    CHECK(!r && tu_contains(mm_errmsg(), "q must be [batch, time, channels]"), "q rank: %s", mm_errmsg());
    r = mm_g_attention(g, q, q, q, m24, 2, 1, 1.0f);
    CHECK(!r && tu_contains(mm_errmsg(), "dropout rate 1"), "rate: %s", mm_errmsg());
    r = mm_g_attention(g, NULL, q, q, NULL, 2, 1, 0);
    CHECK(!r, "NULL input must give NULL");

    mm_node *z = mm_graph_param(g, "z", 3, (int[]){2, 4, 7}, buf, NULL, 0);
    r = mm_g_sequence_cross_entropy(g, z, m23, -100);
    CHECK(!r && tu_contains(mm_errmsg(),
                            "targets must have the logits' shape without the class axis: [2, 4], got [2, 3]"),
          "targets: %s", mm_errmsg());
    r = mm_g_sequence_cross_entropy(g, z, q, -100);
    CHECK(!r && tu_contains(mm_errmsg(), "targets"), "targets rank: %s", mm_errmsg());

    mm_node *g5 = mm_graph_param(g, "g5", 1, (int[]){5}, buf, NULL, 0);
    mm_node *g6 = mm_graph_param(g, "g6", 1, (int[]){6}, buf, NULL, 0);
    r = mm_g_layernorm(g, q, g5, g6, 1e-5f);
    CHECK(!r && tu_contains(mm_errmsg(), "gamma has 5 elements, expected 6"), "layernorm gamma: %s", mm_errmsg());
    r = mm_g_layernorm(g, q, g6, g6, 0);
    CHECK(!r && tu_contains(mm_errmsg(), "epsilon"), "layernorm eps: %s", mm_errmsg());

    mm_node *t3 = mm_graph_param(g, "t3", 2, (int[]){3, 6}, buf, NULL, 0);
    mm_node *t8 = mm_graph_param(g, "t8", 2, (int[]){8, 5}, buf, NULL, 0);
    r = mm_g_add_positions(g, q, t3);
    CHECK(!r && tu_contains(mm_errmsg(), "sequence length 4 exceeds the table's 3 positions"), "positions: %s",
          mm_errmsg());
    r = mm_g_add_positions(g, q, t8);
    CHECK(!r && tu_contains(mm_errmsg(), "table has 5 channels, x has 6"), "table channels: %s", mm_errmsg());
    mm_graph_free(g);
}

/* Precision "medium": with AMX or AVX512-BF16 all six products run in bfloat16. Outputs and
 * gradients stay within bfloat16's error of float32's, are the same bits at 1 and 2 threads, and
 * differ from float32's (so the bfloat16 path ran); without either, or when the head width or length is not whole
 * tiles, they are float32's bit for bit. */
static void medium_precision(void) {
    const int keep = mm_get_threads();
    const struct { int T, causal, masked; float rate; } cases[] = {
        {128, 1, 0, 0.0f}, {64, 1, 1, 0.0f}, {128, 0, 1, 0.1f}, {96, 1, 0, 0.1f}, {48, 1, 0, 0.0f}};
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        const int B = 2, T = cases[c].T, C = 64, H = 2;
        const size_t n = (size_t)B * T * C;
        mm_rng rng = {77 + c};
        float *q = randv(n, &rng, 1), *k = randv(n, &rng, 1), *v = randv(n, &rng, 1), *gy = randv(n, &rng, 1);
        float *mask = NULL;
        if (cases[c].masked) {
            mask = malloc((size_t)B * T * sizeof(float));
            for (int i = 0; i < B * T; i++) mask[i] = (i % T) < T - 5 - 7 * (i / T) ? 1.0f : 0.0f;
        }
        float *res[3][4]; /* highest, medium 1 thread, medium 2 threads: out, dq, dk, dv */
        for (int r = 0; r < 3; r++) {
            for (int j = 0; j < 4; j++) res[r][j] = calloc(n, sizeof(float));
            att_run run = {.B = B, .T = T, .C = C, .H = H, .causal = cases[c].causal, .training = 1,
                           .rate = cases[c].rate, .step = 3, .q = q, .k = k, .v = v, .mask = mask, .gy = gy,
                           .out = res[r][0], .dq = res[r][1], .dk = res[r][2], .dv = res[r][3]};
            mm_set_threads(r == 2 ? 2 : 1);
            CHECK_OK(mm_set_matmul_precision(r ? "medium" : "highest"));
            run_attention(&run);
        }
        CHECK_OK(mm_set_matmul_precision("highest"));
        const int bf = mm_bf16_matmul_available() && T % 32 == 0;
        static const char *what[4] = {"out", "dq", "dk", "dv"};
        for (int j = 0; j < 4; j++) {
            double scale = 0;
            for (size_t i = 0; i < n; i++) scale = fmax(scale, fabs(res[0][j][i]));
            const double err = max_abs_diff(res[1][j], res[0][j], n);
            CHECK(err <= 0.02 * scale, "medium attention T=%d %s: max error %.3g, float32 values up to %.3g", T,
                  what[j], err, scale);
            CHECK(memcmp(res[1][j], res[2][j], n * sizeof(float)) == 0, "medium attention T=%d %s: 1 and 2 threads differ",
                  T, what[j]);
            const int same = memcmp(res[1][j], res[0][j], n * sizeof(float)) == 0;
            CHECK(bf ? !same : same, "medium attention T=%d %s: %s", T, what[j],
                  bf ? "identical to float32, so the bfloat16 path did not run" : "must stay float32 bit for bit");
        }
        for (int r = 0; r < 3; r++)
            for (int j = 0; j < 4; j++) free(res[r][j]);
        free(q), free(k), free(v), free(gy), free(mask);
    }
    mm_set_threads(keep);
}

int main(void) {
    gradchecks();
    attention_values();
    batched_and_threads();
    other_values();
    errors();
    medium_precision();
    return tu_finish();
}
