/* libFuzzer harness: checkpoints (src/train/checkpoint.c) through
 * lg_trainer_load on a small toy trainer made once, and through
 * lg_checkpoint_load_generator and lg_checkpoint_models, which build models
 * from the file's "config" metadata. Seeds: tools/fuzz/corpus/checkpoint/
 * (tools/fuzz/gen_seeds.c saves them from the same config). */
#include "fuzz_common.h"
#include "lipgan/backend.h"
#include "lipgan/train.h"

/* A toy MLP run with a slot of every kind: SN and dynamic SR in D,
 * gradient clamping and the r(W) penalty in G, an EMA of G. */
__attribute__((unused)) static lg_status ckpt_config(lg_config *c) {
    static const char *const sets[] = {
        "data.format=ring8", "data.toy_n=64", "model.z_dim=2", "model.g.arch=mlp", "model.g.width=4",
        "model.g.depth=1", "model.d.arch=mlp", "model.d.width=4", "model.d.depth=1", "lipschitz.d.sn=true",
        "lipschitz.d.sr_gamma=0.5", "lipschitz.d.sr_every=1", "lipschitz.d.sr_dynamic=true",
        "lipschitz.g.clamp_ratio=2", "lipschitz.g.rw_lambda=0.1", "ema.decay=0.9", "train.steps=2",
        "train.n_dis=1", "train.batch_d=8", "train.batch_g=8", "seed=3", "log.every=1", "log.samples_every=0",
        "log.checkpoint_every=1", "log.sample_n=4", "log.spectra_every=1", "threads=1", NULL};
    lg_config_default(c);
    for (int i = 0; sets[i]; i++) LG_TRY(lg_config_set(c, sets[i]));
    return LG_OK;
}

static lg_trainer *ckpt_trainer(void) {
    static lg_trainer *t;
    if (!t) {
        (void)fz_dir(); /* one thread before the trainer exists */
        lg_config c;
        if (ckpt_config(&c) != LG_OK || lg_trainer_create(&t, &c) != LG_OK) {
            fprintf(stderr, "fuzz_checkpoint: cannot make the trainer: %s\n", lg_error_msg());
            abort();
        }
    }
    return t;
}

__attribute__((unused)) static lg_status fuzz_checkpoint(const uint8_t *data, size_t size) {
    lg_trainer *t = ckpt_trainer();
    char path[128];
    fz_path(path, sizeof path, "ckpt_000000001.safetensors");
    uint8_t *fixed = fz_st_fixed_copy(data, size);
    fz_write(path, fixed, size);
    free(fixed);
    lg_status s = FZ_MAIN(lg_trainer_load(t, path));
    lg_model *g = NULL, *d = NULL;
    lg_config cfg;
    if (FZ(lg_checkpoint_load_generator(path, lg_backend_cpu(), 1, &g, &cfg)) == LG_OK) {
        FZ_ASSERT(g);
        lg_model_free(g);
    }
    if (FZ(lg_checkpoint_models(path, &g, &d)) == LG_OK) {
        FZ_ASSERT(g && d);
        lg_model_free(g);
        lg_model_free(d);
    }
    return s;
}

LG_FUZZ_MAIN(fuzz_checkpoint)
