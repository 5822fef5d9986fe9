/* libFuzzer harness: safetensors, from a buffer and from a file, and the
 * readers built on it that need no trainer: FID statistics, the
 * classifier, the Inception weights and lg_st_peek_meta. Checkpoints:
 * fuzz_checkpoint.c. Seeds: tools/fuzz/corpus/safetensors/. */
#include <math.h>

#include "fuzz_common.h"
#include "lipgan/classifier.h"
#include "lipgan/inception.h"
#include "lipgan/metrics.h"
#include "lipgan/safetensors.h"

/* Reads every tensor of an opened file both ways and checks the tables. */
static void st_walk(const lg_st_file *f) {
    size_t n = lg_st_count(f);
    for (size_t i = 0; i < n; i++) {
        const lg_st_tensor *t = lg_st_at(f, i);
        FZ_ASSERT(lg_st_find(f, t->name) == t);
        FZ_ASSERT(t->numel >= 0 && t->ndim >= 0);
        /* numel <= the file's bytes (tensors tile the data), so this is small */
        void *out = malloc((size_t)(t->numel ? t->numel : 1) * 8);
        if (!out) abort();
        (void)FZ(lg_st_get_f32(f, t->name, -1, NULL, out));
        (void)FZ(lg_st_get_i64(f, t->name, -1, NULL, out));
        (void)FZ(lg_st_get_f32(f, t->name, t->ndim, t->shape, out));
        free(out);
    }
    for (size_t i = 0; i < lg_st_meta_count(f); i++) {
        const char *k, *v;
        lg_st_meta_at(f, i, &k, &v);
        FZ_ASSERT(k && v && lg_st_meta(f, k));
    }
}

static lg_status fuzz_safetensors(const uint8_t *in, size_t size) {
    uint8_t *data = fz_st_fixed_copy(in, size);
    lg_st_file *f = NULL;
    lg_status s = FZ_MAIN(lg_st_parse(&f, data, size, "fuzz.safetensors"));
    if (s == LG_OK) {
        st_walk(f);
        lg_st_close(f);
    }
    char path[128];
    fz_path(path, sizeof path, "in.safetensors");
    fz_write(path, data, size);
    /* the file reader must agree with the buffer reader */
    lg_status s2 = FZ(lg_st_open(&f, path));
    FZ_ASSERT((s2 == LG_OK) == (s == LG_OK));
    if (s2 == LG_OK) lg_st_close(f);
    char meta[64];
    (void)lg_st_peek_meta(path, "format", meta, sizeof meta);
    lg_fid_stats st;
    if (FZ(lg_fid_stats_load(&st, path)) == LG_OK) {
        int c, h, w;
        (void)lg_fid_stats_source_shape(st.source, &c, &h, &w);
        lg_fid_stats_free(&st);
    }
    lg_classifier *cls;
    if (FZ(lg_classifier_load(&cls, path, NULL)) == LG_OK) lg_classifier_free(cls);
    lg_inception *inc;
    if (FZ(lg_inception_load(&inc, path)) == LG_OK) lg_inception_free(inc);
    free(data);
    return s;
}

LG_FUZZ_MAIN(fuzz_safetensors)
