// Kernels for the emulated driver's own tests (tests/emu/).
#include <cstdio>
__device__ int emu_table[4] = {10, 20, 30, 40};

extern "C" __global__ void emu_add(float *a, const float *b, int n)
{
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n)
        a[i] += b[i];
}

extern "C" __global__ void emu_read_table(int *out)
{
    out[threadIdx.x] = emu_table[threadIdx.x & 3];
}

// Writes far past the end of the buffer it is given: must fail with an illegal address.
extern "C" __global__ void emu_oob(int *p, long long offset)
{
    p[offset] = 1;
}

// Copies n ints from src to dst: with src in another context, must fail with an illegal address.
extern "C" __global__ void emu_copy(int *dst, const int *src, int n)
{
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n)
        dst[i] = src[i];
}

// Device printf: each thread prints `lines` lines.
extern "C" __global__ void emu_print(int lines, int tag)
{
    for (int i = 0; i < lines; i++)
        printf("tag %d thread %d line %d\n", tag, (int)threadIdx.x, i);
}

// out[i] = i * mul + add, for graph, pool and managed-memory tests.
extern "C" __global__ void emu_iota(int *out, int n, int mul, int add)
{
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n)
        out[i] = i * mul + add;
}

// a[i] = a[i] * s + 1
extern "C" __global__ void emu_axpb(int *a, int s, int n)
{
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n)
        a[i] = a[i] * s + 1;
}
