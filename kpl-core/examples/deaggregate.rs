//! The KPL's aggregation format, no network: packs user records into one
//! Kinesis record and reads them back as the KCL would.
//!
//! ```sh
//! cargo run -p kpl-core --example deaggregate
//! ```
use kpl_core::UserRecord;
use kpl_core::aggregation::{Aggregator, deaggregate};

fn main() -> Result<(), kpl_core::Error> {
    // At most 1 MiB or 1,000 user records per Kinesis record.
    let mut aggregator = Aggregator::new(1024 * 1024, 1000);
    for i in 0..5 {
        let record = UserRecord::new(format!("sensor-{i}"), format!("reading {i}"));
        // `add` hands a record back when the aggregate is full.
        assert!(aggregator.add(record).is_ok(), "five small records fit");
    }
    let kinesis_record = aggregator.finish().expect("the aggregator holds records");
    println!(
        "{} user records -> one Kinesis record of {} bytes (partition key {:?})",
        kinesis_record.records.len(),
        kinesis_record.size(),
        kinesis_record.partition_key,
    );
    let records = deaggregate(
        &kinesis_record.partition_key,
        kinesis_record.explicit_hash_key.as_deref(),
        kinesis_record.data.clone(),
    )?;
    for r in records {
        println!(
            "  #{} {}: {}",
            r.sub_sequence_number,
            r.partition_key,
            String::from_utf8_lossy(&r.data)
        );
    }
    Ok(())
}
