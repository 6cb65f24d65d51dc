// Broader instruction coverage for the PTX interpreter tests: math library calls, conversions,
// bit manipulation, 2-D blocks, globals and constants, shared atomics, vector loads, struct
// parameters, printf and early exit around barriers.
#include <cuda_fp16.h>
#include <stdio.h>
#include <assert.h>
#include <cooperative_groups.h>
namespace cg = cooperative_groups;

__constant__ float coeffs[4] = {0.5f, -1.25f, 2.0f, 3.5f};
__device__ int dev_counter;
__device__ unsigned long long dev_sum64;

struct Params { int scale; float bias; long long offset; };

extern "C" __global__ void math_f32(const float *x, float *out, int n) {
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= n) return;
    float v = x[i];
    out[i * 8 + 0] = sinf(v);
    out[i * 8 + 1] = expf(v * 0.1f);
    out[i * 8 + 2] = logf(fabsf(v) + 1.0f);
    out[i * 8 + 3] = sqrtf(fabsf(v)) + rsqrtf(fabsf(v) + 1.0f);
    out[i * 8 + 4] = tanhf(v * 0.2f);
    out[i * 8 + 5] = __expf(v * 0.05f) + __sinf(v) + __cosf(v);
    out[i * 8 + 6] = powf(fabsf(v) + 0.5f, 1.5f);
    out[i * 8 + 7] = coeffs[i & 3] * v + floorf(v) + ceilf(v) + truncf(v) + rintf(v);
}

extern "C" __global__ void conversions(const float *x, const double *y, int *oi, unsigned *ou,
                                       long long *ol, float *of, double *od, short *os, unsigned char *oc, int n) {
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= n) return;
    float v = x[i];
    double d = y[i];
    oi[i * 4 + 0] = (int)v;
    oi[i * 4 + 1] = __float2int_rn(v);
    oi[i * 4 + 2] = __float2int_rd(v);
    oi[i * 4 + 3] = __float2int_ru(v);
    ou[i] = (unsigned)fabsf(v * 1000.0f) + __float2uint_rz(v);
    ol[i * 2 + 0] = (long long)d;
    ol[i * 2 + 1] = __double2ll_rn(d * 3.0);
    of[i * 2 + 0] = (float)d;
    of[i * 2 + 1] = __int2float_rn(i * 7 - 300) + __uint2float_rn((unsigned)i * 3u);
    od[i] = (double)v + (double)(i * 3 - 100) + (double)(unsigned long long)(i * 1000000007ull);
    os[i] = (short)(int)(v * 100.0f);
    oc[i] = (unsigned char)(int)(v * 10.0f);
}

extern "C" __global__ void bits(const unsigned *a, const unsigned *b, unsigned *out, int n) {
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= n) return;
    unsigned x = a[i], y = b[i];
    out[i * 12 + 0] = __umulhi(x, y);
    out[i * 12 + 1] = (unsigned)__mulhi((int)x, (int)y);
    out[i * 12 + 2] = (x >> (y & 31)) ^ (x << ((y >> 5) & 31));
    out[i * 12 + 3] = (unsigned)(((int)x) >> (y & 31));
    out[i * 12 + 4] = __byte_perm(x, y, 0x5140 + (y & 0x3));
    out[i * 12 + 5] = (x >> 5) & 0x3ff;                 // bfe
    out[i * 12 + 6] = (x & ~(0xffu << 8)) | ((y & 0xff) << 8); // bfi
    out[i * 12 + 7] = __ffs(x) + __clzll((unsigned long long)x * y) + __popcll((unsigned long long)x << 7);
    out[i * 12 + 8] = min(x, y) + (unsigned)max((int)x, (int)y);
    out[i * 12 + 9] = (x > y) ? x - y : y - x;
    out[i * 12 + 10] = (unsigned)(((unsigned long long)x * y) >> 17);
    out[i * 12 + 11] = __sad(x, y, 3u) + __usad(x, y, 1u) + abs((int)x);
}

extern "C" __global__ void grid2d(int *out, int width) {
    int x = blockIdx.x * blockDim.x + threadIdx.x;
    int y = blockIdx.y * blockDim.y + threadIdx.y;
    int z = threadIdx.z;
    out[(y * width + x) * 2 + z] = x * 1000 + y * 10 + z + (int)(gridDim.x * 100000) + (int)(blockDim.z * 1000000);
}

extern "C" __global__ void globals(const int *in, int n) {
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= n) return;
    atomicAdd(&dev_counter, 1);
    atomicAdd(&dev_sum64, (unsigned long long)in[i]);
}

extern "C" __global__ void shared_hist(const int *in, int *hist, int n) {
    __shared__ int local_hist[16];
    int t = threadIdx.x;
    if (t < 16) local_hist[t] = 0;
    __syncthreads();
    for (int i = blockIdx.x * blockDim.x + t; i < n; i += blockDim.x * gridDim.x)
        atomicAdd(&local_hist[in[i] & 15], 1);
    __syncthreads();
    if (t < 16) atomicAdd(&hist[t], local_hist[t]);
}

extern "C" __global__ void vec4_struct(const float4 *in, float4 *out, Params p, int n) {
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= n) return;
    float4 v = in[i];
    float s = (float)p.scale;
    out[i] = make_float4(v.w * s + p.bias, v.z * s, v.y + (float)p.offset, v.x);
}

extern "C" __global__ void early_exit_barrier(const int *in, int *out, int n) {
    __shared__ int buf[128];
    int t = threadIdx.x;
    if (t >= 96) return;   // the last warp leaves before the barrier
    buf[t] = in[blockIdx.x * 96 + t];
    __syncthreads();
    out[blockIdx.x * 96 + t] = buf[95 - t] + buf[(t + 1) % 96];
}

extern "C" __global__ void lanes(unsigned *out) {
    int t = threadIdx.x;
    unsigned lane, warp, lt, ge;
    asm("mov.u32 %0, %%laneid;" : "=r"(lane));
    asm("mov.u32 %0, %%warpid;" : "=r"(warp));
    asm("mov.u32 %0, %%lanemask_lt;" : "=r"(lt));
    asm("mov.u32 %0, %%lanemask_ge;" : "=r"(ge));
    unsigned act = 0;
    if (t & 1) act = __activemask();
    int any = __any_sync(0xffffffffu, t == 37);
    int uni = __all_sync(0xffffffffu, t < 1000);
    int idx = __shfl_sync(0xffffffffu, t * 3, (t + 5) & 31);
    out[t * 8 + 0] = lane; out[t * 8 + 1] = warp; out[t * 8 + 2] = lt; out[t * 8 + 3] = ge;
    out[t * 8 + 4] = act; out[t * 8 + 5] = any; out[t * 8 + 6] = uni; out[t * 8 + 7] = idx;
}

extern "C" __global__ void say_hello(int v) {
    if (threadIdx.x == 0) printf("hello %d from block %d, %.2f %s\n", v, blockIdx.x, 1.5, "ok");
}

extern "C" __global__ void atomics64(unsigned long long *u, double *d, int *e, const int *in, int n) {
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= n) return;
    atomicMax(u, (unsigned long long)in[i] * 1000003ull);
    atomicMin(u + 1, (unsigned long long)in[i] + 5ull);
    atomicAdd(d, (double)in[i] * 0.5);
    atomicExch(e, 7);
    atomicCAS((unsigned long long *)(u + 2), 0ull, (unsigned long long)i + 1);
    atomicSub(e + 1, in[i]);
    atomicAnd(e + 2, ~(1 << (in[i] & 31)));
    atomicDec((unsigned *)(e + 3), 1000u);
}

// 128-bit arithmetic with the carry flag (add.cc/addc, sub.cc/subc, mad.lo.cc/madc.hi).
extern "C" __global__ void carry128(const unsigned long long *a, const unsigned long long *b,
                                    unsigned long long *sum, unsigned long long *diff,
                                    unsigned *mulacc, int n) {
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= n) return;
    unsigned long long alo = a[2 * i], ahi = a[2 * i + 1], blo = b[2 * i], bhi = b[2 * i + 1];
    unsigned long long slo, shi, dlo, dhi;
    asm("add.cc.u64 %0, %2, %4;\n\taddc.u64 %1, %3, %5;" : "=l"(slo), "=l"(shi) : "l"(alo), "l"(ahi), "l"(blo), "l"(bhi));
    asm("sub.cc.u64 %0, %2, %4;\n\tsubc.u64 %1, %3, %5;" : "=l"(dlo), "=l"(dhi) : "l"(alo), "l"(ahi), "l"(blo), "l"(bhi));
    sum[2 * i] = slo; sum[2 * i + 1] = shi;
    diff[2 * i] = dlo; diff[2 * i + 1] = dhi;
    unsigned x = (unsigned)alo, y = (unsigned)blo, c0 = (unsigned)ahi, c1 = (unsigned)bhi, lo, hi;
    asm("mad.lo.cc.u32 %0, %2, %3, %4;\n\tmadc.hi.u32 %1, %2, %3, %5;" : "=r"(lo), "=r"(hi) : "r"(x), "r"(y), "r"(c0), "r"(c1));
    mulacc[2 * i] = lo; mulacc[2 * i + 1] = hi;
}

// Block-wide predicate reductions (bar.red) and __syncwarp (bar.warp.sync).
extern "C" __global__ void block_votes(const int *in, int *out) {
    int t = threadIdx.x;
    int v = in[blockIdx.x * blockDim.x + t];
    int c = __syncthreads_count(v > 0);
    int a = __syncthreads_and(v > -5);
    int o = __syncthreads_or(v == 3);
    __syncwarp();
    out[blockIdx.x * blockDim.x + t] = c * 100 + a * 10 + o;
}

// Float classification and two floats packed into a half2 (cvt.rn.f16x2.f32).
extern "C" __global__ void fp_classify(const float *x, int *out, unsigned *packed, int n) {
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= n) return;
    float v = x[i];
    out[i] = (isinf(v) ? 1 : 0) + (isnan(v) ? 2 : 0) + (isfinite(v) ? 4 : 0) + (signbit(v) ? 8 : 0);
    union { __half2 h; unsigned u; } cv;
    cv.h = __floats2half2_rn(v, v * 2.0f);
    packed[i] = cv.u;
}

// A switch (jump-table candidate), cooperative-groups tile shuffles, shuffles with a width,
// __ldg, clock64, __threadfence and a passing assert.
__device__ int sw(int x) {
    switch (x & 15) {
    case 0: return x * 3; case 1: return x - 7; case 2: return x ^ 0x55; case 3: return x << 2;
    case 4: return x / 3; case 5: return ~x; case 6: return x + 100; case 7: return x * x;
    case 8: return x >> 1; case 9: return -x; case 10: return x | 8; case 11: return x & 0xf0;
    default: return 42;
    }
}
extern "C" __global__ void features(const int *in, int *out, int n) {
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    cg::thread_block_tile<16> tile = cg::tiled_partition<16>(cg::this_thread_block());
    int v = i < n ? __ldg(&in[i]) : 0;
    int s = v;
    for (int o = 8; o > 0; o >>= 1) s += tile.shfl_down(s, o);
    int w = __shfl_sync(0xffffffffu, v, 3, 8);
    long long c0 = clock64();
    __threadfence();
    assert(n > 0);
    if (i < n) {
        out[i * 3] = sw(v);
        out[i * 3 + 1] = s * 1000 + w;
        out[i * 3 + 2] = (int)(clock64() >= c0);
    }
}
extern "C" __global__ void assert_kernel(int x) {
    assert(x != 3);
}

// 16-bit atomics: __half and __half2 adds, and a 16-bit CAS.
extern "C" __global__ void atomics16(__half *h, __half2 *h2, unsigned short *u, int n) {
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= n) return;
    atomicAdd(h, __float2half(0.25f));
    atomicAdd(h2, __floats2half2_rn(1.0f, 0.5f));
    unsigned short old = u[0], seen;
    do {
        seen = old;
        old = atomicCAS(u, seen, (unsigned short)(seen + 1));
    } while (old != seen);
}

// 24-bit multiplies (mul24.lo) and a hand-written mul24.hi/mad24.
extern "C" __global__ void mul24k(const int *a, const int *b, int *out, int n) {
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= n) return;
    int x = a[i], y = b[i];
    unsigned hi, m;
    asm("mul24.hi.u32 %0, %1, %2;" : "=r"(hi) : "r"((unsigned)x), "r"((unsigned)y));
    asm("mad24.lo.s32 %0, %1, %2, %3;" : "=r"(m) : "r"(x), "r"(y), "r"(i));
    out[i * 4] = __mul24(x, y);
    out[i * 4 + 1] = (int)__umul24((unsigned)x, (unsigned)y);
    out[i * 4 + 2] = (int)hi;
    out[i * 4 + 3] = (int)m;
}

// Warp 0 spins on a shared flag that warp 1 sets, with no barrier in between: needs warps to
// take turns (as on a GPU) rather than each running to its next barrier.
extern "C" __global__ void spin_flag(int *out) {
    __shared__ volatile int flag;
    __shared__ volatile int data;
    if (threadIdx.x == 0) flag = 0;
    __syncthreads();
    if (threadIdx.x == 0) {
        int spins = 0;
        while (flag == 0) spins++;
        out[0] = data;
        out[1] = spins > 0;
    }
    if (threadIdx.x == 32) {
        data = 1234;
        __threadfence_block();
        flag = 1;
    }
}

// __match_any_sync / __match_all_sync and address-space tests on generic pointers.
extern "C" __global__ void match_space(const int *in, unsigned *out) {
    __shared__ int sh[32];
    int loc[2];
    int t = threadIdx.x;
    int v = in[t];
    int pred;
    unsigned any = __match_any_sync(0xffffffffu, v);
    unsigned all = __match_all_sync(0xffffffffu, v & 0, &pred);
    unsigned allv = __match_all_sync(0xffffffffu, v, &pred);
    loc[0] = v; loc[1] = t;
    sh[t] = v;
    const int *ps = (t & 1) ? &sh[t] : ((t & 2) ? &loc[t & 1] : &in[t]);
    out[t * 4] = any;
    out[t * 4 + 1] = all;
    out[t * 4 + 2] = allv | (unsigned)pred;
    out[t * 4 + 3] = __isShared(ps) * 1 + __isGlobal(ps) * 2 + __isLocal(ps) * 4 + loc[t & 1] * 0;
}

// Byte dot products (dp4a, dp2a).
extern "C" __global__ void dots(const int *a, const int *b, int *out, int n) {
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= n) return;
    out[i * 4] = __dp4a(a[i], b[i], i);
    out[i * 4 + 1] = (int)__dp4a((unsigned)a[i], (unsigned)b[i], (unsigned)i);
    out[i * 4 + 2] = __dp2a_lo(a[i], b[i], 5);
    out[i * 4 + 3] = __dp2a_hi(a[i], b[i], -5);
}
