//! `COMPRESS=DEFLATE` (RFC 4978): after login, the client sends
//! `COMPRESS DEFLATE`; from the CRLF of the server's tagged OK on, both
//! directions are one raw deflate stream each (RFC 1951, no zlib header),
//! and every command and response is completed by a sync flush.
//!
//! The layer is async-imap's `DeflateStream` (async-compression over
//! flate2), put under the session as [`Conn::Deflate`] the way STARTTLS puts
//! TLS under it. What is ours: when to ask for it (the account's `compress`
//! setting, see [`crate::config::Compression`]) and the byte counts, which
//! stay on the wire side ([`super::BYTES_READ`] counts compressed bytes,
//! [`super::BYTES_INFLATED`] what they inflate to).
//!
//! The switch drops whatever async-imap had read past the OK, as STARTTLS
//! does; nothing is lost because it happens right after login, before any
//! mailbox is selected, so the server has nothing to send until the next
//! command.

use super::{timed, Conn, ImapError};
use async_imap::Session;

/// Send `COMPRESS DEFLATE` and, on OK, compress the session's stream.
///
/// Errors: the server's NO or BAD ([`super::ErrorKind::No`] or
/// [`super::ErrorKind::Protocol`]; async-imap has then consumed the
/// session, so the caller reconnects), or a lost connection.
pub(crate) async fn start(session: Session<Conn>) -> Result<Session<Conn>, ImapError> {
    timed(
        "start compression (COMPRESS DEFLATE)",
        session.compress(|s| Conn::Deflate(Box::new(s))),
    )
    .await
}

#[cfg(test)]
mod tests {
    //! Against a scripted server on loopback that speaks raw deflate with
    //! flate2 after `COMPRESS DEFLATE`: it only answers a command once the
    //! client's sync flush has delivered all of it, and it sends its
    //! compressed answers a few bytes at a time.

    use crate::config::{Account, AuthMechanism, Compression, Endpoint, TlsMode};
    use crate::imap::{self, BYTES_INFLATED, BYTES_READ, ROUND_TRIPS};
    use crate::secret::Secret;
    use flate2::{Compress, Compression as Level, Decompress, FlushCompress, FlushDecompress};
    use std::io::{Read, Write};
    use std::net::{TcpListener, TcpStream};
    use std::sync::atomic::Ordering;
    use std::time::Duration;

    /// One direction's raw deflate state on the scripted server.
    struct Peer {
        tcp: TcpStream,
        inflate: Option<Decompress>,
        deflate: Option<Compress>,
        /// Bytes read and not yet consumed (compressed once compression is on).
        raw: Vec<u8>,
        /// Inflated (or plain) text not yet consumed as lines.
        text: Vec<u8>,
        /// Every command received, in order.
        commands: Vec<String>,
    }

    impl Peer {
        fn line(&mut self) -> Option<String> {
            loop {
                if let Some(i) = self.text.windows(2).position(|w| w == b"\r\n") {
                    let l: Vec<u8> = self.text.drain(..i + 2).collect();
                    let l = String::from_utf8(l).unwrap().trim_end().to_string();
                    self.commands.push(l.clone());
                    return Some(l);
                }
                let mut buf = [0u8; 4096];
                let n = self.tcp.read(&mut buf).ok()?;
                if n == 0 {
                    return None;
                }
                self.raw.extend_from_slice(&buf[..n]);
                match &mut self.inflate {
                    None => self.text.append(&mut self.raw),
                    Some(d) => {
                        let mut out = vec![0u8; 64 * 1024];
                        let before = d.total_in();
                        let produced = d.total_out();
                        d.decompress(&self.raw, &mut out, FlushDecompress::Sync)
                            .unwrap();
                        let used = (d.total_in() - before) as usize;
                        let made = (d.total_out() - produced) as usize;
                        self.raw.drain(..used);
                        self.text.extend_from_slice(&out[..made]);
                    }
                }
            }
        }

        /// Send `text`, compressed and sync-flushed once compression is
        /// on, in pieces of at most 7 bytes.
        fn send(&mut self, text: &[u8]) {
            let bytes = match &mut self.deflate {
                None => text.to_vec(),
                Some(c) => {
                    let mut out = Vec::with_capacity(text.len() + 64);
                    c.compress_vec(text, &mut out, FlushCompress::Sync).unwrap();
                    while out.len() == out.capacity() {
                        out.reserve(4096);
                        c.compress_vec(&[], &mut out, FlushCompress::Sync).unwrap();
                    }
                    out
                }
            };
            for piece in bytes.chunks(7) {
                self.tcp.write_all(piece).unwrap();
                self.tcp.flush().unwrap();
            }
        }
    }

    /// A literal the client fetches: compressible text, as mail is.
    fn body() -> Vec<u8> {
        let mut b = Vec::new();
        for i in 0..2000 {
            b.extend_from_slice(
                format!("Line {i} of a delivery status notification.\r\n").as_bytes(),
            );
        }
        b
    }

    /// Serve one session; returns the commands received.
    fn serve(listener: TcpListener, refuse_compress: bool) -> Vec<String> {
        serve_cut(listener, refuse_compress, false)
    }

    /// [`serve`]; with `cut`, the connection is closed half-way through
    /// the answer to UID FETCH (a link that drops mid-response).
    fn serve_cut(listener: TcpListener, refuse_compress: bool, cut: bool) -> Vec<String> {
        let (tcp, _) = listener.accept().unwrap();
        tcp.set_nodelay(true).unwrap();
        tcp.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        let mut p = Peer {
            tcp,
            inflate: None,
            deflate: None,
            raw: Vec::new(),
            text: Vec::new(),
            commands: Vec::new(),
        };
        p.send(b"* OK [CAPABILITY IMAP4rev1 COMPRESS=DEFLATE] ready\r\n");
        while let Some(l) = p.line() {
            let (tag, cmd) = l.split_once(' ').unwrap();
            let cmd = cmd.to_ascii_uppercase();
            if cmd.starts_with("LOGIN") {
                p.send(format!("{tag} OK logged in\r\n").as_bytes());
            } else if cmd == "CAPABILITY" {
                p.send(
                    format!("* CAPABILITY IMAP4rev1 COMPRESS=DEFLATE MOVE\r\n{tag} OK done\r\n")
                        .as_bytes(),
                );
            } else if cmd.starts_with("LIST") {
                // The hierarchy delimiter and the top level (no
                // NAMESPACE), asked for after login.
                p.send(format!("* LIST (\\Noselect) \"/\" \"\"\r\n{tag} OK listed\r\n").as_bytes());
            } else if cmd == "COMPRESS DEFLATE" {
                if refuse_compress {
                    p.send(format!("{tag} NO not today\r\n").as_bytes());
                    continue;
                }
                p.send(format!("{tag} OK DEFLATE active\r\n").as_bytes());
                // Anything already read past the command would be compressed.
                assert!(p.raw.is_empty() && p.text.is_empty());
                p.inflate = Some(Decompress::new(false));
                p.deflate = Some(Compress::new(Level::default(), false));
            } else if cmd == "NOOP" {
                p.send(format!("{tag} OK nothing new\r\n").as_bytes());
            } else if cmd.starts_with("UID FETCH") {
                let b = body();
                let mut r = format!("* 1 FETCH (UID 7 BODY[] {{{}}}\r\n", b.len()).into_bytes();
                r.extend_from_slice(&b);
                r.extend_from_slice(format!(")\r\n{tag} OK fetched\r\n").as_bytes());
                if cut {
                    p.send(&r[..r.len() / 2]);
                    let _ = p.tcp.shutdown(std::net::Shutdown::Both);
                    break;
                }
                p.send(&r);
            } else if cmd == "LOGOUT" {
                p.send(format!("* BYE bye\r\n{tag} OK out\r\n").as_bytes());
                break;
            } else {
                p.send(format!("{tag} BAD unknown\r\n").as_bytes());
            }
        }
        p.commands
    }

    fn account(port: u16, compress: Compression) -> Account {
        Account {
            name: "t".into(),
            default: true,
            imap: Endpoint {
                host: "127.0.0.1".into(),
                port,
                tls: TlsMode::Plain,
                ca_file: None,
            },
            sieve: Endpoint {
                host: "127.0.0.1".into(),
                port: 4190,
                tls: TlsMode::Plain,
                ca_file: None,
            },
            sieve_max_size: None,
            username: "alice".into(),
            addresses: Vec::new(),
            secret: None,
            auth: AuthMechanism::Password,
            quarantine: "Backscatter".into(),
            sent: None,
            sent_days: 30,
            watch: vec!["INBOX".into()],
            catch_up_days: 2,
            outbound_hosts: Vec::new(),
            rules: None,
            keep: Vec::new(),
            config_file: None,
            compress,
        }
    }

    fn runtime() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
    }

    #[test]
    fn commands_and_responses_round_trip_through_deflate_in_small_pieces() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let server = std::thread::spawn(move || serve(listener, false));
        let wire0 = BYTES_READ.load(Ordering::Relaxed);
        let inflated0 = BYTES_INFLATED.load(Ordering::Relaxed);
        let trips0 = ROUND_TRIPS.load(Ordering::Relaxed);
        runtime().block_on(async {
            let a = account(port, Compression::Always);
            let mut imap = tokio::time::timeout(
                Duration::from_secs(20),
                imap::connect(&a, &Secret::new("pw".into())),
            )
            .await
            .expect("connect in time")
            .expect("connect");
            assert!(matches!(imap.session.as_mut(), imap::Conn::Deflate(_)));
            // Each command must reach the server whole (a sync flush per
            // command), or the server never answers and this times out.
            for _ in 0..3 {
                tokio::time::timeout(Duration::from_secs(20), imap.noop())
                    .await
                    .expect("NOOP answered in time")
                    .expect("NOOP");
            }
            let fetched = tokio::time::timeout(
                Duration::from_secs(20),
                imap.uid_fetch(&[7], "(UID BODY.PEEK[])"),
            )
            .await
            .expect("FETCH answered in time")
            .expect("FETCH");
            assert_eq!(fetched.len(), 1);
            assert_eq!(fetched[0].body(), Some(&body()[..]));
            imap.logout().await;
        });
        let commands = server.join().unwrap();
        let verbs: Vec<&str> = commands
            .iter()
            .map(|c| c.split_once(' ').unwrap().1)
            .map(|c| c.split(' ').next().unwrap())
            .collect();
        assert_eq!(
            verbs,
            [
                "LOGIN",
                "CAPABILITY",
                // No NAMESPACE here: the delimiter, then the top level.
                "LIST",
                "LIST",
                "COMPRESS",
                "NOOP",
                "NOOP",
                "NOOP",
                "UID",
                "LOGOUT"
            ]
        );
        // Other tests may read in parallel: the counts are lower bounds.
        let wire = BYTES_READ.load(Ordering::Relaxed) - wire0;
        let inflated = BYTES_INFLATED.load(Ordering::Relaxed) - inflated0;
        assert!(inflated > body().len() as u64, "{inflated}");
        assert!(wire > 0);
        assert!(ROUND_TRIPS.load(Ordering::Relaxed) - trips0 >= 9);
    }

    #[test]
    fn a_refused_compress_continues_uncompressed_on_a_new_connection() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let server = std::thread::spawn(move || {
            let first = serve(listener.try_clone().unwrap(), true);
            (first, serve(listener, true))
        });
        runtime().block_on(async {
            let a = account(port, Compression::Always);
            let mut imap = imap::connect(&a, &Secret::new("pw".into()))
                .await
                .expect("connect");
            assert!(matches!(imap.session.as_mut(), imap::Conn::Plain(_)));
            imap.noop().await.expect("NOOP");
            imap.logout().await;
        });
        let (first, second) = server.join().unwrap();
        assert!(first.iter().any(|c| c.ends_with("COMPRESS DEFLATE")));
        assert!(!second.iter().any(|c| c.contains("COMPRESS")), "{second:?}");
    }

    /// A link cut in the middle of a response reads the same with and
    /// without compression (a truncated deflate stream at the end of the
    /// connection is a closed connection, not a zlib status).
    #[test]
    fn a_cut_mid_response_reads_the_same_compressed_or_not() {
        let said = |compress: Compression| -> String {
            let listener = TcpListener::bind("127.0.0.1:0").unwrap();
            let port = listener.local_addr().unwrap().port();
            let server = std::thread::spawn(move || serve_cut(listener, false, true));
            let e = runtime().block_on(async {
                let a = account(port, compress);
                let mut imap = imap::connect(&a, &Secret::new("pw".into()))
                    .await
                    .expect("connect");
                let r = tokio::time::timeout(
                    Duration::from_secs(20),
                    imap.uid_fetch(&[7], "(UID BODY.PEEK[])"),
                )
                .await
                .expect("the cut noticed in time");
                r.expect_err("a cut connection")
            });
            server.join().unwrap();
            assert_eq!(e.kind, imap::ErrorKind::Lost, "{e}");
            e.message
        };
        let plain = said(Compression::Never);
        let deflated = said(Compression::Always);
        assert!(
            plain.starts_with("the server closed the connection in the middle of a response"),
            "{plain}"
        );
        assert_eq!(deflated, plain);
    }

    #[test]
    fn loopback_is_not_compressed_by_default() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let server = std::thread::spawn(move || serve(listener, false));
        runtime().block_on(async {
            let a = account(port, Compression::Auto);
            let mut imap = imap::connect(&a, &Secret::new("pw".into()))
                .await
                .expect("connect");
            assert!(matches!(imap.session.as_mut(), imap::Conn::Plain(_)));
            imap.logout().await;
        });
        let commands = server.join().unwrap();
        assert!(!commands.iter().any(|c| c.contains("COMPRESS")));
    }
}
