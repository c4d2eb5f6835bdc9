/* mediaml recommend: dispatch to train, eval, top and similar. */
#include "commands.h"

int cmd_recommend(int argc, char **argv) {
    static const cli_subcommand subs[] = {
        {"train", cmd_recommend_train, "train a model (mf, neumf or pop) on a split and evaluate it"},
        {"eval", cmd_recommend_eval,
         "RMSE/MAE, HR@10/NDCG@10 (NCF protocol), Recall@10/NDCG@10 (full ranking), beside popularity"},
        {"top", cmd_recommend_top, "the top items for a user, with the rated items that support each"},
        {"similar", cmd_recommend_similar, "the items most similar to an item"},
        {NULL, NULL, NULL},
    };
    return cli_dispatch("recommend",
                        "Recommendations from ratings (MovieLens u.data, ratings.csv or ratings.dat): popularity,\n"
                        "biased matrix factorization (rating prediction) and NeuMF (implicit feedback).",
                        subs, argc, argv);
}
