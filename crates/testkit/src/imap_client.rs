//! A small blocking IMAP client (RFC 3501, with LITERAL+, MULTIAPPEND and
//! UIDPLUS's APPENDUID) over plain TCP, to set up and check mailboxes
//! independently of the code under test. Methods panic with the server's
//! answer on failure, except [`Imap::try_connect`] and [`Imap::command`].
//!
//! ```ignore
//! let mut imap = Imap::connect(port, "alice", "alicepw");
//! let uids = imap.append_many("INBOX", &messages);
//! let ids = imap.fetch_message_ids("INBOX"); // (uid, Some("<id@host>"))
//! ```

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::time::Duration;

/// Read/write timeout of the helper clients: a stuck server fails the test
/// instead of hanging it.
pub const IO_TIMEOUT: Duration = Duration::from_secs(30);

/// A value in an IMAP response.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Value {
    /// an atom or number, e.g. `UID`, `\Seen`, `BODY[HEADER.FIELDS (MESSAGE-ID)]`
    Atom(String),
    /// a quoted string or a literal
    Str(Vec<u8>),
    Nil,
    List(Vec<Value>),
}

impl Value {
    pub fn atom(&self) -> Option<&str> {
        match self {
            Value::Atom(a) => Some(a),
            _ => None,
        }
    }

    /// The bytes of a string, literal or atom.
    pub fn bytes(&self) -> Option<&[u8]> {
        match self {
            Value::Str(b) => Some(b),
            Value::Atom(a) => Some(a.as_bytes()),
            _ => None,
        }
    }

    pub fn number(&self) -> Option<u32> {
        self.atom()?.parse().ok()
    }

    pub fn list(&self) -> Option<&[Value]> {
        match self {
            Value::List(v) => Some(v),
            _ => None,
        }
    }
}

/// One response, with any literals read in full.
#[derive(Clone, Debug)]
pub struct Response {
    /// `*`, `+` or the command tag
    pub tag: String,
    /// for `* 5 EXISTS` / `* 3 FETCH (...)`: the number
    pub number: Option<u32>,
    /// upper-cased keyword: `OK`, `NO`, `EXISTS`, `FETCH`, `SEARCH`, `STATUS`, `LIST`, …
    pub kind: String,
    /// the rest, as sent (literals included)
    pub rest: Vec<u8>,
}

impl Response {
    /// The rest parsed into values (for data responses; a status response's
    /// text is free text and may not parse).
    pub fn values(&self) -> Result<Vec<Value>, String> {
        let mut pos = 0;
        parse_values(&self.rest, &mut pos, false)
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.rest).into_owned()
    }

    /// `FETCH` items as (upper-cased name, value) pairs.
    pub fn fetch_items(&self) -> Result<Vec<(String, Value)>, String> {
        if self.kind != "FETCH" {
            return Err(format!("not a FETCH response: {self}"));
        }
        let values = self.values()?;
        let items = values
            .first()
            .and_then(Value::list)
            .ok_or_else(|| format!("FETCH without a list: {self}"))?;
        Ok(items
            .chunks(2)
            .filter_map(|kv| match kv {
                [k, v] => Some((k.atom()?.to_ascii_uppercase(), v.clone())),
                _ => None,
            })
            .collect())
    }
}

impl std::fmt::Display for Response {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.tag)?;
        if let Some(n) = self.number {
            write!(f, " {n}")?;
        }
        let rest = String::from_utf8_lossy(&self.rest);
        let rest: String = rest.chars().take(300).collect();
        write!(f, " {} {rest}", self.kind)
    }
}

/// What a completed command returned.
#[derive(Clone, Debug)]
pub struct Reply {
    /// the untagged responses, in order
    pub untagged: Vec<Response>,
    /// the text of the tagged OK, e.g. `[APPENDUID 1 1:500] Append completed.`
    pub text: String,
}

/// Parse values until the end of `buf` (or, inside a list, its closing `)`).
fn parse_values(buf: &[u8], pos: &mut usize, in_list: bool) -> Result<Vec<Value>, String> {
    let mut out = Vec::new();
    loop {
        while *pos < buf.len() && buf[*pos] == b' ' {
            *pos += 1;
        }
        let Some(&c) = buf.get(*pos) else {
            return if in_list {
                Err("unclosed (".into())
            } else {
                Ok(out)
            };
        };
        match c {
            b'(' => {
                *pos += 1;
                out.push(Value::List(parse_values(buf, pos, true)?));
            }
            b')' => {
                if !in_list {
                    return Err(format!("unbalanced ) at {}", *pos));
                }
                *pos += 1;
                return Ok(out);
            }
            b'"' => {
                *pos += 1;
                let mut s = Vec::new();
                loop {
                    match buf.get(*pos) {
                        None => return Err("unterminated quoted string".into()),
                        Some(b'"') => break,
                        Some(b'\\') => {
                            s.push(*buf.get(*pos + 1).ok_or("bad escape")?);
                            *pos += 2;
                        }
                        Some(&b) => {
                            s.push(b);
                            *pos += 1;
                        }
                    }
                }
                *pos += 1;
                out.push(Value::Str(s));
            }
            b'{' => {
                let close = buf[*pos..]
                    .iter()
                    .position(|&b| b == b'}')
                    .ok_or("unterminated literal length")?
                    + *pos;
                let spec = std::str::from_utf8(&buf[*pos + 1..close]).map_err(|e| e.to_string())?;
                let len: usize = spec
                    .trim_end_matches('+')
                    .parse()
                    .map_err(|_| format!("bad literal length {spec:?}"))?;
                let start = close + 1;
                if buf.get(start..start + 2) != Some(b"\r\n") {
                    return Err("literal length not followed by CRLF".into());
                }
                let data = buf
                    .get(start + 2..start + 2 + len)
                    .ok_or("literal shorter than announced")?;
                out.push(Value::Str(data.to_vec()));
                *pos = start + 2 + len;
            }
            _ => {
                // an atom; a [...] section (fetch items) may hold spaces and parens
                let start = *pos;
                let mut depth = 0usize;
                while let Some(&b) = buf.get(*pos) {
                    match b {
                        b'[' => depth += 1,
                        b']' if depth > 0 => depth -= 1,
                        b' ' | b'(' | b')' | b'"' | b'{' if depth == 0 => break,
                        _ => {}
                    }
                    *pos += 1;
                }
                let atom = String::from_utf8_lossy(&buf[start..*pos]).into_owned();
                if atom.eq_ignore_ascii_case("NIL") {
                    out.push(Value::Nil);
                } else {
                    out.push(Value::Atom(atom));
                }
            }
        }
    }
}

/// If a response line ends with a literal announcement `{n}` / `{n+}`, its length.
fn literal_len(line: &[u8]) -> Option<usize> {
    let line = line
        .strip_suffix(b"\r\n")
        .or_else(|| line.strip_suffix(b"\n"))?;
    let line = line.strip_suffix(b"}")?;
    let open = line.iter().rposition(|&b| b == b'{')?;
    let digits = &line[open + 1..];
    let digits = digits.strip_suffix(b"+").unwrap_or(digits);
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(digits).ok()?.parse().ok()
}

/// A mailbox name as a quoted IMAP string, in modified UTF-7 (RFC 3501 5.1.3).
pub fn mailbox_arg(name: &str) -> String {
    quote(&modified_utf7(name))
}

fn quote(s: &str) -> String {
    assert!(
        !s.contains(['\r', '\n', '\0']),
        "IMAP quoted strings cannot hold CR, LF or NUL: {s:?}"
    );
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}

fn modified_utf7(s: &str) -> String {
    fn flush(out: &mut String, units: &mut Vec<u16>) {
        if units.is_empty() {
            return;
        }
        const B64: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+,";
        let bytes: Vec<u8> = units.iter().flat_map(|u| u.to_be_bytes()).collect();
        out.push('&');
        for chunk in bytes.chunks(3) {
            let n = chunk
                .iter()
                .enumerate()
                .fold(0u32, |n, (i, &b)| n | (b as u32) << (16 - 8 * i));
            for i in 0..=chunk.len() {
                out.push(B64[(n >> (18 - 6 * i) & 63) as usize] as char);
            }
        }
        out.push('-');
        units.clear();
    }
    let mut out = String::new();
    let mut units = Vec::new();
    for c in s.chars() {
        if (' '..='~').contains(&c) {
            flush(&mut out, &mut units);
            if c == '&' {
                out.push_str("&-");
            } else {
                out.push(c);
            }
        } else {
            let mut buf = [0u16; 2];
            units.extend_from_slice(c.encode_utf16(&mut buf));
        }
    }
    flush(&mut out, &mut units);
    out
}

/// Parse an RFC 4315 uid-set such as `1:3,7`.
fn parse_uid_set(s: &str) -> Result<Vec<u32>, String> {
    let mut out = Vec::new();
    for part in s.split(',') {
        let bad = || format!("bad uid-set {s:?}");
        match part.split_once(':') {
            Some((a, b)) => {
                let (a, b): (u32, u32) =
                    (a.parse().map_err(|_| bad())?, b.parse().map_err(|_| bad())?);
                out.extend(a.min(b)..=a.max(b));
            }
            None => out.push(part.parse().map_err(|_| bad())?),
        }
    }
    Ok(out)
}

/// The value of the first `Message-ID:` header in a header block (unfolded,
/// trimmed).
pub fn header_message_id(header: &[u8]) -> Option<String> {
    let text = String::from_utf8_lossy(header);
    let mut lines = text
        .split('\n')
        .map(|l| l.trim_end_matches('\r'))
        .peekable();
    while let Some(line) = lines.next() {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        if !name.trim().eq_ignore_ascii_case("message-id") {
            continue;
        }
        let mut v = value.trim().to_string();
        while let Some(next) = lines.next_if(|l| l.starts_with([' ', '\t'])) {
            v.push_str(next.trim());
        }
        return (!v.is_empty()).then_some(v);
    }
    None
}

/// A small blocking IMAP client over plain TCP, for test setup and checks.
/// Methods panic with the server's answer on failure, except
/// [`Imap::try_connect`] and [`Imap::command`].
pub struct Imap {
    reader: BufReader<TcpStream>,
    writer: TcpStream,
    tag: u32,
    /// the capabilities after login
    pub capabilities: Vec<String>,
}

impl Imap {
    /// Connect to 127.0.0.1:`port` and LOGIN. Panics on failure.
    pub fn connect(port: u16, user: &str, pass: &str) -> Imap {
        Self::try_connect(port, user, pass)
            .unwrap_or_else(|e| panic!("IMAP connect to 127.0.0.1:{port} as {user}: {e}"))
    }

    pub fn try_connect(port: u16, user: &str, pass: &str) -> Result<Imap, String> {
        let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
        let stream =
            TcpStream::connect_timeout(&addr, Duration::from_secs(5)).map_err(|e| e.to_string())?;
        stream.set_nodelay(true).map_err(|e| e.to_string())?;
        stream
            .set_read_timeout(Some(IO_TIMEOUT))
            .map_err(|e| e.to_string())?;
        stream
            .set_write_timeout(Some(IO_TIMEOUT))
            .map_err(|e| e.to_string())?;
        let writer = stream.try_clone().map_err(|e| e.to_string())?;
        let mut imap = Imap {
            reader: BufReader::with_capacity(64 * 1024, stream),
            writer,
            tag: 0,
            capabilities: Vec::new(),
        };
        let greeting = imap.read_response()?;
        if greeting.tag != "*" || greeting.kind != "OK" {
            return Err(format!("unexpected greeting: {greeting}"));
        }
        imap.command(&format!("LOGIN {} {}", quote(user), quote(pass)))?;
        let caps = imap.command("CAPABILITY")?;
        imap.capabilities = caps
            .untagged
            .iter()
            .filter(|r| r.kind == "CAPABILITY")
            .flat_map(|r| {
                r.text()
                    .split_whitespace()
                    .map(str::to_string)
                    .collect::<Vec<_>>()
            })
            .collect();
        Ok(imap)
    }

    pub fn has_capability(&self, cap: &str) -> bool {
        self.capabilities
            .iter()
            .any(|c| c.eq_ignore_ascii_case(cap))
    }

    /// Read one response (with its literals).
    fn read_response(&mut self) -> Result<Response, String> {
        let mut raw = Vec::new();
        loop {
            let start = raw.len();
            let n = self
                .reader
                .read_until(b'\n', &mut raw)
                .map_err(|e| format!("read: {e}"))?;
            if n == 0 || !raw.ends_with(b"\n") {
                return Err(format!(
                    "connection closed by the server{}",
                    if raw.is_empty() {
                        String::new()
                    } else {
                        format!(" after {:?}", String::from_utf8_lossy(&raw))
                    }
                ));
            }
            match literal_len(&raw[start..]) {
                Some(len) => {
                    let at = raw.len();
                    raw.resize(at + len, 0);
                    self.reader
                        .read_exact(&mut raw[at..])
                        .map_err(|e| format!("read literal: {e}"))?;
                }
                None => break,
            }
        }
        while raw.last().is_some_and(|&b| b == b'\n' || b == b'\r') {
            raw.pop();
        }
        let mut words = raw.splitn(2, |&b| b == b' ');
        let tag = String::from_utf8_lossy(words.next().unwrap_or_default()).into_owned();
        let mut rest = words.next().unwrap_or_default();
        let mut number = None;
        if tag == "*" {
            let end = rest.iter().position(|&b| b == b' ').unwrap_or(rest.len());
            if let Some(n) = std::str::from_utf8(&rest[..end])
                .ok()
                .and_then(|s| s.parse().ok())
            {
                number = Some(n);
                rest = rest.get(end + 1..).unwrap_or_default();
            }
        }
        if tag == "+" {
            return Ok(Response {
                tag,
                number,
                kind: String::new(),
                rest: rest.to_vec(),
            });
        }
        let end = rest.iter().position(|&b| b == b' ').unwrap_or(rest.len());
        let kind = String::from_utf8_lossy(&rest[..end]).to_ascii_uppercase();
        let rest = rest.get(end + 1..).unwrap_or_default().to_vec();
        Ok(Response {
            tag,
            number,
            kind,
            rest,
        })
    }

    fn next_tag(&mut self) -> String {
        self.tag += 1;
        format!("t{}", self.tag)
    }

    /// Send `TAG <cmd>` (the command without tag and CRLF; it may carry
    /// LITERAL+ literals) and collect the responses up to the tagged one.
    /// A tagged NO or BAD is an error.
    pub fn command_bytes(&mut self, cmd: &[u8]) -> Result<Reply, String> {
        let tag = self.next_tag();
        let mut line = Vec::with_capacity(cmd.len() + tag.len() + 3);
        line.extend_from_slice(tag.as_bytes());
        line.push(b' ');
        line.extend_from_slice(cmd);
        line.extend_from_slice(b"\r\n");
        self.writer
            .write_all(&line)
            .map_err(|e| format!("write: {e}"))?;
        let shown = || {
            let c = String::from_utf8_lossy(&cmd[..cmd.len().min(80)]).into_owned();
            c.split("\r\n").next().unwrap_or_default().to_string()
        };
        let mut untagged = Vec::new();
        loop {
            let r = self
                .read_response()
                .map_err(|e| format!("{}: {e}", shown()))?;
            if r.tag == tag {
                return match r.kind.as_str() {
                    "OK" => Ok(Reply {
                        untagged,
                        text: r.text(),
                    }),
                    _ => Err(format!("{}: {} {}", shown(), r.kind, r.text())),
                };
            }
            if r.tag == "+" {
                return Err(format!("{}: unexpected continuation request {r}", shown()));
            }
            untagged.push(r);
        }
    }

    /// Run one command, e.g. `imap.command("UID MOVE 1:3 Junk")`, in the
    /// mailbox the last helper opened (every mailbox helper SELECTs its
    /// mailbox read-write; reads use BODY.PEEK and leave flags alone). Mind
    /// that after `examine` Dovecot answers a STORE with OK but ignores it.
    pub fn command(&mut self, cmd: &str) -> Result<Reply, String> {
        self.command_bytes(cmd.as_bytes())
    }

    fn must(&mut self, cmd: &str) -> Reply {
        self.command(cmd).unwrap_or_else(|e| panic!("IMAP {e}"))
    }

    /// CREATE a mailbox; one that already exists is fine.
    pub fn create(&mut self, mailbox: &str) {
        if let Err(e) = self.command(&format!("CREATE {}", mailbox_arg(mailbox))) {
            assert!(e.contains("[ALREADYEXISTS]"), "IMAP {e}");
        }
    }

    /// APPEND one message; returns its UID.
    pub fn append(&mut self, mailbox: &str, message: &[u8]) -> u32 {
        self.append_many(mailbox, &[message.to_vec()])[0]
    }

    /// APPEND many messages quickly: MULTIAPPEND with LITERAL+ literals, in
    /// batches of up to 500 messages / 16 MiB. Returns the UIDs (APPENDUID),
    /// in order.
    pub fn append_many(&mut self, mailbox: &str, messages: &[Vec<u8>]) -> Vec<u32> {
        const MAX_COUNT: usize = 500;
        const MAX_BYTES: usize = 16 << 20;
        let mbox = mailbox_arg(mailbox);
        let mut uids = Vec::with_capacity(messages.len());
        let mut i = 0;
        while i < messages.len() {
            let mut cmd = format!("APPEND {mbox}").into_bytes();
            let first = i;
            while i < messages.len()
                && i - first < MAX_COUNT
                && (i == first || cmd.len() + messages[i].len() < MAX_BYTES)
            {
                cmd.extend_from_slice(format!(" {{{}+}}\r\n", messages[i].len()).as_bytes());
                cmd.extend_from_slice(&messages[i]);
                i += 1;
            }
            let reply = self.command_bytes(&cmd).unwrap_or_else(|e| {
                panic!("IMAP APPEND of messages {first}..{i} to {mailbox:?}: {e}")
            });
            // [APPENDUID <uidvalidity> <uid-set>]
            let got = reply
                .text
                .strip_prefix("[APPENDUID ")
                .and_then(|t| t.split(']').next())
                .and_then(|t| t.split_whitespace().nth(1))
                .map(parse_uid_set)
                .unwrap_or_else(|| Err(format!("no APPENDUID in {:?}", reply.text)))
                .unwrap_or_else(|e| panic!("IMAP APPEND: {e}"));
            assert_eq!(
                got.len(),
                i - first,
                "APPENDUID {:?} for {} messages",
                reply.text,
                i - first
            );
            uids.extend(got);
        }
        uids
    }

    /// SELECT (read-write); returns the number of messages.
    pub fn select(&mut self, mailbox: &str) -> u32 {
        let reply = self.must(&format!("SELECT {}", mailbox_arg(mailbox)));
        exists(&reply)
    }

    /// EXAMINE (read-only: no flag changes, \Recent kept); returns the number
    /// of messages.
    pub fn examine(&mut self, mailbox: &str) -> u32 {
        let reply = self.must(&format!("EXAMINE {}", mailbox_arg(mailbox)));
        exists(&reply)
    }

    /// All UIDs of a mailbox, ascending.
    pub fn uids(&mut self, mailbox: &str) -> Vec<u32> {
        if self.select(mailbox) == 0 {
            return Vec::new();
        }
        let reply = self.must("UID SEARCH ALL");
        let mut uids: Vec<u32> = reply
            .untagged
            .iter()
            .filter(|r| r.kind == "SEARCH")
            .flat_map(|r| {
                r.text()
                    .split_whitespace()
                    .map(|n| {
                        n.parse::<u32>()
                            .unwrap_or_else(|_| panic!("bad SEARCH response {r}"))
                    })
                    .collect::<Vec<_>>()
            })
            .collect();
        uids.sort_unstable();
        uids
    }

    /// SELECT the mailbox and UID FETCH `items` (use BODY.PEEK to leave
    /// \Seen alone) over `uids` (e.g. `1:*`); returns each message's items.
    pub fn fetch(&mut self, mailbox: &str, uids: &str, items: &str) -> Vec<Vec<(String, Value)>> {
        if self.select(mailbox) == 0 {
            return Vec::new();
        }
        let reply = self.must(&format!("UID FETCH {uids} ({items})"));
        reply
            .untagged
            .iter()
            .filter(|r| r.kind == "FETCH")
            .map(|r| {
                r.fetch_items()
                    .unwrap_or_else(|e| panic!("IMAP FETCH: {e}"))
            })
            .collect()
    }

    /// (uid, Message-ID) of every message, by UID; the Message-ID as written,
    /// e.g. `<id@host>`, `None` where there is none.
    pub fn fetch_message_ids(&mut self, mailbox: &str) -> Vec<(u32, Option<String>)> {
        let mut out: Vec<(u32, Option<String>)> = self
            .fetch(mailbox, "1:*", "UID BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)]")
            .iter()
            .map(|items| {
                let uid = item(items, "UID")
                    .and_then(Value::number)
                    .expect("FETCH without UID");
                let header = items
                    .iter()
                    .find(|(k, _)| k.starts_with("BODY[HEADER.FIELDS"))
                    .and_then(|(_, v)| v.bytes())
                    .unwrap_or_default();
                (uid, header_message_id(header))
            })
            .collect();
        out.sort_by_key(|(uid, _)| *uid);
        out
    }

    /// The raw message with this UID (without setting \Seen).
    pub fn fetch_raw(&mut self, mailbox: &str, uid: u32) -> Vec<u8> {
        let all = self.fetch(mailbox, &uid.to_string(), "UID BODY.PEEK[]");
        all.iter()
            .find(|items| item(items, "UID").and_then(Value::number) == Some(uid))
            .and_then(|items| item(items, "BODY[]"))
            .and_then(Value::bytes)
            .unwrap_or_else(|| panic!("no message with UID {uid} in {mailbox:?}"))
            .to_vec()
    }

    /// The flags of the message with this UID, e.g. `["\\Seen"]`.
    pub fn flags(&mut self, mailbox: &str, uid: u32) -> Vec<String> {
        let all = self.fetch(mailbox, &uid.to_string(), "UID FLAGS");
        all.iter()
            .find(|items| item(items, "UID").and_then(Value::number) == Some(uid))
            .and_then(|items| item(items, "FLAGS"))
            .and_then(Value::list)
            .unwrap_or_else(|| panic!("no message with UID {uid} in {mailbox:?}"))
            .iter()
            .filter_map(|v| v.atom().map(str::to_string))
            .collect()
    }

    /// SELECT the mailbox and `UID STORE <uids> <change>`, e.g.
    /// `imap.store("INBOX", "1:3", "+FLAGS (\\Seen)")`.
    pub fn store(&mut self, mailbox: &str, uids: &str, change: &str) {
        self.select(mailbox);
        self.must(&format!("UID STORE {uids} {change}"));
    }

    /// STATUS: (messages, uidvalidity, uidnext).
    pub fn status(&mut self, mailbox: &str) -> (u32, u32, u32) {
        let reply = self.must(&format!(
            "STATUS {} (MESSAGES UIDVALIDITY UIDNEXT)",
            mailbox_arg(mailbox)
        ));
        let r = reply
            .untagged
            .iter()
            .find(|r| r.kind == "STATUS")
            .unwrap_or_else(|| panic!("no STATUS response for {mailbox:?}"));
        let values = r
            .values()
            .unwrap_or_else(|e| panic!("bad STATUS response {r}: {e}"));
        let list = values
            .get(1)
            .and_then(Value::list)
            .unwrap_or_else(|| panic!("bad STATUS response {r}"));
        let get = |name: &str| -> u32 {
            list.chunks(2)
                .find(|kv| kv[0].atom().is_some_and(|a| a.eq_ignore_ascii_case(name)))
                .and_then(|kv| kv.get(1)?.number())
                .unwrap_or_else(|| panic!("no {name} in STATUS response {r}"))
        };
        (get("MESSAGES"), get("UIDVALIDITY"), get("UIDNEXT"))
    }

    /// LOGOUT and close.
    pub fn logout(mut self) {
        let _ = self.command("LOGOUT");
    }
}

fn item<'a>(items: &'a [(String, Value)], name: &str) -> Option<&'a Value> {
    items.iter().find(|(k, _)| k == name).map(|(_, v)| v)
}

fn exists(reply: &Reply) -> u32 {
    reply
        .untagged
        .iter()
        .rev()
        .find(|r| r.kind == "EXISTS")
        .and_then(|r| r.number)
        .expect("no EXISTS in the SELECT/EXAMINE reply")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_imap_values() {
        let wire = b"(UID 7 FLAGS (\\Seen $Junk) BODY[HEADER.FIELDS (MESSAGE-ID)] {23}\r\nMessage-ID: <a@b>\r\n\r\n INTERNALDATE \"1-Jan-2020 00:00:00 +0000\" X NIL)";
        let v = parse_values(wire, &mut 0, false).unwrap();
        let items = v[0].list().unwrap();
        assert_eq!(items[0], Value::Atom("UID".into()));
        assert_eq!(items[1].number(), Some(7));
        assert_eq!(items[3].list().unwrap()[1], Value::Atom("$Junk".into()));
        assert_eq!(
            items[4],
            Value::Atom("BODY[HEADER.FIELDS (MESSAGE-ID)]".into())
        );
        assert_eq!(
            header_message_id(items[5].bytes().unwrap()).as_deref(),
            Some("<a@b>")
        );
        assert_eq!(items[7].bytes(), Some(&b"1-Jan-2020 00:00:00 +0000"[..]));
        assert_eq!(items[9], Value::Nil);
        assert_eq!(literal_len(b"* 1 FETCH (BODY[] {12}\r\n"), Some(12));
        assert_eq!(literal_len(b"t1 APPEND x {12+}\r\n"), Some(12));
        assert_eq!(literal_len(b"* OK done\r\n"), None);
        assert_eq!(parse_uid_set("1:3,7").unwrap(), vec![1, 2, 3, 7]);
        assert_eq!(modified_utf7("Entwürfe & Müll"), "Entw&APw-rfe &- M&APw-ll");
        assert_eq!(modified_utf7("日本語"), "&ZeVnLIqe-");
        assert_eq!(
            header_message_id(b"Message-Id:\r\n <folded@x>\r\n").as_deref(),
            Some("<folded@x>")
        );
    }
}
