/* Peer access between two emulated devices (run with VGPU_EMU_DEVICES=2). */
#include <string.h>

#include "emu_test.h"

enum { N = 1024 };

static CUcontext on_device(int dev, CUfunction *copy)
{
    CUcontext c;
    CK(cuDevicePrimaryCtxRetain(&c, dev));
    CK(cuCtxSetCurrent(c));
    if (copy) {
        char *ptx = emu_read_kernel_file("emu_kernels.ptx", NULL);
        CUmodule m;
        CK(cuModuleLoadData(&m, ptx));
        free(ptx);
        CK(cuModuleGetFunction(copy, m, "emu_copy"));
    }
    return c;
}

Test(peer, access_copies_and_kernels)
{
    CK(cuInit(0));
    int count;
    CK(cuDeviceGetCount(&count));
    cr_assert_eq(count, 2, "run with VGPU_EMU_DEVICES=2");
    int can = 0;
    CK(cuDeviceCanAccessPeer(&can, 0, 1));
    cr_assert_eq(can, 1);
    CK(cuDeviceCanAccessPeer(&can, 0, 0));
    cr_assert_eq(can, 0);
    int v;
    CK(cuDeviceGetP2PAttribute(&v, CU_DEVICE_P2P_ATTRIBUTE_ACCESS_SUPPORTED, 0, 1));
    cr_assert_eq(v, 1);
    cr_assert_eq(cuDeviceGetP2PAttribute(&v, CU_DEVICE_P2P_ATTRIBUTE_ACCESS_SUPPORTED, 1, 1),
                 CUDA_ERROR_INVALID_DEVICE);

    static int host[N], back[N];
    for (int i = 0; i < N; i++)
        host[i] = i * 13 + 1;
    CUcontext c0 = on_device(0, NULL);
    CUdeviceptr a;
    CK(cuMemAlloc(&a, sizeof host));
    CK(cuMemcpyHtoD(a, host, sizeof host));
    unsigned ord;
    CK(cuPointerGetAttribute(&ord, CU_POINTER_ATTRIBUTE_DEVICE_ORDINAL, a));
    cr_assert_eq(ord, 0);

    CUfunction copy;
    CUcontext c1 = on_device(1, &copy);
    CUdeviceptr b;
    CK(cuMemAlloc(&b, sizeof host));
    /* Explicit peer copy between the contexts. */
    CK(cuMemcpyPeer(b, c1, a, c0, sizeof host));
    CK(cuMemcpyDtoH(back, b, sizeof back));
    cr_assert_eq(memcmp(back, host, sizeof host), 0);
    CK(cuMemsetD32(b, 0, N));
    CK(cuMemcpyPeerAsync(b, c1, a, c0, sizeof host, NULL));
    CK(cuCtxSynchronize());
    CK(cuMemcpyDtoH(back, b, sizeof back));
    cr_assert_eq(memcmp(back, host, sizeof host), 0);
    /* The pointer must belong to the context named for it. */
    cr_assert_eq(cuMemcpyPeer(b, c0, a, c0, sizeof host), CUDA_ERROR_INVALID_VALUE);

    /* A kernel on device 1 reads device 0's memory only with peer access enabled. */
    int n = N;
    void *args[] = {&b, &a, &n};
    CK(cuCtxEnablePeerAccess(c0, 0));
    cr_assert_eq(cuCtxEnablePeerAccess(c0, 0), CUDA_ERROR_PEER_ACCESS_ALREADY_ENABLED);
    CK(cuMemsetD32(b, 0, N));
    CK(cuLaunchKernel(copy, N / 128, 1, 1, 128, 1, 1, 0, NULL, args, NULL));
    CK(cuCtxSynchronize());
    CK(cuMemcpyDtoH(back, b, sizeof back));
    cr_assert_eq(memcmp(back, host, sizeof host), 0);
    CK(cuCtxDisablePeerAccess(c0));
    cr_assert_eq(cuCtxDisablePeerAccess(c0), CUDA_ERROR_PEER_ACCESS_NOT_ENABLED);
    CK(cuLaunchKernel(copy, N / 128, 1, 1, 128, 1, 1, 0, NULL, args, NULL));
    cr_assert_eq(cuCtxSynchronize(), CUDA_ERROR_ILLEGAL_ADDRESS);
    /* Contexts of one device are not peers. */
    CK(cuDevicePrimaryCtxReset(1));
    CUcontext other;
    CK(cuCtxCreate(&other, NULL, 0, 0));
    cr_assert_eq(cuCtxEnablePeerAccess(c0, 0), CUDA_ERROR_INVALID_DEVICE);
    CK(cuCtxDestroy(other));
    (void)c1;
}
