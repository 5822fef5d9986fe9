/* lipgan/train.h - the GAN trainer, checkpoints and sampling.
 *
 * One "step" is one generator update preceded by train.n_dis discriminator
 * updates (thesis 5.3: 5 D updates at batch 64, then one G update at batch
 * 128; Adam per network; learning rate decayed linearly to 0 over
 * train.steps); train.n_dis_boost raises the count for some steps (the
 * WGAN critic schedule, lg_dis_at in optim.h). A D update:
 *   real x (batch_d) from the shuffled data (+ optional instance noise),
 *   z ~ N(0, I), fake = G(z) (no graph), loss = loss_d(D(x), D(fake))
 *   [+ gradient penalty], grads, [spectral gradient clamping], Adam,
 *   [weight clipping], [SR every sr_every updates].
 * A G update: z (batch_g), loss = loss_g(D(G(z))) [- lambda sum r(W)],
 *   grads w.r.t. G only, [clamping], Adam, [clipping], [SR], [EMA].
 * SN/Toeplitz power iterations advance once per update of their network:
 * in D's one forward over [real; fake] (over real data alone when D has
 * batch norm, which needs per-batch statistics); D's fake pass in that case,
 * the penalty pass and the G update's pass through D use the stored
 * vectors.
 * An update whose loss or gradient is not finite is skipped (parameters,
 * moments and Adam's step count untouched) and counted; train.max_nonfinite
 * skipped updates in a row stop the run (LG_ERR_NONFINITE).
 *
 * Determinism: every random draw comes from a seeded stream (rng.h: noise,
 * gradient-penalty epsilon, instance noise; the data sampler's cursor), all
 * saved in checkpoints, so for a fixed thread count and backend a run that
 * is stopped and resumed gives bitwise the same losses and weights as one
 * that is not.
 *
 * Checkpoint (safetensors, written atomically: temp file, fsync, rename,
 * fsync of the directory; the older ones are deleted only after the new one
 * is durable, keeping log.keep). Tensors:
 *   G.<name>, D.<name>        parameters and state (BN statistics, SN u/v,
 *                             Toeplitz u) by model.h's names
 *   EMA.<name>                the EMA generator (if ema.decay > 0)
 *   G.adam.m, G.adam.v (P)    Adam moments; G.adam.t (1) I64 step count;
 *   D.adam.*                  the same for D
 *   G.gclamp.<layer>.{u0,u1,v0,v1}, G.rw.<layer>.{u,v}, D.sr.<layer>.ref
 *                             trainer-owned Lipschitz state, when used
 *   D.monitor.<layer>.{state,tv}, G.monitor.<layer>.{state,tv}
 *                             spectral monitor state (monitor.h) of a run with
 *                             log.spectra_every > 0; all or none (none: resumes
 *                             with a warning, the monitor restarts cold)
 *   train.state (I64)         {G steps done, D updates done, G updates done,
 *                             skipped updates in a row}
 *   data.shape (I64)          {C, H, W} of a sample ({2, 1, 1} for toys)
 *   data.cursor (I64)         the sampler's cursor (data.h)
 *   rng.noise, rng.gp, rng.data (I64)  rng.h states
 * and metadata "format" = "lipgan-checkpoint-1", "config" (the effective
 * config as YAML), "step", "lipgan_version", "processes" (the dist: mpi
 * process count that wrote it) and "lipgan.crc32" (safetensors.h). The learning-rate schedule is
 * a pure function of the step and the config, both saved.
 *
 * Threads: a trainer on the CPU computes with its config's count (threads;
 * 0: OMP_NUM_THREADS, else all cores, divided among the processes of this
 * machine under dist: mpi; lg_trainer_threads). Each call below that
 * computes (lg_trainer_create, _step, _run, _save, _load) applies it on
 * entry and puts the caller's back on return (lg_cpu_threads_push/pop,
 * backend_cpu.h): the CPU kernels' count, OpenBLAS's and the calling
 * thread's OpenMP default (omp_get_max_threads). So trainers of different
 * counts can take turns in one process, and the host's own OpenMP/OpenBLAS
 * setting is unchanged after each call. Inside lg_trainer_run the
 * after_step callback runs under the trainer's count. What is not a
 * trainer call runs under the caller's count: lg_generate, the
 * lg_checkpoint_* functions, and lg_model_* calls on the networks
 * lg_trainer_generator etc. return. The counts are process-wide for the
 * length of a call: do not run trainers of different counts at the same
 * time on several host threads.
 *
 * Messages: the trainer's errors and progress lines are also what
 * `lipgan train` prints, so they name the CLI's flags. For a C caller:
 * --out is lg_train_opts.out_dir, --resume is lg_train_opts.resume,
 * "CONFIG and --set" is the lg_config given to lg_trainer_create, and a
 * config key (train.steps) is the lg_config field of that path
 * (cfg.train.steps).
 *
 * Usage (what `lipgan train` does):
 *   lg_trainer *t;
 *   LG_TRY(lg_trainer_create(&t, &cfg));
 *   lg_train_opts o = {.out_dir = "runs/x", .progress = stderr};
 *   lg_status s = lg_trainer_run(t, &o);    // LG_OK, INTERRUPTED or NONFINITE
 *   lg_trainer_free(t);
 */
#ifndef LIPGAN_TRAIN_H
#define LIPGAN_TRAIN_H

#include <signal.h>
#include <stdint.h>
#include <stdio.h>

#include "lipgan/config.h"
#include "lipgan/model.h"
#include "lipgan/status.h"

#ifdef __cplusplus
extern "C" {
#endif

#define LG_CHECKPOINT_FORMAT "lipgan-checkpoint-1"

/* What one step did (host values). */
typedef struct lg_train_stats {
    int64_t step;         /* G steps done after this one; on LG_ERR_NONFINITE the
                           * number of the step that diverged (steps done before + 1) */
    float loss_d;         /* D loss of the last D update (penalty included) */
    float loss_g;         /* G loss (r(W) penalty included) */
    float d_real, d_fake; /* mean D output on real / fake data, last D update */
    float gp;             /* gradient penalty term of the last D update (0 if off) */
    float lr_g, lr_d;     /* learning rates used */
    float sigma_min, sigma_mean, sigma_max; /* over D's normalized layers: the power-
                           * iteration estimate of each raw weight's norm, the divisor
                           * of its normalization (SN: spectral norm of the reshaped
                           * matrix; Toeplitz: the convolution's operator norm; SR
                           * rescales raw weights to norm 1 at its steps); 0 if none */
    int skipped;          /* updates skipped in this step (non-finite) */
    int nonfinite_run;    /* skipped updates in a row so far (on divergence: train.max_nonfinite) */
} lg_train_stats;

typedef struct lg_trainer lg_trainer;

/* Loads the data, builds G, D (and the EMA of G), optimizers and random
 * streams from a validated config, in the config's thread count (see
 * Threads above; the caller's count is unchanged afterwards). */
lg_status lg_trainer_create(lg_trainer **out, const lg_config *cfg);
void lg_trainer_free(lg_trainer *t);

/* One step (n_dis D updates, or the boosted count, + 1 G update). LG_ERR_NONFINITE when the
 * skipped updates in a row reached train.max_nonfinite: the step ends at that update, the
 * rest of it is not applied and the step is not counted in lg_trainer_steps_done (stats hold
 * the losses, skipped count and run; the sigma fields are 0). */
lg_status lg_trainer_step(lg_trainer *t, lg_train_stats *stats);

/* How steps run, in one line: "cpu: classic step", "cuda: sync-free step,
 * CUDA graphs (D update N nodes, G update M nodes)", or why graphs are off.
 * The string belongs to t: valid until its next step or lg_trainer_free. */
const char *lg_trainer_device_info(const lg_trainer *t);

/* G steps done so far. */
int64_t lg_trainer_steps_done(const lg_trainer *t);
/* The CPU thread count t's calls apply (config threads, or its default
 * resolved as under Threads above); 0 on a device backend, whose trainer
 * leaves the host's count alone. */
int lg_trainer_threads(const lg_trainer *t);
const lg_config *lg_trainer_config(const lg_trainer *t);
/* Bytes the step arena holds (tensor data in the backend's memory, plus the
 * host's graph records): after a step of each kind (a D and a G update,
 * logging included) it stops growing, folded to what the largest used plus
 * 1/8. Parameters and optimizer state are not counted. */
size_t lg_trainer_arena_bytes(const lg_trainer *t);
/* The networks (the EMA generator is NULL when ema.decay is 0). They
 * belong to t: do not free them; valid until lg_trainer_free. */
lg_model *lg_trainer_generator(lg_trainer *t);
lg_model *lg_trainer_discriminator(lg_trainer *t);
lg_model *lg_trainer_ema(lg_trainer *t);

/* Writes a checkpoint of everything above to path (atomically). The
 * directory must exist (lg_trainer_run creates its run directory; this
 * does not). */
lg_status lg_trainer_save(lg_trainer *t, const char *path);
/* Restores a checkpoint written by lg_trainer_save for the same model
 * config. Every tensor's presence and shape is checked first (errors name
 * the file and tensor); on error t is unchanged. An optimizer whose kind
 * (optim.<net>.kind) differs from the checkpoint config's starts afresh:
 * zero moments, step 0. */
lg_status lg_trainer_load(lg_trainer *t, const char *path);

typedef struct lg_train_opts {
    const char *out_dir;      /* run directory: checkpoints, metrics.jsonl, samples,
                               * config.yaml; created if missing */
    int resume;               /* continue from the newest checkpoint in out_dir */
    FILE *progress;           /* progress lines (NULL: none) */
    volatile sig_atomic_t *stop_flag;  /* polled between steps: nonzero ->
                                        * checkpoint and return LG_ERR_INTERRUPTED */
    int64_t stop_at;          /* > 0: stop (with a checkpoint) once this many steps are
                               * done, as if interrupted, but returning LG_OK */
    /* Called after every step (monitoring, tests), under the trainer's thread
     * count; may be NULL. */
    void (*after_step)(lg_trainer *t, const lg_train_stats *s, void *user);
    void *user;
} lg_train_opts;

/* The training loop. The run directory:
 *  - is locked first (flock on out_dir/.lock, held until the function
 *    returns; the kernel drops it if the process dies); a directory locked
 *    by another process is refused with a message naming it and the PID;
 *    under dist: mpi only rank 0 (the writer) locks;
 *  - resume: it must exist and hold a checkpoint (nothing is created
 *    otherwise); the newest one is loaded; if it is damaged the error names
 *    the newest older one that opens (nothing falls back silently); config
 *    keys that differ from the checkpoint's are named in a warning (with
 *    the learning-rate change); a checkpoint at or past train.steps is
 *    "nothing to do" (LG_OK, nothing written);
 *  - no resume: it must not hold checkpoints, nor a metrics.jsonl (a run
 *    killed before its first checkpoint);
 * the refusals (lock, checkpoints or metrics.jsonl without resume) are
 * LG_ERR_INVALID_ARG, an out_dir that cannot be made or written
 * LG_ERR_IO, all with lg_trainer_run_dir_conflict() = 1 (the CLI's usage
 * error, exit 2). Then it steps until train.steps,
 * every log.every steps printing a progress line and appending a row to
 * out_dir/metrics.jsonl, writing sample grids from fixed noise and
 * checkpoints as configured, and a final checkpoint and sample grid.
 * Watching the run (none of it draws from the training's random streams or
 * uses its context, so resuming stays bitwise exact):
 *  - every log.spectra_every steps the spectral monitor (monitor.h) records
 *    D (with the step's real batch for the gradient-norm lower bound) and G
 *    into out_dir/spectra.bin, and its summary goes into that step's
 *    metrics.jsonl row (spec_D_auc_min, lip_D_upper, ...) and, as a line
 *    under the progress line, with a WARNING on spectral collapse; on
 *    resume the records past the checkpoint are dropped and the monitor
 *    continues from the state the checkpoint carries, so its records equal
 *    an uninterrupted run's;
 *  - every eval.every steps eval.n samples of the EMA generator (else G),
 *    from fixed noise of their own seed, are evaluated (eval.h; networks and
 *    reference statistics are loaded once, before the first step, so a
 *    missing file fails early) and the row gets flat fields (eval_cfid,
 *    eval_toy_modes_covered, ...) and "eval": lg_eval_result_json's record
 *    with every sample count; a failed evaluation is an "eval_warning";
 *  - with log.tensorboard an event file (tfevents.h) gets the row's scalars
 *    and the sample grids; a resumed run opens a new file.
 * A monitor or TensorBoard write failure is a warning, not an error.
 * Returns LG_OK, LG_ERR_INTERRUPTED (stop flag; a checkpoint was written)
 * or LG_ERR_NONFINITE (diverged; no checkpoint of the diverged state is
 * written, the previous ones stay). */
lg_status lg_trainer_run(lg_trainer *t, const lg_train_opts *opts);

/* 1 if the last lg_trainer_run was refused because of its run directory,
 * a conflict in how it was asked for, not bad data; 0 otherwise (reset by
 * every lg_trainer_run). The refusals:
 *  - out_dir cannot be made a directory: it (or a component of its path) is
 *    a file, or creating it fails (no permission, read-only file system, any
 *    mkdir error but "exists"): LG_ERR_IO;
 *  - out_dir is not writable: its lock file out_dir/.lock cannot be created
 *    for EACCES, EPERM or EROFS (other errors opening it are plain
 *    LG_ERR_IO, conflict 0): LG_ERR_IO;
 *  - out_dir is locked by another process: LG_ERR_INVALID_ARG;
 *  - without resume, out_dir holds a checkpoint or a non-empty
 *    metrics.jsonl: LG_ERR_INVALID_ARG.
 * Not conflicts: resume of a missing out_dir or of one without checkpoints
 * (LG_ERR_NOT_FOUND), resume with out_dir NULL (LG_ERR_INVALID_ARG).
 * dist: rank 0 alone checks and locks the directory; the other processes
 * get the same value with lg_trainer_run_peer_failed() = 1. */
int lg_trainer_run_dir_conflict(const lg_trainer *t);
/* dist: 1 if the last lg_trainer_run failed because another process failed
 * to start the run. Every process that fails before the first step meets
 * the others first, so a failure anywhere stops all of them before any
 * collective step: the same status (and run_dir_conflict) on every
 * process, the failing one with its own message. Before that meeting no
 * step has run, so the processes may also end MPI normally. */
int lg_trainer_run_peer_failed(const lg_trainer *t);
/* Steps done when the last lg_trainer_run began stepping (after a resume);
 * -1 if it never got there. Equal to lg_trainer_steps_done afterwards when
 * there was nothing to do. */
int64_t lg_trainer_run_start(const lg_trainer *t);

/* ---- checkpoints ---- */

/* "DIR/ckpt_<step, 9 digits>.safetensors" into buf. */
void lg_checkpoint_path(char *buf, size_t cap, const char *dir, int64_t step);
/* The newest checkpoint in dir (by step) into buf; LG_ERR_NOT_FOUND if none. */
lg_status lg_checkpoint_latest(const char *dir, char *buf, size_t cap, int64_t *step);

/* A generator restored from a checkpoint file (or the newest one of a run
 * directory) for sampling: its config (optional out), the EMA weights when
 * use_ema and present. Sample shape from data.shape. *g is the caller's:
 * free it with lg_model_free. */
lg_status lg_checkpoint_load_generator(const char *path, const lg_backend *be, int use_ema,
                                       lg_model **g, lg_config *cfg_out);

/* G and D as the config of a checkpoint file (or of the newest one of a run
 * directory) builds them: its "config" metadata and data.shape, on the CPU,
 * with freshly initialized weights (the file's are NOT loaded). For what
 * needs the layers, not the trained values: names, shapes and each layer's
 * geometry (lg_model_layer; `lipgan spectra`). An EMA generator has G's
 * layers. *g and *d are the caller's (lg_model_free); both NULL on error.
 * Errors: LG_ERR_NOT_FOUND (no config metadata or no data.shape: not
 * written by lipgan train), LG_ERR_FORMAT / LG_ERR_INVALID_ARG (a config
 * or sample shape the models cannot be built from), the file's errors. */
lg_status lg_checkpoint_models(const char *path, lg_model **g, lg_model **d);

/* n samples from G (living on backend be) in evaluation mode (BN running
 * statistics, stored SN vectors, nothing updated), z ~ N(0, I) from
 * lg_rng(seed, LG_RNG_STREAM_EVAL), in batches of 64; out (n, sample size)
 * host floats. n = 0 does nothing (out may be NULL). LG_ERR_INVALID_ARG
 * for g NULL, n < 0, or out NULL with n > 0. Runs in the caller's thread
 * count (lg_cpu_threads; not a trainer's). */
lg_status lg_generate(lg_model *g, const lg_backend *be, int64_t n, uint64_t seed, float *out);
/* Floats per generated sample: data_dim, or img_c * img_size^2. */
int64_t lg_generator_sample_size(const lg_model *g);

#ifdef __cplusplus
}
#endif
#endif
