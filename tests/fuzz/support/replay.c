/* tests/fuzz/support/replay.c: runs a fuzz target's function over saved
 * inputs without libFuzzer, so that the ordinary builds (gcc Release, the
 * ASan+UBSan build) replay every seed and every crash ever found as a ctest
 * test.
 *
 *   replay_<target> PATH...     each PATH a file, or a folder of files
 *
 * A target that misbehaves aborts (or a sanitizer stops it), which fails the
 * test; the last "replay:" line names the input. */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv) __attribute__((weak));

static int by_name(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static int replay_file(const char *path)
{
    FILE *file = fopen(path, "rb");
    if (file == NULL) {
        perror(path);
        return -1;
    }
    size_t capacity = 4096, size = 0;
    uint8_t *data = malloc(capacity);
    size_t got;
    while (data != NULL && (got = fread(data + size, 1, capacity - size, file)) > 0) {
        size += got;
        if (size == capacity) {
            capacity *= 2;
            uint8_t *grown = realloc(data, capacity);
            if (grown == NULL)
                free(data);
            data = grown;
        }
    }
    fclose(file);
    if (data == NULL) {
        fprintf(stderr, "replay: out of memory reading %s\n", path);
        return -1;
    }
    fprintf(stderr, "replay: %s (%zu bytes)\n", path, size);
    /* An exact copy, so that reading past the input is caught as libFuzzer
     * would catch it. */
    uint8_t *exact = malloc(size > 0 ? size : 1);
    if (exact == NULL) {
        free(data);
        return -1;
    }
    memcpy(exact, data, size);
    free(data);
    LLVMFuzzerTestOneInput(exact, size);
    free(exact);
    return 0;
}

static int replay_path(const char *path, int *count)
{
    struct stat info;
    if (stat(path, &info) != 0) {
        /* git keeps no empty folder: a target without a crash yet has no
         * regression folder. main fails when nothing at all was read. */
        fprintf(stderr, "replay: %s is not there\n", path);
        return 0;
    }
    if (!S_ISDIR(info.st_mode)) {
        (*count)++;
        return replay_file(path);
    }
    DIR *dir = opendir(path);
    if (dir == NULL) {
        perror(path);
        return -1;
    }
    char **names = NULL;
    size_t name_count = 0;
    struct dirent *entry;
    while ((entry = readdir(dir)) != NULL) {
        if (entry->d_name[0] == '.')
            continue;
        char **grown = realloc(names, (name_count + 1) * sizeof *names);
        if (grown == NULL)
            break;
        names = grown;
        names[name_count] = malloc(strlen(path) + strlen(entry->d_name) + 2);
        if (names[name_count] == NULL)
            break;
        sprintf(names[name_count], "%s/%s", path, entry->d_name);
        name_count++;
    }
    closedir(dir);
    /* In name order, so that a run is reproducible. */
    qsort(names, name_count, sizeof *names, by_name);
    int rc = 0;
    for (size_t i = 0; i < name_count; i++) {
        if (rc == 0) {
            (*count)++;
            rc = replay_file(names[i]);
        }
        free(names[i]);
    }
    free(names);
    return rc;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: %s FILE_OR_FOLDER...\n", argv[0]);
        return 2;
    }
    if (LLVMFuzzerInitialize != NULL)
        LLVMFuzzerInitialize(&argc, &argv);
    int count = 0;
    for (int i = 1; i < argc; i++)
        if (replay_path(argv[i], &count) != 0)
            return 1;
    if (count == 0) {
        fprintf(stderr, "replay: no inputs at all\n");
        return 1;
    }
    fprintf(stderr, "replay: %d inputs, no failure\n", count);
    return 0;
}
