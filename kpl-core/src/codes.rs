//! What an error means for the records it concerns: the one place that
//! maps the service's error codes (and the transport's) to an action.

use crate::error::{Error, ErrorKind};

/// What the producer does with records that got an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Disposition {
    /// Send them again: per record at once, a whole request after the
    /// stream's backoff.
    Retry,
    /// The shard is over its limits: pause it, then send them again.
    Throttle,
    /// The stream does not exist (any more): fail them and forget the
    /// stream's state.
    StreamGone,
    /// Retrying cannot help: fail them now.
    Fail,
}

/// The error codes the producer tells apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Code {
    ProvisionedThroughputExceeded,
    InternalFailure,
    ServiceUnavailable,
    LimitExceeded,
    KmsThrottling,
    Throttling,
    /// The credentials expired between the signer's refresh and the call;
    /// the provider refreshes them for the next attempt.
    ExpiredToken,
    /// No answer within RequestTimeout (the request may have been stored).
    RequestTimeout,
    /// The connection failed or broke.
    Connection,
    /// An HTTP 5xx without a code, or a body that could not be read.
    ServerError,
    /// PutRecords answered a different number of results than entries.
    ResultCountMismatch,
    ResourceNotFound,
    /// Anything else: access denied, validation, KMS key problems...
    Other,
}

impl Code {
    /// Parses a code as the service, the transport or the producer spells it.
    pub fn parse(code: &str) -> Code {
        match code {
            "ProvisionedThroughputExceededException" => Code::ProvisionedThroughputExceeded,
            "InternalFailure" | "InternalFailureException" | "InternalServerError" => {
                Code::InternalFailure
            }
            "ServiceUnavailable" | "ServiceUnavailableException" => Code::ServiceUnavailable,
            "LimitExceededException" => Code::LimitExceeded,
            "KMSThrottlingException" => Code::KmsThrottling,
            "ThrottlingException" | "Throttling" => Code::Throttling,
            "ExpiredTokenException" | "ExpiredToken" | "RequestExpired" => Code::ExpiredToken,
            "RequestTimeout" => Code::RequestTimeout,
            "ConnectionError" => Code::Connection,
            "ResponseError" => Code::ServerError,
            "ResultCountMismatch" => Code::ResultCountMismatch,
            "ResourceNotFoundException" => Code::ResourceNotFound,
            c if c.starts_with("HTTP5") => Code::ServerError,
            _ => Code::Other,
        }
    }

    pub fn disposition(self) -> Disposition {
        match self {
            Code::ProvisionedThroughputExceeded => Disposition::Throttle,
            Code::ResourceNotFound => Disposition::StreamGone,
            Code::Other => Disposition::Fail,
            Code::InternalFailure
            | Code::ServiceUnavailable
            | Code::LimitExceeded
            | Code::KmsThrottling
            | Code::Throttling
            | Code::ExpiredToken
            | Code::RequestTimeout
            | Code::Connection
            | Code::ServerError
            | Code::ResultCountMismatch => Disposition::Retry,
        }
    }
}

/// What to do after `err` failed a whole request (or a map load): by its
/// code when it has a known one, else by its kind (transport failures pass).
pub(crate) fn disposition_of(err: &Error) -> Disposition {
    let by_code = err.code().map(Code::parse).unwrap_or(Code::Other);
    match (by_code, err.kind()) {
        (Code::Other, ErrorKind::Transport) => Disposition::Retry,
        (code, _) => code.disposition(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_has_the_disposition_the_service_documents() {
        let cases = [
            (
                "ProvisionedThroughputExceededException",
                Disposition::Throttle,
            ),
            ("InternalFailure", Disposition::Retry),
            ("ServiceUnavailable", Disposition::Retry),
            ("KMSThrottlingException", Disposition::Retry),
            ("LimitExceededException", Disposition::Retry),
            ("ExpiredTokenException", Disposition::Retry),
            ("RequestTimeout", Disposition::Retry),
            ("HTTP502", Disposition::Retry),
            ("ResultCountMismatch", Disposition::Retry),
            ("ResourceNotFoundException", Disposition::StreamGone),
            ("AccessDeniedException", Disposition::Fail),
            ("ValidationException", Disposition::Fail),
            ("KMSDisabledException", Disposition::Fail),
        ];
        for (code, want) in cases {
            assert_eq!(Code::parse(code).disposition(), want, "{code}");
        }
    }

    #[test]
    fn errors_without_a_known_code_go_by_kind() {
        let transport = Error::new(ErrorKind::Transport, "reset");
        assert_eq!(disposition_of(&transport), Disposition::Retry);
        let odd = Error::new(ErrorKind::Unexpected, "bad request").with_code("ConstructionFailure");
        assert_eq!(disposition_of(&odd), Disposition::Fail);
        let gone = Error::service("ResourceNotFoundException", "no stream");
        assert_eq!(disposition_of(&gone), Disposition::StreamGone);
    }
}
