/* SPDX-License-Identifier: MIT */
#include "json.h"

#include <string.h>

#include "alloc.h"
#include "fileio.h"

int gv_json_loads(const char *buf, json_t **ret, struct gv_error **err)
{
        json_error_t je;
        json_t *j = json_loads(buf, JSON_REJECT_DUPLICATES, &je);
        if (!j)
                return gv_error_set(err, EINVAL, "invalid JSON at line %d, column %d: %s",
                                    je.line, je.column, je.text);
        *ret = j;
        return 0;
}

int gv_json_load_file(const char *path, size_t max, json_t **ret, struct gv_error **err)
{
        _cleanup_free_ char *buf = NULL;
        int r = gv_read_file(path, max, &buf, NULL);
        if (r == -EFBIG)
                return gv_error_set(err, EFBIG, "'%s' is larger than %zu bytes", path, max);
        if (r < 0)
                return gv_error_set(err, -r, "cannot read '%s': %s", path, strerror(-r));
        r = gv_json_loads(buf, ret, err);
        if (r < 0)
                return gv_error_wrap(err, -r, "'%s'", path);
        return 0;
}

static int lookup(const json_t *o, const char *key, json_t **ret, bool optional,
                  struct gv_error **err)
{
        if (!json_is_object(o))
                return gv_error_set(err, EINVAL, "expected an object holding '%s'", key);
        json_t *v = json_object_get(o, key);
        if (!v || json_is_null(v)) {
                if (optional)
                        return 0;
                return gv_error_set(err, EINVAL, "missing key '%s'", key);
        }
        *ret = v;
        return 1;
}

static int type_error(const char *key, const char *want, struct gv_error **err)
{
        return gv_error_set(err, EINVAL, "key '%s' must be %s", key, want);
}

static int get_string(const json_t *o, const char *key, const char **ret, bool opt,
                      struct gv_error **err)
{
        json_t *v = NULL;
        int r = lookup(o, key, &v, opt, err);
        if (r <= 0)
                return r;
        if (!json_is_string(v))
                return type_error(key, "a string", err);
        *ret = json_string_value(v);
        return 0;
}

static int get_u64(const json_t *o, const char *key, uint64_t max, uint64_t *ret, bool opt,
                   struct gv_error **err)
{
        json_t *v = NULL;
        int r = lookup(o, key, &v, opt, err);
        if (r <= 0)
                return r;
        if (!json_is_integer(v) || json_integer_value(v) < 0 ||
            (uint64_t)json_integer_value(v) > max)
                return gv_error_set(err, EINVAL, "key '%s' must be an integer from 0 to %llu",
                                    key, (unsigned long long)max);
        *ret = (uint64_t)json_integer_value(v);
        return 1;
}

static int get_bool(const json_t *o, const char *key, bool *ret, bool opt, struct gv_error **err)
{
        json_t *v = NULL;
        int r = lookup(o, key, &v, opt, err);
        if (r <= 0)
                return r;
        if (!json_is_boolean(v))
                return type_error(key, "true or false", err);
        *ret = json_is_true(v);
        return 0;
}

int gv_json_get_string(const json_t *o, const char *key, const char **ret, struct gv_error **err)
{
        return get_string(o, key, ret, false, err);
}

int gv_json_opt_string(const json_t *o, const char *key, const char **ret, struct gv_error **err)
{
        return get_string(o, key, ret, true, err);
}

int gv_json_get_u64(const json_t *o, const char *key, uint64_t *ret, struct gv_error **err)
{
        int r = get_u64(o, key, INT64_MAX, ret, false, err);
        return r < 0 ? r : 0;
}

int gv_json_opt_u64(const json_t *o, const char *key, uint64_t *ret, struct gv_error **err)
{
        int r = get_u64(o, key, INT64_MAX, ret, true, err);
        return r < 0 ? r : 0;
}

int gv_json_get_u32(const json_t *o, const char *key, uint32_t *ret, struct gv_error **err)
{
        uint64_t v = 0;
        int r = get_u64(o, key, UINT32_MAX, &v, false, err);
        if (r < 0)
                return r;
        *ret = (uint32_t)v;
        return 0;
}

int gv_json_opt_u32(const json_t *o, const char *key, uint32_t *ret, struct gv_error **err)
{
        uint64_t v = 0;
        int r = get_u64(o, key, UINT32_MAX, &v, true, err);
        if (r < 0)
                return r;
        if (r > 0)
                *ret = (uint32_t)v;
        return 0;
}

int gv_json_get_bool(const json_t *o, const char *key, bool *ret, struct gv_error **err)
{
        return get_bool(o, key, ret, false, err);
}

int gv_json_opt_bool(const json_t *o, const char *key, bool *ret, struct gv_error **err)
{
        return get_bool(o, key, ret, true, err);
}

int gv_json_get_array(const json_t *o, const char *key, json_t **ret, struct gv_error **err)
{
        json_t *v = NULL;
        int r = lookup(o, key, &v, false, err);
        if (r < 0)
                return r;
        if (!json_is_array(v))
                return type_error(key, "an array", err);
        *ret = v;
        return 0;
}

int gv_json_get_object(const json_t *o, const char *key, json_t **ret, struct gv_error **err)
{
        json_t *v = NULL;
        int r = lookup(o, key, &v, false, err);
        if (r < 0)
                return r;
        if (!json_is_object(v))
                return type_error(key, "an object", err);
        *ret = v;
        return 0;
}

char *gv_json_dumps_pretty(const json_t *o)
{
        char *s = json_dumps(o, JSON_INDENT(2) | JSON_SORT_KEYS);
        if (!s)
                abort();
        return s;
}
