/* cache/cache_script.h: Lua scripts, for cache's own files only.
 *
 * A script is sent by its SHA-1 (EVALSHA) once Redis has it; when Redis
 * answers NOSCRIPT (it restarted, or SCRIPT FLUSH ran) the source goes out
 * with EVAL, which also caches it again. The SHA-1 comes from SCRIPT LOAD
 * the first time any connection runs the script and is shared by all
 * threads: it depends on the source only. */
#ifndef CACHE_SCRIPT_H
#define CACHE_SCRIPT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>

#include "cache_internal.h"

typedef struct cache_script {
    const char *source;
    /* CACHE_RESEND_SAFE when running the script twice does what running it
     * once does (cache_internal.h, cache_resend). */
    cache_resend resend;
    pthread_mutex_t lock; /* serialises the one write of sha */
    char sha[41];         /* written once, before known is set */
    atomic_bool known;    /* read without the lock on every run */
} cache_script;

#define CACHE_SCRIPT(text) {.source = (text), .resend = CACHE_SEND_ONCE, .lock = PTHREAD_MUTEX_INITIALIZER}
#define CACHE_SCRIPT_RESENDABLE(text) {.source = (text), .resend = CACHE_RESEND_SAFE, .lock = PTHREAD_MUTEX_INITIALIZER}

/* Runs script with key_count keys followed by the other arguments
 * (binary-safe; argc <= CACHE_SCRIPT_MAX_ARGUMENTS in all, enough for a
 * TechEmpower batch of 500 keys); the reply is as for cache_command_argv. */
#define CACHE_SCRIPT_MAX_ARGUMENTS 512
cache_status cache_script_run(cache *c, cache_script *script, int key_count, int argc, const char **argv,
                              const size_t *lengths, redisReply **reply);

#endif
