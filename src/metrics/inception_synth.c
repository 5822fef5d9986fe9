/* Synthetic Inception-v3 weights: every value a hash of (seed, name, index)
 * so that tools/gen_inception_reference.py reproduces them bit for bit and
 * only the reference outputs need to be committed. Formula: inception.h. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lipgan/safetensors.h"
#include "metrics/inception_internal.h"

#define GOLDEN32 0x9E3779B9u

uint32_t lg_inc_fnv1a32(const char *s) {
    uint32_t h = 2166136261u;
    for (; *s; s++) {
        h ^= (uint8_t)*s;
        h *= 16777619u;
    }
    return h;
}

/* murmur3's 32-bit finalizer */
static uint32_t fmix32(uint32_t h) {
    h ^= h >> 16;
    h *= 0x85EBCA6Bu;
    h ^= h >> 13;
    h *= 0xC2B2AE35u;
    h ^= h >> 16;
    return h;
}

float lg_inc_synth_value(uint32_t key, uint32_t i, double offset, double scale) {
    uint32_t h = fmix32(key + i * GOLDEN32);
    double u = (double)((int32_t)(h >> 8) - (1 << 23)) * 0x1p-23; /* exact, [-1, 1) */
    double v = scale * u;  /* two separately rounded double ops, as in */
    v = offset + v;        /* the Python script (no FMA: -std=c11) */
    return (float)v;
}

static void fill(float *out, size_t n, const char *name, uint32_t seed, double offset,
                 double scale) {
    uint32_t key = lg_inc_fnv1a32(name) ^ (uint32_t)(seed * GOLDEN32);
    for (size_t i = 0; i < n; i++) out[i] = lg_inc_synth_value(key, (uint32_t)i, offset, scale);
}

lg_status lg_inception_write_synthetic(const char *path, uint32_t seed) {
    lg_inc_conv conv[LG_INC_NCONV];
    lg_inc_block blocks[LG_INC_NBLOCK];
    lg_inc_build_table(conv, blocks);
    const int K = 1008, D = LG_INCEPTION_POOL3_DIM;
    size_t total = (size_t)K * D + K;
    for (int i = 0; i < LG_INC_NCONV; i++)
        total += (size_t)conv[i].oc * conv[i].ic * conv[i].kh * conv[i].kw + 4 * (size_t)conv[i].oc;
    float *buf = malloc(total * sizeof(float));
    /* the writer copies names but keeps data pointers; names live here */
    char(*names)[96] = malloc(sizeof(*names) * (LG_INC_NCONV * 5 + 2));
    lg_st_writer *wr = NULL;
    lg_status s = LG_OK;
    if (!buf || !names) {
        s = lg_error_set(LG_ERR_NOMEM, "synthetic Inception weights: out of memory");
        goto done;
    }
    if ((s = lg_st_writer_create(&wr)) != LG_OK) goto done;
    char seedtxt[64];
    snprintf(seedtxt, sizeof seedtxt, "synthetic, lg_inception_write_synthetic seed %u", seed);
    if ((s = lg_st_writer_add_meta(wr, "lipgan_inception_variant", "fid")) != LG_OK) goto done;
    if ((s = lg_st_writer_add_meta(wr, "source", seedtxt)) != LG_OK) goto done;
    float *p = buf;
    int nn = 0;
    for (int i = 0; i < LG_INC_NCONV; i++) {
        const lg_inc_conv *c = &conv[i];
        int64_t wshape[4] = {c->oc, c->ic, c->kh, c->kw}, oc = c->oc;
        size_t fan_in = (size_t)c->ic * c->kh * c->kw;
        snprintf(names[nn], sizeof names[nn], "%.47s.conv.weight", c->name);
        fill(p, (size_t)c->oc * fan_in, names[nn], seed, 0.0, sqrt(6.0 / (double)fan_in));
        if ((s = lg_st_writer_add_f32(wr, names[nn], 4, wshape, p)) != LG_OK) goto done;
        p += (size_t)c->oc * fan_in;
        nn++;
        static const char *bn[4] = {"weight", "bias", "running_mean", "running_var"};
        static const double off[4] = {1.0, 0.0, 0.0, 1.0}, sc[4] = {0.25, 0.1, 0.1, 0.25};
        for (int j = 0; j < 4; j++) {
            snprintf(names[nn], sizeof names[nn], "%.47s.bn.%s", c->name, bn[j]);
            fill(p, (size_t)c->oc, names[nn], seed, off[j], sc[j]);
            if ((s = lg_st_writer_add_f32(wr, names[nn], 1, &oc, p)) != LG_OK) goto done;
            p += c->oc;
            nn++;
        }
    }
    int64_t fshape[2] = {K, D};
    fill(p, (size_t)K * D, "fc.weight", seed, 0.0, sqrt(3.0 / (double)D));
    if ((s = lg_st_writer_add_f32(wr, "fc.weight", 2, fshape, p)) != LG_OK) goto done;
    p += (size_t)K * D;
    fill(p, (size_t)K, "fc.bias", seed, 0.0, 0.1);
    if ((s = lg_st_writer_add_f32(wr, "fc.bias", 1, fshape, p)) != LG_OK) goto done;
    p += K;
    LG_ASSERT((size_t)(p - buf) == total);
    s = lg_st_writer_write(wr, path, 1);
done:
    lg_st_writer_free(wr);
    free(names);
    free(buf);
    return s;
}
