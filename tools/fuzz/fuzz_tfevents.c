/* libFuzzer harness: TensorBoard image summaries from PNG files
 * (lg_tfevents_image_file, src/io/tfevents.c: the PNG signature and IHDR
 * parsing that gives height, width and channels) and scalars, with a tag.
 * Input: a PNG file, optionally followed by @@LGFZ@@ and a tag (default
 * "samples"; it ends at a NUL). Chunk CRCs are recomputed first.
 *
 * What is checked besides the error contract: the event file written is read
 * back with an independent reader (CRC-32C computed bit by bit, protobuf
 * parsed here): every TFRecord's length and CRCs are right, there is one
 * record per accepted call, and the image record holds the step, the tag
 * and the input's bytes. An accepted tag is valid UTF-8 (tfevents.h asks
 * for it; TensorBoard cannot read other strings). Every PNG that lipgan's
 * decoder (lg_image_read_png) reads must be accepted, with its height and
 * width and its channel count after expansion (a tRNS chunk adds alpha).
 * Seeds: tools/fuzz/corpus/tfevents/ (the PNG seeds, some with a tag). */
#include "fuzz_common.h"
#include "lipgan/fileio.h"
#include "lipgan/image.h"
#include "lipgan/tfevents.h"

/* CRC-32C, bit by bit (the library uses a table), and TFRecord's mask. */
static uint32_t tfz_crc32c(const uint8_t *p, size_t n) {
    uint32_t c = 0xffffffffu;
    for (size_t i = 0; i < n; i++) {
        c ^= p[i];
        for (int k = 0; k < 8; k++) c = (c >> 1) ^ (0x82f63b78u & (0u - (c & 1u)));
    }
    c ^= 0xffffffffu;
    return ((c >> 15) | (c << 17)) + 0xa282ead8u;
}

static int tfz_utf8(const uint8_t *s, size_t n) {
    for (size_t i = 0; i < n;) {
        uint8_t b = s[i];
        size_t k = b < 0x80 ? 0 : (b & 0xe0) == 0xc0 ? 1 : (b & 0xf0) == 0xe0 ? 2 : (b & 0xf8) == 0xf0 ? 3 : 9;
        if (k == 9 || k >= n - i) return 0; /* not a lead byte, or cut short */
        uint32_t cp = k == 0 ? b : b & (0x3fu >> k);
        for (size_t j = 1; j <= k; j++) {
            if ((s[i + j] & 0xc0) != 0x80) return 0;
            cp = cp << 6 | (s[i + j] & 0x3fu);
        }
        static const uint32_t lo[4] = {0, 0x80, 0x800, 0x10000};
        if (cp < lo[k] || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return 0;
        i += k + 1;
    }
    return 1;
}

/* One protobuf field at *p (< end): sets field number, wire type and either
 * *v (varint / fixed) or the bytes (*d, *dn) of a length-delimited field.
 * Returns 0 at a malformed field. */
static int tfz_field(const uint8_t **p, const uint8_t *end, int *field, int *wt, uint64_t *v, const uint8_t **d,
                     size_t *dn) {
    uint64_t key = 0;
    int sh = 0;
    const uint8_t *q = *p;
#define TFZ_VARINT(out)                                                                                              \
    do {                                                                                                             \
        (out) = 0, sh = 0;                                                                                           \
        for (;;) {                                                                                                   \
            if (q >= end || sh > 63) return 0;                                                                       \
            (out) |= (uint64_t)(*q & 0x7f) << sh;                                                                    \
            sh += 7;                                                                                                 \
            if (!(*q++ & 0x80)) break;                                                                               \
        }                                                                                                            \
    } while (0)
    TFZ_VARINT(key);
    *field = (int)(key >> 3), *wt = (int)(key & 7);
    *d = NULL, *dn = 0, *v = 0;
    if (*wt == 0) {
        TFZ_VARINT(*v);
    } else if (*wt == 1 || *wt == 5) {
        size_t n = *wt == 1 ? 8 : 4;
        if ((size_t)(end - q) < n) return 0;
        for (size_t i = 0; i < n; i++) *v |= (uint64_t)q[i] << (8 * i);
        q += n;
    } else if (*wt == 2) {
        uint64_t n;
        TFZ_VARINT(n);
        if (n > (uint64_t)(end - q)) return 0;
        *d = q, *dn = (size_t)n;
        q += n;
    } else {
        return 0;
    }
#undef TFZ_VARINT
    *p = q;
    return 1;
}

/* The first length-delimited field f of message (m, n); NULL if none. */
static const uint8_t *tfz_sub(const uint8_t *m, size_t n, int f, size_t *len) {
    const uint8_t *p = m, *end = m + n, *d;
    int field, wt;
    uint64_t v;
    size_t dn;
    while (p < end) {
        FZ_ASSERT(tfz_field(&p, end, &field, &wt, &v, &d, &dn));
        if (field == f && wt == 2) {
            *len = dn;
            return d;
        }
    }
    return NULL;
}

/* The varint field f of message (m, n) (-1 if absent). */
static int64_t tfz_varint(const uint8_t *m, size_t n, int f) {
    const uint8_t *p = m, *end = m + n, *d;
    int field, wt;
    uint64_t v;
    size_t dn;
    while (p < end) {
        FZ_ASSERT(tfz_field(&p, end, &field, &wt, &v, &d, &dn));
        if (field == f && wt == 0) return (int64_t)v;
    }
    return -1;
}

/* Checks the event file: records framed right; returns their number, and
 * checks the image record (when png) against step, tag, png bytes and
 * h, w, c (those > 0). */
static int tfz_check_file(const char *path, int64_t step, const char *tag, const uint8_t *png, size_t plen, int h,
                          int w, int c) {
    uint8_t *b;
    size_t n;
    FZ_ASSERT(lg_file_read_all(path, &b, &n) == LG_OK);
    size_t off = 0;
    int records = 0, images = 0;
    while (off < n) {
        FZ_ASSERT(n - off >= 16);
        uint64_t len = 0;
        for (int i = 0; i < 8; i++) len |= (uint64_t)b[off + i] << (8 * i);
        FZ_ASSERT(fz_le32(b + off + 8) == tfz_crc32c(b + off, 8));
        FZ_ASSERT(len <= n - off - 16);
        const uint8_t *ev = b + off + 12;
        FZ_ASSERT(fz_le32(ev + len) == tfz_crc32c(ev, (size_t)len));
        size_t sl = 0, vl = 0, tl = 0, il = 0, dl = 0;
        const uint8_t *sum = tfz_sub(ev, (size_t)len, 5, &sl);
        const uint8_t *val = sum ? tfz_sub(sum, sl, 1, &vl) : NULL;
        const uint8_t *img = val ? tfz_sub(val, vl, 4, &il) : NULL;
        if (records == 0) FZ_ASSERT(!sum); /* the file_version record */
        if (val) {
            const uint8_t *t = tfz_sub(val, vl, 1, &tl);
            FZ_ASSERT(t && tl == strlen(tag) && !memcmp(t, tag, tl));
            FZ_ASSERT(tfz_varint(ev, (size_t)len, 2) == step);
        }
        if (img) {
            images++;
            const uint8_t *d = tfz_sub(img, il, 4, &dl);
            FZ_ASSERT(d && dl == plen && !memcmp(d, png, plen));
            int64_t ih = tfz_varint(img, il, 1), iw = tfz_varint(img, il, 2), ic = tfz_varint(img, il, 3);
            FZ_ASSERT(ih >= 1 && ih <= INT32_MAX && iw >= 1 && iw <= INT32_MAX && ic >= 1 && ic <= 4);
            if (h > 0) FZ_ASSERT(ih == h && iw == w && ic == c);
        }
        records++;
        off += 16 + (size_t)len;
    }
    FZ_ASSERT(images <= 1);
    free(b);
    return records;
}

static lg_status fuzz_tfevents(const uint8_t *data, size_t size) {
    const uint8_t *part[2];
    size_t len[2];
    int np = fz_split(data, size, part, len, 2);
    uint8_t *png = fz_dup(part[0], len[0]);
    fz_fix_png_crcs(png, len[0]);
    char tag[256] = "samples";
    if (np == 2) {
        size_t tl = len[1] < sizeof tag - 1 ? len[1] : sizeof tag - 1;
        memcpy(tag, part[1], tl);
        tag[tl] = '\0';
    }
    char dir[128], path[160];
    fz_path(dir, sizeof dir, "tb");
    fz_clear_dir(dir);
    snprintf(path, sizeof path, "%s/a.png", dir);
    fz_write(path, png, len[0]);
    const int64_t step = size & 1 ? -(int64_t)size : (int64_t)size << 40;

    lg_tfevents *tb = NULL;
    FZ_ASSERT(FZ(lg_tfevents_open(&tb, dir)) == LG_OK);
    char epath[256];
    snprintf(epath, sizeof epath, "%s", lg_tfevents_path(tb));
    lg_status s = FZ_MAIN(lg_tfevents_image_file(tb, step, tag, path));
    lg_status s2 = FZ(lg_tfevents_scalar(tb, step, tag, (double)size));
    FZ_ASSERT(FZ(lg_tfevents_close(tb)) == LG_OK);
    /* both validate the tag alike; an accepted one is UTF-8 */
    if (s == LG_OK) FZ_ASSERT(s2 == LG_OK);
    if (s2 == LG_OK) FZ_ASSERT(tag[0] && tfz_utf8((const uint8_t *)tag, strlen(tag)));

    /* a PNG lipgan decodes must be logged with the decoded size */
    uint8_t *pix = NULL;
    int h = 0, w = 0, c = 0;
    if (FZ(lg_image_read_png(path, &pix, &h, &w, &c)) == LG_OK) {
        free(pix);
        if (s2 == LG_OK) FZ_ASSERT(s == LG_OK);
    } else {
        h = w = c = 0;
    }
    int records = tfz_check_file(epath, step, tag, png, len[0], h, w, c);
    FZ_ASSERT(records == 1 + (s == LG_OK) + (s2 == LG_OK));
    free(png);
    return s;
}

LG_FUZZ_MAIN(fuzz_tfevents)
