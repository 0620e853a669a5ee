//! Wrong ports and a refused STARTTLS (issues 11 and 18): each is one
//! sentence naming the likely mistake, within a few seconds, never a
//! parser dump or a certificate complaint.

use crate::harness::Dovecot;
use crate::quirks::{proxy, Quirk};
use std::time::{Duration, Instant};

#[test]
fn wrong_ports_name_the_mistake_quickly() {
    let Some(dc) = Dovecot::start_or_skip("wrong_ports") else {
        return;
    };
    let (refusing, _) = proxy(dc.imap_port, Quirk::RefuseStarttls);
    let dir = crate::sweep::tempdir("wrong-ports");
    let cases: [(u16, &str, &str); 6] = [
        (dc.sieve_port, "plain", "is a ManageSieve server"),
        (dc.lmtp_port, "plain", "is an SMTP or LMTP server"),
        (dc.imap_port, "implicit", "answered without TLS"),
        (dc.imaps_port, "starttls", "expects TLS from the first byte"),
        (dc.imaps_port, "plain", "expects TLS from the first byte"),
        (
            refusing,
            "starttls",
            "refused to start it (the server said \"STARTTLS failed\")",
        ),
    ];
    for (port, tls, expect) in cases {
        let cfg = dir.join("config.toml");
        std::fs::write(
            &cfg,
            format!(
                "[accounts.alice]\nhost = \"127.0.0.1\"\nport = {port}\ntls = \"{tls}\"\ntls-ca-file = \"{}\"\nusername = \"alice\"\npassword.env = \"PW\"\n",
                dc.ca_file.display()
            ),
        )
        .unwrap();
        let t = Instant::now();
        let o = crate::util::backscatter(&dir, &cfg, &["clean", "--dry-run"])
            .env("PW", "alicepw")
            .output()
            .unwrap();
        let took = t.elapsed();
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(1), "{port} {tls}: {err}");
        assert!(err.contains(expect), "{port} {tls}: {err}");
        assert_eq!(err.lines().count(), 1, "one sentence: {err}");
        assert!(err.len() < 400, "short: {err}");
        assert!(!err.contains("certificate"), "{err}");
        assert!(!err.contains("Error {") && !err.contains("Some("), "{err}");
        // Generous for a loaded machine; the server answers at once and
        // the TLS probe takes 3 s.
        assert!(took < Duration::from_secs(12), "{port} {tls}: {took:?}");
        eprintln!(
            "port {port}, tls = {tls}: {:.1} s: {}",
            took.as_secs_f64(),
            err.trim()
        );
    }

    // The IMAP port given as the ManageSieve port: IMAP greets and waits,
    // which took the whole command timeout (120 s) before.
    let cfg = dir.join("config.toml");
    std::fs::write(
        &cfg,
        format!(
            "[accounts.alice]\nhost = \"127.0.0.1\"\nport = {}\ntls = \"plain\"\nusername = \"alice\"\npassword.env = \"PW\"\n[accounts.alice.sieve]\nport = {}\ntls = \"plain\"\n",
            dc.imap_port, dc.imap_port
        ),
    )
    .unwrap();
    let t = Instant::now();
    let o = crate::util::backscatter(&dir, &cfg, &["sieve", "status"])
        .env("PW", "alicepw")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(err.contains("is an IMAP server, not ManageSieve"), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(t.elapsed() < Duration::from_secs(12), "{:?}", t.elapsed());

    // The IMAPS port given as the ManageSieve port (STARTTLS): nothing is
    // said until a TLS ClientHello; the probe names it within seconds
    // instead of the 20 s greeting timeout.
    std::fs::write(
        &cfg,
        format!(
            "[accounts.alice]\nhost = \"127.0.0.1\"\nport = {}\ntls = \"plain\"\nusername = \"alice\"\npassword.env = \"PW\"\n[accounts.alice.sieve]\nport = {}\ntls = \"starttls\"\n",
            dc.imap_port, dc.imaps_port
        ),
    )
    .unwrap();
    let t = Instant::now();
    let o = crate::util::backscatter(&dir, &cfg, &["sieve", "status"])
        .env("PW", "alicepw")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(err.contains("expects TLS from the first byte"), "{err}");
    assert!(err.contains("not the ManageSieve port"), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(t.elapsed() < Duration::from_secs(12), "{:?}", t.elapsed());
}
