/* lipgan/dist.h - data-parallel training over MPI processes (src/train/dist.c).
 *
 * With `dist: mpi` in the config, lipgan train runs as one of several MPI
 * processes (mpirun -np P lipgan train ...). Every process holds the whole
 * model, draws the same global batch from the same seeded streams and
 * computes on its own slice of it (train.batch_d / P and train.batch_g / P
 * samples); the gradients are summed over the processes on rank 0 and the
 * mean is broadcast, so every process applies the same update to the same
 * bits. This is the single-process run up to the order of the
 * floating-point sums: batch norm normalizes by the whole batch's
 * statistics, gathered from every process (synchronized batch norm,
 * lg_ctx_set_bn_sync); with `dist_sync_bn: false` each process uses its own
 * slice's (as PyTorch's DistributedDataParallel without SyncBatchNorm). Rank 0 alone writes logs, metrics, samples and
 * checkpoints; every process reads the checkpoint it resumes from.
 * With device: cuda each process runs on one GPU (process i of a machine
 * on GPU cuda.device + i modulo the GPUs it sees, lg_cuda_set_device) and the gradients
 * travel through host memory for MPI, so the trainer takes its classic
 * step there (a host sync per update, no CUDA graphs).
 *
 * The trainer calls lg_dist_init itself; a program embedding lipgan calls
 * lg_dist_finalize before it returns, or lg_dist_abort(code) on an error
 * (the other processes would otherwise wait for it forever). */
#ifndef LIPGAN_DIST_H
#define LIPGAN_DIST_H

#include <stddef.h>

#include "lipgan/data.h"
#include "lipgan/status.h"

#ifdef __cplusplus
extern "C" {
#endif

/* 1 if lipgan was built with MPI. */
int lg_dist_available(void);

/* Initializes MPI once (later calls return the same values): this
 * process's rank and the number of processes. LG_ERR_UNSUPPORTED with a
 * message when lipgan was built without MPI. */
lg_status lg_dist_init(int *rank, int *world);

/* 1 once lg_dist_init has succeeded and before lg_dist_finalize. */
int lg_dist_active(void);

/* This process's rank (0 when not distributed) and the number of processes (1). */
int lg_dist_rank(void);
int lg_dist_world(void);

/* Processes of the run on this machine (1 when not distributed): the
 * trainer divides the cores among them when the config leaves `threads` 0. */
int lg_dist_local_size(void);

/* This process's index among those on its machine (0 when not
 * distributed): with device: cuda, the trainer runs process i of a machine
 * on GPU cuda.device + i, modulo the GPUs visible to it. */
int lg_dist_local_rank(void);

/* buf (n) = the mean over the processes of buf (n), the same bits on every
 * process (reduced onto rank 0, then broadcast). */
lg_status lg_dist_mean(float *buf, size_t n);

/* all (world, n) = every process's mine (n), in rank order, the same on
 * every process (MPI_Allgather). The signature is lg_gather_fn's, so it
 * can be the batch-norm gatherer of lg_ctx_set_bn_sync; user is unused. */
lg_status lg_dist_allgather(const double *mine, double *all, size_t n, void *user);

/* Loads a data set once per machine. Distributed, the first process of
 * each machine runs load(d, user) and copies the samples (and labels) into
 * memory shared with the machine's other processes (MPI_Win_allocate_shared);
 * they all read that one copy, so P processes on a machine hold the data
 * once, not P times. Not distributed: load(d, user) itself. If the load
 * fails, every process of that machine fails with its message. Release d
 * with lg_dist_data_free (not collective: the shared memory itself goes at
 * the next lg_dist_data_load or in lg_dist_finalize). */
typedef lg_status (*lg_dist_loader)(lg_dataset *d, void *user);
lg_status lg_dist_data_load(lg_dataset *d, lg_dist_loader load, void *user);
void lg_dist_data_free(lg_dataset *d);
/* Bytes of the shared copy made by lg_dist_data_load (0 when not shared). */
size_t lg_dist_data_shared_bytes(void);

/* 1 if flag is nonzero on any process (0 when not distributed and flag is 0). */
int lg_dist_any(int flag);

/* Ends MPI (after the last collective call) if lg_dist_init started it (a
 * program that called MPI_Init itself also calls MPI_Finalize); no-op when
 * not active. */
void lg_dist_finalize(void);

/* Stops every process of the run with this exit code (MPI_Abort). */
void lg_dist_abort(int code);

#ifdef __cplusplus
}
#endif
#endif
