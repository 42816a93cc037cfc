#!/usr/bin/env python3
"""One result row (JSON line) for a peer from its /usr/bin/time -v file, its
stdout (last JSON line), the sim's stats and the read-back count."""
import argparse, json, re


def read(path):
    try:
        return open(path).read()
    except (OSError, TypeError):
        return ""


def last_json(text):
    for line in reversed(text.splitlines()):
        line = line.strip()
        if line.startswith("{"):
            try:
                return json.loads(line)
            except ValueError:
                pass
    return None


a = argparse.ArgumentParser()
for f in ("name", "cell", "size", "keys", "records", "rc", "time", "out", "err", "stats", "readback", "setup-error"):
    a.add_argument("--" + f)
o = a.parse_args()
n = int(o.records)
row = {"peer": o.name, "cell": o.cell, "record_size": int(o.size), "keys": int(o.keys), "records": n}
if o.setup_error:
    row["status"] = "not run: " + " ".join(read(o.setup_error).split())[-400:]
    print(json.dumps(row))
    raise SystemExit
t = read(o.time)


def field(label):
    for line in t.splitlines():
        if line.strip().startswith(label):
            return line.rsplit(": ", 1)[-1].strip()
    return None


wall = field("Elapsed (wall clock) time")
if wall:
    secs = 0.0
    for part in wall.split(":"):
        secs = secs * 60 + float(part)
    row["wall_s"] = round(secs, 3)
user, sys_ = field("User time (seconds)"), field("System time (seconds)")
if user and sys_:
    cpu = float(user) + float(sys_)
    row["cpu_s"] = round(cpu, 3)
    row["cpu_s_per_M"] = round(cpu / n * 1e6, 3)
    row["records_per_cpu_s"] = round(n / cpu) if cpu else None
rss = field("Maximum resident set size (kbytes)")
if rss:
    row["peak_rss_mb"] = round(int(rss) / 1024, 1)
j = last_json(read(o.out))
if j and j.get("tree_cpu_s"):
    # The driver measured its whole process tree (the KPL's JVM and its
    # native daemon) from /proc: /usr/bin/time counts a child only if the
    # parent reaped it, and reports the largest process's peak, not the sum.
    cpu = j["tree_cpu_s"]
    row["cpu_s"] = cpu
    row["cpu_s_per_M"] = round(cpu / n * 1e6, 3)
    row["records_per_cpu_s"] = round(n / cpu) if cpu else None
    row["peak_rss_mb"] = round(j["tree_peak_rss_mb"], 1)
if j:
    row["driver"] = j
    row["records_per_sec"] = round(j.get("records_per_sec", 0))
    for k in ("latency_ms_p50", "latency_ms_p99"):
        if j.get(k) is not None:
            row[k] = round(j[k], 2)
    row["failed"] = j.get("failed", j.get("failed_kinesis_records"))
stats = last_json(read(o.stats))
if stats:
    row["sim_records_accepted"] = stats.get("records_accepted")
rb = last_json(read(o.readback))
if rb:
    row["sim_user_records"] = rb["user_records"]
    row["sim_distinct_user_records"] = rb["distinct_user_records"]
    u, d = rb["user_records"], rb["distinct_user_records"]
    row["delivery"] = ("exact" if u == n and d == n else
                       f"lost {n - d}" + (f", duplicated {u - d}" if u > d else "") if d < n else
                       f"duplicated {u - d}" if u > d else f"unexpected: {u} user records")
if int(o.rc or 0) != 0 or not j:
    err = " ".join(read(o.err).split())
    row["status"] = ("timed out (run.sh --timeout): " if o.rc == "124" else f"failed (exit {o.rc}): ") + (err[-400:] or "no output")
else:
    row["status"] = "ok"
print(json.dumps(row))
