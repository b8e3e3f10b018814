/* ember_loader.h: loading an ember artifact from C, checked before any of its code runs.
 *
 *     ember_artifact a;
 *     char err[1024];
 *     if (ember_load("mlp.ember", &a, err, sizeof err)) { puts(err); return 1; }
 *     ... a.api->model_run(a.model, ...) ...
 *     ember_unload(&a);
 *
 * Link with -ldl. Everything here is `static inline` (include it in one or more files; nothing
 * is exported). The Python loader (ember.runtime.host) makes the same checks on the same files.
 *
 * The chain of trust (no key: it catches a corrupted, truncated, planted or edited file, and an
 * artifact mixed from two; someone able to rewrite every file consistently can still replace
 * the whole artifact, which only a hash obtained elsewhere could catch):
 *  1. manifest.json: a regular file of at most EMBER_MAX_MANIFEST_BYTES, valid JSON nested at
 *     most EMBER_MAX_JSON_DEPTH levels, format "ember-artifact" version 1. Only its `files`
 *     entries for model.so and weights.safetensors are used: file names and symbols are fixed
 *     by the format, so the manifest names nothing to open or to call.
 *  2. model.so: a regular file of at most EMBER_MAX_LIBRARY_BYTES, read once into memory; its
 *     size and sha256 must be the manifest's. Only then are those same bytes written to a
 *     private file and loaded (dlopen runs a library's constructors: an unchecked library would
 *     run before it could be refused, and a truncated one could fault the process).
 *  3. The seal: the library carries the sha256 of the manifest it was written with (with the
 *     library's own sha256 written as zeros; see ember_runtime.c). It must equal the sha256 of
 *     the manifest just read, so every byte of the manifest is covered, not only the hashes.
 *     This is checked on the library's bytes, before it is loaded.
 *  4. weights.safetensors: read into memory by the runtime (ember_model_create_verified), which
 *     checks the manifest's sha256 before using any byte, and binds the constants the library's
 *     compiled signature declares.
 * A failure returns EMBER_ERROR_ARTIFACT (EMBER_ERROR_MEMORY when out of memory) with a message.
 */
#ifndef EMBER_LOADER_H
#define EMBER_LOADER_H

#include <dlfcn.h>
#include <stdlib.h>

#include "ember_runtime.h"
#include "ember_verify.h"

#define EMBER_MAX_MANIFEST_BYTES ((int64_t)64 << 20) /* ember.artifact.store: the same limits */
#define EMBER_MAX_LIBRARY_BYTES ((int64_t)1 << 30)

typedef struct ember_artifact {
  const ember_runtime_api *api; /* the library's API */
  ember_model *model;           /* the model, its weights checked and bound */
  void *library;                /* the dlopen handle */
} ember_artifact;

/* What the loader takes from the manifest: the two files' sha256 and size. */
typedef struct ember_manifest_file {
  char sha256[65];
  int64_t size;
  int found;
} ember_manifest_file;

/* Parses {"sha256": hex, "size": n, ...} into f. */
static inline int ember_loader_file_entry(ember_json *j, char *key, ember_manifest_file *f) {
  if (!ember_json_expect(j, '{')) return 0;
  int have_sha = 0, have_size = 0;
  if (!ember_json_expect(j, '}')) {
    do {
      size_t len;
      if (!ember_json_string(j, key, &len) || !ember_json_expect(j, ':')) return 0;
      if (strcmp(key, "sha256") == 0) {
        if (!ember_json_string(j, key, &len)) return 0;
        have_sha = len == 64 && strspn(key, "0123456789abcdef") == 64;
        if (have_sha) memcpy(f->sha256, key, 65);
      } else if (strcmp(key, "size") == 0) {
        if (!ember_json_uint(j, &f->size)) return 0;
        have_size = 1;
      } else if (!ember_json_skip(j, 4)) {
        return 0;
      }
    } while (ember_json_expect(j, ','));
    if (!ember_json_expect(j, '}')) return 0;
  }
  f->found = have_sha && have_size;
  return 1;
}

/* Reads the manifest's format, version and the entries of files["model.so"] and
 * files["weights.safetensors"] (a later duplicate key wins, as in Python's json). */
static inline int ember_loader_parse(const char *path, const char *text, size_t size,
                                     ember_manifest_file *library, ember_manifest_file *weights,
                                     char *err, size_t errlen) {
  char *key = malloc(size + 1);
  if (!key) return ember_fail(err, errlen, EMBER_ERROR_MEMORY, "out of memory");
  ember_json j = {text, text + size, 0};
  int ok = ember_json_expect(&j, '{'), format = 0;
  int64_t version = -1;
  if (ok && !ember_json_expect(&j, '}')) {
    do {
      size_t len;
      ok = ember_json_string(&j, key, &len) && ember_json_expect(&j, ':');
      if (!ok) break;
      if (strcmp(key, "format") == 0) {
        format = 0;
        ember_json_ws(&j);
        if (j.p < j.end && *j.p == '"') {
          ok = ember_json_string(&j, key, &len);
          format = ok && strcmp(key, "ember-artifact") == 0;
        } else {
          ok = ember_json_skip(&j, 2);
        }
      } else if (strcmp(key, "format_version") == 0) {
        const char *at = j.p;
        if (!ember_json_uint(&j, &version)) {
          j.p = at;
          version = -1;
          ok = ember_json_skip(&j, 2);
        }
      } else if (strcmp(key, "files") == 0) {
        memset(library, 0, sizeof *library);
        memset(weights, 0, sizeof *weights);
        ok = ember_json_expect(&j, '{');
        if (ok && !ember_json_expect(&j, '}')) {
          do {
            ok = ember_json_string(&j, key, &len) && ember_json_expect(&j, ':');
            if (!ok) break;
            ember_manifest_file *f = strcmp(key, "model.so") == 0 ? library
                                     : strcmp(key, "weights.safetensors") == 0 ? weights
                                                                               : NULL;
            ok = f ? ember_loader_file_entry(&j, key, f) : ember_json_skip(&j, 3);
          } while (ok && ember_json_expect(&j, ','));
          ok = ok && ember_json_expect(&j, '}');
        }
      } else {
        ok = ember_json_skip(&j, 2);
      }
    } while (ok && ember_json_expect(&j, ','));
    ok = ok && ember_json_expect(&j, '}');
  }
  ember_json_ws(&j);
  ok = ok && j.p == j.end;
  free(key);
  if (!ok && j.too_deep)
    return ember_fail(err, errlen, EMBER_ERROR_ARTIFACT,
                      "cannot read %s: JSON nested deeper than %d levels", path,
                      EMBER_MAX_JSON_DEPTH);
  if (!ok)
    return ember_fail(err, errlen, EMBER_ERROR_ARTIFACT,
                      "cannot read %s: malformed JSON at byte %lld", path,
                      (long long)(j.p - text));
  if (!format)
    return ember_fail(err, errlen, EMBER_ERROR_ARTIFACT, "%s: not an ember-artifact manifest",
                      path);
  if (version != 1)
    return ember_fail(err, errlen, EMBER_ERROR_ARTIFACT,
                      "%s: format_version %lld is not supported (this loader reads 1); "
                      "recompile the model", path, (long long)version);
  if (!library->found || !weights->found)
    return ember_fail(err, errlen, EMBER_ERROR_ARTIFACT,
                      "%s: files must list model.so and weights.safetensors, each with its "
                      "sha256 (64 lowercase hex digits) and size", path);
  return EMBER_OK;
}

/* Reads `path` (a regular file of at most `limit` bytes) into a malloc'ed buffer with a NUL
 * after it; with `expect`, its size and sha256 must be those. */
static inline int ember_loader_read(const char *path, int64_t limit,
                                    const ember_manifest_file *expect, char **data,
                                    int64_t *size, char *err, size_t errlen) {
  int status;
  int fd = ember_open_regular(path, limit, size, &status, err, errlen);
  *data = NULL;
  if (fd >= 0 && expect && *size != expect->size) {
    status = ember_fail(err, errlen, EMBER_ERROR_ARTIFACT,
                        "artifact file %s was modified or corrupted: it has %lld bytes, the "
                        "manifest lists %lld", path, (long long)*size, (long long)expect->size);
  } else if (fd >= 0 && !(*data = malloc((size_t)*size + 1))) {
    status = ember_fail(err, errlen, EMBER_ERROR_MEMORY, "out of memory reading %s", path);
  } else if (fd >= 0) {
    ember_sha256 sha;
    ember_sha256_init(&sha);
    status = ember_read_exact(fd, path, *data, *size, &sha, err, errlen);
    (*data)[*size] = '\0';
    char actual[65];
    ember_sha256_hex(&sha, actual);
    if (status == EMBER_OK && expect && strcmp(actual, expect->sha256) != 0)
      status = ember_fail(err, errlen, EMBER_ERROR_ARTIFACT,
                          "artifact file %s was modified or corrupted: sha256 is %s, the "
                          "manifest expects %s", path, actual, expect->sha256);
  }
  if (fd >= 0) close(fd);
  if (status != EMBER_OK) {
    free(*data);
    *data = NULL;
  }
  return status;
}

/* Where `needle` occurs in `hay`: the offset of its only occurrence, -1 when absent, -2 when
 * it occurs more than once. */
static inline int64_t ember_loader_find(const char *hay, int64_t n, const char *needle,
                                        size_t k) {
  int64_t found = -1;
  for (int64_t i = 0; i + (int64_t)k <= n; ++i) {
    const char *p = memchr(hay + i, needle[0], (size_t)(n - i - (int64_t)k + 1));
    if (!p) break;
    i = p - hay;
    if (memcmp(p, needle, k) == 0) {
      if (found >= 0) return -2;
      found = i;
    }
  }
  return found;
}

/* The library's seal must be the sha256 of the manifest with the library's sha256 zeroed. */
static inline int ember_loader_check_seal(const char *dir, const char *library, int64_t lib_size,
                                          char *manifest, int64_t manifest_size,
                                          const char *lib_sha256, char *err, size_t errlen) {
  int64_t at = ember_loader_find(library, lib_size, EMBER_SEAL_MAGIC, 16);
  if (at < 0 || at + 48 > lib_size)
    return ember_fail(err, errlen, EMBER_ERROR_ARTIFACT,
                      "%s/model.so carries %s manifest seal (it was not built by this ember's C "
                      "runtime); recompile the model", dir, at == -2 ? "more than one" : "no");
  char quoted[67];
  snprintf(quoted, sizeof quoted, "\"%s\"", lib_sha256);
  int64_t pos = ember_loader_find(manifest, manifest_size, quoted, 66);
  if (pos < 0)
    return ember_fail(err, errlen, EMBER_ERROR_ARTIFACT,
                      "%s/manifest.json must spell model.so's sha256 exactly once", dir);
  memset(manifest + pos + 1, '0', 64);
  ember_sha256 sha;
  ember_sha256_init(&sha);
  ember_sha256_update(&sha, manifest, (size_t)manifest_size);
  memcpy(manifest + pos + 1, lib_sha256, 64);
  char actual[65], sealed[65];
  ember_sha256_hex(&sha, actual);
  for (int i = 0; i < 32; ++i)
    snprintf(sealed + 2 * i, 3, "%02x", (unsigned char)library[at + 16 + i]);
  if (strcmp(actual, sealed) != 0)
    return ember_fail(err, errlen, EMBER_ERROR_ARTIFACT,
                      "%s/manifest.json does not match the seal in model.so: the manifest was "
                      "edited after the artifact was written, or belongs to another library; "
                      "restore it or recompile the model", dir);
  return EMBER_OK;
}

/* Writes the checked library bytes to a private temporary file and loads that (the dynamic
 * loader never sees a path whose contents could change after the check). */
static inline int ember_loader_dlopen(const char *library, int64_t size, void **handle,
                                      char *err, size_t errlen) {
  const char *tmp = getenv("TMPDIR");
  if (!tmp || !*tmp) tmp = "/tmp";
  size_t len = strlen(tmp) + sizeof "/ember-XXXXXX";
  char *path = malloc(len);
  if (!path) return ember_fail(err, errlen, EMBER_ERROR_MEMORY, "out of memory");
  snprintf(path, len, "%s/ember-XXXXXX", tmp);
  int fd = mkstemp(path);
  if (fd < 0) {
    int status = ember_fail(err, errlen, EMBER_ERROR_ARTIFACT,
                            "cannot create a private copy of the library in %s: %s", tmp,
                            strerror(errno));
    free(path);
    return status;
  }
  int64_t done = 0;
  while (done < size) {
    ssize_t n = write(fd, library + done, (size_t)(size - done));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    done += n;
  }
  close(fd);
  *handle = done == size ? dlopen(path, RTLD_NOW | RTLD_LOCAL) : NULL;
  int status = EMBER_OK;
  if (done != size)
    status = ember_fail(err, errlen, EMBER_ERROR_ARTIFACT, "cannot write %s: %s", path,
                        strerror(errno));
  else if (!*handle)
    status = ember_fail(err, errlen, EMBER_ERROR_ARTIFACT, "cannot load the checked library: %s",
                        dlerror());
  unlink(path);
  free(path);
  return status;
}

/* Loads the artifact in `artifact_dir`: see the top of this file. On success *out holds the
 * API, the model and the library; release them with ember_unload. */
static inline int ember_load(const char *artifact_dir, ember_artifact *out, char *err,
                             size_t errlen) {
  if (!out) return ember_fail(err, errlen, EMBER_ERROR_ARGUMENT, "out must not be NULL");
  memset(out, 0, sizeof *out);
  if (!artifact_dir || !*artifact_dir)
    return ember_fail(err, errlen, EMBER_ERROR_ARGUMENT, "artifact_dir must name a directory");
  struct stat st;
  if (stat(artifact_dir, &st) != 0)
    return ember_fail(err, errlen, EMBER_ERROR_ARTIFACT,
                      "cannot open the artifact directory '%s': %s", artifact_dir,
                      strerror(errno));
  if (!S_ISDIR(st.st_mode))
    return ember_fail(err, errlen, EMBER_ERROR_ARTIFACT, "'%s' is not an artifact directory",
                      artifact_dir);
  size_t len = strlen(artifact_dir) + sizeof "/manifest.json";
  char *manifest_path = malloc(len), *library_path = malloc(len);
  if (!manifest_path || !library_path) {
    free(manifest_path);
    free(library_path);
    return ember_fail(err, errlen, EMBER_ERROR_MEMORY, "out of memory");
  }
  snprintf(manifest_path, len, "%s/manifest.json", artifact_dir);
  snprintf(library_path, len, "%s/model.so", artifact_dir);
  char *manifest = NULL, *library = NULL;
  int64_t manifest_size = 0, library_size = 0;
  ember_manifest_file lib = {{0}, 0, 0}, weights = {{0}, 0, 0};
  int status = ember_loader_read(manifest_path, EMBER_MAX_MANIFEST_BYTES, NULL, &manifest,
                                 &manifest_size, err, errlen);
  if (status == EMBER_OK)
    status = ember_loader_parse(manifest_path, manifest, (size_t)manifest_size, &lib, &weights,
                                err, errlen);
  if (status == EMBER_OK && lib.size > EMBER_MAX_LIBRARY_BYTES)
    status = ember_fail(err, errlen, EMBER_ERROR_ARTIFACT,
                        "manifest.json lists a model.so of %lld bytes, more than the %lld a "
                        "library may have", (long long)lib.size,
                        (long long)EMBER_MAX_LIBRARY_BYTES);
  if (status == EMBER_OK)
    status = ember_loader_read(library_path, EMBER_MAX_LIBRARY_BYTES, &lib, &library,
                               &library_size, err, errlen);
  if (status == EMBER_OK)
    status = ember_loader_check_seal(artifact_dir, library, library_size, manifest,
                                     manifest_size, lib.sha256, err, errlen);
  if (status == EMBER_OK)
    status = ember_loader_dlopen(library, library_size, &out->library, err, errlen);
  free(manifest_path);
  free(library_path);
  free(manifest);
  free(library);
  if (status != EMBER_OK) return status;
  ember_runtime_get_api_fn get_api =
      (ember_runtime_get_api_fn)dlsym(out->library, "ember_runtime_get_api");
  out->api = get_api ? get_api() : NULL;
  if (!out->api || out->api->abi_version != EMBER_ABI_VERSION) {
    status = ember_fail(err, errlen, EMBER_ERROR_ARTIFACT,
                        "%s/model.so does not implement the ember C runtime ABI version %d; "
                        "recompile the model", artifact_dir, EMBER_ABI_VERSION);
  } else {
    status = out->api->model_create_verified(artifact_dir, weights.sha256, &out->model, err,
                                             errlen);
  }
  if (status != EMBER_OK) {
    dlclose(out->library);
    memset(out, 0, sizeof *out);
  }
  return status;
}

/* Destroys the model and unloads the library. */
static inline void ember_unload(ember_artifact *a) {
  if (!a) return;
  if (a->model) a->api->model_destroy(a->model);
  if (a->library) dlclose(a->library);
  memset(a, 0, sizeof *a);
}

#endif /* EMBER_LOADER_H */
