/* Sequence layers end to end through the model API: a masked bidirectional LSTM classifier,
 * GRU / SimpleRNN / LayerNormalization / pooling stacks, and a small causal Transformer
 * language model, each trained on a synthetic task with an asserted accuracy; architecture
 * JSON round trips; bad configurations. */
#include "testutil.h"

#include <stdlib.h>
#include <string.h>

/* Sequences of ids 1..9 padded with 0 at the end; class 1 iff token 3 occurs. */
static void make_presence(mm_dataset *d, int n, int T, uint64_t seed) {
    int xs[2] = {n, T}, ys[1] = {n};
    mm_array_alloc(&d->x, 2, xs);
    mm_array_alloc(&d->y, 1, ys);
    mm_rng rng = {seed};
    for (int i = 0; i < n; i++) {
        int len = 3 + (int)(mm_rng_next(&rng) % (uint64_t)(T - 3));
        int has = 0;
        for (int t = 0; t < T; t++) {
            int tok = t < len ? 1 + (int)(mm_rng_next(&rng) % 9) : 0;
            d->x.data[i * T + t] = (float)tok;
            has |= tok == 3;
        }
        d->y.data[i] = (float)has;
    }
}

static double train_and_score(mm_model *m, mm_dataset *train, mm_dataset *test, int epochs, float lr) {
    CHECK_OK(mm_compile(m, .optimizer = "adam", .learning_rate = lr, .loss = "sparse_categorical_crossentropy"));
    CHECK_OK(mm_fit(m, train, .epochs = epochs, .batch_size = 32, .seed = 1));
    mm_eval_result r = {0};
    CHECK_OK(mm_evaluate(m, test, 64, 1, &r));
    double acc = r.accuracy;
    mm_eval_result_free(&r);
    /* the architecture survives a JSON round trip */
    char *j = mm_model_to_json(m);
    mm_model *back = NULL;
    CHECK_OK(mm_model_from_json(j, &back));
    if (back) {
        char *j2 = mm_model_to_json(back);
        CHECK(!strcmp(j, j2), "JSON round trip differs:\n%s\n%s", j, j2);
        free(j2);
        CHECK(mm_count_params(back) == mm_count_params(m), "params differ after round trip");
    }
    mm_model_free(back);
    free(j);
    return acc;
}

static void test_bilstm(void) {
    mm_dataset train = {0}, test = {0};
    make_presence(&train, 1200, 12, 1);
    make_presence(&test, 300, 12, 2);
    mm_model *m = mm_sequential();
    CHECK_OK(mm_add(m, mm_Embedding(.input_dim = 10, .output_dim = 8, .mask_zero = 1, .input_shape = {12})));
    CHECK_OK(mm_add(m, mm_Bidirectional(.layer = mm_LSTM(.units = 8))));
    CHECK_OK(mm_add(m, mm_Dense(.units = 2, .activation = "softmax")));
    long params = mm_count_params(m);
    /* embedding 80 + 2 x LSTM (8*32 + 8*32 + 32) + dense 16*2+2 */
    CHECK(params == 80 + 2 * (256 + 256 + 32) + 34, "BiLSTM params %ld", params);
    double acc = train_and_score(m, &train, &test, 8, 0.01f);
    printf("masked BiLSTM presence task: accuracy %.3f\n", acc);
    CHECK(acc >= 0.95, "BiLSTM accuracy %.3f", acc);
    mm_model_free(m);
    mm_dataset_free(&train);
    mm_dataset_free(&test);
}

static void test_gru_stack(void) {
    mm_dataset train = {0}, test = {0};
    make_presence(&train, 1200, 10, 3);
    make_presence(&test, 300, 10, 4);
    mm_model *m = mm_sequential();
    CHECK_OK(mm_add(m, mm_Embedding(.input_dim = 10, .output_dim = 8, .mask_zero = 1, .input_shape = {10})));
    CHECK_OK(mm_add(m, mm_GRU(.units = 12, .return_sequences = 1)));
    CHECK_OK(mm_add(m, mm_LayerNormalization()));
    CHECK_OK(mm_add(m, mm_SimpleRNN(.units = 8)));
    CHECK_OK(mm_add(m, mm_Dense(.units = 2, .activation = "softmax")));
    double acc = train_and_score(m, &train, &test, 10, 0.01f);
    printf("GRU + LayerNorm + SimpleRNN presence task: accuracy %.3f\n", acc);
    CHECK(acc >= 0.9, "GRU stack accuracy %.3f", acc);
    mm_model_free(m);

    m = mm_sequential();
    CHECK_OK(mm_add(m, mm_Embedding(.input_dim = 10, .output_dim = 16, .input_shape = {10})));
    CHECK_OK(mm_add(m, mm_GlobalAveragePooling1D()));
    CHECK_OK(mm_add(m, mm_Dense(.units = 2, .activation = "softmax")));
    acc = train_and_score(m, &train, &test, 15, 0.02f);
    printf("embedding bag (fastText-style) presence task: accuracy %.3f\n", acc);
    CHECK(acc >= 0.85, "embedding bag accuracy %.3f", acc);
    mm_model_free(m);
    mm_dataset_free(&train);
    mm_dataset_free(&test);
}

/* Next token of a cyclic sequence with two interleaved strides: position t holds
 * (start + t * step) mod V; the model must infer step from the context. */
static void make_cycles(mm_dataset *d, int n, int T, int V, uint64_t seed) {
    int xs[2] = {n, T}, ys[2] = {n, T};
    mm_array_alloc(&d->x, 2, xs);
    mm_array_alloc(&d->y, 2, ys);
    mm_rng rng = {seed};
    for (int i = 0; i < n; i++) {
        int start = (int)(mm_rng_next(&rng) % (uint64_t)V), step = 1 + (int)(mm_rng_next(&rng) % 2);
        for (int t = 0; t < T; t++) {
            d->x.data[i * T + t] = (float)((start + t * step) % V);
            d->y.data[i * T + t] = (float)((start + (t + 1) * step) % V);
        }
    }
}

static void test_transformer_lm(void) {
    const int T = 12, V = 11, C = 32;
    mm_dataset train = {0}, test = {0};
    make_cycles(&train, 1500, T, V, 5);
    make_cycles(&test, 200, T, V, 6);
    mm_model *m = mm_functional("tiny_gpt");
    int x = mm_input(m, 1, (int[]){T});
    int h = mm_call(m, mm_Embedding(.input_dim = V, .output_dim = C), x);
    h = mm_call(m, mm_PositionEmbedding(.max_length = T), h);
    int a = mm_call(m, mm_LayerNormalization(.epsilon = 1e-5f), h);
    a = mm_call(m, mm_MultiHeadAttention(.num_heads = 4, .causal = 1), a);
    h = mm_call(m, mm_Add(), h, a);
    int f = mm_call(m, mm_LayerNormalization(.epsilon = 1e-5f), h);
    f = mm_call(m, mm_Dense(.units = 4 * C, .activation = "gelu"), f);
    f = mm_call(m, mm_Dense(.units = C), f);
    h = mm_call(m, mm_Add(), h, f);
    h = mm_call(m, mm_LayerNormalization(.epsilon = 1e-5f), h);
    int out = mm_call(m, mm_Dense(.units = V, .activation = "softmax"), h);
    CHECK(out >= 0, "building the transformer: %s", mm_errmsg());
    double acc = train_and_score(m, &train, &test, 10, 3e-3f);
    printf("1-block causal Transformer on cyclic sequences: per-token accuracy %.3f\n", acc);
    /* the first token of each sequence cannot be predicted (step unknown): <= 1 - 1/(2T) */
    CHECK(acc >= 0.85, "transformer accuracy %.3f", acc);

    /* KV-cache decoding gives, position by position, what the full forward pass gives. */
    mm_decoder *dec = NULL;
    CHECK_OK(mm_decoder_new(m, &dec));
    if (dec) {
        mm_array one = {0}, full;
        int os[2] = {1, T};
        mm_array_alloc(&one, 2, os);
        memcpy(one.data, test.x.data, T * sizeof(float));
        CHECK_OK(mm_predict(m, &one, 1, &full));
        double worst = 0;
        float row[16];
        for (int t = 0; t < T; t++) {
            CHECK_OK(mm_decoder_step(dec, (int)one.data[t], row));
            for (int v = 0; v < V; v++) worst = fmax(worst, fabs(row[v] - full.data[t * V + v]));
        }
        printf("KV-cache decoding vs full forward: max difference %.2g\n", worst);
        CHECK(worst < 1e-5, "decoder differs from the forward pass by %g", worst);
        CHECK_ERR(mm_decoder_step(dec, 1, row), MM_ERR_ARG, "full");
        mm_decoder_reset(dec);
        CHECK_ERR(mm_decoder_step(dec, 99, row), MM_ERR_ARG, "token id 99");
        mm_array_free(&one);
        mm_array_free(&full);
    }
    mm_decoder_free(dec);
    mm_model_free(m);
    mm_dataset_free(&train);
    mm_dataset_free(&test);
}

static void test_bad_configs(void) {
    mm_model *r = mm_sequential();
    CHECK_OK(mm_add(r, mm_Embedding(.input_dim = 5, .output_dim = 4, .input_shape = {6})));
    CHECK_OK(mm_add(r, mm_LSTM(.units = 4, .return_sequences = 1)));
    mm_decoder *d = NULL;
    CHECK_ERR(mm_decoder_new(r, &d), MM_ERR_ARG, "one position at a time");
    mm_model_free(r);

    mm_model *m = mm_sequential();
    CHECK_ERR(mm_add(m, mm_LSTM(.units = 4, .input_shape = {8})), MM_ERR_SHAPE, "sequences");
    mm_model_free(m);
    m = mm_sequential();
    CHECK_OK(mm_add(m, mm_Embedding(.input_dim = 5, .output_dim = 6, .input_shape = {4})));
    CHECK_ERR(mm_add(m, mm_MultiHeadAttention(.num_heads = 4)), MM_ERR_ARG, "not divisible");
    CHECK_ERR(mm_add(m, mm_PositionEmbedding(.max_length = 2)), MM_ERR_SHAPE, "max_length");
    CHECK_ERR(mm_add(m, mm_GRU(.units = 0)), MM_ERR_ARG, "units");
    mm_model_free(m);
}

int main(void) {
    test_bad_configs();
    test_bilstm();
    test_gru_stack();
    test_transformer_lm();
    return tu_finish();
}
