/* The kernels' threads and their floating-point mode: denormals flushed to zero by default on
 * the calling thread and on every pool thread, and back to IEEE gradual underflow when asked. */
#include "testutil.h"

#include <omp.h>
#include <string.h>

/* Per thread of a team of n: 1 when a product that underflows into the denormal range gives
 * zero (flush-to-zero) and a denormal input counts as zero (denormals-are-zero). */
static void flush_per_thread(int n, int *ftz, int *daz) {
#pragma omp parallel num_threads(n)
    {
        const int t = omp_get_thread_num();
        volatile float tiny = 1e-30f, small = 1e-10f, denormal;
        const unsigned bits = 0x00000400u; /* about 1.4e-42 */
        float d;
        memcpy(&d, &bits, sizeof d);
        denormal = d;
        ftz[t] = tiny * small == 0.0f;
        daz[t] = denormal * 1.0f == 0.0f;
    }
}

int main(void) {
    enum { N = 2 };
    int ftz[N], daz[N];
    mm_set_threads(N);
    CHECK(mm_get_flush_denormals() == 1, "flush-to-zero should be on by default");
    flush_per_thread(N, ftz, daz);
    for (int t = 0; t < N; t++) CHECK(ftz[t] && daz[t], "thread %d: ftz %d daz %d with flushing on", t, ftz[t], daz[t]);

    CHECK(mm_set_flush_denormals(0) == 1, "x86 and AArch64 support the mode");
    CHECK(mm_get_flush_denormals() == 0, "flushing was turned off");
    flush_per_thread(N, ftz, daz);
    for (int t = 0; t < N; t++) CHECK(!ftz[t] && !daz[t], "thread %d: ftz %d daz %d with flushing off", t, ftz[t], daz[t]);

    CHECK(mm_set_flush_denormals(1) == 1, "turned back on");
    flush_per_thread(N, ftz, daz);
    for (int t = 0; t < N; t++) CHECK(ftz[t] && daz[t], "thread %d: ftz %d daz %d after turning it back on", t, ftz[t], daz[t]);
    return tu_finish();
}
