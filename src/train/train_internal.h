/* Internal: the trainer's state, shared by src/train/trainer.c (steps),
 * checkpoint.c (save/load) and run.c (the loop, logs, samples). */
#ifndef LIPGAN_SRC_TRAIN_INTERNAL_H
#define LIPGAN_SRC_TRAIN_INTERNAL_H

#include "lipgan/config.h"
#include "lipgan/data.h"
#include "lipgan/lipschitz.h"
#include "lipgan/loss.h"
#include "lipgan/model.h"
#include "lipgan/optim.h"
#include "lipgan/rng.h"
#include "lipgan/train.h"

/* Lipschitz machinery the trainer owns for one network (per weight layer). */
typedef struct lg_net_extra {
    const lg_cfg_lip *lip;     /* config of this network */
    int nl;                    /* weight layers */
    lg_gclamp_state *gc;       /* (nl) spectral gradient clamping, or NULL */
    lg_sn_state *rw;           /* (nl) own power-iteration states for r(W), or NULL
                                * (when the layers' own SN states are used) */
    int rw_layer_sn;           /* 1: r(W) uses the layers' SN states (update 0) */
    lg_sr_state *sr;           /* (nl) SR states, or NULL */
    unsigned char *sr_on;      /* (nl) layers SR applies to */
    int64_t updates;           /* updates applied to this network */
} lg_net_extra;

struct lg_trainer {
    lg_config cfg;
    char *cfg_yaml;            /* effective config (checkpoint metadata) */
    const lg_backend *be;
    lg_ctx *ctx;
    lg_dataset data;
    lg_data_sampler smp;
    int c, h, w;               /* sample shape ({2,1,1} for toys) */
    int64_t sample_size;       /* c*h*w */
    int is_toy;
    lg_loss_kind loss;
    lg_model *g, *d, *ema;
    lg_tensor *pg[LG_MODEL_MAX_TENSORS], *pd[LG_MODEL_MAX_TENSORS];
    int npg, npd;
    lg_adam opt_g, opt_d;
    lg_net_extra xg, xd;
    lg_rng rng_noise, rng_gp, rng_data;
    int64_t step;              /* G steps done */
    int nonfinite_run;         /* skipped updates in a row */
    float *xb;                 /* (batch_d, C, H, W) host: real batch */
    float *nb;                 /* (batch_d, C, H, W) host: instance noise */
    float *zb;                 /* (max(batch_d, batch_g), z_dim) host: latent noise */
    float *eb;                 /* (batch_d) host: GP interpolation weights */
    float *flag;               /* (1) backend scalar for all_finite */
    float *state_bak;          /* (S_g + S_d) both networks' state before a step's
                                * forwards, restored when its update is skipped: a
                                * non-finite step must not leave NaN in SN u/v or BN stats */
};

/* Builds a model spec for role from the config and the sample shape. */
lg_status lg__train_model_spec(const lg_config *c, lg_net_role role, int sc, int sh, int sw,
                               int is_toy, lg_model_spec *out);

#endif
