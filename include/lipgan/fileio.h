/* lipgan/fileio.h - whole-file reads and crash-safe (atomic) file writes.
 *
 * An atomic write never leaves a truncated file at `path`: the bytes go to
 * `path.tmp.<pid>` in the same directory, which is flushed and fsync'ed,
 * renamed over `path` (atomic on POSIX file systems), and then the
 * directory is fsync'ed so the rename itself survives a power loss. The old
 * file is never deleted first: if anything fails (full disk, a kill), the
 * old file is still there, intact. Checkpoints use this.
 *
 * Usage (streaming, e.g. a header then many tensors):
 *   lg_wfile f;
 *   LG_TRY(lg_wfile_open(&f, "run/ckpt.safetensors", 1));   // 1 = atomic
 *   lg_status s = lg_wfile_write(&f, hdr, hdr_len);
 *   if (s == LG_OK) s = lg_wfile_write(&f, data, nbytes);
 *   if (s == LG_OK) s = lg_wfile_commit(&f);   // fsync + rename + dir fsync
 *   else lg_wfile_abort(&f);                    // removes the temp file
 *
 * Fault injection (tests only):
 *  - environment variable LG_FAULT_CHECKPOINT_ABORT_AFTER_BYTES=N: an atomic
 *    lg_wfile that has written N bytes kills its own process with SIGKILL
 *    (after writing exactly the first N bytes to the temp file), simulating
 *    a crash mid-write; a test runs this in a child process and checks that
 *    the old file survives;
 *  - lg_file_fault_fail_after(N): in this process, any lg_wfile write past
 *    N bytes fails with LG_ERR_IO as if the disk were full. */
#ifndef LIPGAN_FILEIO_H
#define LIPGAN_FILEIO_H

#include <stddef.h>
#include <stdint.h>

#include "lipgan/status.h"

#ifdef __cplusplus
extern "C" {
#endif

/* A file being written. Fields are private; the struct is public only so it
 * can live on the stack. */
typedef struct lg_wfile {
    int fd;              /* -1 when closed */
    int atomic;          /* write to tmp then rename */
    char *path;          /* final path (owned) */
    char *tmp;           /* temp path when atomic, else NULL (owned) */
    uint64_t written;    /* bytes written so far */
    int64_t kill_after;  /* from LG_FAULT_CHECKPOINT_ABORT_AFTER_BYTES, -1 = off */
} lg_wfile;

/* Opens path for writing (truncating). atomic = 1: writes go to
 * "<path>.tmp.<pid>" and appear at path only on lg_wfile_commit.
 * atomic = 0: writes go to path directly (a crash leaves a partial file). */
lg_status lg_wfile_open(lg_wfile *f, const char *path, int atomic);

/* Writes n bytes (all of them, retrying short writes and EINTR). On error
 * the file stays open; the caller must still call lg_wfile_abort. */
lg_status lg_wfile_write(lg_wfile *f, const void *data, size_t n);

/* Finishes the file and releases f. Atomic: fsync the temp file, close it,
 * rename it over path, fsync the directory; on failure the temp file is
 * removed and the old file at path (if any) is untouched. Non-atomic: fsync
 * and close. */
lg_status lg_wfile_commit(lg_wfile *f);

/* Closes and releases f without committing; removes the temp file of an
 * atomic write. Safe on a closed/zeroed-out f (fd == -1). */
void lg_wfile_abort(lg_wfile *f);

/* Writes n bytes to path atomically (open + write + commit). */
lg_status lg_file_write_atomic(const char *path, const void *data, size_t n);

/* Reads a whole regular file into a new malloc'ed buffer (*out, free with
 * free(); NUL-terminated one byte past *len for convenience). Errors:
 * LG_ERR_NOT_FOUND if it does not exist, LG_ERR_IO otherwise. */
lg_status lg_file_read_all(const char *path, unsigned char **out, size_t *len);

/* lg_file_read_all for a file that may not exist yet (a run's logs): a
 * missing file is LG_OK with *out NULL and *len 0, and sets no message. */
lg_status lg_file_read_optional(const char *path, unsigned char **out, size_t *len);

/* Where a file shipped with lipgan (rel, e.g. "models/x.safetensors")
 * is: rel itself when readable (or absolute), else next to the running
 * executable, <exe dir>/../rel (a build directory of the repository), else
 * <exe dir>/../share/lipgan/rel (`make install`). buf gets the first that
 * is readable, or rel when none is; returns 1 if it was found. */
int lg_file_find_shipped(const char *rel, char *buf, size_t cap);

/* Test hook: makes every lg_wfile_write in this process fail with
 * LG_ERR_IO ("simulated: no space left on device") once a file would pass
 * nbytes in total; nbytes < 0 turns it off. Not thread-safe; tests only. */
void lg_file_fault_fail_after(int64_t nbytes);

#ifdef __cplusplus
}
#endif
#endif
