//! `kill -9` under load, ten rounds in a row: the real binary serves concurrent clients that
//! charge, race for coupons, place multi-line orders, pay (some with coupons) and cancel; it
//! is killed with SIGKILL at a random moment and restarted on the same directory. Every
//! operation whose success reply arrived is then found in the recovered state (operations
//! whose reply never arrived may or may not be there), and the audit passes. Odd rounds run
//! with every actor stopping after every message, so kills land mid-activation and
//! mid-passivation too.
//!
//! Seeded: a failure prints the seed; `CRASH_SEED=<n> cargo test --test crash` replays it.

mod helpers;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use helpers::binary::{Server, command, start_command};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{Value, json};

const ROUNDS: usize = 10;
const CLIENTS: u64 = 12;
/// Each client drives its own users, one request at a time, so at most one of its operations
/// is unanswered when the server dies.
const USERS_PER_CLIENT: u64 = 4;
const INITIAL_BALANCE: u64 = 100_000;

#[derive(Clone, Debug, PartialEq, Eq)]
enum Known {
    Pending,
    Paid {
        paid_amount: u64,
        coupon: Option<u64>,
    },
    Cancelled,
}

/// What clients were told succeeded, and what they asked without hearing back.
#[derive(Default)]
struct Ledger {
    /// Acknowledged charges per user.
    charged: BTreeMap<u64, u64>,
    /// Per user, the amount of a charge whose reply never arrived.
    unanswered_charge: BTreeMap<u64, u64>,
    /// (user, coupon) issued.
    coupons: BTreeSet<(u64, u64)>,
    /// Coupons used, by (user, coupon), with the order they paid.
    used: BTreeMap<(u64, u64), u64>,
    /// Orders placed, with their buyer, total and last acknowledged state.
    orders: BTreeMap<u64, (u64, u64, Known)>,
    /// Orders whose last operation (pay or cancel) was never answered.
    unsure: BTreeSet<u64>,
}

async fn client(
    server: Arc<Server>,
    index: u64,
    options: Arc<Vec<(u64, u64)>>,
    seed: u64,
    ledger: Arc<Mutex<Ledger>>,
) {
    let mut rng = StdRng::seed_from_u64(seed);
    let users: Vec<u64> = (0..USERS_PER_CLIENT)
        .map(|k| 1 + index + k * CLIENTS)
        .collect();
    loop {
        let user = users[rng.random_range(0..users.len())];
        let alive = match rng.random_range(0..10) {
            0..=2 => charge(&server, user, rng.random_range(1..5_000), &ledger).await,
            3 => issue(&server, user, rng.random_range(1..=5), &ledger).await,
            4..=6 => place(&server, user, &mut rng, &options, &ledger).await,
            7 | 8 => pay(&server, user, &mut rng, &ledger).await,
            _ => cancel(&server, user, &mut rng, &ledger).await,
        };
        if !alive {
            return;
        }
    }
}

async fn charge(server: &Server, user: u64, amount: u64, ledger: &Mutex<Ledger>) -> bool {
    let path = format!("/users/{user}/points/charge");
    match server.try_post(&path, json!({ "amount": amount })).await {
        Some((200, _)) => *ledger.lock().unwrap().charged.entry(user).or_default() += amount,
        Some(_) => {}
        None => {
            ledger
                .lock()
                .unwrap()
                .unanswered_charge
                .insert(user, amount);
            return false;
        }
    }
    true
}

async fn issue(server: &Server, user: u64, coupon: u64, ledger: &Mutex<Ledger>) -> bool {
    let path = format!("/coupons/{coupon}/issue");
    match server.try_post(&path, json!({ "user_id": user })).await {
        Some((201, _)) => drop(ledger.lock().unwrap().coupons.insert((user, coupon))),
        Some(_) => {}
        None => return false,
    }
    true
}

async fn place(
    server: &Server,
    user: u64,
    rng: &mut StdRng,
    options: &[(u64, u64)],
    ledger: &Mutex<Ledger>,
) -> bool {
    let mut picked = BTreeSet::new();
    for _ in 0..rng.random_range(1..=3) {
        picked.insert(options[rng.random_range(0..options.len())]);
    }
    let items: Vec<Value> = picked
        .iter()
        .map(|(product, option)| json!({"product_id": product, "option_id": option, "quantity": 1}))
        .collect();
    match server
        .try_post("/orders", json!({"user_id": user, "items": items}))
        .await
    {
        Some((201, order)) => {
            let id = order["order_id"].as_u64().unwrap();
            let total = order["total_amount"].as_u64().unwrap();
            let earlier = ledger
                .lock()
                .unwrap()
                .orders
                .insert(id, (user, total, Known::Pending));
            assert!(earlier.is_none(), "order id {id} was given twice");
        }
        Some(_) => {}
        None => return false,
    }
    true
}

/// A PENDING order of `user`'s from the ledger, if any.
fn pending_of(ledger: &Mutex<Ledger>, user: u64, rng: &mut StdRng) -> Option<u64> {
    let ledger = ledger.lock().unwrap();
    let pending: Vec<u64> = ledger
        .orders
        .iter()
        .filter(|(id, (buyer, _, known))| {
            *buyer == user && *known == Known::Pending && !ledger.unsure.contains(id)
        })
        .map(|(id, _)| *id)
        .collect();
    (!pending.is_empty()).then(|| pending[rng.random_range(0..pending.len())])
}

async fn pay(server: &Server, user: u64, rng: &mut StdRng, ledger: &Mutex<Ledger>) -> bool {
    let Some(order) = pending_of(ledger, user, rng) else {
        return true;
    };
    let coupon = {
        let ledger = ledger.lock().unwrap();
        let held: Vec<u64> = (1..=5)
            .filter(|c| {
                ledger.coupons.contains(&(user, *c)) && !ledger.used.contains_key(&(user, *c))
            })
            .collect();
        (!held.is_empty() && rng.random_bool(0.5)).then(|| held[rng.random_range(0..held.len())])
    };
    let path = format!("/orders/{order}/payment");
    match server
        .try_post(&path, json!({"user_id": user, "coupon_id": coupon}))
        .await
    {
        Some((200, paid)) => {
            let mut ledger = ledger.lock().unwrap();
            let paid_amount = paid["paid_amount"].as_u64().unwrap();
            ledger.orders.get_mut(&order).unwrap().2 = Known::Paid {
                paid_amount,
                coupon,
            };
            if let Some(coupon) = coupon {
                ledger.used.insert((user, coupon), order);
            }
        }
        Some(_) => {}
        None => {
            ledger.lock().unwrap().unsure.insert(order);
            return false;
        }
    }
    true
}

async fn cancel(server: &Server, user: u64, rng: &mut StdRng, ledger: &Mutex<Ledger>) -> bool {
    let Some(order) = pending_of(ledger, user, rng) else {
        return true;
    };
    let path = format!("/orders/{order}/cancel");
    match server.try_post(&path, json!({ "user_id": user })).await {
        Some((200, _)) => {
            ledger.lock().unwrap().orders.get_mut(&order).unwrap().2 = Known::Cancelled
        }
        Some(_) => {}
        None => {
            ledger.lock().unwrap().unsure.insert(order);
            return false;
        }
    }
    true
}

/// Checks every acknowledged operation against the restarted server, then settles what was
/// unanswered with what the server says (so the next round's checks are exact again).
async fn check_and_settle(server: &Server, ledger: &mut Ledger, seed: u64, round: usize) {
    let context = format!("seed {seed}, after kill {round}");
    let mut paid_by_user: BTreeMap<u64, u64> = BTreeMap::new();
    let mut statuses: BTreeMap<u64, Value> = BTreeMap::new();
    for user in 1..=CLIENTS * USERS_PER_CLIENT {
        // Every order of the user, page by page, newest first.
        let mut page = server.get(&format!("/users/{user}/orders?limit=100")).await;
        loop {
            for order in page["orders"].as_array().unwrap() {
                if order["status"] == "PAID" {
                    *paid_by_user.entry(user).or_default() +=
                        order["paid_amount"].as_u64().unwrap();
                }
                statuses.insert(order["order_id"].as_u64().unwrap(), order.clone());
            }
            let Some(before) = page["next_before"].as_u64() else {
                break;
            };
            let next = format!("/users/{user}/orders?limit=100&before={before}");
            page = server.get(&next).await;
        }
    }
    for (id, (buyer, total, known)) in &mut ledger.orders {
        let order = statuses
            .get(id)
            .unwrap_or_else(|| panic!("{context}: acknowledged order {id} is missing"));
        assert_eq!(order["user_id"], *buyer, "{context}: order {id}");
        assert_eq!(order["total_amount"], *total, "{context}: order {id}");
        let actual = match order["status"].as_str().unwrap() {
            "PENDING" => Known::Pending,
            "PAID" => Known::Paid {
                paid_amount: order["paid_amount"].as_u64().unwrap(),
                coupon: order["coupon_id"].as_u64(),
            },
            "CANCELLED" => Known::Cancelled,
            other => panic!("{context}: order {id} is {other}"),
        };
        if ledger.unsure.remove(id) {
            if let Known::Paid {
                coupon: Some(c), ..
            } = actual
            {
                ledger.used.insert((*buyer, c), *id);
            }
        } else {
            assert_eq!(actual, *known, "{context}: order {id}");
        }
        *known = actual;
    }
    for user in 1..=CLIENTS * USERS_PER_CLIENT {
        let coupons = server.get(&format!("/users/{user}/coupons")).await;
        let held: BTreeMap<u64, Value> = coupons["coupons"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| (c["coupon_id"].as_u64().unwrap(), c.clone()))
            .collect();
        for &(_, coupon) in ledger.coupons.range((user, 0)..=(user, u64::MAX)) {
            let held = held
                .get(&coupon)
                .unwrap_or_else(|| panic!("{context}: user {user} lost coupon {coupon}"));
            if let Some(order) = ledger.used.get(&(user, coupon)) {
                assert_eq!(
                    (held["status"].as_str(), held["order_id"].as_u64()),
                    (Some("USED"), Some(*order)),
                    "{context}: user {user} coupon {coupon}"
                );
            }
        }
        // Coupons issued without an answer are the server's to tell.
        for &coupon in held.keys() {
            ledger.coupons.insert((user, coupon));
        }
        let balance = server.get(&format!("/users/{user}/points")).await["balance"]
            .as_u64()
            .unwrap();
        let charged = ledger.charged.get(&user).copied().unwrap_or(0);
        let paid = paid_by_user.get(&user).copied().unwrap_or(0);
        let expected = INITIAL_BALANCE + charged - paid;
        let unanswered = ledger.unanswered_charge.remove(&user);
        if balance != expected {
            let applied = unanswered.filter(|amount| expected + amount == balance);
            assert!(
                applied.is_some(),
                "{context}: user {user} has {balance}, expected {expected} (unanswered charge: {unanswered:?})"
            );
            *ledger.charged.entry(user).or_default() += applied.unwrap();
        }
    }
    let audit = server.audit().await;
    assert_eq!(audit["ok"], true, "{context}: {audit}");
    let full = server.full_audit().await;
    assert_eq!(full["ok"], true, "{context}: full audit {full}");
}

/// The server, archiving ended orders 50 ms after they end and flushing the entity store every
/// 30 ms: kills land before, during and after moves to the archive, flushes and the deletion of
/// journal segments the store includes. In odd rounds every actor also stops after every
/// message (at most 16 run), so kills land while actors start, stop and hand their state back.
fn start(dir: &std::path::Path, round: usize) -> Server {
    let mut command = command(dir);
    command.env("COMMERCE__ORDER__ARCHIVE_AFTER", "50ms");
    command.env("COMMERCE__SNAPSHOT__INTERVAL", "30ms");
    if round % 2 == 1 {
        command.env("COMMERCE__ACTORS__PASSIVATE_AFTER", "0s");
        command.env("COMMERCE__ACTORS__MAX_RUNNING", "16");
    }
    start_command(command)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_under_load_loses_nothing_acknowledged() {
    let seed: u64 = std::env::var("CRASH_SEED")
        .ok()
        .and_then(|seed| seed.parse().ok())
        .unwrap_or_else(rand::random);
    println!("crash test seed {seed} (rerun: CRASH_SEED={seed} cargo test --test crash)");
    let mut rng = StdRng::seed_from_u64(seed);
    let dir = tempfile::tempdir().unwrap();
    let mut ledger = Ledger::default();
    let mut server = start(dir.path(), 1);
    let products = server.get("/products?size=100").await;
    let options: Vec<(u64, u64)> = products["items"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|product| {
            let id = product["id"].as_u64().unwrap();
            let options = product["options"].as_array().unwrap().clone();
            options
                .into_iter()
                .map(move |o| (id, o["id"].as_u64().unwrap()))
        })
        .collect();
    let options = Arc::new(options);
    for round in 1..=ROUNDS {
        for (product, option) in options.iter().step_by(3) {
            let path = format!("/admin/products/{product}/options/{option}/restock");
            server.try_post(&path, json!({"quantity": 20})).await;
        }
        let shared = Arc::new(Mutex::new(std::mem::take(&mut ledger)));
        let running = Arc::new(server);
        let clients: Vec<_> = (0..CLIENTS)
            .map(|index| {
                let task = client(
                    running.clone(),
                    index,
                    options.clone(),
                    rng.random(),
                    shared.clone(),
                );
                tokio::spawn(task)
            })
            .collect();
        // The moment of the kill is random; nothing waits on it to be anything in particular.
        tokio::time::sleep(Duration::from_millis(rng.random_range(100..500))).await;
        let pid = running.child.id().to_string();
        let killed = std::process::Command::new("kill")
            .args(["-KILL", &pid])
            .status()
            .unwrap();
        assert!(killed.success());
        for client in clients {
            client.await.unwrap();
        }
        drop(Arc::try_unwrap(running).ok().expect("clients are done"));
        ledger = Arc::try_unwrap(shared).ok().unwrap().into_inner().unwrap();
        server = start(dir.path(), round + 1);
        check_and_settle(&server, &mut ledger, seed, round).await;
    }
    let acknowledged = ledger.orders.len();
    assert!(
        acknowledged > 50,
        "the load placed {acknowledged} orders in all"
    );
    let mut server = server;
    assert!(server.terminate().success());
    // The kills met the archive at work: orders moved there and were read back above.
    let archive = commerce_engine::archive::Archive::open(dir.path()).unwrap();
    let archived = archive.all().count();
    println!("{archived} of {acknowledged} acknowledged orders ended in the archive");
    assert!(archived > 0, "nothing was archived");
}
