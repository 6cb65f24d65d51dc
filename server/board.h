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
#define VG_BOARD_VERSION 1

/* One session process. Cache-line aligned: each session writes only its own line(s). */
struct vg_board_slot {
    _Alignas(64) volatile int32_t pid; /* 0: free; written by the main process only */
    uint32_t pad0;
    uint64_t session_id;               /* main process */
    uint64_t buffered;                 /* bytes of partial frames held by the session (atomic) */
    uint64_t calls;                    /* calls run (atomic, relaxed) */
    uint64_t bytes_to_device;          /* bulk bytes received (atomic, relaxed) */
    uint64_t bytes_from_device;        /* bulk bytes sent (atomic, relaxed) */
};

struct vg_board {
    uint64_t magic;
    uint32_t version;
    uint32_t nslots;
    uint64_t size;                     /* bytes mapped */
    uint64_t buffered_cap;             /* server-wide cap on the slots' buffered bytes */
    struct vg_board_slot slots[];
};

/* Maps a board with nslots slots. NULL with errno on failure. */
struct vg_board *vg_board_create(uint32_t nslots, uint64_t buffered_cap);

/* Main process: a free slot for a session about to be forked (its pid is set by
 * vg_board_slot_own once known), or -1 when every slot is taken. */
int vg_board_slot_claim(struct vg_board *b, uint64_t session_id);
void vg_board_slot_own(struct vg_board *b, int slot, pid_t pid);
/* Main process, after the slot's session was reaped (or its fork failed): zeroes it. */
void vg_board_slot_release(struct vg_board *b, int slot);

/* Session process: asks to hold `bytes` more of partial-frame buffer. Granted (returns 1) when
 * the server-wide total stays within the cap; otherwise 0 and nothing is held (the session
 * pauses its reads and asks again). */
int vg_board_buffer_acquire(struct vg_board *b, int slot, uint64_t bytes);
void vg_board_buffer_release(struct vg_board *b, int slot, uint64_t bytes);
/* The server-wide sum of buffered bytes (racy snapshot, for reports and tests). */
uint64_t vg_board_buffered_total(const struct vg_board *b);

#endif
