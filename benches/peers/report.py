#!/usr/bin/env python3
"""Markdown report + PNG chart from the rows run.sh collected, with issue 18's
targets checked against the figures of this one run."""
import argparse, json, statistics

a = argparse.ArgumentParser()
a.add_argument("--rows"); a.add_argument("--versions"); a.add_argument("--base-records", type=int)
a.add_argument("--md"); a.add_argument("--png")
a.add_argument("--memory"); a.add_argument("--latency"); a.add_argument("--lat-rate", type=int)
a.add_argument("--embedded"); a.add_argument("--paced"); a.add_argument("--paced-rate", type=int)
a.add_argument("--kpl-cap", type=int)
o = a.parse_args()


def jsonl(path):
    try:
        return [json.loads(l) for l in open(path) if l.strip()]
    except (OSError, TypeError):
        return []


rows = jsonl(o.rows)
mem, lat, emb, paced = jsonl(o.memory), jsonl(o.latency), jsonl(o.embedded), jsonl(o.paced)
v = json.load(open(o.versions))
try:
    # Measured over 2 s just before the first run.
    busy = int(v["idle_percent_at_start"]) < 90
except (KeyError, ValueError):
    busy = True
CAP = o.kpl_cap
CELLS = {"100b": "100 B, 1000 keys", "1kb": "1 KB, 1000 keys", "10kb": "10 KB, 1000 keys",
         "keys1": "100 B, 1 key", "keys100k": "100 B, 100,000 keys"}
MATRIX = ["rust", "c", "go", "kpl-pooled", "kpl-per-request"]


def label(peer, n=None):
    return {"rust": "kpl-rs (Rust, `kpl perf`)", "c": "kpl-rs from C (kpl-ffi)",
            "node": "kpl-rs from Node (`put` per record)", "node-many": "kpl-rs from Node (`putMany`)",
            "python": "kpl-rs from Python (`put_many`)", "python-put": "kpl-rs from Python (`put` per record)",
            "python-async": "kpl-rs from Python (`AsyncProducer` `await put()` per record)",
            "kpl-java": f"KPL 1.x naive (uncapped, {n or 0:,} futures at once)",
            "kpl-pooled": f"KPL 1.x advised (POOLED, cap {CAP:,})",
            "kpl-per-request": f"KPL 1.x advised (PER_REQUEST, cap {CAP:,})",
            "aiokpl": "aiokpl (Python)", "agg-boto3": "aws-kinesis-agg + boto3",
            "agg-node": "aws-kinesis-agg + @aws-sdk/client-kinesis", "go": "a8m/kinesis-producer (Go)"}.get(peer, peer)


def f(x, fmt="{:,.0f}"):
    return "–" if x is None else fmt.format(x)


def esc(s):
    return str(s).replace("|", "\\|")


by = {(r["peer"], r.get("cell", "100b")): r for r in rows}


def ok(peer, cell="100b"):
    """(row, None) when the peer ran fine at the cell, else (None, why not)."""
    r = by.get((peer, cell))
    if r is None:
        return None, f"{peer} @ {cell} not run (not in --peers/--cells)"
    if r.get("status") != "ok":
        return None, f"{peer} @ {cell}: {r.get('status')}"
    return r, None


HEAD = ("| Peer | Status | Records | Wall s | Records/s | CPU s per 1M | Records per CPU-s | Peak RSS MB "
        "| p50 ms | p99 ms | Held by sim | Delivery |")


def table(sel):
    out = [HEAD, "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|"]
    for r in sel:
        out.append("| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |".format(
            label(r["peer"], r.get("records")), esc(r.get("status", "?")), f(r.get("records")),
            f(r.get("wall_s"), "{:.2f}"), f(r.get("records_per_sec")), f(r.get("cpu_s_per_M"), "{:.2f}"),
            f(r.get("records_per_cpu_s")), f(r.get("peak_rss_mb"), "{:.0f}"),
            f(r.get("latency_ms_p50"), "{:.1f}"), f(r.get("latency_ms_p99"), "{:.1f}"),
            f(r.get("sim_user_records")), r.get("delivery", "–")))
    return out


base = [r for r in rows if r.get("cell", "100b") == "100b"]
n_base = o.base_records
lines = [f"# Producers side by side against kpl-sim ({n_base:,} records of 100 B)", "",
         "Each peer in turn against a fresh `kpl sim --unlimited` on loopback (one stream of 4 shards; the KPL 1.x "
         "over TLS, as its daemon speaks HTTPS only), aggregation on where the peer has it. Every peer is driven "
         "as its documentation advises; the KPL also naively (every record offered at once, no back-pressure), "
         f"labelled so. The KPL advised waits before each put while `getOutstandingRecordsCount()` exceeds "
         f"**{CAP:,}** (the back-pressure loop its README asks for), once per ThreadingModel.", "",
         "CPU is user+sys of the whole producer process (`/usr/bin/time -v`; for the KPL 1.x its JVM **plus** "
         "its native daemon, read from /proc by the driver), the simulator excluded; peak RSS likewise (for the "
         "KPL the sum of the two processes' peaks). \"Held by sim\" is the count of user records read back from "
         "the stream (TRIM_HORIZON, deaggregated); \"Delivery\" compares it with what was put.", "",
         f"Machine: {v['nproc']} cores, {v['cpu']}; CPU idle just before the first run: "
         f"{v.get('idle_percent_at_start', '?')}%; load average at the end: {v['loadavg_before_report']}."
         + (" **Other work held the machine when the run started (under 90% idle): the figures are noisy.**"
            if busy else ""), ""]
targets = []  # (figure, value text, target text, verdict)


def check(name, value, target, met, why=None, fmt="{:.2f}x"):
    if why:
        targets.append((name, "–", target, "not measured: " + why))
    else:
        targets.append((name, fmt.format(value), target, "**met**" if met else "**not met**"))


def ratio(peer_a, peer_b, cell, key="records_per_cpu_s"):
    ra, why_a = ok(peer_a, cell)
    rb, why_b = ok(peer_b, cell)
    why = why_a or why_b
    if not why and not (ra.get(key) and rb.get(key)):
        why = f"no {key} for {peer_a if not ra.get(key) else peer_b} @ {cell}"
    return (None, why) if why else (ra[key] / rb[key], None)


if base:
    lines += ["## 100 B, 1000 keys: every peer", ""] + table(base)

matrix = [r for r in rows if r.get("cell", "100b") != "100b"] + [r for r in base if r["peer"] in MATRIX]
cells_run = [c for c in CELLS if any(r.get("cell", "100b") == c for r in matrix)]
if matrix and len(cells_run) > 1:
    lines += ["", "## Workload matrix: records per CPU-second", "",
              "Counts differ per record size (about the same bytes per run; the simulator holds them all) but "
              "are the same for every peer at one cell. Records per CPU-second is the compared figure.", "",
              "| Peer | " + " | ".join(f"{CELLS[c]} ({f(next((r.get('records') for r in matrix if r.get('cell') == c), None))})"
                                     for c in cells_run) + " |",
              "|---|" + "---:|" * len(cells_run)]
    for p in MATRIX:
        cellv = []
        for c in cells_run:
            r = by.get((p, c))
            cellv.append("–" if r is None else f(r.get("records_per_cpu_s")) if r.get("status") == "ok"
                         else "failed")
        if any(x != "–" for x in cellv):
            lines.append(f"| {label(p)} | " + " | ".join(cellv) + " |")
    for c in cells_run:
        if c == "100b":
            continue
        sel = [r for r in matrix if r.get("cell") == c]
        lines += ["", f"### {CELLS[c]}", ""] + table(sel)

# ---- issue 18 targets ------------------------------------------------------
for cell, want in (("100b", 1.5), ("1kb", 1.2), ("10kb", 1.2)):
    x, why = ratio("rust", "go", cell)
    check(f"kpl-rs / a8m (Go), records per CPU-s, {CELLS[cell]}", x, f">= {want}x", x is not None and x >= want, why)
kpl_best, why = None, None
cands = [ok(p) for p in ("kpl-pooled", "kpl-per-request")]
good = [r for r, _ in cands if r and r.get("records_per_cpu_s")]
if good:
    kpl_best = max(good, key=lambda r: r["records_per_cpu_s"])
x, why = ratio("rust", kpl_best["peer"], "100b") if kpl_best else (None, "; ".join(w for _, w in cands if w))
check("kpl-rs / KPL 1.x advised (the better threading model"
      + (f": {kpl_best['driver'].get('threading_model', kpl_best['peer'])}" if kpl_best else "") + "), records per CPU-s",
      x, ">= 10x", x is not None and x >= 10, why)

m = {r["peer"]: r for r in mem}
mr = m.get("rust")
if mr and mr.get("status") == "ok" and mr.get("bytes_per_record") is not None:
    check(f"Memory per buffered 100-byte record (`kpl perf --buffer-only`, {f(mr.get('buffered_records'))} records)",
          mr["bytes_per_record"], "<= 250 B", mr["bytes_per_record"] <= 250, fmt="{:,.0f} B")
else:
    check("Memory per buffered 100-byte record", None, "<= 250 B", False,
          mr.get("status", "no figure") if mr else "memory section not run")

x, why = ratio("rust", "go", "100b", key="peak_rss_mb")
check(f"Peak RSS of the {n_base:,}-record run, kpl-rs / Go" + ("" if n_base == 1_000_000 else
      f" (the issue names 1,000,000 records; this run used {n_base:,})"), x, "<= 2x", x is not None and x <= 2, why)

emb_ok = [r for r in emb if r.get("status") == "ok" and r.get("records_per_sec")]
if emb_ok:
    med = statistics.median(r["records_per_sec"] for r in emb_ok)
    allv = ", ".join(f(r["records_per_sec"]) for r in emb_ok)
    check(f"`kpl perf --unlimited --records {emb_ok[0].get('records', 0):,}` (embedded simulator), records/s: "
          f"median of {len(emb_ok)} ({allv})", med, ">= 1,000,000/s", med >= 1_000_000, fmt="{:,.0f}/s")
    if len(emb_ok) < len(emb):
        targets.append(("(embedded runs that failed)", str(len(emb) - len(emb_ok)), "", "; ".join(
            esc(r.get("status")) for r in emb if r not in emb_ok)))
else:
    check("`kpl perf --unlimited --records 1000000`, records/s", None, ">= 1,000,000/s", False,
          "; ".join(esc(r.get("status")) for r in emb) or "embedded section not run")

p = {r["peer"]: r for r in paced}


def paced_median(mode):
    """Median CPU s per 1M over the section's `mode-N` runs, and the runs."""
    runs = [r for r in paced if r["peer"].startswith(mode + "-")]
    good = [r["process_cpu_s_per_M"] for r in runs if r.get("status") == "ok" and r.get("process_cpu_s_per_M")]
    if not runs or len(good) < len(runs):
        return None, runs
    return statistics.median(good), runs


paced_cpu, paced_runs = paced_median("paced")
full_cpu, full_runs = paced_median("full")
if paced_cpu and full_cpu:
    x = paced_cpu / full_cpu
    check(f"CPU per 1M records paced at {o.paced_rate:,}/s ({paced_cpu:.2f} s) / full speed ({full_cpu:.2f} s), "
          f"medians of {len(paced_runs)} alternating runs each", x, "<= 2x", x <= 2)
else:
    bad = [r for r in paced_runs + full_runs if r.get("status") != "ok"]
    why = "; ".join(esc(f"{r['peer']}: {r.get('status')}") for r in bad) or "paced section not run"
    check(f"CPU per 1M records paced at {o.paced_rate or 0:,}/s / full speed", None, "<= 2x", False, why)
for drv_peer, pace in (("driver-only", f"paced at {o.paced_rate or 0:,}/s"), ("driver-only-full", "at full speed")):
    drv = p.get(drv_peer)
    if drv and drv.get("status") == "ok" and drv.get("process_cpu_s_per_M") is not None:
        targets.append((f"The driver alone {pace} (`kpl perf --driver-only`: records paced and built as in the "
                        f"runs, put nothing), CPU s per 1M", f"{drv['process_cpu_s_per_M']:.2f} s",
                        "(measured apart)", "figure"))
    else:
        targets.append((f"The driver alone {pace}, CPU s per 1M", "–", "(measured apart)",
                        esc((drv or {}).get("status", "paced section not run"))))

for peer, want in (("python-put", 150_000), ("python-async", 100_000)):
    r, why = ok(peer)
    check(f"{label(peer)}, records/s", r and r.get("records_per_sec"), f">= {want:,}/s",
          bool(r) and r.get("records_per_sec", 0) >= want, why, fmt="{:,.0f}/s")
for peer, want in (("node", 1.0), ("node-many", 1.5)):
    x, why = ratio(peer, "agg-node", "100b", key="records_per_sec")
    check(f"{label(peer)} / aws-kinesis-agg + @aws-sdk/client-kinesis, records/s", x, f">= {want}x",
          x is not None and x >= want, why)

lines += ["", "## Issue 18 targets", "", "Every figure from this run.", "",
          "| Figure | Value | Target | Verdict |", "|---|---:|---|---|"]
lines += [f"| {a_} | {b} | {c} | {d} |" for a_, b, c, d in targets]

if mem:
    lines += ["", "## Memory per buffered record", "",
              "Records put against an endpoint that accepts connections and never answers "
              "(`blackhole.py`), so every one stays buffered; growth of the resident set (JVM plus native "
              "daemon for the KPL) from before the first put to when all are held, divided by the records. "
              "The 100 bytes of each record's data are part of it.", "",
              "| Producer | Status | Records buffered | RSS before MB | RSS after MB | Bytes per record |",
              "|---|---|---:|---:|---:|---:|"]
    for r in mem:
        lines.append("| {} | {} | {} | {} | {} | {} |".format(
            label(r["peer"]) if r["peer"] != "kpl-java" else "KPL 1.x", esc(r.get("status", "?")),
            f(r.get("buffered_records")), f(r.get("rss_before_mb"), "{:.1f}"),
            f(r.get("rss_after_mb"), "{:.1f}"), f(r.get("bytes_per_record"))))
if lat:
    lines += ["", "## Latency at half the sustainable rate", "",
              f"{lat[0].get('records', 0):,} records offered at {o.lat_rate:,}/s into a 1-shard stream with the "
              "simulator's limits on (1 MiB/s and 1000 Kinesis records/s; aggregated 100-byte records sustain about "
              "9,000/s), RecordMaxBufferedTime 100 ms, RateLimit at its default (150). Latency is put to result.", "",
              "| Producer | Status | Records/s | p50 ms | p99 ms | Failed |", "|---|---|---:|---:|---:|---:|"]
    for r in lat:
        lines.append("| {} | {} | {} | {} | {} | {} |".format(
            label(r["peer"]) if r["peer"] != "kpl-java" else "KPL 1.x (default threading, paced)",
            esc(r.get("status", "?")), f(r.get("records_per_sec")),
            f(r.get("latency_ms_p50"), "{:.1f}"), f(r.get("latency_ms_p99"), "{:.1f}"), f(r.get("failed"))))
if emb:
    lines += ["", "## `kpl perf --unlimited` with its embedded simulator", "",
              "The quickstart's command, read-back check on; the simulator runs in the same process, so its CPU "
              "and memory are in these figures.", "",
              "| Run | Status | Records | Records/s | Process CPU s | Peak RSS MB | Verified |", "|---|---|---:|---:|---:|---:|---|"]
    for r in emb:
        lines.append("| {} | {} | {} | {} | {} | {} | {} |".format(
            r["peer"], esc(r.get("status", "?")), f(r.get("records")), f(r.get("records_per_sec")),
            f(r.get("process_cpu_s"), "{:.2f}"), f(r.get("peak_rss_mb"), "{:.0f}"), r.get("verified", "–")))
if paced:
    lines += ["", f"## Paced at {o.paced_rate:,} records/s", "",
              "`kpl perf --rate` and `kpl perf` at full speed, alternating, each against a fresh `kpl sim "
              "--unlimited` (100 B, 1000 keys, `--unlimited`, no read-back); CPU of the whole `kpl perf` process. "
              "`--driver-only` paces and builds the records exactly as the real runs and puts nothing: what the "
              "driver costs by itself.", "",
              "| Run | Status | Records | Records/s | Process CPU s | CPU s per 1M | Peak RSS MB | Failed |",
              "|---|---|---:|---:|---:|---:|---:|---:|"]
    for r in paced:
        lines.append("| {} | {} | {} | {} | {} | {} | {} | {} |".format(
            r["peer"], esc(r.get("status", "?")), f(r.get("records")), f(r.get("records_per_sec")),
            f(r.get("process_cpu_s"), "{:.2f}"), f(r.get("process_cpu_s_per_M"), "{:.2f}"),
            f(r.get("peak_rss_mb"), "{:.0f}"), f(r.get("failed"))))
lines += ["", "Notes:", "",
          "- Records/s is the driver's own figure (first put to last result, or to the last PutRecords reply for peers "
          "without per-record results); wall s includes process start-up (JVM, interpreter, producer set-up).",
          "- p50/p99 are put-to-result latencies, only for peers that report a result per record "
          "(aws-kinesis-agg + SDK and a8m do not). Drivers without back-pressure of their own offer the whole "
          "workload at once, so their latency includes queueing behind the rest of it.",
          "- The naive KPL run and the kpl-rs Node `put()` / Python `put` / `AsyncProducer` drivers keep a future per "
          "record for the whole run: that is in their RSS and CPU.",
          "- Python `AsyncProducer`: `await put()` returns without suspending while there is room, so the driver's "
          "loop yields to the event loop only when the buffer is full; results (and their latency samples) wait "
          "until it does, which is in its p50/p99, not in its records/s (first put to last result).",
          "", "Versions:", ""]
for k in ("kpl-rs", "amazon-kinesis-producer", "a8m/kinesis-producer", "pip", "npm", "node", "java", "go", "python"):
    lines.append(f"- {k}: " + " ".join(str(v.get(k, "")).split()))
open(o.md, "w").write("\n".join(lines) + "\n")

try:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    good = [r for r in base if r.get("records_per_cpu_s")]
    short = {"rust": "kpl-rs Rust", "c": "kpl-rs C", "node": "kpl-rs Node put", "node-many": "kpl-rs Node putMany",
             "python": "kpl-rs Py put_many", "python-put": "kpl-rs Py put", "python-async": "kpl-rs Py async put",
             "kpl-java": "KPL naive", "go": "a8m (Go)", "kpl-pooled": "KPL advised POOLED", "kpl-per-request": "KPL advised PER_REQUEST"}
    names = [short.get(r["peer"], label(r["peer"]).split(" (")[0]) for r in good]
    mx = [p_ for p_ in MATRIX if any(by.get((p_, c), {}).get("records_per_cpu_s") for c in cells_run)]
    cols = 3 if len(cells_run) > 1 and mx else 2
    fig, axes = plt.subplots(1, cols, figsize=(6 * cols, 0.5 * max(len(good), 4) + 2))
    ax1, ax2 = axes[0], axes[1]
    ax1.barh(names, [r["records_per_cpu_s"] for r in good], color="tab:blue")
    ax1.set_xlabel("user records per CPU-second, 100 B (higher is better)")
    ax2.barh(names, [r.get("peak_rss_mb") or 0 for r in good], color="tab:orange")
    ax2.set_xlabel("peak RSS, MB (lower is better)")
    ax2.set_yticklabels([])
    for ax in (ax1, ax2):
        ax.invert_yaxis()
        ax.grid(axis="x", alpha=0.3)
    if cols == 3:
        ax3, width = axes[2], 0.8 / len(mx)
        for i, p_ in enumerate(mx):
            ax3.bar([k + i * width for k in range(len(cells_run))],
                    [by.get((p_, c), {}).get("records_per_cpu_s") or 0 for c in cells_run], width, label=short.get(p_, p_))
        ax3.set_xticks([k + 0.4 - width / 2 for k in range(len(cells_run))], [CELLS[c] for c in cells_run],
                       rotation=20, fontsize=8)
        ax3.set_yscale("log")
        ax3.set_ylabel("records per CPU-second (log)")
        ax3.legend(fontsize=7)
    fig.suptitle(f"Producers against kpl-sim, {v['nproc']} cores" + (" (busy machine)" if busy else ""))
    fig.tight_layout()
    fig.savefig(o.png, dpi=110)
except Exception as e:  # the table matters more than the chart
    print("chart not drawn:", e)
