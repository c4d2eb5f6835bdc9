/* Character-level tokenizer: one token per Unicode code point, ids in code point order. */
#include "text/text_internal.h"

#include <cjson/cJSON.h>
#include <stdio.h>

/* Builds the tables of a char tokenizer from its sorted code points (t->cps, t->n_cps) and
 * with_unk. */
static mm_status char_finish(mm_tokenizer *t, int with_unk) {
    t->vocab_size = t->n_cps + (with_unk ? 1 : 0);
    t->unk_id = with_unk ? t->n_cps : -1;
    size_t n = (size_t)t->vocab_size;
    t->off = malloc((n ? n : 1) * sizeof *t->off);
    t->len = malloc((n ? n : 1) * sizeof *t->len);
    t->pool = malloc(n * 4 + 1);
    if (!t->off || !t->len || !t->pool) return mm_error(MM_ERR_NOMEM, "char tokenizer: out of memory");
    size_t o = 0;
    for (int id = 0; id < t->n_cps; id++) {
        t->off[id] = o;
        t->len[id] = (uint32_t)mm_utf8_encode(t->cps[id], t->pool + o);
        o += t->len[id];
        if (t->cps[id] < 128) t->ascii[t->cps[id]] = id;
    }
    if (with_unk) {
        t->off[t->unk_id] = o;
        t->len[t->unk_id] = 3;
        memcpy(t->pool + o, "\xEF\xBF\xBD", 3); /* U+FFFD */
    }
    return mm__tok_index_bytes(t);
}

mm_status mm_tokenizer_char_build(const char *text, size_t len, int with_unk, mm_tokenizer **out) {
    if (!out || (!text && len)) return mm_error(MM_ERR_ARG, "tokenizer_char_build: NULL argument");
    *out = NULL;
    if (len == 0) return mm_error(MM_ERR_ARG, "tokenizer_char_build: empty corpus");
    size_t bad;
    if (mm_utf8_validate(text, len, &bad) != MM_OK)
        return mm__error_wrap(MM_ERR_ARG, "tokenizer_char_build: corpus is not valid UTF-8");
    /* mark the code points seen in a bitmap over the whole code space */
    uint32_t *seen = calloc(0x110000 / 32, sizeof *seen);
    if (!seen) return mm_error(MM_ERR_NOMEM, "tokenizer_char_build: out of memory");
    const unsigned char *p = (const unsigned char *)text;
    size_t i = 0;
    int count = 0;
    while (i < len) {
        uint32_t cp;
        const char *why;
        int r = mm__utf8_step(p + i, len - i, &cp, &why); /* > 0: validated above */
        if (!(seen[cp >> 5] & 1u << (cp & 31))) {
            seen[cp >> 5] |= 1u << (cp & 31);
            count++;
        }
        i += (size_t)r;
    }
    mm_tokenizer *t = mm__tok_alloc(MM__TOK_CHAR);
    if (!t || !(t->cps = malloc((size_t)count * sizeof *t->cps))) {
        free(seen);
        mm_tokenizer_free(t);
        return mm_error(MM_ERR_NOMEM, "tokenizer_char_build: out of memory");
    }
    for (uint32_t w = 0; w < 0x110000 / 32; w++) {
        if (!seen[w]) continue;
        for (uint32_t b = 0; b < 32; b++)
            if (seen[w] & 1u << b) t->cps[t->n_cps++] = w << 5 | b;
    }
    free(seen);
    mm_status st = char_finish(t, with_unk);
    if (st != MM_OK) {
        mm_tokenizer_free(t);
        return st;
    }
    *out = t;
    return MM_OK;
}

static int32_t char_id(const mm_tokenizer *t, uint32_t cp) {
    if (cp < 128) return t->ascii[cp];
    int lo = 0, hi = t->n_cps - 1;
    while (lo <= hi) {
        int mid = (lo + hi) / 2;
        if (t->cps[mid] == cp) return mid;
        if (t->cps[mid] < cp) lo = mid + 1;
        else hi = mid - 1;
    }
    return -1;
}

mm_status mm__char_encode(const mm_tokenizer *t, const char *text, size_t len, int32_t **ids,
                          size_t *n) {
    if (mm_utf8_validate(text, len, NULL) != MM_OK)
        return mm__error_wrap(MM_ERR_ARG, "tokenizer_encode");
    int32_t *v = malloc((len ? len : 1) * sizeof *v); /* at most one id per byte */
    if (!v) return mm_error(MM_ERR_NOMEM, "tokenizer_encode: out of memory");
    const unsigned char *p = (const unsigned char *)text;
    size_t i = 0, k = 0;
    while (i < len) {
        uint32_t cp;
        const char *why;
        int r = mm__utf8_step(p + i, len - i, &cp, &why);
        int32_t id = char_id(t, cp);
        if (id < 0) id = t->unk_id;
        if (id < 0) {
            free(v);
            char shown[16] = "";
            if (cp >= 0x20 && cp != 0x7F) memcpy(shown, text + i, (size_t)r);
            return mm_error(MM_ERR_ARG,
                            "tokenizer_encode: character '%s' (U+%04X) at byte offset %zu is not "
                            "in the char tokenizer's vocabulary (build it with_unk to map unseen "
                            "characters to <unk>)",
                            shown, (unsigned)cp, i);
        }
        v[k++] = id;
        i += (size_t)r;
    }
    int32_t *shrunk = realloc(v, (k ? k : 1) * sizeof *v);
    *ids = shrunk ? shrunk : v;
    *n = k;
    return MM_OK;
}

mm_status mm__char_to_json(const mm_tokenizer *t, void *rootp) {
    cJSON *root = rootp;
    size_t total = 0;
    for (int id = 0; id < t->n_cps; id++) total += t->len[id];
    char *chars = malloc(total + 1);
    if (!chars) return mm_error(MM_ERR_NOMEM, "tokenizer_to_json: out of memory");
    size_t o = 0;
    int has_nul = 0;
    for (int id = 0; id < t->n_cps; id++) {
        if (t->cps[id] == 0) { /* a JSON string through cJSON cannot hold U+0000 */
            has_nul = 1;
            continue;
        }
        memcpy(chars + o, t->pool + t->off[id], t->len[id]);
        o += t->len[id];
    }
    chars[o] = 0;
    int ok = cJSON_AddStringToObject(root, "type", "char") &&
             cJSON_AddStringToObject(root, "chars", chars) &&
             cJSON_AddBoolToObject(root, "unk", t->unk_id >= 0) &&
             (!has_nul || cJSON_AddBoolToObject(root, "nul", 1));
    free(chars);
    return ok ? MM_OK : mm_error(MM_ERR_NOMEM, "tokenizer_to_json: out of memory");
}

mm_status mm__char_from_json(const void *rootp, mm_tokenizer **out) {
    const cJSON *root = rootp;
    const cJSON *chars = cJSON_GetObjectItemCaseSensitive(root, "chars");
    const cJSON *unk = cJSON_GetObjectItemCaseSensitive(root, "unk");
    const cJSON *nul = cJSON_GetObjectItemCaseSensitive(root, "nul");
    if (!cJSON_IsString(chars))
        return mm_error(MM_ERR_FORMAT, "tokenizer JSON (char): missing string field \"chars\"");
    if (unk && !cJSON_IsBool(unk))
        return mm_error(MM_ERR_FORMAT, "tokenizer JSON (char): \"unk\" is not a boolean");
    if (nul && !cJSON_IsBool(nul))
        return mm_error(MM_ERR_FORMAT, "tokenizer JSON (char): \"nul\" is not a boolean");
    const char *s = chars->valuestring;
    size_t len = strlen(s), bad;
    if (mm_utf8_validate(s, len, &bad) != MM_OK)
        return mm__error_wrap(MM_ERR_FORMAT, "tokenizer JSON (char): \"chars\" is not valid UTF-8");
    int with_nul = cJSON_IsTrue(nul);
    if (len == 0 && !with_nul)
        return mm_error(MM_ERR_FORMAT, "tokenizer JSON (char): \"chars\" is empty");
    mm_tokenizer *t = mm__tok_alloc(MM__TOK_CHAR);
    if (!t || !(t->cps = malloc((len + 1) * sizeof *t->cps))) {
        mm_tokenizer_free(t);
        return mm_error(MM_ERR_NOMEM, "tokenizer_from_json: out of memory");
    }
    if (with_nul) t->cps[t->n_cps++] = 0;
    size_t i = 0;
    while (i < len) {
        uint32_t cp;
        const char *why;
        int r = mm__utf8_step((const unsigned char *)s + i, len - i, &cp, &why);
        if (t->n_cps > 0 && cp <= t->cps[t->n_cps - 1]) {
            mm_tokenizer_free(t);
            return mm_error(MM_ERR_FORMAT,
                            "tokenizer JSON (char): \"chars\" is not in strictly increasing code "
                            "point order at U+%04X (byte offset %zu)",
                            (unsigned)cp, i);
        }
        t->cps[t->n_cps++] = cp;
        i += (size_t)r;
    }
    mm_status st = char_finish(t, cJSON_IsTrue(unk));
    if (st != MM_OK) {
        mm_tokenizer_free(t);
        return st;
    }
    *out = t;
    return MM_OK;
}
