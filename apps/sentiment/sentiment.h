/* The sentiment app: labelled texts (rt-polarity, ChnSentiCorp CSV, TSV, CSV with a header,
 * fastText's __label__ lines), stratified splits and k folds, English word / Chinese character
 * tokenization, a vocabulary with min-count and an unknown token, hashed n-grams, three models
 * (fastText-style bag of embeddings, Kim's CNN, a bidirectional LSTM) built from engine layers,
 * training with evaluation (accuracy, macro-F1, confusion matrix) and cross-validation,
 * predictions with per-token occlusion attributions.
 *
 * Public mediaml API only. Every fallible call returns an mm_status with the message in
 * mm_errmsg(); nothing here prints, exits or aborts. Structures filled by a call are owned by
 * the caller and released with their _free function (which accepts a zeroed structure). */
#ifndef MEDIAML_APP_SENTIMENT_H
#define MEDIAML_APP_SENTIMENT_H

#include <mediaml.h>

#include <stddef.h>
#include <stdint.h>

/* Longest text accepted, in bytes (data files and predict input). */
#define SENT_MAX_TEXT_BYTES 65536

/* ------------------------------------------------------------------ data (sent_data.c) */

typedef enum sent_format {
    SENT_FMT_AUTO = 0, /* from the path and the first line */
    SENT_FMT_TSV,      /* label<TAB>text */
    SENT_FMT_CSV,      /* CSV with a header naming a label column and a text column */
    SENT_FMT_FASTTEXT, /* __label__X text */
    SENT_FMT_POLARITY  /* a directory (or file pair) NAME.pos / NAME.neg, one text per line */
} sent_format;

typedef struct sent_corpus {
    int n, cap;
    char **text;        /* [n] NUL-terminated UTF-8, not empty */
    int *label;         /* [n] index into labels */
    int *line;          /* [n] line of the record in its file (first line of a CSV record) */
    int n_labels;
    char **labels;      /* label names: sorted, or the known labels given to the loader */
    int skipped_empty;  /* records with an empty (all-space) text, skipped */
    int first_empty_line;
} sent_corpus;

/* Parses a format name: auto, tsv, csv, fasttext, polarity. */
mm_status sent_format_parse(const char *s, sent_format *out);

/* Loads labelled texts. path: a file, or a directory holding one data file (*.csv, *.tsv,
 * *.txt) or a polarity pair (*.pos / *.neg; the UTF-8 copies *.utf8.pos / *.utf8.neg are
 * preferred). Texts must be valid UTF-8 and at most SENT_MAX_TEXT_BYTES; a malformed record
 * fails with "FILE:LINE: what is wrong". Records with an empty text are skipped and counted.
 * known (n_known > 0): the labels a model was trained with; the output uses them in that
 * order and a label outside them is an error naming the file and line. Otherwise the labels
 * are those found, sorted. */
mm_status sent_load(const char *path, sent_format fmt, int n_known, char *const *known, sent_corpus *out);
void sent_corpus_free(sent_corpus *c);

/* Default data directory: $MEDIAML_DATA/NAME, else ../shared/data/NAME. */
const char *sent_default_data(const char *name, char *buf, size_t size);

/* ------------------------------------------------------------------ splits (sent_split.c) */

/* Assigns each example a fold 0..k-1, stratified: within each class the examples are shuffled
 * with seed and dealt to the folds in turn, continuing from class to class, so every fold gets
 * each class in proportion and fold sizes differ by at most one. fold: [c->n]. */
mm_status sent_folds(const sent_corpus *c, int k, uint64_t seed, int *fold);

/* ------------------------------------------------------------------ tokens (sent_tokenize.c) */

typedef enum sent_lang { SENT_EN = 0, SENT_ZH = 1 } sent_lang;

/* Tokens of one text: byte spans in the original and normalized (lower-cased) strings. */
typedef struct sent_tokens {
    int n, cap;
    int *start, *len;   /* [n] span in the text */
    int *off, *nlen;    /* [n] normalized token: buf + off, nlen bytes */
    char *buf;
    size_t buf_n, buf_cap;
} sent_tokens;

/* Tokenizer options (flags). SENT_TOK_NEGATE (English): words after a negation (not, no,
 * never, n't, cannot, ...) up to the next clause punctuation (. , : ; ! ?) get a "not_" prefix,
 * so "not good" and "good" are different features (Das & Chen's negation scope). */
enum { SENT_TOK_LOWER = 1, SENT_TOK_NEGATE = 2 };

/* English (SENT_EN): words (letters, digits, inner apostrophes and hyphens: "don't",
 * "well-made"), each run of one punctuation character as a token ("!!", "..."), negations kept
 * as words; CJK characters one token each. Chinese (SENT_ZH): one token per character, except
 * runs of ASCII letters/digits, which stay words. lowercase: ASCII letters lowered (SENT_TOK_LOWER). Text must
 * be valid UTF-8 (else MM_ERR_ARG naming the byte offset). flags: SENT_TOK_*. Reuses out's buffers. */
mm_status sent_tokenize(sent_lang lang, int flags, const char *text, size_t len, sent_tokens *out);
void sent_tokens_free(sent_tokens *t);
/* SENT_ZH when at least a fifth of the code points of the texts are CJK, else SENT_EN. */
sent_lang sent_detect_lang(const sent_corpus *c);
const char *sent_lang_name(sent_lang l);

/* ------------------------------------------------------------------ vocabulary (sent_vocab.c) */

/* Word ids: 0 padding, 1 unknown, 2.. words by decreasing count (ties: byte order). Hashed
 * n-grams (2..ngrams consecutive tokens) get ids n + hash % buckets. */
typedef struct sent_vocab {
    int n;              /* ids 0..n-1 (including padding and unknown) */
    char **words;       /* [n]; words[0] = "<pad>", words[1] = "<unk>" */
    int *table;         /* open addressing: word id or -1 */
    size_t nslots;
    int ngrams;         /* 1 = words only */
    int buckets;        /* hashed n-gram rows (0 when ngrams == 1) */
    int bag;            /* bag-of-features models: each id at most once per row (binarized counts) */
} sent_vocab;

/* Counts tokens over texts[idx[0..n)] (all texts when idx is NULL) and keeps those seen at
 * least min_count times. */
mm_status sent_vocab_build(const sent_corpus *c, const int *idx, int n, sent_lang lang, int tok_flags,
                           int min_count, int ngrams, int buckets, sent_vocab *out);
/* From a word list (ids 2..), as stored in model files. */
mm_status sent_vocab_from_words(int n_words, char *const *words, int ngrams, int buckets, sent_vocab *out);
void sent_vocab_free(sent_vocab *v);
int sent_vocab_id(const sent_vocab *v, const char *s, size_t len);
/* Embedding rows: n + buckets. */
static inline int sent_vocab_rows(const sent_vocab *v) { return v->n + v->buckets; }

/* Writes a model input row: for each token its word id, followed (fastText style, when
 * ngrams > 1) by the hashed n-grams that end at it; the token with index drop (-1: none) and
 * the n-grams covering it become the unknown id (occlusion keeps the row's length, so that
 * averaging models compare like with like). Stops at max_len ids and pads with 0.
 * With v->bag, repeated ids other than <unk> are written once (in increasing order).
 * Returns the number of ids written (row NULL: the number a row without limit would hold,
 * before removing repeats). */
int sent_features(const sent_vocab *v, const sent_tokens *t, int drop, float *row, int max_len);

/* ------------------------------------------------------------------ models (sent_model.c) */

/* nb: multinomial naive Bayes over the binarized word and n-gram bag, written into a fastText
 * network (one embedding column per class: centred log-probabilities) and then fine-tuned
 * discriminatively for the configured epochs, in the spirit of Wang & Manning's NBSVM. */
/* nbft: the product of the nb and fasttext models (their logits added), each trained on its
 * own as above, in one network: an ensemble of two models that err differently. */
typedef enum sent_kind { SENT_FASTTEXT = 0, SENT_CNN, SENT_BILSTM, SENT_NB, SENT_NBFT } sent_kind;
/* Bag-of-features models (fasttext, nb, nbft): binarized rows, order does not matter. */
static inline int sent_kind_is_bag(sent_kind k) { return k == SENT_FASTTEXT || k == SENT_NB || k == SENT_NBFT; }

typedef struct sent_config {
    sent_kind kind;
    int lang;           /* SENT_EN, SENT_ZH, or -1: detect from the training texts */
    int lowercase;      /* default 1 (-1: keep case) */
    int negation;       /* 1: not_ prefix in negation scopes (English), -1: none; default fasttext and cnn 1, others -1 */
    int min_count;      /* default 1 */
    int ngrams;         /* default: fasttext 2 (zh: 3), nb 2, others 1 */
    int buckets;        /* default 100000 when ngrams > 1 */
    int dim;            /* embedding size; default fasttext 32, others 128 */
    int max_len;        /* input length cap; default from the data, at most 400 (en) / 1024 (zh) */
    int filters;        /* cnn: per width, default 100 (widths 3, 4, 5) */
    int units;          /* bilstm: per direction, default 64 */
    float alpha;        /* nb: add-alpha smoothing of the counts, default 1 */
    float dropout;      /* cnn/bilstm: default 0.5 */
    int epochs;         /* see sent_config_defaults; -1: none (nb: naive Bayes alone) */
    int batch_size;     /* default fasttext 32, cnn/bilstm 50 */
    float lr;           /* default: see sent_config_defaults */
    const char *optimizer; /* "adam" (default), "sgd", "adamw", "rmsprop" */
    int decay;          /* 1: cosine decay of the rate to 0 over the training (default), -1: constant */
    uint64_t seed;
    mm_progress_fn progress;
    void *user;
} sent_config;

mm_status sent_kind_parse(const char *s, sent_kind *out);
const char *sent_kind_name(sent_kind k);
/* Fills the defaults of fields left 0 for texts in lang. */
void sent_config_defaults(sent_config *c, sent_lang lang);

/* A trained classifier with its text pipeline. */
typedef struct sent_model {
    mm_model *net;
    sent_kind kind;
    sent_lang lang;
    int tok;            /* tokenizer flags, SENT_TOK_* */
    int max_len;
    sent_vocab vocab;
    int n_labels;
    char **labels;
} sent_model;

/* Builds the network for a vocabulary and the config (weights initialized from seed). */
mm_status sent_model_build(const sent_config *c, sent_lang lang, const sent_vocab *v, int max_len, int n_labels,
                           char *const *labels, sent_model *out);
/* Saves the network with the tokenizer settings, vocabulary and labels ("app.sentiment"). */
mm_status sent_model_save(sent_model *m, const char *path);
mm_status sent_model_load(const char *path, sent_model *out);
void sent_model_free(sent_model *m);

/* ------------------------------------------------------------------ training (sent_train.c) */

typedef struct sent_metrics {
    long count;
    double accuracy, macro_f1;
    int n_labels;
    long *confusion;    /* n_labels x n_labels, true row, predicted column */
} sent_metrics;
void sent_metrics_free(sent_metrics *m);

/* Trains on c's examples idx[0..n) (all when idx is NULL): vocabulary, model, fit. */
mm_status sent_train(const sent_config *cfg, const sent_corpus *c, const int *idx, int n, sent_model *out);
/* Accuracy, macro-F1 and confusion matrix on idx[0..n) (all when idx is NULL). c's labels
 * must be m's (sent_load with the model's labels as known). */
mm_status sent_evaluate(sent_model *m, const sent_corpus *c, const int *idx, int n, sent_metrics *out);

/* k-fold cross-validation: trains on k-1 folds and evaluates on the held-out one, for each
 * fold; on_fold (may be NULL) sees each fold's metrics. acc/f1: [k] per-fold results. */
typedef void (*sent_fold_fn)(int fold, int k, const sent_metrics *m, double seconds, void *user);
mm_status sent_cross_validate(const sent_config *cfg, const sent_corpus *c, int k, sent_fold_fn on_fold, void *user,
                              double *acc, double *f1);

/* ------------------------------------------------------------------ predict / explain */

typedef struct sent_prediction {
    int label;          /* argmax class */
    float *probs;       /* [n_labels] */
    int n_tokens;
    int *start, *len;   /* [n_tokens] token spans in the text */
    float *weight;      /* [n_tokens] occlusion attribution for `label`, or NULL */
    int truncated;      /* tokens past max_len were not seen */
} sent_prediction;
void sent_prediction_free(sent_prediction *p);

/* Classifies n texts (valid UTF-8, not empty; checked: a bad text fails the call with its
 * index). explain: attributions by occlusion, the drop of the predicted class's log-odds
 * when the token (with its n-grams) is replaced by <unk>. out: [n], zeroed first. */
mm_status sent_predict(sent_model *m, int n, const char *const *texts, const size_t *lens, int explain,
                       sent_prediction *out);

/* Why a text cannot be classified (empty, too long, invalid UTF-8), or NULL when it can. */
const char *sent_text_problem(const char *text, size_t len, char *buf, size_t size);

#endif
