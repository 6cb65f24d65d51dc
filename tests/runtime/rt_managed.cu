// Managed memory through vgpu (cudaMallocManaged): the host writes, kernels read and write, the
// host reads again, in both directions and more than once, compared with a CPU computation.
// Through the stub the host side is a shadow kept coherent at defined points (client/coherent.h):
// device work takes what the host wrote since, and the first host touch after device work sees
// what the device wrote. Concurrent access from the host while kernels run is not offered
// (cudaDevAttrConcurrentManagedAccess is 0), as on GPUs before Pascal.
#include <cstring>

#include "rt_check.h"

__global__ void axpy(int n, int a, const int *x, int *y)
{
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n)
        y[i] = a * x[i] + y[i];
}

__global__ void count_odd(int n, const int *v, int *out)
{
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n && (v[i] & 1))
        atomicAdd(out, 1);
}

int main()
{
    rt_seed();
    int concurrent = -1;
    RT_CHECK(cudaDeviceGetAttribute(&concurrent, cudaDevAttrConcurrentManagedAccess, 0));
    RT_OK("concurrent managed access: %d", concurrent);

    const int n = 3 * 4096 + 17; // pages of it and a tail
    int *x = nullptr, *y = nullptr, *odd = nullptr;
    RT_CHECK(cudaMallocManaged(&x, n * sizeof(int)));
    RT_CHECK(cudaMallocManaged(&y, n * sizeof(int)));
    RT_CHECK(cudaMallocManaged(&odd, sizeof(int), cudaMemAttachGlobal));
    int *ref = new int[n];
    for (int i = 0; i < n; i++) {
        x[i] = std::rand() % 1000;
        y[i] = std::rand() % 1000;
        ref[i] = y[i];
    }
    *odd = 0;
    RT_OK("host wrote %d managed ints", 2 * n);

    for (int round = 1; round <= 3; round++) {
        axpy<<<(n + 255) / 256, 256>>>(n, round, x, y);
        RT_CHECK(cudaGetLastError());
        RT_CHECK(cudaDeviceSynchronize());
        for (int i = 0; i < n; i++)
            ref[i] += round * x[i];
        for (int i = 0; i < n; i++)
            RT_EXPECT(y[i] == ref[i], "round %d: y[%d] = %d, expected %d", round, i, y[i], ref[i]);
        // The host changes part of x between launches: the next kernel must see it.
        for (int i = round; i < n; i += 97)
            x[i] = -x[i];
    }
    RT_OK("3 rounds of kernel then host, host changes between them");

    count_odd<<<(n + 255) / 256, 256>>>(n, y, odd);
    RT_CHECK(cudaDeviceSynchronize());
    int want = 0;
    for (int i = 0; i < n; i++)
        want += ref[i] & 1;
    RT_EXPECT(*odd == want, "odd count %d, expected %d", *odd, want);
    RT_OK("a kernel's atomic result in managed memory reaches the host");

    // Copies to and from managed memory, and a memset of it.
    int *dev = nullptr;
    RT_CHECK(cudaMalloc(&dev, n * sizeof(int)));
    RT_CHECK(cudaMemcpy(dev, y, n * sizeof(int), cudaMemcpyDefault));
    RT_CHECK(cudaMemset(y, 0, n * sizeof(int)));
    RT_CHECK(cudaDeviceSynchronize());
    for (int i = 0; i < n; i++)
        RT_EXPECT(y[i] == 0, "y[%d] = %d after cudaMemset", i, y[i]);
    RT_CHECK(cudaMemcpy(x, dev, n * sizeof(int), cudaMemcpyDefault));
    for (int i = 0; i < n; i++)
        RT_EXPECT(x[i] == ref[i], "x[%d] = %d after the copy back, expected %d", i, x[i], ref[i]);
    RT_OK("cudaMemcpy and cudaMemset on managed memory");

    cudaPointerAttributes attr;
    RT_CHECK(cudaPointerGetAttributes(&attr, y));
    RT_EXPECT(attr.type == cudaMemoryTypeManaged, "pointer type %d", (int)attr.type);
    RT_OK("cudaPointerGetAttributes says managed");

    RT_CHECK(cudaFree(dev));
    RT_CHECK(cudaFree(x));
    RT_CHECK(cudaFree(y));
    RT_CHECK(cudaFree(odd));
    delete[] ref;
    RT_OK("freed");
    return 0;
}
