/*
 * A power cut for one process's files, loaded with LD_PRELOAD by tests/durability.rs.
 *
 * Every write to a file under $POWER_CUT_DIR (pwrite, write, ftruncate) first records what it replaces;
 * fsync or fdatasync of the file forgets those records: its writes are durable. On SIGUSR1 every write not
 * yet made durable is undone, newest first, as the disk would hold the files had the power gone then, and
 * the process ends at once (exit status 137, as a SIGKILL). So whatever the process answered before the
 * cut survives only if the writes behind it were synced.
 *
 * With POWER_CUT_IGNORE_SYNC=1 syncs make nothing durable: the control that shows a cut loses what only
 * sat in the page cache.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

/* What one write replaced: the file's size before it, and the bytes it overwrote. */
struct undo {
    char path[PATH_MAX];
    off_t offset;
    size_t length;
    off_t size_before;
    char *bytes;
    struct undo *older;
};

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static struct undo *newest;
static char dir[PATH_MAX];
static int ignore_sync;
static int cut_pipe[2] = {-1, -1};

static ssize_t (*real_pwrite)(int, const void *, size_t, off_t);
static ssize_t (*real_write)(int, const void *, size_t);
static int (*real_ftruncate)(int, off_t);
static int (*real_fsync)(int);
static int (*real_fdatasync)(int);

/* The path of fd if it is a regular file under the cut's directory. */
static int watched(int fd, char *path) {
    char link[64];
    struct stat st;
    if (!dir[0] || fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) return 0;
    snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
    ssize_t n = readlink(link, path, PATH_MAX - 1);
    if (n <= 0) return 0;
    path[n] = 0;
    return strncmp(path, dir, strlen(dir)) == 0;
}

/* Records what writing [offset, offset + length) of fd will replace. Called with the lock held. */
static void remember(int fd, const char *path, off_t offset, size_t length) {
    struct stat st;
    if (fstat(fd, &st) != 0) return;
    struct undo *u = calloc(1, sizeof *u);
    if (!u) abort();
    strncpy(u->path, path, PATH_MAX - 1);
    u->offset = offset;
    u->size_before = st.st_size;
    u->length = offset < st.st_size ? (size_t)(st.st_size - offset < (off_t)length ? st.st_size - offset : (off_t)length) : 0;
    if (u->length) {
        u->bytes = malloc(u->length);
        if (!u->bytes || pread(fd, u->bytes, u->length, offset) != (ssize_t)u->length) abort();
    }
    u->older = newest;
    newest = u;
}

/* Forgets the records of path: its writes are on the disk. Called with the lock held. */
static void synced(const char *path) {
    struct undo **at = &newest;
    while (*at) {
        struct undo *u = *at;
        if (strcmp(u->path, path) == 0) {
            *at = u->older;
            free(u->bytes);
            free(u);
        } else {
            at = &u->older;
        }
    }
}

ssize_t pwrite(int fd, const void *buf, size_t count, off_t offset) {
    char path[PATH_MAX];
    pthread_mutex_lock(&lock);
    if (watched(fd, path)) remember(fd, path, offset, count);
    ssize_t n = real_pwrite(fd, buf, count, offset);
    pthread_mutex_unlock(&lock);
    return n;
}

ssize_t pwrite64(int fd, const void *buf, size_t count, off_t offset) { return pwrite(fd, buf, count, offset); }

ssize_t write(int fd, const void *buf, size_t count) {
    char path[PATH_MAX];
    pthread_mutex_lock(&lock);
    if (watched(fd, path)) remember(fd, path, lseek(fd, 0, SEEK_CUR), count);
    ssize_t n = real_write(fd, buf, count);
    pthread_mutex_unlock(&lock);
    return n;
}

int ftruncate(int fd, off_t length) {
    char path[PATH_MAX];
    struct stat st;
    pthread_mutex_lock(&lock);
    if (watched(fd, path) && fstat(fd, &st) == 0 && length < st.st_size) {
        remember(fd, path, length, (size_t)(st.st_size - length));
    } else if (watched(fd, path)) {
        remember(fd, path, length, 0);
    }
    int r = real_ftruncate(fd, length);
    pthread_mutex_unlock(&lock);
    return r;
}

int ftruncate64(int fd, off_t length) { return ftruncate(fd, length); }

static int sync_with(int (*real)(int), int fd) {
    char path[PATH_MAX];
    int r = real(fd);
    pthread_mutex_lock(&lock);
    if (r == 0 && !ignore_sync && watched(fd, path)) synced(path);
    pthread_mutex_unlock(&lock);
    return r;
}

int fsync(int fd) { return sync_with(real_fsync, fd); }
int fdatasync(int fd) { return sync_with(real_fdatasync, fd); }

/* Undoes every write not made durable, newest first, and ends the process. */
static void *cut(void *unused) {
    (void)unused;
    char byte;
    while (read(cut_pipe[0], &byte, 1) != 1) {
    }
    pthread_mutex_lock(&lock);
    int undone = 0;
    for (struct undo *u = newest; u; u = u->older, undone++) {
        int fd = open(u->path, O_WRONLY);
        if (fd < 0) continue;
        if (u->length) real_pwrite(fd, u->bytes, u->length, u->offset);
        real_ftruncate(fd, u->size_before);
        close(fd);
    }
    fprintf(stderr, "power cut: %d unsynced writes lost\n", undone);
    _exit(137);
}

static void on_signal(int sig) {
    (void)sig;
    char byte = 1;
    if (cut_pipe[1] >= 0 && real_write(cut_pipe[1], &byte, 1) < 0) _exit(137);
}

__attribute__((constructor)) static void start(void) {
    real_pwrite = dlsym(RTLD_NEXT, "pwrite");
    real_write = dlsym(RTLD_NEXT, "write");
    real_ftruncate = dlsym(RTLD_NEXT, "ftruncate");
    real_fsync = dlsym(RTLD_NEXT, "fsync");
    real_fdatasync = dlsym(RTLD_NEXT, "fdatasync");
    const char *watch = getenv("POWER_CUT_DIR");
    if (!watch || !realpath(watch, dir)) dir[0] = 0;
    const char *ignore = getenv("POWER_CUT_IGNORE_SYNC");
    ignore_sync = ignore && strcmp(ignore, "1") == 0;
    pthread_t thread;
    if (pipe(cut_pipe) != 0 || pthread_create(&thread, NULL, cut, NULL) != 0) abort();
    signal(SIGUSR1, on_signal);
}
