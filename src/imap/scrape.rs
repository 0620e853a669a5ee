//! The text scrapers async-imap forces on us, in one place. async-imap
//! 0.12 reports a server's NO/BAD, a BYE, a cut-short response and a parse
//! failure as text (some of it its own `Debug` output), and native-tls
//! reports OpenSSL's reasons as text: these functions turn that text into
//! one sentence for the user. Each is pinned by a unit test on the exact
//! forms seen, so that a dependency upgrade that changes them fails here
//! and not silently in front of a user.

/// The server's own words from async-imap's NO/BAD text, which is Rust
/// Debug formatting: `code: None, info: Some("[AUTHENTICATIONFAILED]
/// Authentication failed.")` or `outcome: Outcome { code: …,
/// information: Some("…") }`. The quoted string is read back with its
/// escapes undone (quotes and parentheses inside it included), so that
/// the server's text is quoted once, as it sent it.
pub(super) fn server_text(m: &str) -> String {
    for key in ["information: ", "info: "] {
        let Some(i) = m.find(key) else { continue };
        let rest = &m[i + key.len()..];
        if rest.starts_with("None") {
            return "no reason given".into();
        }
        if let Some(text) = rest.strip_prefix("Some(\"").and_then(debug_string) {
            return text.replace(char::is_control, " ");
        }
    }
    m.trim().to_string()
}

/// The contents of a Rust Debug string literal whose opening quote has
/// been read, up to its closing quote, escapes undone; `None` when it
/// does not close.
fn debug_string(s: &str) -> Option<String> {
    let mut out = String::new();
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        match c {
            '"' => return Some(out),
            '\\' => match chars.next()? {
                'n' => out.push('\n'),
                'r' => out.push('\r'),
                't' => out.push('\t'),
                '0' => out.push('\0'),
                'u' => {
                    let hex: String = chars.by_ref().skip(1).take_while(|c| *c != '}').collect();
                    out.push(
                        u32::from_str_radix(&hex, 16)
                            .ok()
                            .and_then(char::from_u32)?,
                    );
                }
                other => out.push(other),
            },
            c => out.push(c),
        }
    }
    None
}

/// What an I/O error from async-imap means, in words: it reports a
/// server's BYE, a response cut short, an oversized literal and a parse
/// failure all as I/O errors, some in Debug form.
pub(super) fn io_text(io: &std::io::Error) -> String {
    let m = io.to_string();
    // A deflate stream (COMPRESS=DEFLATE) cut off by the end of the
    // connection: zlib's "buffer error" at the end of input, as
    // async-compression words it. The same event as the uncompressed case.
    if m.contains("bytes remaining in stream") || m == "unexpected BufError" {
        "the server closed the connection in the middle of a response".into()
    } else if m.contains("incoming data too large") {
        "the server announced a response larger than 512 MiB (refused)".into()
    } else if m.contains("status: Bye") {
        format!("the server ended the session (BYE {})", server_text(&m))
    } else if let Some(status) = m
        .strip_prefix("status: ")
        .and_then(|r| r.split_once(", outcome: "))
        .map(|(s, _)| s.to_ascii_uppercase())
    {
        format!("the server answered {status} ({})", server_text(&m))
    } else if let Some((_, bad)) = m.split_once("during parsing of ") {
        // The response as async-imap quotes it (Debug), read back.
        let said = bad
            .strip_prefix('"')
            .and_then(debug_string)
            .unwrap_or_else(|| bad.to_string());
        let excerpt: String = said
            .lines()
            .next()
            .unwrap_or("")
            .chars()
            .take(60)
            .map(|c| if c.is_control() { '?' } else { c })
            .collect();
        format!("the server sent a response that is not IMAP ({excerpt})")
    } else {
        format!("the connection failed ({m})")
    }
}

/// One sentence for a failed TLS handshake: OpenSSL's reason without its
/// source-file noise, and what to do about it.
pub(super) fn tls_failure(host: &str, port: u16, detail: &str) -> String {
    let at = crate::config::endpoint(host, port);
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
            "{at} answered without TLS, so it is not an implicit-TLS (IMAPS) port: set tls = \"starttls\" for this port (usually 143), or use port 993 with tls = \"implicit\""
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
        return format!(
            "the TLS handshake with {at} failed: {reason} (check the host, port and tls settings)"
        );
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
    format!("the TLS certificate of {at} could not be verified: {reason} ({hint})")
}

/// One sentence for a greeting that is not IMAP, naming the likely
/// mistake from what the server said: async-imap's parse error carries
/// the bytes as `during parsing of "…"`.
pub(super) fn not_imap(host: &str, port: u16, error: &str) -> String {
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
        format!("{} did not greet like an IMAP server: check the port (993 with tls = \"implicit\", 143 with \"starttls\")", crate::config::endpoint(host, port))
    } else {
        let excerpt = excerpt.split_whitespace().collect::<Vec<_>>().join(" ");
        format!("{} is {what}, not IMAP (its greeting: {excerpt} …): set port to the IMAP port (993 with tls = \"implicit\", 143 with \"starttls\")", crate::config::endpoint(host, port))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_text_takes_the_servers_words() {
        // async-imap's NO text (its Debug of the response).
        assert_eq!(
            server_text(
                "code: None, information: Some(\"[AUTHENTICATIONFAILED] Authentication failed.\")"
            ),
            "[AUTHENTICATIONFAILED] Authentication failed."
        );
        assert_eq!(
            server_text("code: None, info: Some(\"Mailbox \\\"x\\\" doesn't exist\")"),
            "Mailbox \"x\" doesn't exist"
        );
        assert_eq!(
            server_text("code: None, information: None"),
            "no reason given"
        );
        assert_eq!(server_text(" plain words "), "plain words");
    }

    #[test]
    fn io_text_names_what_happened() {
        let io = |m: &str| std::io::Error::other(m.to_string());
        assert_eq!(
            io_text(&io("bytes remaining in stream")),
            "the server closed the connection in the middle of a response"
        );
        assert!(io_text(&io("incoming data too large")).contains("larger than 512 MiB"));
        assert_eq!(
            io_text(&io(
                "Response { status: Bye, code: None, information: Some(\"going away\") }"
            )),
            "the server ended the session (BYE going away)"
        );
        assert_eq!(
            io_text(&io(
                "Unable to parse status response: error during parsing of \"garbage\\r\\n\""
            )),
            "the server sent a response that is not IMAP (garbage)"
        );
        assert_eq!(io_text(&io("reset")), "the connection failed (reset)");
    }

    #[test]
    fn tls_failure_gives_the_reason_and_what_to_do() {
        let m = tls_failure(
            "h",
            993,
            "error:0A000086:SSL routines:tls_post_process_server_certificate:certificate verify failed:../ssl/statem/statem_clnt.c:1889: (self-signed certificate)",
        );
        assert_eq!(m, "the TLS certificate of h:993 could not be verified: self-signed certificate (if the server is self-hosted, set tls-ca-file to its CA certificate)");
        let m = tls_failure("h", 143, "error:0A00010B:SSL routines:ssl3_get_record:wrong version number:../ssl/record/ssl3_record.c:354:");
        assert!(m.starts_with("h:143 answered without TLS"), "{m}");
        let m = tls_failure("h", 993, "x (certificate has expired)");
        assert!(
            m.contains("has expired; its administrator must renew it"),
            "{m}"
        );
        let m = tls_failure("h", 993, "handshake failure");
        assert!(
            m.starts_with("the TLS handshake with h:993 failed: handshake failure"),
            "{m}"
        );
    }

    #[test]
    fn not_imap_names_the_other_protocol() {
        let parse = |greeting: &str| {
            format!("Unable to parse status response: error during parsing of \"{greeting}\"")
        };
        assert!(not_imap(
            "h",
            4190,
            &parse("\\\"IMPLEMENTATION\\\" \\\"Dovecot Pigeonhole\\\"\\r\\n")
        )
        .contains("is a ManageSieve server"));
        assert!(not_imap("h", 24, &parse("220 mx LMTP ready\\r\\n")).contains("is an LMTP server"));
        assert!(
            not_imap("h", 25, &parse("220 mx ESMTP\\r\\n")).contains("is an SMTP or LMTP server")
        );
        assert!(not_imap("h", 110, &parse("+OK POP3\\r\\n")).contains("is a POP3 server"));
        assert!(not_imap("h", 22, &parse("SSH-2.0-OpenSSH\\r\\n")).contains("is an SSH server"));
        assert!(not_imap("h", 1, "").contains("did not greet like an IMAP server"));
    }
}
