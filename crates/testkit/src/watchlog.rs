//! A child's stderr (the agent's log) collected line by line in the
//! background, and polling for a condition with a generous deadline (tests
//! must hold on a loaded 2-core machine).
//!
//! ```ignore
//! let mut child = cmd.stderr(Stdio::piped()).spawn()?;
//! let log = WatchLog::capture(&mut child);
//! log.wait_for_text("the agent to connect", Duration::from_secs(60), "connected to");
//! ...
//! let text = log.finish(); // after the child exited: every line
//! ```

use std::io::{BufRead, BufReader, Read};
use std::process::Child;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Poll `f` every 100 ms until it holds; panics after `timeout` with `what`
/// and `log()` (e.g. the agent's log so far).
pub fn wait_for(
    what: &str,
    timeout: Duration,
    log: &dyn Fn() -> String,
    mut f: impl FnMut() -> bool,
) {
    let start = Instant::now();
    while start.elapsed() < timeout {
        if f() {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!(
        "timed out after {timeout:?} waiting for {what}; log:\n{}",
        log()
    );
}

/// The lines a child writes to a pipe, collected by a background thread.
pub struct WatchLog {
    text: Arc<Mutex<String>>,
    reader: Option<JoinHandle<()>>,
}

impl WatchLog {
    /// Collect the child's stderr. Panics unless it was spawned with
    /// `stderr(Stdio::piped())`.
    pub fn capture(child: &mut Child) -> WatchLog {
        let stderr = child
            .stderr
            .take()
            .expect("the child's stderr is piped (Stdio::piped())");
        Self::read(stderr)
    }

    /// Collect the lines of any pipe (e.g. a child's stdout).
    pub fn read(pipe: impl Read + Send + 'static) -> WatchLog {
        let text = Arc::new(Mutex::new(String::new()));
        let reader = {
            let text = text.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                    let mut t = text.lock().unwrap_or_else(|e| e.into_inner());
                    t.push_str(&line);
                    t.push('\n');
                }
            })
        };
        WatchLog {
            text,
            reader: Some(reader),
        }
    }

    /// Everything read so far.
    pub fn text(&self) -> String {
        self.text.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Whether the text read so far contains `needle`.
    pub fn contains(&self, needle: &str) -> bool {
        self.text
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .contains(needle)
    }

    /// How often `needle` occurs in the text read so far.
    pub fn count(&self, needle: &str) -> usize {
        self.text
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .matches(needle)
            .count()
    }

    /// [`wait_for`] with this log shown on timeout.
    pub fn wait_for(&self, what: &str, timeout: Duration, f: impl FnMut() -> bool) {
        wait_for(what, timeout, &|| self.text(), f)
    }

    /// Wait until the log contains `needle`.
    pub fn wait_for_text(&self, what: &str, timeout: Duration, needle: &str) {
        self.wait_for(what, timeout, || self.contains(needle))
    }

    /// Wait for the end of the pipe (the child exited and closed it) and
    /// return everything read.
    pub fn finish(mut self) -> String {
        if let Some(r) = self.reader.take() {
            r.join().expect("the log reader thread panicked");
        }
        self.text()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn collects_lines_until_the_end_of_the_pipe() {
        let log = WatchLog::read(std::io::Cursor::new(
            b"connected to a\nmoved 1\r\nconnected to b".to_vec(),
        ));
        log.wait_for("both lines", Duration::from_secs(30), || {
            log.count("connected to") == 2
        });
        assert!(log.contains("moved 1"));
        assert_eq!(log.finish(), "connected to a\nmoved 1\nconnected to b\n");
    }

    #[test]
    #[should_panic(expected = "timed out after 200ms waiting for nothing; log:\nso far")]
    fn wait_for_names_what_it_waited_for_and_shows_the_log() {
        wait_for(
            "nothing",
            Duration::from_millis(200),
            &|| "so far".into(),
            || false,
        );
    }
}
