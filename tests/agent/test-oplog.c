/* SPDX-License-Identifier: MIT */
/* The operation journal (src/agent/oplog.c): idempotent mutations on disk. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#include "agent/oplog.h"
#include "util/alloc.h"
#include "util/error.h"
#include "util/fileio.h"
#include "util/json.h"

static char tmproot[] = "/tmp/gv-oplog-XXXXXX";
static unsigned dir_seq;

/* A fresh journal directory (not yet created: open makes it) per test. */
static char *new_dir(void)
{
        return xasprintf("%s/ops%u", tmproot, dir_seq++);
}

static char *fpath(const char *dir, const char *name)
{
        return xasprintf("%s/%s", dir, name);
}

static bool exists(const char *dir, const char *name)
{
        _cleanup_free_ char *p = fpath(dir, name);
        return access(p, F_OK) == 0;
}

static struct gv_oplog *open_ok(const char *dir)
{
        struct gv_oplog *l = NULL;
        _cleanup_(gv_error_freep) struct gv_error *err = NULL;
        int r = gv_oplog_open(dir, &l, &err);
        if (r < 0)
                fail_msg("gv_oplog_open: %s", gv_error_msg(err, r));
        return l;
}

static enum gv_oplog_begin begin(struct gv_oplog *l, const char *id, const char *method,
                                 const char *path, const char *body, unsigned *ret_status,
                                 json_t **ret_body)
{
        enum gv_oplog_begin kind = (enum gv_oplog_begin)-1;
        _cleanup_(gv_error_freep) struct gv_error *err = NULL;
        int r = gv_oplog_begin(l, id, method, path, body, body ? strlen(body) : 0, ret_status,
                               ret_body, &kind, &err);
        if (r < 0)
                fail_msg("gv_oplog_begin('%s'): %s", id, gv_error_msg(err, r));
        return kind;
}

static void finish_ok(struct gv_oplog *l, const char *id, unsigned status, const char *body)
{
        _cleanup_(json_decrefp) json_t *b = NULL;
        if (body)
                assert_int_equal(gv_json_loads(body, &b, NULL), 0);
        _cleanup_(gv_error_freep) struct gv_error *err = NULL;
        int r = gv_oplog_finish(l, id, status, b, &err);
        if (r < 0)
                fail_msg("gv_oplog_finish('%s'): %s", id, gv_error_msg(err, r));
}

static json_t *load_entry(const char *dir, const char *id)
{
        _cleanup_free_ char *p = xasprintf("%s/%s.json", dir, id);
        json_t *j = NULL;
        _cleanup_(gv_error_freep) struct gv_error *err = NULL;
        int r = gv_json_load_file(p, GV_OPLOG_FILE_MAX, &j, &err);
        if (r < 0)
                fail_msg("%s", gv_error_msg(err, r));
        return j;
}

static void assert_json_eq(const json_t *got, const char *want)
{
        _cleanup_(json_decrefp) json_t *w = NULL;
        assert_int_equal(gv_json_loads(want, &w, NULL), 0);
        if (!json_equal((json_t *)got, w)) {
                _cleanup_free_ char *s = got ? json_dumps(got, JSON_COMPACT) : xstrdup("NULL");
                fail_msg("got %s, want %s", s, want);
        }
}

/* ---- SHA-256 ---- */

static void test_sha256_vectors(void **state _unused_)
{
        /* FIPS 180-2 appendix examples, and lengths around the padding boundaries. */
        static const struct {
                size_t n_a; /* that many 'a's, when s is NULL */
                const char *s;
                const char *hex;
        } v[] = {
                { 0, "", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855" },
                { 0, "abc", "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad" },
                { 0, "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq",
                  "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1" },
                { 55, NULL, "9f4390f8d30c2dd92ec9f095b65e2b9ae9b0a925a5258e241c9f1e910f734318" },
                { 56, NULL, "b35439a4ac6f0948b6d6f9e3c6af0f5f590ce20f1bde7090ef7970686ec6738a" },
                { 63, NULL, "7d3e74a05d7db15bce4ad9ec0658ea98e3f06eeecf16b4c6fff2da457ddc2f34" },
                { 64, NULL, "ffe054fe7ae0cb6dc65c3af9b61d5209f439851db43d0ba5997337df154668eb" },
                { 65, NULL, "635361c48bb9eab14198e76ea8ab7f1a41685d6ad62aa9146d301d4f17eb0ae0" },
                { 119, NULL, "31eba51c313a5c08226adf18d4a359cfdfd8d2e816b13f4af952f7ea6584dcfb" },
                { 128, NULL, "6836cf13bac400e9105071cd6af47084dfacad4e5e302c94bfed24e013afb73e" },
                { 1000000, NULL,
                  "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0" },
        };
        for (size_t i = 0; i < ELEMENTSOF(v); i++) {
                _cleanup_free_ char *buf = NULL;
                const char *s = v[i].s;
                size_t n = s ? strlen(s) : v[i].n_a;
                if (!s) {
                        buf = xmalloc(n);
                        memset(buf, 'a', n);
                        s = buf;
                }
                char hex[65];
                gv_oplog_sha256_hex(s, n, hex);
                assert_string_equal(hex, v[i].hex);
        }
}

/* ---- ids ---- */

static void test_id_grammar(void **state _unused_)
{
        char longest[GV_OPLOG_ID_MAX + 2];
        memset(longest, 'x', sizeof(longest));
        longest[GV_OPLOG_ID_MAX] = 0;
        assert_true(gv_oplog_id_is_valid(longest));
        assert_true(gv_oplog_id_is_valid("a"));
        assert_true(gv_oplog_id_is_valid("Op_1.2-3"));
        assert_true(gv_oplog_id_is_valid("..."));
        assert_true(gv_oplog_id_is_valid("-lead"));
        assert_true(gv_oplog_id_is_valid("6f1c2a4e-8a1f-4bd1-9c53-0d8b3ee1c0aa"));

        longest[GV_OPLOG_ID_MAX] = 'x';
        longest[GV_OPLOG_ID_MAX + 1] = 0;
        assert_false(gv_oplog_id_is_valid(longest));
        assert_false(gv_oplog_id_is_valid(NULL));
        assert_false(gv_oplog_id_is_valid(""));
        assert_false(gv_oplog_id_is_valid("."));
        assert_false(gv_oplog_id_is_valid(".."));
        assert_false(gv_oplog_id_is_valid("a/b"));
        assert_false(gv_oplog_id_is_valid("../x"));
        assert_false(gv_oplog_id_is_valid("a b"));
        assert_false(gv_oplog_id_is_valid("a\nb"));
        assert_false(gv_oplog_id_is_valid("caf\xc3\xa9"));
        assert_false(gv_oplog_id_is_valid("a:b"));
}

static void test_invalid_input_rejected(void **state _unused_)
{
        _cleanup_free_ char *dir = new_dir();
        _cleanup_(gv_oplog_freep) struct gv_oplog *l = open_ok(dir);
        static const char *const bad_ids[] = { "", ".", "..", "a/b", "../../etc/passwd", "a b" };
        for (size_t i = 0; i < ELEMENTSOF(bad_ids); i++) {
                _cleanup_(gv_error_freep) struct gv_error *err = NULL;
                enum gv_oplog_begin kind = GV_OPLOG_REPLAY;
                assert_int_equal(gv_oplog_begin(l, bad_ids[i], "POST", "/v1/vms", "{}", 2, NULL,
                                                NULL, &kind, &err),
                                 -EINVAL);
                assert_non_null(err);
                assert_non_null(strstr(err->msg, "is invalid"));
                assert_int_equal(kind, GV_OPLOG_REPLAY); /* untouched */
                assert_int_equal(gv_oplog_finish(l, bad_ids[i], 200, NULL, NULL), -EINVAL);
                assert_int_equal(gv_oplog_forget(l, bad_ids[i], NULL), -EINVAL);
        }
        enum gv_oplog_begin kind;
        _cleanup_(gv_error_freep) struct gv_error *err = NULL;
        assert_int_equal(gv_oplog_begin(l, "ok", "post", "/v1/vms", NULL, 0, NULL, NULL, &kind,
                                        &err),
                         -EINVAL);
        assert_non_null(strstr(err->msg, "'post'"));
        assert_int_equal(gv_oplog_begin(l, "ok", "POST", "v1/vms", NULL, 0, NULL, NULL, &kind,
                                        NULL),
                         -EINVAL);
        assert_int_equal(gv_oplog_begin(l, "ok", "POST", "/v1/a b", NULL, 0, NULL, NULL, &kind,
                                        NULL),
                         -EINVAL);
        assert_int_equal(gv_oplog_begin(l, "ok", "POST", "/v1", NULL, 3, NULL, NULL, &kind,
                                        NULL),
                         -EINVAL);

        /* Nothing was written for any of them: the directory holds no entry. */
        assert_false(exists(dir, "ok.json"));
        assert_int_equal(begin(l, "ok", "POST", "/v1/vms", NULL, NULL, NULL), GV_OPLOG_NEW);
        /* A status outside HTTP's range is refused and the operation stays ours. */
        assert_int_equal(gv_oplog_finish(l, "ok", 99, NULL, NULL), -EINVAL);
        assert_int_equal(gv_oplog_finish(l, "ok", 600, NULL, NULL), -EINVAL);
        /* A response too large to record is refused, and the operation stays ours. */
        size_t big_n = GV_OPLOG_FILE_MAX;
        _cleanup_free_ char *big = xmalloc(big_n + 1);
        memset(big, 'x', big_n);
        big[big_n] = 0;
        json_t *b = json_string(big);
        _cleanup_(gv_error_freep) struct gv_error *err2 = NULL;
        assert_int_equal(gv_oplog_finish(l, "ok", 200, b, &err2), -EFBIG);
        json_decref(b);
        assert_non_null(strstr(err2->msg, "'ok'"));
        assert_false(exists(dir, "ok.json.tmp"));
        assert_int_equal(begin(l, "ok", "POST", "/v1/vms", NULL, NULL, NULL),
                         GV_OPLOG_IN_PROGRESS);
        finish_ok(l, "ok", 204, NULL);
        assert_int_equal(begin(l, "ok", "POST", "/v1/vms", NULL, NULL, NULL), GV_OPLOG_REPLAY);
}

/* ---- the four answers ---- */

static void test_new_replay_in_progress_mismatch(void **state _unused_)
{
        _cleanup_free_ char *dir = new_dir();
        _cleanup_(gv_oplog_freep) struct gv_oplog *l = open_ok(dir);
        struct stat st;
        assert_int_equal(stat(dir, &st), 0);
        assert_int_equal(st.st_mode & 07777, 0700);
        assert_null(gv_oplog_warnings(l)[0]);

        const char *path = "/v1/vms/a/start";
        unsigned status = 1;
        json_t *body = (json_t *)1;
        assert_int_equal(begin(l, "op1", "POST", path, "{}", &status, &body), GV_OPLOG_NEW);
        assert_int_equal(status, 0);
        assert_null(body);

        /* Durable and private before begin returns. */
        _cleanup_free_ char *f = fpath(dir, "op1.json");
        assert_int_equal(stat(f, &st), 0);
        assert_int_equal(st.st_mode & 07777, 0600);
        {
                _cleanup_(json_decrefp) json_t *j = load_entry(dir, "op1");
                assert_string_equal(json_string_value(json_object_get(j, "state")), "running");
                assert_string_equal(json_string_value(json_object_get(j, "method")), "POST");
                assert_string_equal(json_string_value(json_object_get(j, "path")), path);
                /* SHA-256 over "POST\0/v1/vms/a/start\0{}" */
                assert_string_equal(
                        json_string_value(json_object_get(j, "request_sha256")),
                        "4db2dfd9bae1ae467f8131935e200991b83bbee3274fd7adb7a81b9643d039c0");
                assert_true(json_is_integer(json_object_get(j, "started_ms")));
                assert_null(json_object_get(j, "status"));
        }

        /* The same request again while it runs. */
        assert_int_equal(begin(l, "op1", "POST", path, "{}", &status, &body),
                         GV_OPLOG_IN_PROGRESS);
        assert_int_equal(status, 409);
        assert_string_equal(json_string_value(json_object_get(body, "method")), "POST");
        assert_string_equal(json_string_value(json_object_get(body, "path")), path);
        json_decref(body);

        /* Another body, path or method under the same id. */
        assert_int_equal(begin(l, "op1", "POST", path, "{\"x\":1}", &status, &body),
                         GV_OPLOG_MISMATCH);
        assert_int_equal(status, 422);
        assert_string_equal(json_string_value(json_object_get(body, "method")), "POST");
        assert_string_equal(json_string_value(json_object_get(body, "path")), path);
        assert_string_equal(json_string_value(json_object_get(body, "id")), "op1");
        json_decref(body);
        assert_int_equal(begin(l, "op1", "POST", "/v1/vms/b/start", "{}", NULL, NULL),
                         GV_OPLOG_MISMATCH);
        assert_int_equal(begin(l, "op1", "DELETE", path, "{}", NULL, NULL), GV_OPLOG_MISMATCH);
        /* Framing: moving a byte between path and body is another request. */
        assert_int_equal(begin(l, "op1", "POST", "/v1/vms/a/start{", "}", NULL, NULL),
                         GV_OPLOG_MISMATCH);
        /* No body and an empty one are the same bytes. */
        assert_int_equal(begin(l, "op2", "DELETE", "/v1/vms/a", NULL, NULL, NULL), GV_OPLOG_NEW);
        assert_int_equal(begin(l, "op2", "DELETE", "/v1/vms/a", "", NULL, NULL),
                         GV_OPLOG_IN_PROGRESS);

        finish_ok(l, "op1", 200, "{\"phase\": \"running\", \"n\": [1, 2]}");
        {
                _cleanup_(json_decrefp) json_t *j = load_entry(dir, "op1");
                assert_string_equal(json_string_value(json_object_get(j, "state")), "done");
                assert_int_equal(json_integer_value(json_object_get(j, "status")), 200);
                assert_json_eq(json_object_get(j, "response"),
                               "{\"phase\":\"running\",\"n\":[1,2]}");
        }
        assert_false(exists(dir, "op1.json.tmp"));

        assert_int_equal(begin(l, "op1", "POST", path, "{}", &status, &body), GV_OPLOG_REPLAY);
        assert_int_equal(status, 200);
        assert_json_eq(body, "{\"phase\":\"running\",\"n\":[1,2]}");
        /* The answer is the caller's copy: changing it does not change the record. */
        json_object_set_new(body, "phase", json_string("tampered"));
        json_decref(body);
        assert_int_equal(begin(l, "op1", "POST", path, "{}", &status, &body), GV_OPLOG_REPLAY);
        assert_json_eq(body, "{\"phase\":\"running\",\"n\":[1,2]}");
        json_decref(body);
        assert_int_equal(begin(l, "op1", "POST", path, "{\"x\":1}", &status, NULL),
                         GV_OPLOG_MISMATCH);
        assert_int_equal(status, 422);

        /* Finished once: a second finish, or one for an unknown id, is refused. */
        _cleanup_(gv_error_freep) struct gv_error *err = NULL;
        assert_int_equal(gv_oplog_finish(l, "op1", 500, NULL, &err), -ESRCH);
        assert_non_null(strstr(err->msg, "'op1'"));
        assert_int_equal(gv_oplog_finish(l, "nope", 200, NULL, NULL), -ESRCH);

        /* A response without a body replays as NULL. */
        finish_ok(l, "op2", 204, NULL);
        body = (json_t *)1;
        assert_int_equal(begin(l, "op2", "DELETE", "/v1/vms/a", NULL, &status, &body),
                         GV_OPLOG_REPLAY);
        assert_int_equal(status, 204);
        assert_null(body);
}

static void test_durable_across_reopen(void **state _unused_)
{
        _cleanup_free_ char *dir = new_dir();
        struct gv_oplog *l = open_ok(dir);
        assert_int_equal(begin(l, "done1", "POST", "/v1/vms", "{\"name\":\"a\"}", NULL, NULL),
                         GV_OPLOG_NEW);
        finish_ok(l, "done1", 201, "{\"name\":\"a\"}");
        assert_int_equal(begin(l, "run1", "POST", "/v1/vms/a/start", NULL, NULL, NULL),
                         GV_OPLOG_NEW);

        /* One journal per directory. */
        struct gv_oplog *l2 = NULL;
        _cleanup_(gv_error_freep) struct gv_error *err = NULL;
        assert_int_equal(gv_oplog_open(dir, &l2, &err), -EBUSY);
        assert_null(l2);
        assert_non_null(strstr(err->msg, "in use"));

        l = gv_oplog_free(l); /* the agent "dies" with run1 running */
        l = open_ok(dir);
        assert_null(gv_oplog_warnings(l)[0]);

        unsigned status;
        json_t *body;
        assert_int_equal(begin(l, "done1", "POST", "/v1/vms", "{\"name\":\"a\"}", &status, &body),
                         GV_OPLOG_REPLAY);
        assert_int_equal(status, 201);
        assert_json_eq(body, "{\"name\":\"a\"}");
        json_decref(body);
        assert_int_equal(begin(l, "done1", "POST", "/v1/vms", "{\"name\":\"b\"}", NULL, NULL),
                         GV_OPLOG_MISMATCH);

        /* Loaded running and not yet recovered: not run twice, and not this process's to
         * finish. */
        assert_int_equal(begin(l, "run1", "POST", "/v1/vms/a/start", NULL, &status, NULL),
                         GV_OPLOG_IN_PROGRESS);
        assert_int_equal(status, 409);
        assert_int_equal(gv_oplog_finish(l, "run1", 200, NULL, NULL), -ESRCH);
        gv_oplog_free(l);
}

static void test_forget(void **state _unused_)
{
        _cleanup_free_ char *dir = new_dir();
        _cleanup_(gv_oplog_freep) struct gv_oplog *l = open_ok(dir);

        /* Rolled back: a retry runs it again. */
        assert_int_equal(begin(l, "f1", "POST", "/v1/vms/a/start", NULL, NULL, NULL),
                         GV_OPLOG_NEW);
        assert_true(exists(dir, "f1.json"));
        assert_int_equal(gv_oplog_forget(l, "f1", NULL), 0);
        assert_false(exists(dir, "f1.json"));
        assert_int_equal(gv_oplog_finish(l, "f1", 200, NULL, NULL), -ESRCH);
        assert_int_equal(begin(l, "f1", "POST", "/v1/vms/a/start", NULL, NULL, NULL),
                         GV_OPLOG_NEW);
        /* ... and may even be another request now. */
        assert_int_equal(gv_oplog_forget(l, "f1", NULL), 0);
        assert_int_equal(begin(l, "f1", "POST", "/v1/vms/b/start", NULL, NULL, NULL),
                         GV_OPLOG_NEW);
        finish_ok(l, "f1", 200, NULL);

        /* A finished one too. */
        assert_int_equal(gv_oplog_forget(l, "f1", NULL), 0);
        assert_false(exists(dir, "f1.json"));
        assert_int_equal(begin(l, "f1", "POST", "/v1/vms/b/start", NULL, NULL, NULL),
                         GV_OPLOG_NEW);

        _cleanup_(gv_error_freep) struct gv_error *err = NULL;
        assert_int_equal(gv_oplog_forget(l, "never", &err), -ENOENT);
        assert_non_null(strstr(err->msg, "'never'"));

        /* Forgetting survives a restart. */
        assert_int_equal(gv_oplog_forget(l, "f1", NULL), 0);
        l = gv_oplog_free(l);
        l = open_ok(dir);
        assert_int_equal(begin(l, "f1", "POST", "/v1/vms/c/start", NULL, NULL, NULL),
                         GV_OPLOG_NEW);
}

/* ---- recovery ---- */

struct recover_ctx {
        unsigned calls;
        char seen[8][GV_OPLOG_ID_MAX + 1];
        bool fail_c; /* "c" fails with -EIO */
};

static int recover_cb(const char *id, const char *method, const char *path, unsigned *ret_status,
                      json_t **ret_body, void *userdata)
{
        struct recover_ctx *c = userdata;
        assert_true(c->calls < 8);
        snprintf(c->seen[c->calls++], GV_OPLOG_ID_MAX + 1, "%s", id);
        assert_string_equal(method, "POST");
        if (strcmp(id, "a") == 0) {
                assert_string_equal(path, "/v1/vms/a/start");
                *ret_status = 201;
                *ret_body = json_pack("{s:s}", "phase", "running");
                return 1;
        }
        if (strcmp(id, "b") == 0)
                return 0;
        if (strcmp(id, "c") == 0) {
                if (c->fail_c)
                        return -EIO;
                *ret_status = 500;
                *ret_body = NULL;
                return 1;
        }
        fail_msg("recover called for '%s', which is not one a dead agent left running", id);
        return -EINVAL;
}

static int bad_status_cb(const char *id _unused_, const char *method _unused_,
                         const char *path _unused_, unsigned *ret_status, json_t **ret_body,
                         void *userdata _unused_)
{
        *ret_status = 42;
        *ret_body = json_object(); /* the journal takes it over, even when refusing */
        return 1;
}

static int forget_cb(const char *id _unused_, const char *method _unused_,
                     const char *path _unused_, unsigned *ret_status _unused_,
                     json_t **ret_body _unused_, void *userdata)
{
        (*(unsigned *)userdata)++;
        return 0;
}

static bool seen(const struct recover_ctx *c, const char *id)
{
        for (unsigned i = 0; i < c->calls; i++)
                if (strcmp(c->seen[i], id) == 0)
                        return true;
        return false;
}

static void test_recover(void **state _unused_)
{
        _cleanup_free_ char *dir = new_dir();
        struct gv_oplog *l = open_ok(dir);
        assert_int_equal(begin(l, "a", "POST", "/v1/vms/a/start", NULL, NULL, NULL),
                         GV_OPLOG_NEW);
        assert_int_equal(begin(l, "b", "POST", "/v1/vms/b/start", NULL, NULL, NULL),
                         GV_OPLOG_NEW);
        assert_int_equal(begin(l, "c", "POST", "/v1/vms/c/start", NULL, NULL, NULL),
                         GV_OPLOG_NEW);
        assert_int_equal(begin(l, "d", "POST", "/v1/vms/d/start", NULL, NULL, NULL),
                         GV_OPLOG_NEW);
        finish_ok(l, "d", 200, NULL);
        l = gv_oplog_free(l); /* died with a, b, c running */

        l = open_ok(dir);
        /* Begun by this process: the callback never sees it. */
        assert_int_equal(begin(l, "mine", "POST", "/v1/vms/m/start", NULL, NULL, NULL),
                         GV_OPLOG_NEW);

        /* c fails: recover reports it and leaves c running for a later pass. */
        struct recover_ctx c = { .fail_c = true };
        _cleanup_(gv_error_freep) struct gv_error *err = NULL;
        assert_int_equal(gv_oplog_recover(l, recover_cb, &c, &err), -EIO);
        assert_non_null(strstr(err->msg, "'c'"));
        assert_non_null(strstr(err->msg, "/v1/vms/c/start"));
        assert_true(seen(&c, "c"));
        assert_int_equal(begin(l, "c", "POST", "/v1/vms/c/start", NULL, NULL, NULL),
                         GV_OPLOG_IN_PROGRESS);

        struct recover_ctx c2 = { .fail_c = false };
        int n = gv_oplog_recover(l, recover_cb, &c2, NULL);
        assert_true(n >= 1 && n <= 3);
        assert_int_equal(n, c2.calls);
        assert_true(seen(&c2, "c"));
        /* Every one of a, b, c decided exactly once over the two passes. */
        assert_int_equal(c.calls - 1 + c2.calls, 3);
        assert_false(seen(&c2, "d"));
        assert_false(seen(&c2, "mine"));
        assert_int_equal(gv_oplog_recover(l, recover_cb, &c2, NULL), 0);

        unsigned status;
        json_t *body;
        assert_int_equal(begin(l, "a", "POST", "/v1/vms/a/start", NULL, &status, &body),
                         GV_OPLOG_REPLAY);
        assert_int_equal(status, 201);
        assert_json_eq(body, "{\"phase\":\"running\"}");
        json_decref(body);
        assert_int_equal(begin(l, "c", "POST", "/v1/vms/c/start", NULL, &status, NULL),
                         GV_OPLOG_REPLAY);
        assert_int_equal(status, 500);
        assert_false(exists(dir, "b.json"));
        assert_int_equal(begin(l, "b", "POST", "/v1/vms/b/start", NULL, NULL, NULL),
                         GV_OPLOG_NEW);

        /* The decisions are on disk. */
        l = gv_oplog_free(l);
        l = open_ok(dir);
        assert_int_equal(begin(l, "a", "POST", "/v1/vms/a/start", NULL, &status, NULL),
                         GV_OPLOG_REPLAY);
        assert_int_equal(status, 201);

        /* Left running by this process's death: "b" (begun again) and "mine". A callback that
         * makes up a status is refused, and the entry stays running. */
        _cleanup_(gv_error_freep) struct gv_error *err2 = NULL;
        assert_int_equal(gv_oplog_recover(l, bad_status_cb, NULL, &err2), -EINVAL);
        assert_non_null(strstr(err2->msg, "status 42"));
        assert_int_equal(begin(l, "b", "POST", "/v1/vms/b/start", NULL, NULL, NULL),
                         GV_OPLOG_IN_PROGRESS);
        unsigned forgotten = 0;
        assert_int_equal(gv_oplog_recover(l, forget_cb, &forgotten, NULL), 2);
        assert_int_equal(forgotten, 2);
        assert_int_equal(begin(l, "mine", "POST", "/v1/vms/m/start", NULL, NULL, NULL),
                         GV_OPLOG_NEW);
        gv_oplog_free(l);
}

/* ---- prune ---- */

static int64_t fake_now_ms;

static int64_t fake_clock(void *userdata)
{
        return *(int64_t *)userdata;
}

static void done_at(struct gv_oplog *l, const char *id, int64_t at_s)
{
        fake_now_ms = at_s * 1000;
        _cleanup_free_ char *path = xasprintf("/v1/vms/%s/start", id);
        assert_int_equal(begin(l, id, "POST", path, NULL, NULL, NULL), GV_OPLOG_NEW);
        finish_ok(l, id, 200, NULL);
}

static enum gv_oplog_begin again(struct gv_oplog *l, const char *id)
{
        _cleanup_free_ char *path = xasprintf("/v1/vms/%s/start", id);
        return begin(l, id, "POST", path, NULL, NULL, NULL);
}

static void test_prune(void **state _unused_)
{
        _cleanup_free_ char *dir = new_dir();
        _cleanup_(gv_oplog_freep) struct gv_oplog *l = open_ok(dir);
        gv_oplog_set_clock(l, fake_clock, &fake_now_ms);

        fake_now_ms = 0;
        assert_int_equal(again(l, "run"), GV_OPLOG_NEW); /* running: never pruned */
        done_at(l, "e1", 1000);
        done_at(l, "e2", 2000);
        done_at(l, "e3", 3000);
        {
                _cleanup_(json_decrefp) json_t *j = load_entry(dir, "e2");
                assert_int_equal(json_integer_value(json_object_get(j, "finished_ms")), 2000000);
        }

        /* By age: finished more than 1000 s before 3500 s. */
        fake_now_ms = 3500 * 1000;
        assert_int_equal(gv_oplog_prune(l, 1000, SIZE_MAX, NULL), 2);
        assert_false(exists(dir, "e1.json"));
        assert_false(exists(dir, "e2.json"));
        assert_true(exists(dir, "e3.json"));
        assert_true(exists(dir, "run.json"));
        assert_int_equal(again(l, "e3"), GV_OPLOG_REPLAY);
        assert_int_equal(again(l, "run"), GV_OPLOG_IN_PROGRESS);
        /* Nothing else is old enough; an age limit beyond the clock drops nothing either. */
        assert_int_equal(gv_oplog_prune(l, 1000, SIZE_MAX, NULL), 0);
        assert_int_equal(gv_oplog_prune(l, INT64_MAX, SIZE_MAX, NULL), 0);

        /* By count: run, e3, e4, e5 → keep 2: the oldest finished (e3, then e4) go. */
        done_at(l, "e4", 4000);
        done_at(l, "e5", 4001);
        assert_int_equal(gv_oplog_prune(l, -1, 2, NULL), 2);
        assert_false(exists(dir, "e3.json"));
        assert_false(exists(dir, "e4.json"));
        assert_true(exists(dir, "e5.json"));
        assert_int_equal(again(l, "e5"), GV_OPLOG_REPLAY);
        assert_int_equal(again(l, "run"), GV_OPLOG_IN_PROGRESS);

        /* Keep none: only the finished one can go. */
        assert_int_equal(gv_oplog_prune(l, -1, 0, NULL), 1);
        assert_int_equal(again(l, "run"), GV_OPLOG_IN_PROGRESS);
        assert_int_equal(gv_oplog_prune(l, 0, 0, NULL), 0);

        /* Pruned ids are free again. */
        assert_int_equal(again(l, "e1"), GV_OPLOG_NEW);
        assert_int_equal(again(l, "e4"), GV_OPLOG_NEW);
        assert_int_equal(again(l, "e5"), GV_OPLOG_NEW);
}

/* ---- corrupt files ---- */

static void put(const char *dir, const char *name, const char *content)
{
        _cleanup_free_ char *p = fpath(dir, name);
        assert_int_equal(gv_write_file(p, content, GV_WRITE_CREATE), 0);
}

static bool warned_about(struct gv_oplog *l, const char *name)
{
        for (const char *const *w = gv_oplog_warnings(l); *w; w++)
                if (strstr(*w, name) && strstr(*w, "moved aside"))
                        return true;
        return false;
}

static void test_corrupt_moved_aside(void **state _unused_)
{
        _cleanup_free_ char *dir = new_dir();
        struct gv_oplog *l = open_ok(dir);
        assert_int_equal(begin(l, "good", "POST", "/v1/vms", "{}", NULL, NULL), GV_OPLOG_NEW);
        finish_ok(l, "good", 201, "{\"ok\":true}");
        l = gv_oplog_free(l);

        /* Hand-made damage, each from a good entry. */
        _cleanup_(json_decrefp) json_t *good = load_entry(dir, "good");
        json_t *j = json_deep_copy(good);
        json_object_set_new(j, "id", json_string("extra"));
        json_object_set_new(j, "color", json_string("blue"));
        _cleanup_free_ char *s_extra = json_dumps(j, 0);
        json_decref(j);
        j = json_deep_copy(good); /* id inside differs from the file name */
        _cleanup_free_ char *s_wrongid = json_dumps(j, 0);
        json_decref(j);
        j = json_deep_copy(good);
        json_object_set_new(j, "id", json_string("nostatus"));
        json_object_del(j, "status");
        _cleanup_free_ char *s_nostatus = json_dumps(j, 0);
        json_decref(j);
        j = json_deep_copy(good);
        json_object_set_new(j, "id", json_string("badstate"));
        json_object_set_new(j, "state", json_string("paused"));
        _cleanup_free_ char *s_badstate = json_dumps(j, 0);
        json_decref(j);
        j = json_deep_copy(good);
        json_object_set_new(j, "id", json_string("typed"));
        json_object_set_new(j, "status", json_string("200"));
        _cleanup_free_ char *s_typed = json_dumps(j, 0);
        json_decref(j);
        _cleanup_free_ char *s_good = json_dumps(good, 0);

        put(dir, "junk.json", "{not json");
        put(dir, "trunc.json", "{\"id\":\"trunc\",\"method\":\"PO");
        put(dir, "extra.json", s_extra);
        put(dir, "wrongid.json", s_wrongid);
        put(dir, "nostatus.json", s_nostatus);
        put(dir, "badstate.json", s_badstate);
        put(dir, "typed.json", s_typed);
        put(dir, "left.json.tmp", s_good); /* a write a crash cut short of its rename */
        put(dir, "notes.txt", "not ours");
        static const char *const bad[] = { "junk",     "trunc",    "extra", "wrongid",
                                           "nostatus", "badstate", "typed" };

        l = open_ok(dir);
        size_t n_warn = 0;
        for (const char *const *w = gv_oplog_warnings(l); *w; w++)
                n_warn++;
        assert_int_equal(n_warn, ELEMENTSOF(bad));
        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                _cleanup_free_ char *name = xasprintf("%s.json", bad[i]);
                _cleanup_free_ char *aside = xasprintf("%s.json.corrupt", bad[i]);
                assert_true(warned_about(l, name));
                assert_false(exists(dir, name));
                assert_true(exists(dir, aside));
                /* Forgotten: the id runs again. */
                assert_int_equal(begin(l, bad[i], "POST", "/v1/vms", "{}", NULL, NULL),
                                 GV_OPLOG_NEW);
        }
        assert_non_null(strstr(gv_oplog_warnings(l)[0], dir));
        assert_false(exists(dir, "left.json.tmp"));
        assert_true(exists(dir, "notes.txt"));

        unsigned status;
        assert_int_equal(begin(l, "good", "POST", "/v1/vms", "{}", &status, NULL),
                         GV_OPLOG_REPLAY);
        assert_int_equal(status, 201);

        /* The .corrupt files stay where they are, unread, on the next open. */
        l = gv_oplog_free(l);
        l = open_ok(dir);
        assert_null(gv_oplog_warnings(l)[0]);
        assert_true(exists(dir, "junk.json.corrupt"));
        gv_oplog_free(l);
}

/* ---- threads ---- */

#define N_THREADS 8

struct race {
        struct gv_oplog *l;
        pthread_barrier_t barrier;
        const char *id;
        const char *body;
        unsigned counts[4];
        pthread_mutex_t lock;
};

static void *race_thread(void *p)
{
        struct race *r = p;
        enum gv_oplog_begin kind;
        pthread_barrier_wait(&r->barrier);
        int k = gv_oplog_begin(r->l, r->id, "POST", "/v1/vms/x/start", r->body, strlen(r->body),
                               NULL, NULL, &kind, NULL);
        pthread_mutex_lock(&r->lock);
        if (k == 0 && kind >= 0 && kind < 4)
                r->counts[kind]++;
        pthread_mutex_unlock(&r->lock);
        return NULL;
}

static void race(struct race *r)
{
        pthread_t t[N_THREADS];
        memset(r->counts, 0, sizeof(r->counts));
        pthread_barrier_init(&r->barrier, NULL, N_THREADS);
        for (unsigned i = 0; i < N_THREADS; i++)
                assert_int_equal(pthread_create(&t[i], NULL, race_thread, r), 0);
        for (unsigned i = 0; i < N_THREADS; i++)
                pthread_join(t[i], NULL);
        pthread_barrier_destroy(&r->barrier);
}

static void test_concurrent_begin(void **state _unused_)
{
        _cleanup_free_ char *dir = new_dir();
        _cleanup_(gv_oplog_freep) struct gv_oplog *l = open_ok(dir);
        struct race r = { .l = l, .body = "{}" };
        pthread_mutex_init(&r.lock, NULL);

        for (unsigned round = 0; round < 20; round++) {
                char id[32];
                snprintf(id, sizeof(id), "race-%u", round);
                r.id = id;
                r.body = "{}";
                race(&r);
                assert_int_equal(r.counts[GV_OPLOG_NEW], 1);
                assert_int_equal(r.counts[GV_OPLOG_IN_PROGRESS], N_THREADS - 1);

                finish_ok(l, id, 200, "{\"round\":1}");
                race(&r);
                assert_int_equal(r.counts[GV_OPLOG_REPLAY], N_THREADS);
                r.body = "{\"other\":1}";
                race(&r);
                assert_int_equal(r.counts[GV_OPLOG_MISMATCH], N_THREADS);
        }
        pthread_mutex_destroy(&r.lock);
}

struct many {
        struct gv_oplog *l;
        unsigned thread;
        unsigned ok;
};

#define N_PER_THREAD 10

/* Distinct ids from every thread at once, interleaved with prune and forget. */
static void *many_thread(void *p)
{
        struct many *m = p;
        for (unsigned i = 0; i < N_PER_THREAD; i++) {
                char id[32];
                snprintf(id, sizeof(id), "t%u-%u", m->thread, i);
                enum gv_oplog_begin kind;
                if (gv_oplog_begin(m->l, id, "DELETE", "/v1/vms/x", NULL, 0, NULL, NULL, &kind,
                                   NULL) < 0 ||
                    kind != GV_OPLOG_NEW)
                        continue;
                json_t *b = json_pack("{s:s}", "id", id);
                int r = gv_oplog_finish(m->l, id, 200, b, NULL);
                json_decref(b);
                if (r < 0)
                        continue;
                /* Keeps everything finished in the last hour (all of them). */
                if (gv_oplog_prune(m->l, 3600, SIZE_MAX, NULL) < 0)
                        continue;
                m->ok++;
        }
        return NULL;
}

static void test_concurrent_distinct(void **state _unused_)
{
        _cleanup_free_ char *dir = new_dir();
        struct gv_oplog *l = open_ok(dir);
        pthread_t t[N_THREADS];
        struct many m[N_THREADS];
        for (unsigned i = 0; i < N_THREADS; i++) {
                m[i] = (struct many){ .l = l, .thread = i };
                assert_int_equal(pthread_create(&t[i], NULL, many_thread, &m[i]), 0);
        }
        for (unsigned i = 0; i < N_THREADS; i++) {
                pthread_join(t[i], NULL);
                assert_int_equal(m[i].ok, N_PER_THREAD);
        }
        l = gv_oplog_free(l);

        l = open_ok(dir);
        for (unsigned i = 0; i < N_THREADS; i++)
                for (unsigned k = 0; k < N_PER_THREAD; k++) {
                        char id[32];
                        snprintf(id, sizeof(id), "t%u-%u", i, k);
                        json_t *b = NULL;
                        assert_int_equal(begin(l, id, "DELETE", "/v1/vms/x", NULL, NULL, &b),
                                         GV_OPLOG_REPLAY);
                        assert_string_equal(json_string_value(json_object_get(b, "id")), id);
                        json_decref(b);
                }
        gv_oplog_free(l);
}

int main(void)
{
        if (!mkdtemp(tmproot)) {
                perror("mkdtemp");
                return 99;
        }
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_sha256_vectors),
                cmocka_unit_test(test_id_grammar),
                cmocka_unit_test(test_invalid_input_rejected),
                cmocka_unit_test(test_new_replay_in_progress_mismatch),
                cmocka_unit_test(test_durable_across_reopen),
                cmocka_unit_test(test_forget),
                cmocka_unit_test(test_recover),
                cmocka_unit_test(test_prune),
                cmocka_unit_test(test_corrupt_moved_aside),
                cmocka_unit_test(test_concurrent_begin),
                cmocka_unit_test(test_concurrent_distinct),
        };
        int r = cmocka_run_group_tests(tests, NULL, NULL);
        if (!getenv("GPUVIRT_TEST_KEEP_ROOT"))
                (void)gv_rm_rf(tmproot);
        return r;
}
