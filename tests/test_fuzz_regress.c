/* tests/test_fuzz_regress.c - runs the saved fuzz inputs through the fuzz
 * harnesses (tools/fuzz/fuzz_*.c, included here without their libFuzzer
 * entry point, so the test calls exactly what the fuzzers call).
 *
 * For every target it runs the files of tests/data/fuzz/<target>/ (inputs
 * that crashed, hung or leaked before a fix) and of tools/fuzz/corpus/
 * <target>/ (the seeds). Each call must keep the error contract (a status
 * in range; an error has a non-empty one-line message), checked by the
 * harness, which abort()s otherwise; under `make test SAN=1` ASan and UBSan
 * also check memory and undefined behaviour. A file named ok-* must be
 * accepted and one named err-* rejected (its status is not LG_OK); when a
 * file NAME.expect is next to it, the main call's error message must
 * contain its first line (a fix that rejects the input earlier, e.g. before
 * a huge allocation, is then checked even where the old code also failed
 * in the end). */
#include <dirent.h>

#include "lg_test.h"

#define LG_FUZZ_NO_MAIN
#include "../tools/fuzz/fuzz_checkpoint.c"
#include "../tools/fuzz/fuzz_cifar.c"
#include "../tools/fuzz/fuzz_config.c"
#include "../tools/fuzz/fuzz_idx.c"
#include "../tools/fuzz/fuzz_png.c"
#include "../tools/fuzz/fuzz_report.c"
#include "../tools/fuzz/fuzz_safetensors.c"
#include "../tools/fuzz/fuzz_spectra.c"
#include "../tools/fuzz/fuzz_stl10.c"
#include "../tools/fuzz/fuzz_tfevents.c"
#include "lipgan/fileio.h"

static const struct {
    const char *name;
    lg_status (*fn)(const uint8_t *, size_t);
} k_targets[] = {
    {"checkpoint", fuzz_checkpoint}, {"cifar", fuzz_cifar},   {"config", fuzz_config},
    {"idx", fuzz_idx},               {"png", fuzz_png},       {"report", fuzz_report},
    {"safetensors", fuzz_safetensors}, {"spectra", fuzz_spectra}, {"stl10", fuzz_stl10},
    {"tfevents", fuzz_tfevents},
};

static int cmp_name(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* Runs every file of dir through target t; returns how many ran. */
static int run_dir(int t, const char *dir) {
    DIR *d = opendir(dir);
    if (!d) return 0;
    char *names[256];
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) && n < 256) {
        size_t l = strlen(e->d_name);
        if (e->d_name[0] != '.' && !(l > 7 && !strcmp(e->d_name + l - 7, ".expect")))
            names[n++] = strdup(e->d_name);
    }
    closedir(d);
    qsort(names, (size_t)n, sizeof *names, cmp_name);
    for (int i = 0; i < n; i++) {
        char path[512];
        snprintf(path, sizeof path, "%s/%s", dir, names[i]);
        unsigned char *buf;
        size_t len;
        CHECK_OK(lg_file_read_all(path, &buf, &len));
        if (buf) {
            fz_input_name = path;
            fz_main_msg[0] = '\0';
            lg_status s = k_targets[t].fn(buf, len);
            fz_input_name = "";
            if (!strncmp(names[i], "ok-", 3))
                CHECK(s == LG_OK, "%s: %s, expected to be accepted: %s", path, lg_status_str(s), fz_main_msg);
            if (!strncmp(names[i], "err-", 4))
                CHECK(s != LG_OK, "%s: accepted, expected an error", path);
            free(buf);
            char want[256] = "";
            snprintf(path + strlen(path), sizeof path - strlen(path), ".expect");
            FILE *f = fopen(path, "r");
            if (f) {
                if (!fgets(want, sizeof want, f)) want[0] = '\0';
                fclose(f);
                want[strcspn(want, "\n")] = '\0';
                CHECK(want[0] && strstr(fz_main_msg, want), "%s: message \"%s\" lacks \"%s\"", path,
                      fz_main_msg, want);
            }
        }
        free(names[i]);
    }
    return n;
}

static void test_saved_inputs(void) {
    for (int t = 0; t < (int)(sizeof k_targets / sizeof k_targets[0]); t++) {
        char dir[256];
        snprintf(dir, sizeof dir, "tools/fuzz/corpus/%s", k_targets[t].name);
        int seeds = run_dir(t, dir);
        CHECK(seeds > 0, "%s: no seeds (run from the repository root)", dir);
        snprintf(dir, sizeof dir, "tests/data/fuzz/%s", k_targets[t].name);
        run_dir(t, dir);
    }
}

int main(void) {
    LG_TEST_RUN(test_saved_inputs);
    return lg_test_summary("test_fuzz_regress");
}
