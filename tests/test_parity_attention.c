/* PyTorch parity for the Transformer ops (layernorm, multi-head attention with causal and
 * padding masks, sequence cross-entropy with ignore_index, sinusoidal and learned positions)
 * against reference values computed by PyTorch in float64, read from
 * tests/fixtures/parity_attention.safetensors. Regenerate the fixture with
 * `/usr/bin/python3 scripts/gen_attention_fixtures.py` (tensor naming as in test_parity.c:
 * NAME.inK, NAME.gy, NAME.y, NAME.ginK).
 *
 * Each case builds its op with the fixture's inputs as params (a NaN-filled grad buffer exactly
 * for the inputs that have a NAME.ginK), seeds the output's grad with NAME.gy, runs forward and
 * backward and compares y and every gradient with max|got - want| / max(1, max|want|) <= 1e-4. */
#include "ops/ops.h"
#include "testutil.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#define TOL 1e-4
#define MAXIN 4

static mm_st_file fx;
#define fget(...) tu_fixture(&fx, __VA_ARGS__)
#define compare(cs, what, got, n, want) tu_compare(cs, what, got, n, want, TOL)



/* ------------------------------------------------------------------ cases */

typedef struct pcase pcase;
typedef mm_node *(*pbuild)(mm_graph *g, mm_node **in, int n, const pcase *c);

struct pcase {
    const char *name;
    int n_in;
    pbuild fn;
    int i[3];
    float f;
};

static mm_node *b_ln(mm_graph *g, mm_node **p, int n, const pcase *c) {
    (void)n;
    return mm_g_layernorm(g, p[0], p[1], p[2], c->f);
}
/* i: heads, causal */
static mm_node *b_att(mm_graph *g, mm_node **p, int n, const pcase *c) {
    return mm_g_attention(g, p[0], p[1], p[2], n > 3 ? p[3] : NULL, c->i[0], c->i[1], 0.0f);
}
/* i[0]: ignore_index */
static mm_node *b_ce(mm_graph *g, mm_node **p, int n, const pcase *c) {
    (void)n;
    return mm_g_sequence_cross_entropy(g, p[0], p[1], c->i[0]);
}
static mm_node *b_sin(mm_graph *g, mm_node **p, int n, const pcase *c) {
    (void)n, (void)c;
    return mm_g_sinusoidal_positions(g, p[0]);
}
static mm_node *b_addpos(mm_graph *g, mm_node **p, int n, const pcase *c) {
    (void)n, (void)c;
    return mm_g_add_positions(g, p[0], p[1]);
}

static const pcase cases[] = {
    {"layernorm", 3, b_ln, {0}, 1e-5f},
    {"layernorm_eps3", 3, b_ln, {0}, 1e-3f},
    {"attention_causal", 3, b_att, {2, 1}, 0},
    {"attention_padding", 4, b_att, {2, 0}, 0},
    {"attention_causal_padding", 4, b_att, {3, 1}, 0},
    {"attention_long", 4, b_att, {2, 1}, 0},
    {"seq_ce", 2, b_ce, {-100}, 0},
    {"sinusoidal", 1, b_sin, {0}, 0},
    {"sinusoidal_odd", 1, b_sin, {0}, 0},
    {"add_positions", 2, b_addpos, {0}, 0},
};

static void run_case(const pcase *c) {
    const char *cs = c->name;
    mm_graph *g = mm_graph_new();
    mm_node *in[MAXIN] = {0};
    float *val[MAXIN] = {0}, *grad[MAXIN] = {0};
    const mm_st_tensor *gin[MAXIN] = {0};
    double worst = 0;
    int ok = 1;
    CHECK(fget("%s.in%d", cs, c->n_in) == NULL, "%s: fixture has more than %d inputs", cs, c->n_in);
    for (int k = 0; k < c->n_in; k++) {
        const mm_st_tensor *t = fget("%s.in%d", cs, k);
        CHECK(t != NULL, "%s: fixture lacks %s.in%d", cs, cs, k);
        if (!t) {
            ok = 0;
            break;
        }
        gin[k] = fget("%s.gin%d", cs, k);
        val[k] = malloc(t->size * sizeof(float));
        memcpy(val[k], t->data, t->size * sizeof(float));
        if (gin[k]) { /* NaN-filled: an op that forgets to write a gradient shows up */
            grad[k] = malloc(t->size * sizeof(float));
            for (size_t j = 0; j < t->size; j++) grad[k][j] = NAN;
        }
        char nm[16];
        snprintf(nm, sizeof nm, "in%d", k);
        in[k] = mm_graph_param(g, nm, t->ndim, t->shape, val[k], grad[k], gin[k] != NULL);
    }
    mm_node *out = ok ? c->fn(g, in, c->n_in, c) : NULL;
    if (ok) CHECK(out != NULL, "%s: build failed: %s", cs, mm_errmsg());
    const mm_st_tensor *y = fget("%s.y", cs), *gy = fget("%s.gy", cs);
    if (out && y && gy) {
        CHECK(out->ndim == y->ndim && memcmp(out->shape, y->shape, (size_t)y->ndim * sizeof(int)) == 0,
              "%s: output rank %d (dim0 %d), fixture rank %d (dim0 %d)", cs, out->ndim, out->shape[0], y->ndim,
              y->shape[0]);
        g->external_seed = 1;
        mm_status st = mm_graph_plan(g, out, 1);
        CHECK(st == MM_OK, "%s: plan failed: %s", cs, mm_errmsg());
        if (st == MM_OK && out->size == gy->size && out->grad) {
            g->training = 1;
            mm_graph_forward(g);
            memcpy(out->grad, gy->data, gy->size * sizeof(float));
            mm_graph_backward(g);
            worst = fmax(worst, compare(cs, "y", out->value, out->size, y));
            for (int k = 0; k < c->n_in; k++) {
                if (!gin[k]) continue;
                char what[24];
                snprintf(what, sizeof what, "gin%d", k);
                worst = fmax(worst, compare(cs, what, grad[k], gin[k]->size, gin[k]));
            }
        } else if (st == MM_OK) {
            CHECK(0, "%s: output has %zu values (grad %p), gy %zu", cs, out->size, (void *)out->grad, gy->size);
            worst = INFINITY;
        }
    } else {
        if (out) CHECK(0, "%s: fixture lacks y or gy", cs);
        worst = INFINITY;
    }
    printf("%-26s max error %.3g\n", cs, worst);
    mm_graph_free(g);
    for (int k = 0; k < c->n_in; k++) free(val[k]), free(grad[k]);
}

int main(void) {
    const char *path = tu_source_path("tests/fixtures/parity_attention.safetensors");
    mm_status st = mm_st_read(path, &fx);
    CHECK(st == MM_OK, "reading %s: %s", path, mm_errmsg());
    if (st != MM_OK) return tu_finish();
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) run_case(&cases[i]);
    mm_st_free(&fx);
    return tu_finish();
}
