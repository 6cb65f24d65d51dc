/* One emulated device per host: processes that load the emulated driver share each device's
 * memory capacity through a shared segment. Each test forks before any CUDA call (the driver is
 * not fork-safe, like CUDA) and names its own segment, which it removes at the end. */
#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "emu_test.h"

#define MiB ((size_t)1 << 20)

static char seg_name[64];

/* A segment of our own for this test, and a device of `mem` bytes. */
static void private_segment(const char *mem)
{
    snprintf(seg_name, sizeof seg_name, "vgpu-test-shm-%d", (int)getpid());
    setenv("VGPU_EMU_SHM", seg_name, 1);
    setenv("VGPU_EMU_MEMORY", mem, 1);
}

static void remove_segment(void)
{
    char path[80];
    if (!seg_name[0])
        return;
    snprintf(path, sizeof path, "/%s", seg_name);
    shm_unlink(path);
}

TestSuite(shm, .fini = remove_segment); /* also after a failed assertion */

/* A child process that allocates `bytes` on device 0 and then follows commands on a pipe:
 * 'q' frees and exits, anything else is ignored; it reports "R" once allocated ("F" on failure). */
struct child {
    pid_t pid;
    int cmd, reply;
};

static void child_main(size_t bytes, int cmd, int reply)
{
    CUcontext c;
    CUdeviceptr p = 0;
    char r = 'F';
    if (cuInit(0) == CUDA_SUCCESS && cuDevicePrimaryCtxRetain(&c, 0) == CUDA_SUCCESS &&
        cuCtxSetCurrent(c) == CUDA_SUCCESS && (bytes == 0 || cuMemAlloc(&p, bytes) == CUDA_SUCCESS))
        r = 'R';
    if (write(reply, &r, 1) != 1)
        _exit(2);
    char k;
    while (read(cmd, &k, 1) == 1 && k != 'q')
        ;
    if (p)
        cuMemFree(p);
    _exit(0);
}

static struct child spawn(size_t bytes)
{
    int to[2], from[2];
    cr_assert_eq(pipe(to), 0);
    cr_assert_eq(pipe(from), 0);
    fflush(NULL);
    pid_t pid = fork();
    cr_assert_geq(pid, 0);
    if (pid == 0) {
        close(to[1]);
        close(from[0]);
        child_main(bytes, to[0], from[1]);
    }
    close(to[0]);
    close(from[1]);
    struct child ch = {pid, to[1], from[0]};
    char r = 0;
    cr_assert_eq(read(ch.reply, &r, 1), 1);
    cr_assert_eq(r, 'R', "the child could not allocate %zu bytes", bytes);
    return ch;
}

static int reap(struct child *ch, int sig)
{
    if (sig)
        kill(ch->pid, sig);
    else
        cr_assert_eq(write(ch->cmd, "q", 1), 1);
    int st;
    cr_assert_eq(waitpid(ch->pid, &st, 0), ch->pid);
    close(ch->cmd);
    close(ch->reply);
    return st;
}

static size_t used_now(void)
{
    size_t free_b, total;
    CK(cuMemGetInfo(&free_b, &total));
    return total - free_b;
}

Test(shm, processes_see_each_others_usage)
{
    private_segment("1G");
    struct child a = spawn(100 * MiB);
    struct child b = spawn(50 * MiB);
    emu_setup();
    cr_assert_eq(used_now(), 150 * MiB);
    CUdeviceptr p;
    CK(cuMemAlloc(&p, 10 * MiB));
    cr_assert_eq(used_now(), 160 * MiB);
    reap(&a, 0); /* frees and exits cleanly */
    cr_assert_eq(used_now(), 60 * MiB);
    CK(cuMemFree(p));
    cr_assert_eq(used_now(), 50 * MiB);
    reap(&b, 0);
    cr_assert_eq(used_now(), 0);
}

Test(shm, device_full_across_processes)
{
    private_segment("64M");
    struct child a = spawn(48 * MiB);
    emu_setup();
    CUdeviceptr p;
    cr_assert_eq(cuMemAlloc(&p, 32 * MiB), CUDA_ERROR_OUT_OF_MEMORY);
    CK(cuMemAlloc(&p, 8 * MiB));
    CK(cuMemFree(p));
    reap(&a, SIGKILL);
    CK(cuMemAlloc(&p, 32 * MiB)); /* the dead child's memory came back */
    CK(cuMemFree(p));
}

Test(shm, sigkilled_process_usage_comes_back)
{
    private_segment("1G");
    emu_setup();
    CUdeviceptr mine;
    CK(cuMemAlloc(&mine, 3 * MiB));
    struct child a = spawn(200 * MiB);
    cr_assert_eq(used_now(), 203 * MiB);
    reap(&a, SIGKILL);
    cr_assert_eq(used_now(), 3 * MiB);
    CK(cuMemFree(mine));
}

/* Children that allocate and free in a loop, killed at arbitrary points (in the middle of an
 * allocation included): nothing leaks. */
Test(shm, killed_mid_allocation_leaks_nothing)
{
    private_segment("256M");
    emu_setup();
    for (int round = 0; round < 12; round++) {
        int ready[2];
        cr_assert_eq(pipe(ready), 0);
        fflush(NULL);
        pid_t pid = fork();
        cr_assert_geq(pid, 0);
        if (pid == 0) {
            close(ready[0]);
            CUcontext c;
            if (cuInit(0) || cuDevicePrimaryCtxRetain(&c, 0) || cuCtxSetCurrent(c))
                _exit(1);
            if (write(ready[1], "R", 1) != 1)
                _exit(2);
            CUdeviceptr held[8] = {0};
            for (unsigned i = 0;; i++) {
                unsigned k = i % 8;
                if (held[k])
                    cuMemFree(held[k]);
                held[k] = 0;
                cuMemAlloc(&held[k], (size_t)(1 + (i * 7919) % 4096) * 1024);
            }
        }
        close(ready[1]);
        char r;
        cr_assert_eq(read(ready[0], &r, 1), 1);
        close(ready[0]);
        usleep((useconds_t)(1000 + (round * 3137) % 20000));
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
        cr_assert_eq(used_now(), 0, "round %d: a killed process's memory stayed in use", round);
    }
}

/* Another process may scribble on the segment: impossible usage values saturate instead of
 * wrapping, a slot without a live owner is reclaimed, and a damaged header makes the driver fall
 * back to its own accounting; none of it crashes. */
Test(shm, scribbled_segment_is_survived)
{
    private_segment("1G");
    struct child a = spawn(10 * MiB); /* creates the segment */
    char path[80];
    snprintf(path, sizeof path, "/%s", seg_name);
    int fd = shm_open(path, O_RDWR, 0);
    cr_assert_geq(fd, 0);
    off_t size = lseek(fd, 0, SEEK_END);
    cr_assert_gt(size, 64);
    unsigned char *seg = mmap(NULL, (size_t)size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    cr_assert_neq(seg, MAP_FAILED);
    /* Huge values in every usage word past the header and owner table: the device looks full,
     * but sums do not wrap to "empty". */
    size_t usage_at = (size_t)size - 16 * 256 * 8;
    unsigned char saved[16 * 256 * 8];
    memcpy(saved, seg + usage_at, sizeof saved);
    memset(seg + usage_at, 0xff, sizeof saved);
    emu_setup();
    size_t free_b, total;
    CK(cuMemGetInfo(&free_b, &total));
    cr_assert_leq(free_b, total);
    /* Slots that claim usage without an owner are reclaimed; the live child's is rewritten from
     * its own bookkeeping at its next change. */
    memcpy(seg + usage_at, saved, sizeof saved);
    CUdeviceptr p;
    CK(cuMemAlloc(&p, MiB));
    cr_assert_eq(used_now(), 11 * MiB);
    /* A damaged header: this process stops trusting the segment and keeps counting its own. */
    memset(seg, 0x5a, 16);
    CK(cuMemFree(p));
    CK(cuMemAlloc(&p, 2 * MiB));
    cr_assert_eq(used_now(), 2 * MiB);
    CK(cuMemFree(p));
    reap(&a, 0);
    munmap(seg, (size_t)size);
    close(fd);
}

Test(shm, opt_out_keeps_accounting_per_process)
{
    setenv("VGPU_EMU_SHM", "none", 1);
    setenv("VGPU_EMU_MEMORY", "1G", 1);
    struct child a = spawn(100 * MiB);
    emu_setup();
    cr_assert_eq(used_now(), 0);
    reap(&a, 0);
}

/* A process that sees only device 1 (CUDA_VISIBLE_DEVICES=1, as its device 0) charges the
 * host's device 1, which the others see. */
Test(shm, visible_devices_charge_the_hosts_device)
{
    private_segment("1G");
    setenv("VGPU_EMU_DEVICES", "2", 1);
    setenv("CUDA_VISIBLE_DEVICES", "1", 1);
    struct child a = spawn(64 * MiB);
    unsetenv("CUDA_VISIBLE_DEVICES");
    CK(cuInit(0));
    CUcontext c;
    CK(cuDevicePrimaryCtxRetain(&c, 1));
    CK(cuCtxSetCurrent(c));
    cr_assert_eq(used_now(), 64 * MiB);
    CK(cuDevicePrimaryCtxRetain(&c, 0));
    CK(cuCtxSetCurrent(c));
    cr_assert_eq(used_now(), 0);
    reap(&a, 0);
}
