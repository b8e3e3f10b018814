/* Runs a model that changes an input and a buffer in place, twice, through the ember C API
 * (tests/test_mutation.py builds and runs it).
 *
 *   write_back ARTIFACT_DIR
 *
 * Loads the artifact with ember_load (refusals print "error: MESSAGE" and exit 1). Every
 * input and output must be float32 with a static shape. Input i holds the values
 * (i + 1) * (k + 1) for element k. Prints, for each output, "write_back <name> <kind> <target>"
 * (ember_model_output_write_back), then after each of the two runs "run <r> input <i>: ..." for
 * every input and "run <r> output <name>: ..." for the outputs written back to nothing.
 */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>

#include "ember_loader.h"

enum { MAX_TENSORS = 16 };

static int64_t elements(const ember_tensor_info *info) {
  int64_t n = 1;
  for (int32_t d = 0; d < info->rank; ++d) n *= info->dims[d];
  return n;
}

static void print_values(const float *data, int64_t n) {
  for (int64_t k = 0; k < n; ++k) printf(" %g", data[k]);
  printf("\n");
}

int main(int argc, char **argv) {
  if (argc != 2) return 2;
  char err[1024];
  ember_artifact artifact;
  if (ember_load(argv[1], &artifact, err, sizeof err))
    return fprintf(stderr, "error: %s\n", err), 1;
  const ember_runtime_api *api = artifact.api;
  ember_model *m = artifact.model;
  int32_t n_in = api->model_num_inputs(m), n_out = api->model_num_outputs(m);
  if (n_in > MAX_TENSORS || n_out > MAX_TENSORS) return 1;
  ember_tensor inputs[MAX_TENSORS], outputs[MAX_TENSORS];
  ember_tensor_info in_info[MAX_TENSORS], out_info[MAX_TENSORS];
  int32_t kinds[MAX_TENSORS];
  for (int32_t i = 0; i < n_in; ++i) {
    api->model_input_info(m, i, &in_info[i]);
    float *data = malloc(sizeof(float) * (size_t)(elements(&in_info[i]) + 1));
    for (int64_t k = 0; k < elements(&in_info[i]); ++k) data[k] = (float)((i + 1) * (k + 1));
    inputs[i] = (ember_tensor){data, EMBER_FLOAT32, in_info[i].rank, in_info[i].dims};
  }
  for (int32_t o = 0; o < n_out; ++o) {
    api->model_output_info(m, o, &out_info[o]);
    outputs[o] = (ember_tensor){malloc(sizeof(float) * (size_t)(elements(&out_info[o]) + 1)),
                                EMBER_FLOAT32, out_info[o].rank, out_info[o].dims};
    int32_t target = -2;
    kinds[o] = api->model_output_write_back(m, o, &target);
    printf("write_back %s %d %d\n", out_info[o].name, (int)kinds[o], (int)target);
  }
  for (int run = 1; run <= 2; ++run) {
    if (api->model_run(m, inputs, n_in, outputs, n_out, NULL, err, sizeof err))
      return fprintf(stderr, "%s\n", err), 1;
    for (int32_t i = 0; i < n_in; ++i) {
      printf("run %d input %s:", run, in_info[i].name);
      print_values(inputs[i].data, elements(&in_info[i]));
    }
    for (int32_t o = 0; o < n_out; ++o) {
      if (kinds[o] != EMBER_WRITE_BACK_NONE) continue;
      printf("run %d output %s:", run, out_info[o].name);
      print_values(outputs[o].data, elements(&out_info[o]));
    }
  }
  ember_unload(&artifact);
  return 0;
}
