/* src/cli/eval_common.h - pieces shared by `lipgan eval` and `lipgan
 * fid-stats` (defined in cmd_eval.c). */
#ifndef LIPGAN_CLI_EVAL_COMMON_H
#define LIPGAN_CLI_EVAL_COMMON_H

#include <stddef.h>

#include "lipgan/classifier.h"
#include "lipgan/data.h"
#include "lipgan/inception.h"

/* Default Inception weights, relative to the repository root (not shipped:
 * ~95 MB; made by tools/convert_inception_weights.py). */
#define LG_CLI_INCEPTION_DEFAULT "models/inception-fid.safetensors"

/* The weights file a load below reads: path if given, else (Inception)
 * $LG_INCEPTION_WEIGHTS or the default, (classifier = 1) the shipped
 * classifier; buf holds a found default. */
const char *lg_cli_weights_path(int classifier, const char *path, char *buf, size_t cap);
/* Loads Inception weights from path, or (NULL) $LG_INCEPTION_WEIGHTS or the
 * default; a missing file is LG_ERR_NOT_FOUND saying how to make one. With
 * a device backend be (cuda) the net moves to the GPU; if it cannot
 * (lg_inception_use_cuda), a warning on stderr and it stays on the CPU. */
lg_status lg_cli_load_inception(const char *path, const lg_backend *be, lg_inception **out);
/* Loads the classifier from path, or (NULL) the shipped weights, onto
 * backend be (NULL: the CPU). */
lg_status lg_cli_load_classifier(const char *path, const lg_backend *be, lg_classifier **out);

/* The feature network as lipgan fid-stats records it at the start of a
 * statistics file's "source" (before "; data "): lg_inception_describe, or
 * the classifier's line with its test accuracy. Exactly one of inc / cls. */
void lg_cli_features_desc(const lg_inception *inc, lg_classifier *cls, char *buf, size_t cap);

/* Loads a data set by config-style fields (format as lg_data_spec; split
 * "train" | "test" | "unlabeled"; size: mnist pad-to / stl10 size). */
lg_status lg_cli_load_images(lg_dataset *d, const char *format, const char *path, const char *split, int size,
                             int channels);

#endif
