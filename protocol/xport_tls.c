/* vg_xport over TLS 1.3 (OpenSSL), on a connected TCP socket whose handshake is done.
 *
 * The socket is non-blocking; every wait is a poll() on it, outside the lock. OpenSSL's SSL
 * object may not be used by two threads at once (a read may have to write, in TLS 1.3), while
 * the interface lets one thread read as another writes: one mutex serializes the SSL calls
 * themselves, never a wait. Records are as large as TLS allows (16 KiB), written straight from
 * the caller's buffers. */
#include "xport_tls.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/err.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

struct tls_x {
    struct vg_xport x;
    SSL *ssl;
    pthread_mutex_t lock;      /* guards ssl: held across one SSL call, never across a wait */
    char error[128];           /* why the connection failed, once it has (under lock) */
};

/* Locked: keeps the reason of a failed SSL call (a peer's alert, mostly) for vg_xport_tls_error. */
static void note_error(struct tls_x *t)
{
    if (!t->error[0] && ERR_peek_last_error())
        vg_tls_error(t->error, sizeof t->error);
}

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* Waits for events on fd until deadline (0: for ever). 1 ready, -ETIMEDOUT, or -errno. */
static int wait_fd(int fd, short events, uint64_t deadline)
{
    for (;;) {
        int timeout = -1;
        if (deadline) {
            uint64_t now = now_ms();
            if (now >= deadline)
                return -ETIMEDOUT;
            timeout = (int)(deadline - now);
        }
        struct pollfd p = {.fd = fd, .events = events};
        int n = poll(&p, 1, timeout);
        if (n > 0)
            return 1;
        if (n == 0)
            return -ETIMEDOUT;
        if (errno != EINTR)
            return -errno;
    }
}

static uint64_t deadline_of(int timeout_ms)
{
    return timeout_ms < 0 ? 0 : now_ms() + (uint64_t)timeout_ms;
}

/* One SSL_read_ex or SSL_write_ex under the lock (a connection's reader and writer threads share
 * one SSL object). Returns SSL_ERROR_NONE with *done set, or the SSL_get_error code. */
static int ssl_step(struct tls_x *t, int write, void *buf, size_t len, size_t *done)
{
    *done = 0;
    pthread_mutex_lock(&t->lock);
    ERR_clear_error();
    int ok = write ? SSL_write_ex(t->ssl, buf, len, done) : SSL_read_ex(t->ssl, buf, len, done);
    int err = ok ? SSL_ERROR_NONE : SSL_get_error(t->ssl, 0);
    if (err == SSL_ERROR_SSL)
        note_error(t);
    pthread_mutex_unlock(&t->lock);
    return err;
}

/* After a step that could not go on: wait for the socket event it wants (TLS may need to write
 * while reading and the reverse). 1 to retry, -ETIMEDOUT, -ECONNRESET for any other error. */
static int wait_step(struct vg_xport *x, int err, int timeout_ms, uint64_t deadline)
{
    short events;
    if (err == SSL_ERROR_WANT_READ)
        events = POLLIN;
    else if (err == SSL_ERROR_WANT_WRITE)
        events = POLLOUT;
    else
        return -ECONNRESET;
    if (timeout_ms == 0)
        return -ETIMEDOUT;
    return wait_fd(x->fd, events, deadline);
}

static ssize_t tls_recv(struct vg_xport *x, void *buf, size_t len, int timeout_ms)
{
    struct tls_x *t = (struct tls_x *)x;
    uint64_t deadline = deadline_of(timeout_ms);
    for (;;) {
        size_t got;
        int err = ssl_step(t, 0, buf, len, &got);
        if (err == SSL_ERROR_NONE)
            return (ssize_t)got;
        if (err == SSL_ERROR_ZERO_RETURN)
            return 0; /* the peer's close_notify */
        if (err == SSL_ERROR_SYSCALL && errno == 0)
            return 0; /* closed without close_notify: the end of the stream all the same */
        int rc = wait_step(x, err, timeout_ms, deadline);
        if (rc < 0)
            return rc;
    }
}

static int tls_send(struct vg_xport *x, const struct iovec *iov, int n, int timeout_ms)
{
    struct tls_x *t = (struct tls_x *)x;
    for (int i = 0; i < n; i++) {
        char *p = iov[i].iov_base;
        size_t left = iov[i].iov_len;
        while (left) {
            uint64_t deadline = deadline_of(timeout_ms);
            size_t done;
            int err = ssl_step(t, 1, p, left, &done);
            if (err == SSL_ERROR_NONE) {
                p += done;
                left -= done;
                continue;
            }
            int rc = wait_step(x, err, timeout_ms, deadline);
            if (rc < 0)
                return rc;
        }
    }
    return 0;
}

static int tls_peer_gone(struct vg_xport *x)
{
    struct pollfd p = {.fd = x->fd, .events = POLLRDHUP};
    return poll(&p, 1, 0) > 0 && (p.revents & (POLLRDHUP | POLLHUP | POLLERR));
}

static void tls_close(struct vg_xport *x)
{
    struct tls_x *t = (struct tls_x *)x;
    /* No close_notify wait: the connection ends either way, and the peer may be gone. */
    SSL_free(t->ssl);
    if (x->fd >= 0)
        close(x->fd);
    pthread_mutex_destroy(&t->lock);
    free(t);
}

static const struct vg_xport_ops tls_ops = {
    .recv = tls_recv,
    .send = tls_send,
    .peer_gone = tls_peer_gone,
    .close = tls_close,
};

struct vg_xport *vg_xport_tls(int fd, SSL *ssl)
{
    struct tls_x *t = calloc(1, sizeof *t);
    if (!t)
        return NULL;
    int fl = fcntl(fd, F_GETFL);
    if (fl >= 0)
        fcntl(fd, F_SETFL, fl | O_NONBLOCK);
    SSL_set_mode(ssl, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    /* A peer that closes without close_notify has ended the stream: frames carry their lengths,
     * so a cut inside one is noticed as such. */
    SSL_set_options(ssl, SSL_OP_IGNORE_UNEXPECTED_EOF);
    /* Read ahead: one read() takes in as many records as the socket holds, not two per record
     * (header, then body). Safe here because every wait comes after an SSL_read_ex that found
     * nothing buffered (tls_recv), never a bare poll on the socket. */
    SSL_set_read_ahead(ssl, 1);
    pthread_mutex_init(&t->lock, NULL);
    t->x.ops = &tls_ops;
    t->x.kind = VG_XPORT_TLS;
    t->x.fd = fd;
    t->ssl = ssl;
    return &t->x;
}

const char *vg_xport_tls_error(struct vg_xport *x)
{
    if (x->kind != VG_XPORT_TLS)
        return NULL;
    struct tls_x *t = (struct tls_x *)x;
    pthread_mutex_lock(&t->lock);
    const char *e = t->error[0] ? t->error : NULL;
    pthread_mutex_unlock(&t->lock);
    return e;
}

const char *vg_tls_error(char *buf, size_t size)
{
    unsigned long e = ERR_peek_last_error();
    if (!e) {
        snprintf(buf, size, "%s", "TLS error");
        return buf;
    }
    const char *reason = ERR_reason_error_string(e);
    snprintf(buf, size, "%s", reason ? reason : "TLS error");
    return buf;
}
