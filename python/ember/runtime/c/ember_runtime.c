/* The ember C runtime: creates a model from an artifact directory, validates arguments, builds
 * MLIR memref descriptors and calls the compiled code (`ember_entry`). Compiled into every CPU
 * artifact's library together with the generated signature tables (ember_model_signature) and
 * ember_weights.c; see ember_runtime.h for the API and its contracts.
 *
 * Concurrency: a run keeps its state on its own stack. The bound constants are an immutable
 * snapshot (an array of data pointers) that set_constant replaces as a whole; a run takes a
 * reference to the current snapshot under a mutex held for a few instructions, so runs proceed
 * in parallel and each sees one consistent set of constants.
 */
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "ember_signature.h"
#include "ember_verify.h"

_Static_assert(sizeof(void *) == sizeof(int64_t),
               "memref descriptors are built for 64-bit targets (index = int64_t)");

typedef struct snapshot {
  int64_t refs;
  const void *data[]; /* one per constant; NULL: unbound */
} snapshot;

struct ember_model {
  const ember_signature *sig;
  ember_weights weights;
  pthread_mutex_t lock; /* guards `constants` and every snapshot's refs */
  snapshot *constants;
  int stateful;             /* some output writes back to a constant */
  pthread_mutex_t run_lock; /* serializes the runs of a stateful model */
};

/* The manifest seal: EMBER_SEAL_MAGIC, then 32 bytes that the artifact writer
 * (ember.artifact.store) sets to the sha256 of the artifact's manifest.json (with this
 * library's own sha256 in it written as 64 zeros, the one part of the manifest that cannot be
 * known before the seal is). The loaders (ember_loader.h, ember.runtime.host) read it from the
 * library's bytes before loading them, so the manifest cannot be edited without the edit being
 * refused; the runtime itself never reads it. */
__attribute__((used)) static const unsigned char manifest_seal[48] = EMBER_SEAL_MAGIC;

/* A non-NULL address for bound tensors without elements. */
static const int64_t empty_tensor_data[1];

/* -- messages --------------------------------------------------------------------------------- */

typedef struct {
  char *buf;
  size_t cap, len;
} sbuf;

static void sb_vappend(sbuf *s, const char *fmt, va_list ap) {
  if (!s->buf || s->cap == 0) return;
  size_t room = s->len < s->cap ? s->cap - s->len : 0;
  if (room == 0) return;
  int n = vsnprintf(s->buf + s->len, room, fmt, ap);
  if (n < 0) return;
  s->len += (size_t)n < room ? (size_t)n : room - 1;
}

static void sb_append(sbuf *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void sb_append(sbuf *s, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  sb_vappend(s, fmt, ap);
  va_end(ap);
}

static sbuf sb_start(char *err, size_t errlen) {
  sbuf s = {err, err ? errlen : 0, 0};
  if (s.buf && s.cap) s.buf[0] = '\0';
  return s;
}

/* "[3, 5]" */
static void sb_shape(sbuf *s, int32_t rank, const int64_t *shape) {
  sb_append(s, "[");
  for (int32_t i = 0; i < rank; ++i) sb_append(s, i ? ", %lld" : "%lld", (long long)shape[i]);
  sb_append(s, "]");
}

/* "['x', 't']" */
static void sb_names(sbuf *s, const ember_sig_tensor *t, int32_t n) {
  sb_append(s, "[");
  for (int32_t i = 0; i < n; ++i) sb_append(s, i ? ", '%s'" : "'%s'", t[i].name);
  sb_append(s, "]");
}

/* -- dtypes ------------------------------------------------------------------------------------ */

static const char *const dtype_names[] = {
    NULL,    "float32", "float16", "bfloat16", "float64", "int8",      "int16",
    "int32", "int64",   "uint8",   "uint16",   "uint32",  "uint64",    "bool",
    "complex64", "complex128",
};
static const int64_t dtype_sizes[] = {0, 4, 2, 2, 8, 1, 2, 4, 8, 1, 2, 4, 8, 1, 8, 16};
#define NUM_DTYPES ((int32_t)(sizeof(dtype_sizes) / sizeof(dtype_sizes[0])))

EMBER_API const char *ember_dtype_name(int32_t dtype) {
  return dtype > 0 && dtype < NUM_DTYPES ? dtype_names[dtype] : NULL;
}

EMBER_API int64_t ember_dtype_size(int32_t dtype) {
  return dtype > 0 && dtype < NUM_DTYPES ? dtype_sizes[dtype] : 0;
}

EMBER_API const char *ember_status_name(int status) {
  switch (status) {
    case EMBER_OK: return "EMBER_OK";
    case EMBER_ERROR_ARGUMENT: return "EMBER_ERROR_ARGUMENT";
    case EMBER_ERROR_DTYPE: return "EMBER_ERROR_DTYPE";
    case EMBER_ERROR_UNBOUND: return "EMBER_ERROR_UNBOUND";
    case EMBER_ERROR_EXECUTION: return "EMBER_ERROR_EXECUTION";
    case EMBER_ERROR_ARTIFACT: return "EMBER_ERROR_ARTIFACT";
    case EMBER_ERROR_MEMORY: return "EMBER_ERROR_MEMORY";
    case EMBER_ERROR_INDEX: return "EMBER_ERROR_INDEX";
    case EMBER_ERROR_ZERO_DIVISION: return "EMBER_ERROR_ZERO_DIVISION";
    default: return "EMBER_ERROR_UNKNOWN";
  }
}

static int check_dtype(const char *role, const ember_sig_tensor *t, int32_t dtype, char *err,
                       size_t errlen) {
  if (dtype == t->dtype) return EMBER_OK;
  const char *got = ember_dtype_name(dtype);
  if (got)
    return ember_fail(err, errlen, EMBER_ERROR_DTYPE, "%s '%s': expected dtype %s, got %s", role,
                      t->name, dtype_names[t->dtype], got);
  return ember_fail(err, errlen, EMBER_ERROR_DTYPE,
                    "%s '%s': expected dtype %s, got the invalid dtype code %d", role, t->name,
                    dtype_names[t->dtype], (int)dtype);
}

/* A tensor's rank and shape pointer are usable (not yet that they fit the declaration). */
static int check_rank(const char *role, const ember_sig_tensor *t, const ember_tensor *x,
                      char *err, size_t errlen) {
  if (x->rank < 0)
    return ember_fail(err, errlen, EMBER_ERROR_ARGUMENT, "%s '%s': negative rank %d", role,
                      t->name, (int)x->rank);
  if (x->rank > 0 && !x->shape)
    return ember_fail(err, errlen, EMBER_ERROR_ARGUMENT,
                      "%s '%s': rank %d with a NULL shape pointer", role, t->name, (int)x->rank);
  return EMBER_OK;
}

/* Elements of `shape`, or -1 on overflow. */
static int64_t num_elements(int32_t rank, const int64_t *shape) {
  int64_t n = 1;
  for (int32_t i = 0; i < rank; ++i)
    if (__builtin_mul_overflow(n, shape[i], &n)) return -1;
  return n;
}

/* -- model lifetime ---------------------------------------------------------------------------- */

static snapshot *snapshot_new(int32_t n) {
  snapshot *s = calloc(1, sizeof(snapshot) + (size_t)(n > 0 ? n : 1) * sizeof(void *));
  if (s) s->refs = 1;
  return s;
}

static const snapshot *acquire(ember_model *m) {
  pthread_mutex_lock(&m->lock);
  snapshot *s = m->constants;
  s->refs += 1;
  pthread_mutex_unlock(&m->lock);
  return s;
}

static void release(ember_model *m, const snapshot *cs) {
  snapshot *s = (snapshot *)cs;
  pthread_mutex_lock(&m->lock);
  int64_t left = --s->refs;
  pthread_mutex_unlock(&m->lock);
  if (left == 0) free(s);
}

EMBER_API int32_t ember_abi_version(void) { return EMBER_ABI_VERSION; }

EMBER_API int ember_model_create(const char *artifact_dir, ember_model **out, char *err,
                                 size_t errlen) {
  return ember_model_create_verified(artifact_dir, NULL, out, err, errlen);
}

EMBER_API int ember_model_create_verified(const char *artifact_dir, const char *weights_sha256,
                                          ember_model **out, char *err, size_t errlen) {
  const ember_signature *sig = &ember_model_signature;
  if (out) *out = NULL;
  if (!out) return ember_fail(err, errlen, EMBER_ERROR_ARGUMENT, "out must not be NULL");
  if (weights_sha256 && (strlen(weights_sha256) != 64 ||
                         strspn(weights_sha256, "0123456789abcdef") != 64))
    return ember_fail(err, errlen, EMBER_ERROR_ARGUMENT,
                      "weights_sha256 must be 64 lowercase hex digits");
  if (sig->version != EMBER_SIGNATURE_VERSION)
    return ember_fail(err, errlen, EMBER_ERROR_ARTIFACT,
                      "the library's signature tables have version %d, its runtime reads %d",
                      (int)sig->version, EMBER_SIGNATURE_VERSION);
  if (!artifact_dir || !*artifact_dir)
    return ember_fail(err, errlen, EMBER_ERROR_ARGUMENT, "artifact_dir must name a directory");
  struct stat st;
  if (stat(artifact_dir, &st) != 0)
    return ember_fail(err, errlen, EMBER_ERROR_ARTIFACT, "cannot open the artifact directory "
                      "'%s': %s", artifact_dir, strerror(errno));
  if (!S_ISDIR(st.st_mode))
    return ember_fail(err, errlen, EMBER_ERROR_ARTIFACT, "'%s' is not an artifact directory",
                      artifact_dir);

  ember_model *m = calloc(1, sizeof *m);
  if (!m) return ember_fail(err, errlen, EMBER_ERROR_MEMORY, "out of memory");
  m->sig = sig;
  m->constants = snapshot_new(sig->num_constants);
  if (!m->constants || pthread_mutex_init(&m->lock, NULL) != 0) {
    free(m->constants);
    free(m);
    return ember_fail(err, errlen, EMBER_ERROR_MEMORY, "out of memory");
  }
  if (pthread_mutex_init(&m->run_lock, NULL) != 0) {
    pthread_mutex_destroy(&m->lock);
    free(m->constants);
    free(m);
    return ember_fail(err, errlen, EMBER_ERROR_MEMORY, "out of memory");
  }
  for (int32_t o = 0; o < sig->num_outputs; ++o)
    m->stateful |= sig->outputs[o].write_back == EMBER_WRITE_BACK_CONSTANT;
  int any_bound = 0;
  for (int32_t i = 0; i < sig->num_constants; ++i) any_bound |= sig->constants[i].bound;
  if (any_bound) {
    size_t len = strlen(artifact_dir) + strlen(sig->weights_file) + 2;
    char *path = malloc(len);
    int status = EMBER_ERROR_MEMORY;
    if (path) {
      snprintf(path, len, "%s/%s", artifact_dir, sig->weights_file);
      status = ember_weights_load(sig, path, weights_sha256, &m->weights, m->constants->data,
                                  err, errlen);
      free(path);
    } else {
      ember_fail(err, errlen, status, "out of memory");
    }
    if (status != EMBER_OK) {
      ember_model_destroy(m);
      return status;
    }
  }
  *out = m;
  return EMBER_OK;
}

EMBER_API void ember_model_destroy(ember_model *m) {
  if (!m) return;
  free(m->constants);
  ember_weights_free(m->sig, &m->weights);
  pthread_mutex_destroy(&m->lock);
  pthread_mutex_destroy(&m->run_lock);
  free(m);
}

/* -- queries ----------------------------------------------------------------------------------- */

/* Every function taking a model answers a NULL handle instead of dereferencing it: counts are
 * -1, names NULL, statuses EMBER_ERROR_ARGUMENT (with a message where there is a buffer). */
#define NULL_MODEL_MESSAGE "the model handle is NULL (ember_model_create failed or was not called)"

EMBER_API int32_t ember_model_num_inputs(const ember_model *m) {
  return m ? m->sig->num_inputs : -1;
}
EMBER_API int32_t ember_model_num_outputs(const ember_model *m) {
  return m ? m->sig->num_outputs : -1;
}
EMBER_API int32_t ember_model_num_constants(const ember_model *m) {
  return m ? m->sig->num_constants : -1;
}
EMBER_API int32_t ember_model_num_symbols(const ember_model *m) {
  return m ? m->sig->num_symbols : -1;
}

#define NAME_QUERY(fn, list, count)                                            \
  EMBER_API const char *fn(const ember_model *m, int32_t i) {                  \
    return m && i >= 0 && i < m->sig->count ? m->sig->list[i].name : NULL;     \
  }
NAME_QUERY(ember_model_input_name, inputs, num_inputs)
NAME_QUERY(ember_model_output_name, outputs, num_outputs)
NAME_QUERY(ember_model_constant_name, constants, num_constants)

static void fill_info(const ember_sig_tensor *t, int32_t bound, ember_tensor_info *info) {
  info->name = t->name;
  info->dtype = t->dtype;
  info->rank = t->rank;
  info->dims = t->dims;
  info->max_dims = t->max_dims;
  info->dim_exprs = t->dim_text;
  info->shape_text = t->shape_text;
  info->bound = bound;
}

EMBER_API int ember_model_input_info(const ember_model *m, int32_t i, ember_tensor_info *info) {
  if (!m || i < 0 || i >= m->sig->num_inputs || !info) return EMBER_ERROR_ARGUMENT;
  fill_info(&m->sig->inputs[i], 0, info);
  return EMBER_OK;
}

EMBER_API int ember_model_output_info(const ember_model *m, int32_t i, ember_tensor_info *info) {
  if (!m || i < 0 || i >= m->sig->num_outputs || !info) return EMBER_ERROR_ARGUMENT;
  fill_info(&m->sig->outputs[i], 0, info);
  return EMBER_OK;
}

EMBER_API int ember_model_constant_info(const ember_model *m, int32_t i,
                                        ember_tensor_info *info) {
  if (!m || i < 0 || i >= m->sig->num_constants || !info) return EMBER_ERROR_ARGUMENT;
  const snapshot *s = acquire((ember_model *)m);
  int32_t bound = s->data[i] != NULL;
  release((ember_model *)m, s);
  fill_info(&m->sig->constants[i], bound, info);
  return EMBER_OK;
}

EMBER_API int32_t ember_model_output_write_back(const ember_model *m, int32_t i,
                                                int32_t *target) {
  if (!m || i < 0 || i >= m->sig->num_outputs) return -1;
  if (target) *target = m->sig->outputs[i].write_back_index;
  return m->sig->outputs[i].write_back;
}

EMBER_API int ember_model_symbol(const ember_model *m, int32_t i, const char **name,
                                 int64_t *min, int64_t *max) {
  if (!m || i < 0 || i >= m->sig->num_symbols) return EMBER_ERROR_ARGUMENT;
  if (name) *name = m->sig->symbol_names[i];
  if (min) *min = m->sig->symbol_min[i];
  if (max) *max = m->sig->symbol_max[i];
  return EMBER_OK;
}

EMBER_API int ember_model_input_shape(const ember_model *m, int32_t index,
                                      const int64_t *symbol_values, int64_t *shape_out) {
  if (!m) return EMBER_ERROR_ARGUMENT;
  const ember_signature *sig = m->sig;
  if (index < 0 || index >= sig->num_inputs || !shape_out ||
      (!symbol_values && sig->num_symbols))
    return EMBER_ERROR_ARGUMENT;
  const ember_sig_tensor *t = &sig->inputs[index];
  for (int32_t d = 0; d < t->rank; ++d) {
    if (t->dims[d] >= 0) {
      shape_out[d] = t->dims[d];
    } else if (sig->eval_dim(t->first_dim + d, symbol_values, &shape_out[d]) ||
               shape_out[d] < 0) {
      return EMBER_ERROR_ARGUMENT;
    }
  }
  return EMBER_OK;
}

/* -- binding symbols from the input shapes ----------------------------------------------------- */

typedef struct {
  int32_t tensor, dim, derived;
} origin;

static void sb_origin(sbuf *s, const ember_signature *sig, origin o) {
  const ember_sig_tensor *t = &sig->inputs[o.tensor];
  sb_append(s, "input '%s' dim %d", t->name, (int)o.dim);
  if (o.derived) sb_append(s, " (%s)", t->dim_text[o.dim]);
}

/* `symbol` such that dim `id` equals `size`, if the dim is affine in it (probed at 0, 1, 2;
 * the caller re-checks every dim afterwards, so a wrong guess is reported, never trusted). */
static int solve_affine(const ember_signature *sig, int32_t id, int64_t size, int64_t *env,
                        int32_t symbol, int64_t *value) {
  int64_t f[3];
  int64_t saved = env[symbol];
  int bad = 0;
  for (int v = 0; v < 3 && !bad; ++v) {
    env[symbol] = v;
    bad = sig->eval_dim(id, env, &f[v]);
  }
  env[symbol] = saved;
  if (bad) return 0;
  int e = 0;
  int64_t a = ember_x_sub(f[1], f[0], &e);
  int64_t twice = ember_x_add(ember_x_mul(2, a, &e), f[0], &e);
  int64_t rest = ember_x_sub(size, f[0], &e);
  if (e || a == 0 || twice != f[2]) return 0;
  if (a == -1) {
    if (rest == INT64_MIN) return 0;
    *value = -rest;
    return 1;
  }
  if (rest % a != 0) return 0;
  *value = rest / a;
  return 1;
}

/* Validates the inputs' count, dtypes and shapes and binds every symbol (env, in the
 * signature's symbol order). Mirrors ember/runtime/shapes.py's bind_symbols, messages
 * included. */
static int bind_inputs(const ember_signature *sig, const ember_tensor *in, int32_t n_in,
                       int64_t *env, char *err, size_t errlen) {
  if (n_in != sig->num_inputs || (!in && n_in > 0)) {
    sbuf s = sb_start(err, errlen);
    sb_append(&s, "expected %d inputs ", (int)sig->num_inputs);
    sb_names(&s, sig->inputs, sig->num_inputs);
    sb_append(&s, ", got %d", (int)n_in);
    return EMBER_ERROR_ARGUMENT;
  }
  for (int32_t i = 0; i < n_in; ++i) {
    const ember_sig_tensor *t = &sig->inputs[i];
    int status = check_dtype("input", t, in[i].dtype, err, errlen);
    if (status) return status;
    status = check_rank("input", t, &in[i], err, errlen);
    if (status) return status;
    for (int32_t d = 0; d < in[i].rank; ++d)
      if (in[i].shape[d] < 0) {
        sbuf s = sb_start(err, errlen);
        sb_append(&s, "input '%s': negative size in shape ", t->name);
        sb_shape(&s, in[i].rank, in[i].shape);
        return EMBER_ERROR_ARGUMENT;
      }
  }
  int32_t ns = sig->num_symbols;
  origin origins[ns + 1];
  int32_t order[ns + 1]; /* binding order, for the range checks */
  unsigned char bound[ns + 1];
  int32_t nbound = 0;
  memset(bound, 0, sizeof bound);

  for (int32_t i = 0; i < n_in; ++i) {
    const ember_sig_tensor *t = &sig->inputs[i];
    if (in[i].rank != t->rank) {
      sbuf s = sb_start(err, errlen);
      sb_append(&s, "input '%s': expected rank %d (shape %s), got shape ", t->name,
                (int)t->rank, t->shape_text);
      sb_shape(&s, in[i].rank, in[i].shape);
      return EMBER_ERROR_ARGUMENT;
    }
    for (int32_t d = 0; d < t->rank; ++d) {
      int32_t sym = t->bare_symbol[d];
      if (sym >= 0 && !bound[sym]) {
        env[sym] = in[i].shape[d];
        bound[sym] = 1;
        origins[sym] = (origin){i, d, 0};
        order[nbound++] = sym;
      }
    }
  }
  /* Symbols that occur only inside expressions, one affine dim at a time. */
  for (int progress = 1; progress && nbound < ns;) {
    progress = 0;
    for (int32_t i = 0; i < n_in; ++i) {
      const ember_sig_tensor *t = &sig->inputs[i];
      for (int32_t d = 0; d < t->rank; ++d) {
        int32_t unknown = -1, count = 0;
        for (const int32_t *p = t->dim_symbols[d]; *p >= 0; ++p)
          if (!bound[*p]) unknown = *p, ++count;
        int64_t value;
        if (count == 1 &&
            solve_affine(sig, t->first_dim + d, in[i].shape[d], env, unknown, &value)) {
          env[unknown] = value;
          bound[unknown] = 1;
          origins[unknown] = (origin){i, d, 1};
          order[nbound++] = unknown;
          progress = 1;
        }
      }
    }
  }
  if (nbound < ns) {
    sbuf s = sb_start(err, errlen);
    sb_append(&s, "cannot infer symbols [");
    for (int32_t k = 0, first = 1; k < ns; ++k)
      if (!bound[k]) sb_append(&s, first ? "'%s'" : ", '%s'", sig->symbol_names[k]), first = 0;
    sb_append(&s, "] from the input shapes [");
    for (int32_t i = 0; i < n_in; ++i) {
      if (i) sb_append(&s, ", ");
      sb_shape(&s, in[i].rank, in[i].shape);
    }
    sb_append(&s, "]");
    return EMBER_ERROR_ARGUMENT;
  }
  for (int32_t i = 0; i < n_in; ++i) {
    const ember_sig_tensor *t = &sig->inputs[i];
    for (int32_t d = 0; d < t->rank; ++d) {
      int64_t expected = t->dims[d];
      int symbolic = expected < 0;
      if (symbolic && sig->eval_dim(t->first_dim + d, env, &expected)) {
        sbuf s = sb_start(err, errlen);
        sb_append(&s, "input '%s': dim %d = %s cannot be evaluated (division by zero or "
                  "overflow) with ", t->name, (int)d, t->dim_text[d]);
        for (const int32_t *p = t->dim_symbols[d]; *p >= 0; ++p)
          sb_append(&s, p == t->dim_symbols[d] ? "%s=%lld" : ", %s=%lld",
                    sig->symbol_names[*p], (long long)env[*p]);
        return EMBER_ERROR_ARGUMENT;
      }
      if (expected == in[i].shape[d]) continue;
      sbuf s = sb_start(err, errlen);
      sb_append(&s, "input '%s': dim %d must be %lld", t->name, (int)d, (long long)expected);
      if (symbolic) {
        sb_append(&s, " = %s with ", t->dim_text[d]);
        for (const int32_t *p = t->dim_symbols[d]; *p >= 0; ++p) {
          sb_append(&s, p == t->dim_symbols[d] ? "%s=%lld (from " : ", %s=%lld (from ",
                    sig->symbol_names[*p], (long long)env[*p]);
          sb_origin(&s, sig, origins[*p]);
          sb_append(&s, ")");
        }
      }
      sb_append(&s, ", got %lld (shape ", (long long)in[i].shape[d]);
      sb_shape(&s, in[i].rank, in[i].shape);
      sb_append(&s, ", declared %s)", t->shape_text);
      return EMBER_ERROR_ARGUMENT;
    }
  }
  for (int32_t k = 0; k < nbound; ++k) {
    int32_t sym = order[k];
    if (env[sym] < sig->symbol_min[sym] || env[sym] > sig->symbol_max[sym]) {
      sbuf s = sb_start(err, errlen);
      sb_origin(&s, sig, origins[sym]);
      sb_append(&s, ": %s = %lld is outside the range [%lld, %lld] the model was compiled for",
                sig->symbol_names[sym], (long long)env[sym], (long long)sig->symbol_min[sym],
                (long long)sig->symbol_max[sym]);
      return EMBER_ERROR_ARGUMENT;
    }
  }
  return EMBER_OK;
}

/* The shape of output `o` under the bindings `env`. */
static int output_shape(const ember_signature *sig, int32_t o, const int64_t *env,
                        int64_t *shape, char *err, size_t errlen) {
  const ember_sig_tensor *t = &sig->outputs[o];
  for (int32_t d = 0; d < t->rank; ++d) {
    if (t->dims[d] >= 0) {
      shape[d] = t->dims[d];
      continue;
    }
    if (sig->eval_dim(t->first_dim + d, env, &shape[d]) || shape[d] < 0) {
      sbuf s = sb_start(err, errlen);
      sb_append(&s, "output '%s': dim %d = %s is not a valid size with ", t->name, (int)d,
                t->dim_text[d]);
      for (const int32_t *p = t->dim_symbols[d]; *p >= 0; ++p)
        sb_append(&s, p == t->dim_symbols[d] ? "%s=%lld" : ", %s=%lld",
                  sig->symbol_names[*p], (long long)env[*p]);
      return EMBER_ERROR_ARGUMENT;
    }
  }
  return EMBER_OK;
}

EMBER_API int ember_model_output_shapes(const ember_model *m, const ember_tensor *inputs,
                                        int32_t num_inputs, int64_t *const *output_shapes,
                                        char *err, size_t errlen) {
  if (!m) return ember_fail(err, errlen, EMBER_ERROR_ARGUMENT, NULL_MODEL_MESSAGE);
  const ember_signature *sig = m->sig;
  int64_t env[sig->num_symbols + 1];
  int status = bind_inputs(sig, inputs, num_inputs, env, err, errlen);
  for (int32_t o = 0; status == EMBER_OK && output_shapes && o < sig->num_outputs; ++o)
    if (output_shapes[o]) status = output_shape(sig, o, env, output_shapes[o], err, errlen);
  return status;
}

/* -- constants --------------------------------------------------------------------------------- */

EMBER_API int ember_model_set_constant(ember_model *m, const char *name,
                                       const ember_tensor *value, char *err, size_t errlen) {
  if (!m) return ember_fail(err, errlen, EMBER_ERROR_ARGUMENT, NULL_MODEL_MESSAGE);
  const ember_signature *sig = m->sig;
  int32_t index = -1;
  for (int32_t i = 0; name && i < sig->num_constants; ++i)
    if (strcmp(sig->constants[i].name, name) == 0) index = i;
  if (index < 0) {
    sbuf s = sb_start(err, errlen);
    sb_append(&s, "no constant '%s'; the model's constants are ", name ? name : "(null)");
    sb_names(&s, sig->constants, sig->num_constants);
    return EMBER_ERROR_ARGUMENT;
  }
  const ember_sig_tensor *t = &sig->constants[index];
  const void *data = NULL;
  if (value) {
    int status = check_dtype("constant", t, value->dtype, err, errlen);
    if (status) return status;
    int same = value->rank == t->rank && (value->shape || value->rank == 0);
    for (int32_t d = 0; same && d < t->rank; ++d) same = value->shape[d] == t->dims[d];
    if (!same) {
      sbuf s = sb_start(err, errlen);
      sb_append(&s, "constant '%s': expected shape %s, got ", t->name, t->shape_text);
      if (value->rank >= 0 && (value->shape || value->rank == 0))
        sb_shape(&s, value->rank, value->shape);
      else
        sb_append(&s, "rank %d with a NULL shape pointer", (int)value->rank);
      return EMBER_ERROR_ARGUMENT;
    }
    data = value->data;
    if (!data) {
      if (num_elements(t->rank, t->dims) != 0)
        return ember_fail(err, errlen, EMBER_ERROR_ARGUMENT,
                          "constant '%s': data is NULL (pass value = NULL to unbind)", t->name);
      data = empty_tensor_data;
    }
  }
  snapshot *fresh = snapshot_new(sig->num_constants);
  if (!fresh) return ember_fail(err, errlen, EMBER_ERROR_MEMORY, "out of memory");
  pthread_mutex_lock(&m->lock);
  snapshot *old = m->constants;
  memcpy(fresh->data, old->data, (size_t)sig->num_constants * sizeof(void *));
  fresh->data[index] = data;
  m->constants = fresh;
  int64_t left = --old->refs;
  pthread_mutex_unlock(&m->lock);
  if (left == 0) free(old);
  return EMBER_OK;
}

/* -- running ----------------------------------------------------------------------------------- */

/* "input 'ids'" for the entry's argument `arg` (inputs, then constants, then outputs). */
static void sb_argument(sbuf *s, const ember_signature *sig, int64_t arg) {
  const struct {
    const char *role;
    int32_t count;
    const ember_sig_tensor *tensors;
  } roles[] = {{"input", sig->num_inputs, sig->inputs},
               {"constant", sig->num_constants, sig->constants},
               {"output", sig->num_outputs, sig->outputs}};
  for (size_t r = 0; r < sizeof roles / sizeof roles[0]; ++r) {
    if (arg >= 0 && arg < roles[r].count) {
      sb_append(s, "%s '%s'", roles[r].role, roles[r].tensors[arg].name);
      return;
    }
    arg -= roles[r].count;
  }
  sb_append(s, "an intermediate tensor");
}

/* The message and status for a fault record the compiled code filled (see ember_signature.h). */
static int report_fault(const ember_signature *sig, const int64_t *fault, char *err,
                        size_t errlen) {
  const char *origin = (const char *)(intptr_t)fault[EMBER_FAULT_ORIGIN];
  int64_t source = fault[EMBER_FAULT_SOURCE];
  sbuf s = sb_start(err, errlen);
  sb_append(&s, "%s: ", origin ? origin : "an op of the model");
  if (fault[EMBER_FAULT_KIND] == EMBER_FAULT_ASSERT) {
    const char *message = (const char *)(intptr_t)fault[EMBER_FAULT_VALUE];
    sb_append(&s, "a run-time check of the compiled code failed: %s",
              message ? message : "(no message)");
    return EMBER_ERROR_EXECUTION;
  }
  if (fault[EMBER_FAULT_KIND] == EMBER_FAULT_DIVISION) {
    sb_append(&s, "integer division by zero");
    if (source >= 0) {
      sb_append(&s, " (the divisor comes from ");
      sb_argument(&s, sig, source);
      sb_append(&s, ")");
    }
    return EMBER_ERROR_ZERO_DIVISION;
  }
  sb_append(&s, "index %lld is out of bounds for dim %lld of ",
            (long long)fault[EMBER_FAULT_VALUE], (long long)fault[EMBER_FAULT_DIM]);
  sb_argument(&s, sig, fault[EMBER_FAULT_TENSOR]);
  sb_append(&s, " (size %lld)", (long long)fault[EMBER_FAULT_BOUND]);
  if (source >= 0) {
    sb_append(&s, "; the index comes from ");
    sb_argument(&s, sig, source);
  }
  return EMBER_ERROR_INDEX;
}

/* Writes a contiguous rank-`rank` memref descriptor at *cursor and advances it. */
static void *put_descriptor(int64_t **cursor, const void *data, int32_t rank,
                            const int64_t *shape) {
  int64_t *w = *cursor;
  void *p = (void *)data;
  memcpy(&w[0], &p, sizeof p); /* allocated */
  memcpy(&w[1], &p, sizeof p); /* aligned */
  w[2] = 0;                    /* offset */
  int64_t stride = 1;
  for (int32_t d = rank - 1; d >= 0; --d) {
    w[3 + d] = shape[d];
    w[3 + rank + d] = stride;
    stride *= shape[d];
  }
  *cursor = w + 3 + 2 * rank;
  return w;
}

/* Copies each written-back output (its actual shape in `shapes`) into the input or constant it
 * is the new value of; that target has the output's declared shape, so the same size. */
static void write_back(const ember_signature *sig, const ember_tensor *inputs,
                       const snapshot *cs, const ember_tensor *outputs, const int64_t *shapes,
                       size_t max_rank) {
  for (int32_t o = 0; o < sig->num_outputs; ++o) {
    const ember_sig_tensor *t = &sig->outputs[o];
    if (t->write_back == EMBER_WRITE_BACK_NONE) continue;
    void *to = t->write_back == EMBER_WRITE_BACK_INPUT ? inputs[t->write_back_index].data
                                                         : (void *)cs->data[t->write_back_index];
    size_t bytes = (size_t)num_elements(t->rank, shapes + (size_t)o * max_rank) *
                   (size_t)ember_dtype_size(t->dtype);
    if (bytes && to != outputs[o].data) memmove(to, outputs[o].data, bytes);
  }
}

enum { STACK_WORDS = 1024, STACK_ARGS = 128 };

static int run(ember_model *m, const ember_tensor *inputs, int32_t num_inputs,
               const ember_tensor *outputs, int32_t num_outputs, int64_t *const *output_shapes,
               char *err, size_t errlen);

EMBER_API int ember_model_run(ember_model *m, const ember_tensor *inputs, int32_t num_inputs,
                              const ember_tensor *outputs, int32_t num_outputs,
                              int64_t *const *output_shapes, char *err, size_t errlen) {
  if (!m) return ember_fail(err, errlen, EMBER_ERROR_ARGUMENT, NULL_MODEL_MESSAGE);
  if (!m->stateful)
    return run(m, inputs, num_inputs, outputs, num_outputs, output_shapes, err, errlen);
  pthread_mutex_lock(&m->run_lock);
  int status = run(m, inputs, num_inputs, outputs, num_outputs, output_shapes, err, errlen);
  pthread_mutex_unlock(&m->run_lock);
  return status;
}

static int run(ember_model *m, const ember_tensor *inputs, int32_t num_inputs,
               const ember_tensor *outputs, int32_t num_outputs, int64_t *const *output_shapes,
               char *err, size_t errlen) {
  const ember_signature *sig = m->sig;
  int32_t n_out = sig->num_outputs, n_const = sig->num_constants;
  if (num_outputs != n_out || (!outputs && num_outputs > 0)) {
    sbuf s = sb_start(err, errlen);
    sb_append(&s, "expected %d outputs ", (int)n_out);
    sb_names(&s, sig->outputs, n_out);
    sb_append(&s, ", got %d", (int)num_outputs);
    return EMBER_ERROR_ARGUMENT;
  }
  int64_t env[sig->num_symbols + 1];
  int status = bind_inputs(sig, inputs, num_inputs, env, err, errlen);
  if (status) return status;
  for (int32_t i = 0; i < num_inputs; ++i)
    if (!inputs[i].data && num_elements(inputs[i].rank, inputs[i].shape) != 0)
      return ember_fail(err, errlen, EMBER_ERROR_ARGUMENT, "input '%s': data is NULL",
                        sig->inputs[i].name);

  /* Output shapes, and the descriptor space: 3 + 2*rank words per argument. */
  size_t words = 0, max_rank = 0;
  for (int32_t i = 0; i < sig->num_inputs; ++i) words += 3 + 2 * (size_t)sig->inputs[i].rank;
  for (int32_t i = 0; i < n_const; ++i) words += 3 + 2 * (size_t)sig->constants[i].rank;
  for (int32_t o = 0; o < n_out; ++o) {
    words += 3 + 2 * (size_t)sig->outputs[o].rank;
    if ((size_t)sig->outputs[o].rank > max_rank) max_rank = (size_t)sig->outputs[o].rank;
  }
  int64_t shapes_storage[(size_t)n_out * max_rank + 1];
  for (int32_t o = 0; o < n_out; ++o) {
    const ember_sig_tensor *t = &sig->outputs[o];
    const ember_tensor *b = &outputs[o];
    int64_t *shape = shapes_storage + (size_t)o * max_rank;
    status = output_shape(sig, o, env, shape, err, errlen);
    if (status) return status;
    status = check_dtype("output", t, b->dtype, err, errlen);
    if (status) return status;
    status = check_rank("output", t, b, err, errlen);
    if (status) return status;
    int64_t need = num_elements(t->rank, shape), have = num_elements(b->rank, b->shape);
    int negative = 0;
    for (int32_t d = 0; d < b->rank; ++d) negative |= b->shape[d] < 0;
    if (b->rank != t->rank || need < 0 || have < need || negative) {
      sbuf s = sb_start(err, errlen);
      sb_append(&s, "output '%s': this call's output has shape ", t->name);
      sb_shape(&s, t->rank, shape);
      sb_append(&s, " (%lld elements) but the buffer has shape ", (long long)need);
      sb_shape(&s, b->rank, b->shape);
      sb_append(&s, " (%lld elements); allocate a rank-%d buffer of at least the maximum shape ",
                (long long)have, (int)t->rank);
      sb_shape(&s, t->rank, t->max_dims);
      return EMBER_ERROR_ARGUMENT;
    }
    if (!b->data && need != 0)
      return ember_fail(err, errlen, EMBER_ERROR_ARGUMENT, "output '%s': data is NULL",
                        t->name);
  }

  const snapshot *cs = acquire(m);
  int32_t unbound = 0;
  for (int32_t i = 0; i < n_const; ++i) unbound += cs->data[i] == NULL;
  if (unbound) {
    sbuf s = sb_start(err, errlen);
    sb_append(&s, "constants [");
    for (int32_t i = 0, first = 1; i < n_const; ++i)
      if (!cs->data[i]) sb_append(&s, first ? "'%s'" : ", '%s'", sig->constants[i].name), first = 0;
    sb_append(&s, "] are not bound: call set_constant(name, tensor) "
              "(ember_model_set_constant) before running");
    release(m, cs);
    return EMBER_ERROR_UNBOUND;
  }

  size_t n_args = (size_t)sig->num_inputs + (size_t)n_const + (size_t)n_out;
  int64_t stack_words[STACK_WORDS];
  void *stack_args[STACK_ARGS];
  int64_t *heap_words = words > STACK_WORDS ? malloc(words * sizeof(int64_t)) : NULL;
  void **heap_args = n_args > STACK_ARGS ? malloc(n_args * sizeof(void *)) : NULL;
  if ((words > STACK_WORDS && !heap_words) || (n_args > STACK_ARGS && !heap_args)) {
    free(heap_words);
    free(heap_args);
    release(m, cs);
    return ember_fail(err, errlen, EMBER_ERROR_MEMORY, "out of memory");
  }
  int64_t *cursor = heap_words ? heap_words : stack_words;
  void **args = heap_args ? heap_args : stack_args;
  size_t a = 0;
  for (int32_t i = 0; i < sig->num_inputs; ++i)
    args[a++] = put_descriptor(&cursor, inputs[i].data, inputs[i].rank, inputs[i].shape);
  for (int32_t i = 0; i < n_const; ++i)
    args[a++] = put_descriptor(&cursor, cs->data[i], sig->constants[i].rank,
                               sig->constants[i].dims);
  for (int32_t o = 0; o < n_out; ++o)
    args[a++] = put_descriptor(&cursor, outputs[o].data, sig->outputs[o].rank,
                               shapes_storage + (size_t)o * max_rank);

  int64_t fault[EMBER_FAULT_WORDS] = {0};
  int32_t code = sig->entry(args, fault);
  if (code == 0) write_back(sig, inputs, cs, outputs, shapes_storage, max_rank);
  release(m, cs);
  free(heap_words);
  free(heap_args);
  if (code == EMBER_ENTRY_FAULT) return report_fault(sig, fault, err, errlen);
  if (code != 0)
    return ember_fail(err, errlen, EMBER_ERROR_EXECUTION, "the model's code returned status %d",
                      (int)code);
  for (int32_t o = 0; output_shapes && o < n_out; ++o)
    if (output_shapes[o])
      memcpy(output_shapes[o], shapes_storage + (size_t)o * max_rank,
             (size_t)sig->outputs[o].rank * sizeof(int64_t));
  if (err && errlen) err[0] = '\0';
  return EMBER_OK;
}

/* -- the API table ----------------------------------------------------------------------------- */

static const ember_runtime_api api = {
    EMBER_ABI_VERSION,
    ember_model_create,
    ember_model_destroy,
    ember_model_num_inputs,
    ember_model_num_outputs,
    ember_model_num_constants,
    ember_model_input_name,
    ember_model_output_name,
    ember_model_constant_name,
    ember_model_input_info,
    ember_model_output_info,
    ember_model_constant_info,
    ember_model_num_symbols,
    ember_model_symbol,
    ember_model_input_shape,
    ember_model_output_shapes,
    ember_model_set_constant,
    ember_model_run,
    ember_dtype_name,
    ember_dtype_size,
    ember_status_name,
    ember_model_create_verified,
    ember_model_output_write_back,
};

EMBER_API const ember_runtime_api *ember_runtime_get_api(void) { return &api; }
