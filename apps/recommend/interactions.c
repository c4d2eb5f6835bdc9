/* Recommend app: splitmix64, the original <-> dense id index and the ratings loaders
 * (u.data, ratings.csv, ratings.dat, MovieLens split files). */
#include "recommend/recommend.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ------------------------------------------------------------------ RNG */

uint64_t rec_mix64(uint64_t z) {
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

uint64_t rec_splitmix64(uint64_t *state) {
    *state += 0x9E3779B97F4A7C15ull;
    return rec_mix64(*state);
}

/* ------------------------------------------------------------------ id index */

static size_t slot_of(int64_t key, size_t mask) { return (size_t)rec_mix64((uint64_t)key) & mask; }

int rec_idmap_find(const rec_idmap *m, int64_t orig) {
    if (!m->table || !m->nslots) return -1;
    size_t mask = m->nslots - 1;
    for (size_t s = slot_of(orig, mask);; s = (s + 1) & mask) {
        int32_t d = m->table[s];
        if (d < 0) return -1;
        if (m->orig[d] == orig) return d;
    }
}

static mm_status idmap_rehash(rec_idmap *m, size_t nslots) {
    int32_t *t = malloc(nslots * sizeof *t);
    if (!t) return mm_error(MM_ERR_NOMEM, "id index: out of memory");
    memset(t, 0xff, nslots * sizeof *t);
    size_t mask = nslots - 1;
    for (int d = 0; d < m->n; d++) {
        size_t s = slot_of(m->orig[d], mask);
        while (t[s] >= 0) s = (s + 1) & mask;
        t[s] = d;
    }
    free(m->table);
    m->table = t;
    m->nslots = nslots;
    return MM_OK;
}

mm_status rec_idmap_add(rec_idmap *m, int64_t orig, int *dense) {
    int d = rec_idmap_find(m, orig);
    if (d >= 0) {
        if (dense) *dense = d;
        return MM_OK;
    }
    if (m->n == INT32_MAX) return mm_error(MM_ERR_ARG, "id index: more than 2^31-1 ids");
    if (m->n == m->cap) {
        int cap = m->cap ? (m->cap > INT32_MAX / 2 ? INT32_MAX : m->cap * 2) : 64;
        int64_t *o = realloc(m->orig, (size_t)cap * sizeof *o);
        if (!o) return mm_error(MM_ERR_NOMEM, "id index: out of memory");
        m->orig = o;
        m->cap = cap;
    }
    m->orig[m->n++] = orig;
    if ((size_t)m->n * 2 > m->nslots) {
        mm_status st = idmap_rehash(m, m->nslots ? m->nslots * 2 : 128);
        if (st != MM_OK) {
            m->n--;
            return st;
        }
    } else {
        size_t mask = m->nslots - 1, s = slot_of(orig, mask);
        while (m->table[s] >= 0) s = (s + 1) & mask;
        m->table[s] = m->n - 1;
    }
    if (dense) *dense = m->n - 1;
    return MM_OK;
}

void rec_idmap_free(rec_idmap *m) {
    if (!m) return;
    free(m->orig);
    free(m->table);
    memset(m, 0, sizeof *m);
}

mm_status rec_idmap_copy(const rec_idmap *src, rec_idmap *dst) {
    memset(dst, 0, sizeof *dst);
    if (src->n == 0) return MM_OK;
    dst->orig = malloc((size_t)src->n * sizeof *dst->orig);
    dst->table = malloc(src->nslots * sizeof *dst->table);
    if (!dst->orig || !dst->table) {
        rec_idmap_free(dst);
        return mm_error(MM_ERR_NOMEM, "id index: out of memory");
    }
    memcpy(dst->orig, src->orig, (size_t)src->n * sizeof *dst->orig);
    memcpy(dst->table, src->table, src->nslots * sizeof *dst->table);
    dst->n = dst->cap = src->n;
    dst->nslots = src->nslots;
    return MM_OK;
}

mm_status rec_idmap_identity(int n, rec_idmap *out) {
    memset(out, 0, sizeof *out);
    if (n < 0) return mm_error(MM_ERR_ARG, "id index: negative size %d", n);
    if (n == 0) return MM_OK;
    out->orig = malloc((size_t)n * sizeof *out->orig);
    if (!out->orig) return mm_error(MM_ERR_NOMEM, "id index: out of memory");
    for (int i = 0; i < n; i++) out->orig[i] = i;
    out->n = out->cap = n;
    size_t ns = 128;
    while (ns < (size_t)n * 2) ns *= 2;
    mm_status st = idmap_rehash(out, ns);
    if (st != MM_OK) rec_idmap_free(out);
    return st;
}

/* ------------------------------------------------------------------ interaction arrays */

void rec_interactions_free(rec_interactions *d) {
    if (!d) return;
    free(d->user);
    free(d->item);
    free(d->rating);
    free(d->timestamp);
    rec_idmap_free(&d->users);
    rec_idmap_free(&d->items);
    memset(d, 0, sizeof *d);
}

static mm_status reserve(rec_interactions *d, size_t need) {
    if (need <= d->cap) return MM_OK;
    size_t cap = d->cap ? d->cap : 1024;
    while (cap < need) cap *= 2;
    int32_t *u = realloc(d->user, cap * sizeof *u);
    if (u) d->user = u;
    int32_t *i = u ? realloc(d->item, cap * sizeof *i) : NULL;
    if (i) d->item = i;
    float *r = i ? realloc(d->rating, cap * sizeof *r) : NULL;
    if (r) d->rating = r;
    int64_t *t = r ? realloc(d->timestamp, cap * sizeof *t) : NULL;
    if (!t) return mm_error(MM_ERR_NOMEM, "interactions: out of memory (%zu)", cap);
    d->timestamp = t;
    d->cap = cap;
    return MM_OK;
}

mm_status rec_interactions_push(rec_interactions *d, int user, int item, float rating, int64_t ts) {
    if (user < 0 || user >= d->users.n || item < 0 || item >= d->items.n)
        return mm_error(MM_ERR_ARG, "interactions: user %d / item %d outside the index (%d users, %d items)",
                        user, item, d->users.n, d->items.n);
    if (d->n == d->cap) {
        mm_status st = reserve(d, d->n + 1);
        if (st != MM_OK) return st;
    }
    d->user[d->n] = user;
    d->item[d->n] = item;
    d->rating[d->n] = rating;
    d->timestamp[d->n] = ts;
    d->n++;
    return MM_OK;
}

mm_status rec_interactions_like(const rec_interactions *src, size_t reserve_n, rec_interactions *out) {
    memset(out, 0, sizeof *out);
    mm_status st = rec_idmap_copy(&src->users, &out->users);
    if (st == MM_OK) st = rec_idmap_copy(&src->items, &out->items);
    if (st == MM_OK && reserve_n) st = reserve(out, reserve_n);
    if (st != MM_OK) rec_interactions_free(out);
    return st;
}

/* ------------------------------------------------------------------ parsing */

/* Parses a whole field as a base-10 integer. 0 ok, -1 not a number, -2 out of range. */
static int parse_int64(const char *s, int64_t *v) {
    while (*s == ' ') s++;
    if (!*s) return -1;
    const char *p = s;
    if (*p == '-' || *p == '+') p++;
    if (*p < '0' || *p > '9') return -1;
    char *end;
    errno = 0;
    long long x = strtoll(s, &end, 10);
    while (*end == ' ') end++;
    if (*end) return -1;
    if (errno == ERANGE) return -2;
    *v = x;
    return 0;
}

static int parse_float(const char *s, double *v) {
    while (*s == ' ') s++;
    if (!*s) return -1;
    char *end;
    errno = 0;
    double x = strtod(s, &end);
    while (*end == ' ') end++;
    if (end == s || *end || !isfinite(x)) return -1;
    *v = x;
    return 0;
}

typedef enum { FMT_TAB, FMT_COLONS, FMT_CSV } ratings_format;

/* Splits line in place at sep; returns the field count (fields beyond max are counted but
 * not stored). */
static int split_fields(char *line, const char *sep, char **f, int max) {
    size_t seplen = strlen(sep);
    int n = 0;
    char *p = line;
    for (;;) {
        char *q = strstr(p, sep);
        if (n < max) f[n] = p;
        n++;
        if (!q) break;
        *q = 0;
        p = q + seplen;
    }
    return n;
}

static int is_blank(const char *s) {
    for (; *s; s++)
        if (*s != ' ' && *s != '\t' && *s != '\r' && *s != '\n') return 0;
    return 1;
}

static void chomp(char *s, ssize_t *len) {
    while (*len > 0 && (s[*len - 1] == '\n' || s[*len - 1] == '\r')) s[--*len] = 0;
}

static const char *id_field_check(int rc, int64_t v, const char *what, char *buf, size_t n) {
    if (rc == -1) snprintf(buf, n, "%s id is not an integer", what);
    else if (rc == -2) snprintf(buf, n, "%s id out of range", what);
    else if (v < 0) snprintf(buf, n, "negative %s id %lld", what, (long long)v);
    else return NULL;
    return buf;
}

mm_status rec_load_interactions(const char *path, const rec_load_options *opt, rec_interactions *out) {
    memset(out, 0, sizeof *out);
    if (!path) return mm_error(MM_ERR_ARG, "ratings: no file given");
    const rec_interactions *ref = opt ? opt->ref : NULL;
    FILE *f = fopen(path, "rb");
    if (!f) return mm_error(MM_ERR_IO, "%s: cannot open: %s", path, strerror(errno));

    mm_status st = MM_OK;
    if (ref) {
        st = rec_idmap_copy(&ref->users, &out->users);
        if (st == MM_OK) st = rec_idmap_copy(&ref->items, &out->items);
        if (st != MM_OK) goto fail;
    }

    char *line = NULL;
    size_t lcap = 0;
    ssize_t len;
    long lineno = 0;
    int have_format = 0;
    ratings_format fmt = FMT_TAB;
    const char *sep = "\t";
    double lo = 0, hi = 0;
    char why[96];
    while ((len = getline(&line, &lcap, f)) >= 0) {
        lineno++;
        chomp(line, &len);
        if (is_blank(line)) continue;
        if (!have_format) {
            have_format = 1;
            int header = 0;
            if (strchr(line, '\t')) fmt = FMT_TAB, sep = "\t";
            else if (strstr(line, "::")) fmt = FMT_COLONS, sep = "::";
            else if (strchr(line, ',')) {
                fmt = FMT_CSV, sep = ",";
                const char *p = line;
                while (*p == ' ' || *p == '"') p++;
                header = !(*p >= '0' && *p <= '9') && *p != '-' && *p != '+';
            } else {
                st = mm_error(MM_ERR_FORMAT,
                              "%s:%ld: unknown ratings format: expected tab-, comma- or "
                              "'::'-separated fields (user, item, rating, timestamp)",
                              path, lineno);
                goto fail_line;
            }
            lo = fmt == FMT_CSV ? 0.5 : 1.0;
            hi = 5.0;
            if (opt && (opt->min_rating != 0 || opt->max_rating != 0)) lo = opt->min_rating, hi = opt->max_rating;
            if (!(lo <= hi)) {
                st = mm_error(MM_ERR_ARG, "%s: rating range %g..%g is empty", path, lo, hi);
                goto fail_line;
            }
            if (header) {
                char *fl[5];
                int nf = split_fields(line, sep, fl, 5);
                if (nf != 4) {
                    st = mm_error(MM_ERR_FORMAT,
                                  "%s:%ld: header has %d fields, expected 4 (userId,movieId,rating,timestamp)",
                                  path, lineno, nf);
                    goto fail_line;
                }
                continue;
            }
        }
        char *fl[5];
        int nf = split_fields(line, sep, fl, 5);
        if (nf != 4) {
            st = mm_error(MM_ERR_FORMAT, "%s:%ld: expected 4 fields (user, item, rating, timestamp), found %d",
                          path, lineno, nf);
            goto fail_line;
        }
        int64_t uid = 0, iid = 0, ts = 0;
        double r;
        const char *bad;
        int rcu = parse_int64(fl[0], &uid), rci = parse_int64(fl[1], &iid);
        if ((bad = id_field_check(rcu, uid, "user", why, sizeof why)) ||
            (bad = id_field_check(rci, iid, "item", why, sizeof why))) {
            st = mm_error(MM_ERR_FORMAT, "%s:%ld: %s", path, lineno, bad);
            goto fail_line;
        }
        if (parse_float(fl[2], &r) != 0) {
            st = mm_error(MM_ERR_FORMAT, "%s:%ld: rating '%.32s' is not a number", path, lineno, fl[2]);
            goto fail_line;
        }
        if (r < lo || r > hi) {
            st = mm_error(MM_ERR_FORMAT, "%s:%ld: rating %g out of range %g..%g", path, lineno, r, lo, hi);
            goto fail_line;
        }
        if (parse_int64(fl[3], &ts) != 0) {
            st = mm_error(MM_ERR_FORMAT, "%s:%ld: timestamp '%.32s' is not an integer", path, lineno, fl[3]);
            goto fail_line;
        }
        int u, it;
        if (ref) {
            u = rec_idmap_find(&out->users, uid);
            it = rec_idmap_find(&out->items, iid);
            if (u < 0 || it < 0) {
                st = mm_error(MM_ERR_FORMAT, "%s:%ld: %s id %lld is not in the reference index", path, lineno,
                              u < 0 ? "user" : "item", (long long)(u < 0 ? uid : iid));
                goto fail_line;
            }
        } else {
            if ((st = rec_idmap_add(&out->users, uid, &u)) != MM_OK) goto fail_line;
            if ((st = rec_idmap_add(&out->items, iid, &it)) != MM_OK) goto fail_line;
        }
        if ((st = rec_interactions_push(out, u, it, (float)r, ts)) != MM_OK) goto fail_line;
    }
    if (ferror(f)) {
        st = mm_error(MM_ERR_IO, "%s: read error after line %ld", path, lineno);
        goto fail_line;
    }
    if (out->n == 0) {
        st = mm_error(MM_ERR_FORMAT, "%s: no interactions (empty file)", path);
        goto fail_line;
    }
    free(line);
    fclose(f);
    return MM_OK;

fail_line:
    free(line);
fail:
    fclose(f);
    rec_interactions_free(out);
    return st;
}

mm_status rec_load_split(const char *path, const rec_interactions *ref, rec_interactions *out) {
    if (!ref) {
        memset(out, 0, sizeof *out);
        return mm_error(MM_ERR_ARG, "rec_load_split: no reference index");
    }
    rec_load_options o = {0};
    o.ref = ref;
    return rec_load_interactions(path, &o, out);
}

/* ------------------------------------------------------------------ files */

const char *rec_default_data_dir(char *buf, size_t n) {
    const char *env = getenv("MEDIAML_DATA");
    snprintf(buf, n, "%s/movielens-100k", env && *env ? env : "../shared/data");
    return buf;
}

static mm_status find_first(const char *dir, const char *const *names, const char *what, char *buf, size_t n) {
    for (int i = 0; names[i]; i++) {
        int w = snprintf(buf, n, "%s/%s", dir, names[i]);
        if (w < 0 || (size_t)w >= n) return mm_error(MM_ERR_ARG, "%s: path too long", dir);
        if (access(buf, R_OK) == 0) return MM_OK;
    }
    if (n) buf[0] = 0;
    return mm_error(MM_ERR_IO, "%s: no %s file (%s, %s or %s)", dir, what, names[0], names[1], names[2]);
}

mm_status rec_find_ratings_file(const char *dir, char *buf, size_t n) {
    static const char *const names[] = {"u.data", "ratings.csv", "ratings.dat", NULL};
    return find_first(dir, names, "ratings", buf, n);
}

mm_status rec_find_items_file(const char *dir, char *buf, size_t n) {
    static const char *const names[] = {"u.item", "movies.csv", "movies.dat", NULL};
    return find_first(dir, names, "item", buf, n);
}
