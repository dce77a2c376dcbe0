//! A read-ahead buffer under TLS. rustls asks its socket for about 4 KiB per read, so a
//! writer streaming packets over TLS costs the server a system call per 4 KiB where a
//! plaintext one costs one per 64 KiB. [`ReadAhead`] answers those small reads from one
//! large read of the socket. Unlike `tokio::io::BufReader` it holds its buffer only
//! while bytes keep arriving: a read that finds the socket empty frees it, so thousands
//! of idle TLS connections cost no buffer each.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// How much one read of the socket may bring.
const CAPACITY: usize = 64 << 10;

/// A stream whose small reads are served from one large read of `S`; writes pass
/// through untouched.
#[derive(Debug)]
pub struct ReadAhead<S> {
    inner: S,
    /// Empty while idle; `CAPACITY` bytes while data flows.
    buf: Vec<u8>,
    /// The unread bytes are `buf[start..end]`.
    start: usize,
    end: usize,
}

impl<S> ReadAhead<S> {
    /// `inner`, with no buffer yet.
    pub fn new(inner: S) -> ReadAhead<S> {
        ReadAhead {
            inner,
            buf: Vec::new(),
            start: 0,
            end: 0,
        }
    }

    /// The stream underneath.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for ReadAhead<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        out: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.start == this.end {
            if out.remaining() >= CAPACITY {
                return Pin::new(&mut this.inner).poll_read(cx, out);
            }
            if this.buf.is_empty() {
                this.buf = vec![0; CAPACITY];
            }
            let mut fill = ReadBuf::new(&mut this.buf);
            match Pin::new(&mut this.inner).poll_read(cx, &mut fill) {
                Poll::Pending => {
                    // Idle: give the buffer back until the peer sends again.
                    this.buf = Vec::new();
                    return Poll::Pending;
                }
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Ready(Ok(())) => {
                    this.start = 0;
                    this.end = fill.filled().len();
                }
            }
        }
        // An end of stream leaves `out` unfilled, as the inner read would have.
        let n = out.remaining().min(this.end - this.start);
        out.put_slice(&this.buf[this.start..this.start + n]);
        this.start += n;
        Poll::Ready(Ok(()))
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for ReadAhead<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_util::FutureExt;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[tokio::test]
    async fn small_reads_see_every_byte_in_order() {
        let (mut tx, rx) = tokio::io::duplex(1 << 20);
        let sent: Vec<u8> = (0..200_000u32).map(|i| (i * 7 % 251) as u8).collect();
        tx.write_all(&sent).await.unwrap();
        drop(tx);
        let mut r = ReadAhead::new(rx);
        let mut got = Vec::new();
        let mut chunk = [0u8; 4096 - 3];
        loop {
            let n = r.read(&mut chunk).await.unwrap();
            if n == 0 {
                break;
            }
            got.extend_from_slice(&chunk[..n]);
        }
        assert_eq!(got, sent);
    }

    #[tokio::test]
    async fn an_idle_stream_holds_no_buffer() {
        let (mut tx, rx) = tokio::io::duplex(1 << 16);
        let mut r = ReadAhead::new(rx);
        tx.write_all(b"hello").await.unwrap();
        let mut b = [0u8; 16];
        assert_eq!(r.read(&mut b).await.unwrap(), 5);
        assert_eq!(r.buf.len(), CAPACITY, "a buffer while data flows");
        // Nothing more sent: the next read waits, and the buffer is gone meanwhile.
        assert!(r.read(&mut b).now_or_never().is_none());
        assert_eq!(r.buf.capacity(), 0);
        tx.write_all(b"again").await.unwrap();
        assert_eq!(r.read(&mut b).await.unwrap(), 5);
        assert_eq!(&b[..5], b"again");
    }

    #[tokio::test]
    async fn large_reads_bypass_the_buffer() {
        let (mut tx, rx) = tokio::io::duplex(1 << 20);
        tx.write_all(&[9u8; 100]).await.unwrap();
        let mut r = ReadAhead::new(rx);
        let mut big = vec![0u8; CAPACITY];
        assert_eq!(r.read(&mut big).await.unwrap(), 100);
        assert_eq!(r.buf.capacity(), 0);
    }
}
