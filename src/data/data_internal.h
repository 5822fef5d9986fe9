/* Internal helpers shared by the dataset loaders (src/data/). */
#ifndef LIPGAN_DATA_INTERNAL_H
#define LIPGAN_DATA_INTERNAL_H

#include <stdint.h>
#include <stdio.h>
#include <zlib.h>

#include "lipgan/data.h"

/* A file read either directly or through zlib's gzip reader. */
typedef struct lg_rd {
    const char *path;
    FILE *f;         /* raw file, or NULL */
    gzFile gz;       /* gzip file, or NULL */
    int64_t size;    /* raw: file size in bytes; gzip: -1 (unknown) */
    int64_t off;     /* bytes (decompressed) consumed so far */
} lg_rd;

/* Opens path for reading. If allow_gzip and the file starts with 1f 8b it is
 * read through gzread; otherwise a gzip file is an error telling the user to
 * decompress it. Non-regular files are errors. */
lg_status lg_rd_open(lg_rd *r, const char *path, int allow_gzip);

/* Reads exactly n bytes; a short read is an LG_ERR_FORMAT error
 * "file P: truncated: ... reading <what>", and a zlib failure names the
 * corrupt gzip stream. */
lg_status lg_rd_read(lg_rd *r, void *buf, size_t n, const char *what);

/* Succeeds only at the end of the data (and, for gzip, after the stream's
 * CRC and length were verified); trailing bytes are an error. */
lg_status lg_rd_expect_eof(lg_rd *r);

void lg_rd_close(lg_rd *r);

/* Allocates d->x (n, c, h, w) and, if labeled, d->y (n), checking size
 * overflow; on failure d is left zeroed. path is used in messages. */
lg_status lg_data_alloc(lg_dataset *d, int64_t n, int c, int h, int w,
                        int labeled, int num_classes, const char *path);

/* 8-bit pixel to [-1, 1]: 0 -> -1, 255 -> 1 exactly. */
static inline float lg_u8_to_unit(unsigned v) { return (float)v / 127.5f - 1.0f; }

/* splitmix64 (Steele, Lea, Flood 2014): a tiny, well-mixed 64-bit stream. */
static inline uint64_t lg_splitmix64(uint64_t *state) {
    uint64_t z = (*state += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}

/* Uniform integer in [0, n), unbiased (rejects the short top range). */
static inline uint64_t lg_splitmix64_below(uint64_t *state, uint64_t n) {
    uint64_t threshold = (0 - n) % n;  /* 2^64 mod n */
    for (;;) {
        uint64_t r = lg_splitmix64(state);
        if (r >= threshold) return r % n;
    }
}

/* Writes "<dir>/<name>" into buf; errors if it does not fit. */
lg_status lg_path_join(char *buf, size_t cap, const char *dir, const char *name);

/* 1 if path exists and is a directory, else 0. */
int lg_path_is_dir(const char *path);

/* 1 if path exists (any type), else 0. */
int lg_path_exists(const char *path);

/* lg_data_load_png_dir with a size check for lg_data_load: size 0 takes the
 * files' own size, otherwise the images must be size x size (PNGs are not
 * resized; anything else is LG_ERR_INVALID_ARG naming data.image_size). */
lg_status lg_png_dir_load(lg_dataset *out, const char *dir, int channels, int size);

#endif
