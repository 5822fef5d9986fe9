/* Spectral monitoring during training and the spectra.bin log
 * (lipgan/monitor.h). Everything runs on host copies of the weights: the
 * exact spectra need LAPACK anyway, and the conv operator norms use the CPU
 * backend's conv and its adjoint on a single input. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <zlib.h>

#include <cblas.h>
#include <lapacke.h>

#include "lipgan/fileio.h"
#include "lipgan/lipschitz.h"
#include "lipgan/monitor.h"

#include "io/bytebuf.h"
#include "lipgan/rng.h"
#include "lipgan/tensor.h"

#define MON_MAX_NETS 8
#define REC_MAGIC 0x43455053u /* "SPEC" little-endian */
#define HDR_BYTES 16

/* Per layer state kept between records. */
typedef struct mon_layer_state {
    lg_collapse_detector det;
    float *tv;      /* (c*h*w) host: warm-start vector of the conv power iteration */
    size_t tvn;
    int have_tv;
} mon_layer_state;

typedef struct mon_net {
    char name[LG_SPECTRA_NET_MAX];
    int nl;
    mon_layer_state *ls;     /* (nl) */
    lg_monitor_layer *last;  /* (nl) the last record; sv owned */
    int have_last;
} mon_net;

struct lg_monitor {
    lg_monitor_opts o;
    int64_t every;
    char *path;              /* run_dir/spectra.bin or NULL */
    FILE *f;                 /* open for appending */
    mon_net nets[MON_MAX_NETS];
    int n_nets;
    lg_ctx *ctx;             /* for the lower bound, created on first use */
};

lg_monitor_opts lg_monitor_opts_default(void) {
    lg_monitor_opts o;
    memset(&o, 0, sizeof o);
    o.be = NULL;
    o.toep_iters = 4;
    o.toep_first_iters = 30;
    o.lower_n = 16;
    o.stat = LG_MONITOR_STAT_AUC;
    o.stat_thresh = LG_COLLAPSE_THRESHOLD;
    o.collapse_drop = LG_COLLAPSE_DROP;
    o.collapse_warmup = LG_COLLAPSE_WARMUP;
    o.resume_step = -1;
    return o;
}

static double now_mono(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static double now_wall(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* ---- little-endian encoding ---- */

typedef lg_bytebuf bbuf;
#define bb_put lg_bytebuf_put

static void bb_u64(bbuf *b, uint64_t v) {
    unsigned char s[8];
    for (int i = 0; i < 8; i++) s[i] = (unsigned char)(v >> (8 * i));
    bb_put(b, s, 8);
}
static void bb_u32(bbuf *b, uint32_t v) {
    unsigned char s[4];
    for (int i = 0; i < 4; i++) s[i] = (unsigned char)(v >> (8 * i));
    bb_put(b, s, 4);
}
static void bb_u8(bbuf *b, unsigned v) {
    unsigned char c = (unsigned char)v;
    bb_put(b, &c, 1);
}
static void bb_f64(bbuf *b, double v) {
    uint64_t u;
    memcpy(&u, &v, 8);
    bb_u64(b, u);
}
static void bb_f32(bbuf *b, float v) {
    uint32_t u;
    memcpy(&u, &v, 4);
    bb_u32(b, u);
}
static void bb_str(bbuf *b, const char *s, size_t width) {
    char tmp[64] = {0};
    size_t l = strlen(s);
    if (l >= width) l = width - 1;
    memcpy(tmp, s, l);
    bb_put(b, tmp, width);
}

static uint32_t rd_u32(const unsigned char *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
static uint64_t rd_u64(const unsigned char *p) {
    return (uint64_t)rd_u32(p) | (uint64_t)rd_u32(p + 4) << 32;
}

static void file_header(unsigned char h[HDR_BYTES]) {
    memcpy(h, LG_SPECTRA_MAGIC, 8);
    for (int i = 0; i < 4; i++) h[8 + i] = (unsigned char)((uint32_t)LG_SPECTRA_VERSION >> (8 * i));
    for (int i = 0; i < 4; i++) h[12 + i] = (unsigned char)((uint32_t)HDR_BYTES >> (8 * i));
}

/* Appends one framed record (magic, length, body, crc) to b. */
static void encode_record(bbuf *b, const lg_spectra_record *r) {
    bbuf body = {0};
    bb_u64(&body, (uint64_t)r->step);
    bb_f64(&body, r->wall_time);
    bb_str(&body, r->net, LG_SPECTRA_NET_MAX);
    bb_u32(&body, (uint32_t)r->n_layers);
    bb_u32(&body, LG_SPECTRA_NET_SCALARS);
    bb_f64(&body, r->lip_upper_product);
    bb_f64(&body, r->lip_upper);
    bb_f64(&body, r->lip_lower);
    for (int i = 0; i < r->n_layers; i++) {
        const lg_monitor_layer *l = &r->layers[i];
        bb_str(&body, l->name, LG_SPECTRA_NAME_MAX);
        bb_u8(&body, (unsigned)l->kind);
        bb_u8(&body, (unsigned)l->lip);
        bb_u8(&body, (unsigned)l->event);
        bb_u8(&body, 0);
        bb_u32(&body, (uint32_t)l->nsv);
        bb_u64(&body, (uint64_t)l->rows);
        bb_u64(&body, (uint64_t)l->cols);
        bb_u32(&body, LG_SPECTRA_LAYER_SCALARS);
        const double sc[LG_SPECTRA_LAYER_SCALARS] = {l->sigma_exact, l->sigma1,  l->ratio01,
                                                      l->r,           l->sigma_est, l->op_norm,
                                                      l->op_norm_delta, l->eff_norm, l->auc,
                                                      l->frac_above};
        for (int k = 0; k < LG_SPECTRA_LAYER_SCALARS; k++) bb_f64(&body, sc[k]);
        for (int k = 0; k < l->nsv; k++) bb_f32(&body, l->sv[k]);
    }
    if (body.oom) {
        b->oom = 1;
        free(body.p);
        return;
    }
    bb_u32(b, REC_MAGIC);
    bb_u32(b, (uint32_t)body.n);
    bb_put(b, body.p, body.n);
    bb_u32(b, (uint32_t)crc32(0L, body.p, (uInt)body.n));
    free(body.p);
}

/* ---- reading ---- */

typedef struct rcur {
    const unsigned char *p;
    size_t n, i;
    int bad;
} rcur;

static const unsigned char *rc_take(rcur *c, size_t n) {
    if (c->bad || n > c->n - c->i) {
        c->bad = 1;
        return NULL;
    }
    const unsigned char *q = c->p + c->i;
    c->i += n;
    return q;
}
static uint32_t rc_u32(rcur *c) {
    const unsigned char *q = rc_take(c, 4);
    return q ? rd_u32(q) : 0;
}
static uint64_t rc_u64(rcur *c) {
    const unsigned char *q = rc_take(c, 8);
    return q ? rd_u64(q) : 0;
}
static double rc_f64(rcur *c) {
    uint64_t u = rc_u64(c);
    double v;
    memcpy(&v, &u, 8);
    return v;
}
static void rc_str(rcur *c, char *dst, size_t width) {
    const unsigned char *q = rc_take(c, width);
    if (!q) {
        dst[0] = '\0';
        return;
    }
    memcpy(dst, q, width);
    dst[width - 1] = '\0';
}

static void record_free(lg_spectra_record *r) {
    if (!r->layers) return;
    for (int i = 0; i < r->n_layers; i++) free(r->layers[i].sv);
    free(r->layers);
    r->layers = NULL;
}

/* Decodes one body; 0 on success, -1 on a malformed body, -2 out of memory. */
static int decode_body(const unsigned char *p, size_t n, lg_spectra_record *r) {
    memset(r, 0, sizeof *r);
    rcur c = {p, n, 0, 0};
    r->step = (int64_t)rc_u64(&c);
    r->wall_time = rc_f64(&c);
    rc_str(&c, r->net, LG_SPECTRA_NET_MAX);
    uint32_t nl = rc_u32(&c), ns = rc_u32(&c);
    if (c.bad || ns > 1000 || nl > 100000) return -1;
    double nsc[LG_SPECTRA_NET_SCALARS] = {NAN, NAN, NAN};
    for (uint32_t k = 0; k < ns; k++) {
        double v = rc_f64(&c);
        if (k < LG_SPECTRA_NET_SCALARS) nsc[k] = v;
    }
    r->lip_upper_product = nsc[0];
    r->lip_upper = nsc[1];
    r->lip_lower = nsc[2];
    if (c.bad) return -1;
    /* each layer takes at least 48 + 4 + 4 + 16 + 4 bytes */
    if ((size_t)nl > (n - c.i) / 76 + 1) return -1;
    r->layers = calloc(nl ? nl : 1, sizeof *r->layers);
    if (!r->layers) return -2;
    r->n_layers = (int)nl;
    for (uint32_t i = 0; i < nl; i++) {
        lg_monitor_layer *l = &r->layers[i];
        rc_str(&c, l->name, LG_SPECTRA_NAME_MAX);
        const unsigned char *q = rc_take(&c, 4);
        if (!q) return -1;
        l->kind = q[0];
        l->lip = q[1];
        l->event = q[2];
        uint32_t nsv = rc_u32(&c);
        l->rows = (int64_t)rc_u64(&c);
        l->cols = (int64_t)rc_u64(&c);
        uint32_t ls = rc_u32(&c);
        if (c.bad || ls > 1000 || nsv > (n - c.i) / 4) return -1;
        double sc[LG_SPECTRA_LAYER_SCALARS];
        for (int k = 0; k < LG_SPECTRA_LAYER_SCALARS; k++) sc[k] = NAN;
        for (uint32_t k = 0; k < ls; k++) {
            double v = rc_f64(&c);
            if (k < LG_SPECTRA_LAYER_SCALARS) sc[k] = v;
        }
        l->sigma_exact = sc[0];
        l->sigma1 = sc[1];
        l->ratio01 = sc[2];
        l->r = sc[3];
        l->sigma_est = sc[4];
        l->op_norm = sc[5];
        l->op_norm_delta = sc[6];
        l->eff_norm = sc[7];
        l->auc = sc[8];
        l->frac_above = sc[9];
        l->nsv = (int)nsv;
        const unsigned char *sv = rc_take(&c, (size_t)nsv * 4);
        if (!sv) return -1;
        l->sv = malloc((nsv ? nsv : 1) * sizeof(float));
        if (!l->sv) return -2;
        for (uint32_t k = 0; k < nsv; k++) {
            uint32_t u = rd_u32(sv + 4 * k);
            memcpy(&l->sv[k], &u, 4);
        }
    }
    return c.i == n ? 0 : -1;
}

void lg_spectra_log_free(lg_spectra_log *log) {
    if (!log) return;
    for (int i = 0; i < log->n; i++) record_free(&log->rec[i]);
    free(log->rec);
    memset(log, 0, sizeof *log);
}

lg_status lg_spectra_read(const char *path, lg_spectra_log *out) {
    memset(out, 0, sizeof *out);
    unsigned char *buf;
    size_t len;
    LG_TRY(lg_file_read_all(path, &buf, &len));
    lg_status st = LG_OK;
    if (len < HDR_BYTES || memcmp(buf, LG_SPECTRA_MAGIC, 8) != 0) {
        st = lg_error_set(LG_ERR_FORMAT, "%s: not a lipgan spectra file (no %s header)", path,
                          LG_SPECTRA_MAGIC);
        goto done;
    }
    uint32_t ver = rd_u32(buf + 8), hb = rd_u32(buf + 12);
    if (ver != LG_SPECTRA_VERSION || hb < HDR_BYTES || hb > len) {
        st = lg_error_set(LG_ERR_FORMAT, "%s: spectra file version %u (header %u bytes); this lipgan reads version %d",
                          path, ver, hb, LG_SPECTRA_VERSION);
        goto done;
    }
    int cap = 0;
    for (size_t i = hb; i < len;) {
        size_t left = len - i;
        if (left < 12) { /* a few bytes of a record that never got written */
            out->truncated = 1;
            break;
        }
        uint32_t magic = rd_u32(buf + i), bl = rd_u32(buf + i + 4);
        if (magic != REC_MAGIC) {
            st = lg_error_set(LG_ERR_FORMAT, "%s: bad record magic at byte %zu (record %d); the file is corrupt",
                              path, i, out->n);
            goto done;
        }
        if ((uint64_t)bl + 12 > left) {
            out->truncated = 1;  /* the partial append of a crash */
            break;
        }
        const unsigned char *body = buf + i + 8;
        if ((uint32_t)crc32(0L, body, bl) != rd_u32(body + bl)) {
            st = lg_error_set(LG_ERR_FORMAT, "%s: record %d (byte %zu) fails its CRC; the file is corrupt",
                              path, out->n, i);
            goto done;
        }
        if (out->n == cap) {
            int nc = cap ? 2 * cap : 64;
            lg_spectra_record *q = realloc(out->rec, (size_t)nc * sizeof *q);
            if (!q) {
                st = lg_error_set(LG_ERR_NOMEM, "%s: out of memory", path);
                goto done;
            }
            out->rec = q;
            cap = nc;
        }
        int rc = decode_body(body, bl, &out->rec[out->n]);
        out->n++;
        if (rc == -2) {
            st = lg_error_set(LG_ERR_NOMEM, "%s: out of memory", path);
            goto done;
        }
        if (rc != 0) {
            st = lg_error_set(LG_ERR_FORMAT, "%s: record %d (byte %zu) is malformed", path, out->n - 1, i);
            goto done;
        }
        i += (size_t)bl + 12;
    }
done:
    free(buf);
    if (st != LG_OK) lg_spectra_log_free(out);
    return st;
}

/* ---- per-network state ---- */

static void net_free(mon_net *n) {
    for (int i = 0; i < n->nl; i++) {
        if (n->ls) free(n->ls[i].tv);
        if (n->last) free(n->last[i].sv);
    }
    free(n->ls);
    free(n->last);
    memset(n, 0, sizeof *n);
}

static mon_net *net_find(lg_monitor *mon, const char *name) {
    for (int i = 0; i < mon->n_nets; i++)
        if (strcmp(mon->nets[i].name, name) == 0) return &mon->nets[i];
    return NULL;
}

/* (Re)initializes n for nl layers with the given names and spectrum sizes. */
static lg_status net_init(const lg_monitor *mon, mon_net *n, const char *name, int nl,
                          const char *const *names, const int *nsv) {
    net_free(n);
    snprintf(n->name, sizeof n->name, "%s", name);
    n->ls = calloc(nl ? nl : 1, sizeof *n->ls);
    n->last = calloc(nl ? nl : 1, sizeof *n->last);
    if (!n->ls || !n->last) goto nomem;
    n->nl = nl;
    for (int i = 0; i < nl; i++) {
        lg_collapse_detector_init(&n->ls[i].det, mon->o.collapse_drop, mon->o.collapse_warmup);
        snprintf(n->last[i].name, sizeof n->last[i].name, "%s", names[i]);
        n->last[i].nsv = nsv[i];
        if (!(n->last[i].sv = calloc(nsv[i] > 0 ? nsv[i] : 1, sizeof(float)))) goto nomem;
    }
    return LG_OK;
nomem:
    net_free(n);
    return lg_error_set(LG_ERR_NOMEM, "monitor: out of memory");
}

static double stat_of(const lg_monitor *mon, double auc, double frac) {
    return mon->o.stat == LG_MONITOR_STAT_FRAC_ABOVE ? frac : auc;
}

/* Replays the kept records of a resumed run through the detectors. */
static lg_status replay(lg_monitor *mon, const lg_spectra_log *log) {
    for (int r = 0; r < log->n; r++) {
        const lg_spectra_record *rec = &log->rec[r];
        mon_net *n = net_find(mon, rec->net);
        int same = n && n->nl == rec->n_layers;
        for (int i = 0; same && i < n->nl; i++) same = strcmp(n->last[i].name, rec->layers[i].name) == 0;
        if (!same) {
            if (!n) {
                if (mon->n_nets == MON_MAX_NETS) continue;
                n = &mon->nets[mon->n_nets++];
            }
            const char **names = malloc((rec->n_layers ? rec->n_layers : 1) * sizeof *names);
            int *nsv = malloc((rec->n_layers ? rec->n_layers : 1) * sizeof *nsv);
            lg_status st = names && nsv ? LG_OK : lg_error_set(LG_ERR_NOMEM, "monitor: out of memory");
            for (int i = 0; st == LG_OK && i < rec->n_layers; i++) {
                names[i] = rec->layers[i].name;
                nsv[i] = rec->layers[i].nsv;
            }
            if (st == LG_OK) st = net_init(mon, n, rec->net, rec->n_layers, names, nsv);
            free(names);
            free(nsv);
            LG_TRY(st);
        }
        for (int i = 0; i < n->nl; i++) {
            const lg_monitor_layer *l = &rec->layers[i];
            lg_collapse_detector_update(&n->ls[i].det, rec->step, stat_of(mon, l->auc, l->frac_above));
        }
    }
    return LG_OK;
}

lg_status lg_monitor_create(lg_monitor **out, const char *run_dir, int64_t every,
                            const lg_monitor_opts *opts) {
    *out = NULL;
    if (every < 1) return lg_error_set(LG_ERR_INVALID_ARG, "monitor: every = %lld; must be >= 1", (long long)every);
    lg_monitor *mon = calloc(1, sizeof *mon);
    if (!mon) return lg_error_set(LG_ERR_NOMEM, "monitor: out of memory");
    mon->o = opts ? *opts : lg_monitor_opts_default();
    if (mon->o.toep_iters < 1) mon->o.toep_iters = 1;
    if (mon->o.toep_first_iters < mon->o.toep_iters) mon->o.toep_first_iters = mon->o.toep_iters;
    if (mon->o.lower_n < 0) mon->o.lower_n = 0;
    if (!(mon->o.stat_thresh > 0)) mon->o.stat_thresh = LG_COLLAPSE_THRESHOLD;
    mon->every = every;
    lg_status st = LG_OK;
    if (run_dir) {
        size_t pl = strlen(run_dir) + sizeof(LG_SPECTRA_FILE) + 2;
        if (!(mon->path = malloc(pl))) {
            st = lg_error_set(LG_ERR_NOMEM, "monitor: out of memory");
            goto fail;
        }
        snprintf(mon->path, pl, "%s/%s", run_dir, LG_SPECTRA_FILE);
        int fresh = 1;
        if (mon->o.resume_step >= 0) {
            lg_spectra_log log;
            st = lg_spectra_read(mon->path, &log);
            if (st == LG_ERR_NOT_FOUND) {
                lg_error_clear();
                st = LG_OK;
            } else if (st == LG_ERR_FORMAT) {
                /* a damaged log must not block resuming the training: keep
                 * it aside for inspection and start a new one */
                char *aside = malloc(pl + 8);
                if (aside) snprintf(aside, pl + 8, "%s.corrupt", mon->path);
                if (!aside || rename(mon->path, aside) != 0) {
                    st = lg_error_set(LG_ERR_IO, "monitor: %s is corrupt and cannot be moved aside", mon->path);
                    free(aside);
                    goto fail;
                }
                free(aside);
                lg_error_clear();
                st = LG_OK;
            } else if (st != LG_OK) {
                goto fail;
            } else {
                fresh = 0;
                int nkeep = 0;
                for (int i = 0; i < log.n; i++) nkeep += log.rec[i].step <= mon->o.resume_step;
                if (nkeep != log.n || log.truncated) {
                    bbuf b = {0};
                    unsigned char h[HDR_BYTES];
                    file_header(h);
                    bb_put(&b, h, HDR_BYTES);
                    int w = 0;
                    for (int i = 0; i < log.n; i++) {
                        if (log.rec[i].step > mon->o.resume_step) {
                            record_free(&log.rec[i]);
                            continue;
                        }
                        encode_record(&b, &log.rec[i]);
                        log.rec[w++] = log.rec[i];
                    }
                    log.n = w;
                    st = b.oom ? lg_error_set(LG_ERR_NOMEM, "monitor: out of memory")
                               : lg_file_write_atomic(mon->path, b.p, b.n);
                    free(b.p);
                }
                if (st == LG_OK) st = replay(mon, &log);
                lg_spectra_log_free(&log);
                if (st != LG_OK) goto fail;
            }
        }
        if (fresh) {
            unsigned char h[HDR_BYTES];
            file_header(h);
            if ((st = lg_file_write_atomic(mon->path, h, HDR_BYTES)) != LG_OK) goto fail;
        }
        if (!(mon->f = fopen(mon->path, "ab"))) {
            st = lg_error_set(LG_ERR_IO, "monitor: cannot open %s for appending: %s", mon->path, strerror(errno));
            goto fail;
        }
    }
    *out = mon;
    return LG_OK;
fail:
    lg_monitor_free(mon);
    return st;
}

void lg_monitor_free(lg_monitor *mon) {
    if (!mon) return;
    for (int i = 0; i < mon->n_nets; i++) net_free(&mon->nets[i]);
    if (mon->f) fclose(mon->f);
    if (mon->ctx) lg_ctx_free(mon->ctx);
    free(mon->path);
    free(mon);
}

int lg_monitor_due(const lg_monitor *mon, int64_t step) { return step % mon->every == 0; }

const lg_monitor_layer *lg_monitor_last(const lg_monitor *mon, const char *net, int *n) {
    for (int i = 0; i < mon->n_nets; i++)
        if (strcmp(mon->nets[i].name, net) == 0 && mon->nets[i].have_last) {
            *n = mon->nets[i].nl;
            return mon->nets[i].last;
        }
    *n = 0;
    return NULL;
}

/* ---- the analysis of one layer ---- */

/* Singular values of a (rows, cols) host matrix, descending: the square
 * roots of the eigenvalues of the smaller Gram matrix (double; dsyrk +
 * dsyevd), ~10x faster than dgesdd on 256 x 2304 and accurate to ~1e-8 s_1
 * in absolute terms, which is far below what float weights carry. */
static lg_status gram_svals(const float *a, int64_t rows, int64_t cols, double *s) {
    const int64_t k = rows < cols ? rows : cols, l = rows < cols ? cols : rows;
    LG_ASSERT(k >= 1);
    double *d = malloc((size_t)(rows * cols) * sizeof(double)); /* (rows, cols) */
    double *g = malloc((size_t)(k * k) * sizeof(double));       /* (k, k) */
    lg_status st = LG_OK;
    if (!d || !g) {
        st = lg_error_set(LG_ERR_NOMEM, "monitor: out of memory");
        goto out;
    }
    for (int64_t i = 0; i < rows * cols; i++) {
        d[i] = a[i];
        if (!isfinite(d[i])) {
            st = lg_error_set(LG_ERR_NONFINITE, "weight element %lld is %g", (long long)i, d[i]);
            goto out;
        }
    }
    /* rows <= cols: G = A A^T; else G = A^T A (row-major A) */
    cblas_dsyrk(CblasRowMajor, CblasUpper, rows <= cols ? CblasNoTrans : CblasTrans, (int)k, (int)l, 1.0, d,
                (int)cols, 0.0, g, (int)k);
    double *ev = d; /* (k) reuse */
    if (LAPACKE_dsyevd(LAPACK_ROW_MAJOR, 'N', 'U', (lapack_int)k, g, (lapack_int)k, ev) != 0) {
        st = lg_error_set(LG_ERR_NONFINITE, "eigenvalues of a %lld x %lld Gram matrix failed", (long long)k,
                          (long long)k);
        goto out;
    }
    for (int64_t i = 0; i < k; i++) s[i] = sqrt(ev[k - 1 - i] > 0 ? ev[k - 1 - i] : 0.0);
out:
    free(d);
    free(g);
    return st;
}

static double dnorm(const float *x, size_t n) {
    double s = 0;
    for (size_t i = 0; i < n; i++) s += (double)x[i] * x[i];
    return sqrt(s);
}

static void dscale(float *x, size_t n, double d) {
    if (d < 1e-30) d = 1e-30;
    for (size_t i = 0; i < n; i++) x[i] = (float)(x[i] / d);
}

/* The conv operator of a weight layer on one input: a conv layer's own
 * geometry; a transposed conv as its adjoint conv (weight (cin, cout, k, k)
 * read as (oc, c, k, k) on the (cout, out_h, out_w) output space; an
 * operator and its adjoint have the same norm). */
void lg_monitor_layer_geom(const lg_layer_info *L, lg_conv_geom *g) {
    const int64_t *s = L->w->shape;
    int h = L->in_h, w = L->in_w;
    if (L->kind == LG_LAYER_CONVT) {
        h = (L->in_h - 1) * L->stride - 2 * L->pad + (int)s[2];
        w = (L->in_w - 1) * L->stride - 2 * L->pad + (int)s[3];
    }
    *g = (lg_conv_geom){1, (int)s[1], h, w, (int)s[0], (int)s[2], (int)s[3], L->stride, L->pad, 0, 0};
    g->oh = lg_conv_out_size(h, g->kh, L->stride, L->pad);
    g->ow = lg_conv_out_size(w, g->kw, L->stride, L->pad);
}

/* Warm-started power iteration on the conv operator; also ||T u_est|| for a
 * Toeplitz layer's stored vector (u_est, a host copy, may be NULL; prime:
 * first run the iterations an evaluation forward of an unprimed state
 * would). */
static lg_status conv_norm(const lg_monitor *mon, mon_layer_state *ls, const lg_layer_info *L,
                           const float *w, float *u_est, int prime, lg_monitor_layer *out, uint64_t seed) {
    const lg_backend *cpu = lg_backend_cpu();
    lg_conv_geom g;
    lg_monitor_layer_geom(L, &g);
    if (g.oh < 1 || g.ow < 1)
        return lg_error_set(LG_ERR_SHAPE, "monitor: layer %s: conv does not fit its input %dx%d", L->name, g.h, g.w);
    const size_t nin = (size_t)g.c * g.h * g.w, nout = (size_t)g.oc * g.oh * g.ow;
    size_t nws = cpu->conv_workspace(&g);
    float *y = malloc(nout * sizeof(float));   /* (oc, oh, ow) */
    float *ws = malloc((nws ? nws : 1) * sizeof(float));
    lg_status st = LG_OK;
    if (!y || !ws) {
        st = lg_error_set(LG_ERR_NOMEM, "monitor: out of memory");
        goto out;
    }
    int iters = mon->o.toep_iters;
    if (!ls->have_tv || ls->tvn != nin) {
        free(ls->tv);
        ls->tv = malloc(nin * sizeof(float));  /* (c, h, w) */
        if (!ls->tv) {
            ls->tvn = 0;
            ls->have_tv = 0;
            st = lg_error_set(LG_ERR_NOMEM, "monitor: out of memory");
            goto out;
        }
        ls->tvn = nin;
        lg_rng r;
        lg_rng_init(&r, seed, LG_RNG_STREAM_SN);
        lg_rng_fill_normal(&r, ls->tv, nin, 0.0f, 1.0f);
        dscale(ls->tv, nin, dnorm(ls->tv, nin));
        ls->have_tv = 1;
        iters = mon->o.toep_first_iters;
    }
    float *x = ls->tv;
    double est = 0, prev = NAN;
    for (int it = 0; it < iters; it++) {
        cpu->conv2d(y, x, w, &g, ws);
        dscale(y, nout, dnorm(y, nout));
        cpu->conv2d_bwd_data(x, y, w, &g, ws);
        /* ||T^T y|| for unit y = Tx/||Tx|| is >= ||Tx||, and <= sigma(T) */
        prev = est;
        est = dnorm(x, nin);
        dscale(x, nin, est);
    }
    out->op_norm = est;
    out->op_norm_delta = iters > 1 && est > 0 ? fabs(est - prev) / est : NAN;
    if (u_est) {
        /* an unprimed Toeplitz state is primed by an evaluation forward */
        for (int it = 0; prime && it < LG_SN_PRIME_ITERS; it++) {
            cpu->conv2d(y, u_est, w, &g, ws);
            dscale(y, nout, dnorm(y, nout));
            cpu->conv2d_bwd_data(u_est, y, w, &g, ws);
            dscale(u_est, nin, dnorm(u_est, nin));
        }
        cpu->conv2d(y, u_est, w, &g, ws);
        out->sigma_est = dnorm(y, nout);
    }
out:
    free(y);
    free(ws);
    return st;
}

static lg_status analyze_layer(lg_monitor *mon, mon_layer_state *ls, const lg_layer_info *L,
                               lg_monitor_layer *out, uint64_t seed) {
    const lg_backend *be = mon->o.be ? mon->o.be : lg_backend_cpu();
    const lg_tensor *wt = L->w;
    int64_t rows, cols;
    LG_TRY(lg_weight_mat_dims(wt->ndim, wt->shape, L->out_dim, &rows, &cols));
    const int64_t nsv = rows < cols ? rows : cols;
    out->kind = L->kind;
    out->lip = L->lip;
    out->rows = rows;
    out->cols = cols;
    out->sigma_est = NAN;
    float *w = malloc((size_t)wt->numel * sizeof(float));   /* the weight's layout */
    float *mat = malloc((size_t)wt->numel * sizeof(float)); /* (rows, cols) */
    double *s = malloc((size_t)nsv * sizeof(double));        /* (nsv) */
    float *u = NULL, *v = NULL;
    lg_status st = LG_OK;
    if (!w || !mat || !s) {
        st = lg_error_set(LG_ERR_NOMEM, "monitor: out of memory");
        goto out;
    }
    be->download(w, wt->data, (size_t)wt->numel);
    lg_weight_to_mat(w, wt->ndim, wt->shape, L->out_dim, mat);
    if ((st = gram_svals(mat, rows, cols, s)) != LG_OK) {
        lg_error_set(st, "monitor: layer %s: %s", L->name, lg_error_msg());
        goto out;
    }
    if (nsv != out->nsv) {
        st = lg_error_set(LG_ERR_INVALID_ARG, "monitor: layer %s changed its shape", L->name);
        goto out;
    }
    for (int64_t i = 0; i < nsv; i++) out->sv[i] = (float)s[i];
    out->sigma_exact = s[0];
    out->sigma1 = nsv > 1 ? s[1] : 0.0;
    out->ratio01 = out->sigma1 > 0 ? s[0] / out->sigma1 : INFINITY;
    out->r = lg_rank_ratio_exact(s, nsv, cols);
    lg_spectrum_stat ss;
    if ((st = lg_spectrum_collapse_stat(s, (int)nsv, mon->o.stat_thresh, &ss)) != LG_OK) goto out;
    out->auc = ss.auc;
    out->frac_above = ss.frac_above;

    if (L->lip == LG_LIP_SN && L->lip_state) {
        const lg_sn_state *sn = L->lip_state;
        u = malloc((size_t)rows * sizeof(float)); /* (rows) */
        v = malloc((size_t)cols * sizeof(float)); /* (cols) */
        if (!u || !v) {
            st = lg_error_set(LG_ERR_NOMEM, "monitor: out of memory");
            goto out;
        }
        sn->be->download(u, sn->u, (size_t)rows);
        sn->be->download(v, sn->v, (size_t)cols);
        /* a never-updated state is primed by an evaluation forward
         * (lipschitz.h); do the same on the copies */
        for (int it = 0; !sn->primed && it < LG_SN_PRIME_ITERS; it++) {
            for (int64_t j = 0; j < cols; j++) {
                double acc = 0;
                for (int64_t i = 0; i < rows; i++) acc += (double)mat[i * cols + j] * u[i];
                v[j] = (float)acc;
            }
            dscale(v, (size_t)cols, dnorm(v, (size_t)cols));
            for (int64_t i = 0; i < rows; i++) {
                double acc = 0;
                for (int64_t j = 0; j < cols; j++) acc += (double)mat[i * cols + j] * v[j];
                u[i] = (float)acc;
            }
            dscale(u, (size_t)rows, dnorm(u, (size_t)rows));
        }
        double sg = 0;
        for (int64_t i = 0; i < rows; i++) {
            double acc = 0;
            for (int64_t j = 0; j < cols; j++) acc += (double)mat[i * cols + j] * v[j];
            sg += u[i] * acc;
        }
        out->sigma_est = sg;
    }
    if (L->kind == LG_LAYER_LINEAR) {
        out->op_norm = out->sigma_exact;
        out->op_norm_delta = 0.0;
    } else {
        float *ue = NULL;
        if (L->lip == LG_LIP_TOEPLITZ && L->lip_state) {
            const lg_toep_state *ts = L->lip_state;
            size_t n = (size_t)ts->c * ts->h * ts->w;
            u = malloc(n * sizeof(float)); /* (c, h, w) */
            if (!u) {
                st = lg_error_set(LG_ERR_NOMEM, "monitor: out of memory");
                goto out;
            }
            ts->be->download(u, ts->u, n);
            ue = u;
        }
        int prime = L->lip == LG_LIP_TOEPLITZ && L->lip_state && !((const lg_toep_state *)L->lip_state)->primed;
        if ((st = conv_norm(mon, ls, L, w, ue, prime, out, seed)) != LG_OK) goto out;
    }
    double scale = L->lip_scale > 0 ? L->lip_scale : 1.0;
    out->eff_norm = L->lip == LG_LIP_NONE || !L->lip_state ? out->op_norm
                                                          : scale * out->op_norm / out->sigma_est;
out:
    free(w);
    free(mat);
    free(s);
    free(u);
    free(v);
    return st;
}

/* ---- network bounds ---- */

static double eff_of(const lg_monitor_layer *ls, int nl, const char *name) {
    for (int i = 0; i < nl; i++)
        if (strcmp(ls[i].name, name) == 0) return ls[i].eff_norm;
    return NAN;
}

/* The architecture-aware upper bound (monitor.h), NaN where not known. */
static double arch_upper(const lg_model *m, const lg_monitor_layer *ls, int nl, double product) {
    const lg_model_spec *sp = lg_model_get_spec(m);
    if (sp->role != LG_NET_D) return NAN;
    /* batch norm rescales by batch statistics: no bound from the weights */
    if (sp->arch == LG_ARCH_CNN || sp->arch == LG_ARCH_MLP) return sp->batchnorm ? NAN : product;
    if (sp->arch != LG_ARCH_RESNET) return NAN;
    /* model_resnet.c: a block with a shortcut conv downsamples (2x2 average
     * pooling on both branches); without one it is an identity shortcut */
    double L = 1.0;
    int size = sp->img_size;
    for (int b = 1;; b++) {
        char n1[32], n2[32], ns[32];
        snprintf(n1, sizeof n1, "block%d.c1", b);
        snprintf(n2, sizeof n2, "block%d.c2", b);
        snprintf(ns, sizeof ns, "block%d.c_sc", b);
        double c1 = eff_of(ls, nl, n1), c2 = eff_of(ls, nl, n2), sc = eff_of(ls, nl, ns);
        if (isnan(c1)) {
            if (b == 1) return NAN;
            break;
        }
        if (isnan(c2)) return NAN;
        if (isnan(sc)) {
            L *= c1 * c2 + 1.0;
        } else {
            L *= 0.5 * c1 * c2 + 0.5 * sc;
            size /= 2;
        }
    }
    double l5 = eff_of(ls, nl, "l5");
    if (isnan(l5)) return NAN;
    return L * (double)size * l5;  /* sum over size^2 positions: norm size */
}

typedef struct critic_ud {
    lg_model *m;
} critic_ud;

static lg_tensor *eval_critic(lg_ctx *ctx, lg_tensor *x, void *user) {
    return lg_model_forward(ctx, ((critic_ud *)user)->m, x, 0);
}

static lg_status lower_bound(lg_monitor *mon, lg_model *m, const float *x, int n, double *out) {
    *out = NAN;
    const lg_model_spec *sp = lg_model_get_spec(m);
    if (!x || n <= 0 || mon->o.lower_n <= 0 || sp->role != LG_NET_D) return LG_OK;
    if (!mon->ctx) LG_TRY(lg_ctx_create(&mon->ctx, mon->o.be));
    int nb = n < mon->o.lower_n ? n : mon->o.lower_n;
    int64_t shape[4] = {nb, sp->img_c, sp->img_size, sp->img_size};
    int nd = 4;
    if (sp->data_dim > 0) {
        shape[1] = sp->data_dim;
        nd = 2;
    }
    lg_tensor *xt = lg_from_host(mon->ctx, x, nd, shape);
    critic_ud ud = {m};
    float lo = NAN;
    lg_status st = xt ? lg_lipschitz_lower(mon->ctx, eval_critic, &ud, xt, &lo) : lg_ctx_status(mon->ctx);
    lg_ctx_reset(mon->ctx);
    if (st != LG_OK) return lg_error_set(st, "monitor: lower bound: %s", lg_error_msg());
    *out = lo;
    return LG_OK;
}

static const mon_net *net_match(const lg_monitor *mon, const char *net, const lg_model *m);

/* The state of network `net` for model m: found, or (first record of the
 * net, or its model changed) created fresh. */
static lg_status net_for_model(lg_monitor *mon, const char *net, const lg_model *m, mon_net **out) {
    const int nl = lg_model_num_layers(m);
    mon_net *nt = net_find(mon, net);
    const int same = nt && net_match(mon, net, m) == nt;
    if (!same) { /* first record of this net (or a changed model): fresh state */
        int added = !nt;
        if (!nt) {
            if (mon->n_nets == MON_MAX_NETS)
                return lg_error_set(LG_ERR_INVALID_ARG, "monitor: more than %d networks", MON_MAX_NETS);
            nt = &mon->nets[mon->n_nets++];
        }
        const char **names = malloc((nl ? nl : 1) * sizeof *names);
        int *nsv = malloc((nl ? nl : 1) * sizeof *nsv);
        lg_status st = names && nsv ? LG_OK : lg_error_set(LG_ERR_NOMEM, "monitor: out of memory");
        for (int i = 0; st == LG_OK && i < nl; i++) {
            const lg_layer_info *L = lg_model_layer(m, i);
            int64_t r, c;
            st = lg_weight_mat_dims(L->w->ndim, L->w->shape, L->out_dim, &r, &c);
            names[i] = L->name;
            nsv[i] = (int)(r < c ? r : c);
        }
        if (st == LG_OK) st = net_init(mon, nt, net, nl, names, nsv);
        free(names);
        free(nsv);
        if (st != LG_OK) {
            if (added) mon->n_nets--;  /* net_init left nt zeroed */
            else nt->name[0] = '\0';  /* zeroed too; keep it unmatchable */
            return st;
        }
    }
    *out = nt;
    return LG_OK;
}

lg_status lg_monitor_record(lg_monitor *mon, int64_t step, const char *net, lg_model *m,
                            const float *x, int n, lg_monitor_summary *summary) {
    lg_monitor_summary dummy;
    lg_monitor_summary *sm = summary ? summary : &dummy;
    memset(sm, 0, sizeof *sm);
    if (!lg_monitor_due(mon, step)) return LG_OK;
    if (!net || !*net || strlen(net) >= LG_SPECTRA_NET_MAX || !m)
        return lg_error_set(LG_ERR_INVALID_ARG, "monitor: network name '%s' must have 1..%d bytes, and a model",
                            net ? net : "(null)", LG_SPECTRA_NET_MAX - 1);
    double t0 = now_mono();
    const int nl = lg_model_num_layers(m);
    mon_net *nt;
    LG_TRY(net_for_model(mon, net, m, &nt));
    nt->have_last = 0;
    double prod = 1.0, smin = INFINITY, ssum = 0, errmax = NAN;
    for (int i = 0; i < nl; i++) {
        const lg_layer_info *L = lg_model_layer(m, i);
        lg_monitor_layer *lr = &nt->last[i];
        LG_TRY(analyze_layer(mon, &nt->ls[i], L, lr, 0x5eed0000u + (uint64_t)i));
        prod *= lr->eff_norm;
        double sv = stat_of(mon, lr->auc, lr->frac_above);
        ssum += sv;
        if (sv < smin) {
            smin = sv;
            snprintf(sm->stat_min_layer, sizeof sm->stat_min_layer, "%s", lr->name);
        }
        if (!isnan(lr->sigma_est)) {
            double ex = L->lip == LG_LIP_TOEPLITZ ? lr->op_norm : lr->sigma_exact;
            double e = fabs(lr->sigma_est - ex) / ex;
            if (isnan(errmax) || e > errmax) errmax = e;
        }
        lg_collapse_detector *d = &nt->ls[i].det;
        lr->event = lg_collapse_detector_update(d, step, sv);
        if (lr->event != LG_COLLAPSE_NONE) sm->collapsed++;
        if (lr->event == LG_COLLAPSE_ONSET) {
            size_t used = strlen(sm->warning);
            if (sm->onsets == 0)
                used += (size_t)snprintf(sm->warning + used, sizeof sm->warning - used,
                                         "spectral collapse in %s:", net);
            if (used < sizeof sm->warning)
                snprintf(sm->warning + used, sizeof sm->warning - used, "%s %s %s %.3g (max %.3g)",
                         sm->onsets ? "," : "", lr->name, mon->o.stat == LG_MONITOR_STAT_AUC ? "auc" : "frac",
                         sv, d->running_max);
            sm->onsets++;
        }
    }
    nt->have_last = 1;
    double lower;
    LG_TRY(lower_bound(mon, m, x, n, &lower));

    sm->recorded = 1;
    sm->step = step;
    snprintf(sm->net, sizeof sm->net, "%s", net);
    sm->stat_name = mon->o.stat == LG_MONITOR_STAT_AUC ? "auc" : "frac";
    sm->n_layers = nl;
    sm->stat_min = nl ? smin : NAN;
    sm->stat_mean = nl ? ssum / nl : NAN;
    sm->lip_upper_product = prod;
    sm->lip_upper = arch_upper(m, nt->last, nl, prod);
    sm->lip_lower = lower;
    sm->sn_err_max = errmax;

    if (mon->f) {
        lg_spectra_record rec = {step, now_wall(), {0}, prod, sm->lip_upper, lower, nl, nt->last};
        snprintf(rec.net, sizeof rec.net, "%s", net);
        bbuf b = {0};
        encode_record(&b, &rec);
        lg_status st = LG_OK;
        if (b.oom) st = lg_error_set(LG_ERR_NOMEM, "monitor: out of memory");
        else if (fwrite(b.p, 1, b.n, mon->f) != b.n || fflush(mon->f) != 0)
            st = lg_error_set(LG_ERR_IO, "monitor: cannot append to %s: %s", mon->path, strerror(errno));
        free(b.p);
        LG_TRY(st);
    }
    sm->ms = 1e3 * (now_mono() - t0);
    return LG_OK;
}

/* ---- the state later records depend on (checkpoints) ---- */

int64_t lg_monitor_state_len(const lg_layer_info *L) {
    if (L->kind == LG_LAYER_LINEAR) return 0;
    lg_conv_geom g;
    lg_monitor_layer_geom(L, &g);
    return (int64_t)g.c * g.h * g.w;
}

/* net's state if it exists for model m's layers (what lg_monitor_record
 * would reuse), else NULL. */
static const mon_net *net_match(const lg_monitor *mon, const char *net, const lg_model *m) {
    const mon_net *nt = net_find((lg_monitor *)mon, net); /* a lookup: nothing changes */
    const int nl = lg_model_num_layers(m);
    int same = nt && nt->nl == nl;
    for (int i = 0; same && i < nl; i++) {
        const lg_layer_info *L = lg_model_layer(m, i);
        int64_t r, c;
        same = strcmp(nt->last[i].name, L->name) == 0 &&
               lg_weight_mat_dims(L->w->ndim, L->w->shape, L->out_dim, &r, &c) == LG_OK &&
               nt->last[i].nsv == (r < c ? r : c);
    }
    return same ? nt : NULL;
}

static int64_t dbits(double v) {
    int64_t u;
    memcpy(&u, &v, 8);
    return u;
}

static double bitsd(int64_t u) {
    double v;
    memcpy(&v, &u, 8);
    return v;
}

lg_status lg_monitor_state_get(const lg_monitor *mon, const char *net, const lg_model *m, int i,
                               int64_t words[LG_MONITOR_STATE_WORDS], float *tv) {
    if (!net || !m || i < 0 || i >= lg_model_num_layers(m))
        return lg_error_set(LG_ERR_INVALID_ARG, "monitor state: no layer %d in network %s", i, net ? net : "(null)");
    const int64_t n = lg_monitor_state_len(lg_model_layer(m, i));
    const mon_net *nt = net_match(mon, net, m);
    lg_collapse_detector fresh;
    lg_collapse_detector_init(&fresh, mon->o.collapse_drop, mon->o.collapse_warmup);
    const lg_collapse_detector *d = nt ? &nt->ls[i].det : &fresh;
    const int have = nt && nt->ls[i].have_tv && (int64_t)nt->ls[i].tvn == n;
    words[0] = have;
    words[1] = d->count;
    words[2] = d->collapsed;
    words[3] = d->onset_step;
    words[4] = d->onsets;
    words[5] = dbits(d->running_max);
    if (n > 0) {
        if (have) memcpy(tv, nt->ls[i].tv, (size_t)n * sizeof(float));
        else memset(tv, 0, (size_t)n * sizeof(float));
    }
    return LG_OK;
}

lg_status lg_monitor_state_check(const int64_t words[LG_MONITOR_STATE_WORDS], const float *tv, int64_t n) {
    const double rmax = bitsd(words[5]);
    if (words[0] < 0 || words[0] > 1 || words[1] < 0 || words[2] < 0 || words[2] > 1 || words[3] < -1 ||
        words[4] < 0 || words[4] > words[1] || isnan(rmax) || rmax == INFINITY || (words[1] > 0 && !isfinite(rmax)))
        return lg_error_set(LG_ERR_FORMAT,
                            "monitor state words out of range (have_tv %lld, count %lld, collapsed %lld, "
                            "onset_step %lld, onsets %lld, running_max %g)",
                            (long long)words[0], (long long)words[1], (long long)words[2], (long long)words[3],
                            (long long)words[4], rmax);
    if (words[0] == 1) {
        double s = 0;
        for (int64_t k = 0; tv && k < n; k++) s += (double)tv[k] * tv[k];
        if (n < 1 || !tv || !(s > 0) || !isfinite(s))
            return lg_error_set(LG_ERR_FORMAT, "monitor state: the warm-start vector (%lld values) is %s",
                                (long long)n, n < 1 || !tv ? "missing" : "zero or not finite");
    }
    return LG_OK;
}

lg_status lg_monitor_state_set(lg_monitor *mon, const char *net, const lg_model *m, int i,
                               const int64_t words[LG_MONITOR_STATE_WORDS], const float *tv) {
    if (!net || !*net || strlen(net) >= LG_SPECTRA_NET_MAX || !m || i < 0 || i >= lg_model_num_layers(m))
        return lg_error_set(LG_ERR_INVALID_ARG, "monitor state: no layer %d in network %s", i, net ? net : "(null)");
    const int64_t n = lg_monitor_state_len(lg_model_layer(m, i));
    LG_TRY(lg_monitor_state_check(words, tv, n));
    mon_net *nt;
    LG_TRY(net_for_model(mon, net, m, &nt));
    mon_layer_state *ls = &nt->ls[i];
    lg_collapse_detector *d = &ls->det;
    d->count = words[1];
    d->collapsed = (int)words[2];
    d->onset_step = words[3];
    d->onsets = words[4];
    d->running_max = bitsd(words[5]);
    if (words[0] == 1) {
        if (ls->tvn != (size_t)n || !ls->tv) {
            float *q = malloc((size_t)n * sizeof(float)); /* (c, h, w) */
            if (!q) return lg_error_set(LG_ERR_NOMEM, "monitor: out of memory");
            free(ls->tv);
            ls->tv = q;
            ls->tvn = (size_t)n;
        }
        memcpy(ls->tv, tv, (size_t)n * sizeof(float));
        ls->have_tv = 1;
    } else {
        ls->have_tv = 0;  /* the next record starts it cold, as a fresh net */
    }
    return LG_OK;
}

/* ---- formatting ---- */

static int jnum(char *buf, size_t cap, size_t *used, const char *k1, const char *net, const char *k2, double v) {
    size_t u = *used < cap ? *used : cap;
    int w = isfinite(v) ? snprintf(buf + u, cap - u, ",\"%s_%s_%s\":%.6g", k1, net, k2, v)
                        : snprintf(buf + u, cap - u, ",\"%s_%s_%s\":null", k1, net, k2);
    *used += (size_t)(w > 0 ? w : 0);
    return w;
}

int lg_monitor_summary_json(const lg_monitor_summary *s, char *buf, size_t cap) {
    if (cap) buf[0] = '\0';
    if (!s->recorded) return 0;
    size_t used = 0;
    char k[32];
    snprintf(k, sizeof k, "%s_min", s->stat_name);
    jnum(buf, cap, &used, "spec", s->net, k, s->stat_min);
    snprintf(k, sizeof k, "%s_mean", s->stat_name);
    jnum(buf, cap, &used, "spec", s->net, k, s->stat_mean);
    jnum(buf, cap, &used, "spec", s->net, "collapsed", s->collapsed);
    jnum(buf, cap, &used, "lip", s->net, "upper", s->lip_upper);
    jnum(buf, cap, &used, "lip", s->net, "upper_prod", s->lip_upper_product);
    jnum(buf, cap, &used, "lip", s->net, "lower", s->lip_lower);
    jnum(buf, cap, &used, "sn", s->net, "err_max", s->sn_err_max);
    jnum(buf, cap, &used, "spec", s->net, "ms", s->ms);
    if (s->warning[0]) {
        /* JSON string: the warning holds layer names and numbers; escape
         * what JSON requires anyway */
        char esc[2 * sizeof s->warning];
        size_t e = 0;
        for (const char *p = s->warning; *p && e + 7 < sizeof esc; p++) {
            unsigned char c = (unsigned char)*p;
            if (c == '"' || c == '\\') esc[e++] = '\\', esc[e++] = (char)c;
            else if (c < 0x20) e += (size_t)snprintf(esc + e, sizeof esc - e, "\\u%04x", c);
            else esc[e++] = (char)c;
        }
        esc[e] = '\0';
        size_t u = used < cap ? used : cap;
        int w = snprintf(buf + u, cap - u, ",\"spec_%s_warning\":\"%s\"", s->net, esc);
        used += (size_t)(w > 0 ? w : 0);
    }
    return (int)used;
}

int lg_monitor_summary_line(const lg_monitor_summary *s, char *buf, size_t cap) {
    if (cap) buf[0] = '\0';
    if (!s->recorded) return 0;
    char up[64] = "?", lo[32] = "";
    /* without an architecture bound (batch norm, G) the product of the layer
     * norms bounds nothing: said as such, not as an upper estimate */
    if (isfinite(s->lip_upper)) snprintf(up, sizeof up, "%.3g", s->lip_upper);
    else if (isfinite(s->lip_upper_product))
        snprintf(up, sizeof up, "n/a (layer-norm product %.3g, no bound)", s->lip_upper_product);
    if (isfinite(s->lip_lower)) snprintf(lo, sizeof lo, ", >= %.3g", s->lip_lower);
    /* "upper est.": conv norms come from a power iteration, which approaches
     * them from below, so the printed bound is an estimate (monitor.h) */
    return snprintf(buf, cap, "  %s: %s min %.3g (%s) Lip upper est. %s%s%s%s", s->net, s->stat_name, s->stat_min,
                    s->stat_min_layer, up, lo, s->warning[0] ? "  WARNING: " : "", s->warning);
}
