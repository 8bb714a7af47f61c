/* SPDX-License-Identifier: MIT */
#include "strv.h"

#include <stdlib.h>
#include <string.h>

#include "alloc.h"

char **strv_free(char **l)
{
        if (l) {
                for (char **p = l; *p; p++)
                        free(*p);
                free(l);
        }
        return NULL;
}

size_t strv_length(char *const *l)
{
        size_t n = 0;
        while (l && l[n])
                n++;
        return n;
}

void strv_consume(char ***l, char *s)
{
        size_t n = strv_length(*l);
        char **t = xreallocarray(*l, n + 2, sizeof(char *));
        t[n] = s;
        t[n + 1] = NULL;
        *l = t;
}

void strv_extend(char ***l, const char *s)
{
        strv_consume(l, xstrdup(s));
}

bool strv_contains(char *const *l, const char *s)
{
        STRV_FOREACH(p, l)
                if (strcmp(*p, s) == 0)
                        return true;
        return false;
}

static int cmp_str(const void *a, const void *b)
{
        return strcmp(*(char *const *)a, *(char *const *)b);
}

void strv_sort(char **l)
{
        size_t n = strv_length(l);
        if (n > 1) /* qsort's base must not be NULL, even for no element (UBSan) */
                qsort(l, n, sizeof(char *), cmp_str);
}

char *strv_join(char *const *l, const char *sep)
{
        size_t len = 1, sl = strlen(sep);
        STRV_FOREACH(p, l)
                len += strlen(*p) + sl;
        char *out = xmalloc(len), *o = out;
        *o = 0;
        STRV_FOREACH(p, l) {
                if (p != l)
                        o = stpcpy(o, sep);
                o = stpcpy(o, *p);
        }
        return out;
}

char **strv_split(const char *s, const char *seps)
{
        char **l = xnew0(char *, 1);
        while (*s) {
                size_t skip = strspn(s, seps);
                s += skip;
                if (!*s)
                        break;
                size_t n = strcspn(s, seps);
                strv_consume(&l, xstrndup(s, n));
                s += n;
        }
        return l;
}
