/* Runs a model whose inputs are all 1-D int64 tensors through the ember C API, with the values
 * given on the command line, and prints what ember_model_run answered: "ok", or the status
 * name and the message (tests/test_runtime_checks.py checks the run-time index and divisor
 * faults a C caller sees).
 *
 *   int64_inputs ARTIFACT_DIR V,V,... [V,V,... ...]   (one comma-separated list per input)
 *
 * Exits 0 when the run succeeded, 1 when it reported an error, 2 on a usage or loading problem.
 */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ember_loader.h"

enum { MAX_TENSORS = 8, MAX_VALUES = 64, MAX_RANK = 8 };

int main(int argc, char **argv) {
  if (argc < 2) return 2;
  ember_artifact artifact;
  char err[1024];
  if (ember_load(argv[1], &artifact, err, sizeof err)) {
    fprintf(stderr, "%s\n", err);
    return 2;
  }
  const ember_runtime_api *api = artifact.api;
  ember_model *m = artifact.model;
  int32_t n_in = api->model_num_inputs(m), n_out = api->model_num_outputs(m);
  if (n_in != argc - 2 || n_in > MAX_TENSORS || n_out > MAX_TENSORS) return 2;

  static int64_t values[MAX_TENSORS][MAX_VALUES];
  int64_t in_shapes[MAX_TENSORS][1];
  ember_tensor inputs[MAX_TENSORS];
  for (int32_t i = 0; i < n_in; ++i) {
    int64_t n = 0;
    for (char *s = argv[2 + i], *end; *s && n < MAX_VALUES; s = *end ? end + 1 : end)
      values[i][n++] = strtoll(s, &end, 10);
    in_shapes[i][0] = n;
    inputs[i] = (ember_tensor){values[i], EMBER_INT64, 1, in_shapes[i]};
  }
  int64_t out_shapes[MAX_TENSORS][MAX_RANK];
  int64_t *out_ptrs[MAX_TENSORS];
  for (int32_t o = 0; o < n_out; ++o) out_ptrs[o] = out_shapes[o];
  if (api->model_output_shapes(m, inputs, n_in, out_ptrs, err, sizeof err)) {
    fprintf(stderr, "%s\n", err);
    return 2;
  }
  ember_tensor outputs[MAX_TENSORS];
  void *buffers[MAX_TENSORS];
  for (int32_t o = 0; o < n_out; ++o) {
    ember_tensor_info info;
    api->model_output_info(m, o, &info);
    int64_t count = 1;
    for (int32_t d = 0; d < info.rank; ++d) count *= out_shapes[o][d];
    buffers[o] = calloc((size_t)(count ? count : 1), (size_t)api->dtype_size(info.dtype));
    outputs[o] = (ember_tensor){buffers[o], info.dtype, info.rank, out_shapes[o]};
  }
  int status = api->model_run(m, inputs, n_in, outputs, n_out, NULL, err, sizeof err);
  if (status)
    printf("%s: %s\n", api->status_name(status), err);
  else
    printf("ok\n");
  for (int32_t o = 0; o < n_out; ++o) free(buffers[o]);
  ember_unload(&artifact);
  return status ? 1 : 0;
}
