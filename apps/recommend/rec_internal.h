/* Recommend app internals shared by rec_model.c, rec_train.c and rec_use.c (not for the
 * command-line tool). */
#ifndef MEDIAML_APP_REC_INTERNAL_H
#define MEDIAML_APP_REC_INTERNAL_H

#include "recommend/rec_model.h"

/* Application metadata keys (mm_model_set_metadata; stored as "app.<key>" in the file). */
#define REC_META_TYPE "recommend.type"               /* mf, neumf, pop */
#define REC_META_DATA "recommend.data"               /* data directory (absolute) */
#define REC_META_SPLIT "recommend.split"             /* u1..u5, ua, ub, loo */
#define REC_META_USERS "recommend.users"             /* JSON array: original user id of each dense id */
#define REC_META_ITEMS "recommend.items"             /* JSON array: original item id of each dense id */
#define REC_META_CLIP "recommend.clip"               /* "MIN MAX" rating range (mf) */
#define REC_META_ITEM_TABLES "recommend.item_tables" /* item embedding tensors, comma-separated */
#define REC_META_CONFIG "recommend.config"           /* training settings (JSON object) */

/* x = (user, item) pairs and y = ratings of r. */
mm_status rec_rating_dataset(const rec_interactions *r, mm_dataset *d);
/* Runs m on n pairs (users[i], items[i]) (or one user for all when users is NULL and user
 * >= 0), clipping to [lo, hi] when lo < hi. */
mm_status rec_predict_pairs(mm_model *m, const int *users, int user, const int *items, size_t n, float lo, float hi,
                            float *out);
/* RMSE and MAE of m on a rating data set, predictions clipped to [lo, hi]. */
mm_status rec_rating_metrics(mm_model *m, const mm_dataset *test, float lo, float hi, double *rmse, double *mae);
/* HR@10 / NDCG@10 of m on NCF cases, predicted in large batches (clipped to [lo, hi] when
 * lo < hi). */
mm_status rec_eval_ncf_model(mm_model *m, float lo, float hi, const rec_ncf_cases *c, rec_rank_metrics *out);

#endif
