/* SPDX-License-Identifier: MIT */
#include "alloc.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static _noreturn_ void oom(void)
{
        static const char msg[] = "gpuvirt: out of memory\n";
        (void)!write(STDERR_FILENO, msg, sizeof(msg) - 1);
        abort();
}

void *xmalloc(size_t n)
{
        void *p = malloc(n ? n : 1);
        if (!p)
                oom();
        return p;
}

void *xcalloc(size_t nmemb, size_t size)
{
        void *p = calloc(nmemb ? nmemb : 1, size ? size : 1);
        if (!p)
                oom();
        return p;
}

void *xreallocarray(void *p, size_t nmemb, size_t size)
{
        if (size && nmemb > SIZE_MAX / size)
                oom();
        size_t total = nmemb * size;
        void *q = realloc(p, total ? total : 1);
        if (!q)
                oom();
        return q;
}

char *xstrdup(const char *s)
{
        char *d = strdup(s);
        if (!d)
                oom();
        return d;
}

char *xstrndup(const char *s, size_t n)
{
        char *d = strndup(s, n);
        if (!d)
                oom();
        return d;
}

char *xvasprintf(const char *fmt, va_list ap)
{
        char *s = NULL;
        if (vasprintf(&s, fmt, ap) < 0)
                oom();
        return s;
}

char *xasprintf(const char *fmt, ...)
{
        va_list ap;
        va_start(ap, fmt);
        char *s = xvasprintf(fmt, ap);
        va_end(ap);
        return s;
}
