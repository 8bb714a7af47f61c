/* SPDX-License-Identifier: MIT */
#include "fileio.h"

#include <dirent.h>
#include <stdbool.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "alloc.h"
#include "macro.h"

int gv_read_file(const char *path, size_t max, char **ret, size_t *ret_len)
{
        _cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
        if (fd < 0)
                return -errno;

        size_t cap = 4096, len = 0;
        _cleanup_free_ char *buf = xmalloc(cap + 1);
        for (;;) {
                if (len == cap) {
                        if (cap > max)
                                return -EFBIG;
                        cap *= 2;
                        buf = xreallocarray(buf, cap + 1, 1);
                }
                ssize_t n = read(fd, buf + len, cap - len);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                if (n == 0)
                        break;
                len += (size_t)n;
                if (len > max)
                        return -EFBIG;
        }
        buf[len] = 0;
        if (ret_len)
                *ret_len = len;
        *ret = TAKE_PTR(buf);
        return 0;
}

int gv_read_line(const char *path, char **ret)
{
        char *s;
        int r = gv_read_file(path, GV_READ_MAX_DEFAULT, &s, NULL);
        if (r < 0)
                return r;
        size_t n = strlen(s);
        if (n > 0 && s[n - 1] == '\n')
                s[n - 1] = 0;
        *ret = s;
        return 0;
}

static int write_fd_all(int fd, const char *s, size_t n)
{
        ssize_t w;
        do
                w = write(fd, s, n);
        while (w < 0 && errno == EINTR);
        if (w < 0)
                return -errno;
        if ((size_t)w != n)
                return -EIO;
        return 0;
}

int gv_write_file(const char *path, const char *s, unsigned flags)
{
        _cleanup_free_ char *withnl = NULL;
        size_t n = strlen(s);
        if ((flags & GV_WRITE_NEWLINE) && (n == 0 || s[n - 1] != '\n')) {
                withnl = xasprintf("%s\n", s);
                s = withnl;
                n++;
        }

        if (flags & GV_WRITE_ATOMIC) {
                _cleanup_free_ char *tmp = xasprintf("%s.tmp.%ld", path, (long)getpid());
                _cleanup_close_ int fd =
                        open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOCTTY, 0644);
                if (fd < 0)
                        return -errno;
                int r = write_fd_all(fd, s, n);
                if (r >= 0 && !(flags & GV_WRITE_NOSYNC) && fsync(fd) < 0)
                        r = -errno;
                if (r >= 0 && rename(tmp, path) < 0)
                        r = -errno;
                if (r < 0)
                        (void)unlink(tmp);
                return r;
        }

        int oflags = O_WRONLY | O_CLOEXEC | O_NOCTTY;
        if (flags & GV_WRITE_CREATE)
                oflags |= O_CREAT | O_TRUNC;
        _cleanup_close_ int fd = open(path, oflags, 0644);
        if (fd < 0)
                return -errno;
        int r = write_fd_all(fd, s, n);
        if (r < 0)
                return r;
        /* close() can report a deferred error on some filesystems; sysfs reports at write(). */
        int cfd = TAKE_FD(fd);
        if (close(cfd) < 0 && errno != EINTR)
                return -errno;
        return 0;
}

int gv_readlink(const char *path, char **ret)
{
        char buf[PATH_MAX];
        ssize_t n = readlink(path, buf, sizeof(buf) - 1);
        if (n < 0)
                return -errno;
        buf[n] = 0;
        *ret = xstrdup(buf);
        return 0;
}

int gv_readlink_basename(const char *path, char **ret)
{
        _cleanup_free_ char *t = NULL;
        int r = gv_readlink(path, &t);
        if (r < 0)
                return r;
        const char *b = strrchr(t, '/');
        b = b ? b + 1 : t;
        if (!*b)
                return -EINVAL;
        *ret = xstrdup(b);
        return 0;
}

int gv_mkdir_p(const char *path, mode_t mode)
{
        _cleanup_free_ char *p = xstrdup(path);
        for (char *s = p + 1; *s; s++) {
                if (*s != '/')
                        continue;
                *s = 0;
                if (mkdir(p, mode) < 0 && errno != EEXIST)
                        return -errno;
                *s = '/';
        }
        if (mkdir(p, mode) < 0 && errno != EEXIST)
                return -errno;
        return 0;
}

static int rm_rf_at(int dfd, const char *name)
{
        struct stat st;
        if (fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
                return errno == ENOENT ? 0 : -errno;
        if (!S_ISDIR(st.st_mode))
                return unlinkat(dfd, name, 0) < 0 && errno != ENOENT ? -errno : 0;

        int fd = openat(dfd, name, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
        if (fd < 0)
                return -errno;
        DIR *d = fdopendir(fd);
        if (!d) {
                int r = -errno;
                close(fd);
                return r;
        }
        int r = 0;
        struct dirent *de;
        while ((de = readdir(d))) {
                if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
                        continue;
                int q = rm_rf_at(dirfd(d), de->d_name);
                if (q < 0 && r == 0)
                        r = q;
        }
        closedir(d);
        if (unlinkat(dfd, name, AT_REMOVEDIR) < 0 && errno != ENOENT && r == 0)
                r = -errno;
        return r;
}

int gv_rm_rf(const char *path)
{
        if (!path || !*path || strcmp(path, "/") == 0)
                return -EINVAL;
        return rm_rf_at(AT_FDCWD, path);
}

char *gv_path_join_many(const char *first, ...)
{
        va_list ap;
        size_t len = strlen(first) + 1;
        va_start(ap, first);
        for (const char *p; (p = va_arg(ap, const char *));)
                len += strlen(p) + 1;
        va_end(ap);

        char *out = xmalloc(len + 1), *o = out;
        o = stpcpy(o, first);
        va_start(ap, first);
        for (const char *p; (p = va_arg(ap, const char *));) {
                if (!*p)
                        continue;
                bool has = o > out && o[-1] == '/';
                if (has)
                        while (*p == '/')
                                p++;
                else if (*p != '/')
                        *o++ = '/';
                o = stpcpy(o, p);
        }
        va_end(ap);
        return out;
}

int gv_file_exists(const char *path)
{
        if (access(path, F_OK) == 0)
                return 1;
        return errno == ENOENT || errno == ENOTDIR ? 0 : -errno;
}

bool gv_program_in_path(const char *prog)
{
        const char *path = getenv("PATH");
        _cleanup_free_ char *copy = xstrdup(path && *path ? path : "/usr/bin:/bin");
        char *save = NULL;

        for (char *d = strtok_r(copy, ":", &save); d; d = strtok_r(NULL, ":", &save)) {
                _cleanup_free_ char *p = gv_path_join(d, prog);
                if (access(p, X_OK) == 0)
                        return true;
        }
        return false;
}
