#include "harness.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <limits.h>
#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "calls.h"

struct th_server th_srv;

int th_shm(void)
{
    const char *t = getenv("VGPU_TEST_TRANSPORT");
    return t && strcmp(t, "shm") == 0;
}

int th_free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    cr_assert_eq(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
    socklen_t len = sizeof a;
    getsockname(fd, (struct sockaddr *)&a, &len);
    close(fd);
    return ntohs(a.sin_port);
}

int th_tls(void)
{
    const char *t = getenv("VGPU_TEST_TRANSPORT");
    return t && strcmp(t, "tls") == 0;
}

void th_make_certificates(const char *dir, const char *san)
{
    char cmd[2048];
    snprintf(cmd, sizeof cmd,
             "cd '%s' && "
             "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 "
             "-subj /CN=vgpu-test-ca -keyout ca.key -out ca.pem >/dev/null 2>&1 && "
             "openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -subj /CN=vgpu-test "
             "-keyout server.key -out server.csr >/dev/null 2>&1 && "
             "printf 'subjectAltName=%s\\n' > ext.cnf && "
             "openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 "
             "-extfile ext.cnf -out server.pem >/dev/null 2>&1",
             dir, san);
    cr_assert_eq(system(cmd), 0, "cannot make test certificates with openssl in %s", dir);
}

const char *th_client_addr(void)
{
    static char buf[64];
    if (th_shm())
        snprintf(buf, sizeof buf, "unix uid %u", (unsigned)getuid());
    else
        snprintf(buf, sizeof buf, "127.0.0.1");
    return buf;
}

void th_start_server(void)
{
    th_start_server_with(NULL, 0);
}

void th_start_server_with(const char *const *extra, unsigned nofile)
{
    signal(SIGPIPE, SIG_IGN);
    snprintf(th_srv.dir, sizeof th_srv.dir, "/tmp/vgpu-remote-test.XXXXXX");
    cr_assert_not_null(mkdtemp(th_srv.dir));
    char portfile[300];
    snprintf(portfile, sizeof portfile, "%s/port", th_srv.dir);
    snprintf(th_srv.log, sizeof th_srv.log, "%s/server.log", th_srv.dir);
    snprintf(th_srv.sock, sizeof th_srv.sock, "%s/gpu.sock", th_srv.dir);
    char unix_listen[320];
    snprintf(unix_listen, sizeof unix_listen, "unix:%s", th_srv.sock);
    const char *argv[40] = {"gpu-server", "--listen", "127.0.0.1:0", "--listen", unix_listen, "--port-file",
                            portfile, "--driver", "emulated", "--max-frame", "16M"};
    int argc = 11;
    /* Over TLS the port file names the tls:// listener (it comes first) and the clients
     * verify the server against a CA made for the test. */
    char cert[320], key[320];
    if (th_tls()) {
        th_make_certificates(th_srv.dir, "DNS:localhost,IP:127.0.0.1");
        snprintf(cert, sizeof cert, "%s/server.pem", th_srv.dir);
        snprintf(key, sizeof key, "%s/server.key", th_srv.dir);
        snprintf(th_srv.ca, sizeof th_srv.ca, "%s/ca.pem", th_srv.dir);
        argv[2] = "tls://127.0.0.1:0";
        argv[argc++] = "--tls-cert";
        argv[argc++] = cert;
        argv[argc++] = "--tls-key";
        argv[argc++] = key;
    }
    int has_admin = 0;
    for (int i = 0; extra && extra[i] && argc < 37; i++) {
        has_admin |= strcmp(extra[i], "--admin") == 0;
        argv[argc++] = extra[i];
    }
    /* vgpu-smi's endpoint in the test's own directory: servers of tests running at once must
     * not compete for the default port. */
    snprintf(th_srv.admin, sizeof th_srv.admin, "unix:%s/admin.sock", th_srv.dir);
    if (!has_admin) {
        argv[argc++] = "--admin";
        argv[argc++] = th_srv.admin;
    }
    argv[argc] = NULL;
    pid_t pid = fork();
    cr_assert(pid >= 0);
    if (pid == 0) {
        /* A process group of its own: a test can stop the whole server (main and sessions).
         * And it dies with the test, even a test that failed before stopping it. */
        setpgid(0, 0);
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        int fd = open(th_srv.log, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (fd >= 0)
            dup2(fd, 2);
        if (nofile) {
            struct rlimit rl = {nofile, nofile};
            setrlimit(RLIMIT_NOFILE, &rl);
        }
        setenv("VGPU_LOG", "info", 1);
        /* The emulated device's memory accounting is shared by the processes of one server (its
         * sessions) through a segment of its own: servers of parallel tests do not share it. */
        char seg[64];
        snprintf(seg, sizeof seg, "vgpu-test-server-%d", (int)getpid());
        setenv("VGPU_EMU_SHM", seg, 1);
        execv(VG_BUILD_DIR "/bin/gpu-server", (char *const *)argv);
        _exit(127);
    }
    th_srv.pid = pid;
    /* Startup wait (not an assertion on time): until the port file appears or the server exits. */
    for (;;) {
        FILE *f = fopen(portfile, "r");
        if (f) {
            int ok = fscanf(f, "%d", &th_srv.port) == 1;
            fclose(f);
            if (ok)
                break;
        }
        int st;
        cr_assert_eq(waitpid(pid, &st, WNOHANG), 0, "gpu-server exited during start-up");
        usleep(20000);
    }
}

int th_session_processes(void)
{
    DIR *d = opendir("/proc");
    cr_assert_not_null(d);
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        char path[300], buf[512];
        if (e->d_name[0] < '0' || e->d_name[0] > '9')
            continue;
        snprintf(path, sizeof path, "/proc/%s/stat", e->d_name);
        FILE *f = fopen(path, "r");
        if (!f)
            continue;
        size_t got = fread(buf, 1, sizeof buf - 1, f);
        fclose(f);
        buf[got] = 0;
        /* pid (comm) state ppid ...: comm may hold spaces, so parse after the last ')'. */
        char *close_paren = strrchr(buf, ')');
        int ppid = 0;
        char state;
        /* A zombie counts: until gpu-server reaps it, its slot (and what it charged) is held. */
        if (close_paren && sscanf(close_paren + 1, " %c %d", &state, &ppid) == 2 && ppid == th_srv.pid)
            n++;
    }
    closedir(d);
    return n;
}

int th_wait_sessions(int n, int seconds)
{
    for (int i = 0; i < seconds * 20; i++) {
        if (th_session_processes() == n)
            return 1;
        usleep(50000);
    }
    return th_session_processes() == n;
}

void th_stop_server(void)
{
    int st;
    cr_assert_eq(waitpid(th_srv.pid, &st, WNOHANG), 0, "gpu-server died during the test");
    kill(th_srv.pid, SIGTERM);
    cr_assert_eq(waitpid(th_srv.pid, &st, 0), th_srv.pid);
    cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "gpu-server did not stop cleanly");
    th_remove_dir();
}

void th_remove_dir(void)
{
    char path[400];
    snprintf(path, sizeof path, "/vgpu-test-server-%d", (int)th_srv.pid);
    shm_unlink(path);
    snprintf(path, sizeof path, "%s/server.log", th_srv.dir);
    unlink(path);
    snprintf(path, sizeof path, "%s/port", th_srv.dir);
    unlink(path);
    unlink(th_srv.sock);
    static const char *const made[] = {"admin.sock", "ca.key", "ca.pem", "ca.srl", "server.key", "server.csr",
                                       "server.pem", "ext.cnf"};
    for (size_t i = 0; i < sizeof made / sizeof made[0]; i++) {
        snprintf(path, sizeof path, "%s/%s", th_srv.dir, made[i]);
        unlink(path);
    }
    rmdir(th_srv.dir);
}

int th_log_contains(const char *s)
{
    FILE *f = fopen(th_srv.log, "r");
    if (!f)
        return 0;
    char line[2048];
    int found = 0;
    while (!found && fgets(line, sizeof line, f))
        found = strstr(line, s) != NULL;
    fclose(f);
    return found;
}

int th_wait_log(const char *s, int seconds)
{
    for (int i = 0; i < seconds * 20; i++) {
        if (th_log_contains(s))
            return 1;
        usleep(50000);
    }
    return th_log_contains(s);
}

pid_t th_session_pid(uint64_t session_id)
{
    char want[64], line[2048];
    snprintf(want, sizeof want, "session %llu: client ", (unsigned long long)session_id);
    for (int tries = 0; tries < 200; tries++) {
        FILE *f = fopen(th_srv.log, "r");
        if (f) {
            while (fgets(line, sizeof line, f)) {
                const char *at = strstr(line, want), *pp = strstr(line, "(session process ");
                int pid;
                if (at && pp && sscanf(pp, "(session process %d)", &pid) == 1) {
                    fclose(f);
                    return (pid_t)pid;
                }
            }
            fclose(f);
        }
        usleep(50000);
    }
    return -1;
}

int th_connect_raw(void)
{
    int fd;
    if (th_shm()) {
        fd = th_relay_connect(th_srv.sock);
        if (fd < 0)
            return -1;
    } else if (th_tls()) {
        fd = th_tls_relay_connect(th_srv.port, th_srv.ca);
        if (fd < 0)
            return -1;
    } else {
        fd = socket(AF_INET, SOCK_STREAM, 0);
        if (fd < 0)
            return -1;
        struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)th_srv.port)};
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        if (connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
            close(fd);
            return -1;
        }
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    }
    struct timeval tv = {.tv_sec = 60};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv); /* a hang fails instead of blocking */
    return fd;
}

int th_connect(void)
{
    int fd = th_connect_raw();
    cr_assert(fd >= 0, "cannot connect to gpu-server");
    return fd;
}

/* Connects and says Hello; the server's Welcome (free with protobuf_c_message_free_unpacked). */
static Vgpu__Welcome *hello(int *fd_out)
{
    int fd = th_connect();
    Vgpu__Hello h = VGPU__HELLO__INIT;
    h.protocol_version = VG_PROTOCOL_VERSION;
    h.api_hash = VG_API_HASH;
    h.host = "test";
    h.pid = (uint32_t)getpid();
    h.program = "remote_test";
    h.token = "";
    cr_assert_eq(vg_frame_send(fd, VG_MSG_HELLO, 0, 1, &h.base, NULL, 0), 0);
    struct vg_frame_header hd;
    ProtobufCMessage *m;
    cr_assert_eq(vg_frame_recv(fd, VG_FRAME_DEFAULT_MAX, &hd, &m, NULL), 0);
    cr_assert_eq(hd.type, VG_MSG_WELCOME);
    Vgpu__Welcome *w = (Vgpu__Welcome *)m;
    cr_assert_eq(w->protocol_version, VG_PROTOCOL_VERSION);
    *fd_out = fd;
    return w;
}

int th_connect_hello(void)
{
    int fd;
    Vgpu__Welcome *w = hello(&fd);
    cr_assert_eq(w->max_frame, 16u << 20);
    cr_assert_not_null(strstr(w->driver, "emulated"));
    protobuf_c_message_free_unpacked(&w->base, NULL);
    return fd;
}

int th_connect_hello_any(void)
{
    int fd;
    protobuf_c_message_free_unpacked(&hello(&fd)->base, NULL);
    return fd;
}

Vgpu__Reply *th_call(int fd, unsigned call, uint64_t ctx, const uint64_t *args, size_t nargs,
                     const char *name, const void *bulk, uint64_t bulk_len, void *rbulk, uint64_t rbulk_len)
{
    static uint64_t req = 100;
    Vgpu__Call c = VGPU__CALL__INIT;
    c.call = call;
    c.ctx = ctx;
    c.args = (uint64_t *)args;
    c.n_args = nargs;
    c.name = (char *)(name ? name : "");
    uint64_t id = ++req;
    cr_assert_eq(vg_frame_send(fd, VG_MSG_CALL, 0, id, &c.base, bulk, bulk_len), 0);
    struct vg_frame_header h;
    ProtobufCMessage *m;
    cr_assert_eq(vg_frame_recv(fd, VG_FRAME_DEFAULT_MAX, &h, &m, NULL), 0, "no reply to %s",
                 vg_call_name(call));
    cr_assert_eq(h.type, VG_MSG_REPLY);
    cr_assert_eq(h.request_id, id);
    if (h.bulk_len) {
        cr_assert_eq(h.bulk_len, rbulk_len);
        cr_assert_eq(vg_io_read_all(fd, rbulk, (size_t)rbulk_len), 0);
    }
    return (Vgpu__Reply *)m;
}

void th_reply_free(Vgpu__Reply *r)
{
    protobuf_c_message_free_unpacked(&r->base, NULL);
}

int th_expect_error_or_close(int fd)
{
    struct vg_frame_header h;
    ProtobufCMessage *m = NULL;
    int rc = vg_frame_recv(fd, VG_FRAME_DEFAULT_MAX, &h, &m, NULL);
    if (rc == -ECONNRESET)
        return 1;
    if (rc < 0)
        return 0; /* a timeout or a garbled answer */
    int ok = h.type == VG_MSG_ERROR;
    protobuf_c_message_free_unpacked(m, NULL);
    if (!ok)
        return 0;
    /* After the Error the server closes (a reset when it left input unread). */
    char b;
    ssize_t n = recv(fd, &b, 1, 0);
    return n == 0 || (n < 0 && errno == ECONNRESET);
}

int th_server_serves(void)
{
    int fd = th_connect_hello();
    Vgpu__Reply *r = th_call(fd, VG_CALL_cuDeviceGetCount, 0, NULL, 0, NULL, NULL, 0, NULL, 0);
    int ok = r->result == 0 && r->n_outs == 1 && r->outs[0] >= 1;
    th_reply_free(r);
    close(fd);
    return ok;
}

pid_t th_spawn(const char *const argv[], int *out_fd)
{
    return th_spawn_io(argv, NULL, out_fd, NULL);
}

pid_t th_spawn_io(const char *const argv[], int *in_fd, int *out_fd, const char *const env[])
{
    int p[2] = {-1, -1}, q[2] = {-1, -1};
    if (out_fd)
        cr_assert_eq(pipe(p), 0);
    if (in_fd)
        cr_assert_eq(pipe(q), 0);
    pid_t pid = fork();
    cr_assert(pid >= 0);
    if (pid == 0) {
        if (out_fd) {
            dup2(p[1], 1);
            close(p[0]);
            close(p[1]);
        }
        if (in_fd) {
            dup2(q[0], 0);
            close(q[0]);
            close(q[1]);
        }
        for (int i = 0; env && env[i]; i++)
            putenv((char *)env[i]);
        char server[320];
        if (th_shm())
            snprintf(server, sizeof server, "unix:%s", th_srv.sock);
        else
            snprintf(server, sizeof server, "%s127.0.0.1:%d", th_tls() ? "tls://" : "", th_srv.port);
        setenv("VGPU_SERVER", server, 0); /* a test's own VGPU_SERVER in env wins */
        if (th_tls())
            setenv("VGPU_TLS_CA", th_srv.ca, 0);
        setenv("LD_LIBRARY_PATH", VG_BUILD_DIR "/lib", 1);
        execv(argv[0], (char *const *)argv);
        _exit(127);
    }
    if (out_fd) {
        close(p[1]);
        *out_fd = p[0];
    }
    if (in_fd) {
        close(q[0]);
        *in_fd = q[1];
    }
    return pid;
}

int th_expect_line(int fd, const char *prefix, char *out, size_t out_size, int seconds)
{
    char line[256];
    time_t until = time(NULL) + seconds;
    while (time(NULL) <= until) {
        if (!th_read_line(fd, line, sizeof line, seconds))
            return 0;
        if (strncmp(line, prefix, strlen(prefix)) == 0) {
            if (out)
                snprintf(out, out_size, "%s", line);
            return 1;
        }
    }
    return 0;
}

int th_capture(const char *const argv[], const char *const env[], char *out, size_t out_size)
{
    int fd;
    pid_t pid = th_spawn_io(argv, NULL, &fd, env);
    size_t got = 0;
    ssize_t n;
    while (got + 1 < out_size && (n = read(fd, out + got, out_size - 1 - got)) > 0)
        got += (size_t)n;
    out[got] = 0;
    close(fd);
    return th_wait(pid);
}

int th_read_line(int fd, char *buf, size_t size, int seconds)
{
    size_t got = 0;
    while (got + 1 < size) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        if (poll(&p, 1, seconds * 1000) <= 0)
            break;
        ssize_t n = read(fd, buf + got, 1);
        if (n <= 0)
            break;
        if (buf[got] == '\n') {
            buf[got] = 0;
            return 1;
        }
        got++;
    }
    buf[got] = 0;
    return 0;
}

int th_wait(pid_t pid)
{
    int st;
    cr_assert_eq(waitpid(pid, &st, 0), pid);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

int th_run(const char *const argv[], char *out, size_t out_size)
{
    if (out)
        return th_capture(argv, NULL, out, out_size);
    return th_wait(th_spawn(argv, NULL));
}

void th_write_file(char *path, size_t path_size, const char *template, const char *text)
{
    if (!path[0]) {
        snprintf(path, path_size, "%s", template);
        int fd = mkstemp(path);
        cr_assert(fd >= 0, "mkstemp %s: %s", template, strerror(errno));
        close(fd);
    }
    char tmp[PATH_MAX];
    snprintf(tmp, sizeof tmp, "%s.new", path);
    FILE *f = fopen(tmp, "w");
    cr_assert_not_null(f, "%s: %s", tmp, strerror(errno));
    fputs(text, f);
    fclose(f);
    cr_assert_eq(rename(tmp, path), 0, "rename %s: %s", path, strerror(errno));
}
