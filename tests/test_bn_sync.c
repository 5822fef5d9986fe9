/* Synchronized batch norm (lg_ctx_set_bn_sync): one process with a copying
 * gatherer matches the plain batch norm and passes finite differences; two
 * "processes" (threads with their own contexts, gathering through a
 * barrier) each holding half of a batch reproduce the whole batch's batch
 * norm: outputs, input gradients, summed parameter gradients and running
 * statistics, with the same running statistics bit for bit on both; a
 * failing gatherer and a backend without the entries fail with messages.
 * test_dist runs the same through MPI in a training run. */
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "lg_test.h"
#include "lipgan/backend.h"
#include "lipgan/ops.h"

static lg_status gather_copy(const double *mine, double *all, size_t n, void *user) {
    (void)user;
    memcpy(all, mine, sizeof(double) * n);
    return LG_OK;
}

static lg_status gather_fail(const double *mine, double *all, size_t n, void *user) {
    (void)mine;
    (void)all;
    (void)n;
    (void)user;
    return lg_error_set(LG_ERR_IO, "test gatherer: link down");
}

/* ---- one batch norm forward + backward on host data ---- */

typedef struct bn_run {
    int ndim;
    int64_t shape[4];       /* x (N, C[, H, W]) */
    const float *x, *r;     /* x (numel), loss weights r (numel): L = sum(r * y) */
    const float *gamma, *beta; /* (C) */
    float rm[8], rv[8];     /* running statistics in and out (C) */
    float *y, *dx;          /* (numel) out */
    float dg[8], db[8];     /* (C) out */
    lg_status st;
    char msg[256];
} bn_run;

static int64_t numel_of(const bn_run *b) {
    int64_t n = 1;
    for (int i = 0; i < b->ndim; i++) n *= b->shape[i];
    return n;
}

/* Runs b on ctx (with whatever gatherer ctx holds). */
static void bn_run_on(lg_ctx *ctx, bn_run *b) {
    const lg_backend *be = lg_ctx_backend(ctx);
    int64_t C = b->shape[1], n = numel_of(b);
    float *rm = be->alloc(sizeof(float) * (size_t)C), *rv = be->alloc(sizeof(float) * (size_t)C);
    be->upload(rm, b->rm, (size_t)C);
    be->upload(rv, b->rv, (size_t)C);
    lg_bn_state st = {rm, rv, 0.1f, 1e-5f};
    lg_tensor *x = lg_test_tensor(ctx, b->x, b->ndim, b->shape, 1);
    lg_tensor *g = lg_test_tensor(ctx, b->gamma, 1, &C, 1);
    lg_tensor *bt = lg_test_tensor(ctx, b->beta, 1, &C, 1);
    lg_tensor *y = lg_batchnorm(ctx, x, g, bt, &st, 1);
    lg_tensor *r = lg_from_host(ctx, b->r, b->ndim, b->shape);
    lg_tensor *wrt[3] = {x, g, bt}, *gr[3] = {0};
    lg_status s = y ? lg_grad(ctx, y, r, 3, wrt, gr, 0) : lg_ctx_status(ctx);
    /* no y is a failure even if the context recorded none: never read y, gr */
    if (!y && s == LG_OK) s = LG_ERR_INVALID_ARG;
    b->st = s;
    snprintf(b->msg, sizeof b->msg, "%s", lg_error_msg());
    if (s == LG_OK) {
        be->download(b->y, y->data, (size_t)n);
        be->download(b->dx, gr[0]->data, (size_t)n);
        be->download(b->dg, gr[1]->data, (size_t)C);
        be->download(b->db, gr[2]->data, (size_t)C);
        be->download(b->rm, rm, (size_t)C);
        be->download(b->rv, rv, (size_t)C);
    }
    be->free(rm);
    be->free(rv);
}

static float *filled(size_t n, uint64_t seed, float lo, float hi) {
    float *p = malloc(sizeof(float) * n);
    lg_test_rng r = lg_test_rng_make(seed);
    lg_test_fill_uniform(&r, p, n, lo, hi);
    return p;
}

static void bn_run_init(bn_run *b, int ndim, const int64_t *shape, const float *x, const float *r,
                        const float *gamma, const float *beta) {
    memset(b, 0, sizeof *b);
    b->ndim = ndim;
    memcpy(b->shape, shape, sizeof(int64_t) * (size_t)ndim);
    b->x = x;
    b->r = r;
    b->gamma = gamma;
    b->beta = beta;
    for (int i = 0; i < 8; i++) {
        b->rm[i] = 0.1f * (float)i;
        b->rv[i] = 0.5f + 0.25f * (float)i;
    }
    int64_t n = numel_of(b);
    b->y = calloc((size_t)n, sizeof(float));
    b->dx = calloc((size_t)n, sizeof(float));
}

static void bn_run_free(bn_run *b) {
    free(b->y);
    free(b->dx);
}

/* ---- one process: the gatherer's arithmetic equals the fused kernels' ---- */

static void test_one_process(void) {
    const int64_t shapes[2][4] = {{5, 3, 3, 2}, {6, 4, 0, 0}};
    for (int k = 0; k < 2; k++) {
        int nd = k ? 2 : 4;
        int64_t C = shapes[k][1], n = shapes[k][0] * C * (k ? 1 : 6);
        float *x = filled((size_t)n, 11 + k, -2, 3), *r = filled((size_t)n, 21 + k, -1, 1);
        float *gm = filled((size_t)C, 31, 0.5f, 1.5f), *bt = filled((size_t)C, 41, -0.5f, 0.5f);
        bn_run plain, sync;
        bn_run_init(&plain, nd, shapes[k], x, r, gm, bt);
        bn_run_init(&sync, nd, shapes[k], x, r, gm, bt);
        lg_ctx *ctx;
        CHECK_OK(lg_ctx_create(&ctx, lg_test_backend()));
        bn_run_on(ctx, &plain);
        lg_ctx_reset(ctx);
        lg_ctx_set_bn_sync(ctx, gather_copy, 1, NULL);
        bn_run_on(ctx, &sync);
        lg_ctx_free(ctx);
        CHECK(plain.st == LG_OK && sync.st == LG_OK, "runs: %s / %s", plain.msg, sync.msg);
        /* the same formulas; only the rounding of the per-channel sums to
         * float between the parts differs */
        lg_test_close(sync.y, plain.y, (size_t)n, 1e-6, 1e-5, "y");
        lg_test_close(sync.dx, plain.dx, (size_t)n, 1e-6, 1e-5, "dx");
        lg_test_close(sync.dg, plain.dg, (size_t)C, 1e-6, 1e-5, "dgamma");
        lg_test_close(sync.db, plain.db, (size_t)C, 1e-6, 1e-5, "dbeta");
        lg_test_close(sync.rm, plain.rm, (size_t)C, 1e-7, 1e-6, "running mean");
        lg_test_close(sync.rv, plain.rv, (size_t)C, 1e-7, 1e-6, "running var");
        bn_run_free(&plain);
        bn_run_free(&sync);
        free(x);
        free(r);
        free(gm);
        free(bt);
    }
}

/* ---- finite differences through the synchronized path ---- */

static lg_tensor *f_bn_sync(lg_ctx *ctx, lg_tensor **in, void *user) {
    lg_ctx_set_bn_sync(ctx, gather_copy, 1, NULL);
    return lg_batchnorm(ctx, in[0], in[1], in[2], user, 1);
}

static void test_gradcheck(void) {
    const lg_backend *be = lg_test_backend();
    const int C = 3;
    float h[3] = {0.1f, -0.2f, 0.3f}, hv[3] = {0.5f, 0.75f, 1.0f};
    float *rm = be->alloc(sizeof h), *rv = be->alloc(sizeof hv);
    be->upload(rm, h, 3);
    be->upload(rv, hv, 3);
    lg_bn_state st = {rm, rv, 0.1f, 1e-5f};
    float *x4 = filled(4 * C * 4, 51, -1, 1), *x2 = filled(6 * C, 52, -1, 1);
    float *gm = filled(C, 53, 0.5f, 1.5f), *bt = filled(C, 54, -0.5f, 0.5f);
    lg_gc_input in4[3] = {lg_gc_in("x", x4, 4, 4, C, 2, 2), lg_gc_in("gamma", gm, 1, C, 0, 0, 0),
                          lg_gc_in("beta", bt, 1, C, 0, 0, 0)};
    lg_gc_input in2[3] = {lg_gc_in("x", x2, 2, 6, C, 0, 0), lg_gc_in("gamma", gm, 1, C, 0, 0, 0),
                          lg_gc_in("beta", bt, 1, C, 0, 0, 0)};
    /* as test_ops_grad's batch norm: 1/sqrt(var) wants small steps */
    lg_gc_opts o = {.order = 1, .eps = 3e-3, .atol = 1e-3, .rtol = 1e-2};
    lg_gradcheck("synchronized batchnorm (N,C,H,W)", f_bn_sync, &st, 3, in4, &o);
    lg_gradcheck("synchronized batchnorm (N,C)", f_bn_sync, &st, 3, in2, &o);
    be->free(rm);
    be->free(rv);
    free(x4);
    free(x2);
    free(gm);
    free(bt);
}

/* ---- two processes as two threads ---- */

typedef struct barrier_gather {
    pthread_barrier_t bar;
    double *slot[2]; /* each thread's row */
    size_t n;
} barrier_gather;

typedef struct thread_arg {
    barrier_gather *bg;
    int rank;
    bn_run *run;
} thread_arg;

static __thread int t_rank;

static lg_status gather_barrier(const double *mine, double *all, size_t n, void *user) {
    barrier_gather *bg = user;
    bg->slot[t_rank] = (double *)mine;
    bg->n = n;
    pthread_barrier_wait(&bg->bar); /* both rows posted */
    for (int r = 0; r < 2; r++) memcpy(all + (size_t)r * n, bg->slot[r], sizeof(double) * n);
    pthread_barrier_wait(&bg->bar); /* both copied before either row is reused */
    return LG_OK;
}

static void *thread_main(void *p) {
    thread_arg *a = p;
    t_rank = a->rank;
    lg_ctx *ctx;
    if (lg_ctx_create(&ctx, lg_backend_cpu()) != LG_OK) {
        a->run->st = LG_ERR_NOMEM;
        return NULL;
    }
    lg_ctx_set_bn_sync(ctx, gather_barrier, 2, a->bg);
    bn_run_on(ctx, a->run);
    lg_ctx_free(ctx);
    return NULL;
}

static void test_two_processes(void) {
    /* halves with different statistics, so that a slice's own batch norm
     * is far from the whole batch's */
    const int64_t N = 6, C = 3, HW = 4, half = N / 2 * C * HW, n = N * C * HW;
    float *x = filled((size_t)n, 61, -1, 1), *r = filled((size_t)n, 62, -1, 1);
    for (int64_t i = half; i < n; i++) x[i] = 2.0f * x[i] + 1.5f;
    float *gm = filled((size_t)C, 63, 0.5f, 1.5f), *bt = filled((size_t)C, 64, -0.5f, 0.5f);
    const int64_t whole[4] = {N, C, 2, 2}, part[4] = {N / 2, C, 2, 2};
    bn_run ref, own, p[2];
    bn_run_init(&ref, 4, whole, x, r, gm, bt);
    bn_run_init(&own, 4, part, x, r, gm, bt);
    for (int k = 0; k < 2; k++) bn_run_init(&p[k], 4, part, x + k * half, r + k * half, gm, bt);

    lg_ctx *ctx;
    CHECK_OK(lg_ctx_create(&ctx, lg_backend_cpu()));
    bn_run_on(ctx, &ref); /* the whole batch in one process */
    lg_ctx_reset(ctx);
    bn_run_on(ctx, &own); /* the first half alone, unsynchronized */
    lg_ctx_free(ctx);

    barrier_gather bg = {.n = 0};
    pthread_barrier_init(&bg.bar, NULL, 2);
    pthread_t th[2];
    thread_arg args[2];
    for (int k = 0; k < 2; k++) {
        args[k] = (thread_arg){&bg, k, &p[k]};
        pthread_create(&th[k], NULL, thread_main, &args[k]);
    }
    for (int k = 0; k < 2; k++) pthread_join(th[k], NULL);
    pthread_barrier_destroy(&bg.bar);

    CHECK(ref.st == LG_OK && p[0].st == LG_OK && p[1].st == LG_OK, "runs: %s / %s / %s", ref.msg,
          p[0].msg, p[1].msg);
    for (int k = 0; k < 2; k++) {
        char what[64];
        snprintf(what, sizeof what, "process %d: y", k);
        lg_test_close(p[k].y, ref.y + k * half, (size_t)half, 1e-6, 1e-5, what);
        snprintf(what, sizeof what, "process %d: dx", k);
        lg_test_close(p[k].dx, ref.dx + k * half, (size_t)half, 1e-6, 1e-5, what);
        snprintf(what, sizeof what, "process %d: running mean", k);
        lg_test_close(p[k].rm, ref.rm, (size_t)C, 1e-7, 1e-6, what);
        snprintf(what, sizeof what, "process %d: running var", k);
        lg_test_close(p[k].rv, ref.rv, (size_t)C, 1e-7, 1e-6, what);
    }
    /* each process keeps its own parameter gradient; their sum is the
     * whole batch's (the trainer averages, its losses being means) */
    float dg[3], db[3];
    for (int c = 0; c < C; c++) {
        dg[c] = p[0].dg[c] + p[1].dg[c];
        db[c] = p[0].db[c] + p[1].db[c];
    }
    lg_test_close(dg, ref.dg, (size_t)C, 1e-6, 1e-5, "dgamma summed over the processes");
    lg_test_close(db, ref.db, (size_t)C, 1e-6, 1e-5, "dbeta summed over the processes");
    CHECK(!memcmp(p[0].rm, p[1].rm, sizeof(float) * C) && !memcmp(p[0].rv, p[1].rv, sizeof(float) * C),
          "both processes hold the same running statistics bit for bit");
    /* control: the half's own statistics are far from the whole batch's,
     * so the comparisons above could fail */
    double worst = 0;
    for (int64_t i = 0; i < half; i++) worst = fmax(worst, fabs(own.y[i] - ref.y[i]));
    CHECK(worst > 0.1, "the halves should differ in their statistics (max |dy| %.3g)", worst);

    bn_run_free(&ref);
    bn_run_free(&own);
    for (int k = 0; k < 2; k++) bn_run_free(&p[k]);
    free(x);
    free(r);
    free(gm);
    free(bt);
}

/* ---- failures ---- */

static void test_errors(void) {
    const int64_t shape[4] = {4, 2, 0, 0};
    float *x = filled(8, 71, -1, 1), *r = filled(8, 72, -1, 1);
    float gm[2] = {1, 1}, bt[2] = {0, 0};
    bn_run b;
    bn_run_init(&b, 2, shape, x, r, gm, bt);
    float rm0 = b.rm[1];
    lg_ctx *ctx;
    CHECK_OK(lg_ctx_create(&ctx, lg_test_backend()));
    lg_ctx_set_bn_sync(ctx, gather_fail, 2, NULL);
    bn_run_on(ctx, &b);
    CHECK(b.st == LG_ERR_IO && strstr(b.msg, "batchnorm") && strstr(b.msg, "link down"),
          "a failing gatherer: %s, \"%s\"", lg_status_str(b.st), b.msg);
    CHECK(b.rm[1] == rm0, "a failed synchronization leaves the running mean alone");
    lg_ctx_free(ctx);

    /* a backend without the parts */
    lg_backend bare = *lg_backend_cpu();
    bare.bn_stats = NULL;
    CHECK_OK(lg_ctx_create(&ctx, &bare));
    lg_ctx_set_bn_sync(ctx, gather_copy, 1, NULL);
    bn_run_free(&b);
    bn_run_init(&b, 2, shape, x, r, gm, bt);
    bn_run_on(ctx, &b);
    CHECK(b.st == LG_ERR_UNSUPPORTED && strstr(b.msg, "synchronized batch norm"),
          "missing entries: %s, \"%s\"", lg_status_str(b.st), b.msg);
    lg_ctx_free(ctx);

    /* turning the gatherer off again gives the plain batch norm */
    CHECK_OK(lg_ctx_create(&ctx, lg_test_backend()));
    lg_ctx_set_bn_sync(ctx, gather_fail, 2, NULL);
    lg_ctx_set_bn_sync(ctx, NULL, 0, NULL);
    bn_run_free(&b);
    bn_run_init(&b, 2, shape, x, r, gm, bt);
    bn_run_on(ctx, &b);
    CHECK(b.st == LG_OK, "gatherer unset: %s", b.msg);
    lg_ctx_free(ctx);
    bn_run_free(&b);
    free(x);
    free(r);
}

int main(void) {
    LG_TEST_RUN(test_one_process);
    LG_TEST_RUN(test_gradcheck);
    LG_TEST_RUN(test_two_processes);
    LG_TEST_RUN(test_errors);
    return lg_test_summary("test_bn_sync");
}
