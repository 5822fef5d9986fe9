/* The sync-free training step, for device backends.
 *
 * The classic step (trainer.c) reads the loss and a finiteness flag back
 * to the host after every update to decide whether to apply it: on a GPU
 * that is a full pipeline drain per update, and it makes the update
 * impossible to capture as a CUDA graph. Here the decision stays on the
 * device: the flag is computed into backend memory, the optimizer's step
 * counter and learning rate live there too (lg_adam_step_flagged), a skipped
 * update restores the networks' state with cond_copy, and the losses go to
 * slots that the host reads once, at the end of the step. The numbers are
 * the classic step's, bit for bit (test_train_step_dev.c checks that on the
 * CPU backend).
 *
 * Mode 2 (CUDA, cuda.graph) additionally records each kind of update once
 * as a CUDA graph and replays it: inputs are uploaded to fixed buffers
 * (in_x, in_z, in_e) before each launch, and the step arena hands out the
 * same addresses as long as it does not grow, which lg_ctx_sys_allocs
 * tells; if it did grow (a sampling call with a larger batch, say), the
 * graphs are dropped and recorded again. A capture is only tried after a
 * step in which the arena did not grow (so nothing allocates while
 * recording); a capture that fails runs the update eagerly, and three
 * failures switch graphs off (lg_trainer_device_info says why).
 *
 * Differences from the classic step, by design: the host learns at the end
 * of the step that the run of skipped updates reached train.max_nonfinite
 * (the classic step stops at that update). The updates after it are still
 * computed, but flag_track clears their flag, so they are neither applied
 * nor counted and the networks end as the classic step leaves them.
 * SR-GAN's SVD needs host decisions between
 * updates and dist: mpi averages gradients in host memory: both keep the
 * classic step (gradient clamping decides on the
 * device, lg_gclamp_apply). The EMA of G is
 * updated on the device after G's update and undone by the flag; the G
 * graph is recorded again at ema.start, where copying turns into averaging. */
#include <stdio.h>
#include <string.h>

#include "lipgan/autograd.h"
#include "lipgan/ops.h"
#include "train/train_internal.h"
#ifdef LG_HAVE_CUDA
#include "lipgan/cuda.h"
#endif

/* The optimizers' step counters travel as floats: exact below 2^24. */
#define LG_TS_MAX_T ((int64_t)1 << 24)

/* Why this config keeps the classic step on a device backend, or NULL. */
static const char *needs_classic(const lg_trainer *t) {
    const lg_config *c = &t->cfg;
    if (c->lipschitz.d.sr_gamma > 0 || c->lipschitz.g.sr_gamma > 0)
        return "SR-GAN's SVD decides on the host between updates";
    /* MPI averages the gradients in host memory between backward and update */
    if (t->world > 1) return "dist: mpi averages the gradients on the host";
    return NULL;
}

/* Floats of gradient clamping's vectors (u0, u1, v0, v1) of one network. */
static size_t gc_floats(const lg_net_extra *x) {
    size_t n = 0;
    for (int i = 0; x->gc && i < x->nl; i++) n += 2 * (size_t)(x->gc[i].rows + x->gc[i].cols);
    return n;
}

static void drop_graphs(lg_train_dev *dv) {
#ifdef LG_HAVE_CUDA
    for (int i = 0; i < 2; i++) lg_cuda_graph_free((lg_cuda_graph *)dv->graph[i]);
#endif
    dv->graph[0] = dv->graph[1] = NULL;
}

static lg_status alloc_buffers(lg_trainer *t) {
    lg_train_dev *dv = &t->dev;
    if (dv->s) return LG_OK;
    const lg_config *c = &t->cfg;
    size_t bd = (size_t)c->train.batch_d, bg = (size_t)c->train.batch_g;
    size_t bmax = bd > bg ? bd : bg;
    dv->s = lg_buffer_alloc(t->be, LG_TS_COUNT);
    dv->in_x = lg_buffer_alloc(t->be, bd * (size_t)t->sample_size);
    dv->in_z = lg_buffer_alloc(t->be, bmax * (size_t)c->model.z_dim);
    dv->in_e = lg_buffer_alloc(t->be, bd);
    if (t->ema)
        dv->ema_bak = lg_buffer_alloc(t->be, lg_model_num_params(t->ema) + lg_model_num_state(t->ema));
    size_t ngc = gc_floats(&t->xd) + gc_floats(&t->xg);
    if (ngc) dv->gc_bak = lg_buffer_alloc(t->be, ngc);
    if (!dv->s || !dv->in_x || !dv->in_z || !dv->in_e || (t->ema && !dv->ema_bak) ||
        (ngc && !dv->gc_bak))
        return lg_error_set(LG_ERR_NOMEM, "trainer: out of memory for the step buffers");
    return LG_OK;
}

lg_status lg__train_dev_init(lg_trainer *t) {
    lg_train_dev *dv = &t->dev;
    memset(dv, 0, sizeof *dv);
    if (!t->be->is_device) {
        snprintf(dv->info, sizeof dv->info, "%s: classic step", t->be->name);
        return LG_OK;
    }
    const char *why = needs_classic(t);
    if (why) {
        snprintf(dv->info, sizeof dv->info, "%s: classic step (%s)", t->be->name, why);
        return LG_OK;
    }
    LG_TRY(alloc_buffers(t));
    dv->mode = 1;
#ifdef LG_HAVE_CUDA
    if (t->cfg.cuda.graph) dv->mode = 2;
#endif
    snprintf(dv->info, sizeof dv->info, "%s: sync-free step%s", t->be->name,
             dv->mode == 2 ? ", CUDA graphs after the warm-up steps" : "");
    return LG_OK;
}

void lg__train_dev_free(lg_trainer *t) {
    lg_train_dev *dv = &t->dev;
    drop_graphs(dv);
    if (dv->s) lg_buffer_free(t->be, dv->s);
    if (dv->in_x) lg_buffer_free(t->be, dv->in_x);
    if (dv->in_z) lg_buffer_free(t->be, dv->in_z);
    if (dv->in_e) lg_buffer_free(t->be, dv->in_e);
    if (dv->ema_bak) lg_buffer_free(t->be, dv->ema_bak);
    if (dv->gc_bak) lg_buffer_free(t->be, dv->gc_bak);
    memset(dv, 0, sizeof *dv);
}

lg_status lg__trainer_set_step_mode(lg_trainer *t, int mode) {
    if (mode != 0 && mode != 1)
        return lg_error_set(LG_ERR_INVALID_ARG, "trainer: step mode %d is not 0 or 1", mode);
    const char *why = needs_classic(t);
    if (mode == 1 && why)
        return lg_error_set(LG_ERR_UNSUPPORTED, "trainer: this config needs the classic step (%s)",
                            why);
    if (mode == 1) LG_TRY(alloc_buffers(t));
    drop_graphs(&t->dev);
    t->dev.mode = mode;
    return LG_OK;
}

int lg__train_dev_keep(lg_trainer *t) {
    if (!t->dev.mode) return 0;
    if (t->opt_d.t < LG_TS_MAX_T - 1 - lg__train_n_dis(t) && t->opt_g.t < LG_TS_MAX_T - 2) return 1;
    /* the device's float counters would round: the classic step from here on */
    drop_graphs(&t->dev);
    t->dev.mode = 0;
    snprintf(t->dev.info, sizeof t->dev.info,
             "%s: classic step (over 2^24 updates: the sync-free step counts them in a float)",
             t->be->name);
    return 0;
}

/* slot = mean(x), without a graph */
static void mean_to(lg_trainer *t, float *slot, lg_tensor *x) {
    int old = lg_ctx_set_grad_enabled(t->ctx, 0);
    lg_tensor *m = lg_mean(t->ctx, x);
    lg_ctx_set_grad_enabled(t->ctx, old);
    if (m) t->be->copy(slot, m->data, 1);
}

/* Spectral gradient clamping of every clamped layer's gradient, its
 * vectors put back when the update is skipped (the classic step does not
 * clamp then). The gradient itself needs no restore: it is not used again. */
static void gclamp_flagged(lg_trainer *t, lg_model *m, const lg_net_extra *x) {
    const lg_backend *be = t->be;
    const float *flag = t->dev.s + LG_TS_FLAG;
    float *bak = t->dev.gc_bak + (x == &t->xg ? gc_floats(&t->xd) : 0);
    float *g = lg_model_grads(m);
    for (int i = 0; i < x->nl; i++) {
        lg_gclamp_state *st = &x->gc[i];
        size_t r = (size_t)st->rows, c = (size_t)st->cols;
        float *vec[4] = {st->u0, st->u1, st->v0, st->v1};
        size_t len[4] = {r, r, c, c};
        float *b = bak;
        for (int k = 0; k < 4; b += len[k], k++) be->copy(b, vec[k], len[k]);
        lg_gclamp_apply(st, g + lg_model_layer(m, i)->w_offset); /* fails only if uninitialized */
        b = bak;
        for (int k = 0; k < 4; b += len[k], k++) be->cond_copy(vec[k], b, len[k], flag);
        bak = b;
    }
}

/* The end of an update, all in backend memory: the flag (loss and
 * gradients finite), the skip counters, state restore on skip, gradient
 * clamping, Adam or RMSProp, and clipping (idempotent, so it needs no flag). */
static void update_flagged(lg_trainer *t, lg_model *m, lg_adam *opt, const lg_net_extra *x,
                           const lg_tensor *loss, int slot_lr, int slot_t) {
    const lg_backend *be = t->be;
    float *s = t->dev.s;
    float *p = lg_model_params(m), *g = lg_model_grads(m);
    size_t n = lg_model_num_params(m);
    static const int64_t one[4] = {1, 1, 1, 1};
    be->all_finite(s + LG_TS_FLAG, g, n);
    be->all_finite(s + LG_TS_FLAG2, loss->data, 1);
    be->binary(LG_B_MUL, s + LG_TS_FLAG, one, s + LG_TS_FLAG, one, s + LG_TS_FLAG2, one);
    be->flag_track(s + LG_TS_RUN, s + LG_TS_FLAG);
    size_t ng = lg_model_num_state(t->g);
    be->cond_copy(lg_model_state(t->g), t->state_bak, ng, s + LG_TS_FLAG);
    be->cond_copy(lg_model_state(t->d), t->state_bak + ng, lg_model_num_state(t->d),
                  s + LG_TS_FLAG);
    if (x->gc) gclamp_flagged(t, m, x);
    lg_adam_step_flagged(opt, p, g, s + slot_lr, s + slot_t, s + LG_TS_FLAG, s + LG_TS_HP);
    if (x->lip->clip > 0) lg_clip_weights(be, p, n, x->lip->clip);
}

/* The EMA of G after G's update (a copy before ema.start), undone when
 * that update was skipped, as the classic step leaves it alone then. */
static lg_status ema_flagged(lg_trainer *t) {
    const lg_backend *be = t->be;
    lg_model *e = t->ema;
    float *bak = t->dev.ema_bak, *flag = t->dev.s + LG_TS_FLAG;
    size_t np = lg_model_num_params(e), ns = lg_model_num_state(e);
    be->copy(bak, lg_model_params(e), np);
    be->copy(bak + np, lg_model_state(e), ns);
    if (t->step < t->cfg.ema.start) LG_TRY(lg_model_copy(e, t->g));
    else LG_TRY(lg_model_ema_update(e, t->g, t->cfg.ema.decay));
    be->cond_copy(lg_model_params(e), bak, np, flag);
    be->cond_copy(lg_model_state(e), bak + np, ns, flag);
    return LG_OK;
}

/* One D update from the uploaded inputs: queued work only. */
static lg_status body_d(lg_trainer *t) {
    lg_ctx *ctx = t->ctx;
    lg_train_dev *dv = &t->dev;
    lg_ctx_reset(ctx);
    lg__train_states_backup(t);
    lg_tensor *x, *z, *eps, *dr, *df, *gp;
    lg__train_d_inputs(t, 1, &x, &z, &eps);
    lg_tensor *loss = lg__train_d_loss(t, x, z, eps, &dr, &df, &gp);
    LG_TRY(lg__train_backprop(t, loss, 0));
    t->be->copy(dv->s + LG_TS_LOSS_D, loss->data, 1);
    mean_to(t, dv->s + LG_TS_DREAL, dr);
    mean_to(t, dv->s + LG_TS_DFAKE, df);
    if (gp) t->be->copy(dv->s + LG_TS_GP, gp->data, 1);
    else t->be->fill(dv->s + LG_TS_GP, 0.0f, 1);
    LG_TRY(lg_ctx_status(ctx));
    update_flagged(t, t->d, &t->opt_d, &t->xd, loss, LG_TS_LR_D, LG_TS_T_D);
    return LG_OK;
}

/* One G update from the uploaded noise: queued work only. */
static lg_status body_g(lg_trainer *t) {
    lg_ctx *ctx = t->ctx;
    lg_train_dev *dv = &t->dev;
    lg_ctx_reset(ctx);
    lg__train_states_backup(t);
    lg_tensor *loss = lg__train_g_loss(t, lg__train_g_input(t, 1));
    LG_TRY(lg__train_backprop(t, loss, 1));
    t->be->copy(dv->s + LG_TS_LOSS_G, loss->data, 1);
    LG_TRY(lg_ctx_status(ctx));
    update_flagged(t, t->g, &t->opt_g, &t->xg, loss, LG_TS_LR_G, LG_TS_T_G);
    return t->ema ? ema_flagged(t) : LG_OK;
}

/* Runs update `which` (0 D, 1 G): replays its graph, records it, or
 * queues it eagerly. */
static lg_status run_update(lg_trainer *t, int which) {
    lg_status (*body)(lg_trainer *) = which ? body_g : body_d;
#ifdef LG_HAVE_CUDA
    lg_train_dev *dv = &t->dev;
    if (dv->mode == 2) {
        if ((dv->graph[0] || dv->graph[1]) && lg_ctx_sys_allocs(t->ctx) != dv->graph_allocs)
            drop_graphs(dv); /* the arena moved: their addresses are stale */
        if (!dv->graph[which] && dv->calm >= 1) {
            lg_ctx_reset(t->ctx); /* any folding of the arena happens here, not in the capture */
            size_t a0 = lg_ctx_sys_allocs(t->ctx);
            if ((dv->graph[0] || dv->graph[1]) && a0 != dv->graph_allocs) drop_graphs(dv);
            lg_status s = lg_cuda_capture_begin();
            lg_cuda_graph *gr = NULL;
            if (s == LG_OK) {
                lg_status sb = body(t);
                char why[256];
                snprintf(why, sizeof why, "%s", sb != LG_OK ? lg_error_msg() : "");
                s = lg_cuda_capture_end(&gr);
                if (s == LG_OK && sb != LG_OK) s = lg_error_set(sb, "%s", why);
                if (s == LG_OK && lg_ctx_sys_allocs(t->ctx) != a0)
                    s = lg_error_set(LG_ERR_BACKEND, "the step arena grew while recording");
            }
            if (s == LG_OK) {
                dv->graph[which] = gr;
                dv->graph_allocs = a0;
                size_t nd = lg_cuda_graph_nodes((lg_cuda_graph *)dv->graph[0]);
                size_t ng = lg_cuda_graph_nodes((lg_cuda_graph *)dv->graph[1]);
                snprintf(dv->info, sizeof dv->info,
                         "%s: sync-free step, CUDA graphs (D update %zu nodes, G update %zu nodes)",
                         t->be->name, nd, ng);
            } else {
                lg_cuda_graph_free(gr);
                lg_ctx_reset(t->ctx);
                if (++dv->capture_failures >= 3) {
                    drop_graphs(dv);
                    dv->mode = 1;
                    snprintf(dv->info, sizeof dv->info,
                             "%s: sync-free step; CUDA graphs off after 3 failed captures, last: %.200s",
                             t->be->name, lg_error_msg());
                }
                lg_error_clear();
                return body(t); /* nothing was run while recording */
            }
        }
        if (dv->graph[which]) return lg_cuda_graph_launch((lg_cuda_graph *)dv->graph[which]);
    }
#endif
    return body(t);
}

lg_status lg__train_step_dev(lg_trainer *t, lg_train_stats *st, int *diverged) {
    const lg_config *c = &t->cfg;
    const lg_backend *be = t->be;
    lg_train_dev *dv = &t->dev;
    *diverged = 0;
    size_t a_start = lg_ctx_sys_allocs(t->ctx);
    float ctl[LG_TS_LIMIT + 1] = {0};
    ctl[LG_TS_LR_D] = st->lr_d;
    ctl[LG_TS_LR_G] = st->lr_g;
    ctl[LG_TS_T_D] = (float)t->opt_d.t;
    ctl[LG_TS_T_G] = (float)t->opt_g.t;
    ctl[LG_TS_RUN] = (float)t->nonfinite_run;
    ctl[LG_TS_LIMIT] = (float)c->train.max_nonfinite;
    be->upload(dv->s, ctl, LG_TS_LIMIT + 1);
    int64_t td0 = t->opt_d.t, tg0 = t->opt_g.t;
    int bd = c->train.batch_d, zd = c->model.z_dim;
    for (int i = 0, nd = lg__train_n_dis(t); i < nd; i++) {
        LG_TRY(lg__train_d_prepare(t));
        be->upload(dv->in_x, t->xb, (size_t)bd * (size_t)t->sample_size);
        be->upload(dv->in_z, t->zb, (size_t)bd * (size_t)zd);
        if (c->lipschitz.d.gp_lambda > 0) be->upload(dv->in_e, t->eb, (size_t)bd);
        LG_TRY(run_update(t, 0));
    }
    lg__train_g_prepare(t);
    be->upload(dv->in_z, t->zb, (size_t)c->train.batch_g * (size_t)zd);
    /* a G update recorded while the EMA copied must be recorded again to average */
    if (t->ema && t->step == c->ema.start) drop_graphs(dv);
    LG_TRY(run_update(t, 1));

    float h[LG_TS_COUNT];
    be->download(h, dv->s, LG_TS_COUNT); /* the step's one wait for the device */
#ifdef LG_HAVE_CUDA
    if (be->is_device && lg_cuda_last_status() != LG_OK) return lg_cuda_last_status();
#endif
    st->loss_d = h[LG_TS_LOSS_D];
    st->d_real = h[LG_TS_DREAL];
    st->d_fake = h[LG_TS_DFAKE];
    st->gp = h[LG_TS_GP];
    st->loss_g = h[LG_TS_LOSS_G];
    st->skipped = (int)h[LG_TS_SKIPPED];
    t->nonfinite_run = (int)h[LG_TS_RUN];
    t->opt_d.t = (int64_t)h[LG_TS_T_D];
    t->opt_g.t = (int64_t)h[LG_TS_T_G];
    t->xd.updates += t->opt_d.t - td0;
    t->xg.updates += t->opt_g.t - tg0;
    *diverged = h[LG_TS_MAXRUN] >= (float)c->train.max_nonfinite;
    dv->calm = lg_ctx_sys_allocs(t->ctx) == a_start ? dv->calm + 1 : 0;
    return LG_OK;
}
