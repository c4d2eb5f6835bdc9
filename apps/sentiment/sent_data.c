/* Labelled-text loaders: TSV (label<TAB>text), CSV with a header (RFC 4180 quoting: commas,
 * doubled quotes and newlines inside quoted fields), fastText's "__label__X text" lines, and
 * polarity pairs (NAME.pos / NAME.neg, one text per line, as rt-polarity). */
#include "sentiment/sentiment.h"

#include <mediaml_text.h>

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

const char *sent_default_data(const char *name, char *buf, size_t size) {
    const char *root = getenv("MEDIAML_DATA");
    snprintf(buf, size, "%s/%s", root && *root ? root : "../shared/data", name);
    return buf;
}

mm_status sent_format_parse(const char *s, sent_format *out) {
    static const char *names[] = {"auto", "tsv", "csv", "fasttext", "polarity"};
    for (int i = 0; i < 5; i++)
        if (!strcmp(s, names[i])) {
            *out = (sent_format)i;
            return MM_OK;
        }
    return mm_error(MM_ERR_ARG, "unknown format '%s' (expected auto, tsv, csv, fasttext or polarity)", s);
}

void sent_corpus_free(sent_corpus *c) {
    for (int i = 0; i < c->n; i++) free(c->text[i]);
    for (int i = 0; i < c->n_labels; i++) free(c->labels[i]);
    free(c->text), free(c->label), free(c->line), free(c->labels);
    memset(c, 0, sizeof *c);
}

/* ---- raw records: label text and body before label mapping ---- */

typedef struct rec {
    char *label, *text; /* owned */
    int line, file;     /* file: index into recs.files */
} rec;

typedef struct recs {
    int n, cap;
    rec *r;
    const char *path;   /* file being read */
    int n_files;
    char files[2][2100];
} recs;

static void recs_free(recs *rs) {
    for (int i = 0; i < rs->n; i++) free(rs->r[i].label), free(rs->r[i].text);
    free(rs->r);
    memset(rs, 0, sizeof *rs);
}

static char *dup_n(const char *s, size_t n) {
    char *d = malloc(n + 1);
    if (d) memcpy(d, s, n), d[n] = 0;
    return d;
}

static int is_space(char ch) { return ch == ' ' || ch == '\t' || ch == '\r' || ch == '\n' || ch == '\v' || ch == '\f'; }

/* Adds a record with surrounding whitespace trimmed from label and text. */
static mm_status push(recs *rs, const char *label, size_t llen, const char *text, size_t tlen, int line) {
    while (llen && is_space(*label)) label++, llen--;
    while (llen && is_space(label[llen - 1])) llen--;
    while (tlen && is_space(*text)) text++, tlen--;
    while (tlen && is_space(text[tlen - 1])) tlen--;
    if (!llen) return mm_error(MM_ERR_FORMAT, "%s:%d: empty label", rs->path, line);
    if (tlen > SENT_MAX_TEXT_BYTES)
        return mm_error(MM_ERR_FORMAT, "%s:%d: text of %zu bytes exceeds the limit of %d bytes", rs->path, line, tlen,
                        SENT_MAX_TEXT_BYTES);
    size_t bad;
    if (mm_utf8_validate(label, llen, &bad) != MM_OK || mm_utf8_validate(text, tlen, &bad) != MM_OK)
        return mm_error(MM_ERR_FORMAT, "%s:%d: %s", rs->path, line, mm_errmsg());
    if (rs->n == rs->cap) {
        int cap = rs->cap ? rs->cap * 2 : 1024;
        rec *r = realloc(rs->r, (size_t)cap * sizeof *r);
        if (!r) return mm_error(MM_ERR_NOMEM, "out of memory");
        rs->r = r, rs->cap = cap;
    }
    rec *r = &rs->r[rs->n];
    r->label = dup_n(label, llen);
    r->text = dup_n(text, tlen);
    r->line = line;
    r->file = rs->n_files - 1;
    if (!r->label || !r->text) {
        free(r->label), free(r->text);
        return mm_error(MM_ERR_NOMEM, "out of memory");
    }
    rs->n++;
    return MM_OK;
}

/* Line-based formats: calls fn on each line (without its newline), numbered from 1. */
typedef mm_status (*line_fn)(recs *rs, const char *s, size_t n, int line, void *ctx);

static mm_status each_line(recs *rs, const char *buf, size_t len, line_fn fn, void *ctx) {
    int line = 0;
    size_t i = 0;
    if (len >= 3 && !memcmp(buf, "\xEF\xBB\xBF", 3)) i = 3; /* byte-order mark */
    while (i < len) {
        const char *e = memchr(buf + i, '\n', len - i);
        size_t n = e ? (size_t)(e - (buf + i)) : len - i;
        line++;
        size_t k = n;
        while (k && is_space(buf[i + k - 1])) k--;
        if (k) {
            mm_status st = fn(rs, buf + i, n, line, ctx);
            if (st) return st;
        }
        i += n + 1;
    }
    return MM_OK;
}

static mm_status tsv_line(recs *rs, const char *s, size_t n, int line, void *ctx) {
    (void)ctx;
    const char *tab = memchr(s, '\t', n);
    if (!tab) return mm_error(MM_ERR_FORMAT, "%s:%d: expected label<TAB>text, found no tab", rs->path, line);
    return push(rs, s, (size_t)(tab - s), tab + 1, n - (size_t)(tab - s) - 1, line);
}

static mm_status fasttext_line(recs *rs, const char *s, size_t n, int line, void *ctx) {
    (void)ctx;
    static const char pre[] = "__label__";
    while (n && is_space(*s)) s++, n--;
    if (n < sizeof pre - 1 || memcmp(s, pre, sizeof pre - 1))
        return mm_error(MM_ERR_FORMAT, "%s:%d: expected a line starting with __label__", rs->path, line);
    size_t l = sizeof pre - 1, e = l;
    while (e < n && !is_space(s[e])) e++;
    size_t t = e;
    /* further labels of a multi-label line are skipped (the first one is used) */
    while (t < n) {
        while (t < n && is_space(s[t])) t++;
        if (n - t >= sizeof pre - 1 && !memcmp(s + t, pre, sizeof pre - 1))
            while (t < n && !is_space(s[t])) t++;
        else
            break;
    }
    return push(rs, s + l, e - l, s + t, n - t, line);
}

typedef struct polarity_ctx {
    const char *label;
} polarity_ctx;

static mm_status polarity_line(recs *rs, const char *s, size_t n, int line, void *ctx) {
    const polarity_ctx *p = ctx;
    return push(rs, p->label, strlen(p->label), s, n, line);
}

/* ---- CSV ---- */

typedef struct csv_row {
    int n, cap;
    char **f;     /* fields (owned) */
    size_t *len;
} csv_row;

static void row_clear(csv_row *r) {
    for (int i = 0; i < r->n; i++) free(r->f[i]);
    r->n = 0;
}

/* Parses one record starting at *pos; advances *pos and *line past it. */
static mm_status csv_record(const char *path, const char *buf, size_t len, size_t *pos, int *line, csv_row *row) {
    size_t i = *pos;
    int start_line = *line;
    row_clear(row);
    for (;;) {
        size_t cap = 64, n = 0;
        char *f = malloc(cap);
        if (!f) return mm_error(MM_ERR_NOMEM, "out of memory");
        int quoted = i < len && buf[i] == '"';
        if (quoted) i++;
        for (;;) {
            if (i >= len) {
                if (quoted) {
                    free(f);
                    return mm_error(MM_ERR_FORMAT, "%s:%d: unterminated quoted field", path, start_line);
                }
                break;
            }
            char ch = buf[i];
            if (quoted && ch == '"') {
                if (i + 1 < len && buf[i + 1] == '"') {
                    i += 2;
                } else {
                    i++;
                    quoted = 0;
                    if (i < len && buf[i] != ',' && buf[i] != '\n' && buf[i] != '\r') {
                        free(f);
                        return mm_error(MM_ERR_FORMAT, "%s:%d: unexpected character after a closing quote", path, *line);
                    }
                    continue;
                }
            } else if (!quoted && (ch == ',' || ch == '\n' || (ch == '\r' && i + 1 < len && buf[i + 1] == '\n'))) {
                break;
            } else {
                i++;
                if (ch == '\n') (*line)++;
            }
            if (n + 2 > cap) {
                char *nf = realloc(f, cap *= 2);
                if (!nf) {
                    free(f);
                    return mm_error(MM_ERR_NOMEM, "out of memory");
                }
                f = nf;
            }
            f[n++] = ch;
            if (n > 4 * (size_t)SENT_MAX_TEXT_BYTES) {
                free(f);
                return mm_error(MM_ERR_FORMAT, "%s:%d: field longer than %d bytes", path, start_line, SENT_MAX_TEXT_BYTES);
            }
        }
        f[n] = 0;
        if (row->n == row->cap) {
            int cap2 = row->cap ? row->cap * 2 : 8;
            char **nf = realloc(row->f, (size_t)cap2 * sizeof *nf);
            size_t *nl = nf ? realloc(row->len, (size_t)cap2 * sizeof *nl) : NULL;
            if (nf) row->f = nf;
            if (!nf || !nl) {
                free(f);
                return mm_error(MM_ERR_NOMEM, "out of memory");
            }
            row->len = nl, row->cap = cap2;
        }
        row->f[row->n] = f;
        row->len[row->n++] = n;
        if (i < len && buf[i] == ',') {
            i++;
            continue;
        }
        if (i < len && buf[i] == '\r') i++;
        if (i < len && buf[i] == '\n') i++, (*line)++;
        break;
    }
    *pos = i;
    return MM_OK;
}

static int col_named(const csv_row *h, const char *const *names) {
    for (int k = 0; names[k]; k++)
        for (int i = 0; i < h->n; i++) {
            const char *f = h->f[i];
            while (is_space(*f)) f++;
            size_t n = strlen(names[k]);
            if (!strncasecmp(f, names[k], n)) {
                const char *e = f + n;
                while (is_space(*e)) e++;
                if (!*e) return i;
            }
        }
    return -1;
}

static mm_status load_csv(recs *rs, const char *buf, size_t len) {
    static const char *label_names[] = {"label", "labels", "sentiment", "polarity", "class", "target", NULL};
    static const char *text_names[] = {"text", "review", "sentence", "comment", "content", NULL};
    size_t pos = len >= 3 && !memcmp(buf, "\xEF\xBB\xBF", 3) ? 3 : 0;
    int line = 1;
    csv_row h = {0}, r = {0};
    mm_status st = csv_record(rs->path, buf, len, &pos, &line, &h);
    int lc = st ? -1 : col_named(&h, label_names), tc = st ? -1 : col_named(&h, text_names);
    if (!st && h.n == 2 && lc >= 0 && tc < 0) tc = 1 - lc;
    if (!st && (lc < 0 || tc < 0 || lc == tc))
        st = mm_error(MM_ERR_FORMAT, "%s:1: the CSV header must name a label column (label, sentiment, ...) and a text "
                                     "column (text, review, ...)",
                      rs->path);
    while (!st && pos < len) {
        int at = line;
        st = csv_record(rs->path, buf, len, &pos, &line, &r);
        if (st) break;
        if (r.n == 1 && r.len[0] == 0) continue; /* blank line */
        if (r.n != h.n) {
            st = mm_error(MM_ERR_FORMAT, "%s:%d: %d fields, the header has %d", rs->path, at, r.n, h.n);
            break;
        }
        st = push(rs, r.f[lc], r.len[lc], r.f[tc], r.len[tc], at);
    }
    row_clear(&h), row_clear(&r);
    free(h.f), free(h.len), free(r.f), free(r.len);
    return st;
}

/* ---- paths and formats ---- */

static int has_suffix(const char *s, const char *suf) {
    size_t n = strlen(s), m = strlen(suf);
    return n >= m && !strcmp(s + n - m, suf);
}

static int is_dir(const char *p) {
    struct stat sb;
    return stat(p, &sb) == 0 && S_ISDIR(sb.st_mode);
}

static int exists(const char *p) {
    struct stat sb;
    return stat(p, &sb) == 0 && S_ISREG(sb.st_mode);
}

/* In a directory: a polarity pair (prefix recorded in pair, preferring *.utf8.pos) or the
 * single data file. */
static mm_status resolve_dir(const char *dir, char *file, size_t fsize, int *pair) {
    DIR *d = opendir(dir);
    if (!d) return mm_error(MM_ERR_IO, "%s: cannot open directory", dir);
    char best_pos[1024] = "", data[1024] = "";
    int n_data = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        const char *nm = e->d_name;
        if (nm[0] == '.') continue;
        if (has_suffix(nm, ".pos") && (!best_pos[0] || has_suffix(nm, ".utf8.pos")))
            snprintf(best_pos, sizeof best_pos, "%s", nm);
        if (has_suffix(nm, ".csv") || has_suffix(nm, ".tsv") || has_suffix(nm, ".ft")) {
            if (!n_data || strcmp(nm, data) < 0) snprintf(data, sizeof data, "%s", nm);
            n_data++;
        }
    }
    closedir(d);
    if (best_pos[0]) {
        snprintf(file, fsize, "%s/%.*s", dir, (int)(strlen(best_pos) - 4), best_pos);
        *pair = 1;
        return MM_OK;
    }
    if (n_data == 1) {
        snprintf(file, fsize, "%s/%s", dir, data);
        *pair = 0;
        return MM_OK;
    }
    return mm_error(MM_ERR_IO, "%s: expected NAME.pos and NAME.neg or exactly one .csv/.tsv file, found %s", dir,
                    n_data ? "several data files" : "none");
}

static mm_status load_records(const char *path, sent_format fmt, recs *rs) {
    char file[2048];
    int pair = fmt == SENT_FMT_POLARITY;
    if (is_dir(path)) {
        mm_status st = resolve_dir(path, file, sizeof file, &pair);
        if (st) return st;
    } else if (pair || has_suffix(path, ".pos") || has_suffix(path, ".neg")) {
        /* a polarity prefix, or one file of the pair */
        snprintf(file, sizeof file, "%s", path);
        if (has_suffix(file, ".pos") || has_suffix(file, ".neg")) file[strlen(file) - 4] = 0;
        pair = 1;
    } else {
        snprintf(file, sizeof file, "%s", path);
    }
    if (pair) {
        static const char *labels[2] = {"neg", "pos"};
        for (int k = 0; k < 2; k++) {
            char p[2100];
            snprintf(p, sizeof p, "%s.%s", file, labels[k]);
            if (!exists(p)) return mm_error(MM_ERR_IO, "%s: not found (polarity data needs NAME.pos and NAME.neg)", p);
            char *buf;
            size_t len;
            mm_status st = mm_read_file(p, 0, &buf, &len);
            if (st) return st;
            snprintf(rs->files[rs->n_files++], sizeof rs->files[0], "%s", p);
            rs->path = p;
            polarity_ctx ctx = {labels[k]};
            st = each_line(rs, buf, len, polarity_line, &ctx);
            free(buf);
            rs->path = NULL;
            if (st) return st;
        }
        return MM_OK;
    }
    char *buf;
    size_t len;
    mm_status st = mm_read_file(file, 0, &buf, &len);
    if (st) return st;
    snprintf(rs->files[rs->n_files++], sizeof rs->files[0], "%s", file);
    rs->path = file;
    if (fmt == SENT_FMT_AUTO) {
        const char *nl = memchr(buf, '\n', len);
        size_t first = nl ? (size_t)(nl - buf) : len;
        const char *s = buf + (len >= 3 && !memcmp(buf, "\xEF\xBB\xBF", 3) ? 3 : 0);
        if (!strncmp(s, "__label__", 9)) fmt = SENT_FMT_FASTTEXT;
        else if (memchr(buf, '\t', first)) fmt = SENT_FMT_TSV;
        else if (memchr(buf, ',', first)) fmt = SENT_FMT_CSV;
        else {
            free(buf);
            return mm_error(MM_ERR_FORMAT, "%s:1: unknown format (expected label<TAB>text, a CSV header or __label__ lines)",
                            file);
        }
    }
    if (fmt == SENT_FMT_CSV) st = load_csv(rs, buf, len);
    else st = each_line(rs, buf, len, fmt == SENT_FMT_TSV ? tsv_line : fasttext_line, NULL);
    free(buf);
    return st;
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

mm_status sent_load(const char *path, sent_format fmt, int n_known, char *const *known, sent_corpus *out) {
    memset(out, 0, sizeof *out);
    recs rs = {0};
    mm_status st = load_records(path, fmt, &rs);
    /* records with an empty text: push() trimmed them to length 0 */
    int kept = 0;
    for (int i = 0; !st && i < rs.n; i++) {
        if (!rs.r[i].text[0]) {
            if (!out->skipped_empty++) out->first_empty_line = rs.r[i].line;
            continue;
        }
        kept++;
    }
    if (!st && !kept) st = mm_error(MM_ERR_FORMAT, "%s: no labelled text found", path);
    /* labels */
    if (!st) {
        out->labels = calloc((size_t)(n_known > 0 ? n_known : rs.n), sizeof(char *));
        if (!out->labels) st = mm_error(MM_ERR_NOMEM, "out of memory");
    }
    if (!st && n_known > 0) {
        for (int k = 0; k < n_known && !st; k++)
            if (!(out->labels[out->n_labels++] = dup_n(known[k], strlen(known[k])))) st = mm_error(MM_ERR_NOMEM, "out of memory");
    } else if (!st) {
        for (int i = 0; i < rs.n && !st; i++) {
            if (!rs.r[i].text[0]) continue;
            int found = 0;
            for (int k = 0; k < out->n_labels && !found; k++) found = !strcmp(out->labels[k], rs.r[i].label);
            if (!found && !(out->labels[out->n_labels++] = dup_n(rs.r[i].label, strlen(rs.r[i].label))))
                st = mm_error(MM_ERR_NOMEM, "out of memory");
        }
        if (!st) qsort(out->labels, (size_t)out->n_labels, sizeof(char *), cmp_str);
    }
    if (!st) {
        out->text = calloc((size_t)kept, sizeof(char *));
        out->label = calloc((size_t)kept, sizeof(int));
        out->line = calloc((size_t)kept, sizeof(int));
        if (!out->text || !out->label || !out->line) st = mm_error(MM_ERR_NOMEM, "out of memory");
        out->cap = kept;
    }
    for (int i = 0; !st && i < rs.n; i++) {
        rec *r = &rs.r[i];
        if (!r->text[0]) continue;
        int lab = -1;
        for (int k = 0; k < out->n_labels && lab < 0; k++)
            if (!strcmp(out->labels[k], r->label)) lab = k;
        if (lab < 0) {
            char list[512] = "";
            for (int k = 0; k < out->n_labels; k++)
                snprintf(list + strlen(list), sizeof list - strlen(list), "%s%s", k ? ", " : "", out->labels[k]);
            st = mm_error(MM_ERR_FORMAT, "%s:%d: label '%s' was not seen in training (the model knows: %s)",
                          rs.files[r->file], r->line, r->label, list);
            break;
        }
        out->text[out->n] = r->text;
        r->text = NULL;
        out->label[out->n] = lab;
        out->line[out->n++] = r->line;
    }
    recs_free(&rs);
    if (st) sent_corpus_free(out);
    return st;
}
