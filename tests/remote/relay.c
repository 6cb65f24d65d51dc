/* A raw test connection over the shared-memory transport: the test reads and writes frames on a
 * plain socket (one end of a socket pair) as it would over TCP, and a relay carries the bytes
 * to gpu-server: over the Unix socket until the handshake, then through the shared rings the
 * session process hands over (protocol/shm.h). So every raw-frame test (malformed frames, the
 * fuzzer) exercises the server's shared-memory path unchanged.
 *
 * The relay asks for shared memory in the test's Hello (when it is one that decodes; anything
 * else goes through as it is), forwards the Welcome, takes the region's memfd that follows it,
 * and from then on copies the test's bytes into the request ring and the reply ring's bytes to
 * the test. Two threads per connection (up: test to server, down: server to test); the
 * connection ends as the test or the server ends it. */
#include "harness.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "shm.h"
#include "xport.h"

enum relay_mode { R_UNDECIDED, R_SOCKET, R_SHM };

struct relay {
    int test_fd;               /* our end of the socket pair */
    int sock;                  /* the Unix socket to gpu-server */
    struct vg_xport *x;        /* the rings, once the Welcome granted them */
    pthread_mutex_t lock;
    pthread_cond_t decided;
    enum relay_mode mode;
    int refs;                  /* threads still running */
};

static void relay_put(struct relay *r)
{
    pthread_mutex_lock(&r->lock);
    int last = --r->refs == 0;
    pthread_mutex_unlock(&r->lock);
    if (!last)
        return;
    if (r->x)
        r->x->ops->close(r->x);
    close(r->sock);
    close(r->test_fd);
    free(r);
}

static void decide(struct relay *r, enum relay_mode m)
{
    pthread_mutex_lock(&r->lock);
    if (r->mode == R_UNDECIDED)
        r->mode = m;
    pthread_cond_broadcast(&r->decided);
    pthread_mutex_unlock(&r->lock);
}

/* Sends bytes the test wrote after the handshake, however the connection goes now. */
static int up_send(struct relay *r, const void *buf, size_t len)
{
    if (r->mode == R_SHM) {
        struct iovec iov = {(void *)buf, len};
        return r->x->ops->send(r->x, &iov, 1, -1);
    }
    return vg_io_write_all(r->sock, buf, len);
}

static void *up_main(void *arg)
{
    struct relay *r = arg;
    static const size_t cap = 1 << 16;
    uint8_t *buf = malloc(cap);
    size_t have = 0;
    int dead = !buf; /* the server side failed: keep reading so that the test never blocks */
    /* The first frame: a Hello that decodes is re-encoded asking for shared memory. */
    while (!dead && have < VG_FRAME_HEADER_SIZE) {
        ssize_t n = recv(r->test_fd, buf + have, cap - have, 0);
        if (n <= 0)
            goto out;
        have += (size_t)n;
    }
    struct vg_frame_header h;
    int hello = !dead && vg_frame_decode_header(buf, VG_FRAME_HEADER_SIZE + VG_HELLO_MAX, &h, NULL) == 0 &&
                h.type == VG_MSG_HELLO && h.bulk_len == 0;
    while (hello && have < VG_FRAME_HEADER_SIZE + h.pb_len) {
        ssize_t n = recv(r->test_fd, buf + have, cap - have, 0);
        if (n <= 0)
            goto out;
        have += (size_t)n;
    }
    Vgpu__Hello *m = hello ? (Vgpu__Hello *)vg_msg_unpack(VG_MSG_HELLO, buf + VG_FRAME_HEADER_SIZE, h.pb_len) : NULL;
    if (m) {
        m->shm = 1;
        uint8_t *frame;
        size_t frame_len;
        size_t first = VG_FRAME_HEADER_SIZE + h.pb_len;
        int ok = vg_frame_build(VG_MSG_HELLO, h.flags, h.request_id, &m->base, 0, &frame, &frame_len) == 0;
        protobuf_c_message_free_unpacked(&m->base, NULL);
        if (ok) {
            dead = vg_io_write_all(r->sock, frame, frame_len) != 0;
            free(frame);
        }
        memmove(buf, buf + first, have - first);
        have -= first;
        /* What follows the Hello goes where the Welcome says. */
        pthread_mutex_lock(&r->lock);
        while (r->mode == R_UNDECIDED)
            pthread_cond_wait(&r->decided, &r->lock);
        pthread_mutex_unlock(&r->lock);
    } else {
        decide(r, R_SOCKET);
    }
    for (;;) {
        if (have && !dead)
            dead = up_send(r, buf, have) != 0;
        have = 0;
        ssize_t n = recv(r->test_fd, buf, cap, 0);
        if (n <= 0)
            break;
        have = (size_t)n;
    }
out:
    /* The test is done: the server sees the connection end, as with TCP. */
    shutdown(r->sock, SHUT_RDWR);
    decide(r, R_SOCKET);
    free(buf);
    relay_put(r);
    return NULL;
}

static void *down_main(void *arg)
{
    struct relay *r = arg;
    uint8_t buf[1 << 16];
    /* The first frame from the server: a Welcome granting shared memory switches to the rings. */
    struct vg_frame_header h;
    ProtobufCMessage *m = NULL;
    int shm = 0;
    if (vg_io_read_all(r->sock, buf, VG_FRAME_HEADER_SIZE) != 0) {
        decide(r, R_SOCKET);
        goto out;
    }
    size_t first = VG_FRAME_HEADER_SIZE;
    if (vg_frame_decode_header(buf, VG_FRAME_DEFAULT_MAX, &h, NULL) == 0 && h.type == VG_MSG_WELCOME &&
        h.pb_len <= sizeof buf - VG_FRAME_HEADER_SIZE && h.bulk_len == 0) {
        if (vg_io_read_all(r->sock, buf + first, h.pb_len) != 0) {
            decide(r, R_SOCKET);
            goto out;
        }
        first += h.pb_len;
        m = vg_msg_unpack(VG_MSG_WELCOME, buf + VG_FRAME_HEADER_SIZE, h.pb_len);
        uint64_t size = m ? ((Vgpu__Welcome *)m)->shm_size : 0;
        protobuf_c_message_free_unpacked(m, NULL);
        if (size) {
            uint8_t tag = 0;
            int memfd = vg_xport_recv_fd(r->sock, &tag, 30000);
            const char *why = NULL;
            int sock2 = dup(r->sock);
            if (memfd >= 0 && tag == VG_SHM_TAG_RINGS && sock2 >= 0)
                r->x = vg_xport_shm_attach(sock2, memfd, size, &why);
            else if (memfd >= 0)
                close(memfd);
            if (!r->x && sock2 >= 0)
                close(sock2);
            shm = r->x != NULL;
        }
    }
    decide(r, shm ? R_SHM : R_SOCKET);
    if (vg_io_write_all(r->test_fd, buf, first) != 0)
        goto out;
    for (;;) {
        ssize_t n = shm ? r->x->ops->recv(r->x, buf, sizeof buf, -1) : recv(r->sock, buf, sizeof buf, 0);
        if (!shm && n < 0 && errno == EINTR)
            continue;
        if (n <= 0 || vg_io_write_all(r->test_fd, buf, (size_t)n) != 0)
            break;
    }
out:
    /* The server is done: the test reads the end of the stream. */
    shutdown(r->test_fd, SHUT_WR);
    relay_put(r);
    return NULL;
}

int th_relay_connect(const char *path)
{
    struct sockaddr_un sun = {.sun_family = AF_UNIX};
    snprintf(sun.sun_path, sizeof sun.sun_path, "%s", path);
    int sock = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (sock < 0)
        return -1;
    if (connect(sock, (struct sockaddr *)&sun, sizeof sun) != 0) {
        close(sock);
        return -1;
    }
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) {
        close(sock);
        return -1;
    }
    struct relay *r = calloc(1, sizeof *r);
    if (!r) {
        close(sock);
        close(sv[0]);
        close(sv[1]);
        return -1;
    }
    r->test_fd = sv[1];
    r->sock = sock;
    r->refs = 2;
    pthread_mutex_init(&r->lock, NULL);
    pthread_cond_init(&r->decided, NULL);
    pthread_attr_t a;
    pthread_attr_init(&a);
    pthread_attr_setdetachstate(&a, PTHREAD_CREATE_DETACHED);
    pthread_t t;
    if (pthread_create(&t, &a, up_main, r) != 0) {
        free(r);
        close(sock);
        close(sv[0]);
        close(sv[1]);
        pthread_attr_destroy(&a);
        return -1;
    }
    if (pthread_create(&t, &a, down_main, r) != 0) {
        /* The up thread ends when the test's end closes; the down side was never there. */
        decide(r, R_SOCKET);
        relay_put(r);
        close(sv[0]);
        pthread_attr_destroy(&a);
        return -1;
    }
    pthread_attr_destroy(&a);
    return sv[0];
}
