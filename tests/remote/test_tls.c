/* TLS end to end (issue "Tenants", section TLS): gpu-server's tls:// listener with certificates
 * made by the test, clients through the stub with VGPU_SERVER=tls://... The rest of the remote
 * suite also runs over TLS (the _tls twins of every remote test); these are the checks of TLS
 * itself: what a capture of the connection shows, and how each way of getting TLS wrong reads. */
#include <criterion/criterion.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "harness.h"

#define TPROG VG_TEST_BIN_DIR "/remote_tenant_prog"

static char certs[64];   /* the server's certificates (SAN for 127.0.0.1 and localhost) */
static int tls_port;

static void only_once(void)
{
    /* These tests start servers of their own: once is enough, whatever the transport. */
    const char *t = getenv("VGPU_TEST_TRANSPORT");
    if (t && *t && strcmp(t, "tcp"))
        cr_skip_test("TLS tests run in the plain variant only");
}

static char cert[128], key[128];

/* Makes a CA and a server certificate for san, and starts gpu-server with a tls:// listener
 * (tls_port) beside its plain one; client_ca: it also requires client certificates signed by
 * the same CA. */
static void start_tls(const char *san, int client_ca)
{
    snprintf(certs, sizeof certs, "/tmp/vgpu-tls-test.XXXXXX");
    cr_assert_not_null(mkdtemp(certs));
    th_make_certificates(certs, san);
    tls_port = th_free_port();
    static char listen[64], ca[128];
    snprintf(listen, sizeof listen, "tls://127.0.0.1:%d", tls_port);
    snprintf(cert, sizeof cert, "%s/server.pem", certs);
    snprintf(key, sizeof key, "%s/server.key", certs);
    snprintf(ca, sizeof ca, "%s/ca.pem", certs);
    const char *extra[] = {"--listen", listen, "--tls-cert", cert, "--tls-key", key,
                           client_ca ? "--tls-client-ca" : NULL, ca, NULL};
    th_start_server_with(extra, 0);
}

static void stop_tls(void)
{
    th_stop_server();
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", certs);
    (void)!system(cmd);
}

/* Runs tenant_prog MODE with VGPU_SERVER=server and more environment; its exit status, its
 * stdout in out and the first line of its stderr in err. */
static int run_with(const char *server, const char *mode, const char *const *more_env, char *out, size_t out_size,
                    char *err, size_t err_size)
{
    char server_env[128];
    snprintf(server_env, sizeof server_env, "VGPU_SERVER=%s", server);
    const char *env[8] = {server_env};
    int n = 1;
    for (int i = 0; more_env && more_env[i] && n < 7; i++)
        env[n++] = more_env[i];
    env[n] = NULL;
    const char *argv[] = {TPROG, mode, NULL};
    int e[2];
    cr_assert_eq(pipe(e), 0);
    int saved = dup(2);
    dup2(e[1], 2);
    /* th_capture sets VGPU_SERVER to the harness's server after our environment: run the
     * program through env(1) so that ours wins. */
    const char *wrapped[12] = {"/usr/bin/env"};
    int w = 1;
    for (int i = 0; env[i]; i++)
        wrapped[w++] = env[i];
    wrapped[w++] = argv[0];
    wrapped[w++] = argv[1];
    wrapped[w] = NULL;
    int rc = th_capture(wrapped, NULL, out, out_size);
    dup2(saved, 2);
    close(saved);
    close(e[1]);
    err[0] = 0;
    th_read_line(e[0], err, err_size, 5);
    close(e[0]);
    return rc;
}

static char ca_env[160];

static const char *const *trust(void)
{
    static const char *env[2];
    snprintf(ca_env, sizeof ca_env, "VGPU_TLS_CA=%s/ca.pem", certs);
    env[0] = ca_env;
    env[1] = NULL;
    return env;
}

/* ---- a capture of the connection ---- */

struct capture {
    int listen_fd;
    int to_port;
    unsigned char *bytes;
    size_t len, cap;
};

/* Accepts one connection, relays it to 127.0.0.1:to_port and records both directions. */
static void *capture_main(void *arg)
{
    struct capture *c = arg;
    int a = accept(c->listen_fd, NULL, NULL);
    int b = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons((uint16_t)c->to_port)};
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (a < 0 || b < 0 || connect(b, (struct sockaddr *)&addr, sizeof addr) != 0)
        return NULL;
    unsigned char buf[65536];
    for (;;) {
        struct pollfd p[2] = {{.fd = a, .events = POLLIN}, {.fd = b, .events = POLLIN}};
        if (poll(p, 2, 30000) <= 0)
            break;
        int from = p[0].revents ? a : b, to = from == a ? b : a;
        ssize_t n = read(from, buf, sizeof buf);
        if (n <= 0)
            break;
        if (c->len + (size_t)n > c->cap) {
            c->cap = (c->len + (size_t)n) * 2;
            c->bytes = realloc(c->bytes, c->cap);
        }
        memcpy(c->bytes + c->len, buf, (size_t)n);
        c->len += (size_t)n;
        if (write(to, buf, (size_t)n) != n)
            break;
    }
    close(a);
    close(b);
    return NULL;
}

/* Runs `pattern` through a capture in front of to_port; 1 when the capture shows the payload. */
static int captured_payload(const char *scheme, int to_port, const char *const *env)
{
    struct capture c = {.to_port = to_port};
    int port = th_free_port();
    c.listen_fd = socket(AF_INET, SOCK_STREAM, 0);
    int one = 1;
    setsockopt(c.listen_fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    cr_assert_eq(bind(c.listen_fd, (struct sockaddr *)&addr, sizeof addr), 0);
    cr_assert_eq(listen(c.listen_fd, 1), 0);
    pthread_t t;
    cr_assert_eq(pthread_create(&t, NULL, capture_main, &c), 0);
    char server[64], out[256], err[512];
    snprintf(server, sizeof server, "%s127.0.0.1:%d", scheme, port);
    cr_assert_eq(run_with(server, "pattern", env, out, sizeof out, err, sizeof err), 0, "%s %s", out, err);
    cr_assert_not_null(strstr(out, "OK"));
    pthread_join(t, NULL);
    close(c.listen_fd);
    /* The bytes the program copied (it seeds them so), 64 of them from the middle. */
    unsigned char want[1 << 20];
    srand(777);
    for (size_t i = 0; i < sizeof want; i++)
        want[i] = (unsigned char)rand();
    int found = c.len >= 64 && memmem(c.bytes, c.len, want + 500000, 64) != NULL;
    cr_log_info("%s: %zu bytes captured, payload %s", scheme, c.len, found ? "visible" : "not visible");
    free(c.bytes);
    return found;
}

/* Runs tenant_prog info against PREFIX:PORT (prefix "tls://127.0.0.1", say) with env: cuInit
 * must fail (exit status 3) with `want` in the one line it prints. */
static void expect_refused(const char *prefix, int port, const char *const *env, const char *want)
{
    char server[64], out[256], err[512];
    snprintf(server, sizeof server, "%s:%d", prefix, port);
    cr_assert_eq(run_with(server, "info", env, out, sizeof out, err, sizeof err), 3, "%s: %s", server, out);
    cr_assert_not_null(strstr(err, want), "%s: stderr: %s", server, err);
}

Test(tls, the_remote_calls_work_and_a_capture_shows_no_payload, .timeout = 120)
{
    only_once();
    start_tls("DNS:localhost,IP:127.0.0.1", 0);
    /* Control: the same copy over plain TCP is plainly visible in the capture. */
    cr_assert(captured_payload("", th_srv.port, NULL), "the capture does not see plain payloads");
    cr_assert_not(captured_payload("tls://", tls_port, trust()), "a copied buffer's bytes cross TLS in the clear");
    stop_tls();
}

Test(tls, a_plain_client_at_the_tls_port_is_told_so, .timeout = 60)
{
    only_once();
    start_tls("DNS:localhost,IP:127.0.0.1", 0);
    expect_refused("127.0.0.1", tls_port, NULL, "a plain vgpu client at a TLS port");
    stop_tls();
}

Test(tls, a_tls_client_at_a_plain_port_is_told_so, .timeout = 60)
{
    only_once();
    start_tls("DNS:localhost,IP:127.0.0.1", 0);
    expect_refused("tls://127.0.0.1", th_srv.port, trust(), "TLS handshake failed");
    expect_refused("tls://127.0.0.1", th_srv.port, trust(), "a plain gpu-server port?");
    stop_tls();
}

Test(tls, an_untrusted_certificate_is_refused, .timeout = 60)
{
    only_once();
    start_tls("DNS:localhost,IP:127.0.0.1", 0);
    /* No VGPU_TLS_CA: the system store does not know the test's CA. */
    expect_refused("tls://127.0.0.1", tls_port, NULL, "certificate is not trusted");
    stop_tls();
}

Test(tls, a_name_mismatch_is_refused, .timeout = 60)
{
    only_once();
    start_tls("DNS:gpu.example.org", 0);
    expect_refused("tls://127.0.0.1", tls_port, trust(), "IP address mismatch");
    expect_refused("tls://localhost", tls_port, trust(), "hostname mismatch");
    stop_tls();
}

Test(tls, client_certificates_when_the_server_asks, .timeout = 60)
{
    only_once();
    start_tls("DNS:localhost,IP:127.0.0.1", 1);
    char server[64], out[256], err[512];
    snprintf(server, sizeof server, "tls://127.0.0.1:%d", tls_port);
    /* Without a certificate the handshake fails; with one the CA signed it goes through (the
     * server's own certificate serves as the client's here). */
    expect_refused("tls://127.0.0.1", tls_port, trust(), "TLS");
    char cert_env[160], key_env[160];
    snprintf(cert_env, sizeof cert_env, "VGPU_TLS_CERT=%s", cert);
    snprintf(key_env, sizeof key_env, "VGPU_TLS_KEY=%s", key);
    const char *with_cert[] = {trust()[0], cert_env, key_env, NULL};
    cr_assert_eq(run_with(server, "info", with_cert, out, sizeof out, err, sizeof err), 0, "%s %s", out, err);
    cr_assert_not_null(strstr(out, "DEVICES 1"), "%s", out);
    stop_tls();
}
