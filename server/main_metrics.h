/* gpu-server's Prometheus endpoint (--metrics HOST:PORT): GET /metrics, served by
 * libmicrohttpd driven from the main loop (no thread of its own, so the main process stays
 * single-threaded and safe to fork). */
#ifndef VG_MAIN_METRICS_H
#define VG_MAIN_METRICS_H

#include <uv.h>

#include "main_state.h"

struct vg_metrics;

/* NULL (logged) when it cannot listen on addr. *bound_port: the port it took. */
struct vg_metrics *vg_metrics_start(uv_loop_t *loop, const char *addr, struct vg_main_state *st, int *bound_port);
void vg_metrics_stop(struct vg_metrics *m);

#endif
