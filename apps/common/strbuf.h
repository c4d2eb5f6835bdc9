/* A growable string for building JSON metadata in the applications. A failed allocation
 * sets `failed` and later appends do nothing, so callers check once at the end. */
#ifndef MM_APP_STRBUF_H
#define MM_APP_STRBUF_H

#include <stddef.h>

typedef struct sbuf {
    char *s;
    size_t n, cap;
    int failed;
} sbuf;

void sb_printf(sbuf *b, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

#endif
