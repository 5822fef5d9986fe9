/* lipgan/data.h - dataset loaders, 2-D toy distributions and the batch sampler.
 *
 * A dataset is N samples held in memory as float32, NCHW, one allocation per
 * array. Image loaders map a pixel v (8 bit) to v / 127.5 - 1, so 0 -> -1
 * (black) and 255 -> +1; 16-bit PNG samples use v / 32767.5 - 1.
 * This module does not depend on tensors: callers copy batches into whatever
 * they train with.
 *
 * Every loader validates its input strictly (magic numbers, dimensions, exact
 * file sizes, label ranges, corrupt gzip or PNG streams) and returns an
 * lg_status with a one-line message naming the file and what is wrong (read
 * it with lg_error_msg()). On error *out is left empty (all zero) and nothing
 * is leaked.
 *
 * Example (compiled and run as header_example() in tests/test_data.c):
 *
 *     static lg_status header_example(const char *cifar_dir) {
 *         lg_dataset d;
 *         LG_TRY(lg_data_load_cifar10(&d, cifar_dir, LG_SPLIT_TEST));
 *         lg_data_sampler smp;
 *         lg_status s = lg_data_sampler_init(&smp, &d, 1234);
 *         float *xb = malloc(64 * lg_data_sample_size(&d) * sizeof(float)); // (64, C, H, W)
 *         int32_t yb[64];
 *         for (int step = 0; s == LG_OK && step < 3; step++) {
 *             s = lg_data_next_batch(&smp, 64, xb, yb);
 *             ... train on xb, yb ...
 *         }
 *         free(xb);
 *         lg_data_sampler_free(&smp);
 *         lg_data_free(&d);
 *         return s;
 *     }
 */
#ifndef LIPGAN_DATA_H
#define LIPGAN_DATA_H

#include <stdint.h>

#include "lipgan/status.h"

#ifdef __cplusplus
extern "C" {
#endif

/* N samples in memory. For image sets x is in [-1, 1]; for the 2-D toys
 * x holds points (C = 2, H = W = 1), not clipped to [-1, 1]. */
typedef struct lg_dataset {
    int64_t n;         /* number of samples N */
    int c, h, w;       /* per-sample shape */
    float *x;          /* (N, C, H, W) */
    int32_t *y;        /* (N) labels in [0, num_classes), or NULL if unlabeled */
    int num_classes;   /* 0 when y == NULL */
} lg_dataset;

/* Which part of a standard dataset a directory loader reads. */
typedef enum lg_data_split {
    LG_SPLIT_TRAIN = 0,     /* MNIST train-*, CIFAR data_batch_1..5, STL train_* */
    LG_SPLIT_TEST = 1,      /* MNIST t10k-*, CIFAR test_batch, STL test_* */
    LG_SPLIT_UNLABELED = 2  /* STL-10 unlabeled_X.bin only */
} lg_data_split;

/* Frees d's arrays and zeroes it (safe on a zeroed or freed dataset). */
void lg_data_free(lg_dataset *d);

/* Floats per sample: C * H * W. */
int64_t lg_data_sample_size(const lg_dataset *d);

/* ---- IDX (MNIST, Fashion-MNIST) ---------------------------------------- */

/* Loads an IDX image file (magic 0x00000803, dims N, H, W, big-endian) and
 * optionally its label file (magic 0x00000801, dim N; labels_path may be
 * NULL). Each file may be raw or gzip-compressed (detected by the bytes
 * 1f 8b; a corrupt or truncated gzip stream is an error).
 * num_classes: labels must lie in [0, num_classes) (10 for MNIST and
 * Fashion-MNIST; 1..256). pad_to: 0 keeps H x W; otherwise the images are
 * centred on a pad_to x pad_to canvas filled with -1 (black), e.g. 28 -> 32
 * adds 2 pixels on each side; pad_to must be >= H and >= W.
 * Rejects: short headers, wrong magic, zero dims or dims above 4096
 * (H, W) / 2^28 (N), truncated data, trailing bytes, image/label count
 * mismatch, labels out of range. A gzip header's count is not trusted for
 * allocation: the array grows as images arrive. (zlib, like gzip -d,
 * ignores non-gzip bytes after the last gzip member.) Result: C = 1. */
lg_status lg_data_load_idx(lg_dataset *out, const char *images_path,
                           const char *labels_path, int num_classes, int pad_to);

/* Directory form: reads <dir>/{train,t10k}-images-idx3-ubyte[.gz] and the
 * matching -labels-idx1-ubyte[.gz] (uncompressed name tried first), with 10
 * classes. split: LG_SPLIT_TRAIN or LG_SPLIT_TEST. */
lg_status lg_data_load_mnist_dir(lg_dataset *out, const char *dir,
                                 lg_data_split split, int pad_to);

/* ---- CIFAR-10 binary ------------------------------------------------------ */

#define LG_CIFAR10_RECORD 3073                 /* 1 label byte + 3 * 32 * 32 */
#define LG_CIFAR10_FILE_BYTES 30730000LL       /* 10,000 records */

/* path is either a directory or one file.
 *  - Directory: the standard set; split LG_SPLIT_TRAIN reads data_batch_1.bin
 *    .. data_batch_5.bin (50,000 images), LG_SPLIT_TEST reads test_batch.bin.
 *    Each file must be exactly 30,730,000 bytes (10,000 records), since a
 *    short standard file means a damaged download.
 *  - File: any whole number (>= 1) of 3073-byte records is accepted (subsets,
 *    custom data); split is ignored. A partial record is an error.
 * Labels must be 0..9. Result: C = 3, H = W = 32, 10 classes, channels R,G,B. */
lg_status lg_data_load_cifar10(lg_dataset *out, const char *path,
                               lg_data_split split);

/* ---- STL-10 binary -------------------------------------------------------- */

#define LG_STL10_IMAGE 27648                   /* 3 * 96 * 96 */

/* images_path: train_X.bin / test_X.bin / unlabeled_X.bin, uint8 images of
 * 3 x 96 x 96, each channel stored column-major (transposed on load). Any
 * whole number (>= 1) of images is accepted; a partial image is an error.
 * labels_path (may be NULL): one byte per image, 1..10, stored as 0..9; its
 * size must equal the image count. size: 0 or 96 (native), 48 (2x2 area
 * average) or 32 (3x3 area average); resizing happens while streaming, so
 * unlabeled_X.bin at 32 needs 1.2 GB, not 11 GB. Result: C = 3. */
lg_status lg_data_load_stl10(lg_dataset *out, const char *images_path,
                             const char *labels_path, int size);

/* Directory form: train -> train_X.bin + train_y.bin, test -> test_X.bin +
 * test_y.bin, unlabeled -> unlabeled_X.bin (no labels). */
lg_status lg_data_load_stl10_dir(lg_dataset *out, const char *dir,
                                 lg_data_split split, int size);

/* ---- folder of PNG images ------------------------------------------------- */

/* Loads every regular file in dir whose name ends in ".png" (any case) and
 * does not start with '.', sorted by name (byte order); no labels. If dir has
 * no such file, its subfolders are read instead, one level deep, as class
 * folders (torchvision's ImageFolder layout, dir/CLASS/NAME.png): class k is
 * the k-th subfolder in byte order (names starting with '.' skipped), the
 * samples come class by class, each sorted by name, y = k, num_classes = the
 * number of subfolders; a subfolder without .png files is an error (as in
 * torchvision), and deeper folders are not read. Subfolders of a dir that has
 * .png files of its own are not read.
 * All images must have the same width and height (the
 * first file sets them; an odd one is an error naming it). Accepts gray,
 * gray+alpha, RGB, RGBA and palette images at any bit depth (16-bit samples
 * keep their precision). Alpha is dropped (not composited). channels: 1 or 3;
 * gray -> 3 replicates, RGB -> 1 uses 0.299 R + 0.587 G + 0.114 B (as PIL's
 * convert("L")). A corrupt or non-PNG file is an error naming it, and so is
 * a *.png entry that cannot be read as a file (a broken symbolic link:
 * LG_ERR_NOT_FOUND). dir being a regular file is LG_ERR_FORMAT. */
lg_status lg_data_load_png_dir(lg_dataset *out, const char *dir, int channels);

/* ---- 2-D toy distributions (VEEGAN / PacGAN) ------------------------------ */

typedef enum lg_toy_kind {
    LG_TOY_RING8 = 0,   /* 8 modes at radius 2, angles 2*pi*k/8, std 0.02 */
    LG_TOY_GRID25 = 1   /* 25 modes at {-4,-2,0,2,4}^2, std 0.05 */
} lg_toy_kind;

/* The mode centres (K, 2) of a toy distribution, its per-coordinate standard
 * deviation in *std (may be NULL), and K as the return value (0 for an
 * unknown kind). The centres are static; do not free them. */
int lg_data_toy_modes(lg_toy_kind kind, const float **centers /* (K, 2) */,
                      float *std);

/* Samples n points: each picks a mode uniformly at random, then adds
 * isotropic Gaussian noise of the kind's std. Deterministic for a given
 * seed (a private splitmix64 + Box-Muller generator). Result: C = 2,
 * H = W = 1 (x is (N, 2)), y = the mode index, num_classes = K. */
lg_status lg_data_make_toy(lg_dataset *out, lg_toy_kind kind, int64_t n,
                           uint64_t seed);

/* ---- dispatch by name (for configs and the CLI) --------------------------- */

typedef struct lg_data_spec {
    const char *format;  /* "mnist" (= "fashion-mnist", "idx": a directory),
                            "cifar10", "stl10" (a directory or an images file),
                            "png" (a directory), "ring8", "grid25" */
    const char *path;    /* file or directory; unused for toys */
    lg_data_split split; /* for directory forms */
    int size;            /* mnist: pad_to (0 or e.g. 32); stl10: 0/96, 48, 32;
                            cifar10: 0 or 32; png: 0 or the files' own side
                            (checked: PNGs are not resized) */
    int channels;        /* png: 1 or 3 (0 = 3); ignored by the others (idx is
                            always 1 channel, cifar10 and stl10 3) */
    int64_t n;           /* toys: number of points */
    uint64_t seed;       /* toys: generator seed */
} lg_data_spec;

/* Loads the dataset a spec names; an unknown format is LG_ERR_INVALID_ARG
 * with the list of known ones. For "stl10" with a file path, the labels are
 * taken from the sibling file with _X.bin replaced by _y.bin if it exists.
 * A size a format cannot produce is LG_ERR_INVALID_ARG. Being meant for
 * configs and the CLI, its messages name the config keys: a missing file of
 * mnist/idx/cifar10/stl10 (LG_ERR_NOT_FOUND) gets a hint appended, naming
 * the data.split the folder does have if the asked-for split is absent,
 * else where to get the data (and only then: other errors get no hint). */
lg_status lg_data_load(lg_dataset *out, const lg_data_spec *spec);

/* ---- batch sampler -------------------------------------------------------- */

/* Draws batches in a shuffled order that is a pure function of (seed,
 * epoch): epoch e uses a Fisher-Yates permutation of 0..N-1 from a
 * splitmix64 stream seeded by (seed, e). A batch that runs past the end of an
 * epoch continues in the next epoch's permutation. The cursor (seed, epoch,
 * position, N) captures the whole state, so a restored sampler yields exactly
 * the batches the saved one would have. The dataset is borrowed and must
 * outlive the sampler. */
typedef struct lg_data_sampler {
    const lg_dataset *data;
    int64_t *perm;   /* (N) sample order of the current epoch */
    uint64_t seed;
    int64_t epoch;   /* current epoch, from 0 */
    int64_t pos;     /* next position in perm, always in [0, N) */
} lg_data_sampler;

#define LG_DATA_CURSOR_LEN 4  /* {seed (as int64), epoch, position, N} */

lg_status lg_data_sampler_init(lg_data_sampler *s, const lg_dataset *d,
                               uint64_t seed);
void lg_data_sampler_free(lg_data_sampler *s);

/* Writes the cursor {seed, epoch, pos, N} (seed bit-cast to int64). */
void lg_data_sampler_get_cursor(const lg_data_sampler *s,
                                int64_t cursor[LG_DATA_CURSOR_LEN]);

/* Restores a cursor saved by lg_data_sampler_get_cursor. Errors
 * (LG_ERR_INVALID_ARG) if N differs from the sampler's dataset or epoch /
 * position are out of range; the sampler is unchanged then. */
lg_status lg_data_sampler_set_cursor(lg_data_sampler *s,
                                     const int64_t cursor[LG_DATA_CURSOR_LEN]);

/* Copies the next batch_size samples into out (batch_size, C, H, W) and their
 * labels into labels_out (batch_size) if it is not NULL (-1 for an unlabeled
 * dataset). Crosses into the next epoch (reshuffled) as needed; batch_size
 * may exceed N. batch_size < 1 is LG_ERR_INVALID_ARG. */
lg_status lg_data_next_batch(lg_data_sampler *s, int batch_size,
                             float *out /* (B, C, H, W) */,
                             int32_t *labels_out /* (B) */);

#ifdef __cplusplus
}
#endif
#endif
