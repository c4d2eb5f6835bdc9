/* mediaml sentiment: dispatch to train, eval and predict. */
#include "commands.h"

int cmd_sentiment(int argc, char **argv) {
    static const cli_subcommand subs[] = {
        {"train", cmd_sentiment_train, "train a classifier (stratified 90/10 split) or cross-validate one (--cv K)"},
        {"eval", cmd_sentiment_eval, "accuracy, macro-F1 and confusion matrix of a model on labelled texts"},
        {"predict", cmd_sentiment_predict, "label texts (arguments, a file or stdin) as JSON lines, with --explain attributions"},
        {NULL, NULL, NULL},
    };
    return cli_dispatch("sentiment",
                        "Sentiment of comments and reviews (English and Chinese) with word-level explanations:\n"
                        "fastText-style bags of word and n-gram embeddings, Kim's CNN, a bidirectional LSTM, naive Bayes\n"
                        "and naive Bayes combined with fastText.",
                        subs, argc, argv);
}
