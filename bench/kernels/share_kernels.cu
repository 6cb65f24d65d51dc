// Kernels for vgpu-bench share: a kernel of a known cost (iters of dependent arithmetic per
// thread) that tenants run back to back, and a tiny one whose latency a light tenant measures.

extern "C" __global__ void burn(float *out, int iters)
{
    float x = (float)threadIdx.x;
    for (int i = 0; i < iters; i++)
        x = x * 0.999f + 0.5f;
    if (x == -1.0f) // never: keeps the loop from being optimised away
        out[threadIdx.x] = x;
}

extern "C" __global__ void tiny(float *out)
{
    out[threadIdx.x] = (float)threadIdx.x;
}
