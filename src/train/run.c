/* The training loop: resume, progress lines, metrics.jsonl, sample grids,
 * periodic checkpoints, signals (lipgan/train.h); and what watches it: the
 * spectral monitor (monitor.h), periodic evaluation (eval.h) and the
 * TensorBoard event file (tfevents.h). None of them draws from the
 * training's random streams or touches the training context, so a resumed
 * run stays bitwise the same as an uninterrupted one. */
#include <cJSON.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "lipgan/eval.h"
#include "lipgan/fileio.h"
#include "lipgan/image.h"
#include "lipgan/monitor.h"
#include "lipgan/safetensors.h"
#include "lipgan/tfevents.h"
#include "lipgan/dist.h"
#include "lipgan/backend_cpu.h"
#include "train/train_internal.h"

lg_status lg__checkpoint_prune(const char *dir, int keep, int64_t newest);
lg_status lg__checkpoint_older_intact(const char *dir, int64_t below, char *buf, size_t cap,
                                      int64_t *step);
lg_status lg__trainer_load_ex(lg_trainer *t, const char *path, int *damaged);

#define LG_DIST_AGREE_MAX 4096 /* processes a start-up agreement handles */
#define PATH_CAP (LG_CFG_PATH_MAX + 64)

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static lg_status mkdir_p(const char *dir) {
    char p[PATH_CAP];
    snprintf(p, sizeof p, "%s", dir);
    for (char *s = p + 1; ; s++) {
        if (*s == '/' || *s == '\0') {
            char ch = *s;
            *s = '\0';
            if (mkdir(p, 0777) != 0 && errno != EEXIST)
                return lg_error_set(LG_ERR_IO, "cannot create directory %s: %s", p, strerror(errno));
            *s = ch;
            if (!ch) break;
        }
    }
    struct stat sb;
    if (stat(dir, &sb) != 0 || !S_ISDIR(sb.st_mode))
        return lg_error_set(LG_ERR_IO, "%s is a file, not a directory", dir);
    return LG_OK;
}

/* A JSON number, or null for NaN/Inf (JSON has neither). */
static void jnum(FILE *f, const char *key, double v) {
    if (isfinite(v)) fprintf(f, ",\"%s\":%.9g", key, v);
    else fprintf(f, ",\"%s\":null", key);
}

/* extra: JSON fields each starting with a comma (monitor, eval), or NULL */
static void metrics_row(FILE *f, const lg_train_stats *s, int skipped, double it_s, double elapsed,
                        const char *extra) {
    if (!f) return;
    fprintf(f, "{\"step\":%" PRId64, s->step);
    jnum(f, "loss_d", s->loss_d);
    jnum(f, "loss_g", s->loss_g);
    jnum(f, "d_real", s->d_real);
    jnum(f, "d_fake", s->d_fake);
    jnum(f, "gp", s->gp);
    jnum(f, "lr_d", s->lr_d);
    jnum(f, "lr_g", s->lr_g);
    /* null, not 0, when D has no normalized layer (no estimate exists) */
    const int has_sigma = s->sigma_max > 0;
    jnum(f, "sigma_d_min", has_sigma ? s->sigma_min : NAN);
    jnum(f, "sigma_d_mean", has_sigma ? s->sigma_mean : NAN);
    jnum(f, "sigma_d_max", has_sigma ? s->sigma_max : NAN);
    fprintf(f, ",\"skipped\":%d", skipped);
    jnum(f, "it_per_s", it_s);
    jnum(f, "elapsed_s", elapsed);
    if (extra) fputs(extra, f);
    fputs("}\n", f);
    fflush(f);
}

static void fmt_eta(char *buf, size_t cap, double s) {
    if (!isfinite(s) || s < 0) snprintf(buf, cap, "?");
    else if (s >= 3600) snprintf(buf, cap, "%dh%02dm", (int)(s / 3600), (int)fmod(s / 60, 60));
    else if (s >= 60) snprintf(buf, cap, "%dm%02ds", (int)(s / 60), (int)fmod(s, 60));
    else snprintf(buf, cap, "%ds", (int)s);
}

/* Seconds left, from the last interval (steps [s0, s1) in secs): by the
 * updates left and done, so that the critic schedule's boosted steps
 * (n_dis_boost D updates instead of n_dis) count for the work they are. */
static double eta_s(const lg_trainer *t, int64_t s0, int64_t s1, double secs) {
    lg_dis_schedule ds = lg__train_dis_schedule(&t->cfg);
    int64_t done = lg_dis_updates(&ds, s0, s1);
    if (!(secs > 0) || done <= 0) return NAN;
    return (double)lg_dis_updates(&ds, s1, t->cfg.train.steps) * secs / (double)done;
}

/* it_s: G steps per second; eta: seconds left (NAN: not known) */
static void progress_line(FILE *f, const lg_trainer *t, const lg_train_stats *s, double it_s,
                          double eta_secs) {
    if (!f) return;
    char eta[32], gp[48] = "", sig[128] = "";
    fmt_eta(eta, sizeof eta, eta_secs);
    if (t->cfg.lipschitz.d.gp_lambda > 0) snprintf(gp, sizeof gp, "  gp %.4f", s->gp);
    /* min/mean/max over D's normalized layers of the raw weights' estimated
     * norms (the divisors; the layers as used have norm 1, or k under
     * Toeplitz): labelled by what they are (`lipgan train --help`) */
    if (s->sigma_max > 0)
        snprintf(sig, sizeof sig, "  D raw %s min/mean/max %.3g/%.3g/%.3g",
                 t->cfg.lipschitz.d.toeplitz_k > 0 ? "op-norm" : "sigma", s->sigma_min, s->sigma_mean,
                 s->sigma_max);
    /* under the critic schedule, the D updates this step ran (it/s swings
     * with them) */
    char nd[32] = "";
    if (t->cfg.train.n_dis_boost > 0) {
        lg_dis_schedule ds = lg__train_dis_schedule(&t->cfg);
        snprintf(nd, sizeof nd, "  n_dis %d", lg_dis_at(&ds, s->step - 1));
    }
    fprintf(f, "step %" PRId64 "/%" PRId64 "  loss D %.4f G %.4f%s  D(x) %.3f D(G(z)) %.3f%s%s  lr %.3g  %.2f it/s  ETA %s\n",
            s->step, t->cfg.train.steps, s->loss_d, s->loss_g, gp, s->d_real, s->d_fake, sig, nd, s->lr_g,
            it_s, eta);
    fflush(f);
}

/* Writes DIR/samples/step_<step>.png and DIR/samples.png from fixed noise
 * (the EMA generator when there is one); toys get a scatter plot over the
 * true modes. */
static lg_status write_samples(lg_trainer *t, const char *dir, int64_t step) {
    const lg_config *c = &t->cfg;
    lg_model *g = t->ema ? t->ema : t->g;
    int n = c->log.sample_n;
    int64_t ss = lg_generator_sample_size(g);
    float *buf = malloc((size_t)n * (size_t)ss * sizeof(float));
    if (!buf) return lg_error_set(LG_ERR_NOMEM, "samples: out of memory");
    lg_status st = lg_generate(g, t->be, n, (uint64_t)c->seed, buf);
    char p[2][PATH_CAP];
    snprintf(p[0], PATH_CAP, "%s/samples/step_%09" PRId64 ".png", dir, step);
    snprintf(p[1], PATH_CAP, "%s/samples.png", dir);
    for (int k = 0; k < 2 && st == LG_OK; k++) {
        if (t->is_toy) {
            const float *modes = NULL;
            lg_toy_kind kind = !strcmp(c->data.format, "grid25") ? LG_TOY_GRID25 : LG_TOY_RING8;
            int m = lg_data_toy_modes(kind, &modes, NULL);
            st = lg_image_write_scatter(p[k], buf, n, modes, m, kind == LG_TOY_GRID25 ? 6.0f : 3.0f, 512);
        } else {
            st = lg_image_write_grid(p[k], buf, n, t->c, t->h, t->w, 0);
        }
    }
    free(buf);
    return st;
}

static lg_status save_checkpoint(lg_trainer *t, const char *dir, FILE *log) {
    char p[PATH_CAP];
    lg_checkpoint_path(p, sizeof p, dir, t->step);
    LG_TRY(lg_trainer_save(t, p));
    /* only now that the new one is durable may old ones go */
    LG_TRY(lg__checkpoint_prune(dir, t->cfg.log.keep, t->step));
    if (log) fprintf(log, "checkpoint %s\n", p), fflush(log);
    return LG_OK;
}

/* Drops metrics rows past `step` (written after the checkpoint we resume
 * from), so the log matches the resumed run. */
static lg_status trim_metrics(const char *path, int64_t step) {
    unsigned char *buf;
    size_t len;
    LG_TRY(lg_file_read_optional(path, &buf, &len));
    if (!buf) return LG_OK; /* no log yet */
    size_t keep = 0;
    for (size_t i = 0; i < len;) {
        size_t e = i;
        while (e < len && buf[e] != '\n') e++;
        long long s;
        if (e == len || sscanf((const char *)buf + i, "{\"step\":%lld", &s) != 1 || s > step) break;
        keep = e + 1;
        i = e + 1;
    }
    lg_status st = keep != len ? lg_file_write_atomic(path, buf, keep) : LG_OK;
    free(buf);
    return st;
}

/* ---- a growing string (the extra fields of a metrics.jsonl row) ---- */

typedef struct sbuf {
    char *p;
    size_t n, cap;
    int oom;
} sbuf;

static void sb_printf(sbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void sb_printf(sbuf *b, const char *fmt, ...) {
    if (b->oom) return;
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int w = vsnprintf(b->p ? b->p + b->n : NULL, b->p ? b->cap - b->n : 0, fmt, ap);
        va_end(ap);
        if (w < 0) return;
        if (b->p && b->n + (size_t)w < b->cap) {
            b->n += (size_t)w;
            return;
        }
        size_t cap = b->cap ? b->cap : 1024;
        while (cap < b->n + (size_t)w + 1) cap *= 2;
        char *np = realloc(b->p, cap);
        if (!np) {
            b->oom = 1;
            return;
        }
        b->p = np;
        b->cap = cap;
    }
}

static void sb_num(sbuf *b, const char *key, double v) {
    if (isfinite(v)) sb_printf(b, ",\"%s\":%.9g", key, v);
    else sb_printf(b, ",\"%s\":null", key);
}

/* ---- TensorBoard ---- */

typedef struct run_tb {
    lg_tfevents *w;       /* NULL: off (or stopped after a write error) */
    FILE *log;
} run_tb;

/* A write error stops the TensorBoard log, not the training. */
static void tb_check(run_tb *tb, lg_status st) {
    if (st == LG_OK || !tb->w) return;
    if (tb->log) fprintf(tb->log, "warning: TensorBoard log stopped: %s\n", lg_error_msg());
    lg_error_clear();
    lg_tfevents_close(tb->w);
    lg_error_clear();
    tb->w = NULL;
}

static void tb_scalar(run_tb *tb, int64_t step, const char *tag, double v) {
    if (tb->w && isfinite(v)) tb_check(tb, lg_tfevents_scalar(tb->w, step, tag, v));
}

static void tb_monitor(run_tb *tb, const lg_monitor_summary *m) {
    if (!tb->w || !m->recorded) return;
    char tag[96];
    snprintf(tag, sizeof tag, "spectra/%s_%s_min", m->net, m->stat_name);
    tb_scalar(tb, m->step, tag, m->stat_min);
    snprintf(tag, sizeof tag, "spectra/%s_%s_mean", m->net, m->stat_name);
    tb_scalar(tb, m->step, tag, m->stat_mean);
    snprintf(tag, sizeof tag, "spectra/%s_collapsed", m->net);
    tb_scalar(tb, m->step, tag, m->collapsed);
    snprintf(tag, sizeof tag, "lipschitz/%s_upper", m->net);
    tb_scalar(tb, m->step, tag, m->lip_upper);
    snprintf(tag, sizeof tag, "lipschitz/%s_upper_product", m->net);
    tb_scalar(tb, m->step, tag, m->lip_upper_product);
    snprintf(tag, sizeof tag, "lipschitz/%s_lower", m->net);
    tb_scalar(tb, m->step, tag, m->lip_lower);
    snprintf(tag, sizeof tag, "lipschitz/%s_sn_err_max", m->net);
    tb_scalar(tb, m->step, tag, m->sn_err_max);
    snprintf(tag, sizeof tag, "perf/spectra_%s_ms", m->net);
    tb_scalar(tb, m->step, tag, m->ms);
}

/* ---- periodic evaluation ---- */

typedef struct run_eval {
    unsigned metrics;        /* LG_EVAL_* (0: off) */
    int64_t n;               /* samples per evaluation */
    uint64_t seed;           /* latent noise: the same samples' noise every time */
    lg_eval_inputs in;
    lg_classifier *cls;
    lg_inception *inc;
    lg_fid_stats fid_ref, cfid_ref;
    int have_fid_ref, have_cfid_ref;
    float *kid_ref;          /* (kid_ref_n, 2048) */
    float *x;                /* (n, sample size) generated */
} run_eval;

static void eval_free(run_eval *ev) {
    lg_classifier_free(ev->cls);
    lg_inception_free(ev->inc);
    if (ev->have_fid_ref) lg_fid_stats_free(&ev->fid_ref);
    if (ev->have_cfid_ref) lg_fid_stats_free(&ev->cfid_ref);
    free(ev->kid_ref);
    free(ev->x);
    memset(ev, 0, sizeof *ev);
}

/* Loads the networks and reference statistics the configured metrics need
 * (once per run, before the first step: a missing file fails early). */
static lg_status eval_setup(lg_trainer *t, run_eval *ev, FILE *log) {
    const lg_config *c = &t->cfg;
    memset(ev, 0, sizeof *ev);
    if (c->eval.every <= 0) return LG_OK;
    unsigned m;
    LG_TRY(lg_config_eval_metrics(c, t->c, t->h, t->w, &m));
    if (!m) {
        if (log && strcmp(c->eval.metrics, "none") != 0)
            fprintf(log, "eval: no metric applies to %dx%dx%d samples; periodic evaluation off\n", t->c, t->h, t->w);
        return LG_OK;
    }
    ev->n = c->eval.n > 0 ? c->eval.n : t->is_toy ? 2500 : 10000;
    ev->seed = (uint64_t)c->seed ^ 0x6576616c5eedull;  /* not the sample grids' noise */
    lg_eval_inputs *in = &ev->in;
    lg_eval_inputs_default(in);
    in->metrics = m;
    in->seed = ev->seed;
    char path[PATH_MAX + LG_CFG_PATH_MAX + 16];
    if (m & LG_EVAL_NEEDS_CLASSIFIER) {
        lg_file_find_shipped(c->eval.classifier[0] ? c->eval.classifier : LG_CLS_DEFAULT_PATH, path,
                             sizeof path);
        lg_status s = lg_classifier_load(&ev->cls, path, t->be);
        if (s != LG_OK) {
            char msg[768];
            snprintf(msg, sizeof msg, "%s", lg_error_msg());
            return lg_error_set(s, "eval.classifier: %s", msg);
        }
        in->classifier = ev->cls;
    }
    if (m & LG_EVAL_NEEDS_INCEPTION) {
        lg_status s = lg_inception_load(&ev->inc, c->eval.inception);
        if (s != LG_OK) {
            char msg[768];
            snprintf(msg, sizeof msg, "%s", lg_error_msg());
            return lg_error_set(s, "eval.inception: %s", msg);
        }
        /* with device: cuda, on the GPU; the CPU gives the same numbers if
         * it cannot be (slower), so that is a warning, not a stop */
        if (t->be->is_device) {
            lg_status us = lg_inception_use_cuda(ev->inc);
            if (log && us != LG_OK) fprintf(log, "eval: warning: %s\n", lg_error_msg());
            else if (log) fprintf(log, "eval: Inception-v3 on the GPU (its self-check against the CPU passed)\n");
        }
        in->inception = ev->inc;
    }
    if (c->eval.ref[0]) {
        lg_fid_stats st;
        LG_TRY(lg_fid_stats_load(&st, c->eval.ref));
        const unsigned uses = lg_eval_ref_metric(st.dim);
        if (!uses) {
            int d = st.dim;
            lg_fid_stats_free(&st);
            return lg_error_set(LG_ERR_INVALID_ARG,
                                "eval.ref %s: dimension %d is neither Inception's (2048, fid) nor the "
                                "classifier's (128, cfid)",
                                c->eval.ref, d);
        }
        /* a file no computed metric uses would be ignored silently (and the
         * metric's reference drawn from the training data instead) */
        if (!(m & uses)) {
            int d = st.dim;
            lg_fid_stats_free(&st);
            return lg_error_set(LG_ERR_INVALID_ARG,
                                "eval.ref %s: its %d-D statistics are for %s, which eval.metrics (%s) does not "
                                "compute for %dx%dx%d samples; add %s to eval.metrics or remove eval.ref",
                                c->eval.ref, d, uses == LG_EVAL_FID ? "fid" : "cfid", c->eval.metrics, t->c,
                                t->h, t->w, uses == LG_EVAL_FID ? "fid" : "cfid");
        }
        int rc, rh, rw;
        if (log && lg_fid_stats_source_shape(st.source, &rc, &rh, &rw) &&
            (rc != t->c || rh != t->h || rw != t->w))
            fprintf(log,
                    "eval: warning: eval.ref %s holds statistics of %dx%dx%d images but the generator makes "
                    "%dx%dx%d; a distance to another data set's statistics means little: make them with "
                    "lipgan fid-stats on the training data\n",
                    c->eval.ref, rc, rh, rw, t->c, t->h, t->w);
        if (uses == LG_EVAL_FID) ev->fid_ref = st, ev->have_fid_ref = 1;
        else ev->cfid_ref = st, ev->have_cfid_ref = 1;
    }
    const lg_dataset *d = &t->data;
    int64_t rn = c->eval.ref_n < d->n ? c->eval.ref_n : d->n;
    if ((m & LG_EVAL_CFID) && !ev->have_cfid_ref) {
        if (log) fprintf(log, "eval: cfid reference statistics of %lld training images\n", (long long)rn);
        LG_TRY(lg_eval_stats(NULL, ev->cls, d->x, rn, d->c, d->h, d->w, NULL, &ev->cfid_ref));
        ev->have_cfid_ref = 1;
    }
    /* kid's real features first: fid's reference, when computed, comes from
     * the same features instead of a second Inception pass over them (as
     * lipgan eval does) */
    if (m & LG_EVAL_KID) {
        ev->kid_ref = malloc((size_t)rn * LG_INCEPTION_POOL3_DIM * sizeof(float)); /* (rn, 2048) */
        if (!ev->kid_ref) return lg_error_set(LG_ERR_NOMEM, "eval: out of memory for the KID reference features");
        if (log) fprintf(log, "eval: kid reference features of %lld training images\n", (long long)rn);
        LG_TRY(lg_eval_features(ev->inc, NULL, d->x, rn, d->c, d->h, d->w, ev->kid_ref, NULL, NULL));
        in->kid_ref = ev->kid_ref;
        in->kid_ref_n = rn;
    }
    if ((m & LG_EVAL_FID) && !ev->have_fid_ref) {
        if (ev->kid_ref) {
            if (log) fprintf(log, "eval: fid reference statistics from the same %lld images' features\n", (long long)rn);
            LG_TRY(lg_fid_stats_compute(&ev->fid_ref, ev->kid_ref, rn, LG_INCEPTION_POOL3_DIM));
        } else {
            if (log) fprintf(log, "eval: fid reference statistics of %lld training images\n", (long long)rn);
            LG_TRY(lg_eval_stats(ev->inc, NULL, d->x, rn, d->c, d->h, d->w, NULL, &ev->fid_ref));
        }
        ev->have_fid_ref = 1;
    }
    if (ev->have_fid_ref) in->fid_ref = &ev->fid_ref;
    if (ev->have_cfid_ref) in->cfid_ref = &ev->cfid_ref;
    if (m & LG_EVAL_TOY) {
        lg_toy_kind kind = !strcmp(c->data.format, "grid25") ? LG_TOY_GRID25 : LG_TOY_RING8;
        in->n_modes = lg_data_toy_modes(kind, &in->modes, &in->mode_std);
    }
    ev->x = malloc((size_t)ev->n * (size_t)t->sample_size * sizeof(float));
    if (!ev->x) return lg_error_set(LG_ERR_NOMEM, "eval: out of memory for %lld samples", (long long)ev->n);
    ev->metrics = m;
    return LG_OK;
}

/* eval.n samples from the EMA generator (else G), evaluated. */
static lg_status eval_run(lg_trainer *t, run_eval *ev, lg_eval_result *r) {
    LG_TRY(lg_generate(t->ema ? t->ema : t->g, t->be, ev->n, ev->seed, ev->x));
    return lg_eval_samples(&ev->in, ev->x, ev->n, t->c, t->h, t->w, r);
}

/* The result's fields for the metrics.jsonl row: flat numbers (curves in
 * `lipgan report`, TensorBoard) and, under "eval", eval.h's full record
 * with every metric's sample counts. */
static void eval_fields(sbuf *b, const lg_eval_result *r, run_tb *tb, int64_t step) {
    struct { unsigned flag; const char *key; double v; } f[] = {
        {LG_EVAL_IS, "eval_is", r->is.mean},
        {LG_EVAL_FID, "eval_fid", r->fid.fid},
        {LG_EVAL_KID, "eval_kid", r->kid.mean},
        {LG_EVAL_CFID, "eval_cfid", r->cfid.fid},
        {LG_EVAL_CLASSES, "eval_classes_covered", r->classes.classes_covered},
        {LG_EVAL_CLASSES, "eval_classes_kl", r->classes.kl_uniform},
        {LG_EVAL_TOY, "eval_toy_modes_covered", r->toy.modes_covered},
        {LG_EVAL_TOY, "eval_toy_high_quality_pct", 100.0 * r->toy.frac_high_quality},
        {LG_EVAL_TOY, "eval_toy_reverse_kl", r->toy.reverse_kl},
    };
    sb_num(b, "eval_n", (double)r->n);
    for (size_t i = 0; i < sizeof f / sizeof f[0]; i++) {
        if (!(r->done & f[i].flag)) continue;
        sb_num(b, f[i].key, f[i].v);
        char tag[64];
        snprintf(tag, sizeof tag, "eval/%s", f[i].key + 5);
        tb_scalar(tb, step, tag, f[i].v);
    }
    char *row = lg_eval_result_json(r, step, NULL);
    cJSON *o = row ? cJSON_Parse(row) : NULL;
    free(row);
    if (o) {
        cJSON_DeleteItemFromObjectCaseSensitive(o, "step");
        cJSON_DeleteItemFromObjectCaseSensitive(o, "kind");
        char *txt = cJSON_PrintUnformatted(o);
        if (txt) sb_printf(b, ",\"eval\":%s", txt);
        cJSON_free(txt);
        cJSON_Delete(o);
    }
}

/* Spectral gradient clamping at the last update of each network: the
 * largest sigma0/sigma1 of a layer's gradient (before clamping; thesis
 * 5.5.3 reports it for D) and how many layers were clamped. Read from the
 * device only here, at log steps. Fields gclamp_<net>_ratio_max,
 * gclamp_<net>_clamped; a progress line under the step's. */
static void gclamp_fields(lg_trainer *t, sbuf *b, run_tb *tb, FILE *log) {
    lg_net_extra *xs[2] = {&t->xd, &t->xg};
    const char *nm[2] = {"D", "G"};
    lg_model *ms[2] = {t->d, t->g};
    for (int k = 0; k < 2; k++) {
        lg_net_extra *x = xs[k];
        if (!x->gc) continue;
        double rmax = 0.0;
        int clamped = 0, arg = -1;
        for (int i = 0; i < x->nl; i++) {
            if (lg_gclamp_read(&x->gc[i]) != LG_OK) {
                lg_error_clear();
                continue;
            }
            double r = x->gc[i].sigma1 > 0 ? (double)x->gc[i].sigma0 / x->gc[i].sigma1 : NAN;
            if (isfinite(r) && r > rmax) rmax = r, arg = i;
            clamped += x->gc[i].clamped;
        }
        char key[48];
        snprintf(key, sizeof key, "gclamp_%s_ratio_max", nm[k]);
        sb_num(b, key, arg >= 0 ? rmax : NAN);
        snprintf(key, sizeof key, "gclamp_%s_clamped", nm[k]);
        sb_num(b, key, clamped);
        snprintf(key, sizeof key, "gclamp_%s/ratio_max", nm[k]);
        if (arg >= 0) tb_scalar(tb, t->step, key, rmax);
        if (log)
            fprintf(log, "  %s grad: sigma0/sigma1 max %.3g (%s), clamped %d of %d layers at the last update\n",
                    nm[k], rmax, arg >= 0 ? lg_model_layer(ms[k], arg)->name : "-", clamped, x->nl);
    }
}

/* eval.h's lines, indented under the progress line */
static void eval_print(FILE *log, const lg_eval_result *r, int64_t step, double secs) {
    fprintf(log, "  eval at step %" PRId64 " (%.1f s):\n", step, secs);
    char *txt = NULL;
    size_t len = 0;
    FILE *m = open_memstream(&txt, &len);
    if (!m) {
        lg_eval_result_print(r, log);
        return;
    }
    lg_eval_result_print(r, m);
    if (fclose(m) == 0 && txt) {
        for (char *line = txt; *line;) {
            size_t n = strcspn(line, "\n");
            fprintf(log, "    %.*s\n", (int)n, line);
            line += n + (line[n] != '\0');
        }
    }
    free(txt);
}

/* Records D (with the step's last real batch for the gradient-norm lower
 * bound) and G; a failure (e.g. NaN weights: no SVD) is a warning, the
 * training goes on. */
static void monitor_step(lg_monitor *mon, lg_trainer *t, lg_monitor_summary ms[2], FILE *log) {
    lg_status s = lg_monitor_record(mon, t->step, "D", t->d, t->xb, t->cfg.train.batch_d, &ms[0]);
    if (s == LG_OK) s = lg_monitor_record(mon, t->step, "G", t->g, NULL, 0, &ms[1]);
    if (s != LG_OK) {
        if (log) fprintf(log, "warning: step %" PRId64 ": spectral monitor: %s\n", t->step, lg_error_msg());
        lg_error_clear();
    }
}

static void tb_step(run_tb *tb, const lg_trainer *t, const lg_train_stats *s, double it_s) {
    if (!tb->w) return;
    int64_t k = s->step;
    tb_scalar(tb, k, "loss/D", s->loss_d);
    tb_scalar(tb, k, "loss/G", s->loss_g);
    tb_scalar(tb, k, "D_output/real", s->d_real);
    tb_scalar(tb, k, "D_output/fake", s->d_fake);
    if (t->cfg.lipschitz.d.gp_lambda > 0) tb_scalar(tb, k, "loss/gradient_penalty", s->gp);
    tb_scalar(tb, k, "lr/G", s->lr_g);
    tb_scalar(tb, k, "lr/D", s->lr_d);
    if (s->sigma_max > 0) {
        tb_scalar(tb, k, "sigma_D/min", s->sigma_min);
        tb_scalar(tb, k, "sigma_D/mean", s->sigma_mean);
        tb_scalar(tb, k, "sigma_D/max", s->sigma_max);
    }
    tb_scalar(tb, k, "perf/it_per_s", it_s);
}

static void tb_samples(run_tb *tb, const char *dir, int64_t step) {
    if (!tb->w) return;
    char p[PATH_CAP];
    snprintf(p, sizeof p, "%s/samples/step_%09" PRId64 ".png", dir, step);
    tb_check(tb, lg_tfevents_image_file(tb->w, step, "samples", p));
    if (tb->w) tb_check(tb, lg_tfevents_flush(tb->w));
}

/* ---- the run directory ---- */

/* Takes the exclusive lock of run directory dir: flock on dir/.lock (made
 * if missing, our PID written into it), held through *fd until closed; the
 * kernel drops it when the process ends, however it ends. Held by another
 * process: LG_ERR_INVALID_ARG naming dir and that process's PID. A file
 * system without flock gets a warning, not a refusal. */
static lg_status lock_dir(lg_trainer *t, const char *dir, FILE *log, int *fd) {
    char p[PATH_CAP];
    snprintf(p, sizeof p, "%s/.lock", dir);
    *fd = -1;
    int f = open(p, O_RDWR | O_CREAT | O_CLOEXEC, 0666);
    if (f < 0) {
        int e = errno;
        if (e == EACCES || e == EPERM || e == EROFS) { /* a directory this user cannot write: the --out given */
            t->dir_conflict = 1;
            return lg_error_set(LG_ERR_IO, "run directory %s: cannot create its lock file %s: %s; give a directory "
                                           "for --out (out_dir) that you can write, e.g. runs/NAME",
                                dir, p, strerror(e));
        }
        return lg_error_set(LG_ERR_IO, "run directory %s: cannot open its lock file %s: %s", dir, p, strerror(e));
    }
    if (flock(f, LOCK_EX | LOCK_NB) != 0) {
        int e = errno;
        if (e == EWOULDBLOCK) {
            char pid[32] = "";
            ssize_t n = pread(f, pid, sizeof pid - 1, 0);
            pid[n > 0 ? n : 0] = '\0';
            pid[strspn(pid, "0123456789")] = '\0';
            close(f);
            t->dir_conflict = 1;
            return lg_error_set(LG_ERR_INVALID_ARG,
                                "run directory %s is in use by process %s (it holds %s); wait for that "
                                "run to end or stop it, or choose another --out",
                                dir, pid[0] ? pid : "(PID not yet written)", p);
        }
        close(f);
        if (e == ENOLCK || e == EOPNOTSUPP || e == ENOSYS) {
            if (log) fprintf(log, "warning: cannot lock %s (%s); make sure no other run writes into %s\n", p,
                             strerror(e), dir);
            return LG_OK;
        }
        return lg_error_set(LG_ERR_IO, "run directory %s: cannot lock %s: %s", dir, p, strerror(e));
    }
    char pid[32];
    int n = snprintf(pid, sizeof pid, "%ld\n", (long)getpid());
    if (ftruncate(f, 0) != 0 || pwrite(f, pid, (size_t)n, 0) != n) { /* the PID is only a courtesy */ }
    *fd = f;
    return LG_OK;
}

static float sched_lr(const lg_config *c, float base, int64_t step) {
    return strcmp(c->train.lr_decay, "linear") == 0 ? lg_lr_linear(base, step, c->train.steps) : base;
}

/* The checkpoint's config (old_yaml) parsed into old and compared with the
 * run's: how many keys differ (-1: old_yaml does not parse; its message is
 * left set), the "key: a -> b, ..." list in diff, and in *n_train how many
 * of them can change training (all but log.* and eval.*, which only say
 * what is written and measured). */
static int config_diff_old(const lg_trainer *t, const char *path, const char *old_yaml, lg_config *old,
                           char *diff, size_t cap, int *n_train) {
    lg_config_default(old);
    if (lg_config_load_string(old, old_yaml, strlen(old_yaml), path) != LG_OK) return -1;
    int n = lg_config_diff(old, &t->cfg, diff, cap);
    lg_config o2 = *old;
    o2.log = t->cfg.log;
    o2.eval = t->cfg.eval;
    char scratch[64];
    *n_train = lg_config_diff(&o2, &t->cfg, scratch, sizeof scratch);
    return n;
}

/* Names the keys in which the config of checkpoint `path` (its YAML text
 * `old_yaml`) differs from the run's, and how the learning rate changes. */
static void warn_config_diff(lg_trainer *t, const char *path, const char *old_yaml, FILE *log) {
    const lg_config *c = &t->cfg;
    if (!log || !old_yaml || !strcmp(old_yaml, t->cfg_yaml)) return;
    lg_config old;
    char diff[2048];
    int n_train = 0, n = config_diff_old(t, path, old_yaml, &old, diff, sizeof diff, &n_train);
    if (n < 0) {
        fprintf(log, "warning: the config differs from the one %s was written with (which does not parse "
                     "here: %s); the run will not match an uninterrupted one\n", path, lg_error_msg());
        lg_error_clear();
        return;
    }
    if (n == 0) return;
    if (n_train == 0) {
        fprintf(log, "note: the config (CONFIG and --set) differs from the one %s was written with in %d "
                     "key%s: %s; these change only logging and evaluation, so training goes on as it "
                     "would have\n", path, n, n > 1 ? "s" : "", diff);
        return;
    }
    fprintf(log, "warning: the config (CONFIG and --set) differs from the one %s was written with in %d "
                 "key%s: %s; the run will not match an uninterrupted one\n", path, n, n > 1 ? "s" : "", diff);
    int64_t k = t->step;
    float g0 = sched_lr(&old, old.optim.g.lr, k), g1 = sched_lr(c, c->optim.g.lr, k);
    float d0 = sched_lr(&old, old.optim.d.lr, k), d1 = sched_lr(c, c->optim.d.lr, k);
    int linear = !strcmp(old.train.lr_decay, "linear") || !strcmp(c->train.lr_decay, "linear");
    if (k < c->train.steps && (old.optim.g.lr != c->optim.g.lr || old.optim.d.lr != c->optim.d.lr ||
        strcmp(old.train.lr_decay, c->train.lr_decay) != 0 || (linear && old.train.steps != c->train.steps)))
        fprintf(log, "warning: this changes the learning-rate schedule: at step %" PRId64 " lr G %.3g -> %.3g, "
                     "D %.3g -> %.3g (lr_decay %s over train.steps %" PRId64 ", was %s over %" PRId64 ")\n",
                k, g0, g1, d0, d1, c->train.lr_decay, c->train.steps, old.train.lr_decay, old.train.steps);
}

static lg_status run_locked(lg_trainer *t, const lg_train_opts *o);

/* dist: the start-up (directory checks, lock, resume, files, watchers) can
 * fail on some processes only, e.g. rank 0 finds the directory locked. All
 * meet here once before the first step, each with its own outcome, so that
 * a failure anywhere stops every process instead of leaving the others
 * waiting in a step's collectives. One failure speaks for the run: the
 * lowest rank's that failed. Every process returns its status (and
 * conflict flag); the others are marked peer_failed and stay quiet. */
static lg_status agree_startup(lg_trainer *t, lg_status mine) {
    t->agreed = 1;
    if (t->world < 2) return mine;
    double code = mine == LG_OK ? 0 : (t->dir_conflict ? 1000 : 0) + (int)mine;
    double all[LG_DIST_AGREE_MAX];
    if (t->world > LG_DIST_AGREE_MAX || lg_dist_allgather(&code, all, 1, NULL) != LG_OK) {
        /* no agreement possible: this process's own outcome (the CLI aborts) */
        return mine != LG_OK ? mine : lg_error_set(LG_ERR_IO, "dist: start-up agreement failed");
    }
    int first = -1;
    for (int r = 0; r < t->world && first < 0; r++)
        if (all[r] != 0) first = r;
    if (first < 0) return LG_OK;
    if (first == t->rank) return mine;
    t->peer_failed = 1;
    int c = (int)all[first], s = c % 1000;
    t->dir_conflict = c >= 1000;
    return lg_error_set(s > 0 && s < LG_STATUS_COUNT ? (lg_status)s : LG_ERR_IO,
                        "process %d of this run failed to start it (its message says why)", first);
}

static lg_status run_start(lg_trainer *t, const lg_train_opts *o, int *lock) {
    const char *dir = o->out_dir;
    const char *wdir = t->rank == 0 ? dir : NULL; /* dist: rank 0 alone writes */
    if (o->resume) {
        if (!dir) return lg_error_set(LG_ERR_INVALID_ARG, "--resume needs the run directory (--out)");
        struct stat sb;
        if (stat(dir, &sb) != 0 || !S_ISDIR(sb.st_mode))  /* and nothing is created */
            return lg_error_set(LG_ERR_NOT_FOUND,
                                "run directory %s does not exist, so there is nothing to resume; run "
                                "without --resume to start it",
                                dir);
    }
    if (wdir && mkdir_p(wdir) != LG_OK) {
        /* a file, or a place that cannot be written: how it was asked for
         * (the CLI checks this first; here for other callers and races) */
        char why[1024];
        snprintf(why, sizeof why, "%s", lg_error_msg());
        t->dir_conflict = 1;
        return lg_error_set(LG_ERR_IO, "run directory %s: %s; give a directory for --out (out_dir) that can be "
                                       "created and written, e.g. runs/NAME",
                            wdir, why);
    }
    if (wdir) LG_TRY(lock_dir(t, wdir, o->progress, lock));
    return LG_OK;
}

lg_status lg_trainer_run(lg_trainer *t, const lg_train_opts *o) {
    lg_cpu_threads_saved threads = lg__trainer_threads_enter(t); /* the caller's back on return */
    t->dir_conflict = 0;
    t->agreed = 0;
    t->peer_failed = 0;
    t->run_start = -1;
    int lock = -1;
    lg_status st = run_start(t, o, &lock);
    if (st == LG_OK) st = run_locked(t, o);
    if (st != LG_OK && !t->agreed) st = agree_startup(t, st); /* failed before meeting the others */
    if (lock >= 0) close(lock); /* releases the lock */
    lg_cpu_threads_pop(&threads);
    return st;
}

static lg_status run_locked(lg_trainer *t, const lg_train_opts *o) {
    const lg_config *c = &t->cfg;
    /* dist: every process reads (resume), rank 0 alone writes and logs */
    const int writer = t->rank == 0;
    const char *dir = o->out_dir, *wdir = writer ? dir : NULL;
    FILE *log = writer ? o->progress : NULL;
    FILE *mf = NULL;
    char p[PATH_CAP];
    lg_status st = LG_OK;
    int64_t latest = -1;
    if (dir) {
        st = lg_checkpoint_latest(dir, p, sizeof p, &latest);
        if (st == LG_ERR_NOT_FOUND) latest = -1, lg_error_clear();
        else LG_TRY(st);
    }
    if (o->resume) {
        if (latest < 0)
            return lg_error_set(LG_ERR_NOT_FOUND, "%s holds no checkpoint to resume from; run without --resume",
                                dir);
        char *old_yaml = NULL;
        int old_procs = 0; /* 0: not recorded (before the key existed) */
        lg_st_file *f;
        if (lg_st_open(&f, p) == LG_OK) {
            const char *y = lg_st_meta(f, "config"), *np = lg_st_meta(f, "processes");
            old_yaml = y ? strdup(y) : NULL; /* y lives in f */
            old_procs = np ? atoi(np) : 0;
            lg_st_close(f);
        }
        if (log && old_procs > 0 && old_procs != t->world)
            fprintf(log, "warning: %s was written by %d process%s and is resumed by %d: the run goes on, "
                         "but not bit for bit as it would under %d (each process's slice and the order "
                         "of the sums change)\n",
                    p, old_procs, old_procs == 1 ? "" : "es", t->world, old_procs);
        lg_error_clear();
        int damaged = 0;
        st = lg__trainer_load_ex(t, p, &damaged);
        if (st != LG_OK) {
            if (!damaged && old_yaml && strcmp(old_yaml, t->cfg_yaml) != 0) {
                /* a tensor the new config needs or does not know: say which keys made it so */
                char msg[1024], diff[1024];
                lg_config old;
                int n_train = 0;
                snprintf(msg, sizeof msg, "%s", lg_error_msg());
                int n = config_diff_old(t, p, old_yaml, &old, diff, sizeof diff, &n_train);
                lg_error_clear();
                if (n > 0)
                    st = lg_error_set(st, "%s; the config differs from the checkpoint's in: %s", msg, diff);
                else
                    st = lg_error_set(st, "%s", msg);
            }
            free(old_yaml);
            if (!damaged) return st;
            /* name the newest older checkpoint that opens; never fall back silently */
            char msg[1024], older[PATH_CAP];
            snprintf(msg, sizeof msg, "%s", lg_error_msg());
            int64_t ostep;
            if (lg__checkpoint_older_intact(dir, latest, older, sizeof older, &ostep) == LG_OK)
                return lg_error_set(st,
                                    "%s; the older checkpoint %s (step %" PRId64 ") opens: move the damaged "
                                    "file aside (mv %s %s.damaged) and run with --resume again to continue "
                                    "from it",
                                    msg, older, ostep, p, p);
            return lg_error_set(st, "%s; no older checkpoint in %s opens", msg, dir);
        }
        if (log) fprintf(log, "resumed from %s at step %" PRId64 "\n", p, t->step);
        warn_config_diff(t, p, old_yaml, log);
        free(old_yaml);
        for (int k = 0; k < 2 && log; k++)
            if (t->optim_was[k][0])
                fprintf(log, "note: optim.%s.kind is %s, %s's was %s: %s's optimizer starts afresh (zero "
                             "moments, step 0), as a new one would\n",
                        k ? "d" : "g", k ? c->optim.d.kind : c->optim.g.kind, p, t->optim_was[k], k ? "D" : "G");
        if (t->step >= c->train.steps) {
            LG_TRY(agree_startup(t, LG_OK));
            if (log)
                fprintf(log, "already at step %" PRId64 " >= train.steps %" PRId64 "; nothing to do (raise "
                             "train.steps to train on)\n", t->step, c->train.steps);
            t->run_start = t->step;
            return LG_OK;
        }
        char mp[PATH_CAP];
        snprintf(mp, sizeof mp, "%s/metrics.jsonl", dir);
        if (writer) LG_TRY(trim_metrics(mp, t->step));
    } else if (latest >= 0) {
        t->dir_conflict = 1;
        return lg_error_set(LG_ERR_INVALID_ARG,
                            "%s already holds checkpoints (newest %s); pass --resume to continue "
                            "that run or choose another --out",
                            dir, p);
    } else if (wdir) {
        struct stat sb;
        snprintf(p, sizeof p, "%s/metrics.jsonl", wdir);
        if (stat(p, &sb) == 0 && sb.st_size > 0) {
            t->dir_conflict = 1;
            return lg_error_set(LG_ERR_INVALID_ARG,
                                "%s holds the log of an earlier run that wrote no checkpoint (%s); choose "
                                "another --out, or delete %s to start over in %s",
                                wdir, p, p, wdir);
        }
    }
    if (wdir) {
        snprintf(p, sizeof p, "%s/samples", wdir);
        LG_TRY(mkdir_p(p));
        snprintf(p, sizeof p, "%s/config.yaml", dir);
        LG_TRY(lg_file_write_atomic(p, t->cfg_yaml, strlen(t->cfg_yaml)));
        snprintf(p, sizeof p, "%s/metrics.jsonl", dir);
        mf = fopen(p, o->resume ? "a" : "w");
        if (!mf) return lg_error_set(LG_ERR_IO, "cannot open %s: %s", p, strerror(errno));
    }

    int interrupted = 0, skipped = 0;
    /* the watchers: their own memory, contexts and seeds */
    lg_monitor *mon = NULL;
    run_tb tb = {NULL, log};
    run_eval ev;
    memset(&ev, 0, sizeof ev);
    sbuf extra = {0};
    if (c->log.spectra_every > 0 && writer) {
        lg_monitor_opts mo = lg_monitor_opts_default();
        mo.be = t->be;
        mo.resume_step = o->resume ? t->step : -1;  /* drops records past the checkpoint */
        if ((st = lg_monitor_create(&mon, wdir, c->log.spectra_every, &mo)) != LG_OK) goto out;
    }
    /* checkpoints carry the monitor's state; a resumed one gets it back */
    if ((st = lg__checkpoint_monitor_attach(t, mon, log)) != LG_OK) goto out;
    if (wdir && c->log.tensorboard) {
        if ((st = lg_tfevents_open(&tb.w, wdir)) != LG_OK) goto out;
    }
    if (writer && (st = eval_setup(t, &ev, log)) != LG_OK) goto out;
    if ((st = agree_startup(t, LG_OK)) != LG_OK) goto out;

    t->run_start = t->step;
    char dev_info[320] = ""; /* printed when it changes (graphs recorded, or switched off) */
    int64_t last_ckpt = o->resume ? t->step : -1, last_samples = -1;
    double t0 = now_s(), ti = t0;
    int64_t si = t->step;
    lg_train_stats s;
    memset(&s, 0, sizeof s);
    while (t->step < c->train.steps) {
        int stop = o->stop_flag && *o->stop_flag;
        if (t->world > 1) stop = lg_dist_any(stop); /* every process stops at the same step */
        if (stop) {
            interrupted = 1;
            break;
        }
        if (o->stop_at > 0 && t->step >= o->stop_at) break;
        st = lg_trainer_step(t, &s);
        skipped += s.skipped;
        if (o->after_step && (st == LG_OK || st == LG_ERR_NONFINITE)) o->after_step(t, &s, o->user);
        if (s.skipped && log) /* s.step: also the diverged step's number (train.h) */
            fprintf(log, "step %" PRId64 ": %d update(s) skipped: non-finite loss or gradient (%d in a row)\n",
                    s.step, s.skipped, s.nonfinite_run);
        if (st == LG_ERR_NONFINITE) {
            metrics_row(mf, &s, skipped, 0.0, now_s() - t0, NULL);
            break;
        }
        if (st != LG_OK) break;
        if (log && t->be->is_device && strcmp(dev_info, lg_trainer_device_info(t)) != 0) {
            snprintf(dev_info, sizeof dev_info, "%s", lg_trainer_device_info(t));
            fprintf(log, "%s\n", dev_info);
        }
        /* spectra and evaluation fall on log rows (lg_config_validate) */
        lg_monitor_summary ms[2];
        memset(ms, 0, sizeof ms);
        if (mon && lg_monitor_due(mon, t->step)) monitor_step(mon, t, ms, log);
        int evaluated = 0;
        lg_eval_result er;
        char eval_err[512] = "";
        double eval_s = 0;
        if (ev.metrics && t->step % c->eval.every == 0) {
            double te = now_s();
            lg_status es = eval_run(t, &ev, &er);
            eval_s = now_s() - te;
            if (es == LG_OK) evaluated = 1;
            else {
                snprintf(eval_err, sizeof eval_err, "evaluation failed: %s", lg_error_msg());
                lg_error_clear();
            }
        }
        if (t->step % c->log.every == 0 || t->step == c->train.steps) {
            double tn = now_s();
            double it_s = tn > ti ? (double)(t->step - si) / (tn - ti) : 0.0;
            progress_line(log, t, &s, it_s, eta_s(t, si, t->step, tn - ti));
            extra.n = 0;
            if (extra.p) extra.p[0] = '\0';
            for (int k = 0; k < 2; k++) {
                if (!ms[k].recorded) continue;
                char frag[2048];
                if (log) {
                    lg_monitor_summary_line(&ms[k], frag, sizeof frag);
                    fprintf(log, "%s\n", frag);
                }
                lg_monitor_summary_json(&ms[k], frag, sizeof frag);
                sb_printf(&extra, "%s", frag);
                tb_monitor(&tb, &ms[k]);
            }
            sb_num(&extra, "d_updates", (double)t->xd.updates); /* applied so far (the critic schedule) */
            gclamp_fields(t, &extra, &tb, log);
            if (evaluated) {
                if (log) eval_print(log, &er, t->step, eval_s);
                eval_fields(&extra, &er, &tb, t->step);
                sb_num(&extra, "eval_s", eval_s);
            } else if (eval_err[0]) {
                if (log) fprintf(log, "warning: step %" PRId64 ": %s\n", t->step, eval_err);
                /* a *_warning string: `lipgan report` lists it */
                char esc[1100];
                size_t e = 0;
                for (const char *q = eval_err; *q && e + 8 < sizeof esc; q++) {
                    unsigned char ch = (unsigned char)*q;
                    if (ch == '"' || ch == '\\') esc[e++] = '\\', esc[e++] = (char)ch;
                    else if (ch < 0x20) e += (size_t)snprintf(esc + e, sizeof esc - e, "\\u%04x", ch);
                    else esc[e++] = (char)ch;
                }
                esc[e] = '\0';
                sb_printf(&extra, ",\"eval_warning\":\"%s\"", esc);
            }
            if (log) fflush(log);
            metrics_row(mf, &s, skipped, it_s, tn - t0, extra.n && !extra.oom ? extra.p : NULL);
            tb_step(&tb, t, &s, it_s);
            if (tb.w) tb_check(&tb, lg_tfevents_flush(tb.w));
            ti = now_s();  /* this interval's it/s includes the monitor and evaluation */
            si = t->step;
            skipped = 0;
        }
        if (wdir && c->log.samples_every > 0 && t->step % c->log.samples_every == 0) {
            if ((st = write_samples(t, wdir, t->step)) != LG_OK) break;
            tb_samples(&tb, dir, t->step);
            last_samples = t->step;
        }
        if (wdir && c->log.checkpoint_every > 0 && t->step % c->log.checkpoint_every == 0) {
            /* never checkpoint in the middle of a non-finite streak: the last
             * good checkpoint must stay the newest if the run then diverges */
            if (t->nonfinite_run > 0) {
                if (log) fprintf(log, "step %" PRId64 ": checkpoint postponed (non-finite updates in a row)\n", t->step);
            } else {
                if ((st = save_checkpoint(t, wdir, log)) != LG_OK) break;
                last_ckpt = t->step;
            }
        }
    }
    if (st == LG_OK && wdir) {
        if (last_ckpt != t->step && t->nonfinite_run == 0) st = save_checkpoint(t, wdir, log);
        else if (last_ckpt != t->step && log)
            fprintf(log, "no checkpoint at step %" PRId64 ": the last updates were non-finite; the "
                         "newest checkpoint is the last good one\n", t->step);
        if (st == LG_OK && last_samples != t->step && t->step >= c->train.steps) {
            st = write_samples(t, wdir, t->step);
            if (st == LG_OK) tb_samples(&tb, wdir, t->step);
        }
    }
out:
    t->mon = NULL;
    lg_monitor_free(mon);
    eval_free(&ev);
    free(extra.p);
    if (tb.w) {
        /* a failing close must not replace the training's own error */
        char saved[1024];
        snprintf(saved, sizeof saved, "%s", st != LG_OK ? lg_error_msg() : "");
        lg_status ts = lg_tfevents_close(tb.w);
        if (ts != LG_OK && log) fprintf(log, "warning: TensorBoard log: %s\n", lg_error_msg());
        if (st != LG_OK) lg_error_set(st, "%s", saved);
        else lg_error_clear();
    }
    if (mf && fclose(mf) != 0 && st == LG_OK)
        st = lg_error_set(LG_ERR_IO, "cannot write %s/metrics.jsonl", dir);
    if (st == LG_OK && interrupted)
        return lg_error_set(LG_ERR_INTERRUPTED,
                            "interrupted at step %" PRId64 "; checkpoint written, continue with --resume",
                            t->step);
    return st;
}

int lg_trainer_run_dir_conflict(const lg_trainer *t) { return t->dir_conflict; }
int lg_trainer_run_peer_failed(const lg_trainer *t) { return t->peer_failed; }
int64_t lg_trainer_run_start(const lg_trainer *t) { return t->run_start; }
