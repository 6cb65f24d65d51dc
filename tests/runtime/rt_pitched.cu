// Pitched memory and 2-D/3-D copies: cudaMallocPitch, cudaMemset2D, cudaMemcpy2D host to device,
// device to device (sub-rectangles at offsets) and back, cudaMalloc3D/cudaMemcpy3D of a box
// inside a volume, each compared with the same copy done on the CPU.
#include <cstring>
#include <vector>

#include "rt_check.h"

__global__ void add_rows(int w, int h, size_t pitch, float *p)
{
    int x = blockIdx.x * blockDim.x + threadIdx.x, y = blockIdx.y;
    if (x < w && y < h)
        ((float *)((char *)p + y * pitch))[x] += (float)y;
}

int main()
{
    rt_seed();
    const int w = 300, h = 70;
    std::vector<float> host(w * h), back(w * h), ref(w * h);
    for (int i = 0; i < w * h; i++)
        host[i] = (float)(std::rand() % 1000);
    float *a = nullptr, *b = nullptr;
    size_t pa = 0, pb = 0;
    RT_CHECK(cudaMallocPitch(&a, &pa, w * sizeof(float), h));
    RT_CHECK(cudaMallocPitch(&b, &pb, w * sizeof(float), h));
    RT_EXPECT(pa >= w * sizeof(float) && pb >= w * sizeof(float), "pitches %zu %zu", pa, pb);
    RT_OK("cudaMallocPitch: pitch %zu for rows of %zu bytes", pa, w * sizeof(float));

    RT_CHECK(cudaMemset2D(b, pb, 0, w * sizeof(float), h));
    RT_CHECK(cudaMemcpy2D(a, pa, host.data(), w * sizeof(float), w * sizeof(float), h, cudaMemcpyHostToDevice));
    add_rows<<<dim3((w + 127) / 128, h), 128>>>(w, h, pa, a);
    RT_CHECK(cudaGetLastError());
    // A sub-rectangle of a (columns 10.., rows 5..) to b at (20, 3).
    const int cw = 200, ch = 40;
    RT_CHECK(cudaMemcpy2D((char *)b + 3 * pb + 20 * sizeof(float), pb, (char *)a + 5 * pa + 10 * sizeof(float), pa,
                          cw * sizeof(float), ch, cudaMemcpyDeviceToDevice));
    RT_CHECK(cudaMemcpy2D(back.data(), w * sizeof(float), b, pb, w * sizeof(float), h, cudaMemcpyDeviceToHost));
    std::fill(ref.begin(), ref.end(), 0.0f);
    for (int y = 0; y < ch; y++)
        for (int x = 0; x < cw; x++)
            ref[(3 + y) * w + 20 + x] = host[(5 + y) * w + 10 + x] + (float)(5 + y);
    for (int i = 0; i < w * h; i++)
        RT_EXPECT(back[i] == ref[i], "element (%d, %d) = %f, expected %f", i % w, i / w, back[i], ref[i]);
    RT_OK("cudaMemset2D, cudaMemcpy2D host->device, a kernel, device->device sub-rectangle, device->host");

    // 3-D: a volume, a box copied from the host into it at an offset, then the whole volume back.
    const int vx = 40, vy = 12, vz = 6;
    cudaPitchedPtr vol;
    RT_CHECK(cudaMalloc3D(&vol, make_cudaExtent(vx * sizeof(int), vy, vz)));
    RT_CHECK(cudaMemset3D(vol, 0, make_cudaExtent(vx * sizeof(int), vy, vz)));
    const int bx = 16, by = 5, bz = 3;
    std::vector<int> box(bx * by * bz), vback(vx * vy * vz), vref(vx * vy * vz, 0);
    for (size_t i = 0; i < box.size(); i++)
        box[i] = std::rand();
    cudaMemcpy3DParms p;
    std::memset(&p, 0, sizeof p);
    p.srcPtr = make_cudaPitchedPtr(box.data(), bx * sizeof(int), bx, by);
    p.dstPtr = vol;
    p.dstPos = make_cudaPos(7 * sizeof(int), 4, 2);
    p.extent = make_cudaExtent(bx * sizeof(int), by, bz);
    p.kind = cudaMemcpyHostToDevice;
    RT_CHECK(cudaMemcpy3D(&p));
    std::memset(&p, 0, sizeof p);
    p.srcPtr = vol;
    p.dstPtr = make_cudaPitchedPtr(vback.data(), vx * sizeof(int), vx, vy);
    p.extent = make_cudaExtent(vx * sizeof(int), vy, vz);
    p.kind = cudaMemcpyDeviceToHost;
    RT_CHECK(cudaMemcpy3D(&p));
    for (int z = 0; z < bz; z++)
        for (int y = 0; y < by; y++)
            for (int x = 0; x < bx; x++)
                vref[((2 + z) * vy + 4 + y) * vx + 7 + x] = box[(z * by + y) * bx + x];
    for (size_t i = 0; i < vref.size(); i++)
        RT_EXPECT(vback[i] == vref[i], "volume element %zu = %d, expected %d", i, vback[i], vref[i]);
    RT_OK("cudaMalloc3D, cudaMemset3D, cudaMemcpy3D of a box at an offset and of the whole volume");

    RT_CHECK(cudaFree(a));
    RT_CHECK(cudaFree(b));
    RT_CHECK(cudaFree(vol.ptr));
    return 0;
}
