/* Tests of the safetensors reader/writer and of atomic file writes:
 * round trip, metadata, a file written by Python (tests/data), a file for
 * tools/check_st_in_python.py, many malformed files (each must fail with
 * LG_ERR_FORMAT and a message, without crashing), every truncation and
 * random corruptions of a valid file, the data section's CRC-32 (written,
 * verified, absent in older files, malformed), and crash safety of atomic
 * writes (simulated full disk in-process; SIGKILL mid-write in a child). */
#include "lg_test.h"

#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <zlib.h>

#include "lipgan/fileio.h"
#include "lipgan/safetensors.h"

static char g_dir[64];        /* temp dir for this run */
static char g_bindir[512];    /* directory of this binary ($BUILD/tests) */

static const char *tmp_path(const char *name) {
    static char buf[8][256];
    static int k;
    k = (k + 1) % 8;
    snprintf(buf[k], sizeof buf[k], "%s/%s", g_dir, name);
    return buf[k];
}

static int file_exists(const char *p) {
    struct stat st;
    return stat(p, &st) == 0;
}

/* ------------------------------------------------------------ round trip */

static void test_roundtrip(void) {
    float w[2 * 3];              /* (2, 3) */
    float s = 7.25f;             /* () */
    float big[2 * 1 * 2 * 1 * 1 * 1 * 1 * 3]; /* 8 dims */
    int64_t iv[3] = {-5, 0, (int64_t)1 << 50};
    for (int i = 0; i < 6; i++) w[i] = (float)i * 0.1f - 0.3f;
    for (int i = 0; i < 12; i++) big[i] = -(float)i;
    w[5] = 1e-40f;               /* subnormal survives */

    lg_st_writer *wr;
    CHECK_OK(lg_st_writer_create(&wr));
    CHECK_OK(lg_st_writer_add_meta(wr, "step", "1000"));
    CHECK_OK(lg_st_writer_add_meta(wr, "quote\"back\\slash", "line\nbreak \xc3\xa9"));
    CHECK_OK(lg_st_writer_add_f32(wr, "layer.w", 2, (int64_t[]){2, 3}, w));
    CHECK_OK(lg_st_writer_add_f32(wr, "scalar", 0, NULL, &s));
    CHECK_OK(lg_st_writer_add_f32(wr, "empty", 2, (int64_t[]){0, 4}, NULL));
    CHECK_OK(lg_st_writer_add_i64(wr, "ints", 1, (int64_t[]){3}, iv));
    CHECK_OK(lg_st_writer_add_f32(wr, "eight", 8, (int64_t[]){2, 1, 2, 1, 1, 1, 1, 3}, big));
    /* writer argument errors */
    CHECK_STATUS(lg_st_writer_add_f32(wr, "layer.w", 1, (int64_t[]){1}, w), LG_ERR_INVALID_ARG);
    CHECK_STATUS(lg_st_writer_add_f32(wr, "__metadata__", 1, (int64_t[]){1}, w), LG_ERR_INVALID_ARG);
    CHECK_STATUS(lg_st_writer_add_f32(wr, "nine", 9, (int64_t[]){1, 1, 1, 1, 1, 1, 1, 1, 1}, w), LG_ERR_INVALID_ARG);
    CHECK_STATUS(lg_st_writer_add_f32(wr, "neg", 1, (int64_t[]){-1}, w), LG_ERR_INVALID_ARG);
    CHECK_STATUS(lg_st_writer_add_f32(wr, "bad\xff", 1, (int64_t[]){1}, w), LG_ERR_INVALID_ARG);
    CHECK_STATUS(lg_st_writer_add_meta(wr, "step", "2"), LG_ERR_INVALID_ARG);
    const char *path = tmp_path("rt.safetensors");
    CHECK_OK(lg_st_writer_write(wr, path, 0));
    lg_st_writer_free(wr);

    /* layout: header length is a multiple of 8, so the data is aligned */
    unsigned char *raw;
    size_t len;
    CHECK_OK(lg_file_read_all(path, &raw, &len));
    if (raw) {
        uint64_t n = 0;
        for (int i = 7; i >= 0; i--) n = n << 8 | raw[i];
        CHECK(n % 8 == 0, "header length %llu is not a multiple of 8", (unsigned long long)n);
        CHECK(len == 8 + n + 24 + 4 + 0 + 24 + 48, "file is %zu bytes", len);
        CHECK(raw[8] == '{' && raw[8 + n - 1] != '\0', "header starts with '{'");
        free(raw);
    }

    lg_st_file *f = NULL;
    CHECK_OK(lg_st_open(&f, path));
    if (!f) return;
    CHECK(lg_st_count(f) == 5, "count %zu", lg_st_count(f));
    /* file order is the order added */
    const char *order[5] = {"layer.w", "scalar", "empty", "ints", "eight"};
    for (size_t i = 0; i < 5 && i < lg_st_count(f); i++)
        CHECK(strcmp(lg_st_at(f, i)->name, order[i]) == 0, "tensor %zu is %s", i, lg_st_at(f, i)->name);
    float got[12];
    CHECK_OK(lg_st_get_f32(f, "layer.w", 2, (int64_t[]){2, 3}, got));
    CHECK(memcmp(got, w, sizeof w) == 0, "layer.w differs bitwise");
    CHECK_OK(lg_st_get_f32(f, "scalar", 0, NULL, got));
    CHECK(got[0] == 7.25f, "scalar %g", got[0]);
    CHECK_OK(lg_st_get_f32(f, "eight", 8, (int64_t[]){2, 1, 2, 1, 1, 1, 1, 3}, got));
    CHECK(memcmp(got, big, sizeof big) == 0, "eight differs");
    CHECK_OK(lg_st_get_f32(f, "empty", -1, NULL, got));
    const lg_st_tensor *t = lg_st_find(f, "empty");
    CHECK(t && t->ndim == 2 && t->shape[0] == 0 && t->shape[1] == 4 && t->numel == 0 && t->nbytes == 0, "empty");
    t = lg_st_find(f, "ints");
    CHECK(t && t->dtype == LG_ST_I64 && t->numel == 3, "ints entry");
    int64_t gi[3] = {0};
    CHECK_OK(lg_st_get_i64(f, "ints", 1, (int64_t[]){3}, gi));
    CHECK(gi[0] == iv[0] && gi[1] == iv[1] && gi[2] == iv[2], "ints %lld %lld %lld", (long long)gi[0],
          (long long)gi[1], (long long)gi[2]);
    /* metadata */
    CHECK(lg_st_meta_count(f) == 3, "meta count %zu (step, the quoted key, " LG_ST_CRC32_KEY ")",
          lg_st_meta_count(f));
    const char *v = lg_st_meta(f, "step");
    CHECK(v && strcmp(v, "1000") == 0, "meta step = %s", v ? v : "(null)");
    v = lg_st_meta(f, "quote\"back\\slash");
    CHECK(v && strcmp(v, "line\nbreak \xc3\xa9") == 0, "escaped meta = %s", v ? v : "(null)");
    CHECK(lg_st_meta(f, "nope") == NULL, "absent meta key");
    /* lookup errors */
    CHECK(lg_st_find(f, "nope") == NULL, "absent tensor");
    CHECK_STATUS(lg_st_get_f32(f, "nope", -1, NULL, got), LG_ERR_NOT_FOUND);
    CHECK_STATUS(lg_st_get_f32(f, "layer.w", 2, (int64_t[]){3, 2}, got), LG_ERR_SHAPE);
    CHECK(strstr(lg_error_msg(), "(2,3)") && strstr(lg_error_msg(), "(3,2)"), "shape message: %s", lg_error_msg());
    CHECK_STATUS(lg_st_get_f32(f, "layer.w", 1, (int64_t[]){6}, got), LG_ERR_SHAPE);
    CHECK_STATUS(lg_st_get_f32(f, "ints", -1, NULL, got), LG_ERR_UNSUPPORTED);
    CHECK_STATUS(lg_st_get_i64(f, "layer.w", -1, NULL, gi), LG_ERR_UNSUPPORTED);
    lg_st_close(f);

    /* an empty writer gives no tensors, only the CRC-32 of no bytes */
    CHECK_OK(lg_st_writer_create(&wr));
    CHECK_OK(lg_st_writer_write(wr, tmp_path("empty.safetensors"), 1));
    lg_st_writer_free(wr);
    f = NULL;
    CHECK_OK(lg_st_open(&f, tmp_path("empty.safetensors")));
    CHECK(f && lg_st_count(f) == 0 && lg_st_meta_count(f) == 1, "empty file");
    v = f ? lg_st_meta(f, LG_ST_CRC32_KEY) : NULL;
    CHECK(v && !strcmp(v, "00000000"), "CRC-32 of an empty data section: %s", v ? v : "(none)");
    lg_st_close(f);

    CHECK_STATUS(lg_st_open(&f, tmp_path("does-not-exist.safetensors")), LG_ERR_NOT_FOUND);
    CHECK(f == NULL, "no handle on failure");
    CHECK_STATUS(lg_st_open(&f, g_dir), LG_ERR_IO); /* a directory */
}

/* ---------------------------------------------------------- from Python */

static void test_python_fixture(void) {
    const char *path = "tests/data/st_from_python.safetensors";
    lg_st_file *f = NULL;
    CHECK_OK(lg_st_open(&f, path));
    if (!f) {
        fprintf(stderr, "(run the tests from the repository root)\n");
        return;
    }
    CHECK(lg_st_count(f) == 9, "count %zu", lg_st_count(f));
    CHECK(strcmp(lg_st_at(f, 0)->name, "h.empty") == 0, "data order: first is %s", lg_st_at(f, 0)->name);
    float g[6];
    CHECK_OK(lg_st_get_f32(f, "a.weight", 2, (int64_t[]){2, 3}, g));
    const float a_ref[6] = {-1.0f, -0.5f, 0.0f, 0.5f, 1.0f, 1.5f};
    CHECK(memcmp(g, a_ref, sizeof a_ref) == 0, "a.weight");
    CHECK((uintptr_t)lg_st_find(f, "a.weight")->data % 4 != 0, "fixture data is meant to be unaligned");
    CHECK_OK(lg_st_get_f32(f, "b.double", 1, (int64_t[]){3}, g));
    CHECK(g[0] == (float)(1.0 / 3.0) && g[1] == -2.5f && g[2] == 1e30f, "b.double %g %g %g", g[0], g[1], g[2]);
    CHECK_OK(lg_st_get_f32(f, "c.half", 2, (int64_t[]){2, 2}, g));
    CHECK(g[0] == 1.0f && g[1] == -2.0f && g[2] == 6.103515625e-05f && g[3] == 5.960464477539063e-08f,
          "c.half %g %g %g %g", g[0], g[1], g[2], g[3]);
    CHECK_OK(lg_st_get_f32(f, "d.bf16", 1, (int64_t[]){2}, g));
    CHECK(g[0] == 1.5f && g[1] == -3.0f, "d.bf16 %g %g", g[0], g[1]);
    CHECK_OK(lg_st_get_f32(f, "g.scalar", 0, NULL, g));
    CHECK(g[0] == 42.0f, "g.scalar %g", g[0]);
    CHECK_OK(lg_st_get_f32(f, "h.empty", 2, (int64_t[]){0, 3}, g));
    int64_t iv[4];
    CHECK_OK(lg_st_get_i64(f, "e.int", 1, (int64_t[]){3}, iv));
    CHECK(iv[0] == 1 && iv[1] == -2 && iv[2] == (int64_t)1 << 40, "e.int");
    CHECK_OK(lg_st_get_i64(f, "f.mask", 1, (int64_t[]){4}, iv));
    CHECK(iv[0] == 1 && iv[1] == 0 && iv[2] == 0 && iv[3] == 1, "f.mask");
    CHECK_OK(lg_st_get_i64(f, "i.int32", 1, (int64_t[]){2}, iv));
    CHECK(iv[0] == -7 && iv[1] == 2147483647, "i.int32");
    const lg_st_tensor *t = lg_st_find(f, "f.mask");
    CHECK(t && t->dtype == LG_ST_BOOL, "f.mask dtype");
    const char *v = lg_st_meta(f, "unicode");
    CHECK(v && strcmp(v, "h\xc3\xa9llo \xe2\x9c\x93") == 0, "unicode meta");
    v = lg_st_meta(f, "format");
    CHECK(v && strcmp(v, "pt") == 0, "format meta");
    CHECK(lg_st_meta_count(f) == 3, "meta count");
    lg_st_close(f);
}

/* A file with known contents for tools/check_st_in_python.py, left in the
 * build directory. Keep the values in sync with that script. */
static void test_write_for_python(void) {
    float w[3 * 4], b[4], sc = 3.5f;  /* (3,4), (4), () */
    for (int i = 0; i < 12; i++) w[i] = (float)i * 0.25f - 1.0f;
    for (int i = 0; i < 4; i++) b[i] = -0.5f * (float)(i + 1);
    int64_t step = 123456789012;
    lg_st_writer *wr;
    CHECK_OK(lg_st_writer_create(&wr));
    CHECK_OK(lg_st_writer_add_meta(wr, "lipgan_version", "0.1.0"));
    CHECK_OK(lg_st_writer_add_meta(wr, "note", "quote \" backslash \\ newline \n e-acute \xc3\xa9"));
    CHECK_OK(lg_st_writer_add_f32(wr, "net.weight", 2, (int64_t[]){3, 4}, w));
    CHECK_OK(lg_st_writer_add_f32(wr, "net.bias", 1, (int64_t[]){4}, b));
    CHECK_OK(lg_st_writer_add_i64(wr, "step", 1, (int64_t[]){1}, &step));
    CHECK_OK(lg_st_writer_add_f32(wr, "scalar", 0, NULL, &sc));
    char path[600];
    snprintf(path, sizeof path, "%s/st_written_by_lipgan.safetensors", g_bindir);
    CHECK_OK(lg_st_writer_write(wr, path, 1));
    lg_st_writer_free(wr);
    lg_st_file *f = NULL;
    CHECK_OK(lg_st_open(&f, path));
    lg_st_close(f);
}

/* ------------------------------------------------------------ malformed */

/* bytes = u64 hlen | header | ndata zero bytes; hlen_override >= 0 replaces
 * the length field. */
static unsigned char *make_file(const char *header, size_t hbytes, size_t ndata, long long hlen_override,
                                size_t *len) {
    *len = 8 + hbytes + ndata;
    unsigned char *p = calloc(*len, 1);
    uint64_t n = hlen_override >= 0 ? (uint64_t)hlen_override : hbytes;
    for (int i = 0; i < 8; i++) p[i] = (unsigned char)(n >> (8 * i));
    memcpy(p + 8, header, hbytes);
    return p;
}

typedef struct bad_case {
    const char *what;
    const char *header;       /* NULL: raw bytes given by `raw` */
    size_t ndata;
    long long hlen;           /* -1: actual length */
    const unsigned char *raw; /* whole file, for the short cases */
    size_t rawlen;
    const char *want;         /* the message must contain this */
} bad_case;

#define F32A "{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":"

static void test_malformed(void) {
    static const unsigned char five[5] = {1, 0, 0, 0, 0};
    static const unsigned char ones[10] = {255, 255, 255, 255, 255, 255, 255, 255, '{', '}'};
    const bad_case cases[] = {
        {"empty file", NULL, 0, -1, five, 0, "shorter than the 8-byte"},
        {"truncated header length", NULL, 0, -1, five, 5, "shorter than the 8-byte"},
        {"header length > file", "{}", 0, 1000, NULL, 0, "larger than the"},
        {"header length > file by one", "{}      ", 0, 9, NULL, 0, "larger than the"},
        {"header length above 100MB", "{}", 0, 200000000, NULL, 0, "above the limit"},
        {"header length 2^63-1", "{}", 0, 0x7fffffffffffffffLL, NULL, 0, "above the limit"},
        {"header length 2^64-1", NULL, 0, -1, ones, 10, "above the limit"},
        {"not JSON", "hello world", 0, -1, NULL, 0, "start with '{'"},
        {"broken JSON", "{not json}", 0, -1, NULL, 0, "not valid JSON"},
        {"unterminated JSON", "{\"a\":{\"dtype\":\"F32\"", 0, -1, NULL, 0, "not valid JSON"},
        {"JSON array", "[1,2]", 0, -1, NULL, 0, "start with '{'"},
        {"leading whitespace", " {}", 0, -1, NULL, 0, "start with '{'"},
        {"empty header", "", 0, -1, NULL, 0, "start with '{'"},
        {"two objects", "{}{}", 0, -1, NULL, 0, "after the JSON object"},
        {"garbage after object", "{} x", 0, -1, NULL, 0, "after the JSON object"},
        {"NUL padding", "{}\0\0", 0, -1, NULL, 0, "control character outside"},
        {"non-UTF-8 byte", "{\"a\xff\":" F32A "[0,8]}}", 8, -1, NULL, 0, "UTF-8"},
        {"overlong UTF-8", "{\"a\xc0\xaf\":" F32A "[0,8]}}", 8, -1, NULL, 0, "UTF-8"},
        {"UTF-8 surrogate", "{\"a\xed\xa0\x80\":" F32A "[0,8]}}", 8, -1, NULL, 0, "UTF-8"},
        {"truncated UTF-8", "{\"a\":" F32A "[0,8]}}\xe2\x9c", 8, -1, NULL, 0, "UTF-8"},
        {"raw newline in name", "{\"a\nb\":" F32A "[0,8]}}", 8, -1, NULL, 0, "raw control character"},
        {"\\u0000 in name", "{\"a\\u0000b\":" F32A "[0,8]}}", 8, -1, NULL, 0, "u0000"},
        {"control byte outside strings", "{\x01}", 0, -1, NULL, 0, "control character outside"},
        {"entry not an object", "{\"a\":\"F32\"}", 0, -1, NULL, 0, "not an object"},
        {"entry is a number", "{\"a\":1}", 0, -1, NULL, 0, "not an object"},
        {"missing dtype", "{\"a\":{\"shape\":[2],\"data_offsets\":[0,8]}}", 8, -1, NULL, 0, "missing \"dtype\""},
        {"missing shape", "{\"a\":{\"dtype\":\"F32\",\"data_offsets\":[0,8]}}", 8, -1, NULL, 0, "missing \"shape\""},
        {"missing data_offsets", "{\"a\":{\"dtype\":\"F32\",\"shape\":[2]}}", 8, -1, NULL, 0, "missing \"data_offsets\""},
        {"bad dtype", "{\"a\":{\"dtype\":\"F33\",\"shape\":[2],\"data_offsets\":[0,8]}}", 8, -1, NULL, 0, "unknown dtype"},
        {"lower-case dtype", "{\"a\":{\"dtype\":\"f32\",\"shape\":[2],\"data_offsets\":[0,8]}}", 8, -1, NULL, 0, "unknown dtype"},
        {"dtype not a string", "{\"a\":{\"dtype\":4,\"shape\":[2],\"data_offsets\":[0,8]}}", 8, -1, NULL, 0, "\"dtype\" is not a string"},
        {"shape negative", "{\"a\":{\"dtype\":\"F32\",\"shape\":[-2],\"data_offsets\":[0,8]}}", 8, -1, NULL, 0, "is negative"},
        {"shape float", "{\"a\":{\"dtype\":\"F32\",\"shape\":[2.0],\"data_offsets\":[0,8]}}", 8, -1, NULL, 0, "not an integer"},
        {"shape exponent", "{\"a\":{\"dtype\":\"F32\",\"shape\":[2e0],\"data_offsets\":[0,8]}}", 8, -1, NULL, 0, "not an integer"},
        {"shape string", "{\"a\":{\"dtype\":\"F32\",\"shape\":[\"2\"],\"data_offsets\":[0,8]}}", 8, -1, NULL, 0, "not an integer"},
        {"shape not array", "{\"a\":{\"dtype\":\"F32\",\"shape\":2,\"data_offsets\":[0,8]}}", 8, -1, NULL, 0, "not an array"},
        {"shape leading zero", "{\"a\":{\"dtype\":\"F32\",\"shape\":[02],\"data_offsets\":[0,8]}}", 8, -1, NULL, 0, "leading zero"},
        {"shape above 2^53", "{\"a\":{\"dtype\":\"F32\",\"shape\":[18446744073709551617,0],\"data_offsets\":[0,0]}}", 0,
         -1, NULL, 0, "above 2^53"},
        {"offsets overlap", "{\"a\":" F32A "[0,8]},\"b\":" F32A "[4,12]}}", 12, -1, NULL, 0, "overlaps"},
        {"same offsets twice", "{\"a\":" F32A "[0,8]},\"b\":" F32A "[0,8]}}", 8, -1, NULL, 0, "overlaps"},
        {"gap between tensors", "{\"a\":" F32A "[0,8]},\"b\":" F32A "[12,20]}}", 20, -1, NULL, 0, "unused bytes"},
        {"gap at start", "{\"a\":" F32A "[4,12]}}", 12, -1, NULL, 0, "unused bytes"},
        {"offsets past end", "{\"a\":" F32A "[0,8]}}", 4, -1, NULL, 0, "past the end"},
        {"trailing bytes", "{\"a\":" F32A "[0,8]}}", 12, -1, NULL, 0, "after the last tensor"},
        {"data but no tensors", "{}", 8, -1, NULL, 0, "after the last tensor"},
        {"size mismatch", "{\"a\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,8]}}", 8, -1, NULL, 0, "give 12 bytes but data_offsets span 8"},
        {"size mismatch, too few bytes", "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,8]}}", 8, -1, NULL, 0,
         "give 4 bytes but data_offsets span 8"},
        {"size mismatch F64", "{\"a\":{\"dtype\":\"F64\",\"shape\":[2],\"data_offsets\":[0,8]}}", 8, -1, NULL, 0, "give 16 bytes"},
        {"shape product overflows u64",
         "{\"a\":{\"dtype\":\"U8\",\"shape\":[4294967296,4294967296,2],\"data_offsets\":[0,0]}}", 0, -1, NULL, 0, "product of its shape overflows"},
        {"byte size overflows u64",
         "{\"a\":{\"dtype\":\"F64\",\"shape\":[4294967296,2147483648],\"data_offsets\":[0,0]}}", 0, -1, NULL, 0, "size in bytes overflows"},
        {"sub-byte size", "{\"a\":{\"dtype\":\"F4\",\"shape\":[3],\"data_offsets\":[0,2]}}", 2, -1, NULL, 0, "whole bytes"},
        {"begin > end", "{\"a\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[8,0]}}", 8, -1, NULL, 0, "begin 8 > end 0"},
        {"offsets one value", "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8]}}", 8, -1, NULL, 0, "array of two integers"},
        {"offsets three values", "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8,8]}}", 8, -1, NULL, 0, "array of two integers"},
        {"offsets strings", "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[\"0\",\"8\"]}}", 8, -1, NULL, 0, "array of two integers"},
        {"offset negative", "{\"a\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[-0,-1]}}", 0, -1, NULL, 0, "negative value"},
        {"duplicate tensor", "{\"a\":" F32A "[0,8]},\"a\":" F32A "[8,16]}}", 16, -1, NULL, 0, "appears twice"},
        {"duplicate field", "{\"a\":{\"dtype\":\"F32\",\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", 8, -1,
         NULL, 0, "field \"dtype\" appears twice"},
        {"duplicate __metadata__", "{\"__metadata__\":{},\"__metadata__\":{}}", 0, -1, NULL, 0, "\"__metadata__\" appears twice"},
        {"duplicate metadata key", "{\"__metadata__\":{\"k\":\"1\",\"k\":\"2\"}}", 0, -1, NULL, 0, "key \"k\" appears twice"},
        {"metadata value not a string", "{\"__metadata__\":{\"k\":1}}", 0, -1, NULL, 0, "not a string"},
        {"metadata value null", "{\"__metadata__\":{\"k\":null}}", 0, -1, NULL, 0, "not a string"},
        {"metadata not an object", "{\"__metadata__\":[\"k\"]}", 0, -1, NULL, 0, "not an object of strings"},
        {"metadata string", "{\"__metadata__\":\"k\"}", 0, -1, NULL, 0, "not an object of strings"},
    };
    const int ncases = (int)(sizeof cases / sizeof cases[0]);
    int rejected = 0;
    for (int i = 0; i < ncases; i++) {
        const bad_case *c = &cases[i];
        size_t len;
        unsigned char *bytes;
        if (c->header) {
            /* the "NUL padding" case has embedded NULs: its length is fixed */
            size_t hb = strcmp(c->what, "NUL padding") == 0 ? 4 : strlen(c->header);
            bytes = make_file(c->header, hb, c->ndata, c->hlen, &len);
        } else {
            len = c->rawlen;
            bytes = malloc(len ? len : 1);
            memcpy(bytes, c->raw, len);
        }
        const char *path = tmp_path("bad.safetensors");
        FILE *fp = fopen(path, "wb"); /* plain write: no fsync per case */
        CHECK(fp && fwrite(bytes, 1, len, fp) == len && fclose(fp) == 0, "writing %s", path);
        lg_st_file *f = (lg_st_file *)1;
        lg_error_clear();
        lg_status s = lg_st_open(&f, path);
        CHECK(s == LG_ERR_FORMAT, "case \"%s\": got %s (%s), want format error", c->what, lg_status_str(s),
              lg_error_msg());
        CHECK(f == NULL, "case \"%s\": handle set on failure", c->what);
        CHECK(strstr(lg_error_msg(), path) != NULL && strchr(lg_error_msg(), '\n') == NULL,
              "case \"%s\": message must be one line naming the file: %s", c->what, lg_error_msg());
        CHECK(strstr(lg_error_msg(), c->want) != NULL, "case \"%s\": rejected for another reason than \"%s\": %s",
              c->what, c->want, lg_error_msg());
        if (s == LG_ERR_FORMAT && strstr(lg_error_msg(), c->want)) rejected++;
        if (getenv("LG_TEST_VERBOSE")) printf("  %-32s -> %s\n", c->what, lg_error_msg());
        /* the same from memory */
        s = lg_st_parse(&f, bytes, len, "mem");
        CHECK(s == LG_ERR_FORMAT, "case \"%s\" (memory): got %s", c->what, lg_status_str(s));
        free(bytes);
    }
    printf("  %d of %d malformed files rejected for the expected reason\n", rejected, ncases);

    /* JSON nested far past cJSON's limit fails cleanly (no stack overflow) */
    size_t depth = 100000, len;
    char *deep = malloc(2 * depth + 16);
    size_t k = 0;
    k += (size_t)sprintf(deep, "{\"a\":");
    for (size_t i = 0; i < depth; i++) deep[k++] = '[';
    for (size_t i = 0; i < depth; i++) deep[k++] = ']';
    deep[k++] = '}';
    unsigned char *bytes = make_file(deep, k, 0, -1, &len);
    lg_st_file *f;
    CHECK_STATUS(lg_st_parse(&f, bytes, len, "deep"), LG_ERR_FORMAT);
    free(bytes);
    free(deep);
}

/* Files the reference accepts must be accepted too. */
static void test_valid_edge_cases(void) {
    const struct {
        const char *what, *header;
        size_t ndata;
    } ok[] = {
        {"empty object", "{}", 0},
        {"padded with spaces", "{}      ", 0},
        {"whitespace inside", "{ \"a\" :\t{\"dtype\" : \"F32\",\n\"shape\" : [ 2 ] , \"data_offsets\":[0, 8]}}\r\n", 8},
        {"unknown extra field", "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8],\"extra\":[1,{}]}}", 8},
        {"zero-size tensors anywhere",
         "{\"z\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[8,8]},\"a\":" F32A "[0,8]},"
         "\"y\":{\"dtype\":\"I8\",\"shape\":[3,0],\"data_offsets\":[0,0]}}",
         8},
        {"sub-byte F4", "{\"a\":{\"dtype\":\"F4\",\"shape\":[4],\"data_offsets\":[0,2]}}", 2},
        {"all dtypes",
         "{\"b\":{\"dtype\":\"BOOL\",\"shape\":[1],\"data_offsets\":[0,1]},"
         "\"u8\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[1,2]},"
         "\"i8\":{\"dtype\":\"I8\",\"shape\":[2],\"data_offsets\":[2,4]},"
         "\"i16\":{\"dtype\":\"I16\",\"shape\":[2],\"data_offsets\":[4,8]},"
         "\"f16\":{\"dtype\":\"F16\",\"shape\":[2],\"data_offsets\":[8,12]},"
         "\"bf\":{\"dtype\":\"BF16\",\"shape\":[2],\"data_offsets\":[12,16]},"
         "\"i32\":{\"dtype\":\"I32\",\"shape\":[1],\"data_offsets\":[16,20]},"
         "\"f32\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[20,24]},"
         "\"f64\":{\"dtype\":\"F64\",\"shape\":[1],\"data_offsets\":[24,32]},"
         "\"i64\":{\"dtype\":\"I64\",\"shape\":[1],\"data_offsets\":[32,40]},"
         "\"u64\":{\"dtype\":\"U64\",\"shape\":[1],\"data_offsets\":[40,48]}}",
         48},
        {"escaped name", "{\"a\\\"\\u00e9\\n\":" F32A "[0,8]},\"__metadata__\":{}}", 8},
    };
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        size_t len;
        unsigned char *bytes = make_file(ok[i].header, strlen(ok[i].header), ok[i].ndata, -1, &len);
        lg_st_file *f = NULL;
        lg_status s = lg_st_parse(&f, bytes, len, ok[i].what);
        CHECK(s == LG_OK, "valid case \"%s\" rejected: %s", ok[i].what, lg_error_msg());
        if (i == 7) CHECK(f && lg_st_find(f, "a\"\xc3\xa9\n") != NULL, "escaped name lookup");
        if (i == 6 && f) {
            float x[2];
            CHECK_OK(lg_st_get_f32(f, "f64", 1, (int64_t[]){1}, x));
            CHECK(x[0] == 0.0f, "zero f64");
            CHECK_STATUS(lg_st_get_f32(f, "i16", -1, NULL, x), LG_ERR_UNSUPPORTED);
            CHECK(strstr(lg_error_msg(), "I16") != NULL, "dtype named in message: %s", lg_error_msg());
        }
        lg_st_close(f);
        free(bytes);
    }
}

/* Every proper prefix of a valid file is rejected; random corruptions of
 * the header never crash and either load or fail with a format error. */
static void test_truncation_and_corruption(void) {
    float w[5] = {1, 2, 3, 4, 5}; /* (5) */
    lg_st_writer *wr;
    CHECK_OK(lg_st_writer_create(&wr));
    CHECK_OK(lg_st_writer_add_meta(wr, "k", "v"));
    CHECK_OK(lg_st_writer_add_f32(wr, "w", 1, (int64_t[]){5}, w));
    CHECK_OK(lg_st_writer_add_f32(wr, "v", 2, (int64_t[]){1, 2}, w));
    const char *path = tmp_path("good.safetensors");
    CHECK_OK(lg_st_writer_write(wr, path, 0));
    lg_st_writer_free(wr);
    unsigned char *good;
    size_t len;
    CHECK_OK(lg_file_read_all(path, &good, &len));
    if (!good) return;
    int bad_prefix = 0;
    for (size_t n = 0; n < len; n++) {
        lg_st_file *f;
        if (lg_st_parse(&f, good, n, "prefix") != LG_ERR_FORMAT) bad_prefix++;
    }
    CHECK(bad_prefix == 0, "%d truncated files not rejected", bad_prefix);
    lg_test_rng r = lg_test_rng_make(7);
    unsigned char *buf = malloc(len);
    /* the flips below pick positions in [0, len - 20) */
    CHECK(len > 20 && buf, "fuzz: a %zu-byte file (need > 20) or no buffer", len);
    if (len <= 20 || !buf) {
        free(buf);
        free(good);
        return;
    }
    int loaded = 0, failed = 0, other = 0;
    for (int it = 0; it < 3000; it++) {
        memcpy(buf, good, len);
        int nflip = 1 + (int)(lg_test_rng_u64(&r) % 3);
        for (int j = 0; j < nflip; j++) {
            size_t pos = (size_t)(lg_test_rng_u64(&r) % (len - 20)); /* mostly header */
            uint64_t x = lg_test_rng_u64(&r);
            buf[pos] = (x & 256) ? (unsigned char)x : (unsigned char)"{}[]\",:0123456789-."[x % 20];
        }
        lg_st_file *f = NULL;
        lg_status s = lg_st_parse(&f, buf, len, "fuzz");
        if (s == LG_OK) {
            loaded++;
            /* whatever loaded must be self-consistent */
            for (size_t i = 0; i < lg_st_count(f); i++) {
                const lg_st_tensor *t = lg_st_at(f, i);
                CHECK((const unsigned char *)t->data >= (const unsigned char *)lg_st_at(f, 0)->data - t->offset &&
                          t->nbytes == (size_t)t->numel * (size_t)lg_st_dtype_bits(t->dtype) / 8,
                      "fuzz: inconsistent tensor %s", t->name);
            }
            lg_st_close(f);
        } else if (s == LG_ERR_FORMAT) {
            failed++;
        } else {
            other++;
        }
    }
    CHECK(other == 0, "fuzz: %d results other than ok/format error", other);
    printf("  fuzz: %d loaded, %d rejected\n", loaded, failed);
    free(buf);
    free(good);
}

/* ---------------------------------------------------------------- CRC-32 */

/* The header length of a whole file in buf. */
static uint64_t hlen_of(const unsigned char *buf) {
    uint64_t n = 0;
    for (int i = 7; i >= 0; i--) n = n << 8 | buf[i];
    return n;
}

/* The writer stores zlib's CRC-32 of the data section (every byte after
 * the header) as 8 lowercase hex digits under "lipgan.crc32"; the reader
 * refuses a file whose data no longer matches it, naming the file. */
static void test_crc_written_and_verified(void) {
    float w[3 * 5];                /* (3, 5) */
    int64_t iv[2] = {7, -9};       /* (2) */
    for (int i = 0; i < 15; i++) w[i] = (float)i * 0.5f - 2.0f;
    lg_st_writer *wr;
    CHECK_OK(lg_st_writer_create(&wr));
    CHECK_OK(lg_st_writer_add_meta(wr, "format", "lipgan-test-v1"));
    /* a stale value (e.g. copied from another file's metadata) is replaced */
    CHECK_OK(lg_st_writer_add_meta(wr, LG_ST_CRC32_KEY, "00000000"));
    CHECK_OK(lg_st_writer_add_f32(wr, "w", 2, (int64_t[]){3, 5}, w));
    CHECK_OK(lg_st_writer_add_f32(wr, "none", 1, (int64_t[]){0}, NULL));
    CHECK_OK(lg_st_writer_add_i64(wr, "i", 1, (int64_t[]){2}, iv));
    const char *path = tmp_path("crc.safetensors");
    CHECK_OK(lg_st_writer_write(wr, path, 1));
    lg_st_writer_free(wr);
    unsigned char *raw;
    size_t len;
    CHECK_OK(lg_file_read_all(path, &raw, &len));
    if (!raw) return;
    uint64_t hl = hlen_of(raw);
    CHECK(len == 8 + hl + sizeof w + sizeof iv, "file is %zu bytes", len);
    /* the value, found in the header text, is the CRC-32 of the data */
    char want[16], needle[64];
    snprintf(want, sizeof want, "%08lx", crc32(0L, raw + 8 + hl, (uInt)(len - 8 - hl)));
    snprintf(needle, sizeof needle, "\"" LG_ST_CRC32_KEY "\":\"%s\"", want);
    char *hdr = strndup((const char *)raw + 8, (size_t)hl);
    CHECK(hdr && strstr(hdr, needle) && strstr(hdr, "\"__metadata__\""), "header lacks %s: %s", needle,
          hdr ? hdr : "");
    int nkey = 0;
    for (const char *q = hdr; q && (q = strstr(q, LG_ST_CRC32_KEY)) != NULL; q++) nkey++;
    CHECK(nkey == 1, "the key appears %d times", nkey);
    free(hdr);
    lg_st_file *f = NULL;
    CHECK_OK(lg_st_open(&f, path));
    const char *v = f ? lg_st_meta(f, LG_ST_CRC32_KEY) : NULL;
    CHECK(v && !strcmp(v, want), "meta %s = %s, expected %s", LG_ST_CRC32_KEY, v ? v : "(none)", want);
    CHECK(f && lg_st_meta_count(f) == 2, "meta count %zu: format and one CRC", f ? lg_st_meta_count(f) : 0);
    lg_st_close(f);

    /* every single flipped bit of the data section is refused */
    const char *bad = tmp_path("crc_bad.safetensors");
    int accepted = 0, wrong = 0;
    for (size_t pos = 8 + hl; pos < len; pos++)
        for (int bit = 0; bit < 8; bit += 3) {
            raw[pos] ^= (unsigned char)(1u << bit);
            lg_status s = lg_st_parse(&f, raw, len, "mem.safetensors");
            if (s == LG_OK) {
                accepted++;
                lg_st_close(f);
            } else if (s != LG_ERR_FORMAT || !strstr(lg_error_msg(), "file mem.safetensors: data damaged (CRC-32 ") ||
                       !strstr(lg_error_msg(), want)) {
                wrong++;
                if (wrong == 1) fprintf(stderr, "  unexpected: %s: %s\n", lg_status_str(s), lg_error_msg());
            }
            raw[pos] ^= (unsigned char)(1u << bit);
        }
    CHECK(accepted == 0 && wrong == 0, "flipped data bits: %d accepted, %d refused otherwise", accepted, wrong);
    /* the same from a file: the message names it, stored and computed values, the way out */
    raw[8 + hl + 5] ^= 0xff;
    CHECK_OK(lg_file_write_atomic(bad, raw, len));
    f = NULL;
    lg_status s = lg_st_open(&f, bad);
    char stored_computed[64];
    snprintf(stored_computed, sizeof stored_computed, "(CRC-32 %s stored, %08lx computed)", want,
             crc32(0L, raw + 8 + hl, (uInt)(len - 8 - hl)));
    CHECK(s == LG_ERR_FORMAT && !f && strstr(lg_error_msg(), bad) && strstr(lg_error_msg(), "data damaged") &&
              strstr(lg_error_msg(), stored_computed) && strstr(lg_error_msg(), "older checkpoint") &&
              !strchr(lg_error_msg(), '\n'),
          "damaged file: %s: %s", lg_status_str(s), lg_error_msg());
    /* a quick look (peek) reads the header only and does not verify */
    char buf[64];
    CHECK(lg_st_peek_meta(bad, "format", buf, sizeof buf) == 1 && !strcmp(buf, "lipgan-test-v1"), "peek: %s", buf);
    /* LG_ST_NO_VERIFY skips the computation */
    CHECK_OK(lg_st_open_ex(&f, bad, LG_ST_NO_VERIFY));
    lg_st_close(f);
    CHECK_OK(lg_st_parse_ex(&f, raw, len, "mem", LG_ST_NO_VERIFY));
    lg_st_close(f);
    /* restamping the changed data makes it verify again, with the new CRC */
    CHECK_OK(lg_st_restamp_crc(raw, len));
    f = NULL;
    CHECK_OK(lg_st_parse(&f, raw, len, "mem"));
    char now[16];
    snprintf(now, sizeof now, "%08lx", crc32(0L, raw + 8 + hl, (uInt)(len - 8 - hl)));
    v = f ? lg_st_meta(f, LG_ST_CRC32_KEY) : NULL;
    CHECK(v && !strcmp(v, now) && strcmp(now, want) != 0, "restamped CRC %s, want %s", v ? v : "(none)", now);
    lg_st_close(f);
    /* nothing to restamp: too short, a header past the end, no key */
    CHECK(lg_st_restamp_crc(raw, 7) == LG_ERR_FORMAT, "7 bytes restamped");
    CHECK(lg_st_restamp_crc(raw, 8 + hl - 1) == LG_ERR_FORMAT, "cut header restamped");
    unsigned char plain[24] = {16, 0, 0, 0, 0, 0, 0, 0, '{', '}', ' ', ' ', ' ', ' ', ' ', ' ', ' ', ' ', ' ', ' ', ' ', ' ', ' ', ' '};
    CHECK(lg_st_restamp_crc(plain, sizeof plain) == LG_ERR_FORMAT && strstr(lg_error_msg(), LG_ST_CRC32_KEY),
          "no key: %s", lg_error_msg());
    free(raw);
}

/* Files without the key (PyTorch's, the Inception weights, lipgan's from
 * before it) are read as before, damaged data or not; a key whose value is
 * not 8 lowercase hex digits is a format error naming the key. */
static void test_crc_absent_and_malformed(void) {
    /* the Python fixture has no key: a flipped data byte still loads */
    unsigned char *raw;
    size_t len;
    CHECK_OK(lg_file_read_all("tests/data/st_from_python.safetensors", &raw, &len));
    if (raw) {
        lg_st_file *f = NULL;
        raw[len - 1] ^= 0xff;
        CHECK_OK(lg_st_parse(&f, raw, len, "python"));
        CHECK(f && !lg_st_meta(f, LG_ST_CRC32_KEY), "the fixture has no CRC key");
        lg_st_close(f);
        free(raw);
    }
    /* hand-made headers over 8 data bytes {1,2,...,8} */
    const unsigned char data[8] = {1, 2, 3, 4, 5, 6, 7, 8};
    char good[16];
    snprintf(good, sizeof good, "%08lx", crc32(0L, data, 8));
    const struct {
        const char *value; /* NULL: no key */
        int ok;
    } cases[] = {
        {NULL, 1},       {good, 1},         {"ABCDEF01", 0},  {"1234567", 0},     {"123456789", 0},
        {"", 0},         {"0x123456", 0},   {"1234567g", 0},  {" 1234567", 0},   {"12345678\\n", 0},
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        char hdr[256];
        if (cases[k].value)
            snprintf(hdr, sizeof hdr, "{\"__metadata__\":{\"" LG_ST_CRC32_KEY "\":\"%s\"},\"a\":" F32A "[0,8]}}",
                     cases[k].value);
        else
            snprintf(hdr, sizeof hdr, "{\"a\":" F32A "[0,8]}}");
        size_t n;
        unsigned char *bytes = make_file(hdr, strlen(hdr), 8, -1, &n);
        memcpy(bytes + n - 8, data, 8);
        lg_st_file *f = NULL;
        lg_status s = lg_st_parse(&f, bytes, n, "hand.safetensors");
        const char *what = cases[k].value ? cases[k].value : "(no key)";
        if (cases[k].ok) {
            CHECK(s == LG_OK, "%s: %s: %s", what, lg_status_str(s), lg_error_msg());
            lg_st_close(f);
            /* damaged: refused with the key, accepted without it */
            bytes[n - 3] ^= 0x10;
            s = lg_st_parse(&f, bytes, n, "hand.safetensors");
            if (cases[k].value)
                CHECK(s == LG_ERR_FORMAT && strstr(lg_error_msg(), "data damaged"), "%s damaged: %s: %s", what,
                      lg_status_str(s), lg_error_msg());
            else
                CHECK(s == LG_OK, "no key, damaged: %s: %s", lg_status_str(s), lg_error_msg());
            lg_st_close(f);
        } else {
            CHECK(s == LG_ERR_FORMAT && !f && strstr(lg_error_msg(), "hand.safetensors") &&
                      strstr(lg_error_msg(), "\"" LG_ST_CRC32_KEY "\"") && strstr(lg_error_msg(), "hex digits") &&
                      !strchr(lg_error_msg(), '\n'),
                  "malformed \"%s\": %s: %s", what, lg_status_str(s), lg_error_msg());
            /* even when the computation is skipped */
            CHECK_STATUS(lg_st_parse_ex(&f, bytes, n, "hand", LG_ST_NO_VERIFY), LG_ERR_FORMAT);
        }
        free(bytes);
    }
}

/* ---------------------------------------------------------- atomic write */

static int file_is(const char *path, const char *content) {
    unsigned char *b;
    size_t n;
    if (lg_file_read_all(path, &b, &n) != LG_OK) return 0;
    int same = n == strlen(content) && memcmp(b, content, n) == 0;
    free(b);
    return same;
}

static void test_atomic(void) {
    const char *path = tmp_path("ckpt.bin");
    char big[4096];
    memset(big, 'x', sizeof big);
    big[sizeof big - 1] = '\0';
    CHECK_OK(lg_file_write_atomic(path, "version one", 11));
    CHECK(file_is(path, "version one"), "first write");

    /* simulated full disk: error, old file intact, temp file removed */
    lg_file_fault_fail_after(100);
    CHECK_STATUS(lg_file_write_atomic(path, big, sizeof big - 1), LG_ERR_IO);
    CHECK(strstr(lg_error_msg(), "no space") != NULL, "message: %s", lg_error_msg());
    lg_file_fault_fail_after(-1);
    CHECK(file_is(path, "version one"), "old file survives a failed write");
    char tmp[300];
    snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid());
    CHECK(!file_exists(tmp), "temp file removed after a failed write");

    /* a file that may not exist yet: missing is fine and says nothing,
     * present is read, anything else is still an error */
    unsigned char *buf = (unsigned char *)"x";
    size_t len = 7;
    CHECK_OK(lg_file_read_optional(tmp_path("no_such_log"), &buf, &len));
    CHECK(!buf && len == 0 && !*lg_error_msg(), "missing: buf %p len %zu msg \"%s\"", (void *)buf,
          len, lg_error_msg());
    CHECK_OK(lg_file_read_optional(path, &buf, &len));
    CHECK(buf && len == 11 && !memcmp(buf, "version one", 11), "present: %zu bytes", len);
    free(buf);
    CHECK_STATUS(lg_file_read_optional(g_dir, &buf, &len), LG_ERR_IO);

    /* the safetensors writer goes through the same path */
    float w[256] = {0}; /* (256) */
    lg_st_writer *wr;
    CHECK_OK(lg_st_writer_create(&wr));
    CHECK_OK(lg_st_writer_add_f32(wr, "w", 1, (int64_t[]){256}, w));
    const char *stp = tmp_path("model.safetensors");
    CHECK_OK(lg_st_writer_write(wr, stp, 1));
    lg_file_fault_fail_after(200);
    CHECK_STATUS(lg_st_writer_write(wr, stp, 1), LG_ERR_IO);
    lg_file_fault_fail_after(-1);
    lg_st_file *f = NULL;
    CHECK_OK(lg_st_open(&f, stp));
    lg_st_close(f);

    /* a crash mid-write (SIGKILL in a child): the old file is intact, only
     * a partial temp file is left behind */
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        setenv("LG_FAULT_CHECKPOINT_ABORT_AFTER_BYTES", "50", 1);
        lg_status s = lg_st_writer_write(wr, stp, 1);
        _exit(s == LG_OK ? 3 : 4); /* not reached if the hook works */
    }
    int status = 0;
    CHECK(pid > 0 && waitpid(pid, &status, 0) == pid, "fork/wait");
    CHECK(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL, "child was killed by SIGKILL (status %d)", status);
    f = NULL;
    CHECK_OK(lg_st_open(&f, stp));
    CHECK(f && lg_st_count(f) == 1, "old file still valid after the crash");
    lg_st_close(f);
    snprintf(tmp, sizeof tmp, "%s.tmp.%ld", stp, (long)pid);
    struct stat st;
    CHECK(stat(tmp, &st) == 0 && st.st_size == 50, "partial temp file of 50 bytes left by the crash");
    unlink(tmp);

    /* a real full disk, not the simulated one: write(2) itself fails (EFBIG
     * past RLIMIT_FSIZE, SIGXFSZ ignored) in a child; the error names the
     * file and the fix, the old file is intact, the temp file removed */
    fflush(NULL);
    pid = fork();
    if (pid == 0) {
        signal(SIGXFSZ, SIG_IGN);
        struct rlimit rl = {300, 300};
        if (setrlimit(RLIMIT_FSIZE, &rl) != 0) _exit(10);
        lg_status s = lg_st_writer_write(wr, stp, 1);
        const char *m = lg_error_msg();
        int bad = s != LG_ERR_IO ? 11 : !strstr(m, "write failed after") || !strstr(m, stp) ? 12
                  : !strstr(m, "disk space") ? 13 : 0;
        if (bad) fprintf(stderr, "test_safetensors: RLIMIT_FSIZE write: status %d: %s\n", (int)s, m);
        char t2[300];
        snprintf(t2, sizeof t2, "%s.tmp.%ld", stp, (long)getpid());
        if (!bad && access(t2, F_OK) == 0) bad = 14;
        lg_st_file *f2 = NULL;
        if (!bad && (lg_st_open(&f2, stp) != LG_OK || lg_st_count(f2) != 1)) bad = 15;
        lg_st_close(f2);
        _exit(bad);
    }
    status = 0;
    CHECK(pid > 0 && waitpid(pid, &status, 0) == pid, "fork/wait");
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0,
          "write(2) failing (RLIMIT_FSIZE): child status %d (10 setrlimit, 11 status, 12-13 message, "
          "14 temp file left, 15 old file damaged)", status);
    lg_st_writer_free(wr);

    /* a new write replaces the file */
    CHECK_OK(lg_file_write_atomic(path, "version two", 11));
    CHECK(file_is(path, "version two"), "second write");

    /* non-atomic writes go straight to the path */
    lg_wfile wf;
    CHECK_OK(lg_wfile_open(&wf, path, 0));
    CHECK_OK(lg_wfile_write(&wf, "abc", 3));
    CHECK_OK(lg_wfile_commit(&wf));
    CHECK(file_is(path, "abc"), "non-atomic write");

    /* abort leaves the old file */
    CHECK_OK(lg_wfile_open(&wf, path, 1));
    CHECK_OK(lg_wfile_write(&wf, "zzzz", 4));
    lg_wfile_abort(&wf);
    CHECK(file_is(path, "abc"), "abort keeps the old file");

    CHECK_STATUS(lg_file_write_atomic(tmp_path("no/such/dir/x"), "a", 1), LG_ERR_IO);
    CHECK_STATUS(lg_file_write_atomic("", "a", 1), LG_ERR_INVALID_ARG);
    /* a relative path in the current directory (dir fsync of ".") */
    char rel[64];
    snprintf(rel, sizeof rel, "lg_st_rel_%ld.tmpfile", (long)getpid());
    CHECK_OK(lg_file_write_atomic(rel, "r", 1));
    CHECK(file_is(rel, "r"), "relative path");
    unlink(rel);
}

static void cleanup_dir(void) {
    const char *names[] = {"rt.safetensors", "empty.safetensors", "bad.safetensors", "good.safetensors",
                           "ckpt.bin", "model.safetensors", "peek.safetensors", "peek_cut.safetensors",
                           "peek_bad.safetensors", "crc.safetensors", "crc_bad.safetensors"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) unlink(tmp_path(names[i]));
    if (rmdir(g_dir) != 0) fprintf(stderr, "note: could not remove %s: %s\n", g_dir, strerror(errno));
}

/* lg_st_peek_meta reads a metadata value from the header alone */
static void test_peek_meta(void) {
    float w[4] = {1, 2, 3, 4}; /* (4) */
    lg_st_writer *wr;
    CHECK_OK(lg_st_writer_create(&wr));
    CHECK_OK(lg_st_writer_add_meta(wr, "format", "lipgan-test-v1"));
    CHECK_OK(lg_st_writer_add_f32(wr, "w", 1, (int64_t[]){4}, w));
    const char *path = tmp_path("peek.safetensors");
    CHECK_OK(lg_st_writer_write(wr, path, 0));
    lg_st_writer_free(wr);
    char buf[64], small[5];
    CHECK(lg_st_peek_meta(path, "format", buf, sizeof buf) == 1 && !strcmp(buf, "lipgan-test-v1"), "format: %s",
          buf);
    CHECK(lg_st_peek_meta(path, "format", small, sizeof small) == 1 && !strcmp(small, "lipg"), "truncated: %s",
          small);
    CHECK(lg_st_peek_meta(path, "step", buf, sizeof buf) == 0 && buf[0] == '\0', "absent key");
    CHECK(lg_st_peek_meta(tmp_path("missing.safetensors"), "format", buf, sizeof buf) == 0, "missing file");
    /* a file whose data section is cut off: the header alone still answers */
    unsigned char *raw;
    size_t len;
    CHECK_OK(lg_file_read_all(path, &raw, &len));
    const char *cut = tmp_path("peek_cut.safetensors");
    CHECK_OK(lg_file_write_atomic(cut, raw, len - 8));
    CHECK(lg_st_peek_meta(cut, "format", buf, sizeof buf) == 1, "header of a truncated file");
    /* a header length past the end of the file: not safetensors */
    raw[0] = 0xff, raw[1] = 0xff;
    const char *bad = tmp_path("peek_bad.safetensors");
    CHECK_OK(lg_file_write_atomic(bad, raw, len));
    CHECK(lg_st_peek_meta(bad, "format", buf, sizeof buf) == 0, "bad header length");
    free(raw);
}

int main(int argc, char **argv) {
    (void)argc;
    snprintf(g_dir, sizeof g_dir, "/tmp/lg_st_XXXXXX");
    if (!mkdtemp(g_dir)) {
        perror("mkdtemp");
        return 1;
    }
    snprintf(g_bindir, sizeof g_bindir, "%s", argv[0]);
    char *slash = strrchr(g_bindir, '/');
    if (slash) *slash = '\0';
    else snprintf(g_bindir, sizeof g_bindir, ".");

    LG_TEST_RUN(test_roundtrip);
    LG_TEST_RUN(test_python_fixture);
    LG_TEST_RUN(test_write_for_python);
    LG_TEST_RUN(test_malformed);
    LG_TEST_RUN(test_valid_edge_cases);
    LG_TEST_RUN(test_truncation_and_corruption);
    LG_TEST_RUN(test_crc_written_and_verified);
    LG_TEST_RUN(test_crc_absent_and_malformed);
    LG_TEST_RUN(test_atomic);
    LG_TEST_RUN(test_peek_meta);
    cleanup_dir();
    return lg_test_summary("test_safetensors");
}
