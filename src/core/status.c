/* Error reporting: a status code returned by every fallible call, and a per-thread
 * message describing the last failure (like errno + strerror, but with the details). */
#include "mediaml.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static _Thread_local char last_message[1024];

const char *mm_errmsg(void) { return last_message; }

mm_status mm_error(mm_status code, const char *fmt, ...) {
    /* Format into a local buffer first: callers may pass mm_errmsg() itself as an argument
     * (wrapping an earlier message with context). */
    char buf[sizeof last_message];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    memcpy(last_message, buf, sizeof buf);
    return code;
}

const char *mm_status_name(mm_status s) {
    switch (s) {
    case MM_OK: return "ok";
    case MM_ERR_ARG: return "invalid argument";
    case MM_ERR_NOMEM: return "out of memory";
    case MM_ERR_IO: return "i/o error";
    case MM_ERR_FORMAT: return "bad format";
    case MM_ERR_SHAPE: return "shape mismatch";
    case MM_ERR_NUMERIC: return "numeric error";
    case MM_ERR_STATE: return "invalid state";
    }
    return "unknown error";
}
