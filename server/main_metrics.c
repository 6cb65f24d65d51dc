#include "main_metrics.h"

#include <microhttpd.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "main_report.h"

struct vg_metrics {
    struct MHD_Daemon *d;
    uv_poll_t poll;            /* on the daemon's epoll descriptor */
    uv_timer_t timer;          /* lets it expire idle connections */
    struct vg_main_state *st;
    int open_handles;
};

static enum MHD_Result reply(struct MHD_Connection *conn, unsigned status, const char *text)
{
    struct MHD_Response *r = MHD_create_response_from_buffer(strlen(text), (void *)text, MHD_RESPMEM_PERSISTENT);
    if (!r)
        return MHD_NO;
    MHD_add_response_header(r, "Content-Type", "text/plain; charset=utf-8");
    enum MHD_Result ret = MHD_queue_response(conn, status, r);
    MHD_destroy_response(r);
    return ret;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url, const char *method,
                                  const char *version, const char *upload, size_t *upload_size, void **req_cls)
{
    struct vg_metrics *m = cls;
    (void)version;
    (void)upload;
    (void)req_cls;
    if (*upload_size)
        return reply(conn, MHD_HTTP_BAD_REQUEST, "no request body expected\n");
    if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0)
        return reply(conn, MHD_HTTP_METHOD_NOT_ALLOWED, "GET /metrics\n");
    if (strcmp(url, "/metrics") != 0)
        return reply(conn, MHD_HTTP_NOT_FOUND, "gpu-server serves /metrics\n");
    size_t len = 0;
    char *text = vg_report_metrics(m->st, &len);
    if (!text)
        return reply(conn, MHD_HTTP_INTERNAL_SERVER_ERROR, "out of memory\n");
    struct MHD_Response *r = MHD_create_response_from_buffer(len, text, MHD_RESPMEM_MUST_FREE);
    if (!r) {
        free(text);
        return MHD_NO;
    }
    MHD_add_response_header(r, "Content-Type", "text/plain; version=0.0.4; charset=utf-8");
    enum MHD_Result ret = MHD_queue_response(conn, MHD_HTTP_OK, r);
    MHD_destroy_response(r);
    return ret;
}

static void on_ready(uv_poll_t *p, int status, int events)
{
    struct vg_metrics *m = p->data;
    (void)status;
    (void)events;
    MHD_run(m->d);
}

static void on_tick(uv_timer_t *t)
{
    struct vg_metrics *m = t->data;
    MHD_run(m->d);
}

struct vg_metrics *vg_metrics_start(uv_loop_t *loop, const char *addr, struct vg_main_state *st, int *bound_port)
{
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof ss);
    char host[256];
    const char *colon = strrchr(addr, ':');
    int ok = 0;
    if (colon && (size_t)(colon - addr) < sizeof host) {
        memcpy(host, addr, (size_t)(colon - addr));
        host[colon - addr] = 0;
        int port = atoi(colon + 1);
        ok = uv_ip4_addr(host, port, (struct sockaddr_in *)&ss) == 0 ||
             uv_ip6_addr(host, port, (struct sockaddr_in6 *)&ss) == 0;
    }
    if (!ok) {
        vg_error("--metrics '%s': expected HOST:PORT", addr);
        return NULL;
    }
    struct vg_metrics *m = calloc(1, sizeof *m);
    if (!m)
        return NULL;
    m->st = st;
    unsigned flags = MHD_USE_EPOLL | (ss.ss_family == AF_INET6 ? MHD_USE_IPv6 : 0);
    m->d = MHD_start_daemon(flags, 0, NULL, NULL, on_request, m, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&ss,
                            MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)10, MHD_OPTION_CONNECTION_LIMIT, (unsigned)64,
                            MHD_OPTION_END);
    if (!m->d) {
        vg_error("cannot serve metrics on %s", addr);
        free(m);
        return NULL;
    }
    const union MHD_DaemonInfo *epfd = MHD_get_daemon_info(m->d, MHD_DAEMON_INFO_EPOLL_FD);
    const union MHD_DaemonInfo *port = MHD_get_daemon_info(m->d, MHD_DAEMON_INFO_BIND_PORT);
    *bound_port = port ? port->port : 0;
    if (!epfd || uv_poll_init(loop, &m->poll, epfd->epoll_fd) != 0) {
        MHD_stop_daemon(m->d);
        free(m);
        return NULL;
    }
    uv_timer_init(loop, &m->timer);
    m->poll.data = m->timer.data = m;
    m->open_handles = 2;
    uv_poll_start(&m->poll, UV_READABLE, on_ready);
    uv_timer_start(&m->timer, on_tick, 1000, 1000);
    vg_info("metrics on http://%s/metrics", addr);
    return m;
}

static void handle_closed(uv_handle_t *h)
{
    struct vg_metrics *m = h->data;
    if (--m->open_handles == 0) {
        MHD_stop_daemon(m->d);
        free(m);
    }
}

void vg_metrics_stop(struct vg_metrics *m)
{
    if (!m)
        return;
    uv_poll_stop(&m->poll);
    uv_close((uv_handle_t *)&m->poll, handle_closed);
    uv_close((uv_handle_t *)&m->timer, handle_closed);
}
