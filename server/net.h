/* vg_net: gpu-server's libuv side — the listener, client connections, frame reading and writing,
 * the handshake, and handing calls to the device workers. Everything here runs on the loop
 * thread. */
#ifndef VG_NET_H
#define VG_NET_H

#include <stdint.h>

#include "driver.h"

struct vg_net_config {
    const char *listen_host;
    int listen_port;           /* 0 = any free port */
    const char *port_file;     /* NULL = none */
    uint64_t max_frame;
};

/* Serves until SIGINT/SIGTERM. Returns the process exit status. */
int vg_net_run(const struct vg_net_config *cfg, struct vg_drv *drv);

#endif
