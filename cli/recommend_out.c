/* Output shared by the recommend commands. */
#include "recommend_out.h"

#include "json.h"

#include <stdio.h>

static void json_metrics(const char *name, const rec_rank_metrics *r, const char *hr) {
    printf(",\"%s\":{\"%s\":", name, hr);
    json_number(stdout, r->hr);
    json_field_number(stdout, "ndcg@10", r->ndcg);
    printf(",\"users\":%ld}", r->n_users);
}

void rec_print_eval(const rec_model *m, const rec_data *d, const rec_eval_report *e, int json, double train_seconds) {
    if (json) {
        fputs("{\"model\":", stdout);
        json_string(stdout, rec_kind_name(m->kind));
        fputs(",\"data\":", stdout);
        json_string(stdout, d->dir);
        fputs(",\"split\":", stdout);
        json_string(stdout, e->split);
        printf(",\"train\":%ld,\"test\":%ld,\"users\":%d,\"items\":%d", e->train_count, e->test_count, e->users, e->items);
        if (e->has_rmse) {
            json_field_number(stdout, "rmse", e->rmse);
            json_field_number(stdout, "mae", e->mae);
        }
        json_metrics("ncf", &e->ncf, "hr@10");
        json_metrics("full", &e->full, "recall@10");
        json_metrics("popularity_ncf", &e->pop_ncf, "hr@10");
        json_metrics("popularity_full", &e->pop_full, "recall@10");
        if (train_seconds >= 0) {
            json_field_number(stdout, "train_seconds", train_seconds);
        }
        json_field_number(stdout, "eval_seconds", e->seconds);
        fputs("}\n", stdout);
        fflush(stdout);
        return;
    }
    printf("Evaluated %s on %s, split %s: %ld training / %ld test ratings, %d users, %d items\n", rec_kind_name(m->kind),
           d->dir, e->split, e->train_count, e->test_count, e->users, e->items);
    printf("%-34s %10s %10s\n", "", "model", "popularity");
    if (e->has_rmse) {
        printf("%-34s %10.4f %10s\n", "RMSE", e->rmse, "-");
        printf("%-34s %10.4f %10s\n", "MAE", e->mae, "-");
    }
    printf("%-34s %10.4f %10.4f\n", "HR@10 (99 sampled negatives)", e->ncf.hr, e->pop_ncf.hr);
    printf("%-34s %10.4f %10.4f\n", "NDCG@10 (99 sampled negatives)", e->ncf.ndcg, e->pop_ncf.ndcg);
    printf("%-34s %10.4f %10.4f\n", "Recall@10 (full ranking)", e->full.hr, e->pop_full.hr);
    printf("%-34s %10.4f %10.4f\n", "NDCG@10 (full ranking)", e->full.ndcg, e->pop_full.ndcg);
    printf("(%ld NCF cases, %ld users ranked over unseen items; %.1fs)\n", e->ncf.n_users, e->full.n_users, e->seconds);
    fflush(stdout);
}
