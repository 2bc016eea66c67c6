/* tests/unit/support/main_capture.c: see main_capture.h. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "main_capture.h"

/* The whole of a temporary file, which it closes (and so removes). */
static char *slurp(FILE *file)
{
    fflush(file);
    assert_int_equal(fseek(file, 0, SEEK_END), 0);
    long size = ftell(file);
    assert_true(size >= 0);
    char *text = calloc(1, (size_t)size + 1);
    assert_non_null(text);
    rewind(file);
    assert_int_equal(fread(text, 1, (size_t)size, file), (size_t)size);
    fclose(file);
    return text;
}

int test_main_capture(const shoal_service *service, int argc, char **argv, char **out, char **err)
{
    FILE *out_file = tmpfile(), *err_file = tmpfile();
    assert_non_null(out_file);
    assert_non_null(err_file);
    fflush(stdout);
    fflush(stderr);
    int saved_out = dup(STDOUT_FILENO), saved_err = dup(STDERR_FILENO);
    assert_true(saved_out >= 0 && saved_err >= 0);
    assert_true(dup2(fileno(out_file), STDOUT_FILENO) >= 0 && dup2(fileno(err_file), STDERR_FILENO) >= 0);
    int rc = shoal_main(service, argc, argv);
    fflush(stdout);
    fflush(stderr);
    assert_true(dup2(saved_out, STDOUT_FILENO) >= 0 && dup2(saved_err, STDERR_FILENO) >= 0);
    close(saved_out);
    close(saved_err);
    *out = slurp(out_file);
    *err = slurp(err_file);
    return rc;
}

char *capture_stderr(void (*fn)(void *), void *argument)
{
    static char output[8192];
    int pipe_ends[2];
    assert_int_equal(pipe(pipe_ends), 0);
    fflush(stderr);
    int saved = dup(STDERR_FILENO);
    assert_true(saved >= 0);
    assert_true(dup2(pipe_ends[1], STDERR_FILENO) >= 0);
    fn(argument);
    assert_true(dup2(saved, STDERR_FILENO) >= 0);
    close(saved);
    close(pipe_ends[1]);
    size_t length = 0;
    ssize_t n;
    while ((n = read(pipe_ends[0], output + length, sizeof output - 1 - length)) > 0)
        length += (size_t)n;
    close(pipe_ends[0]);
    output[length] = '\0';
    return output;
}
