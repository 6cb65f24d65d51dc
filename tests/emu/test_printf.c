/* Device printf goes through a per-context FIFO of CU_LIMIT_PRINTF_FIFO_SIZE bytes and reaches
 * fd 1 only at synchronizing calls, as on a GPU; what does not fit is dropped. */
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "emu_test.h"

/* Points fd 1 at a fresh temporary file; returns the file's descriptor for reading. */
static int capture_stdout(void)
{
    char path[] = "/tmp/emu_printf_XXXXXX";
    int fd = mkstemp(path);
    cr_assert_geq(fd, 0);
    unlink(path);
    fflush(stdout);
    cr_assert_eq(dup2(fd, 1), 1);
    return fd;
}

static size_t captured(int fd, char *buf, size_t cap)
{
    struct stat st;
    cr_assert_eq(fstat(fd, &st), 0);
    size_t n = (size_t)st.st_size < cap - 1 ? (size_t)st.st_size : cap - 1;
    cr_assert_eq(pread(fd, buf, n, 0), (ssize_t)n);
    buf[n] = '\0';
    return (size_t)st.st_size;
}

static CUfunction print_kernel(CUmodule *m)
{
    char *ptx = emu_read_kernel_file("emu_kernels.ptx", NULL);
    CK(cuModuleLoadData(m, ptx));
    free(ptx);
    CUfunction f;
    CK(cuModuleGetFunction(&f, *m, "emu_print"));
    return f;
}

static void launch_print(CUfunction f, int threads, int lines, int tag, CUstream s)
{
    void *params[] = {&lines, &tag};
    CK(cuLaunchKernel(f, 1, 1, 1, (unsigned)threads, 1, 1, 0, s, params, NULL));
}

static int count(const char *hay, const char *needle)
{
    int n = 0;
    for (const char *p = hay; (p = strstr(p, needle)); p++)
        n++;
    return n;
}

Test(printf, output_appears_at_synchronize_only)
{
    emu_setup();
    int fd = capture_stdout();
    CUmodule m;
    CUfunction f = print_kernel(&m);
    launch_print(f, 4, 2, 7, NULL);
    /* Wait for the kernel without a synchronizing call: nothing may have come out yet. */
    while (cuStreamQuery(NULL) == CUDA_ERROR_NOT_READY)
        usleep(1000);
    static char buf[1 << 16];
    cr_assert_eq(captured(fd, buf, sizeof buf), 0, "printf output before any synchronizing call");
    CK(cuCtxSynchronize());
    captured(fd, buf, sizeof buf);
    cr_assert_eq(count(buf, "tag 7 "), 8, "output: %s", buf);
    cr_assert(strstr(buf, "tag 7 thread 3 line 1\n"));
    close(fd);
}

Test(printf, each_synchronizing_call_flushes)
{
    emu_setup();
    int fd = capture_stdout();
    CUmodule m;
    CUfunction f = print_kernel(&m);
    static char buf[1 << 16];
    CUstream s;
    CK(cuStreamCreate(&s, 0));
    CUevent e;
    CK(cuEventCreate(&e, 0));

    launch_print(f, 1, 1, 1, s);
    CK(cuStreamSynchronize(s));
    captured(fd, buf, sizeof buf);
    cr_assert_eq(count(buf, "tag 1 "), 1);

    launch_print(f, 1, 1, 2, s);
    CK(cuEventRecord(e, s));
    CK(cuEventSynchronize(e));
    captured(fd, buf, sizeof buf);
    cr_assert_eq(count(buf, "tag 2 "), 1);

    launch_print(f, 1, 1, 3, NULL);
    int x;
    CUdeviceptr d;
    CK(cuMemAlloc(&d, 4));
    CK(cuMemcpyDtoH(&x, d, 4)); /* a blocking copy */
    captured(fd, buf, sizeof buf);
    cr_assert_eq(count(buf, "tag 3 "), 1);

    launch_print(f, 1, 1, 4, NULL);
    while (cuStreamQuery(NULL) == CUDA_ERROR_NOT_READY)
        usleep(1000);
    CK(cuModuleUnload(m)); /* module unload */
    captured(fd, buf, sizeof buf);
    cr_assert_eq(count(buf, "tag 4 "), 1);

    /* Context destruction. */
    CUcontext c;
    CK(cuCtxCreate(&c, NULL, 0, 0));
    CUmodule m2;
    CUfunction f2 = print_kernel(&m2);
    launch_print(f2, 1, 1, 5, NULL);
    CK(cuCtxDestroy(c));
    captured(fd, buf, sizeof buf);
    cr_assert_eq(count(buf, "tag 5 "), 1);

    /* Primary context reset. */
    CUcontext p = emu_setup();
    (void)p;
    CUmodule m3;
    CUfunction f3 = print_kernel(&m3);
    launch_print(f3, 1, 1, 6, NULL);
    CK(cuDevicePrimaryCtxReset(0));
    captured(fd, buf, sizeof buf);
    cr_assert_eq(count(buf, "tag 6 "), 1, "output: %s", buf);
    close(fd);
}

/* A kernel printing in a loop never produces more than the FIFO's size per flush; what does not
 * fit is dropped whole (no torn lines). */
Test(printf, fifo_bounds_each_flush)
{
    emu_setup();
    size_t v;
    CK(cuCtxGetLimit(&v, CU_LIMIT_PRINTF_FIFO_SIZE));
    cr_assert_eq(v, (size_t)1 << 20, "default printf FIFO size");
    CK(cuCtxSetLimit(CU_LIMIT_PRINTF_FIFO_SIZE, 4096));
    CK(cuCtxGetLimit(&v, CU_LIMIT_PRINTF_FIFO_SIZE));
    cr_assert_eq(v, 4096);
    int fd = capture_stdout();
    CUmodule m;
    CUfunction f = print_kernel(&m);
    static char buf[1 << 20];
    launch_print(f, 64, 200, 9, NULL); /* 12800 lines, ~330 KB of text */
    CK(cuCtxSynchronize());
    size_t first = captured(fd, buf, sizeof buf);
    cr_assert_leq(first, 4096);
    cr_assert_geq(first, 4096 - 64, "the FIFO was not filled: %zu bytes", first);
    int lines = count(buf, "\n");
    cr_assert_eq(count(buf, "tag 9 "), lines, "a line was torn");
    /* The next kernel's output is flushed on its own and also bounded. */
    launch_print(f, 64, 200, 10, NULL);
    CK(cuCtxSynchronize());
    size_t second = captured(fd, buf, sizeof buf);
    cr_assert_leq(second - first, 4096);
    cr_assert_gt(second, first);
    /* Once a kernel printed, the FIFO size is fixed, as CUDA documents. */
    cr_assert_eq(cuCtxSetLimit(CU_LIMIT_PRINTF_FIFO_SIZE, 8192), CUDA_ERROR_INVALID_VALUE);
    CK(cuCtxGetLimit(&v, CU_LIMIT_PRINTF_FIFO_SIZE));
    cr_assert_eq(v, 4096);
    close(fd);
}

Test(printf, zero_sized_fifo_drops_everything)
{
    emu_setup();
    CK(cuCtxSetLimit(CU_LIMIT_PRINTF_FIFO_SIZE, 0));
    int fd = capture_stdout();
    CUmodule m;
    CUfunction f = print_kernel(&m);
    launch_print(f, 32, 4, 11, NULL);
    CK(cuCtxSynchronize());
    char buf[64];
    cr_assert_eq(captured(fd, buf, sizeof buf), 0);
    close(fd);
}
