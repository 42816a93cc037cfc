/* The conformance cases (tests/conformance/cases.tsv, whose header says
 * what each line means) from C, against `kpl sim`. Rust, Python and Node
 * run the same file and must see the same outcomes.
 *
 *   conformance CASES_FILE */
#include "harness.h"

#include <pthread.h>
#include <stdint.h>

/* kpl-core's ErrorKind names, as the cases write outcomes. */
static const char *kind_of(kpl_error code) {
    switch (code) {
    case KPL_ERR_INVALID_CONFIG: return "InvalidConfig";
    case KPL_ERR_UNKNOWN_SETTING: return "UnknownSetting";
    case KPL_ERR_INVALID_RECORD: return "InvalidRecord";
    case KPL_ERR_BUFFER_FULL: return "BufferFull";
    case KPL_ERR_THROTTLED: return "Throttled";
    case KPL_ERR_EXPIRED: return "Expired";
    case KPL_ERR_SERVICE: return "Service";
    case KPL_ERR_TRANSPORT: return "Transport";
    case KPL_ERR_SHUT_DOWN: return "ShutDown";
    case KPL_ERR_CORRUPT: return "Corrupt";
    case KPL_ERR_OUTSIDE_SHARD_RANGE: return "OutsideShardRange";
    case KPL_ERR_UNEXPECTED: return "Unexpected";
    case KPL_ERR_SPOOL_FULL: return "SpoolFull";
    case KPL_ERR_DROPPED: return "Dropped";
    case KPL_ERR_SPOOL: return "Spool";
    default: return kpl_error_name((int32_t)code);
    }
}

/* A call's error as the cases write it: the kind, and for an unknown
 * setting the best suggestion (C has it in the message only). */
static void error_outcome(kpl_error code, char *out, size_t cap) {
    snprintf(out, cap, "%s", kind_of(code));
    const char *hint = strstr(kpl_last_error_message(), "did you mean ");
    if (code != KPL_ERR_UNKNOWN_SETTING || hint == NULL) return;
    hint += strlen("did you mean ");
    if (strncmp(hint, "one of ", 7) == 0) hint += 7;
    size_t n = strcspn(hint, "?,");
    snprintf(out, cap, "UnknownSetting:%.*s", (int)n, hint);
}

/* `-` is none; TEXT*N is TEXT repeated N times. Free the result. */
static char *value(const char *field) {
    if (strcmp(field, "-") == 0) return NULL;
    const char *star = strrchr(field, '*');
    char *end = NULL;
    long n = star ? strtol(star + 1, &end, 10) : -1;
    if (star == NULL || end == star + 1 || *end != '\0' || n < 0) return strdup(field);
    size_t unit = (size_t)(star - field);
    char *out = malloc(unit * (size_t)n + 1);
    for (long i = 0; i < n; i++) memcpy(out + unit * (size_t)i, field, unit);
    out[unit * (size_t)n] = '\0';
    return out;
}

/* One record's result, handed over from the library thread. */
typedef struct waiter {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int done;
    char outcome[256];
    char seq[128];
    uint64_t sub;
} waiter;

static void waiter_init(waiter *w) {
    memset(w, 0, sizeof *w);
    pthread_mutex_init(&w->mu, NULL);
    pthread_cond_init(&w->cv, NULL);
}

static void waiter_destroy(waiter *w) {
    pthread_mutex_destroy(&w->mu);
    pthread_cond_destroy(&w->cv);
}

static void on_result(const kpl_result *r, void *user_data) {
    waiter *w = user_data;
    pthread_mutex_lock(&w->mu);
    if (r->success) {
        snprintf(w->outcome, sizeof w->outcome, "Delivered");
        snprintf(w->seq, sizeof w->seq, "%s", r->sequence_number);
        w->sub = r->sub_sequence_number;
    } else {
        snprintf(w->outcome, sizeof w->outcome, "%s:%s\t%s", kind_of(r->error),
                 r->error_code ? r->error_code : "-", r->stream ? r->stream : "-");
    }
    w->done = 1;
    pthread_cond_signal(&w->cv);
    pthread_mutex_unlock(&w->mu);
}

static void wait_for(waiter *w) {
    pthread_mutex_lock(&w->mu);
    while (!w->done) pthread_cond_wait(&w->cv, &w->mu);
    pthread_mutex_unlock(&w->mu);
}

static kpl_config *base(const sim *s, const char *stream) {
    kpl_config *cfg = sim_config(s, stream);
    CHECK_CODE(kpl_config_set(cfg, "RecordTtl", "10000"), KPL_OK);
    CHECK_CODE(kpl_config_set(cfg, "MetricsLevel", "none"), KPL_OK);
    return cfg;
}

static kpl_producer *producer(kpl_config *cfg) {
    kpl_producer *p = NULL;
    CHECK_CODE(kpl_producer_new(cfg, &p), KPL_OK);
    kpl_config_free(cfg);
    return p;
}

/* set NAME VALUE OUTCOME: the KPL name to read back is the outcome's. */
static void run_set(const char *name, const char *text, const char *want, char *got, size_t cap) {
    kpl_config *cfg = kpl_config_new();
    kpl_error rc = kpl_config_set(cfg, name, text);
    if (rc != KPL_OK) {
        error_outcome(rc, got, cap);
    } else {
        size_t n = strchr(want, '=') ? (size_t)(strchr(want, '=') - want) : strlen(name);
        char kpl_name[128];
        snprintf(kpl_name, sizeof kpl_name, "%.*s", (int)n, strchr(want, '=') ? want : name);
        char *shown = NULL;
        rc = kpl_config_get(cfg, kpl_name, &shown);
        if (rc != KPL_OK) error_outcome(rc, got, cap);
        else snprintf(got, cap, "%s=%s", kpl_name, shown ? shown : "");
        kpl_string_free(shown);
    }
    kpl_config_free(cfg);
}

static void run_record(kpl_producer *p, const char *key_f, const char *data_f, const char *ehk_f,
                       char *got, size_t cap) {
    char *key = value(key_f), *data = value(data_f), *ehk = value(ehk_f);
    waiter w;
    waiter_init(&w);
    kpl_error rc = kpl_producer_try_put(p, NULL, key, ehk, (const uint8_t *)data, strlen(data),
                                        on_result, &w);
    if (rc != KPL_OK) {
        error_outcome(rc, got, cap);
    } else {
        wait_for(&w);
        if (strcmp(w.outcome, "Delivered") == 0) snprintf(got, cap, "Delivered");
        else snprintf(got, cap, "Failed:%.*s", (int)strcspn(w.outcome, ":"), w.outcome);
    }
    waiter_destroy(&w);
    free(key);
    free(data);
    free(ehk);
}

static void run_failed(const sim *s, const char *stream, const char *key, char *got, size_t cap) {
    kpl_producer *p = producer(base(s, stream));
    waiter w;
    waiter_init(&w);
    kpl_error rc = kpl_producer_put(p, NULL, key, NULL, (const uint8_t *)"x", 1, 0, on_result, &w);
    if (rc != KPL_OK) {
        snprintf(got, cap, "refused %s", kind_of(rc));
    } else {
        wait_for(&w);
        snprintf(got, cap, "%s", w.outcome);
    }
    kpl_producer_free(p, 5000);
    waiter_destroy(&w);
}

/* Whether record a's (sequence number, sub-sequence number) is below b's. */
static int before(const waiter *a, const waiter *b) {
    size_t la = strlen(a->seq), lb = strlen(b->seq);
    if (la != lb) return la < lb;
    int c = strcmp(a->seq, b->seq);
    return c < 0 || (c == 0 && a->sub < b->sub);
}

static void run_order(const sim *s, int n, const char *buffered, const char *aggregation, char *got,
                      size_t cap) {
    kpl_config *cfg = base(s, "main");
    CHECK_CODE(kpl_config_set(cfg, "StrictOrdering", "true"), KPL_OK);
    CHECK_CODE(kpl_config_set(cfg, "MaxBufferedRecords", buffered), KPL_OK);
    CHECK_CODE(kpl_config_set(cfg, "AggregationEnabled", aggregation), KPL_OK);
    kpl_producer *p = producer(cfg);
    waiter *w = calloc((size_t)n, sizeof *w);
    int put = 0;
    snprintf(got, cap, "in-order");
    /* C has no batch put: the records go one by one, each waiting for room. */
    for (; put < n; put++) {
        char data[32];
        snprintf(data, sizeof data, "%d", put);
        waiter_init(&w[put]);
        kpl_error rc = kpl_producer_put(p, NULL, "k", NULL, (const uint8_t *)data, strlen(data), 0,
                                        on_result, &w[put]);
        if (rc != KPL_OK) {
            snprintf(got, cap, "record %d refused: %s", put, kind_of(rc));
            waiter_destroy(&w[put]);
            break;
        }
    }
    for (int i = 0; i < put; i++) wait_for(&w[i]);
    for (int i = 0; i < put && strcmp(got, "in-order") == 0; i++) {
        if (strcmp(w[i].outcome, "Delivered") != 0)
            snprintf(got, cap, "record %d failed: %.*s", i, (int)strcspn(w[i].outcome, ":"),
                     w[i].outcome);
        else if (i > 0 && !before(&w[i - 1], &w[i]))
            snprintf(got, cap, "record %d stored before record %d", i, i - 1);
    }
    kpl_producer_free(p, 5000);
    for (int i = 0; i < put; i++) waiter_destroy(&w[i]);
    free(w);
}

int main(int argc, char **argv) {
    signal(SIGPIPE, SIG_IGN);
    if (argc != 2) {
        fprintf(stderr, "usage: %s CASES_FILE\n", argv[0]);
        return 2;
    }
    FILE *f = fopen(argv[1], "r");
    if (f == NULL) {
        perror(argv[1]);
        return 2;
    }
    sim s;
    if (sim_start(&s, "main", 2, NULL, NULL) != 0) return 1;
    kpl_producer *main_p = producer(base(&s, "main"));
    char *line = NULL;
    size_t line_cap = 0;
    ssize_t len;
    int number = 0, ran = 0, failed = 0;
    while ((len = getline(&line, &line_cap, f)) >= 0) {
        number++;
        if (len > 0 && line[len - 1] == '\n') line[--len] = '\0';
        if (len == 0 || line[0] == '#') continue;
        char *fields[8];
        int nf = 0;
        char *copy = strdup(line), *rest = copy;
        while (nf < 8 && rest != NULL) {
            fields[nf++] = rest;
            rest = strchr(rest, '\t');
            if (rest != NULL) *rest++ = '\0';
        }
        char got[512] = "", want[512] = "";
        if (nf == 4 && strcmp(fields[0], "set") == 0) {
            run_set(fields[1], fields[2], fields[3], got, sizeof got);
            snprintf(want, sizeof want, "%s", fields[3]);
        } else if (nf == 5 && strcmp(fields[0], "record") == 0) {
            run_record(main_p, fields[1], fields[2], fields[3], got, sizeof got);
            snprintf(want, sizeof want, "%s", fields[4]);
        } else if (nf == 5 && strcmp(fields[0], "failed") == 0) {
            run_failed(&s, fields[1], fields[2], got, sizeof got);
            snprintf(want, sizeof want, "%s\t%s", fields[3], fields[4]);
        } else if (nf == 4 && strcmp(fields[0], "order") == 0) {
            run_order(&s, atoi(fields[1]), fields[2], fields[3], got, sizeof got);
            snprintf(want, sizeof want, "in-order");
        } else {
            fprintf(stderr, "cases.tsv:%d: cannot read %s\n", number, line);
            failed++;
        }
        free(copy);
        ran++;
        if (strcmp(got, want) != 0 && want[0] != '\0') {
            fprintf(stderr, "cases.tsv:%d: %s: got \"%s\"\n", number, line, got);
            failed++;
        }
    }
    free(line);
    fclose(f);
    kpl_producer_free(main_p, 5000);
    sim_stop(&s);
    failed += g_failures;
    printf("c conformance: %d cases, %d failed\n", ran, failed);
    return failed || ran < 30 ? 1 : 0;
}
