/* gpu-server's admin endpoint, which vgpu-smi asks (see main_admin.c for the requests). */
#ifndef VG_MAIN_ADMIN_H
#define VG_MAIN_ADMIN_H

#include <uv.h>

#include "main_state.h"

struct vg_admin;

/* Listens on addr (HOST:PORT or unix:PATH). NULL (logged) when it cannot. *bound_port: the TCP
 * port bound (0 for a Unix socket). */
struct vg_admin *vg_admin_start(uv_loop_t *loop, const char *addr, struct vg_main_state *st, int *bound_port);
/* Stops listening (the loop must run on to close it); removes a Unix socket's path. */
void vg_admin_stop(struct vg_admin *a);

#endif
