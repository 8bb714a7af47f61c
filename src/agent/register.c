/* SPDX-License-Identifier: MIT */
/*
 * register.c — register with the controller and heartbeat (register.h).
 */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "agent/register.h"
#include "http/client.h"
#include "util/alloc.h"
#include "util/fileio.h"
#include "util/parse.h"

#define CALL_TIMEOUT_MS 10000

struct gv_registrar {
        struct gv_registrar_config cfg;
        char *controller, *token, *name, *endpoint, *secret, *ca_file;
        pthread_t thread;
        pthread_mutex_t mu;
        pthread_cond_t cond;
        bool stopping;
};

static int call(struct gv_registrar *g, const char *path, const char *body, int *ret_status)
{
        _cleanup_free_ char *auth = g->token ? xasprintf("Authorization: Bearer %s", g->token)
                                             : NULL;
        const char *headers[] = { auth, NULL };
        struct gv_http_client_req rq = {
                .endpoint = g->controller, .method = "POST", .path = path,
                .body = body, .body_len = body ? strlen(body) : 0,
                .headers = auth ? headers : NULL, .timeout_ms = CALL_TIMEOUT_MS,
                .ca_file = g->ca_file,
        };
        struct gv_http_client_reply rp = { 0 };
        int r = gv_http_client_send(&rq, &rp, NULL);

        if (r >= 0)
                *ret_status = rp.status;
        gv_http_client_reply_done(&rp);
        return r;
}

static void *run(void *arg)
{
        struct gv_registrar *g = arg;
        _cleanup_free_ char *hb = xasprintf("/api/v1/hosts/%s/heartbeat", g->name);
        json_t *j = json_pack("{s:s, s:s}", "name", g->name, "endpoint", g->endpoint);
        if (g->secret)
                json_object_set_new(j, "agent_secret", json_string(g->secret));
        _cleanup_free_ char *reg = json_dumps(j, JSON_COMPACT);
        bool registered = false;

        json_decref(j);
        for (;;) {
                int status = 0;
                if (!registered)
                        registered = call(g, "/api/v1/hosts", reg, &status) >= 0 &&
                                     status / 100 == 2;
                else if (call(g, hb, NULL, &status) >= 0 && status == 404)
                        registered = false; /* the controller forgot us: register again */
                pthread_mutex_lock(&g->mu);
                struct timespec ts;
                clock_gettime(CLOCK_REALTIME, &ts);
                int ms = registered ? g->cfg.interval_ms : 1000;
                ts.tv_sec += ms / 1000;
                ts.tv_nsec += (long)(ms % 1000) * 1000000L;
                if (ts.tv_nsec >= 1000000000L) {
                        ts.tv_sec++;
                        ts.tv_nsec -= 1000000000L;
                }
                if (!g->stopping)
                        (void)pthread_cond_timedwait(&g->cond, &g->mu, &ts);
                bool stop = g->stopping;
                pthread_mutex_unlock(&g->mu);
                if (stop)
                        return NULL;
        }
}

int gv_registrar_start(const struct gv_registrar_config *cfg, struct gv_registrar **ret,
                       struct gv_error **err)
{
        struct gv_registrar *g;

        if (!cfg->controller || !cfg->name || !cfg->endpoint)
                return gv_error_set(err, EINVAL, "Registering needs the controller's URL, this "
                                    "host's name and the endpoint it is reached at.");
        g = xnew0(struct gv_registrar, 1);
        g->cfg = *cfg;
        if (g->cfg.interval_ms <= 0)
                g->cfg.interval_ms = 5000;
        g->controller = xstrdup(cfg->controller);
        g->token = cfg->token ? xstrdup(cfg->token) : NULL;
        g->name = xstrdup(cfg->name);
        g->endpoint = xstrdup(cfg->endpoint);
        g->secret = cfg->secret ? xstrdup(cfg->secret) : NULL;
        g->ca_file = cfg->ca_file ? xstrdup(cfg->ca_file) : NULL;
        pthread_mutex_init(&g->mu, NULL);
        pthread_cond_init(&g->cond, NULL);
        if (pthread_create(&g->thread, NULL, run, g) != 0)
                abort();
        *ret = g;
        return 0;
}

struct gv_registrar *gv_registrar_stop(struct gv_registrar *g)
{
        if (!g)
                return NULL;
        pthread_mutex_lock(&g->mu);
        g->stopping = true;
        pthread_cond_broadcast(&g->cond);
        pthread_mutex_unlock(&g->mu);
        pthread_join(g->thread, NULL);
        pthread_mutex_destroy(&g->mu);
        pthread_cond_destroy(&g->cond);
        free(g->controller);
        free(g->token);
        free(g->name);
        free(g->endpoint);
        if (g->secret)
                explicit_bzero(g->secret, strlen(g->secret));
        free(g->secret);
        free(g->ca_file);
        free(g);
        return NULL;
}

/* ---- the agent's secret ---- */

static int secret_create(const char *path, struct gv_error **err)
{
        static const char hex[] = "0123456789abcdef";
        uint8_t raw[GV_AGENT_SECRET_HEX / 2];
        char text[GV_AGENT_SECRET_HEX + 2];

        if (getrandom(raw, sizeof(raw), 0) != (ssize_t)sizeof(raw))
                return gv_error_set(err, EIO, "cannot read random bytes for the agent's "
                                    "secret: %s.", strerror(errno));
        for (size_t i = 0; i < sizeof(raw); i++) {
                text[2 * i] = hex[raw[i] >> 4];
                text[2 * i + 1] = hex[raw[i] & 15];
        }
        explicit_bzero(raw, sizeof(raw));
        text[GV_AGENT_SECRET_HEX] = '\n';
        text[GV_AGENT_SECRET_HEX + 1] = '\0';
        int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
        if (fd < 0) {
                explicit_bzero(text, sizeof(text));
                if (errno == EEXIST)
                        return 0; /* made by someone else in the meantime: read theirs */
                return gv_error_set(err, errno, "cannot create the agent's secret file '%s': "
                                    "%s.", path, strerror(errno));
        }
        ssize_t n = write(fd, text, GV_AGENT_SECRET_HEX + 1);
        int e = errno;
        explicit_bzero(text, sizeof(text));
        if (n != GV_AGENT_SECRET_HEX + 1 || fsync(fd) < 0) {
                close(fd);
                (void)unlink(path);
                return gv_error_set(err, n < 0 ? e : EIO, "cannot write the agent's secret "
                                    "file '%s'.", path);
        }
        close(fd);
        return 0;
}

int gv_agent_secret_load(const char *path, bool create, char **ret, struct gv_error **err)
{
        _cleanup_free_ char *text = NULL;
        size_t len = 0;
        struct stat st;
        int r;

        if (create && lstat(path, &st) < 0 && errno == ENOENT) {
                r = secret_create(path, err);
                if (r < 0)
                        return r;
        }
        int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
        if (fd < 0)
                return gv_error_set(err, errno, "cannot open the agent's secret file '%s': %s.",
                                    path, strerror(errno));
        if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
                close(fd);
                return gv_error_set(err, EINVAL, "the agent's secret file '%s' is not a regular "
                                    "file.", path);
        }
        close(fd);
        if (st.st_mode & (S_IRWXG | S_IRWXO))
                return gv_error_set(err, EPERM, "the agent's secret file '%s' may be read by "
                                    "group or others (mode %04o); chmod 600 it.", path,
                                    (unsigned)(st.st_mode & 07777));
        r = gv_read_file(path, 4096, &text, &len);
        if (r < 0)
                return gv_error_set(err, -r, "cannot read the agent's secret file '%s': %s.",
                                    path, strerror(-r));
        if (len > 0 && text[len - 1] == '\n')
                text[--len] = '\0';
        bool ok = len == GV_AGENT_SECRET_HEX;
        for (size_t i = 0; ok && i < len; i++)
                ok = isxdigit((unsigned char)text[i]);
        if (!ok) {
                explicit_bzero(text, len);
                return gv_error_set(err, EINVAL, "the agent's secret file '%s' does not hold %d "
                                    "hex digits; remove it (a new secret is made at the next "
                                    "start) or write one ('openssl rand -hex 32').", path,
                                    GV_AGENT_SECRET_HEX);
        }
        *ret = TAKE_PTR(text);
        return 0;
}

bool gv_endpoint_is_local(const char *ep)
{
        if (gv_startswith(ep, "unix:"))
                return true;
        const char *h = gv_startswith(ep, "https://") ? ep + 8
                        : gv_startswith(ep, "http://") ? ep + 7 : NULL;
        if (!h)
                return false;
        return gv_startswith(h, "127.") || gv_startswith(h, "[::1]") ||
               gv_startswith(h, "localhost:") || strcmp(h, "localhost") == 0;
}
