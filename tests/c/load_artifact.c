/* Loads an artifact with ember_load and unloads it (tests/test_artifact_integrity.py builds and
 * runs it on intact and damaged artifacts).
 *
 *   load_artifact ARTIFACT_DIR
 *
 * Prints "ok" and exits 0 when the artifact loads; prints "error: MESSAGE" to stderr and exits
 * 1 when ember_load refuses it (a crash or a hang would be the defect under test).
 */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>

#include "ember_loader.h"

int main(int argc, char **argv) {
  if (argc != 2) return 2;
  ember_artifact artifact;
  char err[2048];
  int status = ember_load(argv[1], &artifact, err, sizeof err);
  if (status != EMBER_OK) {
    fprintf(stderr, "error: %s\n", err);
    return 1;
  }
  ember_unload(&artifact);
  printf("ok\n");
  return 0;
}
