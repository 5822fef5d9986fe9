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
    CHECK(calls_on(r, "conv2d", "n1 c2 5x5 oc3 k3x3 s1 p1") == 1, "1 conv with its geometry\n%s", r);
    CHECK(strstr(r, "7 calls") != NULL, "7 calls in all\n%s", r);
    r = lg_cpu_profile_report(2); /* per step of 2 */
    CHECK(calls_on(r, "binary", "add_relu") == 0.5, "steps divide the counts\n%s", r);
    lg_cpu_profile_reset();
    r = lg_cpu_profile_report(0);
    CHECK(strstr(r, " 0 calls") != NULL && calls_on(r, "binary", "add") == -1,
          "reset empties the rows\n%s", r);
}

int main(void) {
    /* before anything initializes the backend: it decides once */
    setenv("LG_CPU_PROFILE", "1", 1);
    LG_TEST_RUN(test_profile);
    return lg_test_summary("test_cpu_profile");
}
