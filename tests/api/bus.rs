//! The relay against the real RabbitMQ, each test with its own exchange and queue.

use crate::helpers::*;
use crate::proxy::Proxy;
use crate::scratch::{BrokerObjects, TempPath};
use serde_json::{json, Value};
use std::collections::{HashMap, HashSet};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};
use tokio::sync::oneshot;
use uuid::Uuid;
use vouch::bus::consumer::{self, ConsumerConfig, Summary};

const AMQP: &str = "amqp://guest:guest@127.0.0.1:5672/%2f";

pub struct Subscriber {
    pub exchange: String,
    out: TempPath,
    /// Its exchange and queue, deleted when it goes.
    _broker: BrokerObjects,
    stop: Option<oneshot::Sender<()>>,
    done: Option<oneshot::Receiver<Summary>>,
}

impl Subscriber {
    /// The reference subscriber on a fresh exchange and queue.
    pub async fn start() -> Subscriber {
        let name = format!("vouch.test.{}", Uuid::new_v4().simple());
        let out = TempPath::new("audit.jsonl");
        let config = ConsumerConfig {
            amqp_url: AMQP.into(),
            exchange: name.clone(),
            queue: format!("{name}.audit"),
            out: out.to_path_buf(),
        };
        let broker = BrokerObjects {
            exchanges: vec![config.exchange.clone()],
            queues: vec![config.queue.clone()],
        };
        let (stop, stopped) = oneshot::channel::<()>();
        let (report, done) = oneshot::channel();
        let (ready_tx, ready) = oneshot::channel::<()>();
        actix_web::rt::spawn(async move {
            let _ = ready_tx.send(());
            let summary = consumer::run(&config, async {
                let _ = stopped.await;
            })
            .await
            .expect("subscriber runs");
            let _ = report.send(summary);
        });
        ready.await.unwrap();
        // Let the queue be declared and bound before anything is published.
        tokio::time::sleep(Duration::from_millis(300)).await;
        Subscriber {
            exchange: name,
            out,
            _broker: broker,
            stop: Some(stop),
            done: Some(done),
        }
    }

    pub fn lines(&self) -> Vec<Value> {
        std::fs::read_to_string(&self.out)
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    /// Every byte the subscriber wrote so far.
    pub fn bytes(&self) -> Vec<u8> {
        std::fs::read(&self.out).unwrap_or_default()
    }

    pub async fn wait_for(&self, n: usize) -> Vec<Value> {
        let deadline = Instant::now() + Duration::from_secs(90);
        loop {
            let lines = self.lines();
            if lines.len() >= n {
                return lines;
            }
            assert!(
                Instant::now() < deadline,
                "{} of {n} events arrived",
                lines.len()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn stop(mut self) -> Summary {
        let _ = self.stop.take().unwrap().send(());
        self.done.take().unwrap().await.unwrap()
    }
}

async fn event_ids(app: &TestApp) -> Vec<String> {
    app.db()
        .await
        .query(
            "SELECT event_id::text FROM auth_events ORDER BY position",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect()
}

#[actix_web::test]
async fn every_committed_event_arrives_once_in_stream_order_and_rollbacks_publish_nothing() {
    let sub = Subscriber::start().await;
    let exchange = sub.exchange.clone();
    let app = spawn_app_with(|s| {
        s.relay = true;
        s.exchange = exchange;
    })
    .await;
    let user = app.create_user("ada@example.org").await;
    // Rolled back by the unique email: no second user.registered anywhere.
    let dup = app
        .request(
            "POST",
            "/v1/users",
            None,
            Some(json!({"email": "ada@example.org", "password": PASSWORD})),
        )
        .await;
    assert_eq!(dup.status, 409);
    let org = app.create_org("acme", Some(&id(&user))).await;
    let oid = id(&org);
    for _ in 0..5 {
        let (kid, _) = app.create_key(&oid, &["deploy"]).await;
        app.post(
            &format!("/v1/orgs/{oid}/keys/{kid}/revoke"),
            &app.admin_key,
            json!({}),
        )
        .await;
    }
    app.patch(
        &format!("/v1/orgs/{oid}"),
        &app.admin_key,
        json!({"name": "Acme Corp"}),
    )
    .await;

    let committed = event_ids(&app).await;
    let arrived = sub.wait_for(committed.len()).await;
    let ids: Vec<&str> = arrived.iter().map(|e| e["id"].as_str().unwrap()).collect();
    assert_eq!(
        ids.iter().copied().collect::<HashSet<_>>(),
        committed.iter().map(String::as_str).collect()
    );
    assert_eq!(ids.len(), committed.len(), "no duplicates after dedupe");
    let registered = arrived
        .iter()
        .filter(|e| e["type"] == "vouch.user.registered")
        .count();
    assert_eq!(registered, 1);
    // Sealed in the log, personal fields reach subscribers as written.
    let registration = arrived
        .iter()
        .find(|e| e["type"] == "vouch.user.registered")
        .unwrap();
    assert_eq!(
        registration["data"]["email"], "ada@example.org",
        "{registration}"
    );
    let mut versions: HashMap<String, i64> = HashMap::new();
    for e in &arrived {
        let stream = e["subject"].as_str().unwrap().to_owned();
        let v = e["streamversion"].as_i64().unwrap();
        let previous = versions.insert(stream, v).unwrap_or(0);
        assert_eq!(v, previous + 1, "per-stream order: {e}");
        assert_eq!(e["specversion"], "1.0");
        assert_eq!(e["source"], "vouch");
    }
    assert!(
        !std::fs::read_to_string(&sub.out)
            .unwrap()
            .contains("argon2"),
        "no hash on the bus"
    );
    let revoked = arrived
        .iter()
        .find(|e| e["type"] == "vouch.api_key.revoked")
        .unwrap();
    assert_eq!(revoked["orgid"], oid);
    assert_eq!(revoked["streamtype"], "api_key");
    sub.stop().await;
}

async fn append_raw(app: &TestApp, transactions: usize, per_transaction: usize) {
    let mut db = app.db().await;
    for _ in 0..transactions {
        let tx = db.transaction().await.unwrap();
        let stream = Uuid::new_v4();
        for v in 1..=per_transaction as i32 {
            tx.execute(
                "INSERT INTO auth_events (event_id, stream_type, stream_id, version, event_type, data, metadata) \
                 VALUES ($1, 'test', $2, $3, 'test.load', '{\"n\": 1}', '{}')",
                &[&Uuid::new_v4(), &stream, &v],
            )
            .await
            .unwrap();
        }
        tx.commit().await.unwrap();
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[actix_web::test]
async fn a_broker_outage_loses_nothing() {
    let sub = Subscriber::start().await;
    let proxy = Proxy::start("127.0.0.1:5672").await;
    let (exchange, port) = (sub.exchange.clone(), proxy.port);
    let app = spawn_app_with(|s| {
        s.relay = true;
        s.exchange = exchange;
        s.amqp_url = format!("amqp://guest:guest@127.0.0.1:{port}/%2f");
    })
    .await;
    sub.wait_for(3).await;

    let writer = append_raw(&app, 100, 50);
    let outage = async {
        tokio::time::sleep(Duration::from_millis(200)).await;
        proxy.cut();
        let cut_at = Instant::now();
        let mut seen_down = false;
        while cut_at.elapsed() < Duration::from_secs(3) {
            let ready = app.request("GET", "/readyz", None, None).await;
            assert_eq!(
                ready.status, 200,
                "a bus outage does not make vouch unready"
            );
            seen_down |= ready.body["bus"] == "down";
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        proxy.restore();
        seen_down
    };
    let ((), seen_down) = tokio::join!(writer, outage);
    assert!(seen_down, "/readyz reported the bus down during the cut");

    let committed = event_ids(&app).await;
    assert_eq!(committed.len(), 3 + 5000);
    let arrived = sub.wait_for(committed.len()).await;
    let ids: HashSet<&str> = arrived.iter().map(|e| e["id"].as_str().unwrap()).collect();
    let lost = committed
        .iter()
        .filter(|id| !ids.contains(id.as_str()))
        .count();
    assert_eq!(lost, 0);
    let metrics = app.request("GET", "/metrics", None, None).await;
    assert!(
        metrics.text.contains("vouch_relay_leader 1"),
        "{}",
        metrics.text
    );
    let summary = sub.stop().await;
    println!(
        "outage: 5000 appended, {lost} lost, {} duplicates dropped by the subscriber",
        summary.duplicates
    );
}

#[actix_web::test]
async fn one_instance_relays_and_another_takes_over_when_it_stops() {
    let sub = Subscriber::start().await;
    let exchange = sub.exchange.clone();
    let a = spawn_app_with(|s| {
        s.relay = true;
        s.exchange = exchange.clone();
    })
    .await;
    let b = spawn_instance(&a, |s| {
        s.relay = true;
        s.exchange = exchange.clone();
    })
    .await;
    sub.wait_for(3).await;
    let leaders = || {
        [&a, &b]
            .iter()
            .filter(|i| i.relay.leader.load(Ordering::SeqCst))
            .count()
    };
    assert_eq!(leaders(), 1);
    let (leader, follower) = if a.relay.leader.load(Ordering::SeqCst) {
        (&a, &b)
    } else {
        (&b, &a)
    };

    leader.stop.stop().await;
    let stopped_at = Instant::now();
    while !follower.relay.leader.load(Ordering::SeqCst) {
        assert!(
            stopped_at.elapsed() < Duration::from_secs(10),
            "no failover within 10 s"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    println!("failover after {:?}", stopped_at.elapsed());
    follower.create_user("after@example.org").await;
    let committed = event_ids(follower).await;
    let arrived = sub.wait_for(committed.len()).await;
    assert!(arrived.iter().any(|e| e["type"] == "vouch.user.registered"));
    sub.stop().await;
}

#[actix_web::test]
async fn readiness_follows_the_broker_even_when_the_relay_is_idle() {
    let sub = Subscriber::start().await;
    let proxy = Proxy::start("127.0.0.1:5672").await;
    let (exchange, port) = (sub.exchange.clone(), proxy.port);
    let app = spawn_app_with(|s| {
        s.relay = true;
        s.exchange = exchange;
        s.amqp_url = format!("amqp://guest:guest@127.0.0.1:{port}/%2f");
    })
    .await;
    sub.wait_for(3).await;
    let bus_state =
        || async { app.request("GET", "/readyz", None, None).await.body["bus"].clone() };
    assert_eq!(bus_state().await, "up");
    proxy.cut();
    let deadline = Instant::now() + Duration::from_secs(10);
    while bus_state().await != "down" {
        assert!(
            Instant::now() < deadline,
            "/readyz still says up 10 s after the cut"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    proxy.restore();
    let deadline = Instant::now() + Duration::from_secs(15);
    while bus_state().await != "up" {
        assert!(Instant::now() < deadline, "/readyz did not recover");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    app.create_user("late@example.org").await;
    sub.wait_for(4).await;
    sub.stop().await;
}

#[actix_web::test]
async fn with_no_queue_bound_the_relay_logs_one_line_per_retry() {
    let log = crate::log_capture::LogCapture::start();
    let exchange = format!("vouch.test.{}", Uuid::new_v4().simple());
    let _broker = BrokerObjects {
        exchanges: vec![exchange.clone()],
        queues: vec![],
    };
    let name = exchange.clone();
    let app = spawn_app_with(move |s| {
        s.relay = true;
        s.exchange = name;
    })
    .await;
    for i in 0..20 {
        app.create_org(&format!("unbound-{i}"), None).await;
    }
    // Backoff 0.1, 0.2, 0.4, 0.8, 1.6 s: six rounds or so in four seconds.
    tokio::time::sleep(Duration::from_secs(4)).await;
    app.stop.stop().await;
    let text = log.text();
    let returned = text
        .lines()
        .filter(|l| l.contains("Server returned us a message"))
        .count();
    let retries: Vec<&str> = text
        .lines()
        .filter(|l| l.contains("relay: retrying") && l.contains("returned 23 of 23 events"))
        .collect();
    eprintln!(
        "no queue bound: {} retry lines, {returned} per-message lines, 23 events",
        retries.len()
    );
    assert_eq!(returned, 0, "the broker library's per-message warning");
    assert!(!retries.is_empty() && retries.len() <= 12, "{retries:?}");
}
