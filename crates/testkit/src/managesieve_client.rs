//! A small blocking ManageSieve client (RFC 5804: AUTHENTICATE PLAIN
//! without TLS, PUTSCRIPT, SETACTIVE, LISTSCRIPTS), independent of the
//! product's, for setting up and checking scripts.

use crate::imap_client::IO_TIMEOUT;
use base64::Engine;
use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::time::Duration;

/// A logged-in ManageSieve connection (AUTHENTICATE PLAIN, no TLS).
pub struct ManageSieve {
    reader: BufReader<TcpStream>,
    writer: TcpStream,
    /// the capability lines of the greeting, e.g. `"SIEVE" "fileinto ..."`
    pub capabilities: Vec<String>,
}

impl ManageSieve {
    pub fn connect(port: u16, user: &str, pass: &str) -> Result<ManageSieve, String> {
        let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
        let stream =
            TcpStream::connect_timeout(&addr, Duration::from_secs(5)).map_err(|e| e.to_string())?;
        stream
            .set_read_timeout(Some(IO_TIMEOUT))
            .map_err(|e| e.to_string())?;
        let writer = stream.try_clone().map_err(|e| e.to_string())?;
        let mut s = ManageSieve {
            reader: BufReader::new(stream),
            writer,
            capabilities: Vec::new(),
        };
        s.capabilities = s.response("greeting")?;
        let token = base64::engine::general_purpose::STANDARD
            .encode(format!("\0{user}\0{pass}").as_bytes());
        s.command(&format!("AUTHENTICATE \"PLAIN\" \"{token}\""))?;
        Ok(s)
    }

    /// The lines up to a final OK (returned without it); NO/BYE is an error.
    fn response(&mut self, what: &str) -> Result<Vec<String>, String> {
        let mut lines = Vec::new();
        loop {
            let mut line = String::new();
            let n = self
                .reader
                .read_line(&mut line)
                .map_err(|e| format!("ManageSieve {what}: {e}"))?;
            if n == 0 {
                return Err(format!("ManageSieve {what}: connection closed"));
            }
            let line = line.trim_end().to_string();
            if line == "OK" || line.starts_with("OK ") {
                return Ok(lines);
            }
            if line.starts_with("NO") || line.starts_with("BYE") {
                return Err(format!("ManageSieve {what}: {line}"));
            }
            lines.push(line);
        }
    }

    /// Send one command line; its response lines before the OK.
    pub fn command(&mut self, cmd: &str) -> Result<Vec<String>, String> {
        self.writer
            .write_all(format!("{cmd}\r\n").as_bytes())
            .map_err(|e| e.to_string())?;
        let verb = cmd.split(' ').next().unwrap_or(cmd).to_string();
        self.response(&verb)
    }

    /// PUTSCRIPT (the server compiles it: a script it rejects is an error).
    pub fn put(&mut self, name: &str, script: &str) -> Result<(), String> {
        self.command(&format!(
            "PUTSCRIPT \"{name}\" {{{}+}}\r\n{script}",
            script.len()
        ))
        .map(|_| ())
    }

    pub fn set_active(&mut self, name: &str) -> Result<(), String> {
        self.command(&format!("SETACTIVE \"{name}\"")).map(|_| ())
    }

    /// (name, active) of every script.
    pub fn list(&mut self) -> Result<Vec<(String, bool)>, String> {
        Ok(self
            .command("LISTSCRIPTS")?
            .iter()
            .filter_map(|l| {
                let rest = l.strip_prefix('"')?;
                let (name, tail) = rest.split_once('"')?;
                Some((name.to_string(), tail.trim() == "ACTIVE"))
            })
            .collect())
    }

    pub fn logout(mut self) {
        let _ = self.command("LOGOUT");
    }
}
