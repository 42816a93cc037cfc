/* C put throughput: N records of SIZE bytes over KEYS partition keys,
 * blocking put with a delivery callback per record that notes its
 * put-to-result latency (the same workload as `kpl perf`), timed from the
 * first put until every result is in.
 *
 *   bench ENDPOINT STREAM [RECORDS] [SIZE] [KEYS]
 *
 * Prints "c: N records in S s = R records/s (delivered D, failed F)", then
 * the same as one JSON line with p50/p99 latency (benches/peers reads it). */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "kpl.h"

static unsigned long g_ok, g_failed;
/* Per record: when it was put, then its put-to-result latency in ms. */
static double *g_sent, *g_lat;

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static void on_delivery(const kpl_result *r, void *user_data) {
    size_t i = (size_t)user_data;
    g_lat[i] = (now() - g_sent[i]) * 1000.0;
    __atomic_fetch_add(r->success ? &g_ok : &g_failed, 1, __ATOMIC_RELAXED);
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
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
    g_sent = calloc(records, sizeof *g_sent);
    g_lat = calloc(records, sizeof *g_lat);
    uint8_t *data = malloc(size);
    char key[32];
    double start = now();
    for (unsigned long i = 0; i < records; i++) {
        snprintf(key, sizeof key, "pk-%lu", i % keys);
        memset(data, 'a' + (int)(i % 26), size);
        memcpy(data, &i, size < sizeof i ? size : sizeof i);
        g_sent[i] = now();
        if (kpl_producer_put(p, NULL, key, NULL, data, size, 0, on_delivery, (void *)(size_t)i) != KPL_OK) {
            fprintf(stderr, "bench: put %lu: %s\n", i, kpl_last_error_message());
            return 1;
        }
    }
    kpl_producer_flush(p, 0);
    double secs = now() - start;
    kpl_producer_free(p, 30000);
    free(data);
    qsort(g_lat, records, sizeof *g_lat, cmp_double);
    printf("c: %lu records in %.2f s = %.0f records/s (delivered %lu, failed %lu)\n", records, secs,
           (double)records / secs, g_ok, g_failed);
    printf("{\"records\":%lu,\"seconds\":%.4f,\"records_per_sec\":%.0f,\"latency_ms_p50\":%.3f,"
           "\"latency_ms_p99\":%.3f,\"delivered\":%lu,\"failed\":%lu}\n",
           records, secs, (double)records / secs, g_lat[records / 2], g_lat[records * 99 / 100], g_ok,
           g_failed);
    free(g_sent);
    free(g_lat);
    return g_failed == 0 && g_ok == records ? 0 : 1;
}
