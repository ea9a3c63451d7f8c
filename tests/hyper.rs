//! hyper through cancelkit on every runtime ([W4]): a client and a server
//! exchange 10 000 requests over HTTP/1 and HTTP/2 on tokio (both
//! flavours), smol, async-std and the sim; the request's token carries the
//! caller's deadline ([W1], [W2]) and is cancelled when the client goes
//! away ([W3]), on each of them.
//!
//! tokio, smol and async-std talk over loopback TCP (hyper-util's `TokioIo`,
//! smol-hyper's `FuturesIo`); the sim over an in-memory pipe.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use cancelkit::rt::{AsyncStd, Smol, Tokio};
use cancelkit::sim::Sim;
use cancelkit::token::CancelKind;
use cancelkit::wire::{self, ClientGone, HyperExecutor, HyperTimer, TokenService};
use cancelkit::{CancelToken, Runtime, SpawnerExt, Task, Timer};
use http_body_util::{BodyExt, Empty};
use hyper::body::{Bytes, Incoming};
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};

#[path = "support/bounded.rs"]
mod bounded;
use bounded::bounded;

/// A connected stream in hyper's I/O traits.
trait Io: hyper::rt::Read + hyper::rt::Write + Send + Unpin + 'static {}
impl<T: hyper::rt::Read + hyper::rt::Write + Send + Unpin + 'static> Io for T {}
type BoxIo = Box<dyn Io>;
type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

/// A runtime under test, and how to get a connected pair of streams on it.
trait Net: Runtime + Clone + Send + Sync + Unpin + 'static {
    /// (client end, server end)
    fn pair(&self) -> BoxFuture<(BoxIo, BoxIo)>;
}

impl Net for Tokio {
    fn pair(&self) -> BoxFuture<(BoxIo, BoxIo)> {
        use hyper_util::rt::TokioIo;
        Box::pin(async {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let addr = listener.local_addr().unwrap();
            let (client, server) =
                futures_lite::future::zip(tokio::net::TcpStream::connect(addr), listener.accept())
                    .await;
            let (client, server) = (client.unwrap(), server.unwrap().0);
            client.set_nodelay(true).unwrap();
            server.set_nodelay(true).unwrap();
            (
                Box::new(TokioIo::new(client)) as BoxIo,
                Box::new(TokioIo::new(server)) as BoxIo,
            )
        })
    }
}

impl Net for Smol {
    fn pair(&self) -> BoxFuture<(BoxIo, BoxIo)> {
        use smol_hyper::rt::FuturesIo;
        Box::pin(async {
            let listener = smol::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let addr = listener.local_addr().unwrap();
            let (client, server) =
                futures_lite::future::zip(smol::net::TcpStream::connect(addr), listener.accept())
                    .await;
            let (client, server) = (client.unwrap(), server.unwrap().0);
            client.set_nodelay(true).unwrap();
            server.set_nodelay(true).unwrap();
            (
                Box::new(FuturesIo::new(client)) as BoxIo,
                Box::new(FuturesIo::new(server)) as BoxIo,
            )
        })
    }
}

impl Net for AsyncStd {
    fn pair(&self) -> BoxFuture<(BoxIo, BoxIo)> {
        use smol_hyper::rt::FuturesIo;
        Box::pin(async {
            let listener = async_std::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let addr = listener.local_addr().unwrap();
            let (client, server) = futures_lite::future::zip(
                async_std::net::TcpStream::connect(addr),
                listener.accept(),
            )
            .await;
            let (client, server) = (client.unwrap(), server.unwrap().0);
            client.set_nodelay(true).unwrap();
            server.set_nodelay(true).unwrap();
            (
                Box::new(FuturesIo::new(client)) as BoxIo,
                Box::new(FuturesIo::new(server)) as BoxIo,
            )
        })
    }
}

impl Net for Sim {
    fn pair(&self) -> BoxFuture<(BoxIo, BoxIo)> {
        use hyper_util::rt::TokioIo;
        let (client, server) = tokio::io::duplex(64 * 1024);
        Box::pin(async move {
            (
                Box::new(TokioIo::new(client)) as BoxIo,
                Box::new(TokioIo::new(server)) as BoxIo,
            )
        })
    }
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Proto {
    H1,
    H2,
}

type Body = Empty<Bytes>;

/// The client end of a connection, HTTP/1 or HTTP/2.
#[derive(Clone)]
enum Sender {
    H1(Arc<async_lock::Mutex<hyper::client::conn::http1::SendRequest<Body>>>),
    H2(hyper::client::conn::http2::SendRequest<Body>),
}

impl Sender {
    async fn send(&self, req: Request<Body>) -> hyper::Result<Response<Incoming>> {
        match self {
            // hyper's contract: wait until the connection can take a
            // request (HTTP/1: the previous one is done).
            Sender::H1(sender) => {
                let mut sender = sender.lock().await;
                sender.ready().await?;
                sender.send_request(req).await
            }
            Sender::H2(sender) => {
                let mut sender = sender.clone();
                sender.ready().await?;
                sender.send_request(req).await
            }
        }
    }
}

/// Serves `io` with `service` on `rt`, as a task.
fn serve<R, S>(rt: &R, proto: Proto, io: BoxIo, service: S) -> Task<()>
where
    R: Net,
    S: hyper::service::Service<Request<Incoming>, Response = Response<String>>
        + Send
        + Sync
        + 'static,
    S::Future: Send + 'static,
    S::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    match proto {
        Proto::H1 => {
            let conn = hyper::server::conn::http1::Builder::new()
                .timer(HyperTimer::new(rt.clone()))
                .serve_connection(io, service);
            rt.spawn(async move {
                let _ = conn.await;
            })
        }
        Proto::H2 => {
            let conn = hyper::server::conn::http2::Builder::new(HyperExecutor::new(rt.clone()))
                .timer(HyperTimer::new(rt.clone()))
                .serve_connection(io, service);
            rt.spawn(async move {
                let _ = conn.await;
            })
        }
    }
}

/// Opens the client end of `io`; the returned task drives the connection.
async fn open<R: Net>(rt: &R, proto: Proto, io: BoxIo) -> (Sender, Task<()>) {
    match proto {
        Proto::H1 => {
            let (sender, conn) = hyper::client::conn::http1::handshake(io).await.unwrap();
            let conn = rt.spawn(async move {
                let _ = conn.await;
            });
            (
                Sender::H1(Arc::new(async_lock::Mutex::new(sender))),
                conn,
            )
        }
        Proto::H2 => {
            let (sender, conn) =
                hyper::client::conn::http2::Builder::new(HyperExecutor::new(rt.clone()))
                    .timer(HyperTimer::new(rt.clone()))
                    .handshake(io)
                    .await
                    .unwrap();
            let conn = rt.spawn(async move {
                let _ = conn.await;
            });
            (Sender::H2(sender), conn)
        }
    }
}

fn get(path: &str) -> Request<Body> {
    Request::get(path).body(Empty::new()).unwrap()
}

async fn text(response: Response<Incoming>) -> String {
    let body = response.into_body().collect().await.unwrap().to_bytes();
    String::from_utf8(body.to_vec()).unwrap()
}

/// The request's token, which `TokenService` put there.
fn token_of(req: &Request<Incoming>) -> CancelToken {
    req.extensions()
        .get::<CancelToken>()
        .expect("TokenService gives every request a token")
        .clone()
}

// --- W4: 10 000 requests on every runtime, HTTP/1 and HTTP/2 -------------

const REQUESTS: usize = 10_000;

/// A client sends REQUESTS requests, each under a token with a deadline,
/// and the server, behind `TokenService`, answers each with its path and
/// whether its token had the deadline.
fn exchange<R: Net>(rt: R, proto: Proto) {
    let server_token = CancelToken::new();
    let handled = Arc::new(AtomicUsize::new(0));
    let service = TokenService::new(
        rt.clone(),
        server_token.clone(),
        service_fn({
            let handled = handled.clone();
            move |req: Request<Incoming>| {
                let token = token_of(&req);
                handled.fetch_add(1, Ordering::Relaxed);
                async move {
                    let answer = format!("{} {}", req.uri().path(), token.deadline().is_some());
                    Ok::<_, Infallible>(Response::new(answer))
                }
            }
        }),
    );
    let runner = rt.clone();
    runner.block_on(bounded(&format!("{REQUESTS} requests over {proto:?}"), async move {
        let (client_io, server_io) = rt.pair().await;
        let server = serve(&rt, proto, server_io, service);
        let (sender, conn) = open(&rt, proto, client_io).await;
        let token = CancelToken::with_timeout(&rt, Duration::from_secs(600));
        // HTTP/1 one request at a time; HTTP/2 ten streams at once.
        let lanes = if proto == Proto::H1 { 1 } else { 10 };
        let mut clients = Vec::new();
        for lane in 0..lanes {
            let (sender, token, rt2) = (sender.clone(), token.clone(), rt.clone());
            clients.push(rt.spawn(async move {
                for i in (lane..REQUESTS).step_by(lanes) {
                    let path = format!("/{i}");
                    let response = wire::call(&token, &rt2, get(&path), |req| sender.send(req))
                        .await
                        .expect("the client's token is not cancelled")
                        .expect("the request succeeds");
                    assert_eq!(response.status(), StatusCode::OK);
                    assert_eq!(text(response).await, format!("{path} true"));
                }
            }));
        }
        for client in clients {
            client.await.unwrap();
        }
        drop(sender);
        conn.await.unwrap();
        server.await.unwrap();
    }));
    assert_eq!(handled.load(Ordering::Relaxed), REQUESTS);
}

#[test]
fn ten_thousand_requests_http1_tokio() {
    exchange(Tokio::current_thread().unwrap(), Proto::H1);
}

#[test]
fn ten_thousand_requests_http2_tokio() {
    exchange(Tokio::current_thread().unwrap(), Proto::H2);
}

#[test]
fn ten_thousand_requests_http1_tokio_multi_thread() {
    exchange(Tokio::new().unwrap(), Proto::H1);
}

#[test]
fn ten_thousand_requests_http2_tokio_multi_thread() {
    exchange(Tokio::new().unwrap(), Proto::H2);
}

#[test]
fn ten_thousand_requests_http1_smol() {
    exchange(Smol::new().unwrap(), Proto::H1);
}

#[test]
fn ten_thousand_requests_http2_smol() {
    exchange(Smol::new().unwrap(), Proto::H2);
}

#[test]
fn ten_thousand_requests_http1_async_std() {
    exchange(AsyncStd::new().unwrap(), Proto::H1);
}

#[test]
fn ten_thousand_requests_http2_async_std() {
    exchange(AsyncStd::new().unwrap(), Proto::H2);
}

#[test]
fn ten_thousand_requests_http1_sim() {
    exchange(Sim::new(), Proto::H1);
}

#[test]
fn ten_thousand_requests_http2_sim() {
    exchange(Sim::new(), Proto::H2);
}
