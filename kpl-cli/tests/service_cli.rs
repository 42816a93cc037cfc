//! The `kpl` command against kpl-sim over TLS, by ARN, and through a real
//! HTTP proxy (tinyproxy from Debian's packages, started here with its own
//! configuration on loopback and stopped by PID): every client the command
//! makes honours CaCertPath and the proxy settings, and proxy credentials
//! appear in no output.

use std::io::Write;
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

use kpl_sim::{Sim, SimConfig};

const KEYS: [&str; 4] = [
    "--set",
    "AwsAccessKeyId=AKIDLOCALTEST",
    "--set",
    "AwsSecretAccessKey=local-test-secret",
];

fn kpl(args: &[&str], env: &[(&str, &str)], stdin: &str) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_kpl"));
    cmd.args(args)
        .args(KEYS)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for v in [
        "HTTPS_PROXY",
        "https_proxy",
        "HTTP_PROXY",
        "http_proxy",
        "ALL_PROXY",
        "all_proxy",
        "NO_PROXY",
        "no_proxy",
    ] {
        cmd.env_remove(v);
    }
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().expect("kpl runs");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    // Bounded: a retry loop would show up as this test timing out.
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while child.try_wait().unwrap().is_none() {
        if std::time::Instant::now() > deadline {
            child.kill().unwrap();
            panic!("kpl {args:?} did not end within 60 s");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().unwrap()
}

/// `kpl` off the runtime's threads (the simulator runs on them).
async fn kpl_async(
    args: Vec<String>,
    env: Vec<(&'static str, String)>,
    stdin: &'static str,
) -> Output {
    tokio::task::spawn_blocking(move || {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
        kpl(&args, &env, stdin)
    })
    .await
    .unwrap()
}

fn text(o: &Output) -> String {
    format!(
        "status {:?}\nstdout:\n{}\nstderr:\n{}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("kpl-cli-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

async fn tls_sim(dir: &std::path::Path) -> (Sim, String, String) {
    let sim = Sim::start(SimConfig::default().tls(true).unlimited())
        .await
        .unwrap();
    let ca = dir.join("ca.pem");
    std::fs::write(&ca, sim.ca_pem().unwrap()).unwrap();
    let endpoint = sim.tls_endpoint().unwrap();
    (sim, endpoint, ca.display().to_string())
}

/// tinyproxy in the foreground on a free loopback port, its log in a file;
/// killed (by PID) when dropped.
struct Tinyproxy {
    child: Child,
    port: u16,
    log: PathBuf,
}

impl Tinyproxy {
    /// `None` when tinyproxy is not installed outside CI (scripts/test.sh
    /// installs it); in CI its absence is a failure.
    fn start(
        dir: &std::path::Path,
        auth: Option<(&str, &str)>,
        connect_port: u16,
    ) -> Option<Tinyproxy> {
        if Command::new("tinyproxy").arg("-v").output().is_err() {
            assert!(
                std::env::var_os("CI").is_none(),
                "tinyproxy is not installed: scripts/test.sh installs it"
            );
            eprintln!("skipped: tinyproxy is not installed (apt-get install tinyproxy)");
            return None;
        }
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let conf = dir.join(format!("tinyproxy-{port}.conf"));
        let log = dir.join(format!("tinyproxy-{port}.log"));
        let mut text = format!(
            "Port {port}\nListen 127.0.0.1\nTimeout 60\nLogLevel Connect\nMaxClients 100\nAllow 127.0.0.1\nConnectPort {connect_port}\n"
        );
        if let Some((user, password)) = auth {
            text.push_str(&format!("BasicAuth {user} {password}\n"));
        }
        std::fs::write(&conf, text).unwrap();
        let child = Command::new("tinyproxy")
            .arg("-d")
            .arg("-c")
            .arg(&conf)
            .stdout(std::fs::File::create(&log).unwrap())
            .stderr(Stdio::null())
            .spawn()
            .expect("tinyproxy starts");
        // From here on, Drop stops it (by its PID), whatever happens.
        let proxy = Tinyproxy { child, port, log };
        for _ in 0..100 {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return Some(proxy);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("tinyproxy did not listen on {port}");
    }

    /// CONNECT requests it saw to `port`.
    fn tunnels_to(&self, port: u16) -> usize {
        let log = std::fs::read_to_string(&self.log).unwrap_or_default();
        log.matches(&format!("CONNECT 127.0.0.1:{port} ")).count()
    }
}

impl Drop for Tinyproxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn port_of(endpoint: &str) -> u16 {
    endpoint.rsplit(':').next().unwrap().parse().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn perf_over_tls_trusts_ca_cert_path_in_every_client() {
    let dir = temp_dir("tls");
    let (sim, endpoint, ca) = tls_sim(&dir).await;
    let args = [
        "perf",
        "--endpoint",
        &endpoint,
        "--region",
        "us-east-1",
        "--set",
        &format!("CaCertPath={ca}"),
        "--stream",
        "tls-perf",
        "--shards",
        "2",
        "--records",
        "2000",
        "--verify",
        "--json",
    ]
    .map(str::to_owned);
    let out = kpl_async(args.to_vec(), vec![], "").await;
    assert!(out.status.success(), "{}", text(&out));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["verified"], true, "{report}");
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn put_by_arn() {
    let sim = Sim::start(SimConfig::default().stream("lines", 2))
        .await
        .unwrap();
    let arn = sim.stream_arn("lines").unwrap();
    let endpoint = sim.endpoint();
    let args = [
        "put",
        "--stream",
        &arn,
        "--partition-key",
        "k",
        "--endpoint",
        &endpoint,
        "--region",
        "us-east-1",
    ];
    let out = kpl_async(args.map(str::to_owned).to_vec(), vec![], "first\nsecond\n").await;
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout)
            .matches("shardId-")
            .count(),
        2,
        "{}",
        text(&out)
    );
    let stored: Vec<_> = sim
        .records("lines")
        .unwrap()
        .into_iter()
        .flat_map(|s| s.records)
        .collect();
    assert_eq!(stored.len(), 1, "one aggregate of the two lines");
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn through_an_authenticating_proxy_records_arrive_and_a_wrong_password_fails_clearly() {
    let dir = temp_dir("proxy-auth");
    let (sim, endpoint, ca) = tls_sim(&dir).await;
    let sim_port = port_of(&endpoint);
    let Some(proxy) = Tinyproxy::start(&dir, Some(("kpluser", "Pr0xy-s3cret")), sim_port) else {
        return;
    };
    let common = [
        "--endpoint".to_owned(),
        endpoint.clone(),
        "--region".into(),
        "us-east-1".into(),
        "--set".into(),
        format!("CaCertPath={ca}"),
        "--set".into(),
        "ProxyHost=127.0.0.1".into(),
        "--set".into(),
        format!("ProxyPort={}", proxy.port),
        "--set".into(),
        "ProxyUserName=kpluser".into(),
    ];
    // The producer, and the command's own client (CreateStream, read back), via the proxy.
    let mut args: Vec<String> = [
        "perf",
        "--stream",
        "proxied",
        "--shards",
        "2",
        "--records",
        "3000",
        "--verify",
        "--json",
    ]
    .map(str::to_owned)
    .to_vec();
    args.extend(common.iter().cloned());
    args.extend(["--set".into(), "ProxyPassword=Pr0xy-s3cret".into()]);
    let out = kpl_async(args.to_vec(), vec![], "").await;
    assert!(out.status.success(), "{}", text(&out));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["verified"], true, "{report}");
    let tunnels = proxy.tunnels_to(sim_port);
    assert!(tunnels >= 2, "{tunnels} CONNECTs through the proxy");
    assert!(!text(&out).contains("Pr0xy-s3cret"));

    // A wrong password: a clear error at once, no retry loop, no password shown.
    let before = proxy.tunnels_to(sim_port);
    let mut args: Vec<String> = ["put", "--stream", "proxied", "--partition-key", "k"]
        .map(str::to_owned)
        .to_vec();
    args.extend(common.iter().cloned());
    args.extend(["--set".into(), "ProxyPassword=wr0ng-pa55".into()]);
    let out = kpl_async(args, vec![], "one line\n").await;
    let all = text(&out);
    eprintln!("{all}");
    assert!(!out.status.success(), "{all}");
    assert!(all.contains("proxy refused the credentials"), "{all}");
    assert!(all.contains("(after 1 attempts)"), "{all}");
    assert!(!all.contains("wr0ng-pa55"), "{all}");
    // Each call that reaches the proxy (DescribeStreamSummary, ListShards,
    // PutRecords, the last metrics upload at shutdown) tunnels at most
    // twice: the call, and the probe that asks the proxy why it refused.
    let tries = proxy.tunnels_to(sim_port) - before;
    assert!(tries <= 8, "{tries} CONNECTs for one record: a retry loop");
    let stored: usize = sim
        .records("proxied")
        .unwrap()
        .iter()
        .map(|s| s.records.len())
        .sum();
    assert!(stored > 0);
    drop(proxy);
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_proxy_from_the_environment_is_used() {
    let dir = temp_dir("proxy-env");
    let (sim, endpoint, ca) = tls_sim(&dir).await;
    sim.create_stream("env", 1).unwrap();
    let sim_port = port_of(&endpoint);
    let Some(proxy) = Tinyproxy::start(&dir, None, sim_port) else {
        return;
    };
    let proxy_url = format!("http://127.0.0.1:{}", proxy.port);
    let ca = format!("CaCertPath={ca}");
    let args = [
        "put",
        "--stream",
        "env",
        "--partition-key",
        "k",
        "--endpoint",
        &endpoint,
        "--region",
        "us-east-1",
        "--set",
        &ca,
    ];
    let env = vec![("HTTPS_PROXY", proxy_url)];
    let out = kpl_async(args.map(str::to_owned).to_vec(), env, "a\nb\nc\n").await;
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        proxy.tunnels_to(sim_port) >= 1,
        "the request did not go through the proxy"
    );
    let stored: usize = sim
        .records("env")
        .unwrap()
        .iter()
        .map(|s| s.records.len())
        .sum();
    assert_eq!(stored, 1);
    drop(proxy);
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn put_through_a_spool_and_kpl_spool_shows_what_it_holds() {
    let sim = Sim::start(SimConfig::default().stream("spooled", 1))
        .await
        .unwrap();
    let dir = temp_dir("spool").join("spool");
    let args = [
        "put",
        "--stream",
        "spooled",
        "--partition-key",
        "k",
        "--endpoint",
        &sim.endpoint(),
        "--region",
        "us-east-1",
        "--spool-dir",
        dir.to_str().unwrap(),
        "--spool-sync",
        "always",
    ];
    let out = kpl_async(
        args.map(str::to_owned).to_vec(),
        vec![],
        "one\ntwo\nthree\n",
    )
    .await;
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout)
            .matches("shardId-")
            .count(),
        3
    );
    let shown = Command::new(env!("CARGO_BIN_EXE_kpl"))
        .args(["spool", dir.to_str().unwrap()])
        .output()
        .unwrap();
    let report = String::from_utf8_lossy(&shown.stdout);
    assert!(shown.status.success(), "{}", text(&shown));
    for line in [
        "pending:           0",
        "damaged stretches: 0",
        "in use by:         nobody",
    ] {
        assert!(report.contains(line), "{line:?} not in:\n{report}");
    }
    let missing = Command::new(env!("CARGO_BIN_EXE_kpl"))
        .args(["spool", "/nonexistent/kpl-spool"])
        .output()
        .unwrap();
    assert!(!missing.status.success());
    assert!(String::from_utf8_lossy(&missing.stderr).contains("cannot read spool directory"));
    sim.shutdown().await;
}
