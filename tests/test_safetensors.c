/* safetensors read/write and atomic file writes. */
#include "testutil.h"

#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define tmpdir tu_tmpdir()
#define tpath tu_tmp_path

/* Number of entries in dir whose name contains ".tmp." */
static int count_temp_files(const char *dir) {
    DIR *d = opendir(dir);
    if (!d) return 0;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)))
        if (strstr(e->d_name, ".tmp.")) n++;
    closedir(d);
    return n;
}

static void write_bytes(const char *path, const void *buf, size_t n) {
    FILE *f = fopen(path, "wb");
    CHECK(f != NULL, "cannot create %s", path);
    if (!f) return;
    CHECK(fwrite(buf, 1, n, f) == n, "short write to %s", path);
    fclose(f);
}

static unsigned char *read_all(const char *path, size_t *n) {
    *n = 0;
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long len = ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *buf = malloc((size_t)len + 1);
    *n = fread(buf, 1, (size_t)len, f);
    buf[*n] = 0;
    fclose(f);
    return buf;
}

/* A safetensors file: 8-byte little-endian header length, the header padded with spaces to a
 * multiple of 8 (unless pad is 0), then data. */
static void write_st(const char *path, const char *header, int pad, const void *data, size_t n) {
    size_t hl = strlen(header);
    size_t padded = pad ? (hl + 7) / 8 * 8 : hl;
    unsigned char *buf = malloc(8 + padded + n + 1);
    for (int i = 0; i < 8; i++) buf[i] = (unsigned char)((uint64_t)padded >> (8 * i));
    memcpy(buf + 8, header, hl);
    memset(buf + 8 + hl, ' ', padded - hl);
    if (n) memcpy(buf + 8 + padded, data, n);
    write_bytes(path, buf, 8 + padded + n);
    free(buf);
}

static void test_round_trip(void) {
    float w[6] = {1.5f, -2.25f, 0.0f, 3.0e-8f, -1.0e20f, 42.0f};
    int32_t idx[4] = {0, -1, 2147483647, -2147483647 - 1};
    float s = 7.0f;
    mm_st_tensor t[4];
    memset(t, 0, sizeof t);
    t[0] = (mm_st_tensor){
        .name = "layer.0/kernel", .dtype = "F32", .ndim = 2, .shape = {2, 3}, .size = 6, .data = w};
    t[1] = (mm_st_tensor){
        .name = "idx", .dtype = "I32", .ndim = 1, .shape = {4}, .size = 4, .data = idx};
    t[2] = (mm_st_tensor){
        .name = "empty", .dtype = "F32", .ndim = 2, .shape = {0, 5}, .size = 0, .data = NULL};
    t[3] = (mm_st_tensor){.name = "scalar \"q\"", .dtype = "F32", .ndim = 0, .size = 1, .data = &s};
    char *keys[3] = {"format", "architecture", "unicode"};
    char *vals[3] = {"mediaml", "{\"layers\": [1, 2], \"s\": \"a\\\\b\\n\"}\t\x01",
                     "caf\xc3\xa9 \xe6\xbc\xa2"};
    mm_st_file f = {.n = 4, .tensors = t, .n_meta = 3, .meta_keys = keys, .meta_values = vals};
    const char *path = tpath("model.safetensors");
    CHECK_OK(mm_st_write(path, &f));
    CHECK(count_temp_files(tmpdir) == 0, "temp file left behind");

    /* Layout: header length a multiple of 8, data right after, in order. */
    size_t n = 0;
    unsigned char *raw = read_all(path, &n);
    uint64_t hl = 0;
    for (int i = 7; raw && n >= 8 && i >= 0; i--) hl = hl << 8 | raw[i];
    CHECK(raw && hl % 8 == 0, "header length %llu not a multiple of 8", (unsigned long long)hl);
    CHECK(n == 8 + hl + 24 + 16 + 4, "file size %zu, header %llu", n, (unsigned long long)hl);
    CHECK(raw && n == 8 + hl + 44 && memcmp(raw + 8 + hl, w, 24) == 0 &&
              memcmp(raw + 8 + hl + 24, idx, 16) == 0 && memcmp(raw + 8 + hl + 40, &s, 4) == 0,
          "data block");
    CHECK(raw && raw[8] == '{', "header starts with {");
    free(raw);

    mm_st_file r;
    CHECK_OK(mm_st_read(path, &r));
    CHECK(r.n == 4, "tensor count %d", r.n);
    CHECK(r.n == 4 && strcmp(r.tensors[0].name, "layer.0/kernel") == 0 &&
              strcmp(r.tensors[3].name, "scalar \"q\"") == 0,
          "tensor order");
    const mm_st_tensor *a = mm_st_find(&r, "layer.0/kernel");
    CHECK(a && strcmp(a->dtype, "F32") == 0 && a->ndim == 2 && a->shape[0] == 2 &&
              a->shape[1] == 3 && a->size == 6 && memcmp(a->data, w, sizeof w) == 0,
          "F32 tensor");
    a = mm_st_find(&r, "idx");
    CHECK(a && strcmp(a->dtype, "I32") == 0 && a->ndim == 1 && a->shape[0] == 4 && a->size == 4 &&
              memcmp(a->data, idx, sizeof idx) == 0,
          "I32 tensor");
    a = mm_st_find(&r, "empty");
    CHECK(a && a->ndim == 2 && a->shape[0] == 0 && a->shape[1] == 5 && a->size == 0, "empty");
    a = mm_st_find(&r, "scalar \"q\"");
    CHECK(a && a->ndim == 0 && a->size == 1 && ((float *)a->data)[0] == 7.0f, "scalar");
    CHECK(mm_st_find(&r, "nope") == NULL, "absent tensor");
    CHECK(r.n_meta == 3, "meta count %d", r.n_meta);
    for (int i = 0; i < 3; i++) {
        const char *v = mm_st_meta(&r, keys[i]);
        CHECK(v && strcmp(v, vals[i]) == 0, "meta %s = '%s'", keys[i], v ? v : "(null)");
    }
    CHECK(mm_st_meta(&r, "nope") == NULL, "absent meta");
    mm_st_free(&r);
    CHECK(r.n == 0 && r.tensors == NULL && r.n_meta == 0, "free clears");
    mm_st_free(&r); /* twice is harmless */
    CHECK(mm_st_find(NULL, "x") == NULL && mm_st_meta(NULL, "x") == NULL, "NULL file");

    /* No metadata and no tensors. */
    mm_st_file e = {0};
    CHECK_OK(mm_st_write(tpath("empty.safetensors"), &e));
    CHECK_OK(mm_st_read(tpath("empty.safetensors"), &r));
    CHECK(r.n == 0 && r.n_meta == 0, "empty file");
    mm_st_free(&r);

    /* Writer rejects what it cannot write, leaving the existing file untouched. */
    double d[2] = {1, 2};
    mm_st_tensor bad = {.name = "d", .dtype = "F64", .ndim = 1, .shape = {2}, .size = 2, .data = d};
    mm_st_file fb = {.n = 1, .tensors = &bad};
    CHECK_ERR(mm_st_write(path, &fb), MM_ERR_ARG, "F64");
    bad =
        (mm_st_tensor){.name = "w", .dtype = "F32", .ndim = 1, .shape = {3}, .size = 2, .data = w};
    CHECK_ERR(mm_st_write(path, &fb), MM_ERR_ARG, "size");
    mm_st_tensor dup[2] = {t[1], t[1]};
    fb = (mm_st_file){.n = 2, .tensors = dup};
    CHECK_ERR(mm_st_write(path, &fb), MM_ERR_ARG, "twice");
    CHECK_OK(mm_st_read(path, &r));
    CHECK(r.n == 4 && r.n_meta == 3, "file changed by a failed write");
    mm_st_free(&r);
}

/* A file laid out by hand, as the reference implementation writes it. */
static void test_hand_written(void) {
    const char *hdr = "{\"__metadata__\":{\"format\":\"pt\"},"
                      "\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
                      "\"b\":{\"dtype\":\"U8\",\"shape\":[1,3],\"data_offsets\":[8,11]},"
                      "\"c\":{\"dtype\":\"BF16\",\"shape\":[2],\"data_offsets\":[11,15]},"
                      "\"d\":{\"dtype\":\"I64\",\"shape\":[1],\"data_offsets\":[15,23]}}";
    const unsigned char data[23] = {0x00, 0x00, 0x80, 0x3F, /* 1.0f */
                                    0x00, 0x00, 0x00, 0xC0, /* -2.0f */
                                    7,    8,    9,          /* u8 */
                                    0x80, 0x3F, 0x00, 0x40, /* bf16 1.0, 2.0 */
                                    0xFE, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF}; /* -2 */
    write_st(tpath("hand.safetensors"), hdr, 1, data, sizeof data);
    mm_st_file r;
    CHECK_OK(mm_st_read(tpath("hand.safetensors"), &r));
    CHECK(r.n == 4 && r.n_meta == 1, "hand: %d tensors %d meta", r.n, r.n_meta);
    CHECK(mm_st_meta(&r, "format") && strcmp(mm_st_meta(&r, "format"), "pt") == 0, "hand meta");
    const mm_st_tensor *t = mm_st_find(&r, "a");
    CHECK(t && t->size == 2 && ((float *)t->data)[0] == 1.0f && ((float *)t->data)[1] == -2.0f,
          "hand F32");
    t = mm_st_find(&r, "b");
    CHECK(t && strcmp(t->dtype, "U8") == 0 && t->ndim == 2 && t->shape[1] == 3 && t->size == 3 &&
              memcmp(t->data, data + 8, 3) == 0,
          "hand U8");
    t = mm_st_find(&r, "c");
    CHECK(t && strcmp(t->dtype, "BF16") == 0 && t->size == 2 && memcmp(t->data, data + 11, 4) == 0,
          "hand BF16");
    t = mm_st_find(&r, "d");
    CHECK(t && strcmp(t->dtype, "I64") == 0 && t->size == 1 && ((int64_t *)t->data)[0] == -2,
          "hand I64");
    mm_st_free(&r);

    /* Unpadded header, tensors listed out of data order (as sorted-key writers produce). */
    const char *hdr2 = "{\"z\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
                       "\"y\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}";
    write_st(tpath("hand2.safetensors"), hdr2, 0, data, 8);
    CHECK_OK(mm_st_read(tpath("hand2.safetensors"), &r));
    t = mm_st_find(&r, "y");
    CHECK(r.n == 2 && t && ((float *)t->data)[0] == -2.0f, "hand2");
    mm_st_free(&r);
}

static void test_bad_files(void) {
    mm_st_file r;
    const unsigned char data[16] = {0};
    CHECK_ERR(mm_st_read(tpath("missing.safetensors"), &r), MM_ERR_IO, "missing.safetensors");

    write_bytes(tpath("short.st"), "\x10\x00\x00", 3);
    CHECK_ERR(mm_st_read(tpath("short.st"), &r), MM_ERR_FORMAT, "truncated");
    CHECK(tu_contains(mm_errmsg(), "short.st"), "file name missing: %s", mm_errmsg());

    unsigned char big[12] = {0x00, 0x01, 0, 0, 0, 0, 0, 0, '{', '}', ' ', ' '};
    write_bytes(tpath("biglen.st"), big, sizeof big);
    CHECK_ERR(mm_st_read(tpath("biglen.st"), &r), MM_ERR_FORMAT, "header length 256 exceeds");

    write_st(tpath("json.st"), "{\"a\":{\"dtype\":\"F32\",", 1, data, 4);
    CHECK_ERR(mm_st_read(tpath("json.st"), &r), MM_ERR_FORMAT, "not valid JSON");
    write_st(tpath("array.st"), "[1, 2]", 1, data, 0);
    CHECK_ERR(mm_st_read(tpath("array.st"), &r), MM_ERR_FORMAT, "not a JSON object");

    write_st(tpath("range.st"), "{\"w\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]}}",
             1, data, 12);
    CHECK_ERR(mm_st_read(tpath("range.st"), &r), MM_ERR_FORMAT, "'w'");
    CHECK(tu_contains(mm_errmsg(), "out of range"), "range message: %s", mm_errmsg());
    write_st(tpath("order.st"), "{\"w\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[8,4]}}",
             1, data, 12);
    CHECK_ERR(mm_st_read(tpath("order.st"), &r), MM_ERR_FORMAT, "out of range");

    write_st(tpath("size.st"), "{\"w\":{\"dtype\":\"F64\",\"shape\":[3],\"data_offsets\":[0,16]}}",
             1, data, 16);
    CHECK_ERR(mm_st_read(tpath("size.st"), &r), MM_ERR_FORMAT, "tensor 'w'");
    CHECK(tu_contains(mm_errmsg(), "need 24"), "size message: %s", mm_errmsg());

    write_st(tpath("nodtype.st"), "{\"w\":{\"shape\":[1],\"data_offsets\":[0,4]}}", 1, data, 4);
    CHECK_ERR(mm_st_read(tpath("nodtype.st"), &r), MM_ERR_FORMAT, "dtype");
    write_st(tpath("noshape.st"), "{\"w\":{\"dtype\":\"F32\",\"data_offsets\":[0,4]}}", 1, data, 4);
    CHECK_ERR(mm_st_read(tpath("noshape.st"), &r), MM_ERR_FORMAT, "shape");
    write_st(tpath("nooff.st"), "{\"w\":{\"dtype\":\"F32\",\"shape\":[1]}}", 1, data, 4);
    CHECK_ERR(mm_st_read(tpath("nooff.st"), &r), MM_ERR_FORMAT, "data_offsets");
    write_st(tpath("dtype.st"), "{\"w\":{\"dtype\":\"Q4\",\"shape\":[1],\"data_offsets\":[0,4]}}",
             1, data, 4);
    CHECK_ERR(mm_st_read(tpath("dtype.st"), &r), MM_ERR_FORMAT, "unsupported dtype 'Q4'");
    write_st(tpath("negdim.st"),
             "{\"w\":{\"dtype\":\"F32\",\"shape\":[-1],\"data_offsets\":[0,4]}}", 1, data, 4);
    CHECK_ERR(mm_st_read(tpath("negdim.st"), &r), MM_ERR_FORMAT, "shape[0]");
    write_st(tpath("rank.st"),
             "{\"w\":{\"dtype\":\"U8\",\"shape\":[1,1,1,1,1,1,1],\"data_offsets\":[0,1]}}", 1, data,
             4);
    CHECK_ERR(mm_st_read(tpath("rank.st"), &r), MM_ERR_FORMAT, "rank");
    write_st(tpath("meta.st"), "{\"__metadata__\":{\"k\":3}}", 1, data, 0);
    CHECK_ERR(mm_st_read(tpath("meta.st"), &r), MM_ERR_FORMAT, "metadata 'k'");
    write_st(tpath("dup.st"),
             "{\"w\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1]},"
             "\"w\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[1,2]}}",
             1, data, 2);
    CHECK_ERR(mm_st_read(tpath("dup.st"), &r), MM_ERR_FORMAT, "twice");
    CHECK(r.n == 0 && r.tensors == NULL, "out cleared on error");
}

static void test_atomic(void) {
    /* Non-existent directory: fails, nothing created. */
    CHECK_ERR(mm_write_file_atomic(tpath("no/such/dir/file.bin"), "abc", 3), MM_ERR_IO, "file.bin");
    CHECK(access(tpath("no"), F_OK) != 0, "directory created");
    CHECK(count_temp_files(tmpdir) == 0, "temp file left behind");

    /* Write, overwrite. */
    const char *p = tpath("atomic.txt");
    CHECK_OK(mm_write_file_atomic(p, "old content", 11));
    CHECK_OK(mm_write_file_atomic(p, "new", 3));
    size_t n;
    unsigned char *buf = read_all(p, &n);
    CHECK(buf && n == 3 && memcmp(buf, "new", 3) == 0, "overwrite content");
    free(buf);
    CHECK_OK(mm_write_file_atomic(tpath("zero.bin"), NULL, 0));
    buf = read_all(tpath("zero.bin"), &n);
    CHECK(buf && n == 0, "empty write");
    free(buf);
    CHECK(count_temp_files(tmpdir) == 0, "temp file left behind");

    /* The target is a directory: the rename fails, the directory and its content stay, and the
     * temp file is removed. (Running as root, a read-only directory would not stop a write.) */
    mkdir(tpath("target"), 0755);
    write_bytes(tpath("target/inside.txt"), "keep", 4);
    CHECK_ERR(mm_write_file_atomic(tpath("target"), "xyz", 3), MM_ERR_IO, "target");
    CHECK(count_temp_files(tmpdir) == 0, "temp file left behind after a failed rename");
    buf = read_all(tpath("target/inside.txt"), &n);
    CHECK(buf && n == 4 && memcmp(buf, "keep", 4) == 0, "directory content changed");
    free(buf);

    /* The temp path itself is unusable (a directory in the way): the original stays. */
    char tmpname[600];
    snprintf(tmpname, sizeof tmpname, "%s.tmp.%ld", p, (long)getpid());
    mkdir(tmpname, 0755);
    CHECK_ERR(mm_write_file_atomic(p, "replacement", 11), MM_ERR_IO, "atomic.txt");
    buf = read_all(p, &n);
    CHECK(buf && n == 3 && memcmp(buf, "new", 3) == 0, "original changed by a failed write");
    free(buf);
    rmdir(tmpname);

    /* mm_st_write into a missing directory. */
    float v = 1;
    mm_st_tensor t = {.name = "v", .dtype = "F32", .ndim = 1, .shape = {1}, .size = 1, .data = &v};
    mm_st_file f = {.n = 1, .tensors = &t};
    CHECK_ERR(mm_st_write(tpath("missing/m.safetensors"), &f), MM_ERR_IO, "m.safetensors");
}

int main(void) {
    if (!tu_tmpdir()) return 1;
    test_round_trip();
    test_hand_written();
    test_bad_files();
    test_atomic();
    return tu_finish();
}
