/* CIFAR-10 binary loader. Each record: 1 label byte, then 3072 bytes = the
 * R, G and B planes, each 32x32 row-major, which is already CHW order. */
#include "data/data_internal.h"

#include <stdlib.h>
#include <string.h>

#define CIFAR_MAX_FILES 5
#define CIFAR_PIX 3072
#define CIFAR_CHUNK 256 /* records per read */

/* Opens one file and checks its size; *nrec = number of records. */
static lg_status cifar_open(lg_rd *r, const char *path, int standard, int64_t *nrec) {
    LG_TRY(lg_rd_open(r, path, 0));
    int64_t sz = r->size;
    lg_status s = LG_OK;
    if (sz == 0)
        s = lg_error_set(LG_ERR_FORMAT, "file %s: is empty; expected 3073-byte CIFAR-10 records", path);
    else if (sz % LG_CIFAR10_RECORD != 0)
        s = lg_error_set(LG_ERR_FORMAT,
                         "file %s: %lld bytes is not a whole number of 3073-byte records (%lld records + %lld bytes of a partial one); truncated or not CIFAR-10 binary",
                         path, (long long)sz, (long long)(sz / LG_CIFAR10_RECORD),
                         (long long)(sz % LG_CIFAR10_RECORD));
    else if (standard && sz != LG_CIFAR10_FILE_BYTES)
        s = lg_error_set(LG_ERR_FORMAT,
                         "file %s: %lld bytes (%lld records), but a standard CIFAR-10 batch has 30730000 (10000 records); re-download it, or pass the file path to load it alone",
                         path, (long long)sz, (long long)(sz / LG_CIFAR10_RECORD));
    if (s != LG_OK) {
        lg_rd_close(r);
        return s;
    }
    *nrec = sz / LG_CIFAR10_RECORD;
    return LG_OK;
}

static lg_status cifar_read(lg_rd *r, int64_t nrec, lg_dataset *d, int64_t first, unsigned char *buf) {
    for (int64_t i0 = 0; i0 < nrec; i0 += CIFAR_CHUNK) {
        int64_t k = nrec - i0 < CIFAR_CHUNK ? nrec - i0 : CIFAR_CHUNK;
        LG_TRY(lg_rd_read(r, buf, (size_t)k * LG_CIFAR10_RECORD, "CIFAR-10 records"));
        for (int64_t i = 0; i < k; i++) {
            const unsigned char *rec = buf + i * LG_CIFAR10_RECORD;
            if (rec[0] > 9)
                return lg_error_set(LG_ERR_FORMAT, "file %s: label %u in record %lld is out of range 0..9",
                                    r->path, rec[0], (long long)(i0 + i));
            int64_t n = first + i0 + i;
            d->y[n] = rec[0];
            float *o = d->x + n * CIFAR_PIX; /* (3, 32, 32) */
            for (int j = 0; j < CIFAR_PIX; j++) o[j] = lg_u8_to_unit(rec[1 + j]);
        }
    }
    return lg_rd_expect_eof(r);
}

lg_status lg_data_load_cifar10(lg_dataset *out, const char *path, lg_data_split split) {
    memset(out, 0, sizeof *out);
    char paths[CIFAR_MAX_FILES][4096];
    int nfiles = 0, standard = lg_path_is_dir(path);
    if (standard) {
        if (split == LG_SPLIT_TRAIN) {
            for (int i = 0; i < 5; i++) {
                char name[32];
                snprintf(name, sizeof name, "data_batch_%d.bin", i + 1);
                LG_TRY(lg_path_join(paths[nfiles++], sizeof paths[0], path, name));
            }
        } else if (split == LG_SPLIT_TEST) {
            LG_TRY(lg_path_join(paths[nfiles++], sizeof paths[0], path, "test_batch.bin"));
        } else {
            return lg_error_set(LG_ERR_INVALID_ARG, "directory %s: CIFAR-10 has only train and test splits", path);
        }
    } else {
        if (strlen(path) >= sizeof paths[0])
            return lg_error_set(LG_ERR_INVALID_ARG, "path %s is too long", path);
        strcpy(paths[nfiles++], path);
    }

    lg_rd rd[CIFAR_MAX_FILES];
    int64_t nrec[CIFAR_MAX_FILES], total = 0;
    int opened = 0;
    lg_status s = LG_OK;
    for (; opened < nfiles; opened++) {
        s = cifar_open(&rd[opened], paths[opened], standard, &nrec[opened]);
        if (s != LG_OK) break;
        total += nrec[opened];
    }
    unsigned char *buf = NULL;
    if (s == LG_OK) s = lg_data_alloc(out, total, 3, 32, 32, 1, 10, path);
    if (s == LG_OK) {
        buf = malloc((size_t)CIFAR_CHUNK * LG_CIFAR10_RECORD);
        if (!buf) s = lg_error_set(LG_ERR_NOMEM, "file %s: cannot allocate a read buffer", path);
    }
    int64_t first = 0;
    for (int i = 0; s == LG_OK && i < nfiles; first += nrec[i], i++)
        s = cifar_read(&rd[i], nrec[i], out, first, buf);
    free(buf);
    for (int i = 0; i < opened; i++) lg_rd_close(&rd[i]);
    if (s != LG_OK) lg_data_free(out);
    return s;
}
