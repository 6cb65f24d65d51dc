// Kernels for the tenant tests (tests/remote/test_tenants.c).

// A module global of 1 MiB: loading the module charges it to the tenant.
__device__ unsigned char big_global[1 << 20];

extern "C" __global__ void touch(unsigned char v)
{
    big_global[threadIdx.x] = v;
}
