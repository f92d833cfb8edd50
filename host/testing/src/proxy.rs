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
