/* SPDX-License-Identifier: MIT */
/*
 * api.h — the controller's REST API (docs/api.md) over src/http: the route table, with the
 * minimum role of every route, and the OpenAPI document embedded at build time.
 *
 * Serve it with gv_http_server_new(cfg, gv_controller_api_routes(&n), n, &api, ...) where api
 * is a struct gv_controller_api that outlives the server. Requests on the UNIX socket are admin;
 * on TCP the role comes from gv_controller_authenticate() on the Authorization header.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "controller/controller.h"
#include "http/server.h"

struct gv_controller_api {
        struct gv_controller *controller;
        int keepalive_ms; /* ": keep-alive" comments on the event stream; 0: 15 s */
        const char *web_dir; /* the dashboard's files (web.c); NULL: /usr/share/gpuvirt/web */
};

/* The route table (static; valid forever). */
const struct gv_http_route *gv_controller_api_routes(size_t *ret_n);

/* The OpenAPI 3.1 document (src/controller/openapi.json), NUL-terminated. */
extern const char gv_controller_openapi_json[];
extern const size_t gv_controller_openapi_json_len;

/* Every route once: X(method, pattern, handler name, minimum role, query parameters, members),
 * the role one of NONE, VIEWER, OPERATOR, ADMIN (the cluster roles that may call it), the
 * query one of Q_NONE, Q_WAIT (?wait=SECONDS), Q_LIMIT (?limit=N), Q_AFTER (?after=SEQ),
 * Q_UPLOAD (none, and the body goes to a file), Q_METRICS (?series=...&range=...), Q_INSIGHTS
 * (?window=...&threshold=...), Q_AUDIT (the audit log's filters), and members (a tenant's
 * member tokens) one of M_NO (refused: 403), M_OWN (allowed on their tenant's objects only;
 * the handler checks the object and filters lists — another tenant's object is 404, as if it
 * did not exist) or M_ALL (allowed, nothing tenant-owned in it). api.c makes the handlers and
 * the table from it; tests/controller/test-openapi.c compares it with the OpenAPI document and
 * tests/controller/test-authz-cluster.sh runs every route as every role (route-policy.c prints
 * this table for it). */
#define GV_CONTROLLER_API_ROUTES(X)                                                            \
        X("GET", "/api/v1/openapi.json", openapi, NONE, Q_NONE, M_ALL)                         \
        X("GET", "/api/v1/health", health, NONE, Q_NONE, M_ALL)                                \
        X("GET", "/api/v1/hosts", hosts, VIEWER, Q_NONE, M_NO)                                 \
        X("POST", "/api/v1/hosts", host_register, ADMIN, Q_NONE, M_NO)                         \
        X("GET", "/api/v1/hosts/{host}", host, VIEWER, Q_NONE, M_NO)                           \
        X("POST", "/api/v1/hosts/{host}/heartbeat", host_heartbeat, ADMIN, Q_NONE, M_NO)       \
        X("POST", "/api/v1/hosts/{host}/drain", host_drain, ADMIN, Q_WAIT, M_NO)               \
        X("POST", "/api/v1/hosts/{host}/undrain", host_undrain, ADMIN, Q_NONE, M_NO)           \
        X("POST", "/api/v1/hosts/{host}/fence", host_fence, ADMIN, Q_NONE, M_NO)               \
        X("POST", "/api/v1/hosts/{host}/unfence", host_unfence, ADMIN, Q_NONE, M_NO)           \
        X("POST", "/api/v1/hosts/{host}/evacuate", host_evacuate, ADMIN, Q_WAIT, M_NO)         \
        X("POST", "/api/v1/hosts/{host}/pool", host_pool, ADMIN, Q_NONE, M_NO)                 \
        X("GET", "/api/v1/gpus", gpus, VIEWER, Q_NONE, M_NO)                                   \
        X("GET", "/api/v1/hosts/{host}/gpus/{gpu:text}", gpu, VIEWER, Q_NONE, M_NO)            \
        X("GET", "/api/v1/hosts/{host}/gpus/{gpu:text}/vgpu-types", vgpu_types, VIEWER,       \
          Q_NONE, M_NO)                                                                        \
        X("POST", "/api/v1/hosts/{host}/gpus/{gpu:text}/mode", gpu_mode, ADMIN, Q_WAIT, M_NO)  \
        X("POST", "/api/v1/hosts/{host}/gpus/{gpu:text}/mig", gpu_mig, ADMIN, Q_WAIT, M_NO)    \
        X("GET", "/api/v1/vms", vms, VIEWER, Q_NONE, M_OWN)                                    \
        X("POST", "/api/v1/vms", vm_create, OPERATOR, Q_WAIT, M_OWN)                           \
        X("POST", "/api/v1/placements", placement, VIEWER, Q_NONE, M_OWN)                      \
        X("POST", "/api/v1/advise", advise, VIEWER, Q_NONE, M_NO)                              \
        X("GET", "/api/v1/vms/{vm}", vm, VIEWER, Q_NONE, M_OWN)                                \
        X("DELETE", "/api/v1/vms/{vm}", vm_delete, OPERATOR, Q_WAIT, M_OWN)                    \
        X("POST", "/api/v1/vms/{vm}/start", vm_start, OPERATOR, Q_WAIT, M_OWN)                 \
        X("POST", "/api/v1/vms/{vm}/stop", vm_stop, OPERATOR, Q_WAIT, M_OWN)                   \
        X("POST", "/api/v1/vms/{vm}/migrate", vm_migrate, OPERATOR, Q_WAIT, M_NO)              \
        X("GET", "/api/v1/vms/{vm}/console/ws", vm_console_ws, OPERATOR, Q_NONE, M_OWN)        \
        X("GET", "/api/v1/vms/{vm}/vnc/ws", vm_vnc_ws, OPERATOR, Q_NONE, M_OWN)                \
        X("GET", "/api/v1/operations", operations, VIEWER, Q_LIMIT, M_OWN)                     \
        X("GET", "/api/v1/operations/{id}", operation, VIEWER, Q_WAIT, M_OWN)                  \
        X("GET", "/api/v1/events", events, VIEWER, Q_AFTER, M_OWN)                             \
        X("GET", "/api/v1/images", images, VIEWER, Q_NONE, M_ALL)                              \
        X("POST", "/api/v1/images", image_register, OPERATOR, Q_NONE, M_NO)                    \
        X("PUT", "/api/v1/images/{image}", image_upload, OPERATOR, Q_UPLOAD, M_NO)             \
        X("DELETE", "/api/v1/images/{image}", image_delete, OPERATOR, Q_NONE, M_NO)            \
        X("GET", "/api/v1/tokens", tokens, ADMIN, Q_NONE, M_NO)                                \
        X("POST", "/api/v1/tokens", token_create, ADMIN, Q_NONE, M_NO)                         \
        X("DELETE", "/api/v1/tokens/{id}", token_delete, ADMIN, Q_NONE, M_NO)                  \
        X("GET", "/api/v1/tenants", tenants, ADMIN, Q_NONE, M_OWN)                             \
        X("GET", "/api/v1/tenants/{tenant}", tenant, ADMIN, Q_NONE, M_OWN)                     \
        X("PUT", "/api/v1/tenants/{tenant}", tenant_put, ADMIN, Q_NONE, M_NO)                  \
        X("DELETE", "/api/v1/tenants/{tenant}", tenant_delete, ADMIN, Q_NONE, M_NO)            \
        X("GET", "/api/v1/audit", audit, ADMIN, Q_AUDIT, M_NO)                                 \
        X("GET", "/api/v1/metrics", metrics, VIEWER, Q_METRICS, M_OWN)                         \
        X("GET", "/api/v1/licenses", licenses, VIEWER, Q_NONE, M_NO)                           \
        X("GET", "/api/v1/licenses/{pool}", license, VIEWER, Q_NONE, M_NO)                     \
        X("PUT", "/api/v1/licenses/{pool}", license_put, ADMIN, Q_NONE, M_NO)                  \
        X("DELETE", "/api/v1/licenses/{pool}", license_delete, ADMIN, Q_NONE, M_NO)            \
        X("GET", "/api/v1/insights", insights, VIEWER, Q_INSIGHTS, M_NO)                       \
        X("GET", "/metrics", prometheus, VIEWER, Q_NONE, M_NO)

/* The largest request body the API takes (R20 in ../shared/reference/reliability.md: a hard
 * cap, Firecracker's is 51,200 bytes); image uploads stream to a file under their own limit. */
#define GV_CONTROLLER_API_MAX_BODY (64u * 1024u)

/* The dashboard's static files (web.c, docs/dashboard.md): GET / and /ui redirect to /ui/;
 * GET /ui/{file:path} serves the file from web_dir ("" is index.html), refusing anything
 * outside it. No role: the files hold no data. They are in the route table after the API's
 * routes, not in GV_CONTROLLER_API_ROUTES (not API routes, so not in the OpenAPI document). */
int gv_controller_web_root(struct gv_http_request *req, void *userdata);
int gv_controller_web_file(struct gv_http_request *req, void *userdata);
/* "text/css; charset=utf-8" for "app.css": by the name's extension; application/octet-stream
 * when unknown. */
const char *gv_controller_web_content_type(const char *name);
/* The directory served: api->web_dir or the default. */
const char *gv_controller_web_dir(const struct gv_controller_api *api);

/* ---- for api*.c only ---- */

/* Idempotency-Key records (api-idem.c; GV_STORE_IDEMPOTENCY: {"request_sha256", "state":
 * "running" | "done", "status", "body", "operation"}). A done record is kept 24 hours; a
 * running one older than 15 minutes (longer than any request with ?wait) was left by a
 * controller that stopped, and is taken over. */
enum gv_idem_begin {
        GV_IDEM_NEW,      /* recorded as running: carry the request out, then finish */
        GV_IDEM_REPLAY,   /* done before: *ret_record holds status, body, operation */
        GV_IDEM_RUNNING,  /* the same request is being carried out now */
        GV_IDEM_MISMATCH, /* the key was used for another request */
};
bool gv_idem_key_is_valid(const char *key);
int gv_idem_begin(struct gv_controller *c, const char *key, const char *request_sha256,
                  enum gv_idem_begin *ret_kind, json_t **ret_record, struct gv_error **err);
int gv_idem_finish(struct gv_controller *c, const char *key, const char *request_sha256,
                   unsigned status, const json_t *body, const char *operation_id,
                   struct gv_error **err);
int gv_idem_forget(struct gv_controller *c, const char *key, struct gv_error **err);
/* "sqlite": the store's scheme, for /health. */
const char *gv_controller_store_scheme(struct gv_controller *c);

/* The consoles (console.c): the WebSocket of a VM's serial console (kind "console") or display
 * ("vnc"), relayed from its agent, after the role check. Answers itself (0) or fails with
 * -errno and err for the caller to answer. */
int gv_controller_vm_ws(struct gv_http_request *req, struct gv_controller *c, const char *vm,
                        const char *kind, struct gv_error **err);
/* "Bearer <token>" from a WebSocket request's "gpuvirt.bearer.<token>" subprotocol (browsers
 * cannot set Authorization on a WebSocket), or NULL. */
char *gv_controller_ws_bearer(const struct gv_http_request *req);

/* The event stream (api-events.c): GET /api/v1/events, after the role check; tenant (a
 * member's) limits it to the events of that tenant's VMs and their operations. */
int gv_controller_api_events(struct gv_http_request *req, struct gv_controller_api *api,
                             const char *tenant);
