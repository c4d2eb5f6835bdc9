/* PyTorch parity for the recurrent ops: nn.RNN (tanh), nn.LSTM and nn.GRU (batch_first, also
 * bidirectional), and masked step-by-step cell runs with Keras's carry-over rule, read from
 * tests/fixtures/parity_rnn.safetensors. Regenerate the fixture with
 * `/usr/bin/python3 scripts/gen_rnn_fixtures.py` (its header documents the Keras <-> PyTorch
 * weight mapping and the tensor names NAME.inK, NAME.gy, NAME.y, NAME.ginK).
 *
 * Each case builds the op with the fixture's inputs as params (a grad buffer, NaN-filled,
 * exactly for the inputs that have a NAME.ginK), seeds the output's grad with NAME.gy, runs
 * forward and backward, and compares the output and every gradient with
 * max|got - want| / max(1, max|want|) <= 1e-4. */
#include "ops/ops.h"
#include "testutil.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#define TOL 1e-4

static mm_st_file fx;

typedef struct rcase {
    const char *name;
    int cell, flags;
    int bias, mask; /* inputs present after x, W, U */
    int step;       /* 1: last_step, 2: first_step on the output (with the mask) */
    int bidir;      /* concat(forward run, MM_RNN_BACKWARDS run) of two weight sets */
} rcase;

enum { SIMPLE = MM_RNN_SIMPLE, LSTM = MM_RNN_LSTM, GRU = MM_RNN_GRU };
#define BACK MM_RNN_BACKWARDS
#define CELL MM_RNN_CELL
#define ZERO MM_RNN_ZERO_MASKED

static const rcase cases[] = {
    {"rnn", SIMPLE, 0, 1, 0, 0, 0},
    {"rnn_back", SIMPLE, BACK, 1, 0, 0, 0},
    {"lstm", LSTM, 0, 1, 0, 0, 0},
    {"lstm_back", LSTM, BACK, 1, 0, 0, 0},
    {"gru", GRU, 0, 1, 0, 0, 0},
    {"gru_back", GRU, BACK, 1, 0, 0, 0},
    {"gru_nobias", GRU, 0, 0, 0, 0, 0},
    {"lstm_nobias", LSTM, 0, 0, 0, 0, 0},
    {"rnn_mask", SIMPLE, 0, 1, 1, 0, 0},
    {"rnn_mask_back", SIMPLE, BACK, 1, 1, 0, 0},
    {"lstm_mask", LSTM, 0, 1, 1, 0, 0},
    {"lstm_mask_back", LSTM, BACK, 1, 1, 0, 0},
    {"gru_mask", GRU, 0, 1, 1, 0, 0},
    {"gru_mask_back", GRU, BACK, 1, 1, 0, 0},
    {"lstm_cell", LSTM, CELL, 1, 0, 0, 0},
    {"lstm_cell_zero", LSTM, CELL | ZERO, 1, 1, 0, 0},
    {"lstm_cell_zero_back", LSTM, CELL | ZERO | BACK, 1, 1, 0, 0},
    {"lstm_last", LSTM, ZERO, 1, 1, 1, 0},
    {"lstm_first", LSTM, ZERO | BACK, 1, 1, 2, 0},
    {"gru_last", GRU, ZERO, 1, 1, 1, 0},
    {"gru_first", GRU, ZERO | BACK, 1, 1, 2, 0},
    {"lstm_bidir", LSTM, 0, 1, 0, 0, 1},
    {"gru_bidir", GRU, 0, 1, 0, 0, 1},
};

static mm_node *build(mm_graph *g, mm_node **in, int n_in, const void *ctx) {
    const rcase *c = ctx;
    (void)n_in;
    if (c->bidir) {
        mm_node *pair[2] = {mm_g_rnn(g, c->cell, in[0], NULL, in[1], in[2], in[3], c->flags),
                            mm_g_rnn(g, c->cell, in[0], NULL, in[4], in[5], in[6], c->flags | BACK)};
        return mm_g_concat(g, 2, pair, -1);
    }
    mm_node *b = c->bias ? in[3] : NULL, *m = c->mask ? in[3 + c->bias] : NULL;
    mm_node *y = mm_g_rnn(g, c->cell, in[0], m, in[1], in[2], b, c->flags);
    if (c->step == 1) y = mm_g_last_step(g, y, m);
    if (c->step == 2) y = mm_g_first_step(g, y, m);
    return y;
}

static void run_case(const rcase *c) {
    const int n_in = c->bidir ? 7 : 3 + c->bias + c->mask;
    CHECK(!c->mask || !tu_fixture(&fx, "%s.gin%d", c->name, n_in - 1), "%s: the mask has a gradient in the fixture",
          c->name);
    tu_parity_case(&fx, c->name, n_in, 0, build, c, TOL);
}

int main(void) {
    const char *path = tu_source_path("tests/fixtures/parity_rnn.safetensors");
    mm_status st = mm_st_read(path, &fx);
    CHECK(st == MM_OK, "reading %s: %s", path, mm_errmsg());
    if (st != MM_OK) return tu_finish();
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) run_case(&cases[i]);
    /* every case in the fixture is run */
    int listed = 0;
    for (int i = 0; i < fx.n; i++) {
        const char *nm = fx.tensors[i].name;
        size_t len = strlen(nm);
        if (len > 2 && strcmp(nm + len - 2, ".y") == 0) listed++;
    }
    CHECK(listed == (int)(sizeof cases / sizeof cases[0]), "fixture has %d cases, the test runs %zu", listed,
          sizeof cases / sizeof cases[0]);
    mm_st_free(&fx);
    return tu_finish();
}
