/* The CPU backend's opt-in call profile (LG_CPU_PROFILE=1): the wrappers
 * give the plain kernels' results, every call is counted under its entry
 * and detail, reset zeroes the rows and steps divides them. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lg_test.h"
#include "lipgan/backend.h"
#include "lipgan/backend_cpu.h"

/* The calls column of the detailed row (entry, detail), or -1. Detailed
 * rows are "# %-20s %-44s %10.6g %12.3f %6.1f%%". */
static double calls_on(const char *report, const char *entry, const char *detail) {
    for (const char *line = report; line && *line;) {
        const char *end = strchr(line, '\n');
        size_t len = end ? (size_t)(end - line) : strlen(line);
        char e[21], d[45];
        double c;
        if (len > 2 + 20 + 1 + 44 && line[0] == '#') {
            memcpy(e, line + 2, 20);
            memcpy(d, line + 23, 44);
            e[20] = d[44] = 0;
            for (int i = 19; i >= 0 && e[i] == ' '; i--) e[i] = 0;
            for (int i = 43; i >= 0 && d[i] == ' '; i--) d[i] = 0;
            if (!strcmp(e, entry) && !strcmp(d, detail) && sscanf(line + 67, "%lf", &c) == 1)
                return c;
        }
        line = end ? end + 1 : NULL;
    }
    return -1;
}

static void test_profile(void) {
    const lg_backend *be = lg_backend_cpu();
    CHECK(lg_cpu_profile_enabled() == 1, "LG_CPU_PROFILE=1 should turn the profile on");
    lg_cpu_profile_reset();
    int64_t s4[4] = {1, 2, 3, 4}, b4[4] = {1, 2, 1, 1};
    float a[24], b[2] = {0.5f, -1.0f}, y[24];
    for (int i = 0; i < 24; i++) a[i] = (float)i - 11.5f;
    for (int r = 0; r < 3; r++) be->binary(LG_B_ADD, y, s4, a, s4, b, b4);
    for (int i = 0; i < 24; i++)
        CHECK(y[i] == a[i] + b[i / 12], "wrapped add: y[%d] = %g, want %g", i, (double)y[i],
              (double)(a[i] + b[i / 12]));
    be->binary(LG_B_ADD_RELU, y, s4, a, s4, b, b4);
    for (int i = 0; i < 24; i++) {
        float v = a[i] + b[i / 12];
        CHECK(y[i] == (v < 0 ? 0 : v), "wrapped add_relu: y[%d] = %g", i, (double)y[i]);
    }
    be->unary(LG_U_RELU, y, a, 24, 0.0f);
    be->unary(LG_U_RELU, y, a, 24, 0.0f);
    lg_conv_geom g = {1, 2, 5, 5, 3, 3, 3, 1, 1, 5, 5};
    float x[50], w[54], cy[75], *ws = malloc((be->conv_workspace(&g) + 1) * sizeof(float));
    for (int i = 0; i < 50; i++) x[i] = 0.01f * i;
    for (int i = 0; i < 54; i++) w[i] = 0.02f * (i % 7) - 0.05f;
    be->conv2d(cy, x, w, &g, ws);
    free(ws);

    const char *r = lg_cpu_profile_report(0);
    CHECK(calls_on(r, "binary", "add") == 3, "3 adds: %g\n%s", calls_on(r, "binary", "add"), r);
    CHECK(calls_on(r, "binary", "add_relu") == 1, "1 add_relu\n%s", r);
    CHECK(calls_on(r, "unary", "relu") == 2, "2 relus\n%s", r);
    CHECK(calls_on(r, "conv2d", "n1 c2 5x5 oc3 k3x3 s1 p1 im2col") == 1, "1 conv with its geometry\n%s", r);
    CHECK(strstr(r, "7 calls") != NULL, "7 calls in all\n%s", r);
    r = lg_cpu_profile_report(2); /* per step of 2 */
    CHECK(calls_on(r, "binary", "add_relu") == 0.5, "steps divide the counts\n%s", r);
    lg_cpu_profile_reset();
    r = lg_cpu_profile_report(0);
    CHECK(strstr(r, " 0 calls") != NULL && calls_on(r, "binary", "add") == -1,
          "reset empties the rows\n%s", r);
}

/* Every compute entry of the table is wrapped (backend/profile_wrap.h's
 * list): one call of each gives one row of its entry, with the CPU
 * profile's detail (the geometry of gemm, the op of unary). */
static void test_every_entry(void) {
    const lg_backend *be = lg_backend_cpu();
    lg_cpu_profile_reset();
    enum { N = 16 };
    float a[N], b[N], c[N], d[N], e[N], f[N], h[N], k[N];
    for (int i = 0; i < N; i++) a[i] = 0.1f * (float)i + 0.5f, b[i] = 1.0f - 0.05f * (float)i;
    int64_t s4[4] = {1, 1, 4, 4};
    be->copy(c, a, N);
    be->fill(c, 1.0f, N);
    be->gemm(0, 1, 2, 3, 2, 1.0f, a, 2, b, 2, 0.0f, c, 3);
    lg_conv_geom g = {1, 1, 3, 3, 1, 1, 1, 1, 0, 3, 3};
    float ws[64];
    LG_ASSERT(be->conv_workspace(&g) <= 64);
    be->conv2d(c, a, b, &g, ws);
    be->conv2d_bwd_data(c, a, b, &g, ws);
    be->conv2d_bwd_weight(c, a, b, &g, ws);
    be->unary(LG_U_TANH, c, a, N, 0.0f);
    be->binary(LG_B_MUL, c, s4, a, s4, b, s4);
    int64_t s1[4] = {1, 1, 1, 4};
    be->sum_to(c, s1, a, s4);
    be->sum_all(c, a, N);
    be->upsample2x(c, a, 1, 2, 2);
    be->sumpool2x2(c, a, 1, 4, 4);
    float rm[2] = {0, 0}, rv[2] = {1, 1}, gm[2] = {1, 1}, bt[2] = {0, 0};
    be->bn_train(c, d, e, a, gm, bt, rm, rv, 2, 2, 4, 1e-5f, 0.1f);
    be->bn_eval(c, a, gm, bt, rm, rv, 2, 2, 4, 1e-5f);
    be->bn_bwd(f, h, k, b, a, d, e, gm, 2, 2, 4);
    be->bn_stats(d, e, a, 2, 2, 4);
    be->bn_bwd_sums(h, k, b, a, d, 2, 2, 4);
    be->bn_bwd_apply(f, b, a, d, e, gm, h, k, 8.0, 2, 2, 4);
    be->dot(c, a, b, N);
    be->normalize(c, N, 1e-12f);
    float p[N] = {0}, m[N] = {0}, v[N] = {0}, hp[3], tc[1] = {0}, flag[1] = {1}, lr[1] = {0.1f},
          trk[4] = {0, 0, 0, 5};
    be->adam(p, m, v, b, N, 0.1f, 0.9f, 0.999f, 1e-8f, 1);
    be->all_finite(c, a, N);
    be->adam_prep(hp, tc, flag, lr, 0.9f, 0.999f);
    be->adam_flagged(p, m, v, b, N, hp, 0.9f, 0.999f, 1e-8f);
    be->cond_copy(c, a, N, flag);
    be->flag_track(trk, flag);
    CHECK(tc[0] == 1 && trk[0] == 0 && trk[2] == 0, "wrapped adam_prep/flag_track did not run");

    const char *r = lg_cpu_profile_report(0);
    static const char *const plain[] = {
        "copy", "fill", "sum_to", "sum_all", "upsample2x", "sumpool2x2", "bn_train", "bn_eval",
        "bn_bwd", "bn_stats", "bn_bwd_sums", "bn_bwd_apply", "dot", "normalize", "adam",
        "all_finite", "adam_prep", "adam_flagged", "cond_copy", "flag_track"};
    for (size_t i = 0; i < sizeof plain / sizeof plain[0]; i++)
        CHECK(calls_on(r, plain[i], "") == 1, "%s: %g calls\n%s", plain[i],
              calls_on(r, plain[i], ""), r);
    CHECK(calls_on(r, "gemm", "NT m2 n3 k2") == 1, "gemm row\n%s", r);
    CHECK(calls_on(r, "conv2d_bwd_data", "n1 c1 3x3 oc1 k1x1 s1 p0 im2col") == 1, "conv row\n%s", r);
    CHECK(calls_on(r, "conv2d_bwd_weight", "n1 c1 3x3 oc1 k1x1 s1 p0 im2col") == 1, "conv row\n%s", r);
    CHECK(calls_on(r, "unary", "tanh") == 1 && calls_on(r, "binary", "mul") == 1, "ops\n%s", r);
    CHECK(strstr(r, "26 calls") != NULL, "26 calls in all\n%s", r);
    lg_cpu_profile_reset();
}

int main(void) {
    /* before anything initializes the backend: it decides once */
    setenv("LG_CPU_PROFILE", "1", 1);
    LG_TEST_RUN(test_profile);
    LG_TEST_RUN(test_every_entry);
    return lg_test_summary("test_cpu_profile");
}
