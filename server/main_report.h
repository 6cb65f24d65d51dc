/* gpu-server's reports on itself, from the main process's state: the status that vgpu-smi
 * shows (JSON) and the Prometheus text served at /metrics. Main process, loop thread. */
#ifndef VG_MAIN_REPORT_H
#define VG_MAIN_REPORT_H

#include <json-c/json.h>
#include <stddef.h>

#include "main_state.h"

/* Records each tenant's device time now (called every VG_SAMPLE_MS), for the shares over the
 * last second and ten seconds. */
void vg_report_sample(struct vg_main_state *st);

/* The status as a JSON object (caller puts it with json_object_put). */
struct json_object *vg_report_json(const struct vg_main_state *st);

/* The Prometheus text exposition (malloc'd, *len bytes; caller frees); NULL on ENOMEM. */
char *vg_report_metrics(const struct vg_main_state *st, size_t *len);

#endif
