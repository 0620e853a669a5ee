//! The account's allow-list (`keep = [...]`): automated mail the user wants
//! kept even when it looks like backscatter. An entry is
//!
//! - an address (`billing@partner.example`): the From address;
//! - a domain or host name (`partner.example`, or `@partner.example`): the
//!   From address's domain, the MTA that wrote a delivery report
//!   (Reporting-MTA, RFC 3464) or a List-Id (RFC 2919), each also matching
//!   its subdomains;
//! - a List-Id in angle brackets (`<announce.lists.example>`): exactly
//!   that list.
//!
//! Pure: parsing, matching, and the entries' forms for the Sieve script.

/// The keyword a restore sets on a message, so that no sweep, agent or
/// server script moves it to quarantine again ("not backscatter"). RFC
/// 5788 registers `$`-prefixed keywords for such uses; this one is ours.
pub const NOT_BACKSCATTER: &str = "$NotBackscatter";

/// The keyword the server-side Sieve script gives each message it files
/// into quarantine (`fileinto :flags`, RFC 5232, where the server has
/// `imap4flags`): how `quarantine list` and `restore --all` tell what the
/// script filed from other mail in that mailbox.
pub const FILED_BY_SCRIPT: &str = "$BackscatterFiled";

/// One parsed entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rule {
    Address(String),
    Domain(String),
    ListId(String),
}

/// Parse one entry (as written in the config or given to `backscatter
/// keep`). Errors are one sentence saying what is allowed.
pub fn parse(entry: &str) -> Result<Rule, String> {
    let e = entry.trim();
    let bad = |why: &str| {
        Err(format!(
            "\"{}\" cannot be kept: {why} (give an address, a domain or host name, or a List-Id in <>)",
            e.replace(char::is_control, " ")
        ))
    };
    if e.is_empty() {
        return bad("it is empty");
    }
    // An address has at most 320 characters (RFC 5321 §4.5.3.1: 64 + 1 +
    // 255), a List-Id 255 (RFC 2919) plus its brackets; longer strings
    // would also break Sieve implementations' string limits.
    if e.len() > 320 {
        return Err(format!(
            "an entry of {} characters cannot be kept: an address, domain or List-Id is at most 320",
            e.len()
        ));
    }
    if e.chars()
        .any(|c| c.is_whitespace() || c.is_control() || c == '"' || c == '\\')
    {
        return bad("it contains spaces, quotes or control characters");
    }
    if let Some(inner) = e.strip_prefix('<').and_then(|r| r.strip_suffix('>')) {
        if inner.is_empty() || inner.contains(['<', '>']) {
            return bad("the List-Id is empty or malformed");
        }
        return Ok(Rule::ListId(inner.to_lowercase()));
    }
    // A domain entry also matches its subdomains: a bare top-level domain
    // (`com`, `@de`) or any other public suffix (`co.uk`, `co.jp`,
    // `github.io`: the Public Suffix List, through the `psl` crate) would
    // keep every bounce from a whole country, registry or hosting service,
    // which is never what is meant.
    let tld = |d: String| {
        let public =
            psl::suffix(d.as_bytes()).is_some_and(|s| s.is_known() && s.as_bytes() == d.as_bytes());
        if public && !d.contains('.') {
            Err(format!(
                "\"{d}\" cannot be kept: it is a top-level domain, and keeping it would keep mail from every domain under it (give the domain itself, like partner.{d})"
            ))
        } else if public {
            Err(format!(
                "\"{d}\" cannot be kept: it is a public suffix (names under it belong to many unrelated owners), and keeping it would keep mail from every domain under it (give the domain itself, like partner.{d})"
            ))
        } else if !d.contains('.') {
            Err(format!(
                "\"{d}\" cannot be kept: it is neither a domain nor an address (a name without a dot, like the local part of {d}@partner.example: give the whole address, or the domain)"
            ))
        } else {
            Ok(Rule::Domain(d))
        }
    };
    if let Some(d) = e.strip_prefix('@') {
        return domain(d).map_or_else(|| bad("it is not a domain"), tld);
    }
    if let Some((local, d)) = e.rsplit_once('@') {
        if local.is_empty() || domain(d).is_none() {
            return bad("it is not an address");
        }
        return Ok(Rule::Address(e.to_lowercase()));
    }
    domain(e).map_or_else(|| bad("it is not a domain"), tld)
}

fn domain(d: &str) -> Option<String> {
    let d = d.trim_end_matches('.').to_lowercase();
    (!d.is_empty()
        && d.split('.').all(|l| {
            !l.is_empty()
                && l.chars()
                    .all(|c| c.is_alphanumeric() || c == '-' || c == '_')
        }))
    .then_some(d)
}

/// The address in a From field value: inside the last `<...>`, else the
/// value itself; lowercased.
pub fn address_of(from: &str) -> Option<String> {
    let v = match (from.rfind('<'), from.rfind('>')) {
        (Some(a), Some(b)) if a < b => &from[a + 1..b],
        _ => from,
    };
    let v = v.trim().to_lowercase();
    v.contains('@').then_some(v)
}

/// The id of a List-Id field value (`Name <id>` or `id`), lowercased.
pub fn list_id_of(v: &str) -> Option<String> {
    let id = match (v.rfind('<'), v.rfind('>')) {
        (Some(a), Some(b)) if a < b => &v[a + 1..b],
        _ => v,
    };
    let id = id.trim().to_lowercase();
    (!id.is_empty()).then_some(id)
}

/// The host of a Reporting-MTA value (`dns; mx.example.org`), lowercased.
pub fn host_of(reporting_mta: &str) -> Option<String> {
    let h = reporting_mta
        .rsplit_once(';')
        .map_or(reporting_mta, |(_, h)| h)
        .trim()
        .trim_end_matches('.')
        .to_lowercase();
    (!h.is_empty()).then_some(h)
}

fn within(name: &str, domain: &str) -> bool {
    name == domain || name.ends_with(&format!(".{domain}"))
}

/// What the allow-list looks at in a message.
#[derive(Debug, Clone, Default)]
pub struct Seen<'a> {
    /// The From field value as written.
    pub from: Option<&'a str>,
    /// The List-Id field value as written.
    pub list_id: Option<&'a str>,
    /// The Reporting-MTA of a delivery report, as the classifier read it.
    pub reporting_mta: Option<&'a str>,
}

/// The first entry of `keep` that matches, if any. Entries that do not
/// parse match nothing (the config loader rejects them).
pub fn matches<'k>(keep: &'k [String], seen: &Seen<'_>) -> Option<&'k str> {
    let from = seen.from.and_then(address_of);
    let from_domain = from
        .as_deref()
        .and_then(|a| a.rsplit_once('@'))
        .map(|(_, d)| d.to_string());
    let list = seen.list_id.and_then(list_id_of);
    let host = seen.reporting_mta.and_then(host_of);
    keep.iter()
        .find(|entry| match parse(entry) {
            Ok(Rule::Address(a)) => from.as_deref() == Some(a.as_str()),
            Ok(Rule::ListId(id)) => list.as_deref() == Some(id.as_str()),
            Ok(Rule::Domain(d)) => [&from_domain, &host, &list]
                .into_iter()
                .any(|n| n.as_deref().is_some_and(|n| within(n, &d))),
            Err(_) => false,
        })
        .map(String::as_str)
}

/// Add `entry` to `[accounts.ACCOUNT] keep` in a config file's text,
/// keeping everything else (comments, layout) as written (`toml_edit`).
/// Returns the new text, or `None` when the entry is already there.
/// Errors are one sentence (the text is not TOML, the account is missing,
/// `keep` is not a list of strings).
pub fn add_to_config(text: &str, account: &str, entry: &str) -> Result<Option<String>, String> {
    let canonical = match parse(entry)? {
        Rule::Address(a) => a,
        Rule::Domain(d) => d,
        Rule::ListId(id) => format!("<{id}>"),
    };
    let mut doc: toml_edit::DocumentMut = text.parse().map_err(|e: toml_edit::TomlError| {
        format!("the config file is not valid TOML: {}", e.message())
    })?;
    let acc = doc
        .get_mut("accounts")
        .and_then(|a| a.get_mut(account))
        .filter(|a| a.is_table_like())
        .ok_or_else(|| format!("the config file has no [accounts.{account}] table"))?;
    if acc.get("keep").is_none() {
        acc.as_table_like_mut()
            .expect("checked above")
            .insert("keep", toml_edit::value(toml_edit::Array::new()));
    }
    let list = acc
        .get_mut("keep")
        .and_then(|k| k.as_array_mut())
        .ok_or_else(|| format!("accounts.{account}.keep is not a list"))?;
    let present = list.iter().any(|v| {
        v.as_str()
            .and_then(|s| parse(s).ok())
            .is_some_and(|r| Ok(r) == parse(&canonical))
    });
    if present {
        return Ok(None);
    }
    list.push(canonical);
    Ok(Some(doc.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    // Hand-written values (not from real messages).
    #[test]
    fn a_bare_top_level_domain_is_refused_with_a_sentence() {
        for e in ["com", "@de", "COM."] {
            let m = parse(e).unwrap_err();
            assert!(m.contains("top-level domain"), "{e}: {m}");
        }
        assert!(parse("partner.example").is_ok());
        assert!(parse("<announce>").is_ok(), "a List-Id without dots");
    }

    /// Newcomer round 3 #4: `co.jp` and `co.uk` were accepted and kept
    /// every bounce from Japanese and British companies. Public suffixes
    /// come from the Public Suffix List (the `psl` crate).
    #[test]
    fn a_public_suffix_is_refused_like_a_top_level_domain() {
        for e in ["co.uk", "co.jp", "@co.jp", "CO.UK.", "github.io", "com.au"] {
            let m = parse(e).unwrap_err();
            assert!(m.contains("is a public suffix"), "{e}: {m}");
        }
        for e in ["partner.co.uk", "mx.example.co.jp", "user.github.io"] {
            assert!(matches!(parse(e), Ok(Rule::Domain(_))), "{e}");
        }
        // A local part alone (or any word without a dot that is no
        // suffix) gets its own sentence.
        for e in ["MAILER-DAEMON", "postmaster", "example"] {
            let m = parse(e).unwrap_err();
            assert!(m.contains("neither a domain nor an address"), "{e}: {m}");
        }
    }

    #[test]
    fn entries_parse_to_their_kind() {
        assert_eq!(
            parse("Bob@Partner.example"),
            Ok(Rule::Address("bob@partner.example".into()))
        );
        assert_eq!(
            parse("@partner.example"),
            Ok(Rule::Domain("partner.example".into()))
        );
        assert_eq!(
            parse("mx1.partner.example."),
            Ok(Rule::Domain("mx1.partner.example".into()))
        );
        assert_eq!(
            parse("<dev.lists.example>"),
            Ok(Rule::ListId("dev.lists.example".into()))
        );
        for bad in ["", "a b", "x\"y", "@", "<>", "bob@", "@bad..example"] {
            assert!(parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn adding_to_the_config_keeps_its_comments() {
        let text = "# my accounts\n[accounts.work]\nhost = \"h\" # the server\nusername = \"u\"\n\n[accounts.work.sieve]\nport = 4190\n";
        let once = add_to_config(text, "work", "Partner.Example")
            .unwrap()
            .unwrap();
        assert!(
            once.contains("# my accounts") && once.contains("# the server"),
            "{once}"
        );
        assert!(once.contains("keep = [\"partner.example\"]"), "{once}");
        let twice = add_to_config(&once, "work", "ops@vendor.example")
            .unwrap()
            .unwrap();
        assert!(
            twice.contains("keep = [\"partner.example\", \"ops@vendor.example\"]"),
            "{twice}"
        );
        assert_eq!(
            add_to_config(&twice, "work", "@partner.example").unwrap(),
            None
        );
        // The result still loads, with the list.
        // (`config::parse` loading it is tested in the backscatter crate.)
        let doc: toml::Table = twice.parse().unwrap();
        assert_eq!(
            doc["accounts"]["work"]["keep"],
            toml::Value::Array(vec!["partner.example".into(), "ops@vendor.example".into()])
        );
        assert!(add_to_config(text, "home", "x.example").is_err());
        assert!(add_to_config(text, "work", "not an entry").is_err());
    }

    #[test]
    fn matching_by_sender_domain_reporting_host_and_list() {
        let keep: Vec<String> = [
            "partner.example",
            "<dev.lists.example>",
            "ops@vendor.example",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let m = |from: Option<&str>, list: Option<&str>, mta: Option<&str>| {
            matches(
                &keep,
                &Seen {
                    from,
                    list_id: list,
                    reporting_mta: mta,
                },
            )
        };
        assert_eq!(
            m(
                Some("MAILER-DAEMON <mailer-daemon@mx.partner.example>"),
                None,
                None
            ),
            Some("partner.example")
        );
        assert_eq!(
            m(
                Some("postmaster@other.example"),
                None,
                Some("dns; out.partner.example")
            ),
            Some("partner.example")
        );
        assert_eq!(
            m(None, Some("Dev <dev.lists.example>"), None),
            Some("<dev.lists.example>")
        );
        assert_eq!(
            m(Some("\"Ops\" <OPS@vendor.example>"), None, None),
            Some("ops@vendor.example")
        );
        assert_eq!(m(Some("ops@notpartner.example"), None, None), None);
        assert_eq!(
            m(
                Some("x@vendor.example"),
                Some("<other.lists.example>"),
                None
            ),
            None
        );
    }
}
