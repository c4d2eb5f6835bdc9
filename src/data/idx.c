/* IDX files (the MNIST format) and IDX image-classification data sets.
 *
 * IDX layout: two zero bytes, a type byte, a rank byte, then rank big-endian u32 dimensions,
 * then the values, big-endian, row-major. Types: 0x08 u8, 0x09 i8, 0x0B i16, 0x0C i32,
 * 0x0D f32, 0x0E f64. Files are read through zlib, which reads plain and gzip files alike. */
#include "mediaml.h"

#include <errno.h>
#include <float.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#define IDX_CHUNK (1u << 20) /* bytes read per gzread batch (a multiple of every type size) */

/* Largest label accepted: labels are stored as floats, which hold integers exactly up to 2^24. */
#define IDX_MAX_LABEL 16777215.0

static int idx_type_size(int type) {
    switch (type) {
    case 0x08: return 1;
    case 0x09: return 1;
    case 0x0B: return 2;
    case 0x0C: return 4;
    case 0x0D: return 4;
    case 0x0E: return 8;
    default: return 0;
    }
}

static uint32_t be32(const unsigned char *p) {
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | (uint32_t)p[3];
}

static uint64_t be64(const unsigned char *p) { return (uint64_t)be32(p) << 32 | be32(p + 4); }

/* Converts n big-endian values of the given type to floats. */
static void idx_convert(int type, const unsigned char *src, size_t n, float *dst) {
    switch (type) {
    case 0x08:
        for (size_t i = 0; i < n; i++) dst[i] = (float)src[i];
        break;
    case 0x09:
        for (size_t i = 0; i < n; i++) dst[i] = (float)(int8_t)src[i];
        break;
    case 0x0B:
        for (size_t i = 0; i < n; i++)
            dst[i] = (float)(int16_t)(uint16_t)((unsigned)src[2 * i] << 8 | src[2 * i + 1]);
        break;
    case 0x0C:
        for (size_t i = 0; i < n; i++) dst[i] = (float)(int32_t)be32(src + 4 * i);
        break;
    case 0x0D:
        for (size_t i = 0; i < n; i++) {
            uint32_t u = be32(src + 4 * i);
            float f;
            memcpy(&f, &u, sizeof f);
            dst[i] = f;
        }
        break;
    case 0x0E:
        for (size_t i = 0; i < n; i++) {
            uint64_t u = be64(src + 8 * i);
            double d;
            memcpy(&d, &u, sizeof d);
            dst[i] = (float)d;
        }
        break;
    }
}

/* Reads up to n bytes, looping over short reads; *got receives the byte count (< n at the end
 * of the data). Returns MM_OK, or an error naming path on a read error or corrupt gzip data. */
static mm_status gz_read_full(gzFile gz, const char *path, void *buf, size_t n, size_t *got) {
    *got = 0;
    while (*got < n) {
        size_t want = n - *got;
        if (want > (1u << 30)) want = 1u << 30;
        int r = gzread(gz, (char *)buf + *got, (unsigned)want);
        if (r < 0) {
            int err = 0;
            const char *msg = gzerror(gz, &err);
            if (err == Z_ERRNO)
                return mm_error(MM_ERR_IO, "%s: read error: %s", path, strerror(errno));
            if (err == Z_BUF_ERROR) break; /* gzip stream cut short: reported as truncation */
            return mm_error(MM_ERR_FORMAT, "%s: corrupt gzip data: %s", path,
                            msg ? msg : "unknown");
        }
        if (r == 0) break;
        *got += (size_t)r;
    }
    return MM_OK;
}

/* Reads an IDX file. If max_rows > 0 only the first max_rows entries of dimension 0 are read
 * (shape[0] reports the rows read). *rows_in_file receives the file's own dimension 0. */
static mm_status idx_read_rows(const char *path, long max_rows, mm_array *out, long *rows_in_file) {
    memset(out, 0, sizeof *out);
    if (rows_in_file) *rows_in_file = 0;
    if (!path) return mm_error(MM_ERR_ARG, "mm_idx_read: path is NULL");

    errno = 0;
    gzFile gz = gzopen(path, "rb");
    if (!gz) {
        return mm_error(errno == ENOMEM ? MM_ERR_NOMEM : MM_ERR_IO, "%s: cannot open: %s", path,
                        errno ? strerror(errno) : "gzopen failed");
    }
    gzbuffer(gz, 256 * 1024);

    mm_status st = MM_OK;
    unsigned char *chunk = NULL;
    float *data = NULL;
    unsigned char head[4 + 4 * 255];

    size_t r = 0;
    st = gz_read_full(gz, path, head, 4, &r);
    if (st) goto fail;
    if (r < 4) {
        st = mm_error(MM_ERR_FORMAT, "%s: not an IDX file: %s", path,
                      r == 0 ? "file is empty" : "shorter than the 4-byte magic number");
        goto fail;
    }
    int type = head[2], rank = head[3];
    int tsize = idx_type_size(type);
    if (head[0] != 0 || head[1] != 0 || tsize == 0 || rank == 0) {
        st = mm_error(MM_ERR_FORMAT,
                      "%s: not an IDX file: bad magic number 0x%02X%02X%02X%02X "
                      "(expected 0x0000TTRR with type TT in 08,09,0B,0C,0D,0E and rank RR >= 1)",
                      path, head[0], head[1], head[2], head[3]);
        goto fail;
    }
    if (rank > MM_MAX_DIMS) {
        st = mm_error(MM_ERR_FORMAT, "%s: IDX rank %d exceeds the maximum of %d", path, rank,
                      MM_MAX_DIMS);
        goto fail;
    }
    st = gz_read_full(gz, path, head + 4, 4 * (size_t)rank, &r);
    if (st) goto fail;
    if (r < 4 * (size_t)rank) {
        st = mm_error(MM_ERR_FORMAT, "%s: truncated: header ends after %zu of %d dimension bytes",
                      path, r, 4 * rank);
        goto fail;
    }

    int shape[MM_MAX_DIMS];
    size_t row = 1; /* elements per entry of dimension 0 */
    for (int i = 0; i < rank; i++) {
        uint32_t d = be32(head + 4 + 4 * i);
        if (d > (uint32_t)INT_MAX) {
            st = mm_error(MM_ERR_FORMAT, "%s: dimension %d is %lu, larger than supported (%d)",
                          path, i, (unsigned long)d, INT_MAX);
            goto fail;
        }
        shape[i] = (int)d;
        if (i > 0) {
            if (d && row > SIZE_MAX / 8 / d) {
                st = mm_error(MM_ERR_FORMAT, "%s: dimensions overflow the addressable size", path);
                goto fail;
            }
            row *= d;
        }
    }
    if (rows_in_file) *rows_in_file = shape[0];
    size_t rows = (size_t)shape[0];
    if (max_rows > 0 && (size_t)max_rows < rows) rows = (size_t)max_rows;
    if (row && rows > SIZE_MAX / 8 / row) {
        st = mm_error(MM_ERR_FORMAT, "%s: dimensions overflow the addressable size", path);
        goto fail;
    }
    size_t total = rows * row; /* elements to read */
    size_t total_bytes = total * (size_t)tsize;
    if (total > SIZE_MAX / sizeof(float)) {
        st = mm_error(MM_ERR_FORMAT, "%s: dimensions overflow the addressable size", path);
        goto fail;
    }

    /* Grow the output as data arrives, so that a header claiming absurd dimensions fails as
     * truncated instead of reserving memory for data that is not there. */
    chunk = malloc(IDX_CHUNK);
    size_t cap = total < IDX_CHUNK ? total : IDX_CHUNK;
    data = malloc((cap ? cap : 1) * sizeof(float));
    if (!chunk || !data) {
        st = mm_error(MM_ERR_NOMEM, "%s: out of memory", path);
        goto fail;
    }
    size_t done = 0;
    while (done < total) {
        size_t want_el = total - done;
        if (want_el > IDX_CHUNK / (size_t)tsize) want_el = IDX_CHUNK / (size_t)tsize;
        size_t want = want_el * (size_t)tsize;
        st = gz_read_full(gz, path, chunk, want, &r);
        if (st) goto fail;
        if (r < want) {
            size_t got = done * (size_t)tsize + r;
            st = mm_error(MM_ERR_FORMAT, "%s: truncated: expected %zu bytes of data, got %zu", path,
                          total_bytes, got);
            goto fail;
        }
        if (done + want_el > cap) {
            size_t ncap = cap * 2;
            if (ncap < done + want_el || ncap > total) ncap = total;
            float *nd = realloc(data, ncap * sizeof(float));
            if (!nd) {
                st = mm_error(MM_ERR_NOMEM, "%s: out of memory reading %zu values", path, total);
                goto fail;
            }
            data = nd;
            cap = ncap;
        }
        idx_convert(type, chunk, want_el, data + done);
        done += want_el;
    }
    free(chunk);
    chunk = NULL;
    gzclose(gz);
    gz = NULL;

    out->ndim = rank;
    for (int i = 0; i < rank; i++) out->shape[i] = shape[i];
    out->shape[0] = (int)rows;
    out->size = total;
    out->data = data;
    return MM_OK;

fail:
    free(chunk);
    free(data);
    if (gz) gzclose(gz);
    memset(out, 0, sizeof *out);
    return st;
}

mm_status mm_idx_read(const char *path, mm_array *out) {
    if (!out) return mm_error(MM_ERR_ARG, "mm_idx_read: out is NULL");
    return idx_read_rows(path, 0, out, NULL);
}

/* ------------------------------------------------------------------ data sets */

/* Finds the first existing file among dir/{prefix}-{kind}{sep}{idx}-ubyte[.gz]. Returns 1 and
 * fills buf if found. */
static int find_idx_file(const char *dir, const char *const *prefixes, const char *kind,
                         const char *idx, char *buf, size_t bufsize) {
    static const char *const seps[] = {"-", "."};
    static const char *const exts[] = {"", ".gz"};
    for (int p = 0; prefixes[p]; p++)
        for (int s = 0; s < 2; s++)
            for (int e = 0; e < 2; e++) {
                int n = snprintf(buf, bufsize, "%s/%s-%s%s%s-ubyte%s", dir, prefixes[p], kind,
                                 seps[s], idx, exts[e]);
                if (n < 0 || (size_t)n >= bufsize) continue;
                if (access(buf, F_OK) == 0) return 1;
            }
    return 0;
}

mm_status mm_idx_load_dataset(const char *dir, const char *split, long limit, mm_dataset *out) {
    if (!out) return mm_error(MM_ERR_ARG, "mm_idx_load_dataset: out is NULL");
    memset(out, 0, sizeof *out);
    if (!dir || !split) return mm_error(MM_ERR_ARG, "mm_idx_load_dataset: dir or split is NULL");

    static const char *const train_prefixes[] = {"train", NULL};
    static const char *const test_prefixes[] = {"t10k", "test", NULL};
    const char *const *prefixes;
    if (strcmp(split, "train") == 0)
        prefixes = train_prefixes;
    else if (strcmp(split, "test") == 0)
        prefixes = test_prefixes;
    else
        return mm_error(MM_ERR_ARG, "unknown split '%s' (expected \"train\" or \"test\")", split);
    const char *pname = prefixes[0];
    struct stat sb;
    if (stat(dir, &sb) != 0)
        return mm_error(MM_ERR_IO, "%s: cannot open directory: %s", dir, strerror(errno));
    if (!S_ISDIR(sb.st_mode)) return mm_error(MM_ERR_IO, "%s: not a directory", dir);

    size_t bufsize = strlen(dir) + 64;
    char *img_path = malloc(bufsize), *lab_path = malloc(bufsize);
    mm_array img = {0}, lab = {0};
    mm_status st = MM_OK;
    if (!img_path || !lab_path) {
        st = mm_error(MM_ERR_NOMEM, "out of memory");
        goto done;
    }
    if (!find_idx_file(dir, prefixes, "images", "idx3", img_path, bufsize) &&
        !find_idx_file(dir, prefixes, "images", "idx4", img_path, bufsize)) {
        st = mm_error(MM_ERR_IO, "%s: no %s images found (looked for %s-images-idx3-ubyte[.gz]%s)",
                      dir, split, pname, prefixes[1] ? " and variants" : "");
        goto done;
    }
    if (!find_idx_file(dir, prefixes, "labels", "idx1", lab_path, bufsize)) {
        st = mm_error(MM_ERR_IO, "%s: no %s labels found (looked for %s-labels-idx1-ubyte[.gz]%s)",
                      dir, split, pname, prefixes[1] ? " and variants" : "");
        goto done;
    }

    long img_rows = 0, lab_rows = 0;
    st = idx_read_rows(img_path, limit, &img, &img_rows);
    if (st) goto done;
    st = idx_read_rows(lab_path, limit, &lab, &lab_rows);
    if (st) goto done;

    if (img.ndim != 3 && img.ndim != 4) {
        st = mm_error(MM_ERR_FORMAT, "%s: images must have rank 3 [N,H,W] or 4 [N,H,W,C], got %d",
                      img_path, img.ndim);
        goto done;
    }
    if (!(lab.ndim == 1 || (lab.ndim == 2 && lab.shape[1] == 1))) {
        st = mm_error(MM_ERR_FORMAT, "%s: labels must have rank 1 [N], got rank %d", lab_path,
                      lab.ndim);
        goto done;
    }
    if (img_rows != lab_rows) {
        st = mm_error(MM_ERR_FORMAT, "%s: %ld labels for %ld images in %s: counts must match",
                      lab_path, lab_rows, img_rows, img_path);
        goto done;
    }
    if (img.shape[0] == 0) {
        st = mm_error(MM_ERR_FORMAT, "%s: no examples", img_path);
        goto done;
    }

    double maxl = 0;
    for (size_t i = 0; i < lab.size; i++) {
        double v = lab.data[i];
        if (!(v >= 0) || v != floor(v) || v > IDX_MAX_LABEL) {
            st = mm_error(MM_ERR_FORMAT,
                          "%s: label %zu is %g: labels must be non-negative integers below %.0f",
                          lab_path, i, v, IDX_MAX_LABEL + 1);
            goto done;
        }
        if (v > maxl) maxl = v;
    }

    if (img.ndim == 3) {
        img.ndim = 4;
        img.shape[3] = 1;
    }
    lab.ndim = 1;
    lab.shape[1] = 0;
    out->x = img;
    out->y = lab;
    out->num_classes = (int)maxl + 1;
    img = (mm_array){0};
    lab = (mm_array){0};

done:
    mm_array_free(&img);
    mm_array_free(&lab);
    free(img_path);
    free(lab_path);
    return st;
}
