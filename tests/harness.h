/* harness.h — shared by every Check test program.
 * Each tests/<area>/test_*.c defines `Suite *test_suite(void)`; harness.c has
 * main(), runs it and prints Check's summary. Tests run from the repo root. */
#ifndef DAM_TEST_HARNESS_H
#define DAM_TEST_HARNESS_H
#include <check.h>
#include <stdio.h>

Suite *test_suite(void);

/* Folder of the larger reference models: $DAM_REFS, else ../shared/models.
 * NULL when neither exists (tests that need it then skip). */
const char *refs_dir(void);

/* Marks the running test as skipped (counted by tests/run_all.sh) and returns. */
#define SKIP_TEST(...) do { printf("SKIP: "); printf(__VA_ARGS__); printf("\n"); \
                            fflush(stdout); return; } while (0)

/* Writes bytes to a fresh temporary file; returns its path (static buffer
 * per call slot, 8 slots). */
const char *tmp_file_with(const void *data, size_t len);
/* A fresh temporary directory. */
const char *tmp_dir(void);

#endif
