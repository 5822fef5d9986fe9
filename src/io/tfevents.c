/* TensorBoard event files: TFRecord framing with CRC-32C and a hand-written
 * protobuf encoding of the few Event fields we use (lipgan/tfevents.h). */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "lipgan/fileio.h"
#include "lipgan/tfevents.h"

#include "io/bytebuf.h"
#include "io/png_read.h"

struct lg_tfevents {
    FILE *f;
    char *path;
};

/* ---- CRC-32C (reflected 0x82f63b78), one 256-entry table ---- */

static uint32_t g_crc_tab[256];
static int g_crc_ready;

static void crc_init(void) {
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++) c = c & 1 ? (c >> 1) ^ 0x82f63b78u : c >> 1;
        g_crc_tab[i] = c;
    }
    g_crc_ready = 1;
}

uint32_t lg_crc32c(const void *data, size_t n) {
    if (!g_crc_ready) crc_init(); /* idempotent: a race writes the same values */
    const unsigned char *p = data;
    uint32_t c = 0xffffffffu;
    for (size_t i = 0; i < n; i++) c = g_crc_tab[(c ^ p[i]) & 0xff] ^ (c >> 8);
    return c ^ 0xffffffffu;
}

uint32_t lg_crc32c_mask(uint32_t crc) { return ((crc >> 15) | (crc << 17)) + 0xa282ead8u; }

/* ---- protobuf encoding into a growable buffer ---- */

typedef lg_bytebuf pb;
#define pb_put lg_bytebuf_put

static void pb_varint(pb *b, uint64_t v) {
    unsigned char s[10];
    int n = 0;
    do {
        s[n] = (unsigned char)(v & 0x7f);
        v >>= 7;
        if (v) s[n] |= 0x80;
        n++;
    } while (v);
    pb_put(b, s, (size_t)n);
}

/* key = field << 3 | wire type (0 varint, 1 64-bit, 2 length-delimited, 5 32-bit) */
static void pb_key(pb *b, int field, int wt) { pb_varint(b, (uint64_t)field << 3 | (uint64_t)wt); }

static void pb_double(pb *b, int field, double v) {
    uint64_t u;
    memcpy(&u, &v, 8);
    unsigned char s[8];
    for (int i = 0; i < 8; i++) s[i] = (unsigned char)(u >> (8 * i));
    pb_key(b, field, 1);
    pb_put(b, s, 8);
}

static void pb_float(pb *b, int field, float v) {
    uint32_t u;
    memcpy(&u, &v, 4);
    unsigned char s[4];
    for (int i = 0; i < 4; i++) s[i] = (unsigned char)(u >> (8 * i));
    pb_key(b, field, 5);
    pb_put(b, s, 4);
}

/* int64/int32 fields: two's complement as a 64-bit varint (proto rules) */
static void pb_int(pb *b, int field, int64_t v) {
    pb_key(b, field, 0);
    pb_varint(b, (uint64_t)v);
}

static void pb_bytes(pb *b, int field, const void *data, size_t n) {
    pb_key(b, field, 2);
    pb_varint(b, n);
    pb_put(b, data, n);
}

static void pb_sub(pb *b, int field, const pb *sub) {
    if (sub->oom) b->oom = 1;
    pb_bytes(b, field, sub->p, sub->n);
}

static double wall_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* Frames one serialized Event as a TFRecord and writes it. */
static lg_status write_record(lg_tfevents *w, const pb *ev) {
    if (ev->oom) return lg_error_set(LG_ERR_NOMEM, "tfevents: out of memory");
    unsigned char hdr[12];
    uint64_t len = ev->n;
    for (int i = 0; i < 8; i++) hdr[i] = (unsigned char)(len >> (8 * i));
    uint32_t c = lg_crc32c_mask(lg_crc32c(hdr, 8));
    for (int i = 0; i < 4; i++) hdr[8 + i] = (unsigned char)(c >> (8 * i));
    unsigned char tail[4];
    c = lg_crc32c_mask(lg_crc32c(ev->p, ev->n));
    for (int i = 0; i < 4; i++) tail[i] = (unsigned char)(c >> (8 * i));
    if (fwrite(hdr, 1, 12, w->f) != 12 || fwrite(ev->p, 1, ev->n, w->f) != ev->n || fwrite(tail, 1, 4, w->f) != 4)
        return lg_error_set(LG_ERR_IO, "tfevents: cannot write %s: %s", w->path, strerror(errno));
    return LG_OK;
}

/* Event{wall_time, step, summary{value{tag, <payload>}}}, where the payload
 * is written by the caller into val after the tag. */
static lg_status write_value(lg_tfevents *w, int64_t step, const pb *val) {
    pb sum = {0}, ev = {0};
    pb_sub(&sum, 1, val);
    pb_double(&ev, 1, wall_now());
    pb_int(&ev, 2, step);
    pb_sub(&ev, 5, &sum);
    lg_status st = write_record(w, &ev);
    free(sum.p);
    free(ev.p);
    return st;
}

/* Length of the valid UTF-8 prefix of s (no overlong forms, surrogates or
 * code points above U+10FFFF). */
static size_t utf8_valid_prefix(const unsigned char *s) {
    size_t i = 0;
    while (s[i]) {
        unsigned b = s[i];
        int k = b < 0x80 ? 0 : (b & 0xe0) == 0xc0 ? 1 : (b & 0xf0) == 0xe0 ? 2 : (b & 0xf8) == 0xf0 ? 3 : -1;
        if (k < 0) return i;
        uint32_t cp = k == 0 ? b : b & (0x3fu >> k);
        for (int j = 1; j <= k; j++) {
            if ((s[i + j] & 0xc0) != 0x80) return i; /* also stops at the NUL */
            cp = cp << 6 | (s[i + j] & 0x3fu);
        }
        static const uint32_t min_cp[4] = {0, 0x80, 0x800, 0x10000};
        if (cp < min_cp[k] || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return i;
        i += (size_t)k + 1;
    }
    return i;
}

/* A tag is a protobuf string: TensorBoard cannot decode a record whose tag
 * is not UTF-8, so such a tag is refused rather than written. */
static lg_status check_tag(const char *tag) {
    if (!tag || !*tag) return lg_error_set(LG_ERR_INVALID_ARG, "tfevents: empty tag");
    size_t ok = utf8_valid_prefix((const unsigned char *)tag);
    if (tag[ok])
        return lg_error_set(LG_ERR_INVALID_ARG,
                            "tfevents: tag is not valid UTF-8 (byte %zu of %zu); TensorBoard reads only UTF-8 tags",
                            ok, strlen(tag));
    return LG_OK;
}

/* s with control bytes as '?', cut to fit cap, for one-line messages. */
static const char *printable(const char *s, char *buf, size_t cap) {
    size_t n = 0;
    for (; s[n] && n + 4 < cap; n++) buf[n] = (unsigned char)s[n] < 0x20 || s[n] == 0x7f ? '?' : s[n];
    snprintf(buf + n, cap - n, "%s", s[n] ? "..." : "");
    return buf;
}

lg_status lg_tfevents_open(lg_tfevents **out, const char *dir) {
    *out = NULL;
    char host[64] = "localhost";
    if (gethostname(host, sizeof host) != 0) snprintf(host, sizeof host, "localhost");
    host[sizeof host - 1] = '\0';
    for (char *p = host; *p; p++)
        if (*p == '/' || *p == ' ') *p = '_';
    lg_tfevents *w = calloc(1, sizeof *w);
    size_t pl = strlen(dir) + strlen(host) + 96;
    if (!w || !(w->path = malloc(pl))) {
        free(w);
        return lg_error_set(LG_ERR_NOMEM, "tfevents: out of memory");
    }
    /* a per-process sequence number keeps two writers opened within the
     * same second from sharing a name; "wx" never truncates an existing file */
    static _Atomic int seq;
    snprintf(w->path, pl, "%s/events.out.tfevents.%010lld.%s.%d.%d.lipgan", dir, (long long)time(NULL), host,
             (int)getpid(), seq++);
    if (!(w->f = fopen(w->path, "wx"))) {
        lg_status st = lg_error_set(LG_ERR_IO, "tfevents: cannot create %s: %s", w->path, strerror(errno));
        free(w->path);
        free(w);
        return st;
    }
    pb ev = {0};
    pb_double(&ev, 1, wall_now());
    pb_bytes(&ev, 3, "brain.Event:2", 13);
    lg_status st = write_record(w, &ev);
    free(ev.p);
    if (st == LG_OK) st = lg_tfevents_flush(w);
    if (st != LG_OK) {
        fclose(w->f);
        free(w->path);
        free(w);
        return st;
    }
    *out = w;
    return LG_OK;
}

lg_status lg_tfevents_close(lg_tfevents *w) {
    if (!w) return LG_OK;
    lg_status st = LG_OK;
    if (fclose(w->f) != 0) st = lg_error_set(LG_ERR_IO, "tfevents: cannot write %s: %s", w->path, strerror(errno));
    free(w->path);
    free(w);
    return st;
}

const char *lg_tfevents_path(const lg_tfevents *w) { return w->path; }

lg_status lg_tfevents_flush(lg_tfevents *w) {
    if (fflush(w->f) != 0) return lg_error_set(LG_ERR_IO, "tfevents: cannot write %s: %s", w->path, strerror(errno));
    return LG_OK;
}

lg_status lg_tfevents_scalar(lg_tfevents *w, int64_t step, const char *tag, double value) {
    LG_TRY(check_tag(tag));
    pb val = {0};
    pb_bytes(&val, 1, tag, strlen(tag));
    pb_float(&val, 2, (float)value);
    lg_status st = write_value(w, step, &val);
    free(val.p);
    return st;
}

lg_status lg_tfevents_image_png(lg_tfevents *w, int64_t step, const char *tag, const void *png, size_t len,
                                int height, int width, int channels) {
    LG_TRY(check_tag(tag));
    if (!png || len == 0 || height < 1 || width < 1 || channels < 1 || channels > 4) {
        char pt[64];
        return lg_error_set(LG_ERR_INVALID_ARG, "tfevents: image '%s': bad size %dx%dx%d or no data",
                            printable(tag, pt, sizeof pt), height, width, channels);
    }
    pb img = {0}, val = {0};
    pb_int(&img, 1, height);
    pb_int(&img, 2, width);
    pb_int(&img, 3, channels);
    pb_bytes(&img, 4, png, len);
    pb_bytes(&val, 1, tag, strlen(tag));
    pb_sub(&val, 4, &img);
    lg_status st = write_value(w, step, &val);
    free(img.p);
    free(val.p);
    return st;
}

/* ---- the PNG header of an image file ----
 * libpng reads the chunks up to the first IDAT (no pixel is decoded), so a
 * header is judged exactly as lipgan's decoder (src/io/image.c) judges it,
 * and a tRNS chunk, which decoders turn into an alpha channel, counts. */

lg_status lg_tfevents_image_file(lg_tfevents *w, int64_t step, const char *tag, const char *path) {
    LG_TRY(check_tag(tag));
    /* size and channels from the header, by the decoder lipgan reads PNGs
     * with (io/png_read.h): the image is embedded as it is, not decoded */
    lg_png_reader *r;
    int ht, wd;
    LG_TRY(lg_png_open(path, &r, &ht, &wd));
    int ch = lg_png_channels(r);
    lg_png_close(r);
    unsigned char *buf;
    size_t len;
    LG_TRY(lg_file_read_all(path, &buf, &len));
    lg_status st = lg_tfevents_image_png(w, step, tag, buf, len, ht, wd, ch);
    free(buf);
    return st;
}
