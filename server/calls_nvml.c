/* The NVML stub's two calls (protocol/vg_nvml.h): what nvidia-smi and a framework's memory
 * queries ask, answered for the session's devices. Identity, compute capability and clocks come
 * from the CUDA driver; memory is the driver's as the session's tenant sees it (sess_mem_view);
 * utilization, temperature, power, fan and performance state come from the GPU host's own NVML
 * when it has one (a real GPU), matched to the CUDA device by UUID, and are unknown otherwise
 * (the emulated GPU). The host's NVML is opened once per session process, and never when it is
 * vgpu's own stub (which exports vgpu_nvml_stub). */
#include <dlfcn.h>
#include <stdio.h>
#include <string.h>

#include "log.h"
#include "session_priv.h"
#include "vg_nvml.h"

#pragma GCC diagnostic ignored "-Wdeprecated-declarations"

static struct host_nvml {
    int tried, ok;
    nvmlReturn_t (*by_uuid)(const char *, nvmlDevice_t *);
    nvmlReturn_t (*memory)(nvmlDevice_t, nvmlMemory_t *);
    nvmlReturn_t (*util)(nvmlDevice_t, nvmlUtilization_t *);
    nvmlReturn_t (*temp)(nvmlDevice_t, nvmlTemperatureSensors_t, unsigned *);
    nvmlReturn_t (*power)(nvmlDevice_t, unsigned *);
    nvmlReturn_t (*limit)(nvmlDevice_t, unsigned *);
    nvmlReturn_t (*fan)(nvmlDevice_t, unsigned *);
    nvmlReturn_t (*pstate)(nvmlDevice_t, nvmlPstates_t *);
    nvmlReturn_t (*pci)(nvmlDevice_t, nvmlPciInfo_t *);
    nvmlReturn_t (*driver_version)(char *, unsigned);
} host;

/* The session process runs one call at a time: no lock. */
static int host_nvml(void)
{
    if (host.tried)
        return host.ok;
    host.tried = 1;
    void *dl = dlopen("libnvidia-ml.so.1", RTLD_NOW | RTLD_LOCAL);
    if (!dl)
        return 0;
    if (dlsym(dl, "vgpu_nvml_stub")) {
        dlclose(dl);
        return 0;
    }
    nvmlReturn_t (*init)(void) = (nvmlReturn_t (*)(void))dlsym(dl, "nvmlInit_v2");
#define SYM(field, name) host.field = (typeof(host.field))dlsym(dl, name)
    SYM(by_uuid, "nvmlDeviceGetHandleByUUID");
    SYM(memory, "nvmlDeviceGetMemoryInfo");
    SYM(util, "nvmlDeviceGetUtilizationRates");
    SYM(temp, "nvmlDeviceGetTemperature");
    SYM(power, "nvmlDeviceGetPowerUsage");
    SYM(limit, "nvmlDeviceGetEnforcedPowerLimit");
    SYM(fan, "nvmlDeviceGetFanSpeed");
    SYM(pstate, "nvmlDeviceGetPerformanceState");
    SYM(pci, "nvmlDeviceGetPciInfo_v3");
    SYM(driver_version, "nvmlSystemGetDriverVersion");
#undef SYM
    if (!init || !host.by_uuid || init() != NVML_SUCCESS) {
        vg_info("the GPU host's NVML does not initialize: utilization and sensors are unknown");
        return 0;
    }
    host.ok = 1;
    return 1;
}

/* args: none; reply bulk: struct vg_nvml_system. */
VG_SERVER_CALL(vgNvmlSystem)
{
    ARGS(0);
    NEED(cuDriverGetVersion);
    struct vg_nvml_system *o = (struct vg_nvml_system *)vg_reply_bulk(res, sizeof *o);
    if (!o)
        return CUDA_ERROR_OUT_OF_MEMORY;
    memset(o, 0, sizeof *o);
    int v = 0;
    CUresult rc = s->drv->cuDriverGetVersion(&v);
    if (rc != CUDA_SUCCESS) {
        res->bulk_len = 0;
        return rc;
    }
    o->cuda_version = v;
    o->devices = (uint32_t)s->drv->device_count;
    if (!host_nvml() || !host.driver_version ||
        host.driver_version(o->driver_version, sizeof o->driver_version) != NVML_SUCCESS)
        snprintf(o->driver_version, sizeof o->driver_version, "vgpu (CUDA %d.%d)", v / 1000, v % 1000 / 10);
    return CUDA_SUCCESS;
}

static int attr(const struct vg_drv *d, CUdevice dev, CUdevice_attribute a)
{
    int v = -1;
    return d->cuDeviceGetAttribute(&v, a, dev) == CUDA_SUCCESS ? v : -1;
}

/* Free bytes of a device from the CUDA driver, which needs a context: a session context of
 * that device if it has one, else a short-lived one. */
static CUresult driver_free(struct vg_sess *s, int dev, size_t *free_bytes)
{
    const struct vg_drv *d = s->drv;
    if (!d->cuMemGetInfo || !d->cuCtxCreate || !d->cuCtxDestroy || !d->cuCtxSetCurrent)
        return CUDA_ERROR_NOT_SUPPORTED;
    CUcontext c = NULL, made = NULL;
    for (uint32_t i = 0; i < s->nh && !c; i++)
        if (s->h[i].live && s->h[i].type == H_CTX && s->h[i].device == dev)
            c = s->h[i].real;
    if (!c) {
        CUresult rc = d->cuCtxCreate(&made, NULL, 0, (CUdevice)dev);
        if (rc != CUDA_SUCCESS)
            return rc;
        c = made;
    }
    size_t total = 0;
    CUresult rc = d->cuCtxSetCurrent(c);
    if (rc == CUDA_SUCCESS)
        rc = d->cuMemGetInfo(free_bytes, &total);
    if (made)
        d->cuCtxDestroy(made);
    sess_set_ctx(s, s->cur_ctx); /* the call's own context again */
    return rc;
}

/* args: device; reply bulk: struct vg_nvml_device. */
VG_SERVER_CALL(vgNvmlDevice)
{
    ARGS(1);
    const struct vg_drv *d = s->drv;
    if (!d->cuDeviceGet || !d->cuDeviceGetName || !d->cuDeviceGetUuid || !d->cuDeviceGetAttribute ||
        !d->cuDeviceTotalMem)
        return CUDA_ERROR_NOT_SUPPORTED;
    if (in->args[0] >= SESS_MAX_DEVICES || (int)in->args[0] >= d->device_count)
        return CUDA_ERROR_INVALID_DEVICE;
    int ordinal = (int)in->args[0];
    CUdevice dev;
    CUresult rc = d->cuDeviceGet(&dev, ordinal);
    if (rc != CUDA_SUCCESS)
        return rc;
    struct vg_nvml_device *o = (struct vg_nvml_device *)vg_reply_bulk(res, sizeof *o);
    if (!o)
        return CUDA_ERROR_OUT_OF_MEMORY;
    memset(o, 0, sizeof *o);
    size_t total = 0, free_bytes = 0;
    CUuuid uuid;
    if ((rc = d->cuDeviceGetName(o->name, (int)sizeof o->name - 1, dev)) != CUDA_SUCCESS ||
        (rc = d->cuDeviceGetUuid(&uuid, dev)) != CUDA_SUCCESS || (rc = d->cuDeviceTotalMem(&total, dev)) != CUDA_SUCCESS) {
        res->bulk_len = 0;
        return rc;
    }
    memcpy(o->uuid, uuid.bytes, sizeof o->uuid);
    o->pci_domain = (uint32_t)attr(d, dev, CU_DEVICE_ATTRIBUTE_PCI_DOMAIN_ID);
    o->pci_bus = (uint32_t)attr(d, dev, CU_DEVICE_ATTRIBUTE_PCI_BUS_ID);
    o->pci_device = (uint32_t)attr(d, dev, CU_DEVICE_ATTRIBUTE_PCI_DEVICE_ID);
    o->cc_major = attr(d, dev, CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR);
    o->cc_minor = attr(d, dev, CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR);
    o->multiprocessors = (uint32_t)attr(d, dev, CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT);
    int khz = attr(d, dev, CU_DEVICE_ATTRIBUTE_CLOCK_RATE), mem_khz = attr(d, dev, CU_DEVICE_ATTRIBUTE_MEMORY_CLOCK_RATE);
    o->sm_clock_mhz = khz > 0 ? (uint32_t)(khz / 1000) : VG_NVML_UNKNOWN;
    o->mem_clock_mhz = mem_khz > 0 ? (uint32_t)(mem_khz / 1000) : VG_NVML_UNKNOWN;
    o->pci_device_id = o->util_gpu = o->util_mem = o->temperature_c = o->power_mw = o->power_limit_mw =
        o->fan_percent = o->pstate = VG_NVML_UNKNOWN;

    nvmlDevice_t h = NULL;
    char text[VG_NVML_UUID_LEN];
    vg_nvml_uuid_text(o->uuid, text);
    int have_host = host_nvml() && host.by_uuid(text, &h) == NVML_SUCCESS;
    nvmlMemory_t m;
    if (have_host && host.memory && host.memory(h, &m) == NVML_SUCCESS) {
        total = (size_t)m.total;
        free_bytes = (size_t)m.free;
    } else if (driver_free(s, ordinal, &free_bytes) != CUDA_SUCCESS) {
        free_bytes = total; /* nothing better to say: the device as if idle */
    }
    if (have_host) {
        nvmlUtilization_t u;
        nvmlPciInfo_t pci;
        nvmlPstates_t ps;
        if (host.util && host.util(h, &u) == NVML_SUCCESS)
            o->util_gpu = u.gpu, o->util_mem = u.memory;
        if (host.pci && host.pci(h, &pci) == NVML_SUCCESS)
            o->pci_device_id = pci.pciDeviceId;
        if (host.pstate && host.pstate(h, &ps) == NVML_SUCCESS)
            o->pstate = (uint32_t)ps;
        unsigned v;
        if (host.temp && host.temp(h, NVML_TEMPERATURE_GPU, &v) == NVML_SUCCESS)
            o->temperature_c = v;
        if (host.power && host.power(h, &v) == NVML_SUCCESS)
            o->power_mw = v;
        if (host.limit && host.limit(h, &v) == NVML_SUCCESS)
            o->power_limit_mw = v;
        if (host.fan && host.fan(h, &v) == NVML_SUCCESS)
            o->fan_percent = v;
    }
    sess_mem_view(s, ordinal, &free_bytes, &total);
    o->mem_total = total;
    o->mem_free = free_bytes < total ? free_bytes : total;
    o->session_mem = vg_sess_mem_charged(s, ordinal);
    return CUDA_SUCCESS;
}
