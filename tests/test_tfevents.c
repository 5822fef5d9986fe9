/* TensorBoard event files (lipgan/tfevents.h): CRC-32C against published
 * check values, the TFRecord framing re-parsed here, and a round trip
 * through tools/read_tfevents.py (an independent pure-Python reader that
 * verifies both CRCs) when python3 is installed: tags, steps, values and
 * images must come back; a corrupted copy must be rejected. */
#include <cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lg_test.h"
#include "lipgan/fileio.h"
#include "lipgan/image.h"
#include "lipgan/tfevents.h"

static char g_dir[256];

static void test_crc(void) {
    CHECK(lg_crc32c("123456789", 9) == 0xE3069283u, "crc32c check value: %08x", lg_crc32c("123456789", 9));
    unsigned char z[32] = {0}, ff[32];
    memset(ff, 0xff, sizeof ff);
    /* RFC 3720 B.4 test vectors */
    CHECK(lg_crc32c(z, 32) == 0x8A9136AAu, "32 zero bytes: %08x", lg_crc32c(z, 32));
    CHECK(lg_crc32c(ff, 32) == 0x62A8AB43u, "32 0xff bytes: %08x", lg_crc32c(ff, 32));
    CHECK(lg_crc32c_mask(0) == 0xa282ead8u, "mask(0)");
}

static uint64_t le64(const unsigned char *p) {
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--) v = v << 8 | p[i];
    return v;
}
static uint32_t le32(const unsigned char *p) { return (uint32_t)le64((const unsigned char[8]){p[0], p[1], p[2], p[3]}); }

/* Counts the records of a file, verifying the framing; -1 if broken. */
static int count_records(const unsigned char *b, size_t len) {
    int n = 0;
    for (size_t i = 0; i < len; n++) {
        if (len - i < 16) return -1;
        uint64_t l = le64(b + i);
        if (le32(b + i + 8) != lg_crc32c_mask(lg_crc32c(b + i, 8)) || l > len - i - 16) return -1;
        if (le32(b + i + 12 + l) != lg_crc32c_mask(lg_crc32c(b + i + 12, l))) return -1;
        i += 16 + l;
    }
    return n;
}

static int have_python(void) { return system("command -v python3 >/dev/null 2>&1") == 0; }

/* Runs the Python reader; returns its exit code and its stdout in out. */
static int run_reader(const char *path, char *out, size_t cap) {
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "python3 tools/read_tfevents.py '%s' --json 2>/dev/null", path);
    return lg_test_sh(cmd, out, cap);
}

static void test_roundtrip(void) {
    char png[400];
    snprintf(png, sizeof png, "%s/grid.png", g_dir);
    float x[4 * 3 * 8 * 8]; /* (4, 3, 8, 8) */
    for (size_t i = 0; i < sizeof x / sizeof x[0]; i++) x[i] = (float)(i % 17) / 8.0f - 1.0f;
    CHECK_OK(lg_image_write_grid(png, x, 4, 3, 8, 8, 2));
    unsigned char *pb;
    size_t plen;
    CHECK_OK(lg_file_read_all(png, &pb, &plen));
    free(pb);

    lg_tfevents *tb;
    CHECK_OK(lg_tfevents_open(&tb, g_dir));
    if (!tb) return;
    const char *path = lg_tfevents_path(tb);
    CHECK(strstr(path, "/events.out.tfevents.") != NULL, "file name %s", path);
    char fpath[512];
    snprintf(fpath, sizeof fpath, "%s", path);
    const double vals[5] = {0.5, -1.25, 3.0e-7, 1234.5678, -0.0};
    for (int s = 0; s < 5; s++) {
        CHECK_OK(lg_tfevents_scalar(tb, s * 100, "loss/D", vals[s]));
        CHECK_OK(lg_tfevents_scalar(tb, s * 100, "loss/G", -vals[s]));
    }
    CHECK_OK(lg_tfevents_scalar(tb, 5000000000LL, "big/step", 1.0));
    CHECK_OK(lg_tfevents_image_file(tb, 400, "samples", png));
    CHECK_STATUS(lg_tfevents_scalar(tb, 0, "", 1.0), LG_ERR_INVALID_ARG);
    CHECK_STATUS(lg_tfevents_image_file(tb, 0, "x", "/nonexistent.png"), LG_ERR_NOT_FOUND);
    CHECK_OK(lg_tfevents_close(tb));

    unsigned char *b;
    size_t len;
    CHECK_OK(lg_file_read_all(fpath, &b, &len));
    CHECK(count_records(b, len) == 13, "13 records (version + 12), got %d", count_records(b, len));

    if (!have_python()) {
        printf("  python3 not found: skipping the independent reader\n");
        free(b);
        return;
    }
    static char out[1 << 16];
    int rc = run_reader(fpath, out, sizeof out);
    CHECK(rc == 0, "reader exit %d", rc);
    cJSON *j = cJSON_Parse(out);
    CHECK(j != NULL, "reader output is JSON: %.200s", out);
    if (j) {
        const cJSON *evs = cJSON_GetObjectItemCaseSensitive(j, "events");
        CHECK(cJSON_GetArraySize(evs) == 13, "13 events, got %d", cJSON_GetArraySize(evs));
        const cJSON *e0 = cJSON_GetArrayItem(evs, 0);
        const cJSON *fv = cJSON_GetObjectItemCaseSensitive(e0, "file_version");
        CHECK(cJSON_IsString(fv) && !strcmp(fv->valuestring, "brain.Event:2"), "file_version");
        int seen = 0, img = 0, big = 0;
        const cJSON *e;
        cJSON_ArrayForEach(e, evs) {
            const cJSON *st = cJSON_GetObjectItemCaseSensitive(e, "step");
            const cJSON *wt = cJSON_GetObjectItemCaseSensitive(e, "wall_time");
            CHECK(cJSON_IsNumber(wt) && wt->valuedouble > 1.6e9, "wall time");
            const cJSON *v;
            cJSON_ArrayForEach(v, cJSON_GetObjectItemCaseSensitive(e, "values")) {
                const char *tag = cJSON_GetObjectItemCaseSensitive(v, "tag")->valuestring;
                const cJSON *sv = cJSON_GetObjectItemCaseSensitive(v, "simple_value");
                const cJSON *im = cJSON_GetObjectItemCaseSensitive(v, "image");
                long long step = (long long)st->valuedouble;
                if (!strcmp(tag, "loss/D") || !strcmp(tag, "loss/G")) {
                    int k = (int)(step / 100);
                    double want = (float)(tag[5] == 'D' ? vals[k] : -vals[k]);
                    CHECK(step % 100 == 0 && k < 5 && cJSON_IsNumber(sv) && sv->valuedouble == want,
                          "%s at %lld: %g vs %g", tag, step, sv ? sv->valuedouble : NAN, want);
                    seen++;
                } else if (!strcmp(tag, "big/step")) {
                    big = step == 5000000000LL && sv->valuedouble == 1.0;
                } else if (!strcmp(tag, "samples")) {
                    /* grid of 2x2 tiles of 8 + 2 px borders: 22 x 22, RGB */
                    int h = cJSON_GetObjectItemCaseSensitive(im, "height")->valueint;
                    int w = cJSON_GetObjectItemCaseSensitive(im, "width")->valueint;
                    int c = cJSON_GetObjectItemCaseSensitive(im, "colorspace")->valueint;
                    int n = cJSON_GetObjectItemCaseSensitive(im, "png_bytes")->valueint;
                    img = step == 400 && h == 22 && w == 22 && c == 3 && (size_t)n == plen &&
                          cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(im, "png_signature"));
                }
            }
        }
        CHECK(seen == 10 && img && big, "scalars %d/10, image %d, big step %d", seen, img, big);
        cJSON_Delete(j);
    }
    /* the reader must notice corruption: a flipped bit in a value */
    char bad[600];
    snprintf(bad, sizeof bad, "%s/bad.tfevents", g_dir);
    b[len / 2] ^= 0x08;
    CHECK_OK(lg_file_write_atomic(bad, b, len));
    CHECK(run_reader(bad, out, sizeof out) == 1, "corrupted file accepted by the reader");
    CHECK(count_records(b, len) == -1, "corrupted file accepted by the C check");
    free(b);
}

int main(void) {
    snprintf(g_dir, sizeof g_dir, "/tmp/lg_test_tfevents.%d", (int)getpid());
    char cmd[300];
    snprintf(cmd, sizeof cmd, "mkdir -p '%s'", g_dir);
    if (system(cmd) != 0) return 1;
    LG_TEST_RUN(test_crc);
    LG_TEST_RUN(test_roundtrip);
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", g_dir);
    if (system(cmd) != 0) return 1;
    return lg_test_summary("test_tfevents");
}
