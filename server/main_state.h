/* What gpu-server's main process knows about its sessions and tenants, for the parts that
 * report it (main_admin.c for vgpu-smi, main_metrics.c for Prometheus) and the listener that
 * keeps it (main_listen.c). Main process, loop thread only. */
#ifndef VG_MAIN_STATE_H
#define VG_MAIN_STATE_H

#include <stdint.h>
#include <time.h>

#include "config.h"
#include "main_children.h"
#include "main_probe.h"
#include "main_tenants.h"

/* Why a connection was refused before it became a session (the metrics' reason label). */
enum vg_refusal {
    VG_REFUSED_TOKEN,          /* missing or unknown tenant token */
    VG_REFUSED_LIMIT,          /* --max-client-conns or --max-sessions */
    VG_REFUSED_DESCRIPTORS,    /* out of file descriptors */
    VG_REFUSED_TIMEOUT,        /* no Hello within --handshake-timeout */
    VG_REFUSED_PROTOCOL,       /* a bad or oversized handshake frame, a version mismatch */
    VG_REFUSED_OTHER,          /* out of memory, fork failed */
    VG_REFUSAL_COUNT
};

const char *vg_refusal_name(enum vg_refusal r);

/* Device time a tenant used, sampled from the board every VG_SAMPLE_MS so that shares over the
 * last second and the last ten seconds can be reported. */
#define VG_SAMPLE_MS 100
#define VG_SAMPLES 101             /* ten seconds of samples, plus the one they start from */

struct vg_main_state {
    const struct vg_config *cfg;
    const struct vg_probe *probe;
    struct vg_tenants tenants;     /* as last loaded */
    int board_index[VG_BOARD_TENANTS]; /* tenants.t[i] is board record board_index[i] */
    struct vg_children children;   /* children.board is the board */
    uint64_t refused[VG_REFUSAL_COUNT];
    time_t started;
    /* The last VG_SAMPLES samples of each board tenant's device time per device (ring). */
    uint64_t sample_ns[VG_SAMPLES][VG_BOARD_TENANTS];
    uint64_t sample_at_ns[VG_SAMPLES];
    unsigned sample_next, sample_count;
    /* Re-reads the tenants file (vgpu-smi reload, SIGHUP). 0, or -1 with err. */
    int (*reload)(struct vg_main_state *st, char *err, size_t errlen);
};

#endif
