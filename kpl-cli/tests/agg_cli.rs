//! `kpl agg` and `kpl deagg` as a user runs them: round trips, the input
//! shapes they accept, and how they report bad input (the line or record,
//! the problem, a non-zero exit, the good records still printed, no panic).

use std::io::Write;
use std::process::{Command, Output, Stdio};

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde_json::{Value, json};

const MAX_HASH_KEY: &str = "340282366920938463463374607431768211455";

fn kpl(args: &[&str], stdin: &[u8]) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_kpl"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("kpl starts");
    let mut input = child.stdin.take().expect("stdin");
    let stdin = stdin.to_vec();
    // Write from another thread so a large output cannot deadlock us.
    let writer = std::thread::spawn(move || {
        // kpl may stop reading early (bad input); a broken pipe is fine.
        let _ = input.write_all(&stdin);
    });
    let output = child.wait_with_output().expect("kpl runs");
    writer.join().expect("writer thread");
    output
}

fn stdout_lines(output: &Output) -> Vec<Value> {
    String::from_utf8(output.stdout.clone())
        .expect("stdout is UTF-8")
        .lines()
        .map(|line| serde_json::from_str(line).expect("stdout lines are JSON"))
        .collect()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

fn user_line(pk: &str, data: &[u8], ehk: Option<&str>) -> String {
    let mut line = json!({"PartitionKey": pk, "Data": BASE64.encode(data)});
    if let Some(ehk) = ehk {
        line["ExplicitHashKey"] = json!(ehk);
    }
    line.to_string()
}

fn lines(lines: &[String]) -> Vec<u8> {
    let mut text = lines.join("\n");
    text.push('\n');
    text.into_bytes()
}

/// Exit code 1 (a clean failure), not 101 (a panic) or a signal.
fn assert_clean_failure(output: &Output) {
    assert_eq!(
        output.status.code(),
        Some(1),
        "expected exit code 1; stderr: {}",
        stderr(output)
    );
    assert!(!stderr(output).contains("panicked"), "{}", stderr(output));
}

fn decoded(value: &Value) -> Vec<u8> {
    BASE64
        .decode(value.as_str().expect("Data is a string"))
        .expect("Data is base64")
}

/// Aggregates `records` with `kpl agg` and returns its output lines.
fn agg(records: &[String], args: &[&str]) -> Vec<Value> {
    let mut all = vec!["agg"];
    all.extend_from_slice(args);
    let output = kpl(&all, &lines(records));
    assert!(output.status.success(), "{}", stderr(&output));
    stdout_lines(&output)
}

fn sample_records() -> Vec<(String, Vec<u8>, Option<String>)> {
    let mut records = vec![
        ("ключ 🔑".to_owned(), "données".as_bytes().to_vec(), None),
        ("empty".to_owned(), Vec::new(), None),
        ("zero".to_owned(), vec![0, 1, 2], Some("0".to_owned())),
        (
            "max".to_owned(),
            vec![0xff; 7],
            Some(MAX_HASH_KEY.to_owned()),
        ),
    ];
    for i in 0..500 {
        records.push((format!("key-{}", i % 37), vec![i as u8; i % 300], None));
    }
    records
}

#[test]
fn agg_then_deagg_round_trips() {
    let records = sample_records();
    let input: Vec<String> = records
        .iter()
        .map(|(pk, data, ehk)| user_line(pk, data, ehk.as_deref()))
        .collect();
    let aggregated = agg(&input, &[]);
    assert!(aggregated.len() > 1, "500 records span several aggregates");
    for record in &aggregated {
        assert!(decoded(&record["Data"]).len() <= 51_200);
    }
    let kinesis_lines: Vec<String> = aggregated.iter().map(Value::to_string).collect();
    let output = kpl(&["deagg"], &lines(&kinesis_lines));
    assert!(output.status.success(), "{}", stderr(&output));
    let users = stdout_lines(&output);
    assert_eq!(users.len(), records.len());
    for (user, (pk, data, ehk)) in users.iter().zip(&records) {
        assert_eq!(user["PartitionKey"], json!(pk));
        assert_eq!(decoded(&user["Data"]), *data);
        assert_eq!(user["ExplicitHashKey"], json!(ehk));
    }
}

#[test]
fn agg_reports_each_bad_line_and_keeps_the_good_ones() {
    let input = [
        user_line("good-1", b"one", None),
        "this is not json".to_owned(),
        r#"{"PartitionKey":"k","Data":"@@not base64@@"}"#.to_owned(),
        user_line("", b"empty partition key", None),
        user_line("k", &[0u8; 200], None),
        user_line("k", b"x", Some("340282366920938463463374607431768211456")),
        user_line("k", b"x", Some("-1")),
        r#"{"PartitionKey":"k"}"#.to_owned(),
        r#"{"PartitionKey":"k","Data":"","Unknown":1}"#.to_owned(),
        user_line("good-2", b"two", None),
    ];
    let output = kpl(&["agg", "--max-record-size", "100"], &lines(&input));
    assert_clean_failure(&output);
    let err = stderr(&output);
    for (line, problem) in [
        (2, "not a user record"),
        (3, "base64"),
        (4, "partition key has 0 characters"),
        (5, "201 bytes"),
        (6, "explicit hash key"),
        (7, "explicit hash key \"-1\""),
        (8, "Data"),
        (9, "Unknown"),
    ] {
        let line_text = format!("line {line}: ");
        let reported = err
            .lines()
            .find(|l| l.contains(&line_text))
            .unwrap_or_else(|| panic!("line {line} not reported in:\n{err}"));
        assert!(
            reported.contains(problem),
            "line {line}: expected {problem:?} in {reported:?}"
        );
    }
    assert!(
        !err.contains("line 1:") && !err.contains("line 10:"),
        "{err}"
    );
    // The two good records still come out, aggregated together.
    let out = stdout_lines(&output);
    assert_eq!(out.len(), 1);
    let deagg = kpl(&["deagg"], &lines(&[out[0].to_string()]));
    let users = stdout_lines(&deagg);
    let keys: Vec<&str> = users
        .iter()
        .map(|u| u["PartitionKey"].as_str().unwrap())
        .collect();
    assert_eq!(keys, ["good-1", "good-2"]);
}

#[test]
fn agg_oversized_record_is_rejected_by_default_limit() {
    let big = vec![b'x'; 1 << 20]; // 1 MiB of data + 1 byte of key: over 1 MiB
    let output = kpl(&["agg"], &lines(&[user_line("k", &big, None)]));
    assert_clean_failure(&output);
    assert!(stderr(&output).contains("line 1: record is 1048577 bytes"));
    assert!(output.stdout.is_empty());
    // Exactly 1 MiB, key included, is fine and goes out plain.
    let ok = kpl(&["agg"], &lines(&[user_line("k", &big[1..], None)]));
    assert!(ok.status.success(), "{}", stderr(&ok));
    assert_eq!(stdout_lines(&ok)[0]["PartitionKey"], "k");
}

#[test]
fn agg_single_record_goes_out_plain() {
    let out = agg(&[user_line("alone", b"data", Some("42"))], &[]);
    assert_eq!(
        out,
        [json!({"PartitionKey": "alone", "ExplicitHashKey": "42", "Data": BASE64.encode("data")})]
    );
}

#[test]
fn agg_respects_max_count() {
    let input: Vec<String> = (0..10)
        .map(|i| user_line(&format!("k{i}"), b"d", None))
        .collect();
    let out = agg(&input, &["--max-count", "3"]);
    assert_eq!(out.len(), 4); // 3 + 3 + 3 aggregated, the last alone and plain
    assert_eq!(out[3]["PartitionKey"], "k9");
}

#[test]
fn deagg_reads_get_records_documents_and_json_lines() {
    let aggregate = agg(
        &[
            user_line("p1", b"one", None),
            user_line("p2", b"two", Some("7")),
        ],
        &[],
    )
    .remove(0);
    let document = json!({
        "Records": [
            {
                "SequenceNumber": "49590338271490256608559692538361571095921575989136588898",
                "ApproximateArrivalTimestamp": 1735689600.0,
                "Data": aggregate["Data"],
                "PartitionKey": "a",
                "EncryptionType": "NONE"
            },
            {
                "SequenceNumber": "49590338271490256608559692538361571095921575989136588899",
                "Data": BASE64.encode("plain record"),
                "PartitionKey": "plain"
            }
        ],
        "NextShardIterator": "AAAAAAAAAAF...",
        "MillisBehindLatest": 0
    });
    // A pretty-printed get-records document followed by one JSON line.
    let mut input = serde_json::to_vec_pretty(&document).unwrap();
    input.extend_from_slice(b"\n");
    input.extend_from_slice(
        json!({"PartitionKey": "line", "Data": BASE64.encode("from a JSON line")})
            .to_string()
            .as_bytes(),
    );
    input.extend_from_slice(b"\n");
    let output = kpl(&["deagg"], &input);
    assert!(output.status.success(), "{}", stderr(&output));
    let users = stdout_lines(&output);
    let summary: Vec<(String, Value, String, Value, u64)> = users
        .iter()
        .map(|u| {
            (
                u["PartitionKey"].as_str().unwrap().to_owned(),
                u["ExplicitHashKey"].clone(),
                String::from_utf8(decoded(&u["Data"])).unwrap(),
                u["SequenceNumber"].clone(),
                u["SubSequenceNumber"].as_u64().unwrap(),
            )
        })
        .collect();
    let seq = |s: &str| json!(s);
    assert_eq!(
        summary,
        [
            (
                "p1".into(),
                Value::Null,
                "one".into(),
                seq("49590338271490256608559692538361571095921575989136588898"),
                0
            ),
            (
                "p2".into(),
                json!("7"),
                "two".into(),
                seq("49590338271490256608559692538361571095921575989136588898"),
                1
            ),
            (
                "plain".into(),
                Value::Null,
                "plain record".into(),
                seq("49590338271490256608559692538361571095921575989136588899"),
                0
            ),
            (
                "line".into(),
                Value::Null,
                "from a JSON line".into(),
                Value::Null,
                0
            ),
        ]
    );
}

#[test]
fn deagg_reports_bad_records_and_keeps_the_good_ones() {
    let input = lines(&[
        json!({"PartitionKey": "ok-1", "Data": BASE64.encode("1"), "SequenceNumber": "11"})
            .to_string(),
        json!({"PartitionKey": "bad", "Data": "%%%", "SequenceNumber": "12"}).to_string(),
        json!({"Data": BASE64.encode("no key")}).to_string(),
        json!({"PartitionKey": "ok-2", "Data": BASE64.encode("2")}).to_string(),
    ]);
    let output = kpl(&["deagg"], &input);
    assert_clean_failure(&output);
    let err = stderr(&output);
    assert!(
        err.contains("record 2: sequence number 12: Data is not valid base64"),
        "{err}"
    );
    assert!(
        err.contains("record 3: not a Kinesis record") && err.contains("PartitionKey"),
        "{err}"
    );
    let keys: Vec<Value> = stdout_lines(&output)
        .iter()
        .map(|u| u["PartitionKey"].clone())
        .collect();
    assert_eq!(keys, [json!("ok-1"), json!("ok-2")]);
}

#[test]
fn deagg_shard_range_rejects_an_aggregate_with_a_record_outside() {
    let aggregate = agg(
        &[
            user_line("low", b"1", Some("0")),
            user_line("high", b"2", Some(MAX_HASH_KEY)),
        ],
        &[],
    )
    .remove(0);
    let mut record = aggregate.clone();
    record["SequenceNumber"] = json!("99");
    let input = lines(&[record.to_string()]);

    let lower_half = format!("0:{}", (1u128 << 127) - 1);
    let output = kpl(&["deagg", "--shard-range", &lower_half], &input);
    assert_clean_failure(&output);
    assert!(
        output.stdout.is_empty(),
        "no record of a rejected aggregate is printed"
    );
    let err = stderr(&output);
    assert!(
        err.contains("record 1: sequence number 99")
            && err.contains("\"high\"")
            && err.contains(MAX_HASH_KEY),
        "{err}"
    );

    let whole = format!("0:{MAX_HASH_KEY}");
    let output = kpl(&["deagg", "--shard-range", &whole], &input);
    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!(stdout_lines(&output).len(), 2);

    let bad_range = kpl(&["deagg", "--shard-range", "5:1"], b"");
    assert_eq!(bad_range.status.code(), Some(2), "clap usage error");
    assert!(stderr(&bad_range).contains("above its end"));
}

#[test]
fn deagg_strict_rejects_a_bad_md5_which_is_otherwise_passed_through() {
    let aggregate = agg(
        &[user_line("a1", b"1", None), user_line("a2", b"2", None)],
        &[],
    )
    .remove(0);
    let mut data = decoded(&aggregate["Data"]);
    let last = data.len() - 1;
    data[last] ^= 0x01; // break the MD5 trailer
    let record = json!({"PartitionKey": "a", "Data": BASE64.encode(&data), "SequenceNumber": "5"});
    let input = lines(&[record.to_string()]);

    let strict = kpl(&["deagg", "--strict"], &input);
    assert_clean_failure(&strict);
    assert!(strict.stdout.is_empty());
    let err = stderr(&strict);
    assert!(
        err.contains("record 1: sequence number 5") && err.contains("MD5"),
        "{err}"
    );

    // Without --strict it is passed on raw, as the KCL does.
    let lenient = kpl(&["deagg"], &input);
    assert!(lenient.status.success(), "{}", stderr(&lenient));
    let users = stdout_lines(&lenient);
    assert_eq!(users.len(), 1);
    assert_eq!(decoded(&users[0]["Data"]), data);
    assert_eq!(users[0]["PartitionKey"], "a");
}

#[test]
fn truncated_or_garbage_input_never_panics() {
    let aggregate = agg(
        &[user_line("t1", b"1", None), user_line("t2", b"2", None)],
        &[],
    )
    .remove(0)
    .to_string();
    let document = format!(r#"{{"Records":[{aggregate},{aggregate}],"NextShardIterator":"x"}}"#);
    let mut cases: Vec<(&str, Vec<u8>)> = vec![
        ("deagg", document.as_bytes()[..document.len() / 2].to_vec()),
        (
            "deagg",
            aggregate.as_bytes()[..aggregate.len() - 3].to_vec(),
        ),
        ("deagg", b"\xff\xfe\x00garbage\x80".to_vec()),
        ("deagg", b"{\"Records\": 5}".to_vec()),
        ("deagg", b"[1, 2, 3]".to_vec()),
        ("deagg", b"null".to_vec()),
        ("agg", b"\xff\xfe\x00garbage\x80\n".to_vec()),
        ("agg", b"{\"PartitionKey\": \"k\", \"Da".to_vec()),
        ("agg", b"[]\n42\nnull\n\"s\"\n".to_vec()),
    ];
    // Aggregates whose protobuf is cut short or scrambled, with a valid MD5.
    for cut in [1usize, 3, 5] {
        let bytes = decoded(&serde_json::from_str::<Value>(&aggregate).unwrap()["Data"]);
        let body = &bytes[4..bytes.len() - 16 - cut];
        let digest = md5_of(body);
        let mut broken = bytes[..4].to_vec();
        broken.extend_from_slice(body);
        broken.extend_from_slice(&digest);
        let line = json!({"PartitionKey": "a", "Data": BASE64.encode(&broken)}).to_string();
        let mut input = line.into_bytes();
        input.push(b'\n');
        cases.push(("deagg-strict", input));
    }
    for (command, input) in cases {
        let output = match command {
            "deagg-strict" => kpl(&["deagg", "--strict"], &input),
            other => kpl(&[other], &input),
        };
        assert_clean_failure(&output);
        assert!(
            !stderr(&output).is_empty(),
            "{command}: the failure is explained"
        );
    }
    // Empty input is not an error: nothing in, nothing out.
    for command in ["agg", "deagg"] {
        let output = kpl(&[command], b"");
        assert!(output.status.success(), "{}", stderr(&output));
        assert!(output.stdout.is_empty());
    }
}

/// MD5 via `kpl agg` would be circular; a tiny independent implementation
/// keeps this test free of extra dependencies.
fn md5_of(input: &[u8]) -> [u8; 16] {
    const S: [u32; 64] = [
        7, 12, 17, 22, 7, 12, 17, 22, 7, 12, 17, 22, 7, 12, 17, 22, 5, 9, 14, 20, 5, 9, 14, 20, 5,
        9, 14, 20, 5, 9, 14, 20, 4, 11, 16, 23, 4, 11, 16, 23, 4, 11, 16, 23, 4, 11, 16, 23, 6, 10,
        15, 21, 6, 10, 15, 21, 6, 10, 15, 21, 6, 10, 15, 21,
    ];
    let k: Vec<u32> = (0..64)
        .map(|i| ((i as f64 + 1.0).sin().abs() * 4_294_967_296.0) as u32)
        .collect();
    let mut message = input.to_vec();
    message.push(0x80);
    while message.len() % 64 != 56 {
        message.push(0);
    }
    message.extend_from_slice(&((input.len() as u64) * 8).to_le_bytes());
    let (mut a0, mut b0, mut c0, mut d0) = (
        0x6745_2301u32,
        0xefcd_ab89u32,
        0x98ba_dcfeu32,
        0x1032_5476u32,
    );
    for chunk in message.chunks(64) {
        let m: Vec<u32> = chunk
            .chunks(4)
            .map(|w| u32::from_le_bytes([w[0], w[1], w[2], w[3]]))
            .collect();
        let (mut a, mut b, mut c, mut d) = (a0, b0, c0, d0);
        for i in 0..64 {
            let (f, g) = match i / 16 {
                0 => ((b & c) | (!b & d), i),
                1 => ((d & b) | (!d & c), (5 * i + 1) % 16),
                2 => (b ^ c ^ d, (3 * i + 5) % 16),
                _ => (c ^ (b | !d), (7 * i) % 16),
            };
            let f = f.wrapping_add(a).wrapping_add(k[i]).wrapping_add(m[g]);
            a = d;
            d = c;
            c = b;
            b = b.wrapping_add(f.rotate_left(S[i]));
        }
        a0 = a0.wrapping_add(a);
        b0 = b0.wrapping_add(b);
        c0 = c0.wrapping_add(c);
        d0 = d0.wrapping_add(d);
    }
    let mut out = [0u8; 16];
    for (i, word) in [a0, b0, c0, d0].iter().enumerate() {
        out[i * 4..i * 4 + 4].copy_from_slice(&word.to_le_bytes());
    }
    out
}

#[test]
fn md5_helper_is_right() {
    let hex: String = md5_of(b"").iter().map(|b| format!("{b:02x}")).collect();
    assert_eq!(hex, "d41d8cd98f00b204e9800998ecf8427e");
}
