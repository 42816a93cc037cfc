//! What a finished PutRecords means for each Kinesis record it carried:
//! deliver, hold as suspect, retry, or fail. Pure: no I/O, no clock, no
//! state but what it is given; the engine carries the verdicts out.

use std::sync::Arc;
use std::time::Duration;

use crate::codes::{Code, Disposition, disposition_of};
use crate::error::{Error, ErrorKind};
use crate::kinesis::EntryOutcome;

/// What the retrier needs to know of a Kinesis record that was sent.
pub(crate) trait Sent {
    /// The shard the producer predicted for it, if it knew one.
    fn predicted(&self) -> Option<&Arc<str>>;
    fn is_aggregated(&self) -> bool;
}

impl Sent for super::router::Outbound {
    fn predicted(&self) -> Option<&Arc<str>> {
        self.shard.as_ref()
    }
    fn is_aggregated(&self) -> bool {
        self.record.is_aggregated()
    }
}

/// The rules in force when the answer came.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Rules {
    pub fail_if_throttled: bool,
    /// The producer is shutting down: nothing is sent again.
    pub aborting: bool,
}

#[derive(Debug)]
pub(crate) enum Verdict {
    Deliver {
        shard_id: Arc<str>,
        sequence_number: Arc<str>,
    },
    /// An aggregate that landed on another shard than predicted: delivered
    /// only if that shard's range holds every record, which a fresh map
    /// tells.
    Suspect {
        shard_id: Arc<str>,
        sequence_number: Arc<str>,
    },
    /// Send again, paced as `Pace` says.
    Retry(Pace),
    Fail(Error),
}

/// What paces a record that is sent again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Pace {
    /// Its shard's limiter: throttled on a shard the producer knows, which
    /// is paused and released at the rate it takes.
    Limiter,
    /// Its own attempts: at once after the first failure, then after a
    /// growing backoff, so that a service failing it again and again (or
    /// throttling a shard the map does not know) is not hammered.
    Attempts,
}

/// The verdicts for one response, one per entry, and what they imply.
#[derive(Debug)]
pub(crate) struct Judged {
    pub verdicts: Vec<Verdict>,
    /// Shards that throttled at least one entry, each once.
    pub throttled: Vec<Arc<str>>,
    /// An entry landed on another shard than predicted: the map is stale.
    pub misrouted: bool,
    /// The service no longer knows the stream.
    pub stream_gone: bool,
}

/// Judges the entries of a PutRecords answer (`outcomes[i]` is `sent[i]`'s).
pub(crate) fn judge_entries<S: Sent>(
    sent: &[S],
    outcomes: &[EntryOutcome],
    rules: Rules,
) -> Judged {
    let mut judged = Judged {
        verdicts: Vec::with_capacity(sent.len()),
        throttled: Vec::new(),
        misrouted: false,
        stream_gone: false,
    };
    for (s, outcome) in sent.iter().zip(outcomes) {
        let verdict = match outcome {
            EntryOutcome::Delivered {
                shard_id,
                sequence_number,
            } => {
                let misrouted = s.predicted().is_some_and(|p| p != shard_id);
                judged.misrouted |= misrouted;
                let (shard_id, sequence_number) = (shard_id.clone(), sequence_number.clone());
                if misrouted && s.is_aggregated() {
                    Verdict::Suspect {
                        shard_id,
                        sequence_number,
                    }
                } else {
                    Verdict::Deliver {
                        shard_id,
                        sequence_number,
                    }
                }
            }
            EntryOutcome::Failed { code, message } => {
                let disposition = Code::parse(code).disposition();
                if disposition == Disposition::Throttle
                    && let Some(shard) = s.predicted()
                    && !judged.throttled.contains(shard)
                {
                    judged.throttled.push(shard.clone());
                }
                judged.stream_gone |= disposition == Disposition::StreamGone;
                let pace = match (disposition, s.predicted()) {
                    (Disposition::Throttle, Some(_)) => Pace::Limiter,
                    _ => Pace::Attempts,
                };
                entry_verdict(disposition, code, message, rules, pace)
            }
        };
        judged.verdicts.push(verdict);
    }
    judged
}

fn entry_verdict(
    disposition: Disposition,
    code: &str,
    message: &str,
    rules: Rules,
    pace: Pace,
) -> Verdict {
    match disposition {
        Disposition::Throttle if rules.fail_if_throttled => Verdict::Fail(
            Error::new(
                ErrorKind::Throttled,
                format!("throttled by Kinesis ({message}); FailIfThrottled is set"),
            )
            .with_code(code),
        ),
        Disposition::Fail | Disposition::StreamGone => Verdict::Fail(Error::service(code, message)),
        Disposition::Retry | Disposition::Throttle if rules.aborting => Verdict::Fail(Error::new(
            ErrorKind::ShutDown,
            format!("the producer shut down; the last attempt failed with {code}: {message}"),
        )),
        Disposition::Retry | Disposition::Throttle => Verdict::Retry(pace),
    }
}

/// How long a record that failed `attempts` times waits before it is sent
/// again (before jitter), when its own attempts pace it.
pub(crate) fn backoff_after(attempts: usize) -> Duration {
    const FIRST: Duration = Duration::from_millis(50);
    const MAX: Duration = Duration::from_secs(2);
    match attempts {
        0 | 1 => Duration::ZERO,
        n => (FIRST * 2u32.saturating_pow((n - 2).min(16) as u32)).min(MAX),
    }
}

/// What to do with every record of a request that failed as a whole.
#[derive(Debug)]
pub(crate) enum RequestVerdict {
    /// Send them again after the stream's backoff.
    Retry,
    Fail(Error),
    /// Fail them; the stream is gone.
    StreamGone(Error),
}

pub(crate) fn judge_request(err: &Error, rules: Rules) -> RequestVerdict {
    match disposition_of(err) {
        Disposition::Retry | Disposition::Throttle if rules.aborting => {
            RequestVerdict::Fail(Error::new(
                ErrorKind::ShutDown,
                format!("the producer shut down; the last attempt failed: {err}"),
            ))
        }
        Disposition::Retry | Disposition::Throttle => RequestVerdict::Retry,
        Disposition::StreamGone => RequestVerdict::StreamGone(err.for_another_record()),
        Disposition::Fail => RequestVerdict::Fail(err.for_another_record()),
    }
}

/// The same error again, for another record (errors own their record).
#[cfg(test)]
mod tests {
    use super::*;

    struct S(Option<Arc<str>>, bool);
    impl Sent for S {
        fn predicted(&self) -> Option<&Arc<str>> {
            self.0.as_ref()
        }
        fn is_aggregated(&self) -> bool {
            self.1
        }
    }

    const RULES: Rules = Rules {
        fail_if_throttled: false,
        aborting: false,
    };

    fn ok(shard: &str) -> EntryOutcome {
        EntryOutcome::Delivered {
            shard_id: shard.into(),
            sequence_number: "1".into(),
        }
    }

    fn failed(code: &str) -> EntryOutcome {
        EntryOutcome::Failed {
            code: code.into(),
            message: "m".into(),
        }
    }

    #[test]
    fn each_entry_code_gets_its_verdict() {
        let sent: Vec<S> = (0..6).map(|_| S(Some("s1".into()), true)).collect();
        let outcomes = [
            ok("s1"),
            failed("ProvisionedThroughputExceededException"),
            failed("InternalFailure"),
            failed("KMSThrottlingException"),
            failed("AccessDeniedException"),
            failed("ProvisionedThroughputExceededException"),
        ];
        let j = judge_entries(&sent, &outcomes, RULES);
        assert!(matches!(j.verdicts[0], Verdict::Deliver { .. }));
        assert!(matches!(j.verdicts[1], Verdict::Retry(Pace::Limiter)));
        assert!(matches!(j.verdicts[2], Verdict::Retry(Pace::Attempts)));
        assert!(matches!(j.verdicts[3], Verdict::Retry(Pace::Attempts)));
        match &j.verdicts[4] {
            Verdict::Fail(e) => assert_eq!(e.code(), Some("AccessDeniedException")),
            other => panic!("{other:?}"),
        }
        // One throttle signal per shard, however many entries it throttled.
        assert_eq!(j.throttled, vec![Arc::<str>::from("s1")]);
        assert!(!j.misrouted && !j.stream_gone);
    }

    #[test]
    fn a_throttle_on_a_shard_the_producer_does_not_know_is_paced_by_attempts() {
        let sent = [S(None, false)];
        let j = judge_entries(
            &sent,
            &[failed("ProvisionedThroughputExceededException")],
            RULES,
        );
        assert!(matches!(j.verdicts[0], Verdict::Retry(Pace::Attempts)));
        assert!(j.throttled.is_empty());
        assert_eq!(backoff_after(1), Duration::ZERO);
        assert_eq!(backoff_after(2), Duration::from_millis(50));
        assert_eq!(backoff_after(3), Duration::from_millis(100));
        assert_eq!(backoff_after(40), Duration::from_secs(2));
    }

    #[test]
    fn a_misrouted_aggregate_is_suspect_and_a_plain_record_is_delivered() {
        let sent = [S(Some("s1".into()), true), S(Some("s1".into()), false)];
        let j = judge_entries(&sent, &[ok("s2"), ok("s2")], RULES);
        assert!(matches!(j.verdicts[0], Verdict::Suspect { .. }));
        assert!(matches!(j.verdicts[1], Verdict::Deliver { .. }));
        assert!(j.misrouted);
    }

    #[test]
    fn throttles_fail_with_fail_if_throttled_and_retries_fail_when_aborting() {
        let sent = [S(Some("s1".into()), false)];
        let throttled = [failed("ProvisionedThroughputExceededException")];
        let rules = Rules {
            fail_if_throttled: true,
            ..RULES
        };
        match &judge_entries(&sent, &throttled, rules).verdicts[0] {
            Verdict::Fail(e) => assert_eq!(e.kind(), ErrorKind::Throttled),
            other => panic!("{other:?}"),
        }
        let aborting = Rules {
            aborting: true,
            ..RULES
        };
        match &judge_entries(&sent, &[failed("InternalFailure")], aborting).verdicts[0] {
            Verdict::Fail(e) => assert_eq!(e.kind(), ErrorKind::ShutDown),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn whole_request_failures_by_code_and_kind() {
        let retry = Error::new(ErrorKind::Transport, "reset").with_code("ConnectionError");
        assert!(matches!(
            judge_request(&retry, RULES),
            RequestVerdict::Retry
        ));
        let gone = Error::service("ResourceNotFoundException", "no stream");
        assert!(matches!(
            judge_request(&gone, RULES),
            RequestVerdict::StreamGone(_)
        ));
        let denied = Error::service("AccessDeniedException", "no");
        assert!(matches!(
            judge_request(&denied, RULES),
            RequestVerdict::Fail(_)
        ));
        let aborting = Rules {
            aborting: true,
            ..RULES
        };
        match judge_request(&retry, aborting) {
            RequestVerdict::Fail(e) => assert_eq!(e.kind(), ErrorKind::ShutDown),
            other => panic!("{other:?}"),
        }
    }
}
