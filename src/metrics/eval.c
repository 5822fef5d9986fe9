/* Evaluation of generated samples (lipgan/eval.h). */
#include <cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lipgan/eval.h"

static const struct {
    unsigned flag;
    const char *name;
} NAMES[] = {
    {LG_EVAL_IS, "is"},         {LG_EVAL_FID, "fid"},         {LG_EVAL_KID, "kid"},
    {LG_EVAL_CFID, "cfid"},     {LG_EVAL_CLASSES, "classes"}, {LG_EVAL_TOY, "toy"},
};
#define NNAMES (sizeof NAMES / sizeof NAMES[0])

const char *lg_eval_metric_name(unsigned flag) {
    for (size_t i = 0; i < NNAMES; i++)
        if (NAMES[i].flag == flag) return NAMES[i].name;
    return "?";
}

lg_status lg_eval_parse_metrics(const char *list, unsigned *out) {
    *out = 0;
    const char *p = list ? list : "";
    for (;;) {
        size_t len = strcspn(p, ",");
        unsigned f = 0;
        for (size_t i = 0; i < NNAMES; i++)
            if (strlen(NAMES[i].name) == len && strncmp(NAMES[i].name, p, len) == 0) f = NAMES[i].flag;
        if (!f)
            return lg_error_set(LG_ERR_INVALID_ARG, "%s%.*s%s; known: is, fid, kid, cfid, classes, toy (give a "
                                "comma-separated list)",
                                len ? "unknown metric '" : "an empty metric name", (int)len, p, len ? "'" : "");
        *out |= f;
        if (!p[len]) break;
        p += len + 1;
    }
    return LG_OK;
}

void lg_eval_inputs_default(lg_eval_inputs *in) { memset(in, 0, sizeof *in); }

unsigned lg_eval_ref_metric(int dim) {
    return dim == LG_INCEPTION_POOL3_DIM ? LG_EVAL_FID : dim == LG_CLS_FEAT_DIM ? LG_EVAL_CFID : 0;
}

/* ---- features ---- */

#define CHUNK 256

static lg_status one_net(const lg_inception *inc, lg_classifier *cls, int *dim, int *k) {
    if ((inc != NULL) == (cls != NULL))
        return lg_error_set(LG_ERR_INVALID_ARG, "eval features: give exactly one of the Inception net and the classifier");
    *dim = inc ? LG_INCEPTION_POOL3_DIM : LG_CLS_FEAT_DIM;
    *k = inc ? lg_inception_num_classes(inc) : LG_CLS_CLASSES;
    return LG_OK;
}

lg_status lg_eval_features(const lg_inception *inc, lg_classifier *cls, const float *x, int64_t n, int c, int h,
                           int w, float *feat, float *logits, FILE *progress) {
    int dim = 0, k = 0;
    LG_TRY(one_net(inc, cls, &dim, &k));
    const int64_t ss = (int64_t)c * h * w;
    for (int64_t i = 0; i < n; i += CHUNK) {
        int64_t b = n - i < CHUNK ? n - i : CHUNK;
        const float *xb = x + i * ss;
        float *fb = feat ? feat + i * dim : NULL, *lb = logits ? logits + i * k : NULL;
        if (inc) LG_TRY(lg_inception_run(inc, xb, (int)b, c, h, w, fb, lb));
        else LG_TRY(lg_classifier_run(cls, xb, b, c, h, w, fb, lb));
        if (progress && ((i + b) % (10 * CHUNK) == 0 || i + b == n))
            fprintf(progress, "  %s features: %lld/%lld images\n", inc ? "inception" : "classifier",
                    (long long)(i + b), (long long)n);
    }
    return LG_OK;
}

void lg_eval_quantize8(const float *x, size_t n, float *y) {
    for (size_t i = 0; i < n; i++) {
        float v = x[i];
        if (!isfinite(v)) {
            y[i] = v; /* left for the networks' NaN/Inf check */
            continue;
        }
        float q = rintf((v + 1.0f) * 127.5f); /* half to even, as numpy/torch round */
        q = q < 0.0f ? 0.0f : q > 255.0f ? 255.0f : q;
        y[i] = q / 127.5f - 1.0f; /* the loaders' u8 -> float (data_internal.h) */
    }
}

/* Features of n generated samples, CHUNK at a time, each chunk quantized to
 * 8 bits first (lg_eval_quantize8) into scratch. Inception: pool3 into feat
 * (N, 2048) and the IS logits (no fc bias) into logits (N, K); the
 * classifier: features (N, 128) and logits (N, 10). Either may be NULL. */
static lg_status sample_features(const lg_inception *inc, lg_classifier *cls, const float *x, int64_t n, int c,
                                 int h, int w, float *feat, float *logits, FILE *progress) {
    int dim = 0, k = 0;
    LG_TRY(one_net(inc, cls, &dim, &k));
    const int64_t ss = (int64_t)c * h * w;
    float *q = malloc((size_t)CHUNK * (size_t)ss * sizeof(float));                     /* (CHUNK, C, H, W) */
    float *p3 = inc && !feat ? malloc((size_t)CHUNK * LG_INCEPTION_POOL3_DIM * sizeof(float)) : NULL; /* (CHUNK, 2048) */
    lg_status s = LG_OK;
    if (!q || (inc && !feat && !p3)) s = lg_error_set(LG_ERR_NOMEM, "eval: out of memory");
    for (int64_t i = 0; s == LG_OK && i < n; i += CHUNK) {
        int64_t b = n - i < CHUNK ? n - i : CHUNK;
        lg_eval_quantize8(x + i * ss, (size_t)(b * ss), q);
        float *fb = feat ? feat + i * dim : p3, *lb = logits ? logits + i * k : NULL;
        if (inc) {
            s = lg_inception_run(inc, q, (int)b, c, h, w, fb, NULL);
            if (s == LG_OK && lb) s = lg_inception_is_logits(inc, fb, b, lb);
        } else {
            s = lg_classifier_run(cls, q, b, c, h, w, fb, lb);
        }
        if (s == LG_OK && progress && ((i + b) % (10 * CHUNK) == 0 || i + b == n))
            fprintf(progress, "  %s features: %lld/%lld images\n", inc ? "inception" : "classifier",
                    (long long)(i + b), (long long)n);
    }
    free(q);
    free(p3);
    return s;
}

lg_status lg_eval_stats(const lg_inception *inc, lg_classifier *cls, const float *x, int64_t n, int c, int h,
                        int w, FILE *progress, lg_fid_stats *out) {
    memset(out, 0, sizeof *out);
    int dim = 0, k = 0;
    LG_TRY(one_net(inc, cls, &dim, &k));
    if (n < 2) return lg_error_set(LG_ERR_INVALID_ARG, "FID statistics need at least 2 images, got %lld", (long long)n);
    float *f = malloc((size_t)CHUNK * (size_t)dim * sizeof(float)); /* (CHUNK, D) */
    if (!f) return lg_error_set(LG_ERR_NOMEM, "eval: out of memory");
    lg_fid_accum a;
    lg_status s = lg_fid_accum_init(&a, dim);
    if (s != LG_OK) {
        free(f);
        return s;
    }
    const int64_t ss = (int64_t)c * h * w;
    for (int64_t i = 0; s == LG_OK && i < n; i += CHUNK) {
        int64_t b = n - i < CHUNK ? n - i : CHUNK;
        s = lg_eval_features(inc, cls, x + i * ss, b, c, h, w, f, NULL, NULL);
        if (s == LG_OK) s = lg_fid_accum_add(&a, f, b);
        if (s == LG_OK && progress && ((i + b) % (10 * CHUNK) == 0 || i + b == n))
            fprintf(progress, "  %s features: %lld/%lld images\n", inc ? "inception" : "classifier",
                    (long long)(i + b), (long long)n);
    }
    if (s == LG_OK) s = lg_fid_accum_finish(&a, out);
    lg_fid_accum_free(&a);
    free(f);
    return s;
}

/* ---- the metrics ---- */

static lg_status need(const void *p, const char *metric, const char *what) {
    if (!p) return lg_error_set(LG_ERR_INVALID_ARG, "metric %s needs %s", metric, what);
    return LG_OK;
}

/* FID of sample statistics st against a reference; a reference that is not
 * a covariance is bad input (FORMAT), named as the reference. */
static lg_status fid_vs_ref(const lg_fid_stats *st, const lg_fid_stats *ref, const char *metric,
                            lg_fid_result *out) {
    lg_status s = lg_fid_compute(st, ref, out);
    if (s == LG_ERR_INVALID_ARG) {
        char msg[768];
        snprintf(msg, sizeof msg, "%s", lg_error_msg());
        return lg_error_set(LG_ERR_FORMAT, "%s reference statistics: %s", metric, msg);
    }
    return s;
}

static lg_status eval_inception(const lg_eval_inputs *in, const float *x, int64_t n, int c, int h, int w,
                                lg_eval_result *r) {
    unsigned m = in->metrics;
    const lg_inception *inc = in->inception;
    int k = lg_inception_num_classes(inc);
    snprintf(r->inception_desc, sizeof r->inception_desc, "%s", lg_inception_describe(inc));
    int want_feat = (m & (LG_EVAL_FID | LG_EVAL_KID)) != 0, want_logits = (m & LG_EVAL_IS) != 0;
    float *feat = want_feat ? malloc((size_t)n * LG_INCEPTION_POOL3_DIM * sizeof(float)) : NULL; /* (N,2048) */
    float *logits = want_logits ? malloc((size_t)n * (size_t)k * sizeof(float)) : NULL;          /* (N,K) */
    lg_status s = LG_OK;
    if ((want_feat && !feat) || (want_logits && !logits)) s = lg_error_set(LG_ERR_NOMEM, "eval: out of memory");
    if (s == LG_OK) s = sample_features(inc, NULL, x, n, c, h, w, feat, logits, in->progress);
    if (s == LG_OK && (m & LG_EVAL_IS)) {
        lg_softmax_rows(logits, n, k, logits);
        s = lg_inception_score(logits, n, k, in->is_splits, in->is_shuffle ? (in->seed | 1u) : 0, &r->is);
        if (s == LG_OK) r->done |= LG_EVAL_IS;
    }
    if (s == LG_OK && (m & LG_EVAL_FID)) {
        lg_fid_stats st;
        s = lg_fid_stats_compute(&st, feat, n, LG_INCEPTION_POOL3_DIM);
        if (s == LG_OK) {
            s = fid_vs_ref(&st, in->fid_ref, "fid", &r->fid);
            lg_fid_stats_free(&st);
        }
        if (s == LG_OK) r->done |= LG_EVAL_FID;
    }
    if (s == LG_OK && (m & LG_EVAL_KID)) {
        s = lg_kid(feat, n, in->kid_ref, in->kid_ref_n, LG_INCEPTION_POOL3_DIM, in->kid_subsets, in->kid_subset_size,
                   in->seed, &r->kid);
        if (s == LG_OK) r->done |= LG_EVAL_KID;
    }
    free(feat);
    free(logits);
    return s;
}

static lg_status eval_classifier(const lg_eval_inputs *in, const float *x, int64_t n, int c, int h, int w,
                                 lg_eval_result *r) {
    unsigned m = in->metrics;
    float *feat = (m & LG_EVAL_CFID) ? malloc((size_t)n * LG_CLS_FEAT_DIM * sizeof(float)) : NULL; /* (N,128) */
    float *logits = malloc((size_t)n * LG_CLS_CLASSES * sizeof(float));                         /* (N,10) */
    int *pred = malloc((size_t)n * sizeof(int));                                                   /* (N) */
    lg_status s = LG_OK;
    if (((m & LG_EVAL_CFID) && !feat) || !logits || !pred) s = lg_error_set(LG_ERR_NOMEM, "eval: out of memory");
    if (s == LG_OK) s = sample_features(NULL, in->classifier, x, n, c, h, w, feat, logits, in->progress);
    if (s == LG_OK && (m & LG_EVAL_CFID)) {
        lg_fid_stats st;
        s = lg_fid_stats_compute(&st, feat, n, LG_CLS_FEAT_DIM);
        if (s == LG_OK) {
            s = fid_vs_ref(&st, in->cfid_ref, "cfid", &r->cfid);
            lg_fid_stats_free(&st);
        }
        if (s == LG_OK) r->done |= LG_EVAL_CFID;
    }
    if (s == LG_OK && (m & LG_EVAL_CLASSES)) {
        lg_argmax_rows(logits, n, LG_CLS_CLASSES, pred);
        s = lg_class_hist_metrics(pred, n, LG_CLS_CLASSES, 1, r->class_counts, &r->classes);
        if (s == LG_OK) r->done |= LG_EVAL_CLASSES;
    }
    free(feat);
    free(logits);
    free(pred);
    return s;
}

lg_status lg_eval_samples(const lg_eval_inputs *in, const float *x, int64_t n, int c, int h, int w,
                          lg_eval_result *out) {
    memset(out, 0, sizeof *out);
    unsigned m = in->metrics;
    if (!m) return lg_error_set(LG_ERR_INVALID_ARG, "eval: no metric requested");
    if (n < 1) return lg_error_set(LG_ERR_INVALID_ARG, "eval: %lld samples", (long long)n);
    int toy = c == 2 && h == 1 && w == 1;
    if ((m & LG_EVAL_TOY) && !toy)
        return lg_error_set(LG_ERR_INVALID_ARG, "metric toy is for 2-D points; these samples are %dx%dx%d images", c,
                            h, w);
    if ((m & ~(unsigned)LG_EVAL_TOY) && toy)
        return lg_error_set(LG_ERR_INVALID_ARG, "2-D toy samples have only the toy metric; use --metrics toy");
    if (m & LG_EVAL_NEEDS_INCEPTION)
        LG_TRY(need(in->inception, m & LG_EVAL_IS ? "is" : m & LG_EVAL_FID ? "fid" : "kid", "the Inception network"));
    if (m & LG_EVAL_FID) LG_TRY(need(in->fid_ref, "fid", "reference statistics"));
    if (m & LG_EVAL_KID) LG_TRY(need(in->kid_ref, "kid", "reference features"));
    if (m & LG_EVAL_NEEDS_CLASSIFIER)
        LG_TRY(need(in->classifier, m & LG_EVAL_CFID ? "cfid" : "classes", "the Fashion-MNIST classifier"));
    if (m & LG_EVAL_CFID) LG_TRY(need(in->cfid_ref, "cfid", "reference statistics"));
    if (m & LG_EVAL_TOY) LG_TRY(need(in->modes, "toy", "the mode centres"));
    if ((m & LG_EVAL_FID) && in->fid_ref->dim != LG_INCEPTION_POOL3_DIM)
        return lg_error_set(LG_ERR_SHAPE, "fid: the reference statistics have dimension %d, Inception pool3 has %d",
                            in->fid_ref->dim, LG_INCEPTION_POOL3_DIM);
    if ((m & LG_EVAL_CFID) && in->cfid_ref->dim != LG_CLS_FEAT_DIM)
        return lg_error_set(LG_ERR_SHAPE, "cfid: the reference statistics have dimension %d, the classifier's features %d",
                            in->cfid_ref->dim, LG_CLS_FEAT_DIM);
    out->n = n;
    if (m & LG_EVAL_NEEDS_INCEPTION) LG_TRY(eval_inception(in, x, n, c, h, w, out));
    if (m & LG_EVAL_NEEDS_CLASSIFIER) LG_TRY(eval_classifier(in, x, n, c, h, w, out));
    if (m & LG_EVAL_TOY) {
        LG_TRY(lg_toy_metrics(x, n, in->modes, in->n_modes, in->mode_std, NULL, &out->toy));
        out->done |= LG_EVAL_TOY;
    }
    return LG_OK;
}

/* ---- output ---- */

/* "N reference", or a note when the statistics file did not record N */
static const char *ref_count(int64_t n, char *buf, size_t cap) {
    if (n > 0) snprintf(buf, cap, "%lld reference", (long long)n);
    else snprintf(buf, cap, "a reference of unrecorded size");
    return buf;
}

void lg_eval_result_print(const lg_eval_result *r, FILE *f) {
    if (r->done & LG_EVAL_IS)
        fprintf(f, "IS       %.4f +- %.4f   (%lld samples, %d splits; %s)\n", r->is.mean, r->is.std,
                (long long)r->is.n, r->is.splits, r->inception_desc);
    char nref[64];
    if (r->done & LG_EVAL_FID)
        fprintf(f, "FID      %.4f   (%lld samples vs %s; Inception pool3%s)\n", r->fid.fid, (long long)r->fid.n1,
                ref_count(r->fid.n2, nref, sizeof nref), r->fid.eps > 0 ? "; 1e-6*I added" : "");
    if (r->done & LG_EVAL_KID) {
        /* m >= both set sizes: every subset is the whole of both sets */
        int same = (int64_t)r->kid.subset_size >= r->kid.n1 && (int64_t)r->kid.subset_size >= r->kid.n2;
        if (same)
            fprintf(f,
                    "KID      %.6f   (%lld samples vs %lld reference; the %d subsets of %d are all the same, the "
                    "whole of both sets, so there is no std: more than %d samples and reference images give one)\n",
                    r->kid.mean, (long long)r->kid.n1, (long long)r->kid.n2, r->kid.subsets, r->kid.subset_size,
                    r->kid.subset_size);
        else
            fprintf(f, "KID      %.6f +- %.6f   (%lld samples vs %lld reference; %d subsets of %d)\n", r->kid.mean,
                    r->kid.std, (long long)r->kid.n1, (long long)r->kid.n2, r->kid.subsets, r->kid.subset_size);
    }
    if (r->done & LG_EVAL_CFID)
        fprintf(f, "cFID     %.4f   (%lld samples vs %s; Fashion-MNIST classifier features%s)\n", r->cfid.fid,
                (long long)r->cfid.n1, ref_count(r->cfid.n2, nref, sizeof nref),
                r->cfid.eps > 0 ? "; 1e-6*I added" : "");
    if (r->done & LG_EVAL_CLASSES) {
        fprintf(f, "classes  %d/%d covered, KL(histogram || uniform) %.4f nats   (%lld samples; counts", 
                r->classes.classes_covered, r->classes.k, r->classes.kl_uniform, (long long)r->classes.n);
        for (int i = 0; i < r->classes.k && i < LG_CLS_CLASSES; i++) fprintf(f, " %lld", (long long)r->class_counts[i]);
        fprintf(f, ")\n");
    }
    if (r->done & LG_EVAL_TOY)
        fprintf(f, "toy      %d/%d modes covered, %.2f%% high quality, reverse KL %.4f nats   (%lld samples)\n",
                r->toy.modes_covered, r->toy.m, 100.0 * r->toy.frac_high_quality, r->toy.reverse_kl,
                (long long)r->toy.n);
}

static cJSON *fid_json(const lg_fid_result *f) {
    cJSON *o = cJSON_CreateObject();
    if (!o) return NULL;
    cJSON_AddNumberToObject(o, "value", f->fid);
    cJSON_AddNumberToObject(o, "n", (double)f->n1);
    cJSON_AddNumberToObject(o, "n_ref", (double)f->n2);
    cJSON_AddNumberToObject(o, "eps", f->eps);
    return o;
}

char *lg_eval_result_json(const lg_eval_result *r, int64_t step, const char *checkpoint) {
    cJSON *o = cJSON_CreateObject(), *x;
    if (!o) return NULL;
    cJSON_AddNumberToObject(o, "step", (double)step);
    cJSON_AddStringToObject(o, "kind", "eval");
    if (checkpoint) cJSON_AddStringToObject(o, "checkpoint", checkpoint);
    cJSON_AddNumberToObject(o, "n", (double)r->n);
    if ((r->done & LG_EVAL_IS) && (x = cJSON_AddObjectToObject(o, "is"))) {
        cJSON_AddNumberToObject(x, "mean", r->is.mean);
        cJSON_AddNumberToObject(x, "std", r->is.std);
        cJSON_AddNumberToObject(x, "splits", r->is.splits);
        cJSON_AddNumberToObject(x, "n", (double)r->is.n);
    }
    if (r->done & LG_EVAL_FID) cJSON_AddItemToObject(o, "fid", fid_json(&r->fid));
    if ((r->done & LG_EVAL_KID) && (x = cJSON_AddObjectToObject(o, "kid"))) {
        cJSON_AddNumberToObject(x, "mean", r->kid.mean);
        cJSON_AddNumberToObject(x, "std", r->kid.std);
        cJSON_AddNumberToObject(x, "subsets", r->kid.subsets);
        cJSON_AddNumberToObject(x, "subset_size", r->kid.subset_size);
        cJSON_AddNumberToObject(x, "n", (double)r->kid.n1);
        cJSON_AddNumberToObject(x, "n_ref", (double)r->kid.n2);
    }
    if (r->done & LG_EVAL_CFID) cJSON_AddItemToObject(o, "cfid", fid_json(&r->cfid));
    if ((r->done & LG_EVAL_CLASSES) && (x = cJSON_AddObjectToObject(o, "classes"))) {
        cJSON_AddNumberToObject(x, "covered", r->classes.classes_covered);
        cJSON_AddNumberToObject(x, "k", r->classes.k);
        cJSON_AddNumberToObject(x, "kl_uniform", r->classes.kl_uniform);
        cJSON *a = cJSON_AddArrayToObject(x, "counts");
        for (int i = 0; a && i < r->classes.k && i < LG_CLS_CLASSES; i++)
            cJSON_AddItemToArray(a, cJSON_CreateNumber((double)r->class_counts[i]));
        cJSON_AddNumberToObject(x, "n", (double)r->classes.n);
    }
    if ((r->done & LG_EVAL_TOY) && (x = cJSON_AddObjectToObject(o, "toy"))) {
        cJSON_AddNumberToObject(x, "modes_covered", r->toy.modes_covered);
        cJSON_AddNumberToObject(x, "modes", r->toy.m);
        cJSON_AddNumberToObject(x, "high_quality_pct", 100.0 * r->toy.frac_high_quality);
        cJSON_AddNumberToObject(x, "reverse_kl", r->toy.reverse_kl);
        cJSON_AddNumberToObject(x, "n", (double)r->toy.n);
    }
    char *s = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    return s;
}
