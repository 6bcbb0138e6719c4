//! Read deadlines of a server connection: how long a peer may stay silent
//! between frames (`serverChannelMaxIdleTimeSeconds`) and how long a frame
//! whose first bytes arrived may take to complete
//! (`serverFrameReadTimeoutMillis`).
//!
//! One timer per connection. It is re-armed once per completed frame with a
//! later deadline, which tokio does without touching its timer wheel (the
//! entry only moves when it comes due), so the cost on the hot path is one
//! clock read per frame and no system call. It is shortened, which does
//! touch the wheel, only when a read leaves a frame incomplete.

use std::pin::Pin;
use std::time::Duration;

use tokio::time::{Instant, Sleep};

/// Read limits of one connection; `None` means no limit.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReadLimits {
    /// A connection that completes no frame for this long is closed.
    pub idle: Option<Duration>,
    /// A frame whose first byte arrived must be complete within this long.
    pub frame: Option<Duration>,
}

impl ReadLimits {
    pub(crate) fn is_unlimited(&self) -> bool {
        self.idle.is_none() && self.frame.is_none()
    }

    /// The length of `limit` in milliseconds (0 when it is not set).
    pub(crate) fn millis(&self, limit: ReadLimit) -> u64 {
        let length = match limit {
            ReadLimit::Idle => self.idle,
            ReadLimit::Frame => self.frame,
        };
        length.map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
    }
}

/// Which read limit a peer ran into.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadLimit {
    /// No complete frame for the idle time.
    Idle,
    /// A started frame did not complete in time.
    Frame,
}

/// The armed deadlines of a reader.
#[derive(Debug)]
pub(crate) struct ReadTimer {
    limits: ReadLimits,
    sleep: Pin<Box<Sleep>>,
    /// A frame completed (or the connection opened): the next read restarts
    /// the idle period.
    fresh: bool,
    idle_at: Option<Instant>,
    frame_at: Option<Instant>,
}

impl ReadTimer {
    pub(crate) fn new(limits: ReadLimits) -> Self {
        ReadTimer {
            limits,
            sleep: Box::pin(tokio::time::sleep(Duration::ZERO)),
            fresh: true,
            idle_at: None,
            frame_at: None,
        }
    }

    pub(crate) fn limits(&self) -> ReadLimits {
        self.limits
    }

    /// A frame completed; nothing is read from the clock here.
    pub(crate) fn frame_done(&mut self) {
        self.fresh = true;
        self.frame_at = None;
    }

    /// Arms the timer for the next read; `partial` says whether part of a
    /// frame is buffered. Returns whether any deadline applies.
    pub(crate) fn arm(&mut self, partial: bool) -> bool {
        let mut changed = false;
        if self.fresh {
            self.fresh = false;
            self.idle_at = self.limits.idle.map(|idle| Instant::now() + idle);
            changed = true;
        }
        if partial && self.frame_at.is_none() {
            if let Some(frame) = self.limits.frame {
                self.frame_at = Some(Instant::now() + frame);
                changed = true;
            }
        }
        let deadline = match (self.idle_at, self.frame_at) {
            (Some(idle), Some(frame)) => Some(idle.min(frame)),
            (idle, frame) => idle.or(frame),
        };
        match deadline {
            Some(deadline) => {
                if changed {
                    self.sleep.as_mut().reset(deadline);
                }
                true
            }
            None => false,
        }
    }

    /// Resolves when the armed deadline passes, with the limit it was.
    pub(crate) async fn expired(&mut self) -> ReadLimit {
        (&mut self.sleep).await;
        let deadline = self.sleep.deadline();
        if self.frame_at.is_some_and(|frame| frame <= deadline) {
            ReadLimit::Frame
        } else {
            // The next read starts a new idle period, so a caller that
            // chooses to keep the connection (requests still in flight) is
            // not woken again at once.
            self.fresh = true;
            ReadLimit::Idle
        }
    }
}
