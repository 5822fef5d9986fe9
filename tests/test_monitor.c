/* The spectral monitor (lipgan/monitor.h): per-layer spectra and norms
 * against independent computations (LAPACK on the weight, the dense matrix
 * of each convolution built by applying it to basis vectors), SN/Toeplitz
 * estimates converging to the exact values, the network bounds, collapse
 * detection on a constructed collapse, the JSON fragment, and spectra.bin
 * (round trip, partial last record, corruption, resume). */
#include <cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lg_test.h"
#include "lipgan/fileio.h"
#include "lipgan/lipschitz.h"
#include "lipgan/monitor.h"
#include "lipgan/ops.h"

static char g_dir[256];

static lg_model *make(lg_model_arch arch, lg_net_role role, lg_lip_kind lip, uint64_t seed) {
    lg_model_spec s;
    lg_model_spec_default(&s, arch, role);
    s.img_c = 3;
    s.img_size = 8;
    s.sn_iters = 10; /* so that the warm-up forwards converge the estimates */
    s.ch = arch == LG_ARCH_RESNET ? 8 : 2;
    s.z_dim = 6;
    s.lip = lip;
    s.toep_k = 2.0f;
    lg_model *m = NULL;
    CHECK_OK(lg_model_create(&m, &s, NULL, seed));
    return m;
}

/* sigma of a layer's operator from its dense matrix: the layer applied to
 * every basis vector of its input space (one batch), then LAPACK. */
static double dense_op_norm(const lg_layer_info *L) {
    lg_ctx *ctx;
    if (lg_ctx_create(&ctx, NULL) != LG_OK) return NAN;
    const int64_t *ws = L->w->shape;
    int cin = (int)(L->kind == LG_LAYER_CONVT ? ws[0] : ws[1]);
    int64_t nin = (int64_t)cin * L->in_h * L->in_w;
    float *basis = calloc((size_t)(nin * nin), sizeof(float)); /* (nin, cin, h, w) */
    for (int64_t i = 0; i < nin; i++) basis[i * nin + i] = 1.0f;
    lg_tensor *x = lg_from_host(ctx, basis, 4, (int64_t[]){nin, cin, L->in_h, L->in_w});
    lg_tensor *w = lg_detach(ctx, L->w, 0);
    lg_tensor *y = L->kind == LG_LAYER_CONVT ? lg_conv_transpose2d(ctx, x, w, NULL, L->stride, L->pad, 0)
                                             : lg_conv2d(ctx, x, w, NULL, L->stride, L->pad);
    double out = NAN;
    if (y) {
        int64_t nout = y->numel / nin;
        float *h = malloc((size_t)y->numel * sizeof(float)); /* (nin, nout) = T^T */
        double *s = malloc((size_t)(nin < nout ? nin : nout) * sizeof(double));
        lg_to_host(ctx, y, h);
        if (lg_svd_values(h, nin, nout, s) == LG_OK) out = s[0];
        free(h);
        free(s);
    }
    free(basis);
    lg_ctx_free(ctx);
    return out;
}

static void host_weight(const lg_layer_info *L, float *w) {
    memcpy(w, L->w->data, (size_t)L->w->numel * sizeof(float));
}

/* Everything of one record against independent computations. */
static void check_layers(lg_monitor *mon, lg_model *m, const char *net, double op_rtol, const char *what) {
    int n;
    const lg_monitor_layer *ls = lg_monitor_last(mon, net, &n);
    CHECK(ls && n == lg_model_num_layers(m), "%s: %d layers recorded", what, n);
    if (!ls) return;
    for (int i = 0; i < n; i++) {
        const lg_layer_info *L = lg_model_layer(m, i);
        const lg_monitor_layer *r = &ls[i];
        CHECK(strcmp(r->name, L->name) == 0, "%s: layer %d name %s vs %s", what, i, r->name, L->name);
        float *w = malloc((size_t)L->w->numel * sizeof(float));
        host_weight(L, w);
        lg_spectrum_info info;
        int64_t rows, cols;
        CHECK_OK(lg_weight_mat_dims(L->w->ndim, L->w->shape, L->out_dim, &rows, &cols));
        double *sv = malloc((size_t)(rows < cols ? rows : cols) * sizeof(double));
        CHECK_OK(lg_spectrum_analyze(w, L->w->ndim, L->w->shape, L->out_dim, 0, 1, 0, &info, sv));
        CHECK(r->rows == rows && r->cols == cols && r->nsv == (rows < cols ? rows : cols),
              "%s %s: dims %lldx%lld", what, L->name, (long long)r->rows, (long long)r->cols);
        int bad = 0;
        for (int k = 0; k < r->nsv; k++) bad += fabs(r->sv[k] - sv[k]) > 1e-5 * sv[0];
        CHECK(bad == 0, "%s %s: %d singular values differ from LAPACK", what, L->name, bad);
        CHECK(fabs(r->sigma_exact - info.sigma_exact) <= 1e-9 * info.sigma_exact &&
                  fabs(r->r - info.r) <= 1e-9 * info.r &&
                  (isinf(info.ratio01) ? isinf(r->ratio01) : fabs(r->ratio01 - info.ratio01) <= 1e-9 * info.ratio01),
              "%s %s: sigma/r/ratio", what, L->name);
        double auc = 0;
        for (int k = 0; k < r->nsv; k++) auc += sv[k] / sv[0];
        auc /= r->nsv;
        CHECK(fabs(r->auc - auc) < 1e-9, "%s %s: auc %g vs %g", what, L->name, r->auc, auc);
        if (L->kind == LG_LAYER_LINEAR) {
            CHECK(r->op_norm == r->sigma_exact, "%s %s: linear op norm is sigma", what, L->name);
        } else {
            double ref = dense_op_norm(L);
            CHECK(r->op_norm <= ref * (1 + 1e-5) && r->op_norm >= ref * (1 - op_rtol),
                  "%s %s: conv op norm %.7g vs dense %.7g", what, L->name, r->op_norm, ref);
        }
        if (L->lip == LG_LIP_NONE) {
            CHECK(isnan(r->sigma_est) && r->eff_norm == r->op_norm, "%s %s: no method", what, L->name);
        } else {
            CHECK(fabs(r->eff_norm - L->lip_scale * r->op_norm / r->sigma_est) <= 1e-12 * r->eff_norm,
                  "%s %s: effective norm", what, L->name);
        }
        free(w);
        free(sv);
    }
}

/* Training forwards advance the SN/Toeplitz power iterations (the weights
 * stay fixed), so the estimates converge to the exact values. */
static void warm_up(lg_model *m, int nforward) {
    lg_ctx *ctx;
    CHECK_OK(lg_ctx_create(&ctx, NULL));
    const lg_model_spec *s = lg_model_get_spec(m);
    lg_test_rng r = lg_test_rng_make(5);
    int64_t n = s->role == LG_NET_D ? (int64_t)2 * 3 * s->img_size * s->img_size : 2 * s->z_dim;
    float *x = malloc((size_t)n * sizeof(float));
    lg_test_fill_uniform(&r, x, (size_t)n, -1, 1);
    for (int i = 0; i < nforward; i++) {
        lg_tensor *xt = s->role == LG_NET_D ? lg_from_host(ctx, x, 4, (int64_t[]){2, 3, s->img_size, s->img_size})
                                            : lg_from_host(ctx, x, 2, (int64_t[]){2, s->z_dim});
        CHECK(lg_model_forward(ctx, m, xt, 1) != NULL, "forward: %s", lg_error_msg());
        lg_ctx_reset(ctx);
    }
    free(x);
    lg_ctx_free(ctx);
}

static void test_resnet_d(void) {
    lg_model *d = make(LG_ARCH_RESNET, LG_NET_D, LG_LIP_SN, 11);
    warm_up(d, 60);
    lg_monitor_opts o = lg_monitor_opts_default();
    o.toep_first_iters = 200; /* converged, for the op-norm checks */
    lg_monitor *mon;
    CHECK_OK(lg_monitor_create(&mon, NULL, 10, &o));
    lg_test_rng r = lg_test_rng_make(7);
    float x[8 * 3 * 8 * 8]; /* (8, 3, 8, 8) */
    lg_test_fill_uniform(&r, x, sizeof x / sizeof x[0], -1, 1);
    lg_monitor_summary s;
    CHECK_OK(lg_monitor_record(mon, 5, "D", d, x, 8, &s));
    CHECK(s.recorded == 0, "step 5 is not due with every = 10");
    CHECK_OK(lg_monitor_record(mon, 10, "D", d, x, 8, &s));
    CHECK(s.recorded == 1 && s.step == 10 && s.n_layers == lg_model_num_layers(d), "recorded");
    /* power iteration on a conv converges slowly (its top singular values
     * cluster): within 0.5% after 200 iterations here */
    check_layers(mon, d, "D", 5e-3, "resnet D sn");
    /* SN estimates converged by the training forwards */
    CHECK(s.sn_err_max < 1e-3, "SN estimate vs exact: max rel err %g", s.sn_err_max);
    int n;
    const lg_monitor_layer *ls = lg_monitor_last(mon, "D", &n);
    /* the ResNet bound (monitor.h), by hand from the layer table */
    /* zeroed and bounded: a wrong n (failed below) must not read past ls or e */
    double e[16] = {0};
    for (int i = 0; i < n && i < 16; i++) e[i] = ls[i].eff_norm;
    /* order: b1.c1 b1.c2 b1.sc b2.c1 b2.c2 b2.sc b3.c1 b3.c2 b4.c1 b4.c2 l5 */
    double ref = (0.5 * e[0] * e[1] + 0.5 * e[2]) * (0.5 * e[3] * e[4] + 0.5 * e[5]) * (e[6] * e[7] + 1) *
                 (e[8] * e[9] + 1) * (8.0 / 4) * e[10];
    CHECK(n == 11 && fabs(s.lip_upper - ref) <= 1e-12 * ref, "resnet bound %g vs %g", s.lip_upper, ref);
    double prod = 1;
    for (int i = 0; i < n; i++) prod *= ls[i].eff_norm;
    CHECK(fabs(s.lip_upper_product - prod) <= 1e-12 * prod, "product");
    CHECK(s.lip_lower > 0 && s.lip_lower <= s.lip_upper, "lower %g <= upper %g", s.lip_lower, s.lip_upper);
    /* with converged SN every conv's effective norm is its Toeplitz/reshaped
     * ratio, >= 1 here (the reshaped norm underestimates a conv with padding
     * of a 3x3 kernel), and l5 is exactly 1 */
    CHECK(fabs(e[10] - 1) < 1e-3, "l5 effective norm %g", e[10]);
    lg_monitor_free(mon);
    lg_model_free(d);
}

static void test_toeplitz_and_convt(void) {
    /* CNN D with Toeplitz: sigma_est estimates the conv operator norm, so the
     * effective norm of every conv approaches k = 2 */
    lg_model *d = make(LG_ARCH_CNN, LG_NET_D, LG_LIP_TOEPLITZ, 12);
    warm_up(d, 80);
    lg_monitor_opts o = lg_monitor_opts_default();
    o.toep_first_iters = 300;
    lg_monitor *mon;
    CHECK_OK(lg_monitor_create(&mon, NULL, 1, &o));
    lg_monitor_summary s;
    CHECK_OK(lg_monitor_record(mon, 0, "D", d, NULL, 0, &s));
    check_layers(mon, d, "D", 1e-4, "cnn D toeplitz");
    int n;
    const lg_monitor_layer *ls = lg_monitor_last(mon, "D", &n);
    for (int i = 0; i < n; i++) { /* k = 2 on the convs; the linear l4 is plain SN (thesis 5.5.1) */
        double want = lg_model_layer(d, i)->kind == LG_LAYER_LINEAR ? 1.0 : 2.0;
        CHECK(fabs(ls[i].eff_norm - want) < 5e-3, "toeplitz layer %s effective norm %g, want %g", ls[i].name,
              ls[i].eff_norm, want);
    }
    CHECK(fabs(s.lip_upper - s.lip_upper_product) == 0 && isnan(s.lip_lower), "cnn D: product, no samples");
    lg_monitor_free(mon);
    lg_model_free(d);

    /* CNN G (transposed convs, output dim 1), no method: op norms of the
     * convT operators against their dense matrices; warm starts: the first
     * record runs few iterations, later ones refine the same vector */
    lg_model *g = make(LG_ARCH_CNN, LG_NET_G, LG_LIP_NONE, 13);
    o = lg_monitor_opts_default();
    o.toep_first_iters = 3;
    o.toep_iters = 3;
    CHECK_OK(lg_monitor_create(&mon, NULL, 1, &o));
    for (int k = 0; k < 60; k++) CHECK_OK(lg_monitor_record(mon, k, "G", g, NULL, 0, &s));
    check_layers(mon, g, "G", 1e-3, "cnn G convT (warm-started)");
    CHECK(isnan(s.lip_upper) && isnan(s.sn_err_max), "G: no architecture bound, no estimates");
    lg_monitor_free(mon);
    lg_model_free(g);
}

static lg_status reread(const char *path, lg_spectra_log *log) { return lg_spectra_read(path, log); }

static void test_collapse_and_file(void) {
    lg_model *d = make(LG_ARCH_RESNET, LG_NET_D, LG_LIP_SN, 14);
    char path[512];
    snprintf(path, sizeof path, "%s/%s", g_dir, LG_SPECTRA_FILE);
    lg_monitor *mon;
    CHECK_OK(lg_monitor_create(&mon, g_dir, 100, NULL));
    lg_monitor_summary s;
    for (int64_t step = 0; step <= 300; step += 100) {
        CHECK_OK(lg_monitor_record(mon, step, "D", d, NULL, 0, &s));
        CHECK(s.recorded && s.onsets == 0 && s.warning[0] == '\0', "no collapse at step %lld", (long long)step);
    }
    /* collapse block2.c1: a rank-one weight plus a little noise */
    const lg_layer_info *L = NULL;
    int li = -1;
    for (int i = 0; i < lg_model_num_layers(d); i++)
        if (!strcmp(lg_model_layer(d, i)->name, "block2.c1")) L = lg_model_layer(d, i), li = i;
    CHECK(L != NULL, "block2.c1 exists");
    if (!L) return;
    float *w = L->w->data; /* (8, 8, 3, 3), CPU memory */
    lg_test_rng r = lg_test_rng_make(3);
    float a[8], b[72];
    lg_test_fill_uniform(&r, a, 8, 0.5f, 1.0f);
    lg_test_fill_uniform(&r, b, 72, -1, 1);
    for (int o = 0; o < 8; o++)
        for (int j = 0; j < 72; j++) w[o * 72 + j] = a[o] * b[j] + 1e-3f * lg_test_uniform(&r, -1, 1);
    CHECK_OK(lg_monitor_record(mon, 400, "D", d, NULL, 0, &s));
    CHECK(s.onsets == 1 && s.collapsed == 1, "one onset: %d, %d", s.onsets, s.collapsed);
    CHECK(strstr(s.warning, "block2.c1") && strstr(s.warning, "spectral collapse in D"), "warning: %s", s.warning);
    CHECK(!strcmp(s.stat_min_layer, "block2.c1") && s.stat_min < 0.2, "min layer %s %g", s.stat_min_layer,
          s.stat_min);
    char frag[2048], row[2200], line[1024];
    lg_monitor_summary_json(&s, frag, sizeof frag);
    snprintf(row, sizeof row, "{\"step\":400%s}", frag);
    cJSON *j = cJSON_Parse(row);
    CHECK(j != NULL, "metrics row is JSON: %s", row);
    if (j) {
        const cJSON *wj = cJSON_GetObjectItemCaseSensitive(j, "spec_D_warning");
        const cJSON *mj = cJSON_GetObjectItemCaseSensitive(j, "spec_D_auc_min");
        const cJSON *lj = cJSON_GetObjectItemCaseSensitive(j, "lip_D_lower");
        CHECK(cJSON_IsString(wj) && !strcmp(wj->valuestring, s.warning), "warning in JSON");
        CHECK(cJSON_IsNumber(mj) && fabs(mj->valuedouble - s.stat_min) < 1e-5 * s.stat_min, "auc_min in JSON");
        CHECK(cJSON_IsNull(lj), "no samples: lower bound null");
        cJSON_Delete(j);
    }
    lg_monitor_summary_line(&s, line, sizeof line);
    CHECK(strstr(line, "WARNING: spectral collapse") && strstr(line, "D: auc min"), "line: %s", line);
    /* the line's Lipschitz part: the architecture bound when known; without
     * one (batch norm, G) the layer-norm product is not called an upper bound */
    lg_monitor_summary s2 = s;
    s2.lip_upper = 12.5;
    s2.lip_upper_product = 3.25;
    lg_monitor_summary_line(&s2, line, sizeof line);
    CHECK(strstr(line, "Lip upper est. 12.5") && !strstr(line, "3.25"), "bound known: %s", line);
    s2.lip_upper = NAN;
    lg_monitor_summary_line(&s2, line, sizeof line);
    CHECK(strstr(line, "Lip upper est. n/a (layer-norm product 3.25, no bound)"), "no bound: %s", line);
    CHECK_OK(lg_monitor_record(mon, 500, "D", d, NULL, 0, &s));
    CHECK(s.onsets == 0 && s.collapsed == 1 && s.warning[0] == '\0', "ongoing, no second warning");
    int n;
    const lg_monitor_layer *last = lg_monitor_last(mon, "D", &n);
    double last_auc = last[li].auc;
    lg_monitor_free(mon);

    /* the file: 6 records, the last equal to what the monitor returned */
    lg_spectra_log log;
    CHECK_OK(reread(path, &log));
    CHECK(log.n == 6 && !log.truncated, "%d records", log.n);
    if (log.n == 6) {
        CHECK(log.rec[5].step == 500 && !strcmp(log.rec[5].net, "D") && log.rec[5].n_layers == n, "record 5");
        CHECK(log.rec[5].layers[li].auc == last_auc && log.rec[4].layers[li].event == LG_COLLAPSE_ONSET,
              "auc and event stored");
        CHECK(log.rec[0].wall_time > 1.6e9 && isnan(log.rec[0].lip_lower), "wall time, lower bound NaN");
    }
    /* the independent Python reader agrees (when python3 exists) */
    if (log.n == 6 && system("command -v python3 >/dev/null 2>&1") == 0) {
        char cmd[700];
        static char out[1 << 17];
        snprintf(cmd, sizeof cmd, "python3 tools/read_spectra.py '%s' --json --sv", path);
        FILE *pp = popen(cmd, "r");
        size_t got = pp ? fread(out, 1, sizeof out - 1, pp) : 0;
        out[got] = '\0';
        CHECK(pp && pclose(pp) == 0, "tools/read_spectra.py failed");
        cJSON *j = cJSON_Parse(out);
        const cJSON *recs = cJSON_GetObjectItemCaseSensitive(j, "records");
        CHECK(cJSON_GetArraySize(recs) == 6, "python: %d records", cJSON_GetArraySize(recs));
        const cJSON *r5 = cJSON_GetArrayItem(recs, 5);
        const cJSON *l = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(r5, "layers"), li);
        const cJSON *sv = cJSON_GetObjectItemCaseSensitive(l, "sv");
        CHECK(l && cJSON_GetObjectItemCaseSensitive(l, "auc")->valuedouble == last_auc &&
                  cJSON_GetArraySize(sv) == log.rec[5].layers[li].nsv &&
                  (float)cJSON_GetArrayItem(sv, 0)->valuedouble == log.rec[5].layers[li].sv[0] &&
                  !strcmp(cJSON_GetObjectItemCaseSensitive(l, "name")->valuestring, "block2.c1"),
              "python reader disagrees");
        cJSON_Delete(j);
    }
    lg_spectra_log_free(&log);

    /* a partial last record (crash mid-append) is dropped and reported */
    unsigned char *buf;
    size_t len;
    CHECK_OK(lg_file_read_all(path, &buf, &len));
    FILE *f = fopen(path, "ab");
    fwrite(buf + 16, 1, 100, f); /* the first 100 bytes of record 0 again */
    fclose(f);
    CHECK_OK(reread(path, &log));
    CHECK(log.n == 6 && log.truncated == 1, "partial tail: %d records, truncated %d", log.n, log.truncated);
    lg_spectra_log_free(&log);
    /* a flipped byte inside a complete record is an error */
    unsigned char *bad = malloc(len);
    memcpy(bad, buf, len);
    bad[16 + 200] ^= 0x40;
    CHECK_OK(lg_file_write_atomic(path, bad, len));
    CHECK_STATUS(reread(path, &log), LG_ERR_FORMAT);
    memcpy(bad, buf, len);
    bad[3] = 'X';
    CHECK_OK(lg_file_write_atomic(path, bad, len));
    CHECK_STATUS(reread(path, &log), LG_ERR_FORMAT);
    free(bad);

    /* resume from a checkpoint at step 300: records 400 and 500 go, the
     * detectors are re-armed from 0..300, so the collapsed layer is flagged
     * at the first new record (no warm-up again) */
    CHECK_OK(lg_file_write_atomic(path, buf, len));
    free(buf);
    lg_monitor_opts o = lg_monitor_opts_default();
    o.resume_step = 300;
    CHECK_OK(lg_monitor_create(&mon, g_dir, 100, &o));
    CHECK_OK(reread(path, &log));
    CHECK(log.n == 4 && log.rec[3].step == 300, "resume kept %d records", log.n);
    lg_spectra_log_free(&log);
    CHECK_OK(lg_monitor_record(mon, 400, "D", d, NULL, 0, &s));
    CHECK(s.onsets == 1 && strstr(s.warning, "block2.c1"), "re-armed detector flags at once: %s", s.warning);
    lg_monitor_free(mon);
    CHECK_OK(reread(path, &log));
    CHECK(log.n == 5 && log.rec[4].step == 400, "appended after resume: %d", log.n);
    lg_spectra_log_free(&log);

    /* resuming over a corrupt log moves it aside and starts a new one */
    CHECK_OK(lg_file_write_atomic(path, "LGSPECTR\1\0\0\0\x10\0\0\0XXXXXXXXXXXXXXXX", 32));
    CHECK_OK(lg_monitor_create(&mon, g_dir, 100, &o));
    lg_monitor_free(mon);
    char aside[600];
    snprintf(aside, sizeof aside, "%s.corrupt", path);
    CHECK(access(aside, F_OK) == 0, "corrupt log kept as %s", aside);
    CHECK_OK(reread(path, &log));
    CHECK(log.n == 0, "new log after a corrupt one: %d", log.n);
    lg_spectra_log_free(&log);

    /* a new run replaces the file */
    CHECK_OK(lg_monitor_create(&mon, g_dir, 100, NULL));
    lg_monitor_free(mon);
    CHECK_OK(reread(path, &log));
    CHECK(log.n == 0, "new run starts empty: %d", log.n);
    lg_spectra_log_free(&log);
    CHECK_STATUS(lg_monitor_create(&mon, g_dir, 0, NULL), LG_ERR_INVALID_ARG);
    lg_model_free(d);
}

/* A model that never ran a forward: the estimate must be what its first
 * evaluation forward will divide by (that forward primes the vectors). */
static void test_unprimed(void) {
    for (int k = 0; k < 2; k++) {
        lg_model *d = make(LG_ARCH_CNN, LG_NET_D, k ? LG_LIP_TOEPLITZ : LG_LIP_SN, 20 + k);
        lg_monitor *mon;
        CHECK_OK(lg_monitor_create(&mon, NULL, 1, NULL));
        CHECK_OK(lg_monitor_record(mon, 0, "D", d, NULL, 0, NULL));
        int n;
        const lg_monitor_layer *ls = lg_monitor_last(mon, "D", &n);
        lg_ctx *ctx;
        CHECK_OK(lg_ctx_create(&ctx, NULL));
        float x[2 * 3 * 8 * 8] = {0}; /* (2, 3, 8, 8) */
        lg_tensor *xt = lg_from_host(ctx, x, 4, (int64_t[]){2, 3, 8, 8});
        CHECK(lg_model_forward(ctx, d, xt, 0) != NULL, "eval forward");
        float sig[LG_MODEL_MAX_LAYERS];
        lg_model_sigmas(d, sig, LG_MODEL_MAX_LAYERS);
        for (int i = 0; i < n; i++)
            CHECK(fabs(ls[i].sigma_est - sig[i]) <= 1e-4 * sig[i], "%s %s: estimate %g vs first eval forward %g",
                  k ? "toeplitz" : "sn", ls[i].name, ls[i].sigma_est, sig[i]);
        lg_ctx_free(ctx);
        lg_monitor_free(mon);
        lg_model_free(d);
    }
}

/* The state later records depend on (warm-start vectors, detectors), moved
 * to a fresh monitor, makes it record what the original does; without it a
 * monitor starts cold and records other numbers. */
static void snapshot(lg_monitor *mon, const char *net, lg_model *m, int64_t *words, float **tv) {
    for (int i = 0; i < lg_model_num_layers(m); i++) {
        int64_t n = lg_monitor_state_len(lg_model_layer(m, i));
        tv[i] = n ? malloc((size_t)n * sizeof(float)) : NULL;
        CHECK_OK(lg_monitor_state_get(mon, net, m, i, words + LG_MONITOR_STATE_WORDS * i, tv[i]));
    }
}

static int same_record(lg_monitor *a, lg_monitor *b, const char *net) {
    int na, nb;
    const lg_monitor_layer *x = lg_monitor_last(a, net, &na), *y = lg_monitor_last(b, net, &nb);
    int same = x && y && na == nb;
    for (int i = 0; same && i < na; i++)
        same = !memcmp(&x[i].op_norm, &y[i].op_norm, sizeof(double)) &&
               !memcmp(&x[i].op_norm_delta, &y[i].op_norm_delta, sizeof(double)) &&
               !memcmp(&x[i].eff_norm, &y[i].eff_norm, sizeof(double)) && x[i].event == y[i].event;
    return same;
}

static void test_state_transfer(void) {
    lg_model *d = make(LG_ARCH_CNN, LG_NET_D, LG_LIP_TOEPLITZ, 31), *g = make(LG_ARCH_CNN, LG_NET_G, LG_LIP_NONE, 32);
    lg_model *m[2] = {d, g};
    const char *net[2] = {"D", "G"};
    lg_monitor *a, *b, *cold;
    CHECK_OK(lg_monitor_create(&a, NULL, 1, NULL));
    CHECK_OK(lg_monitor_create(&b, NULL, 1, NULL));
    CHECK_OK(lg_monitor_create(&cold, NULL, 1, NULL));
    /* a net never recorded: a fresh state */
    int64_t w[LG_MONITOR_STATE_WORDS];
    float tv0[4096];
    CHECK(lg_monitor_state_len(lg_model_layer(d, 0)) <= 4096, "tv fits");
    CHECK_OK(lg_monitor_state_get(a, "D", d, 0, w, tv0));
    double rm;
    memcpy(&rm, &w[5], 8);
    CHECK(w[0] == 0 && w[1] == 0 && w[2] == 0 && w[3] == -1 && w[4] == 0 && rm == -INFINITY && tv0[0] == 0,
          "fresh state words %lld %lld %lld %lld %lld %g", (long long)w[0], (long long)w[1], (long long)w[2],
          (long long)w[3], (long long)w[4], rm);
    for (int k = 0; k < 3; k++)
        for (int j = 0; j < 2; j++) CHECK_OK(lg_monitor_record(a, k, net[j], m[j], NULL, 0, NULL));
    for (int j = 0; j < 2; j++) {
        int nl = lg_model_num_layers(m[j]);
        int64_t *words = malloc((size_t)nl * LG_MONITOR_STATE_WORDS * sizeof *words);
        float *tv[LG_MODEL_MAX_LAYERS];
        snapshot(a, net[j], m[j], words, tv);
        int convs = 0;
        for (int i = 0; i < nl; i++) {
            const int64_t *wi = words + LG_MONITOR_STATE_WORDS * i;
            convs += tv[i] != NULL;
            CHECK(wi[1] == 3 && (wi[0] == 1) == (tv[i] != NULL), "%s layer %d: count %lld, have_tv %lld", net[j], i,
                  (long long)wi[1], (long long)wi[0]);
            CHECK_OK(lg_monitor_state_set(b, net[j], m[j], i, wi, tv[i]));
            free(tv[i]);
        }
        CHECK(convs > 0, "%s has conv layers", net[j]);
        free(words);
    }
    for (int k = 3; k < 5; k++)
        for (int j = 0; j < 2; j++) {
            lg_monitor_summary sa, sb, sc;
            CHECK_OK(lg_monitor_record(a, k, net[j], m[j], NULL, 0, &sa));
            CHECK_OK(lg_monitor_record(b, k, net[j], m[j], NULL, 0, &sb));
            CHECK_OK(lg_monitor_record(cold, k, net[j], m[j], NULL, 0, &sc));
            CHECK(same_record(a, b, net[j]) && !memcmp(&sa.lip_upper_product, &sb.lip_upper_product, sizeof(double)),
                  "step %d %s: the monitor given the state records other numbers", k, net[j]);
            if (k == 3)
                CHECK(!same_record(a, cold, net[j]), "step %d %s: a cold monitor records the same (state unused?)", k,
                      net[j]);
        }
    int64_t wa[LG_MONITOR_STATE_WORDS], wb[LG_MONITOR_STATE_WORDS];
    CHECK_OK(lg_monitor_state_get(a, "D", d, 1, wa, tv0));
    CHECK_OK(lg_monitor_state_get(b, "D", d, 1, wb, tv0));
    CHECK(!memcmp(wa, wb, sizeof wa) && wa[1] == 5, "detector words after the records: count %lld vs %lld",
          (long long)wa[1], (long long)wb[1]);

    /* what a damaged checkpoint could hand over is refused */
    const int64_t nin = lg_monitor_state_len(lg_model_layer(d, 0));
    float *z = calloc((size_t)nin, sizeof(float)); /* (nin) */
    int64_t bad[][LG_MONITOR_STATE_WORDS] = {
        {2, 0, 0, -1, 0, 0}, {0, 1, 0, -1, 2, 0}, {0, -1, 0, -1, 0, 0}, {0, 1, 3, -1, 0, 0}, {1, 1, 0, -1, 0, 0}};
    double nanv = NAN;
    for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
        memcpy(&bad[k][5], &rm, 8); /* -inf: fine for count 0 only */
        if (bad[k][1] > 0) bad[k][5] = 0;   /* 0.0 */
        lg_error_clear();
        CHECK(lg_monitor_state_set(b, "D", d, 0, bad[k], z) == LG_ERR_FORMAT && strstr(lg_error_msg(), "monitor state"),
              "bad words %zu accepted (%s)", k, lg_error_msg());
    }
    int64_t nanw[LG_MONITOR_STATE_WORDS] = {0, 1, 0, -1, 0, 0};
    memcpy(&nanw[5], &nanv, 8);
    CHECK(lg_monitor_state_check(nanw, NULL, 0) == LG_ERR_FORMAT, "NaN running max accepted");
    CHECK(lg_monitor_state_set(b, "D", d, 99, wa, NULL) == LG_ERR_INVALID_ARG, "layer 99 accepted");
    free(z);
    lg_monitor_free(a);
    lg_monitor_free(b);
    lg_monitor_free(cold);
    lg_model_free(d);
    lg_model_free(g);
}

int main(void) {
    snprintf(g_dir, sizeof g_dir, "/tmp/lg_test_monitor.%d", (int)getpid());
    char cmd[300];
    snprintf(cmd, sizeof cmd, "mkdir -p '%s'", g_dir);
    if (system(cmd) != 0) return 1;
    LG_TEST_RUN(test_resnet_d);
    LG_TEST_RUN(test_toeplitz_and_convt);
    LG_TEST_RUN(test_unprimed);
    LG_TEST_RUN(test_state_transfer);
    LG_TEST_RUN(test_collapse_and_file);
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", g_dir);
    if (system(cmd) != 0) return 1;
    return lg_test_summary("test_monitor");
}
