#include "testutil.h"
#include "ops/ops.h"

#include <dirent.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int tu_passed, tu_failed;
static char tmp_dir[64];

const char *tu_tmpdir(void) {
    if (!tmp_dir[0]) {
        snprintf(tmp_dir, sizeof tmp_dir, "/tmp/mm_test_XXXXXX");
        if (!mkdtemp(tmp_dir)) {
            perror("mkdtemp");
            tmp_dir[0] = 0;
            return NULL;
        }
    }
    return tmp_dir;
}

const char *tu_tmp_path(const char *name) {
    static char buf[8][512];
    static int k;
    k = (k + 1) % 8;
    snprintf(buf[k], sizeof buf[k], "%s/%s", tu_tmpdir(), name);
    return buf[k];
}

static void rm_rf(const char *path) {
    struct stat sb;
    if (lstat(path, &sb) != 0) return;
    if (S_ISDIR(sb.st_mode)) {
        DIR *d = opendir(path);
        if (d) {
            struct dirent *e;
            while ((e = readdir(d))) {
                if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
                char sub[1024];
                snprintf(sub, sizeof sub, "%s/%s", path, e->d_name);
                rm_rf(sub);
            }
            closedir(d);
        }
        rmdir(path);
    } else {
        unlink(path);
    }
}

int tu_contains(const char *hay, const char *needle) {
    return hay && needle && strstr(hay, needle) != NULL;
}

int tu_finish(void) {
    if (tmp_dir[0]) rm_rf(tmp_dir);
    printf("%d passed, %d failed\n", tu_passed, tu_failed);
    return tu_failed ? 1 : 0;
}

const char *tu_source_path(const char *rel) {
    static _Thread_local char buf[4096];
    const char *src = getenv("MEDIAML_SOURCE_DIR");
    snprintf(buf, sizeof buf, "%s/%s", src ? src : ".", rel);
    return buf;
}

const char *tu_data_dir(void) {
    static char buf[4096];
    const char *env = getenv("MEDIAML_DATA");
    if (env && *env) snprintf(buf, sizeof buf, "%s", env);
    else snprintf(buf, sizeof buf, "%s", tu_source_path("../shared/data"));
    if (access(buf, R_OK) != 0) {
        fprintf(stderr, "data directory %s not found\n", buf);
        return NULL;
    }
    return buf;
}

double tu_gradcheck(const char *name, int n, const tu_param_spec *specs, tu_build_fn build,
                    void *ctx, double tol) {
    mm_graph *g = mm_graph_new();
    mm_node *params[MM_MAX_INPUTS * 2];
    float *vals[MM_MAX_INPUTS * 2], *grads[MM_MAX_INPUTS * 2];
    mm_rng rng = {12345};
    for (int i = 0; i < n; i++) {
        size_t sz = mm_shape_size(specs[i].ndim, specs[i].shape);
        vals[i] = malloc(sz * sizeof(float));
        grads[i] = calloc(sz, sizeof(float));
        float lo = specs[i].lo, hi = specs[i].hi;
        if (lo == 0 && hi == 0) lo = -1, hi = 1;
        for (size_t k = 0; k < sz; k++)
            vals[i][k] = specs[i].init ? specs[i].init[k] : lo + (hi - lo) * mm_rng_uniform(&rng);
        char pname[32];
        snprintf(pname, sizeof pname, "p%d", i);
        params[i] = mm_graph_param(g, pname, specs[i].ndim, specs[i].shape, vals[i],
                                   specs[i].no_grad ? NULL : grads[i], !specs[i].no_grad);
    }
    mm_node *out = build(g, params, ctx);
    double worst = 0;
    int kinks = 0, checked = 0;
    if (!out) {
        CHECK(0, "%s: build failed: %s", name, mm_errmsg());
        goto done;
    }
    g->external_seed = 1;
    mm_status st = mm_graph_plan(g, out, 1);
    CHECK(st == MM_OK, "%s: plan failed: %s", name, mm_errmsg());
    if (st != MM_OK) goto done;
    g->training = 1;
    float *r = malloc(out->size * sizeof(float));
    for (size_t k = 0; k < out->size; k++) r[k] = -1 + 2 * mm_rng_uniform(&rng);

    mm_graph_forward(g);
    memcpy(out->grad, r, out->size * sizeof(float));
    mm_graph_backward(g);

    for (int i = 0; i < n; i++) {
        if (specs[i].no_grad) continue;
        size_t sz = mm_shape_size(specs[i].ndim, specs[i].shape);
        size_t stride = sz > 40 ? sz / 40 : 1;
        for (size_t k = 0; k < sz; k += stride) {
            float keep = vals[i][k];
            /* Central differences at two step sizes: if they disagree the step crossed a kink
             * (relu at 0, a max switching), where no finite difference is meaningful. */
            double fd[2];
            for (int h = 0; h < 2; h++) {
                double eps = (h ? 5e-4 : 1e-3) * fmax(1.0, fabs(keep));
                double lp = 0, lm = 0;
                vals[i][k] = (float)(keep + eps);
                mm_graph_forward(g);
                for (size_t j = 0; j < out->size; j++) lp += (double)out->value[j] * r[j];
                vals[i][k] = (float)(keep - eps);
                mm_graph_forward(g);
                for (size_t j = 0; j < out->size; j++) lm += (double)out->value[j] * r[j];
                vals[i][k] = keep;
                fd[h] = (lp - lm) / ((double)(float)(keep + eps) - (double)(float)(keep - eps));
            }
            if (fabs(fd[0] - fd[1]) > tol * fmax(1.0, fabs(fd[0]))) {
                kinks++;
                continue;
            }
            double num_ = fd[0];
            double ana = grads[i][k], num = num_;
            double err = fabs(num - ana) / fmax(1.0, fmax(fabs(num), fabs(ana)));
            checked++;
            if (err > worst) worst = err;
            if (err > tol)
                fprintf(stderr, "%s: param %d elem %zu analytic %.6g numeric %.6g\n", name, i, k,
                        ana, num);
        }
    }
    free(r);
    /* A few kinks are expected with random inputs; many would hide the check itself. */
    CHECK(kinks * 10 <= checked, "%s: %d of %d elements sit on kinks", name, kinks, kinks + checked);
    CHECK(worst <= tol, "%s: gradient check max error %.3g > %.3g", name, worst, tol);
done:
    mm_graph_free(g);
    for (int i = 0; i < n; i++) free(vals[i]), free(grads[i]);
    return worst;
}

/* ---- parity fixtures ---- */

const mm_st_tensor *tu_fixture(const mm_st_file *fx, const char *fmt, ...) {
    char name[128];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(name, sizeof name, fmt, ap);
    va_end(ap);
    const mm_st_tensor *t = mm_st_find(fx, name);
    if (t && strcmp(t->dtype, "F32") != 0) {
        CHECK(0, "fixture tensor %s has dtype %s, expected F32", name, t->dtype);
        return NULL;
    }
    return t;
}

/* max|got - want| / max(1, max|want|); NaN/Inf in got counts as infinite error. */
double tu_rel_err(const float *got, const float *want, size_t n) {
    double d = 0, m = 0;
    for (size_t i = 0; i < n; i++) {
        if (!isfinite(got[i])) return INFINITY;
        double e = fabs((double)got[i] - (double)want[i]);
        if (e > d) d = e;
        if (fabs((double)want[i]) > m) m = fabs((double)want[i]);
    }
    return d / fmax(1.0, m);
}

double tu_compare(const char *cs, const char *what, const float *got, size_t n, const mm_st_tensor *want,
                  double tol) {
    if (!want) {
        CHECK(0, "%s: fixture lacks %s", cs, what);
        return INFINITY;
    }
    if (want->size != n) {
        CHECK(0, "%s: %s has %zu values, fixture %zu", cs, what, n, want->size);
        return INFINITY;
    }
    double e = tu_rel_err(got, want->data, n);
    CHECK(e <= tol, "%s: %s max error %.3g > %.1g", cs, what, e, tol);
    if (e > tol) {
        const float *w = want->data;
        for (size_t i = 0, shown = 0; i < n && shown < 4; i++)
            if (!(fabsf(got[i] - w[i]) <= tol * fmaxf(1.0f, fabsf(w[i]))))
                fprintf(stderr, "    %s %s[%zu]: got %.7g, expected %.7g\n", cs, what, i, got[i], w[i]), shown++;
    }
    return e;
}

typedef struct acc_wrap {
    tu_build_fn fn;
    void *ctx;
    int n;
} acc_wrap;

static mm_node *acc_build(mm_graph *g, mm_node **p, void *c) {
    acc_wrap *w = c;
    mm_node *out = w->fn(g, p, w->ctx), *extra = NULL;
    if (!out) return NULL;
    for (int i = 0; i < w->n; i++) {
        if (!p[i]->grad) continue;
        mm_node *t = mm_g_mean(g, mm_g_mul(g, p[i], p[i]), MM_AXIS_ALL, 0);
        extra = extra ? mm_g_add(g, extra, t) : t;
    }
    /* the extra scalar broadcasts onto the op's output */
    return extra ? mm_g_add(g, out, extra) : out;
}

double tu_gradcheck_acc(const char *name, int n, const tu_param_spec *specs, tu_build_fn build,
                        void *ctx, double tol) {
    double e = tu_gradcheck(name, n, specs, build, ctx, tol);
    char nm[200];
    snprintf(nm, sizeof nm, "%s (accumulate)", name);
    acc_wrap w = {build, ctx, n};
    double e2 = tu_gradcheck(nm, n, specs, acc_build, &w, tol);
    printf("gradcheck %-44s max error %.2g / %.2g\n", name, e, e2);
    return e > e2 ? e : e2;
}

#define TU_PARITY_MAXIN 16

double tu_parity_case(const mm_st_file *fx, const char *cs, int n_in, int training, tu_parity_build build,
                      const void *ctx, double tol) {
    mm_node *in[TU_PARITY_MAXIN] = {0};
    float *val[TU_PARITY_MAXIN] = {0}, *grad[TU_PARITY_MAXIN] = {0};
    const mm_st_tensor *gin[TU_PARITY_MAXIN] = {0};
    double worst = INFINITY;
    CHECK(n_in <= TU_PARITY_MAXIN, "%s: %d inputs, at most %d", cs, n_in, TU_PARITY_MAXIN);
    if (n_in > TU_PARITY_MAXIN) return worst;
    CHECK(tu_fixture(fx, "%s.in%d", cs, n_in) == NULL, "%s: fixture has more than %d inputs", cs, n_in);
    mm_graph *g = mm_graph_new();
    int ok = 1;
    for (int k = 0; k < n_in && ok; k++) {
        const mm_st_tensor *t = tu_fixture(fx, "%s.in%d", cs, k);
        CHECK(t != NULL, "%s: fixture lacks %s.in%d", cs, cs, k);
        if (!t) {
            ok = 0;
            break;
        }
        gin[k] = tu_fixture(fx, "%s.gin%d", cs, k);
        val[k] = malloc(t->size * sizeof(float));
        memcpy(val[k], t->data, t->size * sizeof(float));
        if (gin[k]) {
            grad[k] = malloc(t->size * sizeof(float));
            for (size_t j = 0; j < t->size; j++) grad[k][j] = NAN;
        }
        char nm[16];
        snprintf(nm, sizeof nm, "in%d", k);
        in[k] = mm_graph_param(g, nm, t->ndim, t->shape, val[k], grad[k], gin[k] != NULL);
    }
    mm_node *out = ok ? build(g, in, n_in, ctx) : NULL;
    if (ok) CHECK(out != NULL, "%s: build failed: %s", cs, mm_errmsg());
    const mm_st_tensor *y = tu_fixture(fx, "%s.y", cs), *gy = tu_fixture(fx, "%s.gy", cs);
    if (out && !(y && gy)) CHECK(0, "%s: fixture lacks y or gy", cs);
    if (out && y && gy) {
        CHECK(out->ndim == y->ndim && memcmp(out->shape, y->shape, (size_t)y->ndim * sizeof(int)) == 0,
              "%s: output rank %d (dim0 %d), fixture rank %d (dim0 %d)", cs, out->ndim, out->shape[0], y->ndim,
              y->shape[0]);
        g->external_seed = 1;
        mm_status st = mm_graph_plan(g, out, 1);
        CHECK(st == MM_OK, "%s: plan failed: %s", cs, mm_errmsg());
        if (st == MM_OK && out->size == gy->size && out->grad) {
            g->training = training;
            mm_graph_forward(g);
            memcpy(out->grad, gy->data, gy->size * sizeof(float));
            mm_graph_backward(g);
            worst = tu_compare(cs, "y", out->value, out->size, y, tol);
            for (int k = 0; k < n_in; k++) {
                char what[24];
                if (gin[k]) {
                    snprintf(what, sizeof what, "gin%d", k);
                    worst = fmax(worst, tu_compare(cs, what, grad[k], gin[k]->size, gin[k], tol));
                }
                const mm_st_tensor *after = tu_fixture(fx, "%s.after%d", cs, k);
                if (after) {
                    snprintf(what, sizeof what, "after%d", k);
                    worst = fmax(worst, tu_compare(cs, what, val[k], after->size, after, tol));
                }
            }
        } else if (st == MM_OK) {
            CHECK(0, "%s: output has %zu values (grad %p), gy %zu", cs, out->size, (void *)out->grad, gy->size);
        }
    }
    printf("%-26s max error %.3g\n", cs, worst);
    mm_graph_free(g);
    for (int k = 0; k < n_in; k++) free(val[k]), free(grad[k]);
    return worst;
}
