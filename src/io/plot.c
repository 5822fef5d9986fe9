/* Line and spectrum plots to PNG on the small canvas of io/raster.h. See
 * plot.h. Axis values are mapped in "axis space" (log10 of the value on a
 * log axis), so ticks, clipping and the legend placement work the same on
 * both kinds of axis. */
#include "lipgan/plot.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io/raster.h"

#define MAX_TICKS 64

static const uint32_t tab10[10] = {0x1f77b4, 0xff7f0e, 0x2ca02c, 0xd62728, 0x9467bd,
                                   0x8c564b, 0xe377c2, 0x7f7f7f, 0xbcbd22, 0x17becf};

lg_plot_opts lg_plot_opts_default(void) {
    lg_plot_opts o;
    memset(&o, 0, sizeof o);
    o.width = 800;
    o.height = 500;
    o.line_width = 2.0;
    return o;
}

typedef struct axis {
    int log;
    double lo, hi;          /* axis space */
    int nt;                 /* number of ticks */
    double t[MAX_TICKS];    /* tick positions, axis space */
    char lab[MAX_TICKS][48];
} axis;

/* Value -> axis space; NAN if the value cannot be shown: not finite, or
 * beyond +-1e150, where spans, padding and tick steps would overflow. */
static double tf(const axis *a, double v) {
    if (!isfinite(v) || fabs(v) > 1e150) return NAN;
    if (a->log) return v > 0 ? log10(v) : NAN;
    return v;
}

/* "%.3g" without the '+' and leading zeros of the exponent ("1e6"). */
static void fmt_g(char *buf, size_t cap, double v, int prec) {
    char tmp[48];
    snprintf(tmp, sizeof tmp, "%.*g", prec, v);
    char *e = strchr(tmp, 'e');
    if (!e) {
        snprintf(buf, cap, "%s", tmp);
        return;
    }
    char mant[32];
    size_t ml = (size_t)(e - tmp);
    if (ml >= sizeof mant) ml = sizeof mant - 1;
    memcpy(mant, tmp, ml);
    mant[ml] = 0;
    int ex = atoi(e + 1);
    snprintf(buf, cap, "%se%d", mant, ex);
}

static void fmt_tick(char *buf, size_t cap, double v, double step, int log) {
    if (fabs(v) < 1e-12 * (step > 0 ? step : 1)) v = 0;
    if (v == 0) {
        snprintf(buf, cap, "0");
        return;
    }
    if (log || fabs(v) >= 1e6 || (fabs(v) < 1e-3)) {
        if (fabs(v) >= 1e-3 && fabs(v) < 1e6) fmt_g(buf, cap, v, 6);
        else fmt_g(buf, cap, v, 3);
        return;
    }
    /* clamped to [0, 6] before the cast, which a huge or degenerate step would overflow */
    int dec = step > 0 && isfinite(step) ? (int)fmin(fmax(-floor(log10(step) + 1e-9), 0), 6) : 6;
    snprintf(buf, cap, "%.*f", dec, v);
}

static double nice_step(double raw) {
    double mag = pow(10.0, floor(log10(raw)));
    double f = raw / mag;
    return (f < 1.5 ? 1 : f < 3 ? 2 : f < 7 ? 5 : 10) * mag;
}

/* Linear ticks over [lo, hi] (value space), about `target` of them. */
static void ticks_linear(axis *a, double lo, double hi, int target, int as_log) {
    double step = nice_step((hi - lo) / (target > 1 ? target : 1));
    a->nt = 0;
    if (!(step > 0 && isfinite(step))) return; /* a span that underflows: no ticks */
    for (double k = ceil(lo / step - 1e-9); a->nt < MAX_TICKS; k++) {
        double v = k * step;
        if (v > hi + 1e-9 * step) break;
        if (as_log && v <= 0) continue;
        a->t[a->nt] = as_log ? log10(v) : v;
        fmt_tick(a->lab[a->nt], sizeof a->lab[0], v, step, 0);
        a->nt++;
    }
}

static void make_ticks(axis *a, int target) {
    if (!a->log) {
        ticks_linear(a, a->lo, a->hi, target, 0);
        return;
    }
    /* decades, thinned to about `target`; below two decades add 2 and 5,
     * below half a decade 2..9; if that still gives fewer than 2 ticks,
     * fall back to linear ticks in value space */
    double span = a->hi - a->lo;
    int every = (int)ceil(span / target);
    if (every < 1) every = 1;
    static const int m125[] = {1, 2, 5}, m19[] = {1, 2, 3, 4, 5, 6, 7, 8, 9}, m1[] = {1};
    const int *ms = m1;
    int nm = 1;
    if (span < 0.5) ms = m19, nm = 9;
    else if (span < 2) ms = m125, nm = 3;
    a->nt = 0;
    for (int d = (int)floor(a->lo); d <= (int)ceil(a->hi) && a->nt < MAX_TICKS; d++) {
        if (((d % every) + every) % every) continue;
        for (int i = 0; i < nm && a->nt < MAX_TICKS; i++) {
            double v = ms[i] * pow(10.0, d), t = log10(v);
            if (t < a->lo - 1e-9 || t > a->hi + 1e-9) continue;
            a->t[a->nt] = t;
            fmt_tick(a->lab[a->nt], sizeof a->lab[0], v, v, 1);
            a->nt++;
        }
    }
    if (a->nt < 2) ticks_linear(a, pow(10.0, a->lo), pow(10.0, a->hi), target, 1);
}

/* Liang-Barsky: clips the segment to [x0, x1] x [y0, y1]; 0 if outside. */
static int clip(double *ax, double *ay, double *bx, double *by, double x0, double y0, double x1,
                double y1) {
    double t0 = 0, t1 = 1, dx = *bx - *ax, dy = *by - *ay;
    double p[4] = {-dx, dx, -dy, dy}, q[4] = {*ax - x0, x1 - *ax, *ay - y0, y1 - *ay};
    for (int i = 0; i < 4; i++) {
        if (p[i] == 0) {
            if (q[i] < 0) return 0;
        } else {
            double r = q[i] / p[i];
            if (p[i] < 0) {
                if (r > t1) return 0;
                if (r > t0) t0 = r;
            } else {
                if (r < t0) return 0;
                if (r < t1) t1 = r;
            }
        }
    }
    double nax = *ax + t0 * dx, nay = *ay + t0 * dy;
    *bx = *ax + t1 * dx;
    *by = *ay + t1 * dy;
    *ax = nax;
    *ay = nay;
    return 1;
}

typedef struct frame {
    int x0, y0, x1, y1; /* plot area, pixels [x0, x1) x [y0, y1) */
    axis ax, ay;
} frame;

static double fx(const frame *f, double t) {
    return f->x0 + 0.5 + (t - f->ax.lo) / (f->ax.hi - f->ax.lo) * (f->x1 - f->x0 - 1);
}
static double fy(const frame *f, double t) {
    return f->y1 - 0.5 - (t - f->ay.lo) / (f->ay.hi - f->ay.lo) * (f->y1 - f->y0 - 1);
}

static lg_status check_opts(const char *path, const lg_plot_opts *o) {
    if (!path) return lg_error_set(LG_ERR_INVALID_ARG, "plot: path is NULL");
    if (o->width < 200 || o->height < 150 || o->width > 8192 || o->height > 8192)
        return lg_error_set(LG_ERR_INVALID_ARG,
                            "plot %s: size %dx%d out of range; use 200..8192 x 150..8192 pixels", path,
                            o->width, o->height);
    if (o->y_lo < o->y_hi && (!isfinite(o->y_lo) || !isfinite(o->y_hi) || (o->log_y && o->y_lo <= 0)))
        return lg_error_set(LG_ERR_INVALID_ARG,
                            "plot %s: bad fixed y range [%g, %g]%s", path, o->y_lo, o->y_hi,
                            o->log_y ? "; a log axis needs y_lo > 0" : "");
    return LG_OK;
}

lg_status lg_plot_lines(const char *path, const lg_plot_opts *opts_in, const lg_plot_series *ser,
                        int ns) {
    lg_plot_opts o = opts_in ? *opts_in : lg_plot_opts_default();
    if (o.width == 0) o.width = 800;
    if (o.height == 0) o.height = 500;
    if (!(o.line_width > 0)) o.line_width = 2.0;
    LG_TRY(check_opts(path, &o));
    if (ns < 0 || (ns > 0 && !ser))
        return lg_error_set(LG_ERR_INVALID_ARG, "plot %s: bad series count %d", path, ns);
    for (int i = 0; i < ns; i++)
        if (ser[i].n < 0 || (ser[i].n > 0 && (!ser[i].x || !ser[i].y)))
            return lg_error_set(LG_ERR_INVALID_ARG, "plot %s: series %d (%s) has n = %d and %s", path,
                                i, ser[i].label ? ser[i].label : "unnamed", ser[i].n,
                                ser[i].n < 0 ? "n < 0" : "a NULL x or y array");

    frame f;
    memset(&f, 0, sizeof f);
    f.ay.log = o.log_y;
    /* data ranges in axis space */
    double xmin = INFINITY, xmax = -INFINITY, ymin = INFINITY, ymax = -INFINITY;
    for (int i = 0; i < ns; i++)
        for (int j = 0; j < ser[i].n; j++) {
            double tx = tf(&f.ax, ser[i].x[j]), ty = tf(&f.ay, ser[i].y[j]);
            if (!isfinite(tx) || !isfinite(ty)) continue;
            xmin = fmin(xmin, tx), xmax = fmax(xmax, tx);
            ymin = fmin(ymin, ty), ymax = fmax(ymax, ty);
        }
    int nodata = !(xmin <= xmax);
    if (nodata) xmin = 0, xmax = 1, ymin = 0, ymax = 1;
    if (xmax - xmin <= 1e-12 * fmax(1, fabs(xmax))) {
        double d = fabs(xmax) > 0 ? fabs(xmax) * 0.05 : 0.5;
        xmin -= d, xmax += d;
    }
    if (o.y_lo < o.y_hi) {
        ymin = tf(&f.ay, o.y_lo), ymax = tf(&f.ay, o.y_hi);
    } else {
        if (ymax - ymin <= 1e-12 * fmax(1, fabs(ymax))) {
            double d = o.log_y ? 0.5 : fabs(ymax) > 0 ? fabs(ymax) * 0.05 : 0.5;
            ymin -= d, ymax += d;
        } else {
            double pad = 0.05 * (ymax - ymin);
            ymin -= pad, ymax += pad;
        }
    }
    f.ax.lo = xmin, f.ax.hi = xmax, f.ay.lo = ymin, f.ay.hi = ymax;

    /* layout: text scale, margins from the tick labels and axis labels */
    int sc = (o.width >= 600 && o.height >= 360) ? 2 : 1;
    int chh = LG_FONT_H * sc;
    make_ticks(&f.ax, o.width / (sc == 2 ? 130 : 80));
    make_ticks(&f.ay, o.height / (sc == 2 ? 70 : 45));
    int ylab_w = 0;
    for (int i = 0; i < f.ay.nt; i++) {
        int w = lg_canvas_text_width(f.ay.lab[i], sc);
        if (w > ylab_w) ylab_w = w;
    }
    int last_xw = f.ax.nt ? lg_canvas_text_width(f.ax.lab[f.ax.nt - 1], sc) : 0;
    f.x0 = 10 + (o.ylabel && *o.ylabel ? chh + 10 : 0) + ylab_w + 8;
    f.x1 = o.width - (last_xw / 2 + 12 > 20 ? last_xw / 2 + 12 : 20);
    f.y0 = 12 + (o.title && *o.title ? chh + 12 : 0);
    f.y1 = o.height - (8 + chh + 8 + (o.xlabel && *o.xlabel ? chh + 10 : 0));
    if (f.x1 - f.x0 < 40 || f.y1 - f.y0 < 40)
        return lg_error_set(LG_ERR_INVALID_ARG, "plot %s: %dx%d leaves no room for the plot area; make it larger",
                            path, o.width, o.height);

    lg_canvas cv;
    LG_TRY(lg_canvas_init(&cv, o.width, o.height, 0xffffff));

    /* grid lines and tick marks */
    for (int i = 0; i < f.ax.nt; i++) {
        int px = (int)floor(fx(&f, f.ax.t[i]));
        lg_canvas_fill_rect(&cv, px, f.y0, px + 1, f.y1, 0xe6e6e6, 1.0f);
        lg_canvas_fill_rect(&cv, px, f.y1, px + 1, f.y1 + 5, 0x444444, 1.0f);
        int w = lg_canvas_text_width(f.ax.lab[i], sc);
        lg_canvas_text(&cv, px - w / 2, f.y1 + 8, f.ax.lab[i], 0x222222, sc);
    }
    for (int i = 0; i < f.ay.nt; i++) {
        int py = (int)floor(fy(&f, f.ay.t[i]));
        lg_canvas_fill_rect(&cv, f.x0, py, f.x1, py + 1, 0xe6e6e6, 1.0f);
        lg_canvas_fill_rect(&cv, f.x0 - 5, py, f.x0, py + 1, 0x444444, 1.0f);
        int w = lg_canvas_text_width(f.ay.lab[i], sc);
        lg_canvas_text(&cv, f.x0 - 8 - w, py - chh / 2, f.ay.lab[i], 0x222222, sc);
    }

    /* the series */
    for (int i = 0; i < ns; i++) {
        const lg_plot_series *s = &ser[i];
        uint32_t col = s->color ? s->color : tab10[i % 10];
        int mark = o.markers > 0 || (o.markers == 0 && s->n <= 40);
        double px = NAN, py = NAN; /* previous point, NAN after a gap */
        for (int j = 0; j < s->n; j++) {
            double tx = tf(&f.ax, s->x[j]), ty = tf(&f.ay, s->y[j]);
            if (!isfinite(tx) || !isfinite(ty)) {
                px = py = NAN;
                continue;
            }
            double cx = fx(&f, tx), cy = fy(&f, ty);
            if (isfinite(px)) {
                double ax_ = px, ay_ = py, bx_ = cx, by_ = cy;
                if (clip(&ax_, &ay_, &bx_, &by_, f.x0, f.y0, f.x1, f.y1))
                    lg_canvas_line(&cv, ax_, ay_, bx_, by_, col, o.line_width, 1.0f);
            }
            if ((mark || s->n == 1) && cx >= f.x0 && cx <= f.x1 && cy >= f.y0 && cy <= f.y1)
                lg_canvas_disc(&cv, cx, cy, o.line_width + 1.0, col, 1.0f);
            px = cx, py = cy;
        }
    }
    lg_canvas_rect(&cv, f.x0 - 1, f.y0 - 1, f.x1 + 1, f.y1 + 1, 0x444444);
    if (nodata) {
        const char *msg = "no data";
        lg_canvas_text(&cv, (f.x0 + f.x1 - lg_canvas_text_width(msg, sc)) / 2, (f.y0 + f.y1 - chh) / 2,
                       msg, 0x888888, sc);
    }

    /* title and axis labels */
    if (o.title && *o.title) {
        int w = lg_canvas_text_width(o.title, sc);
        int x = (f.x0 + f.x1 - w) / 2;
        if (x + w > o.width - 4) x = o.width - 4 - w;
        if (x < 4) x = 4;
        lg_canvas_text(&cv, x, 10, o.title, 0x111111, sc);
    }
    if (o.xlabel && *o.xlabel) {
        int w = lg_canvas_text_width(o.xlabel, sc);
        lg_canvas_text(&cv, (f.x0 + f.x1 - w) / 2, o.height - 8 - chh, o.xlabel, 0x222222, sc);
    }
    if (o.ylabel && *o.ylabel) {
        int w = lg_canvas_text_width(o.ylabel, sc);
        int y = (f.y0 + f.y1 - w) / 2;
        if (y < 2) y = 2;
        lg_canvas_text_up(&cv, 10, y, o.ylabel, 0x222222, sc);
    }

    /* legend: the corner of the plot area covering the fewest points */
    int nleg = 0, legw = 0;
    for (int i = 0; i < ns; i++)
        if (ser[i].label && *ser[i].label) {
            nleg++;
            int w = lg_canvas_text_width(ser[i].label, sc);
            if (w > legw) legw = w;
        }
    if (nleg > 0) {
        int row = chh + 6, sw = 14 * sc; /* row height, line-sample width */
        int bw = 8 + sw + 6 + legw + 8, bh = 6 + nleg * row;
        int best = 0;
        long best_cnt = -1;
        for (int corner = 0; corner < 4; corner++) { /* TR, TL, BR, BL */
            int bx = corner % 2 == 0 ? f.x1 - 8 - bw : f.x0 + 8;
            int by = corner < 2 ? f.y0 + 8 : f.y1 - 8 - bh;
            long cnt = 0;
            for (int i = 0; i < ns; i++)
                for (int j = 0; j < ser[i].n; j++) {
                    double tx = tf(&f.ax, ser[i].x[j]), ty = tf(&f.ay, ser[i].y[j]);
                    if (!isfinite(tx) || !isfinite(ty)) continue;
                    double cx = fx(&f, tx), cy = fy(&f, ty);
                    double mg = o.line_width + 4; /* markers and line width reach beyond the point */
                    cnt += cx >= bx - mg && cx < bx + bw + mg && cy >= by - mg && cy < by + bh + mg;
                }
            if (best_cnt < 0 || cnt < best_cnt) best_cnt = cnt, best = corner;
        }
        int bx = best % 2 == 0 ? f.x1 - 8 - bw : f.x0 + 8;
        int by = best < 2 ? f.y0 + 8 : f.y1 - 8 - bh;
        lg_canvas_fill_rect(&cv, bx, by, bx + bw, by + bh, 0xffffff, 0.85f);
        lg_canvas_rect(&cv, bx, by, bx + bw, by + bh, 0xbbbbbb);
        int k = 0;
        for (int i = 0; i < ns; i++) {
            if (!ser[i].label || !*ser[i].label) continue;
            uint32_t col = ser[i].color ? ser[i].color : tab10[i % 10];
            int ry = by + 4 + k * row + row / 2;
            lg_canvas_line(&cv, bx + 8, ry, bx + 8 + sw, ry, col, o.line_width + 0.5, 1.0f);
            lg_canvas_text(&cv, bx + 8 + sw + 6, ry - chh / 2, ser[i].label, 0x222222, sc);
            k++;
        }
    }
    lg_status st = lg_canvas_save(&cv, path);
    lg_canvas_free(&cv);
    return st;
}

/* The viridis colormap at t in [0, 1] (9 anchors, linear in between). */
static uint32_t viridis(double t) {
    static const uint32_t a[9] = {0x440154, 0x482878, 0x3e4989, 0x31688e, 0x26828e,
                                  0x1f9e89, 0x35b779, 0x6ece58, 0xfde725};
    if (!(t > 0)) t = 0;
    if (t > 1) t = 1;
    double u = t * 8;
    int i = (int)u;
    if (i >= 8) i = 7;
    double w = u - i;
    uint32_t c = 0;
    for (int sh = 16; sh >= 0; sh -= 8) {
        double v = (1 - w) * (a[i] >> sh & 255) + w * (a[i + 1] >> sh & 255);
        c |= (uint32_t)lrint(v) << sh;
    }
    return c ? c : 1;
}

lg_status lg_plot_spectra(const char *path, const lg_plot_opts *opts_in, const double *sv,
                          const int64_t *steps, int nsteps, int k, int normalize) {
    if (nsteps < 0 || k < 0 || (nsteps > 0 && (!sv || !steps)))
        return lg_error_set(LG_ERR_INVALID_ARG, "spectrum plot %s: bad input (nsteps=%d, k=%d)",
                            path ? path : "(null)", nsteps, k);
    lg_plot_opts o = opts_in ? *opts_in : lg_plot_opts_default();
    if (!o.xlabel) o.xlabel = "index i";
    if (!o.ylabel) o.ylabel = normalize ? "s_i / s_1" : "s_i";
    size_t kk = (size_t)(k > 0 ? k : 1);
    double *buf = malloc(sizeof(double) * kk * ((size_t)nsteps + 1)); /* x (K), then y (S, K) */
    lg_plot_series *ser = calloc((size_t)(nsteps > 0 ? nsteps : 1), sizeof *ser);
    char (*labels)[32] = calloc((size_t)(nsteps > 0 ? nsteps : 1), sizeof *labels);
    if (!buf || !ser || !labels) {
        free(buf), free(ser), free(labels);
        return lg_error_set(LG_ERR_NOMEM, "spectrum plot %s: cannot allocate", path ? path : "(null)");
    }
    for (int j = 0; j < k; j++) buf[j] = j + 1;
    /* legend: at most 8 entries, evenly spaced, first and last included */
    int nlab = nsteps < 8 ? nsteps : 8;
    int nser = 0;
    for (int i = 0; i < nsteps; i++) {
        const double *row = sv + (size_t)i * k;
        double *y = buf + kk * (1 + (size_t)i);
        double mx = 0;
        for (int j = 0; j < k; j++)
            if (isfinite(row[j]) && row[j] > mx) mx = row[j];
        if (normalize && !(mx > 0 && isfinite(mx))) continue;
        for (int j = 0; j < k; j++) y[j] = normalize ? row[j] / mx : row[j];
        int labelled = 0;
        for (int q = 0; q < nlab && !labelled; q++)
            labelled = (nlab == 1 ? 0 : (int)lrint((double)q * (nsteps - 1) / (nlab - 1))) == i;
        if (labelled) snprintf(labels[i], sizeof labels[i], "step %lld", (long long)steps[i]);
        ser[nser].label = labelled ? labels[i] : NULL;
        ser[nser].x = buf;
        ser[nser].y = y;
        ser[nser].n = k;
        ser[nser].color = viridis(nsteps > 1 ? 0.85 * i / (nsteps - 1) : 0.0);
        nser++;
    }
    if (o.markers == 0) o.markers = -1; /* spectra are dense: lines only */
    if (!(o.line_width > 0)) o.line_width = 1.5;
    lg_status s = lg_plot_lines(path, &o, ser, nser);
    free(buf), free(ser), free(labels);
    return s;
}
