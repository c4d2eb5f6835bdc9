/* Byte-level BPE as GPT-2 (openai/gpt-2 src/encoder.py): pre-tokenization with GPT-2's regex
 * (PCRE2, UTF + UCP), then per piece the bytes are merged pairwise, always the adjacent pair
 * of lowest merge rank first (leftmost among equals). Also GPT-2 file loading and the JSON
 * form. Training lives in bpe_train.c. */
#include "text/text_internal.h"

#include <cjson/cJSON.h>
#include <errno.h>
#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>
#include <stdio.h>

/* GPT-2's pattern with \s spelled out as Unicode White_Space (Z + \t\n\v\f\r + U+0085), as
 * in tiktoken; PCRE2's own \s under UCP omits U+0085. */
#define WS "\\t\\n\\x0B\\f\\r\\x{85}\\p{Z}"
static const char GPT2_PATTERN[] = "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^" WS
                                   "\\p{L}\\p{N}]+|[" WS "]+(?![^" WS "])|[" WS "]+";

#define MAX_TOKEN_BYTES (1u << 16)
#define MAX_POOL_BYTES ((size_t)1 << 28)

/* ------------------------------------------------------------------ byte alphabet */

uint32_t mm__gpt2_byte_cp(int b) {
    if ((b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF))
        return (uint32_t)b;
    if (b <= 0x20) return 256u + (uint32_t)b;
    if (b >= 0x7F && b <= 0xA0) return 256u + 33u + (uint32_t)(b - 0x7F);
    return 256u + 67u; /* 0xAD */
}

static int gpt2_cp_byte(uint32_t cp) {
    if ((cp >= 0x21 && cp <= 0x7E) || (cp >= 0xA1 && cp <= 0xAC) || (cp >= 0xAE && cp <= 0xFF))
        return (int)cp;
    if (cp >= 256 && cp <= 256 + 32) return (int)(cp - 256);
    if (cp >= 256 + 33 && cp <= 256 + 66) return (int)(cp - 256 - 33 + 0x7F);
    if (cp == 256 + 67) return 0xAD;
    return -1;
}

/* Converts a token written in GPT-2's alphabet (s, n bytes of UTF-8) to raw bytes in out
 * (at least n bytes). Returns the byte count, or -1 with *bad the offending code point
 * (0xFFFFFFFF for invalid UTF-8). */
static long alphabet_to_bytes(const char *s, size_t n, char *out, uint32_t *bad) {
    size_t i = 0, o = 0;
    while (i < n) {
        uint32_t cp;
        const char *why;
        int r = mm__utf8_step((const unsigned char *)s + i, n - i, &cp, &why);
        if (r <= 0) {
            *bad = 0xFFFFFFFFu;
            return -1;
        }
        int b = gpt2_cp_byte(cp);
        if (b < 0) {
            *bad = cp;
            return -1;
        }
        out[o++] = (char)b;
        i += (size_t)r;
    }
    return (long)o;
}

/* bytes -> NUL-terminated alphabet string (malloc'ed). */
static char *bytes_to_alphabet(const char *b, size_t n) {
    char *s = malloc(n * 2 + 1);
    if (!s) return NULL;
    size_t o = 0;
    for (size_t i = 0; i < n; i++) o += (size_t)mm_utf8_encode(mm__gpt2_byte_cp((unsigned char)b[i]), s + o);
    s[o] = 0;
    return s;
}

/* ------------------------------------------------------------------ regex */

mm_status mm__bpe_compile_regex(mm_tokenizer *t) {
    if (t->re) return MM_OK;
    int err;
    PCRE2_SIZE eoff;
    pcre2_code *re = pcre2_compile((PCRE2_SPTR)GPT2_PATTERN, PCRE2_ZERO_TERMINATED,
                                   PCRE2_UTF | PCRE2_UCP, &err, &eoff, NULL);
    if (!re) {
        PCRE2_UCHAR msg[256];
        pcre2_get_error_message(err, msg, sizeof msg);
        return mm_error(MM_ERR_STATE, "bpe: cannot compile the pre-tokenization regex: %s",
                        (const char *)msg);
    }
    pcre2_jit_compile(re, PCRE2_JIT_COMPLETE); /* optional: falls back to the interpreter */
    t->re = re;
    return MM_OK;
}

mm_status mm__bpe_pieces(const mm_tokenizer *t, const char *text, size_t len, mm__piece_fn fn,
                         void *ctx) {
    pcre2_code *re = t->re;
    pcre2_match_data *md = pcre2_match_data_create_from_pattern(re, NULL);
    if (!md) return mm_error(MM_ERR_NOMEM, "bpe: out of memory");
    mm_status st = MM_OK;
    size_t pos = 0;
    while (pos < len && st == MM_OK) {
        int rc = pcre2_match(re, (PCRE2_SPTR)text, len, pos, PCRE2_NO_UTF_CHECK, md, NULL);
        if (rc == PCRE2_ERROR_NOMATCH) { /* cannot happen: the pattern matches any character */
            st = fn(ctx, text + pos, len - pos);
            break;
        }
        if (rc < 0) {
            PCRE2_UCHAR msg[256];
            pcre2_get_error_message(rc, msg, sizeof msg);
            st = mm_error(MM_ERR_STATE, "bpe: pre-tokenization failed at byte offset %zu: %s",
                          pos, (const char *)msg);
            break;
        }
        PCRE2_SIZE *ov = pcre2_get_ovector_pointer(md);
        size_t s = ov[0], e = ov[1];
        if (s > pos) st = fn(ctx, text + pos, s - pos); /* never happens either; kept lossless */
        if (st != MM_OK) break;
        if (e <= s) { /* empty match: impossible with this pattern; step one character */
            uint32_t cp;
            const char *why;
            int r = mm__utf8_step((const unsigned char *)text + s, len - s, &cp, &why);
            e = s + (size_t)(r > 0 ? r : 1);
        }
        st = fn(ctx, text + s, e - s);
        pos = e;
    }
    pcre2_match_data_free(md);
    return st;
}

/* ------------------------------------------------------------------ finishing */

mm_status mm__bpe_finish(mm_tokenizer *t, const char *what, const char *const *sp_bytes,
                         const uint32_t *sp_len) {
    int nv = t->vocab_size, nm = t->n_merges;
    if (nv < 256)
        return mm_error(MM_ERR_FORMAT, "%s: vocabulary size %d is below 256 (the byte tokens)",
                        what, nv);
    t->off = malloc((size_t)nv * sizeof *t->off);
    t->len = malloc((size_t)nv * sizeof *t->len);
    if (!t->special) t->special = calloc((size_t)nv, 1);
    int32_t *order = malloc((size_t)nv * sizeof *order);   /* ids in the order bytes are known */
    int32_t *def = malloc((size_t)nv * sizeof *def);       /* defining merge of an id, or -1 */
    if (!t->off || !t->len || !t->special || !order || !def) {
        free(order);
        free(def);
        return mm_error(MM_ERR_NOMEM, "%s: out of memory", what);
    }
    mm_status st = MM_OK;
    const uint32_t UNKNOWN = 0xFFFFFFFFu;
    for (int id = 0; id < nv; id++) t->len[id] = UNKNOWN, def[id] = -1;
    int nord = 0;
    size_t total = 0;
    for (int b = 0; b < 256; b++) {
        int32_t id = t->byte_id[b];
        if (id < 0 || id >= nv) {
            st = mm_error(MM_ERR_FORMAT, "%s: byte 0x%02X has token id %d, outside [0, %d)", what,
                          b, (int)id, nv);
            goto done;
        }
        if (t->len[id] != UNKNOWN) {
            st = mm_error(MM_ERR_FORMAT, "%s: token id %d is given to two bytes", what, (int)id);
            goto done;
        }
        if (t->special[id]) {
            st = mm_error(MM_ERR_FORMAT, "%s: token id %d is both a byte and a special token",
                          what, (int)id);
            goto done;
        }
        t->len[id] = 1;
        order[nord++] = id;
        total += 1;
    }
    for (int id = 0; id < nv; id++) {
        if (!t->special[id]) continue;
        if (!sp_bytes || !sp_len || sp_len[id] > MAX_TOKEN_BYTES) {
            st = mm_error(MM_ERR_FORMAT, "%s: special token id %d has no (or too long) text",
                          what, id);
            goto done;
        }
        t->len[id] = sp_len[id];
        order[nord++] = id;
        total += sp_len[id];
    }
    if (mm__u64map_init(&t->ranks, (size_t)nm)) {
        st = mm_error(MM_ERR_NOMEM, "%s: out of memory", what);
        goto done;
    }
    for (int r = 0; r < nm; r++) {
        int32_t a = t->merge_a[r], b = t->merge_b[r], c = t->merge_c[r];
        if (a < 0 || a >= nv || b < 0 || b >= nv || c < 0 || c >= nv) {
            st = mm_error(MM_ERR_FORMAT,
                          "%s: merge %d (%d + %d -> %d) refers to a token id outside [0, %d)",
                          what, r, (int)a, (int)b, (int)c, nv);
            goto done;
        }
        if (t->special[a] || t->special[b] || t->special[c]) {
            st = mm_error(MM_ERR_FORMAT, "%s: merge %d (%d + %d -> %d) involves a special token",
                          what, r, (int)a, (int)b, (int)c);
            goto done;
        }
        if (c < nv && t->len[c] == 1 && def[c] < 0) {
            st = mm_error(MM_ERR_FORMAT, "%s: merge %d produces id %d, which is a byte token",
                          what, r, (int)c);
            goto done;
        }
        int32_t got = mm__u64map_put(&t->ranks, mm__pair_key(a, b), r);
        if (got < 0) {
            st = mm_error(MM_ERR_NOMEM, "%s: out of memory", what);
            goto done;
        }
        if (got != r) {
            st = mm_error(MM_ERR_FORMAT, "%s: merge %d (%d + %d) duplicates merge %d", what, r,
                          (int)a, (int)b, (int)got);
            goto done;
        }
    }
    /* merge results: resolve in passes (one pass when merges only use earlier tokens) */
    int pending = nm, progress = 1;
    uint8_t *done_m = calloc((size_t)nm + 1, 1);
    if (!done_m) {
        st = mm_error(MM_ERR_NOMEM, "%s: out of memory", what);
        goto done;
    }
    while (pending && progress) {
        progress = 0;
        for (int r = 0; r < nm; r++) {
            if (done_m[r]) continue;
            int32_t a = t->merge_a[r], b = t->merge_b[r], c = t->merge_c[r];
            if (t->len[a] == UNKNOWN || t->len[b] == UNKNOWN) continue;
            size_t l = (size_t)t->len[a] + t->len[b];
            if (l > MAX_TOKEN_BYTES) {
                free(done_m);
                st = mm_error(MM_ERR_FORMAT, "%s: merge %d makes a token longer than %u bytes",
                              what, r, MAX_TOKEN_BYTES);
                goto done;
            }
            if (t->len[c] == UNKNOWN) {
                t->len[c] = (uint32_t)l;
                def[c] = r;
                order[nord++] = c;
                total += l;
                if (total > MAX_POOL_BYTES) {
                    free(done_m);
                    st = mm_error(MM_ERR_FORMAT, "%s: token bytes exceed %zu bytes in total",
                                  what, MAX_POOL_BYTES);
                    goto done;
                }
            } else if (t->len[c] != l) {
                free(done_m);
                st = mm_error(MM_ERR_FORMAT,
                              "%s: merges %d and %d both produce id %d but with different bytes",
                              what, def[c], r, (int)c);
                goto done;
            }
            done_m[r] = 1;
            pending--;
            progress = 1;
        }
    }
    if (pending) {
        int r = 0;
        while (done_m[r]) r++;
        free(done_m);
        st = mm_error(MM_ERR_FORMAT,
                      "%s: merge %d (%d + %d) uses a token that no byte, merge or special token "
                      "defines",
                      what, r, (int)t->merge_a[r], (int)t->merge_b[r]);
        goto done;
    }
    free(done_m);
    if (nord != nv) {
        int id = 0;
        while (t->len[id] != UNKNOWN) id++;
        st = mm_error(MM_ERR_FORMAT,
                      "%s: token id %d is neither a byte, a merge result nor a special token",
                      what, id);
        goto done;
    }
    /* place the bytes in the order they became known (parts before wholes) */
    t->pool = malloc(total + 1);
    if (!t->pool) {
        st = mm_error(MM_ERR_NOMEM, "%s: out of memory", what);
        goto done;
    }
    size_t o = 0;
    for (int k = 0; k < nord; k++) {
        int32_t id = order[k];
        t->off[id] = o;
        if (def[id] >= 0) {
            int32_t a = t->merge_a[def[id]], b = t->merge_b[def[id]];
            memcpy(t->pool + o, t->pool + t->off[a], t->len[a]);
            memcpy(t->pool + o + t->len[a], t->pool + t->off[b], t->len[b]);
        } else if (t->special[id]) {
            memcpy(t->pool + o, sp_bytes[id], sp_len[id]);
        } else {
            int b = 0;
            while (t->byte_id[b] != id) b++;
            t->pool[o] = (char)b;
        }
        o += t->len[id];
    }
    /* an id made by several merges must have the same bytes each time */
    for (int r = 0; r < nm; r++) {
        int32_t a = t->merge_a[r], b = t->merge_b[r], c = t->merge_c[r];
        if (def[c] == r) continue;
        if (memcmp(t->pool + t->off[c], t->pool + t->off[a], t->len[a]) != 0 ||
            memcmp(t->pool + t->off[c] + t->len[a], t->pool + t->off[b], t->len[b]) != 0) {
            st = mm_error(MM_ERR_FORMAT,
                          "%s: merges %d and %d both produce id %d but with different bytes",
                          what, def[c], r, (int)c);
            goto done;
        }
    }
    st = mm__tok_index_bytes(t);
    if (st == MM_OK) st = mm__bpe_compile_regex(t);
done:
    free(order);
    free(def);
    return st;
}

/* ------------------------------------------------------------------ encoding */

typedef struct heap_ent {
    int32_t rank, pos;
} heap_ent;

static inline int heap_less(heap_ent x, heap_ent y) {
    return x.rank < y.rank || (x.rank == y.rank && x.pos < y.pos);
}

static void heap_push(heap_ent *h, size_t *n, heap_ent e) {
    size_t i = (*n)++;
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (!heap_less(e, h[p])) break;
        h[i] = h[p];
        i = p;
    }
    h[i] = e;
}

static heap_ent heap_pop(heap_ent *h, size_t *n) {
    heap_ent top = h[0], last = h[--*n];
    size_t i = 0, m = *n;
    for (;;) {
        size_t l = 2 * i + 1;
        if (l >= m) break;
        size_t c = (l + 1 < m && heap_less(h[l + 1], h[l])) ? l + 1 : l;
        if (!heap_less(h[c], last)) break;
        h[i] = h[c];
        i = c;
    }
    if (m) h[i] = last;
    return top;
}

typedef struct enc_ctx {
    const mm_tokenizer *t;
    mm__ivec out;
    /* word cache: piece bytes -> ids */
    mm__bmap cache;
    char *kpool;
    size_t kn, kcap;
    mm__ivec cids;          /* ids of cached pieces */
    size_t *ent_off;        /* per cache entry: offset in cids */
    uint32_t *ent_n;
    size_t nent, capent;
    /* scratch for one word */
    int32_t *sym, *prev, *next;
    heap_ent *heap;
    size_t wcap;
} enc_ctx;

static int enc_scratch(enc_ctx *c, size_t n) {
    if (n <= c->wcap) return 0;
    size_t cap = c->wcap ? c->wcap : 64;
    while (cap < n) cap *= 2;
    int32_t *s = realloc(c->sym, cap * sizeof *s);
    if (s) c->sym = s;
    int32_t *p = realloc(c->prev, cap * sizeof *p);
    if (p) c->prev = p;
    int32_t *x = realloc(c->next, cap * sizeof *x);
    if (x) c->next = x;
    heap_ent *h = realloc(c->heap, 3 * cap * sizeof *h);
    if (h) c->heap = h;
    if (!s || !p || !x || !h) return -1;
    c->wcap = cap;
    return 0;
}

static inline int32_t pair_rank(const mm_tokenizer *t, int32_t a, int32_t b) {
    return mm__u64map_get(&t->ranks, mm__pair_key(a, b));
}

/* BPE of one piece: appends its ids to out. */
static mm_status bpe_word(enc_ctx *c, const unsigned char *w, size_t n, mm__ivec *out) {
    const mm_tokenizer *t = c->t;
    if (n == 1) {
        if (mm__ivec_push(out, t->byte_id[w[0]])) return mm_error(MM_ERR_NOMEM, "bpe: out of memory");
        return MM_OK;
    }
    if (n > (size_t)INT32_MAX / 4) return mm_error(MM_ERR_ARG, "bpe: piece of %zu bytes is too long", n);
    if (enc_scratch(c, n)) return mm_error(MM_ERR_NOMEM, "bpe: out of memory");
    int32_t *sym = c->sym, *prev = c->prev, *next = c->next;
    heap_ent *h = c->heap;
    size_t hn = 0;
    for (size_t i = 0; i < n; i++) {
        sym[i] = t->byte_id[w[i]];
        prev[i] = (int32_t)i - 1;
        next[i] = i + 1 < n ? (int32_t)i + 1 : -1;
    }
    for (size_t i = 0; i + 1 < n; i++) {
        int32_t r = pair_rank(t, sym[i], sym[i + 1]);
        if (r >= 0) heap_push(h, &hn, (heap_ent){r, (int32_t)i});
    }
    /* each merge pushes at most 2 entries: the heap never exceeds 3n */
    while (hn) {
        heap_ent e = heap_pop(h, &hn);
        int32_t i = e.pos, j = next[i];
        if (j < 0 || sym[i] != t->merge_a[e.rank] || sym[j] != t->merge_b[e.rank]) continue;
        sym[i] = t->merge_c[e.rank];
        sym[j] = -1;
        next[i] = next[j];
        if (next[j] >= 0) prev[next[j]] = i;
        if (prev[i] >= 0) {
            int32_t r = pair_rank(t, sym[prev[i]], sym[i]);
            if (r >= 0) heap_push(h, &hn, (heap_ent){r, prev[i]});
        }
        if (next[i] >= 0) {
            int32_t r = pair_rank(t, sym[i], sym[next[i]]);
            if (r >= 0) heap_push(h, &hn, (heap_ent){r, i});
        }
    }
    for (int32_t i = 0; i >= 0; i = next[i])
        if (mm__ivec_push(out, sym[i])) return mm_error(MM_ERR_NOMEM, "bpe: out of memory");
    return MM_OK;
}

#define CACHE_MAX_PIECE 256

static mm_status enc_piece(void *ctx, const char *s, size_t n) {
    enc_ctx *c = ctx;
    if (n == 1) return bpe_word(c, (const unsigned char *)s, 1, &c->out);
    if (n > CACHE_MAX_PIECE) return bpe_word(c, (const unsigned char *)s, n, &c->out);
    uint64_t h = mm__hash_bytes(s, n);
    mm__bent *e = mm__bmap_slot(&c->cache, c->kpool, s, n, h);
    if (e->val >= 0) {
        const int32_t *ids = c->cids.v + c->ent_off[e->val];
        uint32_t k = c->ent_n[e->val];
        if (mm__ivec_reserve(&c->out, k)) return mm_error(MM_ERR_NOMEM, "bpe: out of memory");
        memcpy(c->out.v + c->out.n, ids, k * sizeof *ids);
        c->out.n += k;
        return MM_OK;
    }
    size_t start = c->cids.n;
    mm_status st = bpe_word(c, (const unsigned char *)s, n, &c->cids);
    if (st != MM_OK) return st;
    size_t k = c->cids.n - start;
    if (mm__ivec_reserve(&c->out, k)) return mm_error(MM_ERR_NOMEM, "bpe: out of memory");
    memcpy(c->out.v + c->out.n, c->cids.v + start, k * sizeof(int32_t));
    c->out.n += k;
    /* remember the piece */
    if (c->kn + n > c->kcap) {
        size_t cap = c->kcap ? c->kcap : 4096;
        while (cap < c->kn + n) cap *= 2;
        char *p = realloc(c->kpool, cap);
        if (!p) return mm_error(MM_ERR_NOMEM, "bpe: out of memory");
        c->kpool = p;
        c->kcap = cap;
    }
    if (c->nent == c->capent) {
        size_t cap = c->capent ? c->capent * 2 : 1024;
        size_t *o = realloc(c->ent_off, cap * sizeof *o);
        if (o) c->ent_off = o;
        uint32_t *m = realloc(c->ent_n, cap * sizeof *m);
        if (m) c->ent_n = m;
        if (!o || !m) return mm_error(MM_ERR_NOMEM, "bpe: out of memory");
        c->capent = cap;
    }
    if (mm__bmap_reserve(&c->cache, 1)) return mm_error(MM_ERR_NOMEM, "bpe: out of memory");
    memcpy(c->kpool + c->kn, s, n);
    e = mm__bmap_slot(&c->cache, c->kpool, s, n, h);
    e->hash = h;
    e->off = c->kn;
    e->len = (uint32_t)n;
    e->val = (int32_t)c->nent;
    c->cache.n++;
    c->kn += n;
    c->ent_off[c->nent] = start;
    c->ent_n[c->nent] = (uint32_t)k;
    c->nent++;
    return MM_OK;
}

mm_status mm__bpe_encode(const mm_tokenizer *t, const char *text, size_t len, int32_t **ids,
                         size_t *n) {
    if (mm_utf8_validate(text, len, NULL) != MM_OK)
        return mm__error_wrap(MM_ERR_ARG, "tokenizer_encode");
    enc_ctx c;
    memset(&c, 0, sizeof c);
    c.t = t;
    mm_status st = MM_OK;
    if (mm__bmap_init(&c.cache, 1024) || mm__ivec_reserve(&c.out, len / 3 + 16))
        st = mm_error(MM_ERR_NOMEM, "tokenizer_encode: out of memory");
    if (st == MM_OK) st = mm__bpe_pieces(t, text, len, enc_piece, &c);
    mm__bmap_free(&c.cache);
    free(c.kpool);
    free(c.cids.v);
    free(c.ent_off);
    free(c.ent_n);
    free(c.sym);
    free(c.prev);
    free(c.next);
    free(c.heap);
    if (st != MM_OK) {
        free(c.out.v);
        return st;
    }
    *ids = c.out.v;
    *n = c.out.n;
    return MM_OK;
}

/* ------------------------------------------------------------------ GPT-2 files */

static int file_exists(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) return 0;
    fclose(f);
    return 1;
}

/* Shows at most 40 bytes of a token in messages. */
static const char *shown(const char *s, size_t n, char *buf, size_t cap) {
    size_t k = n < 40 ? n : 40;
    if (k >= cap) k = cap - 1;
    memcpy(buf, s, k);
    buf[k] = 0;
    for (size_t i = 0; i < k; i++)
        if ((unsigned char)buf[i] < 0x20) buf[i] = '?';
    return buf;
}

mm_status mm_tokenizer_gpt2_load(const char *dir, mm_tokenizer **out) {
    if (!dir || !out) return mm_error(MM_ERR_ARG, "tokenizer_gpt2_load: NULL argument");
    *out = NULL;
    char vpath[4096], mpath[4096];
    snprintf(vpath, sizeof vpath, "%s/encoder.json", dir);
    if (!file_exists(vpath)) snprintf(vpath, sizeof vpath, "%s/vocab.json", dir);
    snprintf(mpath, sizeof mpath, "%s/vocab.bpe", dir);
    if (!file_exists(mpath)) snprintf(mpath, sizeof mpath, "%s/merges.txt", dir);
    if (!file_exists(vpath))
        return mm_error(MM_ERR_IO, "gpt2 tokenizer: no encoder.json or vocab.json in %s", dir);
    if (!file_exists(mpath))
        return mm_error(MM_ERR_IO, "gpt2 tokenizer: no vocab.bpe or merges.txt in %s", dir);

    char *vtext = NULL, *mtext = NULL, *tpool = NULL;
    size_t vlen, mlen;
    cJSON *root = NULL;
    size_t *toff = NULL;
    uint32_t *tlen = NULL;
    const char **spb = NULL;
    mm__bmap map = {0};
    mm_tokenizer *t = NULL;
    char sb1[48], sb2[48];
    mm_status st = mm_read_file(vpath, 0, &vtext, &vlen);
    if (st != MM_OK) goto done;
    st = mm_read_file(mpath, 0, &mtext, &mlen);
    if (st != MM_OK) goto done;

    /* vocabulary: token (alphabet form) -> id, ids 0..n-1 */
    const char *endp = NULL;
    root = cJSON_ParseWithLengthOpts(vtext, vlen, &endp, 0);
    if (!root) {
        const char *at = cJSON_GetErrorPtr();
        size_t off = at && at >= vtext && at <= vtext + vlen ? (size_t)(at - vtext) : 0;
        st = mm_error(MM_ERR_FORMAT, "%s: invalid JSON (error near byte %zu)", vpath, off);
        goto done;
    }
    if (!cJSON_IsObject(root)) {
        st = mm_error(MM_ERR_FORMAT, "%s: expected a JSON object mapping tokens to ids", vpath);
        goto done;
    }
    int nv = cJSON_GetArraySize(root);
    if (nv < 256) {
        st = mm_error(MM_ERR_FORMAT, "%s: only %d tokens (a byte-level BPE needs the 256 bytes)",
                      vpath, nv);
        goto done;
    }
    t = mm__tok_alloc(MM__TOK_BPE);
    toff = malloc((size_t)nv * sizeof *toff);
    tlen = malloc((size_t)nv * sizeof *tlen);
    tpool = malloc(vlen + 1); /* raw bytes are never longer than the alphabet text */
    spb = calloc((size_t)nv, sizeof *spb);
    if (!t || !toff || !tlen || !tpool || !spb || mm__bmap_init(&map, (size_t)nv)) {
        st = mm_error(MM_ERR_NOMEM, "gpt2 tokenizer: out of memory");
        goto done;
    }
    t->vocab_size = nv;
    t->special = calloc((size_t)nv, 1);
    if (!t->special) {
        st = mm_error(MM_ERR_NOMEM, "gpt2 tokenizer: out of memory");
        goto done;
    }
    for (int i = 0; i < nv; i++) tlen[i] = 0xFFFFFFFFu;
    size_t po = 0;
    const cJSON *it;
    cJSON_ArrayForEach(it, root) {
        const char *key = it->string ? it->string : "";
        double v = cJSON_IsNumber(it) ? it->valuedouble : -1;
        if (!cJSON_IsNumber(it) || v != (double)(int)v || v < 0) {
            st = mm_error(MM_ERR_FORMAT, "%s: token \"%s\" has no integer id", vpath,
                          shown(key, strlen(key), sb1, sizeof sb1));
            goto done;
        }
        int id = (int)v;
        if (id >= nv) {
            st = mm_error(MM_ERR_FORMAT,
                          "%s: token \"%s\" has id %d, but ids must be 0..%d (one per token)",
                          vpath, shown(key, strlen(key), sb1, sizeof sb1), id, nv - 1);
            goto done;
        }
        if (tlen[id] != 0xFFFFFFFFu) {
            st = mm_error(MM_ERR_FORMAT, "%s: id %d is given to two tokens (\"%s\" and another)",
                          vpath, id, shown(key, strlen(key), sb1, sizeof sb1));
            goto done;
        }
        uint32_t bad;
        long n = alphabet_to_bytes(key, strlen(key), tpool + po, &bad);
        if (n < 0) {
            if (bad == 0xFFFFFFFFu)
                st = mm_error(MM_ERR_FORMAT, "%s: token with id %d is not valid UTF-8", vpath, id);
            else
                st = mm_error(MM_ERR_FORMAT,
                              "%s: token \"%s\" (id %d) has character U+%04X, outside GPT-2's "
                              "byte-to-unicode alphabet",
                              vpath, shown(key, strlen(key), sb1, sizeof sb1), id, (unsigned)bad);
            goto done;
        }
        if (n == 0) {
            st = mm_error(MM_ERR_FORMAT, "%s: empty token (id %d)", vpath, id);
            goto done;
        }
        toff[id] = po;
        tlen[id] = (uint32_t)n;
        po += (size_t)n;
        uint64_t h = mm__hash_bytes(tpool + toff[id], (size_t)n);
        mm__bent *e = mm__bmap_slot(&map, tpool, tpool + toff[id], (size_t)n, h);
        if (e->val >= 0) { /* only possible with duplicate keys in the JSON text */
            st = mm_error(MM_ERR_FORMAT, "%s: token \"%s\" appears twice", vpath,
                          shown(key, strlen(key), sb1, sizeof sb1));
            goto done;
        }
        *e = (mm__bent){h, toff[id], (uint32_t)n, id};
        map.n++;
    }
    cJSON_Delete(root);
    root = NULL;
    for (int b = 0; b < 256; b++) {
        char c = (char)b;
        mm__bent *e = mm__bmap_slot(&map, tpool, &c, 1, mm__hash_bytes(&c, 1));
        if (e->val < 0) {
            char a[8];
            a[mm_utf8_encode(mm__gpt2_byte_cp(b), a)] = 0;
            st = mm_error(MM_ERR_FORMAT, "%s: no token for byte 0x%02X (\"%s\")", vpath, b, a);
            goto done;
        }
        t->byte_id[b] = e->val;
    }

    /* merges: "left right" per line, rank = order */
    size_t cap = 1024;
    t->merge_a = malloc(cap * sizeof(int32_t));
    t->merge_b = malloc(cap * sizeof(int32_t));
    t->merge_c = malloc(cap * sizeof(int32_t));
    char *tmp = malloc(mlen + 1);
    if (!t->merge_a || !t->merge_b || !t->merge_c || !tmp) {
        free(tmp);
        st = mm_error(MM_ERR_NOMEM, "gpt2 tokenizer: out of memory");
        goto done;
    }
    size_t pos = 0;
    long line = 0;
    while (pos < mlen) {
        size_t e = pos;
        while (e < mlen && mtext[e] != '\n') e++;
        size_t le = e;
        if (le > pos && mtext[le - 1] == '\r') le--;
        line++;
        const char *ls = mtext + pos;
        size_t ll = le - pos;
        pos = e + 1;
        if (line == 1 && ll >= 8 && memcmp(ls, "#version", 8) == 0) continue;
        if (ll == 0) continue;
        const char *sp = memchr(ls, ' ', ll);
        if (!sp || sp == ls || sp == ls + ll - 1 || memchr(sp + 1, ' ', (size_t)(ls + ll - sp - 1))) {
            st = mm_error(MM_ERR_FORMAT,
                          "%s line %ld: expected two tokens separated by one space, got \"%s\"",
                          mpath, line, shown(ls, ll, sb1, sizeof sb1));
            free(tmp);
            goto done;
        }
        size_t l1 = (size_t)(sp - ls), l2 = ll - l1 - 1;
        uint32_t bad;
        long n1 = alphabet_to_bytes(ls, l1, tmp, &bad);
        long n2 = n1 < 0 ? -1 : alphabet_to_bytes(sp + 1, l2, tmp + n1, &bad);
        if (n1 < 0 || n2 < 0) {
            st = mm_error(MM_ERR_FORMAT,
                          "%s line %ld: \"%s\" has a character outside GPT-2's byte alphabet, so "
                          "it is not in the vocabulary",
                          mpath, line, shown(ls, ll, sb1, sizeof sb1));
            free(tmp);
            goto done;
        }
        int32_t ids[3];
        const char *parts[3] = {tmp, tmp + n1, tmp};
        size_t plen[3] = {(size_t)n1, (size_t)n2, (size_t)(n1 + n2)};
        for (int k = 0; k < 3; k++) {
            mm__bent *me = mm__bmap_slot(&map, tpool, parts[k], plen[k],
                                         mm__hash_bytes(parts[k], plen[k]));
            ids[k] = me->val;
            if (ids[k] < 0) {
                const char *what = k == 0 ? "left token" : k == 1 ? "right token" : "merged token";
                const char *ts = k == 0 ? ls : k == 1 ? sp + 1 : ls;
                size_t tl = k == 0 ? l1 : k == 1 ? l2 : ll;
                st = mm_error(MM_ERR_FORMAT, "%s line %ld: %s \"%s\" is not in the vocabulary %s",
                              mpath, line, what, shown(ts, tl, sb2, sizeof sb2), vpath);
                free(tmp);
                goto done;
            }
        }
        if ((size_t)t->n_merges == cap) {
            cap *= 2;
            int32_t *a = realloc(t->merge_a, cap * sizeof *a);
            if (a) t->merge_a = a;
            int32_t *b = realloc(t->merge_b, cap * sizeof *b);
            if (b) t->merge_b = b;
            int32_t *c = realloc(t->merge_c, cap * sizeof *c);
            if (c) t->merge_c = c;
            if (!a || !b || !c) {
                free(tmp);
                st = mm_error(MM_ERR_NOMEM, "gpt2 tokenizer: out of memory");
                goto done;
            }
        }
        t->merge_a[t->n_merges] = ids[0];
        t->merge_b[t->n_merges] = ids[1];
        t->merge_c[t->n_merges] = ids[2];
        t->n_merges++;
    }
    free(tmp);
    /* special tokens: neither a byte nor a merge result */
    uint8_t *made = calloc((size_t)nv, 1);
    if (!made) {
        st = mm_error(MM_ERR_NOMEM, "gpt2 tokenizer: out of memory");
        goto done;
    }
    for (int b = 0; b < 256; b++) made[t->byte_id[b]] = 1;
    for (int r = 0; r < t->n_merges; r++) made[t->merge_c[r]] = 1;
    for (int id = 0; id < nv; id++) {
        if (made[id]) continue;
        t->special[id] = 1;
        spb[id] = tpool + toff[id];
    }
    free(made);
    char what[4200];
    snprintf(what, sizeof what, "gpt2 tokenizer %s", dir);
    st = mm__bpe_finish(t, what, spb, tlen);

done:
    if (root) cJSON_Delete(root);
    free(vtext);
    free(mtext);
    free(tpool);
    free(toff);
    free(tlen);
    free(spb);
    mm__bmap_free(&map);
    if (st != MM_OK) {
        mm_tokenizer_free(t);
        return st;
    }
    *out = t;
    return MM_OK;
}

/* ------------------------------------------------------------------ JSON form */

mm_status mm__bpe_to_json(const mm_tokenizer *t, void *rootp) {
    cJSON *root = rootp;
    int nm = t->n_merges, ident_bytes = 1, ident_ids = 1;
    for (int b = 0; b < 256; b++) ident_bytes &= t->byte_id[b] == b;
    for (int r = 0; r < nm; r++) ident_ids &= t->merge_c[r] == 256 + r;
    int *flat = malloc(((size_t)nm * 2 + 256) * sizeof *flat);
    if (!flat) return mm_error(MM_ERR_NOMEM, "tokenizer_to_json: out of memory");
    int ok = cJSON_AddStringToObject(root, "type", "bpe") &&
             cJSON_AddStringToObject(root, "pattern", "gpt2") &&
             cJSON_AddNumberToObject(root, "vocab_size", t->vocab_size);
    if (ok && !ident_bytes) {
        for (int b = 0; b < 256; b++) flat[b] = t->byte_id[b];
        cJSON *a = cJSON_CreateIntArray(flat, 256);
        ok = a && cJSON_AddItemToObject(root, "bytes", a);
    }
    if (ok) {
        for (int r = 0; r < nm; r++) flat[2 * r] = t->merge_a[r], flat[2 * r + 1] = t->merge_b[r];
        cJSON *a = cJSON_CreateIntArray(flat, nm * 2);
        ok = a && cJSON_AddItemToObject(root, "merges", a);
    }
    if (ok && !ident_ids) {
        for (int r = 0; r < nm; r++) flat[r] = t->merge_c[r];
        cJSON *a = cJSON_CreateIntArray(flat, nm);
        ok = a && cJSON_AddItemToObject(root, "merge_ids", a);
    }
    free(flat);
    cJSON *sp = NULL;
    for (int id = 0; ok && id < t->vocab_size; id++) {
        if (!t->special || !t->special[id]) continue;
        if (!sp) ok = (sp = cJSON_AddObjectToObject(root, "special")) != NULL;
        char *s = ok ? bytes_to_alphabet(t->pool + t->off[id], t->len[id]) : NULL;
        ok = s && cJSON_AddNumberToObject(sp, s, id);
        free(s);
    }
    return ok ? MM_OK : mm_error(MM_ERR_NOMEM, "tokenizer_to_json: out of memory");
}

/* Reads an array of integers in [0, limit) into a fresh buffer. */
static mm_status json_ints(const cJSON *a, const char *name, int limit, int32_t **v, int *n) {
    *v = NULL;
    *n = 0;
    if (!cJSON_IsArray(a))
        return mm_error(MM_ERR_FORMAT, "tokenizer JSON (bpe): \"%s\" is not an array", name);
    int cnt = cJSON_GetArraySize(a);
    *v = malloc(((size_t)cnt + 1) * sizeof **v);
    if (!*v) return mm_error(MM_ERR_NOMEM, "tokenizer_from_json: out of memory");
    const cJSON *it;
    int i = 0;
    cJSON_ArrayForEach(it, a) {
        double d = cJSON_IsNumber(it) ? it->valuedouble : -1;
        if (!cJSON_IsNumber(it) || d < 0 || d >= limit || d != (double)(int)d) {
            free(*v);
            *v = NULL;
            return mm_error(MM_ERR_FORMAT,
                            "tokenizer JSON (bpe): \"%s\"[%d] is not a token id in [0, %d)", name,
                            i, limit);
        }
        (*v)[i++] = (int32_t)d;
    }
    *n = i;
    return MM_OK;
}

mm_status mm__bpe_from_json(const void *rootp, mm_tokenizer **out) {
    const cJSON *root = rootp;
    const cJSON *pat = cJSON_GetObjectItemCaseSensitive(root, "pattern");
    const cJSON *vs = cJSON_GetObjectItemCaseSensitive(root, "vocab_size");
    const cJSON *by = cJSON_GetObjectItemCaseSensitive(root, "bytes");
    const cJSON *mg = cJSON_GetObjectItemCaseSensitive(root, "merges");
    const cJSON *mi = cJSON_GetObjectItemCaseSensitive(root, "merge_ids");
    const cJSON *sp = cJSON_GetObjectItemCaseSensitive(root, "special");
    if (pat && !(cJSON_IsString(pat) && strcmp(pat->valuestring, "gpt2") == 0))
        return mm_error(MM_ERR_FORMAT,
                        "tokenizer JSON (bpe): unknown \"pattern\" (only \"gpt2\" is supported)");
    if (!cJSON_IsNumber(vs) || vs->valuedouble < 256 || vs->valuedouble > (1 << 24) ||
        vs->valuedouble != (double)(int)vs->valuedouble)
        return mm_error(MM_ERR_FORMAT,
                        "tokenizer JSON (bpe): \"vocab_size\" missing or not an integer in "
                        "[256, %d]",
                        1 << 24);
    if (!mg) return mm_error(MM_ERR_FORMAT, "tokenizer JSON (bpe): missing \"merges\"");
    if (sp && !cJSON_IsObject(sp))
        return mm_error(MM_ERR_FORMAT, "tokenizer JSON (bpe): \"special\" is not an object");
    int nv = (int)vs->valuedouble;
    mm_tokenizer *t = mm__tok_alloc(MM__TOK_BPE);
    if (!t) return mm_error(MM_ERR_NOMEM, "tokenizer_from_json: out of memory");
    t->vocab_size = nv;
    int32_t *flat = NULL, *bytes = NULL, *mids = NULL;
    const char **spb = NULL;
    uint32_t *spl = NULL;
    char *spool = NULL;
    int nflat, nb, nmi;
    mm_status st = json_ints(mg, "merges", nv, &flat, &nflat);
    if (st != MM_OK) goto done;
    if (nflat % 2) {
        st = mm_error(MM_ERR_FORMAT,
                      "tokenizer JSON (bpe): \"merges\" has an odd number of ids (%d); it holds "
                      "pairs",
                      nflat);
        goto done;
    }
    int nm = nflat / 2;
    if (by) {
        st = json_ints(by, "bytes", nv, &bytes, &nb);
        if (st != MM_OK) goto done;
        if (nb != 256) {
            st = mm_error(MM_ERR_FORMAT, "tokenizer JSON (bpe): \"bytes\" has %d ids, not 256",
                          nb);
            goto done;
        }
    }
    if (mi) {
        st = json_ints(mi, "merge_ids", nv, &mids, &nmi);
        if (st != MM_OK) goto done;
        if (nmi != nm) {
            st = mm_error(MM_ERR_FORMAT,
                          "tokenizer JSON (bpe): \"merge_ids\" has %d ids for %d merges", nmi, nm);
            goto done;
        }
    }
    t->n_merges = nm;
    t->merge_a = malloc(((size_t)nm + 1) * sizeof(int32_t));
    t->merge_b = malloc(((size_t)nm + 1) * sizeof(int32_t));
    t->merge_c = malloc(((size_t)nm + 1) * sizeof(int32_t));
    t->special = calloc((size_t)nv, 1);
    spb = calloc((size_t)nv, sizeof *spb);
    spl = calloc((size_t)nv, sizeof *spl);
    if (!t->merge_a || !t->merge_b || !t->merge_c || !t->special || !spb || !spl) {
        st = mm_error(MM_ERR_NOMEM, "tokenizer_from_json: out of memory");
        goto done;
    }
    for (int r = 0; r < nm; r++) {
        t->merge_a[r] = flat[2 * r];
        t->merge_b[r] = flat[2 * r + 1];
        t->merge_c[r] = mids ? mids[r] : 256 + r;
        if (t->merge_c[r] >= nv) {
            st = mm_error(MM_ERR_FORMAT,
                          "tokenizer JSON (bpe): merge %d makes id %d, beyond vocab_size %d", r,
                          (int)t->merge_c[r], nv);
            goto done;
        }
    }
    for (int b = 0; b < 256; b++) t->byte_id[b] = bytes ? bytes[b] : b;
    if (sp) {
        size_t total = 0;
        const cJSON *it;
        cJSON_ArrayForEach(it, sp) total += strlen(it->string ? it->string : "");
        spool = malloc(total + 1);
        if (!spool) {
            st = mm_error(MM_ERR_NOMEM, "tokenizer_from_json: out of memory");
            goto done;
        }
        size_t o = 0;
        cJSON_ArrayForEach(it, sp) {
            const char *k = it->string ? it->string : "";
            double d = cJSON_IsNumber(it) ? it->valuedouble : -1;
            if (!cJSON_IsNumber(it) || d < 0 || d >= nv || d != (double)(int)d) {
                st = mm_error(MM_ERR_FORMAT,
                              "tokenizer JSON (bpe): special token id is not in [0, %d)", nv);
                goto done;
            }
            int id = (int)d;
            uint32_t bad;
            long n = alphabet_to_bytes(k, strlen(k), spool + o, &bad);
            if (n <= 0 || t->special[id]) {
                st = mm_error(MM_ERR_FORMAT,
                              "tokenizer JSON (bpe): special token %d is empty, repeated or not "
                              "in GPT-2's byte alphabet",
                              id);
                goto done;
            }
            t->special[id] = 1;
            spb[id] = spool + o;
            spl[id] = (uint32_t)n;
            o += (size_t)n;
        }
    }
    st = mm__bpe_finish(t, "tokenizer JSON (bpe)", spb, spl);
done:
    free(flat);
    free(bytes);
    free(mids);
    free(spb);
    free(spl);
    free(spool);
    if (st != MM_OK) {
        mm_tokenizer_free(t);
        return st;
    }
    *out = t;
    return MM_OK;
}
