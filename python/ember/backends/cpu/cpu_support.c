/* Support routines linked into every CPU artifact (host and AArch64).
 *
 * MLIR's memref lowering calls `memrefCopy` for copies it cannot express as one memcpy (copies
 * into dynamically shaped out-parameters, strided views). MLIR ships it in its runner-utils
 * library, which is not available here, so ember carries its own: a strided N-d copy that
 * moves each contiguous run with one memcpy.
 * It also holds the allocator of the generated code's temporary buffers (below), the
 * thread-count hook of its OpenMP loops, the per-kernel timers of profile builds and the
 * f32 -> bf16 rounding LLVM calls (at the end).
 */
#include <stdint.h>
#include <stdlib.h>
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
  for (int64_t i = 0; i < rank; ++i)
    if (sizes[i] == 0) return;
  /* The innermost dims that are contiguous in both source and destination form one run, copied
   * by one memcpy (a padded activation's rows, a whole buffer); the outer dims are walked. */
  int64_t inner = rank, run = 1;
  while (inner > 0 && src_strides[inner - 1] == run && dst_strides[inner - 1] == run)
    run *= sizes[--inner];
  size_t run_bytes = (size_t)(run * element_size);
  int64_t index[rank > 0 ? rank : 1];
  for (int64_t i = 0; i < inner; ++i) index[i] = 0;
  for (;;) {
    int64_t so = 0, dof = 0;
    for (int64_t i = 0; i < inner; ++i) {
      so += index[i] * src_strides[i];
      dof += index[i] * dst_strides[i];
    }
    memcpy(dst_base + dof * element_size, src_base + so * element_size, run_bytes);
    int64_t i = inner - 1;
    for (; i >= 0; --i) {
      if (++index[i] < sizes[i]) break;
      index[i] = 0;
    }
    if (i < 0) return;
  }
}

/* The generated code's allocator (finalize-memref-to-llvm{use-generic-functions} calls these).
 *
 * A model's temporaries are the same sizes on every run with the same shapes, and the large ones
 * (im2col patches, activations of a batch) are above glibc's mmap threshold: plain malloc/free
 * would map and unmap them on every run, and the kernel would zero every page again on first
 * touch (page faults were ~30% of a small CNN's run time). So freed blocks are kept in a small
 * per-thread cache and handed back to the next allocation of the same size: after the first run,
 * `run` performs no system allocation. A 64-byte header before each block records its size;
 * blocks are 64-byte aligned (one cache line, an AVX-512 vector). The cache holds at most
 * EMBER_CACHE_SLOTS blocks per thread (a full cache frees what it cannot keep) and is released
 * when its thread exits.
 */
#include <pthread.h>

#define EMBER_CACHE_SLOTS 512
#define EMBER_HEADER 64

typedef struct {
  void *block[EMBER_CACHE_SLOTS];
  size_t size[EMBER_CACHE_SLOTS];
  int count;
} ember_block_cache;

static __thread ember_block_cache *ember_cache;
static pthread_key_t ember_cache_key;
static pthread_once_t ember_cache_once = PTHREAD_ONCE_INIT;

static void ember_release_cache(void *cache) {
  ember_block_cache *c = (ember_block_cache *)cache;
  for (int i = 0; i < c->count; ++i) free(c->block[i]);
  free(c);
}

static void ember_make_cache_key(void) { pthread_key_create(&ember_cache_key, ember_release_cache); }

static ember_block_cache *ember_thread_cache(void) {
  if (!ember_cache) {
    pthread_once(&ember_cache_once, ember_make_cache_key);
    ember_cache = (ember_block_cache *)calloc(1, sizeof(ember_block_cache));
    if (ember_cache) pthread_setspecific(ember_cache_key, ember_cache);
  }
  return ember_cache;
}

void *_mlir_memref_to_llvm_alloc(size_t size) {
  ember_block_cache *c = ember_thread_cache();
  if (c) {
    for (int i = c->count - 1; i >= 0; --i) {
      if (c->size[i] != size) continue;
      char *block = (char *)c->block[i];
      --c->count;
      c->block[i] = c->block[c->count];
      c->size[i] = c->size[c->count];
      return block + EMBER_HEADER;
    }
  }
  size_t padded = (size + EMBER_HEADER + EMBER_HEADER - 1) / EMBER_HEADER * EMBER_HEADER;
  char *block = (char *)aligned_alloc(EMBER_HEADER, padded);
  if (!block) return NULL;
  *(size_t *)block = size;
  return block + EMBER_HEADER;
}

void _mlir_memref_to_llvm_free(void *ptr) {
  if (!ptr) return;
  char *block = (char *)ptr - EMBER_HEADER;
  ember_block_cache *c = ember_thread_cache();
  if (c && c->count < EMBER_CACHE_SLOTS) {
    c->block[c->count] = block;
    c->size[c->count] = *(size_t *)block;
    ++c->count;
    return;
  }
  free(block);
}

/* Thread count of the generated code's parallel loops (OpenMP's team size).
 *
 * The runtime calls `ember_set_num_threads(n)` (its thread-count hook); EMBER_NUM_THREADS in the
 * environment gives the default. OpenMP's team size is a per-thread setting, and the runtime may
 * call the entry point from any of its threads, so the entry stub calls `ember_enter()` first,
 * which applies the chosen count to the calling thread. 0 means OpenMP's default (all cores).
 * Built without EMBER_OPENMP (serial code), both are no-ops.
 */
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

/* Per-kernel timers of a profile build (ember-time-kernels). The model function calls
 * `ember_profile_enter(step, slots)` where each step's code begins and with step -1 before it
 * returns; each call charges the time since the previous one to the step that was running, so
 * the steps' times add up to the function's. `slots` (the same in every call) sizes the
 * counters on first use. The runtime reads them with `ember_profile_read` and clears them with
 * `ember_profile_reset`. Profiling times one run at a time (the runtime serializes profiled
 * runs); runs from several threads at once would mix their steps' times, never corrupt memory.
 */
#include <time.h>

static int64_t *ember_profile_ns, *ember_profile_calls;
static int32_t ember_profile_slots, ember_profile_running = -1;
static int64_t ember_profile_since;

static int64_t ember_profile_clock(void) {
  struct timespec now;
  clock_gettime(CLOCK_MONOTONIC, &now);
  return (int64_t)now.tv_sec * 1000000000 + now.tv_nsec;
}

void ember_profile_enter(int32_t step, int32_t slots) {
  int64_t now = ember_profile_clock();
  if (!ember_profile_ns && slots > 0) {
    int64_t *ns = calloc((size_t)slots, sizeof(int64_t));
    int64_t *calls = calloc((size_t)slots, sizeof(int64_t));
    if (!ns || !calls) {
      free(ns);
      free(calls);
      return;
    }
    ember_profile_calls = calls;
    ember_profile_slots = slots;
    ember_profile_ns = ns;
  }
  int32_t running = ember_profile_running;
  if (running >= 0 && running < ember_profile_slots)
    ember_profile_ns[running] += now - ember_profile_since;
  ember_profile_running = step < ember_profile_slots ? step : -1;
  ember_profile_since = now;
  if (ember_profile_running >= 0) ember_profile_calls[ember_profile_running] += 1;
}

/* Copies up to `slots` counters (nanoseconds and entries per step since the last reset) and
 * returns how many the code has (0 before its first run). */
__attribute__((visibility("default")))
int32_t ember_profile_read(int64_t *ns, int64_t *calls, int32_t slots) {
  int32_t n = slots < ember_profile_slots ? slots : ember_profile_slots;
  for (int32_t i = 0; i < n; ++i) {
    ns[i] = ember_profile_ns[i];
    calls[i] = ember_profile_calls[i];
  }
  return ember_profile_slots;
}

__attribute__((visibility("default")))
void ember_profile_reset(void) {
  for (int32_t i = 0; i < ember_profile_slots; ++i)
    ember_profile_ns[i] = ember_profile_calls[i] = 0;
  ember_profile_running = -1;
}

/* f32 -> bf16 rounding. LLVM rounds a float to bf16 (fptrunc) with a call to `__truncsfbf2` on
 * CPUs without a conversion instruction (x86 before AVX512-BF16, AArch64 without +bf16); the
 * compiler runtimes that define it (libgcc 13, compiler-rt) are not everywhere ember links, so
 * the library carries its own, hidden so that it never interposes another's. Round to nearest
 * even, as PyTorch rounds (denormals kept, overflow to infinity); a NaN stays a NaN of the same
 * sign, made quiet. The bf16 result travels in the floating-point return register (xmm0, h0),
 * as LLVM expects it: gcc 12 has no x86 bf16 type, so a _Float16 carries the 16 bits there. */
__attribute__((visibility("hidden"))) _Float16 __truncsfbf2(float value) {
  uint32_t bits;
  memcpy(&bits, &value, sizeof bits);
  uint16_t rounded = (bits & 0x7fffffffu) > 0x7f800000u
                         ? (uint16_t)((bits >> 16) | 0x40u)
                         : (uint16_t)((bits + 0x7fffu + ((bits >> 16) & 1u)) >> 16);
  _Float16 result;
  memcpy(&result, &rounded, sizeof result);
  return result;
}

/* f64 -> bf16 (`__truncdfbf2`, e.g. a random op computed in double and cast to bf16; LLVM
 * calls it even where the CPU converts f32 to bf16 itself): through float, rounding twice, as
 * PyTorch's CPU cast does (1 + 2^-8 + 2^-40 becomes 1.0, not the nearer 1.0078125). */
__attribute__((visibility("hidden"))) _Float16 __truncdfbf2(double value) {
  return __truncsfbf2((float)value);
}

/* AMX: Linux gives a process the tile registers' state only once it asks
 * (arch_prctl(ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA)); without it the first tile instruction
 * of an AMX int8 kernel faults. Asked once when the artifact is loaded; on a CPU or kernel
 * without AMX the request just fails, and such artifacts hold no AMX code for it anyway. */
#if defined(__x86_64__) && defined(__linux__)
#include <sys/syscall.h>
#include <unistd.h>
__attribute__((constructor)) static void ember_request_amx_state(void) {
  syscall(SYS_arch_prctl, 0x1023 /* ARCH_REQ_XCOMP_PERM */, 18 /* XFEATURE_XTILEDATA */);
}
#endif
