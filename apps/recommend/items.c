/* Recommend app: item metadata (u.item + u.genre, movies.csv, movies.dat) and the
 * Latin-1 -> UTF-8 conversion. */
#include "recommend/recommend.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------------ encoding */

int rec_is_utf8(const char *str, size_t n) {
    const unsigned char *s = (const unsigned char *)str;
    size_t i = 0;
    while (i < n) {
        unsigned c = s[i];
        if (c < 0x80) {
            i++;
            continue;
        }
        int len;
        unsigned min;
        if (c >= 0xC2 && c <= 0xDF) len = 2, min = 0x80;
        else if (c >= 0xE0 && c <= 0xEF) len = 3, min = 0x800;
        else if (c >= 0xF0 && c <= 0xF4) len = 4, min = 0x10000;
        else return 0;
        if (i + (size_t)len > n) return 0;
        unsigned cp = c & (0x7F >> len);
        for (int k = 1; k < len; k++) {
            if ((s[i + k] & 0xC0) != 0x80) return 0;
            cp = (cp << 6) | (s[i + k] & 0x3F);
        }
        if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return 0;
        i += (size_t)len;
    }
    return 1;
}

char *rec_latin1_to_utf8(const char *str, size_t n) {
    const unsigned char *s = (const unsigned char *)str;
    size_t extra = 0;
    for (size_t i = 0; i < n; i++) extra += s[i] >= 0x80;
    char *out = malloc(n + extra + 1);
    if (!out) return NULL;
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned c = s[i];
        if (c < 0x80) out[o++] = (char)c;
        else {
            out[o++] = (char)(0xC0 | (c >> 6));
            out[o++] = (char)(0x80 | (c & 0x3F));
        }
    }
    out[o] = 0;
    return out;
}

/* Whole file as UTF-8 text (converted from Latin-1 when not valid UTF-8, BOM dropped). */
static mm_status read_text(const char *path, char **out, size_t *len) {
    *out = NULL;
    char *buf;
    size_t n;
    mm_status st = mm_read_file(path, 0, &buf, &n);
    if (st) return st;
    size_t skip = n >= 3 && !memcmp(buf, "\xEF\xBB\xBF", 3) ? 3 : 0;
    char *text;
    if (rec_is_utf8(buf + skip, n - skip)) {
        text = malloc(n - skip + 1);
        if (text) {
            memcpy(text, buf + skip, n - skip);
            text[n - skip] = 0;
        }
    } else {
        text = rec_latin1_to_utf8(buf, n);
    }
    free(buf);
    if (!text) return mm_error(MM_ERR_NOMEM, "%s: out of memory", path);
    *out = text;
    *len = strlen(text); /* an embedded NUL ends the text */
    return MM_OK;
}

/* ------------------------------------------------------------------ rec_items */

void rec_items_free(rec_items *it) {
    if (!it) return;
    for (int i = 0; i < it->n; i++) {
        if (it->title) free(it->title[i]);
        if (it->date) free(it->date[i]);
    }
    free(it->title);
    free(it->date);
    free(it->genres);
    for (int g = 0; g < it->n_genres; g++)
        if (it->genre_names) free(it->genre_names[g]);
    free(it->genre_names);
    rec_idmap_free(&it->index);
    memset(it, 0, sizeof *it);
}

int rec_items_find(const rec_items *it, int64_t orig_id) { return rec_idmap_find(&it->index, orig_id); }

const char *rec_items_title(const rec_items *it, int64_t orig_id) {
    int r = rec_items_find(it, orig_id);
    return r < 0 ? NULL : it->title[r];
}

typedef struct items_builder {
    rec_items *it;
    int cap;
    int gcap;
} items_builder;

static char *dupn(const char *s, size_t n) {
    char *d = malloc(n + 1);
    if (d) {
        memcpy(d, s, n);
        d[n] = 0;
    }
    return d;
}

static mm_status add_item(items_builder *b, const char *path, long line, int64_t id, const char *title,
                          const char *date, uint64_t genres) {
    rec_items *it = b->it;
    if (rec_idmap_find(&it->index, id) >= 0)
        return mm_error(MM_ERR_FORMAT, "%s:%ld: duplicate item id %lld", path, line, (long long)id);
    if (it->n == b->cap) {
        int cap = b->cap ? b->cap * 2 : 256;
        char **t = realloc(it->title, (size_t)cap * sizeof *t);
        if (t) it->title = t;
        char **d = t ? realloc(it->date, (size_t)cap * sizeof *d) : NULL;
        if (d) it->date = d;
        uint64_t *g = d ? realloc(it->genres, (size_t)cap * sizeof *g) : NULL;
        if (!g) return mm_error(MM_ERR_NOMEM, "%s: out of memory", path);
        it->genres = g;
        b->cap = cap;
    }
    char *t = dupn(title, strlen(title)), *d = dupn(date, strlen(date));
    mm_status st = t && d ? rec_idmap_add(&it->index, id, NULL) : mm_error(MM_ERR_NOMEM, "%s: out of memory", path);
    if (st != MM_OK) {
        free(t);
        free(d);
        return st;
    }
    it->title[it->n] = t;
    it->date[it->n] = d;
    it->genres[it->n] = genres;
    it->n++;
    return MM_OK;
}

/* Index of genre name, added when new. */
static mm_status genre_index(items_builder *b, const char *path, long line, const char *name, size_t len, int *g) {
    rec_items *it = b->it;
    for (int i = 0; i < it->n_genres; i++)
        if (strlen(it->genre_names[i]) == len && !memcmp(it->genre_names[i], name, len)) {
            *g = i;
            return MM_OK;
        }
    if (it->n_genres == 64) return mm_error(MM_ERR_FORMAT, "%s:%ld: more than 64 genres", path, line);
    if (it->n_genres == b->gcap) {
        int cap = b->gcap ? b->gcap * 2 : 32;
        char **nn = realloc(it->genre_names, (size_t)cap * sizeof *nn);
        if (!nn) return mm_error(MM_ERR_NOMEM, "%s: out of memory", path);
        it->genre_names = nn;
        b->gcap = cap;
    }
    char *s = dupn(name, len);
    if (!s) return mm_error(MM_ERR_NOMEM, "%s: out of memory", path);
    it->genre_names[it->n_genres] = s;
    *g = it->n_genres++;
    return MM_OK;
}

static int parse_id(const char *s, int64_t *v) {
    while (*s == ' ') s++;
    if (*s < '0' || *s > '9') return -1;
    char *end;
    errno = 0;
    long long x = strtoll(s, &end, 10);
    while (*end == ' ') end++;
    if (*end || errno == ERANGE) return -1;
    *v = x;
    return 0;
}

/* Next line of text at *p (NUL-terminated copy is made in place: the '\n' becomes NUL);
 * returns NULL at the end. */
static char *next_line(char **p) {
    char *s = *p;
    if (!*s) return NULL;
    char *nl = strchr(s, '\n');
    if (nl) {
        *nl = 0;
        *p = nl + 1;
    } else {
        *p = s + strlen(s);
    }
    size_t n = strlen(s);
    if (n && s[n - 1] == '\r') s[n - 1] = 0;
    return s;
}

static int blank(const char *s) {
    for (; *s; s++)
        if (!isspace((unsigned char)*s)) return 0;
    return 1;
}

static int split(char *line, const char *sep, char **f, int max) {
    size_t sl = strlen(sep);
    int n = 0;
    for (char *p = line;;) {
        char *q = strstr(p, sep);
        if (n < max) f[n] = p;
        n++;
        if (!q) break;
        *q = 0;
        p = q + sl;
    }
    return n;
}

static const char *const ml100k_genres[19] = {
    "unknown", "Action", "Adventure", "Animation", "Children's", "Comedy", "Crime",
    "Documentary", "Drama", "Fantasy", "Film-Noir", "Horror", "Musical", "Mystery",
    "Romance", "Sci-Fi", "Thriller", "War", "Western"};

/* u.genre: "name|index" lines. Fills names (strdup'ed) by index; *n = count. */
static mm_status load_u_genre(const char *path, char ***names_out, int *n_out) {
    *names_out = NULL;
    *n_out = 0;
    char *text;
    size_t len;
    mm_status st = read_text(path, &text, &len);
    if (st != MM_OK) return st;
    char *names[64] = {0};
    int n = 0;
    long lineno = 0;
    char *p = text, *line;
    while ((line = next_line(&p))) {
        lineno++;
        if (blank(line)) continue;
        char *f[3];
        int nf = split(line, "|", f, 3);
        int64_t idx;
        if (nf != 2) {
            st = mm_error(MM_ERR_FORMAT, "%s:%ld: expected 2 fields (name|index), found %d", path, lineno, nf);
            break;
        }
        if (parse_id(f[1], &idx) || idx >= 64) {
            st = mm_error(MM_ERR_FORMAT, "%s:%ld: genre index '%s' is not an integer in 0..63", path, lineno, f[1]);
            break;
        }
        if (names[idx]) {
            st = mm_error(MM_ERR_FORMAT, "%s:%ld: genre index %lld given twice", path, lineno, (long long)idx);
            break;
        }
        if (!(names[idx] = dupn(f[0], strlen(f[0])))) {
            st = mm_error(MM_ERR_NOMEM, "%s: out of memory", path);
            break;
        }
        if (idx + 1 > n) n = (int)idx + 1;
    }
    free(text);
    for (int i = 0; st == MM_OK && i < n; i++)
        if (!names[i]) st = mm_error(MM_ERR_FORMAT, "%s: genre index %d missing", path, i);
    if (st == MM_OK && n == 0) st = mm_error(MM_ERR_FORMAT, "%s: no genres", path);
    if (st != MM_OK) {
        for (int i = 0; i < 64; i++) free(names[i]);
        return st;
    }
    char **arr = malloc((size_t)n * sizeof *arr);
    if (!arr) {
        for (int i = 0; i < 64; i++) free(names[i]);
        return mm_error(MM_ERR_NOMEM, "%s: out of memory", path);
    }
    memcpy(arr, names, (size_t)n * sizeof *arr);
    *names_out = arr;
    *n_out = n;
    return MM_OK;
}

/* u.item: id|title|release date|video release date|IMDb URL|flags... */
static mm_status load_u_item(const char *path, char *text, items_builder *b) {
    rec_items *it = b->it;
    mm_status st = MM_OK;
    long lineno = 0;
    int nflags = -1;
    char *p = text, *line;
    char *f[5 + 64 + 1];
    const int maxf = (int)(sizeof f / sizeof *f);
    while ((line = next_line(&p))) {
        lineno++;
        if (blank(line)) continue;
        int nf = split(line, "|", f, maxf);
        if (nf < 6 || nf > 5 + 64) {
            return mm_error(MM_ERR_FORMAT,
                            "%s:%ld: expected id|title|release date|video release date|URL|genre flags, found %d fields",
                            path, lineno, nf);
        }
        if (nflags < 0) nflags = nf - 5;
        else if (nf - 5 != nflags)
            return mm_error(MM_ERR_FORMAT, "%s:%ld: %d genre flags, earlier lines have %d", path, lineno, nf - 5,
                            nflags);
        int64_t id;
        if (parse_id(f[0], &id))
            return mm_error(MM_ERR_FORMAT, "%s:%ld: item id '%.32s' is not a non-negative integer", path, lineno, f[0]);
        uint64_t mask = 0;
        for (int g = 0; g < nflags; g++) {
            const char *s = f[5 + g];
            if ((s[0] != '0' && s[0] != '1') || s[1])
                return mm_error(MM_ERR_FORMAT, "%s:%ld: genre flag %d is '%.8s', expected 0 or 1", path, lineno,
                                g + 1, s);
            if (s[0] == '1') mask |= 1ull << g;
        }
        if ((st = add_item(b, path, lineno, id, f[1], f[2], mask)) != MM_OK) return st;
    }
    if (it->n == 0) return mm_error(MM_ERR_FORMAT, "%s: no items (empty file)", path);

    /* genre names: u.genre next to u.item, else the standard names */
    char gpath[4096];
    const char *slash = strrchr(path, '/');
    int w = slash ? snprintf(gpath, sizeof gpath, "%.*s/u.genre", (int)(slash - path), path)
                  : snprintf(gpath, sizeof gpath, "u.genre");
    FILE *gf = w > 0 && (size_t)w < sizeof gpath ? fopen(gpath, "rb") : NULL;
    if (gf) {
        fclose(gf);
        char **names;
        int ng;
        if ((st = load_u_genre(gpath, &names, &ng)) != MM_OK) return st;
        it->genre_names = names;
        it->n_genres = ng;
        b->gcap = ng;
        if (ng != nflags)
            return mm_error(MM_ERR_FORMAT, "%s: %d genres, but %s has %d genre flags", gpath, ng, path, nflags);
        return MM_OK;
    }
    for (int g = 0; g < nflags; g++) {
        char name[24];
        const char *s = name;
        if (nflags == 19) s = ml100k_genres[g];
        else snprintf(name, sizeof name, "genre%d", g);
        int idx;
        if ((st = genre_index(b, path, 0, s, strlen(s), &idx)) != MM_OK) return st;
    }
    return MM_OK;
}

static mm_status set_genres(items_builder *b, const char *path, long line, const char *g, uint64_t *mask) {
    *mask = 0;
    if (!*g || !strcmp(g, "(no genres listed)")) return MM_OK;
    for (const char *s = g;;) {
        const char *e = strchr(s, '|');
        size_t len = e ? (size_t)(e - s) : strlen(s);
        if (len) {
            int idx;
            mm_status st = genre_index(b, path, line, s, len, &idx);
            if (st != MM_OK) return st;
            *mask |= 1ull << idx;
        }
        if (!e) break;
        s = e + 1;
    }
    return MM_OK;
}

/* One CSV record at *pp: fields unescaped into out (NUL-separated), pointers in f. Returns
 * the field count, -1 for an unterminated quote, -2 for text after a closing quote.
 * *lines counts the newlines consumed. */
static int csv_record(char **pp, char *out, char **f, int max, long *lines) {
    char *p = *pp;
    int n = 0;
    for (;;) {
        if (n < max) f[n] = out;
        n++;
        if (*p == '"') {
            p++;
            for (;;) {
                if (!*p) return -1;
                if (*p == '"') {
                    if (p[1] == '"') {
                        *out++ = '"';
                        p += 2;
                        continue;
                    }
                    p++;
                    break;
                }
                if (*p == '\n') ++*lines;
                *out++ = *p++;
            }
            if (*p == '\r') p++;
            if (*p && *p != ',' && *p != '\n') return -2;
        } else {
            char *start = out;
            while (*p && *p != ',' && *p != '\n') *out++ = *p++;
            if (out > start && out[-1] == '\r' && *p != ',') out--;
        }
        *out++ = 0;
        if (*p == ',') {
            p++;
            continue;
        }
        if (*p == '\n') {
            p++;
            ++*lines;
        }
        *pp = p;
        return n;
    }
}

/* movies.csv: header movieId,title,genres. */
static mm_status load_movies_csv(const char *path, char *text, size_t len, items_builder *b) {
    char *scratch = malloc(len + 2);
    if (!scratch) return mm_error(MM_ERR_NOMEM, "%s: out of memory", path);
    mm_status st = MM_OK;
    char *p = text;
    long line = 1, next = 1;
    int header = 1;
    while (*p) {
        char *f[4];
        line = next;
        if (*p == '\n' || (*p == '\r' && p[1] == '\n')) { /* blank line */
            p += *p == '\r' ? 2 : 1;
            next++;
            continue;
        }
        int nf = csv_record(&p, scratch, f, 4, &next);
        if (nf == -1) {
            st = mm_error(MM_ERR_FORMAT, "%s:%ld: unterminated quoted field", path, line);
            break;
        }
        if (nf == -2) {
            st = mm_error(MM_ERR_FORMAT, "%s:%ld: text after a closing quote", path, line);
            break;
        }
        if (nf != 3) {
            st = mm_error(MM_ERR_FORMAT, "%s:%ld: expected 3 fields (movieId,title,genres), found %d", path, line, nf);
            break;
        }
        if (header) {
            header = 0;
            continue;
        }
        int64_t id;
        if (parse_id(f[0], &id)) {
            st = mm_error(MM_ERR_FORMAT, "%s:%ld: movieId '%.32s' is not a non-negative integer", path, line, f[0]);
            break;
        }
        uint64_t mask;
        if ((st = set_genres(b, path, line, f[2], &mask)) != MM_OK) break;
        if ((st = add_item(b, path, line, id, f[1], "", mask)) != MM_OK) break;
    }
    free(scratch);
    if (st == MM_OK && b->it->n == 0) st = mm_error(MM_ERR_FORMAT, "%s: no items", path);
    return st;
}

/* movies.dat: id::title::genres. */
static mm_status load_movies_dat(const char *path, char *text, items_builder *b) {
    mm_status st;
    long lineno = 0;
    char *p = text, *line;
    while ((line = next_line(&p))) {
        lineno++;
        if (blank(line)) continue;
        char *f[4];
        int nf = split(line, "::", f, 4);
        if (nf != 3)
            return mm_error(MM_ERR_FORMAT, "%s:%ld: expected 3 fields (id::title::genres), found %d", path, lineno, nf);
        int64_t id;
        if (parse_id(f[0], &id))
            return mm_error(MM_ERR_FORMAT, "%s:%ld: item id '%.32s' is not a non-negative integer", path, lineno, f[0]);
        uint64_t mask;
        if ((st = set_genres(b, path, lineno, f[2], &mask)) != MM_OK) return st;
        if ((st = add_item(b, path, lineno, id, f[1], "", mask)) != MM_OK) return st;
    }
    if (b->it->n == 0) return mm_error(MM_ERR_FORMAT, "%s: no items (empty file)", path);
    return MM_OK;
}

mm_status rec_items_load(const char *path, rec_items *out) {
    memset(out, 0, sizeof *out);
    if (!path) return mm_error(MM_ERR_ARG, "items: no file given");
    char *text;
    size_t len;
    mm_status st = read_text(path, &text, &len);
    if (st != MM_OK) return st;
    items_builder b = {out, 0, 0};
    /* first non-blank line decides */
    const char *s = text;
    while (*s == '\n' || *s == '\r') s++;
    const char *eol = strchr(s, '\n');
    size_t fl = eol ? (size_t)(eol - s) : strlen(s);
    int has_pipe = memchr(s, '|', fl) != NULL, has_comma = memchr(s, ',', fl) != NULL;
    int has_colons = 0;
    for (size_t i = 0; i + 1 < fl; i++)
        if (s[i] == ':' && s[i + 1] == ':') has_colons = 1;
    if (fl == 0) st = mm_error(MM_ERR_FORMAT, "%s: no items (empty file)", path);
    else if (has_comma && !(s[0] >= '0' && s[0] <= '9')) st = load_movies_csv(path, text, len, &b);
    else if (has_colons) st = load_movies_dat(path, text, &b);
    else if (has_pipe) st = load_u_item(path, text, &b);
    else
        st = mm_error(MM_ERR_FORMAT,
                      "%s:1: unknown item format: expected u.item (id|title|...), movies.csv "
                      "(movieId,title,genres) or movies.dat (id::title::genres)",
                      path);
    free(text);
    if (st != MM_OK) {
        rec_items_free(out);
        return st;
    }
    out->id = out->index.orig;
    return MM_OK;
}
