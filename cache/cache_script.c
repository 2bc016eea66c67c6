/* cache/cache_script.c: EVALSHA with a fallback to EVAL. */
#include "cache_script.h"

#include <stdio.h>
#include <string.h>

#define MAX_SCRIPT_ARGUMENTS 16

static bool copy_sha(cache_script *script, char *out)
{
    pthread_mutex_lock(&script->lock);
    bool known = script->known;
    if (known)
        memcpy(out, script->sha, sizeof script->sha);
    pthread_mutex_unlock(&script->lock);
    return known;
}

static cache_status load(cache *c, cache_script *script, char *sha)
{
    const char *argv[] = {"SCRIPT", "LOAD", script->source};
    size_t lengths[] = {6, 4, strlen(script->source)};
    redisReply *reply = NULL;
    cache_status status = cache_command_argv(c, 3, argv, lengths, &reply);
    if (status != CACHE_OK) {
        freeReplyObject(reply);
        return status;
    }
    bool valid = reply->type == REDIS_REPLY_STRING && reply->len == 40;
    if (valid) {
        memcpy(sha, reply->str, 40);
        sha[40] = '\0';
        pthread_mutex_lock(&script->lock);
        memcpy(script->sha, sha, sizeof script->sha);
        script->known = true;
        pthread_mutex_unlock(&script->lock);
    }
    freeReplyObject(reply);
    return valid ? CACHE_OK : CACHE_ERROR;
}

static cache_status evaluate(cache *c, const char *command, const char *body, int key_count, int argc,
                             const char **argv, const size_t *lengths, redisReply **reply)
{
    const char *all[MAX_SCRIPT_ARGUMENTS + 3];
    size_t all_lengths[MAX_SCRIPT_ARGUMENTS + 3];
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
    return cache_command_argv(c, argc + 3, all, all_lengths, reply);
}

cache_status cache_script_run(cache *c, cache_script *script, int key_count, int argc, const char **argv,
                              const size_t *lengths, redisReply **reply)
{
    *reply = NULL;
    if (argc < 0 || argc > MAX_SCRIPT_ARGUMENTS || key_count > argc)
        return CACHE_ERROR;
    char sha[41];
    if (!copy_sha(script, sha)) {
        cache_status status = load(c, script, sha);
        if (status != CACHE_OK)
            return status;
    }
    cache_status status = evaluate(c, "EVALSHA", sha, key_count, argc, argv, lengths, reply);
    if (status == CACHE_ERROR && *reply != NULL && strncmp((*reply)->str, "NOSCRIPT", 8) == 0) {
        freeReplyObject(*reply);
        *reply = NULL;
        /* EVAL caches the script again, so the next EVALSHA finds it. */
        status = evaluate(c, "EVAL", script->source, key_count, argc, argv, lengths, reply);
    }
    return status;
}
