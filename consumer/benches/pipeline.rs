//! Throughput of the event pipeline on a synthetic stream (`movielens::synthetic`, time-ordered).
//!
//! ```text
//! cargo bench -p consumer --bench pipeline -- [--events 5000000] [--runs 3] [--lag-rate 80000]
//!     [--batch-size 100000] [--tansu [--tansu-events N] [--tansu-partitions 8]]
//! cargo bench -p consumer --bench pipeline -- --metrics-overhead [--events N] [--runs 5] [--producer-runs 0]
//! ```
//!
//! Per run, on the embedded broker (in-process mock, 32 partitions, lz4):
//! - producer: events acknowledged per second, replay as fast as possible, no consumer;
//! - end to end: once the consumer owns its partitions, replay as fast as the consumer keeps up
//!   (at most 500k events in flight) → persisted in SQLite; "wall" counts from the first send
//!   to the last event persisted, "sustained" from the first committed batch to the last;
//! - lag: a replay paced at `--lag-rate` events/s with no backpressure: the largest gap seen
//!   between events sent and events persisted.
//!
//! With `--tansu` (binary from `CINEDATA_TANSU` or the PATH), the producer and end-to-end
//! figures again against tansu in its own process (SQLite storage, 8 partitions), on the first
//! `--tansu-events` events (default all).
//! Prints per-run figures and medians as Markdown.
//!
//! `--metrics-overhead` measures only what the Prometheus metrics cost: per run, the producer
//! alone and the end-to-end run each without and with metrics (consumer and producer families
//! recorded, the lag refreshed every 5 s, `/metrics` served and scraped every second), in
//! alternating order; then the time to render `/metrics` (gather + text encoding) and to GET it
//! over HTTP, on the registry of a finished run. Prints medians and with/without ratios.
//! `--producer-runs N` adds N more producer-only pairs (the producer alone is the noisiest
//! measure: a run takes seconds).

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use consumer::{Embedded, Metrics, Settings};
use movielens::MovieRow;
use movielens::synthetic::{self, SyntheticConfig};
use producer::replay::{Backpressure, ReplayOptions, Timeline, replay, replay_blocking};
use producer::{Pace, ProducerMetrics, producer_config};
use prometheus::Registry;
use store::Store;
use tokio_util::sync::CancellationToken;

struct Args {
    events: u64,
    runs: usize,
    lag_rate: f64,
    tansu: bool,
    tansu_partitions: i32,
    tansu_events: Option<u64>,
    batch_size: usize,
    metrics_overhead: bool,
    producer_runs: usize,
}

fn args() -> anyhow::Result<Args> {
    let mut a = Args {
        events: 5_000_000,
        runs: 3,
        lag_rate: 80_000.0,
        tansu: false,
        tansu_partitions: 8,
        tansu_events: None,
        batch_size: 100_000,
        metrics_overhead: false,
        producer_runs: 0,
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--events" => a.events = it.next().context("--events N")?.parse()?,
            "--runs" => a.runs = it.next().context("--runs N")?.parse()?,
            "--lag-rate" => a.lag_rate = it.next().context("--lag-rate N")?.parse()?,
            "--tansu" => a.tansu = true,
            "--metrics-overhead" => a.metrics_overhead = true,
            "--producer-runs" => a.producer_runs = it.next().context("--producer-runs N")?.parse()?,
            "--batch-size" => a.batch_size = it.next().context("--batch-size N")?.parse()?,
            "--tansu-events" => a.tansu_events = Some(it.next().context("--tansu-events N")?.parse()?),
            "--tansu-partitions" => a.tansu_partitions = it.next().context("--tansu-partitions N")?.parse()?,
            "--bench" => {}
            other => bail!("unknown argument {other}"),
        }
    }
    Ok(a)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    if v.is_empty() { f64::NAN } else { v[v.len() / 2] }
}

struct E2e {
    /// From the first send to the last event persisted.
    wall: f64,
    /// From the first batch persisted to the last.
    sustained: f64,
    max_lag: u64,
}

/// A migrated SQLite store in a temp dir holding the movies.
async fn sqlite_store(movies: &[MovieRow]) -> anyhow::Result<(Store, String, tempfile::TempDir)> {
    let dir = tempfile::tempdir()?;
    let url = format!("sqlite://{}", dir.path().join("bench.db").display());
    let store = Store::connect(&url).await?;
    for chunk in movies.chunks(50_000) {
        store.upsert_movies(chunk).await?;
    }
    Ok((store, url, dir))
}

/// Producer alone: replay everything to `brokers`, as fast as possible.
fn produce_only(brokers: &str, timeline: &Arc<Timeline>, limit: u64) -> anyhow::Result<f64> {
    produce_only_with(brokers, timeline, limit, None)
}

/// [`produce_only`], recording into `metrics` when given.
fn produce_only_with(
    brokers: &str,
    timeline: &Arc<Timeline>,
    limit: u64,
    metrics: Option<ProducerMetrics>,
) -> anyhow::Result<f64> {
    let options = ReplayOptions { limit: Some(limit), metrics, ..ReplayOptions::new(producer::topics::RATINGS) };
    let report = replay_blocking(
        &producer_config(brokers),
        timeline.iter(),
        Some(timeline.len()),
        &options,
        &CancellationToken::new(),
    )?;
    if !report.is_complete() {
        bail!("producer run incomplete: {report:?}");
    }
    Ok(report.rate())
}

/// Replay into `settings.brokers` while a consumer persists into `store`; with `export`, the
/// consumer and the replay record into its registry.
async fn end_to_end(
    settings: &Settings,
    store: Store,
    timeline: &Arc<Timeline>,
    n: u64,
    pace: Pace,
    max_lag: u64,
    export: Option<&Registry>,
) -> anyhow::Result<E2e> {
    let (metrics, producer_metrics) = match export {
        Some(registry) => (Metrics::with_registry(registry)?, Some(ProducerMetrics::register(registry)?)),
        None => (Metrics::default(), None),
    };
    let shutdown = CancellationToken::new();
    let consumer = {
        let (settings, metrics, shutdown) = (settings.clone(), metrics.clone(), shutdown.clone());
        tokio::spawn(async move { consumer::run(&settings, store, metrics, None, shutdown).await })
    };
    let handled = metrics.clone();
    let options = ReplayOptions {
        pace,
        limit: Some(n),
        backpressure: Some(Backpressure { handled: Arc::new(move || handled.handled()), max_lag }),
        metrics: producer_metrics,
        ..ReplayOptions::new(settings.ratings_topic.clone())
    };
    let brokers = settings.brokers.clone().context("brokers")?;
    // Measure the steady state: start sending once the consumer owns its partitions.
    let wanted = settings.topics().len() * settings.partitions as usize;
    let joining = Instant::now();
    while metrics.snapshot().assigned.len() < wanted {
        if joining.elapsed() > Duration::from_secs(60) {
            bail!("the consumer did not join: {:?}", metrics.snapshot());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let started = Instant::now();
    let producing = tokio::spawn(replay(
        producer_config(&brokers),
        timeline.clone().into_events(),
        Some(n),
        options,
        shutdown.clone(),
    ));
    let mut first: Option<(Instant, u64)> = None;
    let deadline = started + Duration::from_secs(1800);
    loop {
        let h = metrics.handled();
        if first.is_none() && h > 0 {
            first = Some((Instant::now(), h));
        }
        if h >= n {
            break;
        }
        if Instant::now() > deadline {
            bail!("timed out: {:?}", metrics.snapshot());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let done = Instant::now();
    let report = producing.await??;
    shutdown.cancel();
    consumer.await??;
    if !report.is_complete() {
        bail!("replay incomplete: {report:?}");
    }
    let s = metrics.snapshot();
    if s.ratings != n || s.dead_letters != 0 {
        bail!("expected {n} ratings persisted once, got {s:?}");
    }
    let (t0, h0) = first.context("nothing handled")?;
    Ok(E2e {
        wall: n as f64 / (done - started).as_secs_f64(),
        sustained: (n - h0) as f64 / (done - t0).as_secs_f64().max(1e-9),
        max_lag: report.max_lag,
    })
}

async fn embedded_e2e(
    movies: &[MovieRow],
    timeline: &Arc<Timeline>,
    pace: Pace,
    max_lag: u64,
    batch_size: usize,
    export: Option<&Registry>,
) -> anyhow::Result<E2e> {
    let n = timeline.len();
    let (store, url, _dir) = sqlite_store(movies).await?;
    let settings = Settings { tags_topic: String::new(), batch_size, ..Settings::new(None, url) };
    let embedded = Embedded::start(&settings)?;
    let result = end_to_end(embedded.settings(), store.clone(), timeline, n, pace, max_lag, export).await;
    store.close().await;
    result
}

/// tansu on a free port with SQLite storage in a temp dir.
struct Tansu {
    child: Child,
    port: u16,
    _dir: tempfile::TempDir,
}

impl Tansu {
    fn start() -> anyhow::Result<Self> {
        let binary = std::env::var_os("CINEDATA_TANSU").map_or_else(|| PathBuf::from("tansu"), PathBuf::from);
        let port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let dir = tempfile::tempdir()?;
        let url = format!("tcp://127.0.0.1:{port}");
        let child = Command::new(&binary)
            .args(["broker", "--listener-url", &url, "--advertised-listener-url", &url])
            .args(["--storage-engine", "sqlite://tansu.db"])
            .current_dir(dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .with_context(|| format!("starting {}", binary.display()))?;
        let addr: SocketAddr = ([127, 0, 0, 1], port).into();
        let deadline = Instant::now() + Duration::from_secs(30);
        while TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_err() {
            if Instant::now() > deadline {
                bail!("tansu did not listen on {addr}");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(Self { child, port, _dir: dir })
    }

    fn brokers(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }
}

impl Drop for Tansu {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn tansu_settings(tansu: &Tansu, url: String, partitions: i32, batch_size: usize) -> anyhow::Result<Settings> {
    let settings = Settings {
        batch_size,
        brokers: Some(tansu.brokers()),
        partitions,
        tags_topic: String::new(),
        session_timeout_ms: Some(6_000),
        ..Settings::new(None, url)
    };
    producer::ensure_topics(&tansu.brokers(), &settings.topic_specs()).await?;
    Ok(settings)
}

/// `GET /metrics` over HTTP/1.0 (blocking); the body's length.
fn http_get_metrics(addr: SocketAddr) -> anyhow::Result<usize> {
    let mut stream = TcpStream::connect(addr)?;
    stream.write_all(b"GET /metrics HTTP/1.0\r\nHost: bench\r\n\r\n")?;
    let mut response = Vec::new();
    stream.read_to_end(&mut response)?;
    if !response.starts_with(b"HTTP/1.0 200") && !response.starts_with(b"HTTP/1.1 200") {
        bail!("GET /metrics: {}", String::from_utf8_lossy(&response[..response.len().min(100)]));
    }
    Ok(response.len())
}

/// CPU seconds (user + system) this process used so far, all threads (the embedded broker,
/// librdkafka's and SQLite's included), from `/proc/self/stat` in USER_HZ (100/s) ticks.
fn cpu_seconds() -> f64 {
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else { return f64::NAN };
    // Fields after the parenthesised command name: state is field 3, utime 14, stime 15.
    let Some((_, rest)) = stat.rsplit_once(')') else { return f64::NAN };
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| fields.get(i - 3).and_then(|f| f.parse::<f64>().ok()).unwrap_or(f64::NAN);
    (ticks(14) + ticks(15)) / 100.0
}

/// Percentile `q` (0..=1) of durations, in microseconds.
fn percentile_us(v: &mut [Duration], q: f64) -> f64 {
    v.sort();
    let i = ((v.len() as f64 - 1.0) * q).round() as usize;
    v.get(i).map_or(f64::NAN, |d| d.as_secs_f64() * 1e6)
}

/// One end-to-end run with metrics exported: the registry served on a free port and scraped
/// every second meanwhile; afterwards, the render and GET latencies on the final registry
/// (median and p99 in µs of 1,000 renders and 200 GETs) and the exposition's size.
async fn exported_e2e(
    movies: &[MovieRow],
    timeline: &Arc<Timeline>,
    batch_size: usize,
) -> anyhow::Result<(E2e, f64, [f64; 4], usize)> {
    let cpu = cpu_seconds();
    let registry = runtime::metrics::registry();
    let stop = CancellationToken::new();
    let (addr, server) = runtime::metrics::serve(([127, 0, 0, 1], 0).into(), registry.clone(), stop.clone()).await?;
    let scraper = {
        let stop = stop.clone();
        tokio::task::spawn_blocking(move || {
            let mut scrapes = 0_u64;
            while !stop.is_cancelled() {
                if http_get_metrics(addr).is_ok() {
                    scrapes += 1;
                }
                let next = Instant::now() + Duration::from_secs(1);
                while Instant::now() < next && !stop.is_cancelled() {
                    std::thread::sleep(Duration::from_millis(20));
                }
            }
            scrapes
        })
    };
    let e2e = embedded_e2e(movies, timeline, Pace::Max, consumer::pipeline::MAX_LAG, batch_size, Some(&registry)).await;
    // The scraper and the server stop so that they do not disturb the latency measures.
    stop.cancel();
    let scrapes = scraper.await?;
    server.await?;
    let cpu = cpu_seconds() - cpu;
    let e2e = e2e?;
    // The registry as a finished run leaves it (32 lag series, every family filled in), served
    // again for the GET timing.
    let again = CancellationToken::new();
    let (addr, server) = runtime::metrics::serve(([127, 0, 0, 1], 0).into(), registry.clone(), again.clone()).await?;
    let (times, size) = tokio::task::spawn_blocking(move || -> anyhow::Result<([f64; 4], usize)> {
        let mut renders = Vec::with_capacity(1_000);
        let mut size = 0;
        for _ in 0..1_000 {
            let started = Instant::now();
            size = runtime::metrics::render(&registry).len();
            renders.push(started.elapsed());
        }
        let mut gets = Vec::with_capacity(200);
        for _ in 0..200 {
            let started = Instant::now();
            http_get_metrics(addr)?;
            gets.push(started.elapsed());
        }
        let times = [
            percentile_us(&mut renders, 0.5),
            percentile_us(&mut renders, 0.99),
            percentile_us(&mut gets, 0.5),
            percentile_us(&mut gets, 0.99),
        ];
        Ok((times, size))
    })
    .await??;
    again.cancel();
    server.await?;
    eprintln!("  ({scrapes} scrapes of /metrics during the run)");
    Ok((e2e, cpu, times, size))
}

/// The producer alone on a fresh embedded broker, with or without metrics: events/s and
/// process CPU seconds.
async fn measure_producer(timeline: &Arc<Timeline>, with: bool) -> anyhow::Result<(f64, f64)> {
    let n = timeline.len();
    let broker = producer::EmbeddedBroker::start(&[producer::TopicSpec::new("ratings", 32)])?;
    let brokers = broker.bootstrap_servers().to_owned();
    let t = timeline.clone();
    let metrics = if with { Some(ProducerMetrics::register(&runtime::metrics::registry())?) } else { None };
    let cpu = cpu_seconds();
    let rate = tokio::task::spawn_blocking(move || produce_only_with(&brokers, &t, n, metrics)).await??;
    let cpu = cpu_seconds() - cpu;
    drop(broker);
    Ok((rate, cpu))
}

/// `--metrics-overhead`: with and without metrics, alternating, medians and ratios.
async fn metrics_overhead(args: &Args, movies: &[MovieRow], timeline: &Arc<Timeline>) -> anyhow::Result<()> {
    let n = timeline.len();
    let (mut produced, mut wall, mut sustained) = ([vec![], vec![]], [vec![], vec![]], [vec![], vec![]]);
    let (mut produce_cpu, mut e2e_cpu) = ([vec![], vec![]], [vec![], vec![]]);
    let (mut render_med, mut render_p99, mut get_med, mut get_p99, mut sizes) =
        (vec![], vec![], vec![], vec![], vec![]);
    for run in 1..=args.runs {
        // Odd runs measure without metrics first, even runs with metrics first.
        let order: [bool; 2] = if run % 2 == 1 { [false, true] } else { [true, false] };
        for with in order {
            let (rate, producer_cpu) = measure_producer(timeline, with).await?;
            let (e, cpu) = if with {
                let (e, cpu, [rm, r99, gm, g99], size) = exported_e2e(movies, timeline, args.batch_size).await?;
                render_med.push(rm);
                render_p99.push(r99);
                get_med.push(gm);
                get_p99.push(g99);
                sizes.push(size as f64);
                println!(
                    "run {run} with metrics: producer {rate:.0} events/s, {producer_cpu:.2} CPU s; end to end \
                     {:.0} sustained, {:.0} wall, {cpu:.2} CPU s; render {rm:.0} µs (p99 {r99:.0}), \
                     GET {gm:.0} µs (p99 {g99:.0}), {size} bytes",
                    e.sustained, e.wall
                );
                (e, cpu)
            } else {
                let cpu = cpu_seconds();
                let e = embedded_e2e(movies, timeline, Pace::Max, consumer::pipeline::MAX_LAG, args.batch_size, None)
                    .await?;
                let cpu = cpu_seconds() - cpu;
                println!(
                    "run {run} without metrics: producer {rate:.0} events/s, {producer_cpu:.2} CPU s; end to end \
                     {:.0} sustained, {:.0} wall, {cpu:.2} CPU s",
                    e.sustained, e.wall
                );
                (e, cpu)
            };
            let i = usize::from(with);
            produce_cpu[i].push(producer_cpu);
            e2e_cpu[i].push(cpu);
            produced[i].push(rate);
            wall[i].push(e.wall);
            sustained[i].push(e.sustained);
        }
    }
    for run in 1..=args.producer_runs {
        let order: [bool; 2] = if run % 2 == 1 { [false, true] } else { [true, false] };
        for with in order {
            let (rate, cpu) = measure_producer(timeline, with).await?;
            produced[usize::from(with)].push(rate);
            produce_cpu[usize::from(with)].push(cpu);
        }
    }
    let producer_pairs = args.runs + args.producer_runs;
    println!("\n{n} events, median of {} runs each, alternating order\n", args.runs);
    println!(
        "| measure | without metrics | with metrics | with / without, medians | with / without, paired per run: \
         median (min–max) |\n| --- | ---: | ---: | ---: | ---: |"
    );
    for (what, [off, on], digits) in [
        (format!("embedded: producer ({producer_pairs} pairs; events/s)").as_str(), produced, 0),
        ("embedded: end to end → SQLite, sustained (events/s)", sustained, 0),
        ("embedded: end to end → SQLite, wall (events/s)", wall, 0),
        (format!("embedded: producer ({producer_pairs} pairs), process CPU (s)").as_str(), produce_cpu, 2),
        ("embedded: end to end → SQLite, process CPU (s)", e2e_cpu, 2),
    ] {
        let paired: Vec<f64> = on.iter().zip(&off).map(|(a, b)| a / b).collect();
        let (lo, hi) = paired.iter().fold((f64::INFINITY, 0.0_f64), |(lo, hi), r| (lo.min(*r), hi.max(*r)));
        let (off, on) = (median(off), median(on));
        println!(
            "| {what} | {off:.digits$} | {on:.digits$} | {:.3} | {:.3} ({lo:.2}–{hi:.2}) |",
            on / off,
            median(paired)
        );
    }
    println!(
        "\n| /metrics (final registry of a run, {:.0} bytes) | median | p99 |\n| --- | ---: | ---: |",
        median(sizes)
    );
    println!("| render: gather + text encoding (µs) | {:.0} | {:.0} |", median(render_med), median(render_p99));
    println!("| GET over HTTP/1.0, new connection (µs) | {:.0} | {:.0} |", median(get_med), median(get_p99));
    primitive_costs()?;
    Ok(())
}

/// What the recording primitives cost on this machine (the per-event and per-batch work the
/// metrics add), median of 9 timings each.
fn primitive_costs() -> anyhow::Result<()> {
    let registry = runtime::metrics::registry();
    let metrics = ProducerMetrics::register(&registry)?;
    let counter = metrics.topic("ratings").delivered;
    let time = |iterations: u32, f: &dyn Fn(u32)| {
        let runs: Vec<f64> = (0..9)
            .map(|_| {
                let started = Instant::now();
                for i in 0..iterations {
                    f(i);
                }
                started.elapsed().as_secs_f64() * 1e9 / f64::from(iterations)
            })
            .collect();
        median(runs)
    };
    let inc = time(10_000_000, &|_| counter.inc());
    let observe = time(1_000_000, &|i| metrics.observe_send(Duration::from_micros(u64::from(i % 5_000))));
    let families = registry.gather().len();
    println!("\n| recording primitive ({families} families registered) | ns per call |\n| --- | ---: |");
    println!("| `IntCounter::inc` (a delivery report; a batch's counters) | {inc:.1} |");
    println!("| `Histogram::observe` (a timed delivery, 1 in 64; a batch's size and write time) | {observe:.1} |");
    Ok(())
}

fn main() -> anyhow::Result<()> {
    let args = args()?;
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(async {
        let cfg = SyntheticConfig::scaled(args.events);
        eprintln!("generating {} synthetic ratings ({} users, {} movies)...", cfg.ratings, cfg.users, cfg.movies);
        let movies: Vec<MovieRow> = synthetic::movies(&cfg)?.collect();
        let timeline = Arc::new(Timeline::from_rows(synthetic::ratings(&cfg)?, []));
        let n = timeline.len();
        if args.metrics_overhead {
            return metrics_overhead(&args, &movies, &timeline).await;
        }

        let (mut produced, mut wall, mut sustained, mut lags) = (vec![], vec![], vec![], vec![]);
        for run in 1..=args.runs {
            let broker = producer::EmbeddedBroker::start(&[producer::TopicSpec::new("ratings", 32)])?;
            let brokers = broker.bootstrap_servers().to_owned();
            let t = timeline.clone();
            let rate = tokio::task::spawn_blocking(move || produce_only(&brokers, &t, n)).await??;
            drop(broker);
            let e = embedded_e2e(&movies, &timeline, Pace::Max, consumer::pipeline::MAX_LAG, args.batch_size, None).await?;
            println!(
                "run {run}: embedded producer {rate:.0} events/s; end to end {:.0} events/s sustained, {:.0} wall, max lag {}",
                e.sustained, e.wall, e.max_lag
            );
            produced.push(rate);
            wall.push(e.wall);
            sustained.push(e.sustained);
            lags.push(e.max_lag as f64);
        }
        let paced = embedded_e2e(&movies, &timeline, Pace::Rate(args.lag_rate), u64::MAX, args.batch_size, None).await?;
        println!(
            "paced at {:.0} events/s without backpressure: max lag {} events, {:.0} events/s persisted",
            args.lag_rate, paced.max_lag, paced.wall
        );

        let mut table = vec![
            ("embedded: producer (events/s)", median(produced)),
            ("embedded: end to end → SQLite, sustained (events/s)", median(sustained)),
            ("embedded: end to end → SQLite, wall, first send to last persisted (events/s)", median(wall)),
            ("embedded: max lag seen, backpressure bound 500k (events)", median(lags)),
        ];
        let tansu_n = args.tansu_events.unwrap_or(n).min(n);
        if args.tansu {
            let (mut produced, mut wall, mut sustained) = (vec![], vec![], vec![]);
            for run in 1..=args.runs {
                let tansu = Tansu::start()?;
                tansu_settings(&tansu, "sqlite://unused.db".into(), args.tansu_partitions, args.batch_size).await?;
                let brokers = tansu.brokers();
                let t = timeline.clone();
                let rate = tokio::task::spawn_blocking(move || produce_only(&brokers, &t, tansu_n)).await??;
                drop(tansu);
                let tansu = Tansu::start()?;
                let (store, url, _dir) = sqlite_store(&movies).await?;
                let settings = tansu_settings(&tansu, url, args.tansu_partitions, args.batch_size).await?;
                let max_lag = consumer::pipeline::MAX_LAG;
                let e = end_to_end(&settings, store.clone(), &timeline, tansu_n, Pace::Max, max_lag, None).await?;
                store.close().await;
                println!(
                    "run {run}: tansu producer {rate:.0} events/s; end to end {:.0} events/s sustained, {:.0} wall",
                    e.sustained, e.wall
                );
                produced.push(rate);
                wall.push(e.wall);
                sustained.push(e.sustained);
            }
            table.push(("tansu: producer (events/s)", median(produced)));
            table.push(("tansu: end to end → SQLite, sustained (events/s)", median(sustained)));
            table.push(("tansu: end to end → SQLite, wall (events/s)", median(wall)));
        }
        println!("\n{n} events ({tansu_n} on tansu), median of {} runs\n\n| measure | value |\n| --- | ---: |", args.runs);
        for (what, value) in table {
            println!("| {what} | {value:.0} |");
        }
        println!("| embedded: max lag paced at {:.0}/s, no backpressure (events) | {} |", args.lag_rate, paced.max_lag);
        anyhow::Ok(())
    })
}
