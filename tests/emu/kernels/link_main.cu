// Linked with link_lib.cu by the JIT linker test (separate compilation, -rdc=true): a kernel that
// calls a function and reads a variable defined in the other translation unit.
extern __device__ int link_scale(int x);
extern __device__ int link_table[4];

extern "C" __global__ void link_kernel(int *out, int n)
{
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n)
        out[i] = link_scale(i) + link_table[i & 3];
}
