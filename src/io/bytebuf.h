/* Internal: a growable byte buffer for encoders (TensorBoard records,
 * spectra records). Appends after an allocation failure are ignored and
 * `oom` stays set, so an encoder checks once at the end. */
#ifndef LIPGAN_SRC_IO_BYTEBUF_H
#define LIPGAN_SRC_IO_BYTEBUF_H

#include <stdlib.h>
#include <string.h>

typedef struct lg_bytebuf {
    unsigned char *p;  /* (cap) bytes, n used */
    size_t n, cap;
    int oom;
} lg_bytebuf;

static inline void lg_bytebuf_put(lg_bytebuf *b, const void *src, size_t n) {
    if (b->oom) return;
    if (b->n + n > b->cap) {
        size_t nc = b->cap ? 2 * b->cap : 256;
        while (nc < b->n + n) nc *= 2;
        unsigned char *q = realloc(b->p, nc);
        if (!q) {
            b->oom = 1;
            return;
        }
        b->p = q;
        b->cap = nc;
    }
    memcpy(b->p + b->n, src, n);
    b->n += n;
}

#endif
