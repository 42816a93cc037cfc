#!/usr/bin/env python3
"""Markdown table + PNG chart from the rows run.sh collected."""
import argparse, json

a = argparse.ArgumentParser()
a.add_argument("--rows"); a.add_argument("--versions"); a.add_argument("--records", type=int)
a.add_argument("--md"); a.add_argument("--png")
o = a.parse_args()
rows = [json.loads(l) for l in open(o.rows) if l.strip()]
v = json.load(open(o.versions))
LABEL = {"rust": "kpl-rs (Rust, `kpl perf`)", "c": "kpl-rs from C (kpl-ffi)", "node": "kpl-rs from Node",
         "python": "kpl-rs from Python", "kpl-java": "KPL 1.x (Java + native daemon)", "aiokpl": "aiokpl (Python)",
         "agg-boto3": "aws-kinesis-agg + boto3", "agg-node": "aws-kinesis-agg + @aws-sdk/client-kinesis",
         "go": "a8m/kinesis-producer (Go)"}


def f(x, fmt="{:,.0f}"):
    return "–" if x is None else fmt.format(x)


lines = [f"# Producers side by side against kpl-sim ({o.records:,} records)", "",
         f"Workload: {o.records:,} user records of 100 bytes over 1000 partition keys, one stream of 4 shards, "
         "`kpl sim --unlimited` on loopback (a fresh simulator per peer), aggregation on where the peer has it. "
         "CPU and peak RSS are those of the producer process (`/usr/bin/time -v`), the simulator excluded. "
         "\"Held by sim\" is the count of user records read back from the stream (TRIM_HORIZON, deaggregated).", "",
         f"Machine: {v['nproc']} cores, {v['cpu']}; load average at the end: {v['loadavg_before_report']}. "
         "**Shared machine: other engineers were building at the same time, so the figures are noisy.**", "",
         "| Peer | Status | Wall s | Records/s | CPU s per 1M | Records per CPU-s | Peak RSS MB | p50 ms | p99 ms | Held by sim | Delivery |",
         "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---|"]
for r in rows:
    st = r.get("status", "?").replace("|", "\\|")
    lines.append("| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |".format(
        LABEL.get(r["peer"], r["peer"]), st, f(r.get("wall_s"), "{:.2f}"), f(r.get("records_per_sec")),
        f(r.get("cpu_s_per_M"), "{:.2f}"), f(r.get("records_per_cpu_s")), f(r.get("peak_rss_mb"), "{:.0f}"),
        f(r.get("latency_ms_p50"), "{:.1f}"), f(r.get("latency_ms_p99"), "{:.1f}"),
        f(r.get("sim_user_records")), r.get("delivery", "–")))
lines += ["", "Notes:", "",
          "- Records/s is the driver's own figure (first put to last result, or to the last PutRecords reply for peers "
          "without per-record results); wall s includes process start-up (JVM, interpreter, producer set-up).",
          "- p50/p99 are put-to-result latencies, only for peers that report a result per record "
          "(aws-kinesis-agg + SDK and a8m do not).",
          "- Every driver offers the whole workload as fast as the producer takes it, without its own backpressure, "
          "so put-to-result latency includes queueing behind the rest of the workload (it is not the latency at a "
          "sustainable rate), and drivers that keep a future/promise per record (kpl-rs Node `put()`, the KPL's "
          "ListenableFuture + callback) hold 1M of them at once: that is in their RSS and CPU.",
          "- KPL 1.x: peak RSS is `/usr/bin/time`'s maximum over the process tree's single largest process "
          "(Java or its native daemon), not their sum; CPU includes the daemon only if it was reaped by the JVM.",
          "", "Versions:", ""]
for k in ("kpl-rs", "amazon-kinesis-producer", "pip", "npm", "node", "java", "go", "python"):
    lines.append(f"- {k}: " + " ".join(str(v.get(k, "")).split()))
open(o.md, "w").write("\n".join(lines) + "\n")

try:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    ok = [r for r in rows if r.get("records_per_cpu_s")]
    names = [LABEL.get(r["peer"], r["peer"]).split(" (")[0] if r["peer"] not in ("c", "node", "rust") else
             {"rust": "kpl-rs Rust", "c": "kpl-rs C", "node": "kpl-rs Node"}[r["peer"]] for r in ok]
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(12, 0.6 * len(ok) + 2))
    ax1.barh(names, [r["records_per_cpu_s"] for r in ok], color="tab:blue")
    ax1.set_xlabel("user records per CPU-second (higher is better)")
    ax2.barh(names, [r.get("peak_rss_mb") or 0 for r in ok], color="tab:orange")
    ax2.set_xlabel("peak RSS, MB (lower is better)")
    ax2.set_yticklabels([])
    for ax in (ax1, ax2):
        ax.invert_yaxis()
        ax.grid(axis="x", alpha=0.3)
    fig.suptitle(f"{o.records:,} records x 100 B against kpl-sim, {v['nproc']} cores (shared, busy machine)")
    fig.tight_layout()
    fig.savefig(o.png, dpi=110)
except Exception as e:  # the table matters more than the chart
    print("chart not drawn:", e)
