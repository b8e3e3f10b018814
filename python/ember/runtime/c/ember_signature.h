/* Internal to the ember C runtime: the model signature tables the compiler generates
 * (ember.backends.cpu.c_runtime writes one C file defining `ember_model_signature`), and the
 * checked integer arithmetic the generated dim expressions use. Not part of the public API.
 */
#ifndef EMBER_SIGNATURE_H
#define EMBER_SIGNATURE_H

#include <stdint.h>

#include "ember_runtime.h"

#if defined(__GNUC__) || defined(__clang__)
#define EMBER_INTERNAL __attribute__((visibility("hidden")))
#else
#define EMBER_INTERNAL
#endif

/* Bumped whenever the layout below changes (the runtime and the tables are compiled together,
 * so this only guards against mixing files of different ember versions). */
#define EMBER_SIGNATURE_VERSION 3

/* The fault record: EMBER_FAULT_WORDS int64 words the entry point takes (and zeroes) and the
 * compiled code's run-time checks fill (ember.backends.cpu.runtime_checks, which mirrors this
 * layout through ember.runtime.capi). The first check that fails claims the record and writes
 * what failed; the entry then returns EMBER_ENTRY_FAULT. */
enum {
  EMBER_FAULT_CLAIMED = 0, /* non-zero once a check failed */
  EMBER_FAULT_KIND = 1,    /* EMBER_FAULT_INDEX, EMBER_FAULT_DIVISION or EMBER_FAULT_ASSERT */
  EMBER_FAULT_VALUE = 2,   /* the bad index, as the index tensor holds it; for an
                              assertion, the address of its NUL-terminated message */
  EMBER_FAULT_BOUND = 3,   /* the size of the dim it indexes */
  EMBER_FAULT_DIM = 4,     /* that dim */
  EMBER_FAULT_ORIGIN = 5,  /* address of a NUL-terminated "aten.embedding at model.py:12" */
  EMBER_FAULT_TENSOR = 6,  /* entry argument index of the indexed tensor; -1: an intermediate */
  EMBER_FAULT_SOURCE = 7,  /* entry argument index of the tensor holding the bad index or the
                              zero divisor; -1: an intermediate */
  EMBER_FAULT_WORDS = 8,
};
enum { EMBER_FAULT_INDEX = 1, EMBER_FAULT_DIVISION = 2, EMBER_FAULT_ASSERT = 3 };
/* ember_entry returns 0, 3 when the CPU lacks what the code was compiled for, or
 * EMBER_ENTRY_FAULT when a check failed (the fault record says which). */
enum { EMBER_ENTRY_FAULT = 4 };

typedef struct ember_sig_tensor {
  const char *name;
  int32_t dtype;                      /* ember_dtype */
  int32_t rank;
  int32_t first_dim;                  /* id of dim 0 for eval_dim (inputs and outputs) */
  int32_t bound;                      /* constants: stored in the weights file */
  const int64_t *dims;                /* static size, or -1 */
  const int64_t *max_dims;
  const int32_t *bare_symbol;         /* per dim: the symbol index if the dim is one bare symbol,
                                         else -1 */
  const int32_t *const *dim_symbols;  /* per dim: the symbols it uses, ascending, -1 ended */
  const char *const *dim_text;        /* per dim: the manifest's spelling */
  const char *shape_text;             /* "[s0, 4]" */
  int32_t write_back;                 /* outputs: an ember_write_back (0: none) */
  int32_t write_back_index;           /* outputs: the input or constant written, else -1 */
} ember_sig_tensor;

typedef struct ember_signature {
  int32_t version; /* EMBER_SIGNATURE_VERSION */
  int32_t num_symbols;
  const char *const *symbol_names; /* sorted by name: a symbol's index is its rank in that order */
  const int64_t *symbol_min;
  const int64_t *symbol_max;
  int32_t num_inputs, num_constants, num_outputs;
  const ember_sig_tensor *inputs, *constants, *outputs;
  /* Dim `id` (see first_dim) under the symbol values `s` (only the dim's own symbols are read).
   * Returns 0, or non-zero when the expression divides by zero or overflows int64. */
  int (*eval_dim)(int32_t id, const int64_t *s, int64_t *out);
  /* The compiled code: `args` are the inputs', constants' and outputs' memref descriptors,
   * `fault` EMBER_FAULT_WORDS words for its run-time checks (NULL: the entry uses its own). */
  int32_t (*entry)(void **args, int64_t *fault);
  const char *weights_file;      /* "weights.safetensors" */
} ember_signature;

/* Floor division and modulo with Python's semantics, Max and Min; each sets *e on division by
 * zero or int64 overflow (the value is then meaningless). */
static inline int64_t ember_x_add(int64_t a, int64_t b, int *e) {
  int64_t r;
  if (__builtin_add_overflow(a, b, &r)) *e = 1;
  return r;
}
static inline int64_t ember_x_sub(int64_t a, int64_t b, int *e) {
  int64_t r;
  if (__builtin_sub_overflow(a, b, &r)) *e = 1;
  return r;
}
static inline int64_t ember_x_mul(int64_t a, int64_t b, int *e) {
  int64_t r;
  if (__builtin_mul_overflow(a, b, &r)) *e = 1;
  return r;
}
static inline int64_t ember_x_floordiv(int64_t a, int64_t b, int *e) {
  if (b == 0 || (a == INT64_MIN && b == -1)) {
    *e = 1;
    return 0;
  }
  int64_t q = a / b;
  if ((a % b != 0) && ((a < 0) != (b < 0))) q -= 1;
  return q;
}
static inline int64_t ember_x_mod(int64_t a, int64_t b, int *e) {
  if (b == 0) {
    *e = 1;
    return 0;
  }
  if (b == -1) return 0;
  int64_t r = a % b;
  if (r != 0 && ((r < 0) != (b < 0))) r += b;
  return r;
}
static inline int64_t ember_x_max(int64_t a, int64_t b) { return a > b ? a : b; }
static inline int64_t ember_x_min(int64_t a, int64_t b) { return a < b ? a : b; }

/* Defined by the generated tables. */
extern EMBER_INTERNAL const ember_signature ember_model_signature;

/* Defined by ember_weights.c: reads the safetensors file (checking its sha256 when `sha256`,
 * 64 lowercase hex digits, is not NULL) and binds every bound constant. */
typedef struct ember_weights {
  void *block;          /* the allocation holding the file */
  unsigned char *bytes; /* the file's bytes, within block */
  size_t size;
  void **copies; /* per constant: an aligned copy when its data was misaligned */
} ember_weights;

EMBER_INTERNAL int ember_weights_load(const ember_signature *sig, const char *path,
                                      const char *sha256, ember_weights *w, const void **data,
                                      char *err, size_t errlen);
EMBER_INTERNAL void ember_weights_free(const ember_signature *sig, ember_weights *w);

#endif /* EMBER_SIGNATURE_H */
