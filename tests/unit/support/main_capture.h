/* tests/unit/support/main_capture.h: shoal_main run inside a unit test,
 * with what it prints on stdout and stderr caught, for tests of --help,
 * --version, commands and exit statuses without starting a process; and
 * any function's stderr caught, for tests of what the library logs. */
#ifndef MAIN_CAPTURE_H
#define MAIN_CAPTURE_H

#include <shoal/service.h>

/* Runs shoal_main(service, argc, argv) with stdout and stderr redirected
 * to temporary files; *out and *err receive their text (malloc'd, the
 * caller frees them). Returns shoal_main's exit status. */
int test_main_capture(const shoal_service *service, int argc, char **argv, char **out, char **err);

/* Runs fn(argument) with stderr going into a pipe; returns what came out
 * (at most 8 KiB; more would fill the pipe and block fn), in a buffer the
 * next call reuses. */
char *capture_stderr(void (*fn)(void *), void *argument);

#endif
