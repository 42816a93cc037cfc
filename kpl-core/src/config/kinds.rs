//! How a setting's text becomes a value, how the value is shown, and which
//! values are allowed: one `Kind` per sort of setting, so the settings
//! table in `mod.rs` says each of these once.

use std::fmt::Display;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use super::StaticCredentials;
use crate::error::{Error, ErrorKind};
use crate::metrics::MetricsDimension;

/// The sort of a setting whose field is a `T`.
pub(crate) trait Kind<T> {
    /// Parses `text` and, only if it is valid, stores it in `slot`.
    fn apply(&self, name: &str, text: &str, slot: &mut T) -> Result<(), Error>;
    /// The value as text; `None` keeps it out of [`Config::entries`](super::Config::entries).
    fn show(&self, value: &T) -> Option<String>;
    /// Checks a value a typed setter stored (the ranges `apply` enforces).
    fn check(&self, _name: &str, _value: &T) -> Result<(), Error> {
        Ok(())
    }
}

pub(crate) fn invalid(name: &str, value: &str, allowed: &str) -> Error {
    Error::new(
        ErrorKind::InvalidConfig,
        format!("{name} = {value:?} is not valid: {allowed}"),
    )
    .with_setting(name)
}

pub(crate) fn parse_int(name: &str, value: &str, min: u64, max: u64) -> Result<u64, Error> {
    let allowed = if max >= i64::MAX as u64 {
        format!("expected a whole number of at least {min}")
    } else {
        format!("expected a whole number from {min} to {max}")
    };
    match value.trim().parse::<u64>() {
        Ok(n) if (min..=max).contains(&n) => Ok(n),
        _ => Err(invalid(name, value, &allowed)),
    }
}

fn non_empty(value: &str) -> Option<String> {
    let value = value.trim();
    (!value.is_empty()).then(|| value.to_owned())
}

/// No upper bound (the KPL's "at least" ranges).
pub(crate) const NO_MAX: u64 = i64::MAX as u64;

/// Unsigned whole-number fields.
pub(crate) trait Whole: Copy + Display {
    fn to_u64(self) -> u64;
    fn from_u64(n: u64) -> Self;
}

macro_rules! whole {
    ($($t:ty),*) => {$(
        impl Whole for $t {
            fn to_u64(self) -> u64 {
                self as u64
            }
            // Callers pass ranges that fit the field.
            fn from_u64(n: u64) -> Self {
                n as $t
            }
        }
    )*};
}
whole!(u16, u32, u64, usize);

/// A whole number from `.0` to `.1`.
pub(crate) struct Int(pub u64, pub u64);

impl<T: Whole> Kind<T> for Int {
    fn apply(&self, name: &str, text: &str, slot: &mut T) -> Result<(), Error> {
        *slot = T::from_u64(parse_int(name, text, self.0, self.1)?);
        Ok(())
    }
    fn show(&self, value: &T) -> Option<String> {
        Some(value.to_string())
    }
    fn check(&self, name: &str, value: &T) -> Result<(), Error> {
        parse_int(name, &value.to_u64().to_string(), self.0, self.1).map(drop)
    }
}

/// Milliseconds from `.0` to `.1`.
pub(crate) struct Millis(pub u64, pub u64);

impl Kind<Duration> for Millis {
    fn apply(&self, name: &str, text: &str, slot: &mut Duration) -> Result<(), Error> {
        *slot = Duration::from_millis(parse_int(name, text, self.0, self.1)?);
        Ok(())
    }
    fn show(&self, value: &Duration) -> Option<String> {
        Some(value.as_millis().to_string())
    }
    fn check(&self, name: &str, value: &Duration) -> Result<(), Error> {
        let ms = value.as_millis().min(u64::MAX as u128);
        parse_int(name, &ms.to_string(), self.0, self.1).map(drop)
    }
}

/// `true` or `false`, in any case.
pub(crate) struct Flag;

impl Kind<bool> for Flag {
    fn apply(&self, name: &str, text: &str, slot: &mut bool) -> Result<(), Error> {
        *slot = match text.trim().to_ascii_lowercase().as_str() {
            "true" => true,
            "false" => false,
            _ => return Err(invalid(name, text, "expected true or false")),
        };
        Ok(())
    }
    fn show(&self, value: &bool) -> Option<String> {
        Some(value.to_string())
    }
}

/// Optional text; empty means unset.
pub(crate) struct Text;

impl Kind<Option<String>> for Text {
    fn apply(&self, _: &str, text: &str, slot: &mut Option<String>) -> Result<(), Error> {
        *slot = non_empty(text);
        Ok(())
    }
    fn show(&self, value: &Option<String>) -> Option<String> {
        Some(value.clone().unwrap_or_default())
    }
}

/// Text that is always set (trimmed).
pub(crate) struct Word;

impl Kind<String> for Word {
    fn apply(&self, _: &str, text: &str, slot: &mut String) -> Result<(), Error> {
        *slot = text.trim().to_owned();
        Ok(())
    }
    fn show(&self, value: &String) -> Option<String> {
        Some(value.clone())
    }
}

/// An optional file path; empty means unset.
pub(crate) struct FilePath;

impl Kind<Option<PathBuf>> for FilePath {
    fn apply(&self, _: &str, text: &str, slot: &mut Option<PathBuf>) -> Result<(), Error> {
        *slot = non_empty(text).map(PathBuf::from);
        Ok(())
    }
    fn show(&self, value: &Option<PathBuf>) -> Option<String> {
        Some(
            value
                .as_ref()
                .map(|p| p.display().to_string())
                .unwrap_or_default(),
        )
    }
}

/// One of a type's names (its `FromStr` says which and how it refuses).
pub(crate) struct Named;

impl<T: FromStr<Err = Error> + Display> Kind<T> for Named {
    fn apply(&self, _: &str, text: &str, slot: &mut T) -> Result<(), Error> {
        *slot = text.parse()?;
        Ok(())
    }
    fn show(&self, value: &T) -> Option<String> {
        Some(value.to_string())
    }
}

/// A secret: any text (a password has no wrong format, so it is never
/// echoed in an error), shown redacted.
pub(crate) struct Secret;

impl Kind<Option<String>> for Secret {
    fn apply(&self, _: &str, text: &str, slot: &mut Option<String>) -> Result<(), Error> {
        *slot = Some(text.trim().to_owned());
        Ok(())
    }
    fn show(&self, value: &Option<String>) -> Option<String> {
        Some(
            value
                .as_ref()
                .map(|_| "** redacted **".to_owned())
                .unwrap_or_default(),
        )
    }
}

/// One part of the static credentials; not shown.
pub(crate) enum Credential {
    AccessKeyId,
    SecretAccessKey,
    SessionToken,
}

impl Kind<Option<StaticCredentials>> for Credential {
    fn apply(
        &self,
        _: &str,
        text: &str,
        slot: &mut Option<StaticCredentials>,
    ) -> Result<(), Error> {
        let creds = slot.get_or_insert_with(|| StaticCredentials {
            access_key_id: String::new(),
            secret_access_key: String::new(),
            session_token: None,
        });
        match self {
            Credential::AccessKeyId => creds.access_key_id = text.trim().to_owned(),
            Credential::SecretAccessKey => creds.secret_access_key = text.trim().to_owned(),
            Credential::SessionToken => creds.session_token = non_empty(text),
        }
        Ok(())
    }
    fn show(&self, _: &Option<StaticCredentials>) -> Option<String> {
        None
    }
}

/// `Name=value@granularity,...` metrics dimensions.
pub(crate) struct Dimensions;

impl Kind<Vec<MetricsDimension>> for Dimensions {
    fn apply(&self, _: &str, text: &str, slot: &mut Vec<MetricsDimension>) -> Result<(), Error> {
        *slot = MetricsDimension::parse_list(text)?;
        Ok(())
    }
    fn show(&self, value: &Vec<MetricsDimension>) -> Option<String> {
        let shown: Vec<String> = value
            .iter()
            .map(|d| format!("{}={}@{}", d.name, d.value, d.granularity))
            .collect();
        Some(shown.join(","))
    }
}
