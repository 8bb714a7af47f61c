/* SPDX-License-Identifier: MIT */
/* problem.c — RFC 9457 problem objects and the errno → status table (see problem.h). */
#include "problem.h"

#include <errno.h>
#include <stdbool.h>
#include <string.h>

#include "route.h"
#include "util/alloc.h"

static const struct {
        int code;
        unsigned status;
        const char *slug;
} errno_table[] = {
        { ENOENT, 404, "not-found" },
        { ESRCH, 404, "not-found" },
        { ENXIO, 404, "not-found" },
        { EEXIST, 409, "already-exists" },
        { EBUSY, 409, "busy" },
        { EALREADY, 409, "busy" },
        { EINPROGRESS, 409, "busy" },
        /* a compare-and-swap that lost to another writer every time it was tried: a conflict,
         * never a 500 (reliability.md R8; one-op's race under ASan saw a 500 so) */
        { ESTALE, 409, "changed" },
        { ENOSPC, 409, "no-capacity" },
        { EDQUOT, 409, "license-seats-exhausted" }, /* a licence pool says enforce */
        { EUSERS, 409, "quota-exceeded" }, /* a tenant's quota (controller tenants.c) */
        { ENODEV, 409, "not-on-this-host" }, /* no such GPU, bridge, ... here: configure it */
        { EINVAL, 400, "invalid-request" },
        { ERANGE, 400, "invalid-request" },
        { EBADMSG, 400, "invalid-request" },
        { ENAMETOOLONG, 400, "invalid-request" },
        { EILSEQ, 400, "invalid-request" },
        { EDOM, 400, "invalid-request" },
        { E2BIG, 413, "too-large" },
        { EFBIG, 413, "too-large" },
        { EMSGSIZE, 413, "too-large" },
        { EOPNOTSUPP, 422, "not-supported" },
        { ENOSYS, 501, "not-implemented" },
        { EACCES, 403, "forbidden" },
        { EPERM, 403, "forbidden" },
        { ETIMEDOUT, 504, "timeout" },
        { EAGAIN, 503, "unavailable" },
        { ENOTCONN, 503, "unavailable" }, /* the store's PostgreSQL server cannot be reached */
        { ENOBUFS, 503, "unavailable" },
        { ECONNREFUSED, 502, "bad-gateway" },
        { ECONNRESET, 502, "bad-gateway" },
        { EHOSTDOWN, 502, "bad-gateway" },
        { EHOSTUNREACH, 502, "bad-gateway" },
        { EPIPE, 502, "bad-gateway" },
};

static const struct {
        unsigned status;
        const char *title;
} titles[] = {
        { 200, "OK" },
        { 201, "Created" },
        { 202, "Accepted" },
        { 204, "No Content" },
        { 400, "Bad Request" },
        { 401, "Unauthorized" },
        { 403, "Forbidden" },
        { 404, "Not Found" },
        { 405, "Method Not Allowed" },
        { 406, "Not Acceptable" },
        { 408, "Request Timeout" },
        { 409, "Conflict" },
        { 410, "Gone" },
        { 411, "Length Required" },
        { 412, "Precondition Failed" },
        { 413, "Content Too Large" },
        { 414, "URI Too Long" },
        { 415, "Unsupported Media Type" },
        { 422, "Unprocessable Content" },
        { 428, "Precondition Required" },
        { 429, "Too Many Requests" },
        { 431, "Request Header Fields Too Large" },
        { 500, "Internal Server Error" },
        { 501, "Not Implemented" },
        { 502, "Bad Gateway" },
        { 503, "Service Unavailable" },
        { 504, "Gateway Timeout" },
        { 507, "Insufficient Storage" },
};

unsigned gv_http_status_from_errno(int r)
{
        int code = r < 0 ? -r : r;
        if (code == ENOTSUP)
                code = EOPNOTSUPP;
        for (size_t i = 0; i < ELEMENTSOF(errno_table); i++)
                if (errno_table[i].code == code)
                        return errno_table[i].status;
        return 500;
}

const char *gv_http_problem_slug_from_errno(int r)
{
        int code = r < 0 ? -r : r;
        if (code == ENOTSUP)
                code = EOPNOTSUPP;
        for (size_t i = 0; i < ELEMENTSOF(errno_table); i++)
                if (errno_table[i].code == code)
                        return errno_table[i].slug;
        return "internal";
}

const char *gv_http_status_title(unsigned status)
{
        for (size_t i = 0; i < ELEMENTSOF(titles); i++)
                if (titles[i].status == status)
                        return titles[i].title;
        return "Error";
}

/* Copy s with every byte that does not start a valid UTF-8 sequence replaced by U+FFFD. */
static char *utf8_repair(const char *s)
{
        size_t n = strlen(s);
        if (gv_http_utf8_is_valid(s, n))
                return xstrdup(s);

        char *out = xmalloc(n * 3 + 1);
        size_t o = 0;
        for (size_t i = 0; i < n;) {
                size_t take = 0;
                /* the longest valid sequence starting here is 1 to 4 bytes */
                for (size_t k = 1; k <= 4 && i + k <= n; k++)
                        if (gv_http_utf8_is_valid(s + i, k)) {
                                take = k;
                                break;
                        }
                if (take) {
                        memcpy(out + o, s + i, take);
                        o += take;
                        i += take;
                } else {
                        memcpy(out + o, "\xef\xbf\xbd", 3);
                        o += 3;
                        i++;
                }
        }
        out[o] = '\0';
        return out;
}

json_t *gv_http_json_string_lossy(const char *s)
{
        _cleanup_free_ char *fixed = utf8_repair(s ? s : "");
        json_t *j = json_string(fixed);
        if (!j)
                abort(); /* only on OOM: the string is valid UTF-8 */
        return j;
}

static bool slug_is_valid(const char *slug)
{
        if (!slug || !*slug)
                return false;
        for (const char *p = slug; *p; p++)
                if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '-'))
                        return false;
        return true;
}

json_t *gv_http_problem_new(unsigned status, const char *slug, const char *title,
                            const char *detail, const char *instance)
{
        json_t *p = json_object();
        if (!p)
                abort();

        if (slug_is_valid(slug)) {
                _cleanup_free_ char *type = xasprintf(GV_HTTP_PROBLEM_TYPE_BASE "%s", slug);
                json_object_set_new(p, "type", json_string(type));
        } else {
                json_object_set_new(p, "type", json_string("about:blank"));
        }
        if (!title)
                title = gv_http_status_title(status);
        json_object_set_new(p, "title", gv_http_json_string_lossy(title));
        json_object_set_new(p, "status", json_integer(status));
        if (detail)
                json_object_set_new(p, "detail", gv_http_json_string_lossy(detail));
        if (instance)
                json_object_set_new(p, "instance", gv_http_json_string_lossy(instance));
        return p;
}

json_t *gv_http_problem_from_error(int r, const struct gv_error *e, const char *instance)
{
        int code = r < 0 ? -r : r;
        if (code == 0)
                code = e ? e->code : EIO;
        unsigned status = gv_http_status_from_errno(code);
        json_t *p = gv_http_problem_new(status, gv_http_problem_slug_from_errno(code), NULL,
                                        gv_error_msg(e, -code), instance);
        json_object_set_new(p, "errno", json_string(gv_errno_name(code)));
        return p;
}
