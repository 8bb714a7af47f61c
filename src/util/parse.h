/* SPDX-License-Identifier: MIT */
/*
 * parse.h — strict parsers. Never atoi/strtol bare: these reject empty input, signs where
 * unsigned is expected, trailing garbage (one trailing newline is accepted, as sysfs files end
 * with one), and overflow. Return 0 or -EINVAL / -ERANGE; ret_ written only on success.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* base 0 accepts "0x" prefix for hex and plain decimal (no octal surprises: leading zeros are
 * decimal). base 10 or 16 force that base; base 16 accepts an optional "0x". */
int gv_parse_u64(const char *s, unsigned base, uint64_t *ret);
int gv_parse_u32(const char *s, unsigned base, uint32_t *ret);
int gv_parse_u16(const char *s, unsigned base, uint16_t *ret);
int gv_parse_u8(const char *s, unsigned base, uint8_t *ret);
int gv_parse_i64(const char *s, int64_t *ret);
int gv_parse_int(const char *s, int *ret);
/* "1", "0", "yes", "no", "true", "false", "on", "off" */
int gv_parse_bool(const char *s, bool *ret);
/* Sizes with optional binary suffix: "512", "4K", "16M", "80G", "1T", also "KiB"/"MiB"/...;
 * returns bytes. */
int gv_parse_size(const char *s, uint64_t *ret_bytes);

/* UUIDs: 8-4-4-4-12 hex digits, case-insensitive; canonical output is lower case. */
#define GV_UUID_STR_LEN 36
struct gv_uuid {
        uint8_t b[16];
};
int gv_parse_uuid(const char *s, struct gv_uuid *ret);
/* buf must hold GV_UUID_STR_LEN + 1 bytes */
char *gv_uuid_format(const struct gv_uuid *u, char *buf);
/* Random version-4 UUID from getrandom(). */
int gv_uuid_random(struct gv_uuid *ret);
bool gv_uuid_is_null(const struct gv_uuid *u);

/* PCI addresses: "dddd:bb:ss.f" (domain up to 4 hex digits as sysfs writes it, or 8 as NVML's
 * busId), or "bb:ss.f" (domain 0). bus <= 0xff, slot <= 0x1f, function <= 7. */
struct gv_pci_addr {
        uint32_t domain;
        uint8_t bus;
        uint8_t slot;
        uint8_t function;
};
#define GV_PCI_ADDR_STR_MAX sizeof("ffffffff:ff:1f.7")
int gv_parse_pci_addr(const char *s, struct gv_pci_addr *ret);
/* Canonical sysfs form "0000:3b:00.0"; buf must hold GV_PCI_ADDR_STR_MAX bytes. */
char *gv_pci_addr_format(const struct gv_pci_addr *a, char *buf);
int gv_pci_addr_compare(const struct gv_pci_addr *a, const struct gv_pci_addr *b);
bool gv_pci_addr_equal(const struct gv_pci_addr *a, const struct gv_pci_addr *b);

/* Names: [a-z0-9][a-z0-9._-]{0,62} — the grammar for VM, host, image and profile keys. */
bool gv_name_is_valid(const char *s);

/* Strip one trailing "\n" in place (sysfs values). Returns s. */
char *gv_strip_newline(char *s);
/* Remove leading and trailing ASCII whitespace in place; returns s. */
char *gv_strip(char *s);
bool gv_startswith(const char *s, const char *prefix);
