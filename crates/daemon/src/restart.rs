//! Restart policies (`--restart no|on-failure[:N]|always|unless-stopped`), decided as Docker's
//! restart manager decides them.
//!
//! [`decide`] is pure: the daemon gives it the policy, what happened (an exit with its code and
//! how long the guest ran, or the daemon starting), the restart count, whether the container
//! was stopped by hand, and the previous backoff; it answers whether to start the container
//! again and after how long.
//!
//! - After an exit, the delay starts at 100 ms and doubles up to one minute; it goes back to
//!   100 ms when the container ran for 10 s or more. `always` restarts after any exit,
//!   `unless-stopped` unless it was stopped by hand, `on-failure` after a non-zero exit while
//!   the restart count is under its maximum (0: no maximum). A manual `stop`/`kill` suspends
//!   every policy until the next manual start.
//! - When the daemon starts, `always` containers are started (even those stopped by hand),
//!   `unless-stopped` ones unless they were stopped by hand, and `on-failure` ones never. A
//!   container that was never started stays created.

use crate::error::{DaemonError, Result};
use std::time::Duration;

/// The first backoff delay.
pub const INITIAL_DELAY: Duration = Duration::from_millis(100);
/// The longest backoff delay.
pub const MAX_DELAY: Duration = Duration::from_secs(60);
/// A run at least this long resets the backoff.
pub const RESET_AFTER: Duration = Duration::from_secs(10);

/// A restart policy's name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PolicyName {
    No,
    Always,
    OnFailure,
    UnlessStopped,
}

/// A validated restart policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    pub name: PolicyName,
    /// `on-failure:N`; 0 means no maximum.
    pub max_retries: i64,
}

impl Policy {
    pub const NO: Policy = Policy {
        name: PolicyName::No,
        max_retries: 0,
    };

    /// Validates `HostConfig.RestartPolicy` as Docker's API does.
    pub fn from_api(p: Option<&berth_api::RestartPolicy>) -> Result<Self> {
        let Some(p) = p else {
            return Ok(Self::NO);
        };
        let count = p.maximum_retry_count.unwrap_or(0);
        let name = match p.name.as_deref().unwrap_or("") {
            "" | "no" => PolicyName::No,
            "always" => PolicyName::Always,
            "on-failure" => PolicyName::OnFailure,
            "unless-stopped" => PolicyName::UnlessStopped,
            other => {
                return Err(DaemonError::Invalid(format!(
                    "invalid restart policy: unknown policy '{other}'; use one of 'no', 'always', 'on-failure', or 'unless-stopped'"
                )));
            }
        };
        if count < 0 {
            return Err(DaemonError::Invalid(
                "invalid restart policy: maximum retry count cannot be negative".into(),
            ));
        }
        if count != 0 && name != PolicyName::OnFailure {
            return Err(DaemonError::Invalid(
                "invalid restart policy: maximum retry count can only be used with 'on-failure'"
                    .into(),
            ));
        }
        Ok(Self {
            name,
            max_retries: count,
        })
    }

    /// The policy a container was created with (invalid or absent: `no`).
    pub fn of(host: &berth_api::HostConfig) -> Self {
        Self::from_api(host.restart_policy.as_ref()).unwrap_or(Self::NO)
    }
}

/// What the decision is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trigger {
    /// The guest exited with `code` after running for `ran_for`.
    Exit { code: i64, ran_for: Duration },
    /// The daemon is starting; `ever_started` says whether the container was started before.
    DaemonStart { ever_started: bool },
}

/// What to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Leave the container stopped.
    Stay,
    /// Start it again after `delay`; `delay` is also the backoff to pass to the next decision.
    Restart { delay: Duration },
}

/// Decides whether a container starts again.
///
/// `restart_count` is the number of restarts since the last manual start; `previous_delay` is
/// the backoff of the last restart (`None` after a manual start).
pub fn decide(
    policy: Policy,
    trigger: Trigger,
    restart_count: i64,
    manually_stopped: bool,
    previous_delay: Option<Duration>,
) -> Decision {
    match trigger {
        Trigger::DaemonStart { ever_started } => {
            let start = ever_started
                && match policy.name {
                    PolicyName::Always => true,
                    PolicyName::UnlessStopped => !manually_stopped,
                    PolicyName::No | PolicyName::OnFailure => false,
                };
            if start {
                Decision::Restart {
                    delay: Duration::ZERO,
                }
            } else {
                Decision::Stay
            }
        }
        Trigger::Exit { code, ran_for } => {
            if manually_stopped {
                return Decision::Stay;
            }
            let restart = match policy.name {
                PolicyName::No => false,
                PolicyName::Always | PolicyName::UnlessStopped => true,
                PolicyName::OnFailure => {
                    code != 0 && (policy.max_retries == 0 || restart_count < policy.max_retries)
                }
            };
            if !restart {
                return Decision::Stay;
            }
            let delay = match previous_delay {
                Some(d) if ran_for < RESET_AFTER && !d.is_zero() => (d * 2).min(MAX_DELAY),
                _ => INITIAL_DELAY,
            };
            Decision::Restart { delay }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(name: &str, n: i64) -> Policy {
        Policy::from_api(Some(&berth_api::RestartPolicy {
            name: Some(name.into()),
            maximum_retry_count: Some(n),
        }))
        .unwrap()
    }

    fn exit(code: i64) -> Trigger {
        Trigger::Exit {
            code,
            ran_for: Duration::from_millis(5),
        }
    }

    const FIRST: Decision = Decision::Restart {
        delay: INITIAL_DELAY,
    };

    #[test]
    fn policies_parse_like_dockers_api() {
        assert_eq!(Policy::from_api(None).unwrap(), Policy::NO);
        assert_eq!(policy("", 0), Policy::NO);
        assert_eq!(policy("no", 0), Policy::NO);
        assert_eq!(policy("always", 0).name, PolicyName::Always);
        assert_eq!(policy("unless-stopped", 0).name, PolicyName::UnlessStopped);
        assert_eq!(
            policy("on-failure", 3),
            Policy {
                name: PolicyName::OnFailure,
                max_retries: 3
            }
        );
        for (name, n) in [
            ("always", 1),
            ("no", 2),
            ("on-failure", -1),
            ("sometimes", 0),
        ] {
            let p = berth_api::RestartPolicy {
                name: Some(name.into()),
                maximum_retry_count: Some(n),
            };
            assert!(Policy::from_api(Some(&p)).is_err(), "{name}:{n}");
        }
    }

    #[test]
    fn no_never_restarts() {
        for code in [0, 1, 137] {
            assert_eq!(
                decide(Policy::NO, exit(code), 0, false, None),
                Decision::Stay
            );
        }
        let start = Trigger::DaemonStart { ever_started: true };
        assert_eq!(decide(Policy::NO, start, 0, false, None), Decision::Stay);
    }

    #[test]
    fn always_and_unless_stopped_restart_after_any_exit() {
        for name in ["always", "unless-stopped"] {
            for code in [0, 1, 255] {
                assert_eq!(decide(policy(name, 0), exit(code), 7, false, None), FIRST);
            }
        }
    }

    #[test]
    fn on_failure_restarts_non_zero_exits_up_to_its_maximum() {
        let p = policy("on-failure", 2);
        assert_eq!(decide(p, exit(0), 0, false, None), Decision::Stay);
        assert_eq!(decide(p, exit(1), 0, false, None), FIRST);
        assert_eq!(
            decide(p, exit(1), 1, false, Some(INITIAL_DELAY)),
            Decision::Restart {
                delay: INITIAL_DELAY * 2
            }
        );
        assert_eq!(decide(p, exit(1), 2, false, None), Decision::Stay);
        // No maximum.
        let unlimited = policy("on-failure", 0);
        assert_eq!(decide(unlimited, exit(3), 1000, false, None), FIRST);
        assert_eq!(decide(unlimited, exit(0), 0, false, None), Decision::Stay);
    }

    #[test]
    fn a_manual_stop_suspends_every_policy() {
        for name in ["always", "unless-stopped", "on-failure"] {
            assert_eq!(
                decide(policy(name, 0), exit(143), 0, true, None),
                Decision::Stay,
                "{name}"
            );
        }
    }

    #[test]
    fn backoff_doubles_to_a_minute_and_resets_after_ten_seconds() {
        let p = policy("always", 0);
        let mut delay = None;
        let mut seen = Vec::new();
        for _ in 0..12 {
            match decide(p, exit(1), 0, false, delay) {
                Decision::Restart { delay: d } => {
                    seen.push(d.as_millis());
                    delay = Some(d);
                }
                Decision::Stay => panic!("always stays"),
            }
        }
        assert_eq!(
            seen,
            [
                100, 200, 400, 800, 1600, 3200, 6400, 12800, 25600, 51200, 60000, 60000
            ]
        );
        let long_run = Trigger::Exit {
            code: 1,
            ran_for: RESET_AFTER,
        };
        assert_eq!(decide(p, long_run, 0, false, Some(MAX_DELAY)), FIRST);
        let short_run = Trigger::Exit {
            code: 1,
            ran_for: RESET_AFTER - Duration::from_millis(1),
        };
        assert_eq!(
            decide(p, short_run, 0, false, Some(MAX_DELAY)),
            Decision::Restart { delay: MAX_DELAY }
        );
    }

    #[test]
    fn daemon_start_brings_back_always_and_unless_stopped_only() {
        let start = Trigger::DaemonStart { ever_started: true };
        let now = Decision::Restart {
            delay: Duration::ZERO,
        };
        assert_eq!(decide(policy("always", 0), start, 3, false, None), now);
        // `always` comes back even after a manual stop.
        assert_eq!(decide(policy("always", 0), start, 0, true, None), now);
        assert_eq!(
            decide(policy("unless-stopped", 0), start, 0, false, None),
            now
        );
        assert_eq!(
            decide(policy("unless-stopped", 0), start, 0, true, None),
            Decision::Stay
        );
        assert_eq!(
            decide(policy("on-failure", 0), start, 0, false, None),
            Decision::Stay
        );
        assert_eq!(
            decide(policy("on-failure", 5), start, 0, false, None),
            Decision::Stay
        );
        // A container never started stays created.
        let never = Trigger::DaemonStart {
            ever_started: false,
        };
        assert_eq!(
            decide(policy("always", 0), never, 0, false, None),
            Decision::Stay
        );
    }
}
