/* The stub's side of TLS: VGPU_SERVER=tls://HOST:PORT. */
#ifndef VG_CLIENT_TLS_H
#define VG_CLIENT_TLS_H

#include <stddef.h>

#include "xport.h"

/* Runs the TLS 1.3 handshake on the connected socket fd with gpu-server at host, verifying its
 * certificate against VGPU_TLS_CA (a PEM file) or the system's store, and its name (or IP
 * address) against host. Offers a client certificate when VGPU_TLS_CERT and VGPU_TLS_KEY name
 * one. Returns the transport (it takes fd), or NULL with one line in why[0..why_size) saying
 * what failed (fd is left open). */
struct vg_xport *vg_client_tls(int fd, const char *host, char *why, size_t why_size);

#endif
