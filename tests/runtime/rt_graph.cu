// CUDA graphs through the runtime: a captured fork/join graph and an explicitly built one,
// launched several times, compared with a CPU reference.
#include <vector>
#include "rt_check.h"

__global__ void scale(float *v, float s, int n)
{
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n)
        v[i] = v[i] * s;
}

__global__ void add(float *dst, const float *a, const float *b, int n)
{
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n)
        dst[i] = a[i] + b[i];
}

int main()
{
    rt_seed();
    const int n = 1 << 14;
    std::vector<float> ha(n), hb(n), out(n);
    for (int i = 0; i < n; i++) {
        ha[i] = (float)(std::rand() % 1000) / 10.0f;
        hb[i] = (float)(std::rand() % 1000) / 10.0f;
    }
    float *a, *b, *c;
    RT_CHECK(cudaMalloc(&a, n * sizeof(float)));
    RT_CHECK(cudaMalloc(&b, n * sizeof(float)));
    RT_CHECK(cudaMalloc(&c, n * sizeof(float)));
    cudaStream_t s1, s2;
    RT_CHECK(cudaStreamCreateWithFlags(&s1, cudaStreamNonBlocking));
    RT_CHECK(cudaStreamCreateWithFlags(&s2, cudaStreamNonBlocking));
    cudaEvent_t fork, join;
    RT_CHECK(cudaEventCreateWithFlags(&fork, cudaEventDisableTiming));
    RT_CHECK(cudaEventCreateWithFlags(&join, cudaEventDisableTiming));

    // Capture: upload a on s1, b on s2 (forked), scale both, join, add, download.
    RT_CHECK(cudaStreamBeginCapture(s1, cudaStreamCaptureModeGlobal));
    RT_CHECK(cudaMemcpyAsync(a, ha.data(), n * sizeof(float), cudaMemcpyHostToDevice, s1));
    RT_CHECK(cudaEventRecord(fork, s1));
    RT_CHECK(cudaStreamWaitEvent(s2, fork, 0));
    RT_CHECK(cudaMemcpyAsync(b, hb.data(), n * sizeof(float), cudaMemcpyHostToDevice, s2));
    scale<<<n / 256, 256, 0, s2>>>(b, 3.0f, n);
    RT_CHECK(cudaEventRecord(join, s2));
    scale<<<n / 256, 256, 0, s1>>>(a, 2.0f, n);
    RT_CHECK(cudaStreamWaitEvent(s1, join, 0));
    add<<<n / 256, 256, 0, s1>>>(c, a, b, n);
    RT_CHECK(cudaMemcpyAsync(out.data(), c, n * sizeof(float), cudaMemcpyDeviceToHost, s1));
    cudaGraph_t graph;
    RT_CHECK(cudaStreamEndCapture(s1, &graph));
    size_t nodes = 0;
    RT_CHECK(cudaGraphGetNodes(graph, nullptr, &nodes));
    RT_EXPECT(nodes == 6, "captured %zu nodes", nodes);
    cudaGraphExec_t exec;
    RT_CHECK(cudaGraphInstantiate(&exec, graph, 0));
    for (int round = 0; round < 3; round++) {
        std::fill(out.begin(), out.end(), -1.0f);
        RT_CHECK(cudaGraphLaunch(exec, s1));
        RT_CHECK(cudaStreamSynchronize(s1));
        for (int i = 0; i < n; i++)
            RT_EXPECT(out[i] == ha[i] * 2.0f + hb[i] * 3.0f, "round %d element %d: %f", round, i, out[i]);
    }
    RT_OK("captured fork/join graph: %zu nodes, 3 launches match the CPU", nodes);

    // Explicit: a kernel node then a memset node, parameters updated in the exec.
    cudaGraph_t g2;
    RT_CHECK(cudaGraphCreate(&g2, 0));
    float factor = 0.5f;
    int count = n;
    void *args[] = {&c, &factor, &count};
    cudaKernelNodeParams kp = {};
    kp.func = (void *)scale;
    kp.gridDim = dim3(n / 256);
    kp.blockDim = dim3(256);
    kp.kernelParams = args;
    cudaGraphNode_t kn, mn;
    RT_CHECK(cudaGraphAddKernelNode(&kn, g2, nullptr, 0, &kp));
    cudaMemsetParams mp = {};
    mp.dst = a;
    mp.value = 0;
    mp.elementSize = 4;
    mp.width = n;
    mp.height = 1;
    RT_CHECK(cudaGraphAddMemsetNode(&mn, g2, &kn, 1, &mp));
    cudaGraphExec_t e2;
    RT_CHECK(cudaGraphInstantiate(&e2, g2, 0));
    factor = 4.0f;
    RT_CHECK(cudaGraphExecKernelNodeSetParams(e2, kn, &kp));
    RT_CHECK(cudaGraphLaunch(e2, s1));
    RT_CHECK(cudaMemcpyAsync(out.data(), c, n * sizeof(float), cudaMemcpyDeviceToHost, s1));
    RT_CHECK(cudaStreamSynchronize(s1));
    for (int i = 0; i < n; i++)
        RT_EXPECT(out[i] == (ha[i] * 2.0f + hb[i] * 3.0f) * 4.0f, "element %d: %f", i, out[i]);
    float first = 1.0f;
    RT_CHECK(cudaMemcpy(&first, a, sizeof first, cudaMemcpyDeviceToHost));
    RT_EXPECT(first == 0.0f, "memset node did not run");
    RT_OK("explicit graph with an updated kernel node");
    RT_CHECK(cudaGraphExecDestroy(e2));
    RT_CHECK(cudaGraphDestroy(g2));
    RT_CHECK(cudaGraphExecDestroy(exec));
    RT_CHECK(cudaGraphDestroy(graph));
    std::printf("PASS\n");
    return 0;
}
