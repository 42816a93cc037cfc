//! Settings by name, ranges, defaults, properties files.

use super::*;

#[test]
fn cloudwatch_follows_a_kinesis_endpoint_outside_aws_only() {
    let sim = Config::builder()
        .endpoint("http://127.0.0.1:4567")
        .build()
        .unwrap();
    assert_eq!(
        sim.cloudwatch_endpoint_url().as_deref(),
        Some("http://127.0.0.1:4567")
    );
    let aws = Config::builder()
        .endpoint("https://kinesis.eu-west-1.amazonaws.com")
        .build()
        .unwrap();
    assert_eq!(
        aws.cloudwatch_endpoint_url(),
        None,
        "the region's CloudWatch"
    );
    let both = Config::builder()
        .endpoint("http://127.0.0.1:4567")
        .set("CloudwatchEndpoint", "http://127.0.0.1:9999")
        .unwrap()
        .build()
        .unwrap();
    assert_eq!(
        both.cloudwatch_endpoint_url().as_deref(),
        Some("http://127.0.0.1:9999")
    );
    assert_eq!(Config::default().cloudwatch_endpoint_url(), None);
}

#[test]
fn defaults_are_the_kpls() {
    let c = Config::builder().build().unwrap();
    assert!(c.aggregation_enabled);
    assert_eq!(c.aggregation_max_count, 4_294_967_295);
    assert_eq!(c.aggregation_max_size, 51_200);
    assert_eq!(c.collection_max_count, 500);
    assert_eq!(c.collection_max_size, 5_242_880);
    assert_eq!(c.record_max_buffered_time, Duration::from_millis(100));
    assert_eq!(c.record_ttl, Duration::from_millis(30_000));
    assert_eq!(c.rate_limit, 150);
    assert_eq!(c.max_connections, 24);
    assert_eq!(c.max_user_record_size, 1_048_576);
}

#[test]
fn every_range_is_enforced_with_the_name_and_the_range() {
    let cases = [
        ("AggregationMaxSize", "63", "from 64 to 10485760"),
        ("AggregationMaxCount", "0", "at least 1"),
        ("CollectionMaxCount", "501", "from 1 to 500"),
        ("CollectionMaxSize", "52223", "at least 52224"),
        ("ConnectTimeout", "99", "from 100 to 300000"),
        ("RequestTimeout", "600001", "from 100 to 600000"),
        ("RecordTtl", "99", "at least 100"),
        ("RateLimit", "0", "at least 1"),
        ("MaxConnections", "257", "from 1 to 256"),
        ("MaxUserRecordSize", "10485761", "from 64 to 10485760"),
        ("KinesisPort", "70000", "from 1 to 65535"),
        ("RecordMaxBufferedTime", "-5", "whole number"),
        ("AggregationEnabled", "yes", "true or false"),
    ];
    for (name, value, allowed) in cases {
        let err = Config::builder().set(name, value).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidConfig);
        let text = err.to_string();
        assert!(
            text.contains(name) && text.contains(value) && text.contains(allowed),
            "{text}"
        );
    }
}

#[test]
fn typed_setters_are_checked_at_build() {
    let err = Config::builder()
        .collection_max_count(0)
        .build()
        .unwrap_err();
    assert!(err.to_string().contains("CollectionMaxCount"), "{err}");
    let err = Config::builder().max_buffered(10, 100).build().unwrap_err();
    assert!(err.to_string().contains("MaxBufferedBytes"), "{err}");
    let err = Config::builder()
        .set("VerifyCertificate", "false")
        .unwrap()
        .build()
        .unwrap_err();
    assert!(err.to_string().contains("CaCertPath"), "{err}");
}

#[test]
fn properties_files_load_and_unknown_keys_are_skipped() {
    let text = "# comment\n! also a comment\nAggregationMaxCount = 100\nRegion: eu-west-1\n\
                MetricsLevel = detailed\nSomethingNew = 1\nKinesisEndpoint = localhost\nKinesisPort = 4567\n";
    let c = Config::builder()
        .properties(text, "test.properties")
        .unwrap()
        .build()
        .unwrap();
    assert_eq!(c.aggregation_max_count, 100);
    assert_eq!(c.region.as_deref(), Some("eu-west-1"));
    assert_eq!(c.endpoint_url().as_deref(), Some("https://localhost:4567"));
    let err = Config::builder()
        .properties("a\nRateLimit = x\n", "f.properties")
        .unwrap_err();
    assert!(err.to_string().contains("f.properties:1"), "{err}");
    let err = Config::builder()
        .properties("RateLimit = x\n", "f.properties")
        .unwrap_err();
    assert!(
        err.to_string().contains("f.properties:1: RateLimit"),
        "{err}"
    );
}

#[test]
fn names_may_be_snake_or_camel_case() {
    let c = Config::builder()
        .set("record_max_buffered_time", "7")
        .unwrap()
        .set("aggregationMaxSize", "1000")
        .unwrap()
        .set("user_record_timeout_in_millis", "5")
        .unwrap()
        .build()
        .unwrap();
    assert_eq!(c.record_max_buffered_time, Duration::from_millis(7));
    assert_eq!(c.aggregation_max_size, 1000);
    assert_eq!(c.user_record_timeout, Duration::from_millis(5));
    // Errors name the setting as the KPL does.
    let err = Config::builder().set("rate_limit", "x").unwrap_err();
    assert!(err.to_string().contains("RateLimit"), "{err}");
}

#[test]
fn unknown_names_are_errors_for_set() {
    let err = Config::builder()
        .set("RecordMaxBuferedTime", "5")
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::UnknownSetting, "{err}");
    assert_eq!(err.setting(), Some("RecordMaxBuferedTime"));
    assert_eq!(err.suggestions(), ["RecordMaxBufferedTime"]);
    assert!(!err.is_retryable());
    // Case styles fold before the distance is measured; a fragment finds
    // the settings that hold it; nothing near, nothing suggested.
    let err = Config::builder().set("max_conections", "5").unwrap_err();
    assert_eq!(err.suggestions(), ["MaxConnections"]);
    let err = Config::builder().set("ttl", "5").unwrap_err();
    assert_eq!(err.suggestions()[0], "RecordTtl");
    let err = Config::builder().set("Colour", "blue").unwrap_err();
    assert!(err.suggestions().is_empty(), "{:?}", err.suggestions());
    assert!(err.message().contains("KPL's names"), "{err}");
    // A value out of range names its setting.
    let err = Config::builder().set("rate_limit", "0").unwrap_err();
    assert_eq!(
        (err.kind(), err.setting()),
        (ErrorKind::InvalidConfig, Some("RateLimit"))
    );
    // Reading back: shown, hidden or unknown.
    let mut b = Config::builder();
    b.apply("ProxyPassword", "pw").unwrap();
    assert_eq!(
        b.get("proxyPassword").unwrap().as_deref(),
        Some("** redacted **")
    );
    assert_eq!(b.get("LogLevel").unwrap(), None);
    assert_eq!(b.get("RateLimit").unwrap().as_deref(), Some("150"));
    assert_eq!(
        b.get("RateLimt").unwrap_err().kind(),
        ErrorKind::UnknownSetting
    );
}

#[test]
fn debug_output_hides_the_secret() {
    let c = Config::builder()
        .credentials("AKID", "very-secret")
        .build()
        .unwrap();
    let text = format!("{:?}", c.credentials);
    assert!(!text.contains("very-secret"), "{text}");
}

#[test]
fn every_shown_setting_reads_back_what_it_shows() {
    // The table is the one place a setting is declared: what `entries`
    // shows for the defaults, `set` takes back to the same configuration.
    let defaults = Config::default();
    let mut builder = Config::builder();
    for (name, value) in defaults.entries() {
        if name == "ProxyPassword" {
            continue; // shown redacted
        }
        builder
            .apply(name, &value)
            .unwrap_or_else(|e| panic!("{name}: {e}"));
    }
    assert!(builder.build().unwrap() == defaults);
    let names: Vec<_> = SETTINGS.iter().map(|s| s.name).collect();
    let shown: Vec<_> = defaults.entries().into_iter().map(|(n, _)| n).collect();
    let hidden: Vec<_> = names.iter().filter(|n| !shown.contains(n)).collect();
    assert_eq!(
        hidden,
        [&"AwsAccessKeyId", &"AwsSecretAccessKey", &"AwsSessionToken"],
        "only the credentials are left out"
    );
}

#[test]
fn a_rejected_value_leaves_the_builder_as_it_was() {
    let mut builder = Config::builder();
    builder.apply("CollectionMaxCount", "200").unwrap();
    let err = builder.apply("CollectionMaxCount", "900").unwrap_err();
    assert!(err.to_string().contains("from 1 to 500"), "{err}");
    assert_eq!(builder.build().unwrap().collection_max_count, 200);
}

#[test]
fn from_parts_applies_the_file_then_the_settings_in_order() {
    let path = std::env::temp_dir().join(format!("kpl-parts-{}.properties", std::process::id()));
    std::fs::write(&path, "RecordTtl = 1000\nAggregationMaxSize = 2000\n").unwrap();
    let c = Config::from_parts(Some(&path), [("record_ttl", "5000"), ("RecordTtl", "7000")])
        .unwrap()
        .build()
        .unwrap();
    assert_eq!(
        c.record_ttl,
        Duration::from_millis(7000),
        "the last one wins"
    );
    assert_eq!(c.aggregation_max_size, 2000, "the file's, not overridden");
    let err = Config::from_parts(Some(&path), [("RateLimit", "x")]).unwrap_err();
    assert!(err.to_string().contains("RateLimit"), "{err}");
    std::fs::remove_file(&path).unwrap();
    let err = Config::from_parts(Some(&path), Vec::<(&str, &str)>::new()).unwrap_err();
    assert!(
        err.to_string().contains("cannot read properties file"),
        "{err}"
    );
}
