/* cache/l1.c: sharded LRU with TTLs and family versions. */
#include <shoal/l1.h>

#include "cache_internal.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef struct entry {
    struct entry *hash_next;
    struct entry *newer, *older; /* the shard's LRU list */
    uint64_t hash;
    uint64_t expires_at;
    uint64_t version;
    size_t family_length, key_length, value_length;
    size_t charge; /* what the entry counts against max_bytes */
    char data[];   /* family '\0' key '\0' value */
} entry;

typedef struct shard {
    pthread_mutex_t lock;
    entry **buckets;
    size_t bucket_mask;
    entry *newest, *oldest;
    size_t count, bytes;
    size_t max_entries, max_bytes; /* this shard's share */
    uint64_t hits, misses, stores, evictions, expirations, drops;
} shard;

typedef struct family {
    char name[CACHE_L1_MAX_FAMILY_LENGTH + 1];
    atomic_uint_fast64_t version; /* 0: unknown */
} family;

struct cache_l1 {
    bool enabled;
    int ttl_ms;
    uint64_t keep_ms; /* past ttl_ms, for cache_l1_get_stale only */
    cache_l1_clock_fn clock;
    void *clock_data;
    size_t shard_mask;
    shard *shards;

    /* Names are written once, before count publishes them, and never
     * change: readers scan without a lock. */
    family families[CACHE_L1_MAX_FAMILIES];
    atomic_size_t family_count;
    pthread_mutex_t family_lock; /* taken only to add a family */

    atomic_uint_fast64_t sequence;
    atomic_bool suspended;
    atomic_uint_fast64_t flushes;
};

static uint64_t monotonic_ms(void *unused)
{
    (void)unused;
    return cache_monotonic_ms();
}

static uint64_t hash_of(const char *family, size_t family_length, const char *key, size_t key_length)
{
    uint64_t h = 1469598103934665603ULL; /* FNV-1a */
    for (size_t i = 0; i < family_length; i++)
        h = (h ^ (unsigned char)family[i]) * 1099511628211ULL;
    h = (h ^ 0xffu) * 1099511628211ULL; /* keeps ("ab","c") apart from ("a","bc") */
    for (size_t i = 0; i < key_length; i++)
        h = (h ^ (unsigned char)key[i]) * 1099511628211ULL;
    /* FNV's last multiply barely reaches the top bits, which pick the
     * shard: keys differing in their last character would share one.
     * MurmurHash3's finaliser mixes every bit into every other. */
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdULL;
    h ^= h >> 33;
    h *= 0xc4ceb9fe1a85ec53ULL;
    h ^= h >> 33;
    return h;
}

static size_t round_up_pow2(size_t n)
{
    size_t p = 1;
    while (p < n)
        p <<= 1;
    return p;
}

cache_l1 *cache_l1_new(const cache_l1_config *config)
{
    cache_l1 *l1 = calloc(1, sizeof *l1);
    if (l1 == NULL)
        return NULL;
    l1->enabled = config->max_entries > 0;
    l1->ttl_ms = config->ttl_ms > 0 ? config->ttl_ms : 1000;
    l1->keep_ms = config->stale_if_error_ms > 0 ? (uint64_t)config->stale_if_error_ms : 0;
    l1->clock = config->clock != NULL ? config->clock : monotonic_ms;
    l1->clock_data = config->clock_data;
    atomic_init(&l1->family_count, 0);
    atomic_init(&l1->sequence, 1);
    atomic_init(&l1->suspended, false);
    atomic_init(&l1->flushes, 0);
    for (size_t i = 0; i < CACHE_L1_MAX_FAMILIES; i++)
        atomic_init(&l1->families[i].version, 0);
    pthread_mutex_init(&l1->family_lock, NULL);
    if (!l1->enabled)
        return l1;

    size_t shards = round_up_pow2(config->shards > 0 ? (size_t)config->shards : 16);
    /* A shard must hold at least one entry, or the bound would be a lie. */
    while (shards > 1 && shards > config->max_entries)
        shards >>= 1;
    l1->shard_mask = shards - 1;
    l1->shards = calloc(shards, sizeof *l1->shards);
    if (l1->shards == NULL) {
        cache_l1_free(l1);
        return NULL;
    }
    size_t per_shard = (config->max_entries + shards - 1) / shards;
    size_t buckets = round_up_pow2(per_shard < 8 ? 8 : per_shard);
    for (size_t i = 0; i < shards; i++) {
        shard *s = &l1->shards[i];
        pthread_mutex_init(&s->lock, NULL);
        s->max_entries = per_shard;
        s->max_bytes = config->max_bytes > 0 ? (config->max_bytes + shards - 1) / shards : 0;
        s->bucket_mask = buckets - 1;
        s->buckets = calloc(buckets, sizeof *s->buckets);
        if (s->buckets == NULL) {
            l1->shard_mask = i; /* free what exists: shards 0..i */
            cache_l1_free(l1);
            return NULL;
        }
    }
    return l1;
}

static void clear_shard(shard *s)
{
    for (entry *e = s->newest; e != NULL;) {
        entry *next = e->older;
        free(e);
        e = next;
    }
    memset(s->buckets, 0, (s->bucket_mask + 1) * sizeof *s->buckets);
    s->newest = s->oldest = NULL;
    s->count = s->bytes = 0;
}

void cache_l1_free(cache_l1 *l1)
{
    if (l1 == NULL)
        return;
    if (l1->shards != NULL) {
        for (size_t i = 0; i <= l1->shard_mask; i++) {
            shard *s = &l1->shards[i];
            if (s->buckets == NULL)
                continue;
            clear_shard(s);
            free(s->buckets);
            pthread_mutex_destroy(&s->lock);
        }
        free(l1->shards);
    }
    pthread_mutex_destroy(&l1->family_lock);
    free(l1);
}

bool cache_l1_enabled(const cache_l1 *l1)
{
    return l1 != NULL && l1->enabled;
}

/* ---- families ---------------------------------------------------------------- */

bool cache_l1_family_valid(const char *name)
{
    size_t length = name != NULL ? strlen(name) : 0;
    if (length == 0 || length > CACHE_L1_MAX_FAMILY_LENGTH)
        return false;
    for (size_t i = 0; i < length; i++) {
        char c = name[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
              c == '.'))
            return false;
    }
    return true;
}

static family *find_family(cache_l1 *l1, const char *name, bool create)
{
    size_t length = strlen(name);
    size_t count = atomic_load_explicit(&l1->family_count, memory_order_acquire);
    for (size_t i = 0; i < count; i++)
        if (strcmp(l1->families[i].name, name) == 0)
            return &l1->families[i];
    if (!create || !cache_l1_family_valid(name))
        return NULL;
    pthread_mutex_lock(&l1->family_lock);
    family *found = NULL;
    count = atomic_load_explicit(&l1->family_count, memory_order_relaxed);
    for (size_t i = 0; i < count && found == NULL; i++)
        if (strcmp(l1->families[i].name, name) == 0)
            found = &l1->families[i];
    if (found == NULL && count < CACHE_L1_MAX_FAMILIES) {
        found = &l1->families[count];
        memcpy(found->name, name, length + 1);
        atomic_store_explicit(&l1->family_count, count + 1, memory_order_release);
    }
    pthread_mutex_unlock(&l1->family_lock);
    return found;
}

uint64_t cache_l1_family_version(cache_l1 *l1, const char *name)
{
    if (l1 == NULL || name == NULL)
        return 0;
    family *f = find_family(l1, name, false);
    return f != NULL ? atomic_load(&f->version) : 0;
}

void cache_l1_learn_version(cache_l1 *l1, const char *name, uint64_t version)
{
    if (l1 == NULL || name == NULL || version == 0)
        return;
    family *f = find_family(l1, name, true);
    if (f == NULL)
        return;
    uint64_t known = atomic_load(&f->version);
    while (known < version && !atomic_compare_exchange_weak(&f->version, &known, version)) {
    }
}

/* ---- entries ------------------------------------------------------------------ */

static shard *shard_of(cache_l1 *l1, uint64_t hash)
{
    return &l1->shards[(hash >> 48) & l1->shard_mask];
}

static const char *key_of(const entry *e)
{
    return e->data + e->family_length + 1;
}

static entry **slot_of(shard *s, uint64_t hash, const char *family, size_t family_length, const char *key,
                       size_t key_length)
{
    entry **slot = &s->buckets[hash & s->bucket_mask];
    for (; *slot != NULL; slot = &(*slot)->hash_next) {
        entry *e = *slot;
        if (e->hash == hash && e->family_length == family_length && e->key_length == key_length &&
            memcmp(e->data, family, family_length) == 0 && memcmp(key_of(e), key, key_length) == 0)
            return slot;
    }
    return slot;
}

static void unlink_lru(shard *s, entry *e)
{
    if (e->newer != NULL)
        e->newer->older = e->older;
    else
        s->newest = e->older;
    if (e->older != NULL)
        e->older->newer = e->newer;
    else
        s->oldest = e->newer;
    e->newer = e->older = NULL;
}

static void push_newest(shard *s, entry *e)
{
    e->older = s->newest;
    e->newer = NULL;
    if (s->newest != NULL)
        s->newest->newer = e;
    s->newest = e;
    if (s->oldest == NULL)
        s->oldest = e;
}

/* Removes the entry *slot points at. */
static void remove_at(shard *s, entry **slot)
{
    entry *e = *slot;
    *slot = e->hash_next;
    unlink_lru(s, e);
    s->count--;
    s->bytes -= e->charge;
    free(e);
}

static void remove_entry(shard *s, entry *e)
{
    entry **slot = &s->buckets[e->hash & s->bucket_mask];
    while (*slot != e)
        slot = &(*slot)->hash_next;
    remove_at(s, slot);
}

/* An entry is served while now < expires_at + max_past_ms: 0 for a fresh
 * lookup; entries past keep_ms are reclaimed on the way. */
static bool lookup(cache_l1 *l1, const char *family_name, const char *key, uint64_t max_past_ms, bool counted,
                   cache_l1_alloc_fn alloc, void *alloc_data, void **value, size_t *length)
{
    *value = NULL;
    *length = 0;
    if (!cache_l1_enabled(l1) || atomic_load_explicit(&l1->suspended, memory_order_relaxed))
        return false;
    family *f = find_family(l1, family_name, false);
    uint64_t current = f != NULL ? atomic_load(&f->version) : 0;
    if (current == 0)
        return false; /* without a known version nothing here can be trusted */
    size_t family_length = strlen(family_name), key_length = strlen(key);
    uint64_t hash = hash_of(family_name, family_length, key, key_length);
    shard *s = shard_of(l1, hash);
    uint64_t now = l1->clock(l1->clock_data);
    bool hit = false;
    pthread_mutex_lock(&s->lock);
    entry **slot = slot_of(s, hash, family_name, family_length, key, key_length);
    entry *e = *slot;
    if (e != NULL && now >= e->expires_at + l1->keep_ms) {
        s->expirations++;
        remove_at(s, slot);
        e = NULL;
    }
    if (e != NULL && e->version == current && now < e->expires_at + max_past_ms) {
        void *copy = alloc(alloc_data, e->value_length > 0 ? e->value_length : 1);
        if (copy != NULL) {
            memcpy(copy, e->data + family_length + 1 + key_length + 1, e->value_length);
            *value = copy;
            *length = e->value_length;
            unlink_lru(s, e);
            push_newest(s, e);
            hit = true;
        }
    }
    if (counted && hit)
        s->hits++;
    else if (counted)
        s->misses++;
    pthread_mutex_unlock(&s->lock);
    return hit;
}

bool cache_l1_get(cache_l1 *l1, const char *family_name, const char *key, cache_l1_alloc_fn alloc,
                  void *alloc_data, void **value, size_t *length)
{
    return lookup(l1, family_name, key, 0, true, alloc, alloc_data, value, length);
}

bool cache_l1_get_stale(cache_l1 *l1, const char *family_name, const char *key, int max_past_ms,
                        cache_l1_alloc_fn alloc, void *alloc_data, void **value, size_t *length)
{
    uint64_t max_past = max_past_ms > 0 ? (uint64_t)max_past_ms : 0;
    if (l1 != NULL && max_past > l1->keep_ms)
        max_past = l1->keep_ms;
    return lookup(l1, family_name, key, max_past, false, alloc, alloc_data, value, length);
}

uint64_t cache_l1_sequence(const cache_l1 *l1)
{
    return l1 != NULL ? atomic_load(&((cache_l1 *)l1)->sequence) : 0;
}

bool cache_l1_put(cache_l1 *l1, const char *family_name, uint64_t version, const char *key,
                  const void *value, size_t length, uint64_t sequence)
{
    if (!cache_l1_enabled(l1) || version == 0 || atomic_load(&l1->suspended))
        return false;
    family *f = find_family(l1, family_name, true);
    if (f == NULL)
        return false;
    size_t family_length = strlen(family_name), key_length = strlen(key);
    size_t charge = sizeof(entry) + family_length + key_length + 2 + length;
    uint64_t hash = hash_of(family_name, family_length, key, key_length);
    shard *s = shard_of(l1, hash);
    if (s->max_bytes > 0 && charge > s->max_bytes)
        return false;
    entry *e = malloc(charge);
    if (e == NULL)
        return false;
    memset(e, 0, sizeof *e);
    e->hash = hash;
    e->version = version;
    e->family_length = family_length;
    e->key_length = key_length;
    e->value_length = length;
    e->charge = charge;
    e->expires_at = l1->clock(l1->clock_data) + (uint64_t)l1->ttl_ms;
    memcpy(e->data, family_name, family_length + 1);
    memcpy(e->data + family_length + 1, key, key_length + 1);
    if (length > 0)
        memcpy(e->data + family_length + key_length + 2, value, length);

    pthread_mutex_lock(&s->lock);
    /* Checked under the shard lock: cache_l1_drop bumps the sequence under
     * the same lock, so a drop either sees this entry or refuses it here. */
    if (atomic_load(&l1->sequence) != sequence || version < atomic_load(&f->version)) {
        pthread_mutex_unlock(&s->lock);
        free(e);
        return false;
    }
    cache_l1_learn_version(l1, family_name, version);
    entry **slot = slot_of(s, hash, family_name, family_length, key, key_length);
    if (*slot != NULL)
        remove_at(s, slot); /* slot now points at what followed it, or NULL */
    e->hash_next = s->buckets[hash & s->bucket_mask];
    s->buckets[hash & s->bucket_mask] = e;
    push_newest(s, e);
    s->count++;
    s->bytes += charge;
    s->stores++;
    while (s->oldest != NULL && s->oldest != e &&
           (s->count > s->max_entries || (s->max_bytes > 0 && s->bytes > s->max_bytes))) {
        s->evictions++;
        remove_entry(s, s->oldest);
    }
    pthread_mutex_unlock(&s->lock);
    return true;
}

void cache_l1_drop(cache_l1 *l1, const char *family_name, const char *key)
{
    if (!cache_l1_enabled(l1))
        return;
    size_t family_length = strlen(family_name), key_length = strlen(key);
    uint64_t hash = hash_of(family_name, family_length, key, key_length);
    shard *s = shard_of(l1, hash);
    pthread_mutex_lock(&s->lock);
    atomic_fetch_add(&l1->sequence, 1);
    entry **slot = slot_of(s, hash, family_name, family_length, key, key_length);
    if (*slot != NULL) {
        s->drops++;
        remove_at(s, slot);
    }
    pthread_mutex_unlock(&s->lock);
}

void cache_l1_flush(cache_l1 *l1)
{
    if (l1 == NULL)
        return;
    atomic_fetch_add(&l1->flushes, 1);
    /* Versions first: from here on nothing in the L1 is visible, then the
     * memory goes shard by shard. */
    size_t count = atomic_load(&l1->family_count);
    for (size_t i = 0; i < count; i++)
        atomic_store(&l1->families[i].version, 0);
    if (!l1->enabled)
        return;
    for (size_t i = 0; i <= l1->shard_mask; i++) {
        shard *s = &l1->shards[i];
        pthread_mutex_lock(&s->lock);
        atomic_fetch_add(&l1->sequence, 1);
        clear_shard(s);
        pthread_mutex_unlock(&s->lock);
    }
}

void cache_l1_suspend(cache_l1 *l1, bool suspended)
{
    if (l1 != NULL)
        atomic_store(&l1->suspended, suspended);
}

void cache_l1_get_stats(cache_l1 *l1, cache_l1_stats *out)
{
    memset(out, 0, sizeof *out);
    if (l1 == NULL)
        return;
    out->flushes = atomic_load(&l1->flushes);
    if (!l1->enabled)
        return;
    for (size_t i = 0; i <= l1->shard_mask; i++) {
        shard *s = &l1->shards[i];
        pthread_mutex_lock(&s->lock);
        out->hits += s->hits;
        out->misses += s->misses;
        out->stores += s->stores;
        out->evictions += s->evictions;
        out->expirations += s->expirations;
        out->drops += s->drops;
        out->entries += s->count;
        out->bytes += s->bytes;
        pthread_mutex_unlock(&s->lock);
    }
}
