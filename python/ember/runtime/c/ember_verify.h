/* Reading untrusted artifact files: helpers shared by the runtime (compiled into model.so, where
 * it reads weights.safetensors) and the loader (ember_loader.h, compiled into the program that
 * loads model.so, where it reads manifest.json and model.so before anything of the library
 * runs). Everything is `static inline`, so each side carries its own copy and nothing here is
 * exported.
 *
 *  - ember_open_regular: opens a file only when it is a regular file of at most a given size:
 *    a FIFO, a device (a link to /dev/zero) or an absurd size is refused before a byte is read,
 *    so reading never hangs, never runs out of memory and never reads forever.
 *  - ember_read_exact: reads exactly the stat'ed size into memory (hashing it on the way): the
 *    bytes that are checked are the bytes that are used, and a file truncated while in use
 *    cannot fault later (nothing is memory-mapped).
 *  - SHA-256 (FIPS 180-4), and a JSON scanner for small, fixed document shapes with a nesting
 *    limit, so deep input is refused instead of exhausting the stack.
 *
 * Not part of the public API; ember_loader.h includes it.
 */
#ifndef EMBER_VERIFY_H
#define EMBER_VERIFY_H

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#ifndef O_CLOEXEC
#define O_CLOEXEC 0
#endif

/* JSON containers may nest this deep (the top-level object is level 1); the Python loader
 * (ember.artifact.store.MAX_JSON_DEPTH) has the same limit. */
#define EMBER_MAX_JSON_DEPTH 64

/* Writes a message to err (NUL-terminated, truncated to errlen) and returns status. */
static inline int ember_fail(char *err, size_t errlen, int status, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static inline int ember_fail(char *err, size_t errlen, int status, const char *fmt, ...) {
  if (err && errlen) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
  }
  return status;
}

/* -- files ------------------------------------------------------------------------------------ */

/* Opens `path` for reading if it is a regular file of at most `limit` bytes (a symbolic link
 * is followed, so a link to a regular file is fine and one to a device is not). The type is
 * checked before opening, so no FIFO or device is ever opened, and again on the open file
 * (O_NONBLOCK: a FIFO swapped in between cannot block the open). Returns the descriptor and
 * sets *size, or returns -1 with *status set and a message in err. */
static inline int ember_open_regular(const char *path, int64_t limit, int64_t *size,
                                     int *status, char *err, size_t errlen) {
  struct stat before, st;
  *status = 5; /* EMBER_ERROR_ARTIFACT */
  if (stat(path, &before) != 0) {
    ember_fail(err, errlen, *status, "cannot open %s: %s", path, strerror(errno));
    return -1;
  }
  if (!S_ISREG(before.st_mode)) {
    ember_fail(err, errlen, *status, "%s is not a regular file (a FIFO, device, socket or "
               "directory); refusing to read it", path);
    return -1;
  }
  if (before.st_size > limit) {
    ember_fail(err, errlen, *status, "%s has %lld bytes, more than the %lld this file of an "
               "artifact may have; refusing to read it", path, (long long)before.st_size,
               (long long)limit);
    return -1;
  }
  int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) {
    ember_fail(err, errlen, *status, "cannot open %s: %s", path, strerror(errno));
    return -1;
  }
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_ino != before.st_ino ||
      st.st_dev != before.st_dev || st.st_size > limit) {
    close(fd);
    ember_fail(err, errlen, *status, "%s changed while being opened; refusing to read it", path);
    return -1;
  }
  *size = (int64_t)st.st_size;
  return fd;
}

/* -- SHA-256 ---------------------------------------------------------------------------------- */

typedef struct ember_sha256 {
  uint32_t h[8];
  uint64_t length;
  unsigned char block[64];
  size_t fill;
} ember_sha256;

static inline uint32_t ember_sha256_ror(uint32_t x, int n) { return (x >> n) | (x << (32 - n)); }

static const uint32_t ember_sha256_k[64] = {
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4,
    0xab1c5ed5, 0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe,
    0x9bdc06a7, 0xc19bf174, 0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f,
    0x4a7484aa, 0x5cb0a9dc, 0x76f988da, 0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7,
    0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967, 0x27b70a85, 0x2e1b2138, 0x4d2c6dfc,
    0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85, 0xa2bfe8a1, 0xa81a664b,
    0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070, 0x19a4c116,
    0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7,
    0xc67178f2};

static inline void ember_sha256_block(uint32_t *state, const unsigned char *p) {
  const uint32_t *k = ember_sha256_k;
  uint32_t w[64];
  for (int i = 0; i < 16; ++i)
    w[i] = (uint32_t)p[4 * i] << 24 | (uint32_t)p[4 * i + 1] << 16 |
           (uint32_t)p[4 * i + 2] << 8 | (uint32_t)p[4 * i + 3];
  for (int i = 16; i < 64; ++i) {
    uint32_t s0 = ember_sha256_ror(w[i - 15], 7) ^ ember_sha256_ror(w[i - 15], 18) ^
                  (w[i - 15] >> 3);
    uint32_t s1 = ember_sha256_ror(w[i - 2], 17) ^ ember_sha256_ror(w[i - 2], 19) ^
                  (w[i - 2] >> 10);
    w[i] = w[i - 16] + s0 + w[i - 7] + s1;
  }
  uint32_t a = state[0], b = state[1], c = state[2], d = state[3], e = state[4], f = state[5],
           g = state[6], h = state[7];
  for (int i = 0; i < 64; ++i) {
    uint32_t t1 = h + (ember_sha256_ror(e, 6) ^ ember_sha256_ror(e, 11) ^
                       ember_sha256_ror(e, 25)) + ((e & f) ^ (~e & g)) + k[i] + w[i];
    uint32_t t2 = (ember_sha256_ror(a, 2) ^ ember_sha256_ror(a, 13) ^ ember_sha256_ror(a, 22)) +
                  ((a & b) ^ (a & c) ^ (b & c));
    h = g, g = f, f = e, e = d + t1, d = c, c = b, b = a, a = t1 + t2;
  }
  state[0] += a, state[1] += b, state[2] += c, state[3] += d;
  state[4] += e, state[5] += f, state[6] += g, state[7] += h;
}

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>
#define EMBER_SHA_NI 1
/* The same compression with the x86 SHA extensions (several times faster: the weights of a
 * large model are hashed on every load). State layout as in Intel's reference code. */
__attribute__((target("sha,sse4.1"))) static inline void ember_sha256_blocks_ni(
    uint32_t *state, const unsigned char *p, size_t blocks) {
  const __m128i bswap = _mm_set_epi64x(0x0c0d0e0f08090a0bLL, 0x0405060700010203LL);
  __m128i tmp = _mm_shuffle_epi32(_mm_loadu_si128((const __m128i *)&state[0]), 0xB1);
  __m128i cdgh = _mm_shuffle_epi32(_mm_loadu_si128((const __m128i *)&state[4]), 0x1B);
  __m128i abef = _mm_alignr_epi8(tmp, cdgh, 8);
  cdgh = _mm_blend_epi16(cdgh, tmp, 0xF0);
  for (; blocks; --blocks, p += 64) {
    __m128i abef_in = abef, cdgh_in = cdgh, msg[4];
    for (int i = 0; i < 4; ++i)
      msg[i] = _mm_shuffle_epi8(_mm_loadu_si128((const __m128i *)(p + 16 * i)), bswap);
    for (int r = 0; r < 16; ++r) { /* rounds 4r .. 4r+3 */
      __m128i w = _mm_add_epi32(msg[r & 3],
                                _mm_loadu_si128((const __m128i *)&ember_sha256_k[4 * r]));
      cdgh = _mm_sha256rnds2_epu32(cdgh, abef, w);
      if (r < 12) { /* the message words of rounds 4r+16 .. 4r+19 */
        __m128i t = _mm_sha256msg1_epu32(msg[r & 3], msg[(r + 1) & 3]);
        t = _mm_add_epi32(t, _mm_alignr_epi8(msg[(r + 3) & 3], msg[(r + 2) & 3], 4));
        msg[r & 3] = _mm_sha256msg2_epu32(t, msg[(r + 3) & 3]);
      }
      abef = _mm_sha256rnds2_epu32(abef, cdgh, _mm_shuffle_epi32(w, 0x0E));
    }
    abef = _mm_add_epi32(abef, abef_in);
    cdgh = _mm_add_epi32(cdgh, cdgh_in);
  }
  tmp = _mm_shuffle_epi32(abef, 0x1B);
  cdgh = _mm_shuffle_epi32(cdgh, 0xB1);
  _mm_storeu_si128((__m128i *)&state[0], _mm_blend_epi16(tmp, cdgh, 0xF0));
  _mm_storeu_si128((__m128i *)&state[4], _mm_alignr_epi8(cdgh, tmp, 8));
}
#endif

static inline void ember_sha256_blocks(uint32_t *state, const unsigned char *p, size_t blocks) {
#ifdef EMBER_SHA_NI
  if (__builtin_cpu_supports("sha")) {
    ember_sha256_blocks_ni(state, p, blocks);
    return;
  }
#endif
  for (; blocks; --blocks, p += 64) ember_sha256_block(state, p);
}

static inline void ember_sha256_init(ember_sha256 *s) {
  static const uint32_t h0[8] = {0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
                                 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19};
  memcpy(s->h, h0, sizeof h0);
  s->length = 0;
  s->fill = 0;
}

static inline void ember_sha256_update(ember_sha256 *s, const void *data, size_t n) {
  const unsigned char *p = data;
  s->length += n;
  if (s->fill) {
    size_t take = 64 - s->fill < n ? 64 - s->fill : n;
    memcpy(s->block + s->fill, p, take);
    s->fill += take, p += take, n -= take;
    if (s->fill < 64) return;
    ember_sha256_blocks(s->h, s->block, 1);
    s->fill = 0;
  }
  ember_sha256_blocks(s->h, p, n / 64);
  p += n / 64 * 64;
  n %= 64;
  memcpy(s->block, p, n);
  s->fill = n;
}

/* The digest as 64 lowercase hex digits and a NUL. */
static inline void ember_sha256_hex(ember_sha256 *s, char hex[65]) {
  uint64_t bits = s->length * 8;
  unsigned char pad[72] = {0x80};
  size_t padlen = (s->fill < 56 ? 56 : 120) - s->fill;
  for (int i = 0; i < 8; ++i) pad[padlen + (size_t)i] = (unsigned char)(bits >> (56 - 8 * i));
  ember_sha256_update(s, pad, padlen + 8);
  for (int i = 0; i < 32; ++i)
    snprintf(hex + 2 * i, 3, "%02x", (unsigned)(s->h[i / 4] >> (24 - 8 * (i % 4))) & 0xFFu);
}

/* Reads exactly `size` bytes of `fd` into buf, hashing them into sha (when not NULL). */
static inline int ember_read_exact(int fd, const char *path, void *buf, int64_t size,
                                   ember_sha256 *sha, char *err, size_t errlen) {
  unsigned char *p = buf;
  int64_t done = 0;
  while (done < size) {
    size_t want = size - done > (1 << 24) ? (size_t)1 << 24 : (size_t)(size - done);
    ssize_t got = read(fd, p + done, want);
    if (got < 0 && errno == EINTR) continue;
    if (got <= 0)
      return ember_fail(err, errlen, 5, "cannot read %s: %s", path,
                        got < 0 ? strerror(errno) : "the file was truncated while being read");
    if (sha) ember_sha256_update(sha, p + done, (size_t)got);
    done += got;
  }
  return 0;
}

/* -- JSON ------------------------------------------------------------------------------------- */

/* A scanner over one JSON document: objects, arrays, strings with escapes, non-negative
 * integers; other values are skipped. Anything malformed is an error, never a crash. */
typedef struct ember_json {
  const char *p, *end;
  int too_deep; /* set when a value nested deeper than EMBER_MAX_JSON_DEPTH was refused */
} ember_json;

static inline void ember_json_ws(ember_json *s) {
  while (s->p < s->end && (*s->p == ' ' || *s->p == '\t' || *s->p == '\n' || *s->p == '\r'))
    ++s->p;
}

static inline int ember_json_expect(ember_json *s, char c) {
  ember_json_ws(s);
  if (s->p >= s->end || *s->p != c) return 0;
  ++s->p;
  return 1;
}

static inline int ember_json_hex4(const char *p, unsigned *out) {
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

static inline size_t ember_json_utf8(char *out, unsigned cp) {
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
static inline int ember_json_string(ember_json *s, char *out, size_t *len) {
  ember_json_ws(s);
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
        if (s->end - s->p < 4 || !ember_json_hex4(s->p, &cp)) return 0;
        s->p += 4;
        if (cp >= 0xD800 && cp < 0xDC00) { /* a surrogate pair */
          unsigned lo;
          if (s->end - s->p < 6 || s->p[0] != '\\' || s->p[1] != 'u' ||
              !ember_json_hex4(s->p + 2, &lo) || lo < 0xDC00 || lo > 0xDFFF)
            return 0;
          s->p += 6;
          cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
        } else if (cp >= 0xDC00 && cp < 0xE000) {
          return 0;
        }
        if (out) {
          n += ember_json_utf8(out + n, cp);
        } else {
          char tmp[4];
          n += ember_json_utf8(tmp, cp);
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
static inline int ember_json_uint(ember_json *s, int64_t *out) {
  ember_json_ws(s);
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

/* Skips any JSON value found at nesting level `depth` (a container there is level `depth`). */
static inline int ember_json_skip(ember_json *s, int depth) {
  ember_json_ws(s);
  if (s->p >= s->end) return 0;
  char c = *s->p;
  if (c == '"') return ember_json_string(s, NULL, NULL);
  if (c == '{' || c == '[') {
    if (depth > EMBER_MAX_JSON_DEPTH) {
      s->too_deep = 1;
      return 0;
    }
    char close = c == '{' ? '}' : ']';
    ++s->p;
    if (ember_json_expect(s, close)) return 1;
    do {
      if (c == '{' && (!ember_json_string(s, NULL, NULL) || !ember_json_expect(s, ':')))
        return 0;
      if (!ember_json_skip(s, depth + 1)) return 0;
    } while (ember_json_expect(s, ','));
    return ember_json_expect(s, close);
  }
  /* numbers, true, false, null */
  const char *start = s->p;
  while (s->p < s->end && *s->p && strchr("+-.0123456789eEtruefalsn", *s->p)) ++s->p;
  return s->p > start;
}

#endif /* EMBER_VERIFY_H */
