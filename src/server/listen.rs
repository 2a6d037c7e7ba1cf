//! The accept loop: a cap on concurrent connections (further ones wait in
//! the listen backlog) and a lower one per client address (further ones
//! from that address are closed at once), a deadline for each request's headers (which is
//! also how long an idle keep-alive connection may stay open, so slow or
//! silent clients cannot hold connections), optional TLS, and a graceful
//! stop that lets requests in flight finish.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder;
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tower::ServiceExt as _;

use super::tls::Tls;

/// Limits on what clients may hold.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_connections: usize,
    /// Most connections one client address may hold (an IPv6 client: its
    /// /64 network); 0 for no cap. Trusted proxies are exempt.
    pub max_connections_per_address: usize,
    /// Time to send a request's headers; also the idle keep-alive limit.
    pub header_timeout: Duration,
    /// Time to finish the TLS handshake.
    pub handshake_timeout: Duration,
    /// How long a stop waits for requests in flight.
    pub drain_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_connections: 1024,
            max_connections_per_address: 64,
            header_timeout: Duration::from_secs(30),
            handshake_timeout: Duration::from_secs(10),
            drain_timeout: Duration::from_secs(30),
        }
    }
}

/// Open connections per client address, below the global cap: one client
/// holding idle sockets cannot take every slot. A connection over its
/// address's cap is closed before anything is read from it: no task, no
/// TLS handshake, no global slot. (A `503` would need the request read
/// first, or the kernel's reset may eat the answer; over TLS it would need
/// the handshake the cap is there to save.)
struct PerAddress {
    cap: usize,
    /// Not capped: every client of a trusted reverse proxy shares its
    /// address.
    exempt: Vec<IpAddr>,
    open: Arc<Mutex<HashMap<IpAddr, usize>>>,
}

/// One connection's count against its address; given back on drop.
struct AddressSlot {
    key: IpAddr,
    open: Arc<Mutex<HashMap<IpAddr, usize>>>,
}

impl Drop for AddressSlot {
    fn drop(&mut self) {
        if let Ok(mut open) = self.open.lock()
            && let Some(count) = open.get_mut(&self.key)
        {
            *count -= 1;
            if *count == 0 {
                open.remove(&self.key);
            }
        }
    }
}

impl PerAddress {
    /// A slot for a connection from `ip`; `Ok(None)` when the address is
    /// not capped, `Err` when it is at its cap.
    fn take(&self, ip: IpAddr) -> Result<Option<AddressSlot>, ()> {
        let ip = ip.to_canonical();
        if self.cap == 0 || self.exempt.contains(&ip) {
            return Ok(None);
        }
        let key = match ip {
            IpAddr::V4(_) => ip,
            // One IPv6 client usually holds a whole /64.
            IpAddr::V6(v6) => IpAddr::V6((u128::from(v6) & !((1u128 << 64) - 1)).into()),
        };
        let Ok(mut open) = self.open.lock() else {
            return Ok(None);
        };
        let count = open.entry(key).or_insert(0);
        if *count >= self.cap {
            return Err(());
        }
        *count += 1;
        Ok(Some(AddressSlot {
            key,
            open: self.open.clone(),
        }))
    }
}

/// Serves `router` on `listener` until `stop` resolves. `trusted_proxies`
/// are exempt from the per-address cap.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    tls: Option<Tls>,
    limits: Limits,
    trusted_proxies: &[IpAddr],
    stop: impl std::future::Future<Output = ()>,
) {
    let slots = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let per_address = PerAddress {
        cap: limits.max_connections_per_address,
        exempt: trusted_proxies.iter().map(|ip| ip.to_canonical()).collect(),
        open: Arc::default(),
    };
    let graceful = GracefulShutdown::new();
    tokio::pin!(stop);
    loop {
        let Ok(permit) = slots.clone().acquire_owned().await else {
            break;
        };
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(pair) => pair,
                Err(e) => {
                    // Out of file descriptors and the like: wait, go on.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut stop => break,
        };
        // Over its address's cap: closed at once, and its global slot (the
        // permit) goes back for the next connection.
        let Ok(address_slot) = per_address.take(peer.ip()) else {
            tracing::debug!(client = %peer.ip(), "connection refused: the address is at its cap");
            drop(stream);
            continue;
        };
        let permit = (permit, address_slot);
        let router = router.clone();
        let tls = tls.as_ref().and_then(Tls::acceptor);
        let watcher = graceful.watcher();
        tokio::spawn(async move {
            let _permit = permit;
            let _ = stream.set_nodelay(true);
            // A client must start talking within the header timeout (hyper's
            // own header deadline starts only with the first byte).
            let mut first = [0u8; 1];
            match tokio::time::timeout(limits.header_timeout, stream.peek(&mut first)).await {
                Ok(Ok(n)) if n > 0 => {}
                _ => return,
            }
            match tls {
                None => connection(stream, peer, router, limits, watcher).await,
                Some(acceptor) => {
                    match tokio::time::timeout(limits.handshake_timeout, acceptor.accept(stream))
                        .await
                    {
                        Ok(Ok(stream)) => connection(stream, peer, router, limits, watcher).await,
                        Ok(Err(e)) => tracing::debug!(error = %e, "TLS handshake failed"),
                        Err(_) => tracing::debug!("TLS handshake timed out"),
                    }
                }
            }
        });
    }
    drop(listener);
    if tokio::time::timeout(limits.drain_timeout, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("requests still running after the drain timeout were cut");
    }
}

async fn connection<S>(
    stream: S,
    peer: SocketAddr,
    router: Router,
    limits: Limits,
    watcher: hyper_util::server::graceful::Watcher,
) where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let service = router.map_request(move |mut request: hyper::Request<Incoming>| {
        request.extensions_mut().insert(ConnectInfo(peer));
        request
    });
    let mut builder = Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout)
        .max_buf_size(64 * 1024);
    builder
        .http2()
        .timer(TokioTimer::new())
        .keep_alive_interval(Some(limits.header_timeout))
        .max_concurrent_streams(64);
    let io = TokioIo::new(stream);
    let conn = builder.serve_connection_with_upgrades(io, TowerToHyperService::new(service));
    if let Err(e) = watcher.watch(conn.into_owned()).await {
        tracing::debug!(error = %e, "connection ended with an error");
    }
}
