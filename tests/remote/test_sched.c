/* The device scheduler end to end (issue "Weighted fair sharing"): tenants with weights and caps
 * running kernels through the stub at once. No timing thresholds: every check compares what
 * tenants got with each other, with wide margins. Kernel lengths are calibrated first, so the
 * tests hold on the interpreter and on the JIT alike. */
#include <criterion/criterion.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"

#define TPROG VG_TEST_BIN_DIR "/remote_tenant_prog"

static char tfile[64];

static void write_tenants(const char *text)
{
    th_write_file(tfile, sizeof tfile, "/tmp/vgpu-sched.XXXXXX", text);
}

/* Kernels compiled before their first launch: under the default tiering a kernel starts
 * interpreted and becomes several times shorter once compiled, mid-run, in every session, so
 * the lengths iters_for calibrated would not hold and a tenant could not keep its share busy. */
static void start_server(const char *const *extra)
{
    setenv("VGPU_EMU_JIT", "always", 1);
    th_start_server_with(extra, 0);
}

static void start(const char *text)
{
    write_tenants(text);
    const char *extra[] = {"--tenants", tfile, NULL};
    start_server(extra);
}

static void stop(void)
{
    th_stop_server();
    unlink(tfile);
}

static const char *token_env(char c)
{
    static char buf[4][64];
    static int next;
    char *b = buf[next++ % 4];
    snprintf(b, 64, "VGPU_TOKEN=tenant-%c-secret", c);
    return b;
}

/* Iterations of the burn kernel that take about ms milliseconds here when the machine is not
 * busy (the fastest of three measurements, so that a busy moment makes kernels longer, never
 * shorter than asked). Tenant a measures. */
static int iters_for(double ms)
{
    unsigned long long best = 0;
    for (int i = 0; i < 3; i++) {
        char out[256];
        const char *argv[] = {TPROG, "calib", VG_KERNEL_DIR, "200000", NULL};
        const char *env[] = {token_env('a'), NULL};
        cr_assert_eq(th_capture(argv, env, out, sizeof out), 0, "%s", out);
        unsigned long long ns = strtoull(strstr(out, "NS ") + 3, NULL, 10);
        if (ns && (!best || ns < best))
            best = ns;
    }
    cr_assert_gt(best, 0);
    /* The calibration ran as tenant a alone: let its busy period end
     * so that the test's clients start as equals, not with a still owing for it. */
    usleep(200000); /* twice VG_SCHED_PERIOD_END_NS (server/sched.h) */
    double it = 200000.0 * ms * 1e6 / (double)best;
    return it < 1 ? 1 : it > 1e9 ? 1000000000 : (int)it;
}

struct client {
    pid_t pid;
    int in, out;
};

static struct client spawn(char tenant, const char *mode, int iters, int n)
{
    struct client c;
    char a[32], b[32];
    snprintf(a, sizeof a, "%d", iters);
    snprintf(b, sizeof b, "%d", n);
    const char *argv[] = {TPROG, mode, VG_KERNEL_DIR, a, b, NULL};
    const char *env[] = {token_env(tenant), NULL};
    c.pid = th_spawn_io(argv, &c.in, &c.out, env);
    cr_assert(th_expect_line(c.out, "READY", NULL, 0, 60), "client %c did not start", tenant);
    return c;
}

static void go(struct client *c)
{
    cr_assert_eq(write(c->in, "go\n", 3), 3);
}

static unsigned long long done_at(struct client *c)
{
    char line[128];
    cr_assert(th_expect_line(c->out, "DONE ", line, sizeof line, 600), "a client did not finish");
    close(c->in);
    close(c->out);
    cr_assert_eq(th_wait(c->pid), 0);
    return strtoull(line + 5, NULL, 10);
}

#define TENANTS_AB(wa, wb, extra_b)                                                            \
    "[a]\ntoken = tenant-a-secret\nweight = " #wa "\n\n[b]\ntoken = tenant-b-secret\nweight = " #wb "\n" extra_b

Test(sched, the_heavier_tenant_finishes_first, .timeout = 600)
{
    start(TENANTS_AB(4, 1, ""));
    int it = iters_for(10);
    /* The same work for both, started together: weight 4 gets 80% of the device, so it is done
     * when the other has done about a quarter of its own. */
    struct client light = spawn('b', "burn", it, 40);
    struct client heavy = spawn('a', "burn", it, 40);
    go(&light);
    go(&heavy);
    unsigned long long heavy_done = done_at(&heavy), light_done = done_at(&light);
    cr_assert_lt(heavy_done, light_done, "the weight-4 tenant finished after the weight-1 tenant");
    stop();
}

/* Device time (s) the server charged tenants a and b so far (vgpu-smi --json). */
static void device_times(double *a, double *b)
{
    static char out[65536];
    const char *smi[] = {VG_BUILD_DIR "/bin/vgpu-smi", "--admin", th_srv.admin, "--json", NULL};
    cr_assert_eq(th_capture(smi, NULL, out, sizeof out), 0, "%s", out);
    const char *at = strstr(out, "\"name\":\"a\""), *bt = strstr(out, "\"name\":\"b\"");
    cr_assert(at && bt, "%s", out);
    *a = atof(strstr(at, "\"device_time_s\":") + 16);
    *b = atof(strstr(bt, "\"device_time_s\":") + 16);
}

static void finish(struct client *c)
{
    kill(c->pid, SIGTERM);
    close(c->in);
    close(c->out);
    th_wait(c->pid);
}

static unsigned long long mono(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (unsigned long long)ts.tv_sec * 1000000000ull + (unsigned long long)ts.tv_nsec;
}

Test(sched, a_reload_changes_weights_of_connected_sessions, .timeout = 600)
{
    start(TENANTS_AB(1, 1, ""));
    int it = iters_for(10);
    /* Both run all along: one second measured at equal weights, then one second after the
     * reload to 1:6 has settled; the shares are the server's device time, which is what the
     * scheduler divides. */
    struct client a = spawn('a', "burn", it, 1000000), b = spawn('b', "burn", it, 1000000);
    go(&a);
    go(&b);
    usleep(500000);
    double a0, b0, a1, b1, a2, b2, a3, b3;
    device_times(&a0, &b0);
    usleep(1000000);
    device_times(&a1, &b1);
    write_tenants(TENANTS_AB(1, 6, ""));
    cr_assert_eq(kill(th_srv.pid, SIGHUP), 0);
    cr_assert(th_wait_log("tenants reloaded", 10));
    usleep(300000);
    device_times(&a2, &b2);
    usleep(1000000);
    device_times(&a3, &b3);
    finish(&a);
    finish(&b);
    double ra = (b1 - b0) / (a1 - a0), rb = (b3 - b2) / (a3 - a2);
    cr_log_info("device time b/a: %.2f at equal weights, %.2f after the reload to 1:6", ra, rb);
    cr_assert(a1 > a0 && b1 > b0 && a3 > a2);
    cr_assert_lt(ra, 2.0, "equal weights gave b %.2f times a's device time", ra);
    cr_assert_gt(rb, 2.0, "after 1:6, b got only %.2f times a's device time", rb);
    stop();
}

Test(sched, a_capped_tenant_alone_is_held_back, .timeout = 600)
{
    start(TENANTS_AB(1, 1, "limit = 20\n"));
    int it = iters_for(10);
    /* The same work alone, uncapped (a) and capped at 20% (b). The cap is on device time over
     * real time: b's share of its own run's time stays near 20% (plus the small budget an idle
     * tenant starts with), a's does not. */
    double a_dev0, a_dev, b_dev0, a_dev1, b_dev;
    device_times(&a_dev0, &b_dev0); /* the calibration ran as a */
    struct client a = spawn('a', "burn", it, 100);
    unsigned long long t0 = mono();
    go(&a);
    unsigned long long a_ns = done_at(&a) - t0;
    device_times(&a_dev, &b_dev0);
    struct client b = spawn('b', "burn", it, 100);
    t0 = mono();
    go(&b);
    unsigned long long b_ns = done_at(&b) - t0;
    device_times(&a_dev1, &b_dev);
    double a_share = (a_dev - a_dev0) / (a_ns / 1e9), b_share = (b_dev - b_dev0) / (b_ns / 1e9);
    cr_log_info("alone, 100 kernels: uncapped %.0f ms at %.0f%% of the device, capped at 20%%: %.0f ms at %.0f%%",
                a_ns / 1e6, 100 * a_share, b_ns / 1e6, 100 * b_share);
    cr_assert_leq(b_share, 0.30, "the capped tenant used %.0f%% of the device", 100 * b_share);
    cr_assert_geq(a_share, 1.5 * b_share, "uncapped %.0f%%, capped %.0f%%", 100 * a_share, 100 * b_share);
    stop();
}

Test(sched, a_session_in_a_long_kernel_does_not_stop_others, .timeout = 600)
{
    start(TENANTS_AB(1, 1, ""));
    int it = iters_for(3000);
    char line[128];
    const char *argv[] = {TPROG, "long", VG_KERNEL_DIR, "0", NULL};
    char its[32];
    snprintf(its, sizeof its, "%d", it);
    argv[3] = its;
    int a_in, a_out;
    const char *env_a[] = {token_env('a'), NULL};
    pid_t a = th_spawn_io(argv, &a_in, &a_out, env_a);
    cr_assert(th_expect_line(a_out, "READY", NULL, 0, 60));
    /* a is now in cuCtxSynchronize behind its kernel. b's host-side call returns at once; its
     * small kernel runs when the device comes free (kernels are not preempted). */
    int b_out;
    const char *bargv[] = {TPROG, "quick", VG_KERNEL_DIR, NULL};
    const char *env_b[] = {token_env('b'), NULL};
    pid_t b = th_spawn_io(bargv, NULL, &b_out, env_b);
    cr_assert(th_expect_line(b_out, "INFO ", line, sizeof line, 60));
    unsigned long long info = strtoull(line + 5, NULL, 10);
    cr_assert(th_expect_line(b_out, "SMALL ", line, sizeof line, 600), "b's small kernel never completed");
    cr_assert(th_expect_line(a_out, "DONE ", line, sizeof line, 600));
    unsigned long long a_done = strtoull(line + 5, NULL, 10);
    cr_assert_lt(info, a_done, "cuMemGetInfo waited for another session's kernel");
    close(a_in);
    close(a_out);
    close(b_out);
    cr_assert_eq(th_wait(a), 0);
    cr_assert_eq(th_wait(b), 0);
    stop();
}

Test(sched, device_time_is_charged_to_the_tenant, .timeout = 600)
{
    start(TENANTS_AB(1, 1, ""));
    int it = iters_for(5);
    struct client a = spawn('a', "burn", it, 40);
    go(&a);
    done_at(&a);
    char out[65536];
    const char *smi[] = {VG_BUILD_DIR "/bin/vgpu-smi", "--admin", th_srv.admin, "--json", NULL};
    cr_assert_eq(th_capture(smi, NULL, out, sizeof out), 0, "%s", out);
    /* a's 40 kernels of about 5 ms: well over 50 ms of device time; b did nothing. */
    const char *at = strstr(out, "\"name\":\"a\"");
    cr_assert_not_null(at, "%s", out);
    double a_s = atof(strstr(at, "\"device_time_s\":") + 16);
    const char *bt = strstr(out, "\"name\":\"b\"");
    double b_s = atof(strstr(bt, "\"device_time_s\":") + 16);
    cr_assert_gt(a_s, 0.05, "a's device time: %f s", a_s);
    cr_assert_eq(b_s, 0.0);
    stop();
}

Test(sched, scheduler_off_measures_and_holds_back_nothing, .timeout = 600)
{
    write_tenants(TENANTS_AB(1, 1, "limit = 5\n"));
    const char *extra[] = {"--tenants", tfile, "--scheduler", "off", NULL};
    start_server(extra);
    int it = iters_for(5);
    /* b's 5% cap is not applied: it takes about as long as a, and no device time is counted. */
    struct client a = spawn('a', "burn", it, 40);
    unsigned long long t0 = mono();
    go(&a);
    unsigned long long a_ns = done_at(&a) - t0;
    struct client b = spawn('b', "burn", it, 40);
    t0 = mono();
    go(&b);
    unsigned long long b_ns = done_at(&b) - t0;
    cr_assert_lt(b_ns, 5 * a_ns, "b was held back: %llu ns against a's %llu", b_ns, a_ns);
    double a_s, b_s;
    device_times(&a_s, &b_s);
    cr_assert_eq(a_s, 0.0);
    cr_assert_eq(b_s, 0.0);
    stop();
}
