//! The IMAP layer: connecting (implicit TLS, STARTTLS, plaintext to
//! loopback only) with certificate verification, authenticating (LOGIN or
//! XOAUTH2), and the handful of commands backscatter needs, each with a
//! timeout and an error that is one clear sentence without the password.
//!
//! This is I/O; the decisions (what to fetch, what to move) are made by the
//! pure modules `skeleton`, `classify` and `plan`.

pub mod compress;
mod scrape;
pub use backscatter_policy::names;
pub mod pipeline;
pub mod structure;

use crate::config::{is_loopback, Account, AuthMechanism, Endpoint, TlsMode};
use crate::secret::Secret;
use async_imap::types::NameAttribute;
use std::collections::HashSet;
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
/// New connections [`Imap::uid_fetch_contained`] may open to contain
/// replies it cannot parse.
pub const MAX_RECONNECTS: usize = 40;

pub fn connect_timeout() -> Duration {
    command_timeout().min(Duration::from_secs(20))
}

pub use crate::net::{ErrorKind, NetError as ImapError};
use scrape::{io_text, not_imap, server_text, tls_failure};

fn err(kind: ErrorKind, message: impl Into<String>) -> ImapError {
    ImapError {
        kind,
        message: message.into(),
    }
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
            if io.to_string().contains("during parsing of ") {
                ErrorKind::Unparsable
            } else {
                ErrorKind::Lost
            },
            format!("{} while trying to {what}", io_text(&io)),
        ),
        E::Parse(_) => err(
            ErrorKind::Protocol,
            format!("the server sent a response that could not be read while trying to {what}"),
        ),
        other => err(
            ErrorKind::Protocol,
            format!("unexpected server response while trying to {what}: {other}"),
        ),
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
/// Pipelined commands ([`pipeline`]) count once per wait for an answer,
/// however many were in flight.
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

fn tls_connector(e: &Endpoint) -> Result<tokio_native_tls::TlsConnector, ImapError> {
    let mut b = tokio_native_tls::native_tls::TlsConnector::builder();
    if let Some(ca) = &e.ca_file {
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

pub(crate) async fn tls_wrap(to: &Endpoint, tcp: TcpStream) -> Result<Conn, ImapError> {
    let connector = tls_connector(to)?;
    let host = to.host.trim_matches(['[', ']']);
    match tokio::time::timeout(connect_timeout(), connector.connect(host, tcp)).await {
        Ok(Ok(s)) => Ok(Conn::Tls(Box::new(s))),
        Ok(Err(e)) => Err(err(
            ErrorKind::Tls,
            tls_failure(&to.host, to.port, &e.to_string()),
        )),
        Err(_) => Err(err(
            ErrorKind::Tls,
            format!("the TLS handshake with {} timed out", to),
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
    /// What the session was opened with, for [`Imap::reconnect`].
    origin: Option<Box<(Account, Secret)>>,
    /// The mailbox selected last: its name, read-only (EXAMINE), and
    /// UIDVALIDITY.
    selected: Option<(String, bool, u32)>,
    /// The server sent a BODYSTRUCTURE that could not be parsed: the sweep
    /// fetches bytes instead of asking for structures again.
    pub structure_unreadable: bool,
    /// An EXISTS or RECENT came with the reply to a command this layer
    /// read itself ([`run_checked`]): new mail, for the next [`Imap::idle`].
    announced: bool,
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
    /// HIGHESTMODSEQ (CONDSTORE, RFC 7162), when the server sent it:
    /// after [`Imap::open_named_condstore`] on a server with CONDSTORE.
    pub highest_modseq: Option<u64>,
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

/// One message's FETCH response (RFC 3501 section 7.4.2), owned: what
/// [`Imap::uid_fetch`] read for it. Each item is `None` (or empty) when
/// the server did not send it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Fetched {
    /// UID (the command asks for it; an unsolicited FETCH may lack it).
    pub uid: Option<u32>,
    /// RFC822.SIZE, in bytes.
    pub size: Option<u32>,
    /// FLAGS as IMAP spells them (`\\Seen`, `$NotBackscatter`).
    pub flags: Vec<String>,
    /// INTERNALDATE as Unix seconds (RFC 3501 `date-time`).
    pub internal_date: Option<i64>,
    header: Option<Vec<u8>>,
    body: Option<Vec<u8>>,
    structure: Option<crate::skeleton::Part>,
}

impl Fetched {
    /// From the attributes of one `* n FETCH (...)` response.
    fn from_attrs(attrs: &[async_imap::imap_proto::AttributeValue<'_>]) -> Fetched {
        use async_imap::imap_proto::{AttributeValue as A, MessageSection, SectionPath};
        let mut f = Fetched::default();
        for a in attrs {
            match a {
                A::Uid(u) => f.uid = Some(*u),
                A::Rfc822Size(s) => f.size = Some(*s),
                A::Flags(fl) => f.flags = fl.iter().map(|x| x.to_string()).collect(),
                A::InternalDate(d) => f.internal_date = parse_date_time(d),
                A::BodySection {
                    section: None,
                    data: Some(b),
                    ..
                }
                | A::Rfc822(Some(b)) => {
                    f.body.get_or_insert_with(|| b.to_vec());
                }
                A::BodySection {
                    section: Some(SectionPath::Full(MessageSection::Header)),
                    data: Some(h),
                    ..
                }
                | A::Rfc822Header(Some(h)) => {
                    f.header.get_or_insert_with(|| h.to_vec());
                }
                A::BodyStructure(bs) => f.structure = Some(structure::convert(bs)),
                _ => {}
            }
        }
        f
    }

    /// `BODY[HEADER]` (also `BODY.PEEK[HEADER]`, `RFC822.HEADER`).
    pub fn header(&self) -> Option<&[u8]> {
        self.header.as_deref()
    }

    /// `BODY[]` (also `BODY.PEEK[]`, a partial `BODY.PEEK[]<n.m>`,
    /// `RFC822`): the bytes from the offset asked for.
    pub fn body(&self) -> Option<&[u8]> {
        self.body.as_deref()
    }

    /// `BODYSTRUCTURE`, as the skeleton's MIME tree.
    pub fn structure(&self) -> Option<&crate::skeleton::Part> {
        self.structure.as_ref()
    }
}

/// Connect, log in, and compress the connection when the account's
/// `compress` setting and the server's `COMPRESS=DEFLATE` say so (a server
/// that advertises it but refuses the command gets a new, uncompressed
/// connection).
pub async fn connect(a: &Account, secret: &Secret) -> Result<Imap, ImapError> {
    let imap = login(a, secret).await?;
    if !a
        .compress
        .wanted(&a.imap.host, imap.has("COMPRESS=DEFLATE"))
    {
        return Ok(imap);
    }
    let Imap {
        session,
        caps,
        account,
        namespace,
        origin,
        selected,
        structure_unreadable,
        announced,
    } = imap;
    match compress::start(session).await {
        Ok(session) => Ok(Imap {
            session,
            caps,
            account,
            namespace,
            origin,
            selected,
            structure_unreadable,
            announced,
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
    if a.imap.tls == TlsMode::Plain && !is_loopback(&a.imap.host) {
        return Err(err(
            ErrorKind::Tls,
            format!(
                "refusing a plaintext connection to {}: only loopback addresses may use tls = \"plain\"",
                a.imap.host
            ),
        ));
    }
    let addr = (a.imap.host.trim_matches(['[', ']']), a.imap.port);
    let tcp = match tokio::time::timeout(connect_timeout(), TcpStream::connect(addr)).await {
        Ok(Ok(t)) => t,
        Ok(Err(e)) => {
            return Err(err(
                ErrorKind::Connect,
                format!("cannot connect to {}: {e}", a.imap),
            ))
        }
        Err(_) => {
            return Err(err(
                ErrorKind::Connect,
                format!("connecting to {} timed out", a.imap),
            ))
        }
    };
    let _ = tcp.set_nodelay(true);
    let mut client = match a.imap.tls {
        TlsMode::Implicit => async_imap::Client::new(tls_wrap(&a.imap, tcp).await?),
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
                            "{} offers STARTTLS but refused to start it (the server said \"{}\"): refusing to send the password unencrypted; its TLS set-up is broken, or use tls = \"implicit\" on port 993 if it offers that",
                            a.imap,
                            server_text(&m)
                        ),
                    ))
                }
                Ok(Err(async_imap::error::Error::Bad(m))) => {
                    return Err(err(
                        ErrorKind::Tls,
                        format!(
                            "{} does not offer STARTTLS (the server said \"{}\"): refusing to send the password unencrypted (use tls = \"implicit\" on port 993 if the server offers it)",
                            a.imap,
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
            async_imap::Client::new(tls_wrap(&a.imap, tcp).await?)
        }
    };
    if a.imap.tls != TlsMode::Starttls {
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
                        first: oauth.oauth_message(
                            &a.username,
                            &a.imap.host,
                            a.imap.port,
                            secret.expose(),
                        ),
                    },
                )
                .await
                .map_err(|(e, _)| e),
        }
    };
    let session = match tokio::time::timeout(command_timeout(), login).await {
        Ok(Ok(s)) => s,
        Ok(Err(async_imap::error::Error::No(m))) if temporary_refusal(&server_text(&m)) => {
            return Err(err(
                ErrorKind::Unavailable,
                format!(
                    "{} cannot log {} in just now: {} (a temporary failure on the server's side, not a wrong password; try again later)",
                    a.imap,
                    a.username,
                    server_text(&m)
                ),
            ))
        }
        Ok(Err(async_imap::error::Error::No(m))) | Ok(Err(async_imap::error::Error::Bad(m))) => {
            return Err(err(
                ErrorKind::Auth,
                format!(
                    "{} refused the login for {}: {} (check the password, or the token for auth = \"xoauth2\" or \"oauthbearer\")",
                    a.imap,
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
        origin: Some(Box::new((a.clone(), secret.clone()))),
        selected: None,
        structure_unreadable: false,
        announced: false,
    };
    let caps = timed("read capabilities", imap.session.capabilities()).await?;
    imap.caps = caps.iter().map(capability_name).collect();
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

/// A capability as its name (RFC 3501 §7.2.1), upper-cased: `IMAP4REV1`,
/// `AUTH=PLAIN`, `IDLE`, matched on the enum async-imap gives.
fn capability_name(c: &async_imap::types::Capability) -> String {
    use async_imap::types::Capability;
    match c {
        Capability::Imap4rev1 => "IMAP4REV1".to_string(),
        Capability::Auth(m) => format!("AUTH={}", m.to_ascii_uppercase()),
        Capability::Atom(a) => a.to_ascii_uppercase(),
    }
}

async fn read_greeting(c: &mut async_imap::Client<Conn>, a: &Account) -> Result<(), ImapError> {
    // A server that waits for a TLS ClientHello sends no greeting: after
    // a short wait, find out whether the port speaks TLS from the first
    // byte (IMAPS) instead of waiting the full timeout.
    let first_wait = if a.imap.tls == TlsMode::Implicit {
        connect_timeout()
    } else {
        connect_timeout().min(Duration::from_secs(3))
    };
    let greeting = match tokio::time::timeout(first_wait, c.read_response()).await {
        Ok(r) => r,
        Err(_) if a.imap.tls != TlsMode::Implicit => {
            if speaks_tls(&a.imap.host, a.imap.port).await {
                return Err(err(
                    ErrorKind::Connect,
                    format!(
                        "{} expects TLS from the first byte (an IMAPS port) and sends no plain-text greeting: set tls = \"implicit\" for this port, or use the STARTTLS port (usually 143)",
                        a.imap
                    ),
                ));
            }
            match tokio::time::timeout(connect_timeout() - first_wait, c.read_response()).await {
                Ok(r) => r,
                Err(_) => {
                    return Err(err(
                        ErrorKind::Lost,
                        format!(
                            "{} sent no greeting within {} s (is this the IMAP port?)",
                            a.imap,
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
                    "{} sent no greeting within {} s (is this the IMAP port?)",
                    a.imap,
                    connect_timeout().as_secs()
                ),
            ))
        }
    };
    match greeting {
        Ok(Some(_)) => Ok(()),
        Ok(None) => Err(err(
            ErrorKind::Lost,
            format!("{} closed the connection before greeting", a.imap),
        )),
        Err(e) => Err(err(
            ErrorKind::Protocol,
            not_imap(&a.imap.host, a.imap.port, &e.to_string()),
        )),
    }
}

/// Does `host:port` complete a TLS handshake? A probe on a connection of
/// its own (no certificate check: nothing is sent over it), at most 5 s.
pub(crate) async fn speaks_tls(host: &str, port: u16) -> bool {
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

/// A search key's string (a Message-ID, say) as an IMAP quoted string
/// (RFC 3501 section 4.3); `None` for one that cannot be sent as one (a
/// control character, or anything but ASCII, which would need a CHARSET).
pub fn quoted(s: &str) -> Option<String> {
    (s.is_ascii() && !s.chars().any(|c| c.is_ascii_control())).then(|| quote_mailbox(s))
}

/// A mailbox name as an IMAP quoted string (RFC 3501 section 4.3).
fn quote_mailbox(name: &str) -> String {
    format!("\"{}\"", name.replace('\\', "\\\\").replace('"', "\\\""))
}

/// A mailbox name as LIST reported it: imap-proto 0.17 hands over a
/// quoted string's content with its escapes (`Quo\"te`), so `\\` and
/// `\"` are taken back to `\` and `"` (RFC 3501 section 4.3).
fn unescape_listed(name: &str) -> std::borrow::Cow<'_, str> {
    if !name.contains('\\') {
        return name.into();
    }
    let mut out = String::with_capacity(name.len());
    let mut chars = name.chars();
    while let Some(c) = chars.next() {
        match (c, chars.clone().next()) {
            ('\\', Some(n @ ('\\' | '"'))) => {
                out.push(n);
                chars.next();
            }
            _ => out.push(c),
        }
    }
    out.into()
}

/// A mailbox name for a message or a log line: control characters (which
/// a name built from mail may hold) escaped as `\r`, `\n`, `\u{7}`, so that
/// one line stays one line (no log injection).
pub fn shown(mailbox: &str) -> String {
    mailbox
        .chars()
        .map(|c| {
            if c.is_control() {
                c.escape_default().to_string()
            } else {
                c.to_string()
            }
        })
        .collect()
}

/// The name to send for a mailbox (a resolved name, UTF-8): modified
/// UTF-7 (RFC 3501 section 5.1.3), which async-imap then quotes. A name
/// with a control character (a line break from a message's header, say)
/// cannot be sent as a quoted string and names no sensible mailbox: it is
/// refused here as the server would refuse it ([`ErrorKind::No`]), so that
/// the caller treats it as a refusal for that one name.
fn wire_name(mailbox: &str, what: &str) -> Result<String, ImapError> {
    if mailbox.chars().any(char::is_control) {
        return Err(err(
            ErrorKind::No,
            format!(
                "cannot {what}: the name contains a line break or control character, which no mailbox name may"
            ),
        ));
    }
    Ok(names::encode(mailbox))
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

/// Does a NO's text carry an RFC 5530 response code for a refusal that
/// may pass (section 3): `UNAVAILABLE` (the authentication backend or
/// another subsystem is down), `INUSE` (a mailbox locked by another
/// session), `LIMIT` (too many connections, say), `SERVERBUG`. Other codes
/// (`AUTHENTICATIONFAILED`, `AUTHORIZATIONFAILED`, `EXPIRED`,
/// `CONTACTADMIN`, `PRIVACYREQUIRED`) and none at all are taken at their
/// word: retrying the same password cannot help.
pub fn temporary_refusal(text: &str) -> bool {
    let Some(code) = text
        .trim_start()
        .strip_prefix('[')
        .and_then(|r| r.split([']', ' ']).next())
    else {
        return false;
    };
    ["UNAVAILABLE", "INUSE", "LIMIT", "SERVERBUG"]
        .iter()
        .any(|c| c.eq_ignore_ascii_case(code))
}

/// How far [`Imap::take_back_copies`] got.
enum TakeBack {
    /// The copies are gone and the originals carry no `\Deleted` of ours.
    Done,
    /// The copies could not be expunged: each message is in both
    /// mailboxes, and neither carries a `\Deleted` of ours.
    BothUnflagged,
}

/// Is this the server's `NO [EXPUNGEISSUED]` (RFC 5530 section 3): some of
/// the messages the command named were expunged by another session (a
/// second `watch` or `clean`, a mail client) since this one last heard? The
/// server has told this session about the expunges with the refusal, so
/// the same command sent again acts on the messages that remain.
pub fn expunge_issued(e: &ImapError) -> bool {
    e.kind == ErrorKind::No && e.message.to_ascii_uppercase().contains("[EXPUNGEISSUED]")
}

/// A move's refused second half that could not be undone, as one sentence.
fn unfinished(e: ImapError, dest: &str) -> ImapError {
    err(
        ErrorKind::Unfinished,
        format!(
            "{}; the messages were already copied to \"{}\" and are in both mailboxes until the next run finishes the move (it will not copy them again)",
            e.message,
            shown(dest)
        ),
    )
}

/// Send one command and read its responses up to the tagged one, handing
/// each untagged response to `each`; a tagged NO or BAD becomes
/// async-imap's error (worded by [`map_err`], the server's text quoted).
/// async-imap 0.12's streaming commands (SEARCH, STORE, EXPUNGE, LIST)
/// stop at the tagged reply without looking at it, so a refusal read as
/// an empty success: every such command goes through here instead.
/// Returns whether an EXISTS (new mail) came along.
async fn run_checked(
    session: &mut async_imap::Session<Conn>,
    command: &str,
    mut each: impl FnMut(&async_imap::imap_proto::Response<'_>),
) -> Result<bool, async_imap::error::Error> {
    use async_imap::error::Error as E;
    use async_imap::imap_proto::{MailboxDatum, Response, Status};
    if command.contains(['\r', '\n']) {
        return Err(E::Bad("a line break in a command".into()));
    }
    let tag = session.run_command(command).await?;
    let mut announced = false;
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
                let text = || {
                    outcome
                        .information
                        .as_deref()
                        .unwrap_or("no reason given")
                        .to_string()
                };
                return match status {
                    Status::Ok => Ok(announced),
                    Status::No => Err(E::No(text())),
                    _ => Err(E::Bad(text())),
                };
            }
            // New mail shows as EXISTS; a RECENT alone also follows
            // expunges (Dovecot), which announce nothing.
            Response::MailboxData(MailboxDatum::Exists(_)) => {
                announced = true;
            }
            other => each(other),
        }
    }
}

/// A mailbox as one LIST line showed it, owned: the name as sent (modified
/// UTF-7, quoting escapes still in), its delimiter and attributes.
struct Listed {
    name: String,
    delimiter: Option<char>,
    special_use: Vec<String>,
    selectable: bool,
}

impl Listed {
    fn from_response(r: &async_imap::imap_proto::Response<'_>) -> Option<Listed> {
        use async_imap::imap_proto::{MailboxDatum, Response};
        let Response::MailboxData(MailboxDatum::List(l)) = r else {
            return None;
        };
        let mut special = Vec::new();
        let mut selectable = true;
        for a in &l.name_attributes {
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
        Some(Listed {
            name: l.name.to_string(),
            delimiter: l.delimiter.as_deref().and_then(|d| d.chars().next()),
            special_use: special,
            selectable,
        })
    }
}

/// An IMAP `date-time` (RFC 3501 section 9: `"dd-Mon-yyyy hh:mm:ss +zzzz"`,
/// the day possibly space-padded), as an INTERNALDATE comes, in Unix
/// seconds; `None` when it is not one.
pub fn parse_date_time(s: &str) -> Option<i64> {
    const M: [&str; 12] = [
        "JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC",
    ];
    let (date, rest) = s.trim().split_once(' ')?;
    let (time, zone) = rest.trim().split_once(' ')?;
    let mut d = date.split('-');
    let day: u8 = d.next()?.trim().parse().ok()?;
    let mon = d.next()?.to_ascii_uppercase();
    let month = M.iter().position(|m| *m == mon)? as u8 + 1;
    let year: u16 = d.next()?.parse().ok()?;
    let mut t = time.split(':').map(|x| x.parse::<u8>().ok());
    let (hour, minute, second) = (t.next()??, t.next()??, t.next()??);
    let zone = zone.trim();
    let (sign, hhmm) = zone.split_at_checked(1)?;
    if !matches!(sign, "+" | "-") || hhmm.len() != 4 || !hhmm.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let dt = mail_parser::DateTime {
        year,
        month,
        day,
        hour,
        minute,
        second,
        tz_before_gmt: sign == "-",
        tz_hour: hhmm[..2].parse().ok()?,
        tz_minute: hhmm[2..].parse().ok()?,
    };
    dt.is_valid().then(|| dt.to_timestamp())
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
        Ok(self
            .list_raw("list mailboxes", "\"\" \"*\"")
            .await?
            .into_iter()
            .map(|l| MailboxInfo {
                name: names::decode_lossless(&unescape_listed(&l.name)),
                special_use: l.special_use,
                selectable: l.selectable,
            })
            .collect())
    }

    /// `LIST args`, every line read; a NO or BAD is an error.
    async fn list_raw(&mut self, what: &str, args: &str) -> Result<Vec<Listed>, ImapError> {
        let mut out = Vec::new();
        let announced = timed(
            what,
            run_checked(&mut self.session, &format!("LIST {args}"), |r| {
                out.extend(Listed::from_response(r))
            }),
        )
        .await?;
        self.announced |= announced;
        Ok(out)
    }

    /// SELECT (read-write) a mailbox.
    pub async fn select(&mut self, mailbox: &str) -> Result<Selected, ImapError> {
        self.select_with(mailbox, false).await
    }

    /// SELECT, with the CONDSTORE parameter (RFC 7162 section 3.1.8) when
    /// `condstore`, so that the answer carries HIGHESTMODSEQ.
    async fn select_with(&mut self, mailbox: &str, condstore: bool) -> Result<Selected, ImapError> {
        let what = format!("open mailbox \"{}\"", shown(mailbox));
        let wire = wire_name(mailbox, &what)?;
        let m = if condstore {
            timed(&what, self.session.select_condstore(wire)).await?
        } else {
            timed(&what, self.session.select(wire)).await?
        };
        self.selected = Some((mailbox.to_string(), false, m.uid_validity.unwrap_or(0)));
        Ok(Selected {
            exists: m.exists,
            uid_validity: m.uid_validity.unwrap_or(0),
            uid_next: m.uid_next.unwrap_or(0),
            highest_modseq: m.highest_modseq,
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
        self.named(mailbox, r).await
    }

    /// [`Imap::open_named`] read-write, with `SELECT mailbox (CONDSTORE)`
    /// where the server advertises CONDSTORE (RFC 7162), so that
    /// [`Selected::highest_modseq`] is known; a plain SELECT elsewhere.
    pub async fn open_named_condstore(&mut self, mailbox: &str) -> Result<Selected, ImapError> {
        let condstore = self.has("CONDSTORE");
        let r = self.select_with(mailbox, condstore).await;
        self.named(mailbox, r).await
    }

    /// A mailbox the server refused to open and LIST does not show is
    /// [`ErrorKind::Missing`].
    async fn named(
        &mut self,
        mailbox: &str,
        r: Result<Selected, ImapError>,
    ) -> Result<Selected, ImapError> {
        match r {
            Err(e) if e.kind == ErrorKind::No && !self.mailbox_exists(mailbox).await? => Err(err(
                ErrorKind::Missing,
                format!(
                    "mailbox \"{}\" does not exist on account \"{}\" (check the name with `backscatter account check`)",
                    shown(mailbox),
                    self.account
                ),
            )),
            r => r,
        }
    }

    /// EXAMINE (read-only) a mailbox.
    pub async fn examine(&mut self, mailbox: &str) -> Result<Selected, ImapError> {
        let what = format!("open mailbox \"{}\"", shown(mailbox));
        let m = timed(&what, self.session.examine(wire_name(mailbox, &what)?)).await?;
        self.selected = Some((mailbox.to_string(), true, m.uid_validity.unwrap_or(0)));
        Ok(Selected {
            exists: m.exists,
            uid_validity: m.uid_validity.unwrap_or(0),
            uid_next: m.uid_next.unwrap_or(0),
            highest_modseq: m.highest_modseq,
        })
    }

    /// Make sure a mailbox (a resolved name, UTF-8) exists, decided by the
    /// protocol rather than by the wording of a reply: INBOX always exists
    /// and is never created (UW imapd refuses to); a mailbox LIST shows is
    /// there; otherwise CREATE, and a NO to CREATE still counts as success
    /// when a LIST after it shows the mailbox (Courier answers `NO Cannot
    /// create this folder.` for one that exists, others race us), and so
    /// does a NO with the response code `[ALREADYEXISTS]` (RFC 5530
    /// section 3).
    pub async fn ensure_mailbox(&mut self, mailbox: &str) -> Result<(), ImapError> {
        if names::is_inbox(mailbox) || self.mailbox_exists(mailbox).await? {
            return Ok(());
        }
        let what = format!("create mailbox \"{}\"", shown(mailbox));
        let wire = wire_name(mailbox, &what)?;
        match timed(&what, self.session.create(wire)).await {
            Ok(()) => Ok(()),
            Err(e) if e.kind == ErrorKind::No => {
                if e.message.to_ascii_uppercase().contains("[ALREADYEXISTS]")
                    || self.mailbox_exists(mailbox).await?
                {
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
        let what = format!("look up mailbox \"{}\"", shown(mailbox));
        let wire = wire_name(mailbox, &what)?;
        // LIST's pattern is quoted (a name with a space is otherwise a BAD
        // command).
        let found = self
            .list_raw(&what, &format!("\"\" {}", quote_mailbox(&wire)))
            .await?;
        Ok(found
            .iter()
            .any(|n| unescape_listed(&n.name) == wire && n.selectable))
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
        let root = self
            .list_raw("read the hierarchy delimiter", "\"\" \"\"")
            .await?;
        let delimiter = root.first().and_then(|n| n.delimiter);
        // No NAMESPACE: learn the prefix from the folders themselves
        // (names::guess_namespace).
        let top: Vec<String> = self
            .list_raw("list the top-level mailboxes", "\"\" \"%\"")
            .await?
            .into_iter()
            .filter(|n| n.selectable)
            .map(|n| n.name)
            .collect();
        let inbox_children = match delimiter {
            Some(d) if !top.is_empty() && top.iter().all(|n| names::is_inbox(n)) => {
                let pattern = quote_mailbox(&format!("INBOX{d}%"));
                !self
                    .list_raw("list INBOX's children", &format!("\"\" {pattern}"))
                    .await?
                    .is_empty()
            }
            _ => false,
        };
        Ok(names::guess_namespace(delimiter, &top, inbox_children))
    }

    /// UID SEARCH, sorted ascending. A NO or BAD (a server that cannot
    /// search now, a query it does not take) is an error, never an empty
    /// result.
    pub async fn uid_search(&mut self, query: &str) -> Result<Vec<u32>, ImapError> {
        use async_imap::imap_proto::{MailboxDatum, Response};
        let mut v: Vec<u32> = Vec::new();
        let announced = timed(
            "search the mailbox",
            run_checked(&mut self.session, &format!("UID SEARCH {query}"), |r| {
                if let Response::MailboxData(MailboxDatum::Search(ids)) = r {
                    v.extend(ids);
                }
            }),
        )
        .await?;
        self.announced |= announced;
        v.sort_unstable();
        v.dedup();
        Ok(v)
    }

    /// UID FETCH (RFC 3501 section 6.4.8) of `items` for these UIDs of the
    /// selected mailbox, every response read up to the tagged one. A NO or
    /// BAD is an error quoting the server ([`ErrorKind::No`]), never "no
    /// messages": async-imap 0.12's `uid_fetch` stream ends at the tagged
    /// reply without looking at it, so the command goes through
    /// [`run_checked`] instead. UIDs the server does not answer for
    /// (expunged) are absent.
    pub async fn uid_fetch(
        &mut self,
        uids: &[u32],
        items: &str,
    ) -> Result<Vec<Fetched>, ImapError> {
        use async_imap::imap_proto::Response;
        if uids.is_empty() {
            return Ok(Vec::new());
        }
        let set = uid_set(uids);
        let mut out = Vec::new();
        let announced = timed(
            "fetch messages",
            run_checked(
                &mut self.session,
                &format!("UID FETCH {set} {items}"),
                |r| {
                    if let Response::Fetch(_, attrs) = r {
                        out.push(Fetched::from_attrs(attrs));
                    }
                },
            ),
        )
        .await?;
        self.announced |= announced;
        Ok(out)
    }

    /// [`Imap::uid_fetch`], with a reply that cannot be parsed contained
    /// to the messages concerned: async-imap drops a whole FETCH reply
    /// when one message's part of it is not valid IMAP, and the
    /// connection with it. Then the session is replaced
    /// ([`Imap::reconnect`]) and each half of the set fetched again, down
    /// to single messages. Returns what was fetched and the UIDs whose
    /// reply could not be read, with the error. At most
    /// [`MAX_RECONNECTS`] new connections per call; past that the error
    /// is returned (a server that garbles everything).
    pub async fn uid_fetch_contained(
        &mut self,
        uids: &[u32],
        items: &str,
    ) -> Result<(Vec<Fetched>, Vec<(u32, ImapError)>), ImapError> {
        let mut fetched = Vec::new();
        let mut unreadable = Vec::new();
        let mut todo: Vec<&[u32]> = vec![uids];
        let mut reconnects = 0;
        while let Some(set) = todo.pop() {
            match self.uid_fetch(set, items).await {
                Ok(f) => fetched.extend(f),
                Err(e) if e.kind == ErrorKind::Unparsable && reconnects < MAX_RECONNECTS => {
                    reconnects += 1;
                    self.reconnect().await?;
                    if let [uid] = set {
                        tracing::warn!(
                            account = %self.account,
                            uid,
                            "{e}; the message is left where it is"
                        );
                        unreadable.push((*uid, e));
                    } else {
                        let (a, b) = set.split_at(set.len() / 2);
                        todo.push(b);
                        todo.push(a);
                    }
                }
                Err(e) => return Err(e),
            }
        }
        Ok((fetched, unreadable))
    }

    /// Replace the session with a new one to the same server, logged in
    /// as before, with the same mailbox selected (or examined): after a
    /// reply that could not be parsed, async-imap reads nothing more from
    /// the old connection. Fails when the login fails, or when the
    /// mailbox's UIDVALIDITY changed in between (the UIDs in hand would
    /// name other messages).
    pub async fn reconnect(&mut self) -> Result<(), ImapError> {
        let Some(origin) = self.origin.clone() else {
            return Err(err(
                ErrorKind::Lost,
                "the connection became unusable and cannot be re-opened",
            ));
        };
        let (a, secret) = &*origin;
        let mut fresh = Box::pin(connect(a, secret)).await?;
        if let Some((mailbox, read_only, validity)) = self.selected.clone() {
            let sel = if read_only {
                fresh.examine(&mailbox).await?
            } else {
                fresh.select(&mailbox).await?
            };
            if sel.uid_validity != validity {
                return Err(err(
                    ErrorKind::Protocol,
                    format!("mailbox \"{mailbox}\" was renumbered (UIDVALIDITY changed) while re-connecting: run again"),
                ));
            }
        }
        fresh.structure_unreadable = self.structure_unreadable;
        *self = fresh;
        Ok(())
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
                ErrorKind::Unsupported,
                "the server has neither MOVE nor UIDPLUS: backscatter cannot move messages safely there, and neither sweeps nor restores on it",
            ))
        }
    }

    pub(crate) fn uses_move(&self) -> bool {
        self.has("MOVE")
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
        let what = format!("move messages to \"{}\"", shown(dest));
        let wire = wire_name(dest, &what)?;
        let verb = if self.uses_move() { "MOVE" } else { "COPY" };
        let mapping = timed(
            &what,
            run_reading_copyuid(
                &mut self.session,
                format!("UID {verb} {set} {}", quote_mailbox(&wire)),
                uids.len(),
            ),
        )
        .await?;
        if verb == "COPY" {
            if let Err(e) = self.finish_copy(uids, dest, mapping.as_ref()).await {
                self.drain_unsolicited();
                return Err(e);
            }
        }
        self.drain_unsolicited();
        Ok(mapping)
    }

    /// The second half of a move by COPY: `\Deleted` on exactly the copied
    /// UIDs, then UID EXPUNGE of exactly them. When the server refuses
    /// either step (an ACL without the expunge right, a transient NO), the
    /// copies are taken back out of `dest` (found by the COPYUID mapping,
    /// in a `dest` of the same UIDVALIDITY) and the `\Deleted` flag off
    /// the originals, so that every message is in exactly one place: the
    /// error is then the refusal ([`ErrorKind::No`]). Where the copies
    /// cannot be taken back, the error is [`ErrorKind::Unfinished`]: the
    /// journal's batch stays open and the next run finishes the move
    /// (reconciliation finds each message in both mailboxes and expunges
    /// the original). Either way, a `\Deleted` flag this move set is
    /// taken off again wherever a message stays (copy and original), so
    /// that no client's EXPUNGE can remove the only copy meanwhile; a
    /// `\Deleted` the user had set before (found by UID SEARCH DELETED
    /// first) is left as it was. Where even that is refused, the next
    /// run's reconciliation takes the flag off before anything else.
    async fn finish_copy(
        &mut self,
        uids: &[u32],
        dest: &str,
        mapping: Option<&CopyUid>,
    ) -> Result<(), ImapError> {
        let set = uid_set(uids);
        // The user's own \Deleted (RFC 3501 section 6.4.4): not ours to take off.
        let users: HashSet<u32> = match self.uid_search(&format!("UID {set} DELETED")).await {
            Ok(found) => found.into_iter().collect(),
            Err(e) if e.kind == ErrorKind::No => {
                return self
                    .undo_copy(e, uids, dest, mapping, false, &HashSet::new())
                    .await
            }
            Err(e) => return Err(unfinished(e, dest)),
        };
        let flagged = self
            .checked(
                "mark moved messages \\Deleted",
                &format!("UID STORE {set} +FLAGS.SILENT (\\Deleted)"),
            )
            .await;
        match flagged {
            Ok(()) => match self
                .checked("expunge moved messages", &format!("UID EXPUNGE {set}"))
                .await
            {
                Ok(()) => Ok(()),
                Err(e) if e.kind == ErrorKind::No => {
                    self.undo_copy(e, uids, dest, mapping, true, &users).await
                }
                Err(e) => Err(unfinished(e, dest)),
            },
            Err(e) if e.kind == ErrorKind::No => {
                self.undo_copy(e, uids, dest, mapping, false, &users).await
            }
            Err(e) => Err(unfinished(e, dest)),
        }
    }

    /// After the refusal `e` of a COPY's second half: take the copies
    /// back ([`Imap::take_back_copies`]) and say in one sentence where the
    /// messages now are.
    async fn undo_copy(
        &mut self,
        e: ImapError,
        uids: &[u32],
        dest: &str,
        mapping: Option<&CopyUid>,
        flag_set: bool,
        users: &HashSet<u32>,
    ) -> Result<(), ImapError> {
        if expunge_issued(&e) {
            // Another session expunged some originals (finished the move
            // itself, or moved them elsewhere): their copies are the only
            // ones left, so none is taken back. The `\Deleted` this move
            // set comes off the originals still there; the batch stays
            // open, and reconciliation finishes it (in both mailboxes: the
            // original goes; in the destination only: moved).
            let ours: Vec<u32> = uids
                .iter()
                .copied()
                .filter(|u| !users.contains(u))
                .collect();
            if flag_set && !ours.is_empty() {
                let _ = self
                    .checked(
                        "take back the \\Deleted flag",
                        &format!("UID STORE {} -FLAGS.SILENT (\\Deleted)", uid_set(&ours)),
                    )
                    .await;
            }
            return Err(unfinished(e, dest));
        }
        let outcome = self
            .take_back_copies(uids, dest, mapping, flag_set, users)
            .await;
        let (kind, tail) = match outcome {
            Ok(TakeBack::Done) => (
                ErrorKind::No,
                format!(
                    "the copies in \"{}\" were taken back, so these messages stay where they were",
                    shown(dest)
                ),
            ),
            Ok(TakeBack::BothUnflagged) => (
                ErrorKind::Unfinished,
                format!(
                    "the messages were already copied to \"{}\" and are in both mailboxes, none of them marked \\Deleted by backscatter, until the next run finishes the move (it will not copy them again)",
                    shown(dest)
                ),
            ),
            Err(_) => (
                ErrorKind::Unfinished,
                format!(
                    "the messages were already copied to \"{}\" and are in both mailboxes, some still marked \\Deleted (do not expunge either mailbox) until the next run takes that flag off and finishes the move",
                    shown(dest)
                ),
            ),
        };
        Err(err(kind, format!("{}; {tail}", e.message)))
    }

    /// Undo a COPY whose originals could not be expunged: expunge the
    /// copies (exactly the UIDs COPYUID named, in `dest` of that
    /// UIDVALIDITY); where that is refused, take off the `\Deleted` the
    /// take-back put on them. Then take `\Deleted` back off the originals
    /// (`flag_set`) and select the source again. `users`: source UIDs
    /// whose `\Deleted` the user had set before the move (left alone, on
    /// the original and on its copy). An error means some flag this
    /// move set may still be on.
    async fn take_back_copies(
        &mut self,
        uids: &[u32],
        dest: &str,
        mapping: Option<&CopyUid>,
        flag_set: bool,
        users: &HashSet<u32>,
    ) -> Result<TakeBack, ImapError> {
        let Some((source, read_only, validity)) = self.selected.clone() else {
            return Err(err(ErrorKind::No, "no mailbox is selected"));
        };
        let ours: Vec<u32> = uids
            .iter()
            .copied()
            .filter(|u| !users.contains(u))
            .collect();
        let mut outcome = TakeBack::BothUnflagged;
        // A copy is taken back only while its original is still there: an
        // original another session expunged in between (a concurrent
        // `watch` or `clean` finishing the move) leaves its copy the only
        // one.
        let present = self.uid_search(&format!("UID {}", uid_set(uids))).await?;
        let all_present = uids.iter().all(|u| present.contains(u));
        let usable = mapping.filter(|m| !read_only && all_present && m.pairs.len() == uids.len());
        if let Some(m) = usable {
            let copies: Vec<u32> = m.pairs.iter().map(|(_, d)| *d).collect();
            let our_copies: Vec<u32> = m
                .pairs
                .iter()
                .filter(|(s, _)| !users.contains(s))
                .map(|(_, d)| *d)
                .collect();
            let copies = uid_set(&copies);
            let sel = self.select(dest).await?;
            if sel.uid_validity == m.uidvalidity {
                let marked = self
                    .checked(
                        "take back copies",
                        &format!("UID STORE {copies} +FLAGS.SILENT (\\Deleted)"),
                    )
                    .await;
                let flagged = marked.is_ok();
                let expunged = match marked {
                    Ok(()) => {
                        self.checked("take back copies", &format!("UID EXPUNGE {copies}"))
                            .await
                    }
                    Err(e) => Err(e),
                };
                match expunged {
                    Ok(()) => outcome = TakeBack::Done,
                    Err(e) if e.kind == ErrorKind::No => {
                        // Only a flag this take-back set comes off (a
                        // refused STORE set none).
                        if flagged && !our_copies.is_empty() {
                            self.checked(
                                "take the \\Deleted flag off the copies",
                                &format!(
                                    "UID STORE {} -FLAGS.SILENT (\\Deleted)",
                                    uid_set(&our_copies)
                                ),
                            )
                            .await?;
                        }
                    }
                    Err(e) => return Err(e),
                }
            }
            let back = self.select(&source).await?;
            if back.uid_validity != validity {
                return Err(err(ErrorKind::No, "the source was renumbered"));
            }
        }
        if flag_set && !ours.is_empty() {
            self.checked(
                "take back the \\Deleted flag",
                &format!("UID STORE {} -FLAGS.SILENT (\\Deleted)", uid_set(&ours)),
            )
            .await?;
        }
        Ok(outcome)
    }

    /// `STATUS mailbox (UIDVALIDITY UIDNEXT)` (RFC 3501 section 6.3.10) of a
    /// mailbox (a resolved name, UTF-8) other than the selected one:
    /// (UIDVALIDITY, UIDNEXT), 0 for an item the server left out. An error
    /// quotes the server when it refuses (a mailbox that does not exist).
    pub async fn status_next(&mut self, mailbox: &str) -> Result<(u32, u32), ImapError> {
        let mut p = pipeline::Pipeline::new();
        let tag = p.status(self, mailbox).await?;
        p.wait(self, &tag).await??;
        Ok(p.statuses
            .get(&pipeline::Pipeline::status_key(mailbox))
            .copied()
            .unwrap_or((0, 0)))
    }

    /// SELECT a mailbox and also say whether it keeps keywords the client
    /// invents: PERMANENTFLAGS lists `\*` (RFC 3501 section 7.1).
    pub async fn select_keywords(
        &mut self,
        mailbox: &str,
        keyword: &str,
    ) -> Result<(Selected, bool), ImapError> {
        let what = format!("open mailbox \"{}\"", shown(mailbox));
        let m = timed(&what, self.session.select(wire_name(mailbox, &what)?)).await?;
        // What a COPY's take-back selects again (`take_back_copies`).
        self.selected = Some((mailbox.to_string(), false, m.uid_validity.unwrap_or(0)));
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
                highest_modseq: m.highest_modseq,
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
        self.checked(
            "set a keyword",
            &format!("UID STORE {set} +FLAGS.SILENT ({keyword})"),
        )
        .await
    }

    /// UID COPY (RFC 3501 §6.4.7): a copy of each message into `dest`.
    pub async fn uid_copy(&mut self, uids: &[u32], dest: &str) -> Result<(), ImapError> {
        if uids.is_empty() {
            return Ok(());
        }
        let set = uid_set(uids);
        let what = format!("copy messages to \"{}\"", shown(dest));
        let wire = wire_name(dest, &what)?;
        timed(&what, self.session.uid_copy(&set, wire)).await?;
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
        self.checked("set flags", &format!("UID STORE {set} {query}"))
            .await
    }

    /// Mark exactly these UIDs `\Deleted` and expunge exactly them
    /// (UIDPLUS). Used after a COPY, never on its own. A refusal of
    /// either step is an error ([`ErrorKind::No`]) naming the step; after
    /// a refused EXPUNGE the `\Deleted` this call set is taken off again
    /// (a `\Deleted` the user had set before stays), so that the
    /// messages are not left for some client's EXPUNGE to remove.
    pub async fn uid_delete(&mut self, uids: &[u32]) -> Result<(), ImapError> {
        let set = uid_set(uids);
        let users: HashSet<u32> = self
            .uid_search(&format!("UID {set} DELETED"))
            .await?
            .into_iter()
            .collect();
        self.checked(
            "mark moved messages \\Deleted",
            &format!("UID STORE {set} +FLAGS.SILENT (\\Deleted)"),
        )
        .await?;
        match self
            .checked("expunge moved messages", &format!("UID EXPUNGE {set}"))
            .await
        {
            Err(e) if e.kind == ErrorKind::No => {
                let ours: Vec<u32> = uids
                    .iter()
                    .copied()
                    .filter(|u| !users.contains(u))
                    .collect();
                self.uid_undelete(&ours).await?;
                Err(e)
            }
            other => other,
        }
    }

    /// UID STORE `-FLAGS.SILENT (\Deleted)` on exactly these UIDs of the
    /// selected mailbox (RFC 3501 section 6.4.6): the flag a move by COPY
    /// set, taken off a message that stays.
    pub async fn uid_undelete(&mut self, uids: &[u32]) -> Result<(), ImapError> {
        if uids.is_empty() {
            return Ok(());
        }
        self.checked(
            "take the \\Deleted flag off",
            &format!("UID STORE {} -FLAGS.SILENT (\\Deleted)", uid_set(uids)),
        )
        .await
    }

    /// Run a command whose answer carries nothing we need, checking that
    /// the server completed it ([`run_checked`]).
    async fn checked(&mut self, what: &str, command: &str) -> Result<(), ImapError> {
        let announced = timed(what, run_checked(&mut self.session, command, |_| {})).await?;
        self.announced |= announced;
        self.drain_unsolicited();
        Ok(())
    }

    /// Forget pushed responses (they are re-checked with searches, never
    /// trusted; async-imap drops them past 100 anyway).
    fn drain_unsolicited(&mut self) {
        while self.session.unsolicited_responses.try_recv().is_ok() {}
    }

    /// Did a reply to an earlier command announce new messages (an EXISTS
    /// or RECENT that async-imap filed among the unsolicited responses, or
    /// that came with a command this layer read itself: SEARCH, FETCH,
    /// STORE, EXPUNGE, LIST)? Forgets the rest of them. Ask before IDLE: a
    /// server does not repeat such news once IDLE starts.
    pub fn take_announced(&mut self) -> bool {
        let pushed = new_mail_announced(&self.session.unsolicited_responses);
        std::mem::take(&mut self.announced) || pushed
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
    #[test]
    fn internaldates_parse() {
        // RFC 3501 section 9 examples of date-time, with zones.
        assert_eq!(
            super::parse_date_time("17-Jul-1996 02:44:25 -0700"),
            Some(837_596_665)
        );
        assert_eq!(
            super::parse_date_time(" 1-Jan-2024 00:00:00 +0000"),
            Some(1_704_067_200)
        );
        assert_eq!(
            super::parse_date_time("01-Jan-2024 01:30:00 +0130"),
            Some(1_704_067_200)
        );
        assert_eq!(super::parse_date_time("30-Nov"), None);
        assert_eq!(super::parse_date_time("32-Jan-2024 00:00:00 +0000"), None);
        assert_eq!(super::parse_date_time("1-Jan-2024 00:00:00 0000"), None);
    }

    use super::*;

    #[test]
    fn listed_names_lose_their_quoting_escapes() {
        assert_eq!(unescape_listed(r#"Quo\"te"#), r#"Quo"te"#);
        assert_eq!(unescape_listed(r"Back\\slash"), r"Back\slash");
        assert_eq!(unescape_listed("Sent Items"), "Sent Items");
        assert_eq!(unescape_listed(r"a\b"), r"a\b");
        // What we quote, LIST gives back (escaped) and we read as sent.
        for name in [
            r#"Quo"te"#,
            r"Back\slash",
            "[Gmail]/Sent Mail",
            "Auto&-Replies",
        ] {
            let q = quote_mailbox(name);
            assert_eq!(unescape_listed(&q[1..q.len() - 1]), name);
        }
    }

    #[test]
    fn names_with_control_characters_are_refused_and_shown_escaped() {
        let e = wire_name("Lists/a\r\nb", "create mailbox").unwrap_err();
        assert_eq!(e.kind, ErrorKind::No);
        assert!(wire_name("Lists/\u{7}", "x").is_err());
        assert_eq!(wire_name("Kopie-Ü", "x").unwrap(), "Kopie-&ANw-");
        assert_eq!(wire_name("Auto&Replies", "x").unwrap(), "Auto&-Replies");
        assert_eq!(shown("a\r\n* OK b\tc"), "a\\r\\n* OK b\\tc");
    }

    #[test]
    fn temporary_refusals_by_rfc_5530_code() {
        assert!(temporary_refusal(
            "[UNAVAILABLE] Temporary authentication failure."
        ));
        assert!(temporary_refusal("[INUSE] Mailbox is locked"));
        assert!(temporary_refusal("[LIMIT] Too many connections"));
        assert!(!temporary_refusal(
            "[AUTHENTICATIONFAILED] Authentication failed."
        ));
        assert!(!temporary_refusal("Temporary failure, [UNAVAILABLE] later"));
        assert!(!temporary_refusal("no reason given"));
    }

    #[test]
    fn uid_sets_use_ranges() {
        assert_eq!(uid_set(&[5, 1, 2, 3, 9, 12, 13, 14, 3]), "1:3,5,9,12:14");
        assert_eq!(uid_set(&[7]), "7");
    }

    #[test]
    fn internal_dates_read_as_unix_seconds() {
        assert_eq!(
            parse_date_time("30-Nov-2026 09:52:20 +0000"),
            Some(1_796_032_340)
        );
        assert_eq!(
            parse_date_time(" 1-Jan-2026 01:00:00 +0100"),
            Some(1_767_225_600)
        );
        assert_eq!(
            parse_date_time("1-jan-2026 00:00:00 -0130"),
            Some(1_767_231_000)
        );
        assert_eq!(parse_date_time("31-Foo-2026 00:00:00 +0000"), None);
        assert_eq!(parse_date_time("1-Jan-2026 00:00 +0000"), None);
        assert_eq!(parse_date_time("1-Jan-2026 00:00:00 0000"), None);
        assert_eq!(parse_date_time(""), None);
    }

    #[test]
    fn imap_dates() {
        assert_eq!(imap_date(1_767_225_600), "1-Jan-2026");
    }

    #[test]
    fn server_words_are_quoted_once() {
        assert_eq!(
            server_text(
                r#"code: None, info: Some("[AUTHENTICATIONFAILED] Authentication failed.")"#
            ),
            "[AUTHENTICATIONFAILED] Authentication failed."
        );
        assert_eq!(
            server_text(
                r#"outcome: Outcome { code: Some(TryCreate), information: Some("Mailbox \"a (b)\") doesn't exist") }"#
            ),
            r#"Mailbox "a (b)") doesn't exist"#
        );
        assert_eq!(
            server_text(r#"code: None, info: Some("Caf\u{e9} \\ x\u{1b}y")"#),
            "Caf\u{e9} \\ x y"
        );
        assert_eq!(server_text("code: None, info: None"), "no reason given");
        assert_eq!(server_text(" plain words "), "plain words");
    }

    #[test]
    fn io_errors_read_as_words() {
        let e = |m: &str| io_text(&std::io::Error::other(m.to_string()));
        // async-imap's forms (imap_stream.rs, parse.rs).
        let buf = "* 21 FETCH ((UID 21 INTERNALDATE \"30-Nov\")\r\nA5 OK done\r\n";
        assert_eq!(
            e(&format!("Error(Error {{ input: [40], code: Tag }}) during parsing of {buf:?}")),
            "the server sent a response that is not IMAP (* 21 FETCH ((UID 21 INTERNALDATE \"30-Nov\"))"
        );
        assert_eq!(
            e(
                r#"status: Bye, outcome: Outcome { code: None, information: Some("Server shutting down") }"#
            ),
            "the server ended the session (BYE Server shutting down)"
        );
        assert_eq!(
            e(r#"status: PreAuth, outcome: Outcome { code: None, information: Some("hi") }"#),
            "the server answered PREAUTH (hi)"
        );
    }

    #[test]
    fn capability_names() {
        use async_imap::types::Capability;
        assert_eq!(capability_name(&Capability::Atom("idle".into())), "IDLE");
        assert_eq!(
            capability_name(&Capability::Auth("Plain".into())),
            "AUTH=PLAIN"
        );
        assert_eq!(capability_name(&Capability::Imap4rev1), "IMAP4REV1");
    }
}
