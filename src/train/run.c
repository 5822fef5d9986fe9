/* The training loop: resume, progress lines, metrics.jsonl, sample grids,
 * periodic checkpoints, signals (lipgan/train.h). */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "lipgan/fileio.h"
#include "lipgan/image.h"
#include "lipgan/safetensors.h"
#include "train/train_internal.h"

lg_status lg__checkpoint_prune(const char *dir, int keep, int64_t newest);

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
        return lg_error_set(LG_ERR_IO, "%s is not a directory", dir);
    return LG_OK;
}

/* A JSON number, or null for NaN/Inf (JSON has neither). */
static void jnum(FILE *f, const char *key, double v) {
    if (isfinite(v)) fprintf(f, ",\"%s\":%.9g", key, v);
    else fprintf(f, ",\"%s\":null", key);
}

static void metrics_row(FILE *f, const lg_train_stats *s, int skipped, double it_s, double elapsed) {
    if (!f) return;
    fprintf(f, "{\"step\":%" PRId64, s->step);
    jnum(f, "loss_d", s->loss_d);
    jnum(f, "loss_g", s->loss_g);
    jnum(f, "d_real", s->d_real);
    jnum(f, "d_fake", s->d_fake);
    jnum(f, "gp", s->gp);
    jnum(f, "lr_d", s->lr_d);
    jnum(f, "lr_g", s->lr_g);
    jnum(f, "sigma_d_min", s->sigma_min);
    jnum(f, "sigma_d_mean", s->sigma_mean);
    jnum(f, "sigma_d_max", s->sigma_max);
    fprintf(f, ",\"skipped\":%d", skipped);
    jnum(f, "it_per_s", it_s);
    jnum(f, "elapsed_s", elapsed);
    fputs("}\n", f);
    fflush(f);
}

static void fmt_eta(char *buf, size_t cap, double s) {
    if (!isfinite(s) || s < 0) snprintf(buf, cap, "?");
    else if (s >= 3600) snprintf(buf, cap, "%dh%02dm", (int)(s / 3600), (int)fmod(s / 60, 60));
    else if (s >= 60) snprintf(buf, cap, "%dm%02ds", (int)(s / 60), (int)fmod(s, 60));
    else snprintf(buf, cap, "%ds", (int)s);
}

static void progress_line(FILE *f, const lg_trainer *t, const lg_train_stats *s, double it_s) {
    if (!f) return;
    char eta[32], gp[48] = "", sig[96] = "";
    fmt_eta(eta, sizeof eta, it_s > 0 ? (double)(t->cfg.train.steps - s->step) / it_s : NAN);
    if (t->cfg.lipschitz.d.gp_lambda > 0) snprintf(gp, sizeof gp, "  gp %.4f", s->gp);
    if (s->sigma_max > 0)  /* min/mean/max over D's normalized layers */
        snprintf(sig, sizeof sig, "  sigma(D) %.3g/%.3g/%.3g", s->sigma_min, s->sigma_mean, s->sigma_max);
    fprintf(f, "step %" PRId64 "/%" PRId64 "  loss D %.4f G %.4f%s  D(x) %.3f D(G(z)) %.3f%s  lr %.3g  %.2f it/s  ETA %s\n",
            s->step, t->cfg.train.steps, s->loss_d, s->loss_g, gp, s->d_real, s->d_fake, sig, s->lr_g,
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
    lg_status st = lg_file_read_all(path, &buf, &len);
    if (st == LG_ERR_NOT_FOUND) {
        lg_error_clear();
        return LG_OK;
    }
    LG_TRY(st);
    size_t keep = 0;
    for (size_t i = 0; i < len;) {
        size_t e = i;
        while (e < len && buf[e] != '\n') e++;
        long long s;
        if (e == len || sscanf((const char *)buf + i, "{\"step\":%lld", &s) != 1 || s > step) break;
        keep = e + 1;
        i = e + 1;
    }
    if (keep != len) st = lg_file_write_atomic(path, buf, keep);
    free(buf);
    return st;
}

lg_status lg_trainer_run(lg_trainer *t, const lg_train_opts *o) {
    const lg_config *c = &t->cfg;
    const char *dir = o->out_dir;
    FILE *log = o->progress;
    FILE *mf = NULL;
    char p[PATH_CAP];
    lg_status st = LG_OK;
    if (dir) {
        LG_TRY(mkdir_p(dir));
        snprintf(p, sizeof p, "%s/samples", dir);
        LG_TRY(mkdir_p(p));
    }
    int64_t latest = -1;
    if (dir) {
        st = lg_checkpoint_latest(dir, p, sizeof p, &latest);
        if (st == LG_ERR_NOT_FOUND) latest = -1, lg_error_clear();
        else LG_TRY(st);
    }
    if (o->resume) {
        if (!dir) return lg_error_set(LG_ERR_INVALID_ARG, "--resume needs the run directory (--out)");
        if (latest < 0)
            return lg_error_set(LG_ERR_NOT_FOUND, "%s holds no checkpoint to resume from; run without --resume",
                                dir);
        lg_st_file *f;
        LG_TRY(lg_st_open(&f, p));
        const char *old = lg_st_meta(f, "config");
        if (log && old && strcmp(old, t->cfg_yaml) != 0)
            fprintf(log, "warning: the config differs from the one %s was written with; the run "
                         "will not match an uninterrupted one\n", p);
        lg_st_close(f);
        LG_TRY(lg_trainer_load(t, p));
        if (log) fprintf(log, "resumed from %s at step %" PRId64 "\n", p, t->step);
        char mp[PATH_CAP];
        snprintf(mp, sizeof mp, "%s/metrics.jsonl", dir);
        LG_TRY(trim_metrics(mp, t->step));
    } else if (latest >= 0) {
        return lg_error_set(LG_ERR_INVALID_ARG,
                            "%s already holds checkpoints (newest %s); pass --resume to continue "
                            "that run or choose another --out",
                            dir, p);
    }
    if (dir) {
        snprintf(p, sizeof p, "%s/config.yaml", dir);
        LG_TRY(lg_file_write_atomic(p, t->cfg_yaml, strlen(t->cfg_yaml)));
        snprintf(p, sizeof p, "%s/metrics.jsonl", dir);
        mf = fopen(p, o->resume ? "a" : "w");
        if (!mf) return lg_error_set(LG_ERR_IO, "cannot open %s: %s", p, strerror(errno));
    }

    int64_t last_ckpt = o->resume ? t->step : -1, last_samples = -1;
    int interrupted = 0, skipped = 0;
    double t0 = now_s(), ti = t0;
    int64_t si = t->step;
    lg_train_stats s;
    memset(&s, 0, sizeof s);
    while (t->step < c->train.steps) {
        if (o->stop_flag && *o->stop_flag) {
            interrupted = 1;
            break;
        }
        if (o->stop_at > 0 && t->step >= o->stop_at) break;
        st = lg_trainer_step(t, &s);
        skipped += s.skipped;
        if (o->after_step && (st == LG_OK || st == LG_ERR_NONFINITE)) o->after_step(t, &s, o->user);
        if (s.skipped && log)
            fprintf(log, "step %" PRId64 ": %d update(s) skipped: non-finite loss or gradient (%d in a row)\n",
                    s.step + (st == LG_OK ? 0 : 1), s.skipped, s.nonfinite_run);
        if (st == LG_ERR_NONFINITE) {
            metrics_row(mf, &s, skipped, 0.0, now_s() - t0);
            break;
        }
        if (st != LG_OK) break;
        if (t->step % c->log.every == 0 || t->step == c->train.steps) {
            double tn = now_s();
            double it_s = tn > ti ? (double)(t->step - si) / (tn - ti) : 0.0;
            progress_line(log, t, &s, it_s);
            metrics_row(mf, &s, skipped, it_s, tn - t0);
            ti = tn;
            si = t->step;
            skipped = 0;
        }
        if (dir && c->log.samples_every > 0 && t->step % c->log.samples_every == 0) {
            if ((st = write_samples(t, dir, t->step)) != LG_OK) break;
            last_samples = t->step;
        }
        if (dir && c->log.checkpoint_every > 0 && t->step % c->log.checkpoint_every == 0) {
            /* never checkpoint in the middle of a non-finite streak: the last
             * good checkpoint must stay the newest if the run then diverges */
            if (t->nonfinite_run > 0) {
                if (log) fprintf(log, "step %" PRId64 ": checkpoint postponed (non-finite updates in a row)\n", t->step);
            } else {
                if ((st = save_checkpoint(t, dir, log)) != LG_OK) break;
                last_ckpt = t->step;
            }
        }
    }
    if (st == LG_OK && dir) {
        if (last_ckpt != t->step && t->nonfinite_run == 0) st = save_checkpoint(t, dir, log);
        else if (last_ckpt != t->step && log)
            fprintf(log, "no checkpoint at step %" PRId64 ": the last updates were non-finite; the "
                         "newest checkpoint is the last good one\n", t->step);
        if (st == LG_OK && last_samples != t->step && t->step >= c->train.steps)
            st = write_samples(t, dir, t->step);
    }
    if (mf && fclose(mf) != 0 && st == LG_OK)
        st = lg_error_set(LG_ERR_IO, "cannot write %s/metrics.jsonl", dir);
    if (st == LG_OK && interrupted)
        return lg_error_set(LG_ERR_INTERRUPTED,
                            "interrupted at step %" PRId64 "; checkpoint written, continue with --resume",
                            t->step);
    return st;
}
