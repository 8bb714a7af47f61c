/* SPDX-License-Identifier: MIT */
/*
 * fuzz-json — gv_json_loads() (strict: duplicate keys refused) and the strict object readers
 * built on it: the typed getters (util/json.h), a VM definition (gv_vm_config_from_json, the
 * agent's POST /v1/vms body and the controller's stored VM), cloud-init, the advisor's traits.
 *
 * Properties checked besides "no crash": a parsed value written out and parsed again is equal
 * (json_equal); a VM definition and the advisor's traits in their canonical form parse back to
 * the same canonical form (vm-config.h, advise.h promise it).
 */
#include <string.h>

#include "advise/advise.h"
#include "fuzz.h"
#include "util/alloc.h"
#include "util/json.h"
#include "vmm/vm-config.h"

/* Keys the API's bodies use, so the getters meet present keys of every type. */
static const char *const keys[] = { "name", "image", "vcpus", "memory_mib", "gpus", "nics",
                                    "mode", "timeout_s", "dry_run", "profiles", "seats",
                                    "kind", "id", "" };

static void getters(const json_t *j)
{
        for (size_t i = 0; i < ELEMENTSOF(keys); i++) {
                _cleanup_(gv_error_freep) struct gv_error *e = NULL;
                const char *s = NULL;
                uint64_t u64 = 0;
                uint32_t u32 = 0;
                bool b = false;
                json_t *v = NULL;
                /* Each getter either fails with an error object or succeeds without one. */
#define CHECK(call)                                                                   \
                do {                                                                  \
                        int r_ = (call);                                              \
                        if ((r_ < 0) != (e != NULL))                                  \
                                fuzz_fail("%s returned %d with%s an error", #call, r_, \
                                          e ? "" : "out");                            \
                        gv_error_free(e);                                             \
                        e = NULL;                                                     \
                } while (0)
                CHECK(gv_json_get_string(j, keys[i], &s, &e));
                CHECK(gv_json_opt_string(j, keys[i], &s, &e));
                CHECK(gv_json_get_u64(j, keys[i], &u64, &e));
                CHECK(gv_json_opt_u64(j, keys[i], &u64, &e));
                CHECK(gv_json_get_u32(j, keys[i], &u32, &e));
                CHECK(gv_json_opt_u32(j, keys[i], &u32, &e));
                CHECK(gv_json_get_bool(j, keys[i], &b, &e));
                CHECK(gv_json_opt_bool(j, keys[i], &b, &e));
                CHECK(gv_json_get_array(j, keys[i], &v, &e));
                CHECK(gv_json_get_object(j, keys[i], &v, &e));
#undef CHECK
        }
}

static void round_trip(const json_t *j)
{
        _cleanup_free_ char *text = gv_json_dumps_pretty(j);
        _cleanup_json_ json_t *again = NULL;
        _cleanup_(gv_error_freep) struct gv_error *e = NULL;
        if (gv_json_loads(text, &again, &e) < 0)
                fuzz_fail("our own output does not parse: %s\n%s", gv_error_msg(e, -EINVAL),
                          text);
        if (!json_equal((json_t *)j, again))
                fuzz_fail("written out and parsed again, the value changed:\n%s", text);
}

static void vm_config(const json_t *j)
{
        _cleanup_(gv_error_freep) struct gv_error *e = NULL;
        _cleanup_(gv_vm_config_freep) struct gv_vm_config *c = NULL, *c2 = NULL;
        if (gv_vm_config_from_json(j, &c, &e) < 0)
                return;
        _cleanup_json_ json_t *canon = gv_vm_config_to_json(c);
        if (gv_vm_config_from_json(canon, &c2, &e) < 0) {
                _cleanup_free_ char *t = gv_json_dumps_pretty(canon);
                fuzz_fail("a VM definition's canonical form does not parse: %s\n%s",
                          gv_error_msg(e, -EINVAL), t);
        }
        _cleanup_json_ json_t *canon2 = gv_vm_config_to_json(c2);
        if (!json_equal(canon, canon2)) {
                _cleanup_free_ char *a = gv_json_dumps_pretty(canon);
                _cleanup_free_ char *b = gv_json_dumps_pretty(canon2);
                fuzz_fail("a VM definition's canonical form parses to another:\n%s\n%s", a, b);
        }
}

static void cloud_init(const json_t *j)
{
        _cleanup_(gv_error_freep) struct gv_error *e = NULL;
        struct gv_vm_cloud_init *ci = NULL;
        const json_t *v = json_object_get(j, "cloud_init");
        if (gv_vm_cloud_init_from_json(v ? v : j, &ci, &e) < 0)
                return;
        json_decref(gv_vm_cloud_init_to_json(ci));
        gv_vm_cloud_init_free(ci);
}

static void advise_traits(const json_t *j)
{
        _cleanup_(gv_error_freep) struct gv_error *e = NULL;
        struct gv_advise_traits t = {}, t2 = {};
        if (gv_advise_traits_from_json(j, &t, &e) < 0)
                return;
        _cleanup_json_ json_t *canon = gv_advise_traits_to_json(&t);
        gv_advise_traits_done(&t);
        if (gv_advise_traits_from_json(canon, &t2, &e) < 0) {
                _cleanup_free_ char *s = gv_json_dumps_pretty(canon);
                fuzz_fail("the advisor's traits with defaults do not parse: %s\n%s",
                          gv_error_msg(e, -EINVAL), s);
        }
        _cleanup_json_ json_t *canon2 = gv_advise_traits_to_json(&t2);
        gv_advise_traits_done(&t2);
        if (!json_equal(canon, canon2))
                fuzz_fail("the advisor's traits with defaults parse to other traits");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        _cleanup_free_ char *text = fuzz_strndup(data, size);
        _cleanup_json_ json_t *j = NULL;
        _cleanup_(gv_error_freep) struct gv_error *e = NULL;

        int r = gv_json_loads(text, &j, &e);
        if ((r < 0) != (e != NULL) || (r >= 0) != (j != NULL))
                fuzz_fail("gv_json_loads returned %d inconsistently", r);
        if (r < 0)
                return 0;
        round_trip(j);
        getters(j);
        vm_config(j);
        cloud_init(j);
        advise_traits(j);
        return 0;
}
