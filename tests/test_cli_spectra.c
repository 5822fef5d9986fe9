/* `lipgan spectra` run as a separate process ($BUILD/lipgan; BUILD from the
 * environment, default "build"): table and JSON output against the library
 * computed in-process; a checkpoint-like file: bounds per network (G., D.),
 * raw and normalized by the stored sn_sigma/toep_sigma (times toeplitz_k from
 * its config), read from a run directory too; a NaN weight is exit 3 with
 * one clean line; the conv operator norm of the shipped classifier's real
 * conv weights converges with the default --iters; one-line errors with exit
 * code 3 for a missing, truncated or malformed file. A real (3-step CNN)
 * run: each conv layer's operator norm at its own input size, stride and
 * padding from the checkpoint's config (transposed convs known as such),
 * equal to the library's at that geometry, unlike the one-geometry value,
 * and close to the training monitor's; --input-size overriding it; a
 * checkpoint whose tensors do not match its config refused in one line. */
#include <cJSON.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "lg_test.h"
#include "lipgan/backend_cpu.h"
#include "lipgan/lipschitz.h"
#include "lipgan/model.h"
#include "lipgan/monitor.h"
#include "lipgan/safetensors.h"
#include "train_fixtures.h"

static char g_bin[512];
static char g_data[512];

static int run_cli(const char *args, int merge, char *out, size_t cap) {
    return lg_test_run_cli(g_bin, args, merge, out, cap);
}

static char g_out[1 << 18];

static void test_table(void) {
    char args[1024];
    snprintf(args, sizeof args, "spectra '%s/ref/gp.safetensors' --input-size 5 --filter _w", g_data);
    int rc = run_cli(args, 0, g_out, sizeof g_out);
    CHECK(rc == 0, "exit %d: %s", rc, g_out);
    CHECK(strstr(g_out, "conv_w") && strstr(g_out, "lin_w") && strstr(g_out, "tsuzuku"),
          "table misses rows or columns: %s", g_out);
    CHECK(!strstr(g_out, "real"), "--filter _w printed 'real'");
    CHECK(strstr(g_out, "product of per-layer norms"), "no upper bound line");
    /* --svals: every singular value under the row, descending, the first
     * sigma and first / second s0/s1 as the row prints them */
    snprintf(args, sizeof args, "spectra '%s/ref/gp.safetensors' --input-size 5 --filter conv_w --svals", g_data);
    rc = run_cli(args, 0, g_out, sizeof g_out);
    double sigma = 0, ratio = 0, sv[8];
    int nsv = 0;
    const char *row = strstr(g_out, "\nconv_w "), *lst = row ? strstr(row, "  singular values:") : NULL;
    if (row && sscanf(row, " conv_w (4,3,3,3) %*f %lf %lf", &sigma, &ratio) == 2 && lst) {
        const char *q = lst + strlen("  singular values:");
        for (int k; nsv < 8 && sscanf(q, "%lf%n", &sv[nsv], &k) == 1; q += k) nsv++;
    }
    int desc = nsv == 4;
    for (int k = 1; desc && k < nsv; k++) desc = sv[k] <= sv[k - 1];
    CHECK(rc == 0 && desc && fabs(sv[0] - sigma) <= 1e-4 * sigma && fabs(sv[0] / sv[1] - ratio) <= 2e-3 * ratio,
          "--svals: exit %d, %d values (want 4, descending), first %g vs sigma %g, ratio %g: %s", rc, nsv,
          nsv ? sv[0] : 0.0, sigma, ratio, g_out);
}

static double num(const cJSON *o, const char *k) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsNumber(v) ? v->valuedouble : NAN;
}

static void test_json(void) {
    /* one thread on both sides: the same sums, so the same iterates (a
     * one-image conv splits its GEMM by rows over the threads) */
    lg_cpu_set_threads(1);
    char args[1024], path[600];
    snprintf(path, sizeof path, "%s/ref/gp.safetensors", g_data);
    snprintf(args, sizeof args, "spectra '%s' --json --threads 1 --input-size 6 --stride 2 --pad 1 --iters 3000",
             path);
    int rc = run_cli(args, 0, g_out, sizeof g_out);
    CHECK(rc == 0, "exit %d", rc);
    cJSON *root = cJSON_Parse(g_out);
    CHECK(root != NULL, "output is not JSON: %.200s", g_out);
    if (!root) return;
    const cJSON *arr = cJSON_GetObjectItemCaseSensitive(root, "tensors");
    CHECK(cJSON_IsArray(arr), "no tensors array");
    lg_st_file *f;
    CHECK_OK(lg_st_open(&f, path));
    int seen = 0;
    double upper = 1.0;
    const cJSON *e;
    cJSON_ArrayForEach(e, arr) {
        const char *name = cJSON_GetObjectItemCaseSensitive(e, "name")->valuestring;
        const lg_st_tensor *t = lg_st_find(f, name);
        CHECK(t && (t->ndim == 2 || t->ndim == 4), "listed %s", name);
        if (!t) continue;
        float *w = malloc(sizeof(float) * t->numel);
        CHECK_OK(lg_st_get_f32(f, name, -1, NULL, w));
        lg_spectrum_info info;
        double sv[128];
        CHECK_OK(lg_spectrum_analyze(w, t->ndim, t->shape, 0, 0, 1, 0, &info, sv));
        CHECK(fabs(num(e, "sigma_exact") - info.sigma_exact) <= 1e-12 * info.sigma_exact,
              "%s: sigma %.17g vs %.17g", name, num(e, "sigma_exact"), info.sigma_exact);
        CHECK(fabs(num(e, "r") - info.r) <= 1e-12 * info.r, "%s: r", name);
        const cJSON *s = cJSON_GetObjectItemCaseSensitive(e, "singular_values");
        CHECK(cJSON_GetArraySize(s) == (t->shape[0] < info.cols ? t->shape[0] : info.cols),
              "%s: %d singular values", name, cJSON_GetArraySize(s));
        double norm = info.sigma_exact;
        if (t->ndim == 4) {
            const cJSON *c = cJSON_GetObjectItemCaseSensitive(e, "conv");
            CHECK(cJSON_IsObject(c), "%s: no conv object", name);
            lg_conv_norms cn;
            CHECK_OK(lg_conv_norms_compute(w, (int)t->shape[0], (int)t->shape[1], (int)t->shape[2],
                                           (int)t->shape[3], 6, 6, 2, 1, 3000, 1e-6, 0, &cn));
            CHECK(fabs(num(c, "op_norm") - cn.op_norm) <= 1e-9 * cn.op_norm, "%s: op norm %g vs %g",
                  name, num(c, "op_norm"), cn.op_norm);
            CHECK(num(c, "tsuzuku") >= num(c, "op_norm"), "%s: Tsuzuku below op norm", name);
            norm = cn.op_norm;
        }
        upper *= norm;
        free(w);
        seen++;
    }
    CHECK(seen >= 10, "only %d tensors listed", seen);
    double got = num(root, "lipschitz_upper_product");
    CHECK(fabs(got - upper) <= 1e-9 * upper, "upper bound %g vs %g", got, upper);
    lg_st_close(f);
    cJSON_Delete(root);
}


/* A checkpoint-like file: G.fc0.weight (6, 4) without normalization; D with
 * an SN linear layer D.l0 (1, 8) and a Toeplitz conv D.c1 (2, 3, 3, 3), the
 * stored sigmas next to them, and a config with lipschitz.d.toeplitz_k 2
 * (a Toeplitz network scales its convolutions by k; its linear layers are
 * plain SN, as in the thesis).
 * nan: G.fc0.weight[5] = NaN. */
static float g_gw[24], g_dl[8], g_dc[54];
static const float g_sn = 0.5f, g_toep = 3.0f;

static int make_ckpt(const char *path, int nan) {
    lg_test_rng r = lg_test_rng_make(11);
    lg_test_fill_uniform(&r, g_gw, 24, -1, 1);
    lg_test_fill_uniform(&r, g_dl, 8, -1, 1);
    lg_test_fill_uniform(&r, g_dc, 54, -1, 1);
    float gw[24];
    memcpy(gw, g_gw, sizeof gw);
    if (nan) gw[5] = NAN;
    float bias[2] = {0.1f, 0.2f}, u[2] = {0.6f, 0.8f};
    lg_st_writer *w;
    lg_status s = lg_st_writer_create(&w);
    if (s != LG_OK) return -1;
    s = lg_st_writer_add_meta(w, "format", "lipgan-checkpoint-1");
    if (!s) s = lg_st_writer_add_meta(w, "config", "lipschitz:\n  d: {toeplitz_k: 2}\n");
    if (!s) s = lg_st_writer_add_f32(w, "G.fc0.weight", 2, (int64_t[]){6, 4}, gw);
    if (!s) s = lg_st_writer_add_f32(w, "D.l0.weight", 2, (int64_t[]){1, 8}, g_dl);
    if (!s) s = lg_st_writer_add_f32(w, "D.c1.weight", 4, (int64_t[]){2, 3, 3, 3}, g_dc);
    if (!s) s = lg_st_writer_add_f32(w, "D.c1.bias", 1, (int64_t[]){2}, bias);
    if (!s) s = lg_st_writer_add_f32(w, "D.l0.sn_u", 1, (int64_t[]){1}, u);
    if (!s) s = lg_st_writer_add_f32(w, "D.l0.sn_sigma", 1, (int64_t[]){1}, &g_sn);
    if (!s) s = lg_st_writer_add_f32(w, "D.c1.toep_u", 1, (int64_t[]){2}, u);
    if (!s) s = lg_st_writer_add_f32(w, "D.c1.toep_sigma", 1, (int64_t[]){1}, &g_toep);
    if (!s) s = lg_st_writer_write(w, path, 0);
    lg_st_writer_free(w);
    return s == LG_OK ? 0 : -1;
}

static char g_tmp[64];

static void test_checkpoint(void) {
    char ck[256], args[1024];
    snprintf(ck, sizeof ck, "%s/ck.safetensors", g_tmp);
    CHECK(make_ckpt(ck, 0) == 0, "cannot write %s: %s", ck, lg_error_msg());
    /* the library's numbers */
    lg_spectrum_info ig, il;
    double sv[8];
    CHECK_OK(lg_spectrum_analyze(g_gw, 2, (int64_t[]){6, 4}, 0, 0, 1, 0, &ig, sv));
    CHECK_OK(lg_spectrum_analyze(g_dl, 2, (int64_t[]){1, 8}, 0, 0, 1, 0, &il, sv));
    lg_conv_norms cn;
    CHECK_OK(lg_conv_norms_compute(g_dc, 2, 3, 3, 3, 6, 6, 1, 1, 3000, 1e-6, 0, &cn));
    const double d_raw = il.sigma_exact * cn.op_norm;
    const double d_norm = (il.sigma_exact / g_sn) * (2.0 * cn.op_norm / g_toep); /* k on the conv only */

    snprintf(args, sizeof args, "spectra '%s' --json --input-size 6 --iters 3000", ck);
    int rc = run_cli(args, 0, g_out, sizeof g_out);
    CHECK(rc == 0, "checkpoint json: exit %d: %.300s", rc, g_out);
    cJSON *root = cJSON_Parse(g_out);
    CHECK(root != NULL, "not JSON: %.200s", g_out);
    if (root) {
        CHECK(!cJSON_GetObjectItemCaseSensitive(root, "lipschitz_upper_product"),
              "a checkpoint's bound must not multiply G's and D's layers together");
        const cJSON *st = cJSON_GetObjectItemCaseSensitive(root, "weights");
        CHECK(cJSON_IsString(st) && !strcmp(st->valuestring, "raw"), "JSON says the weights are raw");
        const cJSON *nets = cJSON_GetObjectItemCaseSensitive(root, "networks");
        const cJSON *g = cJSON_GetObjectItemCaseSensitive(nets, "G"), *d = cJSON_GetObjectItemCaseSensitive(nets, "D");
        CHECK(cJSON_IsObject(g) && cJSON_IsObject(d), "networks G and D");
        CHECK(fabs(num(g, "lipschitz_upper_product") - ig.sigma_exact) <= 1e-9 * ig.sigma_exact, "G bound %g vs %g",
              num(g, "lipschitz_upper_product"), ig.sigma_exact);
        CHECK(!cJSON_GetObjectItemCaseSensitive(g, "lipschitz_upper_product_normalized") &&
                  num(g, "normalized_layers") == 0,
              "G has no stored sigma, so no normalized bound");
        CHECK(fabs(num(d, "lipschitz_upper_product") - d_raw) <= 1e-9 * d_raw, "D raw bound %g vs %g",
              num(d, "lipschitz_upper_product"), d_raw);
        CHECK(fabs(num(d, "lipschitz_upper_product_normalized") - d_norm) <= 1e-6 * d_norm,
              "D normalized bound %g vs %g (norm / stored sigma per layer, times k for the conv)",
              num(d, "lipschitz_upper_product_normalized"), d_norm);
        CHECK(num(d, "normalized_layers") == 2 && num(d, "layers") == 2, "D: 2 of 2 layers normalized");
        const cJSON *e, *arr = cJSON_GetObjectItemCaseSensitive(root, "tensors");
        int seen = 0;
        cJSON_ArrayForEach(e, arr) {
            const char *name = cJSON_GetObjectItemCaseSensitive(e, "name")->valuestring;
            const cJSON *nz = cJSON_GetObjectItemCaseSensitive(e, "normalization");
            if (!strcmp(name, "D.c1.weight")) {
                const cJSON *k = cJSON_GetObjectItemCaseSensitive(nz, "kind");
                CHECK(cJSON_IsString(k) && !strcmp(k->valuestring, "toeplitz") && num(nz, "scale") == 2.0 &&
                          fabs(num(nz, "norm") - 2.0 * cn.op_norm / g_toep) <= 1e-6 * cn.op_norm,
                      "D.c1.weight normalization");
                seen++;
            } else if (!strcmp(name, "G.fc0.weight")) {
                CHECK(nz == NULL, "G.fc0.weight has no normalization");
                seen++;
            }
        }
        CHECK(seen == 2, "tensors listed: %d", seen);
        cJSON_Delete(root);
    }
    /* the table: raw weights said, one line per network */
    snprintf(args, sizeof args, "spectra '%s' --input-size 6", ck);
    rc = run_cli(args, 0, g_out, sizeof g_out);
    CHECK(rc == 0 && strstr(g_out, "weights: the raw stored ones") && strstr(g_out, "  G     raw ") &&
              strstr(g_out, "  D     raw ") && strstr(g_out, "normalized ") && strstr(g_out, " normed\n"),
          "checkpoint table: exit %d: %s", rc, g_out);
    /* its config has no data.shape (not written by lipgan train): no
     * networks to take geometry from, the defaults, no warning */
    snprintf(args, sizeof args, "spectra '%s' --filter D.c1", ck);
    rc = run_cli(args, 1, g_out, sizeof g_out);
    CHECK(rc == 0 && !strstr(g_out, "warning") && strstr(g_out, "32x32 s1 p1 flag") &&
              strstr(g_out, "the defaults of --input-size"),
          "config without data.shape: exit %d: %s", rc, g_out);
    rc = run_cli("spectra --help", 0, g_out, sizeof g_out);
    CHECK(rc == 0 && strstr(g_out, "OWN input size") && strstr(g_out, "EVERY conv layer") &&
              !strstr(g_out, "one geometry"),
          "--help explains the geometry rule");
    CHECK(rc == 0 && strstr(g_out, "RAW weights") && strstr(g_out, "sn_sigma") && strstr(g_out, "toep_sigma") &&
              strstr(g_out, "RUN_DIR"),
          "--help explains raw vs normalized and run directories");

    /* a run directory: its newest checkpoint */
    char dir[256], p[300];
    snprintf(dir, sizeof dir, "%s/run", g_tmp);
    CHECK(mkdir(dir, 0700) == 0, "mkdir %s", dir);
    snprintf(args, sizeof args, "spectra '%s'", dir);
    rc = run_cli(args, 1, g_out, sizeof g_out);
    CHECK(rc == 3 && strstr(g_out, "no checkpoint"), "run directory without a checkpoint: exit %d: %s", rc, g_out);
    snprintf(p, sizeof p, "%s/ckpt_000000007.safetensors", dir);
    CHECK(make_ckpt(p, 0) == 0, "cannot write %s", p);
    rc = run_cli(args, 0, g_out, sizeof g_out);
    CHECK(rc == 0 && strstr(g_out, "D.c1.weight") && strstr(g_out, "  D     raw "), "run directory: exit %d: %s", rc,
          g_out);

    /* a NaN weight: bad data (3), one clean line naming the file and tensor */
    snprintf(p, sizeof p, "%s/nan.safetensors", g_tmp);
    CHECK(make_ckpt(p, 1) == 0, "cannot write %s", p);
    snprintf(args, sizeof args, "spectra '%s'", p);
    rc = run_cli(args, 1, g_out, sizeof g_out);
    const char *at = strstr(g_out, "G.fc0.weight");
    const char *nl = strchr(g_out, '\n');
    CHECK(rc == 3 && at && !strstr(at + 1, "G.fc0.weight") && strstr(g_out, p) && strstr(g_out, "NaN") && nl &&
              nl[1] == '\0' && !strstr(strstr(g_out, "error:") + 1, "error:"),
          "NaN weight: exit %d: %s", rc, g_out);
}

/* ---- each layer's own geometry, from a real run's config ---- */

/* The standard CNN at 32x32 (model_cnn.c): the conv whose operator norm
 * each weight has, written out here by hand so that the test does not take
 * it from the code under test. A transposed conv's is its adjoint conv's on
 * the transposed conv's output (4 -> 8 -> 16 -> 32). */
static const struct own_geom {
    const char *name;
    int h, stride, pad, convt;
} k_cnn_geom[] = {
    {"D.c0_0.weight", 32, 1, 1, 0}, {"D.c0_1.weight", 32, 2, 1, 0}, {"D.c1_0.weight", 16, 1, 1, 0},
    {"D.c1_1.weight", 16, 2, 1, 0}, {"D.c2_0.weight", 8, 1, 1, 0},  {"D.c2_1.weight", 8, 2, 1, 0},
    {"D.c3_0.weight", 4, 1, 1, 0},  {"G.dc1.weight", 8, 2, 1, 1},   {"G.dc2.weight", 16, 2, 1, 1},
    {"G.dc3.weight", 32, 2, 1, 1},  {"G.c4.weight", 32, 1, 1, 0},   {"EMA.dc1.weight", 8, 2, 1, 1},
    {"EMA.dc2.weight", 16, 2, 1, 1}, {"EMA.dc3.weight", 32, 2, 1, 1}, {"EMA.c4.weight", 32, 1, 1, 0},
};
enum { N_CNN_GEOM = sizeof k_cnn_geom / sizeof k_cnn_geom[0] };

static char g_run[300], g_ckpt[400];

/* A 3-step run of the CNN GAN (width 4, EMA, the monitor every step) on 64
 * generated CIFAR records: g_run, its checkpoint g_ckpt. 0 on success. */
static int make_run(void) {
    char data[300], cfg[1024], p[300], args[1024];
    if (tf_write_cifar(g_tmp, 64, data, sizeof data) != 0) return -1;
    snprintf(cfg, sizeof cfg,
             "data: {format: cifar10, path: %s}\n"
             "model: {z_dim: 8, g: {arch: cnn, width: 4, bn: true}, d: {arch: cnn, width: 4}}\n"
             "loss: hinge\nlipschitz: {d: {sn: true}}\nema: {decay: 0.9}\n"
             "train: {steps: 3, n_dis: 1, batch_d: 8, batch_g: 8}\nseed: 1\nthreads: 1\n"
             "log: {every: 1, samples_every: 0, checkpoint_every: 0, keep: 1, sample_n: 4, spectra_every: 1,"
             " tensorboard: false}\neval: {every: 0}\n",
             data);
    snprintf(p, sizeof p, "%s/cnn.yaml", g_tmp);
    FILE *f = fopen(p, "w");
    if (!f || fputs(cfg, f) < 0 || fclose(f) != 0) return -1;
    snprintf(g_run, sizeof g_run, "%s/cnn_run", g_tmp);
    snprintf(args, sizeof args, "train '%s' --out '%s' --quiet", p, g_run);
    int rc = run_cli(args, 1, g_out, sizeof g_out);
    CHECK(rc == 0, "training run: exit %d: %s", rc, g_out);
    snprintf(g_ckpt, sizeof g_ckpt, "%s/ckpt_000000003.safetensors", g_run);
    return rc == 0 ? 0 : -1;
}

static const cJSON *find_tensor(const cJSON *root, const char *name) {
    const cJSON *e;
    cJSON_ArrayForEach(e, cJSON_GetObjectItemCaseSensitive(root, "tensors")) {
        const cJSON *n = cJSON_GetObjectItemCaseSensitive(e, "name");
        if (cJSON_IsString(n) && !strcmp(n->valuestring, name)) return e;
    }
    return NULL;
}

static const char *str(const cJSON *o, const char *k) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsString(v) ? v->valuestring : "";
}

/* sigma(T) of stored weight name at input h x h, stride, pad, as spectra
 * computes it by default (1000 iterations, tol 1e-6, seed 0) */
static double op_norm_at(lg_st_file *f, const char *name, int h, int stride, int pad) {
    const lg_st_tensor *t = lg_st_find(f, name);
    if (!t || t->ndim != 4) return NAN;
    float *w = malloc(sizeof(float) * (size_t)t->numel);
    lg_conv_norms cn;
    lg_status s = lg_st_get_f32(f, name, -1, NULL, w);
    if (s == LG_OK)
        s = lg_conv_norms_compute(w, (int)t->shape[0], (int)t->shape[1], (int)t->shape[2], (int)t->shape[3], h, h,
                                  stride, pad, 1000, 1e-6, 0, &cn);
    free(w);
    return s == LG_OK ? cn.op_norm : NAN;
}

static void test_own_geometry(void) {
    /* the CLI runs with --threads 1: the same sums, so the same iterates */
    lg_cpu_set_threads(1);
    if (make_run() != 0) return;
    char args[1024];
    snprintf(args, sizeof args, "spectra '%s' --json --threads 1", g_run);
    int rc = run_cli(args, 0, g_out, sizeof g_out);
    CHECK(rc == 0, "spectra of the run: exit %d", rc);
    cJSON *root = cJSON_Parse(g_out);
    CHECK(root != NULL, "not JSON: %.200s", g_out);
    lg_st_file *f = NULL;
    CHECK_OK(lg_st_open(&f, g_ckpt));
    if (!root || !f) {
        cJSON_Delete(root);
        if (f) lg_st_close(f);
        return;
    }
    CHECK(!strcmp(str(root, "geometry"), "config") && cJSON_IsNull(cJSON_GetObjectItemCaseSensitive(root, "input_size")),
          "every conv layer's geometry from the config");
    CHECK(cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(root, "tensors")) == 5 + 8 + 5,
          "G, D and EMA: %d tensors", cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(root, "tensors")));
    for (int i = 0; i < N_CNN_GEOM; i++) {
        const struct own_geom *x = &k_cnn_geom[i];
        const cJSON *e = find_tensor(root, x->name);
        CHECK(e != NULL, "%s not listed", x->name);
        if (!e) continue;
        const cJSON *g = cJSON_GetObjectItemCaseSensitive(e, "geometry");
        const cJSON *c = cJSON_GetObjectItemCaseSensitive(e, "conv");
        CHECK(!strcmp(str(g, "source"), "config") && num(g, "input_h") == x->h && num(g, "input_w") == x->h &&
                  num(g, "stride") == x->stride && num(g, "pad") == x->pad &&
                  cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(g, "transposed")) == x->convt,
              "%s: geometry %s %gx%g s%g p%g, want config %dx%d s%d p%d%s", x->name, str(g, "source"),
              num(g, "input_h"), num(g, "input_w"), num(g, "stride"), num(g, "pad"), x->h, x->h, x->stride, x->pad,
              x->convt ? " transposed" : "");
        CHECK(!strcmp(str(e, "kind"), x->convt ? "conv_transpose2d" : "conv2d"), "%s: kind %s", x->name,
              str(e, "kind"));
        /* the reported norm is the one at the layer's own geometry ... */
        const double own = op_norm_at(f, x->name, x->h, x->stride, x->pad);
        CHECK(fabs(num(c, "op_norm") - own) <= 1e-9 * own, "%s: op norm %.9g, at its own geometry %.9g", x->name,
              num(c, "op_norm"), own);
        /* ... which is not the one-geometry (32x32, stride 1) value where
         * the layer differs: stride 2, or a transposed conv */
        if (x->stride == 2) {
            const double one = op_norm_at(f, x->name, 32, 1, 1);
            CHECK(fabs(one - own) > 0.05 * own, "%s: own %.6g and one-geometry %.6g should differ", x->name, own,
                  one);
        }
    }

    /* the training monitor's last record (the checkpoint's step) agrees:
     * its power iteration is warm-started, 30 + 4 per record, and
     * approaches sigma(T) from below, so within a few percent */
    char p[400];
    snprintf(p, sizeof p, "%s/spectra.bin", g_run);
    lg_spectra_log log;
    memset(&log, 0, sizeof log);
    CHECK_OK(lg_spectra_read(p, &log));
    int compared = 0;
    for (int r = 0; r < log.n; r++) {
        const lg_spectra_record *rec = &log.rec[r];
        if (rec->step != 3) continue;
        for (int l = 0; l < rec->n_layers; l++) {
            const lg_monitor_layer *ml = &rec->layers[l];
            char name[128];
            snprintf(name, sizeof name, "%s.%s.weight", rec->net, ml->name);
            const cJSON *e = find_tensor(root, name);
            CHECK(e != NULL, "monitor layer %s not listed by spectra", name);
            if (!e || ml->kind == LG_LAYER_LINEAR) continue;
            double sp = num(cJSON_GetObjectItemCaseSensitive(e, "conv"), "op_norm");
            CHECK(ml->op_norm <= sp * (1 + 1e-3) && ml->op_norm >= sp * (1 - 0.03),
                  "%s: monitor op norm %.6g vs spectra %.6g", name, ml->op_norm, sp);
            compared++;
        }
    }
    CHECK(compared == 11, "compared %d conv layers with the monitor's step-3 records", compared);
    lg_spectra_log_free(&log);
    cJSON_Delete(root);

    /* the table: a geometry column saying where it came from */
    snprintf(args, sizeof args, "spectra '%s' --threads 1 --filter c0_1", g_ckpt);
    rc = run_cli(args, 0, g_out, sizeof g_out);
    CHECK(rc == 0 && strstr(g_out, " geometry ") && strstr(g_out, "32x32 s2 p1 cfg") &&
              strstr(g_out, "each layer's own input size"),
          "table: exit %d: %s", rc, g_out);

    /* --input-size: that geometry for every layer ('flags'); still a
     * transposed conv by the config */
    snprintf(args, sizeof args, "spectra '%s' --json --threads 1 --input-size 16 --filter dc1", g_ckpt);
    rc = run_cli(args, 0, g_out, sizeof g_out);
    root = cJSON_Parse(g_out);
    CHECK(rc == 0 && root, "--input-size 16: exit %d", rc);
    const cJSON *e = find_tensor(root, "G.dc1.weight");
    const cJSON *g = cJSON_GetObjectItemCaseSensitive(e, "geometry");
    double want = op_norm_at(f, "G.dc1.weight", 16, 1, 1);
    CHECK(e && !strcmp(str(g, "source"), "flags") && num(g, "input_h") == 16 && num(g, "stride") == 1 &&
              !strcmp(str(g, "transposed_source"), "config") && !strcmp(str(e, "kind"), "conv_transpose2d") &&
              fabs(num(cJSON_GetObjectItemCaseSensitive(e, "conv"), "op_norm") - want) <= 1e-9 * want,
          "--input-size 16 overrides the geometry of G.dc1.weight, its kind stays");
    CHECK(root && !strcmp(str(root, "geometry"), "flags") &&
              num(root, "input_size") == 16, "root geometry flags, input_size 16");
    cJSON_Delete(root);
    lg_st_close(f);
}

/* A checkpoint whose tensors do not match its config: exit 3, one line
 * naming the tensor and the fix; the fix works. */
static void test_geometry_mismatch(void) {
    if (!g_ckpt[0]) return;
    lg_st_file *f = NULL;
    CHECK_OK(lg_st_open(&f, g_ckpt));
    if (!f) return;
    int64_t shp[3];
    CHECK_OK(lg_st_get_i64(f, "data.shape", 1, (int64_t[]){3}, shp));
    static float w[4 * 4 * 4 * 4];
    memset(w, 0, sizeof w);
    w[0] = 1.0f;
    struct {
        const char *name, *say;
        int64_t shape[4];
    } bad[2] = {{"D.c0_1.weight", "has it as (4,4,4,4)", {4, 4, 3, 3}}, {"D.c9.weight", "has no such tensor", {4, 4, 4, 4}}};
    for (int i = 0; i < 2; i++) {
        char p[300], args[1024];
        snprintf(p, sizeof p, "%s/bad%d.safetensors", g_tmp, i);
        lg_st_writer *wr;
        CHECK_OK(lg_st_writer_create(&wr));
        lg_status s = lg_st_writer_add_meta(wr, "format", "lipgan-checkpoint-1");
        if (!s) s = lg_st_writer_add_meta(wr, "config", lg_st_meta(f, "config"));
        if (!s) s = lg_st_writer_add_i64(wr, "data.shape", 1, (int64_t[]){3}, shp);
        if (!s) s = lg_st_writer_add_f32(wr, "D.c0_0.weight", 4, (int64_t[]){4, 3, 3, 3}, w);
        if (!s) s = lg_st_writer_add_f32(wr, bad[i].name, 4, bad[i].shape, w);
        if (!s) s = lg_st_writer_write(wr, p, 0);
        lg_st_writer_free(wr);
        CHECK_OK(s);
        snprintf(args, sizeof args, "spectra '%s' --threads 1", p);
        int rc = run_cli(args, 1, g_out, sizeof g_out);
        const char *nl = strchr(g_out, '\n');
        CHECK(rc == 3 && strstr(g_out, bad[i].name) && strstr(g_out, bad[i].say) && strstr(g_out, "--input-size") &&
                  strstr(g_out, "--convt") && nl && nl[1] == '\0',
              "%s: exit %d: %s", bad[i].name, rc, g_out);
        /* the fixes: the flags for every layer, or leaving it out */
        snprintf(args, sizeof args, "spectra '%s' --threads 1 --input-size 8 --convt dc --json", p);
        rc = run_cli(args, 0, g_out, sizeof g_out);
        CHECK(rc == 0 && strstr(g_out, bad[i].name) && strstr(g_out, "\"flags\""), "%s with the flags: exit %d",
              bad[i].name, rc);
        snprintf(args, sizeof args, "spectra '%s' --threads 1 --filter c0_0", p);
        rc = run_cli(args, 0, g_out, sizeof g_out);
        CHECK(rc == 0 && strstr(g_out, "D.c0_0.weight") && strstr(g_out, "32x32 s1 p1 cfg"),
              "%s left out by --filter: exit %d: %s", bad[i].name, rc, g_out);
    }
    /* a config the networks cannot be built from (30x30 samples: the
     * models need a multiple of 8): a warning, then the flags' defaults */
    char p[300], args[1024];
    snprintf(p, sizeof p, "%s/bad_shape.safetensors", g_tmp);
    lg_st_writer *wr;
    CHECK_OK(lg_st_writer_create(&wr));
    lg_status s = lg_st_writer_add_meta(wr, "config", lg_st_meta(f, "config"));
    static const int64_t shp30[3] = {3, 30, 30}; /* the writer keeps the pointer */
    if (!s) s = lg_st_writer_add_i64(wr, "data.shape", 1, (int64_t[]){3}, shp30);
    if (!s) s = lg_st_writer_add_f32(wr, "D.c0_0.weight", 4, (int64_t[]){4, 3, 3, 3}, w);
    if (!s) s = lg_st_writer_write(wr, p, 0);
    lg_st_writer_free(wr);
    CHECK_OK(s);
    snprintf(args, sizeof args, "spectra '%s' --threads 1", p);
    int rc = run_cli(args, 1, g_out, sizeof g_out);
    CHECK(rc == 0 && strstr(g_out, "warning: ") && strstr(g_out, "32x32 s1 p1 flag"), "unbuildable config: exit %d: %s",
          rc, g_out);
    lg_st_close(f);
}

/* Real trained conv weights (the shipped classifier): the operator norm at
 * 32x32 converges within the default --iters, between the reshaped-matrix
 * norm and the Tsuzuku bound. (With 200 iterations none of the three did.) */
static void test_conv_converges(void) {
    const char *cls = "models/fmnist_classifier.safetensors";
    char args[512];
    /* one thread: 2 threads on a busy 2-core machine made this 20x slower */
    snprintf(args, sizeof args, "spectra %s --filter conv --json --threads 1", cls);
    int rc = run_cli(args, 0, g_out, sizeof g_out);
    CHECK(rc == 0, "spectra %s: exit %d", cls, rc);
    cJSON *root = cJSON_Parse(g_out);
    CHECK(root != NULL, "not JSON: %.200s", g_out);
    if (!root) return;
    int n = 0;
    const cJSON *e;
    cJSON_ArrayForEach(e, cJSON_GetObjectItemCaseSensitive(root, "tensors")) {
        const char *name = cJSON_GetObjectItemCaseSensitive(e, "name")->valuestring;
        const cJSON *c = cJSON_GetObjectItemCaseSensitive(e, "conv");
        CHECK(cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(c, "converged")), "%s: not converged in %g iterations",
              name, num(c, "iters"));
        CHECK(num(c, "op_norm") >= num(c, "reshaped") && num(c, "op_norm") <= num(c, "tsuzuku"),
              "%s: op norm %g outside [%g, %g]", name, num(c, "op_norm"), num(c, "reshaped"), num(c, "tsuzuku"));
        n++;
    }
    CHECK(n == 3, "%d conv weights in %s", n, cls);
    cJSON_Delete(root);
}

static void test_errors(void) {
    char args[2048], tmp[] = "/tmp/lg_spectra_XXXXXX";
    int fd = mkstemp(tmp);
    CHECK(fd >= 0, "mkstemp");
    if (fd < 0) return;
    close(fd);
    struct {
        const char *what;
        const char *bytes;
        size_t n;
    } bad[] = {{"truncated", "\x40\x00\x00\x00\x00\x00\x00\x00{\"a\":", 13},
               {"malformed", "\x08\x00\x00\x00\x00\x00\x00\x00not json", 16},
               {"empty", "", 0}};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        FILE *f = fopen(tmp, "wb");
        fwrite(bad[i].bytes, 1, bad[i].n, f);
        fclose(f);
        snprintf(args, sizeof args, "spectra '%s'", tmp);
        int rc = run_cli(args, 1, g_out, sizeof g_out);
        CHECK(rc == 3, "%s file: exit %d", bad[i].what, rc);
        char *nl = strchr(g_out, '\n');
        CHECK(nl && nl[1] == '\0' && strstr(g_out, "error"), "%s file: not one error line: %s",
              bad[i].what, g_out);
    }
    remove(tmp);
    int rc = run_cli("spectra /nonexistent/x.safetensors", 1, g_out, sizeof g_out);
    CHECK(rc == 3 && strstr(g_out, "x.safetensors"), "missing file: exit %d: %s", rc, g_out);
    rc = run_cli("spectra", 1, g_out, sizeof g_out);
    CHECK(rc == 2, "no file: exit %d", rc);
    snprintf(args, sizeof args, "spectra '%s/ref/gp.safetensors' --bogus", g_data);
    rc = run_cli(args, 1, g_out, sizeof g_out);
    CHECK(rc == 2, "unknown option: exit %d", rc);
    snprintf(args, sizeof args, "spectra '%s/ref/gp.safetensors' --input-size 0", g_data);
    rc = run_cli(args, 1, g_out, sizeof g_out);
    CHECK(rc == 2, "--input-size 0: exit %d", rc);
    snprintf(args, sizeof args, "spectra '%s/ref/gp.safetensors' --filter no_such_layer", g_data);
    rc = run_cli(args, 1, g_out, sizeof g_out);
    CHECK(rc == 3 && strstr(g_out, "no 2-D or 4-D float tensors matching no_such_layer"), "--filter without a match: "
          "exit %d: %s", rc, g_out);
    snprintf(args, sizeof args, "spectra '%s/ref/gp.safetensors' '%s/ref/gp.safetensors'", g_data, g_data);
    rc = run_cli(args, 1, g_out, sizeof g_out);
    CHECK(rc == 2 && strstr(g_out, "more than one file"), "two files: exit %d: %s", rc, g_out);
}

int main(void) {
    const char *d = getenv("LG_TEST_DATA");
    snprintf(g_data, sizeof g_data, "%s", d ? d : "tests/data");
    if (lg_test_cli_path(g_bin, sizeof g_bin) != 0) return 1;
    LG_TEST_RUN(test_table);
    LG_TEST_RUN(test_json);
    LG_TEST_RUN(test_errors);
    snprintf(g_tmp, sizeof g_tmp, "/tmp/lg_spectra_dir_XXXXXX");
    if (!mkdtemp(g_tmp)) {
        fprintf(stderr, "test_cli_spectra: cannot create a temp directory\n");
        return 1;
    }
    LG_TEST_RUN(test_checkpoint);
    LG_TEST_RUN(test_own_geometry);
    LG_TEST_RUN(test_geometry_mismatch);
    LG_TEST_RUN(test_conv_converges);
    char rm[128];
    snprintf(rm, sizeof rm, "rm -rf '%s'", g_tmp);
    if (system(rm) != 0) fprintf(stderr, "test_cli_spectra: could not remove %s\n", g_tmp);
    return lg_test_summary("test_cli_spectra");
}
