/* run_model: load an ember artifact and run it from C, no Python involved.
 *
 * Build (the headers ship in every compiled artifact directory):
 *     cc -O2 -I ARTIFACT_DIR -o run_model examples/c/run_model.c -ldl
 * or  make -C examples/c ARTIFACT=ARTIFACT_DIR
 *
 * Usage: run_model ARTIFACT_DIR [options]
 *   -s NAME=VALUE    value of a dynamic dim's symbol (default: the symbol's minimum)
 *   -i NAME=FILE     an input's data: raw bytes, C order, the input's dtype; default: the
 *                    deterministic values below
 *   -c NAME=FILE     bind an unbound constant from a raw file (its declared dtype and shape)
 *   -S NAME=D0xD1..  give an input this shape instead of the one the symbols imply
 *   -o DIR           write each output to DIR/NAME.bin (raw, its dtype, C order)
 *   -n N             run N times and print the median latency
 *   -t N             threads for the generated code's parallel loops (0: all cores)
 *
 * Deterministic inputs: element j of input k is ((7*j + 13*k) % 23 - 11) / 11.0 for floating
 * dtypes and 0 for integer and bool inputs.
 *
 * It prints the model's symbols, inputs, constants and outputs (marking those a model that
 * changes its inputs or buffers in place writes back), then each output's shape and checksums
 * (sum, and sum of absolute values). The artifact is loaded with ember_load (ember_loader.h),
 * which checks the manifest, the library and the weights before any of the library's code
 * runs. Exit status: 0 on success, 1 when the loader or the runtime reports an error (its
 * message is printed), 2 on a usage problem or a missing directory.
 */
#define _POSIX_C_SOURCE 200809L
#include <dlfcn.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "ember_loader.h"

#define MAX_ITEMS 64

static const ember_runtime_api *api;

typedef struct {
  const char *name, *value;
} pair;

static int split(char *arg, pair *out) {
  char *eq = strchr(arg, '=');
  if (!eq || eq == arg) return 0;
  *eq = '\0';
  out->name = arg;
  out->value = eq + 1;
  return 1;
}

static const char *lookup(const pair *items, int n, const char *name) {
  for (int i = 0; i < n; ++i)
    if (strcmp(items[i].name, name) == 0) return items[i].value;
  return NULL;
}


/* malloc that reports a failure (an absurd shape from -S or -s asks for too much). */
static void *allocate(int64_t bytes, const char *what) {
  void *data = malloc(bytes > 0 ? (size_t)bytes : 1);
  if (!data) fprintf(stderr, "error: cannot allocate %lld bytes for %s\n", (long long)bytes, what);
  return data;
}

/* Whether `name` is one of the model's symbols (`symbol`) or inputs. */
static int has_name(const ember_model *m, const char *name, int symbol) {
  int32_t n = symbol ? api->model_num_symbols(m) : api->model_num_inputs(m);
  for (int32_t k = 0; k < n; ++k) {
    const char *known = NULL;
    if (symbol) api->model_symbol(m, k, &known, NULL, NULL);
    else known = api->model_input_name(m, k);
    if (known && strcmp(known, name) == 0) return 1;
  }
  return 0;
}

/* The first name of `items` the model does not have, or NULL. */
static const char *unknown_name(const ember_model *m, const pair *items, int n, int symbol) {
  for (int i = 0; i < n; ++i)
    if (!has_name(m, items[i].name, symbol)) return items[i].name;
  return NULL;
}

static void print_shape(const int64_t *shape, int32_t rank) {
  printf("[");
  for (int32_t d = 0; d < rank; ++d) printf(d ? ", %lld" : "%lld", (long long)shape[d]);
  printf("]");
}

static void print_info(const char *role, int32_t i, const ember_tensor_info *info) {
  printf("  %s %d: %s %s%s", role, (int)i, info->name, api->dtype_name(info->dtype),
         info->shape_text);
  int dynamic = 0;
  for (int32_t d = 0; d < info->rank; ++d) dynamic |= info->dims[d] < 0;
  if (dynamic) {
    printf(" (max ");
    print_shape(info->max_dims, info->rank);
    printf(")");
  }
}

/* IEEE half and bfloat16 from float (round to nearest even) and back. */
static uint16_t to_half(float f) {
  uint32_t x;
  memcpy(&x, &f, 4);
  uint32_t sign = (x >> 16) & 0x8000u, exp = (x >> 23) & 0xFF, man = x & 0x7FFFFFu;
  if (exp == 0xFF) return (uint16_t)(sign | 0x7C00u | (man ? 0x200u : 0));
  int32_t e = (int32_t)exp - 127 + 15;
  if (e >= 31) return (uint16_t)(sign | 0x7C00u);
  if (e <= 0) {
    if (e < -10) return (uint16_t)sign;
    man |= 0x800000u;
    uint32_t shift = (uint32_t)(14 - e), half = man >> shift, rest = man & ((1u << shift) - 1);
    uint32_t mid = 1u << (shift - 1);
    if (rest > mid || (rest == mid && (half & 1))) ++half;
    return (uint16_t)(sign | half);
  }
  uint32_t half = sign | ((uint32_t)e << 10) | (man >> 13), rest = man & 0x1FFFu;
  if (rest > 0x1000u || (rest == 0x1000u && (half & 1))) ++half;
  return (uint16_t)half;
}

static float from_half(uint16_t h) {
  uint32_t sign = (uint32_t)(h & 0x8000u) << 16, exp = (h >> 10) & 0x1F, man = h & 0x3FFu, x;
  if (exp == 0) {
    float f = (float)man / 16777216.0f; /* man * 2^-24 */
    return sign ? -f : f;
  }
  x = exp == 31 ? sign | 0x7F800000u | (man << 13) : sign | ((exp - 15 + 127) << 23) | (man << 13);
  float f;
  memcpy(&f, &x, 4);
  return f;
}

static uint16_t to_bf16(float f) {
  uint32_t x;
  memcpy(&x, &f, 4);
  if ((x & 0x7FFFFFFFu) > 0x7F800000u) return (uint16_t)((x >> 16) | 0x40u);
  x += 0x7FFFu + ((x >> 16) & 1);
  return (uint16_t)(x >> 16);
}

static float from_bf16(uint16_t b) {
  uint32_t x = (uint32_t)b << 16;
  float f;
  memcpy(&f, &x, 4);
  return f;
}

static void fill(void *data, int32_t dtype, int64_t n, int k) {
  for (int64_t j = 0; j < n; ++j) {
    double v = (double)((7 * j + 13 * (int64_t)k) % 23 - 11) / 11.0;
    switch (dtype) {
      case EMBER_FLOAT32: ((float *)data)[j] = (float)v; break;
      case EMBER_FLOAT64: ((double *)data)[j] = v; break;
      case EMBER_FLOAT16: ((uint16_t *)data)[j] = to_half((float)v); break;
      case EMBER_BFLOAT16: ((uint16_t *)data)[j] = to_bf16((float)v); break;
      default: memset(data, 0, (size_t)(n * api->dtype_size(dtype))); return;
    }
  }
}

static double element(const void *data, int32_t dtype, int64_t j) {
  switch (dtype) {
    case EMBER_FLOAT32: return ((const float *)data)[j];
    case EMBER_FLOAT64: return ((const double *)data)[j];
    case EMBER_FLOAT16: return from_half(((const uint16_t *)data)[j]);
    case EMBER_BFLOAT16: return from_bf16(((const uint16_t *)data)[j]);
    case EMBER_INT8: return ((const int8_t *)data)[j];
    case EMBER_INT16: return ((const int16_t *)data)[j];
    case EMBER_INT32: return ((const int32_t *)data)[j];
    case EMBER_INT64: return (double)((const int64_t *)data)[j];
    case EMBER_UINT8: case EMBER_BOOL: return ((const uint8_t *)data)[j];
    case EMBER_UINT16: return ((const uint16_t *)data)[j];
    case EMBER_UINT32: return ((const uint32_t *)data)[j];
    case EMBER_UINT64: return (double)((const uint64_t *)data)[j];
    default: return 0;
  }
}

static int64_t count(const int64_t *shape, int32_t rank) {
  int64_t n = 1;
  for (int32_t d = 0; d < rank; ++d) n *= shape[d];
  return n;
}

/* Reads exactly `bytes` bytes of `path` into a new buffer. */
static void *read_file(const char *path, int64_t bytes) {
  FILE *f = fopen(path, "rb");
  if (!f) {
    fprintf(stderr, "error: cannot open %s: %s\n", path, strerror(errno));
    return NULL;
  }
  void *data = malloc(bytes > 0 ? (size_t)bytes : 1);
  size_t got = data ? fread(data, 1, (size_t)bytes, f) : 0;
  int extra = fgetc(f) != EOF;
  fclose(f);
  if (!data || (int64_t)got != bytes || extra) {
    fprintf(stderr, "error: %s must hold exactly %lld bytes\n", path, (long long)bytes);
    free(data);
    return NULL;
  }
  return data;
}

static int parse_shape(const char *text, int64_t *shape, int32_t *rank) {
  *rank = 0;
  if (!*text) return 1; /* a scalar */
  while (*text) {
    char *end;
    long long v = strtoll(text, &end, 10);
    if (end == text || *rank == 16) return 0;
    shape[(*rank)++] = v;
    if (*end == 'x' || *end == ',') ++end;
    else if (*end) return 0;
    text = end;
  }
  return 1;
}

static int compare(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

/* Everything main allocates, released in one place whatever the outcome. */
typedef struct {
  ember_artifact artifact;
  ember_model *model; /* artifact.model */
  void *const_data[MAX_ITEMS];
  ember_tensor inputs[MAX_ITEMS + 1], outputs[MAX_ITEMS + 1];
  double *times;
} resources;

static int finish(resources *r, int status) {
  for (int i = 0; i < MAX_ITEMS; ++i) free(r->inputs[i].data);
  for (int i = 0; i < MAX_ITEMS; ++i) free(r->outputs[i].data);
  ember_unload(&r->artifact); /* before the constants' memory the model references */
  for (int i = 0; i < MAX_ITEMS; ++i) free(r->const_data[i]);
  free(r->times);
  return status;
}

int main(int argc, char **argv) {
  if (argc < 2 || argv[1][0] == '-') {
    fprintf(stderr, "usage: %s ARTIFACT_DIR [-s SYM=N] [-i INPUT=FILE] [-c CONST=FILE] "
            "[-S INPUT=D0xD1] [-o DIR] [-n N] [-t N]\n", argv[0]);
    return 2;
  }
  const char *dir = argv[1], *out_dir = NULL;
  pair syms[MAX_ITEMS], files[MAX_ITEMS], consts[MAX_ITEMS], shapes[MAX_ITEMS];
  int nsyms = 0, nfiles = 0, nconsts = 0, nshapes = 0, repeat = 1, threads = -1;
  for (int a = 2; a < argc; ++a) {
    const char *opt = argv[a];
    if (a + 1 >= argc || opt[0] != '-' || !opt[1] || opt[2]) {
      fprintf(stderr, "error: bad argument '%s' (options take a value: -s -i -c -S -o -n -t)\n",
              opt);
      return 2;
    }
    char *value = argv[++a];
    int ok = 1;
    switch (opt[1]) {
      case 's': ok = nsyms < MAX_ITEMS && split(value, &syms[nsyms++]); break;
      case 'i': ok = nfiles < MAX_ITEMS && split(value, &files[nfiles++]); break;
      case 'c': ok = nconsts < MAX_ITEMS && split(value, &consts[nconsts++]); break;
      case 'S': ok = nshapes < MAX_ITEMS && split(value, &shapes[nshapes++]); break;
      case 'o': out_dir = value; break;
      case 'n': repeat = atoi(value); ok = repeat > 0; break;
      case 't': threads = atoi(value); ok = threads >= 0; break;
      default: ok = 0;
    }
    if (!ok) {
      fprintf(stderr, "error: bad value '%s' for %s\n", value, opt);
      return 2;
    }
  }

  /* Load the library and the API. */
  struct stat st;
  if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode)) {
    fprintf(stderr, "error: cannot open artifact directory '%s': %s\n", dir,
            stat(dir, &st) != 0 ? strerror(errno) : "not a directory");
    return 2;
  }
  resources r;
  memset(&r, 0, sizeof r);
  char err[2048];
  if (ember_load(dir, &r.artifact, err, sizeof err)) { /* checks everything before loading */
    fprintf(stderr, "error: %s\n", err);
    return finish(&r, 1);
  }
  api = r.artifact.api;
  if (threads >= 0) {
    int32_t (*set_threads)(int32_t) =
        (int32_t(*)(int32_t))dlsym(r.artifact.library, "ember_set_num_threads");
    if (set_threads) set_threads(threads);
  }
  r.model = r.artifact.model;
  ember_model *model = r.model;

  /* The signature. */
  int32_t n_sym = api->model_num_symbols(model), n_in = api->model_num_inputs(model);
  int32_t n_out = api->model_num_outputs(model), n_const = api->model_num_constants(model);
  if (n_in > MAX_ITEMS || n_out > MAX_ITEMS || n_sym > MAX_ITEMS) {
    fprintf(stderr, "error: this example handles at most %d inputs, outputs and symbols\n",
            MAX_ITEMS);
    return finish(&r, 2);
  }
  const char *stray = unknown_name(model, syms, nsyms, 1);
  if (!stray) stray = unknown_name(model, shapes, nshapes, 0);
  if (!stray) stray = unknown_name(model, files, nfiles, 0);
  if (stray) {
    fprintf(stderr, "error: the model has no symbol or input '%s' (see its signature: run "
            "without options)\n", stray);
    return finish(&r, 1);
  }
  printf("model %s\n", dir);
  int64_t sym_values[MAX_ITEMS + 1];
  for (int32_t k = 0; k < n_sym; ++k) {
    const char *name;
    int64_t lo, hi;
    api->model_symbol(model, k, &name, &lo, &hi);
    const char *given = lookup(syms, nsyms, name);
    char *end = NULL;
    sym_values[k] = given ? strtoll(given, &end, 10) : lo;
    if (given && (end == given || *end)) {
      fprintf(stderr, "error: -s %s=%s: the value must be an integer\n", name, given);
      return finish(&r, 1);
    }
    printf("  symbol %s in [%lld, %lld] = %lld\n", name, (long long)lo, (long long)hi,
           (long long)sym_values[k]);
  }
  ember_tensor_info info;
  for (int32_t i = 0; i < n_in; ++i) {
    api->model_input_info(model, i, &info);
    print_info("input", i, &info);
    printf("\n");
  }
  int unbound = 0;
  for (int32_t i = 0; i < n_const; ++i) {
    api->model_constant_info(model, i, &info);
    unbound += !info.bound;
  }
  printf("  %d constants (%d unbound)\n", (int)n_const, unbound);
  for (int32_t i = 0; i < n_out; ++i) {
    api->model_output_info(model, i, &info);
    print_info("output", i, &info);
    int32_t target;
    int32_t kind = api->model_output_write_back(model, i, &target);
    if (kind == EMBER_WRITE_BACK_INPUT)  /* a model changing an input in place */
      printf(" (written back to input %s)", api->model_input_name(model, target));
    else if (kind == EMBER_WRITE_BACK_CONSTANT)
      printf(" (written back to constant %s)", api->model_constant_name(model, target));
    printf("\n");
  }

  /* Constants from files. */
  for (int c = 0; c < nconsts; ++c) {
    int32_t index = -1;
    for (int32_t i = 0; i < n_const; ++i)
      if (strcmp(api->model_constant_name(model, i), consts[c].name) == 0) index = i;
    if (index < 0) {
      fprintf(stderr, "error: the model has no constant '%s'\n", consts[c].name);
      return finish(&r, 2);
    }
    api->model_constant_info(model, index, &info);
    r.const_data[c] = read_file(consts[c].value,
                                count(info.dims, info.rank) * api->dtype_size(info.dtype));
    if (!r.const_data[c]) return finish(&r, 2);
    ember_tensor value = {r.const_data[c], info.dtype, info.rank, info.dims};
    if (api->model_set_constant(model, consts[c].name, &value, err, sizeof err)) {
      fprintf(stderr, "error: %s\n", err);
      return finish(&r, 1);
    }
  }

  /* Inputs. */
  int64_t in_shapes[MAX_ITEMS + 1][16];
  for (int32_t i = 0; i < n_in; ++i) {
    api->model_input_info(model, i, &info);
    int32_t rank = info.rank;
    const char *shape_text = lookup(shapes, nshapes, info.name);
    if (shape_text) {
      if (!parse_shape(shape_text, in_shapes[i], &rank)) {
        fprintf(stderr, "error: bad shape '%s' for input %s\n", shape_text, info.name);
        return finish(&r, 2);
      }
    } else if (rank > 16 || api->model_input_shape(model, i, sym_values, in_shapes[i])) {
      fprintf(stderr, "error: cannot compute the shape of input %s from the symbols\n",
              info.name);
      return finish(&r, 2);
    }
    int64_t n = count(in_shapes[i], rank), bytes = n * api->dtype_size(info.dtype);
    const char *path = lookup(files, nfiles, info.name);
    void *data;
    if (path) {
      data = read_file(path, bytes);
      if (!data) return finish(&r, 2);
    } else {
      data = allocate(bytes, info.name);
      if (!data) return finish(&r, 1);
      fill(data, info.dtype, n, (int)i);
    }
    r.inputs[i] = (ember_tensor){data, info.dtype, rank, in_shapes[i]};
  }

  /* Outputs, allocated at this call's shapes. */
  int64_t out_shapes[MAX_ITEMS + 1][16];
  int64_t *out_shape_ptrs[MAX_ITEMS + 1];
  for (int32_t o = 0; o < n_out; ++o) {
    api->model_output_info(model, o, &info);
    if (info.rank > 16) {
      fprintf(stderr, "error: output %s has rank > 16\n", info.name);
      return finish(&r, 2);
    }
    out_shape_ptrs[o] = out_shapes[o];
  }
  if (api->model_output_shapes(model, r.inputs, n_in, out_shape_ptrs, err, sizeof err)) {
    fprintf(stderr, "error: %s\n", err);
    return finish(&r, 1);
  }
  for (int32_t o = 0; o < n_out; ++o) {
    api->model_output_info(model, o, &info);
    int64_t bytes = count(out_shapes[o], info.rank) * api->dtype_size(info.dtype);
    r.outputs[o] = (ember_tensor){allocate(bytes, info.name), info.dtype, info.rank,
                                  out_shapes[o]};
    if (!r.outputs[o].data) return finish(&r, 1);
  }

  /* Run. */
  r.times = allocate((int64_t)sizeof(double) * repeat, "the timings");
  if (!r.times) return finish(&r, 1);
  for (int k = 0; k < repeat; ++k) {
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    int status = api->model_run(model, r.inputs, n_in, r.outputs, n_out, out_shape_ptrs, err,
                                sizeof err);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    if (status) {
      fprintf(stderr, "error: %s\n", err);
      return finish(&r, 1);
    }
    r.times[k] = (double)(t1.tv_sec - t0.tv_sec) * 1e3 + (double)(t1.tv_nsec - t0.tv_nsec) / 1e6;
  }
  if (repeat > 1) {
    qsort(r.times, (size_t)repeat, sizeof(double), compare);
    printf("median latency over %d runs: %.3f ms\n", repeat, r.times[repeat / 2]);
  }

  /* Results. */
  for (int32_t o = 0; o < n_out; ++o) {
    api->model_output_info(model, o, &info);
    int64_t n = count(out_shapes[o], info.rank);
    double sum = 0, abs_sum = 0;
    for (int64_t j = 0; j < n; ++j) {
      double v = element(r.outputs[o].data, info.dtype, j);
      sum += v;
      abs_sum += v < 0 ? -v : v;
    }
    printf("output %s %s", info.name, api->dtype_name(info.dtype));
    print_shape(out_shapes[o], info.rank);
    printf(" sum=%.6g abs_sum=%.6g\n", sum, abs_sum);
    if (out_dir) {
      char path[4096];
      snprintf(path, sizeof path, "%s/%s.bin", out_dir, info.name);
      FILE *f = fopen(path, "wb");
      size_t bytes = (size_t)(n * api->dtype_size(info.dtype));
      int ok = f && fwrite(r.outputs[o].data, 1, bytes, f) == bytes;
      if (f) ok &= fclose(f) == 0;
      if (!ok) {
        fprintf(stderr, "error: cannot write %s: %s\n", path, strerror(errno));
        return finish(&r, 2);
      }
    }
  }
  return finish(&r, 0);
}
