/* Open- and closed-loop HTTP/1.1 load generator for bench/serving.py.

   wrk (closed loop) has no fixed-rate mode, and wrk2, which adds one, is not packaged where
   basketry is benchmarked; the Python client that stood in for it costs about a third of a
   core at 5,000 requests/s, taken from the same two cores the server runs on. This is the
   same measurement in C: a single thread, non-blocking keep-alive connections under epoll.

     loadgen HOST PORT PATH BODIES_FILE CONNECTIONS SECONDS RATE

   RATE > 0: open loop. Each connection sends on a fixed schedule (RATE / CONNECTIONS per
   second, connections staggered evenly), one request at a time; a request whose turn comes
   while the previous answer is still awaited goes as soon as that answer arrives, and its
   latency counts from its scheduled time, so a slow server is not hidden by the client waiting
   for it (coordinated omission). A second figure counts from the moment the request was
   written when the server had answered the previous request before this one was due.
   RATE = 0: closed loop, each connection sends its next request as soon as it has an answer.

   Prints one line: JSON {...} with requests, errors, non2xx, seconds, p50/p90/p99/mean in
   milliseconds (and the same without client lateness). Bodies: one JSON document per line,
   sent in turn from a per-connection offset. */

#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

typedef struct {
    int fd;
    double due;        /* scheduled time of the next request (open loop) */
    double scheduled;  /* of the request in flight */
    double sent;       /* when it was written */
    double answered;   /* when the previous answer arrived */
    int in_flight;
    size_t next_body;
    char buf[65536];
    size_t have;
} conn_t;

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static char **requests;
static size_t *request_len;
static size_t n_requests;

static void load_bodies(const char *host, const char *path, const char *file) {
    FILE *f = fopen(file, "r");
    if (!f) { perror(file); exit(2); }
    size_t cap = 1024;
    requests = malloc(cap * sizeof *requests);
    request_len = malloc(cap * sizeof *request_len);
    char *line = NULL;
    size_t n = 0;
    ssize_t len;
    while ((len = getline(&line, &n, f)) > 0) {
        while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r')) line[--len] = 0;
        if (len == 0) continue;
        if (n_requests == cap) {
            cap *= 2;
            requests = realloc(requests, cap * sizeof *requests);
            request_len = realloc(request_len, cap * sizeof *request_len);
        }
        char *req = NULL;
        int m = asprintf(&req, "POST %s HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json"
                         "\r\nContent-Length: %zd\r\n\r\n%s", path, host, len, line);
        if (m < 0) { perror("asprintf"); exit(2); }
        requests[n_requests] = req;
        request_len[n_requests++] = (size_t)m;
    }
    free(line);
    fclose(f);
    if (n_requests == 0) { fprintf(stderr, "%s: no bodies\n", file); exit(2); }
}

/* The length of a complete response at the start of buf, 0 if it is not complete yet, -1 if it
   cannot be read (no Content-Length). *status gets the status code. */
static long response_length(const char *buf, size_t have, int *status) {
    const char *end = memmem(buf, have, "\r\n\r\n", 4);
    if (!end) return 0;
    size_t head = (size_t)(end - buf) + 4;
    *status = have > 12 ? atoi(buf + 9) : 0;
    const char *p = buf;
    long body = -1;
    while (p < end) {
        const char *eol = memmem(p, (size_t)(end - p) + 2, "\r\n", 2);
        if (!eol) break;
        if ((size_t)(eol - p) > 15 && strncasecmp(p, "content-length:", 15) == 0)
            body = atol(p + 15);
        p = eol + 2;
    }
    if (body < 0) return -1;
    return head + (size_t)body <= have ? (long)(head + (size_t)body) : 0;
}

static int open_conn(const char *host, int port) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    inet_pton(AF_INET, host, &addr.sin_addr);
    if (connect(fd, (struct sockaddr *)&addr, sizeof addr) != 0) { perror("connect"); exit(2); }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    fcntl(fd, F_SETFL, O_NONBLOCK);
    return fd;
}

int main(int argc, char **argv) {
    if (argc != 8) {
        fprintf(stderr, "usage: %s HOST PORT PATH BODIES CONNECTIONS SECONDS RATE\n", argv[0]);
        return 2;
    }
    const char *host = argv[1];
    int port = atoi(argv[2]);
    int n_conns = atoi(argv[5]);
    double duration = atof(argv[6]), rate = atof(argv[7]);
    load_bodies(host, argv[3], argv[4]);

    size_t cap = (size_t)((rate > 0 ? rate : 50000) * duration * 1.2) + 1024;
    double *lat = malloc(cap * sizeof *lat), *lat_server = malloc(cap * sizeof *lat_server);
    size_t n_lat = 0;
    long errors = 0, non2xx = 0;

    int ep = epoll_create1(0);
    conn_t *conns = calloc((size_t)n_conns, sizeof *conns);
    double interval = rate > 0 ? n_conns / rate : 0;
    double start = now() + 0.05, end = start + duration;
    for (int i = 0; i < n_conns; i++) {
        conns[i].fd = open_conn(host, port);
        conns[i].due = start + i * interval / n_conns;
        conns[i].next_body = (size_t)i * 7919;
        struct epoll_event ev = {.events = EPOLLIN, .data.u32 = (uint32_t)i};
        epoll_ctl(ep, EPOLL_CTL_ADD, conns[i].fd, &ev);
    }
    /* the next due request wakes the loop through a timer in the epoll set: microsecond
       precision without spinning between requests */
    prctl(PR_SET_TIMERSLACK, 1UL, 0, 0, 0);
    int timer = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK);
    struct epoll_event tev = {.events = EPOLLIN, .data.u32 = UINT32_MAX};
    epoll_ctl(ep, EPOLL_CTL_ADD, timer, &tev);
    int active = n_conns;
    long timeouts = 0;
    struct epoll_event events[256];
    while (active > 0) {
        double t = now();
        double next_due = end + 3600;
        for (int i = 0; i < n_conns; i++) {
            conn_t *c = &conns[i];
            if (c->fd < 0) continue;
            if (c->in_flight) {
                if (t > end + 5) {  /* an answer that never came */
                    timeouts++;
                    close(c->fd);
                    c->fd = -1;
                    active--;
                }
                continue;
            }
            double due = rate > 0 ? c->due : t;
            if (due >= end || t >= end + (rate > 0 ? 5 : 0)) {
                close(c->fd);
                c->fd = -1;
                active--;
                continue;
            }
            if (due > t) {
                if (due < next_due) next_due = due;
                continue;
            }
            size_t k = c->next_body++ % n_requests;
            c->scheduled = due;
            c->sent = now();
            c->due += interval;
            c->in_flight = 1;
            c->have = 0;
            const char *p = requests[k];
            size_t left = request_len[k];
            while (left > 0) {  /* small requests: the socket buffer takes them at once */
                ssize_t w = write(c->fd, p, left);
                if (w < 0) {
                    if (errno == EAGAIN) continue;
                    errors++;
                    break;
                }
                p += (size_t)w;
                left -= (size_t)w;
            }
        }
        if (active == 0) break;
        struct itimerspec its = {0};
        if (next_due < end) {
            its.it_value.tv_sec = (time_t)next_due;
            its.it_value.tv_nsec = (long)((next_due - (double)(time_t)next_due) * 1e9);
            if (its.it_value.tv_sec == 0 && its.it_value.tv_nsec == 0) its.it_value.tv_nsec = 1;
        }
        timerfd_settime(timer, TFD_TIMER_ABSTIME, &its, NULL);
        int n = epoll_wait(ep, events, 256, 1000);
        double got = now();
        for (int e = 0; e < n; e++) {
            if (events[e].data.u32 == UINT32_MAX) {
                uint64_t ticks;
                if (read(timer, &ticks, sizeof ticks) < 0) { /* raced with a re-arm */ }
                continue;
            }
            conn_t *c = &conns[events[e].data.u32];
            if (c->fd < 0) continue;
            for (;;) {
                ssize_t r = read(c->fd, c->buf + c->have, sizeof c->buf - c->have);
                if (r < 0 && errno == EAGAIN) break;
                if (r <= 0) {
                    errors++;
                    close(c->fd);
                    c->fd = -1;
                    active--;
                    break;
                }
                c->have += (size_t)r;
                int status = 0;
                long size = response_length(c->buf, c->have, &status);
                if (size < 0 || (size == 0 && c->have == sizeof c->buf)) {
                    errors++;
                    close(c->fd);
                    c->fd = -1;
                    active--;
                    break;
                }
                if (size == 0) continue;
                if (n_lat < cap) {
                    lat[n_lat] = got - c->scheduled;
                    lat_server[n_lat] = got - (c->answered > c->scheduled ? c->scheduled : c->sent);
                    n_lat++;
                }
                if (status < 200 || status > 299) non2xx++;
                c->answered = got;
                c->in_flight = 0;
                c->have = 0;
                break;
            }
        }
    }
    double seconds = now() - start;
    if (n_lat == 0) { printf("JSON {\"requests\": 0, \"errors\": %ld}\n", errors); return 1; }
    double mean = 0;
    for (size_t i = 0; i < n_lat; i++) mean += lat[i];
    mean /= n_lat;
    qsort(lat, n_lat, sizeof *lat, cmp_double);
    qsort(lat_server, n_lat, sizeof *lat_server, cmp_double);
#define Q(a, p) ((a)[(size_t)((p) * n_lat) < n_lat ? (size_t)((p) * n_lat) : n_lat - 1] * 1000)
    printf("JSON {\"requests\": %zu, \"errors\": %ld, \"non2xx\": %ld, \"timeouts\": %ld, "
           "\"seconds\": %f, \"p50_ms\": %f, \"p90_ms\": %f, \"p99_ms\": %f, \"mean_ms\": %f, "
           "\"p50_ms_without_client_lateness\": %f, \"p99_ms_without_client_lateness\": %f}\n",
           n_lat, errors, non2xx, timeouts, seconds, Q(lat, 0.5), Q(lat, 0.9), Q(lat, 0.99), mean * 1000,
           Q(lat_server, 0.5), Q(lat_server, 0.99));
    return 0;
}
