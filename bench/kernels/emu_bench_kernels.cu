// Kernels for vgpu-emu-bench: PTX produced by nvcc at build time, run by the PTX interpreter.
extern "C" __global__ void arith_f32(float *out, float a, float b, int iters) {
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    float x = (float)i * 0.001f, y = 1.0f;
    for (int k = 0; k < iters; k++) {
        x = x * a + b;
        y = y * x - a;
        x = fmaxf(x, y) * 0.5f;
        y = y + x * b;
    }
    out[i] = x + y;
}
#define TILE 16
extern "C" __global__ void matmul_tiled(const float *A, const float *B, float *C, int n) {
    __shared__ float As[TILE][TILE];
    __shared__ float Bs[TILE][TILE];
    int tx = threadIdx.x, ty = threadIdx.y;
    int row = blockIdx.y * TILE + ty, col = blockIdx.x * TILE + tx;
    float acc = 0.0f;
    for (int t = 0; t < n / TILE; t++) {
        As[ty][tx] = A[row * n + t * TILE + tx];
        Bs[ty][tx] = B[(t * TILE + ty) * n + col];
        __syncthreads();
        for (int k = 0; k < TILE; k++) acc += As[ty][k] * Bs[k][tx];
        __syncthreads();
    }
    C[row * n + col] = acc;
}
