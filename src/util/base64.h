/* SPDX-License-Identifier: MIT */
/*
 * base64.h — base64 with the standard alphabet and padding (RFC 4648 section 4), as the
 * WebSocket handshake uses it (Sec-WebSocket-Key, Sec-WebSocket-Accept).
 */
#pragma once

#include <stddef.h>

/* The encoding of data[0..len) (NUL-terminated, newly allocated; aborts on OOM). */
char *gv_base64_encode(const void *data, size_t len);

/* Decode s (strict: the standard alphabet, padding required, no whitespace, no bits left over
 * in the last character). The bytes (NUL-terminated for convenience, newly allocated) into *ret
 * and their count into *ret_len. -EINVAL for anything else. */
int gv_base64_decode(const char *s, void **ret, size_t *ret_len);
