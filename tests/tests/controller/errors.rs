//! What happens after a reconcile fails: backoff, terminal errors, conflicts, panics and
//! timeouts.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::Duration;

use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, PostParams};
use windlass::controller::{
    Action, Context, Controller, EventKind, LabelsChanged, ReconcileReason, TerminalError, not,
    reconciler_fn,
};
use windlass::testing::ApiServer;

use super::support::{
    Recorder, Run, Running, create_cm, data_v, manager, next, next_of, runs_during, set_cm,
    set_label,
};

#[derive(Debug, thiserror::Error)]
#[error("the backend is not reachable yet")]
struct Unavailable;

/// A ConfigMap reconciler that fails while `failures` is above zero (counting it down).
fn failing(
    rec: Recorder,
    failures: Arc<AtomicU32>,
) -> Controller<impl windlass::controller::Reconciler<Object = ConfigMap>> {
    Controller::new(reconciler_fn(
        move |cm: Arc<ConfigMap>, ctx: Context<ConfigMap>| {
            let (rec, failures) = (rec.clone(), failures.clone());
            async move {
                rec.record(Run::of_cm(&cm, &ctx));
                match failures
                    .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                {
                    Ok(_) => Err(Unavailable),
                    Err(_) => Ok(Action::await_change()),
                }
            }
        },
    ))
}

fn gaps(runs: &[Run]) -> Vec<Duration> {
    runs.windows(2).map(|w| w[1].start - w[0].start).collect()
}

/// `actual` is `expected` up to the timer wheel's 1 ms resolution.
fn assert_about(actual: Duration, expected: Duration, what: &str) {
    assert!(
        actual >= expected && actual <= expected + Duration::from_millis(1),
        "{what}: waited {actual:?}, expected {expected:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn repeated_errors_back_off_exponentially_and_a_success_resets_the_backoff() {
    let server = ApiServer::new();
    let client = server.client();
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    create_cm(&api, "flaky", "1").await;

    let (rec, mut rx) = Recorder::new();
    let failures = Arc::new(AtomicU32::new(6));
    let running = Running::start(manager(client).add(failing(rec.clone(), failures.clone())));

    // Six failures, then a success.
    let runs = super::support::next_n(&mut rx, 7).await;
    let attempts: Vec<u32> = runs.iter().map(|r| r.attempt).collect();
    assert_eq!(attempts, [1, 2, 3, 4, 5, 6, 7]);
    assert_eq!(runs[0].reason, ReconcileReason::Startup);
    for run in &runs[1..] {
        assert_eq!(
            run.reason,
            ReconcileReason::Retry {
                attempt: run.attempt
            }
        );
    }
    for (i, gap) in gaps(&runs).into_iter().enumerate() {
        assert_about(
            gap,
            Duration::from_millis(5 << i),
            &format!("retry {}", i + 1),
        );
    }
    assert!(
        runs_during(&mut rx, Duration::from_secs(600))
            .await
            .is_empty(),
        "a success is not retried"
    );

    // The next failure starts from the first step again.
    failures.store(1, Ordering::SeqCst);
    set_cm(&api, "flaky", "2").await;
    let failed = next(&mut rx).await;
    assert_eq!(
        (failed.attempt, &failed.reason),
        (1, &ReconcileReason::ObjectChanged(EventKind::Updated))
    );
    let retried = next(&mut rx).await;
    assert_eq!(
        (retried.attempt, &retried.reason),
        (2, &ReconcileReason::Retry { attempt: 2 })
    );
    assert_about(
        retried.start - failed.start,
        Duration::from_millis(5),
        "first retry after a reset",
    );

    running.stop().await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn a_terminal_error_is_not_retried_until_the_object_changes() {
    let server = ApiServer::new();
    let client = server.client();
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    create_cm(&api, "settings", "invalid").await;

    let (rec, mut rx) = Recorder::new();
    let reconciler = {
        let rec = rec.clone();
        reconciler_fn(move |cm: Arc<ConfigMap>, ctx: Context<ConfigMap>| {
            let rec = rec.clone();
            async move {
                rec.record(Run::of_cm(&cm, &ctx));
                if data_v(&cm) == "invalid" {
                    return Err(TerminalError::new("data.v must not be \"invalid\""));
                }
                Ok(Action::await_change())
            }
        })
    };
    let running = Running::start(manager(client).add(Controller::new(reconciler)));

    assert_eq!(next(&mut rx).await.reason, ReconcileReason::Startup);
    assert!(
        runs_during(&mut rx, Duration::from_secs(3600))
            .await
            .is_empty(),
        "a terminal error is not retried"
    );

    set_cm(&api, "settings", "valid").await;
    let fixed = next(&mut rx).await;
    assert_eq!(
        fixed.reason,
        ReconcileReason::ObjectChanged(EventKind::Updated)
    );
    assert_eq!(
        (fixed.value.as_str(), fixed.attempt),
        ("valid", 1),
        "the failure count was reset"
    );

    running.stop().await.unwrap();
    assert_eq!(rec.count("settings"), 2);
}

#[tokio::test(start_paused = true)]
async fn a_conflict_from_a_stale_write_is_retried_promptly_and_then_succeeds() {
    let server = ApiServer::new();
    let client = server.client();
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    create_cm(&api, "settings", "1").await;

    let (rec, mut rx) = Recorder::new();
    let conflicts = Arc::new(AtomicU32::new(0));
    let reconciler = {
        let (rec, conflicts, other_writer) = (rec.clone(), conflicts.clone(), api.clone());
        reconciler_fn(move |cm: Arc<ConfigMap>, ctx: Context<ConfigMap>| {
            let (rec, conflicts, other_writer) =
                (rec.clone(), conflicts.clone(), other_writer.clone());
            async move {
                rec.record(Run::of_cm(&cm, &ctx));
                let api: Api<ConfigMap> = Api::namespaced(ctx.client().clone(), "default");
                if ctx.attempt() == 1 {
                    // Someone else writes between our read (the cache) and our write.
                    set_label(&other_writer, "settings", "edited-by", "someone-else").await;
                }
                let mut desired = (*cm).clone();
                desired
                    .data
                    .get_or_insert_default()
                    .insert("owned".into(), "by-the-controller".into());
                match api
                    .replace("settings", &PostParams::default(), &desired)
                    .await
                {
                    Err(kube::Error::Api(s)) if s.code == 409 => {
                        conflicts.fetch_add(1, Ordering::SeqCst);
                        Err(kube::Error::Api(s))
                    }
                    other => other.map(|_| Action::await_change()),
                }
            }
        })
    };
    // ConfigMaps have no generation: the other writer's change alone reconciles nothing, so
    // only the conflict's retry brings the reconcile back.
    let controller = Controller::new(reconciler).with_predicate(not(LabelsChanged));
    let running = Running::start(manager(client).add(controller));

    let first = next(&mut rx).await;
    let retry = next(&mut rx).await;
    assert_eq!(
        conflicts.load(Ordering::SeqCst),
        1,
        "the first write hit a real 409"
    );
    assert_eq!(
        (retry.attempt, &retry.reason),
        (2, &ReconcileReason::Retry { attempt: 2 })
    );
    assert_about(
        retry.start - first.start,
        Duration::from_millis(5),
        "the retry after a conflict",
    );
    assert_ne!(
        retry.resource_version, first.resource_version,
        "the retry read the newer object"
    );

    let stored = api.get("settings").await.unwrap();
    assert_eq!(stored.metadata.labels.unwrap()["edited-by"], "someone-else");
    assert_eq!(stored.data.unwrap()["owned"], "by-the-controller");
    assert_eq!(conflicts.load(Ordering::SeqCst), 1);
    running.stop().await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn a_panicking_reconcile_is_retried_with_backoff_while_other_objects_carry_on() {
    let server = ApiServer::new();
    let client = server.client();
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    create_cm(&api, "bomb", "1").await;

    let (rec, mut rx) = Recorder::new();
    let reconciler = {
        let rec = rec.clone();
        reconciler_fn(move |cm: Arc<ConfigMap>, ctx: Context<ConfigMap>| {
            let rec = rec.clone();
            async move {
                rec.record(Run::of_cm(&cm, &ctx));
                if cm.metadata.name.as_deref() == Some("bomb") && ctx.attempt() <= 2 {
                    panic!("reconciling the bomb went off (attempt {})", ctx.attempt());
                }
                Ok::<_, kube::Error>(Action::await_change())
            }
        })
    };
    // One worker: had a panic killed it, nothing else would ever be reconciled.
    let controller = Controller::new(reconciler).max_concurrent_reconciles(1);
    let running = Running::start(manager(client).add(controller));

    let bomb = super::support::next_n(&mut rx, 3).await;
    assert_eq!(
        bomb.iter().map(|r| r.attempt).collect::<Vec<_>>(),
        [1, 2, 3]
    );
    assert_eq!(bomb[2].reason, ReconcileReason::Retry { attempt: 3 });
    let waits = gaps(&bomb);
    assert_about(
        waits[0],
        Duration::from_millis(5),
        "first retry after a panic",
    );
    assert_about(
        waits[1],
        Duration::from_millis(10),
        "second retry after a panic",
    );

    create_cm(&api, "calm", "1").await;
    let (calm, _) = next_of(&mut rx, "calm").await;
    assert_eq!(
        calm.reason,
        ReconcileReason::ObjectChanged(EventKind::Added)
    );
    assert!(!running.is_finished(), "the manager keeps running");
    running.stop().await.unwrap();
    assert_eq!(rec.count("bomb"), 3);
}

/// Sets its flag when dropped before being disarmed: a reconcile future abandoned midway.
struct DroppedMidway(Arc<AtomicBool>, bool);

impl Drop for DroppedMidway {
    fn drop(&mut self) {
        if !self.1 {
            self.0.store(true, Ordering::SeqCst);
        }
    }
}

#[tokio::test(start_paused = true)]
async fn a_reconcile_that_outlives_its_timeout_is_abandoned_and_retried() {
    let server = ApiServer::new();
    let client = server.client();
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    create_cm(&api, "stuck", "1").await;

    let (rec, mut rx) = Recorder::new();
    let abandoned = Arc::new(AtomicBool::new(false));
    let reconciler = {
        let (rec, abandoned) = (rec.clone(), abandoned.clone());
        reconciler_fn(move |cm: Arc<ConfigMap>, ctx: Context<ConfigMap>| {
            let (rec, abandoned) = (rec.clone(), abandoned.clone());
            async move {
                rec.record(Run::of_cm(&cm, &ctx));
                let mut guard = DroppedMidway(abandoned, false);
                if ctx.attempt() == 1 {
                    tokio::time::sleep(Duration::from_secs(3600)).await;
                }
                guard.1 = true;
                Ok::<_, kube::Error>(Action::await_change())
            }
        })
    };
    let controller = Controller::new(reconciler).reconcile_timeout(Duration::from_secs(10));
    let running = Running::start(manager(client).add(controller));

    let hung = next(&mut rx).await;
    let retry = next(&mut rx).await;
    assert!(
        abandoned.load(Ordering::SeqCst),
        "the timed-out reconcile was dropped"
    );
    assert_eq!(
        (retry.attempt, &retry.reason),
        (2, &ReconcileReason::Retry { attempt: 2 })
    );
    assert_about(
        retry.start - hung.start,
        Duration::from_secs(10) + Duration::from_millis(5),
        "the timeout, then the first backoff step",
    );
    assert!(
        runs_during(&mut rx, Duration::from_secs(7200))
            .await
            .is_empty(),
        "the retry succeeded"
    );
    running.stop().await.unwrap();
}

/// A reconcile error enum as operators write it: kube's errors and terminal ones passed
/// through transparently.
#[derive(Debug, thiserror::Error)]
enum ReconcileError {
    #[error(transparent)]
    Kube(#[from] kube::Error),
    #[error(transparent)]
    Invalid(#[from] TerminalError),
}

#[tokio::test(start_paused = true)]
async fn a_terminal_error_passed_through_a_transparent_variant_is_not_retried() {
    let server = ApiServer::new();
    let client = server.client();
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    create_cm(&api, "settings", "invalid").await;

    let (rec, mut rx) = Recorder::new();
    let reconciler = {
        let rec = rec.clone();
        reconciler_fn(move |cm: Arc<ConfigMap>, ctx: Context<ConfigMap>| {
            let rec = rec.clone();
            async move {
                rec.record(Run::of_cm(&cm, &ctx));
                Err::<Action, _>(ReconcileError::from(TerminalError::new(
                    "data.v is invalid",
                )))
            }
        })
    };
    let running = Running::start(manager(client).add(Controller::new(reconciler)));

    assert_eq!(next(&mut rx).await.reason, ReconcileReason::Startup);
    let retries = runs_during(&mut rx, Duration::from_secs(3600)).await;
    assert!(retries.is_empty(), "retried {} times", retries.len());
    running.stop().await.unwrap();
}

/// Fails the first `failures` reconciles of each object; its error hook asks to come back
/// after as many seconds as the object has failed in a row.
struct PacedByHook {
    rec: Recorder,
    failures: u32,
    hook_attempts: Arc<parking_lot::Mutex<Vec<u32>>>,
}

#[async_trait::async_trait]
impl windlass::controller::Reconciler for PacedByHook {
    type Object = ConfigMap;
    type Error = Unavailable;

    async fn reconcile(
        &self,
        cm: Arc<ConfigMap>,
        ctx: &Context<ConfigMap>,
    ) -> Result<Action, Unavailable> {
        self.rec.record(Run::of_cm(&cm, ctx));
        if ctx.attempt() <= self.failures {
            return Err(Unavailable);
        }
        Ok(Action::await_change())
    }

    fn on_error(
        &self,
        _obj: &Arc<ConfigMap>,
        _error: &Unavailable,
        attempt: u32,
        _ctx: &Context<ConfigMap>,
    ) -> Option<Action> {
        self.hook_attempts.lock().push(attempt);
        Some(Action::requeue(Duration::from_secs(attempt.into())))
    }
}

#[tokio::test(start_paused = true)]
async fn the_error_hook_sees_how_many_times_in_a_row_an_object_has_failed() {
    let server = ApiServer::new();
    let client = server.client();
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    create_cm(&api, "flaky", "1").await;

    let (rec, mut rx) = Recorder::new();
    let hook_attempts = Arc::default();
    let reconciler = PacedByHook {
        rec: rec.clone(),
        failures: 3,
        hook_attempts: Arc::clone(&hook_attempts),
    };
    let running = Running::start(manager(client).add(Controller::new(reconciler)));

    let runs = super::support::next_n(&mut rx, 4).await;
    assert_eq!(*hook_attempts.lock(), [1, 2, 3]);
    assert_eq!(
        runs.iter().map(|r| r.attempt).collect::<Vec<_>>(),
        [1, 2, 3, 4]
    );
    assert_eq!(runs[3].reason, ReconcileReason::Retry { attempt: 4 });
    let waits = gaps(&runs);
    for (i, wait) in waits.into_iter().enumerate() {
        assert_about(wait, Duration::from_secs(i as u64 + 1), "the hook's delay");
    }
    assert!(
        runs_during(&mut rx, Duration::from_secs(600))
            .await
            .is_empty(),
        "the success is final"
    );
    running.stop().await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn retries_of_many_objects_are_limited_to_ten_a_second_after_a_burst_of_a_hundred() {
    const OBJECTS: usize = 120;
    let server = ApiServer::new();
    let client = server.client();
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    for i in 0..OBJECTS {
        create_cm(&api, &format!("cm-{i}"), "1").await;
    }

    let (rec, mut rx) = Recorder::new();
    // Every object fails once, then succeeds.
    let reconciler = {
        let rec = rec.clone();
        reconciler_fn(move |cm: Arc<ConfigMap>, ctx: Context<ConfigMap>| {
            let rec = rec.clone();
            async move {
                rec.record(Run::of_cm(&cm, &ctx));
                if ctx.attempt() == 1 {
                    Err(Unavailable)
                } else {
                    Ok(Action::await_change())
                }
            }
        })
    };
    let running = Running::start(manager(client).add(Controller::new(reconciler)));

    let runs = super::support::next_n(&mut rx, 2 * OBJECTS).await;
    let failed_at = runs[0].start;
    assert!(
        runs[..OBJECTS]
            .iter()
            .all(|r| r.attempt == 1 && r.start == failed_at)
    );
    let retries: Vec<Duration> = runs[OBJECTS..]
        .iter()
        .map(|r| r.start - failed_at)
        .collect();
    assert!(retries.windows(2).all(|w| w[0] <= w[1]));
    // The burst: a hundred retries after the first backoff step.
    assert_about(retries[99], Duration::from_millis(5), "the hundredth retry");
    // Then one every 100 ms.
    for (k, at) in retries[100..].iter().enumerate() {
        let due = Duration::from_millis(100 * (k as u64 + 1));
        assert_about(*at, due, &format!("retry {}", 101 + k));
    }
    running.stop().await.unwrap();
}
