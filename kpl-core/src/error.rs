//! One error type for everything the producer and the format can report.

use std::error::Error as StdError;
use std::fmt;

use crate::record::{Attempt, UserRecord};

/// What went wrong, in a form a program can branch on.
///
/// New kinds may be added in minor releases.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The record breaks a Kinesis or configuration limit (key length, size,
    /// explicit hash key). Fix the record; retrying it unchanged fails again.
    InvalidRecord,
    /// A configuration value is malformed or out of range;
    /// [`Error::setting`] names the setting.
    InvalidConfig,
    /// A setting name is not one of the KPL's (nor one kpl-rs adds):
    /// [`Error::setting`] holds the name given and
    /// [`Error::suggestions`] the closest known names. Retrying never
    /// helps; fix the name.
    UnknownSetting,
    /// The producer's buffer is full; the record was not accepted. Retry
    /// later or use the waiting `put`.
    BufferFull,
    /// Kinesis throttled the record and the producer was told not to retry
    /// (`FailIfThrottled`).
    Throttled,
    /// The record was still not delivered when its `RecordTtl` ran out. Its
    /// attempts tell why.
    Expired,
    /// Kinesis rejected the request or the record with an error that
    /// retrying will not fix; [`Error::code`] holds the service's code.
    Service,
    /// The request could not be completed: connection, TLS, timeout.
    Transport,
    /// The producer was shut down before the record could be delivered, or
    /// after it stopped accepting records.
    ShutDown,
    /// An aggregated record's bytes are inconsistent (bad table index,
    /// missing field, malformed explicit hash key).
    Corrupt,
    /// An aggregated record holds a user record whose hash key lies outside
    /// the hash range of the shard it was read from. Consumers (the KCL)
    /// drop such an aggregate whole.
    OutsideShardRange,
    /// The service answered in a way the producer cannot use.
    Unexpected,
    /// A blocking call was made on a thread that drives an async runtime,
    /// where waiting would stall (or, on a current-thread runtime,
    /// deadlock) the producer it waits for. Use the async API there.
    WrongThread,
    /// The spool holds `SpoolMaxBytes` and `SpoolFullPolicy` refused the
    /// record (`fail`, or `block` when the put could not wait). Retry later.
    SpoolFull,
    /// The record was removed from a full spool to make room for newer
    /// ones (`SpoolFullPolicy = drop_oldest`); it was not delivered.
    Dropped,
    /// The spool cannot be used: its directory cannot be created, read or
    /// written, another producer holds it, or an fsync failed.
    Spool,
}

impl ErrorKind {
    /// A stable, human-readable name for the kind, e.g. `"BufferFull"`.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::InvalidRecord => "InvalidRecord",
            ErrorKind::InvalidConfig => "InvalidConfig",
            ErrorKind::UnknownSetting => "UnknownSetting",
            ErrorKind::BufferFull => "BufferFull",
            ErrorKind::Throttled => "Throttled",
            ErrorKind::Expired => "Expired",
            ErrorKind::Service => "Service",
            ErrorKind::Transport => "Transport",
            ErrorKind::ShutDown => "ShutDown",
            ErrorKind::Corrupt => "Corrupt",
            ErrorKind::OutsideShardRange => "OutsideShardRange",
            ErrorKind::Unexpected => "Unexpected",
            ErrorKind::WrongThread => "WrongThread",
            ErrorKind::SpoolFull => "SpoolFull",
            ErrorKind::Dropped => "Dropped",
            ErrorKind::Spool => "Spool",
        }
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An error from kpl-core.
///
/// Errors about a record carry that record ([`Error::record`],
/// [`Error::into_record`]) and, once it was sent, the attempts made for it.
///
/// ```
/// use kpl_core::{ErrorKind, UserRecord};
///
/// let err = UserRecord::new("", "payload").validate(1024 * 1024).unwrap_err();
/// assert_eq!(err.kind(), ErrorKind::InvalidRecord);
/// assert!(!err.is_retryable());
/// assert!(err.to_string().contains("partition key"));
/// ```
pub struct Error {
    inner: Box<Inner>,
}

struct Inner {
    kind: ErrorKind,
    message: String,
    code: Option<String>,
    record: Option<UserRecord>,
    attempts: Vec<Attempt>,
    setting: Option<String>,
    suggestions: Vec<&'static str>,
    source: Option<Box<dyn StdError + Send + Sync>>,
}

impl Error {
    /// The same error (kind, message, service code) for another record:
    /// errors own their record, so each record of a batch gets its own.
    pub(crate) fn for_another_record(&self) -> Error {
        let copy = Error::new(self.kind(), self.message());
        match self.code() {
            Some(code) => copy.with_code(code),
            None => copy,
        }
    }

    /// A new error of `kind` with a message for a person.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Error {
        Error {
            inner: Box::new(Inner {
                kind,
                message: message.into(),
                code: None,
                record: None,
                attempts: Vec::new(),
                setting: None,
                suggestions: Vec::new(),
                source: None,
            }),
        }
    }

    /// An error the service reported, with its code (e.g.
    /// `"ResourceNotFoundException"`).
    pub fn service(code: impl Into<String>, message: impl Into<String>) -> Error {
        Error::new(ErrorKind::Service, message).with_code(code)
    }

    /// Sets the service error code.
    pub fn with_code(mut self, code: impl Into<String>) -> Error {
        self.inner.code = Some(code.into());
        self
    }

    /// Attaches the record the error belongs to.
    pub fn with_record(mut self, record: UserRecord) -> Error {
        self.inner.record = Some(record);
        self
    }

    /// Attaches the attempts made for the record.
    pub fn with_attempts(mut self, attempts: Vec<Attempt>) -> Error {
        self.inner.attempts = attempts;
        self
    }

    /// An [`ErrorKind::UnknownSetting`] error for `name`, with the known
    /// names closest to it (best first).
    ///
    /// ```
    /// let err = kpl_core::Config::builder().set("RecordMaxBufferTime", "50").unwrap_err();
    /// assert_eq!(err.kind(), kpl_core::ErrorKind::UnknownSetting);
    /// assert_eq!(err.setting(), Some("RecordMaxBufferTime"));
    /// assert_eq!(err.suggestions(), ["RecordMaxBufferedTime"]);
    /// ```
    pub fn unknown_setting(name: &str, suggestions: Vec<&'static str>) -> Error {
        let hint = match suggestions.as_slice() {
            [] => "settings use the KPL's names, e.g. RecordMaxBufferedTime".to_owned(),
            [one] => format!("did you mean {one}?"),
            many => format!("did you mean one of {}?", many.join(", ")),
        };
        let mut e = Error::new(
            ErrorKind::UnknownSetting,
            format!("unknown setting {name:?}; {hint}"),
        )
        .with_setting(name);
        e.inner.suggestions = suggestions;
        e
    }

    /// Names the setting the error is about.
    pub fn with_setting(mut self, name: impl Into<String>) -> Error {
        self.inner.setting = Some(name.into());
        self
    }

    /// Attaches the lower-level cause.
    pub fn with_source(mut self, source: impl StdError + Send + Sync + 'static) -> Error {
        self.inner.source = Some(Box::new(source));
        self
    }

    /// The kind of error.
    pub fn kind(&self) -> ErrorKind {
        self.inner.kind
    }

    /// The Kinesis error code, when the service gave one.
    pub fn code(&self) -> Option<&str> {
        self.inner.code.as_deref()
    }

    /// The message, without the kind or the code.
    pub fn message(&self) -> &str {
        &self.inner.message
    }

    /// The setting this error is about, as it was named: for
    /// [`ErrorKind::UnknownSetting`] the unknown name, for
    /// [`ErrorKind::InvalidConfig`] the KPL name of the setting whose value
    /// was refused (when one setting alone was wrong).
    pub fn setting(&self) -> Option<&str> {
        self.inner.setting.as_deref()
    }

    /// For [`ErrorKind::UnknownSetting`], the known setting names closest
    /// to the one given, best first (empty when none is close).
    pub fn suggestions(&self) -> &[&'static str] {
        &self.inner.suggestions
    }

    /// The record this error is about, if any.
    pub fn record(&self) -> Option<&UserRecord> {
        self.inner.record.as_ref()
    }

    /// Takes the record back, e.g. to put it again after `BufferFull`.
    pub fn into_record(self) -> Option<UserRecord> {
        self.inner.record
    }

    /// Takes the record out, leaving the rest of the error intact.
    pub fn take_record(&mut self) -> Option<UserRecord> {
        self.inner.record.take()
    }

    /// The attempts made to deliver the record, oldest first (for a record
    /// tried more than six times: the first and the five latest).
    pub fn attempts(&self) -> &[Attempt] {
        &self.inner.attempts
    }

    /// Whether the same record may succeed if it is put again later.
    ///
    /// True for a full buffer, throttling, expiry, transport failures and
    /// the service's transient codes; false for invalid records or
    /// configuration, permanent service errors, corrupt data and shutdown.
    pub fn is_retryable(&self) -> bool {
        match self.inner.kind {
            ErrorKind::BufferFull
            | ErrorKind::Throttled
            | ErrorKind::Expired
            | ErrorKind::SpoolFull
            | ErrorKind::Transport => true,
            ErrorKind::Service => !matches!(
                crate::codes::disposition_of(self),
                crate::codes::Disposition::Fail | crate::codes::Disposition::StreamGone
            ),
            _ => false,
        }
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("Error");
        d.field("kind", &self.inner.kind)
            .field("message", &self.inner.message);
        if let Some(code) = &self.inner.code {
            d.field("code", code);
        }
        if let Some(record) = &self.inner.record {
            d.field("record", record);
        }
        if let Some(setting) = &self.inner.setting {
            d.field("setting", setting);
        }
        if !self.inner.suggestions.is_empty() {
            d.field("suggestions", &self.inner.suggestions);
        }
        if !self.inner.attempts.is_empty() {
            d.field("attempts", &self.inner.attempts.len());
        }
        if let Some(source) = &self.inner.source {
            d.field("source", source);
        }
        d.finish()
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.inner.code {
            Some(code) => write!(f, "{} ({}): {}", self.inner.kind, code, self.inner.message),
            None => write!(f, "{}: {}", self.inner.kind, self.inner.message),
        }
    }
}

impl StdError for Error {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        self.inner
            .source
            .as_deref()
            .map(|s| s as &(dyn StdError + 'static))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retryability_follows_kind_and_code() {
        assert!(Error::new(ErrorKind::BufferFull, "full").is_retryable());
        assert!(Error::service("InternalFailure", "x").is_retryable());
        assert!(!Error::service("ResourceNotFoundException", "x").is_retryable());
        assert!(!Error::service("AccessDeniedException", "x").is_retryable());
        assert!(!Error::new(ErrorKind::ShutDown, "x").is_retryable());
    }

    #[test]
    fn display_names_kind_and_code() {
        let e = Error::service("AccessDeniedException", "not allowed");
        assert_eq!(
            e.to_string(),
            "Service (AccessDeniedException): not allowed"
        );
    }
}
