/* SPDX-License-Identifier: MIT */
/*
 * confine.c — the QEMU user, the files handed to it, and the per-VM cgroup (confine.h).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <inttypes.h>
#include <linux/magic.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <unistd.h>

#include "util/alloc.h"
#include "util/fileio.h"
#include "util/parse.h"
#include "util/strv.h"
#include "vmm/confine.h"

#define NSS_BUF 16384

/* ---- the user ---- */

static char *user_name_of(uid_t uid)
{
        struct passwd pw, *res = NULL;
        char buf[NSS_BUF];

        if (getpwuid_r(uid, &pw, buf, sizeof(buf), &res) == 0 && res)
                return xstrdup(res->pw_name);
        return xasprintf("%u", (unsigned)uid);
}

int gv_confine_user_resolve(const char *option, const char *kvm_path,
                            struct gv_confine_user *ret, struct gv_error **err)
{
        struct gv_confine_user u = { 0 };
        const char *name = option ? option : GV_QEMU_USER_DEFAULT;
        struct passwd pw, *res = NULL;
        char buf[NSS_BUF];
        struct stat st;
        int r;

        if (geteuid() != 0) {
                u.uid = geteuid();
                u.gid = getegid();
                u.name = user_name_of(u.uid);
                u.why = xasprintf("the agent runs as '%s', not as root, and cannot change "
                                  "user: QEMU runs as the agent's user%s", u.name,
                                  option && option[0] ? " (qemu-user applies to an agent "
                                                        "running as root)" : "");
                *ret = u;
                return 0;
        }
        if (!name[0] || strcmp(name, "root") == 0) {
                u.name = xstrdup("root");
                u.why = xstrdup("qemu-user is set to 'root': QEMU runs as root, not as an "
                                "unprivileged user (QEMU's security policy says it must run "
                                "unprivileged; docs/qemu-confinement.md)");
                *ret = u;
                return 0;
        }
        r = getpwnam_r(name, &pw, buf, sizeof(buf), &res);
        if (r != 0 || !res)
                return gv_error_set(err, ENOENT, "The QEMU user '%s' does not exist on this "
                                    "host, so QEMU cannot be confined: create it (useradd "
                                    "--system --no-create-home --shell /usr/sbin/nologin %s), "
                                    "name another unprivileged user with the agent's option "
                                    "qemu-user (--qemu-user), or set qemu-user = root to run "
                                    "QEMU as root, unconfined.", name, name);
        if (res->pw_uid == 0) {
                u.name = xstrdup(name);
                u.why = xasprintf("qemu-user '%s' is uid 0: QEMU runs as root, not as an "
                                  "unprivileged user", name);
                *ret = u;
                return 0;
        }
        u.switch_user = true;
        u.uid = res->pw_uid;
        u.gid = res->pw_gid;
        u.name = xstrdup(res->pw_name);
        if (stat(kvm_path ? kvm_path : "/dev/kvm", &st) == 0) {
                struct group gr, *gres = NULL;
                if (getgrnam_r("kvm", &gr, buf, sizeof(buf), &gres) == 0 && gres &&
                    gres->gr_gid != u.gid)
                        u.groups[u.n_groups++] = gres->gr_gid;
        }
        *ret = u;
        return 0;
}

void gv_confine_user_done(struct gv_confine_user *u)
{
        free(u->name);
        free(u->why);
        *u = (struct gv_confine_user){ 0 };
}

int gv_confine_give(const struct gv_confine_user *u, const char *path, mode_t mode,
                    struct gv_error **err)
{
        struct stat st;

        if (!u->switch_user)
                return 0;
        if (lstat(path, &st) < 0)
                return gv_error_set(err, errno, "Cannot hand '%s' to the QEMU user '%s': %m.",
                                    path, u->name);
        if (S_ISLNK(st.st_mode))
                return gv_error_set(err, ELOOP, "Will not hand '%s' to the QEMU user '%s': it "
                                    "is a symbolic link.", path, u->name);
        if (fchownat(AT_FDCWD, path, u->uid, u->gid, AT_SYMLINK_NOFOLLOW) < 0)
                return gv_error_set(err, errno, "Cannot hand '%s' to the QEMU user '%s' "
                                    "(chown %u:%u): %m.", path, u->name, (unsigned)u->uid,
                                    (unsigned)u->gid);
        if (mode && chmod(path, mode) < 0)
                return gv_error_set(err, errno, "Cannot set the mode of '%s' to %04o: %m.",
                                    path, (unsigned)mode);
        return 0;
}

/* May u do `bits` (4 read, 2 write, 1 search) on a file of this owner and mode? */
static bool allowed(const struct gv_confine_user *u, const struct stat *st, unsigned bits)
{
        unsigned m = st->st_mode;

        if (u->uid == 0)
                return true;
        if (st->st_uid == u->uid)
                return ((m >> 6) & bits) == bits;
        bool in_group = st->st_gid == u->gid;
        for (size_t i = 0; i < u->n_groups; i++)
                in_group = in_group || st->st_gid == u->groups[i];
        if (in_group)
                return ((m >> 3) & bits) == bits;
        return (m & bits) == bits;
}

int gv_confine_can_reach(const struct gv_confine_user *u, const char *path,
                         struct gv_error **err)
{
        _cleanup_free_ char *p = xstrdup(path);
        size_t len = strlen(p);

        if (p[0] != '/')
                return gv_error_set(err, EINVAL, "'%s' is not an absolute path.", path);
        /* Each prefix ending before a '/', then the whole path when it is a directory. */
        for (size_t i = 1; i <= len; i++) {
                if (i < len && p[i] != '/')
                        continue;
                char save = p[i];
                struct stat st;
                p[i] = '\0';
                int r = stat(i == 1 && save == '/' ? "/" : p, &st);
                if (r < 0 && i == len)
                        break; /* the leaf need not exist yet */
                if (r < 0) {
                        r = -errno;
                        p[i] = save;
                        return gv_error_set(err, -r, "Cannot check the way to '%s': %s.", path,
                                            strerror(-r));
                }
                if (S_ISDIR(st.st_mode) && !allowed(u, &st, 1)) {
                        _cleanup_free_ char *owner = user_name_of(st.st_uid);
                        int e = gv_error_set(err, EACCES, "The QEMU user '%s' cannot search "
                                             "'%s' (mode %04o, owner '%s'), so QEMU cannot "
                                             "reach '%s': let it through (chmod o+x '%s', or "
                                             "a group the user is in) or keep the agent's "
                                             "state directory under directories it may "
                                             "search.", u->name, i == 1 ? "/" : p,
                                             (unsigned)(st.st_mode & 07777), owner, path,
                                             i == 1 ? "/" : p);
                        return e;
                }
                p[i] = save;
                if (i == 1 && save == '/')
                        continue;
        }
        return 0;
}

int gv_confine_can_open(const struct gv_confine_user *u, const char *path, bool write,
                        struct gv_error **err)
{
        _cleanup_free_ char *dir = xstrdup(path);
        char *slash = strrchr(dir, '/');
        struct stat st;
        int r;

        if (u->uid == 0)
                return 0;
        if (slash)
                *(slash == dir ? slash + 1 : slash) = '\0';
        r = gv_confine_can_reach(u, dir, err);
        if (r < 0)
                return r;
        if (stat(path, &st) < 0)
                return gv_error_set(err, errno, "Cannot check '%s' for the QEMU user: %m.", path);
        if (!allowed(u, &st, write ? 6 : 4)) {
                _cleanup_free_ char *owner = user_name_of(st.st_uid);
                return gv_error_set(err, EACCES, "The QEMU user '%s' may not %s '%s' (mode "
                                    "%04o, owner '%s'): give it access (chown or chmod), or "
                                    "use a copy it may %s.", u->name,
                                    write ? "read and write" : "read", path,
                                    (unsigned)(st.st_mode & 07777), owner,
                                    write ? "write" : "read");
        }
        return 0;
}

/* ---- cgroups ---- */

static const char *const v1_controllers[] = { "memory", "pids", "cpu", NULL };

void gv_cgroup_limits_for(uint64_t memory_mib, uint32_t vcpus, bool tcg,
                          struct gv_cgroup_limits *ret)
{
        uint64_t mib = memory_mib + GV_CGROUP_MEMORY_OVERHEAD_MIB +
                       (tcg ? GV_CGROUP_MEMORY_TCG_MIB : 0);
        uint64_t w = (uint64_t)(vcpus ? vcpus : 1) * 100;

        *ret = (struct gv_cgroup_limits){
                .memory_max = mib * 1024 * 1024,
                .pids_max = GV_CGROUP_PIDS_BASE + vcpus,
                .cpu_weight = (uint32_t)(w > 10000 ? 10000 : w),
        };
}

static bool is_dir(const char *path)
{
        struct stat st;
        return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

enum gv_cgroup_mode gv_cgroup_detect(const char *root, char **ret_why)
{
        _cleanup_free_ char *ctl = gv_path_join(root, "cgroup.controllers");
        _cleanup_free_ char *mem = gv_path_join(root, "memory");

        if (ret_why)
                *ret_why = NULL;
        if (gv_file_exists(ctl) > 0)
                return GV_CGROUP_V2;
        if (is_dir(mem))
                return GV_CGROUP_V1;
        if (ret_why)
                *ret_why = xasprintf("no cgroup hierarchy at '%s' (neither cgroup v2's "
                                     "cgroup.controllers nor a v1 memory controller); set "
                                     "cgroup-root to where cgroups are mounted", root);
        return GV_CGROUP_NONE;
}

/* The group's directory in each hierarchy: v2 one, v1 one per mounted controller (memory
 * first). */
static char **group_dirs(const char *root, const char *group, enum gv_cgroup_mode mode)
{
        char **dirs = NULL;

        if (mode == GV_CGROUP_V2) {
                strv_consume(&dirs, gv_path_join(root, group));
                return dirs;
        }
        if (mode == GV_CGROUP_V1)
                for (size_t i = 0; v1_controllers[i]; i++) {
                        _cleanup_free_ char *h = gv_path_join(root, v1_controllers[i]);
                        if (is_dir(h))
                                strv_consume(&dirs, gv_path_join(h, group));
                }
        return dirs;
}

static int write_value(const char *dir, const char *file, const char *value,
                       struct gv_error **err)
{
        _cleanup_free_ char *path = gv_path_join(dir, file);
        int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0644);
        size_t n = strlen(value);

        if (fd < 0)
                return gv_error_set(err, errno, "Cannot open '%s': %m.", path);
        ssize_t w = write(fd, value, n);
        int e = w < 0 ? errno : 0;
        close(fd);
        if (w < 0 || (size_t)w != n)
                return gv_error_set(err, e ? e : EIO, "Cannot write '%s' to '%s': %s.", value,
                                    path, strerror(e ? e : EIO));
        return 0;
}

static bool on_cgroupfs(const char *path)
{
        struct statfs sf;
        return statfs(path, &sf) == 0 &&
               (sf.f_type == CGROUP_SUPER_MAGIC || sf.f_type == CGROUP2_SUPER_MAGIC);
}

/* v2: let the children of `dir` use the controllers it has. Best effort per controller (one
 * missing, or busy with a process of its own, leaves the others). */
static void v2_enable(const char *dir)
{
        static const char *const want[] = { "+memory", "+pids", "+cpu", NULL };
        _cleanup_free_ char *ctl = gv_path_join(dir, "cgroup.controllers"), *have = NULL;
        size_t n = 0;

        if (gv_read_file(ctl, 4096, &have, &n) < 0)
                return;
        for (size_t i = 0; want[i]; i++) {
                const char *c = want[i] + 1, *p = have;
                size_t cl = strlen(c);
                bool found = false;
                while ((p = strstr(p, c))) {
                        if ((p == have || p[-1] == ' ') && (p[cl] == ' ' || p[cl] == '\n' ||
                                                           p[cl] == '\0'))
                                found = true;
                        p += cl;
                }
                if (found)
                        (void)write_value(dir, "cgroup.subtree_control", want[i], NULL);
        }
}

static int make_dirs(const char *base, const char *group, bool v2, struct gv_error **err)
{
        _cleanup_free_ char *g = xstrdup(group);
        _cleanup_free_ char *cur = xstrdup(base);

        for (char *save = NULL, *tok = strtok_r(g, "/", &save); tok;
             tok = strtok_r(NULL, "/", &save)) {
                if (v2)
                        v2_enable(cur);
                char *next = gv_path_join(cur, tok);
                free(cur);
                cur = next;
                if (mkdir(cur, 0755) < 0 && errno != EEXIST)
                        return gv_error_set(err, errno, "Cannot create the cgroup '%s': %m.",
                                            cur);
        }
        return 0;
}

int gv_cgroup_create(const char *root, const char *group, const struct gv_cgroup_limits *l,
                     char **ret_path, struct gv_error **err)
{
        _cleanup_free_ char *why = NULL;
        enum gv_cgroup_mode mode = gv_cgroup_detect(root, &why);
        _cleanup_strv_free_ char **dirs = NULL;
        char mem[32], pids[32], cpu[32];
        int r;

        if (mode == GV_CGROUP_NONE)
                return gv_error_set(err, ENOENT, "%s.", why);
        r = gv_cgroup_remove(root, group, err);
        if (r < 0)
                return r;
        dirs = group_dirs(root, group, mode);
        snprintf(mem, sizeof(mem), "%" PRIu64, l->memory_max);
        snprintf(pids, sizeof(pids), "%" PRIu64, l->pids_max);
        if (mode == GV_CGROUP_V2) {
                snprintf(cpu, sizeof(cpu), "%" PRIu32, l->cpu_weight);
                r = make_dirs(root, group, true, err);
                if (r >= 0)
                        r = write_value(dirs[0], "memory.max", mem, err);
                if (r >= 0)
                        r = write_value(dirs[0], "pids.max", pids, err);
                if (r >= 0)
                        r = write_value(dirs[0], "cpu.weight", cpu, err);
        } else {
                /* v1's cpu.shares: 1024 is the default as v2's weight 100 is. */
                snprintf(cpu, sizeof(cpu), "%" PRIu64, (uint64_t)l->cpu_weight * 1024 / 100);
                r = 0;
                for (size_t i = 0; v1_controllers[i] && r >= 0; i++) {
                        _cleanup_free_ char *h = gv_path_join(root, v1_controllers[i]);
                        _cleanup_free_ char *d = gv_path_join(h, group);
                        if (!is_dir(h))
                                continue;
                        r = make_dirs(h, group, false, err);
                        if (r < 0)
                                break;
                        if (i == 0)
                                r = write_value(d, "memory.limit_in_bytes", mem, err);
                        else if (i == 1)
                                r = write_value(d, "pids.max", pids, err);
                        else
                                r = write_value(d, "cpu.shares", cpu, err);
                }
        }
        if (r < 0) {
                (void)gv_cgroup_remove(root, group, NULL);
                return r;
        }
        *ret_path = xstrdup(dirs[0]);
        return 0;
}

int gv_cgroup_open_procs(const char *root, const char *group, int **ret_fds, size_t *ret_n,
                         struct gv_error **err)
{
        _cleanup_strv_free_ char **dirs = group_dirs(root, group, gv_cgroup_detect(root, NULL));
        size_t n = strv_length(dirs);
        int *fds = xnew0(int, n + 1);

        for (size_t i = 0; i < n; i++) {
                _cleanup_free_ char *p = gv_path_join(dirs[i], "cgroup.procs");
                fds[i] = open(p, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0644);
                if (fds[i] < 0) {
                        int e = errno;
                        for (size_t k = 0; k < i; k++)
                                close(fds[k]);
                        free(fds);
                        return gv_error_set(err, e, "Cannot open '%s': %s.", p, strerror(e));
                }
        }
        *ret_fds = fds;
        *ret_n = n;
        return 0;
}

int gv_cgroup_remove(const char *root, const char *group, struct gv_error **err)
{
        _cleanup_strv_free_ char **dirs = group_dirs(root, group, gv_cgroup_detect(root, NULL));
        int r = 0;

        STRV_FOREACH(d, dirs) {
                if (!is_dir(*d))
                        continue;
                if (!on_cgroupfs(*d)) {
                        int k = gv_rm_rf(*d);
                        if (k < 0 && r == 0)
                                r = gv_error_set(err, -k, "Cannot remove '%s': %s.", *d,
                                                 strerror(-k));
                        continue;
                }
                if (rmdir(*d) < 0 && errno != ENOENT && r == 0)
                        r = gv_error_set(err, errno, "Cannot remove the cgroup '%s': %m%s.", *d,
                                         errno == EBUSY ? " (a process is still in it)" : "");
        }
        return r;
}

int gv_cgroup_list(const char *root, const char *parent, char ***ret, struct gv_error **err)
{
        _cleanup_strv_free_ char **dirs = group_dirs(root, parent, gv_cgroup_detect(root, NULL));
        _cleanup_strv_free_ char **out = xnew0(char *, 1);
        DIR *d;
        struct dirent *e;

        if (!dirs || !(d = opendir(dirs[0]))) {
                if (dirs && errno != ENOENT)
                        return gv_error_set(err, errno, "Cannot list '%s': %m.", dirs[0]);
                *ret = TAKE_PTR(out);
                return 0;
        }
        while ((e = readdir(d))) {
                _cleanup_free_ char *p = NULL;
                if (e->d_name[0] == '.')
                        continue;
                p = gv_path_join(dirs[0], e->d_name);
                if (is_dir(p))
                        strv_extend(&out, e->d_name);
        }
        closedir(d);
        strv_sort(out);
        *ret = TAKE_PTR(out);
        return 0;
}

bool gv_cgroup_populated(const char *root, const char *group)
{
        _cleanup_strv_free_ char **dirs = group_dirs(root, group, gv_cgroup_detect(root, NULL));

        STRV_FOREACH(d, dirs) {
                _cleanup_free_ char *p = gv_path_join(*d, "cgroup.procs"), *text = NULL;
                size_t n = 0;
                _cleanup_strv_free_ char **pids = NULL;
                if (gv_read_file(p, 1 << 20, &text, &n) < 0 || !n)
                        continue;
                /* A cgroup file system lists live members only; a test's stand-in tree keeps
                 * what was written, so each pid is checked. */
                pids = strv_split(text, "\n");
                STRV_FOREACH(s, pids) {
                        uint32_t pid;
                        if (gv_parse_u32(*s, 10, &pid) == 0 && pid > 0 &&
                            (kill((pid_t)pid, 0) == 0 || errno == EPERM))
                                return true;
                }
        }
        return false;
}
