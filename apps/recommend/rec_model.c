/* Recommend app: model kinds, data on a split, the three model architectures and the tuned
 * training defaults. */
#include "recommend/rec_model.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *rec_kind_name(rec_kind k) {
    switch (k) {
    case REC_POP: return "pop";
    case REC_MF: return "mf";
    case REC_NEUMF: return "neumf";
    }
    return "?";
}

mm_status rec_kind_parse(const char *name, rec_kind *out) {
    static const rec_kind kinds[] = {REC_MF, REC_NEUMF, REC_POP};
    for (size_t i = 0; name && i < sizeof kinds / sizeof *kinds; i++)
        if (!strcmp(name, rec_kind_name(kinds[i]))) {
            *out = kinds[i];
            return MM_OK;
        }
    return mm_error(MM_ERR_ARG, "unknown model '%s' (expected mf, neumf or pop)", name ? name : "");
}

/* ------------------------------------------------------------------ data */

int rec_split_valid(const char *s) {
    static const char *const names[] = {"u1", "u2", "u3", "u4", "u5", "ua", "ub", "loo"};
    for (size_t i = 0; s && i < sizeof names / sizeof *names; i++)
        if (!strcmp(s, names[i])) return 1;
    return 0;
}

void rec_data_free(rec_data *d) {
    if (!d) return;
    rec_interactions_free(&d->all);
    rec_interactions_free(&d->train);
    rec_interactions_free(&d->test);
}

mm_status rec_data_load(const char *dir, const char *split, const rec_model *ref, rec_data *out) {
    memset(out, 0, sizeof *out);
    if (!dir || !*dir) return mm_error(MM_ERR_ARG, "no data directory given");
    if (split && !rec_split_valid(split))
        return mm_error(MM_ERR_ARG, "unknown split '%s' (expected u1..u5, ua, ub or loo)", split);
    snprintf(out->dir, sizeof out->dir, "%s", dir);
    if (split) snprintf(out->split, sizeof out->split, "%s", split);
    mm_status st = rec_find_ratings_file(dir, out->ratings_path, sizeof out->ratings_path);
    if (st != MM_OK) return st;

    /* the model's index as a reference set: ids agree with the model's */
    rec_interactions index = {0};
    rec_load_options opt = {0};
    if (ref) {
        if ((st = rec_idmap_copy(&ref->users, &index.users)) != MM_OK ||
            (st = rec_idmap_copy(&ref->items, &index.items)) != MM_OK) {
            rec_interactions_free(&index);
            return st;
        }
        opt.ref = &index;
    }
    st = rec_load_interactions(out->ratings_path, &opt, &out->all);
    rec_interactions_free(&index);
    if (st == MM_OK && split) {
        if (!strcmp(split, "loo")) {
            st = rec_split_leave_one_out(&out->all, &out->train, &out->test);
        } else {
            char base[4200], test[4200];
            snprintf(base, sizeof base, "%s/%s.base", dir, split);
            snprintf(test, sizeof test, "%s/%s.test", dir, split);
            st = rec_load_split(base, &out->all, &out->train);
            if (st == MM_OK) st = rec_load_split(test, &out->all, &out->test);
        }
        if (st == MM_OK && (out->train.n == 0 || out->test.n == 0))
            st = mm_error(MM_ERR_FORMAT, "%s: split %s has %zu training and %zu test interactions", dir, split,
                          out->train.n, out->test.n);
    }
    if (st != MM_OK) rec_data_free(out);
    return st;
}

/* ------------------------------------------------------------------ architectures */

mm_status rec_build_mf(int users, int items, int factors, float l2, float l2_bias, mm_model **out) {
    *out = NULL;
    if (users < 1 || items < 1 || factors < 1)
        return mm_error(MM_ERR_ARG, "mf: needs users, items and factors (got %d, %d, %d)", users, items, factors);
    mm_model *m = mm_functional("mf");
    if (!m) return mm_error(MM_ERR_NOMEM, "mf: out of memory");
    int x = mm_input(m, 1, (int[]){2});
    int u = mm_call(m, mm_Slice(.begin = 0, .size = 1, .name = "user"), x);
    int i = mm_call(m, mm_Slice(.begin = 1, .size = 1, .name = "item"), x);
    int p = mm_call(m, mm_Embedding(.input_dim = users, .output_dim = factors, .l2 = l2, .name = "p"), u);
    int q = mm_call(m, mm_Embedding(.input_dim = items, .output_dim = factors, .l2 = l2, .name = "q"), i);
    int bu = mm_call(m, mm_Embedding(.input_dim = users, .output_dim = 1, .l2 = l2_bias, .name = "bu"), u);
    int bi = mm_call(m, mm_Embedding(.input_dim = items, .output_dim = 1, .l2 = l2_bias, .name = "bi"), i);
    int pf = mm_call(m, mm_Flatten(.name = "p_flat"), p);
    int qf = mm_call(m, mm_Flatten(.name = "q_flat"), q);
    int dot = mm_call(m, mm_Dot(.name = "dot"), pf, qf);
    int buf = mm_call(m, mm_Flatten(.name = "bu_flat"), bu);
    int bif = mm_call(m, mm_Flatten(.name = "bi_flat"), bi);
    int bias = mm_call(m, mm_Add(.name = "biases"), buf, bif);
    int gb = mm_call(m, mm_Dense(.units = 1, .name = "global_bias"), bias);
    int y = mm_call(m, mm_Add(.name = "rating"), dot, gb);
    if (y < 0) {
        mm_status st = mm_error(MM_ERR_ARG, "mf: building the model: %s", mm_errmsg());
        mm_model_free(m);
        return st;
    }
    *out = m;
    return MM_OK;
}

/* The Embedding arguments of rec_emb_opts e. */
#define EMB_OPTS(e) .embeddings_initializer = (e).initializer, .embeddings_scale = (e).scale, .dense_updates = (e).dense

mm_status rec_build_ncf(int users, int items, int gmf, const int *mlp, float l2, float dropout, rec_branch which,
                        const rec_emb_opts *emb, mm_model **out) {
    *out = NULL;
    const rec_emb_opts e = emb ? *emb : (rec_emb_opts){0};
    int nm = 0;
    while (mlp && nm < 6 && mlp[nm] > 0) nm++;
    if (users < 1 || items < 1 || ((which & REC_BRANCH_GMF) && gmf < 1) ||
        ((which & REC_BRANCH_MLP) && (nm < 2 || mlp[0] % 2)))
        return mm_error(MM_ERR_ARG, "neumf: needs users, items, GMF factors and an MLP of at least two layers whose "
                                    "first (embedding) size is even");
    if (!(dropout >= 0 && dropout < 1)) return mm_error(MM_ERR_ARG, "neumf: dropout %g outside [0, 1)", dropout);
    mm_model *m = mm_functional(which == REC_BRANCH_BOTH ? "neumf" : which == REC_BRANCH_GMF ? "gmf" : "mlp");
    if (!m) return mm_error(MM_ERR_NOMEM, "neumf: out of memory");
    int x = mm_input(m, 1, (int[]){2});
    int u = mm_call(m, mm_Slice(.begin = 0, .size = 1, .name = "user"), x);
    int i = mm_call(m, mm_Slice(.begin = 1, .size = 1, .name = "item"), x);
    int g = -1, h = -1, y;
    if (which & REC_BRANCH_GMF) {
        int gu = mm_call(m, mm_Embedding(.input_dim = users, .output_dim = gmf, .l2 = l2,
                                      EMB_OPTS(e), .name = "gmf_user"), u);
        int gi = mm_call(m, mm_Embedding(.input_dim = items, .output_dim = gmf, .l2 = l2,
                                      EMB_OPTS(e), .name = "gmf_item"), i);
        int guf = mm_call(m, mm_Flatten(.name = "gmf_user_flat"), gu);
        int gif = mm_call(m, mm_Flatten(.name = "gmf_item_flat"), gi);
        g = mm_call(m, mm_Multiply(.name = "gmf"), guf, gif);
    }
    if (which & REC_BRANCH_MLP) {
        int half = mlp[0] / 2;
        int mu = mm_call(m, mm_Embedding(.input_dim = users, .output_dim = half, .l2 = l2,
                                      EMB_OPTS(e), .name = "mlp_user"), u);
        int mi = mm_call(m, mm_Embedding(.input_dim = items, .output_dim = half, .l2 = l2,
                                      EMB_OPTS(e), .name = "mlp_item"), i);
        int muf = mm_call(m, mm_Flatten(.name = "mlp_user_flat"), mu);
        int mif = mm_call(m, mm_Flatten(.name = "mlp_item_flat"), mi);
        h = mm_call(m, mm_Concatenate(.name = "mlp_concat"), muf, mif);
        for (int k = 1; k < nm; k++) {
            char name[32];
            snprintf(name, sizeof name, "mlp_%d", k);
            h = mm_call(m, mm_Dense(.units = mlp[k], .activation = "relu", .name = name), h);
            if (dropout > 0) {
                snprintf(name, sizeof name, "mlp_dropout_%d", k);
                h = mm_call(m, mm_Dropout(.rate = dropout, .name = name), h);
            }
        }
    }
    int c = which == REC_BRANCH_BOTH ? mm_call(m, mm_Concatenate(.name = "neumf_concat"), g, h) : which == REC_BRANCH_GMF ? g : h;
    y = mm_call(m, mm_Dense(.units = 1, .activation = "sigmoid", .name = "prediction"), c);
    if (y < 0) {
        mm_status st = mm_error(MM_ERR_ARG, "neumf: building the model: %s", mm_errmsg());
        mm_model_free(m);
        return st;
    }
    *out = m;
    return MM_OK;
}

mm_status rec_build_neumf(int users, int items, int gmf, const int *mlp, float l2, float dropout,
                          const rec_emb_opts *emb, mm_model **out) {
    return rec_build_ncf(users, items, gmf, mlp, l2, dropout, REC_BRANCH_BOTH, emb, out);
}

mm_status rec_build_pop(int users, int items, mm_model **out) {
    *out = NULL;
    if (users < 1 || items < 1) return mm_error(MM_ERR_ARG, "pop: needs users and items (got %d, %d)", users, items);
    mm_model *m = mm_functional("pop");
    if (!m) return mm_error(MM_ERR_NOMEM, "pop: out of memory");
    int x = mm_input(m, 1, (int[]){2});
    int i = mm_call(m, mm_Slice(.begin = 1, .size = 1, .name = "item"), x);
    int c = mm_call(m, mm_Embedding(.input_dim = items, .output_dim = 1, .name = "popularity"), i);
    int y = mm_call(m, mm_Flatten(.name = "count"), c);
    if (y < 0) {
        mm_status st = mm_error(MM_ERR_ARG, "pop: building the model: %s", mm_errmsg());
        mm_model_free(m);
        return st;
    }
    *out = m;
    return MM_OK;
}

/* ------------------------------------------------------------------ defaults */

/* Tuned on MovieLens-100k (see the report in the README):
 *   mf:    5-fold u1..u5 mean test RMSE, predictions clipped to 1..5.
 *   neumf: leave-one-out, HR@10 / NDCG@10 with 99 sampled negatives (seed 42). */
void rec_train_defaults(rec_train_config *c) {
    if (!c->optimizer) c->optimizer = "adam";
    if (!c->batch_size) c->batch_size = 256;
    switch (c->kind) {
    case REC_MF:
        if (!c->split) c->split = "u1";
        if (!c->epochs) c->epochs = 20;
        if (!c->factors) c->factors = 64;
        if (!c->lr) c->lr = 0.002f;
        if (!c->l2) c->l2 = 4e-4f;
        break;
    case REC_NEUMF:
        if (!c->split) c->split = "loo";
        if (!c->epochs) c->epochs = 8;
        if (!c->factors) c->factors = 128;
        if (!c->schedule) c->schedule = "cosine";
        if (!c->mlp[0]) {
            static const int tower[] = {64, 32, 16, 8, 0};
            memcpy(c->mlp, tower, sizeof tower);
        }
        if (!c->negatives) c->negatives = 6;
        if (!c->lr) c->lr = 0.001f;
        if (!c->pretrain_lr) c->pretrain_lr = 0.001f;
        /* normal(0.01) tables with dense Adam and L2 1e-5 per lookup, as the NCF reference
         * code but for the L2: HR@10 +0.010 and NDCG@10 +0.006 on each of seeds 0-3 against
         * GMF 64, uniform(0.05), sparse, no L2 (README). Dense costs O(table) per step: large
         * catalogues want --sparse-embeddings. */
        if (!c->init) c->init = "random_normal";
        if (!c->init_scale) c->init_scale = 0.01f;
        if (!c->dense_embeddings) c->dense_embeddings = 1;
        if (!c->l2) c->l2 = 1e-5f;
        break;
    case REC_POP:
        if (!c->split) c->split = "loo";
        c->epochs = 2; /* the second step removes the first one's rounding: exact counts */
        c->batch_size = 1;
        break;
    }
    if (!c->schedule) c->schedule = "constant";
    /* negative: explicitly none */
    if (c->l2 < 0) c->l2 = 0;
    if (c->l2_bias < 0) c->l2_bias = 0;
    if (c->dropout < 0) c->dropout = 0;
    if (c->pretrain < 0 || c->kind != REC_NEUMF) c->pretrain = 0;
}
