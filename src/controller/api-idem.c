/* SPDX-License-Identifier: MIT */
/*
 * api-idem.c — Idempotency-Key records in the store (api.h). The request hash covers the
 * method, the path and the body (each framed by a NUL), not the query: a retry may wait longer.
 */
#include <errno.h>
#include <string.h>

#include "controller/api.h"
#include "controller/controller-internal.h"
#include "util/json.h"

#define IDEM_KEEP_MS (24LL * 3600 * 1000)
#define IDEM_ABANDONED_MS (15LL * 60 * 1000)
#define IDEM_KEY_MAX 64

bool gv_idem_key_is_valid(const char *key)
{
        size_t n = key ? strlen(key) : 0;
        if (n < 1 || n > IDEM_KEY_MAX)
                return false;
        for (const char *p = key; *p; p++)
                if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
                      (*p >= '0' && *p <= '9') || *p == '.' || *p == '_' || *p == '-'))
                        return false;
        return true;
}

const char *gv_controller_store_scheme(struct gv_controller *c)
{
        return gv_store_scheme(c->store);
}

static json_t *running_doc(const char *hash)
{
        return json_pack("{s:s, s:s}", "request_sha256", hash, "state", "running");
}

int gv_idem_begin(struct gv_controller *c, const char *key, const char *request_sha256,
                  enum gv_idem_begin *ret_kind, json_t **ret_record, struct gv_error **err)
{
        _cleanup_json_ json_t *doc = running_doc(request_sha256);

        /* Two rounds: a create that lost to a record that turned out stale is retried once
         * as a takeover; losing that too means someone else is carrying it out now. */
        for (unsigned round = 0; round < 2; round++) {
                struct gv_error *e = NULL;
                int r = gv_store_create(c->store, GV_STORE_IDEMPOTENCY, key, doc, NULL, &e);
                if (r >= 0) {
                        *ret_kind = GV_IDEM_NEW;
                        return 0;
                }
                if (r != -EEXIST) {
                        gv_error_propagate(err, e);
                        return r;
                }
                gv_error_free(e);

                struct gv_store_obj o = { 0 };
                r = gv_store_get(c->store, GV_STORE_IDEMPOTENCY, key, &o, err);
                if (r == -ENOENT)
                        continue; /* forgotten meanwhile */
                if (r < 0)
                        return r;
                const char *hash = json_string_value(json_object_get(o.doc, "request_sha256"));
                const char *state = json_string_value(json_object_get(o.doc, "state"));
                bool running = state && strcmp(state, "running") == 0;
                int64_t age = gv_ctl_now_ms() - o.updated_at;
                bool stale = running ? age > IDEM_ABANDONED_MS : age > IDEM_KEEP_MS;
                if (stale) {
                        r = gv_store_update(c->store, GV_STORE_IDEMPOTENCY, key, doc,
                                            o.generation, NULL, NULL);
                        gv_store_obj_done(&o);
                        if (r >= 0) {
                                *ret_kind = GV_IDEM_NEW;
                                return 0;
                        }
                        *ret_kind = GV_IDEM_RUNNING;
                        return 0;
                }
                if (!hash || strcmp(hash, request_sha256) != 0)
                        *ret_kind = GV_IDEM_MISMATCH;
                else if (running)
                        *ret_kind = GV_IDEM_RUNNING;
                else {
                        *ret_kind = GV_IDEM_REPLAY;
                        *ret_record = json_incref(o.doc);
                }
                gv_store_obj_done(&o);
                return 0;
        }
        *ret_kind = GV_IDEM_RUNNING;
        return 0;
}

int gv_idem_finish(struct gv_controller *c, const char *key, const char *request_sha256,
                   unsigned status, const json_t *body, const char *operation_id,
                   struct gv_error **err)
{
        _cleanup_json_ json_t *doc = json_pack("{s:s, s:s, s:i, s:O?, s:s?}", "request_sha256",
                                               request_sha256, "state", "done", "status",
                                               (int)status, "body", (json_t *)body, "operation",
                                               operation_id);
        struct gv_store_write w = { .op = GV_STORE_PUT, .kind = GV_STORE_IDEMPOTENCY,
                                    .key = key, .doc = doc };
        return gv_store_write(c->store, &w, 1, err);
}

int gv_idem_forget(struct gv_controller *c, const char *key, struct gv_error **err)
{
        struct gv_store_obj o = { 0 };
        struct gv_error *e = NULL;
        int r = gv_store_get(c->store, GV_STORE_IDEMPOTENCY, key, &o, &e);
        if (r >= 0) {
                int64_t gen = o.generation;
                gv_store_obj_done(&o);
                r = gv_store_delete(c->store, GV_STORE_IDEMPOTENCY, key, gen, &e);
        }
        if (r == -ENOENT || r == -ESTALE) /* gone, or taken over: not ours to remove */
                r = 0;
        if (r < 0)
                gv_error_propagate(err, e);
        else
                gv_error_free(e);
        return r;
}
