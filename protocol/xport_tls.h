/* vg_xport over TLS 1.3 (OpenSSL): the byte stream of a socket whose TLS handshake is done, for
 * `tls://` on both ends (the stub's connection, gpu-server's session process). */
#ifndef VG_XPORT_TLS_H
#define VG_XPORT_TLS_H

#include <openssl/ssl.h>
#include <stddef.h>

#include "xport.h"

/* Wraps an established TLS connection on fd (made non-blocking). Takes fd and ssl: close frees
 * both. NULL on ENOMEM (nothing taken). */
struct vg_xport *vg_xport_tls(int fd, SSL *ssl);

/* Why a TLS transport's connection failed (the peer's alert, mostly), once it has; else NULL. */
const char *vg_xport_tls_error(struct vg_xport *x);

/* The reason of OpenSSL's last error, for one line of a message (in buf). */
const char *vg_tls_error(char *buf, size_t size);

#endif
