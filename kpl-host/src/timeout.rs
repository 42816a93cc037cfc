//! Timeouts as hosts give them, and attempt times as hosts show them.
//!
//! C and the `kpl` settings count milliseconds with 0 meaning no limit;
//! Python counts seconds with `None` meaning no limit; Node counts
//! milliseconds. Each converts here, once.

use std::time::Duration;

/// Stands in for "no limit" where a duration is required (a shutdown's
/// flush): a century.
pub const FOREVER: Duration = Duration::from_secs(100 * 365 * 86_400);

/// Milliseconds to a limit: 0 means no limit (`None`).
///
/// ```
/// use std::time::Duration;
/// assert_eq!(kpl_host::timeout::from_millis(0), None);
/// assert_eq!(kpl_host::timeout::from_millis(250), Some(Duration::from_millis(250)));
/// ```
pub fn from_millis(ms: u64) -> Option<Duration> {
    (ms != 0).then(|| Duration::from_millis(ms))
}

/// A limit, or [`FOREVER`] for none.
pub fn or_forever(limit: Option<Duration>) -> Duration {
    limit.unwrap_or(FOREVER)
}

/// Seconds (a float, as Python gives them) to a duration: finite and not
/// negative, else a message saying what is allowed. Very long limits are
/// capped at [`FOREVER`].
///
/// ```
/// use std::time::Duration;
/// assert_eq!(kpl_host::timeout::from_secs_f64(0.5), Ok(Duration::from_millis(500)));
/// assert!(kpl_host::timeout::from_secs_f64(-1.0).is_err());
/// ```
pub fn from_secs_f64(seconds: f64) -> Result<Duration, String> {
    if seconds.is_finite() && seconds >= 0.0 {
        Ok(Duration::from_secs_f64(seconds.min(FOREVER.as_secs_f64())))
    } else {
        Err(format!(
            "timeout must be a number of seconds >= 0, got {seconds}"
        ))
    }
}

/// Milliseconds as a float (as JavaScript gives them) to a duration;
/// negative or not a number counts as 0.
pub fn from_millis_f64(ms: f64) -> Duration {
    if ms.is_nan() || ms <= 0.0 {
        return Duration::ZERO;
    }
    Duration::from_secs_f64((ms / 1000.0).min(FOREVER.as_secs_f64()))
}

/// A duration in whole milliseconds (saturating), as C reports attempts.
pub fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// A duration in fractional milliseconds, as Python and Node report
/// attempts.
pub fn millis_f64(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conversions() {
        assert_eq!(or_forever(None), FOREVER);
        assert_eq!(or_forever(from_millis(5)), Duration::from_millis(5));
        assert!(from_secs_f64(f64::NAN).is_err());
        assert_eq!(from_secs_f64(1e300).unwrap(), FOREVER);
        assert_eq!(from_millis_f64(-3.0), Duration::ZERO);
        assert_eq!(from_millis_f64(f64::NAN), Duration::ZERO);
        assert_eq!(from_millis_f64(1500.0), Duration::from_millis(1500));
        assert_eq!(millis(Duration::from_micros(2_999)), 2);
        assert_eq!(millis(Duration::MAX), u64::MAX);
        assert_eq!(millis_f64(Duration::from_micros(1_500)), 1.5);
    }
}
