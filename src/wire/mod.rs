//! Cancellation across the wire: deadlines in and out as gRPC's
//! `grpc-timeout` header, a client that goes away cancels its request's
//! work, and hyper on any cancelkit runtime ([W1](crate#W1)–[W4](crate#W4);
//! feature `hyper`).
//!
//! A deadline set by the first caller should reach the last service, and
//! when the caller gives up, the work should stop at every hop. The pieces:
//!
//! - **Server** — [`TokenService`] wraps a hyper service: each request
//!   runs under a child of the server's token, whose deadline is the
//!   incoming `grpc-timeout` (capped by a server maximum), and which is
//!   cancelled with [`CancelKind::Disconnected`](crate::token::CancelKind::Disconnected)
//!   when hyper drops the request, or its response body before the end,
//!   because the client went away.
//! - **Client** — [`call`] sends a request with its token's remaining
//!   deadline in `grpc-timeout` (an expired token does not send), and stops
//!   sending when the token is cancelled, which in turn cancels the next
//!   hop's work.
//! - **The header** — [`parse_grpc_timeout`] and [`encode_grpc_timeout`],
//!   exactly as the gRPC over HTTP/2 spec defines it.
//! - **Runtime** — [`HyperExecutor`] and [`HyperTimer`] implement hyper's
//!   `rt` traits for any cancelkit runtime, so hyper's HTTP/1 and HTTP/2
//!   client and server run on it: the tests exchange 10 000 requests over
//!   each protocol on tokio (both flavours), smol, async-std and the sim.
//!   hyper also needs I/O in its own `Read`/`Write` traits:
//!   [hyper-util](https://docs.rs/hyper-util)'s `TokioIo` adapts tokio's
//!   sockets, [smol-hyper](https://docs.rs/smol-hyper)'s `FuturesIo` those
//!   of smol and async-std (any `futures-io` type).
//!
//! # Examples
//!
//! A server and a client on one runtime, over an in-memory pipe: the
//! client's deadline becomes the handler's.
//!
//! ```
//! # #[cfg(feature = "tokio")] {
//! use std::{convert::Infallible, time::Duration};
//! use cancelkit::{CancelToken, Runtime, SpawnerExt, rt::Tokio, wire};
//! use http_body_util::Empty;
//! use hyper::{Request, Response, body::{Bytes, Incoming}, service::service_fn};
//! use hyper_util::rt::TokioIo;
//!
//! let rt = Tokio::current_thread().unwrap();
//! let (client_io, server_io) = tokio::io::duplex(4096);
//!
//! // The server: answers with the deadline its request's token has.
//! let handler = service_fn(|req: Request<Incoming>| async move {
//!     let token = req.extensions().get::<CancelToken>().unwrap();
//!     Ok::<_, Infallible>(Response::new(format!("{:?}", token.deadline().is_some())))
//! });
//! let service = wire::TokenService::new(rt.clone(), CancelToken::new(), handler);
//! let server = hyper::server::conn::http1::Builder::new()
//!     .serve_connection(TokioIo::new(server_io), service);
//! rt.spawn(server).detach();
//!
//! let answer = rt.block_on(async {
//!     let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(client_io))
//!         .await
//!         .unwrap();
//!     rt.spawn(conn).detach();
//!     let token = CancelToken::with_timeout(&rt, Duration::from_secs(5));
//!     let req = Request::new(Empty::<Bytes>::new());
//!     let response = wire::call(&token, &rt, req, |req| sender.send_request(req))
//!         .await
//!         .expect("the token is not cancelled")
//!         .expect("the request succeeds");
//!     http_body_util::BodyExt::collect(response.into_body()).await.unwrap().to_bytes()
//! });
//! assert_eq!(answer, "true");
//! # }
//! ```

mod client;
mod grpc_timeout;
mod rt;
mod server;

pub use client::{Call, call, write_deadline};
pub use grpc_timeout::{GRPC_TIMEOUT, GrpcTimeoutError, encode_grpc_timeout, parse_grpc_timeout};
pub use rt::{HyperExecutor, HyperTimer};
pub use server::{ClientGone, HandlerPanicked, TokenBody, TokenFuture, TokenService};
