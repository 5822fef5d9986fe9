/* lipgan/safetensors.h - reading and writing .safetensors files.
 *
 * Format (https://github.com/huggingface/safetensors): an 8-byte
 * little-endian u64 N, N bytes of UTF-8 JSON header, then the data:
 *   {"__metadata__": {"key": "value", ...},                 (optional)
 *    "name": {"dtype": "F32", "shape": [2, 3], "data_offsets": [0, 24]}, ...}
 * Offsets are relative to the start of the data section (byte 8 + N).
 * Tensor data is little-endian, row-major.
 *
 * The reader validates everything the reference Rust crate does before any
 * tensor is touched: header length <= 100,000,000 and <= file size - 8,
 * the header is valid UTF-8 starting with '{' and is one JSON object,
 * every entry has a known dtype, a shape of non-negative integers and
 * data_offsets [begin, end] with begin <= end, product(shape) * dtype size
 * equals end - begin (overflow-checked), and the entries sorted by offset
 * tile the data section exactly (no gap, overlap or trailing byte). It is
 * stricter in two ways: duplicate keys are rejected, and every number in
 * the header must be a plain integer <= 2^53 (cJSON stores numbers as
 * doubles). A rejected file gives LG_ERR_FORMAT with one line naming the
 * file and the problem.
 *
 * The writer writes F32 (and I64, for integer state such as RNG streams),
 * pads the header with spaces to a multiple of 8 bytes so the data section
 * is 8-byte aligned (as the Rust writer does), and can write atomically (see
 * fileio.h), which checkpoints use.
 *
 * Checksum (lipgan's addition, in the metadata so any safetensors reader
 * still reads the file): the writer stores the CRC-32 (zlib's crc32) of
 * the data section, every byte after the header, as 8 lowercase hex digits
 * under the metadata key "lipgan.crc32". lg_st_open and lg_st_parse verify
 * it when the key is present: a mismatch is LG_ERR_FORMAT ("file X: data
 * damaged (CRC-32 ... stored, ... computed); ..."), a value that is not 8
 * lowercase hex digits is LG_ERR_FORMAT naming the key. Files without the
 * key (PyTorch's, the Inception weights, lipgan's before the key existed)
 * are read as before. The header itself is not covered: its JSON and the
 * checks above catch most damage there, not a changed digit or metadata
 * byte. lg_st_peek_meta reads the header only and does not verify.
 *
 * Reading:
 *   lg_st_file *f;
 *   LG_TRY(lg_st_open(&f, "g.safetensors"));
 *   float w[64 * 128];                                      // (64, 128)
 *   lg_status s = lg_st_get_f32(f, "fc.weight", 2, (int64_t[]){64, 128}, w);
 *   const char *step = lg_st_meta(f, "step");               // NULL if absent
 *   lg_st_close(f);
 * Writing:
 *   lg_st_writer *w;
 *   LG_TRY(lg_st_writer_create(&w));
 *   lg_st_writer_add_meta(w, "step", "1000");
 *   lg_st_writer_add_f32(w, "fc.weight", 2, (int64_t[]){64, 128}, wdata);
 *   s = lg_st_writer_write(w, "g.safetensors", 1);          // atomic
 *   lg_st_writer_free(w);
 */
#ifndef LIPGAN_SAFETENSORS_H
#define LIPGAN_SAFETENSORS_H

#include <stddef.h>
#include <stdint.h>

#include "lipgan/status.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Largest header the reader accepts (same limit as the Rust crate). */
#define LG_ST_MAX_HEADER 100000000ull
/* Metadata key of the data section's CRC-32 (see above). */
#define LG_ST_CRC32_KEY "lipgan.crc32"
/* Flag of lg_st_open_ex / lg_st_parse_ex: skip computing the CRC-32 (the
 * key's form is still checked). For measuring its cost and for fuzzing
 * deeper than the checksum; readers of real files leave it off. */
#define LG_ST_NO_VERIFY 1u
/* Most dims the writer accepts (the reader accepts any number). */
#define LG_ST_MAX_DIMS 8

/* The dtypes of the safetensors spec. Sub-byte types (F4, F6_*) are
 * understood for size validation only. */
typedef enum lg_st_dtype {
    LG_ST_BOOL,
    LG_ST_U8,
    LG_ST_I8,
    LG_ST_F8_E5M2,
    LG_ST_F8_E4M3,
    LG_ST_F8_E8M0,
    LG_ST_I16,
    LG_ST_U16,
    LG_ST_F16,
    LG_ST_BF16,
    LG_ST_I32,
    LG_ST_U32,
    LG_ST_F32,
    LG_ST_F64,
    LG_ST_I64,
    LG_ST_U64,
    LG_ST_C64,
    LG_ST_F4,
    LG_ST_F6_E2M3,
    LG_ST_F6_E3M2,
    LG_ST_DTYPE_COUNT
} lg_st_dtype;

/* "F32", ... */
const char *lg_st_dtype_name(lg_st_dtype d);
/* Bits per element (1 byte for BOOL; 4 for F4; 6 for F6_*). */
int lg_st_dtype_bits(lg_st_dtype d);
/* Parses a dtype name; returns 0 and sets *out, or -1 if unknown. */
int lg_st_dtype_parse(const char *name, lg_st_dtype *out);

/* One tensor of an open file. Pointers stay valid until lg_st_close. */
typedef struct lg_st_tensor {
    const char *name;
    lg_st_dtype dtype;
    int ndim;               /* 0 for a scalar */
    const int64_t *shape;   /* (ndim) */
    int64_t numel;          /* product of shape (1 for a scalar) */
    const void *data;       /* (nbytes) raw little-endian bytes; NOT
                               necessarily aligned: read with memcpy */
    size_t nbytes;
    uint64_t offset;        /* begin offset within the data section */
} lg_st_tensor;

typedef struct lg_st_file lg_st_file;

/* ---- reading ---- */

/* Reads and validates a whole file, its CRC-32 included when it has one.
 * Errors: LG_ERR_NOT_FOUND / LG_ERR_IO (cannot read), LG_ERR_FORMAT (not a
 * valid safetensors file, or its data damaged). */
lg_status lg_st_open(lg_st_file **out, const char *path);
/* lg_st_open with flags (0 or LG_ST_NO_VERIFY). */
lg_status lg_st_open_ex(lg_st_file **out, const char *path, unsigned flags);
/* Metadata value `key` of the safetensors file at path, reading only its
 * header (a checkpoint can be gigabytes): copied into buf (cap bytes,
 * truncated, NUL-terminated). Returns 1 if found, 0 if the key is absent or
 * the file is unreadable or not safetensors (no message set): for a quick
 * "what is this file" look, not for validation (lg_st_open does that). */
int lg_st_peek_meta(const char *path, const char *key, char *buf, size_t cap);
/* The same from a buffer of len bytes (copied); label names it in errors. */
lg_status lg_st_parse(lg_st_file **out, const void *buf, size_t len, const char *label);
lg_status lg_st_parse_ex(lg_st_file **out, const void *buf, size_t len, const char *label, unsigned flags);
void lg_st_close(lg_st_file *f);

/* The path or label given at open. */
const char *lg_st_path(const lg_st_file *f);
/* Number of tensors, and tensor i in file order (sorted by offset). */
size_t lg_st_count(const lg_st_file *f);
const lg_st_tensor *lg_st_at(const lg_st_file *f, size_t i);
/* Tensor by name, NULL if absent. */
const lg_st_tensor *lg_st_find(const lg_st_file *f, const char *name);

/* Copies tensor `name` into out as float32, converting F64, F16 and BF16.
 * If expected_ndim >= 0 the shape must equal (expected_ndim,
 * expected_shape); if expected_ndim < 0 any shape is accepted and out must
 * hold lg_st_find(f, name)->numel floats. Errors: LG_ERR_NOT_FOUND (no such
 * tensor), LG_ERR_SHAPE (other shape), LG_ERR_UNSUPPORTED (an integer or
 * other dtype that is not converted to float). */
lg_status lg_st_get_f32(const lg_st_file *f, const char *name, int expected_ndim,
                        const int64_t *expected_shape, float *out);
/* The same into int64 for integer tensors (I64, I32, I16, I8, U32, U16, U8,
 * BOOL; U64 values above INT64_MAX are an LG_ERR_FORMAT error). */
lg_status lg_st_get_i64(const lg_st_file *f, const char *name, int expected_ndim,
                        const int64_t *expected_shape, int64_t *out);

/* Metadata value for key, NULL if absent. */
const char *lg_st_meta(const lg_st_file *f, const char *key);
size_t lg_st_meta_count(const lg_st_file *f);
/* Metadata entry i (in header order). */
void lg_st_meta_at(const lg_st_file *f, size_t i, const char **key, const char **value);

/* ---- writing ---- */

typedef struct lg_st_writer lg_st_writer;

lg_status lg_st_writer_create(lg_st_writer **out);
void lg_st_writer_free(lg_st_writer *w);

/* Adds a metadata entry (key and value are copied; both valid UTF-8).
 * A repeated key is an LG_ERR_INVALID_ARG error. A "lipgan.crc32" entry is
 * accepted but not written: the writer writes the CRC-32 of the data it
 * writes (so copying a file's metadata into a writer stays correct). */
lg_status lg_st_writer_add_meta(lg_st_writer *w, const char *key, const char *value);

/* Adds a float32 tensor of shape (ndim <= 8) from host memory. The name is
 * copied; data is NOT: it must stay valid until lg_st_writer_write returns.
 * Names must be unique, valid UTF-8, and not "__metadata__". Tensors are
 * stored in the order added. */
lg_status lg_st_writer_add_f32(lg_st_writer *w, const char *name, int ndim,
                               const int64_t *shape, const float *data);
/* The same for an int64 tensor. */
lg_status lg_st_writer_add_i64(lg_st_writer *w, const char *name, int ndim,
                               const int64_t *shape, const int64_t *data);
/* The same for a float64 tensor (FID statistics). */
lg_status lg_st_writer_add_f64(lg_st_writer *w, const char *name, int ndim,
                               const int64_t *shape, const double *data);

/* Rewrites the "lipgan.crc32" value in the header of a whole file held in
 * memory (buf, len bytes) to the CRC-32 of its data section as it is now,
 * for tools and tests that change a file's data in place. The header
 * length must fit in len and the key must be present with an 8-byte
 * value (LG_ERR_FORMAT otherwise; buf unchanged). The JSON is not parsed. */
lg_status lg_st_restamp_crc(uint8_t *buf, size_t len);

/* Writes the file, with the CRC-32 of its data section in the metadata
 * (computed from the tensors in memory before they are written, one pass);
 * atomic = 1 goes through a temp file and a rename (see fileio.h) so an
 * interrupted write leaves any previous file intact. The writer can be
 * written again (e.g. to a second path). */
lg_status lg_st_writer_write(const lg_st_writer *w, const char *path, int atomic);

#ifdef __cplusplus
}
#endif
#endif
