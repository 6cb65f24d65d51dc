#include "main_listen.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>
#include <uv.h>

#include <cuda.h>

#include "calls.h"
#include "frame.h"
#include "xport_tls.h"

#include <openssl/err.h>
#include "log.h"
#include "main_children.h"
#include "main_admin.h"
#include "main_metrics.h"
#include "main_report.h"
#include "main_state.h"
#include "sess_proc.h"

/* A refused connection is given this long to read our Error before it is closed (closing with
 * unread input would reset the connection and lose the Error). */
#define REFUSE_LINGER_MS 1000
/* After SIGTERM, sessions get this long to end before they are killed. */
#define STOP_GRACE_MS 5000

struct server;

struct listener {
    uv_poll_t poll;
    struct server *srv;
    int fd;
    const struct vg_listen_addr *addr;
};

/* A connection whose handshake is not done yet. */
struct pending {
    uv_poll_t poll;
    uv_timer_t timer;
    struct server *srv;
    struct pending *prev, *next;
    int fd;
    int refused;               /* an Error was sent: drain input until the peer closes */
    int unix_socket;           /* accepted on a unix: listener (shared memory may be offered) */
    int open_handles;          /* handles not yet closed by libuv */
    char addr[64];             /* what per-client limits count by */
    char peer[160];
    uint8_t buf[VG_FRAME_HEADER_SIZE + VG_HELLO_MAX];
    size_t got;
    int tls;                   /* accepted on a tls:// listener */
    SSL *ssl;                  /* its TLS connection, once begun (freed here; the session
                                * process works on its own copy) */
    int tls_ready;             /* the TLS handshake is done: the Hello comes through ssl */
    /* A refusal decided before the TLS handshake was done: sent (encrypted) once it is, so that
     * the client can read why. */
    char deferred_msg[256];
    int deferred_code, deferred_cu;
};

struct server {
    uv_loop_t loop;
    struct vg_main_state st;       /* what the reports read */
    const struct vg_config *cfg;   /* = st.cfg */
    uv_signal_t sighup;
    SSL_CTX *ssl_ctx;              /* for tls:// listeners, NULL without one */
    struct listener lst[VG_MAX_LISTEN];
    int nlst;
    struct pending *pending;
    unsigned npending;
    uv_signal_t sigint, sigterm, sigchld;
    uv_timer_t stop_timer;
    uv_timer_t sample_timer;       /* device-time samples for the reports */
    struct vg_admin *admin;
    struct vg_metrics *metrics;
    int reserve_fd;            /* kept open to accept-and-refuse at the descriptor limit */
    uint64_t next_id;
    int stopping;
    uint64_t last_limit_log_ms;
};

/* ---- pending connections ------------------------------------------------------------------ */

static void pending_handle_closed(uv_handle_t *h)
{
    struct pending *p = h->data;
    if (--p->open_handles == 0) {
        SSL_free(p->ssl); /* sends nothing: a session process may be using its copy */
        close(p->fd);
        free(p);
    }
}

/* Forgets the connection here; keep_fd: a session process took it over (the fd is closed here
 * all the same: the child has its own copy). */
static void pending_close(struct pending *p)
{
    struct server *srv = p->srv;
    if (p->prev)
        p->prev->next = p->next;
    else
        srv->pending = p->next;
    if (p->next)
        p->next->prev = p->prev;
    srv->npending--;
    uv_poll_stop(&p->poll);
    uv_timer_stop(&p->timer);
    uv_close((uv_handle_t *)&p->poll, pending_handle_closed);
    uv_close((uv_handle_t *)&p->timer, pending_handle_closed);
}

/* Writes an Error frame to a fresh connection without waiting (it fits in any socket buffer),
 * in TLS when ssl is an established connection. cu_result: what the client's cuInit returns
 * (0: its default). */
static void send_error_on(int fd, SSL *ssl, int code, int cu_result, const char *msg)
{
    Vgpu__Error e = VGPU__ERROR__INIT;
    e.code = code;
    e.message = (char *)msg;
    e.cu_result = cu_result;
    uint8_t buf[512];
    size_t pb_len = vg_msg_packed_size(&e.base);
    if (VG_FRAME_HEADER_SIZE + pb_len > sizeof buf)
        return;
    size_t n = vg_frame_put(VG_MSG_ERROR, 0, 0, &e.base, pb_len, 0, buf);
    if (ssl) {
        size_t done;
        (void)SSL_write_ex(ssl, buf, n, &done);
        return;
    }
    (void)!send(fd, buf, n, MSG_NOSIGNAL | MSG_DONTWAIT);
}

static void send_error_now(int fd, int code, int cu_result, const char *msg)
{
    send_error_on(fd, NULL, code, cu_result, msg);
}

static void on_refused_linger(uv_timer_t *t)
{
    pending_close(t->data);
}

static enum vg_refusal refusal_of(int code)
{
    switch (code) {
    case -EACCES: return VG_REFUSED_TOKEN;
    case -EUSERS: return VG_REFUSED_LIMIT;
    case -EMFILE: return VG_REFUSED_DESCRIPTORS;
    case -ETIMEDOUT: return VG_REFUSED_TIMEOUT;
    case -ENOMEM:
    case -EAGAIN: return VG_REFUSED_OTHER;
    default: return VG_REFUSED_PROTOCOL;
    }
}

/* After an Error: no more writing, input drained until the peer closes or REFUSE_LINGER_MS. */
static void linger_after_refusal(struct pending *p)
{
    shutdown(p->fd, SHUT_WR);
    p->refused = 1;
    uv_timer_stop(&p->timer);
    uv_timer_start(&p->timer, on_refused_linger, REFUSE_LINGER_MS, 0);
}

static void refuse_as(struct pending *p, int code, int cu_result, const char *fmt, va_list ap)
{
    p->srv->st.refused[refusal_of(code)]++;
    char msg[256];
    vsnprintf(msg, sizeof msg, fmt, ap);
    vg_warn("client %s refused: %s", p->peer, msg);
    if (p->tls && !p->tls_ready && !p->refused) {
        /* A TLS client cannot read a plain Error: finish the handshake first (within the
         * handshake timeout), then say it. */
        snprintf(p->deferred_msg, sizeof p->deferred_msg, "%s", msg);
        p->deferred_code = code;
        p->deferred_cu = cu_result;
        return;
    }
    send_error_on(p->fd, p->tls_ready ? p->ssl : NULL, code, cu_result, msg);
    linger_after_refusal(p);
}

static void refuse(struct pending *p, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void refuse(struct pending *p, int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    refuse_as(p, code, 0, fmt, ap);
    va_end(ap);
}

/* A refusal the client's cuInit reports as CUDA_ERROR_NOT_PERMITTED. */
static void refuse_tenant(struct pending *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void refuse_tenant(struct pending *p, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    refuse_as(p, -EACCES, CUDA_ERROR_NOT_PERMITTED, fmt, ap);
    va_end(ap);
}

static void on_handshake_timeout(uv_timer_t *t)
{
    struct pending *p = t->data;
    if (p->tls && !p->tls_ready) {
        /* Nothing can be said to a client that has not finished its TLS handshake. */
        p->srv->st.refused[VG_REFUSED_TIMEOUT]++;
        vg_warn("client %s refused: no TLS handshake within %u ms", p->peer, p->srv->cfg->handshake_timeout_ms);
        pending_close(p);
        return;
    }
    refuse(p, -ETIMEDOUT, "no handshake within %u ms", p->srv->cfg->handshake_timeout_ms);
}

/* The Hello is complete in p->buf: check it and hand the connection to a session process. */
static void handle_hello(struct pending *p, const struct vg_frame_header *h)
{
    struct server *srv = p->srv;
    Vgpu__Hello *hello = (Vgpu__Hello *)vg_msg_unpack(VG_MSG_HELLO, p->buf + VG_FRAME_HEADER_SIZE, h->pb_len);
    if (!hello) {
        refuse(p, -EBADMSG, "Hello message does not decode");
        return;
    }
    char reason[160];
    if (vg_hello_check(hello, reason, sizeof reason) < 0) {
        refuse(p, -EPROTONOSUPPORT, "%s", reason);
        goto out;
    }
    /* The token names the tenant; the log never shows it. */
    int ti = vg_tenants_match(&srv->st.tenants, hello->token);
    if (ti < 0 && srv->st.tenants.from_file) {
        if (!hello->token || !hello->token[0])
            refuse_tenant(p, "no tenant token (set VGPU_TOKEN)");
        else
            refuse_tenant(p, "tenant token not recognised");
        goto out;
    }
    if (srv->st.children.n >= srv->cfg->max_sessions) {
        refuse(p, -EUSERS, "gpu-server is at its session limit (%u)", srv->cfg->max_sessions);
        goto out;
    }
    static struct vg_sess_start st; /* copied into the child by the fork */
    memset(&st, 0, sizeof st);
    st.cfg = srv->cfg;
    st.board = srv->st.children.board;
    st.session_id = ++srv->next_id;
    st.fd = p->fd;
    st.ssl = p->tls_ready ? p->ssl : NULL;
    vg_hello_describe(hello, p->peer, st.peer, sizeof st.peer);
    st.client_timeout_ms = hello->timeout_ms;
    st.want_shm = hello->shm && p->unix_socket;
    st.driver_path = srv->st.probe->path;
    st.driver_kind = srv->st.probe->kind;
    const struct vg_tenant_def *td = &srv->st.tenants.t[ti];
    st.tenant = (uint32_t)srv->st.board_index[ti];
    st.ndevices = td->ndevices;
    memcpy(st.devices, td->devices, sizeof st.devices);
    const char *why = NULL;
    if (vg_children_spawn(&srv->st.children, &st, p->addr, &why) != 0) {
        refuse(p, -EAGAIN, "cannot start a session process: %s", why);
        goto out;
    }
    struct vg_child *c = vg_children_last(&srv->st.children);
    snprintf(c->host, sizeof c->host, "%s", hello->host ? hello->host : "");
    snprintf(c->program, sizeof c->program, "%s", hello->program ? hello->program : "");
    c->client_pid = hello->pid;
    vg_info("session %llu: client %s is tenant %s", (unsigned long long)st.session_id, st.peer, td->name);
    pending_close(p);
out:
    protobuf_c_message_free_unpacked(&hello->base, NULL);
}

static void on_pending_readable(uv_poll_t *h, int status, int events);

/* A tls:// connection before its Hello: tells a plain vgpu client it came to the wrong port,
 * then runs the TLS handshake as the socket allows. Returns 1 once the handshake is done (the
 * Hello can be read), 0 to wait, -1 after the connection was refused or closed. */
static int tls_progress(struct pending *p)
{
    struct server *srv = p->srv;
    if (!p->ssl) {
        uint8_t head[4];
        ssize_t n = recv(p->fd, head, sizeof head, MSG_PEEK | MSG_DONTWAIT);
        if (n < 0 && (errno == EAGAIN || errno == EINTR))
            return 0;
        if (n <= 0) {
            pending_close(p);
            return -1;
        }
        if ((size_t)n < sizeof head)
            return 0;
        static const uint8_t magic[4] = {'V', 'G', 'P', 'U'};
        if (memcmp(head, magic, sizeof magic) == 0) {
            p->tls = 0; /* it speaks plain frames: tell it so in one */
            refuse(p, -EPROTO, "a plain vgpu client at a TLS port: set VGPU_SERVER=tls://HOST:PORT");
            return -1;
        }
        p->ssl = SSL_new(srv->ssl_ctx);
        if (!p->ssl || !SSL_set_fd(p->ssl, p->fd)) {
            vg_warn("client %s: cannot set up TLS", p->peer);
            pending_close(p);
            return -1;
        }
    }
    ERR_clear_error();
    int rc = SSL_accept(p->ssl);
    if (rc == 1) {
        p->tls_ready = 1;
        uv_poll_start(&p->poll, UV_READABLE, on_pending_readable);
        if (p->deferred_msg[0]) {
            send_error_on(p->fd, p->ssl, p->deferred_code, p->deferred_cu, p->deferred_msg);
            linger_after_refusal(p);
            return -1;
        }
        return 1;
    }
    int err = SSL_get_error(p->ssl, rc);
    if (err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE) {
        uv_poll_start(&p->poll, err == SSL_ERROR_WANT_READ ? UV_READABLE : UV_WRITABLE, on_pending_readable);
        return 0;
    }
    char why[160];
    srv->st.refused[VG_REFUSED_PROTOCOL]++;
    vg_warn("client %s refused: TLS handshake failed: %s", p->peer, vg_tls_error(why, sizeof why));
    /* OpenSSL has sent its alert: let the client read it rather than reset the connection. */
    linger_after_refusal(p);
    return -1;
}

/* Reads up to len bytes of the Hello without waiting: > 0, 0 at the end of the stream, -EAGAIN,
 * or another negative errno. */
static ssize_t pending_read(struct pending *p, void *buf, size_t len)
{
    if (!p->tls_ready) {
        ssize_t n = recv(p->fd, buf, len, MSG_DONTWAIT);
        return n >= 0 ? n : errno == EINTR ? -EAGAIN : -errno;
    }
    size_t got = 0;
    ERR_clear_error();
    if (SSL_read_ex(p->ssl, buf, len, &got))
        return (ssize_t)got;
    int err = SSL_get_error(p->ssl, 0);
    if (err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE)
        return -EAGAIN;
    return err == SSL_ERROR_ZERO_RETURN ? 0 : -ECONNRESET;
}

/* The header of the first frame, complete in p->buf: it must announce a Hello of at most
 * VG_HELLO_MAX bytes and no bulk. 0, or -1 after refusing the connection. */
static int check_hello_header(struct pending *p, struct vg_frame_header *hdr)
{
    const char *why = NULL;
    int rc = vg_frame_decode_header(p->buf, VG_FRAME_HEADER_SIZE + VG_HELLO_MAX, hdr, &why);
    if (rc == -EPROTONOSUPPORT)
        refuse(p, rc, "protocol version mismatch: client speaks %u, server speaks %u", hdr->version,
               VG_PROTOCOL_VERSION);
    else if (rc == -EMSGSIZE)
        refuse(p, rc, "bad frame: a handshake frame is at most %u bytes", VG_HELLO_MAX);
    else if (rc < 0)
        refuse(p, rc, "bad frame: %s", why);
    else if (hdr->type != VG_MSG_HELLO)
        refuse(p, -EPROTO, "first message is type %u, not Hello", hdr->type);
    else if (hdr->bulk_len)
        refuse(p, -EPROTO, "Hello carries bulk bytes");
    else
        return 0;
    return -1;
}

static void on_pending_readable(uv_poll_t *h, int status, int events)
{
    struct pending *p = h->data;
    (void)events;
    if (p->refused) {
        /* Drain until the peer closes (or the linger timer does). */
        char sink[4096];
        ssize_t n;
        while ((n = recv(p->fd, sink, sizeof sink, MSG_DONTWAIT)) > 0) {
        }
        if (status < 0 || n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR))
            pending_close(p);
        return;
    }
    if (status < 0) {
        pending_close(p);
        return;
    }
    if (p->tls && !p->tls_ready && tls_progress(p) <= 0)
        return;
    /* Read exactly the Hello frame: nothing after it (the session process reads the rest). Read
     * until it would block: TLS may hold decrypted bytes that no socket event will announce. */
    struct vg_frame_header hdr;
    for (;;) {
        size_t need = VG_FRAME_HEADER_SIZE;
        if (p->got >= VG_FRAME_HEADER_SIZE) {
            vg_frame_decode_header(p->buf, VG_FRAME_HEADER_SIZE + VG_HELLO_MAX, &hdr, NULL);
            need = VG_FRAME_HEADER_SIZE + hdr.pb_len;
        }
        if (p->got < need) {
            ssize_t n = pending_read(p, p->buf + p->got, need - p->got);
            if (n == -EAGAIN)
                return;
            if (n <= 0) {
                if (p->got)
                    vg_info("client %s: connection ended during the handshake", p->peer);
                pending_close(p);
                return;
            }
            size_t before = p->got;
            p->got += (size_t)n;
            if (before < VG_FRAME_HEADER_SIZE && p->got == VG_FRAME_HEADER_SIZE && check_hello_header(p, &hdr) < 0)
                return;
            continue;
        }
        break; /* header and message */
    }
    handle_hello(p, &hdr);
}

/* ---- accepting ------------------------------------------------------------------------------ */

static uint64_t now_ms(void)
{
    return uv_hrtime() / 1000000u;
}

static void describe_peer(int fd, const struct vg_listen_addr *la, char *addr, size_t addr_size,
                          char *peer, size_t peer_size)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof ss;
    snprintf(addr, addr_size, "?");
    snprintf(peer, peer_size, "?");
    if (la->kind == VG_LISTEN_UNIX) {
        struct ucred cred;
        socklen_t cl = sizeof cred;
        if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &cl) == 0) {
            snprintf(addr, addr_size, "unix uid %u", (unsigned)cred.uid);
            snprintf(peer, peer_size, "unix:%s uid %u pid %d", la->path, (unsigned)cred.uid, (int)cred.pid);
        }
        return;
    }
    if (getpeername(fd, (struct sockaddr *)&ss, &len) != 0)
        return;
    char ip[64] = "?";
    int port = 0;
    if (ss.ss_family == AF_INET) {
        uv_ip4_name((struct sockaddr_in *)&ss, ip, sizeof ip);
        port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
    } else if (ss.ss_family == AF_INET6) {
        uv_ip6_name((struct sockaddr_in6 *)&ss, ip, sizeof ip);
        port = ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
    }
    snprintf(addr, addr_size, "%s", ip);
    snprintf(peer, peer_size, "%s:%d", ip, port);
}

/* Out of descriptors: give the reserve one up to accept the connection, tell the client why,
 * and take the reserve back. */
static void refuse_at_fd_limit(struct server *srv, int lfd, int err)
{
    if (srv->reserve_fd >= 0) {
        close(srv->reserve_fd);
        srv->reserve_fd = -1;
    }
    int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
    srv->st.refused[VG_REFUSED_DESCRIPTORS]++;
    uint64_t now = now_ms();
    if (now - srv->last_limit_log_ms >= 1000) {
        srv->last_limit_log_ms = now;
        vg_warn("connection refused: gpu-server is out of file descriptors (%s; %u connections in "
                "handshake, %u sessions)", strerror(err), srv->npending, srv->st.children.n);
    }
    if (fd >= 0) {
        send_error_now(fd, -EMFILE, 0, "gpu-server is out of file descriptors; try again later");
        close(fd);
    }
    srv->reserve_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
}

static void on_listener_readable(uv_poll_t *h, int status, int events)
{
    struct listener *l = h->data;
    struct server *srv = l->srv;
    (void)events;
    if (status < 0 || srv->stopping)
        return;
    for (int i = 0; i < 64; i++) {
        int fd = accept4(l->fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
        if (fd < 0) {
            if (errno == EMFILE || errno == ENFILE)
                refuse_at_fd_limit(srv, l->fd, errno);
            else if (errno != EAGAIN && errno != EINTR && errno != ECONNABORTED)
                vg_warn("accept failed: %s", strerror(errno));
            if (errno != ECONNABORTED && errno != EINTR)
                return;
            continue;
        }
        struct pending *p = calloc(1, sizeof *p);
        if (!p) {
            srv->st.refused[VG_REFUSED_OTHER]++;
            send_error_now(fd, -ENOMEM, 0, "gpu-server is out of memory");
            close(fd);
            continue;
        }
        p->srv = srv;
        p->fd = fd;
        p->unix_socket = l->addr->kind == VG_LISTEN_UNIX;
        p->tls = l->addr->kind == VG_LISTEN_TLS;
        describe_peer(fd, l->addr, p->addr, sizeof p->addr, p->peer, sizeof p->peer);
        if (l->addr->kind != VG_LISTEN_UNIX)
            vg_tcp_tune(fd);
        if (uv_poll_init(&srv->loop, &p->poll, fd) != 0) {
            close(fd);
            free(p);
            continue;
        }
        uv_timer_init(&srv->loop, &p->timer);
        p->poll.data = p->timer.data = p;
        p->open_handles = 2;
        p->next = srv->pending;
        if (srv->pending)
            srv->pending->prev = p;
        srv->pending = p;
        srv->npending++;
        uv_poll_start(&p->poll, UV_READABLE, on_pending_readable);
        uv_timer_start(&p->timer, on_handshake_timeout, srv->cfg->handshake_timeout_ms, 0);

        unsigned from = vg_children_from(&srv->st.children, p->addr);
        for (struct pending *q = srv->pending; q; q = q->next)
            from += q != p && !q->refused && !q->deferred_msg[0] && strcmp(q->addr, p->addr) == 0;
        if (from >= srv->cfg->max_client_conns)
            refuse(p, -EUSERS, "too many connections from %s (limit %u)", p->addr, srv->cfg->max_client_conns);
    }
}

static int open_listener(struct server *srv, const struct vg_listen_addr *la, int *bound_port)
{
    int fd = -1;
    *bound_port = 0;
    if (la->kind == VG_LISTEN_UNIX) {
        struct sockaddr_un sun = {.sun_family = AF_UNIX};
        snprintf(sun.sun_path, sizeof sun.sun_path, "%s", la->path);
        struct stat sb;
        /* A socket left by a server that did not stop cleanly: replace it. Anything else at the
         * path is not ours to remove. */
        if (lstat(la->path, &sb) == 0 && S_ISSOCK(sb.st_mode))
            unlink(la->path);
        fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (fd < 0 || bind(fd, (struct sockaddr *)&sun, sizeof sun) != 0 || listen(fd, 128) != 0) {
            vg_error("cannot listen on unix:%s: %s", la->path, strerror(errno));
            goto fail;
        }
        vg_info("listening on unix:%s", la->path);
    } else {
        struct sockaddr_storage ss;
        memset(&ss, 0, sizeof ss);
        socklen_t len;
        if (uv_ip4_addr(la->host, la->port, (struct sockaddr_in *)&ss) == 0) {
            len = sizeof(struct sockaddr_in);
        } else if (uv_ip6_addr(la->host, la->port, (struct sockaddr_in6 *)&ss) == 0) {
            len = sizeof(struct sockaddr_in6);
        } else {
            vg_error("--listen: '%s' is not an IP address", la->host);
            return -1;
        }
        fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        int one = 1;
        if (fd >= 0)
            setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        if (fd < 0 || bind(fd, (struct sockaddr *)&ss, len) != 0 || listen(fd, 128) != 0) {
            vg_error("cannot listen on %s:%d: %s", la->host, la->port, strerror(errno));
            goto fail;
        }
        struct sockaddr_storage bound;
        socklen_t blen = sizeof bound;
        getsockname(fd, (struct sockaddr *)&bound, &blen);
        *bound_port = bound.ss_family == AF_INET6 ? ntohs(((struct sockaddr_in6 *)&bound)->sin6_port)
                                                  : ntohs(((struct sockaddr_in *)&bound)->sin_port);
        vg_info("listening on %s%s:%d (max frame %llu bytes)", la->kind == VG_LISTEN_TLS ? "tls://" : "", la->host,
                *bound_port, (unsigned long long)srv->cfg->max_frame);
    }
    struct listener *l = &srv->lst[srv->nlst];
    l->srv = srv;
    l->fd = fd;
    l->addr = la;
    if (uv_poll_init(&srv->loop, &l->poll, fd) != 0)
        goto fail;
    l->poll.data = l;
    uv_poll_start(&l->poll, UV_READABLE, on_listener_readable);
    srv->nlst++;
    return 0;
fail:
    if (fd >= 0)
        close(fd);
    return -1;
}

static void close_listeners(struct server *srv)
{
    for (int i = 0; i < srv->nlst; i++) {
        struct listener *l = &srv->lst[i];
        uv_poll_stop(&l->poll);
        uv_close((uv_handle_t *)&l->poll, NULL);
        close(l->fd);
        if (l->addr->kind == VG_LISTEN_UNIX)
            unlink(l->addr->path);
    }
    srv->nlst = 0;
}

const char *vg_refusal_name(enum vg_refusal r)
{
    static const char *const names[VG_REFUSAL_COUNT] = {"token", "limit", "descriptors", "timeout",
                                                         "protocol", "other"};
    return (unsigned)r < VG_REFUSAL_COUNT ? names[r] : "other";
}

/* ---- signals and stopping ---------------------------------------------------------------- */

static void finish_stop(struct server *srv)
{
    if (!srv->stopping || srv->st.children.n > 0 || srv->npending > 0)
        return;
    uv_close((uv_handle_t *)&srv->sigint, NULL);
    uv_close((uv_handle_t *)&srv->sigterm, NULL);
    uv_close((uv_handle_t *)&srv->sigchld, NULL);
    uv_close((uv_handle_t *)&srv->sighup, NULL);
    uv_close((uv_handle_t *)&srv->stop_timer, NULL);
    uv_close((uv_handle_t *)&srv->sample_timer, NULL);
    vg_admin_stop(srv->admin);
    vg_metrics_stop(srv->metrics);
    srv->admin = NULL;
    srv->metrics = NULL;
}

/* Re-reads the tenants file: weights and limits change for live sessions at once (they read
 * the board at each charge); a removed tenant's sessions run on, its token is refused from now
 * on. A file with errors changes nothing. Returns 0, or -1 with err filled. */
static int reload_tenants(struct vg_main_state *st, char *err, size_t errlen)
{
    if (!st->cfg->tenants_path) {
        snprintf(err, errlen, "no --tenants file to reload");
        return -1;
    }
    static struct vg_tenants fresh;
    if (vg_tenants_load(st->cfg->tenants_path, st->probe->device_count, &fresh, err, errlen) != 0)
        return -1;
    int index[VG_BOARD_TENANTS];
    if (vg_tenants_publish(&fresh, st->children.board, index) != 0) {
        snprintf(err, errlen, "more tenants than the board holds (%d, removed ones included)", VG_BOARD_TENANTS);
        return -1;
    }
    st->tenants = fresh;
    memcpy(st->board_index, index, sizeof index);
    for (int k = 0; k < VG_BOARD_TENANTS; k++)
        if (st->children.board->tenants[k].state == VG_TENANT_REMOVED && !vg_children_of_tenant(&st->children, (uint32_t)k))
            vg_children_free_tenant(&st->children, (uint32_t)k);
    vg_info("tenants reloaded from %s: %u tenant(s)", st->cfg->tenants_path, fresh.n);
    return 0;
}

static void on_sighup(uv_signal_t *sig, int signum)
{
    struct server *srv = sig->data;
    (void)signum;
    char err[512];
    if (reload_tenants(&srv->st, err, sizeof err) != 0)
        vg_error("SIGHUP: tenants not reloaded, the old ones stay: %s", err);
}

static void on_sigchld(uv_signal_t *sig, int signum)
{
    struct server *srv = sig->data;
    (void)signum;
    vg_children_reap(&srv->st.children);
    finish_stop(srv);
}

static void on_sample(uv_timer_t *t)
{
    struct server *srv = t->data;
    vg_report_sample(&srv->st);
}

static void on_stop_grace_over(uv_timer_t *t)
{
    struct server *srv = t->data;
    if (srv->st.children.n) {
        vg_warn("%u session(s) still running %d ms after SIGTERM: killing them", srv->st.children.n,
                STOP_GRACE_MS);
        vg_children_signal(&srv->st.children, SIGKILL);
    }
}

static void on_stop_signal(uv_signal_t *sig, int signum)
{
    struct server *srv = sig->data;
    if (srv->stopping)
        return;
    vg_info("signal %d: stopping (%u session(s) to end)", signum, srv->st.children.n);
    srv->stopping = 1;
    close_listeners(srv);
    while (srv->pending)
        pending_close(srv->pending);
    vg_children_signal(&srv->st.children, SIGTERM);
    uv_timer_start(&srv->stop_timer, on_stop_grace_over, STOP_GRACE_MS, 0);
    finish_stop(srv);
}

/* ---- start ---------------------------------------------------------------------------------- */

static int write_port_file(const char *path, int port)
{
    char tmp[4096];
    snprintf(tmp, sizeof tmp, "%s.tmp%d", path, (int)getpid());
    FILE *f = fopen(tmp, "w");
    if (!f)
        return -1;
    int ok = fprintf(f, "%d\n", port) > 0;
    ok = (fclose(f) == 0) && ok;
    /* rename: a reader never sees a half-written file */
    if (!ok || rename(tmp, path) != 0) {
        unlink(tmp);
        return -1;
    }
    return 0;
}

/* The TLS 1.3 context of tls:// listeners: the certificate and key, and the CA clients'
 * certificates must chain to (--tls-client-ca). NULL, logged, when a file does not do. */
static SSL_CTX *tls_context(const struct vg_config *cfg)
{
    char why[160];
    SSL_CTX *c = SSL_CTX_new(TLS_server_method());
    if (!c || !SSL_CTX_set_min_proto_version(c, TLS1_3_VERSION))
        goto fail;
    if (SSL_CTX_use_certificate_chain_file(c, cfg->tls_cert) != 1) {
        vg_error("--tls-cert %s: %s", cfg->tls_cert, vg_tls_error(why, sizeof why));
        goto fail_quiet;
    }
    if (SSL_CTX_use_PrivateKey_file(c, cfg->tls_key, SSL_FILETYPE_PEM) != 1 || SSL_CTX_check_private_key(c) != 1) {
        vg_error("--tls-key %s: %s", cfg->tls_key, vg_tls_error(why, sizeof why));
        goto fail_quiet;
    }
    if (cfg->tls_client_ca) {
        STACK_OF(X509_NAME) *names = SSL_load_client_CA_file(cfg->tls_client_ca);
        if (!names || SSL_CTX_load_verify_locations(c, cfg->tls_client_ca, NULL) != 1) {
            vg_error("--tls-client-ca %s: %s", cfg->tls_client_ca, vg_tls_error(why, sizeof why));
            goto fail_quiet;
        }
        SSL_CTX_set_client_CA_list(c, names);
        SSL_CTX_set_verify(c, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, NULL);
    }
    /* No session tickets: nothing resumes, and nothing is left to write after the handshake
     * when the session process takes the connection over. */
    SSL_CTX_set_num_tickets(c, 0);
    return c;
fail:
    vg_error("cannot set up TLS: %s", vg_tls_error(why, sizeof why));
fail_quiet:
    SSL_CTX_free(c);
    return NULL;
}

/* As many descriptors as the operator allows: each connection in handshake holds one. */
static void raise_fd_limit(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
}

int vg_main_run(const struct vg_config *cfg, const struct vg_probe *probe, const struct vg_tenants *tenants)
{
    static struct server srv_storage; /* one per process; the signal handles point into it */
    struct server *srv = &srv_storage;
    int status = 1;
    srv->cfg = srv->st.cfg = cfg;
    srv->st.probe = probe;
    srv->st.reload = reload_tenants;
    srv->st.started = time(NULL);
    srv->reserve_fd = -1;
    raise_fd_limit();
    srv->st.children.board = vg_board_create(cfg->max_sessions, cfg->max_buffered);
    if (!srv->st.children.board) {
        vg_error("cannot map the session board: %s", strerror(errno));
        return 1;
    }
    srv->st.tenants = *tenants;
    if (vg_tenants_publish(&srv->st.tenants, srv->st.children.board, srv->st.board_index) != 0)
        return 1;
    if (uv_loop_init(&srv->loop) != 0)
        return 1;
    /* SIGCHLD first: no session may end unnoticed. */
    uv_signal_init(&srv->loop, &srv->sigchld);
    uv_signal_init(&srv->loop, &srv->sigint);
    uv_signal_init(&srv->loop, &srv->sigterm);
    uv_signal_init(&srv->loop, &srv->sighup);
    uv_timer_init(&srv->loop, &srv->stop_timer);
    uv_timer_init(&srv->loop, &srv->sample_timer);
    srv->sigchld.data = srv->sigint.data = srv->sigterm.data = srv->sighup.data = srv->stop_timer.data = srv;
    srv->sample_timer.data = srv;
    uv_timer_start(&srv->sample_timer, on_sample, 0, VG_SAMPLE_MS);
    uv_signal_start(&srv->sighup, on_sighup, SIGHUP);
    uv_signal_start(&srv->sigchld, on_sigchld, SIGCHLD);
    uv_signal_start(&srv->sigint, on_stop_signal, SIGINT);
    uv_signal_start(&srv->sigterm, on_stop_signal, SIGTERM);

    for (int i = 0; i < cfg->n_listen && !srv->ssl_ctx; i++)
        if (cfg->listen[i].kind == VG_LISTEN_TLS && !(srv->ssl_ctx = tls_context(cfg)))
            goto fail;
    int port_to_write = -1;
    for (int i = 0; i < cfg->n_listen; i++) {
        int port;
        if (open_listener(srv, &cfg->listen[i], &port) != 0)
            goto fail;
        if (cfg->listen[i].kind != VG_LISTEN_UNIX && port_to_write < 0)
            port_to_write = port;
    }
    if (cfg->port_file && port_to_write >= 0 && write_port_file(cfg->port_file, port_to_write) != 0) {
        vg_error("cannot write the port file %s: %s", cfg->port_file, strerror(errno));
        goto fail;
    }
    int port;
    if (cfg->admin) {
        srv->admin = vg_admin_start(&srv->loop, cfg->admin, &srv->st, &port);
        if (!srv->admin && cfg->admin_explicit)
            goto fail;
        if (!srv->admin)
            vg_warn("no admin endpoint (vgpu-smi): the default %s is taken; give --admin", cfg->admin);
    }
    if (cfg->metrics && !(srv->metrics = vg_metrics_start(&srv->loop, cfg->metrics, &srv->st, &port)))
        goto fail;
    srv->reserve_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    vg_info("limits: %u sessions, %u connections per client, handshake %u ms, read %u ms, "
            "%llu bytes buffered, kernel timeout %s, scheduler %s",
            cfg->max_sessions, cfg->max_client_conns, cfg->handshake_timeout_ms, cfg->read_timeout_ms,
            (unsigned long long)cfg->max_buffered, cfg->kernel_timeout_ms ? "on" : "off", cfg->scheduler ? "on" : "off");
    uv_run(&srv->loop, UV_RUN_DEFAULT);
    vg_info("stopped");
    status = 0;
    goto done;
fail:
    on_stop_signal(&srv->sigterm, SIGTERM);
    uv_run(&srv->loop, UV_RUN_DEFAULT);
done:
    if (srv->reserve_fd >= 0)
        close(srv->reserve_fd);
    uv_loop_close(&srv->loop);
    return status;
}
