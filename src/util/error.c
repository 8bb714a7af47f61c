/* SPDX-License-Identifier: MIT */
#include "error.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"

int gv_error_setv(struct gv_error **err, int code, const char *fmt, va_list ap)
{
        if (code < 0)
                code = -code;
        if (code == 0)
                code = EIO;
        if (err && !*err) {
                struct gv_error *e = xnew0(struct gv_error, 1);
                e->code = code;
                e->msg = xvasprintf(fmt, ap);
                *err = e;
        }
        return -code;
}

int gv_error_set(struct gv_error **err, int code, const char *fmt, ...)
{
        va_list ap;
        va_start(ap, fmt);
        int r = gv_error_setv(err, code, fmt, ap);
        va_end(ap);
        return r;
}

int gv_error_wrap(struct gv_error **err, int code, const char *fmt, ...)
{
        if (code < 0)
                code = -code;
        if (code == 0)
                code = EIO;
        if (!err)
                return -code;

        va_list ap;
        va_start(ap, fmt);
        _cleanup_free_ char *ctx = xvasprintf(fmt, ap);
        va_end(ap);

        if (!*err)
                return gv_error_set(err, code, "%s: %s", ctx, strerror(code));

        char *m = xasprintf("%s: %s", ctx, (*err)->msg);
        free((*err)->msg);
        (*err)->msg = m;
        return -(*err)->code;
}

void gv_error_propagate(struct gv_error **dst, struct gv_error *src)
{
        if (!src)
                return;
        if (dst && !*dst)
                *dst = src;
        else
                gv_error_free(src);
}

struct gv_error *gv_error_free(struct gv_error *e)
{
        if (e) {
                free(e->msg);
                free(e);
        }
        return NULL;
}

const char *gv_error_msg(const struct gv_error *e, int r)
{
        if (e && e->msg)
                return e->msg;
        return strerror(r < 0 ? -r : r);
}

const char *gv_errno_name(int code)
{
        static const struct {
                int code;
                const char *name;
        } names[] = {
                { EPERM, "EPERM" },   { ENOENT, "ENOENT" },   { EIO, "EIO" },
                { ENXIO, "ENXIO" },   { E2BIG, "E2BIG" },     { EBADF, "EBADF" },
                { EAGAIN, "EAGAIN" }, { ENOMEM, "ENOMEM" },   { EACCES, "EACCES" },
                { EBUSY, "EBUSY" },   { EEXIST, "EEXIST" },   { ENODEV, "ENODEV" },
                { EINVAL, "EINVAL" }, { ENOSPC, "ENOSPC" },   { ERANGE, "ERANGE" },
                { ENOSYS, "ENOSYS" }, { ENODATA, "ENODATA" }, { ETIMEDOUT, "ETIMEDOUT" },
                { EOPNOTSUPP, "EOPNOTSUPP" }, { EPROTO, "EPROTO" }, { EBADMSG, "EBADMSG" },
                { ENOBUFS, "ENOBUFS" }, { ESTALE, "ESTALE" }, { ENOTRECOVERABLE, "ENOTRECOVERABLE" },
                { ENOMEDIUM, "ENOMEDIUM" }, { ECANCELED, "ECANCELED" }, { ELIBACC, "ELIBACC" },
                { EUCLEAN, "EUCLEAN" }, { EHOSTDOWN, "EHOSTDOWN" }, { ENOPKG, "ENOPKG" },
        };
        static _Thread_local char buf[DECIMAL_STR_MAX(int) + 1];

        if (code < 0)
                code = -code;
        for (size_t i = 0; i < ELEMENTSOF(names); i++)
                if (names[i].code == code)
                        return names[i].name;
        snprintf(buf, sizeof(buf), "E%d", code);
        return buf;
}
