/* Vocabulary (min-count, padding and unknown ids), hashed n-grams and model input rows. */
#include "sentiment/sentiment.h"

#include <stdlib.h>
#include <string.h>

static uint64_t fnv1a(const char *s, size_t n) {
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < n; i++) h = (h ^ (unsigned char)s[i]) * 1099511628211ull;
    return h;
}

void sent_vocab_free(sent_vocab *v) {
    for (int i = 0; i < v->n; i++) free(v->words[i]);
    free(v->words), free(v->table);
    memset(v, 0, sizeof *v);
}

static int slot_of(const sent_vocab *v, const char *s, size_t len, size_t *slot) {
    size_t mask = v->nslots - 1, k = (size_t)fnv1a(s, len) & mask;
    for (;;) {
        int id = v->table[k];
        if (id < 0) {
            *slot = k;
            return -1;
        }
        /* strncmp stops at the word's end; strnlen then rules out a longer word (no full
         * strlen on every probe: this is the hot loop of predict) */
        if (!strncmp(v->words[id], s, len) && strnlen(v->words[id], len + 1) == len) return id;
        k = (k + 1) & mask;
    }
}

int sent_vocab_id(const sent_vocab *v, const char *s, size_t len) {
    size_t slot;
    int id = v->nslots ? slot_of(v, s, len, &slot) : -1;
    return id >= 0 ? id : 1;
}

/* Table sized for cap words; words[0..n) re-inserted. */
static mm_status rehash(sent_vocab *v, size_t cap) {
    size_t ns = 16;
    while (ns < cap * 2) ns *= 2;
    int *t = malloc(ns * sizeof(int));
    if (!t) return mm_error(MM_ERR_NOMEM, "out of memory");
    memset(t, 0xff, ns * sizeof(int));
    free(v->table);
    v->table = t, v->nslots = ns;
    for (int i = 0; i < v->n; i++) {
        size_t slot;
        if (slot_of(v, v->words[i], strlen(v->words[i]), &slot) < 0) t[slot] = i;
    }
    return MM_OK;
}

mm_status sent_vocab_from_words(int n_words, char *const *words, int ngrams, int buckets, sent_vocab *out) {
    memset(out, 0, sizeof *out);
    out->words = calloc((size_t)n_words + 2, sizeof(char *));
    if (!out->words) return mm_error(MM_ERR_NOMEM, "out of memory");
    out->words[0] = strdup("<pad>");
    out->words[1] = strdup("<unk>");
    out->n = 2;
    for (int i = 0; i < n_words; i++) out->words[out->n++] = strdup(words[i]);
    for (int i = 0; i < out->n; i++)
        if (!out->words[i]) {
            sent_vocab_free(out);
            return mm_error(MM_ERR_NOMEM, "out of memory");
        }
    out->ngrams = ngrams < 1 ? 1 : ngrams;
    out->buckets = out->ngrams > 1 ? buckets : 0;
    mm_status st = rehash(out, (size_t)out->n);
    if (st) sent_vocab_free(out);
    return st;
}

typedef struct wc {
    const char *w;
    long count;
} wc;

static int by_count(const void *a, const void *b) {
    const wc *x = a, *y = b;
    if (x->count != y->count) return x->count > y->count ? -1 : 1;
    return strcmp(x->w, y->w);
}

mm_status sent_vocab_build(const sent_corpus *c, const int *idx, int n, sent_lang lang, int tok_flags, int min_count,
                           int ngrams, int buckets, sent_vocab *out) {
    /* count every distinct token in a temporary vocabulary (counts beside it) */
    sent_vocab tmp = {0};
    sent_tokens t = {0};
    long *count = NULL;
    int cap = 0;
    mm_status st = sent_vocab_from_words(0, NULL, 1, 0, &tmp);
    if (!st) st = rehash(&tmp, 1024), cap = 1024;
    char **words = tmp.words;
    if (!st && !(words = realloc(tmp.words, (size_t)cap * sizeof(char *)))) st = mm_error(MM_ERR_NOMEM, "out of memory");
    if (!st) tmp.words = words;
    if (!st && !(count = calloc((size_t)cap, sizeof(long)))) st = mm_error(MM_ERR_NOMEM, "out of memory");
    int total = idx ? n : c->n;
    for (int e = 0; e < total && !st; e++) {
        const char *s = c->text[idx ? idx[e] : e];
        st = sent_tokenize(lang, tok_flags, s, strlen(s), &t);
        for (int k = 0; k < t.n && !st; k++) {
            const char *w = t.buf + t.off[k];
            size_t slot;
            int id = slot_of(&tmp, w, (size_t)t.nlen[k], &slot);
            if (id >= 0) {
                count[id]++;
                continue;
            }
            if (tmp.n == cap) {
                cap *= 2;
                char **nw = realloc(tmp.words, (size_t)cap * sizeof(char *));
                long *nc = nw ? realloc(count, (size_t)cap * sizeof(long)) : NULL;
                if (nw) tmp.words = nw;
                if (!nc) {
                    st = mm_error(MM_ERR_NOMEM, "out of memory");
                    break;
                }
                count = nc;
                memset(count + tmp.n, 0, (size_t)(cap - tmp.n) * sizeof(long));
            }
            if (!(tmp.words[tmp.n] = strdup(w))) {
                st = mm_error(MM_ERR_NOMEM, "out of memory");
                break;
            }
            count[tmp.n] = 1;
            tmp.n++;
            if ((size_t)tmp.n * 2 > tmp.nslots) st = rehash(&tmp, (size_t)cap);
            else tmp.table[slot] = tmp.n - 1;
        }
    }
    sent_tokens_free(&t);
    wc *list = NULL;
    int kept = 0;
    if (!st && !(list = malloc((size_t)tmp.n * sizeof *list))) st = mm_error(MM_ERR_NOMEM, "out of memory");
    for (int i = 2; !st && i < tmp.n; i++)
        if (count[i] >= (min_count > 0 ? min_count : 1)) list[kept++] = (wc){tmp.words[i], count[i]};
    char **keep = NULL;
    if (!st) {
        qsort(list, (size_t)kept, sizeof *list, by_count);
        keep = malloc(((size_t)kept + 1) * sizeof(char *));
        if (!keep) st = mm_error(MM_ERR_NOMEM, "out of memory");
        for (int i = 0; !st && i < kept; i++) keep[i] = (char *)list[i].w;
    }
    if (!st) st = sent_vocab_from_words(kept, keep, ngrams, buckets, out);
    free(keep), free(list), free(count);
    sent_vocab_free(&tmp);
    return st;
}

static int cmp_float(const void *a, const void *b) {
    float x = *(const float *)a, y = *(const float *)b;
    return (x > y) - (x < y);
}

int sent_features(const sent_vocab *v, const sent_tokens *t, int drop, float *row, int max_len) {
    int n = 0, G = v->ngrams;
    /* h[g]: hashes of the last g kept tokens, for the n-grams ending at the current token */
    uint64_t prev[8] = {0};
    int run = 0; /* tokens so far */
    if (!row) max_len = 0x7fffffff; /* count only */
    for (int k = 0; k < t->n && n < max_len; k++) {
        const char *w = t->buf + t->off[k];
        if (row) row[n] = k == drop ? 1.0f : (float)sent_vocab_id(v, w, (size_t)t->nlen[k]);
        n++;
        if (G < 2 || !v->buckets) continue;
        uint64_t h = fnv1a(w, (size_t)t->nlen[k]);
        run++;
        /* prev[g] = hash of the g-gram ending at the previous token */
        for (int g = (G < 8 ? G : 8) - 1; g >= 1; g--) {
            if (run > g) {
                uint64_t hg = prev[g - 1] * 116049371ull + h; /* fastText's n-gram combiner */
                if (n < max_len) {
                    int covers = drop >= k - g && drop <= k; /* the g-gram spans tokens k-g..k */
                    if (row) row[n] = covers ? 1.0f : (float)(v->n + (int)(hg % (uint64_t)v->buckets));
                    n++;
                }
                prev[g] = hg;
            }
        }
        prev[0] = h;
    }
    if (row && v->bag && n > 1) {
        /* binarized bag: sort, then keep one of each (but every <unk>, so that occlusion keeps
         * the row's length) */
        if (n <= 256) { /* insertion sort: rows are short, qsort's calls cost more */
            for (int k = 1; k < n; k++) {
                float x = row[k];
                int j = k;
                for (; j > 0 && row[j - 1] > x; j--) row[j] = row[j - 1];
                row[j] = x;
            }
        } else {
            qsort(row, (size_t)n, sizeof(float), cmp_float);
        }
        int u = 1;
        for (int k = 1; k < n; k++)
            if (row[k] != row[u - 1] || row[k] == 1.0f) row[u++] = row[k];
        n = u;
    }
    for (int k = n; row && k < max_len; k++) row[k] = 0.0f;
    return n;
}
