/* Binding the weights: weights.safetensors is read into memory (checked against its sha256 when
 * the loader gives one) and every bound constant of the signature is located in it and checked
 * (dtype, shape, byte range) before its address is used.
 *
 * The file is read, not memory-mapped: the bytes hashed are the bytes used, and a file
 * truncated or rewritten while the model lives cannot fault the process (SIGBUS) or change
 * its constants. It must be a regular file no larger than the bound constants plus the largest
 * header, so a FIFO, a device or a huge file is refused before anything is allocated.
 *
 * The safetensors format: an 8-byte little-endian header length N, N bytes of JSON
 *   {"name": {"dtype": "F32", "shape": [4], "data_offsets": [begin, end]}, ...,
 *    "__metadata__": {"key": "value"}}
 * (offsets relative to the byte after the header), then the data. The JSON is read by the
 * scanner of ember_verify.h (objects, arrays, strings with escapes, integers; any other value
 * is skipped); anything malformed is an error, never a crash.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "ember_signature.h"
#include "ember_verify.h"

enum { MAX_RANK = 64, DATA_ALIGN = 64 };
#define HUGE_PAGE ((size_t)2 << 20)
#define MAX_HEADER (100u << 20) /* the safetensors reference implementation's limit */

typedef struct {
  ember_json json;
  const char *path;
  char *err;
  size_t errlen;
} scanner;

typedef struct {
  char dtype[16];
  int have_dtype, have_shape, have_offsets;
  int32_t rank;
  int64_t shape[MAX_RANK];
  int64_t begin, end;
} entry;

/* One tensor's {"dtype", "shape", "data_offsets"} object; other keys are skipped. */
static int scan_entry(scanner *s, char *key, entry *e) {
  memset(e, 0, sizeof *e);
  if (!ember_json_expect(&s->json, '{')) return 0;
  if (ember_json_expect(&s->json, '}')) return 1;
  do {
    size_t len;
    if (!ember_json_string(&s->json, key, &len) || !ember_json_expect(&s->json, ':')) return 0;
    if (strcmp(key, "dtype") == 0) {
      if (!ember_json_string(&s->json, key, &len)) return 0;
      snprintf(e->dtype, sizeof e->dtype, "%s", key);
      e->have_dtype = 1;
    } else if (strcmp(key, "shape") == 0) {
      if (!ember_json_expect(&s->json, '[')) return 0;
      e->have_shape = 1;
      if (ember_json_expect(&s->json, ']')) continue;
      do {
        if (e->rank == MAX_RANK || !ember_json_uint(&s->json, &e->shape[e->rank++])) return 0;
      } while (ember_json_expect(&s->json, ','));
      if (!ember_json_expect(&s->json, ']')) return 0;
    } else if (strcmp(key, "data_offsets") == 0) {
      ember_json *j = &s->json;
      if (!ember_json_expect(j, '[') || !ember_json_uint(j, &e->begin) ||
          !ember_json_expect(j, ',') || !ember_json_uint(j, &e->end) || !ember_json_expect(j, ']'))
        return 0;
      e->have_offsets = 1;
    } else if (!ember_json_skip(&s->json, 3)) {
      return 0;
    }
  } while (ember_json_expect(&s->json, ','));
  return ember_json_expect(&s->json, '}');
}

static int32_t safetensors_dtype(const char *name) {
  static const char *const names[] = {NULL,  "F32", "F16", "BF16", "F64", "I8",  "I16",
                                      "I32", "I64", "U8",  "U16",  "U32", "U64", "BOOL"};
  for (int32_t i = 1; i < (int32_t)(sizeof names / sizeof names[0]); ++i)
    if (strcmp(names[i], name) == 0) return i;
  return EMBER_DTYPE_INVALID;
}

static void describe_entry(char *buf, size_t len, const entry *e) {
  int n = snprintf(buf, len, "%s[", e->dtype);
  for (int32_t i = 0; i < e->rank && n >= 0 && (size_t)n < len; ++i)
    n += snprintf(buf + n, len - (size_t)n, i ? ", %lld" : "%lld", (long long)e->shape[i]);
  if (n >= 0 && (size_t)n < len) snprintf(buf + n, len - (size_t)n, "]");
}

/* Checks entry `e` against constant `t` and binds it; `base` is the first data byte. */
static int bind_entry(scanner *s, const ember_sig_tensor *t, int32_t index, const entry *e,
                      const char *base, size_t data_size, ember_weights *w, const void **data) {
  char stored[64 + 24 * MAX_RANK];
  describe_entry(stored, sizeof stored, e);
  if (!e->have_dtype || !e->have_shape || !e->have_offsets)
    return ember_fail(s->err, s->errlen, EMBER_ERROR_ARTIFACT,
                      "%s: the entry for constant '%s' lacks dtype, shape or data_offsets",
                      s->path, t->name);
  int same = safetensors_dtype(e->dtype) == t->dtype && e->rank == t->rank;
  for (int32_t d = 0; same && d < t->rank; ++d) same = e->shape[d] == t->dims[d];
  if (!same)
    return ember_fail(s->err, s->errlen, EMBER_ERROR_ARTIFACT,
                      "%s does not match the model: constant '%s' is stored as %s, the model "
                      "expects %s%s",
                      s->path, t->name, stored, ember_dtype_name(t->dtype), t->shape_text);
  int64_t itemsize = ember_dtype_size(t->dtype), bytes = itemsize;
  for (int32_t d = 0; d < t->rank; ++d)
    if (__builtin_mul_overflow(bytes, t->dims[d], &bytes)) bytes = -1;
  if (bytes < 0 || e->begin > e->end || (uint64_t)e->end > data_size || e->end - e->begin != bytes)
    return ember_fail(s->err, s->errlen, EMBER_ERROR_ARTIFACT,
                      "%s: constant '%s' (%s, %lld bytes) has data_offsets [%lld, %lld] outside "
                      "the %llu data bytes or of the wrong length",
                      s->path, t->name, stored, (long long)bytes, (long long)e->begin,
                      (long long)e->end, (unsigned long long)data_size);
  if (data[index])
    return ember_fail(s->err, s->errlen, EMBER_ERROR_ARTIFACT,
                      "%s: constant '%s' appears twice", s->path, t->name);
  const char *p = base + e->begin;
  /* The data lies in this model's own heap copy of the file, so runs may write back to a
   * constant the model changes in place (a buffer updated in forward) right there. */
  if ((uintptr_t)p % (uintptr_t)itemsize != 0) {
    /* The compiled code expects element-aligned data: use an aligned copy. */
    void *copy = NULL;
    if (posix_memalign(&copy, 64, bytes ? (size_t)bytes : 1) != 0)
      return ember_fail(s->err, s->errlen, EMBER_ERROR_MEMORY, "out of memory");
    memcpy(copy, p, (size_t)bytes);
    w->copies[index] = copy;
    p = copy;
  }
  data[index] = p;
  return EMBER_OK;
}

/* The most bytes a weights file of this model can need: 8 + the largest header + the bound
 * constants' data (safetensors stores tensors back to back). */
static int64_t weights_size_limit(const ember_signature *sig) {
  int64_t limit = 8 + (int64_t)MAX_HEADER;
  for (int32_t i = 0; i < sig->num_constants; ++i) {
    const ember_sig_tensor *t = &sig->constants[i];
    int64_t bytes = t->bound ? ember_dtype_size(t->dtype) : 0;
    for (int32_t d = 0; d < t->rank; ++d)
      if (__builtin_mul_overflow(bytes, t->dims[d], &bytes)) return INT64_MAX;
    if (__builtin_add_overflow(limit, bytes, &limit)) return INT64_MAX;
  }
  return limit;
}

/* Reads the file at `path` into w->bytes (its data section DATA_ALIGN-aligned) and checks its
 * sha256 when `sha256` is given. */
static int read_weights(const ember_signature *sig, const char *path, const char *sha256,
                        ember_weights *w, char *err, size_t errlen) {
  int64_t size;
  int status;
  int fd = ember_open_regular(path, weights_size_limit(sig), &size, &status, err, errlen);
  if (fd < 0) return status;
  unsigned char head[8];
  ember_sha256 sha;
  ember_sha256_init(&sha);
  if (size < 8 || ember_read_exact(fd, path, head, 8, &sha, err, errlen)) {
    close(fd);
    if (size < 8)
      return ember_fail(err, errlen, EMBER_ERROR_ARTIFACT,
                        "%s is not a safetensors file (%lld bytes)", path, (long long)size);
    return EMBER_ERROR_ARTIFACT;
  }
  uint64_t header_len = 0;
  for (int i = 7; i >= 0; --i) header_len = (header_len << 8) | head[i];
  if (header_len > (uint64_t)size - 8 || header_len > MAX_HEADER) {
    close(fd);
    return ember_fail(err, errlen, EMBER_ERROR_ARTIFACT,
                      "%s is not a safetensors file (header length %llu, file size %lld)", path,
                      (unsigned long long)header_len, (long long)size);
  }
  /* Place the file so that its data section (after 8 + header_len bytes) is aligned. */
  size_t shift = (DATA_ALIGN - (8 + (size_t)header_len) % DATA_ALIGN) % DATA_ALIGN;
  void *block = NULL;
  size_t total = (size_t)size + shift + 1;
  int huge = total >= HUGE_PAGE;
  if (posix_memalign(&block, huge ? HUGE_PAGE : DATA_ALIGN, total) != 0) {
    close(fd);
    return ember_fail(err, errlen, EMBER_ERROR_MEMORY,
                      "out of memory reading %s (%lld bytes)", path, (long long)size);
  }
#ifdef MADV_HUGEPAGE
  /* Weights are streamed once per call (a batch-1 decode reads every one): on 4 KiB pages
   * every 4 KiB costs a TLB miss. Asked before the read faults the pages in, Linux's
   * transparent huge pages (mode "madvise") back the block with 2 MiB pages. A hint: where
   * it is refused the weights are the same. */
  if (huge) madvise(block, total / HUGE_PAGE * HUGE_PAGE, MADV_HUGEPAGE);
#endif
  w->block = block;
  w->bytes = (unsigned char *)block + shift;
  w->size = (size_t)size;
  memcpy(w->bytes, head, 8);
  status = ember_read_exact(fd, path, w->bytes + 8, size - 8, sha256 ? &sha : NULL, err, errlen);
  close(fd);
  if (status) return status;
  if (sha256) {
    char actual[65];
    ember_sha256_hex(&sha, actual);
    if (strcmp(actual, sha256) != 0)
      return ember_fail(err, errlen, EMBER_ERROR_ARTIFACT,
                        "artifact file %s was modified or corrupted: sha256 is %s, the manifest "
                        "expects %s", path, actual, sha256);
  }
  return EMBER_OK;
}

EMBER_INTERNAL int ember_weights_load(const ember_signature *sig, const char *path,
                                      const char *sha256, ember_weights *w, const void **data,
                                      char *err, size_t errlen) {
  memset(w, 0, sizeof *w);
  w->copies = calloc((size_t)(sig->num_constants > 0 ? sig->num_constants : 1), sizeof(void *));
  if (!w->copies) return ember_fail(err, errlen, EMBER_ERROR_MEMORY, "out of memory");
  int status = read_weights(sig, path, sha256, w, err, errlen);
  if (status) {
    ember_weights_free(sig, w);
    return status;
  }
  const unsigned char *bytes = w->bytes;
  size_t size = w->size;
  uint64_t header_len = 0;
  for (int i = 7; i >= 0; --i) header_len = (header_len << 8) | bytes[i];
  const char *header = (const char *)bytes + 8;
  const char *base = header + header_len;
  size_t data_size = size - 8 - (size_t)header_len;
  char *key = malloc((size_t)header_len + 1);
  if (!key) {
    ember_weights_free(sig, w);
    return ember_fail(err, errlen, EMBER_ERROR_MEMORY, "out of memory");
  }
  scanner s = {{header, header + header_len, 0}, path, err, errlen};
  ember_json *j = &s.json;
  const char *problem = NULL;
  if (!ember_json_expect(j, '{')) {
    problem = "expected '{'";
  } else if (!ember_json_expect(j, '}')) {
    do {
      size_t len;
      if (!ember_json_string(j, key, &len) || !ember_json_expect(j, ':')) {
        problem = "expected a tensor name";
        break;
      }
      int32_t index = -1;
      for (int32_t i = 0; i < sig->num_constants && index < 0; ++i)
        if (sig->constants[i].bound && strcmp(sig->constants[i].name, key) == 0) index = i;
      if (index < 0) { /* __metadata__, or a tensor this model does not bind */
        if (!ember_json_skip(j, 2)) {
          problem = j->too_deep ? "nested too deep" : "malformed value";
          break;
        }
        continue;
      }
      entry e;
      if (!scan_entry(&s, key, &e)) {
        problem = j->too_deep ? "nested too deep" : "malformed tensor entry";
        break;
      }
      status = bind_entry(&s, &sig->constants[index], index, &e, base, data_size, w, data);
      if (status) break;
    } while (ember_json_expect(j, ','));
    if (!problem && status == EMBER_OK && !ember_json_expect(j, '}'))
      problem = "expected ',' or '}'";
  }
  if (!problem && status == EMBER_OK) {
    ember_json_ws(j);
    if (j->p != j->end) problem = "trailing characters";
  }
  if (problem)
    status = ember_fail(err, errlen, EMBER_ERROR_ARTIFACT,
                        "%s: malformed safetensors header: %s at header byte %lld", path,
                        problem, (long long)(j->p - header));
  free(key);
  for (int32_t i = 0; status == EMBER_OK && i < sig->num_constants; ++i)
    if (sig->constants[i].bound && !data[i])
      status = ember_fail(err, errlen, EMBER_ERROR_ARTIFACT,
                          "%s has no array for bound constant '%s'", path,
                          sig->constants[i].name);
  if (status != EMBER_OK) {
    for (int32_t i = 0; i < sig->num_constants; ++i) data[i] = NULL;
    ember_weights_free(sig, w);
  }
  return status;
}

EMBER_INTERNAL void ember_weights_free(const ember_signature *sig, ember_weights *w) {
  if (w->copies) {
    for (int32_t i = 0; i < sig->num_constants; ++i) free(w->copies[i]);
    free(w->copies);
  }
  free(w->block);
  memset(w, 0, sizeof *w);
}
