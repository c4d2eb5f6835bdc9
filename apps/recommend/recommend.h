/* The recommend app's data and evaluation half: MovieLens interactions and item metadata,
 * dense id indexing, splits (MovieLens's own, leave-one-out, implicit feedback), rating and
 * ranking metrics (NCF sampled protocol, full ranking), a popularity baseline, a synthetic
 * interaction generator, and embedding-based "reasons" / "similar items" helpers.
 *
 * Public mediaml API only. Every fallible call returns an mm_status and sets the message
 * (mm_errmsg) through mm_error; nothing here prints, exits or aborts. Structures filled by
 * a call are zeroed first, owned by the caller afterwards and released with their _free
 * function (which also accepts a zeroed or partially filled structure); on failure the
 * output is left zeroed.
 *
 * Ids: "original" ids are the ids in the files (int64); "dense" ids are 0..n-1 in order of
 * first appearance in the file that defined the index. Dense ids are int32_t (== int). */
#ifndef MEDIAML_APP_RECOMMEND_H
#define MEDIAML_APP_RECOMMEND_H

#include <mediaml.h>

#include <stddef.h>
#include <stdint.h>

/* ------------------------------------------------------------------ RNG */

/* splitmix64: out = mix(state += 0x9E3779B97F4A7C15). Also usable as a counter RNG:
 * rec_mix64(seed + i * golden) is the i-th number of the stream. */
uint64_t rec_mix64(uint64_t x);
uint64_t rec_splitmix64(uint64_t *state);
/* Uniform integer in [0, n) (n > 0, n < 2^32) from 64 random bits (multiply-shift). */
static inline uint32_t rec_bounded(uint64_t r, uint32_t n) {
    return (uint32_t)(((r >> 32) * (uint64_t)n) >> 32);
}

/* ------------------------------------------------------------------ id index */

/* Original id <-> dense id. orig[dense] is the original id; lookups go through an
 * open-addressing hash table. */
typedef struct rec_idmap {
    int n;           /* number of dense ids */
    int64_t *orig;   /* [n] original id of each dense id */
    int cap;         /* capacity of orig */
    int32_t *table;  /* hash slots holding dense ids, -1 = empty (private) */
    size_t nslots;   /* power of two */
} rec_idmap;

/* Dense id of an original id, or -1. */
int rec_idmap_find(const rec_idmap *m, int64_t orig);
/* Dense id of orig, adding it (as id n) when new. */
mm_status rec_idmap_add(rec_idmap *m, int64_t orig, int *dense);
mm_status rec_idmap_copy(const rec_idmap *src, rec_idmap *dst);
/* The identity index 0..n-1 (synthetic data). */
mm_status rec_idmap_identity(int n, rec_idmap *out);
void rec_idmap_free(rec_idmap *m);

/* ------------------------------------------------------------------ interactions */

/* Structure of arrays, one entry per rating, in file order. */
typedef struct rec_interactions {
    size_t n;            /* number of interactions */
    size_t cap;
    int32_t *user;       /* [n] dense user id */
    int32_t *item;       /* [n] dense item id */
    float *rating;       /* [n] */
    int64_t *timestamp;  /* [n] unix seconds */
    rec_idmap users;     /* users.n users; users.orig[dense] = original user id */
    rec_idmap items;     /* items.n items; items.orig[dense] = original item id */
} rec_interactions;

/* Number of users / items of the index (not only those present in this set). */
static inline int rec_num_users(const rec_interactions *d) { return d->users.n; }
static inline int rec_num_items(const rec_interactions *d) { return d->items.n; }

typedef struct rec_load_options {
    /* Accepted rating range, inclusive. Both 0: the format's default, 1..5 for tab- and
     * "::"-separated files (u.data, ratings.dat), 0.5..5 for ratings.csv. */
    float min_rating, max_rating;
    /* Optional reference index: ids are mapped through ref's user and item indexes (the
     * output gets copies of them, so dense ids agree with ref); an id that ref lacks is an
     * error. NULL: build a fresh index in order of first appearance. */
    const rec_interactions *ref;
} rec_load_options;

/* Loads a ratings file; the format comes from the content, not the name:
 *   - first line with a tab            -> u.data style: user TAB item TAB rating TAB time
 *   - first line with "::"             -> ratings.dat style (ml-1m / ml-10m)
 *   - first line with commas that does not start with a digit -> header line
 *                                         (ratings.csv: userId,movieId,rating,timestamp)
 *   - first line with commas           -> the same without a header
 * Every line must have exactly 4 fields; ids are non-negative integers, the rating a finite
 * number within the range, the timestamp an integer. Blank lines are skipped; a trailing CR
 * is ignored. Errors name the file and line ("path:LINE: ..."); a file without any
 * interaction is an MM_ERR_FORMAT error. opt may be NULL. */
mm_status rec_load_interactions(const char *path, const rec_load_options *opt, rec_interactions *out);

/* A MovieLens split file (u1.base, u1.test, ua.base, ...) indexed like ref (the full
 * u.data), so dense ids agree across files. Same as rec_load_interactions with opt->ref. */
mm_status rec_load_split(const char *path, const rec_interactions *ref, rec_interactions *out);

void rec_interactions_free(rec_interactions *d);
/* An empty set with copies of src's indexes (n = 0); reserve > 0 pre-allocates. */
mm_status rec_interactions_like(const rec_interactions *src, size_t reserve, rec_interactions *out);
/* Appends one interaction (dense ids must be within the indexes). */
mm_status rec_interactions_push(rec_interactions *d, int user, int item, float rating, int64_t ts);

/* ------------------------------------------------------------------ splits */

/* Leave-one-out for ranking (the NCF protocol): for each user, the interaction with the
 * latest timestamp goes to test; ties (MovieLens users often rate many items in the same
 * second: 415 of ml-100k's 943 users tie at their latest timestamp) go to the interaction
 * that comes later in the file. File order is used rather than the item id because ml-100k
 * item ids follow the catalogue and correlate with popularity: "larger id wins" would bias
 * the held-out items towards obscure movies (popularity HR@10 0.32 instead of 0.41).
 * Users with a single interaction keep it in train and get no test item. train keeps file
 * order; test is ordered by dense user id. Both carry copies of all's indexes. */
mm_status rec_split_leave_one_out(const rec_interactions *all, rec_interactions *train,
                                  rec_interactions *test);

/* Implicit feedback: keeps interactions with rating >= threshold (threshold <= 0 keeps all:
 * every rating is a positive interaction) and sets their rating to 1. */
mm_status rec_implicit(const rec_interactions *in, float threshold, rec_interactions *out);

/* Per-user item sets (CSR): the items of user u are items[offset[u] .. offset[u+1]),
 * sorted ascending without duplicates. */
typedef struct rec_user_items {
    int n_users, n_items;
    size_t *offset;  /* [n_users + 1] */
    int32_t *items;
} rec_user_items;

/* Item sets of d's interactions with rating >= min_rating (min_rating <= 0: all). a second
 * set d2 (may be NULL, must share d's indexes) is merged in, e.g. train + test. */
mm_status rec_user_items_build(const rec_interactions *d, const rec_interactions *d2,
                               float min_rating, rec_user_items *out);
/* 1 if user has item (binary search). */
int rec_user_items_has(const rec_user_items *s, int user, int item);
static inline int rec_user_items_count(const rec_user_items *s, int user) {
    return (int)(s->offset[user + 1] - s->offset[user]);
}
void rec_user_items_free(rec_user_items *s);

/* ------------------------------------------------------------------ item metadata */

/* Items described by u.item, movies.csv or movies.dat, in file order. */
typedef struct rec_items {
    int n;
    int64_t *id;          /* [n] original item id (aliases index.orig) */
    char **title;         /* [n] UTF-8 */
    char **date;          /* [n] release date as written ("" when absent / movies.csv) */
    uint64_t *genres;     /* [n] bit g set = genre g */
    int n_genres;
    char **genre_names;   /* [n_genres] UTF-8 */
    rec_idmap index;      /* original id -> row */
} rec_items;

/* Format from the content: a first line "movieId,title,genres" -> movies.csv (RFC 4180
 * quoting, titles may hold commas and "" quotes; genres '|'-separated, "(no genres listed)"
 * = none; genre names in order of first appearance); "::" -> movies.dat (id::title::genres);
 * otherwise u.item (id|title|release date|video release date|IMDb URL|N genre flags).
 * For u.item the genre names come from u.genre in the same directory when present (its
 * count must match the flags), else the 19 standard MovieLens names (19 flags) or
 * "genre<i>". Encoding: a file that is valid UTF-8 is kept as is, otherwise it is read as
 * Latin-1 (ISO-8859-1, as ml-100k's u.item) and converted to UTF-8. Errors name file:line. */
mm_status rec_items_load(const char *path, rec_items *out);
/* Row of an original item id, or -1. */
int rec_items_find(const rec_items *it, int64_t orig_id);
/* Title of an original item id, or NULL. */
const char *rec_items_title(const rec_items *it, int64_t orig_id);
void rec_items_free(rec_items *it);

/* Latin-1 -> UTF-8 of n bytes into a new NUL-terminated string. */
char *rec_latin1_to_utf8(const char *s, size_t n);
/* 1 if the n bytes are valid UTF-8. */
int rec_is_utf8(const char *s, size_t n);

/* Default MovieLens directory: $MEDIAML_DATA/movielens-100k, else
 * ../shared/data/movielens-100k. Returns buf. */
const char *rec_default_data_dir(char *buf, size_t n);
/* First existing of dir/{u.data,ratings.csv,ratings.dat} (ratings) or
 * dir/{u.item,movies.csv,movies.dat} (items) into buf; MM_ERR_IO if none. */
mm_status rec_find_ratings_file(const char *dir, char *buf, size_t n);
mm_status rec_find_items_file(const char *dir, char *buf, size_t n);

/* ------------------------------------------------------------------ scorers */

/* A model seen by the metrics: score(user, item), higher = more relevant, or a batch form
 * that fills out[i] = score(user, items[i]). When both are set the batch form is used. */
typedef float (*rec_score_fn)(void *ctx, int user, int item);
typedef void (*rec_score_batch_fn)(void *ctx, int user, const int *items, int n, float *out);
typedef struct rec_scorer {
    rec_score_fn score;
    rec_score_batch_fn score_batch;
    void *ctx;
} rec_scorer;

/* Popularity baseline: score = number of training interactions of the item. */
typedef struct rec_popularity {
    int n_items;
    float *count;  /* [n_items] */
} rec_popularity;
mm_status rec_popularity_fit(const rec_interactions *train, rec_popularity *out);
float rec_popularity_score(void *ctx, int user, int item);             /* ctx = rec_popularity* */
void rec_popularity_score_batch(void *ctx, int user, const int *items, int n, float *out);
rec_scorer rec_popularity_scorer(rec_popularity *p);
void rec_popularity_free(rec_popularity *p);

/* ------------------------------------------------------------------ metrics */

/* Rating prediction: sqrt(mean((pred - target)^2)) and mean(|pred - target|), in double.
 * n == 0 is MM_ERR_ARG, a non-finite value MM_ERR_NUMERIC. */
mm_status rec_rmse(const float *pred, const float *target, size_t n, double *out);
mm_status rec_mae(const float *pred, const float *target, size_t n, double *out);

/* NCF sampled ranking: one case per test interaction (user, held-out item) plus n_neg
 * negatives, items the user has no interaction with in train or test, drawn uniformly
 * without replacement (splitmix64). The draws of a case depend only on (seed, original
 * user id, original held-out item id, the user's interaction set and the item index), so
 * they are deterministic and independent of the order of the test cases. */
typedef struct rec_ncf_cases {
    int n;          /* number of cases */
    int n_neg;
    int32_t *user;  /* [n] */
    int32_t *pos;   /* [n] held-out item */
    int32_t *neg;   /* [n * n_neg] */
} rec_ncf_cases;

/* train and test must share indexes. A user with fewer than n_neg non-interacted items is
 * an MM_ERR_ARG error. */
mm_status rec_ncf_sample(const rec_interactions *train, const rec_interactions *test, int n_neg,
                         uint64_t seed, rec_ncf_cases *out);
void rec_ncf_cases_free(rec_ncf_cases *c);

typedef struct rec_rank_metrics {
    int k;
    long n_users;   /* cases / users evaluated */
    double hr;      /* NCF: hit ratio@k.  full ranking: recall@k */
    double ndcg;    /* ndcg@k */
} rec_rank_metrics;

/* Scores the positive and the negatives of every case. rank = number of negatives scoring
 * at least as high as the positive (ties count against the model: He et al.'s evaluate.py
 * ranks with heapq.nlargest over the negatives followed by the test item, which keeps tied
 * negatives ahead);
 * HR@k = mean(rank < k), NDCG@k = mean(rank < k ? 1 / log2(rank + 2) : 0). ranks (may be
 * NULL) receives each case's rank. A NaN score is MM_ERR_NUMERIC. */
mm_status rec_eval_ncf(const rec_ncf_cases *c, rec_scorer s, int k, rec_rank_metrics *out,
                       int *ranks);

/* Full ranking: for each user with at least one relevant item that is a candidate, all
 * items are scored (batch callback over 0..n_items-1, or the single-item callback), items
 * in exclude (the training items; may be NULL) are removed, and the top k are taken by
 * score descending, ties by smaller item id.
 *   Recall@k = |top k ∩ relevant| / |relevant|
 *   NDCG@k   = sum_{i<k, top[i] relevant} 1/log2(i+2)  /  sum_{i<min(k,|relevant|)} 1/log2(i+2)
 * Relevant items that are excluded are not counted. Means over evaluated users. */
mm_status rec_eval_full(const rec_user_items *exclude, const rec_user_items *relevant,
                        rec_scorer s, int k, rec_rank_metrics *out);

/* ------------------------------------------------------------------ synthetic data */

typedef struct rec_synthetic_config {
    int users, items;      /* > 0 */
    size_t interactions;
    uint64_t seed;
    double zipf_s;         /* popularity of item i ∝ 1 / (i + 1)^s; 0 -> 1.0 */
} rec_synthetic_config;

/* Interaction i: user uniform in [0, users), item Zipf(s) by id (item 0 the most popular,
 * alias-method draw), rating in 1..5 with MovieLens-like frequencies, timestamp
 * 1e9 + 30 i + U[0, 30) (strictly increasing). Counter-based (value i depends only on seed
 * and i), so results do not depend on threads. Identity indexes. Duplicates possible. */
mm_status rec_synthetic(const rec_synthetic_config *cfg, rec_interactions *out);

/* ------------------------------------------------------------------ explanations */

typedef struct rec_neighbor {
    int item;      /* dense item id */
    float sim;     /* cosine similarity */
    float score;   /* ranking score (reasons: rating * sim; similar items: sim) */
} rec_neighbor;

/* Why item `target` was recommended: among the user's rated items (rated[i] with
 * ratings[i]; target itself skipped), the k with the highest
 *     score_i = ratings[i] * cos(E[rated[i]], E[target])
 * (cosine 0 when either vector is zero), ties by smaller item id. emb is [n_items, dim]
 * row-major. Writes up to k entries, *n_out of them. */
mm_status rec_reasons(const float *emb, int n_items, int dim, const int *rated,
                      const float *ratings, int n_rated, int target, int k, rec_neighbor *out,
                      int *n_out);

/* The k items with the highest cosine similarity to `item` (itself excluded), ties by
 * smaller id. */
mm_status rec_similar_items(const float *emb, int n_items, int dim, int item, int k,
                            rec_neighbor *out, int *n_out);

#endif
