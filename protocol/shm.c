/* The shared-memory transport's rings (see shm.h). */
#include "shm.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/futex.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

/* A sleeping side looks at the socket this often (a peer that died wakes nobody): the client
 * often, as nothing else would tell it; gpu-server's session process seldom, as its watchdog
 * watches the socket and wakes it (interrupt). */
#define CLIENT_SLICE_NS (100ull * 1000 * 1000)
#define SERVER_SLICE_NS (1000ull * 1000 * 1000)
/* A producer publishes what it wrote at least every this many bytes, so that the consumer can
 * start on a large payload while the rest is still being copied in. */
#define PUBLISH_CHUNK ((uint64_t)128 << 10)
/* send_more wakes a sleeping consumer only once this much is waiting for it: a burst of
 * pipelined calls then costs the peer one wake-up, not one per call (each a system call here
 * and a context switch there, and on a busy machine the two sides taking turns on one core). */
#define LAZY_WAKE_BYTES ((uint64_t)64 << 10)

/* One end of one ring. pos is this side's own index, kept here and only published in ctl.
 * spin_ns: how long this end spins now before it sleeps (adapted, see SPIN_FLOOR_NS). */
struct ring {
    struct vg_shm_ring_ctl *ctl;
    uint8_t *data;
    uint64_t size, mask;
    uint64_t pos;
    uint64_t spin_ns;
    /* The peer's index as this side last read and checked it (head for the consumer end, tail
     * for the producer end). The peer writes its index's cache line all the time, so each read
     * of it is a miss between cores: bytes known to be there (or room known to be free) are
     * used without reading it again. Never ahead of the real index, so never wrong. */
    uint64_t peer;
};

/* Spinning adapts between these: a wait that the spin did not end halves the next spin, a spin
 * that found what it waited for doubles it. Spinning pays when the peer runs on another core
 * and answers within microseconds; when it does not (the peer shares this core, or the machine
 * has more runnable threads than cores), a spin only keeps the core from the peer, so the spin
 * shrinks to the floor, which keeps probing whether spinning pays again. The wait never yields
 * the core by sched_yield: on a busy machine that hands it to other processes for a scheduler
 * slice (milliseconds) with no way for the peer to wake us early; a futex sleep has one. */
#define SPIN_FLOOR_NS 1000u

struct shm_x {
    struct vg_xport x;
    uint8_t *base;
    uint64_t size;
    struct ring in;            /* this side consumes it */
    struct ring out;           /* this side produces it */
    uint64_t spin_ns;
    uint64_t slice_ns;
    /* The client writes from the tail it last read (out_level_cached); gpu-server reads the
     * client's tail at every write, so that a reply finds a tail the client corrupted at once
     * (replies are not its hot path; pipelined calls are the client's). */
    int cache_room;
};

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Shared futexes (no FUTEX_PRIVATE_FLAG): the word lives in memory two processes map. */
static void futex_wait(uint32_t *word, uint32_t seen, uint64_t timeout_ns)
{
    struct timespec ts = {(time_t)(timeout_ns / 1000000000u), (long)(timeout_ns % 1000000000u)};
    syscall(SYS_futex, word, FUTEX_WAIT, seen, &ts, NULL, 0);
}

static void futex_wake(uint32_t *word)
{
    syscall(SYS_futex, word, FUTEX_WAKE, 1, NULL, NULL, 0);
}

uint64_t vg_shm_spin_ns(void)
{
    static uint64_t cached = UINT64_MAX;
    uint64_t v = __atomic_load_n(&cached, __ATOMIC_RELAXED);
    if (v != UINT64_MAX)
        return v;
    v = (uint64_t)VG_SHM_SPIN_US_DEFAULT * 1000;
    const char *e = getenv("VGPU_SHM_SPIN_US");
    if (e && *e) {
        char *end;
        unsigned long us = strtoul(e, &end, 10);
        if (!*end && us <= 100000)
            v = (uint64_t)us * 1000;
    }
    __atomic_store_n(&cached, v, __ATOMIC_RELAXED);
    return v;
}

/* ---- indices ---- */

/* Bytes readable now, or -EPROTO when the producer's head is impossible. */
static int64_t in_level(struct ring *r)
{
    uint64_t head = __atomic_load_n(&r->ctl->head, __ATOMIC_ACQUIRE);
    uint64_t n = head - r->pos;
    if (n > r->size)
        return -EPROTO;
    r->peer = head;
    return (int64_t)n;
}

/* Room to write now, or -EPROTO when the consumer's tail is impossible. */
static int64_t out_level(struct ring *r)
{
    uint64_t tail = __atomic_load_n(&r->ctl->tail, __ATOMIC_ACQUIRE);
    uint64_t used = r->pos - tail;
    if (used > r->size)
        return -EPROTO;
    r->peer = tail;
    return (int64_t)(r->size - used);
}

/* As in_level, but from the head last read while bytes are left below it. */
static int64_t in_level_cached(struct ring *r)
{
    uint64_t n = r->peer - r->pos; /* <= size: peer was a checked head, pos never passes it */
    return n ? (int64_t)n : in_level(r);
}

/* As out_level, but from the tail last read while that leaves at least want bytes of room. */
static int64_t out_level_cached(struct ring *r, uint64_t want)
{
    uint64_t room = r->size - (r->pos - r->peer); /* pos - peer <= size, as for a fresh tail */
    return room >= want ? (int64_t)room : out_level(r);
}

/* Stores a published index, then wakes the peer if it said it sleeps. The sequentially
 * consistent store and load pair with the sleeper's (flag up, then index checked): either the
 * sleeper sees the new index, or this side sees the flag. */
static void publish(uint64_t *index, uint64_t value, uint32_t *sleeping, uint32_t *seq)
{
    __atomic_store_n(index, value, __ATOMIC_SEQ_CST);
    if (__atomic_load_n(sleeping, __ATOMIC_SEQ_CST) && __atomic_exchange_n(sleeping, 0, __ATOMIC_SEQ_CST)) {
        __atomic_fetch_add(seq, 1, __ATOMIC_SEQ_CST);
        futex_wake(seq);
    }
}

static void in_publish(struct ring *r)
{
    publish(&r->ctl->tail, r->pos, &r->ctl->producer_sleeping, &r->ctl->space_seq);
}

static void out_publish(struct ring *r)
{
    publish(&r->ctl->head, r->pos, &r->ctl->consumer_sleeping, &r->ctl->data_seq);
}

/* Publishes head without waking the consumer while little is waiting for it. The consumer's
 * tail (a miss between cores) is looked at only when it said it sleeps; a sleep that begins
 * just as head moves is seen by the next publish (the one of a waiting call wakes in any case). */
static void out_publish_lazy(struct ring *r)
{
    __atomic_store_n(&r->ctl->head, r->pos, __ATOMIC_RELEASE);
    if (__atomic_load_n(&r->ctl->consumer_sleeping, __ATOMIC_ACQUIRE) &&
        r->pos - __atomic_load_n(&r->ctl->tail, __ATOMIC_ACQUIRE) >= LAZY_WAKE_BYTES)
        out_publish(r);
}

static int sock_gone(int fd)
{
    struct pollfd p = {.fd = fd, .events = POLLRDHUP};
    return poll(&p, 1, 0) > 0 && (p.revents & (POLLRDHUP | POLLHUP | POLLERR));
}

/* Waits until the ring's level (bytes to read for the consumer end, room for the producer end)
 * is at least want: 1 then, 0 at timeout_ms, -ECONNRESET when the socket says the peer is gone,
 * -EPROTO on a corrupt index. Spins first, then sleeps (see shm.h). */
static int ring_wait(struct shm_x *s, struct ring *r, int consumer, uint64_t want, int timeout_ms)
{
    int64_t (*level)(struct ring *) = consumer ? in_level : out_level;
    uint32_t *seq = consumer ? &r->ctl->data_seq : &r->ctl->space_seq;
    uint32_t *sleeping = consumer ? &r->ctl->consumer_sleeping : &r->ctl->producer_sleeping;
    int64_t v = level(r);
    if (v < 0 || (uint64_t)v >= want)
        return v < 0 ? (int)v : 1;
    if (timeout_ms == 0)
        return 0;
    uint64_t t0 = now_ns();
    uint64_t spin_until = t0 + r->spin_ns;
    for (uint64_t t = t0; t < spin_until; t = now_ns()) {
        for (int i = 0; i < 16; i++)
            vg_cpu_relax();
        v = level(r);
        if (v < 0 || (uint64_t)v >= want) {
            if (v >= 0 && r->spin_ns < s->spin_ns)
                r->spin_ns = r->spin_ns * 2 < s->spin_ns ? r->spin_ns * 2 : s->spin_ns;
            return v < 0 ? (int)v : 1;
        }
    }
    if (s->spin_ns)
        r->spin_ns = r->spin_ns / 2 > SPIN_FLOOR_NS ? r->spin_ns / 2 : SPIN_FLOOR_NS;
    uint64_t deadline = timeout_ms < 0 ? UINT64_MAX : t0 + (uint64_t)timeout_ms * 1000000u;
    for (;;) {
        uint32_t seen = __atomic_load_n(seq, __ATOMIC_SEQ_CST);
        __atomic_store_n(sleeping, 1, __ATOMIC_SEQ_CST);
        v = level(r);
        if (v < 0 || (uint64_t)v >= want) {
            __atomic_store_n(sleeping, 0, __ATOMIC_RELAXED);
            return v < 0 ? (int)v : 1;
        }
        uint64_t now = now_ns();
        if (now >= deadline) {
            __atomic_store_n(sleeping, 0, __ATOMIC_RELAXED);
            return 0;
        }
        uint64_t slice = deadline - now < s->slice_ns ? deadline - now : s->slice_ns;
        futex_wait(seq, seen, slice);
        __atomic_store_n(sleeping, 0, __ATOMIC_RELAXED);
        v = level(r);
        if (v < 0 || (uint64_t)v >= want)
            return v < 0 ? (int)v : 1;
        /* Woken for nothing, or the slice ended: is the peer still there? */
        if (sock_gone(s->x.fd))
            return -ECONNRESET;
    }
}

static void copy_out(const struct ring *r, uint64_t at, void *dst, size_t n)
{
    uint64_t off = at & r->mask;
    size_t first = n < r->size - off ? n : (size_t)(r->size - off);
    memcpy(dst, r->data + off, first);
    memcpy((uint8_t *)dst + first, r->data, n - first);
}

static void copy_in(struct ring *r, uint64_t at, const void *src, size_t n)
{
    uint64_t off = at & r->mask;
    size_t first = n < r->size - off ? n : (size_t)(r->size - off);
    memcpy(r->data + off, src, first);
    memcpy(r->data, (const uint8_t *)src + first, n - first);
}

/* ---- operations ---- */

/* Waits for bytes to read in the in-ring: how many (> 0), or what recv returns instead:
 * -ETIMEDOUT, 0 at the end of the stream (the peer is gone and nothing is left), -EPROTO. */
static ssize_t wait_readable(struct shm_x *s, int timeout_ms)
{
    int64_t known = in_level_cached(&s->in);
    if (known != 0)
        return (ssize_t)known; /* bytes, or -EPROTO */
    int rc = ring_wait(s, &s->in, 1, 1, timeout_ms);
    if (rc == 0)
        return -ETIMEDOUT;
    if (rc == -ECONNRESET)
        return 0;
    if (rc < 0)
        return rc;
    int64_t avail = in_level(&s->in);
    return (ssize_t)avail; /* -EPROTO when the producer's head is impossible */
}

/* The contiguous part of `level` bytes at r's position, at most max, with *p pointing at it. */
static ssize_t contiguous(struct ring *r, uint64_t level, size_t max, void **p)
{
    uint64_t off = r->pos & r->mask;
    uint64_t n = level < r->size - off ? level : r->size - off;
    if (n > max)
        n = max;
    *p = r->data + off;
    return (ssize_t)n;
}

static ssize_t shm_recv(struct vg_xport *x, void *buf, size_t len, int timeout_ms)
{
    struct shm_x *s = (struct shm_x *)x;
    if (len == 0)
        return 0;
    ssize_t avail = wait_readable(s, timeout_ms);
    if (avail <= 0)
        return avail;
    size_t n = len < (size_t)avail ? len : (size_t)avail;
    copy_out(&s->in, s->in.pos, buf, n);
    s->in.pos += n;
    in_publish(&s->in);
    return (ssize_t)n;
}

static int send_common(struct vg_xport *x, const struct iovec *iov, int n, int timeout_ms, int lazy)
{
    struct shm_x *s = (struct shm_x *)x;
    struct ring *r = &s->out;
    uint64_t total = 0;
    for (int i = 0; i < n; i++)
        total += iov[i].iov_len;
    uint64_t unpublished = 0;
    for (int i = 0; i < n; i++) {
        const uint8_t *p = iov[i].iov_base;
        size_t rem = iov[i].iov_len;
        while (rem) {
            int64_t room = s->cache_room ? out_level_cached(r, rem < PUBLISH_CHUNK ? rem : PUBLISH_CHUNK)
                                         : out_level(r);
            if (room < 0)
                return (int)room;
            if (room == 0) {
                /* Publish before waiting, or the consumer never sees what would free room. */
                if (unpublished) {
                    out_publish(r);
                    unpublished = 0;
                }
                uint64_t want = total < r->size / 8 ? total : r->size / 8;
                int rc = ring_wait(s, r, 0, want ? want : 1, timeout_ms);
                if (rc == 0)
                    return -ETIMEDOUT;
                if (rc < 0)
                    return rc == -ECONNRESET ? -EPIPE : rc;
                continue;
            }
            size_t take = rem < (uint64_t)room ? rem : (size_t)room;
            if (take > PUBLISH_CHUNK)
                take = (size_t)PUBLISH_CHUNK;
            copy_in(r, r->pos, p, take);
            r->pos += take;
            p += take;
            rem -= take;
            total -= take;
            unpublished += take;
            if (unpublished >= PUBLISH_CHUNK) {
                out_publish(r);
                unpublished = 0;
            }
        }
    }
    if (lazy)
        out_publish_lazy(r);
    else
        out_publish(r); /* also wakes the consumer for what earlier lazy sends left waiting */
    return 0;
}

static int shm_send(struct vg_xport *x, const struct iovec *iov, int n, int timeout_ms)
{
    return send_common(x, iov, n, timeout_ms, 0);
}

static int shm_send_more(struct vg_xport *x, const struct iovec *iov, int n, int timeout_ms)
{
    return send_common(x, iov, n, timeout_ms, 1);
}

static ssize_t shm_peek(struct vg_xport *x, const void **p, size_t max, int timeout_ms)
{
    struct shm_x *s = (struct shm_x *)x;
    ssize_t avail = wait_readable(s, timeout_ms);
    if (avail <= 0)
        return avail;
    return contiguous(&s->in, (uint64_t)avail, max, (void **)p);
}

static void shm_consume(struct vg_xport *x, size_t n)
{
    struct shm_x *s = (struct shm_x *)x;
    s->in.pos += n;
    in_publish(&s->in);
}

static ssize_t shm_reserve(struct vg_xport *x, void **p, size_t max, int timeout_ms)
{
    struct shm_x *s = (struct shm_x *)x;
    struct ring *r = &s->out;
    uint64_t want = max < r->size / 8 ? max : r->size / 8;
    int rc = ring_wait(s, r, 0, want ? want : 1, timeout_ms);
    if (rc == 0)
        return -ETIMEDOUT;
    if (rc < 0)
        return rc == -ECONNRESET ? -EPIPE : rc;
    int64_t room = out_level(r);
    if (room < 0)
        return (ssize_t)room;
    return contiguous(r, (uint64_t)room, max, p);
}

static int shm_commit(struct vg_xport *x, size_t n)
{
    struct shm_x *s = (struct shm_x *)x;
    s->out.pos += n;
    out_publish(&s->out);
    return 0;
}

static int shm_peer_gone(struct vg_xport *x)
{
    return sock_gone(x->fd);
}

static void shm_interrupt(struct vg_xport *x)
{
    struct shm_x *s = (struct shm_x *)x;
    __atomic_fetch_add(&s->in.ctl->data_seq, 1, __ATOMIC_SEQ_CST);
    futex_wake(&s->in.ctl->data_seq);
}

static void shm_close(struct vg_xport *x)
{
    struct shm_x *s = (struct shm_x *)x;
    munmap(s->base, s->size);
    close(x->fd);
    free(s);
}

static const struct vg_xport_ops shm_ops = {
    .recv = shm_recv,
    .send = shm_send,
    .send_more = shm_send_more,
    .peer_gone = shm_peer_gone,
    .close = shm_close,
    .peek = shm_peek,
    .consume = shm_consume,
    .reserve = shm_reserve,
    .commit = shm_commit,
    .interrupt = shm_interrupt,
};

/* ---- layout ---- */

static int pow2_in_range(uint64_t v)
{
    return v >= VG_SHM_RING_MIN && v <= VG_SHM_RING_MAX && (v & (v - 1)) == 0;
}

uint64_t vg_shm_region_size(uint64_t req_size, uint64_t rep_size)
{
    return VG_SHM_HDR_SIZE + req_size + rep_size;
}

void vg_shm_init(void *base, uint64_t req_size, uint64_t rep_size)
{
    struct vg_shm_hdr *h = base;
    h->version = VG_SHM_VERSION;
    h->hdr_size = VG_SHM_HDR_SIZE;
    h->size = vg_shm_region_size(req_size, rep_size);
    h->req_off = VG_SHM_HDR_SIZE;
    h->req_size = req_size;
    h->rep_off = VG_SHM_HDR_SIZE + req_size;
    h->rep_size = rep_size;
    __atomic_store_n(&h->magic, VG_SHM_MAGIC, __ATOMIC_RELEASE);
}

/* A ring [off, off + rsize) must be a page-aligned power of two after the header and inside
 * the region. */
static int ring_ok(uint64_t off, uint64_t rsize, uint64_t size)
{
    return pow2_in_range(rsize) && off % 4096 == 0 && off >= VG_SHM_HDR_SIZE && off <= size &&
           rsize <= size - off;
}

struct vg_xport *vg_xport_shm(int sock, void *base, uint64_t size, enum vg_shm_side side, const char **why)
{
    struct vg_shm_hdr *h = base;
    /* Read the layout once, into locals: the copy below is what this side trusts from now on. */
    uint64_t magic = __atomic_load_n(&h->magic, __ATOMIC_ACQUIRE);
    uint32_t version = h->version, hdr_size = h->hdr_size;
    uint64_t hsize = h->size, req_off = h->req_off, req_size = h->req_size, rep_off = h->rep_off,
             rep_size = h->rep_size;
    if (size < VG_SHM_HDR_SIZE || magic != VG_SHM_MAGIC || version != VG_SHM_VERSION ||
        hdr_size != VG_SHM_HDR_SIZE || hsize != size) {
        *why = "the shared region's header is not one this side knows";
        return NULL;
    }
    if (!ring_ok(req_off, req_size, size) || !ring_ok(rep_off, rep_size, size) ||
        (req_off < rep_off ? req_off + req_size > rep_off : rep_off + rep_size > req_off)) {
        *why = "the shared region's rings are laid out wrongly";
        return NULL;
    }
    struct shm_x *s = calloc(1, sizeof *s);
    if (!s) {
        *why = "out of memory";
        return NULL;
    }
    struct ring req = {&h->req, (uint8_t *)base + req_off, req_size, req_size - 1, 0, 0, 0};
    struct ring rep = {&h->rep, (uint8_t *)base + rep_off, rep_size, rep_size - 1, 0, 0, 0};
    s->in = side == VG_SHM_SERVER ? req : rep;
    s->out = side == VG_SHM_SERVER ? rep : req;
    s->base = base;
    s->size = size;
    s->spin_ns = vg_shm_spin_ns();
    s->in.spin_ns = s->out.spin_ns = s->spin_ns;
    s->slice_ns = side == VG_SHM_SERVER ? SERVER_SLICE_NS : CLIENT_SLICE_NS;
    s->cache_room = side == VG_SHM_CLIENT;
    s->x.ops = &shm_ops;
    s->x.kind = VG_XPORT_SHM;
    s->x.fd = sock;
    return &s->x;
}

void *vg_xport_shm_base(struct vg_xport *x, uint64_t *size)
{
    if (!x || x->kind != VG_XPORT_SHM)
        return NULL;
    struct shm_x *s = (struct shm_x *)x;
    if (size)
        *size = s->size;
    return s->base;
}

int vg_shm_check_sealed(int fd, uint64_t size, const char **why)
{
    struct stat sb;
    if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
        *why = "not a memory file";
        return -EINVAL;
    }
    if ((uint64_t)sb.st_size < size) {
        *why = "smaller than announced";
        return -EINVAL;
    }
    int seals = fcntl(fd, F_GET_SEALS);
    if (seals < 0 || !(seals & F_SEAL_SHRINK)) {
        *why = "not sealed against shrinking";
        return -EPERM;
    }
    return 0;
}

int vg_shm_create_sealed(const char *name, uint64_t size)
{
    int fd = memfd_create(name, MFD_CLOEXEC | MFD_ALLOW_SEALING);
    if (fd < 0)
        return -errno;
    if (ftruncate(fd, (off_t)size) != 0 ||
        fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL) != 0) {
        int err = errno;
        close(fd);
        return -err;
    }
    return fd;
}

struct vg_xport *vg_xport_shm_attach(int sock, int memfd, uint64_t expected_size, const char **why)
{
    struct vg_xport *x = NULL;
    if (expected_size < VG_SHM_HDR_SIZE || expected_size > 2 * VG_SHM_RING_MAX + VG_SHM_HDR_SIZE) {
        *why = "the announced shared region has an impossible size";
        goto out;
    }
    if (vg_shm_check_sealed(memfd, expected_size, why) < 0)
        goto out;
    void *base = mmap(NULL, (size_t)expected_size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, memfd, 0);
    if (base == MAP_FAILED) {
        *why = "cannot map the shared region";
        goto out;
    }
    x = vg_xport_shm(sock, base, expected_size, VG_SHM_CLIENT, why);
    if (!x)
        munmap(base, (size_t)expected_size);
out:
    close(memfd);
    return x;
}
