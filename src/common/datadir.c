/* datadir.c — finding the files dam ships beside its program: the embedded
 * model (third_party/models/testbed), the calibration and haystack texts
 * (prompts/), the default options (configs/dam.json).
 *
 * `make install PREFIX=P` copies them to P/share/dam with the source tree's
 * layout, so one relative name finds a file wherever it lives:
 *   1. <exe>/../NAME            the build tree (build/dam)
 *   2. <exe>/../share/dam/NAME  an installed tree moved as a whole (P/bin/dam)
 *   3. DAM_DATADIR/NAME         the PREFIX the binary was installed for,
 *                               compiled in: a copied binary still finds it
 *   4. <exe>/NAME, ./NAME       beside the program, the working directory
 * A miss lists every place looked at, so a broken install says where it
 * expected the files. */
#include "dam/common.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifndef DAM_DATADIR
#define DAM_DATADIR "/usr/local/share/dam"
#endif

static int exists(const char *path, int want_dir) {
    return want_dir ? is_dir(path) : is_file(path);
}

int data_find(const char *rel, int want_dir, char *out, size_t size) {
    char exe[4096] = "", looked[4096] = "";
    const int have_exe = exe_dir(exe, sizeof exe) == 0;
    char cand[5][4400];
    int n = 0;
    if (have_exe) {
        snprintf(cand[n++], sizeof cand[0], "%s/../%s", exe, rel);
        snprintf(cand[n++], sizeof cand[0], "%s/../share/dam/%s", exe, rel);
    }
    snprintf(cand[n++], sizeof cand[0], "%s/%s", DAM_DATADIR, rel);
    if (have_exe) snprintf(cand[n++], sizeof cand[0], "%s/%s", exe, rel);
    snprintf(cand[n++], sizeof cand[0], "%s", rel);
    size_t used = 0;
    for (int i = 0; i < n; i++) {
        if (exists(cand[i], want_dir)) {
            if (strlen(cand[i]) >= size) return dam_fail("path too long: %s", cand[i]);
            /* realpath: "build/../prompts/x" would show up in messages and JSON */
            char real[4096];
            snprintf(out, size, "%s", realpath(cand[i], real) ? real : cand[i]);
            return 0;
        }
        if (used < sizeof looked)
            used += (size_t)snprintf(looked + used, sizeof looked - used, "%s%s", i ? ", " : "", cand[i]);
    }
    return dam_fail("cannot find %s (looked in %s)", rel, looked);
}

const char *data_dir_compiled(void) { return DAM_DATADIR; }
