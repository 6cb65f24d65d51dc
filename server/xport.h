/* vg_xport: how a session process moves bytes to and from its client.
 *
 * One interface, one implementation per transport: a plain stream socket (TCP or Unix,
 * xport_sock.c) today; TLS and shared-memory rings are further implementations. The session's
 * frame reader and writer (sess_proc.c) see only this.
 *
 * Threading: recv and wait are called by the session's main thread only; send may be called by
 * the main thread and the watchdog thread, which serialize it with the session's write lock. */
#ifndef VG_XPORT_H
#define VG_XPORT_H

#include <stddef.h>
#include <sys/types.h>
#include <sys/uio.h>

struct vg_xport;

struct vg_xport_ops {
    /* Up to len bytes without blocking: > 0 bytes read, 0 at end of stream, -EAGAIN when nothing
     * is available now, another negative errno on failure. */
    ssize_t (*recv)(struct vg_xport *x, void *buf, size_t len);
    /* Waits until recv may return something (1), timeout_ms passed (0; -1 waits for ever), or
     * the peer is gone / the transport failed (negative errno). */
    int (*wait)(struct vg_xport *x, int timeout_ms);
    /* Writes all of iov[0..n), waiting at most timeout_ms (-1: for ever) without progress.
     * 0, -ETIMEDOUT, or another negative errno. */
    int (*send)(struct vg_xport *x, const struct iovec *iov, int n, int timeout_ms);
    /* Non-blocking: 1 when the peer has closed or reset the connection. */
    int (*peer_gone)(struct vg_xport *x);
    void (*close)(struct vg_xport *x);
};

struct vg_xport {
    const struct vg_xport_ops *ops;
    int fd;                    /* the connection's socket */
};

/* A transport over a connected stream socket (made non-blocking). NULL on ENOMEM. Takes fd. */
struct vg_xport *vg_xport_sock(int fd);

#endif
