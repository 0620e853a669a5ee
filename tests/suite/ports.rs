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

/// A TCP forwarder on `[::1]` to `127.0.0.1:target` (the test Dovecot
/// listens on IPv4 only): the port it listens on.
fn ipv6_forwarder(target: u16) -> u16 {
    let listener = std::net::TcpListener::bind("[::1]:0").expect("IPv6 loopback");
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for client in listener.incoming() {
            let Ok(client) = client else { continue };
            let Ok(server) = std::net::TcpStream::connect(("127.0.0.1", target)) else {
                continue;
            };
            for (mut from, mut to) in [
                (client.try_clone().unwrap(), server.try_clone().unwrap()),
                (server, client),
            ] {
                std::thread::spawn(move || {
                    let _ = std::io::copy(&mut from, &mut to);
                    let _ = to.shutdown(std::net::Shutdown::Write);
                });
            }
        }
    });
    port
}

#[test]
fn ipv6_endpoints_print_in_brackets() {
    let Some(dc) = Dovecot::start_or_skip("ipv6_endpoints") else {
        return;
    };
    let dir = crate::sweep::tempdir("ipv6-endpoints");
    let (imap6, sieve6) = (ipv6_forwarder(dc.imap_port), ipv6_forwarder(dc.sieve_port));
    let cfg = dir.join("config.toml");
    let write = |imap: u16, sieve: u16| {
        std::fs::write(
            &cfg,
            format!(
                "[accounts.alice]\nhost = \"::1\"\nport = {imap}\ntls = \"plain\"\nusername = \"alice\"\npassword.env = \"PW\"\n[accounts.alice.sieve]\nport = {sieve}\ntls = \"plain\"\n"
            ),
        )
        .unwrap()
    };
    let run = |args: &[&str]| {
        let o = crate::util::backscatter(&dir, &cfg, args)
            .env("PW", "alicepw")
            .output()
            .unwrap();
        (
            o.status.code(),
            String::from_utf8_lossy(&o.stdout).into_owned(),
            String::from_utf8_lossy(&o.stderr).into_owned(),
        )
    };

    // Working servers: account check names both endpoints in brackets.
    write(imap6, sieve6);
    let (code, out, err) = run(&["account", "check"]);
    assert_eq!(code, Some(0), "{out}{err}");
    assert!(
        out.contains(&format!("logged in to [::1]:{imap6} as alice")),
        "{out}"
    );
    assert!(
        out.contains(&format!("ManageSieve: [::1]:{sieve6} (")),
        "{out}"
    );

    // IMAP errors: the ManageSieve port as the IMAP port, and a closed port.
    write(sieve6, sieve6);
    let (code, _, err) = run(&["clean", "--dry-run"]);
    assert_eq!(code, Some(1), "{err}");
    assert!(
        err.contains(&format!("[::1]:{sieve6} is a ManageSieve server")),
        "{err}"
    );
    let closed = {
        let l = std::net::TcpListener::bind("[::1]:0").unwrap();
        l.local_addr().unwrap().port()
    };
    write(closed, sieve6);
    let (code, _, err) = run(&["account", "check"]);
    assert_eq!(code, Some(1), "{err}");
    assert!(
        err.contains(&format!("cannot connect to [::1]:{closed}")),
        "{err}"
    );

    // ManageSieve errors: the IMAP port as the ManageSieve port, and a
    // closed port.
    write(imap6, imap6);
    let (code, _, err) = run(&["sieve", "status"]);
    assert_eq!(code, Some(1), "{err}");
    assert!(
        err.contains(&format!("[::1]:{imap6} is an IMAP server, not ManageSieve")),
        "{err}"
    );
    write(imap6, closed);
    let (_, out, err) = run(&["sieve", "status"]);
    assert!(
        format!("{out}{err}").contains(&format!("ManageSieve [::1]:{closed}")),
        "{out}{err}"
    );
    for text in [out, err] {
        assert!(!text.contains("::1:"), "{text}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}
