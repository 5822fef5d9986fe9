/* The trainer's watchers (issue 6): the spectral monitor, periodic
 * evaluation and the TensorBoard event file wired into lg_trainer_run.
 * A short toy run must leave spectra.bin records at exactly the
 * log.spectra_every steps, metrics.jsonl rows carrying the monitor's and the
 * evaluation's fields on the right rows, and an event file that the
 * independent reader (tools/read_tfevents.py, when python3 exists) decodes
 * with the expected tags and steps; monitoring must not change the training
 * (bitwise the same weights as an unmonitored run); a run stopped after a
 * checkpoint, with records past it, and resumed gives the same spectra and
 * evaluation numbers as an uninterrupted one; `lipgan report`'s writer reads
 * the directory; the classifier metrics (cfid, classes) run on tiny
 * Fashion-MNIST-like data; and the new config keys reject bad values with
 * messages naming the key. */
#include <cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "lg_test.h"
#include "lipgan/config.h"
#include "lipgan/eval.h"
#include "lipgan/fileio.h"
#include "lipgan/monitor.h"
#include "lipgan/report.h"
#include "lipgan/safetensors.h"
#include "lipgan/train.h"
#include "train/train_internal.h"  /* the training context, for its allocation count */
#include "train_fixtures.h"

static char g_tmp[64];

/* A tiny ring8 run: MLPs of width 16, 12 steps, rows every 2 steps. */
static void toy_config(lg_config *c) {
    lg_config_default(c);
    const char *sets[] = {"data.format=ring8", "data.toy_n=512", "model.z_dim=4",
                          "model.g.arch=mlp", "model.g.width=16", "model.g.depth=2", "model.g.bn=false",
                          "model.d.arch=mlp", "model.d.width=16", "model.d.depth=2",
                          "train.steps=12", "train.n_dis=1", "train.batch_d=32", "train.batch_g=32",
                          "optim.d.lr=1e-3", "optim.g.lr=1e-3", "optim.d.beta1=0.5", "optim.g.beta1=0.5",
                          "seed=5", "threads=1", "log.every=2", "log.samples_every=6",
                          "log.checkpoint_every=4", "log.sample_n=64", "log.spectra_every=4",
                          "log.tensorboard=true", "eval.every=6", "eval.n=300", NULL};
    for (int i = 0; sets[i]; i++) CHECK_OK(lg_config_set(c, sets[i]));
}

static int file_exists(const char *p) {
    struct stat sb;
    return stat(p, &sb) == 0;
}

/* The rows of metrics.jsonl as cJSON objects (caller frees each); n rows. */
static int read_rows(const char *dir, cJSON **rows, int cap) {
    char p[512];
    snprintf(p, sizeof p, "%s/metrics.jsonl", dir);
    unsigned char *buf;
    size_t len;
    if (lg_file_read_all(p, &buf, &len) != LG_OK) return -1;
    int n = 0;
    char *s = (char *)buf;
    for (size_t i = 0; i < len && n < cap;) {
        size_t e = i;
        while (e < len && s[e] != '\n') e++;
        s[e < len ? e : len - 1] = '\0';
        rows[n] = cJSON_Parse(s + i);
        CHECK(rows[n] != NULL, "metrics.jsonl line %d is not JSON: %.120s", n + 1, s + i);
        if (rows[n]) n++;
        i = e + 1;
    }
    free(buf);
    return n;
}

static double num(const cJSON *o, const char *k) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsNumber(v) ? v->valuedouble : NAN;
}

static int has(const cJSON *o, const char *k) { return cJSON_GetObjectItemCaseSensitive(o, k) != NULL; }

static lg_status run_dir(const lg_config *c, const char *dir, int resume, int64_t stop_at, lg_trainer **keep) {
    lg_trainer *t;
    lg_status s = lg_trainer_create(&t, c);
    if (s != LG_OK) return s;
    lg_train_opts o = {.out_dir = dir, .resume = resume, .stop_at = stop_at};
    s = lg_trainer_run(t, &o);
    if (keep) *keep = t;
    else lg_trainer_free(t);
    return s;
}

/* lg_trainer_run with its progress log into *log (malloc'ed). */
static lg_status run_logged(const lg_config *c, const char *dir, int resume, int64_t stop_at, lg_trainer **keep,
                            char **log) {
    size_t len = 0;
    *log = NULL;
    FILE *lf = open_memstream(log, &len);
    lg_trainer *t;
    lg_status s = lg_trainer_create(&t, c);
    if (s == LG_OK) {
        lg_train_opts o = {.out_dir = dir, .resume = resume, .stop_at = stop_at, .progress = lf};
        s = lg_trainer_run(t, &o);
        if (keep) *keep = t;
        else lg_trainer_free(t);
    }
    fclose(lf);
    return s;
}

static int same_weights(lg_trainer *a, lg_trainer *b) {
    lg_model *m[2][2] = {{lg_trainer_generator(a), lg_trainer_discriminator(a)},
                         {lg_trainer_generator(b), lg_trainer_discriminator(b)}};
    for (int k = 0; k < 2; k++) {
        size_t n = lg_model_num_params(m[0][k]);
        if (n != lg_model_num_params(m[1][k]) ||
            memcmp(lg_model_params(m[0][k]), lg_model_params(m[1][k]), n * sizeof(float)) != 0)
            return 0;
        n = lg_model_num_state(m[0][k]);
        if (memcmp(lg_model_state(m[0][k]), lg_model_state(m[1][k]), n * sizeof(float)) != 0) return 0;
    }
    return 1;
}

/* The event file of a run directory into buf (the newest if several). */
static int find_events(const char *dir, char *buf, size_t cap) {
    char cmd[600];
    snprintf(cmd, sizeof cmd, "ls -t '%s'/events.out.tfevents.* 2>/dev/null | head -1", dir);
    FILE *p = popen(cmd, "r");
    if (!p) return 0;
    int ok = fgets(buf, (int)cap, p) != NULL;
    pclose(p);
    if (ok) buf[strcspn(buf, "\n")] = '\0';
    return ok && buf[0];
}

static int have_python(void) { return system("command -v python3 >/dev/null 2>&1") == 0; }

static void check_events(const char *dir) {
    char ev[600] = ""; /* find_events leaves it unset when popen or fgets fails */
    CHECK(find_events(dir, ev, sizeof ev), "no TensorBoard event file in %s", dir);
    if (!ev[0]) return;
    if (!have_python()) {
        printf("  python3 not found: skipping the independent TensorBoard reader\n");
        return;
    }
    char cmd[900];
    snprintf(cmd, sizeof cmd, "python3 tools/read_tfevents.py '%s' --json 2>/dev/null", ev);
    FILE *p = popen(cmd, "r");
    CHECK(p != NULL, "popen");
    if (!p) return;
    static char out[1 << 20];
    size_t n = fread(out, 1, sizeof out - 1, p);
    out[n] = '\0';
    int rc = pclose(p);
    CHECK(rc != -1 && WIFEXITED(rc) && WEXITSTATUS(rc) == 0, "tools/read_tfevents.py failed on %s", ev);
    cJSON *j = cJSON_Parse(out);
    CHECK(j != NULL, "reader output is not JSON: %.200s", out);
    if (!j) return;
    /* bit k of each mask: seen at step 2k */
    unsigned loss = 0, spec = 0, lip = 0, evl = 0, img = 0, sigma = 0;
    const cJSON *e, *v;
    cJSON_ArrayForEach(e, cJSON_GetObjectItemCaseSensitive(j, "events")) {
        int step = (int)num(e, "step");
        cJSON_ArrayForEach(v, cJSON_GetObjectItemCaseSensitive(e, "values")) {
            const cJSON *tg = cJSON_GetObjectItemCaseSensitive(v, "tag");
            const char *tag = cJSON_IsString(tg) ? tg->valuestring : "";
            int sv = cJSON_IsNumber(cJSON_GetObjectItemCaseSensitive(v, "simple_value"));
            unsigned bit = step >= 0 && step <= 24 ? 1u << (step / 2) : 0;
            if (!strcmp(tag, "loss/D") && sv) loss |= bit;
            else if (!strcmp(tag, "spectra/D_auc_min") && sv) spec |= bit;
            else if (!strcmp(tag, "lipschitz/D_upper") && sv) lip |= bit;
            else if (!strcmp(tag, "eval/toy_modes_covered") && sv) evl |= bit;
            else if (!strcmp(tag, "sigma_D/max") && sv) sigma |= bit;
            else if (!strcmp(tag, "samples")) {
                const cJSON *im = cJSON_GetObjectItemCaseSensitive(v, "image");
                const cJSON *sig = cJSON_GetObjectItemCaseSensitive(im, "png_signature");
                if (cJSON_IsTrue(sig) && num(im, "height") > 0) img |= bit;
            }
        }
    }
    /* rows at 2..12; spectra at 4, 8, 12; eval and sample grids at 6, 12 */
    CHECK(loss == 0x7e, "loss/D at the row steps: mask %#x", loss);
    CHECK(sigma == 0x7e, "sigma_D/max at the row steps: mask %#x", sigma);
    CHECK(spec == 0x54 && lip == 0x54, "spectra scalars at steps 4, 8, 12: masks %#x %#x", spec, lip);
    CHECK(evl == 0x48, "eval scalars at steps 6, 12: mask %#x", evl);
    CHECK(img == 0x48, "sample images at steps 6, 12: mask %#x", img);
    cJSON_Delete(j);
}

static void test_monitored_run(void) {
    char dir[128], plain[128], p[256];
    snprintf(dir, sizeof dir, "%s/mon", g_tmp);
    snprintf(plain, sizeof plain, "%s/plain", g_tmp);
    lg_config c;
    toy_config(&c);
    lg_trainer *tm = NULL, *tp = NULL;
    CHECK_OK(run_dir(&c, dir, 0, 0, &tm));

    /* spectra.bin: D then G at 4, 8, 12, every layer */
    snprintf(p, sizeof p, "%s/spectra.bin", dir);
    lg_spectra_log sl;
    lg_status s = lg_spectra_read(p, &sl);
    CHECK_OK(s);
    if (s == LG_OK) {
        CHECK(sl.n == 6 && !sl.truncated, "%d records (truncated %d), want 6", sl.n, sl.truncated);
        for (int i = 0; i < sl.n && i < 6; i++) {
            const lg_spectra_record *r = &sl.rec[i];
            const char *want = i % 2 ? "G" : "D";
            lg_model *m = i % 2 ? lg_trainer_generator(tm) : lg_trainer_discriminator(tm);
            CHECK(r->step == 4 * (i / 2 + 1) && !strcmp(r->net, want), "record %d: step %lld net %s", i,
                  (long long)r->step, r->net);
            CHECK(tm && r->n_layers == lg_model_num_layers(m), "record %d: %d layers", i, r->n_layers);
            for (int l = 0; l < r->n_layers; l++)
                CHECK(r->layers[l].nsv > 0 && r->layers[l].sv[0] > 0 && isfinite(r->layers[l].sigma_exact),
                      "record %d layer %d: empty spectrum", i, l);
            if (i % 2 == 0) CHECK(isfinite(r->lip_lower) && r->lip_lower > 0, "D's lower bound %g", r->lip_lower);
        }
        lg_spectra_log_free(&sl);
    }

    /* metrics.jsonl: rows at 2..12; monitor fields at 4, 8, 12; eval at 6, 12 */
    cJSON *rows[16];
    int n = read_rows(dir, rows, 16);
    CHECK(n == 6, "%d metrics rows, want 6", n);
    for (int i = 0; i < n; i++) {
        int step = (int)num(rows[i], "step");
        CHECK(step == 2 * (i + 1), "row %d step %d", i, step);
        int mon = step % 4 == 0, ev = step % 6 == 0;
        CHECK(has(rows[i], "spec_D_auc_min") == mon && has(rows[i], "lip_D_upper") == mon &&
                  has(rows[i], "spec_G_auc_min") == mon && has(rows[i], "spec_D_collapsed") == mon,
              "step %d: monitor fields present %d, want %d", step, has(rows[i], "spec_D_auc_min"), mon);
        if (mon) {
            double a = num(rows[i], "spec_D_auc_min");
            CHECK(a > 0 && a <= 1, "step %d: auc min %g not in (0, 1]", step, a);
            CHECK(num(rows[i], "lip_D_lower") > 0, "step %d: lip_D_lower %g", step, num(rows[i], "lip_D_lower"));
        }
        CHECK(has(rows[i], "eval_toy_modes_covered") == ev && has(rows[i], "eval") == ev,
              "step %d: eval fields present %d, want %d", step, has(rows[i], "eval"), ev);
        if (ev) {
            double mc = num(rows[i], "eval_toy_modes_covered"), hq = num(rows[i], "eval_toy_high_quality_pct");
            CHECK(mc >= 0 && mc <= 8 && hq >= 0 && hq <= 100, "step %d: modes %g, hq %g%%", step, mc, hq);
            const cJSON *e = cJSON_GetObjectItemCaseSensitive(rows[i], "eval");
            const cJSON *toy = cJSON_GetObjectItemCaseSensitive(e, "toy");
            CHECK(num(e, "n") == 300 && num(toy, "n") == 300 && num(toy, "modes") == 8,
                  "step %d: eval record n %g, toy n %g, modes %g", step, num(e, "n"), num(toy, "n"),
                  num(toy, "modes"));
            CHECK(num(toy, "modes_covered") == mc, "flat and nested mode counts agree");
        }
    }
    for (int i = 0; i < n; i++) cJSON_Delete(rows[i]);
    check_events(dir);

    /* the watchers do not change the training */
    CHECK_OK(lg_config_set(&c, "log.spectra_every=0"));
    CHECK_OK(lg_config_set(&c, "eval.every=0"));
    CHECK_OK(lg_config_set(&c, "log.tensorboard=false"));
    CHECK_OK(run_dir(&c, plain, 0, 0, &tp));
    CHECK(tm && tp && same_weights(tm, tp), "a monitored run's weights differ from an unmonitored one's");
    snprintf(p, sizeof p, "%s/spectra.bin", plain);
    CHECK(!file_exists(p), "log.spectra_every=0 wrote %s", p);
    char ev[600];
    CHECK(!find_events(plain, ev, sizeof ev), "log.tensorboard=false wrote %s", ev);
    lg_trainer_free(tm);
    lg_trainer_free(tp);

    /* the report reads everything the run left */
    char html[256];
    snprintf(html, sizeof html, "%s/report.html", dir);
    lg_report_info info;
    CHECK_OK(lg_report_write(dir, html, NULL, &info));
    CHECK(file_exists(html) && info.bytes > 1000, "report.html (%ld bytes)", info.bytes);
    CHECK(info.metrics_rows == 6 && info.metrics_bad_lines == 0, "report: %d rows, %d bad", info.metrics_rows,
          info.metrics_bad_lines);
    CHECK(info.spectra_records == 6 && info.spectra_plots > 0, "report: %d spectra records, %d plots",
          info.spectra_records, info.spectra_plots);
    CHECK(info.sample_grids >= 2 && info.has_config && info.curve_plots > 3,
          "report: %d grids, config %d, %d curve plots", info.sample_grids, info.has_config, info.curve_plots);
    /* every figure of the page decodes in a browser (tools/setup.sh installs chromium) */
    if (system("command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1") != 0) {
        printf("  chromium not installed: skipping tests/report_chromium.sh\n");
    } else {
        char cmd[600];
        snprintf(cmd, sizeof cmd, "tests/report_chromium.sh '%s' %d >/dev/null 2>&1", html, info.images);
        int rc = system(cmd);
        CHECK(WIFEXITED(rc) && WEXITSTATUS(rc) == 0, "headless chromium check of the run's report failed: %s", cmd);
    }
}

/* Compares two spectra logs record by record (all but the wall time). */
static void same_spectra(const char *a, const char *b) {
    lg_spectra_log x, y;
    CHECK_OK(lg_spectra_read(a, &x));
    CHECK_OK(lg_spectra_read(b, &y));
    CHECK(x.n == y.n && x.n > 0, "%d vs %d records", x.n, y.n);
    for (int i = 0; i < x.n && i < y.n; i++) {
        const lg_spectra_record *r = &x.rec[i], *q = &y.rec[i];
        int same = r->step == q->step && !strcmp(r->net, q->net) && r->n_layers == q->n_layers &&
                   !memcmp(&r->lip_upper_product, &q->lip_upper_product, sizeof(double)) &&
                   !memcmp(&r->lip_lower, &q->lip_lower, sizeof(double));
        for (int l = 0; same && l < r->n_layers; l++) {
            const lg_monitor_layer *u = &r->layers[l], *v = &q->layers[l];
            same = u->nsv == v->nsv && !memcmp(u->sv, v->sv, (size_t)u->nsv * sizeof(float)) &&
                   !memcmp(&u->sigma_exact, &v->sigma_exact, sizeof(double)) &&
                   !memcmp(&u->sigma_est, &v->sigma_est, sizeof(double)) &&
                   !memcmp(&u->auc, &v->auc, sizeof(double)) && u->event == v->event;
        }
        CHECK(same, "record %d (step %lld %s) differs after resuming", i, (long long)r->step, r->net);
    }
    lg_spectra_log_free(&x);
    lg_spectra_log_free(&y);
}

static void test_resume_same_spectra(void) {
    char a[128], b[128], p[256], q[256];
    snprintf(a, sizeof a, "%s/whole", g_tmp);
    snprintf(b, sizeof b, "%s/resumed", g_tmp);
    lg_config c;
    toy_config(&c);
    CHECK_OK(lg_config_set(&c, "log.spectra_every=2"));
    CHECK_OK(lg_config_set(&c, "eval.every=2"));
    lg_trainer *ta = NULL, *tb = NULL;
    CHECK_OK(run_dir(&c, a, 0, 0, &ta));
    /* stop at 7 (a checkpoint at 7), then lose that checkpoint as in a crash
     * after step 7: the newest is 4, and records and rows of 6 are past it */
    CHECK_OK(run_dir(&c, b, 0, 7, NULL));
    lg_checkpoint_path(p, sizeof p, b, 7);
    CHECK(remove(p) == 0, "remove %s", p);
    snprintf(p, sizeof p, "%s/spectra.bin", b);
    lg_spectra_log sl;
    CHECK_OK(lg_spectra_read(p, &sl));
    CHECK(sl.n == 6, "the stopped run recorded %d, want 6 (steps 2, 4, 6)", sl.n);
    lg_spectra_log_free(&sl);
    CHECK_OK(run_dir(&c, b, 1, 0, &tb));
    CHECK(ta && tb && same_weights(ta, tb), "resumed weights differ from the uninterrupted run's");
    snprintf(q, sizeof q, "%s/spectra.bin", a);
    same_spectra(q, p);

    /* the rows agree on everything but timings */
    cJSON *ra[16], *rb[16];
    int na = read_rows(a, ra, 16), nb = read_rows(b, rb, 16);
    CHECK(na == 6 && nb == 6, "%d and %d rows", na, nb);
    const char *keys[] = {"step", "loss_d", "loss_g", "spec_D_auc_min", "spec_G_auc_mean", "lip_D_lower",
                          "lip_D_upper", "eval_toy_modes_covered", "eval_toy_reverse_kl", NULL};
    for (int i = 0; i < na && i < nb; i++)
        for (int k = 0; keys[k]; k++) {
            double x = num(ra[i], keys[k]), y = num(rb[i], keys[k]);
            CHECK(x == y, "row %d %s: %.9g vs %.9g after resuming", i, keys[k], x, y);
        }
    for (int i = 0; i < na; i++) cJSON_Delete(ra[i]);
    for (int i = 0; i < nb; i++) cJSON_Delete(rb[i]);
    /* the resumed run opened its own event file */
    char cmd[300];
    snprintf(cmd, sizeof cmd, "test $(ls '%s' | grep -c '^events.out.tfevents') -eq 2", b);
    CHECK(system(cmd) == 0, "two event files in %s", b);
    lg_trainer_free(ta);
    lg_trainer_free(tb);
}

/* A tiny CNN run on generated CIFAR records (conv layers: the monitor's
 * power iterations keep warm-start vectors; SN and Toeplitz in D). */
static void cnn_config(lg_config *c, const char *cifar) {
    lg_config_default(c);
    char p[600];
    snprintf(p, sizeof p, "data.path=%s", cifar);
    CHECK_OK(lg_config_set(c, p));
    const char *sets[] = {"data.format=cifar10", "model.z_dim=8", "model.g.arch=cnn", "model.g.width=4",
                          "model.d.arch=cnn", "model.d.width=4", "lipschitz.d.toeplitz_k=2", "train.steps=8",
                          "train.n_dis=1", "train.batch_d=4", "train.batch_g=4", "seed=3", "threads=1",
                          "log.every=1", "log.samples_every=0", "log.checkpoint_every=3", "log.sample_n=4",
                          "log.spectra_every=1", "log.tensorboard=false", "eval.every=0", NULL};
    for (int i = 0; sets[i]; i++) CHECK_OK(lg_config_set(c, sets[i]));
}

/* Wall-time fields of a metrics.jsonl row: the only ones a resume may change. */
static int timing_key(const char *k) {
    size_t n = strlen(k);
    return !strcmp(k, "it_per_s") || !strcmp(k, "elapsed_s") || !strcmp(k, "eval_s") ||
           (n > 3 && !strcmp(k + n - 3, "_ms"));
}

/* metrics.jsonl of a and b: the same rows with the same keys, every value
 * but the timings bitwise equal (numbers as doubles, other values as text). */
static void same_rows(const char *a, const char *b, int want) {
    cJSON *ra[32], *rb[32];
    int na = read_rows(a, ra, 32), nb = read_rows(b, rb, 32);
    CHECK(na == want && nb == want, "%d and %d rows, want %d", na, nb, want);
    for (int i = 0; i < na && i < nb; i++) {
        CHECK(cJSON_GetArraySize(ra[i]) == cJSON_GetArraySize(rb[i]), "row %d: %d vs %d fields", i,
              cJSON_GetArraySize(ra[i]), cJSON_GetArraySize(rb[i]));
        const cJSON *x;
        cJSON_ArrayForEach(x, ra[i]) {
            if (timing_key(x->string)) continue;
            const cJSON *y = cJSON_GetObjectItemCaseSensitive(rb[i], x->string);
            int same = y != NULL && x->type == y->type;
            if (same && cJSON_IsNumber(x)) same = !memcmp(&x->valuedouble, &y->valuedouble, sizeof(double));
            else if (same) {
                char *px = cJSON_PrintUnformatted(x), *py = cJSON_PrintUnformatted(y);
                same = px && py && !strcmp(px, py);
                free(px);
                free(py);
            }
            CHECK(same, "row %d (step %g) %s: %.9g vs %.9g after resuming", i, num(ra[i], "step"), x->string,
                  cJSON_IsNumber(x) ? x->valuedouble : NAN, y && cJSON_IsNumber(y) ? y->valuedouble : NAN);
        }
    }
    for (int i = 0; i < na; i++) cJSON_Delete(ra[i]);
    for (int i = 0; i < nb; i++) cJSON_Delete(rb[i]);
}

/* spectra.bin with each record's wall time and CRC (which covers it) zeroed;
 * NULL if unreadable or not a sequence of whole records. */
static unsigned char *spectra_masked(const char *dir, size_t *len) {
    char p[512];
    snprintf(p, sizeof p, "%s/spectra.bin", dir);
    unsigned char *buf;
    if (lg_file_read_all(p, &buf, len) != LG_OK) return NULL;
    size_t i = 16; /* file header */
    while (i + 12 <= *len) {
        uint32_t bl = (uint32_t)buf[i + 4] | (uint32_t)buf[i + 5] << 8 | (uint32_t)buf[i + 6] << 16 |
                      (uint32_t)buf[i + 7] << 24;
        if (bl < 16 || i + 12 + bl > *len) break;
        memset(buf + i + 8 + 8, 0, 8);       /* body: i64 step, f64 wall_time */
        memset(buf + i + 8 + bl, 0, 4);      /* crc32 */
        i += 12 + (size_t)bl;
    }
    if (i != *len) {
        free(buf);
        return NULL;
    }
    return buf;
}

static void same_spectra_bytes(const char *a, const char *b) {
    size_t la = 0, lb = 0;
    unsigned char *x = spectra_masked(a, &la), *y = spectra_masked(b, &lb);
    CHECK(x && y, "spectra.bin of %s or %s unreadable", a, b);
    CHECK(la == lb, "spectra.bin: %zu vs %zu bytes", la, lb);
    if (x && y && la == lb) {
        size_t k = 0;
        while (k < la && x[k] == y[k]) k++;
        CHECK(k == la, "spectra.bin differs at byte %zu of %zu after resuming (wall times masked)", k, la);
    }
    free(x);
    free(y);
}

/* A run killed and resumed must log what an uninterrupted one does: the
 * monitor's warm-start vectors and detectors travel in the checkpoint.
 * every 1: run b stops at 5 (checkpoint 5), loses that checkpoint as in a
 * crash, and resumes from 3 with records and rows of 4 and 5 past it.
 * every 2: b stops at 1, before the monitor's first record. */
static void test_resume_conv_monitor(void) {
    char cifar[256];
    CHECK(tf_write_cifar(g_tmp, 24, cifar, sizeof cifar) == 0, "tiny CIFAR");
    for (int every = 1; every <= 2; every++) {
        char a[128], b[128], p[256];
        snprintf(a, sizeof a, "%s/cwhole%d", g_tmp, every);
        snprintf(b, sizeof b, "%s/cresumed%d", g_tmp, every);
        lg_config c;
        cnn_config(&c, cifar);
        CHECK_OK(lg_config_set(&c, every == 1 ? "log.spectra_every=1" : "log.spectra_every=2"));
        lg_trainer *ta = NULL, *tb = NULL;
        CHECK_OK(run_dir(&c, a, 0, 0, &ta));
        CHECK_OK(run_dir(&c, b, 0, every == 1 ? 5 : 1, NULL));
        if (every == 1) {
            lg_checkpoint_path(p, sizeof p, b, 5);
            CHECK(remove(p) == 0, "remove %s", p);
        }
        CHECK_OK(run_dir(&c, b, 1, 0, &tb));
        CHECK(ta && tb && same_weights(ta, tb), "resumed weights differ from the uninterrupted run's");
        same_rows(a, b, 8);
        same_spectra_bytes(a, b);
        lg_trainer_free(ta);
        lg_trainer_free(tb);
    }
}

/* Rewrites the checkpoint at path without the tensors whose name contains
 * drop (NULL: none); with add, plus one F32 tensor of that name (4 zeros);
 * with poke, the first integer of that I64 tensor set to 7. 0 on success. */
static int rewrite_ckpt(const char *path, const char *drop, const char *add, const char *poke) {
    lg_st_file *f;
    if (lg_st_open(&f, path) != LG_OK) return -1;
    lg_st_writer *w;
    if (lg_st_writer_create(&w) != LG_OK) {
        lg_st_close(f);
        return -1;
    }
    const char *meta[] = {"format", "lipgan_version", "step", "config", "processes", NULL};
    int bad = 0;
    for (int k = 0; meta[k]; k++)
        if (lg_st_meta(f, meta[k])) bad |= lg_st_writer_add_meta(w, meta[k], lg_st_meta(f, meta[k])) != LG_OK;
    size_t n = lg_st_count(f);
    void **bufs = calloc(n + 1, sizeof *bufs);
    static float zeros[4];
    for (size_t i = 0; i < n && !bad; i++) {
        const lg_st_tensor *t = lg_st_at(f, i);
        if (drop && strstr(t->name, drop)) continue;
        int is_int = t->dtype == LG_ST_I64;
        bufs[i] = malloc((size_t)(t->numel ? t->numel : 1) * 8);
        if (is_int) {
            bad |= lg_st_get_i64(f, t->name, -1, NULL, bufs[i]) != LG_OK;
            if (poke && !strcmp(poke, t->name)) ((int64_t *)bufs[i])[0] = 7;
            bad |= lg_st_writer_add_i64(w, t->name, t->ndim, t->shape, bufs[i]) != LG_OK;
        } else {
            bad |= lg_st_get_f32(f, t->name, -1, NULL, bufs[i]) != LG_OK;
            bad |= lg_st_writer_add_f32(w, t->name, t->ndim, t->shape, bufs[i]) != LG_OK;
        }
    }
    if (add) bad |= lg_st_writer_add_f32(w, add, 1, (int64_t[]){4}, zeros) != LG_OK;
    if (!bad) bad |= lg_st_writer_write(w, path, 1) != LG_OK;
    for (size_t i = 0; i < n; i++) free(bufs[i]);
    free(bufs);
    lg_st_writer_free(w);
    lg_st_close(f);
    return bad ? -1 : 0;
}

static int has_monitor_tensors(const char *dir, int64_t step) {
    char p[256];
    lg_checkpoint_path(p, sizeof p, dir, step);
    lg_st_file *f;
    if (lg_st_open(&f, p) != LG_OK) return -1;
    int n = 0;
    for (size_t i = 0; i < lg_st_count(f); i++) n += strstr(lg_st_at(f, i)->name, ".monitor.") != NULL;
    lg_st_close(f);
    return n;
}

/* Checkpoints without the monitor's state (an older lipgan, or a run with
 * log.spectra_every = 0) still resume, with a one-line warning; a partial or
 * damaged state is an error naming the tensor; a resume with the monitor off
 * drops the state with a note. */
static void test_monitor_state_compat(void) {
    char a[128], b[128], p[256], q[300], cifar[256];
    snprintf(a, sizeof a, "%s/swhole", g_tmp);
    snprintf(b, sizeof b, "%s/sold", g_tmp);
    CHECK(tf_write_cifar(g_tmp, 24, cifar, sizeof cifar) == 0, "tiny CIFAR");
    lg_config c;
    cnn_config(&c, cifar);
    lg_trainer *ta = NULL, *tb = NULL;
    char *log = NULL;
    CHECK_OK(run_dir(&c, a, 0, 0, &ta));
    CHECK(has_monitor_tensors(a, 3) > 0 && has_monitor_tensors(a, 8) > 0, "checkpoints carry the monitor state");

    /* an old checkpoint: the training resumes bitwise, the monitor cold */
    CHECK_OK(run_dir(&c, b, 0, 3, NULL));
    lg_checkpoint_path(p, sizeof p, b, 3);
    snprintf(q, sizeof q, "%s.orig", p);
    char cmd[600];
    snprintf(cmd, sizeof cmd, "cp '%s' '%s'", p, q);
    CHECK(system(cmd) == 0, "%s", cmd);
    CHECK(rewrite_ckpt(p, ".monitor.", NULL, NULL) == 0 && has_monitor_tensors(b, 3) == 0, "strip the monitor state");
    CHECK_OK(run_logged(&c, b, 1, 0, &tb, &log));
    CHECK(log && strstr(log, "holds no spectral monitor state") && strstr(log, "restarts cold"),
          "no warning about the cold monitor: %.600s", log ? log : "");
    CHECK(ta && tb && same_weights(ta, tb), "a checkpoint without monitor state resumed to other weights");
    CHECK(has_monitor_tensors(b, 8) > 0, "the resumed run's checkpoints carry the state again");
    free(log);
    lg_trainer_free(tb);
    tb = NULL;

    /* partial, extra or out-of-range state: errors naming the tensor */
    lg_trainer *t;
    CHECK_OK(lg_trainer_create(&t, &c));
    struct { const char *drop, *add, *poke, *want; lg_status st; } bad[] = {
        {"G.monitor.", NULL, NULL, "G.monitor.", LG_ERR_NOT_FOUND},
        {NULL, "D.monitor.nosuch.tv", NULL, "D.monitor.nosuch.tv", LG_ERR_FORMAT},
        {NULL, NULL, "D.monitor.l4.state", "D.monitor.l4.state", LG_ERR_FORMAT},
    };
    for (size_t k = 0; t && k < sizeof bad / sizeof bad[0]; k++) {
        snprintf(cmd, sizeof cmd, "cp '%s' '%s'", q, p);
        CHECK(system(cmd) == 0, "%s", cmd);
        CHECK(rewrite_ckpt(p, bad[k].drop, bad[k].add, bad[k].poke) == 0, "rewrite %zu", k);
        lg_error_clear();
        lg_status s = lg_trainer_load(t, p);
        CHECK(s == bad[k].st && strstr(lg_error_msg(), bad[k].want), "case %zu: %s: %s, want %s naming %s", k,
              lg_status_str(s), lg_error_msg(), lg_status_str(bad[k].st), bad[k].want);
    }
    lg_trainer_free(t);

    /* the monitor off on resume: the state is dropped with a note; back on:
     * the warning */
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", b);
    CHECK(system(cmd) == 0, "%s", cmd);
    CHECK_OK(run_dir(&c, b, 0, 3, NULL));
    CHECK_OK(lg_config_set(&c, "log.spectra_every=0"));
    CHECK_OK(run_logged(&c, b, 1, 6, NULL, &log));
    CHECK(log && strstr(log, "holds the spectral monitor's state, but log.spectra_every is 0"),
          "no note about the unused state: %.600s", log ? log : "");
    CHECK(has_monitor_tensors(b, 6) == 0, "a run without the monitor saved monitor state");
    free(log);
    CHECK_OK(lg_config_set(&c, "log.spectra_every=2"));
    CHECK_OK(run_logged(&c, b, 1, 0, &tb, &log));
    CHECK(log && strstr(log, "holds no spectral monitor state"), "no cold-start warning: %.600s", log ? log : "");
    CHECK(ta && tb && same_weights(ta, tb), "switching the monitor off and on changed the training");
    snprintf(p, sizeof p, "%s/spectra.bin", b);
    lg_spectra_log sl;
    CHECK_OK(lg_spectra_read(p, &sl));
    CHECK(sl.n == 8 && sl.rec[7].step == 8, "%d records, want D and G at 1, 2, 3 and 8", sl.n);
    lg_spectra_log_free(&sl);
    free(log);
    lg_trainer_free(ta);
    lg_trainer_free(tb);
}

/* cfid and classes with the shipped classifier on tiny Fashion-MNIST-like
 * data; a missing classifier fails before any step. */
static void test_classifier_eval(void) {
    char data[128], dir[128], p[256];
    snprintf(data, sizeof data, "%s/fm", g_tmp);
    snprintf(dir, sizeof dir, "%s/fmrun", g_tmp);
    CHECK(mkdir(data, 0777) == 0 && tf_write_idx_dir(data, 40) == 0, "tiny IDX data");
    lg_config c;
    lg_config_default(&c);
    char dp[200];
    snprintf(dp, sizeof dp, "data.path=%s", data);
    const char *sets[] = {"data.format=fashion-mnist", dp, "data.image_size=32", "model.z_dim=8",
                          "model.g.arch=cnn", "model.g.width=4", "model.d.arch=cnn", "model.d.width=4",
                          "train.steps=2", "train.n_dis=1", "train.batch_d=4", "train.batch_g=4", "threads=1",
                          "log.every=1", "log.samples_every=0", "log.checkpoint_every=0", "log.sample_n=4",
                          "log.spectra_every=2", "eval.every=2", "eval.n=64", "eval.ref_n=40", NULL};
    for (int i = 0; sets[i]; i++) CHECK_OK(lg_config_set(&c, sets[i]));
    unsigned m = 0;
    CHECK_OK(lg_config_eval_metrics(&c, 1, 32, 32, &m));
    CHECK(m == (LG_EVAL_CFID | LG_EVAL_CLASSES), "auto metrics for 1x32x32: %#x", m);
    CHECK_OK(run_dir(&c, dir, 0, 0, NULL));
    cJSON *rows[4];
    int n = read_rows(dir, rows, 4);
    CHECK(n == 2, "%d rows", n);
    if (n == 2) {
        double cf = num(rows[1], "eval_cfid"), cov = num(rows[1], "eval_classes_covered");
        CHECK(isfinite(cf) && cf >= 0, "cfid %g", cf);
        CHECK(cov >= 1 && cov <= 10, "classes covered %g", cov);
        const cJSON *cfo = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(rows[1], "eval"), "cfid");
        CHECK(num(cfo, "n") == 64 && num(cfo, "n_ref") == 40, "cfid sample counts %g / %g", num(cfo, "n"),
              num(cfo, "n_ref"));
        CHECK(!has(rows[0], "eval_cfid") && has(rows[1], "spec_D_auc_min"), "eval only at step 2");
    }
    for (int i = 0; i < n; i++) cJSON_Delete(rows[i]);

    snprintf(dir, sizeof dir, "%s/fmrun2", g_tmp);
    CHECK_OK(lg_config_set(&c, "eval.classifier=/nonexistent/cls.safetensors"));
    lg_status s = run_dir(&c, dir, 0, 0, NULL);
    CHECK(s == LG_ERR_NOT_FOUND && strstr(lg_error_msg(), "eval.classifier") &&
              strstr(lg_error_msg(), "/nonexistent/cls.safetensors"),
          "missing classifier: %s: %s", lg_status_str(s), lg_error_msg());
    snprintf(p, sizeof p, "%s/ckpt_000000001.safetensors", dir);
    CHECK(!file_exists(p), "training ran despite the missing classifier");

    /* eval.ref: a 128-D (cfid) file with cfid off is refused before any
     * step; with cfid on, statistics of another image shape are warned
     * about in the log */
    CHECK_OK(lg_config_set(&c, "eval.classifier="));
    lg_fid_stats fs;
    float feat[3 * LG_CLS_FEAT_DIM]; /* (3, 128) */
    for (int i = 0; i < 3 * LG_CLS_FEAT_DIM; i++) feat[i] = (float)((i * 37) % 11);
    CHECK_OK(lg_fid_stats_compute(&fs, feat, 3, LG_CLS_FEAT_DIM));
    char ref[256], refset[300];
    snprintf(ref, sizeof ref, "%s/ref128.safetensors", g_tmp);
    CHECK_OK(lg_fid_stats_save(&fs, ref, "lipgan Fashion-MNIST classifier fc1 features (128); data /x (cifar10, "
                                         "train, 3x32x32), first 3 of 3 images"));
    lg_fid_stats_free(&fs);
    snprintf(refset, sizeof refset, "eval.ref=%s", ref);
    CHECK_OK(lg_config_set(&c, refset));
    CHECK_OK(lg_config_set(&c, "eval.metrics=classes"));
    snprintf(dir, sizeof dir, "%s/fmrun3", g_tmp);
    s = run_dir(&c, dir, 0, 0, NULL);
    CHECK(s == LG_ERR_INVALID_ARG && strstr(lg_error_msg(), "eval.ref") && strstr(lg_error_msg(), "for cfid"),
          "unused eval.ref: %s: %s", lg_status_str(s), lg_error_msg());
    snprintf(p, sizeof p, "%s/ckpt_000000001.safetensors", dir);
    CHECK(!file_exists(p), "training ran despite the unused eval.ref");
    CHECK_OK(lg_config_set(&c, "eval.metrics=cfid"));
    snprintf(dir, sizeof dir, "%s/fmrun4", g_tmp);
    char *logbuf = NULL;
    CHECK_OK(run_logged(&c, dir, 0, 0, NULL, &logbuf));
    CHECK(logbuf && strstr(logbuf, "holds statistics of 3x32x32 images but the generator makes 1x32x32") != NULL,
          "no shape warning in the log: %.400s", logbuf ? logbuf : "");
    free(logbuf);
}

static void test_config_keys(void) {
    lg_config c;
    lg_config_default(&c);
    CHECK(c.log.spectra_every == 500 && c.log.tensorboard == 1 && c.eval.every == 0 &&
              !strcmp(c.eval.metrics, "auto") && c.eval.n == 0,
          "defaults: spectra_every %lld, tensorboard %d, eval.every %lld, metrics %s", (long long)c.log.spectra_every,
          c.log.tensorboard, (long long)c.eval.every, c.eval.metrics);
    const char *keys[] = {"log.spectra_every", "log.tensorboard", "eval.every", "eval.metrics", "eval.n",
                          "eval.ref_n", "eval.ref", "eval.classifier", "eval.inception", NULL};
    for (int i = 0; keys[i]; i++) {
        const lg_cfg_key *k = lg_config_find_key(keys[i]);
        CHECK(k && k->help && k->help[0], "key %s missing or without help", keys[i]);
    }
    /* set-time errors */
    CHECK(lg_config_set(&c, "log.spectra_every=-1") == LG_ERR_INVALID_ARG &&
              strstr(lg_error_msg(), "log.spectra_every"), "negative spectra_every: %s", lg_error_msg());
    CHECK(lg_config_set(&c, "log.tensorboard=maybe") == LG_ERR_INVALID_ARG &&
              strstr(lg_error_msg(), "log.tensorboard"), "bad bool: %s", lg_error_msg());
    CHECK(lg_config_set(&c, "eval.every=x") == LG_ERR_INVALID_ARG && strstr(lg_error_msg(), "eval.every"),
          "bad int: %s", lg_error_msg());
    /* validation: each case's message names the key */
    struct { const char *set[6]; const char *want; } cases[] = {
        {{"log.every=100", "log.spectra_every=250", NULL}, "log.spectra_every"},
        {{"log.every=100", "eval.every=150", NULL}, "eval.every"},
        {{"eval.metrics=cfid,bogus", NULL}, "eval.metrics"},
        {{"data.format=ring8", "model.g.arch=mlp", "model.d.arch=mlp", "eval.metrics=cfid", "eval.every=100"},
         "eval.metrics"},
        {{"data.format=fashion-mnist", "data.image_size=32", "eval.metrics=toy", "eval.every=100", NULL},
         "eval.metrics"},
        {{"eval.every=100", "eval.metrics=cfid", NULL}, "eval.metrics"},      /* cifar10: 3 channels */
        {{"eval.every=100", NULL}, "eval.every"},                             /* cifar10, auto, no Inception */
        {{"eval.every=100", "eval.metrics=fid", NULL}, "eval.inception"},
        {{"eval.n=1", NULL}, "eval.n"},
        /* fewer samples than IS splits: refused now, not at the first evaluation */
        {{"eval.every=100", "eval.metrics=is,fid", "eval.inception=/some/w.safetensors", "eval.n=9", NULL},
         "eval.n: 9 samples are fewer than the Inception Score's 10 splits"},
        {{"eval.every=100", "eval.inception=/some/w.safetensors", "eval.n=5", NULL}, "eval.n"}, /* auto: is,fid */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        lg_config_default(&c);
        for (int j = 0; cases[i].set[j]; j++) CHECK_OK(lg_config_set(&c, cases[i].set[j]));
        lg_error_clear();
        lg_status s = lg_config_validate(&c);
        CHECK(s == LG_ERR_INVALID_ARG && strstr(lg_error_msg(), cases[i].want),
              "case %zu: %s (%s), want a message naming %s", i, lg_status_str(s), lg_error_msg(), cases[i].want);
    }
    /* and what is fine */
    lg_config_default(&c);
    CHECK_OK(lg_config_set(&c, "log.every=50"));
    CHECK_OK(lg_config_set(&c, "log.spectra_every=250"));
    CHECK_OK(lg_config_set(&c, "eval.every=0"));
    CHECK_OK(lg_config_validate(&c));
    CHECK_OK(lg_config_set(&c, "eval.inception=/some/inception.safetensors"));
    CHECK_OK(lg_config_set(&c, "eval.every=500"));
    CHECK_OK(lg_config_validate(&c));
    CHECK_OK(lg_config_set(&c, "eval.n=10")); /* one sample per IS split */
    CHECK_OK(lg_config_validate(&c));
    CHECK_OK(lg_config_set(&c, "eval.metrics=fid,kid"));
    CHECK_OK(lg_config_set(&c, "eval.n=2")); /* no IS: 2 is enough */
    CHECK_OK(lg_config_validate(&c));
    CHECK_OK(lg_config_set(&c, "eval.metrics=auto"));
    CHECK_OK(lg_config_set(&c, "eval.n=0"));
    unsigned m = 0;
    CHECK_OK(lg_config_eval_metrics(&c, 3, 32, 32, &m));
    CHECK(m == (LG_EVAL_IS | LG_EVAL_FID), "auto with Inception weights: %#x", m);
    CHECK_OK(lg_config_set(&c, "eval.metrics=none"));
    CHECK_OK(lg_config_validate(&c));
    CHECK_OK(lg_config_eval_metrics(&c, 3, 32, 32, &m));
    CHECK(m == 0, "none: %#x", m);
    toy_config(&c);
    CHECK_OK(lg_config_set(&c, "eval.metrics=auto"));
    CHECK_OK(lg_config_eval_metrics(&c, 2, 1, 1, &m));
    CHECK(m == LG_EVAL_TOY, "auto for toys: %#x", m);
    /* the printed config reads back with the new keys */
    CHECK_OK(lg_config_set(&c, "eval.metrics=toy"));
    char *y = lg_config_to_yaml(&c);
    lg_config d;
    lg_config_default(&d);
    CHECK(y != NULL, "to_yaml");
    if (y) CHECK_OK(lg_config_load_string(&d, y, strlen(y), "printed"));
    CHECK(d.log.spectra_every == 4 && d.eval.every == 6 && !strcmp(d.eval.metrics, "toy") && d.eval.n == 300,
          "round trip of the new keys");
    free(y);
}

/* The watchers use their own contexts and memory: with a record and an
 * evaluation at every row, the training context still stops allocating
 * after the first steps. */
typedef struct alloc_log {
    size_t n[16];
    int k;
} alloc_log;

static void alloc_hook(lg_trainer *t, const lg_train_stats *s, void *user) {
    (void)s;
    alloc_log *a = user;
    if (a->k < 16) a->n[a->k++] = lg_ctx_sys_allocs(t->ctx);
}

static void test_steady_state(void) {
    char dir[128];
    snprintf(dir, sizeof dir, "%s/steady", g_tmp);
    lg_config c;
    toy_config(&c);
    const char *sets[] = {"train.steps=8", "log.every=1", "log.spectra_every=1", "eval.every=1", "eval.n=64",
                          "log.samples_every=2", NULL};
    for (int i = 0; sets[i]; i++) CHECK_OK(lg_config_set(&c, sets[i]));
    lg_trainer *t;
    CHECK_OK(lg_trainer_create(&t, &c));
    if (!t) return;
    alloc_log a = {{0}, 0};
    lg_train_opts o = {.out_dir = dir, .after_step = alloc_hook, .user = &a};
    CHECK_OK(lg_trainer_run(t, &o));
    CHECK(a.k == 8, "%d steps", a.k);
    for (int i = 3; i < a.k; i++)
        CHECK(a.n[i] == a.n[2], "training context allocations grew: %zu after step 3, %zu after step %d", a.n[2],
              a.n[i], i + 1);
    lg_trainer_free(t);
}

/* With gradient clamping on, each logged row carries the largest gradient
 * sigma0/sigma1 of the network's last update (thesis 5.5.3) and how many
 * layers were clamped, and the ratio is that of the clamp states. */
static void test_gclamp_logged(void) {
    char dir[128];
    snprintf(dir, sizeof dir, "%s/gclamp", g_tmp);
    lg_config c;
    toy_config(&c);
    CHECK_OK(lg_config_set(&c, "lipschitz.d.clamp_ratio=1.5"));
    lg_trainer *t = NULL;
    CHECK_OK(run_dir(&c, dir, 0, 0, &t));
    cJSON *rows[16];
    int n = read_rows(dir, rows, 16);
    CHECK(n >= 1, "%d rows", n);
    if (n >= 1 && t) {
        const cJSON *last = rows[n - 1];
        double r = num(last, "gclamp_D_ratio_max"), k = num(last, "gclamp_D_clamped");
        double want = 0.0;
        for (int i = 0; i < t->xd.nl; i++) {
            CHECK_OK(lg_gclamp_read(&t->xd.gc[i]));
            const lg_gclamp_state *g = &t->xd.gc[i];
            if (g->sigma1 > 0 && g->sigma0 / g->sigma1 > want) want = g->sigma0 / g->sigma1;
        }
        CHECK(isfinite(r) && r > 0 && fabs(r - want) <= 1e-6 * want, "gclamp_D_ratio_max %g vs %g", r, want);
        CHECK(k >= 0 && k <= t->xd.nl, "gclamp_D_clamped %g", k);
        CHECK(!has(last, "gclamp_G_ratio_max"), "G has no clamping");
    }
    for (int i = 0; i < n; i++) cJSON_Delete(rows[i]);
    lg_trainer_free(t);
}

/* A critic without SN or Toeplitz has no sigma estimate: the row says
 * null, not 0 (a 0 drew a flat curve in the report). */
static void test_no_sigma_is_null(void) {
    char dir[128];
    snprintf(dir, sizeof dir, "%s/nosn", g_tmp);
    lg_config c;
    toy_config(&c);
    CHECK_OK(lg_config_set(&c, "lipschitz.d.sn=false"));
    CHECK_OK(lg_config_set(&c, "log.spectra_every=0"));
    CHECK_OK(lg_config_set(&c, "eval.every=0"));
    CHECK_OK(run_dir(&c, dir, 0, 0, NULL));
    cJSON *rows[16];
    int n = read_rows(dir, rows, 16);
    CHECK(n >= 1, "%d rows", n);
    for (int i = 0; i < n; i++) {
        const char *k[3] = {"sigma_d_min", "sigma_d_mean", "sigma_d_max"};
        for (int j = 0; j < 3; j++)
            CHECK(cJSON_IsNull(cJSON_GetObjectItemCaseSensitive(rows[i], k[j])), "row %d: %s is not null", i, k[j]);
        cJSON_Delete(rows[i]);
    }
}

/* Under the critic schedule the progress line says how many D updates
 * each logged step ran, and every row counts the D updates applied. */
static void test_boost_logged(void) {
    char dir[128];
    snprintf(dir, sizeof dir, "%s/boost", g_tmp);
    lg_config c;
    toy_config(&c);
    const char *sets[] = {"train.steps=4", "log.every=1", "log.spectra_every=0", "eval.every=0",
                          "train.n_dis_boost=3", "train.n_dis_boost_first=1", "train.n_dis_boost_every=3", NULL};
    for (int i = 0; sets[i]; i++) CHECK_OK(lg_config_set(&c, sets[i]));
    char *log = NULL;
    CHECK_OK(run_logged(&c, dir, 0, 0, NULL, &log));
    /* steps 1..4 run after 0..3 G updates: boosted at 0 (first) and 3 (every) */
    CHECK(log && strstr(log, "step 1/4 ") && strstr(strstr(log, "step 1/4 "), "n_dis 3") &&
              strstr(strstr(log, "step 2/4 "), "n_dis 1") && strstr(strstr(log, "step 4/4 "), "n_dis 3"),
          "progress lines:\n%s", log ? log : "");
    free(log);
    cJSON *rows[8];
    int n = read_rows(dir, rows, 8);
    const double want[4] = {3, 4, 5, 8};
    CHECK(n == 4, "%d rows", n);
    for (int i = 0; i < n && i < 4; i++)
        CHECK(num(rows[i], "d_updates") == want[i], "row %d: d_updates %g, want %g", i, num(rows[i], "d_updates"),
              want[i]);
    for (int i = 0; i < n; i++) cJSON_Delete(rows[i]);
}

int main(void) {
    if (tf_mkdtemp(g_tmp, sizeof g_tmp) != 0) {
        fprintf(stderr, "mkdtemp failed\n");
        return 1;
    }
    LG_TEST_RUN(test_config_keys);
    LG_TEST_RUN(test_monitored_run);
    LG_TEST_RUN(test_resume_same_spectra);
    LG_TEST_RUN(test_resume_conv_monitor);
    LG_TEST_RUN(test_monitor_state_compat);
    LG_TEST_RUN(test_classifier_eval);
    LG_TEST_RUN(test_steady_state);
    LG_TEST_RUN(test_gclamp_logged);
    LG_TEST_RUN(test_no_sigma_is_null);
    LG_TEST_RUN(test_boost_logged);
    tf_rm_rf(g_tmp);
    return lg_test_summary("test_train_monitor");
}
