/* `lipgan spectra` run as a separate process ($BUILD/lipgan; BUILD from the
 * environment, default "build"): table and JSON output against the library
 * computed in-process, and one-line errors with exit code 3 for a missing,
 * truncated or malformed file. */
#include <cJSON.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "lg_test.h"
#include "lipgan/lipschitz.h"
#include "lipgan/safetensors.h"

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
}

static double num(const cJSON *o, const char *k) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsNumber(v) ? v->valuedouble : NAN;
}

static void test_json(void) {
    char args[1024], path[600];
    snprintf(path, sizeof path, "%s/ref/gp.safetensors", g_data);
    snprintf(args, sizeof args, "spectra '%s' --json --input-size 6 --stride 2 --pad 1 --iters 3000",
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

static void test_errors(void) {
    char args[1024], tmp[] = "/tmp/lg_spectra_XXXXXX";
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
}

int main(void) {
    const char *d = getenv("LG_TEST_DATA");
    snprintf(g_data, sizeof g_data, "%s", d ? d : "tests/data");
    if (lg_test_cli_path(g_bin, sizeof g_bin) != 0) return 1;
    LG_TEST_RUN(test_table);
    LG_TEST_RUN(test_json);
    LG_TEST_RUN(test_errors);
    return lg_test_summary("test_cli_spectra");
}
