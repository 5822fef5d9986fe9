/* lipgan spectra: singular-value spectra and Lipschitz bounds of every 2-D
 * and 4-D tensor of a .safetensors file (lipgan/lipschitz.h). */
#include <cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "lipgan/lipschitz.h"
#include "lipgan/safetensors.h"

static void usage(FILE *f) {
    fprintf(f,
            "usage: lipgan spectra FILE.safetensors [--input-size H] [--json] [--stride S]\n"
            "                      [--pad P] [--iters N] [--filter TEXT] [--convt TEXT] [--svals]\n"
            "\n"
            "For every 2-D and 4-D float tensor of FILE (e.g. a checkpoint): its shape, the\n"
            "largest singular value sigma by power iteration (%d iterations) and exactly\n"
            "(LAPACK), sigma0/sigma1, the rank metric r(W) = ||W||_F / (m sigma) (m = columns,\n"
            "thesis 4.2.1), and for 4-D tensors the true operator norm of the convolution at\n"
            "input size H x H (default 32; power iteration with conv and its transpose) next\n"
            "to the reshaped-matrix norm and the Tsuzuku bound sqrt(n) sigma(R_K). Last, the\n"
            "product of the per-layer norms (operator norm for 4-D): an upper bound on the\n"
            "Lipschitz constant of a plain feed-forward stack of these layers.\n"
            "\n"
            "  --input-size H  conv input size (default 32)\n"
            "  --stride S      conv stride (default 1; the file does not record it)\n"
            "  --pad P         conv padding (default (kh-1)/2, i.e. 'same' for odd kernels)\n"
            "  --iters N       max power iterations for the conv operator norm (default 200;\n"
            "                  stops earlier at 1e-6 relative change; 'converged' says which)\n"
            "  --filter TEXT   only tensors whose name contains TEXT\n"
            "  --convt TEXT    tensors whose name contains TEXT are transposed-conv weights\n"
            "                  (in, out, kh, kw): their matrix uses dim 1 as the output dim,\n"
            "                  and their operator norm (that of the adjoint conv) is taken at\n"
            "                  the transposed conv's OUTPUT size H\n"
            "  --svals         also print every singular value (always in --json)\n"
            "  --json          print one JSON document instead of the table\n",
            LG_SPECTRUM_POWER_ITERS);
}

typedef struct opts {
    const char *path, *filter, *convt;
    int input_size, stride, pad, iters, json, svals;
} opts;

static int parse_int(const char *s, int lo, int hi, int *out) {
    char *end = NULL;
    long v = strtol(s, &end, 10);
    if (!*s || *end || v < lo || v > hi) return 0;
    *out = (int)v;
    return 1;
}

static cJSON *json_num(double v) { return isfinite(v) ? cJSON_CreateNumber(v) : cJSON_CreateNull(); }

int lg_cmd_spectra(int argc, char **argv) {
    opts o = {NULL, NULL, NULL, 32, 1, -1, 200, 0, 0};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            usage(stdout);
            return LG_EXIT_OK;
        }
        int takes = !strcmp(a, "--input-size") || !strcmp(a, "--stride") || !strcmp(a, "--pad") ||
                    !strcmp(a, "--iters") || !strcmp(a, "--filter") || !strcmp(a, "--convt");
        if (takes && i + 1 >= argc) return lg_cli_usage_error("spectra", "%s needs a value", a);
        if (!strcmp(a, "--input-size")) {
            if (!parse_int(argv[++i], 1, 4096, &o.input_size))
                return lg_cli_usage_error("spectra", "--input-size must be 1..4096");
        } else if (!strcmp(a, "--stride")) {
            if (!parse_int(argv[++i], 1, 64, &o.stride))
                return lg_cli_usage_error("spectra", "--stride must be 1..64");
        } else if (!strcmp(a, "--pad")) {
            if (!parse_int(argv[++i], 0, 64, &o.pad))
                return lg_cli_usage_error("spectra", "--pad must be 0..64");
        } else if (!strcmp(a, "--iters")) {
            if (!parse_int(argv[++i], 1, 1000000, &o.iters))
                return lg_cli_usage_error("spectra", "--iters must be 1..1000000");
        } else if (!strcmp(a, "--filter")) {
            o.filter = argv[++i];
        } else if (!strcmp(a, "--convt")) {
            o.convt = argv[++i];
        } else if (!strcmp(a, "--json")) {
            o.json = 1;
        } else if (!strcmp(a, "--svals")) {
            o.svals = 1;
        } else if (a[0] == '-' && a[1]) {
            return lg_cli_usage_error("spectra", "unknown option '%s'", a);
        } else if (!o.path) {
            o.path = a;
        } else {
            return lg_cli_usage_error("spectra", "more than one file given ('%s')", a);
        }
    }
    if (!o.path) return lg_cli_usage_error("spectra", "no file given");

    lg_st_file *f = NULL;
    lg_status s = lg_st_open(&f, o.path);
    if (s != LG_OK) return lg_cli_fail("spectra", s);

    cJSON *root = o.json ? cJSON_CreateObject() : NULL, *arr = NULL;
    if (root) {
        cJSON_AddStringToObject(root, "file", o.path);
        cJSON_AddNumberToObject(root, "input_size", o.input_size);
        arr = cJSON_AddArrayToObject(root, "tensors");
    }
    double upper = 1.0;
    int count = 0;
    for (size_t t = 0; t < lg_st_count(f) && s == LG_OK; t++) {
        const lg_st_tensor *ti = lg_st_at(f, t);
        if (ti->ndim != 2 && ti->ndim != 4) continue;
        if (ti->dtype != LG_ST_F32 && ti->dtype != LG_ST_F64 && ti->dtype != LG_ST_F16 &&
            ti->dtype != LG_ST_BF16)
            continue;
        if (ti->numel == 0) continue;
        if (o.filter && !strstr(ti->name, o.filter)) continue;
        const int convt = ti->ndim == 4 && o.convt && strstr(ti->name, o.convt);
        float *w = malloc(sizeof(float) * (size_t)ti->numel);
        double *sv = NULL;
        if (!w) {
            s = lg_error_set(LG_ERR_NOMEM, "out of memory reading %s", ti->name);
            break;
        }
        if ((s = lg_st_get_f32(f, ti->name, -1, NULL, w)) != LG_OK) {
            free(w);
            break;
        }
        const int out_dim = convt ? 1 : 0;
        int64_t rows, cols;
        lg_weight_mat_dims(ti->ndim, ti->shape, out_dim, &rows, &cols);
        sv = malloc(sizeof(double) * (size_t)(rows < cols ? rows : cols));
        lg_spectrum_info info;
        if (!sv) s = lg_error_set(LG_ERR_NOMEM, "out of memory analysing %s", ti->name);
        else s = lg_spectrum_analyze(w, ti->ndim, ti->shape, out_dim, 0, 1, 0, &info, sv);
        if (s != LG_OK) {
            lg_error_set(s, "%s: tensor %s: %s", o.path, ti->name, lg_error_msg());
            free(w);
            free(sv);
            break;
        }
        /* conv operator norm; a transposed conv's operator is the adjoint of
         * the conv whose weight (oc' = in, c' = out, kh, kw) it stores, so its
         * norm, reshaped kernel R_K and Tsuzuku bound are that conv's */
        int have_conv = 0, pad = 0;
        lg_conv_norms cn;
        memset(&cn, 0, sizeof cn);
        if (ti->ndim == 4) {
            pad = o.pad >= 0 ? o.pad : (int)(ti->shape[2] - 1) / 2;
            lg_status cs = lg_conv_norms_compute(w, (int)ti->shape[0], (int)ti->shape[1],
                                                 (int)ti->shape[2], (int)ti->shape[3],
                                                 o.input_size, o.input_size, o.stride, pad,
                                                 o.iters, 1e-6, 0, &cn);
            if (cs == LG_OK) have_conv = 1;
            else if (cs != LG_ERR_SHAPE) {
                s = cs;
                free(w);
                free(sv);
                break;
            }
        }
        upper *= have_conv ? cn.op_norm : info.sigma_exact;
        count++;
        char shp[64];
        if (ti->ndim == 2)
            snprintf(shp, sizeof shp, "(%lld,%lld)", (long long)ti->shape[0],
                     (long long)ti->shape[1]);
        else
            snprintf(shp, sizeof shp, "(%lld,%lld,%lld,%lld)%s", (long long)ti->shape[0],
                     (long long)ti->shape[1], (long long)ti->shape[2], (long long)ti->shape[3],
                     convt ? "T" : "");
        const int64_t nsv = rows < cols ? rows : cols;
        if (root) {
            cJSON *e = cJSON_CreateObject();
            cJSON_AddStringToObject(e, "name", ti->name);
            cJSON *sh = cJSON_AddArrayToObject(e, "shape");
            for (int d = 0; d < ti->ndim; d++)
                cJSON_AddItemToArray(sh, cJSON_CreateNumber((double)ti->shape[d]));
            cJSON_AddStringToObject(e, "kind", ti->ndim == 2 ? "linear" : convt ? "conv_transpose2d" : "conv2d");
            cJSON_AddNumberToObject(e, "rows", (double)rows);
            cJSON_AddNumberToObject(e, "cols", (double)cols);
            cJSON_AddItemToObject(e, "sigma_power", json_num(info.sigma_power));
            cJSON_AddItemToObject(e, "sigma_exact", json_num(info.sigma_exact));
            cJSON_AddItemToObject(e, "sigma1", json_num(info.sigma1));
            cJSON_AddItemToObject(e, "sigma0_over_sigma1", json_num(info.ratio01));
            cJSON_AddItemToObject(e, "r", json_num(info.r));
            cJSON *sva = cJSON_AddArrayToObject(e, "singular_values");
            for (int64_t k = 0; k < nsv; k++) cJSON_AddItemToArray(sva, json_num(sv[k]));
            if (ti->ndim == 4 && have_conv) {
                cJSON *c = cJSON_AddObjectToObject(e, "conv");
                cJSON_AddNumberToObject(c, "input_size", o.input_size);
                cJSON_AddNumberToObject(c, "stride", o.stride);
                cJSON_AddNumberToObject(c, "pad", pad);
                cJSON_AddItemToObject(c, "op_norm", json_num(cn.op_norm));
                cJSON_AddItemToObject(c, "reshaped", json_num(cn.reshaped));
                cJSON_AddItemToObject(c, "tsuzuku", json_num(cn.tsuzuku));
                cJSON_AddNumberToObject(c, "n", cn.n);
                cJSON_AddNumberToObject(c, "iters", cn.iters);
                cJSON_AddBoolToObject(c, "converged", cn.converged);
            } else if (ti->ndim == 4) {
                cJSON_AddNullToObject(e, "conv"); /* kernel larger than the padded input */
            }
            cJSON_AddItemToArray(arr, e);
        } else {
            if (count == 1) /* the header once there is a row to print */
                printf("%-36s %-18s %10s %10s %8s %9s %10s %10s %10s\n", "tensor", "shape",
                       "sigma_pi", "sigma", "s0/s1", "r(W)", "conv_op", "reshaped", "tsuzuku");
            char conv[3][16] = {"", "", ""};
            if (have_conv) {
                snprintf(conv[0], 16, "%.5g%s", cn.op_norm, cn.converged ? "" : "*");
                snprintf(conv[1], 16, "%.5g", cn.reshaped);
                snprintf(conv[2], 16, "%.5g", cn.tsuzuku);
            } else if (ti->ndim == 4) {
                snprintf(conv[0], 16, "n/a");
            }
            printf("%-36s %-18s %10.5g %10.5g %8.4g %9.4g %10s %10s %10s\n", ti->name, shp,
                   info.sigma_power, info.sigma_exact, info.ratio01, info.r, conv[0], conv[1],
                   conv[2]);
            if (o.svals) {
                printf("  singular values:");
                for (int64_t k = 0; k < nsv; k++) printf(" %.6g", sv[k]);
                printf("\n");
            }
        }
        free(w);
        free(sv);
    }
    if (s == LG_OK && count == 0)
        s = lg_error_set(LG_ERR_FORMAT, "%s: no 2-D or 4-D float tensors%s%s", o.path,
                         o.filter ? " matching " : "", o.filter ? o.filter : "");
    if (s != LG_OK) {
        cJSON_Delete(root);
        lg_st_close(f);
        return lg_cli_fail("spectra", s);
    }
    if (root) {
        cJSON_AddItemToObject(root, "lipschitz_upper_product", json_num(upper));
        char *text = cJSON_Print(root);
        if (text) printf("%s\n", text);
        free(text);
        cJSON_Delete(root);
    } else {
        printf("conv_op: operator norm at %dx%d input, stride %d, pad %s%s\n", o.input_size,
               o.input_size, o.stride, o.pad >= 0 ? "as given" : "(kh-1)/2",
               " (* = not converged in --iters)");
        printf("product of per-layer norms (Lipschitz upper bound of a feed-forward stack): %.6g\n",
               upper);
    }
    lg_st_close(f);
    return LG_EXIT_OK;
}
