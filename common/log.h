/* vg_log: one-line diagnostics to stderr, shared by every vgpu binary and library.
 *
 * The level comes from VGPU_LOG (error, warn, info, debug; default warn), read once.
 * Each line is "vgpu[<component> <pid>] <level>: <message>". Thread-safe: each line is written
 * with a single write(2). */
#ifndef VG_LOG_H
#define VG_LOG_H

enum vg_log_level { VG_LOG_ERROR = 0, VG_LOG_WARN = 1, VG_LOG_INFO = 2, VG_LOG_DEBUG = 3 };

/* Names the component in each line ("gpu-server", "stub", "emu"); call once at start-up.
 * The string must outlive the process (a literal). */
void vg_log_set_component(const char *component);
int vg_log_enabled(int level);
void vg_log(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* An info line whatever VGPU_LOG says (a server's start-up line, which names its setup). */
void vg_log_always(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#define vg_error(...) vg_log(VG_LOG_ERROR, __VA_ARGS__)
#define vg_warn(...) vg_log(VG_LOG_WARN, __VA_ARGS__)
#define vg_info(...) vg_log(VG_LOG_INFO, __VA_ARGS__)
#define vg_debug(...) vg_log(VG_LOG_DEBUG, __VA_ARGS__)

/* For driver functions we do not implement: logs "<name> is not supported" once per flag and
 * returns CUDA_ERROR_NOT_SUPPORTED (801). `once` is a per-function flag owned by the caller. */
int vg_unsupported(const char *name, int *once);

#endif
