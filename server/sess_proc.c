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
#include <sys/stat.h>
#include <unistd.h>

#include "calls.h"
#include "driver.h"
#include "frame.h"
#include "log.h"
#include "sess_sched.h"
#include "sess_watch.h"
#include "session.h"
#include "xport.h"

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
    uint8_t *reply_spare;          /* the last large reply payload, for the next one */
    uint64_t reply_spare_cap;
    size_t output_sent;            /* bytes of fd 1 already sent to the client */
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

/* Sends one frame (locked by the caller or not: `locked` says). 0 or a negative errno. */
static int send_frame_locked(struct sp *p, unsigned type, uint64_t request_id, const ProtobufCMessage *msg,
                             const void *bulk, uint64_t bulk_len)
{
    size_t pb_len = msg ? protobuf_c_message_get_packed_size(msg) : 0;
    uint8_t local[1024];
    uint8_t *head = VG_FRAME_HEADER_SIZE + pb_len <= sizeof local ? local : malloc(VG_FRAME_HEADER_SIZE + pb_len);
    if (!head || pb_len > VG_PB_MAX) {
        if (head != local)
            free(head);
        return -ENOMEM;
    }
    size_t head_len = vg_frame_put(type, 0, request_id, msg, pb_len, bulk_len, head);
    struct iovec iov[2] = {{head, head_len}, {(void *)bulk, (size_t)bulk_len}};
    int timeout = p->cfg->read_timeout_ms ? (int)p->cfg->read_timeout_ms : -1;
    int rc = p->x->ops->send(p->x, iov, bulk_len ? 2 : 1, timeout);
    if (head != local)
        free(head);
    __atomic_store_n(&p->last_write_ns, vg_now_ns(), __ATOMIC_RELEASE);
    return rc;
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

/* Sends what device code printed since the last reply (fd 1 is a memory file, see setup). */
static void flush_output(struct sp *p)
{
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

/* Waits for the client to send more. inside: a frame has begun (the read timeout applies);
 * otherwise the session may idle for ever, and frees its spare buffers after SPARE_IDLE_MS. */
static void wait_input(struct sp *p, int inside)
{
    int timeout = inside && p->cfg->read_timeout_ms ? (int)p->cfg->read_timeout_ms : -1;
    int rc = 0;
    if (!inside) {
        sess_sched_close(p->sched);
        if (p->body || p->reply_spare) {
            rc = p->x->ops->wait(p->x, SPARE_IDLE_MS);
            if (rc == 0) {
                release_body(p);
                free(p->reply_spare);
                p->reply_spare = NULL;
                p->reply_spare_cap = 0;
            }
        }
    }
    if (rc == 0)
        rc = p->x->ops->wait(p->x, timeout);
    if (rc == 0)
        sp_fail(p, VG_SESS_EXIT_TIMEOUT, -ETIMEDOUT, CUDA_SUCCESS,
                "no data for %u ms inside a frame", p->cfg->read_timeout_ms);
    if (rc < 0) {
        vg_info("session %llu (%s): connection lost (%s)", (unsigned long long)p->st->session_id,
                p->st->peer, strerror(-rc));
        sp_exit(p, VG_SESS_EXIT_DISCONNECTED);
    }
}

/* Reads into buf[0..len); returns the bytes read (> 0). Ends the session at the end of the
 * stream or on an error. */
static size_t read_some(struct sp *p, void *buf, size_t len, int inside)
{
    for (;;) {
        ssize_t n = p->x->ops->recv(p->x, buf, len);
        if (n > 0)
            return (size_t)n;
        if (n == -EAGAIN) {
            wait_input(p, inside);
            continue;
        }
        if (n == 0) {
            if (inside)
                vg_warn("session %llu (%s): connection ended inside a frame",
                        (unsigned long long)p->st->session_id, p->st->peer);
            else
                vg_info("session %llu (%s): client disconnected", (unsigned long long)p->st->session_id,
                        p->st->peer);
        } else {
            vg_info("session %llu (%s): connection error: %s", (unsigned long long)p->st->session_id,
                    p->st->peer, strerror((int)-n));
        }
        sp_exit(p, VG_SESS_EXIT_DISCONNECTED);
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

/* ---- running calls -------------------------------------------------------------------- */

static int destroys_contexts(unsigned call)
{
    return call == VG_CALL_cuCtxDestroy_v2 || call == VG_CALL_cuDevicePrimaryCtxRelease_v2 ||
           call == VG_CALL_cuDevicePrimaryCtxReset_v2 || call == VG_CALL_cuGreenCtxDestroy;
}

static void run_call(struct sp *p, const struct vg_frame_header *h, const uint8_t *body)
{
    Vgpu__Call *call = (Vgpu__Call *)vg_msg_unpack(VG_MSG_CALL, body, h->pb_len);
    if (!call)
        sp_fail(p, VG_SESS_EXIT_PROTOCOL, -EBADMSG, CUDA_SUCCESS, "Call message does not decode");
    const uint8_t *bulk = body + h->pb_len;
    int no_reply = (h->flags & VG_FLAG_NO_REPLY) != 0;
    int kind = vg_call_kind(call->call);
    struct vg_result res;
    vg_result_init(&res);
    res.spare = p->reply_spare;
    res.spare_cap = p->reply_spare_cap;
    p->reply_spare = NULL;
    p->reply_spare_cap = 0;

    /* The device scheduler: device work goes in bursts, each started with the device's permit;
     * a burst ends where the session waits (a synchronizing call, its client) or the context
     * its events belong to may go. */
    __atomic_store_n(&p->busy_since_ns, vg_now_ns(), __ATOMIC_RELEASE);
    if (destroys_contexts(call->call))
        sess_sched_drain(p->sched);
    else if (kind == VG_SYNCING || call->call == VG_CALL_cuStreamDestroy_v2)
        sess_sched_close(p->sched);
    CUcontext wctx;
    CUstream wstream;
    int wdev;
    if (p->sched && vg_sess_work_target(p->sess, call, &wctx, &wstream, &wdev) == 0)
        sess_sched_work(p->sched, wctx, wstream, wdev, vg_sess_work_is_kernel(call->call));
    vg_sess_execute(p->sess, call, bulk, h->bulk_len, no_reply, &res);
    __atomic_store_n(&p->busy_since_ns, 0, __ATOMIC_RELEASE);
    __atomic_fetch_add(&p->slot->calls, 1, __ATOMIC_RELAXED);
    __atomic_fetch_add(&p->slot->bytes_to_device, h->bulk_len, __ATOMIC_RELAXED);

    if (!no_reply) {
        flush_output(p);
        Vgpu__Reply r = VGPU__REPLY__INIT;
        r.result = res.result;
        r.n_outs = res.n_outs;
        r.outs = res.outs;
        r.str = res.str;
        int rc = send_frame(p, VG_MSG_REPLY, h->request_id, &r.base, res.bulk, res.bulk_len);
        __atomic_fetch_add(&p->slot->bytes_from_device, res.bulk_len, __ATOMIC_RELAXED);
        if (rc < 0) {
            protobuf_c_message_free_unpacked(&call->base, NULL);
            vg_result_clear(&res);
            if (rc == -ETIMEDOUT)
                sp_fail(p, VG_SESS_EXIT_TIMEOUT, rc, CUDA_SUCCESS, "client stopped reading replies");
            vg_info("session %llu (%s): connection lost while replying (%s)",
                    (unsigned long long)p->st->session_id, p->st->peer, strerror(-rc));
            sp_exit(p, VG_SESS_EXIT_DISCONNECTED);
        }
    }
    /* Keep the largest reply payload buffer for the next large read-back. */
    uint8_t *keep = res.bulk ? res.bulk : res.spare;
    uint64_t keep_cap = res.bulk ? res.bulk_cap : res.spare_cap;
    if (keep && keep_cap > BODY_FIRST_CHUNK) {
        p->reply_spare = keep;
        p->reply_spare_cap = keep_cap;
        if (keep == res.bulk)
            res.bulk = NULL;
        else
            res.spare = NULL;
    }
    vg_result_clear(&res);
    protobuf_c_message_free_unpacked(&call->base, NULL);
}

/* Takes frames for ever (the session ends inside, by sp_exit). */
static void serve(struct sp *p) __attribute__((noreturn));
static void serve(struct sp *p)
{
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
        if (h.type != VG_MSG_CALL)
            sp_fail(p, VG_SESS_EXIT_PROTOCOL, -EPROTO, CUDA_SUCCESS,
                    "unexpected message type %u after the handshake", h.type);
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
            run_call(p, &h, body);
            memcpy(body + body_len, saved, VG_BULK_PAD);
        } else {
            run_call(p, &h, read_large_body(p, body_len));
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
    p->x = vg_xport_sock(fd);
    return p->x ? 0 : -1;
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
    /* Heartbeats well within the client's patience (a third of it), at most every 5 s. */
    unsigned hb = st->client_timeout_ms ? st->client_timeout_ms / 3 : 5000;
    if (hb > 5000)
        hb = 5000;
    if (hb < 50)
        hb = 50;
    struct sess_watch_hooks hooks = {.arg = p,
                                     .peer_gone = hook_peer_gone,
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

    Vgpu__Welcome w = VGPU__WELCOME__INIT;
    w.protocol_version = VG_PROTOCOL_VERSION;
    w.driver = p->drv.desc;
    w.max_frame = p->cfg->max_frame;
    w.api_hash = VG_API_HASH;
    w.session_id = st->session_id;
    if (send_frame(p, VG_MSG_WELCOME, 0, &w.base, NULL, 0) < 0)
        sp_exit(p, VG_SESS_EXIT_DISCONNECTED);
    vg_info("session %llu: client %s connected (session process %d)", (unsigned long long)st->session_id,
            st->peer, (int)getpid());
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
    default: return "unexpected exit status";
    }
}
