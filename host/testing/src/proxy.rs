//! A proxy that answers nothing and records the host of every request a
//! browser sends it (`GET http://host/…` or `CONNECT host:443`): pointed at
//! by Chromium's `--proxy-server`, it shows whether a page asked anything
//! of another host.

use std::io::{BufRead, BufReader};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The hosts asked for, in the order the connections came.
pub type Seen = Arc<Mutex<Vec<String>>>;

/// Start one on a loopback port; its port and what it saw.
pub fn start() -> (u16, Seen) {
    let proxy = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = proxy.local_addr().unwrap().port();
    let seen: Seen = Arc::default();
    let sink = seen.clone();
    std::thread::spawn(move || {
        for conn in proxy.incoming() {
            let Ok(conn) = conn else { return };
            let _ = conn.set_read_timeout(Some(Duration::from_secs(2)));
            let mut line = String::new();
            let _ = BufReader::new(&conn).read_line(&mut line);
            // A connection that asks nothing (a port probe from another
            // test, a socket opened and dropped) is no request of a page.
            let Some(target) = line.split_whitespace().nth(1) else {
                continue;
            };
            let host = target
                .trim_start_matches("http://")
                .trim_start_matches("https://")
                .split(['/', ':'])
                .next()
                .unwrap_or("")
                .to_string();
            sink.lock().unwrap().push(host);
        }
    });
    (port, seen)
}

/// Hosts Chromium asks of its own accord, whatever page it shows: updates
/// and component downloads, safe browsing, sign-in, autofill and
/// optimisation hints, field trials, network-error beacons, its start
/// page. No page of ours names them; a test leaves them out of what the
/// pages asked. Named exactly (or as Google's update and beacon CDNs,
/// `*.gvt1.com`, `*.gvt2.com`), so that a page's font or script from
/// another Google host (`fonts.googleapis.com`, `www.gstatic.com`, …) still
/// shows.
pub fn browsers_own(host: &str) -> bool {
    const EXACT: &[&str] = &[
        "accounts.google.com",
        "android.clients.google.com",
        "chromewebstore.googleapis.com",
        "clients1.google.com",
        "clients2.google.com",
        "clients2.googleusercontent.com",
        "clients4.google.com",
        "clientservices.googleapis.com",
        "content-autofill.googleapis.com",
        "dl.google.com",
        "optimizationguide-pa.googleapis.com",
        "passwordsleakcheck-pa.googleapis.com",
        "redirector.gvt1.com",
        "safebrowsing.googleapis.com",
        "safebrowsingohttpgateway.googleapis.com",
        "start.duckduckgo.com",
        "update.googleapis.com",
        "www.google.com",
        "www.googleapis.com",
    ];
    EXACT.contains(&host) || host.ends_with(".gvt1.com") || host.ends_with(".gvt2.com")
}

#[cfg(test)]
mod tests {
    use super::browsers_own;

    #[test]
    fn the_browsers_own_hosts_leave_a_pages_hosts_in_view() {
        assert!(browsers_own("update.googleapis.com"));
        assert!(browsers_own("r1---sn-abc.gvt1.com"));
        for page in [
            "fonts.googleapis.com",
            "fonts.gstatic.com",
            "www.gstatic.com",
            "ajax.googleapis.com",
            "cdn.example.com",
            "gvt1.com.example.org",
        ] {
            assert!(!browsers_own(page), "{page}");
        }
    }
}
