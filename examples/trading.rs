//! An arbitrage trader: the order pipeline, and the step that dominates it
//! drilled down.
//!
//! Quotes for a few symbols arrive from three venues as text. Each tick is
//! parsed, checked for an arbitrage (one venue bids above another's ask by
//! more than the fees), turned into a pair of orders, submitted, and the
//! positions updated. The venues are real servers on loopback TCP, each a
//! thread with its own matching of the orders it receives, so submitting an
//! order is a real network round trip.
//!
//! The first-level operations show that submission takes most of the time;
//! the finer operations inside it (risk check, serialisation, the round
//! trip, parsing the acknowledgement, the risk update) show that the round
//! trip is what to work on, not the code around it.
//!
//!     cargo run --release --example trading [TICKS]

use std::collections::HashMap;
use std::fmt::Write as _;
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};

use pulse_examples::{print_report, session_path, Rng};

#[global_allocator]
static ALLOC: pulse::Alloc = pulse::Alloc::system();

/// The trader's operations: the pipeline first, then the steps of a submission.
#[derive(pulse::Operation)]
enum Op {
    #[category(name = "DataFeed", description = "Price feed processing")]
    ParseFeed,
    #[category(name = "Analysis", description = "Opportunity detection")]
    DetectArbitrage,
    #[category(name = "Trading", description = "Order management")]
    CreateOrders,
    #[category(name = "Trading")]
    SubmitOrders,
    #[category(name = "Portfolio", description = "Positions and P&L")]
    UpdatePositions,
    #[category(name = "Submission", description = "Inside an order submission")]
    PreTradeRiskCheck,
    #[category(name = "Submission")]
    SerializeOrder,
    #[category(name = "Submission")]
    ExchangeRoundTrip,
    #[category(name = "Submission")]
    ParseAck,
    #[category(name = "Submission")]
    PostTradeRiskUpdate,
}

const VENUES: [&str; 3] = ["XNYS", "BATS", "IEXG"];
const SYMBOLS: [&str; 6] = ["AAPL", "MSFT", "NVDA", "AMZN", "GOOG", "META"];
/// The most the book may be long or short, in cents.
const MAX_EXPOSURE_CENTS: i64 = 1_000_000_000;
/// Fees and slippage per share, in cents: an edge must beat them.
const COST_CENTS: u64 = 2;

/// One venue's quote for a symbol, prices in cents.
#[derive(Debug, Clone)]
struct Quote {
    venue: usize,
    symbol: String,
    bid: u64,
    ask: u64,
    size: u64,
}

/// A price gap worth trading.
#[derive(Debug)]
struct Opportunity {
    symbol: String,
    buy_venue: usize,
    sell_venue: usize,
    buy_at: u64,
    sell_at: u64,
    qty: u64,
}

#[derive(Debug)]
struct Order {
    id: u64,
    venue: usize,
    symbol: String,
    buy: bool,
    qty: u64,
    limit: u64,
}

#[derive(Debug)]
struct Fill {
    id: u64,
    qty: u64,
    price: u64,
}

/// The feed: one text line per venue for a symbol, per tick.
fn feed_tick(rng: &mut Rng, seq: u64, mid: &mut [u64; SYMBOLS.len()]) -> String {
    let s = (seq % SYMBOLS.len() as u64) as usize;
    mid[s] = (mid[s] as i64 + rng.below(21) as i64 - 10).max(1000) as u64;
    let mut text = String::with_capacity(VENUES.len() * 40);
    for (v, venue) in VENUES.iter().enumerate() {
        // Venues drift apart now and then: that is the opportunity.
        let skew = if rng.below(4) == 0 { 4 + rng.below(8) } else { 0 };
        let bid = mid[s] - 2 + if v == 0 { skew } else { 0 };
        let _ = writeln!(
            text,
            "{seq},{venue},{},{bid},{},{}",
            SYMBOLS[s],
            bid + 3,
            100 + rng.below(900)
        );
    }
    text
}

fn parse_feed(text: &str) -> Vec<Quote> {
    pulse::profile!(Op::ParseFeed, {
        text.lines()
            .filter_map(|line| {
                let mut f = line.split(',');
                let (_seq, venue, symbol) = (f.next()?, f.next()?, f.next()?);
                Some(Quote {
                    venue: VENUES.iter().position(|v| *v == venue)?,
                    symbol: symbol.to_string(),
                    bid: f.next()?.parse().ok()?,
                    ask: f.next()?.parse().ok()?,
                    size: f.next()?.parse().ok()?,
                })
            })
            .collect()
    })
}

fn detect(quotes: &[Quote]) -> Option<Opportunity> {
    pulse::profile!(Op::DetectArbitrage, {
        let best_bid = quotes.iter().max_by_key(|q| q.bid)?;
        let best_ask = quotes.iter().min_by_key(|q| q.ask)?;
        (best_bid.venue != best_ask.venue && best_bid.bid > best_ask.ask + COST_CENTS).then(|| {
            Opportunity {
                symbol: best_bid.symbol.clone(),
                buy_venue: best_ask.venue,
                sell_venue: best_bid.venue,
                buy_at: best_ask.ask,
                sell_at: best_bid.bid,
                qty: best_bid.size.min(best_ask.size),
            }
        })
    })
}

fn create_orders(o: &Opportunity, next_id: &mut u64) -> Vec<Order> {
    pulse::profile!(Op::CreateOrders, {
        let mut order = |venue, buy, limit| {
            *next_id += 1;
            Order { id: *next_id, venue, symbol: o.symbol.clone(), buy, qty: o.qty, limit }
        };
        vec![order(o.buy_venue, true, o.buy_at), order(o.sell_venue, false, o.sell_at)]
    })
}

/// Open orders' exposure, checked before and updated after each order.
#[derive(Default)]
struct Risk {
    /// Net position value: buys add, sells subtract.
    exposure_cents: i64,
    orders: u64,
}

/// A connection to each venue.
struct Gateway {
    venues: Vec<(BufReader<TcpStream>, TcpStream)>,
    line: String,
}

impl Gateway {
    /// Sends each order to its venue and waits for its fill, buy orders first.
    fn submit(&mut self, orders: Vec<Order>, risk: &mut Risk) -> Result<Vec<(bool, Fill)>, String> {
        pulse::profile!(Op::SubmitOrders, {
            let mut fills = Vec::with_capacity(orders.len());
            for order in orders {
                pulse::profile!(Op::PreTradeRiskCheck, {
                    let notional = (order.qty * order.limit) as i64;
                    let after = risk.exposure_cents + if order.buy { notional } else { -notional };
                    if after.abs() > MAX_EXPOSURE_CENTS || order.qty == 0 {
                        return Err(format!("order {} breaches the risk limits", order.id));
                    }
                });
                let wire = pulse::profile!(Op::SerializeOrder, {
                    format!(
                        "35=D|11={}|55={}|54={}|38={}|44={}|\n",
                        order.id,
                        order.symbol,
                        if order.buy { 1 } else { 2 },
                        order.qty,
                        order.limit
                    )
                });
                pulse::profile!(Op::ExchangeRoundTrip, {
                    let (reader, writer) = &mut self.venues[order.venue];
                    writer.write_all(wire.as_bytes()).map_err(|e| e.to_string())?;
                    self.line.clear();
                    reader.read_line(&mut self.line).map_err(|e| e.to_string())?;
                });
                let fill = pulse::profile!(Op::ParseAck, {
                    parse_ack(&self.line)
                        .filter(|f| f.id == order.id)
                        .ok_or_else(|| format!("bad ack {:?} for order {}", self.line, order.id))?
                });
                pulse::profile!(Op::PostTradeRiskUpdate, {
                    let notional = (fill.qty * fill.price) as i64;
                    risk.exposure_cents += if order.buy { notional } else { -notional };
                    risk.orders += 1;
                });
                fills.push((order.buy, fill));
            }
            Ok(fills)
        })
    }
}

/// `35=8|11=ID|32=QTY|31=PRICE|` → the fill.
fn parse_ack(line: &str) -> Option<Fill> {
    let mut id = None;
    let mut fill = Fill { id: 0, qty: 0, price: 0 };
    for field in line.trim_end().split('|').filter(|f| !f.is_empty()) {
        let (tag, value) = field.split_once('=')?;
        match tag {
            "35" if value != "8" => return None,
            "11" => id = value.parse().ok(),
            "32" => fill.qty = value.parse().ok()?,
            "31" => fill.price = value.parse().ok()?,
            _ => {}
        }
    }
    fill.id = id?;
    Some(fill)
}

/// A venue: accepts one connection, fills each order against the liquidity
/// it has at the limit, and acknowledges it.
fn venue(listener: TcpListener) -> std::io::Result<u64> {
    let (stream, _) = listener.accept()?;
    stream.set_nodelay(true)?;
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut writer = stream;
    let mut book: HashMap<String, u64> = HashMap::new();
    let mut line = String::new();
    let mut filled = 0;
    while reader.read_line(&mut line)? > 0 {
        let fields: HashMap<&str, &str> =
            line.trim_end().split('|').filter_map(|f| f.split_once('=')).collect();
        let (id, symbol) = (fields.get("11").copied().unwrap_or("0"), fields["55"]);
        let qty: u64 = fields.get("38").and_then(|q| q.parse().ok()).unwrap_or(0);
        let price: u64 = fields.get("44").and_then(|p| p.parse().ok()).unwrap_or(0);
        // Liquidity refills between orders; a large order is partly filled.
        let available = book.entry(symbol.to_string()).or_insert(600);
        let done = qty.min(*available);
        *available = 600 + (*available - done) / 2;
        filled += done;
        writeln!(writer, "35=8|11={id}|32={done}|31={price}|")?;
        line.clear();
    }
    Ok(filled)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let ticks: u64 = std::env::args().nth(1).map(|a| a.parse()).transpose()?.unwrap_or(30_000);

    let path = session_path("trading");
    let session = pulse::Session::builder().output(&path).start()?;

    let mut servers = Vec::new();
    let mut venues = Vec::new();
    for name in VENUES {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let addr = listener.local_addr()?;
        servers.push(
            std::thread::Builder::new()
                .name(format!("venue-{name}"))
                .spawn(move || venue(listener))?,
        );
        let stream = TcpStream::connect(addr)?;
        stream.set_nodelay(true)?;
        venues.push((BufReader::new(stream.try_clone()?), stream));
    }
    let mut gateway = Gateway { venues, line: String::new() };

    let mut rng = Rng::new(7);
    let mut mid = [15_000u64; SYMBOLS.len()];
    let (mut next_id, mut risk) = (0u64, Risk::default());
    let mut positions: HashMap<String, i64> = HashMap::new();
    let (mut opportunities, mut pnl_cents) = (0u64, 0i64);
    for seq in 0..ticks {
        let text = feed_tick(&mut rng, seq, &mut mid);
        let quotes = parse_feed(&text);
        let Some(opportunity) = detect(&quotes) else { continue };
        opportunities += 1;
        let orders = create_orders(&opportunity, &mut next_id);
        let fills = gateway.submit(orders, &mut risk)?;
        pulse::profile!(Op::UpdatePositions, {
            for (buy, f) in &fills {
                let signed = if *buy { f.qty as i64 } else { -(f.qty as i64) };
                *positions.entry(opportunity.symbol.clone()).or_default() += signed;
                pnl_cents -= signed * f.price as i64;
            }
        });
    }
    drop(gateway);
    let mut filled = 0;
    for server in servers {
        filled += server.join().map_err(|_| "a venue panicked")??;
    }
    let open: i64 = positions.values().map(|p| p.abs()).sum();
    println!(
        "{ticks} ticks, {opportunities} opportunities, {} orders ({filled} shares filled), \
         P&L {:.2} with {open} shares open",
        risk.orders,
        pnl_cents as f64 / 100.0
    );

    let path = session.finish()?;
    drop(positions);
    println!();
    print_report(&path)
}
