/* Tiny test harness: CHECK macros that count, a closing "N passed, N failed" line, and a
 * finite-difference gradient checker for graph ops. */
#ifndef MM_TESTUTIL_H
#define MM_TESTUTIL_H

#include "mediaml.h"
#include "core/graph.h"
#include <math.h>
#include <stdio.h>

extern int tu_passed, tu_failed;

#define CHECK(cond, ...)                                                                   \
    do {                                                                                   \
        if (cond) {                                                                        \
            tu_passed++;                                                                   \
        } else {                                                                           \
            tu_failed++;                                                                   \
            fprintf(stderr, "%s:%d: CHECK(%s) failed: ", __FILE__, __LINE__, #cond);       \
            fprintf(stderr, __VA_ARGS__);                                                  \
            fputc('\n', stderr);                                                           \
        }                                                                                  \
    } while (0)

#define CHECK_OK(call)                                                                     \
    do {                                                                                   \
        mm_status st_ = (call);                                                            \
        CHECK(st_ == MM_OK, "%s -> %s: %s", #call, mm_status_name(st_), mm_errmsg());      \
    } while (0)

/* Expects call to fail with code; checks that the message contains needle. */
#define CHECK_ERR(call, code, needle)                                                      \
    do {                                                                                   \
        mm_status st_ = (call);                                                            \
        CHECK(st_ == (code), "%s -> %s (%s), expected %s", #call, mm_status_name(st_),     \
              mm_errmsg(), mm_status_name(code));                                          \
        CHECK(tu_contains(mm_errmsg(), needle), "message '%s' lacks '%s'", mm_errmsg(),    \
              needle);                                                                     \
    } while (0)

int tu_contains(const char *hay, const char *needle);
/* Prints the summary line and returns the process exit code. */
int tu_finish(void);

/* Directory of the shared data sets (MEDIAML_DATA, else ../shared/data next to the source
 * tree). Returns NULL and prints a skip notice if missing. */
const char *tu_data_dir(void);
/* A private temporary directory (made on first use, removed by tu_finish) and paths in it. */
const char *tu_tmpdir(void);
const char *tu_tmp_path(const char *name);

/* Path of a file in the source tree (MEDIAML_SOURCE_DIR). */
const char *tu_source_path(const char *rel);

/* ---- gradient check ----
 * Builds a graph with n params of the given shapes (values uniform in [lo, hi]), calls
 * build() to add the op(s) under test, seeds the output gradient with random weights r and
 * compares d(sum(out * r))/d(param) from backward with central differences.
 * Returns the max relative error seen (also CHECKed against tol). */
typedef mm_node *(*tu_build_fn)(mm_graph *g, mm_node **params, void *ctx);
typedef struct tu_param_spec {
    int ndim;
    int shape[MM_MAX_DIMS];
    float lo, hi;      /* init range; both 0 -> [-1, 1] */
    int no_grad;       /* 1: treat as constant (e.g. labels) */
    const float *init; /* optional explicit values */
} tu_param_spec;
double tu_gradcheck(const char *name, int n, const tu_param_spec *specs, tu_build_fn build,
                    void *ctx, double tol);
/* tu_gradcheck twice: as it is, and with every differentiable param also feeding a later
 * consumer (mean(p * p)), so backward reaches the op under test second and must accumulate
 * into its inputs' gradients rather than overwrite them. Prints both errors; returns the larger. */
double tu_gradcheck_acc(const char *name, int n, const tu_param_spec *specs, tu_build_fn build,
                        void *ctx, double tol);

/* Param specs: default range, a range, explicit values, explicit constant values (no grad). */
#define SPEC(nd, ...) {(nd), {__VA_ARGS__}, 0, 0, 0, NULL}
#define SPEC_R(lo_, hi_, nd, ...) {(nd), {__VA_ARGS__}, (lo_), (hi_), 0, NULL}
#define SPEC_V(init_, nd, ...) {(nd), {__VA_ARGS__}, 0, 0, 0, (init_)}
#define SPEC_C(init_, nd, ...) {(nd), {__VA_ARGS__}, 0, 0, 1, (init_)}

/* Parity fixtures (safetensors made by the scripts/gen_*_fixtures.py): a tensor by printf-style
 * name (NULL if absent; non-F32 fails a CHECK), and a CHECKed comparison
 * max|got - want| / max(1, max|want|) <= tol that returns the error. */
const mm_st_tensor *tu_fixture(const mm_st_file *fx, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;
double tu_rel_err(const float *got, const float *want, size_t n);
double tu_compare(const char *cs, const char *what, const float *got, size_t n, const mm_st_tensor *want,
                  double tol);

/* One parity case of a fixture: NAME.in0..in{n_in-1} become params (with a NaN-filled grad buffer
 * exactly for the inputs that have a NAME.ginK, so a gradient the op forgets to write shows up),
 * build() adds the op(s), the output's grad is seeded with NAME.gy, forward and backward run with
 * g->training = training, and y, every NAME.ginK and every NAME.afterK (input state after the
 * step, for in-place ops) are compared. Prints and returns the worst error (INFINITY if the case
 * could not run; that also fails a CHECK). */
typedef mm_node *(*tu_parity_build)(mm_graph *g, mm_node **in, int n_in, const void *ctx);
double tu_parity_case(const mm_st_file *fx, const char *name, int n_in, int training, tu_parity_build build,
                      const void *ctx, double tol);

#endif
