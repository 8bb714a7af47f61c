/* SPDX-License-Identifier: MIT */
/*
 * audit.c — the audit log (controller.h, docs/audit.md): one record per request that asked for
 * a change, allowed or denied (reliability.md R21; Kubernetes auditing [S42] at its "Metadata"
 * level, one stage: the record is written once the answer is known).
 *
 * Records live in the store's audit table (store.h), which numbers them and keeps their time
 * non-decreasing. Strings from the request are made safe before they are stored: invalid UTF-8
 * and control characters become U+FFFD, and each field is capped, so no request can make its
 * own record unwritable or unbounded. A failed write is counted (an atomic, for health and
 * /metrics), logged as an error, told as an "audit.write-failed" event (best effort: the store
 * may be what failed) and returned to the caller.
 *
 * Retention: records older than cfg.audit_retention_days are dropped by the append that finds
 * the trim due (the first after start, then every AUDIT_TRIM_EVERY), in bounded batches so the
 * request that pays for it waits a bounded time; what is left goes at the next one.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "controller/controller-internal.h"
#include "controller/metrics.h"
#include "util/alloc.h"
#include "util/json.h"
#include "util/log.h"
#include "util/parse.h"

#define AUDIT_TRIM_EVERY 1024
#define AUDIT_TRIM_BATCH 5000
#define AUDIT_TRIM_MAX_BATCHES 20
#define AUDIT_RETENTION_DEFAULT_DAYS 90
#define AUDIT_FIELD_MAX 256      /* bytes of a name, id, source or object */
#define AUDIT_LONG_FIELD_MAX 2048 /* bytes of a path or a detail */
#define AUDIT_QUERY_LIMIT_DEFAULT 100
#define AUDIT_QUERY_LIMIT_MAX 1000
#define MS_PER_DAY (24LL * 3600 * 1000)

/* ---- making request strings safe to store ---- */

/* The length of the valid UTF-8 sequence at s (at most n bytes), 0 when invalid (RFC 3629:
 * no overlongs, no surrogates, nothing above U+10FFFF). */
static size_t utf8_len(const unsigned char *s, size_t n)
{
        unsigned char c = s[0];
        size_t len;
        uint32_t cp;
        if (c < 0x80)
                return 1;
        if (c >= 0xc2 && c <= 0xdf) {
                len = 2;
                cp = c & 0x1f;
        } else if (c >= 0xe0 && c <= 0xef) {
                len = 3;
                cp = c & 0x0f;
        } else if (c >= 0xf0 && c <= 0xf4) {
                len = 4;
                cp = c & 0x07;
        } else
                return 0;
        if (len > n)
                return 0;
        for (size_t i = 1; i < len; i++) {
                if ((s[i] & 0xc0) != 0x80)
                        return 0;
                cp = (cp << 6) | (s[i] & 0x3f);
        }
        if ((len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) || cp > 0x10ffff ||
            (cp >= 0xd800 && cp <= 0xdfff))
                return 0;
        return len;
}

/* s as valid UTF-8 without control characters (each bad byte or control character becomes
 * U+FFFD), cut at a character boundary to at most max bytes (max >= 8) ending in "…" when cut.
 * NULL stays NULL. */
static char *audit_clean(const char *s, size_t max)
{
        static const char repl[] = "\xef\xbf\xbd", ellipsis[] = "\xe2\x80\xa6";
        if (!s)
                return NULL;
        size_t n = strlen(s), o = 0;
        /* Enough for what is kept: at most max + one character (4 bytes) past it. */
        char *out = xmalloc(max + 8);
        for (size_t i = 0; i < n && o <= max;) {
                const unsigned char *p = (const unsigned char *)s + i;
                size_t len = utf8_len(p, n - i);
                if (len == 0 || (len == 1 && (*p < 0x20 || *p == 0x7f))) {
                        memcpy(out + o, repl, 3);
                        o += 3;
                        i++;
                } else {
                        memcpy(out + o, p, len);
                        o += len;
                        i += len;
                }
        }
        if (o > max) {
                size_t cut = max - (sizeof(ellipsis) - 1);
                while (cut > 0 && ((unsigned char)out[cut] & 0xc0) == 0x80)
                        cut--;
                memcpy(out + cut, ellipsis, sizeof(ellipsis) - 1);
                o = cut + sizeof(ellipsis) - 1;
        }
        out[o] = 0;
        return out;
}

/* ---- writing ---- */

static const char *outcome_of(unsigned status)
{
        if (status == 401 || status == 403 || status == 429)
                return "denied";
        if (status >= 100 && status < 400)
                return "allowed";
        return "failed";
}

static json_t *audit_record(const struct gv_audit_entry *a)
{
        static const struct {
                const char *key;
                size_t off;
                size_t max;
        } fields[] = {
                { "principal", offsetof(struct gv_audit_entry, principal), AUDIT_FIELD_MAX },
                { "token_id", offsetof(struct gv_audit_entry, token_id), AUDIT_FIELD_MAX },
                { "role", offsetof(struct gv_audit_entry, role), AUDIT_FIELD_MAX },
                { "tenant", offsetof(struct gv_audit_entry, tenant), AUDIT_FIELD_MAX },
                { "source", offsetof(struct gv_audit_entry, source), AUDIT_FIELD_MAX },
                { "method", offsetof(struct gv_audit_entry, method), AUDIT_FIELD_MAX },
                { "path", offsetof(struct gv_audit_entry, path), AUDIT_LONG_FIELD_MAX },
                { "object", offsetof(struct gv_audit_entry, object), AUDIT_FIELD_MAX },
                { "request_id", offsetof(struct gv_audit_entry, request_id), AUDIT_FIELD_MAX },
                { "operation_id", offsetof(struct gv_audit_entry, operation_id),
                  AUDIT_FIELD_MAX },
                { "detail", offsetof(struct gv_audit_entry, detail), AUDIT_LONG_FIELD_MAX },
        };
        json_t *rec = json_object();
        for (size_t i = 0; i < ELEMENTSOF(fields); i++) {
                const char *v = *(const char *const *)((const char *)a + fields[i].off);
                char *clean = audit_clean(v, fields[i].max);
                json_object_set_new(rec, fields[i].key, clean ? json_string(clean) : json_null());
                free(clean);
        }
        json_object_set_new(rec, "status", json_integer(a->status));
        json_object_set_new(rec, "outcome", json_string(outcome_of(a->status)));
        return rec;
}

static void audit_trim_due(struct gv_controller *c)
{
        int days = c->cfg.audit_retention_days;
        if (days == 0)
                days = AUDIT_RETENTION_DEFAULT_DAYS;
        if (days < 0)
                return; /* kept forever */
        _cleanup_(gv_error_freep) struct gv_error *e = NULL;
        size_t n = 0;
        int r = gv_store_audit_trim(c->store, gv_ctl_now_ms() - days * MS_PER_DAY,
                                    AUDIT_TRIM_BATCH, AUDIT_TRIM_MAX_BATCHES, &n, &e);
        if (r < 0)
                log_warning("audit: cannot drop the records older than %d days: %s", days,
                            gv_error_msg(e, r));
        else if (n > 0)
                log_info("audit: dropped %zu records older than %d days", n, days);
}

int gv_controller_audit(struct gv_controller *c, const struct gv_audit_entry *a,
                        struct gv_error **err)
{
        _cleanup_json_ json_t *rec = audit_record(a);
        _cleanup_(gv_error_freep) struct gv_error *e = NULL;
        int r = gv_store_audit_append(c->store, rec, gv_ctl_now_ms(), NULL, NULL, &e);
        if (r >= 0) {
                __atomic_add_fetch(&c->audit_records, 1, __ATOMIC_RELAXED);
                uint64_t n = __atomic_add_fetch(&c->audit_appends, 1, __ATOMIC_RELAXED);
                if (n == 1 || n % AUDIT_TRIM_EVERY == 0)
                        audit_trim_due(c);
                return 0;
        }

        __atomic_add_fetch(&c->audit_failures, 1, __ATOMIC_RELAXED);
        const char *principal = json_string_value(json_object_get(rec, "principal"));
        const char *source = json_string_value(json_object_get(rec, "source"));
        const char *method = json_string_value(json_object_get(rec, "method"));
        const char *path = json_string_value(json_object_get(rec, "path"));
        const char *msg = gv_error_msg(e, r);
        log_error("audit: cannot record %s %s by %s from %s (status %u, %s): %s",
                  method ? method : "?", path ? path : "?", principal ? principal : "?",
                  source ? source : "?", a->status, outcome_of(a->status), msg);
        json_t *data = json_deep_copy(rec);
        json_object_set_new(data, "error", json_string(msg));
        gv_ctl_event(c, "audit.write-failed", "audit", data);
        return gv_error_set(err, -r, "The audit record of %s %s (status %u) could not be "
                            "written: %s", method ? method : "?", path ? path : "?", a->status,
                            msg);
}

uint64_t gv_controller_audit_failures(struct gv_controller *c)
{
        return __atomic_load_n(&c->audit_failures, __ATOMIC_RELAXED);
}

void gv_ctl_audit_prometheus(struct gv_controller *c, struct gv_prom *p)
{
        gv_prom_family(p, "gpuvirt_audit_records_total", "counter",
                       "Audit records written since the controller started.");
        gv_prom_sample(p, "gpuvirt_audit_records_total", NULL, 0,
                       (double)__atomic_load_n(&c->audit_records, __ATOMIC_RELAXED));
        gv_prom_family(p, "gpuvirt_audit_write_failures_total", "counter",
                       "Audit records that could not be written since the controller started "
                       "(each also logged and told as an audit.write-failed event).");
        gv_prom_sample(p, "gpuvirt_audit_write_failures_total", NULL, 0,
                       (double)gv_controller_audit_failures(c));
}

/* ---- querying ---- */

static bool all_digits(const char *s, size_t n)
{
        for (size_t i = 0; i < n; i++)
                if (s[i] < '0' || s[i] > '9')
                        return false;
        return n > 0;
}

static int digits(const char *s, size_t n)
{
        int v = 0;
        for (size_t i = 0; i < n; i++)
                v = v * 10 + (s[i] - '0');
        return v;
}

static int days_in_month(int y, int m)
{
        static const int d[] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
        bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
        return m == 2 && leap ? 29 : d[m - 1];
}

/* RFC 3339 date-time: YYYY-MM-DDTHH:MM:SS[.frac](Z|+HH:MM|-HH:MM), 'T' and 'Z' in either
 * case; a leap second (:60) counts as :59.999. → ms since the epoch. */
static int parse_rfc3339(const char *s, int64_t *ret)
{
        size_t n = strlen(s);
        if (n < 20 || !all_digits(s, 4) || s[4] != '-' || !all_digits(s + 5, 2) || s[7] != '-' ||
            !all_digits(s + 8, 2) || (s[10] != 'T' && s[10] != 't') || !all_digits(s + 11, 2) ||
            s[13] != ':' || !all_digits(s + 14, 2) || s[16] != ':' || !all_digits(s + 17, 2))
                return -EINVAL;
        int y = digits(s, 4), mo = digits(s + 5, 2), d = digits(s + 8, 2);
        int h = digits(s + 11, 2), mi = digits(s + 14, 2), sec = digits(s + 17, 2);
        if (y < 1970 || mo < 1 || mo > 12 || d < 1 || d > days_in_month(y, mo) || h > 23 ||
            mi > 59 || sec > 60)
                return -EINVAL;
        const char *p = s + 19;
        int ms = 0;
        if (*p == '.') {
                size_t k = 1;
                while (p[k] >= '0' && p[k] <= '9')
                        k++;
                if (k == 1)
                        return -EINVAL;
                for (size_t i = 1; i <= 3; i++)
                        ms = ms * 10 + (i < k ? p[i] - '0' : 0);
                p += k;
        }
        if (sec == 60) {
                sec = 59;
                ms = 999;
        }
        int off_min = 0;
        if ((p[0] == 'Z' || p[0] == 'z') && !p[1]) {
                off_min = 0;
        } else if ((p[0] == '+' || p[0] == '-') && strlen(p) == 6 && all_digits(p + 1, 2) &&
                   p[3] == ':' && all_digits(p + 4, 2)) {
                int oh = digits(p + 1, 2), om = digits(p + 4, 2);
                if (oh > 23 || om > 59)
                        return -EINVAL;
                off_min = (p[0] == '+' ? 1 : -1) * (oh * 60 + om);
        } else
                return -EINVAL;
        struct tm tm = { .tm_year = y - 1900, .tm_mon = mo - 1, .tm_mday = d, .tm_hour = h,
                         .tm_min = mi, .tm_sec = sec };
        time_t t = timegm(&tm);
        if (t == (time_t)-1)
                return -EINVAL;
        int64_t v = ((int64_t)t - (int64_t)off_min * 60) * 1000 + ms;
        if (v < 0)
                return -EINVAL;
        *ret = v;
        return 0;
}

/* A query member's value as text: a string, or an integer given by a C caller. */
static int member_text(const char *key, const json_t *v, char *buf, size_t n, const char **ret,
                       struct gv_error **err)
{
        if (json_is_string(v)) {
                *ret = json_string_value(v);
                return 0;
        }
        if (json_is_integer(v)) {
                snprintf(buf, n, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
                *ret = buf;
                return 0;
        }
        return gv_error_set(err, EINVAL, "The audit query's '%s' must be a string.", key);
}

static int parse_time(const char *key, const char *s, int64_t *ret, struct gv_error **err)
{
        int64_t v = 0;
        if (all_digits(s, strlen(s)) ? gv_parse_i64(s, &v) : parse_rfc3339(s, &v))
                return gv_error_set(err, EINVAL, "The audit query's '%s' is '%s': give an RFC "
                                    "3339 time such as '2026-01-02T15:04:05Z' (or with an "
                                    "offset, '+01:00'), or milliseconds since the epoch.", key,
                                    s);
        *ret = v;
        return 0;
}

static int parse_query(const json_t *query, struct gv_store_audit_query *q,
                       struct gv_error **err)
{
        static const char *const members = "since, until, principal, tenant, object, outcome, "
                                           "method, limit, after";
        *q = (struct gv_store_audit_query){ .limit = AUDIT_QUERY_LIMIT_DEFAULT };
        if (!query)
                return 0;
        if (!json_is_object(query))
                return gv_error_set(err, EINVAL, "The audit query must be an object of "
                                    "parameters (%s).", members);
        const char *key;
        json_t *v;
        json_object_foreach((json_t *)query, key, v) {
                char buf[32];
                const char *s = NULL;
                int r = member_text(key, v, buf, sizeof(buf), &s, err);
                if (r < 0)
                        return r;
                if (!strcmp(key, "since") || !strcmp(key, "until")) {
                        r = parse_time(key, s, key[0] == 's' ? &q->since_ms : &q->until_ms, err);
                        if (r < 0)
                                return r;
                } else if (!strcmp(key, "principal") || !strcmp(key, "tenant") ||
                           !strcmp(key, "object")) {
                        if (!*s || strlen(s) > AUDIT_FIELD_MAX)
                                return gv_error_set(err, EINVAL, "The audit query's '%s' must "
                                                    "be 1 to %d bytes (an exact match, e.g. "
                                                    "%s).", key, AUDIT_FIELD_MAX,
                                                    key[0] == 'p' ? "'token:ops'"
                                                    : key[0] == 't' ? "'acme'" : "'vm/web-1'");
                        if (key[0] == 'p')
                                q->principal = s;
                        else if (key[0] == 't')
                                q->tenant = s;
                        else
                                q->object = s;
                } else if (!strcmp(key, "outcome")) {
                        if (strcmp(s, "allowed") && strcmp(s, "denied") && strcmp(s, "failed"))
                                return gv_error_set(err, EINVAL, "The audit query's outcome "
                                                    "'%s' is not one of: allowed, denied, "
                                                    "failed.", s);
                        q->outcome = s;
                } else if (!strcmp(key, "method")) {
                        static const char *const methods[] = { "POST", "PUT", "DELETE",
                                                               "PATCH" };
                        q->method = NULL;
                        for (size_t i = 0; i < ELEMENTSOF(methods); i++)
                                if (!strcasecmp(s, methods[i]))
                                        q->method = methods[i];
                        if (!q->method)
                                return gv_error_set(err, EINVAL, "The audit query's method "
                                                    "'%s' is not one of: POST, PUT, DELETE, "
                                                    "PATCH (only changes are audited).", s);
                } else if (!strcmp(key, "limit")) {
                        uint32_t l = 0;
                        if (gv_parse_u32(s, 10, &l) < 0 || l < 1 || l > AUDIT_QUERY_LIMIT_MAX)
                                return gv_error_set(err, EINVAL, "The audit query's limit '%s' "
                                                    "is not 1 to %d.", s,
                                                    AUDIT_QUERY_LIMIT_MAX);
                        q->limit = l;
                } else if (!strcmp(key, "after")) {
                        int64_t a = 0;
                        if (!all_digits(s, strlen(s)) || gv_parse_i64(s, &a) < 0 || a < 1)
                                return gv_error_set(err, EINVAL, "The audit query's after '%s' "
                                                    "is not a cursor: give the 'next' of the "
                                                    "previous page.", s);
                        q->before_seq = a;
                } else
                        return gv_error_set(err, EINVAL, "The audit query has an unknown "
                                            "parameter '%s': valid are %s.", key, members);
        }
        if (q->since_ms && q->until_ms && q->since_ms > q->until_ms)
                return gv_error_set(err, EINVAL, "The audit query's since is after its until: "
                                    "give since <= until.");
        return 0;
}

int gv_controller_audit_query(struct gv_controller *c, const json_t *query, json_t **ret,
                              struct gv_error **err)
{
        struct gv_store_audit_query q;
        int r = parse_query(query, &q, err);
        if (r < 0)
                return r;
        /* One more than asked: whether there is a next page. */
        size_t want = q.limit;
        q.limit = want + 1;
        json_t *records = NULL;
        r = gv_store_audit_query(c->store, &q, &records, err);
        if (r < 0)
                return r;
        json_t *next = json_null();
        if (json_array_size(records) > want) {
                json_array_remove(records, want);
                json_int_t last = json_integer_value(
                        json_object_get(json_array_get(records, want - 1), "seq"));
                json_decref(next);
                next = json_sprintf("%" JSON_INTEGER_FORMAT, last);
        }
        *ret = json_pack("{s:o, s:o}", "records", records, "next", next);
        return 0;
}
