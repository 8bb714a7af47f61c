/* SPDX-License-Identifier: MIT */
#include "parse.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>

#include "macro.h"

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

/* Accept the string up to an optional single trailing '\n'. */
static size_t value_len(const char *s)
{
        size_t n = strlen(s);
        if (n > 0 && s[n - 1] == '\n')
                n--;
        return n;
}

int gv_parse_u64(const char *s, unsigned base, uint64_t *ret)
{
        if (!s)
                return -EINVAL;
        size_t n = value_len(s), i = 0;
        if (n == 0)
                return -EINVAL;
        if (base != 0 && base != 10 && base != 16)
                return -EINVAL;
        if ((base == 0 || base == 16) && n > 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
                base = 16;
                i = 2;
        } else if (base == 0)
                base = 10;
        if (i == n)
                return -EINVAL;

        uint64_t v = 0;
        for (; i < n; i++) {
                int d = hexval(s[i]);
                if (d < 0 || (unsigned)d >= base)
                        return -EINVAL;
                if (v > (UINT64_MAX - (uint64_t)d) / base)
                        return -ERANGE;
                v = v * base + (uint64_t)d;
        }
        *ret = v;
        return 0;
}

#define DEFINE_PARSE_UNSIGNED(name, type, max)                          \
        int name(const char *s, unsigned base, type *ret)               \
        {                                                               \
                uint64_t v;                                             \
                int r = gv_parse_u64(s, base, &v);                      \
                if (r < 0)                                              \
                        return r;                                       \
                if (v > (max))                                          \
                        return -ERANGE;                                 \
                *ret = (type)v;                                         \
                return 0;                                               \
        }
DEFINE_PARSE_UNSIGNED(gv_parse_u32, uint32_t, UINT32_MAX)
DEFINE_PARSE_UNSIGNED(gv_parse_u16, uint16_t, UINT16_MAX)
DEFINE_PARSE_UNSIGNED(gv_parse_u8, uint8_t, UINT8_MAX)

int gv_parse_i64(const char *s, int64_t *ret)
{
        if (!s)
                return -EINVAL;
        bool neg = s[0] == '-';
        uint64_t v;
        int r = gv_parse_u64(s + (neg || s[0] == '+'), 10, &v);
        if (r < 0)
                return r;
        if (neg) {
                if (v > (uint64_t)INT64_MAX + 1)
                        return -ERANGE;
                *ret = v == (uint64_t)INT64_MAX + 1 ? INT64_MIN : -(int64_t)v;
        } else {
                if (v > INT64_MAX)
                        return -ERANGE;
                *ret = (int64_t)v;
        }
        return 0;
}

int gv_parse_int(const char *s, int *ret)
{
        int64_t v;
        int r = gv_parse_i64(s, &v);
        if (r < 0)
                return r;
        if (v < INT32_MIN || v > INT32_MAX)
                return -ERANGE;
        *ret = (int)v;
        return 0;
}

int gv_parse_bool(const char *s, bool *ret)
{
        static const char *const yes[] = { "1", "yes", "true", "on", "y" };
        static const char *const no[] = { "0", "no", "false", "off", "n" };
        if (!s)
                return -EINVAL;
        size_t n = value_len(s);
        for (size_t i = 0; i < ELEMENTSOF(yes); i++)
                if (strlen(yes[i]) == n && strncasecmp(s, yes[i], n) == 0) {
                        *ret = true;
                        return 0;
                }
        for (size_t i = 0; i < ELEMENTSOF(no); i++)
                if (strlen(no[i]) == n && strncasecmp(s, no[i], n) == 0) {
                        *ret = false;
                        return 0;
                }
        return -EINVAL;
}

int gv_parse_size(const char *s, uint64_t *ret_bytes)
{
        static const struct {
                const char *suffix;
                unsigned shift;
        } suffixes[] = {
                { "KiB", 10 }, { "MiB", 20 }, { "GiB", 30 }, { "TiB", 40 },
                { "K", 10 },   { "M", 20 },   { "G", 30 },   { "T", 40 }, { "B", 0 },
        };
        if (!s || !*s)
                return -EINVAL;
        size_t n = value_len(s), digits = 0;
        while (digits < n && isdigit((unsigned char)s[digits]))
                digits++;
        if (digits == 0 || digits > 20)
                return -EINVAL;
        char num[21];
        memcpy(num, s, digits);
        num[digits] = 0;
        uint64_t v;
        int r = gv_parse_u64(num, 10, &v);
        if (r < 0)
                return r;
        const char *suf = s + digits;
        size_t suflen = n - digits;
        unsigned shift = 0;
        if (suflen > 0) {
                bool found = false;
                for (size_t i = 0; i < ELEMENTSOF(suffixes); i++)
                        if (strlen(suffixes[i].suffix) == suflen &&
                            strncasecmp(suf, suffixes[i].suffix, suflen) == 0) {
                                shift = suffixes[i].shift;
                                found = true;
                                break;
                        }
                if (!found)
                        return -EINVAL;
        }
        if (shift && v > (UINT64_MAX >> shift))
                return -ERANGE;
        *ret_bytes = v << shift;
        return 0;
}

int gv_parse_uuid(const char *s, struct gv_uuid *ret)
{
        static const size_t dash[] = { 8, 13, 18, 23 };
        struct gv_uuid u;
        if (!s || value_len(s) != GV_UUID_STR_LEN)
                return -EINVAL;
        size_t j = 0, k = 0;
        for (size_t i = 0; i < GV_UUID_STR_LEN; i++) {
                if (k < ELEMENTSOF(dash) && i == dash[k]) {
                        if (s[i] != '-')
                                return -EINVAL;
                        k++;
                        continue;
                }
                int hi = hexval(s[i]), lo = hexval(s[i + 1]);
                if (hi < 0 || lo < 0)
                        return -EINVAL;
                u.b[j++] = (uint8_t)(hi << 4 | lo);
                i++;
        }
        *ret = u;
        return 0;
}

char *gv_uuid_format(const struct gv_uuid *u, char *buf)
{
        const uint8_t *b = u->b;
        snprintf(buf, GV_UUID_STR_LEN + 1,
                 "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x",
                 b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12],
                 b[13], b[14], b[15]);
        return buf;
}

int gv_uuid_random(struct gv_uuid *ret)
{
        struct gv_uuid u;
        ssize_t n = getrandom(u.b, sizeof(u.b), 0);
        if (n != (ssize_t)sizeof(u.b))
                return n < 0 ? -errno : -EIO;
        u.b[6] = (uint8_t)((u.b[6] & 0x0f) | 0x40);
        u.b[8] = (uint8_t)((u.b[8] & 0x3f) | 0x80);
        *ret = u;
        return 0;
}

bool gv_uuid_is_null(const struct gv_uuid *u)
{
        for (size_t i = 0; i < sizeof(u->b); i++)
                if (u->b[i])
                        return false;
        return true;
}

/* Parse exactly `len` hex digits (1..max) from s into v. */
static int parse_hex_field(const char *s, size_t len, size_t max, uint32_t *v)
{
        if (len == 0 || len > max)
                return -EINVAL;
        uint32_t x = 0;
        for (size_t i = 0; i < len; i++) {
                int d = hexval(s[i]);
                if (d < 0)
                        return -EINVAL;
                x = x << 4 | (uint32_t)d;
        }
        *v = x;
        return 0;
}

int gv_parse_pci_addr(const char *s, struct gv_pci_addr *ret)
{
        if (!s)
                return -EINVAL;
        size_t n = value_len(s);
        const char *c1 = memchr(s, ':', n);
        if (!c1)
                return -EINVAL;
        const char *c2 = memchr(c1 + 1, ':', n - (size_t)(c1 + 1 - s));
        const char *dot = memchr(s, '.', n);
        if (!dot)
                return -EINVAL;
        uint32_t dom = 0, bus, slot, fn;
        const char *bus_s;
        if (c2) {
                if (parse_hex_field(s, (size_t)(c1 - s), 8, &dom) < 0)
                        return -EINVAL;
                bus_s = c1 + 1;
                c1 = c2;
        } else
                bus_s = s;
        if (dot < c1)
                return -EINVAL;
        if (parse_hex_field(bus_s, (size_t)(c1 - bus_s), 2, &bus) < 0 ||
            parse_hex_field(c1 + 1, (size_t)(dot - c1 - 1), 2, &slot) < 0 ||
            parse_hex_field(dot + 1, n - (size_t)(dot + 1 - s), 1, &fn) < 0)
                return -EINVAL;
        if (slot > 0x1f || fn > 7)
                return -ERANGE;
        *ret = (struct gv_pci_addr){ .domain = dom, .bus = (uint8_t)bus, .slot = (uint8_t)slot,
                                     .function = (uint8_t)fn };
        return 0;
}

char *gv_pci_addr_format(const struct gv_pci_addr *a, char *buf)
{
        snprintf(buf, GV_PCI_ADDR_STR_MAX, "%04x:%02x:%02x.%x", a->domain, a->bus, a->slot,
                 a->function);
        return buf;
}

int gv_pci_addr_compare(const struct gv_pci_addr *a, const struct gv_pci_addr *b)
{
        if (a->domain != b->domain)
                return a->domain < b->domain ? -1 : 1;
        if (a->bus != b->bus)
                return a->bus < b->bus ? -1 : 1;
        if (a->slot != b->slot)
                return a->slot < b->slot ? -1 : 1;
        if (a->function != b->function)
                return a->function < b->function ? -1 : 1;
        return 0;
}

bool gv_pci_addr_equal(const struct gv_pci_addr *a, const struct gv_pci_addr *b)
{
        return gv_pci_addr_compare(a, b) == 0;
}

bool gv_name_is_valid(const char *s)
{
        if (!s || !*s)
                return false;
        size_t n = strlen(s);
        if (n > 63)
                return false;
        if (!(islower((unsigned char)s[0]) || isdigit((unsigned char)s[0])))
                return false;
        for (size_t i = 1; i < n; i++) {
                unsigned char c = (unsigned char)s[i];
                if (!(islower(c) || isdigit(c) || c == '.' || c == '_' || c == '-'))
                        return false;
        }
        return true;
}

char *gv_strip_newline(char *s)
{
        size_t n = strlen(s);
        if (n > 0 && s[n - 1] == '\n')
                s[n - 1] = 0;
        return s;
}

char *gv_strip(char *s)
{
        char *p = s;
        while (*p && isspace((unsigned char)*p))
                p++;
        size_t n = strlen(p);
        while (n > 0 && isspace((unsigned char)p[n - 1]))
                n--;
        memmove(s, p, n);
        s[n] = 0;
        return s;
}

bool gv_startswith(const char *s, const char *prefix)
{
        return strncmp(s, prefix, strlen(prefix)) == 0;
}
