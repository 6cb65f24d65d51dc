/* Shared by the remoting tests: a real gpu-server per test on a random loopback port, raw protocol
 * clients, and programs run through the stub. */
#ifndef VG_TEST_HARNESS_H
#define VG_TEST_HARNESS_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "frame.h"

struct th_server {
    pid_t pid;
    int port;
    char dir[256];      /* temp dir: port file, server log, Unix socket */
    char log[300];
    char sock[300];     /* the Unix socket gpu-server also listens on */
    char admin[320];
    char ca[320];       /* over TLS: the CA file clients trust */    /* its admin endpoint (unix:DIR/admin.sock unless a test gave --admin) */
};

/* The transport the tests reach gpu-server over: TCP, or shared memory beside a Unix socket
 * when VGPU_TEST_TRANSPORT=shm (ctest runs each remote test both ways). Stub clients get the
 * matching VGPU_SERVER; raw clients (th_connect) get a plain socket either way, relayed over the
 * shared rings for shm (relay.c). */
int th_shm(void);
/* How the server names this test's client address in its limits and logs: "127.0.0.1" or
 * "unix uid N". */
const char *th_client_addr(void);
/* A raw connection like th_connect, without assertions (for worker threads): -1 on failure. */
int th_connect_raw(void);
/* relay.c: a socket whose bytes are relayed to the server at path over shared memory. */
int th_relay_connect(const char *path);
/* The same over TLS (VGPU_TEST_TRANSPORT=tls): the test's frames travel in the clear on a
 * socket pair, and a relay thread carries them over a TLS connection to 127.0.0.1:port,
 * verified against ca. -1 when the TLS connection cannot be made. */
int th_tls_relay_connect(int port, const char *ca);
/* A CA (dir/ca.pem, ca.key) and a server certificate it signed for the subjectAltName san (e.g.
 * "DNS:localhost,IP:127.0.0.1"; dir/server.pem, server.key), made with openssl's command line. */
void th_make_certificates(const char *dir, const char *san);
/* A free TCP port on loopback (bound, then released for a server to take). */
int th_free_port(void);
/* Replaces the file at path with text atomically (a reader sees the old or the new whole, as
 * gpu-server's SIGHUP reload must). An empty path is first made a new file from template
 * ("/tmp/name.XXXXXX"). Asserts on failure. */
void th_write_file(char *path, size_t path_size, const char *template, const char *text);
/* 1 when the tests run over TLS (VGPU_TEST_TRANSPORT=tls). */
int th_tls(void);

extern struct th_server th_srv;

/* Criterion .init / .fini: start gpu-server (emulated driver, stderr to th_srv.log) and stop it
 * with SIGTERM, asserting that it was still running and exits 0. */
void th_start_server(void);
void th_stop_server(void);
/* The same with extra gpu-server arguments (NULL-terminated, may be NULL) and, when nofile is
 * not 0, its descriptor limit (soft and hard) set to nofile. */
void th_start_server_with(const char *const *extra, unsigned nofile);
/* Session processes of th_srv (its child processes, not yet reaped ones included), and a wait (up to seconds, polling)
 * until there are n; 1 when reached. */
int th_session_processes(void);
int th_wait_sessions(int n, int seconds);
/* Removes the server's temp dir (th_stop_server does it). */
void th_remove_dir(void);

/* 1 when the server log contains s; and the same, waiting up to seconds for it. */
int th_log_contains(const char *s);
int th_wait_log(const char *s, int seconds);
/* The pid of session session_id's process, from the server's log (VGPU_LOG=info), -1 if it
 * does not appear within 10 s. */
pid_t th_session_pid(uint64_t session_id);

/* Raw protocol client: connect, handshake (asserts a Welcome). */
int th_connect(void);
int th_connect_hello(void);
/* The same against any driver and frame limit (th_connect_hello insists on th_start_server's). */
int th_connect_hello_any(void);

/* Sends one Call and waits for its Reply (asserted). Reply bulk, if any, goes to rbulk when its
 * length is rbulk_len. Returns the unpacked Reply; free with th_reply_free. */
Vgpu__Reply *th_call(int fd, unsigned call, uint64_t ctx, const uint64_t *args, size_t nargs,
                     const char *name, const void *bulk, uint64_t bulk_len, void *rbulk, uint64_t rbulk_len);
void th_reply_free(Vgpu__Reply *r);

/* After a malformed frame: the next thing from the server is an Error frame or the end of the
 * connection. Returns 1 when that holds. */
int th_expect_error_or_close(int fd);

/* 1 when a fresh client can handshake and get the device count. */
int th_server_serves(void);

/* Runs a program through the stub against th_srv; returns its exit status (-1: signal).
 * With out/out_size, captures its stdout. */
int th_run(const char *const argv[], char *out, size_t out_size);
/* Starts one without waiting; stdout to a pipe whose read end is *out_fd (may be NULL). */
pid_t th_spawn(const char *const argv[], int *out_fd);
/* The same with a pipe to its stdin (*in_fd, may be NULL) and extra "NAME=value" environment
 * entries (NULL-terminated, may be NULL). */
pid_t th_spawn_io(const char *const argv[], int *in_fd, int *out_fd, const char *const env[]);
/* Runs argv (with extra environment entries, may be NULL) and captures its stdout; returns its
 * exit status. */
int th_capture(const char *const argv[], const char *const env[], char *out, size_t out_size);
/* Reads one line (without the newline) from fd within seconds; 1 when a whole line came. */
int th_read_line(int fd, char *buf, size_t size, int seconds);
/* Reads lines from fd until one starts with prefix (within seconds); copies it to out (may be
 * NULL). 1 when found. */
int th_expect_line(int fd, const char *prefix, char *out, size_t out_size, int seconds);
int th_wait(pid_t pid);

#endif
