//! The server side: a hyper service wrapper that gives each request a
//! token ([W1](crate#W1), [W3](crate#W3)).

use std::error::Error;
use std::fmt;
use std::future::Future;
use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use ::hyper::body::{Body, Frame, SizeHint};
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
/// - **the response body counts too**: the response's body is wrapped in a
///   [`TokenBody`] that keeps watch until its last frame. A body hyper
///   drops before its end — the client went away while it streamed — also
///   cancels the token with `Disconnected`; so does one hyper never sends
///   (the answer to a `HEAD` request): nobody will read it. Once the body
///   has ended (or failed), the token is left alone: dropping it then
///   does not cancel it.
/// - **a handler that panics** (in its future or its body) cancels the
///   token with [`CancelKind::GuardDropped`] and the cause [`HandlerPanicked`]
///   before the panic goes on, whoever catches it.
///
/// # When hyper notices a client going away
///
/// Over HTTP/2, at once: a reset stream or a closed connection drops the
/// request. Over HTTP/1, hyper sees the connection close only while it
/// reads from it: once the request body has been read to its end (a
/// request without a body, such as a `GET`, is read at once), with no
/// pipelined request behind it, and with `half_close` off (hyper's
/// default). A handler that leaves a request body unread is not told. A
/// connection hyper closes for its own reasons (a timeout, a protocol
/// error) drops its requests in the same way, and they are reported as
/// `Disconnected` too, unless the server's token was cancelled first.
///
/// # A malformed `grpc-timeout`
///
/// The inner service is not called. The answer, for a gRPC request
/// (`content-type: application/grpc…`), is gRPC's "Trailers-Only" error:
/// HTTP 200 with `grpc-status: 3` (`INVALID_ARGUMENT`) and a
/// `grpc-message` saying what is wrong; for any other request, HTTP
/// `400 Bad Request` with the same two headers. The body is empty.
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
    ResBody: Body,
{
    type Response = Response<TokenBody<ResBody>>;
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
                guard: Guard(Some(token)),
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
fn reject<B, ResBody>(req: &Request<B>, err: &GrpcTimeoutError) -> Response<TokenBody<ResBody>> {
    let grpc = req
        .headers()
        .get(header::CONTENT_TYPE)
        .filter(|ct| ct.as_bytes().starts_with(b"application/grpc"));
    let mut response = Response::new(TokenBody::empty());
    let headers = response.headers_mut();
    match grpc {
        // The request's own (`application/grpc+proto`, `application/grpc-web`).
        Some(content_type) => {
            headers.insert(header::CONTENT_TYPE, content_type.clone());
        }
        None => *response.status_mut() = StatusCode::BAD_REQUEST,
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
    /// dropped before it finished, and hands the watch on to the response's
    /// [`TokenBody`].
    ///
    /// ```
    /// # #[cfg(feature = "sim")] {
    /// use std::convert::Infallible;
    /// use cancelkit::{CancelToken, sim::Sim, token::CancelKind, wire::TokenService};
    /// use hyper::{Request, Response, service::{Service, service_fn}};
    ///
    /// let (tx, rx) = std::sync::mpsc::channel();
    /// let service = TokenService::new(Sim::new(), CancelToken::new(), service_fn(move |req: Request<String>| {
    ///     tx.send(req.extensions().get::<CancelToken>().unwrap().clone()).unwrap();
    ///     std::future::pending::<Result<Response<String>, Infallible>>()
    /// }));
    /// let request = service.call(Request::new(String::new()));
    /// let token = rx.recv().unwrap();
    /// drop(request); // what hyper does when the client goes away
    /// assert_eq!(token.reason().unwrap().kind(), CancelKind::Disconnected);
    /// # }
    /// ```
    pub struct TokenFuture<F, ResBody> {
        #[pin]
        state: State<F, ResBody>,
    }
}

pin_project! {
    #[project = StateProj]
    enum State<F, ResBody> {
        // `guard` first: fields drop in order, so a dropped request's token
        // is cancelled before the handler's future goes, and everything the
        // handler drops (task handles, calls) sees that cause first.
        Running {
            guard: Guard,
            #[pin]
            inner: F,
        },
        // The request was answered without calling the inner service.
        Rejected { response: Option<Response<TokenBody<ResBody>>> },
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
    ResBody: Body,
{
    type Output = Result<Response<TokenBody<ResBody>>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project().state.project() {
            StateProj::Running { guard, inner } => {
                let out = ready!(guard.watch(|| inner.poll(cx)));
                Poll::Ready(match out {
                    Ok(response) => {
                        let guard = guard.hand_over();
                        Ok(response.map(|body| TokenBody::new(body, guard)))
                    }
                    // The handler failed; the client did not go.
                    Err(err) => {
                        guard.disarm();
                        Err(err)
                    }
                })
            }
            StateProj::Rejected { response } => match response.take() {
                Some(response) => Poll::Ready(Ok(response)),
                None => panic!("`TokenFuture` polled after completion"),
            },
        }
    }
}

pin_project! {
    /// The body of a [`TokenService`]'s response: the inner service's body,
    /// which cancels the request's token with [`CancelKind::Disconnected`]
    /// if it is dropped before its end (the client went away while it
    /// streamed), and with [`CancelKind::GuardDropped`] if it panics.
    ///
    /// ```
    /// # #[cfg(feature = "sim")] {
    /// use hyper::body::Body;
    /// use cancelkit::{CancelToken, sim::Sim, wire::TokenService};
    /// use hyper::{Request, Response, service::{Service, service_fn}};
    ///
    /// let service = TokenService::new(Sim::new(), CancelToken::new(), service_fn(|_req: Request<String>| {
    ///     async { Ok::<_, std::convert::Infallible>(Response::new("a body".to_string())) }
    /// }));
    /// let response = futures_lite::future::block_on(service.call(Request::new(String::new()))).unwrap();
    /// assert_eq!(response.body().size_hint().exact(), Some(6));
    /// # }
    /// ```
    pub struct TokenBody<B> {
        guard: Guard,
        // `None`: the request was rejected, and the body is empty.
        #[pin]
        inner: Option<B>,
    }
}

impl<B: Body> TokenBody<B> {
    fn new(inner: B, guard: Guard) -> Self {
        let mut body = TokenBody {
            guard,
            inner: Some(inner),
        };
        // A body that is over before it starts (`Empty`, an empty `Full`)
        // may never be polled.
        if body.is_end_stream() {
            body.guard.disarm();
        }
        body
    }
}

impl<B> TokenBody<B> {
    /// The empty body of a rejected request (no service body to wrap).
    fn empty() -> Self {
        TokenBody {
            guard: Guard(None),
            inner: None,
        }
    }

    /// The inner service's body; `None` if the request was answered
    /// without calling the service (a malformed `grpc-timeout`), with an
    /// empty body.
    ///
    /// ```
    /// # #[cfg(feature = "sim")] {
    /// use cancelkit::{CancelToken, sim::Sim, wire::TokenService};
    /// use hyper::{Request, Response, service::{Service, service_fn}};
    ///
    /// let service = TokenService::new(Sim::new(), CancelToken::new(), service_fn(|_req: Request<String>| {
    ///     async { Ok::<_, std::convert::Infallible>(Response::new("a body".to_string())) }
    /// }));
    /// let response = futures_lite::future::block_on(service.call(Request::new(String::new()))).unwrap();
    /// assert_eq!(response.body().get_ref().unwrap(), "a body");
    /// # }
    /// ```
    pub fn get_ref(&self) -> Option<&B> {
        self.inner.as_ref()
    }
}

impl<B> fmt::Debug for TokenBody<B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenBody")
            .field("token", &self.guard.0)
            .finish_non_exhaustive()
    }
}

impl<B: Body> Body for TokenBody<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let this = self.project();
        let Some(mut inner) = this.inner.as_pin_mut() else {
            return Poll::Ready(None);
        };
        let frame = ready!(this.guard.watch(|| inner.as_mut().poll_frame(cx)));
        // The end, or an error (the body failed, the client did not go):
        // from here on, dropping the body means nothing.
        if !matches!(frame, Some(Ok(_))) || inner.is_end_stream() {
            this.guard.disarm();
        }
        Poll::Ready(frame)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.as_ref().is_none_or(B::is_end_stream)
    }

    fn size_hint(&self) -> SizeHint {
        match &self.inner {
            Some(inner) => inner.size_hint(),
            None => SizeHint::with_exact(0),
        }
    }
}

/// Cancels the request's token if dropped while still armed (hyper dropped
/// the request's future or its response body before the end), or if what
/// it watches panics.
#[derive(Debug)]
struct Guard(Option<CancelToken>);

impl Guard {
    /// Hands the watch on to a new guard; this one is disarmed.
    fn hand_over(&mut self) -> Guard {
        Guard(self.0.take())
    }

    /// Disarms the guard: the request is over, and nothing will cancel its
    /// token for it.
    fn disarm(&mut self) {
        self.0 = None;
    }

    /// Runs `poll`; if it panics, cancels the token as a panicked handler's
    /// before the panic goes on.
    fn watch<T>(&mut self, poll: impl FnOnce() -> T) -> T {
        match catch_unwind(AssertUnwindSafe(poll)) {
            Ok(out) => out,
            Err(panic) => {
                if let Some(token) = self.0.take() {
                    token.cancel_with(CancelKind::GuardDropped, HandlerPanicked);
                }
                resume_unwind(panic)
            }
        }
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        if let Some(token) = self.0.take() {
            if std::thread::panicking() {
                token.cancel_with(CancelKind::GuardDropped, HandlerPanicked);
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

/// The cause of a [`CancelKind::GuardDropped`] cancel by [`TokenService`]:
/// the request's handler (its future or its response body) panicked.
///
/// ```
/// assert_eq!(
///     cancelkit::wire::HandlerPanicked.to_string(),
///     "the request's handler panicked"
/// );
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HandlerPanicked;

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
