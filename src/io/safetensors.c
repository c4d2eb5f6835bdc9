/* safetensors files: an 8-byte little-endian header length N, N bytes of JSON header, then
 * the tensor data. The header maps each tensor name to {"dtype", "shape", "data_offsets":
 * [begin, end]} (offsets relative to the start of the data) and may hold "__metadata__", a
 * map of strings. Tensor data is little-endian, row-major.
 *
 * Ownership: mm_st_read allocates every name, data buffer and metadata string, and mm_st_free
 * releases them. For writing, the caller builds an mm_st_file over its own buffers and keeps
 * ownership: mm_st_write never frees or keeps them (do not call mm_st_free on such a struct
 * unless its pointers are malloc'ed as mm_st_read would have). */
#include "mediaml.h"
#include "io/atomic.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
#error "safetensors data is little-endian; big-endian hosts would need byte swapping here"
#endif

#define ST_MAX_HEADER (100u * 1024 * 1024)

typedef struct st_dtype {
    const char *name;
    int size;
} st_dtype;

static const st_dtype st_dtypes[] = {
    {"F32", 4}, {"F64", 8}, {"F16", 2},  {"BF16", 2},    {"I32", 4},
    {"I64", 8}, {"I16", 2}, {"I8", 1},   {"U8", 1},      {"U16", 2},
    {"U32", 4}, {"U64", 8}, {"BOOL", 1}, {"F8_E4M3", 1}, {"F8_E5M2", 1},
};

static int st_dtype_size(const char *name) {
    for (size_t i = 0; i < sizeof st_dtypes / sizeof st_dtypes[0]; i++)
        if (strcmp(st_dtypes[i].name, name) == 0) return st_dtypes[i].size;
    return 0;
}

/* ------------------------------------------------------------------ lookup / free */

void mm_st_free(mm_st_file *f) {
    if (!f) return;
    if (f->tensors) {
        for (int i = 0; i < f->n; i++) {
            free(f->tensors[i].name);
            free(f->tensors[i].data);
        }
        free(f->tensors);
    }
    for (int i = 0; i < f->n_meta; i++) {
        if (f->meta_keys) free(f->meta_keys[i]);
        if (f->meta_values) free(f->meta_values[i]);
    }
    free(f->meta_keys);
    free(f->meta_values);
    memset(f, 0, sizeof *f);
}

const mm_st_tensor *mm_st_find(const mm_st_file *f, const char *name) {
    if (!f || !name || !f->tensors) return NULL;
    for (int i = 0; i < f->n; i++)
        if (f->tensors[i].name && strcmp(f->tensors[i].name, name) == 0) return &f->tensors[i];
    return NULL;
}

const char *mm_st_meta(const mm_st_file *f, const char *key) {
    if (!f || !key || !f->meta_keys || !f->meta_values) return NULL;
    for (int i = 0; i < f->n_meta; i++)
        if (f->meta_keys[i] && strcmp(f->meta_keys[i], key) == 0) return f->meta_values[i];
    return NULL;
}

/* ------------------------------------------------------------------ read */

/* A JSON number that is a non-negative integer below 2^53 (exact in a double). */
static int json_uint(const cJSON *j, uint64_t *v) {
    if (!cJSON_IsNumber(j)) return 0;
    double d = j->valuedouble;
    if (!(d >= 0) || d != floor(d) || d >= 9007199254740992.0) return 0;
    *v = (uint64_t)d;
    return 1;
}

static mm_status st_parse_tensor(const char *path, const cJSON *item, uint64_t data_len,
                                 mm_st_tensor *t, uint64_t *begin_out) {
    const char *name = item->string;
    if (!cJSON_IsObject(item))
        return mm_error(MM_ERR_FORMAT, "%s: tensor '%s': entry is not a JSON object", path, name);
    const cJSON *dt = cJSON_GetObjectItemCaseSensitive(item, "dtype");
    const cJSON *sh = cJSON_GetObjectItemCaseSensitive(item, "shape");
    const cJSON *of = cJSON_GetObjectItemCaseSensitive(item, "data_offsets");
    if (!cJSON_IsString(dt))
        return mm_error(MM_ERR_FORMAT, "%s: tensor '%s': missing or non-string \"dtype\"", path,
                        name);
    if (!cJSON_IsArray(sh))
        return mm_error(MM_ERR_FORMAT, "%s: tensor '%s': missing or non-array \"shape\"", path,
                        name);
    if (!cJSON_IsArray(of) || cJSON_GetArraySize(of) != 2)
        return mm_error(MM_ERR_FORMAT, "%s: tensor '%s': \"data_offsets\" must be [begin, end]",
                        path, name);
    int esize = st_dtype_size(dt->valuestring);
    if (!esize || strlen(dt->valuestring) >= sizeof t->dtype)
        return mm_error(MM_ERR_FORMAT, "%s: tensor '%s': unsupported dtype '%s'", path, name,
                        dt->valuestring);
    strcpy(t->dtype, dt->valuestring);

    int ndim = cJSON_GetArraySize(sh);
    if (ndim > MM_MAX_DIMS)
        return mm_error(MM_ERR_FORMAT, "%s: tensor '%s': rank %d exceeds the maximum of %d", path,
                        name, ndim, MM_MAX_DIMS);
    uint64_t count = 1;
    int zero = 0;
    const cJSON *e;
    int k = 0;
    cJSON_ArrayForEach(e, sh) {
        uint64_t d;
        if (!json_uint(e, &d) || d > 0x7fffffff)
            return mm_error(MM_ERR_FORMAT, "%s: tensor '%s': shape[%d] is not a valid dimension",
                            path, name, k);
        t->shape[k++] = (int)d;
        if (d == 0)
            zero = 1;
        else if (!zero) {
            if (count > UINT64_MAX / d)
                return mm_error(MM_ERR_FORMAT, "%s: tensor '%s': shape overflows", path, name);
            count *= d;
        }
    }
    if (zero) count = 0;
    t->ndim = ndim;

    uint64_t begin, end;
    if (!json_uint(cJSON_GetArrayItem(of, 0), &begin) ||
        !json_uint(cJSON_GetArrayItem(of, 1), &end))
        return mm_error(MM_ERR_FORMAT,
                        "%s: tensor '%s': data_offsets are not non-negative integers", path, name);
    if (begin > end || end > data_len)
        return mm_error(MM_ERR_FORMAT,
                        "%s: tensor '%s': data_offsets [%llu, %llu] out of range of the %llu-byte "
                        "data buffer",
                        path, name, (unsigned long long)begin, (unsigned long long)end,
                        (unsigned long long)data_len);
    if (count > UINT64_MAX / (uint64_t)esize || end - begin != count * (uint64_t)esize)
        return mm_error(MM_ERR_FORMAT,
                        "%s: tensor '%s': data_offsets span %llu bytes but %llu elements of %s "
                        "need %llu",
                        path, name, (unsigned long long)(end - begin), (unsigned long long)count,
                        t->dtype, (unsigned long long)(count * (uint64_t)esize));
    if (count > SIZE_MAX / (uint64_t)esize)
        return mm_error(MM_ERR_FORMAT, "%s: tensor '%s': too large for this machine", path, name);
    t->size = (size_t)count;
    *begin_out = begin;
    return MM_OK;
}

mm_status mm_st_read(const char *path, mm_st_file *out) {
    if (!out) return mm_error(MM_ERR_ARG, "mm_st_read: out is NULL");
    memset(out, 0, sizeof *out);
    if (!path) return mm_error(MM_ERR_ARG, "mm_st_read: path is NULL");

    FILE *fp = fopen(path, "rb");
    if (!fp) return mm_error(MM_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    mm_status st = MM_OK;
    char *hdr = NULL;
    cJSON *root = NULL;
    struct stat sb;
    if (fstat(fileno(fp), &sb) != 0) {
        st = mm_error(MM_ERR_IO, "%s: cannot stat: %s", path, strerror(errno));
        goto fail;
    }
    if (!S_ISREG(sb.st_mode)) {
        st = mm_error(MM_ERR_IO, "%s: not a regular file", path);
        goto fail;
    }
    uint64_t fsize = (uint64_t)sb.st_size;
    unsigned char lenb[8];
    if (fsize < 8 || fread(lenb, 1, 8, fp) != 8) {
        st = mm_error(MM_ERR_FORMAT,
                      "%s: truncated: %llu bytes, too short for the 8-byte header length", path,
                      (unsigned long long)fsize);
        goto fail;
    }
    uint64_t hlen = 0;
    for (int i = 7; i >= 0; i--) hlen = hlen << 8 | lenb[i];
    if (hlen > fsize - 8) {
        st = mm_error(MM_ERR_FORMAT,
                      "%s: not a safetensors file or truncated: header length %llu exceeds the "
                      "%llu bytes that follow it",
                      path, (unsigned long long)hlen, (unsigned long long)(fsize - 8));
        goto fail;
    }
    if (hlen > ST_MAX_HEADER || hlen < 2) {
        st = mm_error(MM_ERR_FORMAT, "%s: not a safetensors file: implausible header length %llu",
                      path, (unsigned long long)hlen);
        goto fail;
    }
    hdr = malloc((size_t)hlen + 1);
    if (!hdr) {
        st = mm_error(MM_ERR_NOMEM, "%s: out of memory for a %llu-byte header", path,
                      (unsigned long long)hlen);
        goto fail;
    }
    if (fread(hdr, 1, (size_t)hlen, fp) != (size_t)hlen) {
        st = mm_error(MM_ERR_IO, "%s: read error in header: %s", path,
                      ferror(fp) ? strerror(errno) : "unexpected end of file");
        goto fail;
    }
    hdr[hlen] = 0;
    const char *endp = NULL;
    root = cJSON_ParseWithLengthOpts(hdr, (size_t)hlen, &endp, 0);
    if (!root) {
        /* cJSON points endp at the error (its global error pointer is not thread-safe). */
        long off = endp && endp >= hdr && endp <= hdr + hlen ? (long)(endp - hdr) : -1;
        st = mm_error(MM_ERR_FORMAT, "%s: header is not valid JSON (error near byte %ld)", path,
                      off);
        goto fail;
    }
    for (const char *p = endp; p && p < hdr + hlen; p++) {
        if (*p != ' ' && *p != '\t' && *p != '\n' && *p != '\r' && *p != 0) {
            st =
                mm_error(MM_ERR_FORMAT, "%s: header has trailing data after the JSON object", path);
            goto fail;
        }
    }
    if (!cJSON_IsObject(root)) {
        st = mm_error(MM_ERR_FORMAT, "%s: header is not a JSON object", path);
        goto fail;
    }
    uint64_t data_start = 8 + hlen, data_len = fsize - data_start;

    int nt = 0, nm = 0;
    const cJSON *item;
    const cJSON *meta = NULL;
    cJSON_ArrayForEach(item, root) {
        if (item->string && strcmp(item->string, "__metadata__") == 0) {
            if (meta) {
                st = mm_error(MM_ERR_FORMAT, "%s: duplicate \"__metadata__\"", path);
                goto fail;
            }
            meta = item;
        } else
            nt++;
    }
    if (meta) {
        if (!cJSON_IsObject(meta)) {
            st = mm_error(MM_ERR_FORMAT, "%s: \"__metadata__\" is not a JSON object", path);
            goto fail;
        }
        nm = cJSON_GetArraySize(meta);
    }
    out->tensors = calloc(nt ? (size_t)nt : 1, sizeof *out->tensors);
    out->meta_keys = calloc(nm ? (size_t)nm : 1, sizeof(char *));
    out->meta_values = calloc(nm ? (size_t)nm : 1, sizeof(char *));
    if (!out->tensors || !out->meta_keys || !out->meta_values) {
        st = mm_error(MM_ERR_NOMEM, "%s: out of memory", path);
        goto fail;
    }
    if (meta) {
        cJSON_ArrayForEach(item, meta) {
            if (!cJSON_IsString(item)) {
                st = mm_error(MM_ERR_FORMAT, "%s: metadata '%s' is not a string", path,
                              item->string);
                goto fail;
            }
            int i = out->n_meta;
            out->meta_keys[i] = strdup(item->string);
            out->meta_values[i] = strdup(item->valuestring);
            out->n_meta++;
            if (!out->meta_keys[i] || !out->meta_values[i]) {
                st = mm_error(MM_ERR_NOMEM, "%s: out of memory", path);
                goto fail;
            }
        }
    }

    cJSON_ArrayForEach(item, root) {
        if (item == meta) continue;
        mm_st_tensor *t = &out->tensors[out->n];
        uint64_t begin = 0;
        st = st_parse_tensor(path, item, data_len, t, &begin);
        if (st) goto fail;
        for (int j = 0; j < out->n; j++)
            if (strcmp(out->tensors[j].name, item->string) == 0) {
                st = mm_error(MM_ERR_FORMAT, "%s: tensor '%s' appears twice", path, item->string);
                goto fail;
            }
        t->name = strdup(item->string);
        out->n++; /* from here mm_st_free releases t */
        size_t bytes = t->size * (size_t)st_dtype_size(t->dtype);
        t->data = malloc(bytes ? bytes : 1);
        if (!t->name || !t->data) {
            st = mm_error(MM_ERR_NOMEM, "%s: tensor '%s': out of memory for %zu bytes", path,
                          item->string, bytes);
            goto fail;
        }
        if (bytes) {
            if (fseeko(fp, (off_t)(data_start + begin), SEEK_SET) != 0 ||
                fread(t->data, 1, bytes, fp) != bytes) {
                st = mm_error(MM_ERR_IO, "%s: tensor '%s': read error: %s", path, item->string,
                              ferror(fp) ? strerror(errno) : "unexpected end of file");
                goto fail;
            }
        }
    }
    cJSON_Delete(root);
    free(hdr);
    fclose(fp);
    return MM_OK;

fail:
    cJSON_Delete(root);
    free(hdr);
    fclose(fp);
    mm_st_free(out);
    return st;
}

/* ------------------------------------------------------------------ write */

typedef struct sbuf {
    char *p;
    size_t n, cap;
    int oom;
} sbuf;

static void sb_put(sbuf *b, const char *s, size_t n) {
    if (b->oom) return;
    if (b->n + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->n + n + 1) cap *= 2;
        char *p = realloc(b->p, cap);
        if (!p) {
            b->oom = 1;
            return;
        }
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->n, s, n);
    b->n += n;
    b->p[b->n] = 0;
}

static void sb_str(sbuf *b, const char *s) { sb_put(b, s, strlen(s)); }

static void sb_printf(sbuf *b, const char *fmt, unsigned long long v) {
    char tmp[32];
    int n = snprintf(tmp, sizeof tmp, fmt, v);
    sb_put(b, tmp, (size_t)n);
}

/* A JSON string literal (UTF-8 passed through, control characters escaped). */
static void sb_json_str(sbuf *b, const char *s) {
    sb_put(b, "\"", 1);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        char esc[8];
        switch (*p) {
        case '"': sb_put(b, "\\\"", 2); break;
        case '\\': sb_put(b, "\\\\", 2); break;
        case '\n': sb_put(b, "\\n", 2); break;
        case '\r': sb_put(b, "\\r", 2); break;
        case '\t': sb_put(b, "\\t", 2); break;
        default:
            if (*p < 0x20) {
                snprintf(esc, sizeof esc, "\\u%04x", *p);
                sb_put(b, esc, 6);
            } else
                sb_put(b, (const char *)p, 1);
        }
    }
    sb_put(b, "\"", 1);
}

mm_status mm_st_write(const char *path, const mm_st_file *f) {
    if (!path || !f) return mm_error(MM_ERR_ARG, "mm_st_write: path or file is NULL");
    if (f->n < 0 || f->n_meta < 0 || (f->n > 0 && !f->tensors) ||
        (f->n_meta > 0 && (!f->meta_keys || !f->meta_values)))
        return mm_error(MM_ERR_ARG, "%s: inconsistent mm_st_file (counts vs arrays)", path);

    /* Validate everything before writing. */
    for (int i = 0; i < f->n; i++) {
        const mm_st_tensor *t = &f->tensors[i];
        if (!t->name || !*t->name)
            return mm_error(MM_ERR_ARG, "%s: tensor %d has no name", path, i);
        if (strcmp(t->name, "__metadata__") == 0)
            return mm_error(MM_ERR_ARG, "%s: \"__metadata__\" is not a valid tensor name", path);
        if (strcmp(t->dtype, "F32") != 0 && strcmp(t->dtype, "I32") != 0)
            return mm_error(MM_ERR_ARG,
                            "%s: tensor '%s': dtype '%.8s' cannot be written (F32 or I32)", path,
                            t->name, t->dtype);
        if (t->ndim < 0 || t->ndim > MM_MAX_DIMS)
            return mm_error(MM_ERR_ARG, "%s: tensor '%s': rank %d out of range", path, t->name,
                            t->ndim);
        size_t count = 1;
        for (int d = 0; d < t->ndim; d++) {
            if (t->shape[d] < 0)
                return mm_error(MM_ERR_ARG, "%s: tensor '%s': negative dimension", path, t->name);
            count *= (size_t)t->shape[d];
        }
        if (count != t->size)
            return mm_error(MM_ERR_ARG, "%s: tensor '%s': size %zu does not match its shape (%zu)",
                            path, t->name, t->size, count);
        if (t->size && !t->data)
            return mm_error(MM_ERR_ARG, "%s: tensor '%s': data is NULL", path, t->name);
        for (int j = 0; j < i; j++)
            if (strcmp(f->tensors[j].name, t->name) == 0)
                return mm_error(MM_ERR_ARG, "%s: tensor name '%s' used twice", path, t->name);
    }
    for (int i = 0; i < f->n_meta; i++) {
        if (!f->meta_keys[i] || !f->meta_values[i])
            return mm_error(MM_ERR_ARG, "%s: metadata entry %d is NULL", path, i);
        for (int j = 0; j < i; j++)
            if (strcmp(f->meta_keys[j], f->meta_keys[i]) == 0)
                return mm_error(MM_ERR_ARG, "%s: metadata key '%s' used twice", path,
                                f->meta_keys[i]);
    }

    sbuf b = {0};
    sb_put(&b, "        ", 8); /* header length, filled in below */
    sb_str(&b, "{");
    int first = 1;
    if (f->n_meta > 0) {
        sb_str(&b, "\"__metadata__\":{");
        for (int i = 0; i < f->n_meta; i++) {
            if (i) sb_str(&b, ",");
            sb_json_str(&b, f->meta_keys[i]);
            sb_str(&b, ":");
            sb_json_str(&b, f->meta_values[i]);
        }
        sb_str(&b, "}");
        first = 0;
    }
    unsigned long long off = 0;
    for (int i = 0; i < f->n; i++) {
        const mm_st_tensor *t = &f->tensors[i];
        if (!first) sb_str(&b, ",");
        first = 0;
        sb_json_str(&b, t->name);
        sb_str(&b, ":{\"dtype\":");
        sb_json_str(&b, t->dtype);
        sb_str(&b, ",\"shape\":[");
        for (int d = 0; d < t->ndim; d++)
            sb_printf(&b, d ? ",%llu" : "%llu", (unsigned long long)t->shape[d]);
        unsigned long long bytes = (unsigned long long)t->size * 4;
        sb_printf(&b, "],\"data_offsets\":[%llu", off);
        sb_printf(&b, ",%llu]}", off + bytes);
        off += bytes;
    }
    sb_str(&b, "}");
    while ((b.n - 8) % 8) sb_str(&b, " ");
    if (b.oom) {
        free(b.p);
        return mm_error(MM_ERR_NOMEM, "%s: out of memory building the header", path);
    }
    uint64_t hlen = b.n - 8;
    for (int i = 0; i < 8; i++) b.p[i] = (char)(unsigned char)(hlen >> (8 * i));

    int nparts = 1 + f->n;
    const void **bufs = malloc((size_t)nparts * sizeof *bufs);
    size_t *lens = malloc((size_t)nparts * sizeof *lens);
    if (!bufs || !lens) {
        free(bufs);
        free(lens);
        free(b.p);
        return mm_error(MM_ERR_NOMEM, "%s: out of memory", path);
    }
    bufs[0] = b.p;
    lens[0] = b.n;
    for (int i = 0; i < f->n; i++) {
        bufs[1 + i] = f->tensors[i].data;
        lens[1 + i] = f->tensors[i].size * 4;
    }
    mm_status st = mm_write_file_atomic_parts(path, nparts, (const void *const *)bufs, lens);
    free(bufs);
    free(lens);
    free(b.p);
    return st;
}
