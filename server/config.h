/* gpu-server's settings, from its command line (main.c). The main process fills it once; each
 * session process inherits a copy with the fork. */
#ifndef VG_CONFIG_H
#define VG_CONFIG_H

#include <stdint.h>

#define VG_MAX_LISTEN 8

enum vg_listen_kind { VG_LISTEN_TCP, VG_LISTEN_UNIX };

struct vg_listen_addr {
    enum vg_listen_kind kind;
    char host[256];            /* TCP: address to bind */
    int port;                  /* TCP: 0 = any free port */
    char path[108];            /* Unix: socket path */
};

struct vg_config {
    struct vg_listen_addr listen[VG_MAX_LISTEN];
    int n_listen;
    const char *port_file;     /* NULL = none: the first TCP listener's port is written there */
    const char *driver;        /* auto, emulated or a path */
    const char *tenants_path;  /* NULL: the single default tenant */
    const char *admin;         /* HOST:PORT or unix:PATH; NULL: none */
    int admin_explicit;        /* given on the command line (failing to listen there is fatal) */
    const char *metrics;       /* HOST:PORT; NULL: none */
    char exe_dir[4096];        /* where gpu-server lives (the emulated driver is ../lib/emulated) */
    uint64_t max_frame;
    unsigned kernel_timeout_ms;    /* 0: kernels may run for ever */
    int scheduler;                 /* 1: device time measured and shared by weight (default) */
    unsigned handshake_timeout_ms; /* from accept to a complete Hello */
    unsigned read_timeout_ms;      /* without a byte inside a started frame */
    uint64_t max_buffered;         /* server-wide cap on bytes held for partial frames */
    unsigned max_sessions;
    unsigned max_client_conns;     /* connections (in handshake or in session) per client address */
};

#endif
