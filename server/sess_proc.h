/* The session process: one per client, forked by gpu-server's main process once the client's
 * handshake is accepted (main_listen.c). It owns the client's connection, its driver (opened
 * after the fork: CUDA is not fork-safe, so the main process never opens it), and everything the
 * client creates; it reads each call, runs it and replies on one thread. When the connection
 * ends, or the session must be stopped (kernel timeout, SIGTERM from an operator), the process
 * ends, and with it every driver object: on a real GPU, ending the process is the only thing that
 * stops a running kernel. */
#ifndef VG_SESS_PROC_H
#define VG_SESS_PROC_H

#include <stdint.h>

#include "board.h"
#include "config.h"

/* Why a session process ended: its exit status, which the main process logs. */
enum vg_sess_exit {
    VG_SESS_EXIT_DISCONNECTED = 0, /* the client closed the connection */
    VG_SESS_EXIT_SETUP = 10,       /* the driver could not be opened, or no memory to start */
    VG_SESS_EXIT_PROTOCOL = 11,    /* the client broke the protocol (logged with the reason) */
    VG_SESS_EXIT_TIMEOUT = 12,     /* the client stalled inside a frame or stopped reading */
    VG_SESS_EXIT_KERNEL_TIMEOUT = 13,
    VG_SESS_EXIT_NOMEM = 14,
    VG_SESS_EXIT_STOPPED = 15,     /* SIGTERM or SIGINT (an operator, or gpu-server stopping) */
    VG_SESS_EXIT_COPY_FAILED = 16, /* a device-to-host copy failed after its Reply had begun */
};

/* What a session process starts from: the main process fills it before the fork. */
struct vg_sess_start {
    const struct vg_config *cfg;
    struct vg_board *board;
    int slot;                      /* the session's slot on the board */
    uint64_t session_id;
    int fd;                        /* the client's connected socket */
    char peer[200];                /* "addr (program pid N on host)", for logs */
    unsigned client_timeout_ms;    /* the client's VGPU_TIMEOUT from Hello, 0 if not given */
    int want_shm;                  /* the Hello asked for shared memory (over a Unix socket) */
    const char *driver_path;       /* what the start-up probe chose */
    const char *driver_kind;
    uint32_t tenant;               /* its record on the board */
    int ndevices;                  /* the devices the tenant sees (server ordinals); 0: all */
    int devices[VG_BOARD_DEVICES];
};

/* Runs the session in the freshly forked child; never returns. */
void vg_sess_proc_main(const struct vg_sess_start *st) __attribute__((noreturn));

/* The name of an exit status, for the main process's log. */
const char *vg_sess_exit_name(int status);

#endif
