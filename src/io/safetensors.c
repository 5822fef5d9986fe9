/* safetensors reader (validating) and writer. See include/lipgan/safetensors.h. */
#include "lipgan/safetensors.h"

#include <cJSON.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <zlib.h>

#include "lipgan/fileio.h"

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "lipgan's safetensors I/O assumes a little-endian host"
#endif

/* ---------------------------------------------------------------- dtypes */

static const struct {
    const char *name;
    int bits;
} g_dtypes[LG_ST_DTYPE_COUNT] = {
    [LG_ST_BOOL] = {"BOOL", 8},       [LG_ST_U8] = {"U8", 8},
    [LG_ST_I8] = {"I8", 8},           [LG_ST_F8_E5M2] = {"F8_E5M2", 8},
    [LG_ST_F8_E4M3] = {"F8_E4M3", 8}, [LG_ST_F8_E8M0] = {"F8_E8M0", 8},
    [LG_ST_I16] = {"I16", 16},        [LG_ST_U16] = {"U16", 16},
    [LG_ST_F16] = {"F16", 16},        [LG_ST_BF16] = {"BF16", 16},
    [LG_ST_I32] = {"I32", 32},        [LG_ST_U32] = {"U32", 32},
    [LG_ST_F32] = {"F32", 32},        [LG_ST_F64] = {"F64", 64},
    [LG_ST_I64] = {"I64", 64},        [LG_ST_U64] = {"U64", 64},
    [LG_ST_C64] = {"C64", 64},        [LG_ST_F4] = {"F4", 4},
    [LG_ST_F6_E2M3] = {"F6_E2M3", 6}, [LG_ST_F6_E3M2] = {"F6_E3M2", 6},
};

const char *lg_st_dtype_name(lg_st_dtype d) {
    return (int)d >= 0 && d < LG_ST_DTYPE_COUNT ? g_dtypes[d].name : "?";
}

int lg_st_dtype_bits(lg_st_dtype d) {
    return (int)d >= 0 && d < LG_ST_DTYPE_COUNT ? g_dtypes[d].bits : 0;
}

int lg_st_dtype_parse(const char *name, lg_st_dtype *out) {
    for (int i = 0; i < LG_ST_DTYPE_COUNT; i++)
        if (strcmp(name, g_dtypes[i].name) == 0) {
            *out = (lg_st_dtype)i;
            return 0;
        }
    return -1;
}

/* ------------------------------------------------------------ utilities */

/* Strict UTF-8 (as Rust's str::from_utf8): no overlong forms, no
 * surrogates, nothing above U+10FFFF. Returns the offset of the first bad
 * byte, or len if all is valid. */
static size_t utf8_check(const unsigned char *s, size_t len) {
    size_t i = 0;
    while (i < len) {
        unsigned c = s[i];
        if (c < 0x80) {
            i++;
            continue;
        }
        size_t n;
        unsigned lo = 0x80, hi = 0xBF;  /* allowed range of the 2nd byte */
        if (c >= 0xC2 && c <= 0xDF) n = 2;
        else if (c >= 0xE0 && c <= 0xEF) {
            n = 3;
            if (c == 0xE0) lo = 0xA0;          /* overlong */
            if (c == 0xED) hi = 0x9F;          /* surrogates */
        } else if (c >= 0xF0 && c <= 0xF4) {
            n = 4;
            if (c == 0xF0) lo = 0x90;          /* overlong */
            if (c == 0xF4) hi = 0x8F;          /* > U+10FFFF */
        } else
            return i;
        if (len - i < n) return i;
        if (s[i + 1] < lo || s[i + 1] > hi) return i;
        for (size_t k = 2; k < n; k++)
            if ((s[i + k] & 0xC0) != 0x80) return i;
        i += n;
    }
    return len;
}

/* cJSON is lenient where serde_json (the reference parser) is not: it takes
 * any control byte as whitespace, raw control bytes inside strings, floats
 * and leading zeros where integers are expected, and truncates strings at
 * "\u0000". This scan rejects those; a safetensors header has only strings
 * and non-negative integers. Returns NULL if fine, else a description, with
 * *at set to the offending byte offset. */
static const char *header_scan(const unsigned char *h, size_t n, size_t *at) {
    size_t i = 0;
    while (i < n) {
        unsigned c = h[i];
        *at = i;
        if (c == '"') {
            for (i++; i < n && h[i] != '"'; i++) {
                if (h[i] < 0x20) {
                    *at = i;
                    return "a raw control character inside a string";
                }
                if (h[i] == '\\') {
                    if (i + 1 < n && h[i + 1] == 'u' && i + 5 < n && memcmp(h + i + 2, "0000", 4) == 0) {
                        *at = i;
                        return "a \\u0000 escape inside a string";
                    }
                    i++; /* skip the escaped character (cJSON checks escapes) */
                }
            }
            i++; /* closing quote (or end: cJSON reports the unterminated string) */
        } else if (c == '-' || (c >= '0' && c <= '9')) {
            size_t start = i;
            if (c == '-') i++;
            size_t d0 = i;
            uint64_t v = 0;
            int big = 0;
            while (i < n && h[i] >= '0' && h[i] <= '9') {
                if (v > (1ull << 53) / 10) big = 1;
                v = v * 10 + (h[i] - '0');
                i++;
            }
            if (i < n && (h[i] == '.' || h[i] == 'e' || h[i] == 'E' || h[i] == '+')) {
                *at = start;
                return "a number that is not an integer";
            }
            if (i == d0) {
                *at = start;
                return "a '-' without digits";
            }
            if (h[d0] == '0' && i - d0 > 1) {
                *at = start;
                return "an integer with a leading zero";
            }
            if (big || v > (1ull << 53)) {
                *at = start;
                return "an integer above 2^53";
            }
        } else if (c < 0x20 && c != ' ' && c != '\t' && c != '\n' && c != '\r') {
            return "a control character outside strings";
        } else {
            i++;
        }
    }
    return NULL;
}

/* zlib's CRC-32 of n bytes continued from crc (0 to start). crc32_z takes
 * a size_t length; a zero length is skipped because crc32(crc, NULL, 0)
 * returns 0, not crc. */
static uint32_t st_crc32(uint32_t crc, const void *p, size_t n) {
    return n ? (uint32_t)crc32_z(crc, (const Bytef *)p, n) : crc;
}

static int cmp_str_ptr(const void *a, const void *b) {
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* ----------------------------------------------------------------- reader */

struct lg_st_file {
    char *label;              /* path or label, for messages */
    unsigned char *buf;       /* (len) the whole file */
    size_t len;
    cJSON *root;              /* parsed header; names point into it */
    lg_st_tensor *t;          /* (n) sorted by offset */
    size_t n;
    int64_t *dims;            /* all shapes, concatenated */
    size_t *by_name;          /* (n) indices into t sorted by name */
    const char **mkey, **mval;/* (nmeta) */
    size_t nmeta;
    unsigned flags;           /* LG_ST_NO_VERIFY */
};

void lg_st_close(lg_st_file *f) {
    if (!f) return;
    free(f->label);
    free(f->buf);
    cJSON_Delete(f->root);
    free(f->t);
    free(f->dims);
    free(f->by_name);
    free(f->mkey);
    free(f->mval);
    free(f);
}

/* LG_ERR_FORMAT with the file named and the standard hint. */
static lg_status bad(const lg_st_file *f, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static lg_status bad(const lg_st_file *f, const char *fmt, ...) {
    char what[768];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    return lg_error_set(LG_ERR_FORMAT, "file %s: not a valid safetensors file: %s; the file is corrupt or was not written as safetensors",
                        f->label, what);
}

static int cmp_by_name(const void *a, const void *b, void *ctx) {
    const lg_st_file *f = ctx;
    return strcmp(f->t[*(const size_t *)a].name, f->t[*(const size_t *)b].name);
}

static int cmp_by_offset(const void *a, const void *b) {
    const lg_st_tensor *x = a, *y = b;
    if (x->offset != y->offset) return x->offset < y->offset ? -1 : 1;
    if (x->nbytes != y->nbytes) return x->nbytes < y->nbytes ? -1 : 1;
    return 0;
}

/* A JSON number that the scan has proven integral; -1 if negative. */
static int64_t json_int(const cJSON *v) {
    double d = v->valuedouble;
    if (d < 0 || d != floor(d)) return -1;
    return (int64_t)d;
}

/* Finds field `key` of an entry, rejecting repeats. *out = NULL if absent. */
static lg_status entry_field(const lg_st_file *f, const cJSON *entry, const char *key, const cJSON **out) {
    *out = NULL;
    for (const cJSON *c = entry->child; c; c = c->next)
        if (strcmp(c->string, key) == 0) {
            if (*out) return bad(f, "tensor \"%s\": field \"%s\" appears twice", entry->string, key);
            *out = c;
        }
    return LG_OK;
}

static lg_status parse_meta(lg_st_file *f, const cJSON *m) {
    if (!cJSON_IsObject(m)) return bad(f, "\"__metadata__\" is not an object of strings");
    size_t n = 0;
    for (const cJSON *c = m->child; c; c = c->next) n++;
    f->mkey = malloc((n ? n : 1) * sizeof *f->mkey);
    f->mval = malloc((n ? n : 1) * sizeof *f->mval);
    const char **sorted = malloc((n ? n : 1) * sizeof *sorted);
    if (!f->mkey || !f->mval || !sorted) {
        free(sorted);
        return lg_error_set(LG_ERR_NOMEM, "file %s: out of memory", f->label);
    }
    for (const cJSON *c = m->child; c; c = c->next) {
        if (!cJSON_IsString(c)) {
            free(sorted);
            return bad(f, "\"__metadata__\" value of \"%s\" is not a string", c->string);
        }
        f->mkey[f->nmeta] = c->string;
        f->mval[f->nmeta] = c->valuestring;
        sorted[f->nmeta++] = c->string;
    }
    qsort(sorted, n, sizeof *sorted, cmp_str_ptr);
    for (size_t i = 1; i < n; i++)
        if (strcmp(sorted[i - 1], sorted[i]) == 0) {
            lg_status s = bad(f, "\"__metadata__\" key \"%s\" appears twice", sorted[i]);
            free(sorted);
            return s;
        }
    free(sorted);
    return LG_OK;
}

static lg_status parse_entry(lg_st_file *f, const cJSON *e, lg_st_tensor *t, int64_t *dims, uint64_t data_len) {
    const char *name = e->string;
    if (!cJSON_IsObject(e)) return bad(f, "tensor \"%s\": entry is not an object", name);
    const cJSON *jd, *js, *jo;
    LG_TRY(entry_field(f, e, "dtype", &jd));
    LG_TRY(entry_field(f, e, "shape", &js));
    LG_TRY(entry_field(f, e, "data_offsets", &jo));
    if (!jd) return bad(f, "tensor \"%s\": missing \"dtype\"", name);
    if (!js) return bad(f, "tensor \"%s\": missing \"shape\"", name);
    if (!jo) return bad(f, "tensor \"%s\": missing \"data_offsets\"", name);
    if (!cJSON_IsString(jd)) return bad(f, "tensor \"%s\": \"dtype\" is not a string", name);
    if (lg_st_dtype_parse(jd->valuestring, &t->dtype) != 0)
        return bad(f, "tensor \"%s\": unknown dtype \"%s\"", name, jd->valuestring);
    if (!cJSON_IsArray(js)) return bad(f, "tensor \"%s\": \"shape\" is not an array", name);
    uint64_t numel = 1;
    int nd = 0;
    for (const cJSON *c = js->child; c; c = c->next, nd++) {
        if (!cJSON_IsNumber(c)) return bad(f, "tensor \"%s\": shape[%d] is not an integer", name, nd);
        int64_t d = json_int(c);
        if (d < 0) return bad(f, "tensor \"%s\": shape[%d] is negative", name, nd);
        dims[nd] = d;
        if (d != 0 && numel > UINT64_MAX / (uint64_t)d)
            return bad(f, "tensor \"%s\": the product of its shape overflows 64 bits", name);
        numel *= (uint64_t)d;
    }
    if (!cJSON_IsArray(jo) || cJSON_GetArraySize(jo) != 2 || !cJSON_IsNumber(jo->child) ||
        !cJSON_IsNumber(jo->child->next))
        return bad(f, "tensor \"%s\": \"data_offsets\" is not an array of two integers", name);
    int64_t b = json_int(jo->child), en = json_int(jo->child->next);
    if (b < 0 || en < 0) return bad(f, "tensor \"%s\": \"data_offsets\" has a negative value", name);
    if (b > en) return bad(f, "tensor \"%s\": data_offsets begin %lld > end %lld", name, (long long)b, (long long)en);
    if ((uint64_t)en > data_len)
        return bad(f, "tensor \"%s\": data_offsets end %lld is past the end of the data (%llu bytes)", name,
                   (long long)en, (unsigned long long)data_len);
    uint64_t bits = (uint64_t)lg_st_dtype_bits(t->dtype);
    LG_ASSERT(bits > 0); /* lg_st_dtype_parse accepted the name */
    if (numel > UINT64_MAX / bits)
        return bad(f, "tensor \"%s\": its size in bytes overflows 64 bits", name);
    if (numel * bits % 8 != 0)
        return bad(f, "tensor \"%s\": %llu elements of %s do not fill whole bytes", name,
                   (unsigned long long)numel, lg_st_dtype_name(t->dtype));
    uint64_t nbytes = numel * bits / 8;
    if (nbytes != (uint64_t)(en - b))
        return bad(f, "tensor \"%s\": shape and dtype %s give %llu bytes but data_offsets span %llu", name,
                   lg_st_dtype_name(t->dtype), (unsigned long long)nbytes, (unsigned long long)(en - b));
    t->name = name;
    t->ndim = nd;
    t->shape = dims;
    t->numel = (int64_t)numel; /* <= data_len, so it fits */
    t->offset = (uint64_t)b;
    t->nbytes = (size_t)nbytes;
    return LG_OK;
}

/* The data-section checksum (see safetensors.h): checked last, after the
 * structure, so a truncated or malformed file keeps its specific message.
 * A malformed value is checked even under LG_ST_NO_VERIFY (it is cheap). */
static lg_status check_crc(const lg_st_file *f, const unsigned char *data, size_t n) {
    const char *v = lg_st_meta(f, LG_ST_CRC32_KEY);
    if (!v) return LG_OK; /* not written by lipgan (or by an older one) */
    int ok = strlen(v) == 8;
    uint32_t stored = 0;
    for (int i = 0; ok && i < 8; i++) {
        char c = v[i];
        ok = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
        stored = stored << 4 | (uint32_t)(c <= '9' ? c - '0' : c - 'a' + 10);
    }
    if (!ok) {
        char shown[48]; /* at most 40 bytes of the value, control bytes as '?' */
        size_t k = 0;
        for (; k < 40 && v[k]; k++) shown[k] = (unsigned char)v[k] < 0x20 || v[k] == 0x7f ? '?' : v[k];
        shown[k] = '\0';
        return bad(f, "\"__metadata__\" key \"" LG_ST_CRC32_KEY "\" is \"%s%s\", not 8 lowercase hex digits", shown,
                   v[k] ? "..." : "");
    }
    if (f->flags & LG_ST_NO_VERIFY) return LG_OK;
    uint32_t got = st_crc32(0, data, n);
    if (got != stored)
        return lg_error_set(LG_ERR_FORMAT,
                            "file %s: data damaged (CRC-32 %08x stored, %08x computed); use another copy or an "
                            "older checkpoint",
                            f->label, (unsigned)stored, (unsigned)got);
    return LG_OK;
}

/* Validates f->buf/len and fills the tables. */
static lg_status parse_buffer(lg_st_file *f) {
    if (f->len < 8) return bad(f, "%zu bytes is shorter than the 8-byte header length", f->len);
    uint64_t hlen = 0;
    for (int i = 7; i >= 0; i--) hlen = hlen << 8 | f->buf[i];
    if (hlen > LG_ST_MAX_HEADER)
        return bad(f, "header length %llu is above the limit of %llu bytes", (unsigned long long)hlen, LG_ST_MAX_HEADER);
    if (hlen > f->len - 8)
        return bad(f, "header length %llu is larger than the %zu bytes after it", (unsigned long long)hlen, f->len - 8);
    const unsigned char *h = f->buf + 8;
    size_t bad_at = utf8_check(h, (size_t)hlen);
    if (bad_at != hlen) return bad(f, "header is not valid UTF-8 (byte %zu)", bad_at);
    if (hlen == 0 || h[0] != '{') return bad(f, "header does not start with '{'");
    const char *why = header_scan(h, (size_t)hlen, &bad_at);
    if (why) return bad(f, "header JSON has %s (byte %zu)", why, bad_at);
    const char *end = NULL;
    f->root = cJSON_ParseWithLengthOpts((const char *)h, (size_t)hlen, &end, 0);
    if (!f->root) {
        size_t pos = end ? (size_t)(end - (const char *)h) : 0;
        return bad(f, "header is not valid JSON (near byte %zu)", pos);
    }
    for (const char *p = end; p < (const char *)h + hlen; p++)
        if (*p != ' ' && *p != '\t' && *p != '\n' && *p != '\r')
            return bad(f, "header has bytes after the JSON object (byte %zu)", (size_t)(p - (const char *)h));
    if (!cJSON_IsObject(f->root)) return bad(f, "header is not a JSON object");

    uint64_t data_len = f->len - 8 - hlen;
    const unsigned char *data = h + hlen;
    size_t nent = 0, ndims = 0;
    const cJSON *meta = NULL;
    for (const cJSON *c = f->root->child; c; c = c->next) {
        if (strcmp(c->string, "__metadata__") == 0) {
            if (meta) return bad(f, "\"__metadata__\" appears twice");
            meta = c;
            continue;
        }
        nent++;
        const cJSON *s = cJSON_IsObject(c) ? cJSON_GetObjectItemCaseSensitive(c, "shape") : NULL;
        if (cJSON_IsArray(s)) ndims += (size_t)cJSON_GetArraySize(s);
    }
    if (meta) LG_TRY(parse_meta(f, meta));

    f->t = calloc(nent ? nent : 1, sizeof *f->t);
    f->dims = malloc((ndims ? ndims : 1) * sizeof *f->dims);
    f->by_name = malloc((nent ? nent : 1) * sizeof *f->by_name);
    if (!f->t || !f->dims || !f->by_name) return lg_error_set(LG_ERR_NOMEM, "file %s: out of memory", f->label);
    size_t k = 0, dpos = 0;
    for (const cJSON *c = f->root->child; c; c = c->next) {
        if (c == meta) continue;
        /* the first pass counted the first "shape" field of each entry,
         * the one parse_entry uses (it rejects a repeated one), so dims
         * cannot overflow */
        LG_TRY(parse_entry(f, c, &f->t[k], f->dims + dpos, data_len));
        dpos += (size_t)f->t[k].ndim;
        k++;
    }
    f->n = nent;

    /* duplicate names */
    for (size_t i = 0; i < nent; i++) f->by_name[i] = i;
    qsort_r(f->by_name, nent, sizeof *f->by_name, cmp_by_name, f);
    for (size_t i = 1; i < nent; i++)
        if (strcmp(f->t[f->by_name[i - 1]].name, f->t[f->by_name[i]].name) == 0)
            return bad(f, "tensor \"%s\" appears twice", f->t[f->by_name[i]].name);

    /* the entries must tile the data section exactly */
    qsort(f->t, nent, sizeof *f->t, cmp_by_offset);
    uint64_t pos = 0;
    for (size_t i = 0; i < nent; i++) {
        lg_st_tensor *t = &f->t[i];
        if (t->offset != pos) {
            if (t->offset > pos)
                return bad(f, "tensor \"%s\": %llu unused bytes before its data (begin %llu, expected %llu)", t->name,
                           (unsigned long long)(t->offset - pos), (unsigned long long)t->offset, (unsigned long long)pos);
            return bad(f, "tensor \"%s\": its data (begin %llu) overlaps the previous tensor (ending at %llu)", t->name,
                       (unsigned long long)t->offset, (unsigned long long)pos);
        }
        t->data = data + t->offset;
        pos += t->nbytes;
    }
    if (pos != data_len)
        return bad(f, "%llu bytes after the last tensor's data (data section %llu bytes, tensors cover %llu)",
                   (unsigned long long)(data_len - pos), (unsigned long long)data_len, (unsigned long long)pos);
    /* by_name was computed before sorting by offset: redo it on the final order */
    for (size_t i = 0; i < nent; i++) f->by_name[i] = i;
    qsort_r(f->by_name, nent, sizeof *f->by_name, cmp_by_name, f);
    return check_crc(f, data, (size_t)data_len);
}

static lg_status st_new(lg_st_file **out, const char *label) {
    *out = NULL;
    lg_st_file *f = calloc(1, sizeof *f);
    if (f) f->label = strdup(label ? label : "(buffer)");
    if (!f || !f->label) {
        free(f);
        return lg_error_set(LG_ERR_NOMEM, "file %s: out of memory", label ? label : "(buffer)");
    }
    *out = f;
    return LG_OK;
}

static lg_status st_finish(lg_st_file **out, lg_st_file *f) {
    lg_status s = parse_buffer(f);
    if (s != LG_OK) {
        lg_st_close(f);
        return s;
    }
    *out = f;
    return LG_OK;
}

lg_status lg_st_open(lg_st_file **out, const char *path) { return lg_st_open_ex(out, path, 0); }

lg_status lg_st_open_ex(lg_st_file **out, const char *path, unsigned flags) {
    lg_st_file *f;
    *out = NULL;
    LG_TRY(st_new(&f, path));
    f->flags = flags;
    lg_status s = lg_file_read_all(path, &f->buf, &f->len);
    if (s != LG_OK) {
        lg_st_close(f);
        return s;
    }
    return st_finish(out, f);
}

int lg_st_peek_meta(const char *path, const char *key, char *buf, size_t cap) {
    if (cap) buf[0] = '\0';
    FILE *f = fopen(path, "rb");
    if (!f) return 0;
    unsigned char len8[8];
    int found = 0;
    struct stat sb;
    if (fread(len8, 1, 8, f) == 8 && fstat(fileno(f), &sb) == 0) {
        uint64_t n = 0; /* header length, little-endian */
        for (int i = 7; i >= 0; i--) n = n << 8 | len8[i];
        char *h = n > 0 && n <= LG_ST_MAX_HEADER && n <= (uint64_t)sb.st_size - 8 ? malloc(n + 1) : NULL;
        if (h && fread(h, 1, n, f) == n) {
            h[n] = '\0';
            cJSON *root = cJSON_Parse(h);
            const cJSON *v = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(root, "__metadata__"),
                                                               key);
            if (cJSON_IsString(v)) {
                found = 1;
                if (cap) snprintf(buf, cap, "%s", v->valuestring);
            }
            cJSON_Delete(root);
        }
        free(h);
    }
    fclose(f);
    return found;
}

lg_status lg_st_parse(lg_st_file **out, const void *buf, size_t len, const char *label) {
    return lg_st_parse_ex(out, buf, len, label, 0);
}

lg_status lg_st_parse_ex(lg_st_file **out, const void *buf, size_t len, const char *label, unsigned flags) {
    lg_st_file *f;
    *out = NULL;
    LG_TRY(st_new(&f, label));
    f->flags = flags;
    f->buf = malloc(len ? len : 1);
    if (!f->buf) {
        lg_st_close(f);
        return lg_error_set(LG_ERR_NOMEM, "file %s: out of memory", label ? label : "(buffer)");
    }
    if (len) memcpy(f->buf, buf, len);
    f->len = len;
    return st_finish(out, f);
}

const char *lg_st_path(const lg_st_file *f) { return f->label; }
size_t lg_st_count(const lg_st_file *f) { return f->n; }

const lg_st_tensor *lg_st_at(const lg_st_file *f, size_t i) {
    LG_ASSERT(i < f->n);
    return &f->t[i];
}

const lg_st_tensor *lg_st_find(const lg_st_file *f, const char *name) {
    size_t lo = 0, hi = f->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(f->t[f->by_name[mid]].name, name);
        if (c == 0) return &f->t[f->by_name[mid]];
        if (c < 0) lo = mid + 1;
        else hi = mid;
    }
    return NULL;
}

const char *lg_st_meta(const lg_st_file *f, const char *key) {
    for (size_t i = 0; i < f->nmeta; i++)
        if (strcmp(f->mkey[i], key) == 0) return f->mval[i];
    return NULL;
}

size_t lg_st_meta_count(const lg_st_file *f) { return f->nmeta; }

void lg_st_meta_at(const lg_st_file *f, size_t i, const char **key, const char **value) {
    LG_ASSERT(i < f->nmeta);
    *key = f->mkey[i];
    *value = f->mval[i];
}

static void shape_str(char *buf, size_t cap, int ndim, const int64_t *shape) {
    size_t p = 0;
    p += (size_t)snprintf(buf + p, cap - p, "(");
    for (int i = 0; i < ndim && p < cap; i++)
        p += (size_t)snprintf(buf + p, cap - p, i ? ",%lld" : "%lld", (long long)shape[i]);
    if (p < cap) snprintf(buf + p, cap - p, ")");
}

/* Looks up name and checks its shape against the expectation. */
static lg_status find_checked(const lg_st_file *f, const char *name, int expected_ndim,
                              const int64_t *expected_shape, const lg_st_tensor **out) {
    const lg_st_tensor *t = lg_st_find(f, name);
    *out = t;
    if (!t)
        return lg_error_set(LG_ERR_NOT_FOUND, "file %s: no tensor \"%s\"; was it written by another model or config?",
                            f->label, name);
    if (expected_ndim < 0) return LG_OK;
    int same = t->ndim == expected_ndim;
    for (int i = 0; same && i < t->ndim; i++) same = t->shape[i] == expected_shape[i];
    if (!same) {
        char got[128], want[128];
        shape_str(got, sizeof got, t->ndim, t->shape);
        shape_str(want, sizeof want, expected_ndim, expected_shape);
        return lg_error_set(LG_ERR_SHAPE, "file %s: tensor \"%s\" has shape %s, expected %s; the file was written for another model size",
                            f->label, name, got, want);
    }
    return LG_OK;
}

static float f16_to_f32(uint16_t h) {
    uint32_t sign = (uint32_t)(h >> 15) << 31, exp = (h >> 10) & 0x1f, man = h & 0x3ff, bits;
    if (exp == 0) {
        if (man == 0) {
            bits = sign;
        } else { /* subnormal: renormalize */
            int e = -1;
            do {
                e++;
                man <<= 1;
            } while (!(man & 0x400));
            bits = sign | (uint32_t)(127 - 15 - e) << 23 | (man & 0x3ff) << 13;
        }
    } else if (exp == 31) {
        bits = sign | 0x7f800000u | man << 13;
    } else {
        bits = sign | (exp + 127 - 15) << 23 | man << 13;
    }
    float out;
    memcpy(&out, &bits, 4);
    return out;
}

lg_status lg_st_get_f32(const lg_st_file *f, const char *name, int expected_ndim,
                        const int64_t *expected_shape, float *out) {
    const lg_st_tensor *t;
    LG_TRY(find_checked(f, name, expected_ndim, expected_shape, &t));
    const unsigned char *p = t->data; /* may be unaligned */
    size_t n = (size_t)t->numel;
    switch (t->dtype) {
    case LG_ST_F32:
        if (n) memcpy(out, p, n * 4);
        break;
    case LG_ST_F64:
        for (size_t i = 0; i < n; i++) {
            double d;
            memcpy(&d, p + 8 * i, 8);
            out[i] = (float)d;
        }
        break;
    case LG_ST_F16:
    case LG_ST_BF16:
        for (size_t i = 0; i < n; i++) {
            uint16_t h;
            memcpy(&h, p + 2 * i, 2);
            if (t->dtype == LG_ST_F16) {
                out[i] = f16_to_f32(h);
            } else {
                uint32_t bits = (uint32_t)h << 16;
                memcpy(&out[i], &bits, 4);
            }
        }
        break;
    default:
        return lg_error_set(LG_ERR_UNSUPPORTED, "file %s: tensor \"%s\" has dtype %s, which lipgan does not read as float (F32, F64, F16, BF16 only)",
                            f->label, name, lg_st_dtype_name(t->dtype));
    }
    return LG_OK;
}

lg_status lg_st_get_i64(const lg_st_file *f, const char *name, int expected_ndim,
                        const int64_t *expected_shape, int64_t *out) {
    const lg_st_tensor *t;
    LG_TRY(find_checked(f, name, expected_ndim, expected_shape, &t));
    const unsigned char *p = t->data;
    size_t n = (size_t)t->numel;
    for (size_t i = 0; i < n; i++) {
        switch (t->dtype) {
        case LG_ST_BOOL: out[i] = p[i] != 0; break;
        case LG_ST_U8: out[i] = p[i]; break;
        case LG_ST_I8: out[i] = (int8_t)p[i]; break;
        case LG_ST_I16: { int16_t v; memcpy(&v, p + 2 * i, 2); out[i] = v; break; }
        case LG_ST_U16: { uint16_t v; memcpy(&v, p + 2 * i, 2); out[i] = v; break; }
        case LG_ST_I32: { int32_t v; memcpy(&v, p + 4 * i, 4); out[i] = v; break; }
        case LG_ST_U32: { uint32_t v; memcpy(&v, p + 4 * i, 4); out[i] = v; break; }
        case LG_ST_I64: memcpy(&out[i], p + 8 * i, 8); break;
        case LG_ST_U64: {
            uint64_t v;
            memcpy(&v, p + 8 * i, 8);
            if (v > (uint64_t)INT64_MAX)
                return lg_error_set(LG_ERR_FORMAT, "file %s: tensor \"%s\"[%zu] = %llu does not fit in int64", f->label,
                                    name, i, (unsigned long long)v);
            out[i] = (int64_t)v;
            break;
        }
        default:
            return lg_error_set(LG_ERR_UNSUPPORTED, "file %s: tensor \"%s\" has dtype %s, which lipgan does not read as an integer",
                                f->label, name, lg_st_dtype_name(t->dtype));
        }
    }
    return LG_OK;
}

/* ----------------------------------------------------------------- writer */

typedef struct st_wentry {
    char *name;
    lg_st_dtype dtype;
    int ndim;
    int64_t shape[LG_ST_MAX_DIMS];
    const void *data; /* (nbytes) borrowed */
    size_t nbytes;
} st_wentry;

struct lg_st_writer {
    st_wentry *t; /* (n) */
    size_t n, cap;
    char **mkey, **mval; /* (nmeta) owned */
    size_t nmeta, mcap;
};

lg_status lg_st_writer_create(lg_st_writer **out) {
    *out = calloc(1, sizeof **out);
    if (!*out) return lg_error_set(LG_ERR_NOMEM, "lg_st_writer_create: out of memory");
    return LG_OK;
}

void lg_st_writer_free(lg_st_writer *w) {
    if (!w) return;
    for (size_t i = 0; i < w->n; i++) free(w->t[i].name);
    for (size_t i = 0; i < w->nmeta; i++) {
        free(w->mkey[i]);
        free(w->mval[i]);
    }
    free(w->t);
    free(w->mkey);
    free(w->mval);
    free(w);
}

static int valid_utf8(const char *s) {
    size_t n = strlen(s);
    return utf8_check((const unsigned char *)s, n) == n;
}

lg_status lg_st_writer_add_meta(lg_st_writer *w, const char *key, const char *value) {
    if (!key || !value || !valid_utf8(key) || !valid_utf8(value))
        return lg_error_set(LG_ERR_INVALID_ARG, "safetensors metadata: key and value must be non-NULL UTF-8 strings");
    for (size_t i = 0; i < w->nmeta; i++)
        if (strcmp(w->mkey[i], key) == 0)
            return lg_error_set(LG_ERR_INVALID_ARG, "safetensors metadata: key \"%s\" added twice", key);
    if (w->nmeta == w->mcap) {
        size_t cap = w->mcap ? 2 * w->mcap : 8;
        char **k = realloc(w->mkey, cap * sizeof *k);
        if (k) w->mkey = k;
        char **v = realloc(w->mval, cap * sizeof *v);
        if (v) w->mval = v;
        if (!k || !v) return lg_error_set(LG_ERR_NOMEM, "safetensors metadata: out of memory");
        w->mcap = cap;
    }
    char *k = strdup(key), *v = strdup(value);
    if (!k || !v) {
        free(k);
        free(v);
        return lg_error_set(LG_ERR_NOMEM, "safetensors metadata: out of memory");
    }
    w->mkey[w->nmeta] = k;
    w->mval[w->nmeta++] = v;
    return LG_OK;
}

static lg_status writer_add(lg_st_writer *w, const char *name, lg_st_dtype dtype, int ndim,
                            const int64_t *shape, const void *data) {
    if (!name || !valid_utf8(name) || strcmp(name, "__metadata__") == 0)
        return lg_error_set(LG_ERR_INVALID_ARG, "safetensors writer: invalid tensor name \"%s\"", name ? name : "(null)");
    if (ndim < 0 || ndim > LG_ST_MAX_DIMS || (ndim > 0 && !shape))
        return lg_error_set(LG_ERR_INVALID_ARG, "safetensors writer: tensor \"%s\": ndim %d is not in 0..%d", name, ndim,
                            LG_ST_MAX_DIMS);
    size_t esz = (size_t)lg_st_dtype_bits(dtype) / 8, numel = 1;
    for (int i = 0; i < ndim; i++) {
        if (shape[i] < 0 || (shape[i] > 0 && numel > SIZE_MAX / esz / (size_t)shape[i]))
            return lg_error_set(LG_ERR_INVALID_ARG, "safetensors writer: tensor \"%s\": bad shape (dim %d = %lld)", name, i,
                                (long long)shape[i]);
        numel *= (size_t)shape[i];
    }
    if (numel > 0 && !data)
        return lg_error_set(LG_ERR_INVALID_ARG, "safetensors writer: tensor \"%s\": data is NULL", name);
    for (size_t i = 0; i < w->n; i++)
        if (strcmp(w->t[i].name, name) == 0)
            return lg_error_set(LG_ERR_INVALID_ARG, "safetensors writer: tensor \"%s\" added twice", name);
    if (w->n == w->cap) {
        size_t cap = w->cap ? 2 * w->cap : 16;
        st_wentry *t = realloc(w->t, cap * sizeof *t);
        if (!t) return lg_error_set(LG_ERR_NOMEM, "safetensors writer: out of memory");
        w->t = t;
        w->cap = cap;
    }
    st_wentry *e = &w->t[w->n];
    memset(e, 0, sizeof *e);
    e->name = strdup(name);
    if (!e->name) return lg_error_set(LG_ERR_NOMEM, "safetensors writer: out of memory");
    e->dtype = dtype;
    e->ndim = ndim;
    for (int i = 0; i < ndim; i++) e->shape[i] = shape[i];
    e->data = data;
    e->nbytes = numel * esz;
    w->n++;
    return LG_OK;
}

lg_status lg_st_writer_add_f32(lg_st_writer *w, const char *name, int ndim, const int64_t *shape, const float *data) {
    return writer_add(w, name, LG_ST_F32, ndim, shape, data);
}

lg_status lg_st_writer_add_i64(lg_st_writer *w, const char *name, int ndim, const int64_t *shape, const int64_t *data) {
    return writer_add(w, name, LG_ST_I64, ndim, shape, data);
}

lg_status lg_st_writer_add_f64(lg_st_writer *w, const char *name, int ndim, const int64_t *shape, const double *data) {
    return writer_add(w, name, LG_ST_F64, ndim, shape, data);
}

/* A growable string for the header. */
typedef struct sbuf {
    char *p;
    size_t n, cap;
    int oom;
} sbuf;

static void sb_put(sbuf *b, const char *s, size_t n) {
    if (b->oom) return;
    if (b->n + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->n + n + 1) cap *= 2;
        char *p = realloc(b->p, cap);
        if (!p) {
            b->oom = 1;
            return;
        }
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->n, s, n);
    b->n += n;
    b->p[b->n] = '\0';
}

static void sb_fmt(sbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void sb_fmt(sbuf *b, const char *fmt, ...) {
    char tmp[64];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    sb_put(b, tmp, (size_t)n);
}

/* A JSON string literal (UTF-8 passes through; quotes, backslashes and
 * control characters are escaped). */
static void sb_json_str(sbuf *b, const char *s) {
    sb_put(b, "\"", 1);
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') {
            char e[2] = {'\\', (char)c};
            sb_put(b, e, 2);
        } else if (c < 0x20) {
            sb_fmt(b, "\\u%04x", c);
        } else {
            sb_put(b, (const char *)&c, 1);
        }
    }
    sb_put(b, "\"", 1);
}

lg_status lg_st_restamp_crc(uint8_t *buf, size_t len) {
    if (len < 8) return lg_error_set(LG_ERR_FORMAT, "restamp: %zu bytes, shorter than the 8-byte header length", len);
    uint64_t hl = 0;
    for (int i = 7; i >= 0; i--) hl = hl << 8 | buf[i];
    if (hl > len - 8)
        return lg_error_set(LG_ERR_FORMAT, "restamp: header length %llu exceeds the %zu bytes", (unsigned long long)hl,
                            len);
    static const char key[] = "\"" LG_ST_CRC32_KEY "\":\"";
    uint8_t *k = memmem(buf + 8, (size_t)hl, key, sizeof key - 1);
    if (!k || (size_t)(k - buf) + sizeof key - 1 + 8 > 8 + hl)
        return lg_error_set(LG_ERR_FORMAT, "restamp: the header has no %s value to rewrite", LG_ST_CRC32_KEY);
    char hex[9];
    snprintf(hex, sizeof hex, "%08" PRIx32, st_crc32(0, buf + 8 + hl, (size_t)(len - 8 - hl)));
    memcpy(k + sizeof key - 1, hex, 8);
    return LG_OK;
}

lg_status lg_st_writer_write(const lg_st_writer *w, const char *path, int atomic) {
    /* the data section's CRC-32 goes into the header, which precedes the
     * data: one pass over the tensors in memory (they are written from
     * memory next, so the file on disk is never read back) */
    uint32_t crc = 0;
    for (size_t i = 0; i < w->n; i++) crc = st_crc32(crc, w->t[i].data, w->t[i].nbytes);
    sbuf b = {0};
    sb_put(&b, "{\"__metadata__\":{", 17);
    for (size_t i = 0; i < w->nmeta; i++) {
        if (strcmp(w->mkey[i], LG_ST_CRC32_KEY) == 0) continue; /* a copied, stale one: ours replaces it */
        sb_json_str(&b, w->mkey[i]);
        sb_put(&b, ":", 1);
        sb_json_str(&b, w->mval[i]);
        sb_put(&b, ",", 1); /* the CRC entry always follows */
    }
    sb_fmt(&b, "\"" LG_ST_CRC32_KEY "\":\"%08x\"}", (unsigned)crc);
    uint64_t off = 0;
    for (size_t i = 0; i < w->n; i++) {
        const st_wentry *e = &w->t[i];
        sb_put(&b, ",", 1); /* after "__metadata__" or the previous tensor */
        sb_json_str(&b, e->name);
        sb_fmt(&b, ":{\"dtype\":\"%s\",\"shape\":[", lg_st_dtype_name(e->dtype));
        for (int d = 0; d < e->ndim; d++) sb_fmt(&b, d ? ",%lld" : "%lld", (long long)e->shape[d]);
        sb_fmt(&b, "],\"data_offsets\":[%llu,", (unsigned long long)off);
        off += e->nbytes;
        sb_fmt(&b, "%llu]}", (unsigned long long)off);
    }
    sb_put(&b, "}", 1);
    while (!b.oom && b.n % 8 != 0) sb_put(&b, " ", 1); /* 8-byte aligned data */
    if (b.oom) {
        free(b.p);
        return lg_error_set(LG_ERR_NOMEM, "file %s: out of memory building the safetensors header", path);
    }
    if (b.n > LG_ST_MAX_HEADER) {
        free(b.p);
        return lg_error_set(LG_ERR_INVALID_ARG, "file %s: safetensors header of %zu bytes is above the %llu limit; too many tensors",
                            path, b.n, LG_ST_MAX_HEADER);
    }
    unsigned char len8[8];
    for (int i = 0; i < 8; i++) len8[i] = (unsigned char)((uint64_t)b.n >> (8 * i));

    lg_wfile f;
    lg_status s = lg_wfile_open(&f, path, atomic);
    if (s == LG_OK) s = lg_wfile_write(&f, len8, 8);
    if (s == LG_OK) s = lg_wfile_write(&f, b.p, b.n);
    for (size_t i = 0; s == LG_OK && i < w->n; i++)
        if (w->t[i].nbytes) s = lg_wfile_write(&f, w->t[i].data, w->t[i].nbytes);
    free(b.p);
    if (f.fd < 0) return s; /* open failed */
    if (s != LG_OK) {
        lg_wfile_abort(&f);
        return s;
    }
    return lg_wfile_commit(&f);
}
