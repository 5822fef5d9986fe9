/* Tests of src/models: output shapes, parameter counts (formula and
 * PyTorch's numbers from tools/model_param_counts.py), named tables,
 * initialization, determinism, first- and second-order finite-difference
 * checks through whole networks (with SN / Toeplitz attached), the
 * no-allocation steady state, SN/Toeplitz sigma convergence, u/v update
 * flags, EMA, spec errors, and the CNN critic with batch norm (DCGAN's,
 * for the WGAN weight-clipping config: tables, train/eval statistics, and
 * a short clipped training run whose critic must stay bounded). */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "lg_test.h"
#include "lipgan/backend_cpu.h"
#include "lipgan/lipschitz.h"
#include "lipgan/model.h"
#include "lipgan/ops.h"
#include "lipgan/safetensors.h"
#include "lipgan/train.h"
#include "train/train_internal.h"
#include "train_fixtures.h"

static lg_model *make(lg_model_arch arch, lg_net_role role, int c, int size, int ch,
                      lg_lip_kind lip, uint64_t seed) {
    lg_model_spec s;
    lg_model_spec_default(&s, arch, role);
    s.img_c = c;
    s.img_size = size;
    if (ch) s.ch = ch;
    s.lip = lip;
    lg_model *m = NULL;
    CHECK_OK(lg_model_create(&m, &s, NULL, seed));
    return m;
}

/* a CNN critic with batch norm */
static lg_model *make_dbn(int c, int size, int ch, lg_lip_kind lip, uint64_t seed) {
    lg_model_spec s;
    lg_model_spec_default(&s, LG_ARCH_CNN, LG_NET_D);
    s.img_c = c, s.img_size = size, s.ch = ch, s.lip = lip, s.batchnorm = 1;
    lg_model *m = NULL;
    CHECK_OK(lg_model_create(&m, &s, NULL, seed));
    return m;
}

static lg_tensor *rand_tensor(lg_ctx *ctx, lg_test_rng *r, int ndim, const int64_t *shape) {
    int64_t n = 1;
    for (int i = 0; i < ndim; i++) n *= shape[i];
    float *h = malloc((size_t)n * sizeof(float));
    lg_test_fill_uniform(r, h, (size_t)n, -1.0f, 1.0f);
    lg_tensor *t = lg_from_host(ctx, h, ndim, shape);
    free(h);
    return t;
}

/* The input a model expects, batch n. */
static lg_tensor *model_input(lg_ctx *ctx, lg_test_rng *r, const lg_model *m, int n) {
    const lg_model_spec *s = lg_model_get_spec(m);
    if (s->role == LG_NET_G) {
        int64_t sh[2] = {n, s->z_dim};
        return rand_tensor(ctx, r, 2, sh);
    }
    if (s->data_dim > 0) {
        int64_t sh[2] = {n, s->data_dim};
        return rand_tensor(ctx, r, 2, sh);
    }
    int64_t sh[4] = {n, s->img_c, s->img_size, s->img_size};
    return rand_tensor(ctx, r, 4, sh);
}

/* ---- shapes ---- */

static void check_shapes(lg_model *m, const char *what) {
    lg_ctx *ctx;
    CHECK_OK(lg_ctx_create(&ctx, NULL));
    lg_test_rng r = lg_test_rng_make(1);
    const lg_model_spec *s = lg_model_get_spec(m);
    for (int train = 1; train >= 0; train--) {
        lg_tensor *y = lg_model_forward(ctx, m, model_input(ctx, &r, m, 3), train);
        CHECK_OK(lg_ctx_status(ctx));
        if (!y) continue;
        char buf[64];
        lg_shape_str(y, buf, sizeof buf);
        if (s->role == LG_NET_D) {
            CHECK(y->ndim == 2 && y->shape[0] == 3 && y->shape[1] == 1, "%s D out %s", what, buf);
        } else if (s->data_dim > 0) {
            CHECK(y->ndim == 2 && y->shape[0] == 3 && y->shape[1] == s->data_dim, "%s G out %s",
                  what, buf);
        } else {
            CHECK(y->ndim == 4 && y->shape[0] == 3 && y->shape[1] == s->img_c &&
                      y->shape[2] == s->img_size && y->shape[3] == s->img_size,
                  "%s G out %s", what, buf);
            /* tanh output */
            float *h = malloc((size_t)y->numel * sizeof(float));
            lg_to_host(ctx, y, h);
            int bad = 0;
            for (int64_t i = 0; i < y->numel; i++) bad += !(h[i] >= -1.0f && h[i] <= 1.0f);
            CHECK(bad == 0, "%s: %d outputs outside [-1,1]", what, bad);
            free(h);
        }
        lg_ctx_reset(ctx);
    }
    lg_ctx_free(ctx);
}

static void test_shapes(void) {
    static const int cs[3][2] = {{3, 32}, {1, 32}, {3, 48}};
    for (int a = 0; a < LG_ARCH_COUNT; a++)
        for (int role = 0; role < 2; role++)
            for (int k = 0; k < 3; k++) {
                lg_lip_kind lip = role == LG_NET_D ? LG_LIP_SN : LG_LIP_NONE;
                lg_model *m = make((lg_model_arch)a, (lg_net_role)role, cs[k][0], cs[k][1],
                                   a == LG_ARCH_MLP ? 32 : 8, lip, 7);
                if (!m) continue;
                char what[64];
                snprintf(what, sizeof what, "%s %s c%d s%d", lg_model_arch_name(a),
                         role ? "D" : "G", cs[k][0], cs[k][1]);
                check_shapes(m, what);
                lg_model_free(m);
            }
    /* 2-D toys */
    for (int role = 0; role < 2; role++) {
        lg_model_spec s;
        lg_model_spec_default(&s, LG_ARCH_MLP, (lg_net_role)role);
        s.data_dim = 2;
        s.z_dim = 2;
        s.ch = 128;
        s.depth = 3;
        s.batchnorm = 0;
        lg_model *m;
        CHECK_OK(lg_model_create(&m, &s, NULL, 3));
        check_shapes(m, role ? "toy D" : "toy G");
        lg_model_free(m);
    }
    /* an MLP D also takes flattened images */
    lg_model *d = make(LG_ARCH_MLP, LG_NET_D, 1, 8, 16, LG_LIP_NONE, 1);
    lg_ctx *ctx;
    CHECK_OK(lg_ctx_create(&ctx, NULL));
    lg_test_rng r = lg_test_rng_make(2);
    int64_t sh[2] = {4, 64};
    lg_tensor *y = lg_model_forward(ctx, d, rand_tensor(ctx, &r, 2, sh), 1);
    CHECK(y && y->shape[0] == 4 && y->shape[1] == 1, "mlp D on flat images");
    lg_ctx_free(ctx);
    lg_model_free(d);
}

/* ---- parameter counts ---- */

static size_t conv_p(size_t ci, size_t co, size_t k) { return ci * co * k * k + co; }

static size_t resnet_d_count(size_t c, size_t ch) {
    return conv_p(c, ch, 3) + conv_p(ch, ch, 3) + conv_p(c, ch, 1)  /* block1 */
           + 2 * conv_p(ch, ch, 3) + conv_p(ch, ch, 1)             /* block2 */
           + 4 * conv_p(ch, ch, 3)                                 /* block3, 4 */
           + ch;                                                   /* l5, no bias */
}
static size_t resnet_g_count(size_t c, size_t ch, size_t z, size_t b) {
    return z * b * b * ch + b * b * ch                                 /* l1 */
           + 3 * (2 * 2 * ch + 2 * conv_p(ch, ch, 3) + conv_p(ch, ch, 1)) /* blocks with 2 BN */
           + 2 * ch + conv_p(ch, c, 3);                                /* b5, c5 */
}
static size_t cnn_d_count(size_t c, size_t ch, size_t b) {
    return conv_p(c, ch, 3) + conv_p(ch, ch, 4) + conv_p(ch, 2 * ch, 3) +
           conv_p(2 * ch, 2 * ch, 4) + conv_p(2 * ch, 4 * ch, 3) + conv_p(4 * ch, 4 * ch, 4) +
           conv_p(4 * ch, 8 * ch, 3) + b * b * 8 * ch + 1;
}
static size_t cnn_g_count(size_t c, size_t ch, size_t z, size_t b) {
    return z * b * b * 8 * ch + b * b * 8 * ch + 2 * 8 * ch     /* l0, bn0 */
           + conv_p(8 * ch, 4 * ch, 4) + 2 * 4 * ch             /* dc1 (convT), bn1 */
           + conv_p(4 * ch, 2 * ch, 4) + 2 * 2 * ch             /* dc2, bn2 */
           + conv_p(2 * ch, ch, 4) + 2 * ch + conv_p(ch, c, 3); /* dc3, bn3, c4 */
}
/* with batch norm: convs c0_1..c3_0 lose their bias and gain a BN (gamma, beta) */
static size_t cnn_d_bn_count(size_t c, size_t ch, size_t b) {
    return conv_p(c, ch, 3) + conv_p(ch, ch, 4) - ch + 2 * ch                 /* c0_0, c0_1 bn0_1 */
           + conv_p(ch, 2 * ch, 3) + conv_p(2 * ch, 2 * ch, 4) + 2 * 2 * ch /* c1_0, c1_1 */
           + conv_p(2 * ch, 4 * ch, 3) + conv_p(4 * ch, 4 * ch, 4) + 2 * 4 * ch /* c2_* */
           + conv_p(4 * ch, 8 * ch, 3) + 8 * ch                             /* c3_0 bn3_0 */
           + b * b * 8 * ch + 1;                                             /* l4 */
}
static size_t mlp_count(size_t in, size_t out, size_t w, size_t depth, int bn) {
    return in * w + w + (depth - 1) * (w * w + w) + (bn ? 2 * depth * w : 0) + w * out + out;
}

static void count_case(lg_model_arch a, lg_net_role role, int c, int size, int ch, int depth,
                       int data_dim, int zdim, size_t formula, size_t torch_count) {
    lg_model_spec s;
    lg_model_spec_default(&s, a, role);
    s.img_c = c;
    s.img_size = size;
    s.ch = ch;
    s.depth = depth;
    s.data_dim = data_dim;
    if (zdim) s.z_dim = zdim;
    if (data_dim) s.batchnorm = 0;
    lg_model *m;
    CHECK_OK(lg_model_create(&m, &s, NULL, 1));
    if (!m) return;
    size_t got = lg_model_count_params(m);
    CHECK(got == formula, "%s %s c%d ch%d s%d: %zu params, formula %zu", lg_model_arch_name(a),
          role ? "D" : "G", c, ch, size, got, formula);
    if (torch_count)
        CHECK(got == torch_count, "%s %s c%d ch%d s%d: %zu params, PyTorch %zu",
              lg_model_arch_name(a), role ? "D" : "G", c, ch, size, got, torch_count);
    CHECK(lg_model_num_params(m) >= got && lg_model_num_params(m) < got + 16 * 128,
          "buffer length %zu vs count %zu", lg_model_num_params(m), got);
    lg_model_free(m);
}

static void test_param_counts(void) {
    /* numbers printed by tools/model_param_counts.py (torch.nn modules) */
    count_case(LG_ARCH_RESNET, LG_NET_D, 3, 32, 128, 4, 0, 0, resnet_d_count(3, 128), 1053824);
    count_case(LG_ARCH_RESNET, LG_NET_G, 3, 32, 256, 4, 0, 0, resnet_g_count(3, 256, 128, 4),
               4276739);
    count_case(LG_ARCH_RESNET, LG_NET_D, 1, 32, 64, 4, 0, 0, resnet_d_count(1, 64), 263488);
    count_case(LG_ARCH_RESNET, LG_NET_G, 1, 48, 64, 4, 0, 0, resnet_g_count(1, 64, 128, 6), 532737);
    count_case(LG_ARCH_CNN, LG_NET_D, 3, 32, 64, 4, 0, 0, cnn_d_count(3, 64, 4), 2935873);
    count_case(LG_ARCH_CNN, LG_NET_G, 3, 32, 64, 4, 0, 0, cnn_g_count(3, 64, 128, 4), 3813379);
    count_case(LG_ARCH_CNN, LG_NET_D, 3, 48, 64, 4, 0, 0, cnn_d_count(3, 64, 6), 2946113);
    count_case(LG_ARCH_MLP, LG_NET_G, 1, 32, 512, 4, 0, 0, mlp_count(128, 1024, 512, 4, 1), 1383424);
    count_case(LG_ARCH_MLP, LG_NET_D, 1, 32, 512, 4, 0, 0, mlp_count(1024, 1, 512, 4, 0), 1313281);
    count_case(LG_ARCH_MLP, LG_NET_G, 1, 32, 128, 3, 2, 2, mlp_count(2, 2, 128, 3, 0), 33666);
    count_case(LG_ARCH_MLP, LG_NET_D, 1, 32, 128, 3, 2, 0, mlp_count(2, 1, 128, 3, 0), 33537);
    /* the CNN critic with batch norm */
    static const struct { int c, size, ch; size_t torch; } bn[2] = {{3, 32, 64, 2937217},
                                                                     {1, 48, 16, 188225}};
    for (int i = 0; i < 2; i++) {
        lg_model_spec s;
        lg_model_spec_default(&s, LG_ARCH_CNN, LG_NET_D);
        s.img_c = bn[i].c, s.img_size = bn[i].size, s.ch = bn[i].ch, s.batchnorm = 1;
        lg_model *m;
        CHECK_OK(lg_model_create(&m, &s, NULL, 1));
        if (!m) continue;
        size_t got = lg_model_count_params(m),
               want = cnn_d_bn_count((size_t)s.img_c, (size_t)s.ch, (size_t)s.img_size / 8);
        CHECK(got == want && got == bn[i].torch, "cnn D bn c%d ch%d s%d: %zu params, formula %zu, PyTorch %zu",
              s.img_c, s.ch, s.img_size, got, want, bn[i].torch);
        lg_model_free(m);
    }
}

/* ---- tables, init, determinism ---- */

static void test_tables_and_init(void) {
    lg_model *g = make(LG_ARCH_RESNET, LG_NET_G, 3, 32, 16, LG_LIP_SN, 11);
    lg_model *d = make(LG_ARCH_RESNET, LG_NET_D, 3, 32, 16, LG_LIP_TOEPLITZ, 11);
    if (!g || !d) return;
    lg_model *ms[2] = {g, d};
    for (int k = 0; k < 2; k++) {
        lg_model *m = ms[k];
        int n = lg_model_num_named(m);
        /* unique names; param tensors inside the param buffer without overlap */
        char *used_p = calloc(lg_model_num_params(m), 1), *used_s = calloc(lg_model_num_state(m), 1);
        int overlap = 0, outside = 0, dup = 0;
        for (int i = 0; i < n; i++) {
            const lg_named_tensor *t = lg_model_named(m, i);
            for (int j = 0; j < i; j++) dup += strcmp(lg_model_named(m, j)->name, t->name) == 0;
            CHECK(lg_model_find(m, t->name) == t, "find %s", t->name);
            size_t cap = t->is_param ? lg_model_num_params(m) : lg_model_num_state(m);
            float *base = t->is_param ? lg_model_params(m) : lg_model_state(m);
            char *used = t->is_param ? used_p : used_s;
            CHECK(t->t->data == base + t->offset, "%s data pointer", t->name);
            CHECK((uintptr_t)t->t->data % 64 == 0, "%s is not 64-byte aligned", t->name);
            if (t->offset + (size_t)t->t->numel > cap) {
                outside++;
                continue;
            }
            for (int64_t e = 0; e < t->t->numel; e++) overlap += used[t->offset + e]++ != 0;
            CHECK(t->t->requires_grad == t->is_param, "%s requires_grad", t->name);
        }
        CHECK(dup == 0 && overlap == 0 && outside == 0, "tables: %d dup, %d overlap, %d outside",
              dup, overlap, outside);
        free(used_p);
        free(used_s);
        lg_tensor *pt[LG_MODEL_MAX_TENSORS];
        int np = lg_model_param_tensors(m, pt);
        size_t tot = 0;
        for (int i = 0; i < np; i++) tot += (size_t)pt[i]->numel;
        CHECK(tot == lg_model_count_params(m), "param tensors cover %zu of %zu", tot,
              lg_model_count_params(m));
    }
    CHECK(lg_model_find(g, "l1.weight") && lg_model_find(g, "block2.b1.running_var") &&
              lg_model_find(g, "block4.c_sc.sn_u") && lg_model_find(g, "c5.sn_sigma"),
          "expected resnet G names");
    CHECK(lg_model_find(d, "block1.c1.toep_u") && lg_model_find(d, "l5.sn_u") &&
              !lg_model_find(d, "l5.toep_u"),
          "Toeplitz D: convs carry toep_u, the linear layer sn_u");
    /* the ResNet D's l5 has no bias at all (snresnet_32.py nobias=True, the
     * thesis code bias=False); every other weight layer has one */
    CHECK(lg_model_find(d, "l5.weight") && !lg_model_find(d, "l5.bias"), "resnet D: l5.bias must not exist");
    for (int k = 0; k < 2; k++)
        for (int i = 0; i < lg_model_num_layers(ms[k]); i++) {
            const lg_layer_info *l = lg_model_layer(ms[k], i);
            int want = !(k == 1 && !strcmp(l->name, "l5"));
            CHECK((l->b != NULL) == want, "resnet %s %s: bias %s, want %s", k ? "D" : "G", l->name,
                  l->b ? "present" : "absent", want ? "present" : "absent");
        }
    lg_model *cd = make(LG_ARCH_CNN, LG_NET_D, 3, 32, 8, LG_LIP_NONE, 5);
    lg_model *md = make(LG_ARCH_MLP, LG_NET_D, 1, 8, 8, LG_LIP_NONE, 5);
    CHECK(cd && md && lg_model_find(cd, "l4.bias") && lg_model_find(md, "fc4.bias") &&
              lg_model_layer(cd, lg_model_num_layers(cd) - 1)->b,
          "cnn D l4 and mlp D fc4 keep their biases");
    lg_model_free(cd);
    lg_model_free(md);
    const lg_named_tensor *tu = lg_model_find(d, "block2.c1.toep_u");
    CHECK(tu && tu->t->ndim == 3 && tu->t->shape[0] == 16 && tu->t->shape[1] == 16 &&
              tu->t->shape[2] == 16,
          "block2.c1.toep_u is (16,16,16)");

    /* Xavier bound gain*sqrt(6/(fan_in+fan_out)) for block convs */
    const lg_named_tensor *w = lg_model_find(d, "block3.c1.weight");
    double bound = sqrt(2.0) * sqrt(6.0 / (16 * 9 + 16 * 9)), mx = 0, mean = 0;
    for (int64_t i = 0; i < w->t->numel; i++) {
        mx = fmax(mx, fabs(w->t->data[i]));
        mean += w->t->data[i];
    }
    mean /= (double)w->t->numel;
    CHECK(mx <= bound && mx > 0.95 * bound, "xavier max |w| %g, bound %g", mx, bound);
    CHECK(fabs(mean) < 0.1 * bound, "xavier mean %g", mean);
    const lg_named_tensor *bb = lg_model_find(d, "block3.c1.bias");
    float bmax = 0;
    for (int64_t i = 0; i < bb->t->numel; i++) bmax = fmaxf(bmax, fabsf(bb->t->data[i]));
    CHECK(bmax == 0.0f, "resnet biases start at 0");
    const lg_named_tensor *gm = lg_model_find(g, "b5.weight"), *rv = lg_model_find(g, "b5.running_var");
    CHECK(gm->t->data[3] == 1.0f && rv->t->data[3] == 1.0f, "BN gamma 1, running var 1");
    /* PyTorch default for the CNN: U(+-1/sqrt(fan_in)); convT fan_in = out*k*k */
    lg_model *cg = make(LG_ARCH_CNN, LG_NET_G, 3, 32, 8, LG_LIP_NONE, 5);
    const lg_named_tensor *dw = lg_model_find(cg, "dc1.weight"), *db = lg_model_find(cg, "dc1.bias");
    bound = 1.0 / sqrt(32.0 * 16);
    mx = 0;
    for (int64_t i = 0; i < dw->t->numel; i++) mx = fmax(mx, fabs(dw->t->data[i]));
    CHECK(dw->t->shape[0] == 64 && dw->t->shape[1] == 32 && mx <= bound && mx > 0.95 * bound,
          "convT weight (64,32,4,4), max %g bound %g", mx, bound);
    mx = 0;
    for (int64_t i = 0; i < db->t->numel; i++) mx = fmax(mx, fabs(db->t->data[i]));
    CHECK(mx <= bound && mx > 0.5 * bound, "convT bias max %g bound %g", mx, bound);
    const lg_layer_info *li = lg_model_layer(cg, 1);
    CHECK(li && li->kind == LG_LAYER_CONVT && li->out_dim == 1 && li->in_h == 4 && !strcmp(li->name, "dc1"),
          "cnn G layer 1 is dc1, SN out dim 1, input 4x4");
    lg_model_free(cg);

    /* determinism: same seed -> same bytes; other seed -> different */
    lg_model *g2 = make(LG_ARCH_RESNET, LG_NET_G, 3, 32, 16, LG_LIP_SN, 11);
    lg_model *g3 = make(LG_ARCH_RESNET, LG_NET_G, 3, 32, 16, LG_LIP_SN, 12);
    CHECK(memcmp(lg_model_params(g), lg_model_params(g2), lg_model_num_params(g) * 4) == 0 &&
              memcmp(lg_model_state(g), lg_model_state(g2), lg_model_num_state(g) * 4) == 0,
          "same seed, same params and state");
    CHECK(memcmp(lg_model_params(g), lg_model_params(g3), lg_model_num_params(g) * 4) != 0 &&
              memcmp(lg_model_state(g), lg_model_state(g3), lg_model_num_state(g) * 4) != 0,
          "other seed, other params and state");
    /* SN start vectors are unit length and differ between layers */
    const lg_named_tensor *u1 = lg_model_find(g, "block2.c1.sn_u"), *u2 = lg_model_find(g, "block2.c2.sn_u");
    double n1 = 0, dot = 0;
    for (int i = 0; i < 16; i++) {
        n1 += (double)u1->t->data[i] * u1->t->data[i];
        dot += (double)u1->t->data[i] * u2->t->data[i];
    }
    CHECK(fabs(n1 - 1) < 1e-5 && fabs(dot) < 0.99, "u unit (%g), layers differ (dot %g)", n1, dot);
    lg_model_free(g2);
    lg_model_free(g3);
    lg_model_free(g);
    lg_model_free(d);
}

/* ---- finite differences through whole networks ---- */

typedef struct fd_case {
    lg_model *m;
    float *x;      /* (n * per) host input */
    int64_t xshape[4];
    int xnd;
    float *r;      /* output weighting */
    float *q;      /* order 2: weighting of dL/dx */
    int train;
} fd_case;

/* sum(a * b) of two tensors reduced on the host in double, so that the
 * finite differences are not swamped by float rounding of a long sum */
static double host_dot(lg_ctx *ctx, lg_tensor *t, const float *w) {
    float *h = malloc((size_t)t->numel * sizeof(float));
    lg_to_host(ctx, t, h);
    double s = 0;
    for (int64_t i = 0; i < t->numel; i++) s += (double)h[i] * w[i];
    free(h);
    return s;
}

/* L = sum(r * f(x)); order 2: P = sum(q * dL/dx). With g, the gradients
 * of that value w.r.t. the parameters go to g. Returns the value. */
static double fd_eval(lg_ctx *ctx, fd_case *c, int order, lg_tensor **pt, int np, lg_tensor **g) {
    lg_ctx_reset(ctx);
    lg_tensor *x = lg_from_host(ctx, c->x, c->xnd, c->xshape);
    x->requires_grad = order == 2;
    lg_tensor *y = lg_model_forward(ctx, c->m, x, c->train);
    if (!y) return NAN;
    lg_tensor *rr = lg_from_host(ctx, c->r, y->ndim, y->shape);
    if (order == 1) {
        if (g && lg_grad(ctx, y, rr, np, pt, g, 0) != LG_OK) return NAN;
        return host_dot(ctx, y, c->r);
    }
    lg_tensor *gx;
    if (lg_grad(ctx, y, rr, 1, &x, &gx, 1) != LG_OK) return NAN;
    if (g) {
        lg_tensor *qq = lg_from_host(ctx, c->q, c->xnd, c->xshape);
        if (lg_grad(ctx, gx, qq, np, pt, g, 0) != LG_OK) return NAN;
    }
    return host_dot(ctx, gx, c->q);
}

static double fd_h = 3e-4;

static void fd_check(lg_model *m, int batch, int order, int train, double atol, double rtol,
                     const char *what) {
    lg_ctx *ctx;
    CHECK_OK(lg_ctx_create(&ctx, NULL));
    lg_test_rng r = lg_test_rng_make(99);
    fd_case c = {.m = m, .train = train};
    lg_tensor *x0 = model_input(ctx, &r, m, batch);
    c.xnd = x0->ndim;
    memcpy(c.xshape, x0->shape, sizeof c.xshape);
    c.x = malloc((size_t)x0->numel * sizeof(float));
    c.q = malloc((size_t)x0->numel * sizeof(float));
    lg_to_host(ctx, x0, c.x);
    lg_test_fill_uniform(&r, c.q, (size_t)x0->numel, -1, 1);
    /* run once to prime u/v, then freeze them so every evaluation sees
     * the same normalization */
    lg_tensor *y0 = lg_model_forward(ctx, m, x0, train);
    CHECK_OK(lg_ctx_status(ctx));
    c.r = malloc((size_t)y0->numel * sizeof(float));
    lg_test_fill_uniform(&r, c.r, (size_t)y0->numel, -1, 1);
    int old = lg_model_set_lip_update(m, 0);

    /* g is set only by a successful lg_grad (fd_eval's NAN says otherwise) */
    lg_tensor *pt[LG_MODEL_MAX_TENSORS], *g[LG_MODEL_MAX_TENSORS] = {NULL};
    int np = lg_model_param_tensors(m, pt);
    double v = fd_eval(ctx, &c, order, pt, np, g);
    CHECK_OK(lg_ctx_status(ctx));
    /* a failed lg_grad leaves g unset: stop here */
    CHECK(!isnan(v), "%s order %d: the gradient failed: %s", what, order, lg_error_msg());
    if (isnan(v)) {
        lg_model_set_lip_update(m, old);
        free(c.x);
        free(c.q);
        free(c.r);
        lg_ctx_free(ctx);
        return;
    }
    /* copy the analytic gradients out before the context is reset */
    float **ga = calloc((size_t)np, sizeof *ga);
    for (int i = 0; i < np; i++) {
        ga[i] = malloc((size_t)pt[i]->numel * sizeof(float));
        lg_to_host(ctx, g[i], ga[i]);
    }
    /* Central differences; ReLU networks are piecewise smooth, and where a
     * step crosses kinks the central difference is off but the analytic
     * derivative lies between the one-sided ones: such entries are skipped
     * (and counted; most entries must match outright). */
    double l0 = fd_eval(ctx, &c, order, NULL, 0, NULL);
    int bad = 0, checked = 0, skipped = 0;
    for (int i = 0; i < np; i++) {
        for (int k = 0; k < 4; k++) {
            int64_t e = (int64_t)(lg_test_rng_u64(&r) % (uint64_t)pt[i]->numel);
            float *p = &pt[i]->data[e], keep = *p;
            float h = (float)fd_h * fmaxf(1.0f, fabsf(keep));
            *p = keep + h;
            float hp = *p - keep;
            double lp = fd_eval(ctx, &c, order, NULL, 0, NULL);
            *p = keep - h;
            float hm = keep - *p;
            double lm = fd_eval(ctx, &c, order, NULL, 0, NULL);
            *p = keep;
            double fd = (lp - lm) / ((double)hp + hm), an = ga[i][e];
            double dp = (lp - l0) / hp, dm = (l0 - lm) / hm, tol = atol + rtol * fabs(fd);
            /* a bias feeding a batch norm has exactly zero gradient; there the
             * difference is pure rounding noise (BN divides by a small std) */
            if (fabs(fd - an) <= tol || (fabs(an) < 1e-5 && fabs(fd) < 2e-2)) {
                checked++;
                continue;
            }
            /* Crossing kinks (a bias moves a whole channel of ReLU inputs)
             * puts the analytic derivative between the one-sided ones */
            if (an >= fmin(dp, dm) - tol && an <= fmax(dp, dm) + tol) {
                skipped++;
                if (getenv("FD_DEBUG"))
                    fprintf(stderr, "  kink %s[%lld] dp %g dm %g an %g\n", pt[i]->name,
                            (long long)e, dp, dm, an);
                continue;
            }
            checked++;
            bad++;
            fprintf(stderr, "  %s order %d: %s[%lld] analytic %.6g fd %.6g (one-sided %.6g %.6g)\n",
                    what, order, pt[i]->name, (long long)e, an, fd, dp, dm);
        }
    }
    CHECK(bad == 0, "%s order %d: %d of %d parameter derivatives off", what, order, bad, checked);
    /* the test must be able to fail: most entries are smooth enough to check */
    if (getenv("FD_DEBUG")) fprintf(stderr, "%s order %d: %d checked, %d skipped\n", what, order, checked, skipped);
    CHECK(skipped <= (checked + skipped) / 4, "%s order %d: %d of %d entries skipped at kinks",
          what, order, skipped, checked + skipped);
    lg_model_set_lip_update(m, old);
    for (int i = 0; i < np; i++) free(ga[i]);
    free(ga);
    free(c.x);
    free(c.q);
    free(c.r);
    lg_ctx_free(ctx);
}

static void test_fd(void) {
    /* tiny D's: first order and the gradient-penalty structure (order 2) */
    lg_model *d = make(LG_ARCH_RESNET, LG_NET_D, 2, 8, 4, LG_LIP_SN, 3);
    fd_check(d, 2, 1, 1, 2e-3, 2e-2, "resnet D sn");
    fd_check(d, 2, 2, 1, 2e-3, 3e-2, "resnet D sn");
    lg_model_free(d);
    d = make(LG_ARCH_RESNET, LG_NET_D, 1, 8, 3, LG_LIP_TOEPLITZ, 4);
    /* so these first- and second-order checks cover a weight layer
     * without bias (the gradient penalty differentiates through it) */
    CHECK(d && !lg_model_layer(d, lg_model_num_layers(d) - 1)->b, "resnet D l5 runs without bias");
    fd_check(d, 2, 1, 1, 2e-3, 2e-2, "resnet D toeplitz");
    fd_check(d, 2, 2, 1, 2e-3, 3e-2, "resnet D toeplitz");
    lg_model_free(d);
    d = make(LG_ARCH_CNN, LG_NET_D, 1, 8, 2, LG_LIP_SN, 5);
    fd_check(d, 2, 1, 1, 2e-3, 2e-2, "cnn D sn");
    fd_check(d, 2, 2, 1, 2e-3, 3e-2, "cnn D sn");
    lg_model_free(d);
    /* the CNN critic with batch norm: train mode (batch statistics, with
     * plain weights, SN and Toeplitz) and eval mode (running statistics).
     * First order: the gradient penalty, the one user of second
     * derivatives, is rejected with a BN critic (lg_config_validate), and
     * batch norm has no second derivative (test_cnn_d_bn: it fails loudly) */
    d = make_dbn(1, 16, 2, LG_LIP_NONE, 9);
    fd_check(d, 4, 1, 1, 2e-3, 2e-2, "cnn D bn");
    fd_check(d, 4, 1, 0, 2e-3, 2e-2, "cnn D bn eval");
    lg_model_free(d);
    d = make_dbn(1, 16, 2, LG_LIP_SN, 10);
    fd_check(d, 4, 1, 1, 2e-3, 2e-2, "cnn D bn sn");
    lg_model_free(d);
    d = make_dbn(1, 16, 2, LG_LIP_TOEPLITZ, 11);
    fd_check(d, 4, 1, 1, 2e-3, 2e-2, "cnn D bn toeplitz");
    lg_model_free(d);
    /* G's (batch-norm in train mode; first order only) */
    lg_model_spec s;
    lg_model_spec_default(&s, LG_ARCH_RESNET, LG_NET_G);
    s.img_c = 1, s.img_size = 16, s.ch = 3, s.z_dim = 4, s.lip = LG_LIP_SN;
    lg_model *g;
    CHECK_OK(lg_model_create(&g, &s, NULL, 6));
    fd_check(g, 8, 1, 1, 5e-3, 2e-2, "resnet G sn");
    lg_model_free(g);
    lg_model_spec_default(&s, LG_ARCH_CNN, LG_NET_G);
    s.img_c = 1, s.img_size = 8, s.ch = 2, s.z_dim = 3, s.lip = LG_LIP_TOEPLITZ;
    CHECK_OK(lg_model_create(&g, &s, NULL, 7));
    fd_check(g, 4, 1, 1, 2e-3, 2e-2, "cnn G toeplitz");
    lg_model_free(g);
    lg_model_spec_default(&s, LG_ARCH_MLP, LG_NET_G);
    s.data_dim = 2, s.z_dim = 2, s.ch = 6, s.depth = 2, s.lip = LG_LIP_SN;
    CHECK_OK(lg_model_create(&g, &s, NULL, 8));
    fd_check(g, 4, 1, 1, 2e-3, 2e-2, "mlp G bn sn");
    lg_model_free(g);
}

/* ---- steady state: no system allocation after the first steps ---- */

static lg_tensor *critic(lg_ctx *ctx, lg_tensor *x, void *user) {
    return lg_model_forward(ctx, user, x, 1);
}

static void test_steady_state(void) {
    lg_model *g = make(LG_ARCH_RESNET, LG_NET_G, 3, 16, 8, LG_LIP_SN, 1);
    lg_model *d = make(LG_ARCH_RESNET, LG_NET_D, 3, 16, 8, LG_LIP_SN, 2);
    if (!g || !d) return;
    lg_ctx *ctx;
    CHECK_OK(lg_ctx_create(&ctx, NULL));
    lg_test_rng r = lg_test_rng_make(5);
    lg_tensor *gp_[LG_MODEL_MAX_TENSORS], *dp[LG_MODEL_MAX_TENSORS], *gg[LG_MODEL_MAX_TENSORS];
    int ng = lg_model_param_tensors(g, gp_), nd = lg_model_param_tensors(d, dp);
    size_t allocs[4];
    for (int step = 0; step < 4; step++) {
        /* D step: hinge-like loss on real and fake, plus a gradient penalty
         * pass with frozen u/v */
        lg_tensor *real = model_input(ctx, &r, d, 4);
        lg_tensor *z = model_input(ctx, &r, g, 4);
        lg_tensor *fake = lg_detach(ctx, lg_model_forward(ctx, g, z, 1), 0);
        lg_tensor *loss = lg_add(ctx, lg_mean(ctx, lg_relu(ctx, lg_add_scalar(ctx, lg_neg(ctx, lg_model_forward(ctx, d, real, 1)), 1))),
                                 lg_mean(ctx, lg_relu(ctx, lg_add_scalar(ctx, lg_model_forward(ctx, d, fake, 1), 1))));
        int64_t es[4] = {4, 1, 1, 1};
        lg_tensor *eps = rand_tensor(ctx, &r, 4, es);
        lg_model_set_lip_update(d, 0);
        lg_tensor *gp = lg_gradient_penalty(ctx, critic, d, real, fake, eps, 10.0f, LG_GP_TWO_SIDED);
        lg_model_set_lip_update(d, 1);
        loss = lg_add(ctx, loss, gp);
        CHECK_OK(lg_ctx_status(ctx));
        CHECK_OK(lg_grad(ctx, loss, NULL, nd, dp, gg, 0));
        CHECK_OK(lg_model_store_grads(ctx, d, gg, 0));
        lg_ctx_reset(ctx);
        /* G step */
        z = model_input(ctx, &r, g, 8);
        loss = lg_neg(ctx, lg_mean(ctx, lg_model_forward(ctx, d, lg_model_forward(ctx, g, z, 1), 1)));
        CHECK_OK(lg_grad(ctx, loss, NULL, ng, gp_, gg, 0));
        CHECK_OK(lg_model_store_grads(ctx, g, gg, 0));
        lg_ctx_reset(ctx);
        allocs[step] = lg_ctx_sys_allocs(ctx);
    }
    CHECK(allocs[1] == allocs[2] && allocs[2] == allocs[3],
          "system allocations per step: %zu %zu %zu %zu (must stop growing)", allocs[0], allocs[1],
          allocs[2], allocs[3]);
    lg_ctx_free(ctx);
    lg_model_free(g);
    lg_model_free(d);
}

/* ---- sigma convergence of the attached methods ---- */

/* sigma of a (rows, cols) matrix, power iteration in double */
static double mat_sigma(const float *a, int64_t rows, int64_t cols) {
    double *v = malloc((size_t)cols * sizeof(double)), *u = malloc((size_t)rows * sizeof(double));
    for (int64_t j = 0; j < cols; j++) v[j] = 1.0 + 0.01 * (double)(j % 7);
    double s = 0;
    for (int it = 0; it < 3000; it++) {
        double nu = 0, nv = 0;
        for (int64_t i = 0; i < rows; i++) {
            double t = 0;
            for (int64_t j = 0; j < cols; j++) t += a[i * cols + j] * v[j];
            u[i] = t;
            nu += t * t;
        }
        nu = sqrt(nu);
        for (int64_t i = 0; i < rows; i++) u[i] /= nu;
        for (int64_t j = 0; j < cols; j++) {
            double t = 0;
            for (int64_t i = 0; i < rows; i++) t += a[i * cols + j] * u[i];
            v[j] = t;
            nv += t * t;
        }
        s = sqrt(nv);
        for (int64_t j = 0; j < cols; j++) v[j] /= s;
    }
    free(u);
    free(v);
    return s;
}

/* the weight as W_mat (rows = output dim) */
static double layer_mat_sigma(const lg_layer_info *l) {
    const lg_tensor *w = l->w;
    int64_t rows = w->shape[l->out_dim], cols = w->numel / rows;
    /* calloc: the convT branch fills every entry only when c * rows * kk
     * == numel, which holds for a 4-d weight but is not visible here */
    float *a = calloc((size_t)w->numel, sizeof(float));
    LG_ASSERT(a);
    if (l->out_dim == 0) {
        memcpy(a, w->data, (size_t)w->numel * sizeof(float));
    } else { /* (c, oc, k, k) -> (oc, c*k*k) */
        int64_t c = w->shape[0], kk = w->shape[2] * w->shape[3];
        for (int64_t i = 0; i < c; i++)
            for (int64_t o = 0; o < rows; o++)
                for (int64_t k = 0; k < kk; k++) a[o * cols + i * kk + k] = w->data[(i * rows + o) * kk + k];
    }
    double s = mat_sigma(a, rows, cols);
    free(a);
    return s;
}

/* operator norm of the conv (or the conv adjoint to a convT) by power
 * iteration with the engine's conv ops */
static double layer_op_sigma(lg_ctx *ctx, const lg_layer_info *l) {
    lg_tensor *w = lg_alias(ctx, l->w, l->w->ndim, l->w->shape);
    int c = (int)w->shape[1], h = l->in_h, wd = l->in_w;
    if (l->kind == LG_LAYER_CONVT) { /* adjoint conv on the convT's output space */
        h = (l->in_h - 1) * l->stride - 2 * l->pad + (int)w->shape[2];
        wd = (l->in_w - 1) * l->stride - 2 * l->pad + (int)w->shape[3];
    }
    int64_t sh[4] = {1, c, h, wd};
    lg_tensor *u = lg_full(ctx, 4, sh, 1.0f);
    for (int64_t i = 0; i < u->numel; i++) u->data[i] += 0.01f * (float)(i % 5);
    double s = 0;
    int oldg = lg_ctx_set_grad_enabled(ctx, 0);
    for (int it = 0; it < 400; it++) {
        lg_tensor *y = lg_conv2d(ctx, u, w, NULL, l->stride, l->pad);
        int oh = (int)y->shape[2];
        int op = h - ((oh - 1) * l->stride - 2 * l->pad + (int)w->shape[2]);
        lg_tensor *t = lg_conv_transpose2d(ctx, y, w, NULL, l->stride, l->pad, op);
        double n = 0;
        for (int64_t i = 0; i < t->numel; i++) n += (double)t->data[i] * t->data[i];
        n = sqrt(n);
        s = sqrt(n); /* ||T^T T u|| -> sigma^2 for unit u */
        for (int64_t i = 0; i < t->numel; i++) u->data[i] = (float)(t->data[i] / n);
    }
    lg_ctx_set_grad_enabled(ctx, oldg);
    return s;
}

static void check_sigmas(lg_model *m, const char *what) {
    lg_ctx *ctx;
    CHECK_OK(lg_ctx_create(&ctx, NULL));
    lg_test_rng r = lg_test_rng_make(3);
    for (int i = 0; i < 20; i++) {
        lg_model_forward(ctx, m, model_input(ctx, &r, m, 2), 1);
        CHECK_OK(lg_ctx_status(ctx));
        lg_ctx_reset(ctx);
    }
    float sig[LG_MODEL_MAX_LAYERS];
    int n = lg_model_sigmas(m, sig, LG_MODEL_MAX_LAYERS);
    CHECK(n == lg_model_num_layers(m), "sigma count");
    for (int i = 0; i < n; i++) {
        const lg_layer_info *l = lg_model_layer(m, i);
        double ref = l->lip == LG_LIP_TOEPLITZ ? layer_op_sigma(ctx, l) : layer_mat_sigma(l);
        lg_ctx_reset(ctx);
        /* the normalized layer's norm: lip_scale * ref / estimate */
        double normalized = ref / sig[i];
        CHECK(fabs(normalized - 1.0) < 2e-3, "%s %s (%s): normalized sigma %.5f (ref %.5f, est %.5f)",
              what, l->name, lg_lip_kind_name(l->lip), normalized, ref, (double)sig[i]);
    }
    lg_ctx_free(ctx);
}

/* Thesis 5.5.1 / its code: k scales each (transposed) convolution of a
 * Toeplitz network; its linear layers are plain SN (scale 1). */
static void check_toeplitz_scales(const lg_model *m, float k, const char *what) {
    int nconv = 0, nlin = 0;
    for (int i = 0; i < lg_model_num_layers(m); i++) {
        const lg_layer_info *l = lg_model_layer(m, i);
        if (l->kind == LG_LAYER_LINEAR) {
            nlin++;
            CHECK(l->lip == LG_LIP_SN && l->lip_scale == 1.0f, "%s: linear %s has %s x %g, want sn x 1",
                  what, l->name, lg_lip_kind_name(l->lip), (double)l->lip_scale);
        } else {
            nconv++;
            CHECK(l->lip == LG_LIP_TOEPLITZ && l->lip_scale == k, "%s: conv %s has %s x %g, want toeplitz x %g",
                  what, l->name, lg_lip_kind_name(l->lip), (double)l->lip_scale, (double)k);
        }
    }
    CHECK(nconv > 0 && nlin > 0, "%s: %d convs, %d linear layers", what, nconv, nlin);
}

/* The scale reaches the forward: a network of linear layers only (an MLP
 * D) under Toeplitz with k = 3 computes exactly what it computes under SN
 * (same seed: same weights and u/v); with k on its 4 linear layers the
 * output would be 81 times larger. */
static void test_toeplitz_linear_unscaled(void) {
    lg_model_spec s;
    lg_model_spec_default(&s, LG_ARCH_MLP, LG_NET_D);
    s.img_c = 1, s.img_size = 8, s.ch = 8, s.depth = 3, s.lip = LG_LIP_SN;
    lg_model *sn, *tp;
    CHECK_OK(lg_model_create(&sn, &s, NULL, 41));
    s.lip = LG_LIP_TOEPLITZ, s.toep_k = 3.0f;
    CHECK_OK(lg_model_create(&tp, &s, NULL, 41));
    if (!sn || !tp) return;
    lg_ctx *ctx;
    CHECK_OK(lg_ctx_create(&ctx, NULL));
    lg_test_rng r = lg_test_rng_make(8);
    lg_tensor *x = model_input(ctx, &r, sn, 3);
    lg_tensor *ya = lg_model_forward(ctx, sn, x, 1), *yb = lg_model_forward(ctx, tp, x, 1);
    CHECK_OK(lg_ctx_status(ctx));
    if (ya && yb) {
        double big = 0;
        for (int64_t i = 0; i < ya->numel; i++) big = fmax(big, fabs(ya->data[i]));
        CHECK(big > 1e-3 && memcmp(ya->data, yb->data, (size_t)ya->numel * sizeof(float)) == 0,
              "mlp D: toeplitz k=3 output %g vs sn %g (linear layers must not take k)",
              (double)yb->data[0], (double)ya->data[0]);
    }
    lg_ctx_free(ctx);
    lg_model_free(sn);
    lg_model_free(tp);
}

static void test_sigma(void) {
    lg_model_spec s;
    lg_model_spec_default(&s, LG_ARCH_RESNET, LG_NET_D);
    s.img_c = 3, s.img_size = 8, s.ch = 6, s.lip = LG_LIP_SN, s.sn_iters = 10;
    lg_model *m;
    CHECK_OK(lg_model_create(&m, &s, NULL, 21));
    check_sigmas(m, "resnet D sn");
    lg_model_free(m);
    s.lip = LG_LIP_TOEPLITZ, s.toep_k = 2.0f;
    CHECK_OK(lg_model_create(&m, &s, NULL, 22));
    check_sigmas(m, "resnet D toeplitz");
    check_toeplitz_scales(m, 2.0f, "resnet D toeplitz");
    lg_model_free(m);
    lg_model_spec_default(&s, LG_ARCH_CNN, LG_NET_G);
    s.img_c = 1, s.img_size = 8, s.ch = 2, s.z_dim = 5, s.lip = LG_LIP_SN, s.sn_iters = 10;
    CHECK_OK(lg_model_create(&m, &s, NULL, 23));
    check_sigmas(m, "cnn G sn (convT out dim 1)");
    lg_model_free(m);
    s.lip = LG_LIP_TOEPLITZ, s.toep_k = 1.5f;
    CHECK_OK(lg_model_create(&m, &s, NULL, 24));
    check_sigmas(m, "cnn G toeplitz (convT adjoint)");
    check_toeplitz_scales(m, 1.5f, "cnn G toeplitz");
    lg_model_free(m);
    test_toeplitz_linear_unscaled();
}

/* ---- u/v update flags, eval mode, EMA ---- */

/* State buffers equal except the sigma slots (an eval forward rewrites
 * sigma for the model's own weights). */
static int uv_equal(const lg_model *a, const float *sa, const float *sb) {
    for (int i = 0; i < lg_model_num_named(a); i++) {
        const lg_named_tensor *t = lg_model_named(a, i);
        if (t->is_param || strstr(t->name, "sigma")) continue;
        if (memcmp(sa + t->offset, sb + t->offset, (size_t)t->t->numel * 4)) return 0;
    }
    return 1;
}

static void test_flags_and_ema(void) {
    lg_model *d = make(LG_ARCH_CNN, LG_NET_D, 3, 16, 4, LG_LIP_SN, 31);
    lg_model *g = make(LG_ARCH_RESNET, LG_NET_G, 3, 16, 8, LG_LIP_SN, 32);
    if (!d || !g) return;
    lg_ctx *ctx;
    CHECK_OK(lg_ctx_create(&ctx, NULL));
    lg_test_rng r = lg_test_rng_make(4);
    size_t ns = lg_model_num_state(d);
    float *s0 = malloc(ns * 4), *s1 = malloc(ns * 4);
    lg_model_forward(ctx, d, model_input(ctx, &r, d, 2), 1);
    memcpy(s0, lg_model_state(d), ns * 4);
    lg_model_forward(ctx, d, model_input(ctx, &r, d, 2), 1);
    CHECK(memcmp(s0, lg_model_state(d), ns * 4) != 0, "a training forward advances u/v");
    memcpy(s0, lg_model_state(d), ns * 4);
    CHECK(lg_model_set_lip_update(d, 0) == 1, "updates on by default");
    lg_model_forward(ctx, d, model_input(ctx, &r, d, 2), 1);
    CHECK(memcmp(s0, lg_model_state(d), ns * 4) == 0, "frozen: u/v unchanged");
    lg_model_set_lip_update(d, 1);
    lg_model_forward(ctx, d, model_input(ctx, &r, d, 2), 0);
    CHECK(memcmp(s0, lg_model_state(d), ns * 4) == 0, "eval: u/v unchanged");
    lg_ctx_reset(ctx);

    /* EMA: params averaged, state (BN stats, u/v) copied */
    lg_model *ema;
    CHECK_OK(lg_model_clone(&ema, g));
    size_t np = lg_model_num_params(g), gs = lg_model_num_state(g);
    CHECK(memcmp(lg_model_params(ema), lg_model_params(g), np * 4) == 0, "clone params");
    float *e0 = calloc(np, sizeof *e0); /* calloc: np * 4 cannot wrap */
    LG_ASSERT(e0);
    memcpy(e0, lg_model_params(ema), np * sizeof *e0);
    for (int i = 0; i < 3; i++) {
        lg_model_forward(ctx, g, model_input(ctx, &r, g, 4), 1);
        lg_ctx_reset(ctx);
    }
    for (size_t i = 0; i < np; i++) lg_model_params(g)[i] += 0.5f;
    CHECK_OK(lg_model_ema_update(ema, g, 0.9f));
    int bad = 0;
    for (size_t i = 0; i < np; i++) {
        float want = 0.9f * e0[i] + 0.1f * lg_model_params(g)[i];
        bad += fabsf(lg_model_params(ema)[i] - want) > 1e-6f;
    }
    CHECK(bad == 0, "ema params: %d of %zu wrong", bad, np);
    CHECK(memcmp(lg_model_state(ema), lg_model_state(g), gs * 4) == 0,
          "ema state copied (u/v not averaged)");
    const lg_named_tensor *u = lg_model_find(ema, "block2.c1.sn_u");
    double nrm = 0;
    for (int64_t i = 0; i < u->t->numel; i++) nrm += (double)u->t->data[i] * u->t->data[i];
    CHECK(fabs(nrm - 1) < 1e-4, "ema u stays unit (%g)", nrm);
    CHECK(lg_model_ema_update(ema, d, 0.9f) == LG_ERR_INVALID_ARG, "ema of other spec rejected");
    /* an eval forward of the EMA model after the copy keeps u/v as copied */
    lg_model_forward(ctx, ema, model_input(ctx, &r, ema, 2), 0);
    CHECK(uv_equal(ema, lg_model_state(ema), lg_model_state(g)), "ema eval keeps u/v");
    lg_ctx_reset(ctx);

    /* state loaded from a checkpoint: sigma > 0 means trained vectors */
    lg_model *g2 = make(LG_ARCH_RESNET, LG_NET_G, 3, 16, 8, LG_LIP_SN, 33);
    memcpy(lg_model_state(g2), lg_model_state(g), gs * 4);
    CHECK_OK(lg_model_state_loaded(g2));
    lg_model_forward(ctx, g2, model_input(ctx, &r, g2, 2), 0);
    CHECK(uv_equal(g2, lg_model_state(g2), lg_model_state(g)),
          "loaded trained vectors are used as they are in eval");
    lg_model_free(g2);
    /* a model never trained primes its vectors at the first eval forward */
    g2 = make(LG_ARCH_RESNET, LG_NET_G, 3, 16, 8, LG_LIP_SN, 34);
    lg_model_forward(ctx, g2, model_input(ctx, &r, g2, 2), 0);
    float sg[LG_MODEL_MAX_LAYERS];
    int nl = lg_model_sigmas(g2, sg, LG_MODEL_MAX_LAYERS), nonpos = 0;
    for (int i = 0; i < nl; i++) nonpos += !(sg[i] > 0);
    CHECK(nonpos == 0, "fresh model in eval: %d layers with sigma <= 0", nonpos);
    lg_model_free(g2);

    lg_model_free(ema);
    free(e0);
    free(s0);
    free(s1);
    lg_ctx_free(ctx);
    lg_model_free(d);
    lg_model_free(g);
}

/* ---- the CNN critic with batch norm (DCGAN_D's placement) ---- */

static void test_cnn_d_bn(void) {
    /* tables: BN after every conv but the first, those convs bias-free,
     * c0_0 and l4 keep theirs; no BN on l4 */
    lg_model *m = make_dbn(3, 16, 4, LG_LIP_NONE, 21);
    if (!m) return;
    static const char *const conv[7] = {"c0_0", "c0_1", "c1_0", "c1_1", "c2_0", "c2_1", "c3_0"};
    CHECK(lg_model_num_layers(m) == 8, "%d weight layers", lg_model_num_layers(m));
    for (int i = 0; i < 7; i++) {
        const lg_layer_info *l = lg_model_layer(m, i);
        char n[64];
        int want_bn = i > 0;
        CHECK(l && !strcmp(l->name, conv[i]) && (l->b == NULL) == want_bn,
              "%s: bias %s, want %s", conv[i], l && l->b ? "present" : "absent",
              want_bn ? "absent" : "present");
        const char *suf[4] = {"weight", "bias", "running_mean", "running_var"};
        for (int k = 0; k < 4; k++) {
            snprintf(n, sizeof n, "bn%s.%s", conv[i] + 1, suf[k]);
            const lg_named_tensor *t = lg_model_find(m, n);
            CHECK((t != NULL) == want_bn, "%s %s", n, t ? "present" : "absent");
            if (t && want_bn) {
                int64_t oc = lg_model_layer(m, i)->w->shape[0];
                static const float init[4] = {1, 0, 0, 1}; /* gamma, beta, mean, var */
                CHECK(t->t->numel == oc && t->is_param == (k < 2) && t->t->data[0] == init[k],
                      "%s: %lld of %lld channels, is_param %d, init %g", n, (long long)t->t->numel,
                      (long long)oc, t->is_param, t->t->data[0]);
            }
        }
    }
    CHECK(lg_model_layer(m, 7)->b && !lg_model_find(m, "bn4.weight") && !lg_model_find(m, "bn0_0.weight"),
          "l4 keeps its bias and has no BN; c0_0 has no BN");

    /* train mode: batch statistics (a sample's output depends on the rest
     * of the batch) and a running-statistics update; eval mode: running
     * statistics (per-sample outputs), no update */
    lg_ctx *ctx;
    CHECK_OK(lg_ctx_create(&ctx, NULL));
    lg_test_rng r = lg_test_rng_make(5);
    lg_tensor *x = model_input(ctx, &r, m, 4);
    int64_t one[4] = {1, 3, 16, 16};
    lg_tensor *x0 = lg_from_host(ctx, x->data, 4, one); /* sample 0 alone */
    const lg_named_tensor *rm = lg_model_find(m, "bn3_0.running_mean");
    lg_tensor *yt = lg_model_forward(ctx, m, x, 1), *yt0 = lg_model_forward(ctx, m, x0, 1);
    CHECK_OK(lg_ctx_status(ctx));
    CHECK(yt && yt0 && fabsf(yt->data[0] - yt0->data[0]) > 1e-4f,
          "train mode: sample 0 alone %g, in the batch %g (batch statistics)", yt0 ? yt0->data[0] : 0,
          yt ? yt->data[0] : 0);
    CHECK(rm && rm->t->data[0] != 0.0f, "train forward left bn3_0.running_mean at 0 (or it is missing)");
    float *st = malloc(lg_model_num_state(m) * sizeof(float));
    memcpy(st, lg_model_state(m), lg_model_num_state(m) * sizeof(float));
    lg_tensor *ye = lg_model_forward(ctx, m, x, 0), *ye0 = lg_model_forward(ctx, m, x0, 0);
    CHECK_OK(lg_ctx_status(ctx));
    CHECK(ye && ye0 && fabsf(ye->data[0] - ye0->data[0]) <= 1e-6f * (1 + fabsf(ye0->data[0])),
          "eval mode: sample 0 alone %.9g, in the batch %.9g (running statistics)",
          ye0 ? ye0->data[0] : 0, ye ? ye->data[0] : 0);
    CHECK(ye && fabsf(ye->data[0] - yt->data[0]) > 1e-4f, "eval output %g equals the train output",
          ye ? ye->data[0] : 0);
    CHECK(memcmp(st, lg_model_state(m), lg_model_num_state(m) * sizeof(float)) == 0,
          "an eval forward changed the running statistics");
    free(st);

    /* no second derivative through batch norm (src/ops/batchnorm.c): asked
     * for one (what a gradient penalty would do), lg_grad fails loudly */
    int64_t xs[4] = {4, 3, 16, 16};
    float *hx = malloc(4 * 3 * 16 * 16 * sizeof(float));
    lg_to_host(ctx, x, hx);
    lg_ctx_reset(ctx);
    lg_tensor *xg = lg_from_host(ctx, hx, 4, xs);
    free(hx);
    xg->requires_grad = 1;
    lg_tensor *y = lg_model_forward(ctx, m, xg, 1), *gx = NULL, *pt[LG_MODEL_MAX_TENSORS],
              *g[LG_MODEL_MAX_TENSORS];
    int np = lg_model_param_tensors(m, pt);
    CHECK_OK(lg_grad(ctx, lg_sum(ctx, y), NULL, 1, &xg, &gx, 1));
    if (gx) {
        lg_status s2 = lg_grad(ctx, lg_sum(ctx, lg_mul(ctx, gx, gx)), NULL, np, pt, g, 0);
        CHECK(s2 == LG_ERR_UNSUPPORTED && strstr(lg_error_msg(), "batchnorm"),
              "second derivative through the BN critic: %s (%s)", lg_status_str(s2), lg_error_msg());
    }
    lg_ctx_free(ctx);
    lg_model_free(m);
}

/* configs/cifar10_wgan_clip.yaml (weight clipping 0.01, RMSProp,
 * Wasserstein loss) made small and fast: tiny CIFAR file in a new temp dir
 * (into dir), D width d_width, G width 4, batches of 4, 5 critic updates
 * per step (the schedule's 100-update boost off), one thread, and the
 * critic's learning rate 10x the config's 5e-5: RMSProp moves a weight by
 * about lr per update, so the weights reach the clip bound (and, without
 * batch norm, blow the critic up) within a few updates instead of ~100
 * (with 5e-5 at D width 32 the no-BN critic passes 100 after ~85 updates;
 * too slow under ASan). 0 on success. */
static int wgan_clip_cfg(lg_config *c, int bn, int d_width, char *dir, size_t cap) {
    const char *cfg = tf_configs_dir();
    CHECK(cfg != NULL, "configs/ not found from the working directory");
    char data[256], path[320], set[320], dw[64], dbn[64];
    if (!cfg || tf_mkdtemp(dir, cap) != 0 || tf_write_cifar(dir, 16, data, sizeof data) != 0) return -1;
    lg_config_default(c);
    snprintf(path, sizeof path, "%s/cifar10_wgan_clip.yaml", cfg);
    CHECK_OK(lg_config_load_file(c, path));
    CHECK(c->model.d.bn && c->lipschitz.d.clip == 0.01f && !strcmp(c->model.d.arch, "cnn") &&
              !strcmp(c->loss, "wasserstein"),
          "%s: a cnn critic with batch norm, clipping 0.01, Wasserstein loss", path);
    snprintf(set, sizeof set, "data.path=%s", data);
    snprintf(dw, sizeof dw, "model.d.width=%d", d_width);
    snprintf(dbn, sizeof dbn, "model.d.bn=%s", bn ? "true" : "false");
    CHECK(c->optim.d.lr == 5e-5f, "%s: critic lr %g, want 5e-5", path, c->optim.d.lr);
    const char *sets[] = {set, dw, dbn, "model.g.width=4", "train.batch_d=4", "train.batch_g=4",
                          "train.n_dis_boost=0", "optim.d.lr=5e-4", "threads=1", NULL};
    for (int i = 0; sets[i]; i++) CHECK_OK(lg_config_set(c, sets[i]));
    return 0;
}

/* A short run of that config. Without batch norm the clipped critic's
 * weights saturate at +-0.01 and compound over the layers: at D width 24
 * its outputs pass 100 within 15 critic updates (QA saw 1e6 at the paper's
 * width 64 and lr); at widths below ~16 it is a constant instead. With
 * DCGAN's batch norm (|gamma|, |beta| <= 0.01 after clipping) every layer's
 * output is renormalized and they stay near the clip scale. Returns the largest |D| seen
 * over all steps (-1 if the run could not be set up); in *w the critic's
 * last Wasserstein estimate d_real - d_fake. */
static float wgan_clip_run(int bn, int d_width, int steps, float *w) {
    char dir[64];
    lg_config c;
    *w = 0;
    if (wgan_clip_cfg(&c, bn, d_width, dir, sizeof dir) != 0) return -1;
    lg_trainer *t = NULL;
    CHECK_OK(lg_trainer_create(&t, &c));
    float worst = -1;
    for (int i = 0; t && i < steps; i++) {
        lg_train_stats st;
        CHECK_OK(lg_trainer_step(t, &st));
        float a = fmaxf(fabsf(st.d_real), fabsf(st.d_fake));
        worst = isfinite(a) ? fmaxf(worst, a) : INFINITY;
        *w = st.d_real - st.d_fake;
        if (getenv("DBN_DEBUG"))
            fprintf(stderr, "  bn %d step %d: D(x) %g D(G(z)) %g\n", bn, i, st.d_real, st.d_fake);
    }
    if (t) {
        /* every critic parameter is clipped, BN's gamma and beta included,
         * as the reference clamps all of netD.parameters() */
        lg_model *d = lg_trainer_discriminator(t);
        int outside = 0;
        for (int i = 0; i < lg_model_num_named(d); i++) {
            const lg_named_tensor *nt = lg_model_named(d, i);
            for (int64_t e = 0; nt->is_param && e < nt->t->numel; e++)
                outside += !(fabsf(nt->t->data[e]) <= 0.01f);
        }
        CHECK(outside == 0, "bn %d: %d critic parameters outside [-0.01, 0.01]", bn, outside);
        const lg_named_tensor *g = lg_model_find(d, "bn3_0.weight");
        CHECK((g != NULL) == bn, "bn %d: bn3_0.weight %s", bn, g ? "present" : "absent");
    }
    lg_trainer_free(t);
    tf_rm_rf(dir);
    return worst;
}

static void test_wgan_clip_bounded(void) {
    float w = 0, worst = wgan_clip_run(1, 24, 6, &w); /* 30 critic updates */
    CHECK(worst >= 0 && worst < 100, "BN critic: max |D| %g over 6 steps, want < 100", worst);
    /* and it is not a constant: it separates real from fake */
    CHECK(w > 1e-4f, "BN critic: Wasserstein estimate %g, want > 1e-4", w);
    printf("  clipped BN critic, width 24: max |D| %.3g, W estimate %.3g\n", worst, w);
    /* the bound can fail: the same run without batch norm blows up */
    float w0 = 0, worst0 = wgan_clip_run(0, 24, 6, &w0);
    CHECK(worst0 >= 100, "no-BN critic: max |D| %g; the bound is not tested", worst0);
    printf("  clipped critic without BN:  max |D| %.3g\n", worst0);

    /* the sync-free step (step_dev.c, what a device backend runs) with the
     * BN critic: bitwise the classic step (the test hook runs it on the CPU) */
    char dir[64];
    lg_config c;
    if (wgan_clip_cfg(&c, 1, 4, dir, sizeof dir) != 0) return;
    lg_trainer *a = NULL, *b = NULL;
    CHECK_OK(lg_trainer_create(&a, &c));
    CHECK_OK(lg_trainer_create(&b, &c));
    if (a && b) {
        CHECK_OK(lg__trainer_set_step_mode(b, 1));
        for (int i = 0; i < 3; i++) {
            lg_train_stats sa, sb;
            CHECK_OK(lg_trainer_step(a, &sa));
            CHECK_OK(lg_trainer_step(b, &sb));
            CHECK(memcmp(&sa, &sb, sizeof sa) == 0, "step %d: classic D(x) %.9g, sync-free %.9g", i,
                  sa.d_real, sb.d_real);
            lg_model *ma[2] = {lg_trainer_generator(a), lg_trainer_discriminator(a)};
            lg_model *mb[2] = {lg_trainer_generator(b), lg_trainer_discriminator(b)};
            for (int k = 0; k < 2; k++)
                CHECK(!memcmp(lg_model_params(ma[k]), lg_model_params(mb[k]),
                              lg_model_num_params(ma[k]) * sizeof(float)) &&
                          !memcmp(lg_model_state(ma[k]), lg_model_state(mb[k]),
                                  lg_model_num_state(ma[k]) * sizeof(float)),
                      "step %d: %s parameters or BN statistics differ between the steps", i,
                      k ? "D" : "G");
        }
    }
    lg_trainer_free(a);
    lg_trainer_free(b);
    tf_rm_rf(dir);
}

/* ---- the forward pass against PyTorch ----
 * Each case builds a tiny model from a fixed seed and input and compares 8
 * output values with the numbers tools/model_reference.py printed after
 * loading the same weights (and the u/v vectors before the step) into the
 * same architecture written with torch.nn / torch.nn.functional, in train
 * mode (batch-norm batch statistics, one power iteration), and for the
 * cases without a Lipschitz method (eval = 1) then in eval mode (batch norm
 * on the running statistics the train forward updated). With
 * LG_MODELS_DUMP=DIR the test writes DIR/<case>.safetensors for that script.
 * A wrong layer order, activation, shortcut, pooling, padding, bias, BN
 * (placement, train/eval statistics) or normalization changes these
 * numbers. */

typedef struct ref_case {
    const char *name;
    lg_model_arch arch;
    lg_net_role role;
    int c, size, ch, depth, data_dim;
    lg_lip_kind lip;
    float toep_k;
    int bn;              /* spec.batchnorm */
    int eval;            /* 1: want_eval is checked */
    float want[8];       /* train-mode output at indices i * numel / 8 */
    float want_eval[8];  /* then the eval-mode output, same indices */
} ref_case;

static const ref_case REF_CASES[] = {
#include "test_models_ref.inc"
};

static void test_reference(void) {
    const char *dump = getenv("LG_MODELS_DUMP");
    for (size_t k = 0; k < sizeof REF_CASES / sizeof REF_CASES[0]; k++) {
        const ref_case *rc = &REF_CASES[k];
        lg_model_spec s;
        lg_model_spec_default(&s, rc->arch, rc->role);
        s.img_c = rc->c, s.img_size = rc->size, s.ch = rc->ch, s.depth = rc->depth;
        s.data_dim = rc->data_dim, s.z_dim = 8, s.lip = rc->lip, s.toep_k = rc->toep_k;
        s.batchnorm = rc->bn;
        if (rc->data_dim) s.z_dim = 2;
        lg_model *m;
        CHECK_OK(lg_model_create(&m, &s, NULL, 1234 + k));
        if (!m) continue;
        lg_ctx *ctx;
        CHECK_OK(lg_ctx_create(&ctx, NULL));
        lg_test_rng r = lg_test_rng_make(77 + k);
        lg_tensor *x = model_input(ctx, &r, m, 4);
        float *state0 = malloc(lg_model_num_state(m) * sizeof(float) + 4);
        memcpy(state0, lg_model_state(m), lg_model_num_state(m) * sizeof(float));
        lg_tensor *y = lg_model_forward(ctx, m, x, 1);
        CHECK_OK(lg_ctx_status(ctx));
        if (y) {
            float got[8];
            for (int i = 0; i < 8; i++) got[i] = y->data[(int64_t)i * y->numel / 8];
            char what[80];
            snprintf(what, sizeof what, "%s vs PyTorch", rc->name);
            lg_test_close(got, rc->want, 8, 1e-4, 1e-3, what);
        }
        lg_tensor *ye = y && rc->eval ? lg_model_forward(ctx, m, x, 0) : NULL;
        CHECK_OK(lg_ctx_status(ctx));
        if (ye) {
            float got[8];
            for (int i = 0; i < 8; i++) got[i] = ye->data[(int64_t)i * ye->numel / 8];
            char what[80];
            snprintf(what, sizeof what, "%s eval vs PyTorch", rc->name);
            lg_test_close(got, rc->want_eval, 8, 1e-4, 1e-3, what);
        }
        if (dump && y) {
            lg_st_writer *w;
            CHECK_OK(lg_st_writer_create(&w));
            char meta[256];
            snprintf(meta, sizeof meta, "%s %s %d %d %d %d %d %s %g", lg_model_arch_name(rc->arch),
                     rc->role ? "D" : "G", rc->c, rc->size, rc->ch, rc->depth, rc->data_dim,
                     lg_lip_kind_name(rc->lip), rc->toep_k);
            lg_st_writer_add_meta(w, "spec", meta);
            for (int i = 0; i < lg_model_num_named(m); i++) {
                const lg_named_tensor *t = lg_model_named(m, i);
                const float *data = t->is_param ? t->t->data : state0 + t->offset;
                CHECK_OK(lg_st_writer_add_f32(w, t->name, t->t->ndim, t->t->shape, data));
            }
            lg_st_writer_add_f32(w, "_input", x->ndim, x->shape, x->data);
            lg_st_writer_add_f32(w, "_output", y->ndim, y->shape, y->data);
            if (ye) lg_st_writer_add_f32(w, "_output_eval", ye->ndim, ye->shape, ye->data);
            char path[512];
            snprintf(path, sizeof path, "%s/%s.safetensors", dump, rc->name);
            CHECK_OK(lg_st_writer_write(w, path, 0));
            lg_st_writer_free(w);
        }
        free(state0);
        lg_ctx_free(ctx);
        lg_model_free(m);
    }
}

/* ---- a checkpoint from before l5 lost its bias ---- */

/* Copies checkpoint src to dst as a build with a biased l5 wrote it: an
 * extra D.l5.bias (1) after D.l5.weight and, if old_adam, D's Adam moments
 * 16 floats longer (the bias took one 16-float-aligned slot of D's
 * parameter buffer). */
static void write_old_layout(const char *src, const char *dst, int old_adam) {
    lg_st_file *f;
    CHECK_OK(lg_st_open(&f, src));
    if (!f) return;
    lg_st_writer *w;
    CHECK_OK(lg_st_writer_create(&w));
    for (size_t i = 0; i < lg_st_meta_count(f); i++) {
        const char *k, *v;
        lg_st_meta_at(f, i, &k, &v);
        CHECK_OK(lg_st_writer_add_meta(w, k, v));
    }
    size_t n = lg_st_count(f);
    void **bufs = calloc(n, sizeof *bufs);
    static const float zero_bias[1] = {0.0f};
    for (size_t i = 0; i < n; i++) {
        const lg_st_tensor *t = lg_st_at(f, i);
        if (t->dtype == LG_ST_I64) {
            bufs[i] = malloc((size_t)t->numel * sizeof(int64_t));
            CHECK_OK(lg_st_get_i64(f, t->name, -1, NULL, bufs[i]));
            CHECK_OK(lg_st_writer_add_i64(w, t->name, t->ndim, t->shape, bufs[i]));
            continue;
        }
        int grow = old_adam && (!strcmp(t->name, "D.adam.m") || !strcmp(t->name, "D.adam.v"));
        bufs[i] = calloc((size_t)t->numel + 16, sizeof(float));
        CHECK_OK(lg_st_get_f32(f, t->name, -1, NULL, bufs[i]));
        int64_t sh[8] = {0}; /* zeroed: sh[0] is read by grow even for ndim 0 */
        for (int d = 0; d < t->ndim; d++) sh[d] = t->shape[d];
        if (grow) sh[0] += 16;
        CHECK_OK(lg_st_writer_add_f32(w, t->name, t->ndim, sh, bufs[i]));
        if (!strcmp(t->name, "D.l5.weight"))
            CHECK_OK(lg_st_writer_add_f32(w, "D.l5.bias", 1, (int64_t[]){1}, zero_bias));
    }
    CHECK_OK(lg_st_writer_write(w, dst, 0));
    lg_st_writer_free(w);
    for (size_t i = 0; i < n; i++) free(bufs[i]);
    free(bufs);
    lg_st_close(f);
}

static void test_old_checkpoint_rejected(void) {
    char dir[64], cifar[256], path[300], old[300];
    CHECK(tf_mkdtemp(dir, sizeof dir) == 0, "mkdtemp");
    CHECK(tf_write_cifar(dir, 4, cifar, sizeof cifar) == 0, "tiny cifar");
    lg_config c;
    lg_config_default(&c);
    char dp[300];
    snprintf(dp, sizeof dp, "data.path=%s", cifar);
    const char *sets[] = {"data.format=cifar10", dp, "model.z_dim=4", "model.g.arch=resnet", "model.g.width=4",
                          "model.d.arch=resnet", "model.d.width=4", "lipschitz.d.sn=true", "train.batch_d=2",
                          "train.batch_g=2", "threads=1", NULL};
    for (int i = 0; sets[i]; i++) CHECK_OK(lg_config_set(&c, sets[i]));
    lg_trainer *t = NULL;
    CHECK_OK(lg_trainer_create(&t, &c));
    if (t) {
        snprintf(path, sizeof path, "%s/new.safetensors", dir);
        CHECK_OK(lg_trainer_save(t, path));
        CHECK_OK(lg_trainer_load(t, path));
        lg_model *d = lg_trainer_discriminator(t);
        float *before = malloc(lg_model_num_params(d) * sizeof(float));
        memcpy(before, lg_model_params(d), lg_model_num_params(d) * sizeof(float));
        for (int old_adam = 0; old_adam < 2; old_adam++) {
            snprintf(old, sizeof old, "%s/old%d.safetensors", dir, old_adam);
            write_old_layout(path, old, old_adam);
            lg_error_clear();
            lg_status st = lg_trainer_load(t, old);
            const char *msg = lg_error_msg();
            CHECK(st != LG_OK && strstr(msg, old) && !strchr(msg, '\n'),
                  "old layout %d: %s: one line naming the file: %s", old_adam, lg_status_str(st), msg);
            /* the message names the tensor the model no longer has, also
             * when D's Adam moments are longer too (a real old checkpoint):
             * the loader checks names before shapes */
            CHECK(st == LG_ERR_FORMAT && strstr(msg, "D.l5.bias") && strstr(msg, "not part of this model"),
                  "old layout %d: %s", old_adam, msg);
            CHECK(memcmp(before, lg_model_params(d), lg_model_num_params(d) * sizeof(float)) == 0,
                  "a rejected load changed D");
        }
        free(before);
        lg_trainer_free(t);
    }
    tf_rm_rf(dir);
}

/* ---- errors ---- */

static void test_errors(void) {
    lg_model_spec s;
    lg_model *m = NULL;
    lg_model_spec_default(&s, LG_ARCH_RESNET, LG_NET_G);
    s.img_size = 28;
    CHECK_STATUS(lg_model_create(&m, &s, NULL, 1), LG_ERR_INVALID_ARG);
    CHECK(m == NULL && strstr(lg_error_msg(), "img_size"), "message names img_size: %s", lg_error_msg());
    lg_model_spec_default(&s, LG_ARCH_RESNET, LG_NET_D);
    s.batchnorm = 1;
    CHECK_STATUS(lg_model_create(&m, &s, NULL, 1), LG_ERR_INVALID_ARG);
    lg_model_spec_default(&s, LG_ARCH_CNN, LG_NET_D);
    s.data_dim = 2;
    CHECK_STATUS(lg_model_create(&m, &s, NULL, 1), LG_ERR_INVALID_ARG);
    lg_model_spec_default(&s, LG_ARCH_MLP, LG_NET_D);
    s.lip = LG_LIP_SN;
    s.sn_iters = 0;
    CHECK_STATUS(lg_model_create(&m, &s, NULL, 1), LG_ERR_INVALID_ARG);
    /* every field an embedding program can get wrong: named in the message,
     * nothing built, and lg_model_spec_count refuses the same spec */
    struct { const char *field; lg_model_arch arch; lg_net_role role; int what; } bad[] = {
        {"arch", LG_ARCH_COUNT, LG_NET_G, 0}, {"role", LG_ARCH_CNN, (lg_net_role)7, 0},
        {"lip", LG_ARCH_CNN, LG_NET_D, 1},    {"ch", LG_ARCH_CNN, LG_NET_D, 2},
        {"z_dim", LG_ARCH_CNN, LG_NET_G, 3},  {"toep_k", LG_ARCH_CNN, LG_NET_D, 4},
        {"img_c", LG_ARCH_CNN, LG_NET_D, 5},  {"img_size", LG_ARCH_MLP, LG_NET_D, 6},
        {"depth", LG_ARCH_MLP, LG_NET_D, 7},  {"ch", LG_ARCH_RESNET, LG_NET_G, 8},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        lg_model_spec_default(&s, bad[i].arch < LG_ARCH_COUNT ? bad[i].arch : LG_ARCH_CNN,
                              bad[i].role == LG_NET_G ? LG_NET_G : LG_NET_D);
        s.arch = bad[i].arch;
        s.role = bad[i].role;
        switch (bad[i].what) {
        case 1: s.lip = (lg_lip_kind)LG_LIP_COUNT; break;
        case 2: s.ch = 0; break;
        case 3: s.z_dim = 0; break;
        case 4: s.lip = LG_LIP_TOEPLITZ, s.toep_k = 0; break;
        case 5: s.img_c = 5; break;
        case 6: s.img_size = 513; break;
        case 7: s.depth = 33; break;
        case 8: s.ch = 8193; break;
        }
        m = NULL;
        lg_error_clear();
        lg_status st = lg_model_create(&m, &s, NULL, 1);
        char want[32];
        snprintf(want, sizeof want, "model: %s", bad[i].field);
        CHECK(st == LG_ERR_INVALID_ARG && m == NULL && strstr(lg_error_msg(), want), "bad %s: %s, %s", bad[i].field,
              lg_status_str(st), lg_error_msg());
        size_t np = 0;
        CHECK(lg_model_spec_count(&s, &np) == LG_ERR_INVALID_ARG, "lg_model_spec_count accepts bad %s",
              bad[i].field);
        lg_model_free(m);
    }
    lg_model_arch a;
    lg_lip_kind k;
    CHECK_OK(lg_model_arch_parse("cnn", &a));
    CHECK(a == LG_ARCH_CNN, "parse cnn");
    CHECK_STATUS(lg_model_arch_parse("dcgan2", &a), LG_ERR_INVALID_ARG);
    CHECK_OK(lg_lip_kind_parse("toeplitz", &k));
    CHECK(k == LG_LIP_TOEPLITZ, "parse toeplitz");
    CHECK_STATUS(lg_lip_kind_parse("gp", &k), LG_ERR_INVALID_ARG);

    /* a wrong input shape is a sticky context error, not a crash */
    m = make(LG_ARCH_RESNET, LG_NET_D, 3, 16, 4, LG_LIP_SN, 1);
    lg_ctx *ctx;
    CHECK_OK(lg_ctx_create(&ctx, NULL));
    lg_tensor *x = lg_full(ctx, 4, (int64_t[]){2, 1, 16, 16}, 0.5f);
    CHECK(lg_model_forward(ctx, m, x, 1) == NULL, "wrong channels rejected");
    CHECK(lg_ctx_status(ctx) == LG_ERR_SHAPE, "sticky shape error");
    CHECK(lg_model_forward(ctx, m, NULL, 1) == NULL, "NULL input propagates");
    lg_ctx_free(ctx);
    lg_model_free(m);
}

int main(void) {
    /* the models here are tiny: OpenMP fork/join would dominate (and on a
     * loaded 2-core machine costs seconds); threading is the backend
     * tests' business */
    lg_cpu_set_threads(1);
    LG_TEST_RUN(test_shapes);
    LG_TEST_RUN(test_param_counts);
    LG_TEST_RUN(test_tables_and_init);
    LG_TEST_RUN(test_fd);
    LG_TEST_RUN(test_steady_state);
    LG_TEST_RUN(test_sigma);
    LG_TEST_RUN(test_flags_and_ema);
    LG_TEST_RUN(test_reference);
    LG_TEST_RUN(test_errors);
    LG_TEST_RUN(test_old_checkpoint_rejected);
    LG_TEST_RUN(test_cnn_d_bn);
    LG_TEST_RUN(test_wgan_clip_bounded);
    return lg_test_summary("test_models");
}
