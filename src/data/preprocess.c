/* Input preprocessing recorded with models: x' = (x * scale - mean) / std. */
#include "mediaml.h"

#include <math.h>

mm_preprocess mm_preprocess_identity(void) {
    return (mm_preprocess){.scale = 1.0f, .mean = 0.0f, .std = 1.0f};
}

mm_preprocess mm_preprocess_rescale(float scale) {
    return (mm_preprocess){.scale = scale, .mean = 0.0f, .std = 1.0f};
}

/* Population mean and standard deviation of all values of x after scaling, in double, two
 * passes. std is floored at 1e-12 so that a constant input does not divide by zero. */
mm_preprocess mm_preprocess_standardize(const mm_array *x, float scale) {
    mm_preprocess p = mm_preprocess_rescale(scale);
    if (!x || !x->data || x->size == 0) return p;
    const float *d = x->data;
    size_t n = x->size;
    double s = (double)scale, sum = 0;
#pragma omp parallel for reduction(+ : sum) schedule(static) if (n > (1u << 16))
    for (size_t i = 0; i < n; i++) sum += (double)d[i] * s;
    double mean = sum / (double)n;
    double sq = 0;
#pragma omp parallel for reduction(+ : sq) schedule(static) if (n > (1u << 16))
    for (size_t i = 0; i < n; i++) {
        double v = (double)d[i] * s - mean;
        sq += v * v;
    }
    double sd = sqrt(sq / (double)n);
    if (!(sd >= 1e-12)) sd = 1e-12;
    p.mean = (float)mean;
    p.std = (float)sd;
    return p;
}

void mm_preprocess_apply(const mm_preprocess *p, float *x, size_t n) {
    if (!p || !x) return;
    const float scale = p->scale, mean = p->mean, sd = p->std;
    if (scale == 1.0f && mean == 0.0f && sd == 1.0f) return;
#pragma omp parallel for schedule(static) if (n > (1u << 16))
    for (size_t i = 0; i < n; i++) x[i] = (x[i] * scale - mean) / sd;
}
