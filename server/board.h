/* vg_board: the shared-memory board between gpu-server's main process and its session processes.
 *
 * The main process maps it (MAP_SHARED | MAP_ANONYMOUS) before it forks any session, so every
 * session process sees the same pages. It holds one slot per session process; the slot's writer
 * is that session (its counters) and the main process (claiming the slot before the fork,
 * clearing it after the child is reaped). Nothing here is a pointer: records hold plain numbers,
 * so a slot can be cleaned up after its writer died in any state.
 *
 * Totals are derived, never stored: the bytes buffered server-wide are the sum of the slots'
 * `buffered`. A session adds to its own slot first and then reads the sum (both sequentially
 * consistent), so two sessions racing for the last bytes under a cap cannot both pass unseen,
 * and a session that dies between two steps leaves nothing to repair: its slot is zeroed when it
 * is reaped, and the sums no longer include it.
 *
 * The main process treats every value it reads here as untrusted input from the session (a
 * compromised driver in a session process could write anything): it only reads counters it
 * reports, bounds what it indexes, and never blocks on anything a session holds. */
#ifndef VG_BOARD_H
#define VG_BOARD_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define VG_BOARD_MAGIC 0x44524f4255504756ull /* "VGPUBORD" */
#define VG_BOARD_VERSION 2
#define VG_BOARD_DEVICES 64                /* devices a ledger counts */
#define VG_BOARD_TENANTS 256

/* One session process. Cache-line aligned: each session writes only its own line(s). */
struct vg_board_slot {
    _Alignas(64) volatile int32_t pid; /* 0: free; written by the main process only */
    uint32_t tenant;                   /* index into tenants[]; main process, before the fork */
    uint64_t session_id;               /* main process */
    uint64_t buffered;                 /* bytes of partial frames held by the session (atomic) */
    uint64_t calls;                    /* calls run (atomic, relaxed) */
    uint64_t bytes_to_device;          /* bulk bytes received (atomic, relaxed) */
    uint64_t bytes_from_device;        /* bulk bytes sent (atomic, relaxed) */
    uint64_t refused_allocs;           /* allocations refused over the tenant's limit (atomic) */
    /* Device memory charged to the tenant by this session, per physical device (atomic). */
    _Alignas(64) uint64_t mem[VG_BOARD_DEVICES];
    /* Device time (ns) the session's kernels and copies took, per device (atomic counter). */
    _Alignas(64) uint64_t busy_ns[VG_BOARD_DEVICES];
    /* Bursts of device work the session has in flight, per device (sched.c; atomic). */
    _Alignas(64) uint32_t inflight[VG_BOARD_DEVICES];
};

enum vg_tenant_state { VG_TENANT_FREE = 0, VG_TENANT_ACTIVE = 1, VG_TENANT_REMOVED = 2 };

/* One tenant, as the tenants file last said (the main process writes it, at start and on
 * reload; sessions read it at each charge, so a reload reaches live sessions at once). */
struct vg_board_tenant {
    _Alignas(64) uint32_t state;       /* enum vg_tenant_state */
    uint32_t weight;
    uint32_t cap_percent;              /* 0: no cap */
    uint32_t pad0;
    uint64_t mem_limit;                /* bytes per device; 0: no limit */
    char name[64];
    /* The scheduler's per-device state of the tenant (sched.c; atomic): its virtual finish tag,
     * and, with a cap, when its budget next allows a start (CLOCK_MONOTONIC ns). */
    uint64_t vft[VG_BOARD_DEVICES];
    uint64_t ready_at[VG_BOARD_DEVICES];
    uint32_t inflight[VG_BOARD_DEVICES];   /* its sessions' kernel bursts in flight */
};

/* A device's scheduler state (sched.c). */
struct vg_board_device {
    _Alignas(64) uint32_t owner;       /* slot + 1 of the session whose work is in flight; 0: none */
    uint32_t wake;                     /* futex word, bumped whenever the device may be taken */
    uint64_t vtime;                    /* the system virtual time: the largest start tag given */
};

struct vg_board {
    uint64_t magic;
    uint32_t version;
    uint32_t nslots;
    uint64_t size;                     /* bytes mapped */
    uint64_t buffered_cap;             /* server-wide cap on the slots' buffered bytes */
    uint64_t waiters_off;              /* offset of the waiter bitmaps: VG_BOARD_DEVICES x
                                        * waiters_words words, bit i = slot i waits for the device */
    uint32_t waiters_words;
    uint32_t pad0;
    struct vg_board_tenant tenants[VG_BOARD_TENANTS];
    struct vg_board_device devices[VG_BOARD_DEVICES];
    struct vg_board_slot slots[];
};

/* Device dev's waiter bitmap (waiters_words words). */
static inline uint64_t *vg_board_waiters(struct vg_board *b, int dev)
{
    return (uint64_t *)((char *)b + b->waiters_off) + (size_t)dev * b->waiters_words;
}

/* Maps a board with nslots slots. NULL with errno on failure. */
struct vg_board *vg_board_create(uint32_t nslots, uint64_t buffered_cap);

/* Session process: charges `bytes` of device memory on physical device dev to the slot's tenant,
 * before the driver allocates it. Granted (1) when the tenant's use of that device stays within
 * its limit (read now: a reload applies at once); else 0, nothing charged, and the refusal
 * counted. The tenant's use is the sum of its sessions' charges, so it can never drift. */
int vg_board_mem_charge(struct vg_board *b, int slot, int dev, uint64_t bytes);
/* Gives back what a charge took (the memory was freed, or the driver's allocation failed). */
void vg_board_mem_refund(struct vg_board *b, int slot, int dev, uint64_t bytes);
/* A tenant's memory in use on a physical device (sum over its live sessions). */
uint64_t vg_board_tenant_mem(const struct vg_board *b, uint32_t tenant, int dev);

/* Main process: a free slot for a session about to be forked (its pid is set by
 * vg_board_slot_own once known), or -1 when every slot is taken. */
int vg_board_slot_claim(struct vg_board *b, uint64_t session_id, uint32_t tenant);
void vg_board_slot_own(struct vg_board *b, int slot, pid_t pid);
/* Main process, after the slot's session was reaped (or its fork failed): zeroes it. */
void vg_board_slot_release(struct vg_board *b, int slot);

/* Session process: asks to hold `bytes` more of partial-frame buffer (or of a shared-memory
 * client's pinned memory, which the session maps). Granted (returns 1) when the server-wide total
 * stays within the cap; otherwise 0 and nothing is held (the session pauses its reads and asks
 * again, or refuses the pinned region). */
int vg_board_buffer_acquire(struct vg_board *b, int slot, uint64_t bytes);
void vg_board_buffer_release(struct vg_board *b, int slot, uint64_t bytes);
/* The server-wide sum of buffered bytes (racy snapshot, for reports and tests). */
uint64_t vg_board_buffered_total(const struct vg_board *b);

#endif
