/* vg_xport over a connected TCP or Unix stream socket.
 *
 * The socket stays blocking and each wait is the socket's own timeout (SO_RCVTIMEO,
 * SO_SNDTIMEO), set only when a caller asks for a different one: a read that waits costs one
 * system call, as in a plain ping-pong, instead of a failed read, a poll and a read. */
#include "xport.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

struct sock_x {
    struct vg_xport x;
    int rcv_timeout_ms;        /* what SO_RCVTIMEO is set to now (-1: none); reader only */
    int snd_timeout_ms;        /* SO_SNDTIMEO; writer only */
};

/* Sets a socket timeout option when it differs from *cur. */
static int set_timeout(int fd, int opt, int timeout_ms, int *cur)
{
    if (*cur == timeout_ms)
        return 0;
    struct timeval tv = {0, 0};
    if (timeout_ms > 0) {
        tv.tv_sec = timeout_ms / 1000;
        tv.tv_usec = (timeout_ms % 1000) * 1000;
    }
    if (setsockopt(fd, SOL_SOCKET, opt, &tv, sizeof tv) != 0)
        return -errno;
    *cur = timeout_ms;
    return 0;
}

static ssize_t sock_recv(struct vg_xport *x, void *buf, size_t len, int timeout_ms)
{
    struct sock_x *s = (struct sock_x *)x;
    int flags = 0;
    if (timeout_ms == 0)
        flags = MSG_DONTWAIT;
    else {
        int rc = set_timeout(x->fd, SO_RCVTIMEO, timeout_ms, &s->rcv_timeout_ms);
        if (rc < 0)
            return rc;
    }
    for (;;) {
        ssize_t n = recv(x->fd, buf, len, flags);
        if (n >= 0)
            return n;
        if (errno == EINTR)
            continue;
        return errno == EAGAIN || errno == EWOULDBLOCK ? -ETIMEDOUT : -errno;
    }
}

static int sock_send(struct vg_xport *x, const struct iovec *iov_in, int n, int timeout_ms)
{
    struct sock_x *s = (struct sock_x *)x;
    struct iovec iov[VG_XPORT_MAX_IOV];
    if (n > VG_XPORT_MAX_IOV)
        return -EINVAL;
    memcpy(iov, iov_in, (size_t)n * sizeof *iov);
    int rc = set_timeout(x->fd, SO_SNDTIMEO, timeout_ms, &s->snd_timeout_ms);
    if (rc < 0)
        return rc;
    int i = 0;
    while (i < n) {
        if (iov[i].iov_len == 0) {
            i++;
            continue;
        }
        struct msghdr mh = {.msg_iov = iov + i, .msg_iovlen = (size_t)(n - i)};
        ssize_t w = sendmsg(x->fd, &mh, MSG_NOSIGNAL | (timeout_ms == 0 ? MSG_DONTWAIT : 0));
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return errno == EAGAIN || errno == EWOULDBLOCK ? -ETIMEDOUT : -errno;
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
    .send = sock_send,
    .peer_gone = sock_peer_gone,
    .close = sock_close,
};

struct vg_xport *vg_xport_sock(int fd, enum vg_xport_kind kind)
{
    struct sock_x *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    int fl = fcntl(fd, F_GETFL);
    if (fl >= 0 && (fl & O_NONBLOCK))
        fcntl(fd, F_SETFL, fl & ~O_NONBLOCK);
    /* Whatever timeouts the socket had, ours are set on first use. */
    s->rcv_timeout_ms = s->snd_timeout_ms = -2;
    s->x.ops = &sock_ops;
    s->x.kind = kind;
    s->x.fd = fd;
    return &s->x;
}

/* ---- descriptor passing ---- */

int vg_xport_send_fd(int sock, int fd, uint8_t tag)
{
    union {
        struct cmsghdr h;
        char buf[CMSG_SPACE(sizeof(int))];
    } ctl;
    memset(&ctl, 0, sizeof ctl);
    struct iovec iov = {&tag, 1};
    struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl.buf,
                        .msg_controllen = sizeof ctl.buf};
    struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int));
    memcpy(CMSG_DATA(c), &fd, sizeof fd);
    for (;;) {
        ssize_t n = sendmsg(sock, &mh, MSG_NOSIGNAL);
        if (n == 1)
            return 0;
        if (n < 0 && errno == EINTR)
            continue;
        return n < 0 ? -errno : -EIO;
    }
}

int vg_xport_recv_fd(int sock, uint8_t *tag, int timeout_ms)
{
    struct pollfd p = {.fd = sock, .events = POLLIN};
    for (;;) {
        int r = poll(&p, 1, timeout_ms);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            return -errno;
        if (r == 0)
            return -ETIMEDOUT;
        break;
    }
    /* Room for more than one descriptor, so that extra ones are seen (and closed), not lost in a
     * truncated control message. */
    union {
        struct cmsghdr h;
        char buf[CMSG_SPACE(4 * sizeof(int))];
    } ctl;
    struct iovec iov = {tag, 1};
    struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl.buf,
                        .msg_controllen = sizeof ctl.buf};
    ssize_t n;
    do
        n = recvmsg(sock, &mh, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
    while (n < 0 && errno == EINTR);
    if (n < 0)
        return errno == EAGAIN ? -ETIMEDOUT : -errno;
    if (n == 0)
        return -ECONNRESET;
    int got = -1, count = 0;
    for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c)) {
        if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
            continue;
        size_t k = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
        for (size_t i = 0; i < k; i++) {
            int fd;
            memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof fd);
            if (count++ == 0)
                got = fd;
            else
                close(fd);
        }
    }
    if (count != 1 || (mh.msg_flags & MSG_CTRUNC)) {
        if (got >= 0)
            close(got);
        return -EBADMSG;
    }
    return got;
}
