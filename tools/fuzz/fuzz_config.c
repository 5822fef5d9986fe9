/* libFuzzer harness: training configs (src/train/config.c). The input is a
 * YAML document for lg_config_load_string, or, if it starts with "--set\n",
 * one `key=value` per line for lg_config_set. An accepted config is
 * validated, checked for warnings and eval metrics, and printed with
 * lg_config_to_yaml, which must read back to the same config (config.h
 * promises it; checkpoints store their config that way). Seeds:
 * tools/fuzz/corpus/config/ (four of configs/ and a --set list). */
#include "fuzz_common.h"
#include "lipgan/config.h"

static lg_status fuzz_config(const uint8_t *data, size_t size) {
    lg_config c;
    lg_config_default(&c);
    lg_status s = LG_OK;
    if (size >= 6 && memcmp(data, "--set\n", 6) == 0) {
        char line[4096];
        for (size_t i = 6; i < size && s == LG_OK;) {
            size_t e = i;
            while (e < size && data[e] != '\n') e++;
            size_t n = e - i < sizeof line - 1 ? e - i : sizeof line - 1;
            memcpy(line, data + i, n);
            line[n] = '\0';
            s = FZ_MAIN(lg_config_set(&c, line));
            i = e + 1;
        }
    } else {
        s = FZ_MAIN(lg_config_load_string(&c, (const char *)data, size, "fuzz.yaml"));
    }
    if (s != LG_OK) return s;
    (void)FZ(lg_config_validate(&c));
    (void)lg_config_warnings(&c, NULL, "");
    unsigned m;
    (void)FZ(lg_config_eval_metrics(&c, 1, 28, 28, &m));
    (void)FZ(lg_config_eval_metrics(&c, 2, 1, 1, &m));
    /* the printed config reads back to the same one */
    char *y = lg_config_to_yaml(&c);
    FZ_ASSERT(y);
    lg_config back;
    lg_config_default(&back);
    lg_status rs = FZ(lg_config_load_string(&back, y, strlen(y), "printed"));
    char diff[512];
    if (rs != LG_OK || lg_config_diff(&c, &back, diff, sizeof diff) != 0) {
        fprintf(stderr, "fuzz_config: the printed config does not read back: %s\n%s\n",
                rs != LG_OK ? lg_error_msg() : diff, y);
        abort();
    }
    free(y);
    return s;
}

LG_FUZZ_MAIN(fuzz_config)
