#include "net.h"

#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "calls.h"
#include "frame.h"
#include "log.h"
#include "worker.h"

/* Flow control: a client that pipelines faster than the device runs stops being read while this
 * many of its calls (or bulk bytes) wait, so queued work and memory stay bounded (1024 small
 * items, well under a megabyte, plus at most 512 MiB of bulk). The queue goes to the worker in
 * batches: a deep queue means large batches and few loop/worker wake-ups per call (64 gave
 * ~0.23M empty launches/s remote, 1024 ~0.77M/s). */
#define CONN_PENDING_HIGH 1024
#define CONN_PENDING_LOW 256
#define CONN_PENDING_BYTES_HIGH ((uint64_t)512 << 20)

/* The body buffer starts at 1 MiB at most and doubles as bytes arrive, so that memory held for
 * a frame follows what the peer really sent, not what its header announced. */
#define BODY_FIRST_CHUNK ((uint64_t)1 << 20)

/* Bytes are read into a per-connection staging buffer, and every whole frame in it is taken from
 * there: a client that pipelines many small calls sends them back to back, and one read then
 * serves dozens of frames instead of two reads per frame. A frame whose body does not fit in
 * what was read continues to be read straight into its own body buffer. */
#define STAGE_CAP ((size_t)64 << 10)

struct server;

struct conn {
    uv_tcp_t tcp;              /* first member: handle pointers convert to conn */
    struct server *srv;
    struct conn *prev, *next;
    uint64_t id;
    char peer[160];
    int ready;                 /* handshake done */
    int closing;               /* uv_close called */
    int reading;
    int failed;                /* a protocol error: read nothing more, close after the Error */
    /* staging buffer: bytes [stage_pos, stage_len) are read but not yet taken */
    uint8_t *stage;
    size_t stage_pos, stage_len;
    int parsing;               /* take_staged is on the stack */
    /* frame being read */
    struct vg_frame_header h;
    uint8_t *body;             /* grows to pb_len + bulk_len + VG_BULK_PAD bytes as data arrives */
    uint64_t body_len, body_got, body_cap;
    /* The body buffer of the last large frame, kept for the next one: fresh multi-megabyte
     * buffers cost a page fault per page, which dominated large copies. Loop thread only. */
    uint8_t *spare;
    uint64_t spare_cap;
    /* Likewise the payload buffer of the last large reply, handed to the next batch of calls. */
    uint8_t *reply_spare;
    uint64_t reply_spare_cap;
    int in_body;
    /* calls */
    struct vg_sess *sess;
    struct vg_work *pending_head, *pending_tail;
    int pending;
    uint64_t pending_bytes;    /* bulk bytes of the queued calls */
    int inflight;              /* items of this session handed to a worker, not yet done */
    int cleaned;               /* the cleanup item has been submitted (or could not be) */
    int handle_closed;         /* libuv's close callback has run */
};

struct server {
    uv_loop_t loop;
    uv_tcp_t listener;
    uv_signal_t sigint, sigterm;
    struct vg_workers *workers;
    struct vg_drv *drv;
    uint64_t max_frame;
    uint64_t next_id;
    struct conn *conns;
    int live;                  /* connections not yet freed */
    int stopping;
};

struct write_req {
    uv_write_t req;
    uint8_t *head;
    uint8_t *bulk_owned;
    uint64_t bulk_cap;         /* > 0: recycle bulk_owned as the connection's reply spare */
    struct conn *owner;
    struct conn *close_after;
};

/* Keeps buf (cap bytes) as c's reply spare when it is large and larger than the current one. */
static void keep_reply_spare(struct conn *c, uint8_t *buf, uint64_t cap)
{
    if (buf && !c->closing && cap > BODY_FIRST_CHUNK && cap > c->reply_spare_cap) {
        free(c->reply_spare);
        c->reply_spare = buf;
        c->reply_spare_cap = cap;
    } else {
        free(buf);
    }
}

static void conn_close(struct conn *c);
static void pump(struct conn *c);

/* ---- writing ------------------------------------------------------------------------------ */

static void on_written(uv_write_t *req, int status)
{
    struct write_req *w = (struct write_req *)req;
    (void)status; /* a failed write shows up as a read error or EOF too */
    free(w->head);
    if (w->bulk_cap)
        keep_reply_spare(w->owner, w->bulk_owned, w->bulk_cap); /* the conn outlives its writes */
    else
        free(w->bulk_owned);
    if (w->close_after)
        conn_close(w->close_after);
    free(w);
}

/* Gives back a written reply payload: recycled as c's reply spare or freed. */
static void release_bulk(struct conn *c, uint8_t *bulk_owned, uint64_t bulk_cap)
{
    if (bulk_cap)
        keep_reply_spare(c, bulk_owned, bulk_cap);
    else
        free(bulk_owned);
}

/* Sends one frame. bulk_owned (may be NULL) is freed once written; bulk may point into it.
 * The frame is first written at once (uv_try_write: nothing queued before it, so order holds),
 * which for a small reply spares the allocations of a write request and the poll for
 * writability; what the socket does not take at once is queued with uv_write. */
static int send_frame(struct conn *c, unsigned type, uint32_t flags, uint64_t request_id,
                      const ProtobufCMessage *msg, const uint8_t *bulk, uint64_t bulk_len,
                      uint8_t *bulk_owned, uint64_t bulk_cap, int close_after)
{
    if (c->closing) {
        free(bulk_owned);
        return -1;
    }
    size_t pb_len = msg ? protobuf_c_message_get_packed_size(msg) : 0;
    uint8_t local[512];
    uint8_t *head = NULL;
    struct write_req *w = NULL;
    if (pb_len > VG_PB_MAX)
        goto fail;
    head = VG_FRAME_HEADER_SIZE + pb_len <= sizeof local ? local : malloc(VG_FRAME_HEADER_SIZE + pb_len);
    if (!head)
        goto fail;
    size_t head_len = vg_frame_put(type, flags, request_id, msg, pb_len, bulk_len, head);
    uv_buf_t bufs[2] = {uv_buf_init((char *)head, (unsigned)head_len),
                        uv_buf_init((char *)bulk, (unsigned)bulk_len)};
    int n = uv_try_write((uv_stream_t *)&c->tcp, bufs, bulk_len ? 2 : 1);
    if (n < 0 && n != UV_EAGAIN)
        goto fail; /* the peer is gone; the read side sees it too */
    uint64_t done = n > 0 ? (uint64_t)n : 0;
    if (done == head_len + bulk_len) {
        if (head != local)
            free(head);
        release_bulk(c, bulk_owned, bulk_cap);
        if (close_after)
            conn_close(c);
        return 0;
    }
    w = calloc(1, sizeof *w);
    if (!w)
        goto fail;
    int nbufs = 0;
    if (done < head_len) {
        /* The rest of the header must outlive this function. */
        w->head = malloc(head_len - done);
        if (!w->head)
            goto fail;
        memcpy(w->head, head + done, head_len - done);
        bufs[nbufs++] = uv_buf_init((char *)w->head, (unsigned)(head_len - done));
        done = 0;
    } else {
        done -= head_len;
    }
    if (bulk_len > done)
        bufs[nbufs++] = uv_buf_init((char *)bulk + done, (unsigned)(bulk_len - done));
    if (head != local)
        free(head);
    head = NULL;
    w->bulk_owned = bulk_owned;
    w->bulk_cap = bulk_cap;
    w->owner = c;
    w->close_after = close_after ? c : NULL;
    if (uv_write(&w->req, (uv_stream_t *)&c->tcp, bufs, (unsigned)nbufs, on_written) != 0)
        goto fail; /* frees w, its header copy and bulk_owned */
    return 0;
fail:
    if (head != local)
        free(head);
    if (w)
        free(w->head);
    free(w);
    free(bulk_owned);
    conn_close(c);
    return -1;
}

/* Logs why the connection is dropped, tells the peer, and closes once that is written. */
static void conn_fail(struct conn *c, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void conn_fail(struct conn *c, int code, const char *fmt, ...)
{
    char msg[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    vg_warn("client %s: %s; closing the connection", c->peer, msg);
    if (c->closing || c->failed)
        return;
    c->failed = 1;
    uv_read_stop((uv_stream_t *)&c->tcp);
    c->reading = 0;
    Vgpu__Error e = VGPU__ERROR__INIT;
    e.code = code;
    e.message = msg;
    send_frame(c, VG_MSG_ERROR, 0, 0, &e.base, NULL, 0, NULL, 0, 1);
}

/* ---- lifetime ----------------------------------------------------------------------------- */

static void free_work(struct vg_work *it)
{
    struct conn *c = it->owner;
    if (it->call)
        protobuf_c_message_free_unpacked(&it->call->base, NULL);
    if (it->frame && c && !c->closing && it->frame_cap > BODY_FIRST_CHUNK && it->frame_cap > c->spare_cap) {
        free(c->spare);
        c->spare = it->frame;
        c->spare_cap = it->frame_cap;
    } else {
        free(it->frame);
    }
    if (c) {
        keep_reply_spare(c, it->res.spare, it->res.spare_cap);
        it->res.spare = NULL;
    }
    vg_result_clear(&it->res);
    free(it);
}

static void maybe_finish_stop(struct server *srv)
{
    if (!srv->stopping || srv->live > 0)
        return;
    uv_close((uv_handle_t *)&srv->sigint, NULL);
    uv_close((uv_handle_t *)&srv->sigterm, NULL);
    vg_workers_stop(srv->workers);
}

static void conn_free(struct conn *c)
{
    struct server *srv = c->srv;
    if (c->prev)
        c->prev->next = c->next;
    else
        srv->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    vg_sess_free(c->sess);
    free(c->body);
    free(c->stage);
    free(c->spare);
    free(c->reply_spare);
    free(c);
    srv->live--;
    maybe_finish_stop(srv);
}

/* After the connection is closing: drop queued calls and, once nothing of the session runs,
 * destroy everything it owned on a worker. The connection is freed once both that cleanup and
 * libuv's close of the handle are done, whichever comes last. */
static void settle_closed(struct conn *c)
{
    if (c->inflight)
        return; /* on_done calls back here */
    while (c->pending_head) {
        struct vg_work *it = c->pending_head;
        c->pending_head = it->next;
        free_work(it);
    }
    c->pending_tail = NULL;
    c->pending = 0;
    c->pending_bytes = 0;
    if (c->sess && !c->cleaned) {
        struct vg_work *it = calloc(1, sizeof *it);
        c->cleaned = 1;
        if (it) {
            it->kind = VG_WORK_CLEANUP;
            it->owner = c;
            it->sess = c->sess;
            it->next = NULL;
            c->inflight = 1;
            vg_workers_submit(c->srv->workers, vg_sess_device(c->sess), it);
            return;
        }
        /* Cannot hand the cleanup to a worker: leak the session's driver objects rather than
         * touch the driver from the loop thread. */
        vg_error("client %s: out of memory; its GPU objects are not released", c->peer);
    }
    if (c->handle_closed)
        conn_free(c);
}

static void on_closed(uv_handle_t *h)
{
    struct conn *c = (struct conn *)h;
    c->handle_closed = 1;
    settle_closed(c);
}

static void conn_close(struct conn *c)
{
    if (c->closing)
        return;
    c->closing = 1;
    uv_close((uv_handle_t *)&c->tcp, on_closed);
}

/* ---- calls -------------------------------------------------------------------------------- */

static void on_done(struct vg_work *it)
{
    struct conn *c = it->owner;
    c->inflight--;
    if (it->kind == VG_WORK_CLEANUP) {
        free(it);
        settle_closed(c);
        return;
    }
    if (!c->closing && !(it->flags & VG_FLAG_NO_REPLY)) {
        Vgpu__Reply r = VGPU__REPLY__INIT;
        r.result = it->res.result;
        r.n_outs = it->res.n_outs;
        r.outs = it->res.outs;
        r.str = it->res.str;
        uint8_t *bulk = it->res.bulk;
        it->res.bulk = NULL; /* the write owns it now */
        send_frame(c, VG_MSG_REPLY, 0, it->request_id, &r.base, bulk, it->res.bulk_len, bulk,
                   it->res.bulk_cap, 0);
    }
    free_work(it);
    if (c->closing) {
        if (!c->inflight)
            settle_closed(c);
        return;
    }
    pump(c);
}

static void start_reading(struct conn *c);
static void take_staged(struct conn *c);

/* Hands the session's queued calls to a worker once the previous batch is done. A batch goes to
 * one worker, which runs it in order, so the session's calls stay ordered and never run on two
 * threads at once; batching spares pipelined calls a loop round trip each. */
static void pump(struct conn *c)
{
    if (c->inflight || c->closing || !c->pending_head)
        goto flow;
    struct vg_work *batch = c->pending_head;
    batch->res.spare = c->reply_spare;
    batch->res.spare_cap = c->reply_spare_cap;
    c->reply_spare = NULL;
    c->reply_spare_cap = 0;
    c->inflight = c->pending;
    c->pending_head = c->pending_tail = NULL;
    c->pending = 0;
    c->pending_bytes = 0;
    vg_workers_submit(c->srv->workers, vg_sess_device(c->sess), batch);
flow:
    if (!c->closing && !c->failed && !c->reading && c->pending <= CONN_PENDING_LOW &&
        c->pending_bytes < CONN_PENDING_BYTES_HIGH / 2 && !c->srv->stopping) {
        start_reading(c);
        take_staged(c); /* frames that were read before reading stopped */
    }
}

static void handle_hello(struct conn *c, Vgpu__Hello *hello)
{
    if (hello->protocol_version != VG_PROTOCOL_VERSION) {
        conn_fail(c, -EPROTONOSUPPORT,
                  "protocol version mismatch: client speaks %u, server speaks %u",
                  hello->protocol_version, VG_PROTOCOL_VERSION);
        return;
    }
    if (hello->api_hash != VG_API_HASH) {
        conn_fail(c, -EPROTONOSUPPORT,
                  "call list mismatch: client %016llx, server %016llx (built from different protocol/cuda.calls)",
                  (unsigned long long)hello->api_hash, (unsigned long long)VG_API_HASH);
        return;
    }
    char who[200];
    snprintf(who, sizeof who, "%.60s (%.40s pid %u on %.40s)", c->peer,
             hello->program ? hello->program : "?", hello->pid, hello->host ? hello->host : "?");
    snprintf(c->peer, sizeof c->peer, "%.159s", who);
    /* Room for the header and a Reply message: the stub splits copies the same way. */
    c->sess = vg_sess_new(c->srv->drv, c->id, c->peer, c->srv->max_frame - VG_FRAME_HEADER_SIZE - 4096);
    if (!c->sess) {
        conn_fail(c, -ENOMEM, "out of memory for a session");
        return;
    }
    c->ready = 1;
    vg_info("session %llu: client %s connected", (unsigned long long)c->id, c->peer);
    Vgpu__Welcome w = VGPU__WELCOME__INIT;
    w.protocol_version = VG_PROTOCOL_VERSION;
    w.driver = c->srv->drv->desc;
    w.max_frame = c->srv->max_frame;
    w.session_id = c->id;
    w.api_hash = VG_API_HASH;
    send_frame(c, VG_MSG_WELCOME, 0, c->h.request_id, &w.base, NULL, 0, NULL, 0, 0);
}

/* A whole frame is in c->h / c->body: decode its message and act on it. */
static void handle_frame(struct conn *c)
{
    uint8_t *body = c->body;
    c->body = NULL;
    c->in_body = 0;
    ProtobufCMessage *msg = vg_msg_unpack(c->h.type, body, c->h.pb_len);
    if (!msg) {
        free(body);
        conn_fail(c, -EBADMSG, "%s message does not decode", c->h.type == VG_MSG_CALL ? "Call" : "a");
        return;
    }
    if (!c->ready) {
        if (c->h.type != VG_MSG_HELLO)
            conn_fail(c, -EPROTO, "first message is type %u, not Hello", c->h.type);
        else
            handle_hello(c, (Vgpu__Hello *)msg);
        protobuf_c_message_free_unpacked(msg, NULL);
        free(body);
        return;
    }
    if (c->h.type != VG_MSG_CALL) {
        conn_fail(c, -EPROTO, "unexpected message type %u after the handshake", c->h.type);
        protobuf_c_message_free_unpacked(msg, NULL);
        free(body);
        return;
    }
    struct vg_work *it = calloc(1, sizeof *it);
    if (!it) {
        protobuf_c_message_free_unpacked(msg, NULL);
        free(body);
        conn_fail(c, -ENOMEM, "out of memory");
        return;
    }
    it->kind = VG_WORK_CALL;
    it->owner = c;
    it->sess = c->sess;
    it->call = (Vgpu__Call *)msg;
    /* The bulk stays where it was read, after the message. */
    it->frame = body;
    it->frame_cap = c->body_cap;
    it->bulk = body + c->h.pb_len;
    it->bulk_len = c->h.bulk_len;
    it->request_id = c->h.request_id;
    it->flags = c->h.flags;
    vg_result_init(&it->res);
    if (c->pending_tail)
        c->pending_tail->next = it;
    else
        c->pending_head = it;
    c->pending_tail = it;
    c->pending++;
    c->pending_bytes += it->bulk_len;
    if ((c->pending >= CONN_PENDING_HIGH || c->pending_bytes >= CONN_PENDING_BYTES_HIGH) && c->reading) {
        uv_read_stop((uv_stream_t *)&c->tcp);
        c->reading = 0;
    }
    pump(c);
}

/* ---- reading ------------------------------------------------------------------------------ */


static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    struct conn *c = (struct conn *)h;
    (void)suggested;
    if (!c->in_body) {
        /* Between frames: read into the staging buffer, after what it holds (moved to the front:
         * at most a partial header is left there when this is called). */
        if (!c->stage) {
            c->stage = malloc(STAGE_CAP);
            if (!c->stage) {
                *buf = uv_buf_init(NULL, 0); /* on_read gets UV_ENOBUFS */
                return;
            }
        }
        if (c->stage_pos) {
            memmove(c->stage, c->stage + c->stage_pos, c->stage_len - c->stage_pos);
            c->stage_len -= c->stage_pos;
            c->stage_pos = 0;
        }
        *buf = uv_buf_init((char *)c->stage + c->stage_len, (unsigned)(STAGE_CAP - c->stage_len));
        return;
    }
    /* Inside a large frame: read straight into its body, never past it. */
    if (c->body_got == c->body_cap) {
        uint64_t cap = c->body_cap * 2;
        if (cap > c->body_len)
            cap = c->body_len;
        uint8_t *grown = realloc(c->body, cap + VG_BULK_PAD);
        if (!grown) {
            *buf = uv_buf_init(NULL, 0);
            return;
        }
        c->body = grown;
        c->body_cap = cap;
    }
    uint64_t room = c->body_cap - c->body_got;
    *buf = uv_buf_init((char *)c->body + c->body_got, (unsigned)(room > (1u << 30) ? (1u << 30) : room));
}

/* The body of c->h is complete in c->body: pad it and act on it. */
static void body_done(struct conn *c)
{
    memset(c->body + c->body_len, 0, VG_BULK_PAD);
    handle_frame(c);
}

/* Starts the frame whose header is at the front of the staged bytes; takes as much of its body
 * as is staged. Returns 0, or -1 after failing the connection. */
static int begin_frame(struct conn *c)
{
    const char *why = NULL;
    int rc = vg_frame_decode_header(c->stage + c->stage_pos, c->srv->max_frame, &c->h, &why);
    if (rc == -EPROTONOSUPPORT) {
        conn_fail(c, rc, "protocol version mismatch: client speaks %u, server speaks %u",
                  c->h.version, VG_PROTOCOL_VERSION);
        return -1;
    }
    if (rc < 0) {
        conn_fail(c, rc, "bad frame: %s", why);
        return -1;
    }
    c->stage_pos += VG_FRAME_HEADER_SIZE;
    c->body_len = c->h.pb_len + c->h.bulk_len;
    if (c->body_len > BODY_FIRST_CHUNK && c->spare) {
        c->body = c->spare;
        c->body_cap = c->spare_cap;
        c->spare = NULL;
        c->spare_cap = 0;
    } else {
        c->body_cap = c->body_len < BODY_FIRST_CHUNK ? c->body_len : BODY_FIRST_CHUNK;
        c->body = malloc(c->body_cap + VG_BULK_PAD);
    }
    if (!c->body) {
        conn_fail(c, -ENOMEM, "no memory for a %llu-byte frame", (unsigned long long)c->body_len);
        return -1;
    }
    /* What is staged of the body (never more than STAGE_CAP <= BODY_FIRST_CHUNK <= body_cap). */
    size_t have = c->stage_len - c->stage_pos;
    size_t take = c->body_len < have ? (size_t)c->body_len : have;
    memcpy(c->body, c->stage + c->stage_pos, take);
    c->stage_pos += take;
    c->body_got = take;
    c->in_body = 1;
    return 0;
}

/* Acts on every whole frame staged, while the connection is read (flow control may stop it in
 * the middle: pump() calls back here when reading resumes). */
static void take_staged(struct conn *c)
{
    if (c->parsing)
        return; /* handle_frame -> pump -> here: the outer loop goes on */
    c->parsing = 1;
    while (c->reading && !c->closing && !c->failed && !c->in_body &&
           c->stage_len - c->stage_pos >= VG_FRAME_HEADER_SIZE) {
        if (begin_frame(c) < 0)
            break;
        if (c->body_got == c->body_len)
            body_done(c);
    }
    if (c->stage_pos == c->stage_len)
        c->stage_pos = c->stage_len = 0;
    c->parsing = 0;
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    struct conn *c = (struct conn *)s;
    (void)buf;
    if (nread == UV_ENOBUFS) {
        conn_fail(c, -ENOMEM, "no memory for a %llu-byte frame", (unsigned long long)c->body_len);
        return;
    }
    if (nread < 0) {
        if (c->in_body || c->stage_len > c->stage_pos)
            vg_warn("client %s: connection ended inside a frame (%s)", c->peer, uv_strerror((int)nread));
        else if (nread != UV_EOF)
            vg_info("client %s: connection error: %s", c->peer, uv_strerror((int)nread));
        else
            vg_info("client %s disconnected", c->peer);
        conn_close(c);
        return;
    }
    if (nread == 0)
        return;
    if (c->in_body) {
        c->body_got += (uint64_t)nread;
        if (c->body_got == c->body_len)
            body_done(c);
        return;
    }
    c->stage_len += (size_t)nread;
    take_staged(c);
}

static void start_reading(struct conn *c)
{
    if (uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read) == 0)
        c->reading = 1;
}

static void on_connection(uv_stream_t *listener, int status)
{
    struct server *srv = listener->data;
    if (status < 0) {
        vg_warn("accept failed: %s", uv_strerror(status));
        return;
    }
    struct conn *c = calloc(1, sizeof *c);
    if (!c) {
        vg_error("out of memory accepting a client");
        return;
    }
    c->srv = srv;
    uv_tcp_init(&srv->loop, &c->tcp);
    srv->live++;
    c->next = srv->conns;
    if (srv->conns)
        srv->conns->prev = c;
    srv->conns = c;
    if (uv_accept(listener, (uv_stream_t *)&c->tcp) != 0) {
        conn_close(c);
        return;
    }
    c->id = ++srv->next_id;
    uv_tcp_nodelay(&c->tcp, 1);
    struct sockaddr_storage ss;
    int len = sizeof ss;
    char ip[64] = "?";
    int port = 0;
    if (uv_tcp_getpeername(&c->tcp, (struct sockaddr *)&ss, &len) == 0) {
        if (ss.ss_family == AF_INET) {
            uv_ip4_name((struct sockaddr_in *)&ss, ip, sizeof ip);
            port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
        } else if (ss.ss_family == AF_INET6) {
            uv_ip6_name((struct sockaddr_in6 *)&ss, ip, sizeof ip);
            port = ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
        }
    }
    snprintf(c->peer, sizeof c->peer, "%s:%d", ip, port);
    start_reading(c);
}

/* ---- start and stop ----------------------------------------------------------------------- */

static void on_signal(uv_signal_t *sig, int signum)
{
    struct server *srv = sig->data;
    if (srv->stopping)
        return;
    vg_info("signal %d: stopping", signum);
    srv->stopping = 1;
    uv_close((uv_handle_t *)&srv->listener, NULL);
    for (struct conn *c = srv->conns; c; c = c->next)
        conn_close(c);
    maybe_finish_stop(srv);
}

static int write_port_file(const char *path, int port)
{
    char tmp[4096];
    snprintf(tmp, sizeof tmp, "%s.tmp%d", path, (int)getpid());
    FILE *f = fopen(tmp, "w");
    if (!f)
        return -1;
    int ok = fprintf(f, "%d\n", port) > 0;
    ok = (fclose(f) == 0) && ok;
    /* rename: a reader never sees a half-written file */
    if (!ok || rename(tmp, path) != 0) {
        unlink(tmp);
        return -1;
    }
    return 0;
}

int vg_net_run(const struct vg_net_config *cfg, struct vg_drv *drv)
{
    struct server *srv = calloc(1, sizeof *srv);
    int status = 1;
    if (!srv)
        return 1;
    srv->drv = drv;
    srv->max_frame = cfg->max_frame;
    if (uv_loop_init(&srv->loop) != 0)
        goto fail_srv;
    srv->workers = vg_workers_start(&srv->loop, drv->device_count, on_done);
    if (!srv->workers)
        goto fail_loop;

    struct sockaddr_storage addr;
    int rc = uv_ip4_addr(cfg->listen_host, cfg->listen_port, (struct sockaddr_in *)&addr);
    if (rc != 0)
        rc = uv_ip6_addr(cfg->listen_host, cfg->listen_port, (struct sockaddr_in6 *)&addr);
    if (rc != 0) {
        vg_error("--listen: '%s' is not an IP address", cfg->listen_host);
        goto fail_workers;
    }
    uv_tcp_init(&srv->loop, &srv->listener);
    srv->listener.data = srv;
    rc = uv_tcp_bind(&srv->listener, (struct sockaddr *)&addr, 0);
    if (rc == 0)
        rc = uv_listen((uv_stream_t *)&srv->listener, 128, on_connection);
    if (rc != 0) {
        vg_error("cannot listen on %s:%d: %s", cfg->listen_host, cfg->listen_port, uv_strerror(rc));
        uv_close((uv_handle_t *)&srv->listener, NULL);
        goto fail_workers;
    }
    struct sockaddr_storage bound;
    int blen = sizeof bound;
    uv_tcp_getsockname(&srv->listener, (struct sockaddr *)&bound, &blen);
    int port = bound.ss_family == AF_INET6 ? ntohs(((struct sockaddr_in6 *)&bound)->sin6_port)
                                           : ntohs(((struct sockaddr_in *)&bound)->sin_port);
    vg_info("listening on %s:%d (max frame %llu bytes)", cfg->listen_host, port,
            (unsigned long long)cfg->max_frame);
    if (cfg->port_file && write_port_file(cfg->port_file, port) != 0) {
        vg_error("cannot write the port file %s: %s", cfg->port_file, strerror(errno));
        uv_close((uv_handle_t *)&srv->listener, NULL);
        goto fail_workers;
    }
    uv_signal_init(&srv->loop, &srv->sigint);
    uv_signal_init(&srv->loop, &srv->sigterm);
    srv->sigint.data = srv->sigterm.data = srv;
    uv_signal_start(&srv->sigint, on_signal, SIGINT);
    uv_signal_start(&srv->sigterm, on_signal, SIGTERM);

    uv_run(&srv->loop, UV_RUN_DEFAULT);
    vg_info("stopped");
    status = 0;
    goto done;
fail_workers:
    vg_workers_stop(srv->workers);
done:
    uv_run(&srv->loop, UV_RUN_DEFAULT); /* let closing handles finish */
    vg_workers_free(srv->workers);
fail_loop:
    uv_loop_close(&srv->loop);
fail_srv:
    free(srv);
    return status;
}
