/* Devices, attributes, versions, error strings and initialization of the emulated driver. */
#define CUDA_DISABLE_DEPRECATED_WARNINGS_UNUSED 1
#include <string.h>

#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
#include "emu_test.h"

Test(device, not_initialized)
{
    int n;
    CUdevice d;
    CUcontext c;
    cr_assert_eq(cuDeviceGetCount(&n), CUDA_ERROR_NOT_INITIALIZED);
    cr_assert_eq(cuDeviceGet(&d, 0), CUDA_ERROR_NOT_INITIALIZED);
    cr_assert_eq(cuDevicePrimaryCtxRetain(&c, 0), CUDA_ERROR_NOT_INITIALIZED);
    CUdeviceptr p;
    cr_assert_eq(cuMemAlloc(&p, 16), CUDA_ERROR_NOT_INITIALIZED);
}

Test(device, version_and_count)
{
    int v = 0, n = 0;
    CK(cuDriverGetVersion(&v));
    cr_assert_eq(v, CUDA_VERSION);
    cr_assert_eq(cuInit(1), CUDA_ERROR_INVALID_VALUE);
    CK(cuInit(0));
    CK(cuDeviceGetCount(&n));
    cr_assert_eq(n, 1);
    CUdevice d;
    CK(cuDeviceGet(&d, 0));
    cr_assert_eq(d, 0);
    cr_assert_eq(cuDeviceGet(&d, 1), CUDA_ERROR_INVALID_DEVICE);
    cr_assert_eq(cuDeviceGet(&d, -1), CUDA_ERROR_INVALID_DEVICE);
    cr_assert_eq(cuDeviceGet(NULL, 0), CUDA_ERROR_INVALID_VALUE);
}

Test(device, env_devices_and_memory)
{
    setenv("VGPU_EMU_DEVICES", "3", 1);
    setenv("VGPU_EMU_MEMORY", "256M", 1);
    CK(cuInit(0));
    int n;
    CK(cuDeviceGetCount(&n));
    cr_assert_eq(n, 3);
    size_t total;
    CK(cuDeviceTotalMem(&total, 2));
    cr_assert_eq(total, (size_t)256 << 20);
    CUcontext c;
    CK(cuDevicePrimaryCtxRetain(&c, 2));
    CK(cuCtxSetCurrent(c));
    CUdevice d;
    CK(cuCtxGetDevice(&d));
    cr_assert_eq(d, 2);
    CUdeviceptr p;
    cr_assert_eq(cuMemAlloc(&p, (size_t)300 << 20), CUDA_ERROR_OUT_OF_MEMORY);
    CK(cuMemAlloc(&p, (size_t)100 << 20));
    size_t free_b, total_b;
    CK(cuMemGetInfo(&free_b, &total_b));
    cr_assert_eq(total_b, (size_t)256 << 20);
    cr_assert_leq(free_b, (size_t)156 << 20);
    char bus[32];
    CK(cuDeviceGetPCIBusId(bus, sizeof bus, 2));
    CK(cuDeviceGetByPCIBusId(&d, bus));
    cr_assert_eq(d, 2);
    cr_assert_eq(cuDeviceGetByPCIBusId(&d, "garbage"), CUDA_ERROR_INVALID_VALUE);
}

Test(device, bad_env)
{
    setenv("VGPU_EMU_MEMORY", "lots", 1);
    cr_assert_eq(cuInit(0), CUDA_ERROR_INVALID_VALUE);
}

Test(device, name_and_attributes)
{
    CK(cuInit(0));
    char name[64];
    CK(cuDeviceGetName(name, sizeof name, 0));
    cr_assert(strstr(name, "Emulated") != NULL, "name: %s", name);
    int v;
    CK(cuDeviceGetAttribute(&v, CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR, 0));
    cr_assert_eq(v, 7);
    CK(cuDeviceGetAttribute(&v, CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR, 0));
    cr_assert_eq(v, 5);
    CK(cuDeviceGetAttribute(&v, CU_DEVICE_ATTRIBUTE_WARP_SIZE, 0));
    cr_assert_eq(v, 32);
    CK(cuDeviceGetAttribute(&v, CU_DEVICE_ATTRIBUTE_MAX_THREADS_PER_BLOCK, 0));
    cr_assert_eq(v, 1024);
    CK(cuDeviceGetAttribute(&v, CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_BLOCK, 0));
    cr_assert_eq(v, 48 * 1024);
    CK(cuDeviceGetAttribute(&v, CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_BLOCK_OPTIN, 0));
    cr_assert_eq(v, 64 * 1024);
    CK(cuDeviceGetAttribute(&v, CU_DEVICE_ATTRIBUTE_UNIFIED_ADDRESSING, 0));
    cr_assert_eq(v, 1);
    CK(cuDeviceGetAttribute(&v, CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT, 0));
    cr_assert_geq(v, 1);
    CK(cuDeviceGetAttribute(&v, CU_DEVICE_ATTRIBUTE_MAX_GRID_DIM_X, 0));
    cr_assert_eq(v, 2147483647);
    /* Every attribute the header knows is answered. */
    for (int a = 1; a < CU_DEVICE_ATTRIBUTE_MAX; a++)
        cr_assert_eq(cuDeviceGetAttribute(&v, (CUdevice_attribute)a, 0), CUDA_SUCCESS, "attr %d", a);
    cr_assert_eq(cuDeviceGetAttribute(&v, CU_DEVICE_ATTRIBUTE_MAX, 0), CUDA_ERROR_INVALID_VALUE);
    cr_assert_eq(cuDeviceGetAttribute(&v, CU_DEVICE_ATTRIBUTE_WARP_SIZE, 5), CUDA_ERROR_INVALID_DEVICE);
    cr_assert_eq(cuDeviceGetAttribute(NULL, CU_DEVICE_ATTRIBUTE_WARP_SIZE, 0), CUDA_ERROR_INVALID_VALUE);
    int major, minor;
    CK(cuDeviceComputeCapability(&major, &minor, 0));
    cr_assert_eq(major * 10 + minor, 75);
    CUuuid u1, u2;
    CK(cuDeviceGetUuid(&u1, 0));
    CK(cuDeviceGetUuid(&u2, 0));
    cr_assert_eq(memcmp(&u1, &u2, sizeof u1), 0);
    CUdevprop prop;
    CK(cuDeviceGetProperties(&prop, 0));
    cr_assert_eq(prop.SIMDWidth, 32);
    size_t total;
    CK(cuDeviceTotalMem(&total, 0));
    cr_assert_eq(total, (size_t)4 << 30);
}

Test(device, error_strings)
{
    const char *s;
    CK(cuGetErrorName(CUDA_SUCCESS, &s));
    cr_assert_str_eq(s, "CUDA_SUCCESS");
    CK(cuGetErrorName(CUDA_ERROR_ILLEGAL_ADDRESS, &s));
    cr_assert_str_eq(s, "CUDA_ERROR_ILLEGAL_ADDRESS");
    CK(cuGetErrorName(CUDA_ERROR_UNKNOWN, &s));
    cr_assert_str_eq(s, "CUDA_ERROR_UNKNOWN");
    CK(cuGetErrorString(CUDA_ERROR_INVALID_VALUE, &s));
    cr_assert(strlen(s) > 5);
    cr_assert_eq(cuGetErrorName((CUresult)12345, &s), CUDA_ERROR_INVALID_VALUE);
    cr_assert_eq(cuGetErrorString((CUresult)12345, &s), CUDA_ERROR_INVALID_VALUE);
    /* Every code that has a name has a string, and names are distinct from strings. */
    int named = 0;
    for (int e = 0; e < 1100; e++) {
        const char *n, *t;
        if (cuGetErrorName((CUresult)e, &n) != CUDA_SUCCESS)
            continue;
        named++;
        CK(cuGetErrorString((CUresult)e, &t));
        cr_assert(strncmp(n, "CUDA_", 5) == 0);
    }
    cr_assert_geq(named, 90);
}
