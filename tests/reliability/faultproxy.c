/* SPDX-License-Identifier: MIT */
/*
 * faultproxy — a TCP proxy that injects network faults between the controller and an agent
 * (tests/reliability/test-partition.sh; docs/reliability.md "Partitions and fencing"). The
 * kernels the tests run on have no netem, so delay and loss are made here, at the TCP level.
 *
 *   faultproxy --listen ADDR:PORT --to ADDR:PORT --control PATH
 *              [--delay MS] [--jitter MS] [--loss PCT] [--loss-mode stall|reset] [--seed N]
 *
 * Every accepted connection is connected to --to and its bytes pumped both ways, one thread per
 * direction ("up": client to server, "down": server to client), each chunk as read (up to 16 KiB).
 *
 *   delay    each chunk waits MS ± JITTER (uniform) before it is written on. One thread per
 *            direction keeps the order of the stream, as TCP does.
 *   loss     TCP never loses bytes: a lost segment is sent again, so what an application sees of
 *            packet loss is time. With --loss-mode stall (the default) a chunk is "lost" with
 *            probability PCT and arrives one retransmission timeout later (200 ms, Linux's least
 *            RTO, doubled for each further loss drawn for the same chunk); a new connection is
 *            "lost" (its SYN) with the same probability and connects 1 s later (the initial
 *            RTO, RFC 6298). With --loss-mode reset a lost chunk instead ends the connection
 *            both ways (the client reads EOF or a reset): a middlebox that drops the flow, the
 *            harsh case where requests die midway.
 *   blackhole  none, up, down or both: the blackholed direction is not read any more (its
 *            sender's data waits in the kernel's buffers, as unacknowledged segments would) and
 *            a new connection is not connected on while "up" is blackholed (as a SYN that gets
 *            no answer); all of it flows again when healed, unless the peer gave up meanwhile.
 *
 * Control: a UNIX stream socket at --control; one command a line, one answer line each:
 *   delay MS [JITTER] | loss PCT | loss-mode stall|reset | blackhole none|up|down|both | stats
 * "stats" answers "connections N chunks N lost N resets N delay MS jitter MS loss PCT
 * blackhole X". SIGTERM or SIGINT ends it.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "util/parse.h"

#define CHUNK 16384
#define RTO_MS 200
#define SYN_RTO_MS 1000

enum { BH_NONE = 0, BH_UP = 1, BH_DOWN = 2, BH_BOTH = 3 };

static struct {
        _Atomic uint32_t delay_ms, jitter_ms, loss_pct;
        _Atomic bool reset_mode;
        _Atomic int blackhole;
        _Atomic uint64_t connections, chunks, lost, resets;
        struct sockaddr_in to;
        pthread_mutex_t rng_mu;
        uint64_t rng;
} P = { .rng_mu = PTHREAD_MUTEX_INITIALIZER, .rng = 0x9e3779b97f4a7c15ull };

static uint64_t rnd(void)
{
        pthread_mutex_lock(&P.rng_mu);
        /* xorshift64* */
        P.rng ^= P.rng >> 12;
        P.rng ^= P.rng << 25;
        P.rng ^= P.rng >> 27;
        uint64_t r = P.rng * 2685821657736338717ull;
        pthread_mutex_unlock(&P.rng_mu);
        return r;
}

static bool draw_loss(void)
{
        uint32_t p = atomic_load(&P.loss_pct);
        return p && rnd() % 10000 < (uint64_t)p * 100;
}

static void sleep_ms(uint64_t ms)
{
        struct timespec ts = { .tv_sec = (time_t)(ms / 1000), .tv_nsec = (long)(ms % 1000) * 1000000L };
        while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
                ;
}

static bool blackholed(int dir)
{
        return (atomic_load(&P.blackhole) & dir) != 0;
}

static int parse_addr(const char *s, struct sockaddr_in *ret)
{
        char host[64];
        const char *colon = strrchr(s, ':');
        uint32_t port;

        if (!colon || (size_t)(colon - s) >= sizeof(host) || gv_parse_u32(colon + 1, 10, &port) < 0 ||
            port == 0 || port > 65535)
                return -EINVAL;
        memcpy(host, s, (size_t)(colon - s));
        host[colon - s] = 0;
        memset(ret, 0, sizeof(*ret));
        ret->sin_family = AF_INET;
        ret->sin_port = htons((uint16_t)port);
        return inet_pton(AF_INET, host, &ret->sin_addr) == 1 ? 0 : -EINVAL;
}

struct pump {
        int from, to, dir;
        struct pump *peer;
        _Atomic int *refs;
};

static void pump_end(struct pump *p)
{
        /* Both ways end together: a half that ended takes the other with it. */
        shutdown(p->from, SHUT_RDWR);
        shutdown(p->to, SHUT_RDWR);
        if (atomic_fetch_sub(p->refs, 1) == 1) {
                close(p->from);
                close(p->to);
                free(p->refs);
                free(p->peer < p ? p->peer : p);
        }
}

static void *pump_run(void *arg)
{
        struct pump *p = arg;
        char *buf = malloc(CHUNK);

        while (buf) {
                while (blackholed(p->dir))
                        sleep_ms(20);
                ssize_t n = read(p->from, buf, CHUNK);
                if (n <= 0)
                        break;
                atomic_fetch_add(&P.chunks, 1);
                uint64_t d = atomic_load(&P.delay_ms), j = atomic_load(&P.jitter_ms);
                if (j) {
                        uint64_t x = rnd() % (2 * j + 1);
                        d = d + x >= j ? d + x - j : 0;
                }
                if (draw_loss()) {
                        atomic_fetch_add(&P.lost, 1);
                        if (atomic_load(&P.reset_mode)) {
                                atomic_fetch_add(&P.resets, 1);
                                struct linger lg = { .l_onoff = 1, .l_linger = 0 };
                                setsockopt(p->from, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
                                setsockopt(p->to, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
                                break;
                        }
                        uint64_t rto = RTO_MS;
                        do {
                                d += rto;
                                rto *= 2;
                        } while (draw_loss() && rto <= 8 * RTO_MS);
                }
                if (d)
                        sleep_ms(d);
                while (blackholed(p->dir))
                        sleep_ms(20);
                for (ssize_t off = 0; off < n;) {
                        ssize_t w = write(p->to, buf + off, (size_t)(n - off));
                        if (w <= 0)
                                goto out;
                        off += w;
                }
        }
out:
        free(buf);
        pump_end(p);
        return NULL;
}

static void *conn_run(void *arg)
{
        int cfd = (int)(intptr_t)arg;
        int sfd = -1;

        /* A SYN blackholed or lost: the connection waits, as the client's kernel would. */
        while (blackholed(BH_UP))
                sleep_ms(20);
        if (draw_loss()) {
                atomic_fetch_add(&P.lost, 1);
                sleep_ms(SYN_RTO_MS);
        }
        sfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (sfd < 0 || connect(sfd, (struct sockaddr *)&P.to, sizeof(P.to)) < 0) {
                if (sfd >= 0)
                        close(sfd);
                close(cfd);
                return NULL;
        }
        int one = 1;
        setsockopt(sfd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        setsockopt(cfd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        struct pump *pp = calloc(2, sizeof(*pp));
        _Atomic int *refs = malloc(sizeof(*refs));
        if (!pp || !refs) {
                free(pp);
                free(refs);
                close(sfd);
                close(cfd);
                return NULL;
        }
        atomic_init(refs, 2);
        pp[0] = (struct pump){ .from = cfd, .to = sfd, .dir = BH_UP, .peer = &pp[1], .refs = refs };
        pp[1] = (struct pump){ .from = sfd, .to = cfd, .dir = BH_DOWN, .peer = &pp[0], .refs = refs };
        pthread_t t;
        pthread_attr_t at;
        pthread_attr_init(&at);
        pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED);
        if (pthread_create(&t, &at, pump_run, &pp[1]) != 0) {
                pthread_attr_destroy(&at);
                free(pp);
                free(refs);
                close(sfd);
                close(cfd);
                return NULL;
        }
        pthread_attr_destroy(&at);
        pump_run(&pp[0]);
        return NULL;
}

static const char *bh_name(int b)
{
        static const char *const n[] = { "none", "up", "down", "both" };
        return n[b & 3];
}

static void control_line(char *line, FILE *out)
{
        char *save = NULL, *cmd = strtok_r(line, " \t\r\n", &save);
        char *a1 = cmd ? strtok_r(NULL, " \t\r\n", &save) : NULL;
        char *a2 = a1 ? strtok_r(NULL, " \t\r\n", &save) : NULL;
        uint32_t v = 0, w = 0;

        if (!cmd) {
                fprintf(out, "error: empty command\n");
        } else if (!strcmp(cmd, "delay") && a1 && gv_parse_u32(a1, 10, &v) >= 0 &&
                   (!a2 || gv_parse_u32(a2, 10, &w) >= 0)) {
                atomic_store(&P.delay_ms, v);
                atomic_store(&P.jitter_ms, a2 ? w : 0);
                fprintf(out, "ok\n");
        } else if (!strcmp(cmd, "loss") && a1 && gv_parse_u32(a1, 10, &v) >= 0 && v <= 100) {
                atomic_store(&P.loss_pct, v);
                fprintf(out, "ok\n");
        } else if (!strcmp(cmd, "loss-mode") && a1 &&
                   (!strcmp(a1, "stall") || !strcmp(a1, "reset"))) {
                atomic_store(&P.reset_mode, !strcmp(a1, "reset"));
                fprintf(out, "ok\n");
        } else if (!strcmp(cmd, "blackhole") && a1) {
                int b = -1;
                for (int i = 0; i < 4; i++)
                        if (!strcmp(a1, bh_name(i)))
                                b = i;
                if (b < 0) {
                        fprintf(out, "error: blackhole '%s': none, up, down or both\n", a1);
                } else {
                        atomic_store(&P.blackhole, b);
                        fprintf(out, "ok\n");
                }
        } else if (!strcmp(cmd, "stats")) {
                fprintf(out, "connections %llu chunks %llu lost %llu resets %llu delay %u "
                        "jitter %u loss %u blackhole %s\n",
                        (unsigned long long)atomic_load(&P.connections),
                        (unsigned long long)atomic_load(&P.chunks),
                        (unsigned long long)atomic_load(&P.lost),
                        (unsigned long long)atomic_load(&P.resets), atomic_load(&P.delay_ms),
                        atomic_load(&P.jitter_ms), atomic_load(&P.loss_pct),
                        bh_name(atomic_load(&P.blackhole)));
        } else {
                fprintf(out, "error: '%s': commands are delay MS [JITTER], loss PCT (0-100), "
                        "loss-mode stall|reset, blackhole none|up|down|both, stats\n", cmd);
        }
        fflush(out);
}

static void *control_run(void *arg)
{
        int lfd = (int)(intptr_t)arg;

        for (;;) {
                int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
                if (fd < 0) {
                        if (errno == EINTR || errno == ECONNABORTED)
                                continue;
                        return NULL;
                }
                FILE *f = fdopen(fd, "r+");
                if (!f) {
                        close(fd);
                        continue;
                }
                char line[256];
                while (fgets(line, sizeof(line), f))
                        control_line(line, f);
                fclose(f);
        }
}

static int usage(void)
{
        fprintf(stderr, "usage: faultproxy --listen ADDR:PORT --to ADDR:PORT --control PATH\n"
                        "                  [--delay MS] [--jitter MS] [--loss PCT]\n"
                        "                  [--loss-mode stall|reset] [--seed N]\n");
        return 2;
}

int main(int argc, char **argv)
{
        static const struct option opts[] = {
                { "listen", required_argument, NULL, 'l' },
                { "to", required_argument, NULL, 't' },
                { "control", required_argument, NULL, 'c' },
                { "delay", required_argument, NULL, 'd' },
                { "jitter", required_argument, NULL, 'j' },
                { "loss", required_argument, NULL, 'p' },
                { "loss-mode", required_argument, NULL, 'm' },
                { "seed", required_argument, NULL, 's' },
                {},
        };
        const char *listen_s = NULL, *to_s = NULL, *control = NULL;
        struct sockaddr_in la;
        uint32_t v;
        uint64_t seed;
        int o;

        while ((o = getopt_long(argc, argv, "", opts, NULL)) >= 0) {
                switch (o) {
                case 'l': listen_s = optarg; break;
                case 't': to_s = optarg; break;
                case 'c': control = optarg; break;
                case 'd':
                case 'j':
                case 'p':
                        if (gv_parse_u32(optarg, 10, &v) < 0 || (o == 'p' && v > 100)) {
                                fprintf(stderr, "faultproxy: '%s' is not a number%s.\n", optarg,
                                        o == 'p' ? " from 0 to 100" : "");
                                return 2;
                        }
                        atomic_store(o == 'd' ? &P.delay_ms : o == 'j' ? &P.jitter_ms
                                                                       : &P.loss_pct, v);
                        break;
                case 'm':
                        if (strcmp(optarg, "stall") && strcmp(optarg, "reset")) {
                                fprintf(stderr, "faultproxy: --loss-mode '%s': stall or reset.\n",
                                        optarg);
                                return 2;
                        }
                        atomic_store(&P.reset_mode, !strcmp(optarg, "reset"));
                        break;
                case 's':
                        if (gv_parse_u64(optarg, 10, &seed) < 0) {
                                fprintf(stderr, "faultproxy: --seed '%s' is not a number.\n",
                                        optarg);
                                return 2;
                        }
                        P.rng = seed ? seed : 1;
                        break;
                default: return usage();
                }
        }
        if (!listen_s || !to_s || !control || optind != argc)
                return usage();
        if (parse_addr(listen_s, &la) < 0 || parse_addr(to_s, &P.to) < 0) {
                fprintf(stderr, "faultproxy: an address is IPv4ADDR:PORT ('%s', '%s').\n",
                        listen_s, to_s);
                return 2;
        }
        signal(SIGPIPE, SIG_IGN);

        int lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), one = 1;
        setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
        if (lfd < 0 || bind(lfd, (struct sockaddr *)&la, sizeof(la)) < 0 || listen(lfd, 128) < 0) {
                fprintf(stderr, "faultproxy: cannot listen on %s: %s\n", listen_s,
                        strerror(errno));
                return 1;
        }
        struct sockaddr_un ua = { .sun_family = AF_UNIX };
        if (strlen(control) >= sizeof(ua.sun_path)) {
                fprintf(stderr, "faultproxy: --control '%s' is too long for a UNIX socket.\n",
                        control);
                return 2;
        }
        strcpy(ua.sun_path, control);
        unlink(control);
        int cfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (cfd < 0 || bind(cfd, (struct sockaddr *)&ua, sizeof(ua)) < 0 || listen(cfd, 8) < 0) {
                fprintf(stderr, "faultproxy: cannot listen on %s: %s\n", control,
                        strerror(errno));
                return 1;
        }
        pthread_t t;
        if (pthread_create(&t, NULL, control_run, (void *)(intptr_t)cfd) != 0)
                return 1;
        pthread_detach(t);
        printf("faultproxy: %s -> %s, control %s\n", listen_s, to_s, control);
        fflush(stdout);
        for (;;) {
                int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
                if (fd < 0) {
                        if (errno == EINTR || errno == ECONNABORTED || errno == EMFILE)
                                continue;
                        break;
                }
                atomic_fetch_add(&P.connections, 1);
                pthread_attr_t at;
                pthread_attr_init(&at);
                pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED);
                if (pthread_create(&t, &at, conn_run, (void *)(intptr_t)fd) != 0)
                        close(fd);
                pthread_attr_destroy(&at);
        }
        return 1;
}
