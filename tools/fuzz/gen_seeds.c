/* Writes the seed corpora of the fuzz harnesses into
 * tools/fuzz/corpus/<target>/ (run from the repository root; `make fuzz`
 * builds it as $(BUILD)/fuzz/gen_seeds). Every seed is a small valid input
 * (a few KB; STL-10's one image is 27 KB), named "ok-*" so that
 * tests/test_fuzz_regress.c expects the harness to accept it. */
#include <png.h>
#include <sys/stat.h>

#define LG_FUZZ_NO_MAIN
#include "fuzz_checkpoint.c"
#include "lipgan/classifier.h"
#include "lipgan/fileio.h"
#include "lipgan/image.h"
#include "lipgan/metrics.h"
#include "lipgan/safetensors.h"

#define OUT "tools/fuzz/corpus"

static void die(const char *what) {
    fprintf(stderr, "gen_seeds: %s: %s\n", what, lg_error_msg());
    exit(1);
}

/* Growable byte buffer of one seed. */
typedef struct seed {
    uint8_t *p;
    size_t n;
} seed;

static void put(seed *s, const void *d, size_t n) {
    s->p = realloc(s->p, s->n + n + 1);
    if (!s->p) abort();
    memcpy(s->p + s->n, d, n);
    s->n += n;
}
static void put_file(seed *s, const char *path) {
    unsigned char *b;
    size_t n;
    if (lg_file_read_all(path, &b, &n) != LG_OK) die(path);
    put(s, b, n);
    free(b);
}
static void put_sep(seed *s) { put(s, FZ_SEP, FZ_SEP_LEN); }
static void save(const char *target, const char *name, seed *s) {
    char p[512];
    snprintf(p, sizeof p, "%s/%s", OUT, target);
    mkdir(OUT, 0755);
    mkdir(p, 0755);
    snprintf(p, sizeof p, "%s/%s/ok-%s", OUT, target, name);
    fz_write(p, s->p, s->n);
    free(s->p);
    s->p = NULL;
    s->n = 0;
}

/* ---- safetensors ---- */

/* A hand-made file: header JSON (padded to 8) and data. */
static void st_raw(seed *s, const char *json, const void *data, size_t n) {
    size_t h = strlen(json), pad = (8 - h % 8) % 8;
    uint64_t len = h + pad;
    put(s, &len, 8);
    put(s, json, h);
    put(s, "        ", pad);
    put(s, data, n);
}

static void seeds_safetensors(void) {
    seed s = {0};
    put_file(&s, "tests/data/st_from_python.safetensors");
    save("safetensors", "python.safetensors", &s);

    char tmp[128];
    fz_path(tmp, sizeof tmp, "w.safetensors");
    lg_st_writer *w;
    if (lg_st_writer_create(&w) != LG_OK) die("writer");
    float f[6] = {1, -2, 3.5f, 0, 1e-3f, 7};
    int64_t i[3] = {1, -5, 1LL << 40};
    lg_st_writer_add_meta(w, "format", "x");
    lg_st_writer_add_meta(w, "config", "loss: hinge\n");
    lg_st_writer_add_f32(w, "a.weight", 2, (int64_t[]){2, 3}, f);
    lg_st_writer_add_f32(w, "s", 0, NULL, f + 2);
    lg_st_writer_add_i64(w, "n", 1, (int64_t[]){3}, i);
    lg_st_writer_add_f32(w, "empty", 2, (int64_t[]){0, 4}, f);
    if (lg_st_writer_write(w, tmp, 0) != LG_OK) die("write");
    lg_st_writer_free(w);
    put_file(&s, tmp);
    save("safetensors", "writer.safetensors", &s);

    /* every dtype the getters convert */
    uint8_t d[2 + 2 + 8 + 4 + 8 + 2 + 1] = {0x00, 0x3c, 0x80, 0x3f, 0, 0, 0, 0, 0, 0, 0xf0, 0x3f,
                                            0xff, 0xff, 0xff, 0xff, 1, 0, 0, 0, 0, 0, 0, 0, 0xfe, 0xff, 1};
    st_raw(&s,
           "{\"h\":{\"dtype\":\"F16\",\"shape\":[1],\"data_offsets\":[0,2]},"
           "\"b\":{\"dtype\":\"BF16\",\"shape\":[1],\"data_offsets\":[2,4]},"
           "\"d\":{\"dtype\":\"F64\",\"shape\":[],\"data_offsets\":[4,12]},"
           "\"i\":{\"dtype\":\"I32\",\"shape\":[1],\"data_offsets\":[12,16]},"
           "\"u\":{\"dtype\":\"U64\",\"shape\":[1],\"data_offsets\":[16,24]},"
           "\"k\":{\"dtype\":\"I16\",\"shape\":[1,1],\"data_offsets\":[24,26]},"
           "\"z\":{\"dtype\":\"BOOL\",\"shape\":[1],\"data_offsets\":[26,27]},"
           "\"__metadata__\":{\"n\":\"5\"}}",
           d, sizeof d);
    save("safetensors", "dtypes.safetensors", &s);

    /* FID statistics (lg_fid_stats_save) */
    double mu[3] = {0.5, -1, 2}, sg[9] = {1, 0.1, 0, 0.1, 2, 0, 0, 0, 3};
    lg_fid_stats st = {.dim = 3, .n = 10, .mu = mu, .sigma = sg};
    fz_path(tmp, sizeof tmp, "fid.safetensors");
    if (lg_fid_stats_save(&st, tmp, "test; data x (png, train, 1x4x4), first 10 of 10 images") != LG_OK)
        die("fid");
    put_file(&s, tmp);
    save("safetensors", "fid_stats.safetensors", &s);

    /* the classifier's and Inception's metadata, with a small tensor each
     * (the real weights are megabytes) */
    char json[1024];
    snprintf(json, sizeof json,
             "{\"__metadata__\":{\"format\":\"%s\",\"arch\":\"%s\"},"
             "\"conv1.bias\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}",
             LG_CLS_FORMAT, LG_CLS_ARCH);
    st_raw(&s, json, f, 4);
    save("safetensors", "classifier_meta.safetensors", &s);
    uint8_t fc[2048] = {0};
    st_raw(&s,
           "{\"__metadata__\":{\"lipgan_inception_variant\":\"fid\"},"
           "\"fc.weight\":{\"dtype\":\"U8\",\"shape\":[1,2048],\"data_offsets\":[0,2048]}}",
           fc, sizeof fc);
    save("safetensors", "inception_meta.safetensors", &s);
}

/* ---- checkpoint, spectra, report: one toy run ---- */

static void seeds_run(void) {
    lg_config c;
    if (ckpt_config(&c) != LG_OK) die("config");
    lg_trainer *t;
    if (lg_trainer_create(&t, &c) != LG_OK) die("trainer");
    char p[256], run[128];
    seed s = {0};
    fz_path(p, sizeof p, "step0.safetensors");
    if (lg_trainer_save(t, p) != LG_OK) die("save");
    put_file(&s, p);
    save("checkpoint", "step0.safetensors", &s);
    fz_path(run, sizeof run, "run");
    lg_train_opts o = {.out_dir = run};
    if (lg_trainer_run(t, &o) != LG_OK) die("run");
    lg_trainer_free(t);
    int64_t step;
    if (lg_checkpoint_latest(run, p, sizeof p, &step) != LG_OK) die("latest");
    put_file(&s, p);
    save("checkpoint", "monitor.safetensors", &s);
    snprintf(p, sizeof p, "%s/spectra.bin", run);
    put_file(&s, p);
    save("spectra", "toy.bin", &s);

    /* report: metrics.jsonl, spectra.bin, config.yaml, a sample name, a
     * sample grid */
    snprintf(p, sizeof p, "%s/metrics.jsonl", run);
    put_file(&s, p);
    put_sep(&s);
    snprintf(p, sizeof p, "%s/spectra.bin", run);
    put_file(&s, p);
    put_sep(&s);
    put(&s, "loss: hinge\nseed: 3\n", 20);
    put_sep(&s);
    put(&s, "step_000002", 11);
    put_sep(&s);
    float x[4 * 4 * 4];
    for (int i = 0; i < 64; i++) x[i] = (float)(i % 7) / 3.0f - 1.0f;
    fz_path(p, sizeof p, "grid.png");
    if (lg_image_write_grid(p, x, 4, 1, 4, 4, 2) != LG_OK) die("grid");
    put_file(&s, p);
    save("report", "run", &s);
    snprintf(p, sizeof p, "%s/metrics.jsonl", run);
    put_file(&s, p);
    put(&s, "{\"step\":3,\"loss_d\":null,\"spec_D_warning\":\"collapse\"}\nnot json\n", 61);
    save("report", "metrics_only", &s);
}

/* ---- config ---- */

static void seeds_config(void) {
    static const char *const files[] = {"toy_ring8", "fmnist_sn_hinge", "cifar10_srgan", "cifar10_wgan_clip"};
    seed s = {0};
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        char p[128];
        snprintf(p, sizeof p, "configs/%s.yaml", files[i]);
        put_file(&s, p);
        snprintf(p, sizeof p, "%s.yaml", files[i]);
        save("config", p, &s);
    }
    const char *flow = "{data: {format: png, path: \"/tmp/a b\\x7e\", channels: 1}, optim: {g: {lr: 1/128}}}\n";
    put(&s, flow, strlen(flow));
    save("config", "flow.yaml", &s);
    const char *set = "--set\nmodel.g.width=8\noptim.d.eps=1e-8\ndata.path=x y\nlipschitz.d.sn=no\n";
    put(&s, set, strlen(set));
    save("config", "set.txt", &s);
}

/* ---- data sets ---- */

static void be32(seed *s, uint32_t v) {
    uint8_t b[4] = {(uint8_t)(v >> 24), (uint8_t)(v >> 16), (uint8_t)(v >> 8), (uint8_t)v};
    put(s, b, 4);
}

/* An IDX image file of n h x w images (and labels) into s. */
static void idx_images(seed *s, int n, int h, int w) {
    be32(s, 0x803), be32(s, (uint32_t)n), be32(s, (uint32_t)h), be32(s, (uint32_t)w);
    for (int i = 0; i < n * h * w; i++) put(s, &(uint8_t){(uint8_t)(i * 37)}, 1);
}
static void idx_labels(seed *s, int n) {
    be32(s, 0x801), be32(s, (uint32_t)n);
    for (int i = 0; i < n; i++) put(s, &(uint8_t){(uint8_t)(i % 10)}, 1);
}
static void gz(seed *s, const seed *raw) {
    char p[128];
    fz_path(p, sizeof p, "x.gz");
    gzFile g = gzopen(p, "wb9");
    if (!g || gzwrite(g, raw->p, (unsigned)raw->n) != (int)raw->n || gzclose(g) != Z_OK) die("gzip");
    put_file(s, p);
}

static void seeds_data(void) {
    seed s = {0}, r = {0};
    put(&s, &(uint8_t){0}, 1); /* native size, labels, 10 classes */
    idx_images(&s, 3, 4, 5);
    put_sep(&s);
    idx_labels(&s, 3);
    save("idx", "raw", &s);
    put(&s, &(uint8_t){2}, 1); /* padded to 32 */
    idx_images(&r, 2, 28, 28);
    gz(&s, &r);
    free(r.p);
    r = (seed){0};
    put_sep(&s);
    idx_labels(&r, 2);
    gz(&s, &r);
    free(r.p);
    r = (seed){0};
    save("idx", "gzip_pad32", &s);
    put(&s, &(uint8_t){4}, 1); /* no labels */
    idx_images(&s, 1, 1, 1);
    save("idx", "nolabels", &s);

    for (int n = 1; n <= 2; n++) {
        for (int i = 0; i < n; i++) {
            uint8_t rec[3073];
            rec[0] = (uint8_t)(i + 3);
            for (int j = 1; j < 3073; j++) rec[j] = (uint8_t)(j * 7 + i);
            put(&s, rec, sizeof rec);
        }
        save("cifar", n == 1 ? "one" : "two", &s);
    }

    put(&s, &(uint8_t){2}, 1); /* size 48, labels */
    static uint8_t img[27648];
    for (int j = 0; j < 27648; j++) img[j] = (uint8_t)(j * 13);
    put(&s, img, sizeof img);
    put_sep(&s);
    put(&s, &(uint8_t){10}, 1);
    save("stl10", "one48", &s);
}

/* ---- PNG ---- */

typedef struct pngmem {
    seed *s;
} pngmem;
static void png_put(png_structp png, png_bytep d, size_t n) { put(((pngmem *)png_get_io_ptr(png))->s, d, n); }
static void png_flush(png_structp png) { (void)png; }

/* A w x h PNG of the given type and depth (optionally interlaced or with
 * tRNS) into s; pixel bytes are a pattern. */
static void png_make(seed *s, int w, int h, int type, int depth, int interlace, int trns) {
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
    png_infop info = png_create_info_struct(png);
    if (setjmp(png_jmpbuf(png))) die("png");
    pngmem m = {s};
    png_set_write_fn(png, &m, png_put, png_flush);
    png_set_IHDR(png, info, (png_uint_32)w, (png_uint_32)h, depth, type,
                 interlace ? PNG_INTERLACE_ADAM7 : PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT,
                 PNG_FILTER_TYPE_DEFAULT);
    if (type == PNG_COLOR_TYPE_PALETTE) {
        png_color pal[4] = {{0, 0, 0}, {255, 0, 0}, {0, 255, 0}, {10, 20, 30}};
        png_set_PLTE(png, info, pal, 4);
        if (trns) png_set_tRNS(png, info, (png_byte[]){0, 128}, 2, NULL);
    } else if (trns && type == PNG_COLOR_TYPE_GRAY) {
        png_color_16 t = {.gray = 1};
        png_set_tRNS(png, info, NULL, 0, &t);
    }
    png_write_info(png, info);
    int ch = type == PNG_COLOR_TYPE_RGB ? 3 : type == PNG_COLOR_TYPE_RGBA ? 4 : type == PNG_COLOR_TYPE_GA ? 2 : 1;
    size_t rowbytes = ((size_t)w * ch * depth + 7) / 8;
    png_bytep row = malloc(rowbytes);
    int passes = png_set_interlace_handling(png);
    for (int p = 0; p < passes; p++)
        for (int y = 0; y < h; y++) {
            for (size_t i = 0; i < rowbytes; i++) row[i] = (png_byte)(type == PNG_COLOR_TYPE_PALETTE && depth == 8 ? (y + i) % 4 : y * 31 + i * 17);
            png_write_row(png, row);
        }
    png_write_end(png, NULL);
    free(row);
    png_destroy_write_struct(&png, &info);
}

static void seeds_png(void) {
    seed s = {0};
    png_make(&s, 3, 2, PNG_COLOR_TYPE_GRAY, 8, 0, 0);
    save("png", "gray8.png", &s);
    png_make(&s, 5, 3, PNG_COLOR_TYPE_GRAY, 1, 0, 1);
    save("png", "gray1_trns.png", &s);
    png_make(&s, 4, 4, PNG_COLOR_TYPE_GRAY, 4, 1, 0);
    save("png", "gray4_interlaced.png", &s);
    png_make(&s, 2, 2, PNG_COLOR_TYPE_GA, 16, 0, 0);
    save("png", "ga16.png", &s);
    png_make(&s, 3, 3, PNG_COLOR_TYPE_RGB, 8, 1, 0);
    save("png", "rgb8_interlaced.png", &s);
    png_make(&s, 2, 3, PNG_COLOR_TYPE_RGB, 16, 0, 0);
    save("png", "rgb16.png", &s);
    png_make(&s, 4, 2, PNG_COLOR_TYPE_RGBA, 8, 0, 0);
    save("png", "rgba8.png", &s);
    png_make(&s, 6, 2, PNG_COLOR_TYPE_PALETTE, 2, 0, 1);
    save("png", "palette2_trns.png", &s);
    png_make(&s, 3, 5, PNG_COLOR_TYPE_PALETTE, 8, 0, 0);
    save("png", "palette8.png", &s);
}

/* ---- tfevents: PNGs of every colour type, some followed by a tag ---- */

static void seeds_tfevents(void) {
    static const struct {
        const char *name, *tag; /* tag NULL: the harness's default */
        int w, h, type, depth, interlace, trns;
    } t[] = {
        {"gray8.png", NULL, 3, 2, PNG_COLOR_TYPE_GRAY, 8, 0, 0},
        {"gray1_trns.png", "samples/gray", 5, 3, PNG_COLOR_TYPE_GRAY, 1, 0, 1},
        {"ga16.png", NULL, 2, 2, PNG_COLOR_TYPE_GA, 16, 0, 0},
        {"rgb8_interlaced.png", "loss/D", 3, 3, PNG_COLOR_TYPE_RGB, 8, 1, 0},
        {"rgba8.png", "\xc3\xa9" "chantillons \xe2\x86\x92 \xf0\x9f\x96\xbc", 4, 2, PNG_COLOR_TYPE_RGBA, 8, 0, 0},
        {"palette8.png", NULL, 3, 5, PNG_COLOR_TYPE_PALETTE, 8, 0, 0},
        {"palette2_trns.png", "samples", 6, 2, PNG_COLOR_TYPE_PALETTE, 2, 0, 1},
    };
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
        seed s = {0};
        png_make(&s, t[i].w, t[i].h, t[i].type, t[i].depth, t[i].interlace, t[i].trns);
        if (t[i].tag) {
            put_sep(&s);
            put(&s, t[i].tag, strlen(t[i].tag));
        }
        save("tfevents", t[i].name, &s);
    }
}

int main(void) {
    (void)fz_dir();
    seeds_safetensors();
    seeds_config();
    seeds_data();
    seeds_png();
    seeds_run();
    seeds_tfevents();
    printf("gen_seeds: wrote %s/*/\n", OUT);
    return 0;
}
