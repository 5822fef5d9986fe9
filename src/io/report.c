/* The self-contained HTML report of a run directory (lipgan/report.h):
 * curves from metrics.jsonl, spectra from spectra.bin, sample grids, the
 * config; every figure a PNG embedded as a base64 data: URI. */
#include <cJSON.h>
#include <dirent.h>
#include <errno.h>
#include <fnmatch.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "lipgan/fileio.h"
#include "lipgan/monitor.h"
#include "lipgan/plot.h"
#include "lipgan/report.h"
#include "lipgan/safetensors.h"
#include "lipgan/train.h"
#include "lipgan/version.h"

lg_report_opts lg_report_opts_default(void) {
    lg_report_opts o;
    memset(&o, 0, sizeof o);
    o.max_samples = 12;
    o.max_spectra_steps = 8;
    o.max_layer_plots = 64;
    o.plot_width = 640;
    o.plot_height = 400;
    return o;
}

/* ---- the page being written ---- */

typedef struct page {
    FILE *f;                 /* memstream of the HTML */
    char tmpdir[512];        /* plots are drawn here, embedded, removed */
    int nplot;               /* temp file counter */
    const lg_report_opts *o;
    lg_report_info *info;
    /* warnings collected while reading, printed at the top */
    char **warn;
    int nwarn, capwarn;
} page;

static void esc(FILE *f, const char *s) {
    for (; s && *s; s++) {
        switch (*s) {
        case '<': fputs("&lt;", f); break;
        case '>': fputs("&gt;", f); break;
        case '&': fputs("&amp;", f); break;
        case '"': fputs("&quot;", f); break;
        default: fputc(*s, f);
        }
    }
}

static void add_warning(page *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void add_warning(page *p, const char *fmt, ...) {
    char buf[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    if (p->nwarn == p->capwarn) {
        int nc = p->capwarn ? 2 * p->capwarn : 16;
        char **q = realloc(p->warn, (size_t)nc * sizeof *q);
        if (!q) return;
        p->warn = q;
        p->capwarn = nc;
    }
    char *d = strdup(buf);
    if (d) p->warn[p->nwarn++] = d;
}

static void b64(FILE *f, const unsigned char *d, size_t n) {
    static const char t[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    char out[4];
    size_t i = 0;
    for (; i + 3 <= n; i += 3) {
        uint32_t v = (uint32_t)d[i] << 16 | (uint32_t)d[i + 1] << 8 | d[i + 2];
        out[0] = t[v >> 18], out[1] = t[(v >> 12) & 63], out[2] = t[(v >> 6) & 63], out[3] = t[v & 63];
        fwrite(out, 1, 4, f);
    }
    if (n - i == 1) {
        uint32_t v = (uint32_t)d[i] << 16;
        out[0] = t[v >> 18], out[1] = t[(v >> 12) & 63], out[2] = '=', out[3] = '=';
        fwrite(out, 1, 4, f);
    } else if (n - i == 2) {
        uint32_t v = (uint32_t)d[i] << 16 | (uint32_t)d[i + 1] << 8;
        out[0] = t[v >> 18], out[1] = t[(v >> 12) & 63], out[2] = t[(v >> 6) & 63], out[3] = '=';
        fwrite(out, 1, 4, f);
    }
}

/* <figure><img src="data:..."><figcaption>...</figcaption></figure>;
 * 0 if the file is not a readable PNG (then nothing is written). */
static int embed_png(page *p, const char *path, const char *alt, const char *caption, const char *cls) {
    unsigned char *d;
    size_t n;
    if (lg_file_read_all(path, &d, &n) != LG_OK) {
        lg_error_clear();
        return 0;
    }
    static const unsigned char sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
    if (n < 8 || memcmp(d, sig, 8) != 0) {
        free(d);
        return 0;
    }
    fprintf(p->f, "<figure class=\"%s\"><img alt=\"", cls);
    esc(p->f, alt);
    fputs("\" src=\"data:image/png;base64,", p->f);
    b64(p->f, d, n);
    fputs("\">", p->f);
    if (caption) {
        fputs("<figcaption>", p->f);
        esc(p->f, caption);
        fputs("</figcaption>", p->f);
    }
    fputs("</figure>\n", p->f);
    free(d);
    p->info->images++;
    return 1;
}

static void tmp_path(page *p, char *buf, size_t cap) {
    snprintf(buf, cap, "%s/plot_%04d.png", p->tmpdir, p->nplot++);
}

/* Draws and embeds one line plot; returns 1 if embedded. */
static int line_plot(page *p, const char *title, const char *xlabel, const char *ylabel, int log_y,
                     const lg_plot_series *s, int ns, const char *cls) {
    char path[600];
    tmp_path(p, path, sizeof path);
    lg_plot_opts o = lg_plot_opts_default();
    o.title = title;
    o.xlabel = xlabel;
    o.ylabel = ylabel;
    o.log_y = log_y;
    o.width = p->o->plot_width;
    o.height = p->o->plot_height;
    if (lg_plot_lines(path, &o, s, ns) != LG_OK) {
        add_warning(p, "plot '%s' failed: %s", title, lg_error_msg());
        lg_error_clear();
        return 0;
    }
    int ok = embed_png(p, path, title, NULL, cls);
    unlink(path);
    return ok;
}

/* ---- metrics.jsonl ---- */

typedef struct mseries {
    char key[64];
    double *x, *y;  /* (n) step, value (NaN for null) */
    int n, cap, finite;
    int used;       /* already plotted in a group */
} mseries;

typedef struct mdata {
    mseries *s;
    int ns, cap;
    int64_t last_step;
} mdata;

static mseries *mseries_get(mdata *m, const char *key) {
    for (int i = 0; i < m->ns; i++)
        if (!strcmp(m->s[i].key, key)) return &m->s[i];
    if (m->ns == 256) return NULL; /* enough keys for any run */
    if (m->ns == m->cap) {
        int nc = m->cap ? 2 * m->cap : 32;
        mseries *q = realloc(m->s, (size_t)nc * sizeof *q);
        if (!q) return NULL;
        m->s = q;
        m->cap = nc;
    }
    mseries *s = &m->s[m->ns++];
    memset(s, 0, sizeof *s);
    snprintf(s->key, sizeof s->key, "%s", key);
    return s;
}

static void mseries_add(mseries *s, double x, double y) {
    if (s->n == s->cap) {
        int nc = s->cap ? 2 * s->cap : 256;
        double *a = realloc(s->x, (size_t)nc * sizeof *a);
        if (!a) return;
        s->x = a;
        double *b = realloc(s->y, (size_t)nc * sizeof *b);
        if (!b) return;
        s->y = b;
        s->cap = nc;
    }
    s->x[s->n] = x;
    s->y[s->n] = y;
    s->n++;
    s->finite += isfinite(y) != 0;
}

static void mdata_free(mdata *m) {
    for (int i = 0; i < m->ns; i++) {
        free(m->s[i].x);
        free(m->s[i].y);
    }
    free(m->s);
}

static int ends_with(const char *s, const char *suf) {
    size_t a = strlen(s), b = strlen(suf);
    return a >= b && !strcmp(s + a - b, suf);
}

static lg_status read_metrics(page *p, const char *dir, mdata *m) {
    char path[1024];
    snprintf(path, sizeof path, "%s/metrics.jsonl", dir);
    unsigned char *buf;
    size_t len;
    LG_TRY(lg_file_read_optional(path, &buf, &len));
    if (!buf) return LG_OK; /* no log yet */
    m->last_step = -1;
    char *s = (char *)buf;
    int lineno = 0, first_bad = 0;
    for (char *line = s; line < s + len;) {
        lineno++;
        char *e = strchr(line, '\n');
        if (!e) e = s + len;
        *e = '\0';
        if (line[strspn(line, " \t\r")] != '\0') {
            cJSON *j = cJSON_Parse(line);
            const cJSON *sj = j ? cJSON_GetObjectItemCaseSensitive(j, "step") : NULL;
            /* a step beyond int64 (1e300) would make the cast below undefined */
            if (!cJSON_IsObject(j) || !sj || !cJSON_IsNumber(sj) || !(fabs(sj->valuedouble) < 9e18)) {
                if (!p->info->metrics_bad_lines++) first_bad = lineno;
            } else {
                p->info->metrics_rows++;
                double step = sj->valuedouble;
                if ((int64_t)step > m->last_step) m->last_step = (int64_t)step;
                const cJSON *it;
                cJSON_ArrayForEach(it, j) {
                    if (!it->string || !strcmp(it->string, "step")) continue;
                    if (cJSON_IsNumber(it) || cJSON_IsNull(it)) {
                        mseries *ms = mseries_get(m, it->string);
                        if (ms) mseries_add(ms, step, cJSON_IsNumber(it) ? it->valuedouble : NAN);
                    } else if (cJSON_IsString(it) && ends_with(it->string, "_warning") && it->valuestring[0]) {
                        add_warning(p, "step %.0f: %s", step, it->valuestring);
                    }
                }
            }
            cJSON_Delete(j);
        }
        line = e + 1;
    }
    free(buf);
    if (p->info->metrics_bad_lines)
        add_warning(p, "%s: %d unreadable line%s skipped (not a JSON object with a numeric step; the first is "
                    "line %d)", path, p->info->metrics_bad_lines, p->info->metrics_bad_lines == 1 ? "" : "s",
                    first_bad);
    return LG_OK;
}

/* Curve groups: keys matching any pattern share a plot. */
static const struct {
    const char *title, *ylabel;
    const char *pat[3];
    int log_y;
} k_groups[] = {
    {"Losses", "loss", {"loss_*"}, 0},
    {"Discriminator outputs", "mean D output", {"d_real", "d_fake"}, 0},
    {"Gradient penalty", "penalty", {"gp"}, 0},
    {"Learning rates", "lr", {"lr_*"}, 0},
    {"Normalization sigma of D's layers", "sigma", {"sigma_*"}, 0},
    {"Lipschitz constant bounds", "bound", {"lip_*"}, 1},
    {"Spectral collapse statistic (over layers)", "statistic", {"spec_*_auc_*", "spec_*_frac_*"}, 0},
    {"Layers flagged as collapsed", "layers", {"spec_*_collapsed"}, 0},
    {"SN estimate: max relative error", "relative error", {"sn_*_err_max"}, 1},
    {"Spectral monitor cost", "ms per record", {"spec_*_ms"}, 0},
    {"Throughput", "G steps / s", {"it_per_s"}, 0},
    {"Skipped updates", "updates", {"skipped"}, 0},
};

static void curves_section(page *p, mdata *m) {
    fputs("<section id=\"curves\"><h2>Training curves</h2>\n", p->f);
    if (m->ns == 0) {
        if (p->info->metrics_bad_lines)
            fprintf(p->f, "<p class=\"none\">No readable metrics.jsonl rows: %d unreadable lines skipped.</p></section>\n",
                    p->info->metrics_bad_lines);
        else
            fputs("<p class=\"none\">No metrics.jsonl rows in this directory.</p></section>\n", p->f);
        return;
    }
    fprintf(p->f, "<p>%d rows of metrics.jsonl", p->info->metrics_rows);
    if (p->info->metrics_bad_lines) fprintf(p->f, " (%d unreadable lines skipped)", p->info->metrics_bad_lines);
    fputs(".</p>\n<div class=\"grid\">\n", p->f);
    lg_plot_series ser[16];
    const int ng = (int)(sizeof k_groups / sizeof k_groups[0]);
    for (int g = 0; g <= ng; g++) {
        int ns = 0;
        for (int i = 0; i < m->ns; i++) {
            mseries *s = &m->s[i];
            if (s->used || !strcmp(s->key, "elapsed_s")) continue;
            int match = 0;
            if (g < ng) {
                for (int k = 0; k < 3 && k_groups[g].pat[k]; k++) match |= fnmatch(k_groups[g].pat[k], s->key, 0) == 0;
            } else {
                match = 1; /* leftovers: one plot each */
            }
            if (!match) continue;
            s->used = 1;
            if (!s->finite) continue;
            if (g == ng) {
                lg_plot_series one = {s->key, s->x, s->y, s->n, 0};
                p->info->curve_plots += line_plot(p, s->key, "step", NULL, 0, &one, 1, "fig");
                continue;
            }
            if (ns < 16) ser[ns++] = (lg_plot_series){s->key, s->x, s->y, s->n, 0};
        }
        if (g < ng && ns > 0)
            p->info->curve_plots += line_plot(p, k_groups[g].title, "step", k_groups[g].ylabel, k_groups[g].log_y,
                                              ser, ns, "fig");
    }
    fputs("</div></section>\n", p->f);
}

/* ---- spectra.bin ---- */

static int layer_index(const lg_spectra_record *r, const char *name, int hint) {
    if (hint < r->n_layers && !strcmp(r->layers[hint].name, name)) return hint;
    for (int i = 0; i < r->n_layers; i++)
        if (!strcmp(r->layers[i].name, name)) return i;
    return -1;
}

static const char *kind_name(int k) {
    return k == 0 ? "linear" : k == 1 ? "conv" : k == 2 ? "convT" : "?";
}

static void fmt_num(char *b, size_t cap, double v) {
    if (isnan(v)) snprintf(b, cap, "-");
    else snprintf(b, cap, "%.4g", v);
}

/* Per-layer quantity over the records of one net, one series per layer. */
enum { Q_AUC, Q_SIGMA, Q_RATIO, Q_ERR };

static double layer_q(const lg_monitor_layer *l, int q) {
    switch (q) {
    case Q_AUC: return l->auc;
    case Q_SIGMA: return l->sigma_exact;
    case Q_RATIO: return l->ratio01;
    default: {
        if (isnan(l->sigma_est)) return NAN;
        double ex = l->lip == 2 /* LG_LIP_TOEPLITZ */ ? l->op_norm : l->sigma_exact;
        return fabs(l->sigma_est - ex) / ex;
    }
    }
}

static int per_layer_plot(page *p, const lg_spectra_log *log, const int *ri, int nr, const char *net, int q,
                          const char *title, const char *ylabel, int log_y) {
    const lg_spectra_record *last = &log->rec[ri[nr - 1]];
    int nl = last->n_layers;
    double *x = malloc((size_t)nr * sizeof *x);
    double *y = malloc((size_t)nr * (size_t)(nl ? nl : 1) * sizeof *y); /* (nl, nr) */
    lg_plot_series *s = malloc((size_t)(nl ? nl : 1) * sizeof *s);
    int ok = 0, any = 0;
    if (x && y && s) {
        for (int r = 0; r < nr; r++) x[r] = (double)log->rec[ri[r]].step;
        for (int l = 0; l < nl; l++) {
            for (int r = 0; r < nr; r++) {
                const lg_spectra_record *rec = &log->rec[ri[r]];
                int k = layer_index(rec, last->layers[l].name, l);
                y[(size_t)l * nr + r] = k >= 0 ? layer_q(&rec->layers[k], q) : NAN;
                any |= isfinite(y[(size_t)l * nr + r]) && (!log_y || y[(size_t)l * nr + r] > 0);
            }
            s[l] = (lg_plot_series){last->layers[l].name, x, y + (size_t)l * nr, nr, 0};
        }
        char t[160];
        snprintf(t, sizeof t, "%s: %s", net, title);
        if (any) ok = line_plot(p, t, "step", ylabel, log_y, s, nl, "fig");
    }
    free(x);
    free(y);
    free(s);
    return ok;
}

static void spectra_net(page *p, const lg_spectra_log *log, const char *net) {
    int *ri = malloc((size_t)log->n * sizeof *ri);
    if (!ri) return;
    int nr = 0;
    for (int i = 0; i < log->n; i++)
        if (!strcmp(log->rec[i].net, net)) ri[nr++] = i;
    const lg_spectra_record *last = &log->rec[ri[nr - 1]];
    fprintf(p->f, "<h3 id=\"spectra-");
    esc(p->f, net);
    fputs("\">Network ", p->f);
    esc(p->f, net);
    fprintf(p->f, "</h3>\n<p>%d records, steps %lld to %lld, %d weight layers.</p>\n<div class=\"grid\">\n", nr,
            (long long)log->rec[ri[0]].step, (long long)last->step, last->n_layers);
    int *pl = &p->info->spectra_plots;
    *pl += per_layer_plot(p, log, ri, nr, net, Q_AUC, "collapse statistic auc = mean s_i/s_1", "auc", 0);
    *pl += per_layer_plot(p, log, ri, nr, net, Q_SIGMA, "sigma_0 of the raw weights", "sigma_0", 1);
    *pl += per_layer_plot(p, log, ri, nr, net, Q_RATIO, "sigma_0 / sigma_1", "ratio", 1);
    *pl += per_layer_plot(p, log, ri, nr, net, Q_ERR, "normalization estimate, relative error", "rel. error", 1);
    /* Lipschitz bounds */
    double *x = malloc((size_t)nr * sizeof *x), *b = malloc((size_t)nr * 3 * sizeof *b); /* (3, nr) */
    if (x && b) {
        int any = 0;
        for (int r = 0; r < nr; r++) {
            const lg_spectra_record *rec = &log->rec[ri[r]];
            x[r] = (double)rec->step;
            b[r] = rec->lip_upper;
            b[nr + r] = rec->lip_upper_product;
            b[2 * nr + r] = rec->lip_lower;
            any |= isfinite(rec->lip_upper) || isfinite(rec->lip_upper_product) || isfinite(rec->lip_lower);
        }
        lg_plot_series s[3] = {{"upper bound est. (architecture)", x, b, nr, 0},
                               {"product of layer norms", x, b + nr, nr, 0},
                               {"lower bound max ||grad D||", x, b + 2 * nr, nr, 0}};
        char t[96];
        snprintf(t, sizeof t, "%s: Lipschitz constant bounds", net);
        if (any) *pl += line_plot(p, t, "step", "bound", 1, s, 3, "fig");
    }
    free(x);
    free(b);
    fputs("</div>\n<h4>Normalized spectra s_i / s_1 over training</h4>\n<div class=\"grid small\">\n", p->f);
    /* per layer: the spectrum at up to max_spectra_steps records */
    int k = p->o->max_spectra_steps > 1 ? p->o->max_spectra_steps : 2;
    if (k > nr) k = nr;
    int *pick = malloc((size_t)k * sizeof *pick);
    for (int l = 0, shown = 0; pick && l < last->n_layers && shown < p->o->max_layer_plots; l++) {
        const lg_monitor_layer *L = &last->layers[l];
        if (L->nsv < 2) continue; /* one singular value: no shape to show */
        shown++;
        for (int i = 0; i < k; i++) pick[i] = k == 1 ? nr - 1 : (int)((double)i * (nr - 1) / (k - 1) + 0.5);
        double *sv = calloc((size_t)k * (size_t)L->nsv, sizeof *sv); /* (k, nsv) */
        int64_t *steps = malloc((size_t)k * sizeof *steps);
        if (!sv || !steps) {
            free(sv);
            free(steps);
            break;
        }
        for (int i = 0; i < k; i++) {
            const lg_spectra_record *rec = &log->rec[ri[pick[i]]];
            steps[i] = rec->step;
            int j = layer_index(rec, L->name, l);
            if (j < 0 || rec->layers[j].nsv != L->nsv) {
                for (int t = 0; t < L->nsv; t++) sv[(size_t)i * L->nsv + t] = NAN;
                continue;
            }
            for (int t = 0; t < L->nsv; t++) sv[(size_t)i * L->nsv + t] = rec->layers[j].sv[t];
        }
        char path[600], title[160];
        tmp_path(p, path, sizeof path);
        snprintf(title, sizeof title, "%s.%s %s %lldx%lld", net, L->name, kind_name(L->kind), (long long)L->rows,
                 (long long)L->cols);
        lg_plot_opts o = lg_plot_opts_default();
        o.title = title;
        o.width = p->o->plot_width * 3 / 4;
        o.height = p->o->plot_height * 3 / 4;
        o.y_lo = 0.0;
        o.y_hi = 1.05;
        if (lg_plot_spectra(path, &o, sv, steps, k, L->nsv, 1) == LG_OK) {
            *pl += embed_png(p, path, title, NULL, "fig");
            unlink(path);
        } else {
            add_warning(p, "spectrum plot %s failed: %s", title, lg_error_msg());
            lg_error_clear();
        }
        free(sv);
        free(steps);
    }
    free(pick);
    fputs("</div>\n", p->f);
    /* the last record as a table */
    fprintf(p->f,
            "<h4>Layers at step %lld</h4>\n<table><thead><tr><th>layer</th><th>kind</th><th>W_mat</th>"
            "<th>sigma_0</th><th>estimate</th><th>rel. err</th><th>op. norm</th><th>applied norm</th>"
            "<th>sigma_0/sigma_1</th><th>r(W)</th><th>auc</th><th>frac &gt; thr</th></tr></thead><tbody>\n",
            (long long)last->step);
    for (int l = 0; l < last->n_layers; l++) {
        const lg_monitor_layer *L = &last->layers[l];
        char c[8][32];
        fmt_num(c[0], 32, L->sigma_exact);
        fmt_num(c[1], 32, L->sigma_est);
        fmt_num(c[2], 32, layer_q(L, Q_ERR));
        fmt_num(c[3], 32, L->op_norm);
        fmt_num(c[4], 32, L->eff_norm);
        fmt_num(c[5], 32, L->ratio01);
        fmt_num(c[6], 32, L->r);
        fmt_num(c[7], 32, L->auc);
        fprintf(p->f, "<tr%s><td>", L->event ? " class=\"flag\"" : "");
        esc(p->f, L->name);
        fprintf(p->f, "</td><td>%s</td><td>%lld x %lld</td><td>%s</td><td>%s</td><td>%s</td><td>%s</td><td>%s</td>"
                      "<td>%s</td><td>%s</td><td>%s</td><td>%.3f</td></tr>\n",
                kind_name(L->kind), (long long)L->rows, (long long)L->cols, c[0], c[1], c[2], c[3], c[4], c[5], c[6],
                c[7], L->frac_above);
    }
    char u[3][32];
    fmt_num(u[0], 32, last->lip_upper);
    fmt_num(u[1], 32, last->lip_upper_product);
    fmt_num(u[2], 32, last->lip_lower);
    fprintf(p->f, "</tbody></table>\n<p>Lipschitz constant: upper bound %s (product of applied layer norms %s; estimates: conv "
                  "operator norms come from a power iteration, which approaches them from below), "
                  "empirical lower bound %s.</p>\n",
            u[0], u[1], u[2]);
    free(ri);
}

static void spectra_section(page *p, const char *dir) {
    fputs("<section id=\"spectra\"><h2>Spectra</h2>\n", p->f);
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", dir, LG_SPECTRA_FILE);
    lg_spectra_log log;
    lg_status st = lg_spectra_read(path, &log);
    if (st == LG_ERR_NOT_FOUND) {
        lg_error_clear();
        fputs("<p class=\"none\">No spectra.bin: the spectral monitor was off for this run.</p></section>\n", p->f);
        return;
    }
    if (st != LG_OK) {
        fputs("<p class=\"none\">spectra.bin could not be read: ", p->f);
        esc(p->f, lg_error_msg());
        fputs("</p></section>\n", p->f);
        add_warning(p, "%s", lg_error_msg());
        lg_error_clear();
        return;
    }
    p->info->spectra_records = log.n;
    if (log.truncated) add_warning(p, "spectra.bin ends in a partial record (a crash during an append); it was skipped");
    fputs("<p>Singular values of every weight layer's matrix W_mat (a conv weight reshaped to out x in*kh*kw), "
          "from the spectral monitor. auc = mean of s_i/s_1: a sharp drop is the spectral collapse of SR-GAN "
          "(Liu et al. 2019, Fig. 4). The operator norm of a convolution is that of the convolution at the "
          "layer's input size (thesis 4.1.2); the applied norm divides it by the layer's normalization "
          "estimate.</p>\n",
          p->f);
    for (int i = 0; i < log.n; i++)
        for (int l = 0; l < log.rec[i].n_layers; l++)
            if (log.rec[i].layers[l].event == LG_COLLAPSE_ONSET)
                add_warning(p, "step %lld: spectral collapse onset in %s.%s (auc %.3g)", (long long)log.rec[i].step,
                            log.rec[i].net, log.rec[i].layers[l].name, log.rec[i].layers[l].auc);
    for (int i = 0; i < log.n; i++) {
        int seen = 0;
        for (int j = 0; j < i; j++) seen |= !strcmp(log.rec[j].net, log.rec[i].net);
        if (!seen) spectra_net(p, &log, log.rec[i].net);
    }
    if (log.n == 0) fputs("<p class=\"none\">spectra.bin holds no records yet.</p>\n", p->f);
    fputs("</section>\n", p->f);
    lg_spectra_log_free(&log);
}

/* ---- sample grids ---- */

typedef struct sfile {
    char path[1024];
    char name[256];
    long long step; /* -1: no number in the name */
} sfile;

static int sfile_cmp(const void *a, const void *b) {
    const sfile *x = a, *y = b;
    if (x->step != y->step) return x->step < 0 ? 1 : y->step < 0 ? -1 : (x->step < y->step ? -1 : 1);
    return strcmp(x->name, y->name);
}

static long long last_number(const char *s) {
    long long v = -1;
    for (const char *q = s; *q;) {
        if (*q >= '0' && *q <= '9') {
            v = 0;
            /* a name with more digits than fit saturates (no overflow) */
            for (; *q >= '0' && *q <= '9'; q++) v = v > (LLONG_MAX - 9) / 10 ? LLONG_MAX : v * 10 + (*q - '0');
        } else {
            q++;
        }
    }
    return v;
}

static int list_pngs(const char *dir, sfile **out, int *n, int *cap) {
    DIR *d = opendir(dir);
    if (!d) return 0;
    int found = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        size_t l = strlen(e->d_name);
        if (l < 5 || strcmp(e->d_name + l - 4, ".png") || e->d_name[0] == '.') continue;
        if (*n == *cap) {
            int nc = *cap ? 2 * *cap : 64;
            sfile *q = realloc(*out, (size_t)nc * sizeof *q);
            if (!q) break;
            *out = q;
            *cap = nc;
        }
        sfile *s = &(*out)[(*n)++];
        snprintf(s->path, sizeof s->path, "%s/%s", dir, e->d_name);
        snprintf(s->name, sizeof s->name, "%s", e->d_name);
        s->step = last_number(e->d_name);
        found++;
    }
    closedir(d);
    return found;
}

static void samples_section(page *p, const char *dir) {
    fputs("<section id=\"samples\"><h2>Samples over training</h2>\n", p->f);
    sfile *fs = NULL;
    int n = 0, cap = 0;
    char sd[1024];
    snprintf(sd, sizeof sd, "%s/samples", dir);
    if (!list_pngs(sd, &fs, &n, &cap)) list_pngs(dir, &fs, &n, &cap);
    if (n == 0) {
        fputs("<p class=\"none\">No sample images (samples/*.png or *.png) in this directory.</p></section>\n", p->f);
        free(fs);
        return;
    }
    qsort(fs, (size_t)n, sizeof *fs, sfile_cmp);
    int k = p->o->max_samples > 0 ? p->o->max_samples : 1;
    if (k > n) k = n;
    fprintf(p->f, "<p>%d of %d images, evenly spaced.</p>\n<div class=\"grid samples\">\n", k, n);
    int prev = -1, bad = 0, tried = 0;
    char bad_names[512] = ""; /* the first unreadable ones, for the note */
    for (int i = 0; i < k; i++) {
        int j = k == 1 ? n - 1 : (int)((double)i * (n - 1) / (k - 1) + 0.5);
        if (j == prev) continue;
        prev = j;
        char cap_[300];
        if (fs[j].step >= 0) snprintf(cap_, sizeof cap_, "step %lld (%s)", fs[j].step, fs[j].name);
        else snprintf(cap_, sizeof cap_, "%s", fs[j].name);
        int ok = embed_png(p, fs[j].path, cap_, cap_, "sample");
        tried++;
        p->info->sample_grids += ok;
        if (!ok && bad == 0)
            snprintf(p->info->sample_unreadable_first, sizeof p->info->sample_unreadable_first, "%s", fs[j].name);
        if (!ok && bad++ < 4) {
            size_t l = strlen(bad_names);
            snprintf(bad_names + l, sizeof bad_names - l, "%s%s", l ? ", " : "", fs[j].name);
        }
    }
    fputs("</div>\n", p->f);
    if (bad) { /* say so rather than show fewer images than the line above counts */
        fprintf(p->f, "<p class=\"none\">%d of the %d selected could not be read (not a PNG or unreadable): ",
                bad, tried);
        esc(p->f, bad_names);
        fputs(bad > 4 ? ", ...</p>\n" : "</p>\n", p->f);
    }
    fputs("</section>\n", p->f);
    p->info->sample_tried = tried;
    p->info->sample_unreadable = bad;
    free(fs);
}

/* ---- config ---- */

static void config_section(page *p, const char *dir) {
    fputs("<section id=\"config\"><h2>Config</h2>\n", p->f);
    char path[1024];
    snprintf(path, sizeof path, "%s/config.yaml", dir);
    unsigned char *buf = NULL;
    size_t len;
    const char *from = "config.yaml";
    char ck[1024];
    lg_st_file *sf = NULL;
    const char *text = NULL;
    if (lg_file_read_all(path, &buf, &len) == LG_OK) {
        text = (const char *)buf;
    } else {
        lg_error_clear();
        int64_t step;
        if (lg_checkpoint_latest(dir, ck, sizeof ck, &step) == LG_OK && lg_st_open(&sf, ck) == LG_OK) {
            text = lg_st_meta(sf, "config");
            from = ck;
        }
        lg_error_clear();
    }
    if (text) {
        p->info->has_config = 1;
        fputs("<p>From ", p->f);
        esc(p->f, from);
        fputs(".</p><pre>", p->f);
        esc(p->f, text);
        fputs("</pre>\n", p->f);
    } else {
        fputs("<p class=\"none\">No config.yaml and no checkpoint with a config in this directory.</p>\n", p->f);
    }
    fputs("</section>\n", p->f);
    free(buf);
    if (sf) lg_st_close(sf);
}

/* ---- the page ---- */

static const char k_style[] =
    "body{font-family:sans-serif;margin:1.5em auto;max-width:1400px;padding:0 1em;color:#222}"
    "h1{font-size:1.6em}h2{border-bottom:1px solid #ccc;margin-top:1.6em}"
    "nav a{margin-right:1em}.grid{display:flex;flex-wrap:wrap;gap:8px}"
    "figure{margin:0}figure img{max-width:100%;height:auto;border:1px solid #eee}"
    ".samples figure{text-align:center}.samples img{image-rendering:pixelated;width:320px}"
    "figcaption{font-size:.85em;color:#555}pre{background:#f6f6f6;padding:.8em;overflow:auto}"
    "table{border-collapse:collapse;font-size:.85em}td,th{border:1px solid #ddd;padding:2px 6px;text-align:right}"
    "td:first-child{text-align:left}tr.flag{background:#fdd}.warn{background:#fff3cd;padding:.5em 1em}"
    ".none{color:#777;font-style:italic}";

/* Records on load whether every image decoded and whether a script error
 * happened, for tests/report_chromium.sh (headless Chromium). */
static const char k_check[] =
    "(function(){var errs=0;"
    "window.addEventListener('error',function(){errs++;},true);"
    "window.addEventListener('load',function(){"
    "var im=document.getElementsByTagName('img'),ok=0,bad=0;"
    "for(var i=0;i<im.length;i++){if(im[i].complete&&im[i].naturalWidth>0)ok++;else bad++;}"
    "var d=document.createElement('div');d.id='lg-check';d.hidden=true;"
    "d.setAttribute('data-images-ok',ok);d.setAttribute('data-images-bad',bad);"
    "d.setAttribute('data-errors',errs);document.body.appendChild(d);});})();";

/* Does dir hold anything `lipgan train` writes that the report reads? */
static int is_run_dir(const char *dir) {
    static const char *const files[] = {"metrics.jsonl", "spectra.bin"};
    char path[4096];
    struct stat sb;
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        snprintf(path, sizeof path, "%s/%s", dir, files[i]);
        if (stat(path, &sb) == 0 && S_ISREG(sb.st_mode)) return 1;
    }
    int64_t step;
    if (lg_checkpoint_latest(dir, path, sizeof path, &step) == LG_OK) return 1;
    lg_error_clear(); /* "no checkpoint" is an answer here, not an error */
    return 0;
}

lg_status lg_report_write(const char *dir, const char *out_html, const lg_report_opts *opts, lg_report_info *info) {
    lg_report_info dummy;
    if (!info) info = &dummy;
    memset(info, 0, sizeof *info);
    lg_report_opts o = opts ? *opts : lg_report_opts_default();
    if (o.plot_width < 200) o.plot_width = 640;
    if (o.plot_height < 200) o.plot_height = 400;
    if (o.max_layer_plots <= 0) o.max_layer_plots = 64;
    struct stat sb;
    if (stat(dir, &sb) != 0 || !S_ISDIR(sb.st_mode))
        return lg_error_set(LG_ERR_NOT_FOUND, "report: %s is not a directory; pass a run directory (--out of lipgan train)",
                            dir);
    /* a directory without any of a run's files (a typo, a parent directory)
     * would give an empty page that looks like a report: refuse it, and
     * write nothing */
    if (!is_run_dir(dir))
        return lg_error_set(LG_ERR_NOT_FOUND,
                            "report: %s is not a run directory (no metrics.jsonl, ckpt_*.safetensors or "
                            "spectra.bin); pass the --out directory of lipgan train",
                            dir);
    page p;
    memset(&p, 0, sizeof p);
    p.o = &o;
    p.info = info;
    const char *tmp = getenv("TMPDIR");
    snprintf(p.tmpdir, sizeof p.tmpdir, "%s/lg_report.XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp(p.tmpdir))
        return lg_error_set(LG_ERR_IO, "report: cannot create a temporary directory %s: %s", p.tmpdir, strerror(errno));
    char *html = NULL;
    size_t hlen = 0;
    lg_status st = LG_OK;
    mdata m;
    memset(&m, 0, sizeof m);
    /* the body goes to its own stream first: the warnings gathered while
     * building it are printed above it */
    char *body = NULL;
    size_t blen = 0;
    p.f = open_memstream(&body, &blen);
    if (!p.f) {
        st = lg_error_set(LG_ERR_NOMEM, "report: out of memory");
        goto out;
    }
    if ((st = read_metrics(&p, dir, &m)) != LG_OK) goto out;
    curves_section(&p, &m);
    spectra_section(&p, dir);
    samples_section(&p, dir);
    config_section(&p, dir);
    if (fclose(p.f) != 0) {
        p.f = NULL;
        st = lg_error_set(LG_ERR_NOMEM, "report: out of memory");
        goto out;
    }
    p.f = NULL;

    FILE *f = open_memstream(&html, &hlen);
    if (!f) {
        st = lg_error_set(LG_ERR_NOMEM, "report: out of memory");
        goto out;
    }
    char title[1200];
    if (o.title) snprintf(title, sizeof title, "%s", o.title);
    else snprintf(title, sizeof title, "lipgan report: %s", dir);
    time_t now = time(NULL);
    struct tm tmv;
    char when[64];
    strftime(when, sizeof when, "%Y-%m-%d %H:%M:%S UTC", gmtime_r(&now, &tmv));
    fputs("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n<title>", f);
    esc(f, title);
    fprintf(f, "</title>\n<style>%s</style>\n<script>%s</script>\n</head><body>\n<h1>", k_style, k_check);
    esc(f, title);
    fputs("</h1>\n<p>Run directory <code>", f);
    esc(f, dir);
    fprintf(f, "</code>; report written %s by lipgan %s", when, lg_version());
    if (m.last_step >= 0) fprintf(f, "; metrics up to step %lld", (long long)m.last_step);
    fputs(".</p>\n<nav><a href=\"#curves\">curves</a><a href=\"#spectra\">spectra</a>"
          "<a href=\"#samples\">samples</a><a href=\"#config\">config</a></nav>\n",
          f);
    info->warnings = p.nwarn;
    if (p.nwarn) {
        fputs("<section id=\"warnings\" class=\"warn\"><h2>Warnings</h2><ul>\n", f);
        for (int i = 0; i < p.nwarn; i++) {
            fputs("<li>", f);
            esc(f, p.warn[i]);
            fputs("</li>\n", f);
        }
        fputs("</ul></section>\n", f);
    }
    fwrite(body, 1, blen, f);
    fputs("</body></html>\n", f);
    if (fclose(f) != 0) {
        st = lg_error_set(LG_ERR_NOMEM, "report: out of memory");
        goto out;
    }
    info->bytes = (long)hlen;
    st = lg_file_write_atomic(out_html, html, hlen);
out:
    if (p.f) fclose(p.f);
    free(body);
    free(html);
    mdata_free(&m);
    for (int i = 0; i < p.nwarn; i++) free(p.warn[i]);
    free(p.warn);
    rmdir(p.tmpdir); /* every plot file was removed after embedding */
    return st;
}
