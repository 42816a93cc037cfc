#!/usr/bin/env python3
"""Markdown table + PNG chart from the rows run.sh collected."""
import argparse, json

a = argparse.ArgumentParser()
a.add_argument("--rows"); a.add_argument("--versions"); a.add_argument("--records", type=int)
a.add_argument("--md"); a.add_argument("--png")
a.add_argument("--memory"); a.add_argument("--latency"); a.add_argument("--lat-rate", type=int)
o = a.parse_args()
def jsonl(path):
    try:
        return [json.loads(l) for l in open(path) if l.strip()]
    except (OSError, TypeError):
        return []


rows = jsonl(o.rows)
mem, lat = jsonl(o.memory), jsonl(o.latency)
v = json.load(open(o.versions))
try:
    # Measured over 2 s just before the first run.
    busy = int(v["idle_percent_at_start"]) < 90
except (KeyError, ValueError, IndexError):
    busy = True
LABEL = {"rust": "kpl-rs (Rust, `kpl perf`)", "c": "kpl-rs from C (kpl-ffi)", "node": "kpl-rs from Node (`put` per record)",
         "python": "kpl-rs from Python", "kpl-java": "KPL 1.x (Java + native daemon)", "aiokpl": "aiokpl (Python)",
         "agg-boto3": "aws-kinesis-agg + boto3", "node-many": "kpl-rs from Node (`putMany`)", "agg-node": "aws-kinesis-agg + @aws-sdk/client-kinesis",
         "go": "a8m/kinesis-producer (Go)"}


def f(x, fmt="{:,.0f}"):
    return "–" if x is None else fmt.format(x)


lines = [f"# Producers side by side against kpl-sim ({o.records:,} records)", "",
         f"Workload: {o.records:,} user records of 100 bytes over 1000 partition keys, one stream of 4 shards, "
         "`kpl sim --unlimited` on loopback (a fresh simulator per peer), aggregation on where the peer has it. "
         "CPU and peak RSS are those of the producer process (`/usr/bin/time -v`), the simulator excluded. "
         "\"Held by sim\" is the count of user records read back from the stream (TRIM_HORIZON, deaggregated).", "",
         f"Machine: {v['nproc']} cores, {v['cpu']}; CPU idle just before the first run: {v.get('idle_percent_at_start', '?')}%; load average at the end: {v['loadavg_before_report']}."
         + (" **Other work held the machine when the run started (under 90% idle): the figures are noisy.**" if busy else ""), "",
         "| Peer | Status | Wall s | Records/s | CPU s per 1M | Records per CPU-s | Peak RSS MB | p50 ms | p99 ms | Held by sim | Delivery |",
         "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---|"]
for r in rows:
    st = r.get("status", "?").replace("|", "\\|")
    lines.append("| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |".format(
        LABEL.get(r["peer"], r["peer"]), st, f(r.get("wall_s"), "{:.2f}"), f(r.get("records_per_sec")),
        f(r.get("cpu_s_per_M"), "{:.2f}"), f(r.get("records_per_cpu_s")), f(r.get("peak_rss_mb"), "{:.0f}"),
        f(r.get("latency_ms_p50"), "{:.1f}"), f(r.get("latency_ms_p99"), "{:.1f}"),
        f(r.get("sim_user_records")), r.get("delivery", "–")))
by = {r["peer"]: r for r in rows}
ours, kpl = by.get("rust", {}), by.get("kpl-java", {})
if ours.get("records_per_cpu_s") and kpl.get("records_per_cpu_s"):
    lines += ["", f"kpl-rs (Rust) / KPL 1.x, records per CPU-second: "
              f"**{ours['records_per_cpu_s'] / kpl['records_per_cpu_s']:.1f}x** (target: at least 5x)."]
if mem:
    lines += ["", f"## Memory per buffered record", "",
              "Records put against an endpoint that accepts connections and never answers "
              "(`blackhole.py`), so every one stays buffered; growth of the resident set (JVM plus native "
              "daemon for the KPL) from before the first put to when all are held, divided by the records. "
              "The 100 bytes of each record's data are part of it.", "",
              "| Producer | Status | Records buffered | RSS before MB | RSS after MB | Bytes per record |",
              "|---|---|---:|---:|---:|---:|"]
    for r in mem:
        lines.append("| {} | {} | {} | {} | {} | {} |".format(
            LABEL.get(r["peer"], r["peer"]), r.get("status", "?").replace("|", "\\|"),
            f(r.get("buffered_records")), f(r.get("rss_before_mb"), "{:.1f}"),
            f(r.get("rss_after_mb"), "{:.1f}"), f(r.get("bytes_per_record"))))
    m = {r["peer"]: r for r in mem}
    if m.get("rust", {}).get("bytes_per_record") and m.get("kpl-java", {}).get("bytes_per_record"):
        lines += ["", f"kpl-rs / KPL 1.x, bytes per buffered record: "
                  f"**{m['rust']['bytes_per_record'] / m['kpl-java']['bytes_per_record']:.2f}** (target: at most 0.20)."]
if lat:
    lines += ["", "## Latency at half the sustainable rate", "",
              f"{lat[0].get('records', 0):,} records offered at {o.lat_rate:,}/s into a 1-shard stream with the "
              "simulator's limits on (1 MiB/s and 1000 Kinesis records/s; aggregated 100-byte records sustain about "
              "9,000/s), RecordMaxBufferedTime 100 ms, RateLimit at its default (150). Latency is put to result.", "",
              "| Producer | Status | Records/s | p50 ms | p99 ms | Failed |", "|---|---|---:|---:|---:|---:|"]
    for r in lat:
        lines.append("| {} | {} | {} | {} | {} | {} |".format(
            LABEL.get(r["peer"], r["peer"]), r.get("status", "?").replace("|", "\\|"), f(r.get("records_per_sec")),
            f(r.get("latency_ms_p50"), "{:.1f}"), f(r.get("latency_ms_p99"), "{:.1f}"), f(r.get("failed"))))
lines += ["", "Notes:", "",
          "- Records/s is the driver's own figure (first put to last result, or to the last PutRecords reply for peers "
          "without per-record results); wall s includes process start-up (JVM, interpreter, producer set-up).",
          "- p50/p99 are put-to-result latencies, only for peers that report a result per record "
          "(aws-kinesis-agg + SDK and a8m do not).",
          "- Every driver offers the whole workload as fast as the producer takes it, without its own backpressure, "
          "so put-to-result latency includes queueing behind the rest of the workload (it is not the latency at a "
          "sustainable rate), and drivers that keep a future/promise per record (kpl-rs Node `put()`, the KPL's "
          "ListenableFuture + callback) hold 1M of them at once: that is in their RSS and CPU.",
          "- KPL 1.x: CPU and peak RSS are the JVM's plus its native daemon's, read by the driver from /proc "
          "(peak RSS as the sum of the two processes' peaks).",
          "", "Versions:", ""]
for k in ("kpl-rs", "amazon-kinesis-producer", "pip", "npm", "node", "java", "go", "python"):
    lines.append(f"- {k}: " + " ".join(str(v.get(k, "")).split()))
open(o.md, "w").write("\n".join(lines) + "\n")

try:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    ok = [r for r in rows if r.get("records_per_cpu_s")]
    names = [LABEL.get(r["peer"], r["peer"]).split(" (")[0] if r["peer"] not in ("c", "node", "node-many", "rust") else
             {"rust": "kpl-rs Rust", "c": "kpl-rs C", "node": "kpl-rs Node put", "node-many": "kpl-rs Node putMany"}[r["peer"]] for r in ok]
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(12, 0.6 * len(ok) + 2))
    ax1.barh(names, [r["records_per_cpu_s"] for r in ok], color="tab:blue")
    ax1.set_xlabel("user records per CPU-second (higher is better)")
    ax2.barh(names, [r.get("peak_rss_mb") or 0 for r in ok], color="tab:orange")
    ax2.set_xlabel("peak RSS, MB (lower is better)")
    ax2.set_yticklabels([])
    for ax in (ax1, ax2):
        ax.invert_yaxis()
        ax.grid(axis="x", alpha=0.3)
    fig.suptitle(f"{o.records:,} records x 100 B against kpl-sim, {v['nproc']} cores" + (" (busy machine)" if busy else ""))
    fig.tight_layout()
    fig.savefig(o.png, dpi=110)
except Exception as e:  # the table matters more than the chart
    print("chart not drawn:", e)
