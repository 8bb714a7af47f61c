/* SPDX-License-Identifier: MIT */
/*
 * route.h — the route table and its matcher (a pure function: no I/O, no server).
 *
 * A route is { method, pattern, handler }. A pattern is an absolute path whose segments are
 * literals or parameters:
 *
 *   "/v1/vms/{name}/start"      {name}       one path segment, percent-decoded, and the decoded
 *                                            value must be a valid name (gv_name_is_valid:
 *                                            [a-z0-9][a-z0-9._-]{0,62})
 *   "/v1/images/{label:text}"   {label:text} one path segment of free text: percent-decoded,
 *                                            valid UTF-8, no control characters, not "." or ".."
 *   "/ui/{file:path}"           {file:path}  the rest of the path, last in a pattern only: zero
 *                                            or more segments ("/ui/" gives ""), percent-decoded,
 *                                            valid UTF-8, no control characters or backslashes,
 *                                            no segment "." or ".." (static files)
 *
 * Literal segments match the raw path exactly (no decoding, no case folding, no trailing-slash
 * forgiveness). A parameter never spans a '/' of the raw path. HEAD is routed to GET routes.
 *
 * Matching takes the first route in table order whose shape and method match and whose
 * parameters are valid; otherwise it says why, in this order: a parameter that is not valid
 * (-EINVAL, answered 400), a path served by other methods only (-EOPNOTSUPP, answered 405 with
 * the Allow header from gv_http_route_allowed()), no route at all (-ENOENT, answered 404).
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "util/error.h"

struct gv_http_request;

/* A handler answers with one of the gv_http_reply_*() calls (server.h) and returns 0, or
 * returns -errno without answering: the server then answers as gv_http_reply_error(r, NULL)
 * would. A handler runs in the connection's own thread and may block. */
typedef int (*gv_http_handler)(struct gv_http_request *req, void *userdata);

struct gv_http_route {
        const char *method;      /* "GET", "HEAD", "POST", "PUT", "PATCH" or "DELETE" */
        const char *pattern;     /* "/v1/vms/{name}/start" */
        gv_http_handler handler;
        /* The body is not collected in memory but written to a file in the server's
         * upload_dir (uploads of disk images): the handler takes it with gv_http_body_path(). */
        bool body_to_file;
};

/* Limits of a pattern. */
#define GV_HTTP_MAX_PARAMS 8
#define GV_HTTP_PARAM_NAME_MAX 32 /* bytes of a parameter's name, NUL included */

struct gv_http_param {
        char name[GV_HTTP_PARAM_NAME_MAX];
        char *value; /* decoded, owned */
};

struct gv_http_route_match {
        const struct gv_http_route *route;
        size_t n_params;
        struct gv_http_param params[GV_HTTP_MAX_PARAMS];
};

/* Check a route table once, before serving: methods known, patterns well-formed (absolute, no
 * empty segment, parameters "{name}" or "{name:text}" with [a-z_][a-z0-9_]* names, at most
 * GV_HTTP_MAX_PARAMS, unique within a pattern), handlers set, no (method, pattern) twice.
 * -EINVAL with the offending entry named. */
int gv_http_routes_check(const struct gv_http_route *routes, size_t n, struct gv_error **err);

/* Match method and raw path (no query string) against the table. On success *ret holds the
 * route and the decoded parameters; release them with gv_http_route_match_done(). Failures:
 * -EINVAL (a parameter is malformed or not a valid name), -EOPNOTSUPP (the path exists for
 * other methods), -ENOENT (no such path); the error says which and why. */
int gv_http_route_find(const struct gv_http_route *routes, size_t n, const char *method,
                       const char *path, struct gv_http_route_match *ret, struct gv_error **err);

/* "GET, HEAD, DELETE": the methods of every route whose pattern has the shape of path (whatever
 * the parameters hold), HEAD added where GET is served, in table order without repeats. NULL
 * when no route has that shape. */
char *gv_http_route_allowed(const struct gv_http_route *routes, size_t n, const char *path);

/* The decoded value of parameter name, or NULL. */
const char *gv_http_route_match_param(const struct gv_http_route_match *m, const char *name);
void gv_http_route_match_done(struct gv_http_route_match *m);

/* Percent-decode s[0..len) into a new string ("%41" -> "A"; with plus_is_space, "+" -> " " as
 * in query strings). -EINVAL for a '%' not followed by two hex digits or a decoded NUL. */
int gv_http_percent_decode(const char *s, size_t len, bool plus_is_space, char **ret);

/* Whether s[0..len) is well-formed UTF-8 (no overlong forms, surrogates or code points above
 * U+10FFFF). */
bool gv_http_utf8_is_valid(const char *s, size_t len);
