/* lipgan/tfevents.h - TensorBoard event files (scalars and PNG images),
 * written without TensorFlow or protobuf libraries (issue 6 item 7).
 *
 * A file DIR/events.out.tfevents.<10-digit unix time>.<host>.<pid>.<n>.lipgan
 * (n: a per-process sequence number, so two writers never share a name)
 * is a sequence of TFRecords:
 *   u64 length, u32 masked_crc32c(length bytes), data[length],
 *   u32 masked_crc32c(data)            (all little-endian)
 * masked_crc = ((crc >> 15) | (crc << 17)) + 0xa282ead8 with CRC-32C
 * (Castagnoli, reflected polynomial 0x82f63b78). Each data is a serialized
 * tensorflow.Event protobuf; the fields used (proto3, tensorflow/core/util/
 * event.proto and framework/summary.proto):
 *   Event   { double wall_time = 1; int64 step = 2; string file_version = 3;
 *             Summary summary = 5; }
 *   Summary { repeated Value value = 1; }
 *   Value   { string tag = 1; float simple_value = 2; Image image = 4; }
 *   Image   { int32 height = 1; int32 width = 2; int32 colorspace = 3;
 *             bytes encoded_image_string = 4; }
 * The first record is Event{wall_time, file_version: "brain.Event:2"}, as
 * TensorFlow writes it; TensorBoard's loader reads simple_value scalars and
 * Summary.Image images (its data_compat layer converts both). An
 * independent reader is tools/read_tfevents.py (pure Python, checks both
 * CRCs), which tests/test_tfevents.c runs when python3 exists.
 *
 * Usage:
 *   lg_tfevents *tb;
 *   LG_TRY(lg_tfevents_open(&tb, "runs/x"));
 *   lg_tfevents_scalar(tb, step, "loss/D", loss_d);
 *   lg_tfevents_image_file(tb, step, "samples", "runs/x/samples.png");
 *   lg_tfevents_flush(tb);          // TensorBoard sees what was flushed
 *   lg_tfevents_close(tb);
 */
#ifndef LIPGAN_TFEVENTS_H
#define LIPGAN_TFEVENTS_H

#include <stddef.h>
#include <stdint.h>

#include "lipgan/status.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct lg_tfevents lg_tfevents;

/* Creates a new event file in dir (which must exist) and writes the
 * file_version record. Errors: LG_ERR_IO, LG_ERR_NOMEM. */
lg_status lg_tfevents_open(lg_tfevents **out, const char *dir);
/* Flushes and closes; LG_ERR_IO if buffered records could not be written
 * (the writer is freed either way). NULL is a no-op. */
lg_status lg_tfevents_close(lg_tfevents *w);
/* The file's path. */
const char *lg_tfevents_path(const lg_tfevents *w);

/* One scalar (stored as a float32 simple_value, as TensorBoard does).
 * The tag must be non-empty UTF-8 (TensorBoard groups by the part before
 * the first '/'). */
lg_status lg_tfevents_scalar(lg_tfevents *w, int64_t step, const char *tag, double value);

/* One image from PNG bytes; height, width and channels (1 gray, 2 gray +
 * alpha, 3 RGB, 4 RGBA: the Image.colorspace) describe it. */
lg_status lg_tfevents_image_png(lg_tfevents *w, int64_t step, const char *tag, const void *png,
                                size_t len, int height, int width, int channels);
/* The same from a PNG file (size and channels from its header, as lipgan's
 * PNG decoder reads it).
 * Errors also LG_ERR_NOT_FOUND, LG_ERR_FORMAT (not a PNG). */
lg_status lg_tfevents_image_file(lg_tfevents *w, int64_t step, const char *tag, const char *path);

/* Writes buffered records to the file (fflush). */
lg_status lg_tfevents_flush(lg_tfevents *w);

/* CRC-32C (Castagnoli) of n bytes, and TFRecord's masked form of a CRC. */
uint32_t lg_crc32c(const void *data, size_t n);
uint32_t lg_crc32c_mask(uint32_t crc);

#ifdef __cplusplus
}
#endif
#endif
