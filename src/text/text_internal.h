/* Internal pieces shared by the tokenizer sources: the tokenizer struct, small hash maps and
 * a UTF-8 step function that tells "truncated at the end" apart from "invalid". */
#ifndef MM_TEXT_INTERNAL_H
#define MM_TEXT_INTERNAL_H

#include "mediaml_text.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------------ UTF-8 step */

/* Examines the sequence at s (len > 0 bytes available). Returns its length (1..4) and the
 * code point if valid; 0 if the bytes so far are a valid but incomplete prefix that runs into
 * the end of the buffer; negative if invalid (then *why says why): -k means the first k
 * bytes are the maximal invalid subpart, to be replaced by one U+FFFD. */
int mm__utf8_step(const unsigned char *s, size_t len, uint32_t *cp, const char **why);

/* Sets the error message to "prefix: <current message>" (the current message is copied
 * first, since mm_error writes into the same buffer) and returns code. */
mm_status mm__error_wrap(mm_status code, const char *prefix);

/* ------------------------------------------------------------------ hashing */

static inline uint64_t mm__mix64(uint64_t x) {
    x ^= x >> 30;
    x *= 0xbf58476d1ce4e5b9ULL;
    x ^= x >> 27;
    x *= 0x94d049bb133111ebULL;
    x ^= x >> 31;
    return x;
}

static inline uint64_t mm__hash_bytes(const char *p, size_t n) {
    uint64_t h = 0x9e3779b97f4a7c15ULL ^ n;
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        uint64_t w;
        memcpy(&w, p + i, 8);
        h = mm__mix64(h ^ w);
    }
    uint64_t w = 0;
    for (size_t k = 0; i < n; i++, k += 8) w |= (uint64_t)(unsigned char)p[i] << k;
    return mm__mix64(h ^ w ^ 0x5555555555555555ULL);
}

/* Open-addressing map uint64 key -> int32 value >= 0 (a negative value marks a free slot). */
typedef struct mm__u64map {
    uint64_t *keys;
    int32_t *vals;
    size_t cap, n; /* cap: power of two */
} mm__u64map;

int mm__u64map_init(mm__u64map *m, size_t expect);
void mm__u64map_free(mm__u64map *m);
/* Value for key, or -1. */
static inline int32_t mm__u64map_get(const mm__u64map *m, uint64_t key) {
    if (!m->cap) return -1;
    size_t mask = m->cap - 1, i = (size_t)mm__mix64(key) & mask;
    while (m->vals[i] >= 0) {
        if (m->keys[i] == key) return m->vals[i];
        i = (i + 1) & mask;
    }
    return -1;
}
/* Inserts key -> val if key is absent; returns the value now stored (the old one if present),
 * or -1 when out of memory. */
int32_t mm__u64map_put(mm__u64map *m, uint64_t key, int32_t val);

/* Open-addressing map byte string -> int32 value >= 0. Keys are (offset, length) into a pool
 * the caller owns and passes to each call (the pool may move between calls). */
typedef struct mm__bent {
    uint64_t hash;
    size_t off;
    uint32_t len;
    int32_t val; /* < 0: free slot */
} mm__bent;
typedef struct mm__bmap {
    mm__bent *e;
    size_t cap, n;
} mm__bmap;

int mm__bmap_init(mm__bmap *m, size_t expect);
void mm__bmap_free(mm__bmap *m);
/* Slot for key (its val < 0 if absent). Valid until the next insert. */
static inline mm__bent *mm__bmap_slot(const mm__bmap *m, const char *pool, const char *key,
                                      size_t len, uint64_t h) {
    size_t mask = m->cap - 1, i = (size_t)h & mask;
    for (;;) {
        mm__bent *e = &m->e[i];
        if (e->val < 0) return e;
        if (e->hash == h && e->len == len && memcmp(pool + e->off, key, len) == 0) return e;
        i = (i + 1) & mask;
    }
}
/* Grows the table if needed so that one more key fits (call before filling a free slot found
 * by mm__bmap_slot, then look the slot up again). Returns 0 or -1 (out of memory). */
int mm__bmap_reserve(mm__bmap *m, size_t extra);

/* ------------------------------------------------------------------ tokenizer */

enum { MM__TOK_CHAR = 1, MM__TOK_BPE = 2 };

struct mm_tokenizer {
    int kind;
    int vocab_size;
    /* bytes of every token: pool[off[id] .. off[id] + len[id]) */
    char *pool;
    size_t *off;
    uint32_t *len;
    mm__bmap by_bytes; /* token bytes -> id (first id with those bytes) */

    /* char */
    uint32_t *cps; /* sorted code points, id = index */
    int n_cps;
    int32_t unk_id; /* -1: none */
    int32_t ascii[128]; /* id of each ASCII code point or -1 */

    /* bpe */
    int32_t byte_id[256];
    int n_merges;
    int32_t *merge_a, *merge_b, *merge_c; /* by rank */
    mm__u64map ranks;   /* (a << 32 | b) -> rank */
    uint8_t *special;   /* per id: 1 if a special token */
    void *re;           /* compiled pre-tokenization regex (pcre2_code *) */
};

static inline uint64_t mm__pair_key(int32_t a, int32_t b) {
    return (uint64_t)(uint32_t)a << 32 | (uint32_t)b;
}

/* Allocates a zeroed tokenizer of the given kind. */
mm_tokenizer *mm__tok_alloc(int kind);
/* Sets the token bytes table from per-id lengths already in t->len and a filled pool, builds
 * by_bytes. */
mm_status mm__tok_index_bytes(mm_tokenizer *t);

/* BPE internals (bpe.c) */
mm_status mm__bpe_compile_regex(mm_tokenizer *t);
/* Finishes a BPE tokenizer whose vocab_size, byte_id, merges (merge_a/b/c, n_merges) and
 * special flags (may be NULL: none) are set; sp_bytes/sp_len give the bytes of each special
 * id (may be NULL when there are none). Checks consistency, computes every token's bytes,
 * builds the maps and the regex. what prefixes error messages. */
mm_status mm__bpe_finish(mm_tokenizer *t, const char *what, const char *const *sp_bytes,
                         const uint32_t *sp_len);
/* Calls fn(ctx, start, end) for each pre-tokenization piece of valid UTF-8 text. */
typedef mm_status (*mm__piece_fn)(void *ctx, const char *s, size_t n);
mm_status mm__bpe_pieces(const mm_tokenizer *t, const char *text, size_t len, mm__piece_fn fn,
                         void *ctx);
mm_status mm__bpe_encode(const mm_tokenizer *t, const char *text, size_t len, int32_t **ids,
                         size_t *n);
mm_status mm__bpe_to_json(const mm_tokenizer *t, void *cjson_root);
mm_status mm__bpe_from_json(const void *cjson_root, mm_tokenizer **out);
/* GPT-2 bytes_to_unicode: code point standing for each byte value. */
uint32_t mm__gpt2_byte_cp(int byte);

/* char internals (char_tokenizer.c) */
mm_status mm__char_encode(const mm_tokenizer *t, const char *text, size_t len, int32_t **ids,
                          size_t *n);
mm_status mm__char_to_json(const mm_tokenizer *t, void *cjson_root);
mm_status mm__char_from_json(const void *cjson_root, mm_tokenizer **out);

/* growable int32 buffer */
typedef struct mm__ivec {
    int32_t *v;
    size_t n, cap;
} mm__ivec;
static inline int mm__ivec_reserve(mm__ivec *a, size_t extra) {
    if (a->n + extra <= a->cap) return 0;
    size_t cap = a->cap ? a->cap : 16;
    while (cap < a->n + extra) cap *= 2;
    int32_t *v = realloc(a->v, cap * sizeof *v);
    if (!v) return -1;
    a->v = v;
    a->cap = cap;
    return 0;
}
static inline int mm__ivec_push(mm__ivec *a, int32_t x) {
    if (a->n == a->cap && mm__ivec_reserve(a, 1)) return -1;
    a->v[a->n++] = x;
    return 0;
}

#endif
