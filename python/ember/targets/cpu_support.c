/* Support routines linked into every CPU artifact (host and AArch64).
 *
 * MLIR's memref lowering calls `memrefCopy` for copies it cannot express as one memcpy (copies
 * into dynamically shaped out-parameters, strided views). MLIR ships it in its runner-utils
 * library, which is not available here, so ember carries its own: a strided N-d copy.
 */
#include <stdint.h>
#include <string.h>

typedef struct {
  int64_t rank;
  void *descriptor;
} ember_unranked_memref;

typedef struct {
  char *allocated;
  char *aligned;
  int64_t offset;
  int64_t sizes_and_strides[];
} ember_strided_memref;

void memrefCopy(int64_t element_size, ember_unranked_memref *src, ember_unranked_memref *dst) {
  int64_t rank = src->rank;
  ember_strided_memref *s = (ember_strided_memref *)src->descriptor;
  ember_strided_memref *d = (ember_strided_memref *)dst->descriptor;
  const int64_t *sizes = s->sizes_and_strides;
  const int64_t *src_strides = s->sizes_and_strides + rank;
  const int64_t *dst_strides = d->sizes_and_strides + rank;
  char *src_base = s->aligned + s->offset * element_size;
  char *dst_base = d->aligned + d->offset * element_size;
  if (rank == 0) {
    memcpy(dst_base, src_base, (size_t)element_size);
    return;
  }
  int64_t total = 1;
  for (int64_t i = 0; i < rank; ++i) total *= sizes[i];
  if (total == 0) return;
  int64_t index[rank];
  for (int64_t i = 0; i < rank; ++i) index[i] = 0;
  for (int64_t n = 0; n < total; ++n) {
    int64_t so = 0, dof = 0;
    for (int64_t i = 0; i < rank; ++i) {
      so += index[i] * src_strides[i];
      dof += index[i] * dst_strides[i];
    }
    memcpy(dst_base + dof * element_size, src_base + so * element_size, (size_t)element_size);
    for (int64_t i = rank - 1; i >= 0; --i) {
      if (++index[i] < sizes[i]) break;
      index[i] = 0;
    }
  }
}
