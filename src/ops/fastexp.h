/* Vectorizable expf, erff and tanhf. expf: for the softmax loops of the Transformer ops (attention, sequence
 * cross-entropy), where glibc's scalar expf was over 40% of the attention time: GCC cannot
 * call libmvec's vector expf without -ffast-math, but it vectorizes this plain arithmetic.
 *
 * Cephes-style: exp(x) = 2^n * exp(r) with n = round(x / ln 2), r = x - n ln 2 (Cody-Waite
 * split of ln 2) and a degree-6 polynomial for exp(r) on |r| <= ln2 / 2. Max error about
 * 1.4 ulp (measured) over the clamped domain. x is clamped to [-87.3, 88.37]: below it returns a
 * tiny positive number (~1e-38) instead of 0, so callers that need an exact 0 (masked
 * entries) must zero those themselves; -inf gives ~1e-38 and a NaN gives a finite value.
 * Loops calling it vectorize under `#pragma omp simd` provided they contain no float
 * comparison or float select (GCC keeps those scalar under -ftrapping-math): select with
 * integers or multiply by 0/1 instead. */
#ifndef MM_FASTEXP_H
#define MM_FASTEXP_H

#include <stdint.h>
#include <string.h>

static inline float mm_fast_expf(float x) {
    /* Clamp to [-87.3, 88.37] on the bit pattern: integer min/max vectorize, while float
     * comparisons (which may trap under GCC's default -ftrapping-math) keep the loop scalar.
     * As unsigned, negative floats grow with their magnitude: u > bits(-87.3) means
     * x < -87.3 (or -inf, or a negative NaN); as signed, i > bits(88.37) means x > 88.37. */
    uint32_t u;
    memcpy(&u, &x, sizeof u);
    u = u > 0xC2AE999Au ? 0xC2AE999Au : u;
    int32_t i = (int32_t)u;
    i = i > 0x42B0BD71 ? 0x42B0BD71 : i;
    memcpy(&x, &i, sizeof x);
    /* round(x / ln 2) by the 1.5 * 2^23 trick (floorf is a libm call that blocks vectorizing) */
    const float n = (x * 1.44269504088896341f + 12582912.0f) - 12582912.0f;
    float r = x - n * 0.693359375f;
    r = r - n * -2.12194440e-4f;
    float p = 1.9875691500e-4f;
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    p = p * r * r + r + 1.0f;
    /* 2^n from its exponent bits: the clamp keeps n in [-126, 127], a normal float. */
    const int32_t bits = ((int32_t)n + 127) << 23;
    float scale;
    memcpy(&scale, &bits, sizeof scale);
    return p * scale;
}

/* A vectorizable erff for the exact GELU, where glibc's scalar erff was 15% of GPT training.
 * Abramowitz & Stegun 7.1.26: erf(a) = 1 - t (a1 + t (a2 + ... + t a5)) exp(-a^2),
 * t = 1 / (1 + p a), a = |x|; absolute error below 1.5e-7 (about 2 ulp near 1). The sign
 * is copied back with integer bit operations so the loop has no float comparison. */
static inline float mm_fast_erff_e(float x, float e);

static inline float mm_fast_erff(float x) { return mm_fast_erff_e(x, mm_fast_expf(-x * x)); }

/* erf(x) given e = exp(-x^2) (callers that need that exponential too compute it once). */
static inline float mm_fast_erff_e(float x, float e) {
    uint32_t u;
    memcpy(&u, &x, sizeof u);
    const uint32_t sign = u & 0x80000000u;
    u &= 0x7FFFFFFFu;
    float a;
    memcpy(&a, &u, sizeof a);
    const float t = 1.0f / (1.0f + 0.3275911f * a);
    float p = 1.061405429f;
    p = p * t - 1.453152027f;
    p = p * t + 1.421413741f;
    p = p * t - 0.284496736f;
    p = p * t + 0.254829592f;
    float r = 1.0f - p * t * e;
    memcpy(&u, &r, sizeof u);
    u |= sign;
    memcpy(&r, &u, sizeof r);
    return r;
}

/* tanh(x) = 1 - 2 / (exp(2x) + 1), vectorizable; absolute error about 1e-7. exp(2x) is
 * clamped by mm_fast_expf, so large |x| gives exactly +-1 (up to rounding). */
static inline float mm_fast_tanhf(float x) {
    return 1.0f - 2.0f / (mm_fast_expf(2.0f * x) + 1.0f);
}

#endif
