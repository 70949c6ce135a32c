//! An async web service on tokio: per-request operations, and a database
//! call that waits rather than works.
//!
//! A product API receives HTTP requests, many at once on a two-thread tokio
//! runtime. Each request is parsed, its bearer token authenticated, the
//! product looked up in a cache, fetched from the database on a miss, and
//! the response serialised as JSON. The database is simulated by a sleep of
//! a few milliseconds: the report shows the query's wall time (first poll
//! to completion) next to its busy time (the time it was polled), which is
//! close to nothing — waiting on I/O is not CPU.
//!
//!     cargo run --release --example web_service [REQUESTS]

use std::collections::hash_map::DefaultHasher;
use std::collections::HashMap;
use std::fmt::Write;
use std::hash::{Hash, Hasher};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use pulse_examples::{print_report, session_path, Rng};

#[global_allocator]
static ALLOC: pulse::Alloc = pulse::Alloc::system();

/// The service's operations.
#[derive(pulse::Operation)]
enum Op {
    #[category(name = "Http", description = "Request handling")]
    HandleRequest,
    #[category(name = "Http")]
    ParseRequest,
    #[category(name = "Auth", description = "Authentication")]
    Authenticate,
    #[category(name = "Cache", description = "Product cache")]
    CacheLookup,
    #[category(name = "Database", description = "Database queries")]
    DatabaseQuery,
    #[category(name = "Http")]
    SerializeResponse,
}

/// How long the simulated database takes to answer a query.
const DB_LATENCY: Duration = Duration::from_millis(3);
/// Products the cache holds at most.
const CACHE_CAPACITY: usize = 64;
/// Requests in flight at once.
const CONCURRENCY: usize = 32;
const SECRET: &str = "s3cr3t-signing-key";

#[derive(Debug)]
struct Request {
    method: String,
    path: String,
    headers: HashMap<String, String>,
}

#[derive(Debug, Clone)]
struct Product {
    id: u64,
    name: String,
    cents: u64,
    stock: u32,
    tags: Vec<String>,
}

/// What the handlers share.
struct App {
    users: HashMap<String, u64>,
    cache: Mutex<HashMap<u64, Arc<Product>>>,
}

fn sign(user: &str) -> String {
    let mut h = DefaultHasher::new();
    (SECRET, user).hash(&mut h);
    format!("{user}.{:016x}", h.finish())
}

fn parse(raw: &str) -> Option<Request> {
    let mut lines = raw.split("\r\n");
    let mut start = lines.next()?.split(' ');
    let (method, path) = (start.next()?.to_string(), start.next()?.to_string());
    let headers = lines
        .take_while(|l| !l.is_empty())
        .filter_map(|l| l.split_once(": "))
        .map(|(k, v)| (k.to_ascii_lowercase(), v.to_string()))
        .collect();
    Some(Request { method, path, headers })
}

/// The user id of a validly signed bearer token.
fn authenticate(app: &App, req: &Request) -> Option<u64> {
    let token = req.headers.get("authorization")?.strip_prefix("Bearer ")?;
    let (user, _) = token.split_once('.')?;
    (sign(user) == token).then(|| app.users.get(user).copied()).flatten()
}

/// The simulated database: a query that waits on the network, then a row.
async fn query_product(id: u64) -> Product {
    tokio::time::sleep(DB_LATENCY).await;
    Product {
        id,
        name: format!("Product {id}"),
        cents: 499 + id * 37 % 20_000,
        stock: (id * 13 % 250) as u32,
        tags: ["new", "sale", "eco", "bulk"]
            .iter()
            .take(1 + (id % 4) as usize)
            .map(|t| t.to_string())
            .collect(),
    }
}

fn serialize(p: &Product, user: u64) -> String {
    let mut json = String::with_capacity(160);
    let _ = write!(
        json,
        r#"{{"id":{},"name":"{}","price":"{}.{:02}","stock":{},"tags":["#,
        p.id,
        p.name,
        p.cents / 100,
        p.cents % 100,
        p.stock
    );
    for (i, t) in p.tags.iter().enumerate() {
        let _ = write!(json, r#"{}"{t}""#, if i > 0 { "," } else { "" });
    }
    let _ = write!(json, r#"],"viewer":{user}}}"#);
    json
}

/// One request, start to finish: status and body.
async fn handle(app: Arc<App>, raw: String) -> (u16, String) {
    let Some(req) = pulse::profile!(Op::ParseRequest, { parse(&raw) }) else {
        return (400, String::from("bad request"));
    };
    let Some(user) = pulse::profile!(Op::Authenticate, { authenticate(&app, &req) }) else {
        return (401, String::from("unauthorized"));
    };
    let Some(id) = req.path.strip_prefix("/api/products/").and_then(|id| id.parse().ok()) else {
        return (404, format!("no route for {} {}", req.method, req.path));
    };
    let cached = pulse::profile!(Op::CacheLookup, {
        app.cache.lock().unwrap_or_else(|e| e.into_inner()).get(&id).cloned()
    });
    let product = match cached {
        Some(p) => p,
        None => {
            let p = Arc::new(pulse::profile_async!(Op::DatabaseQuery, query_product(id)).await);
            let mut cache = app.cache.lock().unwrap_or_else(|e| e.into_inner());
            if cache.len() >= CACHE_CAPACITY {
                // Full: evict an arbitrary entry (random eviction, as Redis's
                // allkeys-random does), so the cache stays bounded.
                if let Some(&old) = cache.keys().next() {
                    cache.remove(&old);
                }
            }
            cache.insert(id, Arc::clone(&p));
            p
        }
    };
    (200, pulse::profile!(Op::SerializeResponse, { serialize(&product, user) }))
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let requests: usize = std::env::args().nth(1).map(|a| a.parse()).transpose()?.unwrap_or(2000);

    let path = session_path("web_service");
    let session = pulse::Session::builder().output(&path).start()?;

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("tokio-worker")
        .enable_time()
        .build()?;
    let users: HashMap<String, u64> = (0..50).map(|i| (format!("user{i}"), i)).collect();
    let app = Arc::new(App { users, cache: Mutex::new(HashMap::with_capacity(CACHE_CAPACITY)) });

    // The clients: mostly good tokens, some forged, popular products often.
    let mut rng = Rng::new(99);
    let raw: Vec<String> = (0..requests)
        .map(|_| {
            let user = format!("user{}", rng.below(50));
            let token = if rng.below(20) == 0 { format!("{user}.forged") } else { sign(&user) };
            let id = if rng.below(2) == 0 { rng.below(20) } else { rng.below(5000) };
            format!(
                "GET /api/products/{id} HTTP/1.1\r\nHost: shop.example\r\n\
                 Authorization: Bearer {token}\r\nAccept: application/json\r\n\r\n"
            )
        })
        .collect();

    let statuses = runtime.block_on(async {
        let mut statuses: HashMap<u16, usize> = HashMap::new();
        let mut pending = raw.into_iter();
        let mut in_flight = tokio::task::JoinSet::new();
        loop {
            while in_flight.len() < CONCURRENCY {
                let Some(r) = pending.next() else { break };
                let app = Arc::clone(&app);
                in_flight.spawn(pulse::profile_async!(Op::HandleRequest, handle(app, r)));
            }
            let Some(done) = in_flight.join_next().await else { break };
            let (status, body) = done.map_err(|e| e.to_string())?;
            std::hint::black_box(body);
            *statuses.entry(status).or_default() += 1;
        }
        Ok::<_, String>(statuses)
    })?;
    drop(runtime);
    let mut statuses: Vec<_> = statuses.into_iter().collect();
    statuses.sort();
    println!(
        "{requests} requests, {CONCURRENCY} at a time: {statuses:?} by status; {} products cached",
        app.cache.lock().unwrap_or_else(|e| e.into_inner()).len()
    );

    let path = session.finish()?;
    drop(app);
    println!();
    print_report(&path)
}
