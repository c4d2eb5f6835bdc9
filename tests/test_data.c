/* Data loading: IDX files and data sets (MNIST, Fashion-MNIST, synthetic), PNG, preprocessing. */
#include "testutil.h"

#include <dirent.h>
#include <math.h>
#include <png.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#define tmpdir tu_tmpdir()
#define tpath tu_tmp_path

static void write_bytes(const char *path, const void *buf, size_t n) {
    FILE *f = fopen(path, "wb");
    CHECK(f != NULL, "cannot create %s", path);
    if (!f) return;
    CHECK(fwrite(buf, 1, n, f) == n, "short write to %s", path);
    fclose(f);
}

static void write_gz(const char *path, const void *buf, size_t n) {
    gzFile g = gzopen(path, "wb");
    CHECK(g != NULL, "cannot create %s", path);
    if (!g) return;
    CHECK(gzwrite(g, buf, (unsigned)n) == (int)n, "short gzwrite to %s", path);
    gzclose(g);
}

/* IDX header into p; returns its length. */
static size_t idx_header(unsigned char *p, int type, int rank, const unsigned *dims) {
    p[0] = p[1] = 0;
    p[2] = (unsigned char)type;
    p[3] = (unsigned char)rank;
    for (int i = 0; i < rank; i++) {
        p[4 + 4 * i] = (unsigned char)(dims[i] >> 24);
        p[5 + 4 * i] = (unsigned char)(dims[i] >> 16);
        p[6 + 4 * i] = (unsigned char)(dims[i] >> 8);
        p[7 + 4 * i] = (unsigned char)dims[i];
    }
    return 4 + 4 * (size_t)rank;
}

/* Synthetic u8 image/label files: n images h x w (pixel = (i*7 + k) % 256), label i % classes. */
static void write_synthetic(const char *img_name, const char *lab_name, unsigned n, unsigned h,
                            unsigned w, unsigned classes, int gz) {
    size_t bytes = 16 + (size_t)n * h * w;
    unsigned char *buf = malloc(bytes > 8 + n ? bytes : 8 + n);
    unsigned dims[3] = {n, h, w};
    size_t o = idx_header(buf, 0x08, 3, dims);
    for (size_t i = 0; i < (size_t)n * h * w; i++) buf[o + i] = (unsigned char)((i * 7) % 256);
    (gz ? write_gz : write_bytes)(tpath(img_name), buf, o + (size_t)n * h * w);
    o = idx_header(buf, 0x08, 1, dims);
    for (unsigned i = 0; i < n; i++) buf[o + i] = (unsigned char)(i % classes);
    (gz ? write_gz : write_bytes)(tpath(lab_name), buf, o + n);
    free(buf);
}

static float array_max(const mm_array *a) {
    float m = -INFINITY;
    for (size_t i = 0; i < a->size; i++)
        if (a->data[i] > m) m = a->data[i];
    return m;
}

/* Reads the whole decompressed content of a gzip file. */
static unsigned char *gunzip_all(const char *path, size_t *n) {
    gzFile g = gzopen(path, "rb");
    if (!g) return NULL;
    size_t cap = 1 << 20, len = 0;
    unsigned char *buf = malloc(cap);
    int r;
    while ((r = gzread(g, buf + len, (unsigned)(cap - len))) > 0) {
        len += (size_t)r;
        if (len == cap) buf = realloc(buf, cap *= 2);
    }
    gzclose(g);
    *n = len;
    return buf;
}

static void test_mnist(void) {
    const char *data = tu_data_dir();
    if (!data) {
        printf("skip: MNIST (no data directory)\n");
        return;
    }
    char dir[4200];
    snprintf(dir, sizeof dir, "%s/mnist", data);
    mm_dataset d;
    CHECK_OK(mm_idx_load_dataset(dir, "train", 1000, &d));
    CHECK(d.x.ndim == 4 && d.x.shape[0] == 1000 && d.x.shape[1] == 28 && d.x.shape[2] == 28 &&
              d.x.shape[3] == 1,
          "train x shape [%d,%d,%d,%d]", d.x.shape[0], d.x.shape[1], d.x.shape[2], d.x.shape[3]);
    CHECK(d.x.size == 1000 * 784, "x size %zu", d.x.size);
    CHECK(d.y.ndim == 1 && d.y.shape[0] == 1000 && d.y.size == 1000, "y shape");
    CHECK(d.num_classes == 10, "num_classes %d", d.num_classes);
    CHECK(d.y.size && d.y.data[0] == 5.0f, "first train label %g", d.y.size ? d.y.data[0] : -1);
    CHECK(array_max(&d.x) == 255.0f, "pixel max %g", array_max(&d.x));

    /* The same first 100 examples, from plain IDX files written here, load identically. */
    char img[4300], lab[4300];
    snprintf(img, sizeof img, "%s/train-images-idx3-ubyte.gz", dir);
    snprintf(lab, sizeof lab, "%s/train-labels-idx1-ubyte.gz", dir);
    size_t ni = 0, nl = 0;
    unsigned char *ib = gunzip_all(img, &ni), *lb = gunzip_all(lab, &nl);
    CHECK(ib && ni == 16 + 60000u * 784, "raw train images: %zu bytes", ni);
    CHECK(lb && nl == 8 + 60000u, "raw train labels: %zu bytes", nl);
    if (ib && lb && ni >= 16 + 100 * 784 && nl >= 108) {
        mkdir(tpath("plain"), 0755);
        ib[4] = ib[5] = 0, ib[6] = 0, ib[7] = 100; /* N = 100 */
        lb[4] = lb[5] = 0, lb[6] = 0, lb[7] = 100;
        write_bytes(tpath("plain/train-images-idx3-ubyte"), ib, 16 + 100 * 784);
        write_bytes(tpath("plain/train-labels-idx1-ubyte"), lb, 108);
        mm_dataset p;
        CHECK_OK(mm_idx_load_dataset(tpath("plain"), "train", 0, &p));
        CHECK(p.x.shape[0] == 100 && p.x.size == 100 * 784, "plain x shape");
        CHECK(p.x.size == 100 * 784 && memcmp(p.x.data, d.x.data, 100 * 784 * sizeof(float)) == 0,
              "plain images differ from gz");
        CHECK(p.y.size == 100 && memcmp(p.y.data, d.y.data, 100 * sizeof(float)) == 0,
              "plain labels differ from gz");
        mm_dataset_free(&p);
    }
    free(ib);
    free(lb);
    mm_dataset_free(&d);

    /* Full counts. */
    mm_array labels;
    CHECK_OK(mm_idx_read(lab, &labels));
    CHECK(labels.ndim == 1 && labels.shape[0] == 60000, "train labels %d", labels.shape[0]);
    mm_array_free(&labels);
    CHECK_OK(mm_idx_load_dataset(dir, "test", 0, &d));
    CHECK(d.x.ndim == 4 && d.x.shape[0] == 10000 && d.x.shape[1] == 28 && d.x.shape[2] == 28 &&
              d.x.shape[3] == 1,
          "test x shape [%d,%d,%d,%d]", d.x.shape[0], d.x.shape[1], d.x.shape[2], d.x.shape[3]);
    CHECK(d.y.size == 10000 && d.num_classes == 10, "test labels %zu, classes %d", d.y.size,
          d.num_classes);
    CHECK(array_max(&d.x) == 255.0f, "test pixel max %g", array_max(&d.x));
    mm_dataset_free(&d);
}

static void test_fashion_mnist(void) {
    const char *dir = "/usr/share/datasets/fashion-mnist";
    if (access(dir, R_OK) != 0) {
        printf("skip: Fashion-MNIST not installed (apt-get install dataset-fashion-mnist)\n");
        return;
    }
    mm_dataset d;
    CHECK_OK(mm_idx_load_dataset(dir, "train", 500, &d));
    CHECK(d.x.ndim == 4 && d.x.shape[0] == 500 && d.x.shape[1] == 28 && d.x.shape[2] == 28 &&
              d.x.shape[3] == 1,
          "fashion x shape");
    CHECK(d.num_classes == 10, "fashion classes %d", d.num_classes);
    CHECK(d.y.size && d.y.data[0] == 9.0f, "fashion first label %g", d.y.size ? d.y.data[0] : -1);
    mm_dataset_free(&d);
    CHECK_OK(mm_idx_load_dataset(dir, "test", 0, &d));
    CHECK(d.x.shape[0] == 10000 && d.y.size == 10000 && d.num_classes == 10, "fashion test");
    mm_dataset_free(&d);
}

static void test_idx_types(void) {
    unsigned char buf[256];
    unsigned dims[2] = {2, 2};
    mm_array a;

    /* i8 */
    size_t o = idx_header(buf, 0x09, 2, dims);
    buf[o] = 0xFF, buf[o + 1] = 0x80, buf[o + 2] = 0x7F, buf[o + 3] = 3;
    write_bytes(tpath("i8.idx"), buf, o + 4);
    CHECK_OK(mm_idx_read(tpath("i8.idx"), &a));
    CHECK(a.ndim == 2 && a.shape[0] == 2 && a.shape[1] == 2 && a.size == 4, "i8 shape");
    CHECK(a.size == 4 && a.data[0] == -1 && a.data[1] == -128 && a.data[2] == 127 && a.data[3] == 3,
          "i8 values");
    mm_array_free(&a);

    /* i16 big-endian */
    o = idx_header(buf, 0x0B, 2, dims);
    const unsigned char s16[8] = {0x01, 0x02, 0xFF, 0xFE, 0x80, 0x00, 0x7F, 0xFF};
    memcpy(buf + o, s16, 8);
    write_gz(tpath("i16.idx.gz"), buf, o + 8);
    CHECK_OK(mm_idx_read(tpath("i16.idx.gz"), &a));
    CHECK(a.size == 4 && a.data[0] == 258 && a.data[1] == -2 && a.data[2] == -32768 &&
              a.data[3] == 32767,
          "i16 values");
    mm_array_free(&a);

    /* i32 */
    unsigned d1[1] = {2};
    o = idx_header(buf, 0x0C, 1, d1);
    const unsigned char s32[8] = {0x00, 0x01, 0x00, 0x00, 0xFF, 0xFF, 0xFF, 0xFB};
    memcpy(buf + o, s32, 8);
    write_bytes(tpath("i32.idx"), buf, o + 8);
    CHECK_OK(mm_idx_read(tpath("i32.idx"), &a));
    CHECK(a.size == 2 && a.data[0] == 65536 && a.data[1] == -5, "i32 values");
    mm_array_free(&a);

    /* f32: 1.5 = 0x3FC00000, -0.25 = 0xBE800000 */
    o = idx_header(buf, 0x0D, 1, d1);
    const unsigned char f32[8] = {0x3F, 0xC0, 0, 0, 0xBE, 0x80, 0, 0};
    memcpy(buf + o, f32, 8);
    write_bytes(tpath("f32.idx"), buf, o + 8);
    CHECK_OK(mm_idx_read(tpath("f32.idx"), &a));
    CHECK(a.size == 2 && a.data[0] == 1.5f && a.data[1] == -0.25f, "f32 values");
    mm_array_free(&a);

    /* f64: 3.0 = 0x4008000000000000, -1e-3 */
    o = idx_header(buf, 0x0E, 1, d1);
    const unsigned char f64[16] = {0x40, 0x08, 0,    0,    0,    0,    0,    0,
                                   0xBF, 0x50, 0x62, 0x4D, 0xD2, 0xF1, 0xA9, 0xFC};
    memcpy(buf + o, f64, 16);
    write_bytes(tpath("f64.idx"), buf, o + 16);
    CHECK_OK(mm_idx_read(tpath("f64.idx"), &a));
    CHECK(a.size == 2 && a.data[0] == 3.0f && a.data[1] == (float)-1e-3, "f64 values");
    mm_array_free(&a);

    /* Synthetic data set with other sizes, "test-" naming, rank-4 images, gz. */
    mkdir(tpath("syn"), 0755);
    write_synthetic("syn/test-images-idx3-ubyte.gz", "syn/test-labels-idx1-ubyte.gz", 37, 5, 3, 4,
                    1);
    mm_dataset d;
    CHECK_OK(mm_idx_load_dataset(tpath("syn"), "test", 0, &d));
    CHECK(d.x.ndim == 4 && d.x.shape[0] == 37 && d.x.shape[1] == 5 && d.x.shape[2] == 3 &&
              d.x.shape[3] == 1,
          "synthetic shape [%d,%d,%d,%d]", d.x.shape[0], d.x.shape[1], d.x.shape[2], d.x.shape[3]);
    CHECK(d.num_classes == 4, "synthetic classes %d", d.num_classes);
    CHECK(d.x.size == 37 * 15 && d.x.data[20] == (float)((20 * 7) % 256), "synthetic pixel");
    CHECK(d.y.size == 37 && d.y.data[6] == 2.0f, "synthetic label");
    mm_dataset_free(&d);
    CHECK_OK(mm_idx_load_dataset(tpath("syn"), "test", 10, &d));
    CHECK(d.x.shape[0] == 10 && d.x.size == 150 && d.y.size == 10, "synthetic limit");
    mm_dataset_free(&d);
    CHECK_ERR(mm_idx_load_dataset(tpath("syn"), "train", 0, &d), MM_ERR_IO, "train");
    CHECK_ERR(mm_idx_load_dataset(tpath("syn"), "valid", 0, &d), MM_ERR_ARG, "valid");

    /* Rank-4 images [N,H,W,C] keep their channels. */
    mkdir(tpath("rgb"), 0755);
    unsigned d4[4] = {3, 2, 2, 3};
    unsigned char big[64 + 36];
    o = idx_header(big, 0x08, 4, d4);
    for (int i = 0; i < 36; i++) big[o + i] = (unsigned char)i;
    write_bytes(tpath("rgb/train-images-idx3-ubyte"), big, o + 36);
    o = idx_header(big, 0x08, 1, d4);
    big[o] = 0, big[o + 1] = 1, big[o + 2] = 1;
    write_bytes(tpath("rgb/train-labels-idx1-ubyte"), big, o + 3);
    CHECK_OK(mm_idx_load_dataset(tpath("rgb"), "train", 0, &d));
    CHECK(d.x.ndim == 4 && d.x.shape[3] == 3 && d.x.size == 36 && d.x.data[35] == 35.0f,
          "rank-4 images");
    CHECK(d.num_classes == 2, "rank-4 classes %d", d.num_classes);
    mm_dataset_free(&d);
}

static void test_idx_errors(void) {
    mm_array a;
    mm_dataset d;
    unsigned char buf[4096];

    CHECK_ERR(mm_idx_read(tpath("nope-idx3-ubyte.gz"), &a), MM_ERR_IO, "nope-idx3-ubyte.gz");
    CHECK(a.data == NULL && a.size == 0, "out not cleared on error");
    CHECK_ERR(mm_idx_load_dataset(tpath("no-such-dir"), "train", 0, &d), MM_ERR_IO, "no-such-dir");

    /* Wrong magic: a text file, a plain and a gz. */
    write_bytes(tpath("text.idx"), "hello world, not idx", 20);
    CHECK_ERR(mm_idx_read(tpath("text.idx"), &a), MM_ERR_FORMAT, "not an IDX file");
    CHECK(tu_contains(mm_errmsg(), "text.idx"), "message lacks file name: %s", mm_errmsg());
    unsigned dims[3] = {2, 3, 4};
    size_t o = idx_header(buf, 0x07, 3, dims);
    memset(buf + o, 0, 24);
    write_gz(tpath("badtype.gz"), buf, o + 24);
    CHECK_ERR(mm_idx_read(tpath("badtype.gz"), &a), MM_ERR_FORMAT, "not an IDX file");
    write_bytes(tpath("empty.idx"), "", 0);
    CHECK_ERR(mm_idx_read(tpath("empty.idx"), &a), MM_ERR_FORMAT, "not an IDX file");

    /* Truncated data (plain and gz), truncated header. */
    o = idx_header(buf, 0x08, 3, dims);
    memset(buf + o, 1, 24);
    write_bytes(tpath("trunc.idx"), buf, o + 10);
    CHECK_ERR(mm_idx_read(tpath("trunc.idx"), &a), MM_ERR_FORMAT,
              "trunc.idx: truncated: expected 24 bytes of data, got 10");
    write_gz(tpath("trunc.idx.gz"), buf, o + 10);
    CHECK_ERR(mm_idx_read(tpath("trunc.idx.gz"), &a), MM_ERR_FORMAT, "truncated");
    write_bytes(tpath("trunchead.idx"), buf, 9);
    CHECK_ERR(mm_idx_read(tpath("trunchead.idx"), &a), MM_ERR_FORMAT, "truncated");

    /* A gzip stream cut in the middle. */
    {
        unsigned dd[3] = {50, 20, 20};
        unsigned char *big = malloc(16 + 20000);
        o = idx_header(big, 0x08, 3, dd);
        for (int i = 0; i < 20000; i++) big[o + i] = (unsigned char)(i * 2654435761u >> 24);
        write_gz(tpath("cut.gz"), big, o + 20000);
        FILE *f = fopen(tpath("cut.gz"), "rb");
        size_t n = f ? fread(big, 1, 20016, f) : 0;
        if (f) fclose(f);
        write_bytes(tpath("cut.gz"), big, n / 2);
        CHECK_ERR(mm_idx_read(tpath("cut.gz"), &a), MM_ERR_FORMAT, "cut.gz");
        CHECK(tu_contains(mm_errmsg(), "truncated") || tu_contains(mm_errmsg(), "corrupt"),
              "cut gz message: %s", mm_errmsg());
        free(big);
    }

    /* Absurd dimensions: overflow, and a header promising far more data than present (must fail
     * fast as truncated rather than allocate it). */
    unsigned huge[3] = {0x7FFFFFFF, 0x7FFFFFFF, 0x7FFFFFFF};
    o = idx_header(buf, 0x0E, 3, huge);
    write_bytes(tpath("overflow.idx"), buf, o + 8);
    CHECK_ERR(mm_idx_read(tpath("overflow.idx"), &a), MM_ERR_FORMAT, "overflow");
    unsigned big3[3] = {100000, 1000, 1000};
    o = idx_header(buf, 0x08, 3, big3);
    memset(buf + o, 0, 100);
    write_bytes(tpath("bigclaim.idx"), buf, o + 100);
    CHECK_ERR(mm_idx_read(tpath("bigclaim.idx"), &a), MM_ERR_FORMAT, "truncated");
    unsigned neg[1] = {0x80000000u};
    o = idx_header(buf, 0x08, 1, neg);
    write_bytes(tpath("negdim.idx"), buf, o);
    CHECK_ERR(mm_idx_read(tpath("negdim.idx"), &a), MM_ERR_FORMAT, "dimension");
    buf[0] = 0, buf[1] = 0, buf[2] = 0x08, buf[3] = 9;
    write_bytes(tpath("rank9.idx"), buf, 4 + 36);
    CHECK_ERR(mm_idx_read(tpath("rank9.idx"), &a), MM_ERR_FORMAT, "rank");

    /* Data set errors: count mismatch, bad labels, missing labels. */
    mkdir(tpath("mismatch"), 0755);
    write_synthetic("mismatch/train-images-idx3-ubyte", "mismatch/x", 10, 4, 4, 3, 0);
    write_synthetic("mismatch/y", "mismatch/train-labels-idx1-ubyte", 9, 4, 4, 3, 0);
    CHECK_ERR(mm_idx_load_dataset(tpath("mismatch"), "train", 0, &d), MM_ERR_FORMAT,
              "counts must match");
    CHECK(tu_contains(mm_errmsg(), "9 labels for 10 images"), "mismatch message: %s", mm_errmsg());
    CHECK(d.x.data == NULL && d.y.data == NULL, "dataset not cleared on error");
    /* The mismatch is found from the headers even when limit reads fewer rows. */
    CHECK_ERR(mm_idx_load_dataset(tpath("mismatch"), "train", 5, &d), MM_ERR_FORMAT,
              "counts must match");

    mkdir(tpath("neglab"), 0755);
    write_synthetic("neglab/train-images-idx3-ubyte", "neglab/x", 3, 2, 2, 3, 0);
    unsigned d1[1] = {3};
    o = idx_header(buf, 0x09, 1, d1);
    buf[o] = 0, buf[o + 1] = (unsigned char)-1, buf[o + 2] = 1;
    write_bytes(tpath("neglab/train-labels-idx1-ubyte"), buf, o + 3);
    CHECK_ERR(mm_idx_load_dataset(tpath("neglab"), "train", 0, &d), MM_ERR_FORMAT, "non-negative");
    o = idx_header(buf, 0x0D, 1, d1);
    const unsigned char fl[12] = {0, 0, 0, 0, 0x3F, 0xC0, 0, 0, 0, 0, 0, 0}; /* 0, 1.5, 0 */
    memcpy(buf + o, fl, 12);
    write_bytes(tpath("neglab/train-labels-idx1-ubyte"), buf, o + 12);
    CHECK_ERR(mm_idx_load_dataset(tpath("neglab"), "train", 0, &d), MM_ERR_FORMAT, "integers");

    mkdir(tpath("nolab"), 0755);
    write_synthetic("nolab/train-images-idx3-ubyte", "nolab/x", 3, 2, 2, 3, 0);
    CHECK_ERR(mm_idx_load_dataset(tpath("nolab"), "train", 0, &d), MM_ERR_IO, "labels");

    mkdir(tpath("rank2"), 0755);
    unsigned d2[2] = {3, 4};
    o = idx_header(buf, 0x08, 2, d2);
    memset(buf + o, 0, 12);
    write_bytes(tpath("rank2/train-images-idx3-ubyte"), buf, o + 12);
    o = idx_header(buf, 0x08, 1, d2);
    memset(buf + o, 0, 3);
    write_bytes(tpath("rank2/train-labels-idx1-ubyte"), buf, o + 3);
    CHECK_ERR(mm_idx_load_dataset(tpath("rank2"), "train", 0, &d), MM_ERR_FORMAT, "rank");
}

static void write_png(const char *path, int w, int h, int fmt, const unsigned char *px) {
    png_image im;
    memset(&im, 0, sizeof im);
    im.version = PNG_IMAGE_VERSION;
    im.width = (png_uint_32)w;
    im.height = (png_uint_32)h;
    im.format = (png_uint_32)fmt;
    int ok = png_image_write_to_file(&im, path, 0, px, 0, NULL);
    CHECK(ok, "png write %s: %s", path, im.message);
}

static void test_png(void) {
    const unsigned char rgb[2 * 3 * 3] = {255, 0,  0,  0,  255, 0,  0,  0,  255,
                                          10,  20, 30, 40, 50,  60, 70, 80, 90};
    write_png(tpath("rgb.png"), 3, 2, PNG_FORMAT_RGB, rgb);
    mm_array a;
    CHECK_OK(mm_png_read(tpath("rgb.png"), 0, &a));
    CHECK(a.ndim == 3 && a.shape[0] == 2 && a.shape[1] == 3 && a.shape[2] == 3 && a.size == 18,
          "rgb shape [%d,%d,%d]", a.shape[0], a.shape[1], a.shape[2]);
    int same = a.size == 18;
    for (size_t i = 0; same && i < 18; i++) same = a.data[i] == (float)rgb[i];
    CHECK(same, "rgb values differ");
    mm_array_free(&a);
    CHECK_OK(mm_png_read(tpath("rgb.png"), 1, &a));
    CHECK(a.ndim == 3 && a.shape[0] == 2 && a.shape[1] == 3 && a.shape[2] == 1, "rgb->gray shape");
    CHECK(a.size == 6 && a.data[0] >= 0 && a.data[0] <= 255, "rgb->gray values");
    mm_array_free(&a);

    unsigned char gray[4 * 3];
    for (int i = 0; i < 12; i++) gray[i] = (unsigned char)(i * 23);
    write_png(tpath("gray.png"), 4, 3, PNG_FORMAT_GRAY, gray);
    CHECK_OK(mm_png_read(tpath("gray.png"), 0, &a));
    CHECK(a.ndim == 3 && a.shape[0] == 3 && a.shape[1] == 4 && a.shape[2] == 1, "gray shape");
    same = a.size == 12;
    for (size_t i = 0; same && i < 12; i++) same = a.data[i] == (float)gray[i];
    CHECK(same, "gray values differ");
    mm_array_free(&a);
    CHECK_OK(mm_png_read(tpath("gray.png"), 3, &a));
    CHECK(a.ndim == 3 && a.shape[2] == 3 && a.size == 36, "gray->rgb shape");
    same = a.size == 36;
    for (size_t i = 0; same && i < 36; i++) same = a.data[i] == (float)gray[i / 3];
    CHECK(same, "gray->rgb values differ");
    mm_array_free(&a);

    /* Gray with alpha: composited onto black, fully opaque pixels exact. */
    const unsigned char ga[4] = {200, 255, 100, 0};
    write_png(tpath("ga.png"), 2, 1, PNG_FORMAT_GA, ga);
    CHECK_OK(mm_png_read(tpath("ga.png"), 0, &a));
    CHECK(a.size == 2 && a.shape[2] == 1 && a.data[0] == 200 && a.data[1] == 0, "gray+alpha");
    mm_array_free(&a);

    CHECK_ERR(mm_png_read(tpath("missing.png"), 0, &a), MM_ERR_IO, "missing.png");
    write_bytes(tpath("fake.png"), "GIF89a this is not a png at all", 31);
    CHECK_ERR(mm_png_read(tpath("fake.png"), 0, &a), MM_ERR_FORMAT, "fake.png");
    CHECK(tu_contains(mm_errmsg(), "PNG"), "non-PNG message: %s", mm_errmsg());
    CHECK(a.data == NULL, "out not cleared");
    /* A PNG cut short. */
    FILE *f = fopen(tpath("rgb.png"), "rb");
    unsigned char buf[1024];
    size_t n = f ? fread(buf, 1, sizeof buf, f) : 0;
    if (f) fclose(f);
    write_bytes(tpath("cut.png"), buf, n > 40 ? 40 : n);
    CHECK_ERR(mm_png_read(tpath("cut.png"), 0, &a), MM_ERR_FORMAT, "cut.png");
    CHECK_ERR(mm_png_read(tpath("rgb.png"), 2, &a), MM_ERR_ARG, "channels");
}

static void test_preprocess(void) {
    mm_preprocess p = mm_preprocess_identity();
    CHECK(p.scale == 1 && p.mean == 0 && p.std == 1, "identity");
    float x[4] = {0, 255, 51, 127.5f};
    mm_preprocess_apply(&p, x, 4);
    CHECK(x[1] == 255 && x[3] == 127.5f, "identity apply");

    p = mm_preprocess_rescale(1.0f / 255);
    CHECK(p.mean == 0 && p.std == 1 && fabsf(p.scale - 1.0f / 255) < 1e-12f, "rescale");
    mm_preprocess_apply(&p, x, 4);
    CHECK(x[0] == 0 && fabsf(x[1] - 1) < 1e-6f && fabsf(x[2] - 0.2f) < 1e-6f &&
              fabsf(x[3] - 0.5f) < 1e-6f,
          "rescale apply %g %g %g %g", x[0], x[1], x[2], x[3]);

    int shape[2] = {2, 2};
    mm_array a;
    CHECK_OK(mm_array_alloc(&a, 2, shape));
    a.data[0] = 2, a.data[1] = 4, a.data[2] = 6, a.data[3] = 8;
    p = mm_preprocess_standardize(&a, 0.5f); /* scaled: 1,2,3,4 */
    CHECK(p.scale == 0.5f && fabsf(p.mean - 2.5f) < 1e-6f && fabsf(p.std - sqrtf(1.25f)) < 1e-6f,
          "standardize mean %g std %g", p.mean, p.std);
    mm_preprocess_apply(&p, a.data, a.size);
    double s = 0, ss = 0;
    for (int i = 0; i < 4; i++) s += a.data[i], ss += (double)a.data[i] * a.data[i];
    CHECK(fabs(s / 4) < 1e-6 && fabs(ss / 4 - 1) < 1e-5, "standardized mean %g var %g", s / 4,
          ss / 4);
    CHECK(fabsf(a.data[0] + 1.5f / sqrtf(1.25f)) < 1e-5f, "standardized value %g", a.data[0]);

    /* Constant input: std floored, no division by zero. */
    for (int i = 0; i < 4; i++) a.data[i] = 3;
    p = mm_preprocess_standardize(&a, 1);
    CHECK(p.mean == 3 && p.std > 0 && p.std <= 1e-12f * 1.001f, "constant std %g", p.std);
    mm_preprocess_apply(&p, a.data, 4);
    CHECK(a.data[0] == 0 && isfinite(a.data[0]), "constant applied %g", a.data[0]);
    mm_array_free(&a);

    /* A large array goes through the parallel path and gives the same result. */
    int big[1] = {300000};
    CHECK_OK(mm_array_alloc(&a, 1, big));
    for (size_t i = 0; i < a.size; i++) a.data[i] = (float)(i % 256);
    p = mm_preprocess_standardize(&a, 1.0f / 255);
    double m = 0;
    for (size_t i = 0; i < a.size; i++) m += a.data[i] / 255.0;
    m /= (double)a.size;
    CHECK(fabs(p.mean - m) < 1e-6, "big mean %g vs %g", p.mean, m);
    mm_preprocess_apply(&p, a.data, a.size);
    CHECK(fabsf(a.data[255] - (float)((1.0 - m) / p.std)) < 1e-4f, "big apply");
    mm_array_free(&a);
}

/* mm_read_file: whole files, limits, files larger than its first buffer, missing files. */
static void test_read_file(void) {
    char *buf = NULL;
    size_t len = 0;
    CHECK_ERR(mm_read_file(tpath("absent.txt"), 0, &buf, &len), MM_ERR_IO, "cannot open");
    CHECK(buf == NULL && len == 0, "a failed read leaves no buffer");
    size_t n = 200000; /* over the 64 KiB first buffer: exercises growth */
    char *data = malloc(n);
    for (size_t i = 0; i < n; i++) data[i] = (char)('a' + i % 26);
    CHECK_OK(mm_write_file_atomic(tpath("big.txt"), data, n));
    CHECK_OK(mm_read_file(tpath("big.txt"), 0, &buf, &len));
    CHECK(len == n && buf && memcmp(buf, data, n) == 0 && buf[n] == 0, "whole file read back (%zu bytes)", len);
    free(buf);
    CHECK_OK(mm_read_file(tpath("big.txt"), 70000, &buf, &len));
    CHECK(len == 70000 && buf && memcmp(buf, data, len) == 0 && buf[len] == 0, "limit 70000: got %zu", len);
    free(buf);
    CHECK_OK(mm_write_file_atomic(tpath("empty.txt"), "", 0));
    CHECK_OK(mm_read_file(tpath("empty.txt"), 0, &buf, &len));
    CHECK(len == 0 && buf && buf[0] == 0, "empty file: empty string");
    free(buf);
    free(data);
}

int main(void) {
    if (!tu_tmpdir()) return 1;
    test_read_file();
    test_mnist();
    test_fashion_mnist();
    test_idx_types();
    test_idx_errors();
    test_png();
    test_preprocess();
    return tu_finish();
}
