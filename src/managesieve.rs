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
use crate::net::ErrorKind::{Auth, Connect, Lost, No, Protocol, Tls};
use crate::net::NetError;
use crate::secret::Secret;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

pub use backscatter_policy::managesieve::*;

fn invalid(e: String) -> NetError {
    NetError::new(
        Protocol,
        format!("the ManageSieve server sent an invalid response ({e})"),
    )
}

/// A connected, authenticated ManageSieve session.
pub struct Session {
    conn: Conn,
    buf: Vec<u8>,
    /// The server's SIEVE extensions.
    pub extensions: String,
    pub max_redirects: Option<u32>,
}

impl Session {
    /// The next complete response, within one command timeout however
    /// slowly it trickles in.
    async fn read(&mut self) -> Result<Response, NetError> {
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
            .map_err(|_| NetError::new(Lost, "the ManageSieve server did not answer in time"))?
    }

    /// The greeting (capabilities, then OK), or one sentence naming the
    /// likely mistake when another protocol answers on this port: IMAP
    /// greets with `* OK` and then waits, so waiting for ManageSieve's OK
    /// would take the whole command timeout.
    async fn greeting(&mut self, host: &str, port: u16, plain: bool) -> Result<Response, NetError> {
        let at = crate::config::endpoint(host, port);
        let no_greeting = || {
            NetError::new(Connect, format!("ManageSieve {at} did not answer in time: no greeting (is this the ManageSieve port, usually 4190?)"))
        };
        // A port that waits for a TLS ClientHello (IMAPS, ManageSieve over
        // implicit TLS) sends nothing: after a short wait, probe for TLS
        // instead of waiting the whole timeout, as the IMAP side does.
        let first_wait = if plain {
            crate::imap::connect_timeout().min(std::time::Duration::from_secs(3))
        } else {
            crate::imap::connect_timeout()
        };
        let mut waited = first_wait;
        loop {
            let first_line = async {
                while !self.buf.contains(&b'\n') {
                    self.fill().await?;
                }
                Ok::<_, NetError>(())
            };
            match tokio::time::timeout(waited, first_line).await {
                Ok(r) => {
                    r?;
                    break;
                }
                Err(_) if plain && waited == first_wait => {
                    if crate::imap::speaks_tls(host, port).await {
                        return Err(NetError::new(Connect, format!("{at} expects TLS from the first byte and sends no plain-text greeting: it is an IMAPS or implicit-TLS port, not the ManageSieve port (usually 4190, with STARTTLS)")));
                    }
                    waited = crate::imap::connect_timeout().saturating_sub(first_wait);
                }
                Err(_) => return Err(no_greeting()),
            }
        }
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
            return Err(NetError::new(Connect, format!(
                "{at} is {what}, not ManageSieve: set port in [accounts.NAME.sieve] to the ManageSieve port (usually 4190)"
            )));
        }
        self.read().await
    }

    /// Read more bytes from the server into the buffer.
    async fn fill(&mut self) -> Result<(), NetError> {
        let mut chunk = [0u8; 8192];
        let n =
            self.conn.read(&mut chunk).await.map_err(|e| {
                NetError::new(Lost, format!("the ManageSieve connection failed: {e}"))
            })?;
        if n == 0 {
            return Err(NetError::new(
                Lost,
                "the ManageSieve server closed the connection",
            ));
        }
        if self.buf.len() > 32 * 1024 * 1024 {
            return Err(NetError::new(
                Protocol,
                "the ManageSieve server sent too much",
            ));
        }
        self.buf.extend_from_slice(&chunk[..n]);
        Ok(())
    }

    async fn send(&mut self, bytes: &[u8]) -> Result<(), NetError> {
        tokio::time::timeout(crate::imap::command_timeout(), self.conn.write_all(bytes))
            .await
            .map_err(|_| NetError::new(Lost, "writing to the ManageSieve server timed out"))?
            .map_err(|e| NetError::new(Lost, format!("the ManageSieve connection failed: {e}")))
    }

    /// AUTHENTICATE with an initial response; any challenge (the OAuth
    /// mechanisms' error report) is answered with an empty response, after
    /// which the server gives its verdict.
    async fn authenticate(
        &mut self,
        mechanism: &str,
        initial: &[u8],
    ) -> Result<Response, NetError> {
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
            Err(NetError::new(
                Protocol,
                "the ManageSieve server kept sending authentication challenges",
            ))
        };
        tokio::time::timeout(crate::imap::command_timeout(), steps)
            .await
            .map_err(|_| {
                NetError::new(
                    Lost,
                    "the ManageSieve server did not answer the login in time",
                )
            })?
    }

    async fn command(&mut self, cmd: &str) -> Result<Response, NetError> {
        let mut line = cmd.as_bytes().to_vec();
        line.extend_from_slice(b"\r\n");
        self.send(&line).await?;
        self.read().await
    }

    async fn ok(&mut self, what: &str, cmd: &str) -> Result<Response, NetError> {
        let r = self.command(cmd).await?;
        if r.ok() {
            Ok(r)
        } else {
            Err(NetError::new(
                No,
                format!("the ManageSieve server refused to {what}: {}", r.text()),
            ))
        }
    }

    /// Connect (STARTTLS, implicit TLS, or plaintext to loopback, as
    /// configured) and authenticate: SASL PLAIN with the password, or
    /// XOAUTH2/OAUTHBEARER with the token.
    pub async fn connect(a: &Account, secret: &Secret) -> Result<Session, NetError> {
        let to = &a.sieve;
        let host = to.host.trim_matches(['[', ']']).to_string();
        let tcp = tokio::time::timeout(
            crate::imap::connect_timeout(),
            TcpStream::connect((host.as_str(), to.port)),
        )
        .await
        .map_err(|_| NetError::new(Connect, format!("connecting to ManageSieve {to} timed out")))?
        .map_err(|e| NetError::new(Connect, format!("cannot connect to ManageSieve {to}: {e}")))?;
        let conn = if to.tls == TlsMode::Implicit {
            crate::imap::tls_wrap(to, tcp).await?
        } else {
            Conn::Plain(tcp)
        };
        let mut s = Session {
            conn,
            buf: Vec::new(),
            extensions: String::new(),
            max_redirects: None,
        };
        let greeting = s
            .greeting(&host, to.port, to.tls != TlsMode::Implicit)
            .await?;
        let (mut ext, starttls) = caps_of(&greeting);
        match to.tls {
            TlsMode::Implicit => {}
            TlsMode::Plain if is_loopback(&host) => {}
            TlsMode::Plain => {
                return Err(NetError::new(Auth, format!(
                    "ManageSieve {to}: tls = \"plain\" is allowed only to a loopback address; use \"starttls\" or \"implicit\""
                )))
            }
            TlsMode::Starttls => {
                if !starttls {
                    return Err(NetError::new(Tls, format!(
                        "ManageSieve {to} does not offer STARTTLS: refusing to send the password unencrypted"
                    )));
                }
                s.ok("start TLS", "STARTTLS").await?;
                let Conn::Plain(tcp) = s.conn else {
                    unreachable!()
                };
                s.conn = crate::imap::tls_wrap(to, tcp).await?;
                let caps = s.read().await?;
                ext = caps_of(&caps).0;
            }
        }
        s.extensions = ext;
        let r = match a
            .auth
            .oauth_message(&a.username, &host, to.port, secret.expose())
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
            return Err(NetError::new(
                Auth,
                format!(
                    "ManageSieve {to} refused the login for {}: {}",
                    a.username,
                    r.text()
                ),
            ));
        }
        Ok(s)
    }

    /// (name, active) of every script.
    pub async fn list(&mut self) -> Result<Vec<(String, bool)>, NetError> {
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

    pub async fn get(&mut self, name: &str) -> Result<String, NetError> {
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
    pub async fn check(&mut self, script: &str) -> Result<(), NetError> {
        let r = self
            .command(&format!("CHECKSCRIPT {{{}+}}\r\n{script}", script.len()))
            .await?;
        if r.ok() {
            Ok(())
        } else if let Some(limit) = r.too_large() {
            Err(too_large(script.len(), limit))
        } else {
            Err(NetError::new(
                No,
                format!("the server rejects the script: {}", r.text()),
            ))
        }
    }

    /// HAVESPACE (RFC 5804 §2.5), asked before a script is sent: `Ok(None)`
    /// when a script of `size` bytes may be stored as `name`,
    /// `Ok(Some(limit))` when the server refuses it as too large
    /// (`QUOTA/MAXSIZE`; `limit` in bytes when its text states one). Error:
    /// any other refusal (too many scripts, the quota), in one sentence.
    pub async fn space_for(
        &mut self,
        name: &str,
        size: usize,
    ) -> Result<Option<Option<usize>>, NetError> {
        let r = self
            .command(&format!("HAVESPACE {} {size}", string_arg(name)))
            .await?;
        if r.ok() {
            return Ok(None);
        }
        match r.too_large() {
            Some(limit) => Ok(Some(limit)),
            None => Err(NetError::new(
                No,
                format!(
                    "the server has no room for a {size}-byte script: {}",
                    r.text()
                ),
            )),
        }
    }

    /// HAVESPACE: may a script of this size be stored under this name?
    pub async fn have_space(&mut self, name: &str, size: usize) -> Result<(), NetError> {
        match self.space_for(name, size).await? {
            None => Ok(()),
            Some(limit) => Err(too_large(size, limit)),
        }
    }

    pub async fn put(&mut self, name: &str, script: &str) -> Result<(), NetError> {
        let r = self
            .command(&format!(
                "PUTSCRIPT {} {{{}+}}\r\n{script}",
                string_arg(name),
                script.len()
            ))
            .await?;
        if r.ok() {
            Ok(())
        } else if let Some(limit) = r.too_large() {
            Err(too_large(script.len(), limit))
        } else {
            Err(NetError::new(
                No,
                format!(
                    "the ManageSieve server refused to store script \"{name}\": {}",
                    r.text()
                ),
            ))
        }
    }

    /// Activate a script; `""` deactivates all.
    pub async fn set_active(&mut self, name: &str) -> Result<(), NetError> {
        self.ok(
            &format!("activate script \"{name}\""),
            &format!("SETACTIVE {}", string_arg(name)),
        )
        .await
        .map(|_| ())
    }

    pub async fn delete(&mut self, name: &str) -> Result<(), NetError> {
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

/// The server's refusal of a script as too large, in one sentence.
fn too_large(size: usize, limit: Option<usize>) -> NetError {
    let allows = match limit {
        Some(l) => format!("it allows {l} bytes"),
        None => {
            "it does not say how large a script may be (Cyrus allows 32768 bytes by default)".into()
        }
    };
    NetError::new(
        No,
        format!("the ManageSieve server refused a {size}-byte script as too large: {allows}; set max-size in [accounts.NAME.sieve] (or --max-size) to its limit"),
    )
}

/// The default script size limit when neither the account nor the server
/// gives one: 1 MiB (Dovecot's `sieve_max_script_size` default).
pub const DEFAULT_MAX_SIZE: usize = 1 << 20;

/// What [`upload_script`] put on the server.
#[derive(Debug, Clone)]
pub struct Uploaded {
    pub script: crate::sieve::Script,
    /// The size limit the script was generated for, in bytes.
    pub limit: usize,
    /// The server said that limit (HAVESPACE refused a larger script);
    /// false: it is the account's `max-size` or [`DEFAULT_MAX_SIZE`].
    pub limit_from_server: bool,
}

/// A bounce for the dry run before every upload (hand-written, minimal).
const SAMPLE_BOUNCE: &[u8] = b"Return-Path: <>\r\nFrom: MAILER-DAEMON@mx.example.net\r\nTo: someone@example.org\r\nSubject: Undelivered Mail Returned to Sender\r\nAuto-Submitted: auto-replied\r\nContent-Type: multipart/report; report-type=delivery-status; boundary=\"b\"\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\nThis is the mail system.\r\n--b\r\nContent-Type: message/delivery-status\r\n\r\nFinal-Recipient: rfc822; x@example.com\r\nAction: failed\r\nStatus: 5.1.1\r\n--b--\r\n";

/// Generate the script for this server, validate it (sieve-rs compile,
/// every `require` offered, a dry run on a sample bounce that must land in
/// quarantine, the server's own CHECKSCRIPT) and upload it as [`SCRIPT`].
///
/// Sized to fit: generated for the account's `max-size` (else
/// [`DEFAULT_MAX_SIZE`]) and offered to HAVESPACE first; when the server
/// refuses it as too large (`QUOTA/MAXSIZE`), generated again for the
/// limit the server states (else half the size), keeping the most recent
/// sent Message-IDs, so an over-sized script is never sent (Cyrus's
/// timsieved cannot parse one and answers a cryptic error).
pub async fn upload_script(
    s: &mut Session,
    a: &Account,
    sent: &crate::sieve::SentLists,
) -> Result<Uploaded, String> {
    let d = mail_parser::DateTime::from_timestamp(crate::clock::now()).to_rfc3339();
    let mut limit = a.sieve_max_size.unwrap_or(DEFAULT_MAX_SIZE);
    let mut limit_from_server = false;
    let script = loop {
        let script = crate::sieve::generate(&crate::sieve::Policy {
            account: &a.name,
            quarantine: &a.quarantine,
            sent_ids: &sent.ids,
            scan_ids: sent.scan_ids,
            recipients: &sent.recipients,
            extensions: &s.extensions,
            max_bytes: limit,
            generated_at: &d,
            keep: &a.keep,
        })
        .map_err(|e| e.0)?;
        let size = script.text.len();
        match s.space_for(SCRIPT, size).await? {
            None => break script,
            Some(stated) => {
                // A limit below what was refused, else half of it; never
                // round again at the same size.
                let next = stated.filter(|&l| l < size).unwrap_or(size / 2);
                if next < 1024 || next >= limit {
                    return Err(too_large(size, stated).to_string());
                }
                limit = next;
                limit_from_server = true;
            }
        }
    };
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
    s.put(SCRIPT, &script.text).await?;
    Ok(Uploaded {
        script,
        limit,
        limit_from_server,
    })
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
            if name != SCRIPT && name != WRAPPER && name != RULES && s.get(name).await? == theirs {
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
        .find(|n| n != SCRIPT && n != RULES && scripts.iter().any(|(x, _)| x == n)))
}

/// What `sieve install` did, kept (0600) so `sieve uninstall` can undo it
/// exactly and `watch` can keep it fresh.
#[derive(Debug, Default, Clone, serde::Serialize, serde::Deserialize)]
pub struct Installed {
    /// The script that was active before ours.
    pub original_active: Option<String>,
    pub installed_at: i64,
}

#[cfg(test)]
mod tests {
    #[test]
    fn oauthbearer_message() {
        let msg = crate::config::AuthMechanism::Oauthbearer
            .oauth_message("a,b=c", "h", 4190, "tok")
            .unwrap();
        assert_eq!(
            msg,
            "n,a=a=2Cb=3Dc,\x01host=h\x01port=4190\x01auth=Bearer tok\x01\x01"
        );
    }
}
