//! The tour: a small order-book service, profiled end to end.
//!
//! It generates a feed of orders as text, parses it, builds indexes, then
//! serves simulated queries on two threads. When it ends it prints the
//! session's report.
//!
//!     cargo run --release --example tour

use std::collections::HashMap;
use std::sync::Arc;

use pulse_examples::{print_report, session_path, Rng};

#[global_allocator]
static ALLOC: pulse::Alloc = pulse::Alloc::system();

#[derive(Debug, Clone)]
struct Order {
    id: u64,
    symbol: String,
    side: bool,
    price: u64,
    qty: u64,
}

const SYMBOLS: [&str; 8] = ["AAPL", "MSFT", "GOOG", "AMZN", "NVDA", "TSLA", "META", "NFLX"];

fn generate_feed(n: usize, rng: &mut Rng) -> String {
    pulse::scope!("generate feed");
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
}

fn parse_feed(feed: &str) -> Vec<Order> {
    pulse::scope!("parse feed");
    feed.lines()
        .filter_map(|line| {
            let f: Vec<&str> = line.split(',').collect();
            Some(Order {
                id: f.first()?.parse().ok()?,
                symbol: f.get(1)?.to_string(),
                side: *f.get(2)? == "B",
                price: f.get(3)?.parse().ok()?,
                qty: f.get(4)?.parse().ok()?,
            })
        })
        .collect()
}

fn build_index(orders: &[Order]) -> HashMap<String, Vec<usize>> {
    pulse::scope!("build index");
    let mut by_symbol: HashMap<String, Vec<usize>> = HashMap::new();
    for (i, o) in orders.iter().enumerate() {
        by_symbol.entry(o.symbol.clone()).or_default().push(i);
    }
    by_symbol
}

fn vwap(orders: &[Order], ids: &[usize], buy: bool) -> u64 {
    pulse::scope!("vwap");
    let (mut notional, mut qty) = (0u64, 0u64);
    for &i in ids {
        let o = &orders[i];
        if o.side == buy {
            notional += o.price * o.qty;
            qty += o.qty;
        }
    }
    notional.checked_div(qty).unwrap_or(0)
}

fn serve(
    worker: u64,
    orders: Arc<Vec<Order>>,
    index: Arc<HashMap<String, Vec<usize>>>,
    requests: usize,
) -> u64 {
    pulse::scope!("serve requests");
    let mut rng = Rng::new(worker + 7);
    let mut checksum = 0;
    for _ in 0..requests {
        pulse::scope!("request");
        let sym = SYMBOLS[rng.below(SYMBOLS.len() as u64) as usize];
        let response = match index.get(sym) {
            Some(ids) => {
                format!("{sym}: bid {} ask {}", vwap(&orders, ids, true), vwap(&orders, ids, false))
            }
            None => format!("{sym}: unknown"),
        };
        checksum += response.len() as u64 + orders[rng.below(orders.len() as u64) as usize].id;
    }
    checksum
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let path = session_path("tour");
    let session = pulse::Session::builder().output(&path).start()?;

    let mut rng = Rng::new(42);
    let feed = generate_feed(200_000, &mut rng);
    let orders = Arc::new(parse_feed(&feed));
    let index = Arc::new(build_index(&orders));
    let workers: Vec<_> = (0..2)
        .map(|w| {
            let (orders, index) = (Arc::clone(&orders), Arc::clone(&index));
            std::thread::Builder::new()
                .name(format!("worker-{w}"))
                .spawn(move || serve(w, orders, index, 300))
        })
        .collect::<Result<_, _>>()?;
    let checksum: u64 = workers.into_iter().map(|h| h.join().unwrap_or(0)).sum();
    println!("served 600 requests over {} orders (checksum {checksum})\n", orders.len());
    drop((feed, orders, index));

    let path = session.finish()?;
    print_report(&path)
}
