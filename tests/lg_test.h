/* tests/lg_test.h - shared helpers for the test programs (linked into every
 * tests/test_*.c binary).
 *
 * Checks count failures instead of aborting, print file:line, and
 * lg_test_summary() turns the count into the program's exit status:
 *
 *   static void test_foo(void) {
 *       CHECK(x == 3, "x is %d", x);
 *       CHECK_OK(lg_do_something());             // prints lg_error_msg()
 *       lg_test_close(got, ref, n, 1e-5f, 1e-4f, "conv2d y");
 *   }
 *   int main(void) {
 *       LG_TEST_RUN(test_foo);
 *       return lg_test_summary("test_foo");      // nonzero if any check failed
 *   }
 *
 * Finite-difference gradient checks (lg_gradcheck) compare lg_grad with
 * central differences of a function of host-held inputs; see below. */
#ifndef LIPGAN_TESTS_LG_TEST_H
#define LIPGAN_TESTS_LG_TEST_H

#include <stdint.h>
#include <stdio.h>

#include "lipgan/autograd.h"
#include "lipgan/status.h"
#include "lipgan/tensor.h"

/* Totals over the whole program. */
extern long lg_test_checks;
extern long lg_test_failures;

/* Records one check; prints "file:line: CHECK(cond) failed: message". */
void lg_test_fail_at(const char *file, int line, const char *expr, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* CHECK(cond, fmt, ...): the message is required (say what was expected). */
#define CHECK(cond, ...)                                                        \
    do {                                                                        \
        lg_test_checks++;                                                       \
        if (!(cond)) lg_test_fail_at(__FILE__, __LINE__, #cond, __VA_ARGS__);   \
    } while (0)

/* CHECK_OK(status expression): must be LG_OK; prints the error message. */
#define CHECK_OK(expr)                                                          \
    do {                                                                        \
        lg_status lg_chk_s_ = (expr);                                           \
        CHECK(lg_chk_s_ == LG_OK, "%s: %s", lg_status_str(lg_chk_s_), lg_error_msg()); \
    } while (0)

/* CHECK_STATUS(expr, want): the status must equal want. */
#define CHECK_STATUS(expr, want)                                                \
    do {                                                                        \
        lg_status lg_chk_s_ = (expr);                                           \
        CHECK(lg_chk_s_ == (want), "got %s (%s), want %s", lg_status_str(lg_chk_s_), \
              lg_error_msg(), lg_status_str(want));                             \
    } while (0)

/* Compares n floats: element i passes if |got-ref| <= atol + rtol*|ref|
 * (NaN never passes). On failure prints `what`, the number of bad elements
 * and the worst one (index, got, ref). Returns 1 if all passed. */
int lg_test_close_at(const char *file, int line, const float *got, const float *ref, size_t n,
                     double atol, double rtol, const char *what);
#define lg_test_close(got, ref, n, atol, rtol, what)                            \
    lg_test_close_at(__FILE__, __LINE__, (got), (ref), (n), (atol), (rtol), (what))

/* Runs one test function, printing its name and how long it took. */
void lg_test_run_(const char *name, void (*fn)(void));
#define LG_TEST_RUN(fn) lg_test_run_(#fn, fn)

/* Prints "<prog>: N checks, M failed" and returns 0 if nothing failed,
 * 1 otherwise (return it from main). */
int lg_test_summary(const char *prog);

/* The backend the op tests run on: $LG_TEST_BACKEND ("cpu" when unset, or
 * "cuda"); aborts with a message if it is not available, so a GPU run can
 * never silently test the CPU. lg_gradcheck uses it. */
const lg_backend *lg_test_backend(void);

/* ---- deterministic random numbers (splitmix64; same on every platform) ---- */
typedef struct lg_test_rng {
    uint64_t s;
} lg_test_rng;
lg_test_rng lg_test_rng_make(uint64_t seed);
uint64_t lg_test_rng_u64(lg_test_rng *r);
/* Uniform in [lo, hi). */
float lg_test_uniform(lg_test_rng *r, float lo, float hi);
void lg_test_fill_uniform(lg_test_rng *r, float *x, size_t n, float lo, float hi);
/* Uniform magnitude in [min_abs, max_abs) with a random sign: keeps inputs
 * of kinked functions (relu) away from the kink. */
void lg_test_fill_away0(lg_test_rng *r, float *x, size_t n, float min_abs, float max_abs);

/* ---- finite-difference gradient checks ----
 *
 * The function under test builds a graph from its inputs and returns any
 * tensor y (or NULL on failure). The checker reduces it with a fixed
 * random weighting r (uniform in [-1,1), seeded), L = sum(r * y), so every
 * output element matters; it seeds lg_grad with r rather than building the
 * sum with ops, and sums in double on the host for the differences.
 *
 * order 1: lg_grad(L) w.r.t. every non-constant input vs central
 *   differences (L(x + eps e_j) - L(x - eps e_j)) / (x+ - x-) with the
 *   step measured after rounding to float.
 * order 2: G = sum(q * grad_{x0} L) for a fixed random q, the gradient
 *   taken with create_graph = 1 (the structure of a gradient penalty);
 *   lg_grad(G) w.r.t. every non-constant input vs differences of G.
 *
 * Each evaluation resets the context and rebuilds the inputs from the host
 * arrays, so f may call lg_grad itself (e.g. a penalty) and may use
 * persistent tensors it owns through `user`. Keep inputs small: order 1
 * costs 2 forwards per input element, order 2 two forward+backward passes. */
typedef lg_tensor *(*lg_gc_fn)(lg_ctx *ctx, lg_tensor **in, void *user);

typedef struct lg_gc_input {
    const char *name;              /* for messages ("x", "w", ...) */
    int ndim;
    int64_t shape[LG_MAX_DIMS];
    float *data;                   /* (numel) host values; perturbed and restored */
    int constant;                  /* 1: no gradient wanted (requires_grad = 0) */
} lg_gc_input;

typedef struct lg_gc_opts {
    int order;       /* 1 or 2 (0 means 1) */
    int x0;          /* order 2: index of the input whose gradient forms G */
    double eps;      /* perturbation; 0 means 1e-2 */
    double atol;     /* 0 means 1e-3 */
    double rtol;     /* 0 means 1e-2 */
    uint64_t seed;   /* for r and q; 0 means a fixed default */
} lg_gc_opts;

/* Returns the number of inputs whose gradient did not match (0 = pass) and
 * counts one check per compared input (failures print file:line, the input
 * name and the worst element). Failures of f or lg_grad count too. */
int lg_gradcheck_at(const char *file, int line, const char *what, lg_gc_fn f, void *user,
                    int n_in, lg_gc_input *in, const lg_gc_opts *opts);
#define lg_gradcheck(what, f, user, n_in, in, opts)                             \
    lg_gradcheck_at(__FILE__, __LINE__, (what), (f), (user), (n_in), (in), (opts))

/* Convenience: an input spec of up to 4 dims (pass the dims, rest ignored). */
lg_gc_input lg_gc_in(const char *name, float *data, int ndim, int64_t d0, int64_t d1,
                     int64_t d2, int64_t d3);

/* A step tensor from host data that optionally requires grad. */
lg_tensor *lg_test_tensor(lg_ctx *ctx, const float *host, int ndim, const int64_t *shape,
                          int requires_grad);

/* ---- running the lipgan CLI from a test ---- */

/* "$BUILD/lipgan" (BUILD from the environment, default "build") into buf;
 * returns 0 if it is executable, else prints how to build it and returns -1. */
int lg_test_cli_path(char *buf, size_t cap);

/* Runs cmd through the shell and captures its stdout into out (cap bytes,
 * NUL-terminated; cmd does its own redirections). Returns the exit code,
 * or -1 if it did not exit normally. */
int lg_test_sh(const char *cmd, char *out, size_t cap);

/* Runs `bin args` through the shell and captures its stdout into out
 * (cap bytes, NUL-terminated). merge 0: stderr discarded; 1: stderr merged
 * into out; 2: args does its own redirections. Returns the exit code, or -1
 * if it did not exit normally. */
int lg_test_run_cli(const char *bin, const char *args, int merge, char *out, size_t cap);

/* Rewrites the lipgan.crc32 value in the header of a .safetensors file held
 * in buf (len bytes) to match its data, after a test edited the data on
 * purpose (so the loader's own checks are what refuse it). Returns 0, or -1
 * if buf has no such key. */
int lg_test_st_fix_crc(unsigned char *buf, size_t len);

#endif
