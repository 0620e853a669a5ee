//! The IMAP layer: connecting (implicit TLS, STARTTLS, plaintext to
//! loopback only) with certificate verification, authenticating (LOGIN or
//! XOAUTH2), and the handful of commands backscatter needs, each with a
//! timeout and an error that is one clear sentence without the password.
//!
//! This is I/O; the decisions (what to fetch, what to move) are made by the
//! pure modules `skeleton`, `classify` and `plan`.

pub mod compress;
pub mod names;
pub mod structure;

use crate::config::{is_loopback, Account, AuthMechanism, TlsMode};
use crate::secret::Secret;
use async_imap::types::{Fetch, NameAttribute};
use futures::TryStreamExt;
use std::collections::HashSet;
use std::fmt;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

/// How long one command (or connect, or handshake) may take.
/// How long to wait for a server's answer to one command: 120 s, or
/// `BACKSCATTER_TIMEOUT` seconds (for very slow servers, and the tests'
/// hostile servers).
pub fn command_timeout() -> Duration {
    static T: std::sync::OnceLock<Duration> = std::sync::OnceLock::new();
    *T.get_or_init(|| {
        std::env::var("BACKSCATTER_TIMEOUT")
            .ok()
            .and_then(|v| v.trim().parse::<f64>().ok())
            .filter(|s| *s > 0.0)
            .map_or(Duration::from_secs(120), Duration::from_secs_f64)
    })
}

/// How long to wait for a connection, a TLS handshake or a greeting: 20 s
/// (less if [`command_timeout`] is shorter).
pub fn connect_timeout() -> Duration {
    command_timeout().min(Duration::from_secs(20))
}

/// An IMAP failure, as one sentence for the user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImapError {
    pub kind: ErrorKind,
    pub message: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    Connect,
    Tls,
    Auth,
    /// The server answered NO (a missing mailbox, a read-only one, ...).
    No,
    /// The connection dropped or timed out.
    Lost,
    /// A mailbox the user named does not exist (LIST does not show it):
    /// a configuration problem, not worth retrying.
    Missing,
    Protocol,
}

impl fmt::Display for ImapError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for ImapError {}

fn err(kind: ErrorKind, message: impl Into<String>) -> ImapError {
    ImapError {
        kind,
        message: message.into(),
    }
}

/// The server's own words from async-imap's NO/BAD text, which looks like
/// `code: None, info: Some("[AUTHENTICATIONFAILED] Authentication failed.")`.
fn server_text(m: &str) -> String {
    if m.contains("information: None") || m.contains("info: None") {
        return "no reason given".into();
    }
    for key in ["information: Some(\"", "info: Some(\""] {
        if let Some(i) = m.find(key) {
            let rest = &m[i + key.len()..];
            if let Some(j) = rest.find("\")") {
                return rest[..j].replace("\\\"", "\"");
            }
        }
    }
    m.trim().to_string()
}

/// Map an async-imap error for a command described by `what`.
fn map_err(what: &str, e: async_imap::error::Error) -> ImapError {
    use async_imap::error::Error as E;
    match e {
        E::No(m) => err(
            ErrorKind::No,
            format!("the server refused to {what}: {}", server_text(&m)),
        ),
        E::Bad(m) => err(
            ErrorKind::Protocol,
            format!(
                "the server rejected the command to {what}: {}",
                server_text(&m)
            ),
        ),
        E::ConnectionLost => err(
            ErrorKind::Lost,
            format!("the connection was lost while trying to {what}"),
        ),
        E::Io(io) => err(
            ErrorKind::Lost,
            format!("{} while trying to {what}", io_text(&io)),
        ),
        other => err(
            ErrorKind::Protocol,
            format!("unexpected server response while trying to {what}: {other}"),
        ),
    }
}

/// What an I/O error from async-imap means, in words: it reports a
/// server's BYE, a response cut short, an oversized literal and a parse
/// failure all as I/O errors, some in Debug form.
fn io_text(io: &std::io::Error) -> String {
    let m = io.to_string();
    if m.contains("bytes remaining in stream") {
        "the server closed the connection in the middle of a response".into()
    } else if m.contains("incoming data too large") {
        "the server announced a response larger than 512 MiB (refused)".into()
    } else if m.contains("status: Bye") {
        let said = m
            .split_once("information: Some(\"")
            .and_then(|(_, r)| r.split_once("\")"))
            .map(|(t, _)| t.to_string())
            .unwrap_or_default();
        format!("the server ended the session (BYE {said})")
    } else if let Some((_, bad)) = m.split_once("during parsing of ") {
        let excerpt: String = bad
            .trim_matches('"')
            .chars()
            .take(60)
            .map(|c| if c.is_control() { '?' } else { c })
            .collect();
        format!("the server sent a response that is not IMAP ({excerpt})")
    } else {
        format!("the connection failed ({m})")
    }
}

/// Run `f` with the command timeout.
async fn timed<T>(
    what: &str,
    f: impl Future<Output = Result<T, async_imap::error::Error>>,
) -> Result<T, ImapError> {
    match tokio::time::timeout(command_timeout(), f).await {
        Ok(r) => r.map_err(|e| map_err(what, e)),
        Err(_) => Err(err(
            ErrorKind::Lost,
            format!(
                "the server did not answer within {} s while trying to {what}",
                command_timeout().as_secs()
            ),
        )),
    }
}

/// A plain or TLS connection, possibly compressed (`COMPRESS=DEFLATE`,
/// layered on after login by [`compress::start`]).
#[derive(Debug)]
pub enum Conn {
    Plain(TcpStream),
    Tls(Box<tokio_native_tls::TlsStream<TcpStream>>),
    /// Raw deflate (RFC 1951) both ways over a `Plain` or `Tls` connection.
    Deflate(Box<async_imap::DeflateStream<Conn>>),
}

/// Bytes received from IMAP servers by this process as they came off the
/// connection: after TLS, before decompression. The "bytes fetched" figure
/// of `clean`.
pub static BYTES_READ: AtomicU64 = AtomicU64::new(0);

/// Bytes decompressed from compressed connections (what the server would
/// have sent without `COMPRESS=DEFLATE`); 0 when nothing was compressed.
pub static BYTES_INFLATED: AtomicU64 = AtomicU64::new(0);

/// Commands sent and awaited by this process: one per flush of a
/// connection (async-imap writes a command, flushes it, then waits for the
/// answer; a literal's continuation and IDLE's `DONE` count as one more).
pub static ROUND_TRIPS: AtomicU64 = AtomicU64::new(0);

/// The counters now, to subtract later: (wire bytes read, bytes inflated,
/// round trips).
pub fn counters() -> (u64, u64, u64) {
    (
        BYTES_READ.load(Ordering::Relaxed),
        BYTES_INFLATED.load(Ordering::Relaxed),
        ROUND_TRIPS.load(Ordering::Relaxed),
    )
}

impl AsyncRead for Conn {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        // The wire bytes are counted where they are read: by the inner
        // connection of a compressed one.
        let (r, counter) = match self.get_mut() {
            Conn::Plain(s) => (Pin::new(s).poll_read(cx, buf), &BYTES_READ),
            Conn::Tls(s) => (Pin::new(s.as_mut()).poll_read(cx, buf), &BYTES_READ),
            Conn::Deflate(s) => (Pin::new(s.as_mut()).poll_read(cx, buf), &BYTES_INFLATED),
        };
        let n = buf.filled().len().saturating_sub(before) as u64;
        counter.fetch_add(n, Ordering::Relaxed);
        r
    }
}

/// Count a completed flush of the outermost plain or TLS layer as a round
/// trip.
fn count_flush(r: Poll<io::Result<()>>) -> Poll<io::Result<()>> {
    if let Poll::Ready(Ok(())) = r {
        ROUND_TRIPS.fetch_add(1, Ordering::Relaxed);
    }
    r
}

impl AsyncWrite for Conn {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Conn::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Conn::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
            Conn::Deflate(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Conn::Plain(s) => count_flush(Pin::new(s).poll_flush(cx)),
            Conn::Tls(s) => count_flush(Pin::new(s.as_mut()).poll_flush(cx)),
            // Flushes the deflate stream (a sync flush), then the inner
            // connection, which counts the round trip.
            Conn::Deflate(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Conn::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Conn::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
            Conn::Deflate(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}

fn tls_connector(a: &Account) -> Result<tokio_native_tls::TlsConnector, ImapError> {
    let mut b = tokio_native_tls::native_tls::TlsConnector::builder();
    if let Some(ca) = &a.tls_ca_file {
        let pem = std::fs::read(ca).map_err(|e| {
            err(
                ErrorKind::Tls,
                format!("cannot read tls-ca-file {}: {e}", ca.display()),
            )
        })?;
        let cert = tokio_native_tls::native_tls::Certificate::from_pem(&pem).map_err(|e| {
            err(
                ErrorKind::Tls,
                format!("tls-ca-file {} is not a PEM certificate: {e}", ca.display()),
            )
        })?;
        b.add_root_certificate(cert);
    }
    let c = b
        .build()
        .map_err(|e| err(ErrorKind::Tls, format!("cannot set up TLS: {e}")))?;
    Ok(tokio_native_tls::TlsConnector::from(c))
}

/// One sentence for a failed TLS handshake: OpenSSL's reason without its
/// source-file noise, and what to do about it.
fn tls_failure(host: &str, port: u16, detail: &str) -> String {
    // "error:0A000086:SSL routines:...:statem_clnt.c:1889: (certificate has expired)"
    let reason = detail
        .rsplit_once(" (")
        .filter(|(_, r)| r.ends_with(')'))
        .map(|(_, r)| r.trim_end_matches(')').to_string())
        .unwrap_or_else(|| detail.trim().to_string());
    let r = reason.to_lowercase();
    if r.contains("wrong version number")
        || r.contains("packet length too long")
        || r.contains("record layer failure")
        || r.contains("http request")
    {
        return format!(
            "{host}:{port} answered without TLS, so it is not an implicit-TLS (IMAPS) port: set tls = \"starttls\" for this port (usually 143), or use port 993 with tls = \"implicit\""
        );
    }
    if !(r.contains("certificate")
        || r.contains("verify")
        || r.contains("self-signed")
        || r.contains("self signed")
        || r.contains("issuer")
        || r.contains("expired")
        || r.contains("not yet valid")
        || r.contains("mismatch"))
    {
        return format!("the TLS handshake with {host}:{port} failed: {reason} (check the host, port and tls settings)");
    }
    let hint = if r.contains("expired") {
        "the server's certificate has expired; its administrator must renew it"
    } else if r.contains("not yet valid") {
        "the certificate is not valid yet; check this computer's clock"
    } else if r.contains("mismatch") {
        "the certificate is for another name; set host to the name on the certificate"
    } else if r.contains("self-signed")
        || r.contains("self signed")
        || r.contains("local issuer")
        || r.contains("verify")
    {
        "if the server is self-hosted, set tls-ca-file to its CA certificate"
    } else {
        "check the host, port and tls settings"
    };
    format!("the TLS certificate of {host}:{port} could not be verified: {reason} ({hint})")
}

pub(crate) async fn tls_wrap(a: &Account, tcp: TcpStream) -> Result<Conn, ImapError> {
    let connector = tls_connector(a)?;
    let host = a.host.trim_matches(['[', ']']);
    match tokio::time::timeout(connect_timeout(), connector.connect(host, tcp)).await {
        Ok(Ok(s)) => Ok(Conn::Tls(Box::new(s))),
        Ok(Err(e)) => Err(err(
            ErrorKind::Tls,
            tls_failure(&a.host, a.port, &e.to_string()),
        )),
        Err(_) => Err(err(
            ErrorKind::Tls,
            format!("the TLS handshake with {}:{} timed out", a.host, a.port),
        )),
    }
}

/// XOAUTH2 / OAUTHBEARER: the token message first; to the server's error
/// challenge (a JSON status) the protocol wants an empty answer, after
/// which the server says NO.
struct OAuth {
    first: Option<String>,
}

impl async_imap::Authenticator for OAuth {
    type Response = String;
    fn process(&mut self, _challenge: &[u8]) -> String {
        self.first.take().unwrap_or_default()
    }
}

/// A logged-in session.
pub struct Imap {
    session: async_imap::Session<Conn>,
    caps: HashSet<String>,
    pub account: String,
    /// The personal namespace every configured name is resolved against.
    namespace: names::Namespace,
}

/// Drain pushed responses; did any announce new messages?
fn new_mail_announced(
    rx: &async_channel::Receiver<async_imap::types::UnsolicitedResponse>,
) -> bool {
    let mut new = false;
    while let Ok(r) = rx.try_recv() {
        if matches!(
            r,
            async_imap::types::UnsolicitedResponse::Exists(_)
                | async_imap::types::UnsolicitedResponse::Recent(_)
        ) {
            new = true;
        }
    }
    new
}

/// Why an IDLE ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdleOutcome {
    /// New mail was announced before IDLE began (in the reply to an
    /// earlier command): look, without IDLE.
    Announced,
    /// The server pushed something (EXISTS, EXPUNGE, ...) during IDLE:
    /// look.
    NewData,
    /// Time to re-IDLE (before the server's 29-minute limit).
    Refresh,
    /// Nothing at all for too long, not even a keepalive.
    Silent,
    /// Shutting down.
    Stopped,
}

/// A mailbox as LIST shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MailboxInfo {
    pub name: String,
    pub special_use: Vec<String>,
    pub selectable: bool,
}

/// What SELECT/EXAMINE says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Selected {
    pub exists: u32,
    pub uid_validity: u32,
    pub uid_next: u32,
}

/// Is `flag` a valid IMAP flag (RFC 3501 §9 `flag`): a system flag
/// (`\Seen`, ...) or a keyword atom? `\Recent` cannot be stored.
pub fn valid_flag(flag: &str) -> bool {
    let atom = |s: &str| {
        !s.is_empty()
            && s.bytes()
                .all(|b| b.is_ascii_graphic() && !b"(){%*\"\\]".contains(&b))
    };
    match flag.strip_prefix('\\') {
        Some(sys) => ["Seen", "Answered", "Flagged", "Deleted", "Draft"]
            .iter()
            .any(|f| f.eq_ignore_ascii_case(sys)),
        None => atom(flag),
    }
}

/// A fetched message's flags as IMAP spells them.
pub fn flags_of(f: &Fetch) -> Vec<String> {
    use async_imap::types::Flag;
    f.flags()
        .map(|fl| match fl {
            Flag::Seen => "\\Seen".to_string(),
            Flag::Answered => "\\Answered".to_string(),
            Flag::Flagged => "\\Flagged".to_string(),
            Flag::Deleted => "\\Deleted".to_string(),
            Flag::Draft => "\\Draft".to_string(),
            Flag::Recent => "\\Recent".to_string(),
            Flag::MayCreate => "\\*".to_string(),
            Flag::Custom(c) => c.to_string(),
        })
        .collect()
}

/// Connect, log in, and compress the connection when the account's
/// `compress` setting and the server's `COMPRESS=DEFLATE` say so (a server
/// that advertises it but refuses the command gets a new, uncompressed
/// connection).
pub async fn connect(a: &Account, secret: &Secret) -> Result<Imap, ImapError> {
    let imap = login(a, secret).await?;
    if !a.compress.wanted(&a.host, imap.has("COMPRESS=DEFLATE")) {
        return Ok(imap);
    }
    let Imap {
        session,
        caps,
        account,
        namespace,
    } = imap;
    match compress::start(session).await {
        Ok(session) => Ok(Imap {
            session,
            caps,
            account,
            namespace,
        }),
        Err(e) if matches!(e.kind, ErrorKind::No | ErrorKind::Protocol) => {
            tracing::warn!("{e}; continuing without compression on a new connection");
            login(a, secret).await
        }
        Err(e) => Err(e),
    }
}

/// Connect and log in.
async fn login(a: &Account, secret: &Secret) -> Result<Imap, ImapError> {
    if a.tls == TlsMode::Plain && !is_loopback(&a.host) {
        return Err(err(
            ErrorKind::Tls,
            format!(
                "refusing a plaintext connection to {}: only loopback addresses may use tls = \"plain\"",
                a.host
            ),
        ));
    }
    let addr = (a.host.trim_matches(['[', ']']), a.port);
    let tcp = match tokio::time::timeout(connect_timeout(), TcpStream::connect(addr)).await {
        Ok(Ok(t)) => t,
        Ok(Err(e)) => {
            return Err(err(
                ErrorKind::Connect,
                format!("cannot connect to {}:{}: {e}", a.host, a.port),
            ))
        }
        Err(_) => {
            return Err(err(
                ErrorKind::Connect,
                format!("connecting to {}:{} timed out", a.host, a.port),
            ))
        }
    };
    let _ = tcp.set_nodelay(true);
    let mut client = match a.tls {
        TlsMode::Implicit => async_imap::Client::new(tls_wrap(a, tcp).await?),
        TlsMode::Plain => async_imap::Client::new(Conn::Plain(tcp)),
        TlsMode::Starttls => {
            let mut c = async_imap::Client::new(Conn::Plain(tcp));
            read_greeting(&mut c, a).await?;
            match tokio::time::timeout(
                command_timeout(),
                c.run_command_and_check_ok("STARTTLS", None),
            )
            .await
            {
                Ok(Ok(())) => {}
                Ok(Err(async_imap::error::Error::No(m))) => {
                    return Err(err(
                        ErrorKind::Tls,
                        format!(
                            "{}:{} offers STARTTLS but refused to start it (the server said \"{}\"): refusing to send the password unencrypted; its TLS set-up is broken, or use tls = \"implicit\" on port 993 if it offers that",
                            a.host,
                            a.port,
                            server_text(&m)
                        ),
                    ))
                }
                Ok(Err(async_imap::error::Error::Bad(m))) => {
                    return Err(err(
                        ErrorKind::Tls,
                        format!(
                            "{}:{} does not offer STARTTLS (the server said \"{}\"): refusing to send the password unencrypted (use tls = \"implicit\" on port 993 if the server offers it)",
                            a.host,
                            a.port,
                            server_text(&m)
                        ),
                    ))
                }
                Ok(Err(e)) => return Err(map_err("start TLS (STARTTLS)", e)),
                Err(_) => return Err(err(ErrorKind::Lost, "STARTTLS timed out")),
            }
            let Conn::Plain(tcp) = c.into_inner() else {
                unreachable!("STARTTLS starts from a plain connection")
            };
            async_imap::Client::new(tls_wrap(a, tcp).await?)
        }
    };
    if a.tls != TlsMode::Starttls {
        read_greeting(&mut client, a).await?;
    }
    let login = async {
        match a.auth {
            AuthMechanism::Password => client
                .login(&a.username, secret.expose())
                .await
                .map_err(|(e, _)| e),
            oauth => client
                .authenticate(
                    oauth.sasl_name().unwrap_or_default(),
                    OAuth {
                        first: oauth.oauth_message(&a.username, &a.host, a.port, secret.expose()),
                    },
                )
                .await
                .map_err(|(e, _)| e),
        }
    };
    let session = match tokio::time::timeout(command_timeout(), login).await {
        Ok(Ok(s)) => s,
        Ok(Err(async_imap::error::Error::No(m))) | Ok(Err(async_imap::error::Error::Bad(m))) => {
            return Err(err(
                ErrorKind::Auth,
                format!(
                    "{}:{} refused the login for {}: {} (check the password, or the token for auth = \"xoauth2\" or \"oauthbearer\")",
                    a.host,
                    a.port,
                    a.username,
                    server_text(&m)
                ),
            ))
        }
        Ok(Err(e)) => return Err(map_err("log in", e)),
        Err(_) => return Err(err(ErrorKind::Lost, "the login timed out")),
    };
    let mut imap = Imap {
        session,
        caps: HashSet::new(),
        account: a.name.clone(),
        namespace: names::Namespace::default(),
    };
    let caps = timed("read capabilities", imap.session.capabilities()).await?;
    imap.caps = caps
        .iter()
        .map(|c| format!("{c:?}"))
        .map(|s| capability_name(&s))
        .collect();
    imap.namespace = imap.read_namespace().await?;
    Ok(imap)
}

/// Send `NAMESPACE` on the raw connection and read up to its tagged
/// reply (at most 64 KiB): the personal namespace, or `None` when the
/// server answered NO/BAD or sent nothing readable.
async fn raw_namespace(conn: &mut Conn) -> io::Result<Option<names::Namespace>> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    const TAG: &str = "BSNS1";
    conn.write_all(format!("{TAG} NAMESPACE\r\n").as_bytes())
        .await?;
    conn.flush().await?;
    let mut buf: Vec<u8> = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let n = conn.read(&mut chunk).await?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "bytes remaining in stream",
            ));
        }
        buf.extend_from_slice(&chunk[..n]);
        let text = String::from_utf8_lossy(&buf);
        let done = text.ends_with("\r\n")
            && text
                .split("\r\n")
                .any(|l| l.starts_with(&format!("{TAG} ")));
        if done {
            return Ok(text.split("\r\n").find_map(names::parse_namespace));
        }
        if buf.len() > 64 * 1024 {
            return Ok(None);
        }
    }
}

/// async-imap's `Capability` Debug forms (`Imap4rev1`, `Auth("PLAIN")`,
/// `Atom("IDLE")`) as capability names.
fn capability_name(debug: &str) -> String {
    if let Some(rest) = debug.strip_prefix("Atom(\"") {
        return rest.trim_end_matches("\")").to_ascii_uppercase();
    }
    if let Some(rest) = debug.strip_prefix("Auth(\"") {
        return format!("AUTH={}", rest.trim_end_matches("\")").to_ascii_uppercase());
    }
    debug.to_ascii_uppercase()
}

async fn read_greeting(c: &mut async_imap::Client<Conn>, a: &Account) -> Result<(), ImapError> {
    // A server that waits for a TLS ClientHello sends no greeting: after
    // a short wait, find out whether the port speaks TLS from the first
    // byte (IMAPS) instead of waiting the full timeout.
    let first_wait = if a.tls == TlsMode::Implicit {
        connect_timeout()
    } else {
        connect_timeout().min(Duration::from_secs(3))
    };
    let greeting = match tokio::time::timeout(first_wait, c.read_response()).await {
        Ok(r) => r,
        Err(_) if a.tls != TlsMode::Implicit => {
            if speaks_tls(&a.host, a.port).await {
                return Err(err(
                    ErrorKind::Connect,
                    format!(
                        "{}:{} expects TLS from the first byte (an IMAPS port) and sends no plain-text greeting: set tls = \"implicit\" for this port, or use the STARTTLS port (usually 143)",
                        a.host, a.port
                    ),
                ));
            }
            match tokio::time::timeout(connect_timeout() - first_wait, c.read_response()).await {
                Ok(r) => r,
                Err(_) => {
                    return Err(err(
                        ErrorKind::Lost,
                        format!(
                            "{}:{} sent no greeting within {} s (is this the IMAP port?)",
                            a.host,
                            a.port,
                            connect_timeout().as_secs()
                        ),
                    ))
                }
            }
        }
        Err(_) => {
            return Err(err(
                ErrorKind::Lost,
                format!(
                    "{}:{} sent no greeting within {} s (is this the IMAP port?)",
                    a.host,
                    a.port,
                    connect_timeout().as_secs()
                ),
            ))
        }
    };
    match greeting {
        Ok(Some(_)) => Ok(()),
        Ok(None) => Err(err(
            ErrorKind::Lost,
            format!(
                "{}:{} closed the connection before greeting",
                a.host, a.port
            ),
        )),
        Err(e) => Err(err(
            ErrorKind::Protocol,
            not_imap(&a.host, a.port, &e.to_string()),
        )),
    }
}

/// Does `host:port` complete a TLS handshake? A probe on a connection of
/// its own (no certificate check: nothing is sent over it), at most 5 s.
async fn speaks_tls(host: &str, port: u16) -> bool {
    let host = host.trim_matches(['[', ']']);
    let probe = async {
        let tcp = TcpStream::connect((host, port)).await.ok()?;
        let c = tokio_native_tls::native_tls::TlsConnector::builder()
            .danger_accept_invalid_certs(true)
            .danger_accept_invalid_hostnames(true)
            .build()
            .ok()?;
        tokio_native_tls::TlsConnector::from(c)
            .connect(host, tcp)
            .await
            .ok()
    };
    matches!(
        tokio::time::timeout(Duration::from_secs(5), probe).await,
        Ok(Some(_))
    )
}

/// One sentence for a greeting that is not IMAP, naming the likely
/// mistake from what the server said: async-imap's parse error carries
/// the bytes as `during parsing of "…"`.
fn not_imap(host: &str, port: u16, error: &str) -> String {
    let said = error
        .split_once("during parsing of \"")
        .map(|(_, r)| r.trim_end_matches('"'))
        .unwrap_or("")
        .replace("\\r", " ")
        .replace("\\n", " ")
        .replace("\\\"", "\"");
    let said = said.trim();
    let up = said.to_ascii_uppercase();
    let what = if up.starts_with("\"IMPLEMENTATION\"") || up.starts_with("\"SIEVE\"") {
        "a ManageSieve server (its port belongs in [accounts.NAME.sieve])"
    } else if up.starts_with("220 ") && up.contains("LMTP") {
        "an LMTP server"
    } else if up.starts_with("220 ") {
        "an SMTP or LMTP server"
    } else if up.starts_with("+OK") {
        "a POP3 server"
    } else if up.starts_with("SSH-") {
        "an SSH server"
    } else if up.starts_with("HTTP/") {
        "a web server"
    } else {
        "not an IMAP server"
    };
    let excerpt: String = said
        .chars()
        .take(50)
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    if excerpt.is_empty() {
        format!("{host}:{port} did not greet like an IMAP server: check the port (993 with tls = \"implicit\", 143 with \"starttls\")")
    } else {
        let excerpt = excerpt.split_whitespace().collect::<Vec<_>>().join(" ");
        format!("{host}:{port} is {what}, not IMAP (its greeting: {excerpt} …): set port to the IMAP port (993 with tls = \"implicit\", 143 with \"starttls\")")
    }
}

/// The COPYUID response code (RFC 4315 section 3): where moved messages
/// landed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CopyUid {
    /// UIDVALIDITY of the destination mailbox.
    pub uidvalidity: u32,
    /// (source UID, destination UID) pairs.
    pub pairs: Vec<(u32, u32)>,
}

impl CopyUid {
    /// From a response code, when it is a COPYUID for at most `max`
    /// messages (a longer one is not ours, and is not expanded).
    fn from_code(code: &async_imap::imap_proto::ResponseCode<'_>, max: usize) -> Option<CopyUid> {
        use async_imap::imap_proto::{rfc4315::UidSetMember, ResponseCode};
        let ResponseCode::CopyUid(validity, src, dst) = code else {
            return None;
        };
        let expand = |set: &[UidSetMember]| -> Option<Vec<u32>> {
            let mut out = Vec::new();
            for m in set {
                match m {
                    UidSetMember::Uid(u) => out.push(*u),
                    UidSetMember::UidRange(r) => {
                        let n = (*r.end() as usize).checked_sub(*r.start() as usize)? + 1;
                        if out.len() + n > max {
                            return None;
                        }
                        out.extend(r.clone());
                    }
                }
                if out.len() > max {
                    return None;
                }
            }
            Some(out)
        };
        let (s, d) = (expand(src)?, expand(dst)?);
        (s.len() == d.len()).then(|| CopyUid {
            uidvalidity: *validity,
            pairs: s.into_iter().zip(d).collect(),
        })
    }
}

/// A mailbox name as an IMAP quoted string (RFC 3501 section 4.3).
fn quote_mailbox(name: &str) -> String {
    format!("\"{}\"", name.replace('\\', "\\\\").replace('"', "\\\""))
}

/// Send one command and read its responses up to the tagged one, keeping
/// the first COPYUID code of an OK (untagged or tagged) that maps at most
/// `max` messages. NO and BAD become async-imap's errors, so that
/// [`map_err`] words them as for any command.
async fn run_reading_copyuid(
    session: &mut async_imap::Session<Conn>,
    command: String,
    max: usize,
) -> Result<Option<CopyUid>, async_imap::error::Error> {
    use async_imap::error::Error as E;
    use async_imap::imap_proto::{Response, Status};
    if command.contains(['\r', '\n']) {
        return Err(E::Bad("a line break in a command".into()));
    }
    let tag = session.run_command(&command).await?;
    let mut found = None;
    loop {
        let Some(r) = session.read_response().await? else {
            return Err(E::ConnectionLost);
        };
        match r.parsed() {
            Response::Done {
                tag: t,
                status,
                outcome,
            } if *t == tag => {
                let text = || outcome.information.as_deref().unwrap_or("").to_string();
                return match status {
                    Status::Ok => Ok(found.or_else(|| {
                        outcome
                            .code
                            .as_ref()
                            .and_then(|c| CopyUid::from_code(c, max))
                    })),
                    Status::No => Err(E::No(text())),
                    _ => Err(E::Bad(text())),
                };
            }
            Response::Data {
                status: Status::Ok,
                outcome,
            } if found.is_none() => {
                found = outcome
                    .code
                    .as_ref()
                    .and_then(|c| CopyUid::from_code(c, max));
            }
            _ => {}
        }
    }
}

/// IMAP `date` for SEARCH SINCE: `1-Feb-2026`.
pub fn imap_date(ts: i64) -> String {
    let d = mail_parser::DateTime::from_timestamp(ts);
    const M: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    format!(
        "{}-{}-{}",
        d.day,
        M[(d.month.clamp(1, 12) - 1) as usize],
        d.year
    )
}

/// A UID set in IMAP syntax with ranges: `1:5,9,12:14`.
pub fn uid_set(uids: &[u32]) -> String {
    let mut v: Vec<u32> = uids.to_vec();
    v.sort_unstable();
    v.dedup();
    let mut out = String::new();
    let mut i = 0;
    while i < v.len() {
        let start = v[i];
        let mut end = start;
        while i + 1 < v.len() && v[i + 1] == end + 1 {
            i += 1;
            end = v[i];
        }
        if !out.is_empty() {
            out.push(',');
        }
        if start == end {
            out.push_str(&start.to_string());
        } else {
            out.push_str(&format!("{start}:{end}"));
        }
        i += 1;
    }
    out
}

impl Imap {
    pub fn has(&self, cap: &str) -> bool {
        self.caps.contains(&cap.to_ascii_uppercase())
    }

    /// Is the connection compressed (`COMPRESS=DEFLATE`)?
    pub fn compressed(&self) -> bool {
        matches!(self.session.get_ref(), Conn::Deflate(_))
    }

    pub fn capabilities(&self) -> Vec<String> {
        let mut v: Vec<String> = self.caps.iter().cloned().collect();
        v.sort();
        v
    }

    /// Every mailbox with its SPECIAL-USE attributes.
    pub async fn list(&mut self) -> Result<Vec<MailboxInfo>, ImapError> {
        let names: Vec<_> = timed("list mailboxes", async {
            self.session
                .list(Some(""), Some("*"))
                .await?
                .try_collect::<Vec<_>>()
                .await
        })
        .await?;
        Ok(names
            .iter()
            .map(|n| {
                let mut special = Vec::new();
                let mut selectable = true;
                for a in n.attributes() {
                    match a {
                        NameAttribute::Sent => special.push("\\Sent".to_string()),
                        NameAttribute::Junk => special.push("\\Junk".to_string()),
                        NameAttribute::Trash => special.push("\\Trash".to_string()),
                        NameAttribute::Drafts => special.push("\\Drafts".to_string()),
                        NameAttribute::Archive => special.push("\\Archive".to_string()),
                        NameAttribute::All => special.push("\\All".to_string()),
                        NameAttribute::Flagged => special.push("\\Flagged".to_string()),
                        NameAttribute::NoSelect => selectable = false,
                        NameAttribute::Extension(e) if e.eq_ignore_ascii_case("\\NonExistent") => {
                            selectable = false
                        }
                        _ => {}
                    }
                }
                MailboxInfo {
                    name: names::decode_lossless(n.name()),
                    special_use: special,
                    selectable,
                }
            })
            .collect())
    }

    /// SELECT (read-write) a mailbox.
    pub async fn select(&mut self, mailbox: &str) -> Result<Selected, ImapError> {
        let what = format!("open mailbox \"{mailbox}\"");
        let m = timed(&what, self.session.select(names::encode(mailbox))).await?;
        Ok(Selected {
            exists: m.exists,
            uid_validity: m.uid_validity.unwrap_or(0),
            uid_next: m.uid_next.unwrap_or(0),
        })
    }

    /// SELECT (or with `read_only` EXAMINE) a mailbox the user named; one
    /// that the server refuses and LIST does not show is reported as
    /// [`ErrorKind::Missing`], one sentence naming it.
    pub async fn open_named(
        &mut self,
        mailbox: &str,
        read_only: bool,
    ) -> Result<Selected, ImapError> {
        let r = if read_only {
            self.examine(mailbox).await
        } else {
            self.select(mailbox).await
        };
        match r {
            Err(e) if e.kind == ErrorKind::No && !self.mailbox_exists(mailbox).await? => Err(err(
                ErrorKind::Missing,
                format!(
                    "mailbox \"{mailbox}\" does not exist on account \"{}\" (check the name with `backscatter account check`)",
                    self.account
                ),
            )),
            r => r,
        }
    }

    /// EXAMINE (read-only) a mailbox.
    pub async fn examine(&mut self, mailbox: &str) -> Result<Selected, ImapError> {
        let what = format!("open mailbox \"{mailbox}\"");
        let m = timed(&what, self.session.examine(names::encode(mailbox))).await?;
        Ok(Selected {
            exists: m.exists,
            uid_validity: m.uid_validity.unwrap_or(0),
            uid_next: m.uid_next.unwrap_or(0),
        })
    }

    /// Make sure a mailbox (a resolved name, UTF-8) exists, decided by the
    /// protocol rather than by the wording of a reply: INBOX always exists
    /// and is never created (UW imapd refuses to); a mailbox LIST shows is
    /// there; otherwise CREATE, and a NO to CREATE still counts as success
    /// when a LIST after it shows the mailbox (Courier answers `NO Cannot
    /// create this folder.` for one that exists, others race us).
    pub async fn ensure_mailbox(&mut self, mailbox: &str) -> Result<(), ImapError> {
        if names::is_inbox(mailbox) || self.mailbox_exists(mailbox).await? {
            return Ok(());
        }
        let what = format!("create mailbox \"{mailbox}\"");
        match timed(&what, self.session.create(names::encode(mailbox))).await {
            Ok(()) => Ok(()),
            Err(e) if e.kind == ErrorKind::No => {
                if self.mailbox_exists(mailbox).await? {
                    Ok(())
                } else {
                    Err(e)
                }
            }
            Err(e) => Err(e),
        }
    }

    /// Does LIST show this mailbox (a resolved name, UTF-8) as one that
    /// can be selected? INBOX always exists.
    pub async fn mailbox_exists(&mut self, mailbox: &str) -> Result<bool, ImapError> {
        if names::is_inbox(mailbox) {
            return Ok(true);
        }
        let wire = names::encode(mailbox);
        let what = format!("look up mailbox \"{mailbox}\"");
        let found = timed(&what, async {
            self.session
                .list(Some(""), Some(&wire))
                .await?
                .try_collect::<Vec<_>>()
                .await
        })
        .await?;
        Ok(found.iter().any(|n| {
            n.name() == wire
                && !n.attributes().iter().any(|a| {
                    matches!(a, NameAttribute::NoSelect)
                        || matches!(a, NameAttribute::Extension(e) if e.eq_ignore_ascii_case("\\NonExistent"))
                })
        }))
    }

    /// The personal namespace (NAMESPACE, RFC 2342) every configured name
    /// is resolved against.
    pub fn namespace(&self) -> &names::Namespace {
        &self.namespace
    }

    /// The server's name (UTF-8) of a mailbox as the user configured it:
    /// see [`names::resolve`].
    pub fn resolve(&self, configured: &str) -> String {
        names::resolve(configured, &self.namespace)
    }

    /// The account with every mailbox it names (quarantine, sent, watch)
    /// resolved against this server's namespace.
    pub fn resolve_account(&self, a: &Account) -> Account {
        let mut r = a.clone();
        r.quarantine = self.resolve(&a.quarantine);
        r.sent = a
            .sent
            .as_ref()
            .map(|v| v.iter().map(|m| self.resolve(m)).collect());
        r.watch = a.watch.iter().map(|m| self.resolve(m)).collect();
        r
    }

    /// Ask for NAMESPACE (RFC 2342) where offered, else learn only the
    /// hierarchy delimiter from `LIST "" ""` (no prefix). async-imap cannot
    /// parse a NAMESPACE reply, so the command goes over the connection
    /// directly, between two async-imap commands (nothing is buffered
    /// then).
    async fn read_namespace(&mut self) -> Result<names::Namespace, ImapError> {
        if self.has("NAMESPACE") {
            match tokio::time::timeout(command_timeout(), raw_namespace(self.session.get_mut()))
                .await
            {
                Ok(Ok(Some(ns))) => return Ok(ns),
                Ok(Ok(None)) => {}
                Ok(Err(e)) => {
                    return Err(err(
                        ErrorKind::Lost,
                        format!("{} while trying to read the namespace", io_text(&e)),
                    ))
                }
                Err(_) => {
                    return Err(err(
                        ErrorKind::Lost,
                        format!(
                        "the server did not answer within {} s while trying to read the namespace",
                        command_timeout().as_secs()
                    ),
                    ))
                }
            }
        }
        let root = timed("read the hierarchy delimiter", async {
            self.session
                .list(Some(""), Some(""))
                .await?
                .try_collect::<Vec<_>>()
                .await
        })
        .await?;
        Ok(names::Namespace {
            delimiter: root
                .first()
                .and_then(|n| n.delimiter())
                .and_then(|d| d.chars().next()),
            ..names::Namespace::default()
        })
    }

    /// UID SEARCH, sorted ascending.
    pub async fn uid_search(&mut self, query: &str) -> Result<Vec<u32>, ImapError> {
        let set = timed("search the mailbox", self.session.uid_search(query)).await?;
        let mut v: Vec<u32> = set.into_iter().collect();
        v.sort_unstable();
        Ok(v)
    }

    /// UID FETCH and collect the responses.
    pub async fn uid_fetch(&mut self, uids: &[u32], items: &str) -> Result<Vec<Fetch>, ImapError> {
        if uids.is_empty() {
            return Ok(Vec::new());
        }
        let set = uid_set(uids);
        timed("fetch messages", async {
            self.session
                .uid_fetch(&set, items)
                .await?
                .try_collect::<Vec<_>>()
                .await
        })
        .await
    }

    /// Move messages: UID MOVE where the server has MOVE, otherwise UID
    /// COPY + `\Deleted` + UID EXPUNGE of exactly those UIDs (never a plain
    /// EXPUNGE, which would remove other `\Deleted` mail).
    pub async fn uid_move(&mut self, uids: &[u32], dest: &str) -> Result<(), ImapError> {
        self.uid_move_mapped(uids, dest).await.map(|_| ())
    }

    /// Can messages be moved without risk of losing or doubling one: the
    /// server has MOVE (RFC 6851), or UIDPLUS (RFC 4315) for COPY + UID
    /// EXPUNGE of exactly the copied UIDs. Check before journaling a move.
    pub fn can_move_safely(&self) -> Result<(), ImapError> {
        if self.uses_move() || self.has("UIDPLUS") {
            Ok(())
        } else {
            Err(err(
                ErrorKind::Protocol,
                "the server has neither MOVE nor UIDPLUS: backscatter cannot move messages safely there",
            ))
        }
    }

    fn uses_move(&self) -> bool {
        self.has("MOVE") && std::env::var_os("BACKSCATTER_TEST_NO_MOVE").is_none()
    }

    /// [`Imap::uid_move`], returning the server's COPYUID mapping (RFC
    /// 4315 section 3: the destination's UIDVALIDITY and each moved
    /// UID's new UID there), which MOVE sends in an untagged OK and COPY
    /// in the tagged OK. `None` when the server sent none (no UIDPLUS).
    ///
    /// async-imap 0.12 drops the response codes of a tagged OK (and files
    /// untagged ones among the unsolicited responses), so the command is
    /// sent and its responses read here.
    pub async fn uid_move_mapped(
        &mut self,
        uids: &[u32],
        dest: &str,
    ) -> Result<Option<CopyUid>, ImapError> {
        if uids.is_empty() {
            return Ok(None);
        }
        self.can_move_safely()?;
        let set = uid_set(uids);
        let what = format!("move messages to \"{dest}\"");
        let verb = if self.uses_move() { "MOVE" } else { "COPY" };
        let mapping = timed(
            &what,
            run_reading_copyuid(
                &mut self.session,
                format!("UID {verb} {set} {}", quote_mailbox(&names::encode(dest))),
                uids.len(),
            ),
        )
        .await?;
        if verb == "COPY" {
            self.uid_delete(uids).await?;
        }
        self.drain_unsolicited();
        Ok(mapping)
    }

    /// SELECT a mailbox and also say whether it keeps keywords the client
    /// invents: PERMANENTFLAGS lists `\*` (RFC 3501 section 7.1).
    pub async fn select_keywords(
        &mut self,
        mailbox: &str,
        keyword: &str,
    ) -> Result<(Selected, bool), ImapError> {
        let what = format!("open mailbox \"{mailbox}\"");
        let m = timed(&what, self.session.select(names::encode(mailbox))).await?;
        let allowed = m.permanent_flags.iter().any(|f| match f {
            async_imap::types::Flag::MayCreate => true,
            async_imap::types::Flag::Custom(c) => c.eq_ignore_ascii_case(keyword),
            _ => false,
        });
        Ok((
            Selected {
                exists: m.exists,
                uid_validity: m.uid_validity.unwrap_or(0),
                uid_next: m.uid_next.unwrap_or(0),
            },
            allowed,
        ))
    }

    /// UID STORE +FLAGS.SILENT (KEYWORD) on these UIDs of the selected
    /// mailbox (RFC 3501 section 6.4.6).
    pub async fn uid_add_keyword(&mut self, uids: &[u32], keyword: &str) -> Result<(), ImapError> {
        if uids.is_empty() {
            return Ok(());
        }
        let set = uid_set(uids);
        timed("set a keyword", async {
            self.session
                .uid_store(&set, format!("+FLAGS.SILENT ({keyword})"))
                .await?
                .try_collect::<Vec<_>>()
                .await
        })
        .await?;
        self.drain_unsolicited();
        Ok(())
    }

    /// UID COPY (RFC 3501 §6.4.7): a copy of each message into `dest`.
    pub async fn uid_copy(&mut self, uids: &[u32], dest: &str) -> Result<(), ImapError> {
        if uids.is_empty() {
            return Ok(());
        }
        let set = uid_set(uids);
        let what = format!("copy messages to \"{dest}\"");
        // async-imap quotes the name; the modified UTF-7 is ours to do.
        timed(&what, self.session.uid_copy(&set, names::encode(dest))).await?;
        self.drain_unsolicited();
        Ok(())
    }

    /// UID STORE `+FLAGS.SILENT` (`add`) or `-FLAGS.SILENT` (RFC 3501
    /// §6.4.6). Flags must be valid IMAP flags ([`valid_flag`]).
    pub async fn uid_store_flags(
        &mut self,
        uids: &[u32],
        add: bool,
        flags: &[String],
    ) -> Result<(), ImapError> {
        if uids.is_empty() || flags.is_empty() {
            return Ok(());
        }
        let set = uid_set(uids);
        let query = format!(
            "{}FLAGS.SILENT ({})",
            if add { "+" } else { "-" },
            flags.join(" ")
        );
        timed("set flags", async {
            self.session
                .uid_store(&set, &query)
                .await?
                .try_collect::<Vec<_>>()
                .await
        })
        .await?;
        self.drain_unsolicited();
        Ok(())
    }

    /// Mark exactly these UIDs `\Deleted` and expunge exactly them
    /// (UIDPLUS). Used after a COPY, never on its own.
    pub async fn uid_delete(&mut self, uids: &[u32]) -> Result<(), ImapError> {
        let set = uid_set(uids);
        timed("mark moved messages", async {
            self.session
                .uid_store(&set, "+FLAGS.SILENT (\\Deleted)")
                .await?
                .try_collect::<Vec<_>>()
                .await
        })
        .await?;
        timed("expunge moved messages", async {
            self.session
                .uid_expunge(&set)
                .await?
                .try_collect::<Vec<_>>()
                .await
        })
        .await?;
        Ok(())
    }

    /// Forget pushed responses (they are re-checked with searches, never
    /// trusted; async-imap drops them past 100 anyway).
    fn drain_unsolicited(&mut self) {
        while self.session.unsolicited_responses.try_recv().is_ok() {}
    }

    /// IDLE until the server reports something, `max` passes (re-IDLE
    /// well before the 29-minute limit), the connection stays silent for
    /// `silent` (a dead connection: servers send keepalives every few
    /// minutes), or `stop` resolves. Gives the session back after DONE.
    pub async fn idle(
        self,
        max: Duration,
        silent: Duration,
        stop: impl Future<Output = ()>,
    ) -> Result<(Imap, IdleOutcome), ImapError> {
        // Mail that arrived after the last search is announced by EXISTS
        // responses that async-imap files away as unsolicited — before IDLE
        // or while it starts. Look there first, or that mail would wait for
        // the next push.
        if new_mail_announced(&self.session.unsolicited_responses) {
            return Ok((self, IdleOutcome::Announced));
        }
        let Imap {
            session,
            caps,
            account,
            namespace,
        } = self;
        let announced = session.unsolicited_responses.clone();
        let mut handle = session.idle();
        timed("start IDLE", handle.init()).await?;
        let outcome = if new_mail_announced(&announced) {
            IdleOutcome::Announced
        } else {
            let (wait, interrupt) = handle.wait_with_timeout(silent);
            let outcome = tokio::select! {
                r = tokio::time::timeout(max, wait) => match r {
                    Ok(Ok(async_imap::extensions::idle::IdleResponse::NewData(_))) => IdleOutcome::NewData,
                    Ok(Ok(async_imap::extensions::idle::IdleResponse::Timeout)) => IdleOutcome::Silent,
                    Ok(Ok(async_imap::extensions::idle::IdleResponse::ManualInterrupt)) => IdleOutcome::Silent,
                    Ok(Err(e)) => return Err(map_err("wait for new mail (IDLE)", e)),
                    Err(_) => IdleOutcome::Refresh,
                },
                _ = stop => IdleOutcome::Stopped,
            };
            drop(interrupt);
            outcome
        };
        let session = timed("end IDLE", handle.done()).await?;
        let mut imap = Imap {
            session,
            caps,
            account,
            namespace,
        };
        imap.drain_unsolicited();
        Ok((imap, outcome))
    }

    /// NOOP: is the connection alive?
    pub async fn noop(&mut self) -> Result<(), ImapError> {
        timed("check the connection", self.session.noop()).await
    }

    pub async fn logout(mut self) {
        let _ = tokio::time::timeout(Duration::from_secs(5), self.session.logout()).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uid_sets_use_ranges() {
        assert_eq!(uid_set(&[5, 1, 2, 3, 9, 12, 13, 14, 3]), "1:3,5,9,12:14");
        assert_eq!(uid_set(&[7]), "7");
    }

    #[test]
    fn imap_dates() {
        assert_eq!(imap_date(1_767_225_600), "1-Jan-2026");
    }

    #[test]
    fn capability_names() {
        assert_eq!(capability_name("Atom(\"IDLE\")"), "IDLE");
        assert_eq!(capability_name("Auth(\"PLAIN\")"), "AUTH=PLAIN");
        assert_eq!(capability_name("Imap4rev1"), "IMAP4REV1");
    }
}
