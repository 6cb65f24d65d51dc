/* vg_shm: the shared-memory transport's region and rings, shared by the stub and gpu-server.
 *
 * A client that reaches gpu-server over a Unix socket asks for shared memory in its Hello. Its
 * session process creates a memfd, seals its size (F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL: the
 * client can neither shrink it under the server, which would make the server's accesses fault,
 * nor grow it), announces it in the Welcome and passes it right after on the socket (SCM_RIGHTS,
 * one byte 'S'). Both map it; from then on frames move through two rings in it:
 *
 *   offset                size        what
 *   0                     4096        header: magic, version, layout, each ring's indices
 *   req_off (4096)        req_size    request ring: client -> server (Calls, their bulk bytes)
 *   rep_off               rep_size    reply ring: server -> client (Replies, Heartbeats, Output)
 *
 * Each ring is a single-producer single-consumer byte stream that carries exactly the bytes a
 * socket would: frames as in frame.h, bulk included, so that everything above the transport is
 * one code path. head counts the bytes the producer ever wrote, tail the bytes the consumer ever
 * read (both only grow; their difference is what is in the ring, at most its size). Each index
 * sits on a cache line of its own.
 *
 * Trust: everything in the region is writable by the client. Each side therefore keeps its own
 * index and the layout in private memory, and only *publishes* them here; what it reads here is
 * the peer's index, checked against its own (0 <= head - tail <= size) before any use. A server
 * that reads a bad index ends that session (a protocol error); frame bytes are copied out of the
 * ring before they are decoded (recv), and only payloads (host-to-device copy bytes) are handed
 * on from where they lie (peek). A client that scribbles over the region therefore loses its own
 * session and nothing else.
 *
 * Waiting: a side that finds nothing to read (or no room to write) spins for a while
 * (VGPU_SHM_SPIN_US, default VG_SHM_SPIN_US_DEFAULT), then sleeps on a futex word in the ring's
 * control block after raising its `sleeping` flag; the other side wakes it only when that flag
 * is up, so a busy pair exchanges frames without a system call. Sleeps are cut in slices after
 * which the socket is checked: a peer that died is noticed even by a side asleep on the rings.
 * (gpu-server's watchdog also watches the socket, so a dead client's session ends at once.)
 *
 * Pinned host memory: the stub's cuMemAllocHost in a shared-memory session is a memfd of the
 * client's (sealed the same way), passed on the socket (one byte 'R') and announced by a Region
 * frame; Calls name bytes in it with a region reference instead of carrying them (frame.h,
 * VG_FLAG_BULK_REF), so a copy from or to pinned memory is one copy by the server. */
#ifndef VG_SHM_H
#define VG_SHM_H

#include <stddef.h>
#include <stdint.h>

#include "xport.h"

#define VG_SHM_MAGIC 0x314d485355504756ull /* bytes "VGPUSHM1" */
#define VG_SHM_VERSION 1
#define VG_SHM_HDR_SIZE 4096u
#define VG_SHM_RING_MIN ((uint64_t)64 << 10)
#define VG_SHM_RING_MAX ((uint64_t)256 << 20)
/* Tags of the bytes that carry descriptors on the socket. */
#define VG_SHM_TAG_RINGS 'S'
#define VG_SHM_TAG_REGION 'R'
/* How long a side spins before it sleeps, unless VGPU_SHM_SPIN_US says otherwise. */
#define VG_SHM_SPIN_US_DEFAULT 20

/* One ring's indices and wake-up words. head, data_seq and consumer_sleeping: the producer
 * writes head; the consumer sleeps on data_seq after raising consumer_sleeping, and the producer
 * that finds the flag up lowers it, bumps data_seq and wakes it. tail and the other pair mirror
 * that for a producer waiting for room. */
struct vg_shm_ring_ctl {
    _Alignas(64) uint64_t head;
    uint32_t data_seq;
    uint32_t consumer_sleeping;
    _Alignas(64) uint64_t tail;
    uint32_t space_seq;
    uint32_t producer_sleeping;
};

struct vg_shm_hdr {
    uint64_t magic;
    uint32_t version;
    uint32_t hdr_size;
    uint64_t size;             /* the whole region */
    uint64_t req_off, req_size;
    uint64_t rep_off, rep_size;
    struct vg_shm_ring_ctl req; /* client produces, server consumes */
    struct vg_shm_ring_ctl rep; /* server produces, client consumes */
};

_Static_assert(sizeof(struct vg_shm_hdr) <= VG_SHM_HDR_SIZE, "header fits its page");

enum vg_shm_side { VG_SHM_CLIENT, VG_SHM_SERVER };

/* One pause in a polling loop (kind to the sibling hyper-thread and to the memory bus). */
static inline void vg_cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield");
#endif
}

/* The region's size for rings of these sizes (each a power of two within the limits). */
uint64_t vg_shm_region_size(uint64_t req_size, uint64_t rep_size);

/* Lays out a fresh, zeroed region of vg_shm_region_size(req_size, rep_size) bytes at base. */
void vg_shm_init(void *base, uint64_t req_size, uint64_t rep_size);

/* A transport over a mapped region (base, size): the ring ends of `side`, with sock as the
 * liveness signal. Checks the header's layout against size (the client's view of a region the
 * server made; the server passes its own) and copies it to private memory. Takes sock and the
 * mapping (close closes and unmaps them). NULL with *why on a bad layout or ENOMEM (sock and
 * mapping are then left to the caller). */
struct vg_xport *vg_xport_shm(int sock, void *base, uint64_t size, enum vg_shm_side side, const char **why);

/* Client: maps the region memfd (expected_size bytes, as the Welcome said) and makes the
 * transport. Closes memfd in every case; takes sock on success. NULL with *why. */
struct vg_xport *vg_xport_shm_attach(int sock, int memfd, uint64_t expected_size, const char **why);

/* The region of a shared-memory transport (NULL for others), e.g. for a test that scribbles. */
void *vg_xport_shm_base(struct vg_xport *x, uint64_t *size);

/* Spin time before sleeping, in nanoseconds, from VGPU_SHM_SPIN_US (read once). */
uint64_t vg_shm_spin_ns(void);

/* Checks a memfd a peer passed as shared memory: a regular memory file at least `size` bytes
 * long that can no longer shrink (F_SEAL_SHRINK), so mapping `size` bytes of it can never
 * fault. 0 or a negative errno with *why. */
int vg_shm_check_sealed(int fd, uint64_t size, const char **why);

/* Creates a sealed memfd of size bytes (name for /proc/PID/fd and maps): size fixed for good.
 * Returns the descriptor (close-on-exec) or a negative errno. */
int vg_shm_create_sealed(const char *name, uint64_t size);

#endif
