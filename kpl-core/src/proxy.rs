//! HTTP proxies: the KPL's `ProxyHost`/`ProxyPort`/`ProxyUserName`/
//! `ProxyPassword`, else `HTTPS_PROXY`/`HTTP_PROXY`/`ALL_PROXY`/`NO_PROXY`
//! from the environment as the AWS SDKs read them. HTTPS goes through the
//! proxy as a CONNECT tunnel, so TLS still ends at Kinesis.
//!
//! Proxy passwords appear in no message: URLs are shown without their
//! user-info, and errors are ours, not the URL parser's.

use aws_smithy_http_client::proxy::ProxyConfig;

use crate::config::Config;
use crate::error::{Error, ErrorKind};

const ENV_PROXIES: &[&str] = &[
    "HTTPS_PROXY",
    "https_proxy",
    "HTTP_PROXY",
    "http_proxy",
    "ALL_PROXY",
    "all_proxy",
];

/// The proxy for every request, or `None` to connect directly.
pub(crate) fn proxy_config(config: &Config) -> Result<Option<ProxyConfig>, Error> {
    let Some(host) = &config.proxy_host else {
        let from_env = ENV_PROXIES
            .iter()
            .any(|v| std::env::var_os(v).is_some_and(|s| !s.is_empty()));
        return Ok(from_env.then(ProxyConfig::from_env));
    };
    let url = proxy_url(host, config.proxy_port);
    let mut proxy = ProxyConfig::all(url.as_str()).map_err(|_| {
        Error::new(
            ErrorKind::InvalidConfig,
            format!(
                "ProxyHost = {:?} is not valid: expected a host name or an http:// URL",
                redact(host)
            ),
        )
    })?;
    if let Some(user) = &config.proxy_user_name {
        let password = config.proxy_password.clone().unwrap_or_default();
        proxy = proxy.with_basic_auth(user.clone(), password);
    }
    if let Ok(no_proxy) = std::env::var("NO_PROXY").or_else(|_| std::env::var("no_proxy"))
        && !no_proxy.trim().is_empty()
    {
        proxy = proxy.no_proxy(no_proxy);
    }
    Ok(Some(proxy))
}

/// `ProxyHost` as a URL: as given when it has a scheme, else `http://host:port`.
fn proxy_url(host: &str, port: u16) -> String {
    if host.contains("://") {
        host.to_owned()
    } else {
        format!("http://{host}:{port}")
    }
}

/// A URL without its `user:password@` part, for messages.
pub(crate) fn redact(url: &str) -> String {
    let (scheme, rest) = url.split_once("://").unwrap_or(("", url));
    let authority_end = rest.find('/').unwrap_or(rest.len());
    match rest[..authority_end].rfind('@') {
        Some(at) if scheme.is_empty() => format!("***@{}", &rest[at + 1..]),
        Some(at) => format!("{scheme}://***@{}", &rest[at + 1..]),
        None => url.to_owned(),
    }
}

/// Whether a failed request's error chain says the proxy refused our
/// credentials (HTTP 407 to CONNECT). hyper-util reports it only as this
/// text (its `TunnelError` is private), so the text is what we match.
pub(crate) fn refused_credentials(err: &(dyn std::error::Error + 'static)) -> bool {
    let mut current = Some(err);
    while let Some(e) = current {
        if e.to_string().contains("proxy authorization required") {
            return true;
        }
        current = e.source();
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_lose_their_credentials_in_messages() {
        assert_eq!(
            redact("http://u:secret@proxy:3128"),
            "http://***@proxy:3128"
        );
        assert_eq!(redact("u:secret@proxy:3128"), "***@proxy:3128");
        assert_eq!(redact("http://proxy:3128/a@b"), "http://proxy:3128/a@b");
        assert_eq!(redact("proxy"), "proxy");
    }

    #[test]
    fn settings_make_a_proxy_and_bad_ones_say_so_without_the_password() {
        let config = Config::builder()
            .proxy("proxy.internal", 3128, Some(("user", "s3cret")))
            .build()
            .unwrap();
        assert!(proxy_config(&config).unwrap().is_some());
        assert!(!format!("{config:?}").contains("s3cret"));
        let bad = Config::builder()
            .proxy("http://user:s3cret@bad host", 1, None)
            .build()
            .unwrap();
        let err = proxy_config(&bad).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidConfig);
        assert!(!err.to_string().contains("s3cret"), "{err}");
    }

    #[test]
    fn a_password_needs_a_user_and_a_user_needs_a_host() {
        let err = Config::builder()
            .set("ProxyPassword", "pw")
            .unwrap()
            .build()
            .unwrap_err();
        assert!(err.to_string().contains("ProxyUserName"), "{err}");
        assert!(!err.to_string().contains("pw\""), "{err}");
        let err = Config::builder()
            .set("proxy_user_name", "u")
            .unwrap()
            .build()
            .unwrap_err();
        assert!(err.to_string().contains("ProxyHost"), "{err}");
    }
}
