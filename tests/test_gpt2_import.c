/* GPT-2 import (apps/textgen/gpt2_import.c) against tests/fixtures/gpt2_tiny, a random 2-layer
 * GPT-2 in Hugging Face's layout with PyTorch reference outputs (scripts/gen_gpt2_fixture.py).
 *
 * Comparison: the importer can build the LM head linear (logits) or with softmax (the default,
 * what generation uses). The logits model is compared with the reference logits, and the softmax
 * model's log(probabilities) with the reference log_softmax(logits); both within 1e-4 absolute.
 * The sequence is padded to the model's context (64) with other tokens: by causality the padding
 * must not change the first L rows. Bad inputs: config/tensor mismatches, missing, misshapen or
 * unexpected tensors, corrupt files, an oversized tokenizer; none may leave an output file. */
#include "testutil.h"
#include "textgen/gpt2_import.h"
#include "textgen/textgen.h"

#include <mediaml_text.h>

#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define TOL 1e-4

static char fixture[4096];

static const char *fx(const char *name) {
    static char buf[4][4200];
    static int k;
    k = (k + 1) % 4;
    snprintf(buf[k], sizeof buf[k], "%s/%s", fixture, name);
    return buf[k];
}

static int exists(const char *p) { return access(p, F_OK) == 0; }

static int copy_file(const char *src, const char *dst) {
    FILE *in = fopen(src, "rb"), *out = in ? fopen(dst, "wb") : NULL;
    if (!in || !out) {
        if (in) fclose(in);
        return -1;
    }
    char buf[65536];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, in)) > 0) fwrite(buf, 1, n, out);
    fclose(in);
    return fclose(out);
}

/* A scratch checkpoint directory holding copies of the fixture's files. */
static const char *scratch(const char *name) {
    static char dir[512];
    snprintf(dir, sizeof dir, "%s", tu_tmp_path(name));
    mkdir(dir, 0700);
    const char *files[] = {"config.json", "model.safetensors", "vocab.json", "merges.txt"};
    char dst[1024];
    for (int i = 0; i < 4; i++) {
        snprintf(dst, sizeof dst, "%s/%s", dir, files[i]);
        if (copy_file(fx(files[i]), dst)) fprintf(stderr, "copy %s failed\n", files[i]);
    }
    return dir;
}

static void write_text(const char *path, const char *text) {
    FILE *f = fopen(path, "w");
    if (f) {
        fputs(text, f);
        fclose(f);
    }
}

/* Rewrites dir/model.safetensors through edit(file). */
typedef void (*edit_fn)(mm_st_file *f);
static void edit_checkpoint(const char *dir, edit_fn edit) {
    char path[1024];
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    mm_st_file f;
    CHECK_OK(mm_st_read(path, &f));
    edit(&f);
    CHECK_OK(mm_st_write(path, &f));
    mm_st_free(&f);
}

static mm_st_tensor *find(mm_st_file *f, const char *name) { return (mm_st_tensor *)mm_st_find(f, name); }

/* ------------------------------------------------------------------ reference run */

typedef struct ref {
    mm_st_file f;
    const int32_t *tokens;
    int L, V;
    const float *logits, *log_probs;
    const char *text;
} ref;

static int load_ref(ref *r) {
    memset(r, 0, sizeof *r);
    if (mm_st_read(fx("reference.safetensors"), &r->f) != MM_OK) {
        CHECK(0, "reference: %s", mm_errmsg());
        return 0;
    }
    const mm_st_tensor *t = mm_st_find(&r->f, "tokens"), *lg = mm_st_find(&r->f, "logits"), *lp = mm_st_find(&r->f, "log_probs");
    r->text = mm_st_meta(&r->f, "text");
    CHECK(t && lg && lp && r->text && !strcmp(t->dtype, "I32") && lg->ndim == 2, "reference tensors present");
    if (!(t && lg && lp && r->text)) return 0;
    r->tokens = t->data;
    r->L = (int)t->size;
    r->V = lg->shape[1];
    r->logits = lg->data;
    r->log_probs = lp->data;
    return 1;
}

/* Predicts the reference tokens (padded to the model's context) and returns the max absolute
 * error of out(row, v) (log'ed when take_log) against want over the first L rows. */
static double run_and_compare(mm_model *m, const ref *r, const float *want, int take_log, const char *what) {
    int shape[MM_MAX_DIMS], oshape[MM_MAX_DIMS];
    CHECK(mm_model_input_shape(m, shape) == 1, "%s: input is [T]", what);
    int T = shape[0];
    CHECK(mm_model_output_shape(m, oshape) == 2 && oshape[0] == T && oshape[1] == r->V, "%s: output is [T, V]", what);
    if (T < r->L) return 1e9;
    mm_array x, y = {0};
    mm_array_alloc(&x, 2, (int[]){2, T});
    for (int b = 0; b < 2; b++)
        for (int i = 0; i < T; i++)
            x.data[b * T + i] = i < r->L ? (float)r->tokens[i] : (float)((i * 37 + b * 101) % r->V); /* padding differs per row */
    double worst = 1e9;
    mm_status st = mm_predict(m, &x, 2, &y);
    CHECK(st == MM_OK, "%s: predict: %s", what, mm_errmsg());
    if (st == MM_OK) {
        worst = 0;
        for (int b = 0; b < 2; b++)
            for (int i = 0; i < r->L; i++) {
                double sum = 0;
                for (int v = 0; v < r->V; v++) {
                    float got = y.data[((size_t)b * T + i) * r->V + v];
                    sum += got;
                    double g = take_log ? log((double)got) : got;
                    double e = fabs(g - want[(size_t)i * r->V + v]);
                    if (!(e <= worst)) worst = isnan(e) ? 1e9 : e;
                }
                if (take_log) CHECK(fabs(sum - 1) < 1e-4, "%s: row %d sums to %.7f", what, i, sum);
            }
        CHECK(worst <= TOL, "%s: max abs error %.3g > %g", what, worst, TOL);
        printf("%s: max abs error over %d x %d values (x2 paddings) = %.3g\n", what, r->L, r->V, worst);
    }
    mm_array_free(&x);
    mm_array_free(&y);
    return worst;
}

static mm_model *import_and_load(const gpt2_import_args *a, gpt2_import_report *rep) {
    mm_status st = gpt2_import(a, rep);
    CHECK(st == MM_OK, "import %s: %s", a->checkpoint, mm_errmsg());
    if (st) return NULL;
    mm_model *m = NULL;
    CHECK_OK(mm_model_load(a->out, &m));
    return m;
}

static void parity(const ref *r) {
    gpt2_import_report rep;
    /* linear head: logits */
    const char *out = tu_tmp_path("tiny_logits.mm");
    mm_model *m = import_and_load(&(gpt2_import_args){.checkpoint = fixture, .out = out, .logits = 1}, &rep);
    if (m) {
        CHECK(rep.config.n_layer == 2 && rep.config.n_head == 2 && rep.config.n_embd == 32 && rep.config.n_positions == 64 &&
                  rep.config.vocab_size == 300 && rep.config.n_inner == 128 && fabsf(rep.config.layer_norm_epsilon - 1e-5f) < 1e-12f &&
                  !strcmp(rep.config.activation, "gelu_tanh") && rep.config.eos_token_id == 299,
              "config as read and inferred");
        CHECK(rep.context == 64 && rep.has_tokenizer && rep.tokenizer_vocab == 300 && rep.ignored_tensors == 2,
              "report: context %d, tokenizer %d/%d, ignored %d", rep.context, rep.has_tokenizer, rep.tokenizer_vocab,
              rep.ignored_tensors);
        long want_params = 300 * 32 + 64 * 32 + 2 * (4 * 32 + 4 * (32 * 32 + 32) + 32 * 128 + 128 + 128 * 32 + 32) + 2 * 32 + 32 * 300;
        CHECK(rep.params == want_params && mm_count_params(m) == want_params, "params %ld, expected %ld", rep.params, want_params);
        run_and_compare(m, r, r->logits, 0, "logits head vs reference logits");
        /* metadata: tokenizer and config */
        const char *tj = mm_model_get_metadata(m, "tokenizer"), *cj = mm_model_get_metadata(m, "gpt2_config");
        CHECK(tj && cj && strstr(cj, "\"n_layer\":2") && strstr(cj, "\"activation\":\"gelu_tanh\""), "metadata present: %s",
              cj ? cj : "(none)");
        mm_tokenizer *tok = NULL;
        if (tj) CHECK_OK(mm_tokenizer_from_json(tj, &tok));
        if (tok) {
            int32_t *ids = NULL;
            size_t n = 0;
            CHECK_OK(mm_tokenizer_encode(tok, r->text, strlen(r->text), &ids, &n));
            int same = (int)n == r->L;
            for (size_t i = 0; same && i < n; i++) same = ids[i] == r->tokens[i];
            CHECK(same, "stored tokenizer encodes the reference text as GPT-2's algorithm did (%zu vs %d tokens)", n, r->L);
            char *text = NULL;
            size_t len = 0;
            CHECK_OK(mm_tokenizer_decode(tok, ids, n, &text, &len));
            CHECK(text && len == strlen(r->text) && !memcmp(text, r->text, len), "decode round trip");
            CHECK(mm_tokenizer_vocab_size(tok) == 300 && mm_tokenizer_lookup(tok, "<|endoftext|>", 13) == 299, "special token 299");
            free(ids), free(text);
            mm_tokenizer_free(tok);
        }
        mm_model_free(m);
    }

    /* softmax head (default): log of the probabilities vs log_softmax of the reference */
    out = tu_tmp_path("tiny.mm");
    m = import_and_load(&(gpt2_import_args){.checkpoint = fixture, .tokenizer_dir = fixture, .out = out}, &rep);
    if (m) {
        run_and_compare(m, r, r->log_probs, 1, "softmax head: log(probs) vs log_softmax(reference)");
        CHECK(rep.textgen_ready, "textgen metadata written");
        /* KV-cache decoding, one token at a time */
        mm_decoder *d = NULL;
        mm_status st = mm_decoder_new(m, &d);
        CHECK(st == MM_OK, "decoder: %s", mm_errmsg());
        if (st == MM_OK) {
            float *row = malloc((size_t)r->V * sizeof(float));
            double worst = 0;
            for (int i = 0; i < r->L && st == MM_OK; i++) {
                st = mm_decoder_step(d, r->tokens[i], row);
                for (int v = 0; st == MM_OK && v < r->V; v++) {
                    double e = fabs(log((double)row[v]) - r->log_probs[(size_t)i * r->V + v]);
                    if (!(e <= worst)) worst = isnan(e) ? 1e9 : e;
                }
            }
            CHECK(st == MM_OK, "decoder step: %s", mm_errmsg());
            CHECK(worst <= TOL, "decoder: max abs error %.3g", worst);
            printf("KV-cache decoder: log(probs) vs reference: max abs error %.3g\n", worst);
            free(row);
            mm_decoder_free(d);
        }
        mm_model_free(m);
        /* the textgen app takes the file */
        textgen_lm lm;
        st = textgen_load(out, &lm);
        CHECK(st == MM_OK, "textgen_load: %s", mm_errmsg());
        if (st == MM_OK) {
            CHECK(lm.cfg.context == 64 && lm.cfg.vocab_size == 300 && lm.cfg.layers == 2 && lm.cfg.heads == 2 && lm.cfg.width == 32,
                  "textgen config from the import");
            textgen_lm_free(&lm);
        }
    }

    /* shorter context, the .safetensors path given directly */
    out = tu_tmp_path("tiny_ctx.mm");
    m = import_and_load(&(gpt2_import_args){.checkpoint = fx("model.safetensors"), .out = out, .logits = 1, .context = r->L}, &rep);
    if (m) {
        CHECK(rep.context == r->L, "context %d", rep.context);
        run_and_compare(m, r, r->logits, 0, "context = L");
        mm_model_free(m);
    }
}

/* ------------------------------------------------------------------ layouts */

static void add_prefix(mm_st_file *f) {
    /* "transformer." names as GPT2LMHeadModel.save_pretrained writes them; drop the mask buffers */
    int k = 0;
    for (int i = 0; i < f->n; i++) {
        mm_st_tensor *t = &f->tensors[i];
        if (strstr(t->name, "attn.bias") && !strstr(t->name, "c_attn")) {
            free(t->name), free(t->data);
            continue;
        }
        char *nm = malloc(strlen(t->name) + 13);
        sprintf(nm, "transformer.%s", t->name);
        free(t->name);
        t->name = nm;
        f->tensors[k++] = *t;
    }
    f->n = k;
}

static mm_st_file *g_src;
static void add_lm_head(mm_st_file *f) {
    /* an explicit (untied) lm_head.weight: here a scaled copy of wte */
    const mm_st_tensor *w = mm_st_find(f, "wte.weight");
    mm_st_tensor *ts = realloc(f->tensors, (size_t)(f->n + 1) * sizeof *ts);
    if (!ts || !w) return;
    f->tensors = ts;
    w = mm_st_find(f, "wte.weight");
    mm_st_tensor *t = &f->tensors[f->n++];
    *t = *w;
    t->name = strdup("lm_head.weight");
    t->data = malloc(w->size * sizeof(float));
    for (size_t i = 0; i < w->size; i++) ((float *)t->data)[i] = 2.0f * ((const float *)w->data)[i];
    (void)g_src;
}

static void layouts(const ref *r) {
    const char *dir = scratch("prefixed");
    edit_checkpoint(dir, add_prefix);
    const char *out = tu_tmp_path("prefixed.mm");
    gpt2_import_report rep;
    mm_model *m = import_and_load(&(gpt2_import_args){.checkpoint = dir, .out = out, .logits = 1}, &rep);
    if (m) {
        CHECK(rep.ignored_tensors == 0, "no buffers to ignore");
        run_and_compare(m, r, r->logits, 0, "transformer.-prefixed names");
        mm_model_free(m);
    }
    /* untied head: logits double */
    dir = scratch("untied");
    edit_checkpoint(dir, add_lm_head);
    out = tu_tmp_path("untied.mm");
    m = import_and_load(&(gpt2_import_args){.checkpoint = dir, .out = out, .logits = 1}, &rep);
    if (m) {
        float *twice = malloc((size_t)r->L * r->V * sizeof(float));
        for (size_t i = 0; i < (size_t)r->L * r->V; i++) twice[i] = 2.0f * r->logits[i];
        run_and_compare(m, r, twice, 0, "explicit lm_head.weight");
        free(twice);
        mm_model_free(m);
    }
}

/* ------------------------------------------------------------------ other dtypes */

static uint16_t to_half(float f) {
    uint32_t b;
    memcpy(&b, &f, 4);
    uint16_t sign = (uint16_t)((b >> 16) & 0x8000);
    int exp = (int)((b >> 23) & 0xff) - 127 + 15;
    uint32_t man = b & 0x7fffff;
    if (exp >= 31) return sign | 0x7c00; /* not in the fixture */
    if (exp <= 0) return sign | (uint16_t)nearbyintf(fabsf(f) * 16777216.0f); /* subnormal: units of 2^-24 */
    uint32_t m = man >> 13, rem = man & 0x1fff;
    if (rem > 0x1000 || (rem == 0x1000 && (m & 1))) m++;
    if (m == 0x400) m = 0, exp++;
    return sign | (uint16_t)(exp << 10) | (uint16_t)m;
}

static float from_half(uint16_t h) {
    int exp = (h >> 10) & 0x1f;
    float v = exp ? ldexpf((float)(0x400 | (h & 0x3ff)), exp - 25) : ldexpf((float)(h & 0x3ff), -24);
    return h & 0x8000 ? -v : v;
}

static uint16_t to_bf16(float f) {
    uint32_t b;
    memcpy(&b, &f, 4);
    b += 0x7fff + ((b >> 16) & 1);
    return (uint16_t)(b >> 16);
}

static float from_bf16(uint16_t h) {
    uint32_t b = (uint32_t)h << 16;
    float f;
    memcpy(&f, &b, 4);
    return f;
}

/* Writes f's F32 tensors as dtype (F16, BF16 or F64) to path by hand (mm_st_write writes F32 and
 * I32 only), and rounds f's own values to what the file holds. */
static void write_as(const char *path, mm_st_file *f, const char *dtype) {
    int esize = !strcmp(dtype, "F64") ? 8 : 2;
    size_t cap = 1 << 16, n = 0, off = 0;
    char *hdr = malloc(cap);
    n += (size_t)snprintf(hdr + n, cap - n, "{");
    for (int i = 0; i < f->n; i++) {
        mm_st_tensor *t = &f->tensors[i];
        n += (size_t)snprintf(hdr + n, cap - n, "%s\"%s\":{\"dtype\":\"%s\",\"shape\":[", i ? "," : "", t->name, dtype);
        for (int d = 0; d < t->ndim; d++) n += (size_t)snprintf(hdr + n, cap - n, d ? ",%d" : "%d", t->shape[d]);
        n += (size_t)snprintf(hdr + n, cap - n, "],\"data_offsets\":[%zu,%zu]}", off, off + t->size * (size_t)esize);
        off += t->size * (size_t)esize;
    }
    n += (size_t)snprintf(hdr + n, cap - n, "}");
    while (n % 8) hdr[n++] = ' ';
    FILE *fp = fopen(path, "wb");
    uint64_t len = n;
    unsigned char lb[8];
    for (int i = 0; i < 8; i++) lb[i] = (unsigned char)(len >> (8 * i));
    fwrite(lb, 1, 8, fp);
    fwrite(hdr, 1, n, fp);
    for (int i = 0; i < f->n; i++) {
        mm_st_tensor *t = &f->tensors[i];
        float *v = t->data;
        for (size_t k = 0; k < t->size; k++) {
            if (esize == 8) {
                double x = v[k];
                fwrite(&x, 8, 1, fp);
            } else {
                uint16_t h = !strcmp(dtype, "F16") ? to_half(v[k]) : to_bf16(v[k]);
                fwrite(&h, 2, 1, fp);
                v[k] = !strcmp(dtype, "F16") ? from_half(h) : from_bf16(h);
            }
        }
    }
    fclose(fp);
    free(hdr);
}

/* The same weights as F16 / BF16 / F64 and as F32 holding the rounded values must import to
 * models that agree exactly. */
static void dtypes(void) {
    const char *kinds[] = {"F16", "BF16", "F64"};
    for (int k = 0; k < 3; k++) {
        char name[32], path[1024];
        snprintf(name, sizeof name, "dt_%s", kinds[k]);
        const char *dir = scratch(name);
        snprintf(path, sizeof path, "%s/model.safetensors", dir);
        mm_st_file f;
        CHECK_OK(mm_st_read(path, &f));
        write_as(path, &f, kinds[k]); /* f now holds the rounded values */
        snprintf(name, sizeof name, "dt_%s_f32", kinds[k]);
        const char *dir32 = scratch(name);
        char path32[1024];
        snprintf(path32, sizeof path32, "%s/model.safetensors", dir32);
        CHECK_OK(mm_st_write(path32, &f));
        mm_st_free(&f);
        const char *o1 = tu_tmp_path("dt_a.mm"), *o2 = tu_tmp_path("dt_b.mm");
        mm_status s1 = gpt2_import(&(gpt2_import_args){.checkpoint = dir, .out = o1, .logits = 1}, NULL);
        CHECK(s1 == MM_OK, "%s import: %s", kinds[k], mm_errmsg());
        mm_status s2 = gpt2_import(&(gpt2_import_args){.checkpoint = dir32, .out = o2, .logits = 1}, NULL);
        CHECK(s2 == MM_OK, "%s-rounded F32 import: %s", kinds[k], mm_errmsg());
        mm_st_file a, b;
        if (s1 == MM_OK && s2 == MM_OK && mm_st_read(o1, &a) == MM_OK) {
            if (mm_st_read(o2, &b) == MM_OK) {
                int same = a.n == b.n && a.n > 0;
                for (int i = 0; same && i < a.n; i++) {
                    const mm_st_tensor *tb = mm_st_find(&b, a.tensors[i].name);
                    same = tb && tb->size == a.tensors[i].size && !memcmp(tb->data, a.tensors[i].data, tb->size * 4);
                }
                CHECK(same, "%s checkpoint converts to the same float32 weights as its rounded F32 twin", kinds[k]);
                mm_st_free(&b);
            }
            mm_st_free(&a);
        }
    }
}

/* ------------------------------------------------------------------ bad inputs */

static void expect_fail(const char *dir, const char *tok_dir, int context, mm_status code, const char *needle1,
                        const char *needle2, const char *what) {
    const char *out = tu_tmp_path("bad.mm");
    unlink(out);
    mm_status st = gpt2_import(&(gpt2_import_args){.checkpoint = dir, .tokenizer_dir = tok_dir, .out = out, .context = context}, NULL);
    CHECK(st == code, "%s: got %s (%s), expected %s", what, mm_status_name(st), mm_errmsg(), mm_status_name(code));
    CHECK(tu_contains(mm_errmsg(), needle1) && (!needle2 || tu_contains(mm_errmsg(), needle2)), "%s: message '%s' lacks '%s'/'%s'",
          what, mm_errmsg(), needle1, needle2 ? needle2 : "");
    CHECK(!exists(out), "%s: no output file written", what);
    char tmp[600];
    snprintf(tmp, sizeof tmp, "%s.gpt2-import-tmp", out);
    CHECK(!exists(tmp), "%s: no temporary file left", what);
}

static void cfg_with(const char *dir, const char *from, const char *to) {
    char path[1024], *text;
    snprintf(path, sizeof path, "%s/config.json", dir);
    FILE *f = fopen(path, "rb");
    text = calloc(1, 65536);
    size_t n = f ? fread(text, 1, 65535, f) : 0;
    if (f) fclose(f);
    text[n] = 0;
    char *at = strstr(text, from);
    CHECK(at != NULL, "config has '%s'", from);
    if (at) {
        char *out = calloc(1, 70000);
        memcpy(out, text, (size_t)(at - text));
        strcat(out, to);
        strcat(out, at + strlen(from));
        write_text(path, out);
        free(out);
    }
    free(text);
}

static void drop_ln2_bias(mm_st_file *f) {
    mm_st_tensor *t = find(f, "h.1.ln_2.bias");
    if (!t) return;
    free(t->name), free(t->data);
    *t = f->tensors[--f->n];
}

static void narrow_c_attn(mm_st_file *f) {
    mm_st_tensor *t = find(f, "h.0.attn.c_attn.weight");
    if (!t) return;
    t->shape[1] = 64; /* [32, 64]: data shrinks accordingly */
    t->size = 32 * 64;
}

static void odd_fc(mm_st_file *f) {
    mm_st_tensor *t = find(f, "h.1.mlp.c_fc.weight");
    if (!t) return;
    t->shape[1] = 96;
    t->size = 32 * 96;
}

static void extra_tensor(mm_st_file *f) {
    mm_st_tensor *ts = realloc(f->tensors, (size_t)(f->n + 1) * sizeof *ts);
    if (!ts) return;
    f->tensors = ts;
    mm_st_tensor *t = &f->tensors[f->n++];
    memset(t, 0, sizeof *t);
    t->name = strdup("h.0.crossattention.c_attn.weight");
    strcpy(t->dtype, "F32");
    t->ndim = 1, t->shape[0] = 4, t->size = 4;
    t->data = calloc(4, sizeof(float));
}

static void int_tensor(mm_st_file *f) {
    mm_st_tensor *t = find(f, "ln_f.bias");
    if (t) strcpy(t->dtype, "I32");
}

static void bad_inputs(void) {
    const char *dir;
    /* config vs tensors */
    dir = scratch("cfg_embd");
    cfg_with(dir, "\"n_embd\": 32", "\"n_embd\": 48");
    expect_fail(dir, NULL, 0, MM_ERR_SHAPE, "n_embd is 48", "wte.weight", "config n_embd 48");
    dir = scratch("cfg_vocab");
    cfg_with(dir, "\"vocab_size\": 300", "\"vocab_size\": 50257");
    expect_fail(dir, NULL, 0, MM_ERR_SHAPE, "vocab_size is 50257", "wte.weight", "config vocab_size");
    dir = scratch("cfg_layers");
    cfg_with(dir, "\"n_layer\": 2", "\"n_layer\": 3");
    expect_fail(dir, NULL, 0, MM_ERR_SHAPE, "n_layer is 3", "2 blocks", "config n_layer 3");
    dir = scratch("cfg_pos");
    cfg_with(dir, "\"n_positions\": 64", "\"n_positions\": 1024");
    expect_fail(dir, NULL, 0, MM_ERR_SHAPE, "n_positions is 1024", "wpe.weight", "config n_positions");
    dir = scratch("cfg_heads");
    cfg_with(dir, "\"n_head\": 2", "\"n_head\": 5");
    expect_fail(dir, NULL, 0, MM_ERR_SHAPE, "not divisible by n_head 5", NULL, "n_head 5");
    dir = scratch("cfg_inner");
    cfg_with(dir, "\"n_inner\": null", "\"n_inner\": 64");
    expect_fail(dir, NULL, 0, MM_ERR_SHAPE, "n_inner is 64", "h.0.mlp.c_fc.weight", "config n_inner");
    dir = scratch("cfg_act");
    cfg_with(dir, "\"gelu_new\"", "\"swish\"");
    expect_fail(dir, NULL, 0, MM_ERR_ARG, "activation_function \"swish\"", NULL, "unsupported activation");
    dir = scratch("cfg_nohead");
    cfg_with(dir, "\"n_head\": 2,", "");
    expect_fail(dir, NULL, 0, MM_ERR_FORMAT, "n_head", "missing", "no n_head");
    dir = scratch("cfg_corrupt");
    write_text(tu_tmp_path("cfg_corrupt/config.json"), "{\"n_layer\": 2, \"n_head\": ");
    expect_fail(dir, NULL, 0, MM_ERR_FORMAT, "config.json", "not a JSON object", "corrupt config.json");
    dir = scratch("cfg_missing");
    unlink(tu_tmp_path("cfg_missing/config.json"));
    expect_fail(dir, NULL, 0, MM_ERR_IO, "config.json not found", NULL, "missing config.json");

    /* tensors */
    dir = scratch("missing");
    edit_checkpoint(dir, drop_ln2_bias);
    expect_fail(dir, NULL, 0, MM_ERR_FORMAT, "'h.1.ln_2.bias' is missing", NULL, "missing tensor");
    dir = scratch("narrow");
    edit_checkpoint(dir, narrow_c_attn);
    expect_fail(dir, NULL, 0, MM_ERR_SHAPE, "'h.0.attn.c_attn.weight' has shape [32, 64]", "[32, 96]", "c_attn shape");
    dir = scratch("odd_fc");
    edit_checkpoint(dir, odd_fc);
    expect_fail(dir, NULL, 0, MM_ERR_SHAPE, "'h.1.mlp.c_fc.weight' has shape [32, 96]", "n_inner 128", "c_fc shape");
    dir = scratch("extra");
    edit_checkpoint(dir, extra_tensor);
    expect_fail(dir, NULL, 0, MM_ERR_FORMAT, "unexpected tensor 'h.0.crossattention.c_attn.weight'", NULL, "unknown tensor");
    dir = scratch("i32");
    edit_checkpoint(dir, int_tensor);
    expect_fail(dir, NULL, 0, MM_ERR_FORMAT, "'ln_f.bias' has dtype I32", NULL, "integer tensor");

    /* corrupt files */
    dir = scratch("truncated");
    if (truncate(tu_tmp_path("truncated/model.safetensors"), 100000) == 0)
        expect_fail(dir, NULL, 0, MM_ERR_FORMAT, "model.safetensors", NULL, "truncated checkpoint");
    dir = scratch("garbage");
    write_text(tu_tmp_path("garbage/model.safetensors"), "this is not a safetensors file at all");
    expect_fail(dir, NULL, 0, MM_ERR_FORMAT, "model.safetensors", NULL, "garbage checkpoint");
    dir = scratch("nockpt");
    unlink(tu_tmp_path("nockpt/model.safetensors"));
    expect_fail(dir, NULL, 0, MM_ERR_IO, "no model.safetensors", NULL, "no checkpoint");
    write_text(tu_tmp_path("nockpt/pytorch_model.bin"), "x");
    expect_fail(dir, NULL, 0, MM_ERR_ARG, "pytorch_model.bin", "safetensors", "pytorch_model.bin only");
    expect_fail(tu_tmp_path("does-not-exist"), NULL, 0, MM_ERR_IO, "does-not-exist", NULL, "missing directory");

    /* options and tokenizer */
    expect_fail(fixture, NULL, 65, MM_ERR_ARG, "context 65", "n_positions", "context too long");
    const char *data = tu_data_dir();
    if (data) {
        char tokdir[4200];
        snprintf(tokdir, sizeof tokdir, "%s/gpt2-tokenizer", data);
        if (exists(tokdir)) expect_fail(fixture, tokdir, 0, MM_ERR_SHAPE, "50257 tokens", "300 rows", "GPT-2 tokenizer on a 300-token model");
    }
    expect_fail(fixture, tu_tmp_path("no-tokenizer-here"), 0, MM_ERR_IO, "no-tokenizer-here", NULL, "missing tokenizer dir");
}

/* A larger checkpoint made by 'gen_gpt2_fixture.py --small DIR' (GPT-2 small's shapes and real
 * tokenizer), when MEDIAML_GPT2_DIR names it: imported with a 64-token context to keep memory low. */
static void external(const char *dir) {
    snprintf(fixture, sizeof fixture, "%s", dir);
    ref r;
    if (!load_ref(&r)) return;
    printf("%s: %d reference tokens, vocabulary %d\n", dir, r.L, r.V);
    gpt2_import_report rep;
    const char *out = tu_tmp_path("ext_logits.mm");
    mm_model *m = import_and_load(&(gpt2_import_args){.checkpoint = dir, .out = out, .logits = 1, .context = 64}, &rep);
    if (m) {
        run_and_compare(m, &r, r.logits, 0, "external: logits");
        mm_tokenizer *tok = NULL;
        const char *tj = mm_model_get_metadata(m, "tokenizer");
        if (tj && mm_tokenizer_from_json(tj, &tok) == MM_OK) {
            int32_t *ids = NULL;
            size_t n = 0;
            CHECK_OK(mm_tokenizer_encode(tok, r.text, strlen(r.text), &ids, &n));
            int same = (int)n == r.L;
            for (size_t i = 0; same && i < n; i++) same = ids[i] == r.tokens[i];
            CHECK(same, "external: tokenizer encodes the reference text as the reference");
            free(ids);
            mm_tokenizer_free(tok);
        } else {
            CHECK(0, "external: no tokenizer: %s", mm_errmsg());
        }
        mm_model_free(m);
        unlink(out);
    }
    out = tu_tmp_path("ext.mm");
    m = import_and_load(&(gpt2_import_args){.checkpoint = dir, .out = out, .context = 64}, &rep);
    if (m) {
        run_and_compare(m, &r, r.log_probs, 1, "external: log(probs)");
        mm_decoder *d = NULL;
        if (mm_decoder_new(m, &d) == MM_OK) {
            float *row = malloc((size_t)r.V * sizeof(float));
            double worst = 0;
            for (int i = 0; i < r.L; i++) {
                CHECK_OK(mm_decoder_step(d, r.tokens[i], row));
                for (int v = 0; v < r.V; v++) worst = fmax(worst, fabs(log((double)row[v]) - r.log_probs[(size_t)i * r.V + v]));
            }
            CHECK(worst <= TOL, "external decoder: max abs error %.3g", worst);
            printf("external: KV-cache decoder log(probs) max abs error %.3g\n", worst);
            free(row);
            mm_decoder_free(d);
        }
        mm_model_free(m);
        unlink(out);
    }
    mm_st_free(&r.f);
}

int main(void) {
    snprintf(fixture, sizeof fixture, "%s", tu_source_path("tests/fixtures/gpt2_tiny"));
    ref r;
    if (load_ref(&r)) {
        parity(&r);
        layouts(&r);
    }
    dtypes();
    bad_inputs();
    mm_st_free(&r.f);
    const char *ext = getenv("MEDIAML_GPT2_DIR");
    if (ext && *ext) external(ext);
    return tu_finish();
}
