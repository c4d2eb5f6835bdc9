/* The recommend app's model half: popularity, biased matrix factorization and NeuMF built
 * as mediaml functional models over x = (user, item) dense ids, trained with mm_fit,
 * evaluated with the metrics of recommend.h, saved with what `top` and `similar` need
 * (model type, id maps, data directory, split) in the model file's application metadata,
 * and used for top-k recommendations with reasons and similar items.
 *
 * Public mediaml API only; failures return an mm_status with the message in mm_errmsg(),
 * nothing here prints or exits. Structures filled by a call are owned by the caller and
 * released with their _free function (which accepts a zeroed structure). */
#ifndef MEDIAML_APP_REC_MODEL_H
#define MEDIAML_APP_REC_MODEL_H

#include "recommend/recommend.h"

#include <mediaml.h>

#include <stddef.h>
#include <stdint.h>

typedef enum rec_kind { REC_POP = 1, REC_MF, REC_NEUMF } rec_kind;

/* "pop", "mf", "neumf" */
const char *rec_kind_name(rec_kind k);
/* Parses a model name; an unknown name is an MM_ERR_ARG error naming the choices. */
mm_status rec_kind_parse(const char *name, rec_kind *out);

/* Seed of the NCF protocol's 99 test negatives: fixed, so that every model and every
 * training seed is scored on the same cases. */
#define REC_EVAL_SEED 42
#define REC_EVAL_NEGATIVES 99
#define REC_EVAL_K 10

/* ------------------------------------------------------------------ data */

/* A data set on a split: all ratings (defining the dense id index), train and test with
 * that index. split: "u1".."u5", "ua", "ub" (MovieLens's DIR/<split>.base and .test) or
 * "loo" (leave-one-out by latest timestamp). */
typedef struct rec_data {
    char dir[4096];
    char ratings_path[4096];
    char split[8];
    rec_interactions all, train, test;
} rec_data;

typedef struct rec_model rec_model;

/* 1 if split is one of the names above. */
int rec_split_valid(const char *split);
/* Loads DIR's ratings file (u.data, ratings.csv or ratings.dat) and the split (split NULL:
 * only all, train and test stay empty). ref (may be NULL) gives the id index: ids are those
 * of the model, and an id the model lacks is an error. */
mm_status rec_data_load(const char *dir, const char *split, const rec_model *ref, rec_data *out);
void rec_data_free(rec_data *d);

/* ------------------------------------------------------------------ models */

/* prediction = global bias + user bias + item bias + <p_u, q_i>:
 *   x -> Slice(user), Slice(item) -> Embedding p, q (factors, l2) and bu, bi (1, l2_bias)
 *   dot = Dot(p, q);  biases = Dense(1, "global_bias")(Add(bu, bi));  out = Add(dot, biases)
 * The Dense unit holds the global bias (its bias) and a scale on the two bias terms; it
 * sees only the biases so that the factors cannot escape their L2 through a free scale. */
mm_status rec_build_mf(int users, int items, int factors, float l2, float l2_bias, mm_model **out);

/* NeuMF (He et al. 2017): GMF = Multiply(P_g[u], Q_g[i]) (gmf factors), MLP = Concatenate(
 * P_m[u], Q_m[i]) (mlp[0] / 2 each) -> Dense relu mlp[1], mlp[2], ... (dropout after each
 * when dropout > 0), prediction = Dense(1, sigmoid)(Concatenate(GMF, MLP)). mlp is
 * zero-terminated, at most 6 entries. */
/* How NeuMF's embedding tables start and train (NULL: the engine's defaults, Keras's
 * uniform(-0.05, 0.05) and sparse row updates). */
typedef struct rec_emb_opts {
    const char *initializer;  /* "uniform" or "random_normal" (NULL: uniform) */
    float scale;              /* uniform maxval / normal stddev (0: 0.05) */
    int dense;                /* 1: dense updates (every row, every step), as the NCF reference */
} rec_emb_opts;
mm_status rec_build_neumf(int users, int items, int gmf, const int *mlp, float l2, float dropout,
                          const rec_emb_opts *emb, mm_model **out);

/* NeuMF's branches alone, each with its own Dense(1, sigmoid) "prediction" (the layer names
 * are NeuMF's, for pretraining): */
typedef enum rec_branch { REC_BRANCH_GMF = 1, REC_BRANCH_MLP = 2, REC_BRANCH_BOTH = 3 } rec_branch;
mm_status rec_build_ncf(int users, int items, int gmf, const int *mlp, float l2, float dropout, rec_branch which,
                        const rec_emb_opts *emb, mm_model **out);

/* Popularity: score(user, item) = P[item], a one-column item embedding that training sets
 * to the item's number of training interactions. */
mm_status rec_build_pop(int users, int items, mm_model **out);

/* ------------------------------------------------------------------ training */

typedef struct rec_epoch_info {
    int epoch, epochs;
    const char *phase;       /* NULL: the model; "gmf" / "mlp": NeuMF pretraining */
    double loss;             /* training loss (with the L2 terms) */
    double seconds;          /* this epoch: sampling + fit */
    long examples;           /* training examples this epoch (positives + negatives) */
    int has_rmse;
    double rmse, mae;        /* mf: test split, clipped to the rating range */
    int has_ncf;
    double hr, ndcg;         /* neumf: NCF protocol on the test split */
} rec_epoch_info;

/* Return non-zero to stop after this epoch. */
typedef int (*rec_epoch_fn)(const rec_epoch_info *e, void *user);

/* Zero / NULL fields take the defaults of the model kind (rec_train_defaults). */
typedef struct rec_train_config {
    rec_kind kind;            /* required */
    const char *data_dir;     /* required */
    const char *split;        /* NULL: "u1" for mf, "loo" for neumf and pop */
    const char *out_path;     /* model file (required) */
    int epochs;
    int factors;              /* mf: p/q size; neumf: GMF size (MLP layers from mlp) */
    int mlp[7];               /* neumf: embedding concat size, then the relu tower; 0-terminated */
    int batch_size;
    int negatives;            /* neumf: sampled negatives per positive and epoch */
    float lr;
    float l2, l2_bias;        /* per-lookup L2 on the embeddings (factors, biases); < 0: none */
    float dropout;            /* neumf: after each MLP Dense; < 0: none */
    int pretrain;             /* neumf: epochs of GMF and of MLP trained alone first (He et al.,
                                 section 3.4.1); < 0: none */
    float pretrain_lr;        /* neumf: Adam learning rate of the pretraining */
    const char *init;         /* neumf: embedding initializer, "uniform" or "random_normal" */
    float init_scale;         /* neumf: its maxval / stddev */
    int dense_embeddings;     /* neumf: 1 dense Adam on the embedding tables, < 0 sparse (lazy) */
    const char *optimizer;    /* "adam", "sgd", ... */
    const char *schedule;     /* "constant" or "cosine" (to 0 over all epochs) */
    uint64_t seed;
    int eval_every_epoch;     /* 1: fill rmse / hr in each rec_epoch_info (fast on ml-100k) */
    rec_epoch_fn on_epoch;
    void *user;
    mm_progress_fn on_batch;  /* mm_fit's per-batch callback (non-zero stops) */
    void *batch_user;
} rec_train_config;

/* Fills the zero fields of c with the tuned defaults of c->kind (see rec_model.c). */
void rec_train_defaults(rec_train_config *c);

typedef struct rec_train_report {
    long params;
    int users, items;
    long train_count, test_count;
    int epochs_done;
    int stopped;              /* on_epoch / on_batch asked to stop: the model is saved, unless
                                 the stop came during NeuMF pretraining (epochs_done == 0) */
    double seconds;           /* whole training, without the final evaluation */
} rec_train_report;

/* Loads the data, builds, trains and saves the model (with its metadata). c is completed
 * with the defaults (so the caller can print them). Called before the first epoch when set. */
mm_status rec_train(rec_train_config *c, void (*on_start)(const rec_train_config *c, const rec_train_report *r, void *user),
                    rec_train_report *r);

/* ------------------------------------------------------------------ model files */

/* A trained model with its metadata. */
struct rec_model {
    char path[4096];
    mm_model *model;
    rec_kind kind;
    char data_dir[4096];
    char split[8];
    rec_idmap users, items;   /* dense model ids <-> original ids */
    float clip_min, clip_max; /* rating range (mf), both 0 when not clipping */
    char *item_tables;        /* comma-separated embedding tensor names for reasons / similar */
    char *config;             /* training settings (JSON), for display */
    float *item_vec;          /* [items.n x item_dim], read on first use */
    int item_dim;
    float *buf;               /* scoring input (private) */
    size_t buf_cap;
};

mm_status rec_model_load(const char *path, rec_model *out);
void rec_model_free(rec_model *m);

/* Item vectors for reasons and similar items: the rows of the item embedding tables
 * (concatenated when there are several), read from the model file. MM_ERR_ARG when the
 * model has none (pop). */
mm_status rec_model_item_vectors(rec_model *m);

/* Scores of items[0..n) for a dense user (mf: predicted rating, clipped; neumf:
 * probability; pop: count). */
mm_status rec_model_score(rec_model *m, int user, const int *items, int n, float *out);

/* A rec_scorer over the model (ctx = the rec_model). NaN marks a failed prediction (the
 * metrics then fail); the message is in mm_errmsg(). */
rec_scorer rec_model_scorer(rec_model *m);

/* ------------------------------------------------------------------ evaluation */

typedef struct rec_eval_report {
    rec_kind kind;
    char split[8];
    long train_count, test_count;
    int users, items;
    int has_rmse;
    double rmse, mae;                 /* mf */
    rec_rank_metrics ncf, full;       /* model: HR/NDCG@10 (NCF, 99 negatives), Recall/NDCG@10 */
    rec_rank_metrics pop_ncf, pop_full; /* popularity baseline on the same cases */
    double seconds;
} rec_eval_report;

/* Evaluates a model on a data set (the model's ids must cover the data's: the data is
 * mapped through the model's id maps). */
mm_status rec_evaluate(rec_model *m, const rec_data *d, rec_eval_report *r);

/* ------------------------------------------------------------------ recommendations */

typedef struct rec_reason {
    int64_t item;     /* original id of a rated item */
    float rating;
    float sim;
} rec_reason;

#define REC_MAX_REASONS 3

typedef struct rec_pick {
    int64_t item;     /* original item id */
    float score;
    int n_reasons;
    rec_reason reasons[REC_MAX_REASONS];
} rec_pick;

typedef struct rec_top_result {
    int64_t user;
    int known;        /* 0: the user is not in the model; picks are by popularity */
    int n_rated;      /* the user's rated items (excluded) */
    int n;
    rec_pick *picks;
} rec_top_result;

/* Top k items for an original user id: model scores over all items, the user's rated items
 * (in data) excluded, each with up to REC_MAX_REASONS supporting rated items (rec_reasons
 * over the item vectors; none for pop). An unknown user gets the most popular items of
 * data (known = 0). data must carry the model's index (rec_data_load with ref = m). */
mm_status rec_top(rec_model *m, const rec_interactions *data, int64_t user, int k,
                  rec_top_result *out);
void rec_top_result_free(rec_top_result *r);

/* The k most similar items (cosine over the item vectors) of an original item id; an item
 * the model does not know is an MM_ERR_ARG error. out holds k entries; *n the count. */
mm_status rec_similar(rec_model *m, int64_t item, int k, int64_t *ids, float *sims, int *n);

#endif
