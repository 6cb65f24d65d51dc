/* vg_xport over a connected TCP or Unix stream socket. */
#include "xport.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

static ssize_t sock_recv(struct vg_xport *x, void *buf, size_t len)
{
    for (;;) {
        ssize_t n = recv(x->fd, buf, len, 0);
        if (n >= 0)
            return n;
        if (errno == EINTR)
            continue;
        return errno == EWOULDBLOCK ? -EAGAIN : -errno;
    }
}

static int sock_wait_for(int fd, short events, int timeout_ms)
{
    struct pollfd p = {.fd = fd, .events = events};
    for (;;) {
        int n = poll(&p, 1, timeout_ms);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return -errno;
        if (n == 0)
            return 0;
        /* POLLHUP with data still to read: recv returns the data, then 0. */
        if ((p.revents & POLLERR) || ((p.revents & POLLHUP) && !(events & POLLIN)))
            return -ECONNRESET;
        return 1;
    }
}

static int sock_wait(struct vg_xport *x, int timeout_ms)
{
    return sock_wait_for(x->fd, POLLIN, timeout_ms);
}

static int sock_send(struct vg_xport *x, const struct iovec *iov_in, int n, int timeout_ms)
{
    struct iovec iov[8];
    if (n > 8)
        return -EINVAL;
    for (int i = 0; i < n; i++)
        iov[i] = iov_in[i];
    int i = 0;
    while (i < n) {
        if (iov[i].iov_len == 0) {
            i++;
            continue;
        }
        struct msghdr mh = {.msg_iov = iov + i, .msg_iovlen = (size_t)(n - i)};
        ssize_t w = sendmsg(x->fd, &mh, MSG_NOSIGNAL);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            if (errno != EAGAIN && errno != EWOULDBLOCK)
                return -errno;
            int rc = sock_wait_for(x->fd, POLLOUT, timeout_ms);
            if (rc == 0)
                return -ETIMEDOUT;
            if (rc < 0)
                return rc;
            continue;
        }
        while (w > 0 && i < n) {
            size_t take = (size_t)w < iov[i].iov_len ? (size_t)w : iov[i].iov_len;
            iov[i].iov_base = (char *)iov[i].iov_base + take;
            iov[i].iov_len -= take;
            w -= (ssize_t)take;
            if (iov[i].iov_len == 0)
                i++;
        }
    }
    return 0;
}

static int sock_peer_gone(struct vg_xport *x)
{
    struct pollfd p = {.fd = x->fd, .events = POLLRDHUP};
    return poll(&p, 1, 0) > 0 && (p.revents & (POLLRDHUP | POLLHUP | POLLERR));
}

static void sock_close(struct vg_xport *x)
{
    close(x->fd);
    free(x);
}

static const struct vg_xport_ops sock_ops = {
    .recv = sock_recv,
    .wait = sock_wait,
    .send = sock_send,
    .peer_gone = sock_peer_gone,
    .close = sock_close,
};

struct vg_xport *vg_xport_sock(int fd)
{
    struct vg_xport *x = calloc(1, sizeof *x);
    if (!x)
        return NULL;
    int fl = fcntl(fd, F_GETFL);
    if (fl >= 0)
        fcntl(fd, F_SETFL, fl | O_NONBLOCK);
    x->ops = &sock_ops;
    x->fd = fd;
    return x;
}
