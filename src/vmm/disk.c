/* SPDX-License-Identifier: MIT */
/*
 * disk.c — disk images through qemu-img.
 *
 * Everything goes through the qemu-img binary (no libqcow): `info --output=json` for facts,
 * `check --output=json` for consistency, `create` for new images. The file-level checks
 * (exists, type, permissions) are ours, done before qemu-img runs, so the common mistakes get
 * an errno and a message of their own instead of qemu-img's words.
 *
 * qemu-img check exit codes (qemu-img(1), "check"): 0 no inconsistencies, 1 check not
 * completed (internal error), 2 image corrupted, 3 only leaked clusters (wasted space, no
 * harm to data), 63 format does not support checks.
 */
#include "disk.h"

#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "util/alloc.h"
#include "util/json.h"
#include "util/parse.h"
#include "vmm/proc.h"

#define QEMU_IMG "qemu-img"
#define QEMU_IMG_TIMEOUT_MS (60 * 1000)
/* check reads every metadata cluster; a large image takes a while. */
#define QEMU_IMG_CHECK_TIMEOUT_MS (10 * 60 * 1000)
#define QEMU_IMG_OUTPUT_MAX (1024 * 1024)
#define SECTOR 512u

void gv_disk_info_done(struct gv_disk_info *i)
{
        if (!i)
                return;
        free(i->format);
        free(i->backing_file);
        free(i->backing_format);
        *i = (struct gv_disk_info){ 0 };
}

/* The file name as qemu-img must see it: absolute, or "./" in front, so "-x" is not an option
 * and "nbd:..." or "json:{...}" is not a protocol. */
static char *img_arg(const char *path)
{
        if (path[0] == '/')
                return xstrdup(path);
        return xasprintf("./%s", path);
}

/* qemu-img's stderr as one line: "qemu-img: " prefixes dropped, lines joined. */
static char *img_words(const char *stderr_text)
{
        size_t n = strlen(stderr_text);
        char *s = xmalloc(n + 1), *w = s;
        const char *p = stderr_text;
        while (*p) {
                const char *eol = strchrnul(p, '\n');
                if (strncmp(p, "qemu-img: ", 10) == 0)
                        p += 10;
                if (eol > p) {
                        if (w > s)
                                *w++ = ' ';
                        memcpy(w, p, (size_t)(eol - p));
                        w += eol - p;
                }
                p = *eol ? eol + 1 : eol;
        }
        *w = 0;
        return gv_strip(s);
}

/* Map qemu-img's complaint to an errno: its words carry strerror() text for file errors. */
static int img_errno(const char *words)
{
        if (strstr(words, "No such file or directory"))
                return ENOENT;
        if (strstr(words, "Permission denied"))
                return EACCES;
        /* 'Failed to get shared "write" lock' / 'Failed to get "write" lock': a QEMU holds it */
        if (strstr(words, "Failed to get") && strstr(words, " lock"))
                return EBUSY;
        return EINVAL;
}

/* Run qemu-img; 0 with the exit status, or an error when it could not run at all. */
static int run_img(char *const argv[], int timeout_ms, char **ret_out, char **ret_words,
                   int *ret_status, struct gv_error **err)
{
        _cleanup_free_ char *out = NULL, *errs = NULL;
        int status = 0;
        int r = gv_proc_run_status(argv, timeout_ms, QEMU_IMG_OUTPUT_MAX, &out, &errs, &status,
                                   err);
        if (r < 0)
                return r;
        if (WIFSIGNALED(status))
                return gv_error_set(err, EIO, "'%s %s' was killed by signal %d.", QEMU_IMG,
                                    argv[1], WTERMSIG(status));
        if (ret_out)
                *ret_out = TAKE_PTR(out);
        *ret_words = img_words(errs);
        *ret_status = WEXITSTATUS(status);
        return 0;
}

/* stat + type + readability: the errors a user fixes in the file system. */
static int check_file(const char *path, struct stat *ret_st, struct gv_error **err)
{
        struct stat st;
        if (stat(path, &st) < 0) {
                if (errno == ENOENT)
                        return gv_error_set(err, ENOENT, "Disk image '%s' does not exist.", path);
                return gv_error_set(err, errno, "Cannot access disk image '%s': %s.", path,
                                    strerror(errno));
        }
        if (!S_ISREG(st.st_mode) && !S_ISBLK(st.st_mode))
                return gv_error_set(err, EINVAL,
                                    "Disk image '%s' is not a regular file or a block device.",
                                    path);
        int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
        if (fd < 0)
                return gv_error_set(err, errno,
                                    "Disk image '%s' is not readable: %s; fix its permissions.",
                                    path, strerror(errno));
        (void)close(fd);
        *ret_st = st;
        return 0;
}

static int parse_info(const json_t *j, struct gv_disk_info *ret,
                      struct gv_error **err)
{
        const char *format = NULL, *backing = NULL, *backing_fmt = NULL;
        uint64_t vsize = 0, asize = 0;
        bool corrupt = false;
        json_t *fs = NULL, *data = NULL;
        int r;

        if (!json_is_object(j))
                return gv_error_set(err, EINVAL, "expected a JSON object");
        if ((r = gv_json_get_string(j, "format", &format, err)) < 0 ||
            (r = gv_json_get_u64(j, "virtual-size", &vsize, err)) < 0 ||
            (r = gv_json_opt_u64(j, "actual-size", &asize, err)) < 0 ||
            (r = gv_json_opt_string(j, "backing-filename", &backing, err)) < 0 ||
            (r = gv_json_opt_string(j, "backing-filename-format", &backing_fmt, err)) < 0)
                return r;
        /* format-specific: {"type": "qcow2", "data": {..., "corrupt": false}} */
        json_t *v = json_object_get(j, "format-specific");
        if (v && !json_is_null(v)) {
                if ((r = gv_json_get_object(j, "format-specific", &fs, err)) < 0)
                        return r;
                json_t *d = json_object_get(fs, "data");
                if (d && !json_is_null(d)) {
                        if ((r = gv_json_get_object(fs, "data", &data, err)) < 0 ||
                            (r = gv_json_opt_bool(data, "corrupt", &corrupt, err)) < 0)
                                return r;
                }
        }
        if (!*format)
                return gv_error_set(err, EINVAL, "key 'format' is empty");

        *ret = (struct gv_disk_info){
                .format = xstrdup(format),
                .virtual_size = vsize,
                .actual_size = asize,
                .backing_file = backing ? xstrdup(backing) : NULL,
                .backing_format = backing_fmt ? xstrdup(backing_fmt) : NULL,
                .corrupt = corrupt,
        };
        return 0;
}

static int disk_info(const char *path, struct gv_disk_info *ret, struct stat *ret_st,
                     struct gv_error **err)
{
        struct stat st;
        int r = check_file(path, &st, err);
        if (r < 0)
                return r;

        _cleanup_free_ char *arg = img_arg(path);
        char *argv[] = { QEMU_IMG, "info", "--output=json", "-U", arg, NULL };
        _cleanup_free_ char *out = NULL, *words = NULL;
        int status = 0;
        r = run_img(argv, QEMU_IMG_TIMEOUT_MS, &out, &words, &status, err);
        if (r < 0)
                return gv_error_wrap(err, r, "Cannot inspect disk image '%s'", path);
        if (status != 0)
                return gv_error_set(err, img_errno(words),
                                    "'%s' is not a usable disk image; qemu-img says: %s", path,
                                    *words ? words : "(nothing)");

        _cleanup_json_ json_t *j = NULL;
        struct gv_disk_info info = { 0 };
        r = gv_json_loads(out, &j, err);
        if (r >= 0)
                r = parse_info(j, &info, err);
        if (r < 0)
                return gv_error_wrap(err, r, "Cannot read 'qemu-img info' output for '%s'",
                                     path);

        /* qemu-img reads anything it cannot recognise as "raw", rounding the size up to a
         * sector: a text file "is" a raw disk. A raw disk image is whole sectors. */
        if (strcmp(info.format, "raw") == 0 && S_ISREG(st.st_mode)) {
                if (st.st_size == 0) {
                        gv_disk_info_done(&info);
                        return gv_error_set(err, EINVAL,
                                            "'%s' is not a usable disk image: it is empty.",
                                            path);
                }
                if (st.st_size % SECTOR != 0) {
                        gv_disk_info_done(&info);
                        return gv_error_set(err, EINVAL,
                                            "'%s' is not a disk image: qemu-img can only read "
                                            "it as raw, and its size (%jd bytes) is not a "
                                            "whole number of %u-byte sectors.",
                                            path, (intmax_t)st.st_size, SECTOR);
                }
        }

        *ret = info;
        if (ret_st)
                *ret_st = st;
        return 0;
}

int gv_disk_info(const char *path, struct gv_disk_info *ret, struct gv_error **err)
{
        return disk_info(path, ret, NULL, err);
}

/* Every image behind path must open and carry its backing format, and none may be marked
 * corrupt: `qemu-img info --backing-chain` opens them all. */
static int check_chain(const char *path, struct gv_error **err)
{
        _cleanup_free_ char *arg = img_arg(path);
        char *argv[] = { QEMU_IMG, "info", "--backing-chain", "--output=json", "-U", arg, NULL };
        _cleanup_free_ char *out = NULL, *words = NULL;
        int status = 0;
        int r = run_img(argv, QEMU_IMG_TIMEOUT_MS, &out, &words, &status, err);
        if (r < 0)
                return gv_error_wrap(err, r, "Cannot inspect the backing chain of '%s'", path);
        if (status != 0)
                return gv_error_set(err, img_errno(words),
                                    "The backing chain of disk image '%s' does not resolve; "
                                    "qemu-img says: %s",
                                    path, *words ? words : "(nothing)");

        _cleanup_json_ json_t *j = NULL;
        r = gv_json_loads(out, &j, err);
        if (r >= 0 && !json_is_array(j))
                r = gv_error_set(err, EINVAL, "expected a JSON array");
        if (r < 0)
                return gv_error_wrap(err, r, "Cannot read 'qemu-img info --backing-chain' "
                                             "output for '%s'", path);
        size_t i;
        json_t *e;
        json_array_foreach(j, i, e) {
                struct gv_disk_info info = { 0 };
                const char *name = NULL;
                r = parse_info(e, &info, err);
                if (r >= 0)
                        r = gv_json_get_string(e, "filename", &name, err);
                if (r < 0) {
                        gv_disk_info_done(&info);
                        return gv_error_wrap(err, r, "Cannot read 'qemu-img info "
                                                     "--backing-chain' output for '%s'", path);
                }
                if (info.corrupt)
                        r = gv_error_set(err, EINVAL,
                                         "Image '%s' in the backing chain of '%s' is marked "
                                         "corrupt; repair it with 'qemu-img check -r all'.",
                                         name, path);
                else if (info.backing_file && !info.backing_format)
                        /* Without a recorded format QEMU probes the backing file, and a guest
                         * that wrote an image header into a raw base could redirect it. */
                        r = gv_error_set(err, EINVAL,
                                         "Image '%s' in the backing chain of '%s' names backing "
                                         "file '%s' without its format; record it with "
                                         "'qemu-img rebase -u -F FORMAT -b %s %s'.",
                                         name, path, info.backing_file, info.backing_file,
                                         name);
                gv_disk_info_done(&info);
                if (r < 0)
                        return r;
        }
        return 0;
}

static int check_qcow2(const char *path, bool readonly, struct gv_error **err)
{
        _cleanup_free_ char *arg = img_arg(path);
        /* Writable use takes the image's lock like QEMU would, so an image a running VM holds
         * is refused (-EBUSY); read-only use shares it (-U). */
        char *argv_rw[] = { QEMU_IMG, "check", "--output=json", arg, NULL };
        char *argv_ro[] = { QEMU_IMG, "check", "--output=json", "-U", arg, NULL };
        _cleanup_free_ char *out = NULL, *words = NULL;
        int status = 0;
        int r = run_img(readonly ? argv_ro : argv_rw, QEMU_IMG_CHECK_TIMEOUT_MS, &out, &words,
                        &status, err);
        if (r < 0)
                return gv_error_wrap(err, r, "Cannot check disk image '%s'", path);
        if (status == 0 || status == 3)
                return 0;
        if (status == 2) {
                uint64_t n = 0;
                _cleanup_json_ json_t *j = NULL;
                if (gv_json_loads(out, &j, NULL) >= 0)
                        (void)gv_json_opt_u64(j, "corruptions", &n, NULL);
                return gv_error_set(err, EINVAL,
                                    "Disk image '%s' is corrupt (%" PRIu64 " errors found by "
                                    "'qemu-img check'); repair it with 'qemu-img check -r all "
                                    "%s' or restore it.",
                                    path, n, path);
        }
        r = img_errno(words);
        if (r == EBUSY)
                return gv_error_set(err, EBUSY,
                                    "Disk image '%s' is in use by another process (a running "
                                    "VM?); stop it first or attach the disk read-only.",
                                    path);
        return gv_error_set(err, r, "'qemu-img check' cannot check disk image '%s' (exit %d): %s",
                            path, status, *words ? words : "(nothing)");
}

int gv_disk_check(const char *path, bool readonly, struct gv_error **err)
{
        struct gv_disk_info info = { 0 };
        struct stat st;
        int r = disk_info(path, &info, &st, err);
        if (r < 0)
                return r;

        if (!readonly) {
                if (access(path, W_OK) < 0)
                        r = gv_error_set(err, errno,
                                         "Disk image '%s' is not writable: %s; make it "
                                         "writable or attach it read-only.",
                                         path, strerror(errno));
                /* root passes access(W_OK) whatever the mode: a file nobody may write was made
                 * read-only on purpose. */
                else if ((st.st_mode & 0222) == 0)
                        r = gv_error_set(err, EACCES,
                                         "Disk image '%s' is read-only (mode %04o); make it "
                                         "writable (chmod u+w) or attach it read-only.",
                                         path, (unsigned)(st.st_mode & 07777));
        }
        if (r >= 0 && info.corrupt)
                r = gv_error_set(err, EINVAL,
                                 "Disk image '%s' is marked corrupt; repair it with 'qemu-img "
                                 "check -r all %s' before use.",
                                 path, path);
        if (r >= 0 && info.backing_file)
                r = check_chain(path, err);
        if (r >= 0 && strcmp(info.format, "qcow2") == 0)
                r = check_qcow2(path, readonly, err);
        gv_disk_info_done(&info);
        return r;
}

/* Claim the name with O_EXCL, so two creators cannot both win and nothing is overwritten;
 * qemu-img then writes the image into the claimed (empty) file. */
static int claim(const char *path, const char *what, struct gv_error **err)
{
        int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOCTTY, 0600);
        if (fd < 0) {
                if (errno == EEXIST)
                        return gv_error_set(err, EEXIST,
                                            "Cannot create %s '%s': it already exists; refusing "
                                            "to overwrite it (delete it first or pick another "
                                            "name).",
                                            what, path);
                return gv_error_set(err, errno, "Cannot create %s '%s': %s.", what, path,
                                    strerror(errno));
        }
        (void)close(fd);
        return 0;
}

static int check_size(const char *what, const char *path, uint64_t size,
                      struct gv_error **err)
{
        if (size % SECTOR != 0)
                return gv_error_set(err, EINVAL,
                                    "Cannot create %s '%s': size %" PRIu64 " is not a whole "
                                    "number of %u-byte sectors.",
                                    what, path, size, SECTOR);
        return 0;
}

static int create_claimed(const char *path, const char *what, char *const argv[],
                          struct gv_error **err)
{
        _cleanup_free_ char *words = NULL;
        int status = 0;
        int r = run_img(argv, QEMU_IMG_TIMEOUT_MS, NULL, &words, &status, err);
        if (r < 0)
                r = gv_error_wrap(err, r, "Cannot create %s '%s'", what, path);
        else if (status != 0)
                r = gv_error_set(err, img_errno(words), "Cannot create %s '%s'; qemu-img says: %s",
                                 what, path, *words ? words : "(nothing)");
        if (r < 0)
                (void)unlink(path);
        return r;
}

int gv_disk_create_overlay(const char *base, const char *overlay, uint64_t size,
                           struct gv_error **err)
{
        const char *what = "overlay";
        int r = check_size(what, overlay, size, err);
        if (r < 0)
                return r;

        struct gv_disk_info bi = { 0 };
        r = gv_disk_info(base, &bi, err);
        if (r < 0)
                return gv_error_wrap(err, r, "Cannot create overlay '%s' on base image '%s'",
                                     overlay, base);
        _cleanup_free_ char *fmt = TAKE_PTR(bi.format);
        uint64_t base_size = bi.virtual_size;
        bool corrupt = bi.corrupt;
        gv_disk_info_done(&bi);
        if (corrupt)
                return gv_error_set(err, EINVAL,
                                    "Cannot create overlay '%s': base image '%s' is marked "
                                    "corrupt; repair it with 'qemu-img check -r all %s'.",
                                    overlay, base, base);
        if (size == 0)
                size = base_size;
        else if (size < base_size)
                return gv_error_set(err, EINVAL,
                                    "Cannot create overlay '%s': %" PRIu64 " bytes is smaller "
                                    "than base image '%s' (%" PRIu64 " bytes); an overlay can "
                                    "keep the base's size or grow it, not shrink it.",
                                    overlay, size, base, base_size);

        /* The overlay records the base by absolute path, so it opens from any directory. */
        _cleanup_free_ char *abs = realpath(base, NULL);
        if (!abs)
                return gv_error_set(err, errno, "Cannot resolve base image '%s': %s.", base,
                                    strerror(errno));

        r = claim(overlay, what, err);
        if (r < 0)
                return r;
        _cleanup_free_ char *arg = img_arg(overlay);
        char sz[DECIMAL_STR_MAX(uint64_t)];
        (void)snprintf(sz, sizeof(sz), "%" PRIu64, size);
        char *argv[] = { QEMU_IMG, "create", "-q", "-f", "qcow2", "-F", fmt, "-b", abs, arg, sz,
                         NULL };
        return create_claimed(overlay, what, argv, err);
}

int gv_disk_create(const char *path, uint64_t size, struct gv_error **err)
{
        const char *what = "disk image";
        if (size == 0)
                return gv_error_set(err, EINVAL,
                                    "Cannot create disk image '%s' of size 0; give its size in "
                                    "bytes.",
                                    path);
        int r = check_size(what, path, size, err);
        if (r < 0)
                return r;
        r = claim(path, what, err);
        if (r < 0)
                return r;
        _cleanup_free_ char *arg = img_arg(path);
        char sz[DECIMAL_STR_MAX(uint64_t)];
        (void)snprintf(sz, sizeof(sz), "%" PRIu64, size);
        char *argv[] = { QEMU_IMG, "create", "-q", "-f", "qcow2", arg, sz, NULL };
        return create_claimed(path, what, argv, err);
}
