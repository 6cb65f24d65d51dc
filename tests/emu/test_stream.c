/* Streams and events: ordering, queries, timing, host functions and bad handles. */
#include <pthread.h>
#include <stdint.h>
#include <string.h>

#include "emu_test.h"

struct gate {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    int open;
    int ran;
};

/* Blocks the stream's worker until the test opens the gate: makes "not ready" observable
 * without timing assumptions. */
static void CUDA_CB wait_gate(void *arg)
{
    struct gate *g = arg;
    pthread_mutex_lock(&g->lock);
    while (!g->open)
        pthread_cond_wait(&g->cond, &g->lock);
    g->ran++;
    pthread_mutex_unlock(&g->lock);
}

static void open_gate(struct gate *g)
{
    pthread_mutex_lock(&g->lock);
    g->open = 1;
    pthread_cond_broadcast(&g->cond);
    pthread_mutex_unlock(&g->lock);
}

static void CUDA_CB append(void *arg)
{
    int *log = arg;
    int n = ++log[0];
    log[n] = n;
}

Test(stream, order_and_query)
{
    emu_setup();
    CUstream s;
    CK(cuStreamCreate(&s, CU_STREAM_NON_BLOCKING));
    struct gate g = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, 0};
    CUdeviceptr a;
    CK(cuMemAlloc(&a, 4096));
    static unsigned char src[4096], dst[4096];
    memset(src, 9, sizeof src);
    CK(cuLaunchHostFunc(s, wait_gate, &g));
    CK(cuMemcpyHtoDAsync(a, src, sizeof src, s));
    CK(cuMemsetD8Async(a + 100, 1, 10, s));
    CK(cuMemcpyDtoHAsync(dst, a, sizeof dst, s));
    CUevent e;
    CK(cuEventCreate(&e, 0));
    CK(cuEventRecord(e, s));
    cr_assert_eq(cuStreamQuery(s), CUDA_ERROR_NOT_READY);
    cr_assert_eq(cuEventQuery(e), CUDA_ERROR_NOT_READY);
    cr_assert_eq(dst[0], 0); /* nothing ran past the gate */
    open_gate(&g);
    CK(cuEventSynchronize(e));
    CK(cuEventQuery(e));
    CK(cuStreamQuery(s));
    cr_assert_eq(dst[0], 9);
    cr_assert_eq(dst[100], 1);
    cr_assert_eq(dst[109], 1);
    cr_assert_eq(dst[110], 9);
    int log[8] = {0};
    for (int i = 0; i < 5; i++)
        CK(cuLaunchHostFunc(s, append, log));
    CK(cuStreamSynchronize(s));
    cr_assert_eq(log[0], 5);
    for (int i = 1; i <= 5; i++)
        cr_assert_eq(log[i], i);
    CK(cuStreamDestroy(s));
}

Test(stream, cross_stream_wait_event)
{
    emu_setup();
    CUstream s1, s2;
    CK(cuStreamCreate(&s1, 0));
    CK(cuStreamCreateWithPriority(&s2, 0, -1));
    int prio;
    CK(cuStreamGetPriority(s2, &prio));
    cr_assert_eq(prio, -1);
    unsigned flags;
    CK(cuStreamGetFlags(s1, &flags));
    cr_assert_eq(flags, 0);
    CUcontext c, cur;
    CK(cuStreamGetCtx(s1, &c));
    CK(cuCtxGetCurrent(&cur));
    cr_assert_eq(c, cur);
    struct gate g = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, 0};
    CUevent e;
    CK(cuEventCreate(&e, CU_EVENT_DISABLE_TIMING));
    CK(cuLaunchHostFunc(s1, wait_gate, &g));
    CK(cuEventRecord(e, s1));
    CK(cuStreamWaitEvent(s2, e, 0));
    int log[8] = {0};
    CK(cuLaunchHostFunc(s2, append, log));
    cr_assert_eq(cuStreamQuery(s2), CUDA_ERROR_NOT_READY);
    open_gate(&g);
    CK(cuStreamSynchronize(s2));
    cr_assert_eq(g.ran, 1);
    cr_assert_eq(log[0], 1);
    float ms;
    cr_assert_eq(cuEventElapsedTime(&ms, e, e), CUDA_ERROR_INVALID_HANDLE); /* timing disabled */
    CK(cuEventDestroy(e));
    CK(cuStreamDestroy(s1));
    CK(cuStreamDestroy(s2));
}

Test(stream, elapsed_time)
{
    emu_setup();
    CUevent a, b;
    CK(cuEventCreate(&a, 0));
    CK(cuEventCreate(&b, 0));
    float ms = -1;
    cr_assert_eq(cuEventElapsedTime(&ms, a, b), CUDA_ERROR_INVALID_HANDLE); /* not recorded */
    CK(cuEventRecord(a, NULL));
    CUdeviceptr p;
    CK(cuMemAlloc(&p, 1 << 20));
    CK(cuMemsetD8Async(p, 1, 1 << 20, NULL));
    CK(cuEventRecordWithFlags(b, CU_STREAM_PER_THREAD, 0));
    CK(cuEventSynchronize(b));
    CK(cuEventElapsedTime(&ms, a, b));
    cr_assert_geq(ms, 0.0f);
    CK(cuEventDestroy(a));
    CK(cuEventDestroy(b));
}

Test(stream, bad_handles)
{
    emu_setup();
    int junk[32] = {0};
    CUstream s;
    CUevent e;
    cr_assert_eq(cuStreamCreate(NULL, 0), CUDA_ERROR_INVALID_VALUE);
    cr_assert_eq(cuStreamCreate(&s, 0x100), CUDA_ERROR_INVALID_VALUE);
    cr_assert_eq(cuStreamSynchronize((CUstream)junk), CUDA_ERROR_INVALID_HANDLE);
    cr_assert_eq(cuStreamQuery((CUstream)junk), CUDA_ERROR_INVALID_HANDLE);
    cr_assert_eq(cuStreamDestroy((CUstream)junk), CUDA_ERROR_INVALID_HANDLE);
    cr_assert_eq(cuStreamDestroy(NULL), CUDA_ERROR_INVALID_HANDLE);
    cr_assert_eq(cuEventRecord((CUevent)junk, NULL), CUDA_ERROR_INVALID_HANDLE);
    cr_assert_eq(cuEventQuery(NULL), CUDA_ERROR_INVALID_HANDLE);
    cr_assert_eq(cuEventSynchronize((CUevent)0x42), CUDA_ERROR_INVALID_HANDLE);
    cr_assert_eq(cuEventDestroy((CUevent)junk), CUDA_ERROR_INVALID_HANDLE);
    CK(cuStreamCreate(&s, 0));
    CK(cuStreamDestroy(s));
    cr_assert_eq(cuStreamSynchronize(s), CUDA_ERROR_INVALID_HANDLE);
    cr_assert_eq(cuStreamDestroy(s), CUDA_ERROR_INVALID_HANDLE);
    CUdeviceptr p;
    CK(cuMemAlloc(&p, 16));
    cr_assert_eq(cuMemsetD8Async(p, 0, 16, s), CUDA_ERROR_INVALID_HANDLE);
    CK(cuEventCreate(&e, 0));
    CK(cuEventDestroy(e));
    cr_assert_eq(cuEventQuery(e), CUDA_ERROR_INVALID_HANDLE);
    cr_assert_eq(cuStreamWaitEvent(NULL, e, 0), CUDA_ERROR_INVALID_HANDLE);
    /* An event never recorded is complete. */
    CK(cuEventCreate(&e, 0));
    CK(cuEventQuery(e));
    CK(cuEventSynchronize(e));
    CK(cuStreamWaitEvent(NULL, e, 0));
    CK(cuCtxSynchronize());
}
