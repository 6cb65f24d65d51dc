// Kernels for the tenant tests (tests/remote/test_tenants.c).

// A module global of 1 MiB: loading the module charges it to the tenant.
__device__ unsigned char big_global[1 << 20];

extern "C" __global__ void touch(unsigned char v)
{
    big_global[threadIdx.x] = v;
}

// A kernel of a known cost: iters of dependent arithmetic per thread (the scheduler tests).
extern "C" __global__ void burn(float *out, int iters)
{
    float x = (float)threadIdx.x;
    for (int i = 0; i < iters; i++)
        x = x * 0.999f + 0.5f;
    if (x == -1.0f) // never: keeps the loop
        out[threadIdx.x] = x;
}
