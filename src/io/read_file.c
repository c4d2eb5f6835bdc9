/* Reading a whole file into memory, for the text and metadata loaders. */
#include "mediaml.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

mm_status mm_read_file(const char *path, size_t limit, char **buf, size_t *len) {
    *buf = NULL;
    *len = 0;
    FILE *f = fopen(path, "rb");
    if (!f) return mm_error(MM_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    size_t cap = 1 << 16, n = 0;
    char *b = malloc(cap + 1);
    while (b) {
        size_t want = cap - n;
        if (limit && limit - n < want) want = limit - n;
        size_t got = fread(b + n, 1, want, f);
        n += got;
        if (got < want || (limit && n == limit)) break;
        /* the buffer is full: grow it (doubling keeps the number of copies logarithmic) */
        char *nb = realloc(b, 2 * cap + 1);
        if (!nb) free(b);
        b = nb;
        cap *= 2;
    }
    int err = ferror(f);
    fclose(f);
    if (!b) return mm_error(MM_ERR_NOMEM, "%s: out of memory", path);
    if (err) {
        free(b);
        return mm_error(MM_ERR_IO, "%s: read error", path);
    }
    b[n] = 0;
    *buf = b;
    *len = n;
    return MM_OK;
}
