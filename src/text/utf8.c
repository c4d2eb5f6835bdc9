/* UTF-8 validation, decoding and encoding (RFC 3629: at most 4 bytes, no surrogates, nothing
 * above U+10FFFF, shortest form only). */
#include "text/text_internal.h"

#include <stdio.h>

mm_status mm__error_wrap(mm_status code, const char *prefix) {
    char msg[1024];
    snprintf(msg, sizeof msg, "%s", mm_errmsg());
    return mm_error(code, "%s: %s", prefix, msg);
}

int mm__utf8_step(const unsigned char *s, size_t len, uint32_t *cp, const char **why) {
    unsigned b0 = s[0];
    if (b0 < 0x80) {
        *cp = b0;
        return 1;
    }
    int need;
    uint32_t c;
    unsigned lo = 0x80, hi = 0xBF; /* allowed range of the second byte */
    const char *range_why = NULL;
    if (b0 < 0xC0) {
        *why = "unexpected continuation byte";
        return -1;
    } else if (b0 < 0xC2) {
        *why = "overlong encoding";
        return -1;
    } else if (b0 < 0xE0) {
        need = 2;
        c = b0 & 0x1F;
    } else if (b0 < 0xF0) {
        need = 3;
        c = b0 & 0x0F;
        if (b0 == 0xE0) lo = 0xA0, range_why = "overlong encoding";
        if (b0 == 0xED) hi = 0x9F, range_why = "surrogate code point (U+D800..U+DFFF)";
    } else if (b0 < 0xF5) {
        need = 4;
        c = b0 & 0x07;
        if (b0 == 0xF0) lo = 0x90, range_why = "overlong encoding";
        if (b0 == 0xF4) hi = 0x8F, range_why = "code point above U+10FFFF";
    } else if (b0 < 0xF8) {
        *why = "code point above U+10FFFF";
        return -1;
    } else {
        *why = "invalid byte (0xF8..0xFF never occur in UTF-8)";
        return -1;
    }
    for (int i = 1; i < need; i++) {
        if ((size_t)i >= len) return 0; /* valid prefix cut by the end of the buffer */
        unsigned b = s[i];
        if ((b & 0xC0) != 0x80) {
            *why = "truncated sequence (missing continuation byte)";
            return -i; /* the i bytes before are a valid prefix: skip them as one unit */
        }
        if (i == 1 && (b < lo || b > hi)) {
            *why = range_why;
            return -1;
        }
        c = c << 6 | (b & 0x3F);
    }
    *cp = c;
    return need;
}

mm_status mm_utf8_validate(const char *s, size_t len, size_t *bad_offset) {
    if (bad_offset) *bad_offset = len;
    if (!s && len) return mm_error(MM_ERR_ARG, "utf8: NULL text with length %zu", len);
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0;
    while (i < len) {
        /* fast path over ASCII, 8 bytes at a time */
        while (i + 8 <= len) {
            uint64_t w;
            memcpy(&w, p + i, 8);
            if (w & 0x8080808080808080ULL) break;
            i += 8;
        }
        if (i >= len) break;
        if (p[i] < 0x80) {
            i++;
            continue;
        }
        uint32_t cp;
        const char *why = NULL;
        int r = mm__utf8_step(p + i, len - i, &cp, &why);
        if (r <= 0) {
            if (bad_offset) *bad_offset = i;
            return mm_error(MM_ERR_ARG, "invalid UTF-8 at byte offset %zu (byte 0x%02X): %s", i,
                            p[i], r == 0 ? "truncated sequence at end of text" : why);
        }
        i += (size_t)r;
    }
    return MM_OK;
}

int mm_utf8_decode(const char *s, size_t len, uint32_t *cp) {
    if (!s || len == 0) return 0;
    uint32_t c = 0;
    const char *why;
    int r = mm__utf8_step((const unsigned char *)s, len, &c, &why);
    if (r <= 0) return 0;
    if (cp) *cp = c;
    return r;
}

int mm_utf8_encode(uint32_t cp, char out[4]) {
    unsigned char *o = (unsigned char *)out;
    if (cp < 0x80) {
        o[0] = (unsigned char)cp;
        return 1;
    }
    if (cp < 0x800) {
        o[0] = (unsigned char)(0xC0 | cp >> 6);
        o[1] = (unsigned char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp >= 0xD800 && cp <= 0xDFFF) return 0;
    if (cp < 0x10000) {
        o[0] = (unsigned char)(0xE0 | cp >> 12);
        o[1] = (unsigned char)(0x80 | (cp >> 6 & 0x3F));
        o[2] = (unsigned char)(0x80 | (cp & 0x3F));
        return 3;
    }
    if (cp > 0x10FFFF) return 0;
    o[0] = (unsigned char)(0xF0 | cp >> 18);
    o[1] = (unsigned char)(0x80 | (cp >> 12 & 0x3F));
    o[2] = (unsigned char)(0x80 | (cp >> 6 & 0x3F));
    o[3] = (unsigned char)(0x80 | (cp & 0x3F));
    return 4;
}
