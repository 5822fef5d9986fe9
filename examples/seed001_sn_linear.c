/* Seed 001 (Fleuret, "Deep learning 11.2 Wasserstein GAN"), second example:
 * a Linear(5, 5) trained 100 SGD steps (lr 0.1) to maximise ||m(x)|| on 100
 * random inputs in [0,1)^5, without and with spectral normalization:
 *
 *   m = nn.Linear(5, 5)            # or nn.utils.spectral_norm(nn.Linear(5, 5))
 *   x = torch.rand(100, 5)
 *   optimizer = torch.optim.SGD(m.parameters(), lr = 1e-1)
 *   for k in range(100):
 *       loss = -m(x).norm(); optimizer.zero_grad(); loss.backward(); optimizer.step()
 *   print(m.weight.svd().S.max())   # 0.9277 -> 114.1429 without SN; 1.0000 with
 *
 * usage: seed001_sn_linear [SEED] (default 1). Exit status 0 iff sigma grows
 * by two orders of magnitude without SN and ends at 1 +- 1e-3 with SN. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "lipgan/lipschitz.h"

int main(int argc, char **argv) {
    uint64_t seed = argc > 1 ? strtoull(argv[1], NULL, 10) : 1;
    double a0, a1, b0, b1;
    if (lg_demo_sn_linear(0, seed, 1, &a0, &a1) != LG_OK ||
        lg_demo_sn_linear(1, seed, 1, &b0, &b1) != LG_OK) {
        fprintf(stderr, "seed001_sn_linear: %s\n", lg_error_msg());
        return 1;
    }
    return a1 >= 100.0 * a0 && fabs(b1 - 1.0) <= 1e-3 ? 0 : 1;
}
