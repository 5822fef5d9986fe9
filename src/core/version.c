/* The version of the linked library. */
#include "lipgan/version.h"

const char *lg_version(void) { return LG_VERSION; }
