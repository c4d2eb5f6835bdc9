/* GELU, erf form: y = 0.5 x (1 + erf(x / sqrt 2)), and its derivative
 * dy/dx = 0.5 (1 + erf(x / sqrt 2)) + x phi(x), phi(x) = exp(-x^2 / 2) / sqrt(2 pi), which reuses
 * the exponential inside erf. */
#ifndef MM_GELU_H
#define MM_GELU_H

#include "ops/fastexp.h"

#include <stddef.h>

#define MM_INV_SQRT2 0.70710678118654752440f
#define MM_INV_SQRT_2PI 0.39894228040143267794f

static inline float mm_gelu(float x) { return 0.5f * x * (1.0f + mm_fast_erff(x * MM_INV_SQRT2)); }

/* gelu(x), with gelu'(x) in *d */
static inline float mm_gelu_grad(float x, float *d) {
    const float u = x * MM_INV_SQRT2;
    const float e = mm_fast_expf(-u * u);
    const float cdf2 = 1.0f + mm_fast_erff_e(u, e);
    *d = 0.5f * cdf2 + x * MM_INV_SQRT_2PI * e;
    return 0.5f * x * cdf2;
}

/* y[i] = gelu(x[i]) and, when d is not NULL, d[i] = gelu'(x[i]), for i < n; y may be x. */
static inline void mm_gelu_span(const float *x, float *y, float *d, size_t n) {
    if (!d) {
#pragma omp simd
        for (size_t i = 0; i < n; i++) y[i] = mm_gelu(x[i]);
        return;
    }
#pragma omp simd
    for (size_t i = 0; i < n; i++) y[i] = mm_gelu_grad(x[i], &d[i]);
}

#endif
