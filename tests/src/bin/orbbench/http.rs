//! Figure 11: HTTP `GET /api/v1/stat` on one keep-alive connection, as a ratio to the
//! native protocol's STAT request (the same figures, framed in our protocol) on the same
//! server, one of each in turn so that load from other processes hits both alike.

use std::time::Instant;

use anyhow::{bail, Context, Result};
use http_body_util::{BodyExt, Empty};
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;
use orbclient::OrbClient;
use tokio::net::TcpStream;

use super::{client_opts, rate, Bench, Tally};

impl Bench {
    /// Figure 11 (see the module doc).
    pub(super) fn http(&mut self) -> Result<()> {
        let srv = self.bind_inproc_config(64 << 20, |cfg| {
            cfg.http = Some("127.0.0.1:0".parse().expect("valid address"));
        })?;
        let http_addr = srv.http.context("the server has no HTTP listener")?;
        let n = self.sizes.single_puts;
        let opts = client_opts("orbbench-http");
        let addr = srv.addr.clone();
        let (h, s, bytes) = self.client_rt.block_on(async {
            let mut native = OrbClient::connect(&addr, &opts).await?;
            let stream = TcpStream::connect(http_addr).await?;
            stream.set_nodelay(true)?;
            let (mut send, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
                .await
                .context("HTTP handshake")?;
            let conn = tokio::spawn(conn);
            let (mut h, mut s, mut bytes) = (Tally::default(), Tally::default(), 0usize);
            for i in 0..2 * n {
                let t = Instant::now();
                if i % 2 == 0 {
                    let req = hyper::Request::get("/api/v1/stat")
                        .header(hyper::header::HOST, http_addr.to_string())
                        .body(Empty::<Bytes>::new())?;
                    let resp = send.send_request(req).await.context("GET /api/v1/stat")?;
                    if !resp.status().is_success() {
                        bail!("GET /api/v1/stat: {}", resp.status());
                    }
                    let body = resp.into_body().collect().await?.to_bytes();
                    bytes = body.len();
                    std::hint::black_box(&body);
                    h.add(1, t.elapsed());
                } else {
                    std::hint::black_box(native.stat().await?);
                    s.add(1, t.elapsed());
                }
            }
            drop(send);
            conn.await.context("HTTP connection task")??;
            anyhow::Ok((h, s, bytes))
        })?;
        self.stop_inproc(srv)?;
        println!(
            "{:<36}{:>12}   (native STAT {}, ratio {:.2}; {n} of each on one connection each, \
             interleaved; {bytes}-byte JSON body)",
            "11 HTTP GET /api/v1/stat keep-alive",
            rate(h.per_sec()),
            rate(s.per_sec()),
            h.per_sec() / s.per_sec(),
        );
        self.record("11 http", None);
        Ok(())
    }
}
