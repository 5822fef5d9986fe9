/* Seeded, resumable batch sampler. The order of epoch e is a Fisher-Yates
 * shuffle of 0..N-1 driven by splitmix64 seeded from (seed, e), so it can be
 * rebuilt from the cursor alone, without replaying earlier epochs. */
#include "data/data_internal.h"

#include <stdlib.h>
#include <string.h>

static void build_perm(lg_data_sampler *s) {
    int64_t n = s->data->n;
    /* Mix seed and epoch through one splitmix64 step each so nearby seeds
     * and epochs give unrelated streams. */
    uint64_t a = s->seed, b = (uint64_t)s->epoch ^ 0x6A09E667F3BCC909ULL;
    uint64_t st = lg_splitmix64(&a) ^ lg_splitmix64(&b);
    for (int64_t i = 0; i < n; i++) s->perm[i] = i;
    for (int64_t i = n - 1; i > 0; i--) {
        int64_t j = (int64_t)lg_splitmix64_below(&st, (uint64_t)i + 1);
        int64_t t = s->perm[i];
        s->perm[i] = s->perm[j];
        s->perm[j] = t;
    }
}

lg_status lg_data_sampler_init(lg_data_sampler *s, const lg_dataset *d, uint64_t seed) {
    memset(s, 0, sizeof *s);
    if (!d || d->n < 1 || !d->x)
        return lg_error_set(LG_ERR_INVALID_ARG, "sampler: the dataset is empty");
    s->perm = malloc((size_t)d->n * sizeof *s->perm);
    if (!s->perm)
        return lg_error_set(LG_ERR_NOMEM, "sampler: cannot allocate an order of %lld samples",
                            (long long)d->n);
    s->data = d;
    s->seed = seed;
    build_perm(s);
    return LG_OK;
}

void lg_data_sampler_free(lg_data_sampler *s) {
    if (!s) return;
    free(s->perm);
    memset(s, 0, sizeof *s);
}

void lg_data_sampler_get_cursor(const lg_data_sampler *s, int64_t cursor[LG_DATA_CURSOR_LEN]) {
    int64_t seed;
    memcpy(&seed, &s->seed, sizeof seed); /* bit-cast, keeps all 64 bits */
    cursor[0] = seed;
    cursor[1] = s->epoch;
    cursor[2] = s->pos;
    cursor[3] = s->data->n;
}

lg_status lg_data_sampler_set_cursor(lg_data_sampler *s, const int64_t cursor[LG_DATA_CURSOR_LEN]) {
    int64_t n = s->data->n;
    if (cursor[3] != n)
        return lg_error_set(LG_ERR_INVALID_ARG,
                            "sampler cursor: saved for a dataset of %lld samples, this one has %lld; load the same dataset",
                            (long long)cursor[3], (long long)n);
    if (cursor[1] < 0 || cursor[2] < 0 || cursor[2] >= n)
        return lg_error_set(LG_ERR_INVALID_ARG, "sampler cursor: epoch %lld / position %lld out of range",
                            (long long)cursor[1], (long long)cursor[2]);
    memcpy(&s->seed, &cursor[0], sizeof s->seed);
    s->epoch = cursor[1];
    s->pos = cursor[2];
    build_perm(s);
    return LG_OK;
}

lg_status lg_data_next_batch(lg_data_sampler *s, int batch_size, float *out, int32_t *labels_out) {
    if (batch_size < 1)
        return lg_error_set(LG_ERR_INVALID_ARG, "sampler: batch size %d must be >= 1", batch_size);
    LG_ASSERT(s->data && s->perm && out); /* an initialized sampler */
    const lg_dataset *d = s->data;
    size_t per = (size_t)lg_data_sample_size(d);
    for (int b = 0; b < batch_size; b++) {
        int64_t i = s->perm[s->pos];
        memcpy(out + (size_t)b * per, d->x + (size_t)i * per, per * sizeof(float));
        if (labels_out) labels_out[b] = d->y ? d->y[i] : -1;
        if (++s->pos == d->n) { /* keep pos in [0, N): start the next epoch now */
            s->pos = 0;
            s->epoch++;
            build_perm(s);
        }
    }
    return LG_OK;
}
