/* gpu-server's main process never opens the CUDA driver (CUDA is not fork-safe, and a main
 * process that touched the GPU could fall with it): at start-up a short-lived child opens it,
 * reports which driver it chose and the facts the main process needs about each device, and
 * exits. */
#ifndef VG_MAIN_PROBE_H
#define VG_MAIN_PROBE_H

#include <stdint.h>

#define VG_PROBE_MAX_DEVICES 64

struct vg_device_facts {
    char name[256];
    uint64_t total_mem;
    uint8_t uuid[16];
};

struct vg_probe {
    char path[4096];           /* the driver chosen (for vg_drv_reopen in each session) */
    char kind[64];
    char desc[512];
    int device_count;
    struct vg_device_facts dev[VG_PROBE_MAX_DEVICES];
};

/* Opens the driver named by which (auto, emulated or a path) in a child process, which reports
 * what it found. 0, or -1 when no usable driver was found (the child logged why). */
int vg_probe_driver(const char *which, const char *exe_dir, struct vg_probe *out);

#endif
