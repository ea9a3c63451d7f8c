//! The client side: an outgoing request carries its token's remaining
//! deadline, and stops when the token is cancelled ([W2](crate#W2)).

use std::error::Error;
use std::fmt;
use std::future::Future;
use std::panic::Location;
use std::pin::Pin;
use std::task::{Context, Poll};

use ::hyper::http::{HeaderMap, Request};
use pin_project_lite::pin_project;

use super::grpc_timeout::{GRPC_TIMEOUT, encode_grpc_timeout, parse_grpc_timeout};
use crate::runtime::Timer;
use crate::token::{CancelKind, CancelToken, Cancelled, WithCancel};

/// Writes `token`'s remaining deadline, by `timer`'s clock, into `headers`
/// as `grpc-timeout` ([W2](crate#W2)).
///
/// - A deadline never grows: if `headers` already carry a well-formed
///   `grpc-timeout` (set by hand, or forwarded from an incoming request),
///   the shorter of it and the token's remaining time is written. With no
///   deadline on either side, there is no header (a malformed one is
///   removed).
/// - The value is rounded down, never zero (see
///   [`encode_grpc_timeout`](super::encode_grpc_timeout)).
/// - A token that is cancelled gives `Err` with its cause; one whose
///   deadline has passed on `timer`'s clock, even if its timer has not
///   fired yet, gives `Err` with [`CancelKind::DeadlineExceeded`]: a request
///   nobody has time to wait for is not sent. `headers` are left as they
///   were.
///
/// # Examples
///
/// ```
/// # #[cfg(feature = "sim")] {
/// use std::time::Duration;
/// use cancelkit::{CancelToken, Runtime, Timer, sim::Sim, token::CancelKind, wire};
/// use hyper::HeaderMap;
///
/// let sim = Sim::new();
/// let token = CancelToken::with_timeout(&sim, Duration::from_millis(200));
/// let mut headers = HeaderMap::new();
/// wire::write_deadline(&token, &sim, &mut headers).unwrap();
/// assert_eq!(headers["grpc-timeout"], "200000u");
///
/// sim.block_on(sim.sleep(Duration::from_millis(200)));
/// let refused = wire::write_deadline(&token, &sim, &mut headers).unwrap_err();
/// assert_eq!(refused.kind(), CancelKind::DeadlineExceeded);
/// # }
/// ```
#[track_caller]
pub fn write_deadline<T: Timer + ?Sized>(
    token: &CancelToken,
    timer: &T,
    headers: &mut HeaderMap,
) -> Result<(), Cancelled> {
    if let Some(why) = token.reason() {
        return Err(why);
    }
    let ours = token
        .deadline()
        .map(|at| at.saturating_duration_since(timer.now()));
    let theirs = headers
        .get(GRPC_TIMEOUT)
        .and_then(|value| parse_grpc_timeout(value.as_bytes()).ok().flatten());
    let remaining = match (ours, theirs) {
        (Some(ours), Some(theirs)) => ours.min(theirs),
        (ours, theirs) => match ours.or(theirs) {
            Some(remaining) => remaining,
            None => {
                headers.remove(GRPC_TIMEOUT);
                return Ok(());
            }
        },
    };
    match encode_grpc_timeout(remaining) {
        Some(value) => {
            headers.insert(GRPC_TIMEOUT, value);
            Ok(())
        }
        None => Err(Cancelled::with(
            CancelKind::DeadlineExceeded,
            Some(Box::new(NoTimeLeft)),
            Location::caller(),
        )),
    }
}

/// Sends `req` with `send` under `token`: writes the token's remaining
/// deadline into the request ([`write_deadline`]), then runs the sending
/// future until it completes or the token is cancelled, whichever comes
/// first ([W2](crate#W2), [W3](crate#W3)).
///
/// `send` is called at once, when `call` is, with the request and its
/// header written then (hyper's `send_request` queues the request right
/// away); the returned future waits for the answer. If the token is
/// already cancelled or out of time, `send` is never called.
///
/// If the token fires first, the sending future is dropped — for a hyper
/// client, that closes the HTTP/1 connection or resets the HTTP/2 stream,
/// so the server at the other end (if it runs a
/// [`TokenService`](super::TokenService)) sees its client go away and
/// cancels its own work — and the call gives `Err` with the token's cause.
///
/// # Examples
///
/// ```
/// # #[cfg(feature = "sim")] {
/// use std::time::Duration;
/// use cancelkit::{CancelToken, Runtime, sim::Sim, wire};
/// use hyper::Request;
///
/// let sim = Sim::new();
/// let token = CancelToken::with_timeout(&sim, Duration::from_secs(2));
/// let req = Request::new(());
/// // A stand-in for `sender.send_request(req)`: it reports what it was sent.
/// let send = |req: Request<()>| async move { req.headers()["grpc-timeout"].clone() };
/// let sent = sim.block_on(wire::call(&token, &sim, req, send)).unwrap();
/// assert_eq!(sent, "2000000u");
///
/// token.cancel();
/// let never = |_req: Request<()>| async { unreachable!("not sent") };
/// assert!(sim.block_on(wire::call(&token, &sim, Request::new(()), never)).is_err());
/// # }
/// ```
#[track_caller]
pub fn call<T, B, F, Fut>(token: &CancelToken, timer: &T, mut req: Request<B>, send: F) -> Call<Fut>
where
    T: Timer + ?Sized,
    F: FnOnce(Request<B>) -> Fut,
    Fut: Future,
{
    let state = match write_deadline(token, timer, req.headers_mut()) {
        Ok(()) => CallState::Sending {
            send: token.run_until_cancelled(send(req)),
        },
        Err(why) => CallState::Refused { why: Some(why) },
    };
    Call { state }
}

pin_project! {
    /// The future of [`call`]: the sending future's output, or `Err` with
    /// the token's cause if it was cancelled first (or before sending).
    ///
    /// ```
    /// # #[cfg(feature = "sim")] {
    /// use cancelkit::{CancelToken, token::CancelKind, wire};
    ///
    /// let sim = cancelkit::sim::Sim::new();
    /// let token = CancelToken::new();
    /// // A request that never gets an answer...
    /// let call = wire::call(&token, &sim, hyper::Request::new(()), |_req| std::future::pending::<()>());
    /// token.cancel(); // ...stops when its token is cancelled.
    /// let why = futures_lite::future::block_on(call).unwrap_err();
    /// assert_eq!(why.kind(), CancelKind::Explicit);
    /// # }
    /// ```
    #[must_use = "futures do nothing unless polled"]
    pub struct Call<F> {
        #[pin]
        state: CallState<F>,
    }
}

pin_project! {
    #[project = CallStateProj]
    enum CallState<F> {
        Sending { #[pin] send: WithCancel<F> },
        Refused { why: Option<Cancelled> },
    }
}

impl<F> fmt::Debug for Call<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.state {
            CallState::Sending { .. } => f.write_str("Call(sending)"),
            CallState::Refused { .. } => f.write_str("Call(refused)"),
        }
    }
}

impl<F: Future> Future for Call<F> {
    type Output = Result<F::Output, Cancelled>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project().state.project() {
            CallStateProj::Sending { send } => send.poll(cx),
            CallStateProj::Refused { why } => match why.take() {
                Some(why) => Poll::Ready(Err(why)),
                None => panic!("`Call` polled after completion"),
            },
        }
    }
}

/// The cause when a request is refused because its token's deadline has
/// passed (its timer may not have fired yet).
#[derive(Debug)]
struct NoTimeLeft;

impl fmt::Display for NoTimeLeft {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the deadline passed before the request was sent")
    }
}

impl Error for NoTimeLeft {}
