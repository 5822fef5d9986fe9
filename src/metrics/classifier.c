/* The Fashion-MNIST classifier of lipgan/classifier.h: its network, weights
 * files, inference in batches, and training with Adam. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lipgan/autograd.h"
#include "lipgan/backend_cpu.h"
#include "lipgan/classifier.h"
#include "lipgan/ops.h"
#include "lipgan/optim.h"
#include "lipgan/rng.h"
#include "lipgan/safetensors.h"
#include "lipgan/version.h"

/* ---- the parameter table ---- */

enum { T_C1W, T_C1B, T_C2W, T_C2B, T_C3W, T_C3B, T_F1W, T_F1B, T_F2W, T_F2B, T_COUNT };

typedef struct tdesc {
    const char *name;
    int ndim;
    int64_t shape[4];
    int fan_in;  /* of the layer: the init bound is 1/sqrt(fan_in) */
} tdesc;

static const tdesc TABLE[T_COUNT] = {
    {"conv1.weight", 4, {32, 1, 3, 3}, 9},      {"conv1.bias", 1, {32}, 9},
    {"conv2.weight", 4, {64, 32, 3, 3}, 288},   {"conv2.bias", 1, {64}, 288},
    {"conv3.weight", 4, {64, 64, 3, 3}, 576},   {"conv3.bias", 1, {64}, 576},
    {"fc1.weight", 2, {128, 1024}, 1024},        {"fc1.bias", 1, {128}, 1024},
    {"fc2.weight", 2, {LG_CLS_CLASSES, 128}, 128}, {"fc2.bias", 1, {LG_CLS_CLASSES}, 128},
};

struct lg_classifier {
    const lg_backend *be;
    float *params;           /* (np) backend memory, tensors 64-byte aligned */
    float *grads;            /* (np) same layout */
    size_t np;
    size_t off[T_COUNT];     /* offset of each tensor in params */
    int64_t numel[T_COUNT];
    lg_tensor p[T_COUNT];    /* leaf tensors over params */
    lg_classifier_info info;
};

static int64_t numel_of(const tdesc *d) {
    int64_t n = 1;
    for (int i = 0; i < d->ndim; i++) n *= d->shape[i];
    return n;
}

static lg_status alloc_classifier(lg_classifier **out, const lg_backend *be) {
    *out = NULL;
    if (!be) be = lg_backend_cpu();
    lg_classifier *c = calloc(1, sizeof *c);
    if (!c) return lg_error_set(LG_ERR_NOMEM, "classifier: out of memory");
    c->be = be;
    size_t off = 0;
    for (int i = 0; i < T_COUNT; i++) {
        c->off[i] = off;
        c->numel[i] = numel_of(&TABLE[i]);
        off += ((size_t)c->numel[i] + 15) / 16 * 16;  /* 64-byte aligned starts */
    }
    c->np = off;
    c->params = lg_buffer_alloc(be, 2 * c->np);  /* params then grads: one allocation */
    if (!c->params) {
        free(c);
        return LG_ERR_NOMEM;
    }
    c->grads = c->params + c->np;
    for (int i = 0; i < T_COUNT; i++) {
        lg_tensor_init(&c->p[i], c->params + c->off[i], TABLE[i].ndim, TABLE[i].shape);
        c->p[i].requires_grad = 1;
        c->p[i].name = TABLE[i].name;
    }
    *out = c;
    return LG_OK;
}

void lg_classifier_free(lg_classifier *c) {
    if (!c) return;
    lg_buffer_free(c->be, c->params);
    free(c);
}

lg_status lg_classifier_create(lg_classifier **out, const lg_backend *be, uint64_t seed) {
    LG_TRY(alloc_classifier(out, be));
    lg_classifier *c = *out;
    lg_rng r;
    lg_rng_init(&r, seed, LG_RNG_STREAM_INIT);
    float *h = malloc(c->np * sizeof(float)); /* (np) host staging, gaps zero */
    if (!h) {
        lg_classifier_free(c);
        *out = NULL;
        return lg_error_set(LG_ERR_NOMEM, "classifier: out of memory");
    }
    memset(h, 0, c->np * sizeof(float));
    for (int i = 0; i < T_COUNT; i++) {
        float b = 1.0f / sqrtf((float)TABLE[i].fan_in);
        lg_rng_fill_uniform(&r, h + c->off[i], (size_t)c->numel[i], -b, b);
    }
    c->be->upload(c->params, h, c->np);
    free(h);
    c->info.seed = seed;
    return LG_OK;
}

const lg_classifier_info *lg_classifier_get_info(const lg_classifier *c) { return &c->info; }
void lg_classifier_set_info(lg_classifier *c, const lg_classifier_info *info) { c->info = *info; }

int64_t lg_classifier_num_params(const lg_classifier *c) {
    int64_t n = 0;
    for (int i = 0; i < T_COUNT; i++) n += c->numel[i];
    return n;
}

/* ---- files ---- */

lg_status lg_classifier_save(const lg_classifier *c, const char *path) {
    float *h = malloc(c->np * sizeof(float)); /* (np) host copy */
    if (!h) return lg_error_set(LG_ERR_NOMEM, "classifier: out of memory");
    c->be->download(h, c->params, c->np);
    lg_st_writer *w;
    lg_status s = lg_st_writer_create(&w);
    if (s != LG_OK) {
        free(h);
        return s;
    }
    char buf[64];
    s = lg_st_writer_add_meta(w, "format", LG_CLS_FORMAT);
    if (s == LG_OK) s = lg_st_writer_add_meta(w, "arch", LG_CLS_ARCH);
    snprintf(buf, sizeof buf, "%.4f", c->info.test_accuracy);
    if (s == LG_OK) s = lg_st_writer_add_meta(w, "test_accuracy", buf);
    snprintf(buf, sizeof buf, "%lld", (long long)c->info.test_n);
    if (s == LG_OK) s = lg_st_writer_add_meta(w, "test_n", buf);
    snprintf(buf, sizeof buf, "%d", c->info.epochs);
    if (s == LG_OK) s = lg_st_writer_add_meta(w, "epochs", buf);
    snprintf(buf, sizeof buf, "%llu", (unsigned long long)c->info.seed);
    if (s == LG_OK) s = lg_st_writer_add_meta(w, "seed", buf);
    snprintf(buf, sizeof buf, "%d", c->info.threads);
    if (s == LG_OK) s = lg_st_writer_add_meta(w, "threads", buf);
    if (s == LG_OK) s = lg_st_writer_add_meta(w, "lipgan_version", lg_version());
    if (s == LG_OK && c->info.command[0]) s = lg_st_writer_add_meta(w, "command", c->info.command);
    for (int i = 0; s == LG_OK && i < T_COUNT; i++)
        s = lg_st_writer_add_f32(w, TABLE[i].name, TABLE[i].ndim, TABLE[i].shape, h + c->off[i]);
    if (s == LG_OK) s = lg_st_writer_write(w, path, 1);
    lg_st_writer_free(w);
    free(h);
    return s;
}

static void read_info(lg_classifier_info *in, const lg_st_file *f) {
    const char *v;
    if ((v = lg_st_meta(f, "test_accuracy"))) in->test_accuracy = strtod(v, NULL);
    if ((v = lg_st_meta(f, "test_n"))) in->test_n = strtoll(v, NULL, 10);
    if ((v = lg_st_meta(f, "epochs"))) in->epochs = (int)strtol(v, NULL, 10);
    if ((v = lg_st_meta(f, "seed"))) in->seed = strtoull(v, NULL, 10);
    if ((v = lg_st_meta(f, "threads"))) in->threads = (int)strtol(v, NULL, 10);
    if ((v = lg_st_meta(f, "command"))) snprintf(in->command, sizeof in->command, "%s", v);
}

lg_status lg_classifier_load(lg_classifier **out, const char *path, const lg_backend *be) {
    *out = NULL;
    lg_st_file *f;
    lg_status s = lg_st_open(&f, path);
    if (s == LG_ERR_NOT_FOUND)
        return lg_error_set(s,
                            "classifier weights %s: no such file; use the shipped %s (run from the repository "
                            "root) or train one: lipgan train-classifier --data /usr/share/datasets/fashion-mnist "
                            "--out %s",
                            path, LG_CLS_DEFAULT_PATH, path);
    if (s != LG_OK) return s;
    /* the metadata strings live in f: the messages are made before closing it */
    const char *fmt = lg_st_meta(f, "format");
    if (!fmt || strcmp(fmt, LG_CLS_FORMAT) != 0) {
        s = lg_error_set(LG_ERR_FORMAT, "%s: not a lipgan classifier (metadata format is '%s', want %s)",
                         path, fmt ? fmt : "absent", LG_CLS_FORMAT);
        lg_st_close(f);
        return s;
    }
    const char *arch = lg_st_meta(f, "arch");
    if (!arch || strcmp(arch, LG_CLS_ARCH) != 0) {
        s = lg_error_set(LG_ERR_FORMAT, "%s: classifier architecture '%s' is not this lipgan's '%s'", path,
                         arch ? arch : "absent", LG_CLS_ARCH);
        lg_st_close(f);
        return s;
    }
    lg_classifier *c;
    s = alloc_classifier(&c, be);
    if (s != LG_OK) {
        lg_st_close(f);
        return s;
    }
    float *h = calloc(c->np, sizeof(float)); /* (np) host staging */
    if (!h) s = lg_error_set(LG_ERR_NOMEM, "classifier: out of memory");
    for (int i = 0; s == LG_OK && i < T_COUNT; i++) {
        s = lg_st_get_f32(f, TABLE[i].name, TABLE[i].ndim, TABLE[i].shape, h + c->off[i]);
        if (s != LG_OK) {
            /* name the file: lg_st_get_f32's message names the tensor */
            char msg[512];
            snprintf(msg, sizeof msg, "%s", lg_error_msg());
            s = lg_error_set(s, "%s: %s", path, msg);
        }
        for (int64_t j = 0; s == LG_OK && j < c->numel[i]; j++)
            if (!isfinite(h[c->off[i] + (size_t)j]))
                s = lg_error_set(LG_ERR_NONFINITE, "%s: %s[%lld] is not finite", path, TABLE[i].name, (long long)j);
    }
    if (s == LG_OK) {
        c->be->upload(c->params, h, c->np);
        read_info(&c->info, f);
    }
    free(h);
    lg_st_close(f);
    if (s != LG_OK) {
        lg_classifier_free(c);
        return s;
    }
    *out = c;
    return LG_OK;
}

/* ---- the network ---- */

lg_tensor *lg_classifier_forward(lg_ctx *ctx, lg_classifier *c, lg_tensor *x, lg_tensor **feat) {
    if (feat) *feat = NULL;
    if (!x) return NULL;
    if (x->ndim != 4 || x->shape[1] != 1 || x->shape[2] != LG_CLS_SIZE || x->shape[3] != LG_CLS_SIZE) {
        char s[64];
        return lg_ctx_fail(ctx, LG_ERR_SHAPE, "classifier: input must be (N,1,32,32), got %s",
                           lg_shape_str(x, s, sizeof s));
    }
    lg_tensor *p = c->p;
    lg_tensor *h = lg_relu(ctx, lg_conv2d(ctx, x, &p[T_C1W], &p[T_C1B], 2, 1));  /* (N,32,16,16) */
    h = lg_relu(ctx, lg_conv2d(ctx, h, &p[T_C2W], &p[T_C2B], 2, 1));            /* (N,64,8,8) */
    h = lg_relu(ctx, lg_conv2d(ctx, h, &p[T_C3W], &p[T_C3B], 2, 1));            /* (N,64,4,4) */
    h = lg_relu(ctx, lg_linear(ctx, lg_flatten(ctx, h), &p[T_F1W], &p[T_F1B])); /* (N,128) */
    if (feat) *feat = h;
    return lg_linear(ctx, h, &p[T_F2W], &p[T_F2B]);                             /* (N,10) */
}

/* Copies n images (N,1,h,w), h = w = 28 or 32, into dst (N,1,32,32),
 * padding 28 -> 32 with -1 as lg_data_load_idx does. */
static void to32(float *dst, const float *src, int64_t n, int h) {
    if (h == LG_CLS_SIZE) {
        memcpy(dst, src, (size_t)n * LG_CLS_SIZE * LG_CLS_SIZE * sizeof(float));
        return;
    }
    int p = (LG_CLS_SIZE - h) / 2;
    for (int64_t i = 0; i < n; i++) {
        float *d = dst + i * LG_CLS_SIZE * LG_CLS_SIZE;
        for (int k = 0; k < LG_CLS_SIZE * LG_CLS_SIZE; k++) d[k] = -1.0f;
        for (int y = 0; y < h; y++) memcpy(d + (y + p) * LG_CLS_SIZE + p, src + (i * h + y) * h, (size_t)h * sizeof(float));
    }
}

static lg_status check_shape(const char *what, int ch, int h, int w) {
    if (ch != 1 || h != w || (h != 28 && h != 32))
        return lg_error_set(LG_ERR_INVALID_ARG,
                            "%s: the Fashion-MNIST classifier takes 1x28x28 or 1x32x32 images, got %dx%dx%d", what, ch,
                            h, w);
    return LG_OK;
}

#define RUN_BATCH 256

lg_status lg_classifier_run(lg_classifier *c, const float *x, int64_t n, int ch, int h, int w, float *feat,
                            float *logits) {
    LG_TRY(check_shape("classifier", ch, h, w));
    if (n < 1) return lg_error_set(LG_ERR_INVALID_ARG, "classifier: %lld images", (long long)n);
    for (int64_t i = 0; i < n * h * w; i++)
        if (!isfinite(x[i]))
            return lg_error_set(LG_ERR_NONFINITE, "classifier: pixel %lld of image %lld is not finite",
                                (long long)(i % (h * w)), (long long)(i / (h * w)));
    const int64_t S = LG_CLS_SIZE * LG_CLS_SIZE;
    float *xb = malloc((size_t)RUN_BATCH * S * sizeof(float)); /* (B,1,32,32) */
    if (!xb) return lg_error_set(LG_ERR_NOMEM, "classifier: out of memory");
    lg_ctx *ctx;
    lg_status s = lg_ctx_create(&ctx, c->be);
    if (s != LG_OK) {
        free(xb);
        return s;
    }
    lg_ctx_set_grad_enabled(ctx, 0);
    for (int64_t i = 0; s == LG_OK && i < n; i += RUN_BATCH) {
        int64_t b = n - i < RUN_BATCH ? n - i : RUN_BATCH;
        lg_ctx_reset(ctx);
        to32(xb, x + i * h * w, b, h);
        lg_tensor *xt = lg_from_host(ctx, xb, 4, (int64_t[]){b, 1, LG_CLS_SIZE, LG_CLS_SIZE});
        lg_tensor *ft = NULL;
        lg_tensor *lt = lg_classifier_forward(ctx, c, xt, &ft);
        s = lg_ctx_status(ctx);
        if (s == LG_OK && feat) s = lg_to_host(ctx, ft, feat + i * LG_CLS_FEAT_DIM);
        if (s == LG_OK && logits) s = lg_to_host(ctx, lt, logits + i * LG_CLS_CLASSES);
    }
    lg_ctx_free(ctx);
    free(xb);
    return s;
}

lg_status lg_classifier_accuracy(lg_classifier *c, const lg_dataset *d, int64_t n, double *acc) {
    *acc = 0.0;
    if (!d->y || d->num_classes != LG_CLS_CLASSES)
        return lg_error_set(LG_ERR_INVALID_ARG, "classifier accuracy: the data set needs labels of 10 classes");
    LG_TRY(check_shape("classifier accuracy", d->c, d->h, d->w));
    if (n <= 0 || n > d->n) n = d->n;
    float *logits = malloc((size_t)n * LG_CLS_CLASSES * sizeof(float)); /* (N,10) */
    if (!logits) return lg_error_set(LG_ERR_NOMEM, "classifier: out of memory");
    lg_status s = lg_classifier_run(c, d->x, n, d->c, d->h, d->w, NULL, logits);
    int64_t right = 0;
    for (int64_t i = 0; s == LG_OK && i < n; i++) {
        int best = 0;
        for (int k = 1; k < LG_CLS_CLASSES; k++)
            if (logits[i * LG_CLS_CLASSES + k] > logits[i * LG_CLS_CLASSES + best]) best = k;
        right += best == d->y[i];
    }
    free(logits);
    if (s == LG_OK) *acc = (double)right / (double)n;
    return s;
}

/* ---- training ---- */

void lg_classifier_train_opts_default(lg_classifier_train_opts *o) {
    memset(o, 0, sizeof *o);
    o->epochs = 10;
    o->batch = 128;
    o->lr = 1e-3f;
    o->seed = 1;
}

lg_status lg_classifier_train(lg_classifier *c, const lg_dataset *train, const lg_classifier_train_opts *o) {
    if (!train->y || train->num_classes != LG_CLS_CLASSES)
        return lg_error_set(LG_ERR_INVALID_ARG, "train-classifier: the training set needs labels of 10 classes");
    LG_TRY(check_shape("train-classifier", train->c, train->h, train->w));
    if (o->epochs < 1 || o->batch < 1 || !(o->lr > 0.0f))
        return lg_error_set(LG_ERR_INVALID_ARG, "train-classifier: epochs %d, batch %d, lr %g: each must be > 0",
                            o->epochs, o->batch, o->lr);
    const int B = o->batch, H = train->h;
    const int64_t steps_per_epoch = (train->n + B - 1) / B;
    int64_t total = steps_per_epoch * o->epochs;
    if (o->max_steps > 0 && o->max_steps < total) total = o->max_steps;

    lg_data_sampler smp;
    LG_TRY(lg_data_sampler_init(&smp, train, o->seed));
    lg_adam opt;
    lg_status s = lg_adam_init(&opt, c->be, c->np, 0.9f, 0.999f, 1e-8f);
    lg_ctx *ctx = NULL;
    if (s == LG_OK) s = lg_ctx_create(&ctx, c->be);
    float *xr = malloc((size_t)B * H * H * sizeof(float));                      /* (B,1,H,W) */
    float *xb = malloc((size_t)B * LG_CLS_SIZE * LG_CLS_SIZE * sizeof(float)); /* (B,1,32,32) */
    int32_t *yb = malloc((size_t)B * sizeof(int32_t));                          /* (B) */
    if (s == LG_OK && (!xr || !xb || !yb)) s = lg_error_set(LG_ERR_NOMEM, "train-classifier: out of memory");
    lg_tensor *wrt[T_COUNT], *g[T_COUNT];
    for (int i = 0; i < T_COUNT; i++) wrt[i] = &c->p[i];
    double loss_sum = 0.0;
    int64_t loss_n = 0;
    for (int64_t step = 0; s == LG_OK && step < total; step++) {
        s = lg_data_next_batch(&smp, B, xr, yb);
        if (s != LG_OK) break;
        to32(xb, xr, B, H);
        lg_ctx_reset(ctx);
        lg_tensor *xt = lg_from_host(ctx, xb, 4, (int64_t[]){B, 1, LG_CLS_SIZE, LG_CLS_SIZE});
        lg_tensor *loss = lg_cross_entropy(ctx, lg_classifier_forward(ctx, c, xt, NULL), yb);
        s = lg_ctx_status(ctx);
        if (s != LG_OK) break;
        s = lg_grad(ctx, loss, NULL, T_COUNT, wrt, g, 0);
        if (s != LG_OK) break;
        float lv = lg_item(ctx, loss);
        if (!isfinite(lv)) {
            s = lg_error_set(LG_ERR_NONFINITE, "train-classifier: loss is %g at step %lld; lower --lr", lv,
                             (long long)step);
            break;
        }
        for (int i = 0; i < T_COUNT; i++) c->be->copy(c->grads + c->off[i], g[i]->data, (size_t)c->numel[i]);
        lg_adam_step(&opt, c->params, c->grads, lg_lr_linear(o->lr, step, total));
        if (o->on_step) o->on_step(step, lv, o->user);
        loss_sum += lv;
        loss_n++;
        int end_epoch = (step + 1) % steps_per_epoch == 0 || step + 1 == total;
        if (o->progress && ((step + 1) % 100 == 0 || end_epoch)) {
            fprintf(o->progress, "epoch %lld step %lld/%lld: loss %.4f\n", (long long)(step / steps_per_epoch + 1),
                    (long long)(step + 1), (long long)total, loss_sum / (double)loss_n);
            loss_sum = 0.0;
            loss_n = 0;
        }
        if (end_epoch && o->test) {
            double acc;
            s = lg_classifier_accuracy(c, o->test, 0, &acc);
            if (s == LG_OK && o->progress)
                fprintf(o->progress, "epoch %lld: test accuracy %.4f (%lld images)\n",
                        (long long)(step / steps_per_epoch + 1), acc, (long long)o->test->n);
        }
    }
    free(xr);
    free(xb);
    free(yb);
    lg_ctx_free(ctx);
    lg_adam_free(&opt);
    lg_data_sampler_free(&smp);
    if (s == LG_OK) {
        c->info.epochs = (int)((total + steps_per_epoch - 1) / steps_per_epoch);
        c->info.threads = lg_cpu_threads();
    }
    return s;
}
