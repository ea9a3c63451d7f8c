//! OS signals through `async-signal`, for the adapters whose runtimes have
//! no `Send` signal listener of their own (smol, async-std, compio,
//! monoio; not public).

use crate::Spawner;
use crate::signal::OsSignal;

/// An [`OsSignal`] raised when the process receives `which`, listened for
/// by a task on `spawner`.
pub(crate) fn listen<S>(spawner: &S, which: async_signal::Signal) -> std::io::Result<OsSignal>
where
    S: Spawner + Clone + Send + Sync + 'static,
{
    use futures_lite::StreamExt as _;
    let mut signals = async_signal::Signals::new([which])?;
    Ok(OsSignal::listen(spawner, async move {
        // An I/O error reading the notification is not the signal.
        while let Some(received) = signals.next().await {
            if received.is_ok() {
                break;
            }
        }
    }))
}

/// `SIGTERM`, listened for on `spawner`; `ErrorKind::Unsupported` where it
/// does not exist.
pub(crate) fn terminate<S>(spawner: &S) -> std::io::Result<OsSignal>
where
    S: Spawner + Clone + Send + Sync + 'static,
{
    #[cfg(unix)]
    {
        listen(spawner, async_signal::Signal::Term)
    }
    #[cfg(not(unix))]
    {
        let _ = spawner;
        Err(std::io::Error::new(
            std::io::ErrorKind::Unsupported,
            "SIGTERM does not exist on this platform",
        ))
    }
}
