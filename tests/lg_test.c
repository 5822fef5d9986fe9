/* Shared test helpers (see lg_test.h). */
#include "lg_test.h"

#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/wait.h>
#include <unistd.h>
#include <zlib.h>

#include "lipgan/safetensors.h"

long lg_test_checks = 0;
long lg_test_failures = 0;

void lg_test_fail_at(const char *file, int line, const char *expr, const char *fmt, ...) {
    lg_test_failures++;
    fprintf(stderr, "%s:%d: CHECK(%s) failed: ", file, line, expr);
    va_list ap;
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

int lg_test_close_at(const char *file, int line, const float *got, const float *ref, size_t n,
                     double atol, double rtol, const char *what) {
    lg_test_checks++;
    size_t bad = 0, worst = 0;
    double worst_ratio = -1.0, max_abs = 0.0;
    for (size_t i = 0; i < n; i++) {
        double g = got[i], r = ref[i];
        double err = fabs(g - r);
        double tol = atol + rtol * fabs(r);
        /* NaN in either makes err NaN: counted bad and reported as worst */
        double ratio = isnan(err) ? INFINITY : err / tol;
        if (!(err <= tol)) bad++;
        if (ratio > worst_ratio) {
            worst_ratio = ratio;
            worst = i;
        }
        if (err > max_abs || isnan(err)) max_abs = err;
    }
    if (bad == 0) return 1;
    lg_test_failures++;
    fprintf(stderr,
            "%s:%d: %s: %zu of %zu elements off (tolerance %.3g + %.3g*|ref|); worst [%zu] got "
            "%.7g ref %.7g (err %.3g); max abs err %.3g\n",
            file, line, what, bad, n, atol, rtol, worst, (double)got[worst], (double)ref[worst],
            fabs((double)got[worst] - (double)ref[worst]), max_abs);
    return 0;
}

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

void lg_test_run_(const char *name, void (*fn)(void)) {
    long before = lg_test_failures;
    double t0 = now_s();
    fn();
    double dt = now_s() - t0;
    printf("%-40s %s (%.2fs)\n", name, lg_test_failures == before ? "ok" : "FAILED", dt);
    fflush(stdout);
}

int lg_test_summary(const char *prog) {
    printf("%s: %ld checks, %ld failed\n", prog, lg_test_checks, lg_test_failures);
    return lg_test_failures ? 1 : 0;
}

const lg_backend *lg_test_backend(void) {
    static const lg_backend *be;
    if (be) return be;
    const char *name = getenv("LG_TEST_BACKEND");
    if (!name || !*name) name = "cpu";
    if (lg_backend_get(name, &be) != LG_OK || !be) {
        fprintf(stderr, "LG_TEST_BACKEND=%s is not available: %s\n", name, lg_error_msg());
        abort();
    }
    return be;
}

/* ---- random numbers ---- */

lg_test_rng lg_test_rng_make(uint64_t seed) {
    lg_test_rng r = {seed ^ 0x9e3779b97f4a7c15ull};
    return r;
}

uint64_t lg_test_rng_u64(lg_test_rng *r) {
    uint64_t z = (r->s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

float lg_test_uniform(lg_test_rng *r, float lo, float hi) {
    double u = (double)(lg_test_rng_u64(r) >> 11) * (1.0 / 9007199254740992.0);
    return (float)(lo + (hi - lo) * u);
}

void lg_test_fill_uniform(lg_test_rng *r, float *x, size_t n, float lo, float hi) {
    for (size_t i = 0; i < n; i++) x[i] = lg_test_uniform(r, lo, hi);
}

void lg_test_fill_away0(lg_test_rng *r, float *x, size_t n, float min_abs, float max_abs) {
    for (size_t i = 0; i < n; i++) {
        float m = lg_test_uniform(r, min_abs, max_abs);
        x[i] = (lg_test_rng_u64(r) & 1) ? m : -m;
    }
}

lg_tensor *lg_test_tensor(lg_ctx *ctx, const float *host, int ndim, const int64_t *shape,
                          int requires_grad) {
    lg_tensor *t = lg_from_host(ctx, host, ndim, shape);
    if (t) t->requires_grad = requires_grad;
    return t;
}

lg_gc_input lg_gc_in(const char *name, float *data, int ndim, int64_t d0, int64_t d1,
                     int64_t d2, int64_t d3) {
    lg_gc_input in;
    memset(&in, 0, sizeof in);
    in.name = name;
    in.data = data;
    in.ndim = ndim;
    int64_t d[4] = {d0, d1, d2, d3};
    for (int i = 0; i < LG_MAX_DIMS; i++) in.shape[i] = i < ndim ? d[i] : 1;
    return in;
}

/* ---- finite-difference gradient checks ---- */

#define GC_MAX_IN 16

typedef struct gc {
    const char *file;
    int line;
    const char *what;
    lg_ctx *ctx;
    lg_gc_fn f;
    void *user;
    int n;
    lg_gc_input *in;
    lg_tensor *t[GC_MAX_IN];     /* inputs of the current evaluation */
    int order, x0;
    int ydim;
    int64_t yshape[LG_MAX_DIMS]; /* output shape, fixed by the first evaluation */
    int64_t ynumel;
    float *r;                    /* (ynumel) weighting of the output */
    float *q;                    /* (numel of in[x0]) weighting of its gradient */
    float *tmp;                  /* host scratch, max(ynumel, numel x0) */
} gc;

static int64_t in_numel(const lg_gc_input *in) {
    int64_t n = 1;
    for (int i = 0; i < in->ndim; i++) n *= in->shape[i];
    return n;
}

static int gc_fail(gc *s, const char *fmt, const char *detail) {
    lg_test_failures++;
    fprintf(stderr, "%s:%d: gradcheck %s: ", s->file, s->line, s->what);
    fprintf(stderr, fmt, detail);
    fputc('\n', stderr);
    return -1;
}

/* Rebuilds the inputs (requiring grad unless constant) and runs f. */
static lg_tensor *gc_forward(gc *s) {
    lg_ctx_reset(s->ctx);
    for (int i = 0; i < s->n; i++) {
        s->t[i] = lg_test_tensor(s->ctx, s->in[i].data, s->in[i].ndim, s->in[i].shape,
                                 !s->in[i].constant);
        if (!s->t[i]) return NULL;
    }
    lg_tensor *y = s->f(s->ctx, s->t, s->user);
    if (!y || lg_ctx_status(s->ctx) != LG_OK) return NULL;
    if (s->ynumel > 0 && y->numel != s->ynumel) return NULL;
    return y;
}

/* dL/d(x0) with create_graph as given; NULL on failure. */
static lg_tensor *gc_first_grad(gc *s, lg_tensor *y, int create_graph) {
    lg_tensor *rt = lg_from_host(s->ctx, s->r, y->ndim, y->shape);
    if (!rt) return NULL;
    lg_tensor *g = NULL;
    if (lg_grad(s->ctx, y, rt, 1, &s->t[s->x0], &g, create_graph) != LG_OK) return NULL;
    return g;
}

/* The scalar objective at the current host inputs: L (order 1) or G
 * (order 2), summed in double. Returns 0 on success. */
static int gc_objective(gc *s, double *out) {
    lg_tensor *y = gc_forward(s);
    if (!y) return gc_fail(s, "function failed during differences: %s", lg_error_msg());
    const float *w = s->r;
    lg_tensor *v = y;
    if (s->order == 2) {
        v = gc_first_grad(s, y, 0);
        if (!v) return gc_fail(s, "first gradient failed during differences: %s", lg_error_msg());
        w = s->q;
    }
    lg_to_host(s->ctx, v, s->tmp);
    double acc = 0.0;
    for (int64_t i = 0; i < v->numel; i++) acc += (double)w[i] * (double)s->tmp[i];
    *out = acc;
    return 0;
}

int lg_gradcheck_at(const char *file, int line, const char *what, lg_gc_fn f, void *user,
                    int n_in, lg_gc_input *in, const lg_gc_opts *opts) {
    lg_gc_opts o = opts ? *opts : (lg_gc_opts){0};
    if (o.order == 0) o.order = 1;
    if (o.eps == 0) o.eps = 1e-2;
    if (o.atol == 0) o.atol = 1e-3;
    if (o.rtol == 0) o.rtol = 1e-2;
    if (o.seed == 0) o.seed = 12345;
    gc s;
    memset(&s, 0, sizeof s);
    s.file = file;
    s.line = line;
    s.what = what;
    s.f = f;
    s.user = user;
    s.n = n_in;
    s.in = in;
    s.order = o.order;
    s.x0 = o.x0;
    LG_ASSERT(n_in >= 1 && n_in <= GC_MAX_IN && o.x0 >= 0 && o.x0 < n_in);
    LG_ASSERT(o.order == 1 || o.order == 2);
    if (o.order == 2 && in[o.x0].constant)
        return gc_fail(&s, "%s", "order 2 needs a non-constant x0");

    int nfail = 0;
    lg_tensor *wrt[GC_MAX_IN];
    lg_tensor *grads[GC_MAX_IN];
    int widx[GC_MAX_IN];
    int nw = 0;
    float *ana[GC_MAX_IN] = {0};
    float *fd = NULL;
    lg_test_rng rng = lg_test_rng_make(o.seed);

    if (lg_ctx_create(&s.ctx, lg_test_backend()) != LG_OK)
        return gc_fail(&s, "ctx: %s", lg_error_msg());

    /* ---- analytic gradients ---- */
    lg_tensor *y = gc_forward(&s);
    if (!y) {
        nfail = gc_fail(&s, "function failed: %s", lg_error_msg());
        goto out;
    }
    s.ydim = y->ndim;
    memcpy(s.yshape, y->shape, sizeof s.yshape);
    s.ynumel = y->numel;
    int64_t nx0 = in_numel(&in[o.x0]);
    s.r = malloc((size_t)s.ynumel * sizeof(float));
    s.q = malloc((size_t)nx0 * sizeof(float));
    s.tmp = malloc((size_t)(s.ynumel > nx0 ? s.ynumel : nx0) * sizeof(float));
    LG_ASSERT(s.r && s.q && s.tmp);
    lg_test_fill_uniform(&rng, s.r, (size_t)s.ynumel, -1.0f, 1.0f);
    lg_test_fill_uniform(&rng, s.q, (size_t)nx0, -1.0f, 1.0f);

    for (int i = 0; i < n_in; i++)
        if (!in[i].constant) {
            widx[nw] = i;
            wrt[nw++] = s.t[i];
        }
    lg_tensor *obj = y, *seed = NULL;
    if (o.order == 1) {
        seed = lg_from_host(s.ctx, s.r, y->ndim, y->shape);
    } else {
        obj = gc_first_grad(&s, y, 1);
        if (!obj) {
            nfail = gc_fail(&s, "first gradient (create_graph) failed: %s", lg_error_msg());
            goto out;
        }
        seed = lg_from_host(s.ctx, s.q, obj->ndim, obj->shape);
    }
    if (!seed) { /* lg_grad is what fills grads: never reach the loop below without it */
        nfail = gc_fail(&s, "seed upload failed: %s", lg_error_msg());
        goto out;
    }
    lg_status st = lg_grad(s.ctx, obj, seed, nw, wrt, grads, 0);
    if (st != LG_OK) {
        nfail = gc_fail(&s, "lg_grad failed: %s", lg_error_msg());
        goto out;
    }
    for (int k = 0; k < nw; k++) {
        int64_t m = in_numel(&in[widx[k]]);
        ana[k] = malloc((size_t)m * sizeof(float));
        LG_ASSERT(ana[k]);
        if (grads[k]->numel != m) {
            nfail = gc_fail(&s, "gradient of %s has the wrong size", in[widx[k]].name);
            goto out;
        }
        lg_to_host(s.ctx, grads[k], ana[k]);
    }

    /* ---- central differences ---- */
    for (int k = 0; k < nw; k++) {
        lg_gc_input *x = &in[widx[k]];
        int64_t m = in_numel(x);
        /* calloc: zeroed even if the loop below fills nothing, and NULL
         * (caught) for a negative numel instead of a huge read */
        fd = calloc((size_t)m, sizeof(float));
        LG_ASSERT(fd);
        for (int64_t j = 0; j < m; j++) {
            float orig = x->data[j];
            float xp = (float)(orig + o.eps), xm = (float)(orig - o.eps);
            double lp, lm;
            x->data[j] = xp;
            int e1 = gc_objective(&s, &lp);
            x->data[j] = xm;
            int e2 = e1 ? 0 : gc_objective(&s, &lm);
            x->data[j] = orig;
            if (e1 || e2) {
                nfail = -1;
                goto out;
            }
            fd[j] = (float)((lp - lm) / ((double)xp - (double)xm));
        }
        char label[256];
        snprintf(label, sizeof label, "gradcheck %s: order-%d d/d%s", what, o.order,
                 x->name ? x->name : "?");
        if (!lg_test_close_at(file, line, ana[k], fd, (size_t)m, o.atol, o.rtol, label)) nfail++;
        if (getenv("LG_TEST_VERBOSE")) {
            double mx = 0, mref = 0;
            for (int64_t j = 0; j < m; j++) {
                double e = fabs((double)ana[k][j] - fd[j]);
                if (e > mx) mx = e;
                if (fabs(fd[j]) > mref) mref = fabs(fd[j]);
            }
            printf("  %s: max err %.3g, max |fd| %.3g\n", label, mx, mref);
        }
        free(fd);
        fd = NULL;
    }

out:
    free(fd);
    for (int k = 0; k < GC_MAX_IN; k++) free(ana[k]);
    free(s.r);
    free(s.q);
    free(s.tmp);
    lg_ctx_free(s.ctx);
    return nfail < 0 ? 1 : nfail;
}

int lg_test_cli_path(char *buf, size_t cap) {
    const char *build = getenv("BUILD");
    snprintf(buf, cap, "%s/lipgan", build && *build ? build : "build");
    if (access(buf, X_OK) != 0) {
        fprintf(stderr, "%s not found: build the CLI first (make BUILD=...) and run from the repo root\n", buf);
        return -1;
    }
    return 0;
}

int lg_test_sh(const char *cmd, char *out, size_t cap) {
    FILE *p = popen(cmd, "r");
    if (!p) return -1;
    size_t n = fread(out, 1, cap - 1, p);
    out[n] = '\0';
    int st = pclose(p);
    if (st == -1 || !WIFEXITED(st)) return -1;
    return WEXITSTATUS(st);
}

int lg_test_run_cli(const char *bin, const char *args, int merge, char *out, size_t cap) {
    char cmd[4096];
    snprintf(cmd, sizeof cmd, "'%s' %s %s", bin, args, merge == 2 ? "" : merge ? "2>&1" : "2>/dev/null");
    return lg_test_sh(cmd, out, cap);
}

int lg_test_st_fix_crc(unsigned char *buf, size_t len) {
    return lg_st_restamp_crc(buf, len) == LG_OK ? 0 : -1;
}
