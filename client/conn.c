#include "conn.h"

#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <unistd.h>

#include "calls.h"
#include "coherent.h"
#include "frame.h"
#include "log.h"
#include "pinned.h"
#include "shm.h"
#include "stub.h"
#include "tls.h"
#include "xport_tls.h"

#include "xport.h"

/* The process's connection. conn_lock protects every field and is held across a whole exchange
 * so that frames of different threads never interleave on the transport. */
static pthread_mutex_t conn_lock = PTHREAD_MUTEX_INITIALIZER;
static struct vg_xport *conn_x;   /* TCP, Unix socket or shared memory: VGPU_SERVER decides */
static pid_t conn_pid;            /* the process that opened conn_x */
static uint64_t conn_epoch;       /* counts connections made: pinned memory names its own */
static int conn_inited;           /* cuInit succeeded (in this process or before a fork) */
static int conn_broken;           /* the connection was lost: calls fail until the process ends */
static CUresult conn_broken_result = CUDA_ERROR_DEVICE_UNAVAILABLE; /* what they fail with */
static unsigned conn_timeout_s;   /* VGPU_TIMEOUT, read at connect */
static uint64_t conn_next_req = 1;
static uint64_t conn_max_frame = VG_FRAME_DEFAULT_MAX;

/* Send buffer: pipelined calls (launches, memsets, small async copies) are appended here and go
 * out in one write at the next call that waits for a reply, when the buffer is full, or at exit,
 * so that a pipelined call costs a memcpy, not a system call. Frames are built in place (no
 * allocation per call). Calls run on the server in the order they were queued, so a waiting call
 * that is sent behind the buffered ones still sees their effects and their deferred errors.
 * Over shared memory a send is a copy into the ring, not a system call: each pipelined call goes
 * at once (send_more), and the server runs it while the program prepares the next if it is
 * awake; a sleeping server is woken once a burst has piled up, or by the next waiting call. */
#define CONN_SBUF_CAP ((size_t)256 << 10)
/* A pipelined call's bulk up to this size is copied into the send buffer (the caller may reuse
 * its memory as soon as the call returns); larger bulk is written straight from the caller's
 * memory together with the buffer, before the call returns. */
#define CONN_INLINE_BULK ((size_t)64 << 10)
static uint8_t *conn_sbuf;
static size_t conn_sbuf_len;

/* Receive buffer: a reply's header and message usually arrive in one segment; reading them in
 * one recv instead of one per field saves system calls. Bulk beyond what is buffered is read
 * straight into the caller's memory. */
#define CONN_RBUF_CAP ((size_t)64 << 10)
static uint8_t *conn_rbuf;
static size_t conn_rpos, conn_rlen;

/* fork() while another thread is inside a call would leave the child's copy of conn_lock held
 * forever: take it around fork, so that the child's copy is free and the transport is between
 * frames (and the pinned memory table's lock with it, in that order). */
static void atfork_prepare(void)
{
    pthread_mutex_lock(&conn_lock);
    vg_pinned_atfork_prepare();
}

static void atfork_release(void)
{
    vg_pinned_atfork_release();
    pthread_mutex_unlock(&conn_lock);
}

/* This process's pid, kept here: getpid() is a system call, and every call checks whether the
 * connection is this process's (a forked child must open its own). */
static pid_t conn_self;

static void atfork_child(void)
{
    conn_self = getpid();
    atfork_release();
}

__attribute__((constructor)) static void conn_init(void)
{
    conn_self = getpid();
    pthread_atfork(atfork_prepare, atfork_release, atfork_child);
}

static int flush_locked(const void *bulk, size_t bulk_len);

/* Pipelined calls still buffered at exit go out, as they would have without the buffer (a
 * program may end on a launch whose effects it does not wait for). trylock: a thread stopped
 * inside a call must not hang the exit. */
__attribute__((destructor)) static void conn_fini(void)
{
    if (pthread_mutex_trylock(&conn_lock) != 0)
        return;
    if (conn_x && conn_pid == conn_self && conn_sbuf_len)
        (void)flush_locked(NULL, 0);
    pthread_mutex_unlock(&conn_lock);
}

static void conn_drop_locked(void)
{
    if (conn_x)
        conn_x->ops->close(conn_x);
    conn_x = NULL;
    /* Buffered frames belong to that connection (or, in a forked child, to the parent's). */
    conn_sbuf_len = 0;
    conn_rpos = conn_rlen = 0;
}

static int conn_timeout_ms(void)
{
    return (int)(conn_timeout_s * 1000u);
}

/* Writes the send buffer, then bulk[0..bulk_len) (may be NULL when 0), in as few system calls as
 * the transport allows. Empties the buffer. 0 or a negative errno. */
static int flush_locked(const void *bulk, size_t bulk_len)
{
    struct iovec iov[2] = {{conn_sbuf, conn_sbuf_len}, {(void *)bulk, bulk_len}};
    int rc = conn_x->ops->send(conn_x, iov, bulk_len ? 2 : 1, conn_timeout_ms());
    conn_sbuf_len = 0;
    return rc;
}

/* Reads exactly len bytes of the reply stream into dst (NULL: drop them). A wait longer than
 * VGPU_TIMEOUT for the next byte fails with -ETIMEDOUT; the end of the stream is -ECONNRESET. */
static int read_locked(void *dst, uint64_t len)
{
    uint8_t *p = dst;
    while (len > 0) {
        if (conn_rpos < conn_rlen) {
            size_t have = conn_rlen - conn_rpos;
            size_t take = len < have ? (size_t)len : have;
            if (p) {
                memcpy(p, conn_rbuf + conn_rpos, take);
                p += take;
            }
            conn_rpos += take;
            len -= take;
            continue;
        }
        /* Large: straight into place, no detour through the buffer. */
        int direct = p && len >= CONN_RBUF_CAP / 2;
        size_t want = direct ? (len > ((size_t)1 << 30) ? (size_t)1 << 30 : (size_t)len) : CONN_RBUF_CAP;
        ssize_t n = conn_x->ops->recv(conn_x, direct ? p : conn_rbuf, want, conn_timeout_ms());
        if (n < 0)
            return (int)n;
        if (n == 0)
            return -ECONNRESET;
        if (direct) {
            p += n;
            len -= (uint64_t)n;
        } else {
            conn_rpos = 0;
            conn_rlen = (size_t)n;
        }
    }
    return 0;
}

/* vg_frame_recv through the receive buffer. */
static int recv_frame_locked(uint64_t max_frame, struct vg_frame_header *h, ProtobufCMessage **msg,
                             const char **why)
{
    uint8_t head[VG_FRAME_HEADER_SIZE];
    *msg = NULL;
    int rc = read_locked(head, sizeof head);
    if (rc < 0) {
        *why = "connection closed";
        return rc;
    }
    rc = vg_frame_decode_header(head, max_frame, h, why);
    if (rc < 0)
        return rc;
    uint8_t small[1024];
    uint8_t *pb = h->pb_len <= sizeof small ? small : malloc(h->pb_len);
    if (!pb)
        return -ENOMEM;
    rc = read_locked(pb, h->pb_len);
    if (rc == 0) {
        *msg = vg_msg_unpack(h->type, pb, h->pb_len);
        if (!*msg) {
            *why = "message does not decode";
            rc = -EBADMSG;
        }
    } else {
        *why = "connection closed";
    }
    if (pb != small)
        free(pb);
    return rc;
}

/* Parses VGPU_SERVER "host:port" (host may be [v6]); unix:PATH leaves host empty and the path
 * in *unix_path. */
static int parse_server(const char *spec, char *host, size_t host_size, char *port, size_t port_size,
                        const char **unix_path, int *tls)
{
    *unix_path = NULL;
    *tls = strncmp(spec, "tls://", 6) == 0;
    if (*tls)
        spec += 6;
    if (strncmp(spec, "unix:", 5) == 0) {
        if (!spec[5] || strlen(spec + 5) >= sizeof(((struct sockaddr_un *)0)->sun_path))
            return -1;
        *unix_path = spec + 5;
        return 0;
    }
    const char *colon = strrchr(spec, ':');
    if (!colon || colon == spec || !colon[1] || strlen(colon + 1) >= port_size)
        return -1;
    size_t hl = (size_t)(colon - spec);
    const char *h = spec;
    if (h[0] == '[' && hl >= 2 && h[hl - 1] == ']') {
        h++;
        hl -= 2;
    }
    if (hl >= host_size)
        return -1;
    memcpy(host, h, hl);
    host[hl] = 0;
    strcpy(port, colon + 1);
    return 0;
}

/* VGPU_TIMEOUT in seconds (default 60): how long a call waits without hearing anything from the
 * server (a busy server sends Heartbeats) before it gives up. */
static unsigned client_timeout_s(void)
{
    const char *e = getenv("VGPU_TIMEOUT");
    if (!e || !*e)
        return 60;
    char *end;
    unsigned long v = strtoul(e, &end, 10);
    if (*end || v == 0 || v > 86400) {
        fprintf(stderr, "vgpu: ignoring VGPU_TIMEOUT=%s (expected whole seconds, 1-86400); using 60\n", e);
        return 60;
    }
    return (unsigned)v;
}

/* Socket options every connection gets: a bounded wait for each read and write of the handshake
 * (the VGPU_TIMEOUT; the transport keeps them after), and TCP keepalive so that a vanished server
 * host is noticed. */
static void tune_socket(int fd, int tcp)
{
    struct timeval tv = {.tv_sec = (time_t)conn_timeout_s};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    if (tcp)
        vg_tcp_tune(fd);
}

static int dial_unix(const char *path, const char **why)
{
    struct sockaddr_un sun = {.sun_family = AF_UNIX};
    snprintf(sun.sun_path, sizeof sun.sun_path, "%s", path);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0 || connect(fd, (struct sockaddr *)&sun, sizeof sun) != 0) {
        *why = strerror(errno);
        if (fd >= 0)
            close(fd);
        return -1;
    }
    tune_socket(fd, 0);
    return fd;
}

static int dial(const char *host, const char *port, const char **why)
{
    struct addrinfo hints, *res = NULL;
    memset(&hints, 0, sizeof hints);
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_family = AF_UNSPEC;
    int rc = getaddrinfo(host, port, &hints, &res);
    if (rc != 0) {
        *why = gai_strerror(rc);
        return -1;
    }
    int fd = -1;
    int err = ECONNREFUSED;
    for (struct addrinfo *ai = res; ai; ai = ai->ai_next) {
        fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
        if (fd < 0) {
            err = errno;
            continue;
        }
        if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0)
            break;
        err = errno;
        close(fd);
        fd = -1;
    }
    freeaddrinfo(res);
    if (fd < 0) {
        *why = strerror(err);
        return -1;
    }
    tune_socket(fd, 1);
    return fd;
}

/* Reads exactly len bytes from x (dst NULL: drops them), within VGPU_TIMEOUT each. 0 or a
 * negative errno (-ECONNRESET at the end of the stream). For the handshake, before the
 * connection's buffers exist. */
static int xport_read(struct vg_xport *x, void *dst, uint64_t len)
{
    uint8_t sink[4096];
    uint8_t *p = dst;
    while (len) {
        size_t want = len < (p ? (uint64_t)SIZE_MAX : sizeof sink) ? (size_t)len : sizeof sink;
        ssize_t n = x->ops->recv(x, p ? (void *)p : sink, want, conn_timeout_ms());
        if (n == 0)
            return -ECONNRESET;
        if (n < 0)
            return (int)n;
        if (p)
            p += n;
        len -= (uint64_t)n;
    }
    return 0;
}

/* vg_frame_recv over a transport (the handshake's reply). */
static int xport_recv_frame(struct vg_xport *x, struct vg_frame_header *h, ProtobufCMessage **msg, const char **why)
{
    uint8_t head[VG_FRAME_HEADER_SIZE];
    *msg = NULL;
    int rc = xport_read(x, head, sizeof head);
    if (rc < 0) {
        *why = rc == -ETIMEDOUT ? "no answer" : "connection closed";
        return rc;
    }
    rc = vg_frame_decode_header(head, VG_FRAME_DEFAULT_MAX, h, why);
    if (rc < 0)
        return rc;
    uint8_t *pb = malloc(h->pb_len ? h->pb_len : 1);
    if (!pb)
        return -ENOMEM;
    rc = xport_read(x, pb, h->pb_len);
    if (rc == 0) {
        *msg = vg_msg_unpack(h->type, pb, h->pb_len);
        if (!*msg) {
            *why = "message does not decode";
            rc = -EBADMSG;
        }
    } else {
        *why = "connection closed";
    }
    free(pb);
    return rc;
}

/* After the TLS handshake went through, the server may still end the connection (TLS 1.3 checks
 * a client's certificate after the client is done): its alert says why, in OpenSSL's queue once
 * read. Replaces *why with it. */
static void tls_refusal(struct vg_xport *x, const char **why, char *whybuf, size_t whybuf_size)
{
    if (x->kind != VG_XPORT_TLS)
        return;
    uint8_t b;
    if (!vg_xport_tls_error(x))
        (void)x->ops->recv(x, &b, 1, 1000);
    const char *e = vg_xport_tls_error(x);
    if (!e)
        return;
    snprintf(whybuf, whybuf_size, "the server ended the TLS connection: %s (a client certificate required? "
             "see VGPU_TLS_CERT)", e);
    *why = whybuf;
}

/* Sends Hello, waits for Welcome. Returns 0 or -1 with *why (static or in whybuf) and *refusal:
 * the CUresult the server named when it refused us (0 when it did not say). Over a Unix socket
 * it asks for shared memory; *shm_size is what the server granted (0: none). */
static int handshake(struct vg_xport *x, int want_shm, uint64_t *shm_size, const char **why, char *whybuf,
                     size_t whybuf_size, CUresult *refusal)
{
    *refusal = CUDA_SUCCESS;
    char host[256] = "";
    gethostname(host, sizeof host - 1);
    char prog[64] = "";
    FILE *f = fopen("/proc/self/comm", "r");
    if (f) {
        if (fgets(prog, sizeof prog, f))
            prog[strcspn(prog, "\n")] = 0;
        fclose(f);
    }
    const char *token = getenv("VGPU_TOKEN");
    Vgpu__Hello hello = VGPU__HELLO__INIT;
    hello.protocol_version = VG_PROTOCOL_VERSION;
    hello.host = host;
    hello.pid = (uint32_t)getpid();
    hello.program = prog;
    hello.token = (char *)(token ? token : "");
    hello.timeout_ms = conn_timeout_s * 1000u;
    hello.api_hash = VG_API_HASH;
    hello.shm = want_shm;
    *shm_size = 0;
    uint8_t frame[VG_FRAME_HEADER_SIZE + VG_HELLO_MAX];
    size_t pb_len = vg_msg_packed_size(&hello.base);
    if (VG_FRAME_HEADER_SIZE + pb_len > sizeof frame) {
        *why = "the handshake does not fit in a Hello (host or program name too long)";
        return -1;
    }
    struct iovec iov = {frame, vg_frame_put(VG_MSG_HELLO, 0, 0, &hello.base, pb_len, 0, frame)};
    if (x->ops->send(x, &iov, 1, conn_timeout_ms()) < 0) {
        *why = "cannot send the handshake";
        tls_refusal(x, why, whybuf, whybuf_size);
        return -1;
    }
    struct vg_frame_header h;
    ProtobufCMessage *msg = NULL;
    int rc = xport_recv_frame(x, &h, &msg, why);
    if (rc == -ETIMEDOUT) {
        snprintf(whybuf, whybuf_size, "no answer to the handshake within %u s (VGPU_TIMEOUT)", conn_timeout_s);
        *why = whybuf;
        return -1;
    }
    if (rc == -EPROTONOSUPPORT) {
        snprintf(whybuf, whybuf_size, "protocol version mismatch: server speaks %u, this stub %u",
                 h.version, VG_PROTOCOL_VERSION);
        *why = whybuf;
        return -1;
    }
    if (rc < 0) {
        tls_refusal(x, why, whybuf, whybuf_size);
        return -1;
    }
    int ok = -1;
    if (h.type == VG_MSG_WELCOME) {
        Vgpu__Welcome *w = (Vgpu__Welcome *)msg;
        if (w->protocol_version != VG_PROTOCOL_VERSION) {
            snprintf(whybuf, whybuf_size, "protocol version mismatch: server speaks %u, this stub %u",
                     w->protocol_version, VG_PROTOCOL_VERSION);
            *why = whybuf;
        } else if (w->api_hash != VG_API_HASH) {
            snprintf(whybuf, whybuf_size, "call list mismatch: server %016llx, this stub %016llx "
                     "(built from different protocol/cuda.calls)", (unsigned long long)w->api_hash,
                     (unsigned long long)VG_API_HASH);
            *why = whybuf;
        } else if (w->max_frame < VG_FRAME_MIN_MAX) {
            *why = "server announced an unusable maximum frame size";
        } else {
            conn_max_frame = w->max_frame;
            *shm_size = want_shm ? w->shm_size : 0;
            vg_info("connected: session %llu on %s%s", (unsigned long long)w->session_id,
                    w->driver ? w->driver : "?", *shm_size ? " (shared memory)" : "");
            ok = 0;
        }
    } else if (h.type == VG_MSG_ERROR) {
        Vgpu__Error *e = (Vgpu__Error *)msg;
        snprintf(whybuf, whybuf_size, "server refused: %s", e->message ? e->message : "?");
        *why = whybuf;
        *refusal = (CUresult)e->cu_result;
    } else {
        *why = "unexpected handshake reply";
    }
    protobuf_c_message_free_unpacked(msg, NULL);
    if (ok == 0 && h.bulk_len && xport_read(x, NULL, h.bulk_len) < 0)
        ok = -1;
    return ok;
}

static CUresult connect_locked(void)
{
    if (conn_x && conn_pid == conn_self)
        return CUDA_SUCCESS;
    if (conn_x) {
        /* A forked child: the inherited socket is the parent's session; leave it to the parent,
         * and the buffered frames too. */
        conn_drop_locked();
        conn_broken = 0;
        conn_broken_result = CUDA_ERROR_DEVICE_UNAVAILABLE;
    }
    if (conn_broken)
        return conn_broken_result;
    const char *spec = getenv("VGPU_SERVER");
    const char *unix_path = NULL;
    char host[256], port[32];
    const char *why = NULL;
    char whybuf[256];
    int tls = 0;
    if (!spec || !*spec) {
        fprintf(stderr, "vgpu: VGPU_SERVER is not set (expected host:port, tls://host:port or unix:PATH of a "
                "gpu-server)\n");
        return CUDA_ERROR_NO_DEVICE;
    }
    if (parse_server(spec, host, sizeof host, port, sizeof port, &unix_path, &tls) < 0) {
        fprintf(stderr, "vgpu: cannot use VGPU_SERVER=%s: expected host:port, tls://host:port or unix:PATH\n", spec);
        return CUDA_ERROR_NO_DEVICE;
    }
    conn_timeout_s = client_timeout_s();
    int fd = unix_path ? dial_unix(unix_path, &why) : dial(host, port, &why);
    if (fd < 0) {
        fprintf(stderr, "vgpu: cannot reach gpu-server at %s: %s\n", spec, why);
        return CUDA_ERROR_NO_DEVICE;
    }
    struct vg_xport *x = NULL;
    if (tls) {
        x = vg_client_tls(fd, host, whybuf, sizeof whybuf);
        if (!x) {
            fprintf(stderr, "vgpu: gpu-server at %s: %s\n", spec, whybuf);
            close(fd);
            return CUDA_ERROR_NO_DEVICE;
        }
    } else {
        x = vg_xport_sock(fd, unix_path ? VG_XPORT_UNIX : VG_XPORT_TCP);
        if (!x) {
            close(fd);
            return CUDA_ERROR_OUT_OF_MEMORY;
        }
    }
    uint64_t shm_size = 0;
    CUresult refusal;
    if (handshake(x, unix_path != NULL, &shm_size, &why, whybuf, sizeof whybuf, &refusal) < 0) {
        fprintf(stderr, "vgpu: gpu-server at %s: %s\n", spec, why ? why : "handshake failed");
        x->ops->close(x);
        return refusal ? refusal : CUDA_ERROR_NO_DEVICE;
    }
    if (!conn_sbuf)
        conn_sbuf = malloc(CONN_SBUF_CAP);
    if (!conn_rbuf)
        conn_rbuf = malloc(CONN_RBUF_CAP);
    if (!conn_sbuf || !conn_rbuf) {
        fprintf(stderr, "vgpu: out of memory for the connection's buffers\n");
        x->ops->close(x);
        return CUDA_ERROR_OUT_OF_MEMORY;
    }
    if (shm_size) {
        /* The region's memfd follows the Welcome on the socket; the rings then replace the
         * socket's byte stream (the socket stays, as the liveness signal). */
        uint8_t tag = 0;
        int memfd = vg_xport_recv_fd(fd, &tag, conn_timeout_ms());
        if (memfd >= 0 && tag != VG_SHM_TAG_RINGS) {
            close(memfd);
            memfd = -EBADMSG;
        }
        why = "no shared region after the Welcome";
        struct vg_xport *shm = memfd >= 0 ? vg_xport_shm_attach(fd, memfd, shm_size, &why) : NULL;
        if (!shm) {
            fprintf(stderr, "vgpu: gpu-server at %s: %s\n", spec, why);
            x->ops->close(x);
            return CUDA_ERROR_NO_DEVICE;
        }
        x->fd = -1; /* the socket now belongs to the shared-memory transport */
        x->ops->close(x);
        x = shm;
    }
    conn_x = x;
    conn_pid = conn_self;
    conn_epoch++;
    conn_sbuf_len = 0;
    conn_rpos = conn_rlen = 0;
    return CUDA_SUCCESS;
}

CUresult vg_conn_connect(void)
{
    pthread_mutex_lock(&conn_lock);
    CUresult rc = connect_locked();
    if (rc == CUDA_SUCCESS)
        conn_inited = 1;
    pthread_mutex_unlock(&conn_lock);
    return rc;
}

int vg_conn_initialized(void)
{
    return __atomic_load_n(&conn_inited, __ATOMIC_ACQUIRE);
}

uint64_t vg_conn_max_bulk(void)
{
    pthread_mutex_lock(&conn_lock);
    uint64_t m = conn_max_frame;
    pthread_mutex_unlock(&conn_lock);
    /* Leave room for the header and the Call message. */
    return m - VG_FRAME_HEADER_SIZE - 4096;
}

/* The session is over: every later call fails with `result`. Says why once. */
static CUresult give_up(CUresult result)
{
    conn_drop_locked();
    conn_broken = 1;
    conn_broken_result = result;
    return result;
}

static CUresult lost(const char *what, int err)
{
    static int once;
    if (!__atomic_exchange_n(&once, 1, __ATOMIC_RELAXED)) {
        if (err == -ETIMEDOUT)
            fprintf(stderr, "vgpu: gpu-server did not answer for %u s (VGPU_TIMEOUT); giving up on the "
                    "session (%s)\n", conn_timeout_s, what);
        else
            fprintf(stderr, "vgpu: lost the connection to gpu-server (%s: %s)\n", what, strerror(-err));
    }
    return give_up(CUDA_ERROR_DEVICE_UNAVAILABLE);
}

/* Device printf output the server sends ahead of a reply: to our standard output, as a GPU
 * driver prints it at a synchronizing call. */
static int take_output_locked(uint64_t len)
{
    uint8_t buf[16384];
    fflush(stdout);
    while (len) {
        size_t n = len < sizeof buf ? (size_t)len : sizeof buf;
        int rc = read_locked(buf, n);
        if (rc < 0)
            return rc;
        for (size_t off = 0; off < n;) {
            ssize_t w = write(1, buf + off, n - off);
            if (w < 0 && errno == EINTR)
                continue;
            if (w <= 0)
                break; /* stdout closed: the output is dropped, the session goes on */
            off += (size_t)w;
        }
        len -= n;
    }
    return 0;
}

/* Waits for the frame that answers request req, taking Heartbeats and Output on the way. Returns
 * CUDA_SUCCESS with *h and the unpacked Reply in *msg (the caller frees it); otherwise the session
 * is over (an Error from the server, a lost connection) and the result says how. */
static CUresult await_reply_locked(uint64_t req, struct vg_frame_header *h, Vgpu__Reply **reply)
{
    ProtobufCMessage *msg = NULL;
    const char *why = NULL;
    *reply = NULL;
    for (;;) {
        int rc = recv_frame_locked(conn_max_frame + 4096, h, &msg, &why);
        if (rc < 0) {
            if (msg)
                protobuf_c_message_free_unpacked(msg, NULL);
            return lost(why ? why : "receive", rc);
        }
        if (h->type == VG_MSG_HEARTBEAT && h->bulk_len == 0) {
            protobuf_c_message_free_unpacked(msg, NULL);
            continue; /* the server is busy with our call, and alive */
        }
        if (h->type == VG_MSG_OUTPUT) {
            protobuf_c_message_free_unpacked(msg, NULL);
            rc = take_output_locked(h->bulk_len);
            if (rc < 0)
                return lost("receive", rc);
            continue;
        }
        break;
    }
    if (h->type == VG_MSG_ERROR) {
        Vgpu__Error *e = (Vgpu__Error *)msg;
        fprintf(stderr, "vgpu: gpu-server ended the session: %s\n", e->message ? e->message : "?");
        CUresult r = e->cu_result ? (CUresult)e->cu_result : CUDA_ERROR_DEVICE_UNAVAILABLE;
        protobuf_c_message_free_unpacked(msg, NULL);
        return give_up(r);
    }
    if (h->type != VG_MSG_REPLY || h->request_id != req) {
        protobuf_c_message_free_unpacked(msg, NULL);
        return lost("reply out of sequence", -EPROTO);
    }
    *reply = (Vgpu__Reply *)msg;
    return CUDA_SUCCESS;
}

/* Appends a frame to the send buffer (flushing first when it would not fit) and sends the
 * buffer unless the frame may wait there (a pipelined call on a transport that gathers them).
 * bulk up to CONN_INLINE_BULK bytes is copied in; larger bulk is sent from the caller's memory.
 * 0 or a negative errno. */
static int queue_frame_locked(unsigned type, uint32_t flags, uint64_t req, const ProtobufCMessage *msg,
                              const void *bulk, uint64_t bulk_len, int may_wait)
{
    size_t pb_len = vg_msg_packed_size(msg);
    int inline_bulk = bulk_len <= CONN_INLINE_BULK;
    size_t need = VG_FRAME_HEADER_SIZE + pb_len + (inline_bulk ? (size_t)bulk_len : 0);
    int rc = 0;
    if (conn_sbuf_len + need > CONN_SBUF_CAP && conn_sbuf_len) {
        rc = flush_locked(NULL, 0);
        if (rc < 0)
            return rc;
    }
    if (need > CONN_SBUF_CAP) {
        /* A frame whose message alone overflows the buffer (long names): built on its own. */
        uint8_t *head;
        size_t head_len;
        rc = vg_frame_build(type, flags, req, msg, bulk_len, &head, &head_len);
        if (rc < 0)
            return rc;
        struct iovec iov[2] = {{head, head_len}, {(void *)bulk, (size_t)bulk_len}};
        rc = conn_x->ops->send(conn_x, iov, bulk_len ? 2 : 1, conn_timeout_ms());
        free(head);
        return rc;
    }
    conn_sbuf_len += vg_frame_put(type, flags, req, msg, pb_len, bulk_len, conn_sbuf + conn_sbuf_len);
    if (inline_bulk && bulk_len) {
        memcpy(conn_sbuf + conn_sbuf_len, bulk, (size_t)bulk_len);
        conn_sbuf_len += (size_t)bulk_len;
    }
    if (!inline_bulk || !may_wait) {
        rc = flush_locked(inline_bulk ? NULL : bulk, inline_bulk ? 0 : (size_t)bulk_len);
    } else if (conn_x->ops->send_more) {
        /* Sending costs no system call: the server may start on it while we go on. */
        struct iovec iov = {conn_sbuf, conn_sbuf_len};
        rc = conn_x->ops->send_more(conn_x, &iov, 1, conn_timeout_ms());
        conn_sbuf_len = 0;
    }
    return rc;
}

/* Sends a frame that expects a Reply, and waits for it (see await_reply_locked). */
static CUresult exchange_locked(unsigned type, uint64_t req, const ProtobufCMessage *msg, uint32_t flags,
                                const void *bulk, uint64_t bulk_len, struct vg_frame_header *h, Vgpu__Reply **reply)
{
    int rc = queue_frame_locked(type, flags, req, msg, bulk, bulk_len, 0);
    if (rc < 0)
        return lost("send", rc);
    return await_reply_locked(req, h, reply);
}

CUresult vg_conn_call(const struct vg_rpc *r)
{
    int kind = vg_call_kind(r->call);
    /* Managed and mapped memory: host writes go out before device work, host buffers of this
     * call are made current (client/coherent.h). Before the lock: it may call the server. */
    vg_coh_enter(kind != VG_REPLY, r->bulk, r->bulk_len, r->rbulk, r->rbulk_len);
    int pipelined = kind == VG_PIPELINED && !r->want_reply;
    Vgpu__Call call = VGPU__CALL__INIT;
    call.call = r->call;
    call.ctx = r->ctx;
    call.n_args = r->nargs;
    call.args = (uint64_t *)r->args;
    call.name = (char *)(r->name ? r->name : "");
    CUresult result;

    pthread_mutex_lock(&conn_lock);
    if (!conn_inited) {
        pthread_mutex_unlock(&conn_lock);
        return CUDA_ERROR_NOT_INITIALIZED;
    }
    result = connect_locked();
    if (result != CUDA_SUCCESS)
        goto out;
    uint64_t req = conn_next_req++;
    uint32_t flags = pipelined ? VG_FLAG_NO_REPLY : 0;
    /* A name longer than the protocol allows. Without a name and with the few arguments of a
     * launch the message cannot be near the limit (11 bytes an argument at most), so the size
     * is left to queue_frame_locked, which needs it anyway. */
    if ((call.name[0] || call.n_args > 1024) && vg_msg_packed_size(&call.base) > VG_PB_MAX) {
        result = CUDA_ERROR_INVALID_VALUE;
        goto out;
    }
    /* Bytes in pinned memory shared with the server travel as a reference to them: the server
     * copies them (or into them, for a reply's bytes) once, where they lie. */
    const void *bulk = r->bulk;
    uint64_t bulk_len = r->bulk_len;
    struct vg_bulk_ref ref;
    uint8_t ref_bytes[VG_BULK_REF_SIZE];
    int rbulk_ref = 0;
    /* Reply bytes go straight into pinned memory for device-to-host copies only: any other
     * call's reply is the server's to format. */
    int dtoh = r->call == VG_CALL_cuMemcpyDtoH_v2 || r->call == VG_CALL_cuMemcpyDtoHAsync_v2;
    if (conn_x->kind == VG_XPORT_SHM &&
        ((bulk_len && vg_pinned_ref(bulk, bulk_len, conn_epoch, &ref)) ||
         (!bulk_len && dtoh && r->rbulk && r->rbulk_len &&
          (rbulk_ref = vg_pinned_ref(r->rbulk, r->rbulk_len, conn_epoch, &ref))))) {
        vg_bulk_ref_put(&ref, ref_bytes);
        bulk = ref_bytes;
        bulk_len = VG_BULK_REF_SIZE;
        flags |= VG_FLAG_BULK_REF;
    }
    int rc;
    if (pipelined) {
        rc = queue_frame_locked(VG_MSG_CALL, flags, req, &call.base, bulk, bulk_len, 1);
        result = rc < 0 ? lost("send", rc) : CUDA_SUCCESS;
        goto out;
    }
    struct vg_frame_header h;
    Vgpu__Reply *rep;
    result = exchange_locked(VG_MSG_CALL, req, &call.base, flags, bulk, bulk_len, &h, &rep);
    if (result != CUDA_SUCCESS)
        goto out;
    result = (CUresult)rep->result;
    for (size_t i = 0; i < r->nouts; i++)
        r->outs[i] = i < rep->n_outs ? rep->outs[i] : 0;
    if (r->outs_alloc) {
        *r->outs_alloc = NULL;
        *r->nouts_alloc = 0;
        if (rep->n_outs) {
            *r->outs_alloc = malloc(rep->n_outs * sizeof(uint64_t));
            if (*r->outs_alloc) {
                memcpy(*r->outs_alloc, rep->outs, rep->n_outs * sizeof(uint64_t));
                *r->nouts_alloc = rep->n_outs;
            } else if (result == CUDA_SUCCESS) {
                result = CUDA_ERROR_OUT_OF_MEMORY;
            }
        }
    }
    if (r->str && r->str_size) {
        snprintf(r->str, r->str_size, "%s", rep->str ? rep->str : "");
    }
    protobuf_c_message_free_unpacked(&rep->base, NULL);
    if (r->rbulk_alloc) {
        *r->rbulk_alloc = NULL;
        *r->rbulk_alloc_len = 0;
        if (h.bulk_len) {
            void *b = malloc((size_t)h.bulk_len);
            rc = read_locked(b, h.bulk_len); /* NULL: read and dropped */
            if (rc < 0) {
                free(b);
                result = lost("receive", rc);
            } else if (!b) {
                if (result == CUDA_SUCCESS)
                    result = CUDA_ERROR_OUT_OF_MEMORY;
            } else {
                *r->rbulk_alloc = b;
                *r->rbulk_alloc_len = h.bulk_len;
            }
        }
    } else if (h.bulk_len) {
        if (h.bulk_len == r->rbulk_len && r->rbulk && !rbulk_ref)
            rc = read_locked(r->rbulk, h.bulk_len);
        else {
            rc = read_locked(NULL, h.bulk_len);
            if (result == CUDA_SUCCESS)
                result = CUDA_ERROR_UNKNOWN;
        }
        if (rc < 0)
            result = lost("receive", rc);
    } else if (r->rbulk_len && !rbulk_ref && result == CUDA_SUCCESS) {
        result = CUDA_ERROR_UNKNOWN;
    }
out:
    pthread_mutex_unlock(&conn_lock);
    return result;
}

int vg_conn_shares_memory(void)
{
    pthread_mutex_lock(&conn_lock);
    int yes = connect_locked() == CUDA_SUCCESS && conn_x->kind == VG_XPORT_SHM;
    pthread_mutex_unlock(&conn_lock);
    return yes;
}

CUresult vg_conn_region_map(int fd, uint64_t size, uint64_t *id, uint64_t *epoch)
{
    Vgpu__Region m = VGPU__REGION__INIT;
    m.op = VGPU__REGION__OP__MAP;
    m.size = size;
    m.ctx = vg_stub_ctx(); /* the server registers the memory in it */
    pthread_mutex_lock(&conn_lock);
    CUresult result = connect_locked();
    if (result != CUDA_SUCCESS || conn_x->kind != VG_XPORT_SHM) {
        close(fd);
        pthread_mutex_unlock(&conn_lock);
        return result != CUDA_SUCCESS ? result : CUDA_ERROR_NOT_SUPPORTED;
    }
    uint64_t req = conn_next_req++;
    /* The descriptor first, on the socket; the frame that names it then, in the ring. */
    int rc = vg_xport_send_fd(conn_x->fd, fd, VG_SHM_TAG_REGION);
    close(fd);
    if (rc < 0) {
        result = lost("send", rc);
        goto out;
    }
    struct vg_frame_header h;
    Vgpu__Reply *rep;
    result = exchange_locked(VG_MSG_REGION, req, &m.base, 0, NULL, 0, &h, &rep);
    if (result != CUDA_SUCCESS)
        goto out;
    result = (CUresult)rep->result;
    if (result == CUDA_SUCCESS && rep->n_outs != 1)
        result = CUDA_ERROR_UNKNOWN;
    if (result == CUDA_SUCCESS) {
        *id = rep->outs[0];
        *epoch = conn_epoch;
    }
    protobuf_c_message_free_unpacked(&rep->base, NULL);
    if (h.bulk_len && read_locked(NULL, h.bulk_len) < 0)
        result = lost("receive", -ECONNRESET);
out:
    pthread_mutex_unlock(&conn_lock);
    return result;
}

void vg_conn_region_unmap(uint64_t id, uint64_t epoch)
{
    Vgpu__Region m = VGPU__REGION__INIT;
    m.op = VGPU__REGION__OP__UNMAP;
    m.id = id;
    m.ctx = vg_stub_ctx();
    pthread_mutex_lock(&conn_lock);
    /* A region of another connection (the parent's, in a forked child) is not this session's. */
    if (conn_x && conn_pid == conn_self && conn_epoch == epoch && !conn_broken) {
        int rc = queue_frame_locked(VG_MSG_REGION, VG_FLAG_NO_REPLY, conn_next_req++, &m.base, NULL, 0, 1);
        if (rc < 0)
            (void)lost("send", rc);
    }
    pthread_mutex_unlock(&conn_lock);
}
