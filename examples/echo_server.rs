//! A line-echo TCP server that shuts down gracefully on SIGINT or SIGTERM,
//! on any runtime:
//!
//! ```text
//! cargo run --example echo_server --all-features -- --runtime smol --addr 127.0.0.1:7000 --grace 2s
//! ```
//!
//! One task per connection in a [`TaskGroup`]. On the signal it stops
//! accepting (new connections are refused), closes idle connections, lets
//! requests already in flight finish within the grace period, drops the
//! rest — each forced connection gets a last `server shutting down` line,
//! written by an async cleanup with 100 ms of its own — prints the shutdown
//! report, and exits 0.
//!
//! Protocol, one request per line: any line is echoed back; `sleep <ms> ...`
//! is echoed after `ms` milliseconds (a slow request); `stats` answers
//! `active=<open connections> busy=<requests in flight>`.
//!
//! The same server code runs on every runtime: sockets are
//! `async_io::Async<TcpStream>`, which works inside any executor.

#[path = "cli/mod.rs"]
mod cli;

use std::io;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use async_io::Async;
use cancelkit::{CancelToken, Runtime, Signal, TaskGroup, Timer, scope, signal::SignalExt};
use futures_lite::future::or;
use futures_lite::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

struct Config {
    runtime: String,
    addr: SocketAddr,
    grace: Duration,
}

/// Open connections and requests in flight, for the `stats` command.
#[derive(Default)]
struct Stats {
    active: AtomicUsize,
    busy: AtomicUsize,
}

/// Counts one unit in a counter for as long as it lives — including when
/// the connection's future is dropped by a forced shutdown.
struct Count<'a>(&'a AtomicUsize);

impl<'a> Count<'a> {
    fn new(counter: &'a AtomicUsize) -> Self {
        counter.fetch_add(1, Ordering::SeqCst);
        Count(counter)
    }
}

impl Drop for Count<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// What a forced connection is told, by its cleanup, before it is closed.
const GOODBYE: &[u8] = b"server shutting down\n";

/// One connection: serves it, and if the shutdown forces it (drops this
/// future mid-request), says goodbye first — asynchronously, for at most
/// 100 ms, hosted by the connection's task after its future is gone.
async fn connection<R: Timer + Clone + Send + 'static>(
    stream: Async<TcpStream>,
    stop: CancelToken,
    rt: R,
    stats: Arc<Stats>,
) -> io::Result<()> {
    let stream = Arc::new(stream);
    // `forced` is cancelled only if this future is dropped unfinished: its
    // guard is disarmed on every way out below.
    let forced = CancelToken::new();
    let guard = forced.clone().drop_guard();
    let goodbye = {
        let stream = stream.clone();
        move |_| async move {
            let _ = (&*stream).write_all(GOODBYE).await;
        }
    };
    scope::cleanup_on(&forced, &rt, Duration::from_millis(100), goodbye)
        .expect("connections run as cancelkit tasks");
    let served = serve_connection(&stream, &stop, &rt, &stats).await;
    guard.disarm();
    served
}

async fn serve_connection<R: Timer>(
    stream: &Async<TcpStream>,
    stop: &CancelToken,
    rt: &R,
    stats: &Stats,
) -> io::Result<()> {
    let _open = Count::new(&stats.active);
    let mut reader = BufReader::new(stream);
    let mut writer = stream;
    loop {
        // Idle: wait for the first byte of a request, or the shutdown. Data
        // first: a request that already arrived (or was pipelined behind
        // the previous one) is served even if the shutdown has begun.
        let first = or(
            async { Some(reader.fill_buf().await.map(|b| b.is_empty())) },
            async {
                stop.cancelled().await;
                None
            },
        )
        .await;
        match first {
            None => return Ok(()),           // idle at shutdown
            Some(Ok(true)) => return Ok(()), // the client closed
            Some(Ok(false)) => {}
            Some(Err(e)) => return Err(e),
        }
        // A request is in flight: it is not cancelled by the shutdown, only
        // forced (dropped) if the grace period runs out.
        let mut line = String::new();
        if reader.read_line(&mut line).await? == 0 {
            return Ok(());
        }
        let mut words = line.split_whitespace();
        let reply = match words.next() {
            Some("stats") => format!(
                "active={} busy={}\n",
                stats.active.load(Ordering::SeqCst),
                stats.busy.load(Ordering::SeqCst)
            ),
            Some("sleep") => {
                let _busy = Count::new(&stats.busy);
                let ms = words.next().and_then(|w| w.parse().ok()).unwrap_or(0);
                rt.sleep(Duration::from_millis(ms)).await;
                line.clone()
            }
            _ => line.clone(),
        };
        writer.write_all(reply.as_bytes()).await?;
    }
}

async fn serve<R, S>(rt: R, config: &Config, stop: S) -> io::Result<()>
where
    R: Runtime + Clone + Send + Sync + 'static,
    S: Signal,
{
    let listener = Async::<TcpListener>::bind(config.addr)?;
    println!("listening on {}", listener.get_ref().local_addr()?);
    let group = TaskGroup::new(&rt);
    let stats = Arc::new(Stats::default());
    let mut accepted = 0_u64;
    loop {
        // The signal first: a flood of connections (or a failing accept)
        // cannot delay the shutdown.
        let next = or(
            async {
                stop.raised().await;
                None
            },
            async { Some(listener.accept().await) },
        )
        .await;
        match next {
            None => break,
            Some(Ok((stream, peer))) => {
                accepted += 1;
                let (rt, stats) = (rt.clone(), stats.clone());
                group
                    .spawn_named(format!("conn {accepted} from {peer}"), move |token| {
                        connection(stream, token, rt, stats)
                    })
                    .detach();
            }
            Some(Err(e)) => {
                // Out of file descriptors, say: back off instead of spinning.
                eprintln!("accept failed: {e}");
                rt.sleep(Duration::from_millis(50)).await;
            }
        }
    }
    drop(listener); // stop accepting: from now on connections are refused
    println!(
        "signal received: stopped accepting after {accepted} connections; grace {:?}",
        config.grace
    );
    let report = group.shutdown(config.grace).await;
    println!("{report}");
    Ok(())
}

fn parse_duration(s: &str) -> Option<Duration> {
    if let Some(ms) = s.strip_suffix("ms") {
        ms.parse().ok().map(Duration::from_millis)
    } else if let Some(secs) = s.strip_suffix('s') {
        secs.parse()
            .ok()
            .and_then(|s| Duration::try_from_secs_f64(s).ok())
    } else {
        s.parse().ok().map(Duration::from_millis)
    }
}

const USAGE: &str = "\
Usage: cargo run --example echo_server --all-features -- [OPTIONS]

A line-echo TCP server that shuts down gracefully on SIGINT or SIGTERM.

Options:
  --runtime NAME  tokio (default), tokio-current-thread, smol or async-std
  --addr ADDR     the address to listen on (default: 127.0.0.1:7000)
  --grace TIME    how long in-flight requests may finish at shutdown,
                  as 2s, 1.5s, 500ms or 500 (ms) (default: 2s)
  -h, --help      print this and exit";

const RUNTIMES: [&str; 4] = ["tokio", "tokio-current-thread", "smol", "async-std"];

/// The options; `--help` or a usage error exits here.
fn parse_args() -> Config {
    let mut config = Config {
        runtime: String::new(),
        addr: "127.0.0.1:7000".parse().expect("valid default"),
        grace: Duration::from_secs(2),
    };
    let mut args = cli::Args::parse(USAGE);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--runtime" => {
                config.runtime = args.value("--runtime");
                if !RUNTIMES.contains(&config.runtime.as_str()) {
                    args.fail(format_args!("unknown runtime {:?}", config.runtime));
                }
            }
            "--addr" => config.addr = args.parsed("--addr", str::parse),
            "--grace" => {
                config.grace = args.parsed("--grace", |v| parse_duration(v).ok_or("bad duration"));
            }
            other => args.unexpected(other),
        }
    }
    config
}

/// Runs the server on the runtime named in `config`, stopping on SIGINT or
/// SIGTERM (SIGTERM only where it exists).
// With no runtime feature, only the error arm remains.
#[allow(unused_variables, unreachable_code)]
fn run(config: &Config) -> io::Result<()> {
    macro_rules! on {
        ($rt:expr) => {{
            let rt = $rt;
            let stop = rt.ctrl_c()?;
            #[cfg(unix)]
            let stop = stop.or(rt.terminate()?);
            let server = rt.clone();
            rt.block_on(serve(server, config, stop))
        }};
    }
    let default = if cfg!(feature = "tokio") {
        "tokio"
    } else if cfg!(feature = "smol") {
        "smol"
    } else {
        "async-std"
    };
    let name = if config.runtime.is_empty() {
        default
    } else {
        config.runtime.as_str()
    };
    match name {
        #[cfg(feature = "tokio")]
        "tokio" => on!(cancelkit::rt::Tokio::new()?),
        #[cfg(feature = "tokio")]
        "tokio-current-thread" => on!(cancelkit::rt::Tokio::current_thread()?),
        #[cfg(feature = "smol")]
        "smol" => on!(cancelkit::rt::Smol::new()?),
        #[cfg(feature = "async-std")]
        "async-std" => on!(cancelkit::rt::AsyncStd::new().unwrap()),
        other => Err(io::Error::other(format!(
            "unknown or disabled runtime {other:?} (build with --all-features)"
        ))),
    }
}

fn main() {
    let config = parse_args();
    if let Err(e) = run(&config) {
        eprintln!("echo_server: {e}");
        std::process::exit(1);
    }
}
