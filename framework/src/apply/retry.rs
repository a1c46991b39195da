//! Retrying a read-modify-write when the API server answers 409 Conflict (client-go's
//! `util/retry`).

use std::error::Error as StdError;
use std::future::Future;
use std::time::Duration;

use crate::controller::is_conflict;

/// How often and how far apart to retry (client-go's `wait.Backoff`): at most `steps`
/// attempts; the first wait is `duration`, each next one `factor` times the last (capped at
/// `cap`, if set), and each wait is lengthened by up to `jitter` times itself, at random.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Backoff {
    steps: u32,
    duration: Duration,
    factor: f64,
    jitter: f64,
    cap: Option<Duration>,
}

/// client-go's `retry.DefaultRetry`: 5 attempts, 10 ms apart (±10 % jitter). For conflicts
/// with other writers, which clear up at once.
pub const DEFAULT_RETRY: Backoff = Backoff {
    steps: 5,
    duration: Duration::from_millis(10),
    factor: 1.0,
    jitter: 0.1,
    cap: None,
};

/// client-go's `retry.DefaultBackoff`: 4 attempts, waiting 10 ms, 50 ms and 250 ms (+10 %
/// jitter). For conflicts with a busy writer that may take a while.
pub const DEFAULT_BACKOFF: Backoff = Backoff {
    steps: 4,
    duration: Duration::from_millis(10),
    factor: 5.0,
    jitter: 0.1,
    cap: None,
};

impl Default for Backoff {
    /// [`DEFAULT_RETRY`].
    fn default() -> Self {
        DEFAULT_RETRY
    }
}

impl Backoff {
    /// At most `steps` attempts (at least 1).
    #[must_use]
    pub fn steps(mut self, steps: u32) -> Self {
        self.steps = steps.max(1);
        self
    }

    /// The first wait.
    #[must_use]
    pub fn duration(mut self, duration: Duration) -> Self {
        self.duration = duration;
        self
    }

    /// What each wait is multiplied by for the next (1.0: constant).
    #[must_use]
    pub fn factor(mut self, factor: f64) -> Self {
        self.factor = factor;
        self
    }

    /// Up to which fraction of itself a wait is lengthened at random (0: none).
    #[must_use]
    pub fn jitter(mut self, jitter: f64) -> Self {
        self.jitter = jitter.max(0.0);
        self
    }

    /// The longest wait; reaching it ends the retries after the next attempt, as in
    /// client-go.
    #[must_use]
    pub fn cap(mut self, cap: Duration) -> Self {
        self.cap = Some(cap);
        self
    }

    /// The next wait, advancing the backoff (client-go's `Backoff.Step`).
    fn step(&mut self) -> Duration {
        self.steps = self.steps.saturating_sub(1);
        let wait = self.duration;
        if self.factor != 0.0 {
            self.duration = self.duration.mul_f64(self.factor);
            if let Some(cap) = self.cap
                && self.duration > cap
            {
                self.duration = cap;
                self.steps = 0;
            }
        }
        if self.jitter > 0.0 {
            wait + wait.mul_f64(fastrand::f64() * self.jitter)
        } else {
            wait
        }
    }
}

/// Runs `f` until it succeeds, fails with an error `retriable` refuses, or `backoff` runs
/// out of steps; waits between attempts as `backoff` says (client-go's `retry.OnError`).
///
/// # Errors
///
/// The first error `retriable` refuses, or the last error when the attempts run out.
pub async fn retry_on_error<T, E, F, Fut, P>(
    mut backoff: Backoff,
    retriable: P,
    mut f: F,
) -> Result<T, E>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, E>>,
    P: Fn(&E) -> bool,
{
    loop {
        let error = match f().await {
            Ok(value) => return Ok(value),
            Err(error) => error,
        };
        if !retriable(&error) || backoff.steps <= 1 {
            return Err(error);
        }
        tokio::time::sleep(backoff.step()).await;
    }
}

/// Runs `f` again while it fails with a 409 Conflict, at most as often as `backoff` allows
/// (client-go's `retry.RetryOnConflict`). `f` should read the object afresh, change it and
/// write it: a conflict means the copy it changed was out of date.
///
/// A conflict is found anywhere in the error's `source()` chain, so `f` may return kube's
/// error, a [`WriteError`](super::WriteError), or your own error wrapping either.
///
/// # Errors
///
/// The first error that is not a conflict, or the last conflict when the attempts run out.
///
/// # Example
///
/// ```no_run
/// use k8s_openapi::api::core::v1::ConfigMap;
/// use kube::api::{Api, PostParams};
/// use windlass::apply::{retry_on_conflict, DEFAULT_RETRY};
///
/// # async fn doc(configmaps: Api<ConfigMap>) -> Result<(), kube::Error> {
/// retry_on_conflict(DEFAULT_RETRY, || async {
///     let mut cm = configmaps.get("settings").await?;
///     cm.data.get_or_insert_default().insert("mode".into(), "safe".into());
///     configmaps.replace("settings", &PostParams::default(), &cm).await
/// })
/// .await?;
/// # Ok(())
/// # }
/// ```
pub async fn retry_on_conflict<T, E, F, Fut>(backoff: Backoff, f: F) -> Result<T, E>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, E>>,
    E: StdError + 'static,
{
    retry_on_error(backoff, |e: &E| is_conflict(e), f).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_retry_waits_ten_milliseconds_plus_at_most_ten_percent() {
        let mut b = DEFAULT_RETRY;
        for _ in 0..4 {
            let wait = b.step();
            assert!(
                wait >= Duration::from_millis(10) && wait < Duration::from_millis(11),
                "{wait:?}"
            );
        }
    }

    #[test]
    fn default_backoff_multiplies_each_wait_by_five() {
        let mut b = DEFAULT_BACKOFF.jitter(0.0);
        let waits: Vec<_> = (0..3).map(|_| b.step()).collect();
        assert_eq!(waits, [10, 50, 250].map(Duration::from_millis).to_vec());
    }

    #[test]
    fn a_cap_ends_the_growth_and_the_retries() {
        let mut b = DEFAULT_BACKOFF
            .jitter(0.0)
            .steps(10)
            .cap(Duration::from_millis(40));
        assert_eq!(b.step(), Duration::from_millis(10));
        assert_eq!(b.step(), Duration::from_millis(40));
        assert_eq!(b.steps, 0);
    }

    #[tokio::test(start_paused = true)]
    async fn a_refused_error_is_returned_at_once() {
        let mut calls = 0;
        let start = tokio::time::Instant::now();
        let result: Result<(), &str> = retry_on_error(
            DEFAULT_RETRY,
            |e| *e == "again",
            || {
                calls += 1;
                async { Err("fatal") }
            },
        )
        .await;
        assert_eq!((result, calls), (Err("fatal"), 1));
        assert_eq!(start.elapsed(), Duration::ZERO);
    }
}
