// Shared by the runtime-API test programs: each prints what it checked and exits non-zero on
// the first mismatch, so ctest sees the failure and the log says which check it was.
#pragma once
#include <cstdio>
#include <cstdlib>
#include <cuda_runtime.h>

#define RT_CHECK(call)                                                                        \
    do {                                                                                      \
        cudaError_t rt_err_ = (call);                                                         \
        if (rt_err_ != cudaSuccess) {                                                         \
            std::fprintf(stderr, "FAIL %s:%d: %s -> %s (%d)\n", __FILE__, __LINE__, #call,    \
                         cudaGetErrorString(rt_err_), (int)rt_err_);                          \
            std::exit(1);                                                                     \
        }                                                                                     \
    } while (0)

#define RT_EXPECT(cond, ...)                                                                  \
    do {                                                                                      \
        if (!(cond)) {                                                                        \
            std::fprintf(stderr, "FAIL %s:%d: %s: ", __FILE__, __LINE__, #cond);              \
            std::fprintf(stderr, __VA_ARGS__);                                                \
            std::fputc('\n', stderr);                                                         \
            std::exit(1);                                                                     \
        }                                                                                     \
    } while (0)

#define RT_OK(...) (std::printf("ok: " __VA_ARGS__), std::printf("\n"), std::fflush(stdout))

// Deterministic per-run random input: the seed is printed so a failure can be replayed.
static inline unsigned rt_seed(void)
{
    const char *env = std::getenv("RT_SEED");
    unsigned seed = env ? (unsigned)std::strtoul(env, nullptr, 0) : 12345u;
    std::printf("seed %u\n", seed);
    std::srand(seed);
    return seed;
}
