/* A sensor gateway: reads one reading per line (e.g. "sensor-17,21.5")
 * from a file or stdin and produces each line as a record, partitioned by
 * the text before the first comma, with delivery reports.
 *
 *   gateway [--endpoint URL] [--stream NAME] [--region R]
 *           [--properties FILE] [--set Name=Value]... [FILE]
 *
 * Prints "delivered N failed M" at the end; each failure goes to stderr.
 * Credentials come from --set AwsAccessKeyId=... or the AWS default chain.
 * Exit status 0 when every line was delivered. */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kpl.h"

static unsigned long g_delivered, g_failed;

/* Runs on a kpl library thread: count, report, return quickly. */
static void on_delivery(const kpl_result *r, void *user_data) {
    unsigned long line = (unsigned long)(size_t)user_data;
    if (r->success) {
        __atomic_fetch_add(&g_delivered, 1, __ATOMIC_RELAXED);
        return;
    }
    __atomic_fetch_add(&g_failed, 1, __ATOMIC_RELAXED);
    fprintf(stderr, "line %lu (key %s) failed: %s: %s (%zu attempt(s))\n", line,
            r->partition_key ? r->partition_key : "?", kpl_error_name((int32_t)r->error),
            r->error_message, r->attempt_count);
}

static int check(kpl_error e, const char *what) {
    if (e != KPL_OK) {
        fprintf(stderr, "gateway: %s: %s: %s\n", what, kpl_error_name((int32_t)e), kpl_last_error_message());
        return 1;
    }
    return 0;
}

int main(int argc, char **argv) {
    kpl_config *cfg = kpl_config_new();
    const char *path = NULL;
    int bad = 0;
    for (int i = 1; i < argc && !bad; i++) {
        const char *a = argv[i];
        const char *next = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "--endpoint") == 0 && next) {
            bad = check(kpl_config_set(cfg, "KinesisEndpoint", next), a), i++;
        } else if (strcmp(a, "--stream") == 0 && next) {
            bad = check(kpl_config_set(cfg, "StreamName", next), a), i++;
        } else if (strcmp(a, "--region") == 0 && next) {
            bad = check(kpl_config_set(cfg, "Region", next), a), i++;
        } else if (strcmp(a, "--properties") == 0 && next) {
            bad = check(kpl_config_load_properties(cfg, next), a), i++;
        } else if (strcmp(a, "--set") == 0 && next) {
            char *setting = strdup(next);
            char *eq = strchr(setting, '=');
            if (eq == NULL) {
                fprintf(stderr, "gateway: --set wants Name=Value\n");
                bad = 1;
            } else {
                *eq = '\0';
                bad = check(kpl_config_set(cfg, setting, eq + 1), setting);
            }
            free(setting);
            i++;
        } else if (a[0] == '-' && a[1] != '\0') {
            fprintf(stderr, "usage: gateway [--endpoint URL] [--stream NAME] [--region R] "
                            "[--properties FILE] [--set Name=Value]... [FILE]\n");
            bad = 1;
        } else {
            path = a;
        }
    }
    kpl_producer *producer = NULL;
    if (!bad) bad = check(kpl_producer_new(cfg, &producer), "creating the producer");
    kpl_config_free(cfg);
    if (bad) return 2;

    FILE *in = path && strcmp(path, "-") != 0 ? fopen(path, "r") : stdin;
    if (in == NULL) {
        perror(path);
        kpl_producer_free(producer, 0);
        return 2;
    }
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    unsigned long lines = 0, refused = 0;
    while ((len = getline(&line, &cap, in)) > 0) {
        while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r')) line[--len] = '\0';
        if (len == 0) continue;
        lines++;
        /* The partition key: the sensor id before the first comma. */
        char key[257];
        size_t key_len = strcspn(line, ",");
        if (key_len > 256) key_len = 256;
        memcpy(key, line, key_len);
        key[key_len] = '\0';
        /* Blocks while the buffer is full (no limit); data is copied. */
        kpl_error e = kpl_producer_put(producer, NULL, key, NULL, (const uint8_t *)line, (size_t)len, 0,
                                       on_delivery, (void *)(size_t)lines);
        if (e != KPL_OK) {
            refused++;
            fprintf(stderr, "line %lu refused: %s: %s\n", lines, kpl_error_name((int32_t)e),
                    kpl_last_error_message());
        }
    }
    free(line);
    if (in != stdin) fclose(in);
    /* Flush and stop: every delivery report has arrived when this returns. */
    check(kpl_producer_free(producer, 30000), "shutting down");
    unsigned long delivered = __atomic_load_n(&g_delivered, __ATOMIC_RELAXED);
    unsigned long failed = __atomic_load_n(&g_failed, __ATOMIC_RELAXED) + refused;
    printf("lines %lu delivered %lu failed %lu\n", lines, delivered, failed);
    return failed == 0 && delivered == lines ? 0 : 1;
}
