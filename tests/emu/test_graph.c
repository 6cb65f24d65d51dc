/* Graphs: explicit construction, instantiation, launch, updates, and stream capture. Results are
 * compared with what the same work computes on the CPU. */
#include <string.h>
#include <unistd.h>

#include "emu_test.h"

enum { N = 1000 };

static CUDA_KERNEL_NODE_PARAMS kparams(CUfunction f, void **args)
{
    CUDA_KERNEL_NODE_PARAMS p;
    memset(&p, 0, sizeof p);
    p.func = f;
    p.gridDimX = (N + 127) / 128;
    p.gridDimY = p.gridDimZ = 1;
    p.blockDimX = 128;
    p.blockDimY = p.blockDimZ = 1;
    p.kernelParams = args;
    return p;
}

static CUDA_MEMCPY3D d2h(void *dst, CUdeviceptr src, size_t bytes)
{
    CUDA_MEMCPY3D c;
    memset(&c, 0, sizeof c);
    c.srcMemoryType = CU_MEMORYTYPE_DEVICE;
    c.srcDevice = src;
    c.dstMemoryType = CU_MEMORYTYPE_HOST;
    c.dstHost = dst;
    c.WidthInBytes = bytes;
    c.Height = c.Depth = 1;
    return c;
}

static void host_count(void *p)
{
    (*(int *)p)++;
}

/* memset -> iota kernel -> axpb kernel -> copy to host -> host node; launched twice. */
Test(graph, explicit_graph_runs_in_dependency_order)
{
    emu_setup();
    CUdeviceptr d;
    CK(cuMemAlloc(&d, N * sizeof(int)));
    static int host[N];
    int calls = 0;
    CUgraph g;
    CK(cuGraphCreate(&g, 0));

    CUDA_MEMSET_NODE_PARAMS ms = {d, 0, 0x7f, 4, N, 1};
    CUgraphNode nset, niota, naxpb, ncopy, nhost;
    CK(cuGraphAddMemsetNode(&nset, g, NULL, 0, &ms, NULL));
    int n = N, mul = 3, add = 5, s = 2;
    void *iota_args[] = {&d, &n, &mul, &add};
    CUDA_KERNEL_NODE_PARAMS kp = kparams(emu_kernel("emu_iota"), iota_args);
    CK(cuGraphAddKernelNode(&niota, g, &nset, 1, &kp));
    mul = 1000; /* parameters are copied when the node is made */
    void *axpb_args[] = {&d, &s, &n};
    kp = kparams(emu_kernel("emu_axpb"), axpb_args);
    CK(cuGraphAddKernelNode(&naxpb, g, &niota, 1, &kp));
    CUDA_MEMCPY3D cp = d2h(host, d, sizeof host);
    CK(cuGraphAddMemcpyNode(&ncopy, g, &naxpb, 1, &cp, NULL));
    CUDA_HOST_NODE_PARAMS hp = {host_count, &calls};
    CK(cuGraphAddHostNode(&nhost, g, &ncopy, 1, &hp));

    size_t count = 0;
    CK(cuGraphGetNodes(g, NULL, &count));
    cr_assert_eq(count, 5);
    CK(cuGraphGetRootNodes(g, NULL, &count));
    cr_assert_eq(count, 1);
    CK(cuGraphGetEdges(g, NULL, NULL, NULL, &count));
    cr_assert_eq(count, 4);
    CUgraphNodeType t;
    CK(cuGraphNodeGetType(naxpb, &t));
    cr_assert_eq(t, CU_GRAPH_NODE_TYPE_KERNEL);
    CUgraphNode deps[2] = {0};
    count = 2;
    CK(cuGraphNodeGetDependencies(ncopy, deps, NULL, &count));
    cr_assert_eq(count, 1);
    cr_assert_eq(deps[0], naxpb);

    CUgraphExec x;
    CK(cuGraphInstantiate(&x, g, 0));
    for (int round = 0; round < 2; round++) {
        memset(host, 0, sizeof host);
        CK(cuGraphLaunch(x, NULL));
        CK(cuStreamSynchronize(NULL));
        for (int i = 0; i < N; i++)
            cr_assert_eq(host[i], (i * 3 + 5) * 2 + 1, "round %d, element %d: %d", round, i, host[i]);
    }
    cr_assert_eq(calls, 2);
    CK(cuGraphExecDestroy(x));
    CK(cuGraphDestroy(g));
    cr_assert_eq(cuGraphLaunch(x, NULL), CUDA_ERROR_INVALID_VALUE);
}

Test(graph, structure_edits_and_cycles)
{
    emu_setup();
    CUgraph g;
    CK(cuGraphCreate(&g, 0));
    CUgraphNode a, b, c;
    CK(cuGraphAddEmptyNode(&a, g, NULL, 0));
    CK(cuGraphAddEmptyNode(&b, g, &a, 1));
    CK(cuGraphAddEmptyNode(&c, g, NULL, 0));
    CK(cuGraphAddDependencies(g, &b, &c, NULL, 1));
    /* c -> a would close a->b->c->a. */
    cr_assert_eq(cuGraphAddDependencies(g, &c, &a, NULL, 1), CUDA_ERROR_INVALID_VALUE);
    cr_assert_eq(cuGraphAddDependencies(g, &b, &c, NULL, 1), CUDA_ERROR_INVALID_VALUE); /* twice */
    size_t n = 0;
    CK(cuGraphNodeGetDependentNodes(b, NULL, NULL, &n));
    cr_assert_eq(n, 1);
    CK(cuGraphRemoveDependencies(g, &b, &c, NULL, 1));
    CK(cuGraphGetRootNodes(g, NULL, &n));
    cr_assert_eq(n, 2);
    CUgraphNode from[4], to[4];
    n = 4;
    CK(cuGraphGetEdges(g, from, to, NULL, &n));
    cr_assert_eq(n, 1);
    cr_assert(from[0] == a && to[0] == b && from[1] == NULL);
    CK(cuGraphDestroyNode(b));
    CK(cuGraphGetEdges(g, NULL, NULL, NULL, &n));
    cr_assert_eq(n, 0);
    cr_assert_eq(cuGraphNodeGetType(b, &(CUgraphNodeType){0}), CUDA_ERROR_INVALID_VALUE);
    /* A node of another graph is not a dependency. */
    CUgraph g2;
    CK(cuGraphCreate(&g2, 0));
    CUgraphNode other;
    cr_assert_eq(cuGraphAddEmptyNode(&other, g2, &a, 1), CUDA_ERROR_INVALID_VALUE);
    cr_assert_eq(cuGraphAddEmptyNode(&other, (CUgraph)&n, NULL, 0), CUDA_ERROR_INVALID_VALUE);
    CK(cuGraphDestroy(g2));
    CK(cuGraphDestroy(g));
}

Test(graph, node_setters_exec_setters_and_update)
{
    emu_setup();
    CUdeviceptr d;
    CK(cuMemAlloc(&d, N * sizeof(int)));
    static int host[N];
    CUgraph g;
    CK(cuGraphCreate(&g, 0));
    int n = N, mul = 1, add = 0;
    void *args[] = {&d, &n, &mul, &add};
    CUDA_KERNEL_NODE_PARAMS kp = kparams(emu_kernel("emu_iota"), args);
    CUgraphNode k;
    CK(cuGraphAddKernelNode(&k, g, NULL, 0, &kp));
    /* Reading the parameters back gives what was set. */
    CUDA_KERNEL_NODE_PARAMS back;
    CK(cuGraphKernelNodeGetParams(k, &back));
    cr_assert_eq(back.gridDimX, kp.gridDimX);
    cr_assert_eq(*(int *)back.kernelParams[2], 1);
    mul = 7;
    CK(cuGraphKernelNodeSetParams(k, &kp));
    CUgraphExec x;
    CK(cuGraphInstantiate(&x, g, 0));
    CK(cuGraphLaunch(x, NULL));
    CK(cuMemcpyDtoH(host, d, sizeof host));
    cr_assert_eq(host[10], 70);
    /* Changing the exec's node changes later launches only. */
    add = 3;
    CK(cuGraphExecKernelNodeSetParams(x, k, &kp));
    CK(cuGraphLaunch(x, NULL));
    CK(cuMemcpyDtoH(host, d, sizeof host));
    cr_assert_eq(host[10], 73);
    /* Disabled, the node does nothing. */
    CK(cuMemsetD32(d, 0, N));
    CK(cuGraphNodeSetEnabled(x, k, 0));
    unsigned en = 1;
    CK(cuGraphNodeGetEnabled(x, k, &en));
    cr_assert_eq(en, 0);
    CK(cuGraphLaunch(x, NULL));
    CK(cuMemcpyDtoH(host, d, sizeof host));
    cr_assert_eq(host[10], 0);
    CK(cuGraphNodeSetEnabled(x, k, 1));

    /* Whole-graph update: same shape, new parameters. */
    CUgraph g2;
    CK(cuGraphCreate(&g2, 0));
    mul = 2;
    add = 1;
    CUgraphNode k2;
    CK(cuGraphAddKernelNode(&k2, g2, NULL, 0, &kp));
    CUgraphExecUpdateResultInfo info;
    CK(cuGraphExecUpdate(x, g2, &info));
    cr_assert_eq(info.result, CU_GRAPH_EXEC_UPDATE_SUCCESS);
    CK(cuGraphLaunch(x, NULL));
    CK(cuMemcpyDtoH(host, d, sizeof host));
    cr_assert_eq(host[10], 21);
    /* A different shape is refused, and the exec keeps working. */
    CUgraphNode extra;
    CK(cuGraphAddEmptyNode(&extra, g2, &k2, 1));
    cr_assert_eq(cuGraphExecUpdate(x, g2, &info), CUDA_ERROR_GRAPH_EXEC_UPDATE_FAILURE);
    cr_assert_eq(info.result, CU_GRAPH_EXEC_UPDATE_ERROR_TOPOLOGY_CHANGED);
    CK(cuGraphLaunch(x, NULL));
    CK(cuCtxSynchronize());
    CK(cuGraphExecDestroy(x));
    CK(cuGraphDestroy(g));
    CK(cuGraphDestroy(g2));
}

Test(graph, child_graphs_clones_and_events)
{
    emu_setup();
    CUdeviceptr d;
    CK(cuMemAlloc(&d, N * sizeof(int)));
    static int host[N];
    CUgraph child, g;
    CK(cuGraphCreate(&child, 0));
    int n = N, mul = 2, add = 9, s = 3;
    void *iota_args[] = {&d, &n, &mul, &add};
    CUDA_KERNEL_NODE_PARAMS kp = kparams(emu_kernel("emu_iota"), iota_args);
    CUgraphNode ck;
    CK(cuGraphAddKernelNode(&ck, child, NULL, 0, &kp));
    CK(cuGraphCreate(&g, 0));
    CUevent e0, e1;
    CK(cuEventCreate(&e0, 0));
    CK(cuEventCreate(&e1, 0));
    CUgraphNode r0, sub, ax, r1;
    CK(cuGraphAddEventRecordNode(&r0, g, NULL, 0, e0));
    CK(cuGraphAddChildGraphNode(&sub, g, &r0, 1, child));
    void *axpb_args[] = {&d, &s, &n};
    kp = kparams(emu_kernel("emu_axpb"), axpb_args);
    CK(cuGraphAddKernelNode(&ax, g, &sub, 1, &kp));
    CK(cuGraphAddEventRecordNode(&r1, g, &ax, 1, e1));
    CUgraph embedded;
    CK(cuGraphChildGraphNodeGetGraph(sub, &embedded));
    size_t count;
    CK(cuGraphGetNodes(embedded, NULL, &count));
    cr_assert_eq(count, 1);
    CUevent got;
    CK(cuGraphEventRecordNodeGetEvent(r1, &got));
    cr_assert_eq(got, e1);

    /* A clone is independent; its nodes are found from the original's. */
    CUgraph clone;
    CK(cuGraphClone(&clone, g));
    CUgraphNode ax_clone;
    CK(cuGraphNodeFindInClone(&ax_clone, ax, clone));
    cr_assert_neq(ax_clone, ax);
    CK(cuGraphDestroy(g));
    CUgraphExec x;
    CK(cuGraphInstantiate(&x, clone, 0));
    CK(cuGraphLaunch(x, NULL));
    CK(cuEventSynchronize(e1));
    float ms = -1;
    CK(cuEventElapsedTime(&ms, e0, e1));
    cr_assert_geq(ms, 0.0f);
    CK(cuMemcpyDtoH(host, d, sizeof host));
    for (int i = 0; i < N; i++)
        cr_assert_eq(host[i], (i * 2 + 9) * 3 + 1);
    CK(cuGraphExecDestroy(x));
    CK(cuGraphDestroy(clone));
    /* A graph cannot embed itself; the DOT dump names the nodes. */
    CK(cuGraphCreate(&g, 0));
    CK(cuGraphAddChildGraphNode(&sub, g, NULL, 0, child));
    CUgraphNode self;
    cr_assert_eq(cuGraphAddChildGraphNode(&self, g, NULL, 0, g), CUDA_ERROR_INVALID_VALUE);
    CK(cuGraphDestroy(child));
    char path[] = "/tmp/emu_graph_dot_XXXXXX";
    int fd = mkstemp(path);
    close(fd);
    CK(cuGraphDebugDotPrint(g, path, 0));
    FILE *f = fopen(path, "r");
    char buf[256] = "";
    cr_assert(f && fgets(buf, sizeof buf, f));
    fclose(f);
    unlink(path);
    cr_assert(strstr(buf, "digraph"));
    CK(cuGraphDestroy(g));
}

static int destroyed;
static void on_destroy(void *p)
{
    destroyed += *(int *)p;
}

Test(graph, user_objects_live_as_long_as_their_graphs)
{
    emu_setup();
    static int tag = 1;
    CUuserObject o;
    CK(cuUserObjectCreate(&o, &tag, on_destroy, 1, CU_USER_OBJECT_NO_DESTRUCTOR_SYNC));
    CUgraph g;
    CK(cuGraphCreate(&g, 0));
    CK(cuGraphRetainUserObject(g, o, 1, CU_GRAPH_USER_OBJECT_MOVE)); /* the graph takes ours */
    CUgraphExec x;
    CK(cuGraphInstantiate(&x, g, 0));
    CK(cuGraphDestroy(g));
    cr_assert_eq(destroyed, 0, "the exec still holds it");
    CK(cuGraphExecDestroy(x));
    cr_assert_eq(destroyed, 1);
    cr_assert_eq(cuUserObjectRelease(o, 1), CUDA_ERROR_INVALID_VALUE);
}

/* Capture: work on s1 forks to s2 through an event and joins back; the captured graph has the
 * fork's shape and computes what the stream work would have. */
Test(graph, stream_capture_fork_join)
{
    emu_setup();
    CUstream s1, s2;
    CK(cuStreamCreate(&s1, CU_STREAM_NON_BLOCKING));
    CK(cuStreamCreate(&s2, CU_STREAM_NON_BLOCKING));
    CUdeviceptr a, b;
    CK(cuMemAlloc(&a, N * sizeof(int)));
    CK(cuMemAlloc(&b, N * sizeof(int)));
    CUevent fork, join;
    CK(cuEventCreate(&fork, CU_EVENT_DISABLE_TIMING));
    CK(cuEventCreate(&join, CU_EVENT_DISABLE_TIMING));
    static int ha[N], hb[N];
    int n = N, mul = 1, add = 0, s = 5;

    CK(cuStreamBeginCapture(s1, CU_STREAM_CAPTURE_MODE_GLOBAL));
    CUstreamCaptureStatus st;
    CK(cuStreamIsCapturing(s1, &st));
    cr_assert_eq(st, CU_STREAM_CAPTURE_STATUS_ACTIVE);
    void *iota_a[] = {&a, &n, &mul, &add};
    CK(cuLaunchKernel(emu_kernel("emu_iota"), (N + 127) / 128, 1, 1, 128, 1, 1, 0, s1, iota_a, NULL));
    CK(cuEventRecord(fork, s1));
    CK(cuStreamWaitEvent(s2, fork, 0)); /* s2 joins the capture */
    CK(cuStreamIsCapturing(s2, &st));
    cr_assert_eq(st, CU_STREAM_CAPTURE_STATUS_ACTIVE);
    CK(cuMemcpyDtoDAsync(b, a, N * sizeof(int), s2));
    void *axpb_b[] = {&b, &s, &n};
    CK(cuLaunchKernel(emu_kernel("emu_axpb"), (N + 127) / 128, 1, 1, 128, 1, 1, 0, s2, axpb_b, NULL));
    CK(cuMemsetD32Async(a, 4, N, s1));
    CK(cuEventRecord(join, s2));
    CK(cuStreamWaitEvent(s1, join, 0));
    CK(cuMemcpyDtoHAsync(hb, b, sizeof hb, s1));
    CK(cuMemcpyDtoHAsync(ha, a, sizeof ha, s1));
    cuuint64_t id;
    CUgraph during;
    const CUgraphNode *deps;
    size_t ndeps;
    CK(cuStreamGetCaptureInfo(s1, &st, &id, &during, &deps, NULL, &ndeps));
    cr_assert_eq(ndeps, 1);
    CUgraph g;
    CK(cuStreamEndCapture(s1, &g));
    cr_assert_eq(g, during);
    CK(cuStreamIsCapturing(s2, &st));
    cr_assert_eq(st, CU_STREAM_CAPTURE_STATUS_NONE);
    /* Nothing ran during capture. */
    int probe = -1;
    CK(cuMemcpyDtoH(&probe, b, sizeof probe));
    cr_assert_eq(probe, 0);

    size_t count;
    CK(cuGraphGetNodes(g, NULL, &count));
    cr_assert_eq(count, 6); /* iota, copy, axpb, memset, two copies to host */
    CK(cuGraphGetRootNodes(g, NULL, &count));
    cr_assert_eq(count, 1);
    CUgraphExec x;
    CK(cuGraphInstantiate(&x, g, 0));
    CK(cuGraphLaunch(x, s1));
    CK(cuStreamSynchronize(s1));
    for (int i = 0; i < N; i++) {
        cr_assert_eq(hb[i], i * 5 + 1);
        cr_assert_eq(ha[i], 4);
    }
    CK(cuGraphExecDestroy(x));
    CK(cuGraphDestroy(g));
}

Test(graph, capture_errors)
{
    emu_setup();
    CUstream s1, s2;
    CK(cuStreamCreate(&s1, 0));
    CK(cuStreamCreate(&s2, 0));
    CUgraph g;
    /* The legacy stream cannot be captured; ending a capture that never began is refused. */
    cr_assert_eq(cuStreamBeginCapture(NULL, CU_STREAM_CAPTURE_MODE_GLOBAL),
                 CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED);
    cr_assert_eq(cuStreamEndCapture(s1, &g), CUDA_ERROR_ILLEGAL_STATE);

    /* A synchronizing call during a global capture invalidates it. */
    CK(cuStreamBeginCapture(s1, CU_STREAM_CAPTURE_MODE_GLOBAL));
    cr_assert_eq(cuStreamBeginCapture(s1, CU_STREAM_CAPTURE_MODE_GLOBAL), CUDA_ERROR_ILLEGAL_STATE);
    cr_assert_eq(cuCtxSynchronize(), CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED);
    CUdeviceptr p;
    cr_assert_eq(cuMemAlloc(&p, 64), CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED);
    CUstreamCaptureStatus st;
    CK(cuStreamIsCapturing(s1, &st));
    cr_assert_eq(st, CU_STREAM_CAPTURE_STATUS_INVALIDATED);
    cr_assert_eq(cuStreamEndCapture(s1, &g), CUDA_ERROR_STREAM_CAPTURE_INVALIDATED);
    cr_assert_null(g);

    /* Relaxed mode allows it. */
    CK(cuStreamBeginCapture(s1, CU_STREAM_CAPTURE_MODE_RELAXED));
    CK(cuMemAlloc(&p, 64));
    CK(cuStreamEndCapture(s1, &g));
    CK(cuGraphDestroy(g));

    /* A forked stream that does not join back. */
    CUevent e;
    CK(cuEventCreate(&e, 0));
    CK(cuStreamBeginCapture(s1, CU_STREAM_CAPTURE_MODE_GLOBAL));
    CK(cuMemsetD8Async(p, 1, 64, s1));
    CK(cuEventRecord(e, s1));
    CK(cuStreamWaitEvent(s2, e, 0));
    CK(cuMemsetD8Async(p, 2, 64, s2));
    cr_assert_eq(cuStreamEndCapture(s2, &g), CUDA_ERROR_STREAM_CAPTURE_UNMATCHED);
    cr_assert_eq(cuStreamEndCapture(s1, &g), CUDA_ERROR_STREAM_CAPTURE_UNJOINED);
    CK(cuStreamIsCapturing(s2, &st));
    cr_assert_eq(st, CU_STREAM_CAPTURE_STATUS_NONE);

    /* Stream callbacks cannot be captured; querying a capturing stream is refused. */
    CK(cuStreamBeginCapture(s1, CU_STREAM_CAPTURE_MODE_THREAD_LOCAL));
    cr_assert_eq(cuStreamQuery(s1), CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED);
    cr_assert_eq(cuStreamEndCapture(s1, &g), CUDA_ERROR_STREAM_CAPTURE_INVALIDATED);
    CK(cuCtxSynchronize());
}

/* cuMemAllocAsync and cuMemFreeAsync in a capture become memory nodes; the graph then uses the
 * memory as the stream work would have. */
Test(graph, captured_stream_ordered_allocation)
{
    emu_setup();
    CUstream s;
    CK(cuStreamCreate(&s, CU_STREAM_NON_BLOCKING));
    static int host[N];
    int n = N, mul = 4, add = 2;
    CUdeviceptr d;
    CK(cuStreamBeginCapture(s, CU_STREAM_CAPTURE_MODE_GLOBAL));
    CK(cuMemAllocAsync(&d, N * sizeof(int), s));
    void *args[] = {&d, &n, &mul, &add};
    CK(cuLaunchKernel(emu_kernel("emu_iota"), (N + 127) / 128, 1, 1, 128, 1, 1, 0, s, args, NULL));
    CK(cuMemcpyDtoHAsync(host, d, sizeof host, s));
    CK(cuMemFreeAsync(d, s));
    CUgraph g;
    CK(cuStreamEndCapture(s, &g));
    CUgraphNode nodes[8];
    size_t count = 8;
    CK(cuGraphGetNodes(g, nodes, &count));
    cr_assert_eq(count, 4);
    CUgraphNodeType t;
    CK(cuGraphNodeGetType(nodes[0], &t));
    cr_assert_eq(t, CU_GRAPH_NODE_TYPE_MEM_ALLOC);
    CK(cuGraphNodeGetType(nodes[3], &t));
    cr_assert_eq(t, CU_GRAPH_NODE_TYPE_MEM_FREE);
    CUDA_MEM_ALLOC_NODE_PARAMS ap;
    CK(cuGraphMemAllocNodeGetParams(nodes[0], &ap));
    cr_assert_eq(ap.dptr, d);
    cr_assert_eq(ap.bytesize, N * sizeof(int));
    CUgraphExec x;
    CK(cuGraphInstantiate(&x, g, 0));
    CK(cuGraphLaunch(x, s));
    CK(cuStreamSynchronize(s));
    for (int i = 0; i < N; i++)
        cr_assert_eq(host[i], i * 4 + 2);
    cuuint64_t used;
    CK(cuDeviceGetGraphMemAttribute(0, CU_GRAPH_MEM_ATTR_USED_MEM_CURRENT, &used));
    cr_assert_geq(used, N * sizeof(int));
    CK(cuGraphExecDestroy(x));
    CK(cuGraphDestroy(g));
    CK(cuDeviceGetGraphMemAttribute(0, CU_GRAPH_MEM_ATTR_USED_MEM_CURRENT, &used));
    cr_assert_eq(used, 0);
}

/* The generic node API adds and updates nodes of every kind it names. */
Test(graph, generic_node_params)
{
    emu_setup();
    CUdeviceptr d;
    CK(cuMemAlloc(&d, N * sizeof(int)));
    CUgraph g;
    CK(cuGraphCreate(&g, 0));
    CUgraphNodeParams p;
    memset(&p, 0, sizeof p);
    p.type = CU_GRAPH_NODE_TYPE_MEMSET;
    p.memset.dst = d;
    p.memset.value = 9;
    p.memset.elementSize = 4;
    p.memset.width = N;
    p.memset.height = 1;
    CUgraphNode m;
    CK(cuGraphAddNode(&m, g, NULL, NULL, 0, &p));
    p.memset.value = 11;
    CK(cuGraphNodeSetParams(m, &p));
    CUDA_MEMSET_NODE_PARAMS back;
    CK(cuGraphMemsetNodeGetParams(m, &back));
    cr_assert_eq(back.value, 11);
    memset(&p, 0, sizeof p);
    p.type = CU_GRAPH_NODE_TYPE_CONDITIONAL;
    CUgraphNode c;
    cr_assert_eq(cuGraphAddNode(&c, g, NULL, NULL, 0, &p), CUDA_ERROR_NOT_SUPPORTED);
    CUgraphExec x;
    CK(cuGraphInstantiate(&x, g, 0));
    CK(cuGraphLaunch(x, NULL));
    int v;
    CK(cuMemcpyDtoH(&v, d + 400, sizeof v));
    cr_assert_eq(v, 11);
    CK(cuGraphExecDestroy(x));
    CK(cuGraphDestroy(g));
}
