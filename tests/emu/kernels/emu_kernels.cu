// Kernels for the emulated driver's own tests (tests/emu/).
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
