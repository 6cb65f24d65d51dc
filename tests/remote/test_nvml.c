/* The NVML stub (build/lib/libnvidia-ml.so.1) against gpu-server on the emulated GPU:
 * tests/remote/nvml_prog.c compares NVML's answers with the CUDA driver's and exercises the
 * error paths; with tenants, NVML shows the tenant's memory (its limit as the total, what all its
 * sessions hold as used). */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "harness.h"

#define NPROG VG_TEST_BIN_DIR "/remote_nvml_prog"
#define TPROG VG_TEST_BIN_DIR "/remote_tenant_prog"
#define MIB (1024ull * 1024)

/* The three numbers after "DEV 0 MEM " in out. */
static void mem_of(const char *out, unsigned long long *total, unsigned long long *free_b, unsigned long long *used)
{
    const char *at = strstr(out, "DEV 0 MEM ");
    cr_assert_not_null(at, "no memory line in:\n%s", out);
    cr_assert_eq(sscanf(at, "DEV 0 MEM %llu %llu %llu", total, free_b, used), 3);
}

Test(nvml, answers_as_the_cuda_driver_does, .init = th_start_server, .fini = th_stop_server, .timeout = 120)
{
    char out[8192];
    const char *argv[] = {NPROG, "info", NULL};
    int st = th_run(argv, out, sizeof out);
    cr_assert_eq(st, 0, "nvml_prog info failed:\n%s", out);
    cr_assert(strstr(out, "\nOK\n"), "%s", out);
    cr_assert(strstr(out, "COUNT 1\n") || strstr(out, "COUNT 2\n"), "%s", out);
    cr_assert(strstr(out, "DEV 0 UUID GPU-"), "%s", out);
    /* The emulated GPU has no sensors: utilization is not supported (3), not made up. */
    cr_assert(strstr(out, "DEV 0 UTIL 3\n"), "%s", out);
    /* This process holds no device memory through its NVML session. */
    cr_assert(strstr(out, "DEV 0 PROCS 0 0\n"), "%s", out);
}

Test(nvml, error_paths, .init = th_start_server, .fini = th_stop_server, .timeout = 120)
{
    char out[8192];
    const char *argv[] = {NPROG, "errors", NULL};
    cr_assert_eq(th_run(argv, out, sizeof out), 0, "%s", out);
    cr_assert(strstr(out, "OK\n"), "%s", out);
}

Test(nvml, no_server_is_driver_not_loaded, .timeout = 60)
{
    /* Nothing listens there: nvmlInit_v2 says so instead of hanging or crashing. */
    char out[4096];
    const char *argv[] = {NPROG, "info", NULL};
    const char *env[] = {"VGPU_SERVER=127.0.0.1:1", NULL};
    int st = th_capture(argv, env, out, sizeof out);
    cr_assert_neq(st, 0);
    cr_assert(strstr(out, "FAIL nvmlInit_v2(): 9"), "%s", out);
}

/* A tenant limited to 64M: NVML's total is the limit and used what its sessions hold, whichever
 * session asks. */
Test(nvml, shows_the_tenants_memory, .timeout = 120)
{
    char tfile[] = "/tmp/vgpu-nvml-tenants.XXXXXX";
    int fd = mkstemp(tfile);
    cr_assert(fd >= 0);
    const char text[] = "[alice]\ntoken = alice-nvml-0001\nmemory = 64M\n\n[bob]\ntoken = bob-nvml-0002\n";
    cr_assert_eq(write(fd, text, sizeof text - 1), (ssize_t)(sizeof text - 1));
    close(fd);
    const char *extra[] = {"--tenants", tfile, NULL};
    th_start_server_with(extra, 0);

    char out[8192];
    unsigned long long total, free_b, used;
    const char *info[] = {NPROG, "info", NULL};
    const char *alice[] = {"VGPU_TOKEN=alice-nvml-0001", NULL};
    const char *bob[] = {"VGPU_TOKEN=bob-nvml-0002", NULL};
    cr_assert_eq(th_capture(info, alice, out, sizeof out), 0, "%s", out);
    mem_of(out, &total, &free_b, &used);
    cr_assert_eq(total, 64 * MIB, "alice's total is her limit:\n%s", out);

    /* Another session of alice's holds 16M buffers up to her limit. */
    const char *argv[] = {TPROG, "alloc", "16777216", "hold", NULL};
    int in, hout;
    pid_t holder = th_spawn_io(argv, &in, &hout, alice);
    char line[256];
    cr_assert(th_expect_line(hout, "READY", line, sizeof line, 60), "the holder did not allocate");
    cr_assert_eq(th_capture(info, alice, out, sizeof out), 0, "%s", out);
    mem_of(out, &total, &free_b, &used);
    cr_assert_eq(total, 64 * MIB);
    cr_assert_geq(used, 48 * MIB, "alice's other session holds at least 48M:\n%s", out);
    cr_assert_lt(free_b, 16 * MIB, "%s", out);

    /* Bob has no limit: the device as the driver tells it. */
    cr_assert_eq(th_capture(info, bob, out, sizeof out), 0, "%s", out);
    mem_of(out, &total, &free_b, &used);
    cr_assert_gt(total, 64 * MIB, "%s", out);

    cr_assert_eq(write(in, "go\n", 3), 3);
    cr_assert(th_expect_line(hout, "AGAIN ", line, sizeof line, 60));
    close(in);
    close(hout);
    cr_assert_eq(th_wait(holder), 0);
    /* Its session process frees what it held once it sees the connection close: soon, not at
     * once. */
    for (int tries = 0; tries < 100; tries++) {
        cr_assert_eq(th_capture(info, alice, out, sizeof out), 0, "%s", out);
        mem_of(out, &total, &free_b, &used);
        if (used < 16 * MIB)
            break;
        usleep(100000);
    }
    cr_assert_lt(used, 16 * MIB, "alice's memory came back when her holder ended:\n%s", out);
    th_stop_server();
    unlink(tfile);
}
