/* Internal: atomic file writes from several buffers (used by the safetensors writer so that
 * large tensors are not copied into one buffer first). */
#ifndef MM_IO_ATOMIC_H
#define MM_IO_ATOMIC_H

#include "mediaml.h"

/* Writes the concatenation of n buffers to path atomically, like mm_write_file_atomic. */
mm_status mm_write_file_atomic_parts(const char *path, int n, const void *const *bufs,
                                     const size_t *lens);

#endif
