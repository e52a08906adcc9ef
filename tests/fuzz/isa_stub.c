/* isa_stub.c — stands in for src/kernels/isa_avx2.c and isa_avx512.c in the
 * fuzz build only (make fuzz). clang 14 does not know "f16c" in
 * __builtin_cpu_supports, so those two files do not build with it; here the
 * variants exist but say the CPU cannot run them, and the portable kernels
 * run instead. The fuzz targets exercise parsers, not the SIMD math. */
#include "../../src/kernels/isa.h"

static int no(void) { return 0; }

const struct isa isa_avx2 = { .name = "avx2", .cpu_has = no };
const struct isa isa_avx512 = { .name = "avx512", .cpu_has = no };
