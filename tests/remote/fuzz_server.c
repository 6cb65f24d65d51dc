/* Hostile-client fuzzing of gpu-server.
 *
 * Several connections at once complete a valid handshake, create a few real objects, then send
 * frames built from valid calls with random mutations: random call ids and argument values (huge
 * sizes included), handles taken from any session (their own, others', stale or invented), bit
 * flips in the header and the protobuf body, wrong lengths, truncated bulk and disconnects in
 * the middle of a frame. Between batches the test checks that gpu-server is still running and
 * that a well-behaved client still gets correct answers (alloc, copy both ways, free); at the
 * end, once every fuzzing connection is closed, cuMemGetInfo shows as much free memory as before
 * the fuzzing started (every session's memory was returned).
 *
 * Deterministic: VGPU_FUZZ_SEED (default 1) seeds every connection's generator; the seed is
 * printed. VGPU_FUZZ_FRAMES (default 16000) is the total number of frames, VGPU_FUZZ_CONNS
 * (default 4) the number of concurrent connections. Thread scheduling still decides how the
 * connections interleave, so a seed reproduces each connection's frames, not their timing. */
#include <criterion/criterion.h>
#include <cuda.h>
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "calls.h"
#include "harness.h"

#define FZ_MAX_CONNS 16
#define FZ_BATCHES 8
#define FZ_POOL 256 /* handles seen in any session's replies */

/* Handles returned to any fuzzing session, shared so that one session uses another's. */
static pthread_mutex_t fz_pool_lock = PTHREAD_MUTEX_INITIALIZER;
static uint64_t fz_pool[FZ_POOL];
static unsigned fz_pool_n;

static uint8_t *fz_ptx;      /* a valid PTX image (NUL-terminated), for module loads */
static size_t fz_ptx_len;

struct fz_worker {
    pthread_t thread;
    uint64_t rng;
    unsigned frames;         /* to send in this batch */
    unsigned sent;           /* frames written completely or partly */
    unsigned connections;    /* connections opened */
    unsigned failures;       /* setup steps that did not go as a valid client expects */
    char why[200];           /* the first failure's reason */
    unsigned replies;        /* calls whose Reply the worker waited for and got */
    unsigned wrong_answers;  /* Replies that did not echo the call's request id */
};

static uint64_t fz_next(uint64_t *s)
{
    /* splitmix64: small, good enough, and reproducible from the seed */
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static unsigned fz_below(uint64_t *s, unsigned n)
{
    return (unsigned)(fz_next(s) % n);
}

static void fz_pool_add(uint64_t h)
{
    if (!h)
        return;
    pthread_mutex_lock(&fz_pool_lock);
    fz_pool[fz_pool_n++ % FZ_POOL] = h;
    pthread_mutex_unlock(&fz_pool_lock);
}

static uint64_t fz_pool_pick(uint64_t *s)
{
    pthread_mutex_lock(&fz_pool_lock);
    unsigned n = fz_pool_n < FZ_POOL ? fz_pool_n : FZ_POOL;
    uint64_t h = n ? fz_pool[fz_below(s, n)] : 0;
    pthread_mutex_unlock(&fz_pool_lock);
    return h;
}

/* Worker-side socket helpers: they report failures instead of asserting (Criterion asserts
 * belong to the test's own thread). */
static int fz_connect(void)
{
    int fd = th_connect_raw();
    if (fd < 0)
        return -1;
    /* A server that stops reading or answering fails the connection, not the whole test. */
    struct timeval tv = {.tv_sec = 30};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    return fd;
}

/* Hello and Welcome; -1 with the reason in why (the server's Error message, when it sent one). */
static int fz_hello(int fd, char *why, size_t whylen)
{
    Vgpu__Hello h = VGPU__HELLO__INIT;
    h.protocol_version = VG_PROTOCOL_VERSION;
    h.api_hash = VG_API_HASH;
    h.host = "fuzz";
    h.pid = (uint32_t)getpid();
    h.program = "fuzz_server";
    h.token = "";
    snprintf(why, whylen, "the Hello could not be sent");
    if (vg_frame_send(fd, VG_MSG_HELLO, 0, 1, &h.base, NULL, 0) != 0)
        return -1;
    struct vg_frame_header hd;
    ProtobufCMessage *m = NULL;
    snprintf(why, whylen, "no answer to the Hello");
    if (vg_frame_recv(fd, VG_FRAME_DEFAULT_MAX, &hd, &m, NULL) != 0)
        return -1;
    int ok = hd.type == VG_MSG_WELCOME;
    if (hd.type == VG_MSG_ERROR)
        snprintf(why, whylen, "refused: %s", m ? ((Vgpu__Error *)m)->message : "(no message)");
    else if (!ok)
        snprintf(why, whylen, "a message of type %u instead of Welcome", (unsigned)hd.type);
    protobuf_c_message_free_unpacked(m, NULL);
    return ok ? 0 : -1;
}

/* One valid call and its reply; the reply's outs go to the shared pool. Returns the CUresult, or
 * -1 when the connection failed. */
static int fz_call(int fd, unsigned call, uint64_t ctx, const uint64_t *args, size_t nargs,
                   const void *bulk, uint64_t bulk_len, uint64_t *out0)
{
    Vgpu__Call c = VGPU__CALL__INIT;
    c.call = call;
    c.ctx = ctx;
    c.args = (uint64_t *)args;
    c.n_args = nargs;
    c.name = "";
    if (vg_frame_send(fd, VG_MSG_CALL, 0, 7, &c.base, bulk, bulk_len) != 0)
        return -1;
    struct vg_frame_header h;
    ProtobufCMessage *m = NULL;
    if (vg_frame_recv(fd, VG_FRAME_DEFAULT_MAX, &h, &m, NULL) != 0 || h.type != VG_MSG_REPLY) {
        protobuf_c_message_free_unpacked(m, NULL);
        return -1;
    }
    if (h.bulk_len && vg_io_discard(fd, h.bulk_len) != 0) {
        protobuf_c_message_free_unpacked(m, NULL);
        return -1;
    }
    Vgpu__Reply *r = (Vgpu__Reply *)m;
    int result = r->result;
    for (size_t i = 0; i < r->n_outs; i++)
        fz_pool_add(r->outs[i]);
    if (out0)
        *out0 = r->n_outs ? r->outs[0] : 0;
    protobuf_c_message_free_unpacked(m, NULL);
    return result;
}

/* Session objects a fuzzing connection made with valid calls, as material for its frames. */
struct fz_session {
    uint64_t ctx, mem, stream, event, module, func;
};

/* The valid calls that give a fuzzing connection its objects. -1 with the failing call and its
 * result (-1: the connection failed) in why. */
static int fz_setup(int fd, struct fz_session *s, char *why, size_t whylen)
{
    memset(s, 0, sizeof *s);
    struct {
        const char *name;
        unsigned call;
        int on_ctx;
        uint64_t arg;
        uint64_t *out;
    } steps[] = {
        {"cuInit", VG_CALL_cuInit, 0, 0, NULL},
        {"cuDevicePrimaryCtxRetain", VG_CALL_cuDevicePrimaryCtxRetain, 0, 0, &s->ctx},
        {"cuMemAlloc", VG_CALL_cuMemAlloc_v2, 1, 1 << 16, &s->mem},
        {"cuStreamCreate", VG_CALL_cuStreamCreate, 1, 0, &s->stream},
        {"cuEventCreate", VG_CALL_cuEventCreate, 1, 0, &s->event},
    };
    for (size_t i = 0; i < sizeof steps / sizeof steps[0]; i++) {
        int rc = fz_call(fd, steps[i].call, steps[i].on_ctx ? s->ctx : 0, (uint64_t[]){steps[i].arg}, 1, NULL, 0,
                         steps[i].out);
        if (rc != 0) {
            snprintf(why, whylen, "%s gave %d", steps[i].name, rc);
            return -1;
        }
    }
    if (fz_ptx) {
        int rc = fz_call(fd, VG_CALL_cuModuleLoadData, s->ctx, NULL, 0, fz_ptx, fz_ptx_len, &s->module);
        if (rc != 0) {
            snprintf(why, whylen, "cuModuleLoadData gave %d", rc);
            return -1;
        }
    }
    return 0;
}

/* A 64-bit value a hostile client might send where a size, count or handle goes. */
static uint64_t fz_value(uint64_t *rng, const struct fz_session *s)
{
    static const uint64_t edges[] = {0, 1, 2, 3, 4, 7, 8, 31, 32, 33, 255, 256, 4096, 65535, 65536,
                                     1u << 20, (1u << 20) + 1, 0x7fffffff, 0x80000000, 0xffffffff,
                                     1ull << 32, (1ull << 32) + 1, 1ull << 40, 1ull << 62,
                                     INT64_MAX, (uint64_t)INT64_MAX + 1, UINT64_MAX - 1, UINT64_MAX};
    switch (fz_below(rng, 8)) {
    case 0:
    case 1:
        return edges[fz_below(rng, sizeof edges / sizeof edges[0])];
    case 2:
        return fz_pool_pick(rng);
    case 3: {
        const uint64_t own[] = {s->ctx, s->mem, s->mem + fz_below(rng, 1 << 17), s->stream,
                                s->event, s->module, s->func};
        return own[fz_below(rng, sizeof own / sizeof own[0])];
    }
    case 4:
        return fz_pool_pick(rng) + (uint64_t)(int64_t)(int)(fz_below(rng, 2049) - 1024);
    case 5:
        return fz_below(rng, 64);
    default:
        return fz_next(rng);
    }
}

/* Sends one hostile frame on fd. Returns 0 while the connection should go on, 2 when it is a
 * well-framed call that asked for a reply, 1 when this frame ended the connection on purpose (a
 * disconnect), -1 when writing failed (the server closed it). */
static int fz_send_one(int fd, uint64_t *rng, const struct fz_session *s, uint64_t request_id)
{
    Vgpu__Call c = VGPU__CALL__INIT;
    uint64_t args[16];
    char name[24];
    /* Mostly calls the server knows, sometimes ids beyond the list. */
    c.call = fz_below(rng, 16) ? fz_below(rng, VG_CALL_COUNT) : (unsigned)fz_next(rng);
    c.ctx = fz_below(rng, 8) ? s->ctx : fz_value(rng, s);
    c.n_args = fz_below(rng, 4) ? fz_below(rng, 11) : fz_below(rng, 17);
    for (size_t i = 0; i < c.n_args; i++)
        args[i] = fz_value(rng, s);
    c.args = args;
    static const char *const names[] = {"axpy", "mad_u32", "bump_global", "counter", "", "nope"};
    if (fz_below(rng, 4)) {
        c.name = (char *)names[fz_below(rng, sizeof names / sizeof names[0])];
    } else {
        for (size_t i = 0; i + 1 < sizeof name; i++)
            name[i] = (char)(1 + fz_below(rng, 255));
        name[fz_below(rng, sizeof name)] = 0;
        name[sizeof name - 1] = 0;
        c.name = name;
    }
    /* Some frames are calls on this session's real objects with hostile details, so that the
     * paths behind the handle checks run too: launches of a real kernel with random parameter
     * buffers (pointers into and around the allocation), copies at and past its ends. */
    uint8_t params[32];
    int params_bulk = 0;
    switch (s->func ? fz_below(rng, 10) : 9) {
    case 0:
    case 1:
        c.call = VG_CALL_cuLaunchKernel;
        c.n_args = 9;
        args[0] = s->func;
        args[8] = fz_below(rng, 2) ? 0 : s->stream;
        for (size_t i = 0; i < sizeof params; i += 8) {
            uint64_t v = fz_below(rng, 2) ? s->mem + fz_below(rng, 1 << 17) : fz_value(rng, s);
            memcpy(params + i, &v, 8);
        }
        params_bulk = 1;
        break;
    case 2:
        if (fz_below(rng, 2)) {
            c.call = VG_CALL_cuMemcpyDtoH_v2; /* src, size, stream */
            c.n_args = 3;
            args[0] = s->mem + fz_below(rng, 1 << 17);
            args[1] = fz_below(rng, 1 << 17);
            args[2] = fz_below(rng, 2) ? 0 : s->stream;
        } else {
            c.call = VG_CALL_cuMemcpyDtoDAsync_v2; /* dst, src, size, stream */
            c.n_args = 4;
            args[0] = s->mem + fz_below(rng, 1 << 17);
            args[1] = s->mem + fz_below(rng, 1 << 17);
            args[2] = fz_below(rng, 1 << 17);
            args[3] = fz_below(rng, 2) ? 0 : s->stream;
        }
        break;
    default:
        break;
    }
    /* Launches of a real function get small grids: a hostile grid of 2^31 blocks is a valid
     * request that would just keep the emulated GPU busy for hours. */
    if (c.call == VG_CALL_cuLaunchKernel && c.n_args >= 9 && args[0] == s->func) {
        for (int i = 1; i <= 6; i++)
            args[i] = 1 + fz_below(rng, 4);
        args[7] = fz_below(rng, 2) ? 0 : fz_value(rng, s);
    }

    /* Bulk: nothing, random bytes, or (for module loads) a real or damaged PTX image. */
    uint8_t bulk_buf[4096];
    const uint8_t *bulk = NULL;
    uint64_t bulk_len = 0;
    uint8_t *ptx_copy = NULL;
    unsigned b = fz_below(rng, 4);
    if (params_bulk) {
        bulk = params;
        bulk_len = fz_below(rng, sizeof params + 1);
    } else if ((c.call == VG_CALL_cuModuleLoadData || c.call == VG_CALL_cuLibraryLoadData) && fz_ptx &&
        fz_below(rng, 2)) {
        ptx_copy = malloc(fz_ptx_len);
        if (!ptx_copy)
            return -1;
        memcpy(ptx_copy, fz_ptx, fz_ptx_len);
        unsigned flips = fz_below(rng, 8);
        for (unsigned i = 0; i < flips; i++)
            ptx_copy[fz_below(rng, (unsigned)fz_ptx_len)] ^= (uint8_t)(1u << fz_below(rng, 8));
        bulk = ptx_copy;
        bulk_len = fz_below(rng, 4) ? fz_ptx_len : fz_below(rng, (unsigned)fz_ptx_len + 1);
    } else if (b == 1 || b == 2) {
        bulk_len = b == 1 ? fz_below(rng, 64) : fz_below(rng, sizeof bulk_buf + 1);
        for (uint64_t i = 0; i < bulk_len; i++)
            bulk_buf[i] = (uint8_t)fz_next(rng);
        bulk = bulk_buf;
    }

    uint32_t flags = fz_below(rng, 4) == 0 ? VG_FLAG_NO_REPLY : 0;
    uint8_t *frame = NULL;
    size_t frame_len = 0;
    if (vg_frame_build(VG_MSG_CALL, flags, request_id, &c.base, bulk_len, &frame, &frame_len) != 0) {
        free(ptx_copy);
        return -1;
    }
    uint8_t *pb = frame + VG_FRAME_HEADER_SIZE;
    size_t pb_len = frame_len - VG_FRAME_HEADER_SIZE;

    /* Mutations. Most frames keep a valid framing so that the connection lives on and the server
     * has to run the call; the rest break the framing in one of many ways. */
    int ret = 0;
    uint64_t send_bulk = bulk_len; /* how much bulk actually goes out */
    size_t send_frame = frame_len;  /* how much of header + protobuf goes out */
    unsigned kind = fz_below(rng, 100);
    if (kind < 78) {
        /* valid framing, hostile content (above) */
        if (!flags)
            ret = 2;
    } else if (kind < 88) {
        /* bit flips in the protobuf body, lengths kept */
        unsigned flips = 1 + fz_below(rng, 4);
        for (unsigned i = 0; pb_len && i < flips; i++)
            pb[fz_below(rng, (unsigned)pb_len)] ^= (uint8_t)(1u << fz_below(rng, 8));
    } else if (kind < 92) {
        /* bit flips in the header: magic, version, type, flags, lengths, request id */
        unsigned flips = 1 + fz_below(rng, 3);
        for (unsigned i = 0; i < flips; i++)
            frame[fz_below(rng, VG_FRAME_HEADER_SIZE)] ^= (uint8_t)(1u << fz_below(rng, 8));
        ret = 1; /* the stream is likely out of step from here on */
    } else if (kind < 94) {
        /* a bulk length that disagrees with what follows, possibly huge */
        struct vg_frame_header h = {.magic = VG_FRAME_MAGIC, .version = VG_PROTOCOL_VERSION,
                                    .type = VG_MSG_CALL, .flags = flags, .pb_len = (uint32_t)pb_len,
                                    .request_id = request_id, .bulk_len = fz_value(rng, s)};
        vg_frame_encode_header(&h, frame);
        ret = 1;
    } else if (kind < 96) {
        /* a protobuf length that disagrees with the body */
        uint32_t l = (uint32_t)fz_value(rng, s);
        memcpy(frame + 12, &l, sizeof l); /* little-endian hosts only, as the wire */
        ret = 1;
    } else if (kind < 98) {
        /* truncated bulk, then the connection ends */
        send_bulk = bulk_len ? fz_next(rng) % bulk_len : 0;
        ret = 1;
    } else {
        /* the connection ends in the middle of the header or the protobuf */
        send_frame = fz_below(rng, (unsigned)frame_len);
        send_bulk = 0;
        ret = 1;
    }

    int rc = vg_io_write_all(fd, frame, send_frame);
    if (rc == 0 && send_frame == frame_len && send_bulk)
        rc = vg_io_write_all(fd, bulk, (size_t)send_bulk);
    free(frame);
    free(ptx_copy);
    if (rc != 0)
        return -1;
    return ret;
}

static void *fz_worker_main(void *arg)
{
    struct fz_worker *w = arg;
    uint64_t request_id = 1000;
    while (w->sent < w->frames) {
        int fd = fz_connect();
        if (fd < 0) {
            if (!w->failures)
                snprintf(w->why, sizeof w->why, "cannot connect: %s", strerror(errno));
            w->failures++;
            break;
        }
        w->connections++;
        struct fz_session s;
        char why[sizeof w->why];
        if (fz_hello(fd, why, sizeof why) != 0 || fz_setup(fd, &s, why, sizeof why) != 0) {
            if (!w->failures)
                snprintf(w->why, sizeof w->why, "%s", why);
            w->failures++;
            close(fd);
            continue;
        }
        if (s.module) {
            uint64_t f = 0;
            /* by name: fz_call sends no name, so ask through a raw frame */
            Vgpu__Call gf = VGPU__CALL__INIT;
            gf.call = VG_CALL_cuModuleGetFunction;
            gf.ctx = s.ctx;
            gf.args = (uint64_t[]){s.module};
            gf.n_args = 1;
            gf.name = "axpy";
            struct vg_frame_header h;
            ProtobufCMessage *m = NULL;
            if (vg_frame_send(fd, VG_MSG_CALL, 0, 8, &gf.base, NULL, 0) == 0 &&
                vg_frame_recv(fd, VG_FRAME_DEFAULT_MAX, &h, &m, NULL) == 0 && h.type == VG_MSG_REPLY) {
                Vgpu__Reply *r = (Vgpu__Reply *)m;
                if (r->result == 0 && r->n_outs)
                    f = r->outs[0];
            }
            protobuf_c_message_free_unpacked(m, NULL);
            s.func = f;
            fz_pool_add(f);
        }
        /* A connection lives for a random number of frames unless a mutation ends it first. */
        unsigned life = 1 + fz_below(&w->rng, 400);
        uint64_t last_awaited = request_id;
        for (unsigned i = 0; i < life && w->sent < w->frames; i++) {
            int r = fz_send_one(fd, &w->rng, &s, ++request_id);
            w->sent++;
            if (r == 2) {
                /* Wait for this call's answer: a Reply echoing its id, perhaps after Replies to
                 * earlier frames that asked for none to be awaited (ids between the last awaited
                 * one and this), or an Error and the end of the connection. A Reply to any other
                 * id is a server bug. */
                int done = 0;
                while (!done) {
                    struct vg_frame_header h;
                    ProtobufCMessage *m = NULL;
                    int rc = vg_frame_recv(fd, VG_FRAME_DEFAULT_MAX, &h, &m, NULL);
                    protobuf_c_message_free_unpacked(m, NULL);
                    if (rc == 0 && h.type == VG_MSG_REPLY && h.bulk_len)
                        rc = vg_io_discard(fd, h.bulk_len);
                    if (rc != 0 || h.type != VG_MSG_REPLY)
                        break;
                    if (h.request_id == request_id) {
                        w->replies++;
                        done = 1;
                    } else if (h.request_id <= last_awaited || h.request_id > request_id) {
                        w->wrong_answers++;
                        break;
                    }
                }
                if (!done)
                    break;
                last_awaited = request_id;
                continue;
            }
            if (r == 1 || r < 0)
                break;
        }
        if (fz_below(&w->rng, 2)) {
            /* an abortive close (RST) instead of a FIN */
            struct linger lg = {.l_onoff = 1, .l_linger = 0};
            setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
        }
        close(fd);
    }
    return NULL;
}

static unsigned env_unsigned(const char *name, unsigned dflt)
{
    const char *v = getenv(name);
    if (!v || !*v)
        return dflt;
    char *end;
    unsigned long x = strtoul(v, &end, 0);
    return *end ? dflt : (unsigned)x;
}

static void load_ptx(void)
{
    FILE *f = fopen(VG_KERNEL_DIR "/remote_kernels.ptx", "rb");
    cr_assert_not_null(f, "remote_kernels.ptx not built");
    struct stat st;
    cr_assert_eq(fstat(fileno(f), &st), 0);
    fz_ptx_len = (size_t)st.st_size + 1;
    fz_ptx = calloc(1, fz_ptx_len);
    cr_assert_not_null(fz_ptx);
    cr_assert_eq(fread(fz_ptx, 1, fz_ptx_len - 1, f), fz_ptx_len - 1);
    fclose(f);
}

/* A well-behaved client: fresh session, primary context, free memory now. */
static uint64_t mem_free_now(int fd, uint64_t ctx)
{
    Vgpu__Reply *r = th_call(fd, VG_CALL_cuMemGetInfo_v2, ctx, NULL, 0, NULL, NULL, 0, NULL, 0);
    cr_assert_eq(r->result, 0);
    cr_assert_eq(r->n_outs, 2);
    uint64_t free_bytes = r->outs[0];
    th_reply_free(r);
    return free_bytes;
}

static uint64_t good_client_ctx(int fd)
{
    Vgpu__Reply *r = th_call(fd, VG_CALL_cuInit, 0, (uint64_t[]){0}, 1, NULL, NULL, 0, NULL, 0);
    cr_assert_eq(r->result, 0);
    th_reply_free(r);
    r = th_call(fd, VG_CALL_cuDevicePrimaryCtxRetain, 0, (uint64_t[]){0}, 1, NULL, NULL, 0, NULL, 0);
    cr_assert_eq(r->result, 0);
    uint64_t ctx = r->outs[0];
    th_reply_free(r);
    return ctx;
}

/* Alloc, copy a random pattern in and out, compare, free. */
static void good_client_round_trip(uint64_t *rng)
{
    int fd = th_connect_hello();
    uint64_t ctx = good_client_ctx(fd);
    enum { N = 100000 };
    static uint8_t in[N], out[N];
    for (size_t i = 0; i < N; i++)
        in[i] = (uint8_t)fz_next(rng);
    Vgpu__Reply *r = th_call(fd, VG_CALL_cuMemAlloc_v2, ctx, (uint64_t[]){N}, 1, NULL, NULL, 0, NULL, 0);
    cr_assert_eq(r->result, 0, "cuMemAlloc after fuzzing: %d", r->result);
    uint64_t ptr = r->outs[0];
    th_reply_free(r);
    r = th_call(fd, VG_CALL_cuMemcpyHtoD_v2, ctx, (uint64_t[]){ptr, 0}, 2, NULL, in, N, NULL, 0);
    cr_assert_eq(r->result, 0);
    th_reply_free(r);
    memset(out, 0, sizeof out);
    r = th_call(fd, VG_CALL_cuMemcpyDtoH_v2, ctx, (uint64_t[]){ptr, N, 0}, 3, NULL, NULL, 0, out, N);
    cr_assert_eq(r->result, 0);
    th_reply_free(r);
    cr_assert_eq(memcmp(in, out, N), 0, "device memory round trip differs after fuzzing");
    r = th_call(fd, VG_CALL_cuMemFree_v2, ctx, (uint64_t[]){ptr}, 1, NULL, NULL, 0, NULL, 0);
    cr_assert_eq(r->result, 0);
    th_reply_free(r);
    close(fd);
}

TestSuite(fuzz, .init = th_start_server, .fini = th_stop_server, .timeout = 1500);

Test(fuzz, hostile_clients)
{
    unsigned seed = env_unsigned("VGPU_FUZZ_SEED", 1);
    unsigned total = env_unsigned("VGPU_FUZZ_FRAMES", 16000);
    unsigned conns = env_unsigned("VGPU_FUZZ_CONNS", 4);
    if (conns < 1)
        conns = 1;
    if (conns > FZ_MAX_CONNS)
        conns = FZ_MAX_CONNS;
    printf("fuzz_server: seed %u (VGPU_FUZZ_SEED), %u frames (VGPU_FUZZ_FRAMES), "
           "%u concurrent connections (VGPU_FUZZ_CONNS)\n", seed, total, conns);
    fflush(stdout);
    load_ptx();
    uint64_t check_rng = seed;

    /* What a fresh session sees as free before anyone fuzzes. */
    int base_fd = th_connect_hello();
    uint64_t free_before = mem_free_now(base_fd, good_client_ctx(base_fd));
    close(base_fd);

    struct fz_worker w[FZ_MAX_CONNS];
    memset(w, 0, sizeof w);
    for (unsigned i = 0; i < conns; i++)
        w[i].rng = ((uint64_t)seed << 20) ^ (0x1234567ull * (i + 1));
    unsigned per_batch = total / FZ_BATCHES / conns + 1;
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (int batch = 0; batch < FZ_BATCHES; batch++) {
        for (unsigned i = 0; i < conns; i++) {
            w[i].frames += per_batch;
            cr_assert_eq(pthread_create(&w[i].thread, NULL, fz_worker_main, &w[i]), 0);
        }
        for (unsigned i = 0; i < conns; i++)
            pthread_join(w[i].thread, NULL);
        int st;
        cr_assert_eq(waitpid(th_srv.pid, &st, WNOHANG), 0, "gpu-server died in fuzz batch %d", batch);
        good_client_round_trip(&check_rng);
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);

    unsigned sent = 0, opened = 0, failed = 0;
    unsigned replies = 0, wrong = 0;
    const char *why = "";
    for (unsigned i = 0; i < conns; i++) {
        if (w[i].failures && !why[0])
            why = w[i].why;
        replies += w[i].replies;
        wrong += w[i].wrong_answers;
        sent += w[i].sent;
        opened += w[i].connections;
        failed += w[i].failures;
    }
    printf("fuzz_server: %u frames on %u connections (%u at a time) in %.1f s; %u replies awaited and received; %u setups refused\n",
           sent, opened, conns, (double)(t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) / 1e9,
           replies, failed);
    cr_assert_eq(wrong, 0, "%u replies answered another request id", wrong);
    fflush(stdout);
    cr_assert_gt(replies, total / 4, "only %u calls were answered", replies);
    cr_assert_geq(sent, total / 2, "the fuzzers sent only %u frames", sent);
    /* Setup uses valid calls only: they must succeed on a live server. */
    cr_assert_eq(failed, 0, "%u fuzzing connections could not even set up (the first: %s)", failed, why);

    /* Every fuzzing connection is closed; the server tears their sessions down asynchronously,
     * so poll (a bounded number of rounds, not a timing assertion) until the memory is back. */
    int fd = th_connect_hello();
    uint64_t ctx = good_client_ctx(fd);
    uint64_t free_after = 0;
    for (int i = 0; i < 600; i++) {
        free_after = mem_free_now(fd, ctx);
        if (free_after == free_before)
            break;
        usleep(50000);
    }
    cr_assert_eq(free_after, free_before, "free memory %" PRIu64 " after fuzzing, %" PRIu64 " before",
                 free_after, free_before);
    close(fd);
    free(fz_ptx);
    fz_ptx = NULL;
}
