/* Byte-level BPE training. The corpus is split with GPT-2's pre-tokenization regex and the
 * distinct pieces are counted; then each step merges the most frequent adjacent pair (ties:
 * smaller left id, then smaller right id). Pair counts are kept incrementally: each pair
 * knows the words it occurs in, so a merge only revisits those words, and a max-heap with
 * lazy deletion finds the next best pair. */
#include "text/text_internal.h"

typedef struct tpair {
    int32_t a, b;
    int64_t count;
    uint32_t touched; /* stamp of the last merge that changed count */
    mm__ivec words;   /* words that contain (or once contained) the pair; may repeat */
} tpair;

typedef struct hent {
    int64_t count;
    int32_t p;
} hent;

typedef struct trainer {
    const char *text;
    mm__bmap wmap;         /* piece -> word index; keys point into text */
    size_t *wtext;         /* per word: offset of its first occurrence in text */
    int32_t *wlen;         /* per word: current number of symbols */
    int64_t *wcount;       /* per word: occurrences */
    size_t *wstart;        /* per word: offset in syms */
    uint32_t *wstamp;
    size_t nwords, capwords;
    int32_t *syms;
    tpair *pairs;
    size_t npairs, cappairs;
    mm__u64map pmap;       /* (a, b) -> index in pairs */
    hent *heap;
    size_t nheap, capheap;
    mm__ivec touched;
} trainer;

static mm_status nomem(void) { return mm_error(MM_ERR_NOMEM, "bpe_train: out of memory"); }

static mm_status count_piece(void *ctx, const char *s, size_t n) {
    trainer *tr = ctx;
    uint64_t h = mm__hash_bytes(s, n);
    mm__bent *e = mm__bmap_slot(&tr->wmap, tr->text, s, n, h);
    if (e->val >= 0) {
        tr->wcount[e->val]++;
        return MM_OK;
    }
    if (n > (size_t)INT32_MAX) return mm_error(MM_ERR_ARG, "bpe_train: piece too long");
    if (tr->nwords == tr->capwords) {
        size_t cap = tr->capwords ? tr->capwords * 2 : 4096;
        size_t *a = realloc(tr->wtext, cap * sizeof *a);
        if (a) tr->wtext = a;
        int32_t *b = realloc(tr->wlen, cap * sizeof *b);
        if (b) tr->wlen = b;
        int64_t *c = realloc(tr->wcount, cap * sizeof *c);
        if (c) tr->wcount = c;
        if (!a || !b || !c) return nomem();
        tr->capwords = cap;
    }
    if (tr->nwords >= INT32_MAX || mm__bmap_reserve(&tr->wmap, 1)) return nomem();
    e = mm__bmap_slot(&tr->wmap, tr->text, s, n, h);
    *e = (mm__bent){h, (size_t)(s - tr->text), (uint32_t)n, (int32_t)tr->nwords};
    tr->wmap.n++;
    tr->wtext[tr->nwords] = (size_t)(s - tr->text);
    tr->wlen[tr->nwords] = (int32_t)n;
    tr->wcount[tr->nwords] = 1;
    tr->nwords++;
    return MM_OK;
}

static int32_t get_pair(trainer *tr, int32_t a, int32_t b) {
    int32_t got = mm__u64map_put(&tr->pmap, mm__pair_key(a, b), (int32_t)tr->npairs);
    if (got < 0 || (size_t)got != tr->npairs) return got;
    if (tr->npairs == tr->cappairs) {
        size_t cap = tr->cappairs ? tr->cappairs * 2 : 4096;
        tpair *p = realloc(tr->pairs, cap * sizeof *p);
        if (!p) return -1;
        tr->pairs = p;
        tr->cappairs = cap;
    }
    tr->pairs[tr->npairs] = (tpair){a, b, 0, 0, {0}};
    return (int32_t)tr->npairs++;
}

/* max-heap: larger count first, then smaller (a, b) */
static inline int hbefore(const trainer *tr, hent x, hent y) {
    if (x.count != y.count) return x.count > y.count;
    const tpair *p = &tr->pairs[x.p], *q = &tr->pairs[y.p];
    if (p->a != q->a) return p->a < q->a;
    return p->b < q->b;
}

static int hpush(trainer *tr, hent e) {
    if (tr->nheap == tr->capheap) {
        size_t cap = tr->capheap ? tr->capheap * 2 : 4096;
        hent *h = realloc(tr->heap, cap * sizeof *h);
        if (!h) return -1;
        tr->heap = h;
        tr->capheap = cap;
    }
    size_t i = tr->nheap++;
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (!hbefore(tr, e, tr->heap[p])) break;
        tr->heap[i] = tr->heap[p];
        i = p;
    }
    tr->heap[i] = e;
    return 0;
}

static hent hpop(trainer *tr) {
    hent *h = tr->heap, top = h[0], last = h[--tr->nheap];
    size_t i = 0, m = tr->nheap;
    for (;;) {
        size_t l = 2 * i + 1;
        if (l >= m) break;
        size_t c = (l + 1 < m && hbefore(tr, h[l + 1], h[l])) ? l + 1 : l;
        if (!hbefore(tr, h[c], last)) break;
        h[i] = h[c];
        i = c;
    }
    if (m) h[i] = last;
    return top;
}

static int add_count(trainer *tr, int32_t p, int64_t d, uint32_t stamp) {
    tr->pairs[p].count += d;
    if (tr->pairs[p].touched != stamp) {
        tr->pairs[p].touched = stamp;
        if (mm__ivec_push(&tr->touched, p)) return -1;
    }
    return 0;
}

static int add_word(tpair *p, int32_t w) {
    if (p->words.n && p->words.v[p->words.n - 1] == w) return 0;
    return mm__ivec_push(&p->words, w);
}

static void trainer_free(trainer *tr) {
    mm__bmap_free(&tr->wmap);
    free(tr->wtext);
    free(tr->wlen);
    free(tr->wcount);
    free(tr->wstart);
    free(tr->wstamp);
    free(tr->syms);
    for (size_t i = 0; i < tr->npairs; i++) free(tr->pairs[i].words.v);
    free(tr->pairs);
    mm__u64map_free(&tr->pmap);
    free(tr->heap);
    free(tr->touched.v);
}

mm_status mm_tokenizer_bpe_train(const char *text, size_t len, int merges, mm_tokenizer **out) {
    if (!out || (!text && len)) return mm_error(MM_ERR_ARG, "tokenizer_bpe_train: NULL argument");
    *out = NULL;
    if (merges < 0 || merges > 1000000)
        return mm_error(MM_ERR_ARG, "tokenizer_bpe_train: merges = %d, expected 0..1000000",
                        merges);
    if (!text) text = "";
    if (mm_utf8_validate(text, len, NULL) != MM_OK)
        return mm__error_wrap(MM_ERR_ARG, "tokenizer_bpe_train: corpus is not valid UTF-8");
    mm_tokenizer *t = mm__tok_alloc(MM__TOK_BPE);
    if (!t) return nomem();
    trainer tr;
    memset(&tr, 0, sizeof tr);
    tr.text = text;
    mm_status st = mm__bpe_compile_regex(t);
    if (st == MM_OK && (mm__bmap_init(&tr.wmap, 4096) || mm__u64map_init(&tr.pmap, 4096)))
        st = nomem();
    if (st == MM_OK) st = mm__bpe_pieces(t, text, len, count_piece, &tr);
    if (st != MM_OK) goto fail;

    /* symbols of each distinct word, initially its bytes (ids 0..255) */
    size_t total = 0;
    for (size_t w = 0; w < tr.nwords; w++) total += (size_t)tr.wlen[w];
    tr.syms = malloc((total + 1) * sizeof *tr.syms);
    tr.wstart = malloc((tr.nwords + 1) * sizeof *tr.wstart);
    tr.wstamp = calloc(tr.nwords + 1, sizeof *tr.wstamp);
    t->merge_a = malloc(((size_t)merges + 1) * sizeof(int32_t));
    t->merge_b = malloc(((size_t)merges + 1) * sizeof(int32_t));
    t->merge_c = malloc(((size_t)merges + 1) * sizeof(int32_t));
    if (!tr.syms || !tr.wstart || !tr.wstamp || !t->merge_a || !t->merge_b || !t->merge_c) {
        st = nomem();
        goto fail;
    }
    size_t o = 0;
    for (size_t w = 0; w < tr.nwords; w++) {
        tr.wstart[w] = o;
        for (int32_t i = 0; i < tr.wlen[w]; i++) tr.syms[o++] = (unsigned char)text[tr.wtext[w] + (size_t)i];
    }
    for (size_t w = 0; w < tr.nwords; w++) {
        const int32_t *s = tr.syms + tr.wstart[w];
        for (int32_t i = 0; i + 1 < tr.wlen[w]; i++) {
            int32_t p = get_pair(&tr, s[i], s[i + 1]);
            if (p < 0 || add_word(&tr.pairs[p], (int32_t)w)) {
                st = nomem();
                goto fail;
            }
            tr.pairs[p].count += tr.wcount[w];
        }
    }
    for (size_t p = 0; p < tr.npairs; p++)
        if (hpush(&tr, (hent){tr.pairs[p].count, (int32_t)p})) {
            st = nomem();
            goto fail;
        }

    uint32_t stamp = 0;
    int done = 0;
    while (done < merges) {
        int32_t best = -1;
        while (tr.nheap) {
            hent e = hpop(&tr);
            if (tr.pairs[e.p].count == e.count && e.count > 0) {
                best = e.p;
                break;
            }
        }
        if (best < 0) break; /* nothing left to merge */
        int32_t a = tr.pairs[best].a, b = tr.pairs[best].b, c = 256 + done;
        t->merge_a[done] = a;
        t->merge_b[done] = b;
        t->merge_c[done] = c;
        done++;
        stamp++;
        tr.touched.n = 0;
        mm__ivec list = tr.pairs[best].words; /* no new word joins this pair's list below */
        tr.pairs[best].words = (mm__ivec){0};
        for (size_t k = 0; k < list.n; k++) {
            int32_t w = list.v[k];
            if (tr.wstamp[w] == stamp) continue;
            tr.wstamp[w] = stamp;
            int32_t *s = tr.syms + tr.wstart[w];
            int32_t n = tr.wlen[w], i, j;
            for (i = 0; i + 1 < n; i++)
                if (s[i] == a && s[i + 1] == b) break;
            if (i + 1 >= n) continue; /* stale entry: the pair is gone from this word */
            int64_t cnt = tr.wcount[w];
            for (i = 0; i + 1 < n; i++) {
                int32_t p = (int32_t)mm__u64map_get(&tr.pmap, mm__pair_key(s[i], s[i + 1]));
                if (add_count(&tr, p, -cnt, stamp)) goto oom;
            }
            for (i = 0, j = 0; i < n;) {
                if (i + 1 < n && s[i] == a && s[i + 1] == b) {
                    s[j++] = c;
                    i += 2;
                } else {
                    s[j++] = s[i++];
                }
            }
            tr.wlen[w] = n = j;
            for (i = 0; i + 1 < n; i++) {
                int32_t p = get_pair(&tr, s[i], s[i + 1]);
                if (p < 0 || add_count(&tr, p, cnt, stamp)) goto oom;
                if ((s[i] == c || s[i + 1] == c) && add_word(&tr.pairs[p], w)) goto oom;
            }
        }
        free(list.v);
        for (size_t k = 0; k < tr.touched.n; k++) {
            int32_t p = tr.touched.v[k];
            if (tr.pairs[p].count > 0 && hpush(&tr, (hent){tr.pairs[p].count, p})) goto oom;
        }
        continue;
    oom:
        free(list.v);
        st = nomem();
        goto fail;
    }
    t->n_merges = done;
    t->vocab_size = 256 + done;
    for (int i = 0; i < 256; i++) t->byte_id[i] = i;
    trainer_free(&tr);
    st = mm__bpe_finish(t, "bpe_train", NULL, NULL);
    if (st != MM_OK) {
        mm_tokenizer_free(t);
        return st;
    }
    *out = t;
    return MM_OK;
fail:
    trainer_free(&tr);
    mm_tokenizer_free(t);
    return st;
}
