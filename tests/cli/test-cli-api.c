/* SPDX-License-Identifier: MIT */
/*
 * The `gpuvirt` API commands against a fake controller: a gv_http_server on a UNIX socket (no
 * token needed, like the real local socket) and on TCP (tokens "admin-tok" and "viewer-tok"),
 * answering the routes of docs/api.md from a small in-memory model. Each test runs the real
 * gpuvirt binary ($GPUVIRT) and checks its exit code, its output and what reached the server
 * (method, path, JSON body, Authorization).
 */
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <pty.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "http/server.h"
#include "util/alloc.h"
#include "util/fileio.h"
#include "util/json.h"
#include "util/parse.h"
#include "util/strv.h"

/* ---- the fake controller ---- */

struct fake_op {
        char id[32];
        char kind[32];
        char target[80];
        int step;
        bool fail;
};

static struct {
        pthread_mutex_t lock;
        unsigned n_requests;
        char method[16];
        char path[256];
        char query[256];
        char auth[128];
        json_t *body;       /* last JSON body */
        size_t raw_len;     /* last body length */
        struct fake_op ops[64];
        size_t n_ops;
        json_t *vms;        /* array */
} S = { .lock = PTHREAD_MUTEX_INITIALIZER };

static json_t *gpu0(void)
{
        return json_pack("{s:s, s:i, s:s, s:s, s:s, s:i, s:s, s:{s:[{s:i, s:s, s:i, s:i, s:s}],"
                         " s:i}, s:[], s:n, s:i, s:i}",
                         "host", "node-a", "index", 0, "name", "node-a/0", "pci", "0000:18:00.0",
                         "model", "H100-SXM5-80GB", "memory_mib", 81920, "mode", "mig", "mig",
                         "instances", "id", 1, "profile", "3g.40gb", "start", 0, "size", 4, "vm",
                         "infer-1", "free_slices", 4, "vgpus", "passthrough_vm", "util_pct", 61,
                         "memory_used_mib", 43008);
}

static json_t *gpu1(void)
{
        return json_pack("{s:s, s:i, s:s, s:s, s:s, s:i, s:s, s:n, s:[{s:s, s:s, s:s}], s:n,"
                         " s:n, s:n}",
                         "host", "node-a", "index", 1, "name", "node-a/1", "pci", "0000:2a:00.0",
                         "model", "H100-SXM5-80GB", "memory_mib", 81920, "mode", "vgpu", "mig",
                         "vgpus", "id", "5f0c", "type", "H100XM-20C", "vm", "vdi-1",
                         "passthrough_vm", "util_pct", "memory_used_mib");
}

/* node-b's GPU in the shape the controller gives today: the agent's inventory (mig.gpu_instances)
 * and "use" naming the VMs */
static json_t *gpu_b0(void)
{
        return json_pack("{s:s, s:i, s:s, s:s, s:s, s:i, s:s, s:{s:i, s:[{s:i, s:s, s:i, s:i}]},"
                         " s:[{s:s, s:s, s:s, s:i}], s:n, s:i}",
                         "host", "node-b", "index", 0, "name", "node-b/0", "pci", "0000:18:00.0",
                         "model", "A100-SXM4-80GB", "memory_mib", 81920, "mode", "mig", "mig",
                         "memory_slices", 8, "gpu_instances", "id", 9, "profile", "1g.10gb",
                         "start", 6, "size", 1, "use", "vm", "tiny", "alloc", "mig", "name",
                         "1g.10gb", "start", 6, "util_pct", "memory_used_mib", 1024);
}

static json_t *host_json(const char *name, bool with_gpus)
{
        bool a = strcmp(name, "node-a") == 0;
        if (!a) {
                json_t *b = json_pack("{s:s, s:s, s:s, s:i, s:i, s:{s:i}}", "name", name,
                                      "state", "down", "accel", "tcg", "cpus", 32, "memory_mib",
                                      65536, "models", "A100-SXM4-80GB", 1);
                json_object_set_new(b, "gpus", with_gpus ? json_pack("[o]", gpu_b0())
                                                         : json_integer(1));
                return b;
        }
        json_t *h = json_pack("{s:s, s:s, s:s, s:s, s:b, s:{s:i, s:i}, s:{s:i, s:i}}",
                              "name", name, "state", a ? "up" : "down", "endpoint",
                              "http://127.0.0.1:8471", "accel", "kvm", "simulated", 1, "cpu",
                              "total", 64, "used", 18, "memory_mib", "total", 524288, "used",
                              147456);
        if (with_gpus)
                json_object_set_new(h, "gpus", a ? json_pack("[o, o]", gpu0(), gpu1())
                                                 : json_array());
        else {
                json_object_set_new(h, "gpus", json_integer(a ? 2 : 0));
                json_object_set_new(h, "models", json_string(a ? "2× H100-SXM5-80GB" : ""));
        }
        return h;
}

static int problem(struct gv_http_request *req, unsigned status, const char *slug,
                   const char *detail)
{
        return gv_http_reply_problem(req, status, slug, NULL, "%s", detail);
}

static json_t *op_json(const struct fake_op *op)
{
        static const char *const msgs[] = { "queued", "placing", "starting QEMU on node-a",
                                            "running" };
        int step = op->step > 3 ? 3 : op->step;
        bool done = step == 3;
        json_t *o = json_pack("{s:s, s:s, s:s, s:s, s:i, s:s, s:i, s:i, s:n, s:n}",
                              "id", op->id, "kind", op->kind, "target", op->target,
                              "state", done ? (op->fail ? "failed" : "succeeded")
                                            : step == 0 ? "pending" : "running",
                              "progress", done ? 100 : step * 40, "message", msgs[step],
                              "created_at", 1718000000, "updated_at", 1718000002, "result",
                              "error");
        if (done && op->fail)
                json_object_set_new(o, "error", json_pack("{s:s, s:s, s:i, s:s}", "type",
                                    "https://gpuvirt.dev/problems/no-capacity", "title",
                                    "Conflict", "status", 409, "detail",
                                    "node-a refused the VM: GPU 0 has no free 4-slice range"));
        return o;
}

/* Record the request; answer 401/403 per the token. Returns 0 to go on, 1 when answered. */
static int enter(struct gv_http_request *req)
{
        const char *auth = gv_http_header(req, "Authorization");
        const char *m = gv_http_method(req);
        uid_t uid;
        bool local = gv_http_peer_cred(req, &uid, NULL, NULL) >= 0;
        size_t len;
        const char *body = gv_http_body(req, &len);

        pthread_mutex_lock(&S.lock);
        S.n_requests++;
        snprintf(S.method, sizeof(S.method), "%s", m);
        snprintf(S.path, sizeof(S.path), "%s", gv_http_path(req));
        snprintf(S.auth, sizeof(S.auth), "%s", auth ? auth : "");
        const char *after = NULL, *wait = NULL;
        (void)gv_http_query(req, "after", &after, NULL);
        (void)gv_http_query(req, "wait", &wait, NULL);
        snprintf(S.query, sizeof(S.query), "%s%s%s%s", after ? "after=" : "", after ? after : "",
                 wait ? "wait=" : "", wait ? wait : "");
        json_decref(S.body);
        S.body = len ? json_loadb(body, len, 0, NULL) : NULL;
        S.raw_len = len;
        pthread_mutex_unlock(&S.lock);

        bool admin = local && !auth;
        bool viewer = false;
        if (auth && strcmp(auth, "Bearer admin-tok") == 0)
                admin = true;
        else if (auth && strcmp(auth, "Bearer viewer-tok") == 0)
                viewer = true;
        else if (!admin) {
                problem(req, 401, "unauthorized", "the token is missing or not known.");
                return 1;
        }
        if (viewer && strcmp(m, "GET") != 0) {
                problem(req, 403, "forbidden", "this needs the role operator; the token has "
                        "viewer.");
                return 1;
        }
        return 0;
}

static int new_op(struct gv_http_request *req, const char *kind, const char *target, bool fail)
{
        pthread_mutex_lock(&S.lock);
        assert_true(S.n_ops < ELEMENTSOF(S.ops));
        struct fake_op *op = &S.ops[S.n_ops];
        snprintf(op->id, sizeof(op->id), "op-%04zx", S.n_ops + 1);
        snprintf(op->kind, sizeof(op->kind), "%s", kind);
        snprintf(op->target, sizeof(op->target), "%s", target);
        op->fail = fail;
        S.n_ops++;
        json_t *j = op_json(op);
        pthread_mutex_unlock(&S.lock);
        return gv_http_reply_json(req, 202, j);
}

static int h_hosts(struct gv_http_request *req, void *u)
{
        (void)u;
        if (enter(req))
                return 0;
        return gv_http_reply_json(req, 200, json_pack("[o, o]", host_json("node-a", false),
                                                      host_json("node-b", false)));
}

static bool host_known(const char *h)
{
        return strcmp(h, "node-a") == 0 || strcmp(h, "node-b") == 0;
}

static int h_host(struct gv_http_request *req, void *u)
{
        (void)u;
        if (enter(req))
                return 0;
        const char *h = gv_http_param(req, "host");
        if (!host_known(h))
                return gv_http_reply_problem(req, 404, "not-found", NULL, "host '%s' is not "
                                             "known; hosts: node-a, node-b.", h);
        return gv_http_reply_json(req, 200, host_json(h, true));
}

static int h_gpus(struct gv_http_request *req, void *u)
{
        (void)u;
        if (enter(req))
                return 0;
        return gv_http_reply_json(req, 200, json_pack("[o, o]", gpu0(), gpu1()));
}

/* -1: answered (404); else the GPU index */
static int find_gpu(struct gv_http_request *req)
{
        const char *h = gv_http_param(req, "host"), *g = gv_http_param(req, "gpu");
        if (strcmp(h, "node-a") == 0 && (strcmp(g, "0") == 0 || strcmp(g, "1") == 0))
                return g[0] - '0';
        gv_http_reply_problem(req, 404, "not-found", NULL, "GPU '%s/%s' is not known.", h, g);
        return -1;
}

static int h_gpu(struct gv_http_request *req, void *u)
{
        (void)u;
        if (enter(req))
                return 0;
        int g = find_gpu(req);
        if (g < 0)
                return 0;
        return gv_http_reply_json(req, 200, g == 0 ? gpu0() : gpu1());
}

static int h_vgpu_types(struct gv_http_request *req, void *u)
{
        (void)u;
        if (enter(req))
                return 0;
        if (find_gpu(req) < 0)
                return 0;
        return gv_http_reply_json(req, 200, json_pack("[{s:s, s:i, s:i, s:i}, {s:s, s:i, s:i, "
                                                      "s:i}]", "name", "H100XM-20C",
                                                      "framebuffer_mib", 20480, "max_instances",
                                                      4, "available", 3, "name", "H100XM-40C",
                                                      "framebuffer_mib", 40960, "max_instances",
                                                      2, "available", 0));
}

static int h_gpu_mode(struct gv_http_request *req, void *u)
{
        (void)u;
        if (enter(req))
                return 0;
        int g = find_gpu(req);
        if (g < 0)
                return 0;
        if (g == 1)
                return problem(req, 409, "busy", "GPU node-a/1 is used by VM 'vdi-1'; stop or "
                               "delete it first.");
        return new_op(req, "gpu.mode", "gpu/node-a/0", false);
}

static int h_gpu_mig(struct gv_http_request *req, void *u)
{
        (void)u;
        if (enter(req))
                return 0;
        if (find_gpu(req) < 0)
                return 0;
        return new_op(req, "gpu.mig", "gpu/node-a/0", false);
}

static json_t *vm_json(const char *name)
{
        return json_pack("{s:s, s:s, s:s, s:{s:s, s:i, s:i, s:[{s:s, s:s}]}, s:{s:s, s:s, "
                         "s:[{s:s, s:s, s:s, s:s, s:i, s:i}]}, s:i, s:i, s:n}",
                         "name", name, "state", "running", "host", "node-a", "spec", "name", name,
                         "vcpus", 8, "memory_mib", 32768, "gpus", "kind", "mig", "profile",
                         "3g.40gb", "placement", "host", "node-a", "policy", "gpuvirt", "gpus",
                         "gpu", "node-a/0", "pci", "0000:18:00.0", "alloc", "mig-vgpu",
                         "profile", "3g.40gb", "start", 4, "size", 4, "created_at", 1718000000,
                         "generation", 3, "error");
}

static int h_vms(struct gv_http_request *req, void *u)
{
        (void)u;
        if (enter(req))
                return 0;
        pthread_mutex_lock(&S.lock);
        json_t *a = json_deep_copy(S.vms);
        pthread_mutex_unlock(&S.lock);
        return gv_http_reply_json(req, 200, a);
}

static int h_vm_create(struct gv_http_request *req, void *u)
{
        (void)u;
        if (enter(req))
                return 0;
        _cleanup_json_ json_t *body = NULL;
        int r = gv_http_body_json(req, &body, NULL);
        if (r < 0)
                return problem(req, 400, "invalid-request", "the body is not a JSON object.");
        const char *name = json_string_value(json_object_get(body, "name"));
        if (!name)
                return problem(req, 400, "invalid-request", "vm-create: 'name' is required.");
        if (strcmp(name, "big") == 0)
                return problem(req, 409, "no-capacity", "no host can place mig:7g.80gb: 2 hosts "
                               "have no free 8-slice range");
        _cleanup_free_ char *target = xasprintf("vm/%s", name);
        pthread_mutex_lock(&S.lock);
        json_array_append_new(S.vms, vm_json(name));
        pthread_mutex_unlock(&S.lock);
        return new_op(req, "vm.create", target, strcmp(name, "doomed") == 0);
}

static bool vm_known(const char *name)
{
        bool found = false;
        size_t i;
        json_t *v;
        pthread_mutex_lock(&S.lock);
        json_array_foreach(S.vms, i, v)
                if (strcmp(json_string_value(json_object_get(v, "name")), name) == 0)
                        found = true;
        pthread_mutex_unlock(&S.lock);
        return found;
}

static int h_vm(struct gv_http_request *req, void *u)
{
        (void)u;
        if (enter(req))
                return 0;
        const char *name = gv_http_param(req, "vm");
        if (!vm_known(name))
                return gv_http_reply_problem(req, 404, "not-found", NULL, "VM '%s' is not "
                                             "known.", name);
        if (strcmp(gv_http_method(req), "DELETE") == 0)
                return new_op(req, "vm.delete", "vm/x", false);
        return gv_http_reply_json(req, 200, vm_json(name));
}

static int h_vm_start(struct gv_http_request *req, void *u)
{
        (void)u;
        if (enter(req))
                return 0;
        if (!vm_known(gv_http_param(req, "vm")))
                return problem(req, 404, "not-found", "VM is not known.");
        return new_op(req, "vm.start", "vm/x", false);
}

static int h_vm_stop(struct gv_http_request *req, void *u)
{
        (void)u;
        if (enter(req))
                return 0;
        if (!vm_known(gv_http_param(req, "vm")))
                return problem(req, 404, "not-found", "VM is not known.");
        return new_op(req, "vm.stop", "vm/x", false);
}

static int h_vm_migrate(struct gv_http_request *req, void *u)
{
        (void)u;
        if (enter(req))
                return 0;
        if (!vm_known(gv_http_param(req, "vm")))
                return problem(req, 404, "not-found", "VM is not known.");
        return new_op(req, "vm.migrate", "vm/x", false);
}

static int h_op(struct gv_http_request *req, void *u)
{
        (void)u;
        if (enter(req))
                return 0;
        const char *id = gv_http_param(req, "id");
        const char *wait = NULL;
        (void)gv_http_query(req, "wait", &wait, NULL);
        json_t *j = NULL;
        pthread_mutex_lock(&S.lock);
        for (size_t i = 0; i < S.n_ops; i++)
                if (strcmp(S.ops[i].id, id) == 0) {
                        if (wait)
                                S.ops[i].step++;
                        j = op_json(&S.ops[i]);
                }
        pthread_mutex_unlock(&S.lock);
        if (!j)
                return gv_http_reply_problem(req, 404, "not-found", NULL, "operation '%s' is not "
                                             "known.", id);
        bool done = strcmp(json_string_value(json_object_get(j, "state")), "succeeded") == 0 ||
                    strcmp(json_string_value(json_object_get(j, "state")), "failed") == 0;
        return gv_http_reply_json(req, done ? 200 : 202, j);
}

static int h_ops(struct gv_http_request *req, void *u)
{
        (void)u;
        if (enter(req))
                return 0;
        json_t *a = json_array();
        pthread_mutex_lock(&S.lock);
        for (size_t i = S.n_ops; i > 0; i--)
                json_array_append_new(a, op_json(&S.ops[i - 1]));
        pthread_mutex_unlock(&S.lock);
        return gv_http_reply_json(req, 200, a);
}

/* events: seq after+1 .. 3, then the end; after >= 3: one event, then held open */
struct ev_stream {
        uint64_t next, last;
        bool hold;
};

static ssize_t ev_cb(void *cls, char *buf, size_t max, int stop_fd)
{
        struct ev_stream *s = cls;
        if (s->next <= s->last) {
                uint64_t q = s->next++;
                int n = snprintf(buf, max, ": keep-alive\n\nid: %llu\nevent: vm.state\ndata: "
                                 "{\"seq\": %llu, \"time\": 1718000000123, \"type\": \"vm.state\","
                                 " \"subject\": \"vm/infer-%llu\", \"data\": {\"state\": "
                                 "\"running\", \"host\": \"node-a\"}}\r\n\r\n",
                                 (unsigned long long)q, (unsigned long long)q,
                                 (unsigned long long)q);
                return n;
        }
        if (!s->hold)
                return 0;
        struct pollfd p = { .fd = stop_fd, .events = POLLIN };
        (void)poll(&p, 1, 20000);
        return 0;
}

static int h_events(struct gv_http_request *req, void *u)
{
        (void)u;
        if (enter(req))
                return 0;
        const char *after = NULL;
        uint64_t a = 0;
        if (gv_http_query(req, "after", &after, NULL) > 0 && gv_parse_u64(after, 10, &a) < 0)
                return problem(req, 400, "invalid-request", "after is not a number.");
        struct ev_stream *s = xnew0(struct ev_stream, 1);
        s->next = a + 1;
        s->last = a >= 3 ? a + 1 : 3;
        s->hold = a >= 3;
        return gv_http_reply_stream(req, 200, "text/event-stream", ev_cb, s, free);
}

static int h_images(struct gv_http_request *req, void *u)
{
        (void)u;
        if (enter(req))
                return 0;
        if (strcmp(gv_http_method(req), "POST") == 0)
                return gv_http_reply_json(req, 201, json_pack("{s:s, s:s, s:s, s:I}", "name",
                                                              "debian-12", "path", "/img/d.qcow2",
                                                              "format", "qcow2", "virtual_size",
                                                              (json_int_t)2147483648LL));
        return gv_http_reply_json(req, 200, json_pack("[{s:s, s:s, s:s, s:I}]", "name",
                                                      "debian-12", "path", "/img/d.qcow2",
                                                      "format", "qcow2", "virtual_size",
                                                      (json_int_t)2147483648LL));
}

static int h_image(struct gv_http_request *req, void *u)
{
        (void)u;
        if (enter(req))
                return 0;
        const char *name = gv_http_param(req, "image");
        if (strcmp(gv_http_method(req), "PUT") == 0)
                return gv_http_reply_json(req, 201, json_pack("{s:s, s:s}", "name", name,
                                                              "format", "raw"));
        if (strcmp(name, "in-use") == 0)
                return problem(req, 409, "busy", "image 'in-use' is used by VMs: infer-1.");
        return gv_http_reply_json(req, 200, json_pack("{s:s}", "deleted", name));
}

static int h_tokens(struct gv_http_request *req, void *u)
{
        (void)u;
        if (enter(req))
                return 0;
        if (strcmp(gv_http_method(req), "POST") == 0)
                return gv_http_reply_json(req, 201, json_pack("{s:s, s:s, s:s, s:s}", "id",
                                                              "tok-1", "name", "ci", "role",
                                                              "operator", "token",
                                                              "gvt_s3cret"));
        return gv_http_reply_json(req, 200, json_pack("[{s:s, s:s, s:s, s:i}]", "id", "tok-1",
                                                      "name", "ci", "role", "operator",
                                                      "created_at", 1718000000));
}

static int h_token(struct gv_http_request *req, void *u)
{
        (void)u;
        if (enter(req))
                return 0;
        if (strcmp(gv_http_param(req, "id"), "tok-1") != 0)
                return problem(req, 404, "not-found", "token is not known.");
        return gv_http_reply_json(req, 200, json_object());
}

static int h_garbage(struct gv_http_request *req, void *u)
{
        (void)u;
        if (enter(req))
                return 0;
        return gv_http_reply_problem(req, 500, "internal", NULL, "internal error");
}

static const struct gv_http_route routes[] = {
        { "GET", "/api/v1/hosts", h_hosts },
        { "GET", "/api/v1/hosts/{host}", h_host },
        { "GET", "/api/v1/gpus", h_gpus },
        { "GET", "/api/v1/hosts/{host}/gpus/{gpu}", h_gpu },
        { "GET", "/api/v1/hosts/{host}/gpus/{gpu}/vgpu-types", h_vgpu_types },
        { "POST", "/api/v1/hosts/{host}/gpus/{gpu}/mode", h_gpu_mode },
        { "POST", "/api/v1/hosts/{host}/gpus/{gpu}/mig", h_gpu_mig },
        { "GET", "/api/v1/vms", h_vms },
        { "POST", "/api/v1/vms", h_vm_create },
        { "GET", "/api/v1/vms/{vm}", h_vm },
        { "DELETE", "/api/v1/vms/{vm}", h_vm },
        { "POST", "/api/v1/vms/{vm}/start", h_vm_start },
        { "POST", "/api/v1/vms/{vm}/stop", h_vm_stop },
        { "POST", "/api/v1/vms/{vm}/migrate", h_vm_migrate },
        { "GET", "/api/v1/operations", h_ops },
        { "GET", "/api/v1/operations/{id}", h_op },
        { "GET", "/api/v1/events", h_events },
        { "GET", "/api/v1/images", h_images },
        { "POST", "/api/v1/images", h_images },
        { "PUT", "/api/v1/images/{image}", h_image },
        { "DELETE", "/api/v1/images/{image}", h_image },
        { "GET", "/api/v1/tokens", h_tokens },
        { "POST", "/api/v1/tokens", h_tokens },
        { "DELETE", "/api/v1/tokens/{id}", h_token },
        { "GET", "/api/v1/broken", h_garbage },
};

/* ---- fixture ---- */

static struct {
        char dir[64];
        char *unix_ep;
        char *tcp_ep;
        struct gv_http_server *srv;
        const char *gpuvirt;
} F;

static int group_setup(void **state)
{
        (void)state;
        F.gpuvirt = getenv("GPUVIRT");
        if (!F.gpuvirt) {
                fprintf(stderr, "GPUVIRT is not set (the path of the gpuvirt binary)\n");
                return -1;
        }
        snprintf(F.dir, sizeof(F.dir), "/tmp/gv-cli-api.XXXXXX");
        if (!mkdtemp(F.dir))
                return -1;
        _cleanup_free_ char *sock = gv_path_join(F.dir, "api.sock");
        struct gv_http_config cfg = { .unix_path = sock, .tcp_address = "127.0.0.1:0" };
        _cleanup_(gv_error_freep) struct gv_error *e = NULL;
        if (gv_http_server_new(&cfg, routes, ELEMENTSOF(routes), NULL, &F.srv, &e) < 0) {
                fprintf(stderr, "fake server: %s\n", gv_error_msg(e, -EIO));
                return -1;
        }
        F.unix_ep = xasprintf("unix:%s", sock);
        F.tcp_ep = xasprintf("http://127.0.0.1:%u", gv_http_server_tcp_port(F.srv));
        S.vms = json_pack("[o]", vm_json("infer-1"));
        return 0;
}

static int group_teardown(void **state)
{
        (void)state;
        F.srv = gv_http_server_free(F.srv);
        (void)gv_rm_rf(F.dir);
        free(F.unix_ep);
        free(F.tcp_ep);
        json_decref(S.vms);
        json_decref(S.body);
        return 0;
}

/* ---- running gpuvirt ---- */

struct run {
        int code;
        char *out;
        char *err;
};

static void run_done(struct run *r)
{
        free(r->out);
        free(r->err);
        *r = (struct run){};
}

/* The environment of a run: PATH, HOME (an empty folder: no config), sanitizer options,
 * GPUVIRT_ENDPOINT (the UNIX socket), then env's "K=V" entries replacing those ("K=" removes
 * K). */
static char **make_env(const char *const *env)
{
        char **l = NULL;
        _cleanup_free_ char *home = gv_path_join(F.dir, "home");
        (void)gv_mkdir_p(home, 0700);
        strv_consume(&l, xasprintf("PATH=%s", getenv("PATH") ? getenv("PATH") : "/usr/bin:/bin"));
        strv_consume(&l, xasprintf("HOME=%s", home));
        strv_consume(&l, xasprintf("GPUVIRT_ENDPOINT=%s", F.unix_ep));
        static const char *const pass[] = { "ASAN_OPTIONS", "UBSAN_OPTIONS", "LSAN_OPTIONS",
                                            NULL };
        for (const char *const *p = pass; *p; p++)
                if (getenv(*p))
                        strv_consume(&l, xasprintf("%s=%s", *p, getenv(*p)));
        for (const char *const *e = env; e && *e; e++) {
                const char *eq = strchr(*e, '=');
                size_t k = (size_t)(eq - *e) + 1;
                char **out = NULL;
                STRV_FOREACH(x, l)
                        if (strncmp(*x, *e, k) != 0)
                                strv_extend(&out, *x);
                if (eq[1])
                        strv_extend(&out, *e);
                strv_free(l);
                l = out;
        }
        return l;
}

static char *slurp(const char *path)
{
        char *s = NULL;
        size_t n;
        if (gv_read_file(path, 4u << 20, &s, &n) < 0)
                return xstrdup("");
        return s;
}

/* Run gpuvirt ARGS... (NULL-terminated) with env; with tty, stderr is a terminal. */
static void run_argv(struct run *r, const char *const *env, bool tty, char **args)
{
        _cleanup_free_ char *out = gv_path_join(F.dir, "out"), *err = gv_path_join(F.dir, "err");
        _cleanup_strv_free_ char **envp = make_env(env);
        int master = -1, slave = -1;
        if (tty) {
                assert_int_equal(openpty(&master, &slave, NULL, NULL, NULL), 0);
                assert_int_equal(fcntl(master, F_SETFD, FD_CLOEXEC), 0);
                assert_int_equal(fcntl(slave, F_SETFD, FD_CLOEXEC), 0);
        }
        pid_t pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
                int o = open(out, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
                int e = tty ? slave : open(err, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
                int n = open("/dev/null", O_RDONLY | O_CLOEXEC);
                if (o < 0 || e < 0 || n < 0 || dup2(n, 0) < 0 || dup2(o, 1) < 0 || dup2(e, 2) < 0)
                        _exit(99);
                execve(F.gpuvirt, args, envp);
                _exit(98);
        }
        if (tty) {
                close(slave);
                /* read the terminal until the child closes it */
                char buf[4096];
                _cleanup_free_ char *acc = xstrdup("");
                for (;;) {
                        ssize_t n = read(master, buf, sizeof(buf) - 1);
                        if (n <= 0)
                                break;
                        buf[n] = '\0';
                        char *x = xasprintf("%s%s", acc, buf);
                        free(acc);
                        acc = x;
                }
                close(master);
                r->err = TAKE_PTR(acc);
        }
        int status;
        assert_int_equal(waitpid(pid, &status, 0), pid);
        r->code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
        r->out = slurp(out);
        if (!tty)
                r->err = slurp(err);
}

static void run_env(struct run *r, const char *const *env, ...)
{
        char **args = NULL;
        strv_extend(&args, "gpuvirt");
        va_list ap;
        va_start(ap, env);
        for (const char *a; (a = va_arg(ap, const char *));)
                strv_extend(&args, a);
        va_end(ap);
        run_argv(r, env, false, args);
        strv_free(args);
}

#define RUN(r, ...) run_env((r), NULL, __VA_ARGS__, NULL)
#define RUN_ENV(r, env, ...) run_env((r), (env), __VA_ARGS__, NULL)

#define assert_contains(hay, needle)                                                      \
        do {                                                                              \
                if (!strstr((hay), (needle)))                                             \
                        fail_msg("'%s' not found in:\n%s", (needle), (hay));              \
        } while (0)

static unsigned n_requests(void)
{
        pthread_mutex_lock(&S.lock);
        unsigned n = S.n_requests;
        pthread_mutex_unlock(&S.lock);
        return n;
}

/* The last JSON body, as compact sorted text. */
static char *last_body(void)
{
        pthread_mutex_lock(&S.lock);
        char *s = S.body ? json_dumps(S.body, JSON_COMPACT | JSON_SORT_KEYS) : xstrdup("(none)");
        pthread_mutex_unlock(&S.lock);
        return s;
}

/* ---- tests ---- */

static void test_host_list(void **state)
{
        (void)state;
        struct run r;
        RUN(&r, "host", "list");
        assert_int_equal(r.code, 0);
        assert_contains(r.out, "HOST");
        assert_contains(r.out, "node-a");
        assert_contains(r.out, "18/64");
        assert_contains(r.out, "144/512 GiB");
        assert_contains(r.out, "2× H100-SXM5-80GB");
        /* node-b in the inventory's shape: totals, models as an object; no "pool" from the
         * controller is the pool every host starts in */
        assert_contains(r.out, "node-b  down   default  tcg    32");
        assert_contains(r.out, "64 GiB");
        assert_contains(r.out, "1× A100-SXM4-80GB");
        run_done(&r);

        RUN(&r, "host", "list", "--json");
        assert_int_equal(r.code, 0);
        _cleanup_json_ json_t *j = json_loads(r.out, 0, NULL);
        assert_true(json_is_array(j));
        assert_int_equal(json_array_size(j), 2);
        assert_string_equal(json_string_value(json_object_get(json_array_get(j, 0), "name")),
                            "node-a");
        run_done(&r);

        /* --json before the command, as a global option, too */
        RUN(&r, "--json", "host", "show", "node-a");
        assert_int_equal(r.code, 0);
        _cleanup_json_ json_t *h = json_loads(r.out, 0, NULL);
        assert_int_equal(json_array_size(json_object_get(h, "gpus")), 2);
        run_done(&r);
}

static void test_host_show(void **state)
{
        (void)state;
        struct run r;
        RUN(&r, "host", "show", "node-a");
        assert_int_equal(r.code, 0);
        assert_contains(r.out, "host:      node-a (simulated)");
        assert_contains(r.out, "0000:18:00.0");
        assert_contains(r.out, "3g.40gb vm/infer-1 · 4 slices free");
        assert_contains(r.out, "H100XM-20C vm/vdi-1");
        assert_contains(r.out, "42/80 GiB");
        run_done(&r);
        assert_string_equal(S.path, "/api/v1/hosts/node-a");

        RUN(&r, "gpu", "list", "node-b");
        assert_int_equal(r.code, 0);
        assert_contains(r.out, "1g.10gb vm/tiny · 7 slices free");
        run_done(&r);

        RUN(&r, "host", "show", "nope");
        assert_int_equal(r.code, 3);
        assert_contains(r.err, "error: host 'nope' is not known; hosts: node-a, node-b.");
        assert_string_equal(r.out, "");
        run_done(&r);

        RUN(&r, "host", "show", "nope", "--json");
        assert_int_equal(r.code, 3);
        _cleanup_json_ json_t *j = json_loads(r.out, 0, NULL);
        assert_non_null(j);
        assert_int_equal(json_integer_value(json_object_get(j, "exit_code")), 3);
        assert_int_equal(json_integer_value(json_object_get(j, "status")), 404);
        assert_string_equal(json_string_value(json_object_get(json_object_get(j, "problem"),
                                                              "type")),
                            "https://gpuvirt.dev/problems/not-found");
        run_done(&r);

        RUN(&r, "host", "show");
        assert_int_equal(r.code, 2);
        run_done(&r);
}

static void test_gpu_list_show(void **state)
{
        (void)state;
        struct run r;
        RUN(&r, "gpu", "list");
        assert_int_equal(r.code, 0);
        assert_contains(r.out, "node-a/0");
        assert_contains(r.out, "node-a/1");
        assert_contains(r.out, "61%");
        run_done(&r);
        assert_string_equal(S.path, "/api/v1/gpus");

        RUN(&r, "gpu", "list", "node-a");
        assert_int_equal(r.code, 0);
        assert_string_equal(S.path, "/api/v1/hosts/node-a");
        assert_contains(r.out, "GPU  PCI");
        run_done(&r);

        RUN(&r, "gpu", "show", "node-a/0");
        assert_int_equal(r.code, 0);
        assert_contains(r.out, "mode:      mig");
        assert_contains(r.out, "GI  PROFILE");
        assert_contains(r.out, "0-3");
        assert_contains(r.out, "infer-1");
        run_done(&r);

        RUN(&r, "gpu", "show", "node-a/7");
        assert_int_equal(r.code, 3);
        assert_contains(r.err, "GPU 'node-a/7' is not known");
        run_done(&r);

        unsigned before = n_requests();
        RUN(&r, "gpu", "show", "node-a");
        assert_int_equal(r.code, 2);
        assert_contains(r.err, "is not HOST/GPU");
        assert_int_equal(n_requests(), before);
        run_done(&r);

        RUN(&r, "mig", "list", "node-a/0");
        assert_int_equal(r.code, 0);
        assert_contains(r.out, "3g.40gb");
        assert_contains(r.out, "4 MIG slices free");
        run_done(&r);

        RUN(&r, "mig", "list", "node-a/0", "--json");
        assert_int_equal(r.code, 0);
        _cleanup_json_ json_t *mig = json_loads(r.out, 0, NULL);
        assert_int_equal(json_integer_value(json_object_get(mig, "free_slices")), 4);
        run_done(&r);

        RUN(&r, "vgpu", "types", "node-a/1");
        assert_int_equal(r.code, 0);
        assert_string_equal(S.path, "/api/v1/hosts/node-a/gpus/1/vgpu-types");
        assert_contains(r.out, "H100XM-20C  20 GiB");
        assert_contains(r.out, "H100XM-40C");
        run_done(&r);
}

/* A bare GPU keeps the local command: nothing reaches the API. */
static void test_local_forms(void **state)
{
        (void)state;
        struct run r;
        unsigned before = n_requests();
        _cleanup_free_ char *root = gv_path_join(F.dir, "no-such-root");
        RUN(&r, "--sysfs-root", root, "gpu", "set-mode", "0", "mig");
        assert_int_not_equal(r.code, 0);
        assert_int_equal(n_requests(), before);
        run_done(&r);
        RUN(&r, "--sysfs-root", root, "mig", "list", "0000:18:00.0");
        assert_int_not_equal(r.code, 0);
        assert_int_equal(n_requests(), before);
        run_done(&r);
        /* local-only options stay refused on the API form */
        RUN(&r, "mig", "apply", "node-a/0", "1g.10gb", "--dry-run");
        assert_int_equal(r.code, 2);
        assert_int_equal(n_requests(), before);
        run_done(&r);
}

static void test_gpu_changes(void **state)
{
        (void)state;
        struct run r;
        RUN(&r, "gpu", "set-mode", "node-a/0", "mig");
        assert_int_equal(r.code, 0);
        assert_string_equal(S.method, "POST");
        assert_string_equal(S.path, "/api/v1/hosts/node-a/gpus/0/mode");
        _cleanup_free_ char *b = last_body();
        assert_string_equal(b, "{\"mode\":\"mig\"}");
        assert_contains(r.out, "node-a/0: gpu.mode accepted as operation op-");
        run_done(&r);

        RUN(&r, "gpu", "set-mode", "node-a/1", "passthrough");
        assert_int_equal(r.code, 4);
        assert_contains(r.err, "error: GPU node-a/1 is used by VM 'vdi-1'; stop or delete it");
        run_done(&r);

        unsigned before = n_requests();
        RUN(&r, "gpu", "set-mode", "node-a/0", "turbo");
        assert_int_equal(r.code, 2);
        assert_contains(r.err, "unknown mode 'turbo' (valid:");
        assert_int_equal(n_requests(), before);
        run_done(&r);

        RUN(&r, "mig", "apply", "node-a/0", "3g.40gb,1g.10gb", "--wait");
        assert_int_equal(r.code, 0);
        assert_string_equal(S.path, "/api/v1/operations/op-0002");
        assert_string_equal(S.query, "wait=1");
        assert_contains(r.out, "node-a/0: gpu.mig succeeded (");
        run_done(&r);
        /* the body of the apply, from the operation's creation */
        RUN(&r, "mig", "apply", "node-a/0", "2g.20gb, 2g.20gb");
        assert_int_equal(r.code, 0);
        _cleanup_free_ char *b2 = last_body();
        assert_string_equal(b2, "{\"profiles\":[\"2g.20gb\",\"2g.20gb\"]}");
        run_done(&r);
}

static void test_vm_create_body(void **state)
{
        (void)state;
        _cleanup_free_ char *ud = gv_path_join(F.dir, "user-data");
        _cleanup_free_ char *key = gv_path_join(F.dir, "key.pub");
        assert_int_equal(gv_write_file(ud, "#cloud-config\npackages: [htop]\n", GV_WRITE_CREATE),
                         0);
        assert_int_equal(gv_write_file(key, "# mine\nssh-ed25519 AAAA me@x\n\n"
                                       "ssh-ed25519 BBBB you@y\n", GV_WRITE_CREATE), 0);
        struct run r;
        RUN(&r, "vm", "create", "infer-2", "--image", "debian-12", "--disk-size", "40G",
            "--cpus", "8", "--memory", "32G", "--gpu", "mig:3g.40gb", "--forward", "2222:22",
            "--user-data", ud, "--ssh-key", key, "--policy", "fgd", "--host", "node-a");
        assert_int_equal(r.code, 0);
        assert_string_equal(S.method, "POST");
        assert_string_equal(S.path, "/api/v1/vms");
        pthread_mutex_lock(&S.lock);
        _cleanup_json_ json_t *want = json_pack(
                "{s:s, s:s, s:s, s:i, s:i, s:[{s:s, s:s}], s:[{s:s, s:[{s:i, s:i}]}],"
                " s:{s:s, s:[s, s]}, s:s, s:s}",
                "name", "infer-2", "image", "debian-12", "disk_size", "40G", "vcpus", 8,
                "memory_mib", 32768, "gpus", "kind", "mig", "profile", "3g.40gb", "nics", "mode",
                "user", "forwards", "host_port", 2222, "guest_port", 22, "cloud_init",
                "user_data", "#cloud-config\npackages: [htop]\n", "ssh_authorized_keys",
                "ssh-ed25519 AAAA me@x", "ssh-ed25519 BBBB you@y", "policy", "fgd", "host",
                "node-a");
        bool same = json_equal(want, S.body);
        pthread_mutex_unlock(&S.lock);
        if (!same) {
                _cleanup_free_ char *got = last_body();
                fail_msg("vm-create body: %s", got);
        }
        assert_contains(r.out, "infer-2: vm.create accepted as operation op-");
        assert_contains(r.out, "gpuvirt op wait op-");
        run_done(&r);
}

static void check_gpu_spec(const char *spec, const char *want)
{
        struct run r;
        RUN(&r, "vm", "create", "spec-test", "--gpu", spec, "--json");
        if (r.code != 0)
                fail_msg("--gpu %s: exit %d: %s", spec, r.code, r.err);
        pthread_mutex_lock(&S.lock);
        _cleanup_free_ char *got = json_dumps(json_array_get(json_object_get(S.body, "gpus"), 0),
                                              JSON_COMPACT | JSON_SORT_KEYS);
        pthread_mutex_unlock(&S.lock);
        assert_string_equal(got, want);
        /* --json without --wait: the operation as the API gave it */
        _cleanup_json_ json_t *op = json_loads(r.out, 0, NULL);
        assert_string_equal(json_string_value(json_object_get(op, "kind")), "vm.create");
        run_done(&r);
}

static void check_usage(const char *what, const char *arg_opt, const char *arg,
                        const char *message)
{
        struct run r;
        unsigned before = n_requests();
        RUN(&r, "vm", "create", "bad", arg_opt, arg);
        if (r.code != 2 || !strstr(r.err, message))
                fail_msg("%s: exit %d, stderr: %s", what, r.code, r.err);
        assert_int_equal(n_requests(), before);
        run_done(&r);
}

static void test_vm_create_specs(void **state)
{
        (void)state;
        check_gpu_spec("passthrough", "{\"count\":1,\"kind\":\"passthrough\"}");
        check_gpu_spec("passthrough:2", "{\"count\":2,\"kind\":\"passthrough\"}");
        check_gpu_spec("vgpu:H100XM-20C", "{\"kind\":\"vgpu\",\"type\":\"H100XM-20C\"}");
        check_gpu_spec("mig:1g.10gb", "{\"kind\":\"mig\",\"profile\":\"1g.10gb\"}");
        check_gpu_spec("need:20G", "{\"kind\":\"need\",\"memory_mib\":20480}");
        check_gpu_spec("need:20G,isolation=hardware,migrate",
                       "{\"isolation\":\"hardware\",\"kind\":\"need\",\"live_migration\":true,"
                       "\"memory_mib\":20480}");

        check_usage("passthrough:0", "--gpu", "passthrough:0", "is not a number from 1 to 64");
        check_usage("passthrough:x", "--gpu", "passthrough:two", "is not a number");
        check_usage("vgpu:", "--gpu", "vgpu:", "needs a vGPU type");
        check_usage("need bytes", "--gpu", "need:20", "not a whole number of MiB");
        check_usage("need bad size", "--gpu", "need:lots", "is not a size");
        check_usage("isolation", "--gpu", "need:20G,isolation=total", "unknown isolation 'total'");
        check_usage("need option", "--gpu", "need:20G,fast", "unknown need 'fast'");
        check_usage("kind", "--gpu", "tpu:1", "unknown kind 'tpu' (valid: passthrough[:N]");
        check_usage("memory bytes", "--memory", "32768", "not a whole number of MiB");
        check_usage("memory", "--memory", "32Q", "is not a size");
        check_usage("cpus", "--cpus", "0", "--cpus '0' is not a number from 1");
        check_usage("cpus sign", "--cpus", "-4", "is not a number");
        check_usage("disk", "--disk-size", "big", "--disk-size 'big' is not a size");
        check_usage("forward", "--forward", "22", "is not HOST-PORT:GUEST-PORT");
        check_usage("forward port", "--forward", "70000:22", "is not HOST-PORT:GUEST-PORT");
        check_usage("nic", "--nic", "tap", "neither 'user' nor 'bridge:BRIDGE'");
        check_usage("user data", "--user-data", "/nonexistent/ud", "cannot read");
        check_usage("image name", "--image", "Debian 12", "is not a valid name");

        struct run r;
        unsigned before = n_requests();
        RUN(&r, "vm", "create", "two", "--gpu", "mig:1g.10gb", "--gpu", "passthrough");
        assert_int_equal(r.code, 2);
        assert_contains(r.err, "--gpu is given twice");
        run_done(&r);
        RUN(&r, "vm", "create", "Bad_Name");
        assert_int_equal(r.code, 2);
        assert_contains(r.err, "is not a valid VM name");
        run_done(&r);
        RUN(&r, "vm", "create", "br", "--nic", "bridge:br0", "--forward", "2222:22");
        assert_int_equal(r.code, 2);
        assert_contains(r.err, "--forward needs a user-mode NIC");
        run_done(&r);
        assert_int_equal(n_requests(), before);

        /* a bridge NIC and a user NIC: the forward goes on the user one */
        RUN(&r, "vm", "create", "nics", "--nic", "bridge:br0", "--nic", "user", "--forward",
            "8080:80");
        assert_int_equal(r.code, 0);
        _cleanup_free_ char *b = last_body();
        assert_contains(b, "\"nics\":[{\"bridge\":\"br0\",\"mode\":\"bridge\"},{\"forwards\":"
                        "[{\"guest_port\":80,\"host_port\":8080}],\"mode\":\"user\"}]");
        run_done(&r);
}

static void test_vm_create_wait(void **state)
{
        (void)state;
        struct run r;
        RUN(&r, "vm", "create", "infer-3", "--gpu", "mig:3g.40gb", "--wait");
        assert_int_equal(r.code, 0);
        /* not a terminal: one plain line per change of progress */
        assert_contains(r.err, "infer-3:  40% placing\n");
        assert_contains(r.err, "infer-3:  80% starting QEMU on node-a\n");
        assert_contains(r.err, "infer-3: 100% running\n");
        assert_contains(r.out, "infer-3: placed on node-a GPU 0, MIG-backed vGPU 3g.40gb at "
                        "slices 4–7 (policy gpuvirt)\n");
        assert_contains(r.out, "infer-3: running (");
        run_done(&r);

        RUN(&r, "vm", "create", "infer-4", "--gpu", "mig:3g.40gb", "--wait", "--json");
        assert_int_equal(r.code, 0);
        _cleanup_json_ json_t *op = json_loads(r.out, 0, NULL);
        assert_non_null(op);
        assert_string_equal(json_string_value(json_object_get(op, "state")), "succeeded");
        run_done(&r);

        /* the operation fails: its problem decides the exit code */
        RUN(&r, "vm", "create", "doomed", "--gpu", "mig:3g.40gb", "--wait");
        assert_int_equal(r.code, 4);
        assert_contains(r.err, "error: node-a refused the VM: GPU 0 has no free 4-slice range");
        run_done(&r);

        /* refused before anything changes */
        RUN(&r, "vm", "create", "big", "--gpu", "mig:7g.80gb", "--wait");
        assert_int_equal(r.code, 4);
        assert_contains(r.err, "error: no host can place mig:7g.80gb: 2 hosts have no free "
                        "8-slice range");
        run_done(&r);
        RUN(&r, "vm", "create", "big", "--gpu", "mig:7g.80gb", "--json");
        assert_int_equal(r.code, 4);
        _cleanup_json_ json_t *e = json_loads(r.out, 0, NULL);
        assert_int_equal(json_integer_value(json_object_get(e, "exit_code")), 4);
        assert_string_equal(json_string_value(json_object_get(json_object_get(e, "problem"),
                                                              "type")),
                            "https://gpuvirt.dev/problems/no-capacity");
        run_done(&r);
}

/* On a terminal --wait draws one bar, redrawn in place. */
static void test_progress_bar_tty(void **state)
{
        (void)state;
        char *args[] = { "gpuvirt", "vm", "start", "infer-1", "--wait", NULL };
        struct run r;
        run_argv(&r, NULL, true, args);
        assert_int_equal(r.code, 0);
        assert_contains(r.err, "\r\033[Kinfer-1  [########------------]  40%  placing");
        assert_contains(r.err, "[####################] 100%");
        /* the bar is cleared at the end, the result is on stdout */
        assert_contains(r.err, "\r\033[K");
        assert_null(strstr(r.err, "infer-1:  40%"));
        assert_contains(r.out, "infer-1: running (");
        run_done(&r);
}

static void test_vm_actions(void **state)
{
        (void)state;
        struct run r;
        RUN(&r, "vm", "list");
        assert_int_equal(r.code, 0);
        assert_contains(r.out, "NAME");
        assert_contains(r.out, "infer-1");
        assert_contains(r.out, "mig:3g.40gb");
        assert_contains(r.out, "node-a/0");
        assert_contains(r.out, "32 GiB");
        run_done(&r);

        RUN(&r, "vm", "show", "infer-1");
        assert_int_equal(r.code, 0);
        assert_contains(r.out, "state:     running");
        assert_contains(r.out, "placement: placed on node-a GPU 0, MIG-backed vGPU 3g.40gb at "
                        "slices 4–7");
        run_done(&r);

        RUN(&r, "vm", "show", "ghost");
        assert_int_equal(r.code, 3);
        assert_contains(r.err, "error: VM 'ghost' is not known.");
        run_done(&r);

        RUN(&r, "vm", "stop", "infer-1", "--timeout", "30");
        assert_int_equal(r.code, 0);
        assert_string_equal(S.path, "/api/v1/vms/infer-1/stop");
        _cleanup_free_ char *b = last_body();
        assert_string_equal(b, "{\"timeout_s\":30}");
        run_done(&r);

        RUN(&r, "vm", "migrate", "infer-1", "--to", "node-b", "--offline", "--downtime", "300",
            "--bandwidth", "100");
        assert_int_equal(r.code, 0);
        assert_string_equal(S.method, "POST");
        assert_string_equal(S.path, "/api/v1/vms/infer-1/migrate");
        _cleanup_free_ char *mb = last_body();
        assert_string_equal(mb, "{\"downtime_ms\":300,\"max_bandwidth_mib\":100,"
                                "\"mode\":\"offline\",\"to\":\"node-b\"}");
        run_done(&r);
        unsigned before_bad = n_requests();
        RUN(&r, "vm", "migrate", "infer-1", "--downtime", "soon");
        assert_int_equal(r.code, 2);
        assert_contains(r.err, "--downtime 'soon'");
        run_done(&r);
        assert_int_equal(n_requests(), before_bad);

        RUN(&r, "vm", "start", "infer-1");
        assert_int_equal(r.code, 0);
        assert_string_equal(S.path, "/api/v1/vms/infer-1/start");
        _cleanup_free_ char *b2 = last_body();
        assert_string_equal(b2, "(none)");
        run_done(&r);

        RUN(&r, "vm", "delete", "infer-1", "--wait");
        assert_int_equal(r.code, 0);
        assert_contains(r.out, "infer-1: deleted (");
        run_done(&r);

        RUN(&r, "vm", "start", "ghost");
        assert_int_equal(r.code, 3);
        run_done(&r);

        RUN(&r, "vm", "start", "--timeout", "3", "infer-1");
        assert_int_equal(r.code, 2);
        run_done(&r);
}

static void test_ops(void **state)
{
        (void)state;
        struct run r;
        RUN(&r, "vm", "start", "infer-1", "--json");
        assert_int_equal(r.code, 0);
        _cleanup_json_ json_t *op = json_loads(r.out, 0, NULL);
        _cleanup_free_ char *id = xstrdup(json_string_value(json_object_get(op, "id")));
        run_done(&r);

        RUN(&r, "op", "show", id);
        assert_int_equal(r.code, 0);
        assert_contains(r.out, "kind:      vm.start");
        assert_contains(r.out, "state:     pending");
        run_done(&r);

        RUN(&r, "op", "wait", id, "--json");
        assert_int_equal(r.code, 0);
        _cleanup_json_ json_t *done = json_loads(r.out, 0, NULL);
        assert_string_equal(json_string_value(json_object_get(done, "state")), "succeeded");
        run_done(&r);

        RUN(&r, "op", "list");
        assert_int_equal(r.code, 0);
        assert_contains(r.out, id);
        run_done(&r);

        RUN(&r, "op", "show", "op-ffff");
        assert_int_equal(r.code, 3);
        run_done(&r);

        RUN(&r, "op", "wait", id, "--timeout", "zero");
        assert_int_equal(r.code, 2);
        run_done(&r);
}

static void test_events(void **state)
{
        (void)state;
        struct run r;
        RUN(&r, "events");
        assert_int_equal(r.code, 0);
        assert_contains(r.out, "vm.state");
        assert_contains(r.out, "vm/infer-1  state=running  host=node-a\n");
        assert_contains(r.out, "vm/infer-3  state=running  host=node-a\n");
        run_done(&r);

        RUN(&r, "events", "--after", "1", "--json");
        assert_int_equal(r.code, 0);
        assert_string_equal(S.query, "after=1");
        _cleanup_strv_free_ char **lines = strv_split(r.out, "\n");
        assert_int_equal(strv_length(lines), 2);
        for (size_t i = 0; i < 2; i++) {
                _cleanup_json_ json_t *j = json_loads(lines[i], 0, NULL);
                assert_non_null(j);
                assert_int_equal(json_integer_value(json_object_get(j, "seq")), (json_int_t)i + 2);
        }
        run_done(&r);

        RUN(&r, "events", "--after", "-1");
        assert_int_equal(r.code, 2);
        run_done(&r);
}

/* Ctrl-C ends a stream that would go on: exit 0 with the events printed so far. */
static void test_events_interrupt(void **state)
{
        (void)state;
        _cleanup_free_ char *out = gv_path_join(F.dir, "ev-out");
        _cleanup_strv_free_ char **envp = make_env(NULL);
        pid_t pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
                int o = open(out, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
                if (o < 0 || dup2(o, 1) < 0)
                        _exit(99);
                char *args[] = { "gpuvirt", "events", "--after", "7", NULL };
                execve(F.gpuvirt, args, envp);
                _exit(98);
        }
        /* wait for the one event, then interrupt */
        _cleanup_free_ char *text = NULL;
        for (int i = 0; i < 500; i++) {
                free(text);
                text = slurp(out);
                if (strstr(text, "\n"))
                        break;
                usleep(10000);
        }
        assert_contains(text, "vm/infer-8");
        struct timespec t0, t1;
        clock_gettime(CLOCK_MONOTONIC, &t0);
        assert_int_equal(kill(pid, SIGINT), 0);
        int status;
        assert_int_equal(waitpid(pid, &status, 0), pid);
        clock_gettime(CLOCK_MONOTONIC, &t1);
        /* at once, not when the server gives up the stream (20 s) */
        assert_true(t1.tv_sec - t0.tv_sec < 5);
        assert_true(WIFEXITED(status));
        assert_int_equal(WEXITSTATUS(status), 0);
}

static void test_auth(void **state)
{
        (void)state;
        struct run r;
        const char *tcp[] = { NULL, NULL };
        _cleanup_free_ char *ep = xasprintf("GPUVIRT_ENDPOINT=%s", F.tcp_ep);
        tcp[0] = ep;

        RUN_ENV(&r, tcp, "host", "list");
        assert_int_equal(r.code, 6);
        assert_contains(r.err, "error: the token is missing or not known.");
        assert_contains(r.err, "hint: give a valid API token with --token");
        run_done(&r);

        RUN_ENV(&r, tcp, "--token", "admin-tok", "host", "list");
        assert_int_equal(r.code, 0);
        assert_string_equal(S.auth, "Bearer admin-tok");
        run_done(&r);

        /* the token flag after the verb too */
        RUN_ENV(&r, tcp, "vm", "list", "--token", "viewer-tok");
        assert_int_equal(r.code, 0);
        assert_string_equal(S.auth, "Bearer viewer-tok");
        run_done(&r);

        const char *viewer[] = { ep, "GPUVIRT_TOKEN=viewer-tok", NULL };
        RUN_ENV(&r, viewer, "vm", "start", "infer-1");
        assert_int_equal(r.code, 6);
        assert_contains(r.err, "needs the role operator");
        run_done(&r);

        /* the flag beats the environment */
        RUN_ENV(&r, viewer, "vm", "start", "infer-1", "--token", "admin-tok");
        assert_int_equal(r.code, 0);
        assert_string_equal(S.auth, "Bearer admin-tok");
        run_done(&r);

        const char *bad[] = { ep, "GPUVIRT_TOKEN=has space", NULL };
        RUN_ENV(&r, bad, "host", "list");
        assert_int_equal(r.code, 2);
        assert_contains(r.err, "printable characters without spaces");
        run_done(&r);
}

static void test_unreachable(void **state)
{
        (void)state;
        struct run r;
        const char *none[] = { "GPUVIRT_ENDPOINT=unix:/nonexistent/gpuvirt.sock", NULL };
        RUN_ENV(&r, none, "host", "list");
        assert_int_equal(r.code, 5);
        assert_contains(r.err, "error: cannot connect to 'unix:/nonexistent/gpuvirt.sock'");
        assert_contains(r.err, "came from GPUVIRT_ENDPOINT");
        assert_contains(r.err, "--endpoint URL");
        run_done(&r);

        RUN_ENV(&r, none, "vm", "list", "--json");
        assert_int_equal(r.code, 5);
        _cleanup_json_ json_t *j = json_loads(r.out, 0, NULL);
        assert_int_equal(json_integer_value(json_object_get(j, "exit_code")), 5);
        run_done(&r);

        /* the flag beats the environment */
        RUN_ENV(&r, none, "--endpoint", F.unix_ep, "host", "list");
        assert_int_equal(r.code, 0);
        run_done(&r);

        /* the default when nothing is set */
        const char *unset[] = { "GPUVIRT_ENDPOINT=", NULL };
        RUN_ENV(&r, unset, "--endpoint", "http://127.0.0.1:1", "host", "list");
        assert_int_equal(r.code, 5);
        run_done(&r);
        RUN_ENV(&r, unset, "--endpoint", "ftp://x", "host", "list");
        assert_int_equal(r.code, 2);
        assert_contains(r.err, "neither 'unix:/PATH', 'http://HOST:PORT' nor 'https://HOST:PORT'");
        run_done(&r);
}

static void test_config_file(void **state)
{
        (void)state;
        _cleanup_free_ char *xdg = gv_path_join(F.dir, "xdg");
        _cleanup_free_ char *cdir = gv_path_join(xdg, "gpuvirt");
        _cleanup_free_ char *cfg = gv_path_join(cdir, "config");
        assert_int_equal(gv_mkdir_p(cdir, 0700), 0);
        _cleanup_free_ char *text = xasprintf("# the lab cluster\n\nendpoint = %s\n"
                                              "  token=admin-tok  \n", F.tcp_ep);
        assert_int_equal(gv_write_file(cfg, text, GV_WRITE_CREATE), 0);
        assert_int_equal(chmod(cfg, 0600), 0);
        _cleanup_free_ char *xenv = xasprintf("XDG_CONFIG_HOME=%s", xdg);
        const char *env[] = { xenv, "GPUVIRT_ENDPOINT=", NULL };

        struct run r;
        RUN_ENV(&r, env, "host", "list");
        assert_int_equal(r.code, 0);
        assert_string_equal(S.auth, "Bearer admin-tok");
        run_done(&r);

        /* the environment beats the file for the endpoint; the token still comes from it */
        _cleanup_free_ char *uenv = xasprintf("GPUVIRT_ENDPOINT=%s", F.unix_ep);
        const char *env2[] = { xenv, uenv, NULL };
        RUN_ENV(&r, env2, "host", "list");
        assert_int_equal(r.code, 0);
        assert_string_equal(S.auth, "Bearer admin-tok");
        run_done(&r);

        /* a token readable by others is refused, saying how to fix it */
        assert_int_equal(chmod(cfg, 0644), 0);
        RUN_ENV(&r, env, "host", "list");
        assert_int_equal(r.code, 2);
        assert_contains(r.err, "chmod 600");
        run_done(&r);
        /* ... but not when flags give both and the file is not needed */
        RUN_ENV(&r, env, "--endpoint", F.unix_ep, "--token", "admin-tok", "host", "list");
        assert_int_equal(r.code, 0);
        run_done(&r);

        /* without a token, a readable file is fine */
        _cleanup_free_ char *t2 = xasprintf("endpoint = %s\n", F.unix_ep);
        assert_int_equal(gv_write_file(cfg, t2, GV_WRITE_CREATE), 0);
        RUN_ENV(&r, env, "host", "list");
        assert_int_equal(r.code, 0);
        run_done(&r);

        /* strict: unknown keys, lines without '=', keys twice, bad endpoints */
        static const struct {
                const char *text, *msg;
        } bad[] = {
                { "endpont = unix:/x\n", "config:1: unknown key 'endpont' (valid: endpoint, "
                  "token, ca)" },
                { "\n\nendpoint unix:/x\n", "config:3: 'endpoint unix:/x' is not 'key = value'" },
                { "endpoint = unix:/x\nendpoint = unix:/y\n", "config:2: 'endpoint' is set "
                  "twice" },
                { "endpoint = tcp://x:1\n", "config:1: endpoint 'tcp://x:1' is neither" },
                { "endpoint =\n", "config:1: 'endpoint' has no value" },
        };
        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                assert_int_equal(gv_write_file(cfg, bad[i].text, GV_WRITE_CREATE), 0);
                assert_int_equal(chmod(cfg, 0600), 0);
                RUN_ENV(&r, env, "host", "list");
                if (r.code != 2 || !strstr(r.err, bad[i].msg))
                        fail_msg("config '%s': exit %d, stderr: %s", bad[i].text, r.code, r.err);
                run_done(&r);
        }

        /* HOME when XDG_CONFIG_HOME is unset */
        _cleanup_free_ char *home = gv_path_join(F.dir, "home2");
        _cleanup_free_ char *hdir = gv_path_join(home, ".config", "gpuvirt");
        _cleanup_free_ char *hcfg = gv_path_join(hdir, "config");
        assert_int_equal(gv_mkdir_p(hdir, 0700), 0);
        assert_int_equal(gv_write_file(hcfg, "endpoint = unix:/nonexistent/from-home.sock\n",
                                       GV_WRITE_CREATE), 0);
        _cleanup_free_ char *henv = xasprintf("HOME=%s", home);
        const char *env3[] = { henv, "GPUVIRT_ENDPOINT=", NULL };
        RUN_ENV(&r, env3, "host", "list");
        assert_int_equal(r.code, 5);
        assert_contains(r.err, "from-home.sock");
        assert_contains(r.err, "came from");
        assert_contains(r.err, hcfg);
        run_done(&r);
}

static void test_images(void **state)
{
        (void)state;
        struct run r;
        RUN(&r, "image", "list");
        assert_int_equal(r.code, 0);
        assert_contains(r.out, "debian-12");
        assert_contains(r.out, "2 GiB");
        run_done(&r);

        RUN(&r, "image", "add", "debian-12", "/img/d.qcow2", "--format", "qcow2");
        assert_int_equal(r.code, 0);
        _cleanup_free_ char *b = last_body();
        assert_string_equal(b, "{\"format\":\"qcow2\",\"name\":\"debian-12\",\"path\":"
                            "\"/img/d.qcow2\"}");
        assert_contains(r.out, "image debian-12 added (qcow2, 2 GiB)");
        run_done(&r);

        unsigned before = n_requests();
        RUN(&r, "image", "add", "debian-12", "d.qcow2");
        assert_int_equal(r.code, 2);
        assert_contains(r.err, "absolute path");
        run_done(&r);
        RUN(&r, "image", "add", "debian-12", "/d.img", "--format", "vmdk");
        assert_int_equal(r.code, 2);
        assert_contains(r.err, "valid: qcow2, raw");
        run_done(&r);
        assert_int_equal(n_requests(), before);

        _cleanup_free_ char *file = gv_path_join(F.dir, "tiny.img");
        assert_int_equal(gv_write_file(file, "0123456789", GV_WRITE_CREATE), 0);
        RUN(&r, "image", "add", "tiny", file, "--upload");
        assert_int_equal(r.code, 0);
        assert_string_equal(S.method, "PUT");
        assert_string_equal(S.path, "/api/v1/images/tiny");
        assert_int_equal(S.raw_len, 10);
        /* Not a terminal: the progress as plain lines, from 0 to the whole file. */
        assert_contains(r.err, "tiny: uploaded   0%");
        assert_contains(r.err, "tiny: uploaded 100%");
        run_done(&r);

        RUN(&r, "image", "delete", "in-use");
        assert_int_equal(r.code, 4);
        assert_contains(r.err, "used by VMs: infer-1");
        run_done(&r);
        RUN(&r, "image", "delete", "old");
        assert_int_equal(r.code, 0);
        assert_string_equal(S.method, "DELETE");
        run_done(&r);
}

static void test_tokens(void **state)
{
        (void)state;
        struct run r;
        RUN(&r, "token", "create", "ci", "--role", "operator");
        assert_int_equal(r.code, 0);
        /* the secret alone on stdout, so $(gpuvirt token create ...) takes it */
        assert_string_equal(r.out, "gvt_s3cret\n");
        assert_contains(r.err, "shown only now");
        _cleanup_free_ char *b = last_body();
        assert_string_equal(b, "{\"name\":\"ci\",\"role\":\"operator\"}");
        run_done(&r);

        RUN(&r, "token", "create", "ci", "--role", "root");
        assert_int_equal(r.code, 2);
        assert_contains(r.err, "unknown role 'root' (valid: member with --tenant, viewer, "
                               "operator, admin)");
        run_done(&r);

        /* a member token names its tenant; the cluster roles none */
        RUN(&r, "token", "create", "m", "--role", "member", "--tenant", "acme");
        assert_int_equal(r.code, 0);
        _cleanup_free_ char *mb = last_body();
        assert_string_equal(mb, "{\"name\":\"m\",\"role\":\"member\",\"tenant\":\"acme\"}");
        assert_contains(r.err, "role member of tenant acme");
        run_done(&r);
        RUN(&r, "token", "create", "m", "--role", "member");
        assert_int_equal(r.code, 2);
        assert_contains(r.err, "a member token needs its tenant");
        run_done(&r);
        RUN(&r, "token", "create", "m", "--role", "admin", "--tenant", "acme");
        assert_int_equal(r.code, 2);
        run_done(&r);

        RUN(&r, "token", "list");
        assert_int_equal(r.code, 0);
        assert_contains(r.out, "tok-1");
        assert_contains(r.out, "operator");
        assert_contains(r.out, "TENANT"); /* a member's; "—" for the cluster roles */
        run_done(&r);

        RUN(&r, "token", "delete", "tok-9");
        assert_int_equal(r.code, 3);
        run_done(&r);
        RUN(&r, "token", "delete", "tok-1");
        assert_int_equal(r.code, 0);
        run_done(&r);
}

static void test_usage(void **state)
{
        (void)state;
        struct run r;
        RUN(&r, "cluster");
        assert_int_equal(r.code, 2);
        assert_contains(r.err, "unknown command 'cluster'");
        run_done(&r);
        RUN(&r, "vm", "teleport", "x");
        assert_int_equal(r.code, 2);
        assert_contains(r.err, "valid: create, list, show, start, stop, delete, migrate");
        run_done(&r);
        RUN(&r, "vm", "list", "--bogus");
        assert_int_equal(r.code, 2);
        run_done(&r);
        RUN(&r, "vm", "create", "--help");
        assert_int_equal(r.code, 0);
        assert_contains(r.out, "--gpu passthrough[:N]|vgpu:TYPE|mig:PROFILE|need:MEM");
        run_done(&r);
}

int main(void)
{
        /* a failed write to a closed pty must not kill the test */
        signal(SIGPIPE, SIG_IGN);
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_host_list),
                cmocka_unit_test(test_host_show),
                cmocka_unit_test(test_gpu_list_show),
                cmocka_unit_test(test_local_forms),
                cmocka_unit_test(test_gpu_changes),
                cmocka_unit_test(test_vm_create_body),
                cmocka_unit_test(test_vm_create_specs),
                cmocka_unit_test(test_vm_create_wait),
                cmocka_unit_test(test_progress_bar_tty),
                cmocka_unit_test(test_vm_actions),
                cmocka_unit_test(test_ops),
                cmocka_unit_test(test_events),
                cmocka_unit_test(test_events_interrupt),
                cmocka_unit_test(test_auth),
                cmocka_unit_test(test_unreachable),
                cmocka_unit_test(test_config_file),
                cmocka_unit_test(test_images),
                cmocka_unit_test(test_tokens),
                cmocka_unit_test(test_usage),
        };
        return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
