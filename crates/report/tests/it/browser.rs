//! Renders `index.html` in headless Chromium: no console messages (the page
//! has no scripts, so any message is a failed load or a parse problem) and a
//! screenshot that is not blank. Without Chromium the test fails, naming the
//! package to install; `CLIPSHIFT_SKIP_BROWSER=1` skips it explicitly
//! (`cargo xtask test` sets it only when Chromium is absent, and says so).

use std::path::Path;
use std::process::Command;

use clipshift_report::{ReportConfig, run};

const CHROMIUM: &str = "/usr/bin/chromium";

#[test]
fn index_html_renders_in_headless_chromium() {
    if std::env::var_os("CLIPSHIFT_SKIP_BROWSER").is_some_and(|v| v == "1") {
        eprintln!("SKIPPED: the headless-browser check (CLIPSHIFT_SKIP_BROWSER=1)");
        return;
    }
    assert!(
        Path::new(CHROMIUM).exists(),
        "{CHROMIUM} not found: install it with `apt-get install chromium`, or set CLIPSHIFT_SKIP_BROWSER=1 to skip this check"
    );
    let (dir, _) = crate::stage::synthetic_run("browser");
    let summary = run(&ReportConfig::new(&dir)).unwrap();
    let profile = dir.join("chromium-profile");
    let shot = dir.join("screenshot.png");
    let out = Command::new(CHROMIUM)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--enable-logging=stderr",
            "--v=0",
            "--hide-scrollbars",
            "--window-size=1200,2400",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg(format!("--screenshot={}", shot.display()))
        .arg(format!("file://{}", summary.index_html.display()))
        .output()
        .expect("run chromium");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "chromium failed: {stderr}");
    let console: Vec<&str> = stderr.lines().filter(|l| l.contains("CONSOLE")).collect();
    assert!(console.is_empty(), "console messages: {console:#?}");
    let img = image::open(&shot).expect("screenshot written").to_rgb8();
    let non_white = img.pixels().filter(|p| p[0] < 240 || p[1] < 240 || p[2] < 240).count();
    let mut colours: Vec<[u8; 3]> = img.pixels().map(|p| p.0).collect();
    colours.sort_unstable();
    colours.dedup();
    assert!(non_white > img.width() as usize * 50, "screenshot looks blank ({non_white} non-white pixels)");
    assert!(colours.len() > 50, "screenshot has only {} colours", colours.len());
    let _ = std::fs::remove_dir_all(&dir);
}
