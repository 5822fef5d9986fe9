/* The two worked examples of seed 001 (Fleuret's WGAN slides), run through
 * the library by lg_demo_* (src/lipschitz/demo.c), with their pass bars.
 * examples/seed001_power_iteration.c and examples/seed001_sn_linear.c print
 * the same runs. */
#include <math.h>

#include "lg_test.h"
#include "lipgan/lipschitz.h"

/* The seeds the examples use. Whether 10 power iterations reach 1e-4 depends
 * on the draw (the error shrinks like (s2/s1)^20); seed 1 does not (7e-4),
 * seed 3 does, as the slides' draw did. test_power_iteration_stats reports
 * the fraction of draws that do (50 of seeds 1..200: the bar is a property
 * of the draw, not of the method; every draw approaches from below). */
#define POWER_SEED 3
#define SN_SEED 1

static void test_power_iteration_demo(void) {
    double est, ex;
    CHECK_OK(lg_demo_power_iteration(POWER_SEED, 1, &est, &ex));
    CHECK(fabs(est - ex) / ex <= 1e-4, "10 iterations: %.6f vs SVD %.6f (rel %.2e > 1e-4)", est,
          ex, fabs(est - ex) / ex);
}

static void test_power_iteration_stats(void) {
    int ok = 0, n = 200;
    double worst = 0;
    for (int s = 1; s <= n; s++) {
        double est, ex;
        CHECK_OK(lg_demo_power_iteration((uint64_t)s, 0, &est, &ex));
        double r = (ex - est) / ex;
        CHECK(r > -1e-6, "seed %d: estimate %.7g above the largest singular value %.7g", s, est,
              ex);
        if (r <= 1e-4) ok++;
        if (r > worst) worst = r;
    }
    printf("10 iterations on 15x15 N(0,1) draws: %d of %d within 1e-4 of the SVD (worst %.2e)\n",
           ok, n, worst);
}

static void test_sn_linear_demo(void) {
    double a, b;
    CHECK_OK(lg_demo_sn_linear(0, SN_SEED, 1, &a, &b));
    CHECK(b >= 100.0 * a, "without SN: sigma %.4f -> %.4f, not two orders of magnitude", a, b);
    CHECK_OK(lg_demo_sn_linear(1, SN_SEED, 1, &a, &b));
    CHECK(fabs(b - 1.0) <= 1e-3, "with SN: sigma of W/sigma ends at %.6f, want 1.0000 +- 1e-3", b);
}

int main(void) {
    LG_TEST_RUN(test_power_iteration_demo);
    LG_TEST_RUN(test_power_iteration_stats);
    LG_TEST_RUN(test_sn_linear_demo);
    return lg_test_summary("test_lipschitz_demo");
}
