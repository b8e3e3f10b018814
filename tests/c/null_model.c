/* Calls every function of the ember C API that takes a model with a NULL handle, as a caller
 * that ignored ember_model_create's status would (tests/test_c_runtime.py builds and runs it).
 *
 *   null_model ARTIFACT_DIR
 *
 * Loads the API with ember_load; prints "ok" and exits 0 when every call answered
 * (-1, NULL or EMBER_ERROR_ARGUMENT with a message) instead of crashing.
 */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <string.h>

#include "ember_loader.h"

#define CHECK(cond)                                                   \
  do {                                                                \
    if (!(cond)) {                                                    \
      fprintf(stderr, "failed: %s (line %d)\n", #cond, __LINE__);     \
      return 1;                                                       \
    }                                                                 \
  } while (0)

int main(int argc, char **argv) {
  if (argc != 2) return 2;
  ember_artifact artifact;
  char err[256];
  CHECK(ember_load(argv[1], &artifact, err, sizeof err) == EMBER_OK);
  const ember_runtime_api *api = artifact.api;
  ember_model *m = NULL;
  ember_tensor_info info;
  int64_t shape[8], value = 1, lo, hi;
  const char *name;
  float data[4];
  ember_tensor t = {data, EMBER_FLOAT32, 1, shape};

  CHECK(api->model_num_inputs(m) == -1 && api->model_num_outputs(m) == -1);
  CHECK(api->model_num_constants(m) == -1 && api->model_num_symbols(m) == -1);
  CHECK(api->model_input_name(m, 0) == NULL && api->model_output_name(m, 0) == NULL);
  CHECK(api->model_constant_name(m, 0) == NULL);
  CHECK(api->model_output_write_back(m, 0, NULL) == -1);
  CHECK(api->model_input_info(m, 0, &info) == EMBER_ERROR_ARGUMENT);
  CHECK(api->model_output_info(m, 0, &info) == EMBER_ERROR_ARGUMENT);
  CHECK(api->model_constant_info(m, 0, &info) == EMBER_ERROR_ARGUMENT);
  CHECK(api->model_symbol(m, 0, &name, &lo, &hi) == EMBER_ERROR_ARGUMENT);
  CHECK(api->model_input_shape(m, 0, &value, shape) == EMBER_ERROR_ARGUMENT);
  err[0] = '\0';
  CHECK(api->model_output_shapes(m, &t, 1, NULL, err, sizeof err) == EMBER_ERROR_ARGUMENT);
  CHECK(strstr(err, "NULL") != NULL);
  err[0] = '\0';
  CHECK(api->model_set_constant(m, "w", &t, err, sizeof err) == EMBER_ERROR_ARGUMENT);
  CHECK(strstr(err, "NULL") != NULL);
  err[0] = '\0';
  CHECK(api->model_run(m, &t, 1, &t, 1, NULL, err, sizeof err) == EMBER_ERROR_ARGUMENT);
  CHECK(strstr(err, "NULL") != NULL);
  api->model_destroy(m);
  ember_unload(&artifact);
  printf("ok\n");
  return 0;
}
