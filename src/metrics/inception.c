/* Inception-v3 (pytorch-fid variant) inference: layer table, loading with
 * BN folding, and the forward pass. See lipgan/inception.h. */
#include <cJSON.h>
#include <cblas.h>
#include <errno.h>
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "lipgan/safetensors.h"
#include "metrics/inception_internal.h"

struct lg_inception {
    lg_inception_variant variant;
    int num_classes;                 /* K */
    lg_inc_conv conv[LG_INC_NCONV];  /* w, b point into params */
    lg_inc_block blocks[LG_INC_NBLOCK];
    float *fc_w;                     /* (K, 2048) */
    float *fc_b;                     /* (K) */
    float *params;                   /* one allocation for all of the above */
    char desc[320];
};

/* ---------------------------------------------------------------------
 * Layer table (torchvision's Inception3 names and shapes)
 * --------------------------------------------------------------------- */

/* Conv order inside each block kind; the loader, the synthetic writer and
 * the forward pass all index convs through these. */
enum { A_1X1, A_5X5_1, A_5X5_2, A_DBL_1, A_DBL_2, A_DBL_3, A_POOL, A_N };
enum { B_3X3, B_DBL_1, B_DBL_2, B_DBL_3, B_N };
enum { C_1X1, C_7_1, C_7_2, C_7_3, C_D_1, C_D_2, C_D_3, C_D_4, C_D_5, C_POOL, C_N };
enum { D_3_1, D_3_2, D_7_1, D_7_2, D_7_3, D_7_4, D_N };
enum { E_1X1, E_3_1, E_3_2A, E_3_2B, E_D_1, E_D_2, E_D_3A, E_D_3B, E_POOL, E_N };

static void set_conv(lg_inc_conv *c, const char *block, const char *sub, int ic, int oc, int kh,
                     int kw, int s, int ph, int pw) {
    if (sub)
        snprintf(c->name, sizeof c->name, "%s.%s", block, sub);
    else
        snprintf(c->name, sizeof c->name, "%s", block);
    c->ic = ic;
    c->oc = oc;
    c->kh = kh;
    c->kw = kw;
    c->sh = c->sw = s;
    c->ph = ph;
    c->pw = pw;
    c->w = c->b = NULL;
}

static int add_block(lg_inc_conv *conv, int n, lg_inc_block *b, const char *name, lg_inc_kind kind,
                     int ic, int arg) {
    lg_inc_conv *c = conv + n;
    b->name = name;
    b->kind = kind;
    b->in_ch = ic;
    b->first = n;
    switch (kind) {
    case LG_INC_A: /* arg = pool_features */
        set_conv(&c[A_1X1], name, "branch1x1", ic, 64, 1, 1, 1, 0, 0);
        set_conv(&c[A_5X5_1], name, "branch5x5_1", ic, 48, 1, 1, 1, 0, 0);
        set_conv(&c[A_5X5_2], name, "branch5x5_2", 48, 64, 5, 5, 1, 2, 2);
        set_conv(&c[A_DBL_1], name, "branch3x3dbl_1", ic, 64, 1, 1, 1, 0, 0);
        set_conv(&c[A_DBL_2], name, "branch3x3dbl_2", 64, 96, 3, 3, 1, 1, 1);
        set_conv(&c[A_DBL_3], name, "branch3x3dbl_3", 96, 96, 3, 3, 1, 1, 1);
        set_conv(&c[A_POOL], name, "branch_pool", ic, arg, 1, 1, 1, 0, 0);
        b->out_ch = 64 + 64 + 96 + arg;
        return n + A_N;
    case LG_INC_B:
        set_conv(&c[B_3X3], name, "branch3x3", ic, 384, 3, 3, 2, 0, 0);
        set_conv(&c[B_DBL_1], name, "branch3x3dbl_1", ic, 64, 1, 1, 1, 0, 0);
        set_conv(&c[B_DBL_2], name, "branch3x3dbl_2", 64, 96, 3, 3, 1, 1, 1);
        set_conv(&c[B_DBL_3], name, "branch3x3dbl_3", 96, 96, 3, 3, 2, 0, 0);
        b->out_ch = 384 + 96 + ic;
        return n + B_N;
    case LG_INC_C: /* arg = channels_7x7 */
        set_conv(&c[C_1X1], name, "branch1x1", ic, 192, 1, 1, 1, 0, 0);
        set_conv(&c[C_7_1], name, "branch7x7_1", ic, arg, 1, 1, 1, 0, 0);
        set_conv(&c[C_7_2], name, "branch7x7_2", arg, arg, 1, 7, 1, 0, 3);
        set_conv(&c[C_7_3], name, "branch7x7_3", arg, 192, 7, 1, 1, 3, 0);
        set_conv(&c[C_D_1], name, "branch7x7dbl_1", ic, arg, 1, 1, 1, 0, 0);
        set_conv(&c[C_D_2], name, "branch7x7dbl_2", arg, arg, 7, 1, 1, 3, 0);
        set_conv(&c[C_D_3], name, "branch7x7dbl_3", arg, arg, 1, 7, 1, 0, 3);
        set_conv(&c[C_D_4], name, "branch7x7dbl_4", arg, arg, 7, 1, 1, 3, 0);
        set_conv(&c[C_D_5], name, "branch7x7dbl_5", arg, 192, 1, 7, 1, 0, 3);
        set_conv(&c[C_POOL], name, "branch_pool", ic, 192, 1, 1, 1, 0, 0);
        b->out_ch = 4 * 192;
        return n + C_N;
    case LG_INC_D:
        set_conv(&c[D_3_1], name, "branch3x3_1", ic, 192, 1, 1, 1, 0, 0);
        set_conv(&c[D_3_2], name, "branch3x3_2", 192, 320, 3, 3, 2, 0, 0);
        set_conv(&c[D_7_1], name, "branch7x7x3_1", ic, 192, 1, 1, 1, 0, 0);
        set_conv(&c[D_7_2], name, "branch7x7x3_2", 192, 192, 1, 7, 1, 0, 3);
        set_conv(&c[D_7_3], name, "branch7x7x3_3", 192, 192, 7, 1, 1, 3, 0);
        set_conv(&c[D_7_4], name, "branch7x7x3_4", 192, 192, 3, 3, 2, 0, 0);
        b->out_ch = 320 + 192 + ic;
        return n + D_N;
    case LG_INC_E1:
    case LG_INC_E2:
        set_conv(&c[E_1X1], name, "branch1x1", ic, 320, 1, 1, 1, 0, 0);
        set_conv(&c[E_3_1], name, "branch3x3_1", ic, 384, 1, 1, 1, 0, 0);
        set_conv(&c[E_3_2A], name, "branch3x3_2a", 384, 384, 1, 3, 1, 0, 1);
        set_conv(&c[E_3_2B], name, "branch3x3_2b", 384, 384, 3, 1, 1, 1, 0);
        set_conv(&c[E_D_1], name, "branch3x3dbl_1", ic, 448, 1, 1, 1, 0, 0);
        set_conv(&c[E_D_2], name, "branch3x3dbl_2", 448, 384, 3, 3, 1, 1, 1);
        set_conv(&c[E_D_3A], name, "branch3x3dbl_3a", 384, 384, 1, 3, 1, 0, 1);
        set_conv(&c[E_D_3B], name, "branch3x3dbl_3b", 384, 384, 3, 1, 1, 1, 0);
        set_conv(&c[E_POOL], name, "branch_pool", ic, 192, 1, 1, 1, 0, 0);
        b->out_ch = 320 + 2 * 384 + 2 * 384 + 192;
        return n + E_N;
    }
    LG_ASSERT(0);
    return n;
}

void lg_inc_build_table(lg_inc_conv *conv, lg_inc_block *blocks) {
    set_conv(&conv[0], "Conv2d_1a_3x3", NULL, 3, 32, 3, 3, 2, 0, 0);
    set_conv(&conv[1], "Conv2d_2a_3x3", NULL, 32, 32, 3, 3, 1, 0, 0);
    set_conv(&conv[2], "Conv2d_2b_3x3", NULL, 32, 64, 3, 3, 1, 1, 1);
    set_conv(&conv[3], "Conv2d_3b_1x1", NULL, 64, 80, 1, 1, 1, 0, 0);
    set_conv(&conv[4], "Conv2d_4a_3x3", NULL, 80, 192, 3, 3, 1, 0, 0);
    int n = LG_INC_NSTEM, k = 0;
    n = add_block(conv, n, &blocks[k++], "Mixed_5b", LG_INC_A, 192, 32);
    n = add_block(conv, n, &blocks[k++], "Mixed_5c", LG_INC_A, 256, 64);
    n = add_block(conv, n, &blocks[k++], "Mixed_5d", LG_INC_A, 288, 64);
    n = add_block(conv, n, &blocks[k++], "Mixed_6a", LG_INC_B, 288, 0);
    n = add_block(conv, n, &blocks[k++], "Mixed_6b", LG_INC_C, 768, 128);
    n = add_block(conv, n, &blocks[k++], "Mixed_6c", LG_INC_C, 768, 160);
    n = add_block(conv, n, &blocks[k++], "Mixed_6d", LG_INC_C, 768, 160);
    n = add_block(conv, n, &blocks[k++], "Mixed_6e", LG_INC_C, 768, 192);
    n = add_block(conv, n, &blocks[k++], "Mixed_7a", LG_INC_D, 768, 0);
    n = add_block(conv, n, &blocks[k++], "Mixed_7b", LG_INC_E1, 1280, 0);
    n = add_block(conv, n, &blocks[k++], "Mixed_7c", LG_INC_E2, 2048, 0);
    LG_ASSERT(n == LG_INC_NCONV && k == LG_INC_NBLOCK);
}

/* ---------------------------------------------------------------------
 * Loading
 * --------------------------------------------------------------------- */

/* A weights file is checked in two passes. The first reads only the
 * safetensors header (~40 KB for Inception-v3) and decides whether the file
 * is usable at all: it exists, is safetensors, is not truncated, has a known
 * variant and every tensor with its shape and a float dtype. Only then is
 * the whole file read (lg_st_open, ~96 MB, which validates it fully) and the
 * ~96 MB of folded weights allocated, so a wrong path or a wrong file (a
 * .pth, another model's weights) fails at once without either allocation. */

#define INC_HINT "convert pytorch-fid's or torchvision's weights with tools/convert_inception_weights.py"
/* Largest header the first pass reads (Inception-v3's is ~40 KB). */
#define INC_MAX_HEADER ((uint64_t)16 << 20)

/* Copies at most 40 bytes of s into buf (cap >= 48) with control bytes as
 * '?', so a value from the file cannot break the one-line message. */
static const char *printable(const char *s, char *buf, size_t cap) {
    size_t n = 0;
    for (; n < 40 && n + 4 < cap && s[n]; n++) buf[n] = (unsigned char)s[n] < 0x20 || s[n] == 0x7f ? '?' : s[n];
    snprintf(buf + n, cap - n, "%s", s[n] ? "..." : "");
    return buf;
}

/* The variant from the metadata value v (NULL when absent). */
static lg_status parse_variant(const char *v, const char *path, lg_inception_variant *out) {
    if (!v || strcmp(v, "fid") == 0) {
        *out = LG_INCEPTION_FID;
    } else if (strcmp(v, "torchvision") == 0) {
        *out = LG_INCEPTION_TORCHVISION;
    } else {
        char pv[64];
        return lg_error_set(LG_ERR_FORMAT,
                            "Inception-v3 weights: file %s: metadata lipgan_inception_variant = \"%s\", expected "
                            "\"fid\" or \"torchvision\"; " INC_HINT, path, printable(v, pv, sizeof pv));
    }
    return LG_OK;
}

static void shape_text(char *buf, size_t cap, int ndim, const int64_t *shape) {
    size_t n = (size_t)snprintf(buf, cap, "(");
    for (int i = 0; i < ndim && n < cap; i++)
        n += (size_t)snprintf(buf + n, cap - n, "%s%lld", i ? ", " : "", (long long)shape[i]);
    if (n < cap) snprintf(buf + n, cap - n, ")");
}

/* The header entry of tensor name: its shape (ndim may exceed 8; only 8
 * dims are stored) after checking that it exists with a float dtype. */
static lg_status header_entry(const cJSON *hdr, const char *path, const char *name, int *ndim,
                              int64_t shape[8]) {
    const cJSON *e = cJSON_GetObjectItemCaseSensitive(hdr, name);
    if (!e)
        return lg_error_set(LG_ERR_NOT_FOUND,
                            "Inception-v3 weights: file %s: no tensor \"%s\" (expected torchvision/pytorch-fid "
                            "state-dict names); " INC_HINT, path, name);
    const cJSON *dt = cJSON_GetObjectItemCaseSensitive(e, "dtype"), *sh = cJSON_GetObjectItemCaseSensitive(e, "shape");
    lg_st_dtype d;
    if (!cJSON_IsString(dt) || !cJSON_IsArray(sh) || lg_st_dtype_parse(dt->valuestring, &d) != 0)
        return lg_error_set(LG_ERR_FORMAT,
                            "Inception-v3 weights: file %s: tensor \"%s\" has no valid dtype and shape; the file is "
                            "corrupt: " INC_HINT, path, name);
    if (d != LG_ST_F32 && d != LG_ST_F16 && d != LG_ST_BF16 && d != LG_ST_F64)
        return lg_error_set(LG_ERR_UNSUPPORTED,
                            "Inception-v3 weights: file %s: tensor \"%s\" has dtype %s, expected F32, F16, BF16 or "
                            "F64; " INC_HINT, path, name, lg_st_dtype_name(d));
    *ndim = 0;
    for (const cJSON *x = sh->child; x; x = x->next, ++*ndim) {
        double v = cJSON_IsNumber(x) ? x->valuedouble : -1.0;
        if (!(v >= 0.0 && v <= 9007199254740992.0 && v == (double)(int64_t)v))
            return lg_error_set(LG_ERR_FORMAT,
                                "Inception-v3 weights: file %s: tensor \"%s\" has an invalid shape; the file is "
                                "corrupt: " INC_HINT, path, name);
        if (*ndim < 8) shape[*ndim] = (int64_t)v;
    }
    return LG_OK;
}

/* Tensor name must be in the header with shape (ndim, want). */
static lg_status header_check(const cJSON *hdr, const char *path, const char *name, int ndim, const int64_t *want) {
    int n;
    int64_t got[8];
    LG_TRY(header_entry(hdr, path, name, &n, got));
    if (n == ndim && memcmp(got, want, sizeof *want * (size_t)ndim) == 0) return LG_OK;
    char gs[160], ws[96];
    if (n > 8)
        snprintf(gs, sizeof gs, "%d dims", n);
    else
        shape_text(gs, sizeof gs, n, got);
    shape_text(ws, sizeof ws, ndim, want);
    return lg_error_set(LG_ERR_SHAPE,
                        "Inception-v3 weights: file %s: tensor \"%s\" has shape %s, expected %s (the file holds "
                        "another network); " INC_HINT, path, name, gs, ws);
}

/* Checks every tensor of the table conv[LG_INC_NCONV], fc.weight (K, 2048)
 * and fc.bias (K) in the parsed header; sets *k. */
static lg_status header_tensors(const cJSON *hdr, const char *path, const lg_inc_conv *conv, int *k) {
    int n;
    int64_t fc[8];
    LG_TRY(header_entry(hdr, path, "fc.weight", &n, fc));
    if (n != 2 || fc[1] != LG_INCEPTION_POOL3_DIM || fc[0] < 1 || fc[0] > 100000)
        return lg_error_set(LG_ERR_SHAPE,
                            "Inception-v3 weights: file %s: tensor \"fc.weight\" must have shape (K, 2048) with 1 <= "
                            "K <= 100000 (1008 for pytorch-fid's weights); " INC_HINT, path);
    *k = (int)fc[0];
    LG_TRY(header_check(hdr, path, "fc.bias", 1, fc));
    static const char *bn[4] = {"weight", "bias", "running_mean", "running_var"};
    for (int i = 0; i < LG_INC_NCONV; i++) {
        const lg_inc_conv *c = &conv[i];
        char name[96];
        const int64_t ws[4] = {c->oc, c->ic, c->kh, c->kw};
        snprintf(name, sizeof name, "%.47s.conv.weight", c->name);
        LG_TRY(header_check(hdr, path, name, 4, ws));
        for (int j = 0; j < 4; j++) {
            snprintf(name, sizeof name, "%.47s.bn.%s", c->name, bn[j]);
            LG_TRY(header_check(hdr, path, name, 1, ws));
        }
    }
    return LG_OK;
}

/* The first pass (see above): reads the header of the file at path and
 * checks it against the table conv; sets the variant and K. A file this
 * passes can still fail lg_st_open's full validation (the header's
 * offsets, the data), never the other way round. */
static lg_status check_header(const char *path, const lg_inc_conv *conv, lg_inception_variant *variant, int *k) {
    FILE *fp = fopen(path, "rb");
    if (!fp) {
        int e = errno;
        return lg_error_set(e == ENOENT ? LG_ERR_NOT_FOUND : LG_ERR_IO,
                            "Inception-v3 weights: file %s: cannot open: %s; check the path, or " INC_HINT, path,
                            strerror(e));
    }
    struct stat sb;
    if (fstat(fileno(fp), &sb) != 0 || !S_ISREG(sb.st_mode)) {
        fclose(fp);
        return lg_error_set(LG_ERR_IO, "Inception-v3 weights: file %s: not a regular file; give the path of the "
                                       "weights file (" INC_HINT ")", path);
    }
    uint64_t size = (uint64_t)sb.st_size, n = 0;
    unsigned char b[9];
    size_t got = fread(b, 1, sizeof b, fp);
    for (int i = 7; got == sizeof b && i >= 0; i--) n = n << 8 | b[i];
    const char *why = NULL;
    if (got < sizeof b)
        why = "too short for a safetensors header";
    else if (b[0] == 'P' && b[1] == 'K' && b[2] == 3 && b[3] == 4)
        why = "a zip archive, such as PyTorch's .pth";
    else if (n < 2 || n > size - 8 || b[8] != '{')
        why = "no safetensors header";
    else if (n > INC_MAX_HEADER)
        why = "a safetensors header above 16 MB, far larger than Inception-v3's";
    char *h = why ? NULL : malloc(n + 1);
    if (!why && !h) {
        fclose(fp);
        return lg_error_set(LG_ERR_NOMEM, "Inception-v3 weights: file %s: out of memory", path);
    }
    if (h) {
        h[0] = '{';
        if (fread(h + 1, 1, n - 1, fp) != n - 1) why = "cannot read its header (truncated?)";
        h[n] = '\0';
    }
    fclose(fp);
    if (why) {
        free(h);
        return lg_error_set(LG_ERR_FORMAT, "Inception-v3 weights: file %s is not a safetensors file (%s); " INC_HINT,
                            path, why);
    }
    cJSON *hdr = cJSON_ParseWithLength(h, n);
    free(h);
    lg_status s = LG_OK;
    if (!cJSON_IsObject(hdr)) {
        s = lg_error_set(LG_ERR_FORMAT, "Inception-v3 weights: file %s is not a safetensors file (its header is "
                                        "not a JSON object); " INC_HINT, path);
        goto done;
    }
    /* truncated data (an interrupted copy) is the common corruption */
    double end = 0.0;
    for (const cJSON *e = hdr->child; e; e = e->next) {
        const cJSON *o = cJSON_GetObjectItemCaseSensitive(e, "data_offsets");
        const cJSON *o1 = cJSON_IsArray(o) ? cJSON_GetArrayItem(o, 1) : NULL;
        if (cJSON_IsNumber(o1) && o1->valuedouble > end && strcmp(e->string, "__metadata__") != 0)
            end = o1->valuedouble;
    }
    if (end > 9007199254740992.0) {
        s = lg_error_set(LG_ERR_FORMAT, "Inception-v3 weights: file %s: its header has invalid data offsets; the "
                                        "file is corrupt: " INC_HINT, path);
        goto done;
    }
    if ((double)(8 + n) + end > (double)size) {
        s = lg_error_set(LG_ERR_FORMAT,
                         "Inception-v3 weights: file %s is truncated: its header describes %.0f bytes of tensor data, "
                         "but %llu follow; copy the file again or re-run tools/convert_inception_weights.py", path,
                         end, (unsigned long long)(size - 8 - n));
        goto done;
    }
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(hdr, "__metadata__"),
                                                      "lipgan_inception_variant");
    if ((s = parse_variant(cJSON_IsString(v) ? v->valuestring : NULL, path, variant)) != LG_OK) goto done;
    s = header_tensors(hdr, path, conv, k);
done:
    cJSON_Delete(hdr);
    return s;
}

/* Reads one tensor; on error re-raises the reader's message with a hint. */
static lg_status get(const lg_st_file *f, const char *name, int ndim, const int64_t *shape,
                     float *out) {
    lg_status s = lg_st_get_f32(f, name, ndim, shape, out);
    if (s != LG_OK) {
        char msg[512];
        snprintf(msg, sizeof msg, "%s", lg_error_msg());
        return lg_error_set(s, "Inception-v3 weights: %s (expected torchvision/pytorch-fid state-dict "
                               "names; convert with tools/convert_inception_weights.py)", msg);
    }
    return LG_OK;
}

static lg_status load_conv(const lg_st_file *f, lg_inc_conv *c, float *scratch /* (5*OC) */) {
    char name[96];
    int64_t wshape[4] = {c->oc, c->ic, c->kh, c->kw};
    snprintf(name, sizeof name, "%s.conv.weight", c->name);
    LG_TRY(get(f, name, 4, wshape, c->w));
    static const char *bn[4] = {"weight", "bias", "running_mean", "running_var"};
    int64_t oc = c->oc;
    for (int i = 0; i < 4; i++) {
        snprintf(name, sizeof name, "%s.bn.%s", c->name, bn[i]);
        LG_TRY(get(f, name, 1, &oc, scratch + (size_t)i * c->oc));
    }
    const float *gamma = scratch, *beta = scratch + c->oc, *mean = scratch + 2 * c->oc,
                *var = scratch + 3 * c->oc;
    size_t k = (size_t)c->ic * c->kh * c->kw;
    for (int o = 0; o < c->oc; o++) {
        if (!(var[o] >= 0.0f) || !isfinite(var[o]) || !isfinite(gamma[o]) || !isfinite(beta[o]) ||
            !isfinite(mean[o]))
            return lg_error_set(LG_ERR_NONFINITE,
                                "Inception-v3 weights: file %s: %s.bn has a NaN/Inf value or a negative "
                                "running_var at channel %d; the file is corrupt: " INC_HINT, lg_st_path(f),
                                c->name, o);
        /* eval-mode BN: gamma * (x - mean) / sqrt(var + eps) + beta */
        double s = (double)gamma[o] / sqrt((double)var[o] + LG_INCEPTION_BN_EPS);
        float *wo = c->w + (size_t)o * k;
        for (size_t j = 0; j < k; j++) {
            if (!isfinite(wo[j]))
                return lg_error_set(LG_ERR_NONFINITE,
                                    "Inception-v3 weights: file %s: %s.conv.weight has a NaN/Inf value; "
                                    "the file is corrupt: " INC_HINT, lg_st_path(f), c->name);
            wo[j] = (float)((double)wo[j] * s);
        }
        c->b[o] = (float)((double)beta[o] - (double)mean[o] * s);
    }
    return LG_OK;
}

static const char *variant_text(lg_inception_variant v) {
    return v == LG_INCEPTION_FID
               ? "pytorch-fid inception-v3 (FID variant, pt_inception-2015-12-05 architecture)"
               : "torchvision inception-v3 (unpatched blocks)";
}

lg_status lg_inception_load(lg_inception **out, const char *path) {
    *out = NULL;
    lg_inc_conv conv[LG_INC_NCONV]; /* the table (~10 KB), before anything is allocated */
    lg_inc_block blocks[LG_INC_NBLOCK];
    lg_inc_build_table(conv, blocks);
    lg_inception_variant variant = LG_INCEPTION_FID;
    int k = 0;
    LG_TRY(check_header(path, conv, &variant, &k));

    lg_st_file *f = NULL;
    lg_status s = lg_st_open(&f, path);
    if (s != LG_OK) {
        char msg[768];
        snprintf(msg, sizeof msg, "%s", lg_error_msg());
        return lg_error_set(s, "Inception-v3 weights: %s; " INC_HINT, msg);
    }
    float *scratch = NULL;
    lg_inception *net = calloc(1, sizeof *net);
    if (!net) {
        lg_st_close(f);
        return lg_error_set(LG_ERR_NOMEM, "Inception-v3: out of memory");
    }
    memcpy(net->conv, conv, sizeof conv);
    memcpy(net->blocks, blocks, sizeof blocks);
    /* the file may have changed since the first pass: re-derive, and get()
     * checks every shape again */
    if ((s = parse_variant(lg_st_meta(f, "lipgan_inception_variant"), path, &net->variant)) != LG_OK) goto done;
    const lg_st_tensor *fc = lg_st_find(f, "fc.weight");
    if (!fc || fc->ndim != 2 || fc->shape[0] != k) {
        s = lg_error_set(LG_ERR_IO, "Inception-v3 weights: file %s changed while it was read; load it again", path);
        goto done;
    }
    net->num_classes = k;

    size_t total = (size_t)net->num_classes * (LG_INCEPTION_POOL3_DIM + 1);
    int max_oc = 0;
    for (int i = 0; i < LG_INC_NCONV; i++) {
        const lg_inc_conv *c = &net->conv[i];
        total += (size_t)c->oc * c->ic * c->kh * c->kw + (size_t)c->oc;
        if (c->oc > max_oc) max_oc = c->oc;
    }
    net->params = malloc(total * sizeof(float));
    scratch = malloc((size_t)4 * max_oc * sizeof(float));
    if (!net->params || !scratch) {
        s = lg_error_set(LG_ERR_NOMEM, "Inception-v3: out of memory for %zu weights", total);
        goto done;
    }
    float *p = net->params;
    for (int i = 0; i < LG_INC_NCONV; i++) {
        lg_inc_conv *c = &net->conv[i];
        c->w = p;
        p += (size_t)c->oc * c->ic * c->kh * c->kw;
        c->b = p;
        p += c->oc;
        if ((s = load_conv(f, c, scratch)) != LG_OK) goto done;
    }
    net->fc_w = p;
    p += (size_t)net->num_classes * LG_INCEPTION_POOL3_DIM;
    net->fc_b = p;
    int64_t fshape[2] = {net->num_classes, LG_INCEPTION_POOL3_DIM};
    if ((s = get(f, "fc.weight", 2, fshape, net->fc_w)) != LG_OK) goto done;
    if ((s = get(f, "fc.bias", 1, fshape, net->fc_b)) != LG_OK) goto done;
    for (size_t i = 0; i < (size_t)net->num_classes * (LG_INCEPTION_POOL3_DIM + 1); i++) {
        if (!isfinite(net->fc_w[i])) {
            s = lg_error_set(LG_ERR_NONFINITE, "Inception-v3 weights: file %s: fc has a NaN/Inf "
                                               "value; the file is corrupt: " INC_HINT, path);
            goto done;
        }
    }

    const char *src = lg_st_meta(f, "source");
    snprintf(net->desc, sizeof net->desc, "%s pool3, bilinear resize to 299x299%s%s%s",
             variant_text(net->variant), src ? " [weights: " : "", src ? src : "", src ? "]" : "");
done:
    free(scratch);
    lg_st_close(f);
    if (s != LG_OK) {
        lg_inception_free(net);
        return s;
    }
    *out = net;
    return LG_OK;
}

void lg_inception_free(lg_inception *net) {
    if (!net) return;
    free(net->params);
    free(net);
}

int lg_inception_num_classes(const lg_inception *net) { return net->num_classes; }
lg_inception_variant lg_inception_get_variant(const lg_inception *net) { return net->variant; }
const char *lg_inception_describe(const lg_inception *net) { return net->desc; }

/* ---------------------------------------------------------------------
 * Forward pass
 * --------------------------------------------------------------------- */

/* Scratch sizes for a 299x299 input (fixed, since every input is resized). */
#define ACT_CAP ((size_t)64 * 147 * 147) /* largest activation: after Conv2d_2b */
#define TMP_CAP ((size_t)288 * 35 * 35)  /* largest block input / branch temp */
#define COL_CAP ((size_t)288 * 147 * 147) /* largest im2col: Conv2d_2a/2b */

typedef struct ws {
    float *act[2]; /* (ACT_CAP) ping-pong activations */
    float *t[3];   /* (TMP_CAP) branch temporaries */
    float *col;    /* (COL_CAP) im2col */
    float *feat;   /* (2048) pool3 */
} ws;

static void ws_free(ws *w) {
    free(w->act[0]);
    free(w->act[1]);
    for (int i = 0; i < 3; i++) free(w->t[i]);
    free(w->col);
    free(w->feat);
}

static int ws_alloc(ws *w) {
    memset(w, 0, sizeof *w);
    w->act[0] = malloc(ACT_CAP * sizeof(float));
    w->act[1] = malloc(ACT_CAP * sizeof(float));
    for (int i = 0; i < 3; i++) w->t[i] = malloc(TMP_CAP * sizeof(float));
    w->col = malloc(COL_CAP * sizeof(float));
    w->feat = malloc(LG_INCEPTION_POOL3_DIM * sizeof(float));
    if (w->act[0] && w->act[1] && w->t[0] && w->t[1] && w->t[2] && w->col && w->feat) return 1;
    ws_free(w);
    return 0;
}

/* Runs conv cv on x (IC, h, w) into y (OC, oh, ow); returns OC. */
static int conv(ws *W, const lg_inc_conv *cv, const float *x, int h, int w, float *y) {
    lg_inc_conv_forward(cv, x, h, w, y, W->col, COL_CAP);
    return cv->oc;
}

/* One Mixed block: x (in_ch, *h, *w) -> y (out_ch, *h', *w'). Each branch
 * writes its channels straight into its slice of y (the concat). */
static void block_forward(const lg_inception *net, ws *W, const lg_inc_block *b, const float *x,
                          int *ph, int *pw, float *y) {
    const lg_inc_conv *c = net->conv + b->first;
    int h = *ph, w = *pw, ic = b->in_ch;
    float *t0 = W->t[0], *t1 = W->t[1], *tp = W->t[2];
    int fid = net->variant == LG_INCEPTION_FID;
    lg_inc_pool avg = fid ? LG_INC_AVG_EXCL_PAD : LG_INC_AVG_INCL_PAD;
    size_t hw = (size_t)h * w;
    int off = 0;
    switch (b->kind) {
    case LG_INC_A:
        off += conv(W, &c[A_1X1], x, h, w, y);
        conv(W, &c[A_5X5_1], x, h, w, t0);
        off += conv(W, &c[A_5X5_2], t0, h, w, y + off * hw);
        conv(W, &c[A_DBL_1], x, h, w, t0);
        conv(W, &c[A_DBL_2], t0, h, w, t1);
        off += conv(W, &c[A_DBL_3], t1, h, w, y + off * hw);
        lg_inc_pool3s1(x, ic, h, w, avg, tp);
        off += conv(W, &c[A_POOL], tp, h, w, y + off * hw);
        break;
    case LG_INC_B: {
        int oh = lg_inc_out_dim(h, 3, 2, 0), ow = lg_inc_out_dim(w, 3, 2, 0);
        size_t ohw = (size_t)oh * ow;
        off += conv(W, &c[B_3X3], x, h, w, y);
        conv(W, &c[B_DBL_1], x, h, w, t0);
        conv(W, &c[B_DBL_2], t0, h, w, t1);
        off += conv(W, &c[B_DBL_3], t1, h, w, y + off * ohw);
        lg_inc_maxpool3s2(x, ic, h, w, y + off * ohw);
        off += ic;
        *ph = oh;
        *pw = ow;
        break;
    }
    case LG_INC_C:
        off += conv(W, &c[C_1X1], x, h, w, y);
        conv(W, &c[C_7_1], x, h, w, t0);
        conv(W, &c[C_7_2], t0, h, w, t1);
        off += conv(W, &c[C_7_3], t1, h, w, y + off * hw);
        conv(W, &c[C_D_1], x, h, w, t0);
        conv(W, &c[C_D_2], t0, h, w, t1);
        conv(W, &c[C_D_3], t1, h, w, t0);
        conv(W, &c[C_D_4], t0, h, w, t1);
        off += conv(W, &c[C_D_5], t1, h, w, y + off * hw);
        lg_inc_pool3s1(x, ic, h, w, avg, tp);
        off += conv(W, &c[C_POOL], tp, h, w, y + off * hw);
        break;
    case LG_INC_D: {
        int oh = lg_inc_out_dim(h, 3, 2, 0), ow = lg_inc_out_dim(w, 3, 2, 0);
        size_t ohw = (size_t)oh * ow;
        conv(W, &c[D_3_1], x, h, w, t0);
        off += conv(W, &c[D_3_2], t0, h, w, y);
        conv(W, &c[D_7_1], x, h, w, t0);
        conv(W, &c[D_7_2], t0, h, w, t1);
        conv(W, &c[D_7_3], t1, h, w, t0);
        off += conv(W, &c[D_7_4], t0, h, w, y + off * ohw);
        lg_inc_maxpool3s2(x, ic, h, w, y + off * ohw);
        off += ic;
        *ph = oh;
        *pw = ow;
        break;
    }
    case LG_INC_E1:
    case LG_INC_E2: {
        /* pytorch-fid's Mixed_7c (E_2) max-pools; torchvision average-pools */
        lg_inc_pool pm = (b->kind == LG_INC_E2 && fid) ? LG_INC_MAX : avg;
        off += conv(W, &c[E_1X1], x, h, w, y);
        conv(W, &c[E_3_1], x, h, w, t0);
        off += conv(W, &c[E_3_2A], t0, h, w, y + off * hw);
        off += conv(W, &c[E_3_2B], t0, h, w, y + off * hw);
        conv(W, &c[E_D_1], x, h, w, t0);
        conv(W, &c[E_D_2], t0, h, w, t1);
        off += conv(W, &c[E_D_3A], t1, h, w, y + off * hw);
        off += conv(W, &c[E_D_3B], t1, h, w, y + off * hw);
        lg_inc_pool3s1(x, ic, h, w, pm, tp);
        off += conv(W, &c[E_POOL], tp, h, w, y + off * hw);
        break;
    }
    }
    LG_ASSERT(off == b->out_ch);
}

/* One image img (C, H, W) -> pool3 (2048) and/or logits (K). */
static void forward_one(const lg_inception *net, ws *W, const float *img, int c, int h, int w,
                        float *pool3, float *logits) {
    const int S = LG_INCEPTION_SIZE;
    size_t plane = (size_t)S * S;
    float *cur = W->act[0], *nxt = W->act[1], *tmp;
    if (h == S && w == S)
        memcpy(cur, img, sizeof(float) * (size_t)c * plane);
    else
        lg_inception_resize(img, c, h, w, S, S, cur);
    if (c == 1) { /* grayscale: repeat the plane to 3 channels */
        memcpy(cur + plane, cur, sizeof(float) * plane);
        memcpy(cur + 2 * plane, cur, sizeof(float) * plane);
    }
    int H = S, Wd = S;
#define STEM_CONV(i)                                                                               \
    do {                                                                                           \
        const lg_inc_conv *cv_ = &net->conv[i];                                                    \
        conv(W, cv_, cur, H, Wd, nxt);                                                             \
        H = lg_inc_out_dim(H, cv_->kh, cv_->sh, cv_->ph);                                          \
        Wd = lg_inc_out_dim(Wd, cv_->kw, cv_->sw, cv_->pw);                                        \
        tmp = cur, cur = nxt, nxt = tmp;                                                           \
    } while (0)
#define STEM_MAXPOOL(ch)                                                                           \
    do {                                                                                           \
        lg_inc_maxpool3s2(cur, ch, H, Wd, nxt);                                                    \
        H = lg_inc_out_dim(H, 3, 2, 0);                                                            \
        Wd = lg_inc_out_dim(Wd, 3, 2, 0);                                                          \
        tmp = cur, cur = nxt, nxt = tmp;                                                           \
    } while (0)
    STEM_CONV(0); /* (32, 149, 149) */
    STEM_CONV(1); /* (32, 147, 147) */
    STEM_CONV(2); /* (64, 147, 147) */
    STEM_MAXPOOL(64); /* (64, 73, 73) */
    STEM_CONV(3); /* (80, 73, 73) */
    STEM_CONV(4); /* (192, 71, 71) */
    STEM_MAXPOOL(192); /* (192, 35, 35) */
#undef STEM_CONV
#undef STEM_MAXPOOL
    for (int i = 0; i < LG_INC_NBLOCK; i++) {
        block_forward(net, W, &net->blocks[i], cur, &H, &Wd, nxt);
        tmp = cur, cur = nxt, nxt = tmp;
    }
    LG_ASSERT(H == 8 && Wd == 8);
    lg_inc_global_avg(cur, LG_INCEPTION_POOL3_DIM, H * Wd, W->feat);
    if (pool3) memcpy(pool3, W->feat, sizeof(float) * LG_INCEPTION_POOL3_DIM);
    if (logits) {
        int k = net->num_classes;
        memcpy(logits, net->fc_b, sizeof(float) * (size_t)k);
        cblas_sgemv(CblasRowMajor, CblasNoTrans, k, LG_INCEPTION_POOL3_DIM, 1.0f, net->fc_w,
                    LG_INCEPTION_POOL3_DIM, W->feat, 1, 1.0f, logits, 1);
    }
}

lg_status lg_inception_is_logits(const lg_inception *net, const float *pool3, int64_t n, float *logits) {
    if (!net || !pool3 || !logits || n < 1 || n > INT32_MAX)
        return lg_error_set(LG_ERR_INVALID_ARG, "lg_inception_is_logits: bad input (n = %lld)", (long long)n);
    /* logits = pool3 W^T: fc.weight (K, 2048) only, no fc.bias */
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)n, net->num_classes, LG_INCEPTION_POOL3_DIM, 1.0f,
                pool3, LG_INCEPTION_POOL3_DIM, net->fc_w, LG_INCEPTION_POOL3_DIM, 0.0f, logits, net->num_classes);
    return LG_OK;
}

lg_status lg_inception_run(const lg_inception *net, const float *x, int n, int c, int h, int w,
                           float *pool3, float *logits) {
    if (!net || !x || n < 1 || (c != 1 && c != 3) || h < 1 || w < 1 || h > 4096 || w > 4096)
        return lg_error_set(LG_ERR_INVALID_ARG,
                            "lg_inception_run: bad input (n=%d, c=%d, h=%d, w=%d); need n >= 1, "
                            "c = 1 or 3, 1 <= h, w <= 4096", n, c, h, w);
    if (!pool3 && !logits)
        return lg_error_set(LG_ERR_INVALID_ARG, "lg_inception_run: pool3 and logits are both NULL");
    size_t img = (size_t)c * h * w;
    for (size_t i = 0; i < img * (size_t)n; i++)
        if (!isfinite(x[i]))
            return lg_error_set(LG_ERR_NONFINITE,
                                "lg_inception_run: image %zu has a NaN/Inf pixel (element %zu)",
                                i / img, i % img);
    int k = net->num_classes;
    int nth = omp_get_max_threads();
    if (nth > n) nth = n;
    if (nth < 1) nth = 1;
    ws *W = calloc((size_t)nth, sizeof *W);
    if (!W) return lg_error_set(LG_ERR_NOMEM, "lg_inception_run: out of memory");
    for (int t = 0; t < nth; t++) {
        if (!ws_alloc(&W[t])) {
            for (int u = 0; u < t; u++) ws_free(&W[u]);
            free(W);
            return lg_error_set(LG_ERR_NOMEM,
                                "lg_inception_run: out of memory for %d x 40 MB of scratch", nth);
        }
    }
    if (nth == 1) {
        /* one image at a time: OpenBLAS may use its own threads */
        for (int i = 0; i < n; i++)
            forward_one(net, &W[0], x + (size_t)i * img, c, h, w,
                        pool3 ? pool3 + (size_t)i * LG_INCEPTION_POOL3_DIM : NULL,
                        logits ? logits + (size_t)i * k : NULL);
    } else {
        /* images in parallel; OpenBLAS (openmp build) runs single-threaded
         * inside a parallel region, so the two pools do not oversubscribe */
#pragma omp parallel for num_threads(nth) schedule(dynamic, 1)
        for (int i = 0; i < n; i++)
            forward_one(net, &W[omp_get_thread_num()], x + (size_t)i * img, c, h, w,
                        pool3 ? pool3 + (size_t)i * LG_INCEPTION_POOL3_DIM : NULL,
                        logits ? logits + (size_t)i * k : NULL);
    }
    for (int t = 0; t < nth; t++) ws_free(&W[t]);
    free(W);
    return LG_OK;
}
