/* Atomic file replacement: write "<path>.tmp.<pid>" in the same directory, flush and fsync
 * it, rename it over path, then fsync the directory so that the rename is durable. On any
 * failure before the rename the temp file is removed and path is left untouched. */
#include "mediaml.h"
#include "io/atomic.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* fsyncs the directory holding path. Filesystems that cannot sync directories (EINVAL,
 * ENOTSUP) are accepted. */
static mm_status fsync_parent(const char *path) {
    const char *slash = strrchr(path, '/');
    char *dir;
    if (!slash)
        dir = strdup(".");
    else if (slash == path)
        dir = strdup("/");
    else {
        dir = malloc((size_t)(slash - path) + 1);
        if (dir) {
            memcpy(dir, path, (size_t)(slash - path));
            dir[slash - path] = 0;
        }
    }
    if (!dir) return mm_error(MM_ERR_NOMEM, "%s: out of memory", path);
    int fd = open(dir, O_RDONLY | O_DIRECTORY);
    if (fd < 0) {
        mm_status st =
            mm_error(MM_ERR_IO, "%s: written, but cannot open directory %s to sync it: %s", path,
                     dir, strerror(errno));
        free(dir);
        return st;
    }
    mm_status st = MM_OK;
    if (fsync(fd) != 0 && errno != EINVAL && errno != ENOTSUP)
        st = mm_error(MM_ERR_IO, "%s: written, but syncing directory %s failed: %s", path, dir,
                      strerror(errno));
    close(fd);
    free(dir);
    return st;
}

mm_status mm_write_file_atomic_parts(const char *path, int n, const void *const *bufs,
                                     const size_t *lens) {
    if (!path || !*path) return mm_error(MM_ERR_ARG, "mm_write_file_atomic: empty path");
    if (n < 0 || (n > 0 && (!bufs || !lens)))
        return mm_error(MM_ERR_ARG, "%s: invalid buffers", path);
    for (int i = 0; i < n; i++)
        if (lens[i] && !bufs[i]) return mm_error(MM_ERR_ARG, "%s: buffer %d is NULL", path, i);

    size_t tlen = strlen(path) + 32;
    char *tmp = malloc(tlen);
    if (!tmp) return mm_error(MM_ERR_NOMEM, "%s: out of memory", path);
    snprintf(tmp, tlen, "%s.tmp.%ld", path, (long)getpid());

    FILE *fp = fopen(tmp, "wb");
    if (!fp) {
        mm_status st = mm_error(MM_ERR_IO, "%s: cannot create temporary file %s: %s", path, tmp,
                                strerror(errno));
        free(tmp);
        return st;
    }
    const char *what = NULL;
    int err = 0;
    for (int i = 0; i < n && !what; i++) {
        if (lens[i] && fwrite(bufs[i], 1, lens[i], fp) != lens[i]) {
            what = "write";
            err = errno;
        }
    }
    if (!what && fflush(fp) != 0) what = "write", err = errno;
    if (!what && fsync(fileno(fp)) != 0) what = "fsync", err = errno;
    if (fclose(fp) != 0 && !what) what = "close", err = errno;
    if (!what && rename(tmp, path) != 0) what = "rename", err = errno;
    if (what) {
        mm_status st = mm_error(MM_ERR_IO, "%s: %s of temporary file %s failed: %s", path, what,
                                tmp, err ? strerror(err) : "unknown error");
        remove(tmp);
        free(tmp);
        return st;
    }
    free(tmp);
    return fsync_parent(path);
}

mm_status mm_write_file_atomic(const char *path, const void *buf, size_t len) {
    const void *bufs[1] = {buf};
    size_t lens[1] = {len};
    return mm_write_file_atomic_parts(path, 1, bufs, lens);
}
