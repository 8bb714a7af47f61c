/* SPDX-License-Identifier: MIT */
/*
 * route.c — route table checks and matching (see route.h for the rules).
 *
 * The plan: a pattern and a path are walked segment by segment in step. A literal segment must
 * equal the raw path segment byte for byte; a parameter segment takes the raw path segment,
 * percent-decodes it and checks it against the parameter's grammar. A shape mismatch is "no
 * match"; a shape match with a bad parameter is remembered as the reason to give if nothing else
 * matches.
 */
#include "route.h"

#include <string.h>

#include "util/alloc.h"
#include "util/enum-table.h"
#include "util/parse.h"

static const char *const known_methods[] = { "GET", "HEAD", "POST", "PUT", "PATCH", "DELETE" };

static bool method_is_known(const char *m)
{
        for (size_t i = 0; i < ELEMENTSOF(known_methods); i++)
                if (strcmp(known_methods[i], m) == 0)
                        return true;
        return false;
}

bool gv_http_utf8_is_valid(const char *s, size_t len)
{
        const unsigned char *p = (const unsigned char *)s;
        size_t i = 0;

        while (i < len) {
                unsigned char c = p[i];
                size_t n;
                unsigned cp;

                if (c < 0x80) {
                        i++;
                        continue;
                } else if (c >= 0xc2 && c <= 0xdf) {
                        n = 1;
                        cp = c & 0x1f;
                } else if (c >= 0xe0 && c <= 0xef) {
                        n = 2;
                        cp = c & 0x0f;
                } else if (c >= 0xf0 && c <= 0xf4) {
                        n = 3;
                        cp = c & 0x07;
                } else {
                        return false; /* continuation byte, overlong lead 0xc0/0xc1, or > 0xf4 */
                }
                if (len - i - 1 < n)
                        return false;
                for (size_t k = 1; k <= n; k++) {
                        if ((p[i + k] & 0xc0) != 0x80)
                                return false;
                        cp = (cp << 6) | (p[i + k] & 0x3f);
                }
                if ((n == 2 && cp < 0x800) || (n == 3 && cp < 0x10000) || cp > 0x10ffff ||
                    (cp >= 0xd800 && cp <= 0xdfff))
                        return false;
                i += n + 1;
        }
        return true;
}

static int hexval(char c)
{
        if (c >= '0' && c <= '9')
                return c - '0';
        if (c >= 'a' && c <= 'f')
                return c - 'a' + 10;
        if (c >= 'A' && c <= 'F')
                return c - 'A' + 10;
        return -1;
}

int gv_http_percent_decode(const char *s, size_t len, bool plus_is_space, char **ret)
{
        _cleanup_free_ char *out = xmalloc(len + 1);
        size_t o = 0;

        for (size_t i = 0; i < len; i++) {
                char c = s[i];
                if (c == '%') {
                        if (len - i < 3)
                                return -EINVAL;
                        int hi = hexval(s[i + 1]), lo = hexval(s[i + 2]);
                        if (hi < 0 || lo < 0)
                                return -EINVAL;
                        c = (char)(hi << 4 | lo);
                        i += 2;
                } else if (c == '+' && plus_is_space) {
                        c = ' ';
                }
                if (c == '\0')
                        return -EINVAL;
                out[o++] = c;
        }
        out[o] = '\0';
        *ret = TAKE_PTR(out);
        return 0;
}

/* A parameter segment of a pattern: "{name}", "{name:text}" or "{name:path}" (the rest). */
struct pattern_param {
        const char *name;
        size_t name_len;
        bool free_text;
        bool rest;
};

/* Parse the pattern segment seg[0..len) as a parameter. 1: it is one, 0: a literal, -EINVAL:
 * malformed. */
static int parse_param(const char *seg, size_t len, struct pattern_param *ret)
{
        if (len == 0 || (seg[0] != '{' && !memchr(seg, '{', len) && !memchr(seg, '}', len)))
                return 0;
        if (seg[0] != '{' || seg[len - 1] != '}' || len < 3)
                return -EINVAL;
        const char *name = seg + 1;
        size_t n = len - 2;
        bool free_text = false, rest = false;
        const char *colon = memchr(name, ':', n);
        if (colon) {
                size_t kind_len = (size_t)(name + n - colon - 1);
                if (kind_len == 4 && memcmp(colon + 1, "text", 4) == 0)
                        free_text = true;
                else if (kind_len == 4 && memcmp(colon + 1, "path", 4) == 0)
                        rest = true;
                else
                        return -EINVAL;
                n = (size_t)(colon - name);
        }
        if (n == 0 || n >= GV_HTTP_PARAM_NAME_MAX)
                return -EINVAL;
        for (size_t i = 0; i < n; i++) {
                char c = name[i];
                bool ok = (c >= 'a' && c <= 'z') || c == '_' || (i > 0 && c >= '0' && c <= '9');
                if (!ok)
                        return -EINVAL;
        }
        *ret = (struct pattern_param){ .name = name, .name_len = n, .free_text = free_text,
                                       .rest = rest };
        return 1;
}

/* Split off the next segment of an absolute path: *p points at a '/'. Returns the segment
 * start and sets *ret_len; advances *p to the next '/' or the end. */
static const char *next_segment(const char **p, size_t *ret_len)
{
        const char *start = *p + 1;
        const char *end = strchrnul(start, '/');
        *ret_len = (size_t)(end - start);
        *p = end;
        return start;
}

static int check_pattern(const char *pattern, struct gv_error **err)
{
        if (!pattern || pattern[0] != '/')
                return gv_error_set(err, EINVAL, "route pattern '%s' must start with '/'.",
                                    pattern ? pattern : "(null)");
        if (strcmp(pattern, "/") == 0)
                return 0;

        const char *names[GV_HTTP_MAX_PARAMS];
        size_t lens[GV_HTTP_MAX_PARAMS];
        size_t n_params = 0;
        const char *p = pattern;
        while (*p) {
                size_t len;
                const char *seg = next_segment(&p, &len);
                if (len == 0)
                        return gv_error_set(err, EINVAL,
                                            "route pattern '%s' has an empty segment; remove the "
                                            "doubled or trailing '/'.", pattern);
                struct pattern_param pp;
                int r = parse_param(seg, len, &pp);
                if (r < 0)
                        return gv_error_set(err, EINVAL,
                                            "route pattern '%s' has a malformed parameter '%.*s'; "
                                            "write '{name}', '{name:text}' or '{name:path}' "
                                            "with a name of "
                                            "[a-z_][a-z0-9_]*, shorter than %d bytes.",
                                            pattern, (int)len, seg, GV_HTTP_PARAM_NAME_MAX);
                if (r == 0)
                        continue;
                if (pp.rest && *p)
                        return gv_error_set(err, EINVAL,
                                            "route pattern '%s' has '%.*s' before its last "
                                            "segment; a ':path' parameter takes the rest of the "
                                            "path and must come last.", pattern, (int)len, seg);
                if (n_params == GV_HTTP_MAX_PARAMS)
                        return gv_error_set(err, EINVAL,
                                            "route pattern '%s' has more than %d parameters.",
                                            pattern, GV_HTTP_MAX_PARAMS);
                for (size_t i = 0; i < n_params; i++)
                        if (lens[i] == pp.name_len && memcmp(names[i], pp.name, lens[i]) == 0)
                                return gv_error_set(err, EINVAL,
                                                    "route pattern '%s' names parameter '%.*s' "
                                                    "twice.", pattern, (int)pp.name_len, pp.name);
                names[n_params] = pp.name;
                lens[n_params] = pp.name_len;
                n_params++;
        }
        return 0;
}

int gv_http_routes_check(const struct gv_http_route *routes, size_t n, struct gv_error **err)
{
        if (n > 0 && !routes)
                return gv_error_set(err, EINVAL, "route table is NULL but has %zu entries.", n);
        for (size_t i = 0; i < n; i++) {
                const struct gv_http_route *rt = &routes[i];
                if (!rt->method || !method_is_known(rt->method)) {
                        _cleanup_free_ char *valid = STRING_TABLE_JOIN(known_methods, ", ");
                        return gv_error_set(err, EINVAL,
                                            "route %zu ('%s') has unknown method '%s'; valid "
                                            "methods: %s.", i, rt->pattern ? rt->pattern : "",
                                            rt->method ? rt->method : "(null)", valid);
                }
                int r = check_pattern(rt->pattern, err);
                if (r < 0)
                        return gv_error_wrap(err, r, "route %zu", i);
                if (!rt->handler)
                        return gv_error_set(err, EINVAL, "route %zu ('%s %s') has no handler.",
                                            i, rt->method, rt->pattern);
                for (size_t j = 0; j < i; j++)
                        if (strcmp(routes[j].method, rt->method) == 0 &&
                            strcmp(routes[j].pattern, rt->pattern) == 0)
                                return gv_error_set(err, EINVAL,
                                                    "routes %zu and %zu are both '%s %s'; remove "
                                                    "one.", j, i, rt->method, rt->pattern);
        }
        return 0;
}

static void match_reset(struct gv_http_route_match *m)
{
        for (size_t i = 0; i < m->n_params; i++)
                free(m->params[i].value);
        *m = (struct gv_http_route_match){};
}

void gv_http_route_match_done(struct gv_http_route_match *m)
{
        if (m)
                match_reset(m);
}

const char *gv_http_route_match_param(const struct gv_http_route_match *m, const char *name)
{
        if (!m || !name)
                return NULL;
        for (size_t i = 0; i < m->n_params; i++)
                if (strcmp(m->params[i].name, name) == 0)
                        return m->params[i].value;
        return NULL;
}

/* Decode and check one parameter value. */
static int param_value(const struct pattern_param *pp, const char *raw, size_t len, char **ret,
                       struct gv_error **err)
{
        _cleanup_free_ char *v = NULL;
        int r = gv_http_percent_decode(raw, len, false, &v);
        if (r < 0)
                return gv_error_set(err, EINVAL,
                                    "path parameter '%.*s' is not well percent-encoded (a '%%' "
                                    "takes two hex digits, and %%00 is refused).",
                                    (int)pp->name_len, pp->name);
        if (pp->rest) {
                /* The rest of the path: every segment, decoded ones included ("..%2F"), is
                 * checked, so no value leads out of where the handler looks. */
                size_t n = strlen(v);
                bool ok = gv_http_utf8_is_valid(v, n);
                for (size_t i = 0; ok && i < n; i++)
                        if ((unsigned char)v[i] < 0x20 || v[i] == 0x7f || v[i] == '\\')
                                ok = false;
                for (const char *seg = v; ok && *seg;) {
                        size_t sl = strcspn(seg, "/");
                        if ((sl == 1 && seg[0] == '.') || (sl == 2 && seg[0] == '.' &&
                                                           seg[1] == '.'))
                                ok = false;
                        seg += sl + (seg[sl] == '/');
                }
                if (!ok)
                        return gv_error_set(err, EINVAL,
                                            "path parameter '%.*s' must be UTF-8 text without "
                                            "control characters or backslashes, and no segment "
                                            "'.' or '..'.", (int)pp->name_len, pp->name);
        } else if (pp->free_text) {
                size_t n = strlen(v);
                bool ok = gv_http_utf8_is_valid(v, n) && strcmp(v, ".") != 0 &&
                          strcmp(v, "..") != 0;
                for (size_t i = 0; ok && i < n; i++)
                        if ((unsigned char)v[i] < 0x20 || v[i] == 0x7f)
                                ok = false;
                if (!ok)
                        return gv_error_set(err, EINVAL,
                                            "path parameter '%.*s' must be UTF-8 text without "
                                            "control characters, and not '.' or '..'.",
                                            (int)pp->name_len, pp->name);
        } else if (!gv_name_is_valid(v)) {
                /* The value is not quoted back: it may hold anything. */
                return gv_error_set(err, EINVAL,
                                    "path parameter '%.*s' is not a valid name; names are 1 to 63 "
                                    "characters of [a-z0-9._-] starting with a letter or digit.",
                                    (int)pp->name_len, pp->name);
        }
        *ret = TAKE_PTR(v);
        return 0;
}

/* Whether path has the shape of pattern: same number of segments, literals equal, parameter
 * segments not empty. */
static bool shape_matches(const char *pattern, const char *path)
{
        if (strcmp(pattern, "/") == 0 || strcmp(path, "/") == 0)
                return strcmp(pattern, path) == 0;

        const char *pp = pattern, *xp = path;
        while (*pp && *xp) {
                size_t plen, xlen;
                const char *pseg = next_segment(&pp, &plen);
                const char *xseg = next_segment(&xp, &xlen);
                struct pattern_param param;
                int r = parse_param(pseg, plen, &param);
                if (r < 0)
                        return false; /* an unchecked table: never matches */
                if (r == 0 && (plen != xlen || memcmp(pseg, xseg, plen) != 0))
                        return false;
                if (r == 1 && param.rest)
                        return true; /* the rest of the path, empty or not */
                if (r == 1 && xlen == 0)
                        return false;
        }
        return !*pp && !*xp;
}

/* For a path of the pattern's shape: decode and check every parameter into *m. */
static int match_params(const char *pattern, const char *path, struct gv_http_route_match *m,
                        struct gv_error **err)
{
        if (strcmp(pattern, "/") == 0)
                return 0;

        const char *pp = pattern, *xp = path;
        while (*pp && *xp) {
                size_t plen, xlen;
                const char *pseg = next_segment(&pp, &plen);
                const char *xseg = next_segment(&xp, &xlen);
                struct pattern_param param;
                if (parse_param(pseg, plen, &param) != 1)
                        continue;
                if (m->n_params == GV_HTTP_MAX_PARAMS)
                        return gv_error_set(err, EINVAL, "route pattern '%s' has too many "
                                            "parameters.", pattern);
                char *v = NULL;
                if (param.rest) {
                        xlen = strlen(xseg);
                        xp = xseg + xlen;
                }
                int r = param_value(&param, xseg, xlen, &v, err);
                if (r < 0)
                        return r;
                struct gv_http_param *slot = &m->params[m->n_params++];
                memcpy(slot->name, param.name, param.name_len);
                slot->name[param.name_len] = '\0';
                slot->value = v;
        }
        return 0;
}

int gv_http_route_find(const struct gv_http_route *routes, size_t n, const char *method,
                       const char *path, struct gv_http_route_match *ret, struct gv_error **err)
{
        _cleanup_(gv_error_freep) struct gv_error *param_err = NULL;
        bool other_method = false;

        if (!method || !path || path[0] != '/')
                return gv_error_set(err, ENOENT, "There is no resource at '%s'.",
                                    path ? path : "");

        const char *want = strcmp(method, "HEAD") == 0 ? "GET" : method;
        for (size_t i = 0; i < n; i++) {
                const struct gv_http_route *rt = &routes[i];
                bool same_method = strcmp(rt->method, want) == 0 || strcmp(rt->method, method) == 0;
                if (!same_method) {
                        if (!other_method && shape_matches(rt->pattern, path))
                                other_method = true;
                        continue;
                }
                if (!shape_matches(rt->pattern, path))
                        continue;
                struct gv_http_route_match m = {};
                _cleanup_(gv_error_freep) struct gv_error *e = NULL;
                int r = match_params(rt->pattern, path, &m, &e);
                if (r >= 0) {
                        m.route = rt;
                        *ret = m;
                        return 0;
                }
                match_reset(&m);
                if (!param_err)
                        param_err = TAKE_PTR(e);
        }

        if (param_err) {
                int code = param_err->code;
                gv_error_propagate(err, TAKE_PTR(param_err));
                return -code;
        }
        if (other_method) {
                _cleanup_free_ char *allowed = gv_http_route_allowed(routes, n, path);
                return gv_error_set(err, EOPNOTSUPP,
                                    "Method '%s' is not allowed on '%s'; allowed: %s.", method,
                                    path, allowed ? allowed : "");
        }
        return gv_error_set(err, ENOENT, "There is no resource at '%s'.", path);
}

char *gv_http_route_allowed(const struct gv_http_route *routes, size_t n, const char *path)
{
        const char *seen[ELEMENTSOF(known_methods)];
        size_t n_seen = 0;

        if (!path || path[0] != '/')
                return NULL;
        for (size_t i = 0; i < n; i++) {
                if (!shape_matches(routes[i].pattern, path))
                        continue;
                const char *add[2] = { routes[i].method, NULL };
                if (strcmp(routes[i].method, "GET") == 0)
                        add[1] = "HEAD";
                for (size_t k = 0; k < 2 && add[k]; k++) {
                        bool dup = false;
                        for (size_t j = 0; j < n_seen; j++)
                                if (strcmp(seen[j], add[k]) == 0)
                                        dup = true;
                        if (!dup && n_seen < ELEMENTSOF(seen))
                                seen[n_seen++] = add[k];
                }
        }
        if (n_seen == 0)
                return NULL;

        size_t total = 1;
        for (size_t j = 0; j < n_seen; j++)
                total += strlen(seen[j]) + 2;
        char *s = xmalloc(total);
        s[0] = '\0';
        for (size_t j = 0; j < n_seen; j++) {
                if (j > 0)
                        strcat(s, ", ");
                strcat(s, seen[j]);
        }
        return s;
}
