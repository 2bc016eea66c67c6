/* cache/cache_script.c: EVALSHA with a fallback to EVAL. */
#include "cache_script.h"

#include <stdio.h>
#include <string.h>

#include <stdlib.h>

/* Lock-free once known: the SHA-1 is written once and published with a
 * release store, so a reader that sees known also sees it. */
static bool copy_sha(cache_script *script, char *out)
{
    if (!atomic_load_explicit(&script->known, memory_order_acquire))
        return false;
    memcpy(out, script->sha, sizeof script->sha);
    return true;
}

static cache_status load(cache *c, cache_script *script, char *sha)
{
    const char *argv[] = {"SCRIPT", "LOAD", script->source};
    size_t lengths[] = {6, 4, strlen(script->source)};
    redisReply *reply = NULL;
    cache_status status = cache_command_run(c, CACHE_RESEND_SAFE, 3, argv, lengths, &reply);
    if (status != CACHE_OK) {
        freeReplyObject(reply);
        return status;
    }
    bool valid = reply->type == REDIS_REPLY_STRING && reply->len == 40;
    if (valid) {
        memcpy(sha, reply->str, 40);
        sha[40] = '\0';
        /* Two threads may both load it; only the first writes, so that no
         * reader ever sees the bytes change under it. */
        pthread_mutex_lock(&script->lock);
        if (!atomic_load_explicit(&script->known, memory_order_relaxed)) {
            memcpy(script->sha, sha, sizeof script->sha);
            atomic_store_explicit(&script->known, true, memory_order_release);
        }
        pthread_mutex_unlock(&script->lock);
    }
    freeReplyObject(reply);
    return valid ? CACHE_OK : CACHE_ERROR;
}

static cache_status evaluate(cache *c, cache_resend resend, const char *command, const char *body, int key_count,
                             int argc, const char **argv, const size_t *lengths, redisReply **reply)
{
    /* Small calls (every script but a batch) stay on the stack. */
    enum { ON_STACK = 32 };
    const char *stack_all[ON_STACK];
    size_t stack_lengths[ON_STACK];
    const char **all = stack_all;
    size_t *all_lengths = stack_lengths;
    if (argc + 3 > ON_STACK) {
        all = malloc((size_t)(argc + 3) * sizeof *all);
        all_lengths = malloc((size_t)(argc + 3) * sizeof *all_lengths);
        if (all == NULL || all_lengths == NULL) {
            free(all);
            free(all_lengths);
            return CACHE_ERROR;
        }
    }
    char keys[16];
    snprintf(keys, sizeof keys, "%d", key_count);
    all[0] = command;
    all_lengths[0] = strlen(command);
    all[1] = body;
    all_lengths[1] = strlen(body);
    all[2] = keys;
    all_lengths[2] = strlen(keys);
    for (int i = 0; i < argc; i++) {
        all[i + 3] = argv[i];
        all_lengths[i + 3] = lengths[i];
    }
    cache_status status = cache_command_run(c, resend, argc + 3, all, all_lengths, reply);
    if (all != stack_all) {
        free(all);
        free(all_lengths);
    }
    return status;
}

cache_status cache_script_run(cache *c, cache_script *script, int key_count, int argc, const char **argv,
                              const size_t *lengths, redisReply **reply)
{
    *reply = NULL;
    if (argc < 0 || argc > CACHE_SCRIPT_MAX_ARGUMENTS || key_count > argc)
        return CACHE_ERROR;
    char sha[41];
    if (!copy_sha(script, sha)) {
        cache_status status = load(c, script, sha);
        if (status != CACHE_OK)
            return status;
    }
    cache_status status = evaluate(c, script->resend, "EVALSHA", sha, key_count, argc, argv, lengths, reply);
    if (status == CACHE_ERROR && cache_reply_classify(*reply) == CACHE_REPLY_NOSCRIPT) {
        freeReplyObject(*reply);
        *reply = NULL;
        /* EVAL caches the script again, so the next EVALSHA finds it. */
        status = evaluate(c, script->resend, "EVAL", script->source, key_count, argc, argv, lengths, reply);
    }
    return status;
}
