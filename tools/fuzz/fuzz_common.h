/* tools/fuzz/fuzz_common.h - helpers shared by the libFuzzer harnesses
 * (tools/fuzz/fuzz_<target>.c) and tests/test_fuzz_regress.c.
 *
 * Each harness defines `static lg_status fuzz_<target>(const uint8_t *data,
 * size_t size)`, which feeds the input to the library's entry points and
 * returns the status of the main one, and, unless LG_FUZZ_NO_MAIN is
 * defined, LLVMFuzzerTestOneInput calling it. The regression test includes
 * every harness with LG_FUZZ_NO_MAIN and runs the saved inputs through the
 * same functions, so the fuzzers and the test cannot drift apart.
 *
 * The contract checked on every call (FZ): a status in range, and on an
 * error a non-empty one-line message; anything else abort()s, which the
 * fuzzer reports as a crash. Inputs that need a file go to a scratch
 * directory made once per process (/tmp/lgfuzz.XXXXXX, removed at exit). */
#ifndef LIPGAN_TOOLS_FUZZ_COMMON_H
#define LIPGAN_TOOLS_FUZZ_COMMON_H

#include <ftw.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "lipgan/safetensors.h"
#include "lipgan/status.h"

/* The saved input being run (tests/test_fuzz_regress.c), for messages. */
__attribute__((unused)) static const char *fz_input_name = "";

/* Checks the error contract of one call's status s (expr names the call). */
__attribute__((unused)) static lg_status fz_check(lg_status s, const char *expr) {
    if ((int)s < 0 || s >= LG_STATUS_COUNT) {
        fprintf(stderr, "fuzz: %s%s%s returned status %d, out of range\n", fz_input_name,
                fz_input_name[0] ? ": " : "", expr, (int)s);
        abort();
    }
    if (s != LG_OK) {
        const char *m = lg_error_msg();
        if (!m || !m[0] || strchr(m, '\n')) {
            fprintf(stderr, "fuzz: %s%s%s returned %s with %s message: \"%s\"\n", fz_input_name,
                    fz_input_name[0] ? ": " : "", expr, lg_status_str(s),
                    !m || !m[0] ? "an empty" : "a multi-line", m ? m : "");
            abort();
        }
    }
    return s;
}

/* Calls expr with the thread's message cleared first, then checks it. */
#define FZ(expr) (lg_error_clear(), fz_check((expr), #expr))

/* FZ for the harness's main call, whose status it returns: also keeps the
 * message in fz_main_msg ("" on success) for tests/test_fuzz_regress.c. */
static char fz_main_msg[1024];
__attribute__((unused)) static lg_status fz_keep(lg_status s) {
    snprintf(fz_main_msg, sizeof fz_main_msg, "%s", s != LG_OK ? lg_error_msg() : "");
    return s;
}
#define FZ_MAIN(expr) fz_keep(FZ(expr))

/* Aborts with a message when an invariant of a successful result fails. */
#define FZ_ASSERT(cond)                                                                      \
    do {                                                                                     \
        if (!(cond)) {                                                                       \
            fprintf(stderr, "fuzz: %s%s%s:%d: invariant failed: %s\n", fz_input_name,             \
                    fz_input_name[0] ? ": " : "", __FILE__, __LINE__, #cond);                       \
            abort();                                                                         \
        }                                                                                    \
    } while (0)

static char fz_dir_buf[64];

__attribute__((unused)) static int fz_rm_cb(const char *p, const struct stat *sb, int flag, struct FTW *ftw) {
    (void)sb, (void)flag, (void)ftw;
    return remove(p);
}

/* Empties dir (keeps dir itself). */
__attribute__((unused)) static void fz_clear_dir(const char *dir) {
    char sub[128];
    snprintf(sub, sizeof sub, "%s", dir);
    nftw(sub, fz_rm_cb, 16, FTW_DEPTH | FTW_PHYS);
    mkdir(sub, 0700);
}

static void fz_cleanup(void) {
    if (fz_dir_buf[0]) nftw(fz_dir_buf, fz_rm_cb, 16, FTW_DEPTH | FTW_PHYS);
}

/* The process's scratch directory. */
__attribute__((unused)) static const char *fz_dir(void) {
    if (!fz_dir_buf[0]) {
        snprintf(fz_dir_buf, sizeof fz_dir_buf, "/tmp/lgfuzz.XXXXXX");
        if (!mkdtemp(fz_dir_buf)) {
            perror("fuzz: mkdtemp");
            abort();
        }
        atexit(fz_cleanup);
        /* one thread: the harnesses run on 2 shared cores */
        setenv("OMP_NUM_THREADS", "1", 1);
        setenv("OPENBLAS_NUM_THREADS", "1", 1);
    }
    return fz_dir_buf;
}

/* "<scratch>/<name>" into buf. */
__attribute__((unused)) static const char *fz_path(char *buf, size_t cap, const char *name) {
    snprintf(buf, cap, "%s/%s", fz_dir(), name);
    return buf;
}

/* Writes n bytes to path (replacing it); aborts if it cannot. */
__attribute__((unused)) static void fz_write(const char *path, const void *data, size_t n) {
    FILE *f = fopen(path, "wb");
    if (!f || (n && fwrite(data, 1, n, f) != n) || fclose(f) != 0) {
        perror(path);
        abort();
    }
}

/* Splits an input into up to max parts at the separator FZ_SEP (8 bytes);
 * missing parts get length 0. Returns the number of parts found. Harnesses
 * of several files (images + labels, a run directory) use it, and
 * tools/fuzz/gen_seeds.c writes their seeds with it. */
#define FZ_SEP "@@LGFZ@@"
#define FZ_SEP_LEN 8
__attribute__((unused)) static int fz_split(const uint8_t *data, size_t size, const uint8_t **part, size_t *len,
                                            int max) {
    int n = 0;
    size_t start = 0;
    for (int i = 0; i < max; i++) part[i] = data, len[i] = 0;
    while (n < max) {
        size_t end = size;
        if (n < max - 1)
            for (size_t i = start; i + FZ_SEP_LEN <= size; i++)
                if (memcmp(data + i, FZ_SEP, FZ_SEP_LEN) == 0) {
                    end = i;
                    break;
                }
        part[n] = data + start;
        len[n] = end - start;
        n++;
        if (end == size) break;
        start = end + FZ_SEP_LEN;
    }
    return n;
}

static uint32_t fz_be32(const uint8_t *p) {
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}
static uint32_t fz_le32(const uint8_t *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* Recomputes the CRC of every complete chunk of a PNG in place, so that
 * mutations reach the decoder instead of failing libpng's CRC check. */
__attribute__((unused)) static void fz_fix_png_crcs(uint8_t *b, size_t n) {
    size_t off = 8;
    while (off + 12 <= n) {
        uint32_t len = fz_be32(b + off);
        if (len > n - off - 12) break;
        uint32_t crc = (uint32_t)crc32(0L, b + off + 4, len + 4);
        uint8_t *c = b + off + 8 + len;
        c[0] = (uint8_t)(crc >> 24), c[1] = (uint8_t)(crc >> 16), c[2] = (uint8_t)(crc >> 8), c[3] = (uint8_t)crc;
        off += 12 + (size_t)len;
    }
}

/* A copy of a .safetensors input (n bytes; free it) whose "lipgan.crc32"
 * metadata value, if the header holds one, is recomputed over the data
 * section, so that mutations reach the parser's later checks instead of
 * failing the CRC. */
__attribute__((unused)) static uint8_t *fz_st_fixed_copy(const uint8_t *data, size_t n) {
    uint8_t *b = malloc(n ? n : 1);
    if (!b) abort();
    if (n) memcpy(b, data, n);
    (void)lg_st_restamp_crc(b, n); /* no key or a bad header: left as is */
    return b;
}

/* The same for the records of a spectra.bin (monitor.h): a 16-byte header
 * (its 4 bytes at 12 give its length), then records of magic, body length
 * bl, body, CRC-32 of the body (little-endian). */
__attribute__((unused)) static void fz_fix_spectra_crcs(uint8_t *b, size_t n) {
    if (n < 16) return;
    size_t off = fz_le32(b + 12);
    if (off < 16) return;
    while (off + 12 <= n) {
        uint32_t bl = fz_le32(b + off + 4);
        if (bl > n - off - 12) break;
        uint32_t crc = (uint32_t)crc32(0L, b + off + 8, bl);
        uint8_t *c = b + off + 8 + bl;
        c[0] = (uint8_t)crc, c[1] = (uint8_t)(crc >> 8), c[2] = (uint8_t)(crc >> 16), c[3] = (uint8_t)(crc >> 24);
        off += 12 + (size_t)bl;
    }
}

/* A malloc'ed copy (the harness may not modify libFuzzer's buffer). */
__attribute__((unused)) static uint8_t *fz_dup(const uint8_t *d, size_t n) {
    uint8_t *p = malloc(n ? n : 1);
    if (!p) abort();
    if (n) memcpy(p, d, n);
    return p;
}

#ifndef LG_FUZZ_NO_MAIN
#define LG_FUZZ_MAIN(fn)                                                  \
    int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);          \
    int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {         \
        (void)fn(data, size);                                              \
        return 0;                                                          \
    }
#else
#define LG_FUZZ_MAIN(fn)
#endif

#endif
