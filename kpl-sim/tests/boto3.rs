//! A client we did not write: boto3 drives the simulator.
//!
//! Python is `$KPL_PYTHON`, else `<repo>/.venv/bin/python`, else `python3`;
//! the first that can import boto3 is used. None can: the test FAILS.

use std::path::PathBuf;
use std::process::Command;

use kpl_sim::{Sim, SimConfig};

fn python_with_boto3() -> Result<String, String> {
    let repo = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut candidates = vec![];
    if let Ok(p) = std::env::var("KPL_PYTHON") {
        candidates.push(p);
    }
    candidates.push(repo.join(".venv/bin/python").to_string_lossy().into_owned());
    candidates.push("python3".to_string());
    let mut tried = vec![];
    for p in &candidates {
        match Command::new(p).args(["-c", "import boto3"]).output() {
            Ok(o) if o.status.success() => return Ok(p.clone()),
            Ok(o) => tried.push(format!(
                "{p}: {}",
                String::from_utf8_lossy(&o.stderr).trim()
            )),
            Err(e) => tried.push(format!("{p}: {e}")),
        }
    }
    Err(format!(
        "no Python with boto3 found (set KPL_PYTHON or create <repo>/.venv with boto3); tried:\n{}",
        tried.join("\n")
    ))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn boto3_client_round_trip() {
    let python = python_with_boto3().unwrap_or_else(|e| panic!("{e}"));
    let sim = Sim::start(SimConfig::default()).await.unwrap();
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/clients/boto3_client.py");
    let endpoint = sim.endpoint();
    let out = tokio::task::spawn_blocking(move || {
        Command::new(python)
            .arg(script)
            .arg(endpoint)
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "boto3 script failed:\n{stdout}\n{stderr}"
    );
    assert!(stdout.contains("boto3 OK"), "{stdout}");
    assert!(sim.stats().records_accepted >= 200);
    assert!(sim.stream_names().is_empty());
    sim.shutdown().await;
}
