/* Random numbers for initialization and shuffling: a counter-based generator (splitmix64),
 * so a seed fully determines every draw, whatever the thread count. */
#include "core/graph.h"

#include <math.h>

float mm_rng_normal(mm_rng *r) {
    /* Box-Muller; u1 in (0, 1] so the log is finite. */
    float u1 = 1.0f - mm_rng_uniform(r);
    float u2 = mm_rng_uniform(r);
    return sqrtf(-2.0f * logf(u1)) * cosf(6.2831853071795864f * u2);
}
