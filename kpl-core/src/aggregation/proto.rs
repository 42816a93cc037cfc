//! The protobuf messages of the aggregation format, derived by hand
//! (messages.proto of the reference KPL; no protoc needed).
//!
//! The schema is proto2 with `required` fields. They are declared optional
//! here so the decoder can tell a missing field from a zero one; encoding
//! always sets them, which writes the same bytes as `required` does.

use bytes::Bytes;

/// `AggregatedRecord`: the key tables, then the records.
#[derive(Clone, PartialEq, prost::Message)]
pub(crate) struct AggregatedRecord {
    #[prost(string, repeated, tag = "1")]
    pub partition_key_table: Vec<String>,
    #[prost(string, repeated, tag = "2")]
    pub explicit_hash_key_table: Vec<String>,
    #[prost(message, repeated, tag = "3")]
    pub records: Vec<Record>,
}

/// `Record`: indexes into the key tables and the data.
#[derive(Clone, PartialEq, prost::Message)]
pub(crate) struct Record {
    #[prost(uint64, optional, tag = "1")]
    pub partition_key_index: Option<u64>,
    #[prost(uint64, optional, tag = "2")]
    pub explicit_hash_key_index: Option<u64>,
    #[prost(bytes = "bytes", optional, tag = "3")]
    pub data: Option<Bytes>,
    #[prost(message, repeated, tag = "4")]
    pub tags: Vec<Tag>,
}

/// `Tag`: part of the schema, never set by the KPL.
#[derive(Clone, PartialEq, prost::Message)]
pub(crate) struct Tag {
    #[prost(string, optional, tag = "1")]
    pub key: Option<String>,
    #[prost(string, optional, tag = "2")]
    pub value: Option<String>,
}
