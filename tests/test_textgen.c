/* The textgen app: metadata round trips, windows, CSV columns, sampling, bad inputs, and two
 * small end-to-end runs (skipped without the shared data): a char GPT on the first 50 KB of
 * Tiny Shakespeare must beat the unigram entropy and generate deterministic UTF-8, a resumed
 * run must equal an uninterrupted one, and a char model on Chinese hotel reviews must write
 * Chinese. Each training run is a few hundred small steps on one thread. */
#include "testutil.h"
#include "textgen/textgen.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now_seconds(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

static void write_file(const char *path, const char *s, size_t n) {
    FILE *f = fopen(path, "wb");
    if (!f) return;
    fwrite(s, 1, n, f);
    fclose(f);
}

/* ------------------------------------------------------------------ metadata */

static void test_meta(void) {
    textgen_config c = textgen_default_config(), d;
    c.vocab_size = 65;
    c.dropout = 0.1f;
    c.sinusoidal = 1;
    textgen_train_meta t = {.tokenizer = "bpe", .batch_size = 8, .steps = 123, .eval_every = 10, .seed = 18446744073709551615ull,
                            .val_fraction = 0.2f, .val_windows = 7, .limit = 5000, .csv_column = "re\"view"},
                       u;
    char *json = NULL;
    CHECK_OK(textgen_meta_to_json(&c, &t, &json));
    CHECK_OK(textgen_meta_from_json(json, &d, &u));
    CHECK(d.arch == c.arch && d.vocab_size == 65 && d.context == 128 && d.layers == 4 && d.heads == 4 && d.width == 128 &&
              d.sinusoidal == 1 && fabsf(d.dropout - 0.1f) < 1e-7f,
          "config round trip: %s", json);
    CHECK(!strcmp(u.tokenizer, "bpe") && u.batch_size == 8 && u.steps == 123 && u.eval_every == 10 &&
              u.seed == 18446744073709551615ull && u.val_windows == 7 && u.limit == 5000 && !strcmp(u.csv_column, "re\"view"),
          "settings round trip: %s", json);
    free(json);
    CHECK_ERR(textgen_meta_from_json("{\"format\":1,\"arch\":\"gpt\"", &d, NULL), MM_ERR_FORMAT, "expected");
    CHECK_ERR(textgen_meta_from_json("[1,2]", &d, NULL), MM_ERR_FORMAT, "not a JSON object");
    CHECK_ERR(textgen_meta_from_json("{\"format\":1,\"arch\":\"rnn\",\"vocab_size\":5,\"context\":4,\"layers\":1,\"width\":4}", &d, NULL),
              MM_ERR_FORMAT, "unknown arch");
    CHECK_ERR(textgen_meta_from_json("{\"format\":1,\"arch\":\"gpt\",\"vocab_size\":5,\"context\":4,\"layers\":1,\"width\":6,\"heads\":4}", &d,
                                     NULL),
              MM_ERR_FORMAT, "not divisible");
    CHECK_ERR(textgen_meta_from_json("{\"format\":2}", &d, NULL), MM_ERR_FORMAT, "format");
    CHECK_ERR(textgen_meta_from_json("{\"format\":1,\"arch\":\"lstm\",\"vocab_size\":5,\"context\":-4,\"layers\":1,\"width\":4}", &d, NULL),
              MM_ERR_FORMAT, "context");
}

/* ------------------------------------------------------------------ data */

static void test_windows(void) {
    int32_t ids[100];
    for (int i = 0; i < 100; i++) ids[i] = i;
    mm_dataset d;
    CHECK_OK(textgen_sample_windows(ids, 100, 8, 50, 7, &d));
    int ok = d.x.shape[0] == 50 && d.x.shape[1] == 8 && d.y.shape[1] == 8;
    for (int i = 0; ok && i < 50 * 8; i++) ok = d.y.data[i] == d.x.data[i] + 1 && d.x.data[i] >= 0 && d.y.data[i] <= 99;
    for (int i = 0; ok && i < 50; i++) ok = d.x.data[i * 8 + 7] == d.x.data[i * 8] + 7;
    CHECK(ok, "sampled windows are contiguous, y = x shifted by one");
    mm_dataset e;
    CHECK_OK(textgen_sample_windows(ids, 100, 8, 50, 7, &e));
    CHECK(!memcmp(d.x.data, e.x.data, d.x.size * sizeof(float)), "same seed, same windows");
    mm_dataset_free(&e);
    mm_dataset_free(&d);
    CHECK_OK(textgen_fixed_windows(ids, 100, 8, 0, &d));
    CHECK(d.x.shape[0] == 12 && d.x.data[8] == 8 && d.y.data[12 * 8 - 1] == 96, "12 non-overlapping windows of 8");
    mm_dataset_free(&d);
    CHECK_OK(textgen_fixed_windows(ids, 100, 8, 3, &d));
    CHECK(d.x.shape[0] == 3 && d.x.data[0] == 0 && d.x.data[8] == 32 && d.x.data[16] == 64, "capped windows spread evenly");
    mm_dataset_free(&d);
    CHECK_ERR(textgen_fixed_windows(ids, 8, 8, 0, &d), MM_ERR_ARG, "fewer than context + 1");
    CHECK_ERR(textgen_sample_windows(ids, 5, 8, 10, 0, &d), MM_ERR_ARG, "fewer than context + 1");
}

static void test_csv_and_text(void) {
    const char *csv = "label,review\n1,\"a, \"\"quoted\"\" one\"\n0,plain\r\n1,\n0,\"multi\nline\"\n1,last";
    const char *path = tu_tmp_path("r.csv");
    write_file(path, csv, strlen(csv));
    char *text;
    size_t len;
    CHECK_OK(textgen_read_csv_column(path, "review", 0, &text, &len));
    const char *want = "a, \"quoted\" one\nplain\nmulti\nline\nlast\n";
    CHECK(len == strlen(want) && !memcmp(text, want, len), "CSV column: got '%s'", text);
    free(text);
    CHECK_ERR(textgen_read_csv_column(path, "text", 0, &text, &len), MM_ERR_ARG, "no column 'text'");
    const char *bad = "a,b\n1,\"open\n";
    write_file(path, bad, strlen(bad));
    CHECK_ERR(textgen_read_csv_column(path, "b", 0, &text, &len), MM_ERR_FORMAT, "unterminated");

    /* limits never split a character; invalid UTF-8 and empty files are named */
    const char *txt = tu_tmp_path("t.txt");
    write_file(txt, "ab\xe4\xb8\xad\xe6\x96\x87", 8);
    CHECK_OK(textgen_read_text(txt, 4, &text, &len));
    CHECK(len == 2, "limit 4 keeps 'ab' (not half of U+4E2D), got %zu bytes", len);
    free(text);
    write_file(txt, "ab\xff", 3);
    CHECK_ERR(textgen_read_text(txt, 0, &text, &len), MM_ERR_FORMAT, "byte offset 2");
    write_file(txt, "", 0);
    CHECK_ERR(textgen_read_text(txt, 0, &text, &len), MM_ERR_ARG, "empty");
    CHECK_ERR(textgen_read_text(tu_tmp_path("missing.txt"), 0, &text, &len), MM_ERR_IO, "missing.txt");
}

/* ------------------------------------------------------------------ sampling */

static void test_sampling(void) {
    float p[5] = {0.1f, 0.4f, 0.05f, 0.3f, 0.15f};
    char scratch[5 * 64];
    CHECK(textgen_sample_scratch_bytes(5) <= sizeof scratch, "scratch size");
    uint64_t rng = 1;
    textgen_sampling greedy = {.temperature = 0}, k1 = {.temperature = 1, .top_k = 1}, nucleus = {.temperature = 1, .top_p = 0.3f};
    CHECK(textgen_sample(p, 5, &greedy, &rng, scratch) == 1, "greedy picks the argmax");
    CHECK(textgen_sample(p, 5, &k1, &rng, scratch) == 1, "top-k 1 picks the argmax");
    CHECK(textgen_sample(p, 5, &nucleus, &rng, scratch) == 1, "top-p 0.3 keeps only the 0.4 token");
    /* frequencies: plain, top-k 2, top-p 0.75 (keeps 0.4 + 0.3 + 0.15 = 0.85 >= 0.75) */
    textgen_sampling plain = {.temperature = 1}, k2 = {.temperature = 1, .top_k = 2},
                     p75 = {.temperature = 1, .top_p = 0.75f}, cold = {.temperature = 0.5f};
    int cnt[4][5] = {{0}};
    const textgen_sampling *ss[4] = {&plain, &k2, &p75, &cold};
    const int n = 20000;
    for (int s = 0; s < 4; s++)
        for (int i = 0; i < n; i++) cnt[s][textgen_sample(p, 5, ss[s], &rng, scratch)]++;
    double worst = 0;
    for (int i = 0; i < 5; i++) worst = fmax(worst, fabs(cnt[0][i] / (double)n - p[i]));
    CHECK(worst < 0.015, "plain sampling follows p (max deviation %.4f)", worst);
    CHECK(cnt[1][0] + cnt[1][2] + cnt[1][4] == 0 && fabs(cnt[1][1] / (double)n - 0.4 / 0.7) < 0.015,
          "top-k 2 samples tokens 1 and 3 in proportion (%d %d)", cnt[1][1], cnt[1][3]);
    CHECK(cnt[2][0] + cnt[2][2] == 0 && fabs(cnt[2][4] / (double)n - 0.15 / 0.85) < 0.015, "top-p 0.75 keeps 3 tokens");
    /* temperature 0.5 squares the probabilities: 0.16 / (0.01+0.16+0.0025+0.09+0.0225) */
    CHECK(fabs(cnt[3][1] / (double)n - 0.16 / 0.285) < 0.015, "temperature 0.5: %d", cnt[3][1]);
    uint64_t a = 42, b = 42;
    int same = 1;
    for (int i = 0; i < 100; i++) same &= textgen_sample(p, 5, &plain, &a, scratch) == textgen_sample(p, 5, &plain, &b, scratch);
    CHECK(same, "same seed, same samples");
}

/* ------------------------------------------------------------------ end to end */

static int valid_utf8(const char *s, size_t n) { return mm_utf8_validate(s, n, NULL) == MM_OK; }

/* Generates n tokens after prompt; returns the decoded text (streamed) and the ids. */
static char *generate(textgen_lm *lm, int cached, const char *prompt, int n, uint64_t seed, textgen_sampling s, int32_t *out_ids,
                      double *tok_per_s) {
    int32_t *ids = NULL;
    size_t np = 0;
    textgen_generator *g = NULL;
    mm_token_stream *ts = NULL;
    size_t cap = 64 * (size_t)n + 16, len = 0;
    char *text = calloc(cap, 1);
    if (textgen_encode_prompt(lm, prompt, strlen(prompt), &ids, &np) || textgen_generator_new(lm, cached, &g) ||
        mm_token_stream_new(lm->tok, &ts) || textgen_generator_start(g, ids, np)) {
        CHECK(0, "generation setup: %s", mm_errmsg());
        goto done;
    }
    CHECK(textgen_generator_cached(g) == cached, "cache use as asked (%s)", textgen_generator_note(g));
    uint64_t rng = seed;
    double t0 = now_seconds();
    const char *piece;
    size_t k;
    for (int i = 0; i < n; i++) {
        int32_t id;
        if (textgen_generator_next(g, &s, &rng, &id) || mm_token_stream_push(ts, id, &piece, &k)) {
            CHECK(0, "generation step %d: %s", i, mm_errmsg());
            break;
        }
        if (out_ids) out_ids[i] = id;
        memcpy(text + len, piece, k), len += k;
    }
    if (!mm_token_stream_flush(ts, &piece, &k)) memcpy(text + len, piece, k), len += k;
    if (tok_per_s) *tok_per_s = n / (now_seconds() - t0);
done:
    mm_token_stream_free(ts);
    textgen_generator_free(g);
    free(ids);
    return text;
}

static textgen_train_config small_config(const char *data, const char *out) {
    textgen_train_config c = {.data_path = data, .out_path = out, .tokenizer = "char", .model = textgen_default_config(),
                              .batch_size = 32, .lr = 1e-2f, .weight_decay = -1, .clipnorm = -1, .warmup = -1,
                              .min_lr = -1, .val_fraction = 0.1f};
    c.model.layers = 2, c.model.heads = 4, c.model.width = 32, c.model.context = 32;
    return c;
}

static void test_shakespeare(const char *dir) {
    char data[4096];
    snprintf(data, sizeof data, "%s/tinyshakespeare/input.txt", dir);
    const char *out = tu_tmp_path("shakespeare.mm");
    textgen_train_config c = small_config(data, out);
    c.limit = 50000;
    c.steps = 300;
    c.eval_every = 100;
    textgen_train_report r;
    double t0 = now_seconds();
    CHECK_OK(textgen_train(&c, &r));
    double secs = now_seconds() - t0;
    /* the unigram entropy of these 50 KB is 3.28 nats per character */
    printf("char GPT (2x32, context 32) on 50 KB of Tiny Shakespeare: %ld steps, val_loss %.4f (train %.4f), %.0f tok/s, %.1fs\n",
           r.steps_done, r.last.val_loss, r.last.train_loss, r.last.tokens_per_second, secs);
    CHECK(r.steps_done == 300 && r.has_eval, "trained %ld steps", r.steps_done);
    CHECK(r.last.val_loss < 2.5, "validation loss %.4f should be below 2.5 nats (unigram entropy 3.28)", r.last.val_loss);

    textgen_lm lm;
    CHECK_OK(textgen_load(out, &lm));
    if (!lm.model) return;
    CHECK(lm.cfg.layers == 2 && lm.cfg.width == 32 && lm.cfg.context == 32 && lm.meta.batch_size == 32, "metadata read back");
    textgen_sampling s = {.temperature = 0.8f, .top_k = 20, .top_p = 0.95f};
    int32_t a_ids[50], b_ids[50], c_ids[50];
    double cached_tps = 0, full_tps = 0;
    char *a = generate(&lm, 1, "ROMEO:", 50, 7, s, a_ids, &cached_tps);
    char *b = generate(&lm, 1, "ROMEO:", 50, 7, s, b_ids, NULL);
    char *cfull = generate(&lm, 0, "ROMEO:", 50, 7, s, c_ids, &full_tps);
    printf("  generated (seed 7): \"%s\"\n  %.0f tok/s with the KV cache, %.0f tok/s without\n", a, cached_tps, full_tps);
    CHECK(valid_utf8(a, strlen(a)) && strlen(a) >= 50, "50 tokens of valid UTF-8");
    CHECK(!strcmp(a, b) && !memcmp(a_ids, b_ids, sizeof a_ids), "same seed, same text");
    /* within the context (6 prompt + 26 new tokens) cache and full window see the same tokens */
    int agree = 0;
    while (agree < 50 && a_ids[agree] == c_ids[agree]) agree++;
    CHECK(agree >= 26, "cached and uncached generation agree on the first %d tokens (want >= 26)", agree);
    char *d = generate(&lm, 1, "ROMEO:", 50, 8, s, NULL, NULL);
    CHECK(strcmp(a, d), "another seed, other text");
    free(a), free(b), free(cfull), free(d);

    /* prompts: unknown characters are named, invalid UTF-8 refused, empty starts at '\n',
     * a prompt longer than the context keeps its last tokens */
    int32_t *ids;
    size_t n;
    CHECK_ERR(textgen_encode_prompt(&lm, "caf\xc3\xa9", 5, &ids, &n), MM_ERR_ARG, "'\xc3\xa9' (U+00E9");
    CHECK_ERR(textgen_encode_prompt(&lm, "ab\xc3", 3, &ids, &n), MM_ERR_ARG, "not valid UTF-8");
    CHECK_OK(textgen_encode_prompt(&lm, "", 0, &ids, &n));
    CHECK(n == 1 && ids[0] == mm_tokenizer_lookup(lm.tok, "\n", 1), "empty prompt -> newline");
    free(ids);
    char long_prompt[200];
    memset(long_prompt, 'a', sizeof long_prompt - 1);
    long_prompt[sizeof long_prompt - 1] = 0;
    char *e = generate(&lm, 1, long_prompt, 40, 1, s, NULL, NULL);
    CHECK(valid_utf8(e, strlen(e)), "long prompt generates");
    free(e);
    double loss = 0, acc = 0;
    long windows = 0;
    char *text;
    size_t len;
    CHECK_OK(textgen_read_text(data, 50000, &text, &len));
    CHECK_OK(textgen_evaluate(&lm, text, len, 0.1f, 0, 32, &loss, &acc, &windows));
    CHECK(fabs(loss - r.last.val_loss) < 1e-4 && windows == r.val_windows, "textgen_evaluate %.5f = training's %.5f", loss,
          r.last.val_loss);
    free(text);

    /* corrupt metadata: the model file names what is wrong */
    const char *bad = tu_tmp_path("bad.mm");
    textgen_lm other;
    CHECK_OK(mm_model_set_metadata(lm.model, TEXTGEN_META_TOKENIZER, "{\"type\":\"wordpiece\"}"));
    CHECK_OK(mm_model_save(lm.model, bad, 0));
    CHECK_ERR(textgen_load(bad, &other), MM_ERR_FORMAT, "bad tokenizer metadata");
    CHECK_OK(mm_model_set_metadata(lm.model, TEXTGEN_META_TOKENIZER, "{\"type\":\"char\",\"chars\":"));
    CHECK_OK(mm_model_save(lm.model, bad, 0));
    CHECK_ERR(textgen_load(bad, &other), MM_ERR_FORMAT, "tokenizer");
    /* a tokenizer of another size */
    mm_tokenizer *t3;
    char *tj;
    CHECK_OK(mm_tokenizer_char_build("abc", 3, 0, &t3));
    CHECK_OK(mm_tokenizer_to_json(t3, &tj));
    CHECK_OK(mm_model_set_metadata(lm.model, TEXTGEN_META_TOKENIZER, tj));
    CHECK_OK(mm_model_save(lm.model, bad, 0));
    CHECK_ERR(textgen_load(bad, &other), MM_ERR_FORMAT, "vocabulary size");
    free(tj);
    /* a char vocabulary without a newline cannot start from an empty prompt */
    lm.tok = (mm_tokenizer_free(lm.tok), t3);
    CHECK_ERR(textgen_encode_prompt(&lm, "", 0, &ids, &n), MM_ERR_ARG, "no newline");
    CHECK_OK(mm_model_set_metadata(lm.model, TEXTGEN_META_TOKENIZER, NULL));
    CHECK_OK(mm_model_save(lm.model, bad, 0));
    CHECK_ERR(textgen_load(bad, &other), MM_ERR_FORMAT, "no tokenizer");
    CHECK_OK(mm_model_set_metadata(lm.model, TEXTGEN_META_TOKENIZER, "{}"));
    CHECK_OK(mm_model_set_metadata(lm.model, TEXTGEN_META_CONFIG, "{\"format\":1,\"arch\":\"gpt\"}"));
    CHECK_OK(mm_model_save(lm.model, bad, 0));
    CHECK_ERR(textgen_load(bad, &other), MM_ERR_FORMAT, "tokenizer");
    CHECK_ERR(textgen_load(tu_tmp_path("missing.mm"), &other), MM_ERR_IO, "missing.mm");
    textgen_lm_free(&lm);
}

static int stop_after_first(const textgen_eval_info *e, void *user) {
    (void)e;
    return ++*(int *)user >= 1;
}

/* Two intervals in one run equal one interval, a stop, and a resumed second one. */
static void test_resume(const char *dir) {
    char data[4096];
    snprintf(data, sizeof data, "%s/tinyshakespeare/input.txt", dir);
    const char *a = tu_tmp_path("a.mm"), *b = tu_tmp_path("b.mm");
    textgen_train_config c = small_config(data, a);
    c.limit = 20000;
    c.steps = 40;
    c.eval_every = 20;
    c.model.layers = 1;
    c.model.dropout = 0.1f;
    textgen_train_report ra, rb1, rb2;
    CHECK_OK(textgen_train(&c, &ra));
    c.out_path = b;
    int evals = 0;
    c.on_eval = stop_after_first;
    c.user = &evals;
    CHECK_OK(textgen_train(&c, &rb1));
    CHECK(rb1.stopped && rb1.steps_done == 20, "stopped after the first interval (%ld steps)", rb1.steps_done);
    c.on_eval = NULL;
    c.resume = 1;
    c.seed = 99;        /* ignored: the file keeps its own */
    c.model.width = 64; /* ignored */
    CHECK_OK(textgen_train(&c, &rb2));
    CHECK(rb2.resumed && rb2.initial_step == 20 && rb2.steps_done == 40, "resumed at %ld, now %ld", rb2.initial_step,
          rb2.steps_done);
    CHECK(ra.last.val_loss == rb2.last.val_loss && ra.last.train_loss == rb2.last.train_loss,
          "resumed run %.7f/%.7f equals the uninterrupted one %.7f/%.7f", rb2.last.val_loss, rb2.last.train_loss,
          ra.last.val_loss, ra.last.train_loss);
    textgen_train_report rb3;
    CHECK_OK(textgen_train(&c, &rb3));
    CHECK(rb3.steps_done == 40 && !rb3.has_eval, "nothing left to train");
    /* LSTM models train and generate (without the cache, which cannot run them) */
    c = small_config(data, tu_tmp_path("lstm.mm"));
    c.limit = 20000;
    c.steps = 10;
    c.eval_every = 10;
    c.model.arch = TEXTGEN_LSTM;
    c.model.layers = 2;
    c.model.width = 16;
    c.model.context = 16;
    c.model.heads = 0;
    textgen_train_report rl;
    CHECK_OK(textgen_train(&c, &rl));
    textgen_lm lm;
    CHECK_OK(textgen_load(c.out_path, &lm));
    if (lm.model) {
        textgen_generator *g;
        CHECK_OK(textgen_generator_new(&lm, 1, &g));
        CHECK(!textgen_generator_cached(g) && *textgen_generator_note(g), "LSTM falls back to the full window: %s",
              textgen_generator_note(g));
        textgen_generator_free(g);
        char *t = generate(&lm, 0, "First", 40, 1, (textgen_sampling){.temperature = 1}, NULL, NULL);
        CHECK(valid_utf8(t, strlen(t)), "LSTM output is UTF-8");
        free(t);
    }
    textgen_lm_free(&lm);
}

static int is_cjk(uint32_t cp) { return (cp >= 0x4E00 && cp <= 0x9FFF) || (cp >= 0x3400 && cp <= 0x4DBF); }

static void test_chinese(const char *dir) {
    char data[4096];
    snprintf(data, sizeof data, "%s/sentiment-zh/ChnSentiCorp_htl_all.csv", dir);
    textgen_train_config c = small_config(data, tu_tmp_path("zh.mm"));
    c.csv_column = "review";
    c.limit = 60000;
    c.steps = 300;
    c.eval_every = 100;
    c.batch_size = 16;
    textgen_train_report r;
    double t0 = now_seconds();
    CHECK_OK(textgen_train(&c, &r));
    printf("char GPT on 60 KB of ChnSentiCorp reviews: vocabulary %d, val_loss %.4f, %.1fs\n", r.vocab_size, r.last.val_loss,
           now_seconds() - t0);
    textgen_lm lm;
    CHECK_OK(textgen_load(c.out_path, &lm));
    if (!lm.model) return;
    char *text = generate(&lm, 1, "\xe9\x85\x92\xe5\xba\x97", 60, 3, (textgen_sampling){.temperature = 0.8f, .top_k = 40}, NULL,
                          NULL); /* 酒店 */
    size_t len = strlen(text), cps = 0, cjk = 0;
    CHECK(valid_utf8(text, len), "Chinese output is valid UTF-8");
    for (size_t i = 0; i < len;) {
        uint32_t cp;
        int k = mm_utf8_decode(text + i, len - i, &cp);
        if (k <= 0) break;
        cps++;
        cjk += is_cjk(cp);
        i += (size_t)k;
    }
    printf("  generated: \"%s\" (%zu of %zu code points CJK)\n", text, cjk, cps);
    CHECK(cps >= 50 && cjk * 2 > cps, "mostly CJK: %zu of %zu", cjk, cps);
    free(text);
    textgen_lm_free(&lm);
}

int main(void) {
    mm_set_threads(1);
    test_meta();
    test_windows();
    test_csv_and_text();
    test_sampling();
    const char *dir = tu_data_dir();
    if (dir) {
        test_shakespeare(dir);
        test_resume(dir);
        test_chinese(dir);
    }
    return tu_finish();
}
