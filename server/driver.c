#include "driver.h"

#include <dlfcn.h>
#include <limits.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "log.h"

typedef CUresult (*vg_getproc_fn)(const char *, void **, int, cuuint64_t, CUdriverProcAddressQueryResult *);

/* dlsym of the name cuda.h's macros give (cuMemAlloc -> cuMemAlloc_v2) is exactly the ABI cuda.h
 * declares. cuGetProcAddress by base name at CUDA_VERSION is not always: at 13000 it gives
 * cuCtxSynchronize_v2(CUcontext) for cuda.h's cuCtxSynchronize(void). So dlsym comes first, and
 * cuGetProcAddress only finds what a driver does not export by name. */
static void *resolve(void *dl, vg_getproc_fn getproc, const char *base, const char *versioned, int version)
{
    void *fn = dlsym(dl, versioned);
    if (fn || !getproc)
        return fn;
    CUdriverProcAddressQueryResult status = CU_GET_PROC_ADDRESS_SYMBOL_NOT_FOUND;
    int per_thread = strstr(versioned, "_ptsz") || strstr(versioned, "_ptds");
    cuuint64_t flags = per_thread ? CU_GET_PROC_ADDRESS_PER_THREAD_DEFAULT_STREAM : CU_GET_PROC_ADDRESS_LEGACY_STREAM;
    if (version > 0 && getproc(base, &fn, version, flags, &status) == CUDA_SUCCESS &&
        status == CU_GET_PROC_ADDRESS_SUCCESS)
        return fn;
    return NULL;
}

/* Loads one candidate; returns 0 when it initialises and has a device. quiet: a probe (no error
 * messages). */
static int try_open(struct vg_drv *drv, const char *path, const char *kind, int quiet)
{
    memset(drv, 0, sizeof *drv);
    snprintf(drv->desc, sizeof drv->desc, "%s (%s)", kind, path);
    snprintf(drv->path, sizeof drv->path, "%s", path);
    snprintf(drv->kind, sizeof drv->kind, "%s", kind);
    void *dl = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (!dl) {
        if (!quiet)
            vg_error("cannot load driver %s: %s", path, dlerror());
        return -1;
    }
    vg_getproc_fn getproc = (vg_getproc_fn)dlsym(dl, "cuGetProcAddress_v2");
#define VG_DRV_RESOLVE(name, base, version) drv->name = (__typeof__(drv->name))resolve(dl, getproc, base, #name, version);
    VG_DRV_FUNCS(VG_DRV_RESOLVE)
#undef VG_DRV_RESOLVE
    drv->dl = dl;
    if (!drv->cuInit || !drv->cuDeviceGetCount || !drv->cuCtxSetCurrent) {
        if (!quiet)
            vg_error("driver %s lacks cuInit/cuDeviceGetCount/cuCtxSetCurrent", path);
        goto fail;
    }
    CUresult rc = drv->cuInit(0);
    if (rc != CUDA_SUCCESS) {
        if (!quiet)
            vg_error("driver %s: cuInit failed (CUresult %d)", path, (int)rc);
        goto fail;
    }
    int count = 0;
    rc = drv->cuDeviceGetCount(&count);
    if (rc != CUDA_SUCCESS || count < 1) {
        if (!quiet)
            vg_error("driver %s reports no device (CUresult %d, %d devices)", path, (int)rc, count);
        goto fail;
    }
    drv->device_count = count;
    return 0;
fail:
    dlclose(dl);
    memset(drv, 0, sizeof *drv);
    return -1;
}

/* True when the library that provides `fn` lives in our own build tree (the stub in lib/ or the
 * emulated GPU in lib/emulated/): LD_LIBRARY_PATH may make dlopen("libcuda.so.1") find them, and
 * loading the stub inside the server would forward calls to a server. */
static int is_ours(void *fn, const char *exe_dir)
{
    Dl_info info;
    char lib[4096], ours[PATH_MAX], theirs[PATH_MAX];
    if (!fn || !dladdr(fn, &info) || !info.dli_fname)
        return 0;
    snprintf(lib, sizeof lib, "%s/../lib", exe_dir);
    if (!realpath(lib, ours) || !realpath(info.dli_fname, theirs))
        return 0;
    size_t n = strlen(ours);
    return strncmp(ours, theirs, n) == 0 && theirs[n] == '/';
}

int vg_drv_open(struct vg_drv *drv, const char *which, const char *exe_dir)
{
    char emu[4096];
    snprintf(emu, sizeof emu, "%s/../lib/emulated/libcuda.so.1", exe_dir);
    if (strcmp(which, "auto") == 0) {
        /* A system driver without a usable device is normal on a GPU-less host: no error. */
        void *probe = dlopen("libcuda.so.1", RTLD_NOW | RTLD_LOCAL);
        int real = probe && !is_ours(dlsym(probe, "cuInit"), exe_dir);
        if (probe)
            dlclose(probe);
        if (real && try_open(drv, "libcuda.so.1", "NVIDIA driver", 1) == 0)
            return 0;
        return try_open(drv, emu, "emulated GPU", 0);
    }
    if (strcmp(which, "emulated") == 0)
        return try_open(drv, emu, "emulated GPU", 0);
    return try_open(drv, which, "driver", 0);
}

int vg_drv_reopen(struct vg_drv *drv, const char *path, const char *kind)
{
    return try_open(drv, path, kind, 0);
}

void vg_drv_close(struct vg_drv *drv)
{
    if (drv->dl)
        dlclose(drv->dl);
    memset(drv, 0, sizeof *drv);
}
