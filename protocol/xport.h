/* vg_xport: how one end of a vgpu connection moves bytes to and from the other.
 *
 * One interface for both ends — the stub's connection (client/conn.c) and gpu-server's session
 * process (server/sess_proc.c) — and one implementation per transport:
 *   - a connected stream socket, TCP or Unix (xport_sock.c);
 *   - shared-memory rings in a memfd the server hands over a Unix socket (shm.c; the socket stays
 *     beside the rings as the liveness signal and carries descriptors);
 *   - TLS (a byte stream over a socket with its own read and write) fits the same operations.
 * Whatever the transport, the same frames (frame.h) travel: only how the bytes move differs.
 *
 * The required operations move a byte stream. The optional ones (NULL where a transport lacks
 * them) save a copy: peek/consume read bytes where they lie, reserve/commit write them in place.
 * Callers fall back to recv/send through a buffer of their own when they are NULL.
 *
 * Threading: one thread reads at a time and one thread writes at a time (the caller serializes
 * each side with its own lock); reading and writing may go on in two threads at once. */
#ifndef VG_XPORT_H
#define VG_XPORT_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/uio.h>

struct vg_xport;

/* Timeouts are in milliseconds: -1 waits for ever, 0 does not wait. */
struct vg_xport_ops {
    /* Up to len bytes, waiting at most timeout_ms for the first one: > 0 bytes read, 0 at the
     * end of the stream, -ETIMEDOUT, or another negative errno. */
    ssize_t (*recv)(struct vg_xport *x, void *buf, size_t len, int timeout_ms);
    /* Writes all of iov[0..n) (n <= VG_XPORT_MAX_IOV), waiting at most timeout_ms each time no
     * progress can be made: 0, -ETIMEDOUT, or another negative errno. */
    int (*send)(struct vg_xport *x, const struct iovec *iov, int n, int timeout_ms);
    /* Optional. As send, for bytes the peer need not act on at once (pipelined calls, more to
     * follow): a transport where sending costs no system call (shared memory) makes them
     * visible now but wakes a sleeping peer only once enough have piled up; the next send
     * wakes it in any case. Callers without it gather such bytes and send them later. */
    int (*send_more)(struct vg_xport *x, const struct iovec *iov, int n, int timeout_ms);
    /* Non-blocking: 1 when the peer has closed or reset the connection. */
    int (*peer_gone)(struct vg_xport *x);
    /* Closes the connection and frees x. */
    void (*close)(struct vg_xport *x);

    /* Optional. The next readable bytes where they lie, waiting at most timeout_ms for one:
     * returns how many (>= 1, at most max) with *p pointing at them, or as recv. They stay valid
     * and unread until consume(x, n) with n <= that count. The bytes are the peer's to change
     * until consumed: use them only where their value does not matter to the reader's safety
     * (payloads handed on as they are), never for lengths or indices. */
    ssize_t (*peek)(struct vg_xport *x, const void **p, size_t max, int timeout_ms);
    void (*consume)(struct vg_xport *x, size_t n);
    /* Optional. Room to write the next bytes in place, waiting at most timeout_ms for some:
     * returns how much (>= 1, at most max) with *p pointing at it, or a negative errno; then
     * commit(x, n) with n <= that count sends the first n bytes written there. */
    ssize_t (*reserve)(struct vg_xport *x, void **p, size_t max, int timeout_ms);
    int (*commit)(struct vg_xport *x, size_t n);
    /* Optional, any thread. Wakes a reader waiting in recv or peek so that it looks at the
     * connection again: for a transport whose waits a hang-up does not end by itself, after
     * another thread saw peer_gone. */
    void (*interrupt)(struct vg_xport *x);
};

enum vg_xport_kind { VG_XPORT_TCP, VG_XPORT_UNIX, VG_XPORT_SHM };

struct vg_xport {
    const struct vg_xport_ops *ops;
    enum vg_xport_kind kind;
    int fd;                    /* the connection's socket: pollable, the liveness signal */
};

#define VG_XPORT_MAX_IOV 8

/* A transport over a connected stream socket. Takes fd (closed by close). NULL on ENOMEM. */
struct vg_xport *vg_xport_sock(int fd, enum vg_xport_kind kind);

/* Passing descriptors over a Unix socket (SCM_RIGHTS), one byte `tag` with each. */
int vg_xport_send_fd(int sock, int fd, uint8_t tag);
/* Receives one byte and the descriptor that came with it, waiting at most timeout_ms.
 * Returns the descriptor (>= 0, close-on-exec) with *tag set; -EBADMSG when the byte came
 * without exactly one descriptor (any that came are closed); -ETIMEDOUT; -ECONNRESET at the end of
 * the stream; another negative errno. */
int vg_xport_recv_fd(int sock, uint8_t *tag, int timeout_ms);

#endif
