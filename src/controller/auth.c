/* SPDX-License-Identifier: MIT */
/*
 * auth.c — API tokens (docs/api.md, "Authentication").
 *
 * A token's secret is "gvt_" and 64 lower-case hex digits (32 bytes from getrandom()). The
 * store keeps only its SHA-256 (GV_STORE_TOKEN: {"id", "name", "role", "sha256", "created_at"}),
 * so a copy of the store yields no usable secret. A token's id is the first 12 hex digits of
 * that hash: authenticating hashes the presented secret, reads the one document with that id,
 * and compares the whole hash in constant time — one store read per request, no scan, and
 * nothing about the secret is told by how long a refusal takes. (The id reveals 48 bits of a
 * hash of 256 random bits, which helps no one find the secret.)
 */
#include <errno.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <time.h>

#include "controller/controller-internal.h"
#include "util/alloc.h"
#include "util/enum-table.h"
#include "util/json.h"
#include "util/parse.h"
#include "util/sha256.h"

#define TOKEN_PREFIX "gvt_"
#define TOKEN_SECRET_BYTES 32
#define TOKEN_LEN (sizeof(TOKEN_PREFIX) - 1 + 2 * TOKEN_SECRET_BYTES)
#define TOKEN_ID_LEN 12

static const char *const role_table[_GV_ROLE_MAX] = {
        [GV_ROLE_MEMBER] = "member",
        [GV_ROLE_VIEWER] = "viewer",
        [GV_ROLE_OPERATOR] = "operator",
        [GV_ROLE_ADMIN] = "admin",
};
DEFINE_STRING_TABLE_LOOKUP(gv_role, enum gv_role, role_table);

static bool token_is_well_formed(const char *t)
{
        if (strlen(t) != TOKEN_LEN || !gv_startswith(t, TOKEN_PREFIX))
                return false;
        for (const char *p = t + sizeof(TOKEN_PREFIX) - 1; *p; p++)
                if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f')))
                        return false;
        return true;
}

static void token_hash(const char *secret, char hash[static GV_SHA256_HEX_SIZE],
                       char id[static TOKEN_ID_LEN + 1])
{
        gv_sha256_hex(secret, strlen(secret), hash);
        memcpy(id, hash, TOKEN_ID_LEN);
        id[TOKEN_ID_LEN] = 0;
}

static int refuse(struct gv_error **err, const char *why)
{
        return gv_error_set(err, EACCES, "%s; send 'Authorization: Bearer TOKEN' with a token "
                            "from 'POST /api/v1/tokens' (made by an admin, e.g. on the local "
                            "UNIX socket).", why);
}

int gv_controller_authenticate(struct gv_controller *c, const char *authorization,
                               struct gv_principal *ret, struct gv_error **err)
{
        if (!authorization || !*authorization)
                return refuse(err, "no 'Authorization' header");
        /* RFC 9110 11.1: the scheme is case-insensitive; one or more spaces follow it. */
        if (strncasecmp(authorization, "Bearer ", 7) != 0)
                return refuse(err, "the 'Authorization' header is not a Bearer token");
        const char *secret = authorization + 7;
        while (*secret == ' ')
                secret++;
        /* The secret is never quoted back: a mistyped one is still nearly a secret. */
        if (!token_is_well_formed(secret))
                return refuse(err, "the bearer token is malformed (a token is 'gvt_' and 64 hex "
                              "digits)");

        char hash[GV_SHA256_HEX_SIZE], id[TOKEN_ID_LEN + 1];
        token_hash(secret, hash, id);
        struct gv_store_obj o = { 0 };
        struct gv_error *e = NULL;
        int r = gv_store_get(c->store, GV_STORE_TOKEN, id, &o, &e);
        if (r == -ENOENT) {
                gv_error_free(e);
                return refuse(err, "the bearer token is unknown or was deleted");
        }
        if (r < 0) {
                gv_error_propagate(err, e);
                return r;
        }
        const char *stored = json_string_value(json_object_get(o.doc, "sha256"));
        const char *name = json_string_value(json_object_get(o.doc, "name"));
        const char *tenant = json_string_value(json_object_get(o.doc, "tenant"));
        enum gv_role role = gv_role_from_string(
                json_string_value(json_object_get(o.doc, "role")));
        bool ok = stored && strlen(stored) == 64 &&
                  gv_memeq_const_time(stored, hash, 64) && role >= 0 &&
                  /* a member without its tenant would reach nothing; never a cluster role */
                  (role == GV_ROLE_MEMBER) == (tenant != NULL);
        struct gv_principal p = { .role = role };
        if (ok) {
                snprintf(p.token_id, sizeof(p.token_id), "%s", id);
                snprintf(p.name, sizeof(p.name), "%s", name ? name : "");
                snprintf(p.tenant, sizeof(p.tenant), "%s", tenant ? tenant : "");
        }
        gv_store_obj_done(&o);
        if (!ok)
                return refuse(err, "the bearer token is unknown or was deleted");
        *ret = p;
        return 0;
}

static json_t *token_public(const json_t *doc)
{
        json_t *t = json_pack("{s:O?, s:O?, s:O?, s:O?}", "id", json_object_get(doc, "id"),
                              "name", json_object_get(doc, "name"), "role",
                              json_object_get(doc, "role"), "created_at",
                              json_object_get(doc, "created_at"));
        if (json_object_get(doc, "tenant"))
                json_object_set(t, "tenant", json_object_get(doc, "tenant"));
        return t;
}

static int token_name_taken(struct gv_controller *c, const char *name, struct gv_error **err)
{
        struct gv_store_obj *objs = NULL;
        size_t n = 0;
        int r = gv_store_list(c->store, GV_STORE_TOKEN, &objs, &n, err);
        if (r < 0)
                return r;
        bool taken = false;
        for (size_t i = 0; i < n; i++) {
                const char *s = json_string_value(json_object_get(objs[i].doc, "name"));
                if (s && strcmp(s, name) == 0)
                        taken = true;
        }
        gv_store_objs_free(objs, n);
        return taken;
}

int gv_controller_token_create(struct gv_controller *c, const char *name, enum gv_role role,
                               const char *tenant, json_t **ret, struct gv_error **err)
{
        if (!gv_name_is_valid(name))
                return gv_error_set(err, EINVAL, "token name '%s' is not valid: use 1-63 of "
                                    "a-z 0-9 . _ - starting with a letter or digit.",
                                    name ? name : "");
        if (!gv_role_to_string(role)) {
                _cleanup_free_ char *valid = STRING_TABLE_JOIN(role_table, ", ");
                return gv_error_set(err, EINVAL, "unknown role; valid: %s.", valid);
        }
        if (role == GV_ROLE_MEMBER && !tenant)
                return gv_error_set(err, EINVAL, "a member token needs its tenant: a member "
                                    "reaches only that tenant's VMs (gpuvirt tenant list shows "
                                    "them).");
        if (role != GV_ROLE_MEMBER && tenant)
                return gv_error_set(err, EINVAL, "only a member token names a tenant; a %s "
                                    "token reaches the whole cluster. Use role 'member' for "
                                    "tenant '%s'.", gv_role_to_string(role), tenant);
        int r = tenant ? gv_ctl_tenant_exists(c, tenant, err) : 0;
        if (r < 0)
                return r;
        r = token_name_taken(c, name, err);
        if (r < 0)
                return r;
        if (r > 0)
                return gv_error_set(err, EEXIST, "a token named '%s' exists; delete it first "
                                    "(DELETE /api/v1/tokens/ID) or choose another name.", name);

        /* A 48-bit id clashing is rare; try a few secrets before giving up. */
        for (unsigned attempt = 0; attempt < 4; attempt++) {
                uint8_t raw[TOKEN_SECRET_BYTES];
                ssize_t n = getrandom(raw, sizeof(raw), 0);
                if (n != (ssize_t)sizeof(raw))
                        return gv_error_set(err, n < 0 ? errno : EIO,
                                            "cannot read random bytes for a token: %s.",
                                            n < 0 ? strerror(errno) : "short read");
                char secret[TOKEN_LEN + 1] = TOKEN_PREFIX;
                static const char hex[] = "0123456789abcdef";
                for (size_t i = 0; i < sizeof(raw); i++) {
                        secret[sizeof(TOKEN_PREFIX) - 1 + 2 * i] = hex[raw[i] >> 4];
                        secret[sizeof(TOKEN_PREFIX) - 1 + 2 * i + 1] = hex[raw[i] & 15];
                }
                secret[TOKEN_LEN] = 0;
                explicit_bzero(raw, sizeof(raw));

                char hash[GV_SHA256_HEX_SIZE], id[TOKEN_ID_LEN + 1];
                token_hash(secret, hash, id);
                _cleanup_json_ json_t *doc = json_pack(
                        "{s:s, s:s, s:s, s:s, s:I}", "id", id, "name", name, "role",
                        gv_role_to_string(role), "sha256", hash, "created_at",
                        (json_int_t)time(NULL));
                if (tenant)
                        json_object_set_new(doc, "tenant", json_string(tenant));
                struct gv_error *e = NULL;
                r = gv_store_create(c->store, GV_STORE_TOKEN, id, doc, NULL, &e);
                if (r == -EEXIST) {
                        gv_error_free(e);
                        explicit_bzero(secret, sizeof(secret));
                        continue;
                }
                if (r < 0) {
                        gv_error_propagate(err, e);
                        explicit_bzero(secret, sizeof(secret));
                        return r;
                }
                json_t *out = token_public(doc);
                json_object_set_new(out, "token", json_string(secret));
                explicit_bzero(secret, sizeof(secret));
                *ret = out;
                return 0;
        }
        return gv_error_set(err, EAGAIN, "could not find a free token id; try again.");
}

json_t *gv_controller_tokens(struct gv_controller *c)
{
        struct gv_store_obj *objs = NULL;
        size_t n = 0;
        json_t *a = json_array();
        if (gv_store_list(c->store, GV_STORE_TOKEN, &objs, &n, NULL) < 0)
                return a;
        for (size_t i = 0; i < n; i++)
                json_array_append_new(a, token_public(objs[i].doc));
        gv_store_objs_free(objs, n);
        return a;
}

int gv_controller_token_delete(struct gv_controller *c, const char *id, struct gv_error **err)
{
        struct gv_store_obj o = { 0 };
        struct gv_error *e = NULL;
        int r = gv_store_get(c->store, GV_STORE_TOKEN, id, &o, &e);
        if (r == -ENOENT) {
                gv_error_free(e);
                return gv_error_set(err, ENOENT, "no token with id '%s'; GET /api/v1/tokens "
                                    "lists them.", id);
        }
        if (r < 0) {
                gv_error_propagate(err, e);
                return r;
        }
        int64_t gen = o.generation;
        gv_store_obj_done(&o);
        return gv_store_delete(c->store, GV_STORE_TOKEN, id, gen, err);
}
