/* FID: feature statistics (streaming, float64), their safetensors files,
 * and the Frechet distance with an eigendecomposition-based matrix square
 * root. See metrics.h for the definitions. */
#include <cblas.h>
#include <lapacke.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lipgan/metrics.h"
#include "lipgan/safetensors.h"

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "lg_fid_stats_save/load write host doubles as little-endian F64; port them for big-endian hosts"
#endif

/* ---------------------------------------------------------------------- */
/* statistics */

lg_status lg_fid_accum_init(lg_fid_accum *a, int d) {
    memset(a, 0, sizeof *a);
    if (d < 1 || d > 65536)
        return lg_error_set(LG_ERR_INVALID_ARG, "FID statistics: feature dimension %d out of range 1..65536", d);
    a->dim = d;
    a->shift = calloc((size_t)d, sizeof(double));
    a->sum = calloc((size_t)d, sizeof(double));
    a->sxx = calloc((size_t)d * d, sizeof(double));
    a->buf = malloc(sizeof(double) * LG_FID_CHUNK * (size_t)d);
    if (!a->shift || !a->sum || !a->sxx || !a->buf) {
        lg_fid_accum_free(a);
        return lg_error_set(LG_ERR_NOMEM, "FID statistics: cannot allocate %d x %d doubles", d, d);
    }
    return LG_OK;
}

void lg_fid_accum_free(lg_fid_accum *a) {
    free(a->shift);
    free(a->sum);
    free(a->sxx);
    free(a->buf);
    memset(a, 0, sizeof *a);
}

lg_status lg_fid_accum_add(lg_fid_accum *a, const float *feat, int64_t n) {
    if (n < 0 || (n > 0 && !feat))
        return lg_error_set(LG_ERR_INVALID_ARG, "FID statistics: bad batch (n = %lld)", (long long)n);
    const int d = a->dim;
    for (int64_t i = 0; i < n * d; i++)
        if (!isfinite(feat[i]))
            return lg_error_set(LG_ERR_NONFINITE,
                                "FID statistics: feature %lld of row %lld is %g; check the feature network",
                                (long long)(i % d), (long long)(i / d), feat[i]);
    if (n > 0 && a->n == 0)
        for (int j = 0; j < d; j++) a->shift[j] = feat[j];
    for (int64_t r0 = 0; r0 < n; r0 += LG_FID_CHUNK) {
        int rows = (int)(n - r0 < LG_FID_CHUNK ? n - r0 : LG_FID_CHUNK);
        for (int r = 0; r < rows; r++) {
            const float *x = feat + (size_t)(r0 + r) * d;
            double *b = a->buf + (size_t)r * d;
            for (int j = 0; j < d; j++) {
                b[j] = (double)x[j] - a->shift[j];
                a->sum[j] += b[j];
            }
        }
        /* sxx += B^T B (upper triangle) */
        cblas_dsyrk(CblasRowMajor, CblasUpper, CblasTrans, d, rows, 1.0, a->buf, d, 1.0, a->sxx, d);
    }
    a->n += n;
    return LG_OK;
}

lg_status lg_fid_accum_finish(const lg_fid_accum *a, lg_fid_stats *out) {
    memset(out, 0, sizeof *out);
    if (a->n < 2)
        return lg_error_set(LG_ERR_INVALID_ARG,
                            "FID statistics: %lld sample(s); a covariance needs at least 2", (long long)a->n);
    const int d = a->dim;
    out->dim = d;
    out->n = a->n;
    out->mu = malloc(sizeof(double) * d);
    out->sigma = malloc(sizeof(double) * (size_t)d * d);
    if (!out->mu || !out->sigma) {
        lg_fid_stats_free(out);
        return lg_error_set(LG_ERR_NOMEM, "FID statistics: cannot allocate %d x %d doubles", d, d);
    }
    double n = (double)a->n;
    for (int j = 0; j < d; j++) out->mu[j] = a->shift[j] + a->sum[j] / n;
    /* cov = (Sxx - sum sum^T / n) / (n - 1) on the shifted data */
    for (int i = 0; i < d; i++)
        for (int j = i; j < d; j++) {
            double v = (a->sxx[(size_t)i * d + j] - a->sum[i] * a->sum[j] / n) / (n - 1);
            out->sigma[(size_t)i * d + j] = v;
            out->sigma[(size_t)j * d + i] = v;
        }
    return LG_OK;
}

lg_status lg_fid_stats_compute(lg_fid_stats *out, const float *feat, int64_t n, int d) {
    memset(out, 0, sizeof *out);
    if (n < 2)
        return lg_error_set(LG_ERR_INVALID_ARG,
                            "FID statistics: %lld sample(s); a covariance needs at least 2", (long long)n);
    lg_fid_accum a;
    LG_TRY(lg_fid_accum_init(&a, d));
    lg_status s = lg_fid_accum_add(&a, feat, n);
    if (s == LG_OK) s = lg_fid_accum_finish(&a, out);
    lg_fid_accum_free(&a);
    return s;
}

void lg_fid_stats_free(lg_fid_stats *s) {
    free(s->mu);
    free(s->sigma);
    memset(s, 0, sizeof *s);
}

/* ---------------------------------------------------------------------- */
/* files */

lg_status lg_fid_stats_save(const lg_fid_stats *s, const char *path, const char *source) {
    if (!s || !s->mu || !s->sigma || s->dim < 1 || !path)
        return lg_error_set(LG_ERR_INVALID_ARG, "FID statistics save: empty statistics or path");
    const int64_t d = s->dim;
    char nbuf[32], dbuf[32];
    snprintf(nbuf, sizeof nbuf, "%lld", (long long)s->n);
    snprintf(dbuf, sizeof dbuf, "%lld", (long long)d);
    /* the shared writer: escaping, F64 tensors, the data's CRC-32, an atomic write */
    lg_st_writer *w;
    LG_TRY(lg_st_writer_create(&w));
    lg_status st = lg_st_writer_add_meta(w, "format", LG_FID_STATS_FORMAT);
    if (st == LG_OK) st = lg_st_writer_add_meta(w, "n", nbuf);
    if (st == LG_OK) st = lg_st_writer_add_meta(w, "dim", dbuf);
    if (st == LG_OK && source) st = lg_st_writer_add_meta(w, "source", source);
    if (st == LG_OK) st = lg_st_writer_add_f64(w, "mu", 1, (int64_t[]){d}, s->mu);
    if (st == LG_OK) st = lg_st_writer_add_f64(w, "sigma", 2, (int64_t[]){d, d}, s->sigma);
    if (st == LG_OK) st = lg_st_writer_write(w, path, 1);
    lg_st_writer_free(w);
    return st;
}

/* Reads tensor `name` (F64 or anything lg_st_get_f32 converts) into out
 * (numel doubles). */
static lg_status read_f64(const lg_st_file *f, const char *path, const char *name, int ndim,
                          const int64_t *shape, double *out, size_t numel) {
    const lg_st_tensor *t = lg_st_find(f, name);
    if (!t)
        return lg_error_set(LG_ERR_NOT_FOUND, "file %s: no tensor \"%s\"; is this an FID statistics file?",
                            path, name);
    if (t->dtype == LG_ST_F64) {
        if (t->ndim != ndim || memcmp(t->shape, shape, sizeof(int64_t) * ndim) != 0)
            return lg_error_set(LG_ERR_SHAPE, "file %s: tensor \"%s\" has the wrong shape", path, name);
        memcpy(out, t->data, numel * sizeof(double));
    } else {
        float *tmp = malloc(numel * sizeof(float));
        if (!tmp) return lg_error_set(LG_ERR_NOMEM, "file %s: cannot allocate", path);
        lg_status s = lg_st_get_f32(f, name, ndim, shape, tmp);
        for (size_t i = 0; s == LG_OK && i < numel; i++) out[i] = tmp[i];
        free(tmp);
        LG_TRY(s);
    }
    /* a bad file, not a diverged computation: FORMAT (exit 3 in the CLI) */
    for (size_t i = 0; i < numel; i++)
        if (!isfinite(out[i]))
            return lg_error_set(LG_ERR_FORMAT,
                                "file %s: tensor \"%s\" holds a non-finite value (element %zu is %g); the file is "
                                "damaged: remake it with lipgan fid-stats",
                                path, name, i, out[i]);
    return LG_OK;
}

/* pytorch-fid's --save-stats writes numpy .npz (a zip archive of mu.npy and
 * sigma.npy); this one line of numpy (no other package) rewrites it as F64
 * safetensors. README.md "FID reference statistics" shows it too. */
#define NPZ_CONVERT                                                                                            \
    "python3 -c \"import sys,json,numpy as n;z=n.load(sys.argv[1]);a=[z[k].astype('<f8') for k in "             \
    "('mu','sigma')];h=json.dumps({'mu':{'dtype':'F64','shape':a[0].shape,'data_offsets':[0,a[0].nbytes]},"   \
    "'sigma':{'dtype':'F64','shape':a[1].shape,'data_offsets':[a[0].nbytes,a[0].nbytes+a[1].nbytes]}})"      \
    ".encode();h+=b' '*(-len(h)%%8);open(sys.argv[2],'wb').write(len(h).to_bytes(8,'little')+h+a[0]"          \
    ".tobytes()+a[1].tobytes())\" IN.npz OUT.safetensors"

/* LG_ERR_FORMAT with a conversion hint if path starts like a zip archive. */
static lg_status reject_zip(const char *path) {
    FILE *fp = fopen(path, "rb");
    if (!fp) return LG_OK; /* lg_st_open reports it */
    unsigned char m[4] = {0, 0, 0, 0};
    size_t got = fread(m, 1, 4, fp);
    fclose(fp);
    if (got == 4 && m[0] == 'P' && m[1] == 'K' && m[2] == 3 && m[3] == 4)
        return lg_error_set(LG_ERR_FORMAT,
                            "file %s: a zip archive (.npz, e.g. pytorch-fid --save-stats), not lipgan's safetensors "
                            "statistics; convert it: " NPZ_CONVERT,
                            path);
    return LG_OK;
}

lg_status lg_fid_stats_load(lg_fid_stats *out, const char *path) {
    memset(out, 0, sizeof *out);
    LG_TRY(reject_zip(path));
    lg_st_file *f;
    LG_TRY(lg_st_open(&f, path));
    lg_status s = LG_OK;
    const lg_st_tensor *mu = lg_st_find(f, "mu");
    if (!mu || mu->ndim != 1 || mu->shape[0] < 1 || mu->shape[0] > 65536) {
        s = lg_error_set(mu ? LG_ERR_SHAPE : LG_ERR_NOT_FOUND,
                         "file %s: needs a tensor \"mu\" of shape (D), 1 <= D <= 65536", path);
        goto done;
    }
    int64_t d = mu->shape[0];
    const char *nm = lg_st_meta(f, "n");
    int64_t n = 0;
    if (nm) {
        char *end;
        long long v = strtoll(nm, &end, 10);
        if (end == nm || *end || v < 0) {
            s = lg_error_set(LG_ERR_FORMAT, "file %s: metadata n = \"%s\" is not a sample count", path, nm);
            goto done;
        }
        n = v;
    }
    out->dim = (int)d;
    out->n = n;
    const char *src = lg_st_meta(f, "source");
    if (src) snprintf(out->source, sizeof out->source, "%s", src);
    out->mu = malloc(sizeof(double) * d);
    out->sigma = malloc(sizeof(double) * d * d);
    if (!out->mu || !out->sigma) {
        s = lg_error_set(LG_ERR_NOMEM, "file %s: cannot allocate %lld x %lld doubles", path, (long long)d,
                         (long long)d);
        goto done;
    }
    s = read_f64(f, path, "mu", 1, (int64_t[]){d}, out->mu, (size_t)d);
    if (s == LG_OK) s = read_f64(f, path, "sigma", 2, (int64_t[]){d, d}, out->sigma, (size_t)(d * d));
done:
    if (s != LG_OK) lg_fid_stats_free(out);
    lg_st_close(f);
    return s;
}

/* ---------------------------------------------------------------------- */
/* the distance */

/* Tr(sqrt(S1' S2')) with S' = S + eps I. Sets *neg to the most negative
 * relative eigenvalue met (of S1' and of M). Returns LG_ERR_BACKEND if
 * LAPACK fails, LG_ERR_INVALID_ARG if an input is clearly not PSD. */
static lg_status trace_sqrt(const double *s1, const double *s2, int d, double eps, double *tr,
                            double *neg, double *work /* (3, D, D) */, double *w /* (D) */) {
    double *V = work, *R = work + (size_t)d * d, *T = work + 2 * (size_t)d * d;
    /* V = sym(S1) + eps I, then its eigendecomposition in place */
    for (int i = 0; i < d; i++)
        for (int j = 0; j < d; j++)
            V[(size_t)i * d + j] = 0.5 * (s1[(size_t)i * d + j] + s1[(size_t)j * d + i]) + (i == j ? eps : 0);
    if (LAPACKE_dsyevd(LAPACK_ROW_MAJOR, 'V', 'U', d, V, d, w) != 0)
        return lg_error_set(LG_ERR_BACKEND, "FID: LAPACK dsyevd failed on sigma1");
    double wmax = fabs(w[d - 1]) > fabs(w[0]) ? fabs(w[d - 1]) : fabs(w[0]);
    if (w[0] < 0 && wmax > 0) *neg = fmin(*neg, w[0] / wmax);
    if (w[0] < -1e-3 * wmax)
        return lg_error_set(LG_ERR_INVALID_ARG,
                            "FID: sigma1 has eigenvalue %g (largest %g); it is not a covariance matrix",
                            w[0], wmax);
    /* T = V diag(sqrt(max(w, 0))), R = T V^T = sqrt(S1) */
    for (int j = 0; j < d; j++) w[j] = w[j] > 0 ? sqrt(w[j]) : 0;
    for (int i = 0; i < d; i++)
        for (int j = 0; j < d; j++) T[(size_t)i * d + j] = V[(size_t)i * d + j] * w[j];
    cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, d, d, d, 1.0, T, d, V, d, 0.0, R, d);
    /* V = S2 + eps I; T = R V; V = T R = M */
    for (int i = 0; i < d; i++)
        for (int j = 0; j < d; j++) V[(size_t)i * d + j] = s2[(size_t)i * d + j] + (i == j ? eps : 0);
    cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, d, d, d, 1.0, R, d, V, d, 0.0, T, d);
    cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, d, d, d, 1.0, T, d, R, d, 0.0, V, d);
    for (int i = 0; i < d; i++)
        for (int j = i + 1; j < d; j++) {
            double m = 0.5 * (V[(size_t)i * d + j] + V[(size_t)j * d + i]);
            V[(size_t)i * d + j] = V[(size_t)j * d + i] = m;
        }
    if (LAPACKE_dsyevd(LAPACK_ROW_MAJOR, 'N', 'U', d, V, d, w) != 0)
        return lg_error_set(LG_ERR_BACKEND, "FID: LAPACK dsyevd failed on sqrt(S1) S2 sqrt(S1)");
    wmax = fabs(w[d - 1]) > fabs(w[0]) ? fabs(w[d - 1]) : fabs(w[0]);
    if (w[0] < 0 && wmax > 0) *neg = fmin(*neg, w[0] / wmax);
    if (w[0] < -1e-3 * wmax)
        return lg_error_set(LG_ERR_INVALID_ARG,
                            "FID: sqrt(S1) S2 sqrt(S1) has eigenvalue %g (largest %g); sigma2 is not a "
                            "covariance matrix",
                            w[0], wmax);
    double t = 0;
    for (int j = 0; j < d; j++) t += w[j] > 0 ? sqrt(w[j]) : 0;
    *tr = t;
    return isfinite(t) ? LG_OK : lg_error_set(LG_ERR_NONFINITE, "FID: Tr(sqrt(S1 S2)) is not finite");
}

lg_status lg_fid_compute(const lg_fid_stats *a, const lg_fid_stats *b, lg_fid_result *out) {
    memset(out, 0, sizeof *out);
    if (!a || !b || !a->mu || !b->mu || !a->sigma || !b->sigma || a->dim < 1)
        return lg_error_set(LG_ERR_INVALID_ARG, "FID: empty statistics");
    if (a->dim != b->dim)
        return lg_error_set(LG_ERR_SHAPE,
                            "FID: statistics of dimension %d and %d; both must come from the same features",
                            a->dim, b->dim);
    const int d = a->dim;
    const size_t dd = (size_t)d * d;
    for (size_t i = 0; i < dd; i++)
        if (!isfinite(a->sigma[i]) || !isfinite(b->sigma[i]) || (i < (size_t)d && (!isfinite(a->mu[i]) || !isfinite(b->mu[i]))))
            return lg_error_set(LG_ERR_NONFINITE, "FID: statistics hold a non-finite value");
    out->n1 = a->n;
    out->n2 = b->n;
    out->dim = d;
    double mean = 0, tr1 = 0, tr2 = 0;
    for (int i = 0; i < d; i++) {
        double df = a->mu[i] - b->mu[i];
        mean += df * df;
        tr1 += a->sigma[(size_t)i * d + i];
        tr2 += b->sigma[(size_t)i * d + i];
    }
    double *work = malloc(sizeof(double) * (3 * dd + d));
    if (!work) return lg_error_set(LG_ERR_NOMEM, "FID: cannot allocate 3 x %d x %d doubles", d, d);
    double tr = 0, neg = 0;
    lg_status s = trace_sqrt(a->sigma, b->sigma, d, 0.0, &tr, &neg, work, work + 3 * dd);
    if (s == LG_ERR_BACKEND || s == LG_ERR_NONFINITE) {
        /* pytorch-fid's fallback: offset both covariances (for the square
         * root only; the traces below stay those of the inputs) */
        out->eps = 1e-6;
        neg = 0;
        lg_error_clear();
        s = trace_sqrt(a->sigma, b->sigma, d, out->eps, &tr, &neg, work, work + 3 * dd);
    }
    free(work);
    LG_TRY(s);
    out->mean_term = mean;
    out->tr_covmean = tr;
    out->trace_term = tr1 + tr2 - 2 * tr;
    out->neg_eig = neg;
    double fid = mean + out->trace_term;
    out->fid = fid > 0 ? fid : 0; /* rounding can give -1e-12 for identical sets */
    return LG_OK;
}

lg_status lg_fid_from_features(const float *f1, int64_t n1, const float *f2, int64_t n2, int d,
                               lg_fid_result *out) {
    lg_fid_stats a, b;
    memset(out, 0, sizeof *out);
    LG_TRY(lg_fid_stats_compute(&a, f1, n1, d));
    lg_status s = lg_fid_stats_compute(&b, f2, n2, d);
    if (s == LG_OK) s = lg_fid_compute(&a, &b, out);
    lg_fid_stats_free(&a);
    lg_fid_stats_free(&b);
    return s;
}

int lg_fid_stats_source_shape(const char *source, int *c, int *h, int *w) {
    /* "...; data PATH (FORMAT, SPLIT, CxHxW), first N of M images": the last
     * "), first " and the ", " before it (PATH may hold anything) */
    const char *d = strstr(source, "; data ");
    if (!d) return 0;
    const char *end = NULL;
    for (const char *p = d; (p = strstr(p, "), first ")); p++) end = p;
    if (!end) return 0;
    const char *sh = NULL;
    for (const char *p = d; p < end; p++)
        if (p[0] == ',' && p[1] == ' ') sh = p + 2;
    char tail[8];
    return sh && sscanf(sh, "%dx%dx%d%7s", c, h, w, tail) == 4 && tail[0] == ')';
}
