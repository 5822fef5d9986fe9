/* libFuzzer harness: the spectral monitor's log spectra.bin (monitor.h),
 * through lg_spectra_read and through lg_monitor_create resuming a run,
 * which keeps the records up to the resumed step and replays them through
 * the collapse detectors. The harness recomputes the record CRCs first so
 * that mutations reach the decoder. Seeds: tools/fuzz/corpus/spectra/
 * (a log written by the monitor during a toy run; tools/fuzz/gen_seeds.c). */
#include "fuzz_common.h"
#include "lipgan/monitor.h"

static lg_status fuzz_spectra(const uint8_t *data, size_t size) {
    uint8_t *b = fz_dup(data, size);
    fz_fix_spectra_crcs(b, size);
    char dir[128], path[160];
    fz_path(dir, sizeof dir, "run");
    mkdir(dir, 0700);
    snprintf(path, sizeof path, "%s/%s", dir, LG_SPECTRA_FILE);
    fz_write(path, b, size);
    lg_spectra_log log;
    lg_status s = FZ_MAIN(lg_spectra_read(path, &log));
    int64_t mid = 0;
    if (s == LG_OK) {
        FZ_ASSERT(log.n >= 0 && (log.n == 0 || log.rec));
        double sum = 0; /* touch every value: ASan checks the arrays */
        for (int i = 0; i < log.n; i++) {
            const lg_spectra_record *r = &log.rec[i];
            FZ_ASSERT(r->n_layers >= 0 && (r->n_layers == 0 || r->layers) && memchr(r->net, 0, sizeof r->net));
            for (int l = 0; l < r->n_layers; l++) {
                FZ_ASSERT(r->layers[l].nsv >= 0 && memchr(r->layers[l].name, 0, sizeof r->layers[l].name));
                for (int k = 0; k < r->layers[l].nsv; k++) sum += r->layers[l].sv[k];
            }
        }
        (void)sum;
        if (log.n) mid = log.rec[log.n / 2].step;
        lg_spectra_log_free(&log);
    }
    /* a resumed run keeps the records up to its step (rewriting the file)
     * and replays them; a corrupt file is moved aside */
    fz_write(path, b, size);
    free(b);
    lg_monitor_opts o = lg_monitor_opts_default();
    o.resume_step = mid < 0 ? 0 : mid;
    lg_monitor *mon = NULL;
    if (FZ(lg_monitor_create(&mon, dir, 1, &o)) == LG_OK) lg_monitor_free(mon);
    return s;
}

LG_FUZZ_MAIN(fuzz_spectra)
