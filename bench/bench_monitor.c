/* Cost of one spectral-monitor record (lipgan/monitor.h) for the SN-GAN
 * ResNet at 32x32: D ch=128 and G ch=256, CPU backend.
 *   make BUILD=build build/bench/bench_monitor && build/bench/bench_monitor [--records N]
 * Prints the first record (toep_first_iters power iterations per conv), the
 * mean of the following warm-started records, and D's lower bound on 16
 * samples separately. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench_util.h"
#include "lipgan/monitor.h"

static int run(const char *net, lg_net_role role, int ch, int records, const float *x, int n) {
    lg_model_spec s;
    lg_model_spec_default(&s, LG_ARCH_RESNET, role);
    s.ch = ch;
    s.lip = LG_LIP_SN;
    lg_model *m;
    if (lg_model_create(&m, &s, NULL, 1) != LG_OK) return fprintf(stderr, "%s\n", lg_error_msg()), 1;
    lg_monitor *mon;
    if (lg_monitor_create(&mon, "/tmp", 1, NULL) != LG_OK) return fprintf(stderr, "%s\n", lg_error_msg()), 1;
    lg_monitor_summary sm;
    double t0 = bench_now_ms();
    if (lg_monitor_record(mon, 0, net, m, NULL, 0, &sm) != LG_OK) return fprintf(stderr, "%s\n", lg_error_msg()), 1;
    double first = bench_now_ms() - t0;
    t0 = bench_now_ms();
    for (int i = 1; i <= records; i++)
        if (lg_monitor_record(mon, i, net, m, NULL, 0, &sm) != LG_OK) return fprintf(stderr, "%s\n", lg_error_msg()), 1;
    double steady = (bench_now_ms() - t0) / records;
    printf("monitor %s ch=%d: %d layers, first record %.0f ms, warm record %.0f ms", net, ch, sm.n_layers,
           first, steady);
    if (x) {
        t0 = bench_now_ms();
        if (lg_monitor_record(mon, records + 1, net, m, x, n, &sm) != LG_OK) return fprintf(stderr, "%s\n", lg_error_msg()), 1;
        printf(", warm record + lower bound on %d samples %.0f ms", n, bench_now_ms() - t0);
    }
    printf("\n");
    lg_monitor_free(mon);
    lg_model_free(m);
    remove("/tmp/" LG_SPECTRA_FILE);
    return 0;
}

int main(int argc, char **argv) {
    int records = 3;
    for (int i = 1; i + 1 < argc; i++)
        if (!strcmp(argv[i], "--records")) records = atoi(argv[i + 1]);
    if (records < 1) records = 1;
    static float x[16 * 3 * 32 * 32]; /* (16, 3, 32, 32) */
    for (size_t i = 0; i < sizeof x / sizeof x[0]; i++) x[i] = (float)((i * 2654435761u) % 2001) / 1000.0f - 1.0f;
    if (run("D", LG_NET_D, 128, records, x, 16)) return 1;
    if (run("G", LG_NET_G, 256, records, NULL, 0)) return 1;
    return 0;
}
