//! NDJSON framing over any byte stream.

use std::pin::Pin;

use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt, BufReader, BufWriter};

use crate::protocol::{GuestMessage, HostMessage};
use crate::ExitReason;

/// Longest line a sandbox may send: a 6 MiB result, JSON-escaped, plus
/// 128 KiB of logs fits with room to spare.
pub const MAX_LINE_BYTES: usize = 32 * 1024 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum ChannelError {
    #[error("channel closed")]
    Closed,
    #[error("channel I/O: {0}")]
    Io(#[from] std::io::Error),
    #[error("sandbox sent a line over {MAX_LINE_BYTES} bytes")]
    LineTooLong,
    #[error("sandbox sent invalid JSON: {0}")]
    BadMessage(String),
    /// The sandbox's init reported that the bootstrap exited (its last
    /// message on the channel, sent before the sandbox goes away).
    #[error("the bootstrap exited ({0:?})")]
    Exited(ExitReason),
}

type Reader = Pin<Box<dyn AsyncRead + Send>>;
type Writer = Pin<Box<dyn AsyncWrite + Send>>;

/// The host end of a sandbox channel.
pub struct Channel {
    reader: BufReader<Reader>,
    writer: BufWriter<Writer>,
    line: Vec<u8>,
}

impl Channel {
    pub fn new(
        reader: impl AsyncRead + Send + 'static,
        writer: impl AsyncWrite + Send + 'static,
    ) -> Self {
        Self {
            reader: BufReader::with_capacity(64 * 1024, Box::pin(reader)),
            writer: BufWriter::with_capacity(64 * 1024, Box::pin(writer)),
            line: Vec::with_capacity(4096),
        }
    }

    /// Writes one message (already serialized, without the newline).
    pub async fn send_raw(&mut self, json: &[u8]) -> Result<(), ChannelError> {
        self.writer.write_all(json).await?;
        self.writer.write_all(b"\n").await?;
        self.writer.flush().await?;
        Ok(())
    }

    pub async fn send(&mut self, msg: &HostMessage<'_>) -> Result<(), ChannelError> {
        let json = msg
            .to_line()
            .map_err(|e| ChannelError::BadMessage(e.to_string()))?;
        self.send_raw(&json).await
    }

    /// Reads the next message. Cancel-safe only between messages: a caller
    /// that drops this future mid-line must not use the channel again.
    /// Empty lines are skipped; an `exited` message ends the channel as
    /// [`ChannelError::Exited`], with the reason it gives.
    pub async fn recv(&mut self) -> Result<GuestMessage, ChannelError> {
        loop {
            self.read_line().await?;
            if self.line.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            return match GuestMessage::parse(&self.line) {
                Ok(GuestMessage::Exited(reason)) => Err(ChannelError::Exited(reason)),
                Ok(msg) => Ok(msg),
                Err(e) => Err(ChannelError::BadMessage(e.to_string())),
            };
        }
    }

    /// Reads one line (without its newline) into `self.line`.
    async fn read_line(&mut self) -> Result<(), ChannelError> {
        self.line.clear();
        loop {
            let buf = self.reader.fill_buf().await?;
            if buf.is_empty() {
                return Err(ChannelError::Closed);
            }
            let (taken, ended) = match buf.iter().position(|b| *b == b'\n') {
                Some(pos) => (pos, true),
                None => (buf.len(), false),
            };
            self.line.extend_from_slice(&buf[..taken]);
            self.reader.consume(taken + usize::from(ended));
            // Checked whether or not the line ended in this buffer: a line
            // ending in it can be over the bound too.
            if self.line.len() > MAX_LINE_BYTES {
                return Err(ChannelError::LineTooLong);
            }
            if ended {
                return Ok(());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_line_over_the_bound_is_refused_wherever_it_ends() {
        for len in [MAX_LINE_BYTES + 1, MAX_LINE_BYTES + 1000] {
            let mut data = vec![b' '; len];
            data.push(b'\n');
            let mut channel = Channel::new(std::io::Cursor::new(data), tokio::io::sink());
            assert!(
                matches!(channel.recv().await, Err(ChannelError::LineTooLong)),
                "{len}"
            );
        }
        let mut data = vec![b' '; MAX_LINE_BYTES - 17];
        data.extend(b"{\"type\":\"booted\"}\n");
        let mut channel = Channel::new(std::io::Cursor::new(data), tokio::io::sink());
        assert!(matches!(channel.recv().await, Ok(GuestMessage::Booted)));
    }

    #[tokio::test]
    async fn an_exited_message_ends_the_channel_with_its_reason() {
        let (host, mut guest) = tokio::io::duplex(4096);
        let (r, w) = tokio::io::split(host);
        let mut channel = Channel::new(r, w);
        guest
            .write_all(b"{\"type\":\"ready\"}\n\n{\"type\":\"exited\",\"code\":3,\"oom\":false}\n")
            .await
            .unwrap();
        assert!(matches!(
            channel.recv().await.unwrap(),
            GuestMessage::Ready { .. }
        ));
        match channel.recv().await {
            Err(ChannelError::Exited(ExitReason::Crashed { exit_code })) => {
                assert_eq!(exit_code, Some(3))
            }
            other => panic!("{other:?}"),
        }
        guest
            .write_all(b"{\"type\":\"exited\",\"code\":137,\"oom\":true}\n")
            .await
            .unwrap();
        assert!(matches!(
            channel.recv().await,
            Err(ChannelError::Exited(ExitReason::OutOfMemory))
        ));
    }
}
