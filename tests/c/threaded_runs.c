/* Runs one ember model from several threads at once and checks every result against a
 * single-threaded reference (tests/test_c_runtime.py builds and runs it).
 *
 *   threaded_runs ARTIFACT_DIR THREADS ITERATIONS [CONSTANT RAW_FILE]
 *
 * Every symbol takes the same value per run, cycling through a few sizes; inputs are float32
 * with deterministic values and are shared, read-only, by all threads; each thread owns its
 * outputs. With CONSTANT, another thread keeps re-binding that constant to one of two identical
 * copies of RAW_FILE while the runs go on (set_constant racing with runs). Prints "ok" and
 * exits 0 when every run matched.
 */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ember_loader.h"

#define NSIZES 4
#define MAX_IO 8
static const int64_t sizes[NSIZES] = {1, 3, 8, 17};

static const ember_runtime_api *api;
static ember_model *model;
static int32_t n_in, n_out, n_sym, iterations;
static ember_tensor inputs[NSIZES][MAX_IO];
static int64_t in_shapes[NSIZES][MAX_IO][8], out_shapes[NSIZES][MAX_IO][8];
static float *reference[NSIZES][MAX_IO];
static int64_t out_count[NSIZES][MAX_IO], max_count[MAX_IO];
static int stop_swapping; /* accessed with __atomic builtins */
static const char *swap_name;
static void *swap_data[2];
static int32_t swap_rank;
static const int64_t *swap_dims;

static int64_t count(const int64_t *shape, int32_t rank) {
  int64_t n = 1;
  for (int32_t d = 0; d < rank; ++d) n *= shape[d];
  return n;
}

static int run(int s, float **outs, char *err, size_t errlen) {
  ember_tensor o[MAX_IO];
  int64_t got[MAX_IO][8];
  int64_t *got_ptrs[MAX_IO];
  for (int32_t k = 0; k < n_out; ++k) {
    ember_tensor_info info;
    api->model_output_info(model, k, &info);
    o[k] = (ember_tensor){outs[k], EMBER_FLOAT32, info.rank, out_shapes[s][k]};
    got_ptrs[k] = got[k];
  }
  int status = api->model_run(model, inputs[s], n_in, o, n_out, got_ptrs, err, errlen);
  for (int32_t k = 0; !status && k < n_out; ++k)
    if (memcmp(got[k], out_shapes[s][k], sizeof(int64_t) * (size_t)o[k].rank) != 0) {
      snprintf(err, errlen, "output %d: wrong shape returned", (int)k);
      return -1;
    }
  return status;
}

static void *worker(void *arg) {
  intptr_t id = (intptr_t)arg;
  float *outs[MAX_IO];
  for (int32_t k = 0; k < n_out; ++k) outs[k] = malloc(sizeof(float) * (size_t)max_count[k]);
  char err[1024];
  for (int it = 0; it < iterations; ++it) {
    int s = (int)((id + it) % NSIZES);
    if (run(s, outs, err, sizeof err)) {
      fprintf(stderr, "thread %d: %s\n", (int)id, err);
      return (void *)1;
    }
    for (int32_t k = 0; k < n_out; ++k)
      for (int64_t j = 0; j < out_count[s][k]; ++j) {
        float want = reference[s][k][j], got = outs[k][j];
        if (!(fabsf(got - want) <= 1e-5f * (1.0f + fabsf(want)))) {
          fprintf(stderr, "thread %d, size %lld, output %d, element %lld: %g != %g\n", (int)id,
                  (long long)sizes[s], (int)k, (long long)j, got, want);
          return (void *)1;
        }
      }
  }
  for (int32_t k = 0; k < n_out; ++k) free(outs[k]);
  return NULL;
}

static void *swapper(void *arg) {
  (void)arg;
  char err[1024];
  for (long i = 0; !__atomic_load_n(&stop_swapping, __ATOMIC_ACQUIRE); ++i) {
    ember_tensor value = {swap_data[i & 1], EMBER_FLOAT32, swap_rank, swap_dims};
    if (api->model_set_constant(model, swap_name, &value, err, sizeof err)) {
      fprintf(stderr, "set_constant: %s\n", err);
      return (void *)1;
    }
  }
  return NULL;
}

int main(int argc, char **argv) {
  if (argc != 4 && argc != 6) {
    fprintf(stderr, "usage: %s ARTIFACT_DIR THREADS ITERATIONS [CONSTANT RAW_FILE]\n", argv[0]);
    return 2;
  }
  char err[1024];
  ember_artifact artifact;
  if (ember_load(argv[1], &artifact, err, sizeof err)) {
    fprintf(stderr, "%s\n", err);
    return 1;
  }
  api = artifact.api;
  model = artifact.model;
  int threads = atoi(argv[2]);
  iterations = atoi(argv[3]);
  n_in = api->model_num_inputs(model);
  n_out = api->model_num_outputs(model);
  n_sym = api->model_num_symbols(model);
  if (n_in > MAX_IO || n_out > MAX_IO || n_sym > 8) return 2;

  for (int s = 0; s < NSIZES; ++s) {
    int64_t symbols[8];
    for (int32_t k = 0; k < n_sym; ++k) symbols[k] = sizes[s];
    for (int32_t i = 0; i < n_in; ++i) {
      ember_tensor_info info;
      api->model_input_info(model, i, &info);
      if (info.dtype != EMBER_FLOAT32 || info.rank > 8) return 2;
      api->model_input_shape(model, i, symbols, in_shapes[s][i]);
      int64_t n = count(in_shapes[s][i], info.rank);
      float *data = malloc(sizeof(float) * (size_t)(n ? n : 1));
      for (int64_t j = 0; j < n; ++j) data[j] = (float)((7 * j + 13 * i + s) % 23 - 11) / 11.0f;
      inputs[s][i] = (ember_tensor){data, EMBER_FLOAT32, info.rank, in_shapes[s][i]};
    }
    int64_t *shape_ptrs[MAX_IO];
    for (int32_t k = 0; k < n_out; ++k) shape_ptrs[k] = out_shapes[s][k];
    if (api->model_output_shapes(model, inputs[s], n_in, shape_ptrs, err, sizeof err)) {
      fprintf(stderr, "%s\n", err);
      return 1;
    }
    for (int32_t k = 0; k < n_out; ++k) {
      ember_tensor_info info;
      api->model_output_info(model, k, &info);
      if (info.dtype != EMBER_FLOAT32) return 2;
      out_count[s][k] = count(out_shapes[s][k], info.rank);
      if (out_count[s][k] > max_count[k]) max_count[k] = out_count[s][k];
      reference[s][k] = malloc(sizeof(float) * (size_t)(out_count[s][k] + 1));
    }
    if (run(s, reference[s], err, sizeof err)) { /* single-threaded reference */
      fprintf(stderr, "%s\n", err);
      return 1;
    }
  }

  pthread_t swap_thread;
  if (argc == 6) {
    swap_name = argv[4];
    int32_t index = -1;
    for (int32_t i = 0; i < api->model_num_constants(model); ++i)
      if (strcmp(api->model_constant_name(model, i), swap_name) == 0) index = i;
    ember_tensor_info info;
    if (index < 0 || api->model_constant_info(model, index, &info) ||
        info.dtype != EMBER_FLOAT32) {
      fprintf(stderr, "no float32 constant %s\n", swap_name);
      return 2;
    }
    swap_rank = info.rank;
    swap_dims = info.dims;
    size_t bytes = sizeof(float) * (size_t)count(info.dims, info.rank);
    FILE *f = fopen(argv[5], "rb");
    for (int c = 0; c < 2; ++c) {
      swap_data[c] = malloc(bytes);
      rewind(f);
      if (fread(swap_data[c], 1, bytes, f) != bytes) return 2;
    }
    fclose(f);
    pthread_create(&swap_thread, NULL, swapper, NULL);
  }
  pthread_t workers[64];
  if (threads > 64) threads = 64;
  for (intptr_t t = 0; t < threads; ++t) pthread_create(&workers[t], NULL, worker, (void *)t);
  int failed = 0;
  for (int t = 0; t < threads; ++t) {
    void *result;
    pthread_join(workers[t], &result);
    failed |= result != NULL;
  }
  if (argc == 6) {
    void *result;
    __atomic_store_n(&stop_swapping, 1, __ATOMIC_RELEASE);
    pthread_join(swap_thread, &result);
    failed |= result != NULL;
  }
  ember_unload(&artifact);
  if (failed) return 1;
  printf("ok: %d threads x %d runs\n", threads, iterations);
  return 0;
}
