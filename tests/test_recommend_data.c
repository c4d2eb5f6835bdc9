/* Recommend app, data and evaluation half: MovieLens loaders, splits, metrics, popularity
 * baseline, synthetic generator, explanation helpers. */
#include "testutil.h"
#include "../apps/recommend/recommend.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static char tmpdir[64];
static char written[64][96];
static int nwritten;

static const char *tpath(const char *name) {
    static char buf[8][512];
    static int k;
    k = (k + 1) % 8;
    snprintf(buf[k], sizeof buf[k], "%s/%.200s", tmpdir, name);
    return buf[k];
}

/* Writes a temp file and returns its path. */
static const char *put(const char *name, const char *content) {
    const char *p = tpath(name);
    FILE *f = fopen(p, "wb");
    if (!f) return p;
    fputs(content, f);
    fclose(f);
    int seen = 0;
    for (int i = 0; i < nwritten; i++) seen |= !strcmp(written[i], name);
    if (!seen && nwritten < 64) snprintf(written[nwritten++], sizeof written[0], "%s", name);
    return p;
}

static void cleanup(void) {
    for (int i = 0; i < nwritten; i++) unlink(tpath(written[i]));
    rmdir(tmpdir);
}

static const char *dpath(const char *dir, const char *name) {
    static char buf[4][1024];
    static int k;
    k = (k + 1) % 4;
    snprintf(buf[k], sizeof buf[k], "%.900s/%.100s", dir, name);
    return buf[k];
}

/* ------------------------------------------------------------------ malformed input */

static void load_err(const char *name, const char *content, const char *needle) {
    rec_interactions d;
    const char *p = put(name, content);
    CHECK_ERR(rec_load_interactions(p, NULL, &d), MM_ERR_FORMAT, needle);
    CHECK(d.n == 0 && d.user == NULL, "%s: output not cleared", name);
}

static void test_malformed(void) {
    load_err("fields.data", "1\t2\t3\t100\n5\t6\t7\n", "fields.data:2: expected 4 fields");
    load_err("fields5.data", "1\t2\t3\t100\n1\t3\t4\t100\n5\t6\t1\t7\t9\n", "fields5.data:3: expected 4 fields");
    load_err("uid.data", "1\t2\t3\t100\nx\t2\t3\t100\n", "uid.data:2: user id is not an integer");
    load_err("iid.data", "1\t2\t3\t100\n\n1\t2.5\t3\t100\n", "iid.data:3: item id is not an integer");
    load_err("neg.data", "1\t-2\t3\t100\n", "neg.data:1: negative item id -2");
    load_err("negu.data", "1\t2\t3\t100\n-7\t2\t3\t100\n", "negu.data:2: negative user id -7");
    load_err("range.data", "1\t2\t3\t100\n1\t3\t6\t100\n", "range.data:2: rating 6 out of range 1..5");
    load_err("half.data", "1\t2\t0.5\t100\n", "half.data:1: rating 0.5 out of range 1..5");
    load_err("rnan.data", "1\t2\tgood\t100\n", "rnan.data:1: rating 'good' is not a number");
    load_err("ts.data", "1\t2\t3\t100\n1\t3\t3\tyesterday\n", "ts.data:2: timestamp 'yesterday' is not an integer");
    load_err("empty.data", "", "no interactions (empty file)");
    load_err("blank.data", "\n\n", "no interactions");
    load_err("hdr.csv", "userId,movieId,rating,timestamp\n", "no interactions");
    load_err("unknown.data", "hello world\n", "unknown.data:1: unknown ratings format");
    load_err("csvrange.csv", "userId,movieId,rating,timestamp\n1,2,3.5,10\n1,3,0.25,11\n",
             "csvrange.csv:3: rating 0.25 out of range 0.5..5");
    load_err("csvfields.csv", "userId,movieId,rating,timestamp\n1,2,3.5,10\n1,3,4\n", "csvfields.csv:3: expected 4 fields");

    rec_interactions d;
    CHECK_ERR(rec_load_interactions(tpath("missing.data"), NULL, &d), MM_ERR_IO, "missing.data");

    /* configurable range: 0..10 accepts what the default rejects */
    rec_load_options o = {0};
    o.min_rating = 0, o.max_rating = 10;
    const char *p = put("wide.data", "1\t2\t0\t100\n1\t3\t10\t101\n");
    CHECK_OK(rec_load_interactions(p, &o, &d));
    CHECK(d.n == 2 && d.rating[1] == 10.0f, "wide range: n=%zu", d.n);
    rec_interactions_free(&d);
    o.min_rating = 2, o.max_rating = 4;
    p = put("narrow.data", "1\t2\t3\t100\n1\t3\t5\t101\n");
    CHECK_ERR(rec_load_interactions(p, &o, &d), MM_ERR_FORMAT, "narrow.data:2: rating 5 out of range 2..4");
}

static void test_ratings_csv(void) {
    rec_interactions d;
    /* header, CRLF line ends, half stars, ids first seen out of order */
    const char *p = put("ratings.csv", "userId,movieId,rating,timestamp\r\n"
                                       "10,300,4.5,964982703\r\n"
                                       "3,300,0.5,964981247\r\n"
                                       "10,7,5.0,964982224\r\n"
                                       "\r\n"
                                       "3,12,3,964983815\r\n");
    CHECK_OK(rec_load_interactions(p, NULL, &d));
    CHECK(d.n == 4, "ratings.csv n=%zu", d.n);
    CHECK(rec_num_users(&d) == 2 && rec_num_items(&d) == 3, "users %d items %d", rec_num_users(&d), rec_num_items(&d));
    if (d.n == 4) {
        CHECK(d.users.orig[0] == 10 && d.users.orig[1] == 3, "user order");
        CHECK(d.items.orig[0] == 300 && d.items.orig[1] == 7 && d.items.orig[2] == 12, "item order");
        CHECK(d.user[2] == 0 && d.item[2] == 1 && d.rating[2] == 5.0f, "row 2");
        CHECK(d.rating[1] == 0.5f && d.timestamp[3] == 964983815, "row 1/3 values");
        CHECK(rec_idmap_find(&d.items, 12) == 2 && rec_idmap_find(&d.items, 13) == -1, "item lookup");
    }
    rec_interactions_free(&d);

    /* the name does not decide: a CSV called u.data, a tab file called .csv */
    p = put("fake.data", "1,2,3,4\n1,3,4,5\n");
    CHECK_OK(rec_load_interactions(p, NULL, &d));
    CHECK(d.n == 2, "headerless csv n=%zu", d.n);
    rec_interactions_free(&d);
    p = put("tabs.csv", "1\t2\t3\t4\n");
    CHECK_OK(rec_load_interactions(p, NULL, &d));
    CHECK(d.n == 1, "tab .csv n=%zu", d.n);
    rec_interactions_free(&d);
    p = put("ratings.dat", "1::1193::5::978300760\n1::661::3::978302109\n2::1193::4::978300000\n");
    CHECK_OK(rec_load_interactions(p, NULL, &d));
    CHECK(d.n == 3 && rec_num_users(&d) == 2 && rec_num_items(&d) == 2, "ratings.dat n=%zu", d.n);
    rec_interactions_free(&d);
}

static void test_movies_csv(void) {
    rec_items it;
    const char *p = put("movies.csv",
                        "movieId,title,genres\n"
                        "1,Toy Story (1995),Adventure|Animation|Children|Comedy|Fantasy\n"
                        "11,\"American President, The (1995)\",Comedy|Drama|Romance\n"
                        "99,\"Say \"\"Cheese\"\", Please (2000)\",(no genres listed)\n"
                        "5,Caf\xC3\xA9 Society (2016),Drama\r\n");
    CHECK_OK(rec_items_load(p, &it));
    CHECK(it.n == 4, "movies.csv n=%d", it.n);
    if (it.n == 4) {
        const char *t = rec_items_title(&it, 11);
        CHECK(t && !strcmp(t, "American President, The (1995)"), "quoted comma title '%s'", t ? t : "(null)");
        t = rec_items_title(&it, 99);
        CHECK(t && !strcmp(t, "Say \"Cheese\", Please (2000)"), "quoted quote title '%s'", t ? t : "(null)");
        t = rec_items_title(&it, 5);
        CHECK(t && !strcmp(t, "Caf\xC3\xA9 Society (2016)"), "utf-8 title kept '%s'", t ? t : "(null)");
        CHECK(it.n_genres == 7, "genres %d", it.n_genres);
        CHECK(it.genres[rec_items_find(&it, 99)] == 0, "no genres listed");
        int row = rec_items_find(&it, 5), drama = -1;
        for (int g = 0; g < it.n_genres; g++)
            if (!strcmp(it.genre_names[g], "Drama")) drama = g;
        CHECK(drama >= 0 && row >= 0 && it.genres[row] == (1ull << drama), "Drama mask");
        CHECK(it.id[1] == 11, "id array");
    }
    rec_items_free(&it);

    p = put("badquote.csv", "movieId,title,genres\n1,Toy Story (1995),Comedy\n2,\"Open (1999),Drama\n");
    CHECK_ERR(rec_items_load(p, &it), MM_ERR_FORMAT, "badquote.csv:3: unterminated");
    p = put("badfields.csv", "movieId,title,genres\n1,Toy Story (1995),Comedy\n2,A, B (1999),Drama\n");
    CHECK_ERR(rec_items_load(p, &it), MM_ERR_FORMAT, "badfields.csv:3: expected 3 fields");
    p = put("badid.csv", "movieId,title,genres\nx1,Toy Story (1995),Comedy\n");
    CHECK_ERR(rec_items_load(p, &it), MM_ERR_FORMAT, "badid.csv:2: movieId");
    p = put("dup.csv", "movieId,title,genres\n1,A,Comedy\n1,B,Drama\n");
    CHECK_ERR(rec_items_load(p, &it), MM_ERR_FORMAT, "dup.csv:3: duplicate item id 1");
}

static void test_latin1(void) {
    char *u = rec_latin1_to_utf8("Mis\xE9rables \xFC\xDF", 13);
    CHECK(u && !strcmp(u, "Mis\xC3\xA9rables \xC3\xBC\xC3\x9F"), "latin1 -> utf8");
    free(u);
    CHECK(rec_is_utf8("Caf\xC3\xA9", 5) && !rec_is_utf8("Caf\xE9", 4), "utf8 check");
    CHECK(!rec_is_utf8("\xC0\x80", 2) && !rec_is_utf8("\xED\xA0\x80", 3), "overlong / surrogate rejected");

    /* u.item fixture without u.genre next to it: standard names, Latin-1 converted */
    rec_items it;
    const char *p = put("u.item", "1|Toy Story (1995)|01-Jan-1995||http://x|0|0|0|1|1|1|0|0|0|0|0|0|0|0|0|0|0|0|0\n"
                                  "7|Cit\xE9 des enfants perdus, La (1995)|01-Jan-1995||http://y|0|0|0|0|0|0|0|0|0|1|0|0|0|0|0|1|0|0|0\n");
    CHECK_OK(rec_items_load(p, &it));
    CHECK(it.n == 2 && it.n_genres == 19, "u.item fixture n=%d genres=%d", it.n, it.n_genres);
    const char *t = it.n == 2 ? rec_items_title(&it, 7) : NULL;
    CHECK(t && !strcmp(t, "Cit\xC3\xA9 des enfants perdus, La (1995)"), "latin1 title '%s'", t ? t : "(null)");
    if (it.n_genres == 19) CHECK(!strcmp(it.genre_names[9], "Fantasy"), "default genre names");
    rec_items_free(&it);

    p = put("u.item", "1|Toy Story (1995)|01-Jan-1995||http://x|0|0|0|1|1|1|0|0|0|0|0|0|0|0|0|0|0|0|0\n"
                      "2|GoldenEye (1995)|01-Jan-1995||http://x|0|1|1|0|0|0|0|0|0|0|0|0|0|0|0|0|yes|0|0\n");
    CHECK_ERR(rec_items_load(p, &it), MM_ERR_FORMAT, "u.item:2: genre flag 17");
    p = put("u.item", "1|Toy Story (1995)|01-Jan-1995||http://x|0|0|0|1|1|1|0|0|0|0|0|0|0|0|0|0|0|0|0\n"
                      "2|GoldenEye (1995)|01-Jan-1995||http://x|0|1|1\n");
    CHECK_ERR(rec_items_load(p, &it), MM_ERR_FORMAT, "u.item:2: 3 genre flags");
    p = put("u.item", "\n");
    CHECK_ERR(rec_items_load(p, &it), MM_ERR_FORMAT, "no items");
}

/* ------------------------------------------------------------------ ml-100k */

static void test_ml100k(const char *dir) {
    rec_interactions all;
    CHECK_OK(rec_load_interactions(dpath(dir, "u.data"), NULL, &all));
    CHECK(all.n == 100000, "u.data n=%zu", all.n);
    CHECK(rec_num_users(&all) == 943 && rec_num_items(&all) == 1682, "users %d items %d", rec_num_users(&all),
          rec_num_items(&all));
    if (all.n != 100000) return;
    /* first line: 196 242 3 881250949 */
    CHECK(all.users.orig[0] == 196 && all.items.orig[0] == 242 && all.rating[0] == 3.0f &&
              all.timestamp[0] == 881250949,
          "first row");
    CHECK(rec_idmap_find(&all.users, 196) == 0 && rec_idmap_find(&all.users, 0) == -1, "user lookup");
    long hist[6] = {0};
    for (size_t i = 0; i < all.n; i++) hist[(int)all.rating[i]]++;
    CHECK(hist[1] == 6110 && hist[2] == 11370 && hist[3] == 27145 && hist[4] == 34174 && hist[5] == 21201,
          "rating histogram %ld %ld %ld %ld %ld", hist[1], hist[2], hist[3], hist[4], hist[5]);
    int64_t maxu = 0, maxi = 0;
    for (int u = 0; u < all.users.n; u++) maxu = all.users.orig[u] > maxu ? all.users.orig[u] : maxu;
    for (int i = 0; i < all.items.n; i++) maxi = all.items.orig[i] > maxi ? all.items.orig[i] : maxi;
    CHECK(maxu == 943 && maxi == 1682, "original ids 1..943 / 1..1682 (max %lld %lld)", (long long)maxu,
          (long long)maxi);

    /* item metadata */
    rec_items items;
    CHECK_OK(rec_items_load(dpath(dir, "u.item"), &items));
    CHECK(items.n == 1682 && items.n_genres == 19, "u.item n=%d genres=%d", items.n, items.n_genres);
    const char *t = rec_items_title(&items, 1);
    CHECK(t && !strcmp(t, "Toy Story (1995)"), "item 1 '%s'", t ? t : "(null)");
    t = rec_items_title(&items, 543);
    CHECK(t && !strcmp(t, "Mis\xC3\xA9rables, Les (1995)"), "item 543 '%s'", t ? t : "(null)");
    if (items.n_genres == 19) {
        CHECK(!strcmp(items.genre_names[0], "unknown") && !strcmp(items.genre_names[4], "Children's") &&
                  !strcmp(items.genre_names[18], "Western"),
              "u.genre names");
        int r = rec_items_find(&items, 1);
        CHECK(r >= 0 && items.genres[r] == ((1ull << 3) | (1ull << 4) | (1ull << 5)), "Toy Story genres");
        CHECK(r >= 0 && !strcmp(items.date[r], "01-Jan-1995"), "release date");
    }
    int nonascii = 0;
    for (int i = 0; i < items.n; i++) {
        nonascii += strpbrk(items.title[i], "\xC3") != NULL;
        CHECK(rec_is_utf8(items.title[i], strlen(items.title[i])), "title %d not UTF-8", i);
    }
    CHECK(nonascii >= 1, "accented titles found: %d", nonascii);
    int missing = 0; /* every rated item has a title */
    for (int i = 0; i < all.items.n; i++) missing += rec_items_title(&items, all.items.orig[i]) == NULL;
    CHECK(missing == 0, "%d rated items without title", missing);
    rec_items_free(&items);

    /* MovieLens's own splits, indexed like u.data */
    rec_interactions base, test;
    CHECK_OK(rec_load_split(dpath(dir, "u1.base"), &all, &base));
    CHECK_OK(rec_load_split(dpath(dir, "u1.test"), &all, &test));
    CHECK(base.n == 80000 && test.n == 20000, "u1 sizes %zu %zu", base.n, test.n);
    CHECK(rec_num_users(&test) == 943 && rec_num_items(&test) == 1682, "u1.test index");
    if (test.n == 20000) /* first line of u1.test: 1 6 5 887431973 */
        CHECK(test.users.orig[test.user[0]] == 1 && test.items.orig[test.item[0]] == 6 &&
                  test.user[0] == rec_idmap_find(&all.users, 1) && test.item[0] == rec_idmap_find(&all.items, 6),
              "u1.test ids agree with u.data");
    rec_interactions ua;
    CHECK_OK(rec_load_split(dpath(dir, "ua.test"), &all, &ua));
    CHECK(ua.n == 9430, "ua.test n=%zu", ua.n);
    rec_interactions_free(&ua);
    rec_interactions small;
    const char *p = put("foreign.test", "1\t6\t5\t887431973\n99999\t6\t5\t887431973\n");
    CHECK_ERR(rec_load_split(p, &all, &small), MM_ERR_FORMAT, "foreign.test:2: user id 99999 is not in the reference");

    /* full ranking on u1: relevant = u1.test ratings >= 4, excluded = u1.base */
    rec_popularity pop;
    rec_user_items ex, rel;
    rec_rank_metrics m;
    CHECK_OK(rec_popularity_fit(&base, &pop));
    CHECK_OK(rec_user_items_build(&base, NULL, 0, &ex));
    CHECK_OK(rec_user_items_build(&test, NULL, 4, &rel));
    CHECK_OK(rec_eval_full(&ex, &rel, rec_popularity_scorer(&pop), 10, &m));
    printf("popularity u1 (rating>=4 relevant): Recall@10 %.4f NDCG@10 %.4f over %ld users\n", m.hr, m.ndcg,
           m.n_users);
    CHECK(m.hr > 0.02 && m.hr < 0.5 && m.ndcg > 0.02 && m.ndcg < 0.6, "u1 full ranking %.4f %.4f", m.hr, m.ndcg);
    rec_user_items_free(&ex);
    rec_user_items_free(&rel);
    rec_popularity_free(&pop);
    rec_interactions_free(&base);
    rec_interactions_free(&test);

    /* implicit feedback */
    rec_interactions imp;
    CHECK_OK(rec_implicit(&all, 4, &imp));
    CHECK(imp.n == 34174 + 21201 && imp.rating[0] == 1.0f, "implicit >= 4: %zu", imp.n);
    rec_interactions_free(&imp);
    CHECK_OK(rec_implicit(&all, 0, &imp));
    CHECK(imp.n == all.n, "implicit all: %zu", imp.n);
    rec_interactions_free(&imp);

    /* leave-one-out */
    rec_interactions tr, te;
    CHECK_OK(rec_split_leave_one_out(&all, &tr, &te));
    CHECK(te.n == 943 && tr.n == 100000 - 943, "loo sizes %zu %zu", tr.n, te.n);
    if (te.n == 943) {
        int ok_order = 1, ok_latest = 1;
        int64_t *latest = calloc(943, sizeof *latest);
        int32_t *latest_item = calloc(943, sizeof *latest_item);
        int ties = 0;
        for (size_t i = 0; i < all.n; i++) {
            int u = all.user[i];
            if (all.timestamp[i] >= latest[u]) latest[u] = all.timestamp[i], latest_item[u] = all.item[i];
        }
        for (int c = 0; c < 943; c++) {
            ok_order &= te.user[c] == c;
            ok_latest &= te.timestamp[c] == latest[c] && te.item[c] == latest_item[c];
        }
        for (size_t i = 0; i < tr.n; i++) ties += tr.timestamp[i] == latest[tr.user[i]];
        CHECK(ok_order, "one held-out item per user, in user order");
        CHECK(ok_latest, "held-out item is the latest (ties: later in the file)");
        CHECK(ties > 0, "ml-100k has ties at the latest timestamp (%d)", ties);
        free(latest);
        free(latest_item);
    }
    rec_user_items seen;
    CHECK_OK(rec_user_items_build(&tr, &te, 0, &seen));
    CHECK(seen.offset[seen.n_users] == 100000, "seen pairs %zu", seen.offset[seen.n_users]);
    int both = 1;
    for (int c = 0; c < (int)te.n; c++) both &= rec_user_items_has(&seen, te.user[c], te.item[c]);
    CHECK(both, "user item sets hold the test items");

    /* NCF negatives */
    rec_ncf_cases c1, c2, c3;
    CHECK_OK(rec_ncf_sample(&tr, &te, 99, 42, &c1));
    CHECK_OK(rec_ncf_sample(&tr, &te, 99, 42, &c2));
    CHECK_OK(rec_ncf_sample(&tr, &te, 99, 43, &c3));
    CHECK(c1.n == 943 && c1.n_neg == 99, "cases %d", c1.n);
    if (c1.n == 943 && c2.n == 943 && c3.n == 943) {
        int clean = 1, distinct = 1;
        for (int c = 0; c < c1.n; c++) {
            const int32_t *ng = c1.neg + (size_t)c * 99;
            for (int j = 0; j < 99; j++) {
                clean &= !rec_user_items_has(&seen, c1.user[c], ng[j]) && ng[j] != c1.pos[c];
                for (int l = 0; l < j; l++) distinct &= ng[l] != ng[j];
            }
        }
        CHECK(clean, "negatives are never interacted with");
        CHECK(distinct, "negatives drawn without replacement");
        CHECK(!memcmp(c1.neg, c2.neg, 943 * 99 * sizeof *c1.neg), "same seed, same negatives");
        CHECK(memcmp(c1.neg, c3.neg, 943 * 99 * sizeof *c1.neg) != 0, "other seed, other negatives");
    }
    rec_ncf_cases bad;
    CHECK_ERR(rec_ncf_sample(&tr, &te, 1682, 42, &bad), MM_ERR_ARG, "without interactions");

    CHECK_OK(rec_popularity_fit(&tr, &pop));
    CHECK_OK(rec_eval_ncf(&c1, rec_popularity_scorer(&pop), 10, &m, NULL));
    printf("popularity ml-100k leave-one-out NCF (99 negatives): HR@10 %.4f NDCG@10 %.4f\n", m.hr, m.ndcg);
    CHECK(m.hr > 0.3 && m.hr < 0.6, "popularity HR@10 %.4f", m.hr);
    CHECK(m.ndcg > 0 && m.ndcg < m.hr, "popularity NDCG@10 %.4f", m.ndcg);
    /* the single-item callback gives the same numbers */
    rec_scorer single = {rec_popularity_score, NULL, &pop};
    rec_rank_metrics m1;
    CHECK_OK(rec_eval_ncf(&c1, single, 10, &m1, NULL));
    CHECK(m1.hr == m.hr && m1.ndcg == m.ndcg, "single vs batch scorer");

    CHECK_OK(rec_user_items_build(&tr, NULL, 0, &ex));
    CHECK_OK(rec_user_items_build(&te, NULL, 0, &rel));
    CHECK_OK(rec_eval_full(&ex, &rel, rec_popularity_scorer(&pop), 10, &m));
    printf("popularity ml-100k leave-one-out full ranking: Recall@10 %.4f NDCG@10 %.4f\n", m.hr, m.ndcg);
    CHECK(m.n_users == 943 && m.hr > 0.01 && m.hr < 0.3 && m.ndcg < m.hr, "full ranking %.4f %.4f", m.hr, m.ndcg);
    rec_user_items_free(&ex);
    rec_user_items_free(&rel);
    rec_user_items_free(&seen);
    rec_popularity_free(&pop);
    rec_ncf_cases_free(&c1);
    rec_ncf_cases_free(&c2);
    rec_ncf_cases_free(&c3);
    rec_interactions_free(&tr);
    rec_interactions_free(&te);
    rec_interactions_free(&all);
}

/* ------------------------------------------------------------------ small ranking cases */

/* score = -|item - user| : item == user is best */
static float near_score(void *ctx, int user, int item) {
    (void)ctx;
    return -(float)abs(item - user);
}

static void test_ranking_small(void) {
    /* 3 users x 6 items; user u interacted with item u+3 in training */
    rec_interactions tr = {0}, te;
    CHECK_OK(rec_idmap_identity(3, &tr.users));
    CHECK_OK(rec_idmap_identity(6, &tr.items));
    for (int u = 0; u < 3; u++) CHECK_OK(rec_interactions_push(&tr, u, u + 3, 1, u));
    CHECK_OK(rec_interactions_like(&tr, 0, &te));
    CHECK_OK(rec_interactions_push(&te, 0, 0, 1, 9));
    CHECK_OK(rec_interactions_push(&te, 1, 2, 1, 9));
    CHECK_OK(rec_interactions_push(&te, 2, 0, 1, 9));
    CHECK_ERR(rec_interactions_push(&te, 3, 0, 1, 9), MM_ERR_ARG, "outside the index");
    rec_ncf_cases c;
    /* 6 items, each user has 2 -> 4 negatives available: the dense path draws all 4 */
    CHECK_OK(rec_ncf_sample(&tr, &te, 4, 7, &c));
    rec_scorer s = {near_score, NULL, NULL};
    rec_rank_metrics m;
    int ranks[3] = {-1, -1, -1};
    CHECK_OK(rec_eval_ncf(&c, s, 1, &m, ranks));
    /* Ties count against the positive (He et al.'s evaluate.py: heapq.nlargest over the
     * negatives followed by the test item keeps tied negatives first).
     * user 0: pos 0 (score 0), negatives 1,2,4,5 all lower -> rank 0.
     * user 1: pos 2 (-1); negatives 0,1,3,5 score -1,0,-2,-4 -> rank 2 (the tie with item 0 counts).
     * user 2: pos 0 (-2); negatives 1,2,3,4 score -1,0,-1,-2 -> rank 4 (the tie with item 4 counts). */
    CHECK(ranks[0] == 0 && ranks[1] == 2 && ranks[2] == 4, "ranks %d %d %d", ranks[0], ranks[1], ranks[2]);
    CHECK(fabs(m.hr - 1.0 / 3) < 1e-12 && fabs(m.ndcg - 1.0 / 3) < 1e-12, "hr %f ndcg %f", m.hr, m.ndcg);
    CHECK_OK(rec_eval_ncf(&c, s, 3, &m, NULL));
    double want = (1.0 + 1.0 / log2(4)) / 3;
    CHECK(fabs(m.hr - 2.0 / 3) < 1e-12 && fabs(m.ndcg - want) < 1e-12, "k=3 hr %f ndcg %f", m.hr, m.ndcg);
    CHECK_OK(rec_eval_ncf(&c, s, 5, &m, NULL));
    want = (1.0 + 1.0 / log2(4) + 1.0 / log2(6)) / 3;
    CHECK(fabs(m.hr - 1.0) < 1e-12 && fabs(m.ndcg - want) < 1e-12, "k=5 hr %f ndcg %f", m.hr, m.ndcg);
    int clean = 1;
    for (int u = 0; u < 3; u++)
        for (int j = 0; j < 4; j++) clean &= c.neg[u * 4 + j] != c.pos[u] && c.neg[u * 4 + j] != u + 3;
    CHECK(clean, "small negatives exclude seen items");
    rec_ncf_cases_free(&c);

    /* full ranking, several relevant items: user 0 relevant {0, 2}, user 1 {4 (excluded), 1} */
    rec_interactions rel_d;
    CHECK_OK(rec_interactions_like(&tr, 0, &rel_d));
    CHECK_OK(rec_interactions_push(&rel_d, 0, 0, 5, 0));
    CHECK_OK(rec_interactions_push(&rel_d, 0, 2, 5, 0));
    CHECK_OK(rec_interactions_push(&rel_d, 1, 4, 5, 0));
    CHECK_OK(rec_interactions_push(&rel_d, 1, 1, 5, 0));
    rec_user_items ex, rel;
    CHECK_OK(rec_user_items_build(&tr, NULL, 0, &ex));
    CHECK_OK(rec_user_items_build(&rel_d, NULL, 0, &rel));
    CHECK_OK(rec_eval_full(&ex, &rel, s, 2, &m));
    /* user 0 candidates 0,1,2,4,5 -> top2 = 0,1: recall 1/2, dcg 1, idcg 1 + 1/log2(3)
     * user 1 candidates 0,1,2,3,5 (4 excluded) -> top2 = 1 (score 0), 0 (ties with 2: smaller id):
     *   relevant {1}: recall 1, ndcg 1 */
    double n0 = 1.0 / (1.0 + 1.0 / log2(3));
    CHECK(m.n_users == 2 && fabs(m.hr - 0.75) < 1e-12 && fabs(m.ndcg - (n0 + 1) / 2) < 1e-12,
          "full: users %ld recall %f ndcg %f", m.n_users, m.hr, m.ndcg);
    rec_user_items_free(&ex);
    rec_user_items_free(&rel);
    rec_interactions_free(&rel_d);
    rec_interactions_free(&tr);
    rec_interactions_free(&te);
}

static void test_rating_metrics(void) {
    const float pred[4] = {1, 2, 3, 4}, target[4] = {2, 2, 5, 4};
    double rmse = 0, mae = 0;
    CHECK_OK(rec_rmse(pred, target, 4, &rmse));
    CHECK_OK(rec_mae(pred, target, 4, &mae));
    CHECK(fabs(rmse - sqrt(1.25)) < 1e-12, "rmse %f", rmse);
    CHECK(fabs(mae - 0.75) < 1e-12, "mae %f", mae);
    CHECK_ERR(rec_rmse(pred, target, 0, &rmse), MM_ERR_ARG, "no predictions");
    const float bad[2] = {1, NAN};
    CHECK_ERR(rec_mae(bad, target, 2, &mae), MM_ERR_NUMERIC, "non-finite prediction at 1");
}

static void test_synthetic(void) {
    rec_synthetic_config cfg = {.users = 1000, .items = 500, .interactions = 200000, .seed = 1};
    rec_interactions a, b, c;
    CHECK_OK(rec_synthetic(&cfg, &a));
    CHECK_OK(rec_synthetic(&cfg, &b));
    cfg.seed = 2;
    CHECK_OK(rec_synthetic(&cfg, &c));
    CHECK(a.n == 200000 && rec_num_users(&a) == 1000 && rec_num_items(&a) == 500, "synthetic sizes");
    if (a.n == 200000 && b.n == a.n && c.n == a.n) {
        CHECK(!memcmp(a.user, b.user, a.n * 4) && !memcmp(a.item, b.item, a.n * 4) &&
                  !memcmp(a.rating, b.rating, a.n * 4) && !memcmp(a.timestamp, b.timestamp, a.n * 8),
              "deterministic");
        CHECK(memcmp(a.item, c.item, a.n * 4) != 0, "seed changes data");
        int ok = 1;
        long cnt[500] = {0}, rh[6] = {0};
        for (size_t i = 0; i < a.n; i++) {
            ok &= a.user[i] >= 0 && a.user[i] < 1000 && a.item[i] >= 0 && a.item[i] < 500;
            ok &= a.rating[i] >= 1 && a.rating[i] <= 5 && a.rating[i] == (int)a.rating[i];
            ok &= i == 0 || a.timestamp[i] > a.timestamp[i - 1];
            if (a.item[i] >= 0 && a.item[i] < 500) cnt[a.item[i]]++;
            rh[(int)a.rating[i] % 6]++;
        }
        CHECK(ok, "values in range, timestamps increasing");
        /* Zipf(1): p(0) = 1 / H_500 ~ 0.148, p(1) half of it */
        double p0 = cnt[0] / 200000.0, p1 = cnt[1] / 200000.0;
        CHECK(fabs(p0 - 0.1477) < 0.005 && fabs(p1 / p0 - 0.5) < 0.03, "zipf p0 %.4f p1/p0 %.3f", p0, p1 / p0);
        CHECK(fabs(rh[4] / 200000.0 - 0.3417) < 0.01, "rating 4 frequency %.4f", rh[4] / 200000.0);
        rec_popularity pop;
        CHECK_OK(rec_popularity_fit(&a, &pop));
        CHECK(pop.count[0] > pop.count[10] && pop.count[10] > pop.count[400], "popularity order");
        rec_popularity_free(&pop);
    }
    rec_interactions_free(&a);
    rec_interactions_free(&b);
    rec_interactions_free(&c);
    cfg.users = 0;
    CHECK_ERR(rec_synthetic(&cfg, &a), MM_ERR_ARG, "positive");

    /* 10^6 interactions on a realistic scale; timed for information */
    rec_synthetic_config big = {.users = 100000, .items = 20000, .interactions = 1000000, .seed = 3};
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    CHECK_OK(rec_synthetic(&big, &a));
    clock_gettime(CLOCK_MONOTONIC, &t1);
    printf("synthetic: 1e6 interactions in %.3f s\n", (t1.tv_sec - t0.tv_sec) + 1e-9 * (t1.tv_nsec - t0.tv_nsec));
    CHECK(a.n == 1000000, "big synthetic n=%zu", a.n);
    rec_interactions_free(&a);
}

static void test_explain(void) {
    /* 5 items in 2-D */
    const float emb[5 * 2] = {1, 0, 0.8f, 0.6f, 0, 1, -1, 0, 2, 0};
    rec_neighbor nb[4];
    int n = -1;
    CHECK_OK(rec_similar_items(emb, 5, 2, 0, 3, nb, &n));
    /* cos with item 0: item1 0.8, item2 0, item3 -1, item4 1 */
    CHECK(n == 3 && nb[0].item == 4 && nb[1].item == 1 && nb[2].item == 2, "similar %d: %d %d %d", n, nb[0].item,
          nb[1].item, nb[2].item);
    CHECK(fabsf(nb[0].sim - 1) < 1e-6f && fabsf(nb[1].sim - 0.8f) < 1e-6f, "similar sims");
    CHECK_OK(rec_similar_items(emb, 5, 2, 0, 10, nb, &n));
    CHECK(n == 4, "k larger than items: %d", n);
    CHECK_ERR(rec_similar_items(emb, 5, 2, 5, 3, nb, &n), MM_ERR_ARG, "outside");

    /* user rated items 1 (r=5), 4 (r=2), 3 (r=5), 0 (target, skipped); recommended item 0.
     * scores: item1 5*0.8 = 4, item4 2*1 = 2, item3 5*-1 = -5 */
    const int rated[4] = {1, 4, 3, 0};
    const float r[4] = {5, 2, 5, 4};
    CHECK_OK(rec_reasons(emb, 5, 2, rated, r, 4, 0, 2, nb, &n));
    CHECK(n == 2 && nb[0].item == 1 && nb[1].item == 4, "reasons %d: %d %d", n, nb[0].item, nb[1].item);
    CHECK(n == 2 && fabsf(nb[0].score - 4) < 1e-5f && fabsf(nb[1].score - 2) < 1e-5f, "reason scores");
    CHECK_OK(rec_reasons(emb, 5, 2, rated, r, 4, 0, 5, nb, &n));
    CHECK(n == 3 && nb[2].item == 3, "all reasons %d", n);
    const int badr[1] = {9};
    CHECK_ERR(rec_reasons(emb, 5, 2, badr, r, 1, 0, 2, nb, &n), MM_ERR_ARG, "rated item 9");
}

int main(void) {
    snprintf(tmpdir, sizeof tmpdir, "/tmp/mm_recXXXXXX");
    if (!mkdtemp(tmpdir)) {
        fprintf(stderr, "mkdtemp failed\n");
        return 1;
    }
    test_malformed();
    test_ratings_csv();
    test_movies_csv();
    test_latin1();
    test_rating_metrics();
    test_ranking_small();
    test_explain();
    test_synthetic();
    const char *data = tu_data_dir();
    if (data) {
        char dir[1024];
        snprintf(dir, sizeof dir, "%.800s/movielens-100k", data);
        if (access(dpath(dir, "u.data"), R_OK) == 0) test_ml100k(dir);
        else fprintf(stderr, "skipping ml-100k tests: %s/u.data not found\n", dir);
    }
    cleanup();
    return tu_finish();
}
