//! The members' web app in real headless Chromium: runs the Playwright suite in `tests/web`
//! (Node's test runner) against this build's `kassa` binary. The suite starts its own
//! `kassa node --dev` on free loopback ports; screenshots land in `target/web-screenshots`.
//!
//! Needs Debian's Chromium (`/usr/bin/chromium`, or `KASSA_CHROMIUM`) and `playwright-core`
//! installed in `tests/web` — `bash .ci/test` installs both. Without them this test fails, saying
//! so; `KASSA_SKIP_BROWSER=1` skips it explicitly (and says that it did).

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The whole suite takes about five minutes on 2 cores, most of it waiting for 30-second periods
/// and one-minute votes (the shortest a society may have); this only bounds a hung browser.
const SUITE_DEADLINE: Duration = Duration::from_secs(900);

#[test]
fn a_member_does_everything_in_a_real_browser_and_the_pages_agree_with_the_api() {
    if std::env::var_os("KASSA_SKIP_BROWSER").is_some() {
        eprintln!("SKIPPED: the browser suite (KASSA_SKIP_BROWSER is set)");
        return;
    }
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/web");
    let chromium = std::env::var("KASSA_CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    assert!(
        PathBuf::from(&chromium).exists(),
        "{chromium} is missing: run `bash .ci/test` (installs Debian's chromium and playwright-core)"
    );
    assert!(
        dir.join("node_modules/playwright-core").exists(),
        "playwright-core is not installed in tests/web: run `bash .ci/test` (or `npm ci --prefix tests/web`)"
    );
    let shots = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/web-screenshots");
    let mut child = Command::new("node")
        .args(["--test", "--test-concurrency=1", "--test-reporter=spec"])
        .current_dir(&dir)
        .env("KASSA_BIN", env!("CARGO_BIN_EXE_kassa"))
        .env("KASSA_CHROMIUM", &chromium)
        .env("KASSA_SCREENSHOTS", &shots)
        .stdout(Stdio::inherit())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("node (Node.js 20 or later) runs the browser suite");
    let start = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if start.elapsed() > SUITE_DEADLINE {
            let _ = child.kill();
            panic!("the browser suite did not finish within {SUITE_DEADLINE:?}");
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    assert!(
        status.success(),
        "the browser suite failed ({status}); its report is above"
    );
    assert!(
        shots.join("05-society-paid.png").exists(),
        "screenshots are written"
    );
}
