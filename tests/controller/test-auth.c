/* SPDX-License-Identifier: MIT */
/*
 * test-auth: API tokens (src/controller/auth.c) on a real SQLite store: create, authenticate,
 * wrong and malformed secrets, deleted tokens, role strings, and that the store file holds the
 * hash of a secret but never the secret.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <sqlite3.h>

#include "controller/controller-internal.h"
#include "util/alloc.h"
#include "util/fileio.h"
#include "util/json.h"
#include "util/sha256.h"

struct fixture {
        char dir[64];
        char *db;
        struct gv_controller c; /* only the store is used by auth.c */
};

static int setup(void **state)
{
        struct fixture *f = xnew0(struct fixture, 1);
        strcpy(f->dir, "/tmp/test-auth-XXXXXX");
        assert_non_null(mkdtemp(f->dir));
        f->db = xasprintf("%s/gpuvirt.db", f->dir);
        _cleanup_free_ char *url = xasprintf("sqlite:%s", f->db);
        _cleanup_(gv_error_freep) struct gv_error *e = NULL;
        if (gv_store_open(url, &f->c.store, &e) < 0)
                fail_msg("store: %s", gv_error_msg(e, -EIO));
        *state = f;
        return 0;
}

static int teardown(void **state)
{
        struct fixture *f = *state;
        gv_store_free(f->c.store);
        (void)gv_rm_rf(f->dir);
        free(f->db);
        free(f);
        return 0;
}

static char *bearer(const char *secret)
{
        return xasprintf("Bearer %s", secret);
}

static void test_roles(void **state _unused_)
{
        assert_string_equal(gv_role_to_string(GV_ROLE_VIEWER), "viewer");
        assert_string_equal(gv_role_to_string(GV_ROLE_OPERATOR), "operator");
        assert_string_equal(gv_role_to_string(GV_ROLE_ADMIN), "admin");
        assert_null(gv_role_to_string(_GV_ROLE_MAX));
        assert_int_equal(gv_role_from_string("operator"), GV_ROLE_OPERATOR);
        assert_int_equal(gv_role_from_string("Admin"), -EINVAL);
        assert_int_equal(gv_role_from_string("root"), -EINVAL);
        assert_int_equal(gv_role_from_string(NULL), -EINVAL);
        /* The order is the privilege order the API layer compares with. */
        assert_true(GV_ROLE_MEMBER < GV_ROLE_VIEWER && GV_ROLE_VIEWER < GV_ROLE_OPERATOR &&
                    GV_ROLE_OPERATOR < GV_ROLE_ADMIN);
}

static void test_create_authenticate(void **state)
{
        struct fixture *f = *state;
        _cleanup_(gv_error_freep) struct gv_error *e = NULL;
        _cleanup_json_ json_t *t = NULL, *t2 = NULL;
        struct gv_principal who = { .role = _GV_ROLE_INVALID };

        assert_int_equal(gv_controller_token_create(&f->c, "ci-bot", GV_ROLE_OPERATOR, NULL, &t, &e),
                         0);
        const char *secret = json_string_value(json_object_get(t, "token"));
        const char *id = json_string_value(json_object_get(t, "id"));
        assert_non_null(secret);
        assert_non_null(id);
        assert_int_equal(strlen(secret), 68);
        assert_memory_equal(secret, "gvt_", 4);
        assert_int_equal(strlen(id), 12);
        assert_string_equal(json_string_value(json_object_get(t, "role")), "operator");
        assert_string_equal(json_string_value(json_object_get(t, "name")), "ci-bot");
        assert_true(json_integer_value(json_object_get(t, "created_at")) > 1600000000);

        _cleanup_free_ char *h = bearer(secret);
        assert_int_equal(gv_controller_authenticate(&f->c, h, &who, &e), 0);
        assert_int_equal(who.role, GV_ROLE_OPERATOR);
        /* The scheme is case-insensitive, spaces after it are skipped. */
        _cleanup_free_ char *h2 = xasprintf("bearer   %s", secret);
        who.role = _GV_ROLE_INVALID;
        assert_int_equal(gv_controller_authenticate(&f->c, h2, &who, &e), 0);
        assert_int_equal(who.role, GV_ROLE_OPERATOR);

        /* A second token of another role: each secret maps to its own role. */
        assert_int_equal(gv_controller_token_create(&f->c, "dash", GV_ROLE_VIEWER, NULL, &t2, &e), 0);
        _cleanup_free_ char *h3 = bearer(json_string_value(json_object_get(t2, "token")));
        assert_int_equal(gv_controller_authenticate(&f->c, h3, &who, &e), 0);
        assert_int_equal(who.role, GV_ROLE_VIEWER);
        assert_string_not_equal(json_string_value(json_object_get(t2, "token")), secret);
}

static void expect_refused(struct fixture *f, const char *header, const char *words)
{
        _cleanup_(gv_error_freep) struct gv_error *e = NULL;
        struct gv_principal who = { .role = GV_ROLE_ADMIN + 7 };
        assert_int_equal(gv_controller_authenticate(&f->c, header, &who, &e), -EACCES);
        assert_int_equal(who.role, GV_ROLE_ADMIN + 7); /* ret untouched on failure */
        assert_non_null(e);
        if (!strstr(e->msg, words))
                fail_msg("'%s' lacks '%s'", e->msg, words);
}

static void test_refusals(void **state)
{
        struct fixture *f = *state;
        _cleanup_(gv_error_freep) struct gv_error *e = NULL;
        _cleanup_json_ json_t *t = NULL;
        assert_int_equal(gv_controller_token_create(&f->c, "ops", GV_ROLE_ADMIN, NULL, &t, &e), 0);
        _cleanup_free_ char *secret = xstrdup(json_string_value(json_object_get(t, "token")));

        expect_refused(f, NULL, "no 'Authorization' header");
        expect_refused(f, "", "no 'Authorization' header");
        _cleanup_free_ char *basic = xasprintf("Basic %s", secret);
        expect_refused(f, basic, "not a Bearer token");
        expect_refused(f, "Bearer", "not a Bearer token");
        expect_refused(f, "Bearer gvt_123", "malformed");
        /* Upper-case hex is not what we hand out. */
        _cleanup_free_ char *upper = bearer(secret);
        for (char *p = upper + 11; *p; p++)
                if (*p >= 'a' && *p <= 'f') {
                        *p = (char)(*p - 'a' + 'A');
                        break;
                }
        expect_refused(f, upper, "malformed");

        /* One digit changed: well formed, unknown (another id, or the same id's hash does not
         * match). */
        _cleanup_free_ char *wrong = bearer(secret);
        char *last = wrong + strlen(wrong) - 1;
        *last = *last == '0' ? '1' : '0';
        expect_refused(f, wrong, "unknown or was deleted");
        /* The secret is not repeated in the message. */
        {
                _cleanup_(gv_error_freep) struct gv_error *e2 = NULL;
                struct gv_principal who;
                assert_int_equal(gv_controller_authenticate(&f->c, wrong, &who, &e2), -EACCES);
                assert_null(strstr(e2->msg, wrong + 7));
        }

        /* Deleted: refused from then on; deleting again is -ENOENT. */
        _cleanup_free_ char *h = bearer(secret);
        struct gv_principal who;
        assert_int_equal(gv_controller_authenticate(&f->c, h, &who, &e), 0);
        const char *id = json_string_value(json_object_get(t, "id"));
        assert_int_equal(gv_controller_token_delete(&f->c, id, &e), 0);
        expect_refused(f, h, "unknown or was deleted");
        assert_int_equal(gv_controller_token_delete(&f->c, id, &e), -ENOENT);
        assert_non_null(strstr(e->msg, id));
}

/* A member token names its tenant, which must exist; the cluster roles name none. Who it is
 * comes back with the role: the tenant, the token's name and id. */
static void test_member(void **state)
{
        struct fixture *f = *state;
        _cleanup_json_ json_t *t = NULL, *none = NULL;
        struct gv_principal who = { .role = _GV_ROLE_INVALID };
        {
                _cleanup_(gv_error_freep) struct gv_error *e = NULL;
                assert_int_equal(gv_controller_token_create(&f->c, "m", GV_ROLE_MEMBER, NULL,
                                                            &none, &e), -EINVAL);
                assert_non_null(strstr(e->msg, "needs its tenant"));
        }
        {
                _cleanup_(gv_error_freep) struct gv_error *e = NULL;
                assert_int_equal(gv_controller_token_create(&f->c, "m", GV_ROLE_MEMBER, "acme",
                                                            &none, &e), -ENOENT);
                assert_non_null(strstr(e->msg, "No tenant 'acme'"));
        }
        {
                _cleanup_(gv_error_freep) struct gv_error *e = NULL;
                assert_int_equal(gv_controller_token_create(&f->c, "v", GV_ROLE_VIEWER, "acme",
                                                            &none, &e), -EINVAL);
                assert_non_null(strstr(e->msg, "only a member token names a tenant"));
        }
        _cleanup_(gv_error_freep) struct gv_error *e = NULL;
        _cleanup_json_ json_t *tenant = json_pack("{s:s}", "name", "acme");
        assert_int_equal(gv_store_create(f->c.store, GV_STORE_TENANT, "acme", tenant, NULL, &e),
                         0);
        assert_int_equal(gv_controller_token_create(&f->c, "alice", GV_ROLE_MEMBER, "acme", &t,
                                                    &e), 0);
        assert_string_equal(json_string_value(json_object_get(t, "tenant")), "acme");
        assert_string_equal(json_string_value(json_object_get(t, "role")), "member");
        _cleanup_free_ char *h = bearer(json_string_value(json_object_get(t, "token")));
        assert_int_equal(gv_controller_authenticate(&f->c, h, &who, &e), 0);
        assert_int_equal(who.role, GV_ROLE_MEMBER);
        assert_string_equal(who.tenant, "acme");
        assert_string_equal(who.name, "alice");
        assert_string_equal(who.token_id, json_string_value(json_object_get(t, "id")));
        /* The token list shows the tenant, never the secret. */
        _cleanup_json_ json_t *l = gv_controller_tokens(&f->c);
        assert_int_equal(json_array_size(l), 1);
        assert_string_equal(json_string_value(json_object_get(json_array_get(l, 0), "tenant")),
                            "acme");
        assert_null(json_object_get(json_array_get(l, 0), "token"));
}

static void test_create_refusals(void **state)
{
        struct fixture *f = *state;
        _cleanup_json_ json_t *t = NULL, *none = NULL;
        {
                _cleanup_(gv_error_freep) struct gv_error *e = NULL;
                assert_int_equal(gv_controller_token_create(&f->c, "Bad Name", GV_ROLE_ADMIN, NULL,
                                                            &none, &e), -EINVAL);
                assert_non_null(strstr(e->msg, "'Bad Name'"));
        }
        {
                _cleanup_(gv_error_freep) struct gv_error *e = NULL;
                assert_int_equal(gv_controller_token_create(&f->c, "x", _GV_ROLE_MAX, NULL, &none, &e),
                                 -EINVAL);
                assert_non_null(strstr(e->msg, "viewer, operator, admin"));
        }
        {
                _cleanup_(gv_error_freep) struct gv_error *e = NULL;
                assert_int_equal(gv_controller_token_create(&f->c, "ci", GV_ROLE_ADMIN, NULL, &t, &e),
                                 0);
                assert_int_equal(gv_controller_token_create(&f->c, "ci", GV_ROLE_VIEWER, NULL, &none,
                                                            &e), -EEXIST);
                assert_non_null(strstr(e->msg, "'ci'"));
        }
        assert_null(none);
}

/* Every text and blob cell of every table in the store file, concatenated. */
static char *dump_db(const char *path)
{
        sqlite3 *db = NULL;
        assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
        sqlite3_stmt *tables = NULL;
        assert_int_equal(sqlite3_prepare_v2(db, "SELECT name FROM sqlite_master WHERE "
                                            "type = 'table'", -1, &tables, NULL), SQLITE_OK);
        char *all = xstrdup("");
        while (sqlite3_step(tables) == SQLITE_ROW) {
                _cleanup_free_ char *q = xasprintf("SELECT * FROM \"%s\"",
                                                   (const char *)sqlite3_column_text(tables, 0));
                sqlite3_stmt *rows = NULL;
                assert_int_equal(sqlite3_prepare_v2(db, q, -1, &rows, NULL), SQLITE_OK);
                while (sqlite3_step(rows) == SQLITE_ROW)
                        for (int i = 0; i < sqlite3_column_count(rows); i++) {
                                const unsigned char *v = sqlite3_column_text(rows, i);
                                char *n = xasprintf("%s|%s", all, v ? (const char *)v : "");
                                free(all);
                                all = n;
                        }
                sqlite3_finalize(rows);
        }
        sqlite3_finalize(tables);
        sqlite3_close(db);
        return all;
}

static void test_store_holds_hashes(void **state)
{
        struct fixture *f = *state;
        _cleanup_(gv_error_freep) struct gv_error *e = NULL;
        _cleanup_json_ json_t *t = NULL;
        assert_int_equal(gv_controller_token_create(&f->c, "audit", GV_ROLE_VIEWER, NULL, &t, &e), 0);
        const char *secret = json_string_value(json_object_get(t, "token"));
        char hash[GV_SHA256_HEX_SIZE];
        gv_sha256_hex(secret, strlen(secret), hash);

        _cleanup_free_ char *all = dump_db(f->db);
        assert_non_null(strstr(all, hash));         /* the dump does see the token */
        assert_null(strstr(all, secret));           /* but not its secret */
        assert_null(strstr(all, secret + 4));       /* not even without the prefix */

        /* The list shows no secret and no hash. */
        _cleanup_json_ json_t *list = gv_controller_tokens(&f->c);
        assert_int_equal(json_array_size(list), 1);
        json_t *one = json_array_get(list, 0);
        assert_null(json_object_get(one, "token"));
        assert_null(json_object_get(one, "sha256"));
        assert_string_equal(json_string_value(json_object_get(one, "name")), "audit");
        assert_string_equal(json_string_value(json_object_get(one, "role")), "viewer");
        assert_string_equal(json_string_value(json_object_get(one, "id")),
                            json_string_value(json_object_get(t, "id")));
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_roles),
                cmocka_unit_test_setup_teardown(test_create_authenticate, setup, teardown),
                cmocka_unit_test_setup_teardown(test_refusals, setup, teardown),
                cmocka_unit_test_setup_teardown(test_create_refusals, setup, teardown),
                cmocka_unit_test_setup_teardown(test_store_holds_hashes, setup, teardown),
                cmocka_unit_test_setup_teardown(test_member, setup, teardown),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
