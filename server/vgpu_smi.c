/* vgpu-smi: what gpu-server is doing, as nvidia-smi shows a GPU: devices, tenants and their
 * sessions. Asks gpu-server's admin endpoint (main_admin.c). */
#include <errno.h>
#include <json-c/json.h>
#include <netdb.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

static void usage(FILE *f)
{
    fprintf(f,
            "usage: vgpu-smi [options] [command]\n"
            "  (no command)     devices, tenants and sessions of a gpu-server\n"
            "  reload           make gpu-server re-read its tenants file (as SIGHUP does)\n"
            "  end ID           end session ID (its process gets SIGTERM)\n"
            "options:\n"
            "  --admin ADDR     gpu-server's admin endpoint, HOST:PORT or unix:PATH\n"
            "                   (default: $VGPU_ADMIN, else 127.0.0.1:7301)\n"
            "  --json           print the status as JSON, for scripts\n"
            "  -l SECS          print it again every SECS seconds, until interrupted\n"
            "  --help           this text\n");
}

static int dial(const char *addr)
{
    int fd = -1;
    if (!strncmp(addr, "unix:", 5)) {
        struct sockaddr_un sun = {.sun_family = AF_UNIX};
        if (strlen(addr + 5) >= sizeof sun.sun_path)
            return -1;
        snprintf(sun.sun_path, sizeof sun.sun_path, "%s", addr + 5);
        fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd >= 0 && connect(fd, (struct sockaddr *)&sun, sizeof sun) != 0) {
            close(fd);
            fd = -1;
        }
        return fd;
    }
    char host[256];
    const char *colon = strrchr(addr, ':');
    if (!colon || (size_t)(colon - addr) >= sizeof host) {
        errno = EINVAL;
        return -1;
    }
    memcpy(host, addr, (size_t)(colon - addr));
    host[colon - addr] = 0;
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *res = NULL;
    if (getaddrinfo(host, colon + 1, &hints, &res) != 0) {
        errno = EHOSTUNREACH;
        return -1;
    }
    for (struct addrinfo *ai = res; ai && fd < 0; ai = ai->ai_next) {
        fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
        if (fd >= 0 && connect(fd, ai->ai_addr, ai->ai_addrlen) != 0) {
            close(fd);
            fd = -1;
        }
    }
    freeaddrinfo(res);
    return fd;
}

/* Sends one request line; returns the parsed answer or NULL (a message printed). */
static struct json_object *ask(const char *addr, const char *request)
{
    int fd = dial(addr);
    if (fd < 0) {
        fprintf(stderr, "vgpu-smi: cannot reach gpu-server's admin endpoint at %s: %s\n", addr, strerror(errno));
        return NULL;
    }
    size_t n = strlen(request);
    if (write(fd, request, n) != (ssize_t)n || write(fd, "\n", 1) != 1) {
        fprintf(stderr, "vgpu-smi: cannot send to %s: %s\n", addr, strerror(errno));
        close(fd);
        return NULL;
    }
    size_t cap = 65536, len = 0;
    char *buf = malloc(cap);
    for (;;) {
        if (!buf)
            break;
        if (len + 1 == cap) {
            char *nb = realloc(buf, cap * 2);
            if (!nb) {
                free(buf);
                buf = NULL;
                break;
            }
            buf = nb;
            cap *= 2;
        }
        struct pollfd p = {.fd = fd, .events = POLLIN};
        if (poll(&p, 1, 10000) <= 0) {
            fprintf(stderr, "vgpu-smi: no answer from %s\n", addr);
            free(buf);
            buf = NULL;
            break;
        }
        ssize_t r = read(fd, buf + len, cap - 1 - len);
        if (r <= 0)
            break;
        len += (size_t)r;
    }
    close(fd);
    if (!buf)
        return NULL;
    buf[len] = 0;
    struct json_object *o = json_tokener_parse(buf);
    if (!o)
        fprintf(stderr, "vgpu-smi: %s did not answer in JSON (is it gpu-server's admin endpoint?)\n", addr);
    free(buf);
    return o;
}

static struct json_object *get(struct json_object *o, const char *key)
{
    struct json_object *v = NULL;
    return o && json_object_object_get_ex(o, key, &v) ? v : NULL;
}

static const char *str(struct json_object *o, const char *key)
{
    struct json_object *v = get(o, key);
    return v ? json_object_get_string(v) : "";
}

static uint64_t u64(struct json_object *o, const char *key)
{
    return (uint64_t)json_object_get_uint64(get(o, key));
}

static double dbl(struct json_object *o, const char *key)
{
    return json_object_get_double(get(o, key));
}

static void mib(char *buf, size_t size, uint64_t bytes)
{
    snprintf(buf, size, "%lluMiB", (unsigned long long)(bytes >> 20));
}

static void show(struct json_object *st)
{
    struct json_object *srv = get(st, "server");
    time_t now = time(NULL);
    char when[64];
    strftime(when, sizeof when, "%a %b %e %H:%M:%S %Y", localtime(&now));
    printf("%s\n", when);
    printf("gpu-server: %s, up %llus, %llu session(s)\n", str(srv, "driver"),
           (unsigned long long)u64(srv, "uptime_s"), (unsigned long long)u64(srv, "sessions"));
    printf("+-----+--------------------------------+------------------------+-------------+\n");
    printf("| GPU | Name                           |    Memory used / total | Util 1s/10s |\n");
    printf("+-----+--------------------------------+------------------------+-------------+\n");
    struct json_object *devs = get(st, "devices");
    for (size_t i = 0; devs && i < json_object_array_length(devs); i++) {
        struct json_object *d = json_object_array_get_idx(devs, i);
        char used[32], total[32], mem[96];
        mib(used, sizeof used, u64(d, "memory_used"));
        mib(total, sizeof total, u64(d, "memory_total"));
        snprintf(mem, sizeof mem, "%s / %s", used, total);
        printf("| %3d | %-30.30s | %22s | %4.0f%%/%4.0f%% |\n", (int)u64(d, "index"), str(d, "name"), mem,
               100 * dbl(st, "utilization_1s"), 100 * dbl(st, "utilization_10s"));
    }
    printf("+-----+--------------------------------+------------------------+-------------+\n\n");
    printf("%-16s %6s %5s %8s %9s %9s %21s %8s\n", "Tenant", "Weight", "Cap", "Share 1s", "Share 10s",
           "Entitled", "Memory used / limit", "Sessions");
    struct json_object *tens = get(st, "tenants");
    for (size_t i = 0; tens && i < json_object_array_length(tens); i++) {
        struct json_object *t = json_object_array_get_idx(tens, i);
        uint64_t used = 0;
        struct json_object *mu = get(t, "memory_used");
        for (size_t k = 0; mu && k < json_object_array_length(mu); k++)
            used += (uint64_t)json_object_get_uint64(json_object_array_get_idx(mu, k));
        char u[32], l[32], mem[96], cap[16], name[96];
        mib(u, sizeof u, used);
        if (u64(t, "memory_limit"))
            mib(l, sizeof l, u64(t, "memory_limit"));
        else
            snprintf(l, sizeof l, "-");
        snprintf(mem, sizeof mem, "%s / %s", u, l);
        if (u64(t, "limit_percent"))
            snprintf(cap, sizeof cap, "%llu%%", (unsigned long long)u64(t, "limit_percent"));
        else
            snprintf(cap, sizeof cap, "-");
        snprintf(name, sizeof name, "%s%s", str(t, "name"), strcmp(str(t, "state"), "removed") ? "" : " (removed)");
        struct json_object *ss = get(t, "sessions");
        printf("%-16s %6llu %5s %7.1f%% %8.1f%% %8.1f%% %21s %8zu\n", name, (unsigned long long)u64(t, "weight"),
               cap, 100 * dbl(t, "share_1s"), 100 * dbl(t, "share_10s"), 100 * dbl(t, "entitled_share"), mem,
               ss ? json_object_array_length(ss) : 0);
    }
    printf("\n%-8s %-12s %-16s %-8s %-16s %-20s %10s\n", "Session", "Tenant", "Client host", "PID", "Program",
           "Connected since", "Memory");
    for (size_t i = 0; tens && i < json_object_array_length(tens); i++) {
        struct json_object *t = json_object_array_get_idx(tens, i);
        struct json_object *ss = get(t, "sessions");
        for (size_t k = 0; ss && k < json_object_array_length(ss); k++) {
            struct json_object *s = json_object_array_get_idx(ss, k);
            char m[32];
            mib(m, sizeof m, u64(s, "memory_used"));
            printf("%-8llu %-12.12s %-16.16s %-8llu %-16.16s %-20.20s %10s\n", (unsigned long long)u64(s, "id"),
                   str(t, "name"), str(s, "client_host"), (unsigned long long)u64(s, "client_pid"),
                   str(s, "program"), str(s, "connected_since"), m);
        }
    }
}

int main(int argc, char **argv)
{
    const char *addr = getenv("VGPU_ADMIN");
    if (!addr || !*addr)
        addr = "127.0.0.1:7301";
    int json = 0, loop_s = 0;
    const char *command = NULL, *arg = NULL;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            usage(stdout);
            return 0;
        } else if (!strcmp(argv[i], "--json")) {
            json = 1;
        } else if (!strcmp(argv[i], "--admin") && i + 1 < argc) {
            addr = argv[++i];
        } else if (!strcmp(argv[i], "-l") && i + 1 < argc) {
            loop_s = atoi(argv[++i]);
            if (loop_s < 1) {
                fprintf(stderr, "vgpu-smi: -l takes whole seconds, at least 1\n");
                return 2;
            }
        } else if (!command && (!strcmp(argv[i], "reload") || !strcmp(argv[i], "end"))) {
            command = argv[i];
            if (!strcmp(command, "end")) {
                if (i + 1 >= argc) {
                    fprintf(stderr, "vgpu-smi: end needs a session id\n");
                    return 2;
                }
                arg = argv[++i];
            }
        } else {
            fprintf(stderr, "vgpu-smi: unknown argument '%s' (see --help)\n", argv[i]);
            return 2;
        }
    }
    if (command) {
        char req[128];
        snprintf(req, sizeof req, "%s%s%s", command, arg ? " " : "", arg ? arg : "");
        struct json_object *r = ask(addr, req);
        if (!r)
            return 1;
        int ok = json_object_get_boolean(get(r, "ok"));
        if (!ok)
            fprintf(stderr, "vgpu-smi: %s: %s\n", command, str(r, "error"));
        else
            printf("%s: done\n", command);
        json_object_put(r);
        return ok ? 0 : 1;
    }
    for (;;) {
        struct json_object *st = ask(addr, "status");
        if (!st)
            return 1;
        if (json)
            printf("%s\n", json_object_to_json_string_ext(st, JSON_C_TO_STRING_PRETTY));
        else
            show(st);
        fflush(stdout);
        json_object_put(st);
        if (!loop_s)
            return 0;
        sleep((unsigned)loop_s);
        if (!json)
            printf("\n");
    }
}
