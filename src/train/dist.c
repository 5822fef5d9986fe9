/* Data-parallel training over MPI (lipgan/dist.h). Built with MPI when the
 * Makefile finds mpicc (LG_HAVE_MPI); otherwise every entry says so. */
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "lipgan/dist.h"

#ifdef LG_HAVE_MPI
#include <mpi.h>

static int g_rank, g_world = 1, g_local = 1, g_active;
static int g_own; /* 1: lipgan called MPI_Init, so it finalizes too */

int lg_dist_available(void) { return 1; }

lg_status lg_dist_init(int *rank, int *world) {
    if (!g_active) {
        int inited = 0, finalized = 0;
        MPI_Initialized(&inited);
        MPI_Finalized(&finalized);
        if (finalized)
            return lg_error_set(LG_ERR_INVALID_ARG, "dist: MPI was already finalized in this process");
        if (!inited && MPI_Init(NULL, NULL) != MPI_SUCCESS)
            return lg_error_set(LG_ERR_IO, "dist: MPI_Init failed; start lipgan with mpirun");
        g_own = !inited; /* a program that started MPI itself also ends it */
        /* errors come back as codes, so that a message names what failed */
        MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
        MPI_Comm_rank(MPI_COMM_WORLD, &g_rank);
        MPI_Comm_size(MPI_COMM_WORLD, &g_world);
        MPI_Comm node;
        if (MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, g_rank, MPI_INFO_NULL,
                                &node) == MPI_SUCCESS) {
            MPI_Comm_size(node, &g_local);
            MPI_Comm_free(&node);
        }
        g_active = 1;
    }
    *rank = g_rank;
    *world = g_world;
    return LG_OK;
}

int lg_dist_active(void) { return g_active; }
int lg_dist_rank(void) { return g_active ? g_rank : 0; }
int lg_dist_world(void) { return g_active ? g_world : 1; }
int lg_dist_local_size(void) { return g_active ? g_local : 1; }

lg_status lg_dist_mean(float *buf, size_t n) {
    if (!g_active || g_world == 1) return LG_OK;
    const float inv = 1.0f / (float)g_world;
    for (size_t off = 0; off < n;) {
        int k = n - off > (size_t)INT_MAX ? INT_MAX : (int)(n - off);
        float *p = buf + off;
        int e = g_rank == 0 ? MPI_Reduce(MPI_IN_PLACE, p, k, MPI_FLOAT, MPI_SUM, 0, MPI_COMM_WORLD)
                            : MPI_Reduce(p, NULL, k, MPI_FLOAT, MPI_SUM, 0, MPI_COMM_WORLD);
        if (e == MPI_SUCCESS && g_rank == 0)
            for (int i = 0; i < k; i++) p[i] *= inv;
        if (e == MPI_SUCCESS) e = MPI_Bcast(p, k, MPI_FLOAT, 0, MPI_COMM_WORLD);
        if (e != MPI_SUCCESS) {
            char s[MPI_MAX_ERROR_STRING];
            int len = 0;
            MPI_Error_string(e, s, &len);
            return lg_error_set(LG_ERR_IO, "dist: averaging %zu values over %d processes failed: %s",
                                n, g_world, s);
        }
        off += (size_t)k;
    }
    return LG_OK;
}

lg_status lg_dist_allgather(const double *mine, double *all, size_t n, void *user) {
    (void)user;
    if (!g_active || g_world == 1) {
        memcpy(all, mine, sizeof(double) * n);
        return LG_OK;
    }
    if (n > (size_t)INT_MAX)
        return lg_error_set(LG_ERR_INVALID_ARG, "dist: gathering %zu values per process: at most "
                                                "%d", n, INT_MAX);
    int e = MPI_Allgather(mine, (int)n, MPI_DOUBLE, all, (int)n, MPI_DOUBLE, MPI_COMM_WORLD);
    if (e != MPI_SUCCESS) {
        char s[MPI_MAX_ERROR_STRING];
        int len = 0;
        MPI_Error_string(e, s, &len);
        return lg_error_set(LG_ERR_IO, "dist: gathering %zu values from %d processes failed: %s",
                            n, g_world, s);
    }
    return LG_OK;
}

int lg_dist_any(int flag) {
    if (!g_active || g_world == 1) return flag != 0;
    int in = flag != 0, out = in;
    if (MPI_Allreduce(&in, &out, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD) != MPI_SUCCESS) return 1;
    return out;
}

void lg_dist_finalize(void) {
    if (!g_active) return;
    if (g_own) MPI_Finalize();
    g_active = 0;
}

void lg_dist_abort(int code) {
    if (g_active) MPI_Abort(MPI_COMM_WORLD, code);
}

#else /* built without MPI */

int lg_dist_available(void) { return 0; }

lg_status lg_dist_init(int *rank, int *world) {
    *rank = 0;
    *world = 1;
    return lg_error_set(LG_ERR_UNSUPPORTED,
                        "dist: mpi: this lipgan was built without MPI; install libopenmpi-dev "
                        "(tools/setup.sh does) and rebuild, or set dist: none");
}

int lg_dist_active(void) { return 0; }
int lg_dist_rank(void) { return 0; }
int lg_dist_world(void) { return 1; }
int lg_dist_local_size(void) { return 1; }
lg_status lg_dist_mean(float *buf, size_t n) {
    (void)buf;
    (void)n;
    return LG_OK;
}
lg_status lg_dist_allgather(const double *mine, double *all, size_t n, void *user) {
    (void)user;
    memcpy(all, mine, sizeof(double) * n);
    return LG_OK;
}
int lg_dist_any(int flag) { return flag != 0; }
void lg_dist_finalize(void) {}
void lg_dist_abort(int code) { (void)code; }

#endif
