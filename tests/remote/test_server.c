/* gpu-server against malformed and hostile input (raw protocol clients), and end-to-end driver
 * programs through the stub. Each test gets its own server (harness.c). */
#include <criterion/criterion.h>
#include <cuda.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "calls.h"
#include "harness.h"

TestSuite(server, .init = th_start_server, .fini = th_stop_server, .timeout = 120);

static void send_header(int fd, uint32_t magic, uint16_t version, uint16_t type, uint32_t pb_len,
                        uint64_t bulk_len)
{
    struct vg_frame_header h = {.magic = magic, .version = version, .type = type, .pb_len = pb_len,
                                .bulk_len = bulk_len, .request_id = 1};
    uint8_t buf[VG_FRAME_HEADER_SIZE];
    vg_frame_encode_header(&h, buf);
    cr_assert_eq(vg_io_write_all(fd, buf, sizeof buf), 0);
}

Test(server, handshake_and_call)
{
    int fd = th_connect_hello();
    Vgpu__Reply *r = th_call(fd, VG_CALL_cuDeviceGetCount, 0, NULL, 0, NULL, NULL, 0, NULL, 0);
    cr_assert_eq(r->result, 0);
    cr_assert_geq(r->outs[0], 1);
    th_reply_free(r);
    close(fd);
    cr_assert(th_log_contains("remote_test pid"));
}

Test(server, bad_magic)
{
    int fd = th_connect();
    send_header(fd, 0x11223344, VG_PROTOCOL_VERSION, VG_MSG_HELLO, 0, 0);
    cr_assert(th_expect_error_or_close(fd));
    close(fd);
    cr_assert(th_log_contains("bad magic"));
    cr_assert(th_server_serves());
}

Test(server, wrong_version_is_a_clear_error)
{
    int fd = th_connect();
    send_header(fd, VG_FRAME_MAGIC, VG_PROTOCOL_VERSION + 1, VG_MSG_HELLO, 0, 0);
    struct vg_frame_header h;
    ProtobufCMessage *m;
    cr_assert_eq(vg_frame_recv(fd, VG_FRAME_DEFAULT_MAX, &h, &m, NULL), 0);
    cr_assert_eq(h.type, VG_MSG_ERROR);
    cr_assert_not_null(strstr(((Vgpu__Error *)m)->message, "version mismatch"));
    protobuf_c_message_free_unpacked(m, NULL);
    close(fd);
    cr_assert(th_log_contains("protocol version mismatch"));
    cr_assert(th_server_serves());
}

Test(server, hello_with_wrong_version_field)
{
    int fd = th_connect();
    Vgpu__Hello hello = VGPU__HELLO__INIT;
    hello.protocol_version = 99;
    cr_assert_eq(vg_frame_send(fd, VG_MSG_HELLO, 0, 1, &hello.base, NULL, 0), 0);
    cr_assert(th_expect_error_or_close(fd));
    close(fd);
    cr_assert(th_log_contains("client speaks 99"));
}

Test(server, oversize_frame)
{
    int fd = th_connect_hello();
    send_header(fd, VG_FRAME_MAGIC, VG_PROTOCOL_VERSION, VG_MSG_CALL, 10, 17u << 20); /* max is 16M */
    cr_assert(th_expect_error_or_close(fd));
    close(fd);
    cr_assert(th_log_contains("larger than the maximum"));
    cr_assert(th_server_serves());
}

Test(server, truncated_frame)
{
    int fd = th_connect_hello();
    send_header(fd, VG_FRAME_MAGIC, VG_PROTOCOL_VERSION, VG_MSG_CALL, 100, 1000);
    char part[50] = {0};
    cr_assert_eq(vg_io_write_all(fd, part, sizeof part), 0);
    close(fd);
    /* The server notices the end inside the frame; another client is served meanwhile. */
    cr_assert(th_server_serves());
    for (int i = 0; i < 500 && !th_log_contains("inside a frame"); i++)
        usleep(10000);
    cr_assert(th_log_contains("inside a frame"));
}

Test(server, unknown_type)
{
    int fd = th_connect_hello();
    send_header(fd, VG_FRAME_MAGIC, VG_PROTOCOL_VERSION, 77, 0, 0);
    cr_assert(th_expect_error_or_close(fd));
    close(fd);
    cr_assert(th_log_contains("unknown message type"));
    cr_assert(th_server_serves());
}

Test(server, undecodable_protobuf)
{
    int fd = th_connect_hello();
    const uint8_t junk[] = {0x1a, 0xff, 0xff, 0xff, 0x0f, 0x01};
    send_header(fd, VG_FRAME_MAGIC, VG_PROTOCOL_VERSION, VG_MSG_CALL, sizeof junk, 0);
    cr_assert_eq(vg_io_write_all(fd, junk, sizeof junk), 0);
    cr_assert(th_expect_error_or_close(fd));
    close(fd);
    cr_assert(th_log_contains("does not decode"));
    cr_assert(th_server_serves());
}

Test(server, call_before_hello)
{
    int fd = th_connect();
    Vgpu__Call c = VGPU__CALL__INIT;
    c.call = VG_CALL_cuDeviceGetCount;
    cr_assert_eq(vg_frame_send(fd, VG_MSG_CALL, 0, 1, &c.base, NULL, 0), 0);
    cr_assert(th_expect_error_or_close(fd));
    close(fd);
    cr_assert(th_log_contains("not Hello"));
}

/* Session A's context, allocation and module. */
struct objs {
    int fd;
    uint64_t ctx, ptr, mod;
};

static struct objs make_objs(void)
{
    struct objs o = {.fd = th_connect_hello()};
    Vgpu__Reply *r = th_call(o.fd, VG_CALL_cuInit, 0, (uint64_t[]){0}, 1, NULL, NULL, 0, NULL, 0);
    cr_assert_eq(r->result, 0);
    th_reply_free(r);
    r = th_call(o.fd, VG_CALL_cuDevicePrimaryCtxRetain, 0, (uint64_t[]){0}, 1, NULL, NULL, 0, NULL, 0);
    cr_assert_eq(r->result, 0);
    o.ctx = r->outs[0];
    th_reply_free(r);
    r = th_call(o.fd, VG_CALL_cuMemAlloc_v2, o.ctx, (uint64_t[]){4096}, 1, NULL, NULL, 0, NULL, 0);
    cr_assert_eq(r->result, 0);
    o.ptr = r->outs[0];
    th_reply_free(r);
    r = th_call(o.fd, VG_CALL_cuStreamCreate, o.ctx, (uint64_t[]){0}, 1, NULL, NULL, 0, NULL, 0);
    cr_assert_eq(r->result, 0);
    o.mod = r->outs[0]; /* a stream: any handle type the other session lacks */
    th_reply_free(r);
    return o;
}

Test(server, handles_of_another_session)
{
    struct objs a = make_objs();
    int b = th_connect_hello();
    /* B has no context, no stream and no memory: A's ids mean nothing in B's session. */
    Vgpu__Reply *r = th_call(b, VG_CALL_cuMemAlloc_v2, a.ctx, (uint64_t[]){16}, 1, NULL, NULL, 0, NULL, 0);
    cr_assert_eq(r->result, CUDA_ERROR_INVALID_CONTEXT);
    th_reply_free(r);
    r = th_call(b, VG_CALL_cuDevicePrimaryCtxRetain, 0, (uint64_t[]){0}, 1, NULL, NULL, 0, NULL, 0);
    uint64_t bctx = r->outs[0];
    th_reply_free(r);
    char buf[64];
    r = th_call(b, VG_CALL_cuMemcpyDtoH_v2, bctx, (uint64_t[]){a.ptr, 64, 0}, 3, NULL, NULL, 0, buf, sizeof buf);
    cr_assert_eq(r->result, CUDA_ERROR_INVALID_VALUE);
    cr_assert_eq(r->n_outs, 0);
    th_reply_free(r);
    r = th_call(b, VG_CALL_cuMemFree_v2, bctx, (uint64_t[]){a.ptr}, 1, NULL, NULL, 0, NULL, 0);
    cr_assert_eq(r->result, CUDA_ERROR_INVALID_VALUE);
    th_reply_free(r);
    r = th_call(b, VG_CALL_cuStreamSynchronize, bctx, (uint64_t[]){a.mod}, 1, NULL, NULL, 0, NULL, 0);
    cr_assert_eq(r->result, CUDA_ERROR_INVALID_HANDLE);
    th_reply_free(r);
    /* A's memory is untouched and still A's. */
    r = th_call(a.fd, VG_CALL_cuMemFree_v2, a.ctx, (uint64_t[]){a.ptr}, 1, NULL, NULL, 0, NULL, 0);
    cr_assert_eq(r->result, 0);
    th_reply_free(r);
    close(b);
    close(a.fd);
}

Test(server, out_of_range_sizes_and_arguments)
{
    struct objs a = make_objs();
    char big[8192] = {0};
    Vgpu__Reply *r;
    /* A copy past the end of the allocation, in each direction. */
    r = th_call(a.fd, VG_CALL_cuMemcpyHtoD_v2, a.ctx, (uint64_t[]){a.ptr + 100, 0}, 2, NULL, big, 4096, NULL, 0);
    cr_assert_eq(r->result, CUDA_ERROR_INVALID_VALUE);
    th_reply_free(r);
    r = th_call(a.fd, VG_CALL_cuMemcpyDtoH_v2, a.ctx, (uint64_t[]){a.ptr, 4097, 0}, 3, NULL, NULL, 0, big, 4097);
    cr_assert_eq(r->result, CUDA_ERROR_INVALID_VALUE);
    th_reply_free(r);
    r = th_call(a.fd, VG_CALL_cuMemcpyDtoH_v2, a.ctx, (uint64_t[]){a.ptr, UINT64_MAX, 0}, 3, NULL, NULL, 0, NULL, 0);
    cr_assert_eq(r->result, CUDA_ERROR_INVALID_VALUE);
    th_reply_free(r);
    /* Larger than a frame may carry, even inside an allocation. */
    r = th_call(a.fd, VG_CALL_cuMemAlloc_v2, a.ctx, (uint64_t[]){32u << 20}, 1, NULL, NULL, 0, NULL, 0);
    cr_assert_eq(r->result, 0);
    uint64_t big_ptr = r->outs[0];
    th_reply_free(r);
    r = th_call(a.fd, VG_CALL_cuMemcpyDtoH_v2, a.ctx, (uint64_t[]){big_ptr, 32u << 20, 0}, 3, NULL, NULL, 0, NULL, 0);
    cr_assert_eq(r->result, CUDA_ERROR_INVALID_VALUE);
    th_reply_free(r);
    r = th_call(a.fd, VG_CALL_cuMemcpyDtoD_v2, a.ctx, (uint64_t[]){a.ptr, a.ptr + 8, 4096}, 3, NULL, NULL, 0, NULL, 0);
    cr_assert_eq(r->result, CUDA_ERROR_INVALID_VALUE);
    th_reply_free(r);
    /* A pipelined memset out of range: its error comes at the next synchronizing call. */
    Vgpu__Call c = VGPU__CALL__INIT;
    uint64_t margs[] = {a.ptr, 0, UINT64_MAX / 2, 0};
    c.call = VG_CALL_cuMemsetD32Async;
    c.ctx = a.ctx;
    c.args = margs;
    c.n_args = 4;
    cr_assert_eq(vg_frame_send(a.fd, VG_MSG_CALL, VG_FLAG_NO_REPLY, 5, &c.base, NULL, 0), 0);
    r = th_call(a.fd, VG_CALL_cuCtxSynchronize, a.ctx, NULL, 0, NULL, NULL, 0, NULL, 0);
    cr_assert_eq(r->result, CUDA_ERROR_INVALID_VALUE);
    th_reply_free(r);
    r = th_call(a.fd, VG_CALL_cuCtxSynchronize, a.ctx, NULL, 0, NULL, NULL, 0, NULL, 0);
    cr_assert_eq(r->result, 0, "a deferred error is reported once");
    th_reply_free(r);
    /* Too few arguments, an unknown call id, an absurd element size. */
    r = th_call(a.fd, VG_CALL_cuMemcpyDtoH_v2, a.ctx, (uint64_t[]){a.ptr}, 1, NULL, NULL, 0, NULL, 0);
    cr_assert_eq(r->result, CUDA_ERROR_INVALID_VALUE);
    th_reply_free(r);
    r = th_call(a.fd, 100000, a.ctx, NULL, 0, NULL, NULL, 0, NULL, 0);
    cr_assert_eq(r->result, CUDA_ERROR_NOT_SUPPORTED);
    th_reply_free(r);
    r = th_call(a.fd, VG_CALL_cuLaunchKernel + 0, a.ctx, (uint64_t[]){a.mod, 1, 1, 1, 1, 1, 1, 0, 0}, 9,
                NULL, NULL, 0, NULL, 0);
    (void)r; /* pipelined id: the server sends a reply only because we did not set NO_REPLY */
    cr_assert_eq(r->result, CUDA_ERROR_INVALID_HANDLE);
    th_reply_free(r);
    /* The in-range copy still works. */
    for (int i = 0; i < 4096; i++)
        big[i] = (char)i;
    r = th_call(a.fd, VG_CALL_cuMemcpyHtoD_v2, a.ctx, (uint64_t[]){a.ptr, 0}, 2, NULL, big, 4096, NULL, 0);
    cr_assert_eq(r->result, 0);
    th_reply_free(r);
    r = th_call(a.fd, VG_CALL_cuMemcpyDtoH_v2, a.ctx, (uint64_t[]){a.ptr + 1000, 96, 0}, 3, NULL, NULL, 0,
                big + 5000, 96);
    cr_assert_eq(r->result, 0);
    cr_assert(memcmp(big + 5000, big + 1000, 96) == 0);
    th_reply_free(r);
    close(a.fd);
}

Test(server, module_images_must_fit_what_was_sent)
{
    struct objs a = make_objs();
    /* A fatbin header that claims 1 MiB, in 64 bytes. */
    uint8_t fat[64] = {0x50, 0xed, 0x55, 0xba, 1, 0, 16, 0};
    fat[8 + 2] = 0x10; /* fat_size = 0x100000 */
    Vgpu__Reply *r = th_call(a.fd, VG_CALL_cuModuleLoadData, a.ctx, NULL, 0, NULL, fat, sizeof fat, NULL, 0);
    cr_assert_eq(r->result, CUDA_ERROR_INVALID_IMAGE);
    th_reply_free(r);
    /* A fatbin wrapper carries a pointer into the client's memory. */
    uint8_t wrapper[24] = {0xb1, 0x43, 0x62, 0x46, 1, 0, 0, 0, 0x00, 0x10, 0, 0, 0, 0, 0, 0};
    r = th_call(a.fd, VG_CALL_cuLibraryLoadData, a.ctx, NULL, 0, NULL, wrapper, sizeof wrapper, NULL, 0);
    cr_assert_eq(r->result, CUDA_ERROR_INVALID_IMAGE);
    th_reply_free(r);
    /* An ELF header whose section table lies past the end. */
    uint8_t elf[64] = {0x7f, 'E', 'L', 'F', 2};
    elf[0x28 + 2] = 0x01; /* e_shoff = 0x10000 */
    r = th_call(a.fd, VG_CALL_cuModuleLoadData, a.ctx, NULL, 0, NULL, elf, sizeof elf, NULL, 0);
    cr_assert_eq(r->result, CUDA_ERROR_INVALID_IMAGE);
    th_reply_free(r);
    /* Nothing at all. */
    r = th_call(a.fd, VG_CALL_cuModuleLoadData, a.ctx, NULL, 0, NULL, NULL, 0, NULL, 0);
    cr_assert_eq(r->result, CUDA_ERROR_INVALID_IMAGE);
    th_reply_free(r);
    close(a.fd);
    cr_assert(th_server_serves());
}

/* Well-formed Calls with random ids and arguments drawn from real handles, pointers, special
 * values and random numbers: every one gets a Reply (an error or not) and the server survives. */
Test(server, random_calls_get_replies)
{
    struct objs a = make_objs();
    srand((unsigned)getpid());
    uint64_t pool[] = {0, 1, 2, 3, 4, 32, 4096, a.ctx, a.ptr, a.ptr + 4000, a.mod, a.ctx + 1,
                       UINT64_MAX, 1ull << 40, 0x7fffffff, 0x100000000ull};
    const size_t npool = sizeof pool / sizeof pool[0];
    uint8_t bulk[64];
    for (int iter = 0; iter < 3000; iter++) {
        unsigned call = (unsigned)(rand() % (VG_CALL_COUNT + 2));
        uint64_t args[10];
        size_t nargs = (size_t)(rand() % 11);
        for (size_t k = 0; k < nargs; k++)
            args[k] = rand() % 4 ? pool[rand() % npool] : ((uint64_t)rand() << 33) ^ (uint64_t)rand();
        size_t blen = (size_t)(rand() % 3 ? 0 : rand() % (int)sizeof bulk);
        for (size_t k = 0; k < blen; k++)
            bulk[k] = (uint8_t)rand();
        uint64_t ctx = rand() % 4 ? a.ctx : pool[rand() % npool];
        /* A device-to-host copy answers with bulk; read whatever length the server sends. */
        Vgpu__Call c = VGPU__CALL__INIT;
        c.call = call;
        c.ctx = ctx;
        c.args = args;
        c.n_args = nargs;
        c.name = rand() % 2 ? "axpy" : "";
        cr_assert_eq(vg_frame_send(a.fd, VG_MSG_CALL, 0, (uint64_t)iter + 1000, &c.base, bulk, blen), 0);
        struct vg_frame_header h;
        ProtobufCMessage *m;
        cr_assert_eq(vg_frame_recv(a.fd, VG_FRAME_DEFAULT_MAX, &h, &m, NULL), 0, "no reply to call %u (%s)",
                     call, vg_call_name(call));
        cr_assert_eq(h.type, VG_MSG_REPLY);
        cr_assert_eq(h.request_id, (uint64_t)iter + 1000);
        protobuf_c_message_free_unpacked(m, NULL);
        cr_assert_eq(vg_io_discard(a.fd, h.bulk_len), 0);
    }
    close(a.fd);
    cr_assert(th_server_serves());
}

Test(server, random_bytes_do_not_stop_it)
{
    srand((unsigned)getpid());
    for (int round = 0; round < 40; round++) {
        int fd = th_connect();
        uint8_t junk[4096];
        size_t n = (size_t)(rand() % (int)sizeof junk) + 1;
        for (size_t i = 0; i < n; i++)
            junk[i] = (uint8_t)rand();
        if (round % 2) {
            /* A valid-looking header first, so the garbage lands in the body decoder. */
            send_header(fd, VG_FRAME_MAGIC, VG_PROTOCOL_VERSION, (uint16_t)(1 + rand() % 5),
                        (uint32_t)(n / 2), n - n / 2);
        }
        vg_io_write_all(fd, junk, n); /* the server may already have closed */
        close(fd);
    }
    cr_assert(th_server_serves());
}

TestSuite(e2e, .init = th_start_server, .fini = th_stop_server, .timeout = 300);

#define PROG VG_TEST_BIN_DIR "/remote_e2e_prog"

Test(e2e, memory_streams_events)
{
    const char *argv[] = {PROG, "mem", NULL};
    cr_assert_eq(th_run(argv, NULL, 0), 0);
}

Test(e2e, modules_and_launches)
{
    const char *argv[] = {PROG, "full", VG_KERNEL_DIR, NULL};
    cr_assert_eq(th_run(argv, NULL, 0), 0);
}

Test(e2e, threads_share_one_connection)
{
    const char *argv[] = {PROG, "threads", NULL};
    cr_assert_eq(th_run(argv, NULL, 0), 0);
}

Test(e2e, forked_child_gets_its_own_session)
{
    const char *argv[] = {PROG, "fork", NULL};
    cr_assert_eq(th_run(argv, NULL, 0), 0);
}

Test(e2e, unreachable_server_is_no_device)
{
    /* A port nothing listens on: cuInit fails with CUDA_ERROR_NO_DEVICE and one line naming it. */
    int fd = th_connect();
    close(fd);
    int saved = th_srv.port;
    char saved_sock[sizeof th_srv.sock];
    memcpy(saved_sock, th_srv.sock, sizeof saved_sock);
    th_srv.port = 1; /* tcpmux: not listening here */
    snprintf(th_srv.sock, sizeof th_srv.sock, "%s/nobody-listens.sock", th_srv.dir);
    char out[256];
    const char *argv[] = {PROG, "meminfo", NULL};
    int st = th_run(argv, out, sizeof out);
    th_srv.port = saved;
    memcpy(th_srv.sock, saved_sock, sizeof saved_sock);
    cr_assert_neq(st, 0);
}

Test(e2e, a_faulted_client_does_not_affect_others)
{
    int out;
    const char *argv[] = {PROG, "fault", VG_KERNEL_DIR, NULL};
    pid_t pid = th_spawn(argv, &out);
    char buf[16] = "";
    ssize_t n = read(out, buf, sizeof buf - 1);
    cr_assert(n > 0 && strncmp(buf, "READY", 5) == 0, "the faulting client did not get its error");
    /* While the faulted session lives, another client runs kernels on the same device. */
    const char *other[] = {PROG, "full", VG_KERNEL_DIR, "shared", NULL};
    int st = th_run(other, NULL, 0);
    kill(pid, SIGKILL);
    th_wait(pid);
    close(out);
    cr_assert_eq(st, 0);
}

Test(e2e, sixteen_clients_at_once)
{
    pid_t pids[16];
    for (int i = 0; i < 16; i++) {
        const char *argv[] = {PROG, i % 2 ? "mem" : "full", VG_KERNEL_DIR, "shared", NULL};
        pids[i] = th_spawn(argv, NULL);
    }
    int failed = 0;
    for (int i = 0; i < 16; i++)
        failed += th_wait(pids[i]) != 0;
    cr_assert_eq(failed, 0, "%d of 16 clients failed", failed);
}

static size_t free_memory(void)
{
    char out[128];
    const char *argv[] = {PROG, "meminfo", NULL};
    cr_assert_eq(th_run(argv, out, sizeof out), 0);
    size_t f = 0, t = 0;
    cr_assert_eq(sscanf(out, "%zu %zu", &f, &t), 2);
    return f;
}

static void kill_mid_work(const char *kdir)
{
    size_t before = free_memory();
    int out;
    const char *argv[] = {PROG, "hog", kdir, NULL};
    pid_t pid = th_spawn(argv, &out);
    char buf[16] = "";
    ssize_t n = read(out, buf, sizeof buf - 1);
    cr_assert(n > 0 && strncmp(buf, "READY", 5) == 0, "the client did not start its work");
    usleep(200000); /* let copies and launches be in flight; not a timing assertion */
    kill(pid, SIGKILL);
    th_wait(pid);
    close(out);
    /* The server releases the session once it notices the disconnect; wait for that. */
    size_t after = 0;
    for (int i = 0; i < 300; i++) {
        after = free_memory();
        if (after == before)
            break;
        usleep(50000);
    }
    cr_assert_eq(after, before, "memory of a killed client was not released");
    cr_assert(th_server_serves());
}

Test(e2e, killed_client_leaves_nothing_copies)
{
    kill_mid_work("");
}

Test(e2e, killed_client_leaves_nothing_launches)
{
    kill_mid_work(VG_KERNEL_DIR);
}

/* SIGINT with a client in the middle of work: the server closes the session, releases what it
 * held and exits 0; the client sees the device go away instead of hanging. */
Test(lifecycle, sigint_stops_with_clients_connected, .timeout = 120)
{
    th_start_server();
    int out;
    const char *argv[] = {PROG, "hog", "", NULL};
    pid_t client = th_spawn(argv, &out);
    char buf[16] = "";
    ssize_t n = read(out, buf, sizeof buf - 1);
    cr_assert(n > 0 && strncmp(buf, "READY", 5) == 0);
    kill(th_srv.pid, SIGINT);
    int st;
    cr_assert_eq(waitpid(th_srv.pid, &st, 0), th_srv.pid);
    cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "gpu-server did not stop cleanly on SIGINT");
    cr_assert_neq(th_wait(client), 0, "the client did not notice the server going away");
    close(out);
    cr_assert(th_log_contains("stopping"));
    cr_assert(th_log_contains("ended: released 8 allocations"));
    th_remove_dir();
}
