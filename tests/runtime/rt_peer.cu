// Two emulated devices (VGPU_EMU_DEVICES=2): peer access and cudaMemcpyPeer.
#include <vector>
#include "rt_check.h"

__global__ void copy_twice(int *dst, const int *src, int n)
{
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n)
        dst[i] = 2 * src[i];
}

int main()
{
    int count = 0;
    RT_CHECK(cudaGetDeviceCount(&count));
    RT_EXPECT(count == 2, "%d devices (run with VGPU_EMU_DEVICES=2)", count);
    int can = 0;
    RT_CHECK(cudaDeviceCanAccessPeer(&can, 1, 0));
    RT_EXPECT(can == 1, "device 1 cannot access device 0");
    const int n = 4096;
    std::vector<int> host(n), back(n);
    for (int i = 0; i < n; i++)
        host[i] = i * 7 - 3;
    int *a, *b;
    RT_CHECK(cudaSetDevice(0));
    RT_CHECK(cudaMalloc(&a, n * sizeof(int)));
    RT_CHECK(cudaMemcpy(a, host.data(), n * sizeof(int), cudaMemcpyHostToDevice));
    RT_CHECK(cudaSetDevice(1));
    RT_CHECK(cudaMalloc(&b, n * sizeof(int)));
    RT_CHECK(cudaMemcpyPeer(b, 1, a, 0, n * sizeof(int)));
    RT_CHECK(cudaMemcpy(back.data(), b, n * sizeof(int), cudaMemcpyDeviceToHost));
    for (int i = 0; i < n; i++)
        RT_EXPECT(back[i] == host[i], "peer copy element %d", i);
    RT_OK("cudaMemcpyPeer from device 0 to device 1");
    RT_CHECK(cudaDeviceEnablePeerAccess(0, 0));
    copy_twice<<<n / 256, 256>>>(b, a, n); // device 1 reads device 0's memory
    RT_CHECK(cudaDeviceSynchronize());
    RT_CHECK(cudaMemcpy(back.data(), b, n * sizeof(int), cudaMemcpyDeviceToHost));
    for (int i = 0; i < n; i++)
        RT_EXPECT(back[i] == 2 * host[i], "peer kernel element %d", i);
    RT_OK("a kernel on device 1 reads device 0 with peer access enabled");
    std::printf("PASS\n");
    return 0;
}
