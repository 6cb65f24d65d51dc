#include "tls.h"

#include <arpa/inet.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "xport_tls.h"

/* One context per process, made at the first tls:// connection (reads the CA file once). */
static pthread_once_t ctx_once = PTHREAD_ONCE_INIT;
static SSL_CTX *ctx;
static char ctx_error[256];

static void make_ctx(void)
{
    SSL_CTX *c = SSL_CTX_new(TLS_client_method());
    if (!c || !SSL_CTX_set_min_proto_version(c, TLS1_3_VERSION)) {
        snprintf(ctx_error, sizeof ctx_error, "cannot set up TLS");
        goto fail;
    }
    const char *ca = getenv("VGPU_TLS_CA");
    if (ca && *ca) {
        if (SSL_CTX_load_verify_locations(c, ca, NULL) != 1) {
            snprintf(ctx_error, sizeof ctx_error, "cannot read the CA file VGPU_TLS_CA=%s", ca);
            goto fail;
        }
    } else if (SSL_CTX_set_default_verify_paths(c) != 1) {
        snprintf(ctx_error, sizeof ctx_error, "cannot read the system's CA store");
        goto fail;
    }
    const char *cert = getenv("VGPU_TLS_CERT"), *key = getenv("VGPU_TLS_KEY");
    if (cert && *cert) {
        if (SSL_CTX_use_certificate_chain_file(c, cert) != 1 ||
            SSL_CTX_use_PrivateKey_file(c, key && *key ? key : cert, SSL_FILETYPE_PEM) != 1) {
            snprintf(ctx_error, sizeof ctx_error, "cannot use the client certificate VGPU_TLS_CERT=%s", cert);
            goto fail;
        }
    }
    SSL_CTX_set_verify(c, SSL_VERIFY_PEER, NULL);
    ctx = c;
    return;
fail:
    SSL_CTX_free(c);
}

struct vg_xport *vg_client_tls(int fd, const char *host, char *why, size_t why_size)
{
    pthread_once(&ctx_once, make_ctx);
    if (!ctx) {
        snprintf(why, why_size, "%s", ctx_error);
        return NULL;
    }
    SSL *ssl = SSL_new(ctx);
    if (!ssl) {
        snprintf(why, why_size, "cannot set up TLS");
        return NULL;
    }
    /* The name checked: an IP address as an address, anything else as a host name (and SNI). */
    unsigned char addr[16];
    int is_ip = inet_pton(AF_INET, host, addr) == 1 || inet_pton(AF_INET6, host, addr) == 1;
    X509_VERIFY_PARAM *param = SSL_get0_param(ssl);
    int ok = is_ip ? X509_VERIFY_PARAM_set1_ip_asc(param, host) : SSL_set1_host(ssl, host);
    if (!is_ip)
        ok = ok && SSL_set_tlsext_host_name(ssl, host);
    if (!ok || !SSL_set_fd(ssl, fd)) {
        snprintf(why, why_size, "cannot set up TLS for %s", host);
        SSL_free(ssl);
        return NULL;
    }
    ERR_clear_error();
    if (SSL_connect(ssl) != 1) {
        long verify = SSL_get_verify_result(ssl);
        char reason[160];
        if (verify != X509_V_OK)
            snprintf(why, why_size, "TLS: the server's certificate is not trusted: %s",
                     X509_verify_cert_error_string(verify));
        else if (ERR_peek_last_error() == 0)
            snprintf(why, why_size, "TLS handshake failed: the server closed the connection (a plain "
                     "gpu-server port? then use VGPU_SERVER=host:port)");
        else
            snprintf(why, why_size, "TLS handshake failed: %s (a plain gpu-server port? then use "
                     "VGPU_SERVER=host:port)", vg_tls_error(reason, sizeof reason));
        SSL_free(ssl);
        return NULL;
    }
    struct vg_xport *x = vg_xport_tls(fd, ssl);
    if (!x) {
        snprintf(why, why_size, "out of memory");
        SSL_free(ssl);
    }
    return x;
}
