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
#include <unistd.h>

#include "calls.h"
#include "frame.h"
#include "log.h"

/* The process's connection. conn_lock protects every field and is held across a whole exchange
 * so that frames of different threads never interleave on the socket. */
static pthread_mutex_t conn_lock = PTHREAD_MUTEX_INITIALIZER;
static int conn_fd = -1;
static pid_t conn_pid;            /* the process that opened conn_fd */
static int conn_inited;           /* cuInit succeeded (in this process or before a fork) */
static int conn_broken;           /* the connection was lost: calls fail until the process ends */
static uint64_t conn_next_req = 1;
static uint64_t conn_max_frame = VG_FRAME_DEFAULT_MAX;

/* fork() while another thread is inside a call would leave the child's copy of conn_lock held
 * forever: take it around fork, so that the child's copy is free and the socket is between
 * frames. */
static void atfork_prepare(void)
{
    pthread_mutex_lock(&conn_lock);
}

static void atfork_release(void)
{
    pthread_mutex_unlock(&conn_lock);
}

__attribute__((constructor)) static void conn_init(void)
{
    pthread_atfork(atfork_prepare, atfork_release, atfork_release);
}

static void conn_drop_locked(void)
{
    if (conn_fd >= 0)
        close(conn_fd);
    conn_fd = -1;
}

/* Parses VGPU_SERVER "host:port" (host may be [v6]). */
static int parse_server(const char *spec, char *host, size_t host_size, char *port, size_t port_size)
{
    if (strncmp(spec, "unix:", 5) == 0)
        return -2;
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
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    return fd;
}

/* Sends Hello, waits for Welcome. Returns 0 or -1 with *why (static or in whybuf). */
static int handshake(int fd, const char **why, char *whybuf, size_t whybuf_size)
{
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
    if (vg_frame_send(fd, VG_MSG_HELLO, 0, 0, &hello.base, NULL, 0) < 0) {
        *why = "cannot send the handshake";
        return -1;
    }
    struct vg_frame_header h;
    ProtobufCMessage *msg = NULL;
    int rc = vg_frame_recv(fd, VG_FRAME_DEFAULT_MAX, &h, &msg, why);
    if (rc == -EPROTONOSUPPORT) {
        snprintf(whybuf, whybuf_size, "protocol version mismatch: server speaks %u, this stub %u",
                 h.version, VG_PROTOCOL_VERSION);
        *why = whybuf;
        return -1;
    }
    if (rc < 0)
        return -1;
    int ok = -1;
    if (h.type == VG_MSG_WELCOME) {
        Vgpu__Welcome *w = (Vgpu__Welcome *)msg;
        if (w->protocol_version != VG_PROTOCOL_VERSION) {
            snprintf(whybuf, whybuf_size, "protocol version mismatch: server speaks %u, this stub %u",
                     w->protocol_version, VG_PROTOCOL_VERSION);
            *why = whybuf;
        } else if (w->max_frame < VG_FRAME_MIN_MAX) {
            *why = "server announced an unusable maximum frame size";
        } else {
            conn_max_frame = w->max_frame;
            vg_info("connected: session %llu on %s", (unsigned long long)w->session_id,
                    w->driver ? w->driver : "?");
            ok = 0;
        }
    } else if (h.type == VG_MSG_ERROR) {
        Vgpu__Error *e = (Vgpu__Error *)msg;
        snprintf(whybuf, whybuf_size, "server refused: %s", e->message ? e->message : "?");
        *why = whybuf;
    } else {
        *why = "unexpected handshake reply";
    }
    protobuf_c_message_free_unpacked(msg, NULL);
    if (ok == 0 && h.bulk_len && vg_io_discard(fd, h.bulk_len) < 0)
        ok = -1;
    return ok;
}

static CUresult connect_locked(void)
{
    if (conn_fd >= 0 && conn_pid == getpid())
        return CUDA_SUCCESS;
    if (conn_fd >= 0) {
        /* A forked child: the inherited socket is the parent's session; leave it to the parent. */
        close(conn_fd);
        conn_fd = -1;
        conn_broken = 0;
    }
    if (conn_broken)
        return CUDA_ERROR_DEVICE_UNAVAILABLE;
    const char *spec = getenv("VGPU_SERVER");
    char host[256], port[32];
    const char *why = NULL;
    char whybuf[256];
    if (!spec || !*spec) {
        fprintf(stderr, "vgpu: VGPU_SERVER is not set (expected host:port of a gpu-server)\n");
        return CUDA_ERROR_NO_DEVICE;
    }
    int prc = parse_server(spec, host, sizeof host, port, sizeof port);
    if (prc < 0) {
        fprintf(stderr, "vgpu: cannot use VGPU_SERVER=%s: %s\n", spec,
                prc == -2 ? "unix: transport not supported by this stub" : "expected host:port");
        return CUDA_ERROR_NO_DEVICE;
    }
    int fd = dial(host, port, &why);
    if (fd < 0) {
        fprintf(stderr, "vgpu: cannot reach gpu-server at %s: %s\n", spec, why);
        return CUDA_ERROR_NO_DEVICE;
    }
    if (handshake(fd, &why, whybuf, sizeof whybuf) < 0) {
        fprintf(stderr, "vgpu: gpu-server at %s: %s\n", spec, why ? why : "handshake failed");
        close(fd);
        return CUDA_ERROR_NO_DEVICE;
    }
    conn_fd = fd;
    conn_pid = getpid();
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

static CUresult lost(const char *what, int err)
{
    static int once;
    if (!__atomic_exchange_n(&once, 1, __ATOMIC_RELAXED))
        fprintf(stderr, "vgpu: lost the connection to gpu-server (%s: %s)\n", what, strerror(-err));
    conn_drop_locked();
    conn_broken = 1;
    return CUDA_ERROR_DEVICE_UNAVAILABLE;
}

CUresult vg_conn_call(const struct vg_rpc *r)
{
    int pipelined = vg_call_kind(r->call) == VG_PIPELINED && !r->want_reply;
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
    int rc = vg_frame_send(conn_fd, VG_MSG_CALL, pipelined ? VG_FLAG_NO_REPLY : 0, req, &call.base,
                           r->bulk, r->bulk_len);
    if (rc < 0) {
        result = lost("send", rc);
        goto out;
    }
    if (pipelined) {
        result = CUDA_SUCCESS;
        goto out;
    }
    struct vg_frame_header h;
    ProtobufCMessage *msg = NULL;
    const char *why = NULL;
    rc = vg_frame_recv(conn_fd, conn_max_frame + 4096, &h, &msg, &why);
    if (rc < 0) {
        if (msg)
            protobuf_c_message_free_unpacked(msg, NULL);
        result = lost(why ? why : "receive", rc);
        goto out;
    }
    if (h.type == VG_MSG_ERROR) {
        Vgpu__Error *e = (Vgpu__Error *)msg;
        fprintf(stderr, "vgpu: gpu-server closed the session: %s\n", e->message ? e->message : "?");
        protobuf_c_message_free_unpacked(msg, NULL);
        result = lost("server error", -EPROTO);
        goto out;
    }
    if (h.type != VG_MSG_REPLY || h.request_id != req) {
        protobuf_c_message_free_unpacked(msg, NULL);
        result = lost("reply out of sequence", -EPROTO);
        goto out;
    }
    Vgpu__Reply *rep = (Vgpu__Reply *)msg;
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
    protobuf_c_message_free_unpacked(msg, NULL);
    if (h.bulk_len) {
        if (h.bulk_len == r->rbulk_len && r->rbulk)
            rc = vg_io_read_all(conn_fd, r->rbulk, (size_t)h.bulk_len);
        else {
            rc = vg_io_discard(conn_fd, h.bulk_len);
            if (result == CUDA_SUCCESS)
                result = CUDA_ERROR_UNKNOWN;
        }
        if (rc < 0)
            result = lost("receive", rc);
    } else if (r->rbulk_len && result == CUDA_SUCCESS) {
        result = CUDA_ERROR_UNKNOWN;
    }
out:
    pthread_mutex_unlock(&conn_lock);
    return result;
}
