/* Tokenization for sentiment: English words and punctuation (negations kept as words), Chinese
 * characters (bigrams come from the n-gram features), optional ASCII lower-casing. */
#include "sentiment/sentiment.h"

#include <mediaml_text.h>

#include <stdlib.h>
#include <string.h>

void sent_tokens_free(sent_tokens *t) {
    free(t->start), free(t->len), free(t->off), free(t->nlen), free(t->buf);
    memset(t, 0, sizeof *t);
}

const char *sent_lang_name(sent_lang l) { return l == SENT_ZH ? "zh" : "en"; }

/* CJK ideographs and kana/hangul: one token per character in either language. */
static int is_cjk(uint32_t cp) {
    return (cp >= 0x3400 && cp <= 0x4DBF) || (cp >= 0x4E00 && cp <= 0x9FFF) || (cp >= 0xF900 && cp <= 0xFAFF) ||
           (cp >= 0x20000 && cp <= 0x2FA1F) || (cp >= 0x3040 && cp <= 0x30FF) || (cp >= 0xAC00 && cp <= 0xD7AF);
}

static int is_space_cp(uint32_t cp) {
    return cp == ' ' || (cp >= 0x09 && cp <= 0x0D) || cp == 0x85 || cp == 0xA0 || cp == 0x1680 ||
           (cp >= 0x2000 && cp <= 0x200B) || cp == 0x2028 || cp == 0x2029 || cp == 0x202F || cp == 0x205F ||
           cp == 0x3000 || cp == 0xFEFF;
}

/* Punctuation and symbols: ASCII punctuation, Latin-1 symbols, general punctuation, CJK
 * punctuation, full-width forms' punctuation. */
static int is_punct_cp(uint32_t cp) {
    if (cp < 0x80) return (cp >= 0x21 && cp <= 0x2F) || (cp >= 0x3A && cp <= 0x40) || (cp >= 0x5B && cp <= 0x60) ||
                          (cp >= 0x7B && cp <= 0x7E);
    return (cp >= 0xA1 && cp <= 0xBF) || cp == 0xD7 || cp == 0xF7 || (cp >= 0x2010 && cp <= 0x2BFF) ||
           (cp >= 0x3001 && cp <= 0x303F) || (cp >= 0xFE30 && cp <= 0xFE6F) || (cp >= 0xFF01 && cp <= 0xFF0F) ||
           (cp >= 0xFF1A && cp <= 0xFF20) || (cp >= 0xFF3B && cp <= 0xFF40) || (cp >= 0xFF5B && cp <= 0xFF65);
}

static int is_ascii_word(uint32_t cp) {
    return (cp >= '0' && cp <= '9') || (cp >= 'a' && cp <= 'z') || (cp >= 'A' && cp <= 'Z');
}

static mm_status add(sent_tokens *t, int lowercase, const char *prefix, const char *text, int start, int len) {
    const int pl = (int)strlen(prefix);
    if (t->n == t->cap) {
        int cap = t->cap ? t->cap * 2 : 64;
        int *a = realloc(t->start, (size_t)cap * sizeof(int));
        if (a) t->start = a;
        int *b = a ? realloc(t->len, (size_t)cap * sizeof(int)) : NULL;
        if (b) t->len = b;
        int *c = b ? realloc(t->off, (size_t)cap * sizeof(int)) : NULL;
        if (c) t->off = c;
        int *d = c ? realloc(t->nlen, (size_t)cap * sizeof(int)) : NULL;
        if (d) t->nlen = d;
        if (!d) return mm_error(MM_ERR_NOMEM, "out of memory");
        t->cap = cap;
    }
    if (t->buf_n + (size_t)(pl + len) + 1 > t->buf_cap) {
        size_t cap = t->buf_cap ? t->buf_cap : 256;
        while (cap < t->buf_n + (size_t)(pl + len) + 1) cap *= 2;
        char *nb = realloc(t->buf, cap);
        if (!nb) return mm_error(MM_ERR_NOMEM, "out of memory");
        t->buf = nb, t->buf_cap = cap;
    }
    char *o = t->buf + t->buf_n;
    memcpy(o, prefix, (size_t)pl);
    o += pl;
    for (int i = 0; i < len; i++) {
        char ch = text[start + i];
        o[i] = lowercase && ch >= 'A' && ch <= 'Z' ? (char)(ch - 'A' + 'a') : ch;
    }
    o[len] = 0;
    t->start[t->n] = start;
    t->len[t->n] = len;
    t->off[t->n] = (int)t->buf_n;
    t->nlen[t->n++] = pl + len;
    t->buf_n += (size_t)(pl + len) + 1;
    return MM_OK;
}

/* Words that open a negation scope (lower-case; also any word ending in n't). */
static int is_negation(const char *w, int n) {
    static const char *words[] = {"not", "no", "never", "n't", "cannot", "nothing", "nobody", "none", "nor",
                                  "neither", "nowhere", "hardly", "barely", "without", NULL};
    if (n >= 3 && !memcmp(w + n - 3, "n't", 3)) return 1;
    for (int k = 0; words[k]; k++)
        if ((int)strlen(words[k]) == n && !memcmp(w, words[k], (size_t)n)) return 1;
    return 0;
}

static int ends_clause(uint32_t cp) {
    return cp == '.' || cp == ',' || cp == ':' || cp == ';' || cp == '!' || cp == '?' || cp == 0x3002 || cp == 0xFF0C;
}

mm_status sent_tokenize(sent_lang lang, int flags, const char *text, size_t len, sent_tokens *out) {
    const int lowercase = flags & SENT_TOK_LOWER, negate = lang == SENT_EN && (flags & SENT_TOK_NEGATE);
    int scope = 0; /* inside a negation scope */
    out->n = 0;
    out->buf_n = 0;
    size_t bad;
    mm_status st = mm_utf8_validate(text, len, &bad);
    if (st) return st;
    if (len > (size_t)SENT_MAX_TEXT_BYTES)
        return mm_error(MM_ERR_ARG, "text of %zu bytes exceeds the limit of %d bytes", len, SENT_MAX_TEXT_BYTES);
    size_t i = 0;
    while (i < len && !st) {
        uint32_t cp;
        int k = mm_utf8_decode(text + i, len - i, &cp);
        if (k <= 0) return mm_error(MM_ERR_ARG, "invalid UTF-8 at byte %zu", i);
        if (is_space_cp(cp)) {
            i += (size_t)k;
            continue;
        }
        size_t j = i + (size_t)k;
        if (is_cjk(cp)) {
            /* one character */
        } else if (is_punct_cp(cp)) {
            /* a run of the same character ("!!!", "...") */
            uint32_t c2;
            int k2;
            while (j < len && (k2 = mm_utf8_decode(text + j, len - j, &c2)) > 0 && c2 == cp) j += (size_t)k2;
        } else {
            /* a word: letters/digits (any script but CJK); English keeps inner ' and - */
            for (;;) {
                uint32_t c2;
                int k2 = j < len ? mm_utf8_decode(text + j, len - j, &c2) : 0;
                if (k2 <= 0) break;
                int word = !is_space_cp(c2) && !is_punct_cp(c2) && !is_cjk(c2);
                if (lang == SENT_ZH) word = is_ascii_word(c2) && is_ascii_word(cp);
                if (word) {
                    j += (size_t)k2;
                    continue;
                }
                if (lang == SENT_EN && (c2 == '\'' || c2 == '-' || c2 == 0x2019) && j + (size_t)k2 < len) {
                    uint32_t c3;
                    int k3 = mm_utf8_decode(text + j + k2, len - j - (size_t)k2, &c3);
                    if (k3 > 0 && !is_space_cp(c3) && !is_punct_cp(c3) && !is_cjk(c3)) {
                        j += (size_t)k2 + (size_t)k3;
                        continue;
                    }
                }
                break;
            }
        }
        int punct = is_punct_cp(cp);
        if (negate && punct && ends_clause(cp)) scope = 0;
        st = add(out, lowercase, negate && scope && !punct ? "not_" : "", text, (int)i, (int)(j - i));
        if (!st && negate && !punct && is_negation(out->buf + out->off[out->n - 1], out->nlen[out->n - 1])) scope = 1;
        i = j;
    }
    return st;
}

sent_lang sent_detect_lang(const sent_corpus *c) {
    long cjk = 0, total = 0;
    for (int i = 0; i < c->n; i++) {
        const char *s = c->text[i];
        size_t len = strlen(s), p = 0;
        while (p < len) {
            uint32_t cp;
            int k = mm_utf8_decode(s + p, len - p, &cp);
            if (k <= 0) break;
            if (!is_space_cp(cp)) total++, cjk += is_cjk(cp);
            p += (size_t)k;
        }
    }
    return total > 0 && cjk * 5 >= total ? SENT_ZH : SENT_EN;
}
