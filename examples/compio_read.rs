//! A socket read cancelled in flight on compio: a server's handler waits
//! on a read from a client that went quiet, and the server's shutdown
//! cancels that read in the kernel (io_uring's `AsyncCancel`) through the
//! handler's cancelkit token. The handler gets its buffer back, says why it
//! stopped, and returns within the grace: nothing is forced.
//!
//! ```text
//! cargo run --example compio_read --features compio
//! ```

use std::time::Duration;

use cancelkit::{Runtime, TaskGroup, rt::Compio};
use compio::BufResult;
use compio::io::{AsyncRead, AsyncWriteExt};
use compio::net::{TcpListener, TcpStream};

fn main() -> std::io::Result<()> {
    let rt = Compio::new()?;
    rt.block_on(async {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let group = TaskGroup::new(&rt);

        // The client says one thing, then goes quiet (and stays connected).
        let mut client = TcpStream::connect(addr).await?;
        let (server_side, _) = listener.accept().await?;
        let BufResult(sent, _) = client.write_all("hello").await;
        sent?;

        let (first_read, has_read) = async_channel::bounded(1);
        let handler = group.spawn_local_named("conn", {
            let rt = rt.clone();
            move |token| async move {
                let mut stream = server_side;
                loop {
                    // The read waits in the kernel; cancelling `token`
                    // cancels it there.
                    let read = stream.read(Vec::with_capacity(64));
                    let BufResult(result, buf) = rt.cancel_io(&token, read).await;
                    match result {
                        Ok(0) => return "client closed".to_string(),
                        Ok(n) => {
                            println!("handler: read {n} bytes: {:?}", String::from_utf8_lossy(&buf));
                            let _ = first_read.try_send(());
                        }
                        Err(e) => {
                            let cause = token.reason().map(|c| c.kind());
                            return format!(
                                "read ended: {e} (its {}-byte buffer handed back); token cause: {cause:?}",
                                buf.capacity()
                            );
                        }
                    }
                }
            }
        });

        has_read.recv().await.expect("the handler read the greeting");
        println!("server: the client is quiet; the handler waits in a read");
        println!("server: shutting down with a 1 s grace");
        let report = group.shutdown(Duration::from_secs(1)).await;
        println!("handler: {}", handler.await.expect("the handler returned"));
        println!("{report}");
        drop(client);
        Ok(())
    })
}
