/* C put throughput: N records of SIZE bytes over KEYS partition keys,
 * blocking put with a delivery callback per record (the same workload as
 * `kpl perf`), timed from the first put until every result is in.
 *
 *   bench ENDPOINT STREAM [RECORDS] [SIZE] [KEYS]
 *
 * Prints one line: "c: N records in S s = R records/s (delivered D, failed F)". */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "kpl.h"

static unsigned long g_ok, g_failed;

static void on_delivery(const kpl_result *r, void *user_data) {
    (void)user_data;
    __atomic_fetch_add(r->success ? &g_ok : &g_failed, 1, __ATOMIC_RELAXED);
}

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: bench ENDPOINT STREAM [RECORDS] [SIZE] [KEYS]\n");
        return 2;
    }
    unsigned long records = argc > 3 ? strtoul(argv[3], NULL, 10) : 1000000;
    size_t size = argc > 4 ? strtoul(argv[4], NULL, 10) : 100;
    unsigned long keys = argc > 5 ? strtoul(argv[5], NULL, 10) : 1000;
    kpl_config *cfg = kpl_config_new();
    kpl_config_set(cfg, "KinesisEndpoint", argv[1]);
    kpl_config_set(cfg, "StreamName", argv[2]);
    kpl_config_set(cfg, "Region", "us-east-1");
    kpl_config_set(cfg, "AwsAccessKeyId", "AKIDLOCALTEST");
    kpl_config_set(cfg, "AwsSecretAccessKey", "local-test-secret");
    /* The simulator's limits are off; lift the producer's per-shard rate
       limiter too, or it holds each shard to 1.5 MiB/s. */
    kpl_config_set(cfg, "RateLimit", "1000000");
    kpl_producer *p = NULL;
    if (kpl_producer_new(cfg, &p) != KPL_OK) {
        fprintf(stderr, "bench: %s\n", kpl_last_error_message());
        return 1;
    }
    kpl_config_free(cfg);
    uint8_t *data = malloc(size);
    char key[32];
    double start = now();
    for (unsigned long i = 0; i < records; i++) {
        snprintf(key, sizeof key, "pk-%lu", i % keys);
        memset(data, 'a' + (int)(i % 26), size);
        memcpy(data, &i, size < sizeof i ? size : sizeof i);
        if (kpl_producer_put(p, NULL, key, NULL, data, size, 0, on_delivery, NULL) != KPL_OK) {
            fprintf(stderr, "bench: put %lu: %s\n", i, kpl_last_error_message());
            return 1;
        }
    }
    kpl_producer_flush(p, 0);
    double secs = now() - start;
    kpl_producer_free(p, 30000);
    free(data);
    printf("c: %lu records in %.2f s = %.0f records/s (delivered %lu, failed %lu)\n", records, secs,
           (double)records / secs, g_ok, g_failed);
    return g_failed == 0 && g_ok == records ? 0 : 1;
}
