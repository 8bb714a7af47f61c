/* SPDX-License-Identifier: MIT */
/*
 * json.h — jansson with strict typed getters. A getter fails with -EINVAL and an error that
 * names the key and the expected type; optional getters leave ret_ untouched when the key is
 * absent (returning 0). Numbers must be integers in range; no implicit conversions.
 */
#pragma once

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "error.h"

/* jansson provides json_decrefp() for cleanup. */
#define _cleanup_json_ _cleanup_(json_decrefp)

/* Parse a file / buffer. Errors say where (line:column) and what. */
int gv_json_load_file(const char *path, size_t max, json_t **ret, struct gv_error **err);
int gv_json_loads(const char *buf, json_t **ret, struct gv_error **err);

int gv_json_get_string(const json_t *o, const char *key, const char **ret, struct gv_error **err);
int gv_json_get_u64(const json_t *o, const char *key, uint64_t *ret, struct gv_error **err);
int gv_json_get_u32(const json_t *o, const char *key, uint32_t *ret, struct gv_error **err);
int gv_json_get_bool(const json_t *o, const char *key, bool *ret, struct gv_error **err);
int gv_json_get_array(const json_t *o, const char *key, json_t **ret, struct gv_error **err);
int gv_json_get_object(const json_t *o, const char *key, json_t **ret, struct gv_error **err);

/* Optional variants: absent or null key → 0 and ret untouched; wrong type → -EINVAL. */
int gv_json_opt_string(const json_t *o, const char *key, const char **ret, struct gv_error **err);
int gv_json_opt_u64(const json_t *o, const char *key, uint64_t *ret, struct gv_error **err);
int gv_json_opt_u32(const json_t *o, const char *key, uint32_t *ret, struct gv_error **err);
int gv_json_opt_bool(const json_t *o, const char *key, bool *ret, struct gv_error **err);

/* Serialize with sorted keys and 2-space indent (stable output for golden tests). */
char *gv_json_dumps_pretty(const json_t *o);
