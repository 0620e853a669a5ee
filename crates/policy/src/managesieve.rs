//! ManageSieve (RFC 5804) without I/O: the response codec, SASL steps,
//! string arguments, and the names and wrapper script of an install (RFC 6609
//! `include`).
//!
//! [`parse_response`] is pure: bytes in, a complete response (data lines and
//! the final OK/NO/BYE) out, or "need more" (`Ok(None)`); a malformed
//! response is an `Err` with a short description. The client that does the
//! I/O is `backscatter::managesieve`.

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

    /// The response code of the status line (RFC 5804 §1.3), upper-cased
    /// and without its parentheses or arguments: `QUOTA/MAXSIZE` for
    /// `NO (QUOTA/MAXSIZE) "..."`. `None` when there is none.
    pub fn code(&self) -> Option<String> {
        self.rest.iter().find_map(|i| match i {
            Item::Atom(a) if a.starts_with('(') => a[1..]
                .trim_end_matches(')')
                .split_whitespace()
                .next()
                .map(str::to_ascii_uppercase),
            _ => None,
        })
    }

    /// A refusal because the script is too large (`QUOTA/MAXSIZE`, RFC
    /// 5804 §1.3, answered to HAVESPACE, CHECKSCRIPT or PUTSCRIPT), with
    /// the limit in bytes when the text states it, as Dovecot ("Script is
    /// too large (max 32768 bytes).") and Cyrus ("Max script size is
    /// 32768 bytes") do: `Some(None)` when it does not, `None` for any
    /// other response.
    pub fn too_large(&self) -> Option<Option<usize>> {
        if self.ok() || self.code().as_deref() != Some("QUOTA/MAXSIZE") {
            return None;
        }
        let text = self.text();
        Some(
            text.split(|c: char| !c.is_ascii_digit())
                .filter_map(|n| n.parse::<usize>().ok())
                .rfind(|&n| n > 0),
        )
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

/// The `SIEVE` extensions and whether `STARTTLS` is offered, from a
/// capability response (RFC 5804 §1.7).
pub fn caps_of(r: &Response) -> (String, bool) {
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
    wrapper_of(&[users])
}

/// The include wrapper (RFC 6609) that runs [`SCRIPT`] and then each of
/// `scripts` in order (the user's rules uploaded as [`RULES`], then the
/// user's own script that was active): a `stop` in one ends them all, as
/// in one script.
pub fn wrapper_of(scripts: &[&str]) -> String {
    let named: Vec<String> = scripts
        .iter()
        .map(|n| format!("\"{}\"", n.replace(['\n', '\r'], " ")))
        .collect();
    let includes: String = scripts
        .iter()
        .map(|n| format!("include :personal {};\n", crate::sieve::quote(n)))
        .collect();
    format!(
        "# backscatter: runs the backscatter filter, then your own script{} {}.\n\
         # Remove with `backscatter sieve uninstall`, which re-activates yours.\n\
         require [\"include\"];\n\
         include :personal \"{SCRIPT}\";\n\
         {includes}",
        if scripts.len() > 1 { "s" } else { "" },
        named.join(" and "),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_size_refusal_and_its_limit_are_read_from_dovecot_and_cyrus() {
        // As Dovecot 2.3 (sieve_max_script_size = 32k) and Cyrus 3.6
        // timsieved answered HAVESPACE "x" 81010 in the harness.
        for (line, limit) in [
            (&b"NO (QUOTA/MAXSIZE) \"Script is too large (max 32768 bytes).\"\r\n"[..], Some(32768)),
            (b"NO (QUOTA/MAXSIZE) \"Script size is too large. Max script size is 32768 bytes\"\r\n", Some(32768)),
            (b"NO (quota/maxsize) \"too large\"\r\n", None),
        ] {
            let (r, _) = parse_response(line).unwrap().unwrap();
            assert_eq!(r.code().as_deref(), Some("QUOTA/MAXSIZE"));
            assert_eq!(r.too_large(), Some(limit), "{r:?}");
        }
        for other in [
            &b"NO (QUOTA/MAXSCRIPTS) \"Too many scripts (max 5).\"\r\n"[..],
            b"NO \"Expected script content as second parameter\"\r\n",
            b"OK\r\n",
        ] {
            let (r, _) = parse_response(other).unwrap().unwrap();
            assert_eq!(r.too_large(), None, "{r:?}");
        }
    }

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
    }
}
