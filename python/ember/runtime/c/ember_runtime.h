/* ember C runtime API (ABI version 1).
 *
 * Every CPU artifact's shared library (model.so) exports this API itself: the runtime is
 * compiled into the library together with tables describing the model's signature, so there is
 * no separate runtime library. Load the library (dlopen, or link it), create a model from the
 * artifact directory (the weights are read from weights.safetensors and bound), query its
 * inputs, outputs and constants, and run it:
 *
 *     ember_model *m;
 *     char err[1024];
 *     if (ember_model_create("mlp.ember", &m, err, sizeof err)) { puts(err); return 1; }
 *     int64_t x_shape[2] = {7, 512}, y_shape[2];
 *     ember_tensor x = {x_data, EMBER_FLOAT32, 2, x_shape};
 *     ember_tensor y = {y_data, EMBER_FLOAT32, 2, y_shape};  // y_shape: the buffer's shape
 *     int64_t *actual[1] = {y_shape};                          // receives the output's shape
 *     if (ember_model_run(m, &x, 1, &y, 1, actual, err, sizeof err)) puts(err);
 *     ember_model_destroy(m);
 *
 * Load an artifact with ember_loader.h's `ember_load` (see examples/c/run_model.c): it checks
 * the manifest, the library's sha256 and its seal before the library is loaded (dlopen runs a
 * library's constructors, so an unchecked model.so would run before it could be refused), then
 * creates the model with the weights' sha256 checked. It looks up the one symbol
 * `ember_runtime_get_api` and calls through the returned table; models loaded with dlopen's
 * RTLD_LOCAL never see each other's symbols, so one process may load any number of artifacts.
 *
 * Conventions
 *  - Functions returning `int` return EMBER_OK (0) or an `ember_status` code. Those taking
 *    `char *err, size_t errlen` write a NUL-terminated message there on failure (truncated to
 *    errlen; err may be NULL). Nothing aborts the process or prints.
 *  - Tensors are dense, C-contiguous (row-major) and live in host memory; `data` must be
 *    aligned to the element size. Inputs are only read, except by a model that changes them in
 *    place (below). An output buffer may be larger than the call's output (allocate it at its
 *    maximum shape): the result fills its leading elements, contiguous, and the actual shape
 *    is returned.
 *  - Values the compiled code uses as indices or integer divisors are checked as it runs: an
 *    index out of range gives EMBER_ERROR_INDEX, an integer division by zero
 *    EMBER_ERROR_ZERO_DIVISION (PyTorch's IndexError and ZeroDivisionError), with a message
 *    naming the op and its source line, the tensors and the bad value; nothing out of range is
 *    read or written. The outputs of such a run are unspecified, and nothing is written back.
 *
 * Models that change their inputs or buffers in place
 *  - A torch model whose forward mutates an input (`x.copy_(y)`, `x.zero_()`, an `out=`
 *    argument) or one of its buffers (`self.count += 1`) is compiled as AOTInductor does: the
 *    new value of each is an extra output, and ember_model_run copies it, after the compiled
 *    code succeeds, into the caller's input buffer or into the constant's memory, which the
 *    next run reads (a stateful model). Allocate and pass those outputs like the others;
 *    ember_model_output_write_back tells which they are and what each writes. A mutated input
 *    must therefore be writable memory. A written-back constant lives in the model's own copy
 *    of the weights file's data, or in the memory given to ember_model_set_constant, which
 *    runs then write to (it must be writable). Runs of a model with written-back constants are
 *    serialized (each sees the state the previous one left); the others run in parallel.
 *  - Every argument is validated before the compiled code runs: counts, dtypes, ranks, static
 *    dims, dynamic dims (each symbol consistent across inputs, and within the range the model
 *    was compiled for), output buffer sizes, and that every constant is bound. A failure is
 *    reported with a message naming the tensor, the dim, what was expected and what was given.
 *
 * Thread safety
 *  - ember_model_run, ember_model_output_shapes and the query functions may be called from any
 *    number of threads at once on the same model: a run keeps all its state on its own stack.
 *  - ember_model_set_constant may be called concurrently with runs: it swaps the model's set of
 *    constant pointers atomically, so each run uses either the old or the new set throughout,
 *    never a mix. The memory handed to set_constant is referenced, not copied: keep it alive
 *    and unchanged until it is replaced, every run that may use it has returned, and the model
 *    is destroyed. (Changing it in place between runs is allowed and seen by later runs.)
 *  - ember_model_destroy must not race with any other call on the same model.
 *  - The generated code's parallel loops use `ember_set_num_threads(n)` threads (exported by
 *    ember-compiled libraries; process-wide for that library; 0 = all cores; the environment
 *    variable EMBER_NUM_THREADS gives the default).
 */
#ifndef EMBER_RUNTIME_H
#define EMBER_RUNTIME_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define EMBER_ABI_VERSION 1

/* The first 16 bytes of the manifest seal every library carries (see ember_loader.h); the
 * Python loader's copy is ember.artifact.store.SEAL_MAGIC. */
#define EMBER_SEAL_MAGIC "\xe0\x01\x98\x27\x8c\xc4\x6b\x9b\x99\xf1\x33\xc0\x5f\xab\x6e\xf0"

#if defined(__GNUC__) || defined(__clang__)
#define EMBER_API __attribute__((visibility("default")))
#else
#define EMBER_API
#endif

/* Status codes. */
typedef enum ember_status {
  EMBER_OK = 0,
  EMBER_ERROR_ARGUMENT = 1,  /* a bad count, name, rank, shape, symbol range or buffer size */
  EMBER_ERROR_DTYPE = 2,     /* a tensor of the wrong dtype */
  EMBER_ERROR_UNBOUND = 3,   /* a constant is not bound: set it with ember_model_set_constant */
  EMBER_ERROR_EXECUTION = 4, /* the compiled code returned a non-zero status */
  EMBER_ERROR_ARTIFACT = 5,  /* a missing or malformed artifact directory or weights file */
  EMBER_ERROR_MEMORY = 6,    /* out of memory */
  EMBER_ERROR_INDEX = 7,     /* an index tensor held a value out of range for the tensor it
                                indexes (Embedding, gather, index_select, x[idx], scatter, ...):
                                the message names the op, the tensors, the value and the size */
  EMBER_ERROR_ZERO_DIVISION = 8, /* an integer division or remainder by zero (//, %, fmod) */
} ember_status;

/* What ember_model_run writes an output back to (the manifest's `writes_back`). */
typedef enum ember_write_back {
  EMBER_WRITE_BACK_NONE = 0,     /* a result of forward */
  EMBER_WRITE_BACK_INPUT = 1,    /* the new value of an input the model changes in place */
  EMBER_WRITE_BACK_CONSTANT = 2, /* the new value of a constant (a buffer forward updates) */
} ember_write_back;

/* Element types (the manifest's numpy dtype names in comments). */
typedef enum ember_dtype {
  EMBER_DTYPE_INVALID = 0,
  EMBER_FLOAT32 = 1,  /* float32 */
  EMBER_FLOAT16 = 2,  /* float16 */
  EMBER_BFLOAT16 = 3, /* bfloat16 */
  EMBER_FLOAT64 = 4,  /* float64 */
  EMBER_INT8 = 5,     /* int8 */
  EMBER_INT16 = 6,    /* int16 */
  EMBER_INT32 = 7,    /* int32 */
  EMBER_INT64 = 8,    /* int64 */
  EMBER_UINT8 = 9,    /* uint8 */
  EMBER_UINT16 = 10,  /* uint16 */
  EMBER_UINT32 = 11,  /* uint32 */
  EMBER_UINT64 = 12,  /* uint64 */
  EMBER_BOOL = 13,    /* bool (one byte per element) */
  EMBER_COMPLEX64 = 14,  /* complex64 (float32 real, imaginary pairs) */
  EMBER_COMPLEX128 = 15, /* complex128 (float64 pairs) */
} ember_dtype;

/* A dense, C-contiguous tensor in host memory. */
typedef struct ember_tensor {
  void *data;           /* may be NULL only when the tensor has no elements */
  int32_t dtype;        /* an ember_dtype */
  int32_t rank;
  const int64_t *shape; /* `rank` sizes */
} ember_tensor;

/* What the model declares for one input, output or constant. The pointers stay valid for the
 * model's lifetime. */
typedef struct ember_tensor_info {
  const char *name;
  int32_t dtype;                 /* an ember_dtype */
  int32_t rank;
  const int64_t *dims;           /* `rank` sizes; -1 where the size is dynamic */
  const int64_t *max_dims;       /* `rank` sizes: the largest each dim can be */
  const char *const *dim_exprs;  /* `rank` strings: "512", "s0", "2*s0 + 1", ... */
  const char *shape_text;        /* the whole shape as the manifest spells it: "[s0, 512]" */
  int32_t bound;                 /* constants: 1 if data is bound (weights or set_constant) */
} ember_tensor_info;

typedef struct ember_model ember_model; /* opaque */

/* The ABI version this library implements (compare with EMBER_ABI_VERSION). */
EMBER_API int32_t ember_abi_version(void);

/* Creates a model. `artifact_dir` is the artifact directory: it holds weights.safetensors,
 * which is read into memory (a regular file no larger than the bound constants and a header;
 * every bound constant's dtype, shape and size is checked against the model). On success *out
 * receives the model. ember_model_create_verified also checks the file's sha256 against
 * `weights_sha256` (64 lowercase hex digits, from the manifest; NULL: no check) before any of
 * its bytes is used; ember_load calls it. */
EMBER_API int ember_model_create(const char *artifact_dir, ember_model **out, char *err,
                                 size_t errlen);
EMBER_API int ember_model_create_verified(const char *artifact_dir, const char *weights_sha256,
                                          ember_model **out, char *err, size_t errlen);
EMBER_API void ember_model_destroy(ember_model *model);

/* Signature queries. Index arguments out of range give NULL / EMBER_ERROR_ARGUMENT. Every
 * function taking a model handles a NULL one: counts are -1, names NULL, statuses
 * EMBER_ERROR_ARGUMENT. */
EMBER_API int32_t ember_model_num_inputs(const ember_model *model);
EMBER_API int32_t ember_model_num_outputs(const ember_model *model);
EMBER_API int32_t ember_model_num_constants(const ember_model *model);
EMBER_API const char *ember_model_input_name(const ember_model *model, int32_t index);
EMBER_API const char *ember_model_output_name(const ember_model *model, int32_t index);
EMBER_API const char *ember_model_constant_name(const ember_model *model, int32_t index);
EMBER_API int ember_model_input_info(const ember_model *model, int32_t index,
                                     ember_tensor_info *info);
EMBER_API int ember_model_output_info(const ember_model *model, int32_t index,
                                      ember_tensor_info *info);
EMBER_API int ember_model_constant_info(const ember_model *model, int32_t index,
                                        ember_tensor_info *info);

/* The dynamic dims' symbols (s0, s1, ...), with the range each was compiled for. */
EMBER_API int32_t ember_model_num_symbols(const ember_model *model);
EMBER_API int ember_model_symbol(const ember_model *model, int32_t index, const char **name,
                                 int64_t *min, int64_t *max);

/* The shape of input `index` when the symbols take `symbol_values` (one per symbol, in
 * ember_model_symbol's order); writes `rank` sizes to shape_out. */
EMBER_API int ember_model_input_shape(const ember_model *model, int32_t index,
                                      const int64_t *symbol_values, int64_t *shape_out);

/* Validates the inputs' dtypes and shapes (data is not read and may be NULL) and writes each
 * output's shape to output_shapes[i] (room for that output's rank; NULL entries skipped). */
EMBER_API int ember_model_output_shapes(const ember_model *model, const ember_tensor *inputs,
                                        int32_t num_inputs, int64_t *const *output_shapes,
                                        char *err, size_t errlen);

/* Binds constant `name` to `value` (dtype and shape must match the declaration), or unbinds it
 * when value is NULL. See "Thread safety" above for the lifetime of value->data. */
EMBER_API int ember_model_set_constant(ember_model *model, const char *name,
                                       const ember_tensor *value, char *err, size_t errlen);

/* Runs the model. inputs/outputs are in declaration order; output_shapes is NULL or holds
 * num_outputs pointers (each NULL or with room for that output's rank) that receive the
 * actual output shapes. */
EMBER_API int ember_model_run(ember_model *model, const ember_tensor *inputs,
                              int32_t num_inputs, const ember_tensor *outputs,
                              int32_t num_outputs, int64_t *const *output_shapes, char *err,
                              size_t errlen);

/* What output `index` is written back to after each run: an ember_write_back, with *target
 * (if not NULL) set to the index of that input or constant (-1 for EMBER_WRITE_BACK_NONE).
 * -1 for a NULL model or an index out of range. */
EMBER_API int32_t ember_model_output_write_back(const ember_model *model, int32_t index,
                                                int32_t *target);

/* Helpers. */
EMBER_API const char *ember_dtype_name(int32_t dtype);   /* "float32"; NULL if invalid */
EMBER_API int64_t ember_dtype_size(int32_t dtype);       /* bytes per element; 0 if invalid */
EMBER_API const char *ember_status_name(int status);     /* "EMBER_ERROR_ARGUMENT", ... */

/* The whole API as one table, for dlopen users: one dlsym("ember_runtime_get_api") gives
 * every function. Fields are only ever appended; check abi_version. */
typedef struct ember_runtime_api {
  int32_t abi_version;
  int (*model_create)(const char *, ember_model **, char *, size_t);
  void (*model_destroy)(ember_model *);
  int32_t (*model_num_inputs)(const ember_model *);
  int32_t (*model_num_outputs)(const ember_model *);
  int32_t (*model_num_constants)(const ember_model *);
  const char *(*model_input_name)(const ember_model *, int32_t);
  const char *(*model_output_name)(const ember_model *, int32_t);
  const char *(*model_constant_name)(const ember_model *, int32_t);
  int (*model_input_info)(const ember_model *, int32_t, ember_tensor_info *);
  int (*model_output_info)(const ember_model *, int32_t, ember_tensor_info *);
  int (*model_constant_info)(const ember_model *, int32_t, ember_tensor_info *);
  int32_t (*model_num_symbols)(const ember_model *);
  int (*model_symbol)(const ember_model *, int32_t, const char **, int64_t *, int64_t *);
  int (*model_input_shape)(const ember_model *, int32_t, const int64_t *, int64_t *);
  int (*model_output_shapes)(const ember_model *, const ember_tensor *, int32_t,
                             int64_t *const *, char *, size_t);
  int (*model_set_constant)(ember_model *, const char *, const ember_tensor *, char *, size_t);
  int (*model_run)(ember_model *, const ember_tensor *, int32_t, const ember_tensor *, int32_t,
                   int64_t *const *, char *, size_t);
  const char *(*dtype_name)(int32_t);
  int64_t (*dtype_size)(int32_t);
  const char *(*status_name)(int);
  int (*model_create_verified)(const char *, const char *, ember_model **, char *, size_t);
  int32_t (*model_output_write_back)(const ember_model *, int32_t, int32_t *);
} ember_runtime_api;

EMBER_API const ember_runtime_api *ember_runtime_get_api(void);
typedef const ember_runtime_api *(*ember_runtime_get_api_fn)(void);

#ifdef __cplusplus
}
#endif

#endif /* EMBER_RUNTIME_H */
