//! One LMTP delivery (RFC 2033) over TCP, as an MTA would make it: the
//! server's Sieve scripts run on it.

use crate::imap_client::IO_TIMEOUT;
use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::time::Duration;

/// Deliver one message over LMTP to 127.0.0.1:`port`, as an MTA would (sieve
/// scripts run). `mail_from` is the envelope sender: `""` or `"<>"` is the
/// null sender of bounces; `rcpt` e.g. `alice@example.test`. Bare LF line
/// ends become CRLF and lines starting with `.` are dot-stuffed.
pub fn lmtp_deliver(port: u16, mail_from: &str, rcpt: &str, msg: &[u8]) -> Result<(), String> {
    fn path(a: &str) -> String {
        let a = a.trim();
        if a.starts_with('<') {
            a.to_string()
        } else {
            format!("<{a}>")
        }
    }
    fn reply(r: &mut BufReader<TcpStream>, step: &str, want: &str) -> Result<String, String> {
        let mut all = String::new();
        loop {
            let mut line = String::new();
            let n = r
                .read_line(&mut line)
                .map_err(|e| format!("LMTP {step}: {e}"))?;
            if n == 0 {
                return Err(format!("LMTP {step}: connection closed after {all:?}"));
            }
            all.push_str(&line);
            // "250-more" continues, "250 last" ends
            if line.len() < 4 || line.as_bytes()[3] != b'-' {
                break;
            }
        }
        if all.starts_with(want) {
            Ok(all)
        } else {
            Err(format!(
                "LMTP {step}: expected {want}, got {}",
                all.trim_end()
            ))
        }
    }

    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    let stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5))
        .map_err(|e| format!("LMTP connect to {addr}: {e}"))?;
    stream
        .set_read_timeout(Some(IO_TIMEOUT))
        .map_err(|e| e.to_string())?;
    stream
        .set_write_timeout(Some(IO_TIMEOUT))
        .map_err(|e| e.to_string())?;
    let mut w = stream.try_clone().map_err(|e| e.to_string())?;
    let mut r = BufReader::new(stream);
    let send = |w: &mut TcpStream, s: &[u8], step: &str| {
        w.write_all(s)
            .map_err(|e| format!("LMTP {step}: write: {e}"))
    };

    reply(&mut r, "greeting", "220")?;
    send(&mut w, b"LHLO backscatter.test\r\n", "LHLO")?;
    reply(&mut r, "LHLO", "250")?;
    let from = format!("MAIL FROM:{}\r\n", path(mail_from));
    send(&mut w, from.as_bytes(), "MAIL FROM")?;
    reply(&mut r, "MAIL FROM", "250")?;
    let to = format!("RCPT TO:{}\r\n", path(rcpt));
    send(&mut w, to.as_bytes(), "RCPT TO")?;
    reply(&mut r, "RCPT TO", "250")?;
    send(&mut w, b"DATA\r\n", "DATA")?;
    reply(&mut r, "DATA", "354")?;

    let mut data = Vec::with_capacity(msg.len() + msg.len() / 40 + 8);
    let body = msg.strip_suffix(b"\n").unwrap_or(msg);
    for line in body.split(|&b| b == b'\n') {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.starts_with(b".") {
            data.push(b'.');
        }
        data.extend_from_slice(line);
        data.extend_from_slice(b"\r\n");
    }
    data.extend_from_slice(b".\r\n");
    send(&mut w, &data, "message")?;
    // LMTP: one reply per accepted recipient
    reply(&mut r, "end of DATA", "250")?;
    let _ = send(&mut w, b"QUIT\r\n", "QUIT");
    let _ = reply(&mut r, "QUIT", "221");
    Ok(())
}
