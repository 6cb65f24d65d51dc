// The other half of the JIT linker test (see link_main.cu).
__device__ int link_table[4] = {1000, 2000, 3000, 4000};

__device__ int link_scale(int x)
{
    return 3 * x;
}
