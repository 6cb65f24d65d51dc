/* gpu-server's main process: one libuv loop that listens (TCP, Unix sockets), reads each new
 * connection's Hello under tight limits (size, time, connections per client), and forks a
 * session process for each accepted client (main_children.c). It never opens the driver: the
 * facts it needs came from the start-up probe (main_probe.c). */
#ifndef VG_MAIN_LISTEN_H
#define VG_MAIN_LISTEN_H

#include "config.h"
#include "main_probe.h"
#include "main_tenants.h"

/* Serves until SIGINT/SIGTERM, then ends every session. Returns the process exit status.
 * tenants: as loaded at start (re-read from cfg->tenants_path on SIGHUP). */
int vg_main_run(const struct vg_config *cfg, const struct vg_probe *probe, const struct vg_tenants *tenants);

#endif
