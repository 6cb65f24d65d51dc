// Reductions, histogram and prefix scan: shared memory, barriers, warp shuffles and atomics.

// Tree reduction in shared memory (dynamic shared size = blockDim.x ints, blockDim.x a power of
// two). Each block writes its partial sum and also adds it atomically to *total.
extern "C" __global__ void block_reduce_sum(const int *in, int *partial, int *total, int n)
{
    extern __shared__ int sdata[];
    unsigned tid = threadIdx.x;
    unsigned i = blockIdx.x * blockDim.x + tid;
    sdata[tid] = i < (unsigned)n ? in[i] : 0;
    __syncthreads();
    for (unsigned s = blockDim.x / 2; s > 0; s >>= 1) {
        if (tid < s)
            sdata[tid] += sdata[tid + s];
        __syncthreads();
    }
    if (tid == 0) {
        partial[blockIdx.x] = sdata[0];
        atomicAdd(total, sdata[0]);
    }
}

__device__ __forceinline__ float warp_sum(float v)
{
    for (int offset = 16; offset > 0; offset >>= 1)
        v += __shfl_down_sync(0xffffffffu, v, offset);
    return v;
}

// Warp-shuffle reduction: each warp reduces its 32 values with __shfl_down_sync, warp leaders
// meet in shared memory, and warp 0 reduces those. One float partial sum per block.
extern "C" __global__ void warp_reduce_sum(const float *in, float *partial, int n)
{
    __shared__ float warp_sums[32];
    unsigned i = blockIdx.x * blockDim.x + threadIdx.x;
    unsigned lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    float v = i < (unsigned)n ? in[i] : 0.0f;
    v = warp_sum(v);
    if (lane == 0)
        warp_sums[warp] = v;
    __syncthreads();
    if (warp == 0) {
        unsigned nwarps = (blockDim.x + 31) / 32;
        v = lane < nwarps ? warp_sums[lane] : 0.0f;
        v = warp_sum(v);
        if (lane == 0)
            partial[blockIdx.x] = v;
    }
}

// Vote and butterfly shuffle: per warp, the count of odd inputs (ballot + popc) and the maximum
// (__shfl_xor_sync), written by lane 0.
extern "C" __global__ void warp_vote_max(const unsigned *in, unsigned *odd_count, unsigned *wmax)
{
    unsigned i = blockIdx.x * blockDim.x + threadIdx.x;
    unsigned v = in[i];
    unsigned ballot = __ballot_sync(0xffffffffu, v & 1u);
    unsigned m = v;
    for (int mask = 16; mask > 0; mask >>= 1)
        m = max(m, __shfl_xor_sync(0xffffffffu, m, mask));
    if ((threadIdx.x & 31) == 0) {
        odd_count[i / 32] = __popc(ballot);
        wmax[i / 32] = m;
    }
}

// 256-bin histogram: per-block bins in shared memory (shared atomics), merged into the global
// bins with global atomics.
extern "C" __global__ void histogram256(const unsigned char *in, unsigned *bins, int n)
{
    __shared__ unsigned local[256];
    for (unsigned b = threadIdx.x; b < 256; b += blockDim.x)
        local[b] = 0;
    __syncthreads();
    for (unsigned i = blockIdx.x * blockDim.x + threadIdx.x; i < (unsigned)n; i += gridDim.x * blockDim.x)
        atomicAdd(&local[in[i]], 1u);
    __syncthreads();
    for (unsigned b = threadIdx.x; b < 256; b += blockDim.x)
        if (local[b])
            atomicAdd(&bins[b], local[b]);
}

// Inclusive scan, phase 1: Hillis-Steele scan of each block's slice in shared memory (double
// buffered, dynamic shared = 2 * blockDim.x ints); the block's total goes to block_sums.
extern "C" __global__ void scan_block(const int *in, int *out, int *block_sums, int n)
{
    extern __shared__ int buf[];
    unsigned tid = threadIdx.x;
    unsigned i = blockIdx.x * blockDim.x + tid;
    int *src = buf, *dst = buf + blockDim.x;
    src[tid] = i < (unsigned)n ? in[i] : 0;
    __syncthreads();
    for (unsigned offset = 1; offset < blockDim.x; offset <<= 1) {
        dst[tid] = tid >= offset ? src[tid] + src[tid - offset] : src[tid];
        __syncthreads();
        int *t = src;
        src = dst;
        dst = t;
    }
    if (i < (unsigned)n)
        out[i] = src[tid];
    if (tid == blockDim.x - 1)
        block_sums[blockIdx.x] = src[tid];
}

// Inclusive scan, phase 3: add the scanned total of all previous blocks (block_sums scanned
// inclusively by phase 2) to every element of a block.
extern "C" __global__ void scan_add_offsets(int *out, const int *scanned_block_sums, int n)
{
    unsigned i = blockIdx.x * blockDim.x + threadIdx.x;
    if (blockIdx.x > 0 && i < (unsigned)n)
        out[i] += scanned_block_sums[blockIdx.x - 1];
}
