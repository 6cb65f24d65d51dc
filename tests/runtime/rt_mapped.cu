// Mapped (zero-copy) host memory: cudaHostAlloc(cudaHostAllocMapped) and cudaHostRegister
// (cudaHostRegisterMapped) with cudaHostGetDevicePointer; kernels read what the host wrote and
// write what the host then reads, compared with a CPU computation. Through the stub the device
// side is a copy kept coherent at the same points as managed memory (client/coherent.h).
#include <cstdlib>

#include "rt_check.h"

__global__ void square_into(int n, const int *in, long long *out)
{
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n)
        out[i] = (long long)in[i] * in[i];
}

int main()
{
    rt_seed();
    RT_CHECK(cudaSetDeviceFlags(cudaDeviceMapHost));
    const int n = 10000;
    int *in = nullptr;
    RT_CHECK(cudaHostAlloc(&in, n * sizeof(int), cudaHostAllocMapped));
    // Registered memory: page-aligned, as cudaHostRegister wants on most systems.
    long long *out = nullptr;
    size_t out_bytes = ((n * sizeof(long long) + 4095) / 4096) * 4096;
    RT_EXPECT(posix_memalign((void **)&out, 4096, out_bytes) == 0, "posix_memalign");
    RT_CHECK(cudaHostRegister(out, out_bytes, cudaHostRegisterMapped));
    int *d_in = nullptr;
    long long *d_out = nullptr;
    RT_CHECK(cudaHostGetDevicePointer(&d_in, in, 0));
    RT_CHECK(cudaHostGetDevicePointer(&d_out, out, 0));
    RT_OK("device pointers of mapped and registered host memory");

    for (int round = 0; round < 2; round++) {
        for (int i = 0; i < n; i++) {
            in[i] = std::rand() % 100000 - 50000;
            out[i] = -1;
        }
        square_into<<<(n + 127) / 128, 128>>>(n, d_in, d_out);
        RT_CHECK(cudaGetLastError());
        RT_CHECK(cudaDeviceSynchronize());
        for (int i = 0; i < n; i++)
            RT_EXPECT(out[i] == (long long)in[i] * in[i], "round %d: out[%d] = %lld, in %d", round, i, out[i], in[i]);
    }
    RT_OK("2 rounds: the kernel reads the host's values and writes the host's memory");

    RT_CHECK(cudaHostUnregister(out));
    free(out);
    RT_CHECK(cudaFreeHost(in));
    RT_OK("unregistered and freed");
    return 0;
}
