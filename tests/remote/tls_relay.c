/* A raw test connection over TLS: the test reads and writes frames on a plain socket (one end of
 * a socket pair), and a relay thread carries the bytes over a TLS connection to gpu-server's
 * tls:// listener. So every raw-frame test (malformed frames, the fuzzer) reaches the server
 * through its TLS path unchanged. One thread per connection, polling both sides; it ends when
 * either side does. */
#include "harness.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <openssl/ssl.h>
#include <poll.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

struct tls_relay {
    int test_fd;
    int fd;
    SSL_CTX *ctx;
    SSL *ssl;
};

static void *relay_main(void *arg)
{
    struct tls_relay *r = arg;
    char buf[65536];
    for (;;) {
        if (SSL_pending(r->ssl) == 0) {
            struct pollfd p[2] = {{.fd = r->test_fd, .events = POLLIN}, {.fd = r->fd, .events = POLLIN}};
            if (poll(p, 2, -1) < 0)
                break;
            if (p[0].revents) {
                ssize_t n = read(r->test_fd, buf, sizeof buf);
                size_t done;
                if (n <= 0 || !SSL_write_ex(r->ssl, buf, (size_t)n, &done))
                    break;
            }
            if (!p[1].revents)
                continue;
        }
        size_t got = 0;
        if (!SSL_read_ex(r->ssl, buf, sizeof buf, &got))
            break;
        for (size_t off = 0; off < got;) {
            ssize_t w = write(r->test_fd, buf + off, got - off);
            if (w <= 0)
                goto out;
            off += (size_t)w;
        }
    }
out:
    /* The test sees the end of the stream (or the server does, when the test closed). */
    shutdown(r->test_fd, SHUT_RDWR);
    close(r->test_fd);
    SSL_free(r->ssl);
    SSL_CTX_free(r->ctx);
    close(r->fd);
    free(r);
    return NULL;
}

int th_tls_relay_connect(int port, const char *ca)
{
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) != 0)
        return -1;
    struct tls_relay *r = calloc(1, sizeof *r);
    r->test_fd = sv[1];
    r->fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    r->ctx = SSL_CTX_new(TLS_client_method());
    if (r->fd < 0 || connect(r->fd, (struct sockaddr *)&a, sizeof a) != 0 || !r->ctx ||
        SSL_CTX_load_verify_locations(r->ctx, ca, NULL) != 1)
        goto fail;
    SSL_CTX_set_verify(r->ctx, SSL_VERIFY_PEER, NULL);
    r->ssl = SSL_new(r->ctx);
    if (!r->ssl || !SSL_set_fd(r->ssl, r->fd))
        goto fail;
    if (SSL_connect(r->ssl) != 1) {
        /* The server closed the connection before TLS was up (at its descriptor limit): the
         * test sees that connection end, as it would over TCP. */
        SSL_free(r->ssl);
        SSL_CTX_free(r->ctx);
        close(r->fd);
        free(r);
        close(sv[1]);
        return sv[0];
    }
    pthread_t t;
    if (pthread_create(&t, NULL, relay_main, r) != 0)
        goto fail;
    pthread_detach(t);
    return sv[0];
fail:
    if (r->ssl)
        SSL_free(r->ssl);
    if (r->ctx)
        SSL_CTX_free(r->ctx);
    if (r->fd >= 0)
        close(r->fd);
    free(r);
    close(sv[0]);
    close(sv[1]);
    return -1;
}
