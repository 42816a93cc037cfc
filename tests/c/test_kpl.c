/* Tests of the kpl C API against `kpl sim` (a subprocess per test).
 *
 *   test_kpl [name...]    run all tests, or the named ones
 *
 * Needs KPL_BIN (the `kpl` binary). Prints one line per test and a
 * summary; exits non-zero on any failure. */
#include "harness.h"

#include <pthread.h>
#include <time.h>

/* ------------------------------------------------------------ records -- */

#define MAX_RECORDS 20000

typedef struct report {
    int calls;           /* callbacks for this record (must end at 1) */
    int success;
    int error;
    int aggregated;
    pthread_t thread;    /* the thread the callback ran on */
    char shard_id[32];
    char sequence_number[64];
    uint64_t sub_sequence_number;
    size_t attempts;
    int seen;            /* times read back from the stream */
} report;

typedef struct run {
    report reports[MAX_RECORDS];
    int total_calls;
    pthread_t caller;
} run;

static run g_run;

static void reset_run(void) {
    memset(&g_run, 0, sizeof g_run);
    g_run.caller = pthread_self();
}

/* Record i's payload: "rec:<i>:" then bytes that include NUL and 0xff. */
static size_t make_payload(int i, uint8_t *buf, size_t cap) {
    int n = snprintf((char *)buf, cap, "rec:%d:", i);
    size_t len = (size_t)n + (size_t)(i % 37) + 8;
    for (size_t k = (size_t)n; k < len && k < cap; k++) buf[k] = (uint8_t)((i * 31 + (int)k) & 0xff);
    return len;
}

static void make_key(int i, char *buf, size_t cap) { snprintf(buf, cap, "key-%d", i % 97); }

static void on_delivery(const kpl_result *r, void *user_data) {
    size_t i = (size_t)user_data;
    report *rep = &g_run.reports[i];
    add_u32(&rep->calls, 1);
    add_u32(&g_run.total_calls, 1);
    rep->thread = pthread_self();
    rep->success = r->success;
    rep->error = (int)r->error;
    rep->aggregated = r->aggregated;
    rep->attempts = r->attempt_count;
    rep->sub_sequence_number = r->sub_sequence_number;
    if (r->success) {
        snprintf(rep->shard_id, sizeof rep->shard_id, "%s", r->shard_id);
        snprintf(rep->sequence_number, sizeof rep->sequence_number, "%s", r->sequence_number);
    } else {
        if (r->error_message == NULL || r->partition_key == NULL) rep->error = -1;
    }
    /* Attempt details must be readable. */
    for (size_t a = 0; a < r->attempt_count; a++) {
        volatile uint64_t d = r->attempts[a].delay_ms + r->attempts[a].duration_ms;
        (void)d;
        if (r->attempts[a].error_code) (void)strlen(r->attempts[a].error_code);
    }
}

static int wait_calls(int want, int seconds) {
    for (int i = 0; i < seconds * 100 && load_u32(&g_run.total_calls) < want; i++) sleep_ms(10);
    return load_u32(&g_run.total_calls);
}

/* Every callback once, from a library thread. */
static void check_reports(int n, int want_success) {
    for (int i = 0; i < n; i++) {
        report *rep = &g_run.reports[i];
        if (rep->calls != 1) {
            fprintf(stderr, "record %d: %d callbacks\n", i, rep->calls);
            g_failures++;
            return;
        }
        if (pthread_equal(rep->thread, g_run.caller)) {
            fprintf(stderr, "record %d: callback ran on the caller's thread\n", i);
            g_failures++;
            return;
        }
        if (want_success && !rep->success) {
            fprintf(stderr, "record %d failed: %s\n", i, kpl_error_name(rep->error));
            g_failures++;
            return;
        }
    }
}

/* ------------------------------------------------------------- tests -- */

typedef struct readback {
    int n;
    int ehk; /* every 10th record has explicit hash key 1234567890 */
    long user_records;
    int bad;
} readback;

static void on_kinesis_record(const char *shard_id, const char *seq, const char *pk,
                              const uint8_t *data, size_t len, void *ctx) {
    readback *rb = ctx;
    kpl_deaggregated *d = NULL;
    kpl_error e = kpl_deaggregate(pk, NULL, data, len, &d);
    if (e != KPL_OK) {
        fprintf(stderr, "deaggregate %s %s: %s\n", shard_id, seq, kpl_last_error_message());
        rb->bad++;
        return;
    }
    for (size_t k = 0; k < d->count; k++) {
        const kpl_deaggregated_record *u = &d->records[k];
        rb->user_records++;
        int i = -1;
        if (u->data_len < 5 || sscanf((const char *)u->data, "rec:%d:", &i) != 1 || i < 0 || i >= rb->n) {
            rb->bad++;
            continue;
        }
        uint8_t want[128];
        char key[32];
        size_t want_len = make_payload(i, want, sizeof want);
        make_key(i, key, sizeof key);
        report *rep = &g_run.reports[i];
        rep->seen++;
        int ok = u->data_len == want_len && memcmp(u->data, want, want_len) == 0 &&
                 strcmp(u->partition_key, key) == 0 && strcmp(rep->shard_id, shard_id) == 0 &&
                 strcmp(rep->sequence_number, seq) == 0 &&
                 rep->sub_sequence_number == u->sub_sequence_number;
        /* Kinesis keeps no explicit hash key for a plain record: a record
         * that went out alone (its aggregate's deadline passed before another
         * record joined it, as on a slow ASan run) carries none back. */
        if (rb->ehk && i % 10 == 0 && u->aggregated) {
            ok = ok && u->explicit_hash_key != NULL && strcmp(u->explicit_hash_key, "1234567890") == 0;
        }
        if (!ok) {
            if (rb->bad < 5)
                fprintf(stderr, "record %d differs (key %s, shard %s/%s, seq %s/%s, sub %llu/%llu)\n", i,
                        u->partition_key, shard_id, rep->shard_id, seq, rep->sequence_number,
                        (unsigned long long)u->sub_sequence_number,
                        (unsigned long long)rep->sub_sequence_number);
            rb->bad++;
        }
    }
    kpl_deaggregated_free(d);
}

/* Records put from C come back intact; every callback once, on a library thread. */
/* Puts records 0..n-1 (payload and key by number; every 10th with an
 * explicit hash key and `stream` named), reporting to on_delivery; with
 * `alternate`, every other one through kpl_producer_try_put. */
static void put_numbered(kpl_producer *p, int n, const char *stream, int alternate) {
    for (int i = 0; i < n && p; i++) {
        uint8_t data[128];
        char key[32];
        size_t len = make_payload(i, data, sizeof data);
        make_key(i, key, sizeof key);
        const char *ehk = i % 10 == 0 ? "1234567890" : NULL;
        const char *named = i % 10 == 0 ? stream : NULL;
        void *ctx = (void *)(size_t)i;
        kpl_error e = alternate && i % 2 == 0
                          ? kpl_producer_try_put(p, named, key, ehk, data, len, on_delivery, ctx)
                          : kpl_producer_put(p, named, key, ehk, data, len, 0, on_delivery, ctx);
        CHECK_CODE(e, KPL_OK);
    }
}

static void test_roundtrip(void) {
    sim s;
    if (sim_start(&s, "rt", 4, NULL, NULL) != 0) { g_failures++; return; }
    reset_run();
    kpl_config *cfg = sim_config(&s, "rt");
    kpl_producer *p = NULL;
    CHECK_CODE(kpl_producer_new(cfg, &p), KPL_OK);
    kpl_config_free(cfg);
    const int n = 2000;
    put_numbered(p, n, "rt", 1);
    CHECK_CODE(kpl_producer_flush(p, 30000), KPL_OK);
    CHECK(load_u32(&g_run.total_calls) == n);
    CHECK(kpl_producer_outstanding(p) == 0);
    check_reports(n, 1);
    char *json = NULL;
    CHECK_CODE(kpl_producer_metrics_json(p, &json), KPL_OK);
    CHECK(json != NULL && strstr(json, "\"UserRecordsPut\":2000") != NULL);
    kpl_string_free(json);
    CHECK_CODE(kpl_producer_free(p, 10000), KPL_OK);

    readback rb = {n, 1, 0, 0};
    long kinesis = sim_read_stream(&s, "rt", 4, on_kinesis_record, &rb);
    CHECK(kinesis > 0 && kinesis < n); /* aggregation packed them */
    CHECK(rb.bad == 0);
    CHECK(rb.user_records == n);
    int missing = 0;
    for (int i = 0; i < n; i++) missing += g_run.reports[i].seen != 1;
    CHECK(missing == 0);
    printf("  roundtrip: %d records in %ld Kinesis records, %ld read back, %d bad, %d missing\n", n,
           kinesis, rb.user_records, rb.bad, missing);
    sim_stop(&s);
}

/* A stream named by its ARN, as the default stream and per record: the
 * records reach the stream (requests carry StreamARN). With StrictOrdering
 * on, which C reaches by name too. */
static void test_arn(void) {
    sim s;
    if (sim_start(&s, "arnc", 2, NULL, NULL) != 0) { g_failures++; return; }
    reset_run();
    const char *arn = "arn:aws:kinesis:us-east-1:000000000000:stream/arnc";
    kpl_config *cfg = sim_config(&s, arn);
    CHECK_CODE(kpl_config_set(cfg, "StrictOrdering", "true"), KPL_OK);
    kpl_producer *p = NULL;
    CHECK_CODE(kpl_producer_new(cfg, &p), KPL_OK);
    kpl_config_free(cfg);
    const int n = 300;
    for (int i = 0; i < n && p; i++) {
        uint8_t data[128];
        char key[32];
        size_t len = make_payload(i, data, sizeof data);
        make_key(i, key, sizeof key);
        CHECK_CODE(kpl_producer_put(p, i % 2 ? arn : NULL, key, NULL, data, len, 0, on_delivery,
                                    (void *)(size_t)i),
                   KPL_OK);
    }
    CHECK_CODE(kpl_producer_flush(p, 30000), KPL_OK);
    check_reports(n, 1);
    CHECK_CODE(kpl_producer_free(p, 10000), KPL_OK);
    readback rb = {n, 0, 0, 0};
    sim_read_stream(&s, "arnc", 2, on_kinesis_record, &rb);
    CHECK(rb.bad == 0);
    CHECK(rb.user_records == n);
    printf("  arn: %d records put to %s, %ld read back from arnc\n", n, arn, rb.user_records);
    sim_stop(&s);
}

/* Free with records in flight (slow endpoint): every callback has run when
 * free returns, all delivered. Then shutdown with a short timeout fails
 * the rest with SHUT_DOWN, each exactly once. */
static void test_free_in_flight(void) {
    sim s;
    if (sim_start(&s, "fl", 2, "--latency-ms", "300") != 0) { g_failures++; return; }
    reset_run();
    kpl_config *cfg = sim_config(&s, "fl");
    CHECK_CODE(kpl_config_set(cfg, "RecordMaxBufferedTime", "1"), KPL_OK);
    kpl_producer *p = NULL;
    CHECK_CODE(kpl_producer_new(cfg, &p), KPL_OK);
    const int n = 300;
    for (int i = 0; i < n; i++) {
        uint8_t data[128];
        char key[32];
        size_t len = make_payload(i, data, sizeof data);
        make_key(i, key, sizeof key);
        CHECK_CODE(kpl_producer_put(p, NULL, key, NULL, data, len, 0, on_delivery, (void *)(size_t)i), KPL_OK);
    }
    CHECK(kpl_producer_outstanding(p) > 0);
    CHECK_CODE(kpl_producer_free(p, 20000), KPL_OK);
    CHECK(load_u32(&g_run.total_calls) == n); /* no waiting: free waited */
    check_reports(n, 1);

    /* Shutdown that times out: records fail with SHUT_DOWN. */
    reset_run();
    CHECK(sim_faults(&s, "{\"latency\": 3000}") == 0);
    p = NULL;
    CHECK_CODE(kpl_producer_new(cfg, &p), KPL_OK);
    kpl_config_free(cfg);
    for (int i = 0; i < 50; i++) {
        uint8_t data[128];
        char key[32];
        size_t len = make_payload(i, data, sizeof data);
        make_key(i, key, sizeof key);
        CHECK_CODE(kpl_producer_put(p, NULL, key, NULL, data, len, 0, on_delivery, (void *)(size_t)i), KPL_OK);
    }
    sleep_ms(100); /* the request is out, waiting on the slow sim */
    CHECK_CODE(kpl_producer_flush(p, 50), KPL_ERR_TIMEOUT);
    kpl_error e = kpl_producer_shutdown(p, 100);
    CHECK(e == KPL_ERR_TIMEOUT || e == KPL_OK);
    CHECK(load_u32(&g_run.total_calls) == 50);
    check_reports(50, 0);
    uint8_t one = 1;
    CHECK_CODE(kpl_producer_try_put(p, NULL, "k", NULL, &one, 1, on_delivery, NULL), KPL_ERR_SHUT_DOWN);
    CHECK_CODE(kpl_producer_put(p, NULL, "k", NULL, &one, 1, 0, on_delivery, NULL), KPL_ERR_SHUT_DOWN);
    CHECK_CODE(kpl_producer_shutdown(p, 100), KPL_OK); /* second call */
    CHECK_CODE(kpl_producer_free(p, 100), KPL_OK);
    CHECK(load_u32(&g_run.total_calls) == 50);
    sim_stop(&s);
}

/* MaxBufferedRecords=10 and a slow sim: try_put reports BUFFER_FULL at
 * once, a blocking put with a timeout too. */
static void test_buffer_full(void) {
    sim s;
    if (sim_start(&s, "bf", 1, NULL, NULL) != 0) { g_failures++; return; }
    reset_run();
    kpl_config *cfg = sim_config(&s, "bf");
    CHECK_CODE(kpl_config_set(cfg, "MaxBufferedRecords", "10"), KPL_OK);
    CHECK_CODE(kpl_config_set(cfg, "RecordMaxBufferedTime", "1"), KPL_OK);
    kpl_producer *p = NULL;
    CHECK_CODE(kpl_producer_new(cfg, &p), KPL_OK);
    kpl_config_free(cfg);
    CHECK(sim_faults(&s, "{\"latency\": 500}") == 0);
    int accepted = 0, full = 0;
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (int i = 0; i < 100; i++) {
        uint8_t data[128];
        char key[32];
        size_t len = make_payload(i, data, sizeof data);
        make_key(i, key, sizeof key);
        kpl_error e = kpl_producer_try_put(p, NULL, key, NULL, data, len, on_delivery, (void *)(size_t)accepted);
        if (e == KPL_OK) accepted++;
        else if (e == KPL_ERR_BUFFER_FULL) full++;
        else CHECK_CODE(e, KPL_OK);
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double ms = (double)(t1.tv_sec - t0.tv_sec) * 1e3 + (double)(t1.tv_nsec - t0.tv_nsec) / 1e6;
    CHECK(accepted == 10);
    CHECK(full == 90);
    CHECK(ms < 400); /* never waited for the slow sim */
    uint8_t one = 1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    CHECK_CODE(kpl_producer_put(p, NULL, "k", NULL, &one, 1, 50, on_delivery, NULL), KPL_ERR_BUFFER_FULL);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    ms = (double)(t1.tv_sec - t0.tv_sec) * 1e3 + (double)(t1.tv_nsec - t0.tv_nsec) / 1e6;
    CHECK(ms >= 40 && ms < 450);
    printf("  buffer_full: %d accepted, %d BUFFER_FULL, blocking put timed out after %.0f ms\n", accepted,
           full, ms);
    CHECK(sim_faults(&s, "{}") == 0);
    CHECK_CODE(kpl_producer_flush(p, 30000), KPL_OK);
    CHECK(load_u32(&g_run.total_calls) == accepted);
    check_reports(accepted, 1);
    /* Room again: a blocking put goes through. */
    CHECK_CODE(kpl_producer_put(p, NULL, "k", NULL, &one, 1, 5000, NULL, NULL), KPL_OK);
    CHECK_CODE(kpl_producer_free(p, 10000), KPL_OK);
    sim_stop(&s);
}

/* 4 threads x N records on one producer at once. */
#define THREADS 4
#define PER_THREAD 2500
static kpl_producer *g_shared;

static void *put_thread(void *arg) {
    int t = (int)(size_t)arg;
    for (int k = 0; k < PER_THREAD; k++) {
        int i = t * PER_THREAD + k;
        uint8_t data[128];
        char key[32];
        size_t len = make_payload(i, data, sizeof data);
        make_key(i, key, sizeof key);
        CHECK_CODE(kpl_producer_put(g_shared, NULL, key, NULL, data, len, 0, on_delivery, (void *)(size_t)i), KPL_OK);
        if (k == PER_THREAD / 2) {
            CHECK(kpl_producer_flush(g_shared, 30000) == KPL_OK);
            char *json = NULL;
            CHECK(kpl_producer_metrics_json(g_shared, &json) == KPL_OK);
            kpl_string_free(json);
        }
    }
    return NULL;
}

static void test_threads(void) {
    sim s;
    if (sim_start(&s, "mt", 4, "--unlimited", NULL) != 0) { g_failures++; return; }
    reset_run();
    kpl_config *cfg = sim_config(&s, "mt");
    CHECK_CODE(kpl_producer_new(cfg, &g_shared), KPL_OK);
    kpl_config_free(cfg);
    pthread_t threads[THREADS];
    for (int t = 0; t < THREADS; t++) pthread_create(&threads[t], NULL, put_thread, (void *)(size_t)t);
    for (int t = 0; t < THREADS; t++) pthread_join(threads[t], NULL);
    CHECK_CODE(kpl_producer_flush(g_shared, 30000), KPL_OK);
    CHECK(load_u32(&g_run.total_calls) == THREADS * PER_THREAD);
    check_reports(THREADS * PER_THREAD, 1);
    CHECK_CODE(kpl_producer_free(g_shared, 10000), KPL_OK);
    readback rb = {THREADS * PER_THREAD, 0, 0, 0};
    sim_read_stream(&s, "mt", 4, on_kinesis_record, &rb);
    CHECK(rb.bad == 0 && rb.user_records == THREADS * PER_THREAD);
    printf("  threads: %d threads x %d records, %ld read back\n", THREADS, PER_THREAD, rb.user_records);
    sim_stop(&s);
}

/* Calls from inside a callback: blocking ones are refused, try_put works. */
static kpl_producer *g_cb_producer;
static int g_cb_put_code = -1, g_cb_try_code = -1, g_cb_flush_code = -1;
static void on_reentrant(const kpl_result *r, void *user_data) {
    (void)r;
    if (user_data == NULL) return;
    uint8_t one = 1;
    g_cb_put_code = (int)kpl_producer_put(g_cb_producer, NULL, "k", NULL, &one, 1, 0, NULL, NULL);
    g_cb_flush_code = (int)kpl_producer_flush(g_cb_producer, 0);
    g_cb_try_code = (int)kpl_producer_try_put(g_cb_producer, NULL, "k", NULL, &one, 1, on_delivery, (void *)0);
}

/* Every misuse returns its code. */
static void test_misuse(void) {
    sim s;
    if (sim_start(&s, "mu", 1, NULL, NULL) != 0) { g_failures++; return; }
    reset_run();
    uint8_t one = 1;
    kpl_producer *p = NULL;
    char *json = (char *)&one;
    kpl_deaggregated *d = (kpl_deaggregated *)&one;

    /* NULL handles and outputs. */
    CHECK_CODE(kpl_producer_new(NULL, &p), KPL_ERR_INVALID_ARGUMENT);
    CHECK(p == NULL);
    CHECK_CODE(kpl_config_set(NULL, "Region", "x"), KPL_ERR_INVALID_ARGUMENT);
    CHECK_CODE(kpl_config_load_properties(NULL, "x"), KPL_ERR_INVALID_ARGUMENT);
    CHECK_CODE(kpl_producer_put(NULL, NULL, "k", NULL, &one, 1, 0, NULL, NULL), KPL_ERR_INVALID_ARGUMENT);
    CHECK(strstr(kpl_last_error_message(), "NULL") != NULL);
    CHECK_CODE(kpl_producer_try_put(NULL, NULL, "k", NULL, &one, 1, NULL, NULL), KPL_ERR_INVALID_ARGUMENT);
    CHECK_CODE(kpl_producer_flush(NULL, 0), KPL_ERR_INVALID_ARGUMENT);
    CHECK_CODE(kpl_producer_shutdown(NULL, 0), KPL_ERR_INVALID_ARGUMENT);
    CHECK_CODE(kpl_producer_metrics_json(NULL, &json), KPL_ERR_INVALID_ARGUMENT);
    CHECK(json == NULL);
    CHECK(kpl_producer_outstanding(NULL) == 0);
    CHECK_CODE(kpl_producer_free(NULL, 0), KPL_OK);
    kpl_config_free(NULL);
    kpl_string_free(NULL);
    kpl_deaggregated_free(NULL);
    CHECK_CODE(kpl_deaggregate("k", NULL, &one, 1, NULL), KPL_ERR_INVALID_ARGUMENT);
    CHECK_CODE(kpl_deaggregate(NULL, NULL, &one, 1, &d), KPL_ERR_INVALID_ARGUMENT);
    CHECK(d == NULL);
    CHECK_CODE(kpl_deaggregate("k", NULL, NULL, 5, &d), KPL_ERR_INVALID_ARGUMENT);
    CHECK_CODE(kpl_set_worker_threads(0), KPL_ERR_INVALID_ARGUMENT);

    /* Config: bad names and values, properties files. */
    kpl_config *cfg = sim_config(&s, NULL);
    CHECK_CODE(kpl_config_set(cfg, "NoSuchSetting", "1"), KPL_ERR_UNKNOWN_SETTING);
    CHECK(strstr(kpl_last_error_message(), "NoSuchSetting") != NULL);
    /* A typo is told its closest names; reading back takes any case style. */
    CHECK_CODE(kpl_config_set(cfg, "RecordMaxBufferTime", "50"), KPL_ERR_UNKNOWN_SETTING);
    CHECK(strstr(kpl_last_error_message(), "did you mean RecordMaxBufferedTime") != NULL);
    CHECK(strcmp(kpl_error_name(KPL_ERR_UNKNOWN_SETTING), "KPL_ERR_UNKNOWN_SETTING") == 0);
    {
        char *value = NULL;
        CHECK_CODE(kpl_config_set(cfg, "record_ttl", "4321"), KPL_OK);
        CHECK_CODE(kpl_config_get(cfg, "RecordTtl", &value), KPL_OK);
        CHECK(value != NULL && strcmp(value, "4321") == 0);
        kpl_string_free(value);
        CHECK_CODE(kpl_config_get(cfg, "RecordTtlx", &value), KPL_ERR_UNKNOWN_SETTING);
        CHECK(value == NULL);
    }
    CHECK_CODE(kpl_config_set(cfg, "RecordMaxBufferedTime", "soon"), KPL_ERR_INVALID_CONFIG);
    CHECK_CODE(kpl_config_set(cfg, "CollectionMaxCount", "501"), KPL_ERR_INVALID_CONFIG);
    CHECK_CODE(kpl_config_set(cfg, "StrictOrdering", "sometimes"), KPL_ERR_INVALID_CONFIG);
    CHECK_CODE(kpl_config_set(cfg, NULL, "1"), KPL_ERR_INVALID_ARGUMENT);
    CHECK_CODE(kpl_config_set(cfg, "Region", NULL), KPL_ERR_INVALID_ARGUMENT);
    CHECK_CODE(kpl_config_set(cfg, "Region", "\xff\xfe"), KPL_ERR_INVALID_ARGUMENT);
    CHECK_CODE(kpl_config_set(cfg, "record_max_buffered_time", "10"), KPL_OK);
    CHECK_CODE(kpl_config_load_properties(cfg, "/nonexistent/kpl.properties"), KPL_ERR_INVALID_CONFIG);
    char path[] = "/tmp/kpl-test-XXXXXX";
    int fd = mkstemp(path);
    CHECK(fd >= 0);
    const char *props = "# test\nAggregationEnabled = true\nSomethingUnknown = 3\nMaxConnections = 4\n";
    CHECK(write(fd, props, strlen(props)) == (ssize_t)strlen(props));
    close(fd);
    CHECK_CODE(kpl_config_load_properties(cfg, path), KPL_OK);
    fd = open(path, O_WRONLY | O_TRUNC);
    props = "MaxConnections = 9999\n";
    CHECK(write(fd, props, strlen(props)) == (ssize_t)strlen(props));
    close(fd);
    CHECK_CODE(kpl_config_load_properties(cfg, path), KPL_ERR_INVALID_CONFIG);
    CHECK(strstr(kpl_last_error_message(), ":1") != NULL);
    unlink(path);

    /* A producer without a default stream. */
    CHECK_CODE(kpl_producer_new(cfg, NULL), KPL_ERR_INVALID_ARGUMENT);
    CHECK_CODE(kpl_producer_new(cfg, &p), KPL_OK);
    CHECK_CODE(kpl_producer_put(p, NULL, "k", NULL, &one, 1, 0, NULL, NULL), KPL_ERR_INVALID_RECORD);
    CHECK(strstr(kpl_last_error_message(), "stream") != NULL);
    CHECK_CODE(kpl_producer_put(p, "mu", NULL, NULL, &one, 1, 0, NULL, NULL), KPL_ERR_INVALID_ARGUMENT);
    CHECK_CODE(kpl_producer_put(p, "mu", "", NULL, &one, 1, 0, NULL, NULL), KPL_ERR_INVALID_RECORD);
    CHECK_CODE(kpl_producer_try_put(p, "mu", "", NULL, &one, 1, NULL, NULL), KPL_ERR_INVALID_RECORD);
    CHECK_CODE(kpl_producer_put(p, "mu", "k\xc3\x28", NULL, &one, 1, 0, NULL, NULL), KPL_ERR_INVALID_ARGUMENT);
    CHECK(strstr(kpl_last_error_message(), "UTF-8") != NULL);
    CHECK_CODE(kpl_producer_put(p, "m\xff", "k", NULL, &one, 1, 0, NULL, NULL), KPL_ERR_INVALID_ARGUMENT);
    CHECK_CODE(kpl_producer_put(p, "mu", "k", "\xff", &one, 1, 0, NULL, NULL), KPL_ERR_INVALID_ARGUMENT);
    CHECK_CODE(kpl_producer_put(p, "mu", "k", "not-a-number", &one, 1, 0, NULL, NULL), KPL_ERR_INVALID_RECORD);
    CHECK_CODE(kpl_producer_put(p, "mu", "k", NULL, NULL, 10, 0, NULL, NULL), KPL_ERR_INVALID_ARGUMENT);
    char long_key[300];
    memset(long_key, 'a', sizeof long_key - 1);
    long_key[sizeof long_key - 1] = '\0';
    CHECK_CODE(kpl_producer_put(p, "mu", long_key, NULL, &one, 1, 0, NULL, NULL), KPL_ERR_INVALID_RECORD);
    size_t big_len = 1024 * 1024 + 1;
    uint8_t *big = calloc(1, big_len);
    CHECK_CODE(kpl_producer_put(p, "mu", "k", NULL, big, big_len, 0, NULL, NULL), KPL_ERR_INVALID_RECORD);
    CHECK_CODE(kpl_producer_try_put(p, "mu", "k", NULL, big, big_len, NULL, NULL), KPL_ERR_INVALID_RECORD);
    free(big);
    /* Empty data (NULL, 0) is a valid record. */
    CHECK_CODE(kpl_producer_put(p, "mu", "k", NULL, NULL, 0, 0, on_delivery, (void *)(size_t)0), KPL_OK);
    CHECK_CODE(kpl_producer_flush(p, 10000), KPL_OK);
    CHECK(load_u32(&g_run.total_calls) == 1 && g_run.reports[0].success);
    CHECK(kpl_producer_outstanding(p) == 0);

    /* A stream that does not exist: the callback gets the failure and the record. */
    reset_run();
    CHECK_CODE(kpl_producer_put(p, "missing", "k", NULL, &one, 1, 0, on_delivery, (void *)(size_t)0), KPL_OK);
    CHECK_CODE(kpl_producer_flush(p, 30000), KPL_OK);
    CHECK(load_u32(&g_run.total_calls) == 1 && !g_run.reports[0].success);
    CHECK(g_run.reports[0].error != KPL_OK && g_run.reports[0].error != -1);
    printf("  misuse: missing stream -> %s\n", kpl_error_name(g_run.reports[0].error));

    /* Blocking calls from a callback are refused; try_put works. */
    reset_run();
    g_cb_producer = p;
    CHECK_CODE(kpl_producer_put(p, "mu", "k", NULL, &one, 1, 0, on_reentrant, (void *)1), KPL_OK);
    CHECK_CODE(kpl_producer_flush(p, 10000), KPL_OK);
    for (int i = 0; i < 1000 && __atomic_load_n(&g_cb_try_code, __ATOMIC_SEQ_CST) == -1; i++) sleep_ms(10);
    CHECK(g_cb_put_code == KPL_ERR_INVALID_ARGUMENT);
    CHECK(g_cb_flush_code == KPL_ERR_INVALID_ARGUMENT);
    CHECK(g_cb_try_code == KPL_ERR_INVALID_RECORD); /* no default stream: shows it ran */
    CHECK_CODE(kpl_set_worker_threads(3), KPL_ERR_INVALID_ARGUMENT); /* runtime running */

    /* After shutdown. */
    CHECK_CODE(kpl_producer_shutdown(p, 10000), KPL_OK);
    CHECK_CODE(kpl_producer_put(p, "mu", "k", NULL, &one, 1, 0, NULL, NULL), KPL_ERR_SHUT_DOWN);
    CHECK_CODE(kpl_producer_try_put(p, "mu", "k", NULL, &one, 1, NULL, NULL), KPL_ERR_SHUT_DOWN);
    CHECK_CODE(kpl_producer_flush(p, 1000), KPL_ERR_SHUT_DOWN);
    CHECK_CODE(kpl_producer_metrics_json(p, &json), KPL_OK);
    kpl_string_free(json);
    CHECK_CODE(kpl_producer_free(p, 1000), KPL_OK);

    /* Deaggregate: a plain record comes back as one. */
    const char *plain = "plain data";
    CHECK_CODE(kpl_deaggregate("pk", "42", (const uint8_t *)plain, strlen(plain), &d), KPL_OK);
    CHECK(d != NULL && d->count == 1 && !d->records[0].aggregated &&
          strcmp(d->records[0].partition_key, "pk") == 0 &&
          strcmp(d->records[0].explicit_hash_key, "42") == 0 &&
          d->records[0].data_len == strlen(plain) && memcmp(d->records[0].data, plain, strlen(plain)) == 0);
    kpl_deaggregated_free(d);
    CHECK_CODE(kpl_deaggregate("k\xff", NULL, &one, 1, &d), KPL_ERR_INVALID_ARGUMENT);
    CHECK(strcmp(kpl_error_name(999), "KPL_ERR_UNKNOWN") == 0);
    CHECK(kpl_version() != NULL && kpl_version()[0] != '\0');
    kpl_config_free(cfg);
    sim_stop(&s);
}

/* ------------------------------------------------------------- main -- */

typedef struct test {
    const char *name;
    void (*fn)(void);
} test;

/* A durable spool, reached by name: records go through it and arrive; a
 * second producer on the same directory gets KPL_ERR_SPOOL. */
static void test_spool(void) {
    sim s;
    if (sim_start(&s, "sp", 2, NULL, NULL) != 0) { g_failures++; return; }
    reset_run();
    char dir[] = "/tmp/kpl-c-spool-XXXXXX";
    CHECK(mkdtemp(dir) != NULL);
    kpl_config *cfg = sim_config(&s, "sp");
    CHECK_CODE(kpl_config_set(cfg, "SpoolDirectory", dir), KPL_OK);
    CHECK_CODE(kpl_config_set(cfg, "SpoolSync", "always"), KPL_OK);
    CHECK_CODE(kpl_config_set(cfg, "SpoolFullPolicy", "sometimes"), KPL_ERR_INVALID_CONFIG);
    kpl_producer *p = NULL, *second = NULL;
    CHECK_CODE(kpl_producer_new(cfg, &p), KPL_OK);
    CHECK_CODE(kpl_producer_new(cfg, &second), KPL_ERR_SPOOL);
    CHECK(second == NULL);
    CHECK(strstr(kpl_last_error_message(), "in use by another producer") != NULL);
    kpl_config_free(cfg);
    const int n = 500;
    put_numbered(p, n, "sp", 0); /* the spool keeps explicit hash keys and streams too */
    CHECK_CODE(kpl_producer_flush(p, 30000), KPL_OK);
    check_reports(n, 1);
    char *json = NULL;
    CHECK_CODE(kpl_producer_metrics_json(p, &json), KPL_OK);
    CHECK(json != NULL && strstr(json, "\"SpoolRecords\":0") != NULL);
    kpl_string_free(json);
    CHECK_CODE(kpl_producer_free(p, 10000), KPL_OK);
    readback rb = {n, 1, 0, 0};
    sim_read_stream(&s, "sp", 2, on_kinesis_record, &rb);
    CHECK(rb.bad == 0 && rb.user_records == n);
    printf("  spool: %d records through %s, %ld read back\n", n, dir, rb.user_records);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    CHECK(system(cmd) == 0);
    sim_stop(&s);
}

static const test TESTS[] = {
    {"misuse", test_misuse},
    {"roundtrip", test_roundtrip},
    {"arn", test_arn},
    {"free_in_flight", test_free_in_flight},
    {"buffer_full", test_buffer_full},
    {"threads", test_threads},
    {"spool", test_spool},
};

int main(int argc, char **argv) {
    signal(SIGPIPE, SIG_IGN);
    int ran = 0, failed = 0;
    for (size_t t = 0; t < sizeof TESTS / sizeof TESTS[0]; t++) {
        int wanted = argc < 2;
        for (int a = 1; a < argc; a++) wanted |= strcmp(argv[a], TESTS[t].name) == 0;
        if (!wanted) continue;
        int before = g_failures;
        TESTS[t].fn();
        ran++;
        int ok = g_failures == before;
        failed += !ok;
        printf("%s %s\n", ok ? "ok  " : "FAIL", TESTS[t].name);
        fflush(stdout);
    }
    printf("c tests: %d run, %d passed, %d failed\n", ran, ran - failed, failed);
    return failed ? 1 : 0;
}
