/* gpu-server's admin endpoint (vgpu-smi's): one request line, one JSON answer, then close.
 *
 *   status      the whole status (main_report.c)
 *   reload      re-read the tenants file: {"ok":true} or {"ok":false,"error":"..."}
 *   end ID      end session ID (SIGTERM to its process)
 *
 * It listens only where the operator says (--admin; 127.0.0.1:7301 by default) and takes no
 * tenant token: whoever reaches it is an operator. Main process, loop thread. */
#include "main_admin.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"
#include "main_report.h"

#define ADMIN_LINE_MAX 256
#define ADMIN_TIMEOUT_MS 5000

struct vg_admin {
    union {
        uv_tcp_t tcp;
        uv_pipe_t pipe;
        uv_stream_t stream;
    } listener;
    int is_unix;
    char path[108];
    struct vg_main_state *st;
};

struct admin_conn {
    union {
        uv_tcp_t tcp;
        uv_pipe_t pipe;
        uv_stream_t stream;
        uv_handle_t handle;
    } h;
    uv_timer_t timer;
    struct vg_admin *admin;
    char line[ADMIN_LINE_MAX];
    size_t len;
    int answered;
    int open_handles;
    uv_write_t wreq;
    char *answer;
};

static void conn_closed(uv_handle_t *h)
{
    struct admin_conn *c = h->data;
    if (--c->open_handles == 0) {
        free(c->answer);
        free(c);
    }
}

static void conn_close(struct admin_conn *c)
{
    if (uv_is_closing(&c->h.handle))
        return;
    uv_close(&c->h.handle, conn_closed);
    uv_close((uv_handle_t *)&c->timer, conn_closed);
}

static void on_written(uv_write_t *w, int status)
{
    (void)status;
    conn_close(w->data);
}

static void answer(struct admin_conn *c, struct json_object *o)
{
    const char *text = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN);
    size_t n = strlen(text);
    c->answer = malloc(n + 1);
    if (c->answer) {
        memcpy(c->answer, text, n);
        c->answer[n] = '\n';
    }
    json_object_put(o);
    c->answered = 1;
    uv_read_stop(&c->h.stream);
    if (!c->answer) {
        conn_close(c);
        return;
    }
    uv_buf_t buf = uv_buf_init(c->answer, (unsigned)(n + 1));
    c->wreq.data = c;
    if (uv_write(&c->wreq, &c->h.stream, &buf, 1, on_written) != 0)
        conn_close(c);
}

static struct json_object *result(int ok, const char *error)
{
    struct json_object *o = json_object_new_object();
    json_object_object_add(o, "ok", json_object_new_boolean(ok));
    if (error)
        json_object_object_add(o, "error", json_object_new_string(error));
    return o;
}

static void run_request(struct admin_conn *c)
{
    struct vg_main_state *st = c->admin->st;
    char *line = c->line;
    line[strcspn(line, "\r\n")] = 0;
    if (!strcmp(line, "status")) {
        answer(c, vg_report_json(st));
    } else if (!strcmp(line, "reload")) {
        char err[512];
        if (st->reload(st, err, sizeof err) == 0) {
            answer(c, result(1, NULL));
        } else {
            vg_error("vgpu-smi reload: tenants not reloaded, the old ones stay: %s", err);
            answer(c, result(0, err));
        }
    } else if (!strncmp(line, "end ", 4)) {
        char *end;
        unsigned long long id = strtoull(line + 4, &end, 10);
        for (unsigned i = 0; *end == 0 && i < st->children.n; i++) {
            if (st->children.c[i].session_id == id) {
                vg_info("vgpu-smi: ending session %llu (process %d)", id, (int)st->children.c[i].pid);
                kill(st->children.c[i].pid, SIGTERM);
                answer(c, result(1, NULL));
                return;
            }
        }
        answer(c, result(0, "no such session"));
    } else {
        answer(c, result(0, "unknown request (status, reload, end ID)"));
    }
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    struct admin_conn *c = h->data;
    (void)suggested;
    *buf = uv_buf_init(c->line + c->len, (unsigned)(sizeof c->line - 1 - c->len));
}

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
    struct admin_conn *c = s->data;
    (void)buf;
    if (c->answered)
        return;
    if (n < 0) {
        conn_close(c);
        return;
    }
    c->len += (size_t)n;
    c->line[c->len] = 0;
    if (strchr(c->line, '\n'))
        run_request(c);
    else if (c->len == sizeof c->line - 1)
        answer(c, result(0, "request too long"));
}

static void on_timeout(uv_timer_t *t)
{
    conn_close(t->data);
}

static void on_connection(uv_stream_t *l, int status)
{
    struct vg_admin *a = l->data;
    if (status < 0)
        return;
    struct admin_conn *c = calloc(1, sizeof *c);
    if (!c)
        return;
    c->admin = a;
    if (a->is_unix)
        uv_pipe_init(l->loop, &c->h.pipe, 0);
    else
        uv_tcp_init(l->loop, &c->h.tcp);
    uv_timer_init(l->loop, &c->timer);
    c->h.handle.data = c->timer.data = c;
    c->open_handles = 2;
    if (uv_accept(l, &c->h.stream) != 0) {
        conn_close(c);
        return;
    }
    uv_timer_start(&c->timer, on_timeout, ADMIN_TIMEOUT_MS, 0);
    uv_read_start(&c->h.stream, on_alloc, on_read);
}

static void admin_freed(uv_handle_t *h)
{
    free(h->data);
}

struct vg_admin *vg_admin_start(uv_loop_t *loop, const char *addr, struct vg_main_state *st, int *bound_port)
{
    struct vg_admin *a = calloc(1, sizeof *a);
    if (!a)
        return NULL;
    a->st = st;
    int rc;
    *bound_port = 0;
    if (!strncmp(addr, "unix:", 5)) {
        a->is_unix = 1;
        snprintf(a->path, sizeof a->path, "%s", addr + 5);
        struct stat sb;
        if (lstat(a->path, &sb) == 0 && S_ISSOCK(sb.st_mode))
            unlink(a->path);
        uv_pipe_init(loop, &a->listener.pipe, 0);
        rc = uv_pipe_bind(&a->listener.pipe, a->path);
        if (rc == 0)
            chmod(a->path, 0600); /* operators only */
    } else {
        char host[256];
        const char *colon = strrchr(addr, ':');
        struct sockaddr_storage ss;
        rc = UV_EINVAL;
        if (colon && (size_t)(colon - addr) < sizeof host) {
            memcpy(host, addr, (size_t)(colon - addr));
            host[colon - addr] = 0;
            int port = atoi(colon + 1);
            if (uv_ip4_addr(host, port, (struct sockaddr_in *)&ss) == 0 ||
                uv_ip6_addr(host, port, (struct sockaddr_in6 *)&ss) == 0)
                rc = 0;
        }
        uv_tcp_init(loop, &a->listener.tcp);
        if (rc == 0)
            rc = uv_tcp_bind(&a->listener.tcp, (struct sockaddr *)&ss, 0);
        if (rc == 0) {
            struct sockaddr_storage b;
            int blen = sizeof b;
            uv_tcp_getsockname(&a->listener.tcp, (struct sockaddr *)&b, &blen);
            *bound_port = b.ss_family == AF_INET6 ? ntohs(((struct sockaddr_in6 *)&b)->sin6_port)
                                                  : ntohs(((struct sockaddr_in *)&b)->sin_port);
        }
    }
    a->listener.stream.data = a;
    if (rc == 0)
        rc = uv_listen(&a->listener.stream, 16, on_connection);
    if (rc != 0) {
        vg_error("admin endpoint %s: %s", addr, uv_strerror(rc));
        uv_close((uv_handle_t *)&a->listener.stream, admin_freed);
        return NULL;
    }
    vg_info("admin endpoint (vgpu-smi) on %s", addr);
    return a;
}

void vg_admin_stop(struct vg_admin *a)
{
    if (!a)
        return;
    if (a->is_unix)
        unlink(a->path);
    uv_close((uv_handle_t *)&a->listener.stream, admin_freed);
}
