/* Thread count for the kernels. The kernels parallelize with OpenMP over the batch and call
 * OpenBLAS single-threaded inside each thread's slice: one thread pool, no oversubscription
 * (two pools spinning on two cores is what slows PyTorch down here), and a fixed split of
 * the work, so a given thread count gives bit-identical results. */
#include "core/graph.h"

#include <omp.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#if defined(__x86_64__) || defined(__i386__)
#include <xmmintrin.h>
#endif

void openblas_set_num_threads(int num_threads);

static int thread_count;
static int flush_denormals = -1; /* -1: not set yet (MEDIAML_FLUSH_DENORMALS, default on) */

/* Flush-to-zero and denormals-are-zero on the calling thread; 1 when the CPU has them. */
static int set_fp_mode(int on) {
#if defined(__x86_64__) || defined(__i386__)
    const unsigned bits = 0x8040; /* MXCSR FTZ (bit 15) | DAZ (bit 6) */
    _mm_setcsr(on ? _mm_getcsr() | bits : _mm_getcsr() & ~bits);
    return 1;
#elif defined(__aarch64__)
    unsigned long fpcr;
    __asm__ volatile("mrs %0, fpcr" : "=r"(fpcr));
    fpcr = on ? fpcr | (1ul << 24) : fpcr & ~(1ul << 24); /* FZ */
    __asm__ volatile("msr fpcr, %0" : : "r"(fpcr));
    return 1;
#else
    (void)on;
    return 0;
#endif
}

/* On the calling thread and on every thread of the kernels' pool (threads libgomp creates
 * later copy the creating thread's mode). */
static int apply_fp_mode(void) {
    int ok = 1;
#pragma omp parallel num_threads(thread_count) reduction(& : ok)
    ok &= set_fp_mode(flush_denormals);
    return ok;
}

static int default_flush(void) {
    const char *env = getenv("MEDIAML_FLUSH_DENORMALS");
    return !(env && (!strcmp(env, "0") || !strcmp(env, "off") || !strcmp(env, "false")));
}

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
    if (flush_denormals < 0) flush_denormals = default_flush();
    apply_fp_mode();
}

int mm_set_flush_denormals(int on) {
    if (thread_count == 0) mm_set_threads(0);
    flush_denormals = on != 0;
    return apply_fp_mode();
}

int mm_get_flush_denormals(void) {
    if (thread_count == 0) mm_set_threads(0);
    return flush_denormals;
}

int mm_get_threads(void) {
    if (thread_count == 0) mm_set_threads(0);
    return thread_count;
}

int mm_threads(void) { return mm_get_threads(); }
