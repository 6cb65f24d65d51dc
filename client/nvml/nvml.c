/* The NVML stub (build/lib/libnvidia-ml.so.1): NVIDIA's management library as nvidia-smi and a
 * framework's memory and device queries use it, answered by gpu-server (protocol/vg_nvml.h).
 *
 * It talks to gpu-server with the CUDA stub's own connection code (client/conn.c, call.c), on a
 * session of its own: a program that loads both libraries has two sessions, and the NVML one
 * never creates a context. Devices are the session's: those the server (and, with tenants, the
 * tenant) gives it, numbered from 0. Memory is what the tenant sees (its limit as the total);
 * utilization and sensors are the GPU host's when it has a real NVML, NVML_ERROR_NOT_SUPPORTED
 * otherwise. Running processes: this process, when its NVML session holds device memory (for
 * now the stub's own session only; what other sessions of the tenant hold is the server's to
 * tell later). Functions beyond these (client/nvml/unsupported.h) answer
 * NVML_ERROR_NOT_SUPPORTED. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "call.h"
#include "coherent.h"
#include "conn.h"
#include "log.h"
#include "vg_nvml.h"

#define NVML_API __attribute__((visibility("default")))

/* The stub's marker: gpu-server never loads this library as the GPU host's NVML. */
NVML_API const int vgpu_nvml_stub = 1;

/* ---- what conn.c and call.c expect of the CUDA stub ---------------------------------------- */

uint64_t vg_stub_ctx(void)
{
    return 0; /* NVML calls need no context */
}

void vg_coh_enter(int device_work, const void *in, uint64_t in_len, void *out, uint64_t out_len)
{
    (void)device_work, (void)in, (void)in_len, (void)out, (void)out_len; /* no managed memory here */
}

/* ---- state ------------------------------------------------------------------------------------ */

#define MAX_DEVICES 64

struct nvmlDevice_st {
    unsigned index;
};

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER; /* guards init_count and sys */
static unsigned init_count;
static struct vg_nvml_system sys;
static struct nvmlDevice_st devices[MAX_DEVICES];

static nvmlReturn_t from_cu(CUresult rc)
{
    switch (rc) {
    case CUDA_SUCCESS: return NVML_SUCCESS;
    case CUDA_ERROR_NOT_SUPPORTED: return NVML_ERROR_NOT_SUPPORTED;
    case CUDA_ERROR_INVALID_DEVICE:
    case CUDA_ERROR_INVALID_VALUE: return NVML_ERROR_INVALID_ARGUMENT;
    case CUDA_ERROR_OUT_OF_MEMORY: return NVML_ERROR_MEMORY;
    case CUDA_ERROR_NO_DEVICE: return NVML_ERROR_DRIVER_NOT_LOADED;
    case CUDA_ERROR_DEVICE_UNAVAILABLE: return NVML_ERROR_GPU_IS_LOST;
    default: return NVML_ERROR_UNKNOWN;
    }
}

static int initialized(void)
{
    pthread_mutex_lock(&lock);
    int v = init_count > 0;
    pthread_mutex_unlock(&lock);
    return v;
}

static unsigned device_count(void)
{
    return sys.devices < MAX_DEVICES ? sys.devices : MAX_DEVICES;
}

/* ---- init ---------------------------------------------------------------------------------- */

NVML_API nvmlReturn_t nvmlInitWithFlags(unsigned int flags)
{
    (void)flags;
    pthread_mutex_lock(&lock);
    nvmlReturn_t r = NVML_SUCCESS;
    if (init_count == 0) {
        CUresult rc = vg_conn_connect();
        struct vg_cw w;
        if (rc == CUDA_SUCCESS) {
            vg_cw_init(&w, VG_CALL_vgNvmlSystem);
            vg_cw_out(&w, &sys, sizeof sys);
            rc = vg_cw_run(&w);
            vg_cw_done(&w);
        }
        r = rc == CUDA_SUCCESS ? NVML_SUCCESS : rc == CUDA_ERROR_NO_DEVICE ? NVML_ERROR_DRIVER_NOT_LOADED : from_cu(rc);
        for (unsigned i = 0; i < MAX_DEVICES; i++)
            devices[i].index = i;
    }
    if (r == NVML_SUCCESS)
        init_count++;
    pthread_mutex_unlock(&lock);
    return r;
}

NVML_API nvmlReturn_t nvmlInit_v2(void)
{
    return nvmlInitWithFlags(0);
}

NVML_API nvmlReturn_t nvmlInit(void)
{
    return nvmlInitWithFlags(0);
}

NVML_API nvmlReturn_t nvmlShutdown(void)
{
    pthread_mutex_lock(&lock);
    nvmlReturn_t r = init_count ? NVML_SUCCESS : NVML_ERROR_UNINITIALIZED;
    if (init_count)
        init_count--;
    pthread_mutex_unlock(&lock);
    return r;
}

NVML_API const char *nvmlErrorString(nvmlReturn_t result)
{
    switch (result) {
    case NVML_SUCCESS: return "Success";
    case NVML_ERROR_UNINITIALIZED: return "Uninitialized";
    case NVML_ERROR_INVALID_ARGUMENT: return "Invalid Argument";
    case NVML_ERROR_NOT_SUPPORTED: return "Not Supported";
    case NVML_ERROR_NO_PERMISSION: return "Insufficient Permissions";
    case NVML_ERROR_ALREADY_INITIALIZED: return "Already Initialized";
    case NVML_ERROR_NOT_FOUND: return "Not Found";
    case NVML_ERROR_INSUFFICIENT_SIZE: return "Insufficient Size";
    case NVML_ERROR_DRIVER_NOT_LOADED: return "Driver Not Loaded (no gpu-server reachable)";
    case NVML_ERROR_TIMEOUT: return "Timeout";
    case NVML_ERROR_GPU_IS_LOST: return "GPU is lost (the connection to gpu-server was lost)";
    case NVML_ERROR_MEMORY: return "Insufficient Memory";
    case NVML_ERROR_NO_DATA: return "No data";
    case NVML_ERROR_ARGUMENT_VERSION_MISMATCH: return "Argument version mismatch";
    case NVML_ERROR_FUNCTION_NOT_FOUND: return "Function Not Found";
    default: return "Unknown Error";
    }
}

/* ---- system ----------------------------------------------------------------------------------- */

static nvmlReturn_t put_string(char *dst, unsigned int length, const char *src)
{
    if (!dst)
        return NVML_ERROR_INVALID_ARGUMENT;
    if (strlen(src) + 1 > length)
        return NVML_ERROR_INSUFFICIENT_SIZE;
    memcpy(dst, src, strlen(src) + 1);
    return NVML_SUCCESS;
}

NVML_API nvmlReturn_t nvmlSystemGetDriverVersion(char *version, unsigned int length)
{
    if (!initialized())
        return NVML_ERROR_UNINITIALIZED;
    char v[sizeof sys.driver_version + 1];
    snprintf(v, sizeof v, "%.*s", (int)sizeof sys.driver_version, sys.driver_version);
    return put_string(version, length, v);
}

NVML_API nvmlReturn_t nvmlSystemGetNVMLVersion(char *version, unsigned int length)
{
    if (!initialized())
        return NVML_ERROR_UNINITIALIZED;
    char v[sizeof sys.driver_version + 8];
    snprintf(v, sizeof v, "12.%.*s", (int)sizeof sys.driver_version, sys.driver_version);
    return put_string(version, length, v);
}

NVML_API nvmlReturn_t nvmlSystemGetCudaDriverVersion(int *cudaDriverVersion)
{
    if (!initialized())
        return NVML_ERROR_UNINITIALIZED;
    if (!cudaDriverVersion)
        return NVML_ERROR_INVALID_ARGUMENT;
    *cudaDriverVersion = sys.cuda_version;
    return NVML_SUCCESS;
}

NVML_API nvmlReturn_t nvmlSystemGetCudaDriverVersion_v2(int *cudaDriverVersion)
{
    return nvmlSystemGetCudaDriverVersion(cudaDriverVersion);
}

/* The only processes this NVML reports are this one (see the top). */
NVML_API nvmlReturn_t nvmlSystemGetProcessName(unsigned int pid, char *name, unsigned int length)
{
    if (!initialized())
        return NVML_ERROR_UNINITIALIZED;
    if (!name || length == 0)
        return NVML_ERROR_INVALID_ARGUMENT;
    if (pid != (unsigned)getpid())
        return NVML_ERROR_NOT_FOUND;
    char comm[256] = "";
    FILE *f = fopen("/proc/self/comm", "r");
    if (f) {
        if (!fgets(comm, sizeof comm, f))
            comm[0] = 0;
        fclose(f);
    }
    comm[strcspn(comm, "\n")] = 0;
    snprintf(name, length, "%s", comm);
    return NVML_SUCCESS;
}

NVML_API nvmlReturn_t nvmlUnitGetCount(unsigned int *unitCount)
{
    if (!initialized())
        return NVML_ERROR_UNINITIALIZED;
    if (!unitCount)
        return NVML_ERROR_INVALID_ARGUMENT;
    *unitCount = 0;
    return NVML_SUCCESS;
}

NVML_API nvmlReturn_t nvmlGetExcludedDeviceCount(unsigned int *deviceCount)
{
    return nvmlUnitGetCount(deviceCount);
}

/* ---- device handles ----------------------------------------------------------------------------- */

NVML_API nvmlReturn_t nvmlDeviceGetCount_v2(unsigned int *deviceCount)
{
    if (!initialized())
        return NVML_ERROR_UNINITIALIZED;
    if (!deviceCount)
        return NVML_ERROR_INVALID_ARGUMENT;
    *deviceCount = device_count();
    return NVML_SUCCESS;
}

NVML_API nvmlReturn_t nvmlDeviceGetCount(unsigned int *deviceCount)
{
    return nvmlDeviceGetCount_v2(deviceCount);
}

NVML_API nvmlReturn_t nvmlDeviceGetHandleByIndex_v2(unsigned int index, nvmlDevice_t *device)
{
    if (!initialized())
        return NVML_ERROR_UNINITIALIZED;
    if (!device || index >= device_count())
        return NVML_ERROR_INVALID_ARGUMENT;
    *device = &devices[index];
    return NVML_SUCCESS;
}

NVML_API nvmlReturn_t nvmlDeviceGetHandleByIndex(unsigned int index, nvmlDevice_t *device)
{
    return nvmlDeviceGetHandleByIndex_v2(index, device);
}

/* The device record from gpu-server. */
static nvmlReturn_t query(nvmlDevice_t device, struct vg_nvml_device *o)
{
    if (!initialized())
        return NVML_ERROR_UNINITIALIZED;
    if (!device || device < devices || device >= devices + device_count())
        return NVML_ERROR_INVALID_ARGUMENT;
    struct vg_cw w;
    vg_cw_init(&w, VG_CALL_vgNvmlDevice);
    vg_cw_arg(&w, device->index);
    vg_cw_out(&w, o, sizeof *o);
    CUresult rc = vg_cw_run(&w);
    vg_cw_done(&w);
    o->name[sizeof o->name - 1] = 0;
    return from_cu(rc);
}

static void pci_text(const struct vg_nvml_device *o, nvmlPciInfo_t *p)
{
    memset(p, 0, sizeof *p);
    p->domain = o->pci_domain;
    p->bus = o->pci_bus;
    p->device = o->pci_device;
    p->pciDeviceId = o->pci_device_id == VG_NVML_UNKNOWN ? 0 : o->pci_device_id;
    snprintf(p->busIdLegacy, sizeof p->busIdLegacy, "%04X:%02X:%02X.0", p->domain & 0xffff, p->bus & 0xff,
             p->device & 0xff);
    snprintf(p->busId, sizeof p->busId, "%08X:%02X:%02X.0", p->domain, p->bus & 0xff, p->device & 0xff);
}

/* A device whose record satisfies match; NOT_FOUND when none does. */
static nvmlReturn_t find(int (*match)(const struct vg_nvml_device *, const char *), const char *key,
                         nvmlDevice_t *device)
{
    if (!initialized())
        return NVML_ERROR_UNINITIALIZED;
    if (!key || !device)
        return NVML_ERROR_INVALID_ARGUMENT;
    for (unsigned i = 0; i < device_count(); i++) {
        struct vg_nvml_device o;
        nvmlReturn_t r = query(&devices[i], &o);
        if (r != NVML_SUCCESS)
            return r;
        if (match(&o, key)) {
            *device = &devices[i];
            return NVML_SUCCESS;
        }
    }
    return NVML_ERROR_NOT_FOUND;
}

static int uuid_is(const struct vg_nvml_device *o, const char *key)
{
    char text[VG_NVML_UUID_LEN];
    vg_nvml_uuid_text(o->uuid, text);
    return strcasecmp(text, key) == 0;
}

/* "0000:65:00.0", "00000000:65:00.0" or "65:00.0": compared as numbers. */
static int pci_is(const struct vg_nvml_device *o, const char *key)
{
    unsigned dom = 0, bus = 0, dev = 0, fn = 0;
    if (sscanf(key, "%x:%x:%x.%x", &dom, &bus, &dev, &fn) != 4) {
        dom = 0;
        if (sscanf(key, "%x:%x.%x", &bus, &dev, &fn) != 3)
            return 0;
    }
    return dom == o->pci_domain && bus == o->pci_bus && dev == o->pci_device && fn == 0;
}

NVML_API nvmlReturn_t nvmlDeviceGetHandleByUUID(const char *uuid, nvmlDevice_t *device)
{
    return find(uuid_is, uuid, device);
}

NVML_API nvmlReturn_t nvmlDeviceGetHandleByPciBusId_v2(const char *pciBusId, nvmlDevice_t *device)
{
    return find(pci_is, pciBusId, device);
}

NVML_API nvmlReturn_t nvmlDeviceGetHandleByPciBusId(const char *pciBusId, nvmlDevice_t *device)
{
    return find(pci_is, pciBusId, device);
}

NVML_API nvmlReturn_t nvmlDeviceGetIndex(nvmlDevice_t device, unsigned int *index)
{
    if (!initialized())
        return NVML_ERROR_UNINITIALIZED;
    if (!device || !index || device < devices || device >= devices + device_count())
        return NVML_ERROR_INVALID_ARGUMENT;
    *index = device->index;
    return NVML_SUCCESS;
}

NVML_API nvmlReturn_t nvmlDeviceGetMinorNumber(nvmlDevice_t device, unsigned int *minorNumber)
{
    return nvmlDeviceGetIndex(device, minorNumber);
}

/* ---- device queries: one record per call ------------------------------------------------------ */

/* Declares o, fetches it for device, and checks the output pointer. */
#define QUERY(out)                                   \
    struct vg_nvml_device o;                         \
    if (!(out))                                      \
        return initialized() ? NVML_ERROR_INVALID_ARGUMENT : NVML_ERROR_UNINITIALIZED; \
    nvmlReturn_t r = query(device, &o);              \
    if (r != NVML_SUCCESS)                           \
        return r

/* A figure the server could not tell. */
static nvmlReturn_t known(uint32_t v, unsigned int *out)
{
    if (v == VG_NVML_UNKNOWN)
        return NVML_ERROR_NOT_SUPPORTED;
    *out = v;
    return NVML_SUCCESS;
}

NVML_API nvmlReturn_t nvmlDeviceGetName(nvmlDevice_t device, char *name, unsigned int length)
{
    QUERY(name);
    return put_string(name, length, o.name);
}

NVML_API nvmlReturn_t nvmlDeviceGetUUID(nvmlDevice_t device, char *uuid, unsigned int length)
{
    QUERY(uuid);
    char text[VG_NVML_UUID_LEN];
    vg_nvml_uuid_text(o.uuid, text);
    return put_string(uuid, length, text);
}

NVML_API nvmlReturn_t nvmlDeviceGetPciInfo_v3(nvmlDevice_t device, nvmlPciInfo_t *pci)
{
    QUERY(pci);
    pci_text(&o, pci);
    return NVML_SUCCESS;
}

NVML_API nvmlReturn_t nvmlDeviceGetPciInfo_v2(nvmlDevice_t device, nvmlPciInfo_t *pci)
{
    return nvmlDeviceGetPciInfo_v3(device, pci);
}

NVML_API nvmlReturn_t nvmlDeviceGetMemoryInfo(nvmlDevice_t device, nvmlMemory_t *memory)
{
    QUERY(memory);
    memory->total = o.mem_total;
    memory->free = o.mem_free;
    memory->used = o.mem_total - o.mem_free;
    return NVML_SUCCESS;
}

NVML_API nvmlReturn_t nvmlDeviceGetMemoryInfo_v2(nvmlDevice_t device, nvmlMemory_v2_t *memory)
{
    if (memory && memory->version != nvmlMemory_v2)
        return NVML_ERROR_ARGUMENT_VERSION_MISMATCH;
    QUERY(memory);
    memory->total = o.mem_total;
    memory->reserved = o.mem_reserved;
    memory->free = o.mem_free;
    memory->used = o.mem_total - o.mem_free - (o.mem_reserved < o.mem_total - o.mem_free ? o.mem_reserved : 0);
    return NVML_SUCCESS;
}

NVML_API nvmlReturn_t nvmlDeviceGetUtilizationRates(nvmlDevice_t device, nvmlUtilization_t *utilization)
{
    QUERY(utilization);
    if (o.util_gpu == VG_NVML_UNKNOWN)
        return NVML_ERROR_NOT_SUPPORTED;
    utilization->gpu = o.util_gpu;
    utilization->memory = o.util_mem;
    return NVML_SUCCESS;
}

/* This process with what its session holds, when it holds any (see the top). */
static nvmlReturn_t processes(nvmlDevice_t device, unsigned int *count, void *infos, size_t size)
{
    QUERY(count);
    unsigned n = o.session_mem ? 1 : 0;
    if (*count < n || (n && !infos)) {
        *count = n;
        return NVML_ERROR_INSUFFICIENT_SIZE;
    }
    *count = n;
    if (n) {
        nvmlProcessInfo_t p = {.pid = (unsigned)getpid(), .usedGpuMemory = o.session_mem,
                               .gpuInstanceId = 0xffffffffu, .computeInstanceId = 0xffffffffu};
        memcpy(infos, &p, size);
    }
    return NVML_SUCCESS;
}

NVML_API nvmlReturn_t nvmlDeviceGetComputeRunningProcesses_v3(nvmlDevice_t device, unsigned int *infoCount,
                                                              nvmlProcessInfo_t *infos)
{
    return processes(device, infoCount, infos, sizeof *infos);
}

NVML_API nvmlReturn_t nvmlDeviceGetComputeRunningProcesses_v2(nvmlDevice_t device, unsigned int *infoCount,
                                                              nvmlProcessInfo_t *infos)
{
    return processes(device, infoCount, infos, sizeof *infos);
}

NVML_API nvmlReturn_t nvmlDeviceGetComputeRunningProcesses(nvmlDevice_t device, unsigned int *infoCount,
                                                           nvmlProcessInfo_v1_t *infos)
{
    return processes(device, infoCount, infos, sizeof *infos);
}

/* Graphics and MPS clients: none through vgpu. */
static nvmlReturn_t no_processes(nvmlDevice_t device, unsigned int *count)
{
    QUERY(count);
    *count = 0;
    return NVML_SUCCESS;
}

#define NO_PROCESSES(name, info_t)                                                                   \
    NVML_API nvmlReturn_t name(nvmlDevice_t device, unsigned int *infoCount, info_t *infos)          \
    {                                                                                               \
        (void)infos;                                                                                \
        return no_processes(device, infoCount);                                                     \
    }
NO_PROCESSES(nvmlDeviceGetGraphicsRunningProcesses_v3, nvmlProcessInfo_t)
NO_PROCESSES(nvmlDeviceGetGraphicsRunningProcesses_v2, nvmlProcessInfo_t)
NO_PROCESSES(nvmlDeviceGetGraphicsRunningProcesses, nvmlProcessInfo_v1_t)
NO_PROCESSES(nvmlDeviceGetMPSComputeRunningProcesses_v3, nvmlProcessInfo_t)
NO_PROCESSES(nvmlDeviceGetMPSComputeRunningProcesses_v2, nvmlProcessInfo_t)
NO_PROCESSES(nvmlDeviceGetMPSComputeRunningProcesses, nvmlProcessInfo_v1_t)

NVML_API nvmlReturn_t nvmlDeviceGetTemperature(nvmlDevice_t device, nvmlTemperatureSensors_t sensor, unsigned int *temp)
{
    QUERY(temp);
    if (sensor != NVML_TEMPERATURE_GPU)
        return NVML_ERROR_INVALID_ARGUMENT;
    return known(o.temperature_c, temp);
}

NVML_API nvmlReturn_t nvmlDeviceGetPowerUsage(nvmlDevice_t device, unsigned int *power)
{
    QUERY(power);
    return known(o.power_mw, power);
}

NVML_API nvmlReturn_t nvmlDeviceGetEnforcedPowerLimit(nvmlDevice_t device, unsigned int *limit)
{
    QUERY(limit);
    return known(o.power_limit_mw, limit);
}

NVML_API nvmlReturn_t nvmlDeviceGetFanSpeed(nvmlDevice_t device, unsigned int *speed)
{
    QUERY(speed);
    return known(o.fan_percent, speed);
}

NVML_API nvmlReturn_t nvmlDeviceGetPerformanceState(nvmlDevice_t device, nvmlPstates_t *pState)
{
    QUERY(pState);
    *pState = o.pstate == VG_NVML_UNKNOWN ? NVML_PSTATE_UNKNOWN : (nvmlPstates_t)o.pstate;
    return NVML_SUCCESS;
}

/* Settings of the GPU host that a tenant sees as fixed. */
NVML_API nvmlReturn_t nvmlDeviceGetPersistenceMode(nvmlDevice_t device, nvmlEnableState_t *mode)
{
    QUERY(mode);
    *mode = NVML_FEATURE_ENABLED; /* gpu-server keeps the driver loaded */
    return NVML_SUCCESS;
}

NVML_API nvmlReturn_t nvmlDeviceGetDisplayActive(nvmlDevice_t device, nvmlEnableState_t *isActive)
{
    QUERY(isActive);
    *isActive = NVML_FEATURE_DISABLED;
    return NVML_SUCCESS;
}

NVML_API nvmlReturn_t nvmlDeviceGetDisplayMode(nvmlDevice_t device, nvmlEnableState_t *display)
{
    return nvmlDeviceGetDisplayActive(device, display);
}

NVML_API nvmlReturn_t nvmlDeviceGetComputeMode(nvmlDevice_t device, nvmlComputeMode_t *mode)
{
    QUERY(mode);
    *mode = NVML_COMPUTEMODE_DEFAULT;
    return NVML_SUCCESS;
}

static nvmlReturn_t clock_of(const struct vg_nvml_device *o, nvmlClockType_t type, unsigned int *clock)
{
    switch (type) {
    case NVML_CLOCK_GRAPHICS:
    case NVML_CLOCK_SM: return known(o->sm_clock_mhz, clock);
    case NVML_CLOCK_MEM: return known(o->mem_clock_mhz, clock);
    default: return NVML_ERROR_NOT_SUPPORTED;
    }
}

/* The CUDA driver tells one clock per domain (its maximum): current and maximum alike. */
NVML_API nvmlReturn_t nvmlDeviceGetClockInfo(nvmlDevice_t device, nvmlClockType_t type, unsigned int *clock)
{
    QUERY(clock);
    return clock_of(&o, type, clock);
}

NVML_API nvmlReturn_t nvmlDeviceGetMaxClockInfo(nvmlDevice_t device, nvmlClockType_t type, unsigned int *clock)
{
    QUERY(clock);
    return clock_of(&o, type, clock);
}

NVML_API nvmlReturn_t nvmlDeviceGetCudaComputeCapability(nvmlDevice_t device, int *major, int *minor)
{
    QUERY(major && minor);
    *major = o.cc_major;
    *minor = o.cc_minor;
    return NVML_SUCCESS;
}

NVML_API nvmlReturn_t nvmlDeviceGetArchitecture(nvmlDevice_t device, nvmlDeviceArchitecture_t *arch)
{
    QUERY(arch);
    static const struct {
        int major, minor;
        unsigned arch;
    } table[] = {{7, 0, NVML_DEVICE_ARCH_VOLTA},  {7, 2, NVML_DEVICE_ARCH_VOLTA},  {7, 5, NVML_DEVICE_ARCH_TURING},
                 {8, 0, NVML_DEVICE_ARCH_AMPERE}, {8, 6, NVML_DEVICE_ARCH_AMPERE}, {8, 7, NVML_DEVICE_ARCH_AMPERE},
                 {8, 9, NVML_DEVICE_ARCH_ADA},    {9, 0, NVML_DEVICE_ARCH_HOPPER}};
    *arch = o.cc_major >= 10 ? NVML_DEVICE_ARCH_BLACKWELL : NVML_DEVICE_ARCH_UNKNOWN;
    for (size_t i = 0; i < sizeof table / sizeof table[0]; i++)
        if (table[i].major == o.cc_major && table[i].minor == o.cc_minor)
            *arch = table[i].arch;
    return NVML_SUCCESS;
}

NVML_API nvmlReturn_t nvmlDeviceGetNumGpuCores(nvmlDevice_t device, unsigned int *numCores)
{
    QUERY(numCores);
    return NVML_ERROR_NOT_SUPPORTED; /* cores per multiprocessor are not the driver's to tell */
}

/* ---- the rest: NVML_ERROR_NOT_SUPPORTED, named once in the log -------------------------------- */

static void unsupported(const char *name, int *said)
{
    if (!__atomic_exchange_n(said, 1, __ATOMIC_RELAXED))
        vg_info("%s is not supported by vgpu's NVML; returning NVML_ERROR_NOT_SUPPORTED", name);
}

/* Any arguments: a function of the C calling convention may ignore what it is passed. */
#define X(name)                                         \
    NVML_API nvmlReturn_t name(void);                   \
    NVML_API nvmlReturn_t name(void)                    \
    {                                                   \
        static int said;                                \
        unsupported(#name, &said);                      \
        return NVML_ERROR_NOT_SUPPORTED;                \
    }
#include "unsupported.h"
#undef X
