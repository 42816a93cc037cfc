/* Installed-C-SDK check: produce to `kpl sim` through libkpl and read back.
 *
 *   KPL_BIN=dist/kpl ./consumer
 *
 * Built by scripts/test.sh's `package` step against the unpacked C SDK
 * tarball from dist/, once through CMake (find_package(kpl)) and once
 * through pkg-config. Starts `kpl sim`, puts RECORDS records, flushes,
 * reads the stream back (tests/c/harness.h: raw GetRecords +
 * kpl_deaggregate) and checks every record arrived once with its data. */
#include "harness.h"

#define RECORDS 2000
#define SHARDS 2

static int g_acked;
static int g_seen[RECORDS];

static void on_result(const kpl_result *r, void *user_data) {
    (void)user_data;
    if (r->success && r->shard_id != NULL) add_u32(&g_acked, 1);
    else fprintf(stderr, "record failed: %s\n", r->error_message);
}

static void on_kinesis_record(const char *shard_id, const char *sequence_number,
                              const char *partition_key, const uint8_t *data, size_t len,
                              void *ctx) {
    (void)shard_id;
    (void)sequence_number;
    (void)ctx;
    kpl_deaggregated *d = NULL;
    CHECK_CODE(kpl_deaggregate(partition_key, NULL, data, len, &d), KPL_OK);
    if (d == NULL) return;
    for (size_t i = 0; i < d->count; i++) {
        const kpl_deaggregated_record *u = &d->records[i];
        char body[32];
        size_t n = u->data_len < sizeof body - 1 ? u->data_len : sizeof body - 1;
        memcpy(body, u->data, n);
        body[n] = '\0';
        int index = -1;
        char key[32];
        if (sscanf(body, "rec-%d", &index) == 1 && index >= 0 && index < RECORDS) {
            snprintf(key, sizeof key, "key-%d", index % 50);
            CHECK(strcmp(key, u->partition_key) == 0);
            g_seen[index]++;
        } else {
            fprintf(stderr, "unexpected record %s\n", body);
            g_failures++;
        }
    }
    kpl_deaggregated_free(d);
}

int main(int argc, char **argv) {
    (void)argc;
    sim s;
    if (sim_start(&s, "sdk", SHARDS, NULL, NULL) != 0) return 1;
    kpl_config *cfg = sim_config(&s, "sdk");
    kpl_producer *p = NULL;
    CHECK_CODE(kpl_producer_new(cfg, &p), KPL_OK);
    kpl_config_free(cfg);
    if (p == NULL) {
        sim_stop(&s);
        return 1;
    }
    for (int i = 0; i < RECORDS; i++) {
        char key[32], body[32];
        snprintf(key, sizeof key, "key-%d", i % 50);
        int n = snprintf(body, sizeof body, "rec-%d", i);
        CHECK_CODE(kpl_producer_put(p, NULL, key, NULL, (const uint8_t *)body, (size_t)n, 10000,
                                    on_result, NULL),
                   KPL_OK);
    }
    CHECK_CODE(kpl_producer_flush(p, 30000), KPL_OK);
    CHECK_CODE(kpl_producer_free(p, 10000), KPL_OK);
    long kinesis_records = sim_read_stream(&s, "sdk", SHARDS, on_kinesis_record, NULL);
    sim_stop(&s);
    int once = 0;
    for (int i = 0; i < RECORDS; i++) once += g_seen[i] == 1;
    CHECK(load_u32(&g_acked) == RECORDS);
    CHECK(once == RECORDS);
    const char *name = strrchr(argv[0], '/');
    printf("C SDK %s (kpl %s): %d records acknowledged, %d read back once from %ld Kinesis records: %s\n",
           name ? name + 1 : argv[0], kpl_version(), load_u32(&g_acked), once, kinesis_records,
           g_failures ? "FAILED" : "ok");
    return g_failures ? 1 : 0;
}
