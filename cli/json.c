/* Writing JSON lines: escaped strings and numbers (null when not finite). */
#include "json.h"

#include <math.h>
#include <string.h>

void json_string(FILE *f, const char *s) { json_string_n(f, s ? s : "", s ? strlen(s) : 0); }

void json_string_n(FILE *f, const char *s, size_t len) {
    fputc('"', f);
    for (const unsigned char *p = (const unsigned char *)s, *e = p + len; p < e; p++) {
        switch (*p) {
        case '"': fputs("\\\"", f); break;
        case '\\': fputs("\\\\", f); break;
        case '\n': fputs("\\n", f); break;
        case '\r': fputs("\\r", f); break;
        case '\t': fputs("\\t", f); break;
        default:
            if (*p < 0x20) fprintf(f, "\\u%04x", *p);
            else fputc(*p, f);
        }
    }
    fputc('"', f);
}

void json_number(FILE *f, double v) {
    if (isfinite(v)) fprintf(f, "%.6g", v);
    else fputs("null", f);
}

void json_field_number(FILE *f, const char *key, double v) {
    fprintf(f, ",\"%s\":", key);
    json_number(f, v);
}
