/* Whole-file reads and atomic writes (temp file + fsync + rename + dir fsync). */
#include "lipgan/fileio.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static int64_t g_fail_after = -1; /* test hook, see lg_file_fault_fail_after */

void lg_file_fault_fail_after(int64_t nbytes) { g_fail_after = nbytes; }

static char *dup_str(const char *s) {
    size_t n = strlen(s) + 1;
    char *d = malloc(n);
    if (d) memcpy(d, s, n);
    return d;
}

static void wfile_release(lg_wfile *f) {
    free(f->path);
    free(f->tmp);
    f->path = f->tmp = NULL;
    f->fd = -1;
}

lg_status lg_wfile_open(lg_wfile *f, const char *path, int atomic) {
    memset(f, 0, sizeof *f);
    f->fd = -1;
    f->kill_after = -1;
    f->atomic = atomic != 0;
    if (!path || !*path)
        return lg_error_set(LG_ERR_INVALID_ARG, "lg_wfile_open: empty path");
    f->path = dup_str(path);
    if (!f->path) return lg_error_set(LG_ERR_NOMEM, "file %s: out of memory", path);
    const char *target = path;
    if (f->atomic) {
        size_t cap = strlen(path) + 32;
        f->tmp = malloc(cap);
        if (!f->tmp) {
            wfile_release(f);
            return lg_error_set(LG_ERR_NOMEM, "file %s: out of memory", path);
        }
        snprintf(f->tmp, cap, "%s.tmp.%ld", path, (long)getpid());
        target = f->tmp;
        const char *env = getenv("LG_FAULT_CHECKPOINT_ABORT_AFTER_BYTES");
        if (env && *env) {
            char *end;
            long long v = strtoll(env, &end, 10);
            if (*end == '\0' && v >= 0) f->kill_after = v;
        }
    }
    f->fd = open(target, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);
    if (f->fd < 0) {
        int e = errno;
        lg_status s = lg_error_set(LG_ERR_IO, "file %s: cannot create %s: %s; check that the directory exists and is writable",
                                   path, target, strerror(e));
        wfile_release(f);
        return s;
    }
    return LG_OK;
}

/* write(2) until all n bytes are out. */
static int write_full(int fd, const unsigned char *p, size_t n) {
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0) {
            if (errno == EINTR) continue;
            return -1;
        }
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

lg_status lg_wfile_write(lg_wfile *f, const void *data, size_t n) {
    LG_ASSERT(f->fd >= 0);
    const unsigned char *p = data;
    if (g_fail_after >= 0 && f->written + n > (uint64_t)g_fail_after) {
        /* simulated full disk: write what fits, then fail like write(2) would */
        size_t fit = (size_t)((uint64_t)g_fail_after - (f->written < (uint64_t)g_fail_after ? f->written : (uint64_t)g_fail_after));
        if (fit > 0 && write_full(f->fd, p, fit) == 0) f->written += fit;
        return lg_error_set(LG_ERR_IO, "file %s: write failed: simulated: no space left on device; free disk space and retry",
                            f->path);
    }
    if (f->kill_after >= 0 && f->written + n > (uint64_t)f->kill_after) {
        /* simulated crash mid-write: the first kill_after bytes reach the
         * temp file, then the process dies without cleaning up */
        size_t fit = (size_t)((uint64_t)f->kill_after - f->written);
        if (fit > 0) (void)write_full(f->fd, p, fit);
        raise(SIGKILL);
    }
    if (write_full(f->fd, p, n) != 0) {
        int e = errno;
        return lg_error_set(LG_ERR_IO, "file %s: write failed after %llu bytes: %s; check free disk space",
                            f->path, (unsigned long long)f->written, strerror(e));
    }
    f->written += n;
    return LG_OK;
}

/* fsync the directory holding path so a rename into it is durable. */
static lg_status fsync_dir(const char *path) {
    const char *slash = strrchr(path, '/');
    char *dir;
    if (!slash) {
        dir = dup_str(".");
    } else {
        size_t len = slash == path ? 1 : (size_t)(slash - path); /* "/x" -> "/" */
        dir = malloc(len + 1);
        if (dir) {
            memcpy(dir, path, len);
            dir[len] = '\0';
        }
    }
    if (!dir) return lg_error_set(LG_ERR_NOMEM, "file %s: out of memory", path);
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    lg_status s = LG_OK;
    if (fd < 0) {
        s = lg_error_set(LG_ERR_IO, "file %s: cannot open directory %s to fsync it: %s", path, dir, strerror(errno));
    } else {
        /* some file systems refuse fsync on directories (EINVAL); the
         * rename has happened, so only a real I/O error is reported */
        if (fsync(fd) != 0 && errno != EINVAL && errno != EROFS)
            s = lg_error_set(LG_ERR_IO, "file %s: fsync of directory %s failed: %s", path, dir, strerror(errno));
        close(fd);
    }
    free(dir);
    return s;
}

lg_status lg_wfile_commit(lg_wfile *f) {
    LG_ASSERT(f->fd >= 0);
    lg_status s = LG_OK;
    if (fsync(f->fd) != 0 && errno != EINVAL && errno != EROFS)
        s = lg_error_set(LG_ERR_IO, "file %s: fsync failed: %s; check free disk space", f->path, strerror(errno));
    if (close(f->fd) != 0 && s == LG_OK)
        s = lg_error_set(LG_ERR_IO, "file %s: close failed: %s; check free disk space", f->path, strerror(errno));
    f->fd = -1;
    if (f->atomic) {
        if (s == LG_OK && rename(f->tmp, f->path) != 0)
            s = lg_error_set(LG_ERR_IO, "file %s: cannot rename %s over it: %s; the previous file is unchanged",
                             f->path, f->tmp, strerror(errno));
        if (s != LG_OK) {
            unlink(f->tmp);
        } else {
            s = fsync_dir(f->path);
        }
    }
    wfile_release(f);
    return s;
}

void lg_wfile_abort(lg_wfile *f) {
    if (f->fd >= 0) close(f->fd);
    if (f->atomic && f->tmp) unlink(f->tmp);
    wfile_release(f);
}

lg_status lg_file_write_atomic(const char *path, const void *data, size_t n) {
    lg_wfile f;
    LG_TRY(lg_wfile_open(&f, path, 1));
    lg_status s = lg_wfile_write(&f, data, n);
    if (s != LG_OK) {
        lg_wfile_abort(&f);
        return s;
    }
    return lg_wfile_commit(&f);
}

int lg_file_find_shipped(const char *rel, char *buf, size_t cap) {
    snprintf(buf, cap, "%s", rel);
    if (access(rel, R_OK) == 0) return 1;
    if (rel[0] == '/') return 0;
    char exe[PATH_MAX];
    ssize_t len = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (len <= 0) return 0;
    exe[len] = '\0';
    char *slash = strrchr(exe, '/');
    if (!slash) return 0;
    *slash = '\0';
    static const char *const under[] = {"..", "../share/lipgan"};
    for (size_t k = 0; k < sizeof under / sizeof under[0]; k++) {
        char alt[2 * PATH_MAX];
        snprintf(alt, sizeof alt, "%s/%s/%s", exe, under[k], rel);
        if (access(alt, R_OK) == 0 && strlen(alt) < cap) {
            snprintf(buf, cap, "%s", alt);
            return 1;
        }
    }
    return 0;
}

lg_status lg_file_read_optional(const char *path, unsigned char **out, size_t *len) {
    lg_status st = lg_file_read_all(path, out, len);
    if (st != LG_ERR_NOT_FOUND) return st;
    lg_error_clear();
    return LG_OK;
}

lg_status lg_file_read_all(const char *path, unsigned char **out, size_t *len) {
    *out = NULL;
    *len = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        int e = errno;
        return lg_error_set(e == ENOENT ? LG_ERR_NOT_FOUND : LG_ERR_IO, "file %s: cannot open: %s; check the path",
                            path, strerror(e));
    }
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return lg_error_set(LG_ERR_IO, "file %s: not a regular file; give the path of a file", path);
    }
    /* st_size is a hint; read to EOF in case the file changes size */
    size_t cap = (size_t)st.st_size + 1, n = 0;
    unsigned char *buf = malloc(cap + 1);
    if (!buf) {
        close(fd);
        return lg_error_set(LG_ERR_NOMEM, "file %s: out of memory reading %lld bytes", path, (long long)st.st_size);
    }
    for (;;) {
        if (n == cap) {
            unsigned char *nb = realloc(buf, cap * 2 + 1);
            if (!nb) {
                free(buf);
                close(fd);
                return lg_error_set(LG_ERR_NOMEM, "file %s: out of memory", path);
            }
            buf = nb;
            cap *= 2;
        }
        ssize_t r = read(fd, buf + n, cap - n);
        if (r < 0) {
            if (errno == EINTR) continue;
            int e = errno;
            free(buf);
            close(fd);
            return lg_error_set(LG_ERR_IO, "file %s: read failed: %s", path, strerror(e));
        }
        if (r == 0) break;
        n += (size_t)r;
    }
    close(fd);
    buf[n] = '\0';
    *out = buf;
    *len = n;
    return LG_OK;
}
