/* emu_core: initialization, the live-object set, devices and their attributes, error strings. */
#include "emu.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"

/* ---- live-object set: open addressing on the pointer value, guarded by obj_lock ---- */

struct obj_slot {
    uintptr_t key;   /* 0 empty, 1 tombstone */
    int kind;
};

static pthread_mutex_t obj_lock = PTHREAD_MUTEX_INITIALIZER;
static struct obj_slot *obj_slots;
static size_t obj_cap, obj_used; /* used counts live entries and tombstones */

static size_t obj_hash(uintptr_t k)
{
    k ^= k >> 33;
    k *= 0xff51afd7ed558ccdull;
    k ^= k >> 33;
    return (size_t)k;
}

static int obj_grow(void)
{
    size_t ncap = obj_cap ? obj_cap * 2 : 256;
    struct obj_slot *n = calloc(ncap, sizeof *n);
    if (!n)
        return -1;
    size_t live = 0;
    for (size_t i = 0; i < obj_cap; i++) {
        if (obj_slots[i].key <= 1)
            continue;
        size_t j = obj_hash(obj_slots[i].key) & (ncap - 1);
        while (n[j].key)
            j = (j + 1) & (ncap - 1);
        n[j] = obj_slots[i];
        live++;
    }
    free(obj_slots);
    obj_slots = n;
    obj_cap = ncap;
    obj_used = live;
    return 0;
}

int emu_obj_add(const void *obj, int kind)
{
    uintptr_t k = (uintptr_t)obj;
    pthread_mutex_lock(&obj_lock);
    if ((obj_used + 1) * 2 > obj_cap && obj_grow() != 0) {
        pthread_mutex_unlock(&obj_lock);
        return -1;
    }
    size_t j = obj_hash(k) & (obj_cap - 1);
    while (obj_slots[j].key > 1 && obj_slots[j].key != k)
        j = (j + 1) & (obj_cap - 1);
    if (obj_slots[j].key == 0)
        obj_used++;
    obj_slots[j].key = k;
    obj_slots[j].kind = kind;
    pthread_mutex_unlock(&obj_lock);
    return 0;
}

static struct obj_slot *obj_find(uintptr_t k)
{
    if (!obj_cap || k <= 1)
        return NULL;
    size_t j = obj_hash(k) & (obj_cap - 1);
    for (size_t n = 0; n < obj_cap && obj_slots[j].key; n++) {
        if (obj_slots[j].key == k)
            return &obj_slots[j];
        j = (j + 1) & (obj_cap - 1);
    }
    return NULL;
}

void emu_obj_del(const void *obj)
{
    pthread_mutex_lock(&obj_lock);
    struct obj_slot *s = obj_find((uintptr_t)obj);
    if (s)
        s->key = 1;
    pthread_mutex_unlock(&obj_lock);
}

int emu_obj_kind(const void *obj)
{
    pthread_mutex_lock(&obj_lock);
    struct obj_slot *s = obj_find((uintptr_t)obj);
    int kind = s ? s->kind : 0;
    pthread_mutex_unlock(&obj_lock);
    return kind;
}

int emu_obj_is(const void *obj, int kind)
{
    pthread_mutex_lock(&obj_lock);
    struct obj_slot *s = obj_find((uintptr_t)obj);
    int r = s && s->kind == kind;
    pthread_mutex_unlock(&obj_lock);
    return r;
}

/* ---- initialization and devices ---- */

static pthread_once_t init_once = PTHREAD_ONCE_INIT;
static CUresult init_result = CUDA_ERROR_NOT_INITIALIZED;
static _Atomic int initialized;
static int device_count;
static unsigned worker_count;
static emu_device devices[EMU_MAX_DEVICES];

/* Parses "4G", "512M", "1048576": returns 0 on success. */
static int parse_size(const char *s, size_t *out)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || end == s)
        return -1;
    unsigned long long mult = 1;
    switch (toupper((unsigned char)*end)) {
    case 'K': mult = 1ull << 10; end++; break;
    case 'M': mult = 1ull << 20; end++; break;
    case 'G': mult = 1ull << 30; end++; break;
    case 'T': mult = 1ull << 40; end++; break;
    case '\0': break;
    default: return -1;
    }
    if (toupper((unsigned char)*end) == 'B' || toupper((unsigned char)*end) == 'I')
        end++;
    if (*end || v == 0 || v > (1ull << 50) / mult)
        return -1;
    *out = (size_t)(v * mult);
    return 0;
}

static void do_init(void)
{
    vg_log_set_component("emu");
    size_t mem = (size_t)4 << 30;
    const char *env = getenv("VGPU_EMU_MEMORY");
    if (env && *env && parse_size(env, &mem) != 0) {
        vg_error("VGPU_EMU_MEMORY=%s is not a size (bytes with optional K/M/G suffix)", env);
        init_result = CUDA_ERROR_INVALID_VALUE;
        return;
    }
    int count = 1;
    env = getenv("VGPU_EMU_DEVICES");
    if (env && *env) {
        char *end;
        long v = strtol(env, &end, 10);
        if (*end || v < 0 || v > EMU_MAX_DEVICES) {
            vg_error("VGPU_EMU_DEVICES=%s must be 0..%d", env, EMU_MAX_DEVICES);
            init_result = CUDA_ERROR_INVALID_VALUE;
            return;
        }
        count = (int)v;
    }
    if (count == 0) {
        init_result = CUDA_ERROR_NO_DEVICE;
        return;
    }
    int host_count = count; /* the shared capacity segment covers the host's devices */
    /* CUDA_VISIBLE_DEVICES, as NVIDIA's driver reads it: the listed devices, renumbered from 0;
     * the list ends at the first entry that is not a device (gpu-server uses it to show a
     * tenant only its devices). */
    int physical[EMU_MAX_DEVICES];
    for (int i = 0; i < count; i++)
        physical[i] = i;
    env = getenv("CUDA_VISIBLE_DEVICES");
    if (env) {
        int visible = 0;
        const char *p = env;
        while (*p && visible < EMU_MAX_DEVICES) {
            char *end;
            long v = strtol(p, &end, 10);
            if (end == p || v < 0 || v >= count || (*end && *end != ','))
                break;
            int dup = 0;
            for (int k = 0; k < visible; k++)
                dup |= physical[k] == (int)v;
            if (dup)
                break;
            physical[visible++] = (int)v;
            p = *end ? end + 1 : end;
        }
        count = visible;
        if (count == 0) {
            init_result = CUDA_ERROR_NO_DEVICE;
            return;
        }
    }
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    worker_count = cpus > 0 ? (unsigned)cpus : 1;
    for (int i = 0; i < count; i++) {
        devices[i].ordinal = i;
        devices[i].physical = physical[i];
        devices[i].total_mem = mem;
        pthread_mutex_init(&devices[i].primary_lock, NULL);
    }
    device_count = count;
    emu_capacity_init(host_count, mem);
    vg_info("emulated GPU: %d device(s), %zu bytes each, %u workers", count, mem, worker_count);
    init_result = CUDA_SUCCESS;
    atomic_store(&initialized, 1);
}

CUresult CUDAAPI cuInit(unsigned int flags)
{
    if (flags != 0)
        return CUDA_ERROR_INVALID_VALUE;
    pthread_once(&init_once, do_init);
    return init_result;
}

CUresult emu_check_init(void)
{
    return atomic_load(&initialized) ? CUDA_SUCCESS : CUDA_ERROR_NOT_INITIALIZED;
}

CUresult emu_obj_resolve(const void *h, int kind, CUresult bad, void **out)
{
    CUresult r = emu_check_init();
    if (r)
        return r;
    if (!h || !emu_obj_is(h, kind))
        return bad;
    *out = (void *)h;
    return CUDA_SUCCESS;
}

CUresult emu_device_resolve(CUdevice ordinal, emu_device **out)
{
    CUresult r = emu_check_init();
    if (r)
        return r;
    *out = emu_device_at(ordinal);
    return *out ? CUDA_SUCCESS : CUDA_ERROR_INVALID_DEVICE;
}

emu_device *emu_device_at(CUdevice ordinal)
{
    if (!atomic_load(&initialized) || ordinal < 0 || ordinal >= device_count)
        return NULL;
    return &devices[ordinal];
}

int emu_device_count(void)
{
    return device_count;
}

unsigned emu_workers(void)
{
    return worker_count ? worker_count : 1;
}

CUresult CUDAAPI cuDriverGetVersion(int *version)
{
    if (!version)
        return CUDA_ERROR_INVALID_VALUE;
    *version = CUDA_VERSION;
    return CUDA_SUCCESS;
}

CUresult CUDAAPI cuDeviceGetCount(int *count)
{
    CUresult r = emu_check_init();
    if (r)
        return r;
    if (!count)
        return CUDA_ERROR_INVALID_VALUE;
    *count = device_count;
    return CUDA_SUCCESS;
}

CUresult CUDAAPI cuDeviceGet(CUdevice *device, int ordinal)
{
    CUresult r = emu_check_init();
    if (r)
        return r;
    if (!device)
        return CUDA_ERROR_INVALID_VALUE;
    if (ordinal < 0 || ordinal >= device_count)
        return CUDA_ERROR_INVALID_DEVICE;
    *device = ordinal;
    return CUDA_SUCCESS;
}

static CUresult check_device(CUdevice dev)
{
    CUresult r = emu_check_init();
    if (r)
        return r;
    return emu_device_at(dev) ? CUDA_SUCCESS : CUDA_ERROR_INVALID_DEVICE;
}

CUresult CUDAAPI cuDeviceGetName(char *name, int len, CUdevice dev)
{
    CUresult r = check_device(dev);
    if (r)
        return r;
    if (!name || len <= 0)
        return CUDA_ERROR_INVALID_VALUE;
    snprintf(name, (size_t)len, "vgpu Emulated GPU");
    return CUDA_SUCCESS;
}

CUresult CUDAAPI cuDeviceTotalMem(size_t *bytes, CUdevice dev)
{
    CUresult r = check_device(dev);
    if (r)
        return r;
    if (!bytes)
        return CUDA_ERROR_INVALID_VALUE;
    *bytes = devices[dev].total_mem;
    return CUDA_SUCCESS;
}

CUresult CUDAAPI cuDeviceGetUuid(CUuuid *uuid, CUdevice dev)
{
    CUresult r = check_device(dev);
    if (r)
        return r;
    if (!uuid)
        return CUDA_ERROR_INVALID_VALUE;
    /* Stable per device of the host, and visibly not NVIDIA's (it starts with "vgpuemu"). */
    memset(uuid->bytes, 0, sizeof uuid->bytes);
    memcpy(uuid->bytes, "vgpuemu", 7);
    uuid->bytes[15] = (char)emu_device_at(dev)->physical;
    return CUDA_SUCCESS;
}

CUresult CUDAAPI cuDeviceGetLuid(char *luid, unsigned int *mask, CUdevice dev)
{
    (void)luid;
    (void)mask;
    CUresult r = check_device(dev);
    return r ? r : CUDA_ERROR_NOT_SUPPORTED; /* LUIDs exist only on Windows */
}

CUresult CUDAAPI cuDeviceComputeCapability(int *major, int *minor, CUdevice dev)
{
    CUresult r = check_device(dev);
    if (r)
        return r;
    if (!major || !minor)
        return CUDA_ERROR_INVALID_VALUE;
    *major = 7;
    *minor = 5;
    return CUDA_SUCCESS;
}

/* Attribute values of an emulated Turing-class part (compute 7.5, so that nvcc's default
 * compute_75 PTX loads). Unlisted attributes in range are features we lack: 0. */
static int attribute_value(CUdevice_attribute a, int dev)
{
    switch (a) {
    case CU_DEVICE_ATTRIBUTE_MAX_THREADS_PER_BLOCK: return 1024;
    case CU_DEVICE_ATTRIBUTE_MAX_BLOCK_DIM_X: return 1024;
    case CU_DEVICE_ATTRIBUTE_MAX_BLOCK_DIM_Y: return 1024;
    case CU_DEVICE_ATTRIBUTE_MAX_BLOCK_DIM_Z: return 64;
    case CU_DEVICE_ATTRIBUTE_MAX_GRID_DIM_X: return 2147483647;
    case CU_DEVICE_ATTRIBUTE_MAX_GRID_DIM_Y: return 65535;
    case CU_DEVICE_ATTRIBUTE_MAX_GRID_DIM_Z: return 65535;
    case CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_BLOCK: return EMU_SHARED_PER_BLOCK;
    case CU_DEVICE_ATTRIBUTE_TOTAL_CONSTANT_MEMORY: return 65536;
    case CU_DEVICE_ATTRIBUTE_WARP_SIZE: return 32;
    case CU_DEVICE_ATTRIBUTE_MAX_PITCH: return 2147483647;
    case CU_DEVICE_ATTRIBUTE_MAX_REGISTERS_PER_BLOCK: return 65536;
    case CU_DEVICE_ATTRIBUTE_CLOCK_RATE: return 1500000; /* kHz */
    case CU_DEVICE_ATTRIBUTE_TEXTURE_ALIGNMENT: return 512;
    case CU_DEVICE_ATTRIBUTE_GPU_OVERLAP: return 1;
    case CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT: return (int)emu_workers();
    case CU_DEVICE_ATTRIBUTE_KERNEL_EXEC_TIMEOUT: return 0;
    case CU_DEVICE_ATTRIBUTE_INTEGRATED: return 0;
    case CU_DEVICE_ATTRIBUTE_CAN_MAP_HOST_MEMORY: return 1;
    case CU_DEVICE_ATTRIBUTE_COMPUTE_MODE: return CU_COMPUTEMODE_DEFAULT;
    case CU_DEVICE_ATTRIBUTE_MAXIMUM_TEXTURE1D_WIDTH: return 131072;
    case CU_DEVICE_ATTRIBUTE_MAXIMUM_TEXTURE2D_WIDTH: return 131072;
    case CU_DEVICE_ATTRIBUTE_MAXIMUM_TEXTURE2D_HEIGHT: return 65536;
    case CU_DEVICE_ATTRIBUTE_MAXIMUM_TEXTURE3D_WIDTH: return 16384;
    case CU_DEVICE_ATTRIBUTE_MAXIMUM_TEXTURE3D_HEIGHT: return 16384;
    case CU_DEVICE_ATTRIBUTE_MAXIMUM_TEXTURE3D_DEPTH: return 16384;
    case CU_DEVICE_ATTRIBUTE_SURFACE_ALIGNMENT: return 512;
    /* Texture and surface limits: what cuArray3DCreate accepts (emu_array.c). */
    case CU_DEVICE_ATTRIBUTE_MAXIMUM_TEXTURE2D_LAYERED_WIDTH: return 32768;
    case CU_DEVICE_ATTRIBUTE_MAXIMUM_TEXTURE2D_LAYERED_HEIGHT: return 32768;
    case CU_DEVICE_ATTRIBUTE_MAXIMUM_TEXTURE2D_LAYERED_LAYERS: return 2048;
    case CU_DEVICE_ATTRIBUTE_MAXIMUM_TEXTURE1D_LAYERED_WIDTH: return 32768;
    case CU_DEVICE_ATTRIBUTE_MAXIMUM_TEXTURE1D_LAYERED_LAYERS: return 2048;
    case CU_DEVICE_ATTRIBUTE_MAXIMUM_TEXTURECUBEMAP_WIDTH: return 32768;
    case CU_DEVICE_ATTRIBUTE_MAXIMUM_TEXTURECUBEMAP_LAYERED_WIDTH: return 32768;
    case CU_DEVICE_ATTRIBUTE_MAXIMUM_TEXTURECUBEMAP_LAYERED_LAYERS: return 2046;
    case CU_DEVICE_ATTRIBUTE_MAXIMUM_TEXTURE1D_LINEAR_WIDTH: return 1 << 27;
    case CU_DEVICE_ATTRIBUTE_MAXIMUM_TEXTURE2D_LINEAR_WIDTH: return 131072;
    case CU_DEVICE_ATTRIBUTE_MAXIMUM_TEXTURE2D_LINEAR_HEIGHT: return 65000;
    case CU_DEVICE_ATTRIBUTE_MAXIMUM_TEXTURE2D_LINEAR_PITCH: return 2097120;
    case CU_DEVICE_ATTRIBUTE_MAXIMUM_TEXTURE2D_MIPMAPPED_WIDTH: return 32768;
    case CU_DEVICE_ATTRIBUTE_MAXIMUM_TEXTURE2D_MIPMAPPED_HEIGHT: return 32768;
    case CU_DEVICE_ATTRIBUTE_MAXIMUM_TEXTURE1D_MIPMAPPED_WIDTH: return 32768;
    case CU_DEVICE_ATTRIBUTE_MAXIMUM_TEXTURE2D_GATHER_WIDTH: return 32768;
    case CU_DEVICE_ATTRIBUTE_MAXIMUM_TEXTURE2D_GATHER_HEIGHT: return 32768;
    case CU_DEVICE_ATTRIBUTE_MAXIMUM_TEXTURE3D_WIDTH_ALTERNATE: return 8192;
    case CU_DEVICE_ATTRIBUTE_MAXIMUM_TEXTURE3D_HEIGHT_ALTERNATE: return 8192;
    case CU_DEVICE_ATTRIBUTE_MAXIMUM_TEXTURE3D_DEPTH_ALTERNATE: return 32768;
    case CU_DEVICE_ATTRIBUTE_MAXIMUM_SURFACE1D_WIDTH: return 32768;
    case CU_DEVICE_ATTRIBUTE_MAXIMUM_SURFACE2D_WIDTH: return 131072;
    case CU_DEVICE_ATTRIBUTE_MAXIMUM_SURFACE2D_HEIGHT: return 65536;
    case CU_DEVICE_ATTRIBUTE_MAXIMUM_SURFACE3D_WIDTH: return 16384;
    case CU_DEVICE_ATTRIBUTE_MAXIMUM_SURFACE3D_HEIGHT: return 16384;
    case CU_DEVICE_ATTRIBUTE_MAXIMUM_SURFACE3D_DEPTH: return 16384;
    case CU_DEVICE_ATTRIBUTE_MAXIMUM_SURFACE1D_LAYERED_WIDTH: return 32768;
    case CU_DEVICE_ATTRIBUTE_MAXIMUM_SURFACE1D_LAYERED_LAYERS: return 2048;
    case CU_DEVICE_ATTRIBUTE_MAXIMUM_SURFACE2D_LAYERED_WIDTH: return 32768;
    case CU_DEVICE_ATTRIBUTE_MAXIMUM_SURFACE2D_LAYERED_HEIGHT: return 32768;
    case CU_DEVICE_ATTRIBUTE_MAXIMUM_SURFACE2D_LAYERED_LAYERS: return 2048;
    case CU_DEVICE_ATTRIBUTE_MAXIMUM_SURFACECUBEMAP_WIDTH: return 32768;
    case CU_DEVICE_ATTRIBUTE_MAXIMUM_SURFACECUBEMAP_LAYERED_WIDTH: return 32768;
    case CU_DEVICE_ATTRIBUTE_MAXIMUM_SURFACECUBEMAP_LAYERED_LAYERS: return 2046;
    case CU_DEVICE_ATTRIBUTE_CONCURRENT_KERNELS: return 1;
    case CU_DEVICE_ATTRIBUTE_ECC_ENABLED: return 0;
    case CU_DEVICE_ATTRIBUTE_PCI_BUS_ID: return dev + 1;
    case CU_DEVICE_ATTRIBUTE_PCI_DEVICE_ID: return 0;
    case CU_DEVICE_ATTRIBUTE_TCC_DRIVER: return 0;
    case CU_DEVICE_ATTRIBUTE_MEMORY_CLOCK_RATE: return 5000000; /* kHz */
    case CU_DEVICE_ATTRIBUTE_GLOBAL_MEMORY_BUS_WIDTH: return 256;
    case CU_DEVICE_ATTRIBUTE_L2_CACHE_SIZE: return 4 * 1024 * 1024;
    case CU_DEVICE_ATTRIBUTE_MAX_THREADS_PER_MULTIPROCESSOR: return 1024;
    case CU_DEVICE_ATTRIBUTE_ASYNC_ENGINE_COUNT: return 1;
    case CU_DEVICE_ATTRIBUTE_UNIFIED_ADDRESSING: return 1;
    case CU_DEVICE_ATTRIBUTE_PCI_DOMAIN_ID: return 0;
    case CU_DEVICE_ATTRIBUTE_TEXTURE_PITCH_ALIGNMENT: return 32;
    case CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR: return 7;
    case CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR: return 5;
    case CU_DEVICE_ATTRIBUTE_STREAM_PRIORITIES_SUPPORTED: return 1;
    case CU_DEVICE_ATTRIBUTE_GLOBAL_L1_CACHE_SUPPORTED: return 1;
    case CU_DEVICE_ATTRIBUTE_LOCAL_L1_CACHE_SUPPORTED: return 1;
    case CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_MULTIPROCESSOR: return EMU_SHARED_PER_BLOCK_OPTIN;
    case CU_DEVICE_ATTRIBUTE_MAX_REGISTERS_PER_MULTIPROCESSOR: return 65536;
    case CU_DEVICE_ATTRIBUTE_MANAGED_MEMORY: return 1;
    case CU_DEVICE_ATTRIBUTE_MULTI_GPU_BOARD: return 0;
    case CU_DEVICE_ATTRIBUTE_MULTI_GPU_BOARD_GROUP_ID: return dev;
    case CU_DEVICE_ATTRIBUTE_HOST_NATIVE_ATOMIC_SUPPORTED: return 0;
    case CU_DEVICE_ATTRIBUTE_SINGLE_TO_DOUBLE_PRECISION_PERF_RATIO: return 32;
    case CU_DEVICE_ATTRIBUTE_PAGEABLE_MEMORY_ACCESS: return 0;
    case CU_DEVICE_ATTRIBUTE_CONCURRENT_MANAGED_ACCESS: return 1; /* it is host memory */
    case CU_DEVICE_ATTRIBUTE_COMPUTE_PREEMPTION_SUPPORTED: return 1;
    case CU_DEVICE_ATTRIBUTE_CAN_USE_HOST_POINTER_FOR_REGISTERED_MEM: return 1;
    case CU_DEVICE_ATTRIBUTE_COOPERATIVE_LAUNCH: return 1;
    case CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_BLOCK_OPTIN: return EMU_SHARED_PER_BLOCK_OPTIN;
    case CU_DEVICE_ATTRIBUTE_CAN_FLUSH_REMOTE_WRITES: return 0;
    case CU_DEVICE_ATTRIBUTE_HOST_REGISTER_SUPPORTED: return 1;
    case CU_DEVICE_ATTRIBUTE_PAGEABLE_MEMORY_ACCESS_USES_HOST_PAGE_TABLES: return 0;
    case CU_DEVICE_ATTRIBUTE_DIRECT_MANAGED_MEM_ACCESS_FROM_HOST: return 1;
    case CU_DEVICE_ATTRIBUTE_MAX_BLOCKS_PER_MULTIPROCESSOR: return 16;
    case CU_DEVICE_ATTRIBUTE_MAX_PERSISTING_L2_CACHE_SIZE: return 0;
    case CU_DEVICE_ATTRIBUTE_MAX_ACCESS_POLICY_WINDOW_SIZE: return 0;
    case CU_DEVICE_ATTRIBUTE_RESERVED_SHARED_MEMORY_PER_BLOCK: return 0;
    case CU_DEVICE_ATTRIBUTE_READ_ONLY_HOST_REGISTER_SUPPORTED: return 1;
    case CU_DEVICE_ATTRIBUTE_MEMORY_POOLS_SUPPORTED: return 1;
    case CU_DEVICE_ATTRIBUTE_VIRTUAL_MEMORY_MANAGEMENT_SUPPORTED: return 1;
    case CU_DEVICE_ATTRIBUTE_GPU_DIRECT_RDMA_SUPPORTED: return 0;
    case CU_DEVICE_ATTRIBUTE_TIMELINE_SEMAPHORE_INTEROP_SUPPORTED: return 0;
    case CU_DEVICE_ATTRIBUTE_CLUSTER_LAUNCH: return 0;
    case CU_DEVICE_ATTRIBUTE_DEFERRED_MAPPING_CUDA_ARRAY_SUPPORTED: return 0;
    case CU_DEVICE_ATTRIBUTE_NUMA_CONFIG: return 0;
    case CU_DEVICE_ATTRIBUTE_NUMA_ID: return -1;
    case CU_DEVICE_ATTRIBUTE_HOST_NUMA_ID: return -1;
    default: return 0;
    }
}

CUresult CUDAAPI cuDeviceGetAttribute(int *pi, CUdevice_attribute attrib, CUdevice dev)
{
    CUresult r = check_device(dev);
    if (r)
        return r;
    if (!pi || (int)attrib <= 0 || attrib >= CU_DEVICE_ATTRIBUTE_MAX)
        return CUDA_ERROR_INVALID_VALUE;
    *pi = attribute_value(attrib, dev);
    return CUDA_SUCCESS;
}

CUresult CUDAAPI cuDeviceGetProperties(CUdevprop *prop, CUdevice dev)
{
    CUresult r = check_device(dev);
    if (r)
        return r;
    if (!prop)
        return CUDA_ERROR_INVALID_VALUE;
    memset(prop, 0, sizeof *prop);
    prop->maxThreadsPerBlock = 1024;
    prop->maxThreadsDim[0] = 1024;
    prop->maxThreadsDim[1] = 1024;
    prop->maxThreadsDim[2] = 64;
    prop->maxGridSize[0] = 2147483647;
    prop->maxGridSize[1] = 65535;
    prop->maxGridSize[2] = 65535;
    prop->sharedMemPerBlock = EMU_SHARED_PER_BLOCK;
    prop->totalConstantMemory = 65536;
    prop->SIMDWidth = 32;
    prop->memPitch = 2147483647;
    prop->regsPerBlock = 65536;
    prop->clockRate = 1500000;
    prop->textureAlign = 512;
    return CUDA_SUCCESS;
}

CUresult CUDAAPI cuDeviceGetPCIBusId(char *pciBusId, int len, CUdevice dev)
{
    CUresult r = check_device(dev);
    if (r)
        return r;
    if (!pciBusId || len <= 0)
        return CUDA_ERROR_INVALID_VALUE;
    snprintf(pciBusId, (size_t)len, "0000:%02x:00.0", dev + 1);
    return CUDA_SUCCESS;
}

CUresult CUDAAPI cuDeviceGetByPCIBusId(CUdevice *dev, const char *pciBusId)
{
    CUresult r = emu_check_init();
    if (r)
        return r;
    if (!dev || !pciBusId)
        return CUDA_ERROR_INVALID_VALUE;
    unsigned domain = 0, bus = 0, device = 0, func = 0;
    /* Accepts "dddd:bb:dd.f" and the short "bb:dd.f". */
    if (sscanf(pciBusId, "%x:%x:%x.%x", &domain, &bus, &device, &func) != 4) {
        domain = 0;
        if (sscanf(pciBusId, "%x:%x.%x", &bus, &device, &func) != 3)
            return CUDA_ERROR_INVALID_VALUE;
    }
    if (domain != 0 || device != 0 || func != 0 || bus < 1 || (int)bus > device_count)
        return CUDA_ERROR_INVALID_VALUE;
    *dev = (CUdevice)(bus - 1);
    return CUDA_SUCCESS;
}


