//! What the tests of this crate share: running a built example with a bounded wait.

use std::ffi::OsStr;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// Where cargo built example `name` for this test.
fn example_path(name: &str) -> PathBuf {
    // This test runs as target/<profile>/deps/examples-<hash>; the examples are built into
    // target/<profile>/examples/.
    let exe = std::env::current_exe().expect("the test knows where it is");
    let profile_dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("target/<profile>");
    profile_dir
        .join("examples")
        .join(format!("{name}{}", std::env::consts::EXE_SUFFIX))
}

/// Runs example `name` with `args` and `envs` (besides `RUST_LOG=info` and `NO_COLOR=1`),
/// waiting at most 120 s; returns whether it exited 0 and its stdout and stderr.
pub(crate) fn run(name: &str, args: &[&str], envs: &[(&str, &OsStr)]) -> (bool, String) {
    let path = example_path(name);
    assert!(
        path.is_file(),
        "example {name} was not built at {}",
        path.display()
    );
    let child = Command::new(&path)
        .args(args)
        .env("RUST_LOG", "info")
        .env("NO_COLOR", "1")
        .envs(envs.iter().copied())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the example starts");
    let id = child.id();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    match rx.recv_timeout(Duration::from_secs(120)) {
        Ok(output) => {
            let output = output.expect("the example finishes");
            let text = format!(
                "{}{}",
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            );
            (output.status.success(), text)
        }
        Err(_) => {
            let _ = Command::new("kill")
                .args(["-KILL", &id.to_string()])
                .status();
            panic!("example {name} did not finish within 120 s");
        }
    }
}
