/* Functional models, embeddings with sparse updates, merge layers: gradient checks for the
 * embedding and slice ops, a biased matrix factorization trained on synthetic ratings,
 * architecture JSON round trips, untouched embedding rows staying put, and bad ids. */
#include "testutil.h"
#include "ops/ops.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static mm_node *build_embedding(mm_graph *g, mm_node **p, void *ctx) {
    (void)ctx;
    return mm_g_embedding(g, p[0], p[1]);
}

static mm_node *build_slice(mm_graph *g, mm_node **p, void *ctx) {
    (void)ctx;
    return mm_g_slice(g, p[0], 1, 2);
}

static void test_op_gradients(void) {
    const float ids[6] = {0, 3, 3, 1, 4, 0}; /* repeats: gradients must add up */
    tu_param_spec emb[2] = {{.ndim = 2, .shape = {2, 3}, .init = ids, .no_grad = 1}, {.ndim = 2, .shape = {5, 4}}};
    tu_gradcheck("embedding", 2, emb, build_embedding, NULL, 1e-2);
    tu_param_spec sl[1] = {{.ndim = 3, .shape = {2, 3, 4}}};
    tu_gradcheck("slice", 1, sl, build_slice, NULL, 1e-2);

    /* out-of-range id: the run fails with a message instead of reading outside the table */
    mm_graph *g = mm_graph_new();
    float bad[2] = {1, 7}, table[8] = {0};
    int is[1] = {2}, ts[2] = {4, 2};
    mm_node *i = mm_graph_param(g, "ids", 1, is, bad, NULL, 0);
    mm_node *t = mm_graph_param(g, "t", 2, ts, table, NULL, 0);
    mm_node *y = mm_g_embedding(g, i, t);
    CHECK_OK(mm_graph_plan(g, y, 0));
    mm_graph_forward(g);
    CHECK(g->failed && tu_contains(g->error, "id 7"), "bad id not reported: %s", g->error);
    mm_graph_free(g);
}

/* Ratings r = mu + bu + bi + <pu, qi> + noise for a planted low-rank model. */
static void make_ratings(mm_dataset *d, int users, int items, int n, uint64_t seed) {
    int xs[2] = {n, 2}, ys[2] = {n, 1};
    mm_array_alloc(&d->x, 2, xs);
    mm_array_alloc(&d->y, 2, ys);
    mm_rng rng = {seed};
    float pu[64][2], qi[64][2];
    for (int u = 0; u < users; u++) pu[u][0] = mm_rng_normal(&rng), pu[u][1] = mm_rng_normal(&rng);
    for (int k = 0; k < items; k++) qi[k][0] = mm_rng_normal(&rng), qi[k][1] = mm_rng_normal(&rng);
    for (int r = 0; r < n; r++) {
        int u = (int)(mm_rng_next(&rng) % (uint64_t)users), k = (int)(mm_rng_next(&rng) % (uint64_t)items);
        d->x.data[2 * r] = (float)u;
        d->x.data[2 * r + 1] = (float)k;
        d->y.data[r] = 3.0f + 0.5f * (pu[u][0] * qi[k][0] + pu[u][1] * qi[k][1]) + 0.1f * mm_rng_normal(&rng);
    }
}

/* Biased MF as a functional model: dot(P[u], Q[i]) + b_u + b_i (+ global bias from Dense). */
static mm_model *biased_mf(int users, int items, int dim) {
    mm_model *m = mm_functional("biased_mf");
    int x = mm_input(m, 1, (int[]){2});
    int u = mm_call(m, mm_Slice(.begin = 0, .size = 1, .name = "user"), x);
    int i = mm_call(m, mm_Slice(.begin = 1, .size = 1, .name = "item"), x);
    int pu = mm_call(m, mm_Embedding(.input_dim = users, .output_dim = dim, .l2 = 1e-4f, .name = "p"), u);
    int qi = mm_call(m, mm_Embedding(.input_dim = items, .output_dim = dim, .l2 = 1e-4f, .name = "q"), i);
    int bu = mm_call(m, mm_Embedding(.input_dim = users, .output_dim = 1, .name = "bu"), u);
    int bi = mm_call(m, mm_Embedding(.input_dim = items, .output_dim = 1, .name = "bi"), i);
    int pf = mm_call(m, mm_Flatten(), pu);
    int qf = mm_call(m, mm_Flatten(), qi);
    int dot = mm_call(m, mm_Dot(), pf, qf);
    int buf = mm_call(m, mm_Flatten(), bu);
    int bif = mm_call(m, mm_Flatten(), bi);
    int sum = mm_call(m, mm_Add(), dot, buf, bif);
    int out = mm_call(m, mm_Dense(.units = 1, .name = "global_bias"), sum);
    CHECK(out >= 0, "building the MF model: %s", mm_errmsg());
    return m;
}

static void test_matrix_factorization(void) {
    mm_dataset train = {0}, test = {0};
    make_ratings(&train, 50, 40, 4000, 1);
    make_ratings(&test, 50, 40, 500, 1); /* same planted model, fresh samples (same seed -> same users) */
    mm_model *m = biased_mf(50, 40, 4);
    char table[4096];
    long params;
    mm_summary(m, table, sizeof table, &params);
    CHECK(params == 50 * 4 + 40 * 4 + 50 + 40 + 2, "params %ld", params);
    CHECK_OK(mm_compile(m, .optimizer = "adam", .learning_rate = 0.02f, .loss = "mse", .metrics = "none"));
    mm_eval_result before, after;
    CHECK_OK(mm_evaluate(m, &test, 100, 1, &before));
    CHECK_OK(mm_fit(m, &train, .epochs = 30, .batch_size = 64, .seed = 3));
    CHECK_OK(mm_evaluate(m, &test, 100, 1, &after));
    printf("biased MF on planted ratings: test MSE %.4f -> %.4f\n", before.loss, after.loss);
    CHECK(after.loss < 0.1, "MF did not learn the planted model: MSE %.4f", after.loss);
    mm_eval_result_free(&before);
    mm_eval_result_free(&after);

    /* model file round trip: functional architecture, embeddings, predictions identical */
    char path[64];
    snprintf(path, sizeof path, "/tmp/mm_test_mf_%d.safetensors", (int)getpid());
    CHECK_OK(mm_model_set_metadata(m, "ids", "{\"users\":[1,2,3]}"));
    CHECK_OK(mm_model_set_metadata(m, "tmp", "x"));
    CHECK_OK(mm_model_set_metadata(m, "tmp", NULL));
    CHECK_OK(mm_model_save(m, path, 1));
    mm_model *l = NULL;
    CHECK_OK(mm_model_load(path, &l));
    unlink(path);
    if (l) {
        const char *ids = mm_model_get_metadata(l, "ids");
        CHECK(ids && !strcmp(ids, "{\"users\":[1,2,3]}"), "metadata lost: %s", ids ? ids : "(none)");
        CHECK(mm_model_get_metadata(l, "tmp") == NULL, "removed metadata came back");
        mm_array a, b;
        CHECK_OK(mm_predict(m, &test.x, 64, &a));
        CHECK_OK(mm_predict(l, &test.x, 64, &b));
        CHECK(a.size == b.size && !memcmp(a.data, b.data, a.size * sizeof(float)), "loaded MF predicts differently");
        mm_array_free(&a);
        mm_array_free(&b);
        char *j1 = mm_model_to_json(m), *j2 = mm_model_to_json(l);
        CHECK(!strcmp(j1, j2), "architecture JSON changed in the round trip");
        CHECK(tu_contains(j1, "\"inbound\"") && tu_contains(j1, "Functional"), "functional JSON: %s", j1);
        free(j1), free(j2);
    }
    mm_model_free(l);

    /* bad id in the data: a clear error naming it */
    train.x.data[2 * 10] = 77;
    mm_status st = mm_fit(m, &train, .epochs = 31, .batch_size = 64);
    CHECK(st == MM_ERR_ARG && tu_contains(mm_errmsg(), "id 77"), "bad id: %s", mm_errmsg());
    mm_model_free(m);
    mm_dataset_free(&train);
    mm_dataset_free(&test);
}

/* Embedding(1000, 8) "e" -> Flatten -> Dense(1), compiled with optimizer and MSE. */
static mm_model *emb_model(mm_embedding_args ea, const char *optimizer) {
    mm_model *m = mm_functional("emb");
    int x = mm_input(m, 1, (int[]){1});
    ea.input_dim = 1000, ea.output_dim = 8, ea.name = "e";
    int f = mm_call(m, mm_Flatten(), mm_call(m, mm_layer_embedding(ea), x));
    CHECK(mm_call(m, mm_Dense(.units = 1), f) >= 0, "build: %s", mm_errmsg());
    CHECK_OK(mm_compile(m, .optimizer = optimizer, .loss = "mse"));
    return m;
}

/* The table "e/embeddings" before and after fitting ids -> targets (read back from model
 * files), and the optimizer's first slot after. */
typedef struct emb_fit {
    mm_st_file f0, f1;
    const float *before, *after, *mom; /* NULL when missing */
} emb_fit;

static void emb_fit_run(mm_model *m, const float *ids, const float *ys, int n, int epochs, int batch, emb_fit *r) {
    memset(r, 0, sizeof *r);
    char p0[64], p1[64];
    snprintf(p0, sizeof p0, "/tmp/mm_test_rows0_%d.safetensors", (int)getpid());
    snprintf(p1, sizeof p1, "/tmp/mm_test_rows1_%d.safetensors", (int)getpid());
    mm_dataset d = {0};
    mm_array_alloc(&d.x, 2, (int[]){n, 1});
    mm_array_alloc(&d.y, 2, (int[]){n, 1});
    memcpy(d.x.data, ids, (size_t)n * sizeof(float));
    memcpy(d.y.data, ys, (size_t)n * sizeof(float));
    CHECK_OK(mm_model_save(m, p0, 0));
    CHECK_OK(mm_fit(m, &d, .epochs = epochs, .batch_size = batch, .shuffle = -1));
    CHECK_OK(mm_model_save(m, p1, 1));
    CHECK_OK(mm_st_read(p0, &r->f0));
    CHECK_OK(mm_st_read(p1, &r->f1));
    const mm_st_tensor *t0 = mm_st_find(&r->f0, "e/embeddings"), *t1 = mm_st_find(&r->f1, "e/embeddings");
    const mm_st_tensor *m1 = mm_st_find(&r->f1, "optimizer/m");
    CHECK(t0 && t1 && m1, "tables missing");
    if (t0 && t1 && m1) r->before = t0->data, r->after = t1->data, r->mom = m1->data;
    unlink(p0);
    unlink(p1);
    mm_dataset_free(&d);
}

static void emb_fit_free(emb_fit *r) {
    mm_st_free(&r->f0);
    mm_st_free(&r->f1);
}

/* Steps that look up rows {0, 1} leave every other row (and its optimizer state) untouched. */
static void test_sparse_rows(void) {
    mm_model *m = emb_model((mm_embedding_args){0}, "adamw");
    const float ids[4] = {0, 1, 1, 0}, ys[4] = {1, -1, -1, 1};
    emb_fit r;
    emb_fit_run(m, ids, ys, 4, 5, 4, &r);
    if (r.before) {
        const float *a0 = r.before, *a1 = r.after;
        CHECK(memcmp(a0 + 16, a1 + 16, (1000 - 2) * 8 * sizeof(float)) == 0, "untouched rows changed");
        CHECK(a0[0] != a1[0] && a0[8] != a1[8], "touched rows 0 and 1 did not move");
        /* the table's optimizer state (first rows of the flat slot) is zero for untouched rows */
        int zero = 1;
        for (int k = 16; k < 8000; k++) zero &= r.mom[k] == 0;
        CHECK(zero && r.mom[0] != 0, "optimizer state touched untouched rows");
    }
    emb_fit_free(&r);
    mm_model_free(m);
}

/* Embedding(dense_updates): Adam moves every row at every step once its moments are non-zero
 * (as Keras and PyTorch without sparse gradients); embeddings_initializer random_normal draws
 * with the given stddev; both survive the architecture JSON; bad settings are errors. */
static void test_embedding_options(void) {
    mm_embedding_args dense = {.embeddings_initializer = "random_normal", .embeddings_scale = 0.01f, .dense_updates = 1};
    mm_model *m = emb_model(dense, "adam");
    char *json = mm_model_to_json(m);
    CHECK(json && strstr(json, "\"embeddings_initializer\":\"random_normal\"") && strstr(json, "\"dense_updates\":true"),
          "json: %s", json ? json : "(null)");
    mm_model *back = NULL;
    CHECK_OK(mm_model_from_json(json, &back));
    char *json2 = back ? mm_model_to_json(back) : NULL;
    CHECK(json2 && !strcmp(json, json2), "JSON round trip differs");
    free(json);
    free(json2);
    mm_model_free(back);

    /* two batches: the first looks up rows 0 and 1, the second rows 2 and 3. Dense updates
     * move rows 0 and 1 again in the second step (their momentum), so they end elsewhere than
     * with sparse updates from the same start, while rows 2 and 3 (zero moments until their
     * step) end the same; row 4 on never moves. */
    const float ids[4] = {0, 1, 2, 3}, ys[4] = {1, -1, 1, -1};
    emb_fit r, q;
    emb_fit_run(m, ids, ys, 4, 1, 2, &r);
    mm_embedding_args sparse = dense;
    sparse.dense_updates = 0;
    mm_model *ms = emb_model(sparse, "adam");
    emb_fit_run(ms, ids, ys, 4, 1, 2, &q);
    if (r.before && q.before) {
        const float *a0 = r.before, *a1 = r.after, *s1 = q.after;
        double s = 0, s2 = 0;
        for (size_t k = 0; k < 1000 * 8; k++) s += a0[k], s2 += (double)a0[k] * a0[k];
        double mean = s / 8000, sd = sqrt(s2 / 8000 - mean * mean);
        CHECK(fabs(mean) < 1e-3 && fabs(sd - 0.01) < 1e-3, "random_normal(0.01): mean %g stddev %g", mean, sd);
        CHECK(!memcmp(a0, q.before, 8000 * sizeof(float)), "same seed, different start");
        CHECK(memcmp(a0 + 4 * 8, a1 + 4 * 8, (1000 - 4) * 8 * sizeof(float)) == 0, "never looked-up rows changed");
        int moved = 1, again = 1;
        for (int k = 0; k < 4 * 8; k++) moved &= a0[k] != a1[k] && r.mom[k] != 0;
        for (int k = 0; k < 2 * 8; k++) again &= a1[k] != s1[k];
        CHECK(moved, "looked-up rows did not move");
        CHECK(again, "dense updates did not move rows 0 and 1 in the second step");
        CHECK(!memcmp(a1 + 2 * 8, s1 + 2 * 8, 2 * 8 * sizeof(float)), "rows 2 and 3 differ between dense and sparse");
    }
    emb_fit_free(&r);
    emb_fit_free(&q);
    mm_model_free(m);
    mm_model_free(ms);

    m = mm_functional("emb_bad");
    int x = mm_input(m, 1, (int[]){1});
    CHECK(mm_call(m, mm_Embedding(.input_dim = 10, .output_dim = 2, .embeddings_initializer = "glorot"), x) < 0 &&
              tu_contains(mm_errmsg(), "embeddings_initializer 'glorot'"),
          "unknown initializer: %s", mm_errmsg());
    CHECK(mm_call(m, mm_Embedding(.input_dim = 10, .output_dim = 2, .embeddings_scale = -1), x) < 0 &&
              tu_contains(mm_errmsg(), "embeddings_scale"),
          "negative scale: %s", mm_errmsg());
    mm_model_free(m);
}

static void test_bad_functional(void) {
    mm_model *m = mm_functional("bad");
    int x = mm_input(m, 1, (int[]){4});
    CHECK(mm_input(m, 1, (int[]){4}) < 0 && tu_contains(mm_errmsg(), "one input"), "second input accepted");
    int a = mm_call(m, mm_Dense(.units = 3), x);
    int b = mm_call(m, mm_Dense(.units = 5), x);
    CHECK(mm_call(m, mm_Add(), a, b) < 0 && tu_contains(mm_errmsg(), "same shape"), "Add of 3 and 5: %s", mm_errmsg());
    CHECK(mm_call(m, mm_Add(), a) < 0 && tu_contains(mm_errmsg(), "two or more"), "Add of one input");
    CHECK(mm_call(m, mm_Dense(.units = 2), 42) < 0 && tu_contains(mm_errmsg(), "not a tensor"), "bad tensor id");
    CHECK(mm_call(m, mm_Dense(.units = 2), -1) < 0, "-1 input accepted");
    CHECK(mm_call(m, mm_Slice(.begin = 2, .size = 5), x) < 0 && tu_contains(mm_errmsg(), "outside"), "bad slice");
    int c = mm_call(m, mm_Concatenate(), a, b);
    CHECK(c >= 0, "concatenate: %s", mm_errmsg());
    int cs[MM_MAX_DIMS];
    CHECK(mm_model_output_shape(m, cs) == 1 && cs[0] == 8, "concat shape %d", cs[0]);
    mm_model *j = NULL;
    CHECK_ERR(mm_model_from_json("{\"class_name\":\"Functional\",\"config\":{\"input\":{\"shape\":[2]},\"layers\":"
                                 "[{\"class_name\":\"Dense\",\"config\":{\"units\":2},\"inbound\":[\"nope\"]}]}}",
                                 &j),
              MM_ERR_FORMAT, "nope");
    mm_model_free(m);
}

int main(void) {
    test_op_gradients();
    test_matrix_factorization();
    test_sparse_rows();
    test_embedding_options();
    test_bad_functional();
    return tu_finish();
}
