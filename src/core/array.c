/* Caller-owned float arrays (data sets, predictions). */
#include "mediaml.h"

#include <stdlib.h>
#include <string.h>

size_t mm_shape_size(int ndim, const int *shape) {
    size_t n = 1;
    for (int i = 0; i < ndim; i++) n *= (size_t)shape[i];
    return n;
}

mm_status mm_array_alloc(mm_array *a, int ndim, const int *shape) {
    memset(a, 0, sizeof *a);
    if (ndim < 1 || ndim > MM_MAX_DIMS) return mm_error(MM_ERR_ARG, "array rank %d out of range", ndim);
    for (int i = 0; i < ndim; i++) {
        if (shape[i] < 0) return mm_error(MM_ERR_ARG, "negative array dimension %d", shape[i]);
        a->shape[i] = shape[i];
    }
    a->ndim = ndim;
    a->size = mm_shape_size(ndim, shape);
    a->data = calloc(a->size ? a->size : 1, sizeof(float));
    if (!a->data) return mm_error(MM_ERR_NOMEM, "out of memory allocating %zu floats", a->size);
    return MM_OK;
}

void mm_array_free(mm_array *a) {
    if (!a) return;
    free(a->data);
    memset(a, 0, sizeof *a);
}

void mm_dataset_free(mm_dataset *d) {
    if (!d) return;
    mm_array_free(&d->x);
    mm_array_free(&d->y);
    d->num_classes = 0;
}
