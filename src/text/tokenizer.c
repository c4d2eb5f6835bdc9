/* Tokenizer handle: what char and BPE tokenizers share (token byte table, decode, JSON
 * dispatch, streaming output) and the small hash maps used by both. */
#include "text/text_internal.h"

#include <cjson/cJSON.h>
#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

/* ------------------------------------------------------------------ maps */

static size_t pow2_at_least(size_t n) {
    size_t c = 16;
    while (c < n) c *= 2;
    return c;
}

int mm__u64map_init(mm__u64map *m, size_t expect) {
    m->cap = pow2_at_least(expect * 2 + 1);
    m->n = 0;
    m->keys = malloc(m->cap * sizeof *m->keys);
    m->vals = malloc(m->cap * sizeof *m->vals);
    if (!m->keys || !m->vals) {
        mm__u64map_free(m);
        return -1;
    }
    memset(m->vals, 0xff, m->cap * sizeof *m->vals);
    return 0;
}

void mm__u64map_free(mm__u64map *m) {
    free(m->keys);
    free(m->vals);
    m->keys = NULL;
    m->vals = NULL;
    m->cap = m->n = 0;
}

static int u64map_grow(mm__u64map *m) {
    mm__u64map g;
    if (mm__u64map_init(&g, m->cap)) return -1; /* doubles the capacity */
    for (size_t i = 0; i < m->cap; i++) {
        if (m->vals[i] < 0) continue;
        size_t mask = g.cap - 1, j = (size_t)mm__mix64(m->keys[i]) & mask;
        while (g.vals[j] >= 0) j = (j + 1) & mask;
        g.keys[j] = m->keys[i];
        g.vals[j] = m->vals[i];
    }
    g.n = m->n;
    mm__u64map_free(m);
    *m = g;
    return 0;
}

int32_t mm__u64map_put(mm__u64map *m, uint64_t key, int32_t val) {
    if (!m->cap && mm__u64map_init(m, 16)) return -1;
    if ((m->n + 1) * 2 > m->cap && u64map_grow(m)) return -1;
    size_t mask = m->cap - 1, i = (size_t)mm__mix64(key) & mask;
    while (m->vals[i] >= 0) {
        if (m->keys[i] == key) return m->vals[i];
        i = (i + 1) & mask;
    }
    m->keys[i] = key;
    m->vals[i] = val;
    m->n++;
    return val;
}

int mm__bmap_init(mm__bmap *m, size_t expect) {
    m->cap = pow2_at_least(expect * 2 + 1);
    m->n = 0;
    m->e = malloc(m->cap * sizeof *m->e);
    if (!m->e) {
        m->cap = 0;
        return -1;
    }
    for (size_t i = 0; i < m->cap; i++) m->e[i].val = -1;
    return 0;
}

void mm__bmap_free(mm__bmap *m) {
    free(m->e);
    m->e = NULL;
    m->cap = m->n = 0;
}

int mm__bmap_reserve(mm__bmap *m, size_t extra) {
    if ((m->n + extra) * 2 <= m->cap) return 0;
    size_t cap = m->cap ? m->cap : 16;
    while ((m->n + extra) * 2 > cap) cap *= 2;
    mm__bent *e = malloc(cap * sizeof *e);
    if (!e) return -1;
    for (size_t i = 0; i < cap; i++) e[i].val = -1;
    for (size_t i = 0; i < m->cap; i++) {
        if (m->e[i].val < 0) continue;
        size_t j = (size_t)m->e[i].hash & (cap - 1);
        while (e[j].val >= 0) j = (j + 1) & (cap - 1);
        e[j] = m->e[i];
    }
    free(m->e);
    m->e = e;
    m->cap = cap;
    return 0;
}

/* ------------------------------------------------------------------ handle */

mm_tokenizer *mm__tok_alloc(int kind) {
    mm_tokenizer *t = calloc(1, sizeof *t);
    if (!t) return NULL;
    t->kind = kind;
    t->unk_id = -1;
    for (int i = 0; i < 128; i++) t->ascii[i] = -1;
    for (int i = 0; i < 256; i++) t->byte_id[i] = -1;
    return t;
}

mm_status mm__tok_index_bytes(mm_tokenizer *t) {
    mm__bmap_free(&t->by_bytes);
    if (mm__bmap_init(&t->by_bytes, (size_t)t->vocab_size))
        return mm_error(MM_ERR_NOMEM, "tokenizer: out of memory");
    for (int id = 0; id < t->vocab_size; id++) {
        const char *k = t->pool + t->off[id];
        uint64_t h = mm__hash_bytes(k, t->len[id]);
        mm__bent *e = mm__bmap_slot(&t->by_bytes, t->pool, k, t->len[id], h);
        if (e->val >= 0) continue; /* keep the first id with these bytes */
        e->hash = h;
        e->off = t->off[id];
        e->len = t->len[id];
        e->val = id;
        t->by_bytes.n++;
    }
    return MM_OK;
}

void mm_tokenizer_free(mm_tokenizer *t) {
    if (!t) return;
    free(t->pool);
    free(t->off);
    free(t->len);
    mm__bmap_free(&t->by_bytes);
    free(t->cps);
    free(t->merge_a);
    free(t->merge_b);
    free(t->merge_c);
    mm__u64map_free(&t->ranks);
    free(t->special);
    if (t->re) pcre2_code_free((pcre2_code *)t->re);
    free(t);
}

int mm_tokenizer_vocab_size(const mm_tokenizer *t) { return t ? t->vocab_size : 0; }

const char *mm_tokenizer_kind(const mm_tokenizer *t) {
    if (!t) return "";
    return t->kind == MM__TOK_CHAR ? "char" : "bpe";
}

int32_t mm_tokenizer_unk_id(const mm_tokenizer *t) { return t ? t->unk_id : -1; }

mm_status mm_tokenizer_token_bytes(const mm_tokenizer *t, int32_t id, const char **bytes,
                                   size_t *len) {
    if (!t || !bytes || !len) return mm_error(MM_ERR_ARG, "tokenizer_token_bytes: NULL argument");
    if (id < 0 || id >= t->vocab_size)
        return mm_error(MM_ERR_ARG, "token id %d is out of range (vocabulary size %d)", (int)id,
                        t->vocab_size);
    *bytes = t->pool + t->off[id];
    *len = t->len[id];
    return MM_OK;
}

int32_t mm_tokenizer_lookup(const mm_tokenizer *t, const char *bytes, size_t len) {
    if (!t || (!bytes && len) || !t->by_bytes.cap) return -1;
    if (!bytes) bytes = "";
    mm__bent *e = mm__bmap_slot(&t->by_bytes, t->pool, bytes, len, mm__hash_bytes(bytes, len));
    return e->val;
}

mm_status mm_tokenizer_encode(const mm_tokenizer *t, const char *text, size_t len, int32_t **ids,
                              size_t *n) {
    if (!t || !ids || !n || (!text && len))
        return mm_error(MM_ERR_ARG, "tokenizer_encode: NULL argument");
    *ids = NULL;
    *n = 0;
    if (!text) text = "";
    return t->kind == MM__TOK_CHAR ? mm__char_encode(t, text, len, ids, n)
                                   : mm__bpe_encode(t, text, len, ids, n);
}

mm_status mm_tokenizer_decode(const mm_tokenizer *t, const int32_t *ids, size_t n, char **text,
                              size_t *len) {
    if (!t || !text || !len || (!ids && n))
        return mm_error(MM_ERR_ARG, "tokenizer_decode: NULL argument");
    *text = NULL;
    *len = 0;
    size_t total = 0;
    for (size_t i = 0; i < n; i++) {
        if (ids[i] < 0 || ids[i] >= t->vocab_size)
            return mm_error(MM_ERR_ARG,
                            "tokenizer_decode: token id %d at position %zu is out of range "
                            "(vocabulary size %d)",
                            (int)ids[i], i, t->vocab_size);
        total += t->len[ids[i]];
    }
    char *out = malloc(total + 1);
    if (!out) return mm_error(MM_ERR_NOMEM, "tokenizer_decode: out of memory (%zu bytes)", total);
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        memcpy(out + o, t->pool + t->off[ids[i]], t->len[ids[i]]);
        o += t->len[ids[i]];
    }
    out[o] = 0;
    *text = out;
    *len = o;
    return MM_OK;
}

/* ------------------------------------------------------------------ JSON */

mm_status mm_tokenizer_to_json(const mm_tokenizer *t, char **json) {
    if (!t || !json) return mm_error(MM_ERR_ARG, "tokenizer_to_json: NULL argument");
    *json = NULL;
    cJSON *root = cJSON_CreateObject();
    if (!root) return mm_error(MM_ERR_NOMEM, "tokenizer_to_json: out of memory");
    mm_status st = t->kind == MM__TOK_CHAR ? mm__char_to_json(t, root) : mm__bpe_to_json(t, root);
    if (st == MM_OK) {
        *json = cJSON_PrintUnformatted(root);
        if (!*json) st = mm_error(MM_ERR_NOMEM, "tokenizer_to_json: out of memory");
    }
    cJSON_Delete(root);
    return st;
}

mm_status mm_tokenizer_from_json(const char *json, mm_tokenizer **out) {
    if (!json || !out) return mm_error(MM_ERR_ARG, "tokenizer_from_json: NULL argument");
    *out = NULL;
    cJSON *root = cJSON_Parse(json);
    if (!root) {
        const char *at = cJSON_GetErrorPtr();
        size_t off = at && at >= json ? (size_t)(at - json) : 0;
        return mm_error(MM_ERR_FORMAT, "tokenizer JSON: not valid JSON (error near offset %zu)",
                        off);
    }
    mm_status st;
    const cJSON *type = cJSON_GetObjectItemCaseSensitive(root, "type");
    if (!cJSON_IsObject(root))
        st = mm_error(MM_ERR_FORMAT, "tokenizer JSON: top level is not an object");
    else if (!cJSON_IsString(type))
        st = mm_error(MM_ERR_FORMAT, "tokenizer JSON: missing string field \"type\"");
    else if (strcmp(type->valuestring, "char") == 0)
        st = mm__char_from_json(root, out);
    else if (strcmp(type->valuestring, "bpe") == 0)
        st = mm__bpe_from_json(root, out);
    else
        st = mm_error(MM_ERR_FORMAT,
                      "tokenizer JSON: unknown type \"%.40s\" (expected \"char\" or \"bpe\")",
                      type->valuestring);
    cJSON_Delete(root);
    return st;
}

/* ------------------------------------------------------------------ streaming */

struct mm_token_stream {
    const mm_tokenizer *tok;
    unsigned char held[4]; /* incomplete character carried to the next push */
    size_t nheld;
    char *out;
    size_t cap;
};

mm_status mm_token_stream_new(const mm_tokenizer *tok, mm_token_stream **out) {
    if (!tok || !out) return mm_error(MM_ERR_ARG, "token_stream_new: NULL argument");
    *out = calloc(1, sizeof **out);
    if (!*out) return mm_error(MM_ERR_NOMEM, "token_stream_new: out of memory");
    (*out)->tok = tok;
    return MM_OK;
}

void mm_token_stream_free(mm_token_stream *s) {
    if (!s) return;
    free(s->out);
    free(s);
}

static int stream_reserve(mm_token_stream *s, size_t need) {
    if (need <= s->cap) return 0;
    size_t cap = s->cap ? s->cap : 64;
    while (cap < need) cap *= 2;
    char *o = realloc(s->out, cap);
    if (!o) return -1;
    s->out = o;
    s->cap = cap;
    return 0;
}

static const char REPLACEMENT[3] = {(char)0xEF, (char)0xBF, (char)0xBD};

/* Copies the valid characters of held + (b, n) to s->out, invalid bytes as U+FFFD, and holds
 * back a trailing incomplete character unless final. */
static mm_status stream_emit(mm_token_stream *s, const unsigned char *b, size_t n, int final,
                             const char **text, size_t *len) {
    size_t total = s->nheld + n;
    /* each input byte gives at most 3 output bytes (U+FFFD) */
    if (stream_reserve(s, total * 3 + 1))
        return mm_error(MM_ERR_NOMEM, "token_stream: out of memory");
    unsigned char tmp[8];
    size_t o = 0, i = 0;
    /* first finish the held bytes together with the start of the new ones */
    while (s->nheld) {
        size_t k = 0;
        for (; k < s->nheld; k++) tmp[k] = s->held[k];
        size_t take = n < 4 ? n : 4;
        for (size_t j = 0; j < take; j++) tmp[k + j] = b[j];
        uint32_t cp;
        const char *why;
        int r = mm__utf8_step(tmp, s->nheld + take, &cp, &why);
        if (r > 0 && (size_t)r >= s->nheld) {
            memcpy(s->out + o, tmp, (size_t)r);
            o += (size_t)r;
            i = (size_t)r - s->nheld; /* bytes of b consumed */
            s->nheld = 0;
        } else if (r > 0) {
            memcpy(s->out + o, tmp, (size_t)r);
            o += (size_t)r;
            s->nheld -= (size_t)r;
            memmove(s->held, s->held + r, s->nheld);
        } else if (r == 0) {
            if (!final) { /* still incomplete: hold everything */
                for (size_t j = 0; j < take; j++) s->held[s->nheld++] = b[j];
                s->out[o] = 0;
                *text = s->out;
                *len = o;
                return MM_OK;
            }
            /* flushing an incomplete character: one U+FFFD for all of it (n == 0 here) */
            memcpy(s->out + o, REPLACEMENT, 3);
            o += 3;
            s->nheld = 0;
        } else { /* invalid: one U+FFFD for the maximal invalid subpart */
            size_t k = (size_t)-r;
            memcpy(s->out + o, REPLACEMENT, 3);
            o += 3;
            if (k >= s->nheld) {
                i = k - s->nheld;
                s->nheld = 0;
            } else {
                s->nheld -= k;
                memmove(s->held, s->held + k, s->nheld);
            }
        }
    }
    while (i < n) {
        uint32_t cp;
        const char *why;
        int r = mm__utf8_step(b + i, n - i, &cp, &why);
        if (r > 0) {
            memcpy(s->out + o, b + i, (size_t)r);
            o += (size_t)r;
            i += (size_t)r;
        } else if (r == 0 && !final) {
            while (i < n) s->held[s->nheld++] = b[i++];
        } else if (r == 0) {
            memcpy(s->out + o, REPLACEMENT, 3);
            o += 3;
            i = n;
        } else {
            memcpy(s->out + o, REPLACEMENT, 3);
            o += 3;
            i += (size_t)-r;
        }
    }
    s->out[o] = 0;
    *text = s->out;
    *len = o;
    return MM_OK;
}

mm_status mm_token_stream_push(mm_token_stream *s, int32_t id, const char **text, size_t *len) {
    if (!s || !text || !len) return mm_error(MM_ERR_ARG, "token_stream_push: NULL argument");
    *text = "";
    *len = 0;
    const char *b = NULL;
    size_t n = 0;
    mm_status st = mm_tokenizer_token_bytes(s->tok, id, &b, &n);
    if (st != MM_OK) return st;
    return stream_emit(s, (const unsigned char *)b, n, 0, text, len);
}

mm_status mm_token_stream_flush(mm_token_stream *s, const char **text, size_t *len) {
    if (!s || !text || !len) return mm_error(MM_ERR_ARG, "token_stream_flush: NULL argument");
    return stream_emit(s, NULL, 0, 1, text, len);
}
