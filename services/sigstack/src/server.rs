//! Binding listeners and serving routers until told to stop.

use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use axum::Router;
use sigstack_wire::AllowedHosts;
use tokio::net::TcpListener;

/// A service bound to its socket, ready to serve.
pub struct BoundService {
    /// Its name in stack.json.
    pub name: &'static str,
    /// The bound socket.
    pub listener: TcpListener,
    /// Its address.
    pub addr: SocketAddr,
    /// The hosts it answers to besides loopback (see [`AllowedHosts`]).
    allowed: AllowedHosts,
}

impl BoundService {
    /// Binds `name` on `host:port` (port 0 picks a free one). Until [`BoundService::answer_to`]
    /// says more, it answers to loopback names and the address it binds.
    pub async fn bind(name: &'static str, host: IpAddr, port: u16) -> anyhow::Result<Self> {
        let listener = TcpListener::bind((host, port)).await.with_context(|| {
            format!("{name}: cannot listen on {host}:{port} (in use? pass --ephemeral-ports or another port)")
        })?;
        let addr = listener.local_addr()?;
        let allowed = Exposure::default().allowed_hosts(host, []);
        Ok(BoundService { name, listener, addr, allowed })
    }

    /// Answers to the hosts of `urls` (its advertised URLs) and to those `exposure` allows, as
    /// well as loopback names and the address it binds.
    pub fn answer_to<'a>(&mut self, exposure: &Exposure, urls: impl IntoIterator<Item = &'a str>) {
        self.allowed = exposure.allowed_hosts(self.addr.ip(), urls);
    }

    /// `http://host:port`; a service bound to every interface is advertised at loopback (the
    /// address that surely reaches it from this machine), never as `0.0.0.0`.
    pub fn url(&self) -> String {
        match self.addr.ip() {
            IpAddr::V6(ip) if ip.is_unspecified() => format!("http://[::1]:{}", self.addr.port()),
            IpAddr::V4(ip) if ip.is_unspecified() => format!("http://127.0.0.1:{}", self.addr.port()),
            IpAddr::V6(ip) => format!("http://[{ip}]:{}", self.addr.port()),
            IpAddr::V4(ip) => format!("http://{ip}:{}", self.addr.port()),
        }
    }
}

/// Who besides this machine may reach a stack: `--allow-network` (bind beyond loopback) and
/// `--allow-host` (further names the services answer to).
#[derive(Debug, Clone, Default)]
pub struct Exposure {
    /// Binding an address other than loopback is allowed.
    pub allow_network: bool,
    /// Host names (or addresses) the services answer to besides loopback and their own URLs.
    pub allow_hosts: Vec<String>,
}

impl Exposure {
    /// The hosts a service bound to `bind` answers to: loopback names, `bind` itself when it is
    /// one address, the hosts of `names` (host names or URLs), and the user's `allow_hosts`.
    pub fn allowed_hosts<'a>(&self, bind: IpAddr, names: impl IntoIterator<Item = &'a str>) -> AllowedHosts {
        let mut allowed = AllowedHosts::loopback();
        if !bind.is_unspecified() {
            allowed.allow(&bind.to_string());
        }
        for name in names {
            allowed.allow_url(name);
        }
        for host in &self.allow_hosts {
            allowed.allow(host);
        }
        allowed
    }

    /// Refuses to bind `host` when it is not loopback, unless `allow_network`; when it is
    /// allowed, says on every start what is exposed (`what`: the service or "the stack").
    pub fn check_bind(&self, host: IpAddr, what: &str) -> anyhow::Result<()> {
        if host.is_loopback() {
            return Ok(());
        }
        anyhow::ensure!(
            self.allow_network,
            "refusing to listen on {host}: {what} would be reachable from the network, and it mints tokens \
             and certificates for any identity on request. Keep the default (127.0.0.1), or pass \
             --allow-network if a test network really needs it"
        );
        eprintln!(
            "sigstack: WARNING: {what} listens on {host} (--allow-network): anyone who can reach this address can \
             mint an identity token for any identity, get a signing certificate for it, and write to the logs. \
             Use only on a network of test machines."
        );
        Ok(())
    }
}

/// How long a client may take to send a request's head: one that holds a connection open
/// without finishing it (a slow loris) is cut off.
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a request may take to be answered (the v2 log's longest wait is a checkpoint, about a
/// second; a stream such as the explorer's events is timed only until its head is sent).
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);
/// Connections one service serves at once; further ones wait in the listen backlog.
pub const MAX_CONNECTIONS: usize = 512;

/// Servers running as tasks; stopped (and drained) with [`Servers::stop`], or aborted when dropped.
pub struct Servers {
    stop: tokio::sync::watch::Sender<bool>,
    tasks: tokio::task::JoinSet<anyhow::Result<()>>,
}

impl Servers {
    /// Starts serving every `(service, router)` pair, each answering only to its own allowed
    /// hosts (and loopback), with the limits above.
    pub fn spawn(services: Vec<(BoundService, Router)>) -> Servers {
        let (stop, stop_rx) = tokio::sync::watch::channel(false);
        let mut tasks = tokio::task::JoinSet::new();
        for (service, router) in services {
            let router = guarded(router, Arc::new(service.allowed));
            let stopped = stop_rx.clone();
            let name = service.name;
            tasks.spawn(async move {
                serve(service.listener, router, stopped).await.with_context(|| format!("{name} server failed"))
            });
        }
        Servers { stop, tasks }
    }

    /// Serves until `shutdown` resolves (or a server ends on its own, which is an error), then
    /// drains the servers.
    pub async fn run_until(mut self, shutdown: impl Future<Output = ()>) -> anyhow::Result<()> {
        tokio::select! {
            () = shutdown => {}
            Some(result) = self.tasks.join_next() => {
                let _ = self.stop.send(true);
                result??;
                anyhow::bail!("a server stopped unexpectedly");
            }
        }
        self.stop().await
    }

    /// Stops the servers gracefully and waits for them.
    pub async fn stop(mut self) -> anyhow::Result<()> {
        let _ = self.stop.send(true);
        while let Some(result) = self.tasks.join_next().await {
            result??;
        }
        Ok(())
    }
}

/// Serves every `(service, router)` pair until Ctrl-C or SIGTERM, then drains them.
pub async fn serve_all(services: Vec<(BoundService, Router)>) -> anyhow::Result<()> {
    Servers::spawn(services).run_until(shutdown_signal()).await
}

/// `router` behind the host check (outermost: nothing runs for a foreign host) and the request
/// timeout.
pub fn guarded(router: Router, allowed: Arc<AllowedHosts>) -> Router {
    router
        .layer(tower_http::timeout::TimeoutLayer::with_status_code(
            axum::http::StatusCode::SERVICE_UNAVAILABLE,
            REQUEST_TIMEOUT,
        ))
        .layer(axum::middleware::from_fn_with_state(allowed, sigstack_wire::require_allowed_host))
}

/// Resolves once `stopped` turns true (or its sender is gone).
async fn stop_requested(stopped: &mut tokio::sync::watch::Receiver<bool>) {
    // The guard wait_for returns is dropped here, before anything else awaits.
    let _ = stopped.wait_for(|stopped| *stopped).await;
}

/// Serves `router` on `listener` until `stopped` turns true, then lets the connections in flight
/// finish. axum::serve has no header-read timeout and no connection bound, hence this loop (the
/// one hyper-util documents), with both.
async fn serve(
    listener: TcpListener,
    router: Router,
    mut stopped: tokio::sync::watch::Receiver<bool>,
) -> anyhow::Result<()> {
    use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
    use hyper_util::service::TowerToHyperService;
    use tower::ServiceExt;
    let connections = Arc::new(tokio::sync::Semaphore::new(MAX_CONNECTIONS));
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let mut builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
    builder.http1().timer(TokioTimer::new()).header_read_timeout(HEADER_READ_TIMEOUT);
    loop {
        let permit = tokio::select! {
            permit = connections.clone().acquire_owned() => permit?,
            () = stop_requested(&mut stopped) => break,
        };
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                // Out of file descriptors and the like: the listener is fine, try again shortly.
                Err(_) => {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = stop_requested(&mut stopped) => break,
        };
        let service = TowerToHyperService::new(
            router
                .clone()
                .map_request(|request: axum::http::Request<hyper::body::Incoming>| request.map(axum::body::Body::new)),
        );
        let connection =
            graceful.watch(builder.serve_connection_with_upgrades(TokioIo::new(stream), service).into_owned());
        tokio::spawn(async move {
            let _ = connection.await;
            drop(permit);
        });
    }
    drop(listener);
    // A stream that never ends (the explorer's events) must not hold the stop up.
    let _ = tokio::time::timeout(Duration::from_secs(5), graceful.shutdown()).await;
    Ok(())
}

/// Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        () = ctrl_c => {}
        () = terminate => {}
    }
}
