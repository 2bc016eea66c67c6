/* node/lib/version.c: the library's version, for programs that may run against
 * another build of libshoal.so than they were compiled with. */
#include <shoal/version.h>

const char *shoal_version(void)
{
    return SHOAL_VERSION_STRING;
}
