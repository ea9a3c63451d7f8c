//! A deadline set by the first caller reaches the last service, and a
//! caller that goes away stops the work at every hop ([W1]–[W4]).
//!
//! Three HTTP services, each on a different runtime — hop 1 on smol, hop 2
//! on tokio, hop 3 on async-std — all built on hyper through cancelkit's
//! `wire` module. Each gives its requests a token with the caller's
//! deadline (`TokenService`) and calls the next hop with what is left of it
//! (`wire::call`). Run it with
//!
//! ```text
//! cargo run --example deadline_chain --features hyper,tokio,smol,async-std
//! ```
//!
//! It sends two requests and prints what each hop saw: one with a 200 ms
//! deadline that hop 3 outlasts, and one whose client hangs up while hop 3
//! works. `tests/deadline_chain.rs` runs the same chain and checks it.

use std::convert::Infallible;
use std::fmt;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use cancelkit::rt::{AsyncStd, Smol, Tokio};
use cancelkit::token::CancelKind;
use cancelkit::wire::{self, TokenService};
use cancelkit::{CancelToken, Runtime, SpawnerExt, TaskGroup};
use http_body_util::{BodyExt, Empty, Full};
use hyper::body::{Bytes, Incoming};
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};

/// A connected stream in hyper's I/O traits.
pub(crate) trait Io: hyper::rt::Read + hyper::rt::Write + Send + Unpin + 'static {}
impl<T: hyper::rt::Read + hyper::rt::Write + Send + Unpin + 'static> Io for T {}
pub(crate) type BoxIo = Box<dyn Io>;
type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

/// What a hop needs of its runtime besides cancelkit's traits: TCP.
pub(crate) trait Net: Runtime + Clone + Send + Sync + 'static {
    /// The runtime's name, for the log.
    const NAME: &'static str;
    /// Accepts connections on a loopback port, calling `serve` for each.
    fn listen(&self, serve: Arc<dyn Fn(BoxIo) + Send + Sync>) -> BoxFuture<SocketAddr>;
    /// Connects to `addr`.
    fn connect(&self, addr: SocketAddr) -> BoxFuture<std::io::Result<BoxIo>>;
}

/// `Net` for a runtime whose socket API has the usual shape; `$io` adapts
/// its streams to hyper's I/O traits (hyper-util's `TokioIo` for tokio,
/// smol-hyper's `FuturesIo` for anything `futures-io`).
macro_rules! tcp_net {
    ($rt:ty, $name:literal, $net:path, $io:path) => {
        impl Net for $rt {
            const NAME: &'static str = $name;

            fn listen(&self, serve: Arc<dyn Fn(BoxIo) + Send + Sync>) -> BoxFuture<SocketAddr> {
                let rt = self.clone();
                Box::pin(async move {
                    use $io as io;
                    use $net as net;
                    let listener = net::TcpListener::bind("127.0.0.1:0").await.unwrap();
                    let addr = listener.local_addr().unwrap();
                    rt.spawn(async move {
                        while let Ok((stream, _)) = listener.accept().await {
                            let _ = stream.set_nodelay(true);
                            serve(Box::new(io::new(stream)));
                        }
                    })
                    .detach();
                    addr
                })
            }

            fn connect(&self, addr: SocketAddr) -> BoxFuture<std::io::Result<BoxIo>> {
                Box::pin(async move {
                    use $io as io;
                    use $net as net;
                    let stream = net::TcpStream::connect(addr).await?;
                    stream.set_nodelay(true)?;
                    Ok(Box::new(io::new(stream)) as BoxIo)
                })
            }
        }
    };
}

tcp_net!(Smol, "smol", smol::net, smol_hyper::rt::FuturesIo);
tcp_net!(Tokio, "tokio", tokio::net, hyper_util::rt::TokioIo);
tcp_net!(
    AsyncStd,
    "async-std",
    async_std::net,
    smol_hyper::rt::FuturesIo
);

/// What a hop saw.
#[derive(Debug, Clone)]
pub(crate) enum Saw {
    /// A request arrived with this deadline (on the hop's clock).
    Arrived { deadline: Option<Instant> },
    /// The request's work was cancelled.
    Cancelled { kind: CancelKind, cause: String },
}

/// One line of the chain's log.
#[derive(Debug, Clone)]
pub(crate) struct Event {
    /// 1, 2 or 3.
    pub(crate) hop: usize,
    /// The hop's runtime.
    pub(crate) runtime: &'static str,
    /// When, on the hop's clock.
    pub(crate) at: Instant,
    /// The request's path.
    pub(crate) path: String,
    pub(crate) saw: Saw,
}

impl fmt::Display for Event {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "hop {} ({:9}) {:10} ", self.hop, self.runtime, self.path)?;
        match &self.saw {
            Saw::Arrived { deadline: Some(at) } => {
                let left = at.saturating_duration_since(self.at);
                write!(f, "arrived with {:.1} ms left", left.as_secs_f64() * 1e3)
            }
            Saw::Arrived { deadline: None } => write!(f, "arrived with no deadline"),
            Saw::Cancelled { kind, cause } => write!(f, "work cancelled: {kind:?} ({cause})"),
        }
    }
}

/// Every hop's events, in order; printed as they come if `echo` is set.
#[derive(Clone, Default)]
pub(crate) struct Log {
    events: Arc<Mutex<Vec<Event>>>,
    changed: Arc<event_listener::Event>,
    echo: bool,
}

impl Log {
    fn push(&self, event: Event) {
        if self.echo {
            println!("  {event}");
        }
        self.events.lock().unwrap().push(event);
        self.changed.notify(usize::MAX);
    }

    /// Waits until `done` holds of the events.
    pub(crate) async fn wait_until(&self, done: impl Fn(&[Event]) -> bool) {
        loop {
            let changed = self.changed.listen();
            if done(&self.events.lock().unwrap()) {
                return;
            }
            changed.await;
        }
    }

    /// Forgets the events so far.
    #[allow(dead_code)] // for tests/deadline_chain_leaks.rs, which includes this file
    pub(crate) fn clear(&self) {
        self.events.lock().unwrap().clear();
    }

    /// The events so far.
    pub(crate) fn events(&self) -> Vec<Event> {
        self.events.lock().unwrap().clone()
    }
}

/// A running hop.
pub(crate) struct Hop<R: Net> {
    pub(crate) rt: R,
    pub(crate) addr: SocketAddr,
    /// Holds every connection task and every request's work.
    pub(crate) group: TaskGroup<R>,
}

/// Starts hop number `hop` on `rt`: each request is forwarded to `next`, or
/// (the last hop) answered. A path of `/work/...` makes the last hop work
/// until its token is cancelled; anything else is answered at once.
pub(crate) fn start_hop<R: Net>(rt: R, hop: usize, next: Option<SocketAddr>, log: Log) -> Hop<R> {
    let group = TaskGroup::new(&rt);
    let handler = {
        let (rt, group, log) = (rt.clone(), group.clone(), log.clone());
        move |req: Request<Incoming>| {
            let (rt, group, log) = (rt.clone(), group.clone(), log.clone());
            async move { Ok::<_, Infallible>(handle(rt, hop, next, group, log, req).await) }
        }
    };
    let service = TokenService::new(rt.clone(), group.token().clone(), service_fn(handler));
    let serve = {
        let group = group.clone();
        Arc::new(move |io: BoxIo| {
            let service = service.clone();
            group
                .spawn_named("connection", move |_| async move {
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(io, service)
                        .await;
                })
                .detach();
        })
    };
    let addr = rt.block_on(rt.listen(serve));
    Hop { rt, addr, group }
}

async fn handle<R: Net>(
    rt: R,
    hop: usize,
    next: Option<SocketAddr>,
    group: TaskGroup<R>,
    log: Log,
    req: Request<Incoming>,
) -> Response<Full<Bytes>> {
    let token = req.extensions().get::<CancelToken>().unwrap().clone();
    let arrived = Event {
        hop,
        runtime: R::NAME,
        at: rt.now(),
        path: req.uri().path().to_string(),
        saw: Saw::Arrived {
            deadline: token.deadline(),
        },
    };
    log.push(arrived.clone());
    // The request's work runs on a child of its token; a watcher logs why
    // it was cancelled, if it was before the request ended.
    let work = token.child();
    let ended = CancelToken::new();
    let _ended = ended.clone().drop_guard();
    group
        .spawn_named("watch", {
            let (work, log, arrived) = (work.clone(), log.clone(), arrived.clone());
            move |_| async move {
                futures_lite::future::or(work.cancelled(), ended.cancelled()).await;
                // A dropped request cancels `work` before `ended` fires.
                if let Some(why) = work.reason() {
                    let cause = why
                        .cause()
                        .map_or_else(|| why.to_string(), |c| c.to_string());
                    log.push(Event {
                        at: Instant::now(),
                        saw: Saw::Cancelled {
                            kind: why.kind(),
                            cause,
                        },
                        ..arrived
                    });
                }
            }
        })
        .detach();
    let answer = match next {
        Some(next) => forward(&rt, next, &work, &arrived.path).await,
        None if arrived.path.starts_with("/work") => {
            work.cancelled().await;
            Err(work.reason().unwrap().kind())
        }
        None => Ok(format!("hop {hop} done")),
    };
    match answer {
        Ok(text) => Response::new(Full::new(Bytes::from(text))),
        Err(kind) => {
            let status = match kind {
                CancelKind::DeadlineExceeded => StatusCode::GATEWAY_TIMEOUT,
                _ => StatusCode::SERVICE_UNAVAILABLE,
            };
            let mut response = Response::new(Full::new(Bytes::from(format!("{kind:?}"))));
            *response.status_mut() = status;
            response
        }
    }
}

/// Calls the next hop with what is left of `token`'s deadline, over a
/// connection of its own: the connection's task belongs to this call, so it
/// closes when the call is dropped or the token cancelled.
pub(crate) async fn forward<R: Net>(
    rt: &R,
    next: SocketAddr,
    token: &CancelToken,
    path: &str,
) -> Result<String, CancelKind> {
    let io = rt.connect(next).await.map_err(|_| CancelKind::External)?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake::<_, Empty<Bytes>>(io)
        .await
        .map_err(|_| CancelKind::External)?;
    let _conn = rt.spawn(conn);
    let req = Request::get(path).body(Empty::new()).unwrap();
    let response = wire::call(token, rt, req, |req| sender.send_request(req))
        .await
        .map_err(|why| why.kind())?
        .map_err(|_| CancelKind::External)?;
    let status = response.status();
    let body = response
        .into_body()
        .collect()
        .await
        .map_err(|_| CancelKind::External)?;
    let text = String::from_utf8_lossy(&body.to_bytes()).into_owned();
    if status.is_success() {
        Ok(text)
    } else if text == "DeadlineExceeded" {
        Err(CancelKind::DeadlineExceeded)
    } else {
        Err(CancelKind::External)
    }
}

/// The three hops: smol → tokio → async-std.
pub(crate) struct Chain {
    pub(crate) hop1: Hop<Smol>,
    pub(crate) hop2: Hop<Tokio>,
    pub(crate) hop3: Hop<AsyncStd>,
    pub(crate) log: Log,
}

impl Chain {
    /// Starts the three hops (the last first, so each knows the next).
    pub(crate) fn start(echo: bool) -> Chain {
        let log = Log {
            echo,
            ..Log::default()
        };
        let hop3 = start_hop(AsyncStd::new().unwrap(), 3, None, log.clone());
        let hop2 = start_hop(Tokio::new().unwrap(), 2, Some(hop3.addr), log.clone());
        let hop1 = start_hop(Smol::new().unwrap(), 1, Some(hop2.addr), log.clone());
        Chain {
            hop1,
            hop2,
            hop3,
            log,
        }
    }

    /// Shuts the three hops down, each with `grace`, and returns their
    /// reports.
    pub(crate) fn shutdown(self, grace: Duration) -> [String; 3] {
        let Chain {
            hop1, hop2, hop3, ..
        } = self;
        [
            hop1.rt.block_on(hop1.group.shutdown(grace)).to_string(),
            hop2.rt.block_on(hop2.group.shutdown(grace)).to_string(),
            hop3.rt.block_on(hop3.group.shutdown(grace)).to_string(),
        ]
    }
}

fn main() {
    let chain = Chain::start(true);
    let client = Smol::new().unwrap();

    println!("A client with a 200 ms deadline; hop 3 works until it is told to stop:");
    let token = CancelToken::with_timeout(&client, Duration::from_millis(200));
    let deadline = token.deadline().unwrap();
    let answer = client.block_on(forward(&client, chain.hop1.addr, &token, "/work/slow"));
    println!(
        "  client got {answer:?} after {:.0} ms",
        ms_since(deadline, 200)
    );
    settle(&client, &chain, 3);
    for event in chain.log.events() {
        if let Saw::Arrived { deadline: Some(at) } = event.saw {
            let off = at.saturating_duration_since(deadline);
            println!(
                "  hop {}'s deadline is the client's + {:.3} ms",
                event.hop,
                off.as_secs_f64() * 1e3
            );
        }
    }

    println!("A client that hangs up while hop 3 works:");
    let token = CancelToken::new();
    let call = client.spawn({
        let (client, token, addr) = (client.clone(), token.clone(), chain.hop1.addr);
        async move { forward(&client, addr, &token, "/work/hang-up").await }
    });
    let before = chain.log.events().len();
    // Once hop 3 has the request, hang up: the client's connection closes.
    client.block_on(chain.log.wait_until(|events| events.len() >= before + 3));
    drop(call);
    settle(&client, &chain, 6);
    drop(token);

    println!("Shutting the hops down:");
    for (hop, report) in chain.shutdown(Duration::from_secs(1)).iter().enumerate() {
        println!("  hop {}: {report}", hop + 1);
    }
}

/// How long ago `deadline - budget_ms` was, in ms.
fn ms_since(deadline: Instant, budget_ms: u64) -> f64 {
    let start = deadline - Duration::from_millis(budget_ms);
    start.elapsed().as_secs_f64() * 1e3
}

/// Waits until `watchers` works in all have been cancelled.
fn settle(client: &Smol, chain: &Chain, watchers: usize) {
    let cancelled = |events: &[Event]| {
        let cancelled = events
            .iter()
            .filter(|e| matches!(e.saw, Saw::Cancelled { .. }));
        cancelled.count() >= watchers
    };
    client.block_on(chain.log.wait_until(cancelled));
}
