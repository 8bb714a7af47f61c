/* SPDX-License-Identifier: MIT */
/*
 * migrate.c — live migration over QMP (migrate.h): checks of addresses and parameters, the
 * commands, and query-migrate parsed strictly (a member of the wrong type is a protocol error,
 * a member QEMU left out is "not reported").
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "util/alloc.h"
#include "util/enum-table.h"
#include "util/json.h"
#include "util/parse.h"
#include "vmm/migrate.h"

static const char *const status_table[_GV_MIGRATE_STATUS_MAX] = {
        [GV_MIGRATE_NONE] = "none",
        [GV_MIGRATE_SETUP] = "setup",
        [GV_MIGRATE_CANCELLING] = "cancelling",
        [GV_MIGRATE_CANCELLED] = "cancelled",
        [GV_MIGRATE_ACTIVE] = "active",
        [GV_MIGRATE_POSTCOPY_ACTIVE] = "postcopy-active",
        [GV_MIGRATE_POSTCOPY_PAUSED] = "postcopy-paused",
        [GV_MIGRATE_POSTCOPY_RECOVER] = "postcopy-recover",
        [GV_MIGRATE_COMPLETED] = "completed",
        [GV_MIGRATE_FAILED] = "failed",
        [GV_MIGRATE_COLO] = "colo",
        [GV_MIGRATE_PRE_SWITCHOVER] = "pre-switchover",
        [GV_MIGRATE_DEVICE] = "device",
        [GV_MIGRATE_WAIT_UNPLUG] = "wait-unplug",
};
DEFINE_STRING_TABLE_LOOKUP(gv_migrate_status, enum gv_migrate_status, status_table);

bool gv_migrate_status_is_final(enum gv_migrate_status s)
{
        return s == GV_MIGRATE_COMPLETED || s == GV_MIGRATE_FAILED || s == GV_MIGRATE_CANCELLED;
}

void gv_migrate_info_done(struct gv_migrate_info *i)
{
        if (!i)
                return;
        free(i->status_name);
        free(i->error_desc);
        free(i->listen_host);
        *i = (struct gv_migrate_info){ 0 };
}

/* ---- addresses ---- */

static bool is_dns_name(const char *s, size_t n)
{
        if (!n || n > 253 || s[0] == '.' || s[0] == '-' || s[n - 1] == '.' || s[n - 1] == '-')
                return false;
        for (size_t i = 0; i < n; i++) {
                char c = s[i];
                if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                      c == '.' || c == '-'))
                        return false;
                if (c == '.' && i + 1 < n && s[i + 1] == '.')
                        return false;
        }
        return true;
}

static bool is_ipv6_literal(const char *s, size_t n)
{
        size_t colons = 0;
        if (n < 2 || n > 45)
                return false;
        for (size_t i = 0; i < n; i++) {
                char c = s[i];
                if (c == ':')
                        colons++;
                else if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') ||
                           (c >= 'A' && c <= 'F') || c == '.'))
                        return false;
        }
        return colons >= 2;
}

int gv_migrate_address_parse(const char *address, bool allow_port0, char **ret_host,
                             uint16_t *ret_port, struct gv_error **err)
{
        const char *colon, *host;
        size_t host_len;
        uint16_t port;

        if (!address || !address[0])
                return gv_error_set(err, EINVAL, "The migration address is empty; give "
                                    "HOST:PORT, such as '192.0.2.7:49152'.");
        if (address[0] == '[') {
                const char *close = strchr(address, ']');
                if (!close || close[1] != ':' || !is_ipv6_literal(address + 1,
                                                                  (size_t)(close - address - 1)))
                        return gv_error_set(err, EINVAL, "Migration address '%s': a bracketed "
                                            "IPv6 address must be followed by ':PORT', such as "
                                            "'[2001:db8::7]:49152'.", address);
                host = address + 1;
                host_len = (size_t)(close - host);
                colon = close + 1;
        } else {
                colon = strrchr(address, ':');
                if (!colon)
                        return gv_error_set(err, EINVAL, "Migration address '%s' has no port; "
                                            "give HOST:PORT, such as '192.0.2.7:49152'.",
                                            address);
                host = address;
                host_len = (size_t)(colon - address);
                if (memchr(host, ':', host_len))
                        return gv_error_set(err, EINVAL, "Migration address '%s': put an IPv6 "
                                            "address in brackets, such as "
                                            "'[2001:db8::7]:49152'.", address);
                if (!is_dns_name(host, host_len))
                        return gv_error_set(err, EINVAL, "Migration address '%s': host '%.*s' "
                                            "is not an IPv4 address or a DNS name "
                                            "([A-Za-z0-9.-]).", address, (int)MIN(host_len, 300u),
                                            host);
        }
        if (gv_parse_u16(colon + 1, 10, &port) < 0 || (port == 0 && !allow_port0))
                return gv_error_set(err, EINVAL, "Migration address '%s': port '%s' is not a "
                                    "number from %d to 65535.", address, colon + 1,
                                    allow_port0 ? 0 : 1);
        if (ret_host)
                *ret_host = xstrndup(host, host_len);
        if (ret_port)
                *ret_port = port;
        return 0;
}

int gv_migrate_uri_parse(const char *uri, bool allow_port0, char **ret_host, uint16_t *ret_port,
                         struct gv_error **err)
{
        if (!uri || strncmp(uri, "tcp:", 4) != 0)
                return gv_error_set(err, EINVAL, "Migration URI '%s' is not supported: only "
                                    "'tcp:HOST:PORT' is (exec: would run a command as QEMU's "
                                    "user; unix: and fd: reach no other host).",
                                    uri ? uri : "");
        return gv_migrate_address_parse(uri + 4, allow_port0, ret_host, ret_port, err);
}

int gv_migrate_params_check(const struct gv_migrate_params *p, struct gv_error **err)
{
        if (p->postcopy)
                return gv_error_set(err, EOPNOTSUPP, "Post-copy migration is not offered: QEMU "
                                    "does not support it with VFIO devices (GPUs); migrations "
                                    "are pre-copy only.");
        if (p->downtime_limit_ms < 1 || p->downtime_limit_ms > GV_MIGRATE_DOWNTIME_MAX_MS)
                return gv_error_set(err, EINVAL, "downtime limit %" PRIu32 " ms is out of range: "
                                    "1 to %u ms.", p->downtime_limit_ms,
                                    GV_MIGRATE_DOWNTIME_MAX_MS);
        if (p->max_bandwidth < GV_MIGRATE_BANDWIDTH_MIN || p->max_bandwidth > INT64_MAX)
                return gv_error_set(err, EINVAL, "bandwidth cap %" PRIu64 " bytes/s is out of "
                                    "range: %u to %" PRId64 ".", p->max_bandwidth,
                                    GV_MIGRATE_BANDWIDTH_MIN, INT64_MAX);
        return 0;
}

/* ---- commands ---- */

int gv_migrate_set_capabilities(struct gv_qmp *q, int timeout_ms, struct gv_error **err)
{
        _cleanup_json_ json_t *args = json_pack(
                "{s:[{s:s, s:b}, {s:s, s:b}]}", "capabilities", "capability", "postcopy-ram",
                "state", 0, "capability", "events", "state", 1);
        int r = gv_qmp_execute(q, "migrate-set-capabilities", args, timeout_ms, NULL, err);
        return r < 0 ? gv_error_wrap(err, r, "Cannot set the migration capabilities") : 0;
}

int gv_migrate_setup(struct gv_qmp *q, const struct gv_migrate_params *p, int timeout_ms,
                     struct gv_error **err)
{
        int r = gv_migrate_params_check(p, err);
        if (r < 0)
                return r;
        r = gv_migrate_set_capabilities(q, timeout_ms, err);
        if (r < 0)
                return r;
        _cleanup_json_ json_t *caps = json_pack("{s:[{s:s, s:b}]}", "capabilities", "capability",
                                                "pause-before-switchover", "state",
                                                p->pause_before_switchover);
        r = gv_qmp_execute(q, "migrate-set-capabilities", caps, timeout_ms, NULL, err);
        if (r < 0)
                return gv_error_wrap(err, r, "Cannot %s the pause before the switch-over",
                                     p->pause_before_switchover ? "set" : "clear");
        _cleanup_json_ json_t *args = json_pack("{s:I, s:I}", "downtime-limit",
                                                (json_int_t)p->downtime_limit_ms, "max-bandwidth",
                                                (json_int_t)p->max_bandwidth);
        r = gv_qmp_execute(q, "migrate-set-parameters", args, timeout_ms, NULL, err);
        return r < 0 ? gv_error_wrap(err, r, "Cannot set the migration parameters") : 0;
}

int gv_migrate_get_params(struct gv_qmp *q, int timeout_ms, struct gv_migrate_params *ret,
                          struct gv_error **err)
{
        _cleanup_json_ json_t *j = NULL;
        int r = gv_qmp_execute(q, "query-migrate-parameters", NULL, timeout_ms, &j, err);
        if (r < 0)
                return r;
        json_t *dt = json_object_get(j, "downtime-limit");
        json_t *bw = json_object_get(j, "max-bandwidth");
        if (!json_is_integer(dt) || !json_is_integer(bw) || json_integer_value(dt) < 0 ||
            json_integer_value(dt) > (json_int_t)UINT32_MAX || json_integer_value(bw) < 0)
                return gv_error_set(err, EPROTO, "QEMU answered 'query-migrate-parameters' "
                                    "without integer 'downtime-limit' and 'max-bandwidth'.");
        *ret = (struct gv_migrate_params){ .downtime_limit_ms = (uint32_t)json_integer_value(dt),
                                           .max_bandwidth = (uint64_t)json_integer_value(bw) };
        return 0;
}

int gv_migrate_start(struct gv_qmp *q, const char *uri, int timeout_ms, struct gv_error **err)
{
        int r = gv_migrate_uri_parse(uri, false, NULL, NULL, err);
        if (r < 0)
                return r;
        _cleanup_json_ json_t *args = json_pack("{s:s}", "uri", uri);
        r = gv_qmp_execute(q, "migrate", args, timeout_ms, NULL, err);
        return r < 0 ? gv_error_wrap(err, r, "Cannot start the migration to '%s'", uri) : 0;
}

int gv_migrate_incoming(struct gv_qmp *q, const char *uri, int timeout_ms, char **ret_uri,
                        struct gv_error **err)
{
        _cleanup_(gv_error_freep) struct gv_error *e = NULL;
        _cleanup_(gv_migrate_info_done) struct gv_migrate_info info = { 0 };
        _cleanup_free_ char *host = NULL;
        uint16_t port = 0;
        int r = gv_migrate_uri_parse(uri, true, &host, &port, err);

        if (r < 0)
                return r;
        r = gv_migrate_set_capabilities(q, timeout_ms, err);
        if (r < 0)
                return r;
        _cleanup_json_ json_t *args = json_pack("{s:s}", "uri", uri);
        r = gv_qmp_execute(q, "migrate-incoming", args, timeout_ms, NULL, &e);
        if (r == -EREMOTEIO && e && strstr(e->msg, "Address already in use"))
                r = gv_error_set(err, EBUSY, "Cannot listen for the incoming migration on '%s': "
                                 "the port is in use; pick another, or port 0 for a free one.",
                                 uri);
        else if (r == -EREMOTEIO && e && strstr(e->msg, "Cannot assign requested address"))
                r = gv_error_set(err, EINVAL, "Cannot listen for the incoming migration on "
                                 "'%s': this host has no address '%s'.", uri, host);
        if (r < 0) {
                gv_error_propagate(err, TAKE_PTR(e));
                return gv_error_wrap(err, r, "Cannot listen for the incoming migration on '%s'",
                                     uri);
        }
        if (port == 0) {
                /* The kernel picked the port: QEMU says which in "socket-address". */
                r = gv_migrate_query(q, timeout_ms, &info, err);
                if (r < 0)
                        return r;
                if (!info.listen_port)
                        return gv_error_set(err, EPROTO, "QEMU listens for the incoming "
                                            "migration on '%s' but did not say on which port "
                                            "(no 'socket-address' in query-migrate).", uri);
                port = info.listen_port;
        }
        /* The host as asked (QEMU may answer a resolved one); brackets back around IPv6. */
        *ret_uri = strchr(host, ':') ? xasprintf("tcp:[%s]:%u", host, port)
                                     : xasprintf("tcp:%s:%u", host, port);
        return 0;
}

int gv_migrate_continue(struct gv_qmp *q, int timeout_ms, struct gv_error **err)
{
        _cleanup_json_ json_t *args = json_pack("{s:s}", "state", "pre-switchover");
        int r = gv_qmp_execute(q, "migrate-continue", args, timeout_ms, NULL, err);
        return r < 0 ? gv_error_wrap(err, r, "Cannot go on with the switch-over") : 0;
}

int gv_migrate_cancel(struct gv_qmp *q, int timeout_ms, struct gv_error **err)
{
        int r = gv_qmp_execute(q, "migrate_cancel", NULL, timeout_ms, NULL, err);
        return r < 0 ? gv_error_wrap(err, r, "Cannot cancel the migration") : 0;
}

/* ---- query-migrate ---- */

static int get_u64(const json_t *o, const char *ctx, const char *key, bool *present,
                   uint64_t *ret, struct gv_error **err)
{
        json_t *v = json_object_get(o, key);
        if (!v)
                return 0;
        if (!json_is_integer(v) || json_integer_value(v) < 0)
                return gv_error_set(err, EPROTO, "QEMU's query-migrate has '%s%s' that is not a "
                                    "non-negative integer.", ctx, key);
        *ret = (uint64_t)json_integer_value(v);
        if (present)
                *present = true;
        return 0;
}

static int get_ms(const json_t *o, const char *key, int64_t *ret, struct gv_error **err)
{
        uint64_t v = 0;
        bool present = false;
        int r = get_u64(o, "", key, &present, &v, err);
        if (r < 0)
                return r;
        *ret = present && v <= INT64_MAX ? (int64_t)v : -1;
        return 0;
}

static int parse_listen(const json_t *j, struct gv_migrate_info *i, struct gv_error **err)
{
        json_t *l = json_object_get(j, "socket-address"), *a;
        size_t k;

        if (!l)
                return 0;
        if (!json_is_array(l))
                return gv_error_set(err, EPROTO, "QEMU's query-migrate has a 'socket-address' "
                                    "that is not a list.");
        json_array_foreach(l, k, a) {
                const char *type = json_string_value(json_object_get(a, "type"));
                const char *host = json_string_value(json_object_get(a, "host"));
                const char *port = json_string_value(json_object_get(a, "port"));
                uint16_t p;
                if (!type || strcmp(type, "inet") != 0 || !host || !port)
                        continue;
                if (gv_parse_u16(port, 10, &p) < 0 || p == 0)
                        return gv_error_set(err, EPROTO, "QEMU's query-migrate lists port '%s', "
                                            "not a TCP port.", port);
                i->listen_host = xstrdup(host);
                i->listen_port = p;
                return 0;
        }
        return 0;
}

int gv_migrate_info_from_json(const json_t *j, struct gv_migrate_info *ret,
                              struct gv_error **err)
{
        _cleanup_(gv_migrate_info_done) struct gv_migrate_info i = { 0 };
        json_t *st, *ram, *vfio, *ed, *mbps;
        int r = 0;

        if (!json_is_object(j))
                return gv_error_set(err, EPROTO, "QEMU's query-migrate answer is not an object.");
        st = json_object_get(j, "status");
        if (st && !json_is_string(st))
                return gv_error_set(err, EPROTO, "QEMU's query-migrate has a 'status' that is "
                                    "not a string.");
        /* No status: no migration has run in this QEMU (QEMU answers {}). */
        i.status_name = xstrdup(st ? json_string_value(st) : "none");
        i.status = gv_migrate_status_from_string(i.status_name);
        i.setup_time_ms = i.total_time_ms = i.expected_downtime_ms = i.downtime_ms = -1;
        r = get_ms(j, "setup-time", &i.setup_time_ms, err);
        if (r >= 0)
                r = get_ms(j, "total-time", &i.total_time_ms, err);
        if (r >= 0)
                r = get_ms(j, "expected-downtime", &i.expected_downtime_ms, err);
        if (r >= 0)
                r = get_ms(j, "downtime", &i.downtime_ms, err);
        if (r < 0)
                return r;
        ram = json_object_get(j, "ram");
        if (ram) {
                if (!json_is_object(ram))
                        return gv_error_set(err, EPROTO, "QEMU's query-migrate has a 'ram' that "
                                            "is not an object.");
                i.has_ram = true;
                r = get_u64(ram, "ram.", "total", NULL, &i.ram_total, err);
                if (r >= 0)
                        r = get_u64(ram, "ram.", "transferred", NULL, &i.ram_transferred, err);
                if (r >= 0)
                        r = get_u64(ram, "ram.", "remaining", NULL, &i.ram_remaining, err);
                if (r >= 0)
                        r = get_u64(ram, "ram.", "dirty-pages-rate", NULL,
                                    &i.ram_dirty_pages_rate, err);
                if (r >= 0)
                        r = get_u64(ram, "ram.", "dirty-sync-count", NULL,
                                    &i.ram_dirty_sync_count, err);
                if (r < 0)
                        return r;
                mbps = json_object_get(ram, "mbps");
                if (mbps && !json_is_number(mbps))
                        return gv_error_set(err, EPROTO, "QEMU's query-migrate has a 'ram.mbps' "
                                            "that is not a number.");
                i.ram_mbps = mbps ? json_number_value(mbps) : 0;
        }
        vfio = json_object_get(j, "vfio");
        if (vfio) {
                if (!json_is_object(vfio))
                        return gv_error_set(err, EPROTO, "QEMU's query-migrate has a 'vfio' that "
                                            "is not an object.");
                r = get_u64(vfio, "vfio.", "transferred", &i.has_device, &i.device_transferred,
                            err);
                if (r < 0)
                        return r;
        }
        ed = json_object_get(j, "error-desc");
        if (ed && !json_is_string(ed))
                return gv_error_set(err, EPROTO, "QEMU's query-migrate has an 'error-desc' that "
                                    "is not a string.");
        if (ed)
                i.error_desc = xstrdup(json_string_value(ed));
        r = parse_listen(j, &i, err);
        if (r < 0)
                return r;
        *ret = i;
        i = (struct gv_migrate_info){ 0 };
        return 0;
}

int gv_migrate_query(struct gv_qmp *q, int timeout_ms, struct gv_migrate_info *ret,
                     struct gv_error **err)
{
        _cleanup_json_ json_t *j = NULL;
        int r = gv_qmp_execute(q, "query-migrate", NULL, timeout_ms, &j, err);
        if (r < 0)
                return r;
        return gv_migrate_info_from_json(j, ret, err);
}

static json_t *ms_or_null(int64_t v)
{
        return v >= 0 ? json_integer(v) : json_null();
}

json_t *gv_migrate_info_to_json(const struct gv_migrate_info *i)
{
        json_t *o = json_object();

        json_object_set_new(o, "status", json_string(i->status_name ? i->status_name : "none"));
        json_object_set_new(o, "ram_total", i->has_ram ? json_integer((json_int_t)i->ram_total)
                                                       : json_null());
        json_object_set_new(o, "ram_transferred",
                            i->has_ram ? json_integer((json_int_t)i->ram_transferred)
                                       : json_null());
        json_object_set_new(o, "ram_remaining",
                            i->has_ram ? json_integer((json_int_t)i->ram_remaining)
                                       : json_null());
        json_object_set_new(o, "mbps", i->has_ram ? json_real(i->ram_mbps) : json_null());
        json_object_set_new(o, "dirty_pages_rate",
                            i->has_ram ? json_integer((json_int_t)i->ram_dirty_pages_rate)
                                       : json_null());
        json_object_set_new(o, "dirty_sync_count",
                            i->has_ram ? json_integer((json_int_t)i->ram_dirty_sync_count)
                                       : json_null());
        json_object_set_new(o, "device_transferred",
                            i->has_device ? json_integer((json_int_t)i->device_transferred)
                                          : json_null());
        json_object_set_new(o, "setup_time_ms", ms_or_null(i->setup_time_ms));
        json_object_set_new(o, "total_time_ms", ms_or_null(i->total_time_ms));
        json_object_set_new(o, "expected_downtime_ms", ms_or_null(i->expected_downtime_ms));
        json_object_set_new(o, "downtime_ms", ms_or_null(i->downtime_ms));
        json_object_set_new(o, "error", i->error_desc ? json_string(i->error_desc) : json_null());
        return o;
}
