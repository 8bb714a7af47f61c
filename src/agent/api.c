/* SPDX-License-Identifier: MIT */
/*
 * api.c — the agent's HTTP/JSON API (docs/agent.md): routes onto agent.h, with every mutation
 * behind the operation journal (oplog.h): a POST or DELETE needs an `Operation-Id` header; the
 * same id with the same request answers what the first one answered, without doing it again.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "agent/api.h"
#include "agent/console.h"
#include "agent/console-ws.h"
#include "agent/oplog.h"
#include "http/problem.h"
#include "http/server.h"
#include "util/alloc.h"
#include "util/json.h"
#include "util/sha256.h"
#include "util/strv.h"

#define CONSOLE_DEFAULT_BYTES 65536u
#define CONSOLE_MAX_BYTES (4u << 20)

typedef int (*mutation_fn)(struct gv_http_request *req, struct gv_agent_api *api,
                           unsigned *ret_status, json_t **ret_body, struct gv_error **err);

static int reply(struct gv_http_request *req, unsigned status, json_t *body /* stolen */)
{
        if (status >= 400)
                return gv_http_reply_problem_json(req, status, body);
        return gv_http_reply_json(req, status, body);
}

/* reliability.md F10: a write of the agent's own state failed for want of space. The change is
 * refused (nothing half-done is kept: the operation's record or the VM's file was not
 * written), running VMs are untouched, and the answer is 507 naming the directory to free. NULL
 * for any other failure (a GPU with no room left is ENOSPC too, without a path in the state
 * directory). */
static json_t *state_full_problem(struct gv_agent_api *api, int r, const struct gv_error *e,
                                  const char *instance)
{
        const char *dir = api->agent->state_dir;
        if (r != -ENOSPC || !e || !dir || !strstr(e->msg, dir))
                return NULL;
        _cleanup_free_ char *d = xasprintf("The agent's state directory '%s' is full, so nothing "
                                           "was changed (running VMs go on): free space there, "
                                           "then retry (%s)", dir, e->msg);
        return gv_http_problem_new(507, "insufficient-storage", NULL, d, instance);
}

/* Run a mutation once per operation id. */
static int mutate(struct gv_http_request *req, struct gv_agent_api *api, mutation_fn fn)
{
        const char *id = gv_http_header(req, "Operation-Id");
        _cleanup_(gv_error_freep) struct gv_error *e = NULL;
        enum gv_oplog_begin kind;
        unsigned status = 0;
        json_t *body = NULL;
        size_t len = 0;
        const char *raw = gv_http_body(req, &len);
        int r;

        if (!id)
                return gv_http_reply_problem(req, 400, "operation-id-required", NULL,
                                             "Every change needs an 'Operation-Id' header "
                                             "([A-Za-z0-9._-], 1-64 characters), unique per "
                                             "intended change: a retry with the same id is "
                                             "answered without doing it twice.");
        if (!gv_oplog_id_is_valid(id))
                return gv_http_reply_problem(req, 400, "operation-id-invalid", NULL,
                                             "Operation-Id '%.80s' is not valid: use 1-64 of "
                                             "A-Z a-z 0-9 . _ -.", id);
        r = gv_oplog_begin(api->oplog, id, gv_http_method(req), gv_http_path(req), raw, len,
                           &status, &body, &kind, &e);
        if (r < 0) {
                json_t *p = state_full_problem(api, r, e, gv_http_path(req));
                return p ? gv_http_reply_problem_json(req, 507, p) : gv_http_reply_error(req, r, e);
        }
        switch (kind) {
        case GV_OPLOG_REPLAY:
                return reply(req, status, body);
        case GV_OPLOG_IN_PROGRESS:
                json_decref(body);
                return gv_http_reply_problem(req, 409, "operation-in-progress", NULL,
                                             "Operation '%s' is being carried out now; ask "
                                             "again when it is done.", id);
        case GV_OPLOG_MISMATCH:
                json_decref(body);
                return gv_http_reply_problem(req, 422, "operation-id-reused", NULL,
                                             "Operation-Id '%s' was used for a different "
                                             "request; use a new id for a new change.", id);
        default:
                break;
        }
        r = fn(req, api, &status, &body, &e);
        if (r < 0) {
                body = state_full_problem(api, r, e, gv_http_path(req));
                status = body ? 507 : gv_http_status_from_errno(r);
                if (!body)
                        body = gv_http_problem_from_error(r, e, gv_http_path(req));
        }
        if (status >= 500) {
                (void)gv_oplog_forget(api->oplog, id, NULL); /* a retry runs it again */
        } else {
                (void)gv_oplog_finish(api->oplog, id, status, body, NULL);
                /* The journal's bounds (oplog.h) hold between restarts too (R16). */
                static unsigned finished;
                if (__atomic_add_fetch(&finished, 1, __ATOMIC_RELAXED) % GV_OPLOG_PRUNE_EVERY == 0)
                        (void)gv_oplog_prune(api->oplog, GV_OPLOG_KEEP_S, GV_OPLOG_KEEP_MAX, NULL);
        }
        return reply(req, status, body);
}

static int body_object(struct gv_http_request *req, json_t **ret, struct gv_error **err)
{
        size_t len = 0;
        (void)gv_http_body(req, &len);
        if (!len) {
                *ret = json_object();
                return 0;
        }
        return gv_http_body_json(req, ret, err);
}

/* ---- VMs ---- */

static int do_define(struct gv_http_request *req, struct gv_agent_api *api, unsigned *st,
                     json_t **body, struct gv_error **err)
{
        _cleanup_json_ json_t *def = NULL;
        int r = gv_http_body_json(req, &def, err);
        if (r < 0)
                return r;
        r = gv_agent_vm_define(api->agent, def, body, err);
        *st = 201;
        return r;
}

static int vm_status_reply(struct gv_agent_api *api, const char *name, unsigned *st, json_t **body,
                           struct gv_error **err)
{
        *st = 200;
        return gv_agent_vm_status(api->agent, name, body, err);
}

static int do_start(struct gv_http_request *req, struct gv_agent_api *api, unsigned *st,
                    json_t **body, struct gv_error **err)
{
        const char *name = gv_http_param(req, "name");
        int r = gv_agent_vm_start(api->agent, name, err);
        return r < 0 ? r : vm_status_reply(api, name, st, body, err);
}

static int do_stop(struct gv_http_request *req, struct gv_agent_api *api, unsigned *st,
                   json_t **body, struct gv_error **err)
{
        static const char *const keys[] = { "timeout_s", NULL };
        const char *name = gv_http_param(req, "name");
        _cleanup_json_ json_t *in = NULL;
        uint32_t timeout_s = 0;
        int r = body_object(req, &in, err);

        if (r >= 0 && json_object_size(in) && !json_object_get(in, keys[0]))
                r = gv_error_set(err, EINVAL, "A stop takes only 'timeout_s'.");
        if (r >= 0)
                r = gv_json_opt_u32(in, "timeout_s", &timeout_s, err);
        if (r >= 0 && timeout_s > 3600)
                r = gv_error_set(err, EINVAL, "timeout_s: at most 3600.");
        if (r >= 0)
                r = gv_agent_vm_stop(api->agent, name, (int)timeout_s * 1000, err);
        return r < 0 ? r : vm_status_reply(api, name, st, body, err);
}

static int do_kill(struct gv_http_request *req, struct gv_agent_api *api, unsigned *st,
                   json_t **body, struct gv_error **err)
{
        const char *name = gv_http_param(req, "name");
        int r = gv_agent_vm_kill(api->agent, name, err);
        return r < 0 ? r : vm_status_reply(api, name, st, body, err);
}

static int do_delete(struct gv_http_request *req, struct gv_agent_api *api, unsigned *st,
                     json_t **body, struct gv_error **err)
{
        const char *name = gv_http_param(req, "name");
        int r = gv_agent_vm_delete(api->agent, name, err);
        if (r < 0)
                return r;
        *st = 200;
        *body = json_pack("{s:s, s:b}", "name", name, "deleted", 1);
        return 0;
}

static int do_console_write(struct gv_http_request *req, struct gv_agent_api *api, unsigned *st,
                            json_t **body, struct gv_error **err)
{
        const char *name = gv_http_param(req, "name");
        size_t len = 0;
        const char *data = gv_http_body(req, &len);
        int r = gv_agent_console_write(api->agent, name, data, len, err);
        if (r < 0)
                return r;
        *st = 200;
        *body = json_pack("{s:I}", "written", (json_int_t)len);
        return 0;
}

/* ---- live migration (migrate.c) ---- */

typedef int (*migration_fn)(struct gv_agent *a, const char *name, const json_t *body,
                            json_t **ret, struct gv_error **err);

static int migration_call(struct gv_http_request *req, struct gv_agent_api *api, migration_fn fn,
                          unsigned *st, json_t **body, struct gv_error **err)
{
        _cleanup_json_ json_t *in = NULL;
        int r = body_object(req, &in, err);
        if (r >= 0)
                r = fn(api->agent, gv_http_param(req, "name"), in, body, err);
        *st = 200;
        return r;
}

#define MIGRATION_MUTATION(fn)                                                          \
        static int do_##fn(struct gv_http_request *req, struct gv_agent_api *api,       \
                           unsigned *st, json_t **body, struct gv_error **err)          \
        {                                                                               \
                return migration_call(req, api, gv_agent_vm_##fn, st, body, err);       \
        }
MIGRATION_MUTATION(incoming)
MIGRATION_MUTATION(migrate)
MIGRATION_MUTATION(migrate_cancel)
MIGRATION_MUTATION(release)
MIGRATION_MUTATION(abort_incoming)

static int h_migration(struct gv_http_request *req, void *userdata)
{
        struct gv_agent_api *api = userdata;
        _cleanup_(gv_error_freep) struct gv_error *e = NULL;
        json_t *j = NULL;
        int r = gv_agent_vm_migration(api->agent, gv_http_param(req, "name"), &j, &e);
        return r < 0 ? gv_http_reply_error(req, r, e) : gv_http_reply_json(req, 200, j);
}

/* ---- GPUs ---- */

static int do_gpu_mode(struct gv_http_request *req, struct gv_agent_api *api, unsigned *st,
                       json_t **body, struct gv_error **err)
{
        _cleanup_json_ json_t *in = NULL;
        const char *mode = NULL;
        int r = gv_http_body_json(req, &in, err);

        if (r >= 0)
                r = gv_json_get_string(in, "mode", &mode, err);
        if (r >= 0)
                r = gv_agent_gpu_set_mode(api->agent, gv_http_param(req, "gpu"), mode, err);
        if (r < 0)
                return r;
        *st = 200;
        *body = json_pack("{s:s, s:s}", "gpu", gv_http_param(req, "gpu"), "mode", mode);
        return 0;
}

static int do_gpu_mig(struct gv_http_request *req, struct gv_agent_api *api, unsigned *st,
                      json_t **body, struct gv_error **err)
{
        _cleanup_json_ json_t *in = NULL;
        _cleanup_strv_free_ char **profiles = NULL;
        _cleanup_free_ char *layout = NULL;
        json_t *a = NULL, *v;
        size_t i;
        int r = gv_http_body_json(req, &in, err);

        if (r >= 0)
                r = gv_json_get_array(in, "profiles", &a, err);
        if (r < 0)
                return r;
        json_array_foreach(a, i, v) {
                if (!json_is_string(v))
                        return gv_error_set(err, EINVAL, "profiles[%zu]: a profile name such as "
                                            "\"3g.40gb\".", i);
                strv_extend(&profiles, json_string_value(v));
        }
        if (!profiles)
                profiles = xnew0(char *, 1);
        r = gv_agent_gpu_mig_apply(api->agent, gv_http_param(req, "gpu"), profiles, &layout, err);
        if (r < 0)
                return r;
        *st = 200;
        *body = json_pack("{s:s, s:s}", "gpu", gv_http_param(req, "gpu"), "layout",
                          layout ? layout : "");
        return 0;
}

/* ---- handlers ---- */

#define MUTATION(fn)                                                                    \
        static int h_##fn(struct gv_http_request *req, void *userdata)                  \
        {                                                                               \
                return mutate(req, userdata, do_##fn);                                  \
        }
MUTATION(define)
MUTATION(start)
MUTATION(stop)
MUTATION(kill)
MUTATION(delete)
MUTATION(console_write)
MUTATION(gpu_mode)
MUTATION(gpu_mig)
MUTATION(incoming)
MUTATION(migrate)
MUTATION(migrate_cancel)
MUTATION(release)
MUTATION(abort_incoming)

static int h_host(struct gv_http_request *req, void *userdata)
{
        struct gv_agent_api *api = userdata;
        return gv_http_reply_json(req, 200, gv_agent_host_json(api->agent));
}

static int h_metrics(struct gv_http_request *req, void *userdata)
{
        struct gv_agent_api *api = userdata;
        json_t *j = gv_agent_metrics(api->agent);
        if (!j)
                return gv_http_reply_problem(req, 503, "metrics-unavailable",
                                             "No metrics sample yet",
                                             "The metrics sampler has not taken its first sample "
                                             "yet; retry in a second.");
        return gv_http_reply_json(req, 200, j);
}

static int h_vms(struct gv_http_request *req, void *userdata)
{
        struct gv_agent_api *api = userdata;
        return gv_http_reply_json(req, 200, gv_agent_vm_list(api->agent));
}

static int h_vm(struct gv_http_request *req, void *userdata)
{
        struct gv_agent_api *api = userdata;
        _cleanup_(gv_error_freep) struct gv_error *e = NULL;
        json_t *s = NULL;
        int r = gv_agent_vm_status(api->agent, gv_http_param(req, "name"), &s, &e);
        return r < 0 ? gv_http_reply_error(req, r, e) : gv_http_reply_json(req, 200, s);
}

static ssize_t follow_cb(void *cls, char *buf, size_t max, int stop_fd)
{
        return gv_console_follow_read(cls, buf, max, stop_fd);
}

static void follow_free(void *cls)
{
        gv_console_follow_free(cls);
}

static int h_console_read(struct gv_http_request *req, void *userdata)
{
        static const char *const allowed[] = { "bytes", "follow", NULL };
        struct gv_agent_api *api = userdata;
        _cleanup_(gv_error_freep) struct gv_error *e = NULL;
        _cleanup_free_ char *text = NULL;
        const char *q = NULL, *fq = NULL;
        uint32_t max = CONSOLE_DEFAULT_BYTES;
        bool follow = false;
        size_t len = 0;
        int r = gv_http_query_check(req, allowed, &e);

        if (r >= 0)
                r = gv_http_query(req, "bytes", &q, &e);
        if (r >= 0 && q && (gv_parse_u32(q, 10, &max) < 0 || max > CONSOLE_MAX_BYTES))
                r = gv_error_set(&e, EINVAL, "bytes: '%s' is not a count up to %u.", q,
                                 CONSOLE_MAX_BYTES);
        if (r >= 0)
                r = gv_http_query(req, "follow", &fq, &e);
        if (r >= 0 && fq && gv_parse_bool(fq, &follow) < 0)
                r = gv_error_set(&e, EINVAL, "follow: '%s' is not true or false.", fq);
        if (r >= 0 && follow) {
                /* A stream of the console's raw bytes (chunked): the last `bytes` of the log,
                 * then what the guest writes, until its QEMU exits. */
                struct gv_console_follow *f = NULL;
                r = gv_agent_console_follow(api->agent, gv_http_param(req, "name"), max, &f, &e);
                if (r >= 0)
                        return gv_http_reply_stream(req, 200, "application/octet-stream",
                                                    follow_cb, f, follow_free);
        }
        if (r >= 0)
                r = gv_agent_console_read(api->agent, gv_http_param(req, "name"), max, &text,
                                          &len, &e);
        if (r < 0)
                return gv_http_reply_error(req, r, e);
        /* JSON strings are UTF-8; a console carries bytes: invalid sequences become U+FFFD. */
        json_t *s = json_stringn_nocheck(text, len);
        if (!json_string_value(s) || !gv_http_utf8_is_valid(text, len)) {
                for (size_t i = 0; i < len; i++)
                        if ((unsigned char)text[i] >= 0x80)
                                text[i] = '?';
                json_decref(s);
                s = json_stringn(text, len);
        }
        return gv_http_reply_json(req, 200, json_pack("{s:o, s:I}", "text", s, "bytes",
                                                      (json_int_t)len));
}

static int h_console_ws(struct gv_http_request *req, void *userdata)
{
        struct gv_agent_api *api = userdata;
        return gv_agent_console_ws(req, api->agent);
}

static int h_vnc_ws(struct gv_http_request *req, void *userdata)
{
        struct gv_agent_api *api = userdata;
        return gv_agent_vnc_ws(req, api->agent);
}

/* ---- reconcile ---- */

static int do_reconcile(struct gv_http_request *req, struct gv_agent_api *api, unsigned *st,
                        json_t **body, struct gv_error **err)
{
        _cleanup_json_ json_t *in = NULL;
        int r = body_object(req, &in, err);

        if (r >= 0 && json_object_size(in))
                r = gv_error_set(err, EINVAL, "A reconcile pass takes no parameters.");
        if (r < 0)
                return r;
        *st = 200;
        *body = gv_agent_reconcile(api->agent);
        return 0;
}
MUTATION(reconcile)

static int h_reconcile_last(struct gv_http_request *req, void *userdata)
{
        struct gv_agent_api *api = userdata;
        json_t *j = gv_agent_reconcile_last(api->agent);
        if (!j)
                return gv_http_reply_problem(req, 404, "not-found", NULL, "No reconcile pass has "
                                             "run yet; POST /v1/reconcile runs one.");
        return gv_http_reply_json(req, 200, j);
}

/* ---- authentication on TCP ---- */

int gv_agent_api_authorize(void *userdata, struct gv_http_request *req)
{
        struct gv_agent_api *api = userdata;
        const char *h = gv_http_header(req, "Authorization");
        const char *detail;

        if (!api->secret) {
                detail = "This agent has no secret yet, so its TCP listener takes no requests; "
                         "use its UNIX socket, or restart it so that it makes one.";
        } else if (!h || strncasecmp(h, "Bearer ", 7) != 0) {
                detail = "This agent's TCP API needs 'Authorization: Bearer SECRET', the "
                         "agent's secret its controller got at registration (docs/agent.md, "
                         "\"Authentication\").";
        } else {
                /* Hashes of both sides: equal lengths, and a comparison whose time says
                 * nothing about the secret. */
                uint8_t want[GV_SHA256_DIGEST_SIZE], got[GV_SHA256_DIGEST_SIZE];
                struct gv_sha256 s;
                gv_sha256_init(&s);
                gv_sha256_update(&s, api->secret, strlen(api->secret));
                gv_sha256_final(&s, want);
                const char *v = h + 7;
                while (*v == ' ')
                        v++;
                gv_sha256_init(&s);
                gv_sha256_update(&s, v, strlen(v));
                gv_sha256_final(&s, got);
                if (gv_memeq_const_time(want, got, sizeof(want)))
                        return 0;
                detail = "The agent's secret given is not this agent's (was the agent's "
                         "secret file replaced? the agent registers again with the new one).";
        }
        (void)gv_http_reply_problem(req, 401, "unauthorized", NULL, "%s", detail);
        (void)gv_http_reply_header(req, "WWW-Authenticate", "Bearer realm=\"gpuvirt-agent\"");
        return 1;
}

static const struct gv_http_route routes[] = {
        { "GET", "/v1/host", h_host },
        { "GET", "/v1/metrics", h_metrics },
        { "POST", "/v1/gpus/{gpu:text}/mode", h_gpu_mode },
        { "POST", "/v1/gpus/{gpu:text}/mig", h_gpu_mig },
        { "GET", "/v1/vms", h_vms },
        { "POST", "/v1/vms", h_define },
        { "GET", "/v1/vms/{name}", h_vm },
        { "DELETE", "/v1/vms/{name}", h_delete },
        { "POST", "/v1/vms/{name}/start", h_start },
        { "POST", "/v1/vms/{name}/stop", h_stop },
        { "POST", "/v1/vms/{name}/kill", h_kill },
        { "GET", "/v1/vms/{name}/console", h_console_read },
        { "POST", "/v1/vms/{name}/console", h_console_write },
        { "GET", "/v1/vms/{name}/console/ws", h_console_ws },
        { "GET", "/v1/vms/{name}/vnc/ws", h_vnc_ws },
        { "POST", "/v1/vms/{name}/incoming", h_incoming },
        { "POST", "/v1/vms/{name}/migrate", h_migrate },
        { "GET", "/v1/vms/{name}/migration", h_migration },
        { "POST", "/v1/vms/{name}/migrate-cancel", h_migrate_cancel },
        { "POST", "/v1/vms/{name}/release", h_release },
        { "POST", "/v1/vms/{name}/abort-incoming", h_abort_incoming },
        { "GET", "/v1/reconcile", h_reconcile_last },
        { "POST", "/v1/reconcile", h_reconcile },
};

const struct gv_http_route *gv_agent_api_routes(size_t *ret_n)
{
        *ret_n = ELEMENTSOF(routes);
        return routes;
}
