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
import java.util.Arrays;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.atomic.AtomicLong;
import software.amazon.awssdk.auth.credentials.AwsBasicCredentials;
import software.amazon.awssdk.auth.credentials.StaticCredentialsProvider;

/** The reference KPL 1.x against kpl-sim's TLS port: addUserRecord per
 * record with a callback per future (put-to-result latency), flushSync,
 * one JSON line.  Main HOST PORT STREAM N SIZE KEYS */
public final class Main {
  public static void main(String[] a) throws Exception {
    String host = a[0];
    long port = Long.parseLong(a[1]);
    String stream = a[2];
    int n = Integer.parseInt(a[3]), size = Integer.parseInt(a[4]), keys = Integer.parseInt(a[5]);
    KinesisProducerConfiguration cfg = new KinesisProducerConfiguration()
        .setRegion("us-east-1")
        .setKinesisEndpoint(host).setKinesisPort(port)
        .setStsEndpoint(host).setStsPort(port)
        .setCloudwatchEndpoint(host).setCloudwatchPort(port)
        .setVerifyCertificate(false)
        .setMetricsLevel("none")
        .setAggregationEnabled(true)
        .setRecordMaxBufferedTime(100)
        .setRateLimit(1000000)
        .setCredentialsProvider(StaticCredentialsProvider.create(AwsBasicCredentials.create("AKIDLOCALTEST", "local-test-secret")));
    KinesisProducer kp = new KinesisProducer(cfg);
    double[] lat = new double[n];
    AtomicLong failed = new AtomicLong();
    CountDownLatch left = new CountDownLatch(n);
    long t0 = System.nanoTime();
    for (int i = 0; i < n; i++) {
      ByteBuffer data = ByteBuffer.allocate(size).order(ByteOrder.LITTLE_ENDIAN);
      Arrays.fill(data.array(), (byte) (97 + i % 26));
      data.putInt(0, i);
      final int idx = i;
      final long sent = System.nanoTime();
      ListenableFuture<UserRecordResult> f = kp.addUserRecord(stream, "pk-" + (i % keys), data);
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
    kp.destroy();
    Arrays.sort(lat);
    System.out.printf("{\"records\":%d,\"seconds\":%.4f,\"records_per_sec\":%.0f,\"latency_ms_p50\":%.3f,\"latency_ms_p99\":%.3f,\"failed\":%d}%n",
        n, secs, n / secs, lat[n / 2], lat[(int) (n * 0.99)], failed.get());
    System.exit(0);
  }
}
