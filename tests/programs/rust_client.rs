// rust_client: a static Rust client (std only) for the e2e tests.
//
//   rust_client HOST PORT PATH N
//
// N threads each resolve HOST (std -> getaddrinfo in static glibc), connect,
// send an HTTP/1.0 GET and read to EOF. Prints "i STATUS BODY" per thread in
// index order, then "ok N"; exits 1 if any thread failed.
use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::exit;
use std::thread;
use std::time::Duration;

fn get(host: &str, port: u16, path: &str) -> Result<(u16, String), String> {
    let mut s = TcpStream::connect((host, port)).map_err(|e| format!("connect: {}", e))?;
    s.set_read_timeout(Some(Duration::from_secs(20))).map_err(|e| e.to_string())?;
    let req = format!("GET {} HTTP/1.0\r\nHost: {}\r\nConnection: close\r\n\r\n", path, host);
    s.write_all(req.as_bytes()).map_err(|e| format!("write: {}", e))?;
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).map_err(|e| format!("read: {}", e))?;
    let text = String::from_utf8_lossy(&buf).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").ok_or("no header end")?;
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse::<u16>().ok())
        .ok_or("bad status line")?;
    Ok((status, body.trim().to_string()))
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() != 5 {
        eprintln!("usage: rust_client HOST PORT PATH N");
        exit(2);
    }
    let port: u16 = args[2].parse().unwrap_or_else(|_| exit(2));
    let n: usize = args[4].parse().unwrap_or_else(|_| exit(2));
    if n == 0 || n > 1000 {
        exit(2);
    }
    let handles: Vec<_> = (0..n)
        .map(|_| {
            let (host, path) = (args[1].clone(), args[3].clone());
            thread::spawn(move || get(&host, port, &path))
        })
        .collect();
    let mut failed = 0;
    for (i, h) in handles.into_iter().enumerate() {
        match h.join() {
            Ok(Ok((status, body))) => println!("{} {} {}", i, status, body),
            Ok(Err(e)) => {
                println!("{} error {}", i, e);
                failed += 1
            }
            Err(_) => {
                println!("{} error thread panicked", i);
                failed += 1
            }
        }
    }
    if failed > 0 {
        println!("failed {} of {}", failed, n);
        exit(1);
    }
    println!("ok {}", n);
}
