/* Tokenizers: UTF-8 checks, char tokenizer, GPT-2 byte-level BPE against published test vectors,
 * BPE training, JSON round trips, streaming output and every error path. */
#include "mediaml_text.h"
#include "testutil.h"

#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static char *read_all(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *b = malloc((size_t)n + 1);
    if (b && fread(b, 1, (size_t)n, f) != (size_t)n) {
        free(b);
        b = NULL;
    }
    fclose(f);
    if (b) b[n] = 0;
    if (len) *len = (size_t)n;
    return b;
}

static void write_str(const char *path, const char *s) {
    FILE *f = fopen(path, "wb");
    if (!f) return;
    fputs(s, f);
    fclose(f);
}

static int same_ids(const int32_t *a, size_t na, const int32_t *b, size_t nb) {
    return na == nb && (na == 0 || memcmp(a, b, na * sizeof *a) == 0);
}

/* Encodes then decodes; checks the bytes come back exactly. Returns the id count. */
static size_t round_trip(const mm_tokenizer *tok, const char *text, size_t len, const char *what) {
    int32_t *ids = NULL;
    size_t n = 0;
    mm_status st = mm_tokenizer_encode(tok, text, len, &ids, &n);
    CHECK(st == MM_OK, "%s: encode: %s", what, mm_errmsg());
    if (st != MM_OK) return 0;
    char *back = NULL;
    size_t blen = 0;
    st = mm_tokenizer_decode(tok, ids, n, &back, &blen);
    CHECK(st == MM_OK, "%s: decode: %s", what, mm_errmsg());
    CHECK(st == MM_OK && blen == len && memcmp(back, text, len) == 0,
          "%s: round trip differs (%zu vs %zu bytes)", what, blen, len);
    free(ids);
    free(back);
    return n;
}

/* ------------------------------------------------------------------ UTF-8 */

static void test_utf8(void) {
    size_t off = 99;
    const char *ok = "plain ASCII, caf\xC3\xA9, \xE4\xB8\xAD\xE6\x96\x87, \xF0\x9F\x98\x80";
    CHECK_OK(mm_utf8_validate(ok, strlen(ok), &off));
    CHECK(off == strlen(ok), "bad_offset for valid text = %zu", off);
    CHECK_OK(mm_utf8_validate("", 0, NULL));
    CHECK_OK(mm_utf8_validate("a\0b", 3, NULL)); /* NUL is a valid character */
    struct {
        const char *s;
        size_t len, off;
        const char *needle;
    } bad[] = {
        {"ab\x80", 3, 2, "continuation"},
        {"x\xC0\x80", 3, 1, "overlong"},
        {"x\xC1\xBF", 3, 1, "overlong"},
        {"\xE0\x80\x80", 3, 0, "overlong"},
        {"\xE0\x9F\xBF", 3, 0, "overlong"},
        {"\xF0\x8F\xBF\xBF", 4, 0, "overlong"},
        {"ok\xED\xA0\x80", 5, 2, "surrogate"},
        {"\xED\xBF\xBF", 3, 0, "surrogate"},
        {"\xF4\x90\x80\x80", 4, 0, "above U+10FFFF"},
        {"\xF5\x80\x80\x80", 4, 0, "above U+10FFFF"},
        {"\xFF", 1, 0, "invalid byte"},
        {"abc\xE4\xB8", 5, 3, "truncated"},
        {"\xE4\xB8" "A", 3, 0, "truncated"},
        {"\xF0\x9F\x98", 3, 0, "truncated"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        off = 99;
        mm_status st = mm_utf8_validate(bad[i].s, bad[i].len, &off);
        CHECK(st == MM_ERR_ARG, "case %zu: status %d", i, st);
        CHECK(off == bad[i].off, "case %zu: offset %zu, expected %zu", i, off, bad[i].off);
        CHECK(tu_contains(mm_errmsg(), bad[i].needle), "case %zu: message '%s' lacks '%s'", i,
              mm_errmsg(), bad[i].needle);
        char want[64];
        snprintf(want, sizeof want, "offset %zu", bad[i].off);
        CHECK(tu_contains(mm_errmsg(), want), "case %zu: message '%s' lacks '%s'", i, mm_errmsg(),
              want);
    }
    /* every scalar value round-trips through encode/decode; surrogates and > U+10FFFF fail */
    int fails = 0;
    for (uint32_t cp = 0; cp <= 0x10FFFF; cp++) {
        char b[4];
        int n = mm_utf8_encode(cp, b);
        if (cp >= 0xD800 && cp <= 0xDFFF) {
            fails += n != 0;
            continue;
        }
        uint32_t back = 0xFFFFFFFF;
        int expect = cp < 0x80 ? 1 : cp < 0x800 ? 2 : cp < 0x10000 ? 3 : 4;
        if (n != expect || mm_utf8_decode(b, (size_t)n, &back) != n || back != cp ||
            mm_utf8_validate(b, (size_t)n, NULL) != MM_OK || mm_utf8_decode(b, (size_t)n - 1, &back) != 0)
            fails++;
    }
    CHECK(fails == 0, "%d code points failed the encode/decode round trip", fails);
    char b[4];
    CHECK(mm_utf8_encode(0x110000, b) == 0, "encode above U+10FFFF");
    uint32_t cp;
    CHECK(mm_utf8_decode("\xC0\x80", 2, &cp) == 0, "decode overlong");
    CHECK(mm_utf8_decode("", 0, &cp) == 0, "decode empty");
}

/* ------------------------------------------------------------------ char tokenizer */

static void test_char(void) {
    const char *corpus = "hello, world\n\xE4\xBD\xA0\xE5\xA5\xBD";   /* "你好" */
    mm_tokenizer *tok = NULL;
    CHECK_OK(mm_tokenizer_char_build(corpus, strlen(corpus), 0, &tok));
    if (!tok) return;
    /* distinct: \n space , d e h l o r w 你 好 -> 12, sorted by code point */
    CHECK(mm_tokenizer_vocab_size(tok) == 12, "vocab %d", mm_tokenizer_vocab_size(tok));
    CHECK(strcmp(mm_tokenizer_kind(tok), "char") == 0, "kind");
    CHECK(mm_tokenizer_lookup(tok, "\n", 1) == 0 && mm_tokenizer_lookup(tok, " ", 1) == 1 &&
              mm_tokenizer_lookup(tok, "\xE5\xA5\xBD", 3) == 11 &&
              mm_tokenizer_lookup(tok, "\xE4\xBD\xA0", 3) == 10,
          "ids not in code point order");
    int32_t *ids;
    size_t n;
    CHECK_OK(mm_tokenizer_encode(tok, "\xE4\xBD\xA0 hello", 9, &ids, &n));
    CHECK(n == 7 && ids[0] == 10 && ids[1] == 1, "encode: n=%zu", n);
    free(ids);
    round_trip(tok, corpus, strlen(corpus), "char corpus");
    CHECK_OK(mm_tokenizer_encode(tok, "", 0, &ids, &n));
    CHECK(n == 0 && ids != NULL, "empty encode");
    free(ids);

    /* unseen character: error naming it and its offset */
    CHECK_ERR(mm_tokenizer_encode(tok, "hello \xE4\xB8\x96", 9, &ids, &n), MM_ERR_ARG,
              "'\xE4\xB8\x96' (U+4E16) at byte offset 6");
    CHECK_ERR(mm_tokenizer_encode(tok, "hex", 3, &ids, &n), MM_ERR_ARG, "U+0078");
    /* invalid UTF-8 input */
    CHECK_ERR(mm_tokenizer_encode(tok, "he\xC3(", 4, &ids, &n), MM_ERR_ARG, "byte offset 2");
    /* decode: out of range ids */
    int32_t badids[] = {0, 12};
    char *text;
    size_t len;
    CHECK_ERR(mm_tokenizer_decode(tok, badids, 2, &text, &len), MM_ERR_ARG,
              "token id 12 at position 1 is out of range");
    badids[1] = -1;
    CHECK_ERR(mm_tokenizer_decode(tok, badids, 2, &text, &len), MM_ERR_ARG, "token id -1");

    /* JSON round trip */
    char *json = NULL;
    CHECK_OK(mm_tokenizer_to_json(tok, &json));
    mm_tokenizer *tok2 = NULL;
    if (json) CHECK_OK(mm_tokenizer_from_json(json, &tok2));
    if (tok2) {
        int32_t *a, *b;
        size_t na, nb;
        CHECK_OK(mm_tokenizer_encode(tok, corpus, strlen(corpus), &a, &na));
        CHECK_OK(mm_tokenizer_encode(tok2, corpus, strlen(corpus), &b, &nb));
        CHECK(same_ids(a, na, b, nb), "char JSON round trip changes the encoding");
        CHECK(mm_tokenizer_vocab_size(tok2) == 12 && mm_tokenizer_unk_id(tok2) == -1, "tok2");
        free(a);
        free(b);
    }
    free(json);
    mm_tokenizer_free(tok2);
    mm_tokenizer_free(tok);

    /* with <unk>: unseen characters map to it, decode gives U+FFFD */
    CHECK_OK(mm_tokenizer_char_build("abc", 3, 1, &tok));
    if (tok) {
        CHECK(mm_tokenizer_vocab_size(tok) == 4 && mm_tokenizer_unk_id(tok) == 3, "unk vocab");
        CHECK_OK(mm_tokenizer_encode(tok, "a\xE4\xB8\x96z", 5, &ids, &n));
        CHECK(n == 3 && ids[0] == 0 && ids[1] == 3 && ids[2] == 3, "unk encode");
        CHECK_OK(mm_tokenizer_decode(tok, ids, n, &text, &len));
        CHECK(len == 7 && memcmp(text, "a\xEF\xBF\xBD\xEF\xBF\xBD", 7) == 0, "unk decode");
        free(text);
        free(ids);
        CHECK_OK(mm_tokenizer_to_json(tok, &json));
        CHECK(tu_contains(json, "\"unk\":true"), "json %s", json);
        CHECK_OK(mm_tokenizer_from_json(json, &tok2));
        CHECK(mm_tokenizer_unk_id(tok2) == 3, "unk lost in JSON");
        free(json);
        mm_tokenizer_free(tok2);
        mm_tokenizer_free(tok);
    }
    /* U+0000 in the corpus survives the JSON form */
    CHECK_OK(mm_tokenizer_char_build("a\0b", 3, 0, &tok));
    if (tok) {
        CHECK_OK(mm_tokenizer_to_json(tok, &json));
        CHECK_OK(mm_tokenizer_from_json(json, &tok2));
        CHECK(mm_tokenizer_vocab_size(tok2) == 3 && mm_tokenizer_lookup(tok2, "\0", 1) == 0,
              "NUL lost in JSON");
        free(json);
        mm_tokenizer_free(tok2);
        mm_tokenizer_free(tok);
    }
    CHECK_ERR(mm_tokenizer_char_build("ab\xED\xA0\x80", 5, 0, &tok), MM_ERR_ARG, "byte offset 2");
    CHECK_ERR(mm_tokenizer_char_build("", 0, 0, &tok), MM_ERR_ARG, "empty");
}

/* ------------------------------------------------------------------ streaming */

static void test_stream(const mm_tokenizer *tok, const char *text, size_t len, const char *what) {
    int32_t *ids;
    size_t n;
    if (mm_tokenizer_encode(tok, text, len, &ids, &n) != MM_OK) {
        CHECK(0, "%s: %s", what, mm_errmsg());
        return;
    }
    mm_token_stream *s;
    CHECK_OK(mm_token_stream_new(tok, &s));
    char *out = malloc(len + 16);
    size_t o = 0;
    int valid = 1, split = 0;
    for (size_t i = 0; i < n; i++) {
        const char *t;
        size_t tl, bl;
        const char *bytes;
        mm_tokenizer_token_bytes(tok, ids[i], &bytes, &bl);
        if (mm_utf8_validate(bytes, bl, NULL) != MM_OK) split++;
        CHECK_OK(mm_token_stream_push(s, ids[i], &t, &tl));
        if (mm_utf8_validate(t, tl, NULL) != MM_OK) valid = 0;
        if (o + tl <= len) memcpy(out + o, t, tl);
        o += tl;
    }
    const char *t;
    size_t tl;
    CHECK_OK(mm_token_stream_flush(s, &t, &tl));
    CHECK(tl == 0, "%s: flush left %zu bytes", what, tl);
    CHECK(valid, "%s: a streamed chunk was not valid UTF-8", what);
    CHECK(o == len && memcmp(out, text, len) == 0, "%s: streamed text differs", what);
    printf("  stream %s: %zu tokens, %d of them not valid UTF-8 alone\n", what, n, split);
    mm_token_stream_free(s);
    free(out);
    free(ids);
}

/* ------------------------------------------------------------------ GPT-2 */

static void test_gpt2_vectors(const mm_tokenizer *tok, const char *gdir) {
    char path[8192];
    /* llama.cpp: 46 strings separated by "\n__ggml_vocab_test__\n", one line of ids each */
    snprintf(path, sizeof path, "%s/test-vectors/llama.cpp.ggml-vocab-gpt-2.gguf.inp", gdir);
    size_t inlen;
    char *inp = read_all(path, &inlen);
    snprintf(path, sizeof path, "%s/test-vectors/llama.cpp.ggml-vocab-gpt-2.gguf.out", gdir);
    char *outp = read_all(path, NULL);
    CHECK(inp && outp, "cannot read the llama.cpp vectors");
    int cases = 0, exact = 0;
    if (inp && outp) {
        const char *sep = "\n__ggml_vocab_test__\n";
        char *p = inp, *line = outp;
        char *q;
        while ((q = strstr(p, sep)) != NULL && *line) {
            size_t len = (size_t)(q - p);
            char *eol = strchr(line, '\n');
            if (eol) *eol = 0;
            int32_t want[512];
            size_t nw = 0;
            for (char *s = line, *e; nw < 512; s = e) {
                long v = strtol(s, &e, 10);
                if (e == s) break;
                want[nw++] = (int32_t)v;
            }
            int32_t *ids;
            size_t n;
            mm_status st = mm_tokenizer_encode(tok, p, len, &ids, &n);
            int ok = st == MM_OK && same_ids(ids, n, want, nw);
            CHECK(ok, "llama.cpp case %d (\"%.*s\"): ids differ (%zu vs %zu)", cases, (int)len, p,
                  st == MM_OK ? n : 0, nw);
            exact += ok;
            if (st == MM_OK) {
                char *back;
                size_t bl;
                CHECK_OK(mm_tokenizer_decode(tok, ids, n, &back, &bl));
                CHECK(bl == len && memcmp(back, p, len) == 0, "case %d: decode differs", cases);
                free(back);
                free(ids);
            }
            cases++;
            p = q + strlen(sep);
            line = eol ? eol + 1 : line + strlen(line);
        }
    }
    CHECK(cases == 46, "read %d llama.cpp cases, expected 46", cases);
    printf("  llama.cpp GPT-2 vectors: %d/%d exact\n", exact, cases);
    free(inp);
    free(outp);

    /* swift-transformers: one French paragraph, 221 ids */
    snprintf(path, sizeof path, "%s/test-vectors/swift-transformers.gpt2_encoded_tokens.json", gdir);
    char *js = read_all(path, NULL);
    cJSON *root = js ? cJSON_Parse(js) : NULL;
    const cJSON *text = cJSON_GetObjectItemCaseSensitive(root, "text");
    const cJSON *tids = cJSON_GetObjectItemCaseSensitive(root, "token_ids");
    CHECK(cJSON_IsString(text) && cJSON_IsArray(tids), "cannot read the swift-transformers vector");
    if (cJSON_IsString(text) && cJSON_IsArray(tids)) {
        int nw = cJSON_GetArraySize(tids);
        int32_t *want = malloc((size_t)nw * sizeof *want);
        int k = 0;
        const cJSON *it;
        cJSON_ArrayForEach(it, tids) want[k++] = (int32_t)it->valuedouble;
        int32_t *ids;
        size_t n;
        CHECK_OK(mm_tokenizer_encode(tok, text->valuestring, strlen(text->valuestring), &ids, &n));
        CHECK(nw == 221 && same_ids(ids, n, want, (size_t)nw),
              "swift-transformers vector: %zu ids, expected %d", n, nw);
        round_trip(tok, text->valuestring, strlen(text->valuestring), "swift-transformers");
        free(ids);
        free(want);
    }
    cJSON_Delete(root);
    free(js);

    int32_t *ids;
    size_t n;
    CHECK_OK(mm_tokenizer_encode(tok, "hello world", 11, &ids, &n));
    CHECK(n == 2 && ids[0] == 31373 && ids[1] == 995, "hello world");
    free(ids);
    /* "<|endoftext|>" is a special token: decodable, looked up, never produced by encode */
    CHECK(mm_tokenizer_lookup(tok, "<|endoftext|>", 13) == 50256, "eot lookup");
    int32_t eot = 50256;
    char *txt;
    size_t tl;
    CHECK_OK(mm_tokenizer_decode(tok, &eot, 1, &txt, &tl));
    CHECK(tl == 13 && memcmp(txt, "<|endoftext|>", 13) == 0, "eot decode");
    free(txt);
    CHECK_OK(mm_tokenizer_encode(tok, "<|endoftext|>", 13, &ids, &n));
    CHECK(n > 1, "encode produced the special token");
    free(ids);
    /* errors: invalid UTF-8 with its offset, ids out of range */
    CHECK_ERR(mm_tokenizer_encode(tok, "Hello \xE4\xB8", 8, &ids, &n), MM_ERR_ARG,
              "invalid UTF-8 at byte offset 6");
    int32_t bad[] = {15496, 50257};
    CHECK_ERR(mm_tokenizer_decode(tok, bad, 2, &txt, &tl), MM_ERR_ARG,
              "token id 50257 at position 1 is out of range (vocabulary size 50257)");
    /* a byte token alone is half a character: the stream holds it, flush turns it into U+FFFD */
    mm_token_stream *s;
    CHECK_OK(mm_token_stream_new(tok, &s));
    const char *out;
    size_t ol;
    int32_t e4 = mm_tokenizer_lookup(tok, "\xE4", 1), b8 = mm_tokenizer_lookup(tok, "\xB8", 1);
    int32_t a = mm_tokenizer_lookup(tok, "a", 1);
    CHECK(e4 >= 0 && b8 >= 0 && a >= 0, "byte tokens");
    CHECK_OK(mm_token_stream_push(s, a, &out, &ol));
    CHECK(ol == 1 && out[0] == 'a', "stream a");
    CHECK_OK(mm_token_stream_push(s, e4, &out, &ol));
    CHECK(ol == 0, "stream held back 0xE4");
    CHECK_OK(mm_token_stream_push(s, b8, &out, &ol));
    CHECK(ol == 0, "stream held back 0xE4 0xB8");
    CHECK_OK(mm_token_stream_push(s, a, &out, &ol)); /* breaks the sequence */
    CHECK(ol == 4 && memcmp(out, "\xEF\xBF\xBD" "a", 4) == 0, "stream replacement (%zu)", ol);
    CHECK_OK(mm_token_stream_push(s, e4, &out, &ol));
    CHECK_OK(mm_token_stream_flush(s, &out, &ol));
    CHECK(ol == 3 && memcmp(out, "\xEF\xBF\xBD", 3) == 0, "flush replacement");
    CHECK_ERR(mm_token_stream_push(s, 60000, &out, &ol), MM_ERR_ARG, "out of range");
    mm_token_stream_free(s);
}

static void test_gpt2(const char *data) {
    char gdir[4096];
    snprintf(gdir, sizeof gdir, "%s/gpt2-tokenizer", data);
    mm_tokenizer *tok = NULL;
    double t0 = now_s();
    CHECK_OK(mm_tokenizer_gpt2_load(gdir, &tok));
    double tload = now_s() - t0;
    if (!tok) return;
    CHECK(mm_tokenizer_vocab_size(tok) == 50257, "vocab %d", mm_tokenizer_vocab_size(tok));
    printf("  gpt2 load: %.3f s\n", tload);
    test_gpt2_vectors(tok, gdir);

    /* tiny Shakespeare: timing and exact round trip */
    char path[4096];
    snprintf(path, sizeof path, "%s/tinyshakespeare/input.txt", data);
    size_t slen;
    char *shakes = read_all(path, &slen);
    CHECK(shakes != NULL, "cannot read %s", path);
    int32_t *ids = NULL;
    size_t n = 0;
    if (shakes) {
        t0 = now_s();
        CHECK_OK(mm_tokenizer_encode(tok, shakes, slen, &ids, &n));
        double tenc = now_s() - t0;
        char *back = NULL;
        size_t bl = 0;
        t0 = now_s();
        CHECK_OK(mm_tokenizer_decode(tok, ids, n, &back, &bl));
        double tdec = now_s() - t0;
        CHECK(bl == slen && memcmp(back, shakes, slen) == 0, "shakespeare round trip");
        printf("  gpt2 tiny shakespeare: %zu bytes -> %zu tokens, encode %.3f s, decode %.4f s\n",
               slen, n, tenc, tdec);
        CHECK(tenc < 1.0, "GPT-2 encode of tiny Shakespeare took %.2f s", tenc);
        free(back);
    }

    /* JSON round trip: same encoding, same vocabulary */
    char *json = NULL;
    t0 = now_s();
    CHECK_OK(mm_tokenizer_to_json(tok, &json));
    mm_tokenizer *tok2 = NULL;
    if (json) CHECK_OK(mm_tokenizer_from_json(json, &tok2));
    printf("  gpt2 JSON: %zu bytes, to+from %.3f s\n", json ? strlen(json) : 0, now_s() - t0);
    if (tok2 && shakes) {
        CHECK(mm_tokenizer_vocab_size(tok2) == 50257, "vocab after JSON");
        CHECK(mm_tokenizer_lookup(tok2, "<|endoftext|>", 13) == 50256, "eot after JSON");
        size_t part = slen < 200000 ? slen : 200000;
        while (part < slen && ((unsigned char)shakes[part] & 0xC0) == 0x80) part++;
        int32_t *ids2;
        size_t n2;
        CHECK_OK(mm_tokenizer_encode(tok2, shakes, part, &ids2, &n2));
        int32_t *ids1;
        size_t n1;
        CHECK_OK(mm_tokenizer_encode(tok, shakes, part, &ids1, &n1));
        CHECK(same_ids(ids1, n1, ids2, n2), "GPT-2 JSON round trip changes the encoding");
        for (int32_t id = 0; id < 50257; id += 97) {
            const char *b1, *b2;
            size_t l1, l2;
            mm_tokenizer_token_bytes(tok, id, &b1, &l1);
            mm_tokenizer_token_bytes(tok2, id, &b2, &l2);
            if (l1 != l2 || memcmp(b1, b2, l1) != 0) {
                CHECK(0, "token %d differs after JSON", (int)id);
                break;
            }
        }
        free(ids1);
        free(ids2);
    }
    free(json);
    mm_tokenizer_free(tok2);

    /* Chinese (first 200 lines of ChnSentiCorp): GPT-2 and char round trips, one id per char */
    snprintf(path, sizeof path, "%s/sentiment-zh/ChnSentiCorp_htl_all.csv", data);
    size_t zlen;
    char *zh = read_all(path, &zlen);
    CHECK(zh != NULL, "cannot read %s", path);
    if (zh) {
        size_t cut = 0;
        for (int lines = 0; cut < zlen && lines < 200; cut++)
            if (zh[cut] == '\n') lines++;
        zlen = cut;
        CHECK_OK(mm_utf8_validate(zh, zlen, NULL));
        size_t ngpt = round_trip(tok, zh, zlen, "gpt2 chinese");
        test_stream(tok, zh, zlen, "gpt2 chinese");
        mm_tokenizer *ct = NULL;
        CHECK_OK(mm_tokenizer_char_build(zh, zlen, 0, &ct));
        if (ct) {
            size_t ncp = 0;
            for (size_t i = 0; i < zlen; i++) ncp += ((unsigned char)zh[i] & 0xC0) != 0x80;
            size_t nchar = round_trip(ct, zh, zlen, "char chinese");
            CHECK(nchar == ncp, "char tokenizer: %zu ids for %zu code points", nchar, ncp);
            int32_t *ci;
            size_t cn;
            CHECK_OK(mm_tokenizer_encode(ct, "\xE6\x88\xBF\xE9\x97\xB4", 6, &ci, &cn)); /* 房间 */
            CHECK(cn == 2, "房间 -> %zu ids", cn);
            free(ci);
            printf("  chinese %zu bytes: %zu code points, gpt2 %zu tokens, char vocab %d\n", zlen,
                   ncp, ngpt, mm_tokenizer_vocab_size(ct));
            test_stream(ct, zh, zlen, "char chinese");
        }
        mm_tokenizer_free(ct);
    }
    if (shakes) test_stream(tok, shakes, slen < 50000 ? slen : 50000, "gpt2 shakespeare");

    /* long runs: one huge whitespace piece and one huge letter piece stay fast and exact */
    size_t big = 200000;
    char *run = malloc(big + 2);
    memset(run, ' ', big);
    run[big] = 'x';
    t0 = now_s();
    round_trip(tok, run, big + 1, "200k spaces");
    memset(run, 'a', big);
    round_trip(tok, run, big, "200k letters");
    double trun = now_s() - t0;
    CHECK(trun < 1.0, "long runs took %.2f s", trun);
    free(run);

    free(ids);
    free(shakes);
    free(zh);
    mm_tokenizer_free(tok);
}

/* ------------------------------------------------------------------ bad GPT-2 files */

/* Writes a small GPT-2-style vocabulary: the 256 byte tokens in GPT-2's alphabet, then
 * "Ġt" (256), "he" (257), extra (258) if given. */
static void write_small_vocab(const char *dir, const char *extra) {
    cJSON *o = cJSON_CreateObject();
    for (int b = 0; b < 256; b++) {
        /* GPT-2 alphabet */
        int cp;
        if ((b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF)) cp = b;
        else if (b <= 0x20) cp = 256 + b;
        else if (b >= 0x7F && b <= 0xA0) cp = 256 + 33 + (b - 0x7F);
        else cp = 256 + 67;
        char s[8];
        s[mm_utf8_encode((uint32_t)cp, s)] = 0;
        cJSON_AddNumberToObject(o, s, b);
    }
    cJSON_AddNumberToObject(o, "\xC4\xA0t", 256);
    cJSON_AddNumberToObject(o, "he", 257);
    if (extra) cJSON_AddNumberToObject(o, extra, 258);
    char *s = cJSON_PrintUnformatted(o);
    char path[4096];
    snprintf(path, sizeof path, "%s/encoder.json", dir);
    write_str(path, s);
    free(s);
    cJSON_Delete(o);
}

static void write_merges(const char *dir, const char *text) {
    char path[4096];
    snprintf(path, sizeof path, "%s/vocab.bpe", dir);
    write_str(path, text);
}

static void test_bad_files(void) {
    char dir[] = "/tmp/mm_tok_XXXXXX";
    if (!mkdtemp(dir)) {
        CHECK(0, "mkdtemp failed");
        return;
    }
    mm_tokenizer *tok = NULL;
    char path[4096];
    CHECK_ERR(mm_tokenizer_gpt2_load("/nonexistent/gpt2", &tok), MM_ERR_IO,
              "no encoder.json or vocab.json in /nonexistent/gpt2");
    write_small_vocab(dir, NULL);
    CHECK_ERR(mm_tokenizer_gpt2_load(dir, &tok), MM_ERR_IO, "no vocab.bpe or merges.txt");

    /* a good small tokenizer, with the #version header and CRLF line ends */
    write_merges(dir, "#version: 0.2\r\n\xC4\xA0 t\r\nh e\r\n");
    CHECK_OK(mm_tokenizer_gpt2_load(dir, &tok));
    if (tok) {
        int32_t *ids;
        size_t n;
        CHECK_OK(mm_tokenizer_encode(tok, "he the t", 8, &ids, &n));
        /* "he" " the" " t": he=257, Ġt=256 h e -> "Ġt" + "he" = 256 257, Ġt = 256 */
        CHECK(n == 4 && ids[0] == 257 && ids[1] == 256 && ids[2] == 257 && ids[3] == 256,
              "small encode n=%zu", n);
        free(ids);
        mm_tokenizer_free(tok);
        tok = NULL;
    }
    /* a vocab token that no merge makes becomes a special token */
    write_small_vocab(dir, "<|pad|>");
    CHECK_OK(mm_tokenizer_gpt2_load(dir, &tok));
    CHECK(mm_tokenizer_lookup(tok, "<|pad|>", 7) == 258, "extra token is special");
    mm_tokenizer_free(tok);
    tok = NULL;

    write_merges(dir, "#version: 0.2\n\xC4\xA0 t\nh e x\n");
    CHECK_ERR(mm_tokenizer_gpt2_load(dir, &tok), MM_ERR_FORMAT,
              "vocab.bpe line 3: expected two tokens separated by one space");
    write_merges(dir, "#version: 0.2\n\xC4\xA0t\n");
    CHECK_ERR(mm_tokenizer_gpt2_load(dir, &tok), MM_ERR_FORMAT, "line 2: expected two tokens");
    write_merges(dir, "\xC4\xA0 t\nt h\n");
    CHECK_ERR(mm_tokenizer_gpt2_load(dir, &tok), MM_ERR_FORMAT,
              "line 2: merged token \"t h\" is not in the vocabulary");
    write_merges(dir, "\xC4\xA0 t\nhe xyz\n");
    CHECK_ERR(mm_tokenizer_gpt2_load(dir, &tok), MM_ERR_FORMAT,
              "line 2: right token \"xyz\" is not in the vocabulary");
    write_merges(dir, "\xE4\xB8\xAD t\n");
    CHECK_ERR(mm_tokenizer_gpt2_load(dir, &tok), MM_ERR_FORMAT, "outside GPT-2's byte alphabet");
    write_merges(dir, "\xC4\xA0 t\n\xC4\xA0 t\n");
    CHECK_ERR(mm_tokenizer_gpt2_load(dir, &tok), MM_ERR_FORMAT, "duplicates merge 0");

    write_merges(dir, "\xC4\xA0 t\nh e\n");
    snprintf(path, sizeof path, "%s/encoder.json", dir);
    write_str(path, "{\"a\": 0, \"b\": 1,");
    CHECK_ERR(mm_tokenizer_gpt2_load(dir, &tok), MM_ERR_FORMAT, "invalid JSON");
    write_str(path, "[1, 2, 3]");
    CHECK_ERR(mm_tokenizer_gpt2_load(dir, &tok), MM_ERR_FORMAT, "expected a JSON object");
    write_str(path, "{\"a\": \"zero\"}");
    CHECK_ERR(mm_tokenizer_gpt2_load(dir, &tok), MM_ERR_FORMAT, "256");
    /* a vocabulary without the byte tokens */
    {
        cJSON *o = cJSON_CreateObject();
        for (int i = 0; i < 300; i++) {
            char k[16];
            snprintf(k, sizeof k, "tok%d", i);
            cJSON_AddNumberToObject(o, k, i);
        }
        char *s = cJSON_PrintUnformatted(o);
        write_str(path, s);
        free(s);
        cJSON_Delete(o);
        CHECK_ERR(mm_tokenizer_gpt2_load(dir, &tok), MM_ERR_FORMAT, "no token for byte 0x00");
    }
    write_small_vocab(dir, "\xE4\xB8\xAD"); /* 中: not in the byte alphabet */
    CHECK_ERR(mm_tokenizer_gpt2_load(dir, &tok), MM_ERR_FORMAT, "U+4E2D, outside GPT-2's");
    CHECK(tok == NULL, "tok set on failure");

    snprintf(path, sizeof path, "%s/encoder.json", dir);
    unlink(path);
    snprintf(path, sizeof path, "%s/vocab.bpe", dir);
    unlink(path);
    rmdir(dir);
}

/* ------------------------------------------------------------------ training */

static void test_train(const char *data) {
    /* tiny deterministic corpus: most frequent pair first, ties by smaller ids */
    const char *small = "aaab aaab aaab";
    mm_tokenizer *tok = NULL;
    CHECK_OK(mm_tokenizer_bpe_train(small, strlen(small), 3, &tok));
    if (tok) {
        /* pieces: "aaab" x1, " aaab" x2. pairs: aa 6, ab 3, " a" 2 -> merge 0 = (a,a) */
        CHECK(mm_tokenizer_vocab_size(tok) == 259, "vocab %d", mm_tokenizer_vocab_size(tok));
        const char *b;
        size_t l;
        CHECK_OK(mm_tokenizer_token_bytes(tok, 256, &b, &l));
        CHECK(l == 2 && memcmp(b, "aa", 2) == 0, "first merge is 'aa' ('%.*s')", (int)l, b);
        round_trip(tok, small, strlen(small), "small trained");
        mm_tokenizer_free(tok);
    }
    CHECK_OK(mm_tokenizer_bpe_train("ab", 2, 10, &tok));
    CHECK(mm_tokenizer_vocab_size(tok) == 257, "stops when nothing is left to merge (%d)",
          mm_tokenizer_vocab_size(tok));
    mm_tokenizer_free(tok);
    /* zero merges: a plain byte tokenizer, and its JSON round trip */
    CHECK_OK(mm_tokenizer_bpe_train("", 0, 0, &tok));
    if (tok) {
        char *json = NULL;
        mm_tokenizer *tok2 = NULL;
        CHECK_OK(mm_tokenizer_to_json(tok, &json));
        if (json) CHECK_OK(mm_tokenizer_from_json(json, &tok2));
        CHECK(mm_tokenizer_vocab_size(tok2) == 256, "byte tokenizer vocab");
        if (tok2) CHECK(round_trip(tok2, "h\xC3\xA9!", 4, "byte tokenizer") == 4, "one id per byte");
        free(json);
        mm_tokenizer_free(tok2);
        mm_tokenizer_free(tok);
    }
    CHECK_ERR(mm_tokenizer_bpe_train("ab", 2, -1, &tok), MM_ERR_ARG, "merges = -1");
    CHECK_ERR(mm_tokenizer_bpe_train("ab\xF8", 3, 10, &tok), MM_ERR_ARG, "byte offset 2");

    if (!data) return;
    char path[4096];
    snprintf(path, sizeof path, "%s/tinyshakespeare/input.txt", data);
    size_t slen;
    char *shakes = read_all(path, &slen);
    if (!shakes) return;
    double t0 = now_s();
    CHECK_OK(mm_tokenizer_bpe_train(shakes, slen, 500, &tok));
    double ttrain = now_s() - t0;
    if (tok) {
        CHECK(mm_tokenizer_vocab_size(tok) == 756, "vocab %d", mm_tokenizer_vocab_size(tok));
        t0 = now_s();
        size_t n = round_trip(tok, shakes, slen, "trained shakespeare");
        double tenc = now_s() - t0;
        CHECK(n > 0 && n < slen * 2 / 3, "trained BPE: %zu tokens for %zu bytes", n, slen);
        printf("  bpe train 500 merges on %zu bytes: %.3f s; encode+decode %.3f s: %zu tokens "
               "(%.2f bytes/token)\n",
               slen, ttrain, tenc, n, (double)slen / (double)n);
        CHECK(ttrain < 5.0, "training took %.2f s", ttrain);
        /* deterministic: same corpus, same tokenizer */
        size_t part = 100000;
        mm_tokenizer *a = NULL, *b = NULL;
        CHECK_OK(mm_tokenizer_bpe_train(shakes, part, 200, &a));
        CHECK_OK(mm_tokenizer_bpe_train(shakes, part, 200, &b));
        char *ja = NULL, *jb = NULL;
        if (a && b) {
            CHECK_OK(mm_tokenizer_to_json(a, &ja));
            CHECK_OK(mm_tokenizer_to_json(b, &jb));
            CHECK(ja && jb && strcmp(ja, jb) == 0, "training is not deterministic");
        }
        free(ja);
        free(jb);
        mm_tokenizer_free(a);
        mm_tokenizer_free(b);

        /* JSON round trip */
        char *json = NULL;
        CHECK_OK(mm_tokenizer_to_json(tok, &json));
        mm_tokenizer *tok2 = NULL;
        if (json) {
            CHECK(strlen(json) < 10000, "trained JSON is %zu bytes", strlen(json));
            CHECK(!tu_contains(json, "\"bytes\"") && !tu_contains(json, "merge_ids"),
                  "identity tables should be omitted");
            CHECK_OK(mm_tokenizer_from_json(json, &tok2));
        }
        if (tok2) {
            int32_t *i1, *i2;
            size_t n1, n2;
            CHECK_OK(mm_tokenizer_encode(tok, shakes, slen, &i1, &n1));
            CHECK_OK(mm_tokenizer_encode(tok2, shakes, slen, &i2, &n2));
            CHECK(same_ids(i1, n1, i2, n2), "trained JSON round trip changes the encoding");
            free(i1);
            free(i2);
        }
        free(json);
        mm_tokenizer_free(tok2);
        test_stream(tok, shakes, 20000, "trained shakespeare");
        /* non-ASCII text still round-trips through the byte fallback */
        const char *zh = "\xE4\xBD\xA0\xE5\xA5\xBD, world \xF0\x9F\x98\x80!";
        round_trip(tok, zh, strlen(zh), "trained on unseen text");
        mm_tokenizer_free(tok);
    }
    free(shakes);
}

/* ------------------------------------------------------------------ corrupt JSON */

static void test_bad_json(void) {
    mm_tokenizer *tok = NULL;
    struct {
        const char *json, *needle;
    } cases[] = {
        {"not json", "not valid JSON"},
        {"[1,2]", "top level is not an object"},
        {"{}", "missing string field \"type\""},
        {"{\"type\":\"wordpiece\"}", "unknown type \"wordpiece\""},
        {"{\"type\":\"char\"}", "missing string field \"chars\""},
        {"{\"type\":\"char\",\"chars\":\"\"}", "\"chars\" is empty"},
        {"{\"type\":\"char\",\"chars\":\"ba\"}", "strictly increasing"},
        {"{\"type\":\"char\",\"chars\":\"aa\"}", "strictly increasing"},
        {"{\"type\":\"char\",\"chars\":\"ab\",\"unk\":1}", "\"unk\" is not a boolean"},
        {"{\"type\":\"bpe\",\"merges\":[]}", "vocab_size"},
        {"{\"type\":\"bpe\",\"vocab_size\":100,\"merges\":[]}", "vocab_size"},
        {"{\"type\":\"bpe\",\"vocab_size\":256}", "missing \"merges\""},
        {"{\"type\":\"bpe\",\"vocab_size\":257,\"merges\":[1]}", "odd number"},
        {"{\"type\":\"bpe\",\"vocab_size\":257,\"merges\":[1,999]}", "\"merges\"[1] is not a token id in [0, 257)"},
        {"{\"type\":\"bpe\",\"vocab_size\":257,\"merges\":[1,\"x\"]}", "\"merges\"[1]"},
        {"{\"type\":\"bpe\",\"vocab_size\":257,\"merges\":[1,2.5]}", "\"merges\"[1]"},
        {"{\"type\":\"bpe\",\"vocab_size\":258,\"merges\":[1,2]}", "token id 257 is neither"},
        {"{\"type\":\"bpe\",\"vocab_size\":256,\"merges\":[1,2]}", "beyond vocab_size"},
        {"{\"type\":\"bpe\",\"vocab_size\":258,\"merges\":[1,2,1,2]}", "duplicates merge 0"},
        {"{\"type\":\"bpe\",\"vocab_size\":258,\"merges\":[257,0,256,0]}", "no byte, merge or special"},
        {"{\"type\":\"bpe\",\"vocab_size\":257,\"merges\":[1,2],\"bytes\":[1,2]}", "\"bytes\" has 2 ids"},
        {"{\"type\":\"bpe\",\"vocab_size\":257,\"merges\":[1,2],\"merge_ids\":[]}", "\"merge_ids\" has 0 ids for 1 merges"},
        {"{\"type\":\"bpe\",\"vocab_size\":257,\"merges\":[1,2],\"merge_ids\":[5]}", "merge 0 produces id 5, which is a byte token"},
        {"{\"type\":\"bpe\",\"pattern\":\"llama3\",\"vocab_size\":257,\"merges\":[1,2]}", "unknown \"pattern\""},
        {"{\"type\":\"bpe\",\"vocab_size\":258,\"merges\":[1,2],\"special\":{\"x\":5}}", "both a byte and a special token"},
        {"{\"type\":\"bpe\",\"vocab_size\":258,\"merges\":[1,2],\"special\":{\"\\u4e2d\":257}}", "special token 257"},
        {"{\"type\":\"bpe\",\"vocab_size\":258,\"merges\":[1,2],\"special\":[]}", "\"special\" is not an object"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        mm_status st = mm_tokenizer_from_json(cases[i].json, &tok);
        CHECK(st == MM_ERR_FORMAT, "case %zu (%s): status %s", i, cases[i].json, mm_status_name(st));
        CHECK(tu_contains(mm_errmsg(), cases[i].needle), "case %zu: message '%s' lacks '%s'", i,
              mm_errmsg(), cases[i].needle);
        CHECK(tok == NULL, "case %zu: tok set", i);
        mm_tokenizer_free(tok);
        tok = NULL;
    }
    /* a merge may use a token made by a later merge; the bytes still resolve */
    CHECK_OK(mm_tokenizer_from_json(
        "{\"type\":\"bpe\",\"vocab_size\":259,\"merges\":[257,99,97,98,256,100]}", &tok));
    if (tok) {
        const char *b;
        size_t l;
        CHECK_OK(mm_tokenizer_token_bytes(tok, 256, &b, &l));
        CHECK(l == 3 && memcmp(b, "abc", 3) == 0, "forward merge bytes '%.*s'", (int)l, b);
        round_trip(tok, "abcd", 4, "forward merges");
        mm_tokenizer_free(tok);
    }
}

int main(void) {
    test_utf8();
    test_char();
    test_bad_json();
    test_bad_files();
    const char *data = tu_data_dir();
    if (data) test_gpt2(data);
    else printf("  skipping GPT-2 / corpus tests (no data directory)\n");
    test_train(data);
    return tu_finish();
}
