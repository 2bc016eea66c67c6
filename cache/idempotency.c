/* cache/idempotency.c: idempotency keys in Redis. */
#include "idempotency.h"

#include <sodium.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cache_script.h"

#define MARKER_BYTES (1 + 2 * CACHE_IDEMPOTENCY_FINGERPRINT_BYTES) /* "R" or "D", then hex */

/* KEYS[1]: the key; ARGV[1]: the running marker this request set. */
static cache_script store_script = CACHE_SCRIPT(
    "if redis.call('GET', KEYS[1]) == ARGV[1] then\n"
    "  redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])\n"
    "  return 1\n"
    "end\n"
    "return 0\n");
/* Deleting our own claim twice deletes it once: resent after a lost reply. */
static cache_script release_script = CACHE_SCRIPT_RESENDABLE(
    "if redis.call('GET', KEYS[1]) == ARGV[1] then\n"
    "  return redis.call('DEL', KEYS[1])\n"
    "end\n"
    "return 0\n");

/* libsodium must be initialised before use; it is idempotent and thread
 * safe, and cheap after the first call. */
static int ready(void)
{
    return sodium_init() < 0 ? -1 : 0;
}

static int hash_field(crypto_generichash_state *state, const void *data, size_t length)
{
    unsigned char prefix[8];
    uint64_t value = length;
    for (int i = 0; i < 8; i++)
        prefix[i] = (unsigned char)(value >> (8 * i));
    if (crypto_generichash_update(state, prefix, sizeof prefix) != 0)
        return -1;
    return length == 0 ? 0 : crypto_generichash_update(state, data, length);
}

int cache_idempotency_key(const char *prefix, const char *authorization, const char *client_address,
                          const char *method, const char *path, const char *client_key,
                          char out[CACHE_IDEMPOTENCY_KEY_SIZE])
{
    out[0] = '\0';
    size_t prefix_length = strnlen(prefix, CACHE_KEY_PREFIX_MAX + 1);
    if (prefix_length > CACHE_KEY_PREFIX_MAX || ready() != 0)
        return -1;
    /* The scope: 'a' and the token's hash, or 'c' and the address. The tag
     * keeps an address from ever equalling a token's hash. */
    unsigned char scope[1 + 32];
    size_t scope_length;
    if (authorization != NULL && authorization[0] != '\0') {
        scope[0] = 'a';
        if (crypto_generichash(scope + 1, 32, (const unsigned char *)authorization, strlen(authorization), NULL, 0) != 0)
            return -1;
        scope_length = sizeof scope;
    } else {
        const char *address = client_address != NULL ? client_address : "";
        size_t length = strlen(address);
        if (length > sizeof scope - 1)
            length = sizeof scope - 1; /* an IPv6 address is at most 45 characters; never reached */
        scope[0] = 'c';
        memcpy(scope + 1, address, length);
        scope_length = 1 + length;
    }
    crypto_generichash_state state;
    unsigned char digest[32];
    if (crypto_generichash_init(&state, NULL, 0, sizeof digest) != 0 || hash_field(&state, scope, scope_length) != 0 ||
        hash_field(&state, method, strlen(method)) != 0 || hash_field(&state, path, strlen(path)) != 0 ||
        hash_field(&state, client_key, strlen(client_key)) != 0 ||
        crypto_generichash_final(&state, digest, sizeof digest) != 0)
        return -1;
    memcpy(out, prefix, prefix_length);
    memcpy(out + prefix_length, "idem:", 5);
    sodium_bin2hex(out + prefix_length + 5, CACHE_IDEMPOTENCY_KEY_SIZE - prefix_length - 5, digest, sizeof digest);
    return 0;
}

int cache_idempotency_fingerprint(const char *body, size_t length,
                                  unsigned char out[CACHE_IDEMPOTENCY_FINGERPRINT_BYTES])
{
    if (ready() != 0)
        return -1;
    return crypto_generichash(out, CACHE_IDEMPOTENCY_FINGERPRINT_BYTES, (const unsigned char *)(body != NULL ? body : ""),
                              length, NULL, 0) == 0
               ? 0
               : -1;
}

/* "R" or "D" and the fingerprint in hex, NUL-terminated. */
static void marker(char kind, const unsigned char fingerprint[CACHE_IDEMPOTENCY_FINGERPRINT_BYTES],
                   char out[MARKER_BYTES + 1])
{
    out[0] = kind;
    sodium_bin2hex(out + 1, MARKER_BYTES, fingerprint, CACHE_IDEMPOTENCY_FINGERPRINT_BYTES);
}

/* Reads a done value: marker, 3 status digits, header lines, an empty line,
 * the body. */
static int parse_done(const char *value, size_t length, cache_idempotency_response *out)
{
    const char *cursor = value + MARKER_BYTES;
    size_t left = length - MARKER_BYTES;
    if (left < 4 || cursor[0] < '1' || cursor[0] > '5' || cursor[1] < '0' || cursor[1] > '9' || cursor[2] < '0' ||
        cursor[2] > '9')
        return -1;
    int status = (cursor[0] - '0') * 100 + (cursor[1] - '0') * 10 + (cursor[2] - '0');
    cursor += 3;
    left -= 3;
    /* The header block ends at the first empty line. */
    size_t headers_length = 0;
    for (;;) {
        const char *newline = memchr(cursor + headers_length, '\n', left - headers_length);
        if (newline == NULL)
            return -1;
        size_t line = (size_t)(newline - (cursor + headers_length));
        if (line == 0)
            break;
        headers_length += line + 1;
    }
    size_t body_length = left - headers_length - 1;
    out->headers = malloc(headers_length + 1);
    out->body = malloc(body_length + 1);
    if (out->headers == NULL || out->body == NULL) {
        cache_idempotency_response_free(out);
        return -1;
    }
    memcpy(out->headers, cursor, headers_length);
    out->headers[headers_length] = '\0';
    memcpy(out->body, cursor + headers_length + 1, body_length);
    out->body[body_length] = '\0';
    out->body_length = body_length;
    out->status = status;
    return 0;
}

/* Whole "\n"-terminated lines, none of them empty, no CR or NUL. */
static bool valid_header_block(const char *headers, size_t length)
{
    if (length == 0)
        return true;
    if (headers[length - 1] != '\n' || headers[0] == '\n' || memchr(headers, '\r', length) != NULL ||
        memchr(headers, '\0', length) != NULL)
        return false;
    for (size_t i = 0; i + 1 < length; i++)
        if (headers[i] == '\n' && headers[i + 1] == '\n')
            return false;
    return true;
}

cache_status cache_idempotency_claim(cache *c, const char *key,
                                     const unsigned char fingerprint[CACHE_IDEMPOTENCY_FINGERPRINT_BYTES],
                                     long long running_ttl_ms, cache_idempotency_state *state,
                                     cache_idempotency_response *stored)
{
    memset(stored, 0, sizeof *stored);
    *state = CACHE_IDEMPOTENCY_RUNNING;
    char running[MARKER_BYTES + 1];
    marker('R', fingerprint, running);
    char ttl[32];
    snprintf(ttl, sizeof ttl, "%lld", running_ttl_ms > 0 ? running_ttl_ms : 1);
    /* NX and GET together: one round trip either claims the key or returns
     * what holds it. */
    const char *argv[] = {"SET", key, running, "NX", "GET", "PX", ttl};
    size_t lengths[] = {3, strlen(key), MARKER_BYTES, 2, 3, 2, strlen(ttl)};
    redisReply *reply = NULL;
    cache_status status = cache_command_argv(c, 7, argv, lengths, &reply);
    if (status != CACHE_OK) {
        freeReplyObject(reply);
        return status;
    }
    if (reply->type == REDIS_REPLY_NIL) {
        *state = CACHE_IDEMPOTENCY_CLAIMED;
        freeReplyObject(reply);
        return CACHE_OK;
    }
    if (reply->type != REDIS_REPLY_STRING || reply->len < MARKER_BYTES ||
        (reply->str[0] != 'R' && reply->str[0] != 'D')) {
        freeReplyObject(reply);
        return CACHE_ERROR; /* not ours: someone wrote the key by hand */
    }
    if (memcmp(reply->str + 1, running + 1, MARKER_BYTES - 1) != 0) {
        *state = CACHE_IDEMPOTENCY_MISMATCH;
    } else if (reply->str[0] == 'R') {
        *state = CACHE_IDEMPOTENCY_RUNNING;
    } else if (parse_done(reply->str, reply->len, stored) == 0) {
        *state = CACHE_IDEMPOTENCY_DONE;
    } else {
        status = CACHE_ERROR;
    }
    freeReplyObject(reply);
    return status;
}

cache_status cache_idempotency_store(cache *c, const char *key,
                                     const unsigned char fingerprint[CACHE_IDEMPOTENCY_FINGERPRINT_BYTES],
                                     const cache_idempotency_response *response, long long ttl_ms,
                                     bool *stored)
{
    *stored = false;
    const char *headers = response->headers != NULL ? response->headers : "";
    size_t headers_length = strlen(headers);
    if (response->status < 100 || response->status > 599 || !valid_header_block(headers, headers_length))
        return CACHE_ERROR;
    size_t value_length = MARKER_BYTES + 3 + headers_length + 1 + response->body_length;
    char *value = malloc(value_length + 1);
    if (value == NULL)
        return CACHE_ERROR;
    char running[MARKER_BYTES + 1];
    marker('R', fingerprint, running);
    marker('D', fingerprint, value);
    snprintf(value + MARKER_BYTES, 4, "%03d", response->status);
    memcpy(value + MARKER_BYTES + 3, headers, headers_length);
    value[MARKER_BYTES + 3 + headers_length] = '\n';
    if (response->body_length > 0)
        memcpy(value + MARKER_BYTES + 4 + headers_length, response->body, response->body_length);
    char ttl[32];
    snprintf(ttl, sizeof ttl, "%lld", ttl_ms > 0 ? ttl_ms : 1);
    const char *argv[] = {key, running, value, ttl};
    size_t lengths[] = {strlen(key), MARKER_BYTES, value_length, strlen(ttl)};
    redisReply *reply = NULL;
    cache_status status = cache_script_run(c, &store_script, 1, 4, argv, lengths, &reply);
    free(value);
    if (status == CACHE_OK) {
        if (reply->type == REDIS_REPLY_INTEGER)
            *stored = reply->integer == 1;
        else
            status = CACHE_ERROR;
    }
    freeReplyObject(reply);
    return status;
}

cache_status cache_idempotency_release(cache *c, const char *key,
                                       const unsigned char fingerprint[CACHE_IDEMPOTENCY_FINGERPRINT_BYTES])
{
    char running[MARKER_BYTES + 1];
    marker('R', fingerprint, running);
    const char *argv[] = {key, running};
    size_t lengths[] = {strlen(key), MARKER_BYTES};
    redisReply *reply = NULL;
    cache_status status = cache_script_run(c, &release_script, 1, 2, argv, lengths, &reply);
    if (status == CACHE_OK && reply->type != REDIS_REPLY_INTEGER)
        status = CACHE_ERROR;
    freeReplyObject(reply);
    return status;
}

void cache_idempotency_response_free(cache_idempotency_response *response)
{
    free(response->headers);
    free(response->body);
    response->headers = NULL;
    response->body = NULL;
    response->body_length = 0;
}
