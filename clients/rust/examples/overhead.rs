//! Load tool: what the client costs over raw reqwest. `CONCURRENCY` tasks ask `GET /movies/1`
//! as fast as they can for `SECONDS`, once through plain `reqwest` + `serde_json` (the code a
//! user would write by hand) and once through [`cinedata_client::Client::movie`], alternating
//! which goes first, for `ROUNDS` rounds. Prints each round and the medians.
//!
//! `cargo run --release -p cinedata-client --example overhead -- BASE_URL [CONCURRENCY=64] [SECONDS=5] [ROUNDS=5]`
//! (`scripts/bench-client.sh` starts a server and runs it.)

use std::time::{Duration, Instant};

use cinedata_client::Client;
use cinedata_client::types::MovieDetail;

/// Requests per second, latency percentiles and this process's CPU time of one run.
#[derive(Debug, Clone, Copy)]
struct Run {
    rps: f64,
    p50: Duration,
    p99: Duration,
    requests: usize,
    cpu: Duration,
}

/// This process's CPU time (user + system) from `/proc/self/stat`, in clock ticks of 10 ms:
/// what the load side spends, apart from the server's share of the same cores.
fn cpu_time() -> Duration {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the command name (which ends with ')'): utime and stime are the 12th and 13th.
    let fields: Vec<&str> = stat.rsplit_once(')').map_or(Vec::new(), |(_, rest)| rest.split_whitespace().collect());
    let ticks: u64 = fields.get(11..13).map_or(0, |f| f.iter().filter_map(|t| t.parse::<u64>().ok()).sum());
    Duration::from_millis(ticks * 10)
}

#[derive(Clone, Copy, PartialEq)]
enum Kind {
    Raw,
    Client,
}

async fn run(kind: Kind, base: &str, concurrency: usize, seconds: f64) -> Run {
    let raw = reqwest::Client::new();
    let client = Client::new(base).expect("a valid base URL");
    let url = format!("{base}/movies/1");
    let deadline = Instant::now() + Duration::from_secs_f64(seconds);
    let (started, cpu) = (Instant::now(), cpu_time());
    let tasks: Vec<_> = (0..concurrency)
        .map(|_| {
            let (raw, client, url) = (raw.clone(), client.clone(), url.clone());
            tokio::spawn(async move {
                let mut latencies = Vec::new();
                while Instant::now() < deadline {
                    let t = Instant::now();
                    let movie: MovieDetail = match kind {
                        Kind::Raw => {
                            let body = raw.get(&url).send().await.expect("GET").bytes().await.expect("body");
                            serde_json::from_slice(&body).expect("a movie")
                        }
                        Kind::Client => client.movie(1).await.expect("GET through the client"),
                    };
                    assert_eq!(movie.movie_id, 1);
                    latencies.push(t.elapsed());
                }
                latencies
            })
        })
        .collect();
    let mut latencies = Vec::new();
    for task in tasks {
        latencies.extend(task.await.expect("a load task"));
    }
    let (elapsed, cpu) = (started.elapsed().as_secs_f64(), cpu_time().saturating_sub(cpu));
    latencies.sort_unstable();
    let at = |q: f64| latencies[((latencies.len() - 1) as f64 * q) as usize];
    Run { rps: latencies.len() as f64 / elapsed, p50: at(0.5), p99: at(0.99), requests: latencies.len(), cpu }
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(base) = args.first().map(|b| b.trim_end_matches('/').to_owned()) else {
        eprintln!("usage: overhead BASE_URL [CONCURRENCY=64] [SECONDS=5] [ROUNDS=5]");
        std::process::exit(2);
    };
    let number = |i: usize, default: f64| args.get(i).map_or(default, |a| a.parse().expect("a number"));
    let (concurrency, seconds, rounds) = (number(1, 64.0) as usize, number(2, 5.0), number(3, 5.0) as usize);
    // Warm both paths (connections, the server's cache) before measuring.
    // (The server's throughput climbs for its first ~20 s here: caches, allocator, CPU.)
    run(Kind::Raw, &base, concurrency, 10.0).await;
    run(Kind::Client, &base, concurrency, 10.0).await;
    let (mut raw, mut client) = (Vec::new(), Vec::new());
    for round in 0..rounds {
        let order = if round % 2 == 0 { [Kind::Raw, Kind::Client] } else { [Kind::Client, Kind::Raw] };
        for kind in order {
            let r = run(kind, &base, concurrency, seconds).await;
            let name = if kind == Kind::Raw { "reqwest" } else { "client" };
            println!("round {round} {name:>7}: {:>8.0} req/s  p50 {:?}  p99 {:?}", r.rps, r.p50, r.p99);
            if kind == Kind::Raw { raw.push(r) } else { client.push(r) }
        }
    }
    let summary = |runs: &[Run]| {
        (
            median(runs.iter().map(|r| r.rps).collect()),
            median(runs.iter().map(|r| r.p50.as_secs_f64() * 1e3).collect()),
            median(runs.iter().map(|r| r.p99.as_secs_f64() * 1e3).collect()),
        )
    };
    let ((raw_rps, raw_p50, raw_p99), (client_rps, client_p50, client_p99)) = (summary(&raw), summary(&client));
    // CPU per request over all rounds: the client's own cost, steadier than throughput.
    let cpu_per_request = |runs: &[Run]| {
        runs.iter().map(|r| r.cpu.as_secs_f64()).sum::<f64>() * 1e6
            / runs.iter().map(|r| r.requests as f64).sum::<f64>()
    };
    let (raw_cpu, client_cpu) = (cpu_per_request(&raw), cpu_per_request(&client));
    println!("| path | requests/s (median) | p50 ms | p99 ms | load-side CPU µs/request |");
    println!("| --- | ---: | ---: | ---: | ---: |");
    println!("| raw reqwest | {raw_rps:.0} | {raw_p50:.2} | {raw_p99:.2} | {raw_cpu:.1} |");
    println!("| cinedata-client | {client_rps:.0} | {client_p50:.2} | {client_p99:.2} | {client_cpu:.1} |");
    // Each round's two runs are next to each other in time, so their ratio shares the
    // machine's state; the median of those ratios is the figure to quote.
    let ratios: Vec<f64> = raw.iter().zip(&client).map(|(r, c)| r.rps / c.rps).collect();
    println!(
        "client overhead: {:+.1}% time per request (median of the {} rounds' raw/client throughput ratios; {:+.1}% from the medians)",
        (median(ratios) - 1.0) * 100.0,
        raw.len(),
        (raw_rps / client_rps - 1.0) * 100.0
    );
}
