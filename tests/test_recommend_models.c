/* The recommend models on MovieLens-100k (skipped without the data): mf learns ratings in a
 * few epochs, neumf beats popularity after two epochs, pop stores the exact training counts,
 * model files round-trip (metadata, id maps, identical scores), top-k excludes rated items
 * and falls back to popularity for an unknown user, similar items reject an unknown id. */
#include "testutil.h"
#include "recommend/rec_model.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char data_dir[4096];

typedef struct epochs_seen {
    int n;
    rec_epoch_info last;
} epochs_seen;

static int record_epoch(const rec_epoch_info *e, void *user) {
    epochs_seen *s = user;
    s->n++;
    s->last = *e;
    return 0;
}

static void test_mf(void) {
    const char *path = tu_tmp_path("mf.safetensors");
    epochs_seen seen = {0};
    rec_train_config c = {.kind = REC_MF, .data_dir = data_dir, .split = "u1", .out_path = path, .epochs = 5,
                          .eval_every_epoch = 1, .on_epoch = record_epoch, .user = &seen};
    rec_train_report r;
    CHECK_OK(rec_train(&c, NULL, &r));
    CHECK(seen.n == 5 && r.epochs_done == 5 && r.train_count == 80000 && r.test_count == 20000, "epochs %d, %ld / %ld", seen.n,
          r.train_count, r.test_count);
    CHECK(c.factors == 64 && c.batch_size == 256 && c.l2 > 0, "defaults filled: factors %d", c.factors);
    printf("mf, 5 epochs on u1: test RMSE %.4f, MAE %.4f\n", seen.last.rmse, seen.last.mae);
    CHECK(seen.last.has_rmse && seen.last.rmse < 1.0, "mf RMSE %.4f", seen.last.rmse);

    /* round trip: the loaded model has the metadata and scores exactly as in training */
    rec_model m;
    CHECK_OK(rec_model_load(path, &m));
    if (!m.model) return;
    CHECK(m.kind == REC_MF && !strcmp(m.split, "u1") && m.users.n == 943 && m.items.n == 1682, "metadata: %s %s %d %d",
          rec_kind_name(m.kind), m.split, m.users.n, m.items.n);
    CHECK(m.clip_min == 1 && m.clip_max == 5, "clip %g..%g", m.clip_min, m.clip_max);
    CHECK(tu_contains(m.config, "\"factors\":64"), "config %s", m.config);
    rec_data d;
    CHECK_OK(rec_data_load(m.data_dir, "u1", &m, &d));
    CHECK(d.all.users.n == 943 && d.all.users.orig[0] == 196 && d.all.items.orig[0] == 242, "ids follow u.data");
    rec_eval_report e;
    CHECK_OK(rec_evaluate(&m, &d, &e));
    CHECK(e.has_rmse && e.rmse == seen.last.rmse && e.mae == seen.last.mae, "loaded RMSE %.6f vs %.6f", e.rmse, seen.last.rmse);
    CHECK(e.ncf.n_users == 20000 && e.pop_ncf.hr > 0.3 && e.full.n_users > 400, "ranking metrics %ld %g %ld", e.ncf.n_users,
          e.pop_ncf.hr, e.full.n_users);

    /* top: rated items excluded, reasons from the user's own ratings, sorted scores */
    rec_top_result t;
    CHECK_OK(rec_top(&m, &d.all, 196, 10, &t));
    CHECK(t.known && t.n == 10 && t.n_rated == 39, "top: known %d n %d rated %d", t.known, t.n, t.n_rated);
    int u = rec_idmap_find(&m.users, 196), rated_hit = 0, sorted = 1, reasons = 0;
    for (int i = 0; i < t.n; i++) {
        int it = rec_idmap_find(&m.items, t.picks[i].item);
        for (size_t k = 0; k < d.all.n; k++) rated_hit |= d.all.user[k] == u && d.all.item[k] == it;
        if (i) sorted &= t.picks[i].score <= t.picks[i - 1].score;
        reasons += t.picks[i].n_reasons;
        for (int q = 0; q < t.picks[i].n_reasons; q++) {
            int ri = rec_idmap_find(&m.items, t.picks[i].reasons[q].item), own = 0;
            for (size_t k = 0; k < d.all.n; k++) own |= d.all.user[k] == u && d.all.item[k] == ri;
            CHECK(own, "reason %lld is not one of the user's items", (long long)t.picks[i].reasons[q].item);
        }
        CHECK(t.picks[i].score >= 1 && t.picks[i].score <= 5, "clipped score %g", t.picks[i].score);
    }
    CHECK(!rated_hit && sorted && reasons > 0, "top: rated %d sorted %d reasons %d", rated_hit, sorted, reasons);
    rec_top_result_free(&t);

    /* unknown user: popularity, marked */
    CHECK_OK(rec_top(&m, &d.all, 999999, 3, &t));
    CHECK(!t.known && t.n == 3 && t.picks[0].item == 50 && t.picks[0].score == 583, "unknown user: %d %lld %g", t.known,
          t.n ? (long long)t.picks[0].item : -1LL, t.n ? t.picks[0].score : 0);
    rec_top_result_free(&t);

    /* similar items; unknown item */
    int64_t ids[5];
    float sims[5];
    int n;
    CHECK_OK(rec_similar(&m, 50, 5, ids, sims, &n));
    CHECK(n == 5 && ids[0] != 50 && sims[0] >= sims[4] && sims[0] <= 1.0001f, "similar: %d", n);
    CHECK_ERR(rec_similar(&m, 99999, 5, ids, sims, &n), MM_ERR_ARG, "unknown item 99999");
    rec_data_free(&d);
    rec_model_free(&m);
}

static void test_neumf_and_pop(void) {
    const char *path = tu_tmp_path("neumf.safetensors"), *ppath = tu_tmp_path("pop.safetensors");
    epochs_seen seen = {0};
    /* a small NeuMF (GMF 8, MLP 32-16-8) keeps the test fast */
    rec_train_config c = {.kind = REC_NEUMF, .data_dir = data_dir, .out_path = path, .epochs = 2, .factors = 8,
                          .mlp = {32, 16, 8}, .eval_every_epoch = 1, .on_epoch = record_epoch, .user = &seen};
    rec_train_report r;
    CHECK_OK(rec_train(&c, NULL, &r));
    CHECK(!strcmp(c.split, "loo") && c.negatives == 6 && !strcmp(c.schedule, "cosine") && r.test_count == 943,
          "neumf defaults: %s %d %s", c.split, c.negatives, c.schedule);
    /* every epoch sees fresh negatives: positives x (1 + 6) */
    CHECK(seen.n == 2 && seen.last.examples == 7 * r.train_count, "examples %ld", seen.last.examples);

    rec_train_config p = {.kind = REC_POP, .data_dir = data_dir, .out_path = ppath};
    CHECK_OK(rec_train(&p, NULL, &r));

    rec_model nm, pm;
    rec_data d;
    CHECK_OK(rec_model_load(path, &nm));
    CHECK_OK(rec_model_load(ppath, &pm));
    if (!nm.model || !pm.model) return;
    CHECK_OK(rec_data_load(nm.data_dir, "loo", &nm, &d));
    rec_eval_report e, pe;
    CHECK_OK(rec_evaluate(&nm, &d, &e));
    CHECK_OK(rec_evaluate(&pm, &d, &pe));
    printf("neumf, 2 epochs: HR@10 %.4f NDCG@10 %.4f (popularity %.4f / %.4f)\n", e.ncf.hr, e.ncf.ndcg, e.pop_ncf.hr,
           e.pop_ncf.ndcg);
    CHECK(e.ncf.n_users == 943 && !e.has_rmse, "neumf eval: %ld cases", e.ncf.n_users);
    CHECK(e.ncf.hr == seen.last.hr && e.ncf.ndcg == seen.last.ndcg, "loaded HR %.6f vs %.6f", e.ncf.hr, seen.last.hr);
    CHECK(e.ncf.hr > e.pop_ncf.hr && e.ncf.ndcg > e.pop_ncf.ndcg, "neumf HR %.4f does not beat popularity %.4f", e.ncf.hr,
          e.pop_ncf.hr);

    /* the pop model scores are the training counts, so it matches the baseline exactly */
    rec_popularity pop;
    CHECK_OK(rec_popularity_fit(&d.train, &pop));
    int items[1682];
    float sc[1682];
    for (int i = 0; i < 1682; i++) items[i] = i;
    CHECK_OK(rec_model_score(&pm, 0, items, 1682, sc));
    CHECK(!memcmp(sc, pop.count, sizeof sc), "pop model scores differ from the counts");
    CHECK(pe.ncf.hr == pe.pop_ncf.hr && pe.full.ndcg == pe.pop_full.ndcg, "pop model %.4f vs baseline %.4f", pe.ncf.hr,
          pe.pop_ncf.hr);
    rec_popularity_free(&pop);

    /* pop has no item embeddings; neumf's are GMF + MLP side by side */
    int64_t ids[3];
    float sims[3];
    int n;
    CHECK_ERR(rec_similar(&pm, 50, 3, ids, sims, &n), MM_ERR_ARG, "no item embeddings");
    CHECK_OK(rec_similar(&nm, 50, 3, ids, sims, &n));
    CHECK(n == 3 && nm.item_dim == 8 + 16, "neumf item vectors: %d", nm.item_dim);
    rec_data_free(&d);
    rec_model_free(&nm);
    rec_model_free(&pm);
}

static void test_errors(void) {
    rec_data d;
    CHECK_ERR(rec_data_load("/nonexistent/movielens", "u1", NULL, &d), MM_ERR_IO, "/nonexistent/movielens");
    CHECK_ERR(rec_data_load(data_dir, "u9", NULL, &d), MM_ERR_ARG, "unknown split 'u9'");
    rec_kind k;
    CHECK_ERR(rec_kind_parse("xyz", &k), MM_ERR_ARG, "unknown model 'xyz'");
    rec_train_config c = {.kind = REC_MF, .data_dir = data_dir, .out_path = tu_tmp_path("x"), .epochs = -1};
    rec_train_report r;
    CHECK_ERR(rec_train(&c, NULL, &r), MM_ERR_ARG, "epochs");
    /* a model file without recommend metadata */
    mm_model *plain = mm_sequential();
    mm_add(plain, mm_Dense(.units = 1, .input_shape = {2}));
    CHECK_OK(mm_model_save(plain, tu_tmp_path("plain.safetensors"), 0));
    mm_model_free(plain);
    rec_model m;
    CHECK_ERR(rec_model_load(tu_tmp_path("plain.safetensors"), &m), MM_ERR_FORMAT, "not a recommend model");
}

/* Without MovieLens: synthetic interactions written as a u.data file, leave-one-out. */
static void test_synthetic(void) {
    rec_synthetic_config sc = {.users = 120, .items = 200, .interactions = 6000, .seed = 5};
    rec_interactions syn;
    CHECK_OK(rec_synthetic(&sc, &syn));
    char dir[4096];
    snprintf(dir, sizeof dir, "%s", tu_tmp_path("synthetic"));
    CHECK(mkdir(dir, 0755) == 0, "mkdir %s", dir);
    char path[4200];
    snprintf(path, sizeof path, "%s/u.data", dir);
    FILE *f = fopen(path, "w");
    CHECK(f != NULL, "writing %s", path);
    if (!f) return;
    /* 1-based ids as in MovieLens; user 1 first so that dense id 0 is original id 1 */
    for (size_t i = 0; i < syn.n; i++)
        fprintf(f, "%d\t%d\t%g\t%lld\n", syn.user[i] + 1, syn.item[i] + 1, syn.rating[i], (long long)syn.timestamp[i]);
    fclose(f);
    rec_interactions_free(&syn);
    const char *out = tu_tmp_path("syn.safetensors");
    rec_kind kinds[3] = {REC_MF, REC_NEUMF, REC_POP};
    for (int k = 0; k < 3; k++) {
        rec_train_config c = {.kind = kinds[k], .data_dir = dir, .split = "loo", .out_path = out, .epochs = 2, .factors = 8,
                              .batch_size = 64};
        rec_train_report r;
        CHECK_OK(rec_train(&c, NULL, &r));
        rec_model m;
        rec_data d;
        rec_eval_report e;
        CHECK_OK(rec_model_load(out, &m));
        if (!m.model) continue;
        CHECK_OK(rec_data_load(dir, "loo", &m, &d));
        CHECK_OK(rec_evaluate(&m, &d, &e));
        CHECK(e.ncf.n_users == 120 && e.ncf.hr >= 0 && e.ncf.hr <= 1 && (e.has_rmse == (kinds[k] == REC_MF)),
              "%s on synthetic data: %ld cases", rec_kind_name(kinds[k]), e.ncf.n_users);
        rec_top_result t;
        CHECK_OK(rec_top(&m, &d.all, 1, 5, &t));
        CHECK(t.known && t.n == 5, "synthetic top");
        rec_top_result_free(&t);
        rec_data_free(&d);
        rec_model_free(&m);
    }
    rec_data d;
    CHECK_ERR(rec_data_load(dir, "u1", NULL, &d), MM_ERR_IO, "u1.base");
}

int main(void) {
    mm_set_threads(2);
    test_synthetic();
    const char *root = tu_data_dir();
    if (root) {
        snprintf(data_dir, sizeof data_dir, "%.4000s/movielens-100k", root);
        char probe[4200];
        snprintf(probe, sizeof probe, "%s/u.data", data_dir);
        if (access(probe, R_OK) == 0) {
            test_errors();
            test_mf();
            test_neumf_and_pop();
        } else {
            fprintf(stderr, "skipping ml-100k tests: %s not found\n", probe);
        }
    }
    return tu_finish();
}
