/* SPDX-License-Identifier: MIT */
/*
 * problem.h — RFC 9457 problem details (application/problem+json) and the errno → HTTP status
 * table every gpuvirt API answers with.
 *
 * A problem is a JSON object
 *   { "type": "https://gpuvirt.dev/problems/<slug>", "title": "...", "status": 409,
 *     "detail": "...", "instance": "/v1/vms/web1/start" }
 * plus optional extension members (the server adds "errno": "EBUSY" for errors that came from an
 * errno, and "request_id").
 *
 * The errno table (gv_http_status_from_errno):
 *
 *   errno                                   status  slug              why
 *   ENOENT, ESRCH, ENXIO                    404     not-found         the object does not exist
 *   EEXIST                                  409     already-exists    a create would overwrite
 *   EBUSY, EALREADY, EINPROGRESS            409     busy              state conflict; retry later
 *   ENOSPC                                  409     no-capacity       the host's GPUs are full: a
 *                                                                     conflict with its current
 *                                                                     state (not 507, which is
 *                                                                     about storing the resource)
 *   EINVAL, ERANGE, EBADMSG, ENAMETOOLONG,   400     invalid-request   the request is wrong as sent
 *   EILSEQ, EDOM
 *   E2BIG, EFBIG, EMSGSIZE                  413     too-large         body or value above a cap
 *   EOPNOTSUPP (ENOTSUP)                    422     not-supported     understood, but the target
 *                                                                     cannot do it (a GPU without
 *                                                                     MIG); the server is fine
 *   ENOSYS                                  501     not-implemented   this build cannot do it
 *   EACCES, EPERM                           403     forbidden
 *   ETIMEDOUT                               504     timeout           a step (QMP, an agent) took
 *                                                                     too long
 *   EAGAIN, ENOBUFS                         503     unavailable       try again later
 *   ECONNREFUSED, ECONNRESET, EHOSTDOWN,    502     bad-gateway       a peer (agent, QEMU monitor)
 *   EHOSTUNREACH, EPIPE                                               could not be reached
 *   anything else                           500     internal
 */
#pragma once

#include <jansson.h>

#include "util/error.h"

#define GV_HTTP_PROBLEM_TYPE_BASE "https://gpuvirt.dev/problems/"

/* HTTP status and problem slug for an errno (either sign). */
unsigned gv_http_status_from_errno(int r);
const char *gv_http_problem_slug_from_errno(int r);

/* "Not Found" for 404 etc.; "Error" for a status without a reason phrase here. */
const char *gv_http_status_title(unsigned status);

/* A new problem object. slug is [a-z0-9-]+ (anything else becomes "about:blank", as RFC 9457
 * says for untyped problems); title NULL: the status's title; detail and instance may be NULL
 * (left out). Strings that are not valid UTF-8 are repaired (bad bytes become U+FFFD) so the
 * problem can always be serialised. Never NULL. */
json_t *gv_http_problem_new(unsigned status, const char *slug, const char *title,
                            const char *detail, const char *instance);

/* The problem for an error: status, slug and "errno" member from r, detail from e (or
 * strerror). */
json_t *gv_http_problem_from_error(int r, const struct gv_error *e, const char *instance);

/* A json string of s made valid UTF-8 (invalid bytes become U+FFFD). Never NULL. */
json_t *gv_http_json_string_lossy(const char *s);
