/* Thread count for the kernels. The kernels parallelize with OpenMP over the batch and call
 * OpenBLAS single-threaded inside each thread's slice: one thread pool, no oversubscription
 * (two pools spinning on two cores is what slows PyTorch down here), and a fixed split of
 * the work, so a given thread count gives bit-identical results. */
#include "core/graph.h"

#include <omp.h>
#include <stdlib.h>
#include <unistd.h>

void openblas_set_num_threads(int num_threads);

static int thread_count;

static int default_threads(void) {
    const char *env = getenv("MEDIAML_THREADS");
    if (env && atoi(env) > 0) return atoi(env);
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (int)n : 1;
}

void mm_set_threads(int n) {
    thread_count = n > 0 ? n : default_threads();
    openblas_set_num_threads(1);
    omp_set_num_threads(thread_count);
}

int mm_get_threads(void) {
    if (thread_count == 0) mm_set_threads(0);
    return thread_count;
}

int mm_threads(void) { return mm_get_threads(); }
