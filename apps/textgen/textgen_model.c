/* textgen: RNG, model configurations, the GPT and LSTM builders, and the "textgen" metadata
 * (a flat JSON object, written and parsed here). */
#include "common/strbuf.h"
#include "textgen/textgen.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------------ RNG */

uint64_t textgen_rng_next(uint64_t *state) {
    uint64_t z = (*state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

double textgen_rng_uniform(uint64_t *state) { return (double)(textgen_rng_next(state) >> 11) * (1.0 / 9007199254740992.0); }

/* ------------------------------------------------------------------ config */

textgen_config textgen_default_config(void) {
    return (textgen_config){.arch = TEXTGEN_GPT, .context = 128, .layers = 4, .heads = 4, .width = 128};
}

const char *textgen_arch_name(textgen_arch a) { return a == TEXTGEN_LSTM ? "lstm" : "gpt"; }

mm_status textgen_arch_parse(const char *name, textgen_arch *out) {
    if (name && !strcmp(name, "gpt")) *out = TEXTGEN_GPT;
    else if (name && !strcmp(name, "lstm")) *out = TEXTGEN_LSTM;
    else return mm_error(MM_ERR_ARG, "unknown architecture '%s' (expected gpt or lstm)", name ? name : "");
    return MM_OK;
}

mm_status textgen_check_config(const textgen_config *c) {
    if (c->arch != TEXTGEN_GPT && c->arch != TEXTGEN_LSTM) return mm_error(MM_ERR_ARG, "unknown architecture %d", (int)c->arch);
    if (c->vocab_size < 2) return mm_error(MM_ERR_ARG, "vocabulary size must be at least 2, got %d", c->vocab_size);
    if (c->context < 1 || c->context > 65536) return mm_error(MM_ERR_ARG, "context must be in 1..65536, got %d", c->context);
    if (c->layers < 1 || c->layers > 1024) return mm_error(MM_ERR_ARG, "layers must be in 1..1024, got %d", c->layers);
    if (c->width < 1 || c->width > 65536) return mm_error(MM_ERR_ARG, "width must be in 1..65536, got %d", c->width);
    if (c->arch == TEXTGEN_GPT) {
        if (c->heads < 1) return mm_error(MM_ERR_ARG, "heads must be at least 1, got %d", c->heads);
        if (c->width % c->heads)
            return mm_error(MM_ERR_ARG, "width %d is not divisible by %d heads", c->width, c->heads);
    }
    if (!(c->dropout >= 0 && c->dropout < 1)) return mm_error(MM_ERR_ARG, "dropout must be in [0, 1), got %g", c->dropout);
    return MM_OK;
}

/* ------------------------------------------------------------------ builders */

static int dropout(mm_model *m, float rate, int x) {
    return rate > 0 ? mm_call(m, mm_Dropout(.rate = rate), x) : x;
}

static mm_model *build_gpt(const textgen_config *c) {
    const int C = c->width;
    mm_model *m = mm_functional("textgen_gpt");
    int x = mm_input(m, 1, (int[]){c->context});
    int h = mm_call(m, mm_Embedding(.input_dim = c->vocab_size, .output_dim = C, .name = "token_embedding"), x);
    h = mm_call(m, mm_PositionEmbedding(.max_length = c->sinusoidal ? 0 : c->context, .name = "position_embedding"), h);
    h = dropout(m, c->dropout, h);
    for (int b = 0; b < c->layers; b++) {
        char n1[32], n2[32], na[32], nf1[32], nf2[32];
        snprintf(n1, sizeof n1, "block%d_ln1", b);
        snprintf(na, sizeof na, "block%d_attention", b);
        snprintf(n2, sizeof n2, "block%d_ln2", b);
        snprintf(nf1, sizeof nf1, "block%d_mlp_in", b);
        snprintf(nf2, sizeof nf2, "block%d_mlp_out", b);
        int a = mm_call(m, mm_LayerNormalization(.epsilon = 1e-5f, .name = n1), h);
        a = mm_call(m, mm_MultiHeadAttention(.num_heads = c->heads, .causal = 1, .dropout = c->dropout, .name = na), a);
        a = dropout(m, c->dropout, a);
        h = mm_call(m, mm_Add(), h, a);
        int f = mm_call(m, mm_LayerNormalization(.epsilon = 1e-5f, .name = n2), h);
        f = mm_call(m, mm_Dense(.units = 4 * C, .activation = "gelu", .name = nf1), f);
        f = mm_call(m, mm_Dense(.units = C, .name = nf2), f);
        f = dropout(m, c->dropout, f);
        h = mm_call(m, mm_Add(), h, f);
    }
    h = mm_call(m, mm_LayerNormalization(.epsilon = 1e-5f, .name = "final_ln"), h);
    int out = mm_call(m, mm_Dense(.units = c->vocab_size, .activation = "softmax", .name = "lm_head"), h);
    if (out < 0) {
        mm_model_free(m);
        return NULL;
    }
    return m;
}

static mm_model *build_lstm(const textgen_config *c) {
    mm_model *m = mm_functional("textgen_lstm");
    int x = mm_input(m, 1, (int[]){c->context});
    int h = mm_call(m, mm_Embedding(.input_dim = c->vocab_size, .output_dim = c->width, .name = "token_embedding"), x);
    for (int l = 0; l < c->layers; l++) {
        char name[32];
        snprintf(name, sizeof name, "lstm%d", l);
        if (l) h = dropout(m, c->dropout, h);
        h = mm_call(m, mm_LSTM(.units = c->width, .return_sequences = 1, .name = name), h);
    }
    h = dropout(m, c->dropout, h);
    int out = mm_call(m, mm_Dense(.units = c->vocab_size, .activation = "softmax", .name = "lm_head"), h);
    if (out < 0) {
        mm_model_free(m);
        return NULL;
    }
    return m;
}

mm_status textgen_build(const textgen_config *c, mm_model **out) {
    *out = NULL;
    mm_status st = textgen_check_config(c);
    if (st) return st;
    mm_model *m = c->arch == TEXTGEN_LSTM ? build_lstm(c) : build_gpt(c);
    if (!m) {
        char msg[512];
        snprintf(msg, sizeof msg, "%s", *mm_errmsg() ? mm_errmsg() : "failed");
        return mm_error(MM_ERR_ARG, "building the %s model: %s", textgen_arch_name(c->arch), msg);
    }
    *out = m;
    return MM_OK;
}

/* ------------------------------------------------------------------ metadata JSON */


mm_status textgen_meta_to_json(const textgen_config *c, const textgen_train_meta *t, char **json) {
    *json = NULL;
    sbuf b = {0};
    sb_printf(&b, "{\"format\":1,\"arch\":\"%s\",\"vocab_size\":%d,\"context\":%d,\"layers\":%d,\"heads\":%d,\"width\":%d,"
                  "\"position\":\"%s\",\"dropout\":%.9g",
              textgen_arch_name(c->arch), c->vocab_size, c->context, c->layers, c->arch == TEXTGEN_GPT ? c->heads : 0,
              c->width, c->sinusoidal ? "sinusoidal" : "learned", c->dropout);
    if (t) {
        /* tokenizer kinds are fixed words (char, bpe, gpt2): no escaping needed */
        for (const char *p = t->tokenizer; *p; p++)
            if (!isalnum((unsigned char)*p)) {
                free(b.s);
                return mm_error(MM_ERR_ARG, "textgen metadata: bad tokenizer name");
            }
        sb_printf(&b, ",\"tokenizer\":\"%s\",\"batch_size\":%d,\"steps\":%ld,\"eval_every\":%d,\"seed\":\"%llu\","
                      "\"val_fraction\":%.9g,\"val_windows\":%ld,\"limit\":%ld",
                  t->tokenizer, t->batch_size, t->steps, t->eval_every, (unsigned long long)t->seed, t->val_fraction,
                  t->val_windows, t->limit);
        if (t->csv_column[0]) {
            sb_printf(&b, ",\"csv_column\":\"");
            for (const char *p = t->csv_column; *p; p++) {
                if ((unsigned char)*p < 0x20) {
                    free(b.s);
                    return mm_error(MM_ERR_ARG, "textgen metadata: control character in the CSV column name");
                }
                if (*p == '"' || *p == '\\') sb_printf(&b, "\\%c", *p);
                else sb_printf(&b, "%c", *p);
            }
            sb_printf(&b, "\"");
        }
    }
    sb_printf(&b, "}");
    if (b.failed) {
        free(b.s);
        return mm_error(MM_ERR_NOMEM, "textgen metadata: out of memory");
    }
    *json = b.s;
    return MM_OK;
}

/* A minimal parser for one flat object of string, number and boolean values. */
typedef struct jfield {
    char key[32];
    int is_string;
    char str[64];
    double num;
} jfield;

static const char *skip_ws(const char *p) {
    while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r') p++;
    return p;
}

/* Reads a JSON string (no \u escapes needed by our keys; they are accepted for ASCII). */
static const char *read_string(const char *p, char *out, size_t cap) {
    if (*p != '"') return NULL;
    p++;
    size_t n = 0;
    while (*p && *p != '"') {
        char ch = *p++;
        if (ch == '\\') {
            ch = *p++;
            switch (ch) {
            case '"': case '\\': case '/': break;
            case 'n': ch = '\n'; break;
            case 't': ch = '\t'; break;
            default: return NULL;
            }
        } else if ((unsigned char)ch < 0x20) {
            return NULL;
        }
        if (n + 1 >= cap) return NULL;
        out[n++] = ch;
    }
    if (*p != '"') return NULL;
    out[n] = 0;
    return p + 1;
}

static mm_status parse_flat(const char *json, jfield *f, int max, int *nf) {
    *nf = 0;
    const char *p = skip_ws(json);
    if (*p != '{') return mm_error(MM_ERR_FORMAT, "textgen metadata: not a JSON object");
    p = skip_ws(p + 1);
    if (*p == '}') return MM_OK;
    for (;;) {
        if (*nf >= max) return mm_error(MM_ERR_FORMAT, "textgen metadata: too many fields");
        jfield *x = &f[(*nf)++];
        memset(x, 0, sizeof *x);
        p = read_string(p, x->key, sizeof x->key);
        if (!p) return mm_error(MM_ERR_FORMAT, "textgen metadata: bad key near field %d", *nf);
        p = skip_ws(p);
        if (*p != ':') return mm_error(MM_ERR_FORMAT, "textgen metadata: expected ':' after \"%s\"", x->key);
        p = skip_ws(p + 1);
        if (*p == '"') {
            x->is_string = 1;
            p = read_string(p, x->str, sizeof x->str);
            if (!p) return mm_error(MM_ERR_FORMAT, "textgen metadata: bad string value for \"%s\"", x->key);
        } else if (!strncmp(p, "true", 4) || !strncmp(p, "false", 5)) {
            x->num = *p == 't';
            p += *p == 't' ? 4 : 5;
        } else {
            char *end;
            errno = 0;
            x->num = strtod(p, &end);
            if (end == p || errno || !isfinite(x->num))
                return mm_error(MM_ERR_FORMAT, "textgen metadata: bad value for \"%s\"", x->key);
            p = end;
        }
        p = skip_ws(p);
        if (*p == '}') break;
        if (*p != ',') return mm_error(MM_ERR_FORMAT, "textgen metadata: expected ',' or '}' after \"%s\"", x->key);
        p = skip_ws(p + 1);
    }
    if (*skip_ws(p + 1)) return mm_error(MM_ERR_FORMAT, "textgen metadata: text after the object");
    return MM_OK;
}

static const jfield *field(const jfield *f, int n, const char *key) {
    for (int i = 0; i < n; i++)
        if (!strcmp(f[i].key, key)) return &f[i];
    return NULL;
}

static mm_status get_int(const jfield *f, int n, const char *key, long lo, long hi, int required, long *out) {
    const jfield *x = field(f, n, key);
    if (!x) return required ? mm_error(MM_ERR_FORMAT, "textgen metadata: missing \"%s\"", key) : MM_OK;
    if (x->is_string || x->num != floor(x->num) || x->num < (double)lo || x->num > (double)hi)
        return mm_error(MM_ERR_FORMAT, "textgen metadata: \"%s\" must be an integer in %ld..%ld", key, lo, hi);
    *out = (long)x->num;
    return MM_OK;
}

mm_status textgen_meta_from_json(const char *json, textgen_config *c, textgen_train_meta *t) {
    static const jfield zero;
    jfield f[32];
    for (int i = 0; i < 32; i++) f[i] = zero;
    int n = 0;
    if (!json) return mm_error(MM_ERR_FORMAT, "textgen metadata: missing");
    mm_status st = parse_flat(json, f, 32, &n);
    if (st) return st;
    textgen_config cfg = {0};
    long v = 0;
    if ((st = get_int(f, n, "format", 1, 1, 1, &v))) return st;
    const jfield *a = field(f, n, "arch");
    if (!a || !a->is_string) return mm_error(MM_ERR_FORMAT, "textgen metadata: missing string \"arch\"");
    if (textgen_arch_parse(a->str, &cfg.arch)) return mm_error(MM_ERR_FORMAT, "textgen metadata: unknown arch \"%s\"", a->str);
    if ((st = get_int(f, n, "vocab_size", 2, 100000000, 1, &v))) return st;
    cfg.vocab_size = (int)v;
    if ((st = get_int(f, n, "context", 1, 65536, 1, &v))) return st;
    cfg.context = (int)v;
    if ((st = get_int(f, n, "layers", 1, 1024, 1, &v))) return st;
    cfg.layers = (int)v;
    if ((st = get_int(f, n, "width", 1, 65536, 1, &v))) return st;
    cfg.width = (int)v;
    v = 0;
    if ((st = get_int(f, n, "heads", 0, 65536, cfg.arch == TEXTGEN_GPT, &v))) return st;
    cfg.heads = (int)v;
    const jfield *pos = field(f, n, "position");
    if (pos) {
        if (!pos->is_string || (strcmp(pos->str, "learned") && strcmp(pos->str, "sinusoidal")))
            return mm_error(MM_ERR_FORMAT, "textgen metadata: \"position\" must be \"learned\" or \"sinusoidal\"");
        cfg.sinusoidal = !strcmp(pos->str, "sinusoidal");
    }
    const jfield *d = field(f, n, "dropout");
    if (d && (d->is_string || !(d->num >= 0 && d->num < 1)))
        return mm_error(MM_ERR_FORMAT, "textgen metadata: \"dropout\" must be a number in [0, 1)");
    cfg.dropout = d ? (float)d->num : 0;
    if (textgen_check_config(&cfg)) {
        char msg[512];
        snprintf(msg, sizeof msg, "%s", mm_errmsg());
        return mm_error(MM_ERR_FORMAT, "textgen metadata: %s", msg);
    }
    if (t) {
        memset(t, 0, sizeof *t);
        const jfield *k = field(f, n, "tokenizer");
        if (k && (!k->is_string || strlen(k->str) >= sizeof t->tokenizer))
            return mm_error(MM_ERR_FORMAT, "textgen metadata: bad \"tokenizer\"");
        if (k) memcpy(t->tokenizer, k->str, strlen(k->str) + 1);
        if ((st = get_int(f, n, "batch_size", 1, 1 << 24, 0, &v))) return st;
        t->batch_size = (int)(field(f, n, "batch_size") ? v : 0);
        v = 0;
        if ((st = get_int(f, n, "steps", 0, 1L << 40, 0, &v))) return st;
        t->steps = v;
        v = 0;
        if ((st = get_int(f, n, "eval_every", 0, 1 << 30, 0, &v))) return st;
        t->eval_every = (int)v;
        v = 0;
        if ((st = get_int(f, n, "val_windows", 0, 1L << 40, 0, &v))) return st;
        t->val_windows = v;
        v = 0;
        if ((st = get_int(f, n, "limit", 0, 1L << 50, 0, &v))) return st;
        t->limit = v;
        const jfield *s = field(f, n, "seed");
        if (s) {
            char *end;
            errno = 0;
            unsigned long long u = s->is_string ? strtoull(s->str, &end, 10) : 0;
            if (!s->is_string || errno || end == s->str || *end)
                return mm_error(MM_ERR_FORMAT, "textgen metadata: \"seed\" must be a decimal string");
            t->seed = u;
        }
        const jfield *cc = field(f, n, "csv_column");
        if (cc && (!cc->is_string || strlen(cc->str) >= sizeof t->csv_column))
            return mm_error(MM_ERR_FORMAT, "textgen metadata: bad \"csv_column\"");
        if (cc) memcpy(t->csv_column, cc->str, strlen(cc->str) + 1);
        const jfield *vf = field(f, n, "val_fraction");
        if (vf && (vf->is_string || !(vf->num >= 0 && vf->num < 1)))
            return mm_error(MM_ERR_FORMAT, "textgen metadata: \"val_fraction\" must be in [0, 1)");
        t->val_fraction = vf ? (float)vf->num : 0.1f;
    }
    *c = cfg;
    return MM_OK;
}
