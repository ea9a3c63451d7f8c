//! hyper's runtime traits ([`hyper::rt::Executor`], [`hyper::rt::Timer`])
//! for any cancelkit runtime.

use std::future::Future;
use std::pin::Pin;
use std::sync::Mutex;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use crate::runtime::{Spawner, Timer};

/// hyper's [`Executor`](::hyper::rt::Executor) for any cancelkit
/// [`Spawner`]: what hyper spawns (HTTP/2 connection and stream tasks) runs
/// detached on the spawner, so it follows the spawner's contract — on
/// every runtime, tasks still pending when the runtime shuts down are
/// dropped ([D6](crate#D6)).
///
/// # Examples
///
/// ```
/// # #[cfg(feature = "smol")] {
/// use cancelkit::{rt::Smol, wire::HyperExecutor};
///
/// let rt = Smol::new().unwrap();
/// let exec = HyperExecutor::new(rt.clone());
/// let builder = hyper::server::conn::http2::Builder::new(exec);
/// # let _ = builder;
/// # }
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct HyperExecutor<S> {
    spawner: S,
}

impl<S> HyperExecutor<S> {
    /// An executor that spawns onto `spawner`.
    ///
    /// ```
    /// # #[cfg(feature = "smol")] {
    /// let exec = cancelkit::wire::HyperExecutor::new(cancelkit::rt::Smol::new().unwrap());
    /// # let _ = exec;
    /// # }
    /// ```
    pub fn new(spawner: S) -> Self {
        HyperExecutor { spawner }
    }

    /// The spawner it spawns onto.
    ///
    /// ```
    /// # #[cfg(feature = "smol")] {
    /// let exec = cancelkit::wire::HyperExecutor::new(cancelkit::rt::Smol::new().unwrap());
    /// let _rt: &cancelkit::rt::Smol = exec.get_ref();
    /// # }
    /// ```
    pub fn get_ref(&self) -> &S {
        &self.spawner
    }
}

impl<S, F> ::hyper::rt::Executor<F> for HyperExecutor<S>
where
    S: Spawner,
    F: Future<Output = ()> + Send + 'static,
{
    fn execute(&self, fut: F) {
        self.spawner.spawn_detached(fut);
    }
}

/// hyper's [`Timer`](::hyper::rt::Timer) for any cancelkit [`Timer`]:
/// hyper's timeouts (HTTP/1 header read, HTTP/2 keep-alive, pool idle)
/// sleep on the runtime's clock, and read it through
/// [`now`](::hyper::rt::Timer::now), so a virtual clock such as the sim's
/// drives them too.
///
/// # Examples
///
/// ```
/// # #[cfg(feature = "smol")] {
/// use std::time::Duration;
/// use cancelkit::{rt::Smol, wire::HyperTimer};
///
/// let rt = Smol::new().unwrap();
/// let mut builder = hyper::server::conn::http1::Builder::new();
/// builder.timer(HyperTimer::new(rt)).header_read_timeout(Duration::from_secs(5));
/// # }
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct HyperTimer<T> {
    timer: T,
}

impl<T> HyperTimer<T> {
    /// A hyper timer on `timer`'s clock.
    ///
    /// ```
    /// # #[cfg(feature = "smol")] {
    /// let timer = cancelkit::wire::HyperTimer::new(cancelkit::rt::Smol::new().unwrap());
    /// # let _ = timer;
    /// # }
    /// ```
    pub fn new(timer: T) -> Self {
        HyperTimer { timer }
    }

    /// The cancelkit timer it sleeps on.
    ///
    /// ```
    /// # #[cfg(feature = "smol")] {
    /// let timer = cancelkit::wire::HyperTimer::new(cancelkit::rt::Smol::new().unwrap());
    /// let _rt: &cancelkit::rt::Smol = timer.get_ref();
    /// # }
    /// ```
    pub fn get_ref(&self) -> &T {
        &self.timer
    }
}

impl<T> ::hyper::rt::Timer for HyperTimer<T>
where
    T: Timer + Send + Sync + 'static,
{
    fn sleep(&self, duration: Duration) -> Pin<Box<dyn ::hyper::rt::Sleep>> {
        Box::pin(HyperSleep::new(self.timer.sleep(duration)))
    }

    fn sleep_until(&self, deadline: Instant) -> Pin<Box<dyn ::hyper::rt::Sleep>> {
        Box::pin(HyperSleep::new(self.timer.sleep_until(deadline)))
    }

    fn now(&self) -> Instant {
        self.timer.now()
    }
}

/// A cancelkit sleep as a hyper `Sleep`, which must be `Sync`: the future
/// sits behind a mutex that only `poll` (through `&mut`) ever locks, so it
/// is never contended.
struct HyperSleep<F> {
    sleep: Mutex<Pin<Box<F>>>,
}

impl<F> HyperSleep<F> {
    fn new(sleep: F) -> Self {
        HyperSleep {
            sleep: Mutex::new(Box::pin(sleep)),
        }
    }
}

impl<F: Future<Output = ()>> Future for HyperSleep<F> {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        // `Pin<Box<F>>` is `Unpin`, so is `Self`; a poisoned lock only means
        // an earlier poll panicked, which leaves the sleep as valid as before.
        let sleep = self.get_mut().sleep.get_mut();
        let sleep = match sleep {
            Ok(sleep) => sleep,
            Err(poisoned) => poisoned.into_inner(),
        };
        sleep.as_mut().poll(cx)
    }
}

impl<F: Future<Output = ()> + Send + 'static> ::hyper::rt::Sleep for HyperSleep<F> {}
