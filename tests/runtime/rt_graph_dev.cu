// Graphs on device memory only (what a graph on gpu-server can do): stream capture of a memset,
// kernels and a device-to-device copy; a graph built node by node; instantiate, launch twice,
// update a kernel node's parameters in the executable graph, launch again; results compared with
// a CPU computation after each launch.
#include <vector>

#include "rt_check.h"

__global__ void axpb(int n, int a, int b, const int *x, int *y)
{
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n)
        y[i] += a * x[i] + b;
}

static void expect_y(const int *dy, const std::vector<int> &want, const char *what)
{
    std::vector<int> got(want.size());
    RT_CHECK(cudaMemcpy(got.data(), dy, want.size() * sizeof(int), cudaMemcpyDeviceToHost));
    for (size_t i = 0; i < want.size(); i++)
        RT_EXPECT(got[i] == want[i], "%s: y[%zu] = %d, expected %d", what, i, got[i], want[i]);
}

int main()
{
    rt_seed();
    const int n = 3000;
    std::vector<int> hx(n), y(n, 0);
    for (int i = 0; i < n; i++)
        hx[i] = std::rand() % 100;
    int *x, *dy, *copy;
    RT_CHECK(cudaMalloc(&x, n * sizeof(int)));
    RT_CHECK(cudaMalloc(&dy, n * sizeof(int)));
    RT_CHECK(cudaMalloc(&copy, n * sizeof(int)));
    RT_CHECK(cudaMemcpy(x, hx.data(), n * sizeof(int), cudaMemcpyHostToDevice));

    // Captured: y = 0; y += 2x + 1; y += 3x + 0; copy = y.
    cudaStream_t s;
    RT_CHECK(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking));
    cudaGraph_t g;
    RT_CHECK(cudaStreamBeginCapture(s, cudaStreamCaptureModeGlobal));
    RT_CHECK(cudaMemsetAsync(dy, 0, n * sizeof(int), s));
    axpb<<<(n + 255) / 256, 256, 0, s>>>(n, 2, 1, x, dy);
    axpb<<<(n + 255) / 256, 256, 0, s>>>(n, 3, 0, x, dy);
    RT_CHECK(cudaMemcpyAsync(copy, dy, n * sizeof(int), cudaMemcpyDeviceToDevice, s));
    RT_CHECK(cudaStreamEndCapture(s, &g));
    size_t nodes = 0;
    RT_CHECK(cudaGraphGetNodes(g, nullptr, &nodes));
    RT_EXPECT(nodes == 4, "captured %zu nodes", nodes);
    cudaGraphExec_t ge;
    RT_CHECK(cudaGraphInstantiate(&ge, g, 0));
    for (int launch = 1; launch <= 2; launch++) {
        RT_CHECK(cudaGraphLaunch(ge, s));
        RT_CHECK(cudaStreamSynchronize(s));
        for (int i = 0; i < n; i++)
            y[i] = 5 * hx[i] + 1;
        expect_y(dy, y, "captured graph");
        expect_y(copy, y, "captured graph's copy");
    }
    RT_OK("a captured graph (memset, 2 kernels, copy) launched twice");

    // Built by hand: a kernel node after a memset node; then its parameters updated.
    cudaGraph_t h;
    RT_CHECK(cudaGraphCreate(&h, 0));
    cudaMemsetParams mp = {};
    mp.dst = dy;
    mp.value = 7;
    mp.elementSize = 4;
    mp.width = n;
    mp.height = 1;
    cudaGraphNode_t mset, kern;
    RT_CHECK(cudaGraphAddMemsetNode(&mset, h, nullptr, 0, &mp));
    int a = 4, b = -2, nn = n;
    void *args[] = {&nn, &a, &b, &x, &dy};
    cudaKernelNodeParams kp = {};
    kp.func = (void *)axpb;
    kp.gridDim = dim3((n + 127) / 128);
    kp.blockDim = dim3(128);
    kp.kernelParams = args;
    RT_CHECK(cudaGraphAddKernelNode(&kern, h, &mset, 1, &kp));
    cudaGraphExec_t he;
    RT_CHECK(cudaGraphInstantiate(&he, h, 0));
    RT_CHECK(cudaGraphLaunch(he, s));
    RT_CHECK(cudaStreamSynchronize(s));
    for (int i = 0; i < n; i++)
        y[i] = 7 + 4 * hx[i] - 2;
    expect_y(dy, y, "built graph");
    a = -1;
    b = 10;
    RT_CHECK(cudaGraphExecKernelNodeSetParams(he, kern, &kp));
    RT_CHECK(cudaGraphLaunch(he, s));
    RT_CHECK(cudaStreamSynchronize(s));
    for (int i = 0; i < n; i++)
        y[i] = 7 - hx[i] + 10;
    expect_y(dy, y, "updated graph");
    RT_OK("a graph built node by node, then its kernel's parameters updated in the executable graph");

    RT_CHECK(cudaGraphExecDestroy(ge));
    RT_CHECK(cudaGraphExecDestroy(he));
    RT_CHECK(cudaGraphDestroy(g));
    RT_CHECK(cudaGraphDestroy(h));
    RT_CHECK(cudaStreamDestroy(s));
    RT_CHECK(cudaFree(x));
    RT_CHECK(cudaFree(dy));
    RT_CHECK(cudaFree(copy));
    return 0;
}
