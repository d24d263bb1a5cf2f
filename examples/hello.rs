//! The baseline of `scripts/bench.sh`: the same stack as the engine (tokio, warp, serde_json,
//! mimalloc) answering every request with a small JSON body and doing no work. The engine's
//! throughput is reported as a ratio to this server's, measured in the same run.
//!
//! `cargo run --release --example hello -- 127.0.0.1:18081`

use std::net::SocketAddr;

use warp::Filter;

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() {
    let addr: SocketAddr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:18081".into())
        .parse()
        .expect("an address such as 127.0.0.1:18081");
    // Reads the body like the engine does, then answers with JSON.
    let hello = warp::any()
        .and(warp::body::bytes())
        .map(|_body: warp::hyper::body::Bytes| {
            warp::reply::json(&serde_json::json!({"user_id": 1, "balance": 0}))
        });
    println!("hello server on {addr}");
    warp::serve(hello).run(addr).await;
}
