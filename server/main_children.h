/* gpu-server's main process: its session processes. One slot per child (like nginx's
 * ngx_processes[]), one function that cleans up after a child, whatever ended it. Main process,
 * loop thread only. */
#ifndef VG_MAIN_CHILDREN_H
#define VG_MAIN_CHILDREN_H

#include <stdint.h>
#include <sys/types.h>
#include <time.h>

#include "board.h"
#include "sess_proc.h"

struct vg_child {
    pid_t pid;
    uint64_t session_id;
    int slot;                  /* board slot */
    char addr[64];             /* client address (IP, or unix uid), for per-client limits */
    char peer[200];
    time_t since;
    uint32_t tenant;           /* board record */
    char host[64], program[64];
    uint32_t client_pid;
};

/* A tenant's counters: what its ended sessions did (kept here when their slot is released)
 * plus what its live sessions' slots say now. */
struct vg_tenant_totals {
    uint64_t calls, bytes_to_device, bytes_from_device, refused_allocs;
    uint64_t busy_ns[VG_BOARD_DEVICES];
    uint64_t sessions_ended;
};

struct vg_children {
    struct vg_child *c;
    unsigned n, cap;
    struct vg_board *board;
    struct vg_tenant_totals ended[VG_BOARD_TENANTS];
};

/* Forks a session process for st (st->slot is claimed here). Returns 0, or -1 with a reason in
 * why (no slot free, fork failed). The child never returns from this call. */
int vg_children_spawn(struct vg_children *cs, struct vg_sess_start *st, const char *addr,
                      const char **why);
/* The child just spawned (the last one), to note what the Hello said of the client. */
struct vg_child *vg_children_last(struct vg_children *cs);
/* 1 when some live session belongs to board tenant record t. */
int vg_children_of_tenant(const struct vg_children *cs, uint32_t t);

/* Reaps every child that ended (SIGCHLD): logs how each ended and frees its slot. Returns how
 * many were reaped. */
int vg_children_reap(struct vg_children *cs);

/* How many live sessions come from addr. */
unsigned vg_children_from(const struct vg_children *cs, const char *addr);

/* Frees board tenant record t (removed, no session left) and forgets its counters. */
void vg_children_free_tenant(struct vg_children *cs, uint32_t t);
/* Tenant record t's counters, ended and live sessions together. */
void vg_children_totals(const struct vg_children *cs, uint32_t t, struct vg_tenant_totals *out);

/* Sends sig to every session process. */
void vg_children_signal(const struct vg_children *cs, int sig);

#endif
