/* The session process: reads the client's calls, runs them, replies (see sess_proc.h). */
#include "sess_proc.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "calls.h"
#include "driver.h"
#include "frame.h"
#include "log.h"
#include "sess_copy.h"
#include "sess_sched.h"
#include "sess_watch.h"
#include "session.h"
#include "shm.h"
#include "xport.h"
#include "xport_tls.h"
#include "xport_shm.h"

/* Bytes are read into a staging buffer and every whole frame in it is taken from there: a
 * client that pipelines many small calls sends them back to back, and one read then serves
 * dozens of frames. A frame too large for it is read straight into a body buffer of its own. */
#define STAGE_CAP ((size_t)64 << 10)
/* A large body's buffer starts at 1 MiB at most and doubles as bytes arrive, so that memory
 * held for a frame follows what the peer really sent, not what its header announced. */
#define BODY_FIRST_CHUNK ((uint64_t)1 << 20)
/* Large buffers are kept for the next frame (fresh multi-megabyte buffers cost a page fault per
 * page) while the client keeps the session busy, and freed after this long idle. */
#define SPARE_IDLE_MS 1000
/* Device printf output sent ahead of one reply at most; more is dropped with a note. */
#define OUTPUT_MAX ((size_t)16 << 20)
#define OUTPUT_CHUNK ((size_t)1 << 20)
/* Waiting for the cap on buffered bytes to let a frame grow: polled this often. */
#define CAP_RETRY_MS 10
/* Copy payloads move between the transport and the device in pieces of at most this much: big
 * enough that each piece's driver call is cheap against its bytes, small enough that a piece
 * stays in the cache between the transport's copy and the device's. Large host-to-device copies
 * are never gathered whole, and device-to-host copies are read back piece by piece straight into
 * the reply ring (shared memory) or through the copy buffer onto the socket. */
#define COPY_PIECE ((size_t)256 << 10)
/* Over a socket the pieces go through two copy buffers, one filled or sent while the device
 * copies the other: larger pieces, fewer hand-offs to the driver. */
#define SOCK_PIECE ((size_t)1 << 20)
/* A shared-memory client's rings: room for many pipelined calls, and for a large copy's pieces
 * to be filled by one side while the other empties them. */
#define SHM_REQ_RING ((uint64_t)2 << 20)
#define SHM_REP_RING ((uint64_t)2 << 20)

struct sp {
    const struct vg_sess_start *st;
    const struct vg_config *cfg;
    struct vg_xport *x;
    struct vg_drv drv;
    struct vg_sess *sess;
    struct sess_sched *sched;      /* NULL when the driver cannot time work (nothing shared) */
    struct vg_board_slot *slot;

    /* Frame writes come from the main thread (replies, output) and the watchdog (heartbeats, the
     * kernel-timeout Error); the lock is held across one whole frame's write, so it spans I/O. */
    pthread_mutex_t wlock;
    uint64_t last_write_ns;        /* atomic */
    uint64_t busy_since_ns;        /* atomic: inside a call since (0: between calls) */

    uint8_t *stage;                /* STAGE_CAP + VG_BULK_PAD bytes; [pos, len) unread */
    size_t pos, len;
    uint8_t *body;                 /* a large frame's body, body_cap + VG_BULK_PAD bytes */
    uint64_t body_cap;
    uint64_t body_held;            /* bytes of body charged on the board */
    uint8_t *copybuf;              /* 2 x SOCK_PIECE bytes for copies over a socket, mapped at first use */
    struct vg_hostbufs *hostbufs;  /* host memory copies may register with the driver */
    struct vg_regions *regions;    /* shared memory only: the client's pinned host memory */
    size_t output_sent;            /* bytes of fd 1 already sent to the client */
    int may_print;                 /* a kernel was launched: device printf may have written */
};

/* Ends the session process. No teardown of driver objects one by one: a kernel may still run,
 * and the process's end is what releases them all (the driver's own teardown). */
static void sp_exit(struct sp *p, int status) __attribute__((noreturn));
static void sp_exit(struct sp *p, int status)
{
    if (p->sess)
        vg_info("session %llu (%s) ended: released %u allocations with its process",
                (unsigned long long)p->st->session_id, p->st->peer, vg_sess_owned_allocations(p->sess));
    _exit(status);
}

/* ---- writing -------------------------------------------------------------------------- */

/* Sends one frame's header and message, then bulk[0..bulk_now) of its bulk_len bulk bytes (the
 * rest follows from the caller, still under the lock). The caller holds wlock. 0 or a negative
 * errno. */
static int send_head_locked(struct sp *p, unsigned type, uint64_t request_id, const ProtobufCMessage *msg,
                            uint64_t bulk_len, const void *bulk, uint64_t bulk_now)
{
    size_t pb_len = msg ? vg_msg_packed_size(msg) : 0;
    uint8_t local[1024];
    uint8_t *head = VG_FRAME_HEADER_SIZE + pb_len <= sizeof local ? local : malloc(VG_FRAME_HEADER_SIZE + pb_len);
    if (!head || pb_len > VG_PB_MAX) {
        if (head != local)
            free(head);
        return -ENOMEM;
    }
    size_t head_len = vg_frame_put(type, 0, request_id, msg, pb_len, bulk_len, head);
    struct iovec iov[2] = {{head, head_len}, {(void *)bulk, (size_t)bulk_now}};
    int timeout = p->cfg->read_timeout_ms ? (int)p->cfg->read_timeout_ms : -1;
    int rc = p->x->ops->send(p->x, iov, bulk_now ? 2 : 1, timeout);
    if (head != local)
        free(head);
    __atomic_store_n(&p->last_write_ns, vg_now_ns(), __ATOMIC_RELEASE);
    return rc;
}

static int send_frame_locked(struct sp *p, unsigned type, uint64_t request_id, const ProtobufCMessage *msg,
                             const void *bulk, uint64_t bulk_len)
{
    return send_head_locked(p, type, request_id, msg, bulk_len, bulk, bulk_len);
}

static int send_frame(struct sp *p, unsigned type, uint64_t request_id, const ProtobufCMessage *msg,
                      const void *bulk, uint64_t bulk_len)
{
    pthread_mutex_lock(&p->wlock);
    int rc = send_frame_locked(p, type, request_id, msg, bulk, bulk_len);
    pthread_mutex_unlock(&p->wlock);
    return rc;
}

/* Tells the client why the session ends (best effort), logs it, and ends the process. */
static void sp_fail(struct sp *p, int status, int code, CUresult cu, const char *fmt, ...)
    __attribute__((noreturn, format(printf, 5, 6)));
static void sp_fail(struct sp *p, int status, int code, CUresult cu, const char *fmt, ...)
{
    char msg[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    vg_warn("session %llu (%s): %s; ending the session", (unsigned long long)p->st->session_id,
            p->st->peer, msg);
    Vgpu__Error e = VGPU__ERROR__INIT;
    e.code = code;
    e.message = msg;
    e.cu_result = (int32_t)cu;
    /* The socket may be blocked by a client that stopped reading: do not wait for it long. */
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += 1;
    if (pthread_mutex_timedlock(&p->wlock, &until) == 0)
        (void)send_frame_locked(p, VG_MSG_ERROR, 0, &e.base, NULL, 0);
    sp_exit(p, status);
}

/* Sends what device code printed since the last reply (fd 1 is a memory file, see setup). Only
 * kernels print: a session that never launched one skips the look (a system call per reply). */
static void flush_output(struct sp *p)
{
    if (!p->may_print)
        return;
    fflush(stdout);
    struct stat sb;
    if (fstat(1, &sb) != 0 || (size_t)sb.st_size <= p->output_sent)
        return;
    size_t have = (size_t)sb.st_size - p->output_sent;
    size_t send_now = have > OUTPUT_MAX ? OUTPUT_MAX : have;
    uint8_t *buf = malloc(send_now < OUTPUT_CHUNK ? send_now : OUTPUT_CHUNK);
    Vgpu__Output o = VGPU__OUTPUT__INIT;
    o.fd = 1;
    for (size_t done = 0; buf && done < send_now;) {
        size_t n = send_now - done < OUTPUT_CHUNK ? send_now - done : OUTPUT_CHUNK;
        ssize_t r = pread(1, buf, n, (off_t)(p->output_sent + done));
        if (r <= 0)
            break;
        if (send_frame(p, VG_MSG_OUTPUT, 0, &o.base, buf, (uint64_t)r) < 0)
            break;
        done += (size_t)r;
    }
    free(buf);
    if (have > send_now)
        vg_warn("session %llu: %zu bytes of device output dropped (over %zu at once)",
                (unsigned long long)p->st->session_id, have - send_now, OUTPUT_MAX);
    /* Device code writes only inside synchronizing calls, which run on this thread: nothing
     * writes between the read above and this reset. */
    if (ftruncate(1, 0) == 0)
        lseek(1, 0, SEEK_SET);
    p->output_sent = 0;
}

/* ---- watchdog hooks (watchdog thread) --------------------------------------------------- */

static int hook_peer_gone(void *arg)
{
    struct sp *p = arg;
    if (!p->x->ops->peer_gone(p->x))
        return 0;
    vg_info("session %llu (%s): client gone during a call; ending the session",
            (unsigned long long)p->st->session_id, p->st->peer);
    sp_exit(p, VG_SESS_EXIT_DISCONNECTED);
}

/* Between calls: a transport whose reader sleeps where a hang-up does not wake it (shared-memory
 * rings) is woken to see it and end the session as it would on a socket. */
static void hook_idle_check(void *arg)
{
    struct sp *p = arg;
    if (p->x->ops->interrupt && p->x->ops->peer_gone(p->x))
        p->x->ops->interrupt(p->x);
}

static void hook_heartbeat(void *arg)
{
    struct sp *p = arg;
    if (pthread_mutex_trylock(&p->wlock) != 0)
        return; /* a frame is being written: the client hears from us anyway */
    Vgpu__Heartbeat hb = VGPU__HEARTBEAT__INIT;
    (void)send_frame_locked(p, VG_MSG_HEARTBEAT, 0, &hb.base, NULL, 0);
    pthread_mutex_unlock(&p->wlock);
}

static void hook_kernel_timeout(void *arg)
{
    struct sp *p = arg;
    unsigned t = p->cfg->kernel_timeout_ms;
    sp_fail(p, VG_SESS_EXIT_KERNEL_TIMEOUT, -ETIMEDOUT, CUDA_ERROR_LAUNCH_TIMEOUT,
            "a kernel ran past --kernel-timeout (%u.%03u s)", t / 1000, t % 1000);
}

static void hook_stop(void *arg, int signum)
{
    struct sp *p = arg;
    vg_info("session %llu (%s): signal %d, ending the session", (unsigned long long)p->st->session_id,
            p->st->peer, signum);
    sp_exit(p, VG_SESS_EXIT_STOPPED);
}

static uint64_t hook_running_since(void *arg)
{
    struct sp *p = arg;
    return p->sched ? sess_sched_running_since(p->sched) : 0;
}

static uint64_t hook_last_write(void *arg)
{
    struct sp *p = arg;
    return __atomic_load_n(&p->last_write_ns, __ATOMIC_ACQUIRE);
}

/* ---- tenant accounting (main thread) ------------------------------------------------------- */

/* The server's ordinal of device dev as this session numbers it (the tenant's devices are
 * renumbered from 0 by CUDA_VISIBLE_DEVICES). */
static int server_device(const struct sp *p, int dev)
{
    if (!p->st->ndevices)
        return dev;
    return dev >= 0 && dev < p->st->ndevices ? p->st->devices[dev] : -1;
}

static int acct_charge(void *arg, int dev, uint64_t bytes)
{
    struct sp *p = arg;
    return vg_board_mem_charge(p->st->board, p->st->slot, server_device(p, dev), bytes);
}

static void acct_refund(void *arg, int dev, uint64_t bytes)
{
    struct sp *p = arg;
    vg_board_mem_refund(p->st->board, p->st->slot, server_device(p, dev), bytes);
}

/* What the tenant may still use of the device: its limit is its total memory. */
static void acct_view(void *arg, int dev, size_t *free_bytes, size_t *total_bytes)
{
    struct sp *p = arg;
    const struct vg_board_tenant *t = &p->st->board->tenants[p->st->tenant % VG_BOARD_TENANTS];
    uint64_t limit = __atomic_load_n(&t->mem_limit, __ATOMIC_ACQUIRE);
    if (!limit)
        return;
    uint64_t used = vg_board_tenant_mem(p->st->board, p->st->tenant, server_device(p, dev));
    uint64_t left = limit > used ? limit - used : 0;
    if (*total_bytes > limit)
        *total_bytes = (size_t)limit;
    if (*free_bytes > left)
        *free_bytes = (size_t)left;
}

/* The tenant sees only its devices, renumbered from 0, as NVIDIA's driver does with
 * CUDA_VISIBLE_DEVICES (the emulated GPU reads it too). The server's own setting, if any, says
 * what its ordinals are. */
static int restrict_devices(const struct vg_sess_start *st)
{
    if (!st->ndevices)
        return 0;
    char server_list[1024] = "";
    const char *env = getenv("CUDA_VISIBLE_DEVICES");
    if (env)
        snprintf(server_list, sizeof server_list, "%s", env);
    char *server_tok[VG_BOARD_DEVICES];
    int nserver = 0;
    for (char *save = NULL, *t = strtok_r(server_list, ",", &save); t && nserver < VG_BOARD_DEVICES;
         t = strtok_r(NULL, ",", &save))
        server_tok[nserver++] = t;
    char list[2048] = "";
    size_t len = 0;
    for (int i = 0; i < st->ndevices; i++) {
        char own[16];
        const char *tok = own;
        if (env && st->devices[i] < nserver)
            tok = server_tok[st->devices[i]];
        else
            snprintf(own, sizeof own, "%d", st->devices[i]);
        int n = snprintf(list + len, sizeof list - len, "%s%s", i ? "," : "", tok);
        if (n < 0 || (size_t)n >= sizeof list - len)
            return -1;
        len += (size_t)n;
    }
    return setenv("CUDA_VISIBLE_DEVICES", list, 1);
}

/* ---- reading ---------------------------------------------------------------------------- */

static void release_body(struct sp *p)
{
    free(p->body);
    p->body = NULL;
    p->body_cap = 0;
    if (p->body_held)
        vg_board_buffer_release(p->st->board, p->st->slot, p->body_held);
    p->body_held = 0;
}

/* The transport failed or ended (n: what recv/peek returned); ends the session. */
static void transport_lost(struct sp *p, ssize_t n, int inside) __attribute__((noreturn));
static void transport_lost(struct sp *p, ssize_t n, int inside)
{
    if (n == -ETIMEDOUT)
        sp_fail(p, VG_SESS_EXIT_TIMEOUT, -ETIMEDOUT, CUDA_SUCCESS, "no data for %u ms inside a frame",
                p->cfg->read_timeout_ms);
    if (n == -EPROTO)
        sp_fail(p, VG_SESS_EXIT_PROTOCOL, -EPROTO, CUDA_SUCCESS, "the client corrupted the shared rings");
    if (n == 0) {
        if (inside)
            vg_warn("session %llu (%s): connection ended inside a frame", (unsigned long long)p->st->session_id,
                    p->st->peer);
        else
            vg_info("session %llu (%s): client disconnected", (unsigned long long)p->st->session_id, p->st->peer);
    } else {
        vg_info("session %llu (%s): connection error: %s", (unsigned long long)p->st->session_id, p->st->peer,
                strerror((int)-n));
    }
    sp_exit(p, VG_SESS_EXIT_DISCONNECTED);
}

/* Reads into buf[0..len); returns the bytes read (> 0). inside: a frame has begun (the read
 * timeout applies); otherwise the session may idle for ever, and frees its large body buffer
 * after SPARE_IDLE_MS. Ends the session at the end of the stream or on an error. */
static size_t read_some(struct sp *p, void *buf, size_t len, int inside)
{
    struct vg_xport *x = p->x;
    for (;;) {
        int timeout = inside && p->cfg->read_timeout_ms ? (int)p->cfg->read_timeout_ms : -1;
        ssize_t n;
        if (!inside) {
            /* A burst of device work ends where the session waits for its client (its time
             * is the device's, not the client's): with one open, look first whether more
             * is there; without, a wait is a single read. */
            if (sess_sched_open(p->sched)) {
                n = x->ops->recv(x, buf, len, 0);
                if (n != -ETIMEDOUT)
                    goto got;
                sess_sched_close(p->sched);
            }
            if (p->body)
                timeout = SPARE_IDLE_MS;
        }
        n = x->ops->recv(x, buf, len, timeout);
    got:
        if (n > 0)
            return (size_t)n;
        if (n == -ETIMEDOUT && !inside && p->body) {
            release_body(p);
            continue;
        }
        transport_lost(p, n, inside);
    }
}

/* Makes at least `need` unread bytes sit in the staging buffer (need <= STAGE_CAP). */
static void stage_fill(struct sp *p, size_t need, int inside)
{
    if (p->len - p->pos >= need)
        return;
    if (p->pos) {
        memmove(p->stage, p->stage + p->pos, p->len - p->pos);
        p->len -= p->pos;
        p->pos = 0;
    }
    while (p->len < need)
        p->len += read_some(p, p->stage + p->len, STAGE_CAP - p->len, inside || p->len > 0);
}

/* Grows the body buffer to hold at least `want` bytes (within the server-wide cap, waiting for
 * room). */
static void body_grow(struct sp *p, uint64_t want, uint64_t body_len)
{
    uint64_t cap = p->body_cap ? p->body_cap : BODY_FIRST_CHUNK;
    while (cap < want)
        cap *= 2;
    if (cap > body_len)
        cap = body_len;
    if (cap <= p->body_cap)
        return;
    uint64_t more = cap - p->body_cap;
    uint64_t waited_ms = 0;
    while (!vg_board_buffer_acquire(p->st->board, p->st->slot, more)) {
        /* Over the server-wide cap: this session stops reading until others let go (stalled
         * holders are dropped at their read timeout). A session that cannot get room within its
         * own read timeout is dropped too, rather than wait for ever. */
        if (waited_ms == 0)
            vg_info("session %llu: buffered bytes at the cap (%llu); pausing its reads",
                    (unsigned long long)p->st->session_id, (unsigned long long)p->st->board->buffered_cap);
        if (p->cfg->read_timeout_ms && waited_ms >= p->cfg->read_timeout_ms)
            sp_fail(p, VG_SESS_EXIT_TIMEOUT, -ENOBUFS, CUDA_SUCCESS,
                    "no room for a %llu-byte frame within %u ms (server at --max-buffered %llu)",
                    (unsigned long long)body_len, p->cfg->read_timeout_ms,
                    (unsigned long long)p->st->board->buffered_cap);
        usleep(CAP_RETRY_MS * 1000);
        waited_ms += CAP_RETRY_MS;
    }
    uint8_t *n = realloc(p->body, cap + VG_BULK_PAD);
    if (!n) {
        vg_board_buffer_release(p->st->board, p->st->slot, more);
        sp_fail(p, VG_SESS_EXIT_NOMEM, -ENOMEM, CUDA_SUCCESS, "no memory for a %llu-byte frame",
                (unsigned long long)body_len);
    }
    p->body = n;
    p->body_cap = cap;
    p->body_held += more;
}

/* Reads a body of body_len bytes that does not fit in the staging buffer into p->body. */
static uint8_t *read_large_body(struct sp *p, uint64_t body_len)
{
    size_t staged = p->len - p->pos;
    if (staged > body_len)
        staged = (size_t)body_len;
    body_grow(p, staged > BODY_FIRST_CHUNK ? staged : BODY_FIRST_CHUNK, body_len);
    memcpy(p->body, p->stage + p->pos, staged);
    p->pos += staged;
    uint64_t got = staged;
    while (got < body_len) {
        if (got == p->body_cap)
            body_grow(p, got * 2, body_len);
        uint64_t room = p->body_cap - got;
        got += read_some(p, p->body + got, room > (1u << 30) ? (1u << 30) : (size_t)room, 1);
    }
    memset(p->body + body_len, 0, VG_BULK_PAD);
    return p->body;
}

/* ---- copies --------------------------------------------------------------------------- */

/* The two buffers copies over a socket go through (registered with the driver at their first
 * use): piece k in copybuf(p) + (k % 2) * SOCK_PIECE. */
static uint8_t *copybuf(struct sp *p)
{
    if (p->copybuf)
        return p->copybuf;
    void *m = mmap(NULL, 2 * SOCK_PIECE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (m == MAP_FAILED)
        sp_fail(p, VG_SESS_EXIT_NOMEM, -ENOMEM, CUDA_SUCCESS, "no memory for the copy buffers");
    p->copybuf = m;
    (void)vg_hostbufs_add(p->hostbufs, m, 2 * SOCK_PIECE, 0);
    return p->copybuf;
}

/* Takes the frame's next len bytes (a host-to-device copy's payload) as they arrive: from the
 * staging buffer, where they lie in the ring (peek), or through the copy buffer; each piece goes
 * to the device while res->copy is pending and no piece failed. The bytes are consumed whatever
 * happens to the copy. */
/* The device work a call is, for the scheduler (vg_sess_work_target). */
struct work {
    int known;
    CUcontext ctx;
    CUstream stream;
    int dev;
};

/* Before the session waits for its client in the middle of a call (the payload of a copy): the
 * open burst ends, so that the wait is not counted as device time; 1 when it must be reopened
 * (sess_sched_work) before the next device work. */
static int pause_burst(struct sp *p)
{
    if (!sess_sched_open(p->sched))
        return 0;
    sess_sched_close(p->sched);
    return 1;
}

static void stream_in(struct sp *p, struct vg_result *res, uint64_t len, int no_reply, const struct work *w)
{
    struct vg_xport *x = p->x;
    int copying = res->copy.dir == VG_COPY_HTOD;
    CUresult rc = CUDA_SUCCESS;
    int timeout = p->cfg->read_timeout_ms ? (int)p->cfg->read_timeout_ms : -1;
    int inflight = 0; /* a piece's device copy was started from one copy buffer */
    int reopen = 0;   /* the burst was closed while waiting for the client */
    unsigned slot = 0;
    for (uint64_t done = 0; done < len;) {
        uint64_t want = len - done < COPY_PIECE ? len - done : COPY_PIECE;
        const void *src;
        size_t n;
        int peeked = 0, buffered = 0;
        if (p->pos < p->len) {
            n = p->len - p->pos < want ? p->len - p->pos : (size_t)want;
            src = p->stage + p->pos;
            p->pos += n;
        } else if (x->ops->peek) {
            ssize_t k = x->ops->peek(x, &src, (size_t)want, 0);
            if (k == -ETIMEDOUT) {
                reopen |= pause_burst(p);
                k = x->ops->peek(x, &src, (size_t)want, timeout);
            }
            if (k <= 0)
                transport_lost(p, k, 1);
            n = (size_t)k;
            peeked = 1;
        } else {
            /* Fill one buffer while the device copies the other. */
            uint8_t *buf = copybuf(p) + slot * SOCK_PIECE;
            n = len - done < SOCK_PIECE ? (size_t)(len - done) : SOCK_PIECE;
            for (size_t got = 0; got < n;) {
                ssize_t k = x->ops->recv(x, buf + got, n - got, 0);
                if (k == -ETIMEDOUT) {
                    reopen |= pause_burst(p);
                    k = x->ops->recv(x, buf + got, n - got, timeout);
                }
                if (k <= 0)
                    transport_lost(p, k, 1);
                got += (size_t)k;
            }
            src = buf;
            buffered = 1;
        }
        if (reopen && copying && w->known) {
            sess_sched_work(p->sched, w->ctx, w->stream, w->dev, 0);
            reopen = 0;
        }
        if (inflight) {
            CUresult w = vg_copy_wait(p->hostbufs, &res->copy);
            if (rc == CUDA_SUCCESS)
                rc = w;
            inflight = 0;
        }
        if (copying && rc == CUDA_SUCCESS) {
            if (buffered && vg_copy_start(p->hostbufs, &res->copy, done, (void *)src, n, &rc))
                inflight = rc == CUDA_SUCCESS;
            else
                rc = vg_copy_part(p->hostbufs, &res->copy, done, (void *)src, n);
        }
        if (peeked)
            x->ops->consume(x, n);
        slot ^= buffered;
        done += n;
    }
    if (inflight) {
        CUresult w = vg_copy_wait(p->hostbufs, &res->copy);
        if (rc == CUDA_SUCCESS)
            rc = w;
    }
    if (copying)
        vg_sess_copy_done(p->sess, res, rc, no_reply);
}

/* Sends the Reply r of a device-to-host copy with its bytes, read back from the device piece by
 * piece: into the ring where the transport offers room in place (reserve), else through the copy
 * buffer. The first piece is read before anything is sent, so that a failing copy still gets an
 * ordinary Reply; a piece that fails once the frame has begun cannot be reported in it, and ends
 * the session. 0 or a transport error. */
static int reply_with_copy(struct sp *p, uint64_t request_id, Vgpu__Reply *r, struct vg_result *res)
{
    struct vg_xport *x = p->x;
    const struct vg_copy *c = &res->copy;
    uint64_t len = c->len;
    size_t piece = x->ops->reserve ? COPY_PIECE : SOCK_PIECE;
    uint8_t *buf[2] = {copybuf(p), copybuf(p) + SOCK_PIECE};
    size_t first = len < piece ? (size_t)len : piece;
    CUresult rc = vg_copy_part(p->hostbufs, c, 0, buf[0], first);
    if (rc != CUDA_SUCCESS) {
        r->result = rc;
        return send_frame(p, VG_MSG_REPLY, request_id, &r->base, NULL, 0);
    }
    int timeout = p->cfg->read_timeout_ms ? (int)p->cfg->read_timeout_ms : -1;
    /* Over a socket, the next piece is read back while this one is sent. */
    int inflight = 0;
    if (!x->ops->reserve && first < len) {
        size_t n = len - first < piece ? (size_t)(len - first) : piece;
        if (vg_copy_start(p->hostbufs, c, first, buf[1], n, &rc))
            inflight = rc == CUDA_SUCCESS;
        rc = CUDA_SUCCESS;
    }
    pthread_mutex_lock(&p->wlock);
    int sent = send_head_locked(p, VG_MSG_REPLY, request_id, &r->base, len, buf[0], first);
    unsigned slot = 1;
    for (uint64_t done = first; sent == 0 && done < len;) {
        size_t n = len - done < piece ? (size_t)(len - done) : piece;
        void *dst = buf[slot];
        if (x->ops->reserve) {
            ssize_t k = x->ops->reserve(x, &dst, n, timeout);
            if (k < 0) {
                sent = (int)k;
                break;
            }
            n = (size_t)k;
            rc = vg_copy_part(p->hostbufs, c, done, dst, n);
        } else if (inflight) {
            rc = vg_copy_wait(p->hostbufs, c);
            inflight = 0;
        } else {
            rc = vg_copy_part(p->hostbufs, c, done, dst, n);
        }
        if (rc != CUDA_SUCCESS) {
            vg_warn("session %llu (%s): a device-to-host copy failed (CUresult %d) after its reply began; "
                    "ending the session", (unsigned long long)p->st->session_id, p->st->peer, (int)rc);
            sp_exit(p, VG_SESS_EXIT_COPY_FAILED);
        }
        if (x->ops->reserve) {
            sent = x->ops->commit(x, n);
        } else {
            if (done + n < len) {
                size_t next = len - done - n < piece ? (size_t)(len - done - n) : piece;
                if (vg_copy_start(p->hostbufs, c, done + n, buf[slot ^ 1], next, &rc))
                    inflight = rc == CUDA_SUCCESS;
                rc = CUDA_SUCCESS;
            }
            struct iovec iov = {dst, n};
            sent = x->ops->send(x, &iov, 1, timeout);
            slot ^= 1;
        }
        done += n;
        __atomic_store_n(&p->last_write_ns, vg_now_ns(), __ATOMIC_RELEASE);
    }
    if (inflight)
        (void)vg_copy_wait(p->hostbufs, c); /* the buffer is not reused before it is done */
    pthread_mutex_unlock(&p->wlock);
    return sent;
}

/* ---- running calls -------------------------------------------------------------------- */

static int destroys_contexts(unsigned call)
{
    return call == VG_CALL_cuCtxDestroy_v2 || call == VG_CALL_cuDevicePrimaryCtxRelease_v2 ||
           call == VG_CALL_cuDevicePrimaryCtxReset_v2 || call == VG_CALL_cuGreenCtxDestroy;
}

static int is_htod(unsigned call)
{
    return call == VG_CALL_cuMemcpyHtoD_v2 || call == VG_CALL_cuMemcpyHtoDAsync_v2;
}

static int is_dtoh(unsigned call)
{
    return call == VG_CALL_cuMemcpyDtoH_v2 || call == VG_CALL_cuMemcpyDtoHAsync_v2;
}

/* Runs one call. bulk: its bulk bytes in memory (bulk_len of the header, followed by
 * VG_BULK_PAD zero bytes), or NULL with streamed set: a host-to-device copy's payload still on
 * its way, taken by stream_in. Releases msg (vg_call_release). */
static void run_call(struct sp *p, const struct vg_frame_header *h, struct vg_call_msg *msg, const uint8_t *bulk,
                     int streamed)
{
    Vgpu__Call *call = vg_call_get(msg);
    int no_reply = (h->flags & VG_FLAG_NO_REPLY) != 0;
    int kind = vg_call_kind(call->call);
    uint64_t bulk_len = h->bulk_len;
    uint8_t *ref = NULL; /* where a bulk reference points in the client's pinned memory */
    uint64_t ref_len = 0;
    uint8_t *private_bulk = NULL;
    if (h->flags & VG_FLAG_BULK_REF) {
        struct vg_bulk_ref br;
        vg_bulk_ref_get(bulk, &br);
        ref = vg_regions_ptr(p->regions, br.region, br.offset, br.length);
        ref_len = br.length;
        if (!ref || !ref_len)
            sp_fail(p, VG_SESS_EXIT_PROTOCOL, -EINVAL, CUDA_SUCCESS,
                    "a bulk reference outside the client's pinned memory");
        if (is_htod(call->call)) {
            /* The payload is used in place: it is the client's to change, and nothing here
             * reads it but the device copy. */
            bulk = ref;
            bulk_len = ref_len;
        } else if (is_dtoh(call->call)) {
            bulk = NULL; /* the reference says where the bytes go */
            bulk_len = 0;
        } else {
            /* Any other call checks its bulk and then uses it (module images, parameter
             * buffers): it gets a private copy the client cannot change in between. */
            if (ref_len > p->cfg->max_frame)
                sp_fail(p, VG_SESS_EXIT_PROTOCOL, -EMSGSIZE, CUDA_SUCCESS, "a bulk reference over --max-frame");
            private_bulk = malloc((size_t)ref_len + VG_BULK_PAD);
            if (!private_bulk)
                sp_fail(p, VG_SESS_EXIT_NOMEM, -ENOMEM, CUDA_SUCCESS, "no memory for a %llu-byte bulk",
                        (unsigned long long)ref_len);
            memcpy(private_bulk, ref, (size_t)ref_len);
            memset(private_bulk + ref_len, 0, VG_BULK_PAD);
            bulk = private_bulk;
            bulk_len = ref_len;
            ref = NULL;
        }
    }
    struct vg_result res;
    vg_result_init(&res);

    /* The device scheduler: device work goes in bursts, each started with the device's permit;
     * a burst ends where the session waits (a synchronizing call, its client) or the context
     * its events belong to may go. */
    __atomic_store_n(&p->busy_since_ns, vg_now_ns(), __ATOMIC_RELEASE);
    if (destroys_contexts(call->call))
        sess_sched_drain(p->sched);
    else if (kind == VG_SYNCING || call->call == VG_CALL_cuStreamDestroy_v2)
        sess_sched_close(p->sched);
    struct work w = {.known = 0};
    if (p->sched && vg_sess_work_target(p->sess, call, &w.ctx, &w.stream, &w.dev) == 0) {
        w.known = 1;
        sess_sched_work(p->sched, w.ctx, w.stream, w.dev, vg_sess_work_is_kernel(call->call));
    }
    if (vg_sess_work_is_kernel(call->call))
        p->may_print = 1;
    vg_sess_execute(p->sess, call, bulk, bulk_len, no_reply, &res);
    if (streamed)
        stream_in(p, &res, h->bulk_len, no_reply, &w);
    else if (res.copy.dir == VG_COPY_HTOD)
        vg_sess_copy_done(p->sess, &res, vg_copy_part(p->hostbufs, &res.copy, 0, (void *)bulk, res.copy.len),
                          no_reply);
    if (res.copy.dir == VG_COPY_DTOH && ref) {
        /* Read back straight into the client's pinned memory: the Reply carries no bytes. */
        if (res.copy.len != ref_len)
            vg_sess_copy_done(p->sess, &res, CUDA_ERROR_INVALID_VALUE, no_reply);
        else if (res.result == CUDA_SUCCESS)
            vg_sess_copy_done(p->sess, &res, vg_copy_part(p->hostbufs, &res.copy, 0, ref, ref_len), no_reply);
        res.copy.dir = VG_COPY_NONE;
    }
    __atomic_store_n(&p->busy_since_ns, 0, __ATOMIC_RELEASE);
    __atomic_fetch_add(&p->slot->calls, 1, __ATOMIC_RELAXED);
    __atomic_fetch_add(&p->slot->bytes_to_device, bulk_len, __ATOMIC_RELAXED);

    if (!no_reply) {
        flush_output(p);
        Vgpu__Reply r = VGPU__REPLY__INIT;
        r.result = res.result;
        r.n_outs = res.n_outs;
        r.outs = res.outs;
        r.str = res.str;
        int rc;
        uint64_t back = 0;
        if (res.copy.dir == VG_COPY_DTOH && res.result == CUDA_SUCCESS) {
            rc = reply_with_copy(p, h->request_id, &r, &res);
            back = res.copy.len;
        } else {
            rc = send_frame(p, VG_MSG_REPLY, h->request_id, &r.base, res.bulk, res.bulk_len);
            back = res.bulk_len;
        }
        __atomic_fetch_add(&p->slot->bytes_from_device, back, __ATOMIC_RELAXED);
        if (rc < 0) {
            vg_call_release(msg);
            vg_result_clear(&res);
            free(private_bulk);
            /* No Error frame: the reply may have stopped halfway, and the socket is stuck. */
            if (rc == -ETIMEDOUT) {
                vg_warn("session %llu (%s): client stopped reading replies; ending the session",
                        (unsigned long long)p->st->session_id, p->st->peer);
                sp_exit(p, VG_SESS_EXIT_TIMEOUT);
            }
            if (rc == -EPROTO) {
                vg_warn("session %llu (%s): the client corrupted the shared rings; ending the session",
                        (unsigned long long)p->st->session_id, p->st->peer);
                sp_exit(p, VG_SESS_EXIT_PROTOCOL);
            }
            vg_info("session %llu (%s): connection lost while replying (%s)",
                    (unsigned long long)p->st->session_id, p->st->peer, strerror(-rc));
            sp_exit(p, VG_SESS_EXIT_DISCONNECTED);
        }
    }
    vg_result_clear(&res);
    free(private_bulk);
    vg_call_release(msg);
}

/* A Region frame (shared memory only): the client's pinned memory comes or goes. */
static void handle_region(struct sp *p, const struct vg_frame_header *h)
{
    if (!p->regions)
        sp_fail(p, VG_SESS_EXIT_PROTOCOL, -EPROTO, CUDA_SUCCESS, "a Region frame outside a shared-memory session");
    if (h->bulk_len || h->pb_len > STAGE_CAP)
        sp_fail(p, VG_SESS_EXIT_PROTOCOL, -EPROTO, CUDA_SUCCESS, "a malformed Region frame");
    p->pos += VG_FRAME_HEADER_SIZE;
    stage_fill(p, h->pb_len, 1);
    Vgpu__Region *m = (Vgpu__Region *)vg_msg_unpack(VG_MSG_REGION, p->stage + p->pos, h->pb_len);
    if (!m)
        sp_fail(p, VG_SESS_EXIT_PROTOCOL, -EBADMSG, CUDA_SUCCESS, "Region message does not decode");
    p->pos += h->pb_len;
    Vgpu__Reply r = VGPU__REPLY__INIT;
    uint64_t id = 0;
    if (m->op == VGPU__REGION__OP__MAP) {
        uint8_t tag = 0;
        int timeout = p->cfg->read_timeout_ms ? (int)p->cfg->read_timeout_ms : -1;
        int fd = vg_xport_recv_fd(p->x->fd, &tag, timeout);
        if (fd < 0 || tag != VG_SHM_TAG_REGION) {
            if (fd >= 0)
                close(fd);
            protobuf_c_message_free_unpacked(&m->base, NULL);
            sp_fail(p, VG_SESS_EXIT_PROTOCOL, -EPROTO, CUDA_SUCCESS,
                    "no pinned region's descriptor on the socket for a Region frame");
        }
        void *base = NULL;
        const char *why = NULL;
        /* Pinned memory is memory the server holds for its clients: it counts against the
         * server-wide cap (--max-buffered) like partial frames, since mapping (and registering)
         * it makes this process touch every page of it. */
        int rc = -ENOSPC;
        if (m->size && vg_board_buffer_acquire(p->st->board, p->st->slot, m->size)) {
            rc = vg_regions_map(p->regions, fd, m->size, &id, &base, &why);
            if (rc < 0)
                vg_board_buffer_release(p->st->board, p->st->slot, m->size);
        } else {
            close(fd);
            why = "over --max-buffered";
        }
        if (rc < 0) {
            vg_info("session %llu (%s): pinned region of %llu bytes refused: %s",
                    (unsigned long long)p->st->session_id, p->st->peer, (unsigned long long)m->size, why);
            r.result = rc == -ENOSPC || rc == -ENOMEM ? CUDA_ERROR_OUT_OF_MEMORY : CUDA_ERROR_INVALID_VALUE;
        } else {
            /* Registered now or never: from the moment the client has it, the client writes it. */
            if (vg_sess_use_ctx(p->sess, m->ctx) == CUDA_SUCCESS)
                (void)vg_hostbufs_add(p->hostbufs, base, (size_t)m->size, VG_HOSTBUF_NOW);
            r.n_outs = 1;
            r.outs = &id;
        }
    } else if (m->op == VGPU__REGION__OP__UNMAP) {
        uint64_t size = 0;
        void *base = vg_regions_get(p->regions, m->id, &size);
        if (base) {
            (void)vg_sess_use_ctx(p->sess, m->ctx);
            vg_hostbufs_remove(p->hostbufs, base);
            vg_regions_unmap(p->regions, m->id);
            vg_board_buffer_release(p->st->board, p->st->slot, size);
        } else {
            r.result = CUDA_ERROR_INVALID_VALUE;
        }
    } else {
        protobuf_c_message_free_unpacked(&m->base, NULL);
        sp_fail(p, VG_SESS_EXIT_PROTOCOL, -EPROTO, CUDA_SUCCESS, "unknown Region operation");
    }
    protobuf_c_message_free_unpacked(&m->base, NULL);
    if (!(h->flags & VG_FLAG_NO_REPLY) && send_frame(p, VG_MSG_REPLY, h->request_id, &r.base, NULL, 0) < 0)
        sp_exit(p, VG_SESS_EXIT_DISCONNECTED);
}

/* Decodes a Call into *m (vg_call_unpack: no allocation for the stub's usual calls); returns m
 * for run_call, which releases it. */
static struct vg_call_msg *unpack_call(struct sp *p, struct vg_call_msg *m, const uint8_t *pb, uint32_t pb_len)
{
    if (!vg_call_unpack(m, pb, pb_len))
        sp_fail(p, VG_SESS_EXIT_PROTOCOL, -EBADMSG, CUDA_SUCCESS, "Call message does not decode");
    return m;
}

/* Takes frames for ever (the session ends inside, by sp_exit). */
static void serve(struct sp *p) __attribute__((noreturn));
static void serve(struct sp *p)
{
    struct vg_call_msg msg;
    for (;;) {
        stage_fill(p, VG_FRAME_HEADER_SIZE, 0);
        struct vg_frame_header h;
        const char *why = NULL;
        int rc = vg_frame_decode_header(p->stage + p->pos, p->cfg->max_frame, &h, &why);
        if (rc == -EPROTONOSUPPORT)
            sp_fail(p, VG_SESS_EXIT_PROTOCOL, rc, CUDA_SUCCESS,
                    "protocol version mismatch: client speaks %u, server speaks %u", h.version,
                    VG_PROTOCOL_VERSION);
        if (rc < 0)
            sp_fail(p, VG_SESS_EXIT_PROTOCOL, rc, CUDA_SUCCESS, "bad frame: %s", why);
        if (h.type == VG_MSG_REGION) {
            handle_region(p, &h);
            continue;
        }
        if (h.type != VG_MSG_CALL)
            sp_fail(p, VG_SESS_EXIT_PROTOCOL, -EPROTO, CUDA_SUCCESS,
                    "unexpected message type %u after the handshake", h.type);
        if ((h.flags & VG_FLAG_BULK_REF) && (!p->regions || h.bulk_len != VG_BULK_REF_SIZE))
            sp_fail(p, VG_SESS_EXIT_PROTOCOL, -EPROTO, CUDA_SUCCESS,
                    "a bulk reference outside a shared-memory session, or of the wrong size");
        p->pos += VG_FRAME_HEADER_SIZE;
        uint64_t body_len = (uint64_t)h.pb_len + h.bulk_len;
        if (body_len <= STAGE_CAP) {
            stage_fill(p, (size_t)body_len, 1);
            /* The body stays in the staging buffer: the VG_BULK_PAD bytes after it are zeroed
             * for the call and given back to whatever frame follows. */
            uint8_t *body = p->stage + p->pos;
            uint8_t saved[VG_BULK_PAD];
            memcpy(saved, body + body_len, VG_BULK_PAD);
            memset(body + body_len, 0, VG_BULK_PAD);
            p->pos += (size_t)body_len;
            run_call(p, &h, unpack_call(p, &msg, body, h.pb_len), body + h.pb_len, 0);
            memcpy(body + body_len, saved, VG_BULK_PAD);
        } else if (h.pb_len <= STAGE_CAP) {
            /* The message first: a host-to-device copy's payload is then taken as it arrives;
             * any other bulk (module images, large parameter buffers) is read whole. */
            stage_fill(p, h.pb_len, 1);
            struct vg_call_msg *m = unpack_call(p, &msg, p->stage + p->pos, h.pb_len);
            p->pos += h.pb_len;
            if (is_htod(vg_call_get(m)->call))
                run_call(p, &h, m, NULL, 1);
            else
                run_call(p, &h, m, read_large_body(p, h.bulk_len), 0);
        } else {
            uint8_t *body = read_large_body(p, body_len);
            run_call(p, &h, unpack_call(p, &msg, body, h.pb_len), body + h.pb_len, 0);
        }
    }
}

/* ---- start-up ------------------------------------------------------------------------- */

/* Closes every descriptor from `first` up: what the main process had open (listeners, other
 * clients' sockets, its event loop) is not the session's. */
static void close_fds_from(int first)
{
    if (close_range((unsigned)first, ~0u, 0) == 0)
        return;
    long max = sysconf(_SC_OPEN_MAX);
    for (long fd = first; fd < (max > 0 ? max : 65536); fd++)
        close((int)fd);
}

/* After the fork: keep only the client's socket (as fd 3) and stderr (the server's log); fd 1
 * becomes a memory file that collects what device code prints, sent to the client with the
 * next reply. */
static int setup_process(struct sp *p, const struct vg_sess_start *st)
{
    static const int sigs[] = {SIGTERM, SIGINT, SIGHUP, SIGCHLD, SIGQUIT, SIGUSR1, SIGUSR2};
    for (size_t i = 0; i < sizeof sigs / sizeof sigs[0]; i++)
        signal(sigs[i], SIG_DFL);
    signal(SIGPIPE, SIG_IGN);
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    sess_watch_block_signals();
    /* A main process that dies takes its sessions with it. */
    pid_t parent = getppid();
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent)
        _exit(VG_SESS_EXIT_SETUP);
    char name[16];
    snprintf(name, sizeof name, "vgpu-sess-%llu", (unsigned long long)st->session_id);
    prctl(PR_SET_NAME, name);

    int fd = st->fd;
    if (fd != 3) {
        if (dup2(fd, 3) < 0)
            return -1;
        fd = 3;
    }
    close_fds_from(4);
    int out = memfd_create("vgpu-session-stdout", MFD_CLOEXEC);
    if (out < 0 || dup2(out, 1) < 0)
        return -1;
    close(out);
    int devnull = open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (devnull >= 0) {
        dup2(devnull, 0);
        close(devnull);
    }
    if (st->ssl) {
        /* The main process did the TLS handshake; the connection moved to fd 3. */
        SSL *ssl = st->ssl;
        if (!SSL_set_fd(ssl, fd))
            return -1;
        p->x = vg_xport_tls(fd, ssl);
        return p->x ? 0 : -1;
    }
    int domain = 0;
    socklen_t dl = sizeof domain;
    getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &domain, &dl);
    p->x = vg_xport_sock(fd, domain == AF_UNIX ? VG_XPORT_UNIX : VG_XPORT_TCP);
    return p->x ? 0 : -1;
}

/* Sends the Welcome; for a client that asked for shared memory (over a Unix socket), creates the
 * region, announces it, passes its memfd and moves the session onto its rings. Before the
 * watchdog starts: nothing else uses the transport while it is replaced. */
static void welcome(struct sp *p)
{
    const struct vg_sess_start *st = p->st;
    Vgpu__Welcome w = VGPU__WELCOME__INIT;
    w.protocol_version = VG_PROTOCOL_VERSION;
    w.driver = p->drv.desc;
    w.max_frame = p->cfg->max_frame;
    w.api_hash = VG_API_HASH;
    w.session_id = st->session_id;
    struct vg_xport *shm = NULL;
    int memfd = -1;
    if (st->want_shm && p->x->kind == VG_XPORT_UNIX) {
        const char *why = NULL;
        shm = vg_srv_shm_offer(p->x->fd, SHM_REQ_RING, SHM_REP_RING, &memfd, &w.shm_size, &why);
        if (!shm)
            vg_warn("session %llu: no shared memory for the client (%s); frames stay on the socket",
                    (unsigned long long)st->session_id, why);
    }
    if (send_frame(p, VG_MSG_WELCOME, 0, &w.base, NULL, 0) < 0)
        sp_exit(p, VG_SESS_EXIT_DISCONNECTED);
    if (!shm)
        return;
    int rc = vg_xport_send_fd(p->x->fd, memfd, VG_SHM_TAG_RINGS);
    close(memfd);
    if (rc < 0)
        sp_exit(p, VG_SESS_EXIT_DISCONNECTED);
    p->x->ops->close(p->x);
    p->x = shm;
    p->regions = vg_regions_new();
    if (!p->regions)
        sp_fail(p, VG_SESS_EXIT_NOMEM, -ENOMEM, CUDA_SUCCESS, "out of memory for a session");
    /* The rings' data areas, registered at their first copy: the request ring read-only (the
     * client writes it all the time), the reply ring writable (only the server writes it). */
    uint8_t *base = vg_xport_shm_base(shm, NULL);
    (void)vg_hostbufs_add(p->hostbufs, base + VG_SHM_HDR_SIZE, SHM_REQ_RING, VG_HOSTBUF_READ_ONLY);
    (void)vg_hostbufs_add(p->hostbufs, base + VG_SHM_HDR_SIZE + SHM_REQ_RING, SHM_REP_RING, 0);
}

void vg_sess_proc_main(const struct vg_sess_start *st)
{
    static struct sp sp; /* the process's one session, reachable from the watchdog hooks */
    struct sp *p = &sp;
    p->st = st;
    p->cfg = st->cfg;
    p->slot = &st->board->slots[st->slot];
    pthread_mutex_init(&p->wlock, NULL);
    if (setup_process(p, st) < 0) {
        vg_error("session %llu: cannot set up its process: %s", (unsigned long long)st->session_id,
                 strerror(errno));
        _exit(VG_SESS_EXIT_SETUP);
    }
    p->stage = malloc(STAGE_CAP + VG_BULK_PAD);
    if (!p->stage)
        sp_fail(p, VG_SESS_EXIT_NOMEM, -ENOMEM, CUDA_SUCCESS, "out of memory starting a session");
    if (restrict_devices(st) != 0)
        sp_fail(p, VG_SESS_EXIT_SETUP, -EINVAL, CUDA_ERROR_NO_DEVICE, "cannot restrict the session to its devices");
    if (vg_drv_reopen(&p->drv, st->driver_path, st->driver_kind) != 0)
        sp_fail(p, VG_SESS_EXIT_SETUP, -ENODEV, CUDA_ERROR_NO_DEVICE,
                "the session process could not open the driver %s", st->driver_path);
    /* Room for the header and a Reply message: the stub splits copies the same way. */
    p->sess = vg_sess_new(&p->drv, st->session_id, st->peer, p->cfg->max_frame - VG_FRAME_HEADER_SIZE - 4096);
    if (!p->sess)
        sp_fail(p, VG_SESS_EXIT_NOMEM, -ENOMEM, CUDA_SUCCESS, "out of memory for a session");
    struct vg_sess_acct acct = {.arg = p, .charge = acct_charge, .refund = acct_refund, .view = acct_view};
    vg_sess_set_acct(p->sess, &acct);
    p->hostbufs = vg_hostbufs_new(&p->drv);
    if (!p->hostbufs)
        sp_fail(p, VG_SESS_EXIT_NOMEM, -ENOMEM, CUDA_SUCCESS, "out of memory for a session");
    welcome(p);
    /* Heartbeats well within the client's patience (a third of it), at most every 5 s. */
    unsigned hb = st->client_timeout_ms ? st->client_timeout_ms / 3 : 5000;
    if (hb > 5000)
        hb = 5000;
    if (hb < 50)
        hb = 50;
    struct sess_watch_hooks hooks = {.arg = p,
                                     .peer_gone = hook_peer_gone,
                                     .idle_check = hook_idle_check,
                                     .heartbeat = hook_heartbeat,
                                     .kernel_timeout = hook_kernel_timeout,
                                     .last_write_ns = hook_last_write,
                                     .running_since = hook_running_since,
                                     .stop = hook_stop};
    if (p->cfg->scheduler)
        p->sched = sess_sched_start(&p->drv, st->board, st->slot, st->tenant, st->devices, st->ndevices);
    if (p->cfg->kernel_timeout_ms && !p->sched)
        vg_warn("session %llu: without the scheduler's events kernels are not timed", (unsigned long long)st->session_id);
    if (sess_watch_start(&p->busy_since_ns, hb, p->cfg->kernel_timeout_ms, &hooks) != 0)
        sp_fail(p, VG_SESS_EXIT_NOMEM, -ENOMEM, CUDA_SUCCESS, "cannot start the session's watchdog");
    vg_info("session %llu: client %s connected over %s (session process %d)", (unsigned long long)st->session_id,
            st->peer, p->x->kind == VG_XPORT_SHM ? "shared memory" : p->x->kind == VG_XPORT_UNIX ? "a Unix socket" : "TCP",
            (int)getpid());
    serve(p);
}

const char *vg_sess_exit_name(int status)
{
    switch (status) {
    case VG_SESS_EXIT_DISCONNECTED: return "client disconnected";
    case VG_SESS_EXIT_SETUP: return "could not start (driver or memory)";
    case VG_SESS_EXIT_PROTOCOL: return "protocol error";
    case VG_SESS_EXIT_TIMEOUT: return "client stalled";
    case VG_SESS_EXIT_KERNEL_TIMEOUT: return "kernel timeout";
    case VG_SESS_EXIT_NOMEM: return "out of memory";
    case VG_SESS_EXIT_STOPPED: return "stopped by a signal";
    case VG_SESS_EXIT_COPY_FAILED: return "a device-to-host copy failed mid-reply";
    default: return "unexpected exit status";
    }
}
