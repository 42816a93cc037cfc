//! `kpl perf` modes that need no simulator: `--buffer-only` against an
//! endpoint that accepts connections and never answers.

use std::io::Read;
use std::net::TcpListener;
use std::process::Command;

use serde_json::Value;

/// Accepts connections on loopback and holds them, reading and never
/// answering, until the test process ends.
fn black_hole() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind loopback");
    let port = listener.local_addr().expect("address").port();
    std::thread::spawn(move || {
        for conn in listener.incoming().flatten() {
            std::thread::spawn(move || {
                let mut conn = conn;
                let mut buf = [0u8; 8192];
                while matches!(conn.read(&mut buf), Ok(n) if n > 0) {}
            });
        }
    });
    port
}

#[test]
fn buffer_only_holds_every_record_and_reports_its_memory() {
    let port = black_hole();
    let output = Command::new(env!("CARGO_BIN_EXE_kpl"))
        .args([
            "perf",
            "--buffer-only",
            "--json",
            "--records",
            "5000",
            "--region",
            "us-east-1",
        ])
        .args(["--endpoint", &format!("http://127.0.0.1:{port}")])
        .args(["--set", "AwsAccessKeyId=x", "--set", "AwsSecretAccessKey=y"])
        .output()
        .expect("kpl runs");
    assert!(
        output.status.success(),
        "kpl perf --buffer-only failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let report: Value = serde_json::from_slice(&output.stdout).expect("one JSON report");
    assert_eq!(report["records"], 5000);
    assert_eq!(report["buffered_records"], 5000, "{report}");
    assert_eq!(report["sent_kinesis_records"], 0, "{report}");
    // The records' data alone is 100 bytes each.
    assert!(
        report["bytes_per_record"].as_f64().unwrap() > 0.0,
        "{report}"
    );
}

#[test]
fn buffer_only_without_an_endpoint_is_refused() {
    let output = Command::new(env!("CARGO_BIN_EXE_kpl"))
        .args(["perf", "--buffer-only"])
        .output()
        .expect("kpl runs");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("--endpoint"), "{stderr}");
}
