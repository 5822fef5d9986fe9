/* lipgan/version.h - the library version.
 *
 * LG_VERSION is the version the headers were built with; lg_version() the
 * one the linked library was built with (they differ only if a program is
 * linked against a library from another build). */
#ifndef LIPGAN_VERSION_H
#define LIPGAN_VERSION_H

#ifdef __cplusplus
extern "C" {
#endif

#define LG_VERSION "0.1.0"
#define LG_VERSION_MAJOR 0
#define LG_VERSION_MINOR 1
#define LG_VERSION_PATCH 0

/* "0.1.0": the version string of the linked library. */
const char *lg_version(void);

#ifdef __cplusplus
}
#endif
#endif
