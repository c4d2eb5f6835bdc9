/* Recommend app: synthetic interactions for scale benchmarks (uniform users, Zipf item
 * popularity through an alias table, counter-based splitmix64 draws). */
#include "recommend/recommend.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* MovieLens-100k rating frequencies 1..5 as cumulative 32-bit thresholds. */
static const double rating_freq[5] = {0.06110, 0.11370, 0.27145, 0.34174, 0.21201};

mm_status rec_synthetic(const rec_synthetic_config *cfg, rec_interactions *out) {
    memset(out, 0, sizeof *out);
    if (!cfg || cfg->users <= 0 || cfg->items <= 0)
        return mm_error(MM_ERR_ARG, "synthetic: users and items must be positive (%d, %d)", cfg ? cfg->users : 0,
                        cfg ? cfg->items : 0);
    double s = cfg->zipf_s > 0 ? cfg->zipf_s : 1.0;
    if (!isfinite(s)) return mm_error(MM_ERR_ARG, "synthetic: zipf exponent must be finite");
    int ni = cfg->items;
    size_t n = cfg->interactions;

    /* Vose's alias table over w_i = (i + 1)^-s */
    uint32_t *thr = malloc((size_t)ni * sizeof *thr);
    int32_t *alias = malloc((size_t)ni * sizeof *alias);
    double *p = malloc((size_t)ni * sizeof *p);
    int32_t *small = malloc((size_t)ni * sizeof *small), *large = malloc((size_t)ni * sizeof *large);
    mm_status st = MM_OK;
    if (!thr || !alias || !p || !small || !large) {
        st = mm_error(MM_ERR_NOMEM, "synthetic: out of memory");
        goto done;
    }
    double sum = 0;
    for (int i = 0; i < ni; i++) sum += p[i] = pow(i + 1.0, -s);
    int ns = 0, nl = 0;
    for (int i = 0; i < ni; i++) {
        p[i] *= ni / sum;
        if (p[i] < 1) small[ns++] = i;
        else large[nl++] = i;
    }
    while (ns && nl) {
        int a = small[--ns], g = large[nl - 1];
        alias[a] = g;
        thr[a] = (uint32_t)(p[a] * 4294967296.0);
        p[g] -= 1 - p[a];
        if (p[g] < 1) {
            nl--;
            small[ns++] = g;
        }
    }
    while (nl) {
        int g = large[--nl];
        alias[g] = g;
        thr[g] = UINT32_MAX;
    }
    while (ns) { /* rounding leftovers */
        int a = small[--ns];
        alias[a] = a;
        thr[a] = UINT32_MAX;
    }
    uint32_t rcum[4];
    double c = 0;
    for (int r = 0; r < 4; r++) {
        c += rating_freq[r];
        rcum[r] = (uint32_t)(c * 4294967296.0);
    }

    if ((st = rec_idmap_identity(cfg->users, &out->users)) != MM_OK) goto done;
    if ((st = rec_idmap_identity(ni, &out->items)) != MM_OK) goto done;
    size_t m = n ? n : 1;
    out->user = malloc(m * sizeof *out->user);
    out->item = malloc(m * sizeof *out->item);
    out->rating = malloc(m * sizeof *out->rating);
    out->timestamp = malloc(m * sizeof *out->timestamp);
    if (!out->user || !out->item || !out->rating || !out->timestamp) {
        st = mm_error(MM_ERR_NOMEM, "synthetic: out of memory for %zu interactions", n);
        goto done;
    }
    out->cap = m;
    uint64_t base = rec_mix64(cfg->seed ^ 0x5EED5EED5EED5EEDull);
    uint32_t nu = (uint32_t)cfg->users;
    for (size_t i = 0; i < n; i++) {
        uint64_t ctr = base + (uint64_t)i * (3 * 0x9E3779B97F4A7C15ull);
        uint64_t r1 = rec_mix64(ctr), r2 = rec_mix64(ctr + 0x9E3779B97F4A7C15ull),
                 r3 = rec_mix64(ctr + 2 * 0x9E3779B97F4A7C15ull);
        out->user[i] = (int32_t)rec_bounded(r1, nu);
        uint32_t lo = (uint32_t)r1;
        out->rating[i] = (float)(1 + (lo >= rcum[0]) + (lo >= rcum[1]) + (lo >= rcum[2]) + (lo >= rcum[3]));
        uint32_t col = rec_bounded(r2, (uint32_t)ni);
        out->item[i] = (uint32_t)r2 < thr[col] ? (int32_t)col : alias[col];
        out->timestamp[i] = 1000000000 + 30 * (int64_t)i + rec_bounded(r3, 30);
    }
    out->n = n;
done:
    free(thr);
    free(alias);
    free(p);
    free(small);
    free(large);
    if (st != MM_OK) rec_interactions_free(out);
    return st;
}
