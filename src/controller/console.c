/* SPDX-License-Identifier: MIT */
/*
 * console.c — a VM's consoles through the controller (docs/api.md "Consoles"):
 * GET /api/v1/vms/{vm}/console/ws (serial) and /api/v1/vms/{vm}/vnc/ws (graphical).
 *
 * The browser's WebSocket cannot send an Authorization header, so the token may come as a
 * subprotocol instead: "gpuvirt.bearer.<token>" among the offered ones (a token is
 * "gvt_" and hex digits, all valid in a subprotocol). The controller never chooses that one
 * (the answer would echo the secret): it chooses "binary" (noVNC) or "gpuvirt" (the dashboard's
 * serial console) when offered. A short-lived ticket from a POST would also work, but needs
 * state shared between controllers and a second round trip; the subprotocol is what Kubernetes
 * does for the same reason (its "base64url.bearer.authorization.k8s.io." prefix), and the
 * token never appears in a URL (URLs are logged, kept in history and sent as Referer).
 *
 * The controller checks the VM and the role, dials the VM's agent (GET /v1/vms/NAME/console/ws
 * or vnc/ws, websocket.h) and only then answers the browser's upgrade, relaying raw bytes both
 * ways: frames pass through unchanged (websocket.h says why that is valid), so pings and the
 * closing handshake are end to end. An agent's refusal (404, 409, 503) is passed on as it came.
 * The dial carries the agent's secret (Authorization), as every call to an agent does; over an
 * https endpoint the client's relay thread holds the TLS session (client.h).
 */
#include <errno.h>
#include <string.h>

#include "controller/api.h"
#include "controller/controller-internal.h"
#include "http/problem.h"
#include "http/websocket.h"
#include "util/alloc.h"
#include "util/json.h"
#include "util/strv.h"

#define BEARER_PREFIX "gpuvirt.bearer."
#define DIAL_TIMEOUT_MS 10000

char *gv_controller_ws_bearer(const struct gv_http_request *req)
{
        if (!gv_ws_is_upgrade_request(req))
                return NULL;
        _cleanup_strv_free_ char **offered = gv_ws_request_protocols(req);
        STRV_FOREACH(p, offered)
                if (strncmp(*p, BEARER_PREFIX, strlen(BEARER_PREFIX)) == 0)
                        return xasprintf("Bearer %s", *p + strlen(BEARER_PREFIX));
        return NULL;
}

int gv_controller_vm_ws(struct gv_http_request *req, struct gv_controller *c, const char *vm,
                        const char *kind, struct gv_error **err)
{
        _cleanup_json_ json_t *v = NULL;
        _cleanup_free_ char *path = NULL, *ep = NULL, *auth = NULL;
        _cleanup_strv_free_ char **offered = NULL;
        struct gv_http_client_reply refusal = { 0 };
        char *extra = NULL;
        size_t n_extra = 0;
        int fd = -1, r;

        if (gv_ws_reply_if_invalid(req))
                return 0;
        r = gv_controller_vm(c, vm, &v, err);
        if (r < 0)
                return r;
        const char *host = json_string_value(json_object_get(v, "host"));
        const char *state = json_string_value(json_object_get(v, "state"));
        if (!host)
                return gv_error_set(err, EBUSY, "VM '%s' is %s and on no host; its %s exists "
                                    "only while it runs. Start it first.", vm,
                                    state ? state : "not placed",
                                    strcmp(kind, "vnc") == 0 ? "display" : "console");
        r = gv_ctl_agent_target(c, host, &ep, &auth, err);
        if (r < 0)
                return r;

        path = xasprintf("/v1/vms/%s/%s/ws", vm, kind);
        const char *headers[] = { auth, NULL };
        struct gv_ws_dial d = { .endpoint = ep, .path = path, .timeout_ms = DIAL_TIMEOUT_MS,
                                .headers = auth ? headers : NULL };
        _cleanup_(gv_error_freep) struct gv_error *e = NULL;
        r = gv_ws_dial(&d, &fd, &extra, &n_extra, NULL, &refusal, &e);
        if (auth)
                explicit_bzero(auth, strlen(auth));
        if (r < 0)
                return gv_error_set(err, EHOSTDOWN, "cannot reach the agent of host '%s' at "
                                    "%s: %s", host, ep, gv_error_msg(e, r));
        if (r > 0) {
                /* The agent's own words: a problem with its status. */
                json_t *p = json_loadb(refusal.body, refusal.body_len, 0, NULL);
                int status = refusal.status;
                gv_http_client_reply_done(&refusal);
                if (!json_is_object(p)) {
                        json_decref(p);
                        return gv_http_reply_problem(req, 502, "bad-gateway", NULL,
                                                     "The agent of host '%s' refused the %s "
                                                     "with HTTP %d.", host, kind, status);
                }
                json_object_set_new(p, "instance", json_string(gv_http_path(req)));
                return gv_http_reply_problem_json(req, (unsigned)status, p);
        }
        offered = gv_ws_request_protocols(req);
        const char *chosen = strv_contains(offered, "binary")    ? "binary"
                             : strv_contains(offered, "gpuvirt") ? "gpuvirt"
                                                                 : NULL;
        return gv_ws_reply_relay(req, chosen, fd, extra, n_extra);
}
