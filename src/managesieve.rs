//! ManageSieve (RFC 5804): a small client for uploading, checking,
//! activating and removing scripts, and the install policy that keeps the
//! user's own script working (RFC 6609 `include`).
//!
//! The response codec ([`parse_response`]) is pure: bytes in, a complete
//! response (data lines and the final OK/NO/BYE) out, or "need more". The
//! client around it does the I/O, with STARTTLS verified like IMAP and
//! plaintext only to loopback.

use crate::config::{is_loopback, Account, TlsMode};
use crate::imap::Conn;
use crate::secret::Secret;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// One item of a response line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Item {
    /// A quoted string or a literal.
    Str(String),
    Atom(String),
}

/// A complete response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    /// Data lines before the status line.
    pub lines: Vec<Vec<Item>>,
    /// `OK`, `NO` or `BYE`.
    pub status: String,
    /// The status line's items after the status word (code, text).
    pub rest: Vec<Item>,
}

impl Response {
    pub fn ok(&self) -> bool {
        self.status == "OK"
    }

    /// The human text of the status line.
    pub fn text(&self) -> String {
        self.rest
            .iter()
            .filter_map(|i| match i {
                Item::Str(s) => Some(s.clone()),
                Item::Atom(a) if a.starts_with('(') => Some(a.clone()),
                _ => None,
            })
            .collect::<Vec<_>>()
            .join(" ")
    }
}

/// Parse one line's items starting at `pos`; returns the items and the
/// position after the line's CRLF, or `None` if more bytes are needed.
fn parse_line(buf: &[u8], mut pos: usize) -> Result<Option<(Vec<Item>, usize)>, String> {
    let mut items = Vec::new();
    loop {
        while pos < buf.len() && buf[pos] == b' ' {
            pos += 1;
        }
        if pos >= buf.len() {
            return Ok(None);
        }
        match buf[pos] {
            b'\r' | b'\n' => {
                let end = if buf[pos] == b'\r' {
                    if pos + 1 >= buf.len() {
                        return Ok(None);
                    }
                    pos + 2
                } else {
                    pos + 1
                };
                return Ok(Some((items, end)));
            }
            b'"' => {
                let mut s = Vec::new();
                pos += 1;
                loop {
                    if pos >= buf.len() {
                        return Ok(None);
                    }
                    match buf[pos] {
                        b'\\' if pos + 1 < buf.len() => {
                            s.push(buf[pos + 1]);
                            pos += 2;
                        }
                        b'\\' => return Ok(None),
                        b'"' => {
                            pos += 1;
                            break;
                        }
                        c => {
                            s.push(c);
                            pos += 1;
                        }
                    }
                }
                items.push(Item::Str(String::from_utf8_lossy(&s).into_owned()));
            }
            b'{' => {
                let close = match buf[pos..].iter().position(|&c| c == b'}') {
                    Some(c) => pos + c,
                    None => return Ok(None),
                };
                let n: usize = std::str::from_utf8(&buf[pos + 1..close])
                    .ok()
                    .map(|s| s.trim_end_matches('+'))
                    .and_then(|s| s.parse().ok())
                    .ok_or("bad literal length")?;
                if n > 16 * 1024 * 1024 {
                    return Err("literal too large".into());
                }
                let mut p = close + 1;
                if buf.get(p) == Some(&b'\r') {
                    p += 1;
                }
                if p >= buf.len() {
                    return Ok(None);
                }
                if buf[p] != b'\n' {
                    return Err("malformed literal".into());
                }
                p += 1;
                if buf.len() < p + n {
                    return Ok(None);
                }
                items.push(Item::Str(
                    String::from_utf8_lossy(&buf[p..p + n]).into_owned(),
                ));
                pos = p + n;
            }
            b'(' => {
                let close = match buf[pos..].iter().position(|&c| c == b')') {
                    Some(c) => pos + c,
                    None => return Ok(None),
                };
                items.push(Item::Atom(
                    String::from_utf8_lossy(&buf[pos..=close]).into_owned(),
                ));
                pos = close + 1;
            }
            _ => {
                let end = buf[pos..]
                    .iter()
                    .position(|&c| c == b' ' || c == b'\r' || c == b'\n')
                    .map(|e| pos + e);
                let Some(end) = end else { return Ok(None) };
                items.push(Item::Atom(
                    String::from_utf8_lossy(&buf[pos..end]).into_owned(),
                ));
                pos = end;
            }
        }
    }
}

/// Parse a complete response from the start of `buf`. `Ok(None)`: more
/// bytes needed. On success, also returns how many bytes it used.
pub fn parse_response(buf: &[u8]) -> Result<Option<(Response, usize)>, String> {
    let mut pos = 0;
    let mut lines = Vec::new();
    loop {
        let Some((items, next)) = parse_line(buf, pos)? else {
            return Ok(None);
        };
        pos = next;
        if let Some(Item::Atom(a)) = items.first() {
            let up = a.to_ascii_uppercase();
            if up == "OK" || up == "NO" || up == "BYE" {
                return Ok(Some((
                    Response {
                        lines,
                        status: up,
                        rest: items[1..].to_vec(),
                    },
                    pos,
                )));
            }
        }
        lines.push(items);
        if lines.len() > 10_000 {
            return Err("too many response lines".into());
        }
    }
}

/// One step of an AUTHENTICATE exchange: a server challenge (a lone
/// string line, RFC 5804 section 2.1) or the final response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SaslStep {
    Challenge(String),
    Done(Response),
}

/// Parse the next AUTHENTICATE step from the start of `buf`, like
/// [`parse_response`].
pub fn parse_sasl_step(buf: &[u8]) -> Result<Option<(SaslStep, usize)>, String> {
    let Some((items, next)) = parse_line(buf, 0)? else {
        return Ok(None);
    };
    match items.as_slice() {
        [Item::Str(c)] => Ok(Some((SaslStep::Challenge(c.clone()), next))),
        _ => Ok(parse_response(buf)?.map(|(r, n)| (SaslStep::Done(r), n))),
    }
}

/// A ManageSieve quoted string or, when it cannot be one, a literal.
pub fn string_arg(s: &str) -> String {
    if s.len() < 1024 && !s.contains(['"', '\\', '\r', '\n']) {
        format!("\"{s}\"")
    } else {
        format!("{{{}+}}\r\n{s}", s.len())
    }
}

fn invalid(e: String) -> String {
    format!("the ManageSieve server sent an invalid response ({e})")
}

/// A connected, authenticated ManageSieve session.
pub struct Session {
    conn: Conn,
    buf: Vec<u8>,
    /// The server's SIEVE extensions.
    pub extensions: String,
    pub max_redirects: Option<u32>,
}

fn caps_of(r: &Response) -> (String, bool) {
    let mut sieve = String::new();
    let mut starttls = false;
    for l in &r.lines {
        match (l.first(), l.get(1)) {
            (Some(Item::Str(k)), Some(Item::Str(v))) if k.eq_ignore_ascii_case("SIEVE") => {
                sieve = v.clone()
            }
            (Some(Item::Str(k)), _) if k.eq_ignore_ascii_case("STARTTLS") => starttls = true,
            _ => {}
        }
    }
    (sieve, starttls)
}

impl Session {
    /// The next complete response, within one command timeout however
    /// slowly it trickles in.
    async fn read(&mut self) -> Result<Response, String> {
        let whole = async {
            loop {
                if let Some((r, used)) = parse_response(&self.buf).map_err(invalid)? {
                    self.buf.drain(..used);
                    return Ok(r);
                }
                self.fill().await?;
            }
        };
        tokio::time::timeout(crate::imap::command_timeout(), whole)
            .await
            .map_err(|_| "the ManageSieve server did not answer in time".to_string())?
    }

    /// The greeting (capabilities, then OK), or one sentence naming the
    /// likely mistake when another protocol answers on this port: IMAP
    /// greets with `* OK` and then waits, so waiting for ManageSieve's OK
    /// would take the whole command timeout.
    async fn greeting(&mut self, host: &str, port: u16) -> Result<Response, String> {
        let first_line = async {
            while !self.buf.contains(&b'\n') {
                self.fill().await?;
            }
            Ok::<_, String>(())
        };
        tokio::time::timeout(crate::imap::connect_timeout(), first_line)
            .await
            .map_err(|_| format!("ManageSieve {host}:{port} did not answer in time: no greeting (is this the ManageSieve port, usually 4190?)"))??;
        let up = String::from_utf8_lossy(&self.buf[..self.buf.len().min(8)]).to_ascii_uppercase();
        let other =
            if up.starts_with("* OK") || up.starts_with("* PREAUTH") || up.starts_with("* BYE") {
                Some("an IMAP server")
            } else if up.starts_with("220") {
                Some("an SMTP or LMTP server")
            } else if up.starts_with("+OK") {
                Some("a POP3 server")
            } else {
                None
            };
        if let Some(what) = other {
            return Err(format!(
                "{host}:{port} is {what}, not ManageSieve: set port in [accounts.NAME.sieve] to the ManageSieve port (usually 4190)"
            ));
        }
        self.read().await
    }

    /// Read more bytes from the server into the buffer.
    async fn fill(&mut self) -> Result<(), String> {
        let mut chunk = [0u8; 8192];
        let n = self
            .conn
            .read(&mut chunk)
            .await
            .map_err(|e| format!("the ManageSieve connection failed: {e}"))?;
        if n == 0 {
            return Err("the ManageSieve server closed the connection".into());
        }
        if self.buf.len() > 32 * 1024 * 1024 {
            return Err("the ManageSieve server sent too much".into());
        }
        self.buf.extend_from_slice(&chunk[..n]);
        Ok(())
    }

    async fn send(&mut self, bytes: &[u8]) -> Result<(), String> {
        tokio::time::timeout(crate::imap::command_timeout(), self.conn.write_all(bytes))
            .await
            .map_err(|_| "writing to the ManageSieve server timed out".to_string())?
            .map_err(|e| format!("the ManageSieve connection failed: {e}"))
    }

    /// AUTHENTICATE with an initial response; any challenge (the OAuth
    /// mechanisms' error report) is answered with an empty response, after
    /// which the server gives its verdict.
    async fn authenticate(&mut self, mechanism: &str, initial: &[u8]) -> Result<Response, String> {
        let cmd = format!("AUTHENTICATE \"{mechanism}\" \"{}\"\r\n", base64(initial));
        self.send(cmd.as_bytes()).await?;
        let steps = async {
            for _ in 0..4 {
                loop {
                    match parse_sasl_step(&self.buf).map_err(invalid)? {
                        Some((step, used)) => {
                            self.buf.drain(..used);
                            match step {
                                SaslStep::Done(r) => return Ok(r),
                                SaslStep::Challenge(_) => {
                                    self.send(b"\"\"\r\n").await?;
                                    break;
                                }
                            }
                        }
                        None => self.fill().await?,
                    }
                }
            }
            Err("the ManageSieve server kept sending authentication challenges".into())
        };
        tokio::time::timeout(crate::imap::command_timeout(), steps)
            .await
            .map_err(|_| "the ManageSieve server did not answer the login in time".to_string())?
    }

    async fn command(&mut self, cmd: &str) -> Result<Response, String> {
        let mut line = cmd.as_bytes().to_vec();
        line.extend_from_slice(b"\r\n");
        self.send(&line).await?;
        self.read().await
    }

    async fn ok(&mut self, what: &str, cmd: &str) -> Result<Response, String> {
        let r = self.command(cmd).await?;
        if r.ok() {
            Ok(r)
        } else {
            Err(format!(
                "the ManageSieve server refused to {what}: {}",
                r.text()
            ))
        }
    }

    /// Connect (STARTTLS, implicit TLS, or plaintext to loopback, as
    /// configured) and authenticate: SASL PLAIN with the password, or
    /// XOAUTH2/OAUTHBEARER with the token.
    pub async fn connect(a: &Account, secret: &Secret) -> Result<Session, String> {
        let host = a.sieve_host.trim_matches(['[', ']']).to_string();
        let tcp = tokio::time::timeout(
            crate::imap::connect_timeout(),
            TcpStream::connect((host.as_str(), a.sieve_port)),
        )
        .await
        .map_err(|_| {
            format!(
                "connecting to ManageSieve {host}:{} timed out",
                a.sieve_port
            )
        })?
        .map_err(|e| format!("cannot connect to ManageSieve {host}:{}: {e}", a.sieve_port))?;
        let mut sieve_account = a.clone();
        sieve_account.host = host.clone();
        sieve_account.port = a.sieve_port;
        let conn = if a.sieve_tls == TlsMode::Implicit {
            crate::imap::tls_wrap(&sieve_account, tcp)
                .await
                .map_err(|e| e.message)?
        } else {
            Conn::Plain(tcp)
        };
        let mut s = Session {
            conn,
            buf: Vec::new(),
            extensions: String::new(),
            max_redirects: None,
        };
        let greeting = s.greeting(&host, a.sieve_port).await?;
        let (mut ext, starttls) = caps_of(&greeting);
        match a.sieve_tls {
            TlsMode::Implicit => {}
            TlsMode::Plain if is_loopback(&host) => {}
            TlsMode::Plain => {
                return Err(format!(
                    "ManageSieve {host}:{}: tls = \"plain\" is allowed only to a loopback address; use \"starttls\" or \"implicit\"",
                    a.sieve_port
                ))
            }
            TlsMode::Starttls => {
                if !starttls {
                    return Err(format!(
                        "ManageSieve {host}:{} does not offer STARTTLS: refusing to send the password unencrypted",
                        a.sieve_port
                    ));
                }
                s.ok("start TLS", "STARTTLS").await?;
                let Conn::Plain(tcp) = s.conn else {
                    unreachable!()
                };
                s.conn = crate::imap::tls_wrap(&sieve_account, tcp)
                    .await
                    .map_err(|e| e.message)?;
                let caps = s.read().await?;
                ext = caps_of(&caps).0;
            }
        }
        s.extensions = ext;
        let r = match a
            .auth
            .oauth_message(&a.username, &host, a.sieve_port, secret.expose())
        {
            Some(msg) => {
                let mech = a.auth.sasl_name().unwrap_or_default();
                s.authenticate(mech, msg.as_bytes()).await?
            }
            None => {
                let token = format!("\0{}\0{}", a.username, secret.expose());
                s.authenticate("PLAIN", token.as_bytes()).await?
            }
        };
        if !r.ok() {
            return Err(format!(
                "ManageSieve {host}:{} refused the login for {}: {}",
                a.sieve_port,
                a.username,
                r.text()
            ));
        }
        Ok(s)
    }

    /// (name, active) of every script.
    pub async fn list(&mut self) -> Result<Vec<(String, bool)>, String> {
        let r = self.ok("list scripts", "LISTSCRIPTS").await?;
        Ok(r.lines
            .iter()
            .filter_map(|l| match l.first() {
                Some(Item::Str(n)) => Some((
                    n.clone(),
                    matches!(l.get(1), Some(Item::Atom(a)) if a.eq_ignore_ascii_case("ACTIVE")),
                )),
                _ => None,
            })
            .collect())
    }

    pub async fn get(&mut self, name: &str) -> Result<String, String> {
        let r = self
            .ok(
                &format!("read script \"{name}\""),
                &format!("GETSCRIPT {}", string_arg(name)),
            )
            .await?;
        Ok(r.lines
            .first()
            .and_then(|l| l.first())
            .map(|i| match i {
                Item::Str(s) | Item::Atom(s) => s.clone(),
            })
            .unwrap_or_default())
    }

    /// CHECKSCRIPT: the server's own compiler says yes or why not.
    pub async fn check(&mut self, script: &str) -> Result<(), String> {
        let r = self
            .command(&format!("CHECKSCRIPT {{{}+}}\r\n{script}", script.len()))
            .await?;
        if r.ok() {
            Ok(())
        } else {
            Err(format!("the server rejects the script: {}", r.text()))
        }
    }

    /// HAVESPACE: may a script of this size be stored under this name?
    pub async fn have_space(&mut self, name: &str, size: usize) -> Result<(), String> {
        let r = self
            .command(&format!("HAVESPACE {} {size}", string_arg(name)))
            .await?;
        if r.ok() {
            Ok(())
        } else {
            Err(format!(
                "the server has no room for a {size}-byte script: {}",
                r.text()
            ))
        }
    }

    pub async fn put(&mut self, name: &str, script: &str) -> Result<(), String> {
        self.ok(
            &format!("store script \"{name}\""),
            &format!(
                "PUTSCRIPT {} {{{}+}}\r\n{script}",
                string_arg(name),
                script.len()
            ),
        )
        .await
        .map(|_| ())
    }

    /// Activate a script; `""` deactivates all.
    pub async fn set_active(&mut self, name: &str) -> Result<(), String> {
        self.ok(
            &format!("activate script \"{name}\""),
            &format!("SETACTIVE {}", string_arg(name)),
        )
        .await
        .map(|_| ())
    }

    pub async fn delete(&mut self, name: &str) -> Result<(), String> {
        self.ok(
            &format!("delete script \"{name}\""),
            &format!("DELETESCRIPT {}", string_arg(name)),
        )
        .await
        .map(|_| ())
    }

    pub async fn logout(mut self) {
        let _ = self.command("LOGOUT").await;
    }
}

/// Standard base64 with padding (SASL PLAIN; also used by tests to build
/// RFC 2047 words).
pub fn base64(b: &[u8]) -> String {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for c in b.chunks(3) {
        let n = (c[0] as u32) << 16
            | (*c.get(1).unwrap_or(&0) as u32) << 8
            | *c.get(2).unwrap_or(&0) as u32;
        for i in 0..4 {
            if i <= c.len() {
                out.push(T[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// A bounce for the dry run before every upload (hand-written, minimal).
const SAMPLE_BOUNCE: &[u8] = b"Return-Path: <>\r\nFrom: MAILER-DAEMON@mx.example.net\r\nTo: someone@example.org\r\nSubject: Undelivered Mail Returned to Sender\r\nAuto-Submitted: auto-replied\r\nContent-Type: multipart/report; report-type=delivery-status; boundary=\"b\"\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\nThis is the mail system.\r\n--b\r\nContent-Type: message/delivery-status\r\n\r\nFinal-Recipient: rfc822; x@example.com\r\nAction: failed\r\nStatus: 5.1.1\r\n--b--\r\n";

/// Generate the script for this server, validate it (sieve-rs compile,
/// every `require` offered, a dry run on a sample bounce that must land in
/// quarantine, the server's own CHECKSCRIPT) and upload it as [`SCRIPT`].
pub async fn upload_script(
    s: &mut Session,
    a: &Account,
    sent: &crate::sieve::SentLists,
) -> Result<crate::sieve::Script, String> {
    let d = mail_parser::DateTime::from_timestamp(crate::clean::now()).to_rfc3339();
    let script = crate::sieve::generate(&crate::sieve::Policy {
        account: &a.name,
        quarantine: &a.quarantine,
        sent_ids: &sent.ids,
        scan_ids: sent.scan_ids,
        recipients: &sent.recipients,
        extensions: &s.extensions,
        max_bytes: 1 << 20,
        generated_at: &d,
        keep: &a.keep,
    })
    .map_err(|e| e.0)?;
    crate::sieve::validate(&script.text, &s.extensions)?;
    match crate::sieve::run(&script.text, SAMPLE_BOUNCE, "")? {
        Some(f) if f == a.quarantine => {}
        other => {
            return Err(format!(
                "the generated script does not quarantine a sample bounce (it {}); not uploaded",
                match other {
                    Some(f) => format!("files it into \"{f}\""),
                    None => "keeps it".into(),
                }
            ))
        }
    }
    s.check(&script.text).await?;
    s.have_space(SCRIPT, script.text.len()).await?;
    s.put(SCRIPT, &script.text).await?;
    Ok(script)
}

/// If the active script is our marked copy of the user's script (a server
/// without `include`), put the fresh `script` into it, keeping whatever the
/// user changed outside our block. Returns whether there was such a copy.
pub async fn refresh_copy(s: &mut Session, script: &crate::sieve::Script) -> Result<bool, String> {
    let scripts = s.list().await?;
    if !scripts.iter().any(|(n, act)| n == WRAPPER && *act) {
        return Ok(false);
    }
    let current = s.get(WRAPPER).await?;
    if !current.contains(crate::sieve::BLOCK_BEGIN) {
        return Ok(false);
    }
    let merged = crate::sieve::merge(&current, script)?;
    s.check(&merged).await?;
    s.have_space(WRAPPER, merged.len()).await?;
    s.put(WRAPPER, &merged).await?;
    Ok(true)
}

/// The user's script behind the active wrapper, found without the install
/// state: the one the `include` wrapper names, or the one whose text equals
/// the marked copy without our block.
pub async fn original_of_wrapper(
    s: &mut Session,
    scripts: &[(String, bool)],
) -> Result<Option<String>, String> {
    let text = s.get(WRAPPER).await?;
    if text.contains(crate::sieve::BLOCK_BEGIN) {
        let theirs = crate::sieve::unmerge(&text);
        for (name, _) in scripts {
            if name != SCRIPT && name != WRAPPER && s.get(name).await? == theirs {
                return Ok(Some(name.clone()));
            }
        }
        return Ok(None);
    }
    Ok(text
        .lines()
        .filter_map(|l| l.trim().strip_prefix("include :personal "))
        .map(|rest| rest.trim_end_matches(';').trim())
        .filter_map(|q| q.strip_prefix('"')?.strip_suffix('"'))
        .map(|n| n.replace("\\\"", "\"").replace("\\\\", "\\"))
        .find(|n| n != SCRIPT && scripts.iter().any(|(x, _)| x == n)))
}

/// What `sieve install` did, kept (0600) so `sieve uninstall` can undo it
/// exactly and `watch` can keep it fresh.
#[derive(Debug, Default, Clone, serde::Serialize, serde::Deserialize)]
pub struct Installed {
    /// The script that was active before ours.
    pub original_active: Option<String>,
    pub installed_at: i64,
}

/// Our script's name on the server.
pub const SCRIPT: &str = "backscatter";
/// The user's own rules (`sieve install --rules`), run after ours.
pub const RULES: &str = "backscatter-rules";
/// The active script when the user had one: a wrapper that `include`s ours
/// and then theirs, or (without `include`) a marked copy of theirs.
pub const WRAPPER: &str = "backscatter-main";

/// The wrapper: our script first (it stops after filing into quarantine),
/// then the user's own, unchanged.
pub fn wrapper(users: &str) -> String {
    format!(
        "# backscatter: runs the backscatter filter, then your own script \"{}\".\n\
         # Remove with `backscatter sieve uninstall`, which re-activates yours.\n\
         require [\"include\"];\n\
         include :personal \"{SCRIPT}\";\n\
         include :personal {};\n",
        users.replace(['\n', '\r'], " "),
        crate::sieve::quote(users)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_greeting_lists_and_literals() {
        let g = b"\"IMPLEMENTATION\" \"Dovecot Pigeonhole\"\r\n\"SIEVE\" \"fileinto envelope\"\r\n\"STARTTLS\"\r\nOK \"ready.\"\r\n";
        let (r, used) = parse_response(g).unwrap().unwrap();
        assert_eq!(used, g.len());
        assert!(r.ok());
        assert_eq!(caps_of(&r), ("fileinto envelope".into(), true));
        let l = b"\"a\" ACTIVE\r\n\"b\\\"q\"\r\nOK\r\n";
        let (r, _) = parse_response(l).unwrap().unwrap();
        assert_eq!(
            r.lines[0],
            vec![Item::Str("a".into()), Item::Atom("ACTIVE".into())]
        );
        assert_eq!(r.lines[1], vec![Item::Str("b\"q".into())]);
        let lit = b"{5}\r\nab\r\nc\r\nOK \"done\"\r\n";
        let (r, _) = parse_response(lit).unwrap().unwrap();
        assert_eq!(r.lines[0], vec![Item::Str("ab\r\nc".into())]);
        assert_eq!(parse_response(b"{5}\r\nab").unwrap(), None);
        let no = b"NO (QUOTA/MAXSIZE) \"Script is too large\"\r\n";
        let (r, _) = parse_response(no).unwrap().unwrap();
        assert!(!r.ok());
        assert!(r.text().contains("too large"));
        assert!(parse_response(b"{99999999999}\r\n").is_err());
    }

    #[test]
    fn sasl_steps() {
        // An OAuth error challenge (base64 JSON), then the verdict.
        let c = b"\"eyJzdGF0dXMiOiI0MDEifQ==\"\r\n";
        let (step, used) = parse_sasl_step(c).unwrap().unwrap();
        assert_eq!(step, SaslStep::Challenge("eyJzdGF0dXMiOiI0MDEifQ==".into()));
        assert_eq!(used, c.len());
        let (step, _) = parse_sasl_step(b"NO \"Authentication failed\"\r\n")
            .unwrap()
            .unwrap();
        assert!(matches!(step, SaslStep::Done(r) if !r.ok()));
        assert_eq!(parse_sasl_step(b"\"partial").unwrap(), None);
        let msg = crate::config::AuthMechanism::Oauthbearer
            .oauth_message("a,b=c", "h", 4190, "tok")
            .unwrap();
        assert_eq!(
            msg,
            "n,a=a=2Cb=3Dc,\x01host=h\x01port=4190\x01auth=Bearer tok\x01\x01"
        );
    }
}
