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

#include "lipgan/backend.h"
#include "lipgan/cuda.h"
#include "lipgan/safetensors.h"
#include "metrics/inception_kern.h"

struct lg_inception {
    lg_inception_variant variant;
    int num_classes;                 /* K */
    lg_inc_conv conv[LG_INC_NCONV];  /* w, b point into params */
    lg_inc_block blocks[LG_INC_NBLOCK];
    float *fc_w;                     /* (K, 2048) */
    float *fc_b;                     /* (K) */
    float *params;                   /* one allocation for all of the above */
    size_t nparams;                  /* floats in params */
    float *dparams;                  /* (nparams) device copy (lg_inception_use_cuda), or NULL */
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
    net->nparams = total;
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
#ifdef LG_HAVE_CUDA
    if (net->dparams) lg_backend_cuda()->free(net->dparams);
#endif
    free(net->params);
    free(net);
}

int lg_inception_num_classes(const lg_inception *net) { return net->num_classes; }
lg_inception_variant lg_inception_get_variant(const lg_inception *net) { return net->variant; }
const char *lg_inception_describe(const lg_inception *net) { return net->desc; }

/* ---------------------------------------------------------------------
 * Forward pass: the trunk (stem and Mixed blocks) over nb images at a
 * time through an exec (host or CUDA); resize and the fc head on the host
 * --------------------------------------------------------------------- */

/* Buffers of the trunk, in the exec's memory, for nb images. */
typedef struct bufs {
    float *act[2]; /* (nb, LG_INC_ACT_CAP) ping-pong activations */
    float *t[3];   /* (nb, LG_INC_TMP_CAP) branch temporaries */
    float *feat;   /* (nb, 2048) pool3 */
} bufs;

/* Buffer i of bufs, in order act[0], act[1], t[0..2], feat, and its size. */
static float **buf_slot(bufs *b, int i) {
    return i < 2 ? &b->act[i] : i < 5 ? &b->t[i - 2] : &b->feat;
}
static size_t buf_floats(int i, int nb) {
    return (size_t)nb * (i < 2 ? LG_INC_ACT_CAP : i < 5 ? LG_INC_TMP_CAP : LG_INCEPTION_POOL3_DIM);
}
enum { NBUF = 6 };

/* Runs conv cv over the batch x (nb, IC, h, w) into y(i) = y + i*ys; returns OC. */
static int conv(const lg_inc_exec *ex, const lg_inc_conv *cv, int nb, const float *x, int h, int w,
                float *y, size_t ys) {
    ex->conv(ex->st, cv, nb, x, h, w, y, ys);
    return cv->oc;
}

/* One Mixed block: x (nb, in_ch, *h, *w) -> y (nb, out_ch, *h', *w'). Each
 * branch writes its channels straight into its slice of y (the concat). */
static void block_forward(const lg_inception *net, const lg_inc_exec *ex, const bufs *B, int nb,
                          const lg_inc_block *b, const float *x, int *ph, int *pw, float *y) {
    const lg_inc_conv *c = net->conv + b->first;
    int h = *ph, w = *pw, ic = b->in_ch;
    float *t0 = B->t[0], *t1 = B->t[1], *tp = B->t[2];
    int fid = net->variant == LG_INCEPTION_FID;
    lg_inc_pool avg = fid ? LG_INC_AVG_EXCL_PAD : LG_INC_AVG_INCL_PAD;
    int oh = h, ow = w;
    if (b->kind == LG_INC_B || b->kind == LG_INC_D) { /* the grid-reduction blocks */
        oh = lg_inc_out_dim(h, 3, 2, 0);
        ow = lg_inc_out_dim(w, 3, 2, 0);
    }
    size_t ohw = (size_t)oh * ow, ys = (size_t)b->out_ch * ohw; /* y's image stride */
    int off = 0;
/* temps are contiguous (nb, OC, h, w): their convs are all "same" stride-1 ones */
#define CONV_T(i, src, dst) conv(ex, &c[i], nb, src, h, w, dst, (size_t)c[i].oc * h * w)
#define CONV_Y(i, src) (off += conv(ex, &c[i], nb, src, h, w, y + off * ohw, ys))
    switch (b->kind) {
    case LG_INC_A:
        CONV_Y(A_1X1, x);
        CONV_T(A_5X5_1, x, t0);
        CONV_Y(A_5X5_2, t0);
        CONV_T(A_DBL_1, x, t0);
        CONV_T(A_DBL_2, t0, t1);
        CONV_Y(A_DBL_3, t1);
        ex->pool3s1(ex->st, nb, x, ic, h, w, avg, tp);
        CONV_Y(A_POOL, tp);
        break;
    case LG_INC_B:
        CONV_Y(B_3X3, x);
        CONV_T(B_DBL_1, x, t0);
        CONV_T(B_DBL_2, t0, t1);
        CONV_Y(B_DBL_3, t1);
        ex->maxpool3s2(ex->st, nb, x, ic, h, w, y + off * ohw, ys);
        off += ic;
        break;
    case LG_INC_C:
        CONV_Y(C_1X1, x);
        CONV_T(C_7_1, x, t0);
        CONV_T(C_7_2, t0, t1);
        CONV_Y(C_7_3, t1);
        CONV_T(C_D_1, x, t0);
        CONV_T(C_D_2, t0, t1);
        CONV_T(C_D_3, t1, t0);
        CONV_T(C_D_4, t0, t1);
        CONV_Y(C_D_5, t1);
        ex->pool3s1(ex->st, nb, x, ic, h, w, avg, tp);
        CONV_Y(C_POOL, tp);
        break;
    case LG_INC_D:
        CONV_T(D_3_1, x, t0);
        CONV_Y(D_3_2, t0);
        CONV_T(D_7_1, x, t0);
        CONV_T(D_7_2, t0, t1);
        CONV_T(D_7_3, t1, t0);
        CONV_Y(D_7_4, t0);
        ex->maxpool3s2(ex->st, nb, x, ic, h, w, y + off * ohw, ys);
        off += ic;
        break;
    case LG_INC_E1:
    case LG_INC_E2: {
        /* pytorch-fid's Mixed_7c (E_2) max-pools; torchvision average-pools */
        lg_inc_pool pm = (b->kind == LG_INC_E2 && fid) ? LG_INC_MAX : avg;
        CONV_Y(E_1X1, x);
        CONV_T(E_3_1, x, t0);
        CONV_Y(E_3_2A, t0);
        CONV_Y(E_3_2B, t0);
        CONV_T(E_D_1, x, t0);
        CONV_T(E_D_2, t0, t1);
        CONV_Y(E_D_3A, t1);
        CONV_Y(E_D_3B, t1);
        ex->pool3s1(ex->st, nb, x, ic, h, w, pm, tp);
        CONV_Y(E_POOL, tp);
        break;
    }
    }
#undef CONV_T
#undef CONV_Y
    LG_ASSERT(off == b->out_ch);
    *ph = oh;
    *pw = ow;
}

/* The trunk on B->act[0] = images (nb, 3, 299, 299): writes B->feat
 * (nb, 2048), the pool3 features. */
static void trunk(const lg_inception *net, const lg_inc_exec *ex, const bufs *B, int nb) {
    float *cur = B->act[0], *nxt = B->act[1], *tmp;
    int H = LG_INCEPTION_SIZE, Wd = LG_INCEPTION_SIZE;
    /* stem: contiguous outputs, ys = the output's image size */
    for (int i = 0; i < LG_INC_NSTEM; i++) {
        const lg_inc_conv *cv = &net->conv[i];
        int oh = lg_inc_out_dim(H, cv->kh, cv->sh, cv->ph), ow = lg_inc_out_dim(Wd, cv->kw, cv->sw, cv->pw);
        conv(ex, cv, nb, cur, H, Wd, nxt, (size_t)cv->oc * oh * ow);
        H = oh, Wd = ow;
        tmp = cur, cur = nxt, nxt = tmp;
        /* (32,149,149) (32,147,147) (64,147,147) | (80,73,73) (192,71,71) */
        if (i == 2 || i == 4) { /* 3x3 stride-2 max pools: (64,73,73), (192,35,35) */
            int ph = lg_inc_out_dim(H, 3, 2, 0), pw = lg_inc_out_dim(Wd, 3, 2, 0);
            ex->maxpool3s2(ex->st, nb, cur, cv->oc, H, Wd, nxt, (size_t)cv->oc * ph * pw);
            H = ph, Wd = pw;
            tmp = cur, cur = nxt, nxt = tmp;
        }
    }
    for (int i = 0; i < LG_INC_NBLOCK; i++) {
        block_forward(net, ex, B, nb, &net->blocks[i], cur, &H, &Wd, nxt);
        tmp = cur, cur = nxt, nxt = tmp;
    }
    LG_ASSERT(H == 8 && Wd == 8);
    ex->global_avg(ex->st, nb, cur, LG_INCEPTION_POOL3_DIM, H * Wd, B->feat);
}

/* img (C, H, W) -> dst (3, 299, 299): resize, grayscale repeated. */
static void prep_image(const float *img, int c, int h, int w, float *dst) {
    const int S = LG_INCEPTION_SIZE;
    size_t plane = (size_t)S * S;
    if (h == S && w == S)
        memcpy(dst, img, sizeof(float) * (size_t)c * plane);
    else
        lg_inception_resize(img, c, h, w, S, S, dst);
    if (c == 1) {
        memcpy(dst + plane, dst, sizeof(float) * plane);
        memcpy(dst + 2 * plane, dst, sizeof(float) * plane);
    }
}

/* feat (2048) of one image -> its pool3 row and/or logits row (with fc.bias). */
static void head(const lg_inception *net, const float *feat, float *pool3, float *logits) {
    if (pool3) memcpy(pool3, feat, sizeof(float) * LG_INCEPTION_POOL3_DIM);
    if (logits) {
        int k = net->num_classes;
        memcpy(logits, net->fc_b, sizeof(float) * (size_t)k);
        cblas_sgemv(CblasRowMajor, CblasNoTrans, k, LG_INCEPTION_POOL3_DIM, 1.0f, net->fc_w,
                    LG_INCEPTION_POOL3_DIM, feat, 1, 1.0f, logits, 1);
    }
}

/* ---- the host exec: the kernels of inception_ops.c, image by image ---- */

typedef struct host_st {
    float *col; /* (LG_INC_COL_CAP) im2col */
} host_st;

static void h_conv(void *st, const lg_inc_conv *cv, int nb, const float *x, int h, int w, float *y,
                   size_t ys) {
    size_t xs = (size_t)cv->ic * h * w;
    for (int i = 0; i < nb; i++)
        lg_inc_conv_forward(cv, x + i * xs, h, w, y + i * ys, ((host_st *)st)->col, LG_INC_COL_CAP);
}
static void h_maxpool3s2(void *st, int nb, const float *x, int c, int h, int w, float *y, size_t ys) {
    int oh = lg_inc_out_dim(h, 3, 2, 0), ow = lg_inc_out_dim(w, 3, 2, 0);
    for (int64_t i = 0; i < (int64_t)nb * c * oh * ow; i++) lg_inc_maxpool3s2_at(y, x, c, h, w, oh, ow, (int64_t)ys, i);
}
static void h_pool3s1(void *st, int nb, const float *x, int c, int h, int w, lg_inc_pool mode, float *y) {
    lg_inc_pool3s1(x, nb * c, h, w, mode, y); /* planes are independent */
}
static void h_global_avg(void *st, int nb, const float *x, int c, int hw, float *y) {
    for (int64_t i = 0; i < (int64_t)nb * c; i++) lg_inc_global_avg_at(y, x, hw, i);
}

/* Host scratch for nb images: the trunk buffers and the im2col column. */
typedef struct host_ws {
    bufs b;
    host_st st;
} host_ws;

static void host_ws_free(host_ws *w) {
    for (int i = 0; i < NBUF; i++) free(*buf_slot(&w->b, i));
    free(w->st.col);
    memset(w, 0, sizeof *w);
}

static int host_ws_alloc(host_ws *w, int nb) {
    memset(w, 0, sizeof *w);
    int ok = 1;
    for (int i = 0; i < NBUF; i++) ok &= (*buf_slot(&w->b, i) = malloc(buf_floats(i, nb) * sizeof(float))) != NULL;
    ok &= (w->st.col = malloc(LG_INC_COL_CAP * sizeof(float))) != NULL;
    if (!ok) host_ws_free(w);
    return ok;
}

static lg_inc_exec host_exec(host_ws *w) {
    /* prep: the host path resizes straight into act[0] (run_host) */
    lg_inc_exec ex = {&w->st, NULL, h_conv, h_maxpool3s2, h_pool3s1, h_global_avg};
    return ex;
}

/* Images [0, n) of x in passes of nb through the host exec of w. */
static void run_host(const lg_inception *net, host_ws *w, int nb, const float *x, int n, int c, int h, int wd,
                     float *pool3, float *logits) {
    lg_inc_exec ex = host_exec(w);
    size_t img = (size_t)c * h * wd, in = (size_t)3 * LG_INCEPTION_SIZE * LG_INCEPTION_SIZE;
    int k = net->num_classes;
    for (int b0 = 0; b0 < n; b0 += nb) {
        int m = n - b0 < nb ? n - b0 : nb;
        for (int i = 0; i < m; i++) prep_image(x + (size_t)(b0 + i) * img, c, h, wd, w->b.act[0] + i * in);
        trunk(net, &ex, &w->b, m);
        for (int i = 0; i < m; i++)
            head(net, w->b.feat + (size_t)i * LG_INCEPTION_POOL3_DIM,
                 pool3 ? pool3 + (size_t)(b0 + i) * LG_INCEPTION_POOL3_DIM : NULL,
                 logits ? logits + (size_t)(b0 + i) * k : NULL);
    }
}

lg_status lg_inc_run_host(const lg_inception *net, const float *x, int n, int c, int h, int w, int nb,
                          float *pool3, float *logits) {
    LG_ASSERT(net && x && n >= 1 && nb >= 1);
    host_ws ws;
    if (!host_ws_alloc(&ws, nb)) return lg_error_set(LG_ERR_NOMEM, "lg_inc_run_host: out of memory");
    run_host(net, &ws, nb, x, n, c, h, w, pool3, logits);
    host_ws_free(&ws);
    return LG_OK;
}

/* ---- the device driver: any backend's memory, any exec's kernels ----
 * lg_inception_run on a GPU is this with the CUDA backend and the kernels
 * of inception_cuda.cu; tests run it with the CPU backend and the same
 * kernel bodies on the host (lg_inc_run_device). */

const float *lg_inc_params(const lg_inception *net) { return net->params; }

/* Frees what bufs, the column and the raw images hold (NULL entries too). */
static void dev_bufs_free(const lg_backend *be, bufs *B, float **col, float **raw) {
    for (int i = 0; i < NBUF; i++) {
        be->free(*buf_slot(B, i));
        *buf_slot(B, i) = NULL;
    }
    be->free(*col);
    be->free(*raw);
    *col = *raw = NULL;
}

lg_status lg_inc_run_device(const lg_inception *net, const lg_backend *be, const lg_inc_exec *kern,
                            const float *dparams, lg_status (*status)(void), int nbmax, const float *x, int n,
                            int c, int h, int w, float *pool3, float *logits) {
    LG_ASSERT(net && be && kern && dparams && nbmax >= 1 && n >= 1);
    const size_t in = (size_t)3 * LG_INCEPTION_SIZE * LG_INCEPTION_SIZE, img = (size_t)c * h * w;
    int nb = n < nbmax ? n : nbmax, k = net->num_classes;
    bufs B;
    memset(&B, 0, sizeof B);
    lg_inc_dev dev = {net->params, dparams, NULL};
    /* images no larger than the network's input go up as they are and are
     * resized there (a 32x32 image is 12 KB, its 299x299 input 1 MB) */
    const int dev_prep = kern->prep && img <= in;
    float *raw = NULL; /* (nb, c, h, w) on the device, with dev_prep */
    /* images per pass: as many as the device's memory serves, halving */
    for (;;) {
        int ok = 1;
        for (int i = 0; i < NBUF; i++) ok &= (*buf_slot(&B, i) = be->alloc(buf_floats(i, nb) * sizeof(float))) != NULL;
        ok &= (dev.col = be->alloc((size_t)nb * LG_INC_COL_CAP * sizeof(float))) != NULL;
        if (dev_prep) ok &= (raw = be->alloc((size_t)nb * img * sizeof(float))) != NULL;
        if (ok) break;
        dev_bufs_free(be, &B, &dev.col, &raw);
        if (nb == 1)
            return lg_error_set(LG_ERR_NOMEM, "lg_inception_run: out of %s memory for one image's scratch "
                                              "(about 60 MB)", be->name);
        nb = (nb + 1) / 2;
    }
    float *stage = dev_prep ? NULL : malloc((size_t)nb * in * sizeof(float)); /* (nb, 3, 299, 299) host */
    float *feat = malloc((size_t)nb * LG_INCEPTION_POOL3_DIM * sizeof(float)); /* (nb, 2048) host */
    lg_status s = (stage || dev_prep) && feat ? LG_OK : lg_error_set(LG_ERR_NOMEM, "lg_inception_run: out of memory");
    lg_inc_exec ex = *kern;
    ex.st = &dev;
    for (int b0 = 0; s == LG_OK && b0 < n; b0 += nb) {
        int m = n - b0 < nb ? n - b0 : nb;
        if (dev_prep) {
            be->upload(raw, x + (size_t)b0 * img, (size_t)m * img);
            ex.prep(ex.st, m, raw, c, h, w, B.act[0]);
        } else {
#pragma omp parallel for schedule(static) if (m > 1)
            for (int i = 0; i < m; i++) prep_image(x + (size_t)(b0 + i) * img, c, h, w, stage + i * in);
            be->upload(B.act[0], stage, (size_t)m * in);
        }
        trunk(net, &ex, &B, m);
        be->download(feat, B.feat, (size_t)m * LG_INCEPTION_POOL3_DIM); /* waits for the pass */
        if (status && (s = status()) != LG_OK) break;
        for (int i = 0; i < m; i++)
            head(net, feat + (size_t)i * LG_INCEPTION_POOL3_DIM,
                 pool3 ? pool3 + (size_t)(b0 + i) * LG_INCEPTION_POOL3_DIM : NULL,
                 logits ? logits + (size_t)(b0 + i) * k : NULL);
    }
    free(stage);
    free(feat);
    dev_bufs_free(be, &B, &dev.col, &raw);
    return s;
}

/* Relative L2 distance of a from the reference r over n values. */
static double rel_l2(const float *a, const float *r, size_t n) {
    double num = 0, den = 0;
    for (size_t i = 0; i < n; i++) {
        double d = (double)a[i] - r[i];
        num += d * d;
        den += (double)r[i] * r[i];
    }
    return sqrt(num / (den > 0 ? den : 1));
}

lg_status lg_inc_self_check(const lg_inception *net, const lg_backend *be, const lg_inc_exec *kern,
                            const float *dparams, lg_status (*status)(void)) {
    enum { N = 3, C = 3, H = 23, W = 37 };
    const int k = net->num_classes;
    size_t np = (size_t)N * C * H * W, fp = (size_t)N * LG_INCEPTION_POOL3_DIM, lp = (size_t)N * k;
    float *x = malloc(np * sizeof(float)), *out = malloc((fp + lp) * 2 * sizeof(float));
    if (!x || !out) {
        free(x);
        free(out);
        return lg_error_set(LG_ERR_NOMEM, "Inception-v3 on %s: out of memory for the self-check", be->name);
    }
    for (size_t i = 0; i < np; i++) x[i] = sinf(0.37f * (float)i) * cosf(0.011f * (float)(i % 997));
    float *hp = out, *hl = hp + fp, *dp = hl + lp, *dl = dp + fp;
    lg_status s = lg_inc_run_host(net, x, N, C, H, W, 1, hp, hl);
    /* passes of 2: the probe also crosses a pass boundary */
    if (s == LG_OK) s = lg_inc_run_device(net, be, kern, dparams, status, 2, x, N, C, H, W, dp, dl);
    if (s == LG_OK) {
        double ep = rel_l2(dp, hp, fp), el = rel_l2(dl, hl, lp);
        if (!(ep <= 1e-4 && el <= 1e-4))
            s = lg_error_set(LG_ERR_BACKEND,
                             "Inception-v3 on %s disagrees with the CPU on probe images (relative L2 error %.3g in "
                             "pool3, %.3g in the logits; limit 1e-4)",
                             be->name, ep, el);
    }
    free(x);
    free(out);
    return s;
}

/* ---- the CUDA exec (src/metrics/inception_cuda.cu) ---- */

#ifdef LG_HAVE_CUDA
static const lg_inc_exec CUDA_KERNELS = {NULL,          lg_inc_cuda_prep,    lg_inc_cuda_conv,
                                         lg_inc_cuda_maxpool3s2, lg_inc_cuda_pool3s1, lg_inc_cuda_global_avg};

/* Images per pass on the GPU (about 40 MB of device scratch each). */
#define CUDA_NB 32

static lg_status run_cuda(const lg_inception *net, const float *x, int n, int c, int h, int w, float *pool3,
                          float *logits) {
    const lg_backend *be = lg_backend_cuda();
    LG_ASSERT(be); /* it served the upload of dparams */
    return lg_inc_run_device(net, be, &CUDA_KERNELS, net->dparams, lg_cuda_last_status, CUDA_NB, x, n, c, h, w,
                             pool3, logits);
}
#endif

lg_status lg_inception_use_cuda(lg_inception *net) {
    if (!net) return lg_error_set(LG_ERR_INVALID_ARG, "lg_inception_use_cuda: net is NULL");
#ifndef LG_HAVE_CUDA
    return lg_error_set(LG_ERR_UNSUPPORTED,
                        "Inception-v3 on cuda: lipgan was built without CUDA; the network stays on the cpu");
#else
    if (net->dparams) return LG_OK;
    const lg_backend *be = lg_backend_cuda();
    if (!be) {
        char msg[512];
        snprintf(msg, sizeof msg, "%s", lg_error_msg());
        return lg_error_set(LG_ERR_UNSUPPORTED, "Inception-v3 on cuda: %s; the network stays on the cpu", msg);
    }
    float *d = be->alloc(net->nparams * sizeof(float));
    if (!d)
        return lg_error_set(LG_ERR_NOMEM, "Inception-v3 on cuda:%d: out of device memory for %zu MB of weights",
                            lg_cuda_device(), net->nparams * sizeof(float) >> 20);
    be->upload(d, net->params, net->nparams);
    be->sync();
    lg_status s = lg_cuda_last_status();
    if (s == LG_OK) s = lg_inc_self_check(net, be, &CUDA_KERNELS, d, lg_cuda_last_status);
    if (s == LG_OK) net->dparams = d;
    if (s != LG_OK) {
        char msg[768];
        snprintf(msg, sizeof msg, "%s", lg_error_msg());
        be->free(d);
        return lg_error_set(s, "%s; the network stays on the cpu", msg);
    }
    return LG_OK;
#endif
}

int lg_inception_on_cuda(const lg_inception *net) { return net && net->dparams != NULL; }

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
#ifdef LG_HAVE_CUDA
    if (net->dparams) return run_cuda(net, x, n, c, h, w, pool3, logits);
#endif
    int nth = omp_get_max_threads();
    if (nth > n) nth = n;
    if (nth < 1) nth = 1;
    host_ws *W = calloc((size_t)nth, sizeof *W);
    if (!W) return lg_error_set(LG_ERR_NOMEM, "lg_inception_run: out of memory");
    for (int t = 0; t < nth; t++) {
        if (!host_ws_alloc(&W[t], 1)) {
            for (int u = 0; u < t; u++) host_ws_free(&W[u]);
            free(W);
            return lg_error_set(LG_ERR_NOMEM,
                                "lg_inception_run: out of memory for %d x 40 MB of scratch", nth);
        }
    }
    int k = net->num_classes;
    if (nth == 1) {
        /* one image at a time: OpenBLAS may use its own threads */
        run_host(net, &W[0], 1, x, n, c, h, w, pool3, logits);
    } else {
        /* images in parallel; OpenBLAS (openmp build) runs single-threaded
         * inside a parallel region, so the two pools do not oversubscribe */
#pragma omp parallel for num_threads(nth) schedule(dynamic, 1)
        for (int i = 0; i < n; i++)
            run_host(net, &W[omp_get_thread_num()], 1, x + (size_t)i * img, 1, c, h, w,
                     pool3 ? pool3 + (size_t)i * LG_INCEPTION_POOL3_DIM : NULL,
                     logits ? logits + (size_t)i * k : NULL);
    }
    for (int t = 0; t < nth; t++) host_ws_free(&W[t]);
    free(W);
    return LG_OK;
}
