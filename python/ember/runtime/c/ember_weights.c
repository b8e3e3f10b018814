/* Binding the weights: weights.safetensors is memory-mapped and every bound constant of the
 * signature is located in it and checked (dtype, shape, byte range) before its address is used.
 *
 * The safetensors format: an 8-byte little-endian header length N, N bytes of JSON
 *   {"name": {"dtype": "F32", "shape": [4], "data_offsets": [begin, end]}, ...,
 *    "__metadata__": {"key": "value"}}
 * (offsets relative to the byte after the header), then the data. The JSON is read by a small
 * scanner for exactly this shape of document (objects, arrays, strings with escapes, integers;
 * any other value is skipped); anything malformed is an error, never a crash.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ember_signature.h"

enum { MAX_RANK = 64, MAX_DEPTH = 64 };
#define MAX_HEADER (100u << 20) /* the safetensors reference implementation's limit */

typedef struct {
  const char *p, *end;
  const ember_signature *sig;
  const char *path;
  char *err;
  size_t errlen;
} scanner;

static void skip_ws(scanner *s) {
  while (s->p < s->end && (*s->p == ' ' || *s->p == '\t' || *s->p == '\n' || *s->p == '\r'))
    ++s->p;
}

static int expect(scanner *s, char c) {
  skip_ws(s);
  if (s->p >= s->end || *s->p != c) return 0;
  ++s->p;
  return 1;
}

static int hex4(const char *p, unsigned *out) {
  unsigned v = 0;
  for (int i = 0; i < 4; ++i) {
    char c = p[i];
    v <<= 4;
    if (c >= '0' && c <= '9') v |= (unsigned)(c - '0');
    else if (c >= 'a' && c <= 'f') v |= (unsigned)(c - 'a' + 10);
    else if (c >= 'A' && c <= 'F') v |= (unsigned)(c - 'A' + 10);
    else return 0;
  }
  *out = v;
  return 1;
}

static size_t put_utf8(char *out, unsigned cp) {
  if (cp < 0x80) {
    out[0] = (char)cp;
    return 1;
  }
  if (cp < 0x800) {
    out[0] = (char)(0xC0 | (cp >> 6));
    out[1] = (char)(0x80 | (cp & 0x3F));
    return 2;
  }
  if (cp < 0x10000) {
    out[0] = (char)(0xE0 | (cp >> 12));
    out[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
    out[2] = (char)(0x80 | (cp & 0x3F));
    return 3;
  }
  out[0] = (char)(0xF0 | (cp >> 18));
  out[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
  out[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
  out[3] = (char)(0x80 | (cp & 0x3F));
  return 4;
}

/* A JSON string, decoded into `out` (room for the raw length + 1; NULL: skip). Returns 0 on a
 * malformed string. Decoded text is never longer than its escaped form. */
static int scan_string(scanner *s, char *out, size_t *len) {
  skip_ws(s);
  if (s->p >= s->end || *s->p != '"') return 0;
  ++s->p;
  size_t n = 0;
  while (s->p < s->end && *s->p != '"') {
    char c = *s->p++;
    if ((unsigned char)c < 0x20) return 0;
    if (c != '\\') {
      if (out) out[n] = c;
      ++n;
      continue;
    }
    if (s->p >= s->end) return 0;
    char e = *s->p++;
    unsigned cp;
    switch (e) {
      case '"': case '\\': case '/': c = e; break;
      case 'b': c = '\b'; break;
      case 'f': c = '\f'; break;
      case 'n': c = '\n'; break;
      case 'r': c = '\r'; break;
      case 't': c = '\t'; break;
      case 'u':
        if (s->end - s->p < 4 || !hex4(s->p, &cp)) return 0;
        s->p += 4;
        if (cp >= 0xD800 && cp < 0xDC00) { /* a surrogate pair */
          unsigned lo;
          if (s->end - s->p < 6 || s->p[0] != '\\' || s->p[1] != 'u' || !hex4(s->p + 2, &lo) ||
              lo < 0xDC00 || lo > 0xDFFF)
            return 0;
          s->p += 6;
          cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
        } else if (cp >= 0xDC00 && cp < 0xE000) {
          return 0;
        }
        if (out) {
          n += put_utf8(out + n, cp);
        } else {
          char tmp[4];
          n += put_utf8(tmp, cp);
        }
        continue;
      default: return 0;
    }
    if (out) out[n] = c;
    ++n;
  }
  if (s->p >= s->end) return 0;
  ++s->p; /* the closing quote */
  if (out) out[n] = '\0';
  if (len) *len = n;
  return 1;
}

/* A non-negative JSON integer. */
static int scan_uint(scanner *s, int64_t *out) {
  skip_ws(s);
  int64_t v = 0;
  const char *start = s->p;
  while (s->p < s->end && *s->p >= '0' && *s->p <= '9') {
    if (__builtin_mul_overflow(v, 10, &v) || __builtin_add_overflow(v, *s->p - '0', &v))
      return 0;
    ++s->p;
  }
  if (s->p == start) return 0;
  if (s->p < s->end && (*s->p == '.' || *s->p == 'e' || *s->p == 'E')) return 0;
  *out = v;
  return 1;
}

/* Skips any JSON value. */
static int skip_value(scanner *s, int depth) {
  if (depth > MAX_DEPTH) return 0;
  skip_ws(s);
  if (s->p >= s->end) return 0;
  char c = *s->p;
  if (c == '"') return scan_string(s, NULL, NULL);
  if (c == '{' || c == '[') {
    char close = c == '{' ? '}' : ']';
    ++s->p;
    if (expect(s, close)) return 1;
    do {
      if (c == '{' && (!scan_string(s, NULL, NULL) || !expect(s, ':'))) return 0;
      if (!skip_value(s, depth + 1)) return 0;
    } while (expect(s, ','));
    return expect(s, close);
  }
  /* numbers, true, false, null */
  const char *start = s->p;
  while (s->p < s->end && strchr("+-.0123456789eEtruefalsn", *s->p)) ++s->p;
  return s->p > start;
}

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
  if (!expect(s, '{')) return 0;
  if (expect(s, '}')) return 1;
  do {
    size_t len;
    if (!scan_string(s, key, &len) || !expect(s, ':')) return 0;
    if (strcmp(key, "dtype") == 0) {
      if (!scan_string(s, key, &len)) return 0;
      snprintf(e->dtype, sizeof e->dtype, "%s", key);
      e->have_dtype = 1;
    } else if (strcmp(key, "shape") == 0) {
      if (!expect(s, '[')) return 0;
      e->have_shape = 1;
      if (expect(s, ']')) continue;
      do {
        if (e->rank == MAX_RANK || !scan_uint(s, &e->shape[e->rank++])) return 0;
      } while (expect(s, ','));
      if (!expect(s, ']')) return 0;
    } else if (strcmp(key, "data_offsets") == 0) {
      if (!expect(s, '[') || !scan_uint(s, &e->begin) || !expect(s, ',') ||
          !scan_uint(s, &e->end) || !expect(s, ']'))
        return 0;
      e->have_offsets = 1;
    } else if (!skip_value(s, 1)) {
      return 0;
    }
  } while (expect(s, ','));
  return expect(s, '}');
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
  if ((uintptr_t)p % (uintptr_t)itemsize != 0 || ember_written_back(s->sig, index)) {
    /* The compiled code expects element-aligned data, and the runs write back to a constant
     * the model changes in place (the map is read-only): use an aligned, private copy. */
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

EMBER_INTERNAL int ember_weights_load(const ember_signature *sig, const char *path,
                                      ember_weights *w, const void **data, char *err,
                                      size_t errlen) {
  memset(w, 0, sizeof *w);
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return ember_fail(err, errlen, EMBER_ERROR_ARTIFACT, "cannot open %s: %s", path,
                      strerror(errno));
  struct stat st;
  if (fstat(fd, &st) != 0) {
    int e = errno;
    close(fd);
    return ember_fail(err, errlen, EMBER_ERROR_ARTIFACT, "cannot stat %s: %s", path,
                      strerror(e));
  }
  size_t size = (size_t)st.st_size;
  if (st.st_size < 8) {
    close(fd);
    return ember_fail(err, errlen, EMBER_ERROR_ARTIFACT,
                      "%s is not a safetensors file (%lld bytes)", path, (long long)st.st_size);
  }
  int flags = MAP_PRIVATE;
#ifdef MAP_POPULATE
  flags |= MAP_POPULATE; /* read the weights now, not during the first run */
#endif
  void *map = mmap(NULL, size, PROT_READ, flags, fd, 0);
  int map_errno = errno;
  close(fd);
  if (map == MAP_FAILED)
    return ember_fail(err, errlen, EMBER_ERROR_ARTIFACT, "cannot map %s: %s", path,
                      strerror(map_errno));
  w->map = map;
  w->map_size = size;
  w->copies = calloc((size_t)(sig->num_constants > 0 ? sig->num_constants : 1), sizeof(void *));
  if (!w->copies) {
    ember_weights_free(sig, w);
    return ember_fail(err, errlen, EMBER_ERROR_MEMORY, "out of memory");
  }

  const unsigned char *bytes = map;
  uint64_t header_len = 0;
  for (int i = 7; i >= 0; --i) header_len = (header_len << 8) | bytes[i];
  if (header_len > size - 8 || header_len > MAX_HEADER) {
    ember_weights_free(sig, w);
    return ember_fail(err, errlen, EMBER_ERROR_ARTIFACT,
                      "%s is not a safetensors file (header length %llu, file size %zu)", path,
                      (unsigned long long)header_len, size);
  }
  const char *header = (const char *)bytes + 8;
  const char *base = header + header_len;
  size_t data_size = size - 8 - (size_t)header_len;
  char *key = malloc((size_t)header_len + 1);
  if (!key) {
    ember_weights_free(sig, w);
    return ember_fail(err, errlen, EMBER_ERROR_MEMORY, "out of memory");
  }
  scanner s = {header, header + header_len, sig, path, err, errlen};
  int status = EMBER_OK;
  const char *problem = NULL;
  if (!expect(&s, '{')) {
    problem = "expected '{'";
  } else if (!expect(&s, '}')) {
    do {
      size_t len;
      if (!scan_string(&s, key, &len) || !expect(&s, ':')) {
        problem = "expected a tensor name";
        break;
      }
      int32_t index = -1;
      for (int32_t i = 0; i < sig->num_constants && index < 0; ++i)
        if (sig->constants[i].bound && strcmp(sig->constants[i].name, key) == 0) index = i;
      if (index < 0) { /* __metadata__, or a tensor this model does not bind */
        if (!skip_value(&s, 1)) {
          problem = "malformed value";
          break;
        }
        continue;
      }
      entry e;
      if (!scan_entry(&s, key, &e)) {
        problem = "malformed tensor entry";
        break;
      }
      status = bind_entry(&s, &sig->constants[index], index, &e, base, data_size, w, data);
      if (status) break;
    } while (expect(&s, ','));
    if (!problem && status == EMBER_OK && !expect(&s, '}')) problem = "expected ',' or '}'";
  }
  if (!problem && status == EMBER_OK) {
    skip_ws(&s);
    if (s.p != s.end) problem = "trailing characters";
  }
  if (problem)
    status = ember_fail(err, errlen, EMBER_ERROR_ARTIFACT,
                        "%s: malformed safetensors header: %s at header byte %lld", path,
                        problem, (long long)(s.p - header));
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
  if (w->map) munmap(w->map, w->map_size);
  memset(w, 0, sizeof *w);
}
