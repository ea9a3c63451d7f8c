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

/// `Net` over loopback TCP: the three runtimes' socket APIs have the same
/// shape; `$io` adapts the stream to hyper's I/O traits.
macro_rules! tcp_net {
    ($rt:ty, $net:path, $io:path) => {
        impl Net for $rt {
            fn pair(&self) -> BoxFuture<(BoxIo, BoxIo)> {
                Box::pin(async {
                    use $io as io;
                    use $net as net;
                    let listener = net::TcpListener::bind("127.0.0.1:0").await.unwrap();
                    let addr = listener.local_addr().unwrap();
                    let connect = net::TcpStream::connect(addr);
                    let (client, server) =
                        futures_lite::future::zip(connect, listener.accept()).await;
                    let (client, server) = (client.unwrap(), server.unwrap().0);
                    client.set_nodelay(true).unwrap();
                    server.set_nodelay(true).unwrap();
                    (
                        Box::new(io::new(client)) as BoxIo,
                        Box::new(io::new(server)) as BoxIo,
                    )
                })
            }
        }
    };
}

tcp_net!(Tokio, tokio::net, hyper_util::rt::TokioIo);
tcp_net!(Smol, smol::net, smol_hyper::rt::FuturesIo);
tcp_net!(AsyncStd, async_std::net, smol_hyper::rt::FuturesIo);

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
fn serve<R, S, B>(rt: &R, proto: Proto, io: BoxIo, service: S) -> Task<()>
where
    R: Net,
    S: hyper::service::Service<Request<Incoming>, Response = Response<B>> + Send + Sync + 'static,
    S::Future: Send + 'static,
    S::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    B: hyper::body::Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
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
            (Sender::H1(Arc::new(async_lock::Mutex::new(sender))), conn)
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
    runner.block_on(bounded(
        &format!("{REQUESTS} requests over {proto:?}"),
        async move {
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
        },
    ));
    assert_eq!(handled.load(Ordering::Relaxed), REQUESTS);
}

// --- W3: a client that goes away cancels the request's work -------------

#[derive(Clone, Copy, Debug)]
enum Gone {
    /// The client's token is cancelled: `wire::call` drops the request.
    CallCancelled,
    /// The client's connection is dropped mid-request.
    ConnectionClosed,
}

/// The handler starts a child task on the request's token and never
/// answers; the client gives up in the way `gone` says. The child must see
/// its token cancelled with `Disconnected` and the `ClientGone` cause.
fn client_gone<R: Net>(rt: R, proto: Proto, gone: Gone) {
    let (started_tx, started_rx) = async_channel::bounded::<()>(1);
    let (seen_tx, seen_rx) = async_channel::bounded(1);
    let service = TokenService::new(
        rt.clone(),
        CancelToken::new(),
        service_fn({
            let rt = rt.clone();
            move |req: Request<Incoming>| {
                let work = token_of(&req).child();
                let seen_tx = seen_tx.clone();
                rt.spawn(async move {
                    work.cancelled().await;
                    let _ = seen_tx.send(work.reason().unwrap()).await;
                })
                .detach();
                let started_tx = started_tx.clone();
                async move {
                    let _ = started_tx.send(()).await;
                    std::future::pending::<Result<Response<String>, Infallible>>().await
                }
            }
        }),
    );
    let runner = rt.clone();
    let why = runner.block_on(bounded(&format!("{gone:?} over {proto:?}"), async move {
        let (client_io, server_io) = rt.pair().await;
        let server = serve(&rt, proto, server_io, service);
        let (sender, conn) = open(&rt, proto, client_io).await;
        let token = CancelToken::new();
        let call = rt.spawn({
            let (token, rt) = (token.clone(), rt.clone());
            async move { wire::call(&token, &rt, get("/slow"), |req| sender.send(req)).await }
        });
        started_rx.recv().await.unwrap();
        match gone {
            Gone::CallCancelled => {
                token.cancel();
                let out = call.await.unwrap();
                assert_eq!(out.unwrap_err().kind(), CancelKind::Explicit);
            }
            Gone::ConnectionClosed => {
                conn.cancel().await;
                drop(call);
            }
        }
        let why = seen_rx.recv().await.unwrap();
        drop(server);
        why
    }));
    assert_eq!(
        why.kind(),
        CancelKind::Disconnected,
        "{gone:?} over {proto:?}: {why}"
    );
    assert!(why.cause().unwrap().is::<ClientGone>(), "{why}");
}

/// Every exchange of this file on each runtime: W4's 10 000 requests and
/// W3's four ways for a client to go, over HTTP/1 and HTTP/2.
macro_rules! per_runtime {
    ($($name:ident: $rt:expr;)*) => {$(
        mod $name {
            use super::*;

            #[test]
            fn ten_thousand_requests_http1() {
                exchange($rt, Proto::H1);
            }

            #[test]
            fn ten_thousand_requests_http2() {
                exchange($rt, Proto::H2);
            }

            #[test]
            fn client_gone_http1_call_cancelled() {
                client_gone($rt, Proto::H1, Gone::CallCancelled);
            }

            #[test]
            fn client_gone_http1_connection_closed() {
                client_gone($rt, Proto::H1, Gone::ConnectionClosed);
            }

            #[test]
            fn client_gone_http2_call_cancelled() {
                client_gone($rt, Proto::H2, Gone::CallCancelled);
            }

            #[test]
            fn client_gone_http2_connection_closed() {
                client_gone($rt, Proto::H2, Gone::ConnectionClosed);
            }
        }
    )*};
}

per_runtime! {
    on_tokio_current_thread: Tokio::current_thread().unwrap();
    on_tokio_multi_thread: Tokio::new().unwrap();
    on_smol: Smol::new().unwrap();
    on_async_std: AsyncStd::new().unwrap();
    on_sim: Sim::new();
}

// --- W1, W2: deadlines in and out, on the sim's exact clock --------------

/// What the handler saw of its request's token.
#[derive(Debug, Clone, PartialEq)]
struct Seen {
    deadline: Option<std::time::Instant>,
    cancelled: Option<CancelKind>,
}

/// Sends one request with `headers` to a `TokenService` (with `max`) on the
/// sim over HTTP/`proto`; returns the response, and what the handler saw if
/// it was called, with the sim's clock when the request was sent.
fn one_request(
    proto: Proto,
    max: Option<Duration>,
    headers: &[(&str, &[u8])],
) -> (Response<String>, Option<Seen>, std::time::Instant) {
    let sim = Sim::new();
    let seen = Arc::new(std::sync::Mutex::new(None));
    let mut service = TokenService::new(
        sim.clone(),
        CancelToken::new(),
        service_fn({
            let seen = seen.clone();
            move |req: Request<Incoming>| {
                let token = token_of(&req);
                *seen.lock().unwrap() = Some(Seen {
                    deadline: token.deadline(),
                    cancelled: token.reason().map(|why| why.kind()),
                });
                async { Ok::<_, Infallible>(Response::new("handled".to_string())) }
            }
        }),
    );
    if let Some(max) = max {
        service = service.max_deadline(max);
    }
    let mut req = get("/");
    for (name, value) in headers {
        req.headers_mut().append(
            hyper::header::HeaderName::from_bytes(name.as_bytes()).unwrap(),
            hyper::header::HeaderValue::from_bytes(value).unwrap(),
        );
    }
    let rt = sim.clone();
    let (response, sent_at) = sim.block_on(async move {
        let (client_io, server_io) = rt.pair().await;
        let _server = serve(&rt, proto, server_io, service);
        let (sender, _conn) = open(&rt, proto, client_io).await;
        let sent_at = rt.now();
        let response = sender.send(req).await.unwrap();
        let (parts, body) = response.into_parts();
        let body = body.collect().await.unwrap().to_bytes();
        let body = String::from_utf8(body.to_vec()).unwrap();
        (Response::from_parts(parts, body), sent_at)
    });
    let seen = seen.lock().unwrap().clone();
    (response, seen, sent_at)
}

#[test]
fn an_incoming_timeout_becomes_the_requests_deadline() {
    for proto in [Proto::H1, Proto::H2] {
        let (response, seen, sent) = one_request(proto, None, &[("grpc-timeout", b"200m")]);
        assert_eq!(response.status(), StatusCode::OK);
        let seen = seen.unwrap();
        // The sim's clock does not move while the request travels.
        assert_eq!(seen.deadline, Some(sent + Duration::from_millis(200)));
        assert_eq!(seen.cancelled, None);
    }
}

#[test]
fn the_servers_maximum_caps_the_deadline_and_applies_without_a_header() {
    let max = Duration::from_secs(1);
    let (_, seen, sent) = one_request(Proto::H1, Some(max), &[("grpc-timeout", b"10S")]);
    assert_eq!(seen.unwrap().deadline, Some(sent + max));
    let (_, seen, sent) = one_request(Proto::H1, Some(max), &[("grpc-timeout", b"300m")]);
    assert_eq!(
        seen.unwrap().deadline,
        Some(sent + Duration::from_millis(300))
    );
    let (_, seen, sent) = one_request(Proto::H1, Some(max), &[]);
    assert_eq!(seen.unwrap().deadline, Some(sent + max));
    let (_, seen, _) = one_request(Proto::H1, None, &[]);
    assert_eq!(seen.unwrap().deadline, None);
}

#[test]
fn a_zero_timeout_arrives_expired_and_an_absurd_one_means_none() {
    let (response, seen, _) = one_request(Proto::H2, None, &[("grpc-timeout", b"0S")]);
    assert_eq!(
        response.status(),
        StatusCode::OK,
        "the handler decides what to answer"
    );
    assert_eq!(seen.unwrap().cancelled, Some(CancelKind::DeadlineExceeded));
    let (_, seen, _) = one_request(Proto::H2, None, &[("grpc-timeout", b"99999999H")]);
    assert_eq!(
        seen.unwrap(),
        Seen {
            deadline: None,
            cancelled: None
        }
    );
}

#[test]
fn a_malformed_timeout_is_answered_400_without_calling_the_handler() {
    for (value, why) in [
        (&b""[..], "empty value"),
        (b"123456789S", "9 digits"),
        (b"100", "no unit"),
        (b"1h", "unknown unit"),
        (b"abcS", "not an ASCII digit"),
    ] {
        for proto in [Proto::H1, Proto::H2] {
            let (response, seen, _) = one_request(proto, None, &[("grpc-timeout", value)]);
            assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{value:?}");
            assert_eq!(response.headers()["grpc-status"], "3", "{value:?}");
            let message = response.headers()["grpc-message"].to_str().unwrap();
            assert!(message.contains(why), "{value:?}: {message}");
            assert_eq!(seen, None, "{value:?}: the handler must not run");
        }
    }
    let twice = [("grpc-timeout", &b"1S"[..]), ("grpc-timeout", b"2S")];
    let (response, seen, _) = one_request(Proto::H1, None, &twice);
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert!(
        response.headers()["grpc-message"]
            .to_str()
            .unwrap()
            .contains("more than once")
    );
    assert_eq!(seen, None);
}

#[test]
fn a_malformed_timeout_on_a_grpc_request_is_a_trailers_only_invalid_argument() {
    let headers = [
        ("content-type", &b"application/grpc+proto"[..]),
        ("grpc-timeout", b"5x"),
    ];
    let (response, seen, _) = one_request(Proto::H2, None, &headers);
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["content-type"], "application/grpc+proto");
    assert_eq!(response.headers()["grpc-status"], "3");
    assert_eq!(seen, None);
    let web = [
        ("content-type", &b"application/grpc-web"[..]),
        ("grpc-timeout", b"5x"),
    ];
    let (response, _, _) = one_request(Proto::H1, None, &web);
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["content-type"], "application/grpc-web");
}

#[test]
fn the_requests_token_fires_at_the_callers_deadline() {
    for proto in [Proto::H1, Proto::H2] {
        the_token_fires_at_the_deadline(proto);
    }
}

fn the_token_fires_at_the_deadline(proto: Proto) {
    let sim = Sim::new();
    let service = TokenService::new(
        sim.clone(),
        CancelToken::new(),
        service_fn(|req: Request<Incoming>| {
            let token = token_of(&req);
            async move {
                token.cancelled().await;
                let why = token.reason().unwrap().kind();
                Ok::<_, Infallible>(Response::new(format!("{why:?}")))
            }
        }),
    );
    let rt = sim.clone();
    let (answer, took) = sim.block_on(async move {
        let (client_io, server_io) = rt.pair().await;
        let _server = serve(&rt, proto, server_io, service);
        let (sender, _conn) = open(&rt, proto, client_io).await;
        let start = rt.now();
        let mut req = get("/");
        req.headers_mut()
            .insert("grpc-timeout", "3S".parse().unwrap());
        let response = sender.send(req);
        let answer = text(response.await.unwrap()).await;
        (answer, rt.now() - start)
    });
    assert_eq!(answer, "DeadlineExceeded");
    assert_eq!(took, Duration::from_secs(3));
}

/// A clock that reads `now` and never wakes: a token's deadline can be
/// past on it while the token's own timer has not fired.
struct Clock(std::time::Instant);

impl Timer for Clock {
    type Sleep = std::future::Pending<()>;

    fn now(&self) -> std::time::Instant {
        self.0
    }

    fn sleep_until(&self, _: std::time::Instant) -> Self::Sleep {
        std::future::pending()
    }
}

#[test]
fn an_outgoing_request_carries_the_remaining_deadline_and_an_expired_one_is_not_sent() {
    let sim = Sim::new();
    let start = sim.now();
    let token = CancelToken::with_deadline(&sim, start + Duration::from_millis(250));
    let mut headers = hyper::HeaderMap::new();
    wire::write_deadline(
        &token,
        &Clock(start + Duration::from_millis(50)),
        &mut headers,
    )
    .unwrap();
    assert_eq!(headers["grpc-timeout"], "200000u");

    // Past the deadline by the caller's clock, before the timer fired.
    let late = Clock(start + Duration::from_millis(250));
    assert!(!token.is_cancelled());
    let refused = wire::write_deadline(&token, &late, &mut headers).unwrap_err();
    assert_eq!(refused.kind(), CancelKind::DeadlineExceeded);
    assert_eq!(
        headers["grpc-timeout"], "200000u",
        "headers are left as they were"
    );
    let sent = AtomicUsize::new(0);
    let call = wire::call(&token, &late, get("/"), |_| {
        sent.fetch_add(1, Ordering::Relaxed);
        async {}
    });
    let refused = futures_lite::future::block_on(call).unwrap_err();
    assert_eq!(refused.kind(), CancelKind::DeadlineExceeded);
    assert_eq!(
        sent.load(Ordering::Relaxed),
        0,
        "an expired request is not sent"
    );

    // A cancelled token refuses with its own cause.
    let cancelled = CancelToken::new();
    cancelled.cancel();
    let refused = wire::write_deadline(&cancelled, &sim, &mut headers).unwrap_err();
    assert_eq!(refused.kind(), CancelKind::Explicit);

    // A deadline never grows: a header already there that is shorter
    // than the token's remaining time stays, one that is longer gives way.
    let now = Clock(start);
    headers.insert("grpc-timeout", "100m".parse().unwrap());
    wire::write_deadline(&token, &now, &mut headers).unwrap();
    assert_eq!(headers["grpc-timeout"], "100000u");
    headers.insert("grpc-timeout", "10S".parse().unwrap());
    wire::write_deadline(&token, &now, &mut headers).unwrap();
    assert_eq!(headers["grpc-timeout"], "250000u");
    // A token with no deadline keeps a well-formed header, drops a
    // malformed one.
    wire::write_deadline(&CancelToken::new(), &sim, &mut headers).unwrap();
    assert_eq!(headers["grpc-timeout"], "250000u");
    headers.insert("grpc-timeout", "soon".parse().unwrap());
    wire::write_deadline(&CancelToken::new(), &sim, &mut headers).unwrap();
    assert!(headers.get("grpc-timeout").is_none());
}

// --- W3 beyond the handler's future: bodies, panics, errors -------------

/// A server on the sim over HTTP/`proto` whose handler starts a work task
/// on a child of its request's token (which reports the cause it sees,
/// if any, once the request's connection is over) and then answers with
/// `answer`; `client` talks to it. Returns the client's output and the
/// work's cause.
fn on_sim_with_work<B, A, AF, C, CF, T>(
    proto: Proto,
    answer: A,
    client: C,
) -> (T, Option<cancelkit::token::Cancelled>)
where
    A: Fn() -> AF + Send + Sync + 'static,
    AF: Future<Output = Result<Response<B>, &'static str>> + Send + 'static,
    B: hyper::body::Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    C: FnOnce(Sender, async_channel::Receiver<()>) -> CF,
    CF: Future<Output = T>,
{
    let sim = Sim::new();
    let (started_tx, started_rx) = async_channel::bounded::<()>(1);
    let (work_tx, work_rx) = async_channel::bounded(1);
    let answer = Arc::new(answer);
    let service = TokenService::new(
        sim.clone(),
        CancelToken::new(),
        service_fn(move |req: Request<Incoming>| {
            let _ = work_tx.try_send(token_of(&req).child());
            let (answer, started_tx) = (answer.clone(), started_tx.clone());
            async move {
                let _ = started_tx.send(()).await;
                answer().await
            }
        }),
    );
    let rt = sim.clone();
    let (out, work) = sim.block_on(async move {
        let (client_io, server_io) = rt.pair().await;
        let server = serve(&rt, proto, server_io, service);
        let (sender, conn) = open(&rt, proto, client_io).await;
        let out = client(sender, started_rx).await;
        drop(conn);
        let _ = server.await;
        (out, work_rx.recv().await.unwrap())
    });
    // What the connection leaves to other tasks (HTTP/2 streams) runs to
    // its end before the verdict.
    sim.settle();
    (out, work.reason())
}

#[test]
fn a_client_that_goes_while_the_body_streams_cancels_the_request() {
    use http_body_util::StreamBody;
    use hyper::body::Frame;

    for proto in [Proto::H1, Proto::H2] {
        // The body sends one frame, then streams on for ever.
        let endless = || async {
            let first = futures_lite::stream::once(Ok::<_, Infallible>(Frame::data(
                Bytes::from_static(b"first"),
            )));
            let rest = futures_lite::stream::pending();
            Ok(Response::new(StreamBody::new(
                futures_lite::StreamExt::chain(first, rest),
            )))
        };
        let (first, why) = on_sim_with_work(proto, endless, |sender, _| async move {
            let response = sender.send(get("/stream")).await.unwrap();
            let mut body = response.into_body();
            let frame = body.frame().await.unwrap().unwrap();
            frame.into_data().unwrap()
            // the client goes: its connection is dropped mid-body
        });
        assert_eq!(first, "first");
        let why = why.unwrap_or_else(|| panic!("{proto:?}: the work was not cancelled"));
        assert_eq!(why.kind(), CancelKind::Disconnected, "{proto:?}: {why}");
        assert!(why.cause().unwrap().is::<ClientGone>());
    }
}

#[test]
fn a_finished_response_leaves_the_token_alone() {
    for proto in [Proto::H1, Proto::H2] {
        let ok = || async { Ok(Response::new("done".to_string())) };
        let (answer, why) = on_sim_with_work(proto, ok, |sender, _| async move {
            text(sender.send(get("/")).await.unwrap()).await
        });
        assert_eq!(answer, "done");
        assert!(
            why.is_none(),
            "{proto:?}: cancelled after the response: {why:?}"
        );
    }
}

#[test]
fn a_handler_that_fails_is_not_a_client_that_went_away() {
    let fails = || async { Err::<Response<String>, _>("the handler failed") };
    let (sent, why) = on_sim_with_work(Proto::H1, fails, |sender, _| async move {
        sender.send(get("/")).await.is_ok()
    });
    assert!(
        !sent,
        "hyper answers a failed service by closing the connection"
    );
    assert!(why.is_none(), "cancelled: {why:?}");
}

#[test]
fn a_handler_that_panics_cancels_its_token_as_panicked() {
    let panics = || async {
        if true {
            panic!("the handler panics");
        }
        Ok(Response::new(String::new()))
    };
    // HTTP/1 on the sim: hyper drops the request while the panic unwinds.
    let (sent, why) = on_sim_with_work(Proto::H1, panics, |sender, _| async move {
        sender.send(get("/")).await.is_ok()
    });
    assert!(!sent);
    let why = why.expect("the work was cancelled");
    assert_eq!(why.kind(), CancelKind::GuardDropped, "{why}");
    assert!(why.cause().unwrap().is::<wire::HandlerPanicked>(), "{why}");

    // HTTP/2 on smol: the request runs in a task of its own, whose panic
    // smol's executor catches; it drops the request after the unwinding.
    let rt = Smol::new().unwrap();
    let (work_tx, work_rx) = async_channel::bounded(1);
    let service = TokenService::new(
        rt.clone(),
        CancelToken::new(),
        service_fn(move |req: Request<Incoming>| {
            let _ = work_tx.try_send(token_of(&req).child());
            panics()
        }),
    );
    let runner = rt.clone();
    let why = runner.block_on(bounded("a panicking HTTP/2 handler", async move {
        let (client_io, server_io) = rt.pair().await;
        let _server = serve(&rt, Proto::H2, server_io, service);
        let (sender, _conn) = open(&rt, Proto::H2, client_io).await;
        assert!(sender.send(get("/")).await.is_err());
        let work = work_rx.recv().await.unwrap();
        work.cancelled().await;
        work.reason().unwrap()
    }));
    assert_eq!(why.kind(), CancelKind::GuardDropped, "{why}");
    assert!(why.cause().unwrap().is::<wire::HandlerPanicked>(), "{why}");
}
