//! HTTP proxies: the KPL's `ProxyHost`/`ProxyPort`/`ProxyUserName`/
//! `ProxyPassword`, else `HTTPS_PROXY`/`HTTP_PROXY`/`ALL_PROXY`/`NO_PROXY`
//! from the environment as the AWS SDKs read them. HTTPS goes through the
//! proxy as a CONNECT tunnel, so TLS still ends at Kinesis.
//!
//! Proxy passwords appear in no message: URLs are shown without their
//! user-info, and errors are ours, not the URL parser's.

use std::time::Duration;

use aws_smithy_http_client::proxy::ProxyConfig;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

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

/// A second look at a proxy that refused a tunnel: hyper-util tells a
/// refusal apart only for an `HTTP/1.1 407` answer, and proxies such as
/// tinyproxy answer `HTTP/1.0 407`. One CONNECT of our own reads the status.
#[derive(Clone)]
pub(crate) struct Probe {
    proxy: String,
    authorization: Option<String>,
    target: String,
    timeout: Duration,
}

impl std::fmt::Debug for Probe {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Probe")
            .field("proxy", &self.proxy)
            .finish_non_exhaustive()
    }
}

impl Probe {
    /// The probe for `config`'s proxy and endpoint, if requests go through
    /// a plain-HTTP proxy to a known endpoint.
    pub(crate) fn new(config: &Config) -> Option<Probe> {
        let (url, user, password) = match &config.proxy_host {
            Some(host) => (
                proxy_url(host, config.proxy_port),
                config.proxy_user_name.clone(),
                config.proxy_password.clone(),
            ),
            None => {
                let url = ["HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy"]
                    .iter()
                    .find_map(|v| std::env::var(v).ok().filter(|s| !s.is_empty()))?;
                (url, None, None)
            }
        };
        let rest = url.strip_prefix("http://").unwrap_or(&url);
        let authority = rest.split('/').next()?;
        let (userinfo, hostport) = match authority.rsplit_once('@') {
            Some((u, h)) => (Some(u), h),
            None => (None, authority),
        };
        let credentials = match (user, userinfo) {
            (Some(u), _) => Some(format!("{u}:{}", password.unwrap_or_default())),
            (None, Some(info)) => Some(info.to_owned()),
            (None, None) => None,
        };
        let proxy = if hostport.contains(':') {
            hostport.to_owned()
        } else {
            format!("{hostport}:80")
        };
        let endpoint = config.endpoint_url()?;
        let target = endpoint.split("://").nth(1)?.split('/').next()?.to_owned();
        let target = if target.contains(':') {
            target
        } else {
            format!("{target}:443")
        };
        Some(Probe {
            proxy,
            authorization: credentials.map(aws_smithy_types::base64::encode),
            target,
            timeout: config.connect_timeout,
        })
    }

    /// The status the proxy answers a CONNECT to the endpoint with.
    pub(crate) async fn connect_status(&self) -> Option<u16> {
        let exchange = async {
            let mut stream = tokio::net::TcpStream::connect(&self.proxy).await.ok()?;
            let mut request = format!("CONNECT {0} HTTP/1.1\r\nHost: {0}\r\n", self.target);
            if let Some(auth) = &self.authorization {
                request.push_str(&format!("Proxy-Authorization: Basic {auth}\r\n"));
            }
            request.push_str("\r\n");
            stream.write_all(request.as_bytes()).await.ok()?;
            let mut buf = [0u8; 64];
            let n = stream.read(&mut buf).await.ok()?;
            let line = std::str::from_utf8(&buf[..n]).ok()?;
            line.split_whitespace().nth(1)?.parse().ok()
        };
        tokio::time::timeout(self.timeout, exchange)
            .await
            .ok()
            .flatten()
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
    fn the_probe_knows_proxy_target_and_credentials_and_shows_no_secret() {
        let config = Config::builder()
            .endpoint("https://127.0.0.1:4568")
            .proxy("127.0.0.1", 3128, Some(("u", "s3cret")))
            .build()
            .unwrap();
        let probe = Probe::new(&config).unwrap();
        assert_eq!(
            (probe.proxy.as_str(), probe.target.as_str()),
            ("127.0.0.1:3128", "127.0.0.1:4568")
        );
        assert_eq!(probe.authorization.as_deref(), Some("dTpzM2NyZXQ="));
        assert!(!format!("{probe:?}").contains("dTpz"));
    }

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
