/* Seed 001 (Fleuret, "Deep learning 11.2 Wasserstein GAN"), first example:
 * power iteration on a random 15x15 Gaussian matrix, 10 iterations from a
 * random u, against the SVD's largest singular value:
 *
 *   W = torch.randn(15, 15); print(W.svd().S.max())
 *   u = torch.randn(W.size(0))
 *   for k in range(10):
 *       v = W.t() @ u; v = v / v.norm(); u = W @ v; u = u / u.norm()
 *   print(u.t() @ W @ v)                       # tensor(7.9129) twice
 *
 * Here through lipgan's spectral-normalization state (lg_sn_weight's power
 * iteration) and LAPACK. usage: seed001_power_iteration [SEED] (default 3;
 * whether 10 iterations reach 1e-4 depends on the draw's s2/s1, see
 * tests/test_lipschitz_demo.c). Exit status 0 iff the estimate is within
 * 1e-4 (relative) of the SVD. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "lipgan/lipschitz.h"

int main(int argc, char **argv) {
    uint64_t seed = argc > 1 ? strtoull(argv[1], NULL, 10) : 3;
    double est, exact;
    lg_status s = lg_demo_power_iteration(seed, 1, &est, &exact);
    if (s != LG_OK) {
        fprintf(stderr, "seed001_power_iteration: %s\n", lg_error_msg());
        return 1;
    }
    return fabs(est - exact) / exact <= 1e-4 ? 0 : 1;
}
