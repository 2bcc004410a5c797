//! Peer echo server: tokio `current_thread` runtime, one task per connection,
//! each task reading into its own reused 64 KiB buffer and `write_all`-ing it
//! back. This is the idiomatic tokio echo server, nothing more.
//!
//! Usage: `tokio_echo [--addr 127.0.0.1:0]`. Prints `listening on <addr>` once
//! bound, then serves until killed.

use std::io;
use std::net::SocketAddr;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

fn parse_addr() -> SocketAddr {
    let mut addr = String::from("127.0.0.1:0");
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        if a == "--addr" {
            addr = args.next().unwrap_or_else(|| usage("--addr needs a value"));
        } else if let Some(v) = a.strip_prefix("--addr=") {
            addr = v.to_string();
        } else {
            usage(&format!("unknown argument {a}"));
        }
    }
    addr.parse()
        .unwrap_or_else(|e| usage(&format!("bad --addr {addr}: {e}")))
}

fn usage(msg: &str) -> ! {
    eprintln!("tokio_echo: {msg}\nusage: tokio_echo [--addr 127.0.0.1:0]");
    std::process::exit(2)
}

async fn serve(mut stream: TcpStream) {
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = match stream.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        if stream.write_all(&buf[..n]).await.is_err() {
            return;
        }
    }
}

fn main() -> io::Result<()> {
    let addr = parse_addr();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .build()?;
    rt.block_on(async move {
        let listener = TcpListener::bind(addr).await?;
        println!("listening on {}", listener.local_addr()?);
        loop {
            match listener.accept().await {
                Ok((stream, _)) => {
                    let _ = stream.set_nodelay(true);
                    tokio::spawn(serve(stream));
                }
                Err(e) => {
                    eprintln!("tokio_echo: accept: {e}");
                    tokio::task::yield_now().await;
                }
            }
        }
    })
}
