/* Float32 matmul precision, as torch.set_float32_matmul_precision: "highest" computes in
 * float32; "medium" lets matmul round its operands to bfloat16 and sum in float32 where the
 * CPU has AMX or AVX512-BF16 (ops/bf16_gemm.h). A process-wide setting like the thread count:
 * it changes the arithmetic, not the model, so model files do not record it. */
#include "core/graph.h"
#include "ops/bf16_gemm.h"

#include <stdlib.h>
#include <string.h>

static int medium = -1; /* -1: not read from MEDIAML_MATMUL_PRECISION yet */

mm_status mm_set_matmul_precision(const char *name) {
    if (!name) return mm_error(MM_ERR_ARG, "matmul precision: NULL name");
    if (!strcmp(name, "highest"))
        medium = 0;
    else if (!strcmp(name, "medium"))
        medium = 1;
    else
        return mm_error(MM_ERR_ARG, "unknown matmul precision '%s' (expected highest or medium)", name);
    return MM_OK;
}

static int is_medium(void) {
    if (medium < 0) {
        const char *env = getenv("MEDIAML_MATMUL_PRECISION");
        medium = 0;
        if (env && *env && mm_set_matmul_precision(env) != MM_OK) medium = 0; /* a bad value keeps the default */
    }
    return medium;
}

const char *mm_get_matmul_precision(void) { return is_medium() ? "medium" : "highest"; }

int mm_bf16_matmul_available(void) { return bf16_gemm_ready(); }

int mm_matmul_bf16(void) { return is_medium() && bf16_gemm_ready(); }
