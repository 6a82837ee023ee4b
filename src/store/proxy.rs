//! Which proxy each request of the product goes through: `proxy` when set (every request, but
//! those `NO_PROXY` exempts), else the environment's `HTTPS_PROXY`, `HTTP_PROXY`, `ALL_PROXY` and
//! `NO_PROXY` (upper case first, then lower case), read once when a client is built. The SDK path
//! is given the same rules as a [`ProxyConfig`] (aws-smithy-http-client); the lean path and the
//! Pushgateway push connect through [`ProxyConnector`]: a CONNECT tunnel (hyper-util's
//! [`Tunnel`]) for `https://` destinations, the proxy itself as a forward proxy for `http://` ones.
//! A proxy's `user:password` is sent as `Proxy-Authorization` and never shown: messages name the
//! proxy by [`Proxies::describe`], which drops it.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use aws_smithy_http_client::proxy::ProxyConfig;
use hyper::Uri;
use hyper::header::HeaderValue;
use hyper::http::uri::Scheme;
use hyper_rustls::{HttpsConnector, MaybeHttpsStream};
use hyper_util::client::legacy::connect::proxy::Tunnel;
use hyper_util::client::legacy::connect::{Connected, Connection, HttpConnector};
use hyper_util::client::proxy::matcher::Matcher;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use tower_service::Service;

use super::tls::Trust;
use crate::config::HttpUrl;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The proxy rules of one set of settings.
#[derive(Clone)]
pub struct Proxies {
    matcher: Arc<Matcher>,
    /// `proxy` as written (its display is redacted); `None`: the environment's.
    configured: Option<HttpUrl>,
}

impl std::fmt::Debug for Proxies {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Proxies")
            .field(
                "configured",
                &self.configured.as_ref().map(HttpUrl::redacted),
            )
            .finish_non_exhaustive()
    }
}

impl Proxies {
    /// `proxy` when set, else the environment's variables.
    pub fn new(proxy: &HttpUrl) -> Proxies {
        let configured = Some(proxy.clone()).filter(HttpUrl::is_set);
        let matcher = match &configured {
            None => Matcher::from_env(),
            Some(url) => Matcher::builder()
                .all(url.as_str().to_string())
                .no(no_proxy())
                .build(),
        };
        Proxies {
            matcher: Arc::new(matcher),
            configured,
        }
    }

    /// The same rules for the SDK's HTTP client.
    pub fn sdk_config(&self) -> Result<ProxyConfig, String> {
        match &self.configured {
            None => Ok(ProxyConfig::from_env()),
            Some(url) => ProxyConfig::all(url.as_str())
                .map(|c| c.no_proxy(no_proxy()))
                .map_err(|e| format!("proxy {url}: {e}")),
        }
    }

    /// The proxy a request to `url` goes through, without its credentials; `None`: direct.
    pub fn describe(&self, url: &str) -> Option<String> {
        let uri: Uri = url.parse().ok()?;
        let via = self.matcher.intercept(&uri)?;
        let proxy = via.uri();
        let source = if self.configured.is_some() {
            "proxy"
        } else {
            "the environment"
        };
        Some(format!(
            "{}://{} (from {source})",
            proxy.scheme_str().unwrap_or("http"),
            proxy.authority().map(|a| a.as_str()).unwrap_or("")
        ))
    }

    /// Why [`ProxyConnector`] cannot reach `url`: its proxy is not a plain `http://` one (an
    /// `https://` or SOCKS proxy, which only the SDK path speaks).
    pub fn unsupported(&self, url: &str) -> Option<String> {
        let uri: Uri = url.parse().ok()?;
        let via = self.matcher.intercept(&uri)?;
        (via.uri().scheme() != Some(&Scheme::HTTP)).then(|| {
            format!(
                "the proxy {} is not an http:// proxy",
                self.describe(url).unwrap_or_default()
            )
        })
    }

    /// The `Proxy-Authorization` header a request to `url` sends to a forward proxy (an `http://`
    /// destination through a proxy with credentials), added after signing.
    pub fn forward_auth(&self, url: &str) -> Option<HeaderValue> {
        let uri: Uri = url.parse().ok()?;
        if uri.scheme() != Some(&Scheme::HTTP) {
            return None;
        }
        self.matcher.intercept(&uri)?.basic_auth().cloned()
    }

    /// A connector for `http://` and `https://` URLs with this trust and these proxies, TCP_NODELAY
    /// and the given connect timeout, for the hyper clients of the product.
    pub fn connector(
        &self,
        trust: &Trust,
        connect_timeout: Duration,
    ) -> Result<ProxyConnector, String> {
        let mut tcp = HttpConnector::new();
        tcp.enforce_http(false);
        tcp.set_nodelay(true);
        tcp.set_connect_timeout(Some(connect_timeout));
        Ok(ProxyConnector {
            tcp,
            tls: Arc::new(trust.rustls()?),
            matcher: self.matcher.clone(),
        })
    }
}

/// `NO_PROXY`, else `no_proxy`.
fn no_proxy() -> String {
    std::env::var("NO_PROXY")
        .or_else(|_| std::env::var("no_proxy"))
        .unwrap_or_default()
}

/// Connects directly, through a CONNECT tunnel (`https://` destinations) or to the forward proxy
/// (`http://` destinations), as the [`Proxies`] say.
#[derive(Clone)]
pub struct ProxyConnector {
    tcp: HttpConnector,
    tls: Arc<rustls::ClientConfig>,
    matcher: Arc<Matcher>,
}

/// A connection made by [`ProxyConnector`].
pub struct Proxied {
    io: MaybeHttpsStream<TokioIo<TcpStream>>,
    /// To a forward proxy: requests name the whole URL.
    forward: bool,
}

impl Connection for Proxied {
    fn connected(&self) -> Connected {
        self.io.connected().proxy(self.forward)
    }
}

impl hyper::rt::Read for Proxied {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: hyper::rt::ReadBufCursor<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_read(cx, buf)
    }
}

impl hyper::rt::Write for Proxied {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.io).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}

impl Service<Uri> for ProxyConnector {
    type Response = Proxied;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<Proxied, BoxError>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, dst: Uri) -> Self::Future {
        let tls = self.tls.clone();
        match self.matcher.intercept(&dst) {
            None => {
                let mut direct = HttpsConnector::from((self.tcp.clone(), tls));
                Box::pin(async move {
                    let io = direct.call(dst).await?;
                    Ok(Proxied { io, forward: false })
                })
            }
            Some(via) if dst.scheme() == Some(&Scheme::HTTPS) => {
                let mut tunnel = Tunnel::new(via.uri().clone(), self.tcp.clone());
                if let Some(auth) = via.basic_auth() {
                    tunnel = tunnel.with_auth(auth.clone());
                }
                let mut tunnelled = HttpsConnector::from((tunnel, tls));
                Box::pin(async move {
                    let io = tunnelled.call(dst).await?;
                    Ok(Proxied { io, forward: false })
                })
            }
            Some(via) => {
                let mut to_proxy = HttpsConnector::from((self.tcp.clone(), tls));
                let proxy = via.uri().clone();
                Box::pin(async move {
                    let io = to_proxy.call(proxy).await?;
                    Ok(Proxied { io, forward: true })
                })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn proxies(url: &str) -> Proxies {
        Proxies::new(&url.parse().unwrap())
    }

    #[test]
    fn a_configured_proxy_is_described_without_its_password_and_sends_it_only_to_forward() {
        let p = proxies("http://user:s%40cret@proxy.example:3128");
        let shown = p.describe("https://s3.amazonaws.com/b").unwrap();
        assert_eq!(shown, "http://proxy.example:3128 (from proxy)");
        assert!(!format!("{p:?}").contains("cret"), "{p:?}");
        assert_eq!(p.unsupported("https://s3.amazonaws.com/b"), None);
        // user:s@cret in base64
        let auth = p.forward_auth("http://127.0.0.1:9000/b?uploads").unwrap();
        assert_eq!(auth.to_str().unwrap(), "Basic dXNlcjpzQGNyZXQ=");
        assert!(auth.is_sensitive());
        // A tunnel carries it in its CONNECT, not in the request.
        assert_eq!(p.forward_auth("https://s3.amazonaws.com/b"), None);
    }

    #[test]
    fn an_https_proxy_is_left_to_the_sdk_path() {
        let p = proxies("https://proxy.example:3129");
        assert!(
            p.unsupported("http://127.0.0.1:9000/")
                .unwrap()
                .contains("not an http:// proxy")
        );
    }
}
