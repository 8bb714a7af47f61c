/* SPDX-License-Identifier: MIT */
/*
 * images.c — base images (docs/api.md, "images"): GV_STORE_IMAGE documents
 * {"name", "path", "format", "virtual_size", "created_at"}. Registering probes the file with
 * qemu-img (src/vmm/disk.h) where the controller runs — in the all-in-one and the simulated
 * cluster that is every host; a multi-host cluster needs the path on shared storage. Deleting
 * refuses while a VM's spec names the image.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "controller/controller-internal.h"
#include "util/alloc.h"
#include "util/fileio.h"
#include "util/json.h"
#include "util/parse.h"
#include "util/strv.h"
#include "vmm/disk.h"

static const char *const image_formats[] = { "qcow2", "raw", NULL };

static bool format_is_known(const char *f)
{
        return f && strv_contains((char *const *)image_formats, f);
}

/* -EINVAL naming the members of o that are not in allowed. */
static int check_members(const json_t *o, const char *what, const char *const *allowed,
                         struct gv_error **err)
{
        _cleanup_strv_free_ char **unknown = NULL;
        const char *k;
        json_t *v;
        json_object_foreach((json_t *)o, k, v)
                if (!strv_contains((char *const *)allowed, k))
                        strv_extend(&unknown, k);
        if (!unknown)
                return 0;
        strv_sort(unknown);
        _cleanup_free_ char *u = strv_join(unknown, "', '");
        _cleanup_free_ char *a = strv_join((char *const *)allowed, ", ");
        return gv_error_set(err, EINVAL, "%s: unknown member%s '%s'; valid: %s.", what,
                            strv_length(unknown) > 1 ? "s" : "", u, a);
}

json_t *gv_controller_images(struct gv_controller *c)
{
        struct gv_store_obj *objs = NULL;
        size_t n = 0;
        json_t *a = json_array();
        if (gv_store_list(c->store, GV_STORE_IMAGE, &objs, &n, NULL) < 0)
                return a;
        for (size_t i = 0; i < n; i++)
                json_array_append(a, objs[i].doc);
        gv_store_objs_free(objs, n);
        return a;
}

int gv_controller_image_register(struct gv_controller *c, const json_t *body, json_t **ret,
                                 struct gv_error **err)
{
        static const char *const keys[] = { "name", "path", "format", NULL };
        const char *name = NULL, *path = NULL, *format = NULL;
        int r;

        if (!json_is_object(body))
                return gv_error_set(err, EINVAL, "an image is a JSON object {\"name\", \"path\", "
                                    "\"format\"?}.");
        r = check_members(body, "image", keys, err);
        if (r >= 0)
                r = gv_json_get_string(body, "name", &name, err);
        if (r >= 0)
                r = gv_json_get_string(body, "path", &path, err);
        if (r >= 0)
                r = gv_json_opt_string(body, "format", &format, err);
        if (r < 0)
                return r;
        if (!gv_name_is_valid(name))
                return gv_error_set(err, EINVAL, "image name '%s' is not valid: use 1-63 of "
                                    "a-z 0-9 . _ - starting with a letter or digit.", name);
        if (path[0] != '/')
                return gv_error_set(err, EINVAL, "image path '%s' is not absolute; give the "
                                    "file's full path on the hosts.", path);
        if (format && !format_is_known(format))
                return gv_error_set(err, EINVAL, "image format '%s' is not known; valid: qcow2, "
                                    "raw (or leave it out to have it probed).", format);

        /* Cheap refusal before qemu-img runs; the create below is the real check. */
        struct gv_store_obj o = { 0 };
        r = gv_store_get(c->store, GV_STORE_IMAGE, name, &o, NULL);
        if (r >= 0) {
                gv_store_obj_done(&o);
                return gv_error_set(err, EEXIST, "image '%s' exists; delete it first or choose "
                                    "another name.", name);
        }

        _cleanup_(gv_disk_info_done) struct gv_disk_info info = { 0 };
        struct gv_error *e = NULL;
        r = gv_disk_info(path, &info, &e);
        if (r < 0) {
                /* The request named a bad file: 400, not the 404 or 403 that the errno
                 * would answer (those are about the API's own objects and rights). */
                r = gv_error_set(err, EINVAL, "image '%s': %s", name, gv_error_msg(e, r));
                gv_error_free(e);
                return r;
        }
        if (!format_is_known(info.format))
                return gv_error_set(err, EINVAL, "image '%s': '%s' is a %s image; only qcow2 and "
                                    "raw are supported (convert it with 'qemu-img convert -O "
                                    "qcow2').", name, path, info.format);
        if (format && strcmp(format, info.format) != 0)
                return gv_error_set(err, EINVAL, "image '%s': '%s' is %s, not %s; leave 'format' "
                                    "out to have it probed.", name, path, info.format, format);
        if (info.corrupt)
                return gv_error_set(err, EINVAL, "image '%s': '%s' is marked corrupt; repair it "
                                    "with 'qemu-img check -r all'.", name, path);

        _cleanup_json_ json_t *doc = json_pack("{s:s, s:s, s:s, s:I, s:I}", "name", name,
                                               "path", path, "format", info.format,
                                               "virtual_size", (json_int_t)info.virtual_size,
                                               "created_at", (json_int_t)time(NULL));
        struct gv_store_write w = { .op = GV_STORE_CREATE, .kind = GV_STORE_IMAGE, .key = name,
                                    .doc = doc };
        _cleanup_free_ char *subject = xasprintf("image/%s", name);
        r = gv_ctl_write_event(c, &w, 1, "image.created", subject,
                               json_pack("{s:s, s:s}", "path", path, "format", info.format), &e);
        if (r == -EEXIST) {
                gv_error_free(e);
                return gv_error_set(err, EEXIST, "image '%s' exists; delete it first or choose "
                                    "another name.", name);
        }
        if (r < 0) {
                gv_error_propagate(err, e);
                return r;
        }
        *ret = json_incref(doc);
        return 0;
}

/* The VMs whose spec names the image, sorted; NULL when none. */
static int image_users(struct gv_controller *c, const char *name, char ***ret,
                       struct gv_error **err)
{
        struct gv_store_obj *objs = NULL;
        size_t n = 0;
        int r = gv_store_list(c->store, GV_STORE_VM, &objs, &n, err);
        if (r < 0)
                return r;
        char **users = NULL;
        for (size_t i = 0; i < n; i++) {
                const char *img = json_string_value(
                        json_object_get(json_object_get(objs[i].doc, "spec"), "image"));
                if (img && strcmp(img, name) == 0)
                        strv_extend(&users, objs[i].key);
        }
        gv_store_objs_free(objs, n);
        if (users)
                strv_sort(users);
        *ret = users;
        return 0;
}

int gv_controller_image_delete(struct gv_controller *c, const char *name, struct gv_error **err)
{
        struct gv_store_obj o = { 0 };
        struct gv_error *e = NULL;
        int r = gv_store_get(c->store, GV_STORE_IMAGE, name, &o, &e);
        if (r == -ENOENT) {
                gv_error_free(e);
                return gv_error_set(err, ENOENT, "no image '%s'; GET /api/v1/images lists them.",
                                    name);
        }
        if (r < 0) {
                gv_error_propagate(err, e);
                return r;
        }
        int64_t gen = o.generation;
        /* An uploaded image's file is ours (image_dir/NAME): it goes with the image. */
        _cleanup_free_ char *own = c->image_dir ? gv_path_join(c->image_dir, name) : NULL;
        const char *path = json_string_value(json_object_get(o.doc, "path"));
        bool owned = own && path && strcmp(own, path) == 0;
        gv_store_obj_done(&o);

        _cleanup_strv_free_ char **users = NULL;
        r = image_users(c, name, &users, err);
        if (r < 0)
                return r;
        if (users) {
                _cleanup_free_ char *list = strv_join(users, "', '");
                return gv_error_set(err, EBUSY, "image '%s' is used by VM%s '%s'; delete %s "
                                    "first.", name, strv_length(users) > 1 ? "s" : "", list,
                                    strv_length(users) > 1 ? "them" : "it");
        }
        struct gv_store_write w = { .op = GV_STORE_DELETE, .kind = GV_STORE_IMAGE, .key = name,
                                    .generation = gen };
        _cleanup_free_ char *subject = xasprintf("image/%s", name);
        r = gv_ctl_write_event(c, &w, 1, "image.deleted", subject, NULL, err);
        if (r >= 0 && owned)
                (void)unlink(own);
        return r;
}

int gv_controller_image_upload(struct gv_controller *c, const char *name, const char *tmp_path,
                               json_t **ret, struct gv_error **err)
{
        _cleanup_free_ char *dest = NULL;
        json_t *body;
        int r;

        if (!c->image_dir)
                return gv_error_set(err, ENOSYS, "This controller keeps no uploaded images; copy "
                                    "the file to the hosts and register it with POST "
                                    "/api/v1/images {\"name\", \"path\"}.");
        if (!gv_name_is_valid(name))
                return gv_error_set(err, EINVAL, "image name '%s' is not valid: use 1-63 of "
                                    "a-z 0-9 . _ - starting with a letter or digit.", name);
        r = gv_mkdir_p(c->image_dir, 0700);
        if (r < 0)
                return gv_error_set(err, -r, "Cannot create the image directory '%s': %s.",
                                    c->image_dir, strerror(-r));
        dest = gv_path_join(c->image_dir, name);
        /* Never over an image (or any file) already there. */
        if (renameat2(AT_FDCWD, tmp_path, AT_FDCWD, dest, RENAME_NOREPLACE) < 0) {
                r = -errno;
                if (r == -EEXIST)
                        return gv_error_set(err, EEXIST, "image '%s' exists (%s); delete it first "
                                            "or choose another name.", name, dest);
                return gv_error_set(err, -r, "Cannot move the upload to '%s': %s.", dest,
                                    strerror(-r));
        }
        body = json_pack("{s:s, s:s}", "name", name, "path", dest);
        r = gv_controller_image_register(c, body, ret, err);
        json_decref(body);
        if (r < 0)
                (void)unlink(dest);
        return r;
}
