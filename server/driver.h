/* vg_drv: the table of CUDA driver entry points gpu-server calls, filled from a dlopen()ed
 * libcuda.so.1 (NVIDIA's or the emulated GPU).
 *
 * One entry per cuda.h function (and the per-thread-stream twins the generated handlers use),
 * declared with the type cuda.h gives it (field cuMemAlloc_v2, which `d->cuMemAlloc` names
 * through cuda.h's macro) and resolved with the driver's dlsym of that versioned name, falling
 * back to the driver's cuGetProcAddress_v2 by base name at the CUDA version of that ABI (see
 * driver.c for why dlsym comes first).
 * Entries the driver lacks stay NULL; callers check with VG_DRV_HAS. */
#ifndef VG_DRIVER_H
#define VG_DRIVER_H

#include <cuda.h>
#include <cudaProfiler.h>

#include "cuapi_drv.h" /* VG_DRV_FUNCS(X): X(symbol, base name, ABI version), generated */

/* The table holds deprecated functions too: a client may call them. */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
struct vg_drv {
#define VG_DRV_FIELD(name, base, version) __typeof__(name) *name;
    VG_DRV_FUNCS(VG_DRV_FIELD)
#undef VG_DRV_FIELD
    void *dl;
    char desc[512]; /* "emulated GPU (/path)" or "NVIDIA driver (/path)", for logs and Welcome */
    char path[4096];  /* what was dlopen()ed */
    char kind[64];    /* "emulated GPU", "NVIDIA driver" or "driver" */
    int device_count;
};
#pragma GCC diagnostic pop

#define VG_DRV_HAS(drv, name) ((drv)->name != NULL)

/* Opens the driver named by `which`: "auto", "emulated" or a path. exe_dir is the directory of
 * the gpu-server binary (the emulated driver is <exe_dir>/../lib/emulated/libcuda.so.1).
 * Says nothing on success: gpu-server's main process prints which driver it chose.
 * On success the driver is initialised (cuInit(0)) and has at least one device.
 * Returns 0, or -1 with a logged reason. */
int vg_drv_open(struct vg_drv *drv, const char *which, const char *exe_dir);
/* Opens the driver an earlier vg_drv_open chose (its path and kind), without the driver line:
 * how each session process opens what the start-up probe picked. 0 or -1 (logged). */
int vg_drv_reopen(struct vg_drv *drv, const char *path, const char *kind);
void vg_drv_close(struct vg_drv *drv);

#endif
