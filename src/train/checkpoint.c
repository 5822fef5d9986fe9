/* Checkpoints: save / load of the whole trainer state, the run directory's
 * checkpoint list, and restoring a generator for sampling (lipgan/train.h). */
#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "lipgan/backend_cpu.h"
#include "lipgan/safetensors.h"
#include "lipgan/version.h"
#include "train/train_internal.h"

/* One tensor of the checkpoint: where its data lives in the trainer.
 * SLOT_MONTV: a spectral monitor layer's warm-start vector (host floats);
 * its words are a SLOT_I64 with mon set. The monitor's tensors come last. */
typedef enum { SLOT_DEV, SLOT_I64, SLOT_SR, SLOT_MONTV } slot_kind;

typedef struct slot {
    char name[128];
    slot_kind kind;
    int ndim;
    int64_t shape[LG_MAX_DIMS];
    int64_t numel;
    float *dev;            /* SLOT_DEV: backend memory */
    int64_t *i64;          /* SLOT_I64: host staging */
    lg_sr_state *sr;       /* SLOT_SR: optional, host */
    int64_t sr_max;        /* SLOT_SR: largest valid length */
    int mon;               /* 1: the spectral monitor's (.state words or SLOT_MONTV) */
    const char *mon_net;   /* ... its network ("D", "G"), model and layer */
    lg_model *mon_m;
    int mon_layer;
    float *host;           /* SLOT_MONTV: (numel) host floats while saving */
    size_t off;            /* load: offset of the floats in the staging buffer */
} slot;

/* Integer state staged through host arrays (so a load is all or nothing). */
typedef struct stage {
    int64_t train[4];      /* step, D updates, G updates, skipped in a row */
    int64_t shape[3];
    int64_t cursor[LG_DATA_CURSOR_LEN];
    int64_t rng[3][LG_RNG_STATE_WORDS];
    int64_t adam_t[2];
} stage;

typedef struct slots {
    slot *v;
    int n, cap;
} slots;

static slot *slot_add(slots *s, slot_kind kind, const char *prefix, const char *name,
                      const char *suffix) {
    if (s->n == s->cap) {
        int cap = s->cap ? 2 * s->cap : 256;
        slot *nv = realloc(s->v, (size_t)cap * sizeof *nv);
        if (!nv) return NULL;
        s->v = nv;
        s->cap = cap;
    }
    slot *x = &s->v[s->n++];
    memset(x, 0, sizeof *x);
    x->kind = kind;
    snprintf(x->name, sizeof x->name, "%s%s%s", prefix, name, suffix);
    return x;
}

static int slot_dev(slots *s, const char *prefix, const char *name, const char *suffix,
                    float *dev, int ndim, const int64_t *shape) {
    slot *x = slot_add(s, SLOT_DEV, prefix, name, suffix);
    if (!x) return -1;
    x->dev = dev;
    x->ndim = ndim;
    x->numel = 1;
    for (int i = 0; i < ndim; i++) {
        x->shape[i] = shape[i];
        x->numel *= shape[i];
    }
    return 0;
}

static int slot_vec(slots *s, const char *prefix, const char *name, const char *suffix,
                    float *dev, int64_t n) {
    return slot_dev(s, prefix, name, suffix, dev, 1, &n);
}

static int slot_i64(slots *s, const char *name, int64_t *data, int64_t n) {
    slot *x = slot_add(s, SLOT_I64, "", name, "");
    if (!x) return -1;
    x->i64 = data;
    x->ndim = 1;
    x->shape[0] = n;
    x->numel = n;
    return 0;
}

static int add_model(slots *s, const char *prefix, lg_model *m) {
    float *p = lg_model_params(m), *st = lg_model_state(m);
    for (int i = 0; i < lg_model_num_named(m); i++) {
        const lg_named_tensor *nt = lg_model_named(m, i);
        float *base = nt->is_param ? p : st;
        if (slot_dev(s, prefix, nt->name, "", base + nt->offset, nt->t->ndim, nt->t->shape)) return -1;
    }
    return 0;
}

static int add_extra(slots *s, const char *net, lg_model *m, lg_net_extra *x) {
    char pre[32];
    for (int i = 0; i < x->nl; i++) {
        const char *ln = lg_model_layer(m, i)->name;
        if (x->gc) {
            lg_gclamp_state *g = &x->gc[i];
            snprintf(pre, sizeof pre, "%s.gclamp.", net);
            if (slot_vec(s, pre, ln, ".u0", g->u0, g->rows) || slot_vec(s, pre, ln, ".u1", g->u1, g->rows) ||
                slot_vec(s, pre, ln, ".v0", g->v0, g->cols) || slot_vec(s, pre, ln, ".v1", g->v1, g->cols))
                return -1;
        }
        if (x->rw) {
            snprintf(pre, sizeof pre, "%s.rw.", net);
            if (slot_vec(s, pre, ln, ".u", x->rw[i].u, x->rw[i].out) ||
                slot_vec(s, pre, ln, ".v", x->rw[i].v, x->rw[i].in) ||
                slot_vec(s, pre, ln, ".sigma", x->rw[i].sigma, 1))
                return -1;
        }
        if (x->sr && x->sr_on[i] && x->lip->sr_dynamic) {
            snprintf(pre, sizeof pre, "%s.sr.", net);
            slot *sl = slot_add(s, SLOT_SR, pre, ln, ".ref");
            if (!sl) return -1;
            const lg_layer_info *L = lg_model_layer(m, i);
            int64_t rows, cols;
            if (lg_weight_mat_dims(L->w->ndim, L->w->shape, L->out_dim, &rows, &cols) != LG_OK) return -1;
            sl->sr = &x->sr[i];
            sl->sr_max = rows < cols ? rows : cols;
            sl->ndim = 1;
            sl->shape[0] = sl->numel = x->sr[i].have_ref ? x->sr[i].n : 0;
        }
    }
    return 0;
}

/* A monitor slot of n values for layer i of net m. */
static slot *monitor_slot(slots *s, slot_kind kind, const char *pre, const char *net, lg_model *m, int i,
                          const char *suffix, int64_t n) {
    slot *x = slot_add(s, kind, pre, lg_model_layer(m, i)->name, suffix);
    if (!x) return NULL;
    x->ndim = 1;
    x->shape[0] = x->numel = n;
    x->mon = 1;
    x->mon_net = net;
    x->mon_m = m;
    x->mon_layer = i;
    return x;
}

/* The spectral monitor's tensors of net m (monitor.h): per layer
 * <net>.monitor.<layer>.state (I64 words, into words[LG_MONITOR_STATE_WORDS
 * * layer]) and, for conv/convT layers, <net>.monitor.<layer>.tv. */
static int add_monitor(slots *s, const char *net, lg_model *m, int64_t *words) {
    char pre[32];
    snprintf(pre, sizeof pre, "%s.monitor.", net);
    for (int i = 0; i < lg_model_num_layers(m); i++) {
        slot *x = monitor_slot(s, SLOT_I64, pre, net, m, i, ".state", LG_MONITOR_STATE_WORDS);
        if (!x) return -1;
        x->i64 = words + (size_t)LG_MONITOR_STATE_WORDS * i;
        int64_t n = lg_monitor_state_len(lg_model_layer(m, i));
        if (n > 0 && !monitor_slot(s, SLOT_MONTV, pre, net, m, i, ".tv", n)) return -1;
    }
    return 0;
}

/* Every tensor of t's checkpoint. stage receives / provides the integers;
 * monw (NULL: no monitor tensors) receives / provides the monitor's words,
 * LG_MONITOR_STATE_WORDS per layer of D, then of G. */
static lg_status build_slots(lg_trainer *t, slots *s, stage *sg, int64_t *monw) {
    memset(s, 0, sizeof *s);
    int64_t ng = (int64_t)lg_model_num_params(t->g), nd = (int64_t)lg_model_num_params(t->d);
    int bad = add_model(s, "G.", t->g) || add_model(s, "D.", t->d) ||
              (t->ema && add_model(s, "EMA.", t->ema)) ||
              slot_vec(s, "G.adam.", "m", "", t->opt_g.m, ng) ||
              slot_vec(s, "G.adam.", "v", "", t->opt_g.v, ng) ||
              slot_vec(s, "D.adam.", "m", "", t->opt_d.m, nd) ||
              slot_vec(s, "D.adam.", "v", "", t->opt_d.v, nd) ||
              slot_i64(s, "G.adam.t", &sg->adam_t[0], 1) || slot_i64(s, "D.adam.t", &sg->adam_t[1], 1) ||
              add_extra(s, "G", t->g, &t->xg) || add_extra(s, "D", t->d, &t->xd) ||
              slot_i64(s, "train.state", sg->train, 4) || slot_i64(s, "data.shape", sg->shape, 3) ||
              slot_i64(s, "data.cursor", sg->cursor, LG_DATA_CURSOR_LEN) ||
              slot_i64(s, "rng.noise", sg->rng[0], LG_RNG_STATE_WORDS) ||
              slot_i64(s, "rng.gp", sg->rng[1], LG_RNG_STATE_WORDS) ||
              slot_i64(s, "rng.data", sg->rng[2], LG_RNG_STATE_WORDS);
    if (!bad && monw)
        bad = add_monitor(s, "D", t->d, monw) ||
              add_monitor(s, "G", t->g, monw + (size_t)LG_MONITOR_STATE_WORDS * lg_model_num_layers(t->d));
    if (bad) {
        free(s->v);
        return lg_error_set(LG_ERR_NOMEM, "checkpoint: out of memory");
    }
    return LG_OK;
}

static void stage_from_trainer(const lg_trainer *t, stage *sg) {
    sg->train[0] = t->step;
    sg->train[1] = t->xd.updates;
    sg->train[2] = t->xg.updates;
    sg->train[3] = t->nonfinite_run;
    sg->shape[0] = t->c;
    sg->shape[1] = t->h;
    sg->shape[2] = t->w;
    lg_data_sampler_get_cursor(&t->smp, sg->cursor);
    lg_rng_state_save(&t->rng_noise, sg->rng[0]);
    lg_rng_state_save(&t->rng_gp, sg->rng[1]);
    lg_rng_state_save(&t->rng_data, sg->rng[2]);
    sg->adam_t[0] = t->opt_g.t;
    sg->adam_t[1] = t->opt_d.t;
}

/* Monitor words of a checkpoint: LG_MONITOR_STATE_WORDS per layer of D and G. */
static size_t mon_words(const lg_trainer *t) {
    return (size_t)LG_MONITOR_STATE_WORDS * (size_t)(lg_model_num_layers(t->d) + lg_model_num_layers(t->g));
}


static lg_status trainer_save(lg_trainer *t, const char *path);
static lg_status trainer_load(lg_trainer *t, const char *path, int *damaged);

/* save and load in the trainer's thread count, as its other calls (train.h) */
lg_status lg_trainer_save(lg_trainer *t, const char *path) {
    lg_cpu_threads_saved threads = lg__trainer_threads_enter(t);
    lg_status s = trainer_save(t, path);
    lg_cpu_threads_pop(&threads);
    return s;
}

lg_status lg__trainer_load_ex(lg_trainer *t, const char *path, int *damaged) {
    lg_cpu_threads_saved threads = lg__trainer_threads_enter(t);
    lg_status s = trainer_load(t, path, damaged);
    lg_cpu_threads_pop(&threads);
    return s;
}

static lg_status trainer_save(lg_trainer *t, const char *path) {
    stage sg;
    stage_from_trainer(t, &sg);
    slots s;
    /* the run's spectral monitor, if one is attached: its state too */
    int64_t *monw = NULL;
    if (t->mon && !(monw = malloc(mon_words(t) * sizeof *monw)))
        return lg_error_set(LG_ERR_NOMEM, "checkpoint: out of memory");
    lg_status bst = build_slots(t, &s, &sg, monw);
    if (bst != LG_OK) {
        free(monw);
        return bst;
    }
    /* one host buffer for every device tensor and monitor vector (the
     * writer does not copy) */
    size_t total = 0;
    for (int i = 0; i < s.n; i++)
        if (s.v[i].kind == SLOT_DEV || s.v[i].kind == SLOT_MONTV) total += (size_t)s.v[i].numel;
    float *host = malloc((total ? total : 1) * sizeof(float));
    lg_st_writer *w = NULL;
    lg_status st = host ? lg_st_writer_create(&w) : lg_error_set(LG_ERR_NOMEM, "checkpoint: out of memory");
    size_t hoff = 0;
    for (int i = 0; i < s.n && st == LG_OK; i++) { /* the monitor's words and vectors, staged */
        slot *x = &s.v[i];
        if (x->mon && x->kind == SLOT_I64) { /* its .tv, if any, follows it */
            slot *tv = i + 1 < s.n && s.v[i + 1].kind == SLOT_MONTV ? &s.v[i + 1] : NULL;
            if (tv) {
                tv->host = host + hoff;
                hoff += (size_t)tv->numel;
                i++;
            }
            st = lg_monitor_state_get(t->mon, x->mon_net, x->mon_m, x->mon_layer, x->i64, tv ? tv->host : NULL);
        }
    }
    char step[32];
    snprintf(step, sizeof step, "%" PRId64, t->step);
    if (st == LG_OK) st = lg_st_writer_add_meta(w, "format", LG_CHECKPOINT_FORMAT);
    if (st == LG_OK) st = lg_st_writer_add_meta(w, "lipgan_version", lg_version());
    if (st == LG_OK) st = lg_st_writer_add_meta(w, "step", step);
    if (st == LG_OK) st = lg_st_writer_add_meta(w, "config", t->cfg_yaml);
    char procs[16]; /* dist: a resume under another count is warned about */
    snprintf(procs, sizeof procs, "%d", t->world);
    if (st == LG_OK) st = lg_st_writer_add_meta(w, "processes", procs);
    size_t off = hoff;
    for (int i = 0; i < s.n && st == LG_OK; i++) {
        slot *x = &s.v[i];
        if (x->kind == SLOT_DEV) {
            float *h = host + off;
            off += (size_t)x->numel;
            t->be->download(h, x->dev, (size_t)x->numel);
            st = lg_st_writer_add_f32(w, x->name, x->ndim, x->shape, h);
        } else if (x->kind == SLOT_MONTV) {
            st = lg_st_writer_add_f32(w, x->name, x->ndim, x->shape, x->host);
        } else if (x->kind == SLOT_I64) {
            st = lg_st_writer_add_i64(w, x->name, x->ndim, x->shape, x->i64);
        } else if (x->sr->have_ref) {
            st = lg_st_writer_add_f32(w, x->name, 1, x->shape, x->sr->ref);
        }
    }
    if (st == LG_OK) st = lg_st_writer_write(w, path, 1);
    lg_st_writer_free(w);
    free(host);
    free(monw);
    free(s.v);
    return st;
}

/* Checks that tensor x is in f with its expected dtype class and shape. */
static lg_status check_slot(const lg_st_file *f, const char *path, const slot *x) {
    const lg_st_tensor *ft = lg_st_find(f, x->name);
    if (!ft) {
        if (x->kind == SLOT_SR) return LG_OK;  /* not yet recorded when saved */
        if (x->mon) /* asked for only when other monitor tensors are there */
            return lg_error_set(LG_ERR_NOT_FOUND,
                                "checkpoint %s: tensor %s is missing, but other spectral monitor tensors "
                                "(*.monitor.*) are there: the file is damaged or was edited; use an older "
                                "checkpoint",
                                path, x->name);
        return lg_error_set(LG_ERR_NOT_FOUND,
                            "checkpoint %s: tensor %s is missing; it was written with another "
                            "config (model, Lipschitz options or EMA differ)",
                            path, x->name);
    }
    int want_int = x->kind == SLOT_I64;  /* a monitor's .state too */
    int is_int = ft->dtype == LG_ST_I64 || ft->dtype == LG_ST_I32;
    int is_float = ft->dtype == LG_ST_F32;
    if (want_int ? !is_int : !is_float)
        return lg_error_set(LG_ERR_FORMAT, "checkpoint %s: tensor %s has dtype %s, expected %s",
                            path, x->name, lg_st_dtype_name(ft->dtype), want_int ? "I64" : "F32");
    if (x->kind == SLOT_SR) {
        if (ft->ndim != 1 || ft->shape[0] < 1 || ft->shape[0] > x->sr_max)
            return lg_error_set(LG_ERR_SHAPE, "checkpoint %s: tensor %s must be 1-D with 1..%lld values",
                                path, x->name, (long long)x->sr_max);
        return LG_OK;
    }
    int same = ft->ndim == x->ndim;
    for (int i = 0; same && i < x->ndim; i++) same = ft->shape[i] == x->shape[i];
    if (!same) {
        char a[96] = "", b[96] = "";
        for (int i = 0; i < ft->ndim && strlen(a) < 80; i++)
            snprintf(a + strlen(a), sizeof a - strlen(a), "%s%lld", i ? "," : "", (long long)ft->shape[i]);
        for (int i = 0; i < x->ndim; i++)
            snprintf(b + strlen(b), sizeof b - strlen(b), "%s%lld", i ? "," : "", (long long)x->shape[i]);
        return lg_error_set(LG_ERR_SHAPE,
                            "checkpoint %s: tensor %s has shape (%s), this model needs (%s); the "
                            "checkpoint was written for another model config",
                            path, x->name, a, b);
    }
    return LG_OK;
}

static lg_status open_checkpoint(lg_st_file **f, const char *path) {
    LG_TRY(lg_st_open(f, path));
    const char *fmt = lg_st_meta(*f, "format");
    if (!fmt || strcmp(fmt, LG_CHECKPOINT_FORMAT) != 0) {
        /* fmt lives in f: the message is made before f is closed */
        lg_status st = lg_error_set(LG_ERR_FORMAT,
                                    "checkpoint %s: not a lipgan checkpoint (metadata format is %s%.64s%s, "
                                    "expected %s); give a ckpt_*.safetensors written by lipgan train or "
                                    "its run directory",
                                    path, fmt ? "\"" : "", fmt ? fmt : "missing", fmt ? "\"" : "",
                                    LG_CHECKPOINT_FORMAT);
        lg_st_close(*f);
        *f = NULL;
        return st;
    }
    return LG_OK;
}

/* LG_ERR_FORMAT naming path and tensor if any of the n floats is NaN or
 * Inf: lipgan never saves a diverged state (train.h), so the file is
 * damaged. */
static lg_status check_finite(const char *path, const char *name, const float *x, int64_t n) {
    for (int64_t i = 0; i < n; i++)
        if (!isfinite(x[i]))
            return lg_error_set(LG_ERR_FORMAT,
                                "checkpoint %s: tensor %s holds a non-finite value (%g at index %lld); "
                                "lipgan never saves a diverged state, so the file is damaged; use an "
                                "older checkpoint",
                                path, name, (double)x[i], (long long)i);
    return LG_OK;
}

/* The monitor state a loaded checkpoint handed over, dropped once used. */
static void mon_stage_free(lg_trainer *t) {
    free(t->mon_ckpt_words);
    free(t->mon_ckpt_tv);
    t->mon_ckpt_words = NULL;
    t->mon_ckpt_tv = NULL;
}

/* lg_trainer_load; *damaged (optional) = 1 when it failed because the file
 * itself is damaged (does not open as a checkpoint, or holds non-finite
 * values), not because it belongs to another config. */
lg_status lg__trainer_load_ex(lg_trainer *t, const char *path, int *damaged);

/* The optimizer kinds (G, D) of the config the checkpoint was written with,
 * into was[]; "" where it matches the run's or cannot be told (no config,
 * or one that does not parse here). */
static void optim_kinds_of(lg_st_file *f, const lg_trainer *t, char was[2][LG_CFG_STR_MAX]) {
    was[0][0] = was[1][0] = '\0';
    const char *text = lg_st_meta(f, "config");
    lg_config *old = malloc(sizeof *old);
    if (text && old) {
        lg_config_default(old);
        if (lg_config_load_string(old, text, strlen(text), "checkpoint config") == LG_OK) {
            if (strcmp(old->optim.g.kind, t->cfg.optim.g.kind)) snprintf(was[0], LG_CFG_STR_MAX, "%s", old->optim.g.kind);
            if (strcmp(old->optim.d.kind, t->cfg.optim.d.kind)) snprintf(was[1], LG_CFG_STR_MAX, "%s", old->optim.d.kind);
        }
        lg_error_clear();
    }
    free(old);
}

lg_status lg_trainer_load(lg_trainer *t, const char *path) { return lg__trainer_load_ex(t, path, NULL); }

static lg_status trainer_load(lg_trainer *t, const char *path, int *damaged) {
    int dmg_;
    if (!damaged) damaged = &dmg_;
    *damaged = 0;
    lg_st_file *f;
    lg_status ost = open_checkpoint(&f, path);
    if (ost != LG_OK) {
        *damaged = ost == LG_ERR_FORMAT;
        return ost;
    }
    stage sg;
    slots s;
    int64_t *monw = malloc(mon_words(t) * sizeof *monw);
    lg_status st = monw ? build_slots(t, &s, &sg, monw) : lg_error_set(LG_ERR_NOMEM, "checkpoint: out of memory");
    if (st != LG_OK) {
        free(monw);
        lg_st_close(f);
        return st;
    }
    /* the spectral monitor's tensors (the last slots) are all there or none:
     * none is a checkpoint of a run without the monitor, or from before
     * lipgan saved its state; that still resumes (the monitor restarts
     * cold, lg__checkpoint_monitor_attach warns) */
    int mon_first = s.n, mon_present = 0;
    for (int i = 0; i < s.n; i++)
        if (s.v[i].mon) {
            if (mon_first == s.n) mon_first = i;
            mon_present |= lg_st_find(f, s.v[i].name) != NULL;
        }
    if (!mon_present) s.n = mon_first;
    float *tmp = NULL;
    /* 1. every expected tensor present, nothing unexpected, then dtypes and
     * shapes: a tensor the model no longer has (D.l5.bias of a checkpoint
     * from before the ResNet D's l5 lost its bias) is named, not the Adam
     * buffer it made longer */
    for (int i = 0; i < s.n && st == LG_OK; i++)
        if (!lg_st_find(f, s.v[i].name)) st = check_slot(f, path, &s.v[i]);
    for (size_t j = 0; j < lg_st_count(f) && st == LG_OK; j++) {
        const char *nm = lg_st_at(f, j)->name;
        int known = 0;
        for (int i = 0; i < s.n && !known; i++) known = strcmp(s.v[i].name, nm) == 0;
        if (!known)
            st = lg_error_set(LG_ERR_FORMAT,
                              "checkpoint %s: tensor %s is not part of this model; it was written "
                              "with another config (model, Lipschitz options or EMA differ)",
                              path, nm);
    }
    for (int i = 0; i < s.n && st == LG_OK; i++) st = check_slot(f, path, &s.v[i]);
    /* 2. integers into staging, validated */
    for (int i = 0; i < s.n && st == LG_OK; i++)
        if (s.v[i].kind == SLOT_I64) st = lg_st_get_i64(f, s.v[i].name, 1, s.v[i].shape, s.v[i].i64);
    if (st == LG_OK && (sg.shape[0] != t->c || sg.shape[1] != t->h || sg.shape[2] != t->w))
        st = lg_error_set(LG_ERR_SHAPE,
                          "checkpoint %s: trained on samples of shape (%lld,%lld,%lld), the data "
                          "now has (%d,%d,%d)",
                          path, (long long)sg.shape[0], (long long)sg.shape[1], (long long)sg.shape[2],
                          t->c, t->h, t->w);
    if (st == LG_OK && (sg.train[0] < 0 || sg.train[1] < 0 || sg.train[2] < 0 || sg.train[3] < 0 ||
                        sg.adam_t[0] < 0 || sg.adam_t[1] < 0))
        st = lg_error_set(LG_ERR_FORMAT, "checkpoint %s: negative step counters", path);
    lg_rng r[3];
    for (int k = 0; k < 3 && st == LG_OK; k++) st = lg_rng_state_load(&r[k], sg.rng[k]);
    /* 3. every float read into host memory and checked finite (parameters,
     * state, Adam moments, SR spectra) before anything is applied */
    size_t total = 0;
    for (int i = 0; i < s.n; i++)
        if (s.v[i].kind != SLOT_I64) {
            const lg_st_tensor *ft = lg_st_find(f, s.v[i].name);
            total += ft ? (size_t)ft->numel : 0;
        }
    if (st == LG_OK && !(tmp = malloc((total ? total : 1) * sizeof(float))))
        st = lg_error_set(LG_ERR_NOMEM, "checkpoint %s: out of memory", path);
    size_t off = 0;
    for (int i = 0; i < s.n && st == LG_OK; i++) {
        slot *x = &s.v[i];
        const lg_st_tensor *ft = lg_st_find(f, x->name);
        if (x->kind == SLOT_I64 || !ft) continue;
        st = x->kind != SLOT_SR ? lg_st_get_f32(f, x->name, x->ndim, x->shape, tmp + off)
                                : lg_st_get_f32(f, x->name, 1, ft->shape, tmp + off);
        if (st == LG_OK && (st = check_finite(path, x->name, tmp + off, ft->numel)) != LG_OK) *damaged = 1;
        x->off = off;
        off += (size_t)ft->numel;
    }
    /* the monitor's words in range, its vectors usable */
    for (int i = mon_first; i < s.n && st == LG_OK; i++) {
        const slot *x = &s.v[i];
        if (x->kind != SLOT_I64) continue;
        const slot *tv = i + 1 < s.n && s.v[i + 1].kind == SLOT_MONTV ? &s.v[i + 1] : NULL;
        if (lg_monitor_state_check(x->i64, tv ? tmp + tv->off : NULL, tv ? tv->numel : 0) != LG_OK) {
            st = lg_error_set(LG_ERR_FORMAT, "checkpoint %s: tensor %s%s: %s; the file is damaged; use an older checkpoint",
                              path, x->name, tv ? " (with its .tv)" : "", lg_error_msg());
            *damaged = 1;
        }
    }
    /* the monitor's vectors, kept with its words for the run's monitor
     * (lg__checkpoint_monitor_attach): it does not exist yet */
    float *mon_tv = NULL;
    if (st == LG_OK && mon_present) {
        size_t ntv = 0;
        for (int i = mon_first; i < s.n; i++)
            if (s.v[i].kind == SLOT_MONTV) ntv += (size_t)s.v[i].numel;
        if (!(mon_tv = malloc((ntv ? ntv : 1) * sizeof(float))))
            st = lg_error_set(LG_ERR_NOMEM, "checkpoint %s: out of memory", path);
        for (int i = mon_first, k = 0; st == LG_OK && i < s.n; i++)
            if (s.v[i].kind == SLOT_MONTV) {
                memcpy(mon_tv + k, tmp + s.v[i].off, (size_t)s.v[i].numel * sizeof(float));
                k += (int)s.v[i].numel;
            }
    }
    /* the one fallible mutation goes first; it leaves the sampler as it was on error */
    if (st == LG_OK) st = lg_data_sampler_set_cursor(&t->smp, sg.cursor);
    if (st != LG_OK) {
        free(mon_tv);
        goto done;
    }

    /* 4. apply (nothing below can fail, except memory for SR spectra) */
    off = 0;
    for (int i = 0; i < s.n && st == LG_OK; i++) {
        slot *x = &s.v[i];
        const lg_st_tensor *ft = lg_st_find(f, x->name);
        if (x->kind == SLOT_DEV) {
            t->be->upload(x->dev, tmp + off, (size_t)x->numel);
            off += (size_t)x->numel;
        } else if (x->kind == SLOT_SR) {
            lg_sr_free(x->sr);
            if (ft) {
                x->sr->ref = malloc((size_t)ft->shape[0] * sizeof(float));
                if (!x->sr->ref) {
                    st = lg_error_set(LG_ERR_NOMEM, "checkpoint %s: out of memory", path);
                    break;
                }
                memcpy(x->sr->ref, tmp + off, (size_t)ft->shape[0] * sizeof(float));
                off += (size_t)ft->numel;
                x->sr->n = ft->shape[0];
                x->sr->have_ref = 1;
            }
        }
    }
    if (st != LG_OK) goto done;
    t->step = sg.train[0];
    t->xd.updates = sg.train[1];
    t->xg.updates = sg.train[2];
    t->nonfinite_run = (int)sg.train[3];
    t->opt_g.t = sg.adam_t[0];
    t->opt_d.t = sg.adam_t[1];
    /* an optimizer of another kind than the checkpoint's (adam <-> rmsprop)
     * starts afresh, as a new torch optimizer would: Adam's bias-corrected
     * moments are not RMSProp's square average, nor the other way round */
    optim_kinds_of(f, t, t->optim_was);
    lg_adam *opt[2] = {&t->opt_g, &t->opt_d};
    for (int k = 0; k < 2; k++)
        if (t->optim_was[k][0]) {
            t->be->fill(opt[k]->m, 0.0f, 2 * opt[k]->n); /* m and v: one allocation */
            opt[k]->t = 0;
        }
    t->rng_noise = r[0];
    t->rng_gp = r[1];
    t->rng_data = r[2];
    for (int i = 0; t->xg.rw && i < t->xg.nl; i++) t->xg.rw[i].primed = 1;
    for (int i = 0; t->xd.rw && i < t->xd.nl; i++) t->xd.rw[i].primed = 1;
    /* the monitor's state goes to the run's monitor once it exists
     * (lg__checkpoint_monitor_attach) */
    mon_stage_free(t);
    t->mon_ckpt_words = mon_present ? monw : NULL;
    t->mon_ckpt_tv = mon_tv;
    if (mon_present) monw = NULL; /* the trainer's now */
    t->mon_ckpt = mon_present ? 1 : -1;
    t->mon_ckpt_step = t->step;
    snprintf(t->mon_ckpt_path, sizeof t->mon_ckpt_path, "%s", path);
    st = lg_model_state_loaded(t->g);
    if (st == LG_OK) st = lg_model_state_loaded(t->d);
    if (st == LG_OK && t->ema) st = lg_model_state_loaded(t->ema);
done:
    free(tmp);
    free(monw);
    free(s.v);
    lg_st_close(f);
    return st;
}

lg_status lg__checkpoint_monitor_attach(lg_trainer *t, lg_monitor *mon, FILE *log) {
    t->mon = mon;
    const int had = t->mon_ckpt;
    t->mon_ckpt = 0;
    if (had == 0) return LG_OK;
    if (!mon) {
        if (had > 0 && log)
            fprintf(log, "note: %s holds the spectral monitor's state, but log.spectra_every is 0 now: not "
                         "used, and this run's checkpoints will not carry it\n", t->mon_ckpt_path);
        mon_stage_free(t);
        return LG_OK;
    }
    if (had < 0) {
        if (log)
            fprintf(log, "warning: %s holds no spectral monitor state (written with log.spectra_every = 0 or by "
                         "an older lipgan): the monitor restarts cold, so its records after step %" PRId64
                         " (lip_*, sn_*_err_max, spectra.bin) can differ slightly from an uninterrupted run's\n",
                    t->mon_ckpt_path, t->mon_ckpt_step);
        return LG_OK;
    }
    const int64_t *w = t->mon_ckpt_words;
    const float *tv = t->mon_ckpt_tv;
    lg_status st = LG_OK;
    struct { const char *net; lg_model *m; } nets[2] = {{"D", t->d}, {"G", t->g}};
    for (int k = 0; k < 2 && st == LG_OK; k++)
        for (int i = 0; i < lg_model_num_layers(nets[k].m) && st == LG_OK; i++) {
            const lg_layer_info *L = lg_model_layer(nets[k].m, i);
            int64_t n = lg_monitor_state_len(L);
            st = lg_monitor_state_set(mon, nets[k].net, nets[k].m, i, w, n > 0 ? tv : NULL);
            if (st != LG_OK)
                lg_error_set(st, "checkpoint %s: spectral monitor state of %s.monitor.%s: %s", t->mon_ckpt_path,
                             nets[k].net, L->name, lg_error_msg());
            w += LG_MONITOR_STATE_WORDS;
            tv += n;
        }
    mon_stage_free(t);
    return st;
}

/* ---- run directories ---- */

void lg_checkpoint_path(char *buf, size_t cap, const char *dir, int64_t step) {
    snprintf(buf, cap, "%s/ckpt_%09" PRId64 ".safetensors", dir, step);
}

/* The step of a file name "ckpt_<digits>.safetensors", or -1. */
static int64_t ckpt_step(const char *name) {
    if (strncmp(name, "ckpt_", 5) != 0) return -1;
    const char *p = name + 5;
    int64_t v = 0;
    int nd = 0;
    for (; *p >= '0' && *p <= '9'; p++, nd++) {
        if (v > (INT64_MAX - 9) / 10) return -1;
        v = v * 10 + (*p - '0');
    }
    if (nd == 0 || strcmp(p, ".safetensors") != 0) return -1;
    return v;
}

/* Steps of all checkpoints in dir, ascending (malloc'ed; *n entries). */
static lg_status list_ckpts(const char *dir, int64_t **out, int *n) {
    *out = NULL;
    *n = 0;
    DIR *d = opendir(dir);
    if (!d)
        return lg_error_set(errno == ENOENT ? LG_ERR_NOT_FOUND : LG_ERR_IO,
                            "run directory %s: %s", dir, strerror(errno));
    int cap = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        int64_t s = ckpt_step(e->d_name);
        if (s < 0) continue;
        if (*n == cap) {
            cap = cap ? 2 * cap : 16;
            int64_t *nv = realloc(*out, (size_t)cap * sizeof *nv);
            if (!nv) {
                closedir(d);
                free(*out);
                *out = NULL;
                return lg_error_set(LG_ERR_NOMEM, "run directory %s: out of memory", dir);
            }
            *out = nv;
        }
        (*out)[(*n)++] = s;
    }
    closedir(d);
    for (int i = 1; i < *n; i++)  /* insertion sort: a handful of files */
        for (int j = i; j > 0 && (*out)[j - 1] > (*out)[j]; j--) {
            int64_t x = (*out)[j];
            (*out)[j] = (*out)[j - 1];
            (*out)[j - 1] = x;
        }
    return LG_OK;
}

lg_status lg_checkpoint_latest(const char *dir, char *buf, size_t cap, int64_t *step) {
    int64_t *v;
    int n;
    LG_TRY(list_ckpts(dir, &v, &n));
    if (n == 0) {
        free(v);
        return lg_error_set(LG_ERR_NOT_FOUND, "run directory %s: no checkpoint (ckpt_*.safetensors)", dir);
    }
    if (step) *step = v[n - 1];
    lg_checkpoint_path(buf, cap, dir, v[n - 1]);
    free(v);
    return LG_OK;
}

/* Deletes the oldest checkpoints of dir so that `keep` remain, never the
 * one of step `newest` (called only after it is durable). */
lg_status lg__checkpoint_prune(const char *dir, int keep, int64_t newest) {
    int64_t *v;
    int n;
    LG_TRY(list_ckpts(dir, &v, &n));
    int excess = n - keep;
    lg_status st = LG_OK;
    for (int i = 0; i < n && excess > 0; i++) {
        if (v[i] >= newest) break;
        char p[LG_CFG_PATH_MAX + 64];
        lg_checkpoint_path(p, sizeof p, dir, v[i]);
        if (remove(p) != 0 && errno != ENOENT)
            st = lg_error_set(LG_ERR_IO, "cannot delete old checkpoint %s: %s", p, strerror(errno));
        excess--;
    }
    free(v);
    return st;
}

/* The newest checkpoint of dir older than step `below` that opens as a
 * lipgan checkpoint (header, offsets and format checked) into buf;
 * LG_ERR_NOT_FOUND if none. Leaves the thread's error message as it was. */
lg_status lg__checkpoint_older_intact(const char *dir, int64_t below, char *buf, size_t cap,
                                      int64_t *step) {
    char saved[1024];
    snprintf(saved, sizeof saved, "%s", lg_error_msg());
    int64_t *v;
    int n;
    lg_status st = list_ckpts(dir, &v, &n);
    int found = 0;
    for (int i = n - 1; st == LG_OK && i >= 0 && !found; i--) {
        if (v[i] >= below) continue;
        lg_checkpoint_path(buf, cap, dir, v[i]);
        lg_st_file *f;
        if (open_checkpoint(&f, buf) == LG_OK) {
            lg_st_close(f);
            if (step) *step = v[i];
            found = 1;
        }
    }
    if (st == LG_OK) free(v);
    lg_error_set(LG_ERR_NOT_FOUND, "%s", saved);
    return found ? LG_OK : LG_ERR_NOT_FOUND;
}

/* ---- sampling from a checkpoint ---- */

/* Opens the checkpoint at path (a run directory means its newest) into *f,
 * with its config (cfg) and sample shape (shp: C, H, W) read and checked.
 * strict: the file must be a lipgan checkpoint (format metadata), and a
 * missing config is LG_ERR_FORMAT; else any safetensors file is opened and a
 * missing config or data.shape is LG_ERR_NOT_FOUND, so that a caller can
 * tell "not from lipgan train" from a broken file. file (nfile bytes) gets
 * the file's path. On error *f is NULL. */
static lg_status open_with_config(const char *path, int strict, char *file, size_t nfile,
                                  lg_st_file **f, lg_config *cfg, int64_t shp[3]) {
    *f = NULL;
    struct stat sb;
    if (stat(path, &sb) == 0 && S_ISDIR(sb.st_mode)) LG_TRY(lg_checkpoint_latest(path, file, nfile, NULL));
    else snprintf(file, nfile, "%s", path);
    LG_TRY(strict ? open_checkpoint(f, file) : lg_st_open(f, file));
    lg_status st = LG_OK;
    lg_config_default(cfg);
    const char *text = lg_st_meta(*f, "config");
    char label[LG_CFG_PATH_MAX + 96];
    snprintf(label, sizeof label, "%s (config in metadata)", file);
    if (!text)
        st = lg_error_set(strict ? LG_ERR_FORMAT : LG_ERR_NOT_FOUND,
                          "checkpoint %s: no config in the metadata (not written by lipgan train)", file);
    else if (!strict && !lg_st_find(*f, "data.shape"))
        st = lg_error_set(LG_ERR_NOT_FOUND,
                          "checkpoint %s: no data.shape tensor, so no sample shape for the models", file);
    else
        st = lg_config_load_string(cfg, text, strlen(text), label);
    if (st == LG_OK) st = lg_st_get_i64(*f, "data.shape", 1, (int64_t[]){3}, shp);
    if (st == LG_OK && (shp[0] < 1 || shp[1] < 1 || shp[2] < 1 || shp[0] > 65536 || shp[1] > 65536 || shp[2] > 65536))
        st = lg_error_set(LG_ERR_FORMAT, "checkpoint %s: bad data.shape", file);
    if (st != LG_OK) {
        lg_st_close(*f);
        *f = NULL;
    }
    return st;
}

/* The config in a file's metadata says how large its networks are; a file
 * that holds fewer values than that (damaged, or made up: 8 KB claiming a
 * 4096-wide, 20-deep MLP) is refused before the model is allocated.
 * free_below: networks of fewer parameters pass regardless (a file that
 * holds some layers only, which spectra reads by name, is fine while the
 * networks are cheap to build). */
static lg_status check_spec_fits(lg_st_file *f, const char *file, const lg_model_spec *spec,
                                 const char *net, size_t free_below) {
    size_t need;
    LG_TRY(lg_model_spec_count(spec, &need));
    uint64_t have = 0;
    for (size_t j = 0; j < lg_st_count(f); j++) have += (uint64_t)lg_st_at(f, j)->numel;
    if (have < need && need >= free_below)
        return lg_error_set(LG_ERR_FORMAT,
                            "checkpoint %s: its config describes a %s of %zu parameters, but the file "
                            "holds %llu values in all; the file is damaged or its config metadata "
                            "does not belong to it",
                            file, net, need, (unsigned long long)have);
    return LG_OK;
}

lg_status lg_checkpoint_load_generator(const char *path, const lg_backend *be, int use_ema,
                                       lg_model **g, lg_config *cfg_out) {
    *g = NULL;
    char file[LG_CFG_PATH_MAX + 64];
    lg_st_file *f;
    lg_config cfg;
    int64_t shp[3];
    LG_TRY(open_with_config(path, 1, file, sizeof file, &f, &cfg, shp));
    lg_model_spec spec;
    lg_status st = lg__train_model_spec(&cfg, LG_NET_G, (int)shp[0], (int)shp[1], (int)shp[2],
                                        lg_config_is_toy(&cfg), &spec);
    if (st == LG_OK) st = check_spec_fits(f, file, &spec, "generator", 0);
    if (st == LG_OK) st = lg_model_create(g, &spec, be, (uint64_t)cfg.seed);
    const char *prefix = "G.";  /* the EMA weights when asked for and saved */
    for (size_t j = 0; use_ema && j < lg_st_count(f); j++)
        if (strncmp(lg_st_at(f, j)->name, "EMA.", 4) == 0) prefix = "EMA.";
    float *tmp = NULL;
    for (int i = 0; st == LG_OK && i < lg_model_num_named(*g); i++) {
        const lg_named_tensor *nt = lg_model_named(*g, i);
        slot x;
        memset(&x, 0, sizeof x);
        snprintf(x.name, sizeof x.name, "%s%s", prefix, nt->name);
        x.kind = SLOT_DEV;
        x.ndim = nt->t->ndim;
        memcpy(x.shape, nt->t->shape, sizeof x.shape);
        x.numel = nt->t->numel;
        st = check_slot(f, file, &x);
        if (st != LG_OK) break;
        float *nb = realloc(tmp, (size_t)x.numel * sizeof(float));
        if (!nb) {
            st = lg_error_set(LG_ERR_NOMEM, "checkpoint %s: out of memory", file);
            break;
        }
        tmp = nb;
        st = lg_st_get_f32(f, x.name, x.ndim, x.shape, tmp);
        if (st == LG_OK) st = check_finite(file, x.name, tmp, x.numel);
        if (st == LG_OK)
            be->upload((nt->is_param ? lg_model_params(*g) : lg_model_state(*g)) + nt->offset, tmp,
                       (size_t)x.numel);
    }
    free(tmp);
    if (st == LG_OK) st = lg_model_state_loaded(*g);
    lg_st_close(f);
    if (st != LG_OK) {
        lg_model_free(*g);
        *g = NULL;
        return st;
    }
    if (cfg_out) *cfg_out = cfg;
    return LG_OK;
}

lg_status lg_checkpoint_models(const char *path, lg_model **g, lg_model **d) {
    *g = *d = NULL;
    char file[LG_CFG_PATH_MAX + 64];
    lg_st_file *f;
    lg_config cfg;
    int64_t shp[3]; /* {C, H, W} of a sample */
    LG_TRY(open_with_config(path, 0, file, sizeof file, &f, &cfg, shp));
    /* the same specs (and seed) the trainer builds its networks from */
    lg_model_spec sg, sd;
    const int toy = lg_config_is_toy(&cfg);
    lg_status st = lg__train_model_spec(&cfg, LG_NET_G, (int)shp[0], (int)shp[1], (int)shp[2], toy, &sg);
    if (st == LG_OK) st = lg__train_model_spec(&cfg, LG_NET_D, (int)shp[0], (int)shp[1], (int)shp[2], toy, &sd);
    /* a file may hold some layers only (spectra reads them by name): only
     * networks over 2^24 parameters (64 MB) must be backed by the file */
    if (st == LG_OK) st = check_spec_fits(f, file, &sg, "generator", (size_t)1 << 24);
    if (st == LG_OK) st = check_spec_fits(f, file, &sd, "discriminator", (size_t)1 << 24);
    lg_st_close(f);
    if (st == LG_OK) st = lg_model_create(g, &sg, NULL, (uint64_t)cfg.seed);
    if (st == LG_OK) st = lg_model_create(d, &sd, NULL, (uint64_t)cfg.seed);
    if (st != LG_OK) {
        lg_model_free(*g);
        lg_model_free(*d);
        *g = *d = NULL;
    }
    return st;
}

int64_t lg_generator_sample_size(const lg_model *g) {
    const lg_model_spec *s = lg_model_get_spec(g);
    return s->data_dim > 0 ? s->data_dim : (int64_t)s->img_c * s->img_size * s->img_size;
}

lg_status lg_generate(lg_model *g, const lg_backend *be, int64_t n, uint64_t seed, float *out) {
    if (!g) return lg_error_set(LG_ERR_INVALID_ARG, "lg_generate: g is NULL; pass a generator");
    if (n < 0)
        return lg_error_set(LG_ERR_INVALID_ARG, "lg_generate: n is %lld; the sample count must be >= 0",
                            (long long)n);
    if (n > 0 && !out)
        return lg_error_set(LG_ERR_INVALID_ARG, "lg_generate: out is NULL for n = %lld; pass a buffer of "
                            "n * lg_generator_sample_size(g) floats", (long long)n);
    const lg_model_spec *spec = lg_model_get_spec(g);
    int64_t ss = lg_generator_sample_size(g);
    lg_ctx *ctx;
    LG_TRY(lg_ctx_create(&ctx, be));
    lg_ctx_set_grad_enabled(ctx, 0);
    lg_rng r;
    lg_rng_init(&r, seed, LG_RNG_STREAM_EVAL);
    enum { BATCH = 64 };
    float *z = malloc((size_t)BATCH * (size_t)spec->z_dim * sizeof(float));
    lg_status st = z ? LG_OK : lg_error_set(LG_ERR_NOMEM, "generate: out of memory");
    for (int64_t done = 0; st == LG_OK && done < n; done += BATCH) {
        int64_t b = n - done < BATCH ? n - done : BATCH;
        lg_ctx_reset(ctx);
        lg_rng_fill_normal(&r, z, (size_t)(b * spec->z_dim), 0.0f, 1.0f);
        lg_tensor *zt = lg_from_host(ctx, z, 2, (int64_t[]){b, spec->z_dim});
        lg_tensor *x = lg_model_forward(ctx, g, zt, 0);
        st = lg_ctx_status(ctx);
        if (st == LG_OK) st = lg_to_host(ctx, x, out + done * ss);
    }
    free(z);
    lg_ctx_free(ctx);
    return st;
}
