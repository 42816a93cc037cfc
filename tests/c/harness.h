/* Test harness for the kpl C API: starts `kpl sim` as a subprocess, talks
 * to it over raw HTTP (admin faults, GetShardIterator/GetRecords for
 * reading streams back), base64, and check macros. C99 + POSIX. */
#ifndef KPL_TEST_HARNESS_H
#define KPL_TEST_HARNESS_H

#define _POSIX_C_SOURCE 200809L
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "kpl.h"

static int g_failures = 0;

#define CHECK(cond)                                                              \
    do {                                                                         \
        if (!(cond)) {                                                           \
            fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond); \
            g_failures++;                                                        \
        }                                                                        \
    } while (0)

#define CHECK_CODE(expr, want)                                                   \
    do {                                                                         \
        kpl_error got_ = (expr);                                                 \
        if (got_ != (want)) {                                                    \
            fprintf(stderr, "%s:%d: %s = %s (%s), want %s\n", __FILE__, __LINE__, \
                    #expr, kpl_error_name((int32_t)got_), kpl_last_error_message(), \
                    kpl_error_name((int32_t)(want)));                            \
            g_failures++;                                                        \
        }                                                                        \
    } while (0)

typedef struct sim {
    pid_t pid;
    int port;
    int out_fd; /* the sim's stdout, kept open (it prints more later) */
    char endpoint[64];
} sim;

/* Starts `$KPL_BIN sim --port 0 --stream STREAM:SHARDS [extra...]` and reads
 * its first stdout line for the port. Returns 0 on success. */
static int sim_start(sim *s, const char *stream, int shards, const char *extra1,
                     const char *extra2) {
    const char *bin = getenv("KPL_BIN");
    if (bin == NULL || bin[0] == '\0') bin = "target/debug/kpl";
    char spec[128];
    snprintf(spec, sizeof spec, "%s:%d", stream, shards);
    int fds[2];
    if (pipe(fds) != 0) return -1;
    pid_t pid = fork();
    if (pid < 0) return -1;
    if (pid == 0) {
        dup2(fds[1], 1);
        close(fds[0]);
        close(fds[1]);
        const char *argv[10];
        int n = 0;
        argv[n++] = bin;
        argv[n++] = "sim";
        argv[n++] = "--port";
        argv[n++] = "0";
        argv[n++] = "--stream";
        argv[n++] = spec;
        if (extra1) argv[n++] = extra1;
        if (extra2) argv[n++] = extra2;
        argv[n] = NULL;
        execv(bin, (char *const *)argv);
        fprintf(stderr, "cannot run %s: %s\n", bin, strerror(errno));
        _exit(127);
    }
    close(fds[1]);
    char line[256];
    size_t len = 0;
    while (len + 1 < sizeof line) {
        ssize_t r = read(fds[0], line + len, 1);
        if (r <= 0) break;
        if (line[len] == '\n') break;
        len++;
    }
    line[len] = '\0';
    const char *at = strstr(line, "127.0.0.1:");
    if (at == NULL) {
        fprintf(stderr, "sim did not start: %s\n", line);
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
        close(fds[0]);
        return -1;
    }
    s->pid = pid;
    s->port = atoi(at + strlen("127.0.0.1:"));
    snprintf(s->endpoint, sizeof s->endpoint, "http://127.0.0.1:%d", s->port);
    s->out_fd = fds[0];
    return 0;
}

static void sim_stop(sim *s) {
    if (s->pid > 0) {
        kill(s->pid, SIGTERM);
        waitpid(s->pid, NULL, 0);
        close(s->out_fd);
        s->pid = 0;
    }
}

/* One HTTP/1.1 request with Connection: close; returns the malloc'ed
 * response body (NUL-terminated) or NULL. */
static char *http_request(int port, const char *method, const char *path,
                          const char *target, const char *body) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) return NULL;
    struct sockaddr_in addr;
    memset(&addr, 0, sizeof addr);
    addr.sin_family = AF_INET;
    addr.sin_port = htons((uint16_t)port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&addr, sizeof addr) != 0) {
        close(fd);
        return NULL;
    }
    size_t body_len = body ? strlen(body) : 0;
    char head[512];
    int n = snprintf(head, sizeof head,
                     "%s %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
                     "Content-Type: application/x-amz-json-1.1\r\n%s%s%s"
                     "Content-Length: %zu\r\n\r\n",
                     method, path, target ? "X-Amz-Target: Kinesis_20131202." : "",
                     target ? target : "", target ? "\r\n" : "", body_len);
    if (write(fd, head, (size_t)n) != n ||
        (body_len && write(fd, body, body_len) != (ssize_t)body_len)) {
        close(fd);
        return NULL;
    }
    size_t cap = 1 << 16, len = 0;
    char *buf = malloc(cap);
    for (;;) {
        if (len + 4096 + 1 > cap) {
            cap *= 2;
            buf = realloc(buf, cap);
        }
        ssize_t r = read(fd, buf + len, cap - len - 1);
        if (r <= 0) break;
        len += (size_t)r;
    }
    close(fd);
    buf[len] = '\0';
    char *start = strstr(buf, "\r\n\r\n");
    if (start == NULL || strncmp(buf, "HTTP/1.1 200", 12) != 0) {
        fprintf(stderr, "http %s %s %s failed: %.300s\n", method, path, target ? target : "", buf);
        free(buf);
        return NULL;
    }
    start += 4;
    memmove(buf, start, strlen(start) + 1);
    return buf;
}

/* POST /_sim/faults with a JSON body, e.g. {"latency": 500}. */
static int sim_faults(const sim *s, const char *json) {
    char *r = http_request(s->port, "POST", "/_sim/faults", NULL, json);
    if (r == NULL) return -1;
    free(r);
    return 0;
}

static int b64_value(char c) {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+') return 62;
    if (c == '/') return 63;
    return -1;
}

/* Decodes base64 of `len` chars into a malloc'ed buffer. */
static uint8_t *b64_decode(const char *in, size_t len, size_t *out_len) {
    uint8_t *out = malloc(len / 4 * 3 + 3);
    size_t o = 0;
    uint32_t acc = 0;
    int bits = 0;
    for (size_t i = 0; i < len; i++) {
        int v = b64_value(in[i]);
        if (v < 0) continue; /* padding */
        acc = (acc << 6) | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out[o++] = (uint8_t)(acc >> bits);
        }
    }
    *out_len = o;
    return out;
}

/* Copies the JSON string value after `"field":"` starting at *pos into a
 * malloc'ed string; advances *pos past it. NULL when not found. Values
 * the tests use have no escapes. */
static char *json_string(const char **pos, const char *field) {
    char pat[64];
    snprintf(pat, sizeof pat, "\"%s\":\"", field);
    const char *at = strstr(*pos, pat);
    if (at == NULL) return NULL;
    at += strlen(pat);
    const char *end = strchr(at, '"');
    if (end == NULL) return NULL;
    char *v = malloc((size_t)(end - at) + 1);
    memcpy(v, at, (size_t)(end - at));
    v[end - at] = '\0';
    *pos = end + 1;
    return v;
}

/* Called for every Kinesis record read back. */
typedef void (*kinesis_record_fn)(const char *shard_id, const char *sequence_number,
                                  const char *partition_key, const uint8_t *data,
                                  size_t len, void *ctx);

/* Reads every shard of `stream` (shardId-000000000000.. shards-1) from
 * TRIM_HORIZON through GetRecords. Returns the number of Kinesis records or -1. */
static long sim_read_stream(const sim *s, const char *stream, int shards,
                            kinesis_record_fn fn, void *ctx) {
    long total = 0;
    for (int shard = 0; shard < shards; shard++) {
        char shard_id[64], body[512];
        snprintf(shard_id, sizeof shard_id, "shardId-%012d", shard);
        snprintf(body, sizeof body,
                 "{\"StreamName\":\"%s\",\"ShardId\":\"%s\",\"ShardIteratorType\":\"TRIM_HORIZON\"}",
                 stream, shard_id);
        char *resp = http_request(s->port, "POST", "/", "GetShardIterator", body);
        if (resp == NULL) return -1;
        const char *pos = resp;
        char *iterator = json_string(&pos, "ShardIterator");
        free(resp);
        while (iterator != NULL) {
            char *req = malloc(strlen(iterator) + 64);
            sprintf(req, "{\"ShardIterator\":\"%s\",\"Limit\":10000}", iterator);
            free(iterator);
            iterator = NULL;
            resp = http_request(s->port, "POST", "/", "GetRecords", req);
            free(req);
            if (resp == NULL) return -1;
            long got = 0;
            pos = resp;
            for (;;) {
                char *seq = json_string(&pos, "SequenceNumber");
                if (seq == NULL) break;
                char *data = json_string(&pos, "Data");
                char *key = json_string(&pos, "PartitionKey");
                if (data == NULL || key == NULL) {
                    free(seq);
                    free(data);
                    free(key);
                    free(resp);
                    return -1;
                }
                size_t len;
                uint8_t *bytes = b64_decode(data, strlen(data), &len);
                fn(shard_id, seq, key, bytes, len, ctx);
                free(bytes);
                free(seq);
                free(data);
                free(key);
                got++;
            }
            total += got;
            if (got > 0) {
                const char *p2 = resp;
                iterator = json_string(&p2, "NextShardIterator");
            }
            free(resp);
        }
    }
    return total;
}

/* A producer config for the sim. */
static kpl_config *sim_config(const sim *s, const char *stream) {
    kpl_config *cfg = kpl_config_new();
    CHECK_CODE(kpl_config_set(cfg, "KinesisEndpoint", s->endpoint), KPL_OK);
    CHECK_CODE(kpl_config_set(cfg, "Region", "us-east-1"), KPL_OK);
    CHECK_CODE(kpl_config_set(cfg, "AwsAccessKeyId", "AKIDLOCALTEST"), KPL_OK);
    CHECK_CODE(kpl_config_set(cfg, "AwsSecretAccessKey", "local-test-secret"), KPL_OK);
    if (stream) CHECK_CODE(kpl_config_set(cfg, "StreamName", stream), KPL_OK);
    CHECK_CODE(kpl_config_set(cfg, "RecordMaxBufferedTime", "20"), KPL_OK);
    return cfg;
}

static void sleep_ms(long ms) {
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static int load_u32(const int *p) { return __atomic_load_n(p, __ATOMIC_SEQ_CST); }
static void add_u32(int *p, int v) { __atomic_fetch_add(p, v, __ATOMIC_SEQ_CST); }

#endif
