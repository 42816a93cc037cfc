package bench;

import software.amazon.kinesis.producer.KinesisProducer;
import software.amazon.kinesis.producer.KinesisProducerConfiguration;
import software.amazon.kinesis.producer.UserRecordResult;
import com.google.common.util.concurrent.FutureCallback;
import com.google.common.util.concurrent.Futures;
import com.google.common.util.concurrent.ListenableFuture;
import com.google.common.util.concurrent.MoreExecutors;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import java.util.stream.Collectors;
import software.amazon.awssdk.auth.credentials.AwsBasicCredentials;
import software.amazon.awssdk.auth.credentials.StaticCredentialsProvider;

/** The reference KPL 1.x against kpl-sim's TLS port, one JSON line per run.
 *
 *  Main throughput HOST PORT STREAM N SIZE KEYS       naive: every record as fast as addUserRecord takes it
 *                                                     (N futures outstanding at once)
 *  Main advised HOST PORT STREAM N SIZE KEYS MODEL CAP as the KPL's README advises: before each put, wait
 *                                                     (1 ms sleeps) while getOutstandingRecordsCount() > CAP;
 *                                                     ThreadingModel MODEL (POOLED or PER_REQUEST)
 *  Main latency    HOST PORT STREAM N SIZE KEYS RATE  paced at RATE records/s (limits on, as configured)
 *  Main memory     HOST PORT STREAM N SIZE KEYS       N records buffered against an endpoint that never
 *                                                     answers; RSS growth per record (JVM + daemon)
 *
 * CPU and memory are read from /proc for the JVM and for the native daemon
 * it starts (a child process), so both count. */
public final class Main {
  static final class Proc {
    final long pid;
    Proc(long pid) { this.pid = pid; }
    /** user + system CPU seconds so far. */
    double cpuSeconds() {
      try {
        String stat = Files.readString(Path.of("/proc/" + pid + "/stat"));
        String[] f = stat.substring(stat.lastIndexOf(')') + 2).split(" ");
        return (Long.parseLong(f[11]) + Long.parseLong(f[12])) / 100.0; // USER_HZ
      } catch (Exception e) { return 0; }
    }
    /** A /proc/PID/status size field (VmRSS, VmHWM) in bytes. */
    long status(String field) {
      try {
        for (String l : Files.readAllLines(Path.of("/proc/" + pid + "/status"))) {
          if (l.startsWith(field + ":")) return Long.parseLong(l.replaceAll("[^0-9]", "")) * 1024;
        }
      } catch (Exception e) { }
      return 0;
    }
  }

  static List<Proc> tree() {
    List<Proc> all = ProcessHandle.current().descendants().map(p -> new Proc(p.pid())).collect(Collectors.toList());
    all.add(0, new Proc(ProcessHandle.current().pid()));
    return all;
  }
  static double treeCpu() { return tree().stream().mapToDouble(Proc::cpuSeconds).sum(); }
  static long treeStatus(String field) { return tree().stream().mapToLong(p -> p.status(field)).sum(); }

  static KinesisProducer producer(String host, long port, KinesisProducerConfiguration cfg) {
    return new KinesisProducer(cfg
        .setRegion("us-east-1")
        .setKinesisEndpoint(host).setKinesisPort(port)
        .setStsEndpoint(host).setStsPort(port)
        .setCloudwatchEndpoint(host).setCloudwatchPort(port)
        .setVerifyCertificate(false)
        .setMetricsLevel("none")
        .setAggregationEnabled(true)
        .setCredentialsProvider(StaticCredentialsProvider.create(
            AwsBasicCredentials.create("AKIDLOCALTEST", "local-test-secret"))));
  }

  static ByteBuffer data(int i, int size) {
    ByteBuffer data = ByteBuffer.allocate(size).order(ByteOrder.LITTLE_ENDIAN);
    Arrays.fill(data.array(), (byte) (97 + i % 26));
    data.putInt(0, i);
    return data;
  }

  public static void main(String[] a) throws Exception {
    String mode = a[0], host = a[1], stream = a[3];
    long port = Long.parseLong(a[2]);
    int n = Integer.parseInt(a[4]), size = Integer.parseInt(a[5]), keys = Integer.parseInt(a[6]);
    switch (mode) {
      case "throughput": timed(host, port, stream, n, size, keys, 0, null, 0); break;
      case "advised": timed(host, port, stream, n, size, keys, 0, a[7], Long.parseLong(a[8])); break;
      case "latency": timed(host, port, stream, n, size, keys, Double.parseDouble(a[7]), null, 0); break;
      case "memory": memory(host, port, stream, n, size, keys); break;
      default: throw new IllegalArgumentException("mode " + mode + ": expected throughput, advised, latency or memory");
    }
    System.exit(0);
  }

  /** Puts N records (paced at rate/s when rate > 0; at most cap outstanding when cap > 0) with a
   *  callback per future; threading null keeps the default ThreadingModel (PER_REQUEST). */
  static void timed(String host, long port, String stream, int n, int size, int keys, double rate,
      String threading, long cap) throws Exception {
    KinesisProducerConfiguration cfg = new KinesisProducerConfiguration().setRecordMaxBufferedTime(100);
    if (rate == 0) cfg.setRateLimit(1000000); // limits off, as the simulator's
    if (threading != null) cfg.setThreadingModel(KinesisProducerConfiguration.ThreadingModel.valueOf(threading));
    KinesisProducer kp = producer(host, port, cfg);
    double[] lat = new double[n];
    AtomicLong failed = new AtomicLong();
    CountDownLatch left = new CountDownLatch(n);
    double cpu0 = treeCpu();
    long t0 = System.nanoTime();
    for (int i = 0; i < n; i++) {
      if (rate > 0) {
        long due = t0 + (long) (i / rate * 1e9);
        long wait = due - System.nanoTime();
        if (wait > 0) TimeUnit.NANOSECONDS.sleep(wait);
      }
      // The back-pressure loop of the KPL's README and sample producer.
      if (cap > 0) {
        while (kp.getOutstandingRecordsCount() > cap) {
          Thread.sleep(1);
        }
      }
      final int idx = i;
      final long sent = System.nanoTime();
      ListenableFuture<UserRecordResult> f = kp.addUserRecord(stream, "pk-" + (i % keys), data(i, size));
      Futures.addCallback(f, new FutureCallback<UserRecordResult>() {
        public void onSuccess(UserRecordResult r) {
          lat[idx] = (System.nanoTime() - sent) / 1e6;
          if (!r.isSuccessful()) failed.incrementAndGet();
          left.countDown();
        }
        public void onFailure(Throwable t) {
          lat[idx] = (System.nanoTime() - sent) / 1e6;
          failed.incrementAndGet();
          left.countDown();
        }
      }, MoreExecutors.directExecutor());
    }
    kp.flushSync();
    left.await();
    double secs = (System.nanoTime() - t0) / 1e9;
    double cpu = treeCpu() - cpu0;
    long hwm = treeStatus("VmHWM");
    kp.destroy();
    Arrays.sort(lat);
    System.out.printf("{\"records\":%d,\"seconds\":%.4f,\"records_per_sec\":%.0f,\"latency_ms_p50\":%.3f,"
        + "\"latency_ms_p99\":%.3f,\"failed\":%d,\"offered_per_sec\":%.0f,\"tree_cpu_s\":%.2f,\"tree_peak_rss_mb\":%.1f,"
        + "\"threading_model\":\"%s\",\"outstanding_cap\":%d}%n",
        n, secs, n / secs, lat[n / 2], lat[(int) (n * 0.99)], failed.get(), rate, cpu, hwm / 1048576.0,
        cfg.getThreadingModel(), cap);
  }

  /** N records held by the producer (the endpoint never answers): RSS growth of JVM + daemon per record. */
  static void memory(String host, long port, String stream, int n, int size, int keys) throws Exception {
    KinesisProducer kp = producer(host, port, new KinesisProducerConfiguration()
        .setRecordTtl(3_600_000).setRequestTimeout(600_000));
    Thread.sleep(2000); // the daemon started and settled
    System.gc();
    long before = treeStatus("VmRSS");
    long t0 = System.nanoTime();
    for (int i = 0; i < n; i++) {
      kp.addUserRecord(stream, "pk-" + (i % keys), data(i, size));
    }
    double secs = (System.nanoTime() - t0) / 1e9;
    // The daemon receives records over a pipe after addUserRecord returns:
    // wait until the tree's RSS stops growing for 2 s.
    long last = treeStatus("VmRSS"), stable = System.nanoTime();
    while (System.nanoTime() - stable < 2_000_000_000L) {
      Thread.sleep(200);
      long now = treeStatus("VmRSS");
      if (now > last + (1 << 20)) stable = System.nanoTime();
      last = Math.max(last, now);
    }
    long after = treeStatus("VmRSS");
    System.out.printf("{\"records\":%d,\"record_size\":%d,\"buffered_records\":%d,\"rss_before_mb\":%.1f,"
        + "\"rss_after_mb\":%.1f,\"bytes_per_record\":%.0f,\"seconds_to_buffer\":%.2f}%n",
        n, size, kp.getOutstandingRecordsCount(), before / 1e6, after / 1e6, (after - before) / (double) n, secs);
    kp.destroy();
  }
}
