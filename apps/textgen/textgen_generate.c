/* textgen generation: loading a model file with its tokenizer, prompts, sampling
 * (temperature, top-k, nucleus) and incremental generation with or without the KV cache;
 * validation loss of a model on a text file. */
#include "textgen/textgen.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------------ loading */

void textgen_lm_free(textgen_lm *lm) {
    if (!lm) return;
    mm_model_free(lm->model);
    mm_tokenizer_free(lm->tok);
    memset(lm, 0, sizeof *lm);
}

mm_status textgen_load(const char *path, textgen_lm *out) {
    memset(out, 0, sizeof *out);
    mm_model *m = NULL;
    mm_status st = mm_model_load(path, &m);
    if (st) return st;
    char msg[512];
    const char *tj = mm_model_get_metadata(m, TEXTGEN_META_TOKENIZER);
    const char *cj = mm_model_get_metadata(m, TEXTGEN_META_CONFIG);
    if (!tj) {
        mm_model_free(m);
        return mm_error(MM_ERR_FORMAT, "%s is not a text-generation model: it holds no tokenizer (train one with 'mediaml textgen train')",
                        path);
    }
    mm_tokenizer *tok = NULL;
    if ((st = mm_tokenizer_from_json(tj, &tok))) {
        snprintf(msg, sizeof msg, "%s", mm_errmsg());
        mm_model_free(m);
        return mm_error(MM_ERR_FORMAT, "%s: bad tokenizer metadata: %s", path, msg);
    }
    textgen_config cfg = {0};
    textgen_train_meta meta = {0};
    int in[MM_MAX_DIMS], os[MM_MAX_DIMS];
    int ni = mm_model_input_shape(m, in), no = mm_model_output_shape(m, os);
    if (cj) {
        if ((st = textgen_meta_from_json(cj, &cfg, &meta))) {
            snprintf(msg, sizeof msg, "%s", mm_errmsg());
            mm_tokenizer_free(tok);
            mm_model_free(m);
            return mm_error(MM_ERR_FORMAT, "%s: %s", path, msg);
        }
    } else {
        /* a model made elsewhere (e.g. an imported GPT-2): sizes from its shapes */
        cfg.arch = TEXTGEN_GPT;
        cfg.context = ni == 1 ? in[0] : 0;
        cfg.vocab_size = no == 2 ? os[1] : 0;
        meta.val_fraction = 0.1f;
    }
    int vt = mm_tokenizer_vocab_size(tok);
    const char *why = NULL;
    if (ni != 1 || in[0] != cfg.context) why = "the model's input is not [context] token ids";
    else if (no != 2 || os[0] != cfg.context || os[1] != cfg.vocab_size) why = "the model's output is not [context, vocab_size]";
    else if (vt != cfg.vocab_size) why = "the tokenizer's vocabulary size differs from the model's";
    if (why) {
        mm_error(MM_ERR_FORMAT, "%s: inconsistent text-generation model: %s (context %d, model vocabulary %d, tokenizer %d)", path,
                 why, cfg.context, cfg.vocab_size, vt);
        mm_tokenizer_free(tok);
        mm_model_free(m);
        return MM_ERR_FORMAT;
    }
    out->model = m;
    out->tok = tok;
    out->cfg = cfg;
    out->meta = meta;
    return MM_OK;
}

/* ------------------------------------------------------------------ prompts */

mm_status textgen_encode_prompt(const textgen_lm *lm, const char *prompt, size_t len, int32_t **ids, size_t *n) {
    *ids = NULL;
    *n = 0;
    const mm_tokenizer *tok = lm->tok;
    if (len == 0) {
        /* GPT-2's convention is <|endoftext|>; else a newline, as most text files start lines */
        int32_t id = -1;
        if (!strcmp(mm_tokenizer_kind(tok), "bpe")) id = mm_tokenizer_lookup(tok, "<|endoftext|>", 13);
        if (id < 0) id = mm_tokenizer_lookup(tok, "\n", 1);
        if (id < 0) return mm_error(MM_ERR_ARG, "empty prompt: the model's vocabulary has no newline to start from; give a prompt");
        *ids = malloc(sizeof(int32_t));
        if (!*ids) return mm_error(MM_ERR_NOMEM, "out of memory");
        (*ids)[0] = id;
        *n = 1;
        return MM_OK;
    }
    size_t bad;
    if (mm_utf8_validate(prompt, len, &bad) != MM_OK) {
        char msg[256];
        snprintf(msg, sizeof msg, "%s", mm_errmsg());
        return mm_error(MM_ERR_ARG, "the prompt is not valid UTF-8: %s", msg);
    }
    if (!strcmp(mm_tokenizer_kind(tok), "char") && mm_tokenizer_unk_id(tok) < 0) {
        for (size_t i = 0; i < len;) {
            uint32_t cp;
            int k = mm_utf8_decode(prompt + i, len - i, &cp);
            if (k <= 0) break; /* validated above */
            if (mm_tokenizer_lookup(tok, prompt + i, (size_t)k) < 0) {
                if (cp >= 0x20 && cp != 0x7F)
                    return mm_error(MM_ERR_ARG, "the prompt has the character '%.*s' (U+%04X, byte offset %zu), which is not in the model's vocabulary of %d characters",
                                    k, prompt + i, (unsigned)cp, i, mm_tokenizer_vocab_size(tok));
                return mm_error(MM_ERR_ARG, "the prompt has the character U+%04X (byte offset %zu), which is not in the model's vocabulary of %d characters",
                                (unsigned)cp, i, mm_tokenizer_vocab_size(tok));
            }
            i += (size_t)k;
        }
    }
    mm_status st = mm_tokenizer_encode(tok, prompt, len, ids, n);
    if (st) return st;
    if (*n == 0) {
        free(*ids);
        *ids = NULL;
        return mm_error(MM_ERR_ARG, "the prompt encodes to no tokens");
    }
    return MM_OK;
}

/* ------------------------------------------------------------------ sampling */

typedef struct cand {
    double w;
    int id;
} cand;

size_t textgen_sample_scratch_bytes(int n) { return (size_t)(n > 0 ? n : 1) * sizeof(cand); }

static int by_weight(const void *a, const void *b) {
    const cand *x = a, *y = b;
    if (x->w != y->w) return x->w > y->w ? -1 : 1;
    return x->id - y->id;
}

int32_t textgen_sample(const float *p, int n, const textgen_sampling *s, uint64_t *rng, void *scratch) {
    int best = 0;
    for (int i = 1; i < n; i++)
        if (p[i] > p[best]) best = i;
    if (!s || s->temperature <= 0 || s->top_k == 1 || !(p[best] > 0)) return best;
    cand *c = scratch;
    const double inv_t = 1.0 / s->temperature, lmax = log((double)p[best]);
    int m = 0;
    for (int i = 0; i < n; i++) {
        double w = p[i] > 0 ? exp((log((double)p[i]) - lmax) * inv_t) : 0.0; /* in [0, 1], best -> 1 */
        if (w > 0) c[m].w = w, c[m++].id = i;
    }
    int keep = m;
    int filtered = (s->top_k > 0 && s->top_k < m) || (s->top_p > 0 && s->top_p < 1);
    if (filtered) {
        qsort(c, (size_t)m, sizeof *c, by_weight);
        if (s->top_k > 0 && s->top_k < keep) keep = s->top_k;
        if (s->top_p > 0 && s->top_p < 1) {
            double total = 0, cum = 0;
            for (int j = 0; j < keep; j++) total += c[j].w;
            for (int j = 0; j < keep; j++) {
                cum += c[j].w;
                if (cum >= s->top_p * total) {
                    keep = j + 1;
                    break;
                }
            }
        }
    }
    double total = 0;
    for (int j = 0; j < keep; j++) total += c[j].w;
    double u = textgen_rng_uniform(rng) * total, cum = 0;
    for (int j = 0; j < keep; j++) {
        cum += c[j].w;
        if (u < cum) return c[j].id;
    }
    return c[keep - 1].id;
}

/* ------------------------------------------------------------------ generator */

struct textgen_generator {
    textgen_lm *lm;
    int V, T;
    mm_decoder *dec;
    size_t dec_start;       /* hist index of the decoder's position 0 */
    char note[512];
    int32_t *hist;          /* every token so far */
    size_t n, cap;
    float *probs;
    int probs_valid;
    mm_array x;             /* [1, T] window (no cache) */
    void *scratch;
};

int textgen_generator_cached(const textgen_generator *g) { return g->dec != NULL; }
const char *textgen_generator_note(const textgen_generator *g) { return g->note; }

void textgen_generator_free(textgen_generator *g) {
    if (!g) return;
    mm_decoder_free(g->dec);
    free(g->hist);
    free(g->probs);
    free(g->scratch);
    mm_array_free(&g->x);
    free(g);
}

mm_status textgen_generator_new(textgen_lm *lm, int use_cache, textgen_generator **out) {
    *out = NULL;
    textgen_generator *g = calloc(1, sizeof *g);
    if (!g) return mm_error(MM_ERR_NOMEM, "out of memory");
    g->lm = lm;
    g->V = lm->cfg.vocab_size;
    g->T = lm->cfg.context;
    g->probs = malloc((size_t)g->V * sizeof(float));
    g->scratch = malloc(textgen_sample_scratch_bytes(g->V));
    if (!g->probs || !g->scratch) {
        textgen_generator_free(g);
        return mm_error(MM_ERR_NOMEM, "out of memory");
    }
    if (use_cache && mm_decoder_new(lm->model, &g->dec) != MM_OK) {
        snprintf(g->note, sizeof g->note, "%s", mm_errmsg());
        g->dec = NULL;
    }
    if (!g->dec) {
        mm_status st = mm_array_alloc(&g->x, 2, (int[]){1, g->T});
        if (st) {
            textgen_generator_free(g);
            return st;
        }
    }
    *out = g;
    return MM_OK;
}

mm_status textgen_generator_push(textgen_generator *g, int32_t id) {
    if (id < 0 || id >= g->V) return mm_error(MM_ERR_ARG, "token id %d is not in 0..%d", (int)id, g->V - 1);
    if (g->n == g->cap) {
        size_t cap = g->cap ? 2 * g->cap : 256;
        int32_t *h = realloc(g->hist, cap * sizeof *h);
        if (!h) return mm_error(MM_ERR_NOMEM, "out of memory");
        g->hist = h;
        g->cap = cap;
    }
    g->hist[g->n++] = id;
    g->probs_valid = 0;
    return MM_OK;
}

mm_status textgen_generator_start(textgen_generator *g, const int32_t *ids, size_t n) {
    if (n == 0) return mm_error(MM_ERR_ARG, "generation needs at least one prompt token");
    g->n = 0;
    g->probs_valid = 0;
    g->dec_start = 0;
    if (g->dec) mm_decoder_reset(g->dec);
    if (n > (size_t)g->T) ids += n - (size_t)g->T, n = (size_t)g->T;
    for (size_t i = 0; i < n; i++) {
        mm_status st = textgen_generator_push(g, ids[i]);
        if (st) return st;
    }
    return MM_OK;
}

/* Models with a linear head give logits: turn a row that is not a distribution into one. */
static void to_distribution(float *p, int n) {
    double sum = 0;
    float lo = p[0], hi = p[0];
    for (int i = 0; i < n; i++) {
        sum += p[i];
        lo = p[i] < lo ? p[i] : lo;
        hi = p[i] > hi ? p[i] : hi;
    }
    if (lo >= 0 && fabs(sum - 1.0) < 1e-3) return;
    double z = 0;
    for (int i = 0; i < n; i++) z += exp((double)p[i] - hi);
    for (int i = 0; i < n; i++) p[i] = (float)(exp((double)p[i] - hi) / z);
}

static mm_status probs_cached(textgen_generator *g) {
    size_t fed = g->dec_start + (size_t)mm_decoder_position(g->dec);
    if (g->n - g->dec_start > (size_t)g->T) {
        /* window full: restart from the last T/2 tokens (at least 1) */
        size_t keep = (size_t)(g->T / 2 > 0 ? g->T / 2 : 1);
        mm_decoder_reset(g->dec);
        g->dec_start = g->n - keep;
        fed = g->dec_start;
    }
    for (size_t i = fed; i < g->n; i++) {
        mm_status st = mm_decoder_step(g->dec, g->hist[i], i + 1 == g->n ? g->probs : NULL);
        if (st) return st;
    }
    return MM_OK;
}

static mm_status probs_full(textgen_generator *g) {
    size_t w = g->n < (size_t)g->T ? g->n : (size_t)g->T;
    const int32_t *src = g->hist + (g->n - w);
    for (size_t t = 0; t < (size_t)g->T; t++) g->x.data[t] = t < w ? (float)src[t] : (float)src[w - 1];
    mm_array y;
    mm_status st = mm_predict(g->lm->model, &g->x, 1, &y);
    if (st) return st;
    memcpy(g->probs, y.data + (w - 1) * (size_t)g->V, (size_t)g->V * sizeof(float));
    mm_array_free(&y);
    return MM_OK;
}

mm_status textgen_generator_probs(textgen_generator *g, const float **probs) {
    if (!g->n) return mm_error(MM_ERR_STATE, "generator: call textgen_generator_start first");
    if (!g->probs_valid) {
        mm_status st = g->dec ? probs_cached(g) : probs_full(g);
        if (st) return st;
        to_distribution(g->probs, g->V);
        g->probs_valid = 1;
    }
    *probs = g->probs;
    return MM_OK;
}

mm_status textgen_generator_next(textgen_generator *g, const textgen_sampling *s, uint64_t *rng, int32_t *id) {
    const float *p;
    mm_status st = textgen_generator_probs(g, &p);
    if (st) return st;
    int32_t t = textgen_sample(p, g->V, s, rng, g->scratch);
    *id = t;
    return textgen_generator_push(g, t);
}

/* ------------------------------------------------------------------ evaluation */

mm_status textgen_evaluate(textgen_lm *lm, const char *text, size_t len, float val_fraction, long max_windows,
                           int batch_size, double *loss, double *accuracy, long *windows) {
    textgen_corpus c;
    mm_dataset d = {0};
    mm_status st = textgen_corpus_encode(lm->tok, text, len, val_fraction, &c);
    if (st) return st;
    size_t from = val_fraction > 0 ? c.n_train : 0;
    st = textgen_fixed_windows(c.ids + from, c.n - from, lm->cfg.context, max_windows, &d);
    textgen_corpus_free(&c);
    if (st) return st;
    if (!mm_model_is_compiled(lm->model))
        st = mm_compile(lm->model, .optimizer = "adam", .loss = "sparse_categorical_crossentropy", .metrics = "accuracy");
    mm_eval_result r = {0};
    if (!st) st = mm_evaluate(lm->model, &d, batch_size > 0 ? batch_size : 32, 1, &r);
    if (!st) {
        *loss = r.loss;
        *accuracy = r.accuracy;
        *windows = d.x.shape[0];
    }
    mm_eval_result_free(&r);
    mm_dataset_free(&d);
    return st;
}
