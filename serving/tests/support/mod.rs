//! Running the real `serving` binary from the test binaries that need it (included as
//! `mod support;`; not every binary uses every piece).
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::Duration;

use testkit::ml_small;

/// Kills a whole process group on drop: the command and whatever it started (pytest's demo).
pub struct Group(pub Child);

impl Group {
    pub fn spawn(command: &mut Command) -> Self {
        use std::os::unix::process::CommandExt;
        let child = command.process_group(0).spawn().unwrap_or_else(|e| panic!("starting {command:?}: {e}"));
        Group(child)
    }

    /// Waits for the command until `deadline`; None when it had to be killed.
    pub fn wait(&mut self, deadline: Duration) -> Option<ExitStatus> {
        testkit::poll_until_blocking(deadline, || {
            self.0.try_wait().expect("waiting for a child process").ok_or_else(|| "running".to_owned())
        })
        .ok()
    }
}

impl Group {
    /// kill -9 of the whole group, and the reaping.
    pub fn kill(&mut self) {
        let group = format!("-{}", self.0.id());
        let _ = Command::new("kill").args(["-KILL", "--", &group]).stderr(Stdio::null()).status();
        let _ = self.0.wait();
    }
}

impl Drop for Group {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A command's output so far, from its log file.
pub fn log_of(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

/// Runs `command` as a [`Group`], stdin closed, stdout and stderr both written to `log`, and
/// waits for it until `deadline`.
///
/// # Panics
/// With the log, when the command had to be killed at the deadline or failed; `what` names it.
pub fn run_logged(what: &str, command: &mut Command, log: &Path, deadline: Duration) {
    let out = std::fs::File::create(log).expect("a log file");
    let second = out.try_clone().expect("a second handle on the log");
    let mut group = Group::spawn(command.stdin(Stdio::null()).stdout(second).stderr(out));
    let status = group.wait(deadline);
    let output = log_of(log);
    match status {
        None => panic!("{what} did not finish within {deadline:?}; its output so far:\n{output}"),
        Some(status) => assert!(status.success(), "{what} failed ({status}):\n{output}"),
    }
}

/// A `serving demo` on ml-latest-small with its own database and journal, and its URL once
/// it printed it ("CineData demo: http://..."). No snapshots.
pub fn start_demo(dir: &Path) -> (Group, String) {
    start_demo_with(dir, None)
}

/// [`start_demo`], keeping model snapshots in `snapshots` when given.
pub fn start_demo_with(dir: &Path, snapshots: Option<&Path>) -> (Group, String) {
    let log = std::fs::OpenOptions::new().create(true).append(true).open(dir.join("demo.log")).expect("a log file");
    let snapshots = snapshots.map(|p| p.display().to_string()).unwrap_or_default();
    let mut demo = Group::spawn(
        Command::new(env!("CARGO_BIN_EXE_serving"))
            .arg("demo")
            .arg("--data")
            .arg(ml_small())
            // One retrain after the replay, none after it.
            .args(["--listen", "127.0.0.1:0", "--retrain-every", "0", "--retrain-interval", "0"])
            .arg(format!("--snapshot-dir={snapshots}"))
            .arg("--database-url")
            .arg(format!("sqlite://{}", dir.join("cinedata.db").display()))
            .arg("--journal")
            .arg(dir.join("ratings.journal"))
            .env("RUST_LOG", "warn")
            .env_remove("CINEDATA_API_KEY")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(log),
    );
    let stdout = demo.0.stdout.take().expect("piped stdout");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if let Some(rest) = line.strip_prefix("CineData demo: ") {
                let _ = tx.send(rest.split_whitespace().next().unwrap_or_default().to_owned());
            }
        }
    });
    let address = rx
        .recv_timeout(Duration::from_secs(120))
        .unwrap_or_else(|_| panic!("the demo did not print its address:\n{}", log_of(&dir.join("demo.log"))));
    (demo, address)
}
