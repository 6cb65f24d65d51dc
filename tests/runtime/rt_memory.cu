// Managed memory, stream-ordered allocation and pools, arrays and 3-D copies through the
// runtime, each compared with a CPU reference.
#include <vector>
#include "rt_check.h"

__global__ void square_plus(int *v, int add, int n)
{
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n)
        v[i] = v[i] * v[i] + add;
}

int main()
{
    rt_seed();
    const int n = 1 << 12;
    int dev = 0;
    RT_CHECK(cudaGetDevice(&dev));

    // Managed memory: one pointer for host and kernel.
    int *m = nullptr;
    RT_CHECK(cudaMallocManaged(&m, n * sizeof(int)));
    std::vector<int> ref(n);
    for (int i = 0; i < n; i++) {
        m[i] = std::rand() % 100;
        ref[i] = m[i] * m[i] + 7;
    }
    cudaMemLocation loc = {};
    loc.type = cudaMemLocationTypeDevice;
    loc.id = dev;
    RT_CHECK(cudaMemAdvise(m, n * sizeof(int), cudaMemAdviseSetReadMostly, loc));
    RT_CHECK(cudaMemPrefetchAsync(m, n * sizeof(int), loc, 0, 0));
    square_plus<<<n / 256, 256>>>(m, 7, n);
    RT_CHECK(cudaDeviceSynchronize());
    for (int i = 0; i < n; i++)
        RT_EXPECT(m[i] == ref[i], "managed element %d: %d, expected %d", i, m[i], ref[i]);
    cudaPointerAttributes pa;
    RT_CHECK(cudaPointerGetAttributes(&pa, m));
    RT_EXPECT(pa.type == cudaMemoryTypeManaged, "pointer type %d", (int)pa.type);
    RT_CHECK(cudaFree(m));
    RT_OK("cudaMallocManaged: host and kernel share the bytes");

    // Stream-ordered allocation from the default pool.
    cudaStream_t s;
    RT_CHECK(cudaStreamCreate(&s));
    cudaMemPool_t pool;
    RT_CHECK(cudaDeviceGetDefaultMemPool(&pool, dev));
    unsigned long long keep = 1 << 26;
    RT_CHECK(cudaMemPoolSetAttribute(pool, cudaMemPoolAttrReleaseThreshold, &keep));
    std::vector<int> host(n), back(n);
    for (int i = 0; i < n; i++)
        host[i] = i - 100;
    int *d = nullptr;
    RT_CHECK(cudaMallocAsync(&d, n * sizeof(int), s));
    RT_CHECK(cudaMemcpyAsync(d, host.data(), n * sizeof(int), cudaMemcpyHostToDevice, s));
    square_plus<<<n / 256, 256, 0, s>>>(d, 1, n);
    RT_CHECK(cudaMemcpyAsync(back.data(), d, n * sizeof(int), cudaMemcpyDeviceToHost, s));
    RT_CHECK(cudaFreeAsync(d, s));
    RT_CHECK(cudaStreamSynchronize(s));
    for (int i = 0; i < n; i++)
        RT_EXPECT(back[i] == host[i] * host[i] + 1, "pool element %d: %d", i, back[i]);
    unsigned long long reserved = 0, used = 1;
    RT_CHECK(cudaMemPoolGetAttribute(pool, cudaMemPoolAttrReservedMemCurrent, &reserved));
    RT_CHECK(cudaMemPoolGetAttribute(pool, cudaMemPoolAttrUsedMemCurrent, &used));
    RT_EXPECT(reserved >= n * sizeof(int) && used == 0, "reserved %llu used %llu", reserved, used);
    RT_CHECK(cudaMemPoolTrimTo(pool, 0));
    RT_OK("cudaMallocAsync/cudaFreeAsync, pool attributes and trim");

    // A 3-D array: a host volume in, a sub-box out through cudaMemcpy3D.
    const int X = 16, Y = 8, Z = 4;
    std::vector<float> vol(X * Y * Z), box(4 * 3 * 2);
    for (int i = 0; i < X * Y * Z; i++)
        vol[i] = (float)i;
    cudaChannelFormatDesc cd = cudaCreateChannelDesc<float>();
    cudaArray_t arr;
    RT_CHECK(cudaMalloc3DArray(&arr, &cd, make_cudaExtent(X, Y, Z)));
    cudaMemcpy3DParms in = {};
    in.srcPtr = make_cudaPitchedPtr(vol.data(), X * sizeof(float), X, Y);
    in.dstArray = arr;
    in.extent = make_cudaExtent(X, Y, Z);
    in.kind = cudaMemcpyHostToDevice;
    RT_CHECK(cudaMemcpy3D(&in));
    cudaMemcpy3DParms out = {};
    out.srcArray = arr;
    out.srcPos = make_cudaPos(5, 2, 1);
    out.dstPtr = make_cudaPitchedPtr(box.data(), 4 * sizeof(float), 4, 3);
    out.extent = make_cudaExtent(4, 3, 2);
    out.kind = cudaMemcpyDeviceToHost;
    RT_CHECK(cudaMemcpy3D(&out));
    for (int z = 0; z < 2; z++)
        for (int y = 0; y < 3; y++)
            for (int x = 0; x < 4; x++)
                RT_EXPECT(box[(z * 3 + y) * 4 + x] == vol[((1 + z) * Y + 2 + y) * X + 5 + x],
                          "box (%d, %d, %d)", x, y, z);
    // A texture object over it (sampling needs the interpreter's tex instructions).
    cudaResourceDesc rd = {};
    rd.resType = cudaResourceTypeArray;
    rd.res.array.array = arr;
    cudaTextureDesc td = {};
    td.filterMode = cudaFilterModeLinear;
    td.normalizedCoords = 1;
    cudaTextureObject_t tex;
    RT_CHECK(cudaCreateTextureObject(&tex, &rd, &td, nullptr));
    cudaResourceDesc back_rd;
    RT_CHECK(cudaGetTextureObjectResourceDesc(&back_rd, tex));
    RT_EXPECT(back_rd.res.array.array == arr, "resource descriptor read back");
    RT_CHECK(cudaDestroyTextureObject(tex));
    RT_CHECK(cudaFreeArray(arr));
    RT_OK("3-D array, cudaMemcpy3D with offsets, a texture object over it");
    std::printf("PASS\n");
    return 0;
}
