/* Internal: the trainer's state, shared by src/train/trainer.c (steps),
 * checkpoint.c (save/load) and run.c (the loop, logs, samples). */
#ifndef LIPGAN_SRC_TRAIN_INTERNAL_H
#define LIPGAN_SRC_TRAIN_INTERNAL_H

#include <stdio.h>

#include "lipgan/backend_cpu.h"
#include "lipgan/config.h"
#include "lipgan/data.h"
#include "lipgan/lipschitz.h"
#include "lipgan/loss.h"
#include "lipgan/model.h"
#include "lipgan/monitor.h"
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
    int sr_by_step;            /* 1: lipschitz.<net>.sr_schedule steps */
    int64_t updates;           /* updates applied to this network */
} lg_net_extra;

/* The sync-free step (step_dev.c): control and statistics slots in
 * lg_train_dev.s, in backend memory. The host uploads LR_D..LIMIT at the
 * start of a step and reads all of them back once at its end. */
enum {
    LG_TS_LR_D, LG_TS_LR_G,         /* learning rates of this step */
    LG_TS_T_D, LG_TS_T_G,           /* optimizer steps (lg_adam.t) of D and G */
    LG_TS_RUN, LG_TS_MAXRUN, LG_TS_SKIPPED, /* flag_track counters, */
    LG_TS_LIMIT,                    /* and its limit (train.max_nonfinite) */
    LG_TS_LOSS_D, LG_TS_DREAL, LG_TS_DFAKE, LG_TS_GP, LG_TS_LOSS_G,
    LG_TS_FLAG, LG_TS_FLAG2,        /* the update's finiteness flag, and scratch */
    LG_TS_HP, LG_TS_HP1, LG_TS_HP2, /* adam_prep's output */
    LG_TS_COUNT
};

typedef struct lg_train_dev {
    int mode;              /* 0: classic step (host reads after every update);
                            * 1: sync-free; 2: sync-free, updates replayed as CUDA graphs */
    float *s;              /* (LG_TS_COUNT) backend memory */
    float *in_x;           /* (batch_d, C, H, W) real batch, backend memory */
    float *in_z;           /* (max(batch_d, batch_g), z_dim) latent noise */
    float *in_e;           /* (batch_d) GP interpolation weights */
    float *ema_bak;        /* (params + state of the EMA) before its update, or NULL */
    float *gc_bak;         /* (sum over clamped layers of 2 (rows + cols)) gradient
                            * clamping's vectors before an update, or NULL */
    void *graph[2];        /* lg_cuda_graph of the D and the G update, or NULL */
    size_t graph_allocs;   /* lg_ctx_sys_allocs when they were captured */
    int calm;              /* steps in a row in which the step arena did not grow */
    int capture_failures;
    char info[300];        /* lg_trainer_device_info() */
} lg_train_dev;

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
    int rank, world;           /* dist: mpi (lipgan/dist.h): this process, processes; 0, 1 */
    int bd, bg;                /* this process's slice of the D and G batches */
    int64_t step;              /* G steps done */
    int nonfinite_run;         /* skipped updates in a row */
    float *xb;                 /* (batch_d, C, H, W) host: real batch */
    float *nb;                 /* (batch_d, C, H, W) host: instance noise */
    float *zb;                 /* (max(batch_d, batch_g), z_dim) host: latent noise */
    float *eb;                 /* (batch_d) host: GP interpolation weights */
    float *dist_grads;         /* (max(P_g, P_d)) host, dist: mpi only: a network's
                                * gradients on their way through lg_dist_mean */
    float *flag;               /* (1) backend scalar for all_finite */
    lg_train_dev dev;          /* sync-free step and CUDA graphs (device backends) */
    float *state_bak;          /* (S_g + S_d) both networks' state before a step's
                                * forwards, restored when its update is skipped: a
                                * non-finite step must not leave NaN in SN u/v or BN stats */
    int64_t run_start;         /* steps done when lg_trainer_run's loop began (-1: not run) */
    int dir_conflict;          /* the last lg_trainer_run was refused for its run directory */
    int agreed;                /* dist: this lg_trainer_run met the others at start-up */
    int peer_failed;           /* dist: ... and another process had failed there */
    /* the spectral monitor (monitor.h) and checkpoints: its state travels in them */
    lg_monitor *mon;           /* the running lg_trainer_run's monitor (run.c), or NULL;
                                * lg_trainer_save adds its state */
    char optim_was[2][LG_CFG_STR_MAX]; /* G, D: the optimizer kind of the checkpoint last
                                * loaded where it differs from the config's (that optimizer
                                * then started afresh), else "" */
    int mon_ckpt;              /* the checkpoint last loaded: 1 holds monitor state, -1 not;
                                * 0: none loaded, or already handed on */
    int64_t mon_ckpt_step;     /* ... its step and path */
    char mon_ckpt_path[LG_CFG_PATH_MAX + 64];
    int64_t *mon_ckpt_words;   /* ... its validated monitor words (LG_MONITOR_STATE_WORDS per
                                * layer of D, then of G) and .tv vectors (each conv layer's
                                * lg_monitor_state_len floats, same order), kept for
                                * lg__checkpoint_monitor_attach; NULL when mon_ckpt <= 0 */
    float *mon_ckpt_tv;
};

/* The critic schedule of a config (lipgan/optim.h: lg_dis_at). */
static inline lg_dis_schedule lg__train_dis_schedule(const lg_config *c) {
    lg_dis_schedule s = {c->train.n_dis, c->train.n_dis_boost, c->train.n_dis_boost_first,
                         c->train.n_dis_boost_every};
    return s;
}

/* D updates before the next G update (t->step G updates done). */
static inline int lg__train_n_dis(const lg_trainer *t) {
    lg_dis_schedule s = lg__train_dis_schedule(&t->cfg);
    return lg_dis_at(&s, t->step);
}

/* Builds a model spec for role from the config and the sample shape. */
lg_status lg__train_model_spec(const lg_config *c, lg_net_role role, int sc, int sh, int sw,
                               int is_toy, lg_model_spec *out);

/* checkpoint.c: attaches the run's spectral monitor (NULL: none) to t, so
 * that checkpoints carry its state, and hands it the state of the checkpoint
 * t was loaded from (once). log (may be NULL) gets a one-line warning when
 * that checkpoint holds no monitor state (the monitor restarts cold), or a
 * note when it does but mon is NULL (log.spectra_every = 0: the state is
 * dropped). The state was validated and kept when the checkpoint was
 * loaded (mon_ckpt_words, mon_ckpt_tv), so the file is not read again;
 * errors are lg_monitor_state_set's. Detach with t->mon = NULL before
 * freeing the monitor. */
lg_status lg__checkpoint_monitor_attach(lg_trainer *t, lg_monitor *mon, FILE *log);

/* Shared by the two step paths (trainer.c). */
/* Applies t's CPU thread count for one call (lg_cpu_threads_push; nothing
 * on a device backend); pop the result on every return (trainer.c). */
lg_cpu_threads_saved lg__trainer_threads_enter(const lg_trainer *t);
lg_status lg__train_d_prepare(lg_trainer *t);
void lg__train_g_prepare(lg_trainer *t);
lg_tensor *lg__train_d_loss(lg_trainer *t, lg_tensor *x, lg_tensor *z, lg_tensor *eps,
                            lg_tensor **dr, lg_tensor **df, lg_tensor **gp);
lg_tensor *lg__train_g_loss(lg_trainer *t, lg_tensor *z);
/* The updates' input tensors (x (b, ...), z (b, z_dim), eps (b, 1[, 1, 1])
 * or NULL without a penalty): from the host buffers xb, zb, eb (from_dev
 * 0) or from the uploaded dev.in_x, in_z, in_e (1). */
void lg__train_d_inputs(lg_trainer *t, int from_dev, lg_tensor **x, lg_tensor **z,
                        lg_tensor **eps);
lg_tensor *lg__train_g_input(lg_trainer *t, int from_dev);
/* Gradients of loss w.r.t. D's (gen 0) or G's (gen 1) parameters into the
 * network's gradient buffer. */
lg_status lg__train_backprop(lg_trainer *t, lg_tensor *loss, int gen);
void lg__train_states_backup(lg_trainer *t);

/* step_dev.c: the sync-free step. init chooses the mode (see lg_train_dev)
 * from the backend and config; free releases buffers and graphs. */
lg_status lg__train_dev_init(lg_trainer *t);
void lg__train_dev_free(lg_trainer *t);
/* lg__train_n_dis D updates and one G update; fills the losses, skipped and
 * nonfinite_run of st; *diverged when the run of skipped updates reached
 * train.max_nonfinite during the step. */
lg_status lg__train_step_dev(lg_trainer *t, lg_train_stats *st, int *diverged);
/* 1 while the sync-free step is in use; switches to the classic step (and
 * returns 0) once the optimizers' step counters near 2^24, where the float copies
 * the device keeps would round. */
int lg__train_dev_keep(lg_trainer *t);
/* Test hook: switch a trainer between the classic (0) and the sync-free
 * (1) step on any backend; LG_ERR_UNSUPPORTED if its config needs the
 * classic one (gradient clamping, SR-GAN). */
lg_status lg__trainer_set_step_mode(lg_trainer *t, int mode);

#endif
