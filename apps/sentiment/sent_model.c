/* The three sentiment networks, built from engine layers, and their model files: the network
 * plus "app.sentiment" metadata (model type, tokenizer settings, n-gram hashing, input
 * length, vocabulary) and the class labels, so a file alone classifies text. */
#include "sentiment/sentiment.h"

#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>

#define META_KEY "app.sentiment"

static const char *kind_names[] = {"fasttext", "cnn", "bilstm", "nb", "nbft"};

mm_status sent_kind_parse(const char *s, sent_kind *out) {
    for (int i = 0; i < 5; i++)
        if (!strcmp(s, kind_names[i])) {
            *out = (sent_kind)i;
            return MM_OK;
        }
    return mm_error(MM_ERR_ARG, "unknown model '%s' (expected fasttext, cnn, bilstm, nb or nbft)", s);
}

const char *sent_kind_name(sent_kind k) { return k >= SENT_FASTTEXT && k <= SENT_NBFT ? kind_names[k] : "?"; }

void sent_config_defaults(sent_config *c, sent_lang lang) {
    /* the nb model is a fastText network of width K, so it shares fastText's bag defaults */
    int ft = sent_kind_is_bag(c->kind);
    /* Chinese characters carry less than English words: fastText gets character uni-, bi- and
     * trigrams and 10 epochs (90.0% in 10-fold CV on ChnSentiCorp, 89.8% with bigrams, 5 epochs) */
    if ((c->kind == SENT_FASTTEXT || c->kind == SENT_NBFT) && lang == SENT_ZH) {
        if (!c->ngrams) c->ngrams = 3;
        if (!c->epochs) c->epochs = 10;
    }
    if (!c->lowercase) c->lowercase = 1;
    /* negation scopes, chosen by 10-fold CV with fold seed 1: +0.5 points for fastText, +0.7 for the
     * CNN (76.21% -> 76.92%), -0.6 for nb */
    if (!c->negation) c->negation = c->kind == SENT_FASTTEXT || c->kind == SENT_CNN ? 1 : -1;
    if (!c->min_count) c->min_count = 1;
    if (!c->ngrams) c->ngrams = ft ? 2 : 1;
    /* a million buckets: at 100k, bigram collisions cost naive Bayes 1.6 points on rt-polarity */
    if (!c->buckets) c->buckets = c->ngrams > 1 ? 1000000 : 0;
    if (!c->dim) c->dim = ft ? 10 : 128;
    if (!c->filters) c->filters = 100;
    if (!c->units) c->units = 64;
    if (!(c->alpha > 0)) c->alpha = 1.0f;
    if (c->dropout == 0) c->dropout = 0.5f;
    if (c->dropout < 0) c->dropout = 0;
    /* nb: naive Bayes alone unless epochs of fine-tuning are asked for (they did not help in
     * cross-validation on rt-polarity) */
    if (!c->epochs) c->epochs = c->kind == SENT_NB ? -1 : ft ? 5 : 4;
    if (!c->batch_size) c->batch_size = ft ? 32 : 50;
    if (!c->optimizer) c->optimizer = "adam";
    if (!c->decay) c->decay = 1;
    if (!(c->lr > 0)) c->lr = ft ? 0.005f : 0.001f;
}

void sent_model_free(sent_model *m) {
    mm_model_free(m->net);
    sent_vocab_free(&m->vocab);
    for (int i = 0; i < m->n_labels; i++) free(m->labels[i]);
    free(m->labels);
    memset(m, 0, sizeof *m);
}

static mm_status copy_labels(sent_model *m, int n, char *const *labels) {
    m->labels = calloc((size_t)n, sizeof(char *));
    if (!m->labels) return mm_error(MM_ERR_NOMEM, "out of memory");
    for (m->n_labels = 0; m->n_labels < n; m->n_labels++)
        if (!(m->labels[m->n_labels] = strdup(labels[m->n_labels]))) return mm_error(MM_ERR_NOMEM, "out of memory");
    return mm_model_set_labels(m->net, n, (const char *const *)labels);
}

/* fastText: mean of the token and n-gram vectors over the real (non-padding) ids, linear
 * softmax; nb: the same with one vector column per class.  Kim CNN: widths 3, 4, 5 with max-over-time pooling, dropout, softmax. BiLSTM:
 * final states of both directions, dropout, softmax. */
static mm_model *network(const sent_config *c, int rows, int T, int K) {
    mm_model *m = mm_functional(sent_kind_name(c->kind));
    if (!m) return NULL;
    int x = mm_input(m, 1, (int[]){T}), h;
    if (c->kind == SENT_NBFT) {
        /* logits of both models, added: names as in the nb and fasttext networks, prefixed */
        int a = mm_call(m, mm_Embedding(.input_dim = rows, .output_dim = K, .mask_zero = 1, .name = "nb_features"), x);
        a = mm_call(m, mm_Dense(.units = K, .name = "nb_classifier"), mm_call(m, mm_GlobalAveragePooling1D(), a));
        int b = mm_call(m, mm_Embedding(.input_dim = rows, .output_dim = c->dim, .mask_zero = 1, .name = "ft_features"), x);
        b = mm_call(m, mm_Dense(.units = K, .name = "ft_classifier"), mm_call(m, mm_GlobalAveragePooling1D(), b));
        int y = mm_call(m, mm_Activation(.activation = "softmax"), mm_call(m, mm_Add(), a, b));
        if (y < 0) {
            mm_model_free(m);
            return NULL;
        }
        return m;
    }
    if (c->kind == SENT_FASTTEXT || c->kind == SENT_NB) {
        /* nb: one column per class, set from naive-Bayes counts (sent_nb.c) */
        int d = c->kind == SENT_NB ? K : c->dim;
        int e = mm_call(m, mm_Embedding(.input_dim = rows, .output_dim = d, .mask_zero = 1, .name = "features"), x);
        h = mm_call(m, mm_GlobalAveragePooling1D(), e);
    } else if (c->kind == SENT_CNN) {
        int e = mm_call(m, mm_Embedding(.input_dim = rows, .output_dim = c->dim), x);
        int parts[3] = {-1, -1, -1}, np = 0;
        for (int w = 3; w <= 5; w++)
            if (w <= T)
                parts[np++] = mm_call(m, mm_GlobalMaxPooling1D(),
                                      mm_call(m, mm_Conv1D(.filters = c->filters, .kernel_size = w, .activation = "relu"), e));
        h = np == 1 ? parts[0] : np == 2 ? mm_call(m, mm_Concatenate(), parts[0], parts[1])
                                         : mm_call(m, mm_Concatenate(), parts[0], parts[1], parts[2]);
        if (c->dropout > 0) h = mm_call(m, mm_Dropout(.rate = c->dropout), h);
    } else {
        int e = mm_call(m, mm_Embedding(.input_dim = rows, .output_dim = c->dim, .mask_zero = 1), x);
        h = mm_call(m, mm_Bidirectional(.layer = mm_LSTM(.units = c->units)), e);
        if (c->dropout > 0) h = mm_call(m, mm_Dropout(.rate = c->dropout), h);
    }
    int y = mm_call(m, mm_Dense(.units = K, .activation = "softmax", .name = "classifier"), h);
    if (y < 0) {
        mm_model_free(m);
        return NULL;
    }
    return m;
}

mm_status sent_model_build(const sent_config *c, sent_lang lang, const sent_vocab *v, int max_len, int n_labels,
                           char *const *labels, sent_model *out) {
    memset(out, 0, sizeof *out);
    if (n_labels < 2) return mm_error(MM_ERR_ARG, "training needs at least 2 classes, the data has %d", n_labels);
    if (c->kind == SENT_CNN && max_len < 3) max_len = 3;
    out->kind = c->kind;
    out->lang = lang;
    out->tok = (c->lowercase > 0 ? SENT_TOK_LOWER : 0) | (c->negation > 0 ? SENT_TOK_NEGATE : 0);
    out->max_len = max_len;
    out->net = network(c, sent_vocab_rows(v), max_len, n_labels);
    if (!out->net) return mm_error(MM_ERR_ARG, "building the %s network: %s", sent_kind_name(c->kind), mm_errmsg());
    mm_status st = sent_vocab_from_words(v->n - 2, v->words + 2, v->ngrams, v->buckets, &out->vocab);
    out->vocab.bag = sent_kind_is_bag(c->kind);
    if (!st) st = copy_labels(out, n_labels, labels);
    if (!st) st = mm_model_init_weights(out->net, c->seed);
    if (st) sent_model_free(out);
    return st;
}

mm_status sent_model_save(sent_model *m, const char *path) {
    cJSON *j = cJSON_CreateObject();
    cJSON_AddNumberToObject(j, "version", 1);
    cJSON_AddStringToObject(j, "model", sent_kind_name(m->kind));
    cJSON_AddStringToObject(j, "tokenizer", m->lang == SENT_ZH ? "chinese_chars" : "english_words");
    cJSON_AddStringToObject(j, "lang", sent_lang_name(m->lang));
    cJSON_AddBoolToObject(j, "lowercase", m->tok & SENT_TOK_LOWER);
    cJSON_AddBoolToObject(j, "negation_scope", m->tok & SENT_TOK_NEGATE);
    cJSON_AddNumberToObject(j, "ngrams", m->vocab.ngrams);
    cJSON_AddNumberToObject(j, "buckets", m->vocab.buckets);
    cJSON_AddBoolToObject(j, "bag", m->vocab.bag);
    cJSON_AddStringToObject(j, "ngram_hash", "fnv1a64 per token, h = h * 116049371 + next");
    cJSON_AddNumberToObject(j, "max_len", m->max_len);
    cJSON *w = cJSON_AddArrayToObject(j, "vocab");
    for (int i = 2; w && i < m->vocab.n; i++) cJSON_AddItemToArray(w, cJSON_CreateString(m->vocab.words[i]));
    char *s = cJSON_PrintUnformatted(j);
    cJSON_Delete(j);
    if (!s) return mm_error(MM_ERR_NOMEM, "out of memory");
    mm_status st = mm_model_set_metadata(m->net, META_KEY, s);
    free(s);
    return st ? st : mm_model_save(m->net, path, 0);
}

static int get_int(const cJSON *j, const char *k, int dflt) {
    const cJSON *x = cJSON_GetObjectItemCaseSensitive(j, k);
    return cJSON_IsNumber(x) ? x->valueint : cJSON_IsBool(x) ? cJSON_IsTrue(x) : dflt;
}

mm_status sent_model_load(const char *path, sent_model *out) {
    memset(out, 0, sizeof *out);
    mm_status st = mm_model_load(path, &out->net);
    if (st) return st;
    const char *meta = mm_model_get_metadata(out->net, META_KEY);
    cJSON *j = meta ? cJSON_Parse(meta) : NULL;
    const cJSON *kind = cJSON_GetObjectItemCaseSensitive(j, "model"), *lang = cJSON_GetObjectItemCaseSensitive(j, "lang");
    const cJSON *vocab = cJSON_GetObjectItemCaseSensitive(j, "vocab");
    if (!meta) st = mm_error(MM_ERR_FORMAT, "%s: not a sentiment model (no %s metadata)", path, META_KEY);
    else if (!cJSON_IsString(kind) || !cJSON_IsString(lang) || !cJSON_IsArray(vocab))
        st = mm_error(MM_ERR_FORMAT, "%s: malformed %s metadata", path, META_KEY);
    if (!st) st = sent_kind_parse(kind->valuestring, &out->kind);
    if (!st) {
        out->lang = !strcmp(lang->valuestring, "zh") ? SENT_ZH : SENT_EN;
        out->tok = (get_int(j, "lowercase", 1) ? SENT_TOK_LOWER : 0) | (get_int(j, "negation_scope", 0) ? SENT_TOK_NEGATE : 0);
        out->max_len = get_int(j, "max_len", 0);
        int nw = cJSON_GetArraySize(vocab);
        char **words = calloc((size_t)nw + 1, sizeof(char *));
        int i = 0;
        const cJSON *it;
        cJSON_ArrayForEach(it, vocab) {
            if (!words || !cJSON_IsString(it)) break;
            words[i++] = it->valuestring;
        }
        if (!words) st = mm_error(MM_ERR_NOMEM, "out of memory");
        else if (i != nw) st = mm_error(MM_ERR_FORMAT, "%s: vocabulary entry %d is not a string", path, i);
        else st = sent_vocab_from_words(nw, words, get_int(j, "ngrams", 1), get_int(j, "buckets", 0), &out->vocab);
        if (!st) out->vocab.bag = get_int(j, "bag", 0);
        free(words);
    }
    int shape[MM_MAX_DIMS];
    if (!st && (mm_model_input_shape(out->net, shape) != 1 || shape[0] != out->max_len))
        st = mm_error(MM_ERR_FORMAT, "%s: network input does not match max_len %d", path, out->max_len);
    int K = mm_model_num_labels(out->net);
    if (!st && (K < 2 || mm_model_output_shape(out->net, shape) != 1 || shape[0] != K))
        st = mm_error(MM_ERR_FORMAT, "%s: %d labels for a network with another number of outputs", path, K);
    if (!st && !(out->labels = calloc((size_t)K, sizeof(char *)))) st = mm_error(MM_ERR_NOMEM, "out of memory");
    for (int k = 0; !st && k < K; k++, out->n_labels++)
        if (!(out->labels[k] = strdup(mm_model_label(out->net, k)))) st = mm_error(MM_ERR_NOMEM, "out of memory");
    cJSON_Delete(j);
    if (st) sent_model_free(out);
    return st;
}
