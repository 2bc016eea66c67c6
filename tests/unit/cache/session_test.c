/* tests/unit/cache/session_test.c: token format, decoding and the derived
 * key and verifier of cache/session.c; no Redis. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "session.h"
#include "session_internal.h"

/* 32 bytes 0x00..0x1f, and their token (checked against base64url by hand:
 * "AAECAwQF..." is the standard encoding of 00 01 02 03 04 05). */
static void fill_counting(unsigned char raw[CACHE_SESSION_RAW_BYTES])
{
    for (int i = 0; i < CACHE_SESSION_RAW_BYTES; i++)
        raw[i] = (unsigned char)i;
}
static const char counting_token[] = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8";

static void a_token_is_43_base64url_characters_and_round_trips(void **state)
{
    (void)state;
    unsigned char raw[CACHE_SESSION_RAW_BYTES];
    fill_counting(raw);
    char token[CACHE_SESSION_TOKEN_SIZE];
    cache_session_token_encode(raw, token);
    assert_int_equal(strlen(token), CACHE_SESSION_TOKEN_LENGTH);
    assert_string_equal(token, counting_token);

    unsigned char back[CACHE_SESSION_RAW_BYTES];
    assert_int_equal(cache_session_token_decode(token, back), 0);
    assert_memory_equal(raw, back, sizeof raw);
    assert_true(cache_session_token_well_formed(token));

    /* The URL-safe alphabet: bytes that give '+' and '/' in standard base64. */
    memset(raw, 0xfb, sizeof raw);
    cache_session_token_encode(raw, token);
    assert_null(strpbrk(token, "+/="));
    assert_non_null(strpbrk(token, "-_"));
    assert_true(cache_session_token_well_formed(token));
}

static void malformed_tokens_are_refused(void **state)
{
    (void)state;
    char text[128];
    const char *bad[] = {
        "",
        "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh",   /* 42 characters */
        "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8A", /* 44 */
        "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=", /* padding */
        "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh+",  /* standard alphabet */
        "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdH/8",
        "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh ",
        "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh\n",
        "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh9", /* low bits set: not canonical */
        "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh_",
    };
    unsigned char raw[CACHE_SESSION_RAW_BYTES];
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        if (cache_session_token_decode(bad[i], raw) == 0 || cache_session_token_well_formed(bad[i]))
            fail_msg("accepted malformed token %zu", i);
    }
    assert_int_equal(cache_session_token_decode(NULL, raw), -1);
    /* A NUL inside: the text ends there, so it is too short. */
    memcpy(text, counting_token, sizeof counting_token);
    text[20] = '\0';
    assert_false(cache_session_token_well_formed(text));
    /* A very long text is refused without reading all of it. */
    memset(text, 'A', sizeof text - 1);
    text[sizeof text - 1] = '\0';
    assert_false(cache_session_token_well_formed(text));
}

static void the_key_and_verifier_are_the_two_halves_of_the_hash(void **state)
{
    (void)state;
    unsigned char raw[CACHE_SESSION_RAW_BYTES];
    fill_counting(raw);
    char key[CACHE_SESSION_KEY_SIZE], verifier[CACHE_SESSION_VERIFIER_SIZE];
    assert_int_equal(cache_session_derive("", raw, key, verifier), 0);
    /* BLAKE2b-256 of 00..1f, as Python's hashlib.blake2b(bytes(range(32)),
     * digest_size=32) gives it. */
    assert_string_equal(key, "session:cb2f5160fc1f7e05a55ef49d340b48da");
    assert_string_equal(verifier, "2e5a78099d53393351cd579dd42503d6");

    /* Deterministic, and one bit of the token changes both halves. */
    char key2[CACHE_SESSION_KEY_SIZE], verifier2[CACHE_SESSION_VERIFIER_SIZE];
    assert_int_equal(cache_session_derive("", raw, key2, verifier2), 0);
    assert_string_equal(key, key2);
    raw[31] ^= 1;
    assert_int_equal(cache_session_derive("", raw, key2, verifier2), 0);
    assert_string_not_equal(key, key2);
    assert_string_not_equal(verifier, verifier2);
    /* Neither half contains the token. */
    assert_null(strstr(key, counting_token));
}

static void verifiers_match_only_when_equal_in_length_and_content(void **state)
{
    (void)state;
    const char expected[CACHE_SESSION_VERIFIER_SIZE] = "2e5a78099d53393351cd579dd42503d6";
    assert_true(cache_session_verifier_matches(expected, 32, expected));
    assert_false(cache_session_verifier_matches("2e5a78099d53393351cd579dd42503d7", 32, expected));
    assert_false(cache_session_verifier_matches("3e5a78099d53393351cd579dd42503d6", 32, expected));
    assert_false(cache_session_verifier_matches(expected, 31, expected));
    assert_false(cache_session_verifier_matches("", 0, expected));
    assert_false(cache_session_verifier_matches(NULL, 32, expected));
}

static void malformed_tokens_never_reach_redis(void **state)
{
    (void)state;
    /* No connection at all: a malformed token must be INVALID before any
     * attempt to reach Redis (which would say UNAVAILABLE). */
    cache_session_info info;
    assert_int_equal(cache_session_lookup(NULL, "not a token", 60, &info), CACHE_SESSION_INVALID);
    assert_int_equal(cache_session_revoke(NULL, "not a token"), CACHE_SESSION_INVALID);
    assert_int_equal(cache_session_lookup(NULL, counting_token, 60, &info), CACHE_SESSION_UNAVAILABLE);
}

int main(void)
{
    assert_int_equal(cache_session_init(), 0);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(a_token_is_43_base64url_characters_and_round_trips),
        cmocka_unit_test(malformed_tokens_are_refused),
        cmocka_unit_test(the_key_and_verifier_are_the_two_halves_of_the_hash),
        cmocka_unit_test(verifiers_match_only_when_equal_in_length_and_content),
        cmocka_unit_test(malformed_tokens_never_reach_redis),
    };
    return cmocka_run_group_tests_name("unit.cache.session", tests, NULL, NULL);
}
