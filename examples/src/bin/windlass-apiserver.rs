//! `windlass-apiserver`: windlass's test API server as a standalone process, for kubectl and
//! other clients outside a Rust test.
//!
//! ```sh
//! cargo run -p windlass-examples --bin windlass-apiserver -- --addr 127.0.0.1:8080 --kubeconfig /tmp/kubeconfig
//! KUBECONFIG=/tmp/kubeconfig kubectl get namespaces
//! ```
//!
//! It serves plain HTTP on a loopback address, writes a kubeconfig pointing at itself, and
//! exits cleanly on SIGINT or SIGTERM. Everything it stores lives in memory.

use std::net::SocketAddr;
use std::process::ExitCode;

use windlass::testing::ApiServer;

const USAGE: &str = "usage: windlass-apiserver [--addr 127.0.0.1:PORT] [--kubeconfig FILE]

  --addr        address to listen on (default 127.0.0.1:0: any free port; loopback only)
  --kubeconfig  write a kubeconfig pointing at the server to FILE";

struct Args {
    addr: SocketAddr,
    kubeconfig: Option<String>,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        addr: SocketAddr::from(([127, 0, 0, 1], 0)),
        kubeconfig: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        let (flag, inline) = match arg.split_once('=') {
            Some((f, v)) => (f.to_string(), Some(v.to_string())),
            None => (arg.clone(), None),
        };
        let mut value = |name: &str| {
            inline
                .clone()
                .or_else(|| it.next())
                .ok_or_else(|| format!("{name} needs a value"))
        };
        match flag.as_str() {
            "--addr" => {
                let v = value("--addr")?;
                args.addr = v.parse().map_err(|e| format!("--addr {v:?}: {e}"))?;
                if !args.addr.ip().is_loopback() {
                    return Err(format!(
                        "--addr {v}: windlass-apiserver has no authentication; listen on a loopback address such as 127.0.0.1"
                    ));
                }
            }
            "--kubeconfig" => args.kubeconfig = Some(value("--kubeconfig")?),
            "-h" | "--help" => return Err(String::new()),
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    Ok(args)
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) if e.is_empty() => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("windlass-apiserver: {e}\n\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let server = ApiServer::new();
    let handle = match server.serve(args.addr).await {
        Ok(h) => h,
        Err(e) => {
            eprintln!("windlass-apiserver: cannot listen on {}: {e}", args.addr);
            return ExitCode::FAILURE;
        }
    };
    if let Some(path) = &args.kubeconfig {
        if let Err(e) = std::fs::write(path, handle.kubeconfig_yaml()) {
            eprintln!("windlass-apiserver: cannot write kubeconfig {path}: {e}");
            return ExitCode::FAILURE;
        }
    }
    println!("windlass-apiserver serving on {}", handle.url());
    if let Some(path) = &args.kubeconfig {
        println!("kubeconfig written to {path}");
    }
    wait_for_signal().await;
    println!("windlass-apiserver shutting down");
    handle.shutdown().await;
    ExitCode::SUCCESS
}

async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
