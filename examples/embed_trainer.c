/* Embedding lipgan's trainer: a config built in C (no YAML file), a loop
 * that owns every step, and the mode metrics of the result.
 *
 * SN-GAN with the hinge loss on the 8-Gaussian ring, the same setup as
 * configs/toy_ring8.yaml. Build against an installed lipgan:
 *   cc embed_trainer.c $(pkg-config --cflags --libs lipgan) -o embed_trainer
 *   ./embed_trainer [steps]          (default 600; the ring needs ~3000 to converge)
 * Prints a line every 100 steps and, at the end, "modes covered K/8,
 * high-quality F%" for 2500 samples; exits nonzero on any error. */
#include <stdio.h>
#include <stdlib.h>

#include "lipgan/backend.h"
#include "lipgan/config.h"
#include "lipgan/data.h"
#include "lipgan/metrics.h"
#include "lipgan/status.h"
#include "lipgan/train.h"

int main(int argc, char **argv) {
    long steps = argc > 1 ? strtol(argv[1], NULL, 10) : 600;
    if (steps < 1) {
        fprintf(stderr, "usage: %s [steps >= 1]\n", argv[0]);
        return 2;
    }
    /* Every key of `lipgan train --help-config` can be set by name. */
    lg_config cfg;
    lg_config_default(&cfg);
    char n_steps[64];
    snprintf(n_steps, sizeof n_steps, "train.steps=%ld", steps);
    const char *sets[] = {"data.format=ring8",       "model.z_dim=16",
                          "model.g.arch=mlp",        "model.g.width=128",
                          "model.g.depth=3",         "model.g.bn=false",
                          "model.d.arch=mlp",        "model.d.width=128",
                          "model.d.depth=3",         "loss=hinge",
                          "lipschitz.d.sn=true",     "optim.g.lr=1e-3",
                          "optim.d.lr=1e-3",         "optim.g.beta1=0.5",
                          "optim.d.beta1=0.5",       "optim.g.beta2=0.9",
                          "optim.d.beta2=0.9",       "train.n_dis=2",
                          "train.batch_d=256",       "train.batch_g=256",
                          "seed=1",                  n_steps};
    for (size_t i = 0; i < sizeof sets / sizeof sets[0]; i++)
        if (lg_config_set(&cfg, sets[i]) != LG_OK) {
            fprintf(stderr, "config: %s\n", lg_error_msg());
            return 1;
        }
    if (lg_config_validate(&cfg) != LG_OK) {
        fprintf(stderr, "config: %s\n", lg_error_msg());
        return 1;
    }

    lg_trainer *t;
    if (lg_trainer_create(&t, &cfg) != LG_OK) {
        fprintf(stderr, "trainer: %s\n", lg_error_msg());
        return 1;
    }
    int rc = 0;
    for (long s = 1; s <= steps && !rc; s++) {
        lg_train_stats st;
        if (lg_trainer_step(t, &st) != LG_OK) {
            fprintf(stderr, "step %ld: %s\n", s, lg_error_msg());
            rc = 1;
        } else if (s % 100 == 0 || s == steps) {
            printf("step %5ld  loss_d %.4f  loss_g %.4f  D(real) %.3f  D(fake) %.3f  sigma_max %.3f\n",
                   s, st.loss_d, st.loss_g, st.d_real, st.d_fake, st.sigma_max);
        }
    }

    /* Sample from G in evaluation mode and score the modes it covers. */
    enum { N = 2500 };
    float *pts = malloc(sizeof(float) * 2 * N); /* (N, 2) */
    const float *modes;                          /* (8, 2) */
    float std;
    int m = lg_data_toy_modes(LG_TOY_RING8, &modes, &std);
    lg_toy_result r;
    if (!rc && (!pts || lg_generate(lg_trainer_generator(t), lg_backend_cpu(), N, 7, pts) != LG_OK ||
                lg_toy_metrics(pts, N, modes, m, std, NULL, &r) != LG_OK)) {
        fprintf(stderr, "sampling: %s\n", pts ? lg_error_msg() : "out of memory");
        rc = 1;
    }
    if (!rc)
        printf("modes covered %d/%d, high-quality %.1f%%, reverse KL %.3f\n", r.modes_covered, m,
               100.0 * r.frac_high_quality, r.reverse_kl);
    free(pts);
    lg_trainer_free(t);
    return rc;
}
