//! The names a service answers to. The stack mints any identity on request, so a web page the
//! user opens must not reach it through DNS rebinding (its own name resolved to 127.0.0.1): every
//! request must name the service by a loopback name or address, by the host of one of the
//! stack's own URLs, or by a host the user allowed with `--allow-host`. Anything else is refused
//! with 403 before any route runs.

use std::collections::BTreeSet;
use std::net::IpAddr;
use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::Response;

use crate::{ErrorEnvelope, url_hostname};

/// The hosts a service answers to, besides loopback names and addresses (which it always does).
#[derive(Debug, Clone, Default)]
pub struct AllowedHosts {
    hosts: BTreeSet<String>,
}

impl AllowedHosts {
    /// Loopback only: `localhost`, `*.localhost` (RFC 6761: they never leave the machine),
    /// 127.0.0.0/8 and `::1`.
    pub fn loopback() -> AllowedHosts {
        AllowedHosts::default()
    }

    /// Also answers to `host` (a name or an address, without port).
    pub fn allow(&mut self, host: &str) {
        let host = host.trim().trim_start_matches('[').trim_end_matches(']').to_ascii_lowercase();
        if !host.is_empty() {
            self.hosts.insert(host);
        }
    }

    /// Also answers to the host of `url` (a service's own advertised URL).
    pub fn allow_url(&mut self, url: &str) {
        self.allow(url_hostname(url));
    }

    /// Whether a request whose Host header (or HTTP/2 authority) is `authority` may be served.
    pub fn allows(&self, authority: &str) -> bool {
        let host = url_hostname(authority).to_ascii_lowercase();
        if host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback()) {
            return true;
        }
        host == "localhost" || host.ends_with(".localhost") || self.hosts.contains(&host)
    }
}

/// Middleware: serves the request only when it names an allowed host (see the module's words).
pub async fn require_allowed_host(State(allowed): State<Arc<AllowedHosts>>, request: Request, next: Next) -> Response {
    let authority = request
        .headers()
        .get(header::HOST)
        .and_then(|value| value.to_str().ok())
        .map(str::to_string)
        .or_else(|| request.uri().authority().map(|a| a.to_string()));
    match authority {
        Some(authority) if allowed.allows(&authority) => next.run(request).await,
        Some(authority) => {
            let host = url_hostname(&authority).to_string();
            ErrorEnvelope::Http.response(
                StatusCode::FORBIDDEN,
                format!(
                    "host {host:?} is not a name of this stack: sigstack answers only loopback names and its own \
                     URLs (a defence against DNS rebinding, since it mints any identity); start it with \
                     --allow-host {host} to allow it"
                ),
            )
        }
        None => ErrorEnvelope::Http.response(StatusCode::BAD_REQUEST, "the request names no host (Host header)"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_names_and_addresses_always() {
        let allowed = AllowedHosts::loopback();
        for authority in ["127.0.0.1:8091", "127.8.9.10", "localhost:1", "LOCALHOST", "app.localhost:80", "[::1]:8091"]
        {
            assert!(allowed.allows(authority), "{authority}");
        }
        for authority in ["evil.test", "evil.test:8091", "localhost.evil.test", "10.0.0.1:8091", "0.0.0.0:8091", ""] {
            assert!(!allowed.allows(authority), "{authority}");
        }
    }

    #[test]
    fn own_urls_and_allowed_hosts() {
        let mut allowed = AllowedHosts::loopback();
        allowed.allow_url("http://oidc:8091");
        allowed.allow("Sigstack.Example");
        allowed.allow("[fd00::1]");
        assert!(allowed.allows("oidc:8091") && allowed.allows("oidc"));
        assert!(allowed.allows("sigstack.example:443"));
        assert!(allowed.allows("[fd00::1]:8091"));
        assert!(!allowed.allows("fulcio:8092"));
    }
}
