// cudaMemcpyToSymbol / cudaMemcpyFromSymbol on __device__ and __constant__ globals, read and
// written by a kernel.
#include "rt_check.h"

__constant__ int coeffs[16];
__device__ int table[64];
__device__ unsigned long long total;

__global__ void apply(void)
{
    int i = threadIdx.x;
    if (i < 64)
        table[i] = table[i] * coeffs[i % 16];
    if (i == 0)
        total = 0xfeedULL;
}

int main()
{
    rt_seed();
    int c[16], t[64], back[64];
    for (int i = 0; i < 16; i++)
        c[i] = std::rand() % 100 - 50;
    for (int i = 0; i < 64; i++)
        t[i] = std::rand() % 1000;
    RT_CHECK(cudaMemcpyToSymbol(coeffs, c, sizeof c));
    RT_CHECK(cudaMemcpyToSymbol(table, t, sizeof t));
    int c_back[16];
    RT_CHECK(cudaMemcpyFromSymbol(c_back, coeffs, sizeof c_back));
    for (int i = 0; i < 16; i++)
        RT_EXPECT(c_back[i] == c[i], "coeffs[%d] = %d, want %d", i, c_back[i], c[i]);
    RT_OK("__constant__ round trip");

    apply<<<1, 64>>>();
    RT_CHECK(cudaGetLastError());
    RT_CHECK(cudaMemcpyFromSymbol(back, table, sizeof back));
    for (int i = 0; i < 64; i++)
        RT_EXPECT(back[i] == t[i] * c[i % 16], "table[%d] = %d, want %d", i, back[i], t[i] * c[i % 16]);
    unsigned long long tot = 0;
    RT_CHECK(cudaMemcpyFromSymbol(&tot, total, sizeof tot));
    RT_EXPECT(tot == 0xfeedULL, "total = %#llx", tot);
    RT_OK("kernel read __constant__ and updated __device__ globals");

    // Offset copies touch only part of the symbol.
    int patch[4] = {7, 8, 9, 10};
    RT_CHECK(cudaMemcpyToSymbol(table, patch, sizeof patch, 8 * sizeof(int)));
    RT_CHECK(cudaMemcpyFromSymbol(back, table, sizeof back));
    for (int i = 0; i < 64; i++) {
        int want = i >= 8 && i < 12 ? patch[i - 8] : t[i] * c[i % 16];
        RT_EXPECT(back[i] == want, "table[%d] = %d after offset copy, want %d", i, back[i], want);
    }
    int *addr = nullptr;
    size_t size = 0;
    RT_CHECK(cudaGetSymbolAddress((void **)&addr, table));
    RT_CHECK(cudaGetSymbolSize(&size, table));
    RT_EXPECT(addr != nullptr && size == sizeof t, "symbol %p size %zu", (void *)addr, size);
    RT_OK("offset copy, cudaGetSymbolAddress and cudaGetSymbolSize");

    cudaError_t err = cudaMemcpyToSymbol(table, t, sizeof t + 4);
    RT_EXPECT(err == cudaErrorInvalidValue, "copy past the symbol's end gave %d", (int)err);
    cudaGetLastError();
    RT_OK("a copy past the symbol's end is cudaErrorInvalidValue");
    std::printf("PASS\n");
    return 0;
}
