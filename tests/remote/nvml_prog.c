/* An NVML program (test_nvml.c runs it against gpu-server): linked against the NVML stub as a
 * monitoring tool is against NVIDIA's libnvidia-ml.so.1, and against the CUDA stub to compare.
 *
 *   nvml_prog info    prints the system and each device as NVML tells them:
 *                       DRIVER s / NVMLVER s / CUDA v / COUNT n
 *                       DEV i NAME s / DEV i UUID s / DEV i PCI s / DEV i MEM total free used
 *                       DEV i MEM2 total reserved free used / DEV i CC major minor / DEV i UTIL rc
 *                       DEV i PROCS rc n
 *                     and checks them against the CUDA driver's answers through the CUDA stub
 *                     (count, name, UUID, PCI location, compute capability, total memory), and
 *                     that the handle lookups by UUID and PCI bus id find the same device;
 *                     prints MISMATCH what for a difference, OK at the end
 *   nvml_prog errors  checks the error paths: calls before nvmlInit, bad handles and indexes,
 *                     short buffers, a wrong struct version, an unsupported function; OK at the end
 * Exit status 0 when it printed OK. */
#include <cuda.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vg_nvml.h"

/* One of the functions the stub answers with NVML_ERROR_NOT_SUPPORTED (not in vg_nvml.h). */
nvmlReturn_t nvmlDeviceGetEccMode(nvmlDevice_t device, nvmlEnableState_t *current, nvmlEnableState_t *pending);

static int bad;

#define NV(call)                                                                                   \
    do {                                                                                           \
        nvmlReturn_t r_ = (call);                                                                  \
        if (r_ != NVML_SUCCESS) {                                                                  \
            printf("FAIL %s: %d (%s)\n", #call, (int)r_, nvmlErrorString(r_));                    \
            exit(1);                                                                               \
        }                                                                                          \
    } while (0)

#define CU(call)                                                                                   \
    do {                                                                                           \
        CUresult r_ = (call);                                                                      \
        if (r_ != CUDA_SUCCESS) {                                                                  \
            printf("FAIL %s: %d\n", #call, (int)r_);                                               \
            exit(1);                                                                               \
        }                                                                                          \
    } while (0)

static void mismatch(const char *what)
{
    printf("MISMATCH %s\n", what);
    bad = 1;
}

static void expect(nvmlReturn_t got, nvmlReturn_t want, const char *what)
{
    if (got != want) {
        printf("MISMATCH %s: %d, expected %d\n", what, (int)got, (int)want);
        bad = 1;
    }
}

static int info(void)
{
    NV(nvmlInit_v2());
    char s[128];
    int v = 0;
    unsigned n = 0;
    NV(nvmlSystemGetDriverVersion(s, sizeof s));
    printf("DRIVER %s\n", s);
    NV(nvmlSystemGetNVMLVersion(s, sizeof s));
    printf("NVMLVER %s\n", s);
    NV(nvmlSystemGetCudaDriverVersion_v2(&v));
    printf("CUDA %d\n", v);
    NV(nvmlDeviceGetCount_v2(&n));
    printf("COUNT %u\n", n);

    CU(cuInit(0));
    int cu_n = 0, cu_v = 0;
    CU(cuDeviceGetCount(&cu_n));
    CU(cuDriverGetVersion(&cu_v));
    if ((unsigned)cu_n != n)
        mismatch("device count");
    if (cu_v != v)
        mismatch("CUDA driver version");

    for (unsigned i = 0; i < n; i++) {
        nvmlDevice_t d, by;
        NV(nvmlDeviceGetHandleByIndex_v2(i, &d));
        unsigned idx = 99;
        NV(nvmlDeviceGetIndex(d, &idx));
        if (idx != i)
            mismatch("index");
        char name[NVML_DEVICE_NAME_V2_BUFFER_SIZE], uuid[NVML_DEVICE_UUID_V2_BUFFER_SIZE];
        NV(nvmlDeviceGetName(d, name, sizeof name));
        NV(nvmlDeviceGetUUID(d, uuid, sizeof uuid));
        nvmlPciInfo_t pci;
        NV(nvmlDeviceGetPciInfo_v3(d, &pci));
        nvmlMemory_t m;
        NV(nvmlDeviceGetMemoryInfo(d, &m));
        nvmlMemory_v2_t m2 = {.version = nvmlMemory_v2};
        NV(nvmlDeviceGetMemoryInfo_v2(d, &m2));
        int major = 0, minor = 0;
        NV(nvmlDeviceGetCudaComputeCapability(d, &major, &minor));
        nvmlUtilization_t u;
        nvmlReturn_t ur = nvmlDeviceGetUtilizationRates(d, &u);
        unsigned np = 8;
        nvmlProcessInfo_t procs[8];
        nvmlReturn_t pr = nvmlDeviceGetComputeRunningProcesses_v3(d, &np, procs);
        printf("DEV %u NAME %s\nDEV %u UUID %s\nDEV %u PCI %s\n", i, name, i, uuid, i, pci.busId);
        printf("DEV %u MEM %llu %llu %llu\n", i, m.total, m.free, m.used);
        printf("DEV %u MEM2 %llu %llu %llu %llu\n", i, m2.total, m2.reserved, m2.free, m2.used);
        printf("DEV %u CC %d %d\nDEV %u UTIL %d\nDEV %u PROCS %d %u\n", i, major, minor, i, (int)ur, i, (int)pr, np);
        if (m.total != m.free + m.used || m.total != m2.total)
            mismatch("memory figures do not add up");

        /* The CUDA driver's view of the same device. */
        CUdevice cd;
        CU(cuDeviceGet(&cd, (int)i));
        char cname[256];
        CU(cuDeviceGetName(cname, sizeof cname, cd));
        if (strcmp(cname, name) != 0)
            mismatch("name");
        CUuuid cu_uuid;
        CU(cuDeviceGetUuid(&cu_uuid, cd));
        char text[VG_NVML_UUID_LEN];
        vg_nvml_uuid_text((const uint8_t *)cu_uuid.bytes, text);
        if (strcmp(text, uuid) != 0)
            mismatch("uuid");
        int cmaj = 0, cmin = 0, bus = 0, dev = 0, dom = 0;
        CU(cuDeviceGetAttribute(&cmaj, CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR, cd));
        CU(cuDeviceGetAttribute(&cmin, CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR, cd));
        CU(cuDeviceGetAttribute(&bus, CU_DEVICE_ATTRIBUTE_PCI_BUS_ID, cd));
        CU(cuDeviceGetAttribute(&dev, CU_DEVICE_ATTRIBUTE_PCI_DEVICE_ID, cd));
        CU(cuDeviceGetAttribute(&dom, CU_DEVICE_ATTRIBUTE_PCI_DOMAIN_ID, cd));
        if (cmaj != major || cmin != minor)
            mismatch("compute capability");
        if ((unsigned)bus != pci.bus || (unsigned)dev != pci.device || (unsigned)dom != pci.domain)
            mismatch("PCI location");
        char cu_pci[64];
        CU(cuDeviceGetPCIBusId(cu_pci, sizeof cu_pci, cd));
        size_t total = 0;
        CU(cuDeviceTotalMem(&total, cd));
        if (total != m.total)
            mismatch("total memory");

        NV(nvmlDeviceGetHandleByUUID(uuid, &by));
        if (by != d)
            mismatch("handle by UUID");
        NV(nvmlDeviceGetHandleByPciBusId_v2(pci.busId, &by));
        if (by != d)
            mismatch("handle by PCI bus id");
        NV(nvmlDeviceGetHandleByPciBusId_v2(cu_pci, &by)); /* the CUDA driver's spelling */
        if (by != d)
            mismatch("handle by the CUDA driver's PCI bus id");
    }
    NV(nvmlShutdown());
    if (!bad)
        printf("OK\n");
    return bad;
}

static int errors(void)
{
    unsigned n = 0;
    nvmlDevice_t d;
    expect(nvmlDeviceGetCount_v2(&n), NVML_ERROR_UNINITIALIZED, "count before init");
    expect(nvmlShutdown(), NVML_ERROR_UNINITIALIZED, "shutdown before init");
    NV(nvmlInit_v2());
    NV(nvmlInit_v2()); /* counted: two shutdowns to end */
    NV(nvmlDeviceGetCount_v2(&n));
    expect(nvmlDeviceGetHandleByIndex_v2(n, &d), NVML_ERROR_INVALID_ARGUMENT, "index past the devices");
    expect(nvmlDeviceGetHandleByIndex_v2(0, NULL), NVML_ERROR_INVALID_ARGUMENT, "NULL handle output");
    expect(nvmlDeviceGetHandleByUUID("GPU-00000000-0000-0000-0000-000000000000", &d), NVML_ERROR_NOT_FOUND,
           "unknown UUID");
    expect(nvmlDeviceGetHandleByPciBusId_v2("not a bus id", &d), NVML_ERROR_NOT_FOUND, "bad PCI bus id");
    char name[64];
    nvmlDevice_t forged = (nvmlDevice_t)(uintptr_t)0x1234;
    expect(nvmlDeviceGetName(forged, name, sizeof name), NVML_ERROR_INVALID_ARGUMENT, "forged handle");
    expect(nvmlDeviceGetName(NULL, name, sizeof name), NVML_ERROR_INVALID_ARGUMENT, "NULL handle");
    if (n > 0) {
        NV(nvmlDeviceGetHandleByIndex_v2(0, &d));
        expect(nvmlDeviceGetName(d, name, 2), NVML_ERROR_INSUFFICIENT_SIZE, "short name buffer");
        char uuid[8];
        expect(nvmlDeviceGetUUID(d, uuid, sizeof uuid), NVML_ERROR_INSUFFICIENT_SIZE, "short UUID buffer");
        nvmlMemory_v2_t m2 = {.version = 1};
        expect(nvmlDeviceGetMemoryInfo_v2(d, &m2), NVML_ERROR_ARGUMENT_VERSION_MISMATCH, "memory v2 version");
        expect(nvmlDeviceGetMemoryInfo(d, NULL), NVML_ERROR_INVALID_ARGUMENT, "NULL memory output");
        nvmlEnableState_t cur, pend;
        expect(nvmlDeviceGetEccMode(d, &cur, &pend), NVML_ERROR_NOT_SUPPORTED, "an unsupported function");
        unsigned np = 0;
        nvmlReturn_t r = nvmlDeviceGetComputeRunningProcesses_v3(d, &np, NULL);
        if (r != NVML_SUCCESS && r != NVML_ERROR_INSUFFICIENT_SIZE)
            mismatch("process count query");
    }
    NV(nvmlShutdown());
    NV(nvmlDeviceGetCount_v2(&n)); /* one reference left */
    NV(nvmlShutdown());
    expect(nvmlDeviceGetCount_v2(&n), NVML_ERROR_UNINITIALIZED, "count after the last shutdown");
    if (!bad)
        printf("OK\n");
    return bad;
}

int main(int argc, char **argv)
{
    if (argc >= 2 && strcmp(argv[1], "info") == 0)
        return info();
    if (argc >= 2 && strcmp(argv[1], "errors") == 0)
        return errors();
    fprintf(stderr, "usage: nvml_prog info|errors\n");
    return 2;
}
