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

static mm_st_file fx;

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

static mm_node *build_case(mm_graph *g, mm_node **in, int n, const void *ctx) {
    const pcase *c = ctx;
    return c->fn(g, in, n, c);
}

static void run_case(const pcase *c) { tu_parity_case(&fx, c->name, c->n_in, 1, build_case, c, TOL); }

int main(void) {
    const char *path = tu_source_path("tests/fixtures/parity_attention.safetensors");
    mm_status st = mm_st_read(path, &fx);
    CHECK(st == MM_OK, "reading %s: %s", path, mm_errmsg());
    if (st != MM_OK) return tu_finish();
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) run_case(&cases[i]);
    mm_st_free(&fx);
    return tu_finish();
}
