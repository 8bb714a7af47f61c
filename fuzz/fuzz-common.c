/* SPDX-License-Identifier: MIT */
/*
 * fuzz-common.c — helpers every harness links (fuzz.h).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fuzz.h"
#include "util/alloc.h"
#include "util/fileio.h"

#define MAX_TMPDIRS 4

static char *tmpdirs[MAX_TMPDIRS];
static size_t n_tmpdirs;

void fuzz_fail(const char *fmt, ...)
{
        va_list ap;
        va_start(ap, fmt);
        fputs("fuzz: ", stderr);
        vfprintf(stderr, fmt, ap);
        fputc('\n', stderr);
        va_end(ap);
        abort();
}

static void remove_tmpdirs(void)
{
        for (size_t i = 0; i < n_tmpdirs; i++) {
                (void)gv_rm_rf(tmpdirs[i]);
                free(tmpdirs[i]);
        }
        n_tmpdirs = 0;
}

const char *fuzz_tmpdir(const char *name)
{
        const char *base = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : getenv("TMPDIR");
        if (!base || !*base)
                base = "/tmp";
        if (n_tmpdirs >= MAX_TMPDIRS)
                fuzz_fail("more than %d temporary directories asked for", MAX_TMPDIRS);
        char *d = xasprintf("%s/gpuvirt-fuzz-%s-XXXXXX", base, name);
        if (!mkdtemp(d))
                fuzz_fail("cannot make '%s': %s", d, strerror(errno));
        if (n_tmpdirs == 0)
                atexit(remove_tmpdirs);
        tmpdirs[n_tmpdirs++] = d;
        return d;
}

void fuzz_write_file(const char *dir, const char *name, const void *data, size_t size)
{
        _cleanup_free_ char *p = xasprintf("%s/%s", dir, name);
        int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        if (fd < 0)
                fuzz_fail("cannot write '%s': %s", p, strerror(errno));
        const char *b = data;
        while (size > 0) {
                ssize_t n = write(fd, b, size);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n <= 0)
                        fuzz_fail("cannot write '%s': %s", p, strerror(errno));
                b += n;
                size -= (size_t)n;
        }
        close(fd);
}

char *fuzz_strndup(const uint8_t *data, size_t size)
{
        char *s = xmalloc(size + 1);
        if (size)
                memcpy(s, data, size);
        s[size] = '\0';
        return s;
}

void fuzz_split(const uint8_t *data, size_t size, const char *sep, const uint8_t **ret_head,
                size_t *ret_head_len, const uint8_t **ret_tail, size_t *ret_tail_len)
{
        size_t n = strlen(sep);
        const uint8_t *at = n && size >= n ? memmem(data, size, sep, n) : NULL;
        if (!at) {
                *ret_head = data;
                *ret_head_len = size;
                *ret_tail = data + size;
                *ret_tail_len = 0;
                return;
        }
        *ret_head = data;
        *ret_head_len = (size_t)(at - data);
        *ret_tail = at + n;
        *ret_tail_len = size - *ret_head_len - n;
}
