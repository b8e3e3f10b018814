/* Support routines linked into every CPU artifact (host and AArch64).
 *
 * MLIR's memref lowering calls `memrefCopy` for copies it cannot express as one memcpy (copies
 * into dynamically shaped out-parameters, strided views). MLIR ships it in its runner-utils
 * library, which is not available here, so ember carries its own: a strided N-d copy.
 * It also holds the thread-count hook of the generated code's OpenMP loops (at the end).
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

/* Thread count of the generated code's parallel loops (OpenMP's team size).
 *
 * The runtime calls `ember_set_num_threads(n)` (its thread-count hook); EMBER_NUM_THREADS in the
 * environment gives the default. OpenMP's team size is a per-thread setting, and the runtime may
 * call the entry point from any of its threads, so the entry stub calls `ember_enter()` first,
 * which applies the chosen count to the calling thread. 0 means OpenMP's default (all cores).
 * Built without EMBER_OPENMP (serial code), both are no-ops.
 */
#include <stdlib.h>

#ifdef EMBER_OPENMP
extern void omp_set_num_threads(int num_threads);
#endif

static volatile int32_t ember_num_threads = -1; /* -1: not read from the environment yet */

int32_t ember_set_num_threads(int32_t num_threads) {
  if (num_threads < 0) return 1;
  ember_num_threads = num_threads;
  return 0;
}

void ember_enter(void) {
  int32_t n = ember_num_threads;
  if (n < 0) {
    const char *env = getenv("EMBER_NUM_THREADS");
    n = env ? (int32_t)atoi(env) : 0;
    ember_num_threads = n < 0 ? 0 : n;
    n = ember_num_threads;
  }
#ifdef EMBER_OPENMP
  if (n > 0) omp_set_num_threads(n);
#endif
}
