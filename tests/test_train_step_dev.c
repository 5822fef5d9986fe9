/* The sync-free training step (src/train/step_dev.c) against the classic
 * one, on the CPU backend: the same config and seed must give bitwise
 * equal losses, skip counts, parameters, optimizer moments and network
 * state (SN vectors, BN statistics) after every step, for the cases the
 * sync-free step decides on the device: plain updates, SN + gradient
 * penalty (second derivatives), weight clipping, spectral gradient
 * clamping (its vectors too), r(W) on G, BN in G, the
 * EMA of G (copy phase, averaging phase, and a skipped G update),
 * RMSProp with the critic schedule's boost, a CIFAR-shaped ResNet, and updates skipped because the loss went
 * non-finite (state restored, Adam's step counter held back). On a GPU the
 * same step is what the CUDA backend runs and captures as graphs
 * (tests/gpu/test_train_cuda.c compares that with the CPU). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lg_test.h"
#include "lipgan/config.h"
#include "lipgan/model.h"
#include "lipgan/train.h"
#include "train/train_internal.h"
#include "train_fixtures.h"

static void toy(lg_config *c) {
    lg_config_default(c);
    const char *sets[] = {"data.format=ring8", "data.toy_n=2000", "model.z_dim=4",
                          "model.g.arch=mlp", "model.g.width=32", "model.g.depth=2",
                          "model.d.arch=mlp", "model.d.width=32", "model.d.depth=2",
                          "train.steps=40", "train.n_dis=3", "train.batch_d=32",
                          "train.batch_g=24", "optim.d.lr=1e-3", "optim.g.lr=1e-3",
                          "optim.d.beta1=0.5", "optim.g.beta1=0.5", "seed=5", "threads=1", NULL};
    for (int i = 0; sets[i]; i++) CHECK_OK(lg_config_set(c, sets[i]));
}

static int same(const float *a, const float *b, size_t n) {
    return memcmp(a, b, n * sizeof(float)) == 0;
}

/* first index where a and b differ bitwise, or -1 */
static long first_diff(const float *a, const float *b, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (memcmp(a + i, b + i, sizeof(float)) != 0) return (long)i;
    return -1;
}

static void check_nets(lg_trainer *a, lg_trainer *b, const char *what, int step) {
    lg_model *m[2][2] = {{lg_trainer_generator(a), lg_trainer_discriminator(a)},
                         {lg_trainer_generator(b), lg_trainer_discriminator(b)}};
    const char *nm[2] = {"G", "D"};
    for (int k = 0; k < 2; k++) {
        size_t np = lg_model_num_params(m[0][k]), ns = lg_model_num_state(m[0][k]);
        long d = first_diff(lg_model_params(m[0][k]), lg_model_params(m[1][k]), np);
        CHECK(d < 0, "%s step %d: %s params differ first at %ld", what, step, nm[k], d);
        d = first_diff(lg_model_state(m[0][k]), lg_model_state(m[1][k]), ns);
        CHECK(d < 0, "%s step %d: %s state (SN/BN) differs first at %ld", what, step, nm[k], d);
    }
    lg_model *ea = lg_trainer_ema(a), *eb = lg_trainer_ema(b);
    CHECK(!ea == !eb, "%s: one trainer has an EMA", what);
    if (ea && eb) {
        long d = first_diff(lg_model_params(ea), lg_model_params(eb), lg_model_num_params(ea));
        CHECK(d < 0, "%s step %d: EMA params differ first at %ld", what, step, d);
        d = first_diff(lg_model_state(ea), lg_model_state(eb), lg_model_num_state(ea));
        CHECK(d < 0, "%s step %d: EMA state differs first at %ld", what, step, d);
    }
    CHECK(same(a->opt_d.m, b->opt_d.m, 2 * a->opt_d.n) && same(a->opt_g.m, b->opt_g.m, 2 * a->opt_g.n),
          "%s step %d: Adam moments differ", what, step);
    CHECK(a->opt_d.t == b->opt_d.t && a->opt_g.t == b->opt_g.t,
          "%s step %d: Adam steps D %lld/%lld G %lld/%lld", what, step, (long long)a->opt_d.t,
          (long long)b->opt_d.t, (long long)a->opt_g.t, (long long)b->opt_g.t);
    /* gradient clamping's persistent vectors */
    const lg_net_extra *xa[2] = {&a->xd, &a->xg}, *xb[2] = {&b->xd, &b->xg};
    for (int k = 0; k < 2; k++)
        for (int i = 0; xa[k]->gc && i < xa[k]->nl; i++) {
            const lg_gclamp_state *p = &xa[k]->gc[i], *q = &xb[k]->gc[i];
            size_t r = (size_t)p->rows, cc = (size_t)p->cols;
            CHECK(same(p->u0, q->u0, r) && same(p->u1, q->u1, r) && same(p->v0, q->v0, cc) &&
                      same(p->v1, q->v1, cc),
                  "%s step %d: %s layer %d clamping vectors differ", what, step, k ? "G" : "D", i);
        }
    CHECK(a->xd.updates == b->xd.updates && a->xg.updates == b->xg.updates &&
              a->nonfinite_run == b->nonfinite_run,
          "%s step %d: update counters differ", what, step);
}

static int g_clamped; /* layers whose gradient the last step of compare() clamped */

/* Runs `steps` steps classic (a) and sync-free (b); returns skipped total. */
static int compare(const lg_config *c, int steps, const char *what) {
    lg_trainer *a = NULL, *b = NULL;
    CHECK_OK(lg_trainer_create(&a, c));
    CHECK_OK(lg_trainer_create(&b, c));
    if (!a || !b) {
        lg_trainer_free(a);
        lg_trainer_free(b);
        return 0;
    }
    CHECK(a->dev.mode == 0, "%s: a CPU trainer starts on the classic step", what);
    CHECK_OK(lg__trainer_set_step_mode(b, 1));
    int skipped = 0;
    for (int i = 0; i < steps; i++) {
        lg_train_stats sa, sb;
        lg_status ra = lg_trainer_step(a, &sa), rb = lg_trainer_step(b, &sb);
        CHECK(ra == rb, "%s step %d: status %d vs %d", what, i, ra, rb);
        CHECK(memcmp(&sa, &sb, sizeof sa) == 0,
              "%s step %d: stats differ: loss_d %.9g/%.9g loss_g %.9g/%.9g d_real %.9g/%.9g "
              "gp %.9g/%.9g skipped %d/%d run %d/%d",
              what, i, sa.loss_d, sb.loss_d, sa.loss_g, sb.loss_g, sa.d_real, sb.d_real, sa.gp,
              sb.gp, sa.skipped, sb.skipped, sa.nonfinite_run, sb.nonfinite_run);
        check_nets(a, b, what, i);
        skipped += sa.skipped;
        if (ra != LG_OK) break;
    }
    g_clamped = 0;
    const lg_net_extra *xs[2] = {&a->xd, &a->xg};
    for (int k = 0; k < 2; k++)
        for (int i = 0; xs[k]->gc && i < xs[k]->nl; i++) {
            CHECK_OK(lg_gclamp_read(&xs[k]->gc[i]));
            g_clamped += xs[k]->gc[i].clamped;
        }
    printf("  %-28s %d steps, bitwise equal; %d updates skipped\n", what, steps, skipped);
    lg_trainer_free(a);
    lg_trainer_free(b);
    return skipped;
}

int main(void) {
    lg_config c;

    toy(&c); /* SN on D (the default), hinge */
    compare(&c, 6, "toy SN hinge");

    toy(&c);
    CHECK_OK(lg_config_set(&c, "lipschitz.d.gp_lambda=10"));
    CHECK_OK(lg_config_set(&c, "loss=wasserstein"));
    compare(&c, 5, "toy SN + GP, wasserstein");

    toy(&c);
    CHECK_OK(lg_config_set(&c, "lipschitz.d.sn=false"));
    CHECK_OK(lg_config_set(&c, "lipschitz.d.clip=0.01"));
    CHECK_OK(lg_config_set(&c, "loss=wasserstein"));
    compare(&c, 5, "toy weight clipping");

    /* RMSProp on both networks (Adam's kernels with beta1 0 and no bias
     * correction: adam_prep gets (0, 0)) with the WGAN setup: clipping and
     * the critic schedule's boost (4 D updates at steps 0, 3 and 6) */
    toy(&c);
    {
        const char *rs[] = {"optim.d.kind=rmsprop", "optim.g.kind=rmsprop", "optim.d.beta1=0",
                            "optim.g.beta1=0", "optim.d.alpha=0.9", "lipschitz.d.sn=false",
                            "lipschitz.d.clip=0.05", "loss=wasserstein", "train.n_dis=1",
                            "train.n_dis_boost=4", "train.n_dis_boost_first=1",
                            "train.n_dis_boost_every=3", NULL};
        for (int i = 0; rs[i]; i++) CHECK_OK(lg_config_set(&c, rs[i]));
    }
    compare(&c, 7, "toy RMSProp, clipping, boost");

    /* the EMA of G: copies for the first ema.start steps, then averages */
    toy(&c);
    CHECK_OK(lg_config_set(&c, "ema.decay=0.9"));
    CHECK_OK(lg_config_set(&c, "ema.start=3"));
    CHECK_OK(lg_config_set(&c, "model.g.bn=true"));
    compare(&c, 6, "toy EMA of G (start 3), BN");

    toy(&c);
    CHECK_OK(lg_config_set(&c, "lipschitz.g.rw_lambda=0.1"));
    CHECK_OK(lg_config_set(&c, "model.g.bn=true"));
    CHECK_OK(lg_config_set(&c, "loss=nonsat"));
    compare(&c, 5, "toy r(W) on G, BN, nonsat");

    /* spectral gradient clamping decides on the device: every layer of
     * both networks, a ratio low enough that clamps happen */
    toy(&c);
    CHECK_OK(lg_config_set(&c, "lipschitz.d.clamp_ratio=1.2"));
    CHECK_OK(lg_config_set(&c, "lipschitz.g.clamp_ratio=1.2"));
    compare(&c, 5, "toy gradient clamping D+G");
    CHECK(g_clamped > 0, "no layer was clamped in the last step: the case tests nothing");
    /* lipschitz.<net>.clamp_iters reaches every layer's estimator (default 3) */
    CHECK_OK(lg_config_set(&c, "lipschitz.d.clamp_iters=7"));
    {
        lg_trainer *tr = NULL;
        CHECK_OK(lg_trainer_create(&tr, &c));
        for (int i = 0; tr && i < tr->xd.nl; i++)
            CHECK(tr->xd.gc[i].n_iter == 7 && tr->xg.gc[i < tr->xg.nl ? i : 0].n_iter == 3,
                  "layer %d: clamping iterations D %d G %d, want 7 and 3", i, tr->xd.gc[i].n_iter,
                  tr->xg.gc[i < tr->xg.nl ? i : 0].n_iter);
        lg_trainer_free(tr);
    }
    compare(&c, 3, "toy gradient clamping, 7 iterations in D");

    /* non-finite: a NaN planted in one weight of G (both trainers) makes
     * every update of one step non-finite: all are skipped with the state
     * restored and Adam's counters held; then the weight is repaired and
     * training goes on. With the NaN left in, both stop as diverged. */
    for (int run = 0; run < 3; run++) {
        int lasting = run == 1; /* run 2: run 0 with RMSProp (its scratch m stays 0) */
        toy(&c);
        CHECK_OK(lg_config_set(&c, "train.max_nonfinite=6"));
        CHECK_OK(lg_config_set(&c, "ema.decay=0.8")); /* a skipped G update leaves the EMA alone */
        CHECK_OK(lg_config_set(&c, "ema.start=1"));
        CHECK_OK(lg_config_set(&c, "lipschitz.d.clamp_ratio=1.5")); /* its vectors are restored too */
        if (run == 2) {
            const char *rs[] = {"optim.d.kind=rmsprop", "optim.g.kind=rmsprop", "optim.d.beta1=0",
                                "optim.g.beta1=0", NULL};
            for (int i = 0; rs[i]; i++) CHECK_OK(lg_config_set(&c, rs[i]));
        }
        lg_trainer *tr[2] = {NULL, NULL};
        CHECK_OK(lg_trainer_create(&tr[0], &c));
        CHECK_OK(lg_trainer_create(&tr[1], &c));
        if (!tr[0] || !tr[1]) break;
        CHECK_OK(lg__trainer_set_step_mode(tr[1], 1));
        lg_train_stats s[2];
        lg_status r[2] = {LG_OK, LG_OK};
        float keep = 0.0f;
        int skipped = 0, stopped_at = -1;
        for (int i = 0; i < 6 && r[0] == LG_OK; i++) {
            for (int k = 0; k < 2; k++) {
                float *w = lg_model_params(lg_trainer_generator(tr[k]));
                if (i == 2) {
                    keep = w[3];
                    w[3] = NAN;
                }
                if (i == 3 && !lasting) w[3] = keep;
                r[k] = lg_trainer_step(tr[k], &s[k]);
            }
            CHECK(r[0] == r[1], "NaN case step %d: status %d vs %d", i, r[0], r[1]);
            /* on the diverging step the losses may differ (the sync-free step
             * computes, without applying, the updates after the limit) */
            CHECK(r[0] != LG_OK || memcmp(&s[0], &s[1], sizeof s[0]) == 0,
                  "NaN case step %d: stats differ (skipped %d/%d, run %d/%d)", i, s[0].skipped,
                  s[1].skipped, s[0].nonfinite_run, s[1].nonfinite_run);
            CHECK(s[0].step == s[1].step && s[0].skipped == s[1].skipped &&
                      s[0].nonfinite_run == s[1].nonfinite_run,
                  "NaN case step %d: step %lld/%lld skipped %d/%d run %d/%d", i,
                  (long long)s[0].step, (long long)s[1].step, s[0].skipped, s[1].skipped,
                  s[0].nonfinite_run, s[1].nonfinite_run);
            check_nets(tr[0], tr[1], "NaN case", i);
            skipped += s[0].skipped;
            if (r[0] != LG_OK) stopped_at = i;
        }
        if (!lasting) {
            CHECK(skipped == 4, "a NaN step skipped %d updates, want n_dis + 1 = 4", skipped);
            CHECK(tr[0]->opt_d.t == 5 * 3 && tr[0]->opt_g.t == 5, "Adam steps D %lld G %lld",
                  (long long)tr[0]->opt_d.t, (long long)tr[0]->opt_g.t);
            printf("  %-28s 6 steps, bitwise equal; %d updates skipped\n",
                   run ? "toy NaN in G, RMSProp" : "toy NaN in G, repaired", skipped);
        } else {
            CHECK(r[0] == LG_ERR_NONFINITE && stopped_at == 3,
                  "a lasting NaN: status %d at step %d, want diverged (%d) at step 3", r[0],
                  stopped_at, LG_ERR_NONFINITE);
            printf("  %-28s both diverged at step %d\n", "toy NaN in G, lasting", stopped_at);
        }
        lg_trainer_free(tr[0]);
        lg_trainer_free(tr[1]);
    }

    /* Divergence in D alone: every real point is NaN, so every D update is
     * non-finite while G's loss (fakes only) stays finite. With
     * max_nonfinite 2 and n_dis 3 the classic step stops at the 2nd D
     * update; the sync-free step must not apply its 3rd D update or its G
     * update either: G and its EMA keep their initial weights in both. */
    {
        toy(&c);
        CHECK_OK(lg_config_set(&c, "train.max_nonfinite=2"));
        CHECK_OK(lg_config_set(&c, "ema.decay=0.8"));
        lg_trainer *tr[2] = {NULL, NULL};
        CHECK_OK(lg_trainer_create(&tr[0], &c));
        CHECK_OK(lg_trainer_create(&tr[1], &c));
        if (tr[0] && tr[1]) {
            CHECK_OK(lg__trainer_set_step_mode(tr[1], 1));
            lg_model *g = lg_trainer_generator(tr[0]);
            size_t ng = lg_model_num_params(g);
            float *g0 = malloc(ng * sizeof *g0); /* (ng) G's initial weights */
            CHECK(g0 != NULL, "malloc");
            if (g0) memcpy(g0, lg_model_params(g), ng * sizeof *g0);
            lg_train_stats s[2];
            lg_status r[2];
            for (int k = 0; k < 2; k++) {
                lg_dataset *d = &tr[k]->data;
                for (int64_t i = 0; i < d->n * lg_data_sample_size(d); i++) d->x[i] = NAN;
                r[k] = lg_trainer_step(tr[k], &s[k]);
            }
            CHECK(r[0] == LG_ERR_NONFINITE && r[1] == LG_ERR_NONFINITE,
                  "NaN real data: status %d/%d, want diverged (%d) at the first step", r[0], r[1],
                  LG_ERR_NONFINITE);
            check_nets(tr[0], tr[1], "NaN real data", 0);
            CHECK(s[0].skipped == 2 && s[1].skipped == 2 && s[0].nonfinite_run == 2 &&
                      s[1].nonfinite_run == 2 && s[0].step == 1 && s[1].step == 1,
                  "NaN real data: skipped %d/%d run %d/%d step %lld/%lld, want 2, 2, 1",
                  s[0].skipped, s[1].skipped, s[0].nonfinite_run, s[1].nonfinite_run,
                  (long long)s[0].step, (long long)s[1].step);
            for (int k = 0; k < 2; k++) {
                lg_model *gk = lg_trainer_generator(tr[k]), *ek = lg_trainer_ema(tr[k]);
                CHECK(g0 && same(g0, lg_model_params(gk), ng) && tr[k]->opt_g.t == 0,
                      "NaN real data, %s step: G was updated after D diverged (Adam t %lld)",
                      k ? "sync-free" : "classic", (long long)tr[k]->opt_g.t);
                CHECK(ek && g0 && same(g0, lg_model_params(ek), ng),
                      "NaN real data, %s step: the EMA of G moved", k ? "sync-free" : "classic");
                CHECK(lg_trainer_steps_done(tr[k]) == 0, "NaN real data: %lld steps done, want 0",
                      (long long)lg_trainer_steps_done(tr[k]));
            }
            printf("  %-28s both stop at D update 2 of 3; G untouched\n", "toy NaN real data");
            free(g0);
        }
        lg_trainer_free(tr[0]);
        lg_trainer_free(tr[1]);
    }

    /* CIFAR-shaped data through the SN-GAN ResNet (narrow, tiny batches) */
    char dir[64], path[256], set[320];
    CHECK(tf_mkdtemp(dir, sizeof dir) == 0, "temp dir");
    CHECK(tf_write_cifar(dir, 40, path, sizeof path) == 0, "cifar file");
    CHECK_OK(lg_config_load_file(&c, "configs/cifar10_sngan_hinge.yaml"));
    snprintf(set, sizeof set, "data.path=%s", path);
    const char *sets[] = {set, "model.g.width=16", "model.d.width=16", "train.batch_d=4",
                          "train.batch_g=6", "train.n_dis=2", "threads=1", NULL};
    for (int i = 0; sets[i]; i++) CHECK_OK(lg_config_set(&c, sets[i]));
    compare(&c, 2, "CIFAR-shaped ResNet, SN");
    CHECK_OK(lg_config_set(&c, "lipschitz.d.gp_lambda=1"));
    compare(&c, 1, "CIFAR-shaped ResNet, SN + GP");
    tf_rm_rf(dir);

    /* near 2^24 Adam steps the device's float counters would round: the
     * trainer goes back to the classic step, with the same results */
    toy(&c);
    {
        lg_trainer *a = NULL, *b = NULL;
        CHECK_OK(lg_trainer_create(&a, &c));
        CHECK_OK(lg_trainer_create(&b, &c));
        if (a && b) {
            CHECK_OK(lg__trainer_set_step_mode(b, 1));
            a->opt_d.t = b->opt_d.t = ((int64_t)1 << 24) - 2;
            lg_train_stats sa, sb;
            CHECK_OK(lg_trainer_step(a, &sa));
            CHECK_OK(lg_trainer_step(b, &sb));
            CHECK(b->dev.mode == 0 && strstr(lg_trainer_device_info(b), "2^24"),
                  "near 2^24 updates: mode %d, info '%s'", b->dev.mode, lg_trainer_device_info(b));
            CHECK(memcmp(&sa, &sb, sizeof sa) == 0, "near 2^24 updates: stats differ");
            check_nets(a, b, "near 2^24", 0);
        }
        lg_trainer_free(a);
        lg_trainer_free(b);
    }

    /* configs that need host decisions between updates stay classic */
    toy(&c);
    CHECK_OK(lg_config_set(&c, "lipschitz.d.sr_gamma=0.5"));
    lg_trainer *t = NULL;
    CHECK_OK(lg_trainer_create(&t, &c));
    if (t) {
        CHECK(lg__trainer_set_step_mode(t, 1) == LG_ERR_UNSUPPORTED,
              "SR-GAN accepted the sync-free step");
        CHECK(strstr(lg_trainer_device_info(t), "classic") != NULL, "info: %s",
              lg_trainer_device_info(t));
    }
    lg_trainer_free(t);
    return lg_test_summary("test_train_step_dev");
}
