/* Sentiment app: loaders (TSV, CSV quoting, fastText, polarity pairs), bad records, stratified
 * folds, tokenizer (punctuation runs, negation scopes, Chinese characters, invalid UTF-8),
 * vocabulary and hashed n-gram features, the naive-Bayes model on a toy corpus, model files
 * and mm_model_set_weights/get_weights. */
#include "testutil.h"
#include "sentiment/sentiment.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *put(const char *name, const char *content, size_t len) {
    const char *p = tu_tmp_path(name);
    FILE *f = fopen(p, "wb");
    if (f) fwrite(content, 1, len, f), fclose(f);
    return p;
}
#define PUT(name, s) put(name, s, sizeof(s) - 1)

static int tok_is(const sent_tokens *t, int k, const char *s) {
    return k < t->n && (int)strlen(s) == t->nlen[k] && !memcmp(t->buf + t->off[k], s, strlen(s));
}

static void test_loaders(void) {
    sent_corpus c;
    CHECK_OK(sent_load(PUT("a.tsv", "pos\tgreat film\nneg\t  \n\nneg\tdull , flat\n"), SENT_FMT_AUTO, 0, NULL, &c));
    CHECK(c.n == 2 && c.n_labels == 2 && !strcmp(c.labels[0], "neg") && c.label[0] == 1 && c.skipped_empty == 1 &&
              c.first_empty_line == 2 && c.line[1] == 4,
          "tsv: n %d labels %d skipped %d", c.n, c.n_labels, c.skipped_empty);
    sent_corpus_free(&c);

    /* CSV: quoted commas, doubled quotes, a newline inside a field, CRLF, a BOM */
    CHECK_OK(sent_load(PUT("b.csv", "\xEF\xBB\xBFlabel,review\r\n1,\"a, \"\"b\"\"\nc\"\r\n0,plain\r\n"), SENT_FMT_AUTO, 0,
                       NULL, &c));
    CHECK(c.n == 2 && !strcmp(c.text[0], "a, \"b\"\nc") && !strcmp(c.text[1], "plain") && c.line[1] == 4,
          "csv: n %d text0 '%s' line1 %d", c.n, c.n ? c.text[0] : "", c.n > 1 ? c.line[1] : 0);
    sent_corpus_free(&c);

    CHECK_OK(sent_load(PUT("c.txt", "__label__pos __label__x good\n__label__neg bad\n"), SENT_FMT_AUTO, 0, NULL, &c));
    CHECK(c.n == 2 && !strcmp(c.text[0], "good") && !strcmp(c.labels[c.label[0]], "pos"), "fasttext lines");
    sent_corpus_free(&c);

    PUT("p.pos", "fine\n");
    PUT("p.neg", "awful\nbad\n");
    CHECK_OK(sent_load(tu_tmp_path("p"), SENT_FMT_POLARITY, 0, NULL, &c));
    CHECK(c.n == 3 && c.n_labels == 2, "polarity pair: %d texts", c.n);
    sent_corpus_free(&c);

    /* bad records name file:line */
    CHECK_ERR(sent_load(PUT("d.tsv", "pos\tok\nno tab here\n"), SENT_FMT_TSV, 0, NULL, &c), MM_ERR_FORMAT, "d.tsv:2");
    CHECK_ERR(sent_load(PUT("e.csv", "label,text\n1,\"open\n"), SENT_FMT_AUTO, 0, NULL, &c), MM_ERR_FORMAT,
              "unterminated quoted field");
    CHECK_ERR(sent_load(PUT("f.tsv", "pos\tbad \xff byte\n"), SENT_FMT_AUTO, 0, NULL, &c), MM_ERR_FORMAT, "f.tsv:1");
    char *big = malloc(SENT_MAX_TEXT_BYTES + 16);
    memcpy(big, "pos\t", 4);
    memset(big + 4, 'a', SENT_MAX_TEXT_BYTES + 1);
    big[SENT_MAX_TEXT_BYTES + 5] = '\n';
    CHECK_ERR(sent_load(put("g.tsv", big, SENT_MAX_TEXT_BYTES + 6), SENT_FMT_AUTO, 0, NULL, &c), MM_ERR_FORMAT,
              "exceeds the limit");
    free(big);
    char *known[] = {"neg", "pos"};
    CHECK_ERR(sent_load(PUT("h.tsv", "pos\tok\nneutral\tmeh\n"), SENT_FMT_AUTO, 2, known, &c), MM_ERR_FORMAT,
              "h.tsv:2: label 'neutral' was not seen in training");
    CHECK_ERR(sent_load(PUT("i.tsv", "pos\t \n"), SENT_FMT_AUTO, 0, NULL, &c), MM_ERR_FORMAT, "no labelled text");
    CHECK_ERR(sent_load(tu_tmp_path("missing.tsv"), SENT_FMT_AUTO, 0, NULL, &c), MM_ERR_IO, "cannot open");
}

static void test_folds(void) {
    sent_corpus c = {0};
    c.n = 103;
    c.n_labels = 2;
    c.label = malloc(sizeof(int) * (size_t)c.n);
    for (int i = 0; i < c.n; i++) c.label[i] = i < 73; /* 30 of class 0, 73 of class 1 */
    int fold[103], size[10] = {0}, ones[10] = {0}, again[103];
    CHECK_OK(sent_folds(&c, 10, 5, fold));
    CHECK_OK(sent_folds(&c, 10, 5, again));
    for (int i = 0; i < c.n; i++) size[fold[i]]++, ones[fold[i]] += c.label[i];
    int lo = 1000, hi = 0, olo = 1000, ohi = 0;
    for (int f = 0; f < 10; f++) {
        lo = size[f] < lo ? size[f] : lo, hi = size[f] > hi ? size[f] : hi;
        olo = ones[f] < olo ? ones[f] : olo, ohi = ones[f] > ohi ? ones[f] : ohi;
    }
    CHECK(hi - lo <= 1 && ohi - olo <= 1, "fold sizes %d..%d, class-1 counts %d..%d", lo, hi, olo, ohi);
    CHECK(!memcmp(fold, again, sizeof fold), "same seed, same folds");
    CHECK_ERR(sent_folds(&c, 1, 0, fold), MM_ERR_ARG, "cannot make 1 folds");
    free(c.label);
}

static void test_tokenizer(void) {
    sent_tokens t = {0};
    const char *s = "It isn't GOOD!!! well-made, not bad.";
    CHECK_OK(sent_tokenize(SENT_EN, SENT_TOK_LOWER, s, strlen(s), &t));
    CHECK(t.n == 9 && tok_is(&t, 0, "it") && tok_is(&t, 1, "isn't") && tok_is(&t, 3, "!!!") && tok_is(&t, 4, "well-made") &&
              tok_is(&t, 5, ",") && tok_is(&t, 6, "not") && tok_is(&t, 8, ".") && t.start[2] == 9 && t.len[2] == 4,
          "english tokens: %d", t.n);
    CHECK_OK(sent_tokenize(SENT_EN, SENT_TOK_LOWER | SENT_TOK_NEGATE, s, strlen(s), &t));
    CHECK(tok_is(&t, 2, "not_good") && tok_is(&t, 4, "well-made") && tok_is(&t, 7, "not_bad") && t.len[7] == 3,
          "negation scope ends at punctuation");
    const char *z = "房间很好,but WiFi差";
    CHECK_OK(sent_tokenize(SENT_ZH, SENT_TOK_LOWER, z, strlen(z), &t));
    CHECK(t.n == 8 && tok_is(&t, 0, "房") && tok_is(&t, 4, ",") && tok_is(&t, 5, "but") && tok_is(&t, 6, "wifi"),
          "chinese tokens: %d", t.n);
    CHECK(sent_tokenize(SENT_EN, 0, "ab\xc3", 3, &t) != MM_OK, "invalid UTF-8 rejected");
    sent_tokens_free(&t);
}

static void test_vocab_features(void) {
    sent_corpus c;
    CHECK_OK(sent_load(PUT("v.tsv", "a\tgood good film\nb\tbad film\nb\trare\n"), SENT_FMT_AUTO, 0, NULL, &c));
    sent_vocab v;
    CHECK_OK(sent_vocab_build(&c, NULL, 0, SENT_EN, SENT_TOK_LOWER, 2, 2, 1000, &v));
    /* min-count 2: good (2), film (2); bad and rare are unknown */
    CHECK(v.n == 4 && sent_vocab_id(&v, "good", 4) >= 2 && sent_vocab_id(&v, "rare", 4) == 1, "vocab of %d", v.n);
    sent_tokens t = {0};
    CHECK_OK(sent_tokenize(SENT_EN, SENT_TOK_LOWER, "good film", 9, &t));
    float row[8];
    int n = sent_features(&v, &t, -1, row, 8);
    CHECK(n == 3 && row[0] >= 2 && row[1] >= 2 && row[2] >= v.n && row[2] < v.n + 1000 && row[3] == 0,
          "ids + one bigram: %d", n);
    n = sent_features(&v, &t, 0, row, 8);
    CHECK(n == 3 && row[0] == 1 && row[1] >= 2 && row[2] == 1, "occluding a token hides it and its n-grams");
    v.bag = 1;
    CHECK_OK(sent_tokenize(SENT_EN, SENT_TOK_LOWER, "film film", 9, &t));
    CHECK(sent_features(&v, &t, -1, row, 8) == 2, "bag: repeated ids once");
    sent_tokens_free(&t);
    sent_vocab_free(&v);
    sent_corpus_free(&c);
}

/* naive Bayes (no gradient steps) on a toy corpus: separable words decide; the model file
 * alone classifies and explains */
static void test_nb_model(void) {
    char buf[4096] = "";
    const char *pos[] = {"great fun", "lovely great acting", "fun and lovely", "great"};
    const char *neg[] = {"dull plot", "awful dull acting", "awful and boring", "boring"};
    for (int r = 0; r < 5; r++)
        for (int i = 0; i < 4; i++) {
            snprintf(buf + strlen(buf), sizeof buf - strlen(buf), "pos\t%s\n", pos[i]);
            snprintf(buf + strlen(buf), sizeof buf - strlen(buf), "neg\t%s\n", neg[i]);
        }
    sent_corpus c;
    CHECK_OK(sent_load(put("toy.tsv", buf, strlen(buf)), SENT_FMT_AUTO, 0, NULL, &c));
    sent_config cfg = {.kind = SENT_NB, .lang = SENT_EN};
    sent_model m;
    CHECK_OK(sent_train(&cfg, &c, NULL, 0, &m));
    sent_metrics r;
    CHECK_OK(sent_evaluate(&m, &c, NULL, 0, &r));
    CHECK(r.accuracy == 1.0 && r.macro_f1 == 1.0 && r.confusion[0] == 20, "toy accuracy %f", r.accuracy);
    sent_metrics_free(&r);
    CHECK_OK(sent_model_save(&m, tu_tmp_path("toy.mm")));
    sent_model_free(&m);
    CHECK_OK(sent_model_load(tu_tmp_path("toy.mm"), &m));
    const char *texts[] = {"a great and lovely film", "so dull"};
    size_t lens[] = {strlen(texts[0]), strlen(texts[1])};
    sent_prediction p[2];
    CHECK_OK(sent_predict(&m, 2, texts, lens, 1, p));
    CHECK(!strcmp(m.labels[p[0].label], "pos") && !strcmp(m.labels[p[1].label], "neg"), "predictions");
    CHECK(p[0].n_tokens == 5 && p[0].weight[1] > 0 && p[0].weight[1] > p[0].weight[4], "'great' supports pos: %f",
          p[0].n_tokens ? p[0].weight[1] : 0);
    for (int i = 0; i < 2; i++) sent_prediction_free(&p[i]);
    const char *bad[] = {"   "};
    size_t bl[] = {3};
    CHECK_ERR(sent_predict(&m, 1, bad, bl, 0, p), MM_ERR_ARG, "empty text");
    char why[160];
    CHECK(sent_text_problem("a\xff", 2, why, sizeof why) != NULL, "invalid UTF-8 is a problem");
    sent_model_free(&m);
    sent_corpus_free(&c);
    CHECK_ERR(sent_model_load(PUT("junk.mm", "not a model"), &m), MM_ERR_FORMAT, "");
}

static void test_set_weights(void) {
    mm_model *m = mm_functional("w");
    int x = mm_input(m, 1, (int[]){3});
    mm_call(m, mm_Dense(.units = 2, .name = "out"), x);
    float k[6] = {1, 2, 3, 4, 5, 6}, back[6], nan_[6] = {0, 0, 0, 0, 0, NAN};
    CHECK_OK(mm_model_set_weights(m, "out/kernel", k, 6));
    CHECK_OK(mm_model_get_weights(m, "out/kernel", back, 6));
    CHECK(!memcmp(k, back, sizeof k), "round trip");
    CHECK_ERR(mm_model_set_weights(m, "out/kernel", k, 5), MM_ERR_SHAPE, "has 6 values");
    CHECK_ERR(mm_model_set_weights(m, "nope/kernel", k, 6), MM_ERR_ARG, "no weight named");
    CHECK_ERR(mm_model_set_weights(m, "out/kernel", nan_, 6), MM_ERR_NUMERIC, "not finite");
    CHECK_OK(mm_compile(m, .loss = "mse"));
    CHECK_OK(mm_model_get_weights(m, "out/kernel", back, 6));
    CHECK(!memcmp(k, back, sizeof k), "compile keeps set weights");
    mm_model_free(m);
}

int main(void) {
    test_loaders();
    test_folds();
    test_tokenizer();
    test_vocab_features();
    test_nb_model();
    test_set_weights();
    return tu_finish();
}
