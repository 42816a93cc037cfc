//! The spool's named settings: `SpoolSync` and `SpoolFullPolicy`.

use std::fmt;
use std::str::FromStr;

use crate::error::{Error, ErrorKind};

/// When spooled records are forced to disk (`SpoolSync`).
///
/// ```
/// use kpl_core::SpoolSync;
/// assert_eq!("always".parse::<SpoolSync>().unwrap(), SpoolSync::Always);
/// assert_eq!(SpoolSync::default(), SpoolSync::Interval);
/// assert!("sometimes".parse::<SpoolSync>().is_err());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum SpoolSync {
    /// A put returns only once its record is fsynced; puts that arrive
    /// together share one fsync. Survives a power loss.
    Always,
    /// fsync every `SpoolSyncInterval` ms: a power loss may lose the
    /// records of the last interval; a killed process loses nothing.
    #[default]
    Interval,
    /// Never fsync: the operating system writes when it likes. A killed
    /// process loses nothing; a power loss may lose whatever the OS had not
    /// written yet.
    Never,
}

/// What a put does when the spool holds `SpoolMaxBytes` (`SpoolFullPolicy`).
///
/// ```
/// use kpl_core::SpoolFullPolicy;
/// assert_eq!("drop_oldest".parse::<SpoolFullPolicy>().unwrap(), SpoolFullPolicy::DropOldest);
/// assert_eq!(SpoolFullPolicy::default(), SpoolFullPolicy::Block);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum SpoolFullPolicy {
    /// Puts wait for space, as for a full buffer (at most
    /// `UserRecordTimeoutInMillis`); `try_put` fails at once with
    /// `SpoolFull`.
    #[default]
    Block,
    /// Puts fail at once with `SpoolFull`.
    Fail,
    /// The oldest segment of the spool is deleted to make room: its records
    /// that were still waiting on disk fail with `Dropped` and are counted
    /// (`SpoolRecordsDropped`); those already in the producer's memory are
    /// still sent, but no longer on disk.
    DropOldest,
}

fn parse<T: Copy>(name: &str, value: &str, options: &[(&str, T)]) -> Result<T, Error> {
    let wanted = value.trim().to_ascii_lowercase().replace('-', "_");
    options
        .iter()
        .find(|(n, _)| *n == wanted || n.replace('_', "") == wanted)
        .map(|(_, v)| *v)
        .ok_or_else(|| {
            let names: Vec<_> = options.iter().map(|(n, _)| *n).collect();
            Error::new(
                ErrorKind::InvalidConfig,
                format!(
                    "{name} = {value:?} is not valid: expected {}",
                    names.join(", ")
                ),
            )
        })
}

impl FromStr for SpoolSync {
    type Err = Error;

    fn from_str(value: &str) -> Result<Self, Error> {
        let options = [
            ("always", SpoolSync::Always),
            ("interval", SpoolSync::Interval),
            ("never", SpoolSync::Never),
        ];
        parse("SpoolSync", value, &options)
    }
}

impl fmt::Display for SpoolSync {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SpoolSync::Always => "always",
            SpoolSync::Interval => "interval",
            SpoolSync::Never => "never",
        })
    }
}

impl FromStr for SpoolFullPolicy {
    type Err = Error;

    fn from_str(value: &str) -> Result<Self, Error> {
        let options = [
            ("block", SpoolFullPolicy::Block),
            ("fail", SpoolFullPolicy::Fail),
            ("drop_oldest", SpoolFullPolicy::DropOldest),
        ];
        parse("SpoolFullPolicy", value, &options)
    }
}

impl fmt::Display for SpoolFullPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SpoolFullPolicy::Block => "block",
            SpoolFullPolicy::Fail => "fail",
            SpoolFullPolicy::DropOldest => "drop_oldest",
        })
    }
}
