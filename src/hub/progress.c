/* progress.c — what a download shows on stderr.
 * On a terminal: one bar per file, redrawn in place at most 10 times a second
 * (name, bar, bytes, %, rate, ETA). Otherwise (logs, CI): one line per
 * finished file, so logs stay short. stdout is left alone: `dam fetch`
 * prints only the snapshot folder there. */
#include "hub_internal.h"
#include "dam/common.h"
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

void format_bytes(double bytes, char *out, size_t size) {
    static const char *units[] = { "B", "KiB", "MiB", "GiB", "TiB" };
    int u = 0;
    while (bytes >= 1024 && u < 4) { bytes /= 1024; u++; }
    if (u == 0) snprintf(out, size, "%.0f B", bytes);
    else snprintf(out, size, "%.1f %s", bytes, units[u]);
}

static void format_duration(double s, char *out, size_t size) {
    if (s < 0 || s > 99 * 3600) { snprintf(out, size, "--:--"); return; }
    long t = (long)(s + 0.5);
    if (t >= 3600) snprintf(out, size, "%ld:%02ld:%02ld", t / 3600, t / 60 % 60, t % 60);
    else snprintf(out, size, "%ld:%02ld", t / 60, t % 60);
}

static int terminal_columns(void) {
    struct winsize ws;
    if (ioctl(STDERR_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0) return ws.ws_col;
    return 80;
}

/* Bytes per second over this run (resumed bytes do not count). */
static double rate_of(const struct hub_progress *p, double now) {
    double secs = (now - p->start_ms) / 1e3;
    return secs > 0 ? (double)(p->done - p->start_done) / secs : 0;
}

static void draw(struct hub_progress *p, double now) {
    char have[32], total[32], rate[32], eta[32], bar[32] = "";
    double bps = rate_of(p, now);
    int pct = p->total > 0 ? (int)(100.0 * (double)p->done / (double)p->total) : 100;
    format_bytes((double)p->done, have, sizeof have);
    format_bytes((double)p->total, total, sizeof total);
    format_bytes(bps, rate, sizeof rate);
    format_duration(bps > 0 ? (double)(p->total - p->done) / bps : -1, eta, sizeof eta);
    int cols = terminal_columns();
    if (cols >= 100) {   /* room for a 20-cell bar */
        int full = pct / 5;
        bar[0] = '[';
        for (int i = 0; i < 20; i++) bar[1 + i] = i < full ? '#' : '.';
        bar[21] = ']'; bar[22] = ' '; bar[23] = 0;
    }
    char line[512];
    snprintf(line, sizeof line, "%-28.28s %s%10s / %-10s %3d%% %10s/s  ETA %s",
             p->name, bar, have, total, pct, rate, eta);
    line[cols > 1 && cols - 1 < (int)sizeof line ? cols - 1 : (int)sizeof line - 1] = 0;
    fprintf(stderr, "\r%s\033[K", line);
    fflush(stderr);
    p->drawn = 1;
    p->drawn_ms = now;
}

void progress_begin(struct hub_progress *p, const char *name, int64_t total, int64_t done, int quiet) {
    memset(p, 0, sizeof *p);
    p->name = name;
    p->total = total;
    p->done = p->start_done = done;
    p->start_ms = now_ms();
    p->quiet = quiet;
    p->tty = !quiet && isatty(STDERR_FILENO);
    if (p->tty) draw(p, p->start_ms);
}

void progress_update(struct hub_progress *p, int64_t done) {
    if (done < p->start_done) p->start_done = done;   /* restarted from zero */
    p->done = done;
    if (!p->tty) return;
    double now = now_ms();
    if (now - p->drawn_ms >= 100) draw(p, now);
}

void progress_end(struct hub_progress *p, int ok) {
    if (p->quiet) return;
    double now = now_ms();
    if (p->tty) {
        if (ok) draw(p, now);
        if (p->drawn) fprintf(stderr, "\n");
        p->drawn = 0;
        return;
    }
    if (!ok) return;
    char size[32], rate[32], resumed[64] = "";
    format_bytes((double)p->total, size, sizeof size);
    format_bytes(rate_of(p, now), rate, sizeof rate);
    if (p->resumed_at > 0) {
        char from[32];
        format_bytes((double)p->resumed_at, from, sizeof from);
        snprintf(resumed, sizeof resumed, ", resumed at %s", from);
    }
    fprintf(stderr, "fetched %s: %s in %.1f s (%s/s%s)\n", p->name, size,
            (now - p->start_ms) / 1e3, rate, resumed);
}

void progress_note(int quiet, const char *fmt, ...) {
    if (quiet) return;
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "dam: ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n");
    va_end(ap);
}
