/* The checks of the C API tests (test_c_api.c, test_c_api_io.c): each prints one line when it
 * fails and is counted; main prints the summary. Include once per test program. */
#ifndef PERFQ_TESTS_C_CHECKS_H
#define PERFQ_TESTS_C_CHECKS_H

#include <perfq/perfq.h>

#include <stdio.h>
#include <string.h>

static int g_checks = 0;
static int g_failures = 0;

static void check(int ok, const char* what, int line) {
  ++g_checks;
  if (!ok) {
    ++g_failures;
    printf("FAILED (line %d): %s\n", line, what);
  }
}

/* Whether `got` is `expected` and, when `needle` is not NULL, the last error mentions it;
 * says what differs when not. */
static int expect_status(perfq_status got, perfq_status expected, const char* needle) {
  if (got != expected) {
    printf("  status %d (%s), expected %d (%s); last error: %s\n", (int)got,
           perfq_status_string(got), (int)expected, perfq_status_string(expected),
           perfq_last_error());
    return 0;
  }
  if (needle != NULL && strstr(perfq_last_error(), needle) == NULL) {
    printf("  message \"%s\" does not mention \"%s\"\n", perfq_last_error(), needle);
    return 0;
  }
  return 1;
}

#define CHECK(cond) check((cond) ? 1 : 0, #cond, __LINE__)
#define CHECK_OK(call) check(expect_status((call), PERFQ_OK, NULL), #call " == PERFQ_OK", __LINE__)
/* A call that must fail with `status` and a message containing `needle`. */
#define CHECK_FAILS(call, status, needle) \
  check(expect_status((call), (status), (needle)), #call " fails: " needle, __LINE__)

#endif
