/*
 * @tw/erasure-isal: a small N-API addon over Intel ISA-L's erasure-code API.
 *
 * One coding primitive, `run`, covers encode, reconstruct and repair: given k surviving
 * fragments (their indexes and bytes) it computes any other fragments of the stripe. The code
 * is systematic Reed-Solomon over GF(2^8) (polynomial 0x11d) with ISA-L's Cauchy generator
 * (gf_gen_cauchy1_matrix): rows 0..k-1 are the identity, rows k..k+m-1 are 1 / (i ^ j), so
 * every k x k submatrix is invertible and any k fragments rebuild the rest. The byte work
 * (ec_encode_data, SIMD) runs on libuv's thread pool, never on the event loop.
 *
 * Loading: libisal exports `gf_mul`, and so does the node binary (OpenSSL's curve448, another
 * signature). libisal's own gf_inv / gf_invert_matrix call gf_mul through the PLT, so this
 * addon must be loaded with RTLD_DEEPBIND (binding.ts does) or they would call node's and
 * crash. The addon itself uses its own GF multiply (tw_gf_mul) for the small matrix products
 * and checks libisal's answers against it in `selfTest`.
 *
 * Errors: synchronous argument errors are thrown, asynchronous ones are passed to the
 * callback; both are Errors whose `code` is one of ISAL_BAD_ARGUMENT, ISAL_SINGULAR,
 * ISAL_NO_MEMORY, ISAL_CANCELLED. binding.ts maps them to coded TwErrors.
 */
#define NAPI_VERSION 8
#include <node_api.h>
#include <isa-l/erasure_code.h>

#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TW_K_MAX 32
#define TW_M_MAX 32
#define TW_N_MAX (TW_K_MAX + TW_M_MAX)
/* ec_encode_data takes an int length: larger fragments are coded in chunks of this size. */
#define TW_CHUNK_BYTES ((size_t)1 << 30)

#define CODE_BAD_ARGUMENT "ISAL_BAD_ARGUMENT"
#define CODE_SINGULAR "ISAL_SINGULAR"
#define CODE_NO_MEMORY "ISAL_NO_MEMORY"
#define CODE_CANCELLED "ISAL_CANCELLED"

/* Tags the codec externals so that a foreign external is refused, not dereferenced. */
static const napi_type_tag CODEC_TAG = {0x74776973616c3031ULL, 0x636f646563746167ULL};

typedef struct {
  int k;
  int m;
  /* (k + m) x k generator, row-major; rows 0..k-1 are the identity. */
  unsigned char matrix[TW_N_MAX * TW_K_MAX];
  /* ec_init_tables of the parity rows: 32 * k * m bytes. */
  unsigned char *encode_tables;
} tw_codec;

typedef struct {
  napi_async_work work;
  napi_ref callback;
  napi_ref codec_ref;
  napi_ref refs[TW_N_MAX + TW_K_MAX];
  int ref_count;
  const tw_codec *codec;
  int out_count;
  unsigned char src_index[TW_K_MAX];
  unsigned char out_index[TW_N_MAX];
  unsigned char *src[TW_K_MAX];
  unsigned char *out[TW_N_MAX];
  size_t len;
  const char *error_code;
  char error_message[160];
} tw_job;

/* ---- GF(2^8), polynomial 0x11d (ISA-L's), for the small k x k matrix products ---- */

static unsigned char gf_log_table[256];
static unsigned char gf_exp_table[512];

static void tw_gf_init(void) {
  unsigned int x = 1;
  for (int i = 0; i < 255; i++) {
    gf_exp_table[i] = (unsigned char)x;
    gf_exp_table[i + 255] = (unsigned char)x;
    gf_log_table[x] = (unsigned char)i;
    x <<= 1;
    if (x & 0x100) x ^= 0x11d;
  }
  gf_exp_table[510] = gf_exp_table[0];
  gf_exp_table[511] = gf_exp_table[1];
}

static unsigned char tw_gf_mul(unsigned char a, unsigned char b) {
  if (a == 0 || b == 0) return 0;
  return gf_exp_table[gf_log_table[a] + gf_log_table[b]];
}

static unsigned char tw_gf_inv(unsigned char a) {
  if (a == 0) return 0;
  return gf_exp_table[255 - gf_log_table[a]];
}

/* out (rows x k) = a (rows x k) * b (k x k). */
static void tw_gf_mat_mul(const unsigned char *a, const unsigned char *b, unsigned char *out, int rows, int k) {
  for (int r = 0; r < rows; r++) {
    for (int j = 0; j < k; j++) {
      unsigned char acc = 0;
      for (int l = 0; l < k; l++) acc ^= tw_gf_mul(a[r * k + l], b[l * k + j]);
      out[r * k + j] = acc;
    }
  }
}

/* ---- N-API helpers ---- */

static napi_value throw_coded(napi_env env, const char *code, const char *message) {
  napi_throw_error(env, code, message);
  return NULL;
}

#define NAPI_OK(call)                                                        \
  do {                                                                       \
    if ((call) != napi_ok) return throw_coded(env, CODE_BAD_ARGUMENT, #call); \
  } while (0)

static int get_int(napi_env env, napi_value v, int64_t *out) {
  napi_valuetype t;
  double d;
  if (napi_typeof(env, v, &t) != napi_ok || t != napi_number) return 0;
  if (napi_get_value_double(env, v, &d) != napi_ok) return 0;
  if (d != d || d < -9007199254740991.0 || d > 9007199254740991.0 || (double)(int64_t)d != d) return 0;
  *out = (int64_t)d;
  return 1;
}

/* Reads an array of exactly `want` (or 1..want_max when want < 0) distinct indexes in 0..n-1. */
static int get_indexes(napi_env env, napi_value arr, int want, int want_max, int n, unsigned char *out, uint32_t *count, char *why, size_t why_len) {
  bool is_array;
  uint32_t len;
  if (napi_is_array(env, arr, &is_array) != napi_ok || !is_array) {
    snprintf(why, why_len, "indexes must be an array");
    return 0;
  }
  napi_get_array_length(env, arr, &len);
  if ((want >= 0 && len != (uint32_t)want) || (want < 0 && (len < 1 || len > (uint32_t)want_max))) {
    snprintf(why, why_len, "expected %d indexes, got %u", want >= 0 ? want : want_max, len);
    return 0;
  }
  uint64_t seen = 0;
  for (uint32_t i = 0; i < len; i++) {
    napi_value v;
    int64_t x;
    if (napi_get_element(env, arr, i, &v) != napi_ok || !get_int(env, v, &x) || x < 0 || x >= n) {
      snprintf(why, why_len, "index %u is not an integer in 0..%d", i, n - 1);
      return 0;
    }
    if (seen & (1ULL << x)) {
      snprintf(why, why_len, "index %lld appears twice", (long long)x);
      return 0;
    }
    seen |= 1ULL << x;
    out[i] = (unsigned char)x;
  }
  *count = len;
  return 1;
}

/* Reads `count` Uint8Arrays of `*len` bytes (the first one sets *len when it is 0). */
static int get_buffers(napi_env env, napi_value arr, uint32_t count, unsigned char **out, napi_value *values, size_t *len, char *why, size_t why_len) {
  bool is_array;
  uint32_t n;
  if (napi_is_array(env, arr, &is_array) != napi_ok || !is_array) {
    snprintf(why, why_len, "buffers must be an array");
    return 0;
  }
  napi_get_array_length(env, arr, &n);
  if (n != count) {
    snprintf(why, why_len, "expected %u buffers, got %u", count, n);
    return 0;
  }
  for (uint32_t i = 0; i < n; i++) {
    napi_value v;
    bool is_typed;
    napi_typedarray_type type;
    size_t length;
    void *data;
    if (napi_get_element(env, arr, i, &v) != napi_ok || napi_is_typedarray(env, v, &is_typed) != napi_ok || !is_typed) {
      snprintf(why, why_len, "buffer %u is not a Uint8Array", i);
      return 0;
    }
    if (napi_get_typedarray_info(env, v, &type, &length, &data, NULL, NULL) != napi_ok || type != napi_uint8_array) {
      snprintf(why, why_len, "buffer %u is not a Uint8Array", i);
      return 0;
    }
    if (length == 0 || data == NULL) {
      snprintf(why, why_len, "buffer %u is empty", i);
      return 0;
    }
    if (*len == 0) *len = length;
    if (length != *len) {
      snprintf(why, why_len, "buffer %u has %zu bytes, expected %zu", i, length, *len);
      return 0;
    }
    out[i] = (unsigned char *)data;
    values[i] = v;
  }
  return 1;
}

static int overlaps(const unsigned char *a, const unsigned char *b, size_t len) {
  return a < b + len && b < a + len;
}

/* ---- codec ---- */

static void codec_finalize(napi_env env, void *data, void *hint) {
  (void)env;
  (void)hint;
  tw_codec *c = data;
  free(c->encode_tables);
  free(c);
}

static tw_codec *get_codec(napi_env env, napi_value v) {
  napi_valuetype t;
  bool tagged = false;
  void *data = NULL;
  if (napi_typeof(env, v, &t) != napi_ok || t != napi_external) return NULL;
  if (napi_check_object_type_tag(env, v, &CODEC_TAG, &tagged) != napi_ok || !tagged) return NULL;
  if (napi_get_value_external(env, v, &data) != napi_ok) return NULL;
  return data;
}

/* create(k, m): a codec (an opaque external) for RS(k, m). */
static napi_value create_codec(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  int64_t k, m;
  NAPI_OK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc != 2 || !get_int(env, argv[0], &k) || !get_int(env, argv[1], &m) || k < 1 || k > TW_K_MAX || m < 1 || m > TW_M_MAX) {
    return throw_coded(env, CODE_BAD_ARGUMENT, "create(k, m) needs integers k in 1..32 and m in 1..32");
  }
  tw_codec *c = calloc(1, sizeof *c);
  if (c == NULL) return throw_coded(env, CODE_NO_MEMORY, "cannot allocate a codec");
  c->k = (int)k;
  c->m = (int)m;
  c->encode_tables = malloc((size_t)32 * k * m);
  if (c->encode_tables == NULL) {
    free(c);
    return throw_coded(env, CODE_NO_MEMORY, "cannot allocate encode tables");
  }
  gf_gen_cauchy1_matrix(c->matrix, c->k + c->m, c->k);
  ec_init_tables(c->k, c->m, c->matrix + c->k * c->k, c->encode_tables);
  napi_value external;
  if (napi_create_external(env, c, codec_finalize, NULL, &external) != napi_ok) {
    codec_finalize(env, c, NULL);
    return throw_coded(env, CODE_NO_MEMORY, "cannot create the codec object");
  }
  NAPI_OK(napi_type_tag_object(env, external, &CODEC_TAG));
  return external;
}

/* matrix(codec): the (k + m) x k generator matrix, for tests and docs. */
static napi_value codec_matrix(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1], out;
  void *data;
  NAPI_OK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  tw_codec *c = argc == 1 ? get_codec(env, argv[0]) : NULL;
  if (c == NULL) return throw_coded(env, CODE_BAD_ARGUMENT, "matrix(codec) needs a codec from create()");
  size_t bytes = (size_t)(c->k + c->m) * c->k;
  NAPI_OK(napi_create_buffer_copy(env, bytes, c->matrix, &data, &out));
  return out;
}

/* ---- buffer pool ----
 *
 * Fresh memory costs a page fault per 4 KiB on first touch, and glibc serves every allocation
 * at or above its mmap threshold with a fresh mmap (a same-size free raises the threshold only
 * to that size, so equal sizes keep being mmapped). On a VM those faults cost more than coding
 * the bytes. `alloc` hands out external Buffers whose memory returns here when V8 collects the
 * ArrayBuffer (after the last view of it is gone), so the next one reuses faulted-in pages.
 * Free blocks are kept up to `pool_max_bytes` in all; the pool is shared by every env. Blocks
 * handed out are reported to V8 as external memory, so that it collects dropped buffers (and
 * returns their blocks here) soon rather than when the JS heap next fills: measured, that
 * turned ~95 % of allocations into pool hits instead of ~40 %.
 */

#define POOL_SLOTS 64

typedef struct {
  void *data;
  size_t capacity;
} pool_block;

static pthread_mutex_t pool_lock = PTHREAD_MUTEX_INITIALIZER;
static pool_block pool_free[POOL_SLOTS];
static int pool_count = 0;
static size_t pool_bytes = 0;
static size_t pool_max_bytes = (size_t)256 << 20;
static uint64_t pool_hits = 0, pool_misses = 0;

/* A free block of at least `bytes` and at most 5/4 of it (best fit), or NULL. */
static void *pool_take(size_t bytes, size_t *capacity) {
  void *data = NULL;
  pthread_mutex_lock(&pool_lock);
  int best = -1;
  for (int i = 0; i < pool_count; i++) {
    size_t c = pool_free[i].capacity;
    if (c >= bytes && c - bytes <= bytes / 4 && (best < 0 || c < pool_free[best].capacity)) best = i;
  }
  if (best >= 0) {
    data = pool_free[best].data;
    *capacity = pool_free[best].capacity;
    pool_bytes -= *capacity;
    pool_free[best] = pool_free[--pool_count];
    pool_hits++;
  } else {
    pool_misses++;
  }
  pthread_mutex_unlock(&pool_lock);
  return data;
}

/* Keeps a block for reuse, evicting the oldest ones to stay under the bound, or frees it. */
static void pool_give(void *data, size_t capacity) {
  void *evicted[POOL_SLOTS];
  int n_evicted = 0;
  pthread_mutex_lock(&pool_lock);
  if (capacity <= pool_max_bytes) {
    while (pool_count > 0 && (pool_count == POOL_SLOTS || pool_bytes + capacity > pool_max_bytes)) {
      evicted[n_evicted++] = pool_free[0].data;
      pool_bytes -= pool_free[0].capacity;
      memmove(pool_free, pool_free + 1, (size_t)(pool_count - 1) * sizeof pool_free[0]);
      pool_count--;
    }
    pool_free[pool_count].data = data;
    pool_free[pool_count].capacity = capacity;
    pool_count++;
    pool_bytes += capacity;
    data = NULL;
  }
  pthread_mutex_unlock(&pool_lock);
  for (int i = 0; i < n_evicted; i++) free(evicted[i]);
  free(data);
}

static void pool_finalize(napi_env env, void *data, void *hint) {
  size_t capacity = (size_t)(uintptr_t)hint;
  int64_t adjusted;
  napi_adjust_external_memory(env, -(int64_t)capacity, &adjusted);
  pool_give(data, capacity);
}

/* alloc(bytes): an uninitialised Buffer of `bytes` (> 0) whose memory comes from the pool. */
static napi_value pool_alloc(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1], out;
  int64_t bytes;
  NAPI_OK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc != 1 || !get_int(env, argv[0], &bytes) || bytes < 1 || (uint64_t)bytes > (uint64_t)SIZE_MAX / 2) {
    return throw_coded(env, CODE_BAD_ARGUMENT, "alloc(bytes) needs a positive integer");
  }
  size_t capacity = 0;
  void *data = pool_take((size_t)bytes, &capacity);
  if (data == NULL) {
    /* Round up to 64 KiB so that sizes close to each other share blocks. */
    capacity = ((size_t)bytes + 0xffff) & ~(size_t)0xffff;
    data = malloc(capacity);
    if (data == NULL) return throw_coded(env, CODE_NO_MEMORY, "cannot allocate a pooled buffer");
  }
  if (napi_create_external_buffer(env, (size_t)bytes, data, pool_finalize, (void *)(uintptr_t)capacity, &out) != napi_ok) {
    pool_give(data, capacity);
    return throw_coded(env, CODE_NO_MEMORY, "cannot create a pooled buffer");
  }
  int64_t adjusted;
  napi_adjust_external_memory(env, (int64_t)capacity, &adjusted);
  return out;
}

/* poolConfigure(maxBytes): bounds the bytes kept free for reuse; returns the previous bound. */
static napi_value pool_configure(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1], out;
  int64_t max;
  NAPI_OK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc != 1 || !get_int(env, argv[0], &max) || max < 0) return throw_coded(env, CODE_BAD_ARGUMENT, "poolConfigure(maxBytes) needs a non-negative integer");
  void *evicted[POOL_SLOTS];
  int n_evicted = 0;
  pthread_mutex_lock(&pool_lock);
  size_t previous = pool_max_bytes;
  pool_max_bytes = (size_t)max;
  while (pool_count > 0 && pool_bytes > pool_max_bytes) {
    evicted[n_evicted++] = pool_free[0].data;
    pool_bytes -= pool_free[0].capacity;
    memmove(pool_free, pool_free + 1, (size_t)(pool_count - 1) * sizeof pool_free[0]);
    pool_count--;
  }
  pthread_mutex_unlock(&pool_lock);
  for (int i = 0; i < n_evicted; i++) free(evicted[i]);
  NAPI_OK(napi_create_double(env, (double)previous, &out));
  return out;
}

/* poolStats(): { freeBlocks, freeBytes, maxBytes, hits, misses }. */
static napi_value pool_stats(napi_env env, napi_callback_info info) {
  (void)info;
  napi_value out, v;
  pthread_mutex_lock(&pool_lock);
  double stats[5] = {pool_count, (double)pool_bytes, (double)pool_max_bytes, (double)pool_hits, (double)pool_misses};
  pthread_mutex_unlock(&pool_lock);
  const char *names[5] = {"freeBlocks", "freeBytes", "maxBytes", "hits", "misses"};
  NAPI_OK(napi_create_object(env, &out));
  for (int i = 0; i < 5; i++) {
    NAPI_OK(napi_create_double(env, stats[i], &v));
    NAPI_OK(napi_set_named_property(env, out, names[i], v));
  }
  return out;
}

/* ---- coding work ---- */

static void job_fail(tw_job *job, const char *code, const char *message) {
  job->error_code = code;
  snprintf(job->error_message, sizeof job->error_message, "%s", message);
}

static void job_execute(napi_env env, void *data) {
  (void)env;
  tw_job *job = data;
  const tw_codec *c = job->codec;
  const int k = c->k;
  unsigned char coefficients[TW_N_MAX * TW_K_MAX];
  unsigned char *tables = NULL;
  int identity = 1;
  for (int i = 0; i < k; i++) identity &= job->src_index[i] == i;

  if (identity) {
    int plain_encode = job->out_count == c->m;
    for (int o = 0; o < job->out_count; o++) plain_encode &= job->out_index[o] == k + o;
    if (plain_encode) {
      tables = c->encode_tables;
    } else {
      for (int o = 0; o < job->out_count; o++) memcpy(coefficients + o * k, c->matrix + job->out_index[o] * k, (size_t)k);
    }
  } else {
    /* Survivors s = B x data, with B the generator rows of the survivors; so data = B^-1 s,
     * and fragment w = G[w] x data = (G[w] B^-1) s. */
    unsigned char b[TW_K_MAX * TW_K_MAX], b_inv[TW_K_MAX * TW_K_MAX], rows[TW_N_MAX * TW_K_MAX];
    for (int i = 0; i < k; i++) memcpy(b + i * k, c->matrix + job->src_index[i] * k, (size_t)k);
    if (gf_invert_matrix(b, b_inv, k) != 0) {
      job_fail(job, CODE_SINGULAR, "the surviving fragments' generator rows are not invertible");
      return;
    }
    for (int o = 0; o < job->out_count; o++) memcpy(rows + o * k, c->matrix + job->out_index[o] * k, (size_t)k);
    tw_gf_mat_mul(rows, b_inv, coefficients, job->out_count, k);
  }

  int own_tables = tables == NULL;
  if (own_tables) {
    tables = malloc((size_t)32 * k * job->out_count);
    if (tables == NULL) {
      job_fail(job, CODE_NO_MEMORY, "cannot allocate decode tables");
      return;
    }
    ec_init_tables(k, job->out_count, coefficients, tables);
  }
  unsigned char *src[TW_K_MAX], *out[TW_N_MAX];
  for (size_t at = 0; at < job->len; at += TW_CHUNK_BYTES) {
    size_t n = job->len - at < TW_CHUNK_BYTES ? job->len - at : TW_CHUNK_BYTES;
    for (int i = 0; i < k; i++) src[i] = job->src[i] + at;
    for (int o = 0; o < job->out_count; o++) out[o] = job->out[o] + at;
    ec_encode_data((int)n, k, job->out_count, tables, src, out);
  }
  if (own_tables) free(tables);
}

static void job_free(napi_env env, tw_job *job) {
  for (int i = 0; i < job->ref_count; i++) napi_delete_reference(env, job->refs[i]);
  if (job->codec_ref != NULL) napi_delete_reference(env, job->codec_ref);
  if (job->callback != NULL) napi_delete_reference(env, job->callback);
  if (job->work != NULL) napi_delete_async_work(env, job->work);
  free(job);
}

static void job_complete(napi_env env, napi_status status, void *data) {
  tw_job *job = data;
  napi_value callback, global, argv[1];
  napi_get_reference_value(env, job->callback, &callback);
  napi_get_global(env, &global);
  if (status == napi_cancelled) job_fail(job, CODE_CANCELLED, "the coding work was cancelled");
  if (job->error_code != NULL) {
    napi_value code, message;
    napi_create_string_utf8(env, job->error_code, NAPI_AUTO_LENGTH, &code);
    napi_create_string_utf8(env, job->error_message, NAPI_AUTO_LENGTH, &message);
    napi_create_error(env, code, message, &argv[0]);
  } else {
    napi_get_undefined(env, &argv[0]);
  }
  job_free(env, job);
  napi_call_function(env, global, callback, 1, argv, NULL);
}

/*
 * run(codec, srcIndexes, srcs, outIndexes, outs, callback): computes fragments `outIndexes`
 * into `outs` from the k fragments `srcIndexes` held in `srcs`, on the thread pool; then calls
 * callback(error | undefined). Every buffer is a Uint8Array of the same nonzero length; outputs
 * must not overlap any other buffer. The buffers are held until the callback runs.
 */
static napi_value run(napi_env env, napi_callback_info info) {
  size_t argc = 6;
  napi_value argv[6];
  napi_value src_values[TW_K_MAX], out_values[TW_N_MAX];
  char why[128];
  napi_valuetype t;
  NAPI_OK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc != 6) return throw_coded(env, CODE_BAD_ARGUMENT, "run(codec, srcIndexes, srcs, outIndexes, outs, callback) takes 6 arguments");
  const tw_codec *c = get_codec(env, argv[0]);
  if (c == NULL) return throw_coded(env, CODE_BAD_ARGUMENT, "run: the first argument is not a codec from create()");
  if (napi_typeof(env, argv[5], &t) != napi_ok || t != napi_function) return throw_coded(env, CODE_BAD_ARGUMENT, "run: callback is not a function");

  tw_job *job = calloc(1, sizeof *job);
  if (job == NULL) return throw_coded(env, CODE_NO_MEMORY, "cannot allocate a job");
  job->codec = c;
  const int n = c->k + c->m;
  uint32_t src_count = 0, out_count = 0;
  int ok = get_indexes(env, argv[1], c->k, 0, n, job->src_index, &src_count, why, sizeof why) &&
           get_indexes(env, argv[3], -1, n, n, job->out_index, &out_count, why, sizeof why) &&
           get_buffers(env, argv[2], src_count, job->src, src_values, &job->len, why, sizeof why) &&
           get_buffers(env, argv[4], out_count, job->out, out_values, &job->len, why, sizeof why);
  if (ok) {
    job->out_count = (int)out_count;
    for (uint32_t o = 0; o < out_count && ok; o++) {
      for (uint32_t i = 0; i < src_count && ok; i++) {
        if (job->out_index[o] == job->src_index[i]) {
          snprintf(why, sizeof why, "fragment %d is both a source and an output", job->out_index[o]);
          ok = 0;
        } else if (overlaps(job->out[o], job->src[i], job->len)) {
          snprintf(why, sizeof why, "output %u overlaps source %u", o, i);
          ok = 0;
        }
      }
      for (uint32_t p = o + 1; p < out_count && ok; p++) {
        if (overlaps(job->out[o], job->out[p], job->len)) {
          snprintf(why, sizeof why, "outputs %u and %u overlap", o, p);
          ok = 0;
        }
      }
    }
  }
  if (!ok) {
    free(job);
    return throw_coded(env, CODE_BAD_ARGUMENT, why);
  }
  napi_value name;
  if (napi_create_reference(env, argv[5], 1, &job->callback) != napi_ok || napi_create_reference(env, argv[0], 1, &job->codec_ref) != napi_ok) {
    job_free(env, job);
    return throw_coded(env, CODE_NO_MEMORY, "cannot reference the arguments");
  }
  for (uint32_t i = 0; i < src_count + out_count; i++) {
    napi_value v = i < src_count ? src_values[i] : out_values[i - src_count];
    if (napi_create_reference(env, v, 1, &job->refs[job->ref_count]) != napi_ok) {
      job_free(env, job);
      return throw_coded(env, CODE_NO_MEMORY, "cannot reference the buffers");
    }
    job->ref_count++;
  }
  napi_create_string_utf8(env, "tw-isal:run", NAPI_AUTO_LENGTH, &name);
  if (napi_create_async_work(env, NULL, name, job_execute, job_complete, job, &job->work) != napi_ok || napi_queue_async_work(env, job->work) != napi_ok) {
    job_free(env, job);
    return throw_coded(env, CODE_NO_MEMORY, "cannot queue the coding work");
  }
  return NULL;
}

/*
 * selfTest(): checks libisal's answers against this file's own GF(2^8) arithmetic: the Cauchy
 * matrix, a matrix inverse, and one small encode. False means libisal is not the library this
 * addon expects (or a foreign gf_mul was bound), so the codec must not be used.
 */
static napi_value self_test(napi_env env, napi_callback_info info) {
  (void)info;
  enum { K = 4, M = 2, N = K + M, LEN = 96 };
  unsigned char g[N * K], b[K * K], b_copy[K * K], b_inv[K * K], prod[K * K];
  unsigned char tables[32 * K * M], data[K][LEN], parity[M][LEN];
  unsigned char *src[K], *out[M];
  int ok = 1;
  gf_gen_cauchy1_matrix(g, N, K);
  for (int i = 0; i < N; i++) {
    for (int j = 0; j < K; j++) {
      unsigned char want = i < K ? (unsigned char)(i == j) : tw_gf_inv((unsigned char)(i ^ j));
      ok &= g[i * K + j] == want;
    }
  }
  const int rows[K] = {1, 3, 4, 5};
  for (int i = 0; i < K; i++) memcpy(b + i * K, g + rows[i] * K, K);
  memcpy(b_copy, b, sizeof b);
  ok &= gf_invert_matrix(b_copy, b_inv, K) == 0;
  tw_gf_mat_mul(b, b_inv, prod, K, K);
  for (int i = 0; i < K; i++)
    for (int j = 0; j < K; j++) ok &= prod[i * K + j] == (i == j);
  for (int i = 0; i < K; i++) {
    for (int x = 0; x < LEN; x++) data[i][x] = (unsigned char)(x * 31 + i * 7 + 1);
    src[i] = data[i];
  }
  for (int p = 0; p < M; p++) out[p] = parity[p];
  ec_init_tables(K, M, g + K * K, tables);
  ec_encode_data(LEN, K, M, tables, src, out);
  for (int p = 0; p < M; p++) {
    for (int x = 0; x < LEN; x++) {
      unsigned char want = 0;
      for (int i = 0; i < K; i++) want ^= tw_gf_mul(g[(K + p) * K + i], data[i][x]);
      ok &= parity[p][x] == want;
    }
  }
  napi_value result;
  napi_get_boolean(env, ok, &result);
  return result;
}

static napi_value init(napi_env env, napi_value exports) {
  tw_gf_init();
  napi_value k_max, m_max;
  napi_create_int32(env, TW_K_MAX, &k_max);
  napi_create_int32(env, TW_M_MAX, &m_max);
  napi_property_descriptor props[] = {
      {"create", NULL, create_codec, NULL, NULL, NULL, napi_enumerable, NULL},
      {"matrix", NULL, codec_matrix, NULL, NULL, NULL, napi_enumerable, NULL},
      {"run", NULL, run, NULL, NULL, NULL, napi_enumerable, NULL},
      {"selfTest", NULL, self_test, NULL, NULL, NULL, napi_enumerable, NULL},
      {"alloc", NULL, pool_alloc, NULL, NULL, NULL, napi_enumerable, NULL},
      {"poolConfigure", NULL, pool_configure, NULL, NULL, NULL, napi_enumerable, NULL},
      {"poolStats", NULL, pool_stats, NULL, NULL, NULL, napi_enumerable, NULL},
      {"K_MAX", NULL, NULL, NULL, NULL, k_max, napi_enumerable, NULL},
      {"M_MAX", NULL, NULL, NULL, NULL, m_max, napi_enumerable, NULL},
  };
  if (napi_define_properties(env, exports, sizeof props / sizeof props[0], props) != napi_ok) return NULL;
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
