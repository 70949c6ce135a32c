//! The tour: a small market-data service, profiled end to end.
//!
//! It generates a feed of orders as text, parses it, builds an index, then
//! serves quote requests on two threads, one of them through an async
//! operation that waits on a simulated upstream. When it ends it prints the
//! in-process summary, then the session's report.
//!
//!     cargo run --release --example tour [ORDERS [REQUESTS_PER_WORKER]]
//!
//! Planted on purpose, for the report to find: one dominant hotspot (the
//! VWAP scan), a vector grown without reserving in a loop, short-lived
//! allocations churned in the hot loop, a small steady leak, and a
//! long-lived cache that is not a leak.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use pulse_examples::{block_on, print_report, session_path, Delay, Rng};

#[global_allocator]
static ALLOC: pulse::Alloc = pulse::Alloc::system();

/// The operations the tour times.
#[derive(pulse::Operation)]
enum Op {
    #[category(name = "Data", description = "Loading the feed")]
    Generate,
    #[category(name = "Data")]
    Parse,
    #[category(name = "Data")]
    BuildIndex,
    #[category(name = "Serve", description = "Answering quote requests")]
    Request,
    #[category(name = "Serve")]
    Vwap,
    #[category(name = "Serve")]
    #[priority(5)]
    FetchUpstream,
}

#[derive(Debug, Clone)]
struct Order {
    id: u64,
    symbol: String,
    buy: bool,
    price: u64,
    qty: u64,
}

const SYMBOLS: [&str; 8] = ["AAPL", "MSFT", "GOOG", "AMZN", "NVDA", "TSLA", "META", "NFLX"];

fn generate_feed(n: usize, rng: &mut Rng) -> String {
    pulse::profile!(Op::Generate, {
        let mut feed = String::new();
        for id in 0..n {
            let sym = SYMBOLS[rng.below(SYMBOLS.len() as u64) as usize];
            let side = if rng.below(2) == 0 { "B" } else { "S" };
            feed.push_str(&format!(
                "{id},{sym},{side},{},{}\n",
                10_000 + rng.below(5_000),
                1 + rng.below(500)
            ));
        }
        feed
    })
}

fn parse_feed(feed: &str) -> Vec<Order> {
    pulse::profile!(Op::Parse, {
        let mut orders = Vec::new();
        for line in feed.lines() {
            let f: Vec<&str> = line.split(',').collect();
            if let [id, sym, side, price, qty] = f[..] {
                if let (Ok(id), Ok(price), Ok(qty)) = (id.parse(), price.parse(), qty.parse()) {
                    // planted: realloc churn (grown one push at a time, never reserved)
                    orders.push(Order {
                        id,
                        symbol: sym.to_string(),
                        buy: side == "B",
                        price,
                        qty,
                    });
                }
            }
        }
        orders
    })
}

fn build_index(orders: &[Order]) -> HashMap<String, Vec<usize>> {
    pulse::profile!(Op::BuildIndex, {
        let mut by_symbol: HashMap<String, Vec<usize>> = HashMap::new();
        for (i, o) in orders.iter().enumerate() {
            by_symbol.entry(o.symbol.clone()).or_default().push(i);
        }
        by_symbol
    })
}

/// Planted: the dominant hotspot, a full scan per request.
fn vwap(orders: &[Order], ids: &[usize], buy: bool) -> u64 {
    pulse::profile!(Op::Vwap, {
        let (mut notional, mut qty) = (0u64, 0u64);
        for &i in ids {
            let o = &orders[i];
            if o.buy == buy {
                notional += o.price * o.qty;
                qty += o.qty;
            }
        }
        notional.checked_div(qty).unwrap_or(0)
    })
}

/// How many recent trades a quote lists.
const RECENT: usize = 5;

/// A long-lived cache, bounded: not a leak, though it lives to the end.
struct QuoteCache {
    quotes: Mutex<HashMap<&'static str, String>>,
}

fn serve(
    worker: u64,
    orders: Arc<Vec<Order>>,
    index: Arc<HashMap<String, Vec<usize>>>,
    cache: Arc<QuoteCache>,
    requests: usize,
) -> Served {
    pulse::scope!("serve requests", counters);
    let mut rng = Rng::new(worker + 7);
    let mut served = Served::default();
    for n in 0..requests {
        pulse::profile!(Op::Request, {
            let sym = SYMBOLS[rng.below(SYMBOLS.len() as u64) as usize];
            let response = match index.get(sym) {
                Some(ids) => {
                    let mut recent = String::with_capacity(RECENT * 16);
                    for &i in ids.iter().rev().take(RECENT) {
                        let o = &orders[i];
                        // planted: short-lived (a string per trade, churned in the hot loop)
                        recent.push_str(&format!("{}x{} ", o.qty, o.price));
                    }
                    format!(
                        "{sym}: bid {} ask {} last {}",
                        vwap(&orders, ids, true),
                        vwap(&orders, ids, false),
                        recent.trim_end()
                    )
                }
                None => format!("{sym}: unknown"),
            };
            cache.quotes.lock().unwrap_or_else(|e| e.into_inner()).insert(sym, response.clone());
            if n % 50 == 0 {
                // planted: leak (a small steady one, an audit record every 50 requests)
                let audit = format!("audit {worker}/{n}: {response}").into_boxed_str();
                served.audit_records += 1;
                served.audit_bytes += audit.len();
                Box::leak(audit);
            }
            served.checksum +=
                response.len() as u64 + orders[rng.below(orders.len() as u64) as usize].id;
        });
    }
    served
}

/// What one worker did.
#[derive(Debug, Default)]
struct Served {
    checksum: u64,
    audit_records: usize,
    audit_bytes: usize,
}

/// An async request: a little CPU, then a wait on a simulated upstream.
async fn fetch_upstream(symbol: &'static str) -> String {
    pulse::profile_async!(Op::FetchUpstream, async move {
        let key = format!("upstream:{symbol}");
        Delay::new(Duration::from_millis(15)).await;
        key
    })
    .await
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // The workload's size: ORDERS in the feed, REQUESTS_PER_WORKER served.
    let mut args = std::env::args().skip(1).map(|a| a.parse::<usize>());
    let n_orders = args.next().transpose()?.unwrap_or(200_000);
    let requests = args.next().transpose()?.unwrap_or(1200);

    let path = session_path("tour");
    let session = pulse::Session::builder().output(&path).start()?;

    // Set-up that is not the subject: paused, so it counts in no scope.
    pulse::pause!();
    let mut rng = Rng::new(42);
    // A table the service keeps to its end (`black_box`: an optimizer that
    // sees only its length used would not allocate it at all).
    let warmup: Vec<u64> = std::hint::black_box((0..1000).map(|_| rng.next_u64()).collect());
    pulse::unpause!();

    let feed = generate_feed(n_orders, &mut rng);
    let orders = Arc::new(parse_feed(&feed));
    let index = Arc::new(build_index(&orders));
    let cache = Arc::new(QuoteCache { quotes: Mutex::new(HashMap::new()) });
    let workers: Vec<_> = (0..2)
        .map(|w| {
            let (orders, index, cache) =
                (Arc::clone(&orders), Arc::clone(&index), Arc::clone(&cache));
            std::thread::Builder::new()
                .name(format!("worker-{w}"))
                .spawn(move || serve(w, orders, index, cache, requests))
        })
        .collect::<Result<_, _>>()?;
    let upstream: Vec<String> =
        SYMBOLS.iter().take(4).map(|s| block_on(fetch_upstream(s))).collect();
    let served: Vec<Served> = workers.into_iter().map(|h| h.join().unwrap_or_default()).collect();
    let checksum: u64 = served.iter().map(|s| s.checksum).sum();
    println!(
        "served {} requests over {} orders, {} upstream quotes (checksum {checksum}, warm-up {})",
        2 * requests,
        orders.len(),
        upstream.len(),
        warmup.len()
    );
    println!(
        "audit records kept: {} ({} bytes)",
        served.iter().map(|s| s.audit_records).sum::<usize>(),
        served.iter().map(|s| s.audit_bytes).sum::<usize>()
    );
    // The upstream quotes too: fetched one after another, 15 ms apart,
    // they would end the session live after growing through much of it.
    drop((feed, orders, index, upstream));

    let path = session.finish()?;
    println!();
    println!("In-process summary (pulse::ReportBuilder):");
    print!("{}", pulse::ReportBuilder::new().group_by_category(true).build());
    println!();
    drop(cache);
    print_report(&path)
}
