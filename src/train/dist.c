/* Data-parallel training over MPI (lipgan/dist.h). Built with MPI when the
 * Makefile finds mpicc (LG_HAVE_MPI); otherwise every entry says so. */
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lipgan/dist.h"

#ifdef LG_HAVE_MPI
#include <mpi.h>

static int g_rank, g_world = 1, g_local = 1, g_local_rank, g_active;
static int g_own; /* 1: lipgan called MPI_Init, so it finalizes too */

/* LG_ERR_IO "dist: <what> failed: <MPI's reason>" */
static lg_status mpi_fail(int e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static lg_status mpi_fail(int e, const char *fmt, ...) {
    char what[256], why[MPI_MAX_ERROR_STRING];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    int len = 0;
    MPI_Error_string(e, why, &len);
    return lg_error_set(LG_ERR_IO, "dist: %s failed: %s", what, why);
}

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
            MPI_Comm_rank(node, &g_local_rank);
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
int lg_dist_local_rank(void) { return g_active ? g_local_rank : 0; }

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
        if (e != MPI_SUCCESS)
            return mpi_fail(e, "averaging %zu values over %d processes", n, g_world);
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
    return e == MPI_SUCCESS ? LG_OK
                            : mpi_fail(e, "gathering %zu values from %d processes", n, g_world);
}

/* the one shared data set (lg_dist_data_load) */
static MPI_Win g_data_win = MPI_WIN_NULL;
static MPI_Comm g_data_node = MPI_COMM_NULL;
static const float *g_data_x;
static size_t g_data_bytes;

static void release_shared(void) {
    if (g_data_win == MPI_WIN_NULL) return;
    MPI_Win_free(&g_data_win); /* collective over the machine's processes */
    MPI_Comm_free(&g_data_node);
    g_data_bytes = 0;
}

lg_status lg_dist_data_load(lg_dataset *d, lg_dist_loader load, void *user) {
    memset(d, 0, sizeof *d);
    if (!g_active || g_world == 1 || g_local == 1) return load(d, user);
    LG_ASSERT(!g_data_x); /* one shared data set at a time */
    release_shared(); /* a detached earlier one (every process gets here together) */
    MPI_Comm node;
    int e = MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, g_rank, MPI_INFO_NULL, &node);
    if (e != MPI_SUCCESS) return mpi_fail(e, "splitting the processes by machine");
    int lr = 0;
    MPI_Comm_rank(node, &lr);
    /* the loader's outcome and the set's shape, from the machine's first process */
    struct {
        int64_t n, status;
        int32_t c, h, w, ncls, has_y;
    } hdr;
    memset(&hdr, 0, sizeof hdr);
    char msg[1024] = "";
    lg_dataset mine;
    memset(&mine, 0, sizeof mine);
    if (lr == 0) {
        lg_status s = load(&mine, user);
        hdr.status = s;
        if (s != LG_OK) snprintf(msg, sizeof msg, "%s", lg_error_msg());
        hdr.n = mine.n;
        hdr.c = mine.c;
        hdr.h = mine.h;
        hdr.w = mine.w;
        hdr.ncls = mine.num_classes;
        hdr.has_y = mine.y != NULL;
    }
    e = MPI_Bcast(&hdr, (int)sizeof hdr, MPI_BYTE, 0, node);
    if (e == MPI_SUCCESS) e = MPI_Bcast(msg, (int)sizeof msg, MPI_CHAR, 0, node);
    if (e != MPI_SUCCESS || hdr.status != LG_OK) {
        lg_data_free(&mine);
        MPI_Comm_free(&node);
        if (e != MPI_SUCCESS) return mpi_fail(e, "sharing the data set's shape");
        return lg_error_set((lg_status)hdr.status, "%s", msg);
    }
    size_t nx = (size_t)hdr.n * (size_t)hdr.c * (size_t)hdr.h * (size_t)hdr.w;
    size_t ny = hdr.has_y ? (size_t)hdr.n : 0;
    size_t bytes = sizeof(float) * nx + sizeof(int32_t) * ny;
    void *base = NULL, *p0 = NULL;
    MPI_Win win = MPI_WIN_NULL;
    e = MPI_Win_allocate_shared(lr == 0 ? (MPI_Aint)bytes : 0, 4, MPI_INFO_NULL, node, &base, &win);
    MPI_Aint sz = 0;
    int du = 0;
    if (e == MPI_SUCCESS) e = MPI_Win_shared_query(win, 0, &sz, &du, &p0);
    if (e != MPI_SUCCESS) {
        if (win != MPI_WIN_NULL) MPI_Win_free(&win);
        lg_data_free(&mine);
        MPI_Comm_free(&node);
        return mpi_fail(e, "allocating the shared data set");
    }
    MPI_Win_lock_all(MPI_MODE_NOCHECK, win);
    if (lr == 0) {
        memcpy(p0, mine.x, sizeof(float) * nx);
        if (mine.y) memcpy((float *)p0 + nx, mine.y, sizeof(int32_t) * ny); /* has_y == (mine.y != NULL) */
        lg_data_free(&mine);
    }
    MPI_Win_sync(win); /* the copy is visible to every process after the barrier */
    MPI_Barrier(node);
    MPI_Win_sync(win);
    MPI_Win_unlock_all(win);
    d->n = hdr.n;
    d->c = hdr.c;
    d->h = hdr.h;
    d->w = hdr.w;
    d->x = p0;
    d->y = ny ? (int32_t *)((float *)p0 + nx) : NULL;
    d->num_classes = hdr.ncls;
    g_data_win = win;
    g_data_node = node;
    g_data_x = d->x;
    g_data_bytes = bytes;
    return LG_OK;
}

/* Only detaches: freeing the window is collective, and a process may free
 * its trainer on a failure the others do not share (it then aborts them).
 * The window goes at the next load or in lg_dist_finalize, which every
 * process reaches together. */
void lg_dist_data_free(lg_dataset *d) {
    if (g_data_x && d->x == g_data_x) {
        g_data_x = NULL;
        memset(d, 0, sizeof *d);
        return;
    }
    lg_data_free(d);
}

size_t lg_dist_data_shared_bytes(void) { return g_data_x ? g_data_bytes : 0; }

int lg_dist_any(int flag) {
    if (!g_active || g_world == 1) return flag != 0;
    int in = flag != 0, out = in;
    if (MPI_Allreduce(&in, &out, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD) != MPI_SUCCESS) return 1;
    return out;
}

void lg_dist_finalize(void) {
    if (!g_active) return;
    g_data_x = NULL;
    release_shared();
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
int lg_dist_local_rank(void) { return 0; }
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
lg_status lg_dist_data_load(lg_dataset *d, lg_dist_loader load, void *user) {
    memset(d, 0, sizeof *d);
    return load(d, user);
}
void lg_dist_data_free(lg_dataset *d) { lg_data_free(d); }
size_t lg_dist_data_shared_bytes(void) { return 0; }
int lg_dist_any(int flag) { return flag != 0; }
void lg_dist_finalize(void) {}
void lg_dist_abort(int code) { (void)code; }

#endif
