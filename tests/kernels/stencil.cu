// Stencil and softmax: 2-D blocks with a shared-memory halo, and transcendental float math.

#define BX 16
#define BY 8

// 5-point stencil on a w x h grid (2-D grid of 2-D blocks). Each block stages its tile plus a
// one-cell halo in shared memory; cells outside the grid read as 0.
extern "C" __global__ void stencil5(const float *in, float *out, int w, int h, float c0, float c1)
{
    __shared__ float tile[BY + 2][BX + 2];
    int x = blockIdx.x * BX + threadIdx.x;
    int y = blockIdx.y * BY + threadIdx.y;
    int lx = threadIdx.x + 1, ly = threadIdx.y + 1;
#define AT(xx, yy) (((xx) >= 0 && (xx) < w && (yy) >= 0 && (yy) < h) ? in[(yy) * w + (xx)] : 0.0f)
    tile[ly][lx] = AT(x, y);
    if (threadIdx.x == 0)
        tile[ly][0] = AT(x - 1, y);
    if (threadIdx.x == BX - 1)
        tile[ly][BX + 1] = AT(x + 1, y);
    if (threadIdx.y == 0)
        tile[0][lx] = AT(x, y - 1);
    if (threadIdx.y == BY - 1)
        tile[BY + 1][lx] = AT(x, y + 1);
#undef AT
    __syncthreads();
    if (x < w && y < h)
        out[y * w + x] = c0 * tile[ly][lx] +
                         c1 * (tile[ly][lx - 1] + tile[ly][lx + 1] + tile[ly - 1][lx] + tile[ly + 1][lx]);
}

// Row-wise softmax and log-softmax of a rows x cols matrix, one block per row (blockDim.x a
// power of two <= 1024): max and sum reductions in shared memory, expf and logf.
extern "C" __global__ void softmax_rows(const float *in, float *prob, float *logprob, int cols)
{
    __shared__ float red[1024];
    const float *row = in + (size_t)blockIdx.x * cols;
    unsigned tid = threadIdx.x;
    float m = -INFINITY;
    for (int c = tid; c < cols; c += blockDim.x)
        m = fmaxf(m, row[c]);
    red[tid] = m;
    __syncthreads();
    for (unsigned s = blockDim.x / 2; s > 0; s >>= 1) {
        if (tid < s)
            red[tid] = fmaxf(red[tid], red[tid + s]);
        __syncthreads();
    }
    m = red[0];
    __syncthreads();
    float sum = 0.0f;
    for (int c = tid; c < cols; c += blockDim.x)
        sum += expf(row[c] - m);
    red[tid] = sum;
    __syncthreads();
    for (unsigned s = blockDim.x / 2; s > 0; s >>= 1) {
        if (tid < s)
            red[tid] += red[tid + s];
        __syncthreads();
    }
    sum = red[0];
    float logsum = logf(sum);
    for (int c = tid; c < cols; c += blockDim.x) {
        prob[(size_t)blockIdx.x * cols + c] = expf(row[c] - m) / sum;
        logprob[(size_t)blockIdx.x * cols + c] = row[c] - m - logsum;
    }
}
