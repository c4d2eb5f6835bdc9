/* textgen data: reading UTF-8 text, making tokenizers, the train/validation split and the
 * training / validation windows. */
#include "textgen/textgen.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

mm_status textgen_read_text(const char *path, long limit, char **text, size_t *len) {
    *text = NULL;
    *len = 0;
    if (!path || !*path) return mm_error(MM_ERR_ARG, "no text file given");
    char *buf;
    size_t n;
    mm_status st = mm_read_file(path, limit > 0 ? (size_t)limit : 0, &buf, &n);
    if (st) return st;
    if (limit > 0 && n == (size_t)limit) {
        /* cut back to the start of a character so a limit never splits one */
        size_t cut = n;
        while (cut > 0 && ((unsigned char)buf[cut - 1] & 0xC0) == 0x80) cut--;
        if (cut > 0) {
            unsigned char lead = (unsigned char)buf[cut - 1];
            size_t need = lead < 0x80 ? 1 : lead >= 0xF0 ? 4 : lead >= 0xE0 ? 3 : lead >= 0xC0 ? 2 : 1;
            if (n - (cut - 1) < need) n = cut - 1;
        }
    }
    buf[n] = 0;
    if (n == 0) {
        free(buf);
        return mm_error(MM_ERR_ARG, "%s: the file is empty", path);
    }
    size_t bad;
    if (mm_utf8_validate(buf, n, &bad) != MM_OK) {
        char msg[256];
        snprintf(msg, sizeof msg, "%s", mm_errmsg());
        free(buf);
        return mm_error(MM_ERR_FORMAT, "%s is not UTF-8 text: %s", path, msg);
    }
    *text = buf;
    *len = n;
    return MM_OK;
}

/* ------------------------------------------------------------------ CSV column */

typedef struct cbuf {
    char *s;
    size_t n, cap;
} cbuf;

static int cb_put(cbuf *b, char ch) {
    if (b->n + 1 >= b->cap) {
        size_t cap = b->cap ? 2 * b->cap : 1 << 16;
        char *s = realloc(b->s, cap);
        if (!s) return -1;
        b->s = s;
        b->cap = cap;
    }
    b->s[b->n++] = ch;
    return 0;
}

mm_status textgen_read_csv_column(const char *path, const char *column, long limit, char **text, size_t *len) {
    *text = NULL;
    *len = 0;
    if (!column || !*column) return mm_error(MM_ERR_ARG, "no CSV column given");
    char *raw;
    size_t n;
    mm_status st = textgen_read_text(path, 0, &raw, &n);
    if (st) return st;
    size_t i = 0;
    if (n >= 3 && !memcmp(raw, "\xEF\xBB\xBF", 3)) i = 3; /* BOM */
    cbuf out = {0}, field = {0};
    int col = -1, want = -1, header = 1, quoted = 0, at_start = 1, nomem = 0;
    long records = 0;
    st = MM_OK;
    for (;; i++) {
        int end = i >= n;
        char ch = end ? '\n' : raw[i];
        if (quoted) {
            if (end) {
                st = mm_error(MM_ERR_FORMAT, "%s: unterminated quoted field in record %ld", path, records + 1);
                break;
            }
            if (ch == '"') {
                if (i + 1 < n && raw[i + 1] == '"') {
                    nomem |= cb_put(&field, '"');
                    i++;
                } else {
                    quoted = 0;
                }
            } else {
                nomem |= cb_put(&field, ch);
            }
            continue;
        }
        if (ch == '"' && at_start) {
            quoted = 1;
            at_start = 0;
            continue;
        }
        if (ch == ',' || ch == '\n') {
            if (field.n && field.s[field.n - 1] == '\r' && ch == '\n') field.n--;
            col++;
            if (header) {
                if (field.n == strlen(column) && !memcmp(field.s, column, field.n)) want = col;
            } else if (col == want && field.n) {
                for (size_t k = 0; k < field.n; k++) nomem |= cb_put(&out, field.s[k]);
                nomem |= cb_put(&out, '\n');
            }
            field.n = 0;
            at_start = 1;
            if (ch == '\n') {
                if (header && want < 0) {
                    st = mm_error(MM_ERR_ARG, "%s: the CSV header has no column '%s'", path, column);
                    break;
                }
                if (!header) records++;
                header = 0;
                col = -1;
                if (limit > 0 && out.n >= (size_t)limit) break;
            }
            if (end) break;
            continue;
        }
        at_start = 0;
        nomem |= cb_put(&field, ch);
    }
    free(raw);
    free(field.s);
    if (!st && nomem) st = mm_error(MM_ERR_NOMEM, "out of memory reading %s", path);
    if (!st && out.n == 0) st = mm_error(MM_ERR_ARG, "%s: column '%s' is empty", path, column);
    if (st) {
        free(out.s);
        return st;
    }
    if (limit > 0 && out.n > (size_t)limit) {
        size_t cut = (size_t)limit; /* back to a character start */
        while (cut > 0 && ((unsigned char)out.s[cut] & 0xC0) == 0x80) cut--;
        out.n = cut;
    }
    out.s[out.n] = 0;
    *text = out.s;
    *len = out.n;
    return MM_OK;
}

mm_status textgen_make_tokenizer(const char *kind, const char *text, size_t len, int vocab_size, const char *dir,
                                 mm_tokenizer **out) {
    *out = NULL;
    if (!kind || !strcmp(kind, "char")) return mm_tokenizer_char_build(text, len, 0, out);
    if (!strcmp(kind, "bpe")) {
        if (vocab_size <= 0) vocab_size = 512;
        if (vocab_size < 257 || vocab_size > 256 + 1000000)
            return mm_error(MM_ERR_ARG, "BPE vocabulary size must be in 257..1000256 (256 bytes + merges), got %d",
                            vocab_size);
        return mm_tokenizer_bpe_train(text, len, vocab_size - 256, out);
    }
    if (!strcmp(kind, "gpt2")) {
        if (!dir || !*dir) return mm_error(MM_ERR_ARG, "the gpt2 tokenizer needs a directory with encoder.json and vocab.bpe");
        return mm_tokenizer_gpt2_load(dir, out);
    }
    return mm_error(MM_ERR_ARG, "unknown tokenizer '%s' (expected char, bpe or gpt2)", kind);
}

void textgen_corpus_free(textgen_corpus *c) {
    if (!c) return;
    free(c->ids);
    memset(c, 0, sizeof *c);
}

mm_status textgen_corpus_encode(const mm_tokenizer *tok, const char *text, size_t len, float val_fraction,
                                textgen_corpus *out) {
    memset(out, 0, sizeof *out);
    if (!(val_fraction >= 0 && val_fraction < 1))
        return mm_error(MM_ERR_ARG, "validation fraction must be in [0, 1), got %g", val_fraction);
    mm_status st = mm_tokenizer_encode(tok, text, len, &out->ids, &out->n);
    if (st) return st;
    size_t nval = (size_t)((double)out->n * val_fraction);
    out->n_train = out->n - nval;
    return MM_OK;
}

static mm_status alloc_xy(long count, int context, mm_dataset *out) {
    memset(out, 0, sizeof *out);
    if (count < 1 || count > (1L << 30)) return mm_error(MM_ERR_ARG, "window count %ld out of range", count);
    int shape[2] = {(int)count, context};
    mm_status st = mm_array_alloc(&out->x, 2, shape);
    if (!st) st = mm_array_alloc(&out->y, 2, shape);
    if (st) mm_dataset_free(out);
    return st;
}

static void fill(const int32_t *ids, size_t off, int context, float *x, float *y) {
    for (int t = 0; t < context; t++) {
        x[t] = (float)ids[off + (size_t)t];
        y[t] = (float)ids[off + (size_t)t + 1];
    }
}

mm_status textgen_sample_windows(const int32_t *ids, size_t n, int context, long count, uint64_t seed,
                                 mm_dataset *out) {
    memset(out, 0, sizeof *out);
    if (context < 1) return mm_error(MM_ERR_ARG, "context must be at least 1");
    if (n < (size_t)context + 1)
        return mm_error(MM_ERR_ARG, "the training part has %zu tokens, fewer than context + 1 = %d (use more text or a smaller context)",
                        n, context + 1);
    mm_status st = alloc_xy(count, context, out);
    if (st) return st;
    uint64_t rng = seed ^ 0x7465787467656E00ull; /* "textgen" */
    const uint64_t offsets = (uint64_t)(n - (size_t)context); /* valid starts 0..n-context-1 */
    for (long i = 0; i < count; i++) {
        uint64_t r = textgen_rng_next(&rng);
        size_t off = (size_t)(r % offsets);
        fill(ids, off, context, out->x.data + (size_t)i * context, out->y.data + (size_t)i * context);
    }
    return MM_OK;
}

mm_status textgen_fixed_windows(const int32_t *ids, size_t n, int context, long max_windows, mm_dataset *out) {
    memset(out, 0, sizeof *out);
    if (context < 1) return mm_error(MM_ERR_ARG, "context must be at least 1");
    if (n < (size_t)context + 1)
        return mm_error(MM_ERR_ARG, "the validation part has %zu tokens, fewer than context + 1 = %d (use more text or a smaller context)",
                        n, context + 1);
    long all = (long)((n - 1) / (size_t)context);
    long count = max_windows > 0 && max_windows < all ? max_windows : all;
    mm_status st = alloc_xy(count, context, out);
    if (st) return st;
    for (long i = 0; i < count; i++) {
        /* evenly spread when capped; window i of all otherwise */
        long w = count == all ? i : (long)((double)i * (double)all / (double)count);
        fill(ids, (size_t)w * (size_t)context, context, out->x.data + (size_t)i * context, out->y.data + (size_t)i * context);
    }
    return MM_OK;
}
