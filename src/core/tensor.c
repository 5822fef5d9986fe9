/* Context, step arenas and tensor constructors. */
#include "lipgan/tensor.h"

#include <stdarg.h>
#include <string.h>

#include "core/graph.h"

/* ---- arena: bump allocation over chunks; reset folds all chunks into one
 * so that a repeated step of the same size makes no system allocation.
 * The fold keeps what the step used plus 1/8 (steps that vary a little,
 * such as a logging step, then still fit), not the chunks' capacity: with
 * doubling chunks that was up to 2.3x the need (the SN-GAN iteration held
 * 14.4 GB of arena for 6.2 GB used). ---- */

#define ARENA_MAX_CHUNKS 64
#define ARENA_ALIGN 64

#if defined(__SANITIZE_ADDRESS__)
#define ARENA_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) /* clang */
#define ARENA_ASAN 1
#endif
#endif
#ifdef ARENA_ASAN
#include <sanitizer/asan_interface.h>
#define ARENA_POISON(p, n) ASAN_POISON_MEMORY_REGION((p), (n))
#define ARENA_UNPOISON(p, n) ASAN_UNPOISON_MEMORY_REGION((p), (n))
#else
#define ARENA_POISON(p, n) ((void)(p), (void)(n))
#define ARENA_UNPOISON(p, n) ((void)(p), (void)(n))
#endif

typedef struct arena_chunk {
    char *base;
    size_t cap, used;
    size_t peak; /* the most `used` reached since the last reset: what a fold keeps */
} arena_chunk;

/* A released block (lg_grad's dead gradients, a kernel's finished
 * workspace; see arena_release): reused
 * best-fit before the bump pointer moves; kept sorted by address within a
 * chunk so that neighbours merge. */
typedef struct free_block {
    char *p;
    size_t n;
    int chunk;
} free_block;

typedef struct arena {
    const lg_backend *be;  /* NULL: host malloc */
    arena_chunk chunk[ARENA_MAX_CHUNKS];
    int n;
    size_t *sys_allocs;
    free_block *fb;        /* (nfb) sorted by (chunk, p); host bookkeeping */
    int nfb, capfb;
    int poison;            /* host memory under ASan: released blocks are poisoned */
    int folded;            /* chunk[0] is a fold of an earlier step's chunks */
} arena;

static void *arena_sys_alloc(arena *a, size_t bytes) {
    (*a->sys_allocs)++;
    if (a->be) return a->be->alloc(bytes);
    void *p = NULL;
    if (posix_memalign(&p, ARENA_ALIGN, bytes) != 0) return NULL;
    return p;
}

static void arena_sys_free(arena *a, void *p) {
    if (!p) return;
    if (a->be) a->be->free(p);
    else free(p);
}

static void fb_remove(arena *a, int i) {
    memmove(&a->fb[i], &a->fb[i + 1], (size_t)(a->nfb - i - 1) * sizeof *a->fb);
    a->nfb--;
}

static int fb_insert(arena *a, char *p, size_t bytes, int c);

static void *arena_alloc(arena *a, size_t bytes) {
    bytes = (bytes + ARENA_ALIGN - 1) & ~(size_t)(ARENA_ALIGN - 1);
    if (bytes == 0) bytes = ARENA_ALIGN;
    int best = -1;
    for (int i = 0; i < a->nfb; i++)
        if (a->fb[i].n >= bytes && (best < 0 || a->fb[i].n < a->fb[best].n)) best = i;
    if (best >= 0) {
        char *p = a->fb[best].p;
        arena_chunk *c = &a->chunk[a->fb[best].chunk];
        if (a->fb[best].n == bytes) fb_remove(a, best);
        else {
            a->fb[best].p += bytes;
            a->fb[best].n -= bytes;
        }
        /* a block in an earlier chunk's unused tail (fb_insert from
         * arena_alloc) lies past that chunk's `used`: count it there */
        size_t top = (size_t)(p + bytes - c->base);
        if (top > c->used) c->used = top;
        if (c->used > c->peak) c->peak = c->used;
        if (a->poison) ARENA_UNPOISON(p, bytes);
        return p;
    }
    if (a->n > 0) {
        arena_chunk *c = &a->chunk[a->n - 1];
        if (c->cap - c->used >= bytes) {
            void *p = c->base + c->used;
            c->used += bytes;
            if (c->used > c->peak) c->peak = c->used;
            if (a->poison) ARENA_UNPOISON(p, bytes);
            return p;
        }
    }
    if (a->n == ARENA_MAX_CHUNKS) return NULL;
    /* doubling; but past a folded block (a step larger than all before it)
     * from 1/8 of the block, not twice it: the fold that follows gives the
     * memory back, but meanwhile (and in the CUDA pool's cache, after) the
     * step would hold 3x its need */
    size_t cap = a->n == 0 ? ((size_t)1 << 20)
                 : a->n == 1 && a->folded ? a->chunk[0].cap / 8
                                          : a->chunk[a->n - 1].cap * 2;
    if (cap < ((size_t)1 << 20)) cap = (size_t)1 << 20;
    if (cap < bytes) cap = bytes;
    char *base = arena_sys_alloc(a, cap);
    if (!base) return NULL;
    if (a->n > 0) { /* the last chunk's unused tail stays usable (best fit) */
        arena_chunk *last = &a->chunk[a->n - 1];
        size_t tail = last->cap - last->used;
        if (tail >= ARENA_ALIGN) fb_insert(a, last->base + last->used, tail, a->n - 1);
    }
    a->chunk[a->n++] = (arena_chunk){base, cap, bytes, bytes};
    return base;
}

/* Puts p (bytes, inside chunk c) on the free list, merged with its
 * neighbours; the last chunk's bump pointer moves down when the merged
 * block is its top. False when the bookkeeping cannot grow (the block then
 * simply stays in use). */
static int fb_insert(arena *a, char *p, size_t bytes, int c) {
    if (a->nfb == a->capfb) {
        int cap = a->capfb ? 2 * a->capfb : 64;
        free_block *nb = realloc(a->fb, (size_t)cap * sizeof *nb);
        if (!nb) return 0;
        a->fb = nb;
        a->capfb = cap;
    }
    if (a->poison) ARENA_POISON(p, bytes);
    int i = 0; /* insertion point: first block after p */
    while (i < a->nfb && (a->fb[i].chunk < c || (a->fb[i].chunk == c && a->fb[i].p < p))) i++;
    memmove(&a->fb[i + 1], &a->fb[i], (size_t)(a->nfb - i) * sizeof *a->fb);
    a->fb[i] = (free_block){p, bytes, c};
    a->nfb++;
    if (i + 1 < a->nfb && a->fb[i + 1].chunk == c && p + bytes == a->fb[i + 1].p) {
        a->fb[i].n += a->fb[i + 1].n;
        fb_remove(a, i + 1);
    }
    if (i > 0 && a->fb[i - 1].chunk == c && a->fb[i - 1].p + a->fb[i - 1].n == p) {
        a->fb[i - 1].n += a->fb[i].n;
        fb_remove(a, i);
        i--;
    }
    arena_chunk *ch = &a->chunk[c];
    if (c == a->n - 1 && a->fb[i].p + a->fb[i].n == ch->base + ch->used) {
        ch->used = (size_t)(a->fb[i].p - ch->base);
        fb_remove(a, i);
    }
    return 1;
}

/* Gives back a block that arena_alloc returned (bytes as asked). Its
 * memory is reused by later allocations of the same step. False when the
 * bookkeeping cannot grow (the block then simply stays in use). */
static int arena_release(arena *a, void *ptr, size_t bytes) {
    bytes = (bytes + ARENA_ALIGN - 1) & ~(size_t)(ARENA_ALIGN - 1);
    if (bytes == 0) bytes = ARENA_ALIGN;
    char *p = ptr;
    int c = -1;
    for (int i = 0; i < a->n; i++)
        if (p >= a->chunk[i].base && p + bytes <= a->chunk[i].base + a->chunk[i].used) c = i;
    LG_ASSERT(c >= 0); /* not from this arena */
    return fb_insert(a, p, bytes, c);
}

static void arena_reset(arena *a) {
    for (int i = 0; i < a->n; i++)
        if (a->poison) ARENA_UNPOISON(a->chunk[i].base, a->chunk[i].cap);
    a->nfb = 0;
    if (a->n > 1) {
        size_t total = 0;
        for (int i = 0; i < a->n; i++) {
            total += a->chunk[i].peak;
            arena_sys_free(a, a->chunk[i].base);
        }
        total += total / 8;
        total = (total + ARENA_ALIGN - 1) & ~(size_t)(ARENA_ALIGN - 1);
        a->n = 0;
        char *base = arena_sys_alloc(a, total);
        if (base) a->chunk[a->n++] = (arena_chunk){base, total, 0, 0};
        a->folded = base != NULL;
        return;
    }
    if (a->n == 1) a->chunk[0].used = a->chunk[0].peak = 0;
}

static void arena_free(arena *a) {
    for (int i = 0; i < a->n; i++) {
        if (a->poison) ARENA_UNPOISON(a->chunk[i].base, a->chunk[i].cap);
        arena_sys_free(a, a->chunk[i].base);
    }
    a->n = 0;
    free(a->fb);
    a->fb = NULL;
    a->nfb = a->capfb = 0;
}

static size_t arena_bytes(const arena *a) {
    size_t t = 0;
    for (int i = 0; i < a->n; i++) t += a->chunk[i].cap;
    return t;
}

/* ---- context ---- */

struct lg_ctx {
    const lg_backend *be;
    arena meta;  /* tensor headers and graph nodes (host) */
    arena data;  /* tensor data (backend memory) */
    lg_status status;
    int grad_enabled;
    lg_node *tail;
    int64_t next_id;
    size_t sys_allocs;
    lg_bn_sync bn_sync; /* fn NULL: batch norm by this process's batch alone */
    /* lg_grad's release tracking (graph.h): the tensor data lg_new made
     * while it runs, with how many gradient slots reference each block */
    struct track_rec {
        float *p;     /* block start (lg_new's data) */
        size_t bytes; /* as asked of the arena */
        int refs;
    } *trk;           /* (ntrk) host bookkeeping, kept across steps */
    int ntrk, captrk, tracking;
};

lg_status lg_ctx_create(lg_ctx **out, const lg_backend *be) {
    *out = NULL;
    lg_ctx *c = calloc(1, sizeof *c);
    if (!c) return lg_error_set(LG_ERR_NOMEM, "out of memory creating a context");
    c->be = be ? be : lg_backend_cpu();
    c->meta.be = NULL;
    c->meta.sys_allocs = &c->sys_allocs;
    c->data.be = c->be;
    c->data.poison = !c->be->is_device; /* host memory: ASan sees a released block */
    c->data.sys_allocs = &c->sys_allocs;
    c->grad_enabled = 1;
    *out = c;
    return LG_OK;
}

void lg_ctx_free(lg_ctx *ctx) {
    if (!ctx) return;
    arena_free(&ctx->meta);
    arena_free(&ctx->data);
    free(ctx->trk);
    free(ctx);
}

void lg_ctx_reset(lg_ctx *ctx) {
    ctx->tracking = 0;
    ctx->ntrk = 0;
    arena_reset(&ctx->meta);
    arena_reset(&ctx->data);
    ctx->status = LG_OK;
    ctx->tail = NULL;
    ctx->next_id = 0;
}

const lg_backend *lg_ctx_backend(const lg_ctx *ctx) { return ctx->be; }
lg_status lg_ctx_status(const lg_ctx *ctx) { return ctx->status; }
size_t lg_ctx_sys_allocs(const lg_ctx *ctx) { return ctx->sys_allocs; }
size_t lg_ctx_arena_bytes(const lg_ctx *ctx) {
    return arena_bytes(&ctx->meta) + arena_bytes(&ctx->data);
}

lg_tensor *lg_ctx_fail(lg_ctx *ctx, lg_status s, const char *fmt, ...) {
    char buf[768];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    if (ctx->status == LG_OK) {  /* keep the first failure's message */
        ctx->status = s;
        lg_error_set(s, "%s", buf);
    }
    return NULL;
}

int lg_ctx_set_grad_enabled(lg_ctx *ctx, int enabled) {
    int old = ctx->grad_enabled;
    ctx->grad_enabled = enabled;
    return old;
}
int lg_ctx_grad_enabled(const lg_ctx *ctx) { return ctx->grad_enabled; }

float *lg_ctx_scratch(lg_ctx *ctx, size_t n) {
    float *p = arena_alloc(&ctx->data, n * sizeof(float));
    if (!p) lg_ctx_fail(ctx, LG_ERR_NOMEM, "out of memory for %zu floats of scratch", n);
    return p;
}

void lg_ctx_scratch_release(lg_ctx *ctx, float *p, size_t n) {
    if (p) arena_release(&ctx->data, p, n * sizeof(float));
}

lg_node *lg_ctx_tape_tail(lg_ctx *ctx) { return ctx->tail; }

/* ---- release tracking for lg_grad (graph.h) ---- */

int lg_ctx_track_begin(lg_ctx *ctx) {
    if (ctx->tracking) return 0;
    ctx->tracking = 1;
    ctx->ntrk = 0;
    return 1;
}

void lg_ctx_track_end(lg_ctx *ctx) {
    ctx->tracking = 0;
    ctx->ntrk = 0;
}

static void track_add(lg_ctx *ctx, float *p, size_t bytes) {
    if (ctx->ntrk == ctx->captrk) {
        int cap = ctx->captrk ? 2 * ctx->captrk : 256;
        struct track_rec *nt = realloc(ctx->trk, (size_t)cap * sizeof *nt);
        if (!nt) return; /* untracked: the block stays until the reset */
        ctx->trk = nt;
        ctx->captrk = cap;
    }
    ctx->trk[ctx->ntrk++] = (struct track_rec){p, bytes, 0};
}

void lg_ctx_track_ref(lg_ctx *ctx, const lg_tensor *t, int delta) {
    if (!ctx->tracking || !t || !t->data) return;
    /* newest first: the blocks referenced most are the recent gradients */
    for (int i = ctx->ntrk - 1; i >= 0; i--) {
        struct track_rec *r = &ctx->trk[i];
        if ((const char *)t->data >= (const char *)r->p &&
            (const char *)t->data < (const char *)r->p + r->bytes) {
            r->refs += delta;
            return;
        }
    }
}

void lg_ctx_track_sweep(lg_ctx *ctx) {
    if (!ctx->tracking) return;
    int k = 0;
    for (int i = 0; i < ctx->ntrk; i++) {
        struct track_rec r = ctx->trk[i];
        if (r.refs <= 0) {
            if (arena_release(&ctx->data, r.p, r.bytes)) continue;
        }
        ctx->trk[k++] = r; /* kept in allocation order */
    }
    ctx->ntrk = k;
}

void lg_ctx_set_bn_sync(lg_ctx *ctx, lg_gather_fn fn, int world, void *user) {
    LG_ASSERT(!fn || world >= 1);
    ctx->bn_sync = (lg_bn_sync){fn, fn ? world : 1, user};
}

const lg_bn_sync *lg_ctx_bn_sync(const lg_ctx *ctx) {
    return ctx->bn_sync.fn ? &ctx->bn_sync : NULL;
}

void *lg_ctx_host_alloc(lg_ctx *ctx, size_t bytes) {
    void *p = arena_alloc(&ctx->meta, bytes);
    if (!p) lg_ctx_fail(ctx, LG_ERR_NOMEM, "out of memory for %zu bytes of host scratch", bytes);
    return p;
}

lg_node *lg_graph_record(lg_ctx *ctx, const lg_op_def *op, lg_tensor *out,
                         int n_src, lg_tensor *const *src) {
    LG_ASSERT(n_src <= LG_NODE_MAX_SRC);
    if (!ctx->grad_enabled || !out) return NULL;
    int any = 0;
    for (int i = 0; i < n_src; i++)
        if (src[i] && src[i]->requires_grad) any = 1;
    if (!any) return NULL;
    lg_node *n = arena_alloc(&ctx->meta, sizeof *n);
    if (!n) {
        lg_ctx_fail(ctx, LG_ERR_NOMEM, "out of memory recording op %s", op->name);
        return NULL;
    }
    memset(n, 0, sizeof *n);
    n->op = op;
    n->n_src = n_src;
    for (int i = 0; i < n_src; i++) n->src[i] = src[i];
    n->out = out;
    n->prev = ctx->tail;
    n->id = ctx->next_id++;
    ctx->tail = n;
    out->node = n;
    out->requires_grad = 1;
    return n;
}

/* ---- tensors ---- */

static int shape_ok(int ndim, const int64_t *shape, int64_t *numel) {
    if (ndim < 1 || ndim > LG_MAX_DIMS) return 0;
    int64_t n = 1;
    for (int i = 0; i < ndim; i++) {
        if (shape[i] < 1 || shape[i] > ((int64_t)1 << 40)) return 0;
        if (n > ((int64_t)1 << 40) / shape[i]) return 0;
        n *= shape[i];
    }
    *numel = n;
    return 1;
}

static lg_tensor *header_new(lg_ctx *ctx, int ndim, const int64_t *shape, float *data) {
    int64_t numel;
    if (!shape_ok(ndim, shape, &numel))
        return lg_ctx_fail(ctx, LG_ERR_SHAPE, "invalid tensor shape (ndim %d)", ndim);
    lg_tensor *t = arena_alloc(&ctx->meta, sizeof *t);
    if (!t) return lg_ctx_fail(ctx, LG_ERR_NOMEM, "out of memory for a tensor header");
    memset(t, 0, sizeof *t);
    t->ndim = ndim;
    for (int i = 0; i < LG_MAX_DIMS; i++) t->shape[i] = i < ndim ? shape[i] : 1;
    t->numel = numel;
    t->data = data;
    return t;
}

lg_tensor *lg_new(lg_ctx *ctx, int ndim, const int64_t *shape) {
    lg_tensor *t = header_new(ctx, ndim, shape, NULL);
    if (!t) return NULL;
    t->data = arena_alloc(&ctx->data, (size_t)t->numel * sizeof(float));
    if (!t->data)
        return lg_ctx_fail(ctx, LG_ERR_NOMEM, "out of memory for a tensor of %lld floats",
                           (long long)t->numel);
    if (ctx->tracking) track_add(ctx, t->data, (size_t)t->numel * sizeof(float));
    return t;
}

lg_tensor *lg_new1(lg_ctx *ctx, int64_t a) { return lg_new(ctx, 1, &a); }
lg_tensor *lg_new2(lg_ctx *ctx, int64_t a, int64_t b) {
    int64_t s[2] = {a, b};
    return lg_new(ctx, 2, s);
}
lg_tensor *lg_new4(lg_ctx *ctx, int64_t n, int64_t c, int64_t h, int64_t w) {
    int64_t s[4] = {n, c, h, w};
    return lg_new(ctx, 4, s);
}

lg_tensor *lg_full(lg_ctx *ctx, int ndim, const int64_t *shape, float value) {
    lg_tensor *t = lg_new(ctx, ndim, shape);
    if (t) ctx->be->fill(t->data, value, (size_t)t->numel);
    return t;
}

lg_tensor *lg_zeros_like(lg_ctx *ctx, const lg_tensor *x) {
    if (!x) return NULL;
    return lg_full(ctx, x->ndim, x->shape, 0.0f);
}

lg_tensor *lg_from_host(lg_ctx *ctx, const float *host, int ndim, const int64_t *shape) {
    lg_tensor *t = lg_new(ctx, ndim, shape);
    if (t) ctx->be->upload(t->data, host, (size_t)t->numel);
    return t;
}

lg_tensor *lg_alias(lg_ctx *ctx, const lg_tensor *x, int ndim, const int64_t *shape) {
    if (!x) return NULL;
    lg_tensor *t = header_new(ctx, ndim, shape, x->data);
    if (!t) return NULL;
    if (t->numel != x->numel)
        return lg_ctx_fail(ctx, LG_ERR_SHAPE, "alias: %lld elements cannot view %lld",
                           (long long)t->numel, (long long)x->numel);
    return t;
}

lg_tensor *lg_slice0(lg_ctx *ctx, const lg_tensor *x, int64_t start, int64_t len) {
    if (!x) return NULL;
    if (start < 0 || len < 1 || start + len > x->shape[0])
        return lg_ctx_fail(ctx, LG_ERR_SHAPE, "slice [%lld,%lld) out of range for dim 0 of %lld",
                           (long long)start, (long long)(start + len), (long long)x->shape[0]);
    int64_t s[LG_MAX_DIMS];
    memcpy(s, x->shape, sizeof s);
    s[0] = len;
    lg_tensor *t = header_new(ctx, x->ndim, s, NULL);
    if (!t) return NULL;
    t->data = x->data + start * (x->numel / x->shape[0]);
    return t;
}

lg_tensor *lg_detach(lg_ctx *ctx, const lg_tensor *x, int requires_grad) {
    if (!x) return NULL;
    lg_tensor *t = lg_new(ctx, x->ndim, x->shape);
    if (!t) return NULL;
    ctx->be->copy(t->data, x->data, (size_t)x->numel);
    t->requires_grad = requires_grad;
    return t;
}

lg_status lg_to_host(lg_ctx *ctx, const lg_tensor *x, float *host) {
    if (!x) return lg_error_set(LG_ERR_INVALID_ARG, "lg_to_host: NULL tensor");
    ctx->be->download(host, x->data, (size_t)x->numel);
    return LG_OK;
}

float lg_item(lg_ctx *ctx, const lg_tensor *x) {
    float v = 0.0f;
    LG_ASSERT(x && x->numel == 1);
    ctx->be->download(&v, x->data, 1);
    return v;
}

void lg_tensor_init(lg_tensor *t, float *data, int ndim, const int64_t *shape) {
    int64_t numel = 0;
    LG_ASSERT(shape_ok(ndim, shape, &numel));
    memset(t, 0, sizeof *t);
    t->ndim = ndim;
    for (int i = 0; i < LG_MAX_DIMS; i++) t->shape[i] = i < ndim ? shape[i] : 1;
    t->numel = numel;
    t->data = data;
}

float *lg_buffer_alloc(const lg_backend *be, size_t nfloats) {
    if (!be) be = lg_backend_cpu();
    size_t bytes = (nfloats ? nfloats : 1) * sizeof(float);
    float *p = be->alloc(bytes);
    if (!p) {
        lg_error_set(LG_ERR_NOMEM, "out of memory allocating %zu bytes on %s", bytes, be->name);
        return NULL;
    }
    be->fill(p, 0.0f, nfloats);
    return p;
}

void lg_buffer_free(const lg_backend *be, float *p) {
    if (!p) return;
    if (!be) be = lg_backend_cpu();
    be->free(p);
}

int lg_same_shape(const lg_tensor *a, const lg_tensor *b) {
    if (a->ndim != b->ndim) return 0;
    for (int i = 0; i < a->ndim; i++)
        if (a->shape[i] != b->shape[i]) return 0;
    return 1;
}

const char *lg_shape_str(const lg_tensor *t, char *buf, size_t cap) {
    size_t off = 0;
    off += (size_t)snprintf(buf + off, cap - off, "(");
    for (int i = 0; i < t->ndim && off < cap; i++)
        off += (size_t)snprintf(buf + off, cap - off, i ? ",%lld" : "%lld", (long long)t->shape[i]);
    if (off < cap) snprintf(buf + off, cap - off, ")");
    return buf;
}

void lg_shape4(const lg_tensor *t, int64_t out[4]) {
    int pad = 4 - t->ndim;
    for (int i = 0; i < 4; i++) out[i] = i < pad ? 1 : t->shape[i - pad];
}
