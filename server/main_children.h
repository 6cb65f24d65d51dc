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
};

struct vg_children {
    struct vg_child *c;
    unsigned n, cap;
    struct vg_board *board;
};

/* Forks a session process for st (st->slot is claimed here). Returns 0, or -1 with a reason in
 * why (no slot free, fork failed). The child never returns from this call. */
int vg_children_spawn(struct vg_children *cs, struct vg_sess_start *st, const char *addr,
                      const char **why);

/* Reaps every child that ended (SIGCHLD): logs how each ended and frees its slot. Returns how
 * many were reaped. */
int vg_children_reap(struct vg_children *cs);

/* How many live sessions come from addr. */
unsigned vg_children_from(const struct vg_children *cs, const char *addr);

/* Sends sig to every session process. */
void vg_children_signal(const struct vg_children *cs, int sig);

#endif
