/* mediaml recommend top / similar: a user's top items with the rated items behind each, and
 * the items closest to an item, titled from the data directory's item file. */
#include "commands.h"
#include "json.h"
#include "recommend/rec_model.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Titles from the data directory; missing item file: ids only (with a note). */
static void load_titles(const char *dir, rec_items *it) {
    char path[4200];
    memset(it, 0, sizeof *it);
    if (rec_find_items_file(dir, path, sizeof path) != MM_OK || rec_items_load(path, it) != MM_OK)
        fprintf(stderr, "note: no titles (%s)\n", mm_errmsg());
}

static const char *title_of(const rec_items *it, int64_t id, char *buf, size_t n) {
    const char *t = it->n ? rec_items_title(it, id) : NULL;
    if (t) return t;
    snprintf(buf, n, "item %lld", (long long)id);
    return buf;
}

static int check_k(const cli_cmd *c, int k) {
    if (k < 1 || k > 100000) return cli_usage_error(c, "--k must be in 1..100000, got %d", k);
    return 0;
}

static void print_top_json(const rec_model *m, const rec_items *it, const rec_top_result *r) {
    char b[64];
    printf("{\"user\":%lld,\"model\":", (long long)r->user);
    json_string(stdout, rec_kind_name(m->kind));
    printf(",\"known\":%s,\"source\":\"%s\",\"rated\":%d,\"recommendations\":[", r->known ? "true" : "false",
           r->known ? "model" : "popularity", r->n_rated);
    for (int i = 0; i < r->n; i++) {
        const rec_pick *p = &r->picks[i];
        printf("%s{\"rank\":%d,\"item\":%lld,\"title\":", i ? "," : "", i + 1, (long long)p->item);
        json_string(stdout, title_of(it, p->item, b, sizeof b));
        json_field_number(stdout, "score", p->score);
        fputs(",\"reasons\":[", stdout);
        for (int q = 0; q < p->n_reasons; q++) {
            const rec_reason *s = &p->reasons[q];
            printf("%s{\"item\":%lld,\"title\":", q ? "," : "", (long long)s->item);
            json_string(stdout, title_of(it, s->item, b, sizeof b));
            json_field_number(stdout, "rating", s->rating);
            json_field_number(stdout, "similarity", s->sim);
            putchar('}');
        }
        fputs("]}", stdout);
    }
    fputs("]}\n", stdout);
}

static void print_top_text(const rec_model *m, const rec_items *it, const rec_top_result *r) {
    char b[64];
    const char *what = m->kind == REC_MF ? "predicted rating" : m->kind == REC_NEUMF ? "score" : "ratings";
    if (!r->known)
        printf("User %lld is not in the model: the %d most popular items instead (not personalized)\n", (long long)r->user, r->n);
    else
        printf("Top %d for user %lld (%s model; the user's %d rated items are excluded)\n", r->n, (long long)r->user,
               rec_kind_name(m->kind), r->n_rated);
    for (int i = 0; i < r->n; i++) {
        const rec_pick *p = &r->picks[i];
        if (!r->known) printf("%3d. %s [item %lld]  popularity %.0f\n", i + 1, title_of(it, p->item, b, sizeof b), (long long)p->item, p->score);
        else if (m->kind == REC_POP) printf("%3d. %s [item %lld]  %s %.0f\n", i + 1, title_of(it, p->item, b, sizeof b), (long long)p->item, what, p->score);
        else printf("%3d. %s [item %lld]  %s %.3f\n", i + 1, title_of(it, p->item, b, sizeof b), (long long)p->item, what, p->score);
        if (p->n_reasons) {
            fputs("     because you rated ", stdout);
            for (int q = 0; q < p->n_reasons; q++) {
                const rec_reason *s = &p->reasons[q];
                printf("%s%s (%g, similarity %.2f)", q ? ", " : "", title_of(it, s->item, b, sizeof b), s->rating, s->sim);
            }
            putchar('\n');
        }
    }
}

int cmd_recommend_top(int argc, char **argv) {
    const char *model_path = NULL, *data = NULL;
    long user = 0;
    int k = 10, threads = 0, json = 0;
    cli_opt opts[] = {
        {"--model", OPT_STR, &model_path, "FILE", "model file from 'recommend train' (required)", 0},
        {"--user", OPT_LONG, &user, "U", "user id as in the ratings file (required)", 0},
        {"--k", OPT_INT, &k, "K", "number of items (default 10)", 0},
        {"--data", OPT_STR, &data, "DIR", "MovieLens directory for the user's ratings and titles (default: the model's)", 0},
        {"--threads", OPT_INT, &threads, "T", "kernel threads (default $MEDIAML_THREADS, else the core count)", 0},
        {"--json", OPT_BOOL, &json, NULL, "print the result as one JSON object", 0},
        {NULL, 0, NULL, NULL, NULL, 0}};
    cli_cmd c = {"recommend top", "--model FILE --user U [OPTIONS]",
                 "Recommends the K items with the best model scores that the user has not rated, each with up to three\n"
                 "of the user's rated items that support it most (rating x cosine similarity of the item embeddings).\n"
                 "A user the model does not know gets the most popular items, marked as such.",
                 opts, NULL};
    int npos, rc = cli_parse(&c, argc, argv, NULL, 0, &npos);
    if (rc) return rc == CLI_HELP ? 0 : rc;
    if (!model_path) return cli_usage_error(&c, "--model FILE is required");
    if (!cli_find(&c, "--user")->seen) return cli_usage_error(&c, "--user U is required");
    if ((rc = check_k(&c, k)) || (rc = cli_apply_threads(&c, "--threads", threads))) return rc;

    rec_model m;
    if (rec_model_load(model_path, &m)) return cli_library_error();
    if (!data) data = m.data_dir;
    rec_data d;
    rec_top_result r = {0};
    rec_items it = {0};
    mm_status st = rec_data_load(data, NULL, &m, &d);
    if (st == MM_OK) st = rec_top(&m, &d.all, user, k, &r);
    if (st == MM_OK) {
        load_titles(data, &it);
        if (json) print_top_json(&m, &it, &r);
        else print_top_text(&m, &it, &r);
    }
    rec_items_free(&it);
    rec_top_result_free(&r);
    rec_data_free(&d);
    rec_model_free(&m);
    return st ? cli_library_error() : 0;
}

int cmd_recommend_similar(int argc, char **argv) {
    const char *model_path = NULL, *data = NULL;
    long item = 0;
    int k = 10, json = 0;
    cli_opt opts[] = {
        {"--model", OPT_STR, &model_path, "FILE", "mf or neumf model file from 'recommend train' (required)", 0},
        {"--item", OPT_LONG, &item, "I", "item id as in the ratings file (required)", 0},
        {"--k", OPT_INT, &k, "K", "number of items (default 10)", 0},
        {"--data", OPT_STR, &data, "DIR", "MovieLens directory for titles (default: the model's)", 0},
        {"--json", OPT_BOOL, &json, NULL, "print the result as one JSON object", 0},
        {NULL, 0, NULL, NULL, NULL, 0}};
    cli_cmd c = {"recommend similar", "--model FILE --item I [OPTIONS]",
                 "Lists the K items whose embeddings are closest to the item's (cosine similarity; mf: the item\n"
                 "factors q_i, neumf: the GMF and MLP item embeddings side by side).",
                 opts, NULL};
    int npos, rc = cli_parse(&c, argc, argv, NULL, 0, &npos);
    if (rc) return rc == CLI_HELP ? 0 : rc;
    if (!model_path) return cli_usage_error(&c, "--model FILE is required");
    if (!cli_find(&c, "--item")->seen) return cli_usage_error(&c, "--item I is required");
    if ((rc = check_k(&c, k))) return rc;

    rec_model m;
    if (rec_model_load(model_path, &m)) return cli_library_error();
    if (!data) data = m.data_dir;
    int64_t *ids = malloc((size_t)k * sizeof *ids);
    float *sims = malloc((size_t)k * sizeof *sims);
    int n = 0;
    mm_status st = ids && sims ? rec_similar(&m, item, k, ids, sims, &n) : mm_error(MM_ERR_NOMEM, "out of memory");
    if (st == MM_OK) {
        rec_items it;
        char b[64], b2[64];
        load_titles(data, &it);
        if (json) {
            printf("{\"item\":%ld,\"title\":", item);
            json_string(stdout, title_of(&it, item, b, sizeof b));
            fputs(",\"model\":", stdout);
            json_string(stdout, rec_kind_name(m.kind));
            fputs(",\"similar\":[", stdout);
            for (int i = 0; i < n; i++) {
                printf("%s{\"rank\":%d,\"item\":%lld,\"title\":", i ? "," : "", i + 1, (long long)ids[i]);
                json_string(stdout, title_of(&it, ids[i], b2, sizeof b2));
                json_field_number(stdout, "similarity", sims[i]);
                putchar('}');
            }
            fputs("]}\n", stdout);
        } else {
            printf("Items similar to %s [item %ld] (%s model, cosine similarity)\n", title_of(&it, item, b, sizeof b), item,
                   rec_kind_name(m.kind));
            for (int i = 0; i < n; i++)
                printf("%3d. %s [item %lld]  %.3f\n", i + 1, title_of(&it, ids[i], b2, sizeof b2), (long long)ids[i], sims[i]);
        }
        rec_items_free(&it);
    }
    free(ids);
    free(sims);
    rec_model_free(&m);
    return st ? cli_library_error() : 0;
}
