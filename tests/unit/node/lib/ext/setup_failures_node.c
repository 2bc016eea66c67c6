/* tests/unit/node/lib/ext/setup_failures_node.c: shoal-node (node/bin/main.c as it
 * is) with one allocation failure injected into one extension's init, for
 * setup_failures_node_test.sh. Linked only into that test program, never
 * into the shipped node, which has no such hook:
 *
 *   SHOAL_TEST_FAIL_EXTENSION=NAME SHOAL_TEST_FAIL_ALLOCATION=N
 *
 * fails the Nth allocation made while shoal_app_extend loads the extension
 * named NAME (1 is the app's own record of it; 2 the init's first). The
 * call is reached with the linker's --wrap=shoal_app_extend, as the
 * allocations are (tests/unit/support/alloc_faults.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <shoal/shoal.h>

#include "alloc_faults.h"

int __real_shoal_app_extend(shoal_app *app, const shoal_extension *extension);
int __wrap_shoal_app_extend(shoal_app *app, const shoal_extension *extension);

int __wrap_shoal_app_extend(shoal_app *app, const shoal_extension *extension)
{
    const char *name = getenv("SHOAL_TEST_FAIL_EXTENSION");
    const char *nth_text = getenv("SHOAL_TEST_FAIL_ALLOCATION");
    if (name == NULL || nth_text == NULL || extension->name == NULL || strcmp(name, extension->name) != 0)
        return __real_shoal_app_extend(app, extension);
    unsigned long nth = strtoul(nth_text, NULL, 10);
    alloc_faults_fail_nth(nth);
    int rc = __real_shoal_app_extend(app, extension);
    bool injected = alloc_faults_injected();
    alloc_faults_fail_nth(0);
    if (injected)
        return rc;
    /* Past the extension's last allocation: the node must not go on to
     * serve, and the test must tell this apart from a refusal. */
    fprintf(stderr, "setup_failures_node: %s made fewer than %lu allocations\n", name, nth);
    return -1;
}
