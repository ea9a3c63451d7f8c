//! The server side: a hyper service wrapper that gives each request a
//! token ([W1](crate#W1), [W3](crate#W3)).

use std::error::Error;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use ::hyper::http::{HeaderValue, Request, Response, StatusCode, header};
use ::hyper::service::Service;
use pin_project_lite::pin_project;

use super::grpc_timeout::{GRPC_TIMEOUT, GrpcTimeoutError, parse_grpc_timeout};
use crate::runtime::{Spawner, Timer};
use crate::token::{CancelKind, CancelToken};

/// Wraps a hyper [`Service`] so that every request runs under a token of
/// its own, found in the request's extensions
/// (`req.extensions().get::<CancelToken>()`).
///
/// # The request's token
///
/// It is a child of the server's token (so a server shutdown reaches every
/// request), and:
///
/// - **its deadline is the caller's** ([W1](crate#W1)): an incoming
///   `grpc-timeout` header becomes the token's deadline, measured from when
///   the request reached this service on `rt`'s clock, and capped by
///   [`max_deadline`](TokenService::max_deadline) if one is set (a request
///   without the header then gets the maximum). A timeout of zero gives a
///   token that is already cancelled with
///   [`DeadlineExceeded`](CancelKind::DeadlineExceeded); one of thirty
///   years or more means no deadline. Forward the deadline on outgoing
///   calls with [`call`](super::call).
/// - **it is cancelled when the client goes away** ([W3](crate#W3)): hyper
///   drops the service's future when the client closes the connection
///   (HTTP/1) or resets the stream (HTTP/2) before the response is ready;
///   the token is then cancelled with [`CancelKind::Disconnected`], and
///   with it every child — the handler's tasks and outgoing calls. The
///   first cause wins: a token already cancelled (the deadline passed, the
///   server shut down) keeps its cause.
/// - once the service's future has produced the response, the token is
///   left alone: dropping it does not cancel it, so a response body still
///   streaming from a task on the token is not cut off.
///
/// # A malformed `grpc-timeout`
///
/// The inner service is not called. The answer, for a gRPC request
/// (`content-type: application/grpc…`), is gRPC's "Trailers-Only" error:
/// HTTP 200 with `grpc-status: 3` (`INVALID_ARGUMENT`) and a
/// `grpc-message` saying what is wrong; for any other request, HTTP
/// `400 Bad Request` with the same two headers. The body is the response
/// body type's `Default` (empty for `Full`, `Empty` and `String`).
///
/// # Examples
///
/// A server whose handler reads its request's deadline:
///
/// ```
/// # #[cfg(feature = "smol")] {
/// use std::convert::Infallible;
/// use cancelkit::{CancelToken, rt::Smol, wire::TokenService};
/// use hyper::{Request, Response, body::Incoming, service::service_fn};
///
/// let rt = Smol::new().unwrap();
/// let server = CancelToken::new();
/// let service = TokenService::new(
///     rt,
///     server.clone(),
///     service_fn(|req: Request<Incoming>| async move {
///         let token = req.extensions().get::<CancelToken>().unwrap();
///         let answer = format!("deadline: {:?}", token.deadline());
///         Ok::<_, Infallible>(Response::new(answer))
///     }),
/// )
/// .max_deadline(std::time::Duration::from_secs(30));
/// // hand `service` to `hyper::server::conn::http1::Builder::serve_connection`
/// # let _ = service;
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct TokenService<S, R> {
    inner: S,
    rt: R,
    token: CancelToken,
    max: Option<Duration>,
}

impl<S, R> TokenService<S, R> {
    /// Wraps `inner`: each request gets a child of `token`, with its
    /// deadline timer on `rt`.
    ///
    /// ```
    /// # #[cfg(feature = "smol")] {
    /// use cancelkit::{CancelToken, rt::Smol, wire::TokenService};
    ///
    /// let service = TokenService::new(Smol::new().unwrap(), CancelToken::new(), ());
    /// # let _ = service;
    /// # }
    /// ```
    pub fn new(rt: R, token: CancelToken, inner: S) -> Self {
        TokenService {
            inner,
            rt,
            token,
            max: None,
        }
    }

    /// Caps every request's deadline at `max` from its arrival, whatever the
    /// caller asked for; requests without a `grpc-timeout` get `max` too.
    ///
    /// ```
    /// # #[cfg(feature = "smol")] {
    /// use std::time::Duration;
    /// use cancelkit::{CancelToken, rt::Smol, wire::TokenService};
    ///
    /// let service = TokenService::new(Smol::new().unwrap(), CancelToken::new(), ())
    ///     .max_deadline(Duration::from_secs(10));
    /// # let _ = service;
    /// # }
    /// ```
    pub fn max_deadline(mut self, max: Duration) -> Self {
        self.max = Some(max);
        self
    }

    /// The server's token, parent of every request's.
    ///
    /// ```
    /// # #[cfg(feature = "smol")] {
    /// use cancelkit::{CancelToken, rt::Smol, wire::TokenService};
    ///
    /// let server = CancelToken::new();
    /// let service = TokenService::new(Smol::new().unwrap(), server.clone(), ());
    /// server.cancel();
    /// assert!(service.token().is_cancelled());
    /// # }
    /// ```
    pub fn token(&self) -> &CancelToken {
        &self.token
    }

    /// The wrapped service.
    ///
    /// ```
    /// # #[cfg(feature = "smol")] {
    /// use cancelkit::{CancelToken, rt::Smol, wire::TokenService};
    ///
    /// let service = TokenService::new(Smol::new().unwrap(), CancelToken::new(), 7);
    /// assert_eq!(*service.get_ref(), 7);
    /// # }
    /// ```
    pub fn get_ref(&self) -> &S {
        &self.inner
    }
}

impl<S, R, B, ResBody> Service<Request<B>> for TokenService<S, R>
where
    S: Service<Request<B>, Response = Response<ResBody>>,
    R: Spawner + Timer,
    ResBody: Default,
{
    type Response = Response<ResBody>;
    type Error = S::Error;
    type Future = TokenFuture<S::Future, ResBody>;

    fn call(&self, mut req: Request<B>) -> Self::Future {
        let asked = match incoming_timeout(&req) {
            Ok(asked) => asked,
            Err(err) => {
                return TokenFuture {
                    state: State::Rejected {
                        response: Some(reject(&req, &err)),
                    },
                };
            }
        };
        let timeout = match (asked, self.max) {
            (Some(asked), Some(max)) => Some(asked.min(max)),
            (asked, max) => asked.or(max),
        };
        let token = match timeout {
            None => self.token.child(),
            Some(Duration::ZERO) => {
                let token = self.token.child();
                token.cancel_with(CancelKind::DeadlineExceeded, ExpiredOnArrival);
                token
            }
            Some(timeout) => self.token.child_with_timeout(&self.rt, timeout),
        };
        req.extensions_mut().insert(token.clone());
        TokenFuture {
            state: State::Running {
                guard: CancelOnDrop(Some(token)),
                inner: self.inner.call(req),
            },
        }
    }
}

/// The request's `grpc-timeout`, if it has one; more than one is malformed.
fn incoming_timeout<B>(req: &Request<B>) -> Result<Option<Duration>, GrpcTimeoutError> {
    let mut values = req.headers().get_all(GRPC_TIMEOUT).iter();
    let Some(value) = values.next() else {
        return Ok(None);
    };
    if values.next().is_some() {
        return Err(GrpcTimeoutError::repeated());
    }
    parse_grpc_timeout(value.as_bytes())
}

/// The answer to a malformed `grpc-timeout` (see [`TokenService`]).
fn reject<B, ResBody: Default>(req: &Request<B>, err: &GrpcTimeoutError) -> Response<ResBody> {
    let grpc = req
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|ct| ct.as_bytes().starts_with(b"application/grpc"));
    let mut response = Response::new(ResBody::default());
    let headers = response.headers_mut();
    if grpc {
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/grpc"),
        );
    } else {
        *response.status_mut() = StatusCode::BAD_REQUEST;
    }
    let headers = response.headers_mut();
    headers.insert("grpc-status", HeaderValue::from_static("3"));
    if let Ok(message) = HeaderValue::from_str(&percent_encode(&err.to_string())) {
        headers.insert("grpc-message", message);
    }
    response
}

/// gRPC's `grpc-message` encoding: bytes outside printable ASCII, and `%`,
/// as `%XX`.
fn percent_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for &byte in text.as_bytes() {
        if (0x20..=0x7e).contains(&byte) && byte != b'%' {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

pin_project! {
    /// The future of a [`TokenService`]: the inner service's, which cancels
    /// the request's token with [`CancelKind::Disconnected`] if it is
    /// dropped before it finished.
    pub struct TokenFuture<F, ResBody> {
        #[pin]
        state: State<F, ResBody>,
    }
}

pin_project! {
    #[project = StateProj]
    enum State<F, ResBody> {
        // The inner service runs.
        // `guard` first: fields drop in order, so a dropped request's token
        // is cancelled before the handler's future goes, and everything the
        // handler drops (task handles, calls) sees that cause first.
        Running {
            guard: CancelOnDrop,
            #[pin]
            inner: F,
        },
        // The request was answered without calling the inner service.
        Rejected { response: Option<Response<ResBody>> },
    }
}

impl<F, ResBody> fmt::Debug for TokenFuture<F, ResBody> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.state {
            State::Running { guard, .. } => f
                .debug_struct("TokenFuture")
                .field("token", &guard.0)
                .finish_non_exhaustive(),
            State::Rejected { .. } => f.write_str("TokenFuture(rejected)"),
        }
    }
}

impl<F, E, ResBody> Future for TokenFuture<F, ResBody>
where
    F: Future<Output = Result<Response<ResBody>, E>>,
{
    type Output = Result<Response<ResBody>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project().state.project() {
            StateProj::Running { guard, inner } => {
                let out = ready!(inner.poll(cx));
                guard.0 = None;
                Poll::Ready(out)
            }
            StateProj::Rejected { response } => match response.take() {
                Some(response) => Poll::Ready(Ok(response)),
                None => panic!("`TokenFuture` polled after completion"),
            },
        }
    }
}

/// Cancels the request's token when dropped while still armed: hyper
/// dropped the service's future before it finished.
#[derive(Debug)]
struct CancelOnDrop(Option<CancelToken>);

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        if let Some(token) = self.0.take() {
            if std::thread::panicking() {
                token.cancel_with(CancelKind::Explicit, HandlerPanicked);
            } else {
                token.cancel_with(CancelKind::Disconnected, ClientGone);
            }
        }
    }
}

/// The cause of a [`CancelKind::Disconnected`] cancel by [`TokenService`]:
/// hyper dropped the request's future before the response was ready,
/// because the client closed its connection or reset its stream.
///
/// ```
/// assert_eq!(
///     cancelkit::wire::ClientGone.to_string(),
///     "the client went away before the response was ready"
/// );
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientGone;

impl fmt::Display for ClientGone {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the client went away before the response was ready")
    }
}

impl Error for ClientGone {}

/// A request's token was cancelled because its handler panicked.
#[derive(Debug)]
struct HandlerPanicked;

impl fmt::Display for HandlerPanicked {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the request's handler panicked")
    }
}

impl Error for HandlerPanicked {}

/// A request arrived with `grpc-timeout` zero: its caller's time was up.
#[derive(Debug)]
struct ExpiredOnArrival;

impl fmt::Display for ExpiredOnArrival {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the caller's deadline had passed when the request arrived (grpc-timeout 0)")
    }
}

impl Error for ExpiredOnArrival {}
